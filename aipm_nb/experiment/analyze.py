"""Effects, multiple-testing correction, power and the cumulative effect: `analyze_experiment`.

Spec → engine sums → stats → result: `parse_metrics` reads the specs, `engine_sums` computes every
metric's declared sums per arm in one query, `aipm_nb.stats` turns two arms' sums into an effect,
and `ExperimentResult` carries the rest (its ``primary_metric`` is what every consumer reads).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import ibis.expr.types as ir
import pandas as pd

from aipm_nb import config
from aipm_nb import stats as st
from aipm_nb.errors import DataError, EmptyTableError, ParameterError
from aipm_nb.experiment.aggregate import ArmSums, MetricSums, _check_units, engine_sums
from aipm_nb.experiment.decision import decide
from aipm_nb.experiment.results import Decision, ExperimentResult, MetricResult, PowerResult
from aipm_nb.experiment.spec import Metric, parse_metrics, primary_metric
from aipm_nb.results import NULL_SEGMENT, warning
from aipm_nb.sources import open_source
from aipm_nb.validation import check_scalar

__all__ = ["analyze_experiment", "evaluate_arms"]

CORRECTIONS = ("holm", "bh", "none")


@dataclass(frozen=True)
class _Plan:
    """What one comparison needs besides the sums."""

    control: str
    variants: tuple[str, ...]
    alpha: float
    power: float
    label: str
    shifts: Mapping[str, float] = field(default_factory=dict)  # of engine_sums
    correction: str = "holm"
    min_units: int = 200  # below this per arm the verdict uses the absolute (Welch) test


def _check_arm(metric: Metric, s: MetricSums, label: str, variant: str) -> None:
    """The data checks that need an arm's sums."""
    n = s.y.n
    if n < 2:
        raise DataError(
            f"{label}: metric {metric.name!r} has {int(n)} usable values in variant "
            f"{variant!r}; at least 2 are needed",
            table=label,
            column=metric.y,
            count=int(n),
        )
    if metric.type == "ratio" and s.x is not None and s.x.total == 0:
        raise DataError(
            f"{label}: ratio metric {metric.name!r} has denominator column "
            f"{metric.denominator!r} summing to 0 in variant {variant!r}; the ratio is undefined",
            table=label,
            column=metric.denominator,
        )
    if metric.type == "proportion":
        binary = math.isclose(s.y.total, s.y.total_sq, rel_tol=1e-9, abs_tol=1e-9)
        if s.lo < 0 or s.hi > 1 or not binary:
            raise DataError(
                f"{label}: proportion metric {metric.name!r} column {metric.column!r} has "
                f"values other than 0 and 1 (range {s.lo:g} to {s.hi:g}); use type 'mean' instead",
                table=label,
                column=metric.column,
            )


def _arm_stats(metric: Metric, c: MetricSums, t: MetricSums) -> tuple[st.ArmStats, st.ArmStats]:
    if metric.type == "ratio":
        return st.ratio_arm(c.paired()), st.ratio_arm(t.paired())
    prop = metric.type == "proportion"
    if metric.covariate:
        return st.cuped_arms(c.paired(), t.paired(), proportion=prop)
    return st.mean_arm(c.y, proportion=prop), st.mean_arm(t.y, proportion=prop)


def _comparison(
    m: Metric, c: st.ArmStats, t: st.ArmStats, variant: str, plan: _Plan
) -> tuple[st.Effect, float]:
    """The effect of one metric in one variant, with the checks on both arms together."""
    if c.raw_var == 0 and t.raw_var == 0:
        raise DataError(
            f"{plan.label}: metric {m.name!r} has zero variance in both {plan.control!r} and "
            f"{variant!r} (every value is {c.raw_mean:g} / {t.raw_mean:g}); there is nothing "
            "to test — check the column or drop the metric",
            table=plan.label,
            column=m.y,
        )
    if c.raw_mean == 0:
        raise DataError(
            f"{plan.label}: metric {m.name!r} has mean 0 in the control {plan.control!r}; the "
            "relative effect is undefined",
            table=plan.label,
            column=m.y,
        )
    e = st.effect(c, t, alpha=plan.alpha, direction=m.direction)
    return e, st.minimum_detectable_effect(e.rel_se, alpha=plan.alpha, power=plan.power)


def _compare(
    metrics: Sequence[Metric],
    sums: Mapping[str, ArmSums],
    plan: _Plan,
    *,
    strict: bool = True,
    segment: tuple[str, str] | None = None,
) -> list[MetricResult]:
    """Every metric x variant against the control; a failing check raises when ``strict``,
    else that comparison is left out (segments, days).
    """
    if plan.control not in sums:
        return []
    out = []
    for i, m in enumerate(metrics):
        for v in plan.variants:
            if v not in sums:
                continue
            cs, ts = sums[plan.control].metrics[i], sums[v].metrics[i]
            try:
                _check_arm(m, cs, plan.label, plan.control)
                _check_arm(m, ts, plan.label, v)
                c, t = _arm_stats(m, cs, ts)
                e, mde = _comparison(m, c, t, v, plan)
            except DataError:
                if strict:
                    raise
                continue
            small = min(c.n, t.n) < plan.min_units
            out.append(_metric_result(m, v, c, t, e, mde, segment, small))
    return out


def _metric_result(
    m: Metric,
    variant: str,
    c: st.ArmStats,
    t: st.ArmStats,
    e: st.Effect,
    mde: float,
    segment: tuple[str, str] | None,
    small_sample: bool = False,
) -> MetricResult:
    shared = {k: v for k, v in e._asdict().items() if k in MetricResult.__dataclass_fields__}
    return MetricResult(
        **shared,
        metric=m.name,
        type=m.type,
        variant=variant,
        control_n=int(c.n),
        variant_n=int(t.n),
        control_mean=c.raw_mean,
        variant_mean=t.raw_mean,
        p_value_adjusted=e.p_value,
        cuped=bool(m.covariate),
        guardrail=m.guardrail,
        significant=False,
        direction=m.direction,
        mde=mde,
        segment=segment[0] if segment else None,
        segment_value=segment[1] if segment else None,
        small_sample=small_sample,
    )


def _apply_correction(results: list[MetricResult], method: str, alpha: float) -> list[MetricResult]:
    """Adjust p-values over the non-guardrail (metric x variant) family; guardrails keep theirs.

    The p-value of a comparison is its relative effect's, or with fewer than ``min_units_per_arm``
    units in an arm the Welch test of the absolute effect (the delta-method relative test is
    liberal there: DESIGN section 4).
    """
    results = [
        r if not r.small_sample else replace(r, p_value_adjusted=r.abs_p_value) for r in results
    ]
    family = [i for i, r in enumerate(results) if not r.guardrail]
    adj = st.adjust_pvalues([results[i].verdict_p_value for i in family], method)
    out = list(results)
    for j, i in enumerate(family):
        out[i] = replace(out[i], p_value_adjusted=float(adj[j]))
    return [replace(r, significant=bool(r.p_value_adjusted < alpha)) for r in out]


def evaluate_arms(
    arms: Mapping[str, ArmSums],
    metrics: Sequence[Metric],
    plan: _Plan,
    *,
    expected_shares: Mapping[str, float] | None = None,
    target_effect: float = 0.05,
    days: float | None = None,
) -> tuple[list[MetricResult], st.SRMResult, list[PowerResult], Decision]:
    """Everything after the engine: effects, correction, SRM, power and the decision, from the
    arms' sums (control first). The A/A simulations call this with sums made in numpy.
    """
    counts = {v: a.units for v, a in arms.items()}
    srm = st.srm_test(counts, dict(expected_shares) if expected_shares else None)
    results = _apply_correction(_compare(metrics, arms, plan), plan.correction, plan.alpha)
    pw = _power(results, primary_metric(metrics), target_effect, plan, days)
    return results, srm, pw, decide(results, srm, pw, metrics, alpha=plan.alpha)


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
    min_units_per_arm: int | None = None,
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
        min_units_per_arm: Below this many units in an arm (default
            `config.MIN_UNITS_PER_ARM`, 200) the relative CI is flagged approximate and
            significance comes from the Welch test of the absolute effect, which holds its
            false-positive rate at small n (README, "Small samples").

    Returns:
        An `ExperimentResult`.

    Raises:
        SchemaError: a column is missing or not numeric.
        DataError: a unit in two variants or two rows, an arm with no units, a zero-variance
            metric, a non-0/1 proportion, a ratio whose denominator sums to zero.
        ParameterError: an unknown control, bad metric specs or options.
    """
    alpha = check_scalar(
        config.ALPHA if alpha is None else alpha,
        "alpha",
        typ=float,
        gt=0,
        lt=1,
        hint="e.g. alpha=0.05",
    )
    power = check_scalar(config.POWER if power is None else power, "power", typ=float, gt=0, lt=1)
    correction = check_scalar(correction or config.CORRECTION, "correction", one_of=CORRECTIONS)
    check_scalar(
        target_effect,
        "target_effect",
        typ=float,
        gt=0,
        hint="a relative effect such as 0.05 for 5%",
    )
    min_units_per_arm = check_scalar(
        config.MIN_UNITS_PER_ARM if min_units_per_arm is None else min_units_per_arm,
        "min_units_per_arm",
        typ=int,
        ge=2,
    )
    mets = parse_metrics(metrics)
    t, label = _open_experiment(source, table, mets, unit_col, variant_col, time_col, segment_cols)
    shares = {str(k): v for k, v in expected_shares.items()} if expected_shares else None
    float_cols = sorted({c for m in mets for c in m.columns if t[c].type().is_floating()})
    centre_cols = sorted(
        {m.y for m in mets if m.type != "proportion"} | {m.covariate for m in mets if m.covariate}
    )
    null_ids, shifts = _check_units(
        t, unit_col, variant_col, label, float_cols, unique=check_units, centre_cols=centre_cols
    )
    warnings = []
    if null_ids:
        t = t.filter(t[unit_col].notnull())
        warnings.append(
            warning("null_ids", f"{null_ids:,} rows have a null {unit_col!r} and were left out")
        )
    sums = engine_sums(t, variant_col, mets, shifts=shifts)
    arms, more = _arms(sums, mets, label, variant_col, str(control), shares)
    warnings += more
    variants = tuple(a for a in arms if a != str(control))
    plan = _Plan(
        str(control),
        variants,
        float(alpha),
        float(power),
        label,
        shifts,
        str(correction),
        int(min_units_per_arm),
    )
    cumulative, days = (None, None)
    if time_col:
        cumulative, days = _cumulative(t, primary_metric(mets), variant_col, time_col, plan)
    results, srm, pw, decision = evaluate_arms(
        arms, mets, plan, expected_shares=shares, target_effect=target_effect, days=days
    )
    warnings += _small_sample_warnings(results, plan)
    segments = [r for s in segment_cols for r in _segment(t, mets, variant_col, s, plan)]
    return ExperimentResult(
        control=plan.control,
        variants=plan.variants,
        srm=srm,
        metrics=tuple(results),
        decision=decision,
        power=tuple(pw),
        alpha=plan.alpha,
        correction=str(correction),
        rows=int(sum(a.units for a in arms.values())),
        warnings=tuple(warnings),
        segments=tuple(segments),
        cumulative=cumulative,
        primary_metric=primary_metric(mets).name,
        target_power=plan.power,
    )


def _small_sample_warnings(results: Sequence[MetricResult], plan: _Plan) -> list[dict[str, str]]:
    small = sorted({r.variant for r in results if r.small_sample})
    if not small:
        return []
    arms = ", ".join(map(repr, small))
    msg = (
        f"fewer than {plan.min_units} units in {plan.control!r} or {arms}: the relative CIs "
        "are approximate, and significance comes from the Welch test of the absolute effect "
        "(min_units_per_arm= sets the limit)"
    )
    return [warning("small_sample", msg)]


def _open_experiment(
    source: Any,
    table: str | None,
    mets: Sequence[Metric],
    unit_col: str,
    variant_col: str,
    time_col: str | None,
    segment_cols: Sequence[str],
) -> tuple[ir.Table, str]:
    """The experiment table with every needed column checked; the variant as text."""
    required = {unit_col: "any", variant_col: "any"}
    required |= {c: "numeric" for m in mets for c in m.columns}
    if time_col:
        required[time_col] = "timestamp"
    required |= {s: "any" for s in segment_cols}
    params = {unit_col: "unit_col", variant_col: "variant_col"}
    if time_col:
        params[time_col] = "time_col"
    src = open_source(
        source,
        table=table,
        required=required,
        name="experiment",
        allow_empty=True,
        parameters=params,
    )
    t = src.table
    return t.mutate(**{variant_col: t[variant_col].cast("string")}), src.label


def _arms(
    sums: Mapping[tuple[Any, ...], ArmSums],
    mets: Sequence[Metric],
    label: str,
    variant_col: str,
    control: str,
    shares: Mapping[str, float] | None,
) -> tuple[dict[str, ArmSums], list[dict[str, str]]]:
    """The arms (control first, then variants by name), checked, with their warnings."""
    if not sums:
        raise EmptyTableError(f"{label} has no rows; expected at least one", table=label)
    warnings = []
    n_null = sum(a.units for k, a in sums.items() if k[0] is None)
    if n_null:
        warnings.append(
            warning("null_variant", f"{n_null} units have no {variant_col!r} and were left out")
        )
    named = {str(k[0]): a for k, a in sums.items() if k[0] is not None}
    if control not in named:
        raise ParameterError(
            f"{label}: control {control!r} is not a value of column {variant_col!r}; "
            f"variants present: {sorted(named)}"
        )
    arms = {control: named[control]} | {k: named[k] for k in sorted(named) if k != control}
    if shares:
        empty = [v for v in shares if v not in arms]
        if empty:
            raise DataError(
                f"{label}: variant(s) {empty} of expected_shares have no units in column "
                f"{variant_col!r}; variants present: {sorted(arms)}",
                table=label,
                column=variant_col,
                examples=empty,
            )
    if len(arms) < 2:
        raise DataError(
            f"{label}: only the control {control!r} has units; expected at least one other "
            f"variant in column {variant_col!r}",
            table=label,
            column=variant_col,
        )
    for i, m in enumerate(mets):
        for v, a in arms.items():
            dropped = int(a.units - a.metrics[i].y.n)
            if dropped:
                msg = (
                    f"metric {m.name!r}: {dropped} units in {v!r} have a null/NaN value and "
                    "were left out of this metric"
                )
                warnings.append(warning("missing_values", msg))
    return arms, warnings


def _segment(
    t: ir.Table, mets: Sequence[Metric], variant_col: str, segment_col: str, plan: _Plan
) -> list[MetricResult]:
    """Every metric within each value of one segment column (correction within the table)."""
    by_value: dict[str, dict[str, ArmSums]] = {}
    by_segment = engine_sums(t, variant_col, mets, by=[segment_col], shifts=plan.shifts)
    for (v, value), a in by_segment.items():
        if v is not None:  # a null segment value is its own group, as in cohorts
            by_value.setdefault(NULL_SEGMENT if value is None else str(value), {})[str(v)] = a
    res: list[MetricResult] = []
    for value in sorted(by_value):
        res += _compare(mets, by_value[value], plan, strict=False, segment=(segment_col, value))
    return _apply_correction(res, plan.correction, plan.alpha)


def _power(
    results: Sequence[MetricResult],
    prim: Metric,
    target: float,
    plan: _Plan,
    days: float | None,
) -> list[PowerResult]:
    out = []
    for r in results:
        if r.metric != prim.name:
            continue
        n = min(r.control_n, r.variant_n)
        need = st.required_sample_size(r.rel_se, n, target, alpha=plan.alpha, power=plan.power)
        more = None
        if days:
            rate = n / days
            more = max(0, math.ceil((need - n) / rate)) if rate > 0 else None
        out.append(
            PowerResult(
                r.metric,
                r.variant,
                n,
                r.mde,
                target,
                math.ceil(need),
                days,
                more,
                power=plan.power,
                alpha=plan.alpha,
            )
        )
    return out


def _cumulative(
    t: ir.Table, prim: Metric, variant_col: str, time_col: str, plan: _Plan
) -> tuple[pd.DataFrame, float]:
    """Cumulative effect of the primary metric by exposure day (units exposed so far)."""
    day = t[time_col].cast("date").name("day")
    daily = engine_sums(t.mutate(day=day), variant_col, [prim], by=["day"], shifts=plan.shifts)
    span = t.aggregate(lo=t[time_col].min(), hi=t[time_col].max()).to_pandas().iloc[0]
    days_observed = max(
        (pd.Timestamp(span.hi) - pd.Timestamp(span.lo)).total_seconds() / 86400, 1.0
    )
    days = sorted({d for (_, d) in daily if d is not None})
    so_far: dict[str, ArmSums] = {}
    out = []
    for d in days:
        for v in [plan.control, *plan.variants]:
            if (v, d) in daily:
                so_far[v] = so_far[v] + daily[(v, d)] if v in so_far else daily[(v, d)]
        for r in _compare([prim], so_far, plan, strict=False):
            out.append(
                {
                    "day": d,
                    "variant": r.variant,
                    "rel_effect": r.rel_effect,
                    "rel_ci_lower": r.rel_ci_lower,
                    "rel_ci_upper": r.rel_ci_upper,
                    "units": r.control_n + r.variant_n,
                }
            )
    return pd.DataFrame(out), days_observed
