"""Distribution drift from counts: PSI over reference bins and the two-sample KS statistic."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from aipm_nb import config

__all__ = ["PsiStatus", "ks_from_counts", "psi_from_counts", "psi_status"]

PsiStatus = Literal["stable", "moderate", "major", "unknown"]


def psi_status(psi: float) -> PsiStatus:
    """``stable`` (< 0.1), ``moderate`` (< 0.25), ``major``, or ``unknown`` (NaN).

    Examples:
        >>> psi_status(0.05), psi_status(0.2), psi_status(0.3), psi_status(float("nan"))
        ('stable', 'moderate', 'major', 'unknown')
    """
    if math.isnan(psi):
        return "unknown"
    if psi < config.PSI_STABLE:
        return "stable"
    return "moderate" if psi < config.PSI_MODERATE else "major"


def psi_from_counts(ref: Sequence[float], cur: Sequence[float]) -> float:
    """PSI = Σ (cur − ref)·ln(cur/ref) over bin shares floored at `config.PSI_FLOOR`.

    Examples:
        >>> round(psi_from_counts([50, 50], [50, 50]), 6)
        0.0
        >>> round(psi_from_counts([90, 10], [50, 50]), 4)
        0.8789
    """
    r = np.asarray(ref, dtype=float)
    c = np.asarray(cur, dtype=float)
    if r.sum() == 0 or c.sum() == 0:
        return math.nan
    r = np.maximum(r / r.sum(), config.PSI_FLOOR)
    c = np.maximum(c / c.sum(), config.PSI_FLOOR)
    return float(np.sum((c - r) * np.log(c / r)))


def ks_from_counts(values: pd.DataFrame) -> float:
    """Two-sample KS statistic from counts per distinct value (``value``, ``ref``, ``cur``);
    the engine computes the same maximum with a cumulative window.

    Examples:
        >>> v = pd.DataFrame({"value": [1, 2, 3], "ref": [2, 1, 0], "cur": [0, 1, 2]})
        >>> round(ks_from_counts(v), 4)
        0.6667
    """
    v = values.groupby("value", sort=True)[["ref", "cur"]].sum()
    r, c = v["ref"].to_numpy(dtype=float), v["cur"].to_numpy(dtype=float)
    if r.sum() == 0 or c.sum() == 0:
        return math.nan
    return float(np.max(np.abs(np.cumsum(r) / r.sum() - np.cumsum(c) / c.sum())))
