"""The commit step: what every write brings up to date inside its own transaction.

The store (bottom layer) knows only that a write moves the data version; it imports no metric
module. This module sits above the metrics and registers, once, with :func:`cxmetrics.store.on_commit`
the step every writer (importer, assumptions, initiatives, finance, demo, a read-write open of an
older file) then runs: the summary tables of :mod:`cxmetrics.summaries`, including the definitions
owned by metric modules (the churn landmark base, RFM) and the kept model fits (Cox, BTYD), which
it registers into the summaries here. The package's ``__init__`` imports this module, so any use
of the store has it wired.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from . import btyd, churn, store, summaries
from .filters import Filters


def landmark_base(landmark: dt.date, end=None) -> store.Query:
    """summary_landmark's definition: the churn landmark base at ``landmark``, with each
    customer's revenue in the 12 months to the last transaction (from summary_customer)."""
    return churn.raw_base(Filters(), landmark, "SELECT b.*, s.rev_12m, s.months_12m FROM b "
                                               f"LEFT JOIN {summaries.CUSTOMER_TABLE} s USING (customer_id)",
                          summaries.LANDMARK_TABLE)


summaries.RELATIONS.update({
    summaries.LANDMARK_TABLE: landmark_base,
    summaries.RFM_TABLE: lambda landmark, end: btyd.rfm_customers(end),
    "landmark": lambda con: churn.default_landmark(con, Filters()),
})
summaries.FITS.update({"cox": churn.default_cox_fit, "btyd": btyd.default_fit})


def commit(con: duckdb.DuckDBPyConnection, version: int, *, previous: int | None = None,
           changed: set[str] | None = None) -> list[str]:
    """Bring the summaries and kept fits to data version ``version`` (inside the writing
    transaction; see :func:`cxmetrics.summaries.refresh`). Returns the names rebuilt."""
    return summaries.refresh(con, version, previous=previous, changed=changed)


commit.stale = summaries.missing  # a read-write open runs the step when a summary is not current
store.on_commit(commit)
