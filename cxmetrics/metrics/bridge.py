"""The CX-to-P&L bridge model: retention, enrichment, advocacy and cost savings, minus cost.

After Forrester's CX Index revenue model (retention, enrichment, advocacy), as defined in
DESIGN.md "CX-to-P&L bridge". This module is pure arithmetic on :class:`Quantity` inputs (an
estimate with a standard error); :mod:`cxmetrics.pnl` gathers the inputs from the store.

Scenario: ``moved`` customers change from detractor to the ``to`` group (passive or promoter).
For one moved customer, with yearly periods ``t = 1..H``, discount factor ``D(t) = (1+d)^−t``,
gross margin ``g`` and the yearly survival of a group ``S_g(t) = (1 − c_g)^t`` (``c_g`` its
annual churn):

* retention   = g · r_det · Σ_t D(t) [S_to(t) − S_det(t)]          (churn avoided at today's revenue)
* enrichment  = ΔSoW · wallet · g · Σ_t D(t) S_to(t)                (share-of-wallet gain)
* advocacy    = [to is promoter] · referral_rate · referral_conversion
                · Σ_t D(t) S_to(t) · [g · r_new · Σ_{u=1..H−t} S_new(u)/(1+d)^u − acquisition_cost]
  (a customer referred in year t is valued over the rest of the horizon only, net of its
  acquisition cost)
* cost saving = cost_per_complaint · Σ_t D(t) [k_det S_det(t) − k_to S_to(t)]
  (complaints are avoided only in years the customer would still have been a customer)

where ``r_det`` is a detractor's yearly revenue, ``r_new``/``c_new`` a new customer's yearly
revenue and churn, and ``k_g`` a group's complaints per customer-year. Every assumption enters
here and nowhere upstream, so the tornado and the break-even (which call :func:`net`) see its
full effect. Each component is multiplied by ``moved`` and by the ``attribution_share`` (the
share of the change finance credits to CX), then ``net = Σ components − programme_cost`` and
``ROI = net / programme_cost``.

References
----------
Forrester, "The US Customer Experience Index" revenue model (retention, enrichment, advocacy).
Morgan & Henrion (1990), "Uncertainty: A Guide to Dealing with Uncertainty in Quantitative Risk
and Policy Analysis", ch. 8: Monte Carlo propagation of judgemental ranges.
Gupta, Lehmann & Stuart (2004), "Valuing customers", J. Marketing Research 41(1): CLV as
discounted margin × retention.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from cxmetrics.core import lazy

np = lazy.module("numpy")

COMPONENTS = ("retention", "enrichment", "advocacy", "cost_savings")
LABELS = {
    "retention": "Retention (churn avoided)",
    "enrichment": "Enrichment (share of wallet)",
    "advocacy": "Advocacy (referrals)",
    "cost_savings": "Cost savings (complaints)",
    "programme_cost": "Programme cost",
    "net": "Net impact",
}


@dataclass(frozen=True)
class Quantity:
    """An input: its estimate, standard error (0 when it is an assumption) and where it came from."""

    value: float
    se: float = 0.0
    source: str = ""

    def draw(self, rng: np.random.Generator, size: int, lo: float = -math.inf, hi: float = math.inf) -> np.ndarray:
        if self.se <= 0:
            return np.full(size, self.value)
        return np.clip(rng.normal(self.value, self.se, size), lo, hi)


@dataclass(frozen=True)
class BridgeInputs:
    """Everything the bridge needs. Estimated inputs carry SEs; assumptions are plain numbers."""

    moved: float
    to: str  # "passive" or "promoter"
    churn_det: Quantity  # annual churn probability of a detractor
    churn_to: Quantity  # annual churn probability of the target group
    revenue_det: Quantity  # yearly revenue of a detractor (before gross margin)
    sow_gain: Quantity  # share-of-wallet gain, as a share (0.15 = 15 points)
    wallet: Quantity  # yearly category wallet per customer
    complaints_det: Quantity  # complaints per customer-year of a detractor
    complaints_to: Quantity  # complaints per customer-year of the target group
    revenue_new: Quantity  # yearly revenue of a referred new customer (before gross margin)
    churn_new: Quantity  # annual churn probability of a referred new customer
    programme_cost: float
    assumptions: dict[str, float] = field(default_factory=dict)
    # keys used: gross_margin, discount_rate, horizon_years, referral_rate, referral_conversion,
    # cost_per_complaint, attribution_share, acquisition_cost (0 when absent)

    def with_assumption(self, key: str, value: float) -> BridgeInputs:
        return replace(self, assumptions={**self.assumptions, key: value})


def annuity(churn: np.ndarray | float, discount: float, horizon: float) -> np.ndarray | float:
    """Σ_{t=1..H} (1−c)^t / (1+d)^t for yearly churn ``c`` (vectorised over ``c``).

    >>> round(annuity(0.0, 0.0, 3), 6)
    3.0
    >>> round(annuity(0.5, 0.0, 2), 6)  # 0.5 + 0.25
    0.75
    """
    h = int(round(horizon))
    q = (1 - np.asarray(churn, dtype=float)) / (1 + discount)
    return sum((q ** t for t in range(1, h + 1)), 0.0 * q)


def components(inp: BridgeInputs, *, draws: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray | float]:
    """Money of each component (vectorised when ``draws`` holds simulated inputs)."""
    a = inp.assumptions
    v = draws or {}

    def q(name: str):
        return v[name] if name in v else getattr(inp, name).value

    d, h, g = a["discount_rate"], a["horizon_years"], a["gross_margin"]
    a_to = annuity(q("churn_to"), d, h)
    a_det = annuity(q("churn_det"), d, h)
    share = a.get("attribution_share", 1.0) * inp.moved
    if inp.to == "promoter":
        # a referral made in year t brings a customer valued over the years t+1..H that remain
        hh = int(round(h))
        q_to = (1 - np.asarray(q("churn_to"), float)) / (1 + d)
        m_new = g * np.asarray(q("revenue_new"), float)
        clv_left = [m_new * annuity(q("churn_new"), d, hh - t) - a.get("acquisition_cost", 0.0) for t in range(1, hh + 1)]
        referred = sum(q_to ** t * clv_left[t - 1] for t in range(1, hh + 1))
        advocacy = share * a["referral_rate"] * a["referral_conversion"] * referred
    else:
        advocacy = 0.0 * a_to
    out = {
        "retention": share * g * q("revenue_det") * (a_to - a_det),
        "enrichment": share * q("sow_gain") * q("wallet") * g * a_to,
        "advocacy": advocacy,
        "cost_savings": share * a["cost_per_complaint"] * (q("complaints_det") * a_det - q("complaints_to") * a_to),
    }
    total = sum(out[c] for c in COMPONENTS)
    out["programme_cost"] = -inp.programme_cost + 0.0 * total
    out["net"] = total - inp.programme_cost
    return out


def net(inp: BridgeInputs) -> float:
    return float(components(inp)["net"])


def roi(inp: BridgeInputs) -> float | None:
    return net(inp) / inp.programme_cost if inp.programme_cost > 0 else None


_INPUT_BOUNDS = {
    "churn_det": (0.0, 1.0), "churn_to": (0.0, 1.0), "revenue_det": (0.0, math.inf), "sow_gain": (-1.0, 1.0),
    "wallet": (0.0, math.inf), "complaints_det": (0.0, math.inf), "complaints_to": (0.0, math.inf),
    "revenue_new": (0.0, math.inf), "churn_new": (0.0, 1.0),
}


DISTRIBUTIONS = ("triangular", "uniform")


def draw_assumptions(inp: BridgeInputs, ranges: dict[str, tuple[float, float]], rng: np.random.Generator, size: int,
                     distribution: str = "triangular") -> dict[str, np.ndarray]:
    """Draws of each assumption of ``inp`` that has a range (low, high).

    ``triangular``: low, mode = the assumption's value, high; ``uniform``: low to high. A
    degenerate range (low = high) gives the value itself. The horizon is rounded to whole years.
    Keys the bridge does not use are ignored.
    """
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, not {distribution!r}")
    out = {}
    for key, (lo, hi) in sorted(ranges.items()):
        if key not in inp.assumptions:
            continue
        mode = float(inp.assumptions[key])
        if hi <= lo:
            x = np.full(size, mode)
        elif distribution == "uniform":
            x = rng.uniform(lo, hi, size)
        else:
            x = rng.triangular(lo, min(max(mode, lo), hi), hi, size)
        out[key] = np.rint(x) if key == "horizon_years" else x
    return out


def _components_over(inp: BridgeInputs, draws: dict[str, np.ndarray], adraws: dict[str, np.ndarray],
                     size: int) -> dict[str, np.ndarray]:
    """:func:`components` with drawn assumptions; draws sharing a horizon are computed together."""
    horizons = adraws.get("horizon_years", np.full(size, float(inp.assumptions["horizon_years"])))
    out: dict[str, np.ndarray] = {}
    for h in np.unique(horizons):
        idx = horizons == h
        sub = {k: v[idx] for k, v in draws.items()}
        a = {**inp.assumptions, **{k: v[idx] for k, v in adraws.items() if k != "horizon_years"},
             "horizon_years": float(h)}
        for k, v in components(replace(inp, assumptions=a), draws=sub).items():
            out.setdefault(k, np.empty(size))[idx] = np.broadcast_to(np.asarray(v, dtype=float), (int(idx.sum()),))
    return out


def simulate(inp: BridgeInputs, *, n_draws: int = 4000, seed: int = 0, alpha: float = 0.05,
             assumption_ranges: dict[str, tuple[float, float]] | None = None,
             distribution: str = "triangular") -> dict[str, tuple[float, float, float]]:
    """Propagate input uncertainty by parametric bootstrap: (estimate, low, high) per component.

    Each estimated input is drawn from a normal with its standard error (clipped to its valid
    range). Without ``assumption_ranges`` the assumptions are held fixed (their effect is shown by
    :func:`tornado`): the interval is statistical only. With them, each assumption that has a
    range is drawn too (:func:`draw_assumptions`, from a second generator seeded from ``seed`` so
    the statistical draws are the same with or without ranges), jointly with the statistical
    draws: a Monte Carlo interval of statistical *and* assumption uncertainty (Morgan & Henrion
    1990, "Uncertainty", ch. 8; the ranges are judgements, so the interval is a judgement too).
    The interval is the ``alpha/2`` and ``1 − alpha/2`` percentiles of the simulated values; the
    point estimate is the value at the input estimates and the assumptions' values (so it always
    lies inside a sensible interval).
    """
    rng = np.random.default_rng(seed)
    draws = {name: getattr(inp, name).draw(rng, n_draws, *_INPUT_BOUNDS[name]) for name in _INPUT_BOUNDS}
    if assumption_ranges:
        adraws = draw_assumptions(inp, assumption_ranges, np.random.default_rng([seed, 1]), n_draws, distribution)
        sim = _components_over(inp, draws, adraws, n_draws)
    else:
        sim = components(inp, draws=draws)
    point = components(inp)
    out = {}
    for k, arr in sim.items():
        arr = np.broadcast_to(np.asarray(arr, dtype=float), (n_draws,))
        lo, hi = np.quantile(arr, [alpha / 2, 1 - alpha / 2])
        out[k] = (float(point[k]), float(min(lo, point[k])), float(max(hi, point[k])))
    return out


def default_range(key: str, value: float) -> tuple[float, float]:
    from cxmetrics.store.assumptions import RULES

    rule = RULES.get(key)
    if rule and rule.sensitivity:
        return rule.sensitivity
    lo, hi = value * 0.75, value * 1.25
    if rule:
        lo, hi = max(lo, rule.min), min(hi, rule.max)
    return lo, hi


def tornado(inp: BridgeInputs, ranges: dict[str, tuple[float, float]] | None = None) -> list[dict]:
    """Net impact at the low and high end of each assumption's range, widest swing first."""
    rows = []
    keys = list(inp.assumptions) + ["programme_cost", "moved"]
    for key in keys:
        base = inp.assumptions.get(key, getattr(inp, key, None))
        lo, hi = (ranges or {}).get(key) or default_range(key, base)
        nets = [net(_set(inp, key, x)) for x in (lo, hi)]
        rows.append({"assumption": key, "base": base, "low": lo, "high": hi,
                     "net_at_low": nets[0], "net_at_high": nets[1], "swing": abs(nets[1] - nets[0])})
    return sorted(rows, key=lambda r: -r["swing"])


def _set(inp: BridgeInputs, key: str, value: float) -> BridgeInputs:
    if key in ("programme_cost", "moved"):
        return replace(inp, **{key: value})
    return inp.with_assumption(key, value)


def break_even(inp: BridgeInputs, key: str, lo: float, hi: float) -> float | None:
    """The value of ``key`` in [lo, hi] at which net impact is zero, or None if it never crosses.

    Net impact is monotone in every assumption of the model, so a bracketing root is unique.
    """
    f = lambda x: net(_set(inp, key, x))  # noqa: E731
    flo, fhi = f(lo), f(hi)
    if flo == 0:
        return lo
    if fhi == 0:
        return hi
    if (flo > 0) == (fhi > 0):
        return None
    return brent(f, lo, hi, flo, fhi, xtol=1e-9)


def brent(f, a: float, b: float, fa: float, fb: float, *, xtol: float = 1e-12, rtol: float = 4 * 2.220446049250313e-16,
          maxiter: int = 100) -> float:
    """A root of ``f`` in [a, b], where f(a) = ``fa`` and f(b) = ``fb`` have opposite signs, to
    within ``xtol + rtol·|x|``: Brent's method (Brent 1973, ch. 4), the steps of scipy's ``brentq``
    (inverse quadratic or secant steps while they shrink the bracket fast enough, bisection
    otherwise), without importing ``scipy.optimize`` (0.2 s, paid by the first page that shows a
    break-even). ``tests/test_native_stats.py`` checks that it takes ``brentq``'s steps: the same
    root, bit for bit, after the same number of evaluations.

    Brent, R. P. (1973), *Algorithms for Minimization without Derivatives*, Prentice-Hall.

    >>> round(brent(lambda x: x * x - 2, 0.0, 2.0, -2.0, 2.0), 12)
    1.414213562373
    """
    xpre, xcur, fpre, fcur = float(a), float(b), float(fa), float(fb)
    if fpre == 0:
        return xpre
    if fcur == 0:
        return xcur
    xblk = fblk = spre = scur = 0.0
    for _ in range(maxiter):
        if fpre != 0 and fcur != 0 and (fpre < 0) != (fcur < 0):
            xblk, fblk = xpre, fpre  # the bracket's other end
            spre = scur = xcur - xpre
        if abs(fblk) < abs(fcur):  # keep the best guess in xcur
            xpre, xcur, xblk = xcur, xblk, xcur
            fpre, fcur, fblk = fcur, fblk, fcur
        delta = (xtol + rtol * abs(xcur)) / 2
        sbis = (xblk - xcur) / 2
        if fcur == 0 or abs(sbis) < delta:
            return xcur
        if abs(spre) > delta and abs(fcur) < abs(fpre):
            if xpre == xblk:  # secant
                stry = -fcur * (xcur - xpre) / (fcur - fpre)
            else:  # inverse quadratic interpolation
                dpre = (fpre - fcur) / (xpre - xcur)
                dblk = (fblk - fcur) / (xblk - xcur)
                stry = -fcur * (fblk * dblk - fpre * dpre) / (dblk * dpre * (fblk - fpre))
            if 2 * abs(stry) < min(abs(spre), 3 * abs(sbis) - delta):
                spre, scur = scur, stry  # the interpolation step is good
            else:
                spre = scur = sbis
        else:
            spre = scur = sbis
        xpre, fpre = xcur, fcur
        xcur += scur if abs(scur) > delta else (delta if sbis > 0 else -delta)
        fcur = float(f(xcur))
    return xcur
