"""Anonymous responses and stub customers: survey and sales data that arrive without (or before)
the customer master data.

Rules (README "Bring your own data", DESIGN.md "Real data"):

* An **anonymous response** has no customer id (``survey_responses.customer_id`` is NULL, e.g. a
  Qualtrics export whose ``ExternalReference`` is empty). It counts in NPS, CSAT and CES; the
  customer-level analyses (churn, value, wallet, drivers) join responses to customers, so they
  leave it out, and say how many they left out (:func:`note_excluded`).
* A **stub customer** is created by the import of responses or transactions whose customer id is
  not in ``customers``: segment and region ``unknown``, ``non_contractual`` (without a contract no
  churn date is observable, so contractual churn analyses leave stubs out), acquired on the first
  date the file shows for that id, and listed in the bookkeeping table ``customer_stubs`` (the
  customers table keeps its contract shape). The import reports how many it created. A customers
  file that later brings the id replaces the stub's attributes and removes it from ``customer_stubs``.
* A complaint without a customer id (a complaints log with no customer key) counts in complaint
  volumes, escalations, resolution and callbacks; re-contact and churn after complaints need the
  customer and leave it out.
* A transaction line without a customer id (135,000 of a retailer's 540,000 lines) belongs to no
  customer: it is skipped and counted (``report.excluded["no_customer"]``), not a rejection.

The importer calls these functions at three points (validation, preview, write); the SQL runs on
the importer's staging connection, where ``__typed`` holds the rows as they will be stored.
"""

from __future__ import annotations

import functools
from dataclasses import replace

from cxmetrics import store
from cxmetrics.store import summaries

#: Tables whose unknown customer ids create stub customers (other tables still reject them).
STUB_TABLES = {"survey_responses": "responded_on", "transactions": "occurred_on"}
STUB_SEGMENT = STUB_REGION = "unknown"
STUB_CONTRACT = "non_contractual"
#: The stratum stub customers form in a money figure's segment mix: their own, apart from every real
#: segment — even a real segment that happens to be called 'unknown' (bound as ``$stub_stratum``).
STUB_STRATUM = "unknown (stub customers)"


def segment_stratum(segment_col: str, id_col: str) -> str:
    """SQL for the segment a money figure stratifies by: a stub customer's is :data:`STUB_STRATUM`
    (bind ``stub_stratum``), everyone else's their segment. ``segment_col`` and ``id_col`` are
    column references written by the caller (never data)."""
    return (f"CASE WHEN {id_col} IN (SELECT customer_id FROM customer_stubs) THEN $stub_stratum "
            f"ELSE {segment_col} END")


def contract_note(in_store: int) -> str:
    """The sentence of a contract-customer figure (churn, contractual CLV and the money built on
    them) when the store holds ``in_store`` stub customers: it includes none of them."""
    return (f"{in_store:,} stub customer(s) (ids seen in responses or transactions, not in the customers file) "
            f"are {STUB_CONTRACT} (no churn date is observable without a contract), so this contract-customer "
            "figure includes none of them.")


def carried(result) -> tuple[str, ...]:
    """The stub sentence a money figure built on a contract-customer ``result`` repeats (empty when
    the store holds no stub customer)."""
    info = (getattr(result, "extra", None) or {}).get("stub_customers")
    return (contract_note(info["in_store"]),) if info and info.get("in_store") else ()


def stratum_note(included: int, kept: bool = True) -> str | None:
    """What a segment-standardised money figure says about the stub customers it includes."""
    if not included:
        return None
    tail = ("weighted by their share of the mix like any segment" if kept else
            "left out of the adjusted figure because their stratum lacks one of the groups compared (they count "
            "in the crude figure)")
    return (f"{included:,} stub customer(s) (ids not in the customers file) are included as their own segment "
            f"'{STUB_STRATUM}', {tail}.")


def creates_stubs(table: str, column: str) -> bool:
    """True when an unknown ``column`` value in ``table`` makes a stub customer instead of a rejection."""
    return table in STUB_TABLES and column == "customer_id"


def drop_rows_without_customer(table: str, lines: list[int], cols: dict[str, list],
                               report) -> tuple[list[int], dict[str, list]]:
    """Transactions: skip (and count in ``report``) rows with no customer id. Other tables unchanged."""
    if table != "transactions" or "customer_id" not in cols:
        return lines, cols
    ids = cols["customer_id"]
    keep = [i for i, v in enumerate(ids) if v is not None]
    skipped = len(ids) - len(keep)
    if not skipped or not keep:  # a file with no customer at all is left to the required check
        return lines, cols
    report.excluded["no_customer"] = skipped
    report.warnings.append(f"{skipped:,} row(s) without a customer id skipped (they belong to no customer)")
    return [lines[i] for i in keep], {k: [v[i] for i in keep] for k, v in cols.items()}


_NEW_IDS = """
SELECT DISTINCT y.customer_id FROM __typed y
WHERE y.customer_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM customers c WHERE c.customer_id = y.customer_id)
"""


def preview(con, table: str, report) -> None:
    """Before writing (and in a dry run): count the anonymous rows and the stub customers this file
    would create, and say so in ``report`` (``report.anonymous``, ``report.stubs``)."""
    left_out = {"survey_responses": "anonymous response(s) (no customer id): counted in NPS, CSAT and CES, left out "
                                    "of customer-level analyses (churn, value, wallet, drivers)",
                "complaints": "complaint(s) without a customer id: counted in complaint volumes, escalations and "
                              "callbacks, left out of re-contact and churn after complaints"}.get(table)
    if left_out:
        anon = con.execute("SELECT count(*) FROM __typed WHERE customer_id IS NULL").fetchone()[0]
        report.anonymous = int(anon)
        if anon:
            report.warnings.append(f"{anon:,} {left_out}")
    if table in STUB_TABLES:
        n = con.execute(f"SELECT count(*) FROM ({_NEW_IDS})").fetchone()[0]  # noqa: S608 (constant SQL)
        report.stubs = int(n)
        if n:
            report.warnings.append(f"{n:,} customer id(s) not in customers: stub customers created (segment and "
                                   f"region '{STUB_SEGMENT}', {STUB_CONTRACT}); importing the customers file "
                                   "replaces them")


def create(con, table: str, source: str | None = None) -> int:
    """Insert the stub customers for ``__typed``'s unknown ids (inside the import's transaction)."""
    if table not in STUB_TABLES:
        return 0
    date_col = STUB_TABLES[table]
    before = con.execute("SELECT count(*) FROM customer_stubs").fetchone()[0]
    con.execute(f"INSERT INTO customer_stubs (customer_id, created_at, source) SELECT customer_id, now()::TIMESTAMP, $src "
                f"FROM ({_NEW_IDS}) ON CONFLICT DO NOTHING", {"src": source})  # noqa: S608 (constant SQL)
    con.execute(
        "INSERT INTO customers (customer_id, segment, region, acquired_on, contract) "
        f'SELECT y.customer_id, $seg, $reg, min(y."{date_col}"), $contract '  # noqa: S608 (allow-listed column)
        f"FROM __typed y WHERE y.customer_id IN ({_NEW_IDS}) GROUP BY y.customer_id",
        {"seg": STUB_SEGMENT, "reg": STUB_REGION, "contract": STUB_CONTRACT})
    return con.execute("SELECT count(*) FROM customer_stubs").fetchone()[0] - before


def stubs_replaced(con, table: str) -> int:
    """Before a customers import writes: how many stored stubs this file replaces."""
    if table != "customers":
        return 0
    return con.execute("SELECT count(*) FROM customer_stubs WHERE customer_id IN (SELECT customer_id FROM __typed)"
                       ).fetchone()[0]


def clear(con, table: str) -> None:
    """After a customers import wrote its rows: they are real customers now."""
    if table == "customers":
        con.execute("DELETE FROM customer_stubs WHERE customer_id IN (SELECT customer_id FROM __typed)")


# ----------------------------------------------------------------------------- what analyses say


def counts(con) -> tuple[int, int]:
    """(anonymous responses, stub customers) in the store; the anonymous ones counted from the
    responses summary (its ``anonymous`` cells) when current."""
    q = summaries.query(con, "anonymous_responses", "SELECT CAST(coalesce(sum(r.n) FILTER (WHERE r.anonymous), 0) "
                                                    "AS BIGINT) FROM {summary_responses} r")
    anon = store.rows(con, q)[0][0]
    stub = store.rows(con, store.Query("stub_customers", "SELECT count(*) FROM customer_stubs"))[0][0]
    return int(anon), int(stub)


def exclusion_warnings(con, *, stubs_matter: bool = False, responses: bool = True,
                       contractual: bool = False) -> tuple[str, ...]:
    """The sentences a customer-level result adds: anonymous responses left out (when it reads
    responses) and, where segment, region or contract matter, stub customers under ``unknown``;
    ``contractual``: the analysis is of contract customers only, so it includes no stub customer."""
    anon, stub = counts(con)
    out = []
    if anon and responses:
        out.append(f"{anon:,} anonymous survey response(s) (no customer id) are left out of this "
                   "customer-level analysis; they count in NPS, CSAT and CES.")
    if stub and stubs_matter and contractual:
        out.append(contract_note(stub))
    elif stub and stubs_matter:
        out.append(f"{stub:,} stub customer(s) (ids seen in responses or transactions, not in the customers "
                   f"file) have segment and region '{STUB_SEGMENT}' and are treated as {STUB_CONTRACT}.")
    return tuple(out)


def note_excluded(stubs_matter: bool = False, responses: bool = True, contractual: bool = False):
    """Decorator for a customer-level metric ``f(con, …) -> Result``: append
    :func:`exclusion_warnings` to the result's warnings (the result is a frozen dataclass). With
    ``contractual`` the result's ``extra["stub_customers"]`` also records the stubs in the store
    and that it includes none (money figures built on it repeat the sentence)."""

    def wrap(f):
        @functools.wraps(f)
        def inner(con, *args, **kwargs):
            res = f(con, *args, **kwargs)
            table = getattr(res, "table", None)
            if (table is not None and table.empty) or getattr(res, "n", 1) == 0:
                return res  # nothing was computed: the empty state's own reason says why
            extra = exclusion_warnings(con, stubs_matter=stubs_matter, responses=responses, contractual=contractual)
            if not extra or not hasattr(res, "warnings"):
                return res
            more = {}
            if contractual and isinstance(getattr(res, "extra", None), dict):
                more["extra"] = {**res.extra, "stub_customers": {"in_store": counts(con)[1], "included": 0}}
            return replace(res, warnings=tuple(res.warnings) + tuple(w for w in extra if w not in res.warnings), **more)

        return inner

    return wrap
