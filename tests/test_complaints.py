"""Complaints and the closed loop: hand-worked examples, recovery of planted truths, page, CLI."""

import json
import subprocess
import sys

import pytest

from cxmetrics import store
from cxmetrics.core.filters import Filters, Scope
from cxmetrics.metrics import complaints
from cxmetrics.registers import demo


@pytest.fixture
def small_db(tmp_path):
    """Five complaints, two open, hand-checkable."""
    db = str(tmp_path / "small.duckdb")
    with store.connect(db, read_only=False) as con:
        con.execute("INSERT INTO departments VALUES ('billing', NULL, NULL), ('logistics', NULL, NULL)")
        con.execute("INSERT INTO customers VALUES ('a','s','r','2024-01-01','contractual',NULL),"
                    "('b','s','r','2024-01-01','contractual',NULL)")
        con.execute("INSERT INTO assumptions (key, value, unit, source, updated_by, updated_on) VALUES ('cost_per_complaint', 10, 'EUR', NULL, NULL, NULL),"
                    "('cost_per_escalation', 90, 'EUR', NULL, NULL, NULL)")
        # opened, closed (NULL = open), category, escalated, promised, done
        rows = [("1", "a", "2025-01-01", "2025-01-03", "late", True, True, True),
                ("2", "a", "2025-01-10", "2025-01-11", "late", False, True, False),
                ("3", "b", "2025-01-20", "2025-01-30", "late", False, False, False),
                ("4", "b", "2025-02-01", None, "bill", False, True, True),
                ("5", "b", "2025-02-05", None, "bill", True, False, False)]
        for r in rows:
            con.execute("INSERT INTO complaints (complaint_id, customer_id, opened_on, closed_on, category, department,"
                        " escalated, callback_promised, callback_done) VALUES (?, ?, ?, ?, ?, 'billing', ?, ?, ?)",
                        [r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]])
    return db


def test_pareto_hand_worked(small_db):
    with store.connect(small_db) as con:
        p = complaints.pareto(con, Filters())
    t = p.table.set_index("category")
    assert t.loc["late", "complaints"] == 3 and t.loc["late", "cumulative_share_pct"] == pytest.approx(60)
    assert t.loc["bill", "cumulative_share_pct"] == pytest.approx(100)
    assert p.extra["n_to_80"] == 2


def test_resolution_counts_open_complaints_as_censored(small_db):
    # data end = 2025-02-05; durations (+0.5): 2.5, 1.5, 10.5 closed; open: 4.5 (c4), 0.5 (c5) censored
    # KM: t=1.5: 1-1/4 (c5 censored at .5 leaves 4 at risk) = .75; t=2.5: .75·(1-1/3) = .5 -> median 2.5
    with store.connect(small_db) as con:
        r = complaints.resolution(con, Filters(), by=None).table.iloc[0]
    assert (r["complaints"], r["open"]) == (5, 2)
    assert r["median_days"] == pytest.approx(2.5)
    assert r["p90_days"] == pytest.approx(10.5)


def test_callbacks_and_recontact_hand_worked(small_db):
    with store.connect(small_db) as con:
        cb = complaints.callbacks(con, Filters()).table.iloc[0]
        rc = complaints.recontact(con, Filters(), days=30)
    assert (cb["promised"], cb["done"]) == (3, 2) and cb["kept_pct"] == pytest.approx(200 / 3)
    # complaints opened by 2025-01-06 (end − 30 days): #1 only; a's next is 9 days later -> 1 of 1
    assert (rc.n, rc.estimate) == (1, 100.0)


def test_cost_uses_assumptions_when_missing(small_db):
    with store.connect(small_db) as con:
        cost = complaints.cost_by_month(con, Filters()).table
    assert cost["cost"].sum() == pytest.approx(5 * 10 + 2 * 90)


def test_planted_escalation_drop_in_south(con):
    s = complaints.escalation_series(con, Filters(), by="region", period="month")
    s["post"] = s["period"] >= str(demo.PROGRAMME_START)
    agg = s.groupby([s["grp"] == demo.PROGRAMME_REGION, "post"])[["complaints", "escalated"]].sum()
    rate = agg["escalated"] / agg["complaints"]
    assert rate[(True, True)] == pytest.approx(demo.ESCALATION_P_AFTER, abs=0.05)
    assert rate[(False, True)] == pytest.approx(demo.ESCALATION_P, abs=0.04)


def test_escalated_complaints_raise_churn_as_planted(con):
    t = complaints.churn_uplift(con, Filters()).table.set_index("complaint_history")
    esc = t.loc["escalated"]
    assert esc["ci_low"] <= demo.ESCALATION_HAZARD_RATIO <= esc["ci_high"]


def test_null_followup_effect_not_claimed(con):
    f = complaints.detractor_followup(con, Filters())
    diff = f.headline[1]
    assert diff.p_value > 0.05 and diff.ci_low < 0 < diff.ci_high
    assert 25 < f.headline[0].estimate < 45  # ~half contacted within 1–10 days, ~70% of those within 7


def test_scope_keeps_one_department(con):
    t = complaints.volume(con, Filters(scope=Scope(role="department", departments=("billing",))), by="department").table
    assert t["department"].tolist() == ["billing"]


def test_page(demo_db, make_app):
    at = make_app(demo_db, page="pages/08_complaints.py")
    assert not at.exception, at.exception
    assert at.title[0].value == "Complaints & closed loop"
    assert any("categories make 80%" in m.value for m in at.markdown)


def test_cli(demo_db):
    out = subprocess.run([sys.executable, "-m", "cxmetrics", "metrics", "complaints", "--json", "--db", str(demo_db)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["rows"][0]["category"] == "late delivery" and data["extra"]["n_to_80"] >= 3
