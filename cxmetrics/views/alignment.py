"""The "KPI alignment" page: every departmental KPI's target against the value beyond which
customers turn into detractors, from :func:`cxmetrics.metrics.alignment.scorecard`."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from cxmetrics import store
from cxmetrics.core.filters import Filters
from cxmetrics.core.results import Result
from cxmetrics.metrics import alignment


@dataclass(frozen=True)
class AlignmentPage:
    scorecard: Result


@store.memoized
def page_data(con: duckdb.DuckDBPyConnection, filters: Filters) -> AlignmentPage:
    """Everything the "KPI alignment" page shows."""
    return AlignmentPage(scorecard=alignment.scorecard(con, filters))


def money_headline(res: Result) -> tuple[str, str, str]:
    """(label, value, caption) for the page's money tile: the segment-adjusted total, the crude beside it."""
    t = res.table
    h = res.extra.get("horizon_years", 5.0)
    label = f"CLV at risk from a year's extra detractors ({h:g}-year horizon)"
    if t.empty or "money_at_risk" not in t or not t["money_at_risk"].notna().any():
        return label, "—", "No money figure: " + (res.warnings[0] if res.warnings else "no KPI with a threshold.")
    adj, crude = float(t["money_at_risk"].sum()), float(t["money_at_risk_crude"].sum())
    return label, f"{adj:,.0f}", (f"Within segment and tenure band (the headline); {crude:,.0f} crude. "
                                  + res.extra.get("mix_note", "") + " Each KPI's interval is in its line below.")
