"""A plain-Python funnel, written from DESIGN section 4 without window functions: every attempt
is walked event by event. The engine's results must equal it on random logs.

Tie rule (the same as the engine's, stated in the README): events of a user at the same
timestamp form one moment. Ordered: the next step is the first later moment with one of its
events. Strict: the next step must be in the user's very next moment (any event counts).
Unordered: the attempt's own moment counts for every step it contains.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

import pandas as pd


def _moments(rows: list[tuple[pd.Timestamp, str]]) -> list[tuple[pd.Timestamp, set[str]]]:
    by_ts: dict[pd.Timestamp, set[str]] = defaultdict(set)
    for ts, name in rows:
        by_ts[ts].add(name)
    return sorted(by_ts.items())


def _attempt(moments, i, steps, order, window):
    """Step times of the attempt starting at moment i (greedy, earliest)."""
    t0 = moments[i][0]
    if order == "unordered":
        firsts = []
        for j, s in enumerate(steps):
            for ts, names in moments[i:]:
                if ts - t0 > window:
                    break
                if names & s:
                    firsts.append((ts, j))
                    break
        return [ts for ts, _ in sorted(firsts)]
    times, cur = [t0], i
    for s in steps[1:]:
        nxt = None
        if order == "ordered":
            nxt = next((j for j in range(cur + 1, len(moments)) if moments[j][1] & s), None)
        elif cur + 1 < len(moments) and moments[cur + 1][1] & s:
            nxt = cur + 1
        if nxt is None or moments[nxt][0] - t0 > window:
            break
        times.append(moments[nxt][0])
        cur = nxt
    return times


def reference_funnel(
    df: pd.DataFrame, steps: list[Any], order: str, window: pd.Timedelta, as_of: pd.Timestamp
) -> dict[str, Any]:
    """``counts`` (users reaching each step), ``too_recent``, ``durations`` (per step, seconds)."""
    steps = [{s} if isinstance(s, str) else set(s) for s in steps]
    all_names = set().union(*steps)
    n = len(steps)
    counts, too_recent = [0] * n, 0
    durations: list[list[float]] = [[] for _ in range(n)]
    df = df[df.event_time < as_of]  # an explicit as_of bounds the data
    for _, g in df.groupby("user_id"):
        rows = [(pd.Timestamp(t), e) for t, e in zip(g.event_time, g.event_name, strict=True)]
        if order != "strict":
            rows = [r for r in rows if r[1] in all_names]
        moments = _moments(rows)
        starts = [
            i for i, (_, names) in enumerate(moments)
            if names & (steps[0] if order != "unordered" else all_names)
        ]  # fmt: skip
        if not starts:
            continue
        done = [i for i in starts if moments[i][0] + window <= as_of]
        if not done:
            too_recent += 1
            continue
        attempts = [_attempt(moments, i, steps, order, window) for i in done]
        best = max(len(a) for a in attempts)
        chosen = next(a for a in attempts if len(a) == best)
        for k in range(best):
            counts[k] += 1
        for k in range(1, best):
            durations[k].append((chosen[k] - chosen[k - 1]).total_seconds())
    return {"counts": counts, "too_recent": too_recent, "durations": durations}


def summary_times(durations: list[list[float]]) -> tuple[list[float], list[float]]:
    """Mean and median per step (NaN where nobody converted)."""
    mean = [statistics.fmean(d) if d else float("nan") for d in durations[1:]]
    median = [statistics.median(d) if d else float("nan") for d in durations[1:]]
    return mean, median
