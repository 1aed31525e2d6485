"""Performance before labels arrive (issue 19): CBPE's published case, coverage of the ±3 SE
band on simulated windows, recalibration of a miscalibrated model, the sample's unlabelled drop,
and a clear error without labelled reference rows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from aipm_nb import model, synthetic
from aipm_nb.errors import DataError
from aipm_nb.model.estimate import estimate_by_window
from aipm_nb.stats.cbpe import estimated_metrics, fit_calibration


def test_published_case_accuracy_and_auc():
    """Perfectly calibrated p = [.9, .8, .7, .3, .2, .1], threshold 0.5: accuracy 0.8 and
    expected ROC AUC 0.84444 (NannyML's CBPE)."""
    p = [0.9, 0.8, 0.7, 0.3, 0.2, 0.1]
    est = estimated_metrics(pd.DataFrame({"score": p, "n": 1, "p": p}))
    assert est["accuracy"][0] == pytest.approx(0.8)
    assert est["roc_auc"][0] == pytest.approx(0.84444, abs=5e-6)
    # expected confusion counts: TP = .9+.8+.7, FP = .1+.2+.3, FN = .3+.2+.1
    assert est["precision"][0] == pytest.approx(2.4 / 3)
    assert est["recall"][0] == pytest.approx(2.4 / 3.0)
    assert est["f1"][0] == pytest.approx(2 * 2.4 / (2 * 2.4 + 0.6 + 0.6))


def _windows(n_windows, rows, rng, *, shift=0.0):
    """Weekly windows of calibrated scores (beta-distributed) with labels drawn from them; the
    logged score is sigmoid(logit(p) + shift) (shift ≠ 0: miscalibrated)."""
    p = rng.beta(2, 4, n_windows * rows)
    y = (rng.random(len(p)) < p).astype(float)
    logit = np.log(p / (1 - p)) + shift
    score = 1 / (1 + np.exp(-logit))
    days = np.repeat(np.arange(n_windows) * 7, rows)
    t = pd.Timestamp("2023-01-02") + pd.to_timedelta(days, unit="D")
    t = t + pd.to_timedelta(np.tile(np.linspace(0, 6.9 * 86400, rows), n_windows), unit="s")
    return pd.DataFrame({"score": score, "label": y, "event_time": t})


def _estimated(df, reference_end):
    res = model.analyze_model(df, reference_end=reference_end)
    e = res.estimated
    return res, e[~e.partial]


@pytest.mark.slow
def test_band_covers_the_realized_metric_on_simulated_windows():
    """200 windows of 2,000 rows whose labels are drawn from the (calibrated) scores: the
    realized metric lies inside the ±3 SE band in ≥ 99% of windows (every metric), and the
    estimates are unbiased (mean error < 0.005)."""
    rng = np.random.default_rng(11)
    df = _windows(220, 2000, rng)
    res, e = _estimated(df, "2023-05-29")  # the first 21 weeks are the reference
    assert res.estimate_calibration in ("isotonic", "none")
    e = e[e.window >= pd.Timestamp("2023-05-29")]
    assert e.window.nunique() >= 199
    inside = (e.realized >= e.lower) & (e.realized <= e.upper)
    by = inside.groupby(e.metric).mean()
    assert (by >= 0.99).all(), by
    err = (e.estimate - e.realized).groupby(e.metric).mean().abs()
    assert (err < 0.005).all(), err


def test_miscalibrated_scores_are_recalibrated():
    """Scores that over-predict (logit + 1): isotonic calibration on the reference is kept and
    the estimates stay unbiased; without it accuracy would be biased."""
    rng = np.random.default_rng(12)
    df = _windows(40, 2000, rng, shift=1.0)
    res, e = _estimated(df, "2023-03-27")
    assert res.estimate_calibration == "isotonic"
    e = e[e.window >= pd.Timestamp("2023-03-27")]
    err = (e.estimate - e.realized).groupby(e.metric).mean().abs()
    assert (err < 0.01).all(), err
    # the raw scores would over-estimate precision badly
    raw = estimated_metrics(pd.DataFrame({"score": df.score, "n": 1, "p": df.score}))
    assert raw["precision"][0] - e[e.metric == "precision"].realized.mean() > 0.05


def test_calibration_kept_only_when_it_lowers_the_reference_ece():
    ref = pd.DataFrame({"mean_score": [0.1, 0.3, 0.5, 0.7, 0.9], "n": [1000] * 5,
                        "pos": [100, 300, 500, 700, 900]})  # fmt: skip
    c = fit_calibration(ref)  # already calibrated: isotonic cannot lower ECE 0
    assert c.method == "none" and c.ece_raw == pytest.approx(0.0)


def test_no_labels_in_the_reference_is_a_clear_error():
    import ibis

    from aipm_nb.sources import open_source

    df = _windows(6, 200, np.random.default_rng(0))
    df.loc[df.event_time < pd.Timestamp("2023-01-23"), "label"] = np.nan
    t = open_source(df).table.mutate(__s=ibis._.score, __y=ibis._.label)
    is_ref = t.event_time < pd.Timestamp("2023-01-23").to_pydatetime()
    span = (df.event_time.min(), df.event_time.max())
    with pytest.raises(DataError, match="no labelled row in the reference period"):
        estimate_by_window(t, "event_time", "week", 0.5, is_ref, span)
    # the model report says why it has no estimates instead of failing
    res = model.analyze_model(df, reference_end="2023-01-23")
    assert res.estimated.empty
    assert any("no performance estimates" in w["message"] for w in res.warnings)


def test_sample_unlabelled_drop_is_estimated():
    """The sample's running week (from 2024-05-27, no labels) moves toward the uncertain
    region (PREDICTIONS_TRUTH["uncertain_from_day"]): the estimate shows the drop, and the
    expected AUC of the true probabilities lies inside its band."""
    res = model.analyze_model("sample:predictions", metric_floor=0.7)
    e = res.estimated[res.estimated.metric == "roc_auc"].set_index("window")
    last, before = e.loc[pd.Timestamp("2024-05-27")], e.loc[pd.Timestamp("2024-05-20")]
    assert last.n_labelled == 0 and before.n_labelled > 0
    assert last.estimate < before.estimate - 0.05
    truth = synthetic.generate_predictions(return_truth=True)
    week = truth[truth.event_time >= pd.Timestamp("2024-05-27")]
    true_auc = estimated_metrics(
        pd.DataFrame({"score": week.score, "n": 1, "p": week.true_probability})
    )["roc_auc"][0]
    assert last.lower <= true_auc <= last.upper, (true_auc, last.to_dict())
    text = model.summary_markdown(res)
    assert "Before labels arrive" in text and "27 May 2024" in text
    d = res.to_dict()["estimated"]
    assert {"window", "metric", "estimate", "lower", "upper", "realized"} == set(d[0])
    json.dumps(d, allow_nan=False)
