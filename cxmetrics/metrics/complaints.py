"""Complaints and the closed loop: volumes, Pareto, escalations, resolution, callbacks, follow-ups.

* Volume per 1,000 active customers: complaints / customers active in the window × 1,000.
* Pareto: categories by volume with the cumulative share; the "top N to fix" list ranks
  categories by volume × churn uplift × cost per complaint.
* Time to resolve: Kaplan–Meier on days from opened to closed, open complaints right-censored
  at the data end date (not dropped, which would understate resolution times); median and 90th
  percentile from the KM curve.
* Escalation rate and callbacks: shares with Wilson 95% CIs.
* Churn uplift: Poisson (constant-hazard exponential) hazard ratios of churn after the landmark for
  customers whose complaints before the landmark were resolved, escalated or still open, vs
  customers without complaints, adjusted for NPS group, segment and tenure (landmark design of
  :mod:`cxmetrics.churn`).
* Detractor follow-up: share of relationship-survey detractors contacted within N days, and their
  12-month churn vs detractors not followed up (difference of proportions, normal CI).

References
----------
Kaplan & Meier (1958); Wilson (1927); Holford (1980) for the Poisson hazard model; the telecom
"top 99 complaints" programme cited in DESIGN.md for the result-driven track.
"""

from __future__ import annotations

import dataclasses
import math

import duckdb

from cxmetrics import store
from cxmetrics.core import glm, lazy
from cxmetrics.core.dist import norm
from cxmetrics.core.filters import Filters
from cxmetrics.core.results import Estimate, Result
from cxmetrics.metrics import churn
from cxmetrics.metrics.churn import wilson
from cxmetrics.store import assumptions, engines, relations, summaries

np = lazy.module("numpy")
pd = lazy.module("pandas")

DIMENSIONS = {
    "month": "date_trunc('month', k.opened_on)",
    "category": "k.category",
    "channel": "coalesce(k.channel, '(unknown)')",
    "department": "coalesce(k.department, '(none)')",
    "root_cause": "coalesce(k.root_cause, '(unknown)')",
    "region": "c.region",
    "segment": "c.segment",
}
TABLES = ("complaints", "customers", "churn_events")


def _where(filters: Filters, src=None) -> tuple[str, dict]:
    return filters.where(date_col="k.opened_on", customer=src.customer if src is not None else "c",
                         department_col="k.department")


def _known(src, by: str | None) -> str:
    """Grouped by a customer attribute: leave out complaints without a customer (a complaints log
    with no customer key), which have no segment or region, on the summary path as on the raw one."""
    return f" AND {src.dim(DIMENSIONS[by])} IS NOT NULL" if by in ("segment", "region") else ""


def _cells(con: duckdb.DuckDBPyConnection):
    """Complaint counts come from summary_complaints when it is current (the same counts)."""
    return summaries.complaints(con)


def volume(con: duckdb.DuckDBPyConnection, filters: Filters, *, by: str = "category", alpha: float = 0.05) -> Result:
    """Complaints, escalations and rate per 1,000 active customers by a dimension."""
    if by not in DIMENSIONS:
        raise ValueError(f"by must be one of {', '.join(DIMENSIONS)}")
    src = _cells(con)
    where, params = _where(filters, src)
    active = _active_customers(con, filters)
    q = store.Query(f"complaints_by_{by}", f"""
SELECT {src.dim(DIMENSIONS[by])} AS grp, {src.count()} AS complaints, {src.count("k.escalated")} AS escalated,
       coalesce(sum(k.sum_cost), 0) AS cost,
       $active AS active_customers
FROM {src.source}
WHERE {where}{_known(src, by)} GROUP BY 1 ORDER BY {'1' if by == 'month' else 'complaints DESC, 1'}""", {**params, "active": active})
    df = store.run(con, q)
    esc = [wilson(e, n, alpha) for e, n in zip(df["escalated"], df["complaints"], strict=True)]
    table = pd.DataFrame({by: df["grp"], "complaints": df["complaints"], "escalated": df["escalated"],
                          "escalation_rate_pct": 100 * df["escalated"] / df["complaints"],
                          "esc_ci_low": [100 * a for a, _ in esc], "esc_ci_high": [100 * b for _, b in esc],
                          "per_1000_customers": 1000 * df["complaints"] / df["active_customers"].where(df["active_customers"] > 0),
                          "cost": df["cost"]})
    return Result("complaints", f"Complaints by {by}", table,
                  method="Counts per group; rate per 1,000 customers active in the window; escalation share with "
                         "Wilson CI.", reference="Wilson (1927).", filters=filters.describe(), alpha=alpha,
                  queries=(q,), extra={"tables": TABLES})


def _active_customers(con: duckdb.DuckDBPyConnection, filters: Filters) -> int:
    """Customers active at some point in the complaints window (the per-1,000 base; one query per page)."""
    cwhere, cparams = summaries.where(summaries.LIFECYCLE_TABLE, filters, customer="c0", dates=False)
    q = summaries.query(con, "active_customers", f"""
WITH bounds AS (SELECT coalesce($date_from, min(opened_on)) AS lo, coalesce($date_to, max(opened_on)) AS hi FROM complaints)
SELECT CAST(coalesce(sum(c0.n), 0) AS BIGINT) AS customers FROM {{summary_lifecycle}} c0, bounds b
WHERE {cwhere} AND c0.acquired_on <= b.hi AND coalesce(c0.churned_on, b.hi) >= b.lo""",
                        {**cparams, "date_from": filters.date_from, "date_to": filters.date_to}, filters=filters)
    return int(store.run(con, q)["customers"].iloc[0])


def escalation_series(con: duckdb.DuckDBPyConnection, filters: Filters, *, by: str = "region",
                      period: str = "month") -> pd.DataFrame:
    """Complaints and escalations per group and period (the series initiative DiD uses)."""
    if by not in DIMENSIONS or period not in ("month", "quarter"):
        raise ValueError("unknown grouping or period")
    src = _cells(con)
    where, params = _where(filters, src)
    q = store.Query("escalation_series", f"""
SELECT {src.dim(DIMENSIONS[by])} AS grp, date_trunc('{period}', k.opened_on) AS period, {src.count()} AS complaints,
       {src.count("k.escalated")} AS escalated
FROM {src.source} WHERE {where}{_known(src, by)} GROUP BY 1, 2 ORDER BY 1, 2""", params)
    return store.run(con, q)


def pareto(con: duckdb.DuckDBPyConnection, filters: Filters, *, share: float = 0.8) -> Result:
    """Categories by volume with cumulative share, and the top-N-to-fix ranking."""
    with store.recorded() as ran:  # the volumes', churn uplifts' and cost per complaint's queries
        vol = volume(con, filters, by="category").table
        up = category_uplift(con, filters)
        unit = assumptions.current(con).get("cost_per_complaint")
    t = vol.merge(up, on="category", how="left")
    t = t.sort_values("complaints", ascending=False).reset_index(drop=True)
    total = t["complaints"].sum()
    t["cumulative_share_pct"] = 100 * t["complaints"].cumsum() / total if total else np.nan
    n80 = int((t["cumulative_share_pct"] < 100 * share).sum() + 1) if total else 0
    t["cost_per_complaint"] = (t["cost"] / t["complaints"]).where(t["cost"] > 0, unit.value if unit else np.nan)
    t["priority"] = t["complaints"] * t["churn_uplift"].fillna(1.0).clip(lower=0) * t["cost_per_complaint"]
    t["priority_rank"] = t["priority"].rank(ascending=False, method="first").astype("Int64")
    t["in_top_80pct"] = t.index < n80
    return Result("pareto", "Complaint Pareto", t,
                  method=f"Categories sorted by volume; {n80} of {len(t)} make {share:.0%} of complaints. Priority = "
                         "volume × churn uplift (customers' churn in the year after this complaint vs all "
                         "complainers) × cost per complaint.",
                  filters=filters.describe(), queries=store.distinct(ran),
                  extra={"tables": TABLES, "n_to_80": n80, "categories": len(t)})


def category_uplift(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """Share of complaining (contract) customers who churn within a year, by category, relative to all."""
    where, params = summaries.where(summaries.UPLIFT_TABLE, filters, customer="k", dates=False)
    inside = filters
    if filters.date_from is not None or filters.date_to is not None:
        # A date range reads the complaints themselves. The definition counts only complaints
        # opened up to 12 months before the last one; that bound, bound again as the range's end,
        # lets the scan skip the rest (DuckDB prunes on a parameter, not on a scalar subquery):
        # the same rows, 0.04 instead of 0.1 s over the last 12 months at 2M complaints.
        cut = store.scalar(con, "SELECT CAST(max(opened_on) - INTERVAL 12 MONTH AS DATE) FROM complaints",
                           name="uplift_cutoff")
        if cut is not None:
            inside = filters.with_(date_to=min(filters.date_to, cut) if filters.date_to else cut)
    q = summaries.query(con, "category_uplift", "SELECT k.category, CAST(sum(k.customers) AS BIGINT) AS customers, "
                                                "CAST(sum(k.churned) AS BIGINT) AS churned "
                                                f"FROM {{summary_category_uplift}} k WHERE {where} GROUP BY 1",
                        params, filters=inside)
    df = store.run(con, q)
    overall = df["churned"].sum() / df["customers"].sum() if df["customers"].sum() else np.nan
    df["churn_after_pct"] = 100 * df["churned"] / df["customers"]
    df["churn_uplift"] = (df["churned"] / df["customers"]) / overall if overall else np.nan
    return df[["category", "churn_after_pct", "churn_uplift"]]


def resolution(con: duckdb.DuckDBPyConnection, filters: Filters, *, by: str | None = "category") -> Result:
    """Median and 90th-percentile days to resolve, open complaints censored at the data end."""
    from cxmetrics.core import sm

    src = _cells(con)
    where, params = _where(filters, src)
    grp = src.dim(DIMENSIONS[by]) if by else "'all'"
    q = store.Query("resolution_counts", f"""
WITH e AS (SELECT max(opened_on) AS E FROM complaints)
SELECT {grp} AS grp, coalesce(k.close_days, date_diff('day', k.opened_on, e.E)) AS days,
       (k.close_days IS NOT NULL) AS closed, {src.count()} AS n
FROM {src.source}, e WHERE {where}{_known(src, by)} GROUP BY ALL ORDER BY ALL""", {**params, **src.params})
    df = store.run(con, q)
    recs = []
    for g, d in df.groupby("grp"):
        d = d.assign(days=d["days"].clip(lower=0) + 0.5)  # same-day closes count as half a day
        sf = sm.SurvfuncRight(d["days"].to_numpy(float), d["closed"].astype(int).to_numpy(),
                              freq_weights=d["n"].to_numpy(float))
        med, p90 = (km_quantile(sf, q_) for q_ in (0.5, 0.9))
        naive = d[d["closed"]]
        naive_med = weighted_median(naive["days"].to_numpy(float), naive["n"].to_numpy()) if len(naive) else np.nan
        recs.append({by or "group": g, "complaints": int(d["n"].sum()), "open": int(d.loc[~d["closed"], "n"].sum()),
                     "median_days": med, "p90_days": p90, "median_if_open_dropped": naive_med})
    return Result("resolution", "Time to resolve", pd.DataFrame(recs),
                  method="Kaplan–Meier on days to close; open complaints are censored at the last date in the data.",
                  reference="Kaplan & Meier (1958).", filters=filters.describe(), queries=(q,),
                  extra={"tables": ("complaints",)})


def weighted_median(values: np.ndarray, counts: np.ndarray) -> float:
    """The median of ``values`` each repeated ``counts`` times (the mean of the two middle ones for
    an even total), without repeating them.

    >>> weighted_median(np.array([3., 1., 2.]), np.array([1, 2, 1]))  # 1 1 2 3
    1.5
    >>> weighted_median(np.array([5., 1.]), np.array([2, 1]))  # 1 5 5
    5.0
    """
    order = np.argsort(values, kind="stable")
    v, upto = values[order], np.cumsum(counts[order])
    total = int(upto[-1])
    lo, hi = (v[np.searchsorted(upto, k, side="right")] for k in ((total - 1) // 2, total // 2))
    return float((lo + hi) / 2)


def km_quantile(sf, q: float) -> float:
    """Smallest time at which the KM curve falls to 1 − q or below (NaN if it never does).

    >>> from cxmetrics.core import sm
    >>> km_quantile(sm.SurvfuncRight([1., 2., 3., 4.], [1, 1, 1, 1]), 0.5)
    2.0
    """
    below = np.flatnonzero(sf.surv_prob <= 1 - q + 1e-12)
    return float(sf.surv_times[below[0]]) if below.size else float("nan")


def recontact(con: duckdb.DuckDBPyConnection, filters: Filters, *, days: int = 30, alpha: float = 0.05) -> Estimate:
    """Share of complaints followed by another complaint from the same customer within ``days``."""
    where, params = summaries.where(summaries.GAPS_TABLE, filters, customer="c", dates=False)
    q = summaries.query(con, "recontact", f"""
SELECT CAST(coalesce(sum(n), 0) AS BIGINT) AS n, CAST(coalesce(sum(n) FILTER (WHERE gap_days <= $days), 0) AS BIGINT) AS again
FROM {{summary_complaint_gaps}} c
WHERE {where} AND opened_on <= (SELECT max(opened_on) FROM complaints) - to_days($days)""", {**params, "days": int(days)},
                        filters=filters)
    return dataclasses.replace(_recontact_estimate(store.run(con, q).iloc[0], days, alpha, filters), queries=(q,))


def _recontact_estimate(r, days: int, alpha: float, filters: Filters) -> Estimate:
    n, k = int(r["n"]), int(r["again"])
    lo, hi = wilson(k, n, alpha)
    return Estimate("recontact", f"Re-contact within {days} days", 100 * k / n if n else float("nan"), 100 * lo, 100 * hi,
                    n=n, unit="%", alpha=alpha, method="complaints followed by another from the same customer",
                    reference="Wilson (1927).", filters=filters.describe(), min_n=filters.min_n)


def churn_uplift(con: duckdb.DuckDBPyConnection, filters: Filters, *, alpha: float = 0.05) -> Result:
    """Hazard ratios of churn by complaint history before the landmark (see module docstring)."""
    L = churn.default_landmark(con, filters)
    where, params = summaries.where(summaries.COMPLAINT_CHURN_TABLE, filters, customer="k", dates=False)
    q = summaries.query(con, "complaint_churn_cells", f"""
SELECT k.nps_group, k.segment, k.tenure, k.state, CAST(sum(k.customers) AS BIGINT) AS customers,
       CAST(sum(k.events) AS BIGINT) AS events, sum(k.days) / $month AS exposure
FROM {{summary_complaint_churn}} k WHERE {where} GROUP BY ALL ORDER BY ALL""", {**params, "month": churn.MONTH_DAYS},
                        filters=filters, landmark=L, end=churn.follow_up_end(con, filters))
    cells = store.run(con, q)
    if cells["events"].sum() < 10:
        return Result("complaint_churn", "Churn after complaints", pd.DataFrame(), filters=filters.describe(),
                      warnings=("Too little churn to compare.",), queries=(q,))
    X = churn._design(cells)
    for lv in sorted(cells["state"].unique()):
        if lv != "no complaint":
            X[f"state[{lv}]"] = (cells["state"] == lv).astype(float)
    res = glm.poisson(cells["events"], X, offset=np.log(cells["exposure"]))
    z = norm.ppf(1 - alpha / 2)
    rows, warnings = [], []
    no_events = set(cells.groupby("state")["events"].sum().loc[lambda e: e == 0].index)
    for col in X.columns:
        if col.startswith("state["):
            st_ = col[6:-1]
            # a state without churn has no finite hazard ratio: "not estimable", the others kept
            r = churn._ratio_row(st_, "hazard ratio", "", res.params[col], res.bse[col], res.pvalues[col], z,
                                 zero=no_events & {st_, "no complaint"})
            rows.append({"complaint_history": st_, "vs": "no complaint",
                         "customers": int(cells.loc[cells["state"] == st_, "customers"].sum()),
                         "hazard_ratio": r["ratio"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                         "p_value": r["p_value"], "note": r["note"]})
            if r["note"]:
                warnings.append(f"Hazard ratio of '{st_}' vs no complaint not estimable: {r['note']}.")
    return Result("complaint_churn", "Churn hazard after complaints (vs no complaint)", pd.DataFrame(rows),
                  warnings=tuple(warnings),
                  method=f"Landmark {L}: Poisson GLM with log-exposure offset, adjusted for NPS group, segment and "
                         "tenure; complaint history before the landmark.",
                  reference="Holford (1980); DESIGN.md churn definitions.", filters=filters.describe(), alpha=alpha,
                  queries=(q,), extra={"tables": TABLES + ("survey_responses",), "landmark": str(L)})


def rate_by_nps_group(con: duckdb.DuckDBPyConnection, filters: Filters, *, by_segment: bool = False) -> pd.DataFrame:
    """Complaints per customer-year by NPS group (latest relationship answer), Poisson SE; with
    ``by_segment``, per segment too.

    Exposure: each customer's days between acquisition (or the first complaint date in the data)
    and churn (or the data end).
    """
    cw, params = summaries.where(summaries.COMPLAINT_RATE_TABLE, filters, customer="c", dates=False)
    q = summaries.query(con, "complaint_rate_by_group", f"""
SELECT {"c.segment, " if by_segment else ""}{relations.nps_group("c.nps")} AS nps_group,
       CAST(sum(c.customers) AS BIGINT) AS customers, sum(c.years) AS years, CAST(sum(c.complaints) AS BIGINT) AS complaints
FROM {{summary_complaint_rate}} c WHERE {cw} GROUP BY ALL ORDER BY ALL""", params, filters=filters)
    df = store.run(con, q)
    df["per_customer_year"] = df["complaints"] / df["years"]
    df["se"] = np.sqrt(df["complaints"]) / df["years"]
    return df


def cost_by_month(con: duckdb.DuckDBPyConnection, filters: Filters) -> Result:
    """Handling cost per month: the cost column where present, else the cost assumptions."""
    used = assumptions.current(con)
    per_c = used["cost_per_complaint"].value if "cost_per_complaint" in used else 0.0
    per_e = used["cost_per_escalation"].value if "cost_per_escalation" in used else 0.0
    src = _cells(con)
    where, params = _where(filters, src)
    unit = "($per_c + CASE WHEN k.escalated THEN $per_e ELSE 0 END)"
    cost, recorded = f"coalesce(sum(k.sum_cost), 0) + sum((k.n - k.n_cost) * {unit})", "sum(k.n_cost)"
    q = store.Query("complaint_cost", f"""
SELECT date_trunc('month', k.opened_on) AS month, {src.count()} AS complaints, {src.count("k.escalated")} AS escalated,
       {cost} AS cost, CAST({recorded} AS BIGINT) AS with_recorded_cost
FROM {src.source} WHERE {where} GROUP BY 1 ORDER BY 1""",
                    {**params, "per_c": per_c, "per_e": per_e})
    df = store.run(con, q)
    cited = {k: used[k] for k in ("cost_per_complaint", "cost_per_escalation") if k in used}
    return Result("complaint_cost", "Cost of complaints", df,
                  method="Recorded cost per complaint; where missing, cost_per_complaint (+ cost_per_escalation).",
                  filters=filters.describe(), assumptions=assumptions.cite(cited), queries=(q,),
                  extra={"tables": ("complaints",)})


# ----------------------------------------------------------------------------- closed loop


def callbacks(con: duckdb.DuckDBPyConnection, filters: Filters, *, by: str = "department", alpha: float = 0.05) -> Result:
    """Callbacks promised vs done, by department or month, with Wilson CIs."""
    if by not in ("department", "month"):
        raise ValueError("by must be department or month")
    src = _cells(con)
    where, params = _where(filters, src)
    q = store.Query(f"callbacks_by_{by}", f"""
SELECT {src.dim(DIMENSIONS[by])} AS grp, {src.count("k.callback_promised")} AS promised,
       {src.count("k.callback_promised AND k.callback_done")} AS done
FROM {src.source} WHERE {where} GROUP BY 1 ORDER BY 1""", params)
    df = store.run(con, q)
    ci = [wilson(d, p, alpha) for d, p in zip(df["done"], df["promised"], strict=True)]
    df = df.rename(columns={"grp": by})
    df["kept_pct"] = 100 * df["done"] / df["promised"].where(df["promised"] > 0)
    df["ci_low"] = [100 * a for a, _ in ci]
    df["ci_high"] = [100 * b for _, b in ci]
    return Result("callbacks", f"Callbacks kept by {by}", df, method="callbacks done / promised (Wilson CI)",
                  reference="Wilson (1927).", filters=filters.describe(), alpha=alpha, queries=(q,),
                  extra={"tables": ("complaints",)})


#: Followed-up vs not: responses, contract customers observable for 12 months, those who churned,
#: and the next relationship NPS (its mean and sample SD from the cells' count, sum and squares).
_FOLLOWUP_OUTCOMES = """
SELECT followed, CAST(sum(n) AS BIGINT) AS responses,
       CAST(coalesce(sum(n) FILTER (WHERE contract = 'contractual' AND responded_on <= bounds.last_at_risk), 0) AS BIGINT)
           AS at_risk,
       CAST(coalesce(sum(n) FILTER (WHERE contract = 'contractual' AND churned AND responded_on <= bounds.last_at_risk),
                     0) AS BIGINT) AS churned,
       CAST(sum(n_next) AS BIGINT) AS with_next, sum(s_next) / nullif(sum(n_next), 0) AS next_nps_mean,
       CASE WHEN sum(n_next) > 1 THEN sqrt(greatest(CAST(sum(n_next) AS DOUBLE) * sum(ss_next)
                                                    - CAST(sum(s_next) AS DOUBLE) * sum(s_next), 0)
                                           / (CAST(sum(n_next) AS DOUBLE) * (sum(n_next) - 1))) END AS next_nps_sd
FROM outcome, bounds GROUP BY 1 ORDER BY 1"""


def detractor_followup(con: duckdb.DuckDBPyConnection, filters: Filters, *, within_days: int = 7,
                       alpha: float = 0.05) -> Result:
    """Detractor responses contacted within N days, and 12-month churn of followed vs not followed."""
    where, params = summaries.where(summaries.DETRACTOR_CELLS_TABLE, filters, date_col="d.responded_on", customer="d",
                                    department_col="d.department")
    q = summaries.query(con, "detractor_followup", f"""
WITH bounds AS (SELECT (SELECT max(occurred_on) FROM transactions) - INTERVAL 12 MONTH AS last_at_risk),
outcome AS (
    SELECT d.responded_on, d.contract, d.churned, d.n, d.n_next, d.s_next, d.ss_next,
           coalesce(d.followup_days <= $days, false) AS followed
    FROM {{summary_detractor_cells}} d WHERE {where}
)
""" + _FOLLOWUP_OUTCOMES, {**params, "days": int(within_days)})
    df = store.run(con, q)
    df["churn_12m_pct"] = 100 * df["churned"] / df["at_risk"].where(df["at_risk"] > 0)
    total = df["responses"].sum()
    followed = df.loc[df["followed"], "responses"].sum()
    lo, hi = wilson(followed, total, alpha)
    heads = [Estimate("followup_rate", f"Detractors followed up within {within_days} days",
                      100 * followed / total if total else float("nan"), 100 * lo, 100 * hi, n=int(total), unit="%",
                      alpha=alpha, method="share of relationship detractor responses with a follow-up contact",
                      filters=filters.describe(), min_n=filters.min_n)]
    f, nf = df[df["followed"]], df[~df["followed"]]
    if len(f) and len(nf) and f["at_risk"].iloc[0] and nf["at_risk"].iloc[0]:
        p1, n1 = f["churned"].iloc[0] / f["at_risk"].iloc[0], f["at_risk"].iloc[0]
        p0, n0 = nf["churned"].iloc[0] / nf["at_risk"].iloc[0], nf["at_risk"].iloc[0]
        d = p1 - p0
        se = math.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
        z = norm.ppf(1 - alpha / 2)
        pv = 2 * (1 - norm.cdf(abs(d) / se)) if se > 0 else float("nan")
        heads.append(Estimate("followup_churn_diff", "12-month churn, followed up − not followed up", 100 * d,
                              100 * (d - z * se), 100 * (d + z * se), n=int(n1 + n0), unit="points", alpha=alpha,
                              p_value=pv, method="difference of two proportions (normal CI); observational, not causal",
                              filters=filters.describe(), min_n=filters.min_n))
    return Result("detractor_followup", "Closing the loop with detractors", df,
                  method=f"Relationship responses scoring 0–6 with a follow-up contact within {within_days} days; "
                         "churn within 12 months of the response (contract customers with a full year of data).",
                  reference="Wilson (1927); two-proportion z interval.", filters=filters.describe(), alpha=alpha,
                  headline=tuple(heads), queries=(q,),
                  extra={"tables": ("survey_responses", "followups", "churn_events", "customers")})


def describe_followup(res: Result) -> str:
    if len(res.headline) < 2:
        return res.headline[0].label + ": no comparison possible." if res.headline else "No detractor responses."
    rate, diff = res.headline
    sig = diff.p_value is not None and diff.p_value < diff.alpha
    verdict = "a significant difference" if sig else "no significant difference"
    return (f"{rate.estimate:.0f}% of detractors were contacted ({rate.ci_text()}). Their 12-month churn differs from "
            f"those not contacted by {diff.estimate:+.1f} points ({diff.ci_text()}): {verdict}.")


def describe_pareto(res: Result) -> str:
    t = res.table
    if t.empty:
        return "No complaints in this selection."
    top = t.sort_values("priority_rank").iloc[0]
    return (f"{res.extra['n_to_80']} of {res.extra['categories']} categories make 80% of complaints; fixing "
            f"'{top['category']}' first would matter most (volume × churn uplift × cost).")


def register_cli(sub, parents) -> None:
    p = sub.add_parser("complaints", parents=parents, help="complaint volumes, escalations and the Pareto")
    p.add_argument("--by", choices=sorted(DIMENSIONS), default="category")
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    from cxmetrics.core.output import emit, filters_from_args

    f = filters_from_args(args)
    with engines.connect_args(args) as con:  # --engine duckdb|spark, --lake
        res = pareto(con, f) if args.by == "category" else volume(con, f, by=args.by, alpha=args.alpha)
        rec = recontact(con, f, alpha=args.alpha)
    emit(dataclasses.replace(res, headline=(rec,)), args)  # warnings and assumptions as returned
    return 0

