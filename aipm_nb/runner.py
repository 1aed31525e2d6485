"""``aipm-nb run``: execute configured notebooks with papermill into HTML + JSON reports.

Contract (DESIGN section 6): for every run ``<out>/<run_id>/<name>.ipynb``, ``.html`` and
``.json`` (the notebook's summary), ``<out>/<run_id>/run.json`` (the run's manifest),
``<out>/index.html`` (every run, newest first) and ``<out>/latest.json``.

* Reports run in parallel, each in its own papermill process (its own kernel) with a timeout
  that kills the whole process group, so one hung or failing notebook never stops the others.
* Every file is written under a temporary name and renamed; a run killed midway leaves only a
  hidden staging folder, never half a report where the index points.
* Secrets: ``env:NAME`` parameter values are resolved inside the kernel, never written; a literal
  connection URL with a password is moved into a private environment variable before the
  notebook sees it; and every output is scrubbed of the secret values and of URL passwords.
"""

from __future__ import annotations

import ast
import contextlib
import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aipm_nb.errors import ConfigError
from aipm_nb.sources import redact

__all__ = [
    "ReportResult",
    "ReportSpec",
    "atomic_write",
    "inspect_parameters",
    "load_config",
    "run_reports",
    "validate_config",
]

_ACTIVE: set[subprocess.Popen[bytes]] = set()  # papermill processes of the running reports
_ACTIVE_LOCK = threading.Lock()
SLUG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
RESERVED = {"summary_path"}  # set by the runner
_URL_WITH_PASSWORD = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:[^@\s/]+@")
_SECRET_QUERY = re.compile(r"(?i)[?&](password|pass|pwd|secret|token|key|api_key|apikey)=")


@dataclass(frozen=True)
class ReportSpec:
    """One configured report."""

    name: str
    notebook: Path
    parameters: dict[str, Any]
    title: str | None = None


@dataclass
class ReportResult:
    """What happened to one report of a run."""

    name: str
    notebook: str
    status: str  # "ok" | "failed"
    duration_s: float
    started_at: str
    error: str | None = None
    failed_cell: int | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    headline: list[str] = field(default_factory=list)
    kind: str | None = None
    title: str | None = None


# ---------------------------------------------------------------------------------------
# configuration


def load_config(path: str | os.PathLike[str]) -> tuple[list[ReportSpec], Path]:
    """Read and check a report configuration; returns the reports and the config's folder.

    Raises:
        ConfigError: missing file, bad YAML, missing keys, a bad or duplicate name, a missing
            notebook. Parameters are checked by `validate_config`.
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    if not isinstance(raw, Mapping) or not isinstance(raw.get("reports"), list):
        raise ConfigError(f"{path}: expected a mapping with a 'reports' list")
    base = path.resolve().parent
    specs: list[ReportSpec] = []
    seen: set[str] = set()
    for i, item in enumerate(raw["reports"]):
        where = f"{path}: reports[{i}]"
        if not isinstance(item, Mapping):
            raise ConfigError(f"{where}: expected a mapping with name, notebook, parameters")
        unknown = set(item) - {"name", "notebook", "parameters", "title"}
        if unknown:
            raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
        name = item.get("name")
        if not isinstance(name, str) or not SLUG_RE.match(name):
            raise ConfigError(
                f"{where}: name {name!r} is not a slug (letters, digits, '-', '_'; no '/' or '.')"
            )
        if name in seen:
            raise ConfigError(f"{where}: duplicate report name {name!r}")
        seen.add(name)
        nb = item.get("notebook")
        if not isinstance(nb, str):
            raise ConfigError(f"{where} ({name}): 'notebook' must be a path")
        nb_path = (base / nb).resolve()
        if not nb_path.exists():
            raise ConfigError(f"{where} ({name}): notebook {nb!r} does not exist")
        params = item.get("parameters") or {}
        if not isinstance(params, Mapping):
            raise ConfigError(f"{where} ({name}): 'parameters' must be a mapping")
        specs.append(ReportSpec(name, nb_path, dict(params), item.get("title")))
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


def validate_config(
    specs: Sequence[ReportSpec], base: Path, *, check_sources: bool = True
) -> list[str]:
    """Problems, one line each: unknown parameters, wrong types, sources that cannot be opened."""
    problems = []
    declared_cache: dict[Path, dict[str, dict[str, Any]]] = {}
    for spec in specs:
        if spec.notebook not in declared_cache:
            try:
                declared_cache[spec.notebook] = inspect_parameters(spec.notebook)
            except Exception as exc:
                problems.append(f"{spec.name}: cannot inspect {spec.notebook.name}: {exc}")
                continue
        declared = declared_cache[spec.notebook]
        for key, value in spec.parameters.items():
            if key in RESERVED:
                problems.append(f"{spec.name}: parameter {key!r} is set by the runner")
            elif key not in declared:
                problems.append(
                    f"{spec.name}: unknown parameter {key!r} for {spec.notebook.name} "
                    f"(declared: {', '.join(sorted(declared))})"
                )
            elif value is not None and not _TYPE_OK.get(declared[key]["type"], _TYPE_OK["any"])(
                value
            ):
                problems.append(
                    f"{spec.name}: parameter {key!r} is {type(value).__name__} "
                    f"{redact(repr(value))[:60]}; expected {declared[key]['type']}"
                )
        if check_sources and "source" in spec.parameters:
            problems += _check_source(spec, base)
    return problems


def _check_source(spec: ReportSpec, base: Path) -> list[str]:
    from aipm_nb.sources import open_source

    cwd = os.getcwd()
    try:
        os.chdir(base)
        open_source(
            spec.parameters["source"],
            table=spec.parameters.get("table"),
            allow_empty=True,
            name="source",
        )
    except Exception as exc:
        return [f"{spec.name}: {_scrub(str(exc), _secret_values(spec.parameters))}"]
    finally:
        os.chdir(cwd)
    return []


# ---------------------------------------------------------------------------------------
# secrets


def _secret_values(parameters: Mapping[str, Any]) -> list[str]:
    """Values that must never appear in an output: resolved env: values and literal URLs."""
    out = []
    for v in _walk(parameters):
        if isinstance(v, str) and v.startswith("env:") and v[4:] in os.environ:
            val = os.environ[v[4:]]
            if len(val) >= 4:
                out.append(val)
        elif isinstance(v, str) and _is_secret_url(v):
            out.append(v)
    return sorted(set(out), key=len, reverse=True)


def _is_secret_url(v: str) -> bool:
    return bool(_URL_WITH_PASSWORD.match(v) or ("://" in v and _SECRET_QUERY.search(v)))


def _walk(v: Any) -> list[Any]:
    if isinstance(v, Mapping):
        return [x for item in v.values() for x in _walk(item)]
    if isinstance(v, list | tuple):
        return [x for item in v for x in _walk(item)]
    return [v]


def _scrub(text: str, secrets: Sequence[str]) -> str:
    for s in secrets:
        text = text.replace(s, "***")
        # also as JSON-escaped (inside ipynb / json files)
        esc = json.dumps(s)[1:-1]
        if esc != s:
            text = text.replace(esc, "***")
    return redact(text)


def _hide_literal_secrets(params: Mapping[str, Any], name: str) -> tuple[dict[str, Any], dict]:
    """Move literal secret URLs into private environment variables (env: references)."""
    env: dict[str, str] = {}
    out = {}
    for i, (k, v) in enumerate(params.items()):
        if isinstance(v, str) and _is_secret_url(v):
            var = f"AIPM_NB_SECRET_{re.sub(r'[^A-Za-z0-9]', '_', name).upper()}_{i}"
            env[var] = v
            out[k] = f"env:{var}"
        else:
            out[k] = v
    return out, env


# ---------------------------------------------------------------------------------------
# files


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write to a temporary file in the same folder, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_run_id(out: Path) -> str:
    base = _now().strftime("%Y%m%dT%H%M%SZ")
    run_id, k = base, 1
    while (out / run_id).exists():
        k += 1
        run_id = f"{base}-{k}"
    return run_id


# ---------------------------------------------------------------------------------------
# running


def _run_one(
    spec: ReportSpec,
    base: Path,
    run_dir: Path,
    staging: Path,
    *,
    timeout: float,
    show_code: bool,
) -> ReportResult:
    from aipm_nb import report_html

    started = _now()
    t0 = time.monotonic()
    secrets = _secret_values(spec.parameters)
    params, extra_env = _hide_literal_secrets(spec.parameters, spec.name)
    json_stage = staging / f"{spec.name}.json"
    params["summary_path"] = str(json_stage)
    if spec.title and "title" not in params:
        params["title"] = spec.title
    params_file = staging / f"{spec.name}.params.yml"
    params_file.write_text(yaml.safe_dump(params), encoding="utf-8")
    nb_stage = staging / f"{spec.name}.ipynb"
    log_file = staging / f"{spec.name}.log"
    cmd = [
        sys.executable, "-m", "papermill", str(spec.notebook), str(nb_stage),
        "-f", str(params_file), "--cwd", str(base), "-k", "python3",
        "--execution-timeout", str(int(timeout)), "--no-progress-bar", "--log-level", "WARNING",
    ]  # fmt: skip
    env = {**os.environ, **extra_env, "PYTHONUNBUFFERED": "1"}
    env.pop("MPLBACKEND", None)  # the kernel uses the inline backend: figures embedded as PNG
    error: str | None = None
    with open(log_file, "wb") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        with _ACTIVE_LOCK:
            _ACTIVE.add(proc)
        try:
            code = proc.wait(timeout=timeout + 60)
        except subprocess.TimeoutExpired:
            _kill(proc)
            code, error = -9, f"timed out after {timeout:.0f} s; the kernel was stopped"
        finally:
            with _ACTIVE_LOCK:
                _ACTIVE.discard(proc)
        if code < 0 and error is None:
            error = f"stopped by signal {-code} (the run was interrupted or the kernel killed)"
    duration = time.monotonic() - t0
    nb = _read_notebook(nb_stage)
    failed_cell = None
    if code != 0 and error is None:
        error, failed_cell = _first_error(nb)
        if error is None:
            tail = log_file.read_text(encoding="utf-8", errors="replace").strip().splitlines()
            error = tail[-1] if tail else f"papermill exited with code {code}"
    if code != 0 and "CellTimeoutError" in log_file.read_text(encoding="utf-8", errors="replace"):
        error = f"timed out: a cell ran longer than {timeout:.0f} s; the kernel was stopped"
    if error:
        error = _scrub(error, secrets)

    summary = None
    if code == 0 and json_stage.exists():
        summary = json.loads(_scrub(json_stage.read_text(encoding="utf-8"), secrets))
    result = ReportResult(
        name=spec.name, notebook=spec.notebook.name, status="ok" if code == 0 else "failed",
        duration_s=round(duration, 2), started_at=started.isoformat(timespec="seconds"),
        error=error, failed_cell=failed_cell,
    )  # fmt: skip
    if summary:
        result.kind = summary.get("kind")
        result.title = summary.get("title")
        result.headline = report_html.headline(summary)
    if nb is None:  # papermill never got to write a notebook (bad kernel, killed at start)
        import nbformat

        nb = nbformat.v4.new_notebook()
    nb_text = _scrub(json.dumps(nb, indent=1, ensure_ascii=False), secrets)
    html = report_html.render_report(
        json.loads(nb_text),
        result=result,
        parameters=json.loads(_scrub(json.dumps(spec.parameters), secrets)),
        show_code=show_code,
    )
    html = _scrub(html, secrets)
    atomic_write(run_dir / f"{spec.name}.ipynb", nb_text)
    atomic_write(run_dir / f"{spec.name}.html", html)
    result.outputs = {"ipynb": f"{spec.name}.ipynb", "html": f"{spec.name}.html"}
    if summary is not None:
        atomic_write(run_dir / f"{spec.name}.json", json.dumps(summary, indent=2) + "\n")
        result.outputs["json"] = f"{spec.name}.json"
    return result


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """Stop a papermill process and its kernel (their own process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _stop_all() -> None:
    with _ACTIVE_LOCK:
        procs = list(_ACTIVE)
    for proc in procs:
        _kill(proc)


def _raise_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _read_notebook(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _first_error(nb: Mapping[str, Any] | None) -> tuple[str | None, int | None]:
    if not nb:
        return None, None
    code_index = 0
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        code_index += 1
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                ename, evalue = out.get("ename", "Error"), out.get("evalue", "")
                return f"{ename}: {evalue}".strip(), cell.get("execution_count") or code_index
    return None, None


def _collect(futures: Mapping[Any, ReportSpec], results: list[ReportResult], run_dir: Path,
             bar: Any, echo: Callable[[str], None]) -> None:  # fmt: skip
    """Gather finished reports as they complete, printing one status line each."""
    for fut in as_completed(futures):
        spec = futures[fut]
        try:
            r = fut.result()
        except Exception as exc:  # a bug in the runner itself: still isolate it
            r = ReportResult(spec.name, spec.notebook.name, "failed", 0.0,
                             _now().isoformat(timespec="seconds"),
                             error=redact(f"{type(exc).__name__}: {exc}"))  # fmt: skip
        results.append(r)
        line = f"{r.status.upper():<6} {r.name:<28} {r.duration_s:7.1f} s  "
        line += str(run_dir / r.outputs["html"]) if r.outputs else ""
        if r.error:
            line += f"\n       {r.error}"
        (bar.write if bar else echo)(line)
        if bar:
            bar.update(1)


def run_reports(
    config: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str] | None = None,
    only: Sequence[str] = (),
    run_id: str | None = None,
    jobs: int | None = None,
    show_code: bool = False,
    timeout: float = 600,
    echo: Callable[[str], None] = print,
    progress: bool = True,
) -> tuple[str, list[ReportResult]]:
    """Run the reports of ``config``; returns the run id and one result per report.

    Raises:
        ConfigError: the configuration or its parameters are invalid (nothing was run).
    """
    from aipm_nb import report_html

    specs, base = load_config(config)
    if only:
        unknown = sorted(set(only) - {s.name for s in specs})
        if unknown:
            raise ConfigError(f"--only names unknown reports {unknown}")
        specs = [s for s in specs if s.name in set(only)]
    problems = validate_config(specs, base, check_sources=False)
    if problems:
        raise ConfigError("\n".join(problems))
    out_dir = Path(out) if out is not None else base / "reports"
    out_dir.mkdir(parents=True, exist_ok=True)
    if run_id is not None and not SLUG_RE.match(run_id):
        raise ConfigError(f"--run-id {run_id!r} is not a slug (letters, digits, '-', '_')")
    run_id = run_id or new_run_id(out_dir)
    run_dir = out_dir / run_id
    if run_dir.exists() and any(run_dir.iterdir()):
        raise ConfigError(f"run {run_id!r} already exists in {out_dir}; pick another --run-id")
    run_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out_dir))
    started = _now()
    jobs = max(1, jobs or os.cpu_count() or 1)
    results: list[ReportResult] = []
    # A scheduler's SIGTERM (Airflow timeout, systemd stop) ends the run cleanly: kernels are
    # stopped, no run.json is written, so the index never points at this partial run.
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _raise_on_sigterm)
    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {
                pool.submit(
                    _run_one, s, base, run_dir, staging, timeout=timeout, show_code=show_code
                ): s
                for s in specs
            }
            bar = None
            if progress:
                from tqdm import tqdm

                bar = tqdm(total=len(specs), desc=f"run {run_id}", unit="report", file=sys.stderr)
            try:
                _collect(futures, results, run_dir, bar, echo)
            except BaseException:  # SIGTERM / Ctrl-C: stop every kernel, then leave
                _stop_all()
                pool.shutdown(wait=True, cancel_futures=True)
                raise
            if bar:
                bar.close()
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        shutil.rmtree(staging, ignore_errors=True)
    order = {s.name: i for i, s in enumerate(specs)}
    results.sort(key=lambda r: order[r.name])
    manifest = {
        "run_id": run_id,
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": _now().isoformat(timespec="seconds"),
        "status": "ok" if all(r.status == "ok" for r in results) else "failed",
        "reports": [r.__dict__ for r in results],
    }
    atomic_write(run_dir / "run.json", json.dumps(manifest, indent=2) + "\n")
    report_html.write_index(out_dir)
    return run_id, results
