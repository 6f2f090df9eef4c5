"""The "Customer voice" page: verbatims browsed and searched by group, score and touchpoint
(:func:`page_data`), and what the themes cost, how their share moves and how customers feel
(:func:`themes_data`, from :mod:`cxmetrics.metrics.theme_cost`).

Search terms are bound parameters (``ILIKE $pattern``) and results are capped; the text is
returned as data and every page shows it as plain text, never as HTML.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from cxmetrics import store
from cxmetrics.core.filters import Filters
from cxmetrics.core.results import Estimate, Result
from cxmetrics.metrics import theme_cost, themes

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

    @property
    def verbatims(self) -> int:
        return int(self.cost.extra.get("verbatims", 0))

    def top(self, n: int = 5) -> list[str]:
        """The ``n`` most mentioned themes."""
        t = self.cost.table
        return t["theme"].head(n).tolist() if len(t) else []

    def cost_table(self) -> pd.DataFrame:
        """The cost table's columns for the page (every figure beside its interval)."""
        cols = ["theme", "n", "estimate", "ci_low", "ci_high", "nps_mention", "nps_other", "nps_gap",
                "nps_gap_adjusted", "nps_gap_adjusted_ci_low", "nps_gap_adjusted_ci_high", "nps_points_at_stake",
                "nps_points_at_stake_ci_low", "nps_points_at_stake_ci_high", "churn_raised", "churn_other",
                "churn_gap_adjusted", "churn_gap_adjusted_ci_low", "churn_gap_adjusted_ci_high", "small_sample"]
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
                       f"{r['nps_gap_adjusted']:+.1f} points vs the others after segment adjustment "
                       f"(95% CI {r['nps_gap_adjusted_ci_low']:.1f} to {r['nps_gap_adjusted_ci_high']:.1f}); "
                       f"{r['nps_points_at_stake']:.2f} NPS points at stake (95% CI {r['nps_points_at_stake_ci_low']:.2f} "
                       f"to {r['nps_points_at_stake_ci_high']:.2f}).")
        return out


@store.memoized
def themes_data(con: duckdb.DuckDBPyConnection, filters: Filters, *, theme: str | None = None,
              n_themes: int = 12, alpha: float = 0.05) -> VoiceThemes:
    """Everything the themes part of Customer voice shows: the saved codebook (else the discovered
    one), its cost, trend, sentiment and emotion mixes and the drill-down for ``theme``."""
    version, cb = themes.current(con)
    disc = themes.discover(con, filters, n_themes=n_themes)
    if cb:
        source = f"saved codebook v{version}"
    else:
        cb = dict(disc.codebook)
        source = "discovered themes (not saved as a codebook yet)"
    cond, params = themes._where(filters)
    imported = store.scalar(con, f"SELECT count(*) FROM survey_responses r WHERE {cond} AND r.theme IS NOT NULL", params)
    if imported:
        source += f"; {imported:,} verbatims keep their imported theme"
    c = theme_cost.cost(con, filters, cb, alpha=alpha)
    tr = theme_cost.trend(con, filters, cb, alpha=alpha)
    f = theme_cost.feelings(con, filters, alpha=alpha)
    drill = theme_cost.verbatims(con, filters, cb, theme) if theme else pd.DataFrame()
    return VoiceThemes(source, version, cb, disc, c, tr, f["sentiment"], f["emotions"], drill)
