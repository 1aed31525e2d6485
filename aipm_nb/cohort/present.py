"""Cohort results for people: the executive summary and formatted tables."""

from __future__ import annotations

import math

import pandas as pd

from aipm_nb.cohort.retention import CohortResult
from aipm_nb.cohort.segments import RetentionComparison
from aipm_nb.markup import html_text, md
from aipm_nb.results import ci_label
from aipm_nb.tables import p_equals

__all__ = ["summary_markdown"]


def _fmt_pct(v: float) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.0%}"


def summary_markdown(
    res: CohortResult, comparison: RetentionComparison | None = None, *, k: int | None = None
) -> str:
    """Executive summary: the verdict (recent cohorts against earlier ones, with its CI),
    retention at period k with its CI, and the segment difference if a comparison is given.
    Every comparison is stated as a difference only when its test is significant at alpha.
    """
    avg = res.average
    if k is None:
        k = 4 if res.max_periods >= 4 and not math.isnan(avg.retention.get(4, math.nan)) else 1
    k = min(k, res.max_periods)
    unit = res.period
    lines = [res.verdict.markdown()]
    r = avg.retention[k]
    if math.isnan(r):
        lines.append(f"No cohort has a complete {unit} {k} yet.")
    else:
        half = (avg.ci_upper[k] - avg.ci_lower[k]) / 2
        lines.append(
            f"**{unit.capitalize()}-{k} retention is {r:.0%}** (±{half * 100:.0f} pts, "
            f"{ci_label(res.alpha)}; "
            f"{res.retention_type!r} retention over {int(avg.users[k]):,} users of the cohorts "
            f"with a complete {unit} {k})."
        )
    if comparison is not None and len(comparison.results) == 2:
        tests = comparison.tests.set_index("k")
        kk = k if k in tests.index else (tests.index[0] if len(tests) else None)
        if kk is not None and "diff" in tests.columns and not math.isnan(tests["diff"][kk]):
            a, b = list(comparison.results)
            d = tests.loc[kk]
            ci = (
                f"{ci_label(res.alpha)} {d.ci_lower * 100:+.0f} to {d.ci_upper * 100:+.0f} pts,"
                f" {p_equals(d.p_value)}"
            )
            if comparison.segment.startswith("adopted "):
                x, y = f"Adopters of {md(comparison.segment[8:])}", "non-adopters"
            else:
                x, y = f"{md(comparison.segment)}: {md(a)}", md(b)
            if d.p_value < res.alpha:
                word = "better" if d["diff"] > 0 else "worse"
                lines.append(
                    f"**{x} retain {abs(d['diff']) * 100:.0f} pts {word} than {y}** at {unit} "
                    f"{kk} ({ci})."
                )
            else:
                lines.append(
                    f"{x} and {y}: no detectable difference at {unit} {kk} "
                    f"({d['diff'] * 100:+.0f} pts, {ci})."
                )
    elif comparison is not None:
        tests = comparison.tests.set_index("k")
        if k in tests.index:
            curves = comparison.curves[comparison.curves.k == k].dropna(subset=["retention"])
            best = curves.sort_values("retention")
            if len(best) and tests.p_value[k] < res.alpha:
                lines.append(
                    f"By {md(comparison.segment)} at {unit} {k}: best {md(best.segment.iloc[-1])} "
                    f"({best.retention.iloc[-1]:.0%}), worst {md(best.segment.iloc[0])} "
                    f"({best.retention.iloc[0]:.0%}); chi-square {p_equals(tests.p_value[k])}."
                )
            elif len(best):
                lines.append(
                    f"By {md(comparison.segment)} at {unit} {k}: no detectable difference "
                    f"between segments (chi-square {p_equals(tests.p_value[k])})."
                )
    lines.append(
        f"{res.users:,} users in {len(res.cohorts)} "
        f"{ {'day': 'daily', 'week': 'weekly', 'month': 'monthly'}[unit] } cohorts; periods in "
        f"{md(res.timezone)}; cells ending after {res.as_of:%Y-%m-%d %H:%M} are incomplete "
        "(hatched in the heatmap, blank in tables)."
    )
    return "\n\n".join(lines)


def retention_table(res: CohortResult) -> pd.DataFrame:
    """The retention matrix as text for reading: percentages, blank where incomplete."""
    out = res.retention.map(_fmt_pct)
    out.columns = [f"{res.period[0]}{k}" for k in out.columns]
    out.insert(0, "users", res.cohorts["size"].map("{:,}".format).to_numpy())
    out.index = out.index.strftime("%Y-%m-%d")
    return out


def matrix_html(res: CohortResult) -> str:
    return (
        f"<p><b>{html_text(res.retention_type)}</b> retention by {html_text(res.period)} "
        f"cohort ({len(res.cohorts)} cohorts, {res.users:,} users)</p>"
        + retention_table(res).to_html()
    )
