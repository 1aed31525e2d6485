"""Each template runs on a stranger's table given only its required parameters (issue 11): CSVs
written as a user would export them (own column names, text timestamps, none of the sample's
optional columns). Skipped sections name the parameter that turns them on; an optional column
the user names explicitly and that is missing is still a `SchemaError`."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import papermill as pm
import pytest
import yaml
from conftest import ROOT

from aipm_nb.cli import main

pytestmark = pytest.mark.slow
NB = ROOT / "notebooks"


def _experiment_csv(path):
    rng = np.random.default_rng(21)
    n = 3000
    pd.DataFrame(
        {
            "account": [f"acct-{i:05d}" for i in range(n)],
            "arm": rng.choice(["old", "new"], n),
            "paid": rng.binomial(1, 0.12, n),
            "spend": np.round(rng.lognormal(2, 1.2, n), 2),
        }
    ).to_csv(path, index=False)
    return {
        "source": str(path),
        "unit_col": "account",
        "variant_col": "arm",
        "control": "old",
        "metrics": [
            {"name": "paid", "type": "proportion", "column": "paid"},
            {"name": "spend", "type": "mean", "column": "spend"},
        ],
    }


def _events_csv(path):
    rng = np.random.default_rng(22)
    users = np.repeat(np.arange(400), 6)
    start = pd.Timestamp("2024-03-01") + pd.to_timedelta(rng.integers(0, 40, 400), unit="D")
    when = start[users] + pd.to_timedelta(rng.exponential(20, len(users)), unit="D")
    pd.DataFrame({"uid": users, "ts": when.strftime("%Y-%m-%d %H:%M:%S")}).to_csv(path, index=False)
    return {"source": str(path), "user_col": "uid", "time_col": "ts", "as_of": "2024-06-01"}


def _predictions_csv(path):
    rng = np.random.default_rng(23)
    n = 2000
    pd.DataFrame(
        {
            "p": rng.beta(2, 5, n),
            "scored_at": pd.date_range("2024-01-01", periods=n, freq="37min").astype(str),
        }
    ).to_csv(path, index=False)
    return {"source": str(path), "score_col": "p", "time_col": "scored_at"}


def _kpi_csv(path):
    """An export as a user writes it: spaces in column names, text timestamps, null user ids,
    a heavy-tailed order value with nulls."""
    rng = np.random.default_rng(24)
    n = 6000
    when = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 84 * 86400, n), unit="s")
    action = rng.choice(["visit", "visit", "visit", "checkout"], n)
    value = np.where(action == "checkout", np.round(rng.pareto(1.5, n) * 20, 2), np.nan)
    customer = rng.integers(0, 900, n).astype(float)
    customer[rng.random(n) < 0.02] = np.nan
    pd.DataFrame(
        {
            "Customer ID": customer,
            "Event Timestamp": when.strftime("%Y-%m-%d %H:%M:%S"),
            "Action": action,
            "Order Value": value,
        }
    ).to_csv(path, index=False)
    return {
        "source": str(path),
        "user_col": "Customer ID",
        "time_col": "Event Timestamp",
        "event_col": "Action",
        "kpis": [
            {"name": "Active customers", "type": "users"},
            {
                "name": "Checkout rate",
                "type": "rate",
                "numerator": "checkout",
                "denominator": "visit",
            },
            {"name": "Revenue", "type": "sum", "column": "Order Value", "events": "checkout"},
        ],  # fmt: skip
    }


def _llm_csv(path):
    """A response log exported by hand: own column names, a text timestamp, thumbs as 0/1 with
    blanks, no latency, cost, prompt or refusal columns, no response id."""
    rng = np.random.default_rng(25)
    n = 1500
    pd.DataFrame(
        {
            "Model Version": rng.choice(["gpt-small", "gpt-large"], n),
            "Logged At": (pd.Timestamp("2024-05-01")
                          + pd.to_timedelta(rng.integers(0, 30 * 86400, n), unit="s")
                          ).strftime("%Y-%m-%d %H:%M:%S"),
            "Thumbs": np.where(rng.random(n) < 0.4, rng.binomial(1, 0.6, n), np.nan),
        }
    ).to_csv(path, index=False)  # fmt: skip
    return {"source": str(path), "model_col": "Model Version", "rating_col": "Thumbs"}


def _funnel_csv(path):
    """A product-analytics export: own column names, ISO text timestamps with a zone, null ids,
    duplicate rows, no platform column and no experiment."""
    rng = np.random.default_rng(26)
    rows = []
    for u in range(600):
        t = pd.Timestamp("2024-02-01", tz="UTC") + pd.Timedelta(
            minutes=int(rng.integers(0, 60 * 24 * 40))
        )
        uid = None if u % 97 == 0 else f"user-{u}"
        rows.append((uid, "Viewed Pricing", t))
        if rng.random() < 0.5:
            t += pd.Timedelta(minutes=float(rng.exponential(30)))
            rows.append((uid, "Started Trial", t))
            rows.append((uid, "Started Trial", t))  # exported twice
            if rng.random() < 0.4:
                t += pd.Timedelta(hours=float(rng.exponential(40)))
                rows.append((uid, "Paid", t))
    df = pd.DataFrame(rows, columns=["Distinct ID", "Event", "Time"])
    df["Time"] = df["Time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    df.to_csv(path, index=False)
    return {"source": str(path), "user_col": "Distinct ID", "time_col": "Time",
            "event_col": "Event", "steps": ["Viewed Pricing", "Started Trial", "Paid"],
            "window": "7 days", "as_of": "2024-03-20"}  # fmt: skip


TEMPLATES = {
    "funnel_analysis": (_funnel_csv, ["`breakdown_col=`"]),
    "llm_evaluation": (_llm_csv, ["`latency_col=`", "`segment_col=`", "`prompt_col=`"]),
    "kpi_monitoring": (_kpi_csv, ["`segment_col=`"]),
    "ab_test_evaluation": (_experiment_csv, ["`time_col=`", "`segment_cols=`"]),
    "cohort_analysis": (_events_csv, ["`segment_col=`", "`adoption_event=`", "`revenue_col=`"]),
    "model_performance": (_predictions_csv, ["`label_col=`"]),
}


def _shown(nb_path) -> str:
    nb = json.loads(nb_path.read_text())
    out = []
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            out += ["".join(v) for k, v in o.get("data", {}).items() if k.startswith("text/")]
            out.append("".join(o.get("text", "")))
    return "\n".join(out)


def test_an_optional_column_named_explicitly_stays_an_error(tmp_path):
    params = _experiment_csv(tmp_path / "mine.csv")
    with pytest.raises(pm.PapermillExecutionError, match="SchemaError") as err:
        pm.execute_notebook(
            str(NB / "ab_test_evaluation.ipynb"), str(tmp_path / "out.ipynb"),
            kernel_name="python3", parameters={**params, "time_col": "exposed_at"},
            progress_bar=False, cwd=str(tmp_path),
        )  # fmt: skip
    assert "exposed_at" in str(err.value) and "time_col" in str(err.value)


def test_templates_run_with_only_required_parameters(tmp_path, capsys):
    """Each template, through `aipm-nb validate` and `aipm-nb run`, on a CSV with only the
    required columns; each skipped section names the parameter that turns it on."""
    reports = []
    for template, (make, _) in sorted(TEMPLATES.items()):
        params = make(tmp_path / f"{template}.csv")
        params["source"] = f"{template}.csv"  # relative to reports.yml
        reports.append({"name": template, "notebook": f"template:{template}", "parameters": params})
    cfg = tmp_path / "reports.yml"
    cfg.write_text(yaml.safe_dump({"reports": reports}))
    assert main(["validate", str(cfg)]) == 0, capsys.readouterr().err
    code = main(["run", str(cfg), "--out", str(tmp_path / "out"), "--run-id", "r", "--jobs", "2",
                 "--no-progress"])  # fmt: skip
    assert code == 0, capsys.readouterr()
    for template, (_, notes) in TEMPLATES.items():
        summary = json.loads((tmp_path / "out" / "r" / f"{template}.json").read_text())
        assert summary["data"]["rows"] > 0
        shown = _shown(tmp_path / "out" / "r" / f"{template}.ipynb")
        for note in notes:
            assert f"set {note} to turn on" in shown, (template, note)
        if template == "model_performance":
            assert any(w["code"] == "no_labels" for w in summary["warnings"])
            assert "no label column" in shown
        if template == "funnel_analysis":  # the sample's assignments never join a user's events
            assert summary["result"]["arms"] is None
            assert summary["result"]["steps"][0]["count"] > 400
            assert any(w["code"] == "null_ids" for w in summary["warnings"])
        if template == "kpi_monitoring":  # the sample's predictions never join a user's events
            assert summary["data"]["prediction_rows"] == 0
            assert [k["name"] for k in summary["result"]["kpis"]] == [
                "Active customers", "Checkout rate", "Revenue"]  # fmt: skip
            assert any(w["code"] == "null_ids" for w in summary["warnings"])
