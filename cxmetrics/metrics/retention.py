"""Churn over calendar time and by acquisition cohort, and the end of the data.

* Monthly churn rate of contractual customers: churned in the month / active at its start,
  Wilson CI.
* Cohort retention: the share of each quarterly acquisition cohort not churned k months after
  acquisition (only ages every member has reached), Wilson CI (each member retained or not).
* :data:`DATA_END_SQL`: the last date the store knows about, (defined in :mod:`cxmetrics.relations`).

References
----------
Wilson, E. B. (1927), JASA 22(158).
"""

from __future__ import annotations

import duckdb

from cxmetrics import store
from cxmetrics.core.filters import Filters
from cxmetrics.core.results import Result
from cxmetrics.metrics.survival import wilson
from cxmetrics.store import summaries
from cxmetrics.store.relations import DATA_END_SQL

#: The end of the data: the last transaction; in a store without transactions, the last churn
#: event or survey response (so churn is followed to the last date the store knows about).



def churn_rate_by_period(con: duckdb.DuckDBPyConnection, filters: Filters, *, alpha: float = 0.05) -> Result:
    """Monthly churn rate of contractual customers: churned in the month / active at its start."""
    where, params = summaries.where(summaries.LIFECYCLE_TABLE, filters, customer="c", dates=False)
    rng = ["TRUE"]
    if filters.date_from is not None:
        rng.append("m >= date_trunc('month', $date_from)")
        params["date_from"] = filters.date_from
    if filters.date_to is not None:
        rng.append("m <= $date_to")
        params["date_to"] = filters.date_to
    sql = f"""
WITH months AS (
    SELECT unnest(generate_series(date_trunc('month', min(responded_on)), date_trunc('month', max(responded_on)),
                                  INTERVAL 1 MONTH))::DATE AS m FROM survey_responses
), spans AS (
    -- active at month start m <=> a <= m < z (a: first month start after acquisition, z: after churn);
    -- customers (counted by acquisition and churn date) grouped by (a, z) so the month grid meets a
    -- few hundred rows, not every customer
    SELECT (date_trunc('month', c.acquired_on) + INTERVAL 1 MONTH)::DATE AS a,
           (date_trunc('month', c.churned_on) + INTERVAL 1 MONTH)::DATE AS z,
           date_trunc('month', c.churned_on)::DATE AS cm, sum(c.n) AS n
    FROM {{summary_lifecycle}} c WHERE c.contract = 'contractual' AND {where} GROUP BY ALL
)
SELECT m AS month,
       CAST(coalesce(sum(n) FILTER (WHERE a <= m AND (z IS NULL OR z > m)), 0) AS BIGINT) AS active,
       CAST(coalesce(sum(n) FILTER (WHERE cm = m), 0) AS BIGINT) AS churned
FROM months, spans WHERE {' AND '.join(rng)} GROUP BY 1 ORDER BY 1"""
    q = summaries.query(con, "churn_by_month", sql, params, filters=filters)
    df = store.run(con, q)
    ci = [wilson(k, n, alpha) for k, n in zip(df["churned"], df["active"], strict=True)]
    df["churn_rate_pct"] = 100 * df["churned"] / df["active"].where(df["active"] > 0)
    df["ci_low"] = [100 * a for a, _ in ci]
    df["ci_high"] = [100 * b for _, b in ci]
    return Result("churn_by_month", "Monthly churn rate", df, method="churned in month / active at month start "
                  "(contractual customers), Wilson CI.", reference="Wilson (1927).", filters=filters.describe(),
                  alpha=alpha, queries=(q,), extra={"tables": ("customers", "churn_events")})


def cohort_retention(con: duckdb.DuckDBPyConnection, filters: Filters, *, alpha: float = 0.05) -> Result:
    """Share of each quarterly acquisition cohort still a customer k months after acquisition, with
    a Wilson score interval (each member retained or not: a binomial share of the cohort)."""
    where, params = summaries.where(summaries.LIFECYCLE_TABLE, filters, customer="c", dates=False)
    sql = f"""
WITH last AS (SELECT {DATA_END_SQL} AS E),
cust AS (  -- customers counted by acquisition and churn date
    SELECT date_trunc('quarter', c.acquired_on)::DATE AS cohort, c.acquired_on, c.churned_on, c.n
    FROM {{summary_lifecycle}} c WHERE c.contract = 'contractual' AND {where}
), lived AS (
    -- whole months from acquisition to churn (NULL: not churned): retained at k <=> lived >= k
    SELECT cohort, CASE WHEN churned_on IS NULL THEN NULL
                        WHEN acquired_on + to_months(date_diff('month', acquired_on, churned_on)) <= churned_on
                        THEN date_diff('month', acquired_on, churned_on)
                        ELSE date_diff('month', acquired_on, churned_on) - 1 END AS lived, sum(n) AS n
    FROM cust GROUP BY ALL
), ks AS (SELECT unnest(range(0, 37, 3)) AS k)
SELECT cohort, k AS months, CAST(sum(n) AS BIGINT) AS customers,
       CAST(coalesce(sum(n) FILTER (WHERE lived IS NULL OR lived >= k), 0) AS BIGINT) AS still,
       coalesce(sum(n) FILTER (WHERE lived IS NULL OR lived >= k), 0) / sum(n) AS retained
FROM lived, ks, last
WHERE cohort + to_months(k + 3) <= last.E
GROUP BY 1, 2 ORDER BY 1, 2"""
    q = summaries.query(con, "cohort_retention", sql, params, filters=filters)
    df = store.run(con, q)
    ci = [wilson(k, n, alpha) for k, n in zip(df["still"], df["customers"], strict=True)]
    df["ci_low"] = [a for a, _ in ci]
    df["ci_high"] = [b for _, b in ci]
    df["small_sample"] = df["customers"] < filters.min_n
    return Result("cohort_retention", "Cohort retention", df.drop(columns="still"),
                  method="Share of the quarterly acquisition cohort not churned k months after acquisition "
                         f"(only ages every member has reached); Wilson {1 - alpha:.0%} score interval.",
                  reference="Wilson (1927).", filters=filters.describe(), alpha=alpha, queries=(q,),
                  extra={"tables": ("customers", "churn_events")})
