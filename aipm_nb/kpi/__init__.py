"""KPI monitoring: engagement, conversion and model KPIs against their baselines and targets.

`monitor_kpis` aggregates each KPI per bucket in the engine, scores the latest complete bucket
against the ``baseline_periods`` before it (robust z, p-chart for rates; DESIGN section 4) and
returns a `KpiResult` with the scorecard, the series, the per-segment drill-down and a verdict.
"""

from aipm_nb.kpi.analyze import KpiResult, format_value, monitor_kpis, paired_predictions
from aipm_nb.kpi.spec import KPI_TYPES, Kpi, parse_kpis

__all__ = [
    "KPI_TYPES",
    "Kpi",
    "KpiResult",
    "format_value",
    "monitor_kpis",
    "paired_predictions",
    "parse_kpis",
]
