"""The engine side of an A/B test: per-arm sums in one query, unit checks, histograms."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from aipm_nb.errors import DataError
from aipm_nb.experiment.spec import Metric
from aipm_nb.sources import open_source

__all__ = ["arm_histograms"]


def _finite_filter(col: ir.Column) -> ir.BooleanValue:
    ok = col.notnull()
    if col.type().is_floating():
        ok = ok & ~col.isnan()
    return ok


def _values(t: ir.Table, cols: Sequence[Any]) -> list[ir.FloatingValue]:
    """The columns as float64, NULL wherever any of them is null or NaN (so that SUM and
    COUNT skip the same units for every sum of a metric, without a FILTER per aggregate)."""
    exprs = [t[c].cast("float64") for c in cols]
    if len(cols) == 1 and not t[cols[0]].type().is_floating():
        return exprs  # SUM / COUNT already skip NULLs
    ok = _finite_filter(t[cols[0]])
    for c in cols[1:]:
        ok = ok & _finite_filter(t[c])
    return [ok.ifelse(e, ibis.null("float64")) for e in exprs]


def _arm_aggregates(
    t: ir.Table, variant_col: str, metrics: Sequence[Metric], by: Sequence[str] = ()
) -> pd.DataFrame:
    """One engine query: per variant (and `by` columns) the sums every metric needs."""
    aggs: dict[str, ir.Value] = {"__units": t.count()}
    for i, m in enumerate(metrics):
        if m.type == "ratio":
            num, den = _values(t, [m.numerator, m.denominator])
            aggs[f"m{i}_n"] = num.count()
            aggs[f"m{i}_sn"] = num.sum()
            aggs[f"m{i}_sd"] = den.sum()
            aggs[f"m{i}_snn"] = (num * num).sum()
            aggs[f"m{i}_sdd"] = (den * den).sum()
            aggs[f"m{i}_snd"] = (num * den).sum()
            aggs[f"m{i}_min"] = den.min()
            continue
        if m.covariate:
            y, x = _values(t, [m.column, m.covariate])
            aggs[f"m{i}_sx"] = x.sum()
            aggs[f"m{i}_sxx"] = (x * x).sum()
            aggs[f"m{i}_sxy"] = (x * y).sum()
        else:
            (y,) = _values(t, [m.column])
        aggs[f"m{i}_n"] = y.count()
        aggs[f"m{i}_s"] = y.sum()
        aggs[f"m{i}_ss"] = (y * y).sum()
        aggs[f"m{i}_min"] = y.min()
        aggs[f"m{i}_max"] = y.max()
    df = t.group_by([variant_col, *by]).aggregate(**aggs).to_pandas()
    return df.fillna({c: 0 for c in df.columns if c.endswith(("_n", "_s", "_ss"))})


def _check_units(
    t: ir.Table,
    unit_col: str,
    variant_col: str,
    label: str,
    float_cols: Sequence[str] = (),
    *,
    unique: bool = True,
) -> int:
    """One row per unit, no unit in two variants, no ±inf in a metric (engine-side); returns
    the number of rows with a null unit id (left out by the caller).

    An exact ``count(*) = count(DISTINCT unit)`` settles the usual case in one cheap query that
    also counts null ids and infinite values; only when it fails does a per-unit grouping find
    how many units and which."""
    aggs: dict[str, ir.Value] = {"rows": t.count(), "null_ids": t[unit_col].isnull().sum()}
    if unique:
        aggs["units"] = t[unit_col].nunique()
    for i, c in enumerate(float_cols):
        aggs[f"inf{i}"] = t[c].cast("float64").isinf().sum()
    c = t.aggregate(**aggs).to_pandas().iloc[0]
    for i, col in enumerate(float_cols):
        n_inf = int(c[f"inf{i}"] or 0)
        if n_inf:
            raise DataError(
                f"{label} column {col!r} has {n_inf:,} infinite values (inf or -inf); a mean "
                "or a sum cannot use them — replace them with a finite value or null",
                table=label, column=col, count=n_inf,
            )  # fmt: skip
    null_ids = int(c.null_ids or 0)
    if not unique or (int(c.rows) - null_ids == int(c.units) and int(c.units) > 0):
        return null_ids
    t = t.filter(t[unit_col].notnull())
    g = t.group_by(unit_col).aggregate(rows=t.count(), variants=t[variant_col].nunique())
    bad = g.filter(g.rows > 1).order_by(ibis.desc("variants"), unit_col).limit(3).to_pandas()
    if len(bad):
        n_bad = int(g.filter(g.rows > 1).count().to_pandas())
        if int(bad.variants.max()) > 1:
            n_multi = int(g.filter(g.variants > 1).count().to_pandas())
            ex = bad[bad.variants > 1][unit_col].tolist()
            raise DataError(
                f"{label}: {n_multi} units appear in more than one variant (e.g. {unit_col} "
                f"{', '.join(map(str, ex))}); each unit must be assigned to exactly one "
                f"variant — fix the assignment or drop these units",
                table=label, column=unit_col, count=n_multi, examples=ex,
            )  # fmt: skip
        raise DataError(
            f"{label}: {n_bad} units have more than one row (e.g. {unit_col} "
            f"{', '.join(map(str, bad[unit_col].tolist()))}); expected one row per unit — "
            "aggregate the metrics per unit first",
            table=label, column=unit_col, count=n_bad, examples=bad[unit_col].tolist(),
        )  # fmt: skip
    return null_ids


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
