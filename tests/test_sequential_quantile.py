"""Issue 17: always-valid (sequential) A/B results and percentile metrics, against the
published gbstats case, a peeking A/A simulation, a bootstrap and an A/A coverage study."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from aipm_nb import experiment
from aipm_nb import stats as st
from aipm_nb.errors import DataError, ParameterError
from aipm_nb.experiment.aggregate import ArmSums, MetricSums
from aipm_nb.experiment.compare import Plan, compare_metrics
from aipm_nb.experiment.simulate import binomial_band, peeking_rate
from aipm_nb.experiment.spec import Metric
from aipm_nb.stats import sequential as seq

# --- sequential --------------------------------------------------------------------------------


def _published_arms():
    """GrowthBook's published sequential case (gbstats tests), as engine sums."""
    c = MetricSums(st.Moments(3000, 1396.87, 52377.9767))
    t = MetricSums(st.Moments(3461, 2422.7, 134698.29))
    return {"control": ArmSums(3000, (c,)), "treatment": ArmSums(3461, (t,))}


def test_published_gbstats_sequential_case():
    plan = Plan("control", ("treatment",), 0.05, 0.8, "t", {}, "none", 2, True, 1000)
    (r,) = compare_metrics([Metric("m", "mean", column="y")], _published_arms(), plan)
    assert r.sequential
    assert r.rel_effect == pytest.approx(0.50336, abs=5e-6)
    assert r.rel_ci_lower == pytest.approx(-0.55844, abs=5e-6)
    assert r.rel_ci_upper == pytest.approx(1.56516, abs=5e-6)
    assert r.p_value == 1.0
    # the same arms at a fixed horizon: a narrower interval, the same estimate
    fixed = Plan("control", ("treatment",), 0.05, 0.8, "t", {}, "none", 2)
    (f,) = compare_metrics([Metric("m", "mean", column="y")], _published_arms(), fixed)
    assert f.rel_effect == r.rel_effect and not f.sequential
    assert (f.rel_ci_upper - f.rel_ci_lower) * r.sequential_width_ratio == pytest.approx(
        r.rel_ci_upper - r.rel_ci_lower
    )


def test_sequential_p_value_crosses_alpha_exactly_at_the_interval_edge():
    for se, n, a, tuning in ((0.01, 10_000, 0.05, 5000), (0.3, 500, 0.1, 1000)):
        hw = seq.sequential_halfwidth(se, n, a, tuning)
        assert seq.sequential_p_value(hw, se, n, a, tuning) == pytest.approx(a)
        assert seq.sequential_p_value(0.9 * hw, se, n, a, tuning) > a
        assert seq.sequential_p_value(1.1 * hw, se, n, a, tuning) < a
        h1 = seq.one_sided_halfwidth(se, n, a, tuning)
        assert seq.one_sided_p_value(h1, se, n, a, tuning) == pytest.approx(a)
        assert h1 < hw  # one side only: a tighter bound
        # the sequence is wider than the fixed-horizon interval at every n
        assert hw > sps.norm.ppf(1 - a / 2) * se


def test_one_sided_rho_uses_twice_alpha():
    se, n, a, tuning = 0.02, 4000, 0.05, 5000
    rho = seq.sequential_rho(2 * a, tuning)
    v = n * rho**2 + 1
    expected = (
        se * math.sqrt(n) * math.sqrt(2 * v / (n * rho) ** 2 * math.log(1 + math.sqrt(v) / (2 * a)))
    )
    assert seq.one_sided_halfwidth(se, n, a, tuning) == pytest.approx(expected)


def test_sequential_on_the_sample_experiment(experiment_df):
    from conftest import METRICS

    fixed = experiment.analyze_experiment(experiment_df, METRICS, time_col="first_exposure")
    res = experiment.analyze_experiment(
        experiment_df, METRICS, time_col="first_exposure", sequential=True
    )
    by = {(m.metric, m.variant): m for m in res.metrics}
    for m in fixed.metrics:
        s = by[(m.metric, m.variant)]
        # the same estimate (engine sums in parallel: equal to rounding, not bit for bit)
        assert s.sequential and s.rel_effect == pytest.approx(m.rel_effect, rel=1e-12)
        if not s.guardrail:
            assert s.rel_ci_upper - s.rel_ci_lower > m.rel_ci_upper - m.rel_ci_lower
            assert s.p_value >= m.p_value
            assert s.sequential_width_ratio > 1
    # a guardrail (lower is better) gets a one-sided bound against an increase
    lat = next(m for m in res.metrics if m.guardrail)
    assert math.isinf(lat.rel_ci_upper) and math.isfinite(lat.rel_ci_lower)
    d = res.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["sequential"] is True and all(m["sequential"] for m in d["metrics"])
    assert res.ci_label == "95% always-valid CI"
    text = experiment.summary_markdown(res)
    assert "Always-valid results" in text and "as wide as fixed-horizon" in text
    # keep_running waits longer: the sequential target needs more units than the fixed one
    assert res.power[0].required_n_per_arm > fixed.power[0].required_n_per_arm


@pytest.mark.slow
def test_peeking_simulation():
    """30 daily looks at 1,000... here 400 A/A tests of a 20% conversion, 200 units per arm
    per look: stopping at the first fixed-horizon p < 0.05 declares ~28% of them different
    (README table, 1,000 tests); the always-valid p-values stay at or below α."""
    fixed = peeking_rate(sequential=False, n_sim=400, seed=1)["ever_significant_rate"]
    always = peeking_rate(sequential=True, n_sim=400, seed=1)["ever_significant_rate"]
    assert always <= binomial_band(0.05, 400)[1]  # ≤ α within the 99% Monte-Carlo band
    assert fixed > 0.15  # peeking at fixed-horizon p-values: several times α


def test_sequential_parameter_errors(experiment_df):
    from conftest import METRICS

    with pytest.raises(ParameterError, match="sequential must be true or false"):
        experiment.analyze_experiment(experiment_df, METRICS, sequential="yes")
    with pytest.raises(ParameterError, match="sequential_tuning must be > 0"):
        experiment.analyze_experiment(experiment_df, METRICS, sequential=True, sequential_tuning=0)


# --- percentile metrics ------------------------------------------------------------------------


def _numpy_arm(x, nu):
    lo, hi = st.quantile_levels(len(x), nu)
    q, low, up = np.quantile(x, [nu, lo, hi])  # linear interpolation = quantile_cont
    return st.quantile_arm(len(x), q, low, up)


def test_quantile_metric_matches_numpy_and_reports_its_level():
    rng = np.random.default_rng(4)
    n = 3000
    df = pd.DataFrame({
        "user_id": range(2 * n),
        "variant": ["control"] * n + ["treatment"] * n,
        "latency": np.r_[rng.lognormal(6, 0.5, n), rng.lognormal(6, 0.5, n) * 1.06],
    })  # fmt: skip
    spec = [{"name": "p95", "type": "quantile", "column": "latency", "quantile": 0.95,
             "guardrail": True, "direction": "decrease"}]  # fmt: skip
    (m,) = experiment.analyze_experiment(df, spec).metrics
    c, t = df.latency[:n].to_numpy(), df.latency[n:].to_numpy()
    ref = st.effect(_numpy_arm(c, 0.95), _numpy_arm(t, 0.95))
    assert m.control_mean == pytest.approx(np.quantile(c, 0.95), rel=1e-12)
    assert m.variant_mean == pytest.approx(np.quantile(t, 0.95), rel=1e-12)
    assert m.rel_ci_lower == pytest.approx(ref.rel_ci_lower, rel=1e-9)
    assert m.p_value == pytest.approx(ref.p_value, rel=1e-9)
    assert m.to_dict()["quantile"] == 0.95


@pytest.mark.slow
def test_quantile_interval_agrees_with_a_bootstrap_and_the_asymptotic_se():
    """p95 of log-normal latencies, 2,000 per arm: our se of the difference against a
    1,000-round bootstrap of the difference of sample quantiles, over 10 data sets."""
    rng = np.random.default_rng(7)
    n, nu, ours, boot = 2000, 0.95, [], []
    for _ in range(10):
        c = rng.lognormal(5.7, 0.6, n)
        t = rng.lognormal(5.7, 0.6, n) * 1.08
        ours.append(st.effect(_numpy_arm(c, nu), _numpy_arm(t, nu)).abs_se)
        bc = np.quantile(c[rng.integers(0, n, (1000, n))], nu, axis=1)
        bt = np.quantile(t[rng.integers(0, n, (1000, n))], nu, axis=1)
        boot.append(np.std(bt - bc, ddof=1))
    # asymptotic: Var(Q̂) = ν(1−ν) / (n f(q)²) per arm
    z = sps.norm.ppf(nu)
    var = 0.0
    for scale in (1.0, 1.08):
        q = scale * math.exp(5.7 + 0.6 * z)
        f = sps.norm.pdf(z) / (q * 0.6)
        var += nu * (1 - nu) / (n * f * f)
    assert np.mean(ours) == pytest.approx(np.mean(boot), rel=0.10)
    assert np.mean(ours) == pytest.approx(math.sqrt(var), rel=0.10)


@pytest.mark.slow
def test_quantile_relative_ci_covers_in_aa_tests():
    rng = np.random.default_rng(0)
    for nu in (0.5, 0.95):
        cover = 0
        for _ in range(1000):
            c, t = rng.lognormal(5.7, 0.6, 2000), rng.lognormal(5.7, 0.6, 2000)
            e = st.effect(_numpy_arm(c, nu), _numpy_arm(t, nu))
            cover += e.rel_ci_lower <= 0 <= e.rel_ci_upper
        assert 0.94 <= cover / 1000 <= 0.96, (nu, cover)


def test_quantile_errors():
    df = pd.DataFrame({"user_id": range(100), "variant": ["control", "treatment"] * 50,
                       "x": np.arange(100.0)})  # fmt: skip
    with pytest.raises(ParameterError, match=r"'quantile' between 0\.001 and 0\.999"):
        experiment.analyze_experiment(df, [{"name": "q", "type": "quantile", "column": "x",
                                            "quantile": 1.0}])  # fmt: skip
    with pytest.raises(ParameterError, match="CUPED"):
        experiment.analyze_experiment(df, [{"name": "q", "type": "quantile", "column": "x",
                                            "quantile": 0.5, "covariate": "x"}])  # fmt: skip
    with pytest.raises(ParameterError, match="not available with sequential=True"):
        experiment.analyze_experiment(df, [{"name": "q", "type": "quantile", "column": "x",
                                            "quantile": 0.5}], sequential=True)  # fmt: skip
    with pytest.raises(ParameterError, match="only for type 'quantile'"):
        experiment.analyze_experiment(df, [{"name": "q", "type": "mean", "column": "x",
                                            "quantile": 0.5}])  # fmt: skip
    # 50 units per arm: p99 needs more than 380 (z²·ν/(1−ν))
    with pytest.raises(DataError, match=r"p99\) has 50 units .* needs more than 380"):
        experiment.analyze_experiment(df, [{"name": "q", "type": "quantile", "column": "x",
                                            "quantile": 0.99}])  # fmt: skip
    assert math.floor(st.quantile_min_n(0.99)) == 380


def test_quantile_metrics_are_left_out_of_days_and_segments(experiment_df):
    spec = [{"name": "conversion", "type": "proportion", "column": "converted"},
            {"name": "p95", "type": "quantile", "column": "response_ms", "quantile": 0.95,
             "guardrail": True, "direction": "decrease"}]  # fmt: skip
    res = experiment.analyze_experiment(
        experiment_df, spec, time_col="first_exposure", segment_cols=["platform"]
    )
    assert [m.metric for m in res.metrics] == ["conversion", "p95"]
    assert {m.metric for m in res.segments} == {"conversion"}
