"""Key driver analysis: which touchpoints move NPS, and what their detractors cost in NPS points.

For each transactional touchpoint (delivery, contact centre, billing, …):

* **performance**: the touchpoint's mean CSAT (t interval);
* **importance**: the correlation, across customers, between their mean CSAT at the touchpoint
  and their latest relationship NPS score, with a Fisher-z 95% CI. It is computed from sums
  (n, Σx, Σy, Σx², Σy², Σxy) aggregated in DuckDB, so it scales to any number of customers. We
  use one correlation per driver rather than a joint regression because few customers rate
  every touchpoint; the price is that correlated drivers share credit (say so on the page);
* **NPS impact**: how many points the pooled transactional NPS would gain if the touchpoint's
  detractors were passives instead: 100 × D_T / n (Wald CI).

The priority matrix plots importance against performance: high importance and low performance
is where to act first.

References
----------
Fisher, R. A. (1921), "On the probable error of a coefficient of correlation", Metron 1 (z transform).
Johnson, J. W. & LeBreton, J. M. (2004), "History and use of relative importance indices in
organizational research", Organizational Research Methods 7(3) (why joint importance is hard).
"""

from __future__ import annotations

import math

import duckdb

from cxmetrics import store
from cxmetrics.core import lazy
from cxmetrics.core.dist import norm
from cxmetrics.core.filters import Filters
from cxmetrics.core.results import Result
from cxmetrics.store import relations, stubs, summaries

pd = lazy.module("pandas")

_SQL = """
WITH pairs AS (
    SELECT r.touchpoint, CAST(sum(r.n) AS BIGINT) AS n, sum(r.sx) AS sx, sum(r.sy) AS sy, sum(r.sxx) AS sxx,
           sum(r.syy) AS syy, sum(r.sxy) AS sxy
    FROM {summary_driver_pairs} r WHERE %(pairs)s GROUP BY 1
), cells AS (
    SELECT r.touchpoint, r.csat, r.nps, r.n FROM {summary_responses} r WHERE %(cells)s AND r.survey = 'transactional'
), perf AS (
    -- mean and sample SD of CSAT from its counted sums
    SELECT touchpoint, CAST(sum(n) AS BIGINT) AS responses,
           sum(csat * n) / sum(n) FILTER (WHERE csat IS NOT NULL) AS csat_mean,
           sqrt(greatest(sum(csat * csat * n) - sum(csat * n) ^ 2 / sum(n) FILTER (WHERE csat IS NOT NULL), 0)
                / (sum(n) FILTER (WHERE csat IS NOT NULL) - 1)) AS csat_sd,
           CAST(coalesce(sum(n) FILTER (WHERE %(detractor)s), 0) AS BIGINT) AS detractors,
           CAST(coalesce(sum(n) FILTER (WHERE nps IS NOT NULL), 0) AS BIGINT) AS nps_n
    FROM cells WHERE touchpoint IS NOT NULL GROUP BY 1
)
SELECT perf.*, pairs.n, pairs.sx, pairs.sy, pairs.sxx, pairs.syy, pairs.sxy,
       (SELECT CAST(coalesce(sum(n) FILTER (WHERE nps IS NOT NULL), 0) AS BIGINT) FROM cells) AS total_nps_n
FROM perf LEFT JOIN pairs USING (touchpoint) ORDER BY perf.touchpoint
"""


def correlation_ci(n: int, sx: float, sy: float, sxx: float, syy: float, sxy: float,
                   alpha: float = 0.05) -> tuple[float, float, float]:
    """Pearson r from sums, with a Fisher-z confidence interval.

    >>> r, lo, hi = correlation_ci(3, 6, 6, 14, 14, 14)   # x = y = 1, 2, 3
    >>> round(r, 6)
    1.0
    """
    cov = sxy - sx * sy / n
    vx, vy = sxx - sx * sx / n, syy - sy * sy / n
    if n < 4 or vx <= 0 or vy <= 0:
        return float("nan"), float("nan"), float("nan")
    r = max(min(cov / math.sqrt(vx * vy), 1.0), -1.0)
    if abs(r) >= 1:
        return r, r, r
    z, se = math.atanh(r), 1 / math.sqrt(n - 3)
    q = norm.ppf(1 - alpha / 2)
    return r, math.tanh(z - q * se), math.tanh(z + q * se)


@stubs.note_excluded()
def key_drivers(con: duckdb.DuckDBPyConnection, filters: Filters, *, alpha: float = 0.05) -> Result:
    """Importance, performance and NPS impact of each touchpoint (see module docstring)."""
    pwhere, params = summaries.where(summaries.PAIRS_TABLE, filters, customer="r", dates=False)
    cwhere, cparams = filters.where(date_col="r.responded_on", customer="r", department_col="r.department")
    q = summaries.query(con, "key_drivers", _SQL % {"pairs": pwhere, "cells": cwhere, "detractor": relations.detractor("nps")}, {**params, **cparams},
                        filters=filters)
    df = store.run(con, q)
    z = norm.ppf(1 - alpha / 2)
    recs = []
    for _, r in df.iterrows():
        n = int(r["n"]) if pd.notna(r["n"]) else 0
        corr = correlation_ci(n, r["sx"], r["sy"], r["sxx"], r["syy"], r["sxy"], alpha) if n else (float("nan"),) * 3
        total = int(r["total_nps_n"] or 0)
        share = r["detractors"] / total if total else float("nan")
        half = z * math.sqrt(share * (1 - share) / total) if total else float("nan")
        sd = r["csat_sd"] if pd.notna(r["csat_sd"]) else float("nan")
        recs.append({
            "touchpoint": r["touchpoint"], "performance_csat": r["csat_mean"],
            "performance_ci_half": z * sd / math.sqrt(r["responses"]) if r["responses"] else float("nan"),
            "importance_r": corr[0], "importance_ci_low": corr[1], "importance_ci_high": corr[2],
            "customers_linked": n, "nps_impact_points": 100 * share,
            "impact_ci_low": 100 * max(share - half, 0), "impact_ci_high": 100 * (share + half),
            "responses": int(r["responses"]), "small_sample": n < filters.min_n,
        })
    table = pd.DataFrame(recs)
    warnings = ["Importance is a per-driver correlation: drivers that move together share credit."]
    if len(table):
        imp_mid = table["importance_r"].median()
        perf_mid = table["performance_csat"].median()
        table["quadrant"] = [
            ("fix first" if i >= imp_mid and p < perf_mid else "keep up" if i >= imp_mid else
             "monitor" if p < perf_mid else "maintain") for i, p in zip(table["importance_r"], table["performance_csat"],
                                                                        strict=True)]
        table = table.sort_values("nps_impact_points", ascending=False).reset_index(drop=True)
    return Result("drivers", "Key drivers of NPS", table,
                  method="Importance: correlation of a customer's touchpoint CSAT with their latest relationship NPS "
                         "(Fisher-z CI); impact: NPS points gained if the touchpoint's detractors were passives.",
                  reference="Fisher (1921) z transform; Johnson & LeBreton (2004) on relative importance.",
                  filters=filters.describe(), alpha=alpha, warnings=tuple(warnings), queries=(q,),
                  extra={"tables": ("survey_responses", "customers")})


def describe(result: Result) -> str:
    """One sentence naming the driver to fix first."""
    t = result.table
    if t.empty:
        return "No transactional responses to analyse."
    known = t.dropna(subset=["nps_impact_points", "importance_r"])
    if known.empty:  # touchpoint answers but no NPS to relate them to
        return ("No NPS answers to relate touchpoint scores to: import survey responses with NPS on the Data page.")
    top = known.iloc[0] if t.iloc[0].name not in known.index else t.iloc[0]
    return (f"{str(top['touchpoint']).replace('_', ' ').capitalize()} detractors cost {top['nps_impact_points']:.1f} "
            f"NPS points (95% CI {top['impact_ci_low']:.1f} to {top['impact_ci_high']:.1f}); "
            f"its CSAT correlates with relationship NPS at r = {top['importance_r']:.2f}.")
