"""The "Customer value" page: what it shows, assembled from the CLV, BTYD and wallet-share metrics."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from cxmetrics import store
from cxmetrics.core.filters import Filters
from cxmetrics.core.results import Estimate, Result
from cxmetrics.metrics import btyd_checks, wallet
from cxmetrics.metrics.clv import clv_by_group, promoter_value


@dataclass(frozen=True)
class ValuePage:
    clv: Result
    clv_by_segment: Result
    promoter_value: Estimate
    btyd: Result
    wallet: Result
    wallet_relation: Estimate


@store.memoized
def page_data(con: duckdb.DuckDBPyConnection, filters: Filters, *, moved: int = 1000) -> ValuePage:
    """Everything the "Customer value" page shows."""
    c = clv_by_group(con, filters)
    strata = clv_by_group(con, filters, by_segment=True, by_tenure=True)
    return ValuePage(clv=c, clv_by_segment=clv_by_group(con, filters, by_segment=True),
                     promoter_value=promoter_value(c, strata=strata, moved=moved), btyd=btyd_checks.non_contractual_value(con, filters),
                     wallet=wallet.by_group(con, filters), wallet_relation=wallet.nps_relation(con, filters))
