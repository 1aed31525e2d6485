"""Scale run: the cohort and A/B notebooks through papermill on ~100M events and a 20M-user
experiment (Parquet under benchmarks/data/scale/, not committed).

    python benchmarks/scale.py gen      # ~100M events (8M users) + 20M-user experiment
    python benchmarks/scale.py run      # runs both notebooks, prints wall time and peak RSS

Peak RSS is the largest of the papermill process and its kernel (RUSAGE_CHILDREN).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCALE = HERE / "data" / "scale"


def gen() -> None:
    from aipm_nb import synthetic

    (SCALE / "events").mkdir(parents=True, exist_ok=True)
    (SCALE / "experiment").mkdir(parents=True, exist_ok=True)
    chunk, n = 250_000, 0
    for i in range(32):  # 8M users
        df = synthetic.generate_events(chunk, seed=10_000 + i)
        df["user_id"] += i * chunk
        df["session_id"] += i * 10**9
        df.to_parquet(SCALE / "events" / f"part-{i:03d}.parquet", index=False)
        n += len(df)
    chunk = 2_000_000
    for i in range(10):  # 20M users
        df = synthetic.generate_experiment(chunk, seed=20_000 + i)
        df["user_id"] += i * chunk
        df.to_parquet(SCALE / "experiment" / f"part-{i:03d}.parquet", index=False)
    print(json.dumps({"events": n, "event_users": 32 * 250_000, "experiment_users": 20_000_000}))


def run_one(notebook: str, parameters: dict) -> dict:
    out = Path(tempfile.mkdtemp(prefix="aipm-scale-"))
    params = {**parameters, "summary_path": str(out / "summary.json")}
    cmd = [sys.executable, "-m", "papermill", str(ROOT / "notebooks" / notebook),
           str(out / "out.ipynb"), "-k", "python3", "--no-progress-bar",
           "-y", json.dumps(params)]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    summary = json.loads((out / "summary.json").read_text()) if proc.returncode == 0 else None
    error = None if proc.returncode == 0 else proc.stderr.strip().splitlines()[-1]
    return {
        "notebook": notebook, "ok": proc.returncode == 0, "seconds": round(seconds, 1),
        "peak_rss_mb_so_far": round(peak), "rows": summary and summary["data"]["rows"],
        "error": error,
    }  # fmt: skip


def main(argv: list[str]) -> None:
    if argv[:1] == ["gen"]:
        gen()
    elif argv[:1] == ["run"]:
        which = argv[1] if len(argv) > 1 else "both"
        events = str(SCALE / "events" / "*.parquet")
        experiment = str(SCALE / "experiment" / "*.parquet")
        if which in ("cohort", "both"):
            print(json.dumps(run_one("cohort_analysis.ipynb", {"source": events})))
        if which in ("ab", "both"):
            print(json.dumps(run_one("ab_test_evaluation.ipynb", {"source": experiment})))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
