"""Funnels for people: the verdict, the executive summary, tables and charts."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from aipm_nb.funnel.engine import TIME_BINS_PER_DECADE
from aipm_nb.funnel.spec import window_text
from aipm_nb.markup import md
from aipm_nb.results import Verdict, ci_label
from aipm_nb.tables import format_p, p_equals

__all__ = [
    "breakdown_chart",
    "breakdown_table",
    "duration_text",
    "funnel_chart",
    "step_table",
    "summary_markdown",
    "time_to_convert_chart",
    "verdict_of",
]

#: Fewer users than this entering the funnel: no verdict beyond "insufficient_data".
MIN_USERS = 20


def duration_text(seconds: float) -> str:
    """A duration in the unit a reader expects.

    Examples:
        >>> duration_text(42), duration_text(1830), duration_text(18000), duration_text(216000)
        ('42 s', '30.5 min', '5.0 h', '2.5 days')
        >>> duration_text(float("nan"))
        '–'
    """
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "–"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _pct(x: float) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.1%}"


def _differences(res: Any) -> list[str]:
    """Plain sentences for each significant difference between groups or arms."""
    out = []
    tests = res.step_tests
    if len(tests):
        sig = tests[tests.p_value_adjusted < res.alpha].sort_values("p_value_adjusted")
        g = res.breakdown
        for _, t in sig.iterrows():
            rates = g[g["index"] == t["index"]].set_index("group").conversion_from_previous
            lo, hi = rates.idxmin(), rates.idxmax()
            prev = res.steps.step.iloc[int(t["index"]) - 2]
            out.append(
                f"Step {int(t['index'])} ({t.step}) differs by {res.breakdown_col}: {lo} reaches "
                f"it from {prev} {_pct(rates[lo])} of the time vs {_pct(rates[hi])} for {hi} "
                f"(chi-square {p_equals(t.p_value_adjusted)}, Holm over {len(tests)} steps)."
            )
    if res.arms is not None:
        for m in res.arms.metrics:
            if m.significant:
                out.append(
                    f"{m.variant} vs {res.arms.control}: {m.metric.split('. ', 1)[-1]} reached by "
                    f"{_pct(m.variant_mean)} vs {_pct(m.control_mean)} of exposed units "
                    f"({m.abs_effect * 100:+.1f} pts, "
                    f"{p_equals(m.p_value_adjusted, 'Holm-adjusted p')})."
                )
    return out


def verdict_of(res: Any) -> Verdict:
    """``differs`` when a breakdown group or an experiment arm converts differently at some step
    (Holm-adjusted), ``no_difference`` when groups or arms were compared and none differs,
    ``measured`` without a comparison, ``insufficient_data`` below `MIN_USERS` entering users.
    """
    if res.users < MIN_USERS:
        return Verdict(
            "insufficient_data",
            (
                f"Only {res.users} users entered the funnel with a complete window; at least "
                f"{MIN_USERS} are needed.",
            ),  # fmt: skip
        )
    head = (
        f"{_pct(res.end_to_end_conversion)} of {res.users:,} users went from "
        f"{res.steps.step.iloc[0]} to {res.steps.step.iloc[-1]} within "
        f"{window_text(res.window_seconds)}."
    )
    diffs = _differences(res)
    if diffs:
        return Verdict("differs", (*diffs, head))
    compared = []
    if res.breakdown_col and len(res.step_tests):
        compared.append(f"the {res.breakdown_col} groups")
    if res.arms is not None:
        compared.append("the experiment arms")
    if compared:
        return Verdict(
            "no_difference",
            (f"No detectable difference between {' or '.join(compared)} at any step.", head),
        )
    return Verdict("measured", (head,))


def summary_markdown(res: Any) -> str:
    """End-to-end conversion with its CI, the biggest drop-off, the fastest and slowest step,
    what differs, and who was left out.
    """
    lines = [res.verdict.markdown()]
    s = res.steps
    if res.users:
        last = s.iloc[-1]
        lines.append(
            f"**End to end: {_pct(last.conversion_from_start)} ({ci_label(res.alpha)} "
            f"{_pct(last.ci_lower)} to {_pct(last.ci_upper)}) of {res.users:,} users reached "
            f"{md(last.step)} within {window_text(res.window_seconds)} of {md(s.step.iloc[0])}.**"
        )
    drop = res.biggest_drop
    if drop is not None:
        prev = s.step.iloc[int(drop["index"]) - 2]
        lines.append(
            f"Biggest drop-off: {md(prev)} → {md(drop.step)} loses {_pct(drop.drop_off_rate)} of "
            f"the users who got to {md(prev)} ({int(drop.drop_off):,} users)."
        )
    timed = s.iloc[1:][s.median_seconds.iloc[1:].notna()]
    if len(timed) >= 2:
        fast = timed.loc[timed.median_seconds.idxmin()]
        slow = timed.loc[timed.median_seconds.idxmax()]
        lines.append(
            f"Fastest step: {md(fast.step)} (median {duration_text(fast.median_seconds)} after the "
            f"step before); slowest: {md(slow.step)} (median "
            f"{duration_text(slow.median_seconds)})."
        )
    if res.too_recent:
        lines.append(
            f"{res.too_recent:,} users entered less than {window_text(res.window_seconds)} before "
            f"{res.as_of:%Y-%m-%d %H:%M} and are left out: their window is still open, so they "
            "would otherwise count as drop-off."
        )
    lines.append(
        f"*{res.order.capitalize()} funnel over {res.rows:,} events; conversion rates carry "
        f"Wilson {ci_label(res.alpha)}s; a user counts once, at the furthest step of their best "
        "attempt.*"
    )
    return "\n\n".join(lines)


def step_table(res: Any) -> pd.DataFrame:
    """One row per step: users, % of start (with CI), % of previous, drop-off, median and mean
    time from the previous step (text, for display).
    """
    s = res.steps
    label = ci_label(res.alpha)
    rows = []
    for _, r in s.iterrows():
        first = r["index"] == 1
        rows.append(
            {
                "step": f"{int(r['index'])}. {r.step}",
                "users": f"{int(r['count']):,}",
                "% of start": f"{_pct(r.conversion_from_start)}"
                + ("" if first else f" [{_pct(r.ci_lower)}, {_pct(r.ci_upper)}]"),
                "% of previous": "" if first else _pct(r.conversion_from_previous),
                "lost since previous": "" if first else f"{int(r.drop_off):,}",
                "median time": "" if first else duration_text(r.median_seconds),
                "mean time": "" if first else duration_text(r.mean_seconds),
            }
        )
    out = pd.DataFrame(rows).set_index("step")
    return out.rename(columns={"% of start": f"% of start [{label}]"})


def breakdown_table(res: Any) -> pd.DataFrame:
    """One row per group: users entering, % of previous at each later step, end to end with its
    CI; the last row gives the chi-square p-value of each step across the groups (Holm).
    """
    g = res.breakdown
    if g.empty:
        return pd.DataFrame()
    rows = []
    for name, part in g.groupby("group", sort=False):
        part = part.set_index("index")
        last = part.iloc[-1]
        row: dict[str, Any] = {res.breakdown_col: name, "users": f"{int(part['count'].iloc[0]):,}"}
        for k, r in part.iloc[1:].iterrows():
            row[f"{k}. {r.step}"] = _pct(r.conversion_from_previous)
        row["end to end"] = (
            f"{_pct(last.conversion_from_start)} [{_pct(last.ci_lower)}, {_pct(last.ci_upper)}]"
        )
        rows.append(row)
    tests = res.step_tests.set_index("index")
    p_row: dict[str, Any] = {res.breakdown_col: "p (Holm)", "users": ""}
    for k, t in tests.iterrows():
        p_row[f"{k}. {t.step}"] = format_p(t.p_value_adjusted)
    p_row["end to end"] = format_p(res.end_to_end.get("p_value", math.nan))
    return pd.DataFrame([*rows, p_row]).set_index(res.breakdown_col)


def _annotate_drop(ax: Any, s: pd.DataFrame) -> None:
    for i in range(1, len(s)):
        r = s.iloc[i]
        if r.drop_off:
            ax.annotate(
                f"−{_pct(r.drop_off_rate)} ({int(r.drop_off):,})",
                xy=(i - 0.5, s["count"].iloc[i - 1] * 0.97),
                ha="center",
                va="top",
                fontsize=8,
                color="#cf222e",
            )


def funnel_chart(res: Any, *, ax: Any = None) -> Any:
    """Users reaching each step (bars, labelled with % of start) and the drop-off between
    consecutive steps (red).
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(max(6.0, 2.2 * len(res.steps)), 3.6), layout="constrained")
    s = res.steps
    x = np.arange(len(s))
    ax.bar(x, s["count"], color="#0969da", width=0.6)
    for i, r in s.iterrows():
        ax.text(i, r["count"], f"{int(r['count']):,}\n{_pct(r.conversion_from_start)}",
                ha="center", va="bottom", fontsize=9)  # fmt: skip
    _annotate_drop(ax, s)
    ax.set_xticks(x, [f"{i + 1}. {n}" for i, n in enumerate(s.step)], rotation=0, fontsize=9)
    ax.set_ylabel("users reaching the step")
    ax.set_ylim(0, max(float(s["count"].max()), 1) * 1.22)
    ax.set_title(f"{res.order.capitalize()} funnel, window {window_text(res.window_seconds)}")
    ax.grid(axis="y", alpha=0.3)
    return ax


def breakdown_chart(res: Any, *, ax: Any = None) -> Any:
    """% of start per step and group, with Wilson CIs."""
    import matplotlib.pyplot as plt

    g = res.breakdown
    if ax is None:
        _, ax = plt.subplots(figsize=(max(6.0, 2.2 * len(res.steps)), 3.4), layout="constrained")
    groups = list(dict.fromkeys(g.group))
    width = 0.8 / max(len(groups), 1)
    for j, name in enumerate(groups):
        part = g[g.group == name]
        x = part["index"].to_numpy() - 1 + (j - (len(groups) - 1) / 2) * width
        y = part.conversion_from_start * 100
        err = [(part.conversion_from_start - part.ci_lower) * 100,
               (part.ci_upper - part.conversion_from_start) * 100]  # fmt: skip
        ax.bar(x, y, width=width * 0.95, label=str(name))
        ax.errorbar(x, y, yerr=err, fmt="none", ecolor="black", capsize=2, lw=0.8)
    names = [f"{i + 1}. {n}" for i, n in enumerate(res.steps.step)]
    ax.set_xticks(np.arange(len(res.steps)), names, fontsize=9)
    ax.set_ylabel(f"% of entering users ({ci_label(res.alpha)})")
    ax.set_title(f"By {res.breakdown_col}")
    ax.legend(frameon=False, fontsize=8, ncol=min(len(groups), 6))
    ax.grid(axis="y", alpha=0.3)
    return ax


_TICKS = [(1, "1 s"), (60, "1 min"), (3600, "1 h"), (86400, "1 day"), (7 * 86400, "1 wk")]


def time_to_convert_chart(res: Any) -> Any:
    """Per step from the second: users by time from the previous step (log scale), median
    marked.
    """
    import matplotlib.pyplot as plt

    n = len(res.steps) - 1
    fig, axes = plt.subplots(1, n, figsize=(3.4 * n, 2.8), layout="constrained", squeeze=False)
    h = res.times
    for k, ax in zip(range(1, n + 1), axes[0], strict=True):
        part = h[h.step == k] if len(h) else h
        r = res.steps.iloc[k]
        if len(part):
            lo = 10 ** (part.bin / TIME_BINS_PER_DECADE)
            hi = 10 ** ((part.bin + 1) / TIME_BINS_PER_DECADE)
            ax.bar(lo, part.users, width=hi - lo, align="edge", color="#8250df")
            ax.set_xscale("log")
            ax.axvline(r.median_seconds, color="black", lw=1, ls="--")
            ticks = [(v, t) for v, t in _TICKS if lo.min() / 3 <= v <= hi.max() * 3]
            if ticks:
                ax.set_xticks([v for v, _ in ticks], [t for _, t in ticks])
        else:
            ax.text(0.5, 0.5, "nobody reached it", ha="center", transform=ax.transAxes)
        ax.set_title(f"{k + 1}. {r.step}\nmedian {duration_text(r.median_seconds)}", fontsize=9)
        ax.set_xlabel("time from the previous step")
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("users")
    return fig
