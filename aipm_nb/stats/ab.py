"""A/B statistics on sufficient statistics (n, sums, sums of squares, cross-products).

Nothing here sees a row: the engine aggregates, these functions do the arithmetic. The
conventions are those of GrowthBook's gbstats frequentist engine (DESIGN section 4):
Welch-Satterthwaite degrees of freedom, delta-method relative effects, CUPED regression
adjustment with a pooled theta, chi-square SRM, Holm / Benjamini-Hochberg corrections.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy import special
from scipy import stats as sps

from aipm_nb import config
from aipm_nb.errors import ParameterError

__all__ = [
    "ArmStats",
    "Effect",
    "Moments",
    "Paired",
    "SRMResult",
    "adjust_pvalues",
    "arm_from_sums",
    "chance_to_beat_control",
    "cuped_arms",
    "effect",
    "mean_arm",
    "minimum_detectable_effect",
    "quantile_arm",
    "quantile_levels",
    "quantile_min_n",
    "ratio_arm",
    "required_sample_size",
    "sample_covariance",
    "sample_variance",
    "srm_test",
]


@dataclass(frozen=True)
class Moments:
    """Count, sum and sum of squares of one metric in one group; pools by addition.

    The sums may be taken around a ``shift`` (Σ(x − shift), Σ(x − shift)²): a shift near the
    values keeps the variance exact in float64 when the values carry a large offset (3e7 + N(0,
    1)). Only moments with the same shift can be added.

    Examples:
        >>> m = Moments(2, 3.0, 5.0) + Moments(1, 3.0, 9.0)  # x = 1, 2 and 3
        >>> m.n, m.mean, m.var
        (3, 2.0, 1.0)
        >>> s = Moments(3, 0.0, 2.0, shift=1e8 + 2)  # x = 1e8 + 1, 1e8 + 2, 1e8 + 3
        >>> s.mean, s.var
        (100000002.0, 1.0)
    """

    n: float
    total: float
    total_sq: float
    shift: float = 0.0

    @property
    def mean(self) -> float:
        """Σx / n (NaN without units)."""
        return self.shift + self.total / self.n if self.n else math.nan

    @property
    def var(self) -> float:
        """Sample variance (0 below two units)."""
        return sample_variance(self.n, self.total, self.total_sq)

    def __add__(self, other: Moments) -> Moments:
        if self.shift != other.shift:
            raise ValueError("cannot pool moments taken around different shifts")
        return Moments(
            self.n + other.n, self.total + other.total, self.total_sq + other.total_sq, self.shift
        )


@dataclass(frozen=True)
class Paired:
    """Two metrics of the same units (y and x) with Σxy: what CUPED and ratio metrics need.

    Examples:
        >>> p = Paired(Moments(3, 6.0, 14.0), Moments(3, 3.0, 5.0), 8.0)  # y=1,2,3  x=0,1,2
        >>> round(p.cov, 6)
        1.0
    """

    y: Moments
    x: Moments
    total_xy: float  # Σ(x − x.shift)(y − y.shift)

    @property
    def cov(self) -> float:
        """Sample covariance of y and x."""
        return sample_covariance(self.y.n, self.x.total, self.y.total, self.total_xy)

    def __add__(self, other: Paired) -> Paired:
        return Paired(self.y + other.y, self.x + other.x, self.total_xy + other.total_xy)


class ArmStats(NamedTuple):
    """Summary of one arm for one metric.

    Attributes:
        n: Number of units.
        mean: Mean of the (possibly CUPED-adjusted) metric per unit.
        var: Variance per unit (sample variance; p(1-p) for proportions).
        raw_mean: Unadjusted mean (the base of relative effects); equals ``mean`` without CUPED.
        raw_var: Unadjusted variance.
        rel_var_control: Only for a CUPED control arm: the control term of the relative
            variance's numerator, ``v_c*m_t^2/m_c^2 - 2*theta*c_c*m_t/m_c + theta^2*v_x,c``
            needs the treatment mean, so CUPED arms carry ``theta``, ``cov`` and ``var_x``.
        theta: CUPED coefficient (0 without CUPED).
        cov: Cov(y, x) in this arm (0 without CUPED).
        var_x: Var(x) in this arm (0 without CUPED).
    """

    n: float
    mean: float
    var: float
    raw_mean: float
    raw_var: float
    theta: float = 0.0
    cov: float = 0.0
    var_x: float = 0.0


class Effect(NamedTuple):
    """Treatment-vs-control comparison of one metric.

    ``abs_*`` refer to the difference of means, ``rel_*`` to the relative difference
    ``(m_t - m_c) / |m_c|``; ``p_value`` is the relative effect's (the headline).
    """

    abs_effect: float
    abs_se: float
    abs_ci_lower: float
    abs_ci_upper: float
    abs_p_value: float
    rel_effect: float
    rel_se: float
    rel_ci_lower: float
    rel_ci_upper: float
    p_value: float
    df: float
    chance_to_beat_control: float


def sample_variance(n: float, s: float, ss: float) -> float:
    """Unbiased variance from n, Σx and Σx² (0 when n < 2).

    Examples:
        >>> sample_variance(3, 6.0, 14.0)  # x = 1, 2, 3
        1.0
    """
    if n < 2:
        return 0.0
    return max((ss - s * s / n) / (n - 1), 0.0)


def sample_covariance(n: float, sx: float, sy: float, sxy: float) -> float:
    """Unbiased covariance from n, Σx, Σy and Σxy (0 when n < 2).

    Examples:
        >>> sample_covariance(3, 6.0, 3.0, 8.0)  # x = 1, 2, 3; y = 0, 1, 2
        1.0
    """
    if n < 2:
        return 0.0
    return (sxy - sx * sy / n) / (n - 1)


def arm_from_sums(n: float, s: float, ss: float, *, proportion: bool = False) -> ArmStats:
    """Arm statistics of a mean or proportion metric from n, Σx, Σx².

    Examples:
        >>> arm_from_sums(100, 49, 49, proportion=True).var
        0.2499
    """
    mean = s / n
    var = mean * (1 - mean) if proportion else sample_variance(n, s, ss)
    return ArmStats(n, mean, var, mean, var)


def mean_arm(m: Moments, *, proportion: bool = False) -> ArmStats:
    """`arm_from_sums` on typed `Moments`.

    Examples:
        >>> mean_arm(Moments(3, 6.0, 14.0)).var
        1.0
    """
    mean = m.mean
    var = mean * (1 - mean) if proportion else m.var
    return ArmStats(m.n, mean, var, mean, var)


#: z of the 95% order-statistic band of a quantile (DESIGN section 4, percentile metrics).
QUANTILE_Z = 1.959964


def quantile_min_n(nu: float, z: float = QUANTILE_Z) -> float:
    """Units an arm needs above for its quantile band to stay inside (0, 1): n must exceed
    z²·ν/(1−ν) and z²·(1−ν)/ν (e.g. 73 for p95, 381 for p99).

    Examples:
        >>> round(quantile_min_n(0.95), 1), round(quantile_min_n(0.5), 2)
        (73.0, 3.84)
    """
    return max(z * z * nu / (1 - nu), z * z * (1 - nu) / nu)


def quantile_levels(n: float, nu: float, z: float = QUANTILE_Z) -> tuple[float, float]:
    """Levels ν ∓ z·√(ν(1−ν)/n) of the quantiles L and U that bracket the sample quantile.

    Examples:
        >>> [round(x, 5) for x in quantile_levels(2000, 0.95)]
        [0.94045, 0.95955]
    """
    half = z * math.sqrt(nu * (1 - nu) / n)
    return nu - half, nu + half


def quantile_arm(
    n: float, q: float, lower: float, upper: float, *, z: float = QUANTILE_Z
) -> ArmStats:
    """Arm statistics of a percentile metric (Deng et al. 2018, as GrowthBook): the sample
    quantile as the "mean", per-unit variance (n − 1)·((U − L)/(2z))² so that se² = var/n.

    Examples:
        >>> a = quantile_arm(2000, 500.0, 480.0, 520.0)
        >>> round(math.sqrt(a.var / a.n), 4)  # se = (U - L) / (2z), up to (n-1)/n
        10.2017
    """
    var = (n - 1) * ((upper - lower) / (2 * z)) ** 2
    return ArmStats(n, q, var, q, var)


def ratio_arm(s: Paired) -> ArmStats:
    """Arm statistics of a ratio metric Σy/Σx (numerator y, denominator x) with the unit as
    the randomisation unit.

    Delta method: Var per unit = (σ²_num − 2·R·σ_num,den + R²·σ²_den) / μ_den², R = μ_num/μ_den.

    Examples:
        >>> a = ratio_arm(Paired(Moments(3, 6.0, 14.0), Moments(3, 3.0, 5.0), 8.0))
        >>> a.mean, round(a.var, 6)
        (2.0, 1.0)
    """
    mu_n, mu_d = s.y.mean, s.x.mean
    r = mu_n / mu_d
    var = max((s.y.var - 2 * r * s.cov + r * r * s.x.var) / (mu_d * mu_d), 0.0)
    return ArmStats(s.y.n, r, var, r, var)


def cuped_arms(
    control: Paired, treatment: Paired, *, proportion: bool = False
) -> tuple[ArmStats, ArmStats]:
    """CUPED-adjusted arm statistics of two arms (y the metric, x the pre-period covariate),
    theta pooled over both. Adjusted mean a = m_y − θ·m_x, variance w = v_y + θ²·v_x − 2θ·c.

    Examples:
        >>> c = Paired(Moments(3, 6.0, 14.0), Moments(3, 3.0, 5.0), 8.0)
        >>> t = Paired(Moments(3, 9.0, 29.0), Moments(3, 3.0, 5.0), 11.0)
        >>> a, b = cuped_arms(c, t)
        >>> a.theta, a.var, b.mean - a.mean
        (1.0, 0.0, 1.0)
    """
    pooled = control + treatment
    theta = pooled.cov / pooled.x.var if pooled.x.var > 0 else 0.0
    out = []
    for arm in (control, treatment):
        raw = mean_arm(arm.y, proportion=proportion)
        c, vx = arm.cov, arm.x.var
        w = max(raw.var + theta * theta * vx - 2 * theta * c, 0.0)
        out.append(
            ArmStats(arm.y.n, raw.mean - theta * arm.x.mean, w, raw.mean, raw.var, theta, c, vx)
        )
    return out[0], out[1]


def _welch_df(c: ArmStats, t: ArmStats) -> float:
    num = (t.var / t.n + c.var / c.n) ** 2
    den = t.var**2 / (t.n**2 * (t.n - 1)) + c.var**2 / (c.n**2 * (c.n - 1))
    return num / den if den > 0 else math.inf


def _two_sided(est: float, se: float, df: float, alpha: float) -> tuple[float, float, float]:
    if not se > 0:
        return math.nan, math.nan, math.nan
    p = float(2 * special.stdtr(df, -abs(est / se)))  # = 2·T_df.sf(|t|), fast
    half = float(special.stdtrit(df, 1 - alpha / 2)) * se
    return est - half, est + half, p


def chance_to_beat_control(rel_effect: float, rel_se: float, direction: str = "increase") -> float:
    """P(the variant is better than the control) under a flat prior: Φ(±effect / se), the sign
    following ``direction`` (``"decrease"`` when lower is better). NaN without a standard error.

    Examples:
        >>> round(chance_to_beat_control(0.02, 0.01), 4)
        0.9772
        >>> round(chance_to_beat_control(0.02, 0.01, "decrease"), 4)
        0.0228
    """
    if not rel_se > 0:
        return math.nan
    sign = -1.0 if direction == "decrease" else 1.0
    return float(special.ndtr(sign * rel_effect / rel_se))


def effect(
    control: ArmStats,
    treatment: ArmStats,
    *,
    alpha: float | None = None,
    direction: str = "increase",
) -> Effect:
    """Absolute and relative effect of ``treatment`` against ``control`` (gbstats' t-test).

    ``alpha`` defaults to `config.ALPHA`; ``direction`` orients the chance to beat control.

    Examples (GrowthBook's published test case):
        >>> c = arm_from_sums(3407, 1396.87, 52377.9767)
        >>> t = arm_from_sums(3461, 2422.7, 134698.29)
        >>> e = effect(c, t)
        >>> round(e.rel_effect, 5), round(e.rel_ci_lower, 5), round(e.p_value, 5)
        (0.70732, -0.03526, 0.06191)
    """
    alpha = config.ALPHA if alpha is None else alpha
    c, t = control, treatment
    d = t.mean - c.mean
    se = math.sqrt(t.var / t.n + c.var / c.n)
    df = _welch_df(c, t)
    lo, hi, p = _two_sided(d, se, df, alpha)
    m_c, m_t = c.raw_mean, t.raw_mean
    rel = d / abs(m_c)
    if c.theta == 0.0 and t.theta == 0.0:
        rel_var = t.var / (t.n * m_c**2) + c.var * m_t**2 / (c.n * m_c**4)
    else:
        th = c.theta
        ctrl = c.raw_var * m_t**2 / m_c**2 - 2 * th * c.cov * m_t / m_c + th**2 * c.var_x
        rel_var = t.var / (t.n * m_c**2) + ctrl / (c.n * m_c**2)
    rel_se = math.sqrt(max(rel_var, 0.0))
    rlo, rhi, rp = _two_sided(rel, rel_se, df, alpha)
    ctbc = chance_to_beat_control(rel, rel_se, direction)
    return Effect(d, se, lo, hi, p, rel, rel_se, rlo, rhi, rp, df, ctbc)


class SRMResult(NamedTuple):
    """Sample-ratio mismatch test: chi-square goodness of fit of unit counts."""

    p_value: float
    mismatch: bool
    counts: dict[str, int]
    expected_shares: dict[str, float]


def srm_test(
    counts: dict[str, int],
    expected_shares: dict[str, float] | None = None,
    *,
    alpha: float | None = None,
) -> SRMResult:
    """Chi-square test of the unit counts against the expected shares (equal by default).

    Examples:
        >>> srm_test({"control": 5000, "treatment": 5000}).mismatch
        False
        >>> srm_test({"control": 5000, "treatment": 4600}).mismatch
        True
    """
    alpha = config.SRM_ALPHA if alpha is None else alpha
    names = list(counts)
    if expected_shares is None:
        shares = {k: 1 / len(names) for k in names}
    else:
        missing = [k for k in names if k not in expected_shares]
        if missing or set(expected_shares) - set(names):
            raise ParameterError(
                f"expected_shares names {sorted(expected_shares)} but the experiment has "
                f"variants {sorted(names)}; give one share per variant"
            )
        total = sum(expected_shares.values())
        if total <= 0 or any(v <= 0 for v in expected_shares.values()):
            raise ParameterError(f"expected_shares must be positive; got {expected_shares}")
        shares = {k: expected_shares[k] / total for k in names}
    obs = np.array([counts[k] for k in names], dtype=float)
    exp = obs.sum() * np.array([shares[k] for k in names])
    p = float(sps.chisquare(obs, exp).pvalue) if len(names) > 1 else 1.0
    return SRMResult(p, p < alpha, {k: int(v) for k, v in counts.items()}, shares)


def adjust_pvalues(p_values: Sequence[float], method: str = "holm") -> np.ndarray:
    """Holm (family-wise) or Benjamini-Hochberg (false discovery rate) adjusted p-values.

    NaN p-values are left out of the family and stay NaN.

    Examples:
        >>> adjust_pvalues([0.01, 0.04, 0.03], "holm").round(4).tolist()
        [0.03, 0.06, 0.06]
        >>> adjust_pvalues([0.01, 0.04, 0.03], "bh").round(4).tolist()
        [0.03, 0.04, 0.04]
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    q = p[ok]
    m = len(q)
    if m == 0:
        return out
    order = np.argsort(q, kind="stable")
    sorted_p = q[order]
    if method == "holm":
        adj = np.maximum.accumulate((m - np.arange(m)) * sorted_p)
    elif method in ("bh", "fdr_bh", "benjamini-hochberg"):
        adj = np.minimum.accumulate(m / np.arange(m, 0, -1) * sorted_p[::-1])[::-1]
    elif method in ("none", None):
        adj = sorted_p
    else:
        raise ParameterError(f"correction must be 'holm', 'bh' or 'none'; got {method!r}")
    res = np.empty(m)
    res[order] = np.minimum(adj, 1.0)
    out[ok] = res
    return out


def required_sample_size(
    rel_se: float,
    n_per_arm: float,
    target_effect: float,
    *,
    alpha: float | None = None,
    power: float | None = None,
) -> float:
    """Units per arm needed to detect a relative effect ``target_effect`` (two-sided test),
    scaling the observed relative standard error ``rel_se`` measured at ``n_per_arm`` units.
    ``alpha`` and ``power`` default to `config.ALPHA` and `config.POWER`.

    Examples:
        >>> round(required_sample_size(0.02, 10_000, 0.05), 0)
        12558.0
    """
    return float(n_per_arm * (rel_se * _z_power(alpha, power) / target_effect) ** 2)


def minimum_detectable_effect(
    rel_se: float, *, alpha: float | None = None, power: float | None = None
) -> float:
    """Smallest relative effect detectable with the given power at this standard error.

    Examples:
        >>> round(minimum_detectable_effect(0.01), 4)
        0.028
    """
    return float(_z_power(alpha, power) * rel_se)


def _z_power(alpha: float | None, power: float | None) -> float:
    alpha = config.ALPHA if alpha is None else alpha
    power = config.POWER if power is None else power
    return float(special.ndtri(1 - alpha / 2) + special.ndtri(power))
