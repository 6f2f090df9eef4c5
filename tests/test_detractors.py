"""summary_detractors: every relationship detractor response with its first follow-up on or after
the response day, the churn date and the NPS of the customer's next relationship answer.

Its definition uses window functions (no correlated subquery, which Spark runs row by row). The
rows are checked on a store of hand-made edge cases against values written out by hand (built by
the importer, then one more import of follow-ups taken in place by the incremental refresh), and
on the demo store against the old definition with correlated subqueries, kept here as the
reference. ``tests/test_spark.py`` runs the edge cases on Spark too.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from cxmetrics import store
from cxmetrics.registers import importer
from cxmetrics.store import relations, summaries

#: The definition before the rewrite (two correlated scalar subqueries): the reference. With two
#: relationship answers of the customer on the next answer's day it picks either.
OLD_SQL = f"""
SELECT r.response_id, r.customer_id, r.responded_on, r.department, c.segment, c.region, c.contract,
       (SELECT min(f.contacted_on) FROM followups f
        WHERE f.customer_id = r.customer_id AND f.contacted_on >= r.responded_on) AS first_followup,
       ce.churned_on,
       (SELECT r2.nps FROM survey_responses r2 WHERE r2.customer_id = r.customer_id AND r2.survey = 'relationship'
          AND r2.responded_on > r.responded_on ORDER BY r2.responded_on LIMIT 1) AS next_nps
FROM survey_responses r JOIN customers c USING (customer_id)
LEFT JOIN churn_events ce ON ce.customer_id = r.customer_id
WHERE r.survey = 'relationship' AND {relations.detractor("r.nps")}"""

COLUMNS = ["response_id", "customer_id", "responded_on", "department", "segment", "region", "contract",
           "first_followup", "churned_on", "next_nps"]

CUSTOMERS = """customer_id,segment,region,acquired_on,contract
C1,smb,north,2022-01-01,contractual
C2,consumer,south,2022-06-01,non_contractual
C3,enterprise,east,2023-03-01,contractual
"""

# C1: a follow-up the day before its first detractor answer (does not count) and one on the same
#     day (counts); a transactional detractor answer, then a relationship answer without an NPS
#     (the next answer: NULL); follow-ups out of order; a last detractor answer with no later one.
# C2: no follow-ups; a promoter answer on the detractor answer's own day (not a later one).
# C3: two detractor answers on one day; two relationship answers on the next day, R35 (NPS 1)
#     listed before R34 (NPS 8): the lowest response_id, R34, gives the next NPS (not min(nps),
#     not file order); an anonymous detractor answer (no customer: no row).
RESPONSES = """response_id,customer_id,responded_on,survey,department,nps,csat
R11,C1,2025-01-10,relationship,billing,3,
R12,C1,2025-01-15,transactional,billing,2,
R13,C1,2025-02-01,relationship,billing,,4
R14,C1,2025-03-01,relationship,,5,
R15,C1,2025-04-01,relationship,,9,
R16,C1,2025-05-01,relationship,support,0,
R21,C2,2025-02-10,relationship,support,6,
R22,C2,2025-02-10,relationship,support,10,
R23,C2,2025-03-10,relationship,support,7,
R31,C3,2025-01-05,relationship,billing,2,
R32,C3,2025-01-05,relationship,sales,4,
R35,C3,2025-02-05,relationship,sales,1,
R34,C3,2025-02-05,relationship,sales,8,
R36,C3,2025-03-05,relationship,sales,10,
R41,,2025-01-05,relationship,billing,1,
"""

FOLLOWUPS = """followup_id,customer_id,contacted_on
F11,C1,2025-01-09
F12,C1,2025-01-10
F13,C1,2025-03-20
F14,C1,2025-03-05
F31,C3,2025-01-05
"""

#: Imported last, as an append: the day before R35 (does not count) and the day after (counts).
MORE_FOLLOWUPS = """followup_id,customer_id,contacted_on
F32,C3,2025-02-04
F33,C3,2025-02-06
"""

CHURN = """customer_id,churned_on
C1,2025-06-30
C3,2025-02-20
"""


def _d(s: str | None) -> dt.date | None:
    return dt.date.fromisoformat(s) if s else None


def _row(rid, cid, on, dept, seg, reg, contract, first, churned, nxt) -> tuple:
    return (rid, cid, _d(on), dept, seg, reg, contract, _d(first), _d(churned), nxt)


#: The rows, by hand, after every import (R35's follow-up comes with MORE_FOLLOWUPS).
EXPECTED = sorted([
    _row("R11", "C1", "2025-01-10", "billing", "smb", "north", "contractual", "2025-01-10", "2025-06-30", None),
    _row("R14", "C1", "2025-03-01", None, "smb", "north", "contractual", "2025-03-05", "2025-06-30", 9),
    _row("R16", "C1", "2025-05-01", "support", "smb", "north", "contractual", None, "2025-06-30", None),
    _row("R21", "C2", "2025-02-10", "support", "consumer", "south", "non_contractual", None, None, 7),
    _row("R31", "C3", "2025-01-05", "billing", "enterprise", "east", "contractual", "2025-01-05", "2025-02-20", 8),
    _row("R32", "C3", "2025-01-05", "sales", "enterprise", "east", "contractual", "2025-01-05", "2025-02-20", 8),
    _row("R35", "C3", "2025-02-05", "sales", "enterprise", "east", "contractual", "2025-02-06", "2025-02-20", 10),
])
#: The rows whose next answer's day has two relationship answers (the old definition picks either).
TIED = {"R31": {8, 1}, "R32": {8, 1}}


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def build_edge_store(db: Path, *, more: bool = True) -> Path:
    """The hand-made store above, imported table by table (each import refreshes the summaries);
    with ``more``, the last follow-ups imported as an append to the follow-ups already there."""
    folder = db.parent
    for table, text in (("customers", CUSTOMERS), ("survey_responses", RESPONSES), ("followups", FOLLOWUPS),
                        ("churn_events", CHURN)):
        importer.import_file(_write(folder, f"{table}.csv", text), table, db=db, actor="test")
    if more:
        importer.import_file(_write(folder, "more_followups.csv", MORE_FOLLOWUPS), "followups", db=db,
                             actor="test")
    return db


def _rows(con, sql: str, params: dict | None = None) -> list[tuple]:
    return sorted(con.execute(f"SELECT {', '.join(COLUMNS)} FROM ({sql})", params or {}).fetchall())


@pytest.fixture(scope="module")
def edge_db(tmp_path_factory) -> Path:
    return build_edge_store(tmp_path_factory.mktemp("detractors") / "edge.duckdb")


def test_the_definition_gives_the_hand_written_rows(edge_db):
    with store.connect(str(edge_db)) as con:
        raw = summaries.relation_query(summaries.DETRACTORS_TABLE)
        assert _rows(con, raw.sql, raw.params) == EXPECTED
        assert [c[0] for c in con.execute(raw.sql, raw.params).description] == COLUMNS


def test_the_stored_table_taken_in_place_on_append_gives_the_hand_written_rows(edge_db, tmp_path):
    """The last import appended follow-ups: the stored table was updated for those customers only
    (the definition narrowed to them), not rebuilt, and holds the hand-written rows."""
    with store.connect(str(edge_db)) as con:
        done = summaries.last_refresh(con)
        assert done["appended"] == {"followups": 2}
        assert summaries.DETRACTORS_TABLE in done["updated"]
        assert summaries.current(con, summaries.DETRACTORS_TABLE)
        assert _rows(con, f"SELECT * FROM {summaries.DETRACTORS_TABLE}") == EXPECTED
    before = build_edge_store(tmp_path / "before.duckdb", more=False)
    with store.connect(str(before)) as con:
        got = {r[0]: r for r in _rows(con, f"SELECT * FROM {summaries.DETRACTORS_TABLE}")}
    assert got["R35"][COLUMNS.index("first_followup")] is None  # F33 not yet there
    assert got["R31"] == next(r for r in EXPECTED if r[0] == "R31")


def test_the_old_definition_agrees_on_the_edge_cases_but_the_tie(edge_db):
    """The old correlated definition gives the same rows, except that on a tie it may take either
    answer's NPS."""
    with store.connect(str(edge_db)) as con:
        old = {r[0]: r for r in _rows(con, OLD_SQL)}
    want = {r[0]: r for r in EXPECTED}
    assert old.keys() == want.keys()
    nxt = COLUMNS.index("next_nps")
    for rid, row in want.items():
        if rid in TIED:
            assert row[:nxt] == old[rid][:nxt] and old[rid][nxt] in TIED[rid]
        else:
            assert old[rid] == row, rid


def test_the_definition_equals_the_old_one_on_the_demo_store(con):
    """The demo store has no customer with two relationship answers on one day, so the old
    definition's rows are fully determined: the new one must give exactly them, stored or computed."""
    ties = con.execute("SELECT count(*) FROM (SELECT customer_id, responded_on FROM survey_responses "
                       "WHERE survey = 'relationship' AND customer_id IS NOT NULL GROUP BY ALL "
                       "HAVING count(*) > 1)").fetchone()[0]
    assert ties == 0
    old = con.execute(f"SELECT * FROM ({OLD_SQL}) ORDER BY response_id").df()
    raw = summaries.relation_query(summaries.DETRACTORS_TABLE)
    new = con.execute(f"SELECT * FROM ({raw.sql}) ORDER BY response_id", raw.params).df()
    stored = con.execute(f"SELECT * FROM {summaries.DETRACTORS_TABLE} ORDER BY response_id").df()
    assert len(old) > 1000 and old["first_followup"].notna().sum() > 100 and old["next_nps"].notna().sum() > 100
    pd.testing.assert_frame_equal(new, old)
    pd.testing.assert_frame_equal(stored, old)
    types = "SELECT column_name, column_type FROM (DESCRIBE {})"
    assert con.execute(types.format(raw.sql)).fetchall() == con.execute(types.format(OLD_SQL)).fetchall()
