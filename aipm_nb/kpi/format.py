"""KPI values as a reader expects them."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["format_value"]


def format_value(kpi_type: str, x: Any) -> str:
    """A KPI value as a reader expects it: rates in %, model metrics to 3 decimals, counts
    with thousands separators.

    Examples:
        >>> format_value("rate", 0.1234), format_value("users", 1234.0), format_value("ece", 0.04)
        ('12.3%', '1,234', '0.040')
        >>> format_value("mean", 2.3456), format_value("rate", float("nan"))
        ('2.35', '–')
    """
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if kpi_type == "rate":
        return f"{x:.1%}"
    if kpi_type in ("roc_auc", "ece", "psi"):
        return f"{x:.3f}"
    if kpi_type in ("count", "users"):
        return f"{x:,.0f}"
    return f"{x:,.2f}" if abs(x) < 1e6 else f"{x:,.0f}"
