"""Is a non-contractual fit an estimate? Identification of the BG/NBD and Gamma-Gamma fits, the
calibration/holdout check on a split taken from the data, and the distributions the Customer
value page draws (issue 17 item 10).

**Identification.** A maximum-likelihood fit is only an estimate when the likelihood has a
finite, well-curved maximum. On a short window of retail data it often has none: no customer is
seen to stop buying, so the dropout probability's mean a/(a+b) runs to 0 (the BG/NBD becomes the
NBD; P(alive) is then 1 by construction, not by evidence), the gamma heterogeneity runs to
r, α → ∞ (a Poisson), and the likelihood is flat along those directions. A fit is flagged — and
no P(alive), expected purchases or CLV is shown — when any of these hold:

* the optimiser did not report convergence;
* a parameter ran off towards 0 or infinity: a BG/NBD parameter outside [1e-4, 1e5] (the fit is
  unbounded), a Gamma-Gamma log-parameter at the optimiser's bound (±10);
* a/(a+b) < 1e-4 (no evidence of dropout);
* q ≤ 1 (the Gamma-Gamma mean spend pγ/(q − 1) does not exist);
* the observed information (negative Hessian of the log-likelihood on the log scale, as in
  :mod:`cxmetrics.metrics.btyd_intervals`) is singular or not positive definite, or a parameter's
  SE on the log scale exceeds 2.5 — its 95% interval spans more than a factor of 18,000: the
  profile likelihood is flat in that direction (Rothenberg 1971, identification as a
  non-singular information matrix; Raue et al. 2009 on practical non-identifiability from flat
  profile likelihoods).

On the planted demo company the largest log-scale SE is 0.17 (8,000 customers) and 0.87 (300);
on the line-item retail fixture a/(a+b) = 2e-13 and r = 7e7.

**Holdout.** The observed span of the non-contractual customers' purchases (first purchase to the
data's last transaction date) is split: the first two thirds calibrate, the last third is held
out; BG/NBD is refitted on the calibration period (and checked as above) and its expected repeat
purchases in the holdout are compared with the actual ones by number of calibration repeats
(Fader, Hardie & Lee 2005a, Figure 3).

**Kept with the data.** What the Customer value page shows of these models (the headline with its
intervals, the distributions, the parameter tables) is computed when the data change, with each
kept fit (unfiltered, and each kept segment and region: :func:`default_fit`), and read back
unchanged while the gross margin and discount rate are those it was valued with: valuing every
RFM cell (264,110 at 1M customers) took about 0.2 s of every view of that page.

References
----------
Rothenberg, T. J. (1971), "Identification in parametric models", Econometrica 39(3).
Raue, A. et al. (2009), "Structural and practical identifiability analysis of partially observed
dynamical models by exploiting the profile likelihood", Bioinformatics 25(15).
Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005a), Marketing Science 24(2).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools

from cxmetrics import store
from cxmetrics.core import lazy
from cxmetrics.core.filters import Filters
from cxmetrics.core.results import Result, estimate_from_parts, estimate_parts, frame_from_parts, frame_parts, jsonable
from cxmetrics.metrics import btyd, btyd_intervals
from cxmetrics.store import relations, summaries

pd = lazy.module("pandas")
np = lazy.module("numpy")

#: A BG/NBD parameter outside this range has run off towards 0 or infinity (the fit is unbounded).
BGNBD_RANGE = (1e-4, 1e5)
#: The Gamma-Gamma fit's bound on each log-parameter (:func:`cxmetrics.metrics.btyd.fit_gamma_gamma`).
GG_LOG_BOUND = 10.0
#: a/(a+b) below this: no evidence of dropout.
DROPOUT_MIN = 1e-4
#: A log-scale SE above this: the likelihood is flat along that parameter.
SE_LOG_MAX = 2.5
#: The share of the observed span held out for the calibration/holdout check (the relation that
#: keeps the check's inputs computes the same split).
HOLDOUT_SHARE = relations.HOLDOUT_SHARE
#: Expected purchases and CLV are over this horizon (the CLV's own horizon, "the next 12 months").
HORIZON_WEEKS = 52.0


def _g(v: float) -> str:
    return f"{v:.3g}"


def _information(iv: btyd_intervals.ParamIntervals) -> list[str]:
    """Reasons from the observed information: singular, or flat along one parameter."""
    if not np.all(np.isfinite(iv.cov_log)):
        return ["the likelihood is flat at the fit (its observed information is singular or not positive "
                "definite)"]
    sl = np.sqrt(np.diag(iv.cov_log))
    return [f"the likelihood is nearly flat in {n} (SE of log {n} = {s:.1f}; its 95% interval spans a factor of "
            f"{np.exp(2 * 1.96 * s):,.0f})" for n, s in zip(iv.names, sl, strict=True) if s > SE_LOG_MAX]


def identify_bgnbd(fit: btyd.BGNBDFit, x, t_x, T, w=None, iv=None) -> tuple[str, ...]:
    """Why a BG/NBD fit on (x, t_x, T, w) is not identified (empty when it is).

    Examples
    --------
    A base where everyone bought again on the last day shows no dropout: a/(a+b) → 0.

    >>> x = np.array([2.0, 3.0, 2.0, 3.0] * 20); T = np.full(80, 40.0)
    >>> fit = btyd.fit_bgnbd(x, T, T)
    >>> any("a/(a+b)" in r for r in identify_bgnbd(fit, x, T, T))
    True
    """
    out = [] if fit.converged else ["the optimiser did not converge"]
    lo, hi = BGNBD_RANGE
    for name, v in fit.params().items():
        if not np.isfinite(v) or v < lo or v > hi:
            out.append(f"{name} = {_g(v)} ran off towards {'0' if v < lo else 'infinity'} (no finite maximum)")
    share = fit.a / (fit.a + fit.b)
    if not share >= DROPOUT_MIN:
        out.append(f"a/(a+b) = {_g(share)} → 0: no customer is seen to stop buying in this window, so P(alive) would "
                   "be 1 by construction, not by evidence")
    if not out:  # the information is only meaningful at an interior maximum (iv: its intervals, when at hand)
        out += _information(iv() if iv else btyd_intervals.bgnbd_intervals(fit, x, t_x, T, w))
    return tuple(out)


def identify_gamma_gamma(fit: btyd.GammaGammaFit, x, m, w=None, iv=None) -> tuple[str, ...]:
    """Why a Gamma-Gamma fit on repeat customers' (x, m, w) is not identified (empty when it is)."""
    out = [] if fit.converged else ["the optimiser did not converge"]
    for name, v in fit.params().items():
        if not (np.isfinite(v) and v > 0) or abs(np.log(v)) >= GG_LOG_BOUND - 0.05:
            out.append(f"{name} = {_g(v)} is at the optimiser's bound (no finite maximum)")
    if not fit.q > 1:
        out.append(f"q = {_g(fit.q)} ≤ 1: the mean spend pγ/(q − 1) does not exist")
    if not out:
        out += _information(iv() if iv else btyd_intervals.gamma_gamma_intervals(fit, x, m, w))
    return tuple(out)


def identify(res: Result, intervals=None) -> dict[str, tuple[str, ...]]:
    """The reasons (by model) why :func:`cxmetrics.metrics.btyd.clv_non_contractual`'s fits are not
    identified, checked on the same (sampled) cells the fit used; empty tuples when they are.
    ``intervals``: a function returning :func:`cxmetrics.metrics.btyd_intervals.fit_intervals` of
    ``res`` (called only where the checks need the information, as they would compute it)."""
    iv = (lambda: intervals()[0], lambda: intervals()[1]) if intervals else (None, None)
    cells = btyd.fit_sample(res.table[["x", "t_x_days", "T_days", "m", "w"]])
    b, g = res.extra["bgnbd"], res.extra["gamma_gamma"]
    nan = float("nan")
    bg = btyd.BGNBDFit(b["r"], b["alpha"], b["a"], b["b"], nan, 0, bool(b.get("converged", True)))
    gg = btyd.GammaGammaFit(g["p"], g["q"], g["gamma"], nan, 0, bool(g.get("converged", True)))
    rep = cells[cells["x"] > 0]
    return {"bgnbd": identify_bgnbd(bg, cells["x"], cells["t_x_days"] / 7, cells["T_days"] / 7, cells["w"], iv[0]),
            "gamma_gamma": identify_gamma_gamma(gg, rep["x"], rep["m"], rep["w"], iv[1])}


def not_identified_text(reasons: dict[str, tuple[str, ...]], what: str) -> str:
    """One sentence naming every reason, by model."""
    names = {"bgnbd": "BG/NBD", "gamma_gamma": "Gamma-Gamma"}
    parts = [f"{names[k]}: {'; '.join(v)}." for k, v in reasons.items() if v]
    return (f"The model's parameters are not identified by this data, so {what}. " + " ".join(parts) +
            " A longer window of transactions (more customers seen to buy again, or to stop) is needed.")


# ----------------------------------------------------------------------------- distributions


def histogram(values, weights, *, bins: int = 20, lo: float = 0.0, hi: float | None = None) -> pd.DataFrame:
    """Customers per equal-width bin of ``values`` (one row per cell, ``weights`` customers each)
    from ``lo`` to ``hi`` (default: the weighted 99th percentile); the last bin also holds
    everything above ``hi`` (``open_top``).

    >>> histogram([0.1, 0.2, 0.9], [1, 2, 3], bins=2, hi=1.0)[["bin_low", "bin_high", "customers"]].values.tolist()
    [[0.0, 0.5, 3.0], [0.5, 1.0, 3.0]]
    """
    v, w = np.asarray(values, float), np.asarray(weights, float)
    ok = np.isfinite(v) & (w > 0)
    v, w = v[ok], w[ok]
    if hi is None:
        hi = weighted_quantile(v, w, 0.99) if len(v) else 1.0
    hi = max(hi, lo + 1e-9)
    edges = np.linspace(lo, hi, bins + 1)
    idx = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, bins - 1)
    counts = np.bincount(idx, weights=w, minlength=bins)
    return pd.DataFrame({"bin_low": edges[:-1], "bin_high": edges[1:], "customers": counts,
                         "share": counts / counts.sum() if counts.sum() else counts,
                         "open_top": [False] * (bins - 1) + [bool((v > hi).any())]})


def weighted_quantile(v: np.ndarray, w: np.ndarray, q: float) -> float:
    """The smallest value whose cumulative weight (values in ascending order) reaches ``q`` of the
    total. Only the values at or above an unweighted quantile below it are sorted when the weight
    under that cut is short of ``q`` (then the answer is among them): at 260,000 cells, a
    partition and a sort of a few percent instead of sorting them all.

    >>> weighted_quantile(np.array([3., 1., 2.]), np.array([1., 1., 8.]), 0.5)
    2.0
    """
    n = len(v)
    k = int(n * max(0.0, q - 0.05))
    if n > 1000 and k > 0:
        cut = np.partition(v, k)[k]
        below = v < cut
        if w[below].sum() < q * w.sum():
            v, w, base = v[~below], w[~below], w[below].sum()
            order = np.argsort(v, kind="stable")
            cum = base + np.cumsum(w[order])
            return float(v[order][np.searchsorted(cum, q * (base + w.sum()))])
    order = np.argsort(v, kind="stable")
    cum = np.cumsum(w[order])
    return float(v[order][np.searchsorted(cum, q * cum[-1])])


def distributions(table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """P(alive), expected purchases and CLV across customers (the cells' ``w`` customers each)."""
    w = table["w"]
    return {"p_alive": histogram(table["p_alive"], w, hi=1.0),
            "expected_purchases": histogram(table["expected_purchases"], w),
            "clv": histogram(table["clv"], w, lo=float(min(0.0, table["clv"].min())))}


# ----------------------------------------------------------------------------- holdout


def _span(con) -> tuple[dt.date | None, dt.date | None]:
    """First purchase of a non-contractual customer, and the data's last transaction date."""
    row = store.run(con, store.Query("btyd_span", """
SELECT (SELECT min(t.occurred_on) FROM transactions t JOIN customers c USING (customer_id)
        WHERE c.contract = 'non_contractual') AS first,
       (SELECT max(occurred_on) FROM transactions) AS last""")).iloc[0]
    as_date = lambda v: None if pd.isna(v) else pd.Timestamp(v).date()  # noqa: E731
    return as_date(row["first"]), as_date(row["last"])


def holdout_split(con) -> tuple[dt.date, dt.date, dt.date] | None:
    """(first purchase, calibration end, holdout end = the data's last transaction date): the last
    third of the observed span is held out. None without non-contractual purchases. Read from the
    stored check inputs (:data:`cxmetrics.store.relations.RFM_HOLDOUT`, which keep the same split)
    when they are current and hold a customer."""
    kept = btyd.kept_holdout_split(con)
    if kept is not None:
        return kept
    first, last = _span(con)
    if first is None or last is None or last <= first:
        return None
    cal = first + dt.timedelta(days=int((last - first).days * (1 - HOLDOUT_SHARE)))
    return first, cal, last


LABEL = "BG/NBD calibration/holdout check"


def holdout(con, filters: Filters) -> Result:
    """Predicted vs actual repeat purchases in the held-out last third of the data, by number of
    repeat purchases in the calibration period (``x``, 7 = seven or more).

    The check covers the whole observed span, so a date range does not apply to it (its filters say
    so). Narrowed by nothing else, or to one segment or one region, it is the one kept with the data
    (summary fit ``btyd_holdout``, :func:`default_holdout`): the same figures, without refitting on
    a page load."""
    f = filters.undated()
    parts = summaries.kept_view(con, "btyd_holdout", f)
    return _holdout_result(parts if parts is not None else holdout_parts(con, f), f)


def default_holdout(con) -> dict:
    """The unfiltered holdout check as kept in summary_fits (JSON), and under ``by`` the check of
    each view of one segment or one region whose fit is kept (:func:`cxmetrics.metrics.btyd.kept_values`)."""
    out = jsonable(holdout_parts(con, Filters()))
    out["by"] = {dim: {v: jsonable(holdout_parts(con, btyd.narrowed_to(dim, v))) for v in values}
                 for dim, values in btyd.kept_values(con).items()}
    return out


def _holdout_result(parts: dict, filters: Filters) -> Result:
    rows = parts.get("rows")
    return Result("btyd_holdout", LABEL, pd.DataFrame(rows) if rows else pd.DataFrame(), method=parts.get("method", ""),
                  reference=parts.get("reference", ""), filters=filters.describe(),
                  warnings=tuple(parts.get("warnings", ())), extra=parts.get("extra", {}),
                  queries=tuple(store.Query(n, sql, p) for n, sql, p in parts.get("queries", ())))


def holdout_parts(con, filters: Filters) -> dict:
    """What :func:`holdout` shows, as plain values: ``rows`` (column → list), ``method``,
    ``reference``, ``warnings``, ``extra`` and ``queries`` (name, SQL, parameters: those the split
    and the cells ran)."""
    with store.recorded() as ran:
        out = _holdout_parts(con, filters)
    return {**out, "queries": [[q.name, q.sql, jsonable(q.params)] for q in store.distinct(ran)]}


def _holdout_parts(con, filters: Filters) -> dict:
    split = holdout_split(con)
    if split is None:
        return {"warnings": ["No purchases of non-contractual customers to split into calibration and holdout."]}
    first, cal, last = split
    stated = (f"calibration {first} to {cal} (the first two thirds of the observed span), holdout {cal} to {last} "
              "(the last third, ending at the data's last transaction date)")
    if (cal - first).days < 56 or (last - cal).days < 28:
        return {"warnings": [f"The data span {first} to {last} is too short to hold out a third of it "
                             "(at least 8 weeks of calibration and 4 of holdout are needed)."]}
    df, hold = btyd.holdout_cells(con, filters, calibration_end=cal, holdout_end=last)
    if df.empty or df["w"].sum() < 50 or (df["x"] > 0).sum() < 5:
        return {"warnings": [f"Too few non-contractual customers before {cal} to fit the calibration period."]}
    fc = btyd.fit_sample(df)
    bg = btyd.fit_bgnbd(fc["x"], fc["t_x_days"] / 7, fc["T_days"] / 7, fc["w"])
    why = identify_bgnbd(bg, fc["x"], fc["t_x_days"] / 7, fc["T_days"] / 7, fc["w"])
    if why:
        return {"warnings": [not_identified_text({"bgnbd": why}, "no holdout prediction is shown") +
                             f" Split: {stated}."],
                "extra": {"split": [str(first), str(cal), str(last)], "not_identified": {"bgnbd": why}}}
    weeks = (last - cal).days / 7
    t = btyd.holdout_predicted(bg, df, hold, weeks)
    t = t.assign(calibration_repeats=[f"{int(x)}+" if x >= 7 else str(int(x)) for x in t["x"]])
    t = t.assign(actual_per_customer=t["actual"] / t["customers"], predicted_per_customer=t["predicted"] / t["customers"])
    t = t[["calibration_repeats", "x", "customers", "actual", "predicted", "actual_per_customer",
           "predicted_per_customer"]]
    actual, pred = float(t["actual"].sum()), float(t["predicted"].sum())
    return {"rows": {c: jsonable(t[c].tolist()) for c in t.columns},
            "method": (f"BG/NBD refitted on the {stated}; expected repeat purchases over the {weeks:.0f}-week "
                       "holdout (eq. 10) summed over each calibration-frequency group, against the distinct "
                       "purchase days actually seen."),
            "reference": "Fader, Hardie & Lee (2005a), Figure 3 (conditional expectations in a holdout).",
            "extra": {"split": [str(first), str(cal), str(last)], "holdout_weeks": weeks, "stated": stated,
                      "actual_total": actual, "predicted_total": pred,
                      "bgnbd": jsonable(bg.params() | {"ll": bg.log_likelihood})}}


# ----------------------------------------------------------------------------- the page's section


def non_contractual_value(con, filters: Filters, *, alpha: float = 0.05) -> Result:
    """BG/NBD + Gamma-Gamma for non-contractual customers, as the Customer value page shows it:
    identified fits with intervals (:func:`cxmetrics.metrics.btyd_intervals.with_intervals`), the
    P(alive), expected-purchase and CLV distributions and the holdout check (``extra``); the table
    holds the headline estimates, one row each.

    A BG/NBD fit that is not identified gives an empty table, no headline and the reason as the
    first warning. A Gamma-Gamma fit that is not identified withholds the CLV (its headline, column,
    distribution and parameter table) with the reason first; P(alive) and expected purchases, which
    need only BG/NBD, are shown.

    Unfiltered, or narrowed to one segment or one region (any date range: the RFM cells take none),
    the section is the one kept with that view's fit (:func:`default_fit`) while the assumptions it
    was valued with are the current ones: nothing is valued per cell on the page."""
    res = _kept_section(con, filters, alpha)
    if res is None:
        res = btyd.clv_non_contractual(con, filters, horizon_weeks=HORIZON_WEEKS)
        if res.table.empty:
            return res
        res = _from_parts(_parts(*_section(res, btyd.kept_fit(con, filters), alpha)), described=res.filters)
    return dataclasses.replace(res, extra={**res.extra, "holdout": holdout(con, filters)})


def _section(res: Result, kept: dict | None, alpha: float) -> tuple[Result, int]:
    """The page's section from :func:`cxmetrics.metrics.btyd.clv_non_contractual`'s result (its
    fits valued on every RFM cell) and the view's kept fit (for the intervals' Hessians, else
    computed once, where first needed), without the holdout check; and where ``res``'s own
    warnings start among the section's (after a reason the fits are not identified)."""
    intervals = functools.cache(lambda: btyd_intervals.kept_intervals(kept, res) or btyd_intervals.fit_intervals(res))
    reasons = identify(res, intervals)
    if reasons["bgnbd"]:
        return dataclasses.replace(
            res, table=_headline_table(()), headline=(),
            warnings=(not_identified_text(reasons, "no P(alive), expected purchases or CLV is shown"),
                      *res.warnings),
            extra={"tables": res.extra["tables"], "not_identified": reasons,
                   "customers": res.extra["summary"]["customers"],
                   "calibration_end": res.extra["summary"]["calibration_end"]}), 1
    spend_ok = not reasons["gamma_gamma"]
    out = btyd_intervals.with_intervals(res, alpha=alpha, gamma_gamma_fixed=not spend_ok, intervals=intervals())
    t = out.table
    s = dict(out.extra["summary"])
    s["mean_expected_purchases"] = float((t["expected_purchases"] * t["w"]).sum() / t["w"].sum())
    s["total_expected_purchases"] = float((t["expected_purchases"] * t["w"]).sum())
    s["horizon_weeks"] = HORIZON_WEEKS
    extra = {**out.extra, "summary": s, "distributions": distributions(t), "not_identified": reasons}
    if spend_ok:
        return dataclasses.replace(out, table=_headline_table(out.headline), extra=extra), 0
    s["mean_clv"] = None
    extra["distributions"] = {k: v for k, v in extra["distributions"].items() if k != "clv"}
    for k in ("gamma_gamma", "gamma_gamma_params"):
        extra.pop(k, None)
    headline = tuple(e for e in out.headline if e.name != "btyd_mean_clv")
    return dataclasses.replace(
        out, table=_headline_table(headline), headline=headline,
        warnings=(not_identified_text(reasons, "no CLV is shown (P(alive) and expected purchases need only "
                                               "BG/NBD, which is identified)"), *out.warnings),
        extra=extra), 1


_HEADLINE_COLUMNS = ("name", "label", "estimate", "ci_low", "ci_high", "n", "small_sample")


def _headline_table(headline) -> pd.DataFrame:
    """The section's table: one row per headline estimate (none when nothing is shown)."""
    return pd.DataFrame([{"name": e.name, "label": e.label, "estimate": e.estimate, "ci_low": e.ci_low,
                          "ci_high": e.ci_high, "n": e.n, "small_sample": e.small_sample} for e in headline],
                        columns=list(_HEADLINE_COLUMNS))


# the section as plain values (kept in summary_fits with the view's fit), and back: the page's
# live path goes through the same round trip, so a kept section and a live one are the same objects
_FRAMES = ("bgnbd_params", "gamma_gamma_params")


def _parts(res: Result, at: int) -> dict:
    extra = dict(res.extra)
    out = {"name": res.name, "label": res.label, "method": res.method, "reference": res.reference, "alpha": res.alpha, "assumptions": jsonable(res.assumptions),
           "warnings": list(res.warnings), "at": at, "headline": [estimate_parts(e) for e in res.headline],
           "queries": [[q.name, q.sql, jsonable(q.params)] for q in res.queries],
           "frames": {k: frame_parts(extra.pop(k)) for k in _FRAMES if k in extra},
           "distributions": {k: frame_parts(v) for k, v in extra.pop("distributions", {}).items()},
           "not_identified": {k: list(v) for k, v in extra.pop("not_identified").items()},
           "tables": list(extra.pop("tables"))}
    out["extra"] = jsonable(extra)  # fits, summary, assumptions used: plain values already
    return out


def _from_parts(parts: dict, more_warnings: tuple[str, ...] = (), *, described: str) -> Result:
    """The section from :func:`_parts`, for the view ``described`` (its filters in words, on the
    result and its estimates); ``more_warnings`` go where the valuation's own went."""
    extra = {**parts["extra"], "tables": tuple(parts["tables"]),
             "not_identified": {k: tuple(v) for k, v in parts["not_identified"].items()},
             **{k: frame_from_parts(v) for k, v in parts["frames"].items()}}
    if parts["distributions"]:
        extra["distributions"] = {k: frame_from_parts(v) for k, v in parts["distributions"].items()}
    headline = tuple(estimate_from_parts(e, filters=described) for e in parts["headline"])
    w, at = parts["warnings"], parts["at"]
    return Result(parts["name"], parts["label"], _headline_table(headline), method=parts["method"],
                  reference=parts["reference"], filters=described, alpha=parts["alpha"], headline=headline,
                  assumptions=parts["assumptions"], warnings=tuple(w[:at]) + more_warnings + tuple(w[at:]),
                  queries=tuple(store.Query(n, sql, p) for n, sql, p in parts["queries"]), extra=extra)


def default_fit(con) -> dict | None:
    """The kept BTYD fits (:func:`cxmetrics.metrics.btyd.default_fit`), each with the log-scale
    covariances of both models' observed-information intervals
    (:func:`cxmetrics.metrics.btyd_intervals.keep_cov`) and the Customer value page's section of
    its view valued with them (``section``: :func:`_section` as plain values, without the
    valuation's own notes, which depend on the date range and the stub customers and are added
    where it is read); a section that cannot be computed is left out (the page values live)."""
    def extra(doc: dict, cells: pd.DataFrame, q: store.Query, filters: Filters) -> None:
        btyd_intervals.keep_cov(doc, cells)
        bg, gg = btyd.BGNBDFit(*doc["bgnbd"]), btyd.GammaGammaFit(*doc["gamma_gamma"])
        try:
            with np.errstate(all="ignore"):
                res = btyd.valued(con, cells, q, doc["cal_end"], bg, gg, filters, horizon_weeks=HORIZON_WEEKS)
                doc["section"] = _parts(*_section(res, doc, KEPT_ALPHA))
        except (ArithmeticError, ValueError, np.linalg.LinAlgError):
            return

    return btyd.default_fit(con, extra=extra)


#: The level the kept sections' intervals are at (the page's default).
KEPT_ALPHA = 0.05


def _kept_section(con, filters: Filters, alpha: float) -> Result | None:
    """The kept section of this view (:func:`default_fit`) with the valuation's notes for
    ``filters`` (the whole-history note under a date range, the stub customers), when it answers:
    the view's fit is kept at this calibration end, ``alpha`` is the kept one and the gross margin
    and discount rate it was valued with are the current ones (a write of assumptions alone keeps
    the fits, not their money). Else None."""
    if alpha != KEPT_ALPHA:
        return None
    doc = btyd.kept_fit(con, filters)
    if not doc or "section" not in doc:
        return None
    from cxmetrics.store import assumptions, stubs

    parts = doc["section"]
    used = assumptions.current(con)
    if (str(btyd.last_transaction(con)) != doc["cal_end"]
            or parts["assumptions"] != jsonable(assumptions.cite({k: used[k] for k in ("gross_margin", "discount_rate")}))):
        return None
    notes = (btyd.WHOLE_HISTORY,) if filters.dated else ()
    notes += tuple(w for w in stubs.exclusion_warnings(con, stubs_matter=True, responses=False) if w not in notes)
    return _from_parts(parts, notes, described=filters.undated().describe())
