"""``aipm-nb run``: execute configured notebooks with papermill into HTML + JSON reports.

Contract (DESIGN section 6): for every run ``<out>/<run_id>/<name>.ipynb``, ``.html`` and
``.json`` (the notebook's summary), ``<out>/<run_id>/run.json`` (the run's manifest),
``<out>/index.html`` (every run, newest first) and ``<out>/latest.json``.

* Reports run in parallel, each in its own papermill process (its own kernel). ``timeout`` is
  each report's wall-clock limit; at the limit, or on SIGTERM / Ctrl-C, the whole process tree
  (papermill, the kernel, and any process a cell started) is killed.
* Every file is written under a temporary name and renamed; a run killed midway leaves only a
  hidden staging folder, removed by the next run, never half a report where the index points.
* Run ids are created atomically (``mkdir``), so two runs never share a folder; the manifest
  and the index are written under a lock, so concurrent runs all appear in the index.
* Secrets: ``env:NAME`` values are resolved inside the kernel, never written; a literal
  connection URL with a password in a source parameter is moved into a private environment
  variable before the notebook sees it (anywhere else it is redacted in place); every output is
  scrubbed structurally of the secret values and all their fragments.
"""

from __future__ import annotations

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
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import yaml

from aipm_nb.errors import AipmNbError, ConfigError
from aipm_nb.files import atomic_write
from aipm_nb.reports import html as report_html
from aipm_nb.reports.config import (
    ReportSpec,
    load_config,
    secret_values,
    validate_config,
)
from aipm_nb.reports.outdir import (
    STAGING_PREFIX,
    create_run_dir,
    index_lock,
    prepare_out,
    remove_stale_staging,
)
from aipm_nb.reports.redaction import Scrubber, redact, url_secrets
from aipm_nb.results import Result, jsonable

__all__ = ["IndexNotUpdated", "ReportResult", "RunInterrupted", "run_reports"]

_ACTIVE: dict[subprocess.Popen[bytes], str] = {}  # papermill processes of running reports
_ACTIVE_LOCK = threading.Lock()


class RunInterrupted(BaseException):
    """SIGTERM or Ctrl-C stopped a run; ``stopped`` names the reports that were killed."""

    def __init__(self, signum: int, stopped: Sequence[str] = (), run_dir: Path | None = None):
        super().__init__(signum)
        self.signum = signum
        self.stopped = list(stopped)
        self.run_dir = run_dir

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as a shell reports it."""
        return 128 + self.signum


class IndexNotUpdated(AipmNbError):  # noqa: N818 (names the outcome, as RunInterrupted)
    """The reports ran but the manifest or the index could not be written."""

    def __init__(self, message: str, run_id: str, results: Sequence[ReportResult]) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.results = list(results)


#: The outcome of one report.
ReportStatus = Literal["ok", "failed"]


@dataclass(frozen=True)
class ReportResult(Result):
    """What happened to one report of a run (one entry of ``run.json``)."""

    name: str
    notebook: str
    status: ReportStatus
    duration_s: float
    started_at: str
    error: str | None = None
    failed_cell: int | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    headline: list[str] = field(default_factory=list)
    kind: str | None = None
    title: str | None = None
    verdict: str | None = None  # the report's verdict status (result.verdict), if it has one

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (the manifest's entry)."""
        return jsonable(asdict(self))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# ---------------------------------------------------------------------------------------
# secrets


def _is_source_key(key: str) -> bool:
    return key == "source" or key.endswith("_source")


def hide_literal_secrets(
    params: Mapping[str, Any], name: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """Literal source URLs with a password move into private environment variables
    (``env:`` references); a URL with a password in any other parameter (a title, say) is
    redacted in place.
    """
    env: dict[str, str] = {}
    out: dict[str, Any] = {}
    for i, (k, v) in enumerate(params.items()):
        if isinstance(v, str) and _is_source_key(k) and url_secrets(v):
            var = f"AIPM_NB_SECRET_{re.sub(r'[^A-Za-z0-9]', '_', name).upper()}_{i}"
            env[var] = v
            out[k] = f"env:{var}"
        else:
            out[k] = Scrubber().scrub(v)
    return out, env


# ---------------------------------------------------------------------------------------
# running one report


def _kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """Kill a papermill process, its kernel and every process a cell started."""
    import psutil

    try:
        root = psutil.Process(proc.pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        procs = []
    own = os.getpgrp()
    groups = set()
    for p in procs:
        with contextlib.suppress(psutil.Error, OSError):
            groups.add(os.getpgid(p.pid))
    for g in groups - {own}:
        with contextlib.suppress(OSError):
            os.killpg(g, signal.SIGKILL)
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.kill()
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _execute(
    cmd: list[str], env: dict[str, str], log_file: Path, timeout: float, name: str
) -> tuple[int, str | None]:
    """Run papermill; returns its exit code and an error when it was killed."""
    with open(log_file, "wb") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        with _ACTIVE_LOCK:
            _ACTIVE[proc] = name
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_tree(proc)
            return -9, f"timed out after {timeout:g} s; the kernel and its processes were stopped"
        finally:
            with _ACTIVE_LOCK:
                _ACTIVE.pop(proc, None)
    if code < 0:
        return code, f"stopped by signal {-code} (the run was interrupted or the kernel killed)"
    return code, None


#: What papermill's log says when the kernel never started. jupyter_client picks free ports,
#: releases them and starts the kernel; with kernels starting in parallel another process can
#: take a port in between, and the kernel dies binding it (jupyter/jupyter_client#154).
KERNEL_START_FAILURES = ("Kernel died before replying to kernel_info", "Kernel didn't respond in")


def _kernel_never_started(code: int, log_file: Path, nb: Mapping[str, Any] | None) -> bool:
    """Whether papermill failed before any cell ran because the kernel did not start."""
    if code == 0:
        return False
    log = log_file.read_text(encoding="utf-8", errors="replace")
    if not any(m in log for m in KERNEL_START_FAILURES):
        return False
    return not any(c.get("execution_count") for c in (nb or {}).get("cells", []))


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


def _failure(
    code: int, nb: Mapping[str, Any] | None, log_file: Path, timeout: float
) -> tuple[str, int | None]:
    error, failed_cell = _first_error(nb)
    log = log_file.read_text(encoding="utf-8", errors="replace")
    if "CellTimeoutError" in log:
        return f"timed out: the report ran longer than {timeout:g} s; the kernel was stopped", None
    if error is None:
        tail = log.strip().splitlines()
        error = tail[-1] if tail else f"papermill exited with code {code}"
    return error, failed_cell


@dataclass(frozen=True)
class _Job:
    spec: ReportSpec
    base: Path
    run_dir: Path
    staging: Path
    timeout: float
    show_code: bool


def _papermill_cmd(job: _Job, nb_stage: Path, params_file: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "papermill",
        str(job.spec.notebook),
        str(nb_stage),
        "-f",
        str(params_file),
        "--cwd",
        str(job.base),
        "-k",
        "python3",
        "--execution-timeout",
        str(max(1, int(job.timeout))),
        "--no-progress-bar",
        "--log-level",
        "WARNING",
    ]


def run_one(job: _Job) -> ReportResult:
    """Execute one report into staging, scrub it, and publish its files into the run folder."""
    spec, staging = job.spec, job.staging
    started, t0 = _now(), time.monotonic()
    scrub = Scrubber(secret_values(spec.parameters))
    params, extra_env = hide_literal_secrets(spec.parameters, spec.name)
    json_stage = staging / f"{spec.name}.json"
    params["summary_path"] = str(json_stage)
    if spec.title and "title" not in params:
        params["title"] = scrub.text(spec.title)
    params_file = staging / f"{spec.name}.params.yml"
    params_file.write_text(yaml.safe_dump(params), encoding="utf-8")
    nb_stage, log_file = staging / f"{spec.name}.ipynb", staging / f"{spec.name}.log"
    env = {**os.environ, **extra_env, "PYTHONUNBUFFERED": "1"}
    env.pop("MPLBACKEND", None)  # the kernel uses the inline backend: figures embedded as PNG
    cmd = _papermill_cmd(job, nb_stage, params_file)
    code, error = _execute(cmd, env, log_file, job.timeout, spec.name)
    if error is None and _kernel_never_started(code, log_file, _read_notebook(nb_stage)):
        # nothing ran: one more try with a fresh kernel (fresh ports); the first log is kept
        log_file.replace(log_file.with_name(f"{spec.name}.first-attempt.log"))
        code, error = _execute(cmd, env, log_file, job.timeout, spec.name)
    nb = _read_notebook(nb_stage)
    failed_cell = None
    if code != 0 and error is None:
        error, failed_cell = _failure(code, nb, log_file, job.timeout)
    summary = None
    if code == 0 and json_stage.exists():
        summary = scrub.scrub(json.loads(json_stage.read_text(encoding="utf-8")))
    result = ReportResult(
        name=spec.name,
        notebook=spec.notebook.name,
        status="ok" if code == 0 else "failed",
        duration_s=round(time.monotonic() - t0, 2),
        started_at=started.isoformat(timespec="seconds"),
        error=scrub.text(error) if error else None,
        failed_cell=failed_cell,
        kind=(summary or {}).get("kind"),
        title=(summary or {}).get("title"),
        headline=report_html.headline(summary) if summary else [],
        verdict=report_html.verdict_status(summary),
    )
    return _publish(job, result, scrub.scrub(nb) if nb else None, summary, scrub)


def _publish(
    job: _Job,
    result: ReportResult,
    nb: dict[str, Any] | None,
    summary: dict[str, Any] | None,
    scrub: Scrubber,
) -> ReportResult:
    import nbformat

    name = job.spec.name
    nb = nb or nbformat.v4.new_notebook()  # papermill never wrote one (killed at start)
    # the effective parameters (template defaults included) as the notebook recorded them
    shown = (summary or {}).get("parameters") or job.spec.parameters
    page = report_html.render_report(
        nb, result=result, parameters=scrub.scrub(shown), show_code=job.show_code
    )
    outputs = {"ipynb": f"{name}.ipynb", "html": f"{name}.html"}
    atomic_write(job.run_dir / outputs["ipynb"], json.dumps(nb, indent=1, ensure_ascii=False))
    atomic_write(job.run_dir / outputs["html"], page)
    if summary is not None:
        outputs["json"] = f"{name}.json"
        atomic_write(job.run_dir / outputs["json"], json.dumps(summary, indent=2) + "\n")
    return replace(result, outputs=outputs)


# ---------------------------------------------------------------------------------------
# a whole run


def _stop_all() -> list[str]:
    with _ACTIVE_LOCK:
        procs = dict(_ACTIVE)
    for proc in procs:
        _kill_tree(proc)
    return sorted(procs.values())


def _raise_on_signal(signum: int, frame: Any) -> None:
    raise RunInterrupted(signum)


def _status_line(r: ReportResult, run_dir: Path) -> str:
    line = f"{r.status.upper():<6} {r.name:<28} {r.duration_s:7.1f} s  "
    line += str(run_dir / r.outputs["html"]) if r.outputs else ""
    return line + (f"\n       {r.error}" if r.error else "")


def _collect(
    futures: Mapping[Future[ReportResult], ReportSpec],
    run_dir: Path,
    bar: Any,
    echo: Callable[[str], None],
) -> list[ReportResult]:
    """Gather finished reports as they complete, printing one status line each."""
    results = []
    for fut in as_completed(futures):
        spec = futures[fut]
        try:
            r = fut.result()
        except Exception as exc:  # a bug or a full disk in the runner itself: still isolate it
            r = ReportResult(
                spec.name,
                spec.notebook.name,
                "failed",
                0.0,
                _now().isoformat(timespec="seconds"),
                error=redact(f"{type(exc).__name__}: {exc}"),
            )
        results.append(r)
        (bar.write if bar else echo)(_status_line(r, run_dir))
        if bar:
            bar.update(1)
    return results


def _progress(total: int, run_id: str, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=f"run {run_id}", unit="report", file=sys.stderr)


def _run_all(
    jobs: Sequence[_Job], workers: int, run_id: str, progress: bool, echo: Callable[[str], None]
) -> list[ReportResult]:
    run_dir = jobs[0].run_dir
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(run_one, j): j.spec for j in jobs}
        bar = _progress(len(jobs), run_id, progress)
        try:
            results = _collect(futures, run_dir, bar, echo)
        except BaseException as exc:  # SIGTERM / Ctrl-C: stop every kernel, then leave
            stopped = _stop_all()
            pool.shutdown(wait=True, cancel_futures=True)
            signum = exc.signum if isinstance(exc, RunInterrupted) else signal.SIGINT
            if isinstance(exc, RunInterrupted | KeyboardInterrupt):
                raise RunInterrupted(signum, stopped, run_dir) from None
            raise
        if bar:
            bar.close()
    return results


def _write_manifest(
    out_dir: Path, run_dir: Path, manifest: dict[str, Any], echo: Callable[[str], None]
) -> None:
    with index_lock(out_dir):
        atomic_write(run_dir / "run.json", json.dumps(manifest, indent=2) + "\n")
        report_html.write_index(out_dir, warn=echo)


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
        ConfigError: the configuration, its parameters or ``out`` are invalid (nothing ran).
        RunInterrupted: SIGTERM / Ctrl-C stopped the run (no manifest is written).
        IndexNotUpdated: the reports ran but the manifest or index could not be written; the
            previous index is intact.
    """
    if not timeout > 0:
        raise ConfigError(f"--timeout must be more than 0 seconds; got {timeout:g}")
    specs, base = load_config(config)
    if only:
        unknown = sorted(set(only) - {s.name for s in specs})
        if unknown:
            raise ConfigError(f"--only names unknown reports {unknown}")
        specs = [s for s in specs if s.name in set(only)]
    problems = validate_config(specs, base, check_sources=False)
    if problems:
        raise ConfigError("\n".join(problems))
    out_dir = prepare_out(out, base)
    remove_stale_staging(out_dir)
    run_id, run_dir = create_run_dir(out_dir, run_id)
    staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=out_dir))
    started = _now()
    work = [_Job(s, base, run_dir, staging, float(timeout), show_code) for s in specs]
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _raise_on_signal)
    try:
        results = _run_all(work, max(1, jobs or os.cpu_count() or 1), run_id, progress, echo)
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
        "reports": [r.to_dict() for r in results],
    }
    try:
        _write_manifest(out_dir, run_dir, manifest, echo)
    except OSError as exc:
        raise IndexNotUpdated(
            f"the reports ran but the index could not be updated ({exc.strerror or exc}); "
            f"the previous {out_dir / 'index.html'} is unchanged",
            run_id,
            results,
        ) from None
    return run_id, results
