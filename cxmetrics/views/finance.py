"""The "Finance review" page: the bridge with its assumptions, how every figure was computed,
reconciliation, net revenue retention, the audit log and the imports behind the figures."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from cxmetrics import store
from cxmetrics.core import lazy
from cxmetrics.core.filters import Filters
from cxmetrics.core.results import Estimate, Result
from cxmetrics.metrics import churn, clv, nps, pnl, representativeness
from cxmetrics.metrics.finance import audit_log, lineage, net_revenue_retention, reconciliation
from cxmetrics.store import assumptions, schema, summaries

pd = lazy.module("pandas")


@dataclass(frozen=True)
class FinancePage:
    bridge: pnl.PnL | None
    bridge_error: str
    representativeness: Result
    methodology: pd.DataFrame
    audit: pd.DataFrame
    register: pd.DataFrame
    history: pd.DataFrame
    reconciliation: Result
    nrr: Estimate
    imports: pd.DataFrame


def methodology(results: list) -> pd.DataFrame:
    """One row per figure: its method, reference, n and filters (from the result objects)."""
    rows = []
    for r in results:
        head = getattr(r, "headline", ()) or ()
        n = head[0].n if head else getattr(r, "n", None)
        rows.append({"figure": r.label, "method": r.method, "reference": r.reference, "n": n, "filters": r.filters})
    return pd.DataFrame(rows)


@store.memoized
def page_data(con: duckdb.DuckDBPyConnection, filters: Filters, *, drop_points: float = 5.0,
              assumption_ranges: bool = False, distribution: str = "triangular") -> FinancePage:
    """Everything the Finance review page shows (``assumption_ranges``: the bridge interval includes
    finance's assumption ranges by Monte Carlo, :func:`cxmetrics.pnl.detractor_scenario`)."""
    # two of its queries read each customer's latest answer (the bridge's share of wallet and the
    # response rates), which each reads as a subquery on a page with one: here one page table
    summaries.source(con, summaries.LATEST_TABLE, filters)
    try:
        bridge_res, bridge_err = pnl.detractor_scenario(con, filters, drop_points=drop_points,
                                                        assumption_ranges=assumption_ranges,
                                                        distribution=distribution), ""
    except (ValueError, KeyError) as exc:
        bridge_res, bridge_err = None, str(exc)
    rep = representativeness.response_rates(con, filters)
    method_sources = [nps.by(con, filters, dim="segment"), rep, churn.hazard_ratios(con, filters, cox=False),
                      clv.clv_by_group(con, filters, draws=300), reconciliation(con, filters)]
    return FinancePage(
        bridge=bridge_res, bridge_error=bridge_err, representativeness=rep,
        methodology=methodology(method_sources), audit=audit_log(con, filters),
        register=assumptions.register(con),
        history=assumptions.history(con),
        reconciliation=reconciliation(con, filters),
        nrr=net_revenue_retention(con, filters),
        imports=lineage(con, filters, schema.LOAD_ORDER),
    )
