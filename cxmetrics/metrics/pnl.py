"""The CX-to-P&L bridge from the store: inputs gathered from the metric modules, then the model.

Two scenarios:

* ``detractors`` — "if the detractor share fell by X points": X% of active contract customers
  move from detractor to passive (or promoter); the bridge model in :mod:`cxmetrics.bridge`
  values retention, enrichment, advocacy and cost savings, minus the programme cost.
* ``initiatives`` — "what the initiatives delivered": the money each measured initiative saved
  (from :mod:`cxmetrics.impact`) minus the cost of all initiatives.

Every input carries its standard error and source; the intervals come from a parametric
bootstrap over the estimated inputs (assumptions are held fixed and shown in the tornado chart).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import duckdb

from cxmetrics import store
from cxmetrics.core import lazy
from cxmetrics.core.dist import norm
from cxmetrics.core.filters import Filters
from cxmetrics.metrics import break_even, bridge
from cxmetrics.metrics.bridge import BridgeInputs, Quantity
from cxmetrics.store import assumptions, engines, stubs, summaries

np = lazy.module("numpy")
pd = lazy.module("pandas")

SCENARIOS = ("detractors", "initiatives")
MIX_NOTE = ("The crude figure compares detractors with customers of a different mix (promoters are more often "
            "enterprise and long-tenure customers); the adjusted one compares them within segment (and tenure band "
            "for churn and revenue), weighted by the mix of the detractors who would move, so it counts only the "
            "difference that goes with NPS.")
#: Which population the adjustment standardises to, and why (README "The CX-to-P&L bridge").
STANDARD_MIX = ("the detractors' mix: the scenario moves detractors, so each within-stratum gap is weighted by where "
                "the detractors are (an effect-on-the-treated standardisation), not by the whole base's mix")
BRIDGE_ASSUMPTIONS = ("gross_margin", "discount_rate", "horizon_years", "referral_rate", "referral_conversion",
                      "cost_per_complaint", "attribution_share")


@dataclass(frozen=True)
class PnL:
    scenario: str
    description: str
    components: pd.DataFrame  # component, label, estimate, ci_low, ci_high
    net: tuple[float, float, float]
    roi: float | None
    cost: float
    inputs: pd.DataFrame  # input, value, se, source
    tornado: pd.DataFrame
    break_even: pd.DataFrame
    assumptions: dict[str, str]
    warnings: tuple[str, ...] = ()
    method: str = ""
    reference: str = "Forrester CX Index revenue model; Gupta, Lehmann & Stuart (2004); DESIGN.md bridge."
    filters: str = ""
    extra: dict = field(default_factory=dict)
    crude: pd.DataFrame | None = None  # the same components from pooled (not segment-adjusted) inputs
    crude_net: tuple[float, float, float] | None = None
    mix_note: str = ""
    interval_note: str = ""  # what the interval includes: statistical only, or assumption ranges too
    includes_assumptions: bool = False
    confounding_note: str = ""  # shown when the crude − adjusted gap exceeds the interval's half-width
    #: every query its inputs ran (store.Query), for "How was this computed?" (store.recorded)
    queries: tuple = ()

    def to_dict(self) -> dict:
        from cxmetrics.core.results import jsonable

        return jsonable({k: getattr(self, k) for k in self.__dataclass_fields__ if k != "queries"}
                        | {"queries": [q.describe() for q in self.queries]})


def _annual_churn(monthly_pct: float, events: int) -> Quantity:
    lam = monthly_pct / 100
    c = 1 - math.exp(-12 * lam)
    se = 12 * math.exp(-12 * lam) * (lam / math.sqrt(events)) if events > 0 else 0.0
    return Quantity(c, se, f"1 − exp(−12λ), λ from {events:,} churn events")


def segment_standardised(cells: pd.DataFrame, to: str) -> tuple[dict[str, Quantity], dict]:
    """Share-of-wallet and complaint gaps within segment, standardised to the detractors' mix.

    ``cells`` has one row per NPS group × segment with ``customers`` (of that group in that
    segment), ``sow``/``sow_se`` (mean stated share of wallet, as a share), ``wallet``/``wallet_se``
    (mean category wallet of the segment's contract customers) and ``complaints``/``complaints_se``
    (per customer-year). With w_s the detractors' share in segment s (the customers the scenario
    moves: an effect-on-the-treated standardisation, :func:`cxmetrics.clv.standardise`):

    * enrichment per moved customer-year = Σ_s w_s (sow_to,s − sow_det,s) · wallet_s, returned as
      ``wallet`` = Σ_s w_s wallet_s and ``sow_gain`` = that sum / ``wallet`` (so their product is it);
    * ``complaints_det``, ``complaints_to`` = Σ_s w_s k_g,s.

    SEs: √Σ w_s² se² per group (groups independent), the wallet taken as known in the gain.
    Returns ({} , info) when no segment holds both groups.

    >>> cells = pd.DataFrame({"nps_group": ["detractor", "promoter"] * 2, "segment": ["a", "a", "b", "b"],
    ...     "customers": [30, 10, 10, 50], "sow": [0.2, 0.2, 0.6, 0.6], "sow_se": [0.01] * 4,
    ...     "wallet": [100.0] * 2 + [1000.0] * 2, "wallet_se": [0.0] * 4, "complaints": [1.0, 1.0, 0.5, 0.5],
    ...     "complaints_se": [0.1] * 4})
    >>> q, info = segment_standardised(cells, "promoter")
    >>> round(q["sow_gain"].value, 9), q["wallet"].value, q["complaints_det"].value, info["strata"]
    (0.0, 325.0, 0.875, ('segment',))
    """
    from cxmetrics.metrics import clv

    t = cells.assign(enrich=cells["sow"] * cells["wallet"], enrich_se=cells["sow_se"] * cells["wallet"])
    std, info = clv.standardise(t, ("detractor", to), {"enrich": "enrich_se", "wallet": "wallet_se",
                                                      "complaints": "complaints_se"},
                                strata=("segment",), mix="detractor")
    if not std:
        return {}, info
    wal, wal_se = std["detractor"]["wallet"]
    gap = std[to]["enrich"][0] - std["detractor"]["enrich"][0]
    gap_se = math.hypot(std[to]["enrich"][1], std["detractor"]["enrich"][1])
    where = f"within segment ({info['strata_n']}), standardised to the detractors' mix"
    return {"sow_gain": Quantity(gap / wal, gap_se / wal, f"stated share of wallet, {to} − detractor, {where}, "
                                                         "wallet-weighted"),
            "wallet": Quantity(wal, wal_se, "mean category wallet, contract customers, detractors' segment mix"),
            "complaints_det": Quantity(*std["detractor"]["complaints"], f"complaints per customer-year over the whole history, detractors, {where}"),
            "complaints_to": Quantity(*std[to]["complaints"], f"complaints per customer-year over the whole history, {to}s, {where}")}, info


def _segment_cells(con: duckdb.DuckDBPyConnection, filters: Filters, to: str, counts: pd.DataFrame) -> pd.DataFrame:
    """Per segment: share of wallet, complaints and wallet by NPS group (one query each, grouped by
    segment: the figures each segment's own filter gives)."""

    from cxmetrics.metrics import complaints, wallet

    w = wallet.stated_by_segment(con, filters).set_index(["segment", "nps_group"])
    k = complaints.rate_by_nps_group(con, filters, by_segment=True).set_index(["segment", "nps_group"])
    b = _base(con, filters, by_segment=True).set_index("segment")
    b = b.reindex(b.index.union(counts["segment"].dropna().unique()))  # a segment without contract customers: NaN
    # plain dicts: a few dozen lookups, each a pandas .loc otherwise
    wd, kd, bd = w.to_dict("index"), k.to_dict("index"), b.to_dict("index")
    w_segs, k_segs = {seg for seg, _ in wd}, {seg for seg, _ in kd}
    n_by = counts.groupby(["segment", "nps_group"])["customers"].sum().to_dict()
    rows = []
    for seg in sorted(counts["segment"].dropna().unique()):
        if seg not in w_segs or seg not in k_segs:
            continue
        for g in ("detractor", to):
            n = n_by.get((seg, g), 0)
            if (seg, g) not in wd or (seg, g) not in kd or wd[(seg, g)]["stated_n"] < 2 or not n:
                continue
            wr, kr = wd[(seg, g)], kd[(seg, g)]
            rows.append({"nps_group": g, "segment": seg, "customers": int(n), "sow": wr["stated_pct"] / 100,
                         "sow_se": float(wr["stated_se"]) / 100,
                         "wallet": float(bd[seg]["wallet"]), "wallet_se": float(bd[seg]["wallet_se"] or 0),
                         "complaints": float(kr["per_customer_year"]), "complaints_se": float(kr["se"])})
    return pd.DataFrame(rows)


def stub_wallet_notes(con: duckdb.DuckDBPyConnection, filters: Filters) -> list[str]:
    """What the bridge says about stub customers (:mod:`cxmetrics.store.stubs`) in its share-of-wallet
    inputs: how many answered, that they count in the crude gap, and that their own stratum has no
    weight in the adjusted one (the scenario moves contract customers; a stub has no contract). When a
    real contract segment is also called 'unknown', the per-segment filter cannot tell the two apart:
    that is said too."""
    where, params = filters.where(date_col="r.responded_on", customer_id_col="r.customer_id",
                                  department_col="r.department")
    n = int(store.scalar(con, "SELECT count(DISTINCT r.customer_id) FROM survey_responses r JOIN customer_stubs s "
                              f"USING (customer_id) WHERE r.share_of_wallet_pct IS NOT NULL AND {where}", params) or 0)
    if not n:
        return []
    out = [f"{n:,} stub customer(s) (ids not in the customers file) answered the share-of-wallet question: they "
           f"count in the crude share-of-wallet gap; in the segment-adjusted one they are their own segment "
           f"'{stubs.STUB_STRATUM}', with no weight in the detractors' mix because the scenario moves contract "
           "customers and a stub customer has no contract."]
    real = int(store.scalar(con, "SELECT count(*) FROM customers c WHERE c.segment = $seg AND c.contract = 'contractual' "
                                 "AND c.customer_id NOT IN (SELECT customer_id FROM customer_stubs)",
                            {"seg": stubs.STUB_SEGMENT}) or 0)
    if real:
        out.append(f"{real:,} contract customer(s) have the real segment '{stubs.STUB_SEGMENT}', the label stub "
                   "customers carry: that segment's share of wallet pools both; give the real segment another name "
                   "in the customers file to keep them apart.")
    return out


def _base(con: duckdb.DuckDBPyConnection, filters: Filters, *, by_segment: bool = False):
    """Active contract customers and their mean category wallet (with its SE) in the filters: a
    Series, or with ``by_segment`` a frame with a row per segment."""
    cw, params = summaries.where(summaries.LIFECYCLE_TABLE, filters, customer="c", dates=False)
    sql = f"""
SELECT {"c.segment, " if by_segment else ""}CAST(coalesce(sum(c.n) FILTER (WHERE c.churned_on IS NULL), 0) AS BIGINT) AS active,
       sum(c.s_wallet) / sum(c.n_wallet) AS wallet,
       sqrt((sum(c.ss_wallet) - sum(c.s_wallet) ^ 2 / sum(c.n_wallet)) / (sum(c.n_wallet) - 1)) / sqrt(sum(c.n_wallet))
           AS wallet_se
FROM {{summary_lifecycle}} c WHERE c.contract = 'contractual' AND {cw}{" GROUP BY ALL" if by_segment else ""}"""
    out = store.run(con, summaries.query(con, "bridge_base", sql, params, filters=filters))
    return out if by_segment else out.iloc[0]


def scoped_programme_cost(con: duckdb.DuckDBPyConnection, filters: Filters) -> float:
    """The cost of the registered initiatives in the caller's scope (a department sees its own
    programme's cost): the default programme cost, the denominator of the scenario's ROI."""
    iw, ip = filters.where(department_col="i.department", dates=False, customers=False)
    return float(store.run(con, store.Query(
        "programme_cost", f"SELECT coalesce(sum(i.cost), 0) AS cost FROM initiatives i WHERE {iw}", ip))["cost"].iloc[0])


def gather(con: duckdb.DuckDBPyConnection, filters: Filters, *, drop_points: float = 5.0, to: str = "passive",
           programme_cost: float | None = None) -> tuple[BridgeInputs, list[str], dict]:
    """Bridge inputs for the detractor scenario, each with its source."""
    from cxmetrics.metrics import clv, complaints, wallet

    warnings = []
    used = assumptions.current(con)
    missing = [k for k in BRIDGE_ASSUMPTIONS if k not in used]
    if missing:
        raise assumptions.MissingAssumption(missing[0])
    clv_result = clv.clv_by_group(con, filters, draws=500)
    if clv_result.table.empty and clv_result.warnings:
        raise ValueError(clv_result.warnings[0])
    c = clv_result.table
    c = c.set_index("nps_group") if "nps_group" in c.columns else c
    if not {"detractor", to} <= set(c.index):
        raise ValueError(f"the bridge needs contractual customers who answered the relationship survey in both the "
                         f"detractor and the {to} group: import customers and survey responses on the Data page")
    w = wallet.by_group(con, filters).table
    if "nps_group" not in w or not {"detractor", to} <= set(w["nps_group"]):
        raise ValueError("the bridge needs share-of-wallet answers in both the detractor and the target "
                         "group for this scope and these filters")
    w = w.set_index("nps_group")
    warnings += stub_wallet_notes(con, filters)
    rates = complaints.rate_by_nps_group(con, filters).set_index("nps_group")
    base = _base(con, filters)
    moved = drop_points / 100 * float(base["active"])
    det, tgt = c.loc["detractor"], c.loc[to]
    sow_gain = (w.loc[to, "stated_pct"] - w.loc["detractor", "stated_pct"]) / 100
    sow_se = math.hypot(*(w.loc[g, "stated_se"] / 100 for g in (to, "detractor")))
    weights = c["customers"] / c["customers"].sum()
    if programme_cost is None:
        programme_cost = scoped_programme_cost(con, filters)
        warnings.append("Programme cost = the cost of the registered initiatives in scope (change it in the scenario).")
    churn_new = [_annual_churn(r["monthly_churn_pct"], int(r["churn_events"])) for _, r in c.iterrows()]
    crude = BridgeInputs(
        moved=moved, to=to,
        churn_det=_annual_churn(det["monthly_churn_pct"], int(det["churn_events"])),
        churn_to=_annual_churn(tgt["monthly_churn_pct"], int(tgt["churn_events"])),
        revenue_det=Quantity(12 * det["monthly_revenue"], 12 * det["monthly_revenue_se"],
                             "12 × detractor revenue per customer-month"),
        sow_gain=Quantity(sow_gain, sow_se, f"stated share of wallet, {to} − detractor"),
        wallet=Quantity(float(base["wallet"]), float(base["wallet_se"] or 0), "mean category wallet, contract customers"),
        complaints_det=Quantity(float(rates.loc["detractor", "per_customer_year"]), float(rates.loc["detractor", "se"]),
                                "complaints per customer-year over the whole history, detractors"),
        complaints_to=Quantity(float(rates.loc[to, "per_customer_year"]), float(rates.loc[to, "se"]),
                               f"complaints per customer-year over the whole history, {to}s"),
        revenue_new=Quantity(float((12 * c["monthly_revenue"] * weights).sum()),
                             float(math.sqrt(((12 * c["monthly_revenue_se"] * weights) ** 2).sum())),
                             "12 × revenue per customer-month of an average customer (customer-weighted)"),
        churn_new=Quantity(float(sum(q.value * wt for q, wt in zip(churn_new, weights, strict=True))),
                           float(math.sqrt(sum((q.se * wt) ** 2 for q, wt in zip(churn_new, weights, strict=True)))),
                           "annual churn of an average customer (customer-weighted)"),
        programme_cost=float(programme_cost),
        assumptions={k: used[k].value for k in BRIDGE_ASSUMPTIONS} | {
            "acquisition_cost": used["acquisition_cost"].value if "acquisition_cost" in used
            else assumptions.RULES["acquisition_cost"].default})
    if "acquisition_cost" not in used:
        warnings.append(f"acquisition_cost is not set: the documented default "
                        f"{assumptions.RULES['acquisition_cost'].default:g} EUR per referred customer is used.")
    # segment adjustment (DESIGN.md "Money is segment-adjusted"): churn and revenue compared within
    # segment × tenure band and standardised to the detractors' mix (the customers who move)
    st = clv.clv_by_group(con, filters, by_segment=True, by_tenure=True, draws=200).table
    ann = [_annual_churn(r["monthly_churn_pct"], int(r["churn_events"])) for _, r in st.iterrows()]
    st = st.assign(churn=[a.value for a in ann], churn_se=[a.se if r["churn_events"] > 0 else np.nan
                                                           for a, (_, r) in zip(ann, st.iterrows(), strict=True)],
                   revenue=12 * st["monthly_revenue"], revenue_se=12 * st["monthly_revenue_se"])
    std, info = clv.standardise(st, ("detractor", to), {"churn": "churn_se", "revenue": "revenue_se"}, mix="detractor")
    if std:
        where = f"within {' × '.join(info['strata'])}, standardised to the detractors' mix"
        inp = replace(crude,
                      churn_det=Quantity(*std["detractor"]["churn"], f"annual churn of a detractor {where}"),
                      churn_to=Quantity(*std[to]["churn"], f"annual churn of a {to} {where}"),
                      revenue_det=Quantity(*std["detractor"]["revenue"], f"yearly revenue of a detractor {where}"))
        # enrichment and cost savings: the share-of-wallet and complaint gaps within segment, same mix
        by_seg, seg_info = segment_standardised(_segment_cells(con, filters, to, st), to)
        if by_seg:
            inp = replace(inp, **by_seg)
            if seg_info["covered"] < 0.995:
                warnings.append(f"Segments with both groups' share of wallet and complaints hold "
                                f"{seg_info['covered']:.0%} of the detractors; the rest is left out of the adjustment.")
        else:
            warnings.append("Share of wallet and complaints could not be compared within segment: their crude "
                            "(pooled) gaps are used.")
    else:
        inp = crude
        warnings.append("Too few customers per segment to adjust for the mix: the crude (pooled) inputs are used.")
    context = {"active_customers": int(base["active"]), "drop_points": drop_points, "crude": crude,
               "strata": info["strata"] if std else (),
               "cited": assumptions.cite({k: used[k] for k in BRIDGE_ASSUMPTIONS}),
               "ranges": assumptions.ranges({k: used[k] for k in inp.assumptions if k in used})}
    return inp, warnings, context


def _inputs_table(inp: BridgeInputs) -> pd.DataFrame:
    rows = [{"input": "moved customers", "value": inp.moved, "se": 0.0, "source": f"scenario, to {inp.to}"}]
    for name in bridge._INPUT_BOUNDS:
        q = getattr(inp, name)
        rows.append({"input": name, "value": q.value, "se": q.se, "source": q.source})
    rows.append({"input": "programme cost", "value": inp.programme_cost, "se": 0.0, "source": "scenario"})
    rows += [{"input": k, "value": v, "se": 0.0, "source": "assumption"} for k, v in inp.assumptions.items()]
    return pd.DataFrame(rows)


def interval_note(ranges: dict[str, tuple[float, float]], use: bool, distribution: str, alpha: float) -> str:
    """What a bridge interval includes, in words."""
    level = f"{1 - alpha:.0%} interval"
    if use and ranges:
        listed = ", ".join(f"{k} {lo:g} to {hi:g}" for k, (lo, hi) in sorted(ranges.items()))
        mode = "mode = the assumption's value" if distribution == "triangular" else "flat"
        return (f"{level} includes assumption uncertainty: a seeded Monte Carlo draws each assumption finance gave a "
                f"range ({listed}; {distribution}, {mode}) jointly with the parametric bootstrap of the estimated "
                "inputs; the other assumptions are fixed.")
    if use:
        return (f"{level} is statistical only: no assumption carries a range yet (finance sets ranges on the Finance "
                "review page or in an assumptions import).")
    return (f"{level} is statistical only (parametric bootstrap of the estimated inputs); the assumptions are fixed "
            "at their values — see the tornado, or ask for the assumption ranges to be included.")


def confounding_note(net: tuple[float, float, float], crude_net: tuple[float, float, float] | None) -> str:
    """The confounding caveat, shown when the segment mix moves the net more than the statistical
    interval's half-width.

    Rule: the gap |crude − adjusted| is how much confounding by segment × tenure mix alone moves
    the net; what the adjustment cannot see (e.g. what else makes a promoter) may be of the same
    order. When that gap exceeds the half-width of the adjusted *statistical* interval (``net``),
    the interval understates the uncertainty and the caveat says so.
    """
    if crude_net is None or any(x != x for x in (*net, crude_net[0])):
        return ""
    gap, half = abs(crude_net[0] - net[0]), (net[2] - net[1]) / 2
    if gap <= half:
        return ""
    return (f"Caveat: the segment and tenure mix alone moves the net by {gap:,.0f}, more than the statistical interval's "
            f"half-width ({half:,.0f}). Confounding the adjustment cannot see (what else makes a promoter) may be of that order, "
            "and the interval does not include it.")


def detractor_scenario(con: duckdb.DuckDBPyConnection, filters: Filters, *, drop_points: float = 5.0,
                       to: str = "passive", programme_cost: float | None = None, alpha: float = 0.05,
                       draws: int = 4000, assumption_ranges: bool = False, distribution: str = "triangular",
                       seed: int = 0) -> PnL:
    """The detractor scenario (see the module docstring).

    ``assumption_ranges=True`` draws every bridge assumption that finance gave a range, by seeded
    Monte Carlo (``distribution`` triangular or uniform), jointly with the statistical bootstrap
    (:func:`cxmetrics.bridge.simulate`); ``PnL.interval_note`` says what the interval includes.
    """
    with store.recorded() as ran:
        inp, warnings, ctx = gather(con, filters, drop_points=drop_points, to=to, programme_cost=programme_cost)
    ranges = ctx["ranges"] if assumption_ranges else None
    sim = bridge.simulate(inp, n_draws=draws, alpha=alpha, seed=seed, assumption_ranges=ranges, distribution=distribution)
    comps = pd.DataFrame([{"component": k, "label": bridge.LABELS[k], "estimate": sim[k][0], "ci_low": sim[k][1],
                           "ci_high": sim[k][2]} for k in (*bridge.COMPONENTS, "programme_cost")])
    crude_sim = bridge.simulate(ctx["crude"], n_draws=draws, alpha=alpha, seed=seed, assumption_ranges=ranges,
                                distribution=distribution)
    crude = pd.DataFrame([{"component": k, "label": bridge.LABELS[k], "estimate": crude_sim[k][0],
                           "ci_low": crude_sim[k][1], "ci_high": crude_sim[k][2]} for k in (*bridge.COMPONENTS, "programme_cost")])
    stat_net = bridge.simulate(inp, n_draws=draws, alpha=alpha, seed=seed)["net"] if ranges else sim["net"]
    torn = pd.DataFrame(bridge.tornado(inp, ctx["ranges"]))
    be = []
    # the same net function as the tornado and the headline: every assumption recomputes every input
    for key, lo, hi in (("gross_margin", 0.0, 1.0), ("attribution_share", 0.0, 1.0), ("referral_conversion", 0.0, 1.0),
                        ("discount_rate", 0.0, 0.5)):
        v = bridge.break_even(inp, key, lo, hi)
        ci = break_even.interval(inp, key, lo, hi, alpha=alpha)  # percentile CI over the bridge's input draws
        be.append({"assumption": key, "current": inp.assumptions[key], "break_even": v, "ci_low": ci["ci_low"],
                   "ci_high": ci["ci_high"], "no_crossing_share": ci["no_crossing_share"],
                   "reading": (f"pays back as long as {key.replace('_', ' ')} is "
                               f"{'above' if bridge.net(inp.with_assumption(key, hi)) > bridge.net(inp.with_assumption(key, lo)) else 'below'} "
                               f"{v:.3g}" + (f" ({1 - alpha:.0%} CI {ci['ci_low']:.3g} to {ci['ci_high']:.3g})"
                                             if ci["ci_low"] == ci["ci_low"] else "")) if v is not None else
                   f"net impact keeps its sign for any {key.replace('_', ' ')} from {lo:g} to {hi:g}"})
    desc = (f"If the detractor share fell by {drop_points:g} points ({inp.moved:,.0f} of {ctx['active_customers']:,} "
            f"active contract customers becoming {to}s)")
    return PnL("detractors", desc, comps, sim["net"], bridge.roi(inp), inp.programme_cost, _inputs_table(inp), torn,
               pd.DataFrame(be), ctx["cited"], tuple(warnings),
               method=("Moved customers × attribution share × [retention (detractor revenue × gross margin × survival "
                       "gain), enrichment (share-of-wallet gain × wallet × gross margin), advocacy (referral rate × "
                       "conversion × new-customer CLV over the rest of the horizon net of acquisition cost, promoters "
                       "only), cost savings (complaints avoided while the customer would still be one × cost)], "
                       "discounted over the horizon, minus the programme cost. Segment-adjusted: churn and revenue "
                       "compared within segment × tenure band, share of wallet (× wallet) and complaint rates within "
                       f"segment, each standardised to {STANDARD_MIX}; the crude (pooled) result beside it. "
                       "Interval: parametric bootstrap of the estimated inputs"
                       + (", jointly with a seeded Monte Carlo over finance's assumption ranges."
                          if assumption_ranges and ctx["ranges"] else "; assumptions fixed (tornado).")),
               filters=filters.describe(), extra={"tables": ("customers", "transactions", "survey_responses",
                                                             "churn_events", "complaints", "initiatives"),
                                                  "strata": ctx["strata"]},
               crude=crude, crude_net=crude_sim["net"], mix_note=MIX_NOTE if ctx["strata"] else "",
               interval_note=interval_note(ctx["ranges"], assumption_ranges, distribution, alpha),
               includes_assumptions=bool(assumption_ranges and ctx["ranges"]),
               confounding_note=confounding_note(stat_net, crude_sim["net"]) if ctx["strata"] else "",
               queries=store.distinct(ran))


def initiatives_scenario(con: duckdb.DuckDBPyConnection, filters: Filters, *, alpha: float = 0.05) -> PnL:
    """What the measured initiatives delivered in money × attribution share, minus the cost of the initiatives in scope."""
    from cxmetrics.metrics import impact

    with store.recorded() as ran:
        imps = impact.all_impacts(con, filters, alpha=alpha)
        used = assumptions.current(con)
    rows, warnings, no_se = [], [], []
    total, var = 0.0, 0.0
    for i in imps:
        if i.money is not None:
            if i.money.se is None:  # an interval without a standard error cannot be added up as normal
                no_se.append(i.initiative_id)
            rows.append({"component": i.initiative_id, "label": f"{i.initiative_id} {i.name}", "estimate": i.money.estimate,
                         "ci_low": i.money.ci_low, "ci_high": i.money.ci_high})
            total += i.money.estimate
            var += (i.money.se or 0.0) ** 2
        elif i.status == "effect":
            warnings.append(f"{i.initiative_id}: a measured effect ({i.effect.unit}) with no money link yet.")
    share = used["attribution_share"].value if "attribution_share" in used else 1.0
    if share != 1.0:  # credited to CX like the detractor scenario
        rows = [{**r, **{k: r[k] * share for k in ("estimate", "ci_low", "ci_high")}} for r in rows]
        total, var = total * share, var * share ** 2
    cost = float(sum(i.cost for i in imps))
    rows.append({"component": "programme_cost", "label": "Initiative cost (in scope)", "estimate": -cost, "ci_low": -cost,
                 "ci_high": -cost})
    net = total - cost
    half = float(norm.ppf(1 - alpha / 2)) * math.sqrt(var) if not no_se else float("nan")
    if no_se:
        warnings.append(f"No interval for the total: {', '.join(no_se)} report an interval without a standard error.")
    cited = assumptions.cite({k: used[k] for k in ("cost_per_escalation", "attribution_share") if k in used})
    return PnL("initiatives", "What the measured initiatives delivered to date", pd.DataFrame(rows),
               (net, net - half, net + half), net / cost if cost else None, cost, pd.DataFrame(), pd.DataFrame(),
               pd.DataFrame(), cited, tuple(warnings), method="Sum of each initiative's money effect (independent "
               "normal intervals) × the attribution share, minus the cost of the initiatives in scope.", filters=filters.describe(),
               queries=store.distinct(ran))


def headline(p: PnL) -> str:
    """The scenario's headline sentence: the segment-adjusted net impact, its interval and ROI."""
    est, lo, hi = p.net
    if est != est:  # a component could not be computed (e.g. no churn, complaints or initiatives yet)
        gaps = [r["label"] for _, r in p.components.iterrows() if r["estimate"] != r["estimate"]]
        return (f"{p.description}: net impact not computable — no estimate for {', '.join(gaps) or 'a component'} "
                "(import the missing data on the Data page).")
    roi = f", a return of {p.roi:+.0%} on {p.cost:,.0f}" if p.roi is not None else ""
    kind = "with assumption uncertainty" if p.includes_assumptions else "statistical only"
    adjusted = "segment-adjusted net impact" if p.mix_note else "net impact"
    return (f"{p.description}: {adjusted} {est:,.0f} (95% interval {lo:,.0f} to {hi:,.0f}, {kind}){roi}."
            + (" The interval includes zero: the case is not proven." if lo < 0 < hi else ""))


def crude_beside(x) -> str:
    """The crude (pooled) figure and one sentence on why it differs, to show beside an adjusted
    headline: a :class:`PnL` or a money :class:`~cxmetrics.results.Estimate` carrying ``.crude``
    (``""`` when the figure was not adjusted)."""
    if isinstance(x, PnL):
        if x.crude_net is None or not x.mix_note or x.crude_net[0] != x.crude_net[0]:
            return ""
        e, lo, hi = x.crude_net
        return f"Crude (pooled, not segment-adjusted): {e:,.0f} (95% interval {lo:,.0f} to {hi:,.0f}). {x.mix_note}"
    crude = getattr(x, "crude", None)
    if crude is None or crude.estimate != crude.estimate:
        return ""
    return f"Crude (pooled, not segment-adjusted): {crude.estimate:,.0f} ({crude.ci_text('{:,.0f}')}). {x.mix_note}"


def describe(p: PnL) -> str:
    """Headline, the crude figure beside it with why they differ, and the confounding caveat."""
    if p.net[0] != p.net[0]:
        return headline(p)
    crude = crude_beside(p)
    return headline(p) + (f" {crude}" if crude else "") + (f" {p.confounding_note}" if p.confounding_note else "")


def register_cli(sub, parents) -> None:
    p = sub.add_parser("pnl", parents=parents, help="the CX-to-P&L bridge for a scenario")
    p.add_argument("--scenario", choices=SCENARIOS, default="detractors")
    p.add_argument("--drop-points", type=float, default=5.0, help="detractor share reduction (points)")
    p.add_argument("--become", dest="become", choices=("passive", "promoter"), default="passive",
                   help="what the moved detractors become")
    p.add_argument("--programme-cost", type=float, help="cost of the programme (default: the initiatives in scope)")
    p.add_argument("--assumption-ranges", action="store_true",
                   help="include assumption uncertainty: Monte Carlo over the ranges finance set (detractors scenario)")
    p.add_argument("--distribution", choices=bridge.DISTRIBUTIONS, default="triangular",
                   help="how an assumption is drawn within its range (mode = its value for triangular)")
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    from cxmetrics.core.output import emit, filters_from_args

    f = filters_from_args(args)
    with engines.connect_args(args) as con:  # --engine duckdb|spark, --lake
        if args.scenario == "detractors":
            res = detractor_scenario(con, f, drop_points=args.drop_points, to=args.become,
                                     programme_cost=args.programme_cost, alpha=args.alpha,
                                     assumption_ranges=args.assumption_ranges, distribution=args.distribution)
        else:
            res = initiatives_scenario(con, f, alpha=args.alpha)
    from cxmetrics.core.output import table_text

    emit(res, args, lambda p: describe(p) + "\n" + table_text(p.components))
    return 0



