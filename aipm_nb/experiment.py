"""A/B test evaluation from per-arm sufficient statistics computed in the engine.

`analyze_experiment` is the entry point: it checks the table (one row per unit, known
variants), aggregates every metric per variant in one engine query, computes effects per
DESIGN section 4 (`aipm_nb.stats`), applies the multiple-testing correction, the SRM check and
power, and returns an `ExperimentResult` with a `Decision`.

Metrics are dicts (or `Metric`):

    {"name": "conversion", "type": "proportion", "column": "converted"}
    {"name": "revenue", "type": "mean", "column": "revenue", "covariate": "pre_revenue"}
    {"name": "ctr", "type": "ratio", "numerator": "clicks", "denominator": "views"}
    {"name": "latency", "type": "mean", "column": "latency_ms", "guardrail": True,
     "direction": "decrease"}

The first non-guardrail metric is the primary one (the one a "ship" decision rests on) unless
one says ``"primary": True``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from aipm_nb import config
from aipm_nb import stats as st
from aipm_nb.errors import DataError, ParameterError
from aipm_nb.markup import md
from aipm_nb.sources import open_source
from aipm_nb.summary import json_safe

__all__ = [
    "Decision",
    "ExperimentResult",
    "Metric",
    "MetricResult",
    "PowerResult",
    "analyze_experiment",
    "arm_histograms",
    "decide",
    "metric_table",
    "parse_metrics",
    "power_table",
    "summary_markdown",
]

METRIC_TYPES = ("proportion", "mean", "ratio")
DIRECTIONS = ("increase", "decrease")


@dataclass(frozen=True)
class Metric:
    """One metric of an experiment.

    Attributes:
        name: Label in tables and the JSON summary.
        type: ``"proportion"`` (0/1 column), ``"mean"`` or ``"ratio"`` (Σnumerator/Σdenominator).
        column: The metric column (proportion and mean).
        numerator: Numerator column (ratio).
        denominator: Denominator column (ratio).
        covariate: Pre-period column for CUPED (proportion and mean).
        guardrail: Watched for harm, left out of the multiple-testing family.
        direction: ``"increase"`` if higher is better, ``"decrease"`` if lower is better.
        primary: The metric a "ship" decision rests on.
    """

    name: str
    type: str
    column: str | None = None
    numerator: str | None = None
    denominator: str | None = None
    covariate: str | None = None
    guardrail: bool = False
    direction: str = "increase"
    primary: bool = False

    @property
    def columns(self) -> list[str]:
        cols = [self.column, self.numerator, self.denominator, self.covariate]
        return [c for c in cols if c]


def parse_metrics(metrics: Iterable[Mapping[str, Any] | Metric]) -> list[Metric]:
    """Validate metric specs (dicts as in the notebook parameters) into `Metric` objects."""
    out: list[Metric] = []
    allowed = set(Metric.__dataclass_fields__)
    for i, spec in enumerate(metrics):
        if isinstance(spec, Metric):
            m = spec
        else:
            if not isinstance(spec, Mapping):
                raise ParameterError(f"metrics[{i}] must be a dict; got {spec!r}")
            unknown = set(spec) - allowed
            if unknown:
                raise ParameterError(
                    f"metrics[{i}] has unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}"
                )
            if "name" not in spec or "type" not in spec:
                raise ParameterError(f"metrics[{i}] needs 'name' and 'type'; got {dict(spec)}")
            m = Metric(**spec)
        where = f"metric {m.name!r}"
        if m.type not in METRIC_TYPES:
            raise ParameterError(f"{where}: type {m.type!r}; expected one of {METRIC_TYPES}")
        if m.direction not in DIRECTIONS:
            raise ParameterError(
                f"{where}: direction {m.direction!r}; expected one of {DIRECTIONS}"
            )
        if m.type == "ratio":
            if not (m.numerator and m.denominator) or m.column:
                raise ParameterError(f"{where}: a ratio needs 'numerator' and 'denominator'")
            if m.covariate:
                raise ParameterError(f"{where}: CUPED is not supported for ratio metrics")
        elif not m.column or m.numerator or m.denominator:
            raise ParameterError(f"{where}: a {m.type} metric needs 'column' (and no numerator)")
        out.append(m)
    if not out:
        raise ParameterError("metrics is empty; give at least one metric")
    names = [m.name for m in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ParameterError(f"metric names must be unique; repeated: {dupes}")
    if sum(m.primary for m in out) > 1:
        raise ParameterError("at most one metric may be primary")
    return out


@dataclass(frozen=True)
class MetricResult:
    """One metric x variant comparison against the control (JSON keys of DESIGN section 5)."""

    metric: str
    type: str
    variant: str
    control_n: int
    variant_n: int
    control_mean: float
    variant_mean: float
    abs_effect: float
    abs_ci_lower: float
    abs_ci_upper: float
    abs_p_value: float
    rel_effect: float
    rel_ci_lower: float
    rel_ci_upper: float
    p_value: float
    p_value_adjusted: float
    chance_to_beat_control: float
    cuped: bool
    guardrail: bool
    significant: bool
    direction: str = "increase"
    rel_se: float = math.nan
    mde: float = math.nan
    segment: str | None = None
    segment_value: str | None = None

    @property
    def improved(self) -> bool:
        """Significant and in the good direction."""
        good = self.rel_effect > 0 if self.direction == "increase" else self.rel_effect < 0
        return self.significant and good

    @property
    def harmed(self) -> bool:
        """Significant and in the bad direction."""
        bad = self.rel_effect < 0 if self.direction == "increase" else self.rel_effect > 0
        return self.significant and bad

    def to_dict(self) -> dict[str, Any]:
        keys = list(_SUMMARY_KEYS)
        d = asdict(self)
        return {k: json_safe(d[k]) for k in keys}


_SUMMARY_KEYS = (
    "metric", "type", "variant", "control_n", "variant_n", "control_mean", "variant_mean",
    "abs_effect", "abs_ci_lower", "abs_ci_upper", "abs_p_value", "rel_effect", "rel_ci_lower",
    "rel_ci_upper", "p_value", "p_value_adjusted", "chance_to_beat_control", "cuped",
    "guardrail", "significant",
)  # fmt: skip


@dataclass(frozen=True)
class Decision:
    """The recommendation and the reasons behind it, in plain language."""

    recommendation: str  # "ship" | "do_not_ship" | "keep_running" | "investigate"
    reasons: tuple[str, ...]
    variant: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"recommendation": self.recommendation, "reasons": list(self.reasons)}


@dataclass(frozen=True)
class PowerResult:
    """Power of the primary metric for one variant."""

    metric: str
    variant: str
    n_per_arm: int
    mde: float  # relative effect detectable with `power` at the observed sample
    target_effect: float
    required_n_per_arm: int
    days_observed: float | None
    additional_days: int | None


@dataclass(frozen=True)
class ExperimentResult:
    """Everything `analyze_experiment` found. Render in a notebook by ending a cell with it."""

    control: str
    variants: tuple[str, ...]
    srm: st.SRMResult
    metrics: tuple[MetricResult, ...]
    decision: Decision
    power: tuple[PowerResult, ...]
    alpha: float
    correction: str
    rows: int
    warnings: tuple[dict[str, str], ...] = ()
    segments: tuple[MetricResult, ...] = ()
    cumulative: pd.DataFrame | None = field(default=None, compare=False)

    def to_pandas(self) -> pd.DataFrame:
        """The metric table, one row per metric x variant."""
        return pd.DataFrame([asdict(m) for m in self.metrics])

    def segments_to_pandas(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(m) for m in self.segments])

    def to_dict(self) -> dict[str, Any]:
        """The ``result`` object of the JSON summary (DESIGN section 5)."""
        return {
            "control": self.control,
            "srm": {
                "p_value": json_safe(self.srm.p_value),
                "mismatch": bool(self.srm.mismatch),
                "counts": dict(self.srm.counts),
            },
            "metrics": [m.to_dict() for m in self.metrics],
            "decision": self.decision.to_dict(),
        }

    def headline(self) -> str:
        """One line for an index: the primary metric's effect and the recommendation."""
        prim = [m for m in self.metrics if not m.guardrail]
        best = self.decision.variant or (prim[0].variant if prim else "")
        ms = [m for m in prim if m.variant == best] or prim
        if not ms:
            return self.decision.recommendation
        m = ms[0]
        return f"{m.variant} {m.rel_effect:+.1%} {m.metric} → {self.decision.recommendation}"

    def _repr_html_(self) -> str:
        return render_html(self)


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


def _arms_for(metric: Metric, i: int, row: pd.Series, label: str, variant: str) -> dict[str, Any]:
    """Raw sums of metric i for one arm, with the data checks that need them."""
    n = float(row[f"m{i}_n"])
    if n < 2:
        raise DataError(
            f"{label}: metric {metric.name!r} has {int(n)} usable values in variant "
            f"{variant!r}; at least 2 are needed"
        )
    if metric.type == "ratio":
        vals = tuple(float(row[f"m{i}_{k}"]) for k in ("sn", "sd", "snn", "sdd", "snd"))
        if vals[1] == 0:
            raise DataError(
                f"{label}: ratio metric {metric.name!r} has denominator column "
                f"{metric.denominator!r} summing to 0 in variant {variant!r}; the ratio is "
                "undefined"
            )
        return {"n": n, "vals": vals}
    s, ss = float(row[f"m{i}_s"]), float(row[f"m{i}_ss"])
    if metric.type == "proportion":
        lo, hi = float(row[f"m{i}_min"]), float(row[f"m{i}_max"])
        if lo < 0 or hi > 1 or not math.isclose(s, ss, rel_tol=1e-9, abs_tol=1e-9):
            raise DataError(
                f"{label}: proportion metric {metric.name!r} column {metric.column!r} has "
                f"values other than 0 and 1 (range {lo:g} to {hi:g}); use type 'mean' instead"
            )
    cov = None
    if metric.covariate:
        cov = tuple(float(row[f"m{i}_{k}"]) for k in ("sx", "sxx", "sxy"))
    return {"n": n, "s": s, "ss": ss, "cov": cov}


def _arm_stats(metric: Metric, c: dict[str, Any], t: dict[str, Any]) -> tuple[st.ArmStats, ...]:
    if metric.type == "ratio":
        return st.ratio_arm(c["n"], *c["vals"]), st.ratio_arm(t["n"], *t["vals"])
    prop = metric.type == "proportion"
    if metric.covariate:

        def pack(a: dict[str, Any]) -> tuple[float, ...]:
            sx, sxx, sxy = a["cov"]
            return (a["n"], a["s"], a["ss"], sx, sxx, sxy)

        return st.cuped_arms(pack(c), pack(t), proportion=prop)
    return (
        st.arm_from_sums(c["n"], c["s"], c["ss"], proportion=prop),
        st.arm_from_sums(t["n"], t["s"], t["ss"], proportion=prop),
    )


def _compare(
    metrics: Sequence[Metric],
    agg: pd.DataFrame,
    variant_col: str,
    control: str,
    variants: Sequence[str],
    alpha: float,
    label: str,
    power: float,
    *,
    strict: bool = True,
    segment: tuple[str, str] | None = None,
) -> list[MetricResult]:
    rows = {r[variant_col]: r for _, r in agg.iterrows()}
    out = []
    for i, m in enumerate(metrics):
        if control not in rows:
            continue
        for v in variants:
            if v not in rows:
                continue
            try:
                c_raw = _arms_for(m, i, rows[control], label, control)
                t_raw = _arms_for(m, i, rows[v], label, v)
                c, t = _arm_stats(m, c_raw, t_raw)
                if c.raw_var == 0 and t.raw_var == 0:
                    raise DataError(
                        f"{label}: metric {m.name!r} has zero variance in both {control!r} "
                        f"and {v!r} (every value is {c.raw_mean:g} / {t.raw_mean:g}); "
                        "there is nothing to test — check the column or drop the metric"
                    )
                if c.raw_mean == 0:
                    raise DataError(
                        f"{label}: metric {m.name!r} has mean 0 in the control {control!r}; "
                        "the relative effect is undefined"
                    )
            except DataError:
                if strict:
                    raise
                continue
            e = st.effect(c, t, alpha=alpha)
            sign = 1 if m.direction == "increase" else -1
            ctbc = (
                float(st.sps.norm.cdf(sign * e.rel_effect / e.rel_se)) if e.rel_se > 0 else math.nan
            )
            out.append(
                MetricResult(
                    metric=m.name,
                    type=m.type,
                    variant=v,
                    control_n=int(c.n),
                    variant_n=int(t.n),
                    control_mean=c.raw_mean,
                    variant_mean=t.raw_mean,
                    abs_effect=e.abs_effect,
                    abs_ci_lower=e.abs_ci_lower,
                    abs_ci_upper=e.abs_ci_upper,
                    abs_p_value=e.abs_p_value,
                    rel_effect=e.rel_effect,
                    rel_ci_lower=e.rel_ci_lower,
                    rel_ci_upper=e.rel_ci_upper,
                    p_value=e.p_value,
                    p_value_adjusted=e.p_value,
                    chance_to_beat_control=ctbc,
                    cuped=bool(m.covariate),
                    guardrail=m.guardrail,
                    significant=False,
                    direction=m.direction,
                    rel_se=e.rel_se,
                    mde=st.minimum_detectable_effect(e.rel_se, alpha=alpha, power=power),
                    segment=segment[0] if segment else None,
                    segment_value=segment[1] if segment else None,
                )
            )
    return out


def _apply_correction(results: list[MetricResult], method: str, alpha: float) -> list[MetricResult]:
    """Adjust p-values over the non-guardrail (metric x variant) family; guardrails keep theirs."""
    from dataclasses import replace

    family = [i for i, r in enumerate(results) if not r.guardrail]
    adj = st.adjust_pvalues([results[i].p_value for i in family], method)
    out = list(results)
    for j, i in enumerate(family):
        out[i] = replace(out[i], p_value_adjusted=float(adj[j]))
    return [replace(r, significant=bool(r.p_value_adjusted < alpha)) for r in out]


def analyze_experiment(
    source: Any,
    metrics: Iterable[Mapping[str, Any] | Metric],
    *,
    unit_col: str = "user_id",
    variant_col: str = "variant",
    control: str = "control",
    alpha: float | None = None,
    expected_shares: Mapping[str, float] | None = None,
    correction: str | None = None,
    time_col: str | None = None,
    segment_cols: Sequence[str] = (),
    target_effect: float = 0.05,
    power: float | None = None,
    table: str | None = None,
    check_units: bool = True,
) -> ExperimentResult:
    """Evaluate an A/B(/n) test: effects, SRM, multiple testing, power and a decision.

    Args:
        source: The experiment table, one row per unit (anything `aipm_nb.sources` opens).
        metrics: Metric specs (see the module docstring).
        unit_col: The randomisation unit's id column.
        variant_col: The column naming each unit's variant.
        control: Name of the control variant; every other variant is compared with it.
        alpha: Significance level (default `config.ALPHA`).
        expected_shares: Traffic split, e.g. ``{"control": 0.5, "treatment": 0.5}``; equal
            shares by default.
        correction: ``"holm"`` (default), ``"bh"`` or ``"none"``, over metric x variant
            (guardrails excluded).
        time_col: Exposure timestamp column; enables the cumulative daily effect and the
            "days needed" estimate.
        segment_cols: Columns to break every metric down by (correction applied per table).
        target_effect: Relative effect the experiment should be able to detect (power).
        power: Target power (default `config.POWER`).
        table: Table name inside a database source.
        check_units: Check that every unit has one row and one variant (an exact distinct
            count: about a third of the run time on 10M units). Turn off only for tables
            whose uniqueness the warehouse already guarantees.

    Returns:
        An `ExperimentResult`.

    Raises:
        SchemaError: a column is missing or not numeric.
        DataError: a unit in two variants or two rows, an arm with no units, a zero-variance
            metric, a non-0/1 proportion, a ratio whose denominator sums to zero.
        ParameterError: an unknown control, bad metric specs or options.
    """
    alpha = config.ALPHA if alpha is None else float(alpha)
    power = config.POWER if power is None else float(power)
    correction = correction or config.CORRECTION
    if not 0 < alpha < 1:
        raise ParameterError(f"alpha must be between 0 and 1; got {alpha}")
    if correction not in ("holm", "bh", "none"):
        raise ParameterError(f"correction must be 'holm', 'bh' or 'none'; got {correction!r}")
    if not target_effect > 0:
        raise ParameterError(
            f"target_effect must be a positive relative effect; got {target_effect}"
        )
    mets = parse_metrics(metrics)
    required = {unit_col: "any", variant_col: "any"}
    for m in mets:
        for c in m.columns:
            required[c] = "numeric"
    if time_col:
        required[time_col] = "timestamp"
    for s in segment_cols:
        required[s] = "any"
    params = {unit_col: "unit_col", variant_col: "variant_col"}
    if time_col:
        params[time_col] = "time_col"
    src = open_source(source, table=table, required=required, name="experiment",
                      allow_empty=True, parameters=params)  # fmt: skip
    t, label = src.table, src.label
    control = str(control)
    if expected_shares:
        expected_shares = {str(k): v for k, v in expected_shares.items()}
    t = t.mutate(**{variant_col: t[variant_col].cast("string")})
    float_cols = sorted({c for m in mets for c in m.columns if t[c].type().is_floating()})
    null_ids = _check_units(t, unit_col, variant_col, label, float_cols, unique=check_units)
    if null_ids:
        t = t.filter(t[unit_col].notnull())

    agg = _arm_aggregates(t, variant_col, mets)
    if agg.empty:
        raise DataError(f"{label} has no rows; expected at least one")
    null_variant = agg[variant_col].isna()
    warnings: list[dict[str, str]] = []
    if null_ids:
        warnings.append(
            {
                "code": "null_ids",
                "message": f"{null_ids:,} rows have a null {unit_col!r} and were left out",
            }
        )
    if null_variant.any():
        n_null = int(agg.loc[null_variant, "__units"].sum())
        warnings.append(
            {
                "code": "null_variant",
                "message": f"{n_null} units have no {variant_col!r} and were left out",
            }
        )
        agg = agg[~null_variant]
    counts = {str(r[variant_col]): int(r["__units"]) for _, r in agg.iterrows()}
    if control in counts:  # control first, then the variants in name order
        counts = {control: counts[control]} | {k: counts[k] for k in sorted(counts) if k != control}
    if control not in counts:
        raise ParameterError(
            f"{label}: control {control!r} is not a value of column {variant_col!r}; "
            f"variants present: {sorted(counts)}"
        )
    if expected_shares:
        empty = [v for v in expected_shares if v not in counts]
        if empty:
            raise DataError(
                f"{label}: variant(s) {empty} of expected_shares have no units in column "
                f"{variant_col!r}; variants present: {sorted(counts)}"
            )
    variants = [v for v in sorted(counts) if v != control]
    if not variants:
        raise DataError(
            f"{label}: only the control {control!r} has units; expected at least one other "
            f"variant in column {variant_col!r}"
        )
    rows = int(sum(counts.values()))
    for i, m in enumerate(mets):
        for _, r in agg.iterrows():
            dropped = int(r["__units"] - r[f"m{i}_n"])
            if dropped:
                warnings.append(
                    {
                        "code": "missing_values",
                        "message": f"metric {m.name!r}: {dropped} units in {r[variant_col]!r} have "
                        "a null/NaN value and were left out of this metric",
                    }
                )
    srm = st.srm_test(
        counts, dict(expected_shares) if expected_shares else None, alpha=config.SRM_ALPHA
    )
    results = _compare(mets, agg, variant_col, control, variants, alpha, label, power)
    results = _apply_correction(results, correction, alpha)

    segments: list[MetricResult] = []
    for s in segment_cols:
        sagg = _arm_aggregates(t, variant_col, mets, by=[s])
        seg_res: list[MetricResult] = []
        for value, g in sagg.groupby(s, dropna=False, sort=True):
            seg_res += _compare(
                mets,
                g,
                variant_col,
                control,
                variants,
                alpha,
                label,
                power,
                strict=False,
                segment=(s, str(value)),
            )
        segments += _apply_correction(seg_res, correction, alpha)

    cumulative = None
    days_observed = None
    if time_col:
        cumulative, days_observed = _cumulative(
            t, mets, variant_col, time_col, control, variants, alpha
        )
    pw = _power(results, mets, target_effect, alpha, power, days_observed)
    decision = decide(results, srm, pw, mets)
    return ExperimentResult(
        control=control,
        variants=tuple(variants),
        srm=srm,
        metrics=tuple(results),
        decision=decision,
        power=tuple(pw),
        alpha=alpha,
        correction=correction,
        rows=rows,
        warnings=tuple(warnings),
        segments=tuple(segments),
        cumulative=cumulative,
    )


def _primary(metrics: Sequence[Metric]) -> Metric:
    for m in metrics:
        if m.primary:
            return m
    for m in metrics:
        if not m.guardrail:
            return m
    return metrics[0]


def _power(
    results: Sequence[MetricResult],
    metrics: Sequence[Metric],
    target: float,
    alpha: float,
    power: float,
    days: float | None,
) -> list[PowerResult]:
    prim = _primary(metrics)
    out = []
    for r in results:
        if r.metric != prim.name:
            continue
        n = min(r.control_n, r.variant_n)
        need = st.required_sample_size(r.rel_se, n, target, alpha=alpha, power=power)
        more = None
        if days:
            rate = n / days
            more = max(0, math.ceil((need - n) / rate)) if rate > 0 else None
        out.append(PowerResult(r.metric, r.variant, n, r.mde, target, math.ceil(need), days, more))
    return out


def decide(
    results: Sequence[MetricResult],
    srm: st.SRMResult,
    power: Sequence[PowerResult],
    metrics: Sequence[Metric],
) -> Decision:
    """The recommendation, by the rules in the README (SRM > harm > win > power).

    Significance is already in the results (adjusted p < alpha), so no alpha is needed here."""
    reasons: list[str] = []
    if srm.mismatch:
        counts = ", ".join(f"{k} {v:,}" for k, v in srm.counts.items())
        return Decision(
            "investigate",
            (
                f"Sample ratio mismatch: unit counts ({counts}) are not the expected split "
                f"(chi-square p = {srm.p_value:.2g} < {config.SRM_ALPHA}). The assignment or the "
                "logging is broken, so no effect can be trusted until it is explained.",
            ),
        )
    harmed = [r for r in results if r.harmed]
    if harmed:
        for r in harmed:
            kind = "guardrail" if r.guardrail else "metric"
            reasons.append(
                f"{r.variant} harms {kind} {r.metric}: {r.rel_effect:+.2%} "
                f"(95% CI {r.rel_ci_lower:+.2%} to {r.rel_ci_upper:+.2%}, p = {r.p_value:.3g})."
            )
        return Decision("do_not_ship", tuple(reasons), harmed[0].variant)
    prim = _primary(metrics)
    wins = [r for r in results if r.metric == prim.name and r.improved]
    if wins:
        best = max(wins, key=lambda r: abs(r.rel_effect))
        reasons.append(
            f"{best.variant} improves the primary metric {best.metric} by {best.rel_effect:+.2%} "
            f"(95% CI {best.rel_ci_lower:+.2%} to {best.rel_ci_upper:+.2%}, adjusted p = "
            f"{best.p_value_adjusted:.3g})."
        )
        guards = [r for r in results if r.guardrail and r.variant == best.variant]
        if guards:
            reasons.append(
                "No guardrail is significantly harmed ("
                + ", ".join(f"{g.metric} {g.rel_effect:+.2%}" for g in guards)
                + ")."
            )
        reasons.append(f"The sample ratio matches the expected split (p = {srm.p_value:.2g}).")
        return Decision("ship", tuple(reasons), best.variant)
    under = [p for p in power if p.mde > p.target_effect]
    if under:
        p = max(under, key=lambda p: p.required_n_per_arm)
        more = (
            f" about {p.additional_days} more days at the current traffic"
            if p.additional_days is not None
            else ""
        )
        reasons.append(
            f"No significant effect on {p.metric} yet, and the test is underpowered: it can "
            f"detect {p.mde:.1%} relative change, not the {p.target_effect:.1%} target. Reaching "
            f"{p.required_n_per_arm:,} units per arm needs{more or ' more units'}."
        )
        return Decision("keep_running", tuple(reasons))
    mdes = ", ".join(f"{p.variant} {p.mde:.1%}" for p in power)
    reasons.append(
        f"No significant effect on {prim.name}, and the test had the power to detect the "
        f"{power[0].target_effect:.1%} target (detectable: {mdes}). The change does not move "
        "the primary metric."
        if power
        else f"No significant effect on {prim.name}."
    )
    return Decision("do_not_ship", tuple(reasons))


def _cumulative(
    t: ir.Table,
    metrics: Sequence[Metric],
    variant_col: str,
    time_col: str,
    control: str,
    variants: Sequence[str],
    alpha: float,
) -> tuple[pd.DataFrame, float]:
    """Cumulative effect of the primary metric by exposure day (units exposed so far)."""
    prim = _primary(metrics)
    day = t[time_col].cast("date").name("day")
    t2 = t.mutate(day=day)
    daily = _arm_aggregates(t2, variant_col, [prim], by=["day"])
    span = t.aggregate(lo=t[time_col].min(), hi=t[time_col].max()).to_pandas().iloc[0]
    days_observed = max(
        (pd.Timestamp(span.hi) - pd.Timestamp(span.lo)).total_seconds() / 86400, 1.0
    )
    daily = daily.sort_values("day")
    sums = [c for c in daily.columns if c.startswith("m0_") and not c.endswith(("_min", "_max"))]
    rows = []
    for v in [control, *variants]:
        d = daily[daily[variant_col] == v].set_index("day")[sums + ["__units"]].cumsum()
        d[variant_col] = v
        rows.append(d.reset_index())
    cum = pd.concat(rows)
    # min/max only serve the 0/1 check of proportions, already passed on the full data
    cum["m0_min"], cum["m0_max"] = 0.0, 1.0
    out = []
    for day_value, g in cum.groupby("day", sort=True):
        res = _compare([prim], g, variant_col, control, variants, alpha, "", 0.8, strict=False)
        out += [
            {
                "day": day_value,
                "variant": r.variant,
                "rel_effect": r.rel_effect,
                "rel_ci_lower": r.rel_ci_lower,
                "rel_ci_upper": r.rel_ci_upper,
                "units": r.control_n + r.variant_n,
            }
            for r in res
        ]
    return pd.DataFrame(out), days_observed


def render_html(res: ExperimentResult) -> str:
    """A compact HTML card: decision, reasons, SRM and the metric table."""
    colors = {
        "ship": "#1a7f37",
        "do_not_ship": "#cf222e",
        "keep_running": "#9a6700",
        "investigate": "#cf222e",
    }
    rec = res.decision.recommendation
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in res.decision.reasons)
    rows = []
    for m in res.metrics:
        sig = "✔" if m.significant else ""
        rows.append(
            f"<tr><td>{html.escape(m.metric)}{' (guardrail)' if m.guardrail else ''}</td>"
            f"<td>{html.escape(m.variant)}</td><td>{m.control_mean:.4g}</td>"
            f"<td>{m.variant_mean:.4g}</td><td><b>{m.rel_effect:+.2%}</b></td>"
            f"<td>{m.rel_ci_lower:+.2%} … {m.rel_ci_upper:+.2%}</td>"
            f"<td>{m.p_value:.3g}</td><td>{m.p_value_adjusted:.3g}</td>"
            f"<td>{m.chance_to_beat_control:.1%}</td><td>{sig}</td></tr>"
        )
    srm = res.srm
    srm_txt = (
        ("⚠ sample ratio mismatch" if srm.mismatch else "sample ratio OK")
        + f" (p = {srm.p_value:.3g}; "
        + ", ".join(f"{k}: {v:,}" for k, v in srm.counts.items())
        + ")"
    )
    return (
        f'<div class="aipm-result"><p style="font-size:1.2em">Recommendation: '
        f'<b style="color:{colors.get(rec, "#000")}">{rec.replace("_", " ").upper()}</b></p>'
        f"<ul>{reasons}</ul><p>{html.escape(srm_txt)}</p>"
        "<table><thead><tr><th>metric</th><th>variant</th><th>control mean</th>"
        "<th>variant mean</th><th>rel. effect</th><th>95% CI</th><th>p</th>"
        f"<th>p adj. ({html.escape(res.correction)})</th><th>chance to beat control</th>"
        f"<th>significant</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
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


def summary_markdown(res: ExperimentResult) -> str:
    """The executive summary: the decision, why, and the headline numbers, in Markdown."""
    label = res.decision.recommendation.replace("_", " ").upper()
    variant = f" — {md(res.decision.variant)}" if res.decision.variant else ""
    lines = [f"### Recommendation: {label}{variant}", ""]
    lines += [f"- {md(r)}" for r in res.decision.reasons]
    lines += [
        "",
        "| metric | variant | relative effect | 95% CI | adjusted p | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for m in res.metrics:
        verdict = "better" if m.improved else "worse" if m.harmed else "no significant change"
        name = md(m.metric) + (" (guardrail)" if m.guardrail else "")
        lines.append(
            f"| {name} | {md(m.variant)} | **{m.rel_effect:+.2%}** | {m.rel_ci_lower:+.2%} to "
            f"{m.rel_ci_upper:+.2%} | {m.p_value_adjusted:.3g} | {verdict} |"
        )
    n = ", ".join(f"{md(k)}: {v:,}" for k, v in res.srm.counts.items())
    lines += [
        "",
        f"{res.rows:,} units ({n}); α = {res.alpha}, {res.correction} correction over "
        f"{sum(not m.guardrail for m in res.metrics)} tests.",
    ]
    return "\n".join(lines)


def metric_table(res: ExperimentResult, *, segments: bool = False) -> pd.DataFrame:
    """The metric (or segment) table formatted for reading: percentages and rounded p-values."""
    rows = res.segments if segments else res.metrics
    out = []
    for m in rows:
        r = {}
        if segments:
            r[m.segment or "segment"] = m.segment_value
        r |= {
            "metric": m.metric
            + (" (guardrail)" if m.guardrail else "")
            + (" (CUPED)" if m.cuped else ""),
            "variant": m.variant,
            "control n": f"{m.control_n:,}",
            "variant n": f"{m.variant_n:,}",
            "control mean": f"{m.control_mean:.4g}",
            "variant mean": f"{m.variant_mean:.4g}",
            "abs. effect": f"{m.abs_effect:+.4g}",
            "rel. effect": f"{m.rel_effect:+.2%}",
            "95% CI": f"{m.rel_ci_lower:+.2%} to {m.rel_ci_upper:+.2%}",
            "p": f"{m.p_value:.3g}",
            "adj. p": f"{m.p_value_adjusted:.3g}",
            "P(beat control)": f"{m.chance_to_beat_control:.1%}",
            "significant": "yes" if m.significant else "no",
        }
        out.append(r)
    df = pd.DataFrame(out)
    if df.empty:
        return df
    return df.set_index([m.segment or "segment", "metric"] if segments else "metric")


def power_table(res: ExperimentResult) -> pd.DataFrame:
    """Power of the primary metric: detectable effect now, units and days to the target."""
    return pd.DataFrame(
        [
            {
                "metric": p.metric,
                "variant": p.variant,
                "units per arm": f"{p.n_per_arm:,}",
                "detectable effect (80% power)": f"{p.mde:.2%}",
                "target effect": f"{p.target_effect:.2%}",
                "units per arm for target": f"{p.required_n_per_arm:,}",
                "more days needed": "—" if p.additional_days is None else str(p.additional_days),
            }
            for p in res.power
        ]
    ).set_index("metric")
