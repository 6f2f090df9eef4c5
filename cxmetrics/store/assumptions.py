"""Finance assumptions: current values, validated edits, version history and restore.

The ``assumptions`` table holds the current value of each key; ``assumption_history`` keeps every
version (append-only). Metrics read :func:`current` and put :func:`cite` on their results, so
every figure states which assumption versions it used. Only the finance role edits
(:func:`set_value`, :func:`set_range`, :func:`restore` check ``roles.can(role, "edit_assumptions")``).

An assumption may carry a plausible range (``low`` ≤ value ≤ ``high``, columns of both tables,
schema version 3): finance sets it on the Finance review page, with :func:`set_range` or in an
``assumptions`` import. The ranges feed the tornado and, on request, the Monte Carlo propagation
of assumption uncertainty into the bridge interval (:func:`cxmetrics.bridge.simulate`).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import duckdb

from cxmetrics import store
from cxmetrics.core import lazy, roles

pd = lazy.module("pandas")


@dataclass(frozen=True)
class Rule:
    """Validation rule for an assumption key: allowed range, unit and meaning."""

    min: float
    max: float
    unit: str
    help: str
    sensitivity: tuple[float, float] | None = None  # low/high for the tornado; default ±25%
    default: float | None = None  # documented starting value until finance sets one


#: Known assumptions. Unknown keys may be imported; they get a generic non-negative rule. Each has
#: a documented default so that a fresh store computes every figure; a default is cited as
#: "default, not reviewed by finance" until finance saves a value (Finance review page or import).
RULES: dict[str, Rule] = {
    "gross_margin": Rule(0.0, 1.0, "share", "gross margin on revenue", (0.25, 0.45), 0.35),
    "discount_rate": Rule(0.0, 0.5, "per year", "annual discount rate for CLV", (0.06, 0.14), 0.10),
    "horizon_years": Rule(1, 30, "years", "CLV horizon", (3, 7), 5.0),
    "cost_per_complaint": Rule(0.0, 1e6, "EUR", "handling cost of a complaint", default=25.0),
    "cost_per_escalation": Rule(0.0, 1e6, "EUR", "extra cost of an escalated complaint", default=120.0),
    "referral_rate": Rule(0.0, 10.0, "referrals per promoter per year", "referrals a promoter makes", default=0.15),
    "referral_conversion": Rule(0.0, 1.0, "share", "share of referrals that become customers", default=0.20),
    "attribution_share": Rule(0.0, 1.0, "share", "share of an outcome change credited to CX", (0.3, 0.7), 0.50),
    "acquisition_cost": Rule(0.0, 1e6, "EUR", "cost of acquiring a referred customer (net from its CLV)",
                             default=0.0),
    "reconciliation_tolerance": Rule(0.0, 1.0, "share", "revenue gap vs booked revenue that flags a period",
                                     default=0.02),
}
GENERIC = Rule(-1e12, 1e12, "", "")
#: How a default is cited on every figure that uses it.
DEFAULT_SOURCE = "default, not reviewed by finance"


@dataclass(frozen=True)
class Assumption:
    key: str
    value: float
    unit: str
    source: str | None = None
    updated_by: str | None = None
    updated_on: dt.date | None = None
    version: int = 1  # 0: the documented default, never saved
    low: float | None = None  # plausible range set by finance (both or neither)
    high: float | None = None

    @property
    def range(self) -> tuple[float, float] | None:
        return (self.low, self.high) if self.low is not None and self.high is not None else None

    @property
    def is_default(self) -> bool:
        return self.version == 0

    def cite(self) -> str:
        """E.g. ``"0.35 share (v2, finance, 2026-09-30)"`` or ``"0.35 share (default, not reviewed by finance)"``."""
        if self.is_default:
            return f"{self.value:g} {self.unit} ({DEFAULT_SOURCE})"
        who = ", ".join(str(x) for x in (self.updated_by, self.updated_on) if x)
        rng = f" [range {self.low:g} to {self.high:g}]" if self.range else ""
        return f"{self.value:g} {self.unit}{rng} (v{self.version}{', ' + who if who else ''})"


class MissingAssumption(KeyError):
    def __str__(self) -> str:
        return f"assumption {self.args[0]!r} is not set: add it on the Finance review page or import assumptions"


class AssumptionError(ValueError):
    """An edit was refused (permission, unknown key, out of range)."""


_CURRENT_SQL = """
SELECT a.key, a.value, a.unit, a.source, a.updated_by, a.updated_on, coalesce(h.version, 1) AS version,
       a.low, a.high
FROM assumptions a
LEFT JOIN (SELECT key, max(version) AS version FROM assumption_history GROUP BY key) h USING (key)
ORDER BY a.key
"""


def stored(con: duckdb.DuckDBPyConnection) -> dict[str, Assumption]:
    """The assumptions saved in the store by key, with their version number."""
    return {r[0]: Assumption(*r) for r in store.rows(con, store.Query("assumptions_current", _CURRENT_SQL))}


def defaults() -> dict[str, Assumption]:
    """The documented default of every known assumption (version 0, cited as not reviewed)."""
    return {k: Assumption(k, r.default, r.unit, DEFAULT_SOURCE, version=0)
            for k, r in RULES.items() if r.default is not None}


def current(con: duckdb.DuckDBPyConnection) -> dict[str, Assumption]:
    """The assumptions every metric uses: the stored ones, and the documented default of each
    known key that finance has not set yet (``is_default``; cited as not reviewed by finance)."""
    merged = defaults() | stored(con)
    return dict(sorted(merged.items()))


def defaults_used(cited: dict[str, str]) -> list[str]:
    """The keys of a result's cited assumptions that are defaults finance has not reviewed."""
    return [k for k, v in (cited or {}).items() if DEFAULT_SOURCE in str(v)]


def get(con: duckdb.DuckDBPyConnection, key: str) -> Assumption:
    found = current(con).get(key)
    if found is None:
        raise MissingAssumption(key)
    return found


def cite(used: dict[str, Assumption]) -> dict[str, str]:
    """The ``assumptions`` dict to put on a result: key -> cited value and version."""
    return {k: a.cite() for k, a in used.items()}


def record_history(con: duckdb.DuckDBPyConnection, *, actor: str, action: str) -> int:
    """Append a history version for every key whose current row differs from its latest version.

    Call inside the writing transaction after the ``assumptions`` table changed (import, demo,
    edit). Returns the number of versions written.
    """
    rows = con.execute("""
        SELECT a.key, a.value, a.unit, a.source, coalesce(h.version, 0) + 1, a.low, a.high
        FROM assumptions a
        LEFT JOIN (SELECT key, version, value, unit, source, low, high,
                          row_number() OVER (PARTITION BY key ORDER BY version DESC) AS rn
                   FROM assumption_history) h ON h.key = a.key AND h.rn = 1
        WHERE h.key IS NULL OR h.value <> a.value OR h.unit IS DISTINCT FROM a.unit
           OR h.source IS DISTINCT FROM a.source OR h.low IS DISTINCT FROM a.low OR h.high IS DISTINCT FROM a.high
    """).fetchall()
    at = store.now()
    for key, value, unit, source, version, low, high in rows:
        con.execute(
            "INSERT INTO assumption_history (key, version, value, unit, source, updated_by, updated_at, action, low, high) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [key, version, value, unit, source, actor, at, action, low, high])
    return len(rows)


def validate(key: str, value: float) -> Rule:
    rule = RULES.get(key, GENERIC)
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise AssumptionError(f"{key}: {value!r} is not a number") from None
    if v != v or v in (float("inf"), float("-inf")):
        raise AssumptionError(f"{key}: value must be a finite number")
    if not rule.min <= v <= rule.max:
        raise AssumptionError(f"{key}: {v:g} is outside the allowed range {rule.min:g} to {rule.max:g} {rule.unit}")
    return rule


def set_value(con: duckdb.DuckDBPyConnection, key: str, value: float, *, actor: str, role: str,
              source: str | None = None, action: str = "edit",
              value_range: tuple[float | None, float | None] | None = None) -> Assumption:
    """Change one assumption (finance role only): validated, versioned, audited, one transaction.

    ``value_range`` (low, high) replaces the stored range in the same version (``(None, None)``
    clears it); by default the stored range is kept and the new value must lie inside it.
    """
    if not roles.can(role, "edit_assumptions"):
        store.audit(con, actor=actor, role=role, action="assumption_edit", object=key, outcome="refused",
                    detail="role may not edit assumptions")
        raise AssumptionError(f"the {role} role may not edit assumptions (finance only)")
    before = stored(con).get(key)
    rule = validate(key, value)
    unit = before.unit if before else rule.unit
    rng = validate_range(key, value, *value_range) if value_range is not None else None
    if value_range is None and before and before.range and not before.low <= float(value) <= before.high:
        raise AssumptionError(f"{key}: {float(value):g} is outside its range {before.low:g} to {before.high:g}: "
                              "change the range first")
    with store.transaction(con):
        record_history(con, actor=actor, action="recorded before edit")  # the value being replaced
        lo, hi = (rng or (None, None)) if value_range is not None else (before.low, before.high) if before else (None, None)
        con.execute(
            "INSERT INTO assumptions (key, value, unit, source, updated_by, updated_on, low, high) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
            "source = excluded.source, updated_by = excluded.updated_by, updated_on = excluded.updated_on, "
            "low = excluded.low, high = excluded.high",
            [key, float(value), unit, source or (before.source if before else None), actor, dt.date.today(), lo, hi])
        record_history(con, actor=actor, action=action)
        store.bump_version(con, ["assumptions", "assumption_history"])
        store.audit(con, actor=actor, role=role, action="assumption_edit", object=key, outcome="accepted",
                    detail=json.dumps({"before": before.value if before else None, "after": float(value),
                                       "action": action}))
    return stored(con)[key]


def validate_range(key: str, value: float, low: float | None, high: float | None) -> tuple[float, float] | None:
    """Check a plausible range: both ends or neither, within the key's rule, low ≤ value ≤ high."""
    if low is None and high is None:
        return None
    if low is None or high is None:
        raise AssumptionError(f"{key}: give both ends of the range, or neither")
    lo, hi = float(low), float(high)
    validate(key, lo)
    validate(key, hi)
    if not lo <= float(value) <= hi:
        raise AssumptionError(f"{key}: the range {lo:g} to {hi:g} must contain the value {float(value):g}")
    return lo, hi


def set_range(con: duckdb.DuckDBPyConnection, key: str, low: float | None, high: float | None, *, actor: str,
              role: str) -> Assumption:
    """Set (or clear, with ``None, None``) the plausible range of one assumption (finance role only).

    The range is what finance believes the value may plausibly be; the value itself stays the
    best guess (the mode of the triangular distribution the Monte Carlo draws from). Versioned
    like a value edit and audited. A key still on its documented default is saved with that value.
    """
    if not roles.can(role, "edit_assumptions"):
        store.audit(con, actor=actor, role=role, action="assumption_range", object=key, outcome="refused",
                    detail="role may not edit assumptions")
        raise AssumptionError(f"the {role} role may not edit assumptions (finance only)")
    now = current(con).get(key)
    if now is None:
        raise AssumptionError(f"{key}: set a value before its range")
    rng = validate_range(key, now.value, low, high)
    lo, hi = rng if rng else (None, None)
    with store.transaction(con):
        record_history(con, actor=actor, action="recorded before edit")
        con.execute(
            "INSERT INTO assumptions (key, value, unit, source, updated_by, updated_on, low, high) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET low = excluded.low, high = excluded.high, "
            "updated_by = excluded.updated_by, updated_on = excluded.updated_on",
            [key, now.value, now.unit, None if now.is_default else now.source, actor, dt.date.today(), lo, hi])
        record_history(con, actor=actor, action="range" if rng else "range cleared")
        store.bump_version(con, ["assumptions", "assumption_history"])
        store.audit(con, actor=actor, role=role, action="assumption_range", object=key, outcome="accepted",
                    detail=json.dumps({"before": list(now.range) if now.range else None, "after": list(rng) if rng else None}))
    return stored(con)[key]


def ranges(used: dict[str, Assumption]) -> dict[str, tuple[float, float]]:
    """The plausible ranges finance has set, by key (keys without a range are left out)."""
    return {k: a.range for k, a in used.items() if a.range}


def history(con: duckdb.DuckDBPyConnection, key: str | None = None) -> pd.DataFrame:
    """Every recorded version (newest first), optionally for one key."""
    return store.run(con, store.Query(
        "assumption_history", "SELECT key, version, value, low, high, unit, source, updated_by, updated_at, action "
        "FROM assumption_history WHERE $key IS NULL OR key = $key ORDER BY key, version DESC", {"key": key}))


def restore(con: duckdb.DuckDBPyConnection, key: str, version: int, *, actor: str, role: str) -> Assumption:
    """Make an earlier version current again (recorded as a new version, never rewriting history)."""
    found = store.rows(con, store.Query("assumption_version", "SELECT value, source, low, high FROM assumption_history "
                                                              "WHERE key = $k AND version = $v", {"k": key, "v": int(version)}))
    row = found[0] if found else None
    if row is None:
        raise AssumptionError(f"{key} has no version {version}")
    return set_value(con, key, row[0], actor=actor, role=role, source=row[1], action=f"restore v{version}",
                     value_range=(row[2], row[3]))


def register(con: duckdb.DuckDBPyConnection, filters=None) -> pd.DataFrame:
    """The assumptions register for the Finance review page: value, unit, version, source, rule."""
    rows = []
    for a in current(con).values():
        rule = RULES.get(a.key)
        rows.append({"assumption": a.key, "value": a.value, "low": a.low, "high": a.high, "unit": a.unit,
                     "version": a.version,
                     "source": a.source, "updated_by": a.updated_by, "updated_on": a.updated_on,
                     "allowed range": f"{rule.min:g} to {rule.max:g}" if rule else "",
                     "meaning": rule.help if rule else ""})
    return pd.DataFrame(rows)


def rules_markdown() -> str:
    """The README's assumptions table, generated from ``RULES``."""
    lines = ["| key | unit | allowed range | default | meaning |", "| --- | --- | --- | ---: | --- |"]
    for key, r in RULES.items():
        lines.append(f"| `{key}` | {r.unit} | {r.min:g} to {r.max:g} | {r.default:g} | {r.help} |")
    return "\n".join(lines)
