"""Shared fixtures: one demo database per test session, copied when a test needs to write."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cxmetrics import store
from cxmetrics.registers import demo

#: Size of the session demo company: big enough for the planted truths to be recovered.
DEMO_CUSTOMERS = 8_000
DEMO_SEED = 7


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory) -> Path:
    """A read-only demo database built once per session. Do not write to it: use ``writable_db``."""
    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    demo.build(str(path), customers=DEMO_CUSTOMERS, seed=DEMO_SEED)
    return path


@pytest.fixture(scope="session")
def demo_frames():
    """The generated frames (with the data-dependent ``truth``) behind ``demo_db``."""
    return demo.generate(DEMO_CUSTOMERS, DEMO_SEED)


@pytest.fixture
def writable_db(demo_db, tmp_path) -> Path:
    """A private copy of the demo database that a test may change."""
    path = tmp_path / "copy.duckdb"
    shutil.copy(demo_db, path)
    return path


@pytest.fixture
def con(demo_db):
    """A read-only connection to the session demo database."""
    with store.connect(str(demo_db)) as c:
        yield c

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app.py"


@pytest.fixture
def make_app(monkeypatch):
    """Factory for an AppTest of ``app.py`` on a given database, with caches cleared after.

    AppTest re-detects a ``pages/`` folder on every run and then takes the legacy multipage path,
    which skips ``app.py`` after the first run. The real server clears that flag once
    ``st.navigation`` runs; we do the same here so AppTest behaves like the server.
    """
    import streamlit as st
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.testing.v1 import AppTest

    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)

    def factory(db: Path, *, role: str | None = None, page: str | None = None, timeout: int = 90,
                query: dict | None = None) -> AppTest:
        monkeypatch.setenv("CX_DB", str(db))
        at = AppTest.from_file(str(APP), default_timeout=timeout)
        if role:
            at.session_state["role"] = role
        for k, v in (query or {}).items():
            at.query_params[k] = v
        at.run()
        if page:
            at.switch_page(page).run()
        return at

    st.cache_data.clear()
    yield factory
    st.cache_data.clear()


@pytest.fixture(scope="session")
def small_db(tmp_path_factory) -> Path:
    """A tiny demo company (300 customers) for import and CLI tests; copy it before writing."""
    path = tmp_path_factory.mktemp("small") / "small.duckdb"
    demo.build(str(path), customers=300, seed=3)
    return path


@pytest.fixture
def small_copy(small_db, tmp_path) -> Path:
    path = tmp_path / "small_copy.duckdb"
    shutil.copy(small_db, path)
    return path


def content_digest(db: Path) -> dict[str, str]:
    """md5 of every contract table's sorted content and of the data version: equal digests mean
    equal content, whatever DuckDB's file layout."""
    from cxmetrics.store import schema

    out = {}
    with store.connect(str(db)) as c:
        for name, t in schema.TABLES.items():
            cols = ", ".join(f'"{x}"' for x in t.names)
            out[name] = c.execute(
                f'SELECT count(*) || \':\' || coalesce(md5(string_agg(CAST(({cols}) AS VARCHAR), \'|\' '
                f'ORDER BY CAST(({cols}) AS VARCHAR))), \'\') FROM "{name}"').fetchone()[0]
        out["data_version"] = str(store.data_version(c))
    return out


@pytest.fixture
def digest():
    """The :func:`content_digest` function, for tests that check a database is unchanged."""
    return content_digest
