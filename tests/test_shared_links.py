"""Shared links and store-wide records (issue 19 items 5 and 6): a department named in a link that
is empty, unknown or SQL-looking shows nothing (never the first department); audit and import
rows, which carry no department, are shown to unrestricted roles only; a link's dates outside the
data are moved into its range, and the page says so instead of breaking the session."""

from __future__ import annotations

import pandas as pd
import pytest

from cxmetrics import store, views
from cxmetrics.core.filters import Filters, Scope
from cxmetrics.metrics import finance

HOSTILE_DEPARTMENTS = ["", "nowhere", "billing' OR '1'='1", "Billing", "billing;--"]


@pytest.mark.parametrize("value", HOSTILE_DEPARTMENTS)
def test_a_link_with_a_bad_department_shows_nothing(small_db, make_app, value):
    at = make_app(small_db, query={"role": "department", "department": value}, page="pages/06_department.py")
    assert not at.exception, [e.value for e in at.exception]
    scope = at.session_state["filters"].scope
    assert scope.role == "department" and scope.departments == (), scope
    assert any("not mapped to a department" in i.value for i in at.info)
    assert any("No department is selected" in w.value for w in at.sidebar.warning)
    assert not at.dataframe  # no table at all


def test_a_link_with_a_real_department_shows_that_one(small_db, make_app):
    at = make_app(small_db, query={"role": "department", "department": "billing"}, page="pages/06_department.py")
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["filters"].scope.departments == ("billing",)


def test_audit_and_import_rows_are_for_unrestricted_roles_only(con):
    everyone = views.finance.page_data(con, Filters())
    assert len(everyone.audit) and len(everyone.imports)  # the demo build is audited
    for scope in (Scope("department", ("billing",)), Scope("department", ()), Scope("intern")):
        got = views.finance.page_data(con, Filters(scope=scope))
        assert got.audit.empty and got.imports.empty, scope
        assert list(got.audit.columns) == list(everyone.audit.columns)
        assert finance.lineage(con, Filters(scope=scope), ("complaints",)).empty
    assert len(finance.lineage(con, Filters(), ("complaints",))) == len(store.lineage(con, ("complaints",)))


def _frames(at) -> list[pd.DataFrame]:
    return [d.value for d in at.dataframe if isinstance(d.value, pd.DataFrame)]


def test_how_was_this_computed_shows_no_import_records_to_a_department(small_db, make_app):
    at = make_app(small_db, query={"role": "department", "department": "billing"}, page="pages/08_complaints.py")
    assert not at.exception, [e.value for e in at.exception]
    assert not any("sha256" in f.columns for f in _frames(at))
    assert any("store-wide" in c.value for c in at.caption)
    analyst = make_app(small_db, page="pages/08_complaints.py")
    assert any("sha256" in f.columns for f in _frames(analyst))  # the lineage is there for others


@pytest.mark.parametrize("query, note", [
    ({"from": "1990-01-01", "to": "2999-12-31"}, "outside the data"),
    ({"from": "2999-01-01"}, "outside the data"),
    ({"to": "1900-01-01"}, "outside the data"),
    ({"from": "2024-13-45"}, "not a date"),
])
def test_a_link_with_dates_outside_the_data_is_clamped_and_says_so(small_db, make_app, query, note):
    at = make_app(small_db, query=query)
    assert not at.exception, [e.value for e in at.exception]
    assert any(note in w.value for w in at.sidebar.warning), [w.value for w in at.sidebar.warning]
    with store.connect(str(small_db)) as c:
        lo, hi = c.execute("SELECT min(responded_on), max(responded_on) FROM survey_responses").fetchone()
    f = at.session_state["filters"]
    for d in (f.date_from, f.date_to):
        assert d is None or lo <= d <= hi
    for page in ("pages/02_nps_drivers.py", "pages/08_complaints.py"):  # the session keeps working
        at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])
