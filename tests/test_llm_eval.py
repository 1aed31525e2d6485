"""LLM-feature evaluation (issue 18): Bradley–Terry against its closed forms and an independent
logistic regression (FastChat's method), Wilson and order-statistic CIs against published /
scipy values, the sample's known truth, and clear errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from sklearn.linear_model import LogisticRegression

from aipm_nb import llm_eval, summary
from aipm_nb.errors import DataError, ParameterError
from aipm_nb.stats.proportions import wilson_interval
from aipm_nb.stats.quantiles import order_statistic_ranks
from aipm_nb.stats.ranking import bradley_terry, bt_bootstrap, ranks_from_intervals, win_rates
from aipm_nb.synthetic import LLM_TRUTH


def _counts(rows):
    return pd.DataFrame(rows, columns=["model_a", "model_b", "wins_a", "wins_b", "ties"])


def test_bt_two_models_closed_form():
    r = bradley_terry(_counts([("A", "B", 75, 25, 0)]))
    assert r["A"] == pytest.approx(1095.42, abs=0.005)
    assert r["B"] == pytest.approx(904.58, abs=0.005)
    assert r["A"] - r["B"] == pytest.approx(400 * math.log10(3))


def test_bt_ties_count_half():
    r = bradley_terry(_counts([("A", "B", 60, 20, 20)]))
    assert r["A"] - r["B"] == pytest.approx(400 * math.log10(0.7 / 0.3))
    # the orientation of a pair does not matter
    r2 = bradley_terry(_counts([("B", "A", 20, 60, 20)]))
    assert r2["A"] == pytest.approx(r["A"])


def _fastchat_lr(counts: pd.DataFrame) -> pd.Series:
    """FastChat's compute_mle_elo: logistic regression without intercept or penalty on the
    doubled wins (+ ties once each way), base 10, scale 400, init 1000."""
    models = sorted(set(counts.model_a) | set(counts.model_b))
    idx = {m: i for i, m in enumerate(models)}
    x, y, w = [], [], []
    for r in counts.itertuples(index=False):
        for win, lose, n in ((r.model_a, r.model_b, 2 * r.wins_a + r.ties),
                             (r.model_b, r.model_a, 2 * r.wins_b + r.ties)):  # fmt: skip
            row = np.zeros(len(models))
            row[idx[win]], row[idx[lose]] = math.log(10), -math.log(10)
            x += [row, -row]
            y += [1, 0]
            w += [n, 0.0]
    lr = LogisticRegression(fit_intercept=False, C=np.inf, tol=1e-10, max_iter=10_000)
    lr.fit(np.array(x), np.array(y), sample_weight=np.array(w))
    return pd.Series(400 * lr.coef_[0] + 1000, index=models)


def test_bt_equals_fastchat_logistic_regression():
    rng = np.random.default_rng(3)
    rows = []
    for a, b in [
        ("m1", "m2"),
        ("m1", "m3"),
        ("m2", "m3"),
        ("m2", "m4"),
        ("m3", "m4"),
        ("m1", "m4"),
    ]:
        rows.append((a, b, *rng.integers(5, 80, 3)))
    c = _counts(rows)
    ours, ref = bradley_terry(c), _fastchat_lr(c)
    diff = (ours - ours.mean()) - (ref - ref.mean())
    assert np.abs(diff).max() < 1e-4, diff


def test_bt_undefeated_model_is_infinite():
    r = bradley_terry(_counts([("A", "B", 10, 0, 0), ("B", "C", 5, 5, 0)]))
    assert r["A"] == math.inf and math.isfinite(r["B"]) and math.isfinite(r["C"])


def test_bootstrap_is_seeded_and_ranks_follow_intervals():
    c = _counts([("A", "B", 60, 40, 10), ("B", "C", 55, 45, 5), ("A", "C", 70, 30, 0)])
    one, two = bt_bootstrap(c), bt_bootstrap(c)
    pd.testing.assert_frame_equal(one, two)
    assert (one.ci_lower <= one.rating).all() and (one.rating <= one.ci_upper).all()
    assert ranks_from_intervals(np.array([10.0, 5, 0]), np.array([12.0, 11, 4])).tolist() == [
        1,
        1,
        3,
    ]
    wr = win_rates(c).set_index(["model", "opponent"])
    assert wr.loc[("A", "B"), "win_rate"] == pytest.approx(60 / 110)


def test_wilson_published_value():
    lo, hi = wilson_interval(60, 100)
    assert (round(float(lo), 5), round(float(hi), 5)) == (0.50200, 0.69060)


def test_p95_of_1_to_1000_order_statistic_ranks_as_scipy():
    assert order_statistic_ranks(1000, 0.95) == (936, 964)
    x = np.arange(1, 1001)
    ci = sps.quantile_test(x, q=950, p=0.95).confidence_interval(0.95)
    assert (ci.low, ci.high) == (936, 964)
    for n, p in ((37, 0.5), (250, 0.95), (5000, 0.5), (80, 0.99)):
        ci = sps.quantile_test(np.arange(1, n + 1), q=1, p=p).confidence_interval(0.95)
        lo, hi = order_statistic_ranks(n, p)
        assert (lo if lo == lo else None, hi if hi == hi else None) == (
            ci.low if ci.low == ci.low else None,
            ci.high if ci.high == ci.high else None,
        )
    # the engine returns the same values for a version whose latencies are 1..1000 (shuffled)
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"model": "v", "latency_ms": rng.permutation(np.arange(1.0, 1001))})
    res = llm_eval.evaluate_llm(df, prompt_col=None, response_col=None, rating_col=None,
                                cost_col=None, refused_col=None, error_col=None)  # fmt: skip
    row = res.versions.iloc[0]
    assert (row.latency_p95_ci_lower, row.latency_p95_ci_upper) == (936.0, 964.0)
    assert row.latency_p95 == pytest.approx(np.quantile(np.arange(1.0, 1001), 0.95))
    assert res.verdict.status == "insufficient_data"


@pytest.fixture(scope="module")
def sample():
    return llm_eval.evaluate_llm(
        "sample:llm_responses", preferences_source="sample:llm_preferences", segment_col="platform"
    )


def test_sample_truth_is_recovered(sample):
    truth = LLM_TRUTH
    r = sample.ratings.set_index("model")
    # the generator's ratings (mean 1000) inside the bootstrap intervals, in the right order
    for m, true in truth["bt_ratings"].items():
        assert r.ci_lower[m] <= true <= r.ci_upper[m], (m, true, r.loc[m].to_dict())
    assert sample.ratings.model.tolist() == sorted(
        truth["bt_ratings"], key=lambda m: -truth["bt_ratings"][m]
    )
    v = sample.versions.set_index("version")
    # thumbs-up: the truth is the model's rate plus half the prompt lift (p2 is half the traffic)
    for m, p in truth["thumbs_up"].items():
        assert (
            v.thumbs_up_rate_ci_lower[m]
            <= p + truth["prompt_lift"] / 2
            <= v.thumbs_up_rate_ci_upper[m]
        )
    # the latency tail of assistant-v2: its p95 far above the others', its p50 close
    assert v.latency_p95["assistant-v2"] > 1.3 * v.latency_p95.drop("assistant-v2").max()
    assert v.latency_p50["assistant-v2"] < 1.2 * v.latency_p50.drop("assistant-v2").max()
    # head-to-head: users prefer v2, the guardrails (tail latency, cost) block it
    h = sample.head_to_head
    assert (sample.baseline, sample.candidate) == ("assistant-v1", "assistant-v2")
    assert h.decision.recommendation == "do_not_ship"
    rows = {m.metric: m for m in h.metrics}
    assert rows["thumbs-up rate"].improved
    assert rows["latency p95"].harmed and rows["cost per task"].harmed
    assert not h.srm.mismatch  # unequal traffic by design is not a mismatch
    assert sample.verdict.status == "do_not_ship"
    assert "Users prefer assistant-v2" in sample.verdict.reasons[-1]


def test_sample_summary_json(sample):
    d = sample.to_dict()
    assert summary.RESULT_KEYS["llm_eval"] <= set(d)
    assert set(d["ratings"][0]) == {"model", "rating", "ci_lower", "ci_upper", "rank"}
    json.dumps(summary.build_summary("llm_eval", title="t", parameters={}, data={"rows": 1},
                                     result=d), allow_nan=False)  # fmt: skip


def test_errors_name_the_table_the_column_and_the_value():
    df = pd.DataFrame({"model": ["a", "b"] * 10, "rating": [1.0, 2.0] * 10})
    with pytest.raises(DataError, match=r"column 'rating' has 10 values that are not 0 \(down\)"):
        llm_eval.evaluate_llm(df, prompt_col=None, response_col=None, latency_col=None,
                              cost_col=None, refused_col=None, error_col=None)  # fmt: skip
    ok = pd.DataFrame({"model": ["a", "b"] * 10, "rating": [1.0, 0.0] * 10})
    opts = dict(prompt_col=None, response_col=None, latency_col=None, cost_col=None,
                refused_col=None, error_col=None)  # fmt: skip
    prefs = pd.DataFrame({"model_a": ["a"], "model_b": ["b"], "winner": ["left"]})
    with pytest.raises(DataError, match=r"'winner' has 1 values other than 'a', 'b' or 'tie'"):
        llm_eval.evaluate_llm(ok, preferences_source=prefs, **opts)
    with pytest.raises(ParameterError, match=r"baseline 'c' is not a version"):
        llm_eval.evaluate_llm(ok, baseline="c", **opts)
    from aipm_nb.errors import SchemaError

    with pytest.raises(SchemaError, match=r"no column 'latency_ms'"):
        llm_eval.evaluate_llm(ok, **(opts | {"latency_col": "latency_ms"}))
