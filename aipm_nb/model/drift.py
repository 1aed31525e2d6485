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


#: Each column's range is cut into 2**50 equal-width "fine bins" (one integer per row, exact in a
#: double); `feature_drift` looks at them 1024 at a time: a cell of width 2**50 splits into 1024
#: cells of width 2**40, and so on down to single fine bins.
FINE_BITS = 50
SPLIT_BITS = 10
#: A cell of at most this many rows is finished exactly, by grouping its distinct values.
LEAF_ROWS = 20_000
#: KS inside the cells: refined while at most `KS_SPLIT` cells could hold a larger gap than the
#: cells' tops show, finished by distinct value when at most `KS_CELLS`, else computed by ranks
#: over the whole column (a column without drift: the gap is the size of sampling noise).
KS_SPLIT = 64
KS_CELLS = 64
#: A column with at most this share of distinct values per row (rounded scores, integer
#: features) is grouped by distinct value in one query instead: cheaper when values repeat.
GROUPED_SHARE = 0.25


def _cells(start: Any, width: Any, r: Any, c: Any, lo: Any, hi: Any) -> pd.DataFrame:
    """Cells of one column, in value order: the rows whose fine bin is in [start, start +
    width), ``r`` / ``c`` of them in the reference / current rows, ``r0`` / ``c0`` in the cells
    below, values from ``lo`` to ``hi``.
    """
    df = pd.DataFrame(
        {"start": start, "width": width, "r": r, "c": c, "lo": lo, "hi": hi}
    ).sort_values("start", ignore_index=True)
    for n in ("r", "c"):
        df[n] = df[n].astype("int64")
        df[f"{n}0"] = df[n].cumsum() - df[n]
    return df


def _fine_table(
    t: ir.Table, x: ir.FloatingValue, is_cur: ir.BooleanValue, lo: float, hi: float
) -> ir.Table:
    """The column's rows as ``__x``, ``__cur`` and ``__f``, the fine bin (monotone in the
    value, so every cell is a value range).
    """
    t = t.filter(x.notnull() & ~x.isnan())
    top = 2**FINE_BITS
    span = hi - lo if hi > lo else 1.0
    f = ibis.least(((x - lo) / span * top).floor().cast("int64"), top - 1)
    return t.select(__x=x, __cur=is_cur, __f=f)


def feature_drift(
    t: ir.Table, cols: Sequence[str], is_cur: ir.BooleanValue, *, ks: bool = True
) -> list[dict[str, Any]]:
    """PSI and KS of every column, current vs reference, exactly and in the engine.

    Per column, equal-width histograms (refined where needed) locate the reference deciles
    (numpy's linear interpolation between order statistics) and bound the KS statistic; only
    the bins that hold a decile's order statistic, or could hold the KS maximum, are then
    grouped by distinct value; a column whose KS maximum could lie in many bins (no drift: the
    gap is sampling noise) gets it from two rank windows instead. No query returns a row per
    distinct value (issue 14). The column's rows, with their fine bin, are cached in the engine
    while it is worked on; a last query on them counts the rows per PSI bin [lo, hi).
    ``ks=False`` skips the KS statistic (NaN): the reference deciles of every column then come
    from the engine's exact quantile function (DuckDB ``quantile_cont``, PostgreSQL
    ``percentile_cont``, Spark ``percentile``: numpy's linear interpolation) in one query, and
    one GROUP BY per column counts the PSI bins.
    """
    xs = {c: t[c].cast("float64") for c in cols}
    oks = {c: _usable(t[c]) for c in cols}
    if not ks:
        return _psi_only(t, cols, xs, oks, is_cur)
    tot = (
        t.aggregate(
            **{
                f"{side}{i}": count_if(oks[c] & (is_cur if side == "c" else ~is_cur))
                for i, c in enumerate(cols)
                for side in ("r", "c")
            },
            **{f"lo{i}": xs[c].min(where=oks[c]) for i, c in enumerate(cols)},
            **{f"hi{i}": xs[c].max(where=oks[c]) for i, c in enumerate(cols)},
            # a speed hint only (either path is exact): how many distinct values
            **{f"nd{i}": xs[c].approx_nunique(where=oks[c]) for i, c in enumerate(cols)},
        )
        .to_pandas()
        .iloc[0]
    )
    out = []
    for i, c in enumerate(cols):
        n_ref, n_cur = int(tot[f"r{i}"] or 0), int(tot[f"c{i}"] or 0)
        if n_ref == 0 or n_cur == 0:
            out.append(_drift_row(c, None, [], []))
            continue
        lo, hi = float(tot[f"lo{i}"]), float(tot[f"hi{i}"])
        root = _cells([0], [2**FINE_BITS], [n_ref], [n_cur], [lo], [hi])
        # cached: the engine computes the fine bins once (and reads the source once), and
        # later queries compare stored integers instead of re-deriving them per comparison
        with _fine_table(t, xs[c], is_cur, lo, hi).cache() as rows:
            if float(tot[f"nd{i}"] or 0) <= GROUPED_SHARE * (n_ref + n_cur):
                stat, edges = _grouped_ks_and_deciles(rows, n_ref, n_cur, ks=ks)
            else:
                stat, edges = _ks_and_deciles(rows, root, ks=ks)
            r, cu = _bin_counts(rows, rows["__x"], rows["__cur"], edges)
        out.append(_drift_row(c, (stat, edges), r, cu))
    return out


def _psi_only(
    t: ir.Table,
    cols: Sequence[str],
    xs: dict[str, ir.FloatingColumn],
    oks: dict[str, ir.BooleanColumn],
    is_cur: ir.BooleanValue,
) -> list[dict[str, Any]]:
    """PSI of every column without KS: all reference deciles in one query over the reference
    rows (a WHERE: ~25% faster than a FILTER per quantile on 10M rows), then the bins.
    """
    levels = [k / config.PSI_BINS for k in range(1, config.PSI_BINS)]
    ref = t.filter(~is_cur)
    deciles = ref.aggregate(
        **{
            f"q{i}": ref[c].cast("float64").quantile(levels, where=_usable(ref[c]))
            for i, c in enumerate(cols)
        }  # fmt: skip
    ).to_pandas()
    out = []
    for i, c in enumerate(cols):
        q = deciles[f"q{i}"].iloc[0]
        if q is None:  # no reference value: no PSI
            out.append(_drift_row(c, None, [], []))
            continue
        edges = sorted({float(e) for e in q})
        r, cu = _bin_counts(t.filter(oks[c]), xs[c], is_cur, edges)
        if sum(cu) == 0:  # no current value: no PSI
            out.append(_drift_row(c, None, [], []))
            continue
        out.append(_drift_row(c, (math.nan, edges), r, cu))
    return out


def _usable(x: ir.Column) -> ir.BooleanValue:
    """Not null and not NaN."""
    x = x.cast("float64")
    return x.notnull() & ~x.isnan()


def _bin_counts(
    t: ir.Table, x: ir.NumericValue, is_cur: ir.BooleanValue, edges: Sequence[float]
) -> tuple[list[float], list[float]]:
    """Reference and current rows per PSI bin [lo, hi), from one GROUP BY in the engine."""
    per_bin = (
        t.group_by(__b=psi_bin(x, edges), __c=is_cur)
        .aggregate(n=ibis._.count())
        .to_pandas()
        .pivot_table(index="__b", columns="__c", values="n", aggfunc="sum")
        .reindex(index=range(len(edges) + 1), columns=[False, True])
        .fillna(0)
    )
    return per_bin[False].astype(float).tolist(), per_bin[True].astype(float).tolist()


def psi_bin(x: ir.NumericValue, edges: Sequence[float]) -> ir.IntegerValue:
    """The PSI bin [lo, hi) of each value: how many edges are at or below it."""
    return sum(((x >= e).ifelse(1, 0) for e in edges), ibis.literal(0))


def _edges(plan: list[tuple[int, int, float]], stats: dict[int, float]) -> list[float]:
    """The distinct decile edges from the order statistics `_decile_ranks` asked for."""
    raw = [stats[lo] + frac * (stats[hi] - stats[lo]) for lo, hi, frac in plan]
    return sorted({float(e) for e in raw})


def _decile_ranks(n_ref: int) -> list[tuple[int, int, float]]:
    """Per decile the 0-based order statistics numpy's linear interpolation reads, and the
    fraction between them.
    """
    out = []
    for k in range(1, config.PSI_BINS):
        h = (n_ref - 1) * k / config.PSI_BINS
        lo = math.floor(h)
        out.append((lo, min(lo + 1, n_ref - 1), h - lo))
    return out


def _ks_and_deciles(
    rows: ir.Table, cells: pd.DataFrame, *, ks: bool = True
) -> tuple[float, list[float]]:
    n_ref, n_cur = int(cells.r.sum()), int(cells.c.sum())
    plan = _decile_ranks(n_ref)
    ranks = sorted({j for lo, hi, _ in plan for j in (lo, hi)})
    for _ in range(FINE_BITS // SPLIT_BITS):  # refine the cells holding a decile or the KS
        want = _holding(cells, ranks)
        if ks and (maybe := _ks_cells(cells, n_ref, n_cur)).sum() <= KS_SPLIT:
            want |= maybe
        split = want & (cells.r + cells.c > LEAF_ROWS) & (cells.width > 1) & (cells.lo < cells.hi)
        if not split.any():
            break
        cells = pd.concat([cells[~split], _split(rows, cells[split])])
        cells = _cells(cells.start, cells.width, cells.r, cells.c, cells.lo, cells.hi)
    # KS: attained at the top of some cell (both CDFs are exact there) or inside a cell whose
    # bounds allow more; those cells are finished exactly when few, else one rank query
    maybe = _ks_cells(cells, n_ref, n_cur) if ks else pd.Series(False, index=cells.index)
    by_rank = bool(maybe.sum() > KS_CELLS)
    finish = cells[_holding(cells, ranks) | (False if by_rank else maybe)]
    inside, stats = _finish(rows, finish, ranks, n_ref, n_cur)
    tops = ((cells.r0 + cells.r) / n_ref - (cells.c0 + cells.c) / n_cur).abs().max()
    if not ks:
        stat = math.nan
    elif by_rank:
        stat = _ks_by_rank(rows, n_ref, n_cur)
    else:
        stat = max(float(tops), float(inside))
    return stat, _edges(plan, stats)


def _grouped_ks_and_deciles(
    rows: ir.Table, n_ref: int, n_cur: int, *, ks: bool = True
) -> tuple[float, list[float]]:
    """KS and the reference deciles from one grouping by distinct value with cumulative
    counts (the right choice when values repeat: the grouping is small).
    """
    g = rows.group_by("__x").aggregate(r=count_if(~rows["__cur"]), c=count_if(rows["__cur"]))
    w = ibis.cumulative_window(order_by="__x")
    g = g.mutate(cr=g.r.sum().over(w), cc=g.c.sum().over(w))
    plan = _decile_ranks(n_ref)
    ranks = sorted({j for lo, hi, _ in plan for j in (lo, hi)})
    aggs: dict[str, ir.Value] = {f"q{j}": g["__x"].min(where=g.cr > j) for j in ranks}
    if ks:
        aggs["ks"] = (g.cr.cast("float64") / n_ref - g.cc.cast("float64") / n_cur).abs().max()
    q = g.aggregate(**aggs).to_pandas().iloc[0]
    stats = {j: float(q[f"q{j}"]) for j in ranks}
    return (float(q["ks"]) if ks else math.nan), _edges(plan, stats)


def _holding(cells: pd.DataFrame, ranks: Sequence[int]) -> pd.Series:
    """Whether each cell holds a wanted reference order statistic (0-based rank)."""
    idx = np.searchsorted((cells.r0 + cells.r).to_numpy(), ranks, side="right")
    return pd.Series(np.isin(np.arange(len(cells)), idx), index=cells.index)


def _ks_cells(cells: pd.DataFrame, n_ref: int, n_cur: int) -> pd.Series:
    """Whether |F_ref − F_cur| could exceed, inside each cell, its largest value at the tops."""
    top_r, top_c = (cells.r0 + cells.r) / n_ref, (cells.c0 + cells.c) / n_cur
    bound = np.maximum(top_r - cells.c0 / n_cur, top_c - cells.r0 / n_ref)
    return bound > (top_r - top_c).abs().max()


def _ks_by_rank(t: ir.Table, n_ref: int, n_cur: int) -> float:
    """The exact KS statistic from two rank windows: at every row, the reference and current
    rows strictly below its value (left limits of the CDFs, whose largest gap is the KS
    statistic's: ties are exact).
    """
    w = t.mutate(
        __all=ibis.rank().over(order_by=t["__x"]),
        __same=ibis.rank().over(group_by=t["__cur"], order_by=t["__x"]),
    )
    # as doubles: PostgreSQL divides integers as integers
    other = (w["__all"] - w["__same"]).cast("float64")
    same = w["__same"].cast("float64")
    d = w["__cur"].ifelse(other / n_ref - same / n_cur, same / n_ref - other / n_cur)
    return float(d.abs().max().to_pandas() or 0.0)


def _split(rows: ir.Table, parents: pd.DataFrame) -> pd.DataFrame:
    """The parent cells as up to 2**SPLIT_BITS cells of equal width each (empty ones left out):
    one grouped query per parent width, integer arithmetic only.
    """
    out = []
    for width, group in parents.groupby("width"):
        width, sub = int(width), int(width) >> SPLIT_BITS
        h = (
            rows.filter((rows["__f"] // width).isin([int(s) // width for s in group.start]))
            .group_by(key=rows["__f"] // sub)
            .aggregate(
                r=count_if(~rows["__cur"]),
                c=count_if(rows["__cur"]),
                lo=rows["__x"].min(),
                hi=rows["__x"].max(),
            )
            .to_pandas()
        )
        out.append(h.assign(start=h.key.astype("int64") * sub, width=sub).drop(columns="key"))
    return pd.concat(out, ignore_index=True)


def _finish(
    rows: ir.Table, cells: pd.DataFrame, ranks: Sequence[int], n_ref: int, n_cur: int
) -> tuple[float, dict[int, float]]:
    """Exactly, inside ``cells`` (grouped by distinct value, cumulative counts per cell): the
    largest |F_ref − F_cur| and the wanted reference order statistics (0-based ranks).
    """
    f = rows["__f"]
    cells = cells.reset_index(drop=True)
    bounds = [(int(s), int(s) + int(w)) for s, w in zip(cells.start, cells.width, strict=True)]
    which = ibis.cases(*[((f >= a) & (f < b), k) for k, (a, b) in enumerate(bounds)], else_=-1)
    coarse = 2 ** (FINE_BITS - SPLIT_BITS)  # a cheap first filter: the cells' first-level bins
    if all(b - a <= coarse for a, b in bounds):
        rows = rows.filter((f // coarse).isin(sorted({a // coarse for a, _ in bounds})))
    g = (
        rows.mutate(__k=which)
        .filter(ibis._["__k"] >= 0)
        .group_by(["__k", "__x"])
        .aggregate(r=count_if(~ibis._["__cur"]), c=count_if(ibis._["__cur"]))
    )
    w = ibis.cumulative_window(group_by="__k", order_by="__x")
    g = g.mutate(cr=g.r.sum().over(w), cc=g.c.sum().over(w))
    g = g.mutate(d=g.cr.cast("float64") / n_ref - g.cc.cast("float64") / n_cur)
    aggs: dict[str, ir.Value] = {"dmax": g.d.max(), "dmin": g.d.min()}
    ends = (cells.r0 + cells.r).to_numpy()
    for j in ranks:
        k = int(np.searchsorted(ends, j, side="right"))
        aggs[f"q{j}"] = g["__x"].min(where=(g["__k"] == k) & (g.cr > j - int(cells.r0[k])))
    q = g.group_by("__k").aggregate(**aggs).to_pandas().set_index("__k").sort_index()
    base = (cells.r0 / n_ref - cells.c0 / n_cur)[q.index]
    ks = float(max((base + q.dmax).abs().max(), (base + q.dmin).abs().max()))
    return ks, {j: float(q[f"q{j}"].min()) for j in ranks}


def _drift_row(
    column: str,
    found: tuple[float, list[float]] | None,
    ref_counts: list[float],
    cur_counts: list[float],
) -> dict[str, Any]:
    """A column's drift row from its KS, PSI edges and the rows per PSI bin."""
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
    psi = psi_from_counts(ref_counts, cur_counts)
    return {
        "column": column,
        "psi": psi,
        "ks_statistic": ks,
        "status": psi_status(psi),
        "edges": edges,
        "ref_counts": ref_counts,
        "cur_counts": cur_counts,
    }


def drift_by_window(
    t: ir.Table,
    time_col: str,
    window: str | None,
    is_cur: ir.BooleanValue,
    edges: Sequence[float],
    span: tuple[pd.Timestamp, pd.Timestamp],
) -> pd.DataFrame:
    """PSI of the score of every window against the whole reference (onset of drift); windows
    only partly covered by the data are marked ``partial``. No rows with ``window=None``.
    """
    if window is None or not edges:
        return pd.DataFrame(columns=["window", "psi", "status", "reference", "partial"])
    counts = (
        t.mutate(__b=psi_bin(t["__s"], edges), __w=window_start(t[time_col], window), __cur=is_cur)
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
