"""Retention by cohort: the matrix, cohort sizes and the average curve with Wilson CIs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import ibis
import numpy as np
import pandas as pd

from aipm_nb import config
from aipm_nb.cohort.events import (
    RETENTION_TYPES,
    Events,
    active_periods,
    cohort_index,
    complete_cells,
    period_end,
    period_start,
    prepare_events,
    resolve_as_of,
)
from aipm_nb.errors import DataError
from aipm_nb.results import Result, Verdict, jsonable, warning
from aipm_nb.stats.proportions import wilson_interval
from aipm_nb.validation import check_scalar

__all__ = ["CohortResult", "analyze_cohorts", "wilson_interval"]


@dataclass(frozen=True)
class CohortResult(Result):
    """Retention by cohort.

    Attributes:
        period, retention_type, max_periods, as_of, timezone: what was computed.
        cohorts: one row per cohort: ``cohort`` (start, local), ``size``.
        retained: users retained per cohort (rows) and period k (columns); NaN if incomplete.
        retention: ``retained / size``; NaN where incomplete (k = 0 is 1.0).
        average: per k: ``retention`` (size-weighted over complete cells), ``ci_lower``,
            ``ci_upper`` (Wilson, level 1 − alpha), ``users`` (cohort users with a complete
            cell).
        rows: events read; warnings: things the reader must know.
        alpha: 1 − the level of the intervals.
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
    alpha: float = config.ALPHA

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
                    "retention": jsonable(self.retention.loc[c].tolist()),
                }
                for c, s in zip(self.cohorts.cohort, self.cohorts["size"], strict=True)
            ],
            "average_retention": jsonable(self.average.retention.tolist()),
            "verdict": self.verdict.to_dict(),
        }

    @property
    def cohort_complete(self) -> np.ndarray:
        """Per cohort: whether its first period had ended by ``as_of`` (a cohort still
        enrolling has a partial size).
        """
        return (period_end(self.cohorts.cohort, self.period) <= self.as_of).to_numpy()

    @property
    def verdict(self) -> Verdict:
        """``improving`` / ``flat`` / ``declining``: the latest cohorts against earlier ones
        (`aipm_nb.cohort.trend.retention_trend`).
        """
        from aipm_nb.cohort.trend import retention_trend  # the trend reads this result

        return retention_trend(self).verdict()

    def _repr_html_(self) -> str:
        from aipm_nb.cohort.present import matrix_html  # presentation imports results

        return matrix_html(self)


def analyze_cohorts(
    source: Any,
    *,
    period: str = "week",
    retention_type: str = "on",
    max_periods: int = 12,
    as_of: Any = None,
    user_col: str = "user_id",
    time_col: str = "event_time",
    event_col: str = "event_name",
    activation_events: Sequence[str] | str | None = None,
    return_events: Sequence[str] | str | None = None,
    table: str | None = None,
    timezone: str = "UTC",
    events: Events | None = None,
) -> CohortResult:
    """Retention matrix, cohort sizes and the size-weighted average curve with Wilson CIs.

    Args:
        source: Events, one row per event (anything `aipm_nb.sources` opens).
        user_col: The user id column.
        time_col: The event time column.
        event_col: The event name column (used by the event filters).
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
    check_scalar(retention_type, "retention_type", one_of=RETENTION_TYPES)
    check_scalar(max_periods, "max_periods", typ=int, ge=1)
    if isinstance(source, Events):  # prepared events passed as the source
        events = events or source
    ev = events or prepare_events(
        source,
        user_col=user_col,
        time_col=time_col,
        event_col=event_col,
        activation_events=activation_events,
        return_events=return_events,
        period=period,
        timezone=timezone,
        table=table,
    )
    ev, as_of_ts = resolve_as_of(ev, as_of)
    act = active_periods(ev)
    # Without an activation filter the cohort is the first active period, so one pass over
    # the distinct (user, period) pairs gives cohorts, sizes (k = 0) and retention together.
    same = ev.activation_events is None and ev.return_events is None
    coh = act.group_by("__user").aggregate(__c=act["__p"].min()) if same else cohort_index(ev)
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
        raise DataError(
            f"{ev.label}: no user has an activation event {ev.activation_events}",
            table=ev.label,
            column=ev.event_col,
        )
    return _assemble(ev, sizes, counts, retention_type, max_periods, as_of_ts)


def _assemble(
    ev: Events,
    sizes: pd.DataFrame,
    counts: pd.DataFrame,
    retention_type: str,
    max_periods: int,
    as_of: pd.Timestamp,
) -> CohortResult:
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
    complete = complete_cells(cc.ravel(), kk.ravel(), ev.period, as_of).reshape(cc.shape).copy()
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
        avg = pd.DataFrame(
            {
                "retention": np.where(users > 0, kept / users, np.nan),
                "ci_lower": lo,
                "ci_upper": hi,
                "users": users.astype(int),
            },
            index=pd.Index(ks, name="k"),
        )
    warnings = list(ev.warnings)
    small = int((size < 30).sum())
    if small:
        msg = f"{small} cohorts have fewer than 30 users; read their rows with care"
        warnings.append(warning("small_cohorts", msg))
    return CohortResult(
        period=ev.period,
        retention_type=retention_type,
        max_periods=max_periods,
        as_of=as_of,
        timezone=ev.timezone,
        cohorts=pd.DataFrame({"cohort": starts, "size": sizes["size"].astype(int).to_numpy()}),
        retained=retained,
        retention=retention,
        average=avg,
        rows=ev.rows,
        users=int(size.sum()),
        warnings=tuple(warnings),
    )
