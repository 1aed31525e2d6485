"""One validation helper with one message shape: ``<name> must be <rule>; got <value>[; hint]``."""

from __future__ import annotations

import operator
from collections.abc import Collection
from typing import Any, TypeVar, cast

from aipm_nb.errors import ParameterError

__all__ = ["check_scalar"]

T = TypeVar("T")

_BOUNDS = ((">", operator.gt), (">=", operator.ge), ("<", operator.lt), ("<=", operator.le))
_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _type_name(typ: type | tuple[type, ...]) -> str:
    types = typ if isinstance(typ, tuple) else (typ,)
    return " or ".join(_TYPE_NAMES.get(t, f"a {t.__name__}") for t in types)


def check_scalar(
    value: T,
    name: str,
    *,
    typ: type | tuple[type, ...] | None = None,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
    one_of: Collection[Any] | None = None,
    hint: str = "",
) -> T:
    """Return ``value`` or raise `ParameterError` saying what was given and what is allowed.

    A number given where a float is expected passes (``1`` for ``typ=float``); a bool never
    passes for a number.

    Examples:
        >>> check_scalar(0.05, "alpha", typ=float, gt=0, lt=1)
        0.05
        >>> check_scalar(5.0, "alpha", typ=float, gt=0, lt=1, hint="e.g. alpha=0.05")
        Traceback (most recent call last):
        ...
        aipm_nb.errors.ParameterError: alpha must be < 1; got 5.0; e.g. alpha=0.05
    """
    fix = f"; {hint}" if hint else ""
    if typ is not None:
        types = typ if isinstance(typ, tuple) else (typ,)
        if float in types:
            types = (*types, int)
        numeric = bool not in types and any(t in (int, float) for t in types)
        if not isinstance(value, types) or (numeric and isinstance(value, bool)):
            raise ParameterError(f"{name} must be {_type_name(typ)}; got {value!r}{fix}")
    for bound, (symbol, holds) in zip((gt, ge, lt, le), _BOUNDS, strict=True):
        if bound is None:
            continue
        try:
            passed = bool(holds(cast(Any, value), bound))
        except TypeError:
            passed = False
        if not passed:  # NaN fails every bound
            raise ParameterError(f"{name} must be {symbol} {bound:g}; got {value!r}{fix}")
    if one_of is not None and value not in one_of:
        allowed = ", ".join(repr(v) for v in one_of)
        raise ParameterError(f"{name} must be one of {allowed}; got {value!r}{fix}")
    return value
