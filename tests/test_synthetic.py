"""The generators are deterministic and their ground truth holds (checked with plain pandas)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aipm_nb import synthetic
from aipm_nb.synthetic import EVENTS_TRUTH, EXPERIMENT_TRUTH, PREDICTIONS_TRUTH


@pytest.mark.parametrize(
    "gen",
    [synthetic.generate_events, synthetic.generate_experiment, synthetic.generate_predictions],
)
def test_deterministic(gen):
    a = gen(2000, seed=5)
    b = gen(2000, seed=5)
    c = gen(2000, seed=6)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_events_shape(events_df):
    df = events_df
    assert set(df.event_name) == {"session_start", "ai_assist_used", "purchase"}
    assert df.revenue.notna().eq(df.event_name.eq("purchase")).all()
    assert (df.revenue.dropna() > 0).all()
    first = df.sort_values("event_time").groupby("user_id").event_name.first()
    assert (first == "session_start").all()
    start = pd.Timestamp(EVENTS_TRUTH["start"])
    assert df.event_time.min() >= start
    assert df.event_time.max() < start + pd.Timedelta(weeks=EVENTS_TRUTH["weeks"])


def _weekly_retention(df: pd.DataFrame) -> pd.DataFrame:
    """Plain-pandas calendar-week retention, one row per (user, k>=1 observed)."""
    week = df.event_time.dt.to_period("W-SUN").dt.start_time
    df = df.assign(week=week)
    cohort = df.groupby("user_id").week.min().rename("cohort")
    active = df[["user_id", "week"]].drop_duplicates().join(cohort, on="user_id")
    active["k"] = (active.week - active.cohort).dt.days // 7
    return active, cohort


def test_events_retention_truth(events_df):
    df = events_df
    active, cohort = _weekly_retention(df)
    users = df.groupby("user_id").agg(platform=("platform", "first"), plan=("plan", "first"))
    users["adopter"] = df[df.event_name == "ai_assist_used"].groupby("user_id").size() > 0
    users["adopter"] = users.adopter.fillna(False).astype(bool)
    users["cohort"] = cohort
    end = pd.Timestamp(EVENTS_TRUTH["start"]) + pd.Timedelta(weeks=EVENTS_TRUTH["weeks"])
    for k in (1, 4):
        eligible = users[users.cohort + pd.Timedelta(weeks=k + 1) <= end]
        is_active = eligible.index.isin(active.loc[active.k == k, "user_id"])
        for platform in EVENTS_TRUTH["initial"]:
            m = (eligible.platform == platform).to_numpy()
            expected = synthetic.true_retention(
                k, platform, eligible.plan[m], eligible.adopter[m]
            ).mean()
            observed = is_active[m].mean()
            se = np.sqrt(expected * (1 - expected) / m.sum())
            assert abs(observed - expected) < 4 * se, (k, platform, observed, expected)
        # adopters retain better by adopter_lift (same mix of platforms/plans on both sides)
        diff = is_active[eligible.adopter].mean() - is_active[~eligible.adopter].mean()
        assert abs(diff - EVENTS_TRUTH["adopter_lift"]) < 0.04


def test_experiment_truth():
    df = synthetic.generate_experiment(200_000, seed=3)
    g = df.groupby("variant")
    conv = g.converted.mean()
    truth = EXPERIMENT_TRUTH
    for v in ("control", "treatment"):
        se = np.sqrt(truth["conversion"][v] * (1 - truth["conversion"][v]) / g.size()[v])
        assert abs(conv[v] - truth["conversion"][v]) < 4 * se
    lift = df[df.variant == "treatment"].revenue.mean() / df[df.variant == "control"].revenue.mean()
    assert abs(lift - 1 - truth["revenue_lift"]["treatment"]) < 0.025
    ctr = g.clicks.sum() / g.views.sum()
    assert abs(ctr["treatment"] - 0.055) < 0.002 and abs(ctr["control"] - 0.05) < 0.002
    # the covariate is correlated with revenue (CUPED has something to remove)
    assert np.corrcoef(df.revenue, df.pre_revenue)[0, 1] > 0.5
    assert df.user_id.is_unique


def test_experiment_srm_and_arms():
    df = synthetic.generate_experiment(30_000, srm=0.05, seed=1)
    n = df.variant.value_counts()
    assert n["treatment"] / n["control"] == pytest.approx(0.95, abs=0.03)
    three = synthetic.generate_experiment(3000, variants=("control", "treatment", "treatment_b"))
    assert set(three.variant) == {"control", "treatment", "treatment_b"}
    aa = synthetic.generate_experiment(50_000, effects={"conversion": {"treatment": 0.1}}, seed=2)
    rate = aa.groupby("variant").converted.mean()
    assert abs(rate["treatment"] - rate["control"]) < 0.01


def test_predictions_truth(predictions_df):
    df = predictions_df
    t = PREDICTIONS_TRUTH
    assert df.score.between(0, 1).all()
    assert set(df.label.dropna().unique()) <= {0, 1}
    last = df.event_time >= df.event_time.min().normalize() + pd.Timedelta(
        days=t["days"] - t["unlabelled_last_days"]
    )
    assert df.label[last].isna().all()
    assert df.label[~last].isna().mean() == pytest.approx(t["unlabelled_share"], abs=0.01)
    # over-prediction: mean score exceeds the true positive probability
    assert df.score.mean() > df.true_probability.mean() + 0.03
    lab = df[df.label.notna()]
    assert lab.label.mean() == pytest.approx(lab.true_probability.mean(), abs=0.01)
    drift = df.event_time >= pd.Timestamp(t["start"]) + pd.Timedelta(days=t["drift_day"])
    ratio = df.prompt_length[drift].median() / df.prompt_length[~drift].median()
    assert ratio == pytest.approx(1.5, rel=0.05)


def test_one_million_events_fast():
    import time

    t0 = time.perf_counter()
    df = synthetic.generate_events(70_000, seed=1)
    elapsed = time.perf_counter() - t0
    assert len(df) > 800_000
    assert elapsed < 30  # generous for a shared CI core; typically ~1.5 s
