"""Run every benchmark side by side and print the Markdown table for benchmarks/README.md.

    python benchmarks/run_all.py [--repeat 3] [--only TASK ...] [--skip IMPL ...]

Each measurement is a fresh process (`bench.py run TASK IMPL`); the implementations of a task
run interleaved (A B A B …); the table shows the median of the repeats of the computation's wall
time (imports excluded), of the whole process's wall time (start-up and imports included: what a
scheduled run pays), and the largest peak RSS. A run over --timeout seconds is reported as such.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = {
    "cohort": ["aipm_nb", "duckdb_sql", "pandas"],
    "w1": ["aipm_nb", "duckdb_sql", "pandas"],
    "ab": ["aipm_nb", "duckdb_sql", "pandas_scipy", "tea_tasting", "aipm_nb_no_unit_check"],
    "model": ["aipm_nb", "sklearn_pandas", "evidently"],
    "model_continuous": ["aipm_nb", "aipm_nb_no_ks", "sklearn_pandas"],
    "w3": ["aipm_nb", "duckdb_sql", "sklearn_pandas", "aipm_nb_with_ks", "evidently"],
}


# Evidently 0.7 does not import with pandas 3: it runs from a venv of its own (make bench)
PYTHONS = {"evidently": HERE / ".venv-evidently" / "bin" / "python"}


def measure(task: str, impl: str, timeout: float) -> dict:
    own = PYTHONS.get(impl)
    python = str(own) if own is not None and own.exists() else sys.executable
    try:
        cmd = [python, str(HERE / "bench.py"), "run", task, impl]
        t0 = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
        process = time.perf_counter() - t0  # the whole process: start-up and imports included
    except subprocess.TimeoutExpired:
        return {"task": task, "impl": impl, "seconds": None, "error": f"> {timeout:.0f} s"}
    except subprocess.CalledProcessError as exc:
        last = (exc.stderr or "").strip().splitlines()[-1:] or ["failed"]
        return {"task": task, "impl": impl, "seconds": None, "error": last[0][:120]}
    return json.loads(out.stdout.strip().splitlines()[-1]) | {"process_seconds": round(process, 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=1200)
    ap.add_argument("--only", nargs="*", default=list(ORDER))
    ap.add_argument("--skip", nargs="*", default=[], help="implementations to leave out")
    args = ap.parse_args()
    results = []
    for task in args.only:
        # interleaved (A B A B …) so that a slow moment of the machine hits every implementation
        impls = [i for i in ORDER[task] if i not in args.skip]
        runs_of: dict[str, list[dict]] = {impl: [] for impl in impls}
        for rep in range(args.repeat):
            for impl in impls:
                if impl != "evidently" or rep == 0:
                    runs_of[impl].append(measure(task, impl, args.timeout))
        for impl, runs in runs_of.items():
            ok = [r for r in runs if r.get("seconds") is not None]
            row = {"task": task, "impl": impl, "repeats": len(runs)}
            if ok:
                row |= {
                    "seconds": statistics.median(r["seconds"] for r in ok),
                    "runs": [r["seconds"] for r in ok],
                    "process_seconds": statistics.median(r["process_seconds"] for r in ok),
                    "process_runs": [r["process_seconds"] for r in ok],
                    "peak_rss_mb": max(r["peak_rss_mb"] for r in ok),
                    "value": ok[0]["value"],
                }
            else:
                row["error"] = runs[0]["error"]
            results.append(row)
            print(json.dumps(row, default=str), file=sys.stderr, flush=True)
    (HERE / "results.json").write_text(json.dumps(
        {"machine": f"{platform.machine()}, Python {platform.python_version()}",
         "results": results}, indent=2, default=str) + "\n")  # fmt: skip
    print("| task | implementation | wall time (s) | whole process (s) | peak RSS (MB) "
          "| peer / aipm_nb (whole process) |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|")
    for task in args.only:
        rows = [r for r in results if r["task"] == task]
        base = next((r.get("process_seconds") for r in rows if r["impl"] == "aipm_nb"), None)
        for r in rows:
            sec, proc = r.get("seconds"), r.get("process_seconds")
            speed = f"{proc / base:.2f}" if proc and base and r["impl"] != "aipm_nb" else ""
            t = f"{sec:.2f}" if sec is not None else r.get("error", "")
            p = f"{proc:.2f}" if proc is not None else ""
            if len(r.get("runs", [])) > 1:
                t += f" [{min(r['runs']):.1f}–{max(r['runs']):.1f}]"
                p += f" [{min(r['process_runs']):.1f}–{max(r['process_runs']):.1f}]"
            mem = str(r.get("peak_rss_mb", ""))
            print(f"| {task} | {r['impl']} | {t} | {p} | {mem} | {speed} |")


if __name__ == "__main__":
    main()
