"""Survival statistics the churn metrics share: Wilson intervals, Kaplan–Meier bands from
Greenwood's variance, and the churn window a landmark really has. No SQL, no store.

References
----------
Wilson, E. B. (1927), "Probable inference, the law of succession, and statistical inference",
JASA 22(158). Greenwood, M. (1926), Reports on Public Health and Medical Subjects 33.
Kalbfleisch, J. D. & Prentice, R. L. (2002), The Statistical Analysis of Failure Time Data,
2nd ed., Wiley, §1.3 (transformed pointwise bands). Breslow, N. (1974), "Covariance analysis of
censored survival data", Biometrics 30(1) (the partial likelihood with tied event times).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from cxmetrics.core import lazy
from cxmetrics.core.dist import norm
from cxmetrics.core.periods import add_months  # noqa: F401  (re-exported for the churn metrics)
from cxmetrics.core.stats import wilson  # noqa: F401  (the metrics' Wilson interval, re-exported)

np = lazy.module("numpy")

#: Days in an average month.
MONTH_DAYS = 365.25 / 12


def churn_window(landmark: dt.date, end: dt.date | None) -> tuple[float, dt.date | None]:
    """The churn window a landmark really has: (months, last day). 12 months when the data reach
    the window's last day, the day before 12 months past ``landmark`` (the 12-month churn counts
    churn before L + 12 months); otherwise the follow-up to ``end`` in months (days / 30.44);
    (0, None) without an end.

    >>> churn_window(dt.date(2026, 3, 1), dt.date(2026, 9, 29))[0] < 7
    True
    >>> churn_window(dt.date(2025, 10, 1), dt.date(2026, 9, 30))  # "the last 12 months"
    (12.0, datetime.date(2026, 9, 30))
    """
    if end is None or end <= landmark:
        return 0.0, None
    last = add_months(landmark, 12) - dt.timedelta(days=1)
    if end >= last:
        return 12.0, last
    return (end - landmark).days / MONTH_DAYS, end


def window_label(months: float) -> str:
    """"12-month", "3-month": the window in whole months; a window short of 12 months that would
    round to 12 keeps one decimal ("11.9-month"), never the full year's name.

    >>> window_label(12.0), window_label(6.8), window_label(11.96)
    ('12-month', '7-month', '11.9-month')
    """
    whole = max(round(months), 1)
    return f"{math.floor(months * 10) / 10:.1f}-month" if months < 12 <= whole else f"{whole}-month"


KM_TRANSFORMS = ("log-log", "log", "plain")


def greenwood_band(n_risk, n_events, alpha: float = 0.05, transform: str = "log-log"
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Kaplan–Meier estimate and pointwise ``1 - alpha`` band from risk-set sizes and event counts.

    S(t) = Π (1 − d_j / n_j) and Greenwood's variance of log S: V(t) = Σ d_j / (n_j (n_j − d_j))
    (Kalbfleisch & Prentice 2002, eq. 1.11). The band is built on a transformed scale:

    * ``"log-log"`` (default; Kalbfleisch & Prentice 2002 §1.3): S^exp(±z·√V / log S), inside (0, 1);
    * ``"log"``: S·exp(±z·√V), capped at 1;
    * ``"plain"``: S ± z·S·√V (Greenwood's SE of S), clipped to [0, 1].

    Counts may be frequency-weighted sums. Greenwood is computed here rather than taken from
    statsmodels: with ``freq_weights`` ``SurvfuncRight.surv_prob_se`` is Tsiatis' SE of −log S (not
    of S), which used as an SE of S gave bands too wide by 1/S(t).

    Returns S, Greenwood's SE of S, lower and upper bounds; at a time where everyone left has
    the event (S = 0) the band is [0, 0].

    Examples
    --------
    A hand-worked case: 10 at risk, 2 events; then 8 at risk (no censoring), 4 events.
    S = 0.8 then 0.4; V = 2/(10·8) = 0.025, then + 4/(8·4) = 0.15; SE(S) = 0.4·√0.15 = 0.155.

    >>> s, se, lo, hi = greenwood_band([10, 8], [2, 4], transform="plain")
    >>> [round(float(v), 3) for v in (*s, *se)]
    [0.8, 0.4, 0.126, 0.155]
    """
    if transform not in KM_TRANSFORMS:
        raise ValueError(f"transform must be one of {', '.join(KM_TRANSFORMS)}")
    n = np.asarray(n_risk, float)
    d = np.asarray(n_events, float)
    z = norm.ppf(1 - alpha / 2)
    s = np.cumprod(1 - d / n)
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.cumsum(np.where(n > d, d / (n * (n - d)), np.inf))
        se = s * np.sqrt(v)
        if transform == "plain":
            lo, hi = s - z * se, s + z * se
        elif transform == "log":
            lo, hi = s * np.exp(-z * np.sqrt(v)), s * np.exp(z * np.sqrt(v))
        else:
            w = z * np.sqrt(v) / np.log(s)
            lo, hi = s ** np.exp(-w), s ** np.exp(w)
    zero = s <= 0
    lo = np.where(zero, 0.0, np.where(np.isfinite(lo), lo, s))
    hi = np.where(zero, 0.0, np.where(np.isfinite(hi), hi, s))
    # no event yet (V = 0): the band is the point
    return s, np.where(zero, 0.0, se), np.clip(lo, 0.0, 1.0), np.clip(hi, 0.0, 1.0)


@dataclass(frozen=True)
class CoxFit:
    """A Cox proportional-hazards fit: coefficients, their standard errors (inverse observed
    information), two-sided Wald p-values, the log partial likelihood and whether Newton's method
    converged."""

    params: object
    bse: object
    pvalues: object
    llf: float
    converged: bool


def cox_breslow(time, status, X, *, maxiter: int = 100, tol: float = 1e-10) -> CoxFit:
    """Cox proportional hazards by Newton–Raphson on Breslow's partial likelihood (tied event times
    share one risk set: everyone still under observation at that time), the model statsmodels'
    ``PHReg`` fits with its default ``ties="breslow"``, vectorised over the distinct times: the
    sums of exp(xβ), x·exp(xβ) and x xᵀ·exp(xβ) per time, cumulated from the last time back, are
    the risk sets' sums. ``tests/test_churn_clv.py`` checks it against ``PHReg`` (coefficients,
    SEs, p-values, log-likelihood) with and without ties.

    A coefficient with no finite maximum (a group with no event) runs off: Newton's steps stay about
    1 on the log-hazard scale until ``maxiter``, its SE grows with it, and the fit is reported as
    not converged."""
    t = np.asarray(time, float)
    order = np.argsort(t, kind="stable")
    t = t[order]
    d = np.asarray(status, float)[order]
    X = np.asarray(X, float)[order]
    starts = np.flatnonzero(np.r_[True, t[1:] != t[:-1]])  # each distinct time's first row
    events = np.add.reduceat(d, starts)  # events per distinct time
    dx = (X * d[:, None]).sum(axis=0)
    xx = X[:, :, None] * X[:, None, :]

    def risk(a):  # per distinct time, the sum over everyone observed at or after it
        return np.cumsum(np.add.reduceat(a, starts, axis=0)[::-1], axis=0)[::-1]

    def state(b):
        eta = X @ b
        e = np.exp(eta - eta.max())
        s0, s1 = risk(e), risk(X * e[:, None])
        ll = float(d @ (eta - eta.max()) - events @ np.log(s0))
        return e, s0, s1, ll

    def information(e, s0, s1):
        m = s1 / s0[:, None]
        s2 = risk(xx * e[:, None, None]) / s0[:, None, None]
        return np.einsum("g,gij->ij", events, s2 - m[:, :, None] * m[:, None, :])

    beta = np.zeros(X.shape[1])
    e, s0, s1, ll = state(beta)
    converged = False
    for _ in range(maxiter):
        grad = dx - events @ (s1 / s0[:, None])
        try:
            step = np.linalg.solve(information(e, s0, s1), grad)
        except np.linalg.LinAlgError:  # no information left along some direction
            break
        for _halving in range(30):  # never a step down the likelihood
            e2, s02, s12, ll2 = state(beta + step)
            if ll2 >= ll - 1e-12:
                break
            step = step / 2
        beta, e, s0, s1 = beta + step, e2, s02, s12
        done = abs(ll2 - ll) < tol and np.max(np.abs(step), initial=0.0) < 1e-8
        ll = ll2
        if done:
            converged = True
            break
    try:
        with np.errstate(invalid="ignore", over="ignore"):
            bse = np.sqrt(np.diag(np.linalg.inv(information(e, s0, s1))))
    except np.linalg.LinAlgError:
        bse = np.full(len(beta), np.inf)
    bse = np.where(np.isfinite(bse) & (bse > 0), bse, np.inf)  # no information: no finite SE
    converged = converged and bool(np.all(np.isfinite(bse)))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.abs(beta / bse)
    pvalues = np.asarray([2 * norm.sf(v) if np.isfinite(v) else float("nan") for v in z])
    return CoxFit(beta, bse, pvalues, ll, converged)
