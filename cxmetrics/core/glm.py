"""Poisson and binomial GLMs with their canonical links, fitted by iteratively reweighted least
squares, for the small cell tables the hazard and odds ratios are fitted on (tens of cells, a
handful of columns).

statsmodels' ``GLM`` fits the same models; importing it costs 0.6–0.8 s (it loads ``scipy.stats``
and statsmodels' base), paid by the first page or command that fits one: the Executive summary's
and the Finance review's cold start, ``metrics churn``. This module follows statsmodels' IRLS
(McCullagh & Nelder 1989, §2.5): the same starting means, a weighted least-squares step through the
pseudo-inverse of X'WX (so a design with a column that is all zeros or a copy of another gives the
minimum-norm solution, as statsmodels' ``pinv``), the same stopping rule (the deviance changes by
at most ``tol``, at most ``maxiter`` steps), the scale fixed at 1, standard errors from the inverse
information and two-sided Wald p-values on the normal. ``tests/test_native_stats.py`` checks estimates,
standard errors and p-values against statsmodels on random cell tables, with offsets, with a
group without events and with a column that is all zeros.

Reference: McCullagh, P. & Nelder, J. A. (1989), *Generalized Linear Models*, 2nd ed., Chapman & Hall.
"""

from __future__ import annotations

from dataclasses import dataclass

from cxmetrics.core import lazy
from cxmetrics.core.dist import norm

np = lazy.module("numpy")
pd = lazy.module("pandas")


@dataclass(frozen=True)
class Fit:
    """Coefficients, standard errors and Wald p-values (Series indexed by the design's columns)."""

    params: pd.Series
    bse: pd.Series
    pvalues: pd.Series
    deviance: float
    iterations: int
    converged: bool


def poisson(y, X, *, offset=None, maxiter: int = 100, tol: float = 1e-8) -> Fit:
    """Counts ``y`` ~ Poisson(exp(X b + offset)) (log link)."""
    y = np.asarray(y, dtype=float)
    off = np.zeros_like(y) if offset is None else np.asarray(offset, dtype=float)

    def mean(eta):
        return np.exp(eta)

    def deviance(mu):
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(y > 0, y * np.log(y / mu), 0.0)
        return float(2 * np.sum(t - (y - mu)))

    return _irls(X, y, off, mean, lambda mu: mu, lambda mu: np.log(mu), deviance,
                 start=(y + y.mean()) / 2, maxiter=maxiter, tol=tol)


def binomial(successes, trials, X, *, maxiter: int = 100, tol: float = 1e-8) -> Fit:
    """``successes`` of ``trials`` ~ Binomial(trials, logistic(X b)) (logit link; grouped data, as
    statsmodels' two-column endog of successes and failures)."""
    k = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_obs = np.where(n > 0, k / n, 0.0)

    def mean(eta):
        return n / (1 + np.exp(-eta))

    def deviance(mu):
        with np.errstate(divide="ignore", invalid="ignore"):
            a = np.where(k > 0, k * np.log(k / mu), 0.0)
            b = np.where(n - k > 0, (n - k) * np.log((n - k) / (n - mu)), 0.0)
        return float(2 * np.sum(a + b))

    def eta_of(mu):
        p = mu / n
        return np.log(p / (1 - p))

    return _irls(X, k, np.zeros_like(k), mean, lambda mu: mu * (1 - mu / n), eta_of, deviance,
                 start=n * (p_obs + 0.5) / 2, maxiter=maxiter, tol=tol)


def _irls(X, y, off, mean, weight, eta_of, deviance, *, start, maxiter: int, tol: float) -> Fit:
    """IRLS for a canonical link: with W = Var(y) at the current mean, the working response is
    η + (y − μ)/W and the step solves the weighted least squares of it on X."""
    cols = list(X.columns) if hasattr(X, "columns") else list(range(np.shape(X)[1]))
    A = np.asarray(X, dtype=float)
    mu = start
    eta = eta_of(mu)
    dev = deviance(mu)
    b = np.zeros(A.shape[1])
    converged, it = False, 0
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        while it < maxiter:
            it += 1
            w = weight(mu)
            z = np.where(w > 0, eta - off + (y - mu) / w, eta - off)  # a weight of 0 adds nothing
            b = np.linalg.pinv(A.T @ (A * w[:, None])) @ (A.T @ (w * z))
            eta = A @ b + off
            mu = mean(eta)
            new = deviance(mu)
            if abs(new - dev) <= tol:
                dev, converged = new, True
                break
            dev = new
        cov = np.linalg.pinv(A.T @ (A * weight(mu)[:, None]))
    se = np.sqrt(np.diag(cov))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 2 * norm.sf(np.abs(b / se))
    return Fit(pd.Series(b, index=cols), pd.Series(se, index=cols), pd.Series(p, index=cols),
               dev, it, converged)
