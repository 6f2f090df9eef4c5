"""The "Customer voice" page: verbatims browsed and searched by group, score and touchpoint
(:func:`page_data`), and what the themes cost, how their share moves and how customers feel
(:func:`themes_data`, from the kept theme run of :mod:`cxmetrics.metrics.theme_store` and :mod:`cxmetrics.metrics.theme_cost`).

Search terms are bound parameters (``ILIKE $pattern``) and results are capped; the text is
returned as data and every page shows it as plain text, never as HTML.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import duckdb

from cxmetrics import store
from cxmetrics.core import lazy
from cxmetrics.core.filters import Filters
from cxmetrics.core.results import DEFAULT_MIN_N, Estimate, Result
from cxmetrics.metrics import theme_cost, theme_lean, theme_store, theme_sums, themes
from cxmetrics.store import summaries

pd = lazy.module("pandas")
np = lazy.module("numpy")

GROUPS = {"promoter": "r.nps >= 9", "passive": "r.nps BETWEEN 7 AND 8", "detractor": "r.nps <= 6"}
MAX_ROWS = 500


@dataclass(frozen=True)
class VoicePage:
    verbatims: pd.DataFrame
    total_matching: int
    themes: pd.DataFrame
    query: store.Query


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@store.memoized
def page_data(con: duckdb.DuckDBPyConnection, filters: Filters, *, search: str = "", group: str | None = None,
              touchpoint: str | None = None, min_score: int = 0, max_score: int = 10,
              limit: int = 200) -> VoicePage:
    """Verbatims matching the filters (newest first, at most ``limit``), and theme counts by group."""
    where, params = filters.where(date_col="r.responded_on", customer_id_col="r.customer_id",
                                  department_col="r.department")
    parts = [where, "r.verbatim IS NOT NULL", "coalesce(r.nps, 5) BETWEEN $min_score AND $max_score"]
    params.update({"min_score": int(min_score), "max_score": int(max_score)})
    if search.strip():
        parts.append("r.verbatim ILIKE $pattern ESCAPE '\\'")
        params["pattern"] = f"%{_escape_like(search.strip()[:200])}%"
    if group:
        if group not in GROUPS:
            raise ValueError(f"group must be one of {', '.join(GROUPS)}")
        parts.append(GROUPS[group])
    if touchpoint:
        parts.append("coalesce(r.touchpoint, '(relationship)') = $touchpoint")
        params["touchpoint"] = touchpoint
    cond = " AND ".join(parts)
    limit = max(1, min(int(limit), MAX_ROWS))
    if theme_store.lean(con):
        # the kept run's verbatims, newest first (vid), with their filter columns: the top ``limit``
        # and the counts read one narrow table, never the survey joined to the customers
        where, lparams = theme_lean.cond(filters)
        lcond = " AND ".join([where, *(p.replace("r.", "x.") for p in parts[1:])])
        lparams.update({k: v for k, v in params.items() if k not in lparams})
        q = store.Query("verbatims", f"""
SELECT x.responded_on, x.nps, x.csat, x.touchpoint, x.segment, x.region, x.imported AS theme, x.verbatim
FROM theme_verbatims x WHERE {lcond} ORDER BY x.vid LIMIT {limit}""", lparams)
        df = store.run(con, q)
        themes = store.run(con, store.Query("themes", f"""
SELECT coalesce(x.imported, '(no theme)') AS theme,
       count(*) FILTER (WHERE x.nps >= 9) AS promoters, count(*) FILTER (WHERE x.nps BETWEEN 7 AND 8) AS passives,
       count(*) FILTER (WHERE x.nps <= 6) AS detractors, count(*) AS mentions
FROM theme_verbatims x WHERE {lcond} GROUP BY 1 ORDER BY mentions DESC, 1""", lparams))
        return VoicePage(df, int(themes["mentions"].sum()), themes, q)
    # newest first: pick the rows from the responses alone, then look up segment and region for them
    q = store.Query("verbatims", f"""
SELECT v.responded_on, v.nps, v.csat, v.touchpoint, c.segment, c.region, v.theme, v.verbatim
FROM (SELECT r.response_id, r.customer_id, r.responded_on, r.nps, r.csat,
             coalesce(r.touchpoint, '(relationship)') AS touchpoint, r.theme, r.verbatim
      FROM survey_responses r WHERE {cond}
      ORDER BY r.responded_on DESC, r.response_id LIMIT {limit}) v
LEFT JOIN customers c ON c.customer_id = v.customer_id
ORDER BY v.responded_on DESC, v.response_id""", params)
    df = store.run(con, q)
    themes = store.run(con, store.Query("themes", f"""
SELECT coalesce(r.theme, '(no theme)') AS theme,
       count(*) FILTER (WHERE r.nps >= 9) AS promoters, count(*) FILTER (WHERE r.nps BETWEEN 7 AND 8) AS passives,
       count(*) FILTER (WHERE r.nps <= 6) AS detractors, count(*) AS mentions
FROM survey_responses r
WHERE {cond} GROUP BY 1 ORDER BY mentions DESC, 1""", params))
    total = int(themes["mentions"].sum())  # every matching verbatim falls in exactly one theme row
    return VoicePage(df, total, themes, q)


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
def themes_data(con: duckdb.DuckDBPyConnection, filters: Filters, *, theme: str | None = None,
                alpha: float = 0.05) -> VoiceThemes:
    """:func:`gather_themes`, its cost result carrying every query the themes part ran (its "How
    was this computed?": the kept run's results, sums or assignments read, or the verbatims
    classified on the fly)."""
    with store.recorded() as ran:
        out = gather_themes(con, filters, theme=theme, alpha=alpha)
    return dataclasses.replace(out, cost=dataclasses.replace(out.cost, queries=store.distinct((*out.cost.queries, *ran))))


def gather_themes(con: duckdb.DuckDBPyConnection, filters: Filters, *, theme: str | None = None,
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
    lean = current and theme_lean.present(con)
    if current:
        cb = dict(run.codebook)
        if summaries.unfiltered(filters) and alpha == 0.05 and filters.min_n == DEFAULT_MIN_N:
            kept = theme_store.kept_results(con)
            frames = {}
        elif summaries.unfiltered(filters):
            frames = theme_store.kept_sums(con, run)
        elif lean:
            frames = theme_lean.aggregate(con, filters)
            frames.update(theme_lean.feelings(con, filters))
        else:
            prefix, params = theme_store.kept_prefix(filters, con)
            frames = theme_sums.aggregate(con, prefix, params, filters)
            frames.update(theme_store.feelings(con, prefix, params))
    else:
        cb = dict(saved) if saved else (dict(run.codebook) if run is not None else {})
        frames = theme_cost.frames_for(con, filters, cb) if cb else {}
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
    if lean:
        imported = theme_lean.imported(con, filters)
    else:
        cond, params = themes._where(filters)
        imported = store.scalar(con, f"SELECT count(*) FROM survey_responses r WHERE {cond} AND r.theme IS NOT NULL",
                                params)
    if imported:
        source += f"; {imported:,} verbatims keep their imported theme"
    empty = {"mentions": pd.DataFrame(columns=["verbatims", "theme", "mentions"]), "n_all": pd.DataFrame(),
             "nps": pd.DataFrame(columns=["theme", "d"]), "churn": pd.DataFrame(columns=["theme"])}
    if kept is not None:
        c = theme_cost.table({}, cb, filters, alpha=alpha, kept=kept["cost"])
        tr, f = kept["trend"], {"sentiment": kept["sentiment"], "emotions": kept["emotions"]}
    else:
        c = theme_cost.table(frames if "mentions" in frames else empty, cb, filters, alpha=alpha)
        tr = theme_sums.trend_table(frames["trend"], alpha) if "trend" in frames else pd.DataFrame()
        f = theme_sums.feelings_tables(frames, alpha)
    drill = theme_cost.verbatims(con, filters, cb, theme, kept=current) if theme else pd.DataFrame()
    disc = run.discovery if run is not None else None
    if disc is not None:
        notes += list(disc.warnings)
    return VoiceThemes(source, version, cb, disc, c, tr, f["sentiment"], f["emotions"], drill,
                       kept=current, notes=tuple(notes))
