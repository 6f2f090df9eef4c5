"""The executive summary: one page (and the deck's backbone) built from every module's results."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from cxmetrics import store
from cxmetrics.core.filters import Filters
from cxmetrics.core.results import Estimate, Result
from cxmetrics.metrics import alignment, churn, clv, complaints, drivers, impact, moved, nps, pnl, theme_store, themes
from cxmetrics.views import initiatives


def weighted_text(est: Estimate) -> str:
    """The weighted NPS in a sentence, or why there is none (answers not linked to any customer's
    segment: anonymous responses cannot be post-stratified)."""
    if est.n == 0:
        return ("It cannot be weighted to the customer base: no answer in this selection is linked to a "
                "segment with active customers (anonymous answers, stub customers).")
    return f"Weighted to the customer base it is {est.estimate:.1f} ({est.ci_text()})."


#: The reason shown wherever NPS is needed and no relationship survey response matches.
NO_SURVEY = ("No relationship survey responses in this selection: import customers and survey responses on the "
             "Data page (or widen the filters).")


@dataclass(frozen=True)
class Summary:
    nps: Estimate
    nps_weighted: Estimate
    nps_change: Estimate | None
    nps_change_text: str
    nps_trend: Result
    hazard: Result
    churn_by_nps: Result
    clv: Result
    promoter_value: Estimate
    bridge: pnl.PnL | None
    bridge_error: str
    alignment: Result
    pareto: Result
    drivers: Result
    initiatives: initiatives.ImpactPage

    def findings(self) -> list[tuple[str, str]]:
        """(topic, one-line finding) pairs, generated from the results."""
        if self.nps.n == 0:
            nps_text = NO_SURVEY
        else:
            nps_text = (f"NPS is {self.nps.estimate:.1f} ({self.nps.ci_text()}, n = {self.nps.n:,}); "
                        + weighted_text(self.nps_weighted)[0].lower() + weighted_text(self.nps_weighted)[1:])
        out = [("NPS", nps_text),
               ("Trend", self.nps_change_text),
               ("Churn", churn.describe_hazard(self.hazard)),
               ("Value", clv.describe(self.clv, self.promoter_value))]
        if self.bridge is not None:
            out.append(("P&L", pnl.describe(self.bridge)))
        else:
            out.append(("P&L", self.bridge_error))
        mis = self.alignment.table[self.alignment.table["status"] == "misaligned"] if len(self.alignment.table) else None
        if mis is not None and len(mis):
            out.append(("Alignment", alignment.describe(mis.iloc[0])))
        else:
            out.append(("Alignment", "No KPI target is beyond what customers tolerate."))
        out.append(("Complaints", complaints.describe_pareto(self.pareto)))
        out.append(("Drivers", drivers.describe(self.drivers)))
        out.append(("Initiatives", impact.describe_portfolio(self.initiatives.portfolio)))
        return out


@store.memoized
def page_data(con: duckdb.DuckDBPyConnection, filters: Filters, *, drop_points: float = 5.0, to: str = "passive") -> Summary:
    """Everything the executive summary shows."""
    L = churn.default_landmark(con, filters)
    change, text = nps.last_change(con, filters)
    c = clv.clv_by_group(con, filters, landmark=L)
    try:
        b, err = pnl.detractor_scenario(con, filters, drop_points=drop_points, to=to), ""
    except (ValueError, KeyError) as exc:
        b, err = None, f"The bridge cannot be computed for this selection: {exc}"
    return Summary(
        nps=nps.overall(con, filters), nps_weighted=nps.overall(con, filters, weighted=True), nps_change=change,
        nps_change_text=text, nps_trend=nps.trend(con, filters), hazard=churn.hazard_ratios(con, filters, landmark=L, cox=False),
        churn_by_nps=churn.churn_by(con, filters, landmark=L), clv=c, promoter_value=clv.promoter_value(
            c, strata=clv.clv_by_group(con, filters, by_segment=True, by_tenure=True, landmark=L)),
        bridge=b, bridge_error=err, alignment=alignment.scorecard(con, filters), pareto=complaints.pareto(con, filters),
        drivers=drivers.key_drivers(con, filters), initiatives=initiatives.page_data(con, filters))


@store.memoized
def moved_data(con: duckdb.DuckDBPyConnection, filters: Filters, *, months: int = 3, q: float = 0.05) -> Result:
    """What the Executive summary and the deck show: :func:`cxmetrics.metrics.moved.what_moved` with the
    themes of the kept theme run (:mod:`cxmetrics.metrics.theme_store`, its assignments read as kept
    while it is current), else the saved codebook, else the last run's codebook classifying on the
    fly; never a refit on a page load."""
    run = theme_store.latest(con)
    if theme_store.is_current(con, run):
        return moved.what_moved(con, filters, months=months, q=q, cb=run.codebook, kept=True)
    cb = themes.current(con)[1] or (run.codebook if run is not None else {})
    return moved.what_moved(con, filters, months=months, q=q, cb=cb)
