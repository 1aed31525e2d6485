"""The analyses on real PySpark in local mode give DuckDB's numbers (ibis' PySpark backend)."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import FEATURES, METRICS, ROOT, assert_close

from aipm_nb import cohort, experiment, model
from aipm_nb.errors import ParameterError

pytestmark = [pytest.mark.spark, pytest.mark.slow]


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]").appName("aipm-nb-tests")
        .config("spark.sql.session.timeZone", "UTC").config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4").getOrCreate()
    )  # fmt: skip
    for name in ("events", "experiment", "predictions"):
        session.read.parquet(str(ROOT / "data" / f"{name}.parquet")).createOrReplaceTempView(name)
    yield session
    session.stop()


def test_ab_same_as_duckdb(spark):
    opts = dict(time_col="first_exposure", segment_cols=["platform"])
    sp = experiment.analyze_experiment(spark, METRICS, table="experiment", **opts)
    dk = experiment.analyze_experiment("sample:experiment", METRICS, **opts)
    assert_close(sp.to_dict(), dk.to_dict())
    assert_close(sp.segments_to_pandas().to_dict("list"), dk.segments_to_pandas().to_dict("list"))
    # the spark: scheme finds the same table in the active session
    via_scheme = experiment.analyze_experiment("spark:experiment", METRICS)
    assert_close(via_scheme.to_dict(), experiment.analyze_experiment(
        "sample:experiment", METRICS).to_dict())  # fmt: skip


@pytest.mark.parametrize("kwargs", [
    {}, {"period": "month", "retention_type": "on_or_after"},
    {"period": "day", "max_periods": 5},
    {"activation_events": ["session_start"], "return_events": ["purchase"]},
])  # fmt: skip
def test_cohort_same_as_duckdb(spark, kwargs):
    sp = cohort.analyze_cohorts(spark, table="events", **kwargs)
    dk = cohort.analyze_cohorts("sample:events", **kwargs)
    assert_close(sp.to_dict(), dk.to_dict())


def test_cohort_engagement_same_as_duckdb(spark):
    ev_sp = cohort.prepare_events(spark, table="events", extra_columns=["platform"])
    ev_dk = cohort.prepare_events("sample:events", extra_columns=["platform"])
    for kw in ({"segment_col": "platform"}, {"adoption_event": "ai_assist_used"}):
        a = cohort.compare_retention(events=ev_sp, **kw)
        b = cohort.compare_retention(events=ev_dk, **kw)
        assert_close(a.tests.to_dict("list"), b.tests.to_dict("list"))
    pd.testing.assert_frame_equal(cohort.lifecycle(ev_sp), cohort.lifecycle(ev_dk))
    pd.testing.assert_frame_equal(cohort.revenue_curves(ev_sp, "revenue"),
                                  cohort.revenue_curves(ev_dk, "revenue"), rtol=1e-9)  # fmt: skip
    d_sp, m_sp = cohort.active_users(ev_sp)
    d_dk, m_dk = cohort.active_users(ev_dk)
    assert d_sp.dau.tolist() == d_dk.dau.tolist()
    assert m_sp.mau.tolist() == m_dk.mau.tolist()


def test_timezone_needs_a_tz_engine(spark):
    with pytest.raises(ParameterError, match="needs the DuckDB or PostgreSQL engine; on pyspark"):
        cohort.analyze_cohorts(spark, table="events", timezone="Europe/Berlin")


def test_model_same_as_duckdb(spark):
    opts = dict(segment_cols=["platform", "model_version"], feature_cols=FEATURES,
                metric_floor=0.7)  # fmt: skip
    sp = model.analyze_model(spark, table="predictions", **opts)
    dk = model.analyze_model("sample:predictions", **opts)
    assert_close(sp.to_dict(), dk.to_dict())
    assert_close(sp.windows.drop(columns="window").to_dict("list"),
                 dk.windows.drop(columns="window").to_dict("list"))  # fmt: skip
