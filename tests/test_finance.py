"""Assumption versioning, reconciliation and net revenue retention."""

import datetime as dt

import pytest

from cxmetrics import store
from cxmetrics.core.filters import Filters, Scope
from cxmetrics.metrics import finance
from cxmetrics.registers import demo
from cxmetrics.store import assumptions as A


def test_assumption_edit_history_restore_and_citation(writable_db):
    with store.connect(str(writable_db), read_only=False) as con:
        before = A.get(con, "gross_margin")
        assert before.version == 1 and before.value == pytest.approx(0.35)
        edited = A.set_value(con, "gross_margin", 0.40, actor="fiona", role="finance", source="Q3 close")
        assert (edited.value, edited.version, edited.updated_by) == (0.40, 2, "fiona")
        assert "v2" in edited.cite()
        restored = A.restore(con, "gross_margin", 1, actor="fiona", role="finance")
        assert restored.value == pytest.approx(0.35) and restored.version == 3
        hist = A.history(con, "gross_margin")
        assert hist["version"].tolist() == [3, 2, 1]
        assert hist["action"].iloc[0] == "restore v1"
        audit = con.execute("SELECT count(*) FROM audit WHERE action = 'assumption_edit' AND outcome = 'accepted'").fetchone()
        assert audit[0] == 2


@pytest.mark.parametrize("role,key,value,message", [
    ("analyst", "gross_margin", 0.3, "finance only"),
    ("executive", "gross_margin", 0.3, "finance only"),
    ("finance", "gross_margin", 1.5, "outside the allowed range"),
    ("finance", "horizon_years", 0, "outside the allowed range"),
    ("finance", "discount_rate", float("nan"), "finite"),
    ("finance", "discount_rate", "ten", "not a number"),
])
def test_assumption_edits_are_validated(writable_db, role, key, value, message):
    with store.connect(str(writable_db), read_only=False) as con:
        with pytest.raises(A.AssumptionError, match=message):
            A.set_value(con, key, value, actor="x", role=role)
        assert A.get(con, key).version == 1  # nothing changed


def test_import_of_assumptions_creates_a_version(writable_db, tmp_path):
    from cxmetrics.registers import importer

    f = tmp_path / "a.csv"
    f.write_text("key,value,unit,source\ngross_margin,0.31,share,budget 2027\n")
    importer.import_file(f, "assumptions", db=str(writable_db), role="finance")
    with store.connect(str(writable_db)) as con:
        a = A.get(con, "gross_margin")
    assert (a.value, a.version, a.source) == (0.31, 2, "budget 2027")


def test_reconciliation_flags_only_the_planted_month(con):
    r = finance.reconciliation(con, Filters())
    assert r.extra["flagged_periods"] == [f"{demo.RECONCILIATION_GAP_MONTH:%Y-%m}"]
    row = r.table[r.table["flagged"]].iloc[0]
    assert row["booked_revenue"] / row["store_revenue"] - 1 == pytest.approx(demo.RECONCILIATION_GAP, abs=1e-4)
    assert (r.table.loc[~r.table["flagged"], "difference_pct"].abs() < 0.005).all()


def test_reconciliation_is_not_compared_under_partial_filters(con):
    r = finance.reconciliation(con, Filters(segments=("smb",)))
    assert r.extra["flagged_periods"] == []
    assert "company total" in r.warnings[0]


def test_booked_revenue_entry_is_finance_only_and_audited(writable_db):
    with store.connect(str(writable_db), read_only=False) as con:
        with pytest.raises(ValueError, match="finance only"):
            finance.set_booked(con, dt.date(2025, 3, 1), 1.0, actor="a", role="analyst")
        store_rev = con.execute("SELECT sum(amount) FROM transactions WHERE date_trunc('month', occurred_on) = "
                                "DATE '2025-03-01'").fetchone()[0]
        finance.set_booked(con, dt.date(2025, 3, 17), store_rev, actor="fiona", role="finance")
        assert finance.reconciliation(con, Filters()).extra["flagged_periods"] == []
        assert con.execute("SELECT count(*) FROM audit WHERE action = 'booked_revenue'").fetchone()[0] == 1


def test_nrr_ratio_and_delta_method_on_a_hand_worked_store(tmp_path):
    db = str(tmp_path / "nrr.duckdb")
    with store.connect(db, read_only=False) as con:
        con.execute("INSERT INTO customers VALUES ('a','s','r','2020-01-01','contractual',NULL),"
                    "('b','s','r','2020-01-01','contractual',NULL),('c','s','r','2020-01-01','contractual',NULL)")
        # prior year (2023-06) y = 100, 200, 100; current year (2024-06) x = 110, 180, 0; last date 2024-06-30
        con.execute("INSERT INTO transactions VALUES ('1','a','2023-06-15',100),('2','b','2023-06-15',200),"
                    "('3','c','2023-06-15',100),('4','a','2024-06-15',110),('5','b','2024-06-30',180)")
        e = finance.net_revenue_retention(con, Filters())
    # R = 290 / 400 = 0.725; residuals x − R y = 37.5, 35, −72.5; Σr² = 7887.5; s² = 3943.75
    # se = sqrt(3 · 3943.75) / 400 = 0.27198...
    assert e.n == 3 and e.estimate == pytest.approx(72.5)
    se = (3 * 3943.75) ** 0.5 / 400
    assert e.ci_high - e.estimate == pytest.approx(100 * 1.959964 * se, rel=1e-4)


def test_nrr_on_demo_is_scoped(con):
    everyone = finance.net_revenue_retention(con, Filters())
    nobody = finance.net_revenue_retention(con, Filters(scope=Scope(role="department", departments=())))
    assert everyone.n > 1000 and nobody.n == 0


def test_nrr_takes_no_date_range_and_says_so(con):
    import datetime as dt

    from cxmetrics.metrics import finance as fin

    plain = fin.net_revenue_retention(con, Filters())
    dated = fin.net_revenue_retention(con, Filters(date_from=dt.date(2025, 10, 1)))
    assert (plain.estimate, plain.ci_low, plain.ci_high, plain.n) == (dated.estimate, dated.ci_low, dated.ci_high, dated.n)
    assert dated.filters == plain.filters == "all data"
    assert fin.NRR_WINDOW in dated.warnings and fin.NRR_WINDOW not in plain.warnings
