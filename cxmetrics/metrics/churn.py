"""Churn and retention: rates, cohorts, survival by NPS group, hazard and odds ratios.

Landmark design (no look-ahead): a customer's NPS group is their latest relationship response
*before* the landmark date L; contractual customers active at L are followed from L to their
churn date or the end of the data (censored). Everything is aggregated in DuckDB:

* hazard ratios: a Poisson GLM of events on NPS group + segment + tenure band (at L) with offset
  log(exposure), on cells of (group, segment, tenure band): an exponential model, one constant
  hazard per cell over the whole follow-up. It has no time pieces, so it is *not* a
  piecewise-exponential model; with one piece, the Poisson likelihood on cells equals the
  exponential survival likelihood (Holford 1980; Laird & Olivier 1981), so rate ratios are
  hazard ratios under that constant-hazard assumption. A Cox model (Breslow's partial likelihood
  for tied times, :func:`cxmetrics.metrics.survival.cox_breslow`, the model of statsmodels'
  ``PHReg`` and checked against it; no assumption on the baseline hazard's shape) on the customer rows (at most
  50,000, the first by the MD5 of their id: the same rows anywhere) is reported alongside as a check. A ratio whose group has no events is "not
  estimable" (NaN, with the reason); the other ratios are kept;
* odds ratios: a binomial GLM of churn within the window after L on cells (exact grouped logistic);
  both GLMs fitted by :mod:`cxmetrics.core.glm` (IRLS, checked against statsmodels' ``GLM``);
* Kaplan–Meier curves by group: statsmodels ``SurvfuncRight`` with frequency weights on
  (group, month, status) counts; pointwise bands from Greenwood's variance on the log-log scale
  (:func:`greenwood_band`; log and plain on request);
* churn by grouping: the share churned within the window with Wilson CIs. The window is 12
  months when the data reach 12 months past L, else the follow-up the data have, and is named
  so ("3-month churn"); under one month it is refused. The end of the data is the last
  transaction, or without transactions the last churn event or survey response.

References
----------
Holford, T. R. (1980), "The analysis of rates and of survivorship using log-linear models",
Biometrics 36(2). Laird, N. & Olivier, D. (1981), JASA 76(374). Cox, D. R. (1972), JRSS-B 34(2).
Kaplan, E. L. & Meier, P. (1958), JASA 53(282). Wilson, E. B. (1927), JASA 22(158).
Greenwood, M. (1926), Reports on Public Health and Medical Subjects 33. Kalbfleisch, J. D. &
Prentice, R. L. (2002), The Statistical Analysis of Failure Time Data, 2nd ed., Wiley.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import duckdb

from cxmetrics import store
from cxmetrics.core import glm, lazy
from cxmetrics.core.dist import norm
from cxmetrics.core.filters import Filters
from cxmetrics.core.results import Estimate, Result
from cxmetrics.metrics.survival import (
    MONTH_DAYS,
    add_months,
    churn_window,
    cox_breslow,
    greenwood_band,
    wilson,
    window_label,
)
from cxmetrics.store import engines, stubs, summaries
from cxmetrics.store.relations import DATA_END_SQL

np = lazy.module("numpy")
pd = lazy.module("pandas")

GROUPINGS = {
    "nps_group": "b.nps_group",
    "csat": "coalesce(CAST(b.csat AS VARCHAR), '(no CSAT)')",
    "segment": "b.segment",
    "region": "b.region",
    "complaint_history": "b.complaint_history",
}
#: How each grouping is named in labels.
GROUPING_LABELS = {"nps_group": "NPS group", "csat": "CSAT", "segment": "segment", "region": "region",
                   "complaint_history": "complaint history"}
REFERENCE = ("Holford (1980); Laird & Olivier (1981) Poisson models for survival rates; Cox (1972); "
             "Kaplan & Meier (1958); Greenwood (1926) and Kalbfleisch & Prentice (2002) §1.3 for the band; "
             "Wilson (1927).")


def data_end(con: duckdb.DuckDBPyConnection) -> dt.date | None:
    """The last date the store knows about (:data:`cxmetrics.relations.DATA_END_SQL`); None when it holds none."""
    try:
        end = store.scalar(con, "SELECT " + DATA_END_SQL, name="data_end")
    except store.StoreError:  # a store without these tables
        return None
    return None if end is None else pd.Timestamp(end).date()


def follow_up_end(con: duckdb.DuckDBPyConnection, filters: Filters) -> dt.date | None:
    """The end E of the churn follow-up under ``filters``: the range's end when it is before the
    data's last date, else None (E is then that last date, :data:`DATA_END_SQL`). No churn can be
    recorded after the data end, so counting days at risk beyond it (a range that ends later, e.g.
    on the last survey answer when the last transaction is older) would overstate the exposure."""
    if filters.date_to is None:
        return None
    end = data_end(con)
    return filters.date_to if end is None or filters.date_to < end else None


#: The first relationship response's day (the first response's without a relationship survey).
FIRST_RESPONSE = store.Query("first_relationship_response", """
SELECT coalesce(min(responded_on) FILTER (WHERE survey = 'relationship'), min(responded_on)) AS first
FROM survey_responses""")
FIRST_RESPONSE_COUNTED = store.Query("first_relationship_response",
                                     FIRST_RESPONSE.sql.replace("survey_responses", "summary_responses"))


def default_landmark(con: duckdb.DuckDBPyConnection, filters: Filters) -> dt.date:
    """The landmark, from the data's dates: the filter's start date; else one year after the first
    relationship response (the first survey response of any kind when there is no relationship
    survey), moved back so that 12 months of follow-up remain before the end of the data when the
    data allow it (never before the day after the first response). Only a store with no dated rows
    at all falls back to today (every churn figure is then empty)."""
    if filters.date_from is not None:
        return filters.date_from
    # the counted responses (summary_responses: every answer, anonymous ones too, by day and
    # survey) hold the same first days; a raw scan costs 0.2 s at 100M responses
    first = store.run(con, FIRST_RESPONSE_COUNTED if summaries.current(con, summaries.RESPONSES_TABLE)
                      else FIRST_RESPONSE)["first"].iloc[0]
    end = data_end(con)
    if pd.isna(first):
        return add_months(end, -12) if end is not None else dt.date.today()
    first = pd.Timestamp(first).date()
    try:
        L = first.replace(year=first.year + 1)
    except ValueError:  # 29 February: a year later is the 28th
        L = first.replace(year=first.year + 1, day=28)
    if end is not None and add_months(L, 12) > end:
        L = max(add_months(end, -12), first + dt.timedelta(days=1))
    return L


_B = """
WITH bounds AS (SELECT $landmark::DATE AS L, coalesce($end::DATE, """ + DATA_END_SQL + """)::DATE AS E),
b AS (SELECT c.* FROM {summary_landmark} c WHERE %s)
"""


def _base(con: duckdb.DuckDBPyConnection, filters: Filters, landmark: dt.date, select: str,
          name: str, *, everyone: bool = False) -> store.Query:
    """``select`` over ``b``, the churn landmark base (:data:`cxmetrics.relations.LANDMARK`) of the
    customers the filters keep, and ``bounds`` (L, the landmark; E, the end). ``b`` holds the
    contractual customers active at the landmark with a relationship NPS answer before it;
    ``everyone=True`` keeps those without one too (``nps_group`` NULL), for figures grouped by
    something other than the NPS group. The base is read from summary_landmark when it holds it
    (the default landmark, no end date), else computed — once per page call
    (:func:`cxmetrics.summaries.source`). E is :func:`follow_up_end`."""
    where, params = filters.where(customer="c", customer_id_col="c.customer_id", dates=False)
    if not everyone:
        where += " AND c.nps_group IS NOT NULL"
    end = follow_up_end(con, filters)
    return summaries.query(con, name, _B % where + select, {**params, "landmark": landmark, "end": end},
                           filters=filters, landmark=landmark, end=end)


#: Least follow-up after the landmark for a churn share to be reported (days, about one month).
MIN_FOLLOW_UP_DAYS = 28


@stubs.note_excluded(stubs_matter=True, contractual=True)
def churn_by(con: duckdb.DuckDBPyConnection, filters: Filters, *, by: str = "nps_group",
             landmark: dt.date | None = None, alpha: float = 0.05) -> Result:
    """Share of the customers active at the landmark who churned within the window, by a grouping,
    with Wilson CIs.

    The window is 12 months when the data reach that far past the landmark, otherwise the
    follow-up the data have (labelled by it, e.g. "3-month churn"); with less than
    :data:`MIN_FOLLOW_UP_DAYS` days of follow-up the figure is refused (empty table, a warning).
    Grouped by NPS group: customers with a relationship NPS answer before the landmark; by anything
    else: every contractual customer active at the landmark, grouped by the variable asked for
    (the latest CSAT answer before the landmark for ``csat``, "(no CSAT)" without one).
    """
    if by not in GROUPINGS:
        raise ValueError(f"by must be one of {', '.join(GROUPINGS)}")
    L = landmark or default_landmark(con, filters)
    everyone = by != "nps_group"
    q = _base(con, filters, L, f"SELECT {GROUPINGS[by]} AS grp, count(*) AS customers, "
                          "count(*) FILTER (WHERE churn12 AND event) AS churned, any_value(bounds.E) AS E "
                          "FROM b, bounds GROUP BY 1 ORDER BY 1", f"churn_by_{by}", everyone=everyone)
    df = store.run(con, q)
    end = follow_up_end(con, filters) or (pd.Timestamp(df["E"].iloc[0]).date() if len(df) and pd.notna(df["E"].iloc[0])
                                          else data_end(con))
    months, last = churn_window(L, end)
    base = ("contractual customers active on {L} with a relationship NPS answer before it" if not everyone
            else "all contractual customers active on {L}").format(L=L)
    extra = {"tables": ("customers", "survey_responses", "churn_events", "complaints"), "landmark": str(L),
             "window_months": months, "window_end": str(last) if last else None}
    if last is None or (last - L).days < MIN_FOLLOW_UP_DAYS:
        days = (end - L).days if end is not None else 0
        empty = pd.DataFrame(columns=[by, "customers", "churned", "churn_rate_pct", "ci_low", "ci_high", "small_sample"])
        return Result("churn", f"Churn by {GROUPING_LABELS[by]}", empty, filters=filters.describe(),
                      alpha=alpha, queries=(q,), extra=extra,
                      warnings=(f"Only {max(days, 0)} days of data after the landmark {L} (at least "
                                f"{MIN_FOLLOW_UP_DAYS} needed): churn not reported. Choose an earlier landmark.",))
    label = window_label(months)
    lo_hi = [wilson(k, n, alpha) for k, n in zip(df["churned"], df["customers"], strict=True)]
    table = pd.DataFrame({by: df["grp"], "customers": df["customers"], "churned": df["churned"],
                          "churn_rate_pct": 100 * df["churned"] / df["customers"],
                          "ci_low": [100 * a for a, _ in lo_hi], "ci_high": [100 * b for _, b in lo_hi],
                          "small_sample": df["customers"] < filters.min_n})
    warnings = () if months >= 12 else (
        f"The data end {end}, {(end - L).days} days after the landmark: this is {label} churn, "
        "not 12-month.",)
    return Result("churn", f"{label} churn by {GROUPING_LABELS[by]}", table,
                  method=f"Share of {base} who churned from {L} to {last} ({label} window; {GROUPING_LABELS[by]} "
                         f"from data before {L}); Wilson {1 - alpha:.0%} CI.",
                  reference=REFERENCE, filters=filters.describe(), alpha=alpha, queries=(q,), warnings=warnings,
                  extra=extra)


@stubs.note_excluded(stubs_matter=True, contractual=True)
def hazard_ratios(con: duckdb.DuckDBPyConnection, filters: Filters, *, landmark: dt.date | None = None,
                  alpha: float = 0.05, cox_sample: int = 50_000, cox: bool = True) -> Result:
    """Hazard ratios of NPS groups vs promoters, adjusted for segment and tenure (see module doc).

    ``cox=False`` leaves out the Cox check (the Churn page shows it; summaries quote the Poisson
    hazard ratio, which is exact on the cells)."""
    L = landmark or default_landmark(con, filters)
    q = _base(con, filters, L, "SELECT nps_group, segment, tenure, count(*) AS customers, "
                          "count(*) FILTER (WHERE event) AS events, sum(days) / $month AS exposure_months, "
                          "count(*) FILTER (WHERE churn12 AND event) AS churn12 FROM b GROUP BY ALL ORDER BY ALL",
              "churn_cells")
    q.params["month"] = MONTH_DAYS
    cells = store.run(con, q)
    z = norm.ppf(1 - alpha / 2)
    rows, warnings = [], []
    if cells["events"].sum() < 10 or cells["nps_group"].nunique() < 2:
        return Result("hazard_ratios", "Hazard ratios by NPS group", pd.DataFrame(), filters=filters.describe(),
                      warnings=("Too few churn events or NPS groups to estimate hazard ratios.",), queries=(q,))
    months, last = churn_window(L, follow_up_end(con, filters) or data_end(con))
    window = window_label(months)
    X = _design(cells)
    pois = glm.poisson(cells["events"], X, offset=np.log(cells["exposure_months"]))
    logit = glm.binomial(cells["churn12"], cells["customers"], X)
    no_events = set(cells.groupby("nps_group")["events"].sum().loc[lambda e: e == 0].index)
    no_churn12 = set(cells.groupby("nps_group")["churn12"].sum().loc[lambda e: e == 0].index)
    for g in ("passive", "detractor"):
        col = f"nps_group[{g}]"
        if col not in X.columns:
            continue
        for model, name, res, empty in ((POISSON_MODEL, "hazard ratio", pois, no_events),
                                        (f"logistic, {window} churn", "odds ratio", logit, no_churn12)):
            rows.append(_ratio_row(g, name, model, res.params[col], res.bse[col], res.pvalues[col], z,
                                   zero=(empty & {g, "promoter"})))
    for r in rows:
        if math.isnan(r["ratio"]):
            warnings.append(f"{r['measure'].capitalize()} of {r['group']}s vs promoters not estimable: {r['note']}.")
    cox_rows = _cox_rows(con, filters, L, cox_sample, alpha) if cox else []
    # the Cox rows' customers: the query that gives its sample (run, or kept with the summaries)
    cox_q = (_cox_query(con, filters, L, cox_sample),) if cox_rows else ()
    rows += cox_rows
    if cox and not cox_rows:
        warnings.append("Cox model not fitted (too few customers).")
    table = pd.DataFrame(rows)
    head = []
    det = table[(table["group"] == "detractor") & (table["measure"] == "hazard ratio")].dropna(subset=["ratio"])
    if len(det):
        r = det.iloc[0]
        head.append(Estimate("hr_detractor", "Churn hazard, detractors vs promoters", r["ratio"], r["ci_low"],
                             r["ci_high"], n=int(cells["customers"].sum()), unit="×", alpha=alpha,
                             p_value=r["p_value"], method=r["model"] + ", adjusted for segment and tenure",
                             reference=REFERENCE, filters=filters.describe(), min_n=filters.min_n))
    return Result("hazard_ratios", "Churn hazard and odds ratios by NPS group (vs promoters)", table,
                  method=f"Landmark {L}: Poisson GLM with log-exposure offset on (group × segment × tenure band) "
                         "cells, one constant hazard over the follow-up (an exponential model: no time pieces); "
                         f"grouped logistic for {window} churn (to {last}); "
                         + ("Cox proportional hazards (Breslow ties) on customer rows as a check." if cox else "the Cox check is on the Churn page."),
                  reference=REFERENCE, filters=filters.describe(), alpha=alpha, headline=tuple(head),
                  warnings=tuple(warnings), queries=(q, *cox_q),
                  extra={"tables": ("customers", "survey_responses", "churn_events"), "landmark": str(L),
                         "customers": int(cells["customers"].sum()), "events": int(cells["events"].sum())})


#: The hazard model's name: one constant hazard over the follow-up (an exponential model), with
#: no time pieces; segment and tenure band at the landmark are covariates, not time pieces.
POISSON_MODEL = "Poisson rate model (constant hazard)"


def _ratio_row(group: str, measure: str, model: str, b: float, se: float, p: float, z: float, *,
               zero: set) -> dict:
    """One ratio row; "not estimable" (NaN ratio and CI, with the reason) when a compared group
    has no events, or the coefficient or its SE is not finite or too large to exponentiate (the
    likelihood has no finite maximum)."""
    row = {"group": group, "vs": "promoter", "measure": measure, "model": model}
    reason = None
    if zero:
        reason = f"no churn in the {' or '.join(sorted(zero))} group"
    elif not (np.isfinite(b) and np.isfinite(se)) or abs(b) + z * se > 700:
        reason = "the fit did not converge to a finite ratio"
    if reason:
        return {**row, "ratio": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"),
                "p_value": float("nan"), "note": reason}
    return {**row, "ratio": math.exp(b), "ci_low": math.exp(b - z * se), "ci_high": math.exp(b + z * se),
            "p_value": float(p), "note": ""}


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
    if store.scalar(con, "SELECT max(occurred_on) FROM transactions", name="last_transaction") is None:
        return None
    L = default_landmark(con, Filters())
    return {"landmark": L.isoformat(), "sample": 50_000, "alpha": 0.05, "rows": _cox(con, Filters(), L, 50_000, 0.05)}


def _cox_rows(con, filters: Filters, L: dt.date, sample: int, alpha: float) -> list[dict]:
    """The Cox rows: the stored fit when it is this exact one (unfiltered view, same landmark,
    sample and alpha; the sample is the same rows anywhere, :func:`_cox_query`), else fitted now."""
    if summaries.unfiltered(filters):
        kept = summaries.fit(con, "cox")
        if kept and (kept["landmark"], kept["sample"], kept["alpha"]) == (L.isoformat(), sample, alpha):
            return kept["rows"]
    return _cox(con, filters, L, sample, alpha)


def _cox_query(con, filters: Filters, L: dt.date, sample: int) -> store.Query:
    """The Cox check's customers: at most ``sample``, those first by the MD5 of their id — the same
    rows on any machine and engine (DuckDB's seeded reservoir sample drew other rows under another
    number of threads), so the SQL shown gives the rows the check was fitted on."""
    return _base(con, filters, L, "SELECT nps_group, segment, tenure, days, event FROM b "
                 f"ORDER BY md5(b.customer_id) LIMIT {int(sample)}", "cox_sample")


def _cox(con, filters: Filters, L: dt.date, sample: int, alpha: float) -> list[dict]:
    df = store.run(con, _cox_query(con, filters, L, sample))
    if len(df) < 50 or df["event"].sum() < 10 or df["nps_group"].nunique() < 2:
        return []
    X = _design(df).drop(columns="const")
    res = cox_breslow(df["days"].to_numpy(float), df["event"].to_numpy(int), X.to_numpy(float))
    z = norm.ppf(1 - alpha / 2)
    out = []
    none = set(df.groupby("nps_group")["event"].sum().loc[lambda e: e == 0].index)
    model = f"Cox PH, Breslow ties ({len(df):,} customers{' sampled' if len(df) >= sample else ''})"
    for i, col in enumerate(X.columns):
        if col.startswith("nps_group["):
            out.append(_ratio_row(col[10:-1], "hazard ratio", model, res.params[i], res.bse[i], res.pvalues[i], z,
                                  zero=none & {col[10:-1], "promoter"}))
    return out


@stubs.note_excluded(stubs_matter=True, contractual=True)
def survival_curves(con: duckdb.DuckDBPyConnection, filters: Filters, *, landmark: dt.date | None = None,
                    alpha: float = 0.05, transform: str = "log-log") -> Result:
    """Kaplan–Meier survival by NPS group from the landmark (monthly steps) with pointwise bands
    (Greenwood's variance on the ``transform`` scale, see :func:`greenwood_band`)."""
    from cxmetrics.core import sm

    L = landmark or default_landmark(con, filters)
    q = _base(con, filters, L, "SELECT nps_group, ceil(days / $month) AS month, event, count(*) AS n FROM b "
                          "GROUP BY ALL ORDER BY ALL", "km_counts")
    q.params["month"] = MONTH_DAYS
    df = store.run(con, q)
    parts = []
    for g, d in df.groupby("nps_group"):
        sf = sm.SurvfuncRight(d["month"].to_numpy(float), d["event"].astype(int).to_numpy(),
                              freq_weights=d["n"].to_numpy(float))
        s, se, lo, hi = greenwood_band(sf.n_risk, sf.n_events, alpha, transform)
        parts.append(pd.DataFrame({"nps_group": g, "month": np.r_[0, sf.surv_times],
                                   "survival": np.r_[1.0, sf.surv_prob], "se": np.r_[0.0, se],
                                   "ci_low": np.r_[1.0, lo], "ci_high": np.r_[1.0, hi],
                                   "at_risk": np.r_[d["n"].sum(), sf.n_risk]}))
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return Result("survival", "Survival by NPS group (Kaplan–Meier)", table,
                  method=f"Kaplan–Meier from {L} in months; pointwise {1 - alpha:.0%} band from Greenwood's variance "
                         f"on the {transform} scale.",
                  reference=REFERENCE, filters=filters.describe(), alpha=alpha, queries=(q,),
                  extra={"tables": ("customers", "survey_responses", "churn_events"), "landmark": str(L)})


def describe_hazard(res: Result) -> str:
    if not res.headline:
        return "Not enough churn to compare NPS groups."
    e = res.headline[0]
    sig = e.p_value is not None and e.p_value < e.alpha
    return (f"Detractors churn at {e.estimate:.1f}× the rate of promoters ({e.ci_text('{:.2f}')}), "
            f"after allowing for segment and tenure" + ("." if sig else ": not significant."))


def register_cli(sub, parents) -> None:
    p = sub.add_parser("churn", parents=parents, help="churn within 12 months of a landmark (or the follow-up the data have) by a grouping, with hazard ratios")
    p.add_argument("--by", choices=sorted(GROUPINGS), default="nps_group")
    p.add_argument("--landmark", type=dt.date.fromisoformat, help="landmark date (default: from the data's dates, see default_landmark)")
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    from cxmetrics.core.output import emit, filters_from_args

    f = filters_from_args(args)
    with engines.connect_args(args) as con:  # --engine duckdb|spark, --lake
        res = churn_by(con, f, by=args.by, landmark=args.landmark, alpha=args.alpha)
        hr = hazard_ratios(con, f, landmark=args.landmark, alpha=args.alpha) if args.by == "nps_group" else None
    if hr is not None:
        res = dataclasses.replace(res, headline=hr.headline, warnings=res.warnings + hr.warnings,
                                  extra={**res.extra, "hazard_ratios": hr.table})  # the rest as returned
    emit(res, args)
    return 0
