"""Model performance before labels arrive (CBPE), per window: score bins come from the engine
(rows and Σscore per window × 1/1000-wide score bin; labelled counts per bin in the reference),
the estimates from `aipm_nb.stats.cbpe`.

Within one bin every row gets the same calibrated probability, so the expected confusion counts
and the expected ROC AUC over bins are those over rows (pairs inside a bin count ½ either way).
The threshold is compared with the bin's lower edge: exact for thresholds that are multiples of
1/1000 (0.5, 0.35 …).
"""

from __future__ import annotations

import math
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from aipm_nb.errors import DataError
from aipm_nb.model.engine import group_metrics, partial_windows, window_start
from aipm_nb.stats.cbpe import ESTIMATED_METRICS, Calibration, estimated_metrics, fit_calibration

__all__ = ["SCORE_BINS", "estimate_by_window"]

SCORE_BINS = 1000
#: The band: estimate ± this many standard errors.
BAND_SE = 3.0


def _bins(t: ir.Table, by: list[str]) -> pd.DataFrame:
    m = t.mutate(__bin=ibis.least((t["__s"] * SCORE_BINS).floor().cast("int64"), SCORE_BINS - 1))
    lab = m["__y"].notnull()
    return (
        m.group_by([*by, "__bin"])
        .aggregate(
            n=m.count(),
            sum_s=m["__s"].sum(),
            n_lab=m.count(where=lab),
            sum_s_lab=m["__s"].sum(where=lab),
            pos=m["__y"].sum(where=lab),
        )
        .to_pandas()
    )


def estimate_by_window(
    t: ir.Table,
    time_col: str,
    window: str,
    threshold: float,
    is_ref: ir.BooleanValue,
    span: tuple[pd.Timestamp, pd.Timestamp],
    *,
    label: str = "predictions",
    metric_floor: float | None = None,
    floor_metric: str = "roc_auc",
    realized: pd.DataFrame | None = None,
    with_realized: bool = True,
) -> tuple[pd.DataFrame, Calibration]:
    """Estimated metrics per window with their ±3 SE band and the realized value where labels
    exist; calibration fitted on the labelled reference rows (``is_ref``).

    ``t`` has ``__s`` (score) and ``__y`` (label, null = not yet labelled).

    Returns:
        One row per window × metric: ``window``, ``metric``, ``estimate``, ``lower``,
        ``upper``, ``realized``, ``n``, ``n_labelled``, ``partial``, ``below_floor`` (the band
        lies below ``metric_floor``, for ``floor_metric`` only), and the `Calibration` used.

    ``realized``: `group_metrics` per window already computed by the caller (the model report
    has them for its window chart: the exact per-window AUCs are the expensive part); None
    computes them here; ``with_realized=False`` skips them (estimates only, as NannyML gives).

    Raises:
        DataError: no labelled row in the reference period (the calibration needs them).
    """
    ref = _bins(t.filter(is_ref), [])
    ref = ref[ref.n_lab > 0]
    if ref.empty:
        raise DataError(
            f"{label}: no labelled row in the reference period; estimating performance before "
            "labels arrive needs labelled reference rows to check (and fit) the calibration — "
            "move reference_end later or wait for labels",
            table=label,
        )
    cal = fit_calibration(
        pd.DataFrame({"mean_score": ref.sum_s_lab / ref.n_lab, "n": ref.n_lab, "pos": ref.pos})
    )
    w = t.mutate(__w=window_start(t[time_col], window))
    per = _bins(w, ["__w"])
    if realized is None and with_realized:
        realized = group_metrics(w, "__w", threshold=threshold)
    realized = (
        realized.set_index("group")
        if realized is not None
        else pd.DataFrame(columns=["n_labelled"])
    )
    rows = []
    for win, g in per.groupby("__w", sort=True):
        bins = pd.DataFrame({"score": g["__bin"] / SCORE_BINS, "n": g.n, "p": cal(g.sum_s / g.n)})
        est = estimated_metrics(bins, threshold=threshold)
        r = realized.loc[win] if win in realized.index else None
        for metric in ESTIMATED_METRICS:
            e, se = est[metric]
            lo = max(0.0, e - BAND_SE * se) if math.isfinite(se) else math.nan
            hi = min(1.0, e + BAND_SE * se) if math.isfinite(se) else math.nan
            has = r is not None and r.n_labelled > 0
            rows.append(
                {
                    "window": pd.Timestamp(win),
                    "metric": metric,
                    "estimate": e,
                    "lower": lo,
                    "upper": hi,
                    "realized": float(r[metric]) if has and r is not None else math.nan,
                    "n": int(g.n.sum()),
                    "n_labelled": int(r.n_labelled) if r is not None else 0,
                }
            )
    out = pd.DataFrame(rows)
    if out.empty:
        return out, cal
    out["partial"] = partial_windows(out.window, window, span)
    floor = metric_floor if metric_floor is not None else -math.inf
    out["below_floor"] = (out.metric == floor_metric) & ~out.partial & (out.upper < floor)
    return out, cal


def latest_estimate(estimated: pd.DataFrame, metric: str) -> dict[str, Any] | None:
    """The latest window without any label (the running one included: ``partial``), for
    ``metric``; None if every window has labels.
    """
    if estimated is None or estimated.empty:
        return None
    e = estimated[(estimated.metric == metric) & (estimated.n_labelled == 0)]
    if e.empty:
        return None
    return e.sort_values("window").iloc[-1].to_dict()
