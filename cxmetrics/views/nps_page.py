"""The "NPS & drivers" page: what it shows, assembled from the NPS, drivers and response-rate metrics.

Page assembly lives above the metric modules so that a metric never imports another page's parts
(representativeness builds on nps; this module builds on both).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from cxmetrics import store
from cxmetrics.core.filters import Filters
from cxmetrics.core.results import Estimate, Result
from cxmetrics.metrics import drivers, nps, representativeness, scores


@dataclass(frozen=True)
class NPSPage:
    overall: Estimate
    weighted: Estimate
    last_change: Estimate | None
    last_change_text: str
    trend: Result
    by_segment: Result
    by_region: Result
    by_touchpoint: Result
    csat: Result
    ces: Result
    representativeness: Result
    drivers: Result


@store.memoized
def page_data(con: duckdb.DuckDBPyConnection, filters: Filters, *, period: str = "quarter",
              survey: str = "relationship") -> NPSPage:
    """Everything the "NPS & drivers" page shows."""
    change, text = nps.last_change(con, filters, period=period, survey=survey)
    return NPSPage(
        overall=nps.overall(con, filters, survey=survey),
        weighted=nps.overall(con, filters, survey=survey, weighted=True),
        last_change=change, last_change_text=text,
        trend=nps.trend(con, filters, period=period, survey=survey),
        by_segment=nps.by(con, filters, dim="segment", survey=survey),
        by_region=nps.by(con, filters, dim="region", survey=survey),
        by_touchpoint=nps.by(con, filters, dim="touchpoint", survey="transactional"),
        csat=scores.score(con, filters, metric="csat", dim="touchpoint"),
        ces=scores.score(con, filters, metric="ces", dim="touchpoint"),
        representativeness=representativeness.response_rates(con, filters),
        drivers=drivers.key_drivers(con, filters),
    )
