"""Roles, what each may do, and the dashboard's pages as menu entries (pure data, no Streamlit).

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
    """One dashboard page: its file under ``pages/``, title, icon and the roles that see it (what
    the page computes is in :data:`cxmetrics.views.PAGES`, above the metrics that core cannot import)."""

    path: str
    title: str
    icon: str
    roles: tuple[str, ...] = ROLES
    headline: str = ""  # text of the page's headline element (checked by browser tests)


ALL = ROLES
PAGES: list[PageSpec] = [
    PageSpec("pages/01_executive_summary.py", "Executive summary", ":material/dashboard:",
             ("executive", "finance", "analyst"), headline="Executive summary"),
    PageSpec("pages/02_nps_drivers.py", "NPS & drivers", ":material/speed:", ALL, headline="NPS & drivers"),
    PageSpec("pages/03_customer_voice.py", "Customer voice", ":material/forum:", ALL, headline="Customer voice"),
    PageSpec("pages/04_churn_retention.py", "Churn & retention", ":material/trending_down:",
             ("executive", "finance", "analyst"), headline="Churn & retention"),
    PageSpec("pages/05_customer_value.py", "Customer value", ":material/paid:", ("executive", "finance", "analyst"),
             headline="Customer value"),
    PageSpec("pages/06_department.py", "Department", ":material/groups:", ALL, headline="Department"),
    PageSpec("pages/07_alignment.py", "KPI alignment", ":material/rule:", ("executive", "finance", "analyst"),
             headline="KPI alignment"),
    PageSpec("pages/08_complaints.py", "Complaints & closed loop", ":material/support_agent:", ALL,
             headline="Complaints & closed loop"),
    PageSpec("pages/09_initiatives.py", "Initiatives & impact", ":material/rocket_launch:", ALL,
             headline="Initiatives & impact"),
    PageSpec("pages/10_finance_review.py", "Finance review", ":material/account_balance:",
             ("finance", "executive", "analyst"), headline="Finance review"),
    PageSpec("pages/11_data.py", "Data", ":material/database:", ("analyst", "finance", "executive"),
             headline="Data"),
]


def pages_for(role: str) -> list[PageSpec]:
    """The pages a role may open, in menu order (fails closed for an unknown role)."""
    return [p for p in sorted(PAGES, key=lambda p: p.path) if role in p.roles]
