"""Model performance & drift in one call: `analyze_model` and its `ModelResult`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import ibis
import pandas as pd

from aipm_nb import config
from aipm_nb.errors import DataError, ParameterError
from aipm_nb.model.drift import drift_by_window, feature_drift
from aipm_nb.model.engine import (
    comparable_timestamp,
    count_if,
    numeric_label,
    score_counts,
    segment_metrics,
    window_metrics,
)
from aipm_nb.model.metrics import (
    METRIC_KEYS,
    BinaryMetrics,
    binary_metrics_from_counts,
    calibration_table,
    choose_threshold,
    expected_calibration_error,
    threshold_table,
)
from aipm_nb.sources import open_source
from aipm_nb.summary import json_safe

__all__ = ["ModelResult", "analyze_model"]


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
    t = numeric_label(t, label_col, label)
    warnings: list[dict[str, str]] = []
    s, y = t[score_col].cast("float64"), t[label_col].cast("float64")
    chk = t.aggregate(
        n=t.count(), n_lab=y.count(), bad_score=count_if(s.isnull() | (s < 0) | (s > 1)),
        bad_label=count_if(y.notnull() & (y != 0) & (y != 1)), smin=s.min(), smax=s.max(),
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
    ref_end = (
        t0 + (t1 - t0) / 2 if reference_end is None else comparable_timestamp(reference_end, t0)
    )
    if not t0 < ref_end <= t1:
        raise ParameterError(
            f"reference_end {ref_end} leaves an empty reference or current window; the data "
            f"runs from {t0} to {t1}"
        )
    t = t.mutate(__s=s, __y=y)
    lab = t.filter(t["__y"].notnull())

    is_cur = t[time_col] >= ibis.literal(ref_end.to_pydatetime())
    period = score_counts(t.mutate(__cur=is_cur), "__s", "__y", by=["__cur"])
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

    segments = segment_metrics(t, segment_cols, threshold)
    windows = window_metrics(t, time_col, window, threshold, window_metric, metric_floor)
    drift_rows = feature_drift(t, [score_col, *feature_cols], is_cur)
    drift = pd.DataFrame(drift_rows)
    by_window = drift_by_window(t, time_col, window, is_cur, drift_rows[0]["edges"])
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
