"""Synthetic sample data with a known ground truth (fixed seeds, vectorised numpy).

Three generators, documented column by column in ``data/README.md``:

* `generate_events`: product events of users who sign up over ~6 months; weekly retention
  follows `true_retention` (a known decay per platform and plan, plus a lift for users of the
  AI assistant).
* `generate_experiment`: one row per user of an A/B(/C) test with known true effects
  (`EXPERIMENT_TRUTH`) and an optional sample-ratio mismatch.
* `generate_predictions`: a binary classifier's prediction log with a known miscalibration
  (scores are shifted by `PREDICTIONS_TRUTH["logit_shift"]` on the logit scale), a segment
  where the model is worse, and a feature/score drift from a known date.

`write_sample_data` writes the small committed copies under ``data/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aipm_nb.synthetic_funnel import FUNNEL_TRUTH, generate_funnel

__all__ = [
    "EVENTS_TRUTH",
    "EXPERIMENT_TRUTH",
    "FUNNEL_TRUTH",
    "LLM_TRUTH",
    "PREDICTIONS_TRUTH",
    "generate_events",
    "generate_experiment",
    "generate_funnel",
    "generate_llm_logs",
    "generate_predictions",
    "true_retention",
    "write_sample_data",
]

_DAY = np.timedelta64(1, "D")
_US_PER_DAY = 86_400_000_000

EVENTS_TRUTH: dict[str, Any] = {
    "start": "2024-01-01",  # a Monday: ISO weeks of the data start here
    "signup_weeks": 24,  # users sign up uniformly over this many weeks
    "weeks": 26,  # the data ends this many weeks after start
    "platform_shares": {"ios": 0.35, "android": 0.40, "web": 0.25},
    "plan_shares": {"free": 0.8, "pro": 0.2},
    "country_shares": {"US": 0.4, "DE": 0.15, "IN": 0.2, "BR": 0.15, "GB": 0.1},
    # retention in calendar week k >= 1 after the signup week:
    #   floor + (initial - floor) * exp(-(k - 1) / tau) + pro_lift * pro + adopter_lift * adopter
    "initial": {"ios": 0.45, "android": 0.40, "web": 0.35},
    "floor": {"ios": 0.20, "android": 0.15, "web": 0.10},
    "tau": 3.0,
    "pro_lift": 0.05,
    "adopter_share": 0.3,
    "adopter_lift": 0.08,
    "purchase_rate": {"free": 0.04, "pro": 0.10},  # per session
    "revenue_lognormal": (3.0, 0.8),  # mu, sigma of a purchase's revenue
    # a KPI incident (the weekly-kpis report must alert on it, and on nothing else): in the
    # last complete week a payment bug on Android loses this share of its purchases
    "kpi_incident": {
        "week": "2024-06-24",
        "platform": "android",
        "event": "purchase",
        "lost_share": 0.8,
    },  # fmt: skip
}


def true_retention(k: Any, platform: Any, plan: Any, adopter: Any) -> np.ndarray:
    """Probability that a user is active in calendar period ``k`` (weeks) after signup.

    ``k = 0`` is 1 (the signup week). Arguments broadcast like numpy arrays.

    Examples:
        >>> float(true_retention(1, "ios", "free", False))
        0.45
        >>> round(float(true_retention(1, "web", "pro", True)), 2)
        0.48
    """
    t = EVENTS_TRUTH
    k = np.asarray(k, dtype=float)
    platform = np.asarray(platform)
    initial = np.select([platform == p for p in t["initial"]], list(t["initial"].values()), np.nan)
    floor = np.select([platform == p for p in t["floor"]], list(t["floor"].values()), np.nan)
    p = floor + (initial - floor) * np.exp(-(k - 1) / t["tau"])
    p = p + t["pro_lift"] * (np.asarray(plan) == "pro") + t["adopter_lift"] * np.asarray(adopter)
    return np.where(k == 0, 1.0, np.clip(p, 0.0, 1.0))


def _choice(rng: np.random.Generator, shares: dict[str, float], n: int) -> np.ndarray:
    return rng.choice(np.array(list(shares)), size=n, p=np.array(list(shares.values())))


def generate_events(n_users: int = 6000, *, seed: int = 7) -> pd.DataFrame:
    """Product events: ``session_start``, ``ai_assist_used`` and ``purchase`` rows.

    Every user signs up with a ``session_start`` (their first event) in their cohort week and
    is active in later calendar weeks with probability `true_retention`. Adopters of the AI
    assistant (``EVENTS_TRUTH["adopter_share"]``) use it in their signup session and in 60% of
    later sessions; others never do. About 15 events are made per user (1M events from ~65k
    users in a few seconds).

    Args:
        n_users: Number of users.
        seed: Random seed; the same seed gives the same rows.

    Returns:
        One row per event, sorted by time: ``user_id``, ``event_time`` (UTC, naive),
        ``event_name``, ``session_id``, ``revenue`` (purchases only, else null),
        ``platform``, ``plan``, ``country``.
    """
    t = EVENTS_TRUTH
    rng = np.random.default_rng(seed)
    start = np.datetime64(t["start"], "us")
    platform = _choice(rng, t["platform_shares"], n_users)
    plan = _choice(rng, t["plan_shares"], n_users)
    country = _choice(rng, t["country_shares"], n_users)
    adopter = rng.random(n_users) < t["adopter_share"]
    signup_us = (rng.random(n_users) * t["signup_weeks"] * 7 * _US_PER_DAY).astype(np.int64)
    cohort_week = signup_us // (7 * _US_PER_DAY)

    # Active (user, week) pairs for weeks k >= 1 while the data lasts.
    n_weeks = t["weeks"] - cohort_week - 1
    user = np.repeat(np.arange(n_users), n_weeks)
    k = np.arange(len(user)) - np.repeat(np.cumsum(n_weeks) - n_weeks, n_weeks) + 1
    active = rng.random(len(user)) < true_retention(k, platform[user], plan[user], adopter[user])
    user, k = user[active], k[active]

    # Sessions: the signup session, 0-1 more in the signup week, 1 + Poisson(1.5) per active week.
    extra0 = rng.integers(0, 2, n_users)
    n_sess = 1 + rng.poisson(1.5, len(user))
    s_user = np.concatenate(
        [np.arange(n_users), np.repeat(np.arange(n_users), extra0), np.repeat(user, n_sess)]
    )
    week_start = cohort_week * 7 * _US_PER_DAY
    week_len = 7 * _US_PER_DAY
    after_signup = np.repeat(signup_us, extra0) + (
        rng.random(extra0.sum())
        * (np.repeat(week_start + week_len - signup_us, extra0) - 60_000_000)
    ).astype(np.int64)
    later = np.repeat((cohort_week[user] + k) * week_len, n_sess) + (
        rng.random(n_sess.sum()) * (week_len - 60_000_000)
    ).astype(np.int64)
    s_time = np.concatenate([signup_us, after_signup, later])
    s_first = np.zeros(len(s_user), dtype=bool)
    s_first[:n_users] = True

    uses_ai = adopter[s_user] & (s_first | (rng.random(len(s_user)) < 0.6))
    purchase_rate = np.where(
        plan[s_user] == "pro", t["purchase_rate"]["pro"], t["purchase_rate"]["free"]
    )
    buys = rng.random(len(s_user)) < purchase_rate
    sess = np.arange(len(s_user))
    ev_sess = np.concatenate([sess, sess[uses_ai], sess[buys]])
    ev_name = np.concatenate(
        [
            np.full(len(sess), "session_start"),
            np.full(int(uses_ai.sum()), "ai_assist_used"),
            np.full(int(buys.sum()), "purchase"),
        ]
    )
    offset = np.concatenate(
        [
            np.zeros(len(sess), dtype=np.int64),
            rng.integers(1_000_000, 30_000_000, int(uses_ai.sum())),
            rng.integers(30_000_000, 59_000_000, int(buys.sum())),
        ]
    )
    mu, sigma = t["revenue_lognormal"]
    revenue = np.full(len(ev_sess), np.nan)
    revenue[ev_name == "purchase"] = np.round(rng.lognormal(mu, sigma, int(buys.sum())), 2)
    ev_user = s_user[ev_sess]
    df = pd.DataFrame(
        {
            "user_id": ev_user.astype(np.int64) + 1,
            "event_time": start + (s_time[ev_sess] + offset).astype("timedelta64[us]"),
            "event_name": ev_name,
            "session_id": ev_sess.astype(np.int64) + 1,
            "revenue": revenue,
            "platform": platform[ev_user],
            "plan": plan[ev_user],
            "country": country[ev_user],
        }
    )
    df = _kpi_incident(df, t["kpi_incident"], seed)
    df = df.sort_values(["event_time", "user_id"], kind="stable", ignore_index=True)
    return df


def _kpi_incident(df: pd.DataFrame, incident: dict[str, Any], seed: int) -> pd.DataFrame:
    """Drop ``lost_share`` of one event on one platform in one week (its own random stream, so
    every other row is the same with or without the incident).
    """
    start = pd.Timestamp(incident["week"])
    hit = (
        (df.event_name == incident["event"])
        & (df.platform == incident["platform"])
        & (df.event_time >= start)
        & (df.event_time < start + pd.Timedelta(days=7))
    ).to_numpy()
    lost = hit & (np.random.default_rng(seed + 1_000).random(len(df)) < incident["lost_share"])
    return df[~lost]


EXPERIMENT_TRUTH: dict[str, Any] = {
    "start": "2024-07-01",
    "days": 14,
    "conversion": {"control": 0.100, "treatment": 0.110, "treatment_b": 0.100},
    # revenue = value * gamma noise * (1 + lift); pre_revenue = value * gamma noise
    "revenue_lift": {"control": 0.0, "treatment": 0.04, "treatment_b": 0.0},
    "value_lognormal": (2.5, 1.0),
    "gamma_shape": 2.0,
    "sessions_mean": {"control": 5.0, "treatment": 5.1, "treatment_b": 5.0},
    "ctr": {"control": 0.050, "treatment": 0.055, "treatment_b": 0.050},
    "views_per_session": 3.0,
    "latency_median_ms": {"control": 300.0, "treatment": 300.0, "treatment_b": 330.0},
    "latency_sigma": 0.35,
    # AI answer latency per user (ms): lognormal around the median; in treatment a slow path
    # hits `slow_share` of users (x `slow_factor`) while the rest get `fast_factor`: the mean
    # stays (0.04·2.5 + 0.96·0.9375 = 1), the p95 rises ~5% (a tail regression a mean hides)
    "response_median_ms": 800.0,
    "response_sigma": 0.5,
    "response_tail": {"treatment": {"slow_share": 0.04, "slow_factor": 2.5, "fast_factor": 0.9375}},
}


def generate_experiment(
    n_users: int = 40_000,
    *,
    variants: tuple[str, ...] = ("control", "treatment"),
    srm: float = 0.0,
    effects: dict[str, dict[str, float]] | None = None,
    seed: int = 11,
) -> pd.DataFrame:
    """One row per user of an experiment with known true effects.

    Args:
        n_users: Number of users assigned (before any sample-ratio mismatch).
        variants: Arm names; the first is the control. Known arms take their truth from
            `EXPERIMENT_TRUTH`; others behave like the control.
        srm: Share of the non-control arms' users silently lost (0.03 drops 3%), which
            makes a sample-ratio mismatch.
        effects: Overrides of `EXPERIMENT_TRUTH` entries, e.g.
            ``{"conversion": {"treatment": 0.10}}`` for an A/A test.
        seed: Random seed.

    Returns:
        ``user_id``, ``variant``, ``first_exposure`` (timestamp), ``converted`` (0/1),
        ``revenue``, ``pre_revenue`` (the covariate for CUPED), ``sessions``, ``clicks``,
        ``views``, ``latency_ms`` (a guardrail, lower is better), ``platform``, ``country``,
        ``response_ms`` (AI answer latency; its p95 is the tail guardrail).
    """
    truth: dict[str, Any] = {
        k: (dict(v) if isinstance(v, dict) else v) for k, v in EXPERIMENT_TRUTH.items()
    }
    for key, upd in (effects or {}).items():
        truth[key].update(upd)
    rng = np.random.default_rng(seed)
    control = variants[0]
    arm = rng.integers(0, len(variants), n_users)
    variant = np.asarray(variants, dtype=object)[arm]

    def per_arm(key: str) -> np.ndarray:
        table = truth[key]
        return np.array(
            [
                table.get(v, table[control] if control in table else table["control"])
                for v in variants
            ]
        )[arm]

    mu, sigma = truth["value_lognormal"]
    value = rng.lognormal(mu, sigma, n_users)
    shape = truth["gamma_shape"]
    pre_revenue = value * rng.gamma(shape, 1 / shape, n_users)
    revenue = value * rng.gamma(shape, 1 / shape, n_users) * (1 + per_arm("revenue_lift"))
    converted = (rng.random(n_users) < per_arm("conversion")).astype(np.int64)
    sessions = rng.poisson(per_arm("sessions_mean"))
    views = rng.poisson(sessions * truth["views_per_session"])
    clicks = rng.binomial(views, per_arm("ctr"))
    latency = per_arm("latency_median_ms") * rng.lognormal(0.0, truth["latency_sigma"], n_users)
    start = np.datetime64(truth["start"], "us")
    exposure = start + (rng.random(n_users) * truth["days"] * _US_PER_DAY).astype("timedelta64[us]")
    df = pd.DataFrame(
        {
            "user_id": np.arange(1, n_users + 1, dtype=np.int64),
            "variant": variant.astype(str),
            "first_exposure": exposure,
            "converted": converted,
            "revenue": np.round(revenue, 2),
            "pre_revenue": np.round(pre_revenue, 2),
            "sessions": np.asarray(sessions, dtype=np.int64),
            "clicks": clicks.astype(np.int64),
            "views": views.astype(np.int64),
            "latency_ms": np.round(latency, 1),
            "platform": _choice(rng, EVENTS_TRUTH["platform_shares"], n_users),
            "country": _choice(rng, EVENTS_TRUTH["country_shares"], n_users),
        }
    )
    # its own random stream: every other column is the same with or without it
    rr = np.random.default_rng(seed + 101)
    response = truth["response_median_ms"] * rr.lognormal(0.0, truth["response_sigma"], n_users)
    slow = rr.random(n_users)
    for v, tail in truth["response_tail"].items():
        in_arm = variant == v
        hit = in_arm & (slow < tail["slow_share"])
        response = np.where(hit, response * tail["slow_factor"], response)
        response = np.where(in_arm & ~hit, response * tail["fast_factor"], response)
    df["response_ms"] = np.round(response, 1)
    if srm > 0:
        drop = (arm > 0) & (rng.random(n_users) < srm)
        df = df[~drop].reset_index(drop=True)
    return df


PREDICTIONS_TRUTH: dict[str, Any] = {
    "start": "2024-03-01",
    "days": 90,
    "drift_day": 60,  # from start + drift_day on, prompt_length grows and scores drift up
    "logit_shift": 0.4,  # scores = sigmoid(true logit + shift): the model over-predicts
    "android_noise": 1.0,  # extra logit noise on android: the worst segment
    "unlabelled_last_days": 7,  # labels of the last days are not in yet (null)
    "unlabelled_share": 0.03,  # and a few random rows lack a label
    "v2_day": 45,  # model_version v2 serves from here on (same model quality)
    # from this day on (the running, unlabelled week from 2024-05-27) the traffic moves toward
    # the uncertain region: the true logit (and with it the score) is scaled by `logit_scale`,
    # so performance drops where no label can show it yet (the estimates must)
    "uncertain_from_day": 87,
    "uncertain_logit_scale": 0.4,
}


def generate_predictions(
    n_rows: int = 60_000, *, seed: int = 23, return_truth: bool = False
) -> pd.DataFrame:
    """A binary classifier's prediction log with known calibration error, segment and drift.

    The true probability of a positive label is ``sigmoid(z)`` with ``z`` linear in five
    features; the logged ``score`` is ``sigmoid(z + logit_shift + noise)`` where the noise is
    zero except on android. From ``drift_day`` on, ``prompt_length`` is 1.5x longer, which
    raises true probabilities and scores (a real, label-relevant drift).

    Args:
        n_rows: Number of predictions.
        seed: Random seed.
        return_truth: Add a ``true_probability`` column (for tests only; never in data/).

    Returns:
        ``prediction_id``, ``event_time``, ``score``, ``label`` (Int64, null when not yet
        labelled), ``platform``, ``country``, ``model_version``, ``prompt_length``,
        ``account_age_days``, ``sessions_7d``, ``latency_ms``, ``feature_usage``.
    """
    t = PREDICTIONS_TRUTH
    rng = np.random.default_rng(seed)
    day_f = np.sort(rng.random(n_rows)) * t["days"]
    drifted = day_f >= t["drift_day"]
    platform = _choice(rng, EVENTS_TRUTH["platform_shares"], n_rows)
    prompt_length = rng.lognormal(np.log(120), 0.5, n_rows) * np.where(drifted, 1.5, 1.0)
    account_age = rng.exponential(200, n_rows)
    sessions_7d = rng.poisson(4, n_rows)
    latency = rng.lognormal(np.log(800), 0.3, n_rows)
    feature_usage = rng.beta(2, 5, n_rows)
    z = (
        -2.2
        + 0.9 * (np.log(prompt_length) - np.log(120)) / 0.5 * 0.8
        - 0.002 * (account_age - 200)
        + 0.15 * (sessions_7d - 4)
        + 2.5 * (feature_usage - 2 / 7)
        - 0.3 * (np.log(latency) - np.log(800)) / 0.3
    )
    z = np.where(day_f >= t["uncertain_from_day"], z * t["uncertain_logit_scale"], z)
    p_true = 1 / (1 + np.exp(-z))
    label = (rng.random(n_rows) < p_true).astype(float)
    noise = np.where(platform == "android", rng.normal(0, t["android_noise"], n_rows), 0.0)
    score = 1 / (1 + np.exp(-(z + t["logit_shift"] + noise)))
    unlabelled = (day_f >= t["days"] - t["unlabelled_last_days"]) | (
        rng.random(n_rows) < t["unlabelled_share"]
    )
    label[unlabelled] = np.nan
    start = np.datetime64(t["start"], "us")
    df = pd.DataFrame(
        {
            "prediction_id": np.arange(1, n_rows + 1, dtype=np.int64),
            "event_time": start + (day_f * _US_PER_DAY).astype("timedelta64[us]"),
            "score": np.round(score, 6),
            "label": pd.array(label, dtype="Int64"),
            "platform": platform,
            "country": _choice(rng, EVENTS_TRUTH["country_shares"], n_rows),
            "model_version": np.where(day_f >= t["v2_day"], "v2", "v1"),
            "prompt_length": np.round(prompt_length, 1),
            "account_age_days": np.round(account_age, 1),
            "sessions_7d": sessions_7d.astype(np.int64),
            "latency_ms": np.round(latency, 1),
            "feature_usage": np.round(feature_usage, 4),
        }
    )
    if return_truth:
        df["true_probability"] = p_true
    return df


LLM_TRUTH: dict[str, Any] = {
    "start": "2024-09-02",
    "days": 28,
    "users": 3000,  # each user is assigned one model version (an A/B split)
    "model_shares": {"assistant-v1": 0.4, "assistant-v2": 0.3, "assistant-v3": 0.3},
    "prompt_shares": {"p1": 0.5, "p2": 0.5},
    # P(thumbs up | rated) per model; prompt p2 adds `prompt_lift`
    "thumbs_up": {"assistant-v1": 0.62, "assistant-v2": 0.70, "assistant-v3": 0.65},
    "prompt_lift": 0.03,
    "rated_share": 0.35,
    "refusal": {"assistant-v1": 0.020, "assistant-v2": 0.015, "assistant-v3": 0.040},
    "error": {"assistant-v1": 0.010, "assistant-v2": 0.010, "assistant-v3": 0.015},
    "latency_median_ms": {"assistant-v1": 900.0, "assistant-v2": 950.0, "assistant-v3": 850.0},
    "latency_sigma": 0.45,
    # the latency tail: a share of assistant-v2's responses take `tail_factor` times longer
    "latency_tail": {"assistant-v2": {"share": 0.08, "factor": 3.0}},
    "cost_median_usd": {"assistant-v1": 0.0040, "assistant-v2": 0.0065, "assistant-v3": 0.0030},
    "cost_sigma": 0.3,
    # pairwise judgements: Bradley–Terry ratings (ties ½: P(a's share) = σ_10((Ra − Rb)/400))
    "bt_ratings": {"assistant-v1": 950.0, "assistant-v2": 1060.0, "assistant-v3": 990.0},
    "tie_share": 0.15,
    "judgements": 3000,
    "llm_judge_share": 0.7,
}


def generate_llm_logs(*, seed: int = 17) -> tuple[pd.DataFrame, pd.DataFrame]:
    """An AI assistant's response log and a pairwise preference log with known truth
    (`LLM_TRUTH`): three model versions, two prompt versions.

    Returns:
        ``responses``: ``response_id``, ``event_time``, ``model``, ``prompt_version``,
        ``user_id``, ``rating`` (1 up, 0 down, null unrated), ``latency_ms``, ``cost_usd``,
        ``refused``, ``error``, ``platform``; ``preferences``: ``model_a``, ``model_b``,
        ``winner`` (``a``, ``b``, ``tie``), ``judge`` (``human`` or ``llm``).
    """
    t = LLM_TRUTH
    rng = np.random.default_rng(seed)
    models = list(t["model_shares"])
    n_users = t["users"]
    user_model = rng.choice(models, n_users, p=list(t["model_shares"].values()))
    user_platform = _choice(rng, EVENTS_TRUTH["platform_shares"], n_users)
    per_user = rng.poisson(10, n_users) + 1
    user = np.repeat(np.arange(n_users), per_user)
    n = len(user)
    model = user_model[user]
    prompt = rng.choice(list(t["prompt_shares"]), n, p=list(t["prompt_shares"].values()))

    def per(key: str) -> np.ndarray:
        return np.array([t[key][m] for m in model])

    up_p = per("thumbs_up") + np.where(prompt == "p2", t["prompt_lift"], 0.0)
    rated = rng.random(n) < t["rated_share"]
    rating = np.where(rated, (rng.random(n) < up_p).astype(float), np.nan)
    latency = per("latency_median_ms") * rng.lognormal(0.0, t["latency_sigma"], n)
    for m, tail in t["latency_tail"].items():
        slow = (model == m) & (rng.random(n) < tail["share"])
        latency = np.where(slow, latency * tail["factor"], latency)
    cost = per("cost_median_usd") * rng.lognormal(0.0, t["cost_sigma"], n)
    refused = rng.random(n) < per("refusal")
    error = rng.random(n) < per("error")
    rating = np.where(error, np.nan, rating)  # a failed response is not rated
    start = np.datetime64(t["start"], "us")
    when = start + (rng.random(n) * t["days"] * _US_PER_DAY).astype("timedelta64[us]")
    responses = pd.DataFrame(
        {
            "response_id": np.arange(1, n + 1, dtype=np.int64),
            "event_time": when,
            "model": model.astype(str),
            "prompt_version": prompt.astype(str),
            "user_id": (user + 1).astype(np.int64),
            "rating": rating,
            "latency_ms": np.round(latency, 1),
            "cost_usd": np.round(cost, 6),
            "refused": refused,
            "error": error,
            "platform": user_platform[user],
        }
    ).sort_values("event_time", ignore_index=True)
    k = t["judgements"]
    pairs = [(a, b) for i, a in enumerate(models) for b in models[i + 1 :]]
    which = rng.integers(0, len(pairs), k)
    a = np.array([pairs[i][0] for i in which])
    b = np.array([pairs[i][1] for i in which])
    flip = rng.random(k) < 0.5  # either model may be shown first
    a, b = np.where(flip, b, a), np.where(flip, a, b)
    r = t["bt_ratings"]
    share_a = 1 / (1 + 10 ** ((np.array([r[x] for x in b]) - np.array([r[x] for x in a])) / 400))
    tau = t["tie_share"]
    # ties at rate tau; wins so that a's expected share (ties ½) is the BT probability
    win_a = (share_a - tau / 2) / (1 - tau)
    u = rng.random(k)
    winner = np.where(u < tau, "tie", np.where(rng.random(k) < win_a, "a", "b"))
    preferences = pd.DataFrame(
        {
            "model_a": a.astype(str),
            "model_b": b.astype(str),
            "winner": winner.astype(str),
            "judge": np.where(rng.random(k) < t["llm_judge_share"], "llm", "human"),
        }
    )
    return responses, preferences


def write_sample_data(data_dir: str | Path) -> dict[str, Path]:
    """Write the committed sample files (events, experiment, predictions, LLM logs, funnel) as
    Parquet.

    Each file is written to a temporary name and renamed, so a reader never sees half a file.
    """
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    frames = {
        "events": generate_events(),
        "experiment": generate_experiment(),
        "predictions": generate_predictions(),
    }
    frames["llm_responses"], frames["llm_preferences"] = generate_llm_logs()
    frames["funnel_events"], frames["funnel_assignments"] = generate_funnel()
    paths = {}
    for name, df in frames.items():
        path = data_dir / f"{name}.parquet"
        tmp = path.with_suffix(".parquet.tmp")
        df.to_parquet(tmp, index=False, compression="zstd")
        tmp.replace(path)
        paths[name] = path
    return paths
