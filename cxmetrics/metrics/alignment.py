"""Departmental KPI alignment: internal targets against what customers actually tolerate.

For a KPI measured per customer event and linked to that event's survey response
(``kpi_observations.response_id``), we estimate the **customer expectation threshold** τ: the
KPI value beyond which the probability of a detractor rises. Model (a capped "broken-stick"):

    P(detractor | x) = min(1, a + b · max(0, s·(x − τ))),   s = +1 if lower is better, −1 otherwise

fitted by binomial maximum likelihood on counts per KPI value aggregated in DuckDB (exactly the
individual-level fit, so it scales to millions of events), τ by profile likelihood over a grid with
a likelihood-ratio interval {τ : 2·(ℓ(τ̂) − ℓ(τ)) ≤ χ²₁,1−α} (:mod:`cxmetrics.threshold`). The hinge
on the probability scale says exactly what a department needs — "up to τ customers do not mind;
beyond it each unit adds b detractors per event" — and the cap at 1 lets the line bend where every
event is a detractor: the uncapped least-squares line was dragged by the saturated events, and its
interval covered the call-wait threshold in about half of simulated samples of 5,000 events
(issue 18 item 10; ``tests/test_threshold.py`` checks ≥ 90% at 1,000 and 5,000). A logistic hinge
was tried first and put the break early when the rise is steep. Evidence of a relation is a
likelihood-ratio test of the hinge against a constant share with 2 degrees of freedom
(conservative, since τ is not identified under the null: Davies 1987).

The **elasticity** is the change in NPS points per KPI unit beyond τ (weighted least squares of
each value's NPS on the hinge term). **Status**: *aligned* when the target is at or inside the
threshold's interval, *misaligned* when it lies beyond it, *no evidence* when the relation is not
significant or there are too few linked observations (the reason is given).

**Money at risk** (:mod:`cxmetrics.alignment_money`): the extra detractors expected beyond the
threshold in the last 12 months, Σ n·(min(1, a + b·h) − a), × the CLV gap between non-detractors
and detractors *within segment and tenure band*, standardised to the detractors' mix — the
lifetime value over the finance horizon (5 years by default) of one year's extra detractors, with
a Monte Carlo interval; the crude (pooled) figure is shown beside it.

References
----------
Muggeo, V. M. R. (2003), "Estimating regression models with unknown break-points", Statistics in
Medicine 22(19). Davies, R. B. (1987), "Hypothesis testing when a nuisance parameter is present
only under the alternative", Biometrika 74(1). Venzon, D. J. & Moolgavkar, S. H. (1988),
profile-likelihood intervals, Applied Statistics 37(1).
"""

from __future__ import annotations

import json
import math

import duckdb

from cxmetrics import store
from cxmetrics.core import lazy
from cxmetrics.core.dist import norm
from cxmetrics.core.filters import Filters
from cxmetrics.core.results import Estimate, Result
from cxmetrics.metrics.alignment_money import clv_gap, money_at_risk
from cxmetrics.metrics.threshold import MODEL, Threshold, fit_threshold  # noqa: F401 (re-exported)
from cxmetrics.store import engines, relations, summaries

np = lazy.module("numpy")
pd = lazy.module("pandas")

MIN_LINKED = 200
THRESHOLD_METHOD = MODEL
MONEY_METHOD = ("Money at risk = extra detractors beyond the threshold in the last 12 months × the CLV gap "
                "non-detractor − detractor within segment × tenure band, standardised to the detractors' mix, the crude "
                "(pooled) gap beside it; Monte Carlo interval over the threshold model and the gap")


_LINKED = f"""
SELECT o.kpi_id, o.x, CAST(sum(o.n) AS BIGINT) AS n,
       CAST(coalesce(sum(o.n) FILTER (WHERE {relations.detractor("o.nps")}), 0) AS BIGINT) AS detractors,
       CAST(coalesce(sum(o.n) FILTER (WHERE {relations.promoter("o.nps")}), 0) AS BIGINT) AS promoters,
       CAST(sum(o.n_last_year) AS BIGINT) AS n_last_year
FROM {{summary_kpi_linked_alltime}} o
WHERE %s
GROUP BY 1, 2 ORDER BY 1, 2
"""

_MONTHLY_NPS = """
SELECT date_trunc('month', r.responded_on) AS m, 100.0 * ({promoters} - {detractors}) AS nps, {n} AS n
FROM {source}
WHERE r.nps IS NOT NULL AND {where} GROUP BY 1
"""


def kpis_frame(con: duckdb.DuckDBPyConnection, filters: Filters, department: str | None = None) -> pd.DataFrame:
    where, params = filters.where(department_col="k.department", dates=False, customers=False)
    extra = ""
    if department:
        extra = " AND k.department = $dept"
        params["dept"] = department
    return store.run(con, store.Query("kpis", f"SELECT k.*, d.leader, d.ambassador FROM kpis k "
                                              f"LEFT JOIN departments d USING (department) WHERE {where}{extra} "
                                              "ORDER BY k.department, k.kpi_id", params))


def _linked(con: duckdb.DuckDBPyConnection, filters: Filters) -> tuple[store.Query, pd.DataFrame]:
    """Every KPI's linked curve (observations per KPI value: events, detractors, promoters, events in
    the last 12 months) from one query (one pass for the page), over the linked-observation summary
    when it is current."""
    where, params = summaries.where(summaries.KPI_ALLTIME_TABLE, filters, customer="o",
                                    department_col="o.department", dates=False)
    q = summaries.query(con, "kpi_linked", _LINKED % where, params, filters=filters)
    return q, store.run(con, q)


#: The alpha the kept threshold fits are fitted at (the pages' default).
KEPT_ALPHA = 0.05


def fit_key(d: pd.DataFrame, lower_is_better: bool, alpha: float) -> str:
    """What a threshold fit is a function of: the curve's KPI values, events and detractors (in the
    query's order), the direction and alpha (the grid is the fit's default)."""
    import hashlib

    h = hashlib.sha256(f"{bool(lower_is_better)}:{float(alpha)!r}".encode())
    for col in ("x", "n", "detractors"):
        h.update(np.ascontiguousarray(d[col].to_numpy(float)).tobytes())
    return h.hexdigest()[:32]


def kept_thresholds(con: duckdb.DuckDBPyConnection) -> dict | None:
    """The threshold fits of the unfiltered view's curves, kept in summary_fits (see
    :mod:`cxmetrics.store.summaries`): each KPI's at alpha 0.05 in its direction, by :func:`fit_key`.
    A page uses a kept fit only for the very curve it was fitted on, so a kept fit is never stale:
    another curve (new data, another direction, a filter) is fitted when the page asks."""
    kpis = kpis_frame(con, Filters())
    if not len(kpis):
        return None
    _, curves = _linked(con, Filters())
    out = {}
    for kpi_id, direction in zip(kpis["kpi_id"], kpis["direction"], strict=True):
        d = curves[curves["kpi_id"] == kpi_id].reset_index(drop=True)
        lower = direction == "lower_is_better"
        if d["x"].nunique() >= 4:
            th = fit_threshold(d["x"], d["n"], d["detractors"], lower_is_better=lower, alpha=KEPT_ALPHA)
            out[fit_key(d, lower, KEPT_ALPHA)] = th.to_json() if th is not None else None
    return {"fits": out} if out else None


def _threshold(con: duckdb.DuckDBPyConnection, filters: Filters, d: pd.DataFrame, lower: bool,
               alpha: float) -> Threshold | None:
    """The threshold fit of curve ``d``: the kept one when it was fitted on this very curve (the
    unfiltered view's, at the kept alpha), else fitted now."""
    if summaries.unfiltered(filters) and alpha == KEPT_ALPHA:
        text = summaries.fit_text(con, "kpi_thresholds")
        if text is not None:
            kept = store.page_memo(("alignment.kept_thresholds", id(con), text), lambda: json.loads(text)["fits"])
            key = fit_key(d, lower, alpha)
            if key in kept:
                return Threshold.from_json(kept[key]) if kept[key] is not None else None
    return fit_threshold(d["x"], d["n"], d["detractors"], lower_is_better=lower, alpha=alpha)


def assess(con: duckdb.DuckDBPyConnection, filters: Filters, kpi: pd.Series, *, gap: Estimate | None,
           horizon_years: float = 5.0, alpha: float = 0.05) -> dict:
    """Threshold, elasticity, status and money at risk for one KPI (a row of kpis_frame)."""
    lower = kpi["direction"] == "lower_is_better"
    q, d = _linked(con, filters)
    d = d[d["kpi_id"] == kpi["kpi_id"]].drop(columns="kpi_id").reset_index(drop=True)
    out = {"kpi_id": kpi["kpi_id"], "department": kpi["department"], "kpi": kpi["name"], "unit": kpi["unit"],
           "direction": kpi["direction"], "target": kpi["target"], "linked_observations": int(d["n"].sum()),
           "threshold": np.nan, "threshold_ci_low": np.nan, "threshold_ci_high": np.nan, "elasticity": np.nan,
           "elasticity_ci_low": np.nan, "elasticity_ci_high": np.nan, "share_beyond_pct": np.nan,
           "customers_beyond_per_year": np.nan, "extra_detractors_per_year": np.nan,
           "extra_detractors_ci_low": np.nan, "extra_detractors_ci_high": np.nan, "money_at_risk": np.nan,
           "money_at_risk_ci_low": np.nan, "money_at_risk_ci_high": np.nan, "money_at_risk_crude": np.nan,
           "money_at_risk_crude_ci_low": np.nan, "money_at_risk_crude_ci_high": np.nan, "status": "no evidence", "reason": "",
           "suggestion": "", "_curve": d, "_query": (q,)}
    if d.empty:
        src = summaries.responses(con)
        wherep, paramsp = filters.where(date_col="r.responded_on", customer=src.customer, department_col="r.department")
        kpi_months = ("SELECT date_trunc('month', observed_on) AS m, sum(s_value) / sum(n_value) AS kpi "
                      "FROM {summary_kpi_daily} WHERE kpi_id = $kpi AND NOT customer_level GROUP BY 1")
        # the months' NPS (one query for every KPI of the page) joined to this KPI's monthly mean
        qs = store.Query("nps_by_month", _MONTHLY_NPS.format(
            where=wherep, source=src.source, n=src.count(), promoters=src.mean(f"CASE WHEN {relations.promoter('r.nps')} THEN 1.0 ELSE 0 END"),
            detractors=src.mean(f"CASE WHEN {relations.detractor('r.nps')} THEN 1.0 ELSE 0 END")), paramsp)
        qp = summaries.query(con, "kpi_period", kpi_months, {"kpi": kpi["kpi_id"]})
        p = (store.run(con, qp).merge(store.run(con, qs), on="m").rename(columns={"m": "month"})
             .sort_values("month").reset_index(drop=True)[["month", "kpi", "nps", "n"]])
        out["_curve"], out["_query"] = p, (qp, qs)
        if len(p) >= 6 and p["kpi"].std() > 0:
            from cxmetrics.metrics.drivers import correlation_ci

            x, y = p["kpi"], p["nps"]
            r, lo, hi = correlation_ci(len(p), x.sum(), y.sum(), (x * x).sum(), (y * y).sum(), (x * y).sum(), alpha)
            sig = not (lo <= 0 <= hi)
            out["reason"] = (f"Period-level KPI only: over {len(p)} months its correlation with NPS is r = {r:.2f} "
                             f"(95% CI {lo:.2f} to {hi:.2f}){', a relation but no customer-level threshold' if sig else ', no significant relation'}.")
        else:
            out["reason"] = "No linked customer-level observations and too few months to relate to NPS."
        return out
    if out["linked_observations"] < max(MIN_LINKED, filters.min_n):
        out["reason"] = f"Too few linked observations ({out['linked_observations']}; at least {MIN_LINKED} needed)."
        return out
    if d["x"].nunique() < 4:
        out["reason"] = "The KPI barely varies, so its effect on customers cannot be seen."
        return out
    th = _threshold(con, filters, d, lower, alpha)
    if th is None or th.lr_p >= alpha or th.slope - norm.ppf(1 - alpha / 2) * th.slope_se <= 0:
        out["reason"] = ("No significant relation between this KPI and detractors "
                         f"(likelihood-ratio p = {th.lr_p:.2f})." if th else "The model could not be fitted.")
        return out
    s = 1.0 if lower else -1.0
    h = np.maximum(0, s * (d["x"] - th.tau))
    nps_bin = 100 * (d["promoters"] - d["detractors"]) / d["n"]
    W = d["n"].to_numpy(float)
    X = np.column_stack([np.ones_like(h), h])
    XtWX = X.T @ (X * W[:, None])
    beta = np.linalg.solve(XtWX, X.T @ (W * nps_bin))
    resid = nps_bin - X @ beta
    sigma2 = float((W * resid ** 2).sum() / max(len(d) - 2, 1))
    se = math.sqrt(sigma2 * np.linalg.inv(XtWX)[1, 1])
    z = norm.ppf(1 - alpha / 2)
    # extra detractors beyond the threshold: the fitted rise over the last 12 months' events
    beyond = h > 0
    extra = float((d.loc[beyond, "n_last_year"] * th.rise(d.loc[beyond, "x"])).sum())
    target = float(kpi["target"])
    target_ok = target <= th.ci_high if lower else target >= th.ci_low
    out.update({
        "threshold": th.tau, "threshold_ci_low": th.ci_low, "threshold_ci_high": th.ci_high,
        # NPS points per KPI unit beyond the threshold, in the "worse" direction (negative: NPS falls)
        "elasticity": beta[1], "elasticity_ci_low": beta[1] - z * se, "elasticity_ci_high": beta[1] + z * se,
        "share_beyond_pct": 100 * d.loc[beyond, "n"].sum() / d["n"].sum(),
        "customers_beyond_per_year": int(d.loc[beyond, "n_last_year"].sum()),
        "extra_detractors_per_year": extra,
        "status": "aligned" if target_ok else "misaligned",
        "reason": f"Detractors rise beyond {th.tau:.1f} {kpi['unit']} (likelihood-ratio p = {th.lr_p:.2g}).",
    })
    if gap is not None:
        m = money_at_risk(th, d["x"], d["n_last_year"], gap, horizon_years=horizon_years, alpha=alpha)
        adj, crude = m["money"], m["money_crude"]
        out.update({"extra_detractors_ci_low": m["extra"][1], "extra_detractors_ci_high": m["extra"][2],
                    "money_at_risk": adj.estimate, "money_at_risk_ci_low": adj.ci_low,
                    "money_at_risk_ci_high": adj.ci_high, "money_at_risk_crude": crude.estimate,
                    "money_at_risk_crude_ci_low": crude.ci_low, "money_at_risk_crude_ci_high": crude.ci_high,
                    "money_horizon_years": horizon_years})
    if not target_ok:
        out["suggestion"] = (f"To sit inside customer expectation, move the {kpi['name'].lower()} target from {target:g} "
                             f"to {th.tau:.1f} {kpi['unit']}; {out['customers_beyond_per_year']:,} customer events a year "
                             "are beyond the threshold today.")
    return out


@store.memoized
def scorecard(con: duckdb.DuckDBPyConnection, filters: Filters, *, department: str | None = None,
              alpha: float = 0.05) -> Result:
    """Every KPI's threshold, status and money at risk, sorted by money at risk."""
    with store.recorded() as ran:  # the money at risk's CLV gap included
        kpis = kpis_frame(con, filters, department)
        gap, horizon = clv_gap(con, filters) if len(kpis) else (None, "")
        gap_note = horizon if gap is None else ""
        horizon = horizon if gap is not None else 5.0
        rows = [assess(con, filters, k, gap=gap, horizon_years=horizon, alpha=alpha) for _, k in kpis.iterrows()]
    curves = {r["kpi_id"]: r.pop("_curve") for r in rows}
    queries = store.distinct([*(q for r in rows for q in r.pop("_query")), *ran])
    table = pd.DataFrame(rows)
    if len(table):
        table = table.sort_values("money_at_risk", ascending=False, na_position="last").reset_index(drop=True)
    warnings = () if gap is not None else (f"Money at risk {gap_note}.",) if gap_note else ()
    return Result("alignment", "KPI alignment scorecard", table,
                  method=(f"Threshold: {THRESHOLD_METHOD}. Elasticity by weighted least squares. {MONEY_METHOD} "
                          f"({horizon:g}-year horizon)."),
                  reference="Feder (1975); Muggeo (2003); Davies (1987); Venzon & Moolgavkar (1988); direct "
                            "standardisation (Rothman et al. 2008).", filters=filters.describe(),
                  alpha=alpha, warnings=warnings, queries=queries,
                  extra={"tables": ("kpis", "kpi_observations", "survey_responses", "customers")
                         + (("transactions", "churn_events") if gap is not None else ()), "curves": curves,
                         "clv_gap": gap, "horizon_years": horizon, "mix_note": getattr(gap, "mix_note", ""),
                         "kpis": kpis})


def describe(row: pd.Series) -> str:
    if row["status"] == "no evidence":
        return f"{row['kpi']}: no evidence — {row['reason']}"
    verdict = "aligned" if row["status"] == "aligned" else "MISALIGNED"
    money = ""
    if row["money_at_risk"] == row["money_at_risk"]:
        h = row.get("money_horizon_years", 5.0)
        money = (f"; CLV at risk from a year's extra detractors ({h:g}-year horizon) {row['money_at_risk']:,.0f} "
                 f"(95% CI {row['money_at_risk_ci_low']:,.0f} to {row['money_at_risk_ci_high']:,.0f}) within segment, "
                 f"{row['money_at_risk_crude']:,.0f} crude")
    return (f"{row['kpi']} ({row['department']}): target {row['target']:g} {row['unit']}, customers turn detractors "
            f"beyond {row['threshold']:.1f} (95% CI {row['threshold_ci_low']:.1f} to {row['threshold_ci_high']:.1f}) — "
            f"{verdict}{money}.")


def register_cli(sub, parents) -> None:
    p = sub.add_parser("alignment", parents=parents, help="KPI targets vs customer expectation thresholds")
    p.add_argument("--kpi-department", "--dept", dest="kpi_department",
                   help="only this department's KPIs (the shared --department restricts the caller's scope)")
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    from cxmetrics.core.output import emit, filters_from_args

    f = filters_from_args(args)
    dept = args.kpi_department or (f.scope.departments[0] if f.scope.departments else None)
    with engines.connect_args(args) as con:  # --engine duckdb|spark, --lake
        res = scorecard(con, f, department=dept, alpha=args.alpha)
    res = Result(res.name, res.label, res.table, method=res.method, reference=res.reference, filters=res.filters,
                 alpha=res.alpha, warnings=res.warnings, queries=res.queries, extra={"clv_gap": res.extra["clv_gap"]})
    emit(res, args)
    return 0
