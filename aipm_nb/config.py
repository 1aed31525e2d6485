"""Defaults in one place. An argument of ``None`` elsewhere means "use the value here"."""

from __future__ import annotations

import numpy as np

#: File name of each sample data set; ``source="sample:NAME"`` resolves to it in the package's
#: sample folder (`aipm_nb.resources.sample_dir`).
SAMPLE_FILES = {
    "events": "events.parquet",
    "experiment": "experiment.parquet",
    "predictions": "predictions.parquet",
    "llm_responses": "llm_responses.parquet",
    "llm_preferences": "llm_preferences.parquet",
    "funnel_events": "funnel_events.parquet",
    "funnel_assignments": "funnel_assignments.parquet",
}

#: Significance level of A/B tests and of confidence intervals (1 - alpha).
ALPHA = 0.05
#: Sample-ratio mismatch is flagged when the chi-square p-value falls below this.
SRM_ALPHA = 0.001
#: Multiple-testing correction applied over (metric x variant): "holm" or "bh".
CORRECTION = "holm"
#: Below this many units in an arm the delta-method relative CI is liberal (A/A false-positive
#: rate ≈ 11% at 20 per arm): the verdict then uses the Welch test of the absolute effect.
MIN_UNITS_PER_ARM = 200
#: Target power for the minimum detectable effect and sample-size planning.
POWER = 0.8

#: Probability clipping of log loss: float64's machine epsilon, as scikit-learn >= 1.5 clips.
LOG_LOSS_EPS = float(np.finfo(np.float64).eps)
#: Number of equal-width bins of the calibration table / ECE.
CALIBRATION_BINS = 10
#: Number of quantile bins of PSI and the floor applied to bin shares.
PSI_BINS = 10
PSI_FLOOR = 1e-4
#: PSI status thresholds: < STABLE stable, < MODERATE moderate, else major.
PSI_STABLE = 0.1
PSI_MODERATE = 0.25

#: A model's verdict is "watch" when its calibration error (ECE) reaches this.
ECE_WATCH = 0.05

#: Version of the JSON summary written by every notebook (DESIGN section 5).
SUMMARY_SCHEMA_VERSION = 1
