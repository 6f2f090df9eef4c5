"""Churn and retention: rates, cohorts, survival by NPS group, hazard and odds ratios.

Landmark design (no look-ahead): a customer's NPS group is their latest relationship response
*before* the landmark date L; contractual customers active at L are followed from L to their
churn date or the end of the data (censored). Everything is aggregated in DuckDB:

* hazard ratios: a Poisson GLM of events on NPS group + segment + tenure band with offset
  log(exposure), on cells of (group, segment, tenure band). With a constant hazard within cells
  this is exactly the piecewise-exponential proportional-hazards model (Holford 1980; Laird &
  Olivier 1981), so rate ratios are hazard ratios. A Cox model (statsmodels ``PHReg``) on the
  customer rows (a seeded reservoir sample of at most 50,000) is reported alongside as a check;
* odds ratios: a binomial GLM of churn within 12 months of L on cells (exact grouped logistic);
* Kaplan–Meier curves by group: statsmodels ``SurvfuncRight`` with frequency weights on
  (group, month, status) counts, with pointwise 95% bands (Greenwood);
* churn by grouping: 12-month churn share with Wilson 95% CIs.

References
----------
Holford, T. R. (1980), "The analysis of rates and of survivorship using log-linear models",
Biometrics 36(2). Laird, N. & Olivier, D. (1981), JASA 76(374). Cox, D. R. (1972), JRSS-B 34(2).
Kaplan, E. L. & Meier, P. (1958), JASA 53(282). Wilson, E. B. (1927), JASA 22(158).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
from scipy.stats import norm

from . import store, stubs
from .filters import Filters
from .results import Estimate, Result

MONTH_DAYS = 365.25 / 12
GROUPINGS = {
    "nps_group": "b.nps_group",
    "csat": "coalesce(CAST(b.csat AS VARCHAR), '(no CSAT)')",
    "segment": "b.segment",
    "region": "b.region",
    "complaint_history": "b.complaint_history",
}
REFERENCE = ("Holford (1980); Laird & Olivier (1981) piecewise-exponential model; Cox (1972); "
             "Kaplan & Meier (1958); Wilson (1927).")

_BASE = """
WITH bounds AS (
    SELECT $landmark::DATE AS L,
           coalesce($end::DATE, (SELECT max(occurred_on) FROM transactions))::DATE AS E
), grp AS (
    SELECT r.customer_id, arg_max(r.nps, r.responded_on) AS nps
    FROM survey_responses r, bounds
    WHERE r.survey = 'relationship' AND r.nps IS NOT NULL AND r.responded_on < bounds.L
    GROUP BY 1
), cs AS (
    SELECT r.customer_id, arg_max(r.csat, r.responded_on) AS csat
    FROM survey_responses r, bounds
    WHERE r.csat IS NOT NULL AND r.responded_on < bounds.L
    GROUP BY 1
), comp AS (
    SELECT k.customer_id, bool_or(coalesce(k.escalated, false)) AS escalated
    FROM complaints k, bounds WHERE k.opened_on < bounds.L GROUP BY 1
), b AS (
    SELECT c.customer_id, c.segment, c.region,
           CASE WHEN g.nps >= 9 THEN 'promoter' WHEN g.nps >= 7 THEN 'passive' ELSE 'detractor' END AS nps_group,
           cs.csat,
           CASE WHEN comp.customer_id IS NULL THEN 'no complaint'
                WHEN comp.escalated THEN 'escalated complaint' ELSE 'complaint, not escalated' END AS complaint_history,
           CASE WHEN date_diff('month', c.acquired_on, bounds.L) < 12 THEN '0-11m'
                WHEN date_diff('month', c.acquired_on, bounds.L) < 24 THEN '12-23m' ELSE '24m+' END AS tenure,
           (ce.churned_on IS NOT NULL AND ce.churned_on <= bounds.E) AS event,
           greatest(date_diff('day', bounds.L, least(coalesce(ce.churned_on, bounds.E), bounds.E)), 0.5) AS days,
           (ce.churned_on IS NOT NULL AND ce.churned_on < bounds.L + INTERVAL 12 MONTH) AS churn12
    FROM customers c
    JOIN grp g USING (customer_id)
    LEFT JOIN churn_events ce ON ce.customer_id = c.customer_id
    LEFT JOIN cs ON cs.customer_id = c.customer_id
    LEFT JOIN comp ON comp.customer_id = c.customer_id
    CROSS JOIN bounds
    WHERE c.contract = 'contractual' AND c.acquired_on <= bounds.L
      AND (ce.churned_on IS NULL OR ce.churned_on >= bounds.L) AND {where}
)"""


def default_landmark(con: duckdb.DuckDBPyConnection, filters: Filters) -> dt.date:
    """The landmark: the filter's start date, else one year after the first relationship response."""
    if filters.date_from is not None:
        return filters.date_from
    first = store.run(con, store.Query("first_relationship_response", "SELECT min(responded_on) AS first "
                                       "FROM survey_responses WHERE survey = 'relationship'"))["first"].iloc[0]
    if pd.isna(first):
        return dt.date.today()
    first = pd.Timestamp(first).date()
    try:
        return first.replace(year=first.year + 1)
    except ValueError:  # 29 February: a year later is the 28th
        return first.replace(year=first.year + 1, day=28)


def raw_base(filters: Filters, landmark: dt.date, select: str, name: str) -> store.Query:
    """``select`` over the landmark base ``b`` (and ``bounds``), computed from the raw tables."""
    where, params = filters.where(customer="c", customer_id_col="c.customer_id", dates=False)
    return store.Query(name, _BASE.format(where=where) + "\n" + select,
                       {**params, "landmark": landmark, "end": filters.date_to})


_FROM_SUMMARY = """
-- b is the landmark base above (see raw_base), materialised as summary_landmark at this data version
WITH bounds AS (SELECT $landmark::DATE AS L, $end::DATE AS E),
b AS (SELECT c.* FROM summary_landmark c WHERE {where})"""


def _base(con: duckdb.DuckDBPyConnection, filters: Filters, landmark: dt.date, select: str, name: str, *,
          summary_select: str | None = None) -> store.Query:
    """Like :func:`raw_base`, reading ``b`` from the summary table when it holds exactly this base
    (current data version, default landmark, no end-date filter; see :mod:`cxmetrics.summaries`).
    ``summary_select`` replaces ``select`` on that path (it may read the other summaries too)."""
    from . import summaries

    s = summaries.landmark(con)
    if s is None or filters.date_to is not None or landmark != s.landmark:
        # inside a page's call, the base is computed once into a temporary table of this
        # connection and every query of the page reads it
        table = store.temp_table(con, "__landmark_", raw_base(filters, landmark, "SELECT * FROM b", name))
        if table is None:
            return raw_base(filters, landmark, select, name)
        return store.Query(name, f"""
-- b is the landmark base of raw_base(), computed once for this page as temporary table {table}
WITH bounds AS (SELECT $landmark::DATE AS L,
                       coalesce($end::DATE, (SELECT max(occurred_on) FROM transactions))::DATE AS E),
b AS (SELECT * FROM {table})
""" + select, {"landmark": landmark, "end": filters.date_to})
    where, params = filters.where(customer="c", customer_id_col="c.customer_id", dates=False)
    return store.Query(name, _FROM_SUMMARY.format(where=where) + "\n" + (summary_select or select),
                       {**params, "landmark": landmark, "end": s.end})


def wilson(k: float, n: float, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval for k successes out of n.

    >>> [round(v, 4) for v in wilson(10, 100)]
    [0.0552, 0.1744]
    """
    if n <= 0:
        return float("nan"), float("nan")
    z = norm.ppf(1 - alpha / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


@stubs.note_excluded(stubs_matter=True)
def churn_by(con: duckdb.DuckDBPyConnection, filters: Filters, *, by: str = "nps_group",
             landmark: dt.date | None = None, alpha: float = 0.05) -> Result:
    """Share of customers who churned within 12 months of the landmark, by a grouping, Wilson CIs."""
    if by not in GROUPINGS:
        raise ValueError(f"by must be one of {', '.join(GROUPINGS)}")
    L = landmark or default_landmark(con, filters)
    q = _base(con, filters, L, f"SELECT {GROUPINGS[by]} AS grp, count(*) AS customers, "
                          "count(*) FILTER (WHERE churn12) AS churned FROM b GROUP BY 1 ORDER BY 1",
              f"churn_by_{by}")
    df = store.run(con, q)
    lo_hi = [wilson(k, n, alpha) for k, n in zip(df["churned"], df["customers"], strict=True)]
    table = pd.DataFrame({by: df["grp"], "customers": df["customers"], "churned_12m": df["churned"],
                          "churn_rate_pct": 100 * df["churned"] / df["customers"],
                          "ci_low": [100 * a for a, _ in lo_hi], "ci_high": [100 * b for _, b in lo_hi],
                          "small_sample": df["customers"] < filters.min_n})
    return Result("churn", f"12-month churn by {by.replace('_', ' ')}", table,
                  method=f"Contractual customers active on {L}; group from data before {L}; share churned within "
                         "12 months (Wilson CI).",
                  reference=REFERENCE, filters=filters.describe(), alpha=alpha, queries=(q,),
                  extra={"tables": ("customers", "survey_responses", "churn_events", "complaints"),
                         "landmark": str(L)})


@stubs.note_excluded(stubs_matter=True)
def hazard_ratios(con: duckdb.DuckDBPyConnection, filters: Filters, *, landmark: dt.date | None = None,
                  alpha: float = 0.05, cox_sample: int = 50_000, cox: bool = True) -> Result:
    """Hazard ratios of NPS groups vs promoters, adjusted for segment and tenure (see module doc).

    ``cox=False`` leaves out the Cox check (the Churn page shows it; summaries quote the Poisson
    hazard ratio, which is exact on the cells)."""
    import statsmodels.api as sm

    L = landmark or default_landmark(con, filters)
    q = _base(con, filters, L, "SELECT nps_group, segment, tenure, count(*) AS customers, "
                          "count(*) FILTER (WHERE event) AS events, sum(days) / $month AS exposure_months, "
                          "count(*) FILTER (WHERE churn12) AS churn12 FROM b GROUP BY ALL ORDER BY ALL",
              "churn_cells")
    q.params["month"] = MONTH_DAYS
    cells = store.run(con, q)
    z = norm.ppf(1 - alpha / 2)
    rows, warnings = [], []
    if cells["events"].sum() < 10 or cells["nps_group"].nunique() < 2:
        return Result("hazard_ratios", "Hazard ratios by NPS group", pd.DataFrame(), filters=filters.describe(),
                      warnings=("Too few churn events or NPS groups to estimate hazard ratios.",), queries=(q,))
    X = _design(cells)
    pois = sm.GLM(cells["events"], X, family=sm.families.Poisson(),
                  offset=np.log(cells["exposure_months"])).fit()
    logit = sm.GLM(np.column_stack([cells["churn12"], cells["customers"] - cells["churn12"]]), X,
                   family=sm.families.Binomial()).fit()
    for g in ("passive", "detractor"):
        col = f"nps_group[{g}]"
        if col not in X.columns:
            continue
        for model, name, res in (("Poisson (piecewise exponential)", "hazard ratio", pois),
                                 ("logistic, 12-month churn", "odds ratio", logit)):
            b, se = res.params[col], res.bse[col]
            rows.append({"group": g, "vs": "promoter", "measure": name, "model": model, "ratio": math.exp(b),
                         "ci_low": math.exp(b - z * se), "ci_high": math.exp(b + z * se), "p_value": res.pvalues[col]})
    cox_rows = _cox_rows(con, filters, L, cox_sample, alpha) if cox else []
    rows += cox_rows
    if cox and not cox_rows:
        warnings.append("Cox model not fitted (too few customers).")
    table = pd.DataFrame(rows)
    head = []
    det = table[(table["group"] == "detractor") & (table["measure"] == "hazard ratio")]
    if len(det):
        r = det.iloc[0]
        head.append(Estimate("hr_detractor", "Churn hazard, detractors vs promoters", r["ratio"], r["ci_low"],
                             r["ci_high"], n=int(cells["customers"].sum()), unit="×", alpha=alpha,
                             p_value=r["p_value"], method=r["model"] + ", adjusted for segment and tenure",
                             reference=REFERENCE, filters=filters.describe(), min_n=filters.min_n))
    return Result("hazard_ratios", "Churn hazard and odds ratios by NPS group (vs promoters)", table,
                  method=f"Landmark {L}: Poisson GLM with log-exposure offset on (group × segment × tenure) cells; "
                         "grouped logistic for 12-month churn; "
                         + ("Cox PHReg on customer rows as a check." if cox else "the Cox check is on the Churn page."),
                  reference=REFERENCE, filters=filters.describe(), alpha=alpha, headline=tuple(head),
                  warnings=tuple(warnings), queries=(q,),
                  extra={"tables": ("customers", "survey_responses", "churn_events"), "landmark": str(L),
                         "customers": int(cells["customers"].sum()), "events": int(cells["events"].sum())})


def _design(cells: pd.DataFrame) -> pd.DataFrame:
    X = pd.DataFrame({"const": 1.0}, index=cells.index)
    for col, ref in (("nps_group", "promoter"), ("segment", None), ("tenure", None)):
        levels = sorted(cells[col].unique())
        ref = ref if ref in levels else levels[0]
        for lv in levels:
            if lv != ref:
                X[f"{col}[{lv}]"] = (cells[col] == lv).astype(float)
    return X


def default_cox_fit(con: duckdb.DuckDBPyConnection) -> dict | None:
    """The Cox check of the unfiltered view, as kept in summary_fits (see :mod:`cxmetrics.summaries`);
    None before there are transactions (no end date to follow customers to)."""
    if con.execute("SELECT max(occurred_on) FROM transactions").fetchone()[0] is None:
        return None
    L = default_landmark(con, Filters())
    return {"landmark": L.isoformat(), "sample": 50_000, "alpha": 0.05, "rows": _cox(con, Filters(), L, 50_000, 0.05)}


def _cox_rows(con, filters: Filters, L: dt.date, sample: int, alpha: float) -> list[dict]:
    """The Cox rows: the stored fit when it is this exact one (unfiltered view, same landmark,
    sample and alpha; the seeded sample makes it reproducible), else fitted now."""
    from . import summaries

    if summaries.unfiltered(filters):
        kept = summaries.fit(con, "cox")
        if kept and (kept["landmark"], kept["sample"], kept["alpha"]) == (L.isoformat(), sample, alpha):
            return kept["rows"]
    return _cox(con, filters, L, sample, alpha)


def _cox(con, filters: Filters, L: dt.date, sample: int, alpha: float) -> list[dict]:
    import statsmodels.api as sm

    q = _base(con, filters, L, "SELECT nps_group, segment, tenure, days, event FROM b "
                          f"USING SAMPLE reservoir({int(sample)} ROWS) REPEATABLE (7)", "cox_sample")
    df = store.run(con, q)
    if len(df) < 50 or df["event"].sum() < 10 or df["nps_group"].nunique() < 2:
        return []
    X = _design(df).drop(columns="const")
    res = sm.PHReg(df["days"].to_numpy(float), X.to_numpy(float), status=df["event"].to_numpy(int)).fit()
    z = norm.ppf(1 - alpha / 2)
    out = []
    for i, col in enumerate(X.columns):
        if col.startswith("nps_group["):
            b, se = res.params[i], res.bse[i]
            out.append({"group": col[10:-1], "vs": "promoter", "measure": "hazard ratio",
                        "model": f"Cox PHReg ({len(df):,} customers{' sampled' if len(df) >= sample else ''})",
                        "ratio": math.exp(b), "ci_low": math.exp(b - z * se), "ci_high": math.exp(b + z * se),
                        "p_value": float(res.pvalues[i])})
    return out


@stubs.note_excluded(stubs_matter=True)
def survival_curves(con: duckdb.DuckDBPyConnection, filters: Filters, *, landmark: dt.date | None = None,
                    alpha: float = 0.05) -> Result:
    """Kaplan–Meier survival by NPS group from the landmark (monthly steps) with 95% bands."""
    import statsmodels.api as sm

    L = landmark or default_landmark(con, filters)
    q = _base(con, filters, L, "SELECT nps_group, ceil(days / $month) AS month, event, count(*) AS n FROM b "
                          "GROUP BY ALL ORDER BY ALL", "km_counts")
    q.params["month"] = MONTH_DAYS
    df = store.run(con, q)
    parts = []
    for g, d in df.groupby("nps_group"):
        sf = sm.SurvfuncRight(d["month"].to_numpy(float), d["event"].astype(int).to_numpy(),
                              freq_weights=d["n"].to_numpy(float))
        lo, hi = _pointwise(sf, alpha)
        parts.append(pd.DataFrame({"nps_group": g, "month": np.r_[0, sf.surv_times],
                                   "survival": np.r_[1.0, sf.surv_prob], "ci_low": np.r_[1.0, lo],
                                   "ci_high": np.r_[1.0, hi], "at_risk": np.r_[d["n"].sum(), sf.n_risk]}))
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return Result("survival", "Survival by NPS group (Kaplan–Meier)", table,
                  method=f"Kaplan–Meier from {L} in months, pointwise 95% band (Greenwood, log-log).",
                  reference=REFERENCE, filters=filters.describe(), alpha=alpha, queries=(q,),
                  extra={"tables": ("customers", "survey_responses", "churn_events"), "landmark": str(L)})


def _pointwise(sf, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Log-log transformed pointwise interval from the Greenwood standard error."""
    s, se = sf.surv_prob, sf.surv_prob_se
    z = norm.ppf(1 - alpha / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        ll = np.log(-np.log(s))
        se_ll = se / (s * np.abs(np.log(s)))
        lo = np.exp(-np.exp(ll + z * se_ll))
        hi = np.exp(-np.exp(ll - z * se_ll))
    return np.where(np.isfinite(lo), lo, s), np.where(np.isfinite(hi), hi, s)


def churn_rate_by_period(con: duckdb.DuckDBPyConnection, filters: Filters, *, alpha: float = 0.05) -> Result:
    """Monthly churn rate of contractual customers: churned in the month / active at its start."""
    where, params = filters.where(customer="c", customer_id_col="c.customer_id", dates=False)
    rng = ["TRUE"]
    if filters.date_from is not None:
        rng.append("m >= date_trunc('month', $date_from)")
        params["date_from"] = filters.date_from
    if filters.date_to is not None:
        rng.append("m <= $date_to")
        params["date_to"] = filters.date_to
    q = store.Query("churn_by_month", f"""
WITH months AS (
    SELECT unnest(generate_series(date_trunc('month', min(responded_on)), date_trunc('month', max(responded_on)),
                                  INTERVAL 1 MONTH))::DATE AS m FROM survey_responses
), cust AS (
    SELECT c.customer_id, c.acquired_on, ce.churned_on FROM customers c
    LEFT JOIN churn_events ce USING (customer_id) WHERE c.contract = 'contractual' AND {where}
), spans AS (
    -- active at month start m <=> a <= m < z (a: first month start after acquisition, z: after churn);
    -- customers grouped by (a, z) so the month grid meets a few hundred rows, not every customer
    SELECT (date_trunc('month', acquired_on) + INTERVAL 1 MONTH)::DATE AS a,
           (date_trunc('month', churned_on) + INTERVAL 1 MONTH)::DATE AS z,
           date_trunc('month', churned_on)::DATE AS cm, count(*) AS n
    FROM cust GROUP BY ALL
)
SELECT m AS month,
       CAST(coalesce(sum(n) FILTER (WHERE a <= m AND (z IS NULL OR z > m)), 0) AS BIGINT) AS active,
       CAST(coalesce(sum(n) FILTER (WHERE cm = m), 0) AS BIGINT) AS churned
FROM months, spans WHERE {' AND '.join(rng)} GROUP BY 1 ORDER BY 1""", params)
    df = store.run(con, q)
    ci = [wilson(k, n, alpha) for k, n in zip(df["churned"], df["active"], strict=True)]
    df["churn_rate_pct"] = 100 * df["churned"] / df["active"].where(df["active"] > 0)
    df["ci_low"] = [100 * a for a, _ in ci]
    df["ci_high"] = [100 * b for _, b in ci]
    return Result("churn_by_month", "Monthly churn rate", df, method="churned in month / active at month start "
                  "(contractual customers), Wilson CI.", reference=REFERENCE, filters=filters.describe(),
                  alpha=alpha, queries=(q,), extra={"tables": ("customers", "churn_events")})


def cohort_retention(con: duckdb.DuckDBPyConnection, filters: Filters) -> Result:
    """Share of each quarterly acquisition cohort still a customer k months after acquisition."""
    where, params = filters.where(customer="c", customer_id_col="c.customer_id", dates=False)
    q = store.Query("cohort_retention", f"""
WITH last AS (SELECT max(occurred_on) AS E FROM transactions),
cust AS (
    SELECT date_trunc('quarter', c.acquired_on)::DATE AS cohort, c.acquired_on, ce.churned_on
    FROM customers c LEFT JOIN churn_events ce USING (customer_id)
    WHERE c.contract = 'contractual' AND {where}
), lived AS (
    -- whole months from acquisition to churn (NULL: not churned): retained at k <=> lived >= k
    SELECT cohort, CASE WHEN churned_on IS NULL THEN NULL
                        WHEN acquired_on + to_months(date_diff('month', acquired_on, churned_on)) <= churned_on
                        THEN date_diff('month', acquired_on, churned_on)
                        ELSE date_diff('month', acquired_on, churned_on) - 1 END AS lived, count(*) AS n
    FROM cust GROUP BY ALL
), ks AS (SELECT unnest(range(0, 37, 3)) AS k)
SELECT cohort, k AS months, CAST(sum(n) AS BIGINT) AS customers,
       coalesce(sum(n) FILTER (WHERE lived IS NULL OR lived >= k), 0) / sum(n) AS retained
FROM lived, ks, last
WHERE cohort + to_months(k + 3) <= last.E
GROUP BY 1, 2 ORDER BY 1, 2""", params)
    df = store.run(con, q)
    return Result("cohort_retention", "Cohort retention", df, method="Share of the quarterly acquisition cohort "
                  "not churned k months after acquisition (only ages every member has reached).",
                  filters=filters.describe(), queries=(q,), extra={"tables": ("customers", "churn_events")})


@dataclass(frozen=True)
class ChurnPage:
    hazard: Result
    survival: Result
    by_nps: Result
    by_segment: Result
    by_complaints: Result
    by_month: Result
    cohorts: Result


@store.memoized
def page_data(con: duckdb.DuckDBPyConnection, filters: Filters) -> ChurnPage:
    """Everything the "Churn & retention" page shows."""
    L = default_landmark(con, filters)
    return ChurnPage(hazard=hazard_ratios(con, filters, landmark=L), survival=survival_curves(con, filters, landmark=L),
                     by_nps=churn_by(con, filters, by="nps_group", landmark=L),
                     by_segment=churn_by(con, filters, by="segment", landmark=L),
                     by_complaints=churn_by(con, filters, by="complaint_history", landmark=L),
                     by_month=churn_rate_by_period(con, filters), cohorts=cohort_retention(con, filters))


def describe_hazard(res: Result) -> str:
    if not res.headline:
        return "Not enough churn to compare NPS groups."
    e = res.headline[0]
    sig = e.p_value is not None and e.p_value < e.alpha
    return (f"Detractors churn at {e.estimate:.1f}× the rate of promoters ({e.ci_text('{:.2f}')}), "
            f"after allowing for segment and tenure" + ("." if sig else ": not significant."))


def register_cli(sub, parents) -> None:
    p = sub.add_parser("churn", parents=parents, help="12-month churn by a grouping, with hazard ratios")
    p.add_argument("--by", choices=sorted(GROUPINGS), default="nps_group")
    p.add_argument("--landmark", type=dt.date.fromisoformat, help="landmark date (default: a year into the data)")
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    from .output import emit, filters_from_args

    f = filters_from_args(args)
    with store.connect(args.db) as con:
        res = churn_by(con, f, by=args.by, landmark=args.landmark, alpha=args.alpha)
        hr = hazard_ratios(con, f, landmark=args.landmark, alpha=args.alpha) if args.by == "nps_group" else None
    if hr is not None:
        res = dataclasses.replace(res, headline=hr.headline, warnings=res.warnings + hr.warnings,
                                  extra={**res.extra, "hazard_ratios": hr.table})  # the rest as returned
    emit(res, args)
    return 0
