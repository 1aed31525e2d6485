"""The model report's verdict: ``healthy`` / ``watch`` / ``degraded`` (README, "Verdicts").

- degraded: in the latest complete window the tracked metric's CI upper bound is below
  ``metric_floor``; or ROC AUC since ``reference_end`` is significantly below the reference
  period's (DeLong SEs, two-sided at alpha).
- watch: the latest complete window's estimate is below the floor but its CI reaches it; score
  drift (PSI ≥ 0.1) in the latest complete window (with ``window=None``: over the whole
  current period); major drift (PSI ≥ 0.25) of a feature;
  calibration error (ECE) ≥ `config.ECE_WATCH`.
- healthy: none of these. Partial windows (the data covers part of them) never decide.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pandas as pd
from scipy import stats as sps

from aipm_nb import config
from aipm_nb.results import Verdict, ci_label

if TYPE_CHECKING:
    from aipm_nb.model.analyze import ModelResult

__all__ = ["latest_drift", "model_verdict"]


def latest_drift(by_window: pd.DataFrame) -> dict[str, object] | None:
    """The score PSI of the latest complete current window, the highest since the onset (the
    first current window that is not stable) and the onset; None without complete windows.
    """
    cur = by_window[~by_window.reference & ~by_window.partial] if len(by_window) else by_window
    if not len(cur):
        return None
    moved = cur[cur.status != "stable"]
    since = cur[cur.window >= moved.window.iloc[0]] if len(moved) else cur.iloc[0:0]
    return {
        "window": cur.window.iloc[-1],
        "psi": float(cur.psi.iloc[-1]),
        "status": str(cur.status.iloc[-1]),
        "onset": moved.window.iloc[0] if len(moved) else None,
        "max_psi": float(since.psi.max()) if len(since) else float(cur.psi.iloc[-1]),
    }


def model_verdict(res: ModelResult) -> Verdict:
    """The verdict of a `ModelResult` by the rules of this module."""
    bad: list[str] = []
    watch: list[str] = []
    alpha = res.alpha
    _floor(res, bad, watch, alpha)
    _auc_drop(res, bad, alpha)
    _estimated_floor(res, bad)
    drift = latest_drift(res.score_drift_by_window)
    if drift and drift["psi"] >= config.PSI_STABLE:  # type: ignore[operator]
        onset = f" on {drift['onset']:%d %b %Y}" if drift["onset"] is not None else ""
        watch.append(
            f"score drift: PSI {drift['psi']:.2f} ({drift['status']}) in the latest complete "
            f"window (from {drift['window']:%d %b %Y}), highest {drift['max_psi']:.2f} since "
            f"the onset{onset}"
        )
    elif res.window is None and len(res.drift) and res.drift.psi.iloc[0] >= config.PSI_STABLE:
        score = res.drift.iloc[0]  # windows off: the whole current period decides
        watch.append(
            f"score drift: PSI {score.psi:.2f} ({score.status}) since "
            f"{res.reference_end:%d %b %Y} (windows off)"
        )
    feats = res.drift.iloc[1:] if len(res.drift) else res.drift
    major = feats[feats.status == "major"] if len(feats) else feats
    if len(major):
        watch.append(
            "major feature drift: "
            + ", ".join(f"{r.column} PSI {r.psi:.2f}" for r in major.itertuples())
        )
    ece = res.ece
    if not math.isnan(ece) and ece >= config.ECE_WATCH:
        watch.append(f"calibration error ECE {ece:.3f} (≥ {config.ECE_WATCH})")
    if bad:
        return Verdict("degraded", tuple(bad + watch))
    if watch:
        return Verdict("watch", tuple(watch))
    return Verdict("healthy", ("no floor breach, no significant drop, no drift",))


def _floor(res: ModelResult, bad: list[str], watch: list[str], alpha: float) -> None:
    floor = res.metric_floor
    w = res.windows
    metric = res.window_metric
    if floor is None or w.empty:
        return
    done = w[~w.partial & (w.n_labelled > 0)].dropna(subset=[metric])
    if done.empty:
        return
    last = done.iloc[-1]
    ci = ""
    if not math.isnan(last.ci_lower):
        ci = f", {ci_label(alpha)} {last.ci_lower:.3f}–{last.ci_upper:.3f}"
    text = f"{metric} {last[metric]:.3f}{ci} in the window from {last.window:%d %b %Y}"
    if last.below_floor:
        bad.append(f"{text}: below the floor {floor}")
    elif last[metric] < floor:
        watch.append(f"{text}: estimate below the floor {floor}, but the interval reaches it")


def _estimated_floor(res: ModelResult, bad: list[str]) -> None:
    """Before labels arrive: the latest unlabelled window whose estimate's ±3 SE band lies
    below the floor (`aipm_nb.model.estimate`).
    """
    from aipm_nb.model.estimate import latest_estimate

    if res.metric_floor is None:
        return
    metric = res.window_metric if res.window_metric in ("roc_auc", "accuracy", "precision",
                                                         "recall", "f1") else "roc_auc"  # fmt: skip
    e = latest_estimate(res.estimated, metric)
    # like realized metrics, a window the data covers only partly never raises an alert
    if e is not None and not e["partial"] and e["upper"] < res.metric_floor:
        bad.append(
            f"estimated {metric} {e['estimate']:.3f} (±3 SE {e['lower']:.3f}–{e['upper']:.3f}) "
            f"in the window from {e['window']:%d %b %Y}, which has no labels yet: below the "
            f"floor {res.metric_floor} (estimated from calibrated scores)"
        )


def _auc_drop(res: ModelResult, bad: list[str], alpha: float) -> None:
    ref, cur = res.reference_metrics, res.current_metrics
    if ref is None or cur is None:
        return
    se = math.hypot(ref.roc_auc_se, cur.roc_auc_se)
    if not se > 0:
        return
    diff = cur.roc_auc - ref.roc_auc
    z = float(sps.norm.ppf(1 - alpha / 2))
    if diff + z * se < 0:
        bad.append(
            f"ROC AUC {cur.roc_auc:.3f} since {res.reference_end:%d %b %Y} against "
            f"{ref.roc_auc:.3f} before ({diff:+.3f}, {ci_label(alpha)} {diff - z * se:+.3f} to "
            f"{diff + z * se:+.3f})"
        )
