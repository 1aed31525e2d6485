"""Metric specs: parsing, validation and the one rule for the primary metric."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aipm_nb.errors import ParameterError

__all__ = ["DIRECTIONS", "METRIC_TYPES", "Metric", "parse_metrics", "primary_metric"]


METRIC_TYPES = ("proportion", "mean", "ratio", "quantile")

#: Levels a percentile metric may have.
QUANTILE_RANGE = (0.001, 0.999)


DIRECTIONS = ("increase", "decrease")


@dataclass(frozen=True)
class Metric:
    """One metric of an experiment.

    Attributes:
        name: Label in tables and the JSON summary.
        type: ``"proportion"`` (0/1 column), ``"mean"`` or ``"ratio"`` (Σnumerator/Σdenominator).
        column: The metric column (proportion and mean).
        numerator: Numerator column (ratio).
        denominator: Denominator column (ratio).
        covariate: Pre-period column for CUPED (proportion and mean).
        guardrail: Watched for harm, left out of the multiple-testing family.
        direction: ``"increase"`` if higher is better, ``"decrease"`` if lower is better.
        primary: The metric a "ship" decision rests on.
        unit: Shown with means and absolute effects in tables: a currency sign (``"$"``,
            ``"€"``, ``"£"``) goes before the number, anything else (``"ms"``) after it.
        quantile: The level of a ``"quantile"`` metric (0.95 for p95), in [0.001, 0.999].
    """

    name: str
    type: str
    column: str | None = None
    numerator: str | None = None
    denominator: str | None = None
    covariate: str | None = None
    guardrail: bool = False
    direction: str = "increase"
    primary: bool = False
    unit: str | None = None
    quantile: float | None = None

    @property
    def columns(self) -> list[str]:
        """Every column the metric reads."""
        cols = [self.column, self.numerator, self.denominator, self.covariate]
        return [c for c in cols if c]

    @property
    def y(self) -> str:
        """The column whose n, Σ and Σ² the metric needs (the numerator of a ratio)."""
        return str(self.column or self.numerator)

    @property
    def x(self) -> str | None:
        """The column paired with `y` (Σx, Σx², Σxy): the CUPED covariate or the denominator."""
        return self.covariate or self.denominator


def parse_metrics(metrics: Iterable[Mapping[str, Any] | Metric]) -> list[Metric]:
    """Validate metric specs (dicts as in the notebook parameters) into `Metric` objects."""
    out: list[Metric] = []
    allowed = set(Metric.__dataclass_fields__)
    for i, spec in enumerate(metrics):
        if isinstance(spec, Metric):
            m = spec
        else:
            if not isinstance(spec, Mapping):
                raise ParameterError(f"metrics[{i}] must be a dict; got {spec!r}")
            unknown = set(spec) - allowed
            if unknown:
                raise ParameterError(
                    f"metrics[{i}] has unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}"
                )
            if "name" not in spec or "type" not in spec:
                raise ParameterError(f"metrics[{i}] needs 'name' and 'type'; got {dict(spec)}")
            m = Metric(**spec)
        where = f"metric {m.name!r}"
        if m.type not in METRIC_TYPES:
            raise ParameterError(f"{where}: type {m.type!r}; expected one of {METRIC_TYPES}")
        if m.direction not in DIRECTIONS:
            raise ParameterError(
                f"{where}: direction {m.direction!r}; expected one of {DIRECTIONS}"
            )
        if m.type == "ratio":
            if not (m.numerator and m.denominator) or m.column:
                raise ParameterError(f"{where}: a ratio needs 'numerator' and 'denominator'")
            if m.covariate:
                raise ParameterError(f"{where}: CUPED is not supported for ratio metrics")
        elif not m.column or m.numerator or m.denominator:
            raise ParameterError(f"{where}: a {m.type} metric needs 'column' (and no numerator)")
        _check_quantile(m, where)
        out.append(m)
    if not out:
        raise ParameterError("metrics is empty; give at least one metric")
    names = [m.name for m in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ParameterError(f"metric names must be unique; repeated: {dupes}")
    if sum(m.primary for m in out) > 1:
        raise ParameterError("at most one metric may be primary")
    return out


def _check_quantile(m: Metric, where: str) -> None:
    lo, hi = QUANTILE_RANGE
    if m.type != "quantile":
        if m.quantile is not None:
            raise ParameterError(f"{where}: 'quantile' is only for type 'quantile' metrics")
        return
    q = m.quantile
    if isinstance(q, bool) or not isinstance(q, int | float) or not lo <= q <= hi:
        raise ParameterError(
            f"{where}: a quantile metric needs 'quantile' between {lo} and {hi} (0.95 for "
            f"p95); got {q!r}"
        )
    if m.covariate:
        raise ParameterError(
            f"{where}: CUPED (covariate) is not available for quantile metrics; drop the covariate"
        )


def primary_metric(metrics: Sequence[Metric]) -> Metric:
    """The metric a decision rests on: the one marked ``primary``, else the first non-guardrail."""
    for m in metrics:
        if m.primary:
            return m
    for m in metrics:
        if not m.guardrail:
            return m
    return metrics[0]
