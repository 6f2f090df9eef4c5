"""The Wilson interval and Benjamini–Hochberg q-values, without importing statsmodels.

statsmodels' ``proportion_confint`` and ``multipletests`` compute the same; importing either costs
about 0.6 s (it loads ``scipy.stats`` and statsmodels' base), paid by the first page or command
that shows a share with its interval or the "what moved" list: the app's cold start. The formulas
are a few lines; ``tests/test_native_stats.py`` checks both against statsmodels.

References: Wilson, E. B. (1927), "Probable inference, the law of succession, and statistical
inference", JASA 22(158). Benjamini, Y. & Hochberg, Y. (1995), "Controlling the false discovery
rate", JRSS B 57(1).
"""

from __future__ import annotations

import math

from cxmetrics.core import lazy
from cxmetrics.core.dist import norm

np = lazy.module("numpy")


def wilson(k, n, alpha: float = 0.05):
    """Wilson score interval for ``k`` successes out of ``n``: (low, high) as floats for numbers,
    arrays for arrays; NaN where ``n`` is not positive; exactly 0 at k = 0 and 1 at k = n (where
    rounding would leave the bound just outside), and clipped to [0, 1].

    >>> [round(v, 4) for v in wilson(10, 100)]
    [0.0552, 0.1744]
    """
    if np.ndim(k) == 0 and np.ndim(n) == 0:  # one cell (the metrics' tables call it per row)
        return _wilson_one(float(k), float(n), alpha)
    k, n = np.broadcast_arrays(np.asarray(k, dtype=float), np.asarray(n, dtype=float))
    z = norm.ppf(1 - alpha / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        denom = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
        lo = np.where(k <= 0, 0.0, np.maximum(centre - half, 0.0))
        hi = np.where(k >= n, 1.0, np.minimum(centre + half, 1.0))
    ok = n > 0
    return np.where(ok, lo, np.nan), np.where(ok, hi, np.nan)


def _wilson_one(k: float, n: float, alpha: float) -> tuple[float, float]:
    """:func:`wilson` for one cell, in plain floats (the same operations, a tenth of the time)."""
    if not n > 0:
        return math.nan, math.nan
    z = norm.ppf(1 - alpha / 2)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (0.0 if k <= 0 else max(centre - half, 0.0)), (1.0 if k >= n else min(centre + half, 1.0))


def benjamini_hochberg(p, q: float = 0.05):
    """Benjamini–Hochberg step-up over the p-values ``p``: (reject, adjusted p-values), in the order
    given. The adjusted p-value (q-value) of the i-th smallest is min over j ≥ i of p₍ⱼ₎·m/j, capped
    at 1; a hypothesis is rejected when it is at most ``q``.

    >>> reject, adj = benjamini_hochberg([0.01, 0.04, 0.03, 0.5])
    >>> reject.tolist(), [round(v, 3) for v in adj]
    ([True, False, False, False], [0.04, 0.053, 0.053, 0.5])
    """
    p = np.asarray(p, dtype=float)
    m = p.size
    if m == 0:
        return np.zeros(0, dtype=bool), np.zeros(0)
    order = np.argsort(p, kind="mergesort")
    ranked = p[order] * m / np.arange(1, m + 1)
    adj_sorted = np.minimum(np.minimum.accumulate(ranked[::-1])[::-1], 1.0)
    adj = np.empty(m)
    adj[order] = adj_sorted
    return adj <= q, adj
