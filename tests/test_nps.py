"""NPS, CSAT, CES, drivers, representativeness and voice: hand-worked, properties, recovery, CLI."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxmetrics.core.filters import Filters, Scope
from cxmetrics.core.results import Estimate
from cxmetrics.metrics import drivers, nps, representativeness, scores
from cxmetrics.views import voice


# ----------------------------------------------------------------- hand-worked formulas
def test_nps_and_se_hand_worked():
    # 200 responses: 90 promoters, 60 passives, 50 detractors -> p=.45, d=.25, NPS=20
    e = nps.nps_estimate(200, 90, 50)
    assert e.estimate == pytest.approx(20.0)
    # SE = 100 sqrt((.45 + .25 - .2^2)/200) = 100 sqrt(.66/200) = 5.744563
    assert e.se == pytest.approx(5.744563, rel=1e-6)
    # adjusted Wald (Rocks 2016): p' = 90.75/203, d' = 50.75/203, SE' = sqrt((p'+d'-(p'-d')^2)/203)
    pa, da = 90.75 / 203, 50.75 / 203
    half = 1.959964 * math.sqrt((pa + da - (pa - da) ** 2) / 203)
    assert (e.ci_low, e.ci_high) == pytest.approx((100 * (pa - da - half), 100 * (pa - da + half)), rel=1e-6)


def test_two_sample_z_hand_worked():
    a = nps.nps_estimate(200, 90, 50)  # 20, SE 5.744563
    b = nps.nps_estimate(100, 30, 30)  # 0, SE = 100 sqrt(.6/100) = 7.745967
    d = nps.difference(a, b)
    se = math.sqrt(5.744563 ** 2 + 7.745967 ** 2)  # 9.643651
    assert d.estimate == pytest.approx(20.0)
    assert (d.ci_high - d.estimate) / 1.959964 == pytest.approx(se, rel=1e-6)
    assert d.p_value == pytest.approx(2 * (1 - 0.980954), abs=2e-4)  # z = 2.0739


def test_weighted_nps_and_kish_hand_worked():
    # 4 responses, weights 1,1,2,4: promoter(w1), promoter(w1), detractor(w2), passive(w4)
    # Σw = 8, Σw² = 22, n_eff = 64/22 = 2.909; p = 2/8, d = 2/8 -> NPS 0
    e = nps.nps_estimate(4, 2.0, 2.0, sum_w=8.0, sum_w2=22.0, min_n=3)
    assert e.estimate == pytest.approx(0.0)
    assert e.n_eff == pytest.approx(64 / 22)
    assert e.se == pytest.approx(100 * math.sqrt(0.5 / (64 / 22)))
    assert e.small_sample  # 2.9 effective responses < 3


def test_boundary_nps_interval_is_not_degenerate():
    # 5 of 5 promoters: the old Wald interval was exactly [100, 100]
    e = nps.nps_estimate(5, 5, 0)
    assert e.estimate == 100 and e.se == 0
    # adjusted Wald by hand: p' = 5.75/8, d' = .75/8 -> centre 62.5, half 1.96*sqrt((.8125-.390625)/8)
    assert e.ci_low == pytest.approx(100 * (0.625 - 1.959964 * math.sqrt((0.8125 - 0.390625) / 8)), rel=1e-6)
    assert e.ci_low < 20 and e.ci_high == 100
    assert "adjusted Wald" in e.method


def test_difference_uses_the_se_not_a_clipped_interval():
    # 11 of 12 promoters, 1 passive: SE = 100 sqrt((11/12)(1/12)/12) = 7.98 (the clipped CI gave 6.11)
    a = nps.nps_estimate(12, 11, 0)
    assert a.se == pytest.approx(7.9786, abs=1e-3)
    b = nps.nps_estimate(200, 90, 50)
    d = nps.difference(a, b)
    assert d.se == pytest.approx(math.hypot(7.9786, 5.744563), abs=1e-3)
    assert (d.ci_high - d.estimate) == pytest.approx(1.959964 * d.se, rel=1e-6)
    assert not hasattr(nps, "se_of")


def test_estimate_conf_int_from_se():
    e = nps.nps_estimate(200, 90, 50)
    assert e.conf_int() == (e.ci_low, e.ci_high)
    lo, hi = e.conf_int(0.10)
    assert (hi - lo) / 2 == pytest.approx(1.644854 * 5.744563, rel=1e-5)
    with pytest.raises(ValueError):
        Estimate("x", "x", 1.0, 0.0, 2.0).conf_int(0.1)


def test_repeat_respondents_get_a_clustered_se():
    # 400 customers each answering 4 times identically: 1600 responses, but only 400 independent
    # customers, so the SE is about twice the naive one (sqrt(4) × sqrt(m/(m-1)))
    rng = np.random.default_rng(3)
    y = rng.choice([1, 0, -1], size=400, p=[0.5, 0.3, 0.2])
    n, prom, det = 1600, 4 * int((y == 1).sum()), 4 * int((y == -1).sum())
    naive = nps.nps_estimate(n, prom, det)
    cl = nps.Clusters(m=400, max_size=4, yy=float(((4 * y) ** 2).sum()), yw=float((4 * y * 4).sum()), ww=400 * 16.0)
    e = nps.nps_estimate(n, prom, det, clusters=cl)
    assert e.se / naive.se == pytest.approx(2 * math.sqrt(400 / 399), rel=1e-9)
    assert "clustered" in e.method and e.n_eff == pytest.approx(400 * 399 / 400, rel=1e-6)
    # and one answer each: the simple formula is kept
    single = nps.Clusters(m=1600, max_size=1, yy=0.0, yw=0.0, ww=0.0)
    assert nps.nps_estimate(n, prom, det, clusters=single).se == naive.se


def test_repeat_respondents_clustered_in_sql(con):
    # independent computation from the raw rows: per-customer sums, linearised ratio variance
    df = con.execute("SELECT customer_id, CASE WHEN nps >= 9 THEN 1 WHEN nps <= 6 THEN -1 ELSE 0 END AS y "
                     "FROM survey_responses WHERE survey = 'relationship' AND nps IS NOT NULL").df()
    per = df.groupby("customer_id")["y"].agg(["sum", "count"])
    assert per["count"].max() > 1  # the demo has repeat respondents
    r, m, n = df["y"].mean(), len(per), len(df)
    se = 100 * math.sqrt(m / (m - 1) * ((per["sum"] - r * per["count"]) ** 2).sum() / n ** 2)
    e = nps.overall(con, Filters())
    assert e.se == pytest.approx(se, rel=1e-9)
    assert "clustered" in e.method


def test_describe_change_says_not_significant_plainly():
    d = Estimate("x", "x", 2.0, -1.0, 5.0, p_value=0.2)
    assert "not significant" in nps.describe_change(d, "Q2", "Q3")


# ----------------------------------------------------------------- properties
counts = st.tuples(st.integers(0, 400), st.integers(0, 400), st.integers(0, 400)).filter(lambda t: sum(t) > 0)


@given(counts)
@settings(max_examples=300, deadline=None)
def test_nps_bounds_and_ci_contains_estimate(c):
    p, pa, d = c
    e = nps.nps_estimate(p + pa + d, p, d)
    assert -100 <= e.estimate <= 100
    assert e.ci_low <= e.estimate <= e.ci_high
    assert -100 <= e.ci_low and e.ci_high <= 100


@given(st.integers(40, 300), st.floats(0.05, 0.6), st.floats(0.05, 0.35))
@settings(max_examples=25, deadline=None)
def test_analytic_se_agrees_with_bootstrap(n, p, d):
    rng = np.random.default_rng(n)
    scores = rng.choice([10, 8, 3], size=n, p=[p, 1 - p - d, d])
    e = nps.nps_estimate(n, int((scores == 10).sum()), int((scores == 3).sum()))
    boot = rng.choice(scores, size=(2000, n))
    sims = 100 * ((boot == 10).mean(axis=1) - (boot == 3).mean(axis=1))
    assert e.se == pytest.approx(sims.std(ddof=1), rel=0.15)


# ----------------------------------------------------------------- recovery on the demo data
def test_segment_nps_recovers_the_active_base(con, demo_frames):
    truth = demo_frames["truth"]
    table = nps.by(con, Filters(), dim="segment").table.set_index("segment")
    for seg in ("consumer", "smb", "enterprise"):
        row = table.loc[seg]
        assert row["ci_low"] <= truth[f"active_nps_{seg}"] <= row["ci_high"], seg


def test_enterprise_beats_consumer_significantly(con):
    f = Filters()
    ent = nps.overall(con, f.with_(segments=("enterprise",)))
    cons = nps.overall(con, f.with_(segments=("consumer",)))
    d = nps.difference(ent, cons)
    assert d.p_value < 0.001 and d.ci_low > 25


def test_weighting_recovers_base_nps_and_unweighted_overstates(con, demo_frames):
    truth = demo_frames["truth"]["active_nps"]
    w = nps.overall(con, Filters(), weighted=True)
    u = nps.overall(con, Filters())
    assert w.ci_low <= truth <= w.ci_high
    assert u.ci_low > truth  # respondents over-represent enterprise
    assert w.n_eff < w.n


def test_response_rates_follow_the_planted_order(con):
    t = representativeness.response_rates(con, Filters()).table.set_index("segment")
    assert t.loc["enterprise", "response_rate_pct"] > t.loc["smb", "response_rate_pct"] > t.loc["consumer", "response_rate_pct"]
    assert t.loc["enterprise", "weight"] < 1 < t.loc["consumer", "weight"]


def test_delivery_detractors_cost_the_most_nps(con):
    t = drivers.key_drivers(con, Filters()).table
    assert t.iloc[0]["touchpoint"] == "delivery"  # the planted delivery-time penalty
    assert (t["importance_ci_low"] > 0).all()


def test_small_groups_are_hidden_but_counted(con):
    t = nps.by(con, Filters(min_n=100000), dim="region").table
    assert t["hidden"].all() and t["nps"].isna().all() and (t["n"] > 0).all()


def test_scope_restricts_and_fails_closed(con):
    nobody = nps.by(con, Filters(scope=Scope(role="department", departments=())), dim="touchpoint",
                    survey="transactional")
    assert nobody.table.empty
    logistics = nps.by(con, Filters(scope=Scope(role="department", departments=("logistics",))),
                       dim="touchpoint", survey="transactional")
    assert logistics.table["touchpoint"].tolist() == ["delivery"]


def test_filters_are_bound_not_interpolated(con):
    evil = "x'); DROP TABLE customers; --"
    e = nps.overall(con, Filters(segments=(evil,)))
    assert e.n == 0
    assert con.execute("SELECT count(*) FROM customers").fetchone()[0] > 0


def test_csat_hand_checked_against_sql(con):
    r = scores.score(con, Filters(), metric="csat")
    mean, n = con.execute("SELECT avg(csat), count(csat) FROM survey_responses").fetchone()
    assert r.headline[0].estimate == pytest.approx(mean) and r.headline[0].n == n


def test_voice_search_is_literal_and_capped(con):
    v = voice.page_data(con, Filters(), search="%", limit=5)
    assert v.total_matching == 0  # '%' is searched literally, not as a wildcard
    v = voice.page_data(con, Filters(), search="late", group="detractor", limit=5)
    assert 0 < len(v.verbatims) <= 5 and v.total_matching >= len(v.verbatims)
    assert v.verbatims["verbatim"].str.contains("late", case=False).all()


# ----------------------------------------------------------------- CLI
def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "cxmetrics", *args], capture_output=True, text=True, timeout=120)


def test_cli_nps_json(demo_db):
    out = run_cli("metrics", "nps", "--by", "segment", "--weighted", "--json", "--db", str(demo_db))
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert {r["segment"] for r in data["rows"]} == {"consumer", "smb", "enterprise"}
    assert data["headline"][0]["n_eff"] is not None


def test_cli_csat_ces_and_bad_dimension(demo_db):
    assert run_cli("metrics", "csat", "--by", "touchpoint", "--json", "--db", str(demo_db)).returncode == 0
    assert run_cli("metrics", "ces", "--json", "--db", str(demo_db)).returncode == 0
    bad = run_cli("metrics", "nps", "--by", "colour", "--db", str(demo_db))
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
