"""The engine side of an A/B test: typed per-arm sums in one query, unit checks, histograms."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from aipm_nb.errors import DataError
from aipm_nb.experiment.spec import Metric
from aipm_nb.sources import is_infinite, open_source
from aipm_nb.stats import Moments, Paired

__all__ = [
    "ArmSums",
    "MetricSums",
    "arm_histograms",
    "checked_sums",
    "engine_sums",
    "with_quantiles",
]


def _finite_filter(col: ir.Column) -> ir.BooleanValue:
    ok = col.notnull()
    if col.type().is_floating():
        ok = ok & ~col.isnan()
    return ok


def _values(t: ir.Table, cols: Sequence[Any]) -> list[ir.FloatingValue]:
    """The columns as float64, NULL wherever any of them is null or NaN (so that SUM and
    COUNT skip the same units for every sum of a metric, without a FILTER per aggregate).
    """
    exprs = [t[c].cast("float64") for c in cols]
    if len(cols) == 1 and not t[cols[0]].type().is_floating():
        return exprs  # SUM / COUNT already skip NULLs
    ok = _finite_filter(t[cols[0]])
    for c in cols[1:]:
        ok = ok & _finite_filter(t[c])
    return [ok.ifelse(e, ibis.null("float64")) for e in exprs]


@dataclass(frozen=True)
class MetricSums:
    """The sums of one metric in one group, as the metric declares them (`Metric.y`/`Metric.x`).

    Attributes:
        y: n, Σy, Σy² of the metric (the numerator of a ratio) over units where every column
            of the metric is usable.
        x: the same of the paired column (CUPED covariate or ratio denominator), else None.
        total_xy: Σxy (0 without a paired column).
        lo: min of y (NaN without units); with ``hi`` the 0/1 check of proportions.
        hi: max of y.
        q: a quantile metric's sample quantile and the quantiles L, U bracketing it (engine,
            `with_quantiles`); None where they were not computed (quantiles do not pool).
    """

    y: Moments
    x: Moments | None = None
    total_xy: float = 0.0
    lo: float = math.nan
    hi: float = math.nan
    q: tuple[float, float, float] | None = None

    def paired(self) -> Paired:
        """Y and x as `Paired` (what CUPED and ratios need)."""
        assert self.x is not None, "the metric has no paired column"
        return Paired(self.y, self.x, self.total_xy)

    def __add__(self, other: MetricSums) -> MetricSums:
        x = None if self.x is None or other.x is None else self.x + other.x
        return MetricSums(
            self.y + other.y,
            x,
            self.total_xy + other.total_xy,
            float(np.fmin(self.lo, other.lo)),
            float(np.fmax(self.hi, other.hi)),
        )


@dataclass(frozen=True)
class ArmSums:
    """Every metric's sums in one group (an arm, or an arm within a segment or a day)."""

    units: int
    metrics: tuple[MetricSums, ...]

    def __add__(self, other: ArmSums) -> ArmSums:
        pooled = tuple(a + b for a, b in zip(self.metrics, other.metrics, strict=True))
        return ArmSums(self.units + other.units, pooled)


def engine_sums(
    t: ir.Table,
    variant_col: str,
    metrics: Sequence[Metric],
    by: Sequence[str] = (),
    *,
    shifts: Mapping[str, float] | None = None,
) -> dict[tuple[Any, ...], ArmSums]:
    """One engine query: the sums every metric declares, per variant (and ``by`` columns).

    Keys are ``(variant, *by values)``; a null variant is the key ``(None, ...)``. Sums of a
    column are taken around ``shifts[column]`` (its mean, from `checked_sums`, where sums
    around zero would lose float64 precision: 3e7 + N(0, 1)). A proportion's column (its 0/1
    check reads min, max, Σy and Σy²) and a ratio's denominator (its Σ must not be 0) are not
    shifted.
    """
    shifts = shifts or {}
    keys = [variant_col, *by]
    aggs = {"units": t.count()} | _sum_aggs(t, metrics, shifts)
    df = t.group_by(keys).aggregate(**aggs).to_pandas()
    return _arm_sums(df.to_dict("records"), metrics, shifts, keys)


def _sum_aggs(
    t: ir.Table, metrics: Sequence[Metric], shifts: Mapping[str, float]
) -> dict[str, ir.Value]:
    """The aggregates behind `MetricSums`; the only place that names the sums in a query."""
    aggs: dict[str, ir.Value] = {}
    for i, m in enumerate(metrics):
        y, *x = _values(t, [m.y, m.x] if m.x else [m.y])
        if m.type != "proportion" and shifts.get(m.y):
            y = y - shifts[m.y]
        if m.covariate and shifts.get(m.covariate):
            x = [x[0] - shifts[m.covariate]]
        aggs |= {f"n{i}": y.count(), f"s{i}": y.sum(), f"ss{i}": (y * y).sum()}
        if m.type == "proportion":
            aggs |= {f"lo{i}": y.min(), f"hi{i}": y.max()}
        if x:
            aggs |= {
                f"sx{i}": x[0].sum(),
                f"sxx{i}": (x[0] * x[0]).sum(),
                f"sxy{i}": (x[0] * y).sum(),
            }
    return aggs


def _arm_sums(
    records: Sequence[dict[str, Any]],
    metrics: Sequence[Metric],
    shifts: Mapping[str, float],
    keys: Sequence[str],
) -> dict[tuple[Any, ...], ArmSums]:
    """`ArmSums` per group from the rows of a query built with `_sum_aggs`."""
    out: dict[tuple[Any, ...], ArmSums] = {}
    for r in records:

        def num(key: str, r: dict[str, Any] = r) -> float:
            v = r.get(key)
            return 0.0 if v is None or pd.isna(v) else float(v)

        sums = []
        for i, m in enumerate(metrics):
            n = num(f"n{i}")
            ky = 0.0 if m.type == "proportion" else shifts.get(m.y, 0.0)
            kx = shifts.get(m.covariate, 0.0) if m.covariate else 0.0
            sums.append(
                MetricSums(
                    Moments(n, num(f"s{i}"), num(f"ss{i}"), ky),
                    Moments(n, num(f"sx{i}"), num(f"sxx{i}"), kx) if m.x else None,
                    num(f"sxy{i}"),
                    _float(r.get(f"lo{i}")),
                    _float(r.get(f"hi{i}")),
                )
            )
        key = tuple(None if pd.isna(r[c]) else r[c] for c in keys)
        out[key] = ArmSums(int(r["units"]), tuple(sums))
    return out


def with_quantiles(
    t: ir.Table,
    variant_col: str,
    metrics: Sequence[Metric],
    arms: Mapping[str, ArmSums],
    label: str,
) -> dict[str, ArmSums]:
    """The arms with each quantile metric's Q̂, L and U (exact, continuous quantiles in the
    engine: DuckDB ``quantile_cont``, PostgreSQL ``percentile_cont``, Spark ``percentile``),
    at levels that depend on the arm's units (`aipm_nb.stats.quantile_levels`).
    """
    from aipm_nb.stats import quantile_levels, quantile_min_n

    out = dict(arms)
    for i, m in enumerate(metrics):
        if m.type != "quantile":
            continue
        nu = float(m.quantile)  # type: ignore[arg-type]
        for v, a in arms.items():
            n = a.metrics[i].y.n
            need = quantile_min_n(nu)
            if n <= need:
                raise DataError(
                    f"{label}: quantile metric {m.name!r} (p{nu * 100:g}) has {int(n)} units "
                    f"with a value in variant {v!r}; its interval needs more than "
                    f"{math.floor(need)} (z²·ν/(1−ν)) — use a lower quantile or wait for data",
                    table=label,
                    column=m.column,
                    count=int(n),
                )
            lo, hi = quantile_levels(n, nu)
            x = t[str(m.column)].cast("float64")
            ok = _finite_filter(t[str(m.column)]) & (t[variant_col] == v)
            r = (
                t.aggregate(
                    q=x.quantile(nu, where=ok),
                    lower=x.quantile(lo, where=ok),
                    upper=x.quantile(hi, where=ok),
                )
                .to_pandas()
                .iloc[0]
            )
            ms = list(out[v].metrics)
            ms[i] = replace(ms[i], q=(float(r.q), float(r.lower), float(r.upper)))
            out[v] = ArmSums(out[v].units, tuple(ms))
    return out


def _float(v: Any) -> float:
    return math.nan if v is None or pd.isna(v) else float(v)


#: The widest id range (max - min + 1) whose distinct ids are counted by a bitmap: 128 MiB.
MAX_BITMAP_RANGE = 2**30


def _bitmap_engine(t: ir.Table, unit_col: str) -> bool:
    """Whether the distinct integer ids of ``unit_col`` can be counted by a bitmap (DuckDB)."""
    dtype = t[unit_col].type()
    if not dtype.is_signed_integer():
        return False
    return t._find_backend(use_default=True).name == "duckdb"


@ibis.udf.agg.builtin(name="bitstring_agg")
def _bitstring_agg(x: dt.int64, lo: dt.int64, hi: dt.int64) -> dt.string:  # type: ignore[empty-body]
    """DuckDB's bitstring_agg: one bit per value between ``lo`` and ``hi``, set where seen."""


@ibis.udf.scalar.builtin(name="bit_count")
def _bit_count(x: dt.string) -> dt.int64:  # type: ignore[empty-body]
    """DuckDB's bit_count of a bitstring."""


def _distinct_by_bitmap(t: ir.Table, unit_col: str, lo: Any, hi: Any) -> int:
    """The number of distinct non-null integer ids in ``unit_col`` (``lo`` … ``hi``: their
    range) from DuckDB's ``bitstring_agg``, one bit per id in the range: exact, and ~7× faster
    than a hash ``count(DISTINCT)`` on 10M ids. A range wider than `MAX_BITMAP_RANGE` is
    counted by hash.
    """
    if lo is None or pd.isna(lo):
        return 0  # no id at all
    if int(hi) - int(lo) + 1 > MAX_BITMAP_RANGE:
        return int(t[unit_col].nunique().to_pandas())
    x = t[unit_col].cast("int64")
    return int(_bit_count(_bitstring_agg(x, int(lo), int(hi))).to_pandas())


#: Sums around zero are kept when, in every arm, Σy² ≤ this × Σ(y − ȳ)² (for each metric
#: column and covariate): their variance then carries at most this times the float64 error
#: of the sums (~1e-13 on 10M rows). A column past it (3e7 + N(0, 1): ~1e15) is summed again
#: around its mean.
MAX_RAW_CONDITION = 100.0


def checked_sums(
    t: ir.Table,
    unit_col: str,
    variant_col: str,
    metrics: Sequence[Metric],
    label: str,
    *,
    unique: bool = True,
) -> tuple[ir.Table, dict[tuple[Any, ...], ArmSums], dict[str, float], int]:
    """The per-variant sums of every metric (as `engine_sums`) and the checks of the units,
    from one scan: one row per unit, no unit in two variants, no ±inf in a metric.

    The same query counts the non-null ids and, for a bitmap, their range; an infinite value
    shows as a sum that is not finite, and only then a second query counts them per column.
    Rows with a null id are left out (with a warning by the caller): only when there are any
    are the sums taken again without them. Returns the table without those rows, the sums,
    the shifts the sums were taken around (`engine_sums`; empty unless a column needed one,
    `MAX_RAW_CONDITION`) and the number of null-id rows.

    Uniqueness is exact: on DuckDB with integer ids a bitmap over the id range (whose ends
    come from the same scan) counts the distinct ids (`_distinct_by_bitmap`), elsewhere a
    ``count(DISTINCT)``; only when the count differs from the rows does a per-unit grouping
    find how many units and which.
    """
    bitmap = unique and _bitmap_engine(t, unit_col)
    aggs = {"units": t.count(), "__ids": t[unit_col].count()} | _sum_aggs(t, metrics, {})
    if bitmap:  # the id range: distinct ids by a bitmap over it
        aggs |= {"__lo": t[unit_col].min(), "__hi": t[unit_col].max()}
    df = t.group_by(variant_col).aggregate(**aggs).to_pandas()
    sums_cols = [c for c in df.columns if c not in (variant_col, "units", "__ids", "__lo", "__hi")]
    finite = np.isfinite(df[sums_cols].astype("float64").fillna(0).to_numpy()).all(axis=0)
    if not finite.all():
        _find_infinite_values(t, metrics, label)  # an inf in a column makes its sums inf or NaN
        m = metrics[int(sums_cols[int(np.argmin(finite))].lstrip("nslohixy"))]  # e.g. "ss3" → 3
        raise DataError(
            f"{label}: the sums of metric {m.name!r} (columns {', '.join(map(repr, m.columns))}) "
            "overflow float64 (values or their squares beyond 1.8e308); rescale the values",
            table=label,
            column=str(m.y),
        )
    null_ids = int(df.units.sum() - df["__ids"].sum())
    if unique:
        rows = int(df["__ids"].sum())
        units = (
            _distinct_by_bitmap(t, unit_col, df["__lo"].min(), df["__hi"].max())
            if bitmap
            else int(t[unit_col].nunique().to_pandas())
        )
        if units != rows or units == 0:
            _find_repeated_units(t, unit_col, variant_col, label)
    if null_ids:  # rare: the sums again without the rows of a null id
        t = t.filter(t[unit_col].notnull())
        sums = engine_sums(t, variant_col, metrics)
    else:
        sums = _arm_sums(df.to_dict("records"), metrics, {}, [variant_col])
    shifts = _ill_conditioned_means(sums, metrics)
    if shifts:
        sums = engine_sums(t, variant_col, metrics, shifts=shifts)
    return t, sums, shifts, null_ids


def _find_infinite_values(t: ir.Table, metrics: Sequence[Metric], label: str) -> None:
    """A `DataError` naming the first metric column with ±inf values (sums that are not
    finite without one, a float64 overflow, are left as they are).
    """
    cols = sorted({c for m in metrics for c in m.columns if t[c].type().is_floating()})
    if not cols:
        return
    counts = t.aggregate(
        **{f"i{i}": is_infinite(t[c]).ifelse(1, 0).sum() for i, c in enumerate(cols)}
    ).to_pandas()
    for i, col in enumerate(cols):
        n_inf = int(counts[f"i{i}"].iloc[0] or 0)
        if n_inf:
            raise DataError(
                f"{label} column {col!r} has {n_inf:,} infinite values (inf or -inf); a mean "
                "or a sum cannot use them — replace them with a finite value or null",
                table=label,
                column=col,
                count=n_inf,
            )


def _ill_conditioned_means(
    sums: Mapping[tuple[Any, ...], ArmSums], metrics: Sequence[Metric]
) -> dict[str, float]:
    """The pooled mean of each metric column (or covariate) whose sums around zero are past
    `MAX_RAW_CONDITION` in some arm: the shift to sum it around instead.
    """
    moments: dict[str, list[Moments]] = {}
    for arm in sums.values():
        for m, got in zip(metrics, arm.metrics, strict=True):
            if m.type != "proportion":
                moments.setdefault(str(m.y), []).append(got.y)
            if m.covariate and got.x is not None:
                moments.setdefault(str(m.covariate), []).append(got.x)
    out = {}
    for col, ms in moments.items():
        n, total = sum(m.n for m in ms), sum(m.total for m in ms)
        if n and any(_condition(m) > MAX_RAW_CONDITION for m in ms):
            out[col] = total / n
    return out


def _condition(m: Moments) -> float:
    """Σy² / Σ(y − ȳ)² of moments around zero: how much of Σy² the variance loses."""
    if m.n < 2 or m.total_sq == 0:
        return 1.0
    centred = m.total_sq - m.total * m.total / m.n
    return m.total_sq / centred if centred > 0 else math.inf


def _find_repeated_units(t: ir.Table, unit_col: str, variant_col: str, label: str) -> None:
    """A `DataError` naming units with more than one row (first those in several variants)."""
    t = t.filter(t[unit_col].notnull())
    g = t.group_by(unit_col).aggregate(rows=t.count(), variants=t[variant_col].nunique())
    bad = g.filter(g.rows > 1).order_by(ibis.desc("variants"), unit_col).limit(3).to_pandas()
    if not len(bad):
        return
    n_bad = int(g.filter(g.rows > 1).count().to_pandas())
    if int(bad.variants.max()) > 1:
        n_multi = int(g.filter(g.variants > 1).count().to_pandas())
        ex = bad[bad.variants > 1][unit_col].tolist()
        raise DataError(
            f"{label}: {n_multi} units appear in more than one variant (e.g. {unit_col} "
            f"{', '.join(map(str, ex))}); each unit must be assigned to exactly one "
            f"variant — fix the assignment or drop these units",
            table=label,
            column=unit_col,
            count=n_multi,
            examples=ex,
        )
    raise DataError(
        f"{label}: {n_bad} units have more than one row (e.g. {unit_col} "
        f"{', '.join(map(str, bad[unit_col].tolist()))}); expected one row per unit — "
        "aggregate the metrics per unit first",
        table=label,
        column=unit_col,
        count=n_bad,
        examples=bad[unit_col].tolist(),
    )


def arm_histograms(
    source: Any,
    columns: Sequence[str],
    *,
    variant_col: str = "variant",
    bins: int = 30,
    upper_quantile: float = 0.99,
    table: str | None = None,
) -> pd.DataFrame:
    """Per-variant histograms of metric columns, binned in the engine.

    The range runs from the minimum to the ``upper_quantile`` of all units (long tails of
    revenue would otherwise squeeze every bar into one); values above go into the last bin.

    Returns:
        ``column``, ``variant``, ``lower``, ``upper``, ``count``, ``share`` (of the variant).
    """
    required = {variant_col: "any", **{c: "numeric" for c in columns}}
    t = open_source(source, table=table, required=required, name="experiment").table
    frames = []
    for col in columns:
        x = t[col].cast("float64")
        ok = _finite_filter(t[col])
        rng = t.aggregate(lo=x.min(where=ok), hi=x.quantile(upper_quantile, where=ok)).to_pandas()
        lo, hi = float(rng.lo.iloc[0]), float(rng.hi.iloc[0])
        width = (hi - lo) / bins if hi > lo else 1.0
        b = ((x - lo) / width).floor().cast("int64").clip(0, bins - 1)
        h = (
            t.filter(ok)
            .mutate(bin=b, v=t[variant_col].cast("string"))
            .group_by(["v", "bin"])
            .aggregate(count=ibis._.count())
            .to_pandas()
        )
        full = pd.MultiIndex.from_product([sorted(h.v.unique()), range(bins)], names=["v", "bin"])
        h = h.set_index(["v", "bin"]).reindex(full, fill_value=0).reset_index()
        h["share"] = h["count"] / h.groupby("v")["count"].transform("sum")
        frames.append(
            pd.DataFrame(
                {
                    "column": col,
                    "variant": h.v,
                    "lower": lo + h.bin * width,
                    "upper": lo + (h.bin + 1) * width,
                    "count": h["count"].astype(int),
                    "share": h.share,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
