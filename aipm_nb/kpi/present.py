"""KPI results for people: the summary sentence per KPI, the scorecard, the drill-down tables
and the small-multiple charts.
"""

from __future__ import annotations

import math
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from aipm_nb.kpi.analyze import KpiResult, format_value
from aipm_nb.kpi.verdict import STATUS_WORDS, bucket_name, fmt_change, fmt_z, status_reason
from aipm_nb.markup import html_text
from aipm_nb.tables import HEADERS

__all__ = [
    "STATUS_COLOURS",
    "drilldown_table",
    "kpi_charts",
    "scorecard_html",
    "status_reason",
    "summary_markdown",
]

STATUS_COLOURS = {
    "alert": "#cf222e",
    "watch": "#9a6700",
    "ok": "#1a7f37",
    "insufficient_history": "#57606a",
    "no_data": "#57606a",
    "on_target": "#1a7f37",
    "off_target": "#cf222e",
}


def summary_markdown(res: KpiResult) -> str:
    """Executive summary: the verdict, then one line on the rules used."""
    lines = [res.verdict.markdown()]
    t = res.kpis
    counts = t.status.value_counts()
    parts = [
        f"{counts.get(s, 0)} {STATUS_WORDS.get(s, s)}"
        for s in ("alert", "watch", "ok")
        if counts.get(s, 0)
    ]
    rest = len(t) - sum(counts.get(s, 0) for s in ("alert", "watch", "ok"))
    if rest:
        parts.append(f"{rest} not scored (too little history or no data)")
    lines.append(
        f"**{len(t)} KPIs**: {', '.join(parts)}. Each {res.period}'s value is compared with "
        f"the {res.baseline_periods} complete {res.period}s before it; an alert needs |z| ≥ "
        f"{res.z_alert:g} in the harmful direction, a change of at least {res.min_change:.0%} "
        f"and a volume of at least {res.min_volume:,.0f}."
    )
    return "\n\n".join(lines)


def _word(status: Any) -> str:
    if status is None or (isinstance(status, float) and math.isnan(status)):
        return "–"
    colour = STATUS_COLOURS.get(status, "#57606a")
    return (
        f'<span style="color:{colour};font-weight:600">'
        f"{html_text(STATUS_WORDS.get(status, status))}</span>"
    )


def scorecard_html(res: KpiResult) -> str:
    """The scorecard: value, change vs baseline, target and status (a coloured word) per KPI."""
    head = ["KPI", res.period, "value", "baseline", "change", "z", "volume", "target", "status"]
    rows = []
    for r in res.kpis.to_dict("records"):
        t = r["type"]
        target = "–"
        if r["target"] is not None and not pd.isna(r["target"]):
            sign = "≥" if r["direction"] == "increase" else "≤"
            target = f"{sign} {format_value(t, r['target'])} {_word(r['target_status'])}"
        cells = [
            html_text(r["name"]),
            html_text(bucket_name(res.period, r["bucket"]).removeprefix("week of ")),
            html_text(format_value(t, r["value"])),
            html_text(format_value(t, r["baseline"]) if t != "psi" else "–"),
            html_text(fmt_change(r["change"])),
            html_text(fmt_z(r["z"])),
            html_text(f"{r['volume']:,.0f}"),
            target,
            _word(r["status"]),
        ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    th = "".join(f"<th>{html_text(h)}</th>" for h in head)
    body = "".join(rows)
    return f'<table class="kpi-scorecard"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def drilldown_table(res: KpiResult, name: str) -> pd.DataFrame:
    """The scored bucket of one KPI per segment, most harmful first (text, for display)."""
    s = res.segments[res.segments.name == name]
    if not len(s):
        return pd.DataFrame()
    k = res.kpis.set_index("name").loc[name]
    # the segments that moved the way the KPI moved come first
    sign = -1.0 if (k.z < 0 if pd.notna(k.z) else k.direction == "increase") else 1.0
    s = s.assign(h=sign * s.z).sort_values("h", ascending=False, na_position="last")
    out = pd.DataFrame(
        {
            res.segment_col or "segment": s.segment.astype(str),
            "value": [format_value(k.type, v) for v in s.value],
            "baseline": [format_value(k.type, v) if k.type != "psi" else "–" for v in s.baseline],
            "change": [fmt_change(v) for v in s.change],
            "z": [fmt_z(v) for v in s.z],
            "volume": [f"{v:,.0f}" for v in s.volume],
            "share of the move": [
                "–" if v is None or not np.isfinite(v) else f"{v:.0%}" for v in s.share_of_move
            ],
            "status": [STATUS_WORDS.get(v, v) for v in s.status],
        }
    )
    return out.set_index(out.columns[0])


def kpi_charts(res: KpiResult, *, ncols: int = 3) -> Any:
    """One small chart per KPI: the series, the band baseline ± z_alert·scale of every scored
    bucket, the target, alerts and watches marked, the bucket still running hollow.
    """
    names = res.kpis.name.tolist()
    nrows = math.ceil(len(names) / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(4.2 * ncols, 2.8 * nrows), layout="constrained", squeeze=False
    )
    kinds = res.kpis.set_index("name")
    for ax, name in zip(axes.flat, names, strict=False):
        k = kinds.loc[name]
        s = res.series[res.series.name == name].sort_values("bucket")
        done = s[s.complete]
        scale = 100.0 if k.type == "rate" else 1.0
        ax.plot(done.bucket, done.value * scale, color="#0969da", marker="o", ms=2.5, lw=1.2)
        band = done[done.lower.notna()]
        if len(band):
            ax.fill_between(
                band.bucket,
                band.lower * scale,
                band.upper * scale,
                color="#0969da",
                alpha=0.12,
                lw=0,
                step="mid",
            )
            ax.plot(band.bucket, band.baseline * scale, color="#57606a", lw=0.8, ls="--")
        running = s[~s.complete & (s.bucket > (done.bucket.max() if len(done) else s.bucket.min()))]
        if len(running):
            ax.scatter(
                running.bucket,
                running.value * scale,
                facecolors="none",
                edgecolors="#57606a",
                s=18,
                zorder=3,
                label="incomplete",
            )
        for st in ("watch", "alert"):
            pts = done[done.status == st]
            ax.scatter(pts.bucket, pts.value * scale, color=STATUS_COLOURS[st], s=22, zorder=4)
        if k.target is not None and not pd.isna(k.target):
            ax.axhline(k.target * scale, color="#8250df", lw=0.9, ls=":")
        status = k.status
        ax.set_title(
            f"{name} — {STATUS_WORDS.get(status, status)}",
            fontsize=10,
            color=STATUS_COLOURS.get(status, "#24292f"),
        )
        unit = "%" if k.type == "rate" else HEADERS.get(k.type) or k.type.replace("_", " ")
        ax.set_ylabel(unit, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        for lab in ax.get_xticklabels():
            lab.set_rotation(30)
            lab.set_ha("right")
    for ax in list(axes.flat)[len(names) :]:
        ax.set_axis_off()
    return fig
