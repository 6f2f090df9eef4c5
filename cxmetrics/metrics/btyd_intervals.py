"""Intervals for the non-contractual models: BG/NBD and Gamma-Gamma parameters, CLV and P(alive).

* **Parameters**: observed-information standard errors. The covariance of the log-parameters is
  the inverse of the negative Hessian of the log-likelihood at the maximum (central finite
  differences on the same weighted likelihood the fit maximises); the parameters' SEs follow by
  the delta method (SE(θ) = θ·SE(log θ)) and their intervals are θ·exp(±z·SE(log θ)), which stay
  positive (Pawitan 2001, §9.4 on the observed information; Efron & Hinkley 1978).
* **CLV and P(alive)**: parametric draws. Log-parameters are drawn from the normal with that
  covariance (seeded), each draw values the whole base, and the interval is the percentile
  interval of the draws (Krinsky & Robb 1986). It carries the parameter uncertainty only: the
  model itself (BG/NBD's assumptions, the gross margin) is taken as given.

References
----------
Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005), Marketing Science 24(2) (BG/NBD).
Fader, P. S. & Hardie, B. G. S. (2013), "The Gamma-Gamma model of monetary value".
Efron, B. & Hinkley, D. V. (1978), "Assessing the accuracy of the maximum likelihood estimator:
observed versus expected Fisher information", Biometrika 65(3).
Pawitan, Y. (2001), In All Likelihood, Oxford, §9.4.
Krinsky, I. & Robb, A. L. (1986), "On approximating the statistical properties of elasticities",
Review of Economics and Statistics 68(4).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from cxmetrics.core import lazy
from cxmetrics.core.dist import norm
from cxmetrics.core.results import Estimate, Result
from cxmetrics.metrics import btyd

np = lazy.module("numpy")
pd = lazy.module("pandas")

#: Number of parametric draws for CLV and P(alive) intervals, and their seed.
N_DRAWS = 200
SEED = 20050
#: Above this many (x, t_x, T, m) cells the draws value a seeded sample of cells drawn with
#: probability ∝ customers (an unbiased estimate of the base's mean), and the interval is the
#: full-base estimate plus the percentiles of the draws' deviations from the sample's estimate.
MAX_CELLS = 1_000


def hessian(grad, x: np.ndarray, step: float = 1e-5) -> np.ndarray:
    """Hessian of a scalar function at ``x`` from its analytic gradient ``grad``: central
    differences of the gradient (relative step ``step``·max(1, |x_i|)), made symmetric. Eight
    gradient evaluations for four parameters, where differencing the function takes forty.

    >>> g = lambda v: np.array([-2 * v[0] - 3 * v[1], -3 * v[0] - 4 * v[1]])  # of −v0² − 3v0v1 − 2v1²
    >>> np.round(hessian(g, np.array([0.3, -0.2])), 6).tolist()
    [[-2.0, -3.0], [-3.0, -4.0]]
    """
    x = np.asarray(x, float)
    k = len(x)
    h = step * np.maximum(1.0, np.abs(x))
    rows = [(grad(x + np.eye(k)[i] * h[i]) - grad(x - np.eye(k)[i] * h[i])) / (2 * h[i]) for i in range(k)]
    out = np.array(rows)
    return (out + out.T) / 2


@dataclass(frozen=True)
class ParamIntervals:
    """Point estimates, log-scale covariance and the resulting table of a fitted model."""

    names: tuple[str, ...]
    estimate: np.ndarray
    cov_log: np.ndarray  # covariance of the log-parameters (inverse observed information)

    @property
    def se(self) -> np.ndarray:
        """SE of each parameter by the delta method: θ·SE(log θ)."""
        return self.estimate * np.sqrt(np.diag(self.cov_log))

    def table(self, alpha: float = 0.05) -> pd.DataFrame:
        z = float(norm.ppf(1 - alpha / 2))
        sl = np.sqrt(np.diag(self.cov_log))
        return pd.DataFrame({"parameter": self.names, "estimate": self.estimate, "se": self.se,
                             "ci_low": self.estimate * np.exp(-z * sl), "ci_high": self.estimate * np.exp(z * sl)})

    def draws(self, n: int = N_DRAWS, seed: int = SEED) -> np.ndarray:
        """``n`` parameter vectors drawn from the normal on the log scale (seeded)."""
        rng = np.random.default_rng(seed)
        return np.exp(rng.multivariate_normal(np.log(self.estimate), self.cov_log, size=n))


def _intervals(names, estimate, loglik_grad) -> ParamIntervals:
    """``loglik_grad(θ)``: the log-likelihood and its gradient in θ; the information is taken on
    the log scale (∂/∂log θ = θ·∂/∂θ)."""
    lp = np.log(np.asarray(estimate, float))
    info = -hessian(lambda v: np.exp(v) * loglik_grad(np.exp(v))[1], lp)
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        cov = np.full_like(info, np.nan)
    if not np.all(np.isfinite(cov)) or np.any(np.diag(cov) <= 0):
        cov = np.full_like(info, np.nan)  # not a maximum (flat or a ridge): no interval
    return ParamIntervals(tuple(names), np.asarray(estimate, float), cov)


def bgnbd_intervals(fit: btyd.BGNBDFit, x, t_x, T, w=None) -> ParamIntervals:
    """Observed-information intervals for (r, α, a, b) of a BG/NBD fit on the same data."""
    terms = btyd._BGNBDTerms(x, t_x, T, w)
    return _intervals(("r", "alpha", "a", "b"), (fit.r, fit.alpha, fit.a, fit.b), terms.loglik_grad)


def gamma_gamma_intervals(fit: btyd.GammaGammaFit, x, m, w=None) -> ParamIntervals:
    """Observed-information intervals for (p, q, γ) of a Gamma-Gamma fit (customers with x > 0)."""
    x, m = np.asarray(x, float), np.asarray(m, float)
    keep = (x > 0) & (m > 0)
    terms = btyd._GGTerms(x[keep], m[keep], None if w is None else np.asarray(w, float)[keep])
    return _intervals(("p", "q", "gamma"), (fit.p, fit.q, fit.gamma), terms.loglik_grad)


def _base_means(bf: btyd.BGNBDFit, gf: btyd.GammaGammaFit, cells: pd.DataFrame, w: np.ndarray, *,
                horizon_weeks: float, margin: float, discount: float) -> tuple[np.ndarray, np.ndarray]:
    """The base's mean CLV and mean P(alive) (as in :func:`cxmetrics.btyd.clv_non_contractual`);
    the fits' parameters may be column vectors (one row per draw), giving one mean per draw."""
    xw, tx, T = (cells[c].to_numpy(float)[None, :] for c in ("x", "t_x_days", "T_days"))
    tx, T = tx / 7, T / 7
    disc = (1 + discount) ** (-(horizon_weeks / 52) / 2)
    clv = (btyd.expected_purchases(bf, horizon_weeks, xw, tx, T)
           * btyd.expected_spend(gf, xw, cells["m"].fillna(0).to_numpy(float)[None, :]) * margin * disc)
    alive = btyd.p_alive(bf, xw, tx, T)
    return clv @ w / w.sum(), alive @ w / w.sum()


def value_draws(bg: ParamIntervals, gg: ParamIntervals, cells: pd.DataFrame, *, horizon_weeks: float,
                margin: float, discount: float, n: int = N_DRAWS, seed: int = SEED) -> pd.DataFrame:
    """Per draw, the base's mean CLV and mean P(alive), parameters drawn from both models'
    covariances (independently: the two likelihoods share no parameter). Returned as deviations
    from the same cells valued at the point estimates (columns ``d_clv``, ``d_p_alive``), so that
    they can be added to the full base's estimate when the cells are sampled (:data:`MAX_CELLS`)."""
    if not (np.all(np.isfinite(bg.cov_log)) and np.all(np.isfinite(gg.cov_log))):
        return pd.DataFrame(columns=["d_clv", "d_p_alive"])
    if len(cells) > MAX_CELLS:
        rng = np.random.default_rng(seed)
        pick = rng.choice(len(cells), size=MAX_CELLS, p=cells["w"].to_numpy(float) / cells["w"].sum())
        idx, count = np.unique(pick, return_counts=True)
        cells, w = cells.iloc[idx], count.astype(float)
    else:
        w = cells["w"].to_numpy(float)
    kw = {"horizon_weeks": horizon_weeks, "margin": margin, "discount": discount}
    nan = float("nan")
    c0, p0 = _base_means(btyd.BGNBDFit(*bg.estimate, nan, 0), btyd.GammaGammaFit(*gg.estimate, nan, 0), cells, w, **kw)
    pb, pg = bg.draws(n, seed), gg.draws(n, seed + 1)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        c, p = _base_means(btyd.BGNBDFit(*(pb[:, [i]] for i in range(4)), nan, 0),
                           btyd.GammaGammaFit(*(pg[:, [i]] for i in range(3)), nan, 0), cells, w, **kw)
    bad = (pg[:, 1] <= 1) | (pb[:, 2] == 1)  # E[spend] (q ≤ 1) or eq. 10 (a = 1) undefined for this draw
    return pd.DataFrame({"d_clv": np.where(bad, nan, c - c0[0]), "d_p_alive": np.where(bad, nan, p - p0[0])})


_BG_NAMES, _GG_NAMES = ("r", "alpha", "a", "b"), ("p", "q", "gamma")


def fit_intervals(res: Result) -> tuple[ParamIntervals, ParamIntervals]:
    """The BG/NBD and Gamma-Gamma observed-information intervals of
    :func:`cxmetrics.btyd.clv_non_contractual`'s fits, at the result's own parameters on the same
    (sampled) cells the fit used. The identification checks and :func:`with_intervals` take the
    same pair (each Hessian is a few hundred likelihood evaluations)."""
    return intervals_on(res.table, [res.extra["bgnbd"][k] for k in _BG_NAMES],
                        [res.extra["gamma_gamma"][k] for k in _GG_NAMES])


def intervals_on(cells: pd.DataFrame, bgnbd, gamma_gamma) -> tuple[ParamIntervals, ParamIntervals]:
    """:func:`fit_intervals` of the fits with parameters ``bgnbd`` (r, α, a, b) and ``gamma_gamma``
    (p, q, γ) on the RFM ``cells`` they were fitted to (sampled as the fit samples them)."""
    fit_cells = btyd.fit_sample(cells[["x", "t_x_days", "T_days", "m", "w"]])
    nan = float("nan")
    bf = btyd.BGNBDFit(*bgnbd, nan, 0)
    gf = btyd.GammaGammaFit(*gamma_gamma, nan, 0)
    bg = bgnbd_intervals(bf, fit_cells["x"], fit_cells["t_x_days"] / 7, fit_cells["T_days"] / 7, fit_cells["w"])
    rep = fit_cells[fit_cells["x"] > 0]
    return bg, gamma_gamma_intervals(gf, rep["x"], rep["m"], rep["w"])


def keep_cov(doc: dict, cells: pd.DataFrame) -> None:
    """Add to a kept BTYD fit (:func:`cxmetrics.metrics.btyd.default_fit`) the log-scale covariances
    of both models' observed-information intervals at its parameters on its cells (``cov_log``: the
    Hessians a page would otherwise take; left out when they cannot be computed)."""
    try:
        with np.errstate(all="ignore"):
            ivs = intervals_on(cells, doc["bgnbd"][:4], doc["gamma_gamma"][:3])
    except (ArithmeticError, ValueError, np.linalg.LinAlgError):
        return
    doc["cov_log"] = [iv.cov_log.tolist() for iv in ivs]


def kept_intervals(doc: dict | None, res: Result) -> tuple[ParamIntervals, ParamIntervals] | None:
    """:func:`fit_intervals` as kept with a fit (``cov_log`` of :func:`keep_cov`)
    when ``res`` holds that kept fit's parameters, else None (then they are computed)."""
    if not doc or "cov_log" not in doc:
        return None
    bgnbd, gamma_gamma = list(doc["bgnbd"][:4]), list(doc["gamma_gamma"][:3])
    if (bgnbd != [res.extra["bgnbd"][k] for k in _BG_NAMES]
            or gamma_gamma != [res.extra["gamma_gamma"][k] for k in _GG_NAMES]):
        return None
    cov_bg, cov_gg = (np.asarray(c, float) for c in doc["cov_log"])
    return (ParamIntervals(_BG_NAMES, np.asarray(bgnbd, float), cov_bg),
            ParamIntervals(_GG_NAMES, np.asarray(gamma_gamma, float), cov_gg))


def with_intervals(res: Result, *, alpha: float = 0.05, n: int = N_DRAWS, seed: int = SEED,
                   gamma_gamma_fixed: bool = False,
                   intervals: tuple[ParamIntervals, ParamIntervals] | None = None) -> Result:
    """:func:`cxmetrics.btyd.clv_non_contractual`'s result with parameter tables (observed
    information) and headline mean CLV and mean P(alive) with percentile intervals from ``n``
    parametric draws. The fit is refitted on nothing: the Hessian is taken at the result's own
    parameters on the same (sampled) cells the fit used. With ``gamma_gamma_fixed`` the Gamma-Gamma
    parameters are not drawn (zero covariance): for a P(alive) interval when that fit is not
    identified (:mod:`cxmetrics.metrics.btyd_checks`; its CLV is then not shown). ``intervals``:
    :func:`fit_intervals` of ``res``, when the caller has them already."""
    if res.table.empty:
        return res
    cells = res.table
    bg, gg = intervals or fit_intervals(res)
    if gamma_gamma_fixed:
        gg = ParamIntervals(gg.names, gg.estimate, np.zeros_like(gg.cov_log))
    a = res.extra["assumptions_used"]
    draws = value_draws(bg, gg, cells, horizon_weeks=a["horizon_weeks"], margin=a["margin"], discount=a["discount"],
                        n=n, seed=seed)
    s = res.extra["summary"]
    method = (f"{len(draws)} parametric draws of the BG/NBD and Gamma-Gamma parameters from the normal on the "
              "log scale with the inverse observed information as covariance (seeded); percentile interval "
              "(Krinsky & Robb 1986). Parameter uncertainty only: the model and the gross margin are taken as given.")
    heads = []
    for name, label, key, col, unit in (("btyd_mean_clv", "Mean CLV, non-contractual", "mean_clv", "d_clv", ""),
                                        ("btyd_mean_p_alive", "Mean P(alive), non-contractual", "mean_p_alive",
                                         "d_p_alive", "")):
        lo, hi = percentile_interval(draws.get(col, []), alpha)
        sd = float(np.nanstd(draws[col], ddof=1)) if col in draws and draws[col].notna().sum() > 1 else None
        heads.append(Estimate(name, label, s[key], s[key] + lo, s[key] + hi, n=int(s["customers"]), unit=unit,
                              alpha=alpha, method=method, reference=REFERENCE, filters=res.filters,
                              assumptions=res.assumptions, se=sd))
    tables = {"bgnbd_params": bg.table(alpha), "gamma_gamma_params": gg.table(alpha)}
    warnings = res.warnings
    if not np.all(np.isfinite(bg.cov_log)) or not np.all(np.isfinite(gg.cov_log)):
        warnings += ("The likelihood is flat at the fit (the observed information is not invertible): no "
                     "parameter, CLV or P(alive) interval.",)
    return dataclasses.replace(
        res, headline=tuple(heads), alpha=alpha, warnings=warnings, extra={**res.extra, **tables},
        method=res.method + " Parameter CIs: observed information (inverse Hessian of the log-likelihood on the "
                            "log scale, delta method); CLV and P(alive) CIs: " + method)


REFERENCE = ("Efron & Hinkley (1978) observed information; Pawitan (2001) §9.4; Krinsky & Robb (1986) "
             "parametric draws.")


def percentile_interval(values, alpha: float = 0.05) -> tuple[float, float]:
    """The (α/2, 1 − α/2) percentiles of the finite draws; NaN when fewer than half are finite."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if len(v) < max(len(np.asarray(values)) / 2, 2):
        return float("nan"), float("nan")
    return float(np.quantile(v, alpha / 2)), float(np.quantile(v, 1 - alpha / 2))
