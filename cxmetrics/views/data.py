"""The "Data" page: every contract table's row count and date coverage, and the import history."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from cxmetrics import store
from cxmetrics.core import lazy
from cxmetrics.core.filters import Filters

pd = lazy.module("pandas")


@dataclass(frozen=True)
class DataPage:
    overview: pd.DataFrame
    history: pd.DataFrame


@store.memoized
def page_data(con: duckdb.DuckDBPyConnection, filters: Filters | None = None) -> DataPage:
    """Everything the Data page shows: table overview and import history.

    Store-wide counts are not department rows, but they are not a department's business either:
    a restricted scope gets empty frames (fail closed)."""
    overview, history = store.table_overview(con), store.import_history(con)
    if filters is not None and filters.scope.restricted:
        return DataPage(overview=overview.iloc[0:0], history=history.iloc[0:0])
    return DataPage(overview=overview, history=history)
