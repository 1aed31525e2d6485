"""Drift in the engine (`aipm_nb.model.drift.feature_drift`) against numpy and scipy: the
reference deciles (numpy's linear interpolation), the KS statistic (scipy's ks_2samp) and the
PSI counts, on columns whose shape stresses the refinement — all-distinct floats, heavy tails,
point masses, integer ties, NaN and nulls, a constant — with the histogram cells at their
defaults and forced tiny (every refinement level and the rank fallback run on small data).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from aipm_nb.model import drift
from aipm_nb.sources import open_source

N = 4000


def _columns(rng: np.random.Generator) -> dict[str, np.ndarray]:
    half = N // 2
    shift = np.r_[np.zeros(half), np.ones(N - half)]  # the current half drifts
    nan = np.where(rng.random(N) < 0.05, np.nan, 1.0)
    return {
        "distinct": rng.normal(size=N) + 0.3 * shift,
        "no_drift": rng.normal(size=N),
        "heavy_tail": rng.lognormal(0, 2.5, N) * (1 + 0.5 * shift),
        "point_mass": np.where(rng.random(N) < 0.7 - 0.2 * shift, 0.0, rng.random(N)),
        "integers": rng.poisson(3 + shift, N).astype(float),
        "with_nan": rng.normal(size=N) * nan,
        "constant": np.full(N, 2.5),
        "tiny_range": 1 + rng.random(N) * 1e-12,
    }


SETTINGS = {
    "defaults": {},
    "tiny cells": {"SPLIT_BITS": 2, "LEAF_ROWS": 8, "KS_SPLIT": 64, "KS_CELLS": 16,
                   "GROUPED_SHARE": 0},
    "rank fallback": {"SPLIT_BITS": 3, "LEAF_ROWS": 50, "KS_CELLS": 0, "GROUPED_SHARE": 0},
    "grouped": {"GROUPED_SHARE": 1.0},
    # no KS: the deciles from the engine's exact quantile function, in one query
    "engine quantiles (ks=False)": {"ks": False},
}  # fmt: skip


def apply_setting(setting, monkeypatch):
    """Patch the refinement constants of a SETTINGS entry; returns its ``ks``."""
    opts = dict(SETTINGS[setting])
    ks = opts.pop("ks", True)
    for name, value in opts.items():
        monkeypatch.setattr(drift, name, value)
    return ks


@pytest.mark.parametrize("setting", SETTINGS)
def test_feature_drift_matches_numpy_and_scipy(setting, monkeypatch):
    ks_on = apply_setting(setting, monkeypatch)
    rng = np.random.default_rng(7)
    cols = _columns(rng)
    df = pd.DataFrame(cols).assign(
        event_time=pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(N), unit="min")
    )
    df.loc[::97, "no_drift"] = None  # nulls as well as NaN
    t = open_source(df).table
    is_cur = t.event_time >= pd.Timestamp("2024-01-01") + pd.Timedelta(minutes=N // 2)
    rows = {r["column"]: r for r in drift.feature_drift(t, list(cols), is_cur, ks=ks_on)}
    for name in cols:
        x = df[name].to_numpy(float)
        ref, cur = x[: N // 2], x[N // 2 :]
        ref, cur = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
        got = rows[name]
        edges = sorted(set(np.quantile(ref, np.arange(1, 10) / 10)))
        assert got["edges"] == pytest.approx(edges, rel=1e-12, abs=0), name
        ks = sps.ks_2samp(ref, cur).statistic if ks_on else np.nan
        assert got["ks_statistic"] == pytest.approx(ks, rel=1e-12, abs=1e-15, nan_ok=True), name
        bins = np.concatenate([[-np.inf], got["edges"], [np.inf]])
        # [lo, hi) bins: count below each edge
        below_r = [np.sum(ref < e) for e in got["edges"]]
        below_c = [np.sum(cur < e) for e in got["edges"]]
        assert got["ref_counts"] == list(np.diff([0, *below_r, len(ref)])), name
        assert got["cur_counts"] == list(np.diff([0, *below_c, len(cur)])), name
        assert len(bins) == len(got["ref_counts"]) + 1


def test_refinement_is_exercised(monkeypatch):
    """The tiny settings really split cells (the test above would pass trivially otherwise)."""
    monkeypatch.setattr(drift, "SPLIT_BITS", 2)
    monkeypatch.setattr(drift, "LEAF_ROWS", 8)
    monkeypatch.setattr(drift, "GROUPED_SHARE", 0)
    calls = []
    split = drift._split
    monkeypatch.setattr(drift, "_split", lambda rows, parents: calls.append(len(parents)) or
                        split(rows, parents))  # fmt: skip
    x = np.random.default_rng(1).lognormal(0, 2, 500)
    df = pd.DataFrame({"x": x, "event_time": pd.date_range("2024-01-01", periods=500, freq="h")})
    t = open_source(df).table
    drift.feature_drift(t, ["x"], t.event_time >= pd.Timestamp("2024-01-11"))
    assert len(calls) >= 3 and max(calls) > 1


def test_ks_can_be_switched_off():
    """``ks=False``: the same PSI and edges, KS left out (NaN); a non-bool is a clear error."""
    from aipm_nb import model
    from aipm_nb.errors import ParameterError

    rng = np.random.default_rng(3)
    df = pd.DataFrame({
        "score": rng.random(3000), "label": rng.integers(0, 2, 3000), "f": rng.lognormal(size=3000),
        "event_time": pd.date_range("2024-01-01", periods=3000, freq="min"),
    })  # fmt: skip
    full = model.analyze_model(df, feature_cols=["f"])
    lean = model.analyze_model(df, feature_cols=["f"], ks=False)
    # the deciles by the engine's quantile function vs by the refinement: equal to rounding
    assert lean.drift.psi.tolist() == pytest.approx(full.drift.psi.tolist(), rel=1e-12)
    for a, b in zip(lean.drift.edges, full.drift.edges, strict=True):
        assert a == pytest.approx(b, rel=1e-12)
    assert lean.drift.ks_statistic.isna().all() and full.drift.ks_statistic.notna().all()
    with pytest.raises(ParameterError, match="ks"):
        model.analyze_model(df, ks="no")


@pytest.mark.parametrize("setting", SETTINGS)
def test_feature_drift_on_a_public_dataset(setting, monkeypatch):
    """Data whose shape I did not choose: scikit-learn's breast-cancer features (continuous,
    skewed, repeated values), reference = the first half of the rows, under every path.
    """
    from sklearn.datasets import load_breast_cancer

    ks_on = apply_setting(setting, monkeypatch)
    df = load_breast_cancer(as_frame=True).frame
    cols = ["mean area", "worst concavity", "area error", "mean symmetry"]
    n = len(df)
    df = df.assign(event_time=pd.date_range("2024-01-01", periods=n, freq="h"))
    t = open_source(df).table
    rows = drift.feature_drift(t, cols, t.event_time >= df.event_time[n // 2], ks=ks_on)
    for row, col in zip(rows, cols, strict=True):
        ref, cur = df[col].to_numpy()[: n // 2], df[col].to_numpy()[n // 2 :]
        edges = sorted(set(np.quantile(ref, np.arange(1, 10) / 10)))
        assert row["edges"] == pytest.approx(edges, rel=1e-12, abs=0), col
        ks = sps.ks_2samp(ref, cur).statistic if ks_on else np.nan
        assert row["ks_statistic"] == pytest.approx(ks, rel=1e-12, nan_ok=True)
