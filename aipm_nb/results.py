"""One result protocol: every public result is a frozen dataclass deriving from `Result`.

`Result` gives ``to_dict()`` (JSON-safe: NaN/inf → None, timestamps → ISO text, tables → lists of
records), ``to_pandas()`` (a table) and ``_repr_html_()`` (escaped HTML, so JupyterLab renders a
result at the end of a cell). A subclass overrides ``to_dict`` where DESIGN section 5 fixes the
keys, and ``to_pandas`` where one of its tables is *the* table; the rest is derived here. Labels
such as "95% CI" are built from the result's own ``alpha`` with `ci_label`, never typed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from aipm_nb.markup import html_text, md

__all__ = [
    "NULL_SEGMENT",
    "VERDICT_TONE",
    "WARNING_CODES",
    "Result",
    "Verdict",
    "WarningCode",
    "ci_label",
    "jsonable",
    "power_label",
    "warning",
]

#: The group of rows whose segment value is null (A/B segments, cohort comparisons).
NULL_SEGMENT = "(null)"

#: Every warning code an analysis may emit (``warnings: [{"code", "message"}]``, DESIGN §5).
WarningCode = Literal[
    "null_ids",
    "null_variant",
    "missing_values",
    "small_sample",
    "future_events",
    "small_cohorts",
    "constant_score",
    "single_class",
    "no_labels",
    "unlabelled_windows",
    "below_floor",
]
WARNING_CODES: tuple[str, ...] = WarningCode.__args__  # type: ignore[attr-defined]


def ci_label(alpha: float) -> str:
    """The interval label for a significance level.

    Examples:
        >>> ci_label(0.05), ci_label(0.1), ci_label(0.01), ci_label(0.025)
        ('95% CI', '90% CI', '99% CI', '97.5% CI')
    """
    return f"{_pct(1 - alpha)} CI"


def power_label(power: float) -> str:
    """``"80% power"`` for 0.8.

    Examples:
        >>> power_label(0.8), power_label(0.9)
        ('80% power', '90% power')
    """
    return f"{_pct(power)} power"


def _pct(x: float) -> str:
    return f"{round(x * 100, 1):g}%"


def jsonable(v: Any) -> Any:
    """A JSON-safe copy of ``v``: dataclasses and mappings → dicts, tables → records,
    timestamps → ISO text, NaN/±inf → None, numpy scalars → Python numbers.

    Examples:
        >>> jsonable({"a": float("nan"), "t": pd.Timestamp("2024-01-02"), "x": np.int64(3)})
        {'a': None, 't': '2024-01-02T00:00:00', 'x': 3}
    """
    if isinstance(v, Result):
        return v.to_dict()
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {f.name: jsonable(getattr(v, f.name)) for f in dataclasses.fields(v)}
    if isinstance(v, pd.DataFrame):
        return [jsonable(r) for r in v.to_dict("records")]
    if isinstance(v, pd.Series):
        return [jsonable(x) for x in v.tolist()]
    if isinstance(v, pd.Timestamp | dt.datetime | dt.date):
        return None if pd.isna(v) else v.isoformat()
    if isinstance(v, bool | str) or v is None:
        return v
    if isinstance(v, float | np.floating):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, int | np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, Mapping):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple | np.ndarray):
        return [jsonable(x) for x in v]
    if v is pd.NaT or v is pd.NA:
        return None
    return str(v)


class Result:
    """Mixin of the result protocol; subclasses are ``@dataclass(frozen=True)``."""

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-safe."""
        fields = dataclasses.fields(self)  # type: ignore[arg-type]
        return {f.name: jsonable(getattr(self, f.name)) for f in fields}

    def to_pandas(self) -> pd.DataFrame:
        """The result as a table: its first table field, else one row of its scalar fields."""
        fields = [getattr(self, f.name) for f in dataclasses.fields(self)]  # type: ignore[arg-type]
        for v in fields:
            if isinstance(v, pd.DataFrame):
                return v.copy()
        scalars = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
            if isinstance(getattr(self, f.name), str | int | float | bool | type(None))
        }
        return pd.DataFrame([scalars])

    def _repr_html_(self) -> str:
        table = self.to_pandas().to_html(index=False, escape=True, na_rep="–")
        return f"<div><strong>{html_text(type(self).__name__)}</strong>{table}</div>"


#: Verdict statuses, by report kind (README, "Verdicts").
VerdictStatus = Literal[
    "ship",
    "do_not_ship",
    "keep_running",
    "investigate",  # A/B (the decision)
    "healthy",
    "watch",
    "degraded",  # model performance
    "improving",
    "flat",
    "declining",  # cohorts
    "on_track",
    "alert",  # KPI monitoring (and "watch")
    "differs",
    "no_difference",
    "measured",  # funnels (groups or arms compared; nothing compared)
    "insufficient_data",
]
#: How the index colours each status: good, neutral or bad news.
VERDICT_TONE = {
    "ship": "good",
    "on_track": "good",
    "alert": "bad",
    "healthy": "good",
    "improving": "good",
    "keep_running": "neutral",
    "flat": "neutral",
    "watch": "neutral",
    "insufficient_data": "neutral",
    "differs": "neutral",
    "no_difference": "neutral",
    "measured": "neutral",
    "do_not_ship": "bad",
    "investigate": "bad",
    "degraded": "bad",
    "declining": "bad",
}


@dataclass(frozen=True)
class Verdict(Result):
    """What a report concludes, first on its page and in its JSON (``result.verdict``)."""

    status: VerdictStatus
    reasons: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """``{"status", "reasons"}``."""
        return {"status": self.status, "reasons": list(self.reasons)}

    def markdown(self) -> str:
        r"""The verdict as the first lines of an executive summary. Reasons are plain text (they
        name columns, segments and metrics from the data) and are escaped here.

        Examples:
            >>> print(Verdict("watch", ("drift of <b>x_y</b>",)).markdown())
            ### Verdict: WATCH
            <BLANKLINE>
            - drift of &lt;b&gt;x\_y&lt;/b&gt;
        """
        head = f"### Verdict: {self.status.replace('_', ' ').upper()}"
        return "\n".join([head, "", *(f"- {md(r)}" for r in self.reasons)])


def warning(code: WarningCode, message: str) -> dict[str, str]:
    """One entry of a result's ``warnings``; the code must be one of `WARNING_CODES`.

    Examples:
        >>> warning("null_ids", "3 rows have a null 'user_id' and were left out")["code"]
        'null_ids'
    """
    if code not in WARNING_CODES:
        raise ValueError(f"unknown warning code {code!r}; add it to WARNING_CODES")
    return {"code": code, "message": message}
