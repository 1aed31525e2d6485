"""Proportions: Wilson intervals, the difference of two proportions, chi-square across groups."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats as sps

from aipm_nb import config

__all__ = [
    "chi_square_across_groups",
    "newcombe_diff",
    "two_proportion_diff",
    "wilson_interval",
]


def _z(alpha: float | None) -> float:
    return float(sps.norm.ppf(1 - (config.ALPHA if alpha is None else alpha) / 2))


def wilson_interval(k: Any, n: Any, *, alpha: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a binomial proportion k/n (NaN where n = 0).

    Examples:
        >>> lo, hi = wilson_interval(31, 100)
        >>> round(float(lo), 4), round(float(hi), 4)
        (0.2278, 0.4063)
    """
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    z = _z(alpha)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        den = 1 + z * z / n
        center = (p + z * z / (2 * n)) / den
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return center - half, center + half


def two_proportion_diff(
    k1: float, n1: float, k2: float, n2: float, *, alpha: float | None = None
) -> tuple[float, float, float]:
    """Difference p1 − p2 of two independent proportions with its Wald interval.

    Examples:
        >>> d, lo, hi = two_proportion_diff(40, 100, 30, 100)
        >>> round(d, 2), round(lo, 4), round(hi, 4)
        (0.1, -0.0315, 0.2315)
    """
    if not (n1 > 0 and n2 > 0):
        return math.nan, math.nan, math.nan
    p1, p2 = k1 / n1, k2 / n2
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    half = _z(alpha) * se
    return p1 - p2, p1 - p2 - half, p1 - p2 + half


def newcombe_diff(
    k1: float, n1: float, k2: float, n2: float, *, alpha: float | None = None
) -> tuple[float, float, float]:
    """Difference p1 − p2 of two independent proportions with Newcombe's hybrid score interval
    (his method 10, built from the two Wilson intervals; as statsmodels'
    ``confint_proportions_2indep(method="newcomb")``). Unlike the Wald interval it stays inside
    [−1, 1] and keeps its coverage near 0% and 100%.

    Examples:
        >>> d, lo, hi = newcombe_diff(56, 70, 48, 80)
        >>> round(d, 4), round(lo, 4), round(hi, 4)
        (0.2, 0.0524, 0.3339)
    """
    if not (n1 > 0 and n2 > 0):
        return math.nan, math.nan, math.nan
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = (float(x) for x in wilson_interval(k1, n1, alpha=alpha))
    l2, u2 = (float(x) for x in wilson_interval(k2, n2, alpha=alpha))
    d = p1 - p2
    lo = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    hi = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return d, lo, hi


def chi_square_across_groups(kept: Any, n: Any) -> float:
    """p-value of Pearson's chi-square test that every group has the same proportion (no
    continuity correction). Groups with n = 0 or an unknown count are left out; NaN when fewer
    than two groups remain or nobody (or everybody) succeeded.

    Examples:
        >>> round(chi_square_across_groups([40, 30], [100, 100]), 4)
        0.1382
    """
    kept = np.asarray(kept, dtype=float)
    n = np.asarray(n, dtype=float)
    ok = (n > 0) & ~np.isnan(kept)
    if ok.sum() < 2:
        return math.nan
    table = np.vstack([kept[ok], n[ok] - kept[ok]])
    if not (table.sum(axis=1) > 0).all():
        return math.nan
    return float(sps.chi2_contingency(table, correction=False)[1])
