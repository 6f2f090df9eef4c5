"""Issue 18 "the money": segment-adjusted group differences, assumptions flowing everywhere."""

import datetime as dt

import pandas as pd
import pytest
from scipy.optimize import brentq

from cxmetrics import store, views
from cxmetrics.core.filters import Filters
from cxmetrics.core.results import Result
from cxmetrics.metrics import clv, pnl
from cxmetrics.store import assumptions


def planted_strata() -> tuple[Result, Result]:
    """NPS has no effect within segment; promoters sit in the high-value segment."""
    rows = []
    for seg, value, mix in (("enterprise", 50_000.0, {"promoter": 400, "detractor": 50}),
                            ("consumer", 500.0, {"promoter": 100, "detractor": 450})):
        for g, n in mix.items():
            half = value * 0.2  # the cell's CLV interval, the same for both groups
            rows.append({"nps_group": g, "segment": seg, "tenure": "24m+", "customers": n, "clv": value,
                         "clv_se": half / 1.96, "ci_low": value - half, "ci_high": value + half})
    t = pd.DataFrame(rows)
    pooled = (t.assign(w=t["clv"] * t["customers"], lo=t["ci_low"] * t["customers"], hi=t["ci_high"] * t["customers"],
                       se=t["clv_se"] * t["customers"])
              .groupby("nps_group").sum(numeric_only=True))
    pooled = pd.DataFrame({"nps_group": pooled.index, "customers": pooled["customers"].values,
                           "clv": (pooled["w"] / pooled["customers"]).values,
                           "ci_low": (pooled["lo"] / pooled["customers"]).values,
                           "ci_high": (pooled["hi"] / pooled["customers"]).values,
                           "clv_se": (pooled["se"] / pooled["customers"]).values})
    return Result("clv", "pooled", pooled), Result("clv", "strata", t)


def test_segment_mix_does_not_make_money():
    pooled, strata = planted_strata()
    crude = clv.promoter_value(pooled)
    adj = clv.promoter_value(pooled, strata=strata)
    assert crude.ci_low > 0  # the mix alone looks like a large promoter premium
    assert adj.ci_low <= 0 <= adj.ci_high
    assert adj.estimate == pytest.approx(0.0, abs=1e-6)
    assert adj.crude.estimate == pytest.approx(crude.estimate)
    assert "mix" in clv.describe(pooled, adj)


def test_bridge_headline_is_adjusted_and_the_crude_figure_sits_beside_it(con):
    p = pnl.detractor_scenario(con, Filters(), to="promoter", draws=500)
    ret = p.components.set_index("component").loc["retention", "estimate"]
    crude = p.crude.set_index("component").loc["retention", "estimate"]
    assert ret < crude  # promoters' lower churn is partly their segment
    assert p.extra["strata"] == ("segment", "tenure")
    assert "segment" in pnl.describe(p) and "Crude" in pnl.describe(p)


def _net_by_full_recomputation(path, key):
    def f(x):
        with store.connect(str(path), read_only=False) as con:
            assumptions.set_value(con, key, x, actor="test", role="finance")
        with store.connect(str(path)) as con:
            inp, _, _ = pnl.gather(con, Filters(), to="passive")
        from cxmetrics.metrics import bridge

        return bridge.net(inp)
    return f


def test_break_even_margin_equals_an_independent_root(writable_db):
    with store.connect(str(writable_db)) as con:
        p = pnl.detractor_scenario(con, Filters(), to="passive", draws=300)
    be = p.break_even.set_index("assumption").loc["gross_margin", "break_even"]
    f = _net_by_full_recomputation(writable_db, "gross_margin")
    root = brentq(f, 0.0, 1.0, xtol=1e-6)
    assert be == pytest.approx(root, abs=1e-4)
    assert f(0.0) < 0 < f(0.35)
    # the tornado's margin swing is the same recomputation
    row = p.tornado.set_index("assumption").loc["gross_margin"]
    assert row["net_at_high"] - row["net_at_low"] == pytest.approx(f(row["high"]) - f(row["low"]), rel=1e-6)


def test_margin_zero_on_the_store(writable_db):
    with store.connect(str(writable_db), read_only=False) as con:
        assumptions.set_value(con, "gross_margin", 0.0, actor="test", role="finance")
    with store.connect(str(writable_db)) as con:
        p = pnl.detractor_scenario(con, Filters(), to="promoter", draws=300)
    c = p.components.set_index("component")["estimate"]
    for k in ("retention", "enrichment", "advocacy"):
        assert c[k] == pytest.approx(0.0, abs=1e-6)
    assert p.net[0] < 0


def test_promoter_value_interval_follows_alpha_and_carries_its_se():
    pooled, strata = planted_strata()
    wide = clv.promoter_value(pooled)
    narrow = clv.promoter_value(Result("clv", "pooled", pooled.table, alpha=0.10))
    assert wide.se == pytest.approx(narrow.se) and wide.se > 0
    assert (narrow.ci_high - narrow.ci_low) / (wide.ci_high - wide.ci_low) == pytest.approx(1.6449 / 1.9600, rel=1e-3)
    assert wide.conf_int(0.10) == pytest.approx((narrow.ci_low, narrow.ci_high))


# --- item 5: assumption ranges, stored and propagated -----------------------------------------

def test_ranges_are_set_by_finance_only_versioned_and_validated(writable_db):
    with store.connect(str(writable_db), read_only=False) as con:
        with pytest.raises(assumptions.AssumptionError, match="finance only"):
            assumptions.set_range(con, "gross_margin", 0.2, 0.5, actor="ann", role="analyst")
        with pytest.raises(assumptions.AssumptionError, match="must contain the value"):
            assumptions.set_range(con, "gross_margin", 0.4, 0.5, actor="fiona", role="finance")
        a = assumptions.set_range(con, "gross_margin", 0.2, 0.5, actor="fiona", role="finance")
        assert a.range == (0.2, 0.5) and a.value == 0.35 and a.version == 2
        assert "[range 0.2 to 0.5]" in a.cite()
        with pytest.raises(assumptions.AssumptionError, match="outside its range"):
            assumptions.set_value(con, "gross_margin", 0.6, actor="fiona", role="finance")
        assumptions.set_value(con, "gross_margin", 0.3, actor="fiona", role="finance")
        assert assumptions.get(con, "gross_margin").range == (0.2, 0.5)  # a value edit keeps the range
        h = assumptions.history(con, "gross_margin")
        assert h.loc[h["version"] == 2, ["low", "high"]].values.tolist() == [[0.2, 0.5]]
        assumptions.restore(con, "gross_margin", 1, actor="fiona", role="finance")  # the version without a range
        assert assumptions.get(con, "gross_margin").range is None


def test_ranges_come_in_with_an_assumptions_import(writable_db, tmp_path):
    from cxmetrics.registers import importer

    f = tmp_path / "a.csv"
    f.write_text("key,value,unit,source,low,high\ngross_margin,0.31,share,budget 2027,0.25,0.40\n")
    importer.import_file(f, "assumptions", db=str(writable_db), role="finance")
    with store.connect(str(writable_db)) as con:
        a = assumptions.get(con, "gross_margin")
    assert (a.value, a.range, a.version) == (0.31, (0.25, 0.40), 2)
    bad = tmp_path / "b.csv"
    bad.write_text("key,value,unit,low,high\ngross_margin,0.31,share,0.35,0.40\n")
    with pytest.raises(importer.ImportRejected, match="low is above the value"):
        importer.import_file(bad, "assumptions", db=str(writable_db), role="finance")


def test_scenario_interval_with_assumption_ranges(writable_db):
    with store.connect(str(writable_db), read_only=False) as con:
        for key, r in {"gross_margin": (0.35, 0.35), "discount_rate": (0.10, 0.10)}.items():
            assumptions.set_range(con, key, *r, actor="fiona", role="finance")
    with store.connect(str(writable_db)) as con:
        stat = pnl.detractor_scenario(con, Filters(), to="promoter", draws=400)
        flat = pnl.detractor_scenario(con, Filters(), to="promoter", draws=400, assumption_ranges=True)
    assert flat.net == pytest.approx(stat.net, rel=1e-9)  # degenerate ranges: the statistical interval
    assert flat.includes_assumptions and not stat.includes_assumptions
    assert "statistical only" in pnl.describe(stat) and "with assumption uncertainty" in pnl.describe(flat)
    with store.connect(str(writable_db), read_only=False) as con:
        assumptions.set_range(con, "gross_margin", 0.15, 0.60, actor="fiona", role="finance")
    with store.connect(str(writable_db)) as con:
        wide = pnl.detractor_scenario(con, Filters(), to="promoter", draws=400, assumption_ranges=True)
    assert wide.net[2] - wide.net[1] > 1.5 * (stat.net[2] - stat.net[1])
    assert "gross_margin 0.15 to 0.6" in wide.interval_note and "triangular" in wide.interval_note
    # the tornado uses finance's range too
    row = wide.tornado.set_index("assumption").loc["gross_margin"]
    assert (row["low"], row["high"]) == (0.15, 0.60)


def test_a_version_2_file_gains_the_range_columns(small_db, tmp_path):
    import shutil

    import duckdb

    from cxmetrics.store import schema

    path = tmp_path / "v2.duckdb"
    shutil.copy(small_db, path)
    raw = duckdb.connect(str(path))
    # the version-2 layout: no low/high (and no range checks)
    raw.execute("CREATE TABLE old_a AS SELECT key, value, unit, source, updated_by, updated_on FROM assumptions")
    raw.execute("DROP TABLE assumptions")
    raw.execute("CREATE TABLE assumptions (key VARCHAR NOT NULL, value DOUBLE NOT NULL, unit VARCHAR NOT NULL, "
                "source VARCHAR, updated_by VARCHAR, updated_on DATE, PRIMARY KEY (key))")
    raw.execute("INSERT INTO assumptions SELECT * FROM old_a")
    raw.execute("DROP TABLE old_a")
    raw.execute("ALTER TABLE assumption_history DROP COLUMN low")
    raw.execute("ALTER TABLE assumption_history DROP COLUMN high")
    raw.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    before = raw.execute("SELECT key, value FROM assumptions ORDER BY key").fetchall()
    raw.close()
    with store.connect(str(path), read_only=False) as con:
        assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(schema.SCHEMA_VERSION)
        assert con.execute("SELECT key, value FROM assumptions ORDER BY key").fetchall() == before
        a = assumptions.set_range(con, "gross_margin", 0.2, 0.5, actor="fiona", role="finance")
    assert a.range == (0.2, 0.5)


# --- items 1/2 rest: enrichment and cost savings within segment --------------------------------

def planted_cells() -> pd.DataFrame:
    """NPS changes neither share of wallet nor complaints within segment; promoters sit in enterprise."""
    rows = []
    for seg, sow, wallet, k, mix in (("enterprise", 0.60, 20_000.0, 0.3, {"promoter": 400, "detractor": 50}),
                                     ("consumer", 0.20, 2_000.0, 1.2, {"promoter": 100, "detractor": 450})):
        for g, n in mix.items():
            rows.append({"nps_group": g, "segment": seg, "customers": n, "sow": sow, "sow_se": 0.15 / n ** 0.5,
                         "wallet": wallet, "wallet_se": 0.0, "complaints": k, "complaints_se": (k * n) ** 0.5 / n})
    return pd.DataFrame(rows)


def test_enrichment_and_complaint_gaps_from_segment_mix_are_not_money():
    from dataclasses import replace

    from cxmetrics.metrics import bridge
    from cxmetrics.metrics.bridge import BridgeInputs, Quantity

    cells = planted_cells()
    adj, info = pnl.segment_standardised(cells, "promoter")
    assert info["strata"] == ("segment",)
    # crude: pooled (customer-weighted) means of each group, as the pooled queries compute them
    pooled = {}
    for g, t in cells.groupby("nps_group"):
        w = t["customers"] / t["customers"].sum()
        pooled[g] = {v: ((w * t[v]).sum(), ((w * t[f"{v}_se"]) ** 2).sum() ** 0.5) for v in ("sow", "complaints")}
    wallet = float((cells["wallet"] * cells["customers"]).sum() / cells["customers"].sum())
    crude_gap = pooled["promoter"]["sow"][0] - pooled["detractor"]["sow"][0]
    crude_se = (pooled["promoter"]["sow"][1] ** 2 + pooled["detractor"]["sow"][1] ** 2) ** 0.5
    base = BridgeInputs(
        moved=100, to="promoter", churn_det=Quantity(0.2), churn_to=Quantity(0.2), revenue_det=Quantity(1000),
        sow_gain=Quantity(crude_gap, crude_se), wallet=Quantity(wallet),
        complaints_det=Quantity(*pooled["detractor"]["complaints"]),
        complaints_to=Quantity(*pooled["promoter"]["complaints"]), revenue_new=Quantity(1000), churn_new=Quantity(0.2),
        programme_cost=0.0, assumptions={"gross_margin": 0.35, "discount_rate": 0.1, "horizon_years": 5,
                                         "referral_rate": 0.0, "referral_conversion": 0.0, "cost_per_complaint": 25.0,
                                         "attribution_share": 1.0})
    crude = bridge.simulate(base, seed=2)
    adjusted = bridge.simulate(replace(base, **adj), seed=2)
    for k in ("enrichment", "cost_savings"):
        assert not crude[k][1] <= 0 <= crude[k][2], k  # the mix alone looks like money
        assert adjusted[k][1] <= 0 <= adjusted[k][2], k
        assert adjusted[k][0] == pytest.approx(0.0, abs=1e-6)
    # weighted by the detractors' mix (the customers the scenario moves): 0.9 consumer, 0.1 enterprise
    assert adj["wallet"].value == pytest.approx(0.9 * 2_000 + 0.1 * 20_000)
    assert adj["complaints_det"].value == pytest.approx(0.9 * 1.2 + 0.1 * 0.3)


def test_bridge_enrichment_and_cost_savings_are_adjusted_on_the_store(con):
    p = pnl.detractor_scenario(con, Filters(), to="promoter", draws=300)
    src = p.inputs.set_index("input")["source"]
    for name in ("sow_gain", "complaints_det", "complaints_to"):
        assert "within segment" in src[name] and "detractors' mix" in src[name], name
    # recomputed independently: each segment's stated share-of-wallet gap × its mean wallet, weighted by the
    # detractors' segment mix
    from dataclasses import replace

    from cxmetrics.metrics import wallet

    strata = clv.clv_by_group(con, Filters(), by_segment=True, by_tenure=True, draws=50).table
    det = strata[strata["nps_group"] == "detractor"].groupby("segment")["customers"].sum()
    w = det / det.sum()
    money = 0.0
    for seg, ws in w.items():
        f = replace(Filters(), segments=(seg,))
        t = wallet.by_group(con, f).table.set_index("nps_group")["stated_pct"]
        money += ws * (t["promoter"] - t["detractor"]) / 100 * pnl._base(con, f)["wallet"]
    inp = p.inputs.set_index("input")["value"]
    assert inp["sow_gain"] * inp["wallet"] == pytest.approx(money, rel=1e-9)


# --- the adjusted money is the headline on every surface, the crude one beside it ---------------

def _texts(at) -> str:
    """Every markdown and caption text of the page, with markdown escapes removed."""
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption]).replace("\\", "")


def test_executive_summary_headlines_the_adjusted_money(demo_db, make_app):
    from cxmetrics.views import executive as summary

    at = make_app(demo_db, role="executive")
    assert not at.exception, at.exception
    with store.connect(str(demo_db)) as con:
        s = summary.page_data(con, at.session_state["filters"], drop_points=5.0, to="passive")
    b, v = s.bridge, s.promoter_value
    assert round(b.net[0]) != round(b.crude_net[0]) and round(v.estimate) != round(v.crude.estimate)
    tile = next(m for m in at.metric if m.label.startswith("Net impact"))
    assert "segment-adjusted" in tile.label and tile.value == f"{b.net[0]:,.0f} EUR"
    value_tile = next(m for m in at.metric if m.label.startswith("Value of moving"))
    assert value_tile.value == f"{v.estimate / 1e6:,.1f} M EUR"  # not the crude value
    text = _texts(at)
    assert f"Crude (pooled, not segment-adjusted): {b.crude_net[0]:,.0f}" in text
    assert f"Crude (pooled, not segment-adjusted): {v.crude.estimate:,.0f}" in text
    assert "weighted by the mix of the detractors who would move" in text


def test_customer_value_page_headlines_the_adjusted_value(demo_db, make_app):
    at = make_app(demo_db, page="pages/05_customer_value.py")
    assert not at.exception, at.exception
    with store.connect(str(demo_db)) as con:
        v = views.value.page_data(con, at.session_state["filters"], moved=1000).promoter_value
    tile = next(m for m in at.metric if m.label.startswith("Value of moving"))
    assert tile.value == f"{v.estimate / 1e6:,.1f} M EUR" and "(crude)" not in tile.label
    assert f"Crude (pooled, not segment-adjusted): {v.crude.estimate:,.0f}" in _texts(at)


def test_finance_review_headlines_the_adjusted_net_and_offers_the_ranges(writable_db, make_app):
    with store.connect(str(writable_db), read_only=False) as con:
        assumptions.set_range(con, "gross_margin", 0.15, 0.60, actor="fiona", role="finance")
    at = make_app(writable_db, role="finance", page="pages/10_finance_review.py", timeout=180)
    assert not at.exception, at.exception
    with store.connect(str(writable_db)) as con:
        b = pnl.detractor_scenario(con, at.session_state["filters"])
    heads = [m.value.replace("\\", "") for m in at.markdown if "net impact" in m.value]
    assert heads and heads[0].startswith("**") and f"segment-adjusted net impact {b.net[0]:,.0f}" in heads[0]
    assert f"{b.crude_net[0]:,.0f}" not in heads[0]
    assert f"Crude (pooled, not segment-adjusted): {b.crude_net[0]:,.0f}" in _texts(at)
    assert any("statistical only" in c.value for c in at.caption)
    at.toggle(key="fin_mc").set_value(True).run()
    assert not at.exception, at.exception
    assert any("includes assumption uncertainty" in c.value and "gross_margin 0.15 to 0.6" in c.value
               for c in at.caption)
    # a range set on the page
    at.selectbox(key="fin_range_key").select("discount_rate")
    at.number_input(key="fin_range_low").set_value(0.05)
    at.number_input(key="fin_range_high").set_value(0.15)
    at.button(key="FormSubmitter:fin_range-Save range").click().run()
    assert not at.exception, at.exception
    with store.connect(str(writable_db)) as con:
        assert assumptions.get(con, "discount_rate").range == (0.05, 0.15)


def test_the_deck_headlines_the_adjusted_money(con):
    from cxmetrics import story
    from cxmetrics.views import executive as summary

    slides = {s.title: s for s in story.story(con, Filters())}
    s = summary.page_data(con, Filters())
    bridge_text = slides["What CX is worth: the CX-to-P&L bridge"].sentences[0]
    adjusted, crude = f"segment-adjusted net impact {s.bridge.net[0]:,.0f}", "Crude (pooled, not segment-adjusted): "
    assert adjusted in bridge_text and crude + f"{s.bridge.crude_net[0]:,.0f}" in bridge_text
    assert bridge_text.index(adjusted) < bridge_text.index(crude)
    value_text = slides["Detractors leave sooner and are worth less"].sentences[1]
    assert f"is worth {s.promoter_value.estimate:,.0f}" in value_text
    assert value_text.index(f"{s.promoter_value.estimate:,.0f}") < value_text.index(f"{s.promoter_value.crude.estimate:,.0f}")


def test_confounding_caveat_rule():
    # shown when |crude − adjusted| exceeds the half-width of the adjusted statistical interval
    assert pnl.confounding_note((100.0, 60.0, 140.0), (150.0, 90.0, 210.0)) != ""  # gap 50 > 40
    assert "50" in pnl.confounding_note((100.0, 60.0, 140.0), (150.0, 90.0, 210.0))
    assert pnl.confounding_note((100.0, 60.0, 140.0), (130.0, 90.0, 170.0)) == ""  # gap 30 ≤ 40
    assert pnl.confounding_note((100.0, 60.0, 140.0), None) == ""


@pytest.mark.parametrize("filters", [Filters(), Filters(date_from=dt.date(2025, 10, 1), date_to=dt.date(2026, 3, 31)),
                                     Filters(regions=("north",)), Filters(segments=("smb", "consumer"))],
                         ids=["unfiltered", "date range", "region", "two segments"])
def test_the_bridges_segment_cells_are_each_segments_own_figures(con, filters):
    """The per-segment share of wallet, complaint rate and wallet the segment adjustment uses come
    from one query each, grouped by segment: row by row they are what :func:`wallet.by_group`,
    :func:`complaints.rate_by_nps_group` and the bridge's base give under a filter of that one
    segment."""
    from dataclasses import replace

    from cxmetrics.metrics import complaints, wallet

    counts = clv.clv_by_group(con, filters, by_segment=True, by_tenure=True, draws=200).table
    got = pnl._segment_cells(con, filters, "passive", counts)
    want = []
    for seg in sorted(counts["segment"].dropna().unique()):
        f = replace(filters, segments=(seg,))
        w = wallet.by_group(con, f).table.set_index("nps_group")
        k = complaints.rate_by_nps_group(con, f).set_index("nps_group")
        b = pnl._base(con, f)
        for g in ("detractor", "passive"):
            n = counts[(counts["segment"] == seg) & (counts["nps_group"] == g)]["customers"].sum()
            if g in w.index and g in k.index and w.loc[g, "stated_n"] >= 2 and n:
                want.append({"nps_group": g, "segment": seg, "customers": int(n), "sow": w.loc[g, "stated_pct"] / 100,
                             "sow_se": w.loc[g, "stated_se"] / 100, "wallet": b["wallet"], "wallet_se": b["wallet_se"],
                             "complaints": k.loc[g, "per_customer_year"], "complaints_se": k.loc[g, "se"]})
    assert len(want) >= 4
    pd.testing.assert_frame_equal(got, pd.DataFrame(want), check_dtype=False, rtol=1e-12)
