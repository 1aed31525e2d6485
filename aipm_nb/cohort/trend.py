"""Is retention changing? The latest cohorts against the ones before them, with a CI."""

from __future__ import annotations

import math
from dataclasses import dataclass

from aipm_nb import config
from aipm_nb.cohort.retention import CohortResult
from aipm_nb.results import Result, Verdict, ci_label
from aipm_nb.stats.proportions import two_proportion_diff

__all__ = ["RetentionTrend", "retention_trend"]


@dataclass(frozen=True)
class RetentionTrend(Result):
    """Pooled period-k retention of the ``recent`` latest cohorts with a complete cell at k
    against the ``earlier`` cohorts before them: difference in share points with its CI.
    """

    k: int
    recent_cohorts: int
    earlier_cohorts: int
    recent_rate: float
    earlier_rate: float
    diff: float
    ci_lower: float
    ci_upper: float
    alpha: float
    period: str

    @property
    def status(self) -> str:
        """``improving`` / ``declining`` when the CI excludes 0, else ``flat``."""
        if not self.earlier_cohorts or math.isnan(self.ci_lower):
            return "insufficient_data"
        if self.ci_lower > 0:
            return "improving"
        return "declining" if self.ci_upper < 0 else "flat"

    def sentence(self) -> str:
        """One honest sentence (plain text): a change only when the CI excludes 0."""
        if self.status == "insufficient_data":
            return (
                f"Not enough complete cohorts at {self.period} {self.k} to compare recent "
                "cohorts with earlier ones."
            )
        ci = (
            f"{self.diff * 100:+.1f} pts, {ci_label(self.alpha)} {self.ci_lower * 100:+.1f} to "
            f"{self.ci_upper * 100:+.1f}"
        )
        who = (
            f"The latest {self.recent_cohorts} cohorts retain {self.recent_rate:.1%} at "
            f"{self.period} {self.k} against {self.earlier_rate:.1%} for the "
            f"{self.earlier_cohorts} before them"
        )
        if self.status == "flat":
            return f"{who} ({ci}): no detectable difference."
        word = "higher" if self.status == "improving" else "lower"
        return f"{who}: {abs(self.diff) * 100:.1f} pts {word} ({ci})."

    def verdict(self) -> Verdict:
        """The cohort report's verdict."""
        return Verdict(self.status, (self.sentence(),))  # type: ignore[arg-type]


def retention_trend(
    res: CohortResult, *, k: int | None = None, recent: int = 4, earlier: int = 8
) -> RetentionTrend:
    """Compare the ``recent`` latest cohorts whose period ``k`` is complete with up to
    ``earlier`` cohorts before them (pooled users; Wald CI of the difference at ``res.alpha``).
    ``k`` defaults to 4 when some cohort has a complete period 4, else 1.

    Examples:
        >>> import pandas as pd
        >>> from aipm_nb import cohort
        >>> df = pd.DataFrame({"user_id": [1, 2, 3, 4], "event_time": pd.to_datetime(
        ...     ["2024-01-01", "2024-01-08", "2024-01-02", "2024-01-09"])})
        >>> retention_trend(cohort.analyze_cohorts(df, as_of="2024-03-01")).status
        'insufficient_data'
    """
    if k is None:
        complete4 = res.max_periods >= 4 and res.retained[4].notna().any()
        k = 4 if complete4 else min(1, res.max_periods)
    kept = res.retained[k].dropna()
    sizes = res.cohorts.set_index("cohort")["size"].reindex(kept.index).astype(float)
    rec, before = kept.iloc[-recent:], kept.iloc[:-recent].iloc[-earlier:]
    n_r, n_e = float(sizes[rec.index].sum()), float(sizes[before.index].sum())
    k_r, k_e = float(rec.sum()), float(before.sum())
    diff, lo, hi = two_proportion_diff(k_r, n_r, k_e, n_e, alpha=res.alpha)
    return RetentionTrend(
        k=k,
        recent_cohorts=len(rec),
        earlier_cohorts=len(before),
        recent_rate=k_r / n_r if n_r else math.nan,
        earlier_rate=k_e / n_e if n_e else math.nan,
        diff=diff,
        ci_lower=lo,
        ci_upper=hi,
        alpha=res.alpha or config.ALPHA,
        period=res.period,
    )
