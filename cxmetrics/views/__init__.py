"""Views: what each dashboard page shows, one module per page, and the page registry.

Each module holds its page's dataclass (``ChurnPage`` …), ``page_data(con, filters, **options)``
returning it, and the helpers only that page needs; every figure in it comes from the metric
modules, which return ``Result``\\ s and know nothing of pages. :data:`PAGES` maps each page of
:data:`cxmetrics.core.roles.PAGES` (by its file under ``pages/``) to its data function: the
benchmark times it, the tests check scopes and filters through it, the deck reuses it. The
roles registry stays in ``core`` (the app's menu needs no metric); this one adds what the page
computes.
"""

from __future__ import annotations

from collections.abc import Callable

from cxmetrics.core import roles
from cxmetrics.views import (
    alignment,
    churn,
    complaints,
    data,
    department,
    executive,
    finance,
    initiatives,
    nps_page,
    value,
    voice,
)

#: page file (``roles.PageSpec.path``) -> ``fn(con, filters, **options)`` computing everything it shows
PAGES: dict[str, Callable] = {
    "pages/01_executive_summary.py": executive.page_data,
    "pages/02_nps_drivers.py": nps_page.page_data,
    "pages/03_customer_voice.py": voice.page_data,
    "pages/04_churn_retention.py": churn.page_data,
    "pages/05_customer_value.py": value.page_data,
    "pages/06_department.py": department.page_data,
    "pages/07_alignment.py": alignment.page_data,
    "pages/08_complaints.py": complaints.page_data,
    "pages/09_initiatives.py": initiatives.page_data,
    "pages/10_finance_review.py": finance.page_data,
    "pages/11_data.py": data.page_data,
}


#: Pages that call more data functions on load than their :data:`PAGES` one (each ``fn(con, filters)``,
#: in the order the page calls them after it): the bench times the whole page.
ALSO: dict[str, tuple[Callable, ...]] = {
    "pages/01_executive_summary.py": (executive.moved_data,),
    "pages/03_customer_voice.py": (voice.themes_data,),
}


def calls_for(page: roles.PageSpec | str) -> tuple[Callable, ...]:
    """Every data function a page calls on load, its :data:`PAGES` one first.

    >>> [f.__name__ for f in calls_for("pages/03_customer_voice.py")]
    ['page_data', 'themes_data']
    """
    path = page.path if isinstance(page, roles.PageSpec) else page
    return (data_for(path), *ALSO.get(path, ()))


def data_for(page: roles.PageSpec | str) -> Callable:
    """The data function of a page (its :class:`~cxmetrics.core.roles.PageSpec` or its path).

    >>> data_for("pages/04_churn_retention.py") is churn.page_data
    True
    """
    path = page.path if isinstance(page, roles.PageSpec) else page
    try:
        return PAGES[path]
    except KeyError:
        raise KeyError(f"no page {path!r} in cxmetrics.views.PAGES") from None
