"""NPS, CSAT and CES with honest uncertainty, overall, by dimension and over time.

Definitions (DESIGN.md "Metric definitions"):

* NPS = 100 × (promoters − detractors) / n; promoters score 9–10, detractors 0–6.
* SE = 100 × sqrt((p + d − (p − d)²) / n), p and d the promoter and detractor shares; a customer
  answering more than once: customer-clustered linearised SE. 95% CI: adjusted Wald (Rocks 2016).
* Two independent NPS: z = (NPS₁ − NPS₂) / sqrt(SE₁² + SE₂²).
* Weighted: weighted shares and Kish's effective n = (Σw)² / Σw².
* CSAT: share of 4–5 ratings ("% satisfied", Wilson score interval) and mean (t interval); CES: mean.

All counting happens in DuckDB; Python only turns the sufficient statistics into estimates.

References
----------
Reichheld, F. (2003), "The one number you need to grow", Harvard Business Review.
Rocks, B. (2016), "Margin of error for NPS" (the variance of a difference of two proportions
from one multinomial: Var = (p + d − (p − d)²) / n).
Kish, L. (1965), Survey Sampling, §11.7 (effective sample size).
"""

from __future__ import annotations

import functools
import math
from dataclasses import replace

import duckdb

from cxmetrics import store
from cxmetrics.core import lazy
from cxmetrics.core.dist import norm
from cxmetrics.core.filters import Filters
from cxmetrics.core.periods import period_start
from cxmetrics.core.results import Estimate, Result
from cxmetrics.metrics import clustered
from cxmetrics.metrics.clustered import Clusters
from cxmetrics.store import engines, summaries
from cxmetrics.store.relations import TOUCHPOINT_GROUP, detractor, nps_points, promoter

pd = lazy.module("pandas")

#: Allowed breakdown dimensions -> SQL expression over survey_responses r / customers c.
DIMENSIONS = {
    "week": "date_trunc('week', r.responded_on)",
    "month": "date_trunc('month', r.responded_on)",
    "quarter": "date_trunc('quarter', r.responded_on)",
    "segment": "c.segment",
    "region": "c.region",
    "touchpoint": TOUCHPOINT_GROUP,
    "department": "coalesce(r.department, '(none)')",
    "survey": "r.survey",
}
PERIODS = ("week", "month", "quarter")
SURVEYS = ("relationship", "transactional", "all")
METHOD = ("NPS = 100 × (share of 9–10 − share of 0–6); SE = 100·√((p + d − (p − d)²)/n), or the "
          "customer-clustered linearised SE when a customer answers more than once; 95% CI: adjusted Wald "
          "(Rocks 2016: ¾ added to promoters and detractors, 3 to n; n the effective n under weights or "
          "clustering), within −100 to 100.")
REFERENCE = ("DESIGN.md NPS definition; Rocks (2016) for the SE and the adjusted-Wald interval; Kish (1965) "
             "effective n for weights; Wolter (2007) §6 linearised variance of a ratio with clusters.")
CLUSTER_METHOD = "customer-clustered linearised SE"


@functools.lru_cache(maxsize=64)
def _z(alpha: float) -> float:
    """The normal quantile of a two-sided 1 − alpha interval (cached: a page asks for it per row)."""
    return float(norm.ppf(1 - alpha / 2))


def adjusted_wald(p: float, d: float, n: float, alpha: float = 0.05) -> tuple[float, float]:
    """Adjusted-Wald interval for p − d (NPS / 100) from shares p, d and (effective) n:
    ¾ added to promoters and to detractors and 3 to n (Rocks 2016), clipped to [−1, 1]. The
    adjusted centre moves towards 0, so with one or two answers at the boundary the interval
    can miss the estimate itself; it is then extended to reach it (a reported interval always
    contains its estimate).

    >>> [round(100 * v, 2) for v in adjusted_wald(1.0, 0.0, 5)]  # 5 of 5 promoters
    [17.49, 100.0]
    >>> [round(100 * v, 2) for v in adjusted_wald(0.0, 1.0, 1)]  # 1 detractor: reaches −100
    [-100.0, 48.5]
    """
    pa, da = (p * n + 0.75) / (n + 3), (d * n + 0.75) / (n + 3)
    half = _z(alpha) * math.sqrt(max(pa + da - (pa - da) ** 2, 0.0) / (n + 3))
    est = p - d
    return min(max(pa - da - half, -1.0), est), max(min(pa - da + half, 1.0), est)


def nps_estimate(n: int, promoters: float, detractors: float, *, sum_w: float | None = None,
                 sum_w2: float | None = None, clusters: Clusters | None = None, alpha: float = 0.05,
                 min_n: int = 30, label: str = "NPS", filters: str = "", method: str = METHOD) -> Estimate:
    """Turn counts (or weighted sums) into an NPS :class:`Estimate`.

    ``promoters`` and ``detractors`` are counts, or sums of weights when ``sum_w`` is given;
    then shares are weighted and ``n_eff`` = (Σw)² / Σw² (Kish) is used in the SE. ``clusters``
    (per-customer sums of y = w·(promoter − detractor) and w) replaces that SE with the
    customer-clustered linearised one when some customer answered more than once, and the
    effective n becomes n·(simple variance / clustered variance). ``se`` is the SE of the
    estimate; the CI is adjusted Wald (:func:`adjusted_wald`) on the effective n.

    Examples
    --------
    >>> e = nps_estimate(100, 50, 20)          # p = .5, d = .2
    >>> round(e.estimate, 1), round(e.se, 2)
    (30.0, 7.81)
    """
    if n <= 0:
        return Estimate("nps", label, float("nan"), n=0, unit="points", alpha=alpha, method=method,
                        reference=REFERENCE, filters=filters, warnings=("No responses.",), min_n=min_n)
    if sum_w is not None:
        total = sum_w
        n_eff = (sum_w ** 2 / sum_w2) if sum_w2 else float(n)
    else:
        total, n_eff = float(n), None
    p, d = promoters / total, detractors / total
    var_n = n_eff if n_eff is not None else n
    var = max(p + d - (p - d) ** 2, 0.0) / var_n
    n_ci = float(var_n)
    if clusters is not None and clusters.repeated:
        var_c = clusters.var(p - d, total)
        n_ci = var_n * var / var_c if var_c > 0 and var > 0 else float(clusters.m)
        var, n_eff = var_c, n_ci
        method = method if CLUSTER_METHOD in method else method + f" Repeat respondents: {CLUSTER_METHOD}."
    se = 100 * math.sqrt(var)
    est = 100 * (p - d)
    lo, hi = adjusted_wald(p, d, n_ci, alpha)
    warnings = ()
    if n_ci < min_n:
        warnings = (f"Only {n_ci:,.0f} {'effective ' if n_eff is not None else ''}responses "
                    f"(minimum {min_n}): indicative only.",)
    return Estimate("nps", label, est, 100 * lo, 100 * hi, n=int(n), unit="points", alpha=alpha, n_eff=n_eff,
                    method=method, reference=REFERENCE, filters=filters, warnings=warnings, min_n=min_n, se=se)


def difference(a: Estimate, b: Estimate, *, label: str | None = None) -> Estimate:
    """a − b for two independent estimates: z = (a − b) / √(SE_a² + SE_b²), two-sided p-value.
    The SEs are the estimates' own (``Estimate.se``), never backed out of their intervals.

    Examples
    --------
    >>> a, b = nps_estimate(100, 50, 20), nps_estimate(100, 30, 30)
    >>> d = difference(a, b)
    >>> round(d.estimate, 1), round(d.p_value, 4)
    (30.0, 0.0064)
    """
    se = math.hypot(a.se if a.se is not None else float("nan"), b.se if b.se is not None else float("nan"))
    diff = a.estimate - b.estimate
    z = _z(a.alpha)
    p = float(2 * (1 - norm.cdf(abs(diff) / se))) if se > 0 else float("nan")
    warnings = tuple(dict.fromkeys(a.warnings + b.warnings))
    return Estimate(f"{a.name}_difference", label or f"{a.label} − {b.label}", diff, diff - z * se, diff + z * se,
                    n=a.n + b.n, unit=a.unit, alpha=a.alpha, p_value=p,
                    method="Difference of two independent estimates; z = (a − b)/√(SE_a² + SE_b²).",
                    reference=a.reference, filters=a.filters, warnings=warnings, min_n=a.min_n, se=se)


def describe_change(diff: Estimate, before: str, after: str, *, metric: str = "NPS", unit: str = "points") -> str:
    """Plain sentence for a change, e.g. "NPS rose 4.2 points (95% CI 1.1 to 7.3) from Q2 to Q3."

    >>> d = Estimate("x", "x", 4.2, 1.1, 7.3, p_value=0.01)
    >>> describe_change(d, "Q2", "Q3")
    'NPS rose 4.2 points (95% CI 1.1 to 7.3) from Q2 to Q3.'
    >>> describe_change(Estimate("x", "x", -1.0, -5.0, 3.0, p_value=0.6), "Q2", "Q3")
    'NPS fell 1.0 points from Q2 to Q3 (95% CI -5.0 to 3.0): not significant, it may not have moved.'
    """
    if not diff.has_ci or diff.estimate != diff.estimate:
        return f"{metric} change from {before} to {after} cannot be estimated (too little data)."
    verb = "rose" if diff.estimate > 0 else "fell" if diff.estimate < 0 else "did not change"
    size = f"{abs(diff.estimate):.1f} {unit}"
    significant = diff.p_value is not None and diff.p_value < diff.alpha
    if significant:
        return f"{metric} {verb} {size} ({diff.ci_text()}) from {before} to {after}."
    return (f"{metric} {verb} {size} from {before} to {after} ({diff.ci_text()}): "
            "not significant, it may not have moved.")


# ----------------------------------------------------------------------------- SQL


def _survey_clause(survey: str) -> tuple[str, dict]:
    if survey not in SURVEYS:
        raise ValueError(f"survey must be one of {', '.join(SURVEYS)}")
    return ("TRUE", {}) if survey == "all" else ("r.survey = $survey", {"survey": survey})


#: Customer-days active in the window, per segment: the base the weights reproduce. Time-weighting
#: matches a survey fielded evenly over the window (a churned customer counts for the days active).
BASE_CTE = """
bounds AS (SELECT coalesce($date_from, min(responded_on)) AS lo, coalesce($date_to, max(responded_on)) AS hi
           FROM {summary_responses}),
base AS (
    SELECT c0.segment, CAST(sum(c0.n) AS BIGINT) AS customers,
           sum(c0.n * greatest(0, date_diff('day', greatest(c0.acquired_on, b.lo),
                                            least(coalesce(c0.churned_on, b.hi), b.hi)))) AS exposure
    FROM {summary_lifecycle} c0, bounds b
    WHERE %s AND c0.acquired_on <= b.hi AND coalesce(c0.churned_on, b.hi) >= b.lo
    GROUP BY 1
)"""


def active_base(con: duckdb.DuckDBPyConnection, filters: Filters) -> tuple[pd.DataFrame, store.Query]:
    """Customers and customer-days active in the window, per segment (the weighting target)."""
    cwhere, cparams = summaries.where(summaries.LIFECYCLE_TABLE, filters, customer="c0", dates=False)
    q = summaries.query(con, "active_base", "WITH " + (BASE_CTE % cwhere).strip() + "\nSELECT * FROM base ORDER BY 1",
                        {**cparams, "date_from": filters.date_from, "date_to": filters.date_to}, filters=filters)
    return store.run(con, q), q


def _response_source(con: duckdb.DuckDBPyConnection, filters: Filters, dim: str | None, survey: str):
    """(source, filter SQL, its parameters, survey clause, its parameters, grouping expression) for
    counts over survey responses: the responses summary when it is current, else the raw table."""
    if dim is not None and dim not in DIMENSIONS:
        raise ValueError(f"unknown dimension {dim!r}; one of {', '.join(DIMENSIONS)}")
    src = summaries.responses(con)
    where, params = filters.where(date_col="r.responded_on", customer=src.customer, department_col="r.department")
    if dim in ("segment", "region"):  # anonymous responses (no customer) have no segment or region
        where += f" AND {src.dim(DIMENSIONS[dim])} IS NOT NULL"
    sclause, sparams = _survey_clause(survey)
    return src, where, params, sclause, sparams, (src.dim(DIMENSIONS[dim]) if dim else "'all'")


def counts_query(con: duckdb.DuckDBPyConnection, filters: Filters, dim: str | None, survey: str, name: str, *,
                  by_segment: bool = False) -> store.Query:
    """Counts per ``dim`` value (``grp``); with ``by_segment`` also per segment and region (the cells
    that by-segment, by-region and weighted figures are summed from). Read from the responses
    summary when it is current (the same counts; :mod:`cxmetrics.summaries`)."""
    src, where, params, sclause, sparams, group = _response_source(con, filters, dim, survey)
    seg = src.dim(", c.segment, c.region") if by_segment else ""
    if by_segment:  # cells by segment leave out anonymous responses (no customer, no segment)
        where += f" AND {src.dim('c.segment')} IS NOT NULL"
    sql = f"""
SELECT {group} AS grp{seg}, {src.count()} AS n,
       {src.count(promoter("r.nps"))} AS promoters, {src.count(detractor("r.nps"))} AS detractors,
       {src.wsum()} AS sum_w, {src.w2sum()} AS sum_w2,
       {src.wsum(promoter("r.nps"))} AS w_promoters, {src.wsum(detractor("r.nps"))} AS w_detractors
FROM {src.source}
WHERE {where} AND {sclause} AND r.nps IS NOT NULL
GROUP BY ALL ORDER BY ALL"""
    return store.Query(name, sql, {**params, **sparams})


def _cluster_query(filters: Filters, dim: str | None, survey: str, by_department: bool = False,
                   dims: bool = True, by_quarter: bool = False) -> store.Query:
    """Per-customer sums for the clustered SE, per (dim value, segment, region): customers m, the most
    answers of one customer, and Σ_c Y_c², Σ_c Y_c·W_c, Σ_c W_c² for y = promoter − detractor (w = 1)
    and for y = weight·(promoter − detractor) (w = weight). Always from the raw responses: the
    customer is the cluster, which no counted summary keeps; one GROUP BY pass in DuckDB. An anonymous
    response (no customer id) is a cluster of its own, with no segment or region. ``by_department``:
    per department too, a customer's answers in each department their own cluster (the sums a
    scope of that one department has; answers without a department are in no scope). ``dims=False``:
    segment and region are not read (:func:`cxmetrics.metrics.clustered.per_customer`); ``by_quarter``:
    per calendar quarter too, as there."""
    where, params = filters.where(date_col="r.responded_on", customers=False, department_col="r.department")
    cwhere, cparams = filters.where(dates=False, customer="c", scope=False)
    sclause, sparams = _survey_clause(survey)
    group = DIMENSIONS[dim] if dim else "'all'"
    per = clustered.per_customer(
        group, f"{where} AND {sclause} AND r.nps IS NOT NULL",
        {"k": "count(*)", "u": f"sum({nps_points('r.nps')})", "w": "sum(r.weight)",
         "y": f"sum(r.weight * {nps_points('r.nps')})"},
        cwhere, by_department=by_department, dims=dims, by_quarter=by_quarter)
    sql = f"""
WITH per AS ({per}
)
SELECT grp, segment, region, {"department, " if by_department else ""}{"quarter, " if by_quarter else ""}count(*) AS m,
       max(k) AS max_k, sum(u * u) AS uu, sum(u * k) AS uk, sum(k * k) AS kk, sum(y * y) AS yy, sum(y * w) AS yw, sum(w * w) AS ww
FROM per GROUP BY ALL ORDER BY ALL"""
    return store.Query("nps_clusters", sql, {**params, **cparams, **sparams})


def _with_clusters(con, out: pd.DataFrame, filters: Filters, dim: str | None, survey: str,
                   ps: pd.Series | None) -> tuple[pd.DataFrame, tuple[store.Query, ...]]:
    """``out`` (one row per grp) with the cluster sums per grp; weighted sums scaled by the
    post-stratification factor (squared: they are sums of squares and products of weights). With
    them the queries that gave the sums, for the interval's "How was this computed?": those run,
    or, when they were read from the kept fit, the query that gives them (:func:`_cluster_query`)."""
    cdim = None if dim in ("segment", "region") else dim
    # segment and region are read to weight or to group by them; the overall figure is asked both
    # unweighted and weighted by the pages that show it, so one query with them serves both
    dims = ps is not None or dim is None or dim in ("segment", "region")

    def live(f: Filters) -> pd.DataFrame:
        if cdim in ("week", "month", "quarter") and f.date_from is not None and f.date_to is not None \
                and period_start(f.date_from, cdim) == period_start(f.date_to, cdim):
            # a range within one period (the days a trend's range cuts off at an end): the
            # customers' sums in it are that period's, read as the overall figure's are
            one = clustered.in_range(con, "nps", None, survey, f, _cluster_query(f, None, survey, dims=dims), dims)
            if one is not None:
                return one.assign(grp=pd.Timestamp(period_start(f.date_from, cdim))).astype({"grp": "datetime64[us]"})
        return store.run(con, _cluster_query(f, cdim, survey, dims=dims))

    like = out["grp"] if cdim else None
    with store.recorded() as ran:
        cl = clustered.kept(con, "nps", cdim, survey, filters, like=like)
        from_kept = cl is not None
        if cl is None:
            cl = clustered.in_range(con, "nps", cdim, survey, filters, _cluster_query(filters, cdim, survey, dims=dims),
                                    dims)
        if cl is None:
            answered = set(pd.to_datetime(like).dt.date) if cdim in ("week", "month", "quarter") else None
            cl = clustered.kept_periods(con, "nps", cdim, survey, filters, live, like=like, answered=answered)
            from_kept = cl is not None  # the kept periods', the days at the range's ends summed live
        if cl is None:
            cl = live(filters)
    queries = clustered.shown(ran, "nps_clusters", from_kept, lambda: _cluster_query(filters, cdim, survey, dims=dims))
    if dim in ("segment", "region"):
        cl = cl.assign(grp=cl[dim])
    if ps is not None:
        cl = cl[cl["segment"].isin(ps.index)].copy()
        f2 = cl["segment"].map(ps).astype(float) ** 2
        for col in ("yy", "yw", "ww"):
            cl[col] = cl[col] * f2
    agg = cl.groupby("grp", sort=True).agg(m=("m", "sum"), max_k=("max_k", "max"), uu=("uu", "sum"),
                                           uk=("uk", "sum"), kk=("kk", "sum"), yy=("yy", "sum"),
                                           yw=("yw", "sum"), ww=("ww", "sum")).reset_index()
    return out.merge(agg, on="grp", how="left"), queries


def _counts(con: duckdb.DuckDBPyConnection, filters: Filters, dim: str | None, survey: str, weighted: bool,
            name: str) -> tuple[pd.DataFrame, tuple[store.Query, ...]]:
    """Response counts (and weight sums) per group with their cluster sums (:func:`_counted`), once
    per page call for the same arguments: the overall figure, a breakdown and a trend ask for the
    same counts (nine calls for three distinct ones on the Executive summary). Each caller gets its
    own copy of the frame. With them the queries they come from: the counts', then the base's the
    weights are taken to (weighted) and the cluster sums'."""
    df, qs = store.page_memo(("nps._counts", id(con), filters, dim, survey, weighted, name),
                             lambda: _counted(con, filters, dim, survey, weighted, name))
    return df.copy(), qs


def _counted(con: duckdb.DuckDBPyConnection, filters: Filters, dim: str | None, survey: str, weighted: bool,
             name: str) -> tuple[pd.DataFrame, tuple[store.Query, ...]]:
    """Response counts (and weight sums) per group; ``weighted`` post-stratifies them by segment.

    Post-stratification (Kalton & Flores-Cervantes 2003, §2): a response in segment s gets the
    factor ps_s = (s's share of active customer-days) / (s's share of responses), over segments
    present in both. The factor is constant within a segment, so the weighted sums are the
    per-segment sums times ps_s (and ps_s² for the sum of squared weights): the counts are taken
    once by (group, segment) and combined here, without a second pass over the responses.
    """
    # by segment, by region and weighted figures are sums over one query's segment × region cells
    cellwise = weighted or dim in ("segment", "region")
    q = counts_query(con, filters, None if dim in ("segment", "region") else dim, survey, name, by_segment=cellwise)
    cells = store.run(con, q)
    if dim in ("segment", "region"):
        cells = cells.assign(grp=cells[dim])
    if not weighted:
        out = (cells.drop(columns=["segment", "region"]).groupby("grp", as_index=False, sort=True).sum(min_count=1)
               if cellwise else cells)
        out, cq = _with_clusters(con, out, filters, dim, survey, None)
        return out, (q, *cq)
    base, bq = active_base(con, filters)
    resp = cells.groupby("segment")["n"].sum()
    both = base.set_index("segment")["exposure"].astype(float).to_frame().join(resp.rename("resp"), how="inner")
    if not both["exposure"].sum() > 0:  # nothing to weight to (e.g. anonymous answers, stub customers only)
        return cells.iloc[0:0].drop(columns=["segment", "region"]), (q, bq)
    ps = (both["exposure"] / both["exposure"].sum()) / (both["resp"] / both["resp"].sum())
    cells = cells[cells["segment"].isin(ps.index)].copy()
    f = cells["segment"].map(ps).astype(float)
    for col in ("sum_w", "w_promoters", "w_detractors"):
        cells[col] = cells[col] * f
    cells["sum_w2"] = cells["sum_w2"] * f * f
    out = cells.drop(columns=["segment", "region"]).groupby("grp", as_index=False, sort=True).sum(min_count=1)
    out, cq = _with_clusters(con, out, filters, dim, survey, ps)
    return out, (q, bq, *cq)


def _row_clusters(row, weighted: bool) -> Clusters | None:
    if "m" not in row or pd.isna(row["m"]):
        return None
    keys = ("yy", "yw", "ww") if weighted else ("uu", "uk", "kk")
    return Clusters(int(row["m"]), int(row["max_k"]), *(float(row[k]) for k in keys))


def _row_estimate(row, weighted: bool, alpha: float, filters: Filters, label: str) -> Estimate:
    cl = _row_clusters(row, weighted)
    if weighted:
        return nps_estimate(int(row["n"]), row["w_promoters"] or 0.0, row["w_detractors"] or 0.0,
                            sum_w=row["sum_w"], sum_w2=row["sum_w2"], clusters=cl, alpha=alpha,
                            min_n=filters.min_n, label=label, filters=filters.describe())
    return nps_estimate(int(row["n"]), int(row["promoters"]), int(row["detractors"]), clusters=cl, alpha=alpha,
                        min_n=filters.min_n, label=label, filters=filters.describe())


def _table(rows: pd.DataFrame, ests: list[Estimate], dim: str | None, hide_below: int) -> pd.DataFrame:
    out = pd.DataFrame({
        dim or "group": rows["grp"].tolist(),
        "nps": [e.estimate for e in ests], "ci_low": [e.ci_low for e in ests], "ci_high": [e.ci_high for e in ests],
        "n": [e.n for e in ests], "n_eff": [e.n_eff for e in ests],
        "promoters_pct": (100 * rows["promoters"] / rows["n"]).tolist(),
        "detractors_pct": (100 * rows["detractors"] / rows["n"]).tolist(),
        "small_sample": [e.small_sample for e in ests],
    })
    hidden = out["n"] < hide_below
    for col in ("nps", "ci_low", "ci_high", "promoters_pct", "detractors_pct"):
        out.loc[hidden, col] = float("nan")
    out["hidden"] = hidden
    return out


def overall(con: duckdb.DuckDBPyConnection, filters: Filters, *, survey: str = "relationship",
            weighted: bool = False, alpha: float = 0.05) -> Estimate:
    """Overall NPS (relationship survey by default); ``weighted`` post-stratifies by segment."""
    df, qs = _counts(con, filters, None, survey, weighted, "nps_overall")
    label = "NPS (weighted)" if weighted else "NPS"
    if df.empty:
        est = nps_estimate(0, 0, 0, alpha=alpha, min_n=filters.min_n, label=label, filters=filters.describe())
        if weighted:  # e.g. only anonymous answers: no segment to weight by
            est = replace(est, warnings=("No answer here can be weighted to the customer base: none is linked to a "
                                         "segment with active customers (anonymous answers count in the unweighted "
                                         "NPS).", *est.warnings))
        return replace(est, queries=qs)
    return replace(_row_estimate(df.iloc[0], weighted, alpha, filters, label), queries=qs)


def by(con: duckdb.DuckDBPyConnection, filters: Filters, *, dim: str = "segment", survey: str = "relationship",
       weighted: bool = False, alpha: float = 0.05, hide_below: int | None = None) -> Result:
    """NPS by an allowed dimension, with CI, n and small-sample flags.

    Groups with fewer than ``hide_below`` responses (default ``filters.min_n``) show their count
    only: the estimate is hidden for confidentiality and because it is too noisy to read.
    """
    hide = filters.min_n if hide_below is None else hide_below
    rows, qs = _counts(con, filters, dim, survey, weighted, f"nps_by_{dim}")
    ests = [_row_estimate(r, weighted, alpha, filters, f"NPS {r['grp']}") for _, r in rows.iterrows()]
    head = overall(con, filters, survey=survey, weighted=weighted, alpha=alpha)
    warnings = []
    if any(e.small_sample for e in ests):
        warnings.append(f"Some groups have fewer than {filters.min_n} responses; their estimates are hidden.")
    return Result("nps", f"NPS by {dim}", _table(rows, ests, dim, hide), method=METHOD, reference=REFERENCE,
                  filters=filters.describe(), alpha=alpha, headline=(head,), warnings=tuple(warnings), queries=qs,
                  extra={"tables": ("survey_responses", "customers"), "survey": survey, "weighted": weighted})


def trend(con: duckdb.DuckDBPyConnection, filters: Filters, *, period: str = "quarter",
          survey: str = "relationship", weighted: bool = False, alpha: float = 0.05) -> Result:
    """NPS per period with CI, and the change from the previous period with its significance."""
    if period not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}")
    res = by(con, filters, dim=period, survey=survey, weighted=weighted, alpha=alpha, hide_below=0)
    rows, qs = _counts(con, filters, period, survey, weighted, f"nps_by_{period}")
    ests = [_row_estimate(r, weighted, alpha, filters, f"NPS {pd.Timestamp(r['grp']):%Y-%m-%d}")
            for _, r in rows.iterrows()]
    table = res.table.rename(columns={period: "period"})
    changes, pvals, sentences = [float("nan")], [float("nan")], [""]
    for prev, cur, p_row, c_row in zip(ests, ests[1:], rows["grp"], rows["grp"][1:], strict=False):
        d = difference(cur, prev)
        changes.append(d.estimate)
        pvals.append(d.p_value)
        sentences.append(describe_change(d, period_label(p_row, period), period_label(c_row, period)))
    table["change"] = changes[: len(table)]
    table["p_value"] = pvals[: len(table)]
    table["significant"] = table["p_value"] < alpha
    table["finding"] = sentences[: len(table)]
    return Result("nps_trend", f"NPS by {period}", table, method=METHOD + " Change vs the previous period: "
                  "two-sample z test.", reference=REFERENCE, filters=filters.describe(), alpha=alpha,
                  headline=res.headline, warnings=res.warnings, queries=qs,
                  extra={"tables": ("survey_responses", "customers"), "period": period})


def period_label(value, period: str) -> str:
    ts = pd.Timestamp(value)
    if period == "quarter":
        return f"{ts.year} Q{ts.quarter}"
    if period == "month":
        return f"{ts:%b %Y}"
    return f"week of {ts:%d %b %Y}"


def last_change(con: duckdb.DuckDBPyConnection, filters: Filters, *, period: str = "quarter",
                survey: str = "relationship", alpha: float = 0.05) -> tuple[Estimate | None, str]:
    """The change between the last two complete periods, and its sentence."""
    tr = trend(con, filters, period=period, survey=survey, alpha=alpha)
    if len(tr.table) < 2:
        return None, "Not enough periods to compare."
    rows, qs = _counts(con, filters, period, survey, False, f"nps_by_{period}")
    rows = rows.tail(2)
    a, b = (_row_estimate(r, False, alpha, filters, "NPS") for _, r in rows.iterrows())
    d = replace(difference(b, a, label=f"Change vs previous {period}"), queries=qs)
    return d, describe_change(d, period_label(rows["grp"].iloc[0], period), period_label(rows["grp"].iloc[1], period))


# ----------------------------------------------------------------------------- page data


# ----------------------------------------------------------------------------- CLI


def register_cli(sub, parents) -> None:
    p = sub.add_parser("nps", parents=parents, help="NPS overall or by a dimension, with CIs")
    p.add_argument("--by", choices=sorted(DIMENSIONS), help="break down by this dimension")
    p.add_argument("--period", choices=PERIODS, help="trend by period with change and significance")
    p.add_argument("--survey", choices=SURVEYS, default="relationship")
    p.add_argument("--weighted", action="store_true", help="post-stratify by segment to the customer base")
    p.set_defaults(func=_cli, metric_name="nps")


def _cli(args) -> int:
    from cxmetrics.core.output import emit, estimate_text, filters_from_args

    f = filters_from_args(args)
    with engines.connect_args(args) as con:  # --engine duckdb|spark, --lake
        if args.period:
            res = trend(con, f, period=args.period, survey=args.survey, weighted=args.weighted, alpha=args.alpha)
        elif args.by:
            res = by(con, f, dim=args.by, survey=args.survey, weighted=args.weighted, alpha=args.alpha)
        else:
            res = overall(con, f, survey=args.survey, weighted=args.weighted, alpha=args.alpha)
    emit(res, args, None if hasattr(res, "table") else
         lambda e: estimate_text(e) + "".join(f"\nwarning: {w}" for w in e.warnings))
    return 0
