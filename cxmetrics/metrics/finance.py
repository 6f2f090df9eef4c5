"""Finance checks: revenue reconciliation against booked totals, and net revenue retention.

Reconciliation compares the revenue in the store (sum of ``transactions.amount`` per month) with
the total finance booked for that month (``booked_revenue``), and flags months whose gap exceeds
the ``reconciliation_tolerance`` assumption. A money figure built on a flagged month says so.

Net revenue retention (NRR) = revenue in the last 12 months from customers who already had
revenue in the 12 months before, divided by their revenue in those 12 months. The earned growth
rate (Reichheld, Darnell & Burns 2021, "Winning on Purpose") adds the share of revenue from
*earned* new customers (referrals) and subtracts 100%; the data contract has no acquisition
channel, so we report NRR and say that EGR cannot be computed yet.
"""

from __future__ import annotations

import datetime as dt
import json
import math

import duckdb

from cxmetrics import store
from cxmetrics.core import lazy, roles
from cxmetrics.core.dist import norm
from cxmetrics.core.filters import Filters
from cxmetrics.core.results import Estimate, Result
from cxmetrics.store import assumptions, summaries

pd = lazy.module("pandas")

_RECON_SQL = """
WITH store_rev AS (
    SELECT date_trunc('month', t.occurred_on)::DATE AS period, sum(t.revenue) AS store_revenue,
           CAST(sum(t.transactions) AS BIGINT) AS transactions
    FROM {{summary_revenue}} t
    WHERE {where}
    GROUP BY 1
)
SELECT coalesce(b.period, s.period) AS period, s.store_revenue, s.transactions, b.amount AS booked_revenue,
       b.entered_by
FROM store_rev s FULL OUTER JOIN booked_revenue b ON b.period = s.period
WHERE {period_where}
ORDER BY 1
"""


def reconciliation(con: duckdb.DuckDBPyConnection, filters: Filters, *, tolerance: float | None = None) -> Result:
    """Store revenue vs booked revenue per month; months beyond the tolerance are flagged.

    Booked revenue is a company total, so the comparison is only meaningful without segment,
    region or department restrictions; with them the booked column is left empty and a warning
    says why.
    """
    used = {}
    if tolerance is None:
        a = assumptions.current(con).get("reconciliation_tolerance")
        tolerance = a.value if a else 0.02
        if a:
            used["reconciliation_tolerance"] = a
    where, params = summaries.where(summaries.REVENUE_TABLE, filters, date_col="t.occurred_on", customer="t")
    period_where = ["TRUE"]
    if filters.date_from is not None:
        period_where.append("coalesce(b.period, s.period) >= date_trunc('month', $date_from)")
    if filters.date_to is not None:
        period_where.append("coalesce(b.period, s.period) <= $date_to")
    sql = _RECON_SQL.format(where=where, period_where=" AND ".join(period_where))
    q = summaries.query(con, "reconciliation", sql, params, filters=filters)
    df = store.run(con, q)
    warnings = []
    partial = bool(filters.segments or filters.regions or filters.scope.restricted)
    if partial:
        df["booked_revenue"] = float("nan")
        warnings.append("Booked revenue is a company total: it is not compared under segment, region or "
                        "department filters.")
    booked_from = df.loc[df["booked_revenue"].notna(), "period"].min()
    if not partial and pd.notna(booked_from):  # finance's record starts here; earlier months are history
        df = df[df["period"] >= booked_from]
    df = df.dropna(subset=["store_revenue", "booked_revenue"], how="all").reset_index(drop=True)
    df["difference"] = df["booked_revenue"] - df["store_revenue"]
    df["difference_pct"] = df["difference"] / df["booked_revenue"]
    df["flagged"] = df["difference_pct"].abs() > tolerance
    missing = df["booked_revenue"].isna() & ~partial
    df.loc[missing, "flagged"] = False
    flagged = df[df["flagged"]]
    for _, r in flagged.iterrows():
        warnings.append(f"{pd.Timestamp(r['period']):%Y-%m}: store revenue differs from booked revenue by "
                        f"{r['difference_pct']:+.1%} (tolerance {tolerance:.0%}).")
    if missing.any() and not partial:
        warnings.append(f"{int(missing.sum())} month(s) have no booked total to compare with.")
    return Result(
        name="reconciliation", label="Revenue reconciliation", table=df,
        method=f"Monthly sum of transactions vs booked revenue; |difference| / booked > {tolerance:.1%} is flagged.",
        reference="Finance close policy (reconciliation_tolerance assumption).",
        filters=filters.describe(), assumptions=assumptions.cite(used), warnings=tuple(warnings), queries=(q,),
        extra={"tables": ("transactions",), "flagged_periods": [str(p)[:7] for p in flagged["period"]],
               "tolerance": tolerance},
    )


def flagged_periods(con: duckdb.DuckDBPyConnection, filters: Filters) -> list[str]:
    return reconciliation(con, Filters()).extra["flagged_periods"] if not filters.scope.restricted else []


def set_booked(con: duckdb.DuckDBPyConnection, period: dt.date, amount: float, *, actor: str, role: str) -> None:
    """Finance enters (or corrects) the booked revenue of a month. Validated and audited."""
    if not roles.can(role, "edit_assumptions"):
        raise ValueError(f"the {role} role may not enter booked revenue (finance only)")
    amount = float(amount)
    if not math.isfinite(amount) or amount < 0:
        raise ValueError("booked revenue must be a non-negative number")
    period = dt.date(period.year, period.month, 1)
    before = con.execute("SELECT amount FROM booked_revenue WHERE period = ?", [period]).fetchone()
    with store.transaction(con):
        con.execute("INSERT INTO booked_revenue VALUES (?, ?, ?, ?) ON CONFLICT (period) DO UPDATE SET "
                    "amount = excluded.amount, entered_by = excluded.entered_by, entered_at = excluded.entered_at",
                    [period, amount, actor, store.now()])
        store.bump_version(con, ["booked_revenue"])
        store.audit(con, actor=actor, role=role, action="booked_revenue", object=f"{period:%Y-%m}",
                    outcome="accepted", detail=json.dumps({"before": before[0] if before else None, "after": amount}))


#: The sums for the ratio estimator of this year's over last year's revenue (to the last transaction
#: date), over the customers with revenue in the previous 12 months (:data:`cxmetrics.relations.NRR_CELLS`).
_NRR_SQL = """
SELECT CAST(coalesce(sum(t.n), 0) AS BIGINT) AS n, sum(t.sx) AS sx, sum(t.sy) AS sy, sum(t.sxx) AS sxx,
       sum(t.syy) AS syy, sum(t.sxy) AS sxy, (SELECT max(occurred_on) FROM transactions) AS last
FROM {summary_nrr_cells} t WHERE %s
"""


#: Why NRR ignores the date range (a warning on it under a range).
NRR_WINDOW = "The date range does not apply: NRR is always the last 12 months of data against the 12 before."


def net_revenue_retention(con: duckdb.DuckDBPyConnection, filters: Filters, *, alpha: float = 0.05) -> Estimate:
    """NRR over the last 12 months of data, with a delta-method CI for a ratio of sums.

    For customers i with prior-year revenue y_i > 0 and current-year revenue x_i,
    R = Σx / Σy and Var(R) ≈ n / (Σy)² · s², s² = the sample variance of (x_i − R·y_i)
    (Cochran 1977, "Sampling Techniques", ratio estimator, eq. 6.9).
    """
    dated = filters.dated
    filters = filters.undated()  # always the last 12 months of data and the 12 before
    where, params = summaries.where(summaries.NRR_CELLS_TABLE, filters, customer="t", dates=False)
    q = summaries.query(con, "net_revenue_retention", _NRR_SQL % where, params, filters=filters)
    r = store.run(con, q).iloc[0]
    n = int(r["n"] or 0)
    if n < 2 or not r["sy"]:
        return Estimate("nrr", "Net revenue retention", float("nan"), n=n, unit="%",
                        method="Not enough customers with revenue in both years.", filters=filters.describe(),
                        warnings=("No customers with revenue in the previous 12 months.",), min_n=filters.min_n,
                        queries=(q,))
    ratio = r["sx"] / r["sy"]
    # Σ(x − R y)² = Σx² − 2R Σxy + R² Σy²
    ss = r["sxx"] - 2 * ratio * r["sxy"] + ratio ** 2 * r["syy"]
    s2 = max(ss, 0.0) / (n - 1)
    se = math.sqrt(n * s2) / r["sy"]
    z = norm.ppf(1 - alpha / 2)
    return Estimate(
        "nrr", "Net revenue retention", 100 * ratio, 100 * (ratio - z * se), 100 * (ratio + z * se), n=n,
        unit="%", alpha=alpha,
        method=(f"Revenue in the 12 months to {r['last']} from customers with revenue in the 12 months before, "
                "divided by their revenue then; delta-method CI for a ratio estimator."),
        reference="Cochran (1977), Sampling Techniques, eq. 6.9; Reichheld et al. (2021) for NRR/EGR.",
        filters=filters.describe(),
        warnings=("Earned growth rate needs each new customer's acquisition channel (referral or not), "
                  "which the data contract does not hold yet: only NRR is shown.",)
        + ((NRR_WINDOW,) if dated else ()),
        min_n=filters.min_n, queries=(q,))


def audit_log(con: duckdb.DuckDBPyConnection, filters: Filters, limit: int = 500) -> pd.DataFrame:
    """The append-only audit log, newest first (imports, edits, exports, role changes).

    Audit and import rows are store-wide: they carry no department, and one import or edit can
    touch every department's rows, so they cannot be cut to a department. A restricted scope (a
    department role, or an unknown role) gets the columns and no rows (fail closed); only
    unrestricted roles see the log. The same rule holds for :func:`lineage`.
    """
    rows = 0 if filters.scope.restricted else limit
    return con.execute('SELECT audit_id, "at", actor, role, action, object, outcome, detail FROM audit '
                       "ORDER BY audit_id DESC LIMIT ?", [rows]).df()


def lineage(con: duckdb.DuckDBPyConnection, filters: Filters, tables) -> pd.DataFrame:
    """The accepted imports that fed ``tables`` (``store.lineage``), for unrestricted scopes only:
    a restricted scope gets the columns and no rows (see :func:`audit_log`)."""
    out = store.lineage(con, tuple(tables))
    return out.iloc[0:0] if filters.scope.restricted else out
