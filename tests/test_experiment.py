"""analyze_experiment end to end: engine aggregation, decisions, bad inputs, A/A simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from aipm_nb import stats as st
from aipm_nb import synthetic
from aipm_nb.errors import DataError, ParameterError, SchemaError
from aipm_nb.experiment import analyze_experiment, parse_metrics

METRICS = [
    {"name": "conversion", "type": "proportion", "column": "converted"},
    {"name": "revenue", "type": "mean", "column": "revenue", "covariate": "pre_revenue"},
    {"name": "ctr", "type": "ratio", "numerator": "clicks", "denominator": "views"},
    {
        "name": "latency",
        "type": "mean",
        "column": "latency_ms",
        "guardrail": True,
        "direction": "decrease",
    },
]


def test_engine_sums_match_pandas(experiment_df):
    """What comes back from the engine equals the same statistics computed on rows."""
    df = experiment_df
    res = analyze_experiment(
        df, METRICS[:1] + [{"name": "rev", "type": "mean", "column": "revenue"}]
    )
    c, t = df[df.variant == "control"], df[df.variant == "treatment"]
    conv = res.metrics[0]
    e = st.effect(
        st.arm_from_sums(len(c), c.converted.sum(), c.converted.sum(), proportion=True),
        st.arm_from_sums(len(t), t.converted.sum(), t.converted.sum(), proportion=True),
    )
    assert conv.rel_effect == pytest.approx(e.rel_effect, rel=1e-12)
    assert conv.p_value == pytest.approx(e.p_value, rel=1e-9)
    rev = res.metrics[1]
    ref = sps.ttest_ind(t.revenue, c.revenue, equal_var=False)
    assert rev.abs_p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert rev.control_n == len(c) and rev.variant_n == len(t)
    assert res.srm.counts == {"control": len(c), "treatment": len(t)}
    assert list(res.srm.counts) == ["control", "treatment"]


def test_sample_experiment_decision(experiment_df):
    res = analyze_experiment(
        experiment_df, METRICS, time_col="first_exposure", segment_cols=["platform"]
    )
    assert res.decision.recommendation == "ship"
    assert res.decision.variant == "treatment"
    conv = res.metrics[0]
    # the known truth (10% -> 11%: +10% relative) lies in the CI
    assert conv.rel_ci_lower < 0.10 < conv.rel_ci_upper
    assert conv.significant
    ctr = next(m for m in res.metrics if m.metric == "ctr")
    assert ctr.rel_ci_lower < 0.10 < ctr.rel_ci_upper
    # Holm over the non-guardrail family of 3
    fam = [m for m in res.metrics if not m.guardrail]
    ref = multipletests([m.p_value for m in fam], method="holm")[1]
    np.testing.assert_allclose([m.p_value_adjusted for m in fam], ref)
    guard = next(m for m in res.metrics if m.guardrail)
    assert guard.p_value_adjusted == guard.p_value
    # cumulative: last day covers every unit and equals the overall effect
    last = res.cumulative.iloc[-1]
    assert last.units == res.rows
    assert last.rel_effect == pytest.approx(conv.rel_effect)
    # segments: each platform, each metric
    seg = res.segments_to_pandas()
    assert set(seg.segment_value) == {"ios", "android", "web"}
    assert len(seg) == 3 * 4


def test_summary_dict_keys(experiment_df):
    d = analyze_experiment(experiment_df, METRICS).to_dict()
    assert set(d) == {
        "control", "primary_metric", "alpha", "sequential", "srm", "metrics", "decision", "verdict"
    }  # fmt: skip
    assert set(d["srm"]) == {"p_value", "mismatch", "counts"}
    assert list(d["metrics"][0]) == [
        "metric",
        "type",
        "variant",
        "control_n",
        "variant_n",
        "control_mean",
        "variant_mean",
        "abs_effect",
        "abs_ci_lower",
        "abs_ci_upper",
        "abs_p_value",
        "rel_effect",
        "rel_ci_lower",
        "rel_ci_upper",
        "p_value",
        "p_value_adjusted",
        "chance_to_beat_control",
        "cuped",
        "guardrail",
        "significant",
        "sequential",  # DESIGN section 5: A/B metrics gain "sequential" (issue 17)
    ]
    assert set(d["decision"]) == {"recommendation", "reasons"}
    import json

    json.dumps(d, allow_nan=False)


def test_proportions_49_51_through_engine():
    df = pd.DataFrame(
        {
            "user_id": range(200),
            "variant": ["control"] * 100 + ["treatment"] * 100,
            "converted": [1] * 49 + [0] * 51 + [1] * 51 + [0] * 49,
        }
    )
    m = analyze_experiment(df, [{"name": "c", "type": "proportion", "column": "converted"}])
    r = m.metrics[0]
    assert r.rel_effect == pytest.approx(0.04082, abs=1e-5)
    assert r.chance_to_beat_control == pytest.approx(0.60918, abs=1e-5)


def test_srm_blocks_ship():
    df = synthetic.generate_experiment(40_000, srm=0.05, seed=4)
    res = analyze_experiment(df, METRICS)
    assert res.srm.mismatch
    assert res.decision.recommendation == "investigate"
    assert "Sample ratio mismatch" in res.decision.reasons[0]


def test_harmed_guardrail_means_do_not_ship():
    df = synthetic.generate_experiment(
        30_000, seed=5, effects={"latency_median_ms": {"treatment": 330.0}}
    )
    res = analyze_experiment(df, METRICS)
    assert res.decision.recommendation == "do_not_ship"
    assert "harms guardrail latency" in res.decision.reasons[0]


def test_underpowered_keeps_running():
    df = synthetic.generate_experiment(3_000, seed=6)
    res = analyze_experiment(df, METRICS[:1], time_col="first_exposure", target_effect=0.05)
    assert not res.metrics[0].significant
    assert res.decision.recommendation == "keep_running"
    p = res.power[0]
    assert p.mde > 0.05 and p.required_n_per_arm > p.n_per_arm and p.additional_days > 0
    assert f"{p.additional_days} more days" in res.decision.reasons[0]


def test_powered_null_does_not_ship():
    df = synthetic.generate_experiment(100_000, seed=7, effects={"conversion": {"treatment": 0.10}})
    res = analyze_experiment(df, METRICS[:1], target_effect=0.2)
    assert res.decision.recommendation == "do_not_ship"
    assert "had the power" in res.decision.reasons[0]


def test_three_arms_and_bh():
    df = synthetic.generate_experiment(30_000, variants=("control", "treatment", "treatment_b"))
    res = analyze_experiment(df, METRICS[:2], correction="bh")
    assert {m.variant for m in res.metrics} == {"treatment", "treatment_b"}
    ref = multipletests([m.p_value for m in res.metrics], method="fdr_bh")[1]
    np.testing.assert_allclose([m.p_value_adjusted for m in res.metrics], ref)


# --- bad input ---------------------------------------------------------------------------


@pytest.fixture
def small():
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "user_id": np.arange(100),
            "variant": ["control", "treatment"] * 50,
            "x": rng.normal(size=100),
            "c": rng.integers(0, 2, 100),
            "num": rng.integers(0, 5, 100),
            "den": rng.integers(1, 5, 100),
        }
    )


MEAN = [{"name": "x", "type": "mean", "column": "x"}]


def test_unit_in_two_variants(small):
    bad = pd.concat([small, small.iloc[[0]].assign(variant="treatment")])
    with pytest.raises(
        DataError,
        match=r"1 units appear in more than one variant \(e.g. "
        r"user_id 0\)",
    ):
        analyze_experiment(bad, MEAN)


def test_duplicate_rows(small):
    bad = pd.concat([small, small.iloc[[3]]])
    with pytest.raises(DataError, match="1 units have more than one row .*user_id 3"):
        analyze_experiment(bad, MEAN)


@pytest.mark.parametrize(
    "ids",
    [
        "negative",  # a bitmap from a negative minimum
        "wide",  # a range wider than MAX_BITMAP_RANGE: counted by hash
        "text",  # not integers: counted by hash
    ],
)
def test_unit_check_counts_ids_exactly(small, ids, monkeypatch):
    """Integer ids on DuckDB are counted by a bitmap over their range (`_distinct_by_bitmap`),
    others by hash: a single duplicate is found either way, and clean data passes."""
    from aipm_nb.experiment import aggregate

    calls = []
    helper = aggregate._distinct_by_bitmap
    monkeypatch.setattr(aggregate, "_distinct_by_bitmap", lambda *a: calls.append(a) or helper(*a))

    base = {"negative": -(10**6), "wide": 0, "text": 0}[ids]
    df = small.assign(user_id=small.user_id + base)
    if ids == "wide":
        df.loc[df.index[-1], "user_id"] = aggregate.MAX_BITMAP_RANGE + 5
    if ids == "text":
        df["user_id"] = "u" + df.user_id.astype(str)
    assert analyze_experiment(df, MEAN).metrics[0].control_n == 50
    assert len(calls) == (0 if ids == "text" else 1)  # the bitmap path for integer ids
    dup = pd.concat([df, df.iloc[[3]]])
    with pytest.raises(DataError, match="1 units have more than one row"):
        analyze_experiment(dup, MEAN)
    df_null = df.astype({"user_id": "object"})
    df_null.loc[df_null.index[:2], "user_id"] = None
    res = analyze_experiment(pd.concat([df_null, df_null.iloc[[5]]]), MEAN, check_units=False)
    assert res.metrics[0].control_n + res.metrics[0].variant_n == 99


def test_unit_check_bitmap_equals_count_distinct():
    """The bitmap count equals DuckDB's count(DISTINCT) on ids with duplicates, gaps, nulls
    and a negative minimum (a direct check of the helper)."""
    import ibis

    from aipm_nb.experiment.aggregate import _distinct_by_bitmap

    rng = np.random.default_rng(3)
    ids = pd.array(rng.integers(-500, 5000, 4000), dtype="Int64")
    ids[::17] = pd.NA
    con = ibis.duckdb.connect()
    t = con.create_table("ids", pd.DataFrame({"u": ids}))
    want = int(pd.Series(ids).nunique())
    got = _distinct_by_bitmap(t, "u", int(np.nanmin(ids.to_numpy(dtype=float, na_value=np.nan))),
                              int(pd.Series(ids).max()))  # fmt: skip
    assert got == want == int(t.u.nunique().to_pandas())
    assert _distinct_by_bitmap(t.filter(t.u.isnull()), "u", None, None) == 0


@pytest.mark.parametrize(
    ("offset", "null_ids", "queries"),
    [
        (5.0, 0, 1),  # Σy² ≈ 26 Σ(y − ȳ)²: sums around zero, one query
        (50.0, 0, 2),  # ≈ 2,500×: past MAX_RAW_CONDITION, summed again around the mean
        (3e7, 3, 3),  # null ids (sums without them) and then the shift
    ],
)
def test_sums_are_shifted_only_where_sums_around_zero_lose_precision(
    offset, null_ids, queries, monkeypatch
):
    """The first scan sums around zero; a column whose Σy² dwarfs its centred sum is summed
    again around its mean. Either way the p-value equals scipy's Welch test, and the CUPED
    effect equals the one on the data shifted to zero by hand."""
    from aipm_nb.experiment import aggregate

    calls = []
    helper = aggregate.engine_sums
    monkeypatch.setattr(
        aggregate, "engine_sums", lambda *a, **k: calls.append(k) or helper(*a, **k)
    )
    rng = np.random.default_rng(5)
    n = 4000
    df = pd.DataFrame({"user_id": np.arange(n, dtype=float), "variant": ["a", "b"] * (n // 2)})
    base = rng.normal(0, 1, n)
    df["x"] = offset + base + np.where(df.variant == "b", 0.08, 0.0)
    df["pre"] = offset + base + rng.normal(0, 0.7, n)
    df.loc[df.index[:null_ids], "user_id"] = np.nan
    kept = df[df.user_id.notna()]
    res = analyze_experiment(df, MEAN, control="a")
    # the reference on the stored values minus the offset (exact: they are within 2× of it)
    a, b = (kept[kept.variant == v].x - offset for v in ("a", "b"))
    # at 3e7 the means themselves are float64 values 3.7e-9 apart: the effect of 0.08 carries
    # ~5e-8 of relative error whatever the sums, and the p-value ~10 times that
    tol = 1e-9 if offset < 1e3 else 1e-5
    assert res.metrics[0].abs_p_value == pytest.approx(
        sps.ttest_ind(b, a, equal_var=False).pvalue, rel=tol
    )
    assert 1 + len(calls) == queries
    assert all(set(k.get("shifts") or {}) == {"x"} for k in calls[null_ids > 0 :])
    cuped = [{"name": "c", "type": "mean", "column": "x", "covariate": "pre"}]
    got = analyze_experiment(df, cuped, control="a").metrics[0]
    want = analyze_experiment(
        df.assign(x=df.x - offset, pre=df.pre - offset), cuped, control="a"
    ).metrics[0]
    assert got.abs_effect == pytest.approx(want.abs_effect, rel=tol)
    assert got.abs_p_value == pytest.approx(want.abs_p_value, rel=tol)


def test_unknown_control(small):
    with pytest.raises(
        ParameterError,
        match=r"control 'ctrl' is not a value of column "
        r"'variant'; variants present: \['control', "
        r"'treatment'\]",
    ):
        analyze_experiment(small, MEAN, control="ctrl")


def test_arm_with_no_units(small):
    with pytest.raises(
        DataError,
        match=r"variant\(s\) \['treatment_b'\] of expected_shares "
        "have no units",
    ):
        analyze_experiment(
            small, MEAN, expected_shares={"control": 1, "treatment": 1, "treatment_b": 1}
        )
    with pytest.raises(DataError, match="only the control 'control' has units"):
        analyze_experiment(small[small.variant == "control"], MEAN)


def test_zero_variance(small):
    with pytest.raises(
        DataError, match="metric 'k' has zero variance in both 'control' and 'treatment'"
    ):
        analyze_experiment(small.assign(k=1.0), [{"name": "k", "type": "mean", "column": "k"}])


def test_nan_values_warn_and_are_left_out(small):
    df = small.copy()
    df.loc[[0, 1, 2], "x"] = np.nan
    res = analyze_experiment(df, MEAN)
    assert res.metrics[0].control_n == 48 and res.metrics[0].variant_n == 49
    msgs = [w["message"] for w in res.warnings]
    assert any("2 units in 'control' have a null/NaN value" in m for m in msgs)
    assert res.srm.counts == {"control": 50, "treatment": 50}


def test_ratio_zero_denominator(small):
    df = small.assign(den=np.where(small.variant == "control", 0, small.den))
    with pytest.raises(
        DataError, match="denominator column 'den' summing to 0 in variant 'control'"
    ):
        analyze_experiment(
            df, [{"name": "r", "type": "ratio", "numerator": "num", "denominator": "den"}]
        )


def test_proportion_not_binary(small):
    with pytest.raises(DataError, match="column 'num' has values other than 0 and 1"):
        analyze_experiment(small, [{"name": "p", "type": "proportion", "column": "num"}])


def test_missing_and_non_numeric_column(small):
    with pytest.raises(SchemaError, match="experiment .* has no column 'revenue'"):
        analyze_experiment(small, [{"name": "r", "type": "mean", "column": "revenue"}])
    with pytest.raises(SchemaError, match="column 'variant' has type string; expected numeric"):
        analyze_experiment(small, [{"name": "r", "type": "mean", "column": "variant"}])


@pytest.mark.parametrize(
    ("spec", "msg"),
    [
        ({"name": "a", "type": "median", "column": "x"}, "type 'median'"),
        ({"name": "a", "type": "ratio", "numerator": "x"}, "needs 'numerator' and 'denominator'"),
        ({"name": "a", "type": "mean"}, "needs 'column'"),
        ({"name": "a", "type": "mean", "column": "x", "colour": 1}, r"unknown keys \['colour'\]"),
        ({"type": "mean", "column": "x"}, "needs 'name' and 'type'"),
        ({"name": "a", "type": "mean", "column": "x", "direction": "up"}, "direction 'up'"),
    ],
)
def test_bad_metric_specs(spec, msg):
    with pytest.raises(ParameterError, match=msg):
        parse_metrics([spec])


def test_bad_options(small):
    with pytest.raises(ParameterError, match="alpha must be < 1; got 5"):
        analyze_experiment(small, MEAN, alpha=5)
    with pytest.raises(ParameterError, match="correction must be"):
        analyze_experiment(small, MEAN, correction="bonferroni")
    with pytest.raises(ParameterError, match="metrics is empty"):
        analyze_experiment(small, [])


# --- simulation --------------------------------------------------------------------------


def _sums(df: pd.DataFrame, col: str) -> dict[str, tuple[float, float, float]]:
    g = df.assign(sq=df[col] ** 2).groupby("variant")
    return {v: (len(x), x[col].sum(), x.sq.sum()) for v, x in g}


@pytest.mark.slow
def test_aa_false_positive_rate_and_coverage():
    """1000 A/A experiments from the generator: the false-positive rate lies in the binomial
    99% band around alpha; 1000 A/B experiments: the CI covers the true effect ~95%."""
    n_sim, alpha = 1000, 0.05
    fp = covered_conv = covered_rev = 0
    truth = synthetic.EXPERIMENT_TRUTH
    true_rel_conv = truth["conversion"]["treatment"] / truth["conversion"]["control"] - 1
    true_rel_rev = truth["revenue_lift"]["treatment"]
    for seed in range(n_sim):
        aa = synthetic.generate_experiment(
            2000, seed=10_000 + seed, effects={"conversion": {"treatment": 0.10}}
        )
        s = _sums(aa, "converted")
        e = st.effect(
            st.arm_from_sums(*s["control"], proportion=True),
            st.arm_from_sums(*s["treatment"], proportion=True),
            alpha=alpha,
        )
        fp += e.p_value < alpha
        ab = synthetic.generate_experiment(4000, seed=50_000 + seed)
        s = _sums(ab, "converted")
        e = st.effect(
            st.arm_from_sums(*s["control"], proportion=True),
            st.arm_from_sums(*s["treatment"], proportion=True),
            alpha=alpha,
        )
        covered_conv += e.rel_ci_lower <= true_rel_conv <= e.rel_ci_upper
        s = _sums(ab, "revenue")
        e = st.effect(
            st.arm_from_sums(*s["control"]), st.arm_from_sums(*s["treatment"]), alpha=alpha
        )
        covered_rev += e.rel_ci_lower <= true_rel_rev <= e.rel_ci_upper
    lo, hi = sps.binom.ppf([0.005, 0.995], n_sim, alpha)
    assert lo <= fp <= hi, fp
    lo, hi = sps.binom.ppf([0.005, 0.995], n_sim, 0.95)
    assert lo <= covered_conv <= hi, covered_conv
    assert lo <= covered_rev <= hi, covered_rev
