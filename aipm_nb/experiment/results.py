"""Typed results of an A/B test evaluation (JSON keys of DESIGN section 5)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import pandas as pd

from aipm_nb import stats as st
from aipm_nb.results import Result, Verdict, ci_label, jsonable, power_label

__all__ = ["Decision", "ExperimentResult", "MetricResult", "PowerResult"]


#: The recommendations of `decide`, strongest evidence first.
Recommendation = Literal["investigate", "do_not_ship", "ship", "keep_running"]


@dataclass(frozen=True)
class MetricResult(Result):
    """One metric x variant comparison against the control (JSON keys of DESIGN section 5)."""

    metric: str
    type: str
    variant: str
    control_n: int
    variant_n: int
    control_mean: float
    variant_mean: float
    abs_effect: float
    abs_ci_lower: float
    abs_ci_upper: float
    abs_p_value: float
    rel_effect: float
    rel_ci_lower: float
    rel_ci_upper: float
    p_value: float
    p_value_adjusted: float
    chance_to_beat_control: float
    cuped: bool
    guardrail: bool
    significant: bool
    direction: str = "increase"
    rel_se: float = math.nan
    mde: float = math.nan
    segment: str | None = None
    segment_value: str | None = None
    small_sample: bool = False  # an arm below min_units_per_arm: the verdict uses abs_p_value
    unit: str | None = None  # of the metric's values (tables show it)
    sequential: bool = False  # always-valid CIs and p-values (README, "Sequential results")
    sequential_width_ratio: float = math.nan  # sequential / fixed-horizon relative half-width
    quantile: float | None = None  # the level of a quantile metric (0.95: p95)

    def with_unit(self, value: float, *, signed: bool = False) -> str:
        """``value`` with the metric's unit: ``$20.33``, ``318.7 ms``.

        Examples:
            >>> m = MetricResult("rev", "mean", "t", 1, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0, 1, 1, 1,
            ...                  False, False, False, unit="$")
            >>> m.with_unit(20.333), m.with_unit(0.4729, signed=True)
            ('$20.33', '+$0.4729')
        """
        number = f"{abs(value):.4g}" if signed else f"{value:.4g}"
        sign = ("+" if value >= 0 else "-") if signed else ""
        if not self.unit:
            return f"{value:+.4g}" if signed else number
        if self.unit in CURRENCIES:
            return f"{sign}{self.unit}{number}"
        return f"{sign}{number} {self.unit}"

    @property
    def verdict_p_value(self) -> float:
        """The p-value significance rests on: the relative effect's, or the absolute effect's
        Welch test when an arm is small (``small_sample``).
        """
        return self.abs_p_value if self.small_sample else self.p_value

    @property
    def improved(self) -> bool:
        """Significant and in the good direction."""
        good = self.rel_effect > 0 if self.direction == "increase" else self.rel_effect < 0
        return self.significant and good

    @property
    def harmed(self) -> bool:
        """Significant and in the bad direction."""
        bad = self.rel_effect < 0 if self.direction == "increase" else self.rel_effect > 0
        return self.significant and bad

    def to_dict(self) -> dict[str, Any]:
        """The DESIGN section 5 keys of one metric row."""
        out = {k: jsonable(getattr(self, k)) for k in METRIC_KEYS}
        if self.quantile is not None:
            out["quantile"] = self.quantile
        return out


#: Units written before the number.
CURRENCIES = ("$", "€", "£", "¥")

#: Keys of one ``result.metrics`` row of the JSON summary (DESIGN section 5).
METRIC_KEYS = (
    "metric",
    "type",
    "variant",
    "control_n",
    "variant_n",
    "control_mean",
    "variant_mean",
    "abs_effect",
    "abs_ci_lower",
    "abs_ci_upper",
    "abs_p_value",
    "rel_effect",
    "rel_ci_lower",
    "rel_ci_upper",
    "p_value",
    "p_value_adjusted",
    "chance_to_beat_control",
    "cuped",
    "guardrail",
    "significant",
    "sequential",
)


@dataclass(frozen=True)
class Decision(Result):
    """The recommendation and the reasons behind it, in plain language."""

    recommendation: Recommendation
    reasons: tuple[str, ...]
    variant: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """``recommendation`` and ``reasons`` (DESIGN section 5)."""
        return {"recommendation": self.recommendation, "reasons": list(self.reasons)}

    def to_pandas(self) -> pd.DataFrame:
        """One row per reason."""
        return pd.DataFrame({"recommendation": self.recommendation, "reason": self.reasons})


@dataclass(frozen=True)
class PowerResult(Result):
    """Power of the primary metric for one variant (``mde`` is detectable with ``power`` at
    significance ``alpha``).
    """

    metric: str
    variant: str
    n_per_arm: int
    mde: float  # relative effect detectable with `power` at the observed sample
    target_effect: float
    required_n_per_arm: int
    days_observed: float | None
    additional_days: int | None
    power: float = 0.8
    alpha: float = 0.05

    @property
    def label(self) -> str:
        """E.g. ``"detectable effect (80% power)"``."""
        return f"detectable effect ({power_label(self.power)})"


@dataclass(frozen=True)
class ExperimentResult(Result):
    """Everything `analyze_experiment` found. Render in a notebook by ending a cell with it."""

    control: str
    variants: tuple[str, ...]
    srm: st.SRMResult
    metrics: tuple[MetricResult, ...]
    decision: Decision
    power: tuple[PowerResult, ...]
    alpha: float
    correction: str
    rows: int
    warnings: tuple[dict[str, str], ...] = ()
    segments: tuple[MetricResult, ...] = ()
    cumulative: pd.DataFrame | None = field(default=None, compare=False)
    primary_metric: str = ""
    target_power: float = 0.8
    sequential: bool = False
    sequential_tuning: float = 5000.0

    @property
    def ci_label(self) -> str:
        """The interval label of this result's alpha, e.g. ``"95% CI"`` (``"95% always-valid
        CI"`` for sequential results).
        """
        label = ci_label(self.alpha)
        return label.replace("CI", "always-valid CI") if self.sequential else label

    def primary_rows(self) -> list[MetricResult]:
        """The primary metric's rows, one per variant."""
        return [m for m in self.metrics if m.metric == self.primary_metric]

    def to_pandas(self) -> pd.DataFrame:
        """The metric table, one row per metric x variant."""
        return pd.DataFrame([asdict(m) for m in self.metrics])

    def segments_to_pandas(self) -> pd.DataFrame:
        """The segment table, one row per segment value x metric x variant."""
        return pd.DataFrame([asdict(m) for m in self.segments])

    @property
    def verdict(self) -> Verdict:
        """The decision, with the reasons a reader needs: when SHIP and "N more days" appear
        together, why both are true.
        """
        reasons = list(self.decision.reasons)
        more = [p for p in self.power if p.additional_days]
        if self.decision.recommendation == "ship" and more:
            p = max(more, key=lambda p: p.additional_days or 0)
            reasons.append(
                f"The power table's {p.additional_days} more days are what this test would need "
                f"to detect a {p.target_effect:.0%} effect on {p.metric}; the observed effect is "
                "larger and already significant, so the decision does not wait for them."
            )
        return Verdict(self.decision.recommendation, tuple(reasons))

    def to_dict(self) -> dict[str, Any]:
        """The ``result`` object of the JSON summary (DESIGN section 5)."""
        return {
            "verdict": self.verdict.to_dict(),
            "control": self.control,
            "primary_metric": self.primary_metric,
            "alpha": self.alpha,
            "sequential": self.sequential,
            "srm": {
                "p_value": jsonable(self.srm.p_value),
                "mismatch": bool(self.srm.mismatch),
                "counts": dict(self.srm.counts),
            },
            "metrics": [m.to_dict() for m in self.metrics],
            "decision": self.decision.to_dict(),
        }

    def headline(self) -> str:
        """One line for an index: the primary metric's effect and the recommendation."""
        prim = self.primary_rows()
        best = self.decision.variant or (prim[0].variant if prim else "")
        ms = [m for m in prim if m.variant == best] or prim
        if not ms:
            return self.decision.recommendation
        m = ms[0]
        return f"{m.variant} {m.rel_effect:+.1%} {m.metric} → {self.decision.recommendation}"

    def _repr_html_(self) -> str:
        from aipm_nb.experiment.present import render_html  # presentation imports results

        return render_html(self)
