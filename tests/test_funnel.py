"""Funnels against published cases (PostHog's funnel tests, retentioneering's closed funnel), an
independent plain-Python reference on random logs, scipy / statsmodels for the tests, and data
whose shape we did not choose."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from funnel_reference import reference_funnel, summary_times
from scipy import stats as sps
from statsmodels.stats.proportion import confint_proportions_2indep

from aipm_nb import synthetic
from aipm_nb.errors import DataError, ParameterError, SchemaError
from aipm_nb.funnel import analyze_funnel
from aipm_nb.funnel.present import (
    breakdown_table,
    step_table,
    summary_markdown,
    time_to_convert_chart,
)

ORDERS = ("ordered", "strict", "unordered")


def journeys(people: dict[str, list[tuple[str, str]]]) -> pd.DataFrame:
    """PostHog's ``journeys_for``: person -> [(event, timestamp)]."""
    rows = [
        {"user_id": p, "event_name": e, "event_time": pd.Timestamp(t)}
        for p, evs in people.items()
        for e, t in evs
    ]
    return pd.DataFrame(rows)


def in_sequence(people: dict[str, list[str]], start: str = "2021-05-01") -> pd.DataFrame:
    """Events created one after another without timestamps (PostHog's ``_create_event``): one
    minute apart, in the order written."""
    t0, rows, i = pd.Timestamp(start), [], 0
    for p, evs in people.items():
        for e in evs:
            rows.append({"user_id": p, "event_name": e, "event_time": t0 + pd.Timedelta(minutes=i)})
            i += 1
    return pd.DataFrame(rows)


# --- PostHog: conversion_time_cases.py (run for every order type there, as here) ------------


@pytest.mark.parametrize("order", ORDERS)
def test_posthog_step_conversion_times(order):
    df = journeys(
        {
            "person1": [("sign up", "2020-01-01 12:00"), ("play movie", "2020-01-01 13:00"),
                        ("buy", "2020-01-01 15:00")],
            "person2": [("sign up", "2020-01-02 14:00"), ("play movie", "2020-01-02 16:00")],
            "person3": [("sign up", "2020-01-02 14:00"), ("play movie", "2020-01-02 16:00"),
                        ("buy", "2020-01-02 17:00")],
        }
    )  # fmt: skip
    r = analyze_funnel(df, ["sign up", "play movie", "buy"], order=order, window="7 days",
                       as_of="2020-01-20")  # fmt: skip
    s = r.steps
    assert s["count"].tolist() == [3, 3, 2]
    assert np.isnan(s.mean_seconds[0]) and np.isnan(s.median_seconds[0])
    assert s.mean_seconds[1:].tolist() == [6000, 5400]
    assert s.median_seconds[1:].tolist() == [7200, 5400]


@pytest.mark.parametrize("order", ORDERS)
def test_posthog_incomplete_retries_are_ignored_for_timing(order):
    df = journeys(
        {
            "person1": [
                ("user signed up", "2021-05-01 01:00"), ("$pageview", "2021-05-01 02:00"),
                ("something else", "2021-05-01 03:00"),
                ("user signed up", "2021-05-03 04:00"), ("$pageview", "2021-05-03 05:00"),
                ("user signed up", "2021-05-04 07:00"), ("$pageview", "2021-05-04 10:00"),
            ]
        }
    )  # fmt: skip
    r = analyze_funnel(df, ["user signed up", "$pageview", "something else"], order=order,
                       window="1 day", as_of="2021-05-14")  # fmt: skip
    assert r.steps["count"].tolist() == [1, 1, 1]
    assert r.steps.mean_seconds[1] == 3600 and r.steps.median_seconds[1] == 3600


@pytest.mark.parametrize("order", ORDERS)
def test_posthog_conversion_windows_are_inclusive(order):
    df = journeys(
        {
            "stopped_after_signup1": [("user signed up", "2020-01-02 14:00"),
                                      ("pageview", "2020-01-02 14:05")],
            "stopped_after_signup2": [("user signed up", "2020-01-02 14:03")],
            "stopped_after_signup3": [("user signed up", "2020-01-02 12:00"),
                                      ("pageview", "2020-01-02 12:15")],
        }
    )  # fmt: skip
    steps = ["user signed up", "pageview"]
    wide = analyze_funnel(df, steps, order=order, window="14 days", as_of="2020-01-20")
    assert wide.steps["count"].tolist() == [3, 2]
    assert wide.steps.mean_seconds[1] == 600
    five = analyze_funnel(df, steps, order=order, window="5 minutes", as_of="2020-01-20")
    assert five.steps["count"].tolist() == [3, 1]  # 14:00 -> 14:05 is exactly 5 minutes: in
    assert five.steps.mean_seconds[1] == 300


def test_posthog_basic_strict_funnel():
    df = in_sequence(
        {
            "stopped_after_signup1": ["user signed up"],
            "stopped_after_pageview1": ["$pageview", "user signed up"],
            "stopped_after_insightview": ["user signed up", "$pageview", "blaah blaa",
                                          "insight viewed"],
            "stopped_after_insightview2": ["insight viewed", "blaah blaa", "$pageview",
                                           "user signed up"],
            "stopped_after_insightview3": ["$pageview", "user signed up", "blaah blaa",
                                           "$pageview", "insight viewed"],
            "person6": ["blaah blaa", "user signed up", "blaah blaa", "$pageview"],
            "person7": ["blaah blaa", "user signed up", "$pageview", "insight viewed",
                        "blaah blaa"],
            "stopped_after_insightview6": ["insight viewed", "$pageview"],
        }
    )  # fmt: skip
    steps = ["user signed up", "$pageview", "insight viewed"]
    r = analyze_funnel(df, steps, order="strict", as_of="2021-06-01")
    assert r.steps["count"].tolist() == [7, 2, 1]
    # the same log as an ordered funnel: other events between steps no longer break attempts
    assert analyze_funnel(df, steps, as_of="2021-06-01").steps["count"].tolist() == [7, 4, 3]


def _unordered_people() -> dict[str, list[str]]:
    return {
        "stopped_after_signup1": ["user signed up"],
        "stopped_after_pageview1": ["$pageview", "user signed up"],
        "stopped_after_insightview": ["user signed up", "$pageview", "blaah blaa",
                                      "insight viewed"],
        "stopped_after_insightview2": ["insight viewed", "$pageview", "user signed up"],
        "stopped_after_insightview3": ["$pageview", "user signed up", "blaah blaa",
                                       "insight viewed"],
        "stopped_after_insightview4": ["blaah blaa", "insight viewed"],
        "stopped_after_insightview5": ["$pageview", "blaah blaa"],
        "stopped_after_insightview6": ["insight viewed", "$pageview"],
    }  # fmt: skip


def test_posthog_basic_unordered_funnel():
    df = in_sequence(_unordered_people())
    steps = ["user signed up", "$pageview", "insight viewed"]
    r = analyze_funnel(df, steps, order="unordered", as_of="2021-06-01")
    assert r.steps["count"].tolist() == [8, 5, 3]


def test_posthog_big_multi_step_unordered_funnel():
    people = _unordered_people()
    people["stopped_after_pageview1"] = ["$pageview", "crying"]
    people["stopped_after_insightview2"] = ["insight viewed", "crying", "user signed up"]
    people["stopped_after_insightview3"] = ["$pageview", "user signed up", "crying",
                                            "insight viewed"]  # fmt: skip
    df = in_sequence(people)
    steps = ["user signed up", "$pageview", "insight viewed", "crying"]
    r = analyze_funnel(df, steps, order="unordered", as_of="2021-06-01")
    assert r.steps["count"].tolist() == [8, 5, 3, 1]


# --- retentioneering: tests/tooling/funnel_test.py, the closed funnel -----------------------


def test_retentioneering_closed_funnel_rates():
    """Their 8-user log; a *closed* funnel (users must enter at the first stage, stages in order)
    is our ordered funnel. %_of_initial 100 / 66.67 / 66.67 / 33.33, %_of_previous
    100 / 66.67 / 100 / 50 (their "open" funnel, any stage in any order with everybody who did
    some stage as the base, is not offered: it can exceed 100%)."""
    rows = []
    seq = {
        1: [("start", "00:01"), ("catalog", "00:01"), ("product1", "00:02"), ("product2", "00:03"),
            ("cart", "00:07"), ("payment_done", "00:08")],
        3: [("start", "00:01"), ("product1", "00:01"), ("product2", "00:02"), ("catalog", "00:03"),
            ("catalog", "00:04"), ("product18", "00:06:30"), ("cart", "00:07"),
            ("payment_done", "00:08")],
        4: [("start", "00:01"), ("catalog", "00:01"), ("product1", "00:02"), ("product2", "00:03"),
            ("catalog", "00:04"), ("product1", "00:06"), ("product18", "00:06:30"),
            ("cart", "00:07"), ("payment_done", "00:08")],
        5: [("start", "00:01"), ("product1", "00:02"), ("product2", "00:03"), ("product1", "00:06"),
            ("product18", "00:06:30"), ("cart", "00:07"), ("payment_done", "00:08")],
        7: [("start", "00:01"), ("catalog", "00:01"), ("product1", "00:02"), ("product2", "00:03"),
            ("catalog", "00:04"), ("product1", "00:06"), ("product18", "00:06:30"),
            ("payment_done", "00:07"), ("cart", "00:08")],
    }  # fmt: skip
    seq[6], seq[8] = seq[3], seq[7]
    seq[2] = [("start", "00:01"), ("product1", "00:01"), ("product2", "00:02"), ("cart", "00:07"),
              ("payment_done", "00:08")]  # fmt: skip
    for user, evs in seq.items():
        day = "2022-02-01" if user == 2 else "2022-01-01"
        rows += [{"user_id": user, "event_name": e, "event_time": pd.Timestamp(f"{day} {t}")}
                 for e, t in evs]  # fmt: skip
    df = pd.DataFrame(rows)
    r = analyze_funnel(df, ["catalog", ["product1", "product2"], "cart", "payment_done"],
                       window="30 days", as_of="2022-03-15")  # fmt: skip
    assert r.steps.step.tolist() == ["catalog", "product1 | product2", "cart", "payment_done"]
    assert r.steps["count"].tolist() == [6, 4, 4, 2]
    np.testing.assert_allclose(r.steps.conversion_from_start * 100, [100, 66.67, 66.67, 33.33],
                               atol=0.005)  # fmt: skip
    np.testing.assert_allclose(r.steps.conversion_from_previous[1:] * 100, [66.67, 100, 50],
                               atol=0.005)  # fmt: skip
    assert r.steps.drop_off.tolist() == [0, 2, 0, 2]


# --- the plain-Python reference on random logs ------------------------------------------------


def _random_log(seed: int, coarse: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 300
    minutes = rng.integers(0, 50, n) * 720 if coarse else rng.integers(0, 60 * 24 * 6, n)
    return pd.DataFrame(
        {
            "user_id": rng.integers(0, 40, n),
            "event_name": rng.choice(["a", "b", "c", "d", "x"], n, p=[0.25, 0.25, 0.2, 0.15, 0.15]),
            "event_time": pd.Timestamp("2024-01-01") + pd.to_timedelta(minutes, unit="m"),
        }
    )


CASES = [
    (["a", "b", "c"], "1 day"),
    (["a", ["b", "x"], "c", "d"], "3 days"),
    (["b", "a"], "12 hours"),
    (["a", ["a", "b"], "c"], "2 days"),  # a name in two steps (ordered and strict only)
]


RUNS = [("ordered", "auto"), ("ordered", "window"), ("strict", "auto"), ("unordered", "auto")]


@pytest.mark.parametrize(("order", "method"), RUNS)
@pytest.mark.parametrize("seed", range(6))
def test_engine_equals_the_plain_python_reference(seed, order, method):
    """Ties: half the logs put events on a 12-hour grid, so many share a timestamp. Ordered
    funnels run both ways on DuckDB: ASOF joins (the default) and window functions (what
    PostgreSQL and Spark run)."""
    steps, window = CASES[seed % len(CASES)]
    if order == "unordered" and seed % len(CASES) == 3:
        steps = ["a", "b", "c"]
    df = _random_log(seed, coarse=seed % 2 == 0)
    as_of = pd.Timestamp("2024-01-06")
    ref = reference_funnel(df, steps, order, pd.Timedelta(window), as_of)
    r = analyze_funnel(df, steps, order=order, window=window, as_of=as_of, method=method)
    assert r.steps["count"].tolist() == ref["counts"]
    assert r.too_recent == ref["too_recent"]
    mean, median = summary_times(ref["durations"])
    np.testing.assert_allclose(r.steps.mean_seconds[1:], mean, equal_nan=True)
    np.testing.assert_allclose(r.steps.median_seconds[1:], median, equal_nan=True)
    assert int(r.times[r.times.step == 1].users.sum()) == len(ref["durations"][1])


def test_equal_timestamps_do_not_chain_in_ordered_funnels():
    """The stated tie rule: a step must come strictly after the previous one."""
    df = journeys({"u": [("a", "2024-01-01 10:00"), ("b", "2024-01-01 10:00"),
                         ("b", "2024-01-01 11:00")],
                   "v": [("a", "2024-01-01 10:00"), ("b", "2024-01-01 10:00")]})  # fmt: skip
    r = analyze_funnel(df, ["a", "b"], as_of="2024-02-01")
    assert r.steps["count"].tolist() == [2, 1]
    assert r.steps.median_seconds[1] == 3600
    # unordered: the attempt's own moment counts for every step in it
    assert analyze_funnel(df, ["a", "b"], order="unordered",
                          as_of="2024-02-01").steps["count"].tolist() == [2, 2]  # fmt: skip


def test_users_whose_window_is_still_open_are_left_out_not_dropped():
    df = journeys({"old": [("a", "2024-01-01"), ("b", "2024-01-02")],
                   "new": [("a", "2024-01-25")], "old2": [("a", "2024-01-03")]})  # fmt: skip
    r = analyze_funnel(df, ["a", "b"], window="14 days", as_of="2024-01-31")
    assert r.steps["count"].tolist() == [2, 1] and r.too_recent == 1
    assert any("still open" in w["message"] for w in r.warnings)
    assert "1 users entered less than 14 days before" in summary_markdown(r)
    # a later, still open attempt of a user with a complete one does not hide the complete one
    df2 = journeys({"u": [("a", "2024-01-01"), ("b", "2024-01-02"), ("a", "2024-01-30")]})
    assert analyze_funnel(df2, ["a", "b"], as_of="2024-01-31").steps["count"].tolist() == [1, 1]


# --- breakdowns and experiment arms, against scipy and statsmodels ----------------------------


def test_breakdown_tests_match_scipy_and_statsmodels():
    rng = np.random.default_rng(3)
    rows = []
    for u in range(400):
        g = "web" if u % 3 else "ios"
        t0 = pd.Timestamp("2024-01-01") + pd.Timedelta(hours=int(rng.integers(0, 100)))
        rows.append((u, "a", t0, g))
        if rng.random() < (0.7 if g == "web" else 0.5):
            rows.append((u, "b", t0 + pd.Timedelta(hours=1), "changed-later"))
            if rng.random() < 0.5:
                rows.append((u, "c", t0 + pd.Timedelta(hours=2), None))
    df = pd.DataFrame(rows, columns=["user_id", "event_name", "event_time", "platform"])
    r = analyze_funnel(df, ["a", "b", "c"], breakdown_col="platform", as_of="2024-03-01")
    g = r.breakdown.pivot(index="group", columns="index", values="count")
    assert set(g.index) == {"web", "ios"}  # the value at the first step, not later ones
    assert g[1].sum() == 400
    table = np.array([[g.loc[k, 3], g.loc[k, 1] - g.loc[k, 3]] for k in ("web", "ios")])
    assert r.end_to_end["p_value"] == pytest.approx(
        sps.chi2_contingency(table, correction=False)[1], rel=1e-10
    )
    k, n = g[3], g[1]
    lo, hi = confint_proportions_2indep(k["web"], n["web"], k["ios"], n["ios"],
                                        method="newcomb", compare="diff")  # fmt: skip
    assert (r.end_to_end["first"], r.end_to_end["second"]) == ("web", "ios")
    assert r.end_to_end["ci_lower"] == pytest.approx(lo, rel=1e-10)
    assert r.end_to_end["ci_upper"] == pytest.approx(hi, rel=1e-10)
    step2 = np.array([[g.loc[k, 2], g.loc[k, 1] - g.loc[k, 2]] for k in ("web", "ios")])
    p2 = sps.chi2_contingency(step2, correction=False)[1]
    assert r.step_tests.p_value[0] == pytest.approx(p2, rel=1e-10)
    ps = r.step_tests.p_value.to_numpy()
    holm = np.maximum.accumulate(np.sort(ps) * np.array([2, 1]))
    np.testing.assert_allclose(np.sort(r.step_tests.p_value_adjusted), np.minimum(holm, 1))
    assert r.verdict.status == "differs"
    assert "p (Holm)" in breakdown_table(r).index


def test_experiment_arms_use_every_exposed_unit_as_denominator():
    df = journeys({"1": [("a", "2024-01-01"), ("b", "2024-01-02")], "2": [("a", "2024-01-01")],
                   "3": [("a", "2024-01-01"), ("b", "2024-01-03")]})  # fmt: skip
    assign = pd.DataFrame({"user_id": ["1", "2", "3", "4", "5", "6"],
                           "variant": ["control", "treatment", "treatment", "control",
                                       "treatment", "control"]})  # fmt: skip
    r = analyze_funnel(df, ["a", "b"], assignments_source=assign, as_of="2024-02-01")
    by = {(m.metric, m.variant): m for m in r.arms.metrics}
    reached_b = by[("2. b", "treatment")]
    assert (reached_b.control_n, reached_b.variant_n) == (3, 3)
    assert reached_b.control_mean == pytest.approx(1 / 3)  # user 1 of {1, 4, 6}
    assert reached_b.variant_mean == pytest.approx(1 / 3)  # user 3 of {2, 3, 5}
    assert by[("1. a", "treatment")].variant_mean == pytest.approx(2 / 3)


def test_sample_funnel_shows_its_ground_truth():
    """FUNNEL_TRUTH: the AI-answer step is worse on Android; treatment asks more often."""
    t = synthetic.FUNNEL_TRUTH
    r = analyze_funnel("sample:funnel_events", t["steps"], breakdown_col="platform",
                       assignments_source="sample:funnel_assignments")  # fmt: skip
    tests = r.step_tests.set_index("step")
    assert tests.p_value_adjusted["ai_answer_accepted"] < 1e-6
    assert tests.p_value_adjusted["ai_question"] > 0.05
    acc = r.breakdown[r.breakdown.step == "ai_answer_accepted"].set_index("group")
    assert acc.conversion_from_previous.idxmin() == "android"
    assert r.verdict.status == "differs"
    assert "differs by platform: android" in r.verdict.reasons[0]
    arms = {m.metric: m for m in r.arms.metrics}
    assert arms["2. ai_question"].significant and arms["2. ai_question"].abs_effect > 0
    assert not arms["1. sign_up"].significant
    assert r.too_recent > 0 and r.as_of == pd.Timestamp("2024-07-01")
    assert "users entered less than 14 days" in summary_markdown(r)
    fig = time_to_convert_chart(r)
    assert len(fig.axes) == 3
    assert list(step_table(r).index)[0] == "1. sign_up"


# --- data whose shape we did not choose -------------------------------------------------------


def test_a_users_csv_export(tmp_path):
    """Odd column names, string timestamps with a zone, nulls, duplicate rows, ids as text."""
    path = tmp_path / "Export (1).csv"
    path.write_text(
        "Distinct ID,Event Name,Time (UTC),Plan Type\n"
        "u-1,Signed Up,2024-03-01T10:00:00Z,free\n"
        "u-1,Signed Up,2024-03-01T10:00:00Z,free\n"
        "u-1,Asked AI,2024-03-01T10:05:00Z,\n"
        "u-2,Signed Up,2024-03-02T08:00:00Z,\n"
        ",Asked AI,2024-03-02T09:00:00Z,pro\n"
        "u-3,Asked AI,2024-03-02T09:00:00Z,pro\n"
        "u-3,Signed Up,2024-03-03T09:00:00Z,pro\n"
        "u-3,Bought,2024-03-04T09:00:00Z,pro\n"
    )
    r = analyze_funnel(str(path), ["Signed Up", "Asked AI", "Bought"], user_col="Distinct ID",
                       event_col="Event Name", time_col="Time (UTC)", breakdown_col="Plan Type",
                       as_of="2024-04-01")  # fmt: skip
    assert r.steps["count"].tolist() == [3, 1, 0]
    assert {w["code"] for w in r.warnings} == {"null_ids"}
    assert set(r.breakdown.group) == {"free", "pro", "(null)"}


def test_clear_errors():
    df = journeys({"u": [("a", "2024-01-01"), ("b", "2024-01-02")]})
    with pytest.raises(DataError, match=r"steps\[1\] names events \['bb'\] that never occur"):
        analyze_funnel(df, ["a", "bb"])
    with pytest.raises(ParameterError, match="steps needs 2 to 20 steps"):
        analyze_funnel(df, ["a"])
    with pytest.raises(ParameterError, match=r"steps\[1\] must be an event name"):
        analyze_funnel(df, ["a", []])
    with pytest.raises(ParameterError, match="window must be a duration"):
        analyze_funnel(df, ["a", "b"], window=14)
    with pytest.raises(ParameterError, match="window must be a duration"):
        analyze_funnel(df, ["a", "b"], window="fortnight")
    with pytest.raises(ParameterError, match="order must be one of"):
        analyze_funnel(df, ["a", "b"], order="loose")
    with pytest.raises(ParameterError, match="distinct event names"):
        analyze_funnel(df, ["a", ["a", "b"]], order="unordered")
    with pytest.raises(SchemaError, match="no column 'plan'"):
        analyze_funnel(df, ["a", "b"], breakdown_col="plan")
    assign = pd.DataFrame({"user_id": ["u"], "arm": ["control"]})
    with pytest.raises(SchemaError, match="no column 'variant'"):
        analyze_funnel(df, ["a", "b"], assignments_source=assign)
    few = analyze_funnel(df, ["a", "b"], as_of="2024-02-01")
    assert few.verdict.status == "insufficient_data"


@pytest.mark.parametrize("order", ORDERS)
def test_twenty_steps_stay_small_and_exact(order):
    """The largest funnel allowed: the engine's SQL grows linearly with the steps (an earlier
    unordered version compared every pair of steps: 19 MB of SQL and 47 s on 4,000 events)."""
    import ibis

    from aipm_nb.cohort.events import prepare_events, resolve_as_of
    from aipm_nb.funnel.engine import funnel_users
    from aipm_nb.funnel.spec import parse_steps

    rng = np.random.default_rng(5)
    names = [f"e{i}" for i in range(20)]
    n = 2000
    when = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 60 * 24 * 20, n), unit="m")
    df = pd.DataFrame({"user_id": rng.integers(0, 60, n), "event_name": rng.choice(names, n),
                       "event_time": when})  # fmt: skip
    ev, as_of = resolve_as_of(prepare_events(df, extra_columns=["event_name"]), "2024-01-25")
    users = funnel_users(ev.table, "event_name", parse_steps(names), order=order,
                         window_seconds=10 * 86400, as_of=as_of, method="window")  # fmt: skip
    assert len(ibis.to_sql(users)) < 200_000
    r = analyze_funnel(df, names, order=order, window="10 days", as_of="2024-01-25")
    ref = reference_funnel(df, names, order, pd.Timedelta(days=10), pd.Timestamp("2024-01-25"))
    assert r.steps["count"].tolist() == ref["counts"]
    mean, median = summary_times(ref["durations"])
    np.testing.assert_allclose(r.steps.mean_seconds[1:], mean, equal_nan=True)
    np.testing.assert_allclose(r.steps.median_seconds[1:], median, equal_nan=True)
