"""Figures of results. Plotting never computes statistics: each function takes a result (or an
aggregate table) and an optional matplotlib ``ax``, and returns the ``ax``.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Rectangle

from aipm_nb.results import ci_label

__all__ = [
    "ab_cumulative",
    "ab_distributions",
    "ab_forest",
    "estimated_vs_realized",
    "active_users_plot",
    "lifecycle_plot",
    "metric_over_time",
    "psi_bars",
    "reliability_diagram",
    "retention_curves",
    "retention_heatmap",
    "retention_small_multiples",
    "revenue_plot",
    "roc_pr_curves",
    "score_distributions",
    "segment_bars",
]

GOOD, BAD, NEUTRAL = "#1a7f37", "#cf222e", "#57606a"


def _no_labels(ax: Any) -> Any:
    ax.text(0.5, 0.5, "no labelled rows yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()
    return ax


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
        # a one-sided (sequential guardrail) bound: no whisker on the unbounded side
        lo = m.rel_ci_lower if np.isfinite(m.rel_ci_lower) else m.rel_effect
        hi = m.rel_ci_upper if np.isfinite(m.rel_ci_upper) else m.rel_effect
        ax.errorbar(
            m.rel_effect * 100,
            yi,
            xerr=[[(m.rel_effect - lo) * 100], [(hi - m.rel_effect) * 100]],
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
    label = getattr(result, "ci_label", None) or ci_label(result.alpha)
    ax.set_xlabel(f"relative effect vs control (%), {label}")
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
    ax.set_title(f"Cumulative effect on {result.primary_metric} by exposure day")
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
        ax.set_xlabel("value (the last bin holds everything above it)", fontsize=8)
        ax.set_ylabel("share of units")
        ax.legend(frameon=False, fontsize=8)
    return axes


def retention_heatmap(result: Any, *, ax: Any = None) -> Any:
    """Cohort x period retention, annotated; incomplete cells blank."""
    m = result.retention
    ax = _ax(ax, (min(1.0 + 0.62 * m.shape[1], 14), 0.32 * m.shape[0] + 1.6))
    data = m.to_numpy(dtype=float)
    masked = np.ma.masked_invalid(data)
    ax.imshow(
        masked,
        aspect="auto",
        cmap="Blues",
        vmin=0,
        vmax=max(0.6, np.nanmax(data[:, 1:]) if data.shape[1] > 1 else 1),
    )
    for i in range(data.shape[0]):
        for j in range(data.shape[1]):
            v = data[i, j]
            if np.isnan(v):  # the period has not ended yet: hatched, never a partial number
                ax.add_patch(
                    Rectangle(
                        (j - 0.5, i - 0.5),
                        1,
                        1,
                        facecolor="#f6f8fa",
                        edgecolor="#d0d7de",
                        hatch="///",
                        lw=0,
                    )
                )
            else:
                ax.text(
                    j,
                    i,
                    f"{v:.0%}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if v > 0.45 else "black",
                )
    ax.set_xticks(range(data.shape[1]), [str(k) for k in m.columns])
    enrolled = getattr(result, "cohort_complete", np.ones(data.shape[0], dtype=bool))
    ax.set_yticks(
        range(data.shape[0]),
        [
            f"{c:%Y-%m-%d} ({n:,}{'' if done else ', still enrolling'})"
            for c, n, done in zip(m.index, result.cohorts["size"], enrolled, strict=True)
        ],
    )
    ax.set_xlabel(f"{result.period}s since first activity (hatched: not over yet)")
    ax.set_ylabel(f"cohort ({result.period} of first activity, users)")
    ax.set_title(f"{result.retention_type!r} retention by {result.period} cohort")
    ax.tick_params(axis="y", labelsize=8)
    return ax


def retention_small_multiples(result: Any, *, n: int = 6, axes: Any = None) -> Any:
    """The latest ``n`` cohorts' retention curves (complete periods only), each against the
    size-weighted average curve of all cohorts.
    """
    ret = result.retention
    keep = ret[ret.notna().sum(axis=1) >= 2].iloc[-n:]
    if axes is None:
        cols = min(3, max(1, len(keep)))
        rows = max(1, -(-len(keep) // cols))
        _, axes = plt.subplots(
            rows,
            cols,
            figsize=(3.6 * cols, 2.6 * rows),
            layout="constrained",
            sharey=True,
            squeeze=False,
        )
    flat = list(np.ravel(axes))
    avg = result.average.retention * 100
    for ax, (cohort, row) in zip(flat, keep.iterrows(), strict=False):
        ax.plot(avg.index, avg.to_numpy(), color=NEUTRAL, lw=1, ls="--", label="average")
        ax.plot(
            row.index,
            row.to_numpy(dtype=float) * 100,
            color="#0969da",
            lw=1.8,
            marker="o",
            ms=3,
            label="cohort",
        )
        ax.set_title(
            f"{cohort:%Y-%m-%d} ({int(result.cohorts.set_index('cohort')['size'][cohort]):,})",
            fontsize=9,
        )
        ax.set_xlabel(f"{result.period}s since first", fontsize=8)
        ax.grid(alpha=0.3)
    for ax in flat[len(keep) :]:
        ax.set_axis_off()
    if len(keep):
        flat[0].set_ylabel("retained (%)")
        flat[0].legend(frameon=False, fontsize=7)
    return axes


def retention_curves(comparison: Any = None, *, result: Any = None, ax: Any = None) -> Any:
    """Average retention curves (per segment when a comparison is given) with 95% CI bands."""
    ax = _ax(ax, (8, 4))
    if comparison is not None:
        curves = comparison.curves
        groups = list(curves.groupby("segment", sort=True))
        title = f"Retention by {comparison.segment}"
    else:
        groups = [("all users", result.average.reset_index())]
        title = "Average retention"
    for name, g in groups:
        g = g[g.k > 0]
        ax.plot(g.k, g.retention * 100, marker="o", ms=3, label=str(name))
        ax.fill_between(g.k, g.ci_lower * 100, g.ci_upper * 100, alpha=0.2)
    ax.set_xlabel("periods since first activity")
    ax.set_ylabel("retained (%)")
    ax.set_ylim(bottom=0)
    ax.set_title(title)
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    return ax


def active_users_plot(result: Any, *, axes: Any = None) -> Any:
    """DAU (with its 7-day mean) and WAU / MAU, and monthly stickiness (average DAU / MAU),
    from `aipm_nb.cohort.active_users`.
    """
    daily, weekly, monthly = result.daily, result.weekly, result.monthly
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(12, 3.5), layout="constrained", width_ratios=[2, 1])
    ax, ax2 = axes
    ax.plot(daily.day, daily.dau, lw=0.6, alpha=0.5, label="DAU")
    ax.plot(daily.day, daily.dau.rolling(7, min_periods=1).mean(), lw=1.5, label="DAU (7-day mean)")
    # WAU / MAU as one point per period (at its start), so the latest, still running, period is
    # a hollow marker rather than a sliver of a step
    for frame, col, label in ((weekly, "wau", "WAU (ISO week)"), (monthly, "mau", "MAU (month)")):
        x = frame.iloc[:, 0]
        line = ax.plot(x, frame[col], marker="o", ms=3, lw=1.2, label=label)[0]
        if "complete" in frame and not frame.complete.iloc[-1]:
            ax.plot(
                x.iloc[-1:],
                frame[col].iloc[-1:],
                marker="o",
                ms=6,
                mfc="white",
                color=line.get_color(),
                ls="none",
            )
    ax.set_ylabel("users")
    ax.set_title("Active users")
    ax.legend(frameon=False, fontsize=8)
    ax.grid(alpha=0.3)
    m = monthly[monthly.complete]
    ax2.bar(m.month.dt.strftime("%Y-%m"), m.stickiness * 100, color="#0969da")
    ax2.set_title("Stickiness: avg DAU / MAU, complete months", fontsize=10)
    ax2.set_ylabel("%")
    ax2.tick_params(axis="x", rotation=45, labelsize=8)
    return axes


def lifecycle_plot(result: Any, *, ax: Any = None) -> Any:
    """Stacked bars of new / returning / resurrecting users, dormant below zero (from
    `aipm_nb.cohort.lifecycle`).
    """
    table = result.to_pandas()
    complete = np.asarray(getattr(result, "complete", np.ones(len(table), dtype=bool)))
    ax = _ax(ax, (10, 3.8))
    x = np.arange(len(table))
    colors = {
        "new": "#1a7f37",
        "returning": "#0969da",
        "resurrecting": "#bf8700",
        "dormant": "#cf222e",
    }

    def bars(values: np.ndarray, color: str, label: str, bottom: Any = None) -> None:
        # a period still running: lighter and hatched (its counts are so far, not final)
        for part, alpha, hatch in ((complete, 1.0, None), (~complete, 0.35, "//")):
            if part.any():
                ax.bar(
                    x[part],
                    values[part],
                    bottom=None if bottom is None else bottom[part],
                    color=color,
                    alpha=alpha,
                    hatch=hatch,
                    edgecolor="white" if hatch else None,
                    label=label if (alpha == 1.0) == complete.any() else None,
                    width=0.8,
                )

    bottom = np.zeros(len(table))
    for col in ("new", "returning", "resurrecting"):
        bars(table[col].to_numpy(), colors[col], col, bottom.copy())
        bottom += table[col].to_numpy()
    bars(table["dormant"].to_numpy(), colors["dormant"], "dormant")
    ax.axhline(0, color="black", lw=0.8)
    step = max(1, len(table) // 12)
    ticks = list(x[::step])
    if len(x) and not complete[-1] and ticks[-1] != x[-1]:
        ticks.append(x[-1])  # the running period is always labelled
    labels = [f"{table.index[i]:%Y-%m-%d}" + ("" if complete[i] else " (partial)") for i in ticks]
    ax.set_xticks(ticks, labels, rotation=45, fontsize=8)
    ax.set_xlabel(f"{getattr(result, 'period', 'period')} starting")
    ax.set_ylabel("users (dormant below 0)")
    title = "Lifecycle: users by status per period"
    if not complete.all():
        title += " (hatched: period still running, counts so far)"
    ax.set_title(title)
    ax.legend(frameon=False, ncols=4, fontsize=8)
    return ax


def revenue_plot(ltv: pd.DataFrame, *, ax: Any = None, max_lines: int = 12) -> Any:
    """Cumulative revenue per cohort user by period, one line per cohort (most recent last)."""
    ax = _ax(ax, (8, 4))
    rows = ltv.iloc[-max_lines:]
    cmap = plt.get_cmap("viridis")
    for i, (cohort, row) in enumerate(rows.iterrows()):
        ax.plot(
            row.index,
            row.to_numpy(dtype=float),
            color=cmap(i / max(1, len(rows) - 1)),
            lw=1.2,
            label=f"{cohort:%Y-%m-%d}",
        )
    ax.set_xlabel("periods since first activity")
    ax.set_ylabel("cumulative revenue per cohort user")
    shown = (
        f"the latest {len(rows)} of {len(ltv)} cohorts"
        if len(ltv) > len(rows)
        else f"all {len(rows)} cohorts"
    )
    ax.set_title(f"Revenue per cohort user (LTV curve): {shown}")
    ax.legend(frameon=False, fontsize=7, ncols=2)
    ax.grid(alpha=0.3)
    return ax


def roc_pr_curves(result: Any, *, axes: Any = None) -> Any:
    """ROC and precision-recall curves from the counts per distinct score."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    if result.curves.empty:
        for ax in axes:
            _no_labels(ax)
        return axes
    c = result.curves.sort_values("score", ascending=False)
    tp, fp = c.pos.cumsum().to_numpy(), c.neg.cumsum().to_numpy()
    n_pos, n_neg = max(tp[-1], 1), max(fp[-1], 1)
    ax1, ax2 = axes
    m = result.metrics
    ax1.plot(
        np.r_[0, fp / n_neg],
        np.r_[0, tp / n_pos],
        lw=1.8,
        label=f"AUC {m.roc_auc:.3f}" if m else None,
    )
    ax1.plot([0, 1], [0, 1], color=NEUTRAL, lw=0.8, ls="--")
    ax1.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve")
    with np.errstate(invalid="ignore", divide="ignore"):
        ax2.plot(tp / n_pos, tp / (tp + fp), lw=1.8, label=f"AP {m.pr_auc:.3f}" if m else None)
    ax2.axhline(tp[-1] / (tp[-1] + fp[-1]), color=NEUTRAL, lw=0.8, ls="--")
    ax2.set(xlabel="recall", ylabel="precision", title="Precision-recall curve", ylim=(0, 1.02))
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(frameon=False, loc="lower right")
    return axes


def reliability_diagram(result: Any, *, ax: Any = None) -> Any:
    """Mean score against positive rate per calibration bin; marker area ~ bin size."""
    ax = _ax(ax, (5, 4.5))
    cal = result.calibration[result.calibration["count"] > 0]
    if cal.empty:
        return _no_labels(ax)
    ax.plot([0, 1], [0, 1], color=NEUTRAL, lw=0.8, ls="--", label="perfect calibration")
    ax.plot(
        cal.mean_score,
        cal.positive_rate,
        marker="o",
        lw=1.5,
        color="#0969da",
        label=f"model (ECE {result.ece:.3f})",
    )
    ax.scatter(
        cal.mean_score,
        cal.positive_rate,
        s=20 + 400 * cal["count"] / cal["count"].max(),
        alpha=0.25,
        color="#0969da",
    )
    ax.set(
        xlabel="mean predicted probability",
        ylabel="observed positive rate",
        title="Reliability diagram",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    ax.legend(frameon=False, loc="upper left")
    ax.grid(alpha=0.3)
    return ax


def metric_over_time(result: Any, *, ax: Any = None) -> Any:
    """The tracked metric per window with its CI and the configured floor."""
    ax = _ax(ax, (9, 3.5))
    w = result.windows
    metric = result.window_metric
    ax.plot(w.window, w[metric], marker="o", ms=4, label=metric)
    if w.ci_lower.notna().any():
        ax.fill_between(w.window, w.ci_lower, w.ci_upper, alpha=0.2)
    if result.metric_floor is not None:
        ax.axhline(result.metric_floor, color=BAD, ls="--", lw=1, label="floor")
        bad = w[w.below_floor]
        ax.scatter(bad.window, bad[metric], color=BAD, zorder=3)
    ax.axvline(result.reference_end, color=NEUTRAL, lw=0.8, ls=":", label="reference end")
    ax.set_title(f"{metric} per window")
    ax.legend(frameon=False, fontsize=8)
    ax.grid(alpha=0.3)
    ax.figure.autofmt_xdate()
    return ax


def estimated_vs_realized(result: Any, *, metric: str | None = None, ax: Any = None) -> Any:
    """Estimated metric per window (calibrated scores, ±3 SE band) against the realized one;
    windows without labels shaded.
    """
    ax = _ax(ax, (9, 3.5))
    e = result.estimated
    if e is None or e.empty:
        ax.text(0.5, 0.5, "no estimates (no labelled reference rows)", ha="center",
                transform=ax.transAxes)  # fmt: skip
        return ax
    if metric is None:
        metric = result.window_metric if result.window_metric in set(e.metric) else "roc_auc"
    d = e[e.metric == metric].sort_values("window")
    ax.fill_between(d.window, d.lower, d.upper, alpha=0.2, color="#8250df", step="mid")
    ax.plot(d.window, d.estimate, marker="o", ms=3, color="#8250df", label="estimated")
    ax.plot(d.window, d.realized, marker="s", ms=3, color="#24292f", lw=1, label="realized")
    for w in d[d.n_labelled == 0].window:
        ax.axvspan(w - pd.Timedelta(days=3.5), w + pd.Timedelta(days=3.5), color="#fff8c5",
                   zorder=0)  # fmt: skip
    if result.metric_floor is not None and metric == result.window_metric:
        ax.axhline(result.metric_floor, color=BAD, ls="--", lw=1, label="floor")
    name = {"roc_auc": "ROC AUC", "f1": "F1"}.get(metric, metric)
    ax.set_ylabel(name)
    ax.set_title(f"{name}: estimated from scores (±3 SE) vs realized; shaded: no labels yet")
    ax.legend(frameon=False, fontsize=8)
    ax.grid(alpha=0.3)
    ax.figure.autofmt_xdate()
    return ax


def segment_bars(result: Any, *, ax: Any = None) -> Any:
    """ROC AUC per segment with 95% CIs, worst first."""
    seg = result.segments.dropna(subset=["roc_auc"])
    ax = _ax(ax, (7, 0.4 * len(seg) + 1.2))
    labels = [
        f"{c} = {v} (n={n:,})"
        for c, v, n in zip(seg.column, seg.value, seg.n_labelled, strict=True)
    ]
    y = np.arange(len(seg))[::-1]
    ax.barh(y, seg.roc_auc, color="#0969da", alpha=0.8)
    ax.errorbar(
        seg.roc_auc,
        y,
        xerr=[seg.roc_auc - seg.roc_auc_ci_lower, seg.roc_auc_ci_upper - seg.roc_auc],
        fmt="none",
        color="black",
        capsize=3,
    )
    if result.metrics is not None:
        ax.axvline(result.metrics.roc_auc, color=NEUTRAL, ls="--", lw=1, label="overall")
    ax.set_yticks(y, labels, fontsize=8)
    lo = max(0.0, float(seg.roc_auc_ci_lower.min()) - 0.05) if len(seg) else 0
    ax.set_xlim(lo, 1)
    ax.set_title("ROC AUC by segment (worst first)")
    ax.legend(frameon=False, fontsize=8)
    return ax


def psi_bars(result: Any, *, ax: Any = None) -> Any:
    """PSI per feature and the score, coloured by status, with the 0.1 / 0.25 lines."""
    d = result.drift
    ax = _ax(ax, (7, 0.4 * len(d) + 1.2))
    colors = {"stable": GOOD, "moderate": "#bf8700", "major": BAD, "unknown": NEUTRAL}
    y = np.arange(len(d))[::-1]
    ax.barh(y, d.psi, color=[colors[s] for s in d.status])
    ax.axvline(0.1, color=NEUTRAL, ls="--", lw=0.8)
    ax.axvline(0.25, color=NEUTRAL, ls="--", lw=0.8)
    ax.set_yticks(y, d.column)
    ax.set_title("Drift (PSI, current vs reference)")
    return ax


def score_distributions(result: Any, *, ax: Any = None) -> Any:
    """Score histogram of the reference and the current window (share of rows)."""
    ax = _ax(ax, (7, 3.5))
    h = result.score_hist
    edges = np.linspace(0, 1, 21)
    for name in ("reference", "current"):
        g = h[h["period"] == name].groupby("bin").n.sum().reindex(range(20), fill_value=0)
        share = g / max(g.sum(), 1)
        ax.stairs(share.to_numpy(), edges, label=name, lw=1.8)
    ax.set(xlabel="score", ylabel="share of predictions", title="Score distribution")
    ax.legend(frameon=False)
    return ax
