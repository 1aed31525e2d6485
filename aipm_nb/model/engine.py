"""Model aggregates computed where the data lives: per-score counts, groups, windows."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from scipy import stats as sps

from aipm_nb import config
from aipm_nb.errors import DataError, ParameterError, SchemaError
from aipm_nb.model.metrics import safe_div
from aipm_nb.sources import open_source

__all__ = ["group_metrics", "regression_metrics"]


def count_if(cond: ir.BooleanValue) -> ir.IntegerScalar:
    """Rows where ``cond`` holds (portable: PostgreSQL cannot cast boolean to bigint)."""
    return cond.ifelse(1, 0).sum()


def score_counts(t: ir.Table, score: str, label: str, by: Sequence[str] = ()) -> pd.DataFrame:
    lab = t.filter(t[label].notnull())
    y = lab[label].cast("float64")
    out = (
        lab.group_by([*by, lab[score].name("score")]).aggregate(pos=y.sum(), n=lab.count())
    ).to_pandas()
    out["neg"] = out["n"] - out["pos"]
    return out


def group_metrics(t: ir.Table, by: str, *, threshold: float = 0.5,
                  alpha: float = 0.05) -> pd.DataFrame:  # fmt: skip
    """`BinaryMetrics` per value of ``by``, computed in the engine with window functions over
    the (group, distinct score) counts: one small row per group comes back.

    ``t`` has the score as ``__s`` and the label as ``__y`` (null = unlabelled). Same formulas
    as `binary_metrics_from_counts` (Mann-Whitney AUC with ties 1/2, DeLong's variance, average
    precision over distinct thresholds, clipped log loss)."""
    sizes = t.group_by(by).aggregate(n=ibis._.count())
    lab = t.filter(t["__y"].notnull())
    g = lab.group_by([by, "__s"]).aggregate(pos=lab["__y"].sum(), neg=(1 - lab["__y"]).sum())
    asc = ibis.cumulative_window(group_by=by, order_by="__s")  # one sort per group
    whole = ibis.window(group_by=by)
    g = g.mutate(cpos=g.pos.sum().over(asc), cneg=g.neg.sum().over(asc),
                 tpos=g.pos.sum().over(whole), tneg=g.neg.sum().over(whole))  # fmt: skip
    g = g.mutate(
        a=g.cneg - g.neg * 0.5,  # negatives below + half the ties
        b=g.tpos - g.cpos + g.pos * 0.5,  # positives above + half the ties
        tp_cum=g.tpos - g.cpos + g.pos,  # at or above this score
        fp_cum=g.tneg - g.cneg + g.neg,
    )
    eps = config.LOG_LOSS_EPS
    p = ibis.greatest(ibis.least(g["__s"], 1 - eps), eps)
    flag = g["__s"] >= threshold
    agg = g.group_by(by).aggregate(
        P=g.pos.sum(), N=g.neg.sum(), S1=(g.pos * g.a).sum(), S2=(g.pos * g.a * g.a).sum(),
        T2=(g.neg * g.b * g.b).sum(), AP=(g.pos * g.tp_cum / (g.tp_cum + g.fp_cum)).sum(),
        LL=-(g.pos * p.ln() + g.neg * (1 - p).ln()).sum(),
        BR=(g.pos * (1 - g["__s"]) ** 2 + g.neg * g["__s"] ** 2).sum(),
        TP=g.pos.sum(where=flag), FP=g.neg.sum(where=flag),
    )  # fmt: skip
    df = sizes.left_join(agg, by).select(sizes[by], "n", *[c for c in agg.columns if c != by])
    df = df.to_pandas().fillna({c: 0.0 for c in ("P", "N", "TP", "FP")})
    df = df.rename(columns={by: "group"})
    z = sps.norm.ppf(1 - alpha / 2)
    rows = []
    for r in df.itertuples(index=False):
        P, N = float(r.P), float(r.N)
        n_lab = P + N
        auc = se = math.nan
        if P > 0 and N > 0:
            auc = float(r.S1) / (P * N)
            s10 = (float(r.S2) / N**2 - P * auc**2) / (P - 1) if P > 1 else 0.0
            s01 = (float(r.T2) / P**2 - N * auc**2) / (N - 1) if N > 1 else 0.0
            se = math.sqrt(max(s10 / P + s01 / N, 0.0))
        tp, fp = float(r.TP), float(r.FP)
        fn, tn = P - tp, N - fp
        rows.append({
            "group": r.group, "n": int(r.n), "n_labelled": int(n_lab),
            "roc_auc": auc, "roc_auc_ci_lower": max(0.0, auc - z * se) if se == se else math.nan,
            "roc_auc_ci_upper": min(1.0, auc + z * se) if se == se else math.nan,
            "pr_auc": float(r.AP) / P if P > 0 else math.nan,
            "log_loss": float(r.LL) / n_lab if n_lab else math.nan,
            "brier": float(r.BR) / n_lab if n_lab else math.nan,
            "precision": safe_div(tp, tp + fp), "recall": safe_div(tp, P),
            "f1": safe_div(2 * tp, 2 * tp + fp + fn), "accuracy": safe_div(tp + tn, n_lab),
            "positive_rate": safe_div(P, n_lab),
        })  # fmt: skip
    return pd.DataFrame(rows)


def segment_metrics(t: ir.Table, segment_cols: Sequence[str], threshold: float) -> pd.DataFrame:
    frames = []
    for col in segment_cols:
        m = group_metrics(t.mutate(__seg=t[col].cast("string")), "__seg", threshold=threshold)
        frames.append(m.rename(columns={"group": "value"}).assign(column=col))
    if not frames:
        return pd.DataFrame()
    cols = ["column", "value", "n", "n_labelled", "roc_auc", "roc_auc_ci_lower",
            "roc_auc_ci_upper", "pr_auc", "precision", "recall", "positive_rate"]  # fmt: skip
    df = pd.concat(frames, ignore_index=True)[cols]
    return df.sort_values(["roc_auc", "n"], ascending=[True, False], na_position="last",
                          ignore_index=True)  # fmt: skip


def window_start(ts: ir.TimestampValue, window: str) -> ir.TimestampValue:
    return ts.truncate("D" if window == "day" else "W")


def window_metrics(t: ir.Table, time_col: str, window: str, threshold: float, metric: str,
             floor: float | None) -> pd.DataFrame:  # fmt: skip
    m = group_metrics(t.mutate(__w=window_start(t[time_col], window)), "__w",
                      threshold=threshold).sort_values("group")  # fmt: skip
    ci = metric == "roc_auc"
    return pd.DataFrame({
        "window": pd.to_datetime(m["group"]).to_numpy(), "n": m["n"].to_numpy(),
        "n_labelled": m.n_labelled.to_numpy(), metric: m[metric].to_numpy(),
        "ci_lower": m.roc_auc_ci_lower.to_numpy() if ci else np.nan,
        "ci_upper": m.roc_auc_ci_upper.to_numpy() if ci else np.nan,
        "below_floor": (m[metric] < floor).to_numpy() if floor is not None else False,
    })  # fmt: skip


def regression_metrics(
    source: Any,
    *,
    prediction_col: str = "prediction",
    label_col: str = "label",
    table: str | None = None,
) -> dict[str, float]:
    """MAE, RMSE, MAPE and R² of a regression model from engine-side sums (null labels skipped).

    MAPE follows scikit-learn (``|y − ŷ| / max(|y|, eps)``)."""
    src = open_source(source, table=table, name="predictions",
                      required={prediction_col: "numeric", label_col: "numeric"})  # fmt: skip
    t = src.table
    y, p = t[label_col].cast("float64"), t[prediction_col].cast("float64")
    ok = y.notnull() & p.notnull()
    eps = float(np.finfo(np.float64).eps)
    r = t.filter(ok).aggregate(
        n=ibis._.count(), sae=(y - p).abs().sum(), sse=((y - p) ** 2).sum(),
        sape=((y - p).abs() / ibis.greatest(y.abs(), eps)).sum(), sy=y.sum(), syy=(y * y).sum(),
    ).to_pandas().iloc[0]  # fmt: skip
    n = float(r.n)
    if n == 0:
        raise DataError(f"{src.label} has no rows with both {prediction_col!r} and {label_col!r}")
    sst = float(r.syy) - float(r.sy) ** 2 / n
    return {"n": int(n), "mae": float(r.sae) / n, "rmse": math.sqrt(float(r.sse) / n),
            "mape": float(r.sape) / n,
            "r2": 1 - float(r.sse) / sst if sst > 0 else math.nan}  # fmt: skip


def numeric_label(t: ir.Table, label_col: str, label: str) -> ir.Table:
    """The label column as numbers; an all-null text column (a CSV export with no labels
    yet) is an unlabelled column, not a schema error."""
    dtype = t[label_col].type()
    if dtype.is_numeric() or dtype.is_boolean() or dtype.is_null():
        return t
    if dtype.is_string() and int(t[label_col].count().to_pandas()) == 0:
        return t.mutate(**{label_col: t[label_col].cast("float64")})
    raise SchemaError(
        f"{label} column {label_col!r} has type {dtype}; expected numeric 0/1 labels (null = not "
        "yet labelled); set label_col= to a numeric column",
        table=label, column=label_col,
    )  # fmt: skip


def comparable_timestamp(value: Any, ref: pd.Timestamp) -> pd.Timestamp:
    """``value`` as a timestamp comparable with ``ref``: a naive one is read in ``ref``'s zone."""
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise ParameterError(f"reference_end {value!r} is not a date or timestamp") from None
    if ref.tzinfo is not None and ts.tzinfo is None:
        return ts.tz_localize(ref.tzinfo)
    if ref.tzinfo is None and ts.tzinfo is not None:
        return ts.tz_convert("UTC").tz_localize(None)
    return ts
