"""The analyses on a real PostgreSQL server (started by the fixture) give DuckDB's numbers, and
the notebooks run against it through `aipm-nb run` with the URL passed as env:NAME."""

from __future__ import annotations

import json

import ibis
import pandas as pd
import pytest
import yaml
from conftest import FEATURES, METRICS, ROOT, assert_close
from services import postgres_server

from aipm_nb import cohort, experiment, model
from aipm_nb.cli import main

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
PASSWORD = "pg-S3cret-never-written"


@pytest.fixture(scope="module")
def pg_url():
    with postgres_server() as pg:
        # trust authentication accepts any password: the URL carries one so that the tests
        # can prove it never reaches an output
        url = f"postgresql://{pg['user']}:{PASSWORD}@{pg['host']}:{pg['port']}/{pg['db']}"
        con = ibis.connect(url)
        for name in ("events", "experiment", "predictions"):
            con.create_table(name, pd.read_parquet(ROOT / "data" / f"{name}.parquet"))
        con.disconnect()
        yield url


def test_ab_same_as_duckdb(pg_url):
    opts = dict(time_col="first_exposure", segment_cols=["platform"])
    pg = experiment.analyze_experiment(pg_url, METRICS, table="experiment", **opts)
    dk = experiment.analyze_experiment("sample:experiment", METRICS, **opts)
    assert_close(pg.to_dict(), dk.to_dict())
    assert_close(pg.segments_to_pandas().to_dict("list"), dk.segments_to_pandas().to_dict("list"))


@pytest.mark.parametrize("kwargs", [
    {}, {"period": "month", "retention_type": "on_or_after"},
    {"period": "day", "timezone": "Europe/Berlin", "max_periods": 5},
    {"activation_events": ["session_start"], "return_events": ["purchase"]},
])  # fmt: skip
def test_cohort_same_as_duckdb(pg_url, kwargs):
    pg = cohort.analyze_cohorts(pg_url, table="events", **kwargs)
    dk = cohort.analyze_cohorts("sample:events", **kwargs)
    assert_close(pg.to_dict(), dk.to_dict())
    ev_pg = cohort.prepare_events(pg_url, table="events", extra_columns=["platform"])
    ev_dk = cohort.prepare_events("sample:events", extra_columns=["platform"])
    for kw in ({"segment_col": "platform"}, {"adoption_event": "ai_assist_used"}):
        a = cohort.compare_retention(events=ev_pg, **kw)
        b = cohort.compare_retention(events=ev_dk, **kw)
        assert_close(a.tests.to_dict("list"), b.tests.to_dict("list"))
    pd.testing.assert_frame_equal(cohort.lifecycle(ev_pg), cohort.lifecycle(ev_dk))
    pd.testing.assert_frame_equal(cohort.revenue_curves(ev_pg, "revenue"),
                                  cohort.revenue_curves(ev_dk, "revenue"), rtol=1e-9)  # fmt: skip


def test_model_same_as_duckdb(pg_url):
    opts = dict(segment_cols=["platform", "model_version"], feature_cols=FEATURES,
                metric_floor=0.7)  # fmt: skip
    pg = model.analyze_model(pg_url, table="predictions", **opts)
    dk = model.analyze_model("sample:predictions", **opts)
    assert_close(pg.to_dict(), dk.to_dict())
    assert_close(pg.windows.drop(columns="window").to_dict("list"),
                 dk.windows.drop(columns="window").to_dict("list"))  # fmt: skip


def test_notebooks_through_runner_with_env_url(pg_url, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AIPM_TEST_PG_URL", pg_url)
    local = yaml.safe_load((ROOT / "reports.yml").read_text())["reports"]
    tables = {"cohort_analysis": "events", "ab_test_evaluation": "experiment",
              "model_performance": "predictions"}  # fmt: skip
    reports = []
    for r in local:
        stem = r["notebook"].split("/")[-1].removesuffix(".ipynb")
        params = {**r["parameters"], "source": "env:AIPM_TEST_PG_URL", "table": tables[stem]}
        reports.append({"name": f"pg-{r['name']}", "notebook": str(ROOT / r["notebook"]),
                        "parameters": params})  # fmt: skip
        local_params = {**r["parameters"], "source": str(ROOT / r["parameters"]["source"])}
        reports.append({"name": r["name"], "notebook": str(ROOT / r["notebook"]),
                        "parameters": local_params})  # fmt: skip
    cfg = tmp_path / "reports.yml"
    cfg.write_text(yaml.safe_dump({"reports": reports}))
    out = tmp_path / "out"
    code = main(["run", str(cfg), "--out", str(out), "--run-id", "pg", "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    for r in local:
        pg = json.loads((out / "pg" / f"pg-{r['name']}.json").read_text())
        dk = json.loads((out / "pg" / f"{r['name']}.json").read_text())
        assert pg["parameters"]["source"] == "env:AIPM_TEST_PG_URL"
        assert_close(pg["result"], dk["result"])
    everything = "\n".join(p.read_text(errors="replace") for p in out.rglob("*") if p.is_file())
    assert PASSWORD not in everything + captured.out + captured.err
    assert pg_url not in everything
