"""KPI monitoring benchmark (issue 15): 6 KPIs over 52 ISO weeks, aipm_nb vs hand-written DuckDB
SQL vs pandas, on generated Parquet with skewed user activity.

    python benchmarks/kpi_bench.py gen N           # N events under benchmarks/data/kpi_N/
    python benchmarks/kpi_bench.py run N IMPL      # IMPL: aipm | sql | pandas; prints JSON

Each run is a fresh process; wall time covers reading the Parquet and computing every KPI's
weekly values (aipm_nb also scores them and builds the result); peak memory is the process's
maximum RSS. The implementations agree on every weekly value (``check`` in the JSON: the sum of
all values).
"""

from __future__ import annotations

import sys
from pathlib import Path

from harness import bench_main, write_parquet

HERE = Path(__file__).resolve().parent

KPIS = [
    {"name": "WAU", "type": "users"},
    {"name": "Sessions", "type": "count", "events": ["session_start"]},
    {"name": "Sessions per user", "type": "per_user", "events": ["session_start"]},
    {"name": "Purchase rate", "type": "rate", "numerator": ["purchase"],
     "denominator": ["session_start"]},
    {"name": "AI adoption", "type": "rate", "numerator": ["ai_assist_used"]},
    {"name": "Revenue", "type": "sum", "column": "revenue", "events": ["purchase"]},
]  # fmt: skip


def folder(n: int) -> Path:
    return HERE / "data" / f"kpi_{n}"


def gen(n: int) -> None:
    """``n`` events over 52 weeks from 2024-01-01 by n/50 users whose activity is skewed (user
    = ⌊U·u²⌋: a few heavy users, a long tail), 4 event names, lognormal revenue on purchases."""
    users = max(n // 50, 1000)
    write_parquet(folder(n), f"""
          SELECT CAST(floor({users} * pow(random(), 2)) AS BIGINT) AS user_id,
                 TIMESTAMP '2024-01-01'
                   + to_microseconds(CAST(random() * 52 * 7 * 86400e6 AS BIGINT)) AS event_time,
                 CASE WHEN r < 0.60 THEN 'session_start' WHEN r < 0.85 THEN 'ai_assist_used'
                      WHEN r < 0.90 THEN 'purchase' ELSE 'page_view' END AS event_name,
                 CASE WHEN r >= 0.85 AND r < 0.90
                      THEN round(exp(3.0 + 0.8 * sqrt(-2 * ln(random()))
                                         * cos(2 * pi() * random())), 2)
                 END AS revenue
          FROM (SELECT random() AS r FROM range({n}))
    """)  # fmt: skip


SQL = """
WITH ev AS (
  SELECT user_id, date_trunc('week', event_time) AS week, event_name, revenue
  FROM read_parquet('{glob}')
), per_user AS (
  SELECT week, user_id,
         count(*) AS n_any,
         count(*) FILTER (WHERE event_name = 'session_start') AS n_sess,
         count(*) FILTER (WHERE event_name = 'purchase') AS n_buy,
         count(*) FILTER (WHERE event_name = 'ai_assist_used') AS n_ai,
         sum(revenue) FILTER (WHERE event_name = 'purchase') AS rev
  FROM ev GROUP BY ALL
)
SELECT week,
       count(*) AS wau,
       sum(n_sess) AS sessions,
       count(*) FILTER (WHERE n_sess > 0) AS sess_users,
       count(*) FILTER (WHERE n_sess > 0 AND n_buy > 0) AS buyers,
       count(*) FILTER (WHERE n_ai > 0) AS ai_users,
       coalesce(sum(rev), 0) AS revenue
FROM per_user GROUP BY week ORDER BY week
"""


def _values_from_weekly(w) -> list[float]:
    """The six KPI values per week from one weekly table (for the check)."""
    import numpy as np

    vals = [
        w.wau,
        w.sessions,
        w.sessions / w.wau,
        w.buyers / w.sess_users,
        w.ai_users / w.wau,
        w.revenue,
    ]
    return [float(np.nansum(v)) for v in vals]


def run_sql(n: int) -> float:
    import duckdb

    w = duckdb.connect().execute(SQL.format(glob=f"{folder(n)}/*.parquet")).df()
    return sum(_values_from_weekly(w))


def run_pandas(n: int) -> float:
    import pandas as pd

    df = pd.read_parquet(folder(n), columns=["user_id", "event_time", "event_name", "revenue"])
    df["week"] = df.event_time.dt.to_period("W-SUN").dt.start_time
    name = df.event_name
    df = df.assign(
        n_sess=(name == "session_start").astype("int32"),
        n_buy=(name == "purchase").astype("int32"),
        n_ai=(name == "ai_assist_used").astype("int32"),
    )
    pu = df.groupby(["week", "user_id"], sort=False).agg(
        n_sess=("n_sess", "sum"), n_buy=("n_buy", "sum"), n_ai=("n_ai", "sum"),
        rev=("revenue", "sum"),
    )  # fmt: skip
    g = pu.groupby(level="week")
    w = pd.DataFrame(
        {
            "wau": g.size(),
            "sessions": g.n_sess.sum(),
            "sess_users": g.n_sess.apply(lambda s: (s > 0).sum()),
            "buyers": (pu.n_sess.gt(0) & pu.n_buy.gt(0)).groupby(level="week").sum(),
            "ai_users": pu.n_ai.gt(0).groupby(level="week").sum(),
            "revenue": g.rev.sum(),
        }
    )
    return sum(_values_from_weekly(w))


def run_aipm(n: int) -> float:
    import numpy as np

    from aipm_nb import kpi

    res = kpi.monitor_kpis(f"{folder(n)}/*.parquet", KPIS, as_of="2024-12-30")
    s = res.series
    return float(sum(np.nansum(s[s.name == k["name"]].value) for k in KPIS))


def main(argv: list[str]) -> None:
    impls = {"aipm": run_aipm, "sql": run_sql, "pandas": run_pandas}
    bench_main(argv, gen, impls, warm={"aipm": "aipm_nb.kpi"})


if __name__ == "__main__":
    main(sys.argv[1:])
