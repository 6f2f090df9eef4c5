"""AppTest for the app shell and the Data page."""

from __future__ import annotations

import pytest

from cxmetrics import store


@pytest.fixture
def app(writable_db, make_app):
    return make_app(writable_db, page="pages/11_data.py")


def test_app_opens_on_data_page_without_exceptions(app):
    assert not app.exception, app.exception
    assert app.title[0].value == "Data"
    rows = app.dataframe[0].value
    assert set(rows["table"]) >= {"customers", "survey_responses", "complaints"}
    assert (rows["rows"] > 0).all()


def test_app_builds_demo_when_database_missing(tmp_path, make_app):
    path = tmp_path / "fresh.duckdb"
    at = make_app(path, timeout=180, page="pages/11_data.py")
    assert not at.exception, at.exception
    assert path.exists()
    assert any("demo company" in s.value for s in at.success)


def test_filters_go_to_the_url(app):
    app.sidebar.multiselect(key="flt_segments").select("smb").run()
    assert not app.exception
    assert app.query_params.get("segment") in ("smb", ["smb"])  # AppTest gives single values as str


def test_non_analyst_cannot_upload(app):
    app.sidebar.selectbox(key="role").select("executive").run()
    assert not app.exception
    assert not app.get("file_uploader")
    assert any("Only the CX analyst" in i.value for i in app.info)


def test_counts_unchanged_without_confirmation(app, writable_db):
    with store.connect(str(writable_db)) as con:
        before = store.table_overview(con)["rows"].tolist()
    assert app.button(key="FormSubmitter:data_upload-Validate")
    app.button(key="FormSubmitter:data_upload-Validate").click().run()
    assert any("Choose a file" in w.value for w in app.warning)
    with store.connect(str(writable_db)) as con:
        assert store.table_overview(con)["rows"].tolist() == before
