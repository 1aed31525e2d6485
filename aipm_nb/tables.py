"""Tables for people: one formatter every report table goes through (issue 13).

`readable` turns a result table into text a product manager reads without an analyst beside
them: percentages where the column is a share, p-values as ``< 0.001`` or three significant
digits, a CI as one ``[lo, hi]`` column headed with its level, thousands separators, booleans as
words, human headers, and no index column. The rules key on column names, so every table of
every analysis is formatted the same way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from aipm_nb import config
from aipm_nb.results import ci_label

__all__ = ["HEADERS", "ci_text", "format_p", "p_equals", "readable"]

#: Column headers people read (the rest: underscores become spaces).
HEADERS = {
    "roc_auc": "ROC AUC",
    "pr_auc": "PR AUC",
    "log_loss": "log loss",
    "ece": "ECE",
    "f1": "F1",
    "psi": "PSI",
    "ks_statistic": "KS",
    "n": "rows",
    "n_labelled": "labelled rows",
    "k": "period",
    "tp": "true positives",
    "fp": "false positives",
    "mean_score": "mean score",
    "flagged_share": "share flagged",
    "below_floor": "below floor",
    "avg_dau": "average DAU",
    "dau": "DAU",
    "wau": "WAU",
    "mau": "MAU",
    "p_value": "p",
    "diff": "difference",
}

#: Columns that are shares (shown as percentages).
PERCENT = frozenset(
    {
        "precision",
        "recall",
        "accuracy",
        "retention",
        "positive_rate",
        "flagged_share",
        "share",
        "stickiness",
        "recent_rate",
        "earlier_rate",
        "win_rate",
        "thumbs_up_rate",
        "refusal_rate",
        "error_rate",
    }
)
#: Columns that are counts (thousands separators, even when stored as floats).
COUNTS = frozenset(
    {"n", "n_labelled", "count", "users", "size", "tp", "fp", "dau", "wau", "mau", "battles",
     "wins", "ties", "responses"}
)  # fmt: skip
#: Columns that are averages of counts (one decimal).
AVERAGES = frozenset({"avg_dau"})
#: Columns that are differences of shares (shown in points).
POINTS = frozenset({"diff"})
#: Columns that are scores or errors on [0, 1] (three decimals).
SCORES = frozenset(
    {
        "roc_auc",
        "pr_auc",
        "log_loss",
        "brier",
        "ece",
        "f1",
        "psi",
        "ks_statistic",
        "mean_score",
        "lower",
        "upper",
        "threshold",
        "estimate",
        "realized",
    }
)


def format_p(p: float) -> str:
    """A p-value as people read it.

    Examples:
        >>> format_p(0.0000001), format_p(0.01234), format_p(float("nan"))
        ('< 0.001', '0.0123', '–')
    """
    if p is None or math.isnan(p):
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3g}"


def format_chance(p: float) -> str:
    """A probability (chance to beat control) as a percentage that never claims certainty.

    Examples:
        >>> format_chance(0.99996), format_chance(0.5), format_chance(0.00002)
        ('> 99.9%', '50.0%', '< 0.1%')
    """
    if p is None or math.isnan(p):
        return "–"
    if p > 0.999:
        return "> 99.9%"
    return "< 0.1%" if p < 0.001 else f"{p:.1%}"


def ci_text(lo: float, hi: float, sep: str = " to ") -> str:
    """A relative CI as text; an unbounded side (a one-sided sequential guardrail bound) reads
    as "at least" / "at most".

    Examples:
        >>> ci_text(-0.012, 0.034), ci_text(-0.0048, math.inf), ci_text(-math.inf, 0.02)
        ('-1.20% to +3.40%', 'at least -0.48%', 'at most +2.00%')
    """
    if math.isinf(hi) and not math.isinf(lo):
        return f"at least {lo:+.2%}"
    if math.isinf(lo) and not math.isinf(hi):
        return f"at most {hi:+.2%}"
    return f"{lo:+.2%}{sep}{hi:+.2%}"


def p_equals(p: float, name: str = "p") -> str:
    """``p = 0.0123`` or ``p < 0.001``: a p-value inside a sentence.

    Examples:
        >>> p_equals(0.01234), p_equals(1e-9, "adjusted p")
        ('p = 0.0123', 'adjusted p < 0.001')
    """
    text = format_p(p)
    return f"{name} {text}" if text.startswith("<") else f"{name} = {text}"


def _cell(column: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d") if value == value.normalize() else str(value)
    if column.startswith("p_value"):
        return format_p(float(value))
    if column in PERCENT:
        return f"{float(value):.1%}"
    if column in POINTS:
        return f"{float(value) * 100:+.1f} pts"
    if column in SCORES:
        return f"{float(value):.3f}"
    if column in AVERAGES:
        return f"{float(value):,.1f}"
    if isinstance(value, int) or (column in COUNTS and float(value).is_integer()):
        return f"{int(value):,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def readable(
    table: pd.DataFrame,
    *,
    alpha: float | None = None,
    columns: Iterable[str] | None = None,
    rename: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """``table`` as text: each column formatted by its name, ``ci_lower``/``ci_upper`` (and
    ``<metric>_ci_lower``/``_ci_upper``) merged into one column headed with the CI level, headers
    made human; the first column (after a labelled index is reset) labels the rows, and a
    one-row table is shown as one line per column.

    Examples:
        >>> t = pd.DataFrame({"k": [1, 4], "diff": [-0.014, 0.03], "ci_lower": [-0.049, 0.01],
        ...                   "ci_upper": [0.02, 0.05], "p_value": [0.42, 0.0002]})
        >>> readable(t).reset_index().to_dict("records")[1]
        {'period': '4', 'difference': '+3.0 pts', '95% CI': '[+1.0, +5.0] pts', 'p': '< 0.001'}
    """
    alpha = config.ALPHA if alpha is None else alpha
    df = table.copy()
    if not isinstance(df.index, pd.RangeIndex):
        df = df.reset_index()
    if columns is not None:
        df = df[list(columns)]
    out: dict[str, list[str]] = {}
    done: set[str] = set()
    for col in df.columns:
        col = str(col)
        if col in done:
            continue
        if col.endswith("ci_lower") and col.replace("ci_lower", "ci_upper") in df.columns:
            hi = col.replace("ci_lower", "ci_upper")
            done.add(hi)
            base = col.removesuffix("ci_lower").rstrip("_") or _ci_of(df.columns)
            out[ci_label(alpha)] = [
                _ci(base, lo, up) for lo, up in zip(df[col], df[hi], strict=True)
            ]
            continue
        if col.endswith("ci_upper"):
            continue
        header = (rename or {}).get(col) or HEADERS.get(col) or col.replace("_", " ")
        out[header] = [_cell(col, v) for v in df[col].tolist()]
    readable_table = pd.DataFrame(out)
    if len(readable_table) == 1:  # one row (a metric set): one line per metric reads better
        return readable_table.T.rename(columns={0: "value"}).rename_axis("metric")
    # the first column labels the rows: it becomes the index, so no 0, 1, 2 … column shows
    return readable_table.set_index(readable_table.columns[0]) if len(out) > 1 else readable_table


def _ci_of(columns: Iterable[Any]) -> str:
    """What a bare ``ci_lower``/``ci_upper`` pair bounds: the table's difference, share or
    score column.
    """
    names = [str(c) for c in columns]
    return next((c for c in names if c in POINTS | PERCENT | SCORES), "")


def _ci(base: str, lo: Any, hi: Any) -> str:
    if lo is None or hi is None or (isinstance(lo, float) and math.isnan(lo)):
        return "–"
    if base in POINTS:
        return f"[{lo * 100:+.1f}, {hi * 100:+.1f}] pts"
    if base in PERCENT:
        return f"[{lo:.1%}, {hi:.1%}]"
    return f"[{lo:.3f}, {hi:.3f}]"
