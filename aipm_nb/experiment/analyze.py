"""Effects, multiple-testing correction, power and the cumulative effect: `analyze_experiment`."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import ibis.expr.types as ir
import pandas as pd

from aipm_nb import config
from aipm_nb import stats as st
from aipm_nb.errors import DataError, ParameterError
from aipm_nb.experiment.aggregate import _arm_aggregates, _check_units
from aipm_nb.experiment.decision import decide
from aipm_nb.experiment.results import ExperimentResult, MetricResult, PowerResult
from aipm_nb.experiment.spec import Metric, parse_metrics, primary_metric
from aipm_nb.sources import open_source

__all__ = ["analyze_experiment"]


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


def _power(
    results: Sequence[MetricResult],
    metrics: Sequence[Metric],
    target: float,
    alpha: float,
    power: float,
    days: float | None,
) -> list[PowerResult]:
    prim = primary_metric(metrics)
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
    prim = primary_metric(metrics)
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
