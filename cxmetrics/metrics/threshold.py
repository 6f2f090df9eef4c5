"""A capped broken-stick model for a probability that rises beyond an unknown threshold.

The detractor probability of a customer event with KPI value x is modelled as

    P(detractor | x) = min(1, a + b · max(0, s·(x − τ))),   s = +1 if lower is better, −1 otherwise

— flat at ``a`` up to the threshold τ, rising linearly beyond it, and bounded by 1 (a linear
probability cannot exceed certainty, so where every event is a detractor the line stops instead of
being dragged by the events beyond saturation: issue 18 item 10). It is fitted by binomial maximum
likelihood on counts per KPI value (the grouped likelihood is the individual Bernoulli likelihood,
so it scales to millions of events), by Newton's method with a backtracking line search for
(a, b) at each τ: log P and log(1 − P) are concave in (a, b), so the fit at each τ is a concave
problem. τ is estimated by profiling the likelihood over a grid, and its interval is the profile
likelihood-ratio set {τ : 2·(ℓ(τ̂) − ℓ(τ)) ≤ χ²₁,1−α}, with its ends interpolated between grid
points. The continuous hinge is differentiable in τ, so the profile statistic is χ²₁ in large
samples (Feder 1975; Hinkley 1969). Evidence of a relation is the likelihood-ratio test against
a constant probability with 2 degrees of freedom, conservative because τ is not identified under
the null (Davies 1987).

References
----------
Feder, P. I. (1975), "On asymptotic distribution theory in segmented regression problems —
identified case", Annals of Statistics 3(1). Hinkley, D. V. (1969), "Inference about the
intersection in two-phase regression", Biometrika 56(3). Muggeo, V. M. R. (2003), "Estimating
regression models with unknown break-points", Statistics in Medicine 22(19). Davies, R. B. (1987),
Biometrika 74(1). Venzon, D. J. & Moolgavkar, S. H. (1988), "A method for computing
profile-likelihood-based confidence intervals", Applied Statistics 37(1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cxmetrics.core import lazy
from cxmetrics.core.dist import chi2

np = lazy.module("numpy")
pd = lazy.module("pandas")

MODEL = ("capped broken-stick: P(detractor) = min(1, a + b·max(0, x − τ)), binomial maximum likelihood; "
         "τ by profile likelihood with a likelihood-ratio interval")

_STEPS = (1.0, 0.5, 0.25, 0.1, 0.03, 0.01, 0.0)


@dataclass(frozen=True)
class Threshold:
    """A fitted capped broken-stick: τ with its profile-likelihood interval and (a, b) at τ̂."""

    tau: float
    ci_low: float
    ci_high: float
    intercept: float
    slope: float
    slope_se: float
    cov: np.ndarray  # covariance of (a, b) at τ̂ (inverse observed information, τ held fixed)
    lr_p: float
    profile: pd.DataFrame
    lower_is_better: bool = True
    method: str = MODEL

    def to_json(self) -> dict:
        """The fit as JSON-able values (kept with the summaries; :meth:`from_json` gives it back
        exactly: floats written by ``repr`` read back to the same bits, infinities included)."""
        return {"tau": self.tau, "ci_low": self.ci_low, "ci_high": self.ci_high, "intercept": self.intercept,
                "slope": self.slope, "slope_se": self.slope_se, "cov": np.asarray(self.cov, float).tolist(),
                "lr_p": self.lr_p, "profile": {c: self.profile[c].tolist() for c in self.profile.columns},
                "lower_is_better": self.lower_is_better}

    @classmethod
    def from_json(cls, d: dict) -> Threshold:
        return cls(d["tau"], d["ci_low"], d["ci_high"], d["intercept"], d["slope"], d["slope_se"],
                   np.array(d["cov"], float), d["lr_p"], pd.DataFrame({c: np.array(v, float) for c, v in d["profile"].items()}),
                   d["lower_is_better"])

    def hinge(self, x) -> np.ndarray:
        s = 1.0 if self.lower_is_better else -1.0
        return np.maximum(0.0, s * (np.asarray(x, float) - self.tau))

    def rise(self, x, intercept: float | None = None, slope: float | None = None) -> np.ndarray:
        """Extra detractor probability at ``x`` over the flat part: min(1, a + b·h) − a."""
        a = self.intercept if intercept is None else intercept
        b = self.slope if slope is None else slope
        return np.minimum(1.0, a + b * self.hinge(x)) - a

    def total_rise(self, x, weights, intercepts, slopes) -> np.ndarray:
        """Σ_i weights_i · rise(x_i) for each (intercept, slope) pair: what :meth:`rise` summed over
        ``x`` gives for every draw, without the draws × values array. With h the hinge and c = 1 − a,
        rise = min(c, b·h): the cap binds on one side of h = c/b (above it when b > 0, below when
        b < 0), so with the h sorted each draw is a look-up in prefix sums of w and w·h."""
        h = self.hinge(x).ravel()
        w = np.broadcast_to(np.asarray(weights, float), h.shape)
        order = np.argsort(h, kind="stable")
        h, w = h[order], w[order]
        cw = np.concatenate(([0.0], np.cumsum(w)))
        cwh = np.concatenate(([0.0], np.cumsum(w * h)))
        a, b = np.asarray(intercepts, float).ravel(), np.asarray(slopes, float).ravel()
        c = 1.0 - a
        with np.errstate(divide="ignore", invalid="ignore"):
            cut = np.where(b != 0, c / b, 0.0)
        up = np.searchsorted(h, cut, side="right")  # b > 0: h above the cut are capped
        down = np.searchsorted(h, cut, side="left")  # b < 0: h below the cut are capped
        pos = b * cwh[up] + c * (cw[-1] - cw[up])
        neg = c * cw[down] + b * (cwh[-1] - cwh[down])
        flat = np.minimum(c, 0.0) * cw[-1]
        return np.where(b > 0, pos, np.where(b < 0, neg, flat))


def _loglik(u: np.ndarray, n: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Binomial log-likelihood (without the constant) of p = clip(u, 0, 1), summed over the last axis."""
    p = np.clip(u, 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(k > 0, k * np.log(p), 0.0) + np.where(n - k > 0, (n - k) * np.log1p(-p), 0.0)
    return np.nan_to_num(t, nan=-np.inf).sum(axis=-1)


def _information(u: np.ndarray, H: np.ndarray, n: np.ndarray, k: np.ndarray):
    inside = (u > 0) & (u < 1)
    us = np.clip(u, 1e-9, 1 - 1e-9)
    w = np.where(inside, k / us ** 2 + (n - k) / (1 - us) ** 2, 0.0)
    g = np.where(inside, k / us - (n - k) / (1 - us), 0.0)
    return g, w


def fit_capped(H: np.ndarray, n: np.ndarray, k: np.ndarray, *, iters: int = 60, tol: float = 1e-9):
    """Binomial ML of p = min(1, a + b·h) for every row of the hinge matrix ``H`` (τ × KPI values).

    Returns (a, b, log-likelihood, observed information as a τ × 2 × 2 array). Newton steps with
    a backtracking search over step lengths, all τ at once; start at the constant share (b = 0). A
    row stops once a step no longer raises its log-likelihood by ``tol`` (the rows are independent
    problems: the others go on without it).
    """
    H = np.atleast_2d(np.asarray(H, float))
    T = H.shape[0]
    a = np.full(T, k.sum() / n.sum())
    b = np.zeros(T)
    ll = _loglik(a[:, None] + b[:, None] * H, n, k)
    steps = np.array(_STEPS)
    live = np.arange(T)  # the rows still improving
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(iters):
            h, al, bl = H[live], a[live], b[live]
            g, w = _information(al[:, None] + bl[:, None] * h, h, n, k)
            ga, gb = g.sum(1), (g * h).sum(1)
            waa, wab, wbb = w.sum(1) + 1e-12, (w * h).sum(1), (w * h * h).sum(1) + 1e-12
            det = waa * wbb - wab ** 2
            da, db = (wbb * ga - wab * gb) / det, (waa * gb - wab * ga) / det
            da, db = np.nan_to_num(da), np.nan_to_num(db)
            new = _loglik((al + da)[:, None] + (bl + db)[:, None] * h, n, k)
            step = np.ones(len(live))
            bad = ~(new >= ll[live])
            if bad.any():  # backtrack only where the full Newton step does not improve
                cand = _loglik(al[bad, None, None] + steps[None, :, None] * da[bad, None, None]
                               + (bl[bad, None, None] + steps[None, :, None] * db[bad, None, None]) * h[bad, None, :],
                               n, k)
                best = np.argmax(cand, axis=1)
                step[bad] = steps[best]
                new[bad] = cand[np.arange(int(bad.sum())), best]
            a[live], b[live] = al + step * da, bl + step * db
            done = new - ll[live] < tol
            ll[live] = new
            live = live[~done]
            if not len(live):
                break
        _, w = _information(a[:, None] + b[:, None] * H, H, n, k)
    info = np.empty((T, 2, 2))
    info[:, 0, 0], info[:, 0, 1] = w.sum(1), (w * H).sum(1)
    info[:, 1, 0], info[:, 1, 1] = info[:, 0, 1], (w * H * H).sum(1)
    return a, b, ll, info

def _edge(taus: np.ndarray, dev: np.ndarray, i: int, step: int, crit: float) -> float:
    """Walk from the best grid point ``i`` in direction ``step`` to where the deviance crosses
    ``crit``; interpolate linearly between the last grid point inside and the first outside."""
    j = i
    while 0 <= j + step < len(taus) and dev[j + step] <= crit:
        j += step
    if not 0 <= j + step < len(taus):
        return float(taus[j])
    d0, d1 = dev[j], dev[j + step]
    if not np.isfinite(d1) or d1 == d0:
        return float(taus[j])
    return float(taus[j] + (taus[j + step] - taus[j]) * (crit - d0) / (d1 - d0))


def fit_threshold(x, n, k, *, lower_is_better: bool = True, grid: int = 120,
                  alpha: float = 0.05) -> Threshold | None:
    """Capped broken-stick fit of the detractor share on the KPI, on grouped data (module docstring).

    Parameters
    ----------
    x, n, k : KPI values, events per value and detractors per value.
    lower_is_better : the KPI's direction (detractors rise above τ if True, below it otherwise).
    grid : number of candidate thresholds, at quantiles 5%–95% of the events' KPI values.
    alpha : 1 − the interval's level.

    Returns None when the KPI does not vary or there are fewer than four values.

    Examples
    --------
    >>> x = np.arange(0.0, 10.0, 0.5); n = np.full(x.size, 400)
    >>> k = np.round(n * np.minimum(1, 0.2 + 0.2 * np.maximum(0, x - 4))).astype(int)
    >>> th = fit_threshold(x, n, k)
    >>> round(th.tau, 1), th.ci_low <= 4.0 <= th.ci_high
    (4.0, True)
    """
    x, n, k = (np.asarray(v, float) for v in (x, n, k))
    order = np.argsort(x)
    x, n, k = x[order], n[order], k[order]
    if len(x) < 4 or np.ptp(x) == 0 or n.sum() == 0:
        return None
    s = 1.0 if lower_is_better else -1.0
    N = n.sum()
    cum = np.cumsum(n) / N
    taus = np.unique(np.interp(np.linspace(0.05, 0.95, grid), cum, x))
    H = np.maximum(0.0, s * (x[None, :] - taus[:, None]))
    keep = np.ptp(H, axis=1) > 0
    taus, H = taus[keep], H[keep]
    if not len(taus):
        return None
    a, b, ll, info = fit_capped(H, n, k)
    ll = np.where(np.isfinite(ll), ll, -np.inf)
    i = int(np.argmax(ll))
    dev = 2 * (ll[i] - ll)
    crit = float(chi2.ppf(1 - alpha, 1))
    lo, hi = _edge(taus, dev, i, -1, crit), _edge(taus, dev, i, +1, crit)
    try:
        cov = np.linalg.inv(info[i])
    except np.linalg.LinAlgError:
        cov = np.full((2, 2), np.nan)
    p0 = k.sum() / N
    ll0 = float(_loglik(np.full(x.size, p0), n, k))
    lr = max(2 * (ll[i] - ll0), 0.0)
    prof = pd.DataFrame({"tau": taus, "loglik": ll, "deviance": dev, "intercept": a, "slope": b})
    return Threshold(float(taus[i]), lo, hi, float(a[i]), float(b[i]), float(math.sqrt(max(cov[1, 1], 0.0))),
                     cov, float(chi2.sf(lr, 2)), prof, lower_is_better)
