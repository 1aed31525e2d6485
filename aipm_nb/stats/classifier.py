"""Binary-classifier metrics from sufficient statistics over distinct scores.

Both paths finish with the same formulas: `ClassifierSums.from_counts` builds the sums from a
(score, positives, negatives) table in numpy, and the engine (`aipm_nb.model.engine`) builds the
same sums per group from per-row rank windows in SQL; `ClassifierSums.metrics` turns either into
`BinaryMetrics`. ROC AUC is the Mann-Whitney statistic (ties count 1/2) with DeLong's standard
error, PR AUC scikit-learn's average precision over distinct thresholds, log loss clips scores
at `config.LOG_LOSS_EPS`, and a prediction is positive when ``score >= threshold``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from aipm_nb import config

__all__ = [
    "METRIC_KEYS",
    "BinaryMetrics",
    "ClassifierSums",
    "binary_metrics_from_counts",
    "calibration_table",
    "expected_calibration_error",
    "safe_div",
    "threshold_table",
]

#: The label metrics of a model summary (DESIGN section 5), in report order.
METRIC_KEYS = (
    "roc_auc",
    "pr_auc",
    "log_loss",
    "brier",
    "ece",
    "precision",
    "recall",
    "f1",
    "accuracy",
)


def safe_div(a: float, b: float) -> float:
    """A / b, NaN when b is 0.

    Examples:
        >>> safe_div(1, 4), safe_div(1, 0)
        (0.25, nan)
    """
    return a / b if b else math.nan


@dataclass(frozen=True)
class BinaryMetrics:
    """Label metrics of a binary classifier (NaN where undefined, e.g. a single class)."""

    n: int
    positives: int
    roc_auc: float
    roc_auc_se: float
    roc_auc_ci_lower: float
    roc_auc_ci_upper: float
    pr_auc: float
    log_loss: float
    brier: float
    precision: float
    recall: float
    f1: float
    accuracy: float
    tp: int
    fp: int
    tn: int
    fn: int


@dataclass(frozen=True)
class ClassifierSums:
    """What every label metric needs, summed over the distinct scores of one group.

    With, per distinct score s, ``pos``/``neg`` the labelled rows at s,
    ``a = (negatives below s) + neg/2``, ``b = (positives above s) + pos/2`` and
    ``tp_ge``/``fp_ge`` the positives/negatives at or above s:

    Attributes:
        positives: P = Σ pos.
        negatives: N = Σ neg.
        s1: Σ pos·a (= AUC·P·N).
        s2: Σ pos·a² (DeLong's positive-side variance).
        t2: Σ neg·b² (DeLong's negative-side variance).
        ap: Σ pos·tp_ge / (tp_ge + fp_ge) (= AP·P).
        log_loss: −Σ [pos·ln p + neg·ln(1 − p)], p the clipped score.
        brier: Σ [pos·(1 − s)² + neg·s²].
        tp: positives with s ≥ threshold.
        fp: negatives with s ≥ threshold.
    """

    positives: float
    negatives: float
    s1: float
    s2: float
    t2: float
    ap: float
    log_loss: float
    brier: float
    tp: float
    fp: float

    @classmethod
    def from_counts(cls, counts: pd.DataFrame, *, threshold: float = 0.5) -> ClassifierSums:
        """The sums from a table of ``score``, ``pos``, ``neg`` (any order, repeats summed)."""
        c = counts.groupby("score", sort=True)[["pos", "neg"]].sum()
        s = c.index.to_numpy(dtype=float)
        pos, neg = c["pos"].to_numpy(dtype=float), c["neg"].to_numpy(dtype=float)
        P, N = pos.sum(), neg.sum()
        a = np.cumsum(neg) - neg * 0.5
        b = pos[::-1].cumsum()[::-1] - pos * 0.5
        tp_ge, fp_ge = pos[::-1].cumsum()[::-1], neg[::-1].cumsum()[::-1]
        with np.errstate(invalid="ignore", divide="ignore"):
            prec = np.where(tp_ge + fp_ge > 0, tp_ge / (tp_ge + fp_ge), 0.0)
        eps = config.LOG_LOSS_EPS
        p = np.clip(s, eps, 1 - eps)
        flag = s >= threshold
        return cls(
            positives=float(P),
            negatives=float(N),
            s1=float((pos * a).sum()),
            s2=float((pos * a * a).sum()),
            t2=float((neg * b * b).sum()),
            ap=float((pos * prec).sum()),
            log_loss=float(-(pos * np.log(p) + neg * np.log1p(-p)).sum()),
            brier=float((pos * (1 - s) ** 2 + neg * s**2).sum()),
            tp=float(pos[flag].sum()),
            fp=float(neg[flag].sum()),
        )

    def metrics(self, *, alpha: float | None = None) -> BinaryMetrics:
        """The label metrics; the AUC interval is the (1 − alpha) normal interval, clipped."""
        P, N = self.positives, self.negatives
        n = P + N
        auc = se = lo = hi = math.nan
        if P > 0 and N > 0:
            auc = self.s1 / (P * N)
            s10 = (self.s2 / N**2 - P * auc**2) / (P - 1) if P > 1 else 0.0
            s01 = (self.t2 / P**2 - N * auc**2) / (N - 1) if N > 1 else 0.0
            se = math.sqrt(max(s10 / P + s01 / N, 0.0))
            z = sps.norm.ppf(1 - (config.ALPHA if alpha is None else alpha) / 2)
            lo, hi = max(0.0, auc - z * se), min(1.0, auc + z * se)
        tp, fp = self.tp, self.fp
        fn, tn = P - tp, N - fp
        return BinaryMetrics(
            n=int(n),
            positives=int(P),
            roc_auc=auc,
            roc_auc_se=se,
            roc_auc_ci_lower=lo,
            roc_auc_ci_upper=hi,
            pr_auc=safe_div(self.ap, P),
            log_loss=safe_div(self.log_loss, n),
            brier=safe_div(self.brier, n),
            precision=safe_div(tp, tp + fp),
            recall=safe_div(tp, P),
            f1=safe_div(2 * tp, 2 * tp + fp + fn),
            accuracy=safe_div(tp + tn, n),
            tp=int(round(tp)),
            fp=int(round(fp)),
            tn=int(round(tn)),
            fn=int(round(fn)),
        )


def binary_metrics_from_counts(
    counts: pd.DataFrame, *, threshold: float = 0.5, alpha: float | None = None
) -> BinaryMetrics:
    """Metrics from a table with one row per distinct ``score`` and its ``pos`` / ``neg`` counts.

    Examples:
        >>> c = pd.DataFrame({"score": [0.1, 0.4, 0.35, 0.8], "pos": [0, 0, 1, 1],
        ...                   "neg": [1, 1, 0, 0]})
        >>> m = binary_metrics_from_counts(c)
        >>> round(m.roc_auc, 4), round(m.pr_auc, 4), m.tp, m.fp
        (0.75, 0.8333, 1, 0)
    """
    return ClassifierSums.from_counts(counts, threshold=threshold).metrics(alpha=alpha)


def threshold_table(counts: pd.DataFrame, thresholds: Any = None) -> pd.DataFrame:
    """Precision, recall and share of traffic flagged (``score >= threshold``) per threshold.

    Examples:
        >>> c = pd.DataFrame({"score": [0.2, 0.6], "pos": [1, 3], "neg": [3, 1]})
        >>> threshold_table(c, [0.5]).loc[0, ["precision", "recall", "flagged_share"]].tolist()
        [0.75, 0.75, 0.5]
    """
    c = counts.groupby("score", sort=True)[["pos", "neg"]].sum()
    s = c.index.to_numpy(dtype=float)
    pos, neg = c["pos"].to_numpy(dtype=float), c["neg"].to_numpy(dtype=float)
    ths = np.round(np.arange(0.05, 1.0, 0.05), 2) if thresholds is None else np.asarray(thresholds)
    tp_ge = pos[::-1].cumsum()[::-1]
    fp_ge = neg[::-1].cumsum()[::-1]
    idx = np.searchsorted(s, ths, side="left")
    tp = np.where(idx < len(s), tp_ge[np.minimum(idx, len(s) - 1)], 0.0)
    fp = np.where(idx < len(s), fp_ge[np.minimum(idx, len(s) - 1)], 0.0)
    P, n = pos.sum(), pos.sum() + neg.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame(
            {
                "threshold": ths,
                "precision": np.where(tp + fp > 0, tp / (tp + fp), np.nan),
                "recall": tp / P if P else np.nan,
                "flagged_share": (tp + fp) / n,
                "tp": tp.astype(int),
                "fp": fp.astype(int),
            }
        )


def calibration_table(bins: pd.DataFrame, *, n_bins: int | None = None) -> pd.DataFrame:
    """Per equal-width bin: ``lower``, ``upper``, ``count``, ``mean_score``, ``positive_rate``,
    from per-bin sums ``bin``, ``n``, ``sum_score``, ``pos``.

    Examples:
        >>> b = pd.DataFrame({"bin": [0, 1], "n": [4, 2], "sum_score": [1.0, 1.5], "pos": [1, 2]})
        >>> calibration_table(b, n_bins=2).positive_rate.tolist()
        [0.25, 1.0]
    """
    n_bins = config.CALIBRATION_BINS if n_bins is None else n_bins
    b = bins.set_index("bin").reindex(range(n_bins))
    return pd.DataFrame(
        {
            "lower": np.arange(n_bins) / n_bins,
            "upper": np.arange(1, n_bins + 1) / n_bins,
            "count": b["n"].fillna(0).astype(int).to_numpy(),
            "mean_score": (b["sum_score"] / b["n"]).to_numpy(),
            "positive_rate": (b["pos"] / b["n"]).to_numpy(),
        }
    )


def expected_calibration_error(table: pd.DataFrame) -> float:
    """ECE = Σ_b (n_b / n) |mean score_b − positive rate_b| over non-empty bins.

    Examples:
        >>> t = pd.DataFrame({"count": [4, 2], "mean_score": [0.25, 0.75],
        ...                   "positive_rate": [0.25, 1.0]})
        >>> round(expected_calibration_error(t), 4)
        0.0833
    """
    t = table[table["count"] > 0]
    n = t["count"].sum()
    if not n:
        return math.nan
    return float((t["count"] / n * (t.mean_score - t.positive_rate).abs()).sum())
