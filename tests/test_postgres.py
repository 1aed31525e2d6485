"""PostgreSQL end to end: the notebooks run against a real server through `aipm-nb run` with
the URL passed as env:NAME, give DuckDB's numbers, and never write the password (the
analyses themselves are compared in test_engines.py; a timezone case only PostgreSQL has is
here)."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import PG_PASSWORD, ROOT, assert_close

from aipm_nb import cohort
from aipm_nb.cli import main

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_cohort_timezone_same_as_duckdb(pg_url):
    kw = {"period": "day", "timezone": "Europe/Berlin", "max_periods": 5}
    assert_close(cohort.analyze_cohorts(pg_url, table="events", **kw).to_dict(),
                 cohort.analyze_cohorts("sample:events", **kw).to_dict())  # fmt: skip


def test_notebooks_through_runner_with_env_url(pg_url, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AIPM_TEST_PG_URL", pg_url)
    local = yaml.safe_load((ROOT / "reports.yml").read_text())["reports"]
    tables = {"cohort_analysis": "events", "kpi_monitoring": "events"}
    # two reports, one of them with a second URL source (the KPI report's predictions): what
    # this test guards is env:URL through the runner and the redaction; every analysis' engine
    # path is compared with DuckDB in test_engines.py, which keeps make test within its budget
    local = [r for r in local if r["notebook"].split("/")[-1].removesuffix(".ipynb") in tables]
    reports = []
    for r in local:
        stem = r["notebook"].split("/")[-1].removesuffix(".ipynb")
        params = {**r["parameters"], "source": "env:AIPM_TEST_PG_URL", "table": tables[stem]}
        if "predictions_source" in params:  # the KPI report reads a second table
            params |= {"predictions_source": "env:AIPM_TEST_PG_URL",
                       "predictions_table": "predictions"}  # fmt: skip
        if "preferences_source" in params:  # so does the LLM evaluation
            params |= {"preferences_source": "env:AIPM_TEST_PG_URL",
                       "preferences_table": "llm_preferences"}  # fmt: skip
        reports.append({"name": f"pg-{r['name']}", "notebook": str(ROOT / r["notebook"]),
                        "parameters": params})  # fmt: skip
        local_params = {**r["parameters"], "source": str(ROOT / r["parameters"]["source"])}
        for second in ("predictions_source", "preferences_source"):
            if second in local_params:
                local_params[second] = str(ROOT / r["parameters"][second])
        reports.append({"name": r["name"], "notebook": str(ROOT / r["notebook"]),
                        "parameters": local_params})  # fmt: skip
    cfg = tmp_path / "reports.yml"
    cfg.write_text(yaml.safe_dump({"reports": reports}))
    out = tmp_path / "out"
    code = main(["run", str(cfg), "--out", str(out), "--run-id", "pg", "--jobs", "2",
                 "--no-progress"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    for r in local:
        pg = json.loads((out / "pg" / f"pg-{r['name']}.json").read_text())
        dk = json.loads((out / "pg" / f"{r['name']}.json").read_text())
        assert pg["parameters"]["source"] == "env:AIPM_TEST_PG_URL"
        assert_close(pg["result"], dk["result"])
    everything = "\n".join(p.read_text(errors="replace") for p in out.rglob("*") if p.is_file())
    assert PG_PASSWORD not in everything + captured.out + captured.err
    assert pg_url not in everything
