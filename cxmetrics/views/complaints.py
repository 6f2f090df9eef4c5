"""The "Complaints & closed loop" page: what it shows, assembled from the complaint metrics."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from cxmetrics import store
from cxmetrics.core.filters import Filters
from cxmetrics.core.results import Estimate, Result
from cxmetrics.metrics.complaints import (
    callbacks,
    churn_uplift,
    cost_by_month,
    detractor_followup,
    pareto,
    recontact,
    resolution,
    volume,
)


@dataclass(frozen=True)
class ComplaintsPage:
    pareto: Result
    by_month: Result
    by_channel: Result
    resolution: Result
    recontact: Estimate
    churn_uplift: Result
    cost: Result
    callbacks_dept: Result
    callbacks_month: Result
    followup: Result


@store.memoized
def page_data(con: duckdb.DuckDBPyConnection, filters: Filters, *, followup_days: int = 7) -> ComplaintsPage:
    """Everything the "Complaints & closed loop" page shows."""
    return ComplaintsPage(
        pareto=pareto(con, filters), by_month=volume(con, filters, by="month"),
        by_channel=volume(con, filters, by="channel"), resolution=resolution(con, filters),
        recontact=recontact(con, filters), churn_uplift=churn_uplift(con, filters), cost=cost_by_month(con, filters),
        callbacks_dept=callbacks(con, filters, by="department"), callbacks_month=callbacks(con, filters, by="month"),
        followup=detractor_followup(con, filters, within_days=followup_days))
