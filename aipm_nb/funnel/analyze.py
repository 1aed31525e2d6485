"""Funnels (DESIGN section 4, "Funnels"): users reaching each ordered step within a conversion
window, drop-off, time to convert, breakdowns with tests and experiment arms per step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from aipm_nb import config
from aipm_nb.cohort.events import prepare_events, present_event_names, resolve_as_of
from aipm_nb.errors import DataError, ParameterError
from aipm_nb.funnel.engine import funnel_users, step_counts, step_times, time_histogram
from aipm_nb.funnel.spec import (
    ORDERS,
    Step,
    parse_steps,
    parse_window,
    shares_names,
    window_text,
)
from aipm_nb.results import Result, Verdict, jsonable, warning
from aipm_nb.sources import open_source_beside
from aipm_nb.stats.ab import adjust_pvalues
from aipm_nb.stats.proportions import chi_square_across_groups, newcombe_diff, wilson_interval
from aipm_nb.validation import check_scalar

__all__ = ["FunnelResult", "analyze_funnel", "paired_assignments"]

#: A breakdown keeps this many groups (most users first); the rest become "(other)".
MAX_GROUPS = 20
OTHER = "(other)"


def paired_assignments(source: Any, assignments_source: Any) -> Any:
    """``assignments_source``, except that the sample assignments (the template's default) are
    used only with the sample funnel events.

    Examples:
        >>> paired_assignments("my_events.csv", "sample:funnel_assignments") is None
        True
    """
    from aipm_nb.notebook import paired_sample

    return paired_sample(source, assignments_source, sample="sample:funnel_events",
                         second_sample="sample:funnel_assignments")  # fmt: skip


@dataclass(frozen=True)
class FunnelResult(Result):
    """What `analyze_funnel` found.

    Attributes:
        steps: One row per step: ``index`` (1..n), ``step`` (its event names), ``count``
            (users reaching at least this step), ``conversion_from_start`` with its Wilson
            ``ci_lower``/``ci_upper``, ``conversion_from_previous``, ``drop_off`` (users lost
            since the previous step), ``drop_off_rate``, ``median_seconds`` and
            ``mean_seconds`` (time from the previous step).
        breakdown: One row per (group, step) of ``breakdown_col``: ``group``, ``index``,
            ``step``, ``count``, ``conversion_from_start`` (+ CI), ``conversion_from_previous``.
        step_tests: Per step from the second: chi-square p-value of conversion from the
            previous step across the groups, and its Holm-adjusted value.
        end_to_end: Chi-square test of end-to-end conversion across the groups (``p_value``),
            and for two groups the difference (first − second) with Newcombe's CI.
        arms: The experiment comparison (an `aipm_nb.experiment.ExperimentResult`: one
            proportion metric per step, all exposed units as denominator, Holm over steps).
        times: Users per (step, bin of time to convert), bins on a log scale.
        too_recent: Users whose every attempt's window was still open at ``as_of`` (left out
            of the rates).
    """

    steps: pd.DataFrame
    breakdown: pd.DataFrame
    step_tests: pd.DataFrame
    end_to_end: dict[str, Any]
    arms: Any
    times: pd.DataFrame
    order: str
    window_seconds: int
    as_of: pd.Timestamp
    breakdown_col: str | None
    users: int
    too_recent: int
    rows: int
    verdict: Verdict
    alpha: float = config.ALPHA
    warnings: tuple[dict[str, str], ...] = field(default=())

    def to_pandas(self) -> pd.DataFrame:
        """The step table."""
        return self.steps.copy()

    def to_dict(self) -> dict[str, Any]:
        """DESIGN section 5's ``funnel`` result: ``steps: [{"step", "count",
        "conversion_from_start", "conversion_from_previous", "median_seconds",
        "mean_seconds", …}]``, ``breakdown`` and the rest.
        """
        return jsonable(
            {
                "order": self.order,
                "window_seconds": self.window_seconds,
                "as_of": self.as_of,
                "users": self.users,
                "too_recent": self.too_recent,
                "steps": self.steps,
                "breakdown": {
                    "column": self.breakdown_col,
                    "groups": self.breakdown,
                    "step_tests": self.step_tests,
                    "end_to_end": self.end_to_end,
                }
                if self.breakdown_col
                else None,
                "arms": self.arms.to_dict() if self.arms is not None else None,
                "verdict": self.verdict,
            }
        )

    @property
    def end_to_end_conversion(self) -> float:
        """Share of entering users who reached the last step."""
        return float(self.steps.conversion_from_start.iloc[-1])

    @property
    def biggest_drop(self) -> pd.Series | None:
        """The step (from the second) that loses the largest share of the users reaching the
        step before it; None when nobody entered.
        """
        later = self.steps.iloc[1:]
        if later.drop_off_rate.isna().all():
            return None
        return later.loc[later.drop_off_rate.idxmax()]


def _step_table(counts: pd.Series, steps: Sequence[Step], alpha: float) -> pd.DataFrame:
    """``counts``: users per depth 1..n (a user at depth d reached steps 1..d)."""
    n = len(steps)
    per_depth = np.array([float(counts.get(d, 0)) for d in range(1, n + 1)])
    reached = per_depth[::-1].cumsum()[::-1]
    start = reached[0]
    lo, hi = wilson_interval(reached, np.full(n, start), alpha=alpha)
    with np.errstate(invalid="ignore", divide="ignore"):
        prev = np.concatenate([[np.nan], reached[1:] / reached[:-1]])
        from_start = reached / start if start else np.full(n, np.nan)
    return pd.DataFrame(
        {
            "index": range(1, n + 1),
            "step": [s.label for s in steps],
            "count": reached.astype("int64"),
            "conversion_from_start": from_start,
            "ci_lower": lo,
            "ci_upper": hi,
            "conversion_from_previous": prev,
            "drop_off": np.concatenate([[0], reached[:-1] - reached[1:]]).astype("int64"),
            "drop_off_rate": 1 - prev,
        }
    )


def analyze_funnel(
    source: Any,
    steps: Sequence[str | Sequence[str]],
    *,
    user_col: str = "user_id",
    time_col: str = "event_time",
    event_col: str = "event_name",
    order: str = "ordered",
    window: Any = "14 days",
    breakdown_col: str | None = None,
    assignments_source: Any = None,
    unit_col: str | None = None,
    variant_col: str = "variant",
    control: str = "control",
    as_of: Any = None,
    timezone: str = "UTC",
    alpha: float | None = None,
    table: str | None = None,
    assignments_table: str | None = None,
    method: str = "auto",
) -> FunnelResult:
    """Conversion through ordered steps, in the engine.

    Args:
        source: Events, one row per event (anything `aipm_nb.sources` opens).
        steps: 2–20 steps, each an event name or a list of names (any of them completes it).
        user_col: The user id column.
        time_col: The event time column.
        event_col: The event name column.
        order: ``"ordered"`` (other events may come between steps), ``"strict"`` (the next
            step must be the user's next event) or ``"unordered"``.
        window: Conversion window from an attempt's first step, inclusive (``"14 days"``,
            ``"30 minutes"``).
        breakdown_col: Break the funnel down by this column's value at the attempt's first
            step, with tests across the groups.
        assignments_source: An experiment's assignment table (one row per unit): compare each
            step's conversion across its arms.
        unit_col: The unit id column of the assignments (default: ``user_col``).
        variant_col: The variant column of the assignments.
        control: The control variant.
        as_of: Attempts whose window ends after this are still open and left out (default:
            midnight after the last event, never later than now); events after it are ignored.
        timezone: IANA time zone of ``as_of`` and of naive times (DuckDB, PostgreSQL).
        alpha: Significance level (default `config.ALPHA`).
        table: Table name in a database events source.
        assignments_table: Table name in a database assignments source.
        method: ``"auto"`` (ordered funnels on DuckDB match steps with ASOF joins, everything
            else with window functions) or ``"window"`` (window functions everywhere; the
            results are the same).
    """
    alpha = check_scalar(config.ALPHA if alpha is None else alpha, "alpha", typ=float, gt=0, lt=1)
    check_scalar(order, "order", one_of=ORDERS)
    check_scalar(method, "method", one_of=("auto", "window"))
    st = parse_steps(steps)
    if order == "unordered" and shares_names(st):
        raise ParameterError(
            "an unordered funnel needs steps with distinct event names (an event can complete "
            "one step only)"
        )
    win = parse_window(window)
    extra = {event_col: "event_col"} | ({breakdown_col: "breakdown_col"} if breakdown_col else {})
    ev = prepare_events(source, user_col=user_col, time_col=time_col, event_col=event_col,
                        period="day", timezone=timezone, table=table,
                        extra_columns=extra)  # fmt: skip
    _check_steps(ev.table, event_col, st, ev.label)
    ev, as_of_ts = resolve_as_of(ev, as_of)
    users = funnel_users(ev.table, event_col, st, order=order, window_seconds=win,
                         as_of=as_of_ts, breakdown_col=breakdown_col,
                         method=method).cache()  # fmt: skip
    try:
        counts = step_counts(users, "breakdown" if breakdown_col else None)
        overall = counts.groupby("depth", dropna=False).users.sum()
        too_recent = int(counts.loc[counts.depth.isna(), "users"].sum())
        done = overall[overall.index.notna()]
        done.index = done.index.astype(int)
        table_ = _step_table(done, st, alpha)
        times = step_times(users, len(st))
        table_["median_seconds"] = [np.nan, *times.median_seconds]
        table_["mean_seconds"] = [np.nan, *times.mean_seconds]
        hist = time_histogram(users, len(st))
        arms = None
        if assignments_source is not None:
            arms = _arms(users, st, assignments_source, assignments_table,
                         unit_col or user_col, variant_col, control, alpha)  # fmt: skip
    finally:
        users.release()
    warnings = list(ev.warnings)
    if assignments_source is not None and arms is None:
        warnings.append(warning("small_sample", (
            "every exposed unit reached every step, or none did: the experiment arms have "
            "nothing to compare")))  # fmt: skip
    if too_recent:
        warnings.append(warning("small_sample", (
            f"{too_recent:,} users entered the funnel less than {window_text(win)} before "
            f"as_of ({as_of_ts:%Y-%m-%d %H:%M}); their window is still open, so they are left "
            "out of the rates instead of counting as drop-off")))  # fmt: skip
    groups, tests = pd.DataFrame(), pd.DataFrame()
    e2e: dict[str, Any] = {}
    if breakdown_col:
        groups, tests, e2e = _breakdown(counts, st, alpha)
    res = FunnelResult(
        steps=table_,
        breakdown=groups,
        step_tests=tests,
        end_to_end=e2e,
        arms=arms,
        times=hist,
        order=order,
        window_seconds=win,
        as_of=as_of_ts,
        breakdown_col=breakdown_col,
        users=int(table_["count"].iloc[0]),
        too_recent=too_recent,
        rows=ev.rows,
        verdict=Verdict("insufficient_data"),
        alpha=alpha,
        warnings=tuple(warnings),
    )
    from aipm_nb.funnel.present import verdict_of

    return replace(res, verdict=verdict_of(res))


def _check_steps(t: Any, event_col: str, steps: Sequence[Step], label: str) -> None:
    names = present_event_names(t, event_col)
    for i, s in enumerate(steps):
        missing = [e for e in s.names if e not in names]
        if missing:
            raise DataError(
                f"{label}: steps[{i}] names events {missing} that never occur in column "
                f"{event_col!r}; events present: {', '.join(sorted(map(str, names))[:15])}",
                table=label,
                column=event_col,
            )


def _lump(counts: pd.DataFrame) -> pd.DataFrame:
    """At most `MAX_GROUPS` groups: the largest, then one "(other)" group."""
    size = counts.groupby("breakdown").users.sum().sort_values(ascending=False, kind="stable")
    if len(size) <= MAX_GROUPS:
        return counts
    keep = set(size.index[: MAX_GROUPS - 1])
    out = counts.assign(breakdown=counts.breakdown.where(counts.breakdown.isin(keep), OTHER))
    return out.groupby(["depth", "breakdown"], dropna=False, as_index=False).users.sum()


def _breakdown(
    counts: pd.DataFrame, steps: Sequence[Step], alpha: float
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    counts = _lump(counts[counts.depth.notna()])
    rows = []
    order = counts.groupby("breakdown").users.sum().sort_values(ascending=False, kind="stable")
    for g in order.index:
        part = counts[counts.breakdown == g].set_index("depth").users
        part.index = part.index.astype(int)
        rows.append(_step_table(part, steps, alpha).assign(group=g))
    groups = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    if groups.empty:
        return groups, pd.DataFrame(), {}
    groups = groups[["group", "index", "step", "count", "conversion_from_start", "ci_lower",
                     "ci_upper", "conversion_from_previous"]]  # fmt: skip
    wide = groups.pivot(index="group", columns="index", values="count").loc[order.index]
    tests = []
    for k in range(2, len(steps) + 1):
        tests.append({"index": k, "step": steps[k - 1].label,
                      "p_value": chi_square_across_groups(wide[k], wide[k - 1])})  # fmt: skip
    tests_df = pd.DataFrame(tests)
    ok = tests_df.p_value.notna()
    tests_df["p_value_adjusted"] = np.nan
    if ok.any():
        tests_df.loc[ok, "p_value_adjusted"] = adjust_pvalues(tests_df.p_value[ok].tolist())
    last, first = wide[len(steps)], wide[1]
    e2e: dict[str, Any] = {"p_value": chi_square_across_groups(last, first), "groups": len(wide)}
    if len(wide) == 2:
        (g1, g2) = wide.index
        d, lo, hi = newcombe_diff(last[g1], first[g1], last[g2], first[g2], alpha=alpha)
        e2e |= {"first": g1, "second": g2, "difference": d, "ci_lower": lo, "ci_upper": hi}
    return groups, tests_df, e2e


def _arms(
    users: Any, steps: Sequence[Step], source: Any, table: str | None, unit_col: str,
    variant_col: str, control: str, alpha: float,
) -> Any:  # fmt: skip
    """Each step's conversion per arm with the A/B engine: all exposed units as denominator."""
    from aipm_nb.experiment import analyze_experiment

    src = open_source_beside(users, source, table=table, name="assignments",
                             required={unit_col: "any", variant_col: "any"},
                             parameters={unit_col: "unit_col",
                                         variant_col: "variant_col"})  # fmt: skip
    a = src.table.select(__unit=src.table[unit_col].cast("string"),
                         __v=src.table[variant_col].cast("string"))  # fmt: skip
    u = users.select(__u=users["__user"].cast("string"), __depth=users["depth"])
    j = a.left_join(u, a["__unit"] == u["__u"])
    cols = {f"__r{k}": (j["__depth"] >= k + 1).fill_null(False).ifelse(1, 0)
            for k in range(len(steps))}  # fmt: skip
    j = j.select("__unit", "__v", **cols)
    # a step every exposed unit reached (or none did) in every arm has nothing to test: often
    # the first step is the exposure itself
    sums = j.aggregate(__n=j.count(), **{c: j[c].sum() for c in cols}).to_pandas().iloc[0]
    n = int(sums["__n"])
    metrics = [{"name": f"{k + 1}. {s.label}", "type": "proportion", "column": f"__r{k}"}
               for k, s in enumerate(steps) if 0 < int(sums[f"__r{k}"] or 0) < n]  # fmt: skip
    if not metrics:
        return None
    try:
        return analyze_experiment(j, metrics, unit_col="__unit", variant_col="__v",
                                  control=control, alpha=alpha, correction="holm")  # fmt: skip
    except DataError as exc:
        raise DataError(f"{src.label}: {exc}") from exc
