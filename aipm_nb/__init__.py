"""aipm-nb: notebook toolkit for AI product analysis.

Modules, one concern each:

* `aipm_nb.sources`: a DataFrame, file, glob, DuckDB file or URL as an ibis table; column checks.
* `aipm_nb.synthetic`: sample data generators with a known ground truth.
* `aipm_nb.experiment`: A/B test statistics on engine-side sufficient statistics, and a decision.
* `aipm_nb.cohort`: retention by cohort, segments, active users, lifecycle, revenue curves.
* `aipm_nb.model`: classifier performance from per-score counts, calibration, drift (PSI, KS),
  estimates before labels arrive (CBPE).
* `aipm_nb.kpi`: KPI monitoring against baselines and targets.
* `aipm_nb.funnel`: ordered / strict / unordered funnels, breakdowns and experiment arms.
* `aipm_nb.llm_eval`: ratings, pairwise preferences, latency and cost per model version.
* `aipm_nb.stats`: the statistics on aggregates (Welch, delta method, CUPED, SRM, corrections).
* `aipm_nb.plots`: matplotlib figures of results (never computes statistics).
* `aipm_nb.summary`: the JSON summary every notebook writes (DESIGN section 5).
* `aipm_nb.reports`: ``aipm-nb run`` / ``validate``: papermill runs into HTML + JSON + index,
  parameter and source checks, and the one owner of secret redaction.
* `aipm_nb.markup`: escaping of data values for Markdown/HTML; `aipm_nb.files`: atomic writes.
* `aipm_nb.config`: defaults; `aipm_nb.errors`: the exception hierarchy; `aipm_nb.cli`: ``aipm-nb``;
  `aipm_nb.project`: ``aipm-nb init``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> the module that defines it; imported on first use, so that ``import aipm_nb``
#: costs milliseconds and a notebook pays only for the analyses it calls (issue 14)
_LAZY = {
    "AipmNbError": "aipm_nb.errors",
    "ConfigError": "aipm_nb.errors",
    "DataError": "aipm_nb.errors",
    "ParameterError": "aipm_nb.errors",
    "SchemaError": "aipm_nb.errors",
    "SourceError": "aipm_nb.errors",
    "SourceNotFoundError": "aipm_nb.errors",
    "Source": "aipm_nb.sources",
    "check_columns": "aipm_nb.sources",
    "load_table": "aipm_nb.sources",
    "open_source": "aipm_nb.sources",
    "analyze_cohorts": "aipm_nb.cohort",
    "compare_retention": "aipm_nb.cohort",
    "analyze_experiment": "aipm_nb.experiment",
    "analyze_model": "aipm_nb.model",
    "redact": "aipm_nb.reports.redaction",
}

if TYPE_CHECKING:
    from aipm_nb.cohort import analyze_cohorts, compare_retention
    from aipm_nb.errors import (
        AipmNbError,
        ConfigError,
        DataError,
        ParameterError,
        SchemaError,
        SourceError,
        SourceNotFoundError,
    )
    from aipm_nb.experiment import analyze_experiment
    from aipm_nb.model import analyze_model
    from aipm_nb.reports.redaction import redact
    from aipm_nb.sources import Source, check_columns, load_table, open_source


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        from importlib.util import find_spec

        if name.startswith("_") or find_spec(f"aipm_nb.{name}") is None:
            raise AttributeError(f"module 'aipm_nb' has no attribute {name!r}")
        return import_module(f"aipm_nb.{name}")  # a submodule: aipm_nb.plots, aipm_nb.stats ...
    value = getattr(import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "AipmNbError",
    "ConfigError",
    "DataError",
    "ParameterError",
    "SchemaError",
    "Source",
    "analyze_cohorts",
    "analyze_experiment",
    "analyze_model",
    "compare_retention",
    "SourceError",
    "SourceNotFoundError",
    "check_columns",
    "load_table",
    "open_source",
    "redact",
]
