"""Performance before labels arrive: confidence-based performance estimation (NannyML's CBPE;
DESIGN section 4), on score bins.

With calibrated probabilities p, a row predicted positive (score ≥ threshold) is a true
positive with probability p, a row predicted negative a true negative with probability 1 − p,
so the expected confusion counts are TP = Σ_{ŷ=1} p, FP = Σ_{ŷ=1} (1 − p), FN = Σ_{ŷ=0} p,
TN = Σ_{ŷ=0} (1 − p); the expected ROC AUC treats each row as p positive and 1 − p negative
(scores sorted descending; `ClassifierSums` does exactly this with fractional counts).

Standard errors are analytic (not NannyML's chunk-to-chunk spread): given the scores, each
row's outcome is Bernoulli(p), so Var(realized accuracy) = Σ p(1 − p) / n², precision
Σ_{ŷ=1} p(1 − p) / n₁², recall and F1 by the delta method; ROC AUC uses DeLong's variance at
the expected counts, which also counts the variation of the scores and is conservative here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from aipm_nb import config
from aipm_nb.stats.classifier import ClassifierSums

__all__ = [
    "ESTIMATED_METRICS",
    "Calibration",
    "binned_ece",
    "estimated_metrics",
    "fit_calibration",
]

#: The metrics estimated per window, in this order.
ESTIMATED_METRICS = ("roc_auc", "accuracy", "precision", "recall", "f1")


def estimated_metrics(
    bins: pd.DataFrame, *, threshold: float = 0.5
) -> dict[str, tuple[float, float]]:
    """``{metric: (estimate, standard error)}`` from score bins: ``score`` (the bin's score,
    compared with ``threshold``), ``n`` (rows) and ``p`` (their calibrated probability).

    Examples (perfectly calibrated scores, threshold 0.5):
        >>> b = pd.DataFrame({"score": [.9, .8, .7, .3, .2, .1], "n": 1,
        ...                   "p": [.9, .8, .7, .3, .2, .1]})
        >>> est = estimated_metrics(b)
        >>> round(est["accuracy"][0], 5), round(est["roc_auc"][0], 5)
        (0.8, 0.84444)
    """
    n = bins["n"].to_numpy(float)
    p = np.clip(bins["p"].to_numpy(float), 0.0, 1.0)
    score = bins["score"].to_numpy(float)
    pos, neg, var = n * p, n * (1 - p), n * p * (1 - p)
    counts = pd.DataFrame({"score": score, "pos": pos, "neg": neg})
    m = ClassifierSums.from_counts(counts, threshold=threshold).metrics()
    flag = score >= threshold
    a, b = pos[flag].sum(), pos[~flag].sum()  # expected TP, FN
    n1, total = n[flag].sum(), n.sum()
    v1, v0 = var[flag].sum(), var[~flag].sum()

    def div(x: float, y: float) -> float:
        return x / y if y > 0 else math.nan

    out = {
        "roc_auc": (m.roc_auc, m.roc_auc_se),
        "accuracy": (m.accuracy, div(math.sqrt(v1 + v0), total)),
        "precision": (m.precision, div(math.sqrt(v1), n1)),
        "recall": (m.recall, div(math.sqrt(b * b * v1 + a * a * v0), (a + b) ** 2)),
        "f1": (m.f1, div(2 * math.sqrt((b + n1) ** 2 * v1 + a * a * v0), (a + b + n1) ** 2)),
    }
    return {k: (float(e), float(s)) for k, (e, s) in out.items()}


def binned_ece(n: np.ndarray, mean_p: np.ndarray, positives: np.ndarray) -> float:
    """ECE over 10 equal-width bins of the probabilities (DESIGN section 4), from groups of rows
    with ``n`` rows, mean probability ``mean_p`` and ``positives`` positives each.

    Examples:
        >>> round(binned_ece(np.array([4, 2]), np.array([0.25, 0.75]), np.array([1, 2])), 4)
        0.0833
    """
    nb = config.CALIBRATION_BINS
    b = np.minimum(np.floor(np.asarray(mean_p) * nb), nb - 1).astype(int)
    df = pd.DataFrame({"b": b, "n": n, "s": np.asarray(n) * np.asarray(mean_p), "pos": positives})
    g = df.groupby("b")[["n", "s", "pos"]].sum()
    g = g[g.n > 0]
    total = g.n.sum()
    if not total:
        return math.nan
    return float((g.n / total * (g.s / g.n - g.pos / g.n).abs()).sum())


@dataclass(frozen=True)
class Calibration:
    """The score → probability map of the estimates: ``isotonic`` (fitted on the labelled
    reference rows' score bins) or ``none`` (the scores as they are), whichever has the lower
    reference ECE.
    """

    method: str
    ece_raw: float
    ece_calibrated: float
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        """Probabilities for ``scores`` (bin mean scores)."""
        s = np.asarray(scores, dtype=float)
        if self.method == "none":
            return s
        return np.interp(s, np.asarray(self.x), np.asarray(self.y))


def ece_noise(n: np.ndarray, mean_p: np.ndarray) -> float:
    """The ECE a perfectly calibrated model shows from sampling noise alone: per 10-bin group
    E|rate − p| ≈ √(2/π)·√(p(1−p)/n_b), size-weighted.

    Examples:
        >>> round(ece_noise(np.array([1000, 1000]), np.array([0.2, 0.7])), 4)
        0.0108
    """
    nb = config.CALIBRATION_BINS
    b = np.minimum(np.floor(np.asarray(mean_p) * nb), nb - 1).astype(int)
    df = pd.DataFrame({"b": b, "n": n, "s": np.asarray(n) * np.asarray(mean_p)})
    g = df.groupby("b")[["n", "s"]].sum()
    g = g[g.n > 0]
    p = g.s / g.n
    total = g.n.sum()
    return float((g.n / total * np.sqrt(2 / np.pi * p * (1 - p) / g.n)).sum()) if total else 0.0


def fit_calibration(ref: pd.DataFrame) -> Calibration:
    """Fit isotonic regression on the reference bins (``mean_score``, ``n`` labelled rows,
    ``pos``) and keep it only when it lowers the reference ECE — and only when the raw ECE is
    more than twice what sampling noise alone gives (`ece_noise`): refitting a calibrated
    model to its noise would only add error.

    Examples:
        >>> ref = pd.DataFrame({"mean_score": [0.2, 0.4, 0.6, 0.8], "n": [100] * 4,
        ...                     "pos": [5, 15, 30, 50]})  # over-predicting scores
        >>> c = fit_calibration(ref)
        >>> c.method, round(c.ece_raw, 3), round(c.ece_calibrated, 3)
        ('isotonic', 0.25, 0.0)
    """
    from sklearn.isotonic import IsotonicRegression

    ref = ref[ref.n > 0].sort_values("mean_score")
    x = ref.mean_score.to_numpy(float)
    n = ref.n.to_numpy(float)
    pos = ref.pos.to_numpy(float)
    ece_raw = binned_ece(n, x, pos)
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    iso.fit(x, pos / n, sample_weight=n)
    fitted = iso.predict(x)
    ece_cal = binned_ece(n, fitted, pos)
    if ece_cal < ece_raw and ece_raw > 2 * ece_noise(n, x):
        return Calibration("isotonic", ece_raw, ece_cal, tuple(x), tuple(fitted))
    return Calibration("none", ece_raw, ece_raw)
