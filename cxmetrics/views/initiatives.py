"""The "Initiatives & impact" page: the register and each initiative's measured impact, assembled
from :mod:`cxmetrics.metrics.impact`."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from cxmetrics import store
from cxmetrics.core import lazy
from cxmetrics.core.filters import Filters
from cxmetrics.metrics.impact import Impact, all_impacts, initiatives_frame, portfolio, summary_table

pd = lazy.module("pandas")


@dataclass(frozen=True)
class ImpactPage:
    initiatives: pd.DataFrame
    impacts: tuple[Impact, ...]
    summary: pd.DataFrame
    portfolio: pd.DataFrame


@store.memoized
def page_data(con: duckdb.DuckDBPyConnection, filters: Filters) -> ImpactPage:
    """Everything the "Initiatives & impact" page shows."""
    imps = all_impacts(con, filters)
    return ImpactPage(initiatives_frame(con, filters), tuple(imps), summary_table(imps), portfolio(imps))
