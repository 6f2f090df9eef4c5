"""cxmetrics.core.glm and cxmetrics.core.stats against statsmodels (the independent implementation
they replace on the pages' cold path): the GLMs' estimates, standard errors and p-values on random
cell tables and a published example; the Wilson interval and Benjamini–Hochberg q-values on random
counts and p-values; and no statsmodels loaded by the pages that draw no survival curve."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from cxmetrics.core import glm, stats


def _cells(seed: int, *, dead_group: bool = False, zero_column: bool = False):
    """Cells of group × segment × tenure, as the churn and complaint models fit them."""
    rng = np.random.default_rng(seed)
    rows = [(g, s, t) for g in ("promoter", "passive", "detractor") for s in ("a", "b", "c") for t in ("0-1", "1-3", "3+")]
    cells = pd.DataFrame(rows, columns=["group", "segment", "tenure"])
    cells["customers"] = rng.integers(5, 400, len(cells))
    cells["exposure"] = cells["customers"] * rng.uniform(3, 12, len(cells))
    rate = 0.01 * np.exp(0.6 * (cells["group"] == "detractor") + 0.3 * (cells["group"] == "passive")
                         + rng.normal(0, 0.2, len(cells)))
    cells["events"] = rng.poisson(rate * cells["exposure"])
    cells["churned"] = np.minimum(rng.binomial(cells["customers"], np.minimum(rate * 8, 0.9)), cells["customers"])
    if dead_group:
        cells.loc[cells["group"] == "passive", ["events", "churned"]] = 0
    X = pd.DataFrame({"const": 1.0}, index=cells.index)
    for col, ref in (("group", "promoter"), ("segment", "a"), ("tenure", "0-1")):
        for lv in sorted(cells[col].unique()):
            if lv != ref:
                X[f"{col}[{lv}]"] = (cells[col] == lv).astype(float)
    if zero_column:
        X["state[never]"] = 0.0
    return cells, X


@pytest.mark.parametrize("seed", range(8))
def test_poisson_and_binomial_equal_statsmodels(seed):
    cells, X = _cells(seed)
    ours = glm.poisson(cells["events"], X, offset=np.log(cells["exposure"]))
    ref = sm.GLM(cells["events"], X, family=sm.families.Poisson(), offset=np.log(cells["exposure"])).fit()
    assert ours.converged
    for a, b in ((ours.params, ref.params), (ours.bse, ref.bse), (ours.pvalues, ref.pvalues)):
        np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-5, atol=1e-7)
    assert list(ours.params.index) == list(X.columns)
    np.testing.assert_allclose(ours.deviance, ref.deviance, rtol=1e-8)
    ours = glm.binomial(cells["churned"], cells["customers"], X)
    ref = sm.GLM(np.column_stack([cells["churned"], cells["customers"] - cells["churned"]]), X,
                 family=sm.families.Binomial()).fit()
    for a, b in ((ours.params, ref.params), (ours.bse, ref.bse), (ours.pvalues, ref.pvalues)):
        np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ours.deviance, ref.deviance, rtol=1e-8)


@pytest.mark.filterwarnings("ignore:The design matrix is rank-deficient")
def test_a_group_without_events_and_a_column_of_zeros_as_statsmodels():
    """No finite maximum for the group without events: both run to the step limit with a huge
    negative coefficient (the callers report it as not estimable); the other coefficients agree,
    and an all-zero column gets 0 from the pseudo-inverse, as in statsmodels."""
    cells, X = _cells(3, dead_group=True, zero_column=True)
    ours = glm.poisson(cells["events"], X, offset=np.log(cells["exposure"]))
    ref = sm.GLM(cells["events"], X, family=sm.families.Poisson(), offset=np.log(cells["exposure"])).fit()
    assert ours.params["group[passive]"] < -15 and ref.params["group[passive]"] < -15
    assert ours.params["state[never]"] == 0 and ref.params["state[never]"] == 0
    keep = [c for c in X.columns if c not in ("group[passive]", "state[never]")]
    np.testing.assert_allclose(ours.params[keep], ref.params[keep], rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(ours.bse[keep], ref.bse[keep], rtol=1e-5, atol=1e-8)
    ours = glm.binomial(cells["churned"], cells["customers"], X)
    ref = sm.GLM(np.column_stack([cells["churned"], cells["customers"] - cells["churned"]]), X,
                 family=sm.families.Binomial()).fit()
    assert ours.params["group[passive]"] < -15 and ref.params["group[passive]"] < -15
    np.testing.assert_allclose(ours.params[keep], ref.params[keep], rtol=1e-5, atol=1e-8)


def test_published_example_dobson_poisson():
    """Dobson (1990), *An Introduction to Generalized Linear Models*, p. 93: the randomised
    controlled trial's counts (outcome and treatment factors), deviance 5.129 on 4 df."""
    counts = [18, 17, 15, 20, 10, 20, 25, 13, 12]
    outcome = [1, 2, 3] * 3
    treatment = [1, 1, 1, 2, 2, 2, 3, 3, 3]
    X = pd.DataFrame({"const": 1.0, "o2": [float(o == 2) for o in outcome], "o3": [float(o == 3) for o in outcome],
                      "t2": [float(t == 2) for t in treatment], "t3": [float(t == 3) for t in treatment]})
    fit = glm.poisson(counts, X)
    assert round(fit.deviance, 3) == 5.129
    assert [round(v, 4) for v in fit.params] == [3.0445, -0.4543, -0.2930, 0.0, 0.0]
    assert [round(v, 4) for v in fit.bse[:3]] == [0.1709, 0.2022, 0.1927]


def test_wilson_equals_statsmodels_and_keeps_the_bounds():
    from statsmodels.stats.proportion import proportion_confint

    rng = np.random.default_rng(4)
    n = rng.integers(1, 2_000, 500).astype(float)
    k = np.floor(rng.uniform(0, 1, 500) * (n + 1))
    k[:20], k[20:40] = 0, n[20:40]  # the bounds: none, all
    for alpha in (0.05, 0.1, 0.01):
        lo, hi = stats.wilson(k, n, alpha)
        rlo, rhi = proportion_confint(k, n, alpha=alpha, method="wilson")
        np.testing.assert_allclose(lo, np.clip(rlo, 0, 1), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(hi, np.clip(rhi, 0, 1), rtol=1e-12, atol=1e-14)
    assert (lo[:20] == 0).all() and (hi[20:40] == 1).all()
    one = np.array([stats.wilson(float(a), float(b), 0.01) for a, b in zip(k, n, strict=True)])
    assert np.array_equal(one[:, 0], lo) and np.array_equal(one[:, 1], hi)  # one cell: the same figures
    assert stats.wilson(3.5, 10.2) == pytest.approx(proportion_confint(3.5, 10.2, method="wilson"), rel=1e-12)
    lo, hi = stats.wilson(np.array([1.0, 0.0]), np.array([4.0, 0.0]))
    assert np.isnan(lo[1]) and np.isnan(hi[1]) and 0 < lo[0] < hi[0] < 1
    assert all(np.isnan(v) for v in stats.wilson(0, 0))


@pytest.mark.parametrize("seed", range(5))
def test_benjamini_hochberg_equals_statsmodels(seed):
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(seed)
    p = np.concatenate([rng.uniform(0, 1, 80), rng.uniform(0, 0.002, 20), [0.03, 0.03, 1.0]])
    rng.shuffle(p)
    for q in (0.05, 0.1):
        reject, adj = stats.benjamini_hochberg(p, q)
        ref_reject, ref_adj, _, _ = multipletests(p, alpha=q, method="fdr_bh")
        np.testing.assert_array_equal(reject, ref_reject)
        np.testing.assert_allclose(adj, ref_adj, rtol=1e-12)
    assert [len(x) for x in stats.benjamini_hochberg([])] == [0, 0]


def test_pages_without_survival_curves_load_no_statsmodels(demo_db):
    """A fresh process computes the Executive summary, NPS & drivers, the KPI alignment and the
    Finance review (hazard and odds ratios, Wilson and t intervals, the KPI thresholds'
    chi-square, the "what moved" list, break-evens) without importing statsmodels or any of SciPy;
    the Churn page (Kaplan–Meier curves) does import statsmodels."""
    import subprocess
    import sys
    from pathlib import Path

    code = """
import sys
from cxmetrics import store
from cxmetrics.core.filters import Filters
from cxmetrics.core import roles
from cxmetrics.tools import bench
for path in sys.argv[2:]:
    spec = next(p for p in roles.PAGES if p.path == path)
    with store.connect(sys.argv[1]) as con:
        bench.page_function(spec)(con, Filters())
print(sorted(m for m in ("statsmodels", "scipy", "scipy.special", "scipy.stats", "scipy.optimize") if m in sys.modules))
"""
    root = Path(__file__).resolve().parent.parent

    def loaded(*pages):
        r = subprocess.run([sys.executable, "-c", code, str(demo_db), *pages], cwd=root, capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip().splitlines()[-1]

    assert loaded("pages/01_executive_summary.py", "pages/02_nps_drivers.py", "pages/07_alignment.py",
                  "pages/10_finance_review.py") == "[]"
    assert "'statsmodels'" in loaded("pages/04_churn_retention.py")


def test_brent_finds_the_roots_scipy_finds():
    from scipy.optimize import brentq

    from cxmetrics.metrics.bridge import brent

    rng, n = np.random.default_rng(9), 0
    funcs = [lambda x: x ** 3 - 2 * x - 5, lambda x: np.exp(x) - 3, lambda x: np.cos(x) - x,
             lambda x: (x - 0.3) ** 5, lambda x: np.tanh(20 * (x - 0.71)), lambda x: x - 1e-3]
    for f in funcs:
        for _ in range(20):
            a, b = -rng.uniform(0, 3), rng.uniform(1, 4)
            fa, fb = f(a), f(b)
            if (fa > 0) == (fb > 0):
                continue
            calls = []

            def counted(x, f=f, calls=calls):
                calls.append(x)
                return f(x)

            ours = brent(counted, a, b, fa, fb, xtol=1e-9)
            ref, info = brentq(f, a, b, xtol=1e-9, full_output=True)
            assert ours == ref  # the same iterates, bit for bit
            assert len(calls) + 2 == info.function_calls  # scipy's count includes f(a) and f(b)
            n += 1
    assert n > 80
    assert brent(lambda x: x, 0.0, 1.0, 0.0, 1.0) == 0.0 and brent(lambda x: x - 1, 0.0, 1.0, -1.0, 0.0) == 1.0
