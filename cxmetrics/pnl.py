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
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from . import assumptions, bridge, store
from .bridge import BridgeInputs, Quantity
from .filters import Filters

SCENARIOS = ("detractors", "initiatives")
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

    def to_dict(self) -> dict:
        from .results import jsonable

        return jsonable({k: getattr(self, k) for k in self.__dataclass_fields__})


def _annual_churn(monthly_pct: float, events: int) -> Quantity:
    lam = monthly_pct / 100
    c = 1 - math.exp(-12 * lam)
    se = 12 * math.exp(-12 * lam) * (lam / math.sqrt(events)) if events > 0 else 0.0
    return Quantity(c, se, f"1 − exp(−12λ), λ from {events:,} churn events")


def gather(con: duckdb.DuckDBPyConnection, filters: Filters, *, drop_points: float = 5.0, to: str = "passive",
           programme_cost: float | None = None) -> tuple[BridgeInputs, list[str], dict]:
    """Bridge inputs for the detractor scenario, each with its source."""
    from . import clv, complaints, wallet

    warnings = []
    used = assumptions.current(con)
    missing = [k for k in BRIDGE_ASSUMPTIONS if k not in used]
    if missing:
        raise assumptions.MissingAssumption(missing[0])
    c = clv.clv_by_group(con, filters, draws=500).table.set_index("nps_group")
    if not {"detractor", to} <= set(c.index):
        raise ValueError("the bridge needs customers in both the detractor and the target group")
    w = wallet.by_group(con, filters).table.set_index("nps_group")
    rates = complaints.rate_by_nps_group(con, filters).set_index("nps_group")
    from . import summaries

    cw, params = filters.where(customer="c", customer_id_col="c.customer_id", dates=False)
    if summaries.lifecycle(con, filters):  # counts and wallet sums by segment, region and dates
        sql = f"""
SELECT CAST(coalesce(sum(c.n) FILTER (WHERE c.churned_on IS NULL), 0) AS BIGINT) AS active,
       sum(c.s_wallet) / sum(c.n_wallet) AS wallet,
       sqrt((sum(c.ss_wallet) - sum(c.s_wallet) ^ 2 / sum(c.n_wallet)) / (sum(c.n_wallet) - 1)) / sqrt(sum(c.n_wallet))
           AS wallet_se
FROM summary_lifecycle c WHERE c.contract = 'contractual' AND {cw}"""
    else:
        sql = f"""
SELECT count(*) FILTER (WHERE ce.customer_id IS NULL) AS active, avg(c.category_wallet) AS wallet,
       stddev_samp(c.category_wallet) / sqrt(count(c.category_wallet)) AS wallet_se
FROM customers c LEFT JOIN churn_events ce ON ce.customer_id = c.customer_id
WHERE c.contract = 'contractual' AND {cw}"""
    base = store.run(con, store.Query("bridge_base", sql, params)).iloc[0]
    moved = drop_points / 100 * float(base["active"])
    det, tgt = c.loc["detractor"], c.loc[to]
    sow_gain = (w.loc[to, "stated_pct"] - w.loc["detractor", "stated_pct"]) / 100
    sow_se = math.hypot(*((w.loc[g, "stated_ci_high"] - w.loc[g, "stated_pct"]) / 1.96 / 100 for g in (to, "detractor")))
    gm = used["gross_margin"].value
    weights = c["customers"] / c["customers"].sum()
    if programme_cost is None:
        programme_cost = float(con.execute("SELECT coalesce(sum(cost), 0) FROM initiatives").fetchone()[0])
        warnings.append("Programme cost = the cost of all registered initiatives (change it in the scenario).")
    inp = BridgeInputs(
        moved=moved, to=to,
        churn_det=_annual_churn(det["monthly_churn_pct"], int(det["churn_events"])),
        churn_to=_annual_churn(tgt["monthly_churn_pct"], int(tgt["churn_events"])),
        margin_det=Quantity(12 * det["monthly_revenue"] * gm, 12 * det["monthly_revenue_se"] * gm,
                            "12 × detractor revenue per customer-month × gross margin"),
        sow_gain=Quantity(sow_gain, sow_se, f"stated share of wallet, {to} − detractor"),
        wallet=Quantity(float(base["wallet"]), float(base["wallet_se"] or 0), "mean category wallet, contract customers"),
        complaints_gain=Quantity(float(rates.loc["detractor", "per_customer_year"] - rates.loc[to, "per_customer_year"]),
                                 float(math.hypot(rates.loc["detractor", "se"], rates.loc[to, "se"])),
                                 f"complaints per customer-year, detractor − {to}"),
        clv_new=Quantity(float((c["clv"] * weights).sum()), float(((c["ci_high"] - c["ci_low"]) / 3.92 * weights).sum()),
                         "average CLV of a customer (customer-weighted)"),
        programme_cost=float(programme_cost),
        assumptions={k: used[k].value for k in BRIDGE_ASSUMPTIONS})
    context = {"active_customers": int(base["active"]), "drop_points": drop_points,
               "cited": assumptions.cite({k: used[k] for k in BRIDGE_ASSUMPTIONS})}
    return inp, warnings, context


def _inputs_table(inp: BridgeInputs) -> pd.DataFrame:
    rows = [{"input": "moved customers", "value": inp.moved, "se": 0.0, "source": f"scenario, to {inp.to}"}]
    for name in ("churn_det", "churn_to", "margin_det", "sow_gain", "wallet", "complaints_gain", "clv_new"):
        q = getattr(inp, name)
        rows.append({"input": name, "value": q.value, "se": q.se, "source": q.source})
    rows.append({"input": "programme cost", "value": inp.programme_cost, "se": 0.0, "source": "scenario"})
    rows += [{"input": k, "value": v, "se": 0.0, "source": "assumption"} for k, v in inp.assumptions.items()]
    return pd.DataFrame(rows)


def detractor_scenario(con: duckdb.DuckDBPyConnection, filters: Filters, *, drop_points: float = 5.0,
                       to: str = "passive", programme_cost: float | None = None, alpha: float = 0.05,
                       draws: int = 4000) -> PnL:
    inp, warnings, ctx = gather(con, filters, drop_points=drop_points, to=to, programme_cost=programme_cost)
    sim = bridge.simulate(inp, n_draws=draws, alpha=alpha)
    comps = pd.DataFrame([{"component": k, "label": bridge.LABELS[k], "estimate": sim[k][0], "ci_low": sim[k][1],
                           "ci_high": sim[k][2]} for k in (*bridge.COMPONENTS, "programme_cost")])
    torn = pd.DataFrame(bridge.tornado(inp))
    be = []
    for key, lo, hi in (("gross_margin", 0.0, 1.0), ("attribution_share", 0.0, 1.0), ("referral_conversion", 0.0, 1.0),
                        ("discount_rate", 0.0, 0.5)):
        v = bridge.break_even(inp, key, lo, hi)
        be.append({"assumption": key, "current": inp.assumptions[key], "break_even": v,
                   "reading": (f"pays back as long as {key.replace('_', ' ')} is "
                               f"{'above' if bridge.net(inp.with_assumption(key, hi)) > bridge.net(inp.with_assumption(key, lo)) else 'below'} "
                               f"{v:.3g}") if v is not None else
                   f"net impact keeps its sign for any {key.replace('_', ' ')} from {lo:g} to {hi:g}"})
    desc = (f"If the detractor share fell by {drop_points:g} points ({inp.moved:,.0f} of {ctx['active_customers']:,} "
            f"active contract customers becoming {to}s)")
    return PnL("detractors", desc, comps, sim["net"], bridge.roi(inp), inp.programme_cost, _inputs_table(inp), torn,
               pd.DataFrame(be), ctx["cited"], tuple(warnings),
               method=("Moved customers × attribution share × [retention (detractor margin × survival gain), "
                       "enrichment (share-of-wallet gain × wallet × gross margin), advocacy (referral rate × "
                       "conversion × CLV, promoters only), cost savings (complaints avoided × cost)], discounted over "
                       "the horizon, minus the programme cost; intervals by parametric bootstrap of the inputs."),
               filters=filters.describe(), extra={"tables": ("customers", "transactions", "survey_responses",
                                                             "churn_events", "complaints", "initiatives")})


def initiatives_scenario(con: duckdb.DuckDBPyConnection, filters: Filters, *, alpha: float = 0.05) -> PnL:
    """What the measured initiatives delivered in money, minus the cost of all initiatives."""
    from . import impact

    imps = impact.all_impacts(con, filters, alpha=alpha)
    rows, warnings = [], []
    total, var = 0.0, 0.0
    for i in imps:
        if i.money is not None:
            se = (i.money.ci_high - i.money.ci_low) / 3.92
            rows.append({"component": i.initiative_id, "label": f"{i.initiative_id} {i.name}", "estimate": i.money.estimate,
                         "ci_low": i.money.ci_low, "ci_high": i.money.ci_high})
            total += i.money.estimate
            var += se * se
        elif i.status == "effect":
            warnings.append(f"{i.initiative_id}: a measured effect ({i.effect.unit}) with no money link yet.")
    cost = float(sum(i.cost for i in imps))
    rows.append({"component": "programme_cost", "label": "Initiative cost (all)", "estimate": -cost, "ci_low": -cost,
                 "ci_high": -cost})
    net = total - cost
    half = 1.959964 * math.sqrt(var)
    used = assumptions.current(con)
    cited = assumptions.cite({k: used[k] for k in ("cost_per_escalation",) if k in used})
    return PnL("initiatives", "What the measured initiatives delivered to date", pd.DataFrame(rows),
               (net, net - half, net + half), net / cost if cost else None, cost, pd.DataFrame(), pd.DataFrame(),
               pd.DataFrame(), cited, tuple(warnings), method="Sum of each initiative's money effect (independent "
               "normal intervals) minus the cost of all initiatives.", filters=filters.describe())


def describe(p: PnL) -> str:
    est, lo, hi = p.net
    roi = f", a return of {p.roi:+.0%} on {p.cost:,.0f}" if p.roi is not None else ""
    return (f"{p.description}: net impact {est:,.0f} (95% interval {lo:,.0f} to {hi:,.0f}){roi}."
            + (" The interval includes zero: the case is not proven." if lo < 0 < hi else ""))


def register_cli(sub, parents) -> None:
    p = sub.add_parser("pnl", parents=parents, help="the CX-to-P&L bridge for a scenario")
    p.add_argument("--scenario", choices=SCENARIOS, default="detractors")
    p.add_argument("--drop-points", type=float, default=5.0, help="detractor share reduction (points)")
    p.add_argument("--become", dest="become", choices=("passive", "promoter"), default="passive",
                   help="what the moved detractors become")
    p.add_argument("--programme-cost", type=float, help="cost of the programme (default: all initiatives)")
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    from .output import emit, filters_from_args

    f = filters_from_args(args)
    with store.connect(args.db) as con:
        if args.scenario == "detractors":
            res = detractor_scenario(con, f, drop_points=args.drop_points, to=args.become,
                                     programme_cost=args.programme_cost, alpha=args.alpha)
        else:
            res = initiatives_scenario(con, f, alpha=args.alpha)
    emit(res, args, lambda p: describe(p) + "\n" + p.components.to_string(index=False))
    return 0



