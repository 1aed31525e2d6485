"""``aipm-nb validate``: what a report run would check, run on the real sources up front.

For a shipped template the analysis itself runs, with the template's defaults overlaid by the
report's parameters, inside `aipm_nb.sources.schema_only`: every source opens with its real
columns and types but no rows, so every parameter, column and type check of the run happens,
with the run's own message, and the analysis stops at its first "has no rows"
(`EmptyTableError`), which here means "passed". Checks that need the data's values (a control
that is not a variant, duplicate units) are left to the run. For any other notebook the source
is opened.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aipm_nb.errors import AipmNbError, EmptyTableError
from aipm_nb.reports.config import ReportSpec, inspect_parameters

if TYPE_CHECKING:
    from aipm_nb.notebook import OptionalColumns

__all__ = ["check_report"]


@contextlib.contextmanager
def _cwd(path: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def _kwargs(fn: Callable[..., Any], params: Mapping[str, Any], **fixed: Any) -> dict[str, Any]:
    """The parameters ``fn`` accepts by name (the templates pass them on under the same names)."""
    accepted = inspect.signature(fn).parameters
    return {k: v for k, v in params.items() if k in accepted and k != "source"} | fixed


def _optional(kind: str, p: Mapping[str, Any]) -> OptionalColumns:
    """The template's optional parameters after `use_if_present`, as the template does it."""
    from aipm_nb.notebook import OPTIONAL, use_if_present

    chosen = {name: p.get(name) for name in OPTIONAL[kind]}
    return use_if_present(
        kind,
        p["source"],
        table=p.get("table"),
        event_col=p.get("event_col", "event_name"),
        **chosen,
    )


def _ab_test(p: Mapping[str, Any]) -> None:
    from aipm_nb.experiment import analyze_experiment

    kwargs = _kwargs(analyze_experiment, p, **_optional("ab_test", p).values)
    kwargs.pop("metrics", None)
    analyze_experiment(p["source"], p["metrics"], **kwargs)


def _cohort(p: Mapping[str, Any]) -> None:
    from aipm_nb.cohort import analyze_cohorts, prepare_events

    columns = _optional("cohort", p).columns()
    events = prepare_events(p["source"], **_kwargs(prepare_events, p, extra_columns=columns))
    analyze_cohorts(None, **_kwargs(analyze_cohorts, p, events=events))


def _model(p: Mapping[str, Any]) -> None:
    from aipm_nb.model import analyze_model

    optional = _optional("model_performance", p)
    analyze_model(p["source"], **_kwargs(analyze_model, p, **optional.values))


def _kpi(p: Mapping[str, Any]) -> None:
    from aipm_nb.kpi import monitor_kpis, paired_predictions

    optional = _optional("kpi", p)
    kwargs = _kwargs(monitor_kpis, p, **optional.values)
    kwargs["predictions_source"] = paired_predictions(p["source"], p.get("predictions_source"))
    kwargs.pop("kpis", None)
    monitor_kpis(p["source"], p["kpis"], **kwargs)


def _llm_eval(p: Mapping[str, Any]) -> None:
    from aipm_nb.llm_eval import evaluate_llm, paired_preferences

    optional = _optional("llm_eval", p)
    kwargs = _kwargs(evaluate_llm, p, **optional.values)
    kwargs["preferences_source"] = paired_preferences(p["source"], p.get("preferences_source"))
    evaluate_llm(p["source"], **kwargs)


def _funnel(p: Mapping[str, Any]) -> None:
    from aipm_nb.funnel import analyze_funnel, paired_assignments

    optional = _optional("funnel", p)
    kwargs = _kwargs(analyze_funnel, p, **optional.values)
    kwargs["assignments_source"] = paired_assignments(p["source"], p.get("assignments_source"))
    kwargs.pop("steps", None)
    analyze_funnel(p["source"], p["steps"], **kwargs)


_RUNS: dict[str, Callable[[Mapping[str, Any]], None]] = {
    "funnel": _funnel,
    "llm_eval": _llm_eval,
    "kpi": _kpi,
    "ab_test": _ab_test,
    "cohort": _cohort,
    "model_performance": _model,
}


def _kind(notebook: Path) -> str | None:
    from aipm_nb.notebook import TEMPLATES

    return next((k for k, stem in TEMPLATES.items() if notebook.stem == stem), None)


def check_report(spec: ReportSpec, base: Path) -> list[str]:
    """Problems a run of ``spec`` would hit in its analysis' checks, one line each (the run's
    own message).
    """
    if "source" not in spec.parameters:
        return []
    from aipm_nb.sources import open_source, schema_only

    kind = _kind(spec.notebook)
    try:
        with _cwd(base):
            if kind is None:
                open_source(
                    spec.parameters["source"],
                    table=spec.parameters.get("table"),
                    allow_empty=True,
                    name="source",
                )
                return []
            declared = inspect_parameters(spec.notebook)
            params = {k: v["default"] for k, v in declared.items()} | dict(spec.parameters)
            with schema_only():
                _RUNS[kind](params)
    except EmptyTableError:
        return []  # every check before the data passed
    except AipmNbError as exc:
        return [f"{spec.name}: {exc}"]
    except Exception as exc:  # a check we did not expect to fail: say so, do not crash
        return [f"{spec.name}: {type(exc).__name__}: {exc}"]
    return []
