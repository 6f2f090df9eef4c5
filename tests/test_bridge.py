"""The bridge model on a hand-worked example (all numbers below worked by hand)."""

from dataclasses import replace

import pytest

from cxmetrics.metrics import bridge
from cxmetrics.metrics.bridge import BridgeInputs, Quantity

ASSUME = {"gross_margin": 0.4, "discount_rate": 0.0, "horizon_years": 2, "referral_rate": 0.1,
          "referral_conversion": 0.5, "cost_per_complaint": 20.0, "attribution_share": 1.0, "acquisition_cost": 10.0}


def example(**changes) -> BridgeInputs:
    base = BridgeInputs(
        moved=100, to="promoter", churn_det=Quantity(0.3, 0.02), churn_to=Quantity(0.1, 0.01),
        revenue_det=Quantity(500, 25), sow_gain=Quantity(0.2, 0.02), wallet=Quantity(1000, 50),
        complaints_det=Quantity(0.8, 0.05), complaints_to=Quantity(0.3, 0.03), revenue_new=Quantity(1250, 100),
        churn_new=Quantity(0.2, 0.02), programme_cost=10_000, assumptions=dict(ASSUME))
    return replace(base, **changes)


def test_hand_worked_components():
    # survival annuities: to = 0.9 + 0.81 = 1.71; detractor = 0.7 + 0.49 = 1.19
    c = bridge.components(example())
    assert c["retention"] == pytest.approx(100 * 0.4 * 500 * (1.71 - 1.19))  # 10,400
    assert c["enrichment"] == pytest.approx(100 * 0.2 * 1000 * 0.4 * 1.71)  # 13,680
    # referred in year 1 (survival 0.9): valued over year 2 only, 0.4·1250·0.8 − 10 = 390; in year 2: −10
    assert c["advocacy"] == pytest.approx(100 * 0.1 * 0.5 * (0.9 * 390 + 0.81 * -10))  # 1,714.5
    # complaints avoided only while the customer would still be one
    assert c["cost_savings"] == pytest.approx(100 * 20 * (0.8 * 1.19 - 0.3 * 1.71))  # 878
    assert c["net"] == pytest.approx(26_672.5 - 10_000)
    assert bridge.roi(example()) == pytest.approx(1.66725)


def test_passives_do_not_refer_and_attribution_scales():
    assert bridge.components(example(to="passive"))["advocacy"] == 0
    half = example(assumptions={**ASSUME, "attribution_share": 0.5})
    assert bridge.components(half)["retention"] == pytest.approx(5_200)


def test_discounting_reaches_every_input_including_the_new_customer_clv():
    c = bridge.components(example(assumptions={**ASSUME, "discount_rate": 0.1}))
    a_to, a_det = 0.9 / 1.1 + 0.81 / 1.21, 0.7 / 1.1 + 0.49 / 1.21
    assert c["cost_savings"] == pytest.approx(100 * 20 * (0.8 * a_det - 0.3 * a_to))
    assert c["advocacy"] == pytest.approx(5 * (0.9 / 1.1 * (500 * 0.8 / 1.1 - 10) + 0.81 / 1.21 * -10))
    # the horizon too: one more year values the year-1 referral over two years
    c3 = bridge.components(example(assumptions={**ASSUME, "horizon_years": 3}))
    assert c3["advocacy"] == pytest.approx(5 * (0.9 * (500 * 1.44 - 10) + 0.81 * (500 * 0.8 - 10) + 0.729 * -10))


def test_margin_zero_leaves_no_margin_money():
    c = bridge.components(example(assumptions={**ASSUME, "gross_margin": 0.0, "acquisition_cost": 0.0}))
    for k in ("retention", "enrichment", "advocacy"):
        assert c[k] == pytest.approx(0.0, abs=1e-9)
    assert c["net"] == pytest.approx(c["cost_savings"] - 10_000)


def test_complaints_of_customers_who_would_have_left_are_not_savings():
    # a detractor who leaves at once makes no complaints to avoid: the retained customer's are a cost
    c = bridge.components(example(churn_det=Quantity(1.0)))
    assert c["cost_savings"] == pytest.approx(-100 * 20 * 0.3 * 1.71)


def test_break_even_gross_margin_hand_worked():
    inp = example(programme_cost=30_000)
    # net = 26,000 g + 34,200 g + (4,500 g − 85.5) + 878 − 30,000  →  g* = 29,207.5 / 64,700
    assert bridge.break_even(inp, "gross_margin", 0.0, 1.0) == pytest.approx(29_207.5 / 64_700)
    assert bridge.break_even(example(programme_cost=100), "gross_margin", 0.0, 1.0) is None  # always pays back


def test_tornado_orders_by_swing_and_matches_recomputation():
    rows = bridge.tornado(example(), {"gross_margin": (0.2, 0.6)})
    assert rows == sorted(rows, key=lambda r: -r["swing"])
    gm = next(r for r in rows if r["assumption"] == "gross_margin")
    assert gm["net_at_high"] - gm["net_at_low"] == pytest.approx(64_700 * 0.4)


def test_intervals_contain_estimate_and_narrow_with_smaller_errors():
    wide = bridge.simulate(example(), seed=1)
    tight_inp = example(**{k: Quantity(getattr(example(), k).value, getattr(example(), k).se / 10)
                           for k in bridge._INPUT_BOUNDS})
    tight = bridge.simulate(tight_inp, seed=1)
    for k in bridge.COMPONENTS + ("net",):
        est, lo, hi = wide[k]
        assert lo <= est <= hi
        assert tight[k][2] - tight[k][1] < (hi - lo) / 3 or hi == lo


# --- assumption uncertainty (issue 18 item 5) -------------------------------------------------

def test_degenerate_ranges_give_the_statistical_interval():
    inp = example()
    stat = bridge.simulate(inp, seed=3)
    flat = {k: (v, v) for k, v in ASSUME.items()}
    for dist in bridge.DISTRIBUTIONS:
        mc = bridge.simulate(inp, seed=3, assumption_ranges=flat, distribution=dist)
        for k in bridge.COMPONENTS + ("net",):
            assert mc[k] == pytest.approx(stat[k], rel=1e-12, abs=1e-9)


def test_a_wide_margin_range_widens_the_interval():
    inp = example()
    stat = bridge.simulate(inp, seed=3)["net"]
    mc = bridge.simulate(inp, seed=3, assumption_ranges={"gross_margin": (0.1, 0.7)})["net"]
    assert mc[2] - mc[1] > 1.5 * (stat[2] - stat[1])
    assert mc[0] == stat[0]  # the point estimate stays at the assumptions' values


def _fixed(inp):
    return replace(inp, **{k: Quantity(getattr(inp, k).value) for k in bridge._INPUT_BOUNDS})


@pytest.mark.parametrize("dist", ["uniform", "triangular"])
def test_margin_range_alone_matches_the_analytic_quantiles(dist):
    # no statistical error: net = 64,700 g − 9,207.5 (hand-worked above), so its quantiles are those of g:
    # uniform(0.2, 0.6): 0.2 + 0.4 p; triangular(0.2, 0.4, 0.6): 0.2 + √(0.08 p) below the mode
    lo_g, hi_g = ((0.2 + 0.4 * 0.025, 0.2 + 0.4 * 0.975) if dist == "uniform"
                  else (0.2 + (0.08 * 0.025) ** 0.5, 0.6 - (0.08 * 0.025) ** 0.5))
    mc = bridge.simulate(_fixed(example()), seed=5, n_draws=40_000, assumption_ranges={"gross_margin": (0.2, 0.6)},
                         distribution=dist)["net"]
    assert mc[1] == pytest.approx(64_700 * lo_g - 9_207.5, rel=0.01)
    assert mc[2] == pytest.approx(64_700 * hi_g - 9_207.5, rel=0.01)


def test_joint_statistical_and_assumption_draws_match_numerical_integration():
    # enrichment = K · X · G with X ~ N(0.2, 0.02) (the share-of-wallet gain) and G ~ U(0.2, 0.6) (the margin):
    # its CDF is (1/0.4) ∫ Φ((t/(K g) − 0.2)/0.02) dg, integrated numerically and inverted with brentq
    from scipy.integrate import quad
    from scipy.optimize import brentq
    from scipy.stats import norm

    inp = replace(_fixed(example()), sow_gain=Quantity(0.2, 0.02))
    k = 100 * 1000 * 1.71  # moved × wallet × survival annuity of a promoter

    def cdf(t):
        return quad(lambda g: norm.cdf((t / (k * g) - 0.2) / 0.02), 0.2, 0.6)[0] / 0.4

    want = [brentq(lambda t, p=p: cdf(t) - p, 1.0, 1e6) for p in (0.025, 0.975)]
    mc = bridge.simulate(inp, seed=9, n_draws=40_000, assumption_ranges={"gross_margin": (0.2, 0.6)},
                         distribution="uniform")["enrichment"]
    assert mc[1] == pytest.approx(want[0], rel=0.015)
    assert mc[2] == pytest.approx(want[1], rel=0.015)


def test_horizon_range_is_drawn_in_whole_years():
    inp = _fixed(example())
    draws = bridge.draw_assumptions(inp, {"horizon_years": (1, 4)}, __import__("numpy").random.default_rng(0), 500)
    assert set(draws["horizon_years"]) <= {1.0, 2.0, 3.0, 4.0} and len(set(draws["horizon_years"])) > 2
    mc = bridge.simulate(inp, seed=1, assumption_ranges={"horizon_years": (1, 4)}, distribution="uniform")["net"]
    nets = [bridge.net(inp.with_assumption("horizon_years", h)) for h in (1, 4)]
    assert mc[1] == pytest.approx(min(nets)) and mc[2] == pytest.approx(max(nets))
