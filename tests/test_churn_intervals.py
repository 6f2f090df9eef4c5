"""Churn intervals and windows (issue 18 items 6, 11, 12 and cohort retention from 13).

External references: lifelines' ``KaplanMeierFitter`` (an independent Kaplan–Meier with
Greenwood's variance and the log-log band) and a Greenwood example worked by hand below.
"""

import datetime as dt
import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from cxmetrics import store
from cxmetrics.core.filters import Filters, Scope
from cxmetrics.metrics import churn, retention

#: The landmark base written independently of the library: contractual customers active at L with
#: a relationship NPS answer before it, followed to their churn or the last transaction.
_LANDMARK_BASE = """
WITH e AS (SELECT max(occurred_on) AS E FROM transactions),
g AS (SELECT customer_id, arg_max(nps, responded_on) AS nps FROM survey_responses
      WHERE survey = 'relationship' AND nps IS NOT NULL AND responded_on < $L GROUP BY 1),
b AS (
    SELECT c.customer_id,
           CASE WHEN g.nps >= 9 THEN 'promoter' WHEN g.nps >= 7 THEN 'passive' ELSE 'detractor' END AS nps_group,
           coalesce(ce.churned_on <= e.E, false) AS event,
           greatest(date_diff('day', $L::DATE, least(coalesce(ce.churned_on, e.E), e.E)), 0.5) AS days
    FROM customers c JOIN g USING (customer_id) LEFT JOIN churn_events ce USING (customer_id), e
    WHERE c.contract = 'contractual' AND c.acquired_on <= $L AND (ce.churned_on IS NULL OR ce.churned_on >= $L))
"""


# ------------------------------------------------ item 6: Kaplan–Meier bands
def test_greenwood_by_hand():
    # 10 at risk; 2 events at t1 (1 censored after), 7 at risk at t2 with 3 events, 4 at risk at t3 with 1
    n, d = [10, 7, 4], [2, 3, 1]
    s1, s2, s3 = 8 / 10, 8 / 10 * 4 / 7, 8 / 10 * 4 / 7 * 3 / 4
    v1 = 2 / (10 * 8)
    v2 = v1 + 3 / (7 * 4)
    v3 = v2 + 1 / (4 * 3)
    s, se, lo, hi = churn.greenwood_band(n, d, transform="plain")
    assert s == pytest.approx([s1, s2, s3])
    assert se == pytest.approx([s1 * math.sqrt(v1), s2 * math.sqrt(v2), s3 * math.sqrt(v3)])
    z = 1.959963984540054
    assert lo[1] == pytest.approx(s2 - z * s2 * math.sqrt(v2)) and hi[1] == pytest.approx(s2 + z * s2 * math.sqrt(v2))
    # log-log: exp(-exp(log(-log S) ± z·√V / |log S|))
    _, _, lo, hi = churn.greenwood_band(n, d)
    c, w = math.log(-math.log(s2)), z * math.sqrt(v2) / abs(math.log(s2))
    assert lo[1] == pytest.approx(math.exp(-math.exp(c + w))) and hi[1] == pytest.approx(math.exp(-math.exp(c - w)))
    _, _, lo, hi = churn.greenwood_band(n, d, transform="log")
    assert lo[2] == pytest.approx(s3 * math.exp(-z * math.sqrt(v3)))
    with pytest.raises(ValueError):
        churn.greenwood_band(n, d, transform="arcsine")


def test_greenwood_band_matches_lifelines_on_literal_weighted_data():
    import statsmodels.api as sm
    from lifelines import KaplanMeierFitter

    time = np.array([1, 1, 2, 3, 3, 4, 5, 6, 6, 7, 8, 9], float)
    event = np.array([1, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0])
    weight = np.array([12, 3, 9, 7, 5, 6, 4, 8, 2, 5, 3, 10], float)
    sf = sm.SurvfuncRight(time, event, freq_weights=weight)
    s, _, lo, hi = churn.greenwood_band(sf.n_risk, sf.n_events)
    km = KaplanMeierFitter().fit(time, event, weights=weight)
    ci = km.confidence_interval_.loc[sf.surv_times]
    assert s == pytest.approx(km.survival_function_.loc[sf.surv_times].iloc[:, 0].to_numpy())
    assert lo == pytest.approx(ci.iloc[:, 0].to_numpy(), abs=1e-9)
    assert hi == pytest.approx(ci.iloc[:, 1].to_numpy(), abs=1e-9)


def test_survival_curves_bands_match_lifelines_on_the_demo(con):
    from lifelines import KaplanMeierFitter

    f = Filters()
    L = churn.default_landmark(con, f)
    res = churn.survival_curves(con, f, landmark=L)
    assert "log-log" in res.method and "Greenwood" in res.method
    counts = con.execute(_LANDMARK_BASE + """
        SELECT nps_group, ceil(days / $month) AS month, event, count(*) AS n FROM b GROUP BY ALL""",
                         {"L": L, "month": churn.MONTH_DAYS}).df()
    for g, d in counts.groupby("nps_group"):
        km = KaplanMeierFitter().fit(d["month"], d["event"], weights=d["n"])
        mine = res.table[(res.table["nps_group"] == g) & (res.table["month"] > 0)].set_index("month")
        ci = km.confidence_interval_.loc[mine.index]
        assert mine["survival"].to_numpy() == pytest.approx(km.survival_function_.loc[mine.index].iloc[:, 0].to_numpy())
        assert mine["ci_low"].to_numpy() == pytest.approx(ci.iloc[:, 0].to_numpy(), abs=1e-9)
        assert mine["ci_high"].to_numpy() == pytest.approx(ci.iloc[:, 1].to_numpy(), abs=1e-9)


# ------------------------------------------------ item 11: churn windows
def _active_churned(con, L: dt.date, end: dt.date) -> tuple[int, int]:
    """Independent count: contractual customers with a relationship NPS before L, active at L,
    and how many of them churned from L to ``end``."""
    return con.execute("""
        WITH g AS (SELECT DISTINCT customer_id FROM survey_responses
                   WHERE survey = 'relationship' AND nps IS NOT NULL AND responded_on < $L)
        SELECT count(*), count(*) FILTER (WHERE ce.churned_on <= $E)
        FROM customers c JOIN g USING (customer_id) LEFT JOIN churn_events ce USING (customer_id)
        WHERE c.contract = 'contractual' AND c.acquired_on <= $L AND (ce.churned_on IS NULL OR ce.churned_on >= $L)
    """, {"L": L, "E": end}).fetchone()


def test_churn_is_labelled_by_the_follow_up_it_has(con):
    end = con.execute("SELECT max(occurred_on) FROM transactions").fetchone()[0]
    L = dt.date(2026, 3, 1)
    res = churn.churn_by(con, Filters(), landmark=L)
    months = (end - L).days / churn.MONTH_DAYS
    assert "12-month" not in res.label and res.label.startswith(f"{round(months)}-month churn")
    assert res.extra["window_months"] == pytest.approx(months)
    assert any("not 12-month" in w for w in res.warnings)
    n, k = _active_churned(con, L, end)
    assert res.table["customers"].sum() == n and res.table["churned"].sum() == k
    # a full year of follow-up keeps the 12-month label and counts churn before L + 12 months only
    L12 = dt.date(2024, 10, 16)
    full = churn.churn_by(con, Filters(), landmark=L12)
    assert full.label.startswith("12-month churn") and not full.warnings
    n, k = _active_churned(con, L12, dt.date(2025, 10, 15))
    assert full.table["churned"].sum() == k
    # too little follow-up: refused with a reason
    short = churn.churn_by(con, Filters(), landmark=end - dt.timedelta(days=10))
    assert short.table.empty and "not reported" in short.warnings[0]


def test_a_year_to_the_data_end_is_a_full_window_and_a_day_less_is_not_named_12_month(con):
    """"The last 12 months" (a landmark a year before the day after the data's end) has the whole
    12-month window: churn is counted before L + 12 months, so the window's last day is the data's
    last. One day later, the label keeps a decimal instead of rounding to the full year."""
    end = con.execute("SELECT max(occurred_on) FROM transactions").fetchone()[0]
    L = churn.add_months(end + dt.timedelta(days=1), -12)
    full = churn.churn_by(con, Filters(), landmark=L)
    assert full.label.startswith("12-month churn") and not full.warnings
    assert full.extra["window_end"] == str(end)
    n, k = _active_churned(con, L, end)
    assert full.table["customers"].sum() == n and full.table["churned"].sum() == k
    short = churn.churn_by(con, Filters(), landmark=L + dt.timedelta(days=1))
    assert short.label.startswith("11.9-month churn"), short.label
    assert any("not 12-month" in w and "days after the landmark" in w for w in short.warnings)


def test_cli_churn_with_a_late_landmark_says_its_window(demo_db):
    out = subprocess.run([sys.executable, "-m", "cxmetrics", "metrics", "churn", "--landmark", "2026-03-01",
                          "--json", "--db", str(demo_db)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["label"].startswith("7-month churn") and "7-month window" in res["method"]
    shown = json.dumps({k: v for k, v in res.items() if k not in ("warnings", "queries")})
    assert "12-month" not in shown and "12 months" not in shown


def test_default_landmark_comes_from_the_data_not_today():
    import duckdb

    mem = duckdb.connect()
    mem.execute("CREATE TABLE meta (key VARCHAR, value VARCHAR)")  # no summaries: the responses are read
    mem.execute("CREATE TABLE survey_responses (responded_on DATE, survey VARCHAR)")
    mem.execute("CREATE TABLE transactions (occurred_on DATE)")
    mem.execute("CREATE TABLE churn_events (churned_on DATE)")
    mem.execute("INSERT INTO transactions VALUES ('2018-06-01'), ('2020-03-31')")
    # no survey: 12 months before the end of the data
    assert churn.default_landmark(mem, Filters()) == dt.date(2019, 3, 31)
    # a year after the first response would leave 9 months: moved back to keep 12
    mem.execute("INSERT INTO survey_responses VALUES ('2018-07-01', 'relationship')")
    assert churn.default_landmark(mem, Filters()) == dt.date(2019, 3, 31)
    # never before the day after the first response
    mem.execute("DELETE FROM transactions WHERE occurred_on > '2019-01-01'")
    mem.execute("INSERT INTO churn_events VALUES ('2019-02-01')")
    assert churn.default_landmark(mem, Filters()) == dt.date(2018, 7, 2)


# ------------------------------------------------ cohort retention intervals (item 13)
def test_cohort_retention_has_wilson_intervals(con):
    from statsmodels.stats.proportion import proportion_confint

    t = retention.cohort_retention(con, Filters()).table
    assert len(t) > 10 and "Wilson" in retention.cohort_retention(con, Filters()).method
    still = (t["retained"] * t["customers"]).round()
    lo, hi = proportion_confint(still, t["customers"], alpha=0.05, method="wilson")
    assert t["ci_low"].to_numpy() == pytest.approx(np.asarray(lo)) and t["ci_high"].to_numpy() == pytest.approx(np.asarray(hi))
    assert ((t["ci_low"] <= t["retained"]) & (t["retained"] <= t["ci_high"])).all()


# ------------------------------------------------ item 12: robustness on real data
def test_a_group_without_churn_is_not_estimable_and_the_rest_is_kept(writable_db):
    L = dt.date(2024, 10, 17)  # not the summaries' landmark: read from the landmark states
    with store.connect(str(writable_db), read_only=False) as w, store.transaction(w):  # a write through the store
        ids = [r[0] for r in w.execute(_LANDMARK_BASE + "SELECT customer_id FROM b WHERE nps_group = 'passive'",
                                       {"L": L}).fetchall()]
        w.execute("DELETE FROM churn_events WHERE list_contains($ids, customer_id)", {"ids": ids})
        store.bump_version(w, ["churn_events"])
    with store.connect(str(writable_db)) as c:
        res = churn.hazard_ratios(c, Filters(), landmark=L)
    t = res.table.set_index(["group", "measure", "model"])
    passive = t.xs("passive", level="group")
    assert passive["ratio"].isna().all() and passive["note"].str.contains("no churn in the passive group").all()
    det = t.xs("detractor", level="group")
    assert det["ratio"].notna().all() and (det["ratio"] > 1).all()
    assert res.headline and res.headline[0].estimate > 1
    assert any("not estimable" in w for w in res.warnings)


def _telco_frames(seed: int = 3, n: int = 800) -> dict[str, pd.DataFrame]:
    """A telco-like company: contractual customers, CSAT 1–5 only (no NPS, no transactions), and
    one quarter of churn after 2019-07-02, more likely at low satisfaction."""
    rng = np.random.default_rng(seed)
    ids = [f"T{i:04d}" for i in range(n)]
    acquired = pd.Timestamp("2016-01-01") + pd.to_timedelta(rng.integers(0, 1200, n), unit="D")
    customers = pd.DataFrame({"customer_id": ids, "segment": rng.choice(["consumer", "smb"], n),
                              "region": rng.choice(["north", "south"], n), "acquired_on": acquired.date,
                              "contract": "contractual"})
    csat = rng.integers(1, 6, n)
    answered = pd.Timestamp("2019-04-01") + pd.to_timedelta(rng.integers(0, 90, n), unit="D")
    responses = pd.DataFrame({"response_id": [f"R{i:04d}" for i in range(n)], "customer_id": ids,
                              "responded_on": answered.date, "survey": "relationship", "csat": csat})
    churned = rng.random(n) < np.array([0.0, 0.5, 0.35, 0.25, 0.15, 0.08])[csat]
    churned_on = pd.Timestamp("2019-07-02") + pd.to_timedelta(rng.integers(0, 91, n), unit="D")
    events = pd.DataFrame({"customer_id": np.array(ids)[churned], "churned_on": churned_on[churned].date,
                           "reason": "moved", "voluntary": True})
    return {"customers": customers, "survey_responses": responses, "churn_events": events}


@pytest.fixture(scope="module")
def telco_db(tmp_path_factory):
    from cxmetrics.registers import importer

    folder = tmp_path_factory.mktemp("telco")
    db = folder / "telco.duckdb"
    r = subprocess.run([sys.executable, "-m", "cxmetrics", "init", "--db", str(db)], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    frames = _telco_frames()
    for name in ("customers", "churn_events", "survey_responses"):
        path = folder / f"{name}.csv"
        frames[name].to_csv(path, index=False)
        importer.import_file(path, name, db=str(db), actor="test")
    return db, frames


def test_telco_churn_by_csat_is_the_share_active_at_the_landmark_who_churned(telco_db):
    db, f = telco_db
    out = subprocess.run([sys.executable, "-m", "cxmetrics", "metrics", "churn", "--by", "csat", "--landmark",
                          "2019-07-02", "--json", "--db", str(db)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["label"].startswith("3-month churn by CSAT")
    rows = pd.DataFrame(res["rows"]).set_index("csat")
    # independent: every customer is active at the landmark (churn comes after it) and answered before it
    L = pd.Timestamp("2019-07-02").date()
    active = f["customers"][f["customers"]["acquired_on"] <= L]
    per = active.merge(f["survey_responses"][["customer_id", "csat"]], on="customer_id")
    per["churned"] = per["customer_id"].isin(f["churn_events"]["customer_id"])
    want = per.groupby(per["csat"].astype(str))["churned"].agg(["size", "sum"])
    assert rows["customers"].to_dict() == want["size"].to_dict()
    assert rows["churned"].to_dict() == want["sum"].to_dict()
    assert rows.loc["1", "churn_rate_pct"] > rows.loc["5", "churn_rate_pct"]
    share = 100 * per["churned"].mean()
    assert 15 < share < 35  # about a quarter churns


def test_telco_store_without_transactions_has_curves_and_cohorts(telco_db):
    db, f = telco_db
    with store.connect(str(db), read_only=False) as w:  # the same store with NPS answers added
        with store.transaction(w):  # a write through the store: a new data version, summaries rebuilt
            w.execute("UPDATE survey_responses SET nps = CASE csat WHEN 5 THEN 9 WHEN 4 THEN 8 ELSE 3 END")
            store.bump_version(w, ["survey_responses"])
    try:
        with store.connect(str(db)) as c:
            km = churn.survival_curves(c, Filters(), landmark=dt.date(2019, 7, 2))
            assert set(km.table["nps_group"]) == {"promoter", "passive", "detractor"}
            assert km.table["survival"].min() < 1
            coh = retention.cohort_retention(c, Filters())
            assert len(coh.table) and coh.table["ci_low"].notna().all()
    finally:
        with store.connect(str(db), read_only=False) as w:
            with store.transaction(w):
                w.execute("UPDATE survey_responses SET nps = NULL")
                store.bump_version(w, ["survey_responses"])


def test_complaint_churn_uplift_without_churn_in_a_state_is_not_estimable(writable_db):
    from cxmetrics.metrics import complaints

    with store.connect(str(writable_db)) as c:
        L = churn.default_landmark(c, Filters())
        before = complaints.churn_uplift(c, Filters()).table
    assert {"escalated", "resolved"} <= set(before["complaint_history"])
    with store.connect(str(writable_db), read_only=False) as w, store.transaction(w):  # a write through the store
        # no customer with an escalated, resolved complaint before the landmark churns
        w.execute("""DELETE FROM churn_events WHERE customer_id IN (
                         SELECT customer_id FROM complaints WHERE opened_on < $L AND escalated GROUP BY 1)""",
                  {"L": L})
        store.bump_version(w, ["churn_events"])
    with store.connect(str(writable_db)) as c:
        # an end date: the landmark base is not the stored one (read from the landmark states)
        end = c.execute("SELECT max(occurred_on) FROM transactions").fetchone()[0]
        res = complaints.churn_uplift(c, Filters(date_to=end))
    t = res.table.set_index("complaint_history")
    assert math.isnan(t.loc["escalated", "hazard_ratio"]) and "no churn" in t.loc["escalated", "note"]
    assert t.drop(index="escalated")["hazard_ratio"].notna().all()
    assert any("not estimable" in w for w in res.warnings)


# ------------------------------------------------ monthly churn and cohorts, counted independently
def _lifespans(con, filters: Filters) -> pd.DataFrame:
    """Contract customers in ``filters`` (a segment, or a department's customers: a response or
    complaint attributed to it) with their acquisition and churn dates, read from the raw tables."""
    c = con.execute("SELECT c.customer_id, c.segment, c.acquired_on, ce.churned_on FROM customers c "
                    "LEFT JOIN churn_events ce USING (customer_id) WHERE c.contract = 'contractual'").df()
    if filters.segments:
        c = c[c["segment"].isin(filters.segments)]
    if filters.scope.restricted:
        ids = {r[0] for r in con.execute(
            "SELECT customer_id FROM survey_responses WHERE department IN (SELECT unnest($d)) UNION "
            "SELECT customer_id FROM complaints WHERE department IN (SELECT unnest($d))",
            {"d": list(filters.scope.departments)}).fetchall()}
        c = c[c["customer_id"].isin(ids)]
    return c.assign(acquired_on=pd.to_datetime(c["acquired_on"]), churned_on=pd.to_datetime(c["churned_on"]))


@pytest.mark.parametrize("filters", [Filters(), Filters(segments=("smb",)),
                                     Filters(scope=Scope(role="department", departments=("billing",), user="b")),
                                     Filters(date_from=dt.date(2025, 2, 17), date_to=dt.date(2026, 1, 9))],
                         ids=["unfiltered", "segment", "department", "range"])
def test_monthly_churn_and_cohort_retention_count_what_pandas_counts(con, filters):
    """Active at a month's start (acquired in an earlier month, not churned before it), churned in
    it, and each quarterly cohort's members not churned k whole months after acquisition (ages every
    member reached by the last transaction), counted in pandas from the raw tables."""
    c = _lifespans(con, filters)
    assert len(c) > 50
    month = retention.churn_rate_by_period(con, filters).table
    lo, hi = con.execute("SELECT min(responded_on), max(responded_on) FROM survey_responses").fetchone()
    grid = pd.date_range(pd.Timestamp(lo).to_period("M").start_time, pd.Timestamp(hi), freq="MS")
    if filters.date_from is not None:
        grid = grid[(grid >= pd.Timestamp(filters.date_from).to_period("M").start_time)
                    & (grid <= pd.Timestamp(filters.date_to))]
    acq_m = c["acquired_on"].dt.to_period("M").dt.start_time
    churn_m = c["churned_on"].dt.to_period("M").dt.start_time
    active = [int(((acq_m < m) & (churn_m.isna() | (churn_m >= m))).sum()) for m in grid]
    churned = [int((churn_m == m).sum()) for m in grid]
    got = month[month["active"] > 0]
    want = pd.DataFrame({"month": grid, "active": active, "churned": churned})
    want = want[want["active"] > 0]
    assert list(pd.to_datetime(got["month"])) == list(want["month"])
    assert got["active"].tolist() == want["active"].tolist() and got["churned"].tolist() == want["churned"].tolist()

    coh = retention.cohort_retention(con, filters).table
    end = pd.Timestamp(con.execute("SELECT max(occurred_on) FROM transactions").fetchone()[0])
    a, z = c["acquired_on"], c["churned_on"]
    lived = (z.dt.year - a.dt.year) * 12 + (z.dt.month - a.dt.month)
    reached = pd.Series([x + pd.DateOffset(months=int(k)) for x, k in zip(a, lived.fillna(0), strict=True)], index=a.index)
    lived = lived.where(reached <= z, lived - 1)
    cohort = a.dt.to_period("Q").dt.start_time
    rows = []
    for q, members in c.groupby(cohort):
        for k in range(0, 37, 3):
            if q + pd.DateOffset(months=k + 3) <= end:
                lv = lived[members.index]
                rows.append((q, k, len(members), (lv.isna() | (lv >= k)).sum() / len(members)))
    want = pd.DataFrame(rows, columns=["cohort", "months", "customers", "retained"])
    assert len(coh) == len(want) > 10
    assert list(pd.to_datetime(coh["cohort"])) == list(want["cohort"]) and coh["months"].tolist() == want["months"].tolist()
    assert coh["customers"].tolist() == want["customers"].tolist()
    assert coh["retained"].to_numpy() == pytest.approx(want["retained"].to_numpy(), rel=1e-12)
