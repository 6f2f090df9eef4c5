"""KPI threshold (issue 18 item 10): the capped broken-stick's interval covers the planted threshold.

Seeded coverage simulations of the demo's two linked KPIs (cxmetrics/demo.py): delivery days
~ Gamma(6, 0.6) with τ = 3 and 0.2 per day, call wait ~ Exponential(mean 8 then 6 minutes) with
τ = 15 and 0.05 per minute; beyond τ a share min(1, penalty·(x − τ)) of events turn detractors,
so the detractor probability saturates at 1. The uncapped least-squares hinge covered the wait
threshold in about half of the samples of 5,000; the capped model must cover it in ≥ 90%.
"""

import numpy as np
import pytest

from cxmetrics.metrics.threshold import fit_threshold
from cxmetrics.registers import demo

BASE_DETRACTOR = 0.27  # share of detractors among transactional answers before any disappointment


def sample(kind: str, n: int, rng: np.random.Generator):
    if kind == "delivery":
        x = np.round(np.maximum(rng.gamma(6.0, 0.6, n), 0.5), 1)
        tau, pen = demo.DELIVERY_THRESHOLD, demo.DELIVERY_PENALTY
    else:
        mean = np.where(rng.random(n) < 1 / 3, demo.WAIT_MEAN_BEFORE, demo.WAIT_MEAN_AFTER)
        x = np.round(rng.exponential(mean), 1)
        tau, pen = demo.WAIT_THRESHOLD, demo.WAIT_PENALTY
    p = BASE_DETRACTOR + (1 - BASE_DETRACTOR) * np.minimum(1.0, pen * np.maximum(0.0, x - tau))
    y = rng.random(n) < p
    xs, inv = np.unique(x, return_inverse=True)
    return xs, np.bincount(inv), np.bincount(inv, weights=y), tau


def coverage(kind: str, n: int, reps: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(reps):
        x, nn, kk, tau = sample(kind, n, rng)
        th = fit_threshold(x, nn, kk, grid=60)
        hits += th is not None and th.ci_low <= tau <= th.ci_high
    return hits / reps


@pytest.mark.parametrize("kind", ["delivery", "wait"])
@pytest.mark.parametrize("n", [1000, 5000])
def test_threshold_interval_covers_the_planted_threshold(kind, n):
    assert coverage(kind, n, reps=200, seed=18) >= 0.90


def test_saturated_curve_is_fitted_exactly():
    # noiseless counts from the capped model itself: the fit returns the planted (τ, a, b)
    x = np.round(np.arange(0.0, 40.0, 0.5), 1)
    n = np.full(x.size, 1000)
    k = np.round(n * np.minimum(1.0, 0.25 + 0.06 * np.maximum(0.0, x - 15.0)))
    th = fit_threshold(x, n, k, grid=200)
    assert th.ci_low <= 15.0 <= th.ci_high
    assert th.tau == pytest.approx(15.0, abs=0.3)
    assert th.intercept == pytest.approx(0.25, abs=0.01) and th.slope == pytest.approx(0.06, abs=0.005)
    # the fitted rise stops at certainty
    assert th.rise([40.0])[0] == pytest.approx(1 - th.intercept)


def test_higher_is_better_mirrors():
    rng = np.random.default_rng(5)
    x, n, k, tau = sample("delivery", 5000, rng)
    th = fit_threshold(-x, n, k, lower_is_better=False)
    assert th.ci_low <= -tau <= th.ci_high and th.slope > 0


def test_fit_at_a_fixed_threshold_matches_a_generic_optimiser():
    # independent check of the Newton fit: Nelder–Mead on the same binomial likelihood, τ fixed
    from scipy.optimize import minimize

    from cxmetrics.metrics.threshold import fit_capped

    x, n, k, _ = sample("wait", 3000, np.random.default_rng(8))
    h = np.maximum(0.0, x - 15.0)

    def nll(theta):
        p = np.minimum(1.0, theta[0] + theta[1] * h)
        if np.any(p <= 0) or np.any((p >= 1) & (n > k)):
            return np.inf
        with np.errstate(divide="ignore", invalid="ignore"):
            return -float(np.sum(np.where(k > 0, k * np.log(p), 0) + np.where(n > k, (n - k) * np.log1p(-p), 0)))

    ref = minimize(nll, [0.3, 0.01], method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-10, "maxiter": 5000})
    a, b, ll, _ = fit_capped(h[None, :], n, k)
    assert a[0] == pytest.approx(ref.x[0], abs=1e-4) and b[0] == pytest.approx(ref.x[1], abs=1e-4)
    assert -ll[0] == pytest.approx(ref.fun, abs=1e-6)


def test_each_threshold_is_fitted_as_if_alone():
    # the grid's rows are independent problems: a row stops when its own fit has converged, so
    # fitting all thresholds at once gives, row by row, exactly the fit of that threshold alone
    # (rows that converge in a few steps next to rows that need many and backtrack)
    from cxmetrics.metrics.threshold import fit_capped

    x, n, k, _ = sample("wait", 4000, np.random.default_rng(4))
    taus = np.quantile(x, [0.05, 0.3, 0.5, 0.7, 0.95])
    H = np.maximum(0.0, x[None, :] - taus[:, None])
    a, b, ll, info = fit_capped(H, n, k)
    for i in range(len(taus)):
        ai, bi, lli, infoi = fit_capped(H[i:i + 1], n, k)
        assert (a[i], b[i], ll[i]) == (ai[0], bi[0], lli[0])
        np.testing.assert_array_equal(info[i], infoi[0])


@pytest.mark.parametrize("lower_is_better", [True, False])
def test_total_rise_is_the_weighted_sum_of_the_rises_for_every_draw(lower_is_better):
    # the prefix-sum look-up against rise() summed over the values, for draws of (a, b) on both
    # sides of zero slope, intercepts above 1 (c < 0), exact zeros, and values at the cut itself
    rng = np.random.default_rng(3)
    x, n, k, _ = sample("wait", 5000, rng)
    th = fit_threshold(x if lower_is_better else -x, n, k, lower_is_better=lower_is_better)
    xs = x if lower_is_better else -x
    a = np.concatenate([rng.normal(th.intercept, 0.2, 300), [0.3, 1.2, 0.3, 0.5, 1.0]])
    b = np.concatenate([rng.normal(th.slope, 2 * abs(th.slope) + 0.01, 300), [0.0, 0.0, -0.05, 0.5 / 10, 0.0]])
    w = rng.integers(0, 40, xs.size).astype(float)
    brute = (w[None, :] * th.rise(xs[None, :], a[:, None], b[:, None])).sum(axis=1)
    assert th.total_rise(xs, w, a, b) == pytest.approx(brute, rel=1e-9, abs=1e-9)
    # a value exactly at the cut (h = c/b = 10 when a = 0.5, b = 0.05): capped or not, the same
    h0 = th.tau + 10.0 if lower_is_better else th.tau - 10.0
    one = th.total_rise([h0], [2.0], [0.5], [0.05])
    assert one == pytest.approx(2 * th.rise([h0], 0.5, 0.05))
