"""KPI aggregates in the engine: one row per bucket (and segment) comes back, never events.

Events: one grouping by (bucket, [segment,] user) with a count per event filter and the sums
of the KPI columns, then one grouping by bucket: counts, distinct users, rate numerators and
denominators, sums. Predictions: `classifier_sums` per bucket (ROC AUC), calibration counts per
(bucket, bin) (ECE), and the score's PSI bin counts per bucket.
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
from aipm_nb.kpi.spec import Kpi
from aipm_nb.model.drift import feature_drift
from aipm_nb.model.engine import classifier_sums
from aipm_nb.stats.classifier import calibration_table, expected_calibration_error
from aipm_nb.stats.drift import psi_from_counts

__all__ = ["bucket_index", "event_aggregates", "kpi_values", "model_aggregates"]


def _sets(kpis: Sequence[Kpi]) -> list[tuple[str, ...] | None]:
    out: list[tuple[str, ...] | None] = [None]  # any event: the active users
    for k in kpis:
        for s in k.event_sets:
            if s not in out:
                out.append(s)
    return out


def _columns(kpis: Sequence[Kpi]) -> list[tuple[str, tuple[str, ...] | None]]:
    out: list[tuple[str, tuple[str, ...] | None]] = []
    for k in kpis:
        if k.type in ("sum", "mean") and (k.column, k.events) not in out:
            out.append((str(k.column), k.events))
    return out


_TRUNC = {"day": "D", "week": "W", "month": "M"}


def bucket_index(starts: pd.Series, period: str) -> np.ndarray:
    """The period index (as `aipm_nb.cohort.events`) of bucket start times.

    Examples:
        >>> bucket_index(pd.Series(pd.to_datetime(["1970-01-05", "1970-01-12"])), "week")
        array([0, 1])
        >>> bucket_index(pd.Series(pd.to_datetime(["2024-02-01"])), "month")
        array([24289])
    """
    s = pd.to_datetime(starts).dt.normalize()
    if period == "day":
        return ((s - pd.Timestamp("1970-01-01")).dt.days).to_numpy(dtype="int64")
    if period == "week":
        return ((s - pd.Timestamp("1970-01-05")).dt.days // 7).to_numpy(dtype="int64")
    return (s.dt.year * 12 + s.dt.month - 1).to_numpy(dtype="int64")


def event_aggregates(
    t: ir.Table,
    kpis: Sequence[Kpi],
    event_col: str | None,
    period: str,
    by: Sequence[str] = (),
) -> tuple[pd.DataFrame, list[tuple[str, ...] | None], list[tuple[str, tuple[str, ...] | None]]]:
    """Per bucket ``__p`` (and ``by``): ``n{i}`` events and ``u{i}`` users of event set i,
    ``r{a}_{b}`` users with set a among users with set b, ``s{j}``/``k{j}`` sum and count of
    column j. ``t`` has ``__user`` and ``__ts`` (local time); the engine groups by the bucket's
    start (a truncation, cheaper per row than the period arithmetic), pandas maps it to ``__p``.
    """
    sets, cols = _sets(kpis), _columns(kpis)
    t = t.mutate(__bs=t["__ts"].truncate(_TRUNC[period]))

    def n_of(s: tuple[str, ...] | None) -> ir.IntegerScalar:
        if s is None:
            return t.count()
        return t.count(where=t[str(event_col)].isin(s))

    # every (bucket, user) row has at least one event: "any event" needs its count only where a
    # KPI counts all events (one aggregate less over every event row otherwise)
    any_count = any(k.type in ("count", "per_user") and k.events is None for k in kpis)
    inner_aggs: dict[str, Any] = {
        f"c{i}": n_of(s) for i, s in enumerate(sets) if i > 0 or any_count
    }
    for j, (c, s) in enumerate(cols):
        x = t[c].cast("float64")
        ok = x.notnull() & ~x.isnan()
        if s is not None:
            ok &= t[str(event_col)].isin(s)
        inner_aggs[f"s{j}"] = x.sum(where=ok)
        inner_aggs[f"k{j}"] = x.count(where=ok)
    inner = t.group_by(["__bs", *by, "__user"]).aggregate(**inner_aggs)
    pairs = {(sets.index(k.numerator), sets.index(k.denominator)) for k in kpis if k.type == "rate"}
    outer_aggs: dict[str, Any] = {}
    for i in range(len(sets)):
        if i == 0:
            outer_aggs["u0"] = inner.count()
            if any_count:
                outer_aggs["n0"] = inner["c0"].sum()
            continue
        outer_aggs[f"n{i}"] = inner[f"c{i}"].sum()
        outer_aggs[f"u{i}"] = inner.count(where=inner[f"c{i}"] > 0)
    for a, b in pairs:  # set 0 (any event) holds for every row
        conds = [inner[f"c{i}"] > 0 for i in {a, b} if i != 0]
        outer_aggs[f"r{a}_{b}"] = inner.count(where=ibis.and_(*conds)) if conds else inner.count()
    for j in range(len(cols)):
        outer_aggs[f"s{j}"] = inner[f"s{j}"].sum()
        outer_aggs[f"k{j}"] = inner[f"k{j}"].sum()
    out = inner.group_by(["__bs", *by]).aggregate(**outer_aggs).to_pandas()
    out.insert(0, "__p", bucket_index(out.pop("__bs"), period))
    return out, sets, cols


def kpi_values(
    agg: pd.DataFrame,
    kpi: Kpi,
    sets: list[tuple[str, ...] | None],
    cols: list[tuple[str, tuple[str, ...] | None]],
) -> pd.DataFrame:
    """``value``, ``volume``, ``num``, ``den`` of an event KPI per row of `event_aggregates`."""
    num = den = np.full(len(agg), np.nan)
    if kpi.type in ("count", "users"):
        i = sets.index(kpi.events)
        value = agg[f"{'n' if kpi.type == 'count' else 'u'}{i}"].astype(float)
        volume = value
    elif kpi.type == "rate":
        a, b = sets.index(kpi.numerator), sets.index(kpi.denominator)
        num = agg[f"r{a}_{b}"].astype(float).to_numpy()
        den = agg[f"u{b}"].astype(float).to_numpy()
        value = pd.Series(np.where(den > 0, num / np.where(den > 0, den, 1), np.nan))
        volume = pd.Series(den)
    elif kpi.type == "per_user":
        a, b = sets.index(kpi.events), sets.index(kpi.denominator)
        users = agg[f"u{b}"].astype(float).to_numpy()
        value = pd.Series(np.where(users > 0, agg[f"n{a}"] / np.where(users > 0, users, 1), np.nan))
        volume = pd.Series(users)
    else:
        j = cols.index((str(kpi.column), kpi.events))
        s = agg[f"s{j}"].astype(float).fillna(0.0).to_numpy()
        k = agg[f"k{j}"].astype(float).to_numpy()
        volume = pd.Series(k)
        value = pd.Series(
            s if kpi.type == "sum" else np.where(k > 0, s / np.where(k > 0, k, 1), np.nan)
        )
    return pd.DataFrame(
        {
            "__p": agg["__p"].to_numpy(),
            "value": np.asarray(value, dtype=float),
            "volume": np.asarray(volume, dtype=float),
            "num": np.asarray(num, dtype=float),
            "den": np.asarray(den, dtype=float),
        }
    )


def model_aggregates(
    t: ir.Table, kpi: Kpi, *, threshold: float = 0.5, scored: int | None, baseline: Sequence[int]
) -> pd.DataFrame:
    """``value`` and ``volume`` of a model KPI per bucket ``__p``. ``t`` has ``__s`` (score),
    ``__y`` (label, null = unlabelled) and ``__p``.

    ROC AUC and ECE count labelled rows only. PSI: each bucket's score against the reference of
    the scored bucket — the rows of its ``baseline`` buckets (edges at the reference deciles).
    """
    if kpi.type == "roc_auc":
        rows = []
        for p, (_, sums) in classifier_sums(t, "__p").items():
            m = sums.metrics()
            rows.append({"__p": p, "value": m.roc_auc, "volume": float(m.n)})
        return _frame(rows)
    if kpi.type == "ece":
        nb = config.CALIBRATION_BINS
        lab = t.filter(t["__y"].notnull())
        bins = (
            lab.mutate(bin=ibis.least((lab["__s"] * nb).floor().cast("int64"), nb - 1))
            .group_by(["__p", "bin"])
            .aggregate(n=ibis._.count(), sum_score=ibis._["__s"].sum(), pos=ibis._["__y"].sum())
            .to_pandas()
        )
        rows = [
            {
                "__p": p,
                "value": expected_calibration_error(calibration_table(g, n_bins=nb)),
                "volume": float(g.n.sum()),
            }
            for p, g in bins.groupby("__p")
        ]
        return _frame(rows)
    # PSI
    sizes = t.group_by("__p").aggregate(n=ibis._.count()).to_pandas()
    if scored is None or len(baseline) == 0:
        return _frame(
            [
                {"__p": p, "value": math.nan, "volume": float(n)}
                for p, n in zip(sizes.__p, sizes.n, strict=True)
            ]
        )
    win = t.filter(t["__p"].isin([*baseline, scored]))
    drift = feature_drift(win, ["__s"], win["__p"] == scored)[0]
    edges = drift["edges"]
    b = sum(((t["__s"] >= e).ifelse(1, 0) for e in edges), ibis.literal(0))
    counts = t.mutate(__b=b).group_by(["__p", "__b"]).aggregate(n=ibis._.count()).to_pandas()
    nbins = range(len(edges) + 1)
    ref_counts = drift["ref_counts"]
    rows = []
    for p, g in counts.groupby("__p"):
        cur = g.groupby("__b").n.sum().reindex(nbins, fill_value=0)
        value = psi_from_counts(ref_counts, cur) if edges else math.nan
        rows.append({"__p": p, "value": value, "volume": float(g.n.sum())})
    return _frame(rows)


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    out = pd.DataFrame(rows, columns=["__p", "value", "volume"])
    out["num"] = np.nan
    out["den"] = np.nan
    return out
