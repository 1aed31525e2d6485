"""Model performance & drift from engine-side aggregates.

Label metrics come from one table of counts per distinct score (positives and negatives), which
is all that exact ROC AUC (ties count 1/2), average precision, log loss, Brier, the confusion
matrix and DeLong's AUC variance need; the calibration table from 10 equal-width bins; PSI from
counts per reference-decile bin; KS from counts per distinct value. Rows never reach pandas.

Conventions (DESIGN section 4): scikit-learn's metrics; log loss clips probabilities to
[eps, 1 - eps] with float64 eps (scikit-learn >= 1.5); ECE over bins
``min(floor(10 * score), 9)``; PSI over the reference's deciles (linear interpolation,
duplicates dropped, outer edges infinite, bins [lo, hi)), shares floored at 1e-4; rows with a
null label count for drift and volume, not label metrics.

Modules, one concern each: `metrics` (label metrics from counts per distinct score), `drift`
(PSI and KS), `engine` (the aggregates computed where the data lives: per-score counts, groups,
windows), `analyze` (`analyze_model`), `present` (the executive summary).
"""

from __future__ import annotations

from aipm_nb.model.analyze import ModelResult, analyze_model
from aipm_nb.model.drift import psi_from_counts, psi_status
from aipm_nb.model.engine import group_metrics, regression_metrics
from aipm_nb.model.metrics import (
    METRIC_KEYS,
    BinaryMetrics,
    binary_metrics_from_counts,
    calibration_table,
    choose_threshold,
    expected_calibration_error,
    threshold_table,
)
from aipm_nb.model.present import summary_markdown

__all__ = [
    "BinaryMetrics",
    "METRIC_KEYS",
    "ModelResult",
    "analyze_model",
    "binary_metrics_from_counts",
    "calibration_table",
    "choose_threshold",
    "expected_calibration_error",
    "group_metrics",
    "psi_from_counts",
    "psi_status",
    "regression_metrics",
    "summary_markdown",
    "threshold_table",
]
