"""Pairwise preferences: win rates and Bradley–Terry ratings with bootstrap CIs (DESIGN section 4,
"LLM-feature evaluation"; FastChat / Chatbot Arena conventions).

Everything works on outcome counts: one row per (model_a, model_b) with the wins of a, the
wins of b and the ties — never on the judgements themselves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = [
    "BT_BASE",
    "BT_INIT",
    "BT_SCALE",
    "bradley_terry",
    "bt_bootstrap",
    "ranks_from_intervals",
    "win_rates",
]

BT_BASE, BT_SCALE, BT_INIT = 10.0, 400.0, 1000.0


def _matrix(counts: pd.DataFrame, models: Sequence[str]) -> np.ndarray:
    """w[i, j] = wins of i over j, ties counted ½ to each side."""
    idx = {m: i for i, m in enumerate(models)}
    w = np.zeros((len(models), len(models)))
    for r in counts.itertuples(index=False):
        a, b = idx[r.model_a], idx[r.model_b]
        w[a, b] += r.wins_a + 0.5 * r.ties
        w[b, a] += r.wins_b + 0.5 * r.ties
    return w


def _fit(w: np.ndarray, iters: int = 10_000, tol: float = 1e-12) -> np.ndarray:
    """Maximum-likelihood strengths of the Bradley–Terry model (Zermelo's / Hunter's MM
    iteration), ratings = 400·log10(strength) centred on a mean of 1000 — what FastChat's
    unregularised logistic regression converges to from zero coefficients.
    """
    k = len(w)
    games = w + w.T
    wins = w.sum(axis=1)
    p = np.ones(k)
    for _ in range(iters):
        denom = np.array(
            [
                sum(games[i, j] / (p[i] + p[j]) for j in range(k) if j != i and games[i, j])
                for i in range(k)
            ]
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            new = np.where(denom > 0, wins / denom, p)
        new = np.clip(new, 1e-300, None)
        new /= math.exp(np.mean(np.log(new)))  # fix the scale: geometric mean 1
        if np.max(np.abs(np.log(new) - np.log(p))) < tol:
            p = new
            break
        p = new
    r = BT_SCALE * np.log(p) / math.log(BT_BASE)
    return r - r.mean() + BT_INIT


def bradley_terry(counts: pd.DataFrame) -> pd.Series:
    """Bradley–Terry ratings (base 10, scale 400, mean 1000, ties ½, no regulariser) from
    outcome counts (columns ``model_a``, ``model_b``, ``wins_a``, ``wins_b``, ``ties``).

    A model that never loses (or never wins) has no finite maximum-likelihood rating: it gets
    ±inf, as an unregularised fit would diverge.

    Examples:
        >>> c = pd.DataFrame({"model_a": ["A"], "model_b": ["B"], "wins_a": [75],
        ...                   "wins_b": [25], "ties": [0]})
        >>> bradley_terry(c).round(2).to_dict()
        {'A': 1095.42, 'B': 904.58}
    """
    models = sorted(set(counts.model_a) | set(counts.model_b))
    w = _matrix(counts, models)
    wins, losses = w.sum(axis=1), w.sum(axis=0)
    out = pd.Series(np.nan, index=models, dtype=float)
    ok = (wins > 0) & (losses > 0)
    if ok.all():
        out[:] = _fit(w)
    else:  # the finite ones among themselves, the undefeated/winless at ±inf
        keep = np.flatnonzero(ok)
        if len(keep) > 1:
            out.iloc[keep] = _fit(w[np.ix_(keep, keep)])
        elif len(keep) == 1:
            out.iloc[keep] = BT_INIT
        out[(wins > 0) & (losses == 0)] = math.inf
        out[(wins == 0) & (losses > 0)] = -math.inf
    return out


def bt_bootstrap(
    counts: pd.DataFrame, *, rounds: int = 100, seed: int = 0, level: float = 0.95
) -> pd.DataFrame:
    """Ratings with percentile CIs from ``rounds`` multinomial bootstrap rounds of the outcome
    counts (seed 0: the same numbers every run), and the rank: 1 + the number of models whose
    lower bound exceeds this model's upper bound.

    Returns:
        ``model``, ``rating``, ``ci_lower``, ``ci_upper``, ``rank`` (best first).
    """
    models = sorted(set(counts.model_a) | set(counts.model_b))
    point = bradley_terry(counts)
    cells = counts[["wins_a", "wins_b", "ties"]].to_numpy(float).ravel()
    total = int(cells.sum())
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(rounds):
        sample = rng.multinomial(total, cells / total).reshape(-1, 3)
        boot = counts.assign(wins_a=sample[:, 0], wins_b=sample[:, 1], ties=sample[:, 2])
        draws.append(bradley_terry(boot).reindex(models).to_numpy())
    d = np.array(draws)
    q = (1 - level) / 2
    with np.errstate(invalid="ignore"):
        lo = np.quantile(d, q, axis=0)
        hi = np.quantile(d, 1 - q, axis=0)
    out = pd.DataFrame(
        {
            "model": models,
            "rating": point.reindex(models).to_numpy(),
            "ci_lower": lo,
            "ci_upper": hi,
        }
    )
    out["rank"] = ranks_from_intervals(out.ci_lower.to_numpy(), out.ci_upper.to_numpy())
    return out.sort_values(["rank", "rating"], ascending=[True, False], ignore_index=True)


def ranks_from_intervals(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Rank = 1 + the number of models whose lower bound exceeds this one's upper bound (models
    whose intervals overlap share a rank).

    Examples:
        >>> ranks_from_intervals(np.array([10., 5., 0.]), np.array([12., 11., 4.])).tolist()
        [1, 1, 3]
    """
    return np.array([1 + int(np.sum(lower > u)) for u in upper])


def win_rates(counts: pd.DataFrame) -> pd.DataFrame:
    """Pairwise win rates, ties counted as non-wins (FastChat's table): one row per ordered
    pair (``model``, ``opponent``) with ``battles``, ``wins``, ``ties``, ``win_rate``.

    Examples:
        >>> c = pd.DataFrame({"model_a": ["A"], "model_b": ["B"], "wins_a": [60],
        ...                   "wins_b": [20], "ties": [20]})
        >>> win_rates(c)[["model", "opponent", "win_rate"]].to_dict("records")[0]
        {'model': 'A', 'opponent': 'B', 'win_rate': 0.6}
    """
    rows: dict[tuple[str, str], list[float]] = {}
    for r in counts.itertuples(index=False):
        for m, o, w in ((r.model_a, r.model_b, r.wins_a), (r.model_b, r.model_a, r.wins_b)):
            acc = rows.setdefault((m, o), [0.0, 0.0, 0.0])
            acc[0] += r.wins_a + r.wins_b + r.ties
            acc[1] += w
            acc[2] += r.ties
    out = pd.DataFrame(
        [
            {"model": m, "opponent": o, "battles": b, "wins": w, "ties": t}
            for (m, o), (b, w, t) in rows.items()
        ]
    )
    out["win_rate"] = out.wins / out.battles
    return out.sort_values(["model", "opponent"], ignore_index=True)
