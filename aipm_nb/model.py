"""Model performance & drift from engine-side aggregates.

Label metrics come from one table of counts per distinct score (positives and negatives), which
is all that exact ROC AUC (ties count 1/2), average precision, log loss, Brier, the confusion
matrix and DeLong's AUC variance need; the calibration table from 10 equal-width bins; PSI from
counts per reference-decile bin; KS from counts per distinct value. Rows never reach pandas.

Conventions (DESIGN section 4): scikit-learn's metrics; log loss clips probabilities to
[1e-15, 1 - 1e-15]; ECE over bins ``min(floor(10 * score), 9)``; PSI over the reference's
deciles (linear interpolation, duplicates dropped, outer edges infinite, bins [lo, hi)),
shares floored at 1e-4; rows with a null label count for drift and volume, not label metrics.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from scipy import stats as sps

from aipm_nb import config
from aipm_nb.errors import DataError, ParameterError, SchemaError
from aipm_nb.markup import md
from aipm_nb.sources import open_source
from aipm_nb.summary import json_safe

__all__ = [
    "BinaryMetrics",
    "ModelResult",
    "analyze_model",
    "binary_metrics_from_counts",
    "group_metrics",
    "calibration_table",
    "psi_from_counts",
    "psi_status",
    "regression_metrics",
    "summary_markdown",
    "threshold_table",
]

METRIC_KEYS = ("roc_auc", "pr_auc", "log_loss", "brier", "ece", "precision", "recall", "f1",
               "accuracy")  # fmt: skip


# ---------------------------------------------------------------------------------------
# metrics from counts per distinct score


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


def _count_if(cond: ir.BooleanValue) -> ir.IntegerScalar:
    """Rows where ``cond`` holds (portable: PostgreSQL cannot cast boolean to bigint)."""
    return cond.ifelse(1, 0).sum()


def _div(a: float, b: float) -> float:
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
    precision, recall = _div(tp, tp + fp), _div(tp, P)
    f1 = _div(2 * tp, 2 * tp + fp + fn)
    return BinaryMetrics(
        n=int(n), positives=int(P), roc_auc=auc, roc_auc_se=se, roc_auc_ci_lower=lo,
        roc_auc_ci_upper=hi, pr_auc=ap, log_loss=ll, brier=brier, precision=precision,
        recall=recall, f1=f1, accuracy=_div(tp + tn, n), tp=int(tp), fp=int(fp), tn=int(tn),
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


def psi_status(psi: float) -> str:
    """``stable`` (< 0.1), ``moderate`` (< 0.25) or ``major``."""
    if math.isnan(psi):
        return "unknown"
    return ("stable" if psi < config.PSI_STABLE
            else "moderate" if psi < config.PSI_MODERATE else "major")  # fmt: skip


def psi_from_counts(ref: Sequence[float], cur: Sequence[float]) -> float:
    """PSI = Σ (cur − ref)·ln(cur/ref) over bin shares floored at 1e-4.

    Examples:
        >>> round(psi_from_counts([50, 50], [50, 50]), 6)
        0.0
        >>> round(psi_from_counts([90, 10], [50, 50]), 4)
        0.8789
    """
    r = np.asarray(ref, dtype=float)
    c = np.asarray(cur, dtype=float)
    if r.sum() == 0 or c.sum() == 0:
        return math.nan
    r = np.maximum(r / r.sum(), config.PSI_FLOOR)
    c = np.maximum(c / c.sum(), config.PSI_FLOOR)
    return float(np.sum((c - r) * np.log(c / r)))


def _ks_from_counts(values: pd.DataFrame) -> float:
    """Two-sample KS statistic from counts per distinct value (``value``, ``ref``, ``cur``)."""
    v = values.groupby("value", sort=True)[["ref", "cur"]].sum()
    r, c = v["ref"].to_numpy(dtype=float), v["cur"].to_numpy(dtype=float)
    if r.sum() == 0 or c.sum() == 0:
        return math.nan
    return float(np.max(np.abs(np.cumsum(r) / r.sum() - np.cumsum(c) / c.sum())))


# ---------------------------------------------------------------------------------------
# engine side


def _score_counts(t: ir.Table, score: str, label: str, by: Sequence[str] = ()) -> pd.DataFrame:
    lab = t.filter(t[label].notnull())
    y = lab[label].cast("float64")
    out = (
        lab.group_by([*by, lab[score].name("score")]).aggregate(pos=y.sum(), n=lab.count())
    ).to_pandas()
    out["neg"] = out["n"] - out["pos"]
    return out


def _drift(t: ir.Table, cols: Sequence[str], is_cur: ir.BooleanValue) -> list[dict[str, Any]]:
    """PSI and KS of every column, current vs reference, exactly and in the engine.

    Per column the rows are grouped by distinct value with cumulative reference / current
    counts; from that small table come the KS statistic, the reference deciles (numpy's linear
    interpolation between order statistics) and the counts per PSI bin [lo, hi).
    """
    xs = {c: t[c].cast("float64") for c in cols}
    oks = {c: xs[c].notnull() & ~xs[c].isnan() for c in cols}
    tot = t.aggregate(**{
        f"{side}{i}": _count_if(oks[c] & (is_cur if side == "c" else ~is_cur))
        for i, c in enumerate(cols) for side in ("r", "c")
    }).to_pandas().iloc[0]  # fmt: skip
    w = ibis.cumulative_window(order_by="value")
    out = []
    for i, c in enumerate(cols):
        R, C = int(tot[f"r{i}"] or 0), int(tot[f"c{i}"] or 0)
        if R == 0 or C == 0:
            out.append({"column": c, "psi": math.nan, "ks_statistic": math.nan,
                        "status": "unknown", "edges": [], "ref_counts": [],
                        "cur_counts": []})  # fmt: skip
            continue
        g = (
            t.filter(oks[c]).mutate(value=xs[c], __cur=is_cur)
            .group_by("value")
            .aggregate(r=_count_if(~ibis._["__cur"]), c=_count_if(ibis._["__cur"]))
        )  # fmt: skip
        g = g.mutate(cr=g.r.sum().over(w), cc=g.c.sum().over(w))
        aggs: dict[str, ir.Value] = {"ks": (g.cr / R - g.cc / C).abs().max()}
        plan = []
        for k in range(1, config.PSI_BINS):
            h = (R - 1) * k / config.PSI_BINS
            lo = math.floor(h)
            hi = min(lo + 1, R - 1)
            aggs[f"lo{k}"] = g.value.min(where=g.cr > lo)
            aggs[f"hi{k}"] = g.value.min(where=g.cr > hi)
            plan.append((k, h - lo))
        q = g.aggregate(**aggs).to_pandas().iloc[0]
        raw = [q[f"lo{k}"] + frac * (q[f"hi{k}"] - q[f"lo{k}"]) for k, frac in plan]
        edges = sorted({float(e) for e in raw})
        below = g.aggregate(**{
            f"{side}{k}": g[side].sum(where=g.value < e)
            for k, e in enumerate(edges) for side in ("r", "c")
        }).to_pandas().iloc[0]  # fmt: skip
        ref_cum = [0.0] + [float(below[f"r{k}"] or 0) for k in range(len(edges))] + [float(R)]
        cur_cum = [0.0] + [float(below[f"c{k}"] or 0) for k in range(len(edges))] + [float(C)]
        r = list(np.diff(ref_cum))
        cu = list(np.diff(cur_cum))
        psi = psi_from_counts(r, cu)
        out.append({"column": c, "psi": psi, "ks_statistic": float(q["ks"]),
                    "status": psi_status(psi), "edges": edges, "ref_counts": r,
                    "cur_counts": cu})  # fmt: skip
    return out


@dataclass(frozen=True)
class ModelResult:
    """Everything `analyze_model` found."""

    n: int
    n_labelled: int
    threshold: float
    metrics: BinaryMetrics | None
    ece: float
    calibration: pd.DataFrame
    thresholds: pd.DataFrame
    segments: pd.DataFrame
    windows: pd.DataFrame
    drift: pd.DataFrame
    score_drift_by_window: pd.DataFrame
    reference_end: pd.Timestamp
    reference_metrics: BinaryMetrics | None
    current_metrics: BinaryMetrics | None
    curves: pd.DataFrame  # counts per distinct score (labelled rows), for ROC / PR plots
    score_hist: pd.DataFrame
    chosen_threshold: dict[str, float] | None = None
    metric_floor: float | None = None
    window_metric: str = "roc_auc"
    warnings: tuple[dict[str, str], ...] = field(default=())

    def metrics_dict(self) -> dict[str, float | None]:
        m = self.metrics
        vals: dict[str, Any] = {k: getattr(m, k) if m else math.nan for k in METRIC_KEYS
                                if k != "ece"}  # fmt: skip
        vals["ece"] = self.ece
        return {k: json_safe(vals[k]) for k in METRIC_KEYS}

    def to_dict(self) -> dict[str, Any]:
        """The ``result`` object of the JSON summary (DESIGN section 5)."""
        cal = [{k: json_safe(v) if k != "count" else int(v) for k, v in r.items()}
               for r in self.calibration.to_dict("records")]  # fmt: skip
        segs = [{k: (json_safe(v) if isinstance(v, float) else v) for k, v in r.items()}
                for r in self.segments.to_dict("records")]  # fmt: skip
        drift = [{"column": r["column"], "psi": json_safe(r["psi"]),
                  "ks_statistic": json_safe(r["ks_statistic"]), "status": r["status"]}
                 for r in self.drift.to_dict("records")]  # fmt: skip
        return {
            "n": self.n, "n_labelled": self.n_labelled,
            "metrics": self.metrics_dict(), "calibration": cal, "segments": segs, "drift": drift,
        }  # fmt: skip

    def to_pandas(self) -> pd.DataFrame:
        return pd.DataFrame([self.metrics_dict()])

    def _repr_html_(self) -> str:
        return self.to_pandas().to_html(index=False)


def analyze_model(
    source: Any,
    *,
    score_col: str = "score",
    label_col: str = "label",
    time_col: str = "event_time",
    segment_cols: Sequence[str] = (),
    feature_cols: Sequence[str] = (),
    threshold: float = 0.5,
    reference_end: Any = None,
    window: str = "week",
    metric_floor: float | None = None,
    window_metric: str = "roc_auc",
    target_precision: float | None = None,
    target_recall: float | None = None,
    table: str | None = None,
) -> ModelResult:
    """Performance, calibration, segments, windows and drift of a binary classifier's log.

    Args:
        source: Predictions, one row per prediction (anything `aipm_nb.sources` opens).
        score_col: Predicted probability in [0, 1].
        label_col: Observed 0/1 outcome; null = not yet labelled.
        time_col: Prediction time.
        segment_cols: Columns to break metrics down by (worst first).
        feature_cols: Numeric columns checked for drift (the score always is).
        threshold: A prediction is positive when ``score >= threshold``.
        reference_end: Drift reference = rows before this time; default the first half of the
            time range. Current = rows from it on.
        window: ``"day"`` or ``"week"`` windows for metrics over time.
        metric_floor: Alert when ``window_metric`` falls below this in a window.
        window_metric: Metric tracked per window (``roc_auc``, ``pr_auc``, ``precision`` ...).
        target_precision / target_recall: Find the threshold that meets it.
        table: Table name in a database source.
    """
    if not 0 <= threshold <= 1:
        raise ParameterError(f"threshold must be in [0, 1]; got {threshold}")
    if window not in ("day", "week"):
        raise ParameterError(f"window must be 'day' or 'week'; got {window!r}")
    if window_metric not in METRIC_KEYS or window_metric == "ece":
        raise ParameterError(f"window_metric must be one of {METRIC_KEYS[:-1]}; got "
                             f"{window_metric!r}")  # fmt: skip
    required = {score_col: "numeric", label_col: "any", time_col: "timestamp"}
    required |= {c: "any" for c in segment_cols}
    required |= {c: "numeric" for c in feature_cols}
    params = {score_col: "score_col", label_col: "label_col", time_col: "time_col"}
    params |= {c: "segment_cols" for c in segment_cols} | {c: "feature_cols" for c in feature_cols}
    # allow_empty: the checks below count the rows
    src = open_source(source, table=table, required=required, name="predictions",
                      allow_empty=True, parameters=params)  # fmt: skip
    t, label = src.table, src.label
    t = _numeric_label(t, label_col, label)
    warnings: list[dict[str, str]] = []
    s, y = t[score_col].cast("float64"), t[label_col].cast("float64")
    chk = t.aggregate(
        n=t.count(), n_lab=y.count(), bad_score=_count_if(s.isnull() | (s < 0) | (s > 1)),
        bad_label=_count_if(y.notnull() & (y != 0) & (y != 1)), smin=s.min(), smax=s.max(),
        t0=t[time_col].min(), t1=t[time_col].max(),
    ).to_pandas().iloc[0]  # fmt: skip
    n, n_lab = int(chk.n), int(chk.n_lab)
    if n == 0:
        raise DataError(f"{label} has no rows; expected at least one")
    if int(chk.bad_score):
        raise DataError(
            f"{label}: column {score_col!r} has {int(chk.bad_score)} values outside [0, 1] or "
            f"null (range {chk.smin:g} to {chk.smax:g}); expected probabilities"
        )
    if int(chk.bad_label):
        ex = t.filter(y.notnull() & (y != 0) & (y != 1)).select(label_col).limit(3).to_pandas()
        raise DataError(
            f"{label}: column {label_col!r} has {int(chk.bad_label)} values other than 0, 1 or "
            f"null (e.g. {', '.join(map(str, ex[label_col].tolist()))}); for a continuous "
            "label use aipm_nb.model.regression_metrics"
        )
    if n_lab == 0:
        warnings.append({"code": "no_labels", "message":
                         f"all {n:,} rows have a null {label_col!r}: label metrics are empty; "
                         "drift and volume are still computed"})  # fmt: skip
    if n > 1 and chk.smin == chk.smax:
        warnings.append({"code": "constant_score", "message":
                         f"every {score_col!r} is {chk.smax:g}: the model ranks nothing (ROC AUC "
                         "0.5) — check that the right column is used"})  # fmt: skip
    t0, t1 = pd.Timestamp(chk.t0), pd.Timestamp(chk.t1)
    ref_end = t0 + (t1 - t0) / 2 if reference_end is None else _like(reference_end, t0)
    if not t0 < ref_end <= t1:
        raise ParameterError(
            f"reference_end {ref_end} leaves an empty reference or current window; the data "
            f"runs from {t0} to {t1}"
        )
    t = t.mutate(__s=s, __y=y)
    lab = t.filter(t["__y"].notnull())

    is_cur = t[time_col] >= ibis.literal(ref_end.to_pydatetime())
    period = _score_counts(t.mutate(__cur=is_cur), "__s", "__y", by=["__cur"])
    counts = period.groupby("score", as_index=False)[["pos", "neg", "n"]].sum()
    metrics = ref_m = cur_m = None
    curves = counts[["score", "pos", "neg"]].sort_values("score")
    if n_lab:
        if counts.pos.sum() == 0 or counts.neg.sum() == 0:
            cls = "positive" if counts.pos.sum() else "negative"
            ap = "1.0 (every row is positive)" if cls == "positive" else "undefined"
            warnings.append({"code": "single_class", "message":
                             f"every labelled row is {cls}: ROC AUC is undefined and PR AUC "
                             f"(average precision, as scikit-learn) is {ap}"})  # fmt: skip
        metrics = binary_metrics_from_counts(counts, threshold=threshold)
    if len(period[~period.__cur]):
        ref_m = binary_metrics_from_counts(period[~period.__cur], threshold=threshold)
    if len(period[period.__cur]):
        cur_m = binary_metrics_from_counts(period[period.__cur], threshold=threshold)

    nb = config.CALIBRATION_BINS
    bins = (
        lab.mutate(bin=ibis.least((lab["__s"] * nb).floor().cast("int64"), nb - 1))
        .group_by("bin")
        .aggregate(n=ibis._.count(), sum_score=ibis._["__s"].sum(), pos=ibis._["__y"].sum())
        .to_pandas()
    )
    calibration = calibration_table(bins, n_bins=nb)
    ece = expected_calibration_error(calibration)

    segments = _segments(t, segment_cols, threshold)
    windows = _windows(t, time_col, window, threshold, window_metric, metric_floor)
    drift_rows = _drift(t, [score_col, *feature_cols], is_cur)
    drift = pd.DataFrame(drift_rows)
    by_window = _score_drift_by_window(t, time_col, window, is_cur, drift_rows[0]["edges"])
    if not windows.empty and (windows.n_labelled == 0).any():
        empty = windows[windows.n_labelled == 0].window.dt.strftime("%Y-%m-%d").tolist()
        warnings.append({"code": "unlabelled_windows", "message":
                         f"{len(empty)} {window} window(s) have no labels yet ({', '.join(empty)})"
                         ": their label metrics are empty"})  # fmt: skip
    if metric_floor is not None and not windows.empty and windows.below_floor.any():
        bad = windows[windows.below_floor].window.dt.strftime("%Y-%m-%d").tolist()
        warnings.append({"code": "below_floor", "message":
                         f"{window_metric} fell below {metric_floor} in {len(bad)} window(s): "
                         + ", ".join(bad)})  # fmt: skip
    chosen = None
    if n_lab and (target_precision is not None or target_recall is not None):
        chosen = choose_threshold(counts, target_precision=target_precision,
                                  target_recall=target_recall)  # fmt: skip
    hist = (
        t.mutate(bin=ibis.least((t["__s"] * 20).floor().cast("int64"), 19), __cur=is_cur)
        .group_by(["bin", "__cur"]).aggregate(n=ibis._.count()).to_pandas()
    )  # fmt: skip
    return ModelResult(
        n=n, n_labelled=n_lab, threshold=threshold, metrics=metrics, ece=ece,
        calibration=calibration, thresholds=threshold_table(counts) if n_lab else pd.DataFrame(),
        segments=segments, windows=windows, drift=drift, score_drift_by_window=by_window,
        reference_end=ref_end, reference_metrics=ref_m, current_metrics=cur_m, curves=curves,
        score_hist=hist, chosen_threshold=chosen, metric_floor=metric_floor,
        window_metric=window_metric, warnings=tuple(warnings),
    )  # fmt: skip


def group_metrics(t: ir.Table, by: str, *, threshold: float = 0.5,
                  alpha: float = 0.05) -> pd.DataFrame:  # fmt: skip
    """`BinaryMetrics` per value of ``by``, computed in the engine with window functions over
    the (group, distinct score) counts: one small row per group comes back.

    ``t`` has the score as ``__s`` and the label as ``__y`` (null = unlabelled). Same formulas
    as `binary_metrics_from_counts` (Mann-Whitney AUC with ties 1/2, DeLong's variance, average
    precision over distinct thresholds, clipped log loss)."""
    sizes = t.group_by(by).aggregate(n=ibis._.count())
    lab = t.filter(t["__y"].notnull())
    g = lab.group_by([by, "__s"]).aggregate(pos=lab["__y"].sum(), neg=(1 - lab["__y"]).sum())
    asc = ibis.cumulative_window(group_by=by, order_by="__s")  # one sort per group
    whole = ibis.window(group_by=by)
    g = g.mutate(cpos=g.pos.sum().over(asc), cneg=g.neg.sum().over(asc),
                 tpos=g.pos.sum().over(whole), tneg=g.neg.sum().over(whole))  # fmt: skip
    g = g.mutate(
        a=g.cneg - g.neg * 0.5,  # negatives below + half the ties
        b=g.tpos - g.cpos + g.pos * 0.5,  # positives above + half the ties
        tp_cum=g.tpos - g.cpos + g.pos,  # at or above this score
        fp_cum=g.tneg - g.cneg + g.neg,
    )
    eps = config.LOG_LOSS_EPS
    p = ibis.greatest(ibis.least(g["__s"], 1 - eps), eps)
    flag = g["__s"] >= threshold
    agg = g.group_by(by).aggregate(
        P=g.pos.sum(), N=g.neg.sum(), S1=(g.pos * g.a).sum(), S2=(g.pos * g.a * g.a).sum(),
        T2=(g.neg * g.b * g.b).sum(), AP=(g.pos * g.tp_cum / (g.tp_cum + g.fp_cum)).sum(),
        LL=-(g.pos * p.ln() + g.neg * (1 - p).ln()).sum(),
        BR=(g.pos * (1 - g["__s"]) ** 2 + g.neg * g["__s"] ** 2).sum(),
        TP=g.pos.sum(where=flag), FP=g.neg.sum(where=flag),
    )  # fmt: skip
    df = sizes.left_join(agg, by).select(sizes[by], "n", *[c for c in agg.columns if c != by])
    df = df.to_pandas().fillna({c: 0.0 for c in ("P", "N", "TP", "FP")})
    df = df.rename(columns={by: "group"})
    z = sps.norm.ppf(1 - alpha / 2)
    rows = []
    for r in df.itertuples(index=False):
        P, N = float(r.P), float(r.N)
        n_lab = P + N
        auc = se = math.nan
        if P > 0 and N > 0:
            auc = float(r.S1) / (P * N)
            s10 = (float(r.S2) / N**2 - P * auc**2) / (P - 1) if P > 1 else 0.0
            s01 = (float(r.T2) / P**2 - N * auc**2) / (N - 1) if N > 1 else 0.0
            se = math.sqrt(max(s10 / P + s01 / N, 0.0))
        tp, fp = float(r.TP), float(r.FP)
        fn, tn = P - tp, N - fp
        rows.append({
            "group": r.group, "n": int(r.n), "n_labelled": int(n_lab),
            "roc_auc": auc, "roc_auc_ci_lower": max(0.0, auc - z * se) if se == se else math.nan,
            "roc_auc_ci_upper": min(1.0, auc + z * se) if se == se else math.nan,
            "pr_auc": float(r.AP) / P if P > 0 else math.nan,
            "log_loss": float(r.LL) / n_lab if n_lab else math.nan,
            "brier": float(r.BR) / n_lab if n_lab else math.nan,
            "precision": _div(tp, tp + fp), "recall": _div(tp, P),
            "f1": _div(2 * tp, 2 * tp + fp + fn), "accuracy": _div(tp + tn, n_lab),
            "positive_rate": _div(P, n_lab),
        })  # fmt: skip
    return pd.DataFrame(rows)


def _segments(t: ir.Table, segment_cols: Sequence[str], threshold: float) -> pd.DataFrame:
    frames = []
    for col in segment_cols:
        m = group_metrics(t.mutate(__seg=t[col].cast("string")), "__seg", threshold=threshold)
        frames.append(m.rename(columns={"group": "value"}).assign(column=col))
    if not frames:
        return pd.DataFrame()
    cols = ["column", "value", "n", "n_labelled", "roc_auc", "roc_auc_ci_lower",
            "roc_auc_ci_upper", "pr_auc", "precision", "recall", "positive_rate"]  # fmt: skip
    df = pd.concat(frames, ignore_index=True)[cols]
    return df.sort_values(["roc_auc", "n"], ascending=[True, False], na_position="last",
                          ignore_index=True)  # fmt: skip


def _window_expr(ts: ir.TimestampValue, window: str) -> ir.TimestampValue:
    return ts.truncate("D" if window == "day" else "W")


def _windows(t: ir.Table, time_col: str, window: str, threshold: float, metric: str,
             floor: float | None) -> pd.DataFrame:  # fmt: skip
    m = group_metrics(t.mutate(__w=_window_expr(t[time_col], window)), "__w",
                      threshold=threshold).sort_values("group")  # fmt: skip
    ci = metric == "roc_auc"
    return pd.DataFrame({
        "window": pd.to_datetime(m["group"]).to_numpy(), "n": m["n"].to_numpy(),
        "n_labelled": m.n_labelled.to_numpy(), metric: m[metric].to_numpy(),
        "ci_lower": m.roc_auc_ci_lower.to_numpy() if ci else np.nan,
        "ci_upper": m.roc_auc_ci_upper.to_numpy() if ci else np.nan,
        "below_floor": (m[metric] < floor).to_numpy() if floor is not None else False,
    })  # fmt: skip


def _score_drift_by_window(t: ir.Table, time_col: str, window: str, is_cur: ir.BooleanValue,
                           edges: Sequence[float]) -> pd.DataFrame:  # fmt: skip
    """PSI of the score of every window against the whole reference (onset of drift)."""
    if not edges:
        return pd.DataFrame(columns=["window", "psi", "status"])
    b = sum(((t["__s"] >= e).ifelse(1, 0) for e in edges), ibis.literal(0))
    counts = (
        t.mutate(__b=b, __w=_window_expr(t[time_col], window), __cur=is_cur)
        .group_by(["__w", "__b", "__cur"]).aggregate(n=ibis._.count()).to_pandas()
    )  # fmt: skip
    ref = counts[~counts.__cur].groupby("__b").n.sum().reindex(range(len(edges) + 1), fill_value=0)
    rows = []
    for w, g in counts.groupby("__w", sort=True):
        cur = g.groupby("__b").n.sum().reindex(range(len(edges) + 1), fill_value=0)
        psi = psi_from_counts(ref, cur)
        rows.append({"window": pd.Timestamp(w), "psi": psi, "status": psi_status(psi),
                     "reference": bool((~g.__cur).all())})  # fmt: skip
    return pd.DataFrame(rows)


def regression_metrics(
    source: Any,
    *,
    prediction_col: str = "prediction",
    label_col: str = "label",
    table: str | None = None,
) -> dict[str, float]:
    """MAE, RMSE, MAPE and R² of a regression model from engine-side sums (null labels skipped).

    MAPE follows scikit-learn (``|y − ŷ| / max(|y|, eps)``)."""
    src = open_source(source, table=table, name="predictions",
                      required={prediction_col: "numeric", label_col: "numeric"})  # fmt: skip
    t = src.table
    y, p = t[label_col].cast("float64"), t[prediction_col].cast("float64")
    ok = y.notnull() & p.notnull()
    eps = float(np.finfo(np.float64).eps)
    r = t.filter(ok).aggregate(
        n=ibis._.count(), sae=(y - p).abs().sum(), sse=((y - p) ** 2).sum(),
        sape=((y - p).abs() / ibis.greatest(y.abs(), eps)).sum(), sy=y.sum(), syy=(y * y).sum(),
    ).to_pandas().iloc[0]  # fmt: skip
    n = float(r.n)
    if n == 0:
        raise DataError(f"{src.label} has no rows with both {prediction_col!r} and {label_col!r}")
    sst = float(r.syy) - float(r.sy) ** 2 / n
    return {"n": int(n), "mae": float(r.sae) / n, "rmse": math.sqrt(float(r.sse) / n),
            "mape": float(r.sape) / n,
            "r2": 1 - float(r.sse) / sst if sst > 0 else math.nan}  # fmt: skip


# ---------------------------------------------------------------------------------------
# presentation


def _numeric_label(t: ir.Table, label_col: str, label: str) -> ir.Table:
    """The label column as numbers; an all-null text column (a CSV export with no labels
    yet) is an unlabelled column, not a schema error."""
    dtype = t[label_col].type()
    if dtype.is_numeric() or dtype.is_boolean() or dtype.is_null():
        return t
    if dtype.is_string() and int(t[label_col].count().to_pandas()) == 0:
        return t.mutate(**{label_col: t[label_col].cast("float64")})
    raise SchemaError(
        f"{label} column {label_col!r} has type {dtype}; expected numeric 0/1 labels (null = not "
        "yet labelled); set label_col= to a numeric column",
        table=label, column=label_col,
    )  # fmt: skip


def _like(value: Any, ref: pd.Timestamp) -> pd.Timestamp:
    """``value`` as a timestamp comparable with ``ref``: a naive one is read in ``ref``'s zone."""
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise ParameterError(f"reference_end {value!r} is not a date or timestamp") from None
    if ref.tzinfo is not None and ts.tzinfo is None:
        return ts.tz_localize(ref.tzinfo)
    if ref.tzinfo is None and ts.tzinfo is not None:
        return ts.tz_convert("UTC").tz_localize(None)
    return ts


def summary_markdown(res: ModelResult) -> str:
    """Executive summary: AUC with its CI against the reference, drift and its onset, worst
    segment, calibration."""
    lines = []
    m, ref, cur = res.metrics, res.reference_metrics, res.current_metrics
    if m is None or math.isnan(m.roc_auc):
        lines.append(f"**No label metrics**: {res.n_labelled:,} of {res.n:,} predictions have a "
                     "usable label.")  # fmt: skip
    else:
        line = (f"**AUC {m.roc_auc:.3f}** ({m.roc_auc_ci_lower:.3f}–{m.roc_auc_ci_upper:.3f}, "
                f"95% DeLong CI) over {res.n_labelled:,} labelled predictions")  # fmt: skip
        if ref and cur and not math.isnan(cur.roc_auc) and not math.isnan(ref.roc_auc):
            word = "down" if cur.roc_auc < ref.roc_auc else "up"
            line += (f"; {cur.roc_auc:.3f} since {res.reference_end:%d %b %Y}, {word} from "
                     f"{ref.roc_auc:.3f} in the reference period")  # fmt: skip
        lines.append(line + ".")
        lines.append(
            f"At threshold {res.threshold:g}: precision {m.precision:.1%}, recall {m.recall:.1%}"
            f", F1 {m.f1:.3f}, accuracy {m.accuracy:.1%}. Calibration error (ECE) "
            f"{res.ece:.3f}" + (" — scores over-predict" if _over(res) else
                                " — scores under-predict" if _over(res) is False else "") + "."
        )  # fmt: skip
    d = res.drift.set_index("column")
    score = d.iloc[0]
    onset = res.score_drift_by_window
    onset = onset[(~onset.reference) & (onset.status != "stable")] if len(onset) else onset
    since = f" since {onset.window.iloc[0]:%d %b %Y}" if len(onset) else ""
    since = since if score.status != "stable" else ""
    lines.append(f"**Score drift PSI {score.psi:.2f} ({score.status})**{since}"
                 f", KS {score.ks_statistic:.3f} (current vs reference, split at "
                 f"{res.reference_end:%d %b %Y}).")  # fmt: skip
    moved = d.iloc[1:][d.iloc[1:].status != "stable"]
    if len(moved):
        drifted = [f"{md(c)} PSI {r.psi:.2f} ({r.status})" for c, r in moved.iterrows()]
        lines.append("Drifted features: " + ", ".join(drifted) + ".")
    if not res.segments.empty and res.segments.roc_auc.notna().any():
        w = res.segments.dropna(subset=["roc_auc"]).iloc[0]
        lines.append(f"**Worst segment: {md(w.column)} = {md(w['value'])}** (AUC {w.roc_auc:.3f}, "
                     f"{w.roc_auc_ci_lower:.3f}–{w.roc_auc_ci_upper:.3f}; {int(w.n_labelled):,} "
                     "labelled).")  # fmt: skip
    if res.chosen_threshold:
        c = res.chosen_threshold
        lines.append(f"Threshold {c['threshold']:.4g} meets the target: precision "
                     f"{c['precision']:.1%}, recall {c['recall']:.1%}, flags "
                     f"{c['flagged_share']:.1%} of traffic.")  # fmt: skip
    lines.append(f"{res.n:,} predictions, {res.n_labelled:,} labelled "
                 f"({res.n - res.n_labelled:,} not yet labelled count for drift only)."
                 )  # fmt: skip
    return "\n\n".join(lines)


def _over(res: ModelResult) -> bool | None:
    c = res.calibration[res.calibration["count"] > 0]
    if c.empty:
        return None
    gap = float(((c.mean_score - c.positive_rate) * c["count"]).sum() / c["count"].sum())
    if abs(gap) < 0.01:
        return None
    return gap > 0
