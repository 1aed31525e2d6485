"""Engagement over time: DAU/WAU/MAU and stickiness, lifecycle, revenue per cohort user."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from aipm_nb.cohort.events import (
    Events,
    active_periods,
    cohort_index,
    complete_cells,
    period_end,
    period_start,
    resolve_as_of,
)
from aipm_nb.errors import SchemaError
from aipm_nb.results import Result

__all__ = ["ActiveUsers", "Lifecycle", "active_users", "lifecycle", "revenue_curves"]


@dataclass(frozen=True)
class ActiveUsers(Result):
    """Active users per day, ISO week and calendar month.

    Attributes:
        daily: ``day``, ``dau``.
        weekly: ``week`` (Monday), ``wau``, ``complete`` (the data covers the whole week).
        monthly: ``month``, ``mau``, ``avg_dau``, ``stickiness`` (average DAU / MAU) and
            ``complete`` (the month has ended).
    """

    daily: pd.DataFrame
    weekly: pd.DataFrame
    monthly: pd.DataFrame

    def to_pandas(self) -> pd.DataFrame:
        """The monthly table (MAU and stickiness)."""
        return self.monthly.copy()


@dataclass(frozen=True)
class Lifecycle(Result):
    """Users per period by lifecycle status (``new``, ``returning``, ``resurrecting``,
    ``dormant`` shown negative), indexed by period start.
    """

    table: pd.DataFrame
    period: str = "week"
    as_of: pd.Timestamp | None = None

    @property
    def complete(self) -> np.ndarray:
        """Per row: whether the period had ended by ``as_of`` (a running period's counts are
        partial: fewer active users so far, and more "dormant" ones who may still return).
        """
        if self.as_of is None:
            return np.ones(len(self.table), dtype=bool)
        return (period_end(self.table.index, self.period) <= self.as_of).to_numpy()

    def to_pandas(self) -> pd.DataFrame:
        """The table, one row per period."""
        return self.table.copy()

    def to_dict(self) -> dict[str, Any]:
        """One record per period, the period as ISO text, with ``complete``."""
        rows = [
            {"period": p.isoformat(), **{k: int(v) for k, v in r.items()}, "complete": bool(c)}
            for (p, r), c in zip(self.table.iterrows(), self.complete, strict=True)
        ]
        return {"periods": rows}


def _distinct_users(t: ir.Table, name: str, bucket: ir.DateValue, count: str) -> pd.DataFrame:
    """Distinct users per bucket (in the engine), the bucket as a datetime column ``name``."""
    out = (
        t.mutate(**{name: bucket})
        .group_by(name)
        .aggregate(**{count: t["__user"].nunique()})
        .order_by(name)
        .to_pandas()
    )
    out[name] = pd.to_datetime(out[name])
    return out


def active_users(events: Events) -> ActiveUsers:
    """DAU per day, WAU per ISO week, MAU per calendar month with stickiness."""
    t = events.table
    if events.return_events:
        t = t.filter(t[events.event_col].isin(events.return_events))
    daily = _distinct_users(t, "day", t["__ts"].date(), "dau")
    weekly = _distinct_users(t, "week", t["__ts"].truncate("W").date(), "wau")
    monthly = _distinct_users(t, "month", t["__ts"].truncate("M").date(), "mau")
    # a month counts only the days the data covers: from the first active day to the end of
    # the last event's day; a month the data does not fully cover is not complete
    first = daily.day.min()
    end = events.last_event.normalize() + pd.Timedelta(days=1)
    month_end = monthly.month + pd.offsets.MonthBegin(1)
    covered = (month_end.clip(upper=end) - monthly.month.clip(lower=first)).dt.days
    dau_sum = daily.groupby(daily.day.dt.to_period("M").dt.start_time).dau.sum()
    monthly["avg_dau"] = (monthly.month.map(dau_sum) / covered.where(covered > 0)).astype(float)
    monthly["stickiness"] = monthly.avg_dau / monthly.mau
    monthly["complete"] = (monthly.month >= first) & (month_end <= end)
    weekly["complete"] = (weekly.week >= first) & (weekly.week + pd.Timedelta(days=7) <= end)
    return ActiveUsers(daily, weekly, monthly)


def lifecycle(events: Events, *, as_of: Any = None) -> Lifecycle:
    """PostHog lifecycle per period: new, returning, resurrecting and dormant users.

    new: the cohort period (first activation event); returning: active now and in the previous
    period; resurrecting: active now, not in the previous period, not new; dormant: active in
    the previous period and not now (shown negative). Only activated users count, from their
    cohort period on. ``as_of`` (default: midnight after the last event) bounds the events;
    a period that has not ended by then is marked incomplete (`Lifecycle.complete`).
    """
    events, as_of_ts = resolve_as_of(events, as_of)
    coh = cohort_index(events)
    # only activated users, from their cohort period on (activity before sign-up is not
    # "resurrecting"; never-activated users are never "dormant"); the cohort period is active
    act = (
        active_periods(events)
        .join(coh, "__user")
        .filter(ibis._["__p"] >= ibis._["__c"])
        .select("__user", "__p")
        .union(coh.select("__user", __p=coh["__c"]), distinct=True)
    )
    prev = act.select(__user=act["__user"], __p=act["__p"] + 1, __was=ibis.literal(1))
    cur = act.join(coh, "__user").left_join(prev, ["__user", "__p"])
    status = ibis.cases(
        (cur["__p"] == cur["__c"], "new"),
        (cur["__was"].notnull(), "returning"),
        else_="resurrecting",
    )
    counts = cur.mutate(status=status).group_by(["__p", "status"]).aggregate(n=ibis._.count())
    nxt = act.select(__user=act["__user"], __p=act["__p"] - 1)
    last_p = int(events.table["__p"].max().to_pandas())  # the last period of the data
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
    return Lifecycle(wide.astype(int), period=events.period, as_of=as_of_ts)


def revenue_curves(
    events: Events, revenue_col: str, *, max_periods: int = 12, as_of: Any = None
) -> pd.DataFrame:
    """Cumulative revenue per cohort user (LTV curve) by cohort and period k; incomplete
    cells null. Revenue of events before a user's cohort period is left out.
    """
    events, as_of_ts = resolve_as_of(events, as_of)
    t = events.table
    if revenue_col not in t.columns:
        raise SchemaError(
            f"{events.label} has no column {revenue_col!r}; set revenue_col= to a numeric column",
            table=events.label,
            column=revenue_col,
        )
    if not t[revenue_col].type().is_numeric():
        raise SchemaError(
            f"{events.label} column {revenue_col!r} has type {t[revenue_col].type()}; "
            "expected numeric",
            table=events.label,
            column=revenue_col,
        )
    coh = cohort_index(events)
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
    complete = complete_cells(cc.ravel(), kk.ravel(), events.period, as_of_ts).reshape(cc.shape)
    cum = cum.where(complete)
    cum.index = pd.DatetimeIndex(period_start(wide.index.to_numpy(), events.period), name="cohort")
    cum.columns.name = "k"
    return cum
