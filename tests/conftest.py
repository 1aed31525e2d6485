from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd
import pytest

from aipm_nb import synthetic

ROOT = Path(__file__).resolve().parent.parent

# the sample data's metrics and features, shared by the engine-equality tests
METRICS = [
    {"name": "conversion", "type": "proportion", "column": "converted"},
    {"name": "revenue", "type": "mean", "column": "revenue", "covariate": "pre_revenue"},
    {"name": "ctr", "type": "ratio", "numerator": "clicks", "denominator": "views"},
    {"name": "latency", "type": "mean", "column": "latency_ms", "guardrail": True,
     "direction": "decrease"},
]  # fmt: skip
FEATURES = ["prompt_length", "account_age_days", "sessions_7d", "latency_ms", "feature_usage"]


@pytest.fixture(scope="session")
def events_df():
    return synthetic.generate_events()


@pytest.fixture(scope="session")
def experiment_df():
    return synthetic.generate_experiment()


@pytest.fixture(scope="session")
def predictions_df():
    return synthetic.generate_predictions(return_truth=True)


def assert_close(a, b, path="result"):
    """Nested equality, floats to 1e-9 relative."""
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            assert_close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            assert math.isnan(a) and math.isnan(b), path
        else:
            assert a == pytest.approx(b, rel=1e-9, abs=1e-12), path
    else:
        assert a == b, path


# --- real services, started once per test session and only by the tests that need them ----

#: trust authentication accepts any password: the URL carries one so that the tests can prove
#: it never reaches an output
PG_PASSWORD = "pg-S3cret-never-written"
#: the sample tables every engine test server holds
SAMPLE_TABLES = ("events", "experiment", "predictions", "llm_responses", "llm_preferences",
                 "funnel_events", "funnel_assignments")  # fmt: skip


@pytest.fixture(scope="session")
def pg_url():
    """A throwaway PostgreSQL server on loopback holding the three sample tables."""
    import ibis
    from services import postgres_server

    with postgres_server() as pg:
        url = f"postgresql://{pg['user']}:{PG_PASSWORD}@{pg['host']}:{pg['port']}/{pg['db']}"
        con = ibis.connect(url)
        for name in SAMPLE_TABLES:
            con.create_table(name, pd.read_parquet(ROOT / "data" / f"{name}.parquet"))
        con.disconnect()
        yield url


@pytest.fixture(scope="session")
def spark_session(tmp_path_factory):
    """Real PySpark in local mode with the three sample tables as temporary views."""
    from pyspark.sql import SparkSession
    from services import java_home

    home = java_home(tmp_path_factory.mktemp("java"))
    if home:
        os.environ["JAVA_HOME"] = home

    session = (
        SparkSession.builder.master("local[2]").appName("aipm-nb-tests")
        .config("spark.sql.session.timeZone", "UTC").config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2").getOrCreate()
    )  # fmt: skip
    for name in SAMPLE_TABLES:
        session.read.parquet(str(ROOT / "data" / f"{name}.parquet")).createOrReplaceTempView(name)
    yield session
    session.stop()
