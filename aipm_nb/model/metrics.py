"""Label metrics of a binary classifier: the formulas live in `aipm_nb.stats.classifier`; this
module adds the typed results built on them (threshold choice, regression metrics).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from aipm_nb.errors import ParameterError
from aipm_nb.results import Result
from aipm_nb.stats.classifier import (
    METRIC_KEYS,
    BinaryMetrics,
    binary_metrics_from_counts,
    calibration_table,
    expected_calibration_error,
    safe_div,
    threshold_table,
)

__all__ = [
    "METRIC_KEYS",
    "WINDOW_METRICS",
    "BinaryMetrics",
    "RegressionMetrics",
    "ThresholdChoice",
    "binary_metrics_from_counts",
    "calibration_table",
    "choose_threshold",
    "expected_calibration_error",
    "safe_div",
    "threshold_table",
]

#: Metrics that can be tracked per window (ECE needs a calibration table per window: not yet).
WINDOW_METRICS = tuple(k for k in METRIC_KEYS if k != "ece")


@dataclass(frozen=True)
class ThresholdChoice(Result):
    """The threshold `choose_threshold` picked and what it gives."""

    threshold: float
    precision: float
    recall: float
    flagged_share: float
    tp: int
    fp: int
    rule: str


@dataclass(frozen=True)
class RegressionMetrics(Result):
    """MAE, RMSE, MAPE and R² of a regression model over ``n`` labelled rows."""

    n: int
    mae: float
    rmse: float
    mape: float
    r2: float


def choose_threshold(
    counts: pd.DataFrame,
    *,
    target_precision: float | None = None,
    target_recall: float | None = None,
    benefit: float | None = None,
    cost: float | None = None,
) -> ThresholdChoice | None:
    """The threshold (a distinct score) that meets a target precision with the most recall, a
    target recall with the most precision, or maximises ``benefit * TP - cost * FP``; None when
    no threshold meets the target.

    Examples:
        >>> c = pd.DataFrame({"score": [0.2, 0.6, 0.9], "pos": [1, 3, 2], "neg": [3, 1, 0]})
        >>> choose_threshold(c, target_precision=0.8).threshold
        0.6
    """
    table = threshold_table(counts, np.sort(counts["score"].unique()))
    if target_precision is not None:
        ok = table[table.precision >= target_precision]
        row = ok.sort_values(["recall", "threshold"], ascending=[False, True]).head(1)
        rule = f"precision ≥ {target_precision:g} with the most recall"
    elif target_recall is not None:
        ok = table[table.recall >= target_recall]
        row = ok.sort_values(["precision", "threshold"], ascending=[False, False]).head(1)
        rule = f"recall ≥ {target_recall:g} with the most precision"
    elif benefit is not None and cost is not None:
        value = benefit * table.tp - cost * table.fp
        row = table.assign(value=value).sort_values("value", ascending=False).head(1)
        rule = f"most {benefit:g}·TP − {cost:g}·FP"
    else:
        raise ParameterError("give target_precision, target_recall, or benefit and cost")
    if row.empty:
        return None
    r = row.iloc[0]
    return ThresholdChoice(
        float(r.threshold),
        float(r.precision),
        float(r.recall),
        float(r.flagged_share),
        int(r.tp),
        int(r.fp),
        rule,
    )
