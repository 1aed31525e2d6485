"""Model performance & drift in one call: `analyze_model` and its `ModelResult`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from aipm_nb import config
from aipm_nb.errors import DataError, EmptyTableError, ParameterError
from aipm_nb.model.drift import drift_by_window, feature_drift
from aipm_nb.model.engine import (
    classifier_sums,
    comparable_timestamp,
    count_if,
    numeric_label,
    score_counts,
    score_curve,
    segment_metrics,
    window_group_metrics,
    window_metrics,
)
from aipm_nb.model.estimate import estimate_by_window
from aipm_nb.model.metrics import (
    METRIC_KEYS,
    WINDOW_METRICS,
    BinaryMetrics,
    ThresholdChoice,
    calibration_table,
    choose_threshold,
    expected_calibration_error,
    threshold_table,
)
from aipm_nb.results import Result, Verdict, jsonable, warning
from aipm_nb.sources import open_source
from aipm_nb.stats.cbpe import ESTIMATED_METRICS
from aipm_nb.validation import check_scalar

__all__ = ["ModelResult", "analyze_model"]


@dataclass(frozen=True)
class ModelResult(Result):
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
    curves: pd.DataFrame  # labelled rows per 1/2000 score bin (`score_curve`), for ROC / PR plots
    score_hist: pd.DataFrame
    chosen_threshold: ThresholdChoice | None = None
    metric_floor: float | None = None
    window_metric: str = "roc_auc"
    window: str | None = "week"  # None: windows were turned off
    warnings: tuple[dict[str, str], ...] = field(default=())
    alpha: float = config.ALPHA
    #: per window x metric: the estimate from calibrated scores (CBPE) with its ±3 SE band and
    #: the realized value where labels exist (`aipm_nb.model.estimate`)
    estimated: pd.DataFrame = field(default_factory=pd.DataFrame, compare=False)
    estimate_calibration: str | None = None  # "isotonic" or "none"

    def metrics_dict(self) -> dict[str, float | None]:
        """The label metrics of DESIGN section 5 (None where undefined)."""
        m = self.metrics
        vals: dict[str, Any] = {k: getattr(m, k) if m else math.nan for k in WINDOW_METRICS}
        vals["ece"] = self.ece
        return {k: jsonable(vals[k]) for k in METRIC_KEYS}

    @property
    def verdict(self) -> Verdict:
        """``healthy`` / ``watch`` / ``degraded`` (`aipm_nb.model.verdict`)."""
        from aipm_nb.model.verdict import model_verdict  # the verdict reads this result

        return model_verdict(self)

    def to_dict(self) -> dict[str, Any]:
        """The ``result`` object of the JSON summary (DESIGN section 5)."""
        drift = self.drift[["column", "psi", "ks_statistic", "status"]] if len(self.drift) else []
        return {
            "verdict": self.verdict.to_dict(),
            "n": self.n,
            "n_labelled": self.n_labelled,
            "metrics": self.metrics_dict(),
            "calibration": jsonable(self.calibration),
            "segments": jsonable(self.segments),
            "drift": jsonable(drift),
            "estimated": jsonable(
                self.estimated[["window", "metric", "estimate", "lower", "upper", "realized"]]
                if len(self.estimated)
                else []
            ),
        }

    def to_pandas(self) -> pd.DataFrame:
        """One row of the label metrics."""
        return pd.DataFrame([self.metrics_dict()])


def analyze_model(
    source: Any,
    *,
    score_col: str = "score",
    label_col: str | None = "label",
    time_col: str = "event_time",
    segment_cols: Sequence[str] = (),
    feature_cols: Sequence[str] = (),
    threshold: float = 0.5,
    reference_end: Any = None,
    window: str | None = "week",
    metric_floor: float | None = None,
    window_metric: str = "roc_auc",
    target_precision: float | None = None,
    target_recall: float | None = None,
    table: str | None = None,
    ks: bool = True,
) -> ModelResult:
    """Performance, calibration, segments, windows and drift of a binary classifier's log.

    Args:
        source: Predictions, one row per prediction (anything `aipm_nb.sources` opens).
        score_col: Predicted probability in [0, 1].
        label_col: Observed 0/1 outcome; null = not yet labelled. None: no label column yet
            (drift and volume only).
        time_col: Prediction time.
        segment_cols: Columns to break metrics down by (worst first).
        feature_cols: Numeric columns checked for drift (the score always is).
        threshold: A prediction is positive when ``score >= threshold``.
        reference_end: Drift reference = rows before this time; default the first half of the
            time range. Current = rows from it on.
        window: ``"day"`` or ``"week"`` windows for metrics over time. None: no windows (no
            metrics per window, no score PSI per window, no CBPE estimates; saves one sort of
            the labelled rows and the per-window queries on large logs).
        metric_floor: Alert when ``window_metric`` falls below this in a window (needs
            ``window``).
        window_metric: Metric tracked per window (``roc_auc``, ``pr_auc``, ``precision`` ...).
        target_precision: Find the threshold that meets this precision with the most recall.
        target_recall: Find the threshold that meets this recall with the most precision.
        table: Table name in a database source.
        ks: Compute the KS statistic of every drift column (exact; on 10M rows without drift
            it costs about 2 s per column). False: ``ks_statistic`` is NaN, PSI unchanged.
    """
    check_scalar(ks, "ks", typ=bool)
    check_scalar(threshold, "threshold", typ=float, ge=0, le=1)
    if window is not None:
        check_scalar(window, "window", one_of=("day", "week"))
    elif metric_floor is not None:
        raise ParameterError(
            f"metric_floor={metric_floor} is checked per window, but window=None turns windows "
            'off; set window="week" (or "day"), or drop metric_floor'
        )
    check_scalar(window_metric, "window_metric", one_of=WINDOW_METRICS)
    t, label = _open_predictions(
        source, table, score_col, label_col, time_col, segment_cols, feature_cols
    )
    label_col = label_col or _NO_LABEL
    n, n_lab, (t0, t1), warnings = _check_predictions(t, label, score_col, label_col, time_col)
    ref_end = (
        t0 + (t1 - t0) / 2 if reference_end is None else comparable_timestamp(reference_end, t0)
    )
    if not t0 < ref_end <= t1:
        raise ParameterError(
            f"reference_end {ref_end} leaves an empty reference or current window; the data "
            f"runs from {t0} to {t1}"
        )
    t = t.mutate(__s=t[score_col].cast("float64"), __y=t[label_col].cast("float64"))
    is_cur = t[time_col] >= ibis.literal(ref_end.to_pydatetime())
    metrics, ref_m, cur_m = _label_metrics(t, is_cur, threshold, warnings)
    curve = score_curve(t)
    calibration = _calibration(t)
    span = (t0, t1)
    windows, per_window = _no_windows(window_metric), None
    if window is not None:
        per_window = window_group_metrics(t, time_col, window, threshold)  # once: chart, CBPE
        windows = window_metrics(t, time_col, window, threshold, window_metric, metric_floor,
                                 span, per_window=per_window)  # fmt: skip
        warnings += _window_warnings(windows, window, window_metric, metric_floor)
    drift_rows = feature_drift(t, [score_col, *feature_cols], is_cur, ks=ks)
    estimated, est_cal = pd.DataFrame(), None
    if n_lab and window is not None:
        floor_metric = window_metric if window_metric in ESTIMATED_METRICS else "roc_auc"
        try:
            estimated, cal = estimate_by_window(
                t, time_col, window, threshold, ~is_cur, span, label=label,
                metric_floor=metric_floor, floor_metric=floor_metric, realized=per_window,
            )  # fmt: skip
            est_cal = cal.method
        except DataError as exc:  # no labelled reference row: no estimates, say why
            warnings.append(warning("no_labels", f"no performance estimates: {exc}"))
    chosen = None
    if n_lab and (target_precision is not None or target_recall is not None):
        chosen = choose_threshold(
            # exact: the counts per distinct score, pulled only when a target is asked for
            score_counts(t, "__s", "__y"),
            target_precision=target_precision,
            target_recall=target_recall,
        )
    return ModelResult(
        n=n,
        n_labelled=n_lab,
        threshold=threshold,
        metrics=metrics,
        ece=expected_calibration_error(calibration),
        calibration=calibration,
        thresholds=threshold_table(curve) if n_lab else pd.DataFrame(),
        segments=segment_metrics(t, segment_cols, threshold),
        windows=windows,
        drift=pd.DataFrame(drift_rows),
        score_drift_by_window=drift_by_window(
            t, time_col, window, is_cur, drift_rows[0]["edges"], span
        ),
        reference_end=ref_end,
        reference_metrics=ref_m,
        current_metrics=cur_m,
        curves=curve,
        score_hist=_score_hist(t, is_cur),
        chosen_threshold=chosen,
        metric_floor=metric_floor,
        window_metric=window_metric,
        window=window,
        warnings=tuple(warnings),
        estimated=estimated,
        estimate_calibration=est_cal,
    )


#: The label column of a table without one (``label_col=None``): every row unlabelled.
_NO_LABEL = "__no_label"


def _open_predictions(
    source: Any,
    table: str | None,
    score_col: str,
    label_col: str | None,
    time_col: str,
    segment_cols: Sequence[str],
    feature_cols: Sequence[str],
) -> tuple[ir.Table, str]:
    required = {score_col: "numeric", time_col: "timestamp"}
    if label_col:
        required[label_col] = "any"
    required |= {c: "any" for c in segment_cols}
    required |= {c: "numeric" for c in feature_cols}
    params = {score_col: "score_col", time_col: "time_col"}
    if label_col:
        params[label_col] = "label_col"
    params |= {c: "segment_cols" for c in segment_cols} | {c: "feature_cols" for c in feature_cols}
    # allow_empty: _check_predictions counts the rows
    src = open_source(
        source,
        table=table,
        required=required,
        name="predictions",
        allow_empty=True,
        parameters=params,
    )
    if not label_col:
        return src.table.mutate(**{_NO_LABEL: ibis.null("float64")}), src.label
    return numeric_label(src.table, label_col, src.label), src.label


def _check_predictions(
    t: ir.Table, label: str, score_col: str, label_col: str, time_col: str
) -> tuple[int, int, tuple[pd.Timestamp, pd.Timestamp], list[dict[str, str]]]:
    """Rows, labelled rows, the time range and warnings, from one engine query; scores outside
    [0, 1] and labels other than 0/1 are a `DataError`.
    """
    s, y = t[score_col].cast("float64"), t[label_col].cast("float64")
    chk = (
        t.aggregate(
            n=t.count(),
            n_lab=y.count(),
            bad_score=count_if(s.isnull() | (s < 0) | (s > 1)),
            bad_label=count_if(y.notnull() & (y != 0) & (y != 1)),
            smin=s.min(),
            smax=s.max(),
            t0=t[time_col].min(),
            t1=t[time_col].max(),
        )
        .to_pandas()
        .iloc[0]
    )
    n, n_lab = int(chk.n), int(chk.n_lab)
    if n == 0:
        raise EmptyTableError(f"{label} has no rows; expected at least one", table=label)
    if int(chk.bad_score):
        raise DataError(
            f"{label}: column {score_col!r} has {int(chk.bad_score)} values outside [0, 1] or "
            f"null (range {chk.smin:g} to {chk.smax:g}); expected probabilities",
            table=label,
            column=score_col,
            count=int(chk.bad_score),
        )
    if int(chk.bad_label):
        ex = t.filter(y.notnull() & (y != 0) & (y != 1)).select(label_col).limit(3).to_pandas()
        examples = ex[label_col].tolist()
        raise DataError(
            f"{label}: column {label_col!r} has {int(chk.bad_label)} values other than 0, 1 or "
            f"null (e.g. {', '.join(map(str, examples))}); for a continuous "
            "label use aipm_nb.model.regression_metrics",
            table=label,
            column=label_col,
            count=int(chk.bad_label),
            examples=examples,
        )
    warnings = []
    if n_lab == 0:
        which = "no label column" if label_col == _NO_LABEL else f"a null {label_col!r}"
        msg = (
            f"all {n:,} rows have {which}: label metrics are empty; drift and volume are "
            "still computed"
        )
        warnings.append(warning("no_labels", msg))
    if n > 1 and chk.smin == chk.smax:
        warnings.append(
            warning(
                "constant_score",
                f"every {score_col!r} is {chk.smax:g}: the "
                "model ranks nothing (ROC AUC 0.5) — check that the right "
                "column is used",
            )
        )
    return n, n_lab, (pd.Timestamp(chk.t0), pd.Timestamp(chk.t1)), warnings


def _label_metrics(
    t: ir.Table, is_cur: ir.BooleanValue, threshold: float, warnings: list[dict[str, str]]
) -> tuple[BinaryMetrics | None, BinaryMetrics | None, BinaryMetrics | None]:
    """The metrics overall, on the reference and on the current rows: `ClassifierSums` from two
    engine queries (one small row per group, however many distinct scores).
    """
    whole = classifier_sums(t, None, threshold=threshold)
    by_period = classifier_sums(t.mutate(__g=is_cur), "__g", threshold=threshold)
    sums = {k: s for k, (_, s) in by_period.items() if s.positives + s.negatives > 0}
    metrics = None
    ((_, total),) = whole.values()  # one group: every row
    if total.positives + total.negatives > 0:
        if total.positives == 0 or total.negatives == 0:
            cls = "positive" if total.positives else "negative"
            ap = "1.0 (every row is positive)" if cls == "positive" else "undefined"
            warnings.append(
                warning(
                    "single_class",
                    f"every labelled row is {cls}: ROC AUC is undefined and PR AUC (average "
                    f"precision, as scikit-learn) is {ap}",
                )
            )
        metrics = total.metrics()
    ref_m = sums[False].metrics() if False in sums else None
    cur_m = sums[True].metrics() if True in sums else None
    return metrics, ref_m, cur_m


def _calibration(t: ir.Table) -> pd.DataFrame:
    nb = config.CALIBRATION_BINS
    lab = t.filter(t["__y"].notnull())
    bins = (
        lab.mutate(bin=ibis.least((lab["__s"] * nb).floor().cast("int64"), nb - 1))
        .group_by("bin")
        .aggregate(n=ibis._.count(), sum_score=ibis._["__s"].sum(), pos=ibis._["__y"].sum())
        .to_pandas()
    )
    return calibration_table(bins, n_bins=nb)


def _no_windows(metric: str) -> pd.DataFrame:
    """`ModelResult.windows` with ``window=None``: no rows, the columns of `window_metrics`."""
    cols = ["window", "n", "n_labelled", metric, "ci_lower", "ci_upper", "partial", "below_floor"]
    return pd.DataFrame(columns=cols)


def _window_warnings(
    windows: pd.DataFrame, window: str, window_metric: str, metric_floor: float | None
) -> list[dict[str, str]]:
    out = []
    if not windows.empty and (windows.n_labelled == 0).any():
        empty = windows[windows.n_labelled == 0].window.dt.strftime("%Y-%m-%d").tolist()
        out.append(
            warning(
                "unlabelled_windows",
                f"{len(empty)} {window} window(s) have no "
                f"labels yet ({', '.join(empty)}): their label metrics are empty",
            )
        )
    if metric_floor is not None and not windows.empty and windows.below_floor.any():
        bad = windows[windows.below_floor].window.dt.strftime("%Y-%m-%d").tolist()
        out.append(
            warning(
                "below_floor",
                f"{window_metric} fell below {metric_floor} in "
                f"{len(bad)} window(s): " + ", ".join(bad),
            )
        )
    return out


def _score_hist(t: ir.Table, is_cur: ir.BooleanValue) -> pd.DataFrame:
    """Rows per 1/20 score bin in the reference and the current rows: ``bin``, ``period``
    (``"reference"`` / ``"current"``), ``n``.
    """
    period = is_cur.ifelse("current", "reference")
    return (
        t.mutate(bin=ibis.least((t["__s"] * 20).floor().cast("int64"), 19), period=period)
        .group_by(["bin", "period"])
        .aggregate(n=ibis._.count())
        .to_pandas()
    )
