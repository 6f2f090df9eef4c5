"""Share of wallet: stated, observed and the Wallet Allocation Rule, by NPS group.

* stated   = the survey's share_of_wallet_pct;
* observed = a customer's revenue in the last 12 months / their category_wallet (capped at 100%);
* WAR      = (1 − rank / (brands + 1)) × 2 / brands (Keiningham et al. 2011), from brand_rank and
  brands_used on the survey.

Each customer counts once, with their latest relationship response. Means per NPS group with t
intervals; the relation between the NPS score and stated share of wallet is an OLS slope computed
from sums in DuckDB (points of share of wallet per NPS point, with its CI).

References
----------
Keiningham, T. L., Aksoy, L., Buoye, A. & Cooil, B. (2011), "Customer loyalty isn't enough. Grow
your share of wallet", Harvard Business Review 89(10): the Wallet Allocation Rule.
"""

from __future__ import annotations

import dataclasses
import math

import duckdb

from cxmetrics import store
from cxmetrics.core import lazy
from cxmetrics.core.dist import norm
from cxmetrics.core.dist import t as student_t
from cxmetrics.core.filters import Filters
from cxmetrics.core.results import Estimate, Result
from cxmetrics.store import engines, relations, stubs, summaries

pd = lazy.module("pandas")


def war(rank: float, brands: float) -> float:
    """Wallet Allocation Rule share for a brand ranked ``rank`` of ``brands`` used.

    >>> war(1, 1), round(war(1, 2), 4), round(war(2, 2), 4), round(war(1, 3), 4)
    (1.0, 0.6667, 0.3333, 0.5)
    """
    return (1 - rank / (brands + 1)) * 2 / brands


#: Per NPS group, the sums of each share-of-wallet measure from the wallet cells (per segment,
#: region and latest NPS answer; :data:`cxmetrics.relations.WALLET`).
_SQL = f"""
SELECT %s{relations.nps_group("w.nps")} AS nps_group,
       CAST(sum(w.customers) AS BIGINT) AS customers,
       CAST(sum(w.n_stated) AS BIGINT) AS n_stated, sum(w.s_stated) AS s_stated, sum(w.ss_stated) AS ss_stated,
       CAST(sum(w.n_obs) AS BIGINT) AS n_obs, sum(w.s_obs) AS s_obs, sum(w.ss_obs) AS ss_obs,
       CAST(sum(w.n_war) AS BIGINT) AS n_war, sum(w.s_war) AS s_war, sum(w.ss_war) AS ss_war,
       sum(w.sx) AS sx, sum(w.sxx) AS sxx, sum(w.sxy) AS sxy
FROM {{summary_wallet}} w WHERE %s GROUP BY ALL
"""


def _cells(con: duckdb.DuckDBPyConnection, filters: Filters, by_segment: bool = False) -> tuple[pd.DataFrame, store.Query]:
    """Per NPS group (and per segment) sums of each share-of-wallet measure (one query serves both results)."""
    where, params = summaries.where(summaries.WALLET_TABLE, filters, customer="w", dates=False)
    q = summaries.query(con, "wallet_by_group", _SQL % ("w.segment, " if by_segment else "", where), params,
                        filters=filters)
    return store.run(con, q), q


def stated_by_segment(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """Per segment and NPS group: the mean stated share of wallet (``stated_pct``), its standard
    error and n, as :func:`by_group` gives them under a filter of that one segment, from one query."""
    df, _ = _cells(con, filters, by_segment=True)
    stats = [_mean_ci(r.n_stated, r.s_stated, r.ss_stated, 0.05) for r in df.itertuples()]
    return pd.DataFrame({"segment": df["segment"], "nps_group": df["nps_group"],
                         "stated_pct": [m for m, _, _, _ in stats], "stated_se": [se for _, _, _, se in stats],
                         "stated_n": df["n_stated"].astype(int)})


def _mean_ci(n, s, ss, alpha):
    """Mean, t interval and standard error from n, Σx and Σx²."""
    if not n or n < 2:
        return float("nan"), float("nan"), float("nan"), float("nan")
    m = s / n
    se = math.sqrt(max((ss - n * m * m) / (n - 1), 0.0) / n)
    h = float(student_t.ppf(1 - alpha / 2, n - 1)) * se
    return m, m - h, m + h, se


@stubs.note_excluded()
def by_group(con: duckdb.DuckDBPyConnection, filters: Filters, *, alpha: float = 0.05) -> Result:
    """Mean stated, observed and WAR share of wallet per NPS group, with t intervals, and the gap."""
    df, q = _cells(con, filters)
    recs = []
    for _, r in df.iterrows():
        rec = {"nps_group": r["nps_group"], "customers": int(r["customers"])}
        for key, label in (("stated", "stated"), ("obs", "observed"), ("war", "war")):
            m, lo, hi, se = _mean_ci(r[f"n_{key}"], r[f"s_{key}"], r[f"ss_{key}"], alpha)
            rec.update({f"{label}_pct": m, f"{label}_ci_low": lo, f"{label}_ci_high": hi, f"{label}_se": se,
                        f"{label}_n": int(r[f"n_{key}"])})
        recs.append(rec)
    table = pd.DataFrame(recs)
    order = {"promoter": 0, "passive": 1, "detractor": 2}
    if len(table):
        table = table.sort_values("nps_group", key=lambda s: s.map(order)).reset_index(drop=True)
    head = []
    t = table.set_index("nps_group") if len(table) else None
    if t is not None and {"promoter", "detractor"} <= set(t.index):
        p, d = t.loc["promoter"], t.loc["detractor"]
        gap = p["stated_pct"] - d["stated_pct"]
        se = math.hypot(p["stated_se"], d["stated_se"])
        z = float(norm.ppf(1 - alpha / 2))
        head.append(Estimate("sow_gap", "Share-of-wallet gap, promoters − detractors (stated)", gap, gap - z * se,
                             gap + z * se, n=int(p["stated_n"] + d["stated_n"]), unit="points", alpha=alpha,
                             method="difference of group means (Welch-type normal interval)",
                             filters=filters.describe(), se=se))
    return Result("wallet", "Share of wallet by NPS group", table,
                  method="Each customer's latest relationship response; stated SoW, observed = 12-month revenue / "
                         "category wallet (contract customers), WAR from brand rank; t intervals.",
                  reference="Keiningham et al. (2011), HBR 89(10).", filters=filters.describe(), alpha=alpha,
                  headline=tuple(head), queries=(q,),
                  extra={"tables": ("survey_responses", "customers", "transactions")})


def measured(res: Result) -> int:
    """How many share-of-wallet values (stated, observed or WAR, over the NPS groups) ``res`` of
    :func:`by_group` rests on: 0 means there is nothing to draw (every mean is NaN)."""
    t = res.table
    cols = [c for c in ("stated_n", "observed_n", "war_n") if c in t]
    return int(t[cols].to_numpy().sum()) if len(t) and cols else 0


@stubs.note_excluded()
def nps_relation(con: duckdb.DuckDBPyConnection, filters: Filters, *, alpha: float = 0.05) -> Estimate:
    """OLS slope of stated share of wallet on the NPS score (points per NPS point), from sums."""
    df, q = _cells(con, filters)
    r = {"n": df["n_stated"].sum(), "sy": df["s_stated"].sum(), "syy": df["ss_stated"].sum(),
         **{k: df[k].sum() for k in ("sx", "sxx", "sxy")}}
    n = int(r["n"] or 0)
    if n < 3:
        return Estimate("sow_slope", "Share of wallet per NPS point", float("nan"), n=n, filters=filters.describe(),
                        warnings=("Too few responses with a stated share of wallet.",), queries=(q,))
    sxx = r["sxx"] - r["sx"] ** 2 / n
    sxy = r["sxy"] - r["sx"] * r["sy"] / n
    syy = r["syy"] - r["sy"] ** 2 / n
    slope = sxy / sxx
    resid = max(syy - slope * sxy, 0.0) / (n - 2)
    se = math.sqrt(resid / sxx)
    tq = float(student_t.ppf(1 - alpha / 2, n - 2))
    p = 2 * (1 - student_t.cdf(abs(slope / se), n - 2)) if se > 0 else 0.0
    return Estimate("sow_slope", "Share of wallet per NPS point", slope, slope - tq * se, slope + tq * se, n=n,
                    unit="points of SoW", alpha=alpha, p_value=p, method="OLS slope of stated SoW on NPS score",
                    reference="Ordinary least squares from sufficient statistics.", filters=filters.describe(),
                    min_n=filters.min_n, queries=(q,))


def register_cli(sub, parents) -> None:
    p = sub.add_parser("wallet", parents=parents, help="share of wallet (stated, observed, WAR) by NPS group")
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    from cxmetrics.core.output import emit, filters_from_args

    f = filters_from_args(args)
    with engines.connect_args(args) as con:  # --engine duckdb|spark, --lake
        res = by_group(con, f, alpha=args.alpha)
        slope = nps_relation(con, f, alpha=args.alpha)
    emit(dataclasses.replace(res, headline=res.headline + (slope,)), args)  # warnings and assumptions as returned
    return 0
