"""Distribution-free confidence intervals of a quantile from order statistics (as
``scipy.stats.quantile_test(...).confidence_interval()``): the engine then only has to return
the values at two ranks.
"""

from __future__ import annotations

import math

from scipy import stats as sps

__all__ = ["order_statistic_ranks"]


def order_statistic_ranks(n: int, p: float, confidence: float = 0.95) -> tuple[float, float]:
    """1-based ranks (in ascending order) of the order statistics bounding the two-sided
    ``confidence`` interval of the ``p``-quantile of ``n`` values; NaN where the interval is
    unbounded on that side (too few values).

    Examples (scipy's quantile_test on 1..1000 gives (936, 964)):
        >>> order_statistic_ranks(1000, 0.95)
        (936, 964)
        >>> order_statistic_ranks(10, 0.95)[1]
        nan
    """
    if n <= 0:
        return math.nan, math.nan
    a = (1 - confidence) / 2
    bd = sps.binom(n, p)
    low_index = int(bd.ppf(a)) - 1  # 0-based, as scipy
    high_index = int(bd.isf(a))
    low = low_index + 1 if low_index >= 0 else math.nan
    high = high_index + 1 if high_index < n else math.nan
    return low, high
