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


def test_counted_cells_give_the_figures_of_the_rows_counted_one_by_one(writable_db):
    """The follow-up outcome, the complaint-history cells of the churn hazard and the resolution
    counts are read from counted relations; here they are checked against the same rows counted
    one by one in pandas, on a demo copy with the boundary cases planted: a complaint closed on the
    landmark itself (still open at it: unresolved), an escalated complaint still open on the
    landmark (unresolved, not escalated), a follow-up exactly 7 days after a detractor
    answer (within 7 days), a churn on a detractor answer's day (not a churn after it), a churn
    after the last complaint (exposed to complaints up to that date) and a complaint without a
    customer (it has a time to resolve too)."""
    import datetime as dt

    import numpy as np
    import pandas as pd

    from cxmetrics.metrics import churn

    with store.connect(str(writable_db)) as con:
        L = churn.default_landmark(con, Filters())
    with store.connect(str(writable_db), read_only=False) as con, store.transaction(con):
        closed_on_L = con.execute("""
SELECT min(k.complaint_id) FROM complaints k JOIN summary_landmark b USING (customer_id)
WHERE b.nps_group IS NOT NULL AND k.opened_on < $L GROUP BY k.customer_id HAVING bool_and(k.closed_on < $L)
ORDER BY 1 LIMIT 1""", {"L": L}).fetchone()[0]
        con.execute("UPDATE complaints SET closed_on = $L, escalated = false WHERE complaint_id = $k",
                    {"L": L, "k": closed_on_L})
        # an escalated complaint still open on the landmark, from a base customer with no earlier
        # complaint: unresolved (an open complaint outranks an escalation)
        open_escalated = con.execute("""
SELECT b.customer_id FROM summary_landmark b WHERE b.nps_group IS NOT NULL AND b.complaint_history = 'no complaint'
ORDER BY 1 LIMIT 1""").fetchone()[0]
        con.execute("INSERT INTO complaints (complaint_id, customer_id, opened_on, closed_on, category, department, "
                    "escalated) VALUES ('open-escalated', $c, $L::DATE - 10, NULL, 'billing', NULL, true)",
                    {"c": open_escalated, "L": L})
        answer = con.execute("""
SELECT r.customer_id, r.responded_on FROM survey_responses r
WHERE r.survey = 'relationship' AND r.nps < 7 AND r.customer_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM followups f WHERE f.customer_id = r.customer_id
                  AND f.contacted_on BETWEEN r.responded_on AND r.responded_on + 30)
ORDER BY r.response_id LIMIT 1""").fetchone()
        con.execute("INSERT INTO followups (followup_id, customer_id, contacted_on) VALUES ('planted', ?, ?)",
                    [answer[0], answer[1] + dt.timedelta(days=7)])
        same_day = con.execute("""
SELECT r.customer_id, r.responded_on FROM survey_responses r JOIN customers c USING (customer_id)
WHERE r.survey = 'relationship' AND r.nps < 7 AND c.contract = 'contractual' AND r.customer_id <> $planted
  AND r.responded_on < (SELECT max(occurred_on) FROM transactions) - INTERVAL 13 MONTH
  AND NOT EXISTS (SELECT 1 FROM churn_events e WHERE e.customer_id = r.customer_id)
  AND NOT EXISTS (SELECT 1 FROM survey_responses r2 WHERE r2.customer_id = r.customer_id AND r2.responded_on > r.responded_on)
ORDER BY r.response_id LIMIT 1""", {"planted": answer[0]}).fetchone()
        con.execute("INSERT INTO churn_events (customer_id, churned_on) VALUES (?, ?)", list(same_day))  # churned that day
        late = con.execute("""
SELECT customer_id FROM summary_customer WHERE nps IS NOT NULL AND churned_on IS NULL AND customer_id <> $a
ORDER BY customer_id LIMIT 1""", {"a": same_day[0]}).fetchone()[0]
        con.execute("INSERT INTO churn_events (customer_id, churned_on) "  # after the last complaint: exposed to it
                    "SELECT $c, max(opened_on) + 20 FROM complaints", {"c": late})
        con.execute("UPDATE complaints SET customer_id = NULL WHERE complaint_id = "
                    "(SELECT max(complaint_id) FROM complaints WHERE closed_on IS NOT NULL)")
        store.bump_version(con)
    with store.connect(str(writable_db)) as con:
        assert churn.default_landmark(con, Filters()) == L
        # the follow-up outcome per detractor answer
        rows = con.execute("SELECT * FROM summary_detractors").df()
        last = pd.Timestamp(con.execute("SELECT max(occurred_on) FROM transactions").fetchone()[0]) - pd.DateOffset(months=12)
        r, fu = rows["responded_on"], rows["first_followup"]
        churned = (rows["churned_on"] > r) & (rows["churned_on"] <= r + pd.DateOffset(months=12))
        at_risk = (rows["contract"] == "contractual") & (r <= last)
        planted = (rows["customer_id"] == answer[0]) & (r == pd.Timestamp(answer[1]))
        on_the_day = (rows["customer_id"] == same_day[0]) & (r == pd.Timestamp(same_day[1]))
        assert on_the_day.sum() == 1 and not churned[on_the_day].any() and at_risk[on_the_day].all()
        for days in (6, 7, 30):
            got = complaints.detractor_followup(con, Filters(), within_days=days).table.set_index("followed")
            followed = fu.notna() & (fu <= r + pd.Timedelta(days=days))
            assert followed[planted].all() == (days >= 7)
            for flag in (False, True):
                g = followed == flag
                want = {"responses": g.sum(), "at_risk": (g & at_risk).sum(), "churned": (g & at_risk & churned).sum(),
                        "with_next": rows.loc[g, "next_nps"].count()}
                assert {k: int(got.loc[flag, k]) for k in want} == {k: int(v) for k, v in want.items()}, (days, flag)
                assert got.loc[flag, "next_nps_mean"] == pytest.approx(rows.loc[g, "next_nps"].mean(), rel=1e-12)
                assert got.loc[flag, "next_nps_sd"] == pytest.approx(rows.loc[g, "next_nps"].std(), rel=1e-9)
        # the churn hazard's cells: each base customer's complaint history before the landmark
        q = complaints.churn_uplift(con, Filters()).queries[0]
        cells = con.execute(q.sql, q.params).df()
        base = con.execute("SELECT * FROM summary_landmark WHERE nps_group IS NOT NULL").df()
        k = con.execute("SELECT customer_id, closed_on, escalated FROM complaints "
                        "WHERE opened_on < $L AND customer_id IS NOT NULL", {"L": L}).df()
        k["open"] = k["closed_on"].isna() | (k["closed_on"] >= pd.Timestamp(L))
        k["esc"] = k["escalated"].fillna(False).astype(bool)
        per = k.groupby("customer_id")[["open", "esc"]].any()
        state = pd.Series(np.where(per["open"], "unresolved", np.where(per["esc"], "escalated", "resolved")), per.index)
        base["state"] = base["customer_id"].map(state).fillna("no complaint")
        assert base.loc[base["customer_id"].isin(
            con.execute("SELECT customer_id FROM complaints WHERE complaint_id = $k", {"k": closed_on_L}).fetchone()),
            "state"].tolist() == ["unresolved"]
        assert base.loc[base["customer_id"] == open_escalated, "state"].tolist() == ["unresolved"]
        want = (base.assign(event=base["event"].astype(int), days=base["days"].astype(float))
                .groupby(["nps_group", "segment", "tenure", "state"], as_index=False)
                .agg(customers=("customer_id", "size"), events=("event", "sum"), exposure=("days", "sum")))
        want["exposure"] /= churn.MONTH_DAYS
        got = cells.sort_values(["nps_group", "segment", "tenure", "state"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(got, want, check_dtype=False, check_exact=False, rtol=1e-12)
        # complaints per customer-year by NPS group (latest answer), segment-filtered too
        cust = con.execute("SELECT * FROM summary_customer WHERE nps IS NOT NULL").df()
        lo, hi = (pd.Timestamp(x) for x in con.execute("SELECT min(opened_on), max(opened_on) FROM complaints").fetchone())
        start = cust["acquired_on"].where(cust["acquired_on"] > lo, lo)
        stop = cust["churned_on"].fillna(hi).where(lambda d: d < hi, hi)
        cust["years"] = (stop - start).dt.days.clip(lower=0) / 365.25
        cust["nps_group"] = np.select([cust["nps"] >= 9, cust["nps"] >= 7], ["promoter", "passive"], "detractor")
        for f, keep in ((Filters(), cust.index == cust.index), (Filters(segments=("smb",)), cust["segment"] == "smb")):
            want = cust[keep].groupby("nps_group").agg(customers=("nps", "size"), years=("years", "sum"),
                                                       complaints=("complaints", "sum"))
            got = complaints.rate_by_nps_group(con, f).set_index("nps_group")[["customers", "years", "complaints"]]
            pd.testing.assert_frame_equal(got, want, check_dtype=False, check_exact=False, rtol=1e-12)
        # the resolution counts: every complaint, with or without a customer, closed or censored at the end
        res = complaints.resolution(con, Filters(), by=None)
        allk = con.execute("SELECT opened_on, closed_on FROM complaints").df()
        end = allk["opened_on"].max()
        days = ((allk["closed_on"].fillna(end) - allk["opened_on"]).dt.days.clip(lower=0) + 0.5)
        closed = allk["closed_on"].notna()
        t = res.table.iloc[0]
        assert (t["complaints"], t["open"]) == (len(allk), int((~closed).sum()))
        assert t["median_if_open_dropped"] == days[closed].median()
        assert con.execute("SELECT count(*) FROM complaints WHERE customer_id IS NULL").fetchone()[0] == 1


def test_category_uplift_under_a_date_range_is_its_definitions_with_the_cutoff_bound_as_a_parameter(writable_db):
    """Under a date range the category uplift binds the definition's own cutoff (12 months before
    the last complaint) as the range's end, so the scan can skip later complaints. Every range gives
    the definition's rows counted under the range as asked: one ending before the cutoff, one
    across it, one starting after it (no rows), open at either end; a contract customer's complaint
    planted on the cutoff day itself (counted) and on the day after (not counted)."""
    import datetime as dt

    import pandas as pd

    from cxmetrics.store import summaries

    with store.connect(str(writable_db), read_only=False) as con, store.transaction(con):
        last = con.execute("SELECT max(opened_on) FROM complaints").fetchone()[0]
        cut = (pd.Timestamp(last) - pd.DateOffset(months=12)).date()
        cust = con.execute("SELECT customer_id FROM customers WHERE contract = 'contractual' ORDER BY 1 LIMIT 1").fetchone()[0]
        for i, day in enumerate((cut, cut + dt.timedelta(days=1))):
            con.execute("INSERT INTO complaints (complaint_id, customer_id, opened_on, category, department, escalated) "
                        "VALUES ($id, $c, $d, $cat, NULL, false)",
                        {"id": f"planted-{i}", "c": cust, "d": day, "cat": f"planted {i}"})
        store.bump_version(con)
    ranges = [(None, cut - dt.timedelta(days=90)), (cut - dt.timedelta(days=60), cut + dt.timedelta(days=60)),
              (cut, cut), (cut + dt.timedelta(days=1), None), (cut - dt.timedelta(days=200), None),
              (cut - dt.timedelta(days=30), last)]
    with store.connect(str(writable_db)) as con:
        seen = set()
        for lo, hi in ranges:
            f = Filters(date_from=lo, date_to=hi)
            got = complaints.category_uplift(con, f).sort_values("category").reset_index(drop=True)
            raw = summaries.relation_query(summaries.UPLIFT_TABLE, f)
            assert "$date_to" not in raw.sql or raw.params["date_to"] == hi
            want = con.execute(f"SELECT category, sum(customers) AS customers, sum(churned) AS churned "
                               f"FROM ({raw.sql}) x GROUP BY 1 ORDER BY 1", raw.params).df()
            assert list(got["category"]) == list(want["category"]), (lo, hi)
            pd.testing.assert_series_equal(got["churn_after_pct"], 100 * want["churned"] / want["customers"],
                                           check_names=False, check_dtype=False)
            seen |= set(got["category"])
        assert "planted 0" in seen and "planted 1" not in seen
        assert complaints.category_uplift(con, Filters(date_from=cut + dt.timedelta(days=1))).empty


def test_complaint_rates_by_nps_group_take_the_whole_history_and_the_bridge_says_so(con):
    """Exposure runs from acquisition to churn or the data's end: a date range does not narrow the
    rate, and the P&L bridge's cost-saving inputs name it as the whole history."""
    import datetime as dt

    from cxmetrics.metrics import pnl

    dated = Filters(date_from=dt.date(2025, 10, 1))
    assert complaints.rate_by_nps_group(con, Filters()).equals(complaints.rate_by_nps_group(con, dated))
    b = pnl.detractor_scenario(con, dated)
    sources = [x for x in b.inputs["source"] if "complaints per customer-year" in x]
    assert len(sources) == 2 and all("whole history" in x for x in sources), sources  # detractors and the target
