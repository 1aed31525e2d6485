"""Retention by segment or by feature adoption, with tests of the difference."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import ibis
import numpy as np
import pandas as pd

from aipm_nb import config
from aipm_nb.cohort.events import Events, cohort_index, prepare_events
from aipm_nb.cohort.retention import CohortResult, analyze_cohorts
from aipm_nb.errors import ParameterError, SchemaError
from aipm_nb.results import NULL_SEGMENT, Result, jsonable
from aipm_nb.stats.proportions import chi_square_across_groups, two_proportion_diff

__all__ = ["RetentionComparison", "compare_retention"]


@dataclass(frozen=True)
class RetentionComparison(Result):
    """Retention curves per segment and tests of the difference at chosen periods.

    Attributes:
        segment: What was compared (a column, or ``adopted <event>``).
        curves: ``segment``, ``k``, ``retention``, ``ci_lower``, ``ci_upper``, ``users``.
        tests: per tested k: ``k``, ``p_value`` (chi-square across segments), and for two
            segments ``diff`` (first minus second, in share points) with ``ci_lower``/``ci_upper``.
        results: the full `CohortResult` of each segment.
        alpha: 1 − the level of the intervals.
    """

    segment: str
    curves: pd.DataFrame
    tests: pd.DataFrame
    results: dict[str, CohortResult]
    alpha: float = config.ALPHA

    def to_pandas(self) -> pd.DataFrame:
        """The tests, one row per tested period k."""
        return self.tests.copy()

    def to_dict(self) -> dict[str, Any]:
        """What was compared, the curves and the tests (JSON-safe)."""
        return {
            "segment": self.segment,
            "alpha": self.alpha,
            "curves": jsonable(self.curves),
            "tests": jsonable(self.tests),
        }


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
        raise SchemaError(
            f"{ev.label} has no column {segment_col!r}; set segment_col= to one of "
            f"{[c for c in ev.table.columns if not c.startswith('__')]}",
            table=ev.label,
            column=segment_col,
        )
    coh = cohort_index(ev)
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
                table=ev.label,
                column=evcol,
            )
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
    values = sorted(
        v
        for v in seg_table.select("__seg").distinct().to_pandas().iloc[:, 0].tolist()
        if v is not None
    )
    if len(values) > 20:
        raise ParameterError(f"{label} has {len(values)} values; compare at most 20 segments")
    for v in values:
        users = seg_table.filter(seg_table["__seg"] == v).select("__user")
        sub = ev.table.semi_join(users, "__user")
        ev_v = replace(ev, table=sub)
        results[str(v)] = analyze_cohorts(
            None, events=ev_v, retention_type=retention_type, max_periods=max_periods, as_of=as_of
        )
    curves = pd.concat(
        [r.average.reset_index().assign(segment=s) for s, r in results.items()], ignore_index=True
    )[["segment", "k", "retention", "ci_lower", "ci_upper", "users"]]
    rows = []
    for k in test_periods:
        if k > max_periods:
            continue
        kept = np.array([float(r.retained[k].sum(min_count=1)) for r in results.values()])
        n = np.array([float(r.average.users[k]) for r in results.values()])
        row: dict[str, Any] = {"k": k, "p_value": chi_square_across_groups(kept, n)}
        if len(results) == 2 and ((n > 0) & ~np.isnan(kept)).all():
            d, lo, hi = two_proportion_diff(kept[0], n[0], kept[1], n[1])
            row |= {"diff": d, "ci_lower": lo, "ci_upper": hi}
        rows.append(row)
    return RetentionComparison(label, curves, pd.DataFrame(rows), results)
