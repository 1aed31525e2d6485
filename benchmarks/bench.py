"""Benchmarks: aipm_nb against the peers each issue names, on generated Parquet.

    python benchmarks/bench.py gen                 # data under benchmarks/data/ (not committed)
    python benchmarks/bench.py gen-w1              # W1's heavy-tailed events (issue 14)
    python benchmarks/bench.py gen-ab              # only the A/B data (W2)
    python benchmarks/bench.py run TASK IMPL       # one measurement, printed as JSON
    python benchmarks/run_all.py                   # every task x impl, a Markdown table

Each measurement runs in its own process; peak memory is that process's maximum RSS (DuckDB's
threads included). Wall time covers reading the Parquet files and computing the result.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
EVENTS = DATA / "events"
EXPERIMENT = DATA / "experiment"
PREDICTIONS = DATA / "predictions"
#: the same predictions with full-precision float scores and features (all distinct), as real
#: model outputs are: the case issue 14 measured
PREDICTIONS_CONTINUOUS = DATA / "predictions_continuous"
FEATURES = ["prompt_length", "account_age_days", "sessions_7d", "latency_ms", "feature_usage"]
AB_METRICS = [
    {"name": "conversion", "type": "proportion", "column": "converted"},
    {"name": "revenue", "type": "mean", "column": "revenue", "covariate": "pre_revenue"},
    {"name": "sessions", "type": "mean", "column": "sessions"},
    {"name": "ctr", "type": "ratio", "numerator": "clicks", "denominator": "views"},
    {"name": "latency", "type": "mean", "column": "latency_ms", "guardrail": True,
     "direction": "decrease"},
]  # fmt: skip


def gen(events_users: int = 1_600_000, exp_users: int = 10_000_000, preds: int = 10_000_000):
    from aipm_nb import synthetic

    for folder in (EVENTS, EXPERIMENT, PREDICTIONS):
        folder.mkdir(parents=True, exist_ok=True)
    chunk = 200_000
    n_ev = 0
    for i in range(events_users // chunk):
        df = synthetic.generate_events(chunk, seed=1000 + i)
        df["user_id"] += i * chunk
        df["session_id"] += i * 10**8
        df.to_parquet(EVENTS / f"part-{i:03d}.parquet", index=False)
        n_ev += len(df)
    gen_experiment(exp_users)
    for i in range(preds // chunk):
        df = synthetic.generate_predictions(chunk, seed=3000 + i)
        df["prediction_id"] += i * chunk
        df.to_parquet(PREDICTIONS / f"part-{i:03d}.parquet", index=False)
    gen_continuous()
    print(json.dumps({"events": n_ev, "event_users": events_users, "experiment_users": exp_users,
                      "predictions": preds}))  # fmt: skip


def gen_experiment(users: int = 10_000_000, chunk: int = 2_000_000) -> None:
    from aipm_nb import synthetic

    EXPERIMENT.mkdir(parents=True, exist_ok=True)
    for i in range(users // chunk):
        df = synthetic.generate_experiment(chunk, seed=2000 + i)
        df["user_id"] += i * chunk
        df.to_parquet(EXPERIMENT / f"part-{i:03d}.parquet", index=False)


def gen_continuous() -> None:
    """Each prediction file with continuous scores and features: tiny uniform noise makes every
    value distinct (scores stay in [0, 1])."""
    PREDICTIONS_CONTINUOUS.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(77)
    for path in sorted(PREDICTIONS.glob("*.parquet")):
        df = pd.read_parquet(path)
        df["score"] = np.clip(df.score + rng.uniform(-5e-4, 5e-4, len(df)), 1e-9, 1 - 1e-9)
        for col in FEATURES:
            df[col] = df[col].astype(float) + rng.uniform(0, 1e-3, len(df))
        df.to_parquet(PREDICTIONS_CONTINUOUS / path.name, index=False)


PREDICTIONS_100M = DATA / "predictions_continuous_100m"
#: issue 14's W1: 20M events of 2M users with heavy-tailed activity per user
EVENTS_W1 = DATA / "events_w1"
W1_PERIODS = 25


def gen_w1(users: int = 2_000_000, events: int = 20_000_000, files: int = 10) -> None:
    """W1's events: ``users`` users over 30 weeks, ``events`` events in all. Activity per user
    is heavy-tailed as in real products (Pareto, shape 1.2: the median user has 3 events, the top
    1% hundreds); signup uniform over the first 26 weeks; a user's events fall between signup and
    a lifetime drawn per user (lognormal, median 3 weeks), the first one at signup. Event names
    from 4 values, microsecond timestamps.
    """
    EVENTS_W1.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(14)
    start = np.datetime64("2024-01-01T00:00:00", "us")
    week_us = 7 * 86400 * 10**6
    raw = rng.pareto(1.2, users) + 1
    per_user = np.maximum(1, np.round(raw * events / raw.sum())).astype(np.int64)
    per_user[np.argsort(-per_user)[: abs(int(per_user.sum()) - events)]] -= np.sign(
        per_user.sum() - events
    )  # exactly ``events`` rows
    bounds = np.linspace(0, users, files + 1).astype(int)
    names = np.array(["open", "query", "share", "export"])
    for i in range(files):
        lo, hi = bounds[i], bounds[i + 1]
        k = per_user[lo:hi]
        signup = rng.integers(0, 26 * week_us, hi - lo)
        life = np.minimum(rng.lognormal(np.log(21 * 86400e6), 1.2, hi - lo), 30 * week_us)
        uid = np.repeat(np.arange(lo, hi), k)
        first = np.r_[0, np.cumsum(k)[:-1]]
        u = rng.random(len(uid))
        u[first] = 0.0  # the first event at signup
        off = np.repeat(signup, k) + (u * np.repeat(life, k)).astype(np.int64)
        off = np.minimum(off, 30 * week_us - 1)
        df = pd.DataFrame({
            "user_id": uid,
            "event_time": start + off.astype("timedelta64[us]"),
            "event_name": names[rng.integers(0, 4, len(uid))],
        })  # fmt: skip
        df.sample(frac=1, random_state=i).to_parquet(
            EVENTS_W1 / f"part-{i:03d}.parquet", index=False
        )


def gen_continuous_100m(files: int = 50, chunk: int = 2_000_000) -> None:
    """100M predictions with all-distinct float scores and features (issue 14's scale check):
    fresh seeds per file, the same noise as `gen_continuous`; ~5.9 GB of Parquet."""
    from aipm_nb import synthetic

    PREDICTIONS_100M.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(78)
    for i in range(files):
        df = synthetic.generate_predictions(chunk, seed=5000 + i)
        df["prediction_id"] += i * chunk
        df["score"] = np.clip(df.score + rng.uniform(-5e-4, 5e-4, len(df)), 1e-9, 1 - 1e-9)
        for col in FEATURES:
            df[col] = df[col].astype(float) + rng.uniform(0, 1e-3, len(df))
        df.drop(columns="true_probability", errors="ignore").to_parquet(
            PREDICTIONS_100M / f"part-{i:03d}.parquet", index=False
        )


# --- cohort retention matrix (weekly, "on", 12 periods) -------------------------------------


def cohort_aipm(folder: Path = EVENTS, periods: int = 12):
    from aipm_nb.cohort import analyze_cohorts

    r = analyze_cohorts(str(folder / "*.parquet"), period="week", retention_type="on",
                        max_periods=periods, as_of="2100-01-01")  # fmt: skip
    return float(r.retained.fillna(0).to_numpy().sum())


def cohort_pandas(folder: Path = EVENTS, periods: int = 12):
    df = pd.read_parquet(folder, columns=["user_id", "event_time"])
    ts = df["event_time"]
    week = ts.dt.floor("D") - pd.to_timedelta(ts.dt.day_of_week, unit="D")
    cohort = week.groupby(df["user_id"]).transform("min")
    k = (week - cohort).dt.days // 7
    act = pd.DataFrame({"u": df["user_id"], "c": cohort, "k": k})
    act = act[act.k <= periods].drop_duplicates()
    matrix = act.groupby(["c", "k"]).size().unstack(fill_value=0)
    return float(matrix.to_numpy().sum())


def cohort_duckdb_sql(folder: Path = EVENTS, periods: int = 12):
    import duckdb

    q = f"""
    WITH e AS (SELECT user_id, date_trunc('week', event_time) AS w
               FROM read_parquet('{folder}/*.parquet')),
         c AS (SELECT user_id, min(w) AS cw FROM e GROUP BY user_id),
         a AS (SELECT DISTINCT e.user_id, c.cw, date_diff('day', c.cw, e.w) // 7 AS k
               FROM e JOIN c USING (user_id))
    SELECT cw, k, count(*) AS n FROM a WHERE k <= {periods} GROUP BY cw, k
    """
    return float(duckdb.connect().sql(q).df()["n"].sum())


# --- A/B test, 5 metrics -----------------------------------------------------------------------


def ab_aipm():
    from aipm_nb.experiment import analyze_experiment

    r = analyze_experiment(str(EXPERIMENT / "*.parquet"), AB_METRICS)
    return [round(m.p_value, 12) for m in r.metrics]


def ab_aipm_trusted():
    from aipm_nb.experiment import analyze_experiment

    r = analyze_experiment(str(EXPERIMENT / "*.parquet"), AB_METRICS, check_units=False)
    return [round(m.p_value, 12) for m in r.metrics]


def ab_pandas_scipy():
    from scipy import stats

    df = pd.read_parquet(EXPERIMENT)
    c, t = df[df.variant == "control"], df[df.variant == "treatment"]
    out = []
    for col in ("converted", "sessions", "latency_ms"):
        out.append(stats.ttest_ind(t[col], c[col], equal_var=False).pvalue)
    # CUPED: pooled theta, adjusted values, Welch t-test
    x = df.pre_revenue.to_numpy()
    theta = np.cov(df.revenue, x)[0, 1] / np.var(x, ddof=1)
    out.append(
        stats.ttest_ind(
            t.revenue - theta * t.pre_revenue, c.revenue - theta * c.pre_revenue, equal_var=False
        ).pvalue
    )

    # ratio metric, delta method per arm
    def ratio(g):
        n, d = g.clicks.to_numpy(float), g.views.to_numpy(float)
        r = n.sum() / d.sum()
        cov = np.cov(n, d)
        return r, (cov[0, 0] - 2 * r * cov[0, 1] + r * r * cov[1, 1]) / d.mean() ** 2 / len(g)

    (rc, vc), (rt, vt) = ratio(c), ratio(t)
    out.append(2 * stats.norm.sf(abs(rt - rc) / np.sqrt(vc + vt)))
    return [float(p) for p in out]


def ab_duckdb_sql():
    """One scan: per-variant sums in DuckDB, then the same tests as `ab_pandas_scipy` from
    the sums (Welch, CUPED with the pooled theta, the delta method for the ratio)."""
    import duckdb
    from scipy import stats

    cols = ["converted", "sessions", "latency_ms", "revenue", "pre_revenue", "clicks", "views"]
    sums = ", ".join(f"sum({c}::DOUBLE) AS s_{c}, sum({c}::DOUBLE * {c}) AS q_{c}" for c in cols)
    q = f"""SELECT variant, count(*) AS n, {sums},
                   sum(revenue * pre_revenue::DOUBLE) AS x_rev_pre,
                   sum(clicks * views::DOUBLE) AS x_clicks_views
            FROM read_parquet('{EXPERIMENT}/*.parquet') GROUP BY variant"""
    r = duckdb.connect().sql(q).df().set_index("variant")

    def mv(g, c):
        n = g.n
        m = g[f"s_{c}"] / n
        return m, (g[f"q_{c}"] - n * m * m) / (n - 1)

    def welch(mt, vt, nt, mc, vc, nc):
        return stats.ttest_ind_from_stats(mt, np.sqrt(vt), nt, mc, np.sqrt(vc), nc,
                                          equal_var=False).pvalue  # fmt: skip

    c, t = r.loc["control"], r.loc["treatment"]
    out = [
        welch(*mv(t, col), t.n, *mv(c, col), c.n) for col in ("converted", "sessions", "latency_ms")
    ]
    tot = r.sum()
    n = tot.n
    mx, my = tot.s_pre_revenue / n, tot.s_revenue / n
    theta = ((tot.x_rev_pre - n * mx * my) / (n - 1)) / (
        (tot.q_pre_revenue - n * mx * mx) / (n - 1)
    )

    def cuped(g):
        (m_y, v_y), (m_x, v_x) = mv(g, "revenue"), mv(g, "pre_revenue")
        cov = (g.x_rev_pre - g.n * m_y * m_x) / (g.n - 1)
        return m_y - theta * m_x, v_y - 2 * theta * cov + theta * theta * v_x

    (at, vt), (ac, vc) = cuped(t), cuped(c)
    out.append(welch(at, vt, t.n, ac, vc, c.n))

    def ratio(g):
        (mn, vn), (md, vd) = mv(g, "clicks"), mv(g, "views")
        cov = (g.x_clicks_views - g.n * mn * md) / (g.n - 1)
        rr = mn / md
        return rr, (vn - 2 * rr * cov + rr * rr * vd) / md**2 / g.n

    (rc, vrc), (rt, vrt) = ratio(c), ratio(t)
    out.append(2 * stats.norm.sf(abs(rt - rc) / np.sqrt(vrc + vrt)))
    return [float(p) for p in out]


def ab_tea_tasting():
    import ibis
    import tea_tasting as tt

    con = ibis.duckdb.connect()
    data = con.read_parquet(str(EXPERIMENT / "*.parquet"))
    exp = tt.Experiment(
        conversion=tt.Mean("converted"),
        revenue=tt.Mean("revenue", "pre_revenue"),
        sessions=tt.Mean("sessions"),
        ctr=tt.RatioOfMeans("clicks", "views"),
        latency=tt.Mean("latency_ms"),
        variant="variant",
    )
    res = exp.analyze(data, control="control")
    return [float(r.pvalue) for r in res.values()]


# --- model performance: the whole metric set + drift of score and 5 features ------------------


def model_aipm(folder: Path = PREDICTIONS, ks: bool = True):
    from aipm_nb.model import analyze_model

    r = analyze_model(str(folder / "*.parquet"), feature_cols=FEATURES, ks=ks)
    return {"roc_auc": r.metrics.roc_auc, "psi_score": float(r.drift.psi.iloc[0])}


def model_sklearn(folder: Path = PREDICTIONS):
    from scipy import stats
    from sklearn import metrics as skm

    df = pd.read_parquet(folder)
    lab = df[df.label.notna()]
    y, s = lab.label.to_numpy(int), lab.score.to_numpy()
    pred = (s >= 0.5).astype(int)
    out = {
        "roc_auc": skm.roc_auc_score(y, s), "pr_auc": skm.average_precision_score(y, s),
        "log_loss": skm.log_loss(y, s), "brier": skm.brier_score_loss(y, s),
        "precision": skm.precision_score(y, pred), "recall": skm.recall_score(y, pred),
        "f1": skm.f1_score(y, pred), "accuracy": skm.accuracy_score(y, pred),
    }  # fmt: skip
    b = np.minimum((s * 10).astype(int), 9)
    n_b = np.bincount(b, minlength=10)
    with np.errstate(invalid="ignore"):
        gap = np.abs(np.bincount(b, s, 10) / n_b - np.bincount(b, y, 10) / n_b)
    out["ece"] = float(np.nansum(n_b / n_b.sum() * gap))
    mid = df.event_time.min() + (df.event_time.max() - df.event_time.min()) / 2
    ref, cur = df[df.event_time < mid], df[df.event_time >= mid]
    for col in ["score", *FEATURES]:
        edges = np.unique(np.quantile(ref[col], np.arange(1, 10) / 10))
        bins = np.concatenate([[-np.inf], edges, [np.inf]])
        r = np.maximum(np.histogram(ref[col], bins)[0] / len(ref), 1e-4)
        c = np.maximum(np.histogram(cur[col], bins)[0] / len(cur), 1e-4)
        out[f"psi_{col}"] = float(np.sum((c - r) * np.log(c / r)))
        out[f"ks_{col}"] = float(stats.ks_2samp(ref[col], cur[col]).statistic)
    return {"roc_auc": out["roc_auc"], "psi_score": out["psi_score"]}


# --- W3 of issue 14: ROC AUC, log loss, Brier, 10-bin calibration, AUC per segment (8),
# PSI of 5 features + score with the first 30 days as reference, on all-distinct scores ------

W3_SEGMENTS = ["platform", "country"]  # 3 + 5 = 8 segments
W3_REFERENCE_END = "2024-03-31"


def w3_aipm(ks: bool = False, folder: Path = PREDICTIONS_CONTINUOUS):
    from aipm_nb.model import analyze_model

    # W3 asks for no metric over time: windows off (issue 14: "what a call computes follows
    # what it is asked")
    r = analyze_model(str(folder / "*.parquet"), feature_cols=FEATURES, window=None,
                      segment_cols=W3_SEGMENTS, reference_end=W3_REFERENCE_END, ks=ks)  # fmt: skip
    seg = dict(zip(r.segments.value, r.segments.roc_auc, strict=True))
    return {
        "roc_auc": r.metrics.roc_auc,
        "auc_US": seg["US"],
        "psi_score": float(r.drift.psi.iloc[0]),
    }


def w3_sklearn():
    from sklearn import metrics as skm

    df = pd.read_parquet(PREDICTIONS_CONTINUOUS)
    lab = df[df.label.notna()]
    y, s = lab.label.to_numpy(int), lab.score.to_numpy()
    out = {"roc_auc": skm.roc_auc_score(y, s), "log_loss": skm.log_loss(y, s),
           "brier": skm.brier_score_loss(y, s)}  # fmt: skip
    b = np.minimum((s * 10).astype(int), 9)
    out["calibration"] = (
        np.bincount(b, minlength=10),
        np.bincount(b, s, 10),
        np.bincount(b, y, 10),
    )
    for col in W3_SEGMENTS:
        for value, g in lab.groupby(col):
            out[f"auc_{value}"] = skm.roc_auc_score(g.label.to_numpy(int), g.score.to_numpy())
    ref_mask = (df.event_time < pd.Timestamp(W3_REFERENCE_END)).to_numpy()
    for col in ["score", *FEATURES]:
        x = df[col].to_numpy()
        ref, cur = x[ref_mask], x[~ref_mask]
        edges = np.unique(np.quantile(ref, np.arange(1, 10) / 10))
        bins = np.concatenate([[-np.inf], edges, [np.inf]])
        r = np.maximum(np.histogram(ref, bins)[0] / len(ref), 1e-4)
        c = np.maximum(np.histogram(cur, bins)[0] / len(cur), 1e-4)
        out[f"psi_{col}"] = float(np.sum((c - r) * np.log(c / r)))
    return {"roc_auc": out["roc_auc"], "auc_US": out["auc_US"], "psi_score": out["psi_score"]}


def w3_duckdb_sql():
    """What an analyst writes in DuckDB SQL: exact ROC AUC (ties averaged) from one cumulative
    window over the (group, distinct score) counts — the counts cast to DOUBLE, since DuckDB
    2.0.1 takes ~15x longer over HUGEINT sums in a partitioned window — sums for log loss and
    Brier, one GROUP BY for calibration, all reference deciles in one query, one GROUP BY per
    column for the PSI counts."""
    import math

    import duckdb

    con = duckdb.connect()
    src = f"read_parquet('{PREDICTIONS_CONTINUOUS}/*.parquet')"
    lab = f"{src} WHERE label IS NOT NULL"

    def auc(group: str) -> dict:
        return dict(
            con.sql(f"""
            WITH g AS (SELECT {group} AS grp, score, sum(label)::DOUBLE AS pos,
                              (count(*) - sum(label))::DOUBLE AS neg FROM {lab} GROUP BY ALL),
                 c AS (SELECT grp, pos, neg, sum(neg) OVER (PARTITION BY grp ORDER BY score
                              ROWS UNBOUNDED PRECEDING) - neg AS below FROM g)
            SELECT grp, sum(pos * (below + 0.5 * neg)) / (sum(pos) * sum(neg)) FROM c GROUP BY grp
        """).fetchall()
        )

    out = {"roc_auc": auc("'all'")["all"]}
    for col in W3_SEGMENTS:
        out |= {f"auc_{k}": v for k, v in auc(col).items()}
    clipped = "greatest(least(score, 1 - 1e-15), 1e-15)"
    out["log_loss"], out["brier"] = con.sql(f"""
        SELECT -avg(label * ln({clipped}) + (1 - label) * ln(1 - {clipped})),
               avg((score - label) ^ 2) FROM {lab}""").fetchall()[0]
    out["calibration"] = con.sql(f"""SELECT least(floor(score * 10), 9) AS b, count(*),
        sum(score), sum(label) FROM {lab} GROUP BY b ORDER BY b""").fetchall()
    cols = ["score", *FEATURES]
    ref = f"event_time < TIMESTAMP '{W3_REFERENCE_END}'"
    deciles = ", ".join(f"quantile_cont({c}, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])"
                        for c in cols)  # fmt: skip
    edges = con.sql(f"SELECT {deciles} FROM {src} WHERE {ref}").fetchall()[0]
    for col, e in zip(cols, edges, strict=True):
        b = " + ".join(f"({col} >= {x!r})::INT" for x in sorted(set(e)))
        rows = con.sql(f"""SELECT {b} AS bin, count(*) FILTER (WHERE {ref}),
            count(*) FILTER (WHERE NOT ({ref})) FROM {src} GROUP BY bin""").fetchall()
        nr, nc = sum(r[1] for r in rows), sum(r[2] for r in rows)
        psi = 0.0
        for _, r, c in rows:
            pr, pc = max(r / nr, 1e-4), max(c / nc, 1e-4)
            psi += (pc - pr) * math.log(pc / pr)
        out[f"psi_{col}"] = psi
    return {"roc_auc": out["roc_auc"], "auc_US": out["auc_US"], "psi_score": out["psi_score"]}


def model_evidently(folder: Path = PREDICTIONS, reference_end: str | None = None):
    from evidently import BinaryClassification, DataDefinition, Dataset, Report
    from evidently.presets import ClassificationPreset, DataDriftPreset

    df = pd.read_parquet(folder)
    mid = (
        df.event_time.min() + (df.event_time.max() - df.event_time.min()) / 2
        if reference_end is None
        else pd.Timestamp(reference_end)
    )
    df = df[df.label.notna()].assign(label=lambda d: d.label.astype(int))
    definition = DataDefinition(
        classification=[BinaryClassification(target="label", prediction_probas="score")],
        numerical_columns=["score", *FEATURES],
    )
    ref = Dataset.from_pandas(df[df.event_time < mid], data_definition=definition)
    cur = Dataset.from_pandas(df[df.event_time >= mid], data_definition=definition)
    snap = Report([ClassificationPreset(), DataDriftPreset()]).run(cur, ref)
    return {"metrics": len(snap.dict()["metrics"])}


# ibis loads its DuckDB backend (and every SQL compiler, ~0.35 s) on the first connect: an
# import like the others, so it happens before the clock for both ibis users
PREIMPORT = {
    "aipm_nb": ("aipm_nb.cohort", "aipm_nb.experiment", "aipm_nb.model", "ibis.backends.duckdb"),
    "pandas": ("pyarrow.parquet",),
    "duckdb_sql": ("duckdb", "scipy.stats"),
    "pandas_scipy": ("scipy.stats", "pyarrow.parquet"),
    "tea_tasting": ("tea_tasting", "ibis.backends.duckdb"),
    "sklearn_pandas": ("sklearn.metrics", "scipy.stats", "pyarrow.parquet"),
    "evidently": ("evidently", "evidently.presets", "pyarrow.parquet"),
}

TASKS = {
    ("cohort", "aipm_nb"): cohort_aipm,
    ("cohort", "pandas"): cohort_pandas,
    ("cohort", "duckdb_sql"): cohort_duckdb_sql,
    ("w1", "aipm_nb"): lambda: cohort_aipm(EVENTS_W1, W1_PERIODS),
    ("w1", "duckdb_sql"): lambda: cohort_duckdb_sql(EVENTS_W1, W1_PERIODS),
    ("w1", "pandas"): lambda: cohort_pandas(EVENTS_W1, W1_PERIODS),
    ("ab", "aipm_nb"): ab_aipm,
    ("ab", "aipm_nb_no_unit_check"): ab_aipm_trusted,
    ("ab", "pandas_scipy"): ab_pandas_scipy,
    ("ab", "duckdb_sql"): ab_duckdb_sql,
    ("ab", "tea_tasting"): ab_tea_tasting,
    ("model", "aipm_nb"): model_aipm,
    ("model", "sklearn_pandas"): model_sklearn,
    ("model", "evidently"): model_evidently,
    ("model_continuous", "aipm_nb"): lambda: model_aipm(PREDICTIONS_CONTINUOUS),
    ("model_continuous", "sklearn_pandas"): lambda: model_sklearn(PREDICTIONS_CONTINUOUS),
    ("model_continuous", "aipm_nb_no_ks"): lambda: model_aipm(PREDICTIONS_CONTINUOUS, ks=False),
    ("w3", "aipm_nb"): w3_aipm,
    ("w3", "aipm_nb_with_ks"): lambda: w3_aipm(ks=True),
    ("w3_100m", "aipm_nb"): lambda: w3_aipm(folder=PREDICTIONS_100M),
    ("w3", "sklearn_pandas"): w3_sklearn,
    ("w3", "duckdb_sql"): w3_duckdb_sql,
    ("w3", "evidently"): lambda: model_evidently(PREDICTIONS_CONTINUOUS, W3_REFERENCE_END),
}


def main(argv: list[str]) -> None:
    if argv[:1] == ["gen"]:
        gen()
        return
    if argv[:1] == ["gen-continuous"]:
        gen_continuous()
        return
    if argv[:1] == ["gen-ab"]:
        gen_experiment()
        return
    if argv[:1] == ["gen-w1"]:
        gen_w1()
        return
    if argv[:1] == ["gen-100m"]:
        gen_continuous_100m()
        return
    if argv[:1] != ["run"] or len(argv) != 3:
        raise SystemExit(__doc__)
    fn = TASKS[(argv[1], argv[2])]
    # imports are not what is measured: load every library the implementation uses first
    family = max((k for k in PREIMPORT if argv[2].startswith(k)), key=len, default="")
    for mod in PREIMPORT.get(family, ()):
        __import__(mod)
    t0 = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"task": argv[1], "impl": argv[2], "seconds": round(seconds, 2),
                      "peak_rss_mb": round(peak_mb), "value": value}, default=float))  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
