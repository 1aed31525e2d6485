"""LLM-evaluation aggregates in the engine: one row per version (and prompt version, segment),
the latency order statistics the CIs need, and the pairwise outcome counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from aipm_nb.errors import DataError
from aipm_nb.stats.quantiles import order_statistic_ranks

__all__ = ["flag", "latency_order_statistics", "outcome_counts", "version_aggregates"]

LATENCY_LEVELS = (0.5, 0.95)


def flag(t: ir.Table, col: str) -> ir.BooleanValue:
    """A boolean or 0/1 column as a condition (true where 1/true; null is false)."""
    c = t[col]
    if c.type().is_boolean():
        return c.fill_null(False)
    return c.cast("float64").fill_null(0.0) == 1.0


def version_aggregates(
    t: ir.Table, by: Sequence[str], cols: Mapping[str, str | None]
) -> pd.DataFrame:
    """Per group: responses, rated, thumbs up, refused, errors, cost Σ/Σ²/n, latency n and the
    p50 / p95 (exact, continuous quantiles). ``cols`` maps ``rating``, ``latency``, ``cost``,
    ``refused``, ``error`` to column names (None: not measured).
    """
    aggs: dict[str, Any] = {"responses": t.count()}
    if cols.get("rating"):
        r = t[str(cols["rating"])].cast("float64")
        aggs |= {"rated": r.count(), "up": r.count(where=r == 1.0)}
    for key in ("refused", "error"):
        if cols.get(key):
            aggs[key] = t.count(where=flag(t, str(cols[key])))
    if cols.get("cost"):
        c = t[str(cols["cost"])].cast("float64")
        aggs |= {"cost_n": c.count(), "cost_sum": c.sum(), "cost_sq": (c * c).sum()}
    if cols.get("latency"):
        x = t[str(cols["latency"])].cast("float64")
        aggs["latency_n"] = x.count()
        for q in LATENCY_LEVELS:
            aggs[f"latency_p{round(q * 100)}"] = x.quantile(q)
    return t.group_by(list(by)).aggregate(**aggs).order_by(list(by)).to_pandas()


def latency_order_statistics(
    t: ir.Table, version_col: str, latency_col: str, counts: Mapping[Any, int], confidence: float
) -> pd.DataFrame:
    """The latency values at the order-statistic ranks that bound each version's p50 / p95
    (`aipm_nb.stats.quantiles.order_statistic_ranks`): a few rows per version come back.

    Returns:
        ``version``, ``level``, ``ci_lower``, ``ci_upper`` (NaN where too few values).
    """
    want: dict[Any, dict[float, tuple[float, float]]] = {
        v: {q: order_statistic_ranks(int(n), q, confidence) for q in LATENCY_LEVELS}
        for v, n in counts.items()
    }
    x = t[latency_col].cast("float64")
    lat = t.filter(x.notnull()).mutate(__x=x)
    w = ibis.window(group_by=version_col, order_by="__x")
    lat = lat.mutate(__rank=ibis.row_number().over(w) + 1)
    conds = []
    for v, levels in want.items():
        ranks = sorted({int(r) for pair in levels.values() for r in pair if r == r})
        if ranks:
            conds.append((lat[version_col] == v) & lat["__rank"].isin(ranks))
    values: dict[tuple[Any, int], float] = {}
    if conds:
        cond = conds[0]
        for c in conds[1:]:
            cond = cond | c
        got = lat.filter(cond).select(v=lat[version_col], r="__rank", x="__x").to_pandas()
        values = {(r.v, int(r.r)): float(r.x) for r in got.itertuples(index=False)}
    rows = []
    for v, levels in want.items():
        for q, (lo, hi) in levels.items():
            rows.append(
                {
                    "version": v,
                    "level": q,
                    "ci_lower": values.get((v, int(lo)), float("nan"))
                    if lo == lo
                    else float("nan"),
                    "ci_upper": values.get((v, int(hi)), float("nan"))
                    if hi == hi
                    else float("nan"),
                }
            )
    return pd.DataFrame(rows)


def outcome_counts(
    t: ir.Table, a_col: str, b_col: str, winner_col: str, label: str
) -> pd.DataFrame:
    """Wins of a, wins of b and ties per (model_a, model_b) pair, in the engine; winners other
    than ``a``, ``b``, ``tie`` are a `DataError`.
    """
    w = t[winner_col].cast("string").lower().strip()
    bad = t.filter(w.isnull() | ~w.isin(["a", "b", "tie"]))
    n_bad = int(bad.count().to_pandas())
    if n_bad:
        ex = bad.select(x=t[winner_col].cast("string")).limit(3).to_pandas().x.tolist()
        raise DataError(
            f"{label}: column {winner_col!r} has {n_bad} values other than 'a', 'b' or 'tie' "
            f"(e.g. {', '.join(map(repr, ex))})",
            table=label,
            column=winner_col,
            count=n_bad,
            examples=ex,
        )
    g = (
        t.mutate(__w=w, __a=t[a_col].cast("string"), __b=t[b_col].cast("string"))
        .group_by(["__a", "__b"])
        .aggregate(
            wins_a=ibis._.count(where=ibis._["__w"] == "a"),
            wins_b=ibis._.count(where=ibis._["__w"] == "b"),
            ties=ibis._.count(where=ibis._["__w"] == "tie"),
        )
        .order_by(["__a", "__b"])
        .to_pandas()
    )
    return g.rename(columns={"__a": "model_a", "__b": "model_b"})
