"""The command line every ``*_bench.py`` shares: ``gen N`` writes the data, ``run N IMPL`` times
one implementation in this (fresh) process and prints one JSON line: wall time without imports,
peak RSS of the process and the implementation's ``check`` value."""

from __future__ import annotations

import importlib
import json
import resource
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


def bench_main(
    argv: list[str],
    gen: Callable[[int], None],
    impls: Mapping[str, Callable[[int], Any]],
    warm: Mapping[str, str] | None = None,
) -> None:
    """``warm``: IMPL -> a module imported before the clock starts (imports are not timed)."""
    if argv[:1] == ["gen"]:
        gen(int(argv[1]))
        return
    n, impl = int(argv[1]), argv[2]
    fn = impls[impl]
    if warm and impl in warm:
        importlib.import_module(warm[impl])
    t0 = time.perf_counter()
    check = fn(n)
    seconds = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"events": n, "impl": impl, "seconds": round(seconds, 2),
                      "peak_rss_mb": round(rss), "check": check}))  # fmt: skip


def write_parquet(out: Path, select: str) -> None:
    """Write ``select`` (a DuckDB query) as Parquet files in folder ``out`` (one per thread)."""
    import duckdb

    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    con.execute(
        f"COPY ({select}) TO '{out}' (FORMAT parquet, PER_THREAD_OUTPUT true, OVERWRITE true)"
    )
