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
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from cxmetrics import store
from cxmetrics.core.filters import Filters
from cxmetrics.core.results import DEFAULT_MIN_N, Estimate, Result
from cxmetrics.metrics import text, theme_store, theme_sums, themes
from cxmetrics.store import summaries

CHURN_DAYS = theme_sums.CHURN_DAYS


def table(frames: dict[str, pd.DataFrame], cb: Mapping[str, Iterable[str]], filters: Filters, *,
          alpha: float = 0.05, kept: pd.DataFrame | None = None) -> Result:
    """The cost :class:`Result` from the sums of :func:`cxmetrics.theme_sums.aggregate` (kept or
    computed), or from a cost table already computed from them (``kept``)."""
    out = theme_sums.cost_table(frames, cb, min_n=filters.min_n, alpha=alpha) if kept is None else kept
    total_v = int(out["verbatims"].iloc[0]) if len(out) else theme_sums.verbatims(frames)
    n_all = theme_sums.n_all(frames) if frames or not len(out) else int(out["nps_answers"].iloc[0])
    warnings = [] if total_v else ["No verbatims in these filters."]
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
        warnings=tuple(warnings), extra={"verbatims": total_v, "nps_responses": n_all})


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
    sql, params = theme_store.kept_prefix(filters, con) if kept else themes.tagged_sql(filters, cb, con)
    params = {**params, "theme": theme, "limit": max(1, min(int(limit), 500))}
    return store.run(con, store.Query("theme_verbatims", sql + """
SELECT r.responded_on, r.nps, coalesce(r.touchpoint, '(relationship)') AS touchpoint, r.verbatim
FROM (SELECT t.response_id FROM tagged t JOIN v USING (response_id) WHERE t.theme = $theme
      ORDER BY v.responded_on DESC, v.response_id LIMIT $limit) t JOIN survey_responses r USING (response_id)
ORDER BY r.responded_on DESC, r.response_id""", params))


@dataclass(frozen=True)
class VoiceThemes:
    """What the Customer voice page shows about themes."""

    source: str
    version: int | None
    codebook: dict
    discovery: themes.Discovery | None
    cost: Result
    trend: pd.DataFrame
    sentiment: pd.DataFrame
    emotions: pd.DataFrame
    drill: pd.DataFrame
    headline: Estimate | None = None
    kept: bool = False
    notes: tuple[str, ...] = ()

    @property
    def verbatims(self) -> int:
        return int(self.cost.extra.get("verbatims", 0))

    def top(self, n: int = 5) -> list[str]:
        """The ``n`` most mentioned themes."""
        t = self.cost.table
        return t["theme"].head(n).tolist() if len(t) else []

    def cost_table(self) -> pd.DataFrame:
        """The cost table's columns for the page (every figure beside its interval)."""
        cols = ["theme", "n", "estimate", "ci_low", "ci_high", "nps_mention", "nps_other", "nps_gap", "nps_gap_ci_low",
                "nps_gap_ci_high", "nps_gap_adjusted", "nps_gap_adjusted_ci_low", "nps_gap_adjusted_ci_high",
                "nps_adjusted_by", "nps_points_at_stake", "nps_points_at_stake_ci_low", "nps_points_at_stake_ci_high",
                "churn_raised", "churn_other", "churn_gap", "churn_gap_adjusted", "churn_gap_adjusted_ci_low",
                "churn_gap_adjusted_ci_high", "churn_adjusted_by", "small_sample"]
        t = self.cost.table
        return t[[c for c in cols if c in t.columns]].rename(columns={"n": "mentions", "estimate": "share"})

    def discovered(self) -> pd.DataFrame:
        """The discovered themes as text columns (keywords and examples joined)."""
        d = self.discovery.themes if self.discovery is not None else pd.DataFrame()
        if d.empty:
            return pd.DataFrame(columns=["theme", "language", "keywords", "docs", "examples"])
        return pd.DataFrame({"theme": d["theme"], "language": d["language"],
                             "keywords": [", ".join(k) for k in d["keywords"]], "docs": d["docs"],
                             "examples": [" | ".join(e) for e in d["examples"]]})

    def codebook_rows(self) -> pd.DataFrame:
        return themes.to_rows(self.codebook)

    def findings(self, n: int = 3) -> list[str]:
        """Sentences for the themes with the most NPS points at stake."""
        t = self.cost.table
        if t.empty or "nps_points_at_stake" not in t:
            return []
        out = []
        for _, r in t.sort_values("nps_points_at_stake", ascending=False).head(n).iterrows():
            if not np.isfinite(r["nps_gap_adjusted"]) or not np.isfinite(r["nps_points_at_stake"]):
                out.append(f"\u201c{r['theme']}\u201d is in {100 * r['estimate']:.1f}% of verbatims (95% CI "
                           f"{100 * r['ci_low']:.1f} to {100 * r['ci_high']:.1f}); no NPS answers to compare.")
                continue
            out.append(f"\u201c{r['theme']}\u201d is in {100 * r['estimate']:.1f}% of verbatims "
                       f"(95% CI {100 * r['ci_low']:.1f} to {100 * r['ci_high']:.1f}); NPS of those who mention it is "
                       f"{r['nps_gap_adjusted']:+.1f} points vs the others within {r.get('nps_adjusted_by') or 'segment'} "
                       f"(95% CI {r['nps_gap_adjusted_ci_low']:.1f} to {r['nps_gap_adjusted_ci_high']:.1f}); "
                       f"{r['nps_points_at_stake']:.2f} NPS points at stake (95% CI {r['nps_points_at_stake_ci_low']:.2f} "
                       f"to {r['nps_points_at_stake_ci_high']:.2f}).")
        return out


@store.memoized
def page_data(con: duckdb.DuckDBPyConnection, filters: Filters, *, theme: str | None = None,
              alpha: float = 0.05) -> VoiceThemes:
    """Everything the themes part of Customer voice shows, from the kept theme run
    (:mod:`cxmetrics.theme_store`; never a refit): the unfiltered view reads the run's stored sums,
    a filtered view aggregates the kept assignments in SQL. When the data changed since the run
    (stale), the kept or saved codebook classifies on the fly and the page says so; with no run and
    no saved codebook there are no themes yet."""
    run = theme_store.latest(con)
    version, saved = themes.current(con)
    current = theme_store.is_current(con, run)
    notes: list[str] = []
    kept = None
    if current:
        cb = dict(run.codebook)
        if summaries.unfiltered(filters) and alpha == 0.05 and filters.min_n == DEFAULT_MIN_N:
            kept = theme_store.kept_results(con)
            frames = {}
        elif summaries.unfiltered(filters):
            frames = theme_store.kept_sums(con, run)
        else:
            prefix, params = theme_store.kept_prefix(filters, con)
            frames = theme_sums.aggregate(con, prefix, params, filters)
            frames.update(theme_store.feelings(con, prefix, params))
    else:
        cb = dict(saved) if saved else (dict(run.codebook) if run is not None else {})
        frames = frames_for(con, filters, cb) if cb else {}
        if run is not None:
            prefix, params = themes.tagged_sql(filters, cb, con)
            frames.update(theme_store.feelings(con, prefix, params))
            notes.append(f"The data changed since themes were last discovered (run {run.run_id}, data version "
                         f"{run.data_version}): verbatims are classified on the fly with the kept codebook; run "
                         "discovery again to refit the themes and make this page fast.")
        else:
            notes.append("Themes have not been discovered on this data yet: run discovery (button below, or "
                         "`python -m cxmetrics themes discover`).")
    if saved and (run is None or run.codebook_version == version or not current):
        source = f"saved codebook v{version}"
    elif cb:
        source = "discovered themes (not saved as a codebook yet)"
    else:
        source = "no themes yet"
    cond, params = themes._where(filters)
    imported = store.scalar(con, f"SELECT count(*) FROM survey_responses r WHERE {cond} AND r.theme IS NOT NULL", params)
    if imported:
        source += f"; {imported:,} verbatims keep their imported theme"
    empty = {"mentions": pd.DataFrame(columns=["verbatims", "theme", "mentions"]), "n_all": pd.DataFrame(),
             "nps": pd.DataFrame(columns=["theme", "d"]), "churn": pd.DataFrame(columns=["theme"])}
    if kept is not None:
        c = table({}, cb, filters, alpha=alpha, kept=kept["cost"])
        tr, f = kept["trend"], {"sentiment": kept["sentiment"], "emotions": kept["emotions"]}
    else:
        c = table(frames if "mentions" in frames else empty, cb, filters, alpha=alpha)
        tr = theme_sums.trend_table(frames["trend"], alpha) if "trend" in frames else pd.DataFrame()
        f = theme_sums.feelings_tables(frames, alpha)
    drill = verbatims(con, filters, cb, theme, kept=current) if theme else pd.DataFrame()
    disc = run.discovery if run is not None else None
    if disc is not None:
        notes += list(disc.warnings)
    return VoiceThemes(source, version, cb, disc, c, tr, f["sentiment"], f["emotions"], drill,
                       kept=current, notes=tuple(notes))
