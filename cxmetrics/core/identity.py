"""Who a logged-in person is allowed to be: a mapping file from e-mail to role and departments.

With Streamlit's OIDC login configured (an ``[auth]`` section in ``.streamlit/secrets.toml``),
the app takes the user's e-mail from ``st.user`` and resolves it here. The mapping is a TOML file
(``CX_ROLE_MAP``, default ``.streamlit/roles.toml``)::

    [users."ana@example.com"]
    role = "analyst"

    [users."bo@example.com"]
    role = "department"
    departments = ["billing"]

    [domains."example.com"]          # anyone else at the domain
    role = "executive"

Resolution fails closed: an unknown person, an unknown role, or a department role without a
department gets no role at all (``None``), and the app shows no page.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from cxmetrics.core.filters import Scope
from cxmetrics.core.roles import ROLES

DEFAULT_MAP = Path(__file__).resolve().parents[2] / ".streamlit" / "roles.toml"


class MappingError(ValueError):
    """The mapping file is missing or invalid (the message names the entry)."""


def map_path() -> Path:
    return Path(os.environ.get("CX_ROLE_MAP") or DEFAULT_MAP)


def load(path: str | os.PathLike | None = None) -> dict:
    """Read and validate the mapping file."""
    p = Path(path) if path else map_path()
    if not p.exists():
        raise MappingError(f"no role mapping file at {p}: every login is refused until one exists")
    try:
        doc = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{p} is not valid TOML: {exc}") from None
    for section in ("users", "domains"):
        for who, entry in doc.get(section, {}).items():
            if entry.get("role") not in ROLES:
                raise MappingError(f"{section}.{who}: role must be one of {', '.join(ROLES)}")
            deps = entry.get("departments", [])
            if not isinstance(deps, list) or not all(isinstance(d, str) and d for d in deps):
                raise MappingError(f"{section}.{who}: departments must be a list of names")
            if entry["role"] == "department" and not deps:
                raise MappingError(f"{section}.{who}: a department role needs at least one department")
    return doc


def resolve(email: str | None, mapping: dict) -> Scope | None:
    """The scope for ``email`` under ``mapping``; None when the person may see nothing."""
    if not email or "@" not in email:
        return None
    email = email.strip().lower()
    users = {k.lower(): v for k, v in mapping.get("users", {}).items()}
    domains = {k.lower(): v for k, v in mapping.get("domains", {}).items()}
    entry = users.get(email) or domains.get(email.rsplit("@", 1)[1])
    if not entry or entry.get("role") not in ROLES:
        return None
    role = entry["role"]
    departments = tuple(entry.get("departments", ()))
    if role == "department":
        if not departments:
            return None
        return Scope(role=role, departments=departments, user=email)
    return Scope(role=role, departments=None, user=email)
