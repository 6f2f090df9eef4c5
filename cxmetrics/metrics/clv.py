"""Contractual CLV by NPS group, the value of a promoter, and the Customer value page.

CLV (DESIGN.md): CLV = Σ_{t=1..H} m · S(t) / (1 + d)^t, in months here: m = a group's monthly
margin (revenue per active customer-month over the last 12 months × the gross_margin
assumption), S(t) = exp(−λ t) with λ the group's churn hazard per month (events / exposure from
the landmark design in :mod:`cxmetrics.churn`), d the monthly rate equivalent to the annual
discount_rate assumption and H = 12 × horizon_years.

Intervals come from simulation: log λ ~ Normal(log λ̂, 1/√events) and m ~ Normal(m̂, SE of the
mean revenue per customer-month), 4,000 draws, percentile interval.

References
----------
Gupta, S., Lehmann, D. R. & Stuart, J. A. (2004), "Valuing customers", JMR 41(1).
Fader, P. S. & Hardie, B. G. S. (2010), "Customer-base valuation in a contractual setting",
Marketing Science 29(1) (survival-based CLV).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, replace
from statistics import NormalDist

import duckdb

from cxmetrics import store
from cxmetrics.core import lazy
from cxmetrics.core.filters import Filters
from cxmetrics.core.results import Estimate, Result
from cxmetrics.metrics import churn
from cxmetrics.store import assumptions, engines, stubs, summaries

np = lazy.module("numpy")
pd = lazy.module("pandas")

GROUPS = ("promoter", "passive", "detractor")


def clv_formula(margin: float | np.ndarray, hazard: float | np.ndarray, monthly_discount: float,
                months: int) -> float | np.ndarray:
    """Σ_{t=1..months} margin · exp(−hazard·t) / (1 + d)^t (vectorised over margin and hazard).

    A geometric series in r = exp(−hazard)/(1 + d), summed in closed form: r·(1 − r^M)/(1 − r),
    written with ``expm1`` of log r so that it stays exact as r nears 1 (M when r = 1). The term
    by term sum cost draws × months operations for each simulated interval.

    >>> round(float(clv_formula(100.0, 0.0, 0.0, 12)), 6)
    1200.0
    >>> round(float(clv_formula(100.0, math.log(2), 0.0, 2)), 6)   # 100·(1/2) + 100·(1/4)
    75.0
    """
    log_r = -np.asarray(hazard, float) - math.log1p(monthly_discount)
    with np.errstate(invalid="ignore", divide="ignore"):
        series = np.exp(log_r) * np.expm1(months * log_r) / np.expm1(log_r)
    return np.asarray(margin, float) * np.where(log_r == 0, float(months), series)


#: The CLV inputs per NPS group, segment and tenure band (:data:`cxmetrics.relations.CLV_CELLS`:
#: stored for the default landmark, else computed for these customers only).
_CELLS = """SELECT k.nps_group, k.segment, k.tenure, CAST(sum(k.customers) AS BIGINT) AS customers,
       CAST(sum(k.events) AS BIGINT) AS events, sum(k.days) / $month AS exposure_months, sum(k.revenue) AS revenue,
       sum(k.revenue_months) AS revenue_months, sum(k.rev_sq) AS rev_sq
FROM {summary_clv_cells} k WHERE %s GROUP BY ALL ORDER BY ALL
"""


#: Why there is no CLV when contract customers answered but no revenue is in the store.
NO_REVENUE = "No revenue in the last 12 months for these customers: import transactions on the Data page to value them."


@stubs.note_excluded(stubs_matter=True, contractual=True)
def clv_by_group(con: duckdb.DuckDBPyConnection, filters: Filters, *, by_segment: bool = False,
                 by_tenure: bool = False, landmark: dt.date | None = None, alpha: float = 0.05, draws: int = 4000, seed: int = 7) -> Result:
    """Contractual CLV per NPS group (optionally × segment, × tenure band) with simulation intervals.
    Computed once per page call for the same arguments (the Executive summary asks for the same
    strata from the bridge and the KPI scorecard); each caller gets its own copy of the table."""
    res = store.page_memo(("clv.clv_by_group", id(con), filters, by_segment, by_tenure, landmark, alpha, draws, seed),
                          lambda: _clv_by_group(con, filters, by_segment, by_tenure, landmark, alpha, draws, seed))
    return replace(res, table=res.table.copy(), extra=dict(res.extra))


def _clv_by_group(con: duckdb.DuckDBPyConnection, filters: Filters, by_segment: bool, by_tenure: bool,
                  landmark: dt.date | None, alpha: float, draws: int, seed: int) -> Result:
    used = assumptions.current(con)
    gm, d_year, h_years = (used[k].value for k in ("gross_margin", "discount_rate", "horizon_years"))
    d_month = (1 + d_year) ** (1 / 12) - 1
    months = int(round(12 * h_years))
    L = landmark or churn.default_landmark(con, filters)
    where, params = summaries.where(summaries.CLV_CELLS_TABLE, filters, customer="k", dates=False)
    q = summaries.query(con, "clv_inputs", _CELLS % where, {**params, "month": churn.MONTH_DAYS}, filters=filters,
                        landmark=L, end=churn.follow_up_end(con, filters))
    cells = store.run(con, q)
    keys = ["nps_group"] + (["segment"] if by_segment else []) + (["tenure"] if by_tenure else [])
    g = cells.groupby(keys, as_index=False).sum(numeric_only=True)
    col = {c: g[c].to_numpy(float) for c in ("customers", "events", "exposure_months", "revenue", "revenue_months",
                                              "rev_sq")}
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = np.where(col["exposure_months"] > 0, col["events"] / col["exposure_months"], np.nan)
        m_rev = np.where(col["revenue_months"] > 0, col["revenue"] / col["revenue_months"], np.nan)
        # SE of revenue per customer-month (ratio estimator with per-customer months as weights)
        var = np.where(col["revenue_months"] > 0, np.maximum(
            col["rev_sq"] / np.maximum(col["revenue_months"], 1) - m_rev ** 2, 0.0), np.nan)
        se_m = np.sqrt(var / np.maximum(col["customers"], 1))
        point = clv_formula(m_rev * gm, lam, d_month, months)
    # every simulated group's draws at once, in the order one group after another would draw them
    # (its churn hazard's, then its margin's): the same numbers as drawing group by group
    lo, hi, sd = (np.full(len(g), np.nan) for _ in range(3))
    sim = np.flatnonzero((col["events"] > 0) & ~np.isnan(se_m))
    if len(sim):
        z = np.random.default_rng(seed).standard_normal((len(sim), 2, draws))
        lam_d = np.exp(np.log(lam[sim])[:, None] + (1 / np.sqrt(col["events"][sim]))[:, None] * z[:, 0])
        m_d = (m_rev[sim][:, None] + se_m[sim][:, None] * z[:, 1]) * gm
        sims = clv_formula(m_d, lam_d, d_month, months)
        lo[sim], hi[sim] = np.quantile(sims, [alpha / 2, 1 - alpha / 2], axis=1)
        sd[sim] = np.std(sims, axis=1, ddof=1)
    columns = [*keys, "customers", "churn_events", "monthly_churn_pct", "monthly_revenue", "monthly_revenue_se",
               "monthly_margin", "clv", "clv_se", "ci_low", "ci_high", "small_sample"]
    # the columns are named even with no group (e.g. only anonymous answers): charts and pages read them
    table = pd.DataFrame({**{k: g[k] for k in keys}, "customers": g["customers"].astype("int64"),
                          "churn_events": g["events"].astype("int64"), "monthly_churn_pct": 100 * lam,
                          "monthly_revenue": m_rev, "monthly_revenue_se": se_m, "monthly_margin": m_rev * gm,
                          "clv": point, "clv_se": sd, "ci_low": lo, "ci_high": hi,
                          "small_sample": col["customers"] < filters.min_n}, columns=columns) if len(g) else (
        pd.DataFrame([], columns=columns))
    order = {g: i for i, g in enumerate(GROUPS)}
    if len(table):
        table = table.sort_values(keys, key=lambda s: s.map(order) if s.name == "nps_group" else s).reset_index(drop=True)
    cited = {k: used[k] for k in ("gross_margin", "discount_rate", "horizon_years")}
    warnings = ()
    if len(table) and not (table["monthly_revenue"] == table["monthly_revenue"]).any():
        # customers and answers but no revenue: a CLV of nan is no figure; say what is missing
        table, warnings = table.iloc[0:0], (NO_REVENUE,)
    return Result("clv", "Customer lifetime value by NPS group" + (" and segment" if by_segment else "")
                  + (" and tenure band" if by_tenure else ""), table,
                  method=f"CLV = Σ_(t=1..{months}) m·exp(−λt)/(1+d)^t per group: λ = churn events / exposure "
                         f"from {L}, m = revenue per active customer-month (last 12 months) × gross margin; "
                         f"{draws:,}-draw simulation interval.",
                  reference="Gupta, Lehmann & Stuart (2004); Fader & Hardie (2010).", filters=filters.describe(),
                  alpha=alpha, assumptions=assumptions.cite(cited), queries=(q,), warnings=warnings,
                  extra={"tables": ("customers", "transactions", "survey_responses", "churn_events"),
                         "landmark": str(L), "months": months, "monthly_discount": d_month, "gross_margin": gm})


#: Strata within which NPS groups are compared before money is computed (DESIGN.md "Money is
#: segment-adjusted"): segment, and tenure band because churn (hence CLV) depends on it.
STRATA = ("segment", "tenure")

MIX_NOTE = ("The crude figure compares groups with different customer mixes (promoters are more often "
            "high-value segments and long-tenure customers); the adjusted figure compares them within "
            "segment and tenure band and weights by the mix of the customers who would move, so it counts "
            "only the difference that goes with NPS.")


def standardise(t: pd.DataFrame, groups: tuple[str, ...], cols: dict[str, str], *,
                strata: tuple[str, ...] = STRATA, group_col: str = "nps_group",
                mix: str | tuple[str, ...] | None = None) -> tuple[dict, dict]:
    """Direct standardisation of per-stratum values to a base's mix.

    ``t`` has one row per group × stratum with ``customers`` and, for each ``value: se`` in
    ``cols``, a value and its standard error. For each group g and column v returns
    (Σ_s w_s v_gs, √Σ_s w_s² se_gs²), with w_s the share in stratum s of the customers of the
    ``mix`` group(s) — the customers a scenario moves, e.g. the detractors — or of every customer of
    ``t`` when ``mix`` is None. Only strata where every group in ``groups`` is present with finite values are
    used; when they hold less than 95% of the base, coarser strata (dropping the last one) are
    tried. ``info`` gives the strata used and the share of the base they cover.
    """
    # plain Python over the rows (a few dozen: groups × strata), not pandas group-bys: this runs
    # several times on every page that shows money
    names = [*cols, *cols.values()]
    values = t[names].to_numpy(float)
    group = t[group_col].tolist()
    customers = t["customers"].to_numpy(float)
    mixing = set((mix,) if isinstance(mix, str) else mix) if mix is not None else None
    usable = [g in groups and bool(np.isfinite(row).all()) for g, row in zip(group, values, strict=True)]
    for k in range(len(strata), 0, -1):
        st = [c for c in strata[:k] if c in t.columns]
        if not st:
            break
        cells = list(zip(*(t[c].tolist() for c in st), strict=True))
        known = [not any(pd.isna(v) for v in cell) for cell in cells]  # a group-by leaves out a missing key
        key = (lambda cell: cell[0]) if len(st) == 1 else tuple
        total: dict = {}
        for i, cell in enumerate(cells):
            if known[i] and (mixing is None or group[i] in mixing) and customers[i] == customers[i]:
                total[key(cell)] = total.get(key(cell), 0.0) + customers[i]
        # per group and stratum: its finer cells collapsed, customer-weighted
        rows_of: dict = {}
        for i, cell in enumerate(cells):
            if usable[i] and known[i]:
                rows_of.setdefault((group[i], key(cell)), []).append(i)
        ok: dict = {}
        for (g, cell), rows in rows_of.items():
            n = float(np.nansum([customers[i] for i in rows]))
            est = {}
            with np.errstate(divide="ignore", invalid="ignore"):  # a cell of no customers: left out, as NaN
                for j, v in enumerate(cols):
                    wv = [customers[i] / n * values[i, j] for i in rows]
                    wse = [(customers[i] / n * values[i, len(cols) + j]) ** 2 for i in rows]
                    est[v] = (float(np.nansum(wv)), math.sqrt(float(np.nansum(wse))))
            ok[g, cell] = est
        present: dict = {}
        for g, cell in ok:
            present.setdefault(cell, set()).add(g)
        keep = sorted(cell for cell, gs in present.items() if len(gs) == len(groups))
        whole = sum(total.values())
        covered = float(sum(total.get(c, 0.0) for c in keep) / whole) if whole else 0.0
        if covered >= 0.95 or k == 1:
            if not keep:
                break
            mass = sum(total.get(c, 0.0) for c in keep)
            w = np.array([total.get(c, 0.0) for c in keep]) / mass if mass else np.full(len(keep), np.nan)
            out = {g: {v: (float(np.nansum(w * np.array([ok[g, c][v][0] for c in keep]))),
                           float(np.sqrt(np.nansum(w ** 2 * np.array([ok[g, c][v][1] for c in keep]) ** 2))))
                       for v in cols}
                   for g in groups}
            return out, {"strata": tuple(st), "covered": covered, "strata_n": len(keep), "kept": tuple(keep)}
    return {}, {"strata": (), "covered": 0.0, "strata_n": 0, "kept": ()}


@dataclass(frozen=True)
class MoneyEstimate(Estimate):
    """A money figure from a group difference: the segment-adjusted estimate, the crude one beside it."""

    crude: Estimate | None = None
    mix_note: str = ""
    strata: tuple[str, ...] = ()


def _crude_value(clv: Result, moved: int, source: str, target: str) -> Estimate:
    t = clv.table.set_index("nps_group") if "nps_group" in clv.table else pd.DataFrame()
    if source not in t.index or target not in t.index:
        return Estimate("promoter_value", f"Value of moving {moved:,} {source}s to {target}s", float("nan"),
                        warnings=tuple(clv.warnings) or ("Both groups need customers to value the move.",),
                        filters=clv.filters)
    a, b = t.loc[target], t.loc[source]
    gap = a["clv"] - b["clv"]
    se, z = math.hypot(a["clv_se"], b["clv_se"]), _z(clv.alpha)
    return Estimate("promoter_value", f"Value of moving {moved:,} {source}s to {target}s (crude)", moved * gap,
                    moved * (gap - z * se), moved * (gap + z * se), n=int(a["customers"] + b["customers"]),
                    unit="EUR", alpha=clv.alpha,
                    method=f"{moved:,} × (CLV {target} − CLV {source}), pooled over segments; CLV gap {gap:,.0f} "
                           "per customer.",
                    reference=clv.reference, filters=clv.filters, assumptions=clv.assumptions, se=moved * se)


def _z(alpha: float) -> float:
    return NormalDist().inv_cdf(1 - alpha / 2)


def promoter_value(clv: Result, *, strata: Result | None = None, moved: int = 1000, source: str = "detractor",
                   target: str = "promoter", draws: int = 4000, seed: int = 11) -> Estimate:
    """Money value of moving ``moved`` customers from ``source`` to ``target`` group, with an interval.

    With ``strata`` (CLV by group × segment × tenure band, :func:`clv_by_group` with
    ``by_segment=True, by_tenure=True``) the headline is segment-adjusted: the CLV gap within each
    stratum, weighted by the mix of the customers moved — the ``source`` group (:func:`standardise`), SE = √Σ w²(SE_target² + SE_source²)
    from the cells' simulation intervals; the crude (pooled) figure is returned beside it as
    ``.crude``. Without ``strata`` it is the crude figure. Intervals treat the groups' CLV as
    independent normals with the SDs of their simulation draws (``clv_se``).
    """
    out = _promoter_value(clv, strata, moved, source, target)
    # a figure computed from the CLV results: it carries their queries (a kept fit's are text)
    return replace(out, queries=store.distinct((*clv.queries, *(strata.queries if strata else ()))))


def _promoter_value(clv: Result, strata: Result | None, moved: int, source: str, target: str) -> Estimate:
    crude = _crude_value(clv, moved, source, target)
    stub = stubs.carried(clv)  # stub customers are not contract customers: this figure includes none
    if stub and crude.estimate == crude.estimate:
        crude = replace(crude, warnings=tuple(crude.warnings) + stub)
    if strata is None or crude.estimate != crude.estimate:
        return crude
    std, info = standardise(strata.table, (target, source), {"clv": "clv_se"}, mix=source)
    if not std:
        return replace(crude, warnings=crude.warnings + ("Too few customers per segment to adjust for the mix.",))
    (ct, st_), (cs, ss) = std[target]["clv"], std[source]["clv"]
    gap, se, z = ct - cs, math.hypot(st_, ss), _z(clv.alpha)
    warn = () if info["covered"] >= 0.995 else (
        f"Strata with both groups hold {info['covered']:.0%} of the base; the rest is left out of the adjustment.",)
    warn += stub
    return MoneyEstimate(
        "promoter_value", f"Value of moving {moved:,} {source}s to {target}s", moved * gap, moved * (gap - z * se),
        moved * (gap + z * se), n=crude.n, se=moved * se, unit="EUR", alpha=clv.alpha,
        method=(f"{moved:,} × (CLV {target} − CLV {source}) within {' × '.join(info['strata'])} "
                f"({info['strata_n']} strata), standardised to the {source}s' mix; adjusted CLV gap {gap:,.0f} per "
                f"customer (crude {crude.estimate / moved:,.0f})."),
        reference=clv.reference + " Direct standardisation (e.g. Rothman, Modern Epidemiology, ch. 4).",
        filters=clv.filters, assumptions=clv.assumptions, warnings=warn, crude=crude, mix_note=MIX_NOTE,
        strata=info["strata"])


def describe(c: Result, value: Estimate) -> str:
    t = c.table.set_index("nps_group") if len(c.table) else None
    if t is None or not {"promoter", "detractor"} <= set(t.index):
        return c.warnings[0] if c.warnings else "Not enough customers to compare promoter and detractor value."
    text = (f"A promoter is worth {t.loc['promoter', 'clv']:,.0f} over the horizon against "
            f"{t.loc['detractor', 'clv']:,.0f} for a detractor; moving 1,000 detractors to promoters is worth "
            f"{value.estimate:,.0f} ({value.ci_text('{:,.0f}')})")
    crude = getattr(value, "crude", None)
    if crude is None:
        return text + "."
    return (text + f" within segment and tenure, against {crude.estimate:,.0f} crude. " + value.mix_note)


def register_cli(sub, parents) -> None:
    p = sub.add_parser("clv", parents=parents, help="contractual CLV by NPS group and the value of a promoter")
    p.add_argument("--by-segment", action="store_true")
    p.add_argument("--moved", type=int, default=1000, help="customers moved from detractor to promoter")
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    from cxmetrics.core.output import emit, filters_from_args

    f = filters_from_args(args)
    with engines.connect_args(args) as con:  # --engine duckdb|spark, --lake
        c = clv_by_group(con, f, by_segment=args.by_segment, alpha=args.alpha)
        strata = clv_by_group(con, f, by_segment=True, by_tenure=True, alpha=args.alpha)
    value = promoter_value(c if not args.by_segment else clv_by_group_from(c), strata=strata, moved=args.moved)
    emit(replace(c, headline=(value,)), args)  # warnings and assumptions as returned
    return 0


def clv_by_group_from(c: Result) -> Result:
    """Collapse a group × segment CLV result to groups (customer-weighted), for the promoter value."""
    t = c.table.copy()
    w = t["customers"]
    agg = t.assign(clv=t["clv"] * w, ci_low=t["ci_low"] * w, ci_high=t["ci_high"] * w).groupby("nps_group").sum(numeric_only=True)
    for col in ("clv", "ci_low", "ci_high"):
        agg[col] = agg[col] / agg["customers"]
    return Result(c.name, c.label, agg.reset_index(), alpha=c.alpha, filters=c.filters, assumptions=c.assumptions)
