"""One contract over every analysis and every public result (after scikit-learn's
`metrics/tests/test_common.py`): a new analysis that does not join these tables fails here."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest

from aipm_nb import cohort, experiment, funnel, kpi, llm_eval, model, summary
from aipm_nb.errors import DataError, ParameterError, SchemaError
from aipm_nb.experiment.results import Decision, MetricResult, PowerResult
from aipm_nb.model.metrics import RegressionMetrics, ThresholdChoice
from aipm_nb.reports.execute import ReportResult
from aipm_nb.results import WARNING_CODES, Result
from aipm_nb.validation import check_scalar

AB_METRICS = [
    {"name": "conversion", "type": "proportion", "column": "converted"},
    {"name": "revenue", "type": "mean", "column": "revenue"},
]

# kind -> (run on a table, the smallest valid table, a column the analysis requires)
ANALYSES: dict[str, tuple[Callable[[Any], Result], Callable[[], pd.DataFrame], str]] = {
    "cohort": (
        lambda src: cohort.analyze_cohorts(src, as_of="2024-03-01"),
        lambda: pd.DataFrame(
            {
                "user_id": [1, 1, 2],
                "event_time": pd.to_datetime(["2024-01-01", "2024-01-09", "2024-01-02"]),
                "event_name": ["open", "open", "open"],
            }
        ),
        "event_time",
    ),
    "ab_test": (
        lambda src: experiment.analyze_experiment(src, AB_METRICS),
        lambda: pd.DataFrame(
            {
                "user_id": range(8),
                "variant": ["control", "treatment"] * 4,
                "converted": [0, 1, 1, 1, 0, 0, 1, 1],
                "revenue": [0.0, 3.0, 2.0, 5.0, 0.0, 1.0, 4.0, 2.5],
            }
        ),
        "converted",
    ),
    "model_performance": (
        lambda src: model.analyze_model(src),
        lambda: pd.DataFrame(
            {
                "score": [0.1, 0.8, 0.4, 0.65, 0.3, 0.9],
                "label": [0, 1, 0, 1, 1, 0],
                "event_time": pd.date_range("2024-01-01", periods=6, freq="D"),
            }
        ),
        "score",
    ),
    "llm_eval": (
        lambda src: llm_eval.evaluate_llm(
            src,
            prompt_col=None,
            response_col=None,
            cost_col=None,
            refused_col=None,
            error_col=None,
        ),
        lambda: pd.DataFrame(
            {
                "model": ["v1", "v2"] * 60,
                "rating": [1.0, 0.0, None, 1.0] * 30,
                "latency_ms": [float(i) for i in range(1, 121)],
            }
        ),
        "model",
    ),
    "kpi": (
        lambda src: kpi.monitor_kpis(src, [{"name": "users", "type": "users"}]),
        lambda: pd.DataFrame(
            {
                "user_id": [1, 2, 1],
                "event_time": pd.to_datetime(["2024-01-01", "2024-01-09", "2024-01-16"]),
            }
        ),
        "event_time",
    ),
    "funnel": (
        lambda src: funnel.analyze_funnel(src, ["open", "buy"], as_of="2024-03-01"),
        lambda: pd.DataFrame(
            {
                "user_id": [1, 1, 2],
                "event_time": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-02"]),
                "event_name": ["open", "buy", "open"],
            }
        ),
        "event_name",
    ),
}


def test_every_summary_kind_has_a_row():
    """A new kind in `summary.KINDS` must join the contract (and declare its result keys)."""
    assert set(ANALYSES) == set(summary.KINDS) == set(summary.RESULT_KEYS)


@pytest.mark.parametrize("kind", sorted(ANALYSES))
def test_result_contract(kind):
    run, table, _ = ANALYSES[kind]
    result = run(table())
    assert isinstance(result, Result)
    assert dataclasses.is_dataclass(result) and type(result).__dataclass_params__.frozen  # type: ignore[attr-defined]
    d = result.to_dict()
    json.dumps(d, allow_nan=False)  # JSON-safe: no NaN, no numpy, no timestamps
    assert summary.RESULT_KEYS[kind] <= set(d)
    assert isinstance(result.to_pandas(), pd.DataFrame)
    assert "<" in result._repr_html_()
    for w in getattr(result, "warnings", ()):
        assert w["code"] in WARNING_CODES
    built = summary.build_summary(
        kind, title="t", parameters={}, data={"rows": 1}, result=d, warnings=result.warnings
    )
    json.dumps(built, allow_nan=False)


@pytest.mark.parametrize("kind", sorted(ANALYSES))
def test_empty_table_is_a_data_error_naming_the_table(kind):
    run, table, _ = ANALYSES[kind]
    empty = table().iloc[0:0]
    with pytest.raises(DataError, match="has no") as err:
        run(empty)
    assert err.value.table


@pytest.mark.parametrize("kind", sorted(ANALYSES))
def test_missing_column_is_a_schema_error_naming_it(kind):
    run, table, column = ANALYSES[kind]
    with pytest.raises(SchemaError, match=f"no column '{column}'") as err:
        run(table().drop(columns=column))
    assert err.value.column == column


PUBLIC_RESULTS = [
    experiment.ExperimentResult,
    MetricResult,
    Decision,
    PowerResult,
    cohort.CohortResult,
    cohort.RetentionComparison,
    cohort.ActiveUsers,
    cohort.Lifecycle,
    model.ModelResult,
    ThresholdChoice,
    RegressionMetrics,
    ReportResult,
    kpi.KpiResult,
    llm_eval.LlmEvalResult,
    funnel.FunnelResult,
]


@pytest.mark.parametrize("cls", PUBLIC_RESULTS, ids=lambda c: c.__name__)
def test_every_public_result_follows_the_protocol(cls):
    assert issubclass(cls, Result)
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen
    for name in ("to_dict", "to_pandas", "_repr_html_"):
        assert callable(getattr(cls, name))


def test_secondary_results_are_json_safe(events_df):
    ev = cohort.prepare_events(events_df, extra_columns=["platform"])
    for res in (
        cohort.active_users(ev),
        cohort.lifecycle(ev),
        cohort.compare_retention(events=ev, segment_col="platform", max_periods=4),
        model.regression_metrics(pd.DataFrame({"label": [1.0, 2, 3], "prediction": [1.5, 2, 2]})),
    ):
        json.dumps(res.to_dict(), allow_nan=False)
        assert isinstance(res.to_pandas(), pd.DataFrame)
        assert "<table" in res._repr_html_()


# --- one validation helper, one message shape ----------------------------------------------


@pytest.mark.parametrize(
    ("value", "kwargs", "match"),
    [
        (5.0, {"typ": float, "gt": 0, "lt": 1}, r"^alpha must be < 1; got 5\.0$"),
        (0, {"typ": float, "gt": 0, "lt": 1}, r"^alpha must be > 0; got 0$"),
        (float("nan"), {"typ": float, "gt": 0}, r"^alpha must be > 0; got nan$"),
        ("x", {"typ": float}, r"^alpha must be a number; got 'x'$"),
        (True, {"typ": float}, r"^alpha must be a number; got True$"),
        (2.5, {"typ": int}, r"^alpha must be an integer; got 2\.5$"),
        (-1, {"typ": int, "ge": 0}, r"^alpha must be >= 0; got -1$"),
        (2, {"le": 1}, r"^alpha must be <= 1; got 2$"),
        ("x", {"gt": 0}, r"^alpha must be > 0; got 'x'$"),
        ("bonf", {"one_of": ("holm", "bh")}, r"^alpha must be one of 'holm', 'bh'; got 'bonf'$"),
        (2, {"lt": 1, "hint": "e.g. 0.05"}, r"^alpha must be < 1; got 2; e\.g\. 0\.05$"),
    ],
)
def test_check_scalar_refuses(value, kwargs, match):
    with pytest.raises(ParameterError, match=match):
        check_scalar(value, "alpha", **kwargs)


@pytest.mark.parametrize(
    ("value", "kwargs"),
    [(0.05, {"typ": float, "gt": 0, "lt": 1}), (1, {"typ": float}), ("bh", {"one_of": ("bh",)})],
)
def test_check_scalar_accepts(value, kwargs):
    assert check_scalar(value, "alpha", **kwargs) == value


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda df: experiment.analyze_experiment(df, AB_METRICS, alpha=1.5), "alpha must be < 1"),
        (lambda df: experiment.analyze_experiment(df, AB_METRICS, power=0), "power must be > 0"),
        (
            lambda df: experiment.analyze_experiment(df, AB_METRICS, correction="bonferroni"),
            "correction must be one of 'holm', 'bh', 'none'; got 'bonferroni'",
        ),
        (
            lambda df: experiment.analyze_experiment(df, AB_METRICS, target_effect=-0.1),
            "target_effect must be > 0",
        ),
    ],
)
def test_analyses_use_the_one_message_shape(call, match):
    _, table, _ = ANALYSES["ab_test"]
    with pytest.raises(ParameterError, match=match):
        call(table())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"window": "month"}, "window must be one of 'day', 'week'; got 'month'"),
        ({"window_metric": "ece"}, "window_metric must be one of 'roc_auc', .*'accuracy'; got"),
        ({"threshold": -0.1}, "threshold must be >= 0; got -0.1"),
    ],
)
def test_model_options_use_the_one_message_shape(kwargs, match):
    _, table, _ = ANALYSES["model_performance"]
    with pytest.raises(ParameterError, match=match):
        model.analyze_model(table(), **kwargs)


def test_window_metric_accepts_accuracy():
    """The old message listed `ece` (refused) and left out `accuracy` (accepted)."""
    _, table, _ = ANALYSES["model_performance"]
    res = model.analyze_model(table(), window_metric="accuracy")
    assert "accuracy" in res.windows.columns
