"""Small samples (issue 11, DESIGN section 4): A/A decisions hold their false-positive rate at
20, 50, 200 and 1,000 units per arm for every metric type; the report says when an arm is below
`min_units_per_arm`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aipm_nb import config
from aipm_nb.experiment import analyze_experiment
from aipm_nb.experiment.simulate import GENERATORS, aa_decision_rate, binomial_band

N_SIM = 1000


@pytest.mark.slow
@pytest.mark.parametrize("metric_type", sorted(GENERATORS))
def test_aa_decisions_hold_alpha_at_every_size(metric_type):
    lo, hi = binomial_band(config.ALPHA, N_SIM)
    rates = {
        n: aa_decision_rate(metric_type, n, n_sim=N_SIM, seed=n)["false_positive_rate"]
        for n in (20, 50, 200, 1000)
    }
    assert all(r <= hi for r in rates.values()), rates  # never more false positives than alpha
    # at 20-50 per arm the Welch test is a little conservative on heavy tails (README table)
    assert all(r >= lo - 0.01 for r in rates.values()), rates


@pytest.mark.slow
def test_the_relative_test_alone_is_liberal_at_20_per_arm():
    """Why min_units_per_arm exists: without it a 20-per-arm proportion A/A test ships or
    blocks more often than alpha."""
    lo, hi = binomial_band(config.ALPHA, 2000)
    old = aa_decision_rate("proportion", 20, n_sim=2000, seed=3, min_units_per_arm=2)
    new = aa_decision_rate("proportion", 20, n_sim=2000, seed=3)
    assert old["false_positive_rate"] > hi
    assert new["false_positive_rate"] <= hi


def test_small_arms_use_the_absolute_test_and_say_so():
    rng = np.random.default_rng(4)
    df = pd.DataFrame(
        {"user_id": range(60), "variant": ["control", "treatment"] * 30,
         "y": rng.lognormal(3, 1, 60)}
    )  # fmt: skip
    res = analyze_experiment(df, [{"name": "y", "type": "mean", "column": "y"}])
    (m,) = res.metrics
    assert m.small_sample and m.verdict_p_value == m.abs_p_value
    assert m.p_value_adjusted == pytest.approx(m.abs_p_value)  # one test: Holm changes nothing
    (w,) = [w for w in res.warnings if w["code"] == "small_sample"]
    assert "fewer than 200 units" in w["message"] and "min_units_per_arm" in w["message"]
    big = analyze_experiment(df, [{"name": "y", "type": "mean", "column": "y"}],
                             min_units_per_arm=20)  # fmt: skip
    assert not big.metrics[0].small_sample
    assert big.metrics[0].p_value_adjusted == pytest.approx(big.metrics[0].p_value)
