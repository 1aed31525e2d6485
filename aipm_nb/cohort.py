"""Cohort & engagement analysis: retention, segments, active users, lifecycle, revenue.

Row-level work (local time, period bucketing, first events, distinct user-periods, joins) is
ibis expressions run by the engine; only per-(cohort, period) counts come back to pandas.

Conventions (DESIGN section 4, Amplitude/PostHog "first time" calendar retention):

* a user's cohort is the period (day, ISO week from Monday, month) of their first qualifying
  (``activation_events``) event, in ``timezone`` (UTC by default; naive timestamps are UTC);
* period k of a cohort is the cohort start + k periods; a user is active in it when they have a
  ``return_events`` event there;
* ``on`` retention[k] = share of the cohort active in period k; ``on_or_after`` = active in
  period k or any later one; k = 0 is 1.0;
* a cell whose period has not fully ended by ``as_of`` is incomplete: null, never a low number.
  ``as_of`` defaults to midnight after the latest event's day, never later than now; an
  explicit ``as_of`` also bounds the data. Null user ids and future events are left out with a
  counted warning.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import ibis
import ibis.expr.datatypes as dtypes
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from scipy import stats as sps

from aipm_nb.errors import DataError, ParameterError, SchemaError
from aipm_nb.markup import md
from aipm_nb.sources import open_source
from aipm_nb.summary import json_safe

__all__ = [
    "CohortResult",
    "RetentionComparison",
    "active_users",
    "analyze_cohorts",
    "compare_retention",
    "lifecycle",
    "prepare_events",
    "revenue_curves",
    "summary_markdown",
    "wilson_interval",
]

PERIODS = ("day", "week", "month")
#: Segment label of users whose segment value at their first event is null.
NULL_SEGMENT = "(null)"
RETENTION_TYPES = ("on", "on_or_after")
_EPOCH_MONDAY = dt.date(1970, 1, 5)
_TZ_BACKENDS = ("duckdb", "postgres")  # engines with timezone(zone, timestamptz)


@ibis.udf.scalar.builtin(name="timezone")
def _timezone(zone: str, ts: dtypes.Timestamp(timezone="UTC")) -> dtypes.Timestamp():  # type: ignore[valid-type]
    """DuckDB's / PostgreSQL's timezone(zone, timestamptz): local wall-clock time."""


def wilson_interval(k: Any, n: Any, *, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a binomial proportion k/n (NaN where n = 0).

    Examples:
        >>> lo, hi = wilson_interval(31, 100)
        >>> round(float(lo), 4), round(float(hi), 4)
        (0.2278, 0.4063)
    """
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    z = sps.norm.ppf(1 - alpha / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        den = 1 + z * z / n
        center = (p + z * z / (2 * n)) / den
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return center - half, center + half


@dataclass(frozen=True)
class Events:
    """Prepared events: the local-time table with period indexes, and what defined it."""

    table: ir.Table  # columns: user, ts (local), p (period index), plus originals
    label: str
    period: str
    user_col: str
    time_col: str
    event_col: str | None
    activation_events: tuple[str, ...] | None
    return_events: tuple[str, ...] | None
    timezone: str
    rows: int
    last_event: pd.Timestamp
    warnings: tuple[dict[str, str], ...] = ()

    def bounded(self, as_of: pd.Timestamp) -> Events:
        """The same events without those at or after ``as_of`` (local time)."""
        return replace(self, table=self.table.filter(self.table["__ts"] < _literal_ts(as_of)))


def _literal_ts(ts: pd.Timestamp) -> ir.Value:
    return ibis.literal(ts.to_pydatetime(), type="timestamp")


def _now_local(timezone: str) -> pd.Timestamp:
    """The run's current time as local wall-clock time in ``timezone`` (naive)."""
    return pd.Timestamp.now(tz=timezone or "UTC").tz_localize(None)


def _period_index(ts: ir.TimestampValue, period: str) -> ir.IntegerValue:
    d = ts.date()
    if period == "day":
        return d.epoch_days()
    if period == "week":
        return (d.truncate("W").delta(ibis.date(_EPOCH_MONDAY), unit="day") / 7).cast("int64")
    return ts.year() * 12 + ts.month() - 1


def period_start(index: Any, period: str) -> pd.Series:
    """Start (local midnight) of period ``index`` (the inverse of the engine's period index)."""
    idx = pd.Series(np.asarray(index, dtype="int64"))
    if period == "day":
        return pd.to_datetime("1970-01-01") + pd.to_timedelta(idx, unit="D")
    if period == "week":
        return pd.Timestamp(_EPOCH_MONDAY) + pd.to_timedelta(idx * 7, unit="D")
    return pd.to_datetime({"year": idx // 12, "month": idx % 12 + 1, "day": 1})


def _as_tuple(v: Any) -> tuple[str, ...] | None:
    if v is None:
        return None
    if isinstance(v, str):
        return (v,)
    out = tuple(str(x) for x in v)
    if not out:
        raise ParameterError("an event filter must name at least one event (or be None)")
    return out


def prepare_events(
    source: Any,
    *,
    user_col: str = "user_id",
    time_col: str = "event_time",
    event_col: str = "event_name",
    activation_events: Sequence[str] | str | None = None,
    return_events: Sequence[str] | str | None = None,
    period: str = "week",
    timezone: str = "UTC",
    table: str | None = None,
    extra_columns: Sequence[str] = (),
) -> Events:
    """Open and check an events source; add local time and the period index (in the engine)."""
    if period not in PERIODS:
        raise ParameterError(f"period must be one of {PERIODS}; got {period!r}")
    act, ret = _as_tuple(activation_events), _as_tuple(return_events)
    required = {user_col: "any", time_col: "timestamp"}
    if act or ret:
        required[event_col] = "string"
    for c in extra_columns:
        required[c] = "any"
    # emptiness is checked below with the same query that finds the last event
    params = {user_col: "user_col", time_col: "time_col", event_col: "event_col"}
    src = open_source(source, table=table, required=required, name="events", allow_empty=True,
                      parameters=params)  # fmt: skip
    t = src.table
    ts = t[time_col]
    if ts.type().is_date():
        ts = ts.cast("timestamp")
    if timezone and timezone != "UTC":
        _check_timezone(timezone)
        backend = t._find_backend(use_default=True).name
        if backend not in _TZ_BACKENDS:
            raise ParameterError(
                f"{src.label}: timezone={timezone!r} needs the DuckDB or PostgreSQL engine; on "
                f"{backend} convert {time_col!r} to local time in the table, or use 'UTC'"
            )
        ts = _timezone(timezone, ts.cast(dtypes.Timestamp(timezone="UTC")))
    elif ts.type().timezone is not None:
        ts = _timezone("UTC", ts)
    now = _literal_ts(_now_local(timezone))
    user = src.table[user_col]
    t = t.mutate(__user=t[user_col], __ts=ts).filter(
        ibis._["__ts"].notnull() & ibis._["__user"].notnull() & (ibis._["__ts"] <= now)
    )
    t = t.mutate(__p=_period_index(t["__ts"], period))
    stats = src.table.aggregate(
        rows=src.table.count(), timed=ts.count(), null_ids=user.isnull().sum(),
        future=(ts > now).sum(), last=ts.max(where=user.notnull() & (ts <= now)),
    ).to_pandas().iloc[0]  # fmt: skip
    if int(stats.rows) == 0:
        raise DataError(f"{src.label} has no rows; expected at least one", table=src.label)
    if int(stats.timed) == 0:
        raise DataError(f"{src.label} has no rows with a {time_col!r} value; set time_col= to "
                        "the event time column", table=src.label, column=time_col)  # fmt: skip
    warnings = []
    if int(stats.null_ids or 0):
        warnings.append({"code": "null_ids", "message": f"{int(stats.null_ids):,} events have "
                         f"a null {user_col!r} and were left out"})  # fmt: skip
    if int(stats.future or 0):
        warnings.append({"code": "future_events", "message": f"{int(stats.future):,} events are "
                         "dated after the time of this run and were left out"})  # fmt: skip
    if pd.isna(stats["last"]):
        raise DataError(f"{src.label} has no event with a user id dated before now",
                        table=src.label)  # fmt: skip
    if act or ret:
        names = set(t.select(e=t[event_col].cast("string")).distinct().limit(10_000).to_pandas().e)
        for kind, evs in (("activation_events", act), ("return_events", ret)):
            missing = [e for e in evs or () if e not in names]
            if missing:
                raise DataError(
                    f"{src.label}: {kind} {missing} never occur in column {event_col!r}; "
                    f"events present: {', '.join(sorted(map(str, names))[:15])}"
                )
    has_events = event_col in src.table.columns
    return Events(
        t, src.label, period, user_col, time_col, event_col if has_events else None,
        act, ret, timezone or "UTC", int(stats.rows), pd.Timestamp(stats["last"]),
        tuple(warnings),
    )  # fmt: skip


def _check_timezone(tz: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ParameterError(
            f"unknown timezone {tz!r}; expected an IANA name such as 'Europe/Berlin'"
        ) from None


def _cohorts(ev: Events) -> ir.Table:
    """user -> cohort period index (first activation event)."""
    t = ev.table
    if ev.activation_events:
        t = t.filter(t[ev.event_col].isin(ev.activation_events))
    return t.group_by("__user").aggregate(__c=t["__p"].min())


def _activity(ev: Events) -> ir.Table:
    """Distinct (user, period index) of return events."""
    t = ev.table
    if ev.return_events:
        t = t.filter(t[ev.event_col].isin(ev.return_events))
    return t.select("__user", "__p").distinct()


def _resolve_as_of(ev: Events, as_of: Any) -> tuple[Events, pd.Timestamp]:
    """The events every cohort function reads, and ``as_of`` as local naive time.

    ``as_of=None``: midnight after the last event, never later than now (future events were
    already left out by `prepare_events`). An explicit ``as_of`` also bounds the data: events at
    or after it are ignored (DESIGN section 4)."""
    if as_of is None:
        return ev, min(ev.last_event.normalize() + pd.Timedelta(days=1), _now_local(ev.timezone))
    try:
        ts = pd.Timestamp(as_of)
    except (ValueError, TypeError):
        raise ParameterError(f"as_of {as_of!r} is not a date or timestamp") from None
    if ts.tzinfo is not None:
        ts = ts.tz_convert(ev.timezone).tz_localize(None)
    return ev.bounded(ts), ts


def _complete(
    cohort_idx: np.ndarray, k: np.ndarray, period: str, as_of: pd.Timestamp
) -> np.ndarray:
    """Whether period k of each cohort has fully ended by as_of."""
    end = period_start(np.asarray(cohort_idx) + np.asarray(k) + 1, period)
    return (end <= as_of).to_numpy()


@dataclass(frozen=True)
class CohortResult:
    """Retention by cohort.

    Attributes:
        period, retention_type, max_periods, as_of, timezone: what was computed.
        cohorts: one row per cohort: ``cohort`` (start, local), ``size``.
        retained: users retained per cohort (rows) and period k (columns); NaN if incomplete.
        retention: ``retained / size``; NaN where incomplete (k = 0 is 1.0).
        average: per k: ``retention`` (size-weighted over complete cells), ``ci_lower``,
            ``ci_upper`` (Wilson 95%), ``users`` (cohort users with a complete cell).
        rows: events read; warnings: things the reader must know.
    """

    period: str
    retention_type: str
    max_periods: int
    as_of: pd.Timestamp
    timezone: str
    cohorts: pd.DataFrame
    retained: pd.DataFrame
    retention: pd.DataFrame
    average: pd.DataFrame
    rows: int
    users: int
    warnings: tuple[dict[str, str], ...] = field(default=())

    def to_pandas(self) -> pd.DataFrame:
        """The retention matrix: cohorts as rows (with size), periods as columns."""
        out = self.retention.copy()
        out.insert(0, "size", self.cohorts.set_index("cohort")["size"])
        return out

    def to_dict(self) -> dict[str, Any]:
        """The ``result`` object of the JSON summary (DESIGN section 5)."""

        return {
            "period": self.period,
            "retention_type": self.retention_type,
            "cohorts": [
                {
                    "cohort": c.strftime("%Y-%m-%d"),
                    "size": int(s),
                    "retention": [json_safe(v) for v in self.retention.loc[c].tolist()],
                }
                for c, s in zip(self.cohorts.cohort, self.cohorts["size"], strict=True)
            ],  # fmt: skip
            "average_retention": [json_safe(v) for v in self.average.retention.tolist()],
        }

    def _repr_html_(self) -> str:
        return _matrix_html(self)


def analyze_cohorts(
    source: Any,
    *,
    user_col: str = "user_id",
    time_col: str = "event_time",
    event_col: str = "event_name",
    activation_events: Sequence[str] | str | None = None,
    return_events: Sequence[str] | str | None = None,
    period: str = "week",
    retention_type: str = "on",
    max_periods: int = 12,
    as_of: Any = None,
    timezone: str = "UTC",
    table: str | None = None,
    events: Events | None = None,
) -> CohortResult:
    """Retention matrix, cohort sizes and the size-weighted average curve with 95% CIs.

    Args:
        source: Events, one row per event (anything `aipm_nb.sources` opens).
        user_col, time_col, event_col: Column names.
        activation_events: Events that put a user in a cohort (default: any event).
        return_events: Events that count as "active" (default: any event).
        period: ``"day"``, ``"week"`` (ISO, from Monday) or ``"month"``.
        retention_type: ``"on"`` or ``"on_or_after"``.
        max_periods: Last period k shown.
        as_of: Cells whose period ends after this are incomplete (null). Default: midnight
            after the latest event's day.
        timezone: IANA time zone of periods (DuckDB and PostgreSQL engines).
        table: Table name in a database source.
        events: Already prepared events (`prepare_events`); ``source`` and the column options
            are then ignored.
    """
    if retention_type not in RETENTION_TYPES:
        raise ParameterError(
            f"retention_type must be one of {RETENTION_TYPES}; got {retention_type!r}"
        )
    if not isinstance(max_periods, int) or isinstance(max_periods, bool) or max_periods < 1:
        raise ParameterError(f"max_periods must be a positive integer; got {max_periods!r}")
    ev = events or prepare_events(
        source, user_col=user_col, time_col=time_col, event_col=event_col,
        activation_events=activation_events, return_events=return_events, period=period,
        timezone=timezone, table=table,
    )  # fmt: skip
    ev, as_of_ts = _resolve_as_of(ev, as_of)
    act = _activity(ev)
    # Without an activation filter the cohort is the first active period, so one pass over
    # the distinct (user, period) pairs gives cohorts, sizes (k = 0) and retention together.
    same = ev.activation_events is None and ev.return_events is None
    coh = act.group_by("__user").aggregate(__c=act["__p"].min()) if same else _cohorts(ev)
    j = act.join(coh, "__user").mutate(k=ibis._["__p"] - ibis._["__c"])
    j = j.filter(j.k >= 0)
    if retention_type == "on":
        counts = (
            j.filter(j.k <= max_periods).group_by(["__c", "k"]).aggregate(n=ibis._.count())
        ).to_pandas()
    else:  # users whose last active k is >= k: count by last k, then cumulate from the right
        last = j.group_by(["__user", "__c"]).aggregate(last=j.k.max())
        by_last = last.group_by(["__c", "last"]).aggregate(n=ibis._.count()).to_pandas()
        by_last["last"] = by_last["last"].clip(upper=max_periods)
        wide = by_last.pivot_table(index="__c", columns="last", values="n", aggfunc="sum")
        wide = wide.reindex(columns=range(max_periods + 1), fill_value=0).fillna(0)
        cum = wide.iloc[:, ::-1].cumsum(axis=1).iloc[:, ::-1]
        counts = cum.stack().rename("n").reset_index().rename(columns={"level_1": "k"})
        counts.columns = ["__c", "k", "n"]
    if same:
        sizes = counts[counts.k == 0][["__c", "n"]].rename(columns={"n": "size"})
    else:
        sizes = coh.group_by("__c").aggregate(size=ibis._.count()).to_pandas()
    if sizes.empty:
        raise DataError(f"{ev.label}: no user has an activation event {ev.activation_events}")
    return _assemble(ev, sizes, counts, retention_type, max_periods, as_of_ts)


def _assemble(ev: Events, sizes: pd.DataFrame, counts: pd.DataFrame, retention_type: str,
              max_periods: int, as_of: pd.Timestamp) -> CohortResult:  # fmt: skip
    sizes = sizes.sort_values("__c").reset_index(drop=True)
    idx = sizes["__c"].to_numpy()
    starts = pd.DatetimeIndex(period_start(idx, ev.period))
    ks = np.arange(max_periods + 1)
    retained = (
        counts.pivot_table(index="__c", columns="k", values="n", aggfunc="sum")
        .reindex(index=idx, columns=ks)
        .fillna(0.0)
        .astype(float)
    )
    retained[0] = sizes["size"].to_numpy(dtype=float)  # k = 0 is the whole cohort
    cc, kk = np.meshgrid(idx, ks, indexing="ij")
    complete = _complete(cc.ravel(), kk.ravel(), ev.period, as_of).reshape(cc.shape).copy()
    complete[:, 0] = True  # k = 0 is 1.0 by definition, even while the first period runs
    retained = retained.where(complete)
    size = sizes["size"].to_numpy(dtype=float)
    retention = retained.div(size, axis=0)
    retention.index = retained.index = starts
    retention.index.name = retained.index.name = "cohort"
    retention.columns.name = retained.columns.name = "k"
    users = retained.notna().mul(size, axis=0).sum(axis=0)
    kept = retained.sum(axis=0, min_count=1)
    lo, hi = wilson_interval(kept, users)
    with np.errstate(invalid="ignore", divide="ignore"):
        avg = pd.DataFrame({
            "retention": np.where(users > 0, kept / users, np.nan),
            "ci_lower": lo, "ci_upper": hi, "users": users.astype(int),
        }, index=pd.Index(ks, name="k"))  # fmt: skip
    warnings = list(ev.warnings)
    small = int((size < 30).sum())
    if small:
        warnings.append(
            {
                "code": "small_cohorts",
                "message": f"{small} cohorts have fewer than 30 users; read their rows with care",
            }
        )
    return CohortResult(
        period=ev.period, retention_type=retention_type, max_periods=max_periods, as_of=as_of,
        timezone=ev.timezone,
        cohorts=pd.DataFrame({"cohort": starts, "size": sizes["size"].astype(int).to_numpy()}),
        retained=retained, retention=retention, average=avg, rows=ev.rows,
        users=int(size.sum()), warnings=tuple(warnings),
    )  # fmt: skip


# ---------------------------------------------------------------------------------------
# segments


@dataclass(frozen=True)
class RetentionComparison:
    """Retention curves per segment and tests of the difference at chosen periods.

    Attributes:
        segment: What was compared (a column, or ``adopted <event>``).
        curves: ``segment``, ``k``, ``retention``, ``ci_lower``, ``ci_upper``, ``users``.
        tests: per tested k: ``k``, ``p_value`` (chi-square across segments), and for two
            segments ``diff`` (first minus second, in share points) with ``ci_lower``/``ci_upper``.
        results: the full `CohortResult` of each segment.
    """

    segment: str
    curves: pd.DataFrame
    tests: pd.DataFrame
    results: dict[str, CohortResult]


def compare_retention(
    source: Any = None,
    *,
    segment_col: str | None = None,
    adoption_event: str | None = None,
    test_periods: Sequence[int] = (1, 4),
    events: Events | None = None,
    retention_type: str = "on",
    max_periods: int = 12,
    as_of: Any = None,
    **event_options: Any,
) -> RetentionComparison:
    """Retention by segment: a column's value at the user's first event, or whether the user
    did ``adoption_event`` in their first period (adopters vs non-adopters).

    "First period" (not "ever") keeps the comparison fair: a user who stays longer has more
    chances to adopt a feature, which would make adoption look better than it is.
    """
    if (segment_col is None) == (adoption_event is None):
        raise ParameterError("give exactly one of segment_col or adoption_event")
    extra = [segment_col] if segment_col else []
    ev = events or prepare_events(source, extra_columns=extra, **event_options)
    if segment_col and segment_col not in ev.table.columns:
        raise ParameterError(f"{ev.label} has no column {segment_col!r}")
    coh = _cohorts(ev)
    t = ev.table
    if segment_col:
        first = t.group_by("__user").aggregate(
            __seg=t[segment_col].cast("string").argmin(t["__ts"]).fill_null(NULL_SEGMENT)
        )
        label = segment_col
    else:
        evcol = ev.event_col or event_options.get("event_col", "event_name")
        if evcol not in t.columns:
            raise SchemaError(
                f"{ev.label} has no column {evcol!r} for adoption_event; set event_col= to the "
                "column holding event names",
                table=ev.label, column=evcol,
            )  # fmt: skip
        adopted = (
            t.filter(t[evcol] == adoption_event)
            .join(coh, "__user")
            .filter(lambda x: x["__p"] == x["__c"])
            .select("__user")
            .distinct()
            .mutate(__a=ibis.literal(1))
        )
        first = coh.left_join(adopted, "__user").select(
            "__user", __seg=ibis.ifelse(ibis._["__a"].notnull(), "adopters", "non-adopters")
        )
        label = f"adopted {adoption_event}"
    seg_table = first
    results: dict[str, CohortResult] = {}
    values = sorted(v for v in seg_table.select("__seg").distinct().to_pandas().iloc[:, 0].tolist()
                    if v is not None)  # fmt: skip
    if len(values) > 20:
        raise ParameterError(f"{label} has {len(values)} values; compare at most 20 segments")
    for v in values:
        users = seg_table.filter(seg_table["__seg"] == v).select("__user")
        sub = ev.table.semi_join(users, "__user")
        ev_v = replace(ev, table=sub)
        results[str(v)] = analyze_cohorts(None, events=ev_v, retention_type=retention_type,
                                          max_periods=max_periods, as_of=as_of)  # fmt: skip
    curves = pd.concat(
        [r.average.reset_index().assign(segment=s) for s, r in results.items()], ignore_index=True
    )[["segment", "k", "retention", "ci_lower", "ci_upper", "users"]]
    rows = []
    for k in test_periods:
        if k > max_periods:
            continue
        kept = np.array([float(r.retained[k].sum(min_count=1)) for r in results.values()])
        n = np.array([float(r.average.users[k]) for r in results.values()])
        row: dict[str, Any] = {"k": k, "p_value": math.nan}
        ok = (n > 0) & ~np.isnan(kept)
        if ok.sum() >= 2:
            table = np.vstack([kept[ok], n[ok] - kept[ok]])
            if (table.sum(axis=1) > 0).all():
                row["p_value"] = float(sps.chi2_contingency(table, correction=False)[1])
        if len(results) == 2 and ok.all():
            p1, p2 = kept / n
            se = math.sqrt(p1 * (1 - p1) / n[0] + p2 * (1 - p2) / n[1])
            z = sps.norm.ppf(0.975)
            row |= {"diff": p1 - p2, "ci_lower": p1 - p2 - z * se, "ci_upper": p1 - p2 + z * se}
        rows.append(row)
    return RetentionComparison(label, curves, pd.DataFrame(rows), results)


# ---------------------------------------------------------------------------------------
# engagement


def active_users(events: Events) -> tuple[pd.DataFrame, pd.DataFrame]:
    """DAU per day; WAU per ISO week and MAU per calendar month with stickiness.

    Returns:
        ``(daily, monthly)``: daily ``day``, ``dau``; monthly ``month``, ``mau``,
        ``avg_dau``, ``stickiness`` (average DAU / MAU) and ``complete`` (the month has ended).
        Weekly WAU is in ``daily.attrs["weekly"]``.
    """
    t = events.table
    if events.return_events:
        t = t.filter(t[events.event_col].isin(events.return_events))
    day = t["__ts"].date()
    daily = (
        t.mutate(day=day).group_by("day").aggregate(dau=t["__user"].nunique()).order_by("day")
    ).to_pandas()
    weekly = (
        t.mutate(week=t["__ts"].truncate("W").date())
        .group_by("week").aggregate(wau=t["__user"].nunique()).order_by("week")
    ).to_pandas()  # fmt: skip
    monthly = (
        t.mutate(month=t["__ts"].truncate("M").date())
        .group_by("month").aggregate(mau=t["__user"].nunique()).order_by("month")
    ).to_pandas()  # fmt: skip
    daily["day"] = pd.to_datetime(daily["day"])
    weekly["week"] = pd.to_datetime(weekly["week"])
    monthly["month"] = pd.to_datetime(monthly["month"])
    days_in = daily.assign(month=daily.day.dt.to_period("M").dt.start_time)
    avg = days_in.groupby("month").dau.sum() / monthly.set_index("month").index.days_in_month
    monthly["avg_dau"] = monthly.month.map(avg).astype(float)
    monthly["stickiness"] = monthly.avg_dau / monthly.mau
    end = events.last_event.normalize() + pd.Timedelta(days=1)
    monthly["complete"] = (monthly.month + pd.offsets.MonthBegin(1)) <= end
    daily.attrs["weekly"] = weekly
    return daily, monthly


def lifecycle(events: Events) -> pd.DataFrame:
    """PostHog lifecycle per period: new, returning, resurrecting and dormant users.

    new: first period ever (the cohort period); returning: active now and in the previous
    period; resurrecting: active now, not in the previous period, not new; dormant: active in
    the previous period and not now (shown negative).
    """
    coh = _cohorts(events)
    act = _activity(events)
    prev = act.select(__user=act["__user"], __p=act["__p"] + 1, __was=ibis.literal(1))
    cur = act.join(coh, "__user").left_join(prev, ["__user", "__p"])
    status = ibis.cases(
        (cur["__p"] == cur["__c"], "new"),
        (cur["__was"].notnull(), "returning"),
        else_="resurrecting",
    )
    counts = cur.mutate(status=status).group_by(["__p", "status"]).aggregate(n=ibis._.count())
    nxt = act.select(__user=act["__user"], __p=act["__p"] - 1)
    last_p = int(act["__p"].max().to_pandas())
    dormant = (
        act.anti_join(nxt, ["__user", "__p"])
        .filter(ibis._["__p"] < last_p)
        .group_by("__p")
        .aggregate(n=ibis._.count())
        .mutate(__p=ibis._["__p"] + 1, status=ibis.literal("dormant"))
    )
    df = pd.concat([counts.to_pandas(), dormant.to_pandas()], ignore_index=True)
    wide = df.pivot_table(index="__p", columns="status", values="n", aggfunc="sum", fill_value=0)
    wide = wide.reindex(columns=["new", "returning", "resurrecting", "dormant"], fill_value=0)
    wide["dormant"] = -wide["dormant"]
    wide.index = pd.DatetimeIndex(period_start(wide.index.to_numpy(), events.period), name="period")
    return wide.astype(int)


def revenue_curves(events: Events, revenue_col: str, *, max_periods: int = 12,
                   as_of: Any = None) -> pd.DataFrame:  # fmt: skip
    """Cumulative revenue per cohort user (LTV curve) by cohort and period k; incomplete
    cells null. Revenue of events before a user's cohort period is left out."""
    events, as_of_ts = _resolve_as_of(events, as_of)
    t = events.table
    if revenue_col not in t.columns:
        raise ParameterError(f"{events.label} has no column {revenue_col!r}")
    if not t[revenue_col].type().is_numeric():
        raise ParameterError(
            f"{events.label} column {revenue_col!r} has type {t[revenue_col].type()}; "
            "expected numeric"
        )
    coh = _cohorts(events)
    sizes = coh.group_by("__c").aggregate(size=ibis._.count()).to_pandas().set_index("__c")
    rev = (
        t.join(coh, "__user")
        .mutate(k=ibis._["__p"] - ibis._["__c"])
        .filter(lambda x: (x.k >= 0) & (x.k <= max_periods))
        .group_by(["__c", "k"])
        .aggregate(revenue=ibis._[revenue_col].sum())
        .to_pandas()
    )
    wide = rev.pivot_table(index="__c", columns="k", values="revenue", aggfunc="sum")
    wide = wide.reindex(index=sizes.index.sort_values(), columns=range(max_periods + 1))
    cum = wide.fillna(0.0).cumsum(axis=1).div(sizes["size"].reindex(wide.index), axis=0)
    cc, kk = np.meshgrid(wide.index.to_numpy(), np.arange(max_periods + 1), indexing="ij")
    complete = _complete(cc.ravel(), kk.ravel(), events.period, as_of_ts).reshape(cc.shape)
    cum = cum.where(complete)
    cum.index = pd.DatetimeIndex(period_start(wide.index.to_numpy(), events.period), name="cohort")
    cum.columns.name = "k"
    return cum


# ---------------------------------------------------------------------------------------
# presentation


def _fmt_pct(v: float) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.0%}"


def summary_markdown(res: CohortResult, comparison: RetentionComparison | None = None, *,
                     k: int | None = None) -> str:  # fmt: skip
    """Executive summary: retention at period k with its CI, the latest cohort against the four
    before it, and the segment difference if a comparison is given."""
    avg = res.average
    if k is None:
        k = 4 if res.max_periods >= 4 and not math.isnan(avg.retention.get(4, math.nan)) else 1
    k = min(k, res.max_periods)
    unit = res.period
    lines = []
    r = avg.retention[k]
    if math.isnan(r):
        lines.append(f"No cohort has a complete {unit} {k} yet.")
    else:
        half = (avg.ci_upper[k] - avg.ci_lower[k]) / 2
        lines.append(
            f"**{unit.capitalize()}-{k} retention is {r:.0%}** (±{half * 100:.0f} pts, 95% CI; "
            f"{res.retention_type!r} retention over {int(avg.users[k]):,} users of the cohorts "
            f"with a complete {unit} {k})."
        )
        col = res.retention[k].dropna()
        if len(col) >= 2:
            latest, before = col.index[-1], col.iloc[-5:-1]
            sizes = res.cohorts.set_index("cohort")["size"]
            prev = float((before * sizes[before.index]).sum() / sizes[before.index].sum())
            diff = (col.iloc[-1] - prev) * 100
            word = "above" if diff > 0 else "below"
            lines.append(
                f"The latest complete cohort ({latest:%Y-%m-%d}, {int(sizes[latest]):,} users) "
                f"retains {col.iloc[-1]:.0%} at {unit} {k}: {abs(diff):.0f} pts {word} the "
                f"{len(before)} cohorts before it ({prev:.0%})."
            )
    if comparison is not None and len(comparison.results) == 2:
        tests = comparison.tests.set_index("k")
        kk = k if k in tests.index else (tests.index[0] if len(tests) else None)
        if kk is not None and "diff" in tests.columns and not math.isnan(tests["diff"][kk]):
            a, b = list(comparison.results)
            d = tests.loc[kk]
            sig = "significant" if d.p_value < 0.05 else "not significant"
            word = "better" if d["diff"] > 0 else "worse"
            who = (
                f"Adopters of {md(comparison.segment[8:])} retain {abs(d['diff']) * 100:.0f} pts "
                f"{word} than non-adopters"
                if comparison.segment.startswith("adopted ")
                else f"{md(comparison.segment)}: {md(a)} retain {abs(d['diff']) * 100:.0f} pts "
                f"{word} than {md(b)}"
            )
            lines.append(
                f"**{who}** at {unit} {kk} (95% CI {d.ci_lower * 100:+.0f} to "
                f"{d.ci_upper * 100:+.0f} pts, p = {d.p_value:.2g}, {sig})."
            )
    elif comparison is not None:
        tests = comparison.tests.set_index("k")
        if k in tests.index:
            curves = comparison.curves[comparison.curves.k == k].dropna(subset=["retention"])
            best = curves.sort_values("retention")
            if len(best):
                lines.append(
                    f"By {md(comparison.segment)} at {unit} {k}: best {md(best.segment.iloc[-1])} "
                    f"({best.retention.iloc[-1]:.0%}), worst {md(best.segment.iloc[0])} "
                    f"({best.retention.iloc[0]:.0%}); chi-square p = {tests.p_value[k]:.2g}."
                )
    lines.append(
        f"{res.users:,} users in {len(res.cohorts)} "
        f"{ {'day': 'daily', 'week': 'weekly', 'month': 'monthly'}[unit] } cohorts; periods in "
        f"{md(res.timezone)}; cells ending after {res.as_of:%Y-%m-%d %H:%M} are incomplete (blank)."
    )
    return "\n\n".join(lines)


def retention_table(res: CohortResult) -> pd.DataFrame:
    """The retention matrix as text for reading: percentages, blank where incomplete."""
    out = res.retention.map(_fmt_pct)
    out.columns = [f"{res.period[0]}{k}" for k in out.columns]
    out.insert(0, "users", res.cohorts["size"].map("{:,}".format).to_numpy())
    out.index = out.index.strftime("%Y-%m-%d")
    return out


def _matrix_html(res: CohortResult) -> str:
    return (
        f"<p><b>{html.escape(res.retention_type)}</b> retention by {html.escape(res.period)} "
        f"cohort ({len(res.cohorts)} cohorts, {res.users:,} users)</p>"
        + retention_table(res).to_html()
    )
