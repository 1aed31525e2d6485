"""Effects, multiple-testing correction, power and the cumulative effect: `analyze_experiment`.

Spec → engine sums → stats → result: `parse_metrics` reads the specs, `engine_sums` computes every
metric's declared sums per arm in one query, `aipm_nb.stats` turns two arms' sums into an effect,
and `ExperimentResult` carries the rest (its ``primary_metric`` is what every consumer reads).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import ibis.expr.types as ir
import pandas as pd

from aipm_nb import config
from aipm_nb.errors import DataError, EmptyTableError, ParameterError
from aipm_nb.experiment.aggregate import ArmSums, checked_sums, engine_sums, with_quantiles
from aipm_nb.experiment.compare import Plan, apply_correction, compare_metrics, evaluate_arms
from aipm_nb.experiment.results import ExperimentResult, MetricResult
from aipm_nb.experiment.spec import Metric, parse_metrics, primary_metric
from aipm_nb.results import NULL_SEGMENT, warning
from aipm_nb.sources import open_source
from aipm_nb.validation import check_scalar

__all__ = ["analyze_experiment"]

CORRECTIONS = ("holm", "bh", "none")


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
    sequential: bool = False,
    sequential_tuning: float = 5000,
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
        sequential: Always-valid results (GrowthBook's confidence sequences): the intervals
            and p-values hold however often the test is looked at and stopped; guardrails get
            one-sided bounds in their harmful direction (README, "Sequential results").
        sequential_tuning: N*, the number of units (both arms) at which the sequence is
            tightest (default 5000).

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
    check_scalar(sequential, "sequential", typ=bool)
    check_scalar(sequential_tuning, "sequential_tuning", typ=float, gt=0)
    mets = parse_metrics(metrics)
    if sequential and any(m.type == "quantile" for m in mets):
        names = [m.name for m in mets if m.type == "quantile"]
        raise ParameterError(
            f"quantile metrics {names} are not available with sequential=True (no always-valid "
            "interval for a percentile); run them without sequential or drop them"
        )
    t, label = _open_experiment(source, table, mets, unit_col, variant_col, time_col, segment_cols)
    shares = {str(k): v for k, v in expected_shares.items()} if expected_shares else None
    t, sums, shifts, null_ids = checked_sums(
        t, unit_col, variant_col, mets, label, unique=check_units
    )
    warnings = []
    if null_ids:
        warnings.append(
            warning("null_ids", f"{null_ids:,} rows have a null {unit_col!r} and were left out")
        )
    arms, more = _arms(sums, mets, label, variant_col, str(control), shares)
    arms = with_quantiles(t, variant_col, mets, arms, label)
    warnings += more
    variants = tuple(a for a in arms if a != str(control))
    plan = Plan(
        str(control),
        variants,
        float(alpha),
        float(power),
        label,
        shifts,
        str(correction),
        int(min_units_per_arm),
        bool(sequential),
        float(sequential_tuning),
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
        sequential=plan.sequential,
        sequential_tuning=plan.sequential_tuning,
    )


def _small_sample_warnings(results: Sequence[MetricResult], plan: Plan) -> list[dict[str, str]]:
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
    t: ir.Table, mets: Sequence[Metric], variant_col: str, segment_col: str, plan: Plan
) -> list[MetricResult]:
    """Every metric within each value of one segment column (correction within the table)."""
    by_value: dict[str, dict[str, ArmSums]] = {}
    by_segment = engine_sums(t, variant_col, mets, by=[segment_col], shifts=plan.shifts)
    for (v, value), a in by_segment.items():
        if v is not None:  # a null segment value is its own group, as in cohorts
            by_value.setdefault(NULL_SEGMENT if value is None else str(value), {})[str(v)] = a
    res: list[MetricResult] = []
    for value in sorted(by_value):
        res += compare_metrics(
            mets, by_value[value], plan, strict=False, segment=(segment_col, value)
        )
    return apply_correction(res, plan.correction, plan.alpha)


def _cumulative(
    t: ir.Table, prim: Metric, variant_col: str, time_col: str, plan: Plan
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
        for r in compare_metrics([prim], so_far, plan, strict=False):
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
