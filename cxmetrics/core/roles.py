"""Roles, what each may do, and the dashboard's page registry (pure data, no Streamlit).

``app.py`` builds ``st.navigation`` from ``PAGES`` filtered by the caller's role, and every
action the app offers is checked with :func:`can` — the query layer additionally restricts rows
through :class:`cxmetrics.filters.Scope`, so hiding a page is never the only protection.
"""

from __future__ import annotations

from dataclasses import dataclass

ROLES = ("executive", "finance", "analyst", "department")
ROLE_LABELS = {
    "executive": "Executive",
    "finance": "Finance reviewer",
    "analyst": "CX analyst",
    "department": "Department",
}

#: action -> roles allowed to perform it
PERMISSIONS: dict[str, frozenset[str]] = {
    "import": frozenset({"analyst"}),
    "import_assumptions": frozenset({"finance"}),
    "edit_assumptions": frozenset({"finance"}),
    "edit_initiatives": frozenset({"analyst"}),
    "edit_codebook": frozenset({"analyst"}),
    "export": frozenset(ROLES),
}


def import_action(table: str) -> str:
    """The permission an import into ``table`` needs: finance assumptions are finance's."""
    return "import_assumptions" if table == "assumptions" else "import"


def can(role: str, action: str) -> bool:
    """Whether ``role`` may perform ``action``; unknown roles and actions may do nothing."""
    return role in PERMISSIONS.get(action, frozenset())


@dataclass(frozen=True)
class PageSpec:
    """One dashboard page: its file under ``pages/``, title, icon and the roles that see it."""

    path: str
    title: str
    icon: str
    roles: tuple[str, ...] = ROLES
    headline: str = ""  # text of the page's headline element (checked by browser tests)
    #: "module:function" computing everything the page shows, as ``fn(con, filters)``; the
    #: benchmark times it, the deck and the CLI reuse it.
    data: str = ""


ALL = ROLES
PAGES: list[PageSpec] = [
    PageSpec("pages/01_executive_summary.py", "Executive summary", ":material/dashboard:",
             ("executive", "finance", "analyst"), headline="Executive summary", data="cxmetrics.views.executive:page_data"),
    PageSpec("pages/02_nps_drivers.py", "NPS & drivers", ":material/speed:", ALL, headline="NPS & drivers",
             data="cxmetrics.views.nps_page:page_data"),
    PageSpec("pages/03_customer_voice.py", "Customer voice", ":material/forum:", ALL, headline="Customer voice",
             data="cxmetrics.metrics.voice:page_data"),
    PageSpec("pages/04_churn_retention.py", "Churn & retention", ":material/trending_down:",
             ("executive", "finance", "analyst"), headline="Churn & retention", data="cxmetrics.metrics.churn:page_data"),
    PageSpec("pages/05_customer_value.py", "Customer value", ":material/paid:", ("executive", "finance", "analyst"),
             headline="Customer value", data="cxmetrics.metrics.clv:page_data"),
    PageSpec("pages/06_department.py", "Department", ":material/groups:", ALL, headline="Department",
             data="cxmetrics.metrics.department:page_data"),
    PageSpec("pages/07_alignment.py", "KPI alignment", ":material/rule:", ("executive", "finance", "analyst"),
             headline="KPI alignment", data="cxmetrics.metrics.alignment:scorecard"),
    PageSpec("pages/08_complaints.py", "Complaints & closed loop", ":material/support_agent:", ALL,
             headline="Complaints & closed loop", data="cxmetrics.metrics.complaints:page_data"),
    PageSpec("pages/09_initiatives.py", "Initiatives & impact", ":material/rocket_launch:", ALL,
             headline="Initiatives & impact", data="cxmetrics.metrics.impact:page_data"),
    PageSpec("pages/10_finance_review.py", "Finance review", ":material/account_balance:",
             ("finance", "executive", "analyst"), headline="Finance review", data="cxmetrics.metrics.finance:page_data"),
    PageSpec("pages/11_data.py", "Data", ":material/database:", ("analyst", "finance", "executive"),
             headline="Data", data="cxmetrics.store:page_data"),
]


def pages_for(role: str) -> list[PageSpec]:
    """The pages a role may open, in menu order (fails closed for an unknown role)."""
    return [p for p in sorted(PAGES, key=lambda p: p.path) if role in p.roles]
