"""The customer's voice: verbatims browsed and searched by group, score and touchpoint.

Search terms are bound parameters (``ILIKE $pattern``) and results are capped; the text is
returned as data and every page shows it as plain text, never as HTML.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from cxmetrics import store
from cxmetrics.core import lazy
from cxmetrics.core.filters import Filters

pd = lazy.module("pandas")

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
