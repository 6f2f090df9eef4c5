"""Summary tables: results of the heaviest shared sub-queries, materialised with each data version.

Several pages start from the same customer-level table, the churn landmark base ``b`` of
:mod:`cxmetrics.churn` (each contractual customer active on the landmark date with their NPS
group, CSAT, complaint history and tenure before it, and their churn event, exposure and 12-month
outcome after it). Built from the raw tables it joins a million customers to ten million survey
responses and two million complaints, every time a page asks. It is a pure function of the data,
so it is computed once per data version, inside the transaction that changes the data
(:func:`cxmetrics.store.bump_version` calls :func:`refresh`), and stored as ``summary_landmark``.

A query uses the summary only when it is exactly what the raw query would compute: the summary
was built at the current data version, for the default landmark (no start-date filter) and the
default end (no end-date filter). Segment, region and department-scope filters still apply, on
the summary's rows. Anything else (a date filter, a file older than this module) runs the raw
query; the results are the same, only slower. ``tests/test_summaries.py`` checks both paths give
identical figures, and that the summary follows every kind of write.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import duckdb

LANDMARK_TABLE = "summary_landmark"
_META_KEY = "summary_landmark"


@dataclass(frozen=True)
class LandmarkSummary:
    landmark: dt.date
    end: dt.date
    version: int


def refresh(con: duckdb.DuckDBPyConnection, version: int) -> None:
    """Rebuild the summaries for data version ``version`` (call inside the writing transaction)."""
    from . import churn
    from .filters import Filters

    landmark = churn.default_landmark(con, Filters())
    end = con.execute("SELECT max(occurred_on) FROM transactions").fetchone()[0]
    q = churn.raw_base(Filters(), landmark, "SELECT * FROM b", "summary_landmark")
    con.execute(f"CREATE OR REPLACE TABLE {LANDMARK_TABLE} AS {q.sql}", q.params)  # constant identifier
    info = {"landmark": landmark.isoformat(), "end": end.isoformat() if end else None, "version": version}
    con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [_META_KEY, json.dumps(info)])


def landmark(con: duckdb.DuckDBPyConnection) -> LandmarkSummary | None:
    """The landmark summary when it exists and belongs to the current data version, else None."""
    from . import store

    row = con.execute("SELECT value FROM meta WHERE key = ?", [_META_KEY]).fetchone()
    if not row:
        return None
    info = json.loads(row[0])
    if info.get("version") != store.data_version(con) or not info.get("end"):
        return None
    return LandmarkSummary(dt.date.fromisoformat(info["landmark"]), dt.date.fromisoformat(info["end"]),
                           int(info["version"]))
