"""LLM evaluation for people: the verdict, the executive summary, the leaderboard and charts."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from aipm_nb.markup import md
from aipm_nb.results import Verdict, ci_label

__all__ = ["leaderboard", "rating_forest", "summary_markdown", "verdict_of", "version_charts"]


def _pct(x: Any) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.1%}"


def _rating_line(r: pd.Series) -> str:
    return f"{r.model} {r.rating:.0f} (CI {r.ci_lower:.0f}–{r.ci_upper:.0f}, rank {int(r['rank'])})"


def verdict_of(res: Any) -> Verdict:
    """The head-to-head decision (ship / do_not_ship / keep_running / investigate) with the
    leader of the pairwise ratings; ``insufficient_data`` with one version.
    """
    reasons: list[str] = []
    lead = res.leader
    if lead is not None:
        tied = res.ratings[res.ratings["rank"] == 1].model.tolist()
        if len(tied) > 1:
            reasons.append(
                f"No version leads the pairwise ratings: {', '.join(tied)} share rank 1 "
                "(their intervals overlap)."
            )
        else:
            reasons.append(f"{_rating_line(lead)} leads the pairwise ratings.")
    h = res.head_to_head
    if h is None:
        return Verdict("insufficient_data", (*reasons, "Only one version: nothing to compare."))
    reasons.append(f"Head-to-head, {res.candidate} vs {res.baseline}:")
    reasons += list(h.decision.reasons)
    won = [m for m in h.metrics if m.metric == h.primary_metric and m.improved]
    if won and h.decision.recommendation != "ship":
        m = won[0]
        reasons.append(
            f"Users prefer {res.candidate} ({m.metric} {m.rel_effect:+.1%}, {ci_label(res.alpha)} "
            f"{m.rel_ci_lower:+.1%} to {m.rel_ci_upper:+.1%}), but that does not outweigh the "
            "harm above."
        )
    return Verdict(h.decision.recommendation, tuple(reasons))


def summary_markdown(res: Any) -> str:
    """Which version wins, on what, with what certainty, and what it costs."""
    lines = [res.verdict.markdown()]
    v = res.versions.set_index("version")
    label = ci_label(res.alpha)
    if res.baseline and res.candidate:
        b, c = v.loc[res.baseline], v.loc[res.candidate]
        parts = []
        if "thumbs_up_rate" in v and not math.isnan(c.thumbs_up_rate):
            parts.append(
                f"thumbs-up {_pct(c.thumbs_up_rate)} vs {_pct(b.thumbs_up_rate)} "
                f"({int(c.rated):,} and {int(b.rated):,} rated responses)"
            )
        if "latency_p95" in v:
            parts.append(f"p95 latency {c.latency_p95:,.0f} ms vs {b.latency_p95:,.0f} ms")
        if "cost_per_task" in v:
            parts.append(f"cost per task ${c.cost_per_task:.4f} vs ${b.cost_per_task:.4f}")
        if "refusal_rate" in v:
            parts.append(f"refusals {_pct(c.refusal_rate)} vs {_pct(b.refusal_rate)}")
        if parts:
            lines.append(
                f"**{md(res.candidate)} vs {md(res.baseline)}**: " + "; ".join(parts) + "."
            )
    lines.append(
        f"{res.rows:,} responses over {len(v)} versions; {res.judgements:,} pairwise judgements. "
        f"Rates carry Wilson {label}s, latency percentiles distribution-free {label}s "
        "(order statistics), ratings 95% bootstrap intervals. The head-to-head test treats each "
        "response as a unit (responses of one user are not modelled as correlated)."
    )
    return "\n\n".join(lines)


def leaderboard(res: Any) -> pd.DataFrame:
    """One row per version, best-rated first: rating with CI and rank, thumbs-up with CI and
    coverage, refusals, p95 latency with CI, cost per task (text, for display).
    """
    v = res.versions.set_index("version")
    order = [m for m in res.ratings.model if m in v.index] + [
        m for m in v.index if m not in set(res.ratings.model)
    ]
    rt = res.ratings.set_index("model") if len(res.ratings) else None
    rows = []
    for name in order:
        r = v.loc[name]
        row: dict[str, Any] = {"version": name}
        if rt is not None and name in rt.index:
            x = rt.loc[name]
            row["rating"] = f"{x.rating:.0f} [{x.ci_lower:.0f}, {x.ci_upper:.0f}]"
            row["rank"] = int(x["rank"])
        if "thumbs_up_rate" in r and not math.isnan(r.thumbs_up_rate):
            row["thumbs-up"] = (
                f"{r.thumbs_up_rate:.1%} [{r.thumbs_up_rate_ci_lower:.1%}, "
                f"{r.thumbs_up_rate_ci_upper:.1%}]"
            )
            row["rated"] = f"{int(r.rated):,} ({r.coverage:.0%})"
        if "refusal_rate" in r and not math.isnan(r.refusal_rate):
            row["refusals"] = f"{r.refusal_rate:.1%}"
        if "error_rate" in r and not math.isnan(r.error_rate):
            row["errors"] = f"{r.error_rate:.1%}"
        if "latency_p95" in r:
            lo, hi = r.get("latency_p95_ci_lower"), r.get("latency_p95_ci_upper")
            ci = "" if lo is None or math.isnan(lo) else f" [{lo:,.0f}, {hi:,.0f}]"
            row["p95 latency (ms)"] = f"{r.latency_p95:,.0f}{ci}"
            row["p50 latency (ms)"] = f"{r.latency_p50:,.0f}"
        if "cost_per_task" in r:
            row["cost per task"] = f"${r.cost_per_task:.4f}"
        row["responses"] = f"{int(r.responses):,}"
        rows.append(row)
    return pd.DataFrame(rows).set_index("version")


def rating_forest(res: Any, *, ax: Any = None) -> Any:
    """Ratings with their bootstrap CIs (best on top) and the versions' thumbs-up rates."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(1, 2, figsize=(10, 0.6 * max(len(res.versions), 2) + 1.5),
                             layout="constrained")  # fmt: skip
    axes = np.atleast_1d(ax)
    r = res.ratings.iloc[::-1]
    if len(r):
        y = np.arange(len(r))
        axes[0].errorbar(r.rating, y, xerr=[r.rating - r.ci_lower, r.ci_upper - r.rating],
                         fmt="o", capsize=4, lw=2, color="#0969da")  # fmt: skip
        axes[0].set_yticks(y, r.model)
        axes[0].axvline(1000, color="#57606a", lw=0.8, ls=":")
        axes[0].set_xlabel("Bradley–Terry rating (95% bootstrap CI)")
        axes[0].set_title("Pairwise preference ratings")
    else:
        axes[0].text(0.5, 0.5, "no pairwise judgements", ha="center", transform=axes[0].transAxes)
        axes[0].set_axis_off()
    if len(axes) > 1:
        order = [m for m in res.ratings.model if m in set(res.versions.version)]
        rest = [m for m in res.versions.version if m not in order]
        v = res.versions.set_index("version").loc[order + rest].reset_index().iloc[::-1]
        ok = v.thumbs_up_rate.notna() if "thumbs_up_rate" in v else pd.Series(False, index=v.index)
        v = v[ok]
        y = np.arange(len(v))
        axes[1].errorbar(v.thumbs_up_rate * 100, y,
                         xerr=[(v.thumbs_up_rate - v.thumbs_up_rate_ci_lower) * 100,
                               (v.thumbs_up_rate_ci_upper - v.thumbs_up_rate) * 100],
                         fmt="o", capsize=4, lw=2, color="#1a7f37")  # fmt: skip
        axes[1].set_yticks(y, v.version)
        axes[1].set_xlabel(f"thumbs-up rate (%), {ci_label(res.alpha)}")
        axes[1].set_title("User ratings")
    for a in axes:
        a.grid(axis="x", alpha=0.3)
    return axes


def version_charts(res: Any) -> Any:
    """p50 / p95 latency with their CIs and the cost per task, per version."""
    import matplotlib.pyplot as plt

    v = res.versions
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), layout="constrained")
    x = np.arange(len(v))
    if "latency_p95" in v:
        for off, q, colour in ((-0.18, "p50", "#8c959f"), (0.18, "p95", "#cf222e")):
            val = v[f"latency_{q}"]
            lo = v.get(f"latency_{q}_ci_lower", val)
            hi = v.get(f"latency_{q}_ci_upper", val)
            axes[0].bar(x + off, val, width=0.34, color=colour, label=q)
            axes[0].errorbar(x + off, val, yerr=[(val - lo).fillna(0), (hi - val).fillna(0)],
                             fmt="none", ecolor="black", capsize=3, lw=1)  # fmt: skip
        axes[0].set_xticks(x, v.version)
        axes[0].set_ylabel("latency (ms)")
        axes[0].set_title("Latency per version (95% CI)")
        axes[0].legend(frameon=False)
    else:
        axes[0].set_axis_off()
    if "cost_per_task" in v:
        axes[1].bar(x, v.cost_per_task * 1000, color="#0969da", width=0.5)
        axes[1].errorbar(x, v.cost_per_task * 1000,
                         yerr=[(v.cost_per_task - v.cost_per_task_ci_lower) * 1000,
                               (v.cost_per_task_ci_upper - v.cost_per_task) * 1000],
                         fmt="none", ecolor="black", capsize=3, lw=1)  # fmt: skip
        axes[1].set_xticks(x, v.version)
        axes[1].set_ylabel("USD per 1,000 tasks")
        axes[1].set_title("Cost per task")
    else:
        axes[1].set_axis_off()
    for a in axes:
        a.grid(axis="y", alpha=0.3)
    return fig
