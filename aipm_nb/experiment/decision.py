"""The recommendation rule: SRM > harm > win > power (README, "A/B decision")."""

from __future__ import annotations

from collections.abc import Sequence

from aipm_nb import config
from aipm_nb import stats as st
from aipm_nb.experiment.results import Decision, MetricResult, PowerResult
from aipm_nb.experiment.spec import Metric, primary_metric
from aipm_nb.results import ci_label
from aipm_nb.tables import ci_text, p_equals

__all__ = ["decide"]


def decide(
    results: Sequence[MetricResult],
    srm: st.SRMResult,
    power: Sequence[PowerResult],
    metrics: Sequence[Metric],
    *,
    alpha: float | None = None,
) -> Decision:
    """The recommendation, by the rules in the README (SRM > harm > win > power).

    Significance is already in the results (adjusted p < alpha); ``alpha`` (default
    `config.ALPHA`) only labels the intervals quoted in the reasons.
    """
    ci = ci_label(config.ALPHA if alpha is None else alpha)
    if any(r.sequential for r in results):
        ci = ci.replace("CI", "always-valid CI")
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
                f"{r.variant} harms {kind} {r.metric}: {r.rel_effect:+.2%} ({ci} "
                f"{ci_text(r.rel_ci_lower, r.rel_ci_upper)}, {p_equals(r.verdict_p_value)})."
            )
        return Decision("do_not_ship", tuple(reasons), harmed[0].variant)
    prim = primary_metric(metrics)
    wins = [r for r in results if r.metric == prim.name and r.improved]
    if wins:
        best = max(wins, key=lambda r: abs(r.rel_effect))
        reasons.append(
            f"{best.variant} improves the primary metric {best.metric} by {best.rel_effect:+.2%} "
            f"({ci} {ci_text(best.rel_ci_lower, best.rel_ci_upper)}, "
            f"{p_equals(best.p_value_adjusted, 'adjusted p')})."
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
