"""Money at risk beyond a KPI's customer threshold, segment-adjusted, with an interval (issue 18 item 4).

money at risk = (extra detractors in the last 12 months) × (CLV gap non-detractor − detractor)

* **What it counts.** The extra detractors are the events of the last 12 months beyond the
  threshold times the fitted rise in the detractor probability, Σ n·(min(1, a + b·h) − a)
  (:class:`cxmetrics.threshold.Threshold`). Each of them is valued at the CLV gap over the finance
  horizon (``horizon_years``, 5 by default), so the figure is *the lifetime value, over that
  horizon, of one year's extra detractors* — not a yearly revenue loss; the label names the horizon.
* **Segment-adjusted.** The CLV gap is computed within segment × tenure band and standardised to
  the detractors' mix (:func:`cxmetrics.clv.standardise`, the same adjustment as the value of a
  promoter): non-detractors are more often high-value, long-tenure customers, and the pooled gap
  counts that mix as if it were caused by NPS. The crude (pooled) figure is returned beside it.
* **Interval.** Monte Carlo (seeded): (a, b) drawn from their asymptotic normal distribution at
  τ̂ (the threshold is held at its estimate), the CLV gap from a normal with its standard error
  (the CLV simulation's draws, combined over strata); the 2.5% and 97.5% quantiles of the product.

References
----------
Rothman, K. J., Greenland, S. & Lash, T. L. (2008), Modern Epidemiology, ch. 4 (direct
standardisation). Gupta, S., Lehmann, D. R. & Stuart, J. A. (2004), "Valuing customers", JMR 41(1).
"""

from __future__ import annotations

import math
from statistics import NormalDist

import duckdb

from cxmetrics.core import lazy
from cxmetrics.core.filters import Filters
from cxmetrics.core.results import Estimate, Result
from cxmetrics.metrics.threshold import Threshold
from cxmetrics.store import stubs

np = lazy.module("numpy")
pd = lazy.module("pandas")

MIX_NOTE = ("The crude figure compares non-detractors and detractors across segments and tenure bands with "
            "different mixes (detractors are more often low-value, short-tenure customers); the adjusted figure "
            "compares them within segment and tenure band, weighted by the detractors' mix, so it counts only the "
            "difference that goes with being a detractor.")


def _z(alpha: float) -> float:
    return NormalDist().inv_cdf(1 - alpha / 2)


def _non_detractors(t: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Promoter and passive rows merged per ``keys`` into one customer-weighted non-detractor row."""
    nd = t[t["nps_group"] != "detractor"].replace([np.inf, -np.inf], np.nan).dropna(subset=["clv", "clv_se"])
    if nd.empty:
        return nd
    w = nd["customers"] / nd.groupby(keys)["customers"].transform("sum") if keys else nd["customers"] / nd["customers"].sum()
    parts = nd.assign(clv=w * nd["clv"], clv_se=(w * nd["clv_se"]) ** 2)
    agg = (parts.groupby(keys, as_index=False)[["customers", "clv", "clv_se"]].sum() if keys
           else parts[["customers", "clv", "clv_se"]].sum().to_frame().T)
    agg["clv_se"] = np.sqrt(agg["clv_se"])
    return agg.assign(nps_group="non_detractor")


def detractor_gap(pooled: Result, strata: Result | None = None):
    """CLV gap non-detractor − detractor per customer: segment-adjusted, with the crude one beside it.

    ``pooled`` is :func:`cxmetrics.clv.clv_by_group`; ``strata`` the same by segment and tenure band.
    Returns a :class:`cxmetrics.clv.MoneyEstimate` (``.crude`` holds the pooled gap), or None when
    there is no detractor or non-detractor CLV. SE = √(SE_nd² + SE_d²) with the groups' SEs from
    the CLV simulation draws, combined over strata as in :func:`cxmetrics.clv.standardise`.
    """
    from cxmetrics.metrics.clv import MoneyEstimate, standardise

    t = pooled.table
    if t.empty or "detractor" not in set(t["nps_group"]) or t["nps_group"].nunique() < 2:
        return None
    nd = _non_detractors(t, [])
    d = t[t["nps_group"] == "detractor"].iloc[0]
    if nd.empty or not (d["clv_se"] == d["clv_se"]):
        return None
    z = _z(pooled.alpha)
    g, se = float(nd["clv"].iloc[0] - d["clv"]), math.hypot(float(nd["clv_se"].iloc[0]), float(d["clv_se"]))
    crude = Estimate("clv_gap", "CLV gap non-detractor − detractor (crude)", g, g - z * se, g + z * se, se=se,
                     n=int(t["customers"].sum()), unit="EUR per customer", alpha=pooled.alpha,
                     method="customer-weighted CLV of promoters and passives minus detractors', pooled over segments",
                     reference=pooled.reference, filters=pooled.filters, assumptions=pooled.assumptions,
                     warnings=stubs.carried(pooled))
    if strata is None or strata.table.empty:
        return crude
    st = strata.table
    keys = [c for c in ("segment", "tenure") if c in st.columns]
    table = pd.concat([st[st["nps_group"] == "detractor"], _non_detractors(st, keys)], ignore_index=True)
    std, info = standardise(table, ("non_detractor", "detractor"), {"clv": "clv_se"}, strata=tuple(keys),
                            mix="detractor")
    if not std:
        return crude
    (cn, sn), (cd, sd) = std["non_detractor"]["clv"], std["detractor"]["clv"]
    g, se = cn - cd, math.hypot(sn, sd)
    warn = () if info["covered"] >= 0.995 else (
        f"Strata with both groups hold {info['covered']:.0%} of the detractors; the rest is left out of the adjustment.",)
    warn += stubs.carried(pooled)  # contract customers only: no stub customer is in this gap
    return MoneyEstimate("clv_gap", "CLV gap non-detractor − detractor", g, g - z * se, g + z * se, se=se,
                         n=crude.n, unit="EUR per customer", alpha=pooled.alpha,
                         method=(f"CLV non-detractor − detractor within {' × '.join(info['strata'])} "
                                 f"({info['strata_n']} strata), standardised to the detractors' mix"),
                         reference=pooled.reference + " Direct standardisation (Rothman et al. 2008, ch. 4).",
                         filters=pooled.filters, assumptions=pooled.assumptions, warnings=warn, crude=crude,
                         mix_note=MIX_NOTE, strata=info["strata"])


def clv_gap(con: duckdb.DuckDBPyConnection, filters: Filters):
    """The segment-adjusted CLV gap for ``filters`` and the horizon in years, or (None, reason)."""
    from cxmetrics.metrics import clv

    try:
        pooled = clv.clv_by_group(con, filters, draws=200)
        strata = clv.clv_by_group(con, filters, by_segment=True, by_tenure=True, draws=200)
    except Exception as exc:  # noqa: BLE001 — money is optional; the reason is shown
        return None, f"not yet linked ({type(exc).__name__})"
    gap = detractor_gap(pooled, strata)
    if gap is None:
        return None, "not yet linked (no CLV by NPS group for this selection)"
    return gap, float(pooled.extra.get("months", 60)) / 12


def money_at_risk(th: Threshold, x, n_year, gap: Estimate, *, horizon_years: float = 5.0, alpha: float = 0.05,
                  draws: int = 4000, seed: int = 18) -> dict:
    """Extra detractors a year beyond ``th`` and their CLV at risk, adjusted and crude, with intervals.

    ``x`` and ``n_year`` are the KPI values and their events in the last 12 months. Returns a dict
    with ``extra`` (point, low, high) and ``money`` / ``money_crude`` :class:`Estimate` objects.
    """
    x, n_year = np.asarray(x, float), np.asarray(n_year, float)
    extra = float((n_year * th.rise(x)).sum())
    rng = np.random.default_rng(seed)
    cov = np.nan_to_num(np.asarray(th.cov, float))
    ab = rng.multivariate_normal([th.intercept, th.slope], cov, size=draws, method="eigh")
    e_d = th.total_rise(x, n_year, ab[:, 0], ab[:, 1])
    lo_q, hi_q = alpha / 2, 1 - alpha / 2
    label = f"CLV at risk from a year's extra detractors ({horizon_years:g}-year horizon)"
    z = rng.standard_normal(draws)

    def money(g: Estimate, lab: str, method: str) -> Estimate:
        se = g.se if g.se is not None and g.se == g.se else 0.0
        sims = e_d * (g.estimate + se * z)
        lo, hi = np.quantile(sims, [lo_q, hi_q])
        return Estimate("money_at_risk", lab, extra * g.estimate, float(lo), float(hi), n=int(n_year.sum()), unit="EUR",
                        alpha=alpha, se=float(np.std(sims, ddof=1)), method=method, filters=g.filters,
                        assumptions=g.assumptions, warnings=g.warnings, queries=g.queries)

    how = (f"{extra:,.0f} extra detractors in the last 12 months × {{}} CLV gap over {horizon_years:g} years; "
           f"{draws:,}-draw Monte Carlo interval over the threshold model's (a, b) at τ̂ and the gap's SE")
    crude_gap = getattr(gap, "crude", None) or gap
    return {"extra": (extra, float(np.quantile(e_d, lo_q)), float(np.quantile(e_d, hi_q))),
            "money": money(gap, label, how.format(f"{gap.estimate:,.0f} ({gap.method})")),
            "money_crude": money(crude_gap, label + " (crude)", how.format(f"{crude_gap.estimate:,.0f} (crude, pooled)")),
            "mix_note": getattr(gap, "mix_note", "")}
