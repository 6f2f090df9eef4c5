"""KPI alignment: threshold recovery, statuses, edge cases, department page, scorecard, CLI."""

import json
import subprocess
import sys

import numpy as np
import pytest

from cxmetrics import store
from cxmetrics.core.filters import Filters, Scope
from cxmetrics.metrics import alignment
from cxmetrics.registers import demo
from cxmetrics.views import department


@pytest.fixture(scope="module")
def card(demo_db):
    with store.connect(str(demo_db)) as con:
        return alignment.scorecard(con, Filters()).table.set_index("kpi_id")


def test_planted_delivery_threshold_recovered_and_misaligned(card):
    r = card.loc["KPI-LOG-DELIVERY"]
    assert r["threshold_ci_low"] <= demo.DELIVERY_THRESHOLD <= r["threshold_ci_high"]
    assert r["status"] == "misaligned" and "from 5 to" in r["suggestion"]
    assert r["elasticity_ci_high"] < 0  # NPS falls beyond the threshold
    assert r["money_at_risk"] > 0
    # issue 18 item 4: segment-adjusted, with an interval, the crude figure beside it, the horizon named
    assert r["money_at_risk_ci_low"] < r["money_at_risk"] < r["money_at_risk_ci_high"]
    assert r["money_at_risk"] < r["money_at_risk_crude"]  # non-detractors are more often high-value customers
    text = alignment.describe(r)
    assert "5-year horizon" in text and "crude" in text and "a year's extra detractors" in text


def test_wait_aligned_and_invoice_no_evidence(card):
    assert card.loc["KPI-CC-WAIT", "status"] == "aligned"
    inv = card.loc["KPI-BIL-INVOICE"]
    assert inv["status"] == "no evidence" and "No significant relation" in inv["reason"]
    assert card.loc["KPI-DIG-UPTIME", "status"] == "no evidence"
    assert "Period-level" in card.loc["KPI-DIG-UPTIME", "reason"]


def test_scorecard_sorted_by_money(demo_db):
    with store.connect(str(demo_db)) as con:
        t = alignment.scorecard(con, Filters()).table
    money = t["money_at_risk"].dropna().tolist()
    assert money == sorted(money, reverse=True) and t.iloc[0]["kpi_id"] == "KPI-LOG-DELIVERY"


def test_money_chart_names_each_kpis_status_beside_it(card):
    from cxmetrics.charts import alignment as charts

    fig = charts.scorecard(card.reset_index())
    bar = fig.data[0]
    # the status is read from the axis, not from a word drawn inside (or on the side of) a short bar
    assert list(bar.y) == ["Delivery time · logistics — misaligned", "Call wait time · contact_centre — aligned"]
    assert bar.text is None


# --------------------------------------------------- edge cases on synthetic grouped data
def synthetic(tau, lower=True, n_per=400, seed=0):
    rng = np.random.default_rng(seed)
    x = np.round(np.linspace(0, 10, 101), 1)
    s = 1 if lower else -1
    p = 0.1 + 0.08 * np.maximum(0, s * (x - tau))
    n = np.full(x.size, n_per)
    return x, n, rng.binomial(n, np.clip(p, 0, 1))


def test_hinge_recovers_threshold_lower_is_better():
    x, n, k = synthetic(4.0)
    th = alignment.fit_threshold(x, n, k)
    assert th.ci_low <= 4.0 <= th.ci_high and th.lr_p < 1e-6


def test_hinge_recovers_threshold_higher_is_better():
    x, n, k = synthetic(6.0, lower=False)
    th = alignment.fit_threshold(x, n, k, lower_is_better=False)
    assert th.ci_low <= 6.0 <= th.ci_high and th.slope > 0


def test_constant_kpi_and_no_relation():
    assert alignment.fit_threshold(np.full(5, 3.0), np.full(5, 10), np.full(5, 2)) is None
    rng = np.random.default_rng(3)
    x = np.linspace(0, 10, 50)
    n = np.full(50, 200)
    th = alignment.fit_threshold(x, n, rng.binomial(n, 0.2))
    assert th.lr_p > 0.01


def test_too_few_linked_observations(demo_db):
    with store.connect(str(demo_db)) as con:
        kpi = alignment.kpis_frame(con, Filters()).set_index("kpi_id").loc["KPI-LOG-DELIVERY"]
        kpi["kpi_id"] = "KPI-LOG-DELIVERY"
        few = Filters(date_from=__import__("datetime").date(2026, 9, 25))
        r = alignment.assess(con, few, kpi, gap=None)
    assert r["status"] == "no evidence" and "Too few linked observations" in r["reason"]


def test_department_scope_is_enforced(demo_db):
    with store.connect(str(demo_db)) as con:
        mine = Filters(scope=Scope(role="department", departments=("logistics",)))
        assert department.page_data(con, mine, department="billing") is None
        page = department.page_data(con, mine, department="logistics")
        assert page.department == "logistics"
        assert set(page.alignment.table["department"]) == {"logistics"}
        assert set(page.complaints.table["category"]) <= {c[0] for c in demo.COMPLAINT_CATEGORIES if c[2] == "logistics"}
        assert department.page_data(con, Filters(scope=Scope(role="department", departments=()))) is None


def test_pages(demo_db, make_app):
    at = make_app(demo_db, page="pages/07_alignment.py")
    assert not at.exception, at.exception
    assert at.title[0].value == "KPI alignment"
    assert any("MISALIGNED" in m.value for m in at.markdown)
    at = make_app(demo_db, page="pages/06_department.py")
    assert not at.exception, at.exception
    at.selectbox(key="dept_pick").select("logistics").run()
    assert not at.exception
    assert any("move the delivery time target from 5" in i.value for i in at.info)


def test_department_role_is_fixed_to_its_department(demo_db, make_app):
    at = make_app(demo_db, role="department", page="pages/06_department.py")
    assert not at.exception, at.exception
    sb = at.selectbox(key="dept_pick")
    assert sb.options == [at.session_state["role_department"]] and sb.disabled


def test_cli(demo_db):
    out = subprocess.run([sys.executable, "-m", "cxmetrics", "metrics", "alignment", "--dept", "logistics", "--json",
                          "--db", str(demo_db)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)["rows"]
    assert [r["kpi_id"] for r in rows] == ["KPI-LOG-DELIVERY"] and rows[0]["status"] == "misaligned"


# ------------------------------------------------ kept threshold fits (the unfiltered view's)

def live_only(m, name: str = "kpi_thresholds") -> None:
    """Ignore the kept fit ``name`` (the threshold fits by default): every call computes it live."""
    from cxmetrics.store import summaries

    real = summaries.fit_text
    m.setattr(summaries, "fit_text", lambda con, n: None if n == name else real(con, n))


def refuse(m, owner, attr: str, what: str) -> None:
    """``owner.attr`` raises ``AssertionError(what)``: what follows must not compute it."""
    def no(*a, **k):
        raise AssertionError(what)

    m.setattr(owner, attr, no)


def test_kept_threshold_fits_are_the_fits_the_page_would_make(demo_db, monkeypatch):
    import pandas as pd

    with store.connect(str(demo_db)) as con:
        kept = alignment.kept_thresholds(con)["fits"]
        assert len(kept) >= 3  # the demo's customer-level KPIs
        with monkeypatch.context() as m:
            refuse(m, alignment, "fit_threshold", "fitted a threshold live")
            fast = alignment.scorecard(con, Filters())
        with monkeypatch.context() as m:
            live_only(m)
            live = alignment.scorecard(con, Filters())
    # the same table to the bit: threshold, interval, slope and its covariance (the money's draws)
    pd.testing.assert_frame_equal(fast.table, live.table, check_exact=True)
    assert fast.table["threshold"].notna().sum() >= 2


def test_a_filtered_curve_is_fitted_live(demo_db, monkeypatch):
    with store.connect(str(demo_db)) as con:
        with monkeypatch.context() as m:
            refuse(m, alignment, "fit_threshold", "fitted a threshold live")
            with pytest.raises(AssertionError, match="fitted a threshold live"):
                alignment.scorecard(con, Filters(segments=("consumer",)))
            with pytest.raises(AssertionError, match="fitted a threshold live"):
                alignment.scorecard(con, Filters(), alpha=0.1)  # kept at 0.05 only


def test_a_kept_fit_is_only_used_for_the_curve_it_was_fitted_on(writable_db, monkeypatch):
    # the KPI's direction changed behind the summaries' back (the data version did not move): the
    # kept fit, for the other direction, is not this curve's, so the page fits it
    import pandas as pd

    with store.connect(str(writable_db), read_only=False) as con:
        con.execute("UPDATE kpis SET direction = 'higher_is_better' WHERE kpi_id = 'KPI-LOG-DELIVERY'")
    with store.connect(str(writable_db)) as con:
        fitted = []
        real = alignment.fit_threshold
        monkeypatch.setattr(alignment, "fit_threshold", lambda *a, **k: fitted.append(k["lower_is_better"]) or real(*a, **k))
        fast = alignment.scorecard(con, Filters())
        assert fitted == [False]  # that one curve only
        live_only(monkeypatch)
        live = alignment.scorecard(con, Filters())
    pd.testing.assert_frame_equal(fast.table, live.table, check_exact=True)
