"""Non-contractual CLV: BG/NBD for purchases and P(alive), Gamma-Gamma for spend.

Both models are fitted by maximum likelihood (scipy, on log-parameters). The likelihoods only
depend on each customer's (x, t_x, T) — and (x, m_x) for spend — so customers are grouped by
those values in DuckDB and the log-likelihood is weighted by the group sizes: exact, and fast at
any scale. We implement the published formulas rather than depend on ``lifetimes`` (unmaintained
since 2020, pins old autograd/pandas) — its CDNOW data files are only read by the tests.

References
----------
Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005a), "'Counting your customers' the easy way: an
alternative to the Pareto/NBD model", Marketing Science 24(2): likelihood eq. 6, P(alive) eq. 13,
conditional expectation eq. 10. CDNOW estimates r = 0.243, α = 4.414, a = 0.793, b = 2.426.
Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005b), "RFM and CLV: using iso-value curves for
customer base analysis", J. Marketing Research 42(4); Fader & Hardie (2013) "The Gamma-Gamma
model of monetary value": likelihood eq. 3, E[M] eq. 5. CDNOW p = 6.25, q = 3.74, γ = 15.44.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from cxmetrics import store
from cxmetrics.core import lazy
from cxmetrics.core.filters import Filters
from cxmetrics.core.results import Result
from cxmetrics.store import relations, stubs, summaries

np = lazy.module("numpy")
pd = lazy.module("pandas")
minimize = lazy.attr("scipy.optimize", "minimize")
betaln = lazy.attr("scipy.special", "betaln")
gammaln = lazy.attr("scipy.special", "gammaln")
digamma = lazy.attr("scipy.special", "digamma")
hyp2f1 = lazy.attr("scipy.special", "hyp2f1")


@dataclass(frozen=True)
class BGNBDFit:
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    n: int
    converged: bool = True  # the optimiser reported success (see btyd_checks.identify)

    def params(self) -> dict[str, float]:
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}


@dataclass(frozen=True)
class GammaGammaFit:
    p: float
    q: float
    gamma: float
    log_likelihood: float
    n: int
    converged: bool = True

    def params(self) -> dict[str, float]:
        return {"p": self.p, "q": self.q, "gamma": self.gamma}


def _codes(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique values and the index of each element into them (special functions are evaluated
    once per distinct value: customers share few distinct x, t_x and T)."""
    return np.unique(v, return_inverse=True)


class _BGNBDTerms:
    """The data side of the BG/NBD likelihood, prepared once per fit."""

    def __init__(self, x, t_x, T, w=None) -> None:
        x, t_x, T = (np.asarray(v, float).ravel() for v in (x, t_x, T))
        self.w = np.ones_like(x) if w is None else np.asarray(w, float).ravel()
        self.x = x
        (self.ux, self.ix), (self.ut, self.it), (self.uT, self.iT) = _codes(x), _codes(t_x), _codes(T)
        self.pos = x > 0

    def loglik(self, params) -> float:
        r, alpha, a, b = params
        ux = self.ux
        head = (gammaln(r + ux) - gammaln(r) + r * np.log(alpha) + betaln(a, b + ux) - betaln(a, b))[self.ix]
        rx = r + self.x
        a3 = -rx * np.log(alpha + self.uT)[self.iT]
        with np.errstate(divide="ignore", invalid="ignore"):
            lb = (np.log(a) - np.log(np.maximum(b + ux - 1, 1e-300)))[self.ix]
            a4 = np.where(self.pos, lb - rx * np.log(alpha + self.ut)[self.it], -np.inf)
        return float(np.dot(self.w, head + np.logaddexp(a3, a4)))

    def loglik_grad(self, params) -> tuple[float, np.ndarray]:
        """The log-likelihood and its gradient in (r, α, a, b), by the derivatives of eq. 6:
        with L = log(e^A3 + e^A4) and the shares p3 = e^(A3−L), p4 = 1 − p3 (0 when x = 0),

        * ∂/∂r = ψ(r+x) − ψ(r) + log α − p3·log(α+T) − p4·log(α+t_x)
        * ∂/∂α = r/α − (r+x)·(p3/(α+T) + p4/(α+t_x))
        * ∂/∂a = ψ(a+b) − ψ(a+b+x) + p4/a
        * ∂/∂b = ψ(b+x) − ψ(a+b+x) − ψ(b) + ψ(a+b) − p4/(b+x−1)

        (tested against the numerical gradient). One evaluation instead of five per step of the
        optimiser."""
        r, alpha, a, b = params
        ux, ix, w = self.ux, self.ix, self.w
        head = (gammaln(r + ux) - gammaln(r) + r * np.log(alpha) + betaln(a, b + ux) - betaln(a, b))[ix]
        rx = r + self.x
        log_T, log_t = np.log(alpha + self.uT)[self.iT], np.log(alpha + self.ut)[self.it]
        a3 = -rx * log_T
        with np.errstate(divide="ignore", invalid="ignore"):
            bx1 = np.maximum(b + ux - 1, 1e-300)
            a4 = np.where(self.pos, (np.log(a) - np.log(bx1))[ix] - rx * log_t, -np.inf)
        lse = np.logaddexp(a3, a4)
        p4 = np.exp(a4 - lse)
        p3 = 1.0 - p4
        wp4 = w * p4
        d_r = (digamma(r + ux) - digamma(r))[ix] + np.log(alpha) - p3 * log_T - p4 * log_t
        d_alpha = r / alpha - rx * (p3 / (alpha + self.uT)[self.iT] + p4 / (alpha + self.ut)[self.it])
        d_a = (digamma(a + b) - digamma(a + b + ux))[ix]
        d_b = (digamma(b + ux) - digamma(a + b + ux) - digamma(b) + digamma(a + b))[ix]
        with np.errstate(divide="ignore", invalid="ignore"):
            inv_bx1 = np.where(self.pos, (1.0 / bx1)[ix], 0.0)
        grad = np.array([np.dot(w, d_r), np.dot(w, d_alpha), np.dot(w, d_a) + wp4.sum() / a,
                         np.dot(w, d_b) - np.dot(wp4, inv_bx1)])
        return float(np.dot(w, head + lse)), grad


def _objectives(terms):
    """The negative log-likelihood of ``terms`` on log-parameters, alone (Nelder–Mead) and with its
    gradient (L-BFGS: ∂/∂log θ = θ·∂/∂θ)."""

    def nll(lp):
        return -terms.loglik(np.exp(lp))

    def nll_grad(lp):
        theta = np.exp(lp)
        ll, g = terms.loglik_grad(theta)
        return -ll, -g * theta

    return nll, nll_grad


def bgnbd_loglik(params, x, t_x, T, w=None) -> float:
    """Weighted BG/NBD log-likelihood (Fader, Hardie & Lee 2005a, eq. 6)."""
    return _BGNBDTerms(x, t_x, T, w).loglik(params)


def fit_bgnbd(x, t_x, T, w=None) -> BGNBDFit:
    """Maximum-likelihood BG/NBD fit by L-BFGS on log-parameters; when that does not converge,
    Nelder–Mead from the same start and L-BFGS again (the robust path, five times slower)."""
    terms = _BGNBDTerms(x, t_x, T, w)

    nll, nll_grad = _objectives(terms)
    start = np.log([0.5, 5.0, 0.5, 2.0])
    res = minimize(nll_grad, start, method="L-BFGS-B", jac=True)
    if not res.success or not np.all(np.isfinite(res.x)):
        res = minimize(nll, start, method="Nelder-Mead", options={"maxiter": 4000, "xatol": 1e-8, "fatol": 1e-10})
        res = minimize(nll_grad, res.x, method="L-BFGS-B", jac=True)
    r, alpha, a, b = np.exp(res.x)
    return BGNBDFit(r, alpha, a, b, -float(res.fun), int(terms.w.sum()), bool(res.success))


def p_alive(fit: BGNBDFit, x, t_x, T) -> np.ndarray:
    """P(alive | x, t_x, T) (eq. 13)."""
    x, t_x, T = (np.asarray(v, float) for v in (x, t_x, T))
    with np.errstate(divide="ignore", invalid="ignore"):
        odds = np.where(x > 0, fit.a / np.maximum(fit.b + x - 1, 1e-300) * ((fit.alpha + T) / (fit.alpha + t_x)) ** (fit.r + x), 0.0)
    return 1 / (1 + odds)


def expected_purchases(fit: BGNBDFit, t: float, x, t_x, T) -> np.ndarray:
    """Expected purchases in the next ``t`` periods given (x, t_x, T) (eq. 10)."""
    x, t_x, T = (np.asarray(v, float) for v in (x, t_x, T))
    r, alpha, a, b = fit.r, fit.alpha, fit.a, fit.b
    hyp = hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
    num = (a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp)
    with np.errstate(divide="ignore", invalid="ignore"):
        den = 1 + np.where(x > 0, a / np.maximum(b + x - 1, 1e-300) * ((alpha + T) / (alpha + t_x)) ** (r + x), 0.0)
    return num / den


class _GGTerms:
    """The data side of the Gamma-Gamma likelihood, prepared once per fit."""

    def __init__(self, x, m, w=None) -> None:
        x, m = np.asarray(x, float).ravel(), np.asarray(m, float).ravel()
        self.w = np.ones_like(x) if w is None else np.asarray(w, float).ravel()
        self.x, self.mx, self.log_m = x, m * x, np.log(m)
        self.ux, self.ix = _codes(x)

    def loglik(self, params) -> float:
        p, q, g = params
        ux = self.ux
        head = (gammaln(p * ux + q) - gammaln(p * ux) + p * ux * np.log(ux))[self.ix]
        px = p * self.x
        ll = head - gammaln(q) + q * np.log(g) + (px - 1) * self.log_m - (px + q) * np.log(g + self.mx)
        return float(np.dot(self.w, ll))

    def loglik_grad(self, params) -> tuple[float, np.ndarray]:
        """The log-likelihood and its gradient in (p, q, γ) (tested against the numerical one):

        * ∂/∂p = x·(ψ(px+q) − ψ(px) + log x + log m − log(γ+mx))
        * ∂/∂q = ψ(px+q) − ψ(q) + log γ − log(γ+mx)
        * ∂/∂γ = q/γ − (px+q)/(γ+mx)"""
        p, q, g = params
        ux, ix, w = self.ux, self.ix, self.w
        pu = p * ux
        head = (gammaln(pu + q) - gammaln(pu) + pu * np.log(ux))[ix]
        px = p * self.x
        log_gmx = np.log(g + self.mx)
        ll = head - gammaln(q) + q * np.log(g) + (px - 1) * self.log_m - (px + q) * log_gmx
        psi_pq = digamma(pu + q)
        d_p = self.x * ((psi_pq - digamma(pu) + np.log(ux))[ix] + self.log_m - log_gmx)
        d_q = psi_pq[ix] - digamma(q) + np.log(g) - log_gmx
        d_g = q / g - (px + q) / (g + self.mx)
        return float(np.dot(w, ll)), np.array([np.dot(w, d_p), np.dot(w, d_q), np.dot(w, d_g)])


def gg_loglik(params, x, m, w=None) -> float:
    """Gamma-Gamma log-likelihood of mean spend ``m`` over ``x`` repeat purchases (x > 0)."""
    return _GGTerms(x, m, w).loglik(params)


def fit_gamma_gamma(x, m, w=None) -> GammaGammaFit:
    x, m = np.asarray(x, float), np.asarray(m, float)
    keep = (x > 0) & (m > 0)
    x, m = x[keep], m[keep]
    w = None if w is None else np.asarray(w, float)[keep]

    terms = _GGTerms(x, m, w)

    nll, nll_grad = _objectives(terms)
    # start from a moment match (p = 2, q = 3, mean spend = pγ/(q − 1)) and keep log-parameters
    # bounded: from a poor start the likelihood has a ridge towards p → ∞ that traps optimisers
    mean_m = float(np.average(m, weights=w)) if len(m) else 1.0
    start = np.log([2.0, 3.0, max(mean_m, 1e-6)])
    bounds = [(-10, 10)] * 3
    res = minimize(nll_grad, start, method="L-BFGS-B", jac=True, bounds=bounds)
    if not res.success or not np.all(np.isfinite(res.x)):  # the robust path: Nelder-Mead, then polish
        res = minimize(nll, start, method="Nelder-Mead", options={"maxiter": 4000, "xatol": 1e-8, "fatol": 1e-10})
        res = minimize(nll_grad, res.x, method="L-BFGS-B", jac=True, bounds=bounds)
    p, q, g = np.exp(res.x)
    return GammaGammaFit(p, q, g, -float(res.fun), int(len(x) if w is None else w.sum()), bool(res.success))


def expected_spend(fit: GammaGammaFit, x, m) -> np.ndarray:
    """E[M | x, m_x] (Fader & Hardie 2013, eq. 5); the population mean when x = 0."""
    x, m = np.asarray(x, float), np.asarray(m, float)
    pop = fit.p * fit.gamma / (fit.q - 1)
    wgt = fit.p * x / (fit.p * x + fit.q - 1)
    return np.where(x > 0, (1 - wgt) * pop + wgt * m, pop)


# ----------------------------------------------------------------------------- from the store

PERIOD_DAYS = {"week": 7.0, "month": 365.25 / 12}

def rfm(con, *, calibration_end, source: str = "transactions", where: str = "TRUE",
        params: dict | None = None) -> store.Query:
    """Grouped RFM summary query: (x, t_x_days, T_days, m, w) with w customers per cell, over the
    purchases in ``source`` (:data:`cxmetrics.relations.RFM_PER_CUSTOMER`); ``where`` is a condition
    on the per-customer rows (alias ``c``, column ``customer_id``).

    Purchases on the same day count once (the usual BTYD convention); ``m`` is the mean value of
    repeat purchases (the first purchase is excluded, as in Fader, Hardie & Lee 2005b).
    """
    per = "(" + relations.RFM_PER_CUSTOMER.replace("{source}", source) + ")"
    return store.Query("rfm_summary", relations.RFM_CELLS.format(rfm=per, where=where),
                       {**(params or {}), "cal_end": calibration_end})


#: Above this many customers the models are fitted on a seeded uniform random sample of them
#: (every customer is still valued with the fitted parameters). The sampling error of the
#: parameters at 50,000 customers is far below their between-period variation; the exact
#: likelihood over hundreds of thousands of distinct (x, t_x, T, m) cells costs minutes.
FIT_MAX_CUSTOMERS = 50_000


def fit_sample(df: pd.DataFrame, max_customers: int = FIT_MAX_CUSTOMERS, seed: int = 20051) -> pd.DataFrame:
    """Thin the cell counts ``w`` binomially to a uniform sample of about ``max_customers``.

    >>> cells = pd.DataFrame({"w": [100_000, 50_000]})
    >>> fit_sample(cells, 1_000)["w"].sum() in range(900, 1100)
    True
    """
    total = float(df["w"].sum())
    if total <= max_customers:
        return df
    rng = np.random.default_rng(seed)
    thinned = df.assign(w=rng.binomial(df["w"].astype(np.int64), max_customers / total))
    return thinned[thinned["w"] > 0]


def fit_from_rfm(df: pd.DataFrame, period: str = "week") -> tuple[BGNBDFit, GammaGammaFit]:
    days = PERIOD_DAYS[period]
    df = fit_sample(df)
    bg = fit_bgnbd(df["x"], df["t_x_days"] / days, df["T_days"] / days, df["w"])
    rep = df[df["x"] > 0]
    gg = fit_gamma_gamma(rep["x"], rep["m"], rep["w"])
    return bg, gg


def last_transaction(con):
    """The data's last transaction date (every BTYD reference date: the calibration end), None
    without transactions."""
    return store.scalar(con, "SELECT max(occurred_on) FROM transactions", name="last_transaction")


def _cells(con, filters: Filters, calibration_end=None) -> tuple[pd.DataFrame, store.Query, object]:
    """The grouped RFM cells of non-contractual customers, the query, and the calibration end."""
    cal = calibration_end or last_transaction(con)
    where, params = summaries.where(summaries.RFM_TABLE, filters, customer="c", customer_id_col="c.customer_id",
                                    dates=False)
    q = summaries.query(con, "rfm_summary", relations.RFM_CELLS.format(rfm="{summary_rfm}", where=where), params,
                        filters=filters, cal_end=cal)
    return store.run(con, q), q, cal


def _fittable(df: pd.DataFrame) -> bool:
    return df["w"].sum() >= 50 and (df["x"] > 0).sum() >= 5


#: Why the non-contractual CLV ignores the date range (a warning on its result under a range).
WHOLE_HISTORY = ("Fitted on every purchase up to the last transaction, whatever the date range: the model needs "
                 "each customer's whole purchase history.")


@stubs.note_excluded(stubs_matter=True, responses=False)
def clv_non_contractual(con, filters: Filters, *, calibration_end=None, horizon_weeks: float = 52.0,
                        margin: float | None = None, annual_discount: float | None = None) -> Result:
    """Fit BG/NBD and Gamma-Gamma on non-contractual customers and value them.

    Customer value = expected purchases over the horizon × expected spend × gross margin,
    discounted at mid-horizon (an approximation stated on the result). The table is by customer
    *cell* (x, t_x, T, m), not by customer, so it stays small.
    """
    dated = filters.dated
    filters = filters.undated()  # the RFM cells take no date range
    df, q, cal = _cells(con, filters, calibration_end)
    if not _fittable(df):
        return Result("clv_btyd", "Non-contractual CLV (BG/NBD + Gamma-Gamma)", pd.DataFrame(),
                      warnings=("Too few non-contractual customers to fit BG/NBD.",), filters=filters.describe())
    kept = kept_fit(con, filters)
    if kept and kept["cal_end"] == str(cal):  # the same fit, kept from when the data last changed
        bg, gg = BGNBDFit(*kept["bgnbd"]), GammaGammaFit(*kept["gamma_gamma"])
    else:
        bg, gg = fit_from_rfm(df, "week")
    return valued(con, df, q, cal, bg, gg, filters, dated=dated, horizon_weeks=horizon_weeks, margin=margin,
                  annual_discount=annual_discount)


def valued(con, df: pd.DataFrame, q: store.Query, cal, bg: BGNBDFit, gg: GammaGammaFit, filters: Filters, *,
           dated: bool = False, horizon_weeks: float = 52.0, margin: float | None = None,
           annual_discount: float | None = None) -> Result:
    """:func:`clv_non_contractual`'s result from its RFM cells ``df`` (their query ``q``, calibration
    end ``cal``) and fits, for the view ``filters`` (undated; ``dated``: the caller's had a range).
    Reads only the current assumptions; without the exclusion notes its decorator adds."""
    from cxmetrics.store import assumptions

    used = assumptions.current(con)
    gm = margin if margin is not None else used["gross_margin"].value
    d = annual_discount if annual_discount is not None else used["discount_rate"].value
    xw, tx, T = df["x"], df["t_x_days"] / 7, df["T_days"] / 7
    exp_n = expected_purchases(bg, horizon_weeks, xw, tx, T)
    spend = expected_spend(gg, xw, df["m"].fillna(0))
    disc = (1 + d) ** (-(horizon_weeks / 52) / 2)
    table = df.assign(p_alive=p_alive(bg, xw, tx, T), expected_purchases=exp_n, expected_spend=spend,
                      clv=exp_n * spend * gm * disc)
    total_w = table["w"].sum()
    summary = {"customers": int(total_w), "mean_clv": float((table["clv"] * table["w"]).sum() / total_w),
               "mean_p_alive": float((table["p_alive"] * table["w"]).sum() / total_w), "calibration_end": str(cal)}
    return Result("clv_btyd", "Non-contractual CLV (BG/NBD + Gamma-Gamma)", table,
                  method=f"BG/NBD and Gamma-Gamma by maximum likelihood on customers grouped by (x, t_x, T, m) "
                         f"(fitted on a seeded random sample of {FIT_MAX_CUSTOMERS:,} customers when there are more); "
                         f"CLV = E[purchases in {horizon_weeks:g} weeks] × E[spend] × gross margin, discounted at "
                         "mid-horizon.",
                  reference="Fader, Hardie & Lee (2005a) eq. 6, 10, 13; Fader & Hardie (2013) Gamma-Gamma eq. 3, 5.",
                  filters=filters.describe(), assumptions=assumptions.cite({k: used[k] for k in ("gross_margin", "discount_rate")}),
                  warnings=(WHOLE_HISTORY,) if dated else (),
                  queries=(q,), extra={"tables": ("transactions", "customers"),
                                       "bgnbd": bg.params() | {"ll": bg.log_likelihood, "converged": bg.converged},
                                       "gamma_gamma": gg.params() | {"ll": gg.log_likelihood,
                                                                     "converged": gg.converged}, "summary": summary,
                                       "assumptions_used": {"horizon_weeks": horizon_weeks, "margin": gm,
                                                            "discount": d}})




def kept_values(con) -> dict[str, list[str]]:
    """The segments and the regions of the non-contractual customers (the RFM rows, at the last
    transaction date) whose views keep their own fits: per dimension the ``summaries.KEPT_VALUES`` with
    the most customers (ties by name)."""
    cal = last_transaction(con)
    if cal is None:
        return {}
    out = {}
    for dim in ("segment", "region"):  # column names from this tuple
        q = summaries.query(con, f"kept_{dim}s", f"""
SELECT c.{dim} AS v FROM {{summary_rfm}} c WHERE c.{dim} IS NOT NULL
GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT $n""", {"n": summaries.KEPT_VALUES}, filters=Filters(), cal_end=cal)
        out[dim] = [str(v) for v in store.run(con, q)["v"]]
    return out


def narrowed_to(dim: str, value: str) -> Filters:
    """The filters of one segment or one region (``dim`` as :func:`cxmetrics.summaries.one_value` names it)."""
    return Filters(segments=(value,)) if dim == "segment" else Filters(regions=(value,))


def _fit_doc(con, filters: Filters,
             extra: Callable[[dict, pd.DataFrame, store.Query, Filters], None] | None) -> dict | None:
    df, q, cal = _cells(con, filters)
    if cal is None or not _fittable(df):
        return None
    bg, gg = fit_from_rfm(df, "week")
    doc = {"cal_end": str(cal),
           "bgnbd": [float(v) for v in (bg.r, bg.alpha, bg.a, bg.b, bg.log_likelihood)] + [bg.n, bg.converged],
           "gamma_gamma": [float(v) for v in (gg.p, gg.q, gg.gamma, gg.log_likelihood)] + [gg.n, gg.converged]}
    if extra is not None:
        extra(doc, df, q, filters)
    return doc


def default_fit(con, extra: Callable[[dict, pd.DataFrame, store.Query, Filters], None] | None = None) -> dict | None:
    """BG/NBD and Gamma-Gamma fitted to the unfiltered view at the last transaction date, as kept
    in summary_fits (see :mod:`cxmetrics.summaries`), and under ``by`` the same fits of each view of
    one segment or one region (:func:`kept_values`; a value too small to fit has none); None when
    there is too little to fit. ``extra(fit, cells, query, filters)`` adds to each fit what is
    computed from it, the RFM cells it was fitted to, their query and the view (the kept fits are
    those of :func:`cxmetrics.metrics.btyd_checks.default_fit`: the intervals' covariances and the
    Customer value page's section)."""
    out = _fit_doc(con, Filters(), extra)
    if out is None:
        return None
    out["by"] = {dim: {v: doc for v in values if (doc := _fit_doc(con, narrowed_to(dim, v), extra)) is not None}
                 for dim, values in kept_values(con).items()}
    return out


def kept_fit(con, filters: Filters) -> dict | None:
    """The kept fit (:func:`default_fit`) of this view when there is one: unfiltered, or one segment
    or one region; the RFM cells take no date range, so a date range alone reads it too."""
    return summaries.kept_view(con, "btyd", filters.undated())


def kept_holdout_split(con) -> tuple | None:
    """(first purchase, calibration end, holdout end) of the stored holdout-check inputs
    (:data:`cxmetrics.store.relations.RFM_HOLDOUT`) when they are current and hold a customer, else None."""
    if not summaries.current(con, relations.RFM_HOLDOUT.name):
        return None
    row = store.run(con, store.Query("holdout_split", "SELECT first_on, cal_end, hold_end FROM "
                                     f"{relations.RFM_HOLDOUT.name} LIMIT 1"))  # name from relations.ALL
    return tuple(pd.Timestamp(v).date() for v in row.iloc[0]) if len(row) else None


def holdout_cells(con, filters: Filters, *, calibration_end, holdout_end) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The calibration RFM cells of non-contractual customers, and per number of calibration repeats
    (``x``, capped at 7) their customers and actual repeat purchases (distinct days) in the holdout.
    Counted from the stored check inputs when they hold this split, else from the transactions."""
    kept = kept_holdout_split(con)
    if kept is not None and kept[1:] == (calibration_end, holdout_end):
        cwhere, params = filters.where(customer_id_col="c.customer_id", dates=False)
        name = relations.RFM_HOLDOUT.name  # from relations.ALL
        df = store.run(con, store.Query("rfm_summary", relations.RFM_CELLS.format(rfm=name, where=cwhere), params))
        hold = store.run(con, store.Query("holdout", f"""
SELECT least(c.x, 7) AS x, count(*) AS customers, sum(c.holdout_days) AS actual
FROM {name} c WHERE {cwhere} GROUP BY 1 ORDER BY 1""", params))
        return df, hold
    src = ("(SELECT t.* FROM transactions t JOIN customers c USING (customer_id) "
           "WHERE c.contract = 'non_contractual')")
    cwhere, params = filters.where(customer_id_col="c.customer_id", dates=False)
    where, _ = filters.where(customer_id_col="t.customer_id", dates=False)
    df = store.run(con, rfm(con, calibration_end=calibration_end, source=src, where=cwhere, params=params))
    hold = store.run(con, store.Query("holdout", f"""
WITH cal AS (SELECT customer_id, count(DISTINCT occurred_on::DATE) - 1 AS x FROM {src} t
             WHERE occurred_on::DATE <= $cal_end AND {where} GROUP BY 1),
     h AS (SELECT customer_id, count(DISTINCT occurred_on::DATE) AS n FROM {src} t
           WHERE occurred_on::DATE > $cal_end AND occurred_on::DATE <= $hold_end GROUP BY 1)
SELECT least(cal.x, 7) AS x, count(*) AS customers, sum(coalesce(h.n, 0)) AS actual
FROM cal LEFT JOIN h USING (customer_id) GROUP BY 1 ORDER BY 1""",
        {**params, "cal_end": calibration_end, "hold_end": holdout_end}))
    return df, hold


def holdout_predicted(bg: BGNBDFit, df: pd.DataFrame, hold: pd.DataFrame, weeks: float) -> pd.DataFrame:
    """``hold`` with the repeat purchases the calibration fit ``bg`` predicts over ``weeks``."""
    df = df.assign(pred=expected_purchases(bg, weeks, df["x"], df["t_x_days"] / 7, df["T_days"] / 7) * df["w"],
                   xb=df["x"].clip(upper=7))
    pred = df.groupby("xb")["pred"].sum()
    return hold.assign(predicted=hold["x"].map(pred).fillna(0.0))


def holdout_check(con, filters: Filters, *, calibration_end, holdout_end) -> pd.DataFrame:
    """Predicted vs actual repeat purchases in the holdout, by number of calibration repeats."""
    df, hold = holdout_cells(con, filters, calibration_end=calibration_end, holdout_end=holdout_end)
    bg, _ = fit_from_rfm(df, "week")
    weeks = (pd.Timestamp(holdout_end) - pd.Timestamp(calibration_end)).days / 7
    return holdout_predicted(bg, df, hold, weeks)


def _isfinite(v: float) -> bool:
    return v is not None and math.isfinite(v)


def register_cli(sub, parents) -> None:
    p = sub.add_parser("clv", help="fit BG/NBD and Gamma-Gamma to a transactions CSV (`clv fit`)")
    s = p.add_subparsers(dest="clv_command", required=True, metavar="fit")
    f = s.add_parser("fit", help="fit BG/NBD and Gamma-Gamma on a CSV of customer_id,date,amount")
    f.add_argument("--transactions", required=True, help="CSV with customer_id, date, amount (extra columns ignored)")
    f.add_argument("--calibration-end", required=True, type=_date, help="last date of the calibration period")
    f.add_argument("--period", choices=tuple(PERIOD_DAYS), default="week", help="time unit of r/alpha (default week)")
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=_cli_fit)


def _date(s: str):
    import datetime as dt

    return dt.date.fromisoformat(s)


def _cli_fit(args) -> int:
    import duckdb

    from cxmetrics.core.output import CLIError, emit

    con = duckdb.connect()
    try:
        cols = [r[0].lower() for r in con.execute("DESCRIBE SELECT * FROM read_csv($p, header = true)",
                                                  {"p": args.transactions}).fetchall()]
    except duckdb.Error as exc:
        raise CLIError(f"cannot read {args.transactions}: {str(exc).splitlines()[0]}") from None
    missing = {"customer_id", "date", "amount"} - set(cols)
    if missing:
        raise CLIError(f"{args.transactions} lacks column(s) {', '.join(sorted(missing))}")
    src = ("(SELECT CAST(customer_id AS VARCHAR) AS customer_id, CAST(date AS DATE) AS occurred_on, "
           "CAST(amount AS DOUBLE) AS amount FROM read_csv($p, header = true))")
    q = rfm(con, calibration_end=args.calibration_end, source=src, params={"p": args.transactions})
    try:
        df = store.run(con, q)
    except store.StoreError as exc:
        raise CLIError(str(exc)) from None
    if df["w"].sum() < 10:
        raise CLIError("fewer than 10 customers before the calibration end")
    bg, gg = fit_from_rfm(df, args.period)
    out = {"customers": int(df["w"].sum()), "period": args.period, "calibration_end": str(args.calibration_end),
           "bgnbd": {**bg.params(), "log_likelihood": bg.log_likelihood},
           "gamma_gamma": {**gg.params(), "log_likelihood": gg.log_likelihood, "customers": gg.n}}
    emit(out, args, lambda o: "\n".join([
        f"{o['customers']:,} customers, calibration to {o['calibration_end']}, period = {o['period']}",
        "BG/NBD       " + ", ".join(f"{k} = {v:.4f}" for k, v in o["bgnbd"].items()),
        "Gamma-Gamma  " + ", ".join(f"{k} = {v:.4f}" for k, v in o["gamma_gamma"].items())]))
    return 0
