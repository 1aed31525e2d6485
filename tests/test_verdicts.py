"""A verdict per report and headlines that never read noise as signal (issue 13)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aipm_nb import cohort, model
from aipm_nb.cohort.trend import retention_trend
from aipm_nb.experiment import analyze_experiment, summary_markdown
from aipm_nb.reports.html import write_index
from aipm_nb.results import VERDICT_TONE


def _cohort_log(drop: float, seed: int = 5) -> pd.DataFrame:
    """16 weekly cohorts of 400 users; each user active in week k with 30% chance, the latest
    four cohorts with 30% − ``drop``."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(16):
        start = pd.Timestamp("2024-01-01") + pd.Timedelta(weeks=c)
        rate = 0.30 - (drop if c >= 12 else 0.0)
        for u in range(400):
            uid = c * 1000 + u
            rows.append((uid, start + pd.Timedelta(hours=int(rng.integers(0, 72)))))
            for k in range(1, 6):
                if rng.random() < rate:
                    rows.append((uid, start + pd.Timedelta(weeks=k, hours=10)))
    return pd.DataFrame(rows, columns=["user_id", "event_time"])


def test_sample_cohorts_claim_no_change():
    """The sample is built with unchanging retention: no "lower / higher" claim."""
    res = cohort.analyze_cohorts("sample:events")
    text = cohort.summary_markdown(res)
    assert res.verdict.status == "flat"
    assert "no detectable difference" in text
    assert "below the" not in text and "pts lower" not in text


def test_injected_drop_is_declining_with_its_ci():
    res = cohort.analyze_cohorts(_cohort_log(0.10), as_of="2024-06-01")
    trend = retention_trend(res)
    assert res.verdict.status == "declining"
    assert trend.ci_upper < 0 < 0.10 + trend.ci_upper  # the CI excludes 0 and covers -10 pts
    (reason,) = res.verdict.reasons
    assert "pts lower" in reason and "95% CI" in reason
    assert res.to_dict()["verdict"]["status"] == "declining"
    flat = cohort.analyze_cohorts(_cohort_log(0.0), as_of="2024-06-01")
    assert flat.verdict.status == "flat"


def test_model_sample_verdict_names_drift_and_ignores_partial_windows():
    res = model.analyze_model("sample:predictions", metric_floor=0.7,
                              feature_cols=["prompt_length"])  # fmt: skip
    assert res.verdict.status in {"watch", "degraded"}
    assert any("score drift" in r for r in res.verdict.reasons)
    first = res.windows.iloc[0]
    assert first.partial and not first.below_floor  # 1,959 rows, CI 0.66-0.73: not an alert
    assert not res.windows[res.windows.partial].below_floor.any()
    assert not any(w["code"] == "below_floor" for w in res.warnings)
    text = model.summary_markdown(res)
    assert text.startswith("### Verdict: ")
    assert "latest complete window" in text and "highest" in text


def test_overlapping_segment_intervals_make_no_worst_segment_claim():
    rng = np.random.default_rng(8)
    n = 4000
    y = rng.binomial(1, 0.3, n)
    df = pd.DataFrame({
        "score": np.clip(0.3 + 0.2 * (y - 0.3) + rng.normal(0, 0.2, n), 0, 1),
        "label": y, "event_time": pd.date_range("2024-01-01", periods=n, freq="h"),
        "region": rng.choice(["north", "south", "east"], n),
    })  # fmt: skip
    text = model.summary_markdown(model.analyze_model(df, segment_cols=["region"]))
    assert "Worst segment" not in text
    assert "no segment is detectably worse" in text


def test_ship_with_more_days_is_explained(experiment_df):
    metrics = [{"name": "conversion", "type": "proportion", "column": "converted"}]
    res = analyze_experiment(experiment_df, metrics, time_col="first_exposure")
    assert res.decision.recommendation == "ship"
    if any(p.additional_days for p in res.power):
        assert "does not wait for them" in summary_markdown(res)
    assert res.to_dict()["verdict"]["status"] == "ship"


def test_index_colours_reports_by_verdict(tmp_path):
    run = {"run_id": "r1", "started_at": "2024-01-01T00:00:00+00:00", "reports": [
        {"name": "m", "status": "ok", "verdict": "degraded", "headline": ["AUC 0.7"],
         "outputs": {"html": "m.html"}},
        {"name": "c", "status": "ok", "verdict": "flat", "headline": [], "outputs": {}},
    ]}  # fmt: skip
    (tmp_path / "r1").mkdir()
    import json

    (tmp_path / "r1" / "run.json").write_text(json.dumps(run))
    write_index(tmp_path)
    html = (tmp_path / "index.html").read_text()
    assert '<span class="verdict bad">degraded</span>' in html
    assert '<span class="verdict neutral">flat</span>' in html
    assert set(VERDICT_TONE.values()) == {"good", "neutral", "bad"}


@pytest.mark.parametrize("status", sorted(VERDICT_TONE))
def test_every_verdict_status_has_a_tone(status):
    assert VERDICT_TONE[status] in {"good", "neutral", "bad"}


def test_tables_for_people():
    from aipm_nb.tables import readable

    windows = pd.DataFrame({
        "window": pd.to_datetime(["2024-01-01", "2024-01-08"]), "n": [1959, 4696],
        "roc_auc": [0.6962, 0.716], "ci_lower": [0.661, 0.694], "ci_upper": [0.730, 0.738],
        "partial": [True, False], "p_value": [0.0000004, 0.04567],
    })  # fmt: skip
    t = readable(windows, alpha=0.1)
    assert list(t.columns) == ["rows", "ROC AUC", "90% CI", "partial", "p"]
    assert t.index.name == "window" and list(t.index) == ["2024-01-01", "2024-01-08"]
    assert t.iloc[0].tolist() == ["1,959", "0.696", "[0.661, 0.730]", "yes", "< 0.001"]
    assert t.iloc[1]["p"] == "0.0457"
    one = readable(pd.DataFrame({"precision": [0.402], "f1": [0.2861]}))
    assert one.to_dict()["value"] == {"precision": "40.2%", "F1": "0.286"}


def test_metric_units_in_the_ab_table(experiment_df):
    from aipm_nb.experiment import metric_table

    metrics = [
        {"name": "revenue", "type": "mean", "column": "revenue", "unit": "$"},
        {"name": "latency", "type": "mean", "column": "latency_ms", "unit": "ms",
         "guardrail": True, "direction": "decrease"},
    ]  # fmt: skip
    t = metric_table(analyze_experiment(experiment_df, metrics))
    assert t.loc["revenue", "control mean"].startswith("$")
    assert t.loc["revenue", "abs. effect"][:2] in {"+$", "-$"}
    assert t.loc["latency (guardrail)", "variant mean"].endswith(" ms")


def test_index_headline_leaves_the_decision_to_the_verdict_chip(experiment_df):
    from aipm_nb.reports.html import headline

    metrics = [{"name": "conversion", "type": "proportion", "column": "converted"}]
    d = analyze_experiment(experiment_df, metrics).to_dict()
    assert not any(h.startswith("→") for h in headline({"kind": "ab_test", "result": d}))
    del d["verdict"]  # a summary written before verdicts existed
    assert headline({"kind": "ab_test", "result": d})[-1] == "→ ship"


def test_verdict_reasons_are_escaped_in_the_summary():
    """A column name from the data reaches the verdict's reasons: it must not become HTML."""
    rng = np.random.default_rng(3)
    n = 2000
    evil = "<img src=x onerror=alert(1)>"
    df = pd.DataFrame({
        "score": rng.random(n), "label": rng.integers(0, 2, n),
        "event_time": pd.date_range("2024-01-01", periods=n, freq="h"),
        evil: np.r_[rng.normal(0, 1, n // 2), rng.normal(3, 1, n // 2)],  # major drift
    })  # fmt: skip
    res = model.analyze_model(df, feature_cols=[evil])
    assert any(evil in r for r in res.verdict.reasons)  # plain text in the JSON
    text = model.summary_markdown(res)
    assert "<img" not in text and "&lt;img" in text
