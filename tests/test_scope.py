"""Row-level restriction inside cxmetrics: every page's data, computed for a department scope,
holds only that department's rows; an unmapped department user gets no rows at all."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from cxmetrics import views
from cxmetrics.core import roles
from cxmetrics.core.filters import Filters, Scope
from cxmetrics.core.results import Estimate

OTHERS = ("logistics", "contact_centre", "digital", "sales")


def walk(obj, seen=None, kinds=(pd.DataFrame, Estimate)):
    """Every DataFrame and Estimate (or object of ``kinds``) inside a page's result (dataclasses,
    dicts, lists, Results)."""
    seen = seen if seen is not None else set()
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, kinds):
        yield obj
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            yield from walk(getattr(obj, f.name), seen, kinds)
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from walk(v, seen, kinds)
    elif isinstance(obj, list | tuple):
        for v in obj:
            yield from walk(v, seen, kinds)


def size(res) -> int:
    """How many observations a page's result rests on: its estimates' n (or matching rows)."""
    return sum(e.n or 0 for e in walk(res) if isinstance(e, Estimate)) + getattr(res, "total_matching", 0)


def observations(res) -> int:
    """:func:`size`, plus the linked KPI observations a scorecard rests on."""
    linked = sum(int(f["linked_observations"].sum()) for f in walk(res)
                 if isinstance(f, pd.DataFrame) and "linked_observations" in f.columns)
    return size(res) + linked


def page_fn(spec):
    return views.data_for(spec)


DEPT_PAGES = [p for p in roles.PAGES if "department" in p.roles]


@pytest.mark.parametrize("spec", DEPT_PAGES, ids=[p.title for p in DEPT_PAGES])
def test_department_scope_keeps_only_its_rows(con, spec):
    f = Filters(scope=Scope(role="department", departments=("billing",), user="bo"))
    found = 0
    for item in walk(page_fn(spec)(con, f)):
        if isinstance(item, pd.DataFrame) and "department" in item.columns:
            values = set(item["department"].dropna().astype(str))
            assert values <= {"billing"}, (spec.title, values)
            found += 1
    if not found:  # no department column on this page: its counts must shrink under the scope
        n_scoped, n_all = size(page_fn(spec)(con, f)), size(page_fn(spec)(con, Filters()))
        assert 0 < n_scoped < n_all, (spec.title, n_scoped, n_all)


@pytest.mark.parametrize("spec", roles.PAGES, ids=[p.title for p in roles.PAGES])
def test_unmapped_department_user_sees_no_rows(con, spec):
    f = Filters(scope=Scope(role="department", departments=(), user="nobody"))
    res = page_fn(spec)(con, f)
    assert getattr(res, "total_matching", 0) == 0
    for item in walk(res):
        if isinstance(item, Estimate):
            assert not item.n, (spec.title, item.label, item.n)
        elif "department" in item.columns:
            assert item["department"].dropna().empty, spec.title


ALL_PAGES = list(roles.PAGES)


@pytest.mark.parametrize("spec", ALL_PAGES, ids=[p.title for p in ALL_PAGES])
def test_every_page_takes_segment_and_region_filters(con, spec):
    """The sidebar's segment and region filters are global: every page must accept them, apply
    them where rows belong to customers and rest on no more observations than without them
    (the KPI catalogue and initiative list have no customer and once crashed on them)."""
    fn = page_fn(spec)
    narrowed, everything = observations(fn(con, Filters(segments=("smb",), regions=("north",)))), \
        observations(fn(con, Filters()))
    if spec.title == "Data":  # store-wide table counts: not customers' rows
        assert narrowed == everything
    else:  # one segment in one region of four: far fewer observations (equal would mean ignored)
        assert 0 < narrowed < everything / 2, (spec.title, narrowed, everything)
