"""KPI specs: parsing and validation (DESIGN section 4, "KPI monitoring")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aipm_nb.errors import ParameterError

__all__ = ["EVENT_TYPES", "KPI_TYPES", "MODEL_TYPES", "Kpi", "parse_kpis"]

#: KPIs computed from the events table.
EVENT_TYPES = ("count", "users", "rate", "sum", "mean", "per_user")
#: KPIs computed from the predictions table (the model conventions of DESIGN section 4).
MODEL_TYPES = ("roc_auc", "ece", "psi")
KPI_TYPES = EVENT_TYPES + MODEL_TYPES

_DEFAULT_DIRECTION = {"ece": "decrease", "psi": "decrease"}
_KEYS = {"name", "type", "events", "numerator", "denominator", "column", "direction", "target"}


@dataclass(frozen=True)
class Kpi:
    """One KPI.

    Attributes:
        name: Label in the scorecard, the charts and the JSON summary.
        type: ``count`` (events), ``users`` (distinct users with the events), ``rate``
            (distinct users with a ``numerator`` event among those with a ``denominator``
            event in the same bucket), ``sum`` / ``mean`` (of ``column`` over the events),
            ``per_user`` (events per distinct user with a ``denominator`` event, default any
            event), or a model KPI: ``roc_auc``, ``ece`` (calibration error), ``psi`` (score
            drift against the scored bucket's baseline buckets).
        events: Event names counted (count, users, sum, mean, per_user); None: every event.
        numerator: Event names of a rate's numerator.
        denominator: Event names of a rate's (or per_user's) denominator; None: any event.
        column: The numeric column of a sum or mean.
        direction: ``"increase"`` if higher is better (default; ``ece`` and ``psi``:
            ``"decrease"``).
        target: Optional target; the KPI is then also ``on_target`` or ``off_target``.
    """

    name: str
    type: str
    events: tuple[str, ...] | None = None
    numerator: tuple[str, ...] | None = None
    denominator: tuple[str, ...] | None = None
    column: str | None = None
    direction: str = "increase"
    target: float | None = None

    @property
    def is_model(self) -> bool:
        """Computed from the predictions table."""
        return self.type in MODEL_TYPES

    @property
    def is_rate(self) -> bool:
        """Scored with the p-chart (a share of users)."""
        return self.type == "rate"

    @property
    def event_sets(self) -> list[tuple[str, ...] | None]:
        """The event filters the KPI reads."""
        if self.type == "rate":
            return [self.numerator, self.denominator]
        if self.type == "per_user":
            return [self.events, self.denominator]
        return [self.events] if not self.is_model else []


def _events(value: Any, where: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Sequence) or not value or not all(isinstance(v, str) for v in value):
        raise ParameterError(f"{where} must be an event name or a list of them; got {value!r}")
    return tuple(value)


def _one(raw: Any, i: int) -> Kpi:
    if not isinstance(raw, Mapping):
        raise ParameterError(
            f"kpis[{i}] must be a mapping such as {{'name': 'WAU', 'type': 'users'}}; got {raw!r}"
        )
    name = raw.get("name")
    where = f"kpis[{i}]" + (f" ({name!r})" if name else "")
    if not isinstance(name, str) or not name.strip():
        raise ParameterError(f"{where}: 'name' must be a non-empty string; got {name!r}")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise ParameterError(
            f"{where}: unknown keys {unknown}; a KPI has {', '.join(sorted(_KEYS))}"
        )
    typ = raw.get("type")
    if typ not in KPI_TYPES:
        raise ParameterError(f"{where}: 'type' must be one of {', '.join(KPI_TYPES)}; got {typ!r}")
    direction = raw.get("direction", _DEFAULT_DIRECTION.get(typ, "increase"))
    if direction not in ("increase", "decrease"):
        raise ParameterError(
            f"{where}: 'direction' must be 'increase' (higher is better) or 'decrease'; "
            f"got {direction!r}"
        )
    target = raw.get("target")
    if target is not None and (isinstance(target, bool) or not isinstance(target, int | float)):
        raise ParameterError(f"{where}: 'target' must be a number; got {target!r}")
    column = raw.get("column")
    if typ in ("sum", "mean"):
        if not isinstance(column, str) or not column:
            raise ParameterError(f"{where}: a {typ} KPI needs 'column' (the numeric column)")
    elif column is not None:
        raise ParameterError(f"{where}: 'column' is only for sum and mean KPIs")
    numerator = _events(raw.get("numerator"), f"{where}: 'numerator'")
    denominator = _events(raw.get("denominator"), f"{where}: 'denominator'")
    if typ == "rate" and numerator is None:
        raise ParameterError(
            f"{where}: a rate KPI needs 'numerator' (events; 'denominator' defaults to any event)"
        )
    if typ not in ("rate", "per_user") and (numerator or denominator):
        raise ParameterError(f"{where}: 'numerator'/'denominator' are only for rate and per_user")
    events = _events(raw.get("events"), f"{where}: 'events'")
    if typ in ("rate", *MODEL_TYPES) and events is not None:
        raise ParameterError(f"{where}: 'events' does not apply to a {typ} KPI")
    return Kpi(
        name=name,
        type=typ,
        events=events,
        numerator=numerator,
        denominator=denominator,
        column=column,
        direction=direction,
        target=None if target is None else float(target),
    )


def parse_kpis(kpis: Sequence[Mapping[str, Any] | Kpi]) -> list[Kpi]:
    """Validate KPI specs (mappings as in the notebook's ``kpis`` parameter, or `Kpi`).

    Examples:
        >>> parse_kpis([{"name": "WAU", "type": "users"}])[0].direction
        'increase'
        >>> parse_kpis([{"name": "x", "type": "ratio"}])
        Traceback (most recent call last):
        ...
        aipm_nb.errors.ParameterError: kpis[0] ('x'): 'type' must be one of count, users, \
rate, sum, mean, per_user, roc_auc, ece, psi; got 'ratio'
    """
    if isinstance(kpis, Mapping | str) or not isinstance(kpis, Sequence) or not kpis:
        raise ParameterError(
            "kpis must be a non-empty list of KPI specs such as [{'name': 'WAU', 'type': 'users'}]"
        )
    out = [k if isinstance(k, Kpi) else _one(k, i) for i, k in enumerate(kpis)]
    names = [k.name for k in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ParameterError(f"kpis: names must be unique; {dupes} appear more than once")
    return out
