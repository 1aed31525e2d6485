"""Model results for people: the executive summary."""

from __future__ import annotations

import math

import pandas as pd

from aipm_nb.markup import md
from aipm_nb.model.analyze import ModelResult
from aipm_nb.model.verdict import latest_drift
from aipm_nb.results import ci_label

__all__ = ["summary_markdown"]


def summary_markdown(res: ModelResult) -> str:
    """Executive summary: AUC with its CI against the reference, drift and its onset, worst
    segment, calibration.
    """
    lines = [res.verdict.markdown()]
    m, ref, cur = res.metrics, res.reference_metrics, res.current_metrics
    if m is None or math.isnan(m.roc_auc):
        lines.append(
            f"**No label metrics**: {res.n_labelled:,} of {res.n:,} predictions have a "
            "usable label."
        )
    else:
        line = (
            f"**AUC {m.roc_auc:.3f}** ({m.roc_auc_ci_lower:.3f}–{m.roc_auc_ci_upper:.3f}, "
            f"{ci_label(res.alpha)}, DeLong) over {res.n_labelled:,} labelled predictions"
        )
        if ref and cur and not math.isnan(cur.roc_auc) and not math.isnan(ref.roc_auc):
            word = "down" if cur.roc_auc < ref.roc_auc else "up"
            line += (
                f"; {cur.roc_auc:.3f} since {res.reference_end:%d %b %Y}, {word} from "
                f"{ref.roc_auc:.3f} in the reference period"
            )
        lines.append(line + ".")
        lines.append(
            f"At threshold {res.threshold:g}: precision {m.precision:.1%}, recall {m.recall:.1%}"
            f", F1 {m.f1:.3f}, accuracy {m.accuracy:.1%}. Calibration error (ECE) "
            f"{res.ece:.3f}"
            + (
                " — scores over-predict"
                if _over(res)
                else " — scores under-predict"
                if _over(res) is False
                else ""
            )
            + "."
        )
    d = res.drift.set_index("column")
    score = d.iloc[0]
    lines.append(_drift_sentence(res, score))
    moved = d.iloc[1:][d.iloc[1:].status != "stable"]
    if len(moved):
        drifted = [f"{md(c)} PSI {r.psi:.2f} ({r.status})" for c, r in moved.iterrows()]
        lines.append("Drifted features: " + ", ".join(drifted) + ".")
    seg = _segment_sentence(res.segments)
    if seg:
        lines.append(seg)
    if res.chosen_threshold:
        c = res.chosen_threshold
        lines.append(
            f"Threshold {c.threshold:.4g} meets the target ({c.rule}): precision "
            f"{c.precision:.1%}, recall {c.recall:.1%}, flags "
            f"{c.flagged_share:.1%} of traffic."
        )
    est = _estimate_sentence(res)
    if est:
        lines.append(est)
    lines.append(
        f"{res.n:,} predictions, {res.n_labelled:,} labelled "
        f"({res.n - res.n_labelled:,} not yet labelled count for drift only)."
    )
    return "\n\n".join(lines)


def _estimate_sentence(res: ModelResult) -> str:
    """The estimate for the latest window that has no labels yet (CBPE), if there is one."""
    from aipm_nb.model.estimate import latest_estimate

    metric = res.window_metric if res.window_metric in ("roc_auc", "accuracy", "precision",
                                                         "recall", "f1") else "roc_auc"  # fmt: skip
    e = latest_estimate(res.estimated, metric)
    if e is None:
        return ""
    name = "ROC AUC" if metric == "roc_auc" else metric
    running = " (still running)" if e["partial"] else ""
    cal = "isotonic-calibrated scores" if res.estimate_calibration == "isotonic" else "the scores"
    return (
        f"**Before labels arrive**: the window from {e['window']:%d %b %Y}{running} has no "
        f"labels yet; its estimated {name} is **{e['estimate']:.3f}** (±3 SE "
        f"{e['lower']:.3f}–{e['upper']:.3f}), from {cal} — valid while the calibration holds."
    )


def _drift_sentence(res: ModelResult, score: pd.Series) -> str:
    """Score drift over the whole current period, and in its latest complete window with the
    highest PSI since the onset (an average over stable weeks would dilute a recent shift).
    """
    text = (
        f"**Score drift PSI {score.psi:.2f} ({score.status})** over the whole period since "
        f"{res.reference_end:%d %b %Y}, KS {score.ks_statistic:.3f}"
    )
    latest = latest_drift(res.score_drift_by_window)
    if latest is not None:
        text += (
            f"; in the latest complete window (from {latest['window']:%d %b %Y}) PSI "
            f"{latest['psi']:.2f} ({latest['status']})"
        )
        if latest["onset"] is not None:
            text += f", highest {latest['max_psi']:.2f} since the onset {latest['onset']:%d %b %Y}"
    return text + "."


def _segment_sentence(segments: pd.DataFrame) -> str:
    """The lowest-AUC segment, called "worst" only when its CI lies below every other
    segment's CI (else the intervals overlap and no segment is detectably worse).
    """
    if segments.empty or not segments.roc_auc.notna().any():
        return ""
    s = segments.dropna(subset=["roc_auc"])
    w, others = s.iloc[0], s.iloc[1:]
    what = (
        f"{md(w.column)} = {md(w['value'])}** (AUC {w.roc_auc:.3f}, "
        f"{w.roc_auc_ci_lower:.3f}–{w.roc_auc_ci_upper:.3f}; {int(w.n_labelled):,} labelled)"
    )
    if len(others) and w.roc_auc_ci_upper < others.roc_auc_ci_lower.min():
        return f"**Worst segment: {what}."
    return (
        f"Lowest AUC estimate: **{what}; its interval overlaps the others': no segment is "
        "detectably worse."
    )


def _over(res: ModelResult) -> bool | None:
    c = res.calibration[res.calibration["count"] > 0]
    if c.empty:
        return None
    gap = float(((c.mean_score - c.positive_rate) * c["count"]).sum() / c["count"].sum())
    if abs(gap) < 0.01:
        return None
    return gap > 0
