"""Finance assumptions: the values every money figure depends on, with their provenance.

Metrics read assumptions through :func:`current` and record :meth:`Assumption.cite` on their
results, so every figure states which assumption versions it used.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb


@dataclass(frozen=True)
class Assumption:
    key: str
    value: float
    unit: str
    source: str | None = None
    updated_by: str | None = None
    updated_on: dt.date | None = None
    version: int = 1

    def cite(self) -> str:
        """E.g. ``"0.35 share (v1, finance, 2026-09-30)"``."""
        who = ", ".join(str(x) for x in (self.updated_by, self.updated_on) if x)
        return f"{self.value:g} {self.unit} (v{self.version}{', ' + who if who else ''})"


class MissingAssumption(KeyError):
    def __str__(self) -> str:
        return f"assumption {self.args[0]!r} is not set: add it on the Finance review page or import assumptions"


def current(con: duckdb.DuckDBPyConnection) -> dict[str, Assumption]:
    """All current assumptions by key."""
    rows = con.execute(
        "SELECT key, value, unit, source, updated_by, updated_on FROM assumptions ORDER BY key"
    ).fetchall()
    return {r[0]: Assumption(*r) for r in rows}


def get(con: duckdb.DuckDBPyConnection, key: str) -> Assumption:
    found = current(con).get(key)
    if found is None:
        raise MissingAssumption(key)
    return found


def cite(used: dict[str, Assumption]) -> dict[str, str]:
    """The ``assumptions`` dict to put on a result: key -> cited value and version."""
    return {k: a.cite() for k, a in used.items()}
