"""CBPE benchmark (issue 19): performance estimates per week for 10M predictions whose scores are
all distinct (benchmarks/data/predictions_continuous, from `bench.py gen-continuous`),
aipm_nb against NannyML's CBPE (in its own venv: benchmarks/.venv-nannyml).

    .venv/bin/python benchmarks/cbpe_bench.py aipm            # estimates only, as NannyML
    .venv/bin/python benchmarks/cbpe_bench.py aipm-realized   # + the realized weekly metrics
    benchmarks/.venv-nannyml/bin/python benchmarks/cbpe_bench.py nannyml

Reference: the first 30 days (labelled); analysis: the rest, weekly; metrics ROC AUC,
accuracy, precision, recall, F1 at threshold 0.5. Each run a fresh process, imports not timed;
peak RSS of the process. Prints JSON with the mean estimated ROC AUC over the analysis weeks
(the two tools calibrate differently, so the estimates agree only roughly).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "predictions_continuous"
METRICS = ["roc_auc", "accuracy", "precision", "recall", "f1"]
#: ``aipm-realized`` also computes the realized metrics of the labelled weeks (what the model
#: report shows beside the estimates; NannyML's CBPE gives estimates only, like ``aipm``)
REALIZED = False


def run_aipm() -> float:
    import ibis
    import pandas as pd

    from aipm_nb.model.estimate import estimate_by_window
    from aipm_nb.sources import open_source

    t = open_source(str(DATA / "*.parquet"), name="predictions").table
    t = t.mutate(__s=t.score.cast("float64"), __y=t.label.cast("float64"))
    span = t.aggregate(lo=t.event_time.min(), hi=t.event_time.max()).to_pandas().iloc[0]
    ref_end = pd.Timestamp(span.lo) + pd.Timedelta(days=30)
    is_ref = t.event_time < ibis.literal(ref_end.to_pydatetime())
    est, _ = estimate_by_window(t, "event_time", "week", 0.5, is_ref, (span.lo, span.hi),
                                with_realized=REALIZED)  # fmt: skip
    a = est[(est.metric == "roc_auc") & (est.window >= ref_end)]
    return float(a.estimate.mean())


def run_nannyml() -> float:
    import nannyml as nml
    import pandas as pd

    df = pd.read_parquet(DATA, columns=["event_time", "score", "label"])
    df["y_pred"] = (df.score >= 0.5).astype(int)
    ref_end = df.event_time.min() + pd.Timedelta(days=30)
    ref = df[(df.event_time < ref_end) & df.label.notna()].copy()
    ana = df[df.event_time >= ref_end].drop(columns=["label"])
    ref["label"] = ref.label.astype(int)
    est = nml.CBPE(
        y_pred_proba="score",
        y_pred="y_pred",
        y_true="label",
        timestamp_column_name="event_time",
        metrics=METRICS,
        chunk_period="W",
        problem_type="classification_binary",
    )
    est.fit(ref)
    res = est.estimate(ana).filter(period="analysis").to_df()
    return float(res[("roc_auc", "value")].mean())


def main(argv: list[str]) -> None:
    global REALIZED
    impl = argv[0]
    REALIZED = impl == "aipm-realized"
    fn = {"aipm": run_aipm, "aipm-realized": run_aipm, "nannyml": run_nannyml}[impl]
    if impl.startswith("aipm"):
        import aipm_nb.model.estimate  # noqa: F401  (imports are not timed)
    else:
        import nannyml  # noqa: F401
    t0 = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"impl": impl, "seconds": round(seconds, 2), "peak_rss_mb": round(rss),
                      "mean_estimated_auc": value}))  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
