"""Plain-text reasons of a KPI verdict (no plotting imports: the analysis builds these)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from aipm_nb.kpi.format import format_value

if TYPE_CHECKING:
    from aipm_nb.kpi.analyze import KpiResult

__all__ = ["STATUS_WORDS", "bucket_name", "fmt_change", "fmt_z", "status_reason"]

STATUS_WORDS = {
    "insufficient_history": "too little history",
    "no_data": "no data",
    "on_target": "on target",
    "off_target": "off target",
}


def bucket_name(period: str, bucket: Any) -> str:
    """A bucket as words: "week of 24 Jun 2024", "June 2024", "24 Jun 2024"."""
    if bucket is None or pd.isna(bucket):
        return "–"
    b = pd.Timestamp(bucket)
    if period == "month":
        return f"{b:%B %Y}"
    if period == "week":
        return f"week of {b:%d %b %Y}"
    return f"{b:%d %b %Y}"


def fmt_change(x: Any) -> str:
    """A relative change as "+9%" ("–" when undefined)."""
    return "–" if x is None or pd.isna(x) or not math.isfinite(x) else f"{x:+.0%}"


def fmt_z(x: Any) -> str:
    """A z as "+4.7", "−∞" or "–"."""
    if x is None or pd.isna(x):
        return "–"
    return f"{x:+.1f}" if math.isfinite(x) else ("+∞" if x > 0 else "−∞")


def _driver(res: KpiResult, name: str) -> str:
    """The segment that drove a KPI's move: the most harmful segment in alert or watch."""
    s = res.segments[(res.segments.name == name) & res.segments.status.isin(["alert", "watch"])]
    if not len(s) or res.segment_col is None:
        return ""
    direction = res.kpis.set_index("name").direction[name]
    s = s.assign(h=-s.z if direction == "increase" else s.z).sort_values("h", ascending=False)
    top = s.iloc[0]
    share = top.share_of_move
    part = f", {share:.0%} of the move" if share is not None and np.isfinite(share) else ""
    return f"; driven by {res.segment_col} = {top.segment} ({top.status}{part})"


def status_reason(res: KpiResult, r: dict[str, Any]) -> str:
    """One plain-text line for a KPI in alert or watch (verdict reasons; escaped by the
    verdict's Markdown).
    """
    t = r["type"]
    base = (
        f"vs its PSI reference (the {res.baseline_periods} {res.period}s before)"
        if t == "psi"
        else (
            f"{fmt_change(r['change'])} vs baseline {format_value(t, r['baseline'])} "
            f"(z {fmt_z(r['z'])})"
        )
    )
    return (
        f"{r['name']} {r['status']}: {format_value(t, r['value'])} in the "
        f"{bucket_name(res.period, r['bucket'])}, {base}{_driver(res, r['name'])}"
    )
