"""Always-valid (sequential) A/B results: GrowthBook's asymptotic confidence sequences
(DESIGN section 4, "sequential"). A team may look at the results every day and stop whenever
they exclude 0: the false-positive rate stays at most α over all looks.

n is the number of units of the two arms compared, se the standard error of the effect shown
(relative or absolute), s² = se²·n, N* the tuning parameter (the sample size at which the
sequence is tightest, default 5000).
"""

from __future__ import annotations

import math

from scipy import special

from aipm_nb.stats.ab import Effect

__all__ = [
    "DEFAULT_TUNING",
    "one_sided_halfwidth",
    "one_sided_p_value",
    "sequential_effect",
    "sequential_halfwidth",
    "sequential_mde",
    "sequential_p_value",
    "sequential_required_n",
    "sequential_rho",
]

DEFAULT_TUNING = 5000.0


def sequential_rho(alpha: float, tuning: float = DEFAULT_TUNING) -> float:
    """ρ = √((−2 ln α + ln(−2 ln α + 1)) / N*).

    Examples:
        >>> round(sequential_rho(0.05, 5000), 6)
        0.03984
    """
    la = -2 * math.log(alpha)
    return math.sqrt((la + math.log(la + 1)) / tuning)


def sequential_halfwidth(
    se: float, n: float, alpha: float, tuning: float = DEFAULT_TUNING
) -> float:
    """Half-width s·√(2(nρ²+1)/(n²ρ²)·ln(√(nρ²+1)/α)) of the two-sided confidence sequence.

    Examples (GrowthBook's published case: relative se 0.33341, n = 6461, N* = 1000):
        >>> round(sequential_halfwidth(0.3334122146, 6461, 0.05, 1000), 5)
        1.0618
    """
    if not se > 0 or not n > 0:
        return math.nan
    rho = sequential_rho(alpha, tuning)
    v = n * rho**2 + 1
    return se * math.sqrt(n) * math.sqrt(2 * v / (n**2 * rho**2) * math.log(math.sqrt(v) / alpha))


def sequential_p_value(
    effect: float, se: float, n: float, alpha: float, tuning: float = DEFAULT_TUNING
) -> float:
    """Always-valid p = min(1, 1/e), e = exp(ρ²·st²/(2(nρ²+1)))/√(nρ²+1), st² = effect²·n/se²
    (ρ from ``alpha``: the p-value is below α exactly when the sequence excludes 0).

    Examples:
        >>> sequential_p_value(0.50336, 0.33341, 6461, 0.05, 1000)
        1.0
        >>> hw = sequential_halfwidth(0.01, 10_000, 0.05)
        >>> round(sequential_p_value(hw, 0.01, 10_000, 0.05), 6)
        0.05
    """
    if not se > 0 or not n > 0:
        return math.nan
    rho = sequential_rho(alpha, tuning)
    v = n * rho**2 + 1
    st2 = effect**2 * n / se**2
    log_e = rho**2 * st2 / (2 * v) - 0.5 * math.log(v)
    return float(min(1.0, math.exp(-log_e)))


def one_sided_halfwidth(se: float, n: float, alpha: float, tuning: float = DEFAULT_TUNING) -> float:
    """One-sided bound's distance s·√(2(nρ²+1)/(nρ)²·ln(1 + √(nρ²+1)/(2α))), ρ from 2α
    (GrowthBook's one-sided confidence sequences, for guardrails).

    Examples:
        >>> one_sided_halfwidth(0.01, 10_000, 0.05) < sequential_halfwidth(0.01, 10_000, 0.05)
        True
    """
    if not se > 0 or not n > 0:
        return math.nan
    rho = sequential_rho(2 * alpha, tuning)
    v = n * rho**2 + 1
    return (
        se
        * math.sqrt(n)
        * math.sqrt(2 * v / (n * rho) ** 2 * math.log(1 + math.sqrt(v) / (2 * alpha)))
    )


def one_sided_p_value(
    harm: float, se: float, n: float, alpha: float, tuning: float = DEFAULT_TUNING
) -> float:
    """Always-valid one-sided p-value of a move ``harm`` in the harmful direction (≤ 0: 1):
    the level at which the one-sided bound (ρ from 2α) just reaches 0.

    Examples:
        >>> hw = one_sided_halfwidth(0.01, 10_000, 0.05)
        >>> round(one_sided_p_value(hw, 0.01, 10_000, 0.05), 6)
        0.05
        >>> one_sided_p_value(-0.5, 0.01, 10_000, 0.05)
        1.0
    """
    if not se > 0 or not n > 0:
        return math.nan
    if harm <= 0:
        return 1.0
    rho = sequential_rho(2 * alpha, tuning)
    v = n * rho**2 + 1
    big_l = harm**2 * (n * rho) ** 2 / (2 * se**2 * n * v)
    if big_l > 700:  # exp overflows: the bound is far past 0
        return 0.0
    return float(min(1.0, math.sqrt(v) / (2 * math.expm1(big_l))))


def sequential_effect(
    e: Effect,
    n: float,
    alpha: float,
    tuning: float = DEFAULT_TUNING,
    *,
    harm: str | None = None,
) -> tuple[Effect, float]:
    """``e`` with always-valid CIs and p-values (absolute and relative), and how many times
    wider the relative interval is than the fixed-horizon one at this n.

    ``harm``: for a guardrail, ``"increase"`` or ``"decrease"`` — the direction in which it is
    good — gives one-sided bounds in the harmful direction (the other side is unbounded).
    """
    out = {}
    for side, est, se, lo, hi in (
        ("abs", e.abs_effect, e.abs_se, e.abs_ci_lower, e.abs_ci_upper),
        ("rel", e.rel_effect, e.rel_se, e.rel_ci_lower, e.rel_ci_upper),
    ):
        if harm is None:
            hw = sequential_halfwidth(se, n, alpha, tuning)
            lo, hi = est - hw, est + hw
            p = sequential_p_value(est, se, n, alpha, tuning)
        else:
            hw = one_sided_halfwidth(se, n, alpha, tuning)
            sign = -1.0 if harm == "increase" else 1.0  # a drop harms an increase-is-good metric
            p = one_sided_p_value(sign * est, se, n, alpha, tuning)
            lo, hi = (-math.inf, est + hw) if sign < 0 else (est - hw, math.inf)
        out[side] = (lo, hi, p)
    fixed = (e.rel_ci_upper - e.rel_ci_lower) / 2
    ratio = sequential_halfwidth(e.rel_se, n, alpha, tuning) / fixed if fixed > 0 else math.nan
    seq = e._replace(
        abs_ci_lower=out["abs"][0],
        abs_ci_upper=out["abs"][1],
        abs_p_value=out["abs"][2],
        rel_ci_lower=out["rel"][0],
        rel_ci_upper=out["rel"][1],
        p_value=out["rel"][2],
    )
    return seq, ratio


def sequential_mde(
    rel_se: float, n: float, alpha: float, tuning: float = DEFAULT_TUNING, power: float = 0.8
) -> float:
    """The relative effect the sequence detects with ``power`` at this n: its half-width plus
    z_power·se (the fixed-horizon MDE is (z_{1−α/2} + z_power)·se).

    Examples:
        >>> round(sequential_mde(0.01, 20_000, 0.05), 4) > round(2.8 * 0.01, 4)
        True
    """
    return sequential_halfwidth(rel_se, n, alpha, tuning) + float(special.ndtri(power)) * rel_se


def sequential_required_n(
    rel_se: float,
    n: float,
    target_effect: float,
    alpha: float,
    tuning: float = DEFAULT_TUNING,
    power: float = 0.8,
) -> float:
    """Units (of both arms) at which `sequential_mde` first reaches ``target_effect``, the
    standard error scaling as 1/√n from its value ``rel_se`` at ``n`` units.

    Examples:
        >>> need = sequential_required_n(0.02, 10_000, 0.05, 0.05)
        >>> need > 10_000 * (0.02 * 2.8 / 0.05) ** 2  # wider than fixed horizon: more units
        True
    """
    if not rel_se > 0 or not target_effect > 0:
        return math.nan

    def mde(m: float) -> float:
        return sequential_mde(rel_se * math.sqrt(n / m), m, alpha, tuning, power)

    lo, hi = 2.0, max(n, 4.0)
    while mde(hi) > target_effect:
        lo, hi = hi, hi * 2
        if hi > 1e15:
            return math.inf
    if mde(lo) <= target_effect:
        return lo
    for _ in range(200):
        mid = (lo + hi) / 2
        if mde(mid) > target_effect:
            lo = mid
        else:
            hi = mid
        if hi - lo < 0.5:
            break
    return hi
