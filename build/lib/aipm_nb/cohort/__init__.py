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

Modules, one concern each: `events` (prepared events in the engine: local time, period index,
cohorts, activity, ``as_of``), `retention` (`analyze_cohorts`), `segments`
(`compare_retention`), `engagement` (active users, lifecycle, revenue curves), `present`
(Markdown and tables for people).
"""

from __future__ import annotations

from aipm_nb.cohort.engagement import (
    ActiveUsers,
    Lifecycle,
    active_users,
    lifecycle,
    revenue_curves,
)
from aipm_nb.cohort.events import PERIODS, RETENTION_TYPES, Events, period_start, prepare_events
from aipm_nb.cohort.present import retention_table, summary_markdown
from aipm_nb.cohort.retention import CohortResult, analyze_cohorts
from aipm_nb.cohort.segments import NULL_SEGMENT, RetentionComparison, compare_retention
from aipm_nb.stats.proportions import wilson_interval

__all__ = [
    "ActiveUsers",
    "Lifecycle",
    "CohortResult",
    "Events",
    "NULL_SEGMENT",
    "PERIODS",
    "RETENTION_TYPES",
    "RetentionComparison",
    "active_users",
    "analyze_cohorts",
    "compare_retention",
    "lifecycle",
    "period_start",
    "prepare_events",
    "retention_table",
    "revenue_curves",
    "summary_markdown",
    "wilson_interval",
]
