"""What is specific to Spark (the analyses themselves are compared in test_engines.py)."""

from __future__ import annotations

import pytest
from conftest import METRICS, assert_close

from aipm_nb import cohort, experiment
from aipm_nb.errors import ParameterError

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def test_spark_scheme_reads_the_active_session(spark_session):
    via_scheme = experiment.analyze_experiment("spark:experiment", METRICS)
    duck = experiment.analyze_experiment("sample:experiment", METRICS)
    assert_close(via_scheme.to_dict(), duck.to_dict())


def test_timezone_needs_a_tz_engine(spark_session):
    with pytest.raises(ParameterError, match="needs the DuckDB or PostgreSQL engine; on pyspark"):
        cohort.analyze_cohorts(spark_session, table="events", timezone="Europe/Berlin")
