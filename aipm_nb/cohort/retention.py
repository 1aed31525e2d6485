"""Retention by cohort: the matrix, cohort sizes and the average curve with Wilson CIs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import ibis
import numpy as np
import pandas as pd
from scipy import stats as sps

from aipm_nb.cohort.events import (
    RETENTION_TYPES,
    Events,
    active_periods,
    cohort_index,
    complete_cells,
    period_start,
    prepare_events,
    resolve_as_of,
)
from aipm_nb.errors import DataError, ParameterError
from aipm_nb.summary import json_safe

__all__ = ["CohortResult", "analyze_cohorts", "wilson_interval"]


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
        from aipm_nb.cohort.present import matrix_html  # presentation imports results

        return matrix_html(self)


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
