"""Small-sample inference helpers (issue 18 item 9) against statsmodels, computed independently."""

import itertools

import numpy as np
import pytest
import statsmodels.api as sm

from cxmetrics.metrics import inference


def test_wild_cluster_bootstrap_matches_a_statsmodels_enumeration():
    # three clusters: Rademacher weights give 2³ = 8 weight vectors, every one enumerated
    rng = np.random.default_rng(0)
    g = np.repeat([0, 1, 2], 10)
    x = rng.normal(size=30)
    X = np.column_stack([np.ones(30), x, (g == 1).astype(float)])
    y = 1 + 0.3 * x + rng.normal(size=30) + rng.normal(size=3)[g]
    got = inference.wild_cluster_bootstrap(X, y, g, 1, weights="rademacher")
    t0 = sm.OLS(y, X).fit(cov_type="cluster", cov_kwds={"groups": g}).tvalues[1]
    restricted = sm.OLS(y, np.delete(X, 1, axis=1)).fit()
    ts = []
    for v in itertools.product([-1.0, 1.0], repeat=3):
        ystar = restricted.fittedvalues + np.asarray(v)[g] * restricted.resid
        ts.append(sm.OLS(ystar, X).fit(cov_type="cluster", cov_kwds={"groups": g}).tvalues[1])
    assert got["t"] == pytest.approx(t0, rel=1e-8)
    assert got["draws"] == 8 and got["p"] == pytest.approx(np.mean(np.abs(ts) >= abs(t0) - 1e-12))


def test_wild_cluster_bootstrap_size_with_many_clusters():
    # 20 balanced clusters, no effect: the seeded bootstrap rejects at 5% about 5% of the time
    rng = np.random.default_rng(11)
    g = np.repeat(np.arange(20), 8)
    rejections = 0
    for _ in range(60):
        x = rng.normal(size=20)[g] + rng.normal(size=g.size)
        y = rng.normal(size=20)[g] + rng.normal(size=g.size)
        X = np.column_stack([np.ones(g.size), x])
        rejections += inference.wild_cluster_bootstrap(X, y, g, 1, reps=199, seed=1)["p"] < 0.05
    assert rejections <= 8  # binomial(60, 0.05): P(more than 8) < 0.2%


def test_hc2_bell_mccaffrey_matches_statsmodels_hc2():
    rng = np.random.default_rng(3)
    X = np.column_stack([np.ones(25), rng.normal(size=25)])
    y = X @ [1.0, 2.0] + rng.normal(size=25) * (1 + np.abs(X[:, 1]))
    b, se, df = inference.hc2_bm(X, y, 1)
    fit = sm.OLS(y, X).fit(cov_type="HC2")
    assert b == pytest.approx(fit.params[1]) and se == pytest.approx(fit.bse[1])
    assert 2 < df < 25 - 2  # fewer than the residual degrees of freedom when the design is unbalanced


def test_wild_cluster_bootstrap_without_residual_variation_gives_no_p_value():
    g = np.repeat([0, 1, 2, 3], 5)
    X = np.column_stack([np.ones(20), np.arange(20.0)])
    got = inference.wild_cluster_bootstrap(X, X @ [1.0, 0.5], g, 1)
    assert np.isnan(got["p"])  # not p = 0: an exact fit has no cluster-robust t


def test_distributions_match_scipy_stats_into_the_tails():
    """cxmetrics.core.dist (no scipy.stats import) against scipy.stats itself: the normal's quantile
    from 1e-300 to 1 − 1e-16, its CDF and survival function out to ±37, Student's t and the
    chi-square at the degrees of freedom the metrics use; floats in, floats out; arrays elementwise."""
    from scipy import stats

    from cxmetrics.core import dist

    p = np.concatenate([np.logspace(-300, -1, 300), np.linspace(0.01, 0.99, 99), 1 - np.logspace(-16, -1, 50)])
    np.testing.assert_allclose(dist.norm.ppf(p), stats.norm.ppf(p), rtol=1e-13)
    assert isinstance(dist.norm.ppf(0.975), float) and dist.norm.ppf(0.975) == pytest.approx(1.959963984540054, rel=1e-15)
    assert dist.norm.ppf(0.0) == -np.inf and dist.norm.ppf(1.0) == np.inf and np.isnan(dist.norm.ppf(1.5))
    x = np.linspace(-37, 37, 741)  # beyond, both reach subnormal numbers
    # far in the tails erfc's argument x/√2 carries a rounding error both libraries amplify (~1e-13)
    np.testing.assert_allclose(dist.norm.cdf(x), stats.norm.cdf(x), rtol=1e-11, atol=0)
    np.testing.assert_allclose(dist.norm.sf(x), stats.norm.sf(x), rtol=1e-11, atol=0)
    c = np.linspace(-8, 8, 161)
    np.testing.assert_allclose(dist.norm.cdf(c), stats.norm.cdf(c), rtol=1e-13, atol=0)
    assert np.isnan(dist.norm.sf(np.nan)) and dist.norm.sf(np.array([[0.0]])).shape == (1, 1)
    for df in (1, 2, 5, 29, 30, 120, 10_000):
        q = np.array([0.5, 0.9, 0.975, 0.995, 1 - 1e-9])
        np.testing.assert_allclose(dist.t.ppf(q, df), stats.t.ppf(q, df), rtol=1e-12)
        tt = np.linspace(-30, 30, 121)
        np.testing.assert_allclose(dist.t.cdf(tt, df), stats.t.cdf(tt, df), rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(dist.t.sf(tt, df), stats.t.sf(tt, df), rtol=1e-12, atol=1e-300)
        assert isinstance(dist.t.ppf(0.975, df), float)
    for df in (1, 2, 3, 10):
        np.testing.assert_allclose(dist.chi2.ppf(np.array([0.5, 0.95, 0.99]), df),
                                   stats.chi2.ppf([0.5, 0.95, 0.99], df), rtol=1e-12)
        xx = np.linspace(0, 80, 81)
        np.testing.assert_allclose(dist.chi2.sf(xx, df), stats.chi2.sf(xx, df), rtol=1e-12, atol=1e-300)
    assert dist.chi2.ppf(0.95, 1) == pytest.approx(3.841458820694124, rel=1e-14)  # a published value


def test_t_and_chi_square_match_fifty_digit_values():
    """Student's t and the chi-square against mpmath at 50 digits, an implementation independent
    of ours and of scipy's: from 1 to a million degrees of freedom (where ln B(df/2, ½) from two
    lgamma calls, or an incomplete beta evaluated at w = df/(df + x²) rounded to a double, would
    lose 1e-11), next to 0 (where scipy's own stdtr is off by 3e-9 with one degree of freedom), and
    quantiles down to 1e-300. A quantile is checked by its round trip: the 50-digit probability at
    the returned value, turned into a relative error of the value through the density."""
    import math

    import mpmath

    from cxmetrics.core import dist

    mpmath.mp.dps = 50
    half = mpmath.mpf(1) / 2

    def upper(x, df):  # P(T > x)
        x, df = mpmath.mpf(x), mpmath.mpf(df)
        tail = mpmath.betainc(df / 2, half, 0, df / (df + x * x), regularized=True) / 2
        return tail if x >= 0 else 1 - tail

    xs = (-30, -5, -1.5, -0.3, -1e-5, 0, 1e-8, 0.01, 0.7, 0.99, 1.0, 1.01, 1.96, 3, 8, 30, 1e3, 1e10)
    for df in (1, 2, 3, 5, 7.5, 29, 30, 120, 999, 10_000, 123_456, 1_000_000):
        for x in xs:  # each tail from its own side: no 1 − (a tiny number)
            assert dist.t.sf(x, df) == pytest.approx(float(upper(x, df)), rel=2e-13, abs=1e-300), (df, x)
            assert dist.t.cdf(x, df) == pytest.approx(float(upper(-x, df)), rel=2e-13, abs=1e-300), (df, x)
        for p in (1e-300, 1e-20, 1e-9, 0.025, 0.3, 0.4999999, 0.5000001, 0.9, 0.975, 1 - 1e-9, 1 - 1e-15):
            x = dist.t.ppf(p, df)
            assert math.copysign(1.0, x) == (1.0 if p > 0.5 else -1.0)
            ax, dfm = mpmath.mpf(abs(x)), mpmath.mpf(df)
            tail = mpmath.mpf(p) if p < 0.5 else 1 - mpmath.mpf(p)  # the target beyond |x|
            density = mpmath.exp(-mpmath.log(mpmath.beta(dfm / 2, half)) - mpmath.log(dfm) / 2
                                 - (dfm + 1) / 2 * mpmath.log1p(ax * ax / dfm))
            miss = abs(upper(ax, df) - tail)
            assert float(miss / (density * ax)) < 1e-13, (df, p, x)
    for df in (0.7, 1, 2, 3, 10, 57.5, 400):
        a = mpmath.mpf(df) / 2
        for x in (1e-10, 0.01, 1, 3.84, 20, 80, 300, 1000):
            ref = mpmath.gammainc(a, mpmath.mpf(x) / 2, mpmath.inf, regularized=True)
            assert dist.chi2.sf(x, df) == pytest.approx(float(ref), rel=1e-13, abs=1e-300), (df, x)
        for p in (1e-10, 1e-3, 0.05, 0.5, 0.95, 0.99, 1 - 1e-9, 1 - 1e-15):
            y = mpmath.mpf(dist.chi2.ppf(p, df)) / 2
            density = mpmath.exp((a - 1) * mpmath.log(y) - y - mpmath.loggamma(a))
            miss = (abs(mpmath.gammainc(a, 0, y, regularized=True) - p) if p <= 0.5
                    else abs(mpmath.gammainc(a, y, mpmath.inf, regularized=True) - (1 - mpmath.mpf(p))))
            assert float(miss / (density * y)) < 1e-13, (df, p)
    assert dist.chi2.ppf(1e-300, 1) == 0.0 and dist.chi2.ppf(0.0, 3) == 0.0 and dist.chi2.ppf(1.0, 3) == math.inf
    assert dist.t.ppf(0.0, 5) == -math.inf and dist.t.ppf(0.5, 5) == 0.0 and math.isnan(dist.t.ppf(0.5, 0))
    assert math.isnan(dist.t.sf(math.nan, 5)) and dist.t.sf(math.inf, 5) == 0.0 and dist.t.cdf(math.inf, 5) == 1.0
