"""Rules written once (issue 10): the CI level follows alpha everywhere, one primary metric is
named by the decision, the plots, the JSON and the index; engine and numpy classifier metrics
share one formula."""

from __future__ import annotations

import json

import ibis
import matplotlib
import numpy as np
import pandas as pd
import papermill as pm
import pytest
from conftest import ROOT

from aipm_nb import plots
from aipm_nb.experiment import analyze_experiment, metric_table, power_table, summary_markdown
from aipm_nb.experiment.present import render_html
from aipm_nb.model.engine import group_metrics
from aipm_nb.reports.html import headline
from aipm_nb.stats.classifier import ClassifierSums

matplotlib.use("Agg")

# the later metric is the primary one: the first non-guardrail rule would pick "conversion"
METRICS = [
    {"name": "conversion", "type": "proportion", "column": "converted"},
    {"name": "revenue", "type": "mean", "column": "revenue", "primary": True},
    {"name": "latency", "type": "mean", "column": "latency_ms", "guardrail": True,
     "direction": "decrease"},
]  # fmt: skip


@pytest.fixture(scope="module")
def result(experiment_df):
    return analyze_experiment(
        experiment_df, METRICS, alpha=0.1, power=0.9, time_col="first_exposure"
    )


def test_alpha_labels_every_interval(result):
    texts = [render_html(result), summary_markdown(result), *result.decision.reasons]
    texts += [" ".join(metric_table(result).columns), " ".join(power_table(result).columns)]
    ax = plots.ab_forest(result)
    texts.append(ax.get_xlabel())
    joined = "\n".join(texts)
    assert "90% CI" in render_html(result) and "90% CI" in summary_markdown(result)
    assert "90% CI" in ax.get_xlabel()
    assert "95%" not in joined and "80% power" not in joined
    assert "detectable effect (90% power)" in power_table(result).columns


def test_the_primary_metric_is_named_by_every_consumer(result):
    assert result.primary_metric == "revenue"
    assert {p.metric for p in result.power} == {"revenue"}
    assert "revenue" in result.headline()
    ax = plots.ab_cumulative(result)
    assert ax.get_title() == "Cumulative effect on revenue by exposure day"
    d = result.to_dict()
    assert d["primary_metric"] == "revenue" and d["alpha"] == 0.1
    index_line = headline({"kind": "ab_test", "result": d})
    assert "revenue" in index_line[0] and "conversion" not in " ".join(index_line)
    if result.decision.recommendation == "ship":
        assert "primary metric revenue" in result.decision.reasons[0]


def test_index_headline_of_an_old_summary_without_primary_metric(result):
    """Summaries written before `primary_metric` was recorded: first non-guardrail metric."""
    d = result.to_dict()
    del d["primary_metric"]
    assert headline({"kind": "ab_test", "result": d})[0].endswith("conversion")


@pytest.mark.slow
def test_report_with_alpha_and_a_later_primary_metric(tmp_path, experiment_df):
    """The A/B template with alpha = 0.1 and power = 0.9 says 90% in every output and names the
    primary metric in its summary JSON."""
    experiment_df.to_parquet(tmp_path / "exp.parquet")
    out = tmp_path / "summary.json"
    pm.execute_notebook(
        str(ROOT / "notebooks" / "ab_test_evaluation.ipynb"), str(tmp_path / "out.ipynb"),
        kernel_name="python3", progress_bar=False, cwd=str(tmp_path),
        parameters={"source": "exp.parquet", "metrics": METRICS, "alpha": 0.1, "power": 0.9,
                    "summary_path": str(out)},
    )  # fmt: skip
    nb = json.loads((tmp_path / "out.ipynb").read_text())
    shown = []
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            data = o.get("data", {})
            kinds = ("text/plain", "text/markdown", "text/html")
            shown += ["".join(data.get(k, "")) for k in kinds]
            shown.append("".join(o.get("text", "")))
    text = "\n".join(shown)
    assert "90% CI" in text and "detectable effect (90% power)" in text
    assert "95%" not in text and "80% power" not in text
    s = json.loads(out.read_text())
    assert s["result"]["primary_metric"] == "revenue"


def _random_counts(rng: np.random.Generator, groups: int) -> pd.DataFrame:
    rows = []
    for g in range(groups):
        k = int(rng.integers(1, 40))
        scores = np.unique(np.round(rng.random(k), int(rng.integers(1, 4))))
        for s in scores:
            pos, neg = rng.integers(0, 5, 2)
            if pos + neg:
                rows.append((f"g{g}", float(s), int(pos), int(neg)))
    return pd.DataFrame(rows, columns=["group", "score", "pos", "neg"])


@pytest.mark.parametrize("seed", range(5))
def test_engine_classifier_sums_equal_the_numpy_sums(seed):
    """`group_metrics` (SQL window functions) and `ClassifierSums.from_counts` (numpy) give the
    same metrics on random count tables with ties and single-class groups."""
    rng = np.random.default_rng(seed)
    counts = _random_counts(rng, 6)
    threshold = float(rng.choice([0.3, 0.5, 0.7]))
    rows = counts.loc[counts.index.repeat(counts.pos + counts.neg)].copy()
    rows["__y"] = np.concatenate(
        [[1.0] * p + [0.0] * n for p, n in zip(counts.pos, counts.neg, strict=True)]
    )
    t = ibis.memtable(rows[["group", "score", "__y"]].rename(columns={"score": "__s"}))
    engine = group_metrics(t, "group", threshold=threshold).set_index("group")
    for g, c in counts.groupby("group"):
        ref = ClassifierSums.from_counts(c, threshold=threshold).metrics()
        got = engine.loc[g]
        for key in ("roc_auc", "roc_auc_ci_lower", "roc_auc_ci_upper", "pr_auc", "log_loss",
                    "brier", "precision", "recall", "f1", "accuracy"):  # fmt: skip
            np.testing.assert_allclose(got[key], getattr(ref, key), rtol=1e-9, atol=1e-12,
                                       err_msg=f"{g} {key}")  # fmt: skip
