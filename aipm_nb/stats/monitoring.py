"""KPI monitoring rules (DESIGN section 4, "KPI monitoring"): robust z for counts, sums and means,
the p-chart for rates, and the status of a bucket. Pure functions of aggregates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np

__all__ = [
    "MAD_SCALE",
    "KpiStatus",
    "kpi_status",
    "p_chart",
    "p_chart_z",
    "robust_scale",
    "robust_z",
    "target_status",
]

#: 1.4826 · MAD estimates the standard deviation of a normal sample.
MAD_SCALE = 1.4826

KpiStatus = Literal["ok", "watch", "alert", "insufficient_history", "no_data"]


def robust_scale(baseline: Sequence[float]) -> tuple[float, float]:
    """Centre (median) and scale (1.4826·MAD; the standard deviation with ddof 1 when the MAD
    is 0) of a baseline; NaN values are left out.

    Examples:
        >>> c, s = robust_scale([100, 104, 98, 101, 97, 103, 99, 102])
        >>> c, round(s, 4)
        (100.5, 2.9652)
        >>> robust_scale([5, 5, 5, 5, 9])  # MAD 0: the standard deviation
        (5.0, 1.7888543819998317)
    """
    x = np.asarray(baseline, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return math.nan, math.nan
    centre = float(np.median(x))
    scale = MAD_SCALE * float(np.median(np.abs(x - centre)))
    if scale == 0 and len(x) > 1:
        scale = float(np.std(x, ddof=1))
    return centre, scale


def _z(x: float, centre: float, scale: float) -> float:
    if math.isnan(x) or math.isnan(centre) or math.isnan(scale):
        return math.nan
    if scale == 0:  # a constant baseline: any change is infinitely unusual
        return 0.0 if x == centre else math.copysign(math.inf, x - centre)
    return (x - centre) / scale


def robust_z(x: float, baseline: Sequence[float]) -> float:
    """(x − median) / (1.4826·MAD) over the baseline (DESIGN section 4).

    Examples:
        >>> round(robust_z(110, [100, 104, 98, 101, 97, 103, 99, 102]), 4)
        3.2038
        >>> robust_z(7, [5, 5, 5, 5]), robust_z(5, [5, 5, 5, 5])
        (inf, 0.0)
    """
    centre, scale = robust_scale(baseline)
    return _z(x, centre, scale)


def p_chart(
    num: Sequence[float], den: Sequence[float], n: float, z: float = 3.0
) -> tuple[float, float, float, float]:
    """Centre p̄ = Σnum/Σden over the baseline, σ = √(p̄(1−p̄)/n) for a bucket of ``n``, and the
    control limits p̄ ± z·σ.

    Examples:
        >>> p, s, lo, hi = p_chart([600], [5000], 5000)
        >>> round(lo, 5), round(hi, 5)
        (0.10621, 0.13379)
    """
    total = float(np.nansum(den))
    if total <= 0 or not n or n <= 0:
        return math.nan, math.nan, math.nan, math.nan
    p = float(np.nansum(num)) / total
    sigma = math.sqrt(p * (1 - p) / n)
    return p, sigma, p - z * sigma, p + z * sigma


def p_chart_z(x: float, num: Sequence[float], den: Sequence[float], n: float) -> float:
    """(p − p̄)/√(p̄(1−p̄)/n): the rate ``x`` of a bucket whose denominator is ``n``.

    Examples:
        >>> round(p_chart_z(0.09, [600], [5000], 5000), 3)
        -6.528
    """
    p, sigma, _, _ = p_chart(num, den, n)
    return _z(x, p, sigma)


def kpi_status(
    z: float,
    value: float,
    centre: float,
    volume: float,
    *,
    direction: str = "increase",
    z_alert: float = 3.5,
    z_watch: float = 2.5,
    min_change: float = 0.1,
    min_volume: float = 20,
) -> KpiStatus:
    """``alert`` when z is at least ``z_alert`` in the harmful direction **and** the relative
    change |x/centre − 1| ≥ ``min_change`` **and** the volume ≥ ``min_volume``; ``watch`` when
    |z| ≥ ``z_watch`` (an alert held back by a guard included) or the same move in the good
    direction; else ``ok``. A value of NaN is ``no_data``.

    Examples:
        >>> kpi_status(-4.0, 80, 100, 500)
        'alert'
        >>> kpi_status(-4.0, 95, 100, 500)  # a 5% change: under min_change
        'watch'
        >>> kpi_status(4.0, 120, 100, 500)  # a good-direction move
        'watch'
        >>> kpi_status(-4.0, 80, 100, 10)  # too little volume
        'watch'
        >>> kpi_status(1.0, 101, 100, 500)
        'ok'
    """
    if value is None or math.isnan(value):
        return "no_data"
    if math.isnan(z):
        return "ok"
    harmful = -z if direction == "increase" else z
    change = abs(value / centre - 1) if centre != 0 else (0.0 if value == 0 else math.inf)
    sized = abs(z) >= z_alert and change >= min_change and volume >= min_volume
    if sized and harmful > 0:
        return "alert"
    if sized or abs(z) >= z_watch:
        return "watch"
    return "ok"


def target_status(value: float, target: float | None, direction: str = "increase") -> str | None:
    """``on_target`` when the value meets the target in the KPI's good direction (at least it for
    ``increase``, at most it for ``decrease``), else ``off_target``; None without a target or a
    value.

    Examples:
        >>> target_status(0.12, 0.10), target_status(0.04, 0.05, "decrease")
        ('on_target', 'on_target')
        >>> target_status(0.08, 0.10)
        'off_target'
    """
    if target is None or value is None or math.isnan(value):
        return None
    ok = value >= target if direction == "increase" else value <= target
    return "on_target" if ok else "off_target"
