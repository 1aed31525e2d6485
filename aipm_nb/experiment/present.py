"""A/B results for people: the executive summary, the HTML card and formatted tables."""

from __future__ import annotations

import pandas as pd

from aipm_nb.experiment.results import ExperimentResult, MetricResult
from aipm_nb.markup import html_text, md
from aipm_nb.tables import ci_text, format_chance, format_p

__all__ = ["metric_table", "power_table", "summary_markdown"]


def render_html(res: ExperimentResult) -> str:
    """A compact HTML card: decision, reasons, SRM and the metric table.

    Every text that comes from data or parameters is escaped.
    """
    colors = {
        "ship": "#1a7f37",
        "do_not_ship": "#cf222e",
        "keep_running": "#9a6700",
        "investigate": "#cf222e",
    }
    rec = res.decision.recommendation
    reasons = "".join(f"<li>{html_text(r)}</li>" for r in res.verdict.reasons)
    rows = []
    for m in res.metrics:
        sig = "✔" if m.significant else ""
        rows.append(
            f"<tr><td>{html_text(m.metric)}{' (guardrail)' if m.guardrail else ''}</td>"
            f"<td>{html_text(m.variant)}</td><td>{m.control_mean:.4g}</td>"
            f"<td>{m.variant_mean:.4g}</td><td><b>{m.rel_effect:+.2%}</b></td>"
            f"<td>{ci_text(m.rel_ci_lower, m.rel_ci_upper, ' … ')}</td>"
            f"<td>{format_p(m.p_value)}</td><td>{format_p(m.p_value_adjusted)}</td>"
            f"<td>{format_chance(m.chance_to_beat_control)}</td><td>{sig}</td></tr>"
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
        f"<ul>{reasons}</ul><p>{html_text(srm_txt)}</p>"
        "<table><thead><tr><th>metric</th><th>variant</th><th>control mean</th>"
        f"<th>variant mean</th><th>rel. effect</th><th>{res.ci_label}</th><th>p</th>"
        f"<th>p adj. ({html_text(res.correction)})</th><th>chance to beat control</th>"
        f"<th>significant</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def summary_markdown(res: ExperimentResult) -> str:
    """The executive summary: the decision, why, and the headline numbers, in Markdown."""
    label = res.decision.recommendation.replace("_", " ").upper()
    variant = f" — {md(res.decision.variant)}" if res.decision.variant else ""
    lines = [f"### Recommendation: {label}{variant}", ""]
    lines += [f"- {md(r)}" for r in res.verdict.reasons]
    lines += [
        "",
        f"| metric | variant | relative effect | {res.ci_label} | adjusted p | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for m in res.metrics:
        verdict = _verdict_word(m, res.correction)
        name = md(m.metric) + (" (guardrail)" if m.guardrail else "")
        lines.append(
            f"| {name} | {md(m.variant)} | **{m.rel_effect:+.2%}** | "
            f"{ci_text(m.rel_ci_lower, m.rel_ci_upper)} | {format_p(m.p_value_adjusted)} | "
            f"{verdict} |"
        )
    if res.sequential:
        ratios = [m.sequential_width_ratio for m in res.metrics if m.sequential_width_ratio > 0]
        wider = (
            f", {max(ratios):.2f}× as wide as fixed-horizon ones at this sample" if ratios else ""
        )
        lines += [
            "",
            "**Always-valid results** (sequential testing, GrowthBook's confidence sequences, "
            f"tuned for {res.sequential_tuning:,.0f} units): the intervals and p-values hold "
            "however often this report is looked at and whenever the test is stopped. The price "
            f"is width: the intervals are wider{wider}. Guardrails use a one-sided bound in "
            "their harmful direction.",
        ]
    n = ", ".join(f"{md(k)}: {v:,}" for k, v in res.srm.counts.items())
    lines += [
        "",
        f"{res.rows:,} units ({n}); α = {res.alpha}, {res.correction} correction over "
        f"{sum(not m.guardrail for m in res.metrics)} tests.",
    ]
    return "\n".join(lines)


def _verdict_word(m: MetricResult, correction: str) -> str:
    """The verdict of one row, saying when the (unadjusted) CI and the adjusted p disagree."""
    if m.improved:
        return "better"
    if m.harmed:
        return "worse"
    if not m.guardrail and correction != "none" and (m.rel_ci_lower > 0 or m.rel_ci_upper < 0):
        return f"not significant after the {correction} correction (the CI is unadjusted)"
    return "no significant change"


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
            + (" (CUPED: effect adjusted, means raw)" if m.cuped else ""),
            "variant": m.variant,
            "control n": f"{m.control_n:,}",
            "variant n": f"{m.variant_n:,}",
            "control mean": m.with_unit(m.control_mean),
            "variant mean": m.with_unit(m.variant_mean),
            "abs. effect": m.with_unit(m.abs_effect, signed=True),
            "rel. effect": f"{m.rel_effect:+.2%}",
            res.ci_label: ci_text(m.rel_ci_lower, m.rel_ci_upper),
            "p": format_p(m.p_value),
            "adj. p": format_p(m.p_value_adjusted),
            "P(beat control)": format_chance(m.chance_to_beat_control),
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
                p.label: f"{p.mde:.2%}",
                "target effect": f"{p.target_effect:.2%}",
                "units per arm for target": f"{p.required_n_per_arm:,}",
                "more days needed": "—" if p.additional_days is None else str(p.additional_days),
            }
            for p in res.power
        ]
    ).set_index("metric")
