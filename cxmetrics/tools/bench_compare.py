"""What the pages are compared with, each run in its own subprocess by ``bench``:

* the **pandas baseline**: what a typical dashboard does — load the tables, group in memory;
* **Polars** (lazy, streaming engine) over Parquet copies of the same tables: the strongest
  single-machine dataframe alternative a user would pick, on the same page computations;
* the **floor**: one hand-written DuckDB aggregation over the survey table.

The baseline and Polars compute the same things per page (NPS by segment, region, quarter and
touchpoint with its interval; CSAT/CES by touchpoint; the complaint Pareto, monthly volumes,
days to close and callbacks; churn by NPS group of the latest answer). Their libraries are loaded
before the timer starts, as for our ``uncached`` figure.
"""

from __future__ import annotations

import time

from cxmetrics import store

#: Pages with a baseline (pandas and Polars) computation.
BASELINE_PAGES = ("pages/02_nps_drivers.py", "pages/08_complaints.py", "pages/04_churn_retention.py")


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_mib() -> float:
    """This process's peak resident memory (VmHWM; ru_maxrss would carry the parent's peak over exec)."""
    return _status_mib("VmHWM")


def rss_mib() -> float:
    return _status_mib("VmRSS")


def worker_baseline(db: str, path: str) -> dict:
    import numpy as np
    import pandas as pd

    before = rss_mib()
    t0 = time.perf_counter()
    with store.connect(db) as con:
        cust = con.execute("SELECT * FROM customers").df()
        if path == "pages/02_nps_drivers.py":
            sr = con.execute("SELECT * FROM survey_responses").df()
        elif path == "pages/08_complaints.py":
            cp = con.execute("SELECT * FROM complaints").df()
        else:
            sr = con.execute("SELECT * FROM survey_responses").df()
            ch = con.execute("SELECT * FROM churn_events").df()
    if path == "pages/02_nps_drivers.py":
        sr = sr.merge(cust, on="customer_id")
        sr["grp"] = np.select([sr.nps >= 9, sr.nps <= 6], ["p", "d"], "n")
        sr.loc[sr.nps.isna(), "grp"] = None

        def nps(g):
            n = g["grp"].notna().sum()
            p, d = (g["grp"] == "p").sum() / n, (g["grp"] == "d").sum() / n
            se = 100 * np.sqrt((p + d - (p - d) ** 2) / n)
            return pd.Series({"nps": 100 * (p - d), "lo": 100 * (p - d) - 1.96 * se, "n": n})

        sr["quarter"] = pd.to_datetime(sr.responded_on).dt.to_period("Q")
        nps(sr)
        for by in ("segment", "region", "quarter", "touchpoint"):
            sr.groupby(by).apply(nps, include_groups=False)
        sr.groupby("touchpoint")[["csat", "ces"]].agg(["mean", "std", "count"])
    elif path == "pages/08_complaints.py":
        cp["month"] = pd.to_datetime(cp.opened_on).dt.to_period("M")
        vol = cp.groupby("category").size().sort_values(ascending=False)
        (vol.cumsum() / vol.sum())
        cp.groupby("month").agg(n=("complaint_id", "size"), esc=("escalated", "mean"))
        days = (pd.to_datetime(cp.closed_on) - pd.to_datetime(cp.opened_on)).dt.days
        days.groupby(cp.category).quantile([0.5, 0.9])
        cp.groupby("department")[["callback_promised", "callback_done"]].sum()
    else:
        sr = sr.sort_values("responded_on").groupby("customer_id").tail(1)
        sr = sr.merge(cust, on="customer_id").merge(ch, on="customer_id", how="left")
        sr["grp"] = np.select([sr.nps >= 9, sr.nps <= 6], ["promoter", "detractor"], "passive")
        sr["churned"] = sr.churned_on.notna()
        sr.groupby(["grp", "segment"]).churned.agg(["mean", "count"])
        sr.groupby("grp").churned.agg(["mean", "count"])
    peak = peak_mib()
    return {"seconds": time.perf_counter() - t0, "peak_mib": peak, "work_mib": peak - before}


def _polars_nps(pl, lf, by: str | None):
    grp = (pl.when(pl.col("nps") >= 9).then(1.0).when(pl.col("nps") <= 6).then(-1.0).otherwise(0.0))
    q = lf.filter(pl.col("nps").is_not_null()).with_columns(g=grp)
    aggs = [pl.len().alias("n"), (100 * pl.col("g").mean()).alias("nps"),
            (pl.col("g") == 1).mean().alias("p"), (pl.col("g") == -1).mean().alias("d")]
    q = q.group_by(by).agg(aggs) if by else q.select(aggs)
    se = 100 * ((pl.col("p") + pl.col("d") - (pl.col("p") - pl.col("d")) ** 2) / pl.col("n")).sqrt()
    return q.with_columns(lo=pl.col("nps") - 1.96 * se)


def worker_polars(parquet: str, path: str) -> dict:
    """The baseline's computations in Polars: lazy scans of the Parquet copies, collected with the
    streaming engine (``parquet`` is a JSON object table -> file)."""
    import json

    import polars as pl

    files = json.loads(parquet)
    before = rss_mib()
    t0 = time.perf_counter()

    def scan(t):
        return pl.scan_parquet(files[t])

    def run(*lfs):
        return pl.collect_all(list(lfs), engine="streaming")

    if path == "pages/02_nps_drivers.py":
        sr = scan("survey_responses").join(scan("customers"), on="customer_id").with_columns(
            quarter=pl.col("responded_on").dt.truncate("1q"))
        run(_polars_nps(pl, sr, None), *(_polars_nps(pl, sr, by) for by in ("segment", "region", "quarter", "touchpoint")),
            sr.group_by("touchpoint").agg(*(getattr(pl.col(c), f)().alias(f"{c}_{f}") for c in ("csat", "ces")
                                            for f in ("mean", "std", "count"))))
    elif path == "pages/08_complaints.py":
        cp = scan("complaints")
        vol = cp.group_by("category").agg(pl.len().alias("n")).sort("n", descending=True).with_columns(
            share=pl.col("n").cum_sum() / pl.col("n").sum())
        monthly = cp.group_by(pl.col("opened_on").dt.truncate("1mo")).agg(
            pl.len().alias("n"), pl.col("escalated").cast(pl.Float64).mean().alias("esc"))
        days = cp.with_columns(days=(pl.col("closed_on") - pl.col("opened_on")).dt.total_days()).group_by(
            "category").agg(pl.col("days").quantile(0.5).alias("p50"), pl.col("days").quantile(0.9).alias("p90"))
        callbacks = cp.group_by("department").agg(pl.col("callback_promised").cast(pl.Int64).sum(),
                                                  pl.col("callback_done").cast(pl.Int64).sum())
        run(vol, monthly, days, callbacks)
    else:
        latest = (scan("survey_responses").group_by("customer_id").agg(pl.col("nps").sort_by("responded_on").last())
                  .join(scan("customers"), on="customer_id").join(scan("churn_events"), on="customer_id", how="left")
                  .with_columns(grp=pl.when(pl.col("nps") >= 9).then(pl.lit("promoter")).when(pl.col("nps") <= 6)
                                .then(pl.lit("detractor")).otherwise(pl.lit("passive")),
                                churned=pl.col("churned_on").is_not_null().cast(pl.Float64)))
        run(latest.group_by("grp", "segment").agg(pl.col("churned").mean(), pl.len()),
            latest.group_by("grp").agg(pl.col("churned").mean(), pl.len()))
    peak = peak_mib()
    return {"seconds": time.perf_counter() - t0, "peak_mib": peak, "work_mib": peak - before,
            "engine": f"polars {pl.__version__} lazy, streaming"}


FLOOR_SQL = """
SELECT c.segment, date_trunc('month', s.responded_on) AS month, count(s.nps) AS n,
       avg(CASE WHEN s.nps >= 9 THEN 100 WHEN s.nps <= 6 THEN -100 ELSE 0 END) AS nps
FROM survey_responses s JOIN customers c USING (customer_id) GROUP BY ALL
"""


def worker_floor(db: str) -> dict:
    with store.connect(db) as con:
        con.execute("SELECT 1").fetchall()
        t0 = time.perf_counter()
        con.execute(FLOOR_SQL).to_arrow_table()
        return {"seconds": time.perf_counter() - t0, "peak_mib": peak_mib()}
