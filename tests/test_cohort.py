"""Cohort analysis: hand-computed cases, a plain-pandas reference, and the synthetic truth."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from aipm_nb import cohort, synthetic
from aipm_nb.errors import DataError, ParameterError, SchemaError


def _events(rows):
    return pd.DataFrame(
        [{"user_id": u, "event_time": pd.Timestamp(t), "event_name": e} for u, t, e in rows]
    )


def _ret(df, **kw):
    kw.setdefault("max_periods", 4)
    return cohort.analyze_cohorts(df, **kw)


def test_late_first_event_and_boundary():
    # Sunday 23:00 is still week 2024-01-01; Monday 00:00:00 exactly starts week 1
    df = _events([
        (1, "2024-01-07 23:00", "a"), (1, "2024-01-08 00:00:00", "a"),
        (2, "2024-01-01 00:00", "a"), (2, "2024-01-07 23:59:59", "a"),
        (3, "2024-01-10 12:00", "a"), (3, "2024-01-29 12:00", "a"),
    ])  # fmt: skip
    r = _ret(df, as_of="2024-03-01")
    assert list(r.cohorts.cohort) == [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-08")]
    assert list(r.cohorts["size"]) == [2, 1]
    assert r.retention.loc["2024-01-01"].tolist() == [1.0, 0.5, 0.0, 0.0, 0.0]
    assert r.retention.loc["2024-01-08"].tolist() == [1.0, 0.0, 0.0, 1.0, 0.0]
    # average: size-weighted over complete cells
    assert r.average.retention[1] == pytest.approx(1 / 3)
    assert r.average.retention[3] == pytest.approx(1 / 3)


def test_timezone_moves_event_across_midnight():
    # 02:00 UTC Monday is 21:00 Sunday in New York: week 0 there, week 1 in UTC
    df = _events([(1, "2024-01-03 15:00", "a"), (1, "2024-01-08 02:00", "a")])
    utc = _ret(df, as_of="2024-02-01")
    ny = _ret(df, as_of="2024-02-01", timezone="America/New_York")
    assert utc.retention.iloc[0, 1] == 1.0
    assert ny.retention.iloc[0, 1] == 0.0
    # and a day cohort changes date
    day = _ret(_events([(1, "2024-01-08 02:00", "a")]), period="day", timezone="America/New_York",
               as_of="2024-02-01")  # fmt: skip
    assert day.cohorts.cohort[0] == pd.Timestamp("2024-01-07")


def test_incomplete_cells_are_null_not_low():
    df = _events([(1, "2024-01-01 10:00", "a"), (2, "2024-01-08 10:00", "a"),
                  (1, "2024-01-09 10:00", "a")])  # fmt: skip
    r = _ret(df, as_of="2024-01-17 12:00")  # week of Jan 15 has not ended
    assert r.retention.loc["2024-01-01"].iloc[:2].tolist() == [1.0, 1.0]
    assert r.retention.loc["2024-01-01"].iloc[2:].isna().all()
    assert r.retention.loc["2024-01-08"].iloc[0] == 1.0
    assert r.retention.loc["2024-01-08"].iloc[1:].isna().all()
    d = r.to_dict()
    assert d["cohorts"][1]["retention"] == [1.0, None, None, None, None]
    assert d["average_retention"][2] is None
    # default as_of: midnight after the last event's day
    r = _ret(df)
    assert r.as_of == pd.Timestamp("2024-01-10")
    assert r.retention.loc["2024-01-01"].iloc[1] != r.retention.loc["2024-01-01"].iloc[1]  # NaN


def test_one_user_cohort_and_no_return():
    df = _events([(1, "2024-01-01", "a"), (2, "2024-01-02", "a"), (2, "2024-01-20", "a")])
    r = _ret(df, as_of="2024-03-01")
    assert r.cohorts["size"].tolist() == [2]
    assert r.retention.iloc[0].tolist() == [1.0, 0.0, 0.5, 0.0, 0.0]
    solo = _ret(_events([(7, "2024-02-01", "a")]), as_of="2024-04-01")
    assert solo.retention.iloc[0].tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert any(w["code"] == "small_cohorts" for w in solo.warnings)


def test_on_or_after_and_month():
    df = _events([(1, "2024-01-01", "a"), (1, "2024-01-22", "a"), (2, "2024-01-03", "a"),
                  (2, "2024-03-05", "a")])  # fmt: skip
    on = _ret(df, as_of="2024-06-01")
    after = _ret(df, as_of="2024-06-01", retention_type="on_or_after")
    assert on.retention.iloc[0].tolist() == [1.0, 0.0, 0.0, 0.5, 0.0]
    # user 2's week-9 activity is beyond max_periods=4 but still counts for "or after"
    assert after.retention.iloc[0].tolist() == [1.0, 1.0, 1.0, 1.0, 0.5]
    month = _ret(df, period="month", as_of="2024-06-01")
    assert month.cohorts.cohort[0] == pd.Timestamp("2024-01-01")
    assert month.retention.iloc[0].tolist() == [1.0, 0.0, 0.5, 0.0, 0.0]


def test_activation_and_return_filters():
    df = _events([
        (1, "2024-01-01", "visit"), (1, "2024-01-09", "signup"), (1, "2024-01-16", "visit"),
        (1, "2024-01-17", "purchase"), (2, "2024-01-10", "signup"), (2, "2024-01-23", "purchase"),
    ])  # fmt: skip
    r = _ret(df, activation_events=["signup"], return_events="purchase", as_of="2024-03-01")
    # both users signed up in week Jan 8; user 1 purchased in week 1, user 2 in week 2
    assert r.cohorts["size"].tolist() == [2]
    assert r.retention.iloc[0].tolist() == [1.0, 0.5, 0.5, 0.0, 0.0]
    with pytest.raises(
        DataError,
        match=r"activation_events \['sign_up'\] never occur in column "
        "'event_name'; events present: purchase, signup, visit",
    ):
        _ret(df, activation_events=["sign_up"])


def _pandas_retention(df, period, rtype, max_k, as_of):
    """An independent, idiomatic pandas implementation."""
    ts = df.event_time
    if period == "week":
        start = ts.dt.to_period("W-SUN").dt.start_time
        idx = (start - pd.Timestamp("1970-01-05")).dt.days // 7
    elif period == "month":
        idx = ts.dt.year * 12 + ts.dt.month - 1
    else:
        idx = (ts.dt.floor("D") - pd.Timestamp("1970-01-01")).dt.days
    d = pd.DataFrame({"u": df.user_id, "p": idx}).drop_duplicates()
    c = d.groupby("u").p.min().rename("c")
    d = d.join(c, on="u")
    d["k"] = d.p - d.c
    size = c.value_counts().sort_index()
    if rtype == "on":
        cnt = d[d.k <= max_k].groupby(["c", "k"]).u.nunique().unstack()
    else:
        last = d.groupby("u").k.max().clip(upper=max_k)
        cnt = pd.DataFrame({k: (last >= k).groupby(c).sum() for k in range(max_k + 1)})
    cnt = cnt.reindex(index=size.index, columns=range(max_k + 1)).fillna(0)
    out = cnt.div(size, axis=0)
    starts = cohort.period_start(out.index.to_numpy(), period)
    for k in range(max_k + 1):
        ends = cohort.period_start(out.index.to_numpy() + k + 1, period).to_numpy()
        out.loc[ends > np.datetime64(as_of), k] = np.nan
    out[0] = 1.0
    out.index = pd.DatetimeIndex(starts)
    return out


@pytest.mark.parametrize(
    ("period", "rtype"),
    [("week", "on"), ("week", "on_or_after"), ("month", "on"), ("day", "on_or_after")],
)
def test_equals_pandas_on_sample(events_df, period, rtype):
    max_k = 6
    r = cohort.analyze_cohorts(events_df, period=period, retention_type=rtype, max_periods=max_k)
    ref = _pandas_retention(events_df, period, rtype, max_k, r.as_of)
    got = r.retention.copy()
    got.columns = list(got.columns)
    ref.columns = list(ref.columns)
    pd.testing.assert_frame_equal(got, ref, check_names=False, check_freq=False, rtol=1e-12)


def test_synthetic_truth_recovered():
    df = synthetic.generate_events(20_000, seed=3)
    ev = cohort.prepare_events(df, extra_columns=["platform"])
    by_platform = cohort.compare_retention(events=ev, segment_col="platform", max_periods=6)
    users = df.groupby("user_id").agg(platform=("platform", "first"), plan=("plan", "first"))
    users["adopter"] = users.index.isin(df.loc[df.event_name == "ai_assist_used", "user_id"])
    for platform, res in by_platform.results.items():
        u = users[users.platform == platform]
        for k in (1, 4):
            n = res.average.users[k]
            expected = synthetic.true_retention(k, platform, u.plan, u.adopter).mean()
            se = np.sqrt(expected * (1 - expected) / n)
            assert abs(res.average.retention[k] - expected) < 4 * se, (platform, k)
    adopt = cohort.compare_retention(events=ev, adoption_event="ai_assist_used", max_periods=6,
                                     test_periods=[1, 2, 3, 4])  # fmt: skip
    truth = synthetic.EVENTS_TRUTH["adopter_lift"]
    tests = adopt.tests.set_index("k")
    assert list(adopt.results) == ["adopters", "non-adopters"]
    # the pooled lift across periods is within sampling error of the truth
    mean_diff = tests["diff"].mean()
    mean_se = ((tests.ci_upper - tests.ci_lower) / 2 / 1.96).mean()
    assert abs(mean_diff - truth) < 3 * mean_se
    assert (tests.p_value < 0.01).all()


def test_wilson_matches_statsmodels():
    for k, n in [(0, 5), (3, 7), (31, 100), (999, 1000)]:
        lo, hi = cohort.wilson_interval(k, n)
        ref = proportion_confint(k, n, method="wilson")
        assert (float(lo), float(hi)) == pytest.approx(ref, abs=1e-12)


def test_active_users_and_lifecycle_by_hand():
    df = _events([
        (1, "2024-01-01 10:00", "a"), (1, "2024-01-01 11:00", "a"), (2, "2024-01-01", "a"),
        (1, "2024-01-09", "a"), (3, "2024-01-10", "a"),
        (2, "2024-01-16", "a"),
        (1, "2024-01-24", "a"), (2, "2024-01-24", "a"),
    ])  # fmt: skip
    ev = cohort.prepare_events(df)
    au = cohort.active_users(ev)
    daily, monthly = au.daily, au.monthly
    assert au.weekly.wau.tolist() == [2, 2, 1, 2]
    assert daily.set_index("day").dau.to_dict()[pd.Timestamp("2024-01-01")] == 2
    assert monthly.mau.tolist() == [3]
    # data from Jan 1 to Jan 24: January's average DAU is over the 24 days it covers
    assert monthly.avg_dau[0] == pytest.approx(daily.dau.sum() / 24)
    assert not monthly.complete[0]
    life = cohort.lifecycle(ev).to_pandas()
    # week1: 1 and 2 new; week2: 1 returning, 3 new, 2 dormant; week3: 2 resurrecting,
    # 1 and 3 dormant; week4: 1 resurrecting, 2 returning
    assert life.to_dict("index") == {
        pd.Timestamp("2024-01-01"): {"new": 2, "returning": 0, "resurrecting": 0, "dormant": 0},
        pd.Timestamp("2024-01-08"): {"new": 1, "returning": 1, "resurrecting": 0, "dormant": -1},
        pd.Timestamp("2024-01-15"): {"new": 0, "returning": 0, "resurrecting": 1, "dormant": -2},
        pd.Timestamp("2024-01-22"): {"new": 0, "returning": 1, "resurrecting": 1, "dormant": 0},
    }
    # the data ends on Wednesday 24 January: that week is still running (issue 13)
    lc = cohort.lifecycle(ev)
    assert lc.as_of == pd.Timestamp("2024-01-25")
    assert lc.complete.tolist() == [True, True, True, False]
    assert [p["complete"] for p in lc.to_dict()["periods"]] == [True, True, True, False]
    # as_of bounds the events like every cohort function: the week of the 15th is then last
    bounded = cohort.lifecycle(ev, as_of="2024-01-22")
    assert bounded.table.index[-1] == pd.Timestamp("2024-01-15")
    assert bounded.complete.all()
    monthly = cohort.lifecycle(cohort.prepare_events(df, period="month"))
    assert monthly.complete.tolist() == [False]  # January has not ended on the 25th


def test_partial_periods_are_marked_in_the_charts():
    """Issue 13: a running period is drawn lighter and hatched, labelled as partial, never a
    sliver; incomplete retention cells are hatched, and a cohort still enrolling says so."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from aipm_nb import plots

    df = _events([
        (1, "2024-01-01", "a"), (2, "2024-01-02", "a"), (1, "2024-01-09", "a"),
        (3, "2024-01-10", "a"), (2, "2024-01-16", "a"), (4, "2024-01-17", "a"),
        (1, "2024-01-24", "a"), (5, "2024-01-24", "a"),
    ])  # fmt: skip
    ev = cohort.prepare_events(df)
    ax = plots.lifecycle_plot(cohort.lifecycle(ev))
    hatched = [b for b in ax.patches if b.get_hatch()]
    solid = [b for b in ax.patches if not b.get_hatch()]
    assert hatched and all(b.get_alpha() < 1 for b in hatched)
    assert {round(b.get_x() + b.get_width() / 2) for b in hatched} == {3}  # only the last week
    assert {round(b.get_x() + b.get_width() / 2) for b in solid} <= {0, 1, 2}
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[-1] == "2024-01-22 (partial)" and "partial" not in " ".join(labels[:-1])
    assert "still running" in ax.get_title()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "new", "returning", "resurrecting", "dormant"
    ]  # fmt: skip
    plt.close("all")

    result = cohort.analyze_cohorts(ev, max_periods=3)
    assert result.cohort_complete.tolist() == [True, True, True, False]
    ax = plots.retention_heatmap(result)
    cells = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_hatch()]
    assert len(cells) == int(result.retention.isna().to_numpy().sum()) > 0
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert ticks[-1] == "2024-01-22 (1, still enrolling)"
    assert not any("enrolling" in t for t in ticks[:-1])
    assert "hatched" in ax.get_xlabel()
    plt.close("all")


def test_revenue_curves_against_pandas(events_df):
    ev = cohort.prepare_events(events_df)
    ltv = cohort.revenue_curves(ev, "revenue", max_periods=4)
    week = events_df.event_time.dt.to_period("W-SUN").dt.start_time
    first = week.groupby(events_df.user_id).transform("min")
    k = (week - first).dt.days // 7
    users = first.groupby(events_df.user_id).first()
    c0 = pd.Timestamp("2024-01-01")
    size = (users == c0).sum()
    m = (first == c0) & (k <= 4)
    per_k = events_df.revenue[m].groupby(k[m]).sum().reindex(range(5), fill_value=0)
    np.testing.assert_allclose(ltv.loc[c0].to_numpy(), per_k.cumsum().to_numpy() / size)
    assert ltv.iloc[-1].isna().any()  # the latest cohort's late cells are incomplete


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"period": "quarter"}, ParameterError, "period must be one of"),
    ({"retention_type": "rolling"}, ParameterError, "retention_type must be one of"),
    ({"timezone": "Mars/Olympus"}, ParameterError, "unknown timezone 'Mars/Olympus'"),
    ({"max_periods": 0}, ParameterError, "max_periods must be >= 1; got 0"),
    ({"max_periods": 2.5}, ParameterError, "max_periods must be an integer; got 2.5"),
    ({"user_col": "uid"}, SchemaError, r"events \(pandas DataFrame\) has no column 'uid'"),
    ({"as_of": "not a date"}, ParameterError, "as_of 'not a date' is not a date"),
])  # fmt: skip
def test_bad_input(kwargs, error, match):
    df = _events([(1, "2024-01-01", "a")])
    with pytest.raises(error, match=match):
        cohort.analyze_cohorts(df, **kwargs)


def test_string_timestamps_parse_like_the_csv_and_bad_text_is_named(tmp_path):
    """A DataFrame of text timestamps gives the same result as the same data read from CSV
    (issue 11); text that is not a timestamp is a DataError naming column, count and example."""
    rows = [(1, "2024-01-01 10:00:00", "a"), (1, "2024-01-09 08:00:00", "a"),
            (2, "2024-01-02 00:00:00", "a"), (3, "2024-01-16 12:30:00", "a")]  # fmt: skip
    df = pd.DataFrame(rows, columns=["user_id", "event_time", "event_name"])
    df.to_csv(tmp_path / "ev.csv", index=False)
    from_df = cohort.analyze_cohorts(df, as_of="2024-02-01")
    from_csv = cohort.analyze_cohorts(str(tmp_path / "ev.csv"), as_of="2024-02-01")
    pd.testing.assert_frame_equal(from_df.retention, from_csv.retention)
    assert from_df.retention.iloc[0, 1] == pytest.approx(0.5)
    bad = df.assign(event_time=["2024-01-01", "soon", "later", "2024-01-02"])
    with pytest.raises(DataError, match=r"'event_time' holds text that is not a timestamp in 2 "
                       r"rows \(e\.g\. 'later'\).*set time_col="):  # fmt: skip
        cohort.analyze_cohorts(bad)
    with pytest.raises(DataError, match="has no rows"):
        cohort.analyze_cohorts(_events([(1, "2024-01-01", "a")]).iloc[:0])


def test_summary_json(events_df):
    r = cohort.analyze_cohorts(events_df)
    d = r.to_dict()
    assert set(d) == {"period", "retention_type", "cohorts", "average_retention", "verdict"}
    assert set(d["cohorts"][0]) == {"cohort", "size", "retention"}
    assert d["cohorts"][0]["cohort"] == "2024-01-01"
    assert len(d["average_retention"]) == 13 and d["average_retention"][0] == 1.0
    json.dumps(d, allow_nan=False)
