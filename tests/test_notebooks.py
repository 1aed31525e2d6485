"""Each template runs through papermill on other data and with non-default parameters, and its
JSON summary follows DESIGN section 5."""

from __future__ import annotations

import json

import papermill as pm
import pytest
from conftest import ROOT

from aipm_nb import synthetic

pytestmark = pytest.mark.slow
NB = ROOT / "notebooks"

TOP_KEYS = {"schema_version", "kind", "title", "generated_at", "parameters", "data", "warnings",
            "result"}  # fmt: skip


def _run(tmp_path, notebook, **parameters):
    out = tmp_path / "summary.json"
    pm.execute_notebook(
        str(NB / notebook), str(tmp_path / "out.ipynb"), kernel_name="python3",
        parameters={**parameters, "summary_path": str(out)}, progress_bar=False, cwd=str(tmp_path),
    )  # fmt: skip
    summary = json.loads(out.read_text())
    assert set(summary) == TOP_KEYS
    assert summary["schema_version"] == 1
    assert isinstance(summary["data"]["rows"], int)
    for w in summary["warnings"]:
        assert set(w) == {"code", "message"}
    return summary


def test_cohort_on_another_file_month_on_or_after(tmp_path):
    df = synthetic.generate_events(3000, seed=99).rename(
        columns={"user_id": "uid", "event_time": "ts", "event_name": "action", "plan": "tier"}
    )
    df.to_csv(tmp_path / "other_events.csv", index=False)
    s = _run(
        tmp_path, "cohort_analysis.ipynb", source="other_events.csv", user_col="uid",
        time_col="ts", event_col="action", period="month", retention_type="on_or_after",
        max_periods=4, segment_col="tier", adoption_event=None, revenue_col=None,
        return_events=["session_start"], timezone="Europe/Berlin",
    )  # fmt: skip
    assert s["kind"] == "cohort"
    r = s["result"]
    assert r["period"] == "month" and r["retention_type"] == "on_or_after"
    assert set(r) == {"period", "retention_type", "cohorts", "average_retention", "verdict"}
    assert len(r["average_retention"]) == 5
    for c in r["cohorts"]:
        assert set(c) == {"cohort", "size", "retention"}
        assert c["cohort"].endswith("-01")  # month starts
        ret = [v for v in c["retention"] if v is not None]
        assert ret == sorted(ret, reverse=True)  # "on or after" never increases
    assert s["parameters"]["source"] == "other_events.csv"
    assert s["data"]["rows"] == len(df)


def test_ab_on_another_file(tmp_path):
    df = synthetic.generate_experiment(8000, variants=("A", "B", "C"), seed=5).rename(
        columns={"user_id": "account", "variant": "arm"}
    )
    df.to_parquet(tmp_path / "exp.parquet")
    metrics = [{"name": "conv", "type": "proportion", "column": "converted"},
               {"name": "lat", "type": "mean", "column": "latency_ms", "guardrail": True,
                "direction": "decrease"}]  # fmt: skip
    s = _run(
        tmp_path, "ab_test_evaluation.ipynb", source="exp.parquet", unit_col="account",
        variant_col="arm", control="A", metrics=metrics, correction="bh", time_col=None,
        segment_cols=[], expected_shares={"A": 1, "B": 1, "C": 1}, histograms=False,
    )  # fmt: skip
    r = s["result"]
    assert s["kind"] == "ab_test" and r["control"] == "A"
    out = (tmp_path / "out.ipynb").read_text()
    assert "Histograms off" in out and "image/png" in out  # the other plots are still drawn
    assert set(r) == {"control", "primary_metric", "alpha", "sequential", "srm", "metrics",
                      "decision", "verdict"}  # fmt: skip
    assert r["primary_metric"] == "conv" and r["alpha"] == 0.05
    assert set(r["srm"]["counts"]) == {"A", "B", "C"}
    assert {(m["metric"], m["variant"]) for m in r["metrics"]} == {
        ("conv", "B"),
        ("conv", "C"),
        ("lat", "B"),
        ("lat", "C"),
    }
    assert r["decision"]["recommendation"] in {"ship", "do_not_ship", "keep_running",
                                               "investigate"}  # fmt: skip
    assert r["decision"]["reasons"]


def test_ab_sample_defaults_catch_the_tail_regression(tmp_path):
    """The sample's treatment wins on conversion, but its p95 AI response time regresses while
    the mean does not move (EXPERIMENT_TRUTH["response_tail"]): the p95 guardrail blocks it."""
    s = _run(tmp_path, "ab_test_evaluation.ipynb", source=str(ROOT / "data/experiment.parquet"))
    res = s["result"]
    assert res["decision"]["recommendation"] == "do_not_ship"
    rows = {m["metric"]: m for m in res["metrics"]}
    p95, mean = rows["AI response time p95"], rows["AI response time"]
    assert p95["quantile"] == 0.95 and p95["significant"] and p95["rel_effect"] > 0
    assert not mean["significant"] and "quantile" not in mean
    assert rows["conversion"]["significant"] and rows["conversion"]["rel_effect"] > 0
    assert "AI response time p95" in res["decision"]["reasons"][0]


@pytest.mark.parametrize("notebook", sorted(p.name for p in NB.glob("*.ipynb")))
def test_every_parameter_is_declared(notebook):
    """papermill can parse every line of the parameters cell (a comment holding '=' cannot)."""
    import ast

    import nbformat

    nb = nbformat.read(NB / notebook, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1
    assigned = {
        t.id for node in ast.parse(cells[0].source).body if isinstance(node, ast.Assign)
        for t in node.targets if isinstance(t, ast.Name)
    }  # fmt: skip
    declared = set(pm.inspect_notebook(str(NB / notebook)))
    assert declared == assigned
    assert "summary_path" in declared and "source" in declared


def test_model_with_windows_off(tmp_path):
    """The template with ``window=None``: no window table or estimates, said in the report,
    and the verdict takes the score drift of the whole current period."""
    s = _run(tmp_path, "model_performance.ipynb", window=None)
    r = s["result"]
    assert s["parameters"]["window"] is None and r["estimated"] == []
    assert any("(windows off)" in reason for reason in r["verdict"]["reasons"])
    text = (tmp_path / "out.ipynb").read_text()
    assert "No windows: `window = None` turned them off." in text
    assert "No estimates: they are made per window" in text


def test_model_on_another_file(tmp_path):
    df = synthetic.generate_predictions(8000, seed=4).rename(
        columns={"score": "p_fraud", "label": "is_fraud", "event_time": "scored_at"}
    )
    df.to_parquet(tmp_path / "preds.parquet")
    s = _run(
        tmp_path, "model_performance.ipynb", source="preds.parquet", score_col="p_fraud",
        label_col="is_fraud", time_col="scored_at", segment_cols=["country"],
        feature_cols=["latency_ms"], threshold=0.3, window="day", reference_end="2024-04-01",
        target_precision=0.4,
    )  # fmt: skip
    r = s["result"]
    assert s["kind"] == "model_performance"
    assert set(r) == {"n", "n_labelled", "metrics", "calibration", "segments", "drift", "verdict",
                      "estimated"}  # fmt: skip
    assert r["n"] == 8000 and r["n_labelled"] == int(df.is_fraud.notna().sum())
    assert set(r["metrics"]) == {"roc_auc", "pr_auc", "log_loss", "brier", "ece", "precision",
                                 "recall", "f1", "accuracy"}  # fmt: skip
    assert len(r["calibration"]) == 10
    assert {x["column"] for x in r["drift"]} == {"p_fraud", "latency_ms"}
    assert {x["value"] for x in r["segments"]} == set(df.country)
