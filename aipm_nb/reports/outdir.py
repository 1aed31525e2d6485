"""The output folder of report runs: checked up front, run folders created atomically,
staging folders of killed runners removed, and a lock for the manifest + index writes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from aipm_nb.errors import ConfigError
from aipm_nb.reports.config import is_slug

__all__ = ["STAGING_PREFIX", "create_run_dir", "index_lock", "prepare_out", "remove_stale_staging"]

#: Hidden folder each runner writes into before publishing (``.staging-<pid>-…``).
STAGING_PREFIX = ".staging-"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def prepare_out(out: str | os.PathLike[str] | None, base: Path) -> Path:
    """The output folder, created and checked writable, or a one-line `ConfigError`."""
    if out is not None and not str(out).strip():
        raise ConfigError("--out is empty; give a folder (default: reports/ beside the config)")
    out_dir = Path(out) if out is not None else base / "reports"
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {str(out_dir)!r} is a file, not a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as exc:
        raise ConfigError(
            f"--out {str(out_dir)!r} is not a writable folder: {exc.strerror or exc}"
        ) from None
    return out_dir


def create_run_dir(out_dir: Path, run_id: str | None) -> tuple[str, Path]:
    """Create the run's folder atomically: a given id that exists is refused; an automatic id
    (UTC time) gets a ``-2``, ``-3``… suffix until ``mkdir`` succeeds.
    """
    if run_id is not None:
        if not is_slug(run_id):
            raise ConfigError(f"--run-id {run_id!r} is not a slug (letters, digits, '-', '_')")
        try:
            (out_dir / run_id).mkdir()
        except FileExistsError:
            raise ConfigError(
                f"run {run_id!r} already exists in {out_dir} (or another run is using it); "
                "pick another --run-id"
            ) from None
        return run_id, out_dir / run_id
    stamp = _now().strftime("%Y%m%dT%H%M%SZ")
    for k in range(1, 10_000):
        candidate = stamp if k == 1 else f"{stamp}-{k}"
        try:
            (out_dir / candidate).mkdir()
        except FileExistsError:
            continue
        return candidate, out_dir / candidate
    raise ConfigError(f"could not create a run folder in {out_dir}")  # pragma: no cover


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_staging(out_dir: Path) -> list[Path]:
    """Remove staging folders whose runner process is gone (killed with SIGKILL, say)."""
    removed = []
    for folder in out_dir.glob(f"{STAGING_PREFIX}*"):
        m = re.match(rf"{re.escape(STAGING_PREFIX)}(\d+)-", folder.name)
        if m and int(m.group(1)) != os.getpid() and _pid_alive(int(m.group(1))):
            continue
        if m is None and time.time() - folder.stat().st_mtime < 3600:
            continue  # an older runner's folder: give it an hour
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


@contextlib.contextmanager
def index_lock(out_dir: Path) -> Iterator[None]:
    """Serialise manifest + index writes of concurrent runs sharing one ``--out``."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock, last writer wins
        yield
        return
    with open(out_dir / ".index.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
