"""What the templates call before their analysis: optional columns are used only when present.

A template's optional parameters (the exposure time and segments of the A/B template, the segment,
adoption event and revenue of the cohort template, the label, segments and features of the model
template) default to the sample data's columns, so the committed templates show every section.
On a stranger's table those columns are usually missing: a parameter still at its shipped default
whose column (or event) is absent is switched off, and the section says which parameter turns it
on. A parameter the user set to anything else is used as given, so a missing column they named
stays a `SchemaError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

import ibis.expr.types as ir

from aipm_nb.markup import md
from aipm_nb.resources import template_path
from aipm_nb.results import Result
from aipm_nb.sources import open_source

__all__ = ["OPTIONAL", "TEMPLATES", "OptionalColumns", "paired_sample", "use_if_present"]

#: The shipped template of each summary kind.
TEMPLATES = {
    "ab_test": "ab_test_evaluation",
    "cohort": "cohort_analysis",
    "model_performance": "model_performance",
    "kpi": "kpi_monitoring",
    "llm_eval": "llm_evaluation",
    "funnel": "funnel_analysis",
}

#: Optional parameters of each template and the section each turns on.
OPTIONAL: dict[str, dict[str, str]] = {
    "ab_test": {
        "time_col": "the cumulative effect over time and the days still needed",
        "segment_cols": "the segment tables",
    },
    "cohort": {
        "segment_col": "retention by segment",
        "adoption_event": "retention of adopters vs non-adopters",
        "revenue_col": "revenue per cohort user",
    },
    "model_performance": {
        "label_col": "the label metrics (performance, calibration, thresholds)",
        "segment_cols": "the segment breakdown",
        "feature_cols": "feature drift",
    },
    "kpi": {"segment_col": "the drill-down by segment"},
    "llm_eval": {
        "prompt_col": "the breakdown by prompt version",
        "response_col": "unique response ids (else each row is a unit)",
        "rating_col": "thumbs-up rates",
        "latency_col": "latency percentiles",
        "cost_col": "cost per task",
        "refused_col": "refusal rates",
        "error_col": "error rates",
        "segment_col": "the breakdown by segment",
    },
    "funnel": {"breakdown_col": "the breakdown with tests across its groups"},
}


@dataclass(frozen=True)
class OptionalColumns(Result):
    """The optional parameters after `use_if_present`: ``values`` (what to pass on) and
    ``skipped`` (parameter -> why its section is off and how to turn it on).
    """

    kind: str
    values: dict[str, Any]
    skipped: dict[str, str] = field(default_factory=dict)

    def columns(self) -> dict[str, str]:
        """Column -> parameter of every optional column in use (for ``extra_columns``)."""
        out = {}
        for name, value in self.values.items():
            if name == "adoption_event" or not value:
                continue
            for col in value if isinstance(value, list) else [value]:
                out[col] = name
        return out

    def note(self, parameter: str) -> str:
        """Markdown saying why a section is off and which parameter turns it on ('' if on)."""
        if parameter in self.skipped:
            return f"*Skipped: {self.skipped[parameter]}.*"
        if not self.values.get(parameter):
            return (
                f"*Skipped: `{parameter}` is not set; set it to turn on "
                f"{OPTIONAL[self.kind][parameter]}.*"
            )
        return ""


@cache
def _defaults(kind: str) -> dict[str, Any]:
    from aipm_nb.reports.config import inspect_parameters

    declared = inspect_parameters(template_path(TEMPLATES[kind]))
    return {k: v["default"] for k, v in declared.items()}


def use_if_present(
    kind: str,
    source: Any,
    *,
    event_col: str = "event_name",
    table: str | None = None,
    **parameters: Any,
) -> OptionalColumns:
    """Switch off each optional parameter that is still at the template's default while its
    column (for ``adoption_event``: the event in ``event_col``) is missing from ``source``.

    Examples:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"user_id": [1], "variant": ["a"], "y": [1.0]})
        >>> o = use_if_present("ab_test", df, time_col="first_exposure", segment_cols=["platform"])
        >>> o.values
        {'time_col': None, 'segment_cols': []}
        >>> use_if_present("ab_test", df, time_col="y").values  # set by the user: kept
        {'time_col': 'y'}
    """
    defaults = _defaults(kind)
    # the schema is all this needs (no row count: that would be one more scan of the source)
    t = open_source(source, table=table, name="table", allow_empty=True).table
    columns = set(t.columns)
    values: dict[str, Any] = dict(parameters)
    skipped: dict[str, str] = {}
    for name, value in parameters.items():
        if name not in OPTIONAL[kind] or value != defaults.get(name) or not value:
            continue
        if name == "adoption_event":
            missing = _missing_event(t, event_col, value)
        else:
            wanted = value if isinstance(value, list) else [value]
            missing = ", ".join(repr(c) for c in wanted if c not in columns)
        if missing:
            values[name] = [] if isinstance(value, list) else None
            skipped[name] = (
                f"the table has no {md(missing)} (the sample data's); set `{name}=` to turn on "
                f"{OPTIONAL[kind][name]}"
            )
    return OptionalColumns(kind, values, skipped)


def _missing_event(t: ir.Table, event_col: str, event: str) -> str:
    if event_col not in t.columns:
        return f"column {event_col!r}"
    found = int(t.filter(t[event_col].cast("string") == event).limit(1).count().to_pandas())
    return "" if found else f"event {event!r} in column {event_col!r}"


def paired_sample(source: Any, second: Any, *, sample: str, second_sample: str) -> Any:
    """``second`` (a template's second table: predictions, preferences, assignments), except
    that its sample default ``second_sample`` goes with the sample ``sample`` only: a user's own
    table never gets the sample's second table.

    Examples:
        >>> paired_sample("mine.csv", "sample:b", sample="sample:a", second_sample="sample:b")
        >>> paired_sample("sample:a", "sample:b", sample="sample:a", second_sample="sample:b")
        'sample:b'
        >>> paired_sample("mine.csv", "theirs.csv", sample="sample:a", second_sample="sample:b")
        'theirs.csv'
    """
    if isinstance(second, str) and second == second_sample:
        return second if isinstance(source, str) and source == sample else None
    return second
