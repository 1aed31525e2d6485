"""Funnel benchmark (issue 16): a 4-step ordered funnel with a 14-day window, aipm_nb vs a
hand-written DuckDB SQL (ASOF joins) vs pandas (``merge_asof``), on generated Parquet.

    python benchmarks/funnel_bench.py gen N           # N events under benchmarks/data/funnel_N/
    python benchmarks/funnel_bench.py run N IMPL      # IMPL: aipm | sql | pandas; prints JSON

The data: N events over 180 days by N/10 users with skewed activity (user = ⌊U·u²⌋: a few
heavy users, a long tail), full-precision (microsecond) timestamps, 6 event names of which 4 are
steps (sign_up 4%, ai_question 20%, ai_answer_accepted 10%, purchase 3%) — users re-try the
funnel many times, as real users do. Each run is a fresh process; wall time covers reading the
Parquet, matching every attempt, choosing each user's best attempt and the step counts and
mean / median times to convert; peak memory is the process's maximum RSS. The three agree on
every count and time (``check`` in the JSON).
"""

from __future__ import annotations

import sys
from pathlib import Path

from harness import bench_main, write_parquet

HERE = Path(__file__).resolve().parent
STEPS = ["sign_up", "ai_question", "ai_answer_accepted", "purchase"]
WINDOW_DAYS = 14
AS_OF = "2024-06-29"  # 180 days from 2024-01-01: the last 14 days' attempts are still open


def folder(n: int) -> Path:
    return HERE / "data" / f"funnel_{n}"


def gen(n: int) -> None:
    users = max(n // 10, 1000)
    write_parquet(folder(n), f"""
          SELECT CAST(floor({users} * pow(random(), 2)) AS BIGINT) AS user_id,
                 TIMESTAMP '2024-01-01'
                   + to_microseconds(CAST(random() * 180 * 86400e6 AS BIGINT)) AS event_time,
                 CASE WHEN r < 0.04 THEN 'sign_up' WHEN r < 0.24 THEN 'ai_question'
                      WHEN r < 0.34 THEN 'ai_answer_accepted' WHEN r < 0.37 THEN 'purchase'
                      WHEN r < 0.70 THEN 'page_view' ELSE 'session_start' END AS event_name
          FROM (SELECT random() AS r FROM range({n}))
    """)  # fmt: skip


# Greedy ordered matching with ASOF joins: from each sign_up, the first ai_question strictly
# later, from that the first accepted answer strictly later, then the first purchase; an
# attempt counts when its window has ended by AS_OF; each user's deepest attempt (the earliest
# of equal depth) gives the counts and the times.
SQL = """
WITH ev AS (
  SELECT user_id, event_time AS ts, event_name FROM read_parquet('{glob}')
  WHERE event_time < TIMESTAMP '{as_of}'
), s0 AS (SELECT DISTINCT user_id, ts FROM ev WHERE event_name = 'sign_up'
          AND ts + INTERVAL {w} DAY <= TIMESTAMP '{as_of}'),
s1 AS (SELECT DISTINCT user_id, ts FROM ev WHERE event_name = 'ai_question'),
s2 AS (SELECT DISTINCT user_id, ts FROM ev WHERE event_name = 'ai_answer_accepted'),
s3 AS (SELECT DISTINCT user_id, ts FROM ev WHERE event_name = 'purchase'),
a1 AS (SELECT s0.user_id, s0.ts AS t0, s1.ts AS t1 FROM s0
       ASOF LEFT JOIN s1 ON s0.user_id = s1.user_id AND s0.ts < s1.ts),
a2 AS (SELECT a1.*, s2.ts AS t2 FROM a1
       ASOF LEFT JOIN s2 ON a1.user_id = s2.user_id AND a1.t1 < s2.ts),
a3 AS (SELECT a2.*, s3.ts AS t3 FROM a2
       ASOF LEFT JOIN s3 ON a2.user_id = s3.user_id AND a2.t2 < s3.ts),
att AS (
  -- nested: an ASOF LEFT JOIN whose left key is NULL (no previous step) still matches a
  -- row in DuckDB 1.5, so a later step counts only when every step before it does
  SELECT user_id, t0, t1, t2, t3,
         CASE WHEN t1 IS NULL OR t1 > t0 + INTERVAL {w} DAY THEN 1
              WHEN t2 IS NULL OR t2 > t0 + INTERVAL {w} DAY THEN 2
              WHEN t3 IS NULL OR t3 > t0 + INTERVAL {w} DAY THEN 3 ELSE 4 END AS depth
  FROM a3
), best AS (
  SELECT user_id, arg_min([t0, t1, t2, t3], [-depth, epoch_us(t0)]) AS t,
         max(depth) AS depth
  FROM att GROUP BY user_id
), d AS (
  SELECT depth,
         CASE WHEN depth > 1 THEN epoch(t[2]) - epoch(t[1]) END AS d1,
         CASE WHEN depth > 2 THEN epoch(t[3]) - epoch(t[2]) END AS d2,
         CASE WHEN depth > 3 THEN epoch(t[4]) - epoch(t[3]) END AS d3
  FROM best
)
SELECT count(*) FILTER (WHERE depth >= 1) AS c1, count(*) FILTER (WHERE depth >= 2) AS c2,
       count(*) FILTER (WHERE depth >= 3) AS c3, count(*) FILTER (WHERE depth >= 4) AS c4,
       avg(d1) AS m1, avg(d2) AS m2, avg(d3) AS m3,
       median(d1) AS q1, median(d2) AS q2, median(d3) AS q3
FROM d
"""


def _check(counts: list[int], means: list[float], medians: list[float]) -> dict:
    return {"counts": [int(c) for c in counts], "mean_s": [round(float(m), 3) for m in means],
            "median_s": [round(float(m), 3) for m in medians]}  # fmt: skip


def run_sql(n: int) -> dict:
    import duckdb

    r = (
        duckdb.connect()
        .execute(SQL.format(glob=f"{folder(n)}/*.parquet", as_of=AS_OF, w=WINDOW_DAYS))
        .df()
        .iloc[0]
    )
    return _check([r.c1, r.c2, r.c3, r.c4], [r.m1, r.m2, r.m3], [r.q1, r.q2, r.q3])


def run_pandas(n: int) -> dict:
    import numpy as np
    import pandas as pd

    df = pd.read_parquet(folder(n), columns=["user_id", "event_time", "event_name"])
    as_of = pd.Timestamp(AS_OF)
    win = pd.Timedelta(days=WINDOW_DAYS)
    df = df[(df.event_time < as_of) & df.event_name.isin(STEPS)]
    parts = {
        s: df.loc[df.event_name == s, ["user_id", "event_time"]]
        .drop_duplicates()
        .sort_values("event_time")
        for s in STEPS
    }
    a = parts[STEPS[0]].rename(columns={"event_time": "t0"})
    a = a[a.t0 + win <= as_of]
    for k, s in enumerate(STEPS[1:], start=1):
        right = parts[s].rename(columns={"event_time": f"t{k}"})
        left = a.sort_values(f"t{k - 1}")
        missing = left[f"t{k - 1}"].isna()
        # rows whose previous step is missing cannot go on (merge_asof needs sorted keys)
        m = pd.merge_asof(left[~missing], right, left_on=f"t{k - 1}", right_on=f"t{k}",
                          by="user_id", direction="forward", allow_exact_matches=False)  # fmt: skip
        stuck = left[missing].assign(
            **{f"t{k}": pd.Series(pd.NaT, index=left.index[missing], dtype=right[f"t{k}"].dtype)}
        )
        a = pd.concat([m, stuck], ignore_index=True)
    depth = 1 + sum(
        (a[f"t{k}"].notna() & (a[f"t{k}"] <= a.t0 + win)).astype(int) for k in range(1, 4)
    )
    a = a.assign(depth=depth).sort_values(["user_id", "depth", "t0"], ascending=[True, False, True])
    best = a.drop_duplicates("user_id")
    counts = [int((best.depth >= k).sum()) for k in range(1, 5)]
    means, medians = [], []
    for k in range(1, 4):
        ok = best.depth > k
        d = (best.loc[ok, f"t{k}"] - best.loc[ok, f"t{k - 1}"]).dt.total_seconds()
        means.append(float(d.mean()) if len(d) else np.nan)
        medians.append(float(d.median()) if len(d) else np.nan)
    return _check(counts, means, medians)


def run_aipm(n: int) -> dict:
    from aipm_nb import funnel

    r = funnel.analyze_funnel(f"{folder(n)}/*.parquet", STEPS, window=f"{WINDOW_DAYS} days",
                              as_of=AS_OF)  # fmt: skip
    s = r.steps
    return _check(s["count"].tolist(), s.mean_seconds[1:].tolist(), s.median_seconds[1:].tolist())


def main(argv: list[str]) -> None:
    impls = {"aipm": run_aipm, "sql": run_sql, "pandas": run_pandas}
    bench_main(argv, gen, impls, warm={"aipm": "aipm_nb.funnel"})


if __name__ == "__main__":
    main(sys.argv[1:])
