"""Inputs that gave wrong numbers or raw tracebacks (issue 11), each with its exact input and
an independent expectation (hand counts, scikit-learn, the same data read from CSV)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from sklearn.metrics import log_loss

from aipm_nb import cohort
from aipm_nb.errors import DataError, SchemaError
from aipm_nb.experiment import analyze_experiment
from aipm_nb.model import analyze_model

MEAN = [{"name": "y", "type": "mean", "column": "y"}]


def _events(rows, columns=("uid", "ts", "what")):
    df = pd.DataFrame(rows, columns=list(columns))
    df["ts"] = pd.to_datetime(df["ts"])
    return df


OPTS = {"user_col": "uid", "time_col": "ts", "event_col": "what"}


# --- cohorts -------------------------------------------------------------------------------


def test_adoption_event_with_custom_event_col():
    ev = _events([(1, "2024-01-01", "signup"), (1, "2024-01-02", "ai"), (1, "2024-01-09", "x"),
                  (2, "2024-01-02", "signup"), (2, "2024-01-10", "x")])  # fmt: skip
    comp = cohort.compare_retention(ev, adoption_event="ai", as_of="2024-02-01", **OPTS)
    k1 = comp.curves[comp.curves.k == 1].set_index("segment").retention
    assert k1.to_dict() == {"adopters": 1.0, "non-adopters": 1.0}


def test_null_user_ids_are_dropped_and_counted():
    ev = _events([(1, "2024-01-01", "signup"), (1, "2024-01-09", "x"),
                  (None, "2024-01-02", "signup"), (None, "2024-01-03", "x")])  # fmt: skip
    res = cohort.analyze_cohorts(ev, activation_events=["signup"], as_of="2024-02-01", **OPTS)
    assert res.retention.iloc[0, 1] == 1.0  # was 0.5: the null id counted as a user
    assert res.users == 1
    assert any(w["code"] == "null_ids" and "2 events" in w["message"] for w in res.warnings)
    without = cohort.analyze_cohorts(ev, as_of="2024-02-01", **OPTS)
    assert any(w["code"] == "null_ids" for w in without.warnings)


def test_future_event_does_not_blank_or_zero_cells():
    rows = [(u, "2024-01-01", "a") for u in range(10)] + [(u, "2024-01-09", "a") for u in range(5)]
    good = cohort.analyze_cohorts(_events(rows), **OPTS)
    bad = cohort.analyze_cohorts(_events([*rows, (99, "2031-06-01", "a")]), **OPTS)
    assert bad.as_of == good.as_of == pd.Timestamp("2024-01-10")
    pd.testing.assert_frame_equal(bad.retention, good.retention)
    assert np.isnan(bad.retention.iloc[0, 2])  # incomplete: blank, never 0%
    assert any(w["code"] == "future_events" and w["message"].startswith("1 events")
               for w in bad.warnings)  # fmt: skip


def test_explicit_as_of_bounds_the_data():
    ev = _events([(1, "2024-01-01", "a"), (1, "2024-01-20", "a"), (2, "2024-01-01", "a")])
    res = cohort.analyze_cohorts(ev, period="day", retention_type="on_or_after",
                                 as_of="2024-01-05", max_periods=3, **OPTS)  # fmt: skip
    assert res.retention.iloc[0].tolist() == [1.0, 0.0, 0.0, 0.0]  # Jan 20 is after as_of


def test_null_first_segment_is_its_own_group():
    ev = _events([(1, "2024-01-01", "a", None), (1, "2024-01-09", "a", "web"),
                  (2, "2024-01-01", "a", "web"), (3, "2024-01-02", "a", "ios")],
                 columns=("uid", "ts", "what", "platform"))  # fmt: skip
    comp = cohort.compare_retention(ev, segment_col="platform", as_of="2024-02-01", **OPTS)
    assert set(comp.curves.segment) == {"(null)", "web", "ios"}
    assert comp.results["(null)"].users == 1


def test_lifecycle_with_an_activation_filter():
    """Activity before sign-up was "resurrecting" and never-activated users "dormant"."""
    ev = cohort.prepare_events(
        _events([(1, "2024-01-01", "browse"), (1, "2024-01-08", "signup"),
                 (1, "2024-01-15", "browse"), (2, "2024-01-01", "browse"),
                 (2, "2024-01-22", "browse")]),
        activation_events=["signup"], **OPTS,
    )  # fmt: skip
    life = cohort.lifecycle(ev).table
    # user 1: new in week 2, returning in week 3, dormant in week 4; user 2 never signs up
    assert life.to_dict("index") == {
        pd.Timestamp("2024-01-08"): {"new": 1, "returning": 0, "resurrecting": 0, "dormant": 0},
        pd.Timestamp("2024-01-15"): {"new": 0, "returning": 1, "resurrecting": 0, "dormant": 0},
        pd.Timestamp("2024-01-22"): {"new": 0, "returning": 0, "resurrecting": 0, "dormant": -1},
    }


def test_partly_covered_month_is_not_complete_and_not_deflated():
    """Data from Jan 25: January was "complete" with stickiness 0.23 instead of 1.0."""
    days = pd.date_range("2024-01-25", "2024-02-29", freq="D")
    ev = cohort.prepare_events(_events([(u, d, "open") for d in days for u in (1, 2, 3)]), **OPTS)
    monthly = cohort.active_users(ev).monthly.set_index("month")
    jan, feb = monthly.loc["2024-01-01"], monthly.loc["2024-02-01"]
    assert jan.stickiness == pytest.approx(1.0) and not jan.complete
    assert feb.stickiness == pytest.approx(1.0) and feb.complete


# --- A/B -----------------------------------------------------------------------------------


def _exp(n=400, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"user_id": np.arange(n), "variant": np.tile([0, 1], n // 2),
                         "y": rng.normal(10, 1, n), "num": rng.poisson(3, n) + 0.0,
                         "den": rng.poisson(10, n) + 1.0})  # fmt: skip


def test_null_segment_values_are_their_own_segment():
    df = _exp().assign(platform=lambda d: np.where(d.user_id % 3 == 0, None, "web"))
    res = analyze_experiment(df, MEAN, control=0, segment_cols=["platform"])
    seg = {r.segment_value: r for r in res.segments}
    assert set(seg) == {"(null)", "web"}
    n_null = int(df.platform.isna().sum())
    assert seg["(null)"].control_n + seg["(null)"].variant_n == n_null  # no unit left out
    assert seg["web"].control_n + seg["web"].variant_n == len(df) - n_null


def test_integer_control_is_accepted():
    res = analyze_experiment(_exp(), MEAN, control=0)
    assert res.control == "0" and [m.variant for m in res.metrics] == ["1"]


@pytest.mark.parametrize(
    ("column", "metric"),
    [("y", MEAN), ("den", [{"name": "r", "type": "ratio", "numerator": "num",
                            "denominator": "den"}])],
)  # fmt: skip
def test_infinite_values_are_a_named_error(column, metric):
    df = _exp()
    df.loc[[3, 7], column] = [np.inf, -np.inf]
    with pytest.raises(DataError, match=rf"column '{column}' has 2 infinite values") as err:
        analyze_experiment(df, metric, control=0)
    assert err.value.column == column and err.value.count == 2


def test_sums_that_overflow_are_a_named_error():
    """Finite values whose squares pass float64's 1.8e308 gave NaN statistics; now an error."""
    df = _exp()
    df.loc[3, "y"] = 1e200
    with pytest.raises(DataError, match=r"sums of metric 'y' \(columns 'y'\) overflow"):
        analyze_experiment(df, MEAN, control=0)


@pytest.mark.parametrize("offset", [3e7, 1e8, -5e9])
def test_large_constant_offsets_keep_their_p_value(offset):
    """3e7 + N(0, 1) gave p 0.064 against a true 5e-8 and 1e8 + N(0, 1) a false zero-variance
    error: sums are taken around each column's mean (DESIGN section 4)."""
    rng = np.random.default_rng(11)
    n = 5000
    df = pd.DataFrame({"user_id": range(2 * n), "variant": ["control", "treatment"] * n})
    base = rng.normal(0, 1, 2 * n)
    df["y"] = offset + base + np.where(df.variant == "treatment", 0.11, 0.0)
    df["pre"] = offset + base + rng.normal(0, 0.5, 2 * n)
    df["den"] = offset + rng.normal(0, 1, 2 * n)
    res = analyze_experiment(df, MEAN)
    c, t = df[df.variant == "control"].y, df[df.variant == "treatment"].y
    ref = sps.ttest_ind(t, c, equal_var=False)
    (m,) = res.metrics
    assert m.abs_effect == pytest.approx(t.mean() - c.mean(), rel=1e-6)
    assert m.abs_p_value == pytest.approx(ref.pvalue, rel=1e-5)
    assert m.abs_p_value < 1e-3
    # CUPED and ratio with offsets: against the same data shifted to zero by hand
    metrics = [
        {"name": "cuped", "type": "mean", "column": "y", "covariate": "pre"},
        {"name": "ratio", "type": "ratio", "numerator": "y", "denominator": "den"},
    ]
    shifted = df.assign(y=base + np.where(df.variant == "treatment", 0.11, 0.0),
                        pre=df.pre - offset)  # fmt: skip
    cuped, ratio = analyze_experiment(df, metrics).metrics
    cuped0 = analyze_experiment(shifted, metrics[:1]).metrics[0]
    assert cuped.abs_effect == pytest.approx(cuped0.abs_effect, rel=1e-4)  # means near 5e9
    assert cuped.abs_p_value == pytest.approx(cuped0.abs_p_value, rel=1e-4)
    r_c, r_t = (df[df.variant == v].y.sum() / df[df.variant == v].den.sum() for v in
                ("control", "treatment"))  # fmt: skip
    assert ratio.control_mean == pytest.approx(r_c, rel=1e-12)
    assert ratio.variant_mean == pytest.approx(r_t, rel=1e-12)


def test_null_unit_ids_are_dropped_with_a_warning():
    df = _exp().astype({"user_id": "float64"})
    df.loc[[1, 2, 5], "user_id"] = np.nan
    res = analyze_experiment(df, MEAN, control=0)
    assert sum(res.srm.counts.values()) == 397
    assert any(w["code"] == "null_ids" and w["message"].startswith("3 rows") for w in res.warnings)


def test_nanosecond_timestamps_in_an_unused_column():
    df = _exp().assign(ts=pd.date_range("2024-01-01", periods=400, freq="37ns"))
    assert analyze_experiment(df, MEAN, control=0).rows == 400


def test_missing_column_names_the_parameter():
    with pytest.raises(SchemaError, match=r"no column 'variant'; set variant_col= to one of"):
        analyze_experiment(_exp().rename(columns={"variant": "arm"}), MEAN)


# --- model ---------------------------------------------------------------------------------


def _pred(n=200, seed=0):
    rng = np.random.default_rng(seed)
    times = pd.date_range("2024-01-01", periods=n, freq="h")
    return pd.DataFrame({"score": rng.uniform(size=n), "label": rng.integers(0, 2, n),
                         "event_time": times})  # fmt: skip


def test_log_loss_matches_scikit_learn_at_exact_0_and_1():
    df = _pred().assign(score=np.r_[np.zeros(100), np.ones(100)])
    res = analyze_model(df)
    assert res.metrics.log_loss == pytest.approx(log_loss(df.label, df.score), rel=1e-12)


def test_constant_score_warns():
    res = analyze_model(_pred().assign(score=0.3))
    assert any(w["code"] == "constant_score" for w in res.warnings)


def test_all_null_label_column_from_a_csv_is_a_warning(tmp_path):
    df = _pred().assign(label=None)
    df.to_csv(tmp_path / "p.csv", index=False)
    res = analyze_model(str(tmp_path / "p.csv"))
    assert res.n == 200 and res.n_labelled == 0
    assert any(w["code"] == "no_labels" for w in res.warnings)


def test_single_class_warning_states_what_is_reported():
    res = analyze_model(_pred().assign(label=1))
    msg = next(w["message"] for w in res.warnings if w["code"] == "single_class")
    assert "ROC AUC is undefined" in msg and "1.0" in msg
    assert res.metrics.pr_auc == 1.0 and np.isnan(res.metrics.roc_auc)


def test_timezone_aware_times_with_a_naive_reference_end():
    df = _pred().assign(event_time=lambda d: d.event_time.dt.tz_localize("UTC"))
    naive = analyze_model(df, reference_end="2024-01-05")
    aware = analyze_model(df, reference_end="2024-01-05T00:00:00+00:00")
    assert naive.reference_end == aware.reference_end
