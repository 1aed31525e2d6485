"""Funnel parameters: steps, order type and conversion window, checked before any query runs."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd

from aipm_nb.errors import ParameterError

__all__ = ["ORDERS", "Step", "parse_steps", "parse_window", "window_text"]

#: ``ordered``: other events may come between steps; ``strict``: the next step must be the
#: user's next event; ``unordered``: steps in any order (step k = k distinct steps done).
ORDERS = ("ordered", "strict", "unordered")

MIN_STEPS, MAX_STEPS = 2, 20


@dataclass(frozen=True)
class Step:
    """One funnel step: the event names that count for it, and its label in tables."""

    names: tuple[str, ...]

    @property
    def label(self) -> str:
        """``"a"``, or ``"a | b"`` for a step any of several events completes."""
        return " | ".join(self.names)


def parse_steps(steps: Any) -> tuple[Step, ...]:
    """2–20 steps, each an event name or a non-empty list of names.

    Examples:
        >>> [s.label for s in parse_steps(["sign_up", ["ask", "chat"], "buy"])]
        ['sign_up', 'ask | chat', 'buy']
        >>> parse_steps(["only_one"])
        Traceback (most recent call last):
        ...
        aipm_nb.errors.ParameterError: steps needs 2 to 20 steps; got 1: ['only_one']
    """
    if isinstance(steps, str) or not isinstance(steps, list | tuple):
        raise ParameterError(
            f"steps must be a list of event names (or of lists of names); got {steps!r}"
        )
    if not MIN_STEPS <= len(steps) <= MAX_STEPS:
        raise ParameterError(
            f"steps needs {MIN_STEPS} to {MAX_STEPS} steps; got {len(steps)}: {list(steps)!r}"
        )
    out = []
    for i, s in enumerate(steps):
        names = (s,) if isinstance(s, str) else tuple(s) if isinstance(s, list | tuple) else ()
        if not names or not all(isinstance(n, str) and n for n in names):
            raise ParameterError(
                f"steps[{i}] must be an event name or a non-empty list of event names; got {s!r}"
            )
        out.append(Step(tuple(dict.fromkeys(names))))
    return tuple(out)


def shares_names(steps: tuple[Step, ...]) -> bool:
    """Whether an event name belongs to two steps."""
    names = [n for s in steps for n in s.names]
    return len(names) != len(set(names))


def parse_window(window: Any) -> int:
    """The conversion window in whole seconds (at least one).

    Examples:
        >>> parse_window("14 days"), parse_window("5 minutes"), parse_window("1h")
        (1209600, 300, 3600)
        >>> parse_window(14)
        Traceback (most recent call last):
        ...
        aipm_nb.errors.ParameterError: window must be a duration such as '14 days'; got 14
    """
    if isinstance(window, bool | int | float):
        raise ParameterError(f"window must be a duration such as '14 days'; got {window!r}")
    try:
        td = pd.Timedelta(window) if not isinstance(window, dt.timedelta) else window
    except (ValueError, TypeError):
        raise ParameterError(
            f"window must be a duration such as '14 days' or '30 minutes'; got {window!r}"
        ) from None
    secs = pd.Timedelta(td).total_seconds()
    if pd.isna(secs) or secs < 1 or secs != int(secs):
        raise ParameterError(
            f"window must be a whole number of seconds, at least 1; got {window!r}"
        )
    return int(secs)


def window_text(seconds: int) -> str:
    """A window in words.

    Examples:
        >>> window_text(1209600), window_text(300), window_text(5400)
        ('14 days', '5 minutes', '90 minutes')
    """
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} seconds"  # pragma: no cover - every whole second matches "second"
