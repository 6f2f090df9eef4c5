"""A department's page: its KPIs against customer expectation, its NPS, complaints and initiatives.

The department's own view is the caller's scope narrowed to that department, so a department
user can only ever open their own department (a restricted scope that does not include the
department gets nothing), and the same numbers come from the same metric functions as elsewhere.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import duckdb

from cxmetrics import store
from cxmetrics.core import lazy
from cxmetrics.core.filters import Filters, Scope
from cxmetrics.core.results import Result
from cxmetrics.metrics import alignment, complaints, impact, nps, scores
from cxmetrics.store import summaries

pd = lazy.module("pandas")


def departments(con: duckdb.DuckDBPyConnection, filters: Filters) -> list[str]:
    all_ = [r[0] for r in store.rows(con, store.Query("departments", "SELECT department FROM departments ORDER BY 1"))]
    if filters.scope.restricted:
        return [d for d in all_ if d in (filters.scope.departments or ())]
    return all_


def narrowed(filters: Filters, department: str) -> Filters | None:
    """The filters with the scope narrowed to one department, or None when the caller may not see it."""
    if filters.scope.restricted and department not in (filters.scope.departments or ()):
        return None
    return filters.with_(scope=Scope(role=filters.scope.role, departments=(department,), user=filters.scope.user))


@dataclass(frozen=True)
class DepartmentPage:
    department: str
    leader: str | None
    ambassador: str | None
    alignment: Result
    kpi_trend: pd.DataFrame
    nps_by_touchpoint: Result
    csat_by_touchpoint: Result
    complaints: Result
    initiatives: pd.DataFrame


def kpi_trend(con: duckdb.DuckDBPyConnection, filters: Filters, department: str) -> store.Query:
    """The department's KPIs by month (their charts)."""
    where, params = filters.where(date_col="o.observed_on", department_col="k.department", customers=False)
    return summaries.query(con, "kpi_trend", f"""
SELECT o.kpi_id, k.name, k.unit, k.target, date_trunc('month', o.observed_on) AS month,
       sum(o.s_value) / sum(o.n_value) AS value, CAST(sum(o.n) AS BIGINT) AS n
FROM {{summary_kpi_daily}} o JOIN kpis k USING (kpi_id)
WHERE k.department = $dept AND {where} GROUP BY ALL ORDER BY 1, 5""", {**params, "dept": department})


@store.memoized
def page_data(con: duckdb.DuckDBPyConnection, filters: Filters, *, department: str | None = None) -> DepartmentPage | None:
    """Everything the department page shows, or None when the caller may not see the department."""
    allowed = departments(con, filters)
    department = department or (allowed[0] if allowed else None)
    f = narrowed(filters, department) if department else None
    if f is None:
        return None
    found = store.rows(con, store.Query("department_people", "SELECT leader, ambassador FROM departments "
                                                              "WHERE department = $d", {"d": department}))
    row = found[0] if found else None
    card, trend = alignment.scorecard(con, f, department=department), kpi_trend(con, f, department)
    return DepartmentPage(
        department=department, leader=row[0] if row else None, ambassador=row[1] if row else None,
        # the KPIs' section shows their charts beside the scorecard: its SQL too
        alignment=dataclasses.replace(card, queries=(*card.queries, trend)),
        kpi_trend=store.run(con, trend),
        nps_by_touchpoint=nps.by(con, f, dim="touchpoint", survey="transactional"),
        csat_by_touchpoint=scores.score(con, f, metric="csat", dim="touchpoint"),
        complaints=complaints.volume(con, f, by="category"),
        initiatives=impact.summary_table(impact.all_impacts(con, f)),
    )
