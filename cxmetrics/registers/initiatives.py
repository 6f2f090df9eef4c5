"""The initiative register: validated add and edit, audited (who changed what, before and after)."""

from __future__ import annotations

import datetime as dt
import json
import math

import duckdb

from cxmetrics import store
from cxmetrics.core import roles
from cxmetrics.store import schema

FIELDS = schema.TABLES["initiatives"].names


class InitiativeError(ValueError):
    """An add or edit was refused; the message names the field."""


def validate(con: duckdb.DuckDBPyConnection, record: dict) -> dict:
    """Check a record against the data contract; returns the cleaned record or raises InitiativeError."""
    t = schema.TABLES["initiatives"]
    clean = {}
    for c in t.columns:
        v = record.get(c.name)
        if isinstance(v, str):
            v = v.strip() or None
        if isinstance(v, float) and math.isnan(v):
            v = None
        if v is None:
            if c.required:
                raise InitiativeError(f"{c.name} is required")
            clean[c.name] = None
            continue
        if c.kind == "date":
            if isinstance(v, str):
                try:
                    v = dt.date.fromisoformat(v)
                except ValueError:
                    raise InitiativeError(f"{c.name}: {v!r} is not a date (YYYY-MM-DD)") from None
            elif isinstance(v, dt.datetime) or hasattr(v, "to_pydatetime"):
                v = v.date()
        elif c.kind == "float":
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise InitiativeError(f"{c.name}: {v!r} is not a number") from None
            if not math.isfinite(v) or (c.min is not None and v < c.min):
                raise InitiativeError(f"{c.name} must be a non-negative number")
        else:
            v = str(v)
            if len(v) > c.max_len:
                raise InitiativeError(f"{c.name} is longer than {c.max_len} characters")
            if c.kind != "text" and v.startswith(schema.FORMULA_PREFIXES):
                raise InitiativeError(f"{c.name} may not start with = + - @")
        if c.allowed and v not in c.allowed:
            raise InitiativeError(f"{c.name} must be one of {', '.join(c.allowed)}")
        clean[c.name] = v
    if clean["ended_on"] and clean["ended_on"] < clean["started_on"]:
        raise InitiativeError("ended_on is before started_on")
    if not con.execute("SELECT 1 FROM departments WHERE department = ?", [clean["department"]]).fetchone():
        raise InitiativeError(f"department {clean['department']!r} is not a known department")
    if clean["treated_segment"] and clean["treated_segment"] != "all":
        dim, _, val = clean["treated_segment"].partition("=")
        if dim not in ("region", "segment") or not val:
            raise InitiativeError("treated_segment must be 'all', 'region=…' or 'segment=…'")
    return clean


def save(con: duckdb.DuckDBPyConnection, record: dict, *, actor: str, role: str) -> dict:
    """Add or update an initiative (by initiative_id) in one transaction, with an audit row."""
    if not roles.can(role, "edit_initiatives"):
        store.audit(con, actor=actor, role=role, action="initiative_edit", object=str(record.get("initiative_id")),
                    outcome="refused", detail="role may not edit initiatives")
        raise InitiativeError(f"the {role} role may not edit initiatives")
    clean = validate(con, record)
    before = con.execute("SELECT * FROM initiatives WHERE initiative_id = ?", [clean["initiative_id"]]).df()
    cols = ", ".join(f'"{c}"' for c in FIELDS)
    marks = ", ".join("?" for _ in FIELDS)
    updates = ", ".join(f'"{c}" = excluded."{c}"' for c in FIELDS if c != "initiative_id")
    with store.transaction(con):
        con.execute(f"INSERT INTO initiatives ({cols}) VALUES ({marks}) ON CONFLICT (initiative_id) DO UPDATE SET {updates}",
                    [clean[c] for c in FIELDS])
        store.bump_version(con, ["initiatives"])
        detail = {"before": before.iloc[0].astype(str).to_dict() if len(before) else None,
                  "after": {k: str(v) for k, v in clean.items()}}
        store.audit(con, actor=actor, role=role, action="initiative_edit" if len(before) else "initiative_add",
                    object=clean["initiative_id"], outcome="accepted", detail=json.dumps(detail))
    return clean
