"""The JSON summary every notebook writes when ``summary_path`` is set (DESIGN section 5)."""

from __future__ import annotations

import datetime as dt
import json
import os
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from aipm_nb import config
from aipm_nb.errors import ParameterError
from aipm_nb.files import atomic_write
from aipm_nb.reports.redaction import redact
from aipm_nb.results import jsonable

__all__ = [
    "KINDS",
    "RESULT_KEYS",
    "build_summary",
    "json_safe",
    "notebook_parameters",
    "redact_parameters",
    "write_summary",
]

KINDS = ("cohort", "ab_test", "model_performance", "kpi", "llm_eval", "funnel")

#: Keys every ``result`` object of a kind has (DESIGN section 5); results may add more.
RESULT_KEYS: dict[str, frozenset[str]] = {
    "cohort": frozenset({"period", "retention_type", "cohorts", "average_retention", "verdict"}),
    "ab_test": frozenset({"control", "srm", "metrics", "decision", "verdict"}),
    "model_performance": frozenset(
        {"n", "n_labelled", "metrics", "calibration", "segments", "drift", "verdict"}
    ),
    "kpi": frozenset({"period", "kpis", "segments", "series", "verdict"}),
    "llm_eval": frozenset({"versions", "pairwise", "ratings", "verdict"}),
    "funnel": frozenset({"steps", "breakdown", "verdict"}),
}


def redact_parameters(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters with connection-URL passwords hidden; ``env:NAME`` values stay as written.

    Examples:
        >>> redact_parameters({"source": "postgresql://a:b@h/db", "period": "week"})
        {'source': 'postgresql://a:***@h/db', 'period': 'week'}
    """

    def clean(v: Any) -> Any:
        if isinstance(v, str):
            return redact(v)
        if isinstance(v, Mapping):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        if isinstance(v, bool | int | float) or v is None:
            return v
        return redact(repr(v))

    return {str(k): clean(v) for k, v in parameters.items()}


#: Names IPython puts in a kernel's namespace; never parameters.
_KERNEL_NAMES = frozenset({"In", "Out", "get_ipython", "exit", "quit", "open"})


def notebook_parameters(namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The notebook's parameters, read from its namespace instead of retyped: call it with
    ``globals()`` right after the imports of the first cell below the ``parameters`` cell
    (papermill's injected values included). Modules, functions, classes and private or IPython
    names are left out, and so is ``summary_path`` (where the summary goes, not what it says).

    Examples:
        >>> import math
        >>> notebook_parameters({"source": "x.csv", "alpha": 0.05, "math": math, "_": 1,
        ...                      "summary_path": "s.json", "In": []})
        {'source': 'x.csv', 'alpha': 0.05}
    """
    out = {}
    for name, value in namespace.items():
        if name.startswith("_") or name in _KERNEL_NAMES or name == "summary_path":
            continue
        if isinstance(value, types.ModuleType | type) or callable(value):
            continue
        out[name] = value
    return out


#: The one JSON-safe converter (`aipm_nb.results.jsonable`), under its older name.
json_safe = jsonable


def build_summary(
    kind: str,
    *,
    title: str,
    parameters: Mapping[str, Any],
    data: Mapping[str, Any],
    result: Mapping[str, Any],
    warnings: Sequence[Mapping[str, str]] = (),
    generated_at: str | None = None,
) -> dict[str, Any]:
    """Assemble the summary object (JSON-safe: NaN and infinity become null)."""
    if kind not in KINDS:
        raise ParameterError(f"summary kind must be one of {KINDS}; got {kind!r}")
    if "rows" not in data:
        raise ParameterError("summary data must include 'rows'")
    return json_safe(
        {
            "schema_version": config.SUMMARY_SCHEMA_VERSION,
            "kind": kind,
            "title": title,
            "generated_at": generated_at or dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "parameters": redact_parameters(parameters),
            "data": dict(data),
            "warnings": [{"code": str(w["code"]), "message": str(w["message"])} for w in warnings],
            "result": dict(result),
        }
    )


def write_summary(path: str | os.PathLike[str] | None, summary: Mapping[str, Any]) -> Path | None:
    """Write ``summary`` to ``path`` atomically (temporary file, then rename). No-op on None."""
    if path is None or path == "":
        return None
    text = json.dumps(summary, indent=2, allow_nan=False, ensure_ascii=False)
    return atomic_write(path, text + "\n")
