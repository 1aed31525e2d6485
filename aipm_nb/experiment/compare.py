"""Two arms' sums to effects, corrections, power and the decision: the part of an A/B test
evaluation after the engine (`evaluate_arms`), shared by `analyze_experiment` and the A/A
simulations.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from aipm_nb import stats as st
from aipm_nb.errors import DataError
from aipm_nb.experiment.aggregate import ArmSums, MetricSums
from aipm_nb.experiment.decision import decide
from aipm_nb.experiment.results import Decision, MetricResult, PowerResult
from aipm_nb.experiment.spec import Metric, primary_metric
from aipm_nb.stats import sequential as seq

__all__ = ["Plan", "apply_correction", "compare_metrics", "evaluate_arms"]


@dataclass(frozen=True)
class Plan:
    """What one comparison needs besides the sums."""

    control: str
    variants: tuple[str, ...]
    alpha: float
    power: float
    label: str
    shifts: Mapping[str, float] = field(default_factory=dict)  # of engine_sums
    correction: str = "holm"
    min_units: int = 200  # below this per arm the verdict uses the absolute (Welch) test
    sequential: bool = False  # always-valid intervals and p-values (confidence sequences)
    sequential_tuning: float = 5000.0


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
    if metric.type == "quantile" and s.q is None:
        raise DataError(
            f"{label}: quantile metric {metric.name!r} has no engine quantiles here (quantiles "
            "do not pool over days or segments)",
            table=label,
            column=metric.y,
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
    if metric.type == "quantile":
        assert c.q is not None and t.q is not None
        return st.quantile_arm(c.y.n, *c.q), st.quantile_arm(t.y.n, *t.q)
    prop = metric.type == "proportion"
    if metric.covariate:
        return st.cuped_arms(c.paired(), t.paired(), proportion=prop)
    return st.mean_arm(c.y, proportion=prop), st.mean_arm(t.y, proportion=prop)


def _comparison(
    m: Metric, c: st.ArmStats, t: st.ArmStats, variant: str, plan: Plan
) -> tuple[st.Effect, float, float]:
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
    if not plan.sequential:
        mde = st.minimum_detectable_effect(e.rel_se, alpha=plan.alpha, power=plan.power)
        return e, mde, math.nan
    n = c.n + t.n
    harm = m.direction if m.guardrail else None
    e, ratio = seq.sequential_effect(e, n, plan.alpha, plan.sequential_tuning, harm=harm)
    mde = seq.sequential_mde(e.rel_se, n, plan.alpha, plan.sequential_tuning, plan.power)
    return e, mde, ratio


def compare_metrics(
    metrics: Sequence[Metric],
    sums: Mapping[str, ArmSums],
    plan: Plan,
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
                e, mde, ratio = _comparison(m, c, t, v, plan)
            except DataError:
                if strict:
                    raise
                continue
            small = min(c.n, t.n) < plan.min_units
            res = _metric_result(m, v, c, t, e, mde, segment, small)
            out.append(
                replace(
                    res,
                    sequential=plan.sequential,
                    sequential_width_ratio=ratio,
                    quantile=m.quantile,
                )
            )
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
        unit=m.unit,
    )


def apply_correction(results: list[MetricResult], method: str, alpha: float) -> list[MetricResult]:
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
    plan: Plan,
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
    results = apply_correction(compare_metrics(metrics, arms, plan), plan.correction, plan.alpha)
    pw = _power(results, primary_metric(metrics), target_effect, plan, days)
    return results, srm, pw, decide(results, srm, pw, metrics, alpha=plan.alpha)


def _power(
    results: Sequence[MetricResult],
    prim: Metric,
    target: float,
    plan: Plan,
    days: float | None,
) -> list[PowerResult]:
    out = []
    for r in results:
        if r.metric != prim.name:
            continue
        n = min(r.control_n, r.variant_n)
        if plan.sequential:  # the units (of both arms) at which the sequence reaches the target
            total = seq.sequential_required_n(
                r.rel_se, r.control_n + r.variant_n, target, plan.alpha,
                plan.sequential_tuning, plan.power,
            )  # fmt: skip
            need = total * n / (r.control_n + r.variant_n)
        else:
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
