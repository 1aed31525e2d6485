"""Drift in the engine: counts per reference-decile bin and per distinct value, finished by
the formulas of `aipm_nb.stats.drift` (PSI, KS).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from aipm_nb import config
from aipm_nb.model.engine import count_if, partial_windows, window_start
from aipm_nb.stats.drift import psi_from_counts, psi_status

__all__ = ["drift_by_window", "feature_drift", "psi_from_counts", "psi_status"]


def feature_drift(
    t: ir.Table, cols: Sequence[str], is_cur: ir.BooleanValue
) -> list[dict[str, Any]]:
    """PSI and KS of every column, current vs reference, exactly and in the engine.

    Per column the rows are grouped by distinct value with cumulative reference / current
    counts, from which come the KS statistic and the reference deciles (numpy's linear
    interpolation between order statistics); then one scan of the rows counts every column's
    rows per PSI bin [lo, hi).
    """
    xs = {c: t[c].cast("float64") for c in cols}
    oks = {c: xs[c].notnull() & ~xs[c].isnan() for c in cols}
    tot = (
        t.aggregate(
            **{
                f"{side}{i}": count_if(oks[c] & (is_cur if side == "c" else ~is_cur))
                for i, c in enumerate(cols)
                for side in ("r", "c")
            }
        )
        .to_pandas()
        .iloc[0]
    )
    w = ibis.cumulative_window(order_by="value")
    found: dict[str, tuple[float, list[float]]] = {}  # column -> (KS, decile edges)
    for i, c in enumerate(cols):
        n_ref, n_cur = int(tot[f"r{i}"] or 0), int(tot[f"c{i}"] or 0)
        if n_ref == 0 or n_cur == 0:
            continue
        # one grouping by distinct value per column: KS and the reference deciles
        g = (
            t.filter(oks[c])
            .mutate(value=xs[c], __cur=is_cur)
            .group_by("value")
            .aggregate(r=count_if(~ibis._["__cur"]), c=count_if(ibis._["__cur"]))
        )
        g = g.mutate(cr=g.r.sum().over(w), cc=g.c.sum().over(w))
        aggs: dict[str, ir.Value] = {"ks": (g.cr / n_ref - g.cc / n_cur).abs().max()}
        plan = []
        for k in range(1, config.PSI_BINS):
            h = (n_ref - 1) * k / config.PSI_BINS
            lo = math.floor(h)
            hi = min(lo + 1, n_ref - 1)
            aggs[f"lo{k}"] = g.value.min(where=g.cr > lo)
            aggs[f"hi{k}"] = g.value.min(where=g.cr > hi)
            plan.append((k, h - lo))
        q = g.aggregate(**aggs).to_pandas().iloc[0]
        raw = [q[f"lo{k}"] + frac * (q[f"hi{k}"] - q[f"lo{k}"]) for k, frac in plan]
        found[c] = (float(q["ks"]), sorted({float(e) for e in raw}))
    # one scan of the rows for every column's counts below each edge
    below: Any = {}
    if found:
        below = (
            t.aggregate(
                **{
                    f"{side}_{i}_{k}": count_if(
                        oks[c] & (xs[c] < e) & (is_cur if side == "c" else ~is_cur)
                    )
                    for i, c in enumerate(cols)
                    if c in found
                    for k, e in enumerate(found[c][1])
                    for side in ("r", "c")
                }
            )
            .to_pandas()
            .iloc[0]
        )
    return [
        _drift_row(c, found.get(c), below, i, int(tot[f"r{i}"] or 0), int(tot[f"c{i}"] or 0))
        for i, c in enumerate(cols)
    ]


def _drift_row(
    column: str, found: tuple[float, list[float]] | None, below: Any, i: int, n_ref: int, n_cur: int
) -> dict[str, Any]:
    if found is None:
        return {
            "column": column,
            "psi": math.nan,
            "ks_statistic": math.nan,
            "status": "unknown",
            "edges": [],
            "ref_counts": [],
            "cur_counts": [],
        }
    ks, edges = found
    cum = {
        side: [0.0] + [float(below[f"{side}_{i}_{k}"] or 0) for k in range(len(edges))] + [total]
        for side, total in (("r", float(n_ref)), ("c", float(n_cur)))
    }
    r, cu = list(np.diff(cum["r"])), list(np.diff(cum["c"]))
    psi = psi_from_counts(r, cu)
    return {
        "column": column,
        "psi": psi,
        "ks_statistic": ks,
        "status": psi_status(psi),
        "edges": edges,
        "ref_counts": r,
        "cur_counts": cu,
    }


def drift_by_window(
    t: ir.Table,
    time_col: str,
    window: str,
    is_cur: ir.BooleanValue,
    edges: Sequence[float],
    span: tuple[pd.Timestamp, pd.Timestamp],
) -> pd.DataFrame:
    """PSI of the score of every window against the whole reference (onset of drift); windows
    only partly covered by the data are marked ``partial``.
    """
    if not edges:
        return pd.DataFrame(columns=["window", "psi", "status", "reference", "partial"])
    b = sum(((t["__s"] >= e).ifelse(1, 0) for e in edges), ibis.literal(0))
    counts = (
        t.mutate(__b=b, __w=window_start(t[time_col], window), __cur=is_cur)
        .group_by(["__w", "__b", "__cur"])
        .aggregate(n=ibis._.count())
        .to_pandas()
    )
    ref = counts[~counts.__cur].groupby("__b").n.sum().reindex(range(len(edges) + 1), fill_value=0)
    rows = []
    for w, g in counts.groupby("__w", sort=True):
        cur = g.groupby("__b").n.sum().reindex(range(len(edges) + 1), fill_value=0)
        psi = psi_from_counts(ref, cur)
        rows.append(
            {
                "window": pd.Timestamp(w),
                "psi": psi,
                "status": psi_status(psi),
                "reference": bool((~g.__cur).all()),
            }
        )
    out = pd.DataFrame(rows)
    out["partial"] = partial_windows(out.window, window, span)
    return out
