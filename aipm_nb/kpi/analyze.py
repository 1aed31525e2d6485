"""KPI monitoring: buckets, baselines and statuses (DESIGN section 4, "KPI monitoring").

The engine returns one row per bucket (and segment); `aipm_nb.stats.monitoring` scores each
complete bucket against the ``baseline_periods`` complete buckets before it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ibis
import numpy as np
import pandas as pd

from aipm_nb.cohort.events import (
    _local_time,
    _now_local,
    _period_index,
    period_start,
    prepare_events,
    present_event_names,
    resolve_as_of,
)
from aipm_nb.errors import DataError, ParameterError
from aipm_nb.kpi.engine import event_aggregates, kpi_values, model_aggregates
from aipm_nb.kpi.format import format_value
from aipm_nb.kpi.spec import Kpi, parse_kpis
from aipm_nb.results import NULL_SEGMENT, Result, Verdict, jsonable
from aipm_nb.stats.drift import psi_status
from aipm_nb.stats.monitoring import kpi_status, p_chart, robust_scale, target_status
from aipm_nb.validation import check_scalar

__all__ = ["KpiResult", "format_value", "monitor_kpis", "paired_predictions"]

#: The template's default predictions, which belong to its default events.
SAMPLE_EVENTS, SAMPLE_PREDICTIONS = "sample:events", "sample:predictions"


def paired_predictions(source: Any, predictions_source: Any) -> Any:
    """``predictions_source``, except that the sample predictions (the template's default) are
    used only with the sample events: a user's own events never get the sample's model KPIs.

    Examples:
        >>> paired_predictions("sample:events", "sample:predictions")
        'sample:predictions'
        >>> paired_predictions("my_events.csv", "sample:predictions") is None
        True
    """
    from aipm_nb.notebook import paired_sample

    return paired_sample(source, predictions_source, sample=SAMPLE_EVENTS,
                         second_sample=SAMPLE_PREDICTIONS)  # fmt: skip


#: Fewer complete baseline buckets than this: ``insufficient_history``.
MIN_BASELINE = 4


@dataclass(frozen=True)
class KpiResult(Result):
    """KPIs of the latest complete bucket against their baselines.

    Attributes:
        kpis: One row per KPI: ``name``, ``type``, ``direction``, ``bucket`` (start of the
            scored bucket), ``value``, ``baseline`` (median, or p̄ for rates), ``change``
            (value / baseline − 1), ``z``, ``status``, ``volume``, ``target``,
            ``target_status``, ``incomplete_value`` (the bucket still running, never scored).
        series: Every bucket of every KPI: ``name``, ``bucket``, ``value``, ``volume``,
            ``complete``, ``baseline``, ``lower`` / ``upper`` (baseline ± z_alert·scale),
            ``z``, ``status`` (complete buckets with enough history).
        segments: The scored bucket per KPI and value of ``segment_col``: ``name``,
            ``segment``, ``value``, ``baseline``, ``change``, ``z``, ``status``, ``volume``,
            ``share_of_move`` (the segment's part of the overall move, for counts, users,
            sums and rates).
    """

    kpis: pd.DataFrame
    series: pd.DataFrame
    segments: pd.DataFrame
    period: str
    as_of: pd.Timestamp | None
    predictions_as_of: pd.Timestamp | None
    baseline_periods: int
    z_alert: float
    z_watch: float
    min_change: float
    min_volume: float
    segment_col: str | None
    verdict: Verdict
    rows: int
    prediction_rows: int
    warnings: tuple[dict[str, str], ...] = field(default=())

    def to_pandas(self) -> pd.DataFrame:
        """The scorecard (one row per KPI)."""
        return self.kpis.copy()

    def to_dict(self) -> dict[str, Any]:
        """DESIGN section 5's ``kpi`` result: ``kpis: [{"name", "bucket", "value", "baseline",
        "z", "status", "target"?, "target_status"?}]`` plus the series, segments and verdict.
        """
        kpis = []
        for r in self.kpis.to_dict("records"):
            row = {
                k: r[k]
                for k in (
                    "name",
                    "type",
                    "direction",
                    "bucket",
                    "value",
                    "baseline",
                    "change",
                    "z",
                    "status",
                    "volume",
                    "incomplete_value",
                )
            }
            if r["target"] is not None and not pd.isna(r["target"]):
                row |= {"target": r["target"], "target_status": r["target_status"]}
            kpis.append(row)
        return jsonable(
            {
                "period": self.period,
                "as_of": self.as_of,
                "predictions_as_of": self.predictions_as_of,
                "baseline_periods": self.baseline_periods,
                "rules": {
                    "z_alert": self.z_alert,
                    "z_watch": self.z_watch,
                    "min_change": self.min_change,
                    "min_volume": self.min_volume,
                },
                "kpis": kpis,
                "segment_col": self.segment_col,
                "segments": self.segments,
                "series": self.series,
                "verdict": self.verdict,
            }
        )

    def alerts(self) -> list[str]:
        """Names of the KPIs in ``alert``."""
        return self.kpis.loc[self.kpis.status == "alert", "name"].tolist()


def _index_of(ts: pd.Timestamp, period: str) -> int:
    """The engine's period index of a local timestamp (the inverse of `period_start`)."""
    if period == "day":
        return int((ts.normalize() - pd.Timestamp("1970-01-01")).days)
    if period == "week":
        return int((ts.normalize() - pd.Timestamp("1970-01-05")).days // 7)
    return ts.year * 12 + ts.month - 1


def _buckets(first: pd.Timestamp, as_of: pd.Timestamp, period: str) -> pd.DataFrame:
    """Every bucket from the one holding the first row to the one holding ``as_of``'s eve:
    ``__p``, ``bucket`` (start) and ``complete`` (ended by ``as_of`` and fully covered: a first
    bucket that starts before the data's first day is partial).
    """
    lo = _index_of(first, period)
    hi = max(lo, _index_of(as_of - pd.Timedelta(microseconds=1), period))
    idx = np.arange(lo, hi + 1)
    start = period_start(idx, period).reset_index(drop=True)
    end = period_start(idx + 1, period).reset_index(drop=True)
    complete = (end <= as_of) & (start >= first.normalize())
    return pd.DataFrame({"__p": idx, "bucket": start, "complete": complete.to_numpy()})


def _score(s: pd.DataFrame, kpi: Kpi, cfg: Mapping[str, Any]) -> pd.DataFrame:
    """Baseline, band, z and status of every complete bucket of one series (sorted by bucket)."""
    s = s.reset_index(drop=True).copy()
    n = len(s)
    cols = {c: np.full(n, np.nan) for c in ("baseline", "scale", "lower", "upper", "z")}
    status: list[str | None] = [None] * n
    vals, vol = s.value.to_numpy(float), s.volume.to_numpy(float)
    num, den = s.num.to_numpy(float), s.den.to_numpy(float)
    done = np.flatnonzero(s.complete.to_numpy(bool))
    bp = cfg["baseline_periods"]
    for pos, i in enumerate(done):
        base = done[max(0, pos - bp) : pos]
        valid = base[~np.isnan(vals[base])]
        if math.isnan(vals[i]):
            status[i] = "no_data"
            continue
        if len(valid) < MIN_BASELINE:
            status[i] = "insufficient_history"
            continue
        if kpi.type == "psi":  # already a distance from the baseline: the PSI thresholds
            st = psi_status(vals[i])
            big = st == "major" and vol[i] >= cfg["min_volume"]
            status[i] = "alert" if big else ("ok" if st == "stable" else "watch")
            cols["baseline"][i] = 0.0
            continue
        if kpi.is_rate:
            centre, scale, _, _ = p_chart(num[valid], den[valid], den[i])
        else:
            centre, scale = robust_scale(vals[valid])
        if scale == 0:
            z = 0.0 if vals[i] == centre else math.copysign(math.inf, vals[i] - centre)
        else:
            z = (vals[i] - centre) / scale
        cols["baseline"][i], cols["scale"][i], cols["z"][i] = centre, scale, z
        cols["lower"][i] = centre - cfg["z_alert"] * scale
        cols["upper"][i] = centre + cfg["z_alert"] * scale
        status[i] = kpi_status(
            z,
            vals[i],
            centre,
            vol[i],
            direction=kpi.direction,
            z_alert=cfg["z_alert"],
            z_watch=cfg["z_watch"],
            min_change=cfg["min_change"],
            min_volume=cfg["min_volume"],
        )
    for c, v in cols.items():
        s[c] = v
    s["status"] = status
    with np.errstate(divide="ignore", invalid="ignore"):
        s["change"] = np.where(s.baseline != 0, s.value / s.baseline - 1, np.nan)
    if kpi.type == "psi":
        s["change"] = np.nan
    return s


def _fill(values: pd.DataFrame, buckets: pd.DataFrame, kpi: Kpi) -> pd.DataFrame:
    """One row per bucket: buckets without data have 0 events (counts, users, sums) or no value
    (rates, means, model metrics).
    """
    out = buckets.merge(values, on="__p", how="left")
    if kpi.type in ("count", "users", "sum"):
        out["value"] = out.value.fillna(0.0)
    out["volume"] = out.volume.fillna(0.0)
    return out


def _prepare_predictions(
    source: Any,
    *,
    table: str | None,
    score_col: str,
    label_col: str | None,
    time_col: str,
    segment_col: str | None,
    timezone: str,
    period: str,
) -> tuple[Any, str, int, pd.Timestamp, pd.Timestamp, list[dict[str, str]], bool]:
    from aipm_nb.model.analyze import _NO_LABEL, _check_predictions, _open_predictions
    from aipm_nb.sources import open_source

    has_seg = False
    if segment_col:
        probe = open_source(source, table=table, name="predictions", allow_empty=True)
        has_seg = segment_col in probe.table.columns
    t, label = _open_predictions(
        source, table, score_col, label_col, time_col, [str(segment_col)] if has_seg else [], []
    )
    lab = label_col or _NO_LABEL
    n, _, _, warnings = _check_predictions(t, label, score_col, lab, time_col)
    ts = _local_time(t, time_col, timezone, label)
    t = t.mutate(__s=t[score_col].cast("float64"), __y=t[lab].cast("float64"), __ts=ts)
    t = t.filter(t["__ts"].notnull()).mutate(__p=_period_index(ibis._["__ts"], period))
    span = t.aggregate(lo=t["__ts"].min(), hi=t["__ts"].max()).to_pandas().iloc[0]
    return t, label, n, pd.Timestamp(span.lo), pd.Timestamp(span.hi), warnings, has_seg


def monitor_kpis(
    source: Any = None,
    kpis: Sequence[Mapping[str, Any] | Kpi] = (),
    *,
    predictions_source: Any = None,
    user_col: str = "user_id",
    time_col: str = "event_time",
    event_col: str = "event_name",
    score_col: str = "score",
    label_col: str | None = "label",
    predictions_time_col: str | None = None,
    period: str = "week",
    baseline_periods: int = 8,
    z_alert: float = 3.5,
    z_watch: float = 2.5,
    min_change: float = 0.1,
    min_volume: float = 20,
    as_of: Any = None,
    timezone: str = "UTC",
    segment_col: str | None = None,
    threshold: float = 0.5,
    table: str | None = None,
    predictions_table: str | None = None,
) -> KpiResult:
    """Score every KPI's latest complete bucket against its baseline (DESIGN section 4).

    Args:
        source: Events, one row per event (anything `aipm_nb.sources` opens); needed by event
            KPIs.
        kpis: KPI specs (see `aipm_nb.kpi.Kpi`), e.g. ``[{"name": "WAU", "type": "users"},
            {"name": "Purchase rate", "type": "rate", "numerator": ["purchase"]}]``.
        predictions_source: Predictions (score, label, time), needed by ``roc_auc``, ``ece``
            and ``psi`` KPIs.
        user_col: The user id column of the events.
        time_col: The event time column.
        event_col: The event name column (needed by KPIs that name events).
        score_col: The predictions' score column (probability in [0, 1]).
        label_col: The predictions' 0/1 label column (null: not yet labelled; None: none).
        predictions_time_col: Time column of the predictions (default ``time_col``).
        period: ``"day"``, ``"week"`` (ISO, from Monday) or ``"month"`` buckets.
        baseline_periods: Complete buckets before the scored one that form its baseline;
            fewer than 4 → ``insufficient_history``.
        z_alert: |z| from which a harmful move alerts (with the two guards below).
        z_watch: |z| from which a move is watched.
        min_change: Smallest relative change |x/baseline − 1| that can alert.
        min_volume: Smallest bucket volume (events, users, denominator, labelled rows) that
            can alert.
        as_of: Buckets not ended by then are incomplete (shown, never scored); data at or
            after it is ignored. Default: midnight after each table's last row (never later
            than now).
        timezone: IANA time zone of the buckets (DuckDB and PostgreSQL engines).
        segment_col: Break every KPI down by this column (which segment drove a move); a
            predictions table without it gets no model-KPI breakdown.
        threshold: Not used by the current model KPIs; kept for precision/recall KPIs.
        table: Table name in a database events source.
        predictions_table: Table name in a database predictions source.
    """
    check_scalar(period, "period", one_of=("day", "week", "month"))
    check_scalar(
        baseline_periods,
        "baseline_periods",
        typ=int,
        ge=MIN_BASELINE,
        hint=f"the status needs at least {MIN_BASELINE} baseline buckets",
    )
    check_scalar(z_alert, "z_alert", typ=float, gt=0)
    check_scalar(
        z_watch,
        "z_watch",
        typ=float,
        gt=0,
        le=z_alert,
        hint="z_watch is the lower of the two thresholds",
    )
    check_scalar(min_change, "min_change", typ=float, ge=0)
    check_scalar(min_volume, "min_volume", typ=float, ge=0)
    specs = parse_kpis(kpis)
    ev_kpis = [k for k in specs if not k.is_model]
    md_kpis = [k for k in specs if k.is_model]
    if ev_kpis and source is None:
        raise ParameterError(
            f"KPIs {[k.name for k in ev_kpis]} read events: set source= to the events table"
        )
    if md_kpis and predictions_source is None:
        raise ParameterError(
            f"KPIs {[k.name for k in md_kpis]} read predictions: set predictions_source= to "
            "the predictions table"
        )
    cfg = dict(
        baseline_periods=baseline_periods,
        z_alert=float(z_alert),
        z_watch=float(z_watch),
        min_change=float(min_change),
        min_volume=float(min_volume),
    )
    series: list[pd.DataFrame] = []
    segs: list[pd.DataFrame] = []
    warnings: list[dict[str, str]] = []
    rows = prediction_rows = 0
    ev_as_of = pd_as_of = None
    if ev_kpis:
        ser_e, seg_e, w_e, rows, ev_as_of = _event_kpis(
            source,
            ev_kpis,
            cfg,
            user_col=user_col,
            time_col=time_col,
            event_col=event_col,
            period=period,
            timezone=timezone,
            table=table,
            as_of=as_of,
            segment_col=segment_col,
        )
        series, segs, warnings = series + ser_e, segs + seg_e, warnings + w_e
    if md_kpis:
        ser_m, seg_m, w_m, prediction_rows, pd_as_of = _model_kpis(
            predictions_source,
            md_kpis,
            cfg,
            table=predictions_table,
            score_col=score_col,
            label_col=label_col,
            time_col=predictions_time_col or time_col,
            segment_col=segment_col,
            timezone=timezone,
            period=period,
            as_of=as_of,
            ev_as_of=ev_as_of,
        )
        series, segs = series + ser_m, segs + seg_m
        warnings += [w for w in w_m if w not in warnings]
    ser = pd.concat(series, ignore_index=True)
    ser = ser[
        [
            "name",
            "bucket",
            "value",
            "volume",
            "complete",
            "baseline",
            "lower",
            "upper",
            "z",
            "status",
            "change",
            "num",
            "den",
        ]
    ]
    segments = (
        pd.concat(segs, ignore_index=True)
        if segs
        else pd.DataFrame(
            columns=[
                "name",
                "segment",
                "value",
                "baseline",
                "change",
                "z",
                "status",
                "volume",
                "share_of_move",
            ]
        )
    )
    table_ = _scorecard(specs, ser)
    result = KpiResult(
        kpis=table_,
        series=ser.drop(columns=["num", "den"]),
        segments=segments,
        period=period,
        as_of=ev_as_of,
        predictions_as_of=pd_as_of,
        baseline_periods=baseline_periods,
        z_alert=float(z_alert),
        z_watch=float(z_watch),
        min_change=float(min_change),
        min_volume=float(min_volume),
        segment_col=segment_col,
        verdict=Verdict("insufficient_data"),
        rows=rows,
        prediction_rows=prediction_rows,
        warnings=tuple(warnings),
    )
    return _with_verdict(result)


def _event_kpis(
    source: Any,
    ev_kpis: Sequence[Kpi],
    cfg: Mapping[str, Any],
    *,
    user_col: str,
    time_col: str,
    event_col: str,
    period: str,
    timezone: str,
    table: str | None,
    as_of: Any,
    segment_col: str | None,
) -> tuple[list[pd.DataFrame], list[pd.DataFrame], list[dict[str, str]], int, pd.Timestamp]:
    """The scored series (and segment rows) of the event KPIs."""
    series: list[pd.DataFrame] = []
    segs: list[pd.DataFrame] = []
    needs_events = any(s is not None for k in ev_kpis for s in k.event_sets)
    extra: dict[str, str] = {str(k.column): "kpis" for k in ev_kpis if k.column}
    if segment_col:
        extra[segment_col] = "segment_col"
    if needs_events:
        extra[event_col] = "event_col"
    ev = prepare_events(
        source,
        user_col=user_col,
        time_col=time_col,
        event_col=event_col,
        period=period,
        timezone=timezone,
        table=table,
        extra_columns=extra,
    )
    if needs_events:
        _check_event_names(ev.table, event_col, ev_kpis, ev.label)
    warnings = list(ev.warnings)
    rows = ev.rows
    ev, ev_as_of = resolve_as_of(ev, as_of)
    t = ev.table
    first = ev.first_event  # an explicit as_of before it leaves no events
    if first is None or pd.isna(first) or first >= ev_as_of:
        raise DataError(f"{ev.label} has no events before as_of {ev_as_of}", table=ev.label)
    buckets = _buckets(first, ev_as_of, period)
    agg, sets, cols = event_aggregates(t, ev_kpis, event_col if needs_events else None, period)
    if segment_col:
        t = t.mutate(__seg=t[segment_col].cast("string").fill_null(NULL_SEGMENT))
        seg_agg, _, _ = event_aggregates(
            t, ev_kpis, event_col if needs_events else None, period, by=["__seg"]
        )
    for k in ev_kpis:
        overall = _score(_fill(kpi_values(agg, k, sets, cols), buckets, k), k, cfg)
        series.append(overall.assign(name=k.name))
        if segment_col:
            segs.append(
                _segments(
                    seg_agg,
                    k,
                    buckets,
                    cfg,
                    overall,
                    lambda g, k=k: kpi_values(g, k, sets, cols),
                )
            )
    return series, segs, warnings, rows, ev_as_of


def _model_kpis(
    source: Any,
    md_kpis: Sequence[Kpi],
    cfg: Mapping[str, Any],
    *,
    table: str | None,
    score_col: str,
    label_col: str | None,
    time_col: str,
    segment_col: str | None,
    timezone: str,
    period: str,
    as_of: Any,
    ev_as_of: pd.Timestamp | None,
) -> tuple[list[pd.DataFrame], list[pd.DataFrame], list[dict[str, str]], int, pd.Timestamp]:
    """The scored series (and segment rows) of the model KPIs."""
    series: list[pd.DataFrame] = []
    segs: list[pd.DataFrame] = []
    pt, _, prediction_rows, lo, hi, warnings, has_seg = _prepare_predictions(
        source,
        table=table,
        score_col=score_col,
        label_col=label_col,
        time_col=time_col,
        segment_col=segment_col,
        timezone=timezone,
        period=period,
    )
    if as_of is None:
        pd_as_of = min(hi.normalize() + pd.Timedelta(days=1), _now_local(timezone))
    else:
        pd_as_of = ev_as_of if ev_as_of is not None else _explicit_as_of(as_of, timezone)
        pt = pt.filter(pt["__ts"] < ibis.literal(pd_as_of.to_pydatetime(), type="timestamp"))
    buckets = _buckets(lo, pd_as_of, period)
    done = buckets.loc[buckets.complete, "__p"].tolist()
    scored = done[-1] if done else None
    baseline = done[-1 - cfg["baseline_periods"] : -1] if done else []
    for k in md_kpis:
        vals = model_aggregates(pt, k, scored=scored, baseline=baseline)
        overall = _score(_fill(vals, buckets, k), k, cfg)
        series.append(overall.assign(name=k.name))
        if segment_col and has_seg:
            segs.append(_model_segments(pt, k, segment_col, buckets, cfg, scored, baseline))
    return series, segs, warnings, prediction_rows, pd_as_of


def _explicit_as_of(as_of: Any, timezone: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(as_of)
    except (ValueError, TypeError):
        raise ParameterError(f"as_of {as_of!r} is not a date or timestamp") from None
    if ts.tzinfo is not None:
        ts = ts.tz_convert(timezone).tz_localize(None)
    return ts


def _check_event_names(t: Any, event_col: str, kpis: Sequence[Kpi], label: str) -> None:
    names = present_event_names(t, event_col)
    for k in kpis:
        for s in k.event_sets:
            missing = [e for e in s or () if e not in names]
            if missing:
                raise DataError(
                    f"{label}: KPI {k.name!r} names events {missing} that never occur in "
                    f"column {event_col!r}; events present: "
                    f"{', '.join(sorted(map(str, names))[:15])}",
                    table=label,
                    column=event_col,
                )


def _scored_row(s: pd.DataFrame) -> pd.Series | None:
    done = s[s.complete]
    return done.iloc[-1] if len(done) else None


def _segments(
    agg: pd.DataFrame,
    k: Kpi,
    buckets: pd.DataFrame,
    cfg: Mapping[str, Any],
    overall: pd.DataFrame,
    values: Any,
) -> pd.DataFrame:
    rows = []
    top = _scored_row(overall)
    if top is not None and top.status not in ("alert", "watch"):
        top = None  # a share of a move that did not happen is noise
    for seg, g in agg.groupby("__seg", sort=True):
        s = _score(_fill(values(g.reset_index(drop=True)), buckets, k), k, cfg)
        rows.append(_segment_row(k, seg, s, top))
    return pd.DataFrame(rows)


def _model_segments(
    pt: Any,
    k: Kpi,
    seg_col: str,
    buckets: pd.DataFrame,
    cfg: Mapping[str, Any],
    scored: int | None,
    baseline: Sequence[int],
) -> pd.DataFrame:
    vals = pt.select(v=pt[seg_col].cast("string")).distinct().limit(1000).to_pandas().v
    rows = []
    for seg in sorted(vals, key=lambda v: (v is None, str(v))):
        cond = pt[seg_col].isnull() if seg is None else pt[seg_col].cast("string") == seg
        s = _score(
            _fill(
                model_aggregates(pt.filter(cond), k, scored=scored, baseline=baseline), buckets, k
            ),
            k,
            cfg,
        )
        rows.append(_segment_row(k, NULL_SEGMENT if seg is None else seg, s, None))
    return pd.DataFrame(rows)


def _excess(r: pd.Series, k: Kpi) -> float:
    """How far a bucket is from its baseline in additive units (events, users, sums; for
    rates, numerator users beyond p̄·denominator).
    """
    if k.type in ("count", "users", "sum"):
        return float(r.value - r.baseline)
    if k.is_rate:
        return float(r.num - r.baseline * r.den)
    return math.nan


def _segment_row(k: Kpi, seg: Any, s: pd.DataFrame, top: pd.Series | None) -> dict[str, Any]:
    r = _scored_row(s)
    if r is None:
        return {
            "name": k.name,
            "segment": seg,
            "value": math.nan,
            "baseline": math.nan,
            "change": math.nan,
            "z": math.nan,
            "status": "insufficient_history",
            "volume": 0.0,
            "share_of_move": math.nan,
        }
    share = math.nan
    if top is not None:
        total = _excess(top, k)
        if total and not math.isnan(total):
            share = _excess(r, k) / total
    return {
        "name": k.name,
        "segment": seg,
        "value": r.value,
        "baseline": r.baseline,
        "change": r.change,
        "z": r.z,
        "status": r.status,
        "volume": r.volume,
        "share_of_move": share,
    }


def _scorecard(specs: Sequence[Kpi], ser: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for k in specs:
        s = ser[ser.name == k.name]
        r = _scored_row(s)
        running = s[~s.complete & (s.bucket > (r.bucket if r is not None else pd.Timestamp.min))]
        row: dict[str, Any] = {"name": k.name, "type": k.type, "direction": k.direction}
        if r is None:
            row |= {
                "bucket": pd.NaT,
                "value": math.nan,
                "baseline": math.nan,
                "change": math.nan,
                "z": math.nan,
                "status": "insufficient_history",
                "volume": 0.0,
            }
        else:
            row |= {
                c: r[c] for c in ("bucket", "value", "baseline", "change", "z", "status", "volume")
            }
        row["target"] = k.target
        row["target_status"] = target_status(row["value"], k.target, k.direction)
        row["incomplete_value"] = running.value.iloc[-1] if len(running) else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def _with_verdict(res: KpiResult) -> KpiResult:
    from dataclasses import replace

    from aipm_nb.kpi.verdict import status_reason

    t = res.kpis
    if (t.status == "alert").any():
        status = "alert"
    elif (t.status == "watch").any():
        status = "watch"
    elif (t.status == "ok").any():
        status = "on_track"
    else:
        status = "insufficient_data"
    reasons = [
        status_reason(res, r)
        for st in ("alert", "watch")
        for r in t.to_dict("records")
        if r["status"] == st
    ]
    off = t[t.target_status == "off_target"]
    reasons += [
        f"{r['name']} is off target: {format_value(r['type'], r['value'])} vs target "
        f"{format_value(r['type'], r['target'])}"
        for r in off.to_dict("records")
    ]
    if status == "on_track" and not reasons:
        reasons = [f"all {len(t)} KPIs within their usual range"]
    return replace(res, verdict=Verdict(status, tuple(reasons)))  # type: ignore[arg-type]
