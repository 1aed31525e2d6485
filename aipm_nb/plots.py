"""Figures of results. Plotting never computes statistics: each function takes a result (or an
aggregate table) and an optional matplotlib ``ax``, and returns the ``ax``."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

__all__ = ["ab_cumulative", "ab_distributions", "ab_forest"]

GOOD, BAD, NEUTRAL = "#1a7f37", "#cf222e", "#57606a"


def _ax(ax: Any, size: tuple[float, float]) -> Any:
    if ax is None:
        _, ax = plt.subplots(figsize=size, layout="constrained")
    return ax


def ab_forest(result: Any, *, ax: Any = None) -> Any:
    """Relative effect with its CI for every metric x variant (green better, red worse)."""
    ms = list(result.metrics)
    ax = _ax(ax, (8, 0.5 * len(ms) + 1.5))
    y = np.arange(len(ms))[::-1]
    for yi, m in zip(y, ms, strict=True):
        color = GOOD if m.improved else BAD if m.harmed else NEUTRAL
        ax.errorbar(
            m.rel_effect * 100,
            yi,
            xerr=[[(m.rel_effect - m.rel_ci_lower) * 100], [(m.rel_ci_upper - m.rel_effect) * 100]],
            fmt="o",
            color=color,
            capsize=4,
            lw=2,
        )
        ax.annotate(
            f"{m.rel_effect:+.1%}",
            (m.rel_effect * 100, yi),
            textcoords="offset points",
            xytext=(0, 7),
            ha="center",
            fontsize=8,
            color=color,
        )
    labels = [f"{m.metric}{' (guardrail)' if m.guardrail else ''} · {m.variant}" for m in ms]
    ax.set_yticks(y, labels)
    ax.set_ylim(-0.7, len(ms) - 0.3)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("relative effect vs control (%), 95% CI")
    ax.set_title("Effects by metric")
    ax.grid(axis="x", alpha=0.3)
    return ax


def ab_cumulative(result: Any, *, ax: Any = None) -> Any:
    """Cumulative relative effect of the primary metric by exposure day, with its CI band."""
    ax = _ax(ax, (8, 3.5))
    cum = result.cumulative
    if cum is None or cum.empty:
        ax.text(0.5, 0.5, "no exposure time column", ha="center", transform=ax.transAxes)
        return ax
    for v, g in cum.groupby("variant", sort=True):
        x = pd.to_datetime(g.day)
        ax.plot(x, g.rel_effect * 100, marker="o", ms=3, label=v)
        ax.fill_between(x, g.rel_ci_lower * 100, g.rel_ci_upper * 100, alpha=0.2)
    ax.axhline(0, color="black", lw=0.8)
    metric = next((m.metric for m in result.metrics if not m.guardrail), "")
    ax.set_title(f"Cumulative effect on {metric} by exposure day")
    ax.set_ylabel("relative effect (%)")
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    ax.figure.autofmt_xdate()
    return ax


def ab_distributions(hist: pd.DataFrame, *, axes: Any = None) -> Any:
    """Per-variant histograms from `aipm_nb.experiment.arm_histograms` (share of units)."""
    cols = list(dict.fromkeys(hist["column"]))
    if axes is None:
        _, axes = plt.subplots(
            1, len(cols), figsize=(4 * len(cols), 3), layout="constrained", squeeze=False
        )
        axes = axes[0]
    for ax, col in zip(axes, cols, strict=False):
        h = hist[hist["column"] == col]
        for v, g in h.groupby("variant", sort=True):
            ax.stairs(
                g.share.to_numpy(), np.append(g.lower.to_numpy(), g.upper.iloc[-1]), label=v, lw=1.5
            )
        ax.set_title(col)
        ax.set_ylabel("share of units")
        ax.legend(frameon=False, fontsize=8)
    return axes
