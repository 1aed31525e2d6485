"""Model performance against scikit-learn, hand-computed ECE / PSI, and the synthetic truth."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from sklearn import metrics as skm
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from aipm_nb import model, synthetic
from aipm_nb.errors import DataError, ParameterError, SchemaError


def _frame(score, label, start="2024-01-01"):
    n = len(score)
    return pd.DataFrame({
        "score": score, "label": pd.array(label, dtype="Int64"),
        "event_time": pd.Timestamp(start) + pd.to_timedelta(np.arange(n) * 60, unit="s"),
    })  # fmt: skip


def _check_against_sklearn(score, label, threshold=0.5, window="week"):
    res = model.analyze_model(_frame(score, label), threshold=threshold, window=window)
    m = res.metrics
    y = np.asarray(label, dtype=float)
    pred = (np.asarray(score) >= threshold).astype(int)
    assert m.roc_auc == pytest.approx(skm.roc_auc_score(y, score), rel=1e-9, abs=1e-12)
    assert m.pr_auc == pytest.approx(skm.average_precision_score(y, score), rel=1e-9)
    assert m.log_loss == pytest.approx(skm.log_loss(y, score), rel=1e-9)
    assert m.brier == pytest.approx(skm.brier_score_loss(y, score), rel=1e-9)
    assert m.precision == pytest.approx(skm.precision_score(y, pred, zero_division=np.nan),
                                        rel=1e-9, nan_ok=True)  # fmt: skip
    assert m.recall == pytest.approx(skm.recall_score(y, pred), rel=1e-9)
    assert m.f1 == pytest.approx(skm.f1_score(y, pred), rel=1e-9)
    assert m.accuracy == pytest.approx(skm.accuracy_score(y, pred), rel=1e-9)
    return res


@pytest.mark.parametrize("seed", range(6))
def test_matches_sklearn_with_many_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 3000))
    label = rng.integers(0, 2, n)
    # few distinct values: heavy ties, including 0 and 1 exactly (log-loss clipping)
    score = np.clip(np.round(0.3 * label + rng.random(n) * 0.7, 1), 0, 1)
    _check_against_sklearn(score, label, threshold=float(rng.choice([0.3, 0.5, 0.7])))


def test_matches_sklearn_on_a_trained_model():
    x, y = load_breast_cancer(return_X_y=True)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.5, random_state=0)
    clf = LogisticRegression(max_iter=5000).fit(xtr, ytr)
    score = clf.predict_proba(xte)[:, 1]
    _check_against_sklearn(score, yte)
    assert _check_against_sklearn(score, yte, window=None).windows.empty  # windows off


def distinct_and_tied_predictions(n=100_000, seed=11):
    """Two prediction logs a real model writes (issue 14): ``n`` rows of full-precision scores
    (all distinct, skewed: Beta(0.7, 3)), labels drawn from a miscalibrated truth, four weeks,
    a three-valued segment; and a tenth of it with scores rounded to 0.05 (heavy ties, 0 and 1
    exactly), a few unlabelled rows and some null segments.
    """
    rng = np.random.default_rng(seed)
    score = rng.beta(0.7, 3.0, n)
    label = (rng.random(n) < np.clip(score * 1.3, 0, 1)).astype("int64")
    distinct = pd.DataFrame({
        "score": score, "label": pd.array(label, dtype="Int64"),
        "event_time": pd.Timestamp("2024-03-04") + pd.to_timedelta(
            np.sort(rng.random(n)) * 28 * 86400, unit="s").floor("us"),  # engines keep µs
        "segment": rng.choice(["android", "ios", "web"], n, p=[0.5, 0.3, 0.2]),
    })  # fmt: skip
    assert distinct.score.nunique() == n
    tied = distinct.iloc[: n // 10].copy()
    tied["score"] = np.round(tied.score * 20) / 20
    tied.loc[tied.index[::97], "label"] = pd.NA
    tied.loc[tied.index[::13], "segment"] = None  # a null segment is a group of its own
    return distinct, tied


def check_model_against_sklearn(res, df):
    """``analyze_model``'s overall, per-segment and per-week label metrics equal scikit-learn
    on the labelled rows of ``df`` (to 1e-9)."""
    lab = df[df.label.notna()]

    def ref(g):
        y, s = g.label.astype(int).to_numpy(), g.score.to_numpy()
        return {"roc_auc": skm.roc_auc_score(y, s), "pr_auc": skm.average_precision_score(y, s),
                "log_loss": skm.log_loss(y, s), "brier": skm.brier_score_loss(y, s)}  # fmt: skip

    for name, want in ref(lab).items():
        assert getattr(res.metrics, name) == pytest.approx(want, rel=1e-9, abs=1e-12), name
    seg = res.segments
    assert len(seg) == lab.segment.nunique(dropna=False)
    for value, g in lab.groupby("segment", dropna=False):
        row = seg[seg.value.isna() if pd.isna(value) else seg.value == value]
        assert row.roc_auc.item() == pytest.approx(ref(g)["roc_auc"], rel=1e-9)
        assert row.pr_auc.item() == pytest.approx(ref(g)["pr_auc"], rel=1e-9)
    week = lab.event_time.dt.to_period("W-SUN").dt.start_time
    windows = res.windows.set_index("window")
    for start, g in lab.groupby(week):
        assert windows.loc[start, "roc_auc"] == pytest.approx(ref(g)["roc_auc"], rel=1e-9)


@pytest.mark.parametrize("kind", ["distinct", "tied"])
def test_matches_sklearn_on_a_real_model_log(kind):
    """10^5 all-distinct full-precision scores (and a tied copy): overall, segment and window
    metrics equal scikit-learn's to 1e-9 (issue 14; the engines run the same in test_engines)."""
    distinct, tied = distinct_and_tied_predictions()
    df = distinct if kind == "distinct" else tied
    res = model.analyze_model(df, segment_cols=["segment"], ks=False)
    check_model_against_sklearn(res, df)


def test_windows_can_be_switched_off(predictions_df, monkeypatch):
    """``window=None`` (issue 14): no per-window query runs, every other number is the same
    as with weekly windows, the verdict reads the whole-period score PSI instead of the latest
    window's, and a ``metric_floor`` (checked per window) is a named error."""
    from aipm_nb.model import analyze as model_analyze

    _, tied = distinct_and_tied_predictions()
    weekly = model.analyze_model(tied, segment_cols=["segment"])
    helper = model_analyze.window_group_metrics

    def no_windows(*a, **k):
        raise AssertionError("window_group_metrics ran with window=None")

    monkeypatch.setattr(model_analyze, "window_group_metrics", no_windows)
    off = model.analyze_model(tied, segment_cols=["segment"], window=None)
    # the same numbers up to the order of parallel float sums in the engine
    for name, want in vars(weekly.metrics).items():
        assert getattr(off.metrics, name) == pytest.approx(want, rel=1e-12, nan_ok=True), name
    assert off.ece == pytest.approx(weekly.ece, rel=1e-12)
    pd.testing.assert_frame_equal(off.segments, weekly.segments, rtol=1e-12)
    pd.testing.assert_frame_equal(off.drift.drop(columns="edges"),
                                  weekly.drift.drop(columns="edges"), rtol=1e-12)  # fmt: skip
    assert off.windows.empty and off.score_drift_by_window.empty and off.estimated.empty
    assert "roc_auc" in off.windows.columns and off.to_dict()["estimated"] == []

    monkeypatch.setattr(model_analyze, "window_group_metrics", helper)
    df = predictions_df.drop(columns="true_probability")
    res = model.analyze_model(df, window=None)
    psi = res.drift.psi.iloc[0]
    assert psi >= 0.1  # the sample's score drifts
    assert f"score drift: PSI {psi:.2f} ({res.drift.status.iloc[0]})" in " ".join(
        res.verdict.reasons
    )
    assert res.verdict.status == "watch"
    with pytest.raises(ParameterError, match="metric_floor=0.7 is checked per window"):
        model.analyze_model(df, window=None, metric_floor=0.7)
    with pytest.raises(ParameterError, match="window"):
        model.analyze_model(df, window="month")


@pytest.mark.parametrize("values", [5, 300])
def test_segment_metrics_with_null_and_many_values(values):
    """Segments are grouped by integer codes up to `MAX_CODED_VALUES` values and by their text
    beyond: both give scikit-learn's AUC and AP per value, a null segment included, and
    DeLong's standard error with ties."""
    from aipm_nb.model.engine import MAX_CODED_VALUES

    assert (values > MAX_CODED_VALUES) == (values == 300)
    rng = np.random.default_rng(values)
    n = 6000
    df = pd.DataFrame({
        "score": np.round(rng.beta(2, 3, n), 2), "label": rng.integers(0, 2, n),
        "event_time": pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(n), unit="min"),
        "segment": pd.Series(rng.integers(0, values, n)).map(lambda v: f"s{v:03d}"),
    })  # fmt: skip
    df.loc[df.index[::7], "segment"] = None
    df["label"] = np.where(rng.random(n) < df.score, 1, df.label)
    seg = model.analyze_model(df, segment_cols=["segment"], ks=False).segments
    assert len(seg) == values + 1
    for value, g in df.groupby(df.segment.fillna("<null>")):
        row = seg[seg.value.isna()] if value == "<null>" else seg[seg.value == value]
        y, s = g.label.to_numpy(), g.score.to_numpy()
        assert row.n.item() == len(g)
        if 0 < y.sum() < len(y):
            assert row.roc_auc.item() == pytest.approx(skm.roc_auc_score(y, s), rel=1e-12)
            assert row.pr_auc.item() == pytest.approx(skm.average_precision_score(y, s), rel=1e-12)
        if value == "<null>":
            auc, se = _delong_rows(s, y)
            z = sps.norm.ppf(0.975)
            assert row.roc_auc_ci_lower.item() == pytest.approx(auc - z * se, rel=1e-9)


def _delong_rows(score, label):
    """Independent DeLong on rows (Sun & Xu's structural components)."""
    pos, neg = score[label == 1], score[label == 0]
    cmp = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = cmp.mean(axis=1), cmp.mean(axis=0)
    auc = cmp.mean()
    var = v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg)
    return auc, math.sqrt(var)


def test_delong_standard_error():
    rng = np.random.default_rng(4)
    label = rng.integers(0, 2, 600)
    score = np.round(np.clip(rng.normal(0.4 + 0.2 * label, 0.2), 0, 1), 2)
    m = model.analyze_model(_frame(score, label)).metrics
    auc, se = _delong_rows(score, label)
    assert m.roc_auc == pytest.approx(auc, rel=1e-12)
    assert m.roc_auc_se == pytest.approx(se, rel=1e-9)
    z = sps.norm.ppf(0.975)
    assert m.roc_auc_ci_lower == pytest.approx(auc - z * se)


def test_null_labels_count_for_drift_not_metrics():
    rng = np.random.default_rng(1)
    score, label = rng.random(400), rng.integers(0, 2, 400).astype(float)
    label[::4] = np.nan
    res = model.analyze_model(_frame(score, label))
    ok = ~np.isnan(label)
    assert res.n == 400 and res.n_labelled == ok.sum()
    assert res.metrics.roc_auc == pytest.approx(skm.roc_auc_score(label[ok], score[ok]))
    assert res.calibration["count"].sum() == ok.sum()
    assert res.score_hist.n.sum() == 400  # drift sees every row


def test_ece_hand_computed_with_empty_bins():
    # bins: 0 -> {0.05, 0.05} rate 0.5; 9 -> {0.95, 1.0} rate 1.0; bins 1..8 empty
    df = _frame([0.05, 0.05, 0.95, 1.0], [0, 1, 1, 1])
    res = model.analyze_model(df)
    cal = res.calibration
    assert cal["count"].tolist() == [2, 0, 0, 0, 0, 0, 0, 0, 0, 2]
    assert cal.mean_score[0] == pytest.approx(0.05) and cal.positive_rate[9] == 1.0
    assert math.isnan(cal.mean_score[4])
    expected = 0.5 * abs(0.05 - 0.5) + 0.5 * abs(0.975 - 1.0)
    assert res.ece == pytest.approx(expected)


def test_psi_hand_computed_and_repeated_edges():
    assert model.psi_from_counts([25, 25, 25, 25], [25, 25, 25, 25]) == 0
    ref, cur = np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.4, 0.3, 0.2, 0.1])
    assert model.psi_from_counts(ref, cur) == pytest.approx(np.sum((cur - ref) * np.log(cur / ref)))
    # empty current bin is floored at 1e-4
    got = model.psi_from_counts([50, 50], [100, 0])
    r, c = np.array([0.5, 0.5]), np.array([1.0, 1e-4])
    assert got == pytest.approx(np.sum((c - r) * np.log(c / r)))
    assert [model.psi_status(x) for x in (0.05, 0.1, 0.2, 0.25, 0.3)] == [
        "stable",
        "moderate",
        "moderate",
        "major",
        "major",
    ]
    # repeated quantile edges: a feature with 70% zeros -> deciles 0,0,...; edges deduplicated
    rng = np.random.default_rng(0)
    n = 2000
    x = np.where(rng.random(n) < 0.7, 0.0, rng.random(n))
    df = _frame(rng.random(n), rng.integers(0, 2, n)).assign(x=x)
    ref_x = x[: n // 2]
    res = model.analyze_model(df, feature_cols=["x"], reference_end=df.event_time[n // 2])
    row = res.drift.set_index("column").loc["x"]
    edges = sorted(set(np.quantile(ref_x, np.arange(1, 10) / 10)))
    assert row.edges == pytest.approx(edges)
    bins = np.concatenate([[-np.inf], edges, [np.inf]])
    ref_c = np.histogram(ref_x, bins)[0]
    cur_c = np.histogram(x[n // 2 :], bins)[0]
    # numpy's histogram closes the last bin on the right; no value equals +inf, and [lo, hi)
    # holds for every other bin
    assert row.psi == pytest.approx(model.psi_from_counts(ref_c, cur_c), rel=1e-12)
    assert row.ks_statistic == pytest.approx(sps.ks_2samp(ref_x, x[n // 2 :]).statistic)


def test_synthetic_truth_found(predictions_df):
    df = predictions_df.drop(columns="true_probability")
    truth = synthetic.PREDICTIONS_TRUTH
    drift_date = pd.Timestamp(truth["start"]) + pd.Timedelta(days=truth["drift_day"])
    res = model.analyze_model(
        df, segment_cols=["platform"], feature_cols=["prompt_length", "account_age_days"],
        reference_end=drift_date, window="day",
    )  # fmt: skip
    d = res.drift.set_index("column")
    assert d.status["prompt_length"] == "major"
    assert d.status["account_age_days"] == "stable"
    # onset: the first day whose score PSI is not stable is the drift day
    by = res.score_drift_by_window
    first = by[by.status != "stable"].window.min()
    assert first == drift_date.normalize()
    # over-prediction of logit_shift: the calibration gap has the right sign and size
    lab = predictions_df[predictions_df.label.notna()]
    expected_gap = (lab.score - lab.true_probability).mean()
    cal = res.calibration[res.calibration["count"] > 0]
    gap = ((cal.mean_score - cal.positive_rate) * cal["count"]).sum() / cal["count"].sum()
    assert gap == pytest.approx(expected_gap, abs=0.01)
    assert gap > 0.03
    assert res.segments.value.iloc[0] == "android"  # the worst segment


def test_threshold_choice():
    rng = np.random.default_rng(3)
    label = rng.integers(0, 2, 2000)
    score = np.round(np.clip(rng.normal(0.4 + 0.25 * label, 0.2), 0, 1), 3)
    res = model.analyze_model(_frame(score, label), target_precision=0.8)
    t = res.chosen_threshold.threshold
    pred = score >= t
    assert skm.precision_score(label, pred) >= 0.8
    # no lower threshold reaches 0.8 precision with more recall
    for lower in np.unique(score[score < t]):
        p = skm.precision_score(label, score >= lower, zero_division=0)
        if p >= 0.8:
            assert skm.recall_score(label, score >= lower) <= res.chosen_threshold.recall
    tbl = res.thresholds.set_index("threshold")
    assert tbl.flagged_share[0.5] == pytest.approx((score >= 0.5).mean())


def test_regression_metrics():
    rng = np.random.default_rng(2)
    y = rng.normal(10, 3, 500)
    p = y + rng.normal(0, 1, 500)
    df = pd.DataFrame({"label": y, "prediction": p})
    r = model.regression_metrics(df)
    assert r.mae == pytest.approx(skm.mean_absolute_error(y, p))
    assert r.rmse == pytest.approx(math.sqrt(skm.mean_squared_error(y, p)))
    assert r.mape == pytest.approx(skm.mean_absolute_percentage_error(y, p))
    assert r.r2 == pytest.approx(skm.r2_score(y, p))


def test_bad_inputs_and_warnings():
    with pytest.raises(
        DataError,
        match=r"column 'score' has 1 values outside \[0, 1\] or null "
        r"\(range 0.1 to 1.3\)",
    ):
        model.analyze_model(_frame([0.1, 1.3], [0, 1]))
    with pytest.raises(
        DataError,
        match=r"column 'label' has 1 values other than 0, 1 or null "
        r"\(e.g. 2\)",
    ):
        model.analyze_model(_frame([0.1, 0.3], [0, 2]))
    with pytest.raises(SchemaError, match="has no column 'label'"):
        model.analyze_model(_frame([0.1], [0]).drop(columns="label"))
    with pytest.raises(ParameterError, match="threshold must be <= 1"):
        model.analyze_model(_frame([0.1, 0.2], [0, 1]), threshold=2)
    with pytest.raises(ParameterError, match="leaves an empty reference or current window"):
        model.analyze_model(_frame([0.1, 0.2], [0, 1]), reference_end="2030-01-01")
    one = model.analyze_model(_frame([0.1, 0.2, 0.3], [1, 1, 1]))
    assert math.isnan(one.metrics.roc_auc)
    assert [w["code"] for w in one.warnings] == ["single_class"]
    none = model.analyze_model(_frame([0.1, 0.2, 0.3], [None, None, None]))
    assert none.metrics is None and none.n_labelled == 0
    assert any(w["code"] == "no_labels" for w in none.warnings)
    assert not none.drift.empty
    assert json.dumps(none.to_dict(), allow_nan=False)
    assert all(v is None for v in none.to_dict()["metrics"].values())


def test_unlabelled_window_and_floor(predictions_df):
    df = predictions_df.drop(columns="true_probability")
    res = model.analyze_model(df, window="week", metric_floor=0.99)
    codes = [w["code"] for w in res.warnings]
    assert "below_floor" in codes
    last = res.windows.iloc[-1]
    assert last.n_labelled == 0 and math.isnan(last.roc_auc)
    assert "unlabelled_windows" in codes


def test_summary_json(predictions_df):
    res = model.analyze_model(predictions_df, segment_cols=["platform"],
                              feature_cols=["prompt_length"])  # fmt: skip
    d = res.to_dict()
    assert set(d) == {
        "n",
        "n_labelled",
        "metrics",
        "calibration",
        "segments",
        "drift",
        "verdict",
        "estimated",
    }  # fmt: skip (issue 19: estimates before labels)
    assert set(d["metrics"]) == set(model.METRIC_KEYS)
    assert set(d["calibration"][0]) == {"lower", "upper", "count", "mean_score", "positive_rate"}
    assert {"column", "value", "n", "roc_auc"} <= set(d["segments"][0])
    assert [x["column"] for x in d["drift"]] == ["score", "prompt_length"]
    assert set(d["drift"][0]) == {"column", "psi", "ks_statistic", "status"}
    assert d["n"] == len(predictions_df)
    json.dumps(d, allow_nan=False)


def test_group_metrics_in_engine_match_sklearn(predictions_df):
    """Per-segment metrics (window functions in the engine) equal scikit-learn per subset."""
    df = predictions_df.drop(columns="true_probability")
    res = model.analyze_model(df, segment_cols=["platform"], threshold=0.3)
    seg = res.segments.set_index("value")
    for platform, g in df[df.label.notna()].groupby("platform"):
        y, s = g.label.astype(int).to_numpy(), g.score.to_numpy()
        row = seg.loc[platform]
        assert row.n == (df.platform == platform).sum()
        assert row.n_labelled == len(g)
        assert row.roc_auc == pytest.approx(skm.roc_auc_score(y, s), rel=1e-9)
        assert row.pr_auc == pytest.approx(skm.average_precision_score(y, s), rel=1e-9)
        assert row.precision == pytest.approx(skm.precision_score(y, s >= 0.3), rel=1e-9)
        assert row.recall == pytest.approx(skm.recall_score(y, s >= 0.3), rel=1e-9)
        auc, se = _delong_rows(s[:3000], y[:3000])  # DeLong by rows on a subset is O(n^2)
        sub = model.binary_metrics_from_counts(
            pd.DataFrame({"score": s[:3000], "pos": y[:3000], "neg": 1 - y[:3000]})
        )
        assert sub.roc_auc_se == pytest.approx(se, rel=1e-9)
    # the engine DeLong equals the counts-based one on the whole segment
    g = df[(df.platform == "ios") & df.label.notna()]
    full = model.binary_metrics_from_counts(
        pd.DataFrame({"score": g.score, "pos": g.label.astype(int), "neg": 1 - g.label.astype(int)})
    )
    assert seg.loc["ios"].roc_auc_ci_lower == pytest.approx(full.roc_auc_ci_lower, rel=1e-9)
    windows = res.windows.dropna(subset=["roc_auc"])
    w0 = windows.iloc[1]
    in_w = df[(df.event_time >= w0.window) & (df.event_time < w0.window + pd.Timedelta(days=7))]
    lab = in_w[in_w.label.notna()]
    assert w0.roc_auc == pytest.approx(skm.roc_auc_score(lab.label.astype(int), lab.score),
                                       rel=1e-9)  # fmt: skip


def test_empty_predictions():
    with pytest.raises(DataError, match=r"predictions \(pandas DataFrame\) has no rows"):
        model.analyze_model(_frame([0.1], [1]).iloc[:0])
