"""Events prepared in the engine: local time, period index, cohorts, activity, as_of."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import ibis
import ibis.expr.datatypes as dtypes
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from aipm_nb.errors import DataError, EmptyTableError, ParameterError
from aipm_nb.results import warning
from aipm_nb.sources import open_source
from aipm_nb.validation import check_scalar

__all__ = ["prepare_events", "present_event_names"]


PERIODS = ("day", "week", "month")


RETENTION_TYPES = ("on", "on_or_after")


_EPOCH_MONDAY = dt.date(1970, 1, 5)


_TZ_BACKENDS = ("duckdb", "postgres")  # engines with timezone(zone, timestamptz)


@ibis.udf.scalar.builtin(name="timezone")
def _timezone(zone: str, ts: dtypes.Timestamp(timezone="UTC")) -> dtypes.Timestamp():  # type: ignore[valid-type]
    """DuckDB's / PostgreSQL's timezone(zone, timestamptz): local wall-clock time."""


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
    first_event: pd.Timestamp | None = None

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


def period_end(starts: Any, period: str) -> pd.Series:
    """End (exclusive: the next period's start) of each period starting at ``starts``."""
    step = {"day": pd.DateOffset(days=1), "week": pd.DateOffset(weeks=1)}
    return pd.Series(pd.DatetimeIndex(starts)) + step.get(period, pd.DateOffset(months=1))


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
    extra_columns: Sequence[str] | Mapping[str, str] = (),
) -> Events:
    """Open and check an events source; add local time and the period index (in the engine).

    Args:
        source: Events, one row per event (anything `aipm_nb.sources` opens).
        user_col: The user id column.
        time_col: The event time column (timestamp, date, or text that parses as one).
        event_col: The event name column (needed by the event filters and adoption).
        activation_events: Events that put a user in a cohort (default: any event).
        return_events: Events that count as "active" (default: any event).
        period: ``"day"``, ``"week"`` (ISO, from Monday) or ``"month"``.
        timezone: IANA time zone of periods (DuckDB and PostgreSQL engines).
        table: Table name in a database source.
        extra_columns: Other columns the analysis needs (segments, revenue), checked up
            front; a mapping names the parameter that sets each (``{"plan": "segment_col"}``),
            so a missing one says which parameter to change.
    """
    check_scalar(period, "period", one_of=PERIODS)
    act, ret = _as_tuple(activation_events), _as_tuple(return_events)
    required = {user_col: "any", time_col: "timestamp"}
    if act or ret:
        required[event_col] = "string"
    for c in extra_columns:
        required[c] = "any"
    # emptiness is checked below with the same query that finds the last event
    params = {user_col: "user_col", time_col: "time_col", event_col: "event_col"}
    if isinstance(extra_columns, Mapping):
        params |= dict(extra_columns)
    src = open_source(
        source, table=table, required=required, name="events", allow_empty=True, parameters=params
    )
    t = src.table
    ts = _local_time(t, time_col, timezone, src.label)
    now = _literal_ts(_now_local(timezone))
    user = src.table[user_col]
    t = t.mutate(__user=t[user_col], __ts=ts).filter(
        ibis._["__ts"].notnull() & ibis._["__user"].notnull() & (ibis._["__ts"] <= now)
    )
    t = t.mutate(__p=_period_index(t["__ts"], period))
    stats = (
        src.table.aggregate(
            rows=src.table.count(),
            timed=ts.count(),
            null_ids=user.isnull().sum(),
            future=(ts > now).sum(),
            last=ts.max(where=user.notnull() & (ts <= now)),
            first=ts.min(where=user.notnull() & (ts <= now)),
        )
        .to_pandas()
        .iloc[0]
    )
    if int(stats.rows) == 0:
        raise EmptyTableError(f"{src.label} has no rows; expected at least one", table=src.label)
    if int(stats.timed) == 0:
        raise DataError(
            f"{src.label} has no rows with a {time_col!r} value; set time_col= to "
            "the event time column",
            table=src.label,
            column=time_col,
        )
    warnings = []
    if int(stats.null_ids or 0):
        msg = f"{int(stats.null_ids):,} events have a null {user_col!r} and were left out"
        warnings.append(warning("null_ids", msg))
    if int(stats.future or 0):
        msg = f"{int(stats.future):,} events are dated after the time of this run and were left out"
        warnings.append(warning("future_events", msg))
    if pd.isna(stats["last"]):
        raise DataError(
            f"{src.label} has no event with a user id dated before now", table=src.label
        )
    if act or ret:
        names = present_event_names(t, event_col)
        for kind, evs in (("activation_events", act), ("return_events", ret)):
            missing = [e for e in evs or () if e not in names]
            if missing:
                raise DataError(
                    f"{src.label}: {kind} {missing} never occur in column {event_col!r}; "
                    f"events present: {', '.join(sorted(map(str, names))[:15])}"
                )
    has_events = event_col in src.table.columns
    return Events(
        t,
        src.label,
        period,
        user_col,
        time_col,
        event_col if has_events else None,
        act,
        ret,
        timezone or "UTC",
        int(stats.rows),
        pd.Timestamp(stats["last"]),
        tuple(warnings),
        pd.Timestamp(stats["first"]),
    )


def present_event_names(t: ir.Table, event_col: str, limit: int = 10_000) -> set[str]:
    """The distinct event names of ``t`` (at most ``limit`` of them), to check that the events
    a parameter names occur at all.
    """
    return set(t.select(e=t[event_col].cast("string")).distinct().limit(limit).to_pandas().e)


def _local_time(t: ir.Table, time_col: str, timezone: str, label: str) -> ir.TimestampValue:
    """The event time in ``timezone`` (naive local time), converted in the engine."""
    ts = t[time_col]
    if ts.type().is_date():
        ts = ts.cast("timestamp")
    if timezone and timezone != "UTC":
        _check_timezone(timezone)
        backend = t._find_backend(use_default=True).name
        if backend not in _TZ_BACKENDS:
            raise ParameterError(
                f"{label}: timezone={timezone!r} needs the DuckDB or PostgreSQL engine; on "
                f"{backend} convert {time_col!r} to local time in the table, or use 'UTC'"
            )
        return _timezone(timezone, ts.cast(dtypes.Timestamp(timezone="UTC")))
    if ts.type().timezone is not None:
        return _timezone("UTC", ts)
    return ts


def _check_timezone(tz: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ParameterError(
            f"unknown timezone {tz!r}; expected an IANA name such as 'Europe/Berlin'"
        ) from None


def cohort_index(ev: Events) -> ir.Table:
    """User -> cohort period index (first activation event)."""
    t = ev.table
    if ev.activation_events:
        t = t.filter(t[ev.event_col].isin(ev.activation_events))
    return t.group_by("__user").aggregate(__c=t["__p"].min())


def active_periods(ev: Events) -> ir.Table:
    """Distinct (user, period index) of return events."""
    t = ev.table
    if ev.return_events:
        t = t.filter(t[ev.event_col].isin(ev.return_events))
    return t.select("__user", "__p").distinct()


def resolve_as_of(ev: Events, as_of: Any) -> tuple[Events, pd.Timestamp]:
    """The events every cohort function reads, and ``as_of`` as local naive time.

    ``as_of=None``: midnight after the last event, never later than now (future events were
    already left out by `prepare_events`). An explicit ``as_of`` also bounds the data: events at
    or after it are ignored (DESIGN section 4).
    """
    if as_of is None:
        return ev, min(ev.last_event.normalize() + pd.Timedelta(days=1), _now_local(ev.timezone))
    try:
        ts = pd.Timestamp(as_of)
    except (ValueError, TypeError):
        raise ParameterError(f"as_of {as_of!r} is not a date or timestamp") from None
    if ts.tzinfo is not None:
        ts = ts.tz_convert(ev.timezone).tz_localize(None)
    return ev.bounded(ts), ts


def complete_cells(
    cohort_idx: np.ndarray, k: np.ndarray, period: str, as_of: pd.Timestamp
) -> np.ndarray:
    """Whether period k of each cohort has fully ended by as_of."""
    end = period_start(np.asarray(cohort_idx) + np.asarray(k) + 1, period)
    return (end <= as_of).to_numpy()
