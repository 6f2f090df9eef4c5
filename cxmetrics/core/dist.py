"""The three distributions the intervals and tests use, without importing ``scipy.stats``.

``scipy.stats`` takes 0.6–1 s to import: more than a metric command's whole computation on a small
store, and paid again by every fresh process (the CLI, the app's first page). What the metrics need
from it is a handful of functions:

* the standard normal's quantile, CDF and survival function: Python's own
  :class:`statistics.NormalDist` (Wichura's AS241 quantile, about 1e-16 relative error) and
  :func:`math.erfc`, no import at all;
* Student's t and the chi-square: the same special functions ``scipy.stats`` itself evaluates
  (``stdtr``, ``stdtrit``, ``chdtrc``, ``gammaincinv``), from ``scipy.special`` (about 0.2 s, loaded on
  first use).

``tests/test_inference.py`` checks every function here against ``scipy.stats`` on a grid that
reaches far into the tails. Each function takes a float or an array (returned as a float or a
numpy array).
"""

from __future__ import annotations

import math
from statistics import NormalDist

from cxmetrics.core import lazy

np = lazy.module("numpy")
special = lazy.module("scipy.special")

_STD = NormalDist()
_SQRT2 = math.sqrt(2.0)


def _each(f, x):
    """``f`` on a float, or elementwise on an array-like (a float array back)."""
    if isinstance(x, (int, float)):
        return f(float(x))
    arr = np.asarray(x, dtype=float)
    if arr.ndim == 0:
        return f(float(arr))
    return np.fromiter((f(float(v)) for v in arr.ravel()), dtype=float, count=arr.size).reshape(arr.shape)


def _norm_ppf(p: float) -> float:
    if p != p or p < 0.0 or p > 1.0:  # NaN or outside [0, 1]
        return math.nan
    if p == 0.0:
        return -math.inf
    if p == 1.0:
        return math.inf
    return _STD.inv_cdf(p)


class _Normal:
    """The standard normal (as ``scipy.stats.norm`` with loc 0, scale 1)."""

    @staticmethod
    def ppf(p):
        """Quantile: ``ppf(0.975)`` ≈ 1.959964."""
        return _each(_norm_ppf, p)

    @staticmethod
    def cdf(x):
        return _each(lambda v: 0.5 * math.erfc(-v / _SQRT2), x)

    @staticmethod
    def sf(x):
        """1 − CDF, accurate far in the upper tail."""
        return _each(lambda v: 0.5 * math.erfc(v / _SQRT2), x)


class _StudentT:
    """Student's t with ``df`` degrees of freedom (as ``scipy.stats.t``)."""

    @staticmethod
    def ppf(p, df):
        return _float(special.stdtrit(df, p))

    @staticmethod
    def cdf(x, df):
        return _float(special.stdtr(df, x))

    @staticmethod
    def sf(x, df):
        return _float(special.stdtr(df, -np.asarray(x, dtype=float)))


class _ChiSquare:
    """The chi-square with ``df`` degrees of freedom (as ``scipy.stats.chi2``)."""

    @staticmethod
    def ppf(p, df):
        return _float(2.0 * special.gammaincinv(np.asarray(df, dtype=float) / 2.0, p))

    @staticmethod
    def sf(x, df):
        return _float(special.chdtrc(df, x))


def _float(v):
    arr = np.asarray(v, dtype=float)
    return float(arr) if arr.ndim == 0 else arr


norm = _Normal()
t = _StudentT()
chi2 = _ChiSquare()
