"""Intervals for break-even values of the CX-to-P&L bridge.

A break-even value is the value of one assumption (gross margin, attribution share, …) at which
the bridge's net impact is zero (:func:`cxmetrics.bridge.break_even`). The assumption itself is
not estimated, but where net impact crosses zero depends on the estimated inputs (churn, revenue,
share-of-wallet gain, complaints), so the break-even carries their uncertainty. Interval: the
same parametric bootstrap as the bridge's own interval (:func:`cxmetrics.bridge.simulate`: each
estimated input drawn from a normal with its SE, clipped to its range, seeded); for every draw the
root is found by bisection on the bracket, and the interval is the percentile interval of the
roots. Draws whose net impact keeps its sign over the whole bracket have no break-even; their
share is reported, and with more than ``alpha / 2`` of them no interval is given.

References
----------
Efron, B. & Tibshirani, R. (1993), An Introduction to the Bootstrap, ch. 6 and 13 (parametric
bootstrap, percentile interval).
"""

from __future__ import annotations

from cxmetrics.core import lazy
from cxmetrics.metrics import bridge

np = lazy.module("numpy")

#: Bisection steps: the bracket shrinks by 2^-60, far below any reported precision.
STEPS = 60


def _net(inp: bridge.BridgeInputs, key: str, draws: dict[str, np.ndarray] | None, n: int):
    """Net impact as a function of ``key``'s value, for each draw of the inputs."""
    def f(x: np.ndarray) -> np.ndarray:
        return np.broadcast_to(np.asarray(bridge.components(bridge._set(inp, key, x), draws=draws)["net"], float), (n,))

    return f


def _crosses(f, lo: float, hi: float, n: int) -> tuple[np.ndarray, ...]:
    """(a, b, f(a), f(b), whether net impact crosses zero on [lo, hi]) for each draw."""
    a, b = np.full(n, float(lo)), np.full(n, float(hi))
    fa, fb = f(a), f(b)
    return a, b, fa, fb, (fa == 0) | (fb == 0) | ((fa > 0) != (fb > 0))


def roots(inp: bridge.BridgeInputs, key: str, lo: float, hi: float, draws: dict[str, np.ndarray] | None = None,
          n: int = 1) -> np.ndarray:
    """The break-even of ``key`` in [lo, hi] for each draw of the inputs (NaN where net impact
    does not cross zero), by vectorised bisection on :func:`cxmetrics.bridge.components`."""
    f = _net(inp, key, draws, n)
    a, b, fa, fb, ok = _crosses(f, lo, hi, n)
    if not ok.any():  # no draw breaks even in the bracket: nothing to bisect
        return np.full(n, np.nan)
    for _ in range(STEPS):
        m = (a + b) / 2
        fm = f(m)
        left = (fm > 0) == (fa > 0)
        a, fa = np.where(left, m, a), np.where(left, fm, fa)
        b = np.where(left, b, m)
    out = (a + b) / 2
    out = np.where(f(np.full(n, float(lo))) == 0, lo, out)
    return np.where(ok, out, np.nan)


def interval(inp: bridge.BridgeInputs, key: str, lo: float, hi: float, *, n_draws: int = 1000, seed: int = 0,
             alpha: float = 0.05) -> dict[str, float]:
    """Break-even of ``key`` with its percentile interval over ``n_draws`` parametric draws of the
    estimated inputs: ``{"break_even", "ci_low", "ci_high", "no_crossing_share"}``. No interval
    (NaN bounds) when more than ``alpha / 2`` of the draws have no break-even in the bracket: the
    interval would then reach past the bracket, and the share says how often. Without a break-even
    at the inputs' values there is no interval either, and the draws are only checked for a
    crossing (their roots are not sought)."""
    rng = np.random.default_rng(seed)
    draws = {name: getattr(inp, name).draw(rng, n_draws, *bound) for name, bound in bridge._INPUT_BOUNDS.items()}
    point = roots(inp, key, lo, hi)[0]
    if np.isnan(point):
        missing = float(1 - _crosses(_net(inp, key, draws, n_draws), lo, hi, n_draws)[-1].mean())
        return {"break_even": float(point), "ci_low": float("nan"), "ci_high": float("nan"), "no_crossing_share": missing}
    r = roots(inp, key, lo, hi, draws, n_draws)
    missing = float(np.isnan(r).mean())
    if missing > alpha / 2:
        low = high = float("nan")  # too many draws never break even in the bracket: no interval
    else:
        low, high = (float(v) for v in np.nanquantile(r, [alpha / 2, 1 - alpha / 2]))
    return {"break_even": float(point), "ci_low": low, "ci_high": high, "no_crossing_share": missing}
