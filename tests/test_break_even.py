"""Break-even intervals (issue 18 item 13): checked against an independent implementation, the
bridge's own brentq root (:func:`cxmetrics.bridge.break_even`) on each drawn set of inputs."""

from dataclasses import replace

import numpy as np
import pytest

from cxmetrics.core.filters import Filters
from cxmetrics.metrics import break_even, bridge, pnl
from cxmetrics.metrics.bridge import Quantity


@pytest.fixture(scope="module")
def inputs(demo_db):
    from cxmetrics import store

    with store.connect(str(demo_db)) as con:
        inp, _, _ = pnl.gather(con, Filters(), drop_points=5.0, to="passive", programme_cost=None)
    return inp


@pytest.mark.parametrize("key", ["gross_margin", "attribution_share"])
def test_break_even_interval_matches_brentq_over_the_same_draws(inputs, key):
    n, seed = 300, 5
    got = break_even.interval(inputs, key, 0.0, 1.0, n_draws=n, seed=seed)
    rng = np.random.default_rng(seed)
    draws = {k: getattr(inputs, k).draw(rng, n, *b) for k, b in bridge._INPUT_BOUNDS.items()}
    want = []
    for i in range(n):
        one = replace(inputs, **{k: Quantity(float(v[i])) for k, v in draws.items()})
        r = bridge.break_even(one, key, 0.0, 1.0)
        want.append(np.nan if r is None else r)
    want = np.array(want)
    assert got["break_even"] == pytest.approx(bridge.break_even(inputs, key, 0.0, 1.0), abs=1e-9)
    assert got["no_crossing_share"] == pytest.approx(np.isnan(want).mean())
    lo, hi = np.nanquantile(want, [0.025, 0.975])
    assert (got["ci_low"], got["ci_high"]) == pytest.approx((lo, hi), abs=1e-7)
    assert got["ci_low"] < got["break_even"] < got["ci_high"]


def test_no_break_even_gives_no_interval(inputs):
    # no break-even at the inputs' values: no interval, and the share of draws without one is that
    # of the draws the bridge's brentq finds none for (the draws are only checked for a crossing)
    n, seed = 200, 3
    got = break_even.interval(inputs, "discount_rate", 0.0, 0.5, n_draws=n, seed=seed)
    assert bridge.break_even(inputs, "discount_rate", 0.0, 0.5) is None  # the demo's net never turns
    assert np.isnan(got["break_even"]) and np.isnan(got["ci_low"]) and np.isnan(got["ci_high"])
    rng = np.random.default_rng(seed)
    draws = {k: getattr(inputs, k).draw(rng, n, *b) for k, b in bridge._INPUT_BOUNDS.items()}
    none = [bridge.break_even(replace(inputs, **{k: Quantity(float(v[i])) for k, v in draws.items()}),
                              "discount_rate", 0.0, 0.5) is None for i in range(n)]
    assert got["no_crossing_share"] == pytest.approx(np.mean(none)) and got["no_crossing_share"] > 0.5
    # a bracket ending below the break-even: the inputs' values do not cross in it, some draws do
    full = break_even.interval(inputs, "gross_margin", 0.0, 1.0, n_draws=n, seed=seed)
    cut = (full["ci_low"] + full["break_even"]) / 2
    got = break_even.interval(inputs, "gross_margin", 0.0, cut, n_draws=n, seed=seed)
    want = [bridge.break_even(replace(inputs, **{k: Quantity(float(v[i])) for k, v in draws.items()}),
                              "gross_margin", 0.0, cut) is None for i in range(n)]
    assert np.isnan(got["break_even"]) and 0.5 < got["no_crossing_share"] < 0.99
    assert got["no_crossing_share"] == pytest.approx(np.mean(want))


def test_pnl_break_even_table_carries_the_interval(con):
    t = pnl.detractor_scenario(con, Filters(), draws=500).break_even.set_index("assumption")
    gm = t.loc["gross_margin"]
    assert gm["ci_low"] < gm["break_even"] < gm["ci_high"] and "95% CI" in gm["reading"]
