"""The page registry: every page of the menu has its data function in ``cxmetrics.views``, and page
assembly (a page's dataclass and its ``page_data``) lives in views only, never in a metric module."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from cxmetrics import views
from cxmetrics.core import roles

PACKAGE = Path(views.__file__).resolve().parent.parent


def test_every_page_has_a_data_function_in_views_and_nothing_else_does():
    assert set(views.PAGES) == {p.path for p in roles.PAGES}
    for spec in roles.PAGES:
        fn = views.data_for(spec)
        assert fn is views.data_for(spec.path) is views.PAGES[spec.path]
        assert callable(fn) and fn.__module__.startswith("cxmetrics.views."), (spec.title, fn.__module__)
        assert fn.__name__ == "page_data", (spec.title, fn.__name__)


def test_an_unknown_page_is_refused_by_name():
    with pytest.raises(KeyError, match="pages/99_nowhere.py"):
        views.data_for("pages/99_nowhere.py")


def test_core_names_no_page_function():
    """core cannot import views: its PageSpec holds what the menu needs and no function name."""
    assert "data" not in {f.name for f in dataclasses.fields(roles.PageSpec)}


def _page_assembly(path: Path, root: Path = PACKAGE) -> list[str]:
    """Definitions in ``path`` that assemble a page: a ``page_data`` function or a ``…Page`` class."""
    found = []
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "page_data":
            found.append(f"{path.relative_to(root)}:{node.lineno} def {node.name}")
        elif isinstance(node, ast.ClassDef) and node.name.endswith("Page"):
            found.append(f"{path.relative_to(root)}:{node.lineno} class {node.name}")
    return found


def test_page_assembly_lives_in_views_only():
    outside = [hit for f in sorted(PACKAGE.rglob("*.py")) if f.parent.name != "views"
               for hit in _page_assembly(f)]
    assert not outside, "move page assembly to cxmetrics/views/:\n" + "\n".join(outside)
    inside = [hit for f in sorted((PACKAGE / "views").glob("*.py")) for hit in _page_assembly(f)]
    assert any("churn.py" in h and "ChurnPage" in h for h in inside)  # the check sees definitions


def test_the_check_finds_page_assembly(tmp_path):
    f = PACKAGE / "metrics" / "churn.py"
    src = tmp_path / "m.py"
    src.write_text(f.read_text() + "\n\nclass ChurnPage:\n    pass\n\n\ndef page_data(con, filters):\n    pass\n")
    hits = [h.split(" ", 1)[1] for h in _page_assembly(src, tmp_path)]
    assert hits == ["class ChurnPage", "def page_data"]

