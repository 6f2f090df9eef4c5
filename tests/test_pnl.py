"""The bridge from the store, the executive summary page and the pnl CLI."""

import json
import subprocess
import sys

import pytest

from cxmetrics import store
from cxmetrics.core.filters import Filters
from cxmetrics.metrics import bridge, pnl
from cxmetrics.store import assumptions
from cxmetrics.views import executive as summary


def test_detractor_scenario_from_the_store(con):
    p = pnl.detractor_scenario(con, Filters(), drop_points=5, to="promoter")
    est, lo, hi = p.net
    assert lo <= est <= hi
    comps = p.components.set_index("component")
    assert comps.loc["retention", "estimate"] > 0 and comps.loc["enrichment", "estimate"] > 0
    assert comps.loc["advocacy", "estimate"] > 0  # promoters refer
    assert set(p.assumptions) == set(pnl.BRIDGE_ASSUMPTIONS) and all("v" in v for v in p.assumptions.values())
    assert p.tornado["swing"].is_monotonic_decreasing


def test_scenario_cites_an_edited_assumption_version(writable_db):
    with store.connect(str(writable_db), read_only=False) as con:
        assumptions.set_value(con, "gross_margin", 0.30, actor="fiona", role="finance")
    with store.connect(str(writable_db)) as con:
        p = pnl.detractor_scenario(con, Filters())
    assert p.assumptions["gross_margin"].startswith("0.3 share (v2, fiona")


def test_bigger_scenario_is_worth_more_and_more_data_narrows_intervals(con):
    small = pnl.detractor_scenario(con, Filters(), drop_points=2)
    big = pnl.detractor_scenario(con, Filters(), drop_points=10)
    assert big.net[0] > small.net[0]
    one_region = pnl.detractor_scenario(con, Filters(regions=("west",)), drop_points=5)
    everyone = pnl.detractor_scenario(con, Filters(), drop_points=5)
    rel = lambda p: (p.components.iloc[0]["ci_high"] - p.components.iloc[0]["ci_low"]) / p.components.iloc[0]["estimate"]  # noqa: E731
    assert rel(everyone) < rel(one_region)


def test_initiatives_scenario(con):
    p = pnl.initiatives_scenario(con, Filters())
    assert p.cost > 0 and "INI-001" in set(p.components["component"])
    assert p.net[1] <= p.net[0] <= p.net[2]


def test_summary_findings_are_generated_from_results(con):
    s = summary.page_data(con, Filters())
    topics = dict(s.findings())
    assert f"{s.nps.estimate:.1f}" in topics["NPS"]
    assert "MISALIGNED" in topics["Alignment"] and "Delivery" in topics["Alignment"]
    assert topics["P&L"].startswith("If the detractor share fell by 5 points")


def test_executive_summary_page(demo_db, make_app):
    at = make_app(demo_db, role="executive")
    assert not at.exception, at.exception
    assert at.title[0].value == "Executive summary"  # the landing page
    assert any("**P&L.**" in m.value for m in at.markdown)
    assert any("-- bridge_base" in c.value for c in at.code)  # the bridge's "How was this computed?"
    at.slider(key="exec_drop").set_value(10).run()
    assert not at.exception


def test_cli_pnl(demo_db):
    out = subprocess.run([sys.executable, "-m", "cxmetrics", "metrics", "pnl", "--scenario", "detractors",
                          "--drop-points", "5", "--json", "--db", str(demo_db)], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["scenario"] == "detractors" and len(data["net"]) == 3
    assert {r["component"] for r in data["components"]} >= set(bridge.COMPONENTS)


@pytest.mark.parametrize("scenario", ["initiatives"])
def test_cli_pnl_initiatives(demo_db, scenario):
    out = subprocess.run([sys.executable, "-m", "cxmetrics", "metrics", "pnl", "--scenario", scenario,
                          "--db", str(demo_db)], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    assert "What the measured initiatives delivered to date: net impact" in out.stdout


def test_initiatives_roi_divides_by_the_cost_in_scope(con):
    from cxmetrics.core.filters import Scope

    billing = Filters(scope=Scope(role="department", departments=("billing",), user="bo"))
    p = pnl.initiatives_scenario(con, billing)
    want = con.execute("SELECT sum(cost) FROM initiatives WHERE department = 'billing'").fetchone()[0]
    everyone = con.execute("SELECT sum(cost) FROM initiatives").fetchone()[0]
    assert p.cost == pytest.approx(want) and want < everyone
    assert p.roi == pytest.approx(p.net[0] / want)


def test_initiatives_scenario_applies_the_attribution_share(writable_db):
    nets = {}
    for share in (1.0, 0.25):
        with store.connect(str(writable_db), read_only=False) as con:
            assumptions.set_value(con, "attribution_share", share, actor="test", role="finance")
        with store.connect(str(writable_db)) as con:
            nets[share] = pnl.initiatives_scenario(con, Filters())
    full, part = (nets[s].components.set_index("component") for s in (1.0, 0.25))
    money = [c for c in full.index if c != "programme_cost"]
    assert money
    for col in ("estimate", "ci_low", "ci_high"):
        assert part.loc[money, col].to_numpy() == pytest.approx(0.25 * full.loc[money, col].to_numpy())
    cost = nets[1.0].cost
    assert nets[0.25].net[0] == pytest.approx(0.25 * (nets[1.0].net[0] + cost) - cost)
    assert "share" in nets[0.25].method


def test_detractor_scenario_roi_divides_by_the_initiatives_in_scope(con):
    from cxmetrics.core.filters import Scope

    for deps in (("billing",), ("billing", "digital")):
        f = Filters(scope=Scope(role="analyst", departments=deps, user="fin"))
        want = con.execute("SELECT sum(cost) FROM initiatives WHERE list_contains(?, department)", [list(deps)]).fetchone()[0]
        assert pnl.scoped_programme_cost(con, f) == pytest.approx(want)
    assert pnl.scoped_programme_cost(con, Filters()) == pytest.approx(
        con.execute("SELECT sum(cost) FROM initiatives").fetchone()[0])
    p = pnl.detractor_scenario(con, Filters(), draws=200)
    assert p.cost == pytest.approx(pnl.scoped_programme_cost(con, Filters()))
    assert p.roi == pytest.approx(p.net[0] / p.cost)


def test_the_bridge_shows_every_query_its_inputs_ran_even_those_its_page_ran_first(con):
    """The bridge is computed from other metrics' results (CLV by group, share of wallet, complaint
    rates, the active base): its "How was this computed?" lists the queries behind every input. On
    the Executive summary the CLV by group is computed before the bridge and handed to it from the
    page's memo, so its query must still be the bridge's; each query listed once."""
    def names(p):
        return [q.name for q in p.queries]

    alone = pnl.detractor_scenario(con, Filters())
    want = {"clv_inputs", "wallet_by_group", "complaint_rate_by_group", "bridge_base", "assumptions_current",
            "programme_cost"}
    assert want <= set(names(alone))
    keys = [(q.name, q.sql, repr(sorted(q.params.items()))) for q in alone.queries]
    assert len(keys) == len(set(keys))
    on_page = summary.page_data(con, Filters()).bridge
    assert set(names(on_page)) == set(names(alone))
    # the CLI's JSON carries them as the same text the page shows
    assert alone.to_dict()["queries"] == [q.describe() for q in alone.queries]
    ini = pnl.initiatives_scenario(con, Filters())
    assert "assumptions_current" in names(ini)


def test_the_kpi_scorecard_shows_the_queries_behind_its_money_at_risk(con):
    """The money at risk prices extra detractors at the CLV gap: the scorecard's queries include the
    CLV inputs, and its lineage the transactions and churn events they read."""
    from cxmetrics.metrics import alignment

    res = alignment.scorecard(con, Filters())
    assert res.extra["clv_gap"] is not None
    assert {"kpi_linked", "clv_inputs"} <= {q.name for q in res.queries}
    assert {"transactions", "churn_events"} <= set(res.extra["tables"])
