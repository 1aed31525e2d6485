"""`aipm-nb validate` runs the analyses' own checks on the real sources (issue 11): every bad
config below fails validation (exit 2) with the message the run then fails with."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from aipm_nb.cli import main

pytestmark = pytest.mark.slow

AB_METRICS = [{"name": "conversion", "type": "proportion", "column": "converted"}]

# name -> (template, parameters, what both messages say)
BAD = {
    "model-window-month": (
        "model_performance",
        {"source": "sample:predictions", "window": "month"},
        "window must be one of 'day', 'week'; got 'month'",
    ),
    "ab-missing-metric-column": (
        "ab_test_evaluation",
        {"source": "sample:experiment",
         "metrics": [{"name": "r", "type": "mean", "column": "refunds"}]},
        "has no column 'refunds' (expected numeric)",
    ),
    "ab-alpha": (
        "ab_test_evaluation",
        {"source": "sample:experiment", "metrics": AB_METRICS, "alpha": 1.5},
        "alpha must be < 1; got 1.5",
    ),
    "ab-named-time-col-missing": (
        "ab_test_evaluation",
        {"source": "sample:experiment", "metrics": AB_METRICS, "time_col": "exposed_at"},
        "has no column 'exposed_at' (expected timestamp); set time_col= to one of",
    ),
    "cohort-period": (
        "cohort_analysis",
        {"source": "sample:events", "period": "quarter"},
        "period must be one of 'day', 'week', 'month'; got 'quarter'",
    ),
    "cohort-named-segment-missing": (
        "cohort_analysis",
        {"source": "sample:events", "segment_col": "region"},
        "has no column 'region'; set segment_col= to one of",
    ),
    "cohort-bad-timestamps": (
        "cohort_analysis",
        {"source": "bad_times.csv", "adoption_event": None},
        "'event_time' holds text that is not a timestamp",
    ),
    "model-missing-score": (
        "model_performance",
        {"source": "sample:predictions", "score_col": "probability"},
        "has no column 'probability' (expected numeric); set score_col= to one of",
    ),
}  # fmt: skip


def test_validate_catches_what_the_run_fails_on_with_the_same_message(tmp_path, capsys):
    pd.DataFrame(
        {"user_id": [1, 2], "event_time": ["2024-01-01 10:00", "yesterday"],
         "event_name": ["a", "b"]}
    ).to_csv(tmp_path / "bad_times.csv", index=False)  # fmt: skip
    reports = [
        {"name": name, "notebook": f"template:{template}", "parameters": params}
        for name, (template, params, _) in BAD.items()
    ]
    cfg = tmp_path / "reports.yml"
    cfg.write_text(yaml.safe_dump({"reports": reports}))

    assert main(["validate", str(cfg)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    said = {name: next((ln for ln in lines if ln.startswith(f"aipm-nb: {name}: ")), "")
            for name in BAD}  # fmt: skip
    for name, (_, _, message) in BAD.items():
        assert message in said[name], (name, lines)

    code = main(["run", str(cfg), "--out", str(tmp_path / "out"), "--run-id", "r", "--jobs", "2",
                 "--no-progress"])  # fmt: skip
    assert code == 1
    capsys.readouterr()
    manifest = json.loads((tmp_path / "out" / "r" / "run.json").read_text())
    errors = {r["name"]: r["error"] or "" for r in manifest["reports"]}
    for name, (_, _, message) in BAD.items():
        assert message in errors[name], (name, errors[name])
        # the run's error line is the validate line (same exception, same text)
        run_line = next(ln for ln in errors[name].splitlines() if message in ln)
        assert run_line.split(": ", 1)[-1] in said[name], (run_line, said[name])


def test_validate_passes_the_shipped_config_and_a_strangers_table(tmp_path, capsys):
    pd.DataFrame({"uid": [1, 2], "ts": ["2024-01-01", "2024-01-02"]}).to_csv(
        tmp_path / "mine.csv", index=False
    )
    cfg = tmp_path / "reports.yml"
    cfg.write_text(yaml.safe_dump({"reports": [
        {"name": "mine", "notebook": "template:cohort_analysis",
         "parameters": {"source": "mine.csv", "user_col": "uid", "time_col": "ts"}},
    ]}))  # fmt: skip
    assert main(["validate", str(cfg)]) == 0, capsys.readouterr().err
