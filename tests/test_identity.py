"""Roles from a login: the mapping file, fail-closed resolution, and the app behind a login."""

from __future__ import annotations

import pytest

from cxmetrics.core import identity, roles
from cxmetrics.core.filters import Scope

MAPPING = """
[users."ana@example.com"]
role = "analyst"

[users."Bo@Example.com"]
role = "department"
departments = ["billing"]

[domains."example.com"]
role = "executive"
"""


@pytest.fixture
def mapping(tmp_path):
    p = tmp_path / "roles.toml"
    p.write_text(MAPPING)
    return identity.load(p)


def test_resolution(mapping):
    assert identity.resolve("ana@example.com", mapping) == Scope("analyst", None, "ana@example.com")
    assert identity.resolve("bo@example.com", mapping) == Scope("department", ("billing",), "bo@example.com")
    assert identity.resolve("zoe@example.com", mapping).role == "executive"  # domain default


@pytest.mark.parametrize("email", [None, "", "nobody", "eve@evil.example", "ana@example.com.evil"])
def test_unknown_people_get_nothing(mapping, email):
    assert identity.resolve(email, mapping) is None


@pytest.mark.parametrize("bad, message", [
    ('[users."a@b.c"]\nrole = "admin"\n', "role must be one of"),
    ('[users."a@b.c"]\nrole = "department"\n', "needs at least one department"),
    ('[users."a@b.c"]\nrole = "department"\ndepartments = "billing"\n', "must be a list"),
    ("not toml [", "not valid TOML"),
])
def test_invalid_mapping_is_refused(tmp_path, bad, message):
    p = tmp_path / "roles.toml"
    p.write_text(bad)
    with pytest.raises(identity.MappingError, match=message):
        identity.load(p)


def test_missing_mapping_is_refused(tmp_path):
    with pytest.raises(identity.MappingError, match="every login is refused"):
        identity.load(tmp_path / "none.toml")


def test_permissions():
    assert roles.can("finance", "edit_assumptions") and not roles.can("analyst", "edit_assumptions")
    assert roles.can("analyst", "import") and not roles.can("finance", "import")
    assert not roles.can("department", "import") and not roles.can("intruder", "export")
    assert [p.title for p in roles.pages_for("intruder")] == []
    dept_pages = {p.title for p in roles.pages_for("department")}
    assert "Finance review" not in dept_pages and "Data" not in dept_pages and "Department" in dept_pages


def test_app_behind_a_login_shows_nothing_before_sign_in(demo_db, make_app, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import APP

    monkeypatch.setenv("CX_DB", str(demo_db))
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32,
                          "client_id": "id", "client_secret": "secret",
                          "server_metadata_url": "https://idp.example/.well-known/openid-configuration"}
    at.run()
    assert not at.exception, at.exception
    assert any("Sign in with your company account" in i.value for i in at.info)
    assert not at.metric and not at.dataframe  # no figure leaks before sign-in
    assert not at.sidebar.selectbox  # and no demo role switcher
