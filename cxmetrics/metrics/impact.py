"""Initiative impact: difference-in-differences or interrupted time series, in units and money.

Each initiative names a target metric (``escalation_rate``, ``csat:<touchpoint>``,
``nps:<touchpoint>``, ``kpi:<kpi_id>``) and a treated group (``region=south``, ``segment=smb``
or ``all``). The metric is aggregated in DuckDB to monthly cells (group × month, with counts).

* **With a comparison group** (a treated region/segment): two-way fixed-effects
  difference-in-differences, y_gt = α_g + λ_t + δ·treated_g·post_t, weighted least squares on the
  cells with HC1 (heteroskedasticity-robust) standard errors by cell — *not* cluster-robust. With
  one treated region of four, cluster-robust inference is not available (Cameron & Miller 2015;
  MacKinnon & Webb 2017): the result says so, and shows the restricted wild cluster bootstrap
  p-value by group (Webb weights, every weight vector; :func:`cxmetrics.inference.wild_cluster_bootstrap`)
  as information, not as the test. Checks: a pre-trend test (treated × linear time in the
  pre-period, p ≥ 0.05 to pass) and an event study by quarter relative to the start.
* **Without one** (``all``): interrupted time series, y_t = β0 + β1·t + β2·post + β3·(t − t0)·post,
  weighted by each month's count, AR(1) errors by Prais–Winsten feasible GLS, HC2 standard errors
  with Bell–McCaffrey degrees of freedom (:func:`its`); β2 is the level change. Newey–West SEs
  with 3 lags, used before, covered the planted level change in about 80% of simulated demo series.

We refuse to claim an effect when the design cannot support one: fewer than 6 months before or
after the start, a failed pre-trend test, or no target metric. Money: an escalation-rate effect ×
complaints in the treated group since the start × cost_per_escalation (interval from the effect's
CI); other metrics are reported in their units and flagged "no money link yet".

References
----------
Angrist, J. D. & Pischke, J.-S. (2009), Mostly Harmless Econometrics, ch. 5 (DiD).
Cameron, A. C. & Miller, D. L. (2015), "A practitioner's guide to cluster-robust inference", JHR 50(2).
Wagner, A. K. et al. (2002), "Segmented regression analysis of interrupted time series studies
in medication use research", J. Clin. Pharm. Ther. 27(4). Cameron, A. C., Gelbach, J. B. & Miller,
D. L. (2008), REStat 90(3). MacKinnon, J. G. & Webb, M. D. (2017), J. Applied Econometrics 32(2).
Prais, S. J. & Winsten, C. B. (1954). Imbens, G. W. & Kolesár, M. (2016), REStat 98(4).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

import duckdb

from cxmetrics import store
from cxmetrics.core import lazy
from cxmetrics.core.dist import norm
from cxmetrics.core.dist import t as t_dist
from cxmetrics.core.filters import Filters
from cxmetrics.core.results import Estimate, described, estimate_from_parts
from cxmetrics.metrics import inference
from cxmetrics.store import assumptions, engines, relations, summaries

np = lazy.module("numpy")
pd = lazy.module("pandas")

MIN_PERIODS = 6
GROUP_DIMS = {"region": "c.region", "segment": "c.segment"}


@dataclass(frozen=True)
class Impact:
    """The measured result of one initiative."""

    initiative_id: str
    name: str
    track: str
    department: str
    design: str  # "difference-in-differences", "interrupted time series", "none"
    status: str  # "effect", "no significant effect", "not estimable", "no target metric"
    effect: Estimate | None
    checks: tuple[str, ...]
    explanation: str
    money: Estimate | None
    roi: float | None
    cost: float
    series: pd.DataFrame
    event_study: pd.DataFrame

    def to_json(self) -> dict:
        """The impact as JSON-able values (kept with the summaries, :func:`kept_impacts`);
        :meth:`from_json` gives it back exactly: floats are written by ``repr``, and each frame
        keeps its columns' dtypes and its index."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out.update(effect=_estimate_json(self.effect), money=_estimate_json(self.money), checks=list(self.checks),
                   series=_frame_json(self.series), event_study=_frame_json(self.event_study))
        return out

    @classmethod
    def from_json(cls, d: dict) -> Impact:
        return cls(**{**d, "effect": _estimate_from_json(d["effect"]), "money": _estimate_from_json(d["money"]),
                      "checks": tuple(d["checks"]), "series": _frame_from_json(d["series"]),
                      "event_study": _frame_from_json(d["event_study"])})


def _estimate_json(e: Estimate | None) -> dict | None:
    if e is None:
        return None
    out = {f.name: getattr(e, f.name) for f in dataclasses.fields(e)}
    out["warnings"] = list(e.warnings)
    out["queries"] = described(e.queries)
    return out


def _estimate_from_json(d: dict | None) -> Estimate | None:
    return None if d is None else estimate_from_parts(d)


def _frame_json(df: pd.DataFrame) -> dict:
    """A frame's columns (name, dtype, values: dates as ISO text, missing values as None) and its
    index when it is not 0, 1, 2, …"""
    cols = []
    for name in df.columns:
        col = df[name]
        if col.dtype.kind == "M":
            values = [None if pd.isna(v) else v.isoformat() for v in col]
        else:  # Python values; NaN, NA and None as None, which the column's dtype reads back
            values = [None if pd.isna(v) else v for v in col.tolist()]
        cols.append([name, str(col.dtype), values])
    plain = isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1
    return {"columns": cols, "index": None if plain else df.index.tolist()}


def _frame_from_json(d: dict) -> pd.DataFrame:
    data = {name: pd.Series(values, dtype=dtype) for name, dtype, values in d["columns"]}
    df = pd.DataFrame(data) if data else pd.DataFrame()
    if d["index"] is not None:
        df.index = pd.Index(d["index"])
    return df


def _parse_group(treated: str | None) -> tuple[str | None, str | None]:
    if not treated or treated.strip().lower() == "all":
        return None, None
    dim, _, value = treated.partition("=")
    dim = dim.strip()
    if dim not in GROUP_DIMS or not value:
        raise ValueError(f"treated group {treated!r} must be 'all', 'region=…' or 'segment=…'")
    return dim, value.strip()


def metric_series(con: duckdb.DuckDBPyConnection, filters: Filters, metric: str, dim: str | None) -> tuple[pd.DataFrame, store.Query]:
    """Monthly cells (grp, month, y, n) of a target metric; ``grp`` is the dimension value or 'all'."""
    grp = GROUP_DIMS[dim] if dim else "'all'"
    kind, _, arg = metric.partition(":")
    if kind == "escalation_rate":
        src = summaries.complaints(con)
        where, params = filters.where(date_col="k.opened_on", customer=src.customer, department_col="k.department",
                                      dates=False)
        sql = f"""SELECT {src.dim(grp)} AS grp, date_trunc('month', k.opened_on) AS month,
       {src.mean("CASE WHEN k.escalated THEN 100.0 ELSE 0.0 END")} AS y, {src.count()} AS n
FROM {src.source} WHERE {where}{" AND " + src.dim(grp) + " IS NOT NULL" if dim else ""} GROUP BY 1, 2 ORDER BY 1, 2"""
    elif kind in ("csat", "nps"):
        src = summaries.responses(con)
        where, params = filters.where(date_col="r.responded_on", customer=src.customer, department_col="r.department",
                                      dates=False)
        expr = "r.csat" if kind == "csat" else relations.nps_points("r.nps", "100.0")
        tp = "AND r.touchpoint = $touchpoint" if arg else ""
        sql = f"""SELECT {src.dim(grp)} AS grp, date_trunc('month', r.responded_on) AS month, {src.mean(expr)} AS y,
       {src.count()} AS n
FROM {src.source} WHERE {where} {tp} AND {expr} IS NOT NULL{" AND " + src.dim(grp) + " IS NOT NULL" if dim else ""}
GROUP BY 1, 2 ORDER BY 1, 2"""
        if arg:
            params["touchpoint"] = arg
    elif kind == "kpi":
        if dim:
            raise ValueError("KPI series are not split by customer group")
        params = {"kpi": arg}
        sql = """SELECT 'all' AS grp, date_trunc('month', o.observed_on) AS month, sum(o.s_value) / sum(o.n_value) AS y,
       CAST(sum(o.n) AS BIGINT) AS n
FROM {summary_kpi_daily} o WHERE o.kpi_id = $kpi GROUP BY 1, 2 ORDER BY 1, 2"""
    else:
        raise ValueError(f"unknown target metric {metric!r}")
    q = summaries.query(con, f"series_{kind}", sql, params)
    return store.run(con, q), q


@dataclass(frozen=True)
class _Fit:
    """A weighted least-squares fit with HC1 standard errors (arrays in the design's column order)."""

    params: np.ndarray
    bse: np.ndarray

    def p(self, j: int) -> float:
        """Two-sided normal p-value of coefficient ``j``."""
        return float(2 * norm.sf(abs(self.params[j] / self.bse[j])))

    def ci(self, j: int, alpha: float) -> tuple[float, float]:
        """Normal interval of coefficient ``j``."""
        h = float(norm.ppf(1 - alpha / 2)) * self.bse[j]
        return float(self.params[j] - h), float(self.params[j] + h)


def _wls_hc1(X: np.ndarray, y: np.ndarray, w: np.ndarray) -> _Fit:
    """Weighted least squares of ``y`` on ``X`` (weights ``w``) with HC1 (heteroskedasticity-robust)
    covariance, as statsmodels' ``WLS(y, X, weights=w).fit(cov_type="HC1")`` computes it: on the
    whitened data X̃ = √w·X, ỹ = √w·y, β = X̃⁺ỹ and V = n/(n − rank) · X̃⁺ diag(ẽ²) X̃⁺ᵀ, ẽ = ỹ − X̃β;
    normal intervals (White 1980; MacKinnon & White 1985)."""
    sw = np.sqrt(np.asarray(w, float))
    Xw = np.asarray(X, float) * sw[:, None]
    yw = np.asarray(y, float) * sw
    u, sv, vt = np.linalg.svd(Xw, full_matrices=False)
    keep = sv > 1e-15 * sv.max()  # the pseudo-inverse's cut, as statsmodels' pinv_extended
    pinv = (vt[keep].T / sv[keep]) @ u[:, keep].T
    beta = pinv @ yw
    e = yw - Xw @ beta
    n = len(yw)
    cov = n / (n - int(keep.sum())) * (pinv * e ** 2) @ pinv.T
    return _Fit(beta, np.sqrt(np.diag(cov)))


def did(cells: pd.DataFrame, treated: str, start: pd.Timestamp, alpha: float = 0.05) -> dict:
    """Two-way FE DiD on (grp, month, y, n) cells. Returns effect, se, p, pre-trend p, event study.

    Each fit is WLS (weights n) of y on group and month fixed effects plus its terms, with HC1
    (heteroskedasticity-robust, cell-level) SEs: each month × group cell is its own cluster, so
    this is not clustered by group (:func:`_wls_hc1`; the group-clustered check is the wild
    cluster bootstrap). The designs are built as arrays: the page runs this for every initiative."""
    month = pd.to_datetime(cells["month"])
    rel = ((month.dt.year - start.year) * 12 + month.dt.month - start.month).to_numpy()  # months from the start
    grp = cells["grp"].astype(str).to_numpy()
    label = month.dt.strftime("%Y-%m").to_numpy()
    y, n = cells["y"].to_numpy(float), cells["n"].to_numpy(float)
    tr = (cells["grp"] == treated).to_numpy(float)
    post = (month >= start).to_numpy()
    tp = tr * post

    def fixed(rows: np.ndarray) -> np.ndarray:
        """The fixed effects of ``rows``: an intercept and a dummy per group and per month but the first."""
        g, m = grp[rows], label[rows]
        return np.column_stack([np.ones(len(g)), *((g == v) for v in np.unique(g)[1:]),
                                *((m == v) for v in np.unique(m)[1:])]).astype(float)

    every = np.ones(len(y), bool)
    base = fixed(every)
    if not _identified(base, {"tp": tp})[0]:  # e.g. no month after the start with both observed
        raise NotIdentified(f"the effect is not identified: after the start, no month has both {treated} and "
                            "a comparison group observed")
    X = np.column_stack([base, tp])
    fit = _wls_hc1(X, y, n)
    j = X.shape[1] - 1
    pre = ~post
    pre_base, tt = fixed(pre), (tr * rel)[pre]
    pretrend_p = (_wls_hc1(np.column_stack([pre_base, tt]), y[pre], n[pre]).p(pre_base.shape[1])
                  if _identified(pre_base, {"tt": tt})[0] else float("nan"))
    # event study by quarter relative to the start (reference: the quarter before)
    q = np.clip(np.floor(rel / 3).astype(int), -6, 6)
    quarters = {f"e{k + 6}": tr * (q == k) for k in sorted(np.unique(q)) if k != -1}
    # a quarter's effect is identified only where its treated cells are not fitted by the fixed
    # effects and the other quarters (a quarter without treated months, or whose treated months have
    # no comparison month): those are left out and named, never shown as a zero with no width
    terms, unidentified = _identified(base, quarters)
    ev = _wls_hc1(np.column_stack([base, *(quarters[t] for t in terms)]), y, n)
    rows = []
    for i, t in enumerate(terms):
        lo, hi = ev.ci(base.shape[1] + i, alpha)
        rows.append({"quarter": int(t[1:]) - 6, "effect": float(ev.params[base.shape[1] + i]), "ci_low": lo, "ci_high": hi})
    es = pd.DataFrame(rows + [{"quarter": -1, "effect": 0.0, "ci_low": 0.0, "ci_high": 0.0}])
    sw = np.sqrt(n)
    wcb = inference.wild_cluster_bootstrap(X * sw[:, None], y * sw, grp, j)
    return {"effect": float(fit.params[j]), "ci": fit.ci(j, alpha), "p": fit.p(j), "se": float(fit.bse[j]),
            "pretrend_p": pretrend_p,
            "wild_cluster": wcb, "groups": int(cells["grp"].nunique()),
            "event_study": es.sort_values("quarter").reset_index(drop=True),
            "unidentified_quarters": sorted(int(t[1:]) - 6 for t in unidentified),
            "pre_periods": int(len(np.unique(label[pre]))), "post_periods": int(len(np.unique(label[post])))}


class NotIdentified(ValueError):
    """The data cannot identify the model's effect (the message says why, for the user)."""


def _identified(base: np.ndarray, terms: dict[str, np.ndarray]) -> tuple[list[str], list[str]]:
    """``terms`` (name → column) split into those that raise the rank of the design ``base`` plus
    the terms kept before them, and those that do not (not identified: all zero, or a combination of
    the fixed effects and the others)."""
    X = base
    rank = np.linalg.matrix_rank(X)
    kept, dropped = [], []
    for t, col in terms.items():
        Y = np.column_stack([X, col])
        r = np.linalg.matrix_rank(Y)
        if r > rank:
            X, rank = Y, r
            kept.append(t)
        else:
            dropped.append(t)
    return kept, dropped


#: How the DiD interval is computed (shown on the result, the page and the README).
DID_METHOD = ("two-way fixed-effects weighted least squares on month × group cells, HC1 (heteroskedasticity-robust) "
              "standard errors by cell, normal interval; not clustered by group")
#: How the ITS interval is computed (shown on the result, the page and the README).
ITS_METHOD = ("segmented regression with Prais–Winsten AR(1) errors (ρ from the residuals, Kendall bias-corrected, "
              "bounded to [0, 0.95]); HC2 standard errors with Bell–McCaffrey degrees of freedom")


def its(series: pd.DataFrame, start: pd.Timestamp, alpha: float = 0.05) -> dict:
    """Segmented regression on a monthly series (month, y[, n]) with AR(1) errors and HC2 SEs.

    y_t = β0 + β1·t + β2·post_t + β3·(t − t0)·post_t + u_t, weighted by each month's count n_t,
    u_t AR(1). The AR(1) errors are modelled by feasible GLS (Prais & Winsten 1954; ρ as in
    :func:`cxmetrics.inference.prais_winsten`); the interval uses HC2 standard errors on the transformed regression
    and Bell–McCaffrey degrees of freedom (:func:`cxmetrics.inference.hc2_bm`). On 36 months
    Newey–West SEs with 3 lags covered the planted level change in about 80% of simulated demo
    series; this interval covers it in at least 93% (``tests/test_its_coverage.py``), and still
    91–95% when the errors are AR(1) with ρ = 0.4.

    References
    ----------
    Wagner, A. K. et al. (2002), J. Clin. Pharm. Ther. 27(4). Prais, S. J. & Winsten, C. B. (1954),
    Cowles Commission Discussion Paper 383. MacKinnon, J. G. & White, H. (1985), J. Econometrics 29(3).
    Bell, R. M. & McCaffrey, D. F. (2002), Survey Methodology 28(2). Imbens, G. W. & Kolesár, M.
    (2016), "Robust standard errors in small samples: some practical advice", REStat 98(4).
    Kendall, M. G. (1954), "Note on bias in the estimation of autocorrelation", Biometrika 41(3/4).
    """
    d = series.sort_values("month").reset_index(drop=True)
    months = pd.to_datetime(d["month"])
    t = ((months.dt.year - start.year) * 12 + months.dt.month - start.month).astype(float).to_numpy()
    n = d["n"].astype(float).to_numpy() if "n" in d else np.ones(len(d))
    r = its_fit(t, d["y"].astype(float).to_numpy(), n, alpha)
    r["fitted"] = pd.Series(r["fitted"], index=d.index)
    r["counterfactual"] = pd.Series(r["counterfactual"], index=d.index)
    return r


def its_fit(t: np.ndarray, y: np.ndarray, n: np.ndarray, alpha: float = 0.05) -> dict:
    """The arithmetic of :func:`its` on arrays: months from the start ``t``, values ``y``, weights ``n``."""
    post = (t >= 0).astype(float)
    X = np.column_stack([np.ones_like(t), t, post, t * post])
    w = np.sqrt(n)
    Xs, ys, rho = inference.prais_winsten(X * w[:, None], y * w)
    out = {}
    for name, j in (("post", 2), ("time_after", 3)):
        b, se, df = inference.hc2_bm(Xs, ys, j)
        p = float(2 * t_dist.sf(abs(b) / se, df)) if se > 0 else (0.0 if b else 1.0)
        out[name] = (b, se, df, p)
    beta = np.linalg.lstsq(Xs, ys, rcond=None)[0]
    b, se, df, p = out["post"]
    q = float(t_dist.ppf(1 - alpha / 2, df))
    return {"effect": b, "ci": (b - q * se, b + q * se), "p": p, "se": se, "rho": rho, "df": df,
            "slope_change": out["time_after"][0], "slope_p": out["time_after"][3],
            "pre_periods": int((post == 0).sum()), "post_periods": int((post == 1).sum()),
            "fitted": X @ beta, "counterfactual": beta[0] + beta[1] * t}


#: Why an initiative's impact ignores the date range (shown where a range is set).
WHOLE_HISTORY = ("Each initiative is measured over its whole history, whatever the date range: its effect "
                 "compares the months before its start with the months after.")


def estimate(con: duckdb.DuckDBPyConnection, filters: Filters, row: pd.Series, *, alpha: float = 0.05) -> Impact:
    """Measure one initiative (a row of the initiatives table) over its whole history: the date
    range does not apply (:data:`WHOLE_HISTORY`): the results name the filters without it, and say so
    when one was given."""
    dated = filters.dated
    filters = filters.undated()
    base = dict(initiative_id=row["initiative_id"], name=row["name"], track=row["track"], department=row["department"],
                cost=float(row["cost"] or 0.0))
    metric = row.get("target_metric")
    if not metric or (isinstance(metric, float) and math.isnan(metric)):
        return Impact(**base, design="none", status="no target metric", effect=None, checks=(),
                      explanation="No target metric: a strategic initiative is judged by its milestones, not measured here.",
                      money=None, roi=None, series=pd.DataFrame(), event_study=pd.DataFrame())
    start = pd.Timestamp(row["started_on"])
    try:
        dim, treated = _parse_group(row.get("treated_segment"))
        cells, series_q = metric_series(con, filters, metric, dim)
    except ValueError as exc:
        return Impact(**base, design="none", status="not estimable", effect=None, checks=(), explanation=str(exc),
                      money=None, roi=None, series=pd.DataFrame(), event_study=pd.DataFrame())
    cells = cells.dropna(subset=["y"])
    months = pd.to_datetime(cells["month"])
    pre, post = months[months < start].nunique(), months[months >= start].nunique()
    design = "difference-in-differences" if dim else "interrupted time series"
    unit = {"escalation_rate": "points", "csat": "CSAT points", "nps": "NPS points"}.get(metric.split(":")[0], "KPI units")
    if pre < MIN_PERIODS or post < MIN_PERIODS or (dim and (cells["grp"] == treated).sum() == 0):
        why = (f"Only {pre} months before and {post} after the start (at least {MIN_PERIODS} each are needed)"
               if dim is None or (cells["grp"] == treated).sum() else f"No data for the treated group {treated}")
        return Impact(**base, design=design, status="not estimable", effect=None, checks=(why + ".",),
                      explanation=f"Not estimable: {why.lower()}.", money=None, roi=None, series=cells,
                      event_study=pd.DataFrame())
    checks = []
    try:
        r = did(cells, treated, start, alpha) if dim else its(cells, start, alpha)
    except (ZeroDivisionError, np.linalg.LinAlgError, NotIdentified) as exc:  # too few cells for the model
        why = str(exc) if isinstance(exc, NotIdentified) else \
            f"too few monthly cells to fit the {design} model ({type(exc).__name__})"
        return Impact(**base, design=design, status="not estimable", effect=None, checks=(why[0].upper() + why[1:] + ".",),
                      explanation=f"Not estimable: {why}.", money=None, roi=None, series=cells,
                      event_study=pd.DataFrame())
    warnings: tuple[str, ...] = ()
    if dim:
        pre_ok = r["pretrend_p"] >= 0.05
        if math.isnan(r["pretrend_p"]):
            checks.append(f"Pre-trend test not possible: before the start no two months have both {treated} and "
                          f"another {dim} observed, so parallel trends cannot be checked.")
        else:
            checks.append(f"Pre-trend test {'passed' if pre_ok else 'FAILED'}: before the start, {treated} and the "
                          f"other {dim}s moved in parallel (p = {r['pretrend_p']:.2f}{' ≥' if pre_ok else ' <'} 0.05).")
        checks.append(f"{r['pre_periods']} months before and {r['post_periods']} after; comparison: the other {dim}s.")
        if r["unidentified_quarters"]:
            checks.append("Event study: quarter(s) " + ", ".join(f"{q:+d}" for q in r["unidentified_quarters"])
                          + f" not estimated: no month there with both {treated} and another {dim} observed.")
        wcb = r["wild_cluster"]
        caveat = (f"Cluster-robust inference by {dim} is not available: one treated {dim} of {r['groups']}. The "
                  f"interval uses HC1 standard errors by month × {dim} cell, which treat months within a {dim} as "
                  f"independent. The restricted wild cluster bootstrap by {dim} ({wcb['weights']} weights, "
                  f"{wcb['how']}) gives p = {wcb['p']:.2f}, but with one treated cluster that test under-rejects "
                  "severely, so it is shown, not used (MacKinnon & Webb 2017).")
        checks.append(caveat)
        warnings = (caveat,)
        method = f"{design}: {DID_METHOD}"
        es = r["event_study"]
        series = cells
    else:
        pre_ok = True
        checks.append(f"{r['pre_periods']} months before and {r['post_periods']} after; {ITS_METHOD} "
                      f"(ρ = {r['rho']:.2f}, {r['df']:.1f} df).")
        method = f"{design}: {ITS_METHOD}"
        checks.append("No comparison group: anything else that changed at the same time would be credited to the "
                      "initiative.")
        es = pd.DataFrame()
        series = cells.assign(fitted=r["fitted"].to_numpy(), counterfactual=r["counterfactual"].to_numpy())
    eff = Estimate("effect", f"Effect on {metric}", float(r["effect"]), float(r["ci"][0]), float(r["ci"][1]),
                   n=int(cells["n"].sum()), unit=unit, alpha=alpha, p_value=float(r["p"]),
                   method=method, se=float(r["se"]), warnings=warnings + ((WHOLE_HISTORY,) if dated else ()),
                   reference=("Angrist & Pischke (2009); Cameron, Gelbach & Miller (2008); MacKinnon & Webb (2017)."
                              if dim else "Wagner et al. (2002); Prais & Winsten (1954); Bell & McCaffrey (2002); "
                              "Imbens & Kolesár (2016)."),
                   filters=filters.describe(), queries=(series_q,))
    significant = eff.p_value < alpha
    if dim and math.isnan(r["pretrend_p"]):
        status = "not estimable"
        expl = ("Parallel trends before the start cannot be checked (too few months observed in both groups), so a "
                "difference after it cannot be credited to the initiative.")
    elif not pre_ok:
        status = "not estimable"
        expl = ("The treated and comparison groups were already drifting apart before the start, so a difference "
                "after it cannot be credited to the initiative.")
    elif significant:
        status = "effect"
        expl = (f"{row['name']} changed {metric} by {eff.estimate:+.2f} {unit} ({eff.ci_text('{:.2f}')}, "
                f"p = {eff.p_value:.3f}).")
    else:
        status = "no significant effect"
        expl = (f"No significant effect on {metric}: {eff.estimate:+.2f} {unit} ({eff.ci_text('{:.2f}')}, "
                f"p = {eff.p_value:.2f}). The data are consistent with no change.")
    if dim and pre_ok:
        expl += (f" The interval is HC1 by month × {dim} cell: with one treated {dim}, cluster-robust inference is "
                 "not available.")
    money = _money(con, filters, metric, eff, cells, treated, start) if status == "effect" else None
    roi = (money.estimate - base["cost"]) / base["cost"] if money and base["cost"] > 0 else None
    return Impact(**base, design=design, status=status, effect=eff, checks=tuple(checks), explanation=expl, money=money,
                  roi=roi, series=series, event_study=es)


def _money(con, filters, metric: str, eff: Estimate, cells: pd.DataFrame, treated, start) -> Estimate | None:
    """Money to date of an effect: escalations avoided × cost_per_escalation (others: no money link)."""
    if metric != "escalation_rate":
        return None
    a = assumptions.current(con).get("cost_per_escalation")
    if a is None:
        return None
    mask = pd.to_datetime(cells["month"]) >= start
    if treated is not None:
        mask &= cells["grp"] == treated
    volume = float(cells.loc[mask, "n"].sum())
    per = -volume / 100 * a.value  # effect in points: fewer escalations (negative effect) save money
    vals = sorted([eff.estimate * per, eff.ci_low * per, eff.ci_high * per])
    return Estimate("money", "Escalation cost avoided to date", vals[1], vals[0], vals[2], n=int(volume), unit="EUR",
                    alpha=eff.alpha, se=abs(per) * eff.se if eff.se is not None else None, method=f"−effect × {volume:,.0f} complaints since the start × cost_per_escalation",
                    assumptions=assumptions.cite({"cost_per_escalation": a}), filters=filters.describe(),
                    queries=eff.queries)


def initiatives_frame(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    where, params = filters.where(department_col="i.department", dates=False, customers=False)
    return store.run(con, store.Query("initiatives", f"SELECT * FROM initiatives i WHERE {where} ORDER BY initiative_id",
                                      params))


def all_impacts(con: duckdb.DuckDBPyConnection, filters: Filters, *, initiative: str | None = None,
                alpha: float = 0.05) -> list[Impact]:
    """Every initiative's impact (or one's): the kept ones (:func:`kept_impacts`) when they answer
    ``filters`` and ``alpha``, else measured now."""
    kept = _kept(con, filters, alpha)
    if kept is not None:
        return [i for i in kept if not initiative or i.initiative_id == initiative]
    df = initiatives_frame(con, filters)
    if initiative:
        df = df[df["initiative_id"] == initiative]
    return [estimate(con, filters, r, alpha=alpha) for _, r in df.iterrows()]


#: The significance level the kept impacts are estimated at (the pages' default).
KEPT_ALPHA = 0.05


def kept_impacts(con: duckdb.DuckDBPyConnection) -> dict | None:
    """Every initiative's impact in the unfiltered view at :data:`KEPT_ALPHA`, kept in summary_fits
    (see :mod:`cxmetrics.store.summaries`). A kept fit answers only at the data version it was
    computed at, and every write that can change an impact (initiatives, answers, complaints, KPI
    observations, assumptions, customers) moves that version. A date range does not change an
    impact (:data:`WHOLE_HISTORY`), so the kept impacts answer every range of the unfiltered view.
    None without initiatives, and on the Spark engine (measured when asked there). When measuring
    fails the commit step keeps nothing and the write goes on; the pages measure live and show why."""
    if not isinstance(con, duckdb.DuckDBPyConnection):
        return None
    df = initiatives_frame(con, Filters())
    if df.empty:
        return None
    return {"alpha": KEPT_ALPHA,
            "impacts": [estimate(con, Filters(), r, alpha=KEPT_ALPHA).to_json() for _, r in df.iterrows()]}


def _kept(con: duckdb.DuckDBPyConnection, filters: Filters, alpha: float) -> list[Impact] | None:
    """The kept impacts when they answer ``filters`` (no segment, region or department narrowing;
    any date range) and ``alpha``; under a range each effect carries :data:`WHOLE_HISTORY`, as
    :func:`estimate` adds it."""
    if alpha != KEPT_ALPHA or not summaries.unfiltered(filters.undated()) or not isinstance(con, duckdb.DuckDBPyConnection):
        return None
    text = summaries.fit_text(con, "impacts")
    if text is None:
        return None
    kept = [Impact.from_json(d) for d in json.loads(text)["impacts"]]
    if filters.dated:
        kept = [dataclasses.replace(i, effect=dataclasses.replace(i.effect, warnings=i.effect.warnings + (WHOLE_HISTORY,)))
                if i.effect is not None else i for i in kept]
    return kept


SUMMARY_COLUMNS = ("initiative", "name", "track", "department", "design", "status", "effect", "ci_low", "ci_high",
                   "p_value", "unit", "money", "cost", "roi")


def summary_table(impacts: list[Impact]) -> pd.DataFrame:
    return pd.DataFrame(columns=list(SUMMARY_COLUMNS), data=[{
        "initiative": i.initiative_id, "name": i.name, "track": i.track, "department": i.department,
        "design": i.design, "status": i.status,
        "effect": i.effect.estimate if i.effect else np.nan, "ci_low": i.effect.ci_low if i.effect else np.nan,
        "ci_high": i.effect.ci_high if i.effect else np.nan, "p_value": i.effect.p_value if i.effect else np.nan,
        "unit": i.effect.unit if i.effect else "", "money": i.money.estimate if i.money else np.nan,
        "cost": i.cost, "roi": i.roi if i.roi is not None else np.nan} for i in impacts])


def portfolio(impacts: list[Impact]) -> pd.DataFrame:
    """The two-speed portfolio: count, spend and results per track (in plain Python: a handful of
    initiatives, where a pandas group-by with its per-group functions cost 9 ms per page)."""
    if not impacts:
        return summary_table(impacts)
    rows: dict[str, dict] = {}
    for i in sorted(impacts, key=lambda i: i.track):
        r = rows.setdefault(i.track, {"track": i.track, "initiatives": 0, "spend": 0.0, "with_effect": 0,
                                      "measured_no_effect": 0, "no_result_yet": 0, "money": 0.0})
        r["initiatives"] += 1
        r["spend"] += i.cost
        r["with_effect"] += i.status == "effect"
        r["measured_no_effect"] += i.status == "no significant effect"
        r["no_result_yet"] += i.status in ("no target metric", "not estimable")
        r["money"] += i.money.estimate if i.money is not None and not math.isnan(i.money.estimate) else 0.0
    g = pd.DataFrame(list(rows.values())).astype({"initiatives": "int64", "with_effect": "int64",
                                                   "measured_no_effect": "int64", "no_result_yet": "int64",
                                                   "spend": "float64", "money": "float64"})
    g["share_of_initiatives_pct"] = 100 * g["initiatives"] / g["initiatives"].sum()
    g["share_of_spend_pct"] = 100 * g["spend"] / g["spend"].sum() if g["spend"].sum() else np.nan
    return g


def describe_portfolio(p: pd.DataFrame) -> str:
    if p.empty:
        return "No initiatives registered."
    t = p.set_index("track")
    parts = []
    for track in t.index:
        r = t.loc[track]
        parts.append(f"{track.replace('_', '-')}: {r['share_of_initiatives_pct']:.0f}% of initiatives and "
                     f"{r['share_of_spend_pct']:.0f}% of spend, {int(r['with_effect'])} with a measured effect")
    return "; ".join(parts) + "."


def for_department(con: duckdb.DuckDBPyConnection, filters: Filters, department: str) -> pd.DataFrame:
    t = summary_table(all_impacts(con, filters))
    return t[t["department"] == department] if len(t) else t


def register_cli(sub, parents) -> None:
    p = sub.add_parser("impact", parents=parents, help="measured impact of CX initiatives (DiD / ITS)")
    p.add_argument("--initiative", help="one initiative id")
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    from cxmetrics.core.output import CLIError, emit, filters_from_args

    f = filters_from_args(args)
    with engines.connect_args(args) as con:  # --engine duckdb|spark, --lake
        imps = all_impacts(con, f, initiative=args.initiative, alpha=args.alpha)
    if args.initiative and not imps:
        raise CLIError(f"no initiative {args.initiative}")
    out = [{"initiative_id": i.initiative_id, "name": i.name, "track": i.track, "design": i.design, "status": i.status,
            "effect": i.effect, "checks": list(i.checks), "explanation": i.explanation, "money": i.money,
            "roi": i.roi, "cost": i.cost} for i in imps]
    note = [f"note: {WHOLE_HISTORY}"] if f.dated else []
    emit({"initiatives": out, "portfolio": portfolio(imps)}, args,
         lambda o: "\n".join([f"{x['initiative_id']} {x['name']}: {x['status']} — {x['explanation']}"
                              for x in o["initiatives"]] + note))
    return 0
