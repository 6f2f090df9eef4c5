"""Issue 18 "the money": segment-adjusted group differences, assumptions flowing everywhere."""

import pandas as pd
import pytest
from scipy.optimize import brentq

from cxmetrics import assumptions, clv, pnl, store
from cxmetrics.filters import Filters
from cxmetrics.results import Result


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
        from cxmetrics import bridge

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
