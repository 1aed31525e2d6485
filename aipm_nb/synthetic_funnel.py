"""Sample activation funnel with a documented ground truth (``FUNNEL_TRUTH``): sign-up → asks
the AI assistant → accepts an AI answer → purchase, an onboarding experiment, noise events.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["FUNNEL_TRUTH", "generate_funnel"]

FUNNEL_TRUTH: dict[str, Any] = {
    "start": "2024-04-01",  # sign-ups uniformly over `signup_days` from here (a Monday)
    "signup_days": 84,
    "end": "2024-06-30 23:00",  # the data ends here: the last 14 days of sign-ups are still open
    "steps": ["sign_up", "ai_question", "ai_answer_accepted", "purchase"],
    "platform_shares": {"ios": 0.35, "android": 0.40, "web": 0.25},
    # P(asks the assistant within the window | signed up), per onboarding arm
    "ask": {"control": 0.65, "treatment": 0.72},
    # P(accepts an answer | asked): the AI-answer step is worse on Android (the truth the
    # breakdown must find); equal across arms
    "accept": {"ios": 0.60, "android": 0.42, "web": 0.58},
    "purchase": 0.30,  # P(purchase | accepted), everywhere
    # lognormal time from the previous step: (median seconds, sigma)
    "delay": {
        "ai_question": (1800.0, 1.2),
        "ai_answer_accepted": (45.0, 0.8),
        "purchase": (2 * 86400.0, 1.0),
    },  # fmt: skip
    "retry_share": 0.4,  # users who asked and did not accept ask again (and may accept then)
    "noise_events_mean": 4.0,  # page_view / session_start events per user, anywhere in 3 weeks
}


def _delay(rng: np.random.Generator, step: str, n: int) -> np.ndarray:
    median, sigma = FUNNEL_TRUTH["delay"][step]
    return (median * np.exp(sigma * rng.standard_normal(n)) * 1e6).astype(np.int64)


def generate_funnel(n_users: int = 8000, *, seed: int = 23) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Funnel events and the onboarding experiment's assignments.

    Every user signs up once (``sign_up``), is assigned to ``control`` or ``treatment`` at
    sign-up, and then asks the assistant, accepts an answer and buys with the probabilities of
    ``FUNNEL_TRUTH`` (delays lognormal; purchases can come after the 14-day window). Users who
    asked without accepting ask again with probability ``retry_share``. ``page_view`` and
    ``session_start`` events are sprinkled in (they break *strict* funnels, not ordered ones).

    Returns:
        ``(events, assignments)``: events with ``user_id``, ``event_time``, ``event_name``,
        ``platform``, ``country``; assignments with ``user_id``, ``variant``, ``assigned_at``.
    """
    t = FUNNEL_TRUTH
    rng = np.random.default_rng(seed)
    start = np.datetime64(t["start"], "us")
    uid = np.arange(n_users, dtype=np.int64) + 500_001
    platform = rng.choice(
        list(t["platform_shares"]), n_users, p=list(t["platform_shares"].values())
    )
    country = rng.choice(["US", "DE", "IN", "BR", "GB"], n_users, p=[0.4, 0.15, 0.2, 0.15, 0.1])
    variant = np.where(rng.random(n_users) < 0.5, "control", "treatment")
    signup = (rng.random(n_users) * t["signup_days"] * 86400e6).astype(np.int64)

    ask = rng.random(n_users) < np.where(variant == "treatment", t["ask"]["treatment"],
                                         t["ask"]["control"])  # fmt: skip
    t_ask = signup + _delay(rng, "ai_question", n_users)
    p_acc = np.select([platform == p for p in t["accept"]], list(t["accept"].values()))
    accept = ask & (rng.random(n_users) < p_acc)
    retry = ask & ~accept & (rng.random(n_users) < t["retry_share"])
    t_retry = t_ask + _delay(rng, "ai_question", n_users) * 3
    accept_retry = retry & (rng.random(n_users) < p_acc)
    t_acc = np.where(accept, t_ask, t_retry) + _delay(rng, "ai_answer_accepted", n_users)
    buy = (accept | accept_retry) & (rng.random(n_users) < t["purchase"])
    t_buy = t_acc + _delay(rng, "purchase", n_users)

    parts = [
        (np.ones(n_users, bool), signup, "sign_up"),
        (ask, t_ask, "ai_question"),
        (retry, t_retry, "ai_question"),
        (accept | accept_retry, t_acc, "ai_answer_accepted"),
        (buy, t_buy, "purchase"),
    ]
    n_noise = rng.poisson(t["noise_events_mean"], n_users)
    who = np.repeat(np.arange(n_users), n_noise)
    t_noise = signup[who] + (rng.random(len(who)) * 21 * 86400e6).astype(np.int64)
    noise_name = rng.choice(["page_view", "session_start"], len(who))
    users = np.concatenate([np.flatnonzero(m) for m, _, _ in parts] + [who])
    times = np.concatenate([ts[m] for m, ts, _ in parts] + [t_noise])
    names = np.concatenate([np.full(int(m.sum()), name) for m, _, name in parts] + [noise_name])
    # whole seconds, as most exports have them
    times = start + (times // 1_000_000 * 1_000_000).astype("timedelta64[us]")
    events = pd.DataFrame(
        {
            "user_id": uid[users],
            "event_time": times,
            "event_name": names,
            "platform": platform[users],
            "country": country[users],
        }
    )
    events = events[events.event_time <= pd.Timestamp(t["end"])]
    events = events.sort_values(["event_time", "user_id", "event_name"], ignore_index=True)
    assignments = pd.DataFrame(
        {
            "user_id": uid,
            "variant": variant,
            "assigned_at": start + (signup // 1_000_000 * 1_000_000).astype("timedelta64[us]"),
        }
    )
    return events, assignments
