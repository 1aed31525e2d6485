"""Funnel step matching in the engine: window functions over each user's event times, one row
per user out, and only aggregates to pandas (DESIGN section 4, "Funnels").

How a user's furthest step is found without pulling events:

1. *Moments*: the user's events grouped by timestamp, with one flag per step (does an event of
   that step happen at this instant?). Ordered and unordered funnels keep only moments with a
   step event; strict funnels keep every moment (any other event breaks a strict attempt).
2. *Chains* (ordered, strict): for every moment and step k, the greedy times of steps k+1, …
   taken from there: the earliest next moment with step k+1 (ordered: any later moment;
   strict: the user's very next moment), then from that one the earliest with step k+2, and so
   on. Built backwards from the last step, one window pass per step; greedy (earliest) times
   are what reaches furthest within a window, and a later start never reaches further, so
   "the value at the next moment with step k+1" is the running minimum over the later moments.
   Unordered: for every moment, the first time of each step at or after it.
3. *Attempts*: every moment with the first step (unordered: with any step) starts one; its depth
   is the number of steps reached within ``window`` of its start (inclusive). An attempt counts
   only when its window has ended by ``as_of``.
4. *Users*: the deepest counted attempt, the earliest of equal depth; its step times give the
   time to convert. Users whose every attempt is still open are kept with a null depth.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from aipm_nb.funnel.spec import Step
from aipm_nb.results import NULL_SEGMENT

__all__ = ["TIME_BINS_PER_DECADE", "funnel_users", "step_counts", "step_times", "time_histogram"]

#: Histogram bins of time to convert: this many per factor of ten seconds.
TIME_BINS_PER_DECADE = 4


def _null(like: ir.Value) -> ir.Value:
    return ibis.null().cast(like.type())


def moments(
    t: ir.Table, event_col: str, steps: Sequence[Step], order: str, breakdown_col: str | None
) -> ir.Table:
    """One row per (user, timestamp): ``__f{k}`` flags and the breakdown value of its step
    events (the attempt's first-step event for ordered and strict funnels).
    """
    names = sorted({n for s in steps for n in s.names})
    ev = t[event_col].cast("string")
    if order != "strict":
        t = t.filter(ev.isin(names))
        ev = t[event_col].cast("string")
    aggs: dict[str, Any] = {f"__f{k}": ev.isin(list(s.names)).any() for k, s in enumerate(steps)}
    for k in range(len(steps)):
        aggs[f"__f{k}"] = aggs[f"__f{k}"].fill_null(False)
    if breakdown_col:
        starts = ev.isin(list(steps[0].names)) if order != "unordered" else ev.isin(names)
        b = t[breakdown_col].cast("string")
        aggs["__b"] = ibis.ifelse(starts.fill_null(False), b, _null(b)).min()
    return t.group_by(["__user", "__ts"]).aggregate(**aggs)


def _chains(m: ir.Table, n: int, order: str) -> ir.Table:
    """Attempts (moments with step 0) with ``__t{j}``: the greedy time of step j = 1..n−1.

    One window pass gives every moment the time of the next moment with each step (ordered:
    the earliest strictly later one; strict: the user's very next moment, if it has the step);
    then step k+1 of an attempt is that "next" value read at the moment of its step k, an equi-
    join on (user, time) per step. Greedy (earliest) times reach furthest within a window.
    """
    w = ibis.window(group_by="__user", order_by="__ts")
    if order == "ordered":
        later = ibis.window(group_by="__user", order_by="__ts", rows=(1, None))
        m = m.mutate(**{f"__n{j}": ibis.ifelse(m[f"__f{j}"], m["__ts"], _null(m["__ts"]))
                        .min().over(later) for j in range(1, n)})  # fmt: skip
    else:  # strict
        nts, none = m["__ts"].lead().over(w), _null(m["__ts"])
        m = m.mutate(**{f"__n{j}": ibis.ifelse(m[f"__f{j}"].lead().over(w).fill_null(False),
                                                nts, none) for j in range(1, n)})  # fmt: skip
    keep = ["__user", "__ts", *(["__b"] if "__b" in m.columns else [])]
    a = m.filter(m["__f0"]).select(*keep, __t1=m["__n1"])
    for k in range(1, n - 1):
        look = m.filter(m[f"__f{k}"]).select(__lu="__user", __lt="__ts", __lx=m[f"__n{k + 1}"])
        j = a.left_join(look, [a["__user"] == look["__lu"], a[f"__t{k}"] == look["__lt"]])
        a = j.select(*[c for c in a.columns], **{f"__t{k + 1}": j["__lx"]})
    return a


def _chains_asof(
    t: ir.Table, event_col: str, steps: Sequence[Step], breakdown_col: str | None
) -> ir.Table:
    """`_chains` for ordered funnels on DuckDB: one ASOF join per step (the first event of step
    k+1 strictly after step k's time) instead of a window pass, and no moments table: ~2× faster,
    the same attempts and times (tests/test_funnel.py runs both on random logs).
    """
    ev = t[event_col].cast("string")
    first = t.filter(ev.isin(list(steps[0].names)))
    aggs = {}
    if breakdown_col:
        aggs["__b"] = first[breakdown_col].cast("string").min()
    a = first.group_by(["__user", "__ts"]).aggregate(**aggs) if aggs else (
        first.select("__user", "__ts").distinct())  # fmt: skip
    prev = "__ts"
    for k in range(1, len(steps)):
        s = t.filter(ev.isin(list(steps[k].names))).select(__su="__user", __st="__ts").view()
        j = a.asof_join(s, on=a[prev] < s["__st"], predicates=[a["__user"] == s["__su"]])
        # DuckDB matches a row even when the left key is NULL: no previous step, no next one
        nxt = ibis.ifelse(j[prev].isnull(), _null(j["__st"]), j["__st"])
        a = j.select(*a.columns, **{f"__t{k}": nxt}).view()
        prev = f"__t{k}"
    return a


def _first_times(m: ir.Table, n: int) -> ir.Table:
    """Unordered: ``__u{j}``, the first time of step j at or after each moment."""
    here_on = ibis.window(group_by="__user", order_by="__ts", rows=(0, None))
    return m.mutate(
        **{
            f"__u{j}": ibis.ifelse(m[f"__f{j}"], m["__ts"], _null(m["__ts"])).min().over(here_on)
            for j in range(n)
        }
    )


def _seconds(a: ir.TimestampValue, b: ir.TimestampValue) -> ir.FloatingValue:
    return a.epoch_seconds().cast("float64") - b.epoch_seconds().cast("float64")


def funnel_users(
    t: ir.Table,
    event_col: str,
    steps: Sequence[Step],
    *,
    order: str,
    window_seconds: int,
    as_of: pd.Timestamp,
    breakdown_col: str | None = None,
    method: str = "auto",
) -> ir.Table:
    """One row per user with a first-step event (unordered: any step event): ``__user``,
    ``depth`` (steps reached, 1..n; null while every attempt's window is still open),
    ``d1``..``d{n−1}`` (seconds from step k−1 to step k in the chosen attempt), ``start``
    (its first-step time) and ``breakdown`` (its first-step value, when asked).

    ``method="window"`` forces the portable window-function matching also on DuckDB (where
    ordered funnels use ASOF joins by default); the tests compare the two.
    """
    n = len(steps)
    win = ibis.interval(seconds=window_seconds)
    if order == "unordered":
        a = _first_times(moments(t, event_col, steps, order, breakdown_col), n)
        a = a.filter(ibis.or_(*[a[f"__f{j}"] for j in range(n)]))
        inside = [a[f"__u{j}"].notnull() & (a[f"__u{j}"] <= a["__ts"] + win) for j in range(n)]
        depth = sum(ib.ifelse(1, 0) for ib in inside)
        # the reached steps' first times, in step order here; sorted per user below
        times = [ibis.ifelse(ib, a[f"__u{j}"], _null(a["__ts"])) for j, ib in enumerate(inside)]
    else:
        fast = order == "ordered" and method != "window" and (
            t._find_backend(use_default=True).name == "duckdb")  # fmt: skip
        a = (
            _chains_asof(t, event_col, steps, breakdown_col)
            if fast
            else _chains(moments(t, event_col, steps, order, breakdown_col), n, order)
        )
        inside = [a[f"__t{j}"].notnull() & (a[f"__t{j}"] <= a["__ts"] + win) for j in range(1, n)]
        depth = 1 + sum(ib.ifelse(1, 0) for ib in inside)
        times = [a["__ts"], *[ibis.ifelse(ib, a[f"__t{j + 1}"], _null(a["__ts"]))
                              for j, ib in enumerate(inside)]]  # fmt: skip
    open_ = (a["__ts"] + win) > ibis.literal(as_of.to_pydatetime(), type="timestamp")
    a = a.mutate(
        __depth=ibis.ifelse(open_, ibis.null("int64"), depth.cast("int64")),
        **{f"__s{k}": v for k, v in enumerate(times)},
    )
    by_user = ibis.window(group_by="__user")
    a = a.mutate(__dmax=a["__depth"].max().over(by_user))
    a = a.filter(a["__dmax"].isnull() | (a["__depth"] == a["__dmax"]))
    a = a.mutate(__rn=ibis.row_number().over(group_by="__user", order_by="__ts"))
    a = a.filter(a["__rn"] == 0)
    if order == "unordered":
        a = _sort_times(a, n)
    cols: dict[str, Any] = {"depth": a["__depth"], "start": a["__ts"]}
    for k in range(1, n):
        ok = a["__depth"] > k
        d = _seconds(a[f"__s{k}"], a[f"__s{k - 1}"])
        cols[f"d{k}"] = ibis.ifelse(ok.fill_null(False), d, ibis.null("float64"))
    if breakdown_col:
        cols["breakdown"] = a["__b"].fill_null(NULL_SEGMENT)
    return a.select("__user", **cols)


def _sort_times(a: ir.Table, n: int) -> ir.Table:
    """Unordered, one row per user: ``__s{k}`` = the k-th earliest of the reached steps' first
    times ``__s{j}`` (step k = k distinct steps done; ties go to the lower step number). The n
    columns are unpivoted, numbered and pivoted back in the engine (a rank by pairwise
    comparisons would grow the SQL with n²: 19 MB at 20 steps).
    """
    long = ibis.union(
        *[
            a.select(__lu="__user", __j=ibis.literal(j, type="int64"), __lt=a[f"__s{j}"])
            for j in range(n)
        ]  # fmt: skip
    )
    long = long.filter(long["__lt"].notnull())
    long = long.mutate(
        __k=ibis.row_number().over(group_by="__lu", order_by=[long["__lt"], long["__j"]])
    )
    none = _null(long["__lt"])
    wide = long.group_by("__lu").aggregate(
        **{f"__o{k}": ibis.ifelse(long["__k"] == k, long["__lt"], none).max() for k in range(n)}
    )
    keep = [c for c in a.columns if not c.startswith("__s")]
    j = a.left_join(wide, a["__user"] == wide["__lu"])
    return j.select(*keep, **{f"__s{k}": j[f"__o{k}"] for k in range(n)})


def step_counts(users: ir.Table, by: str | None = None) -> pd.DataFrame:
    """Users per furthest step (``depth``; null = still open), per breakdown value if asked."""
    keys = ["depth", *([by] if by else [])]
    return users.group_by(keys).aggregate(users=users.count()).to_pandas()


def step_times(users: ir.Table, n: int) -> pd.DataFrame:
    """Mean and median seconds from step k−1 to step k (k = 1..n−1) over the users who reached
    step k, and how many they are.
    """
    aggs: dict[str, Any] = {}
    for k in range(1, n):
        d = users[f"d{k}"]
        aggs |= {f"mean{k}": d.mean(), f"median{k}": d.median(), f"n{k}": d.count()}
    row = users.aggregate(**aggs).to_pandas().iloc[0]
    return pd.DataFrame(
        {
            "step": range(1, n),
            "users": [int(row[f"n{k}"]) for k in range(1, n)],
            "mean_seconds": [
                float(row[f"mean{k}"]) if row[f"n{k}"] else float("nan") for k in range(1, n)
            ],  # fmt: skip
            "median_seconds": [
                float(row[f"median{k}"]) if row[f"n{k}"] else float("nan") for k in range(1, n)
            ],  # fmt: skip
        }
    )


def time_histogram(users: ir.Table, n: int) -> pd.DataFrame:
    """Users per (step, bin of log10 seconds): bin b covers [10^(b/B), 10^((b+1)/B)) seconds with
    B = `TIME_BINS_PER_DECADE`; conversions in under a second fall in bin 0.
    """
    parts = []
    for k in range(1, n):
        d = users[f"d{k}"]
        # + 1e-9: engines that compute log10 as ln(x)/ln(10) put 1000 s at 2.9999999999999996
        b = (d.clip(lower=1).log10() * TIME_BINS_PER_DECADE + 1e-9).floor().cast("int64")
        f = users.filter(d.notnull()).select(bin=b)
        parts.append(
            f.group_by("bin").aggregate(users=f.count()).mutate(step=ibis.literal(k, type="int64"))
        )
    out = ibis.union(*parts).to_pandas() if parts else pd.DataFrame()
    return out.sort_values(["step", "bin"], ignore_index=True)
