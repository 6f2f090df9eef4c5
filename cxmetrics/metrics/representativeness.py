"""Which customers responded? Response rates by segment and post-stratified NPS.

Response rate of a segment = distinct customers who answered the relationship survey in the
period / customers active in the period (acquired by its end, not churned before its start).
Post-stratification weights each segment's respondents by (segment share of the active base) /
(segment share of respondents), so the weighted NPS reflects the customer base rather than the
people who like answering surveys.

References
----------
Kalton, G. & Flores-Cervantes, I. (2003), "Weighting methods", J. Official Statistics 19(2),
§2 (cell weighting / post-stratification).
"""

from __future__ import annotations

import math

import duckdb

from cxmetrics import store
from cxmetrics.core import lazy
from cxmetrics.core.dist import norm
from cxmetrics.core.filters import Filters
from cxmetrics.core.results import Result
from cxmetrics.store import summaries

pd = lazy.module("pandas")


def response_rates(con: duckdb.DuckDBPyConnection, filters: Filters, *, alpha: float = 0.05) -> Result:
    """Response rate by segment with CIs, shares of base vs respondents, and the weights."""
    from cxmetrics.metrics import nps

    # active base and responses per segment are shared with the weighted NPS (memoised queries);
    # respondents: customers with a relationship answer among the responses that count
    base, _ = nps.active_base(con, filters)
    cells = store.run(con, nps.counts_query(con, filters, None, "relationship", "nps_overall", by_segment=True))
    rwhere, rparams = summaries.where(summaries.LATEST_TABLE, filters, customer="l", dates=False)
    q = summaries.query(con, "response_rates", "SELECT l.segment, count(*) AS respondents "
                                               f"FROM {{summary_latest}} l WHERE {rwhere} GROUP BY 1 ORDER BY 1",
                        rparams, filters=filters, inline=(summaries.LATEST_TABLE,))
    resp = store.run(con, q).set_index("segment")["respondents"]
    df = base.rename(columns={"customers": "active"}).copy()
    df["respondents"] = df["segment"].map(resp).fillna(0).astype(int)
    df["responses"] = df["segment"].map(cells.groupby("segment")["n"].sum()).fillna(0).astype(int)
    z = norm.ppf(1 - alpha / 2)
    rate = df["respondents"] / df["active"].where(df["active"] > 0)
    half = z * (rate * (1 - rate) / df["active"]).pow(0.5)
    base_share = df["exposure"] / df["exposure"].sum()
    resp_share = df["responses"] / max(df["responses"].sum(), 1)
    table = pd.DataFrame({
        "segment": df["segment"], "active_customers": df["active"], "respondents": df["respondents"],
        "response_rate_pct": 100 * rate, "ci_low": 100 * (rate - half).clip(lower=0),
        "ci_high": 100 * (rate + half).clip(upper=1), "share_of_base_pct": 100 * base_share,
        "share_of_responses_pct": 100 * resp_share,
        "weight": (base_share / resp_share.where(resp_share > 0)),
    })
    unweighted = nps.overall(con, filters, alpha=alpha)
    weighted = nps.overall(con, filters, weighted=True, alpha=alpha)
    gap = weighted.estimate - unweighted.estimate
    over = table.loc[table["weight"].idxmin(), "segment"] if table["weight"].notna().any() else None
    finding = (f"Weighted to the customer base, NPS is {weighted.estimate:.1f} ({weighted.ci_text()}) against "
               f"{unweighted.estimate:.1f} unweighted: a {abs(gap):.1f}-point {'overstatement' if gap < 0 else 'understatement'} "
               f"because {over} customers answer more often." if over is not None and not math.isnan(gap) else
               "No responses to compare.")
    return Result("response_rates", "Response rate by segment", table,
                  method="Respondents / customers active in the period, per segment (Wald CI); weights = "
                         "segment share of active customer-days / share of responses.",
                  reference="Kalton & Flores-Cervantes (2003), J. Official Statistics 19(2).",
                  filters=filters.describe(), alpha=alpha, headline=(unweighted, weighted), queries=(q,),
                  extra={"tables": ("customers", "survey_responses", "churn_events"), "finding": finding})
