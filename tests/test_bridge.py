"""The bridge model on a hand-worked example (all numbers below worked by hand)."""

from dataclasses import replace

import pytest

from cxmetrics import bridge
from cxmetrics.bridge import BridgeInputs, Quantity

ASSUME = {"gross_margin": 0.4, "discount_rate": 0.0, "horizon_years": 2, "referral_rate": 0.1,
          "referral_conversion": 0.5, "cost_per_complaint": 20.0, "attribution_share": 1.0}


def example(**changes) -> BridgeInputs:
    base = BridgeInputs(
        moved=100, to="promoter", churn_det=Quantity(0.3, 0.02), churn_to=Quantity(0.1, 0.01),
        margin_det=Quantity(200, 10), sow_gain=Quantity(0.2, 0.02), wallet=Quantity(1000, 50),
        complaints_gain=Quantity(0.5, 0.05), clv_new=Quantity(500, 40), programme_cost=10_000,
        assumptions=dict(ASSUME))
    return replace(base, **changes)


def test_hand_worked_components():
    # survival annuities: to = 0.9 + 0.81 = 1.71; detractor = 0.7 + 0.49 = 1.19
    c = bridge.components(example())
    assert c["retention"] == pytest.approx(100 * 200 * (1.71 - 1.19))  # 10,400
    assert c["enrichment"] == pytest.approx(100 * 0.2 * 1000 * 0.4 * 1.71)  # 13,680
    assert c["advocacy"] == pytest.approx(100 * 0.1 * 0.5 * 500 * 1.71)  # 4,275
    assert c["cost_savings"] == pytest.approx(100 * 0.5 * 20 * 1.71)  # 1,710
    assert c["net"] == pytest.approx(30_065 - 10_000)
    assert bridge.roi(example()) == pytest.approx(2.0065)


def test_passives_do_not_refer_and_attribution_scales():
    assert bridge.components(example(to="passive"))["advocacy"] == 0
    half = example(assumptions={**ASSUME, "attribution_share": 0.5})
    assert bridge.components(half)["retention"] == pytest.approx(5_200)


def test_discounting():
    c = bridge.components(example(assumptions={**ASSUME, "discount_rate": 0.1}))
    a_to = 0.9 / 1.1 + 0.81 / 1.21
    assert c["cost_savings"] == pytest.approx(100 * 0.5 * 20 * a_to)


def test_break_even_gross_margin_hand_worked():
    inp = example(programme_cost=30_000)
    # net = 10,400 + 4,275 + 1,710 + 34,200·gm − 30,000  →  gm* = 13,615 / 34,200
    assert bridge.break_even(inp, "gross_margin", 0.0, 1.0) == pytest.approx(13_615 / 34_200)
    assert bridge.break_even(example(), "gross_margin", 0.0, 1.0) is None  # always pays back


def test_tornado_orders_by_swing_and_matches_recomputation():
    rows = bridge.tornado(example(), {"gross_margin": (0.2, 0.6)})
    assert rows == sorted(rows, key=lambda r: -r["swing"])
    gm = next(r for r in rows if r["assumption"] == "gross_margin")
    assert gm["net_at_high"] - gm["net_at_low"] == pytest.approx(34_200 * 0.4)


def test_intervals_contain_estimate_and_narrow_with_smaller_errors():
    wide = bridge.simulate(example(), seed=1)
    tight_inp = example(**{k: Quantity(getattr(example(), k).value, getattr(example(), k).se / 10)
                           for k in ("churn_det", "churn_to", "margin_det", "sow_gain", "wallet",
                                     "complaints_gain", "clv_new")})
    tight = bridge.simulate(tight_inp, seed=1)
    for k in bridge.COMPONENTS + ("net",):
        est, lo, hi = wide[k]
        assert lo <= est <= hi
        assert tight[k][2] - tight[k][1] < (hi - lo) / 3 or hi == lo
