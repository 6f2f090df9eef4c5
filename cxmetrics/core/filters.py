"""Filters and the caller's scope, turned into SQL with bound parameters and a readable twin.

Every metric takes a :class:`Filters`. Its :meth:`Filters.where` returns a SQL condition that
uses only named parameters (``$date_from``, ``$segments`` …) and the parameter dict to bind;
values never enter the SQL text. :meth:`Filters.describe` says the same thing in words.

Scope (row-level restriction) fails closed: a restricted scope with no departments matches no
rows at all. See ``Scope`` and ``cxmetrics.roles``.
"""

from __future__ import annotations

import contextvars
import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any

from cxmetrics.core.results import DEFAULT_MIN_N

#: Inside a page's call (:func:`cxmetrics.store.memoized`), the name of the current summary of
#: which customers dealt with which department, when there is one; else the scope's customer set
#: is computed from the responses and complaints (the same set).
CUSTOMER_DEPARTMENTS: contextvars.ContextVar[str | None] = contextvars.ContextVar("cx_customer_departments",
                                                                                  default=None)


@dataclass(frozen=True)
class Scope:
    """Who is asking: their role and, when restricted, the departments they may see.

    ``departments=None`` means unrestricted; an empty tuple means *nothing* (fail closed).
    A user mapped to two departments sees the union of both.
    """

    role: str = "analyst"
    departments: tuple[str, ...] | None = None
    user: str = "local"

    def __post_init__(self) -> None:
        from cxmetrics.core.roles import ROLES

        # fail closed: an unknown or mistyped role, or a department role without departments,
        # sees nothing rather than everything
        if self.role not in ROLES or (self.role == "department" and self.departments is None):
            object.__setattr__(self, "departments", ())
        elif self.departments is not None:
            object.__setattr__(self, "departments", tuple(self.departments))

    @property
    def restricted(self) -> bool:
        return self.departments is not None

    def key(self) -> tuple:
        """Hashable identity for cache keys: results never cross scopes."""
        return (self.role, self.departments, self.user)

    def describe(self) -> str:
        if not self.restricted:
            return f"{self.role}: all departments"
        if not self.departments:
            return f"{self.role}: no department mapping (sees nothing)"
        return f"{self.role}: departments {', '.join(self.departments)}"


UNRESTRICTED = Scope()


@dataclass(frozen=True)
class Filters:
    """Global filters from the sidebar, URL or CLI, plus the caller's scope."""

    date_from: dt.date | None = None
    date_to: dt.date | None = None
    segments: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    scope: Scope = field(default_factory=Scope)
    min_n: int = DEFAULT_MIN_N

    def with_(self, **changes: Any) -> Filters:
        return replace(self, **changes)

    @property
    def dated(self) -> bool:
        """Whether a date range is set (either end)."""
        return self.date_from is not None or self.date_to is not None

    def undated(self) -> Filters:
        """The same filters without the date range: for figures a range does not narrow.

        >>> f = Filters(date_from=dt.date(2025, 10, 1), segments=("smb",))
        >>> f.dated, f.undated().dated, f.undated() == Filters(segments=("smb",))
        (True, False, True)
        """
        return replace(self, date_from=None, date_to=None)

    def key(self) -> tuple:
        return (self.date_from, self.date_to, self.segments, self.regions, self.scope.key(), self.min_n)

    # ------------------------------------------------------------------ SQL
    def where(
        self,
        *,
        date_col: str | None = None,
        customer: str | None = None,
        department_col: str | None = None,
        customer_id_col: str | None = None,
        dates: bool = True,
        customers: bool = True,
        scope: bool = True,
    ) -> tuple[str, dict[str, Any]]:
        """SQL condition and parameters for these filters.

        Parameters
        ----------
        date_col : column to apply the date range to (e.g. ``r.responded_on``).
        customer : alias of a joined ``customers`` table, for segment and region.
        department_col : the row's department column, for the scope restriction.
        customer_id_col : for tables without a department column, the customer id column: a
            restricted scope then keeps customers who dealt with one of its departments
            (a survey response or complaint attributed to it).
        dates : set False to ignore the date range (e.g. survival needs the full history).
        customers : set False for rows that are not about customers (the KPI catalogue, KPI
            observations, initiatives): segment and region then do not apply.
        scope : set False only where the rows were already restricted to the scope (a relation
            that applies it inside, see :mod:`cxmetrics.relations`); the default restricts, and a
            restriction with nothing to restrict on matches no rows.

        Column names must be literals written in cxmetrics, never user input.
        """
        parts: list[str] = []
        params: dict[str, Any] = {}
        if dates and date_col and self.date_from is not None:
            parts.append(f"{date_col} >= $date_from")
            params["date_from"] = self.date_from
        if dates and date_col and self.date_to is not None:
            parts.append(f"{date_col} <= $date_to")
            params["date_to"] = self.date_to
        if customers and (self.segments or self.regions):
            if customer is None:
                if customer_id_col is None:
                    raise ValueError("segment/region filters need a customers alias or customer id column")
                sub = ["TRUE"]
                if self.segments:
                    sub.append("list_contains($segments, cf.segment)")
                if self.regions:
                    sub.append("list_contains($regions, cf.region)")
                parts.append(
                    f"{customer_id_col} IN (SELECT cf.customer_id FROM customers cf WHERE {' AND '.join(sub)})"
                )
            else:
                if self.segments:
                    parts.append(f"list_contains($segments, {customer}.segment)")
                if self.regions:
                    parts.append(f"list_contains($regions, {customer}.region)")
            if self.segments:
                params["segments"] = list(self.segments)
            if self.regions:
                params["regions"] = list(self.regions)
        if scope and self.scope.restricted:
            if not self.scope.departments:
                parts.append("FALSE")
            elif department_col:
                parts.append(f"list_contains($scope_departments, {department_col})")
                params["scope_departments"] = list(self.scope.departments)
            elif customer_id_col:
                table = CUSTOMER_DEPARTMENTS.get()
                if table:
                    parts.append(f"{customer_id_col} IN (SELECT customer_id FROM {table} "
                                 "WHERE list_contains($scope_departments, department))")
                else:
                    parts.append(
                        f"{customer_id_col} IN (SELECT customer_id FROM survey_responses "
                        "WHERE list_contains($scope_departments, department) "
                        "UNION SELECT customer_id FROM complaints WHERE list_contains($scope_departments, department))"
                    )
                params["scope_departments"] = list(self.scope.departments)
            else:
                parts.append("FALSE")  # nothing to restrict on: fail closed
        return (" AND ".join(parts) if parts else "TRUE"), params

    # ------------------------------------------------------------------ words
    def describe(self) -> str:
        bits = []
        if self.date_from or self.date_to:
            bits.append(f"dates {self.date_from or 'start'} to {self.date_to or 'end'}")
        if self.segments:
            bits.append("segment " + " or ".join(self.segments))
        if self.regions:
            bits.append("region " + " or ".join(self.regions))
        if self.scope.restricted:
            bits.append(self.scope.describe())
        return "; ".join(bits) if bits else "all data"

    def to_dict(self) -> dict[str, Any]:
        return {
            "date_from": self.date_from.isoformat() if self.date_from else None,
            "date_to": self.date_to.isoformat() if self.date_to else None,
            "segments": list(self.segments),
            "regions": list(self.regions),
            "scope": self.scope.describe(),
            "min_n": self.min_n,
        }
