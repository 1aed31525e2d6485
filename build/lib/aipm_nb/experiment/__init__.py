"""A/B test evaluation from per-arm sufficient statistics computed in the engine.

`analyze_experiment` is the entry point: it checks the table (one row per unit, known
variants), aggregates every metric per variant in one engine query, computes effects per
DESIGN section 4 (`aipm_nb.stats`), applies the multiple-testing correction, the SRM check and
power, and returns an `ExperimentResult` with a `Decision`.

Modules, one concern each:

* `spec`: metric specs and the one rule for the primary metric;
* `aggregate`: the engine side (per-arm sums in one query, unit checks, histograms);
* `analyze`: effects, corrections, power, cumulative effect: `analyze_experiment`;
* `decision`: the ship / do-not-ship / keep-running / investigate rule;
* `results`: the typed results;
* `present`: Markdown, HTML and tables for people.

Metrics are dicts (or `Metric`):

    {"name": "conversion", "type": "proportion", "column": "converted"}
    {"name": "revenue", "type": "mean", "column": "revenue", "covariate": "pre_revenue"}
    {"name": "ctr", "type": "ratio", "numerator": "clicks", "denominator": "views"}
    {"name": "latency", "type": "mean", "column": "latency_ms", "guardrail": True,
     "direction": "decrease"}

The first non-guardrail metric is the primary one (the one a "ship" decision rests on) unless
one says ``"primary": True``.
"""

from __future__ import annotations

from aipm_nb.experiment.aggregate import arm_histograms
from aipm_nb.experiment.analyze import analyze_experiment
from aipm_nb.experiment.decision import decide
from aipm_nb.experiment.present import metric_table, power_table, summary_markdown
from aipm_nb.experiment.results import Decision, ExperimentResult, MetricResult, PowerResult
from aipm_nb.experiment.spec import Metric, parse_metrics

__all__ = [
    "Decision",
    "ExperimentResult",
    "Metric",
    "MetricResult",
    "PowerResult",
    "analyze_experiment",
    "arm_histograms",
    "decide",
    "metric_table",
    "parse_metrics",
    "power_table",
    "summary_markdown",
]
