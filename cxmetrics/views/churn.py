"""The "Churn & retention" page: what it shows, assembled from the churn and retention metrics."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from cxmetrics import store
from cxmetrics.core.filters import Filters
from cxmetrics.core.results import Result
from cxmetrics.metrics.churn import churn_by, default_landmark, hazard_ratios, survival_curves
from cxmetrics.metrics.retention import churn_rate_by_period, cohort_retention


@dataclass(frozen=True)
class ChurnPage:
    hazard: Result
    survival: Result
    by_nps: Result
    by_segment: Result
    by_complaints: Result
    by_month: Result
    cohorts: Result


@store.memoized
def page_data(con: duckdb.DuckDBPyConnection, filters: Filters) -> ChurnPage:
    """Everything the "Churn & retention" page shows."""
    L = default_landmark(con, filters)
    return ChurnPage(hazard=hazard_ratios(con, filters, landmark=L), survival=survival_curves(con, filters, landmark=L),
                     by_nps=churn_by(con, filters, by="nps_group", landmark=L),
                     by_segment=churn_by(con, filters, by="segment", landmark=L),
                     by_complaints=churn_by(con, filters, by="complaint_history", landmark=L),
                     by_month=churn_rate_by_period(con, filters), cohorts=cohort_retention(con, filters))
