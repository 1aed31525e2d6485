"""Every analysis gives DuckDB's numbers (to 1e-9) on a real PostgreSQL server and on real
PySpark in local mode: the same ibis expressions, other engines."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import FEATURES, METRICS, assert_close

from aipm_nb import cohort, experiment, funnel, kpi, llm_eval, model

pytestmark = pytest.mark.slow


@pytest.fixture(
    scope="module",
    params=[pytest.param("postgres", marks=pytest.mark.postgres),
            pytest.param("spark", marks=pytest.mark.spark)],
)  # fmt: skip
def engine(request):
    """The source to pass with ``table=``: a connection URL or a SparkSession."""
    return request.getfixturevalue("pg_url" if request.param == "postgres" else "spark_session")


def test_ab(engine):
    opts = dict(time_col="first_exposure", segment_cols=["platform"])
    other = experiment.analyze_experiment(engine, METRICS, table="experiment", **opts)
    duck = experiment.analyze_experiment("sample:experiment", METRICS, **opts)
    assert_close(other.to_dict(), duck.to_dict())
    assert_close(other.segments_to_pandas().to_dict("list"),
                 duck.segments_to_pandas().to_dict("list"))  # fmt: skip


@pytest.mark.parametrize("kwargs", [
    {}, {"period": "month", "retention_type": "on_or_after"},
    {"period": "day", "max_periods": 5},
    {"activation_events": ["session_start"], "return_events": ["purchase"]},
])  # fmt: skip
def test_cohort(engine, kwargs):
    other = cohort.analyze_cohorts(engine, table="events", **kwargs)
    duck = cohort.analyze_cohorts("sample:events", **kwargs)
    assert_close(other.to_dict(), duck.to_dict())


def test_cohort_engagement(engine):
    ev_other = cohort.prepare_events(engine, table="events", extra_columns=["platform"])
    ev_duck = cohort.prepare_events("sample:events", extra_columns=["platform"])
    for kw in ({"segment_col": "platform"}, {"adoption_event": "ai_assist_used"}):
        a = cohort.compare_retention(events=ev_other, **kw)
        b = cohort.compare_retention(events=ev_duck, **kw)
        assert_close(a.tests.to_dict("list"), b.tests.to_dict("list"))
    pd.testing.assert_frame_equal(cohort.lifecycle(ev_other).table, cohort.lifecycle(ev_duck).table)
    pd.testing.assert_frame_equal(cohort.revenue_curves(ev_other, "revenue"),
                                  cohort.revenue_curves(ev_duck, "revenue"), rtol=1e-9)  # fmt: skip
    a_o, a_d = cohort.active_users(ev_other), cohort.active_users(ev_duck)
    assert a_o.daily.dau.tolist() == a_d.daily.dau.tolist()
    assert a_o.weekly.wau.tolist() == a_d.weekly.wau.tolist()
    assert a_o.monthly.mau.tolist() == a_d.monthly.mau.tolist()


def test_model(engine):
    opts = dict(segment_cols=["platform", "model_version"], feature_cols=FEATURES,
                metric_floor=0.7)  # fmt: skip
    other = model.analyze_model(engine, table="predictions", **opts)
    duck = model.analyze_model("sample:predictions", **opts)
    assert_close(other.to_dict(), duck.to_dict())
    assert_close(other.windows.drop(columns="window").to_dict("list"),
                 duck.windows.drop(columns="window").to_dict("list"))  # fmt: skip


def test_kpi(engine):
    from test_kpi import SAMPLE_KPIS

    opts = dict(segment_col="platform")
    other = kpi.monitor_kpis(engine, SAMPLE_KPIS, table="events", predictions_source=engine,
                             predictions_table="predictions", **opts)  # fmt: skip
    duck = kpi.monitor_kpis("sample:events", SAMPLE_KPIS, predictions_source="sample:predictions",
                            **opts)  # fmt: skip
    assert_close(other.to_dict(), duck.to_dict())
    assert other.alerts() == duck.alerts() == ["Purchase rate"]


def test_ab_sequential_and_quantile(engine):
    """Always-valid results and a p95 metric (exact engine quantiles: DuckDB quantile_cont,
    PostgreSQL percentile_cont, Spark percentile)."""
    p95 = {"name": "p95", "type": "quantile", "column": "response_ms", "quantile": 0.95,
           "guardrail": True, "direction": "decrease"}  # fmt: skip
    other = experiment.analyze_experiment(engine, [*METRICS, p95], table="experiment")
    duck = experiment.analyze_experiment("sample:experiment", [*METRICS, p95])
    assert_close(other.to_dict(), duck.to_dict())
    assert other.to_dict()["metrics"][-1]["quantile"] == 0.95
    other = experiment.analyze_experiment(engine, METRICS, table="experiment", sequential=True)
    duck = experiment.analyze_experiment("sample:experiment", METRICS, sequential=True)
    assert_close(other.to_dict(), duck.to_dict())


def test_llm_eval(engine):
    """Every engine-side aggregate of the LLM evaluation: per-version counts, exact latency
    percentiles and their order statistics, the outcome counts behind the ratings."""
    opts = dict(segment_col="platform", baseline="assistant-v1", candidate="assistant-v2")
    other = llm_eval.evaluate_llm(engine, table="llm_responses", preferences_source=engine,
                                  preferences_table="llm_preferences", **opts)  # fmt: skip
    duck = llm_eval.evaluate_llm("sample:llm_responses",
                                 preferences_source="sample:llm_preferences", **opts)  # fmt: skip
    assert_close(other.to_dict(), duck.to_dict())


@pytest.mark.parametrize("order", ["ordered", "strict", "unordered"])
def test_funnel(engine, order):
    """Step matching (window functions over each user's moments), the per-user choice of the
    best attempt, exact medians, histograms, breakdown counts and the arms' join."""
    steps = ["sign_up", "ai_question", "ai_answer_accepted", "purchase"]
    opts = dict(order=order, breakdown_col="platform")
    if order == "strict":
        opts["window"] = "3 days"
    other = funnel.analyze_funnel(engine, steps, table="funnel_events",
                                  assignments_source=engine if order == "ordered" else None,
                                  assignments_table="funnel_assignments", **opts)  # fmt: skip
    duck = funnel.analyze_funnel("sample:funnel_events", steps,
                                 assignments_source="sample:funnel_assignments"
                                 if order == "ordered" else None, **opts)  # fmt: skip
    assert_close(other.to_dict(), duck.to_dict())
    pd.testing.assert_frame_equal(other.times, duck.times, check_dtype=False)


# the grouped path (values that repeat) also runs by default here: the sample's integer
# features take it in test_model
@pytest.mark.parametrize("setting", ["tiny cells", "rank fallback", "engine quantiles (ks=False)"])
def test_drift_refinement(engine, setting, monkeypatch):
    """Drift's histogram refinement (fine bins, splits, the exact finish, the rank fallback)
    forced on the sample predictions: the same edges, counts and KS as DuckDB.
    """
    from test_drift import apply_setting

    ks = apply_setting(setting, monkeypatch)
    other = model.analyze_model(engine, table="predictions", feature_cols=FEATURES, ks=ks)
    duck = model.analyze_model("sample:predictions", feature_cols=FEATURES, ks=ks)
    assert_close(other.drift.to_dict("list"), duck.drift.to_dict("list"))


def _put(engine, name, df):
    """Write ``df`` as table ``name`` on the engine (a PostgreSQL URL or a SparkSession)."""
    if isinstance(engine, str):
        import ibis

        con = ibis.connect(engine)
        con.create_table(name, df, overwrite=True)
        con.disconnect()
    else:
        df = df.astype({"label": "float64"}) if "label" in df else df
        engine.createDataFrame(df).createOrReplaceTempView(name)


def test_ab_rare_paths(engine):
    """The A/B scan's rare paths on every engine: null unit ids (summed again without them), a
    3e7 offset (summed again around its mean) and an infinite value (a named error) give
    DuckDB's and scipy's numbers."""
    import numpy as np
    from scipy import stats as sps

    from aipm_nb.errors import DataError

    rng = np.random.default_rng(8)
    n = 3000
    df = pd.DataFrame({"user_id": pd.array(np.arange(n), dtype="Int64"),
                       "variant": ["control", "treatment"] * (n // 2)})  # fmt: skip
    df["y"] = 3e7 + rng.normal(0, 1, n) + np.where(df.variant == "treatment", 0.1, 0.0)
    df.loc[:2, "user_id"] = pd.NA
    _put(engine, "ab_rare", df)
    metric = [{"name": "y", "type": "mean", "column": "y"}]
    other = experiment.analyze_experiment(engine, metric, table="ab_rare")
    duck = experiment.analyze_experiment(df, metric)
    kept = df[df.user_id.notna()]
    a, b = (kept[kept.variant == v].y - 3e7 for v in ("control", "treatment"))
    want = sps.ttest_ind(b, a, equal_var=False).pvalue
    for res in (other, duck):
        (m,) = res.metrics
        assert m.control_n + m.variant_n == n - 3
        assert m.abs_p_value == pytest.approx(want, rel=1e-5)  # means at 3e7: see test_experiment
        assert m.abs_effect == pytest.approx(b.mean() - a.mean(), rel=1e-6)
        assert [w["code"] for w in res.warnings].count("null_ids") == 1
    df.loc[5, "y"] = np.inf
    _put(engine, "ab_rare_inf", df)
    with pytest.raises(DataError, match="column 'y' has 1 infinite values"):
        experiment.analyze_experiment(engine, metric, table="ab_rare_inf")


@pytest.mark.parametrize("kind", ["distinct", "tied"])
def test_model_metrics_on_a_real_model_log(engine, kind):
    """Issue 14: on 10^5 all-distinct full-precision scores (and a tied copy with unlabelled
    rows) the engine's label metrics equal scikit-learn's to 1e-9, overall, per segment and
    per week — checked against scikit-learn directly, not only against DuckDB."""
    from test_model import check_model_against_sklearn, distinct_and_tied_predictions

    distinct, tied = distinct_and_tied_predictions()
    df = distinct if kind == "distinct" else tied
    _put(engine, f"{kind}_predictions", df)
    res = model.analyze_model(engine, table=f"{kind}_predictions", segment_cols=["segment"],
                              ks=False)  # fmt: skip
    check_model_against_sklearn(res, df)
