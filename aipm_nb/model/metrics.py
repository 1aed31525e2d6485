"""Label metrics of a binary classifier from counts per distinct score (as scikit-learn)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from aipm_nb import config
from aipm_nb.errors import ParameterError

__all__ = ["BinaryMetrics", "binary_metrics_from_counts", "calibration_table", "threshold_table"]


METRIC_KEYS = ("roc_auc", "pr_auc", "log_loss", "brier", "ece", "precision", "recall", "f1",
               "accuracy")  # fmt: skip


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


def safe_div(a: float, b: float) -> float:
    return a / b if b else math.nan


def binary_metrics_from_counts(
    counts: pd.DataFrame, *, threshold: float = 0.5, alpha: float = 0.05
) -> BinaryMetrics:
    """Metrics from a table with one row per distinct ``score`` and its ``pos`` / ``neg`` counts.

    ROC AUC is the Mann-Whitney statistic (ties 1/2) with DeLong's standard error; PR AUC is
    scikit-learn's average precision; a prediction is positive when ``score >= threshold``.

    Examples:
        >>> c = pd.DataFrame({"score": [0.1, 0.4, 0.35, 0.8], "pos": [0, 0, 1, 1],
        ...                   "neg": [1, 1, 0, 0]})
        >>> round(binary_metrics_from_counts(c).roc_auc, 4)
        0.75
    """
    c = counts.groupby("score", sort=True)[["pos", "neg"]].sum()
    s = c.index.to_numpy(dtype=float)
    pos, neg = c["pos"].to_numpy(dtype=float), c["neg"].to_numpy(dtype=float)
    P, N = pos.sum(), neg.sum()
    n = P + N
    neg_below = np.cumsum(neg) - neg
    pos_above = pos[::-1].cumsum()[::-1] - pos
    auc = se = lo = hi = math.nan
    if P > 0 and N > 0:
        v10 = (neg_below + 0.5 * neg) / N  # per positive at this score
        v01 = (pos_above + 0.5 * pos) / P  # per negative at this score
        auc = float((pos * v10).sum() / P)
        s10 = float((pos * (v10 - auc) ** 2).sum() / (P - 1)) if P > 1 else 0.0
        s01 = float((neg * (v01 - auc) ** 2).sum() / (N - 1)) if N > 1 else 0.0
        se = math.sqrt(s10 / P + s01 / N)
        z = sps.norm.ppf(1 - alpha / 2)
        lo, hi = max(0.0, auc - z * se), min(1.0, auc + z * se)
    # average precision: thresholds at distinct scores, descending
    tp_d, fp_d = np.cumsum(pos[::-1]), np.cumsum(neg[::-1])
    ap = math.nan
    if P > 0:
        prec = tp_d / (tp_d + fp_d)
        rec = tp_d / P
        ap = float(np.sum(np.diff(np.concatenate([[0.0], rec])) * prec))
    eps = config.LOG_LOSS_EPS
    p = np.clip(s, eps, 1 - eps)
    ll = float(-(pos * np.log(p) + neg * np.log1p(-p)).sum() / n) if n else math.nan
    brier = float((pos * (1 - s) ** 2 + neg * s**2).sum() / n) if n else math.nan
    flag = s >= threshold
    tp, fp = float(pos[flag].sum()), float(neg[flag].sum())
    fn, tn = P - tp, N - fp
    precision, recall = safe_div(tp, tp + fp), safe_div(tp, P)
    f1 = safe_div(2 * tp, 2 * tp + fp + fn)
    return BinaryMetrics(
        n=int(n), positives=int(P), roc_auc=auc, roc_auc_se=se, roc_auc_ci_lower=lo,
        roc_auc_ci_upper=hi, pr_auc=ap, log_loss=ll, brier=brier, precision=precision,
        recall=recall, f1=f1, accuracy=safe_div(tp + tn, n), tp=int(tp), fp=int(fp), tn=int(tn),
        fn=int(fn),
    )  # fmt: skip


def threshold_table(counts: pd.DataFrame, thresholds: Any = None) -> pd.DataFrame:
    """Precision, recall and share of traffic flagged (``score >= threshold``) per threshold."""
    c = counts.groupby("score", sort=True)[["pos", "neg"]].sum()
    s = c.index.to_numpy(dtype=float)
    pos, neg = c["pos"].to_numpy(dtype=float), c["neg"].to_numpy(dtype=float)
    ths = np.round(np.arange(0.05, 1.0, 0.05), 2) if thresholds is None else np.asarray(thresholds)
    # counts at or above each threshold
    tp_ge = pos[::-1].cumsum()[::-1]
    fp_ge = neg[::-1].cumsum()[::-1]
    idx = np.searchsorted(s, ths, side="left")
    tp = np.where(idx < len(s), tp_ge[np.minimum(idx, len(s) - 1)], 0.0)
    fp = np.where(idx < len(s), fp_ge[np.minimum(idx, len(s) - 1)], 0.0)
    P, n = pos.sum(), pos.sum() + neg.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame({
            "threshold": ths, "precision": np.where(tp + fp > 0, tp / (tp + fp), np.nan),
            "recall": tp / P if P else np.nan, "flagged_share": (tp + fp) / n,
            "tp": tp.astype(int), "fp": fp.astype(int),
        })  # fmt: skip


def choose_threshold(
    counts: pd.DataFrame,
    *,
    target_precision: float | None = None,
    target_recall: float | None = None,
    benefit: float | None = None,
    cost: float | None = None,
) -> dict[str, float] | None:
    """The threshold (a distinct score) that meets a target precision with the most recall, a
    target recall with the most precision, or maximises ``benefit * TP - cost * FP``."""
    table = threshold_table(counts, np.sort(counts["score"].unique()))
    if target_precision is not None:
        ok = table[table.precision >= target_precision]
        row = ok.sort_values(["recall", "threshold"], ascending=[False, True]).head(1)
    elif target_recall is not None:
        ok = table[table.recall >= target_recall]
        row = ok.sort_values(["precision", "threshold"], ascending=[False, False]).head(1)
    elif benefit is not None and cost is not None:
        value = benefit * table.tp - cost * table.fp
        row = table.assign(value=value).sort_values("value", ascending=False).head(1)
    else:
        raise ParameterError("give target_precision, target_recall, or benefit and cost")
    return None if row.empty else {k: float(v) for k, v in row.iloc[0].items()}


def calibration_table(bins: pd.DataFrame, *, n_bins: int = 10) -> pd.DataFrame:
    """Per equal-width bin: ``lower``, ``upper``, ``count``, ``mean_score``, ``positive_rate``."""
    b = bins.set_index("bin").reindex(range(n_bins))
    return pd.DataFrame({
        "lower": np.arange(n_bins) / n_bins, "upper": np.arange(1, n_bins + 1) / n_bins,
        "count": b["n"].fillna(0).astype(int).to_numpy(),
        "mean_score": (b["sum_score"] / b["n"]).to_numpy(),
        "positive_rate": (b["pos"] / b["n"]).to_numpy(),
    })  # fmt: skip


def expected_calibration_error(table: pd.DataFrame) -> float:
    """ECE = Σ_b (n_b / n) |mean score_b − positive rate_b| over non-empty bins."""
    t = table[table["count"] > 0]
    n = t["count"].sum()
    return float((t["count"] / n * (t.mean_score - t.positive_rate).abs()).sum()) if n else math.nan
