"""Typed results of an A/B test evaluation (JSON keys of DESIGN section 5)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from aipm_nb import stats as st
from aipm_nb.summary import json_safe

__all__ = ["Decision", "ExperimentResult", "MetricResult", "PowerResult"]


@dataclass(frozen=True)
class MetricResult:
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
        keys = list(_SUMMARY_KEYS)
        d = asdict(self)
        return {k: json_safe(d[k]) for k in keys}


_SUMMARY_KEYS = (
    "metric", "type", "variant", "control_n", "variant_n", "control_mean", "variant_mean",
    "abs_effect", "abs_ci_lower", "abs_ci_upper", "abs_p_value", "rel_effect", "rel_ci_lower",
    "rel_ci_upper", "p_value", "p_value_adjusted", "chance_to_beat_control", "cuped",
    "guardrail", "significant",
)  # fmt: skip


@dataclass(frozen=True)
class Decision:
    """The recommendation and the reasons behind it, in plain language."""

    recommendation: str  # "ship" | "do_not_ship" | "keep_running" | "investigate"
    reasons: tuple[str, ...]
    variant: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"recommendation": self.recommendation, "reasons": list(self.reasons)}


@dataclass(frozen=True)
class PowerResult:
    """Power of the primary metric for one variant."""

    metric: str
    variant: str
    n_per_arm: int
    mde: float  # relative effect detectable with `power` at the observed sample
    target_effect: float
    required_n_per_arm: int
    days_observed: float | None
    additional_days: int | None


@dataclass(frozen=True)
class ExperimentResult:
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

    def to_pandas(self) -> pd.DataFrame:
        """The metric table, one row per metric x variant."""
        return pd.DataFrame([asdict(m) for m in self.metrics])

    def segments_to_pandas(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(m) for m in self.segments])

    def to_dict(self) -> dict[str, Any]:
        """The ``result`` object of the JSON summary (DESIGN section 5)."""
        return {
            "control": self.control,
            "srm": {
                "p_value": json_safe(self.srm.p_value),
                "mismatch": bool(self.srm.mismatch),
                "counts": dict(self.srm.counts),
            },
            "metrics": [m.to_dict() for m in self.metrics],
            "decision": self.decision.to_dict(),
        }

    def headline(self) -> str:
        """One line for an index: the primary metric's effect and the recommendation."""
        prim = [m for m in self.metrics if not m.guardrail]
        best = self.decision.variant or (prim[0].variant if prim else "")
        ms = [m for m in prim if m.variant == best] or prim
        if not ms:
            return self.decision.recommendation
        m = ms[0]
        return f"{m.variant} {m.rel_effect:+.1%} {m.metric} → {self.decision.recommendation}"

    def _repr_html_(self) -> str:
        from aipm_nb.experiment.present import render_html  # presentation imports results

        return render_html(self)
