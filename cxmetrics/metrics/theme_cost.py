"""What each theme costs, how its share moves, and how customers feel: the Customer voice page's figures.

Per theme (verbatims classified by the codebook, :mod:`cxmetrics.themes`):

* **share** of verbatims that carry it, Wilson score interval (Wilson 1927);
* **NPS of those who mention it vs those who don't**, each with its customer-clustered interval,
  and the difference crude and **adjusted** within segment × tenure band, with customer-clustered
  intervals that count the covariance of the two groups (:mod:`cxmetrics.theme_sums`);
* **NPS points at stake**: how much the NPS of all responses would rise if the theme's detractors
  were passives, 100 · d_theme / n (Wilson interval on d_theme / n);
* **12-month churn** of customers who raised it vs those who did not, from each customer's first
  verbatim with a full year of follow-up, adjusted the same way (binomial SEs);
* **trend** of its share by month with Wilson intervals, and a drill-down to its verbatims (text).

Sentiment and emotion mixes come from :func:`cxmetrics.text.annotate` on the seeded sample kept by
:mod:`cxmetrics.theme_store`; shares carry Wilson intervals for that sample. The page reads the kept
run (:func:`page_data`); :func:`cost` and :func:`trend` classify with any codebook on the fly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import duckdb

from cxmetrics import store
from cxmetrics.core import lazy
from cxmetrics.core.filters import Filters
from cxmetrics.core.results import Result
from cxmetrics.metrics import theme_lean, theme_store, theme_sums, themes
from cxmetrics.store import stubs

pd = lazy.module("pandas")

CHURN_DAYS = theme_sums.CHURN_DAYS


def table(frames: dict[str, pd.DataFrame], cb: Mapping[str, Iterable[str]], filters: Filters, *,
          alpha: float = 0.05, kept: pd.DataFrame | None = None) -> Result:
    """The cost :class:`Result` from the sums of :func:`cxmetrics.theme_sums.aggregate` (kept or
    computed), or from a cost table already computed from them (``kept``)."""
    out = theme_sums.cost_table(frames, cb, min_n=filters.min_n, alpha=alpha) if kept is None else kept
    total_v = int(out["verbatims"].iloc[0]) if len(out) else theme_sums.verbatims(frames)
    n_all = theme_sums.n_all(frames) if frames or not len(out) else int(out["nps_answers"].iloc[0])
    warnings = [] if total_v else ["No verbatims in these filters."]
    stub_n = (theme_sums.stub_customers(frames) if kept is None else
              int(out["stub_customers"].iloc[0]) if "stub_customers" in out and len(out) else 0)
    out = out.drop(columns=["stub_customers"], errors="ignore")
    if note := stubs.stratum_note(stub_n):
        warnings.append(note)
    return Result(
        "theme_cost", "What each theme costs", out,
        method=("Share: Wilson score interval. NPS of the NPS answers with a verbatim that mention the theme vs those "
                "that do not: customer-clustered linearised SEs (a customer is one cluster, in either group or both; "
                "the difference's SE counts the covariance); adjusted: within segment × tenure band (at the customer's "
                "first verbatim), standardised to the mix of all such answers (segment alone when those strata cover "
                "under 95%). Points at stake: 100·(theme's detractors)/(all NPS answers), Wilson interval. "
                f"Churn: share of customers churned within {CHURN_DAYS} days of their first verbatim (only customers "
                "with a full year of follow-up), raised vs not, crude and adjusted the same way, binomial SEs. "
                + themes.METHOD),
        reference=("Wilson (1927) JASA 22; Wolter (2007) Introduction to Variance Estimation §6.4 (linearised "
                   "cluster-robust variance); Rocks (2016) adjusted-Wald NPS interval; " + themes.REFERENCE),
        filters=filters.describe(), alpha=alpha,
        assumptions={"repeat respondents": "customer-clustered", "churn window days": CHURN_DAYS,
                     "adjusted within": " × ".join(theme_sums.STRATA)},
        warnings=tuple(warnings), extra={"verbatims": total_v, "nps_responses": n_all, "stub_customers": stub_n})


def frames_for(con: duckdb.DuckDBPyConnection, filters: Filters, cb: Mapping[str, Iterable[str]]) -> dict:
    """The sums for ``filters`` with ``cb`` classifying on the fly (regular expressions in SQL)."""
    sql, params = themes.tagged_sql(filters, cb, con)
    return theme_sums.aggregate(con, sql, params, filters)


@store.memoized
def cost(con: duckdb.DuckDBPyConnection, filters: Filters, cb: Mapping[str, Iterable[str]], *,
         alpha: float = 0.05) -> Result:
    """One row per theme: share, NPS with vs without (crude and adjusted, customer-clustered), NPS
    points at stake and 12-month churn raised vs not (crude and adjusted), each with its interval;
    the verbatims classified by ``cb`` on the fly."""
    return table(frames_for(con, filters, cb), cb, filters, alpha=alpha)


@store.memoized
def trend(con: duckdb.DuckDBPyConnection, filters: Filters, cb: Mapping[str, Iterable[str]], *,
          alpha: float = 0.05) -> pd.DataFrame:
    """Share of verbatims carrying each theme by month (``month, theme, mentions, verbatims,
    share, share_ci_low, share_ci_high``), Wilson intervals."""
    sql, params = themes.tagged_sql(filters, cb, con)
    return theme_sums.trend_table(store.run(con, store.Query("theme_trend", sql + theme_sums.TREND_SQL, params)), alpha)


def verbatims(con: duckdb.DuckDBPyConnection, filters: Filters, cb: Mapping[str, Iterable[str]], theme: str, *,
              limit: int = 200, kept: bool = False) -> pd.DataFrame:
    """The newest verbatims carrying ``theme`` (text only: pages show it as plain text); ``kept``
    reads the kept assignments (current run) instead of classifying on the fly."""
    if kept and theme_store.lean(con):
        where, params = theme_lean.cond(filters)
        params.update({"theme": theme, "limit": max(1, min(int(limit), 500))})
        return store.run(con, store.Query("theme_verbatims", f"""
SELECT v.responded_on, v.nps, v.touchpoint, v.verbatim
FROM (SELECT x.vid FROM theme_tagged x WHERE x.theme = $theme AND {where} ORDER BY x.vid LIMIT $limit) t
JOIN theme_verbatims v USING (vid) ORDER BY v.vid""", params))
    sql, params = theme_store.kept_prefix(filters, con) if kept else themes.tagged_sql(filters, cb, con)
    params = {**params, "theme": theme, "limit": max(1, min(int(limit), 500))}
    return store.run(con, store.Query("theme_verbatims", sql + """
SELECT r.responded_on, r.nps, coalesce(r.touchpoint, '(relationship)') AS touchpoint, r.verbatim
FROM (SELECT t.response_id FROM tagged t JOIN v USING (response_id) WHERE t.theme = $theme
      ORDER BY v.responded_on DESC, v.response_id LIMIT $limit) t JOIN survey_responses r USING (response_id)
ORDER BY r.responded_on DESC, r.response_id""", params))
