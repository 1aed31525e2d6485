"""aipm_nb.stats against published values (gbstats) and independent references (scipy,
statsmodels, numpy on rows)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from aipm_nb import stats as st


def test_gbstats_published_mean_case():
    c = st.arm_from_sums(3407, 1396.87, 52377.9767)
    t = st.arm_from_sums(3461, 2422.7, 134698.29)
    e = st.effect(c, t)
    assert e.rel_effect == pytest.approx(0.70732, abs=1e-4)
    assert e.rel_ci_lower == pytest.approx(-0.03526, abs=1e-4)
    assert e.rel_ci_upper == pytest.approx(1.44989, abs=1e-4)
    assert e.p_value == pytest.approx(0.06191, abs=1e-4)
    assert e.abs_effect == pytest.approx(0.29, abs=1e-4)
    assert e.abs_ci_lower == pytest.approx(0.04538, abs=1e-4)
    assert e.abs_ci_upper == pytest.approx(0.53462, abs=1e-4)
    assert e.abs_p_value == pytest.approx(0.02016, abs=1e-4)


def test_proportion_49_vs_51():
    c = st.arm_from_sums(100, 49, 49, proportion=True)
    t = st.arm_from_sums(100, 51, 51, proportion=True)
    e = st.effect(c, t)
    assert e.rel_effect == pytest.approx(0.04082, abs=1e-5)
    assert e.chance_to_beat_control == pytest.approx(0.60918, abs=1e-5)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(("n_c", "n_t"), [(5, 8), (40, 40), (1000, 700)])
def test_welch_matches_scipy(seed, n_c, n_t):
    rng = np.random.default_rng(seed)
    # rounded values make ties
    x = np.round(rng.lognormal(1, 1, n_c), 1)
    y = np.round(rng.lognormal(1.1, 1.2, n_t), 1)
    e = st.effect(
        st.arm_from_sums(n_c, x.sum(), (x**2).sum()),
        st.arm_from_sums(n_t, y.sum(), (y**2).sum()),
        alpha=0.1,
    )
    ref = sps.ttest_ind(y, x, equal_var=False)
    ci = ref.confidence_interval(0.9)
    assert e.abs_effect == pytest.approx(y.mean() - x.mean(), rel=1e-12)
    assert e.abs_p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert e.df == pytest.approx(ref.df, rel=1e-9)
    assert (e.abs_ci_lower, e.abs_ci_upper) == pytest.approx((ci.low, ci.high), rel=1e-9)


def test_relative_delta_method_by_hand():
    rng = np.random.default_rng(1)
    x, y = rng.normal(10, 3, 500), rng.normal(10.5, 4, 450)
    e = st.effect(
        st.arm_from_sums(500, x.sum(), (x**2).sum()), st.arm_from_sums(450, y.sum(), (y**2).sum())
    )
    mc, mt, vc, vt = x.mean(), y.mean(), x.var(ddof=1), y.var(ddof=1)
    var = vt / (450 * mc**2) + vc * mt**2 / (500 * mc**4)
    assert e.rel_effect == pytest.approx((mt - mc) / mc)
    assert e.rel_se == pytest.approx(np.sqrt(var), rel=1e-10)
    df = (vt / 450 + vc / 500) ** 2 / ((vt / 450) ** 2 / 449 + (vc / 500) ** 2 / 499)
    assert e.p_value == pytest.approx(2 * sps.t.sf(abs(e.rel_effect) / np.sqrt(var), df))


def test_ratio_delta_method_against_rows():
    rng = np.random.default_rng(2)
    den = rng.poisson(5, 300).astype(float)
    num = rng.binomial(den.astype(int), 0.3).astype(float)
    a = st.ratio_arm(
        st.Paired(
            st.Moments(300, num.sum(), (num**2).sum()),
            st.Moments(300, den.sum(), (den**2).sum()),
            (num * den).sum(),
        )
    )
    r = num.sum() / den.sum()
    cov = np.cov(num, den, ddof=1)
    ref = (cov[0, 0] - 2 * r * cov[0, 1] + r * r * cov[1, 1]) / den.mean() ** 2
    assert a.mean == pytest.approx(r)
    assert a.var == pytest.approx(ref, rel=1e-10)


def test_cuped_against_rows():
    rng = np.random.default_rng(3)
    xc, xt = rng.gamma(2, 5, 400), rng.gamma(2, 5, 380)
    yc = xc * 0.8 + rng.normal(0, 3, 400)
    yt = xt * 0.8 + rng.normal(1, 3, 380)

    def sums(y, x):
        return st.Paired(
            st.Moments(len(y), y.sum(), (y**2).sum()),
            st.Moments(len(x), x.sum(), (x**2).sum()),
            (x * y).sum(),
        )

    c, t = st.cuped_arms(sums(yc, xc), sums(yt, xt))
    x_all, y_all = np.concatenate([xc, xt]), np.concatenate([yc, yt])
    theta = np.cov(y_all, x_all, ddof=1)[0, 1] / np.var(x_all, ddof=1)
    assert c.theta == pytest.approx(theta, rel=1e-10)
    for arm, y, x in ((c, yc, xc), (t, yt, xt)):
        assert arm.mean == pytest.approx(y.mean() - theta * x.mean(), rel=1e-10)
        cxy = np.cov(y, x, ddof=1)[0, 1]
        w = y.var(ddof=1) + theta**2 * x.var(ddof=1) - 2 * theta * cxy
        assert arm.var == pytest.approx(w, rel=1e-9)
    e = st.effect(c, t)
    mc, mt = yc.mean(), yt.mean()
    assert e.rel_effect == pytest.approx((t.mean - c.mean) / mc)
    cc = np.cov(yc, xc, ddof=1)[0, 1]
    ctrl = yc.var(ddof=1) * mt**2 / mc**2 - 2 * theta * cc * mt / mc + theta**2 * xc.var(ddof=1)
    var = t.var / (380 * mc**2) + ctrl / (400 * mc**2)
    assert e.rel_se == pytest.approx(np.sqrt(var), rel=1e-9)
    # CUPED shrinks the standard error when the covariate predicts the metric
    plain = st.effect(
        st.arm_from_sums(400, yc.sum(), (yc**2).sum()),
        st.arm_from_sums(380, yt.sum(), (yt**2).sum()),
    )
    assert e.abs_se < 0.5 * plain.abs_se


@pytest.mark.parametrize("method,sm", [("holm", "holm"), ("bh", "fdr_bh")])
@pytest.mark.parametrize("seed", range(10))
def test_corrections_match_statsmodels(method, sm, seed):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0, 0.2, rng.integers(1, 12))
    p[: len(p) // 3] = p[0]  # ties
    ref = multipletests(p, method=sm)[1]
    np.testing.assert_allclose(st.adjust_pvalues(p, method), ref, rtol=1e-12)


def test_corrections_skip_nan():
    out = st.adjust_pvalues([0.01, np.nan, 0.02], "holm")
    assert np.isnan(out[1])
    np.testing.assert_allclose(out[[0, 2]], multipletests([0.01, 0.02], method="holm")[1])
    with pytest.raises(ValueError, match="correction must be 'holm', 'bh' or 'none'"):
        st.adjust_pvalues([0.1], "bonferroni")


def test_srm_against_scipy():
    r = st.srm_test(
        {"control": 5100, "treatment": 4900, "b": 5000}, {"control": 1, "treatment": 1, "b": 1}
    )
    assert r.p_value == pytest.approx(sps.chisquare([5100, 4900, 5000]).pvalue)
    r = st.srm_test({"control": 6000, "treatment": 4000}, {"control": 0.6, "treatment": 0.4})
    assert r.p_value == pytest.approx(1.0) and not r.mismatch
    with pytest.raises(ValueError, match="expected_shares names"):
        st.srm_test({"control": 1, "treatment": 1}, {"control": 0.5, "other": 0.5})


def test_power_round_trip():
    # at the required n, the MDE equals the target
    rel_se, n = 0.03, 5000
    need = st.required_sample_size(rel_se, n, 0.04)
    se_at_need = rel_se * np.sqrt(n / need)
    assert st.minimum_detectable_effect(se_at_need) == pytest.approx(0.04)
