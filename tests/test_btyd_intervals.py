"""Intervals of the non-contractual models (issue 18 item 13).

External references: the BG/NBD standard errors on the CDNOW sample published in the lifetimes
documentation (docs/Quickstart.md, ``bgf.summary``: se(coef) r 0.012557, alpha 0.378221,
a 0.185719, b 0.705345; from the inverse Hessian of the log-likelihood). Gamma-Gamma: a seeded
coverage simulation. CLV and P(alive) draws: compared with an independent delta-method SE.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxmetrics import views
from cxmetrics.core.filters import Filters
from cxmetrics.metrics import btyd
from cxmetrics.metrics import btyd_intervals as bi


def cdnow(name: str) -> Path:
    spec = importlib.util.find_spec("lifetimes")
    if spec is None:
        pytest.fail("the CDNOW reference data comes with `pip install --no-deps lifetimes==0.11.3` (scripts/test.sh)")
    return Path(spec.origin).parent / "datasets" / name


def test_bgnbd_standard_errors_match_the_published_cdnow_ones():
    d = pd.read_csv(cdnow("cdnow_customers_summary.csv"))
    f = btyd.fit_bgnbd(d["frequency"], d["recency"], d["T"])
    t = bi.bgnbd_intervals(f, d["frequency"], d["recency"], d["T"]).table().set_index("parameter")
    published = {"r": 0.012557, "alpha": 0.378221, "a": 0.185719, "b": 0.705345}
    for k, se in published.items():
        assert t.loc[k, "se"] == pytest.approx(se, rel=0.01), k
    assert (t["ci_low"] < t["estimate"]).all() and (t["estimate"] < t["ci_high"]).all() and (t["ci_low"] > 0).all()


def _assert_gradient_is_the_derivative(terms, theta) -> None:
    """``terms.loglik_grad`` gives the likelihood and its central-difference derivative at ``theta``."""
    th = np.array(theta)
    ll, grad = terms.loglik_grad(th)
    assert ll == pytest.approx(terms.loglik(th), rel=1e-12)
    num = [(terms.loglik(th + e) - terms.loglik(th - e)) / (2 * e.sum()) for e in np.diag(1e-6 * th)]
    assert grad == pytest.approx(num, rel=1e-5, abs=1e-4)


@pytest.mark.parametrize("theta", [(0.243, 4.414, 0.793, 2.426), (1.3, 8.0, 0.2, 3.5), (0.5, 0.9, 4.0, 0.6)])
def test_the_bgnbd_gradient_is_the_likelihoods_derivative(theta):
    """The fits and the information use the analytic gradient: it must be the numerical
    derivative of the likelihood at and away from CDNOW's maximum, with weights and customers of
    zero and many purchases."""
    d = pd.read_csv(cdnow("cdnow_customers_summary.csv"))
    w = np.random.default_rng(7).integers(1, 4, len(d))
    _assert_gradient_is_the_derivative(btyd._BGNBDTerms(d["frequency"], d["recency"], d["T"], w), theta)


@pytest.mark.parametrize("theta", [(6.25, 3.74, 15.44), (1.5, 9.0, 40.0)])
def test_the_gamma_gamma_gradient_is_the_likelihoods_derivative(theta):
    d = pd.read_csv(cdnow("cdnow_customers_summary_with_transactions.csv"))
    d = d[d["x"] > 0]
    _assert_gradient_is_the_derivative(btyd._GGTerms(d["x"], d["zbar"], np.arange(len(d)) % 3 + 1), theta)


def test_gamma_gamma_intervals_cover_in_a_seeded_simulation():
    rng = np.random.default_rng(2013)
    truth = np.array([6.0, 4.0, 15.0])  # p, q, gamma
    reps, n, hits = 60, 400, np.zeros(3)
    for _ in range(reps):
        nu = rng.gamma(truth[1], 1 / truth[2], n)  # each customer's scale ν ~ Gamma(q, γ)
        x = rng.integers(1, 8, n)
        m = rng.gamma(truth[0] * x, 1 / nu) / x  # mean of x spends ~ Gamma(p, ν)
        f = btyd.fit_gamma_gamma(x, m)
        t = bi.gamma_gamma_intervals(f, x, m).table()
        hits += ((t["ci_low"] <= truth) & (truth <= t["ci_high"])).to_numpy()
    assert (hits / reps >= 0.88).all(), hits / reps


def test_value_draws_agree_with_the_delta_method_on_cdnow():
    d = pd.read_csv(cdnow("cdnow_customers_summary_with_transactions.csv"))
    cells = (d.assign(t_x_days=d["t_x"] * 7, T_days=d["T"] * 7, m=d["zbar"].where(d["x"] > 0))
             .groupby(["x", "t_x_days", "T_days", "m"], dropna=False).size().rename("w").reset_index())
    bf = btyd.fit_bgnbd(cells["x"], cells["t_x_days"] / 7, cells["T_days"] / 7, cells["w"])
    rep = cells[cells["x"] > 0]
    gf = btyd.fit_gamma_gamma(rep["x"], rep["m"], rep["w"])
    bg = bi.bgnbd_intervals(bf, cells["x"], cells["t_x_days"] / 7, cells["T_days"] / 7, cells["w"])
    gg = bi.gamma_gamma_intervals(gf, rep["x"], rep["m"], rep["w"])
    kw = {"horizon_weeks": 52.0, "margin": 0.3, "discount": 0.1}
    draws = bi.value_draws(bg, gg, cells, n=1000, **kw)
    # independent: delta method, gradient of the means in the log-parameters by forward differences
    w = cells["w"].to_numpy(float)
    x, tx, T, m = (cells[c].to_numpy(float) for c in ("x", "t_x_days", "T_days", "m"))
    tx, T, m = tx / 7, T / 7, np.nan_to_num(m)

    def means(lp):
        v = np.exp(lp)
        b = btyd.BGNBDFit(*v[:4], 0.0, 0)
        g = btyd.GammaGammaFit(*v[4:], 0.0, 0)
        clv_ = btyd.expected_purchases(b, 52.0, x, tx, T) * btyd.expected_spend(g, x, m) * 0.3 * 1.1 ** -0.5
        return np.array([np.average(clv_, weights=w), np.average(btyd.p_alive(b, x, tx, T), weights=w)])

    lp0 = np.log(np.r_[bg.estimate, gg.estimate])
    cov = np.zeros((7, 7))
    cov[:4, :4], cov[4:, 4:] = bg.cov_log, gg.cov_log
    grad = np.column_stack([(means(lp0 + 1e-6 * np.eye(7)[i]) - means(lp0)) / 1e-6 for i in range(7)])
    se = np.sqrt(np.diag(grad @ cov @ grad.T))
    assert draws["d_clv"].std() == pytest.approx(se[0], rel=0.15)
    assert draws["d_p_alive"].std() == pytest.approx(se[1], rel=0.15)
    lo, hi = bi.percentile_interval(draws["d_p_alive"])
    assert lo < 0 < hi


def test_customer_value_page_carries_btyd_intervals(con):
    res = views.value.page_data(con, Filters()).btyd
    assert {e.name for e in res.headline} == {"btyd_mean_clv", "btyd_mean_p_alive"}
    for e in res.headline:
        assert e.ci_low < e.estimate < e.ci_high and e.se > 0 and "parametric draws" in e.method
    assert set(res.extra["bgnbd_params"]["parameter"]) == {"r", "alpha", "a", "b"}
    assert (res.extra["gamma_gamma_params"]["se"] > 0).all()
    assert "observed information" in res.method
    # reproducible: the draws are seeded
    again = bi.with_intervals(btyd.clv_non_contractual(con, Filters()))
    assert [e.ci_low for e in again.headline] == pytest.approx([e.ci_low for e in res.headline])


def test_a_flat_likelihood_gives_no_interval_rather_than_a_wrong_one():
    def loglik_grad(p):  # −(log u)², flat in v
        return -(np.log(p[0]) ** 2), np.array([-2 * np.log(p[0]) / p[0], 0.0])

    iv = bi._intervals(("u", "v"), (1.0, 2.0), loglik_grad)
    assert np.isnan(iv.cov_log).all() and iv.table()["se"].isna().all()

