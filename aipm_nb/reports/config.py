"""Report configuration: read ``reports.yml``, check names and parameters before anything runs.

Everything a run writes is named after a report (``<name>.ipynb/.html/.json``) beside the
run's manifest ``run.json``; the names the runner uses itself are reserved so that no report
can overwrite another output.
"""

from __future__ import annotations

import ast
import datetime as dt
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from aipm_nb.errors import ConfigError, ParameterError
from aipm_nb.reports.redaction import Scrubber, redact, url_secrets
from aipm_nb.resources import TEMPLATE_PREFIX, template_path

__all__ = [
    "RESERVED_NAMES",
    "RESERVED_PARAMETERS",
    "ReportSpec",
    "inspect_parameters",
    "load_config",
    "secret_values",
    "validate_config",
]

SLUG_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
#: Set by the runner, never by a config.
RESERVED_PARAMETERS = frozenset({"summary_path"})
#: Report names that would collide with the runner's own files (``run.json``, ``index.html``,
#: ``latest.json``); compared case-insensitively for case-insensitive file systems.
RESERVED_NAMES = frozenset({"run", "index", "latest"})


@dataclass(frozen=True)
class ReportSpec:
    """One configured report.

    Attributes:
        name: Slug naming the report's files.
        notebook: The template to execute.
        parameters: Papermill parameters (JSON-safe: YAML dates are ISO strings).
        title: Optional title shown in the index (a string).
    """

    name: str
    notebook: Path
    parameters: dict[str, Any]
    title: str | None = None


def is_slug(value: object) -> bool:
    """True for names of letters, digits, '-' and '_' (no trailing newline, no dot)."""
    return isinstance(value, str) and SLUG_RE.fullmatch(value) is not None


def json_parameter(value: Any, where: str) -> Any:
    """A JSON-safe copy of a YAML parameter value: dates become ISO strings; anything JSON
    cannot hold is a `ConfigError` naming the key.

    Examples:
        >>> json_parameter({"as_of": dt.date(2024, 3, 1)}, "p")
        {'as_of': '2024-03-01'}
    """
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): json_parameter(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_parameter(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}: {value!r} is not a finite number")
    if value is None or isinstance(value, str | bool | int | float):
        return value
    raise ConfigError(
        f"{where}: a {type(value).__name__} value cannot be passed to a notebook; use a "
        "string, number, boolean, list or mapping"
    )


def _read_yaml(path: Path) -> Any:
    if not path.exists():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None


def _spec(item: Any, where: str, base: Path, seen: set[str]) -> ReportSpec:
    if not isinstance(item, Mapping):
        raise ConfigError(f"{where}: expected a mapping with name, notebook, parameters")
    unknown = set(item) - {"name", "notebook", "parameters", "title"}
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    name = item.get("name")
    if not is_slug(name):
        raise ConfigError(
            f"{where}: name {name!r} is not a slug (letters, digits, '-', '_'; no '/' or '.')"
        )
    assert isinstance(name, str)
    if name.lower() in RESERVED_NAMES:
        raise ConfigError(
            f"{where}: name {name!r} is reserved for the runner's own files "
            f"({', '.join(sorted(RESERVED_NAMES))}); pick another name"
        )
    if name.lower() in seen:
        raise ConfigError(f"{where}: duplicate report name {name!r}")
    seen.add(name.lower())
    nb = item.get("notebook")
    if not isinstance(nb, str):
        raise ConfigError(
            f"{where} ({name}): 'notebook' must be a path, a template name or 'template:NAME'"
        )
    bare = "/" not in nb and "\\" not in nb and not nb.endswith(".ipynb")
    if nb.startswith(TEMPLATE_PREFIX) or (bare and not (base / nb).exists()):
        try:
            nb_path = template_path(nb)
        except ParameterError as exc:
            raise ConfigError(f"{where} ({name}): {exc}") from None
    else:
        nb_path = (base / nb).resolve()
    if not nb_path.exists():
        raise ConfigError(f"{where} ({name}): notebook {nb!r} does not exist")
    params = item.get("parameters") or {}
    if not isinstance(params, Mapping):
        raise ConfigError(f"{where} ({name}): 'parameters' must be a mapping")
    title = item.get("title")
    if title is not None and not isinstance(title, str):
        raise ConfigError(f"{where} ({name}): 'title' must be a string; got {title!r}")
    params = {
        str(k): json_parameter(v, f"{where} ({name}): parameter {k!r}") for k, v in params.items()
    }
    return ReportSpec(name, nb_path, params, title)


def load_config(path: str | os.PathLike[str]) -> tuple[list[ReportSpec], Path]:
    """Read and check a report configuration; returns the reports and the config's folder.

    Raises:
        ConfigError: missing file, bad YAML, missing keys, a bad, reserved or duplicate name,
            a missing notebook, a parameter JSON cannot hold. Parameters are checked against
            the notebooks by `validate_config`.
    """
    path = Path(path)
    raw = _read_yaml(path)
    if not isinstance(raw, Mapping) or not isinstance(raw.get("reports"), list):
        raise ConfigError(f"{path}: expected a mapping with a 'reports' list")
    base = path.resolve().parent
    seen: set[str] = set()
    specs = [
        _spec(item, f"{path}: reports[{i}]", base, seen) for i, item in enumerate(raw["reports"])
    ]
    if not specs:
        raise ConfigError(f"{path}: 'reports' is empty")
    return specs, base


def inspect_parameters(notebook: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The parameters a template declares: name -> {"type", "default", "help"}.

    Types are inferred from the default value (papermill's inspection gives the text).
    """
    import papermill as pm

    out = {}
    for name, p in pm.inspect_notebook(str(notebook)).items():
        try:
            default = ast.literal_eval(p["default"])
            typ = type(default).__name__ if default is not None else "any"
        except (ValueError, SyntaxError):
            default, typ = p["default"], "any"
        out[name] = {"type": typ, "default": default, "help": p.get("help", "")}
    return out


_TYPE_OK: dict[str, Callable[[Any], bool]] = {
    "any": lambda v: True,
    "str": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "list": lambda v: isinstance(v, list),
    "dict": lambda v: isinstance(v, dict),
}


def _parameter_problems(spec: ReportSpec, declared: Mapping[str, Mapping[str, Any]]) -> list[str]:
    problems = []
    for key, value in spec.parameters.items():
        if key in RESERVED_PARAMETERS:
            problems.append(f"{spec.name}: parameter {key!r} is set by the runner")
        elif key not in declared:
            problems.append(
                f"{spec.name}: unknown parameter {key!r} for {spec.notebook.name} "
                f"(declared: {', '.join(sorted(declared))})"
            )
        elif value is not None and not _TYPE_OK.get(declared[key]["type"], _TYPE_OK["any"])(value):
            problems.append(
                f"{spec.name}: parameter {key!r} is {type(value).__name__} "
                f"{redact(repr(value))[:60]}; expected {declared[key]['type']}"
            )
    return problems


def validate_config(
    specs: Sequence[ReportSpec], base: Path, *, check_sources: bool = True
) -> list[str]:
    """Problems, one line each: unknown parameters, wrong types, sources that cannot be opened.

    With ``check_sources`` the analyses' own checks (columns, types, allowed values) run on
    the real sources, without executing the notebooks (`aipm_nb.reports.checks`).
    """
    problems = []
    declared_cache: dict[Path, dict[str, dict[str, Any]]] = {}
    for spec in specs:
        if spec.notebook not in declared_cache:
            try:
                declared_cache[spec.notebook] = inspect_parameters(spec.notebook)
            except Exception as exc:
                problems.append(f"{spec.name}: cannot inspect {spec.notebook.name}: {exc}")
                continue
        found = _parameter_problems(spec, declared_cache[spec.notebook])
        problems += found
        if check_sources and not found:
            from aipm_nb.reports.checks import check_report

            problems += check_report(spec, base)
    scrubber = Scrubber(secret_values([s.parameters for s in specs]))
    return [scrubber.text(p) for p in problems]


def _walk(v: Any) -> list[Any]:
    if isinstance(v, Mapping):
        return [x for item in v.values() for x in _walk(item)]
    if isinstance(v, list | tuple):
        return [x for item in v for x in _walk(item)]
    return [v]


def secret_values(parameters: Any) -> list[str]:
    """Values that must never appear in an output: resolved ``env:`` values and every string
    holding a URL password or secret query value (the `Scrubber` finds their fragments).
    """
    out = []
    for v in _walk(parameters):
        if not isinstance(v, str):
            continue
        if v.startswith("env:") and v[4:] in os.environ:
            out.append(os.environ[v[4:]])
        elif url_secrets(v):
            out.append(v)
    return sorted(set(out), key=len, reverse=True)
