"""The three distributions the intervals and tests use, without importing ``scipy.stats``.

``scipy.stats`` takes 0.6–1 s to import: more than a metric command's whole computation on a small
store, and paid again by every fresh process (the CLI, the app's first page). What the metrics need
from it is a handful of functions:

* the standard normal's quantile, CDF and survival function: Python's own
  :class:`statistics.NormalDist` (Wichura's AS241 quantile, about 1e-16 relative error) and
  :func:`math.erfc`, no import at all;
* Student's t (the mean-score and share-of-wallet intervals every page shows): its tail is
  ½·I_w(df/2, ½), the regularized incomplete beta at w = df/(df + x²), evaluated here with
  DiDonato and Morris's continued fraction (TOMS 708's BFRAC; λ taken from 1 − w, so a million
  degrees of freedom lose nothing) and, near the centre, its series of positive terms. That keeps
  ``scipy.special`` (0.15–0.2 s to import) off the Executive summary's first call;
* the chi-square (the KPI threshold's likelihood-ratio test and profile interval, on the Executive
  summary too): the regularized incomplete gamma by its series below the mean and Lentz's
  continued fraction above, the quantile by Newton's method on its logarithm in a bracket.

``tests/test_inference.py`` checks every function here against ``scipy.stats`` on a grid that
reaches far into the tails, and Student's t and the chi-square also against 50-digit values from
``mpmath`` (where ``scipy``'s ``stdtr`` itself is off: 3e-9 relative near 0 with one degree of
freedom). Each function takes a float or an array (returned as a float or a numpy array).
"""

from __future__ import annotations

import math
from statistics import NormalDist

from cxmetrics.core import lazy

np = lazy.module("numpy")

_STD = NormalDist()
_SQRT2 = math.sqrt(2.0)
_LN_SQRT_PI = 0.5 * math.log(math.pi)
_EPS = 1e-16


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


def _stirling(z):
    """lgamma(z) − ((z − ½)·ln z − z + ½·ln 2π), for z ≥ 8: the Stirling series to z⁻¹³."""
    r = 1.0 / (z * z)
    return (1.0 / 12 + r * (-1.0 / 360 + r * (1.0 / 1260 + r * (-1.0 / 1680 + r * (1.0 / 1188 + r * (-691.0 / 360360 + r / 156)))))) / z


def _ln_beta_half(a):
    """ln B(a, ½), without the cancellation of ``lgamma(a) − lgamma(a + ½)`` for large a."""
    if a < 8.0:
        return math.lgamma(a) + _LN_SQRT_PI - math.lgamma(a + 0.5)
    # ln Γ(a + ½) − ln Γ(a) = a·ln(1 + 1/2a) − ½ + ½·ln a + s(a + ½) − s(a)
    d = (a * math.log1p(0.5 / a) - 0.5) + 0.5 * math.log(a) + (_stirling(a + 0.5) - _stirling(a))
    return _LN_SQRT_PI - d


def _bfrac(a, b, x, y, lam):
    """I_x(a, b)·B(a, b)/(xᵃ·yᵇ) by DiDonato and Morris's continued fraction (TOMS 708, BFRAC),
    for λ = a − (a + b)·x ≥ 0, given y = 1 − x and λ computed from y without cancellation."""
    c, c0, c1, yp1 = 1.0 + lam, b / a, 1.0 + 1.0 / a, y + 1.0
    n, p, s = 0.0, 1.0, a + 1.0
    an, bn, anp1, bnp1 = 0.0, 1.0, 1.0, c / c1
    r = c1 / c
    for _ in range(100_000):
        n += 1.0
        t = n / a
        w = n * (b - n) * x
        e = a / s
        alpha = (p * (p + c0) * e * e) * (w * x)
        e = (1.0 + t) / (c1 + t + t)
        beta = n + w / s + e * (c + n * yp1)
        p = 1.0 + t
        s += 2.0
        an, anp1 = anp1, alpha * an + beta * anp1
        bn, bnp1 = bnp1, alpha * bn + beta * bnp1
        r0, r = r, anp1 / bnp1
        if abs(r - r0) <= _EPS * r:
            return r
        an, bn, anp1, bnp1 = an / bnp1, bn / bnp1, r, 1.0
    raise ArithmeticError("incomplete beta: no convergence")


def _t_tail(x, df):
    """P(T > |x|) for Student's t with df degrees of freedom, ½·I_w(df/2, ½) with w = df/(df + x²).

    Both w and v = 1 − w = x²/(df + x²) enter only through their own logarithms and through λ, so
    the large-df case, where w is within 1/df of 1, loses nothing to cancellation."""
    a = 0.5 * df
    x2 = x * x
    if x2 == 0.0:
        return 0.5, 0.0
    v = x2 / (df + x2)
    lw = -math.log1p(x2 / df)  # ln w
    lv = -math.log1p(df / x2)  # ln v
    lnb = _ln_beta_half(a)
    lam = (a + 0.5) * v - 0.5  # a − (a + ½)·w
    if lam >= 0.0:
        tail = 0.5 * math.exp(a * lw + 0.5 * lv - lnb) * _bfrac(a, 0.5, math.exp(lw), v, lam)
        return tail, 0.5 - tail
    # near the centre (v < 1/(df + 1)): I_v(½, a) by its series of positive terms, ratio < ⅓
    term, total, n = 1.0, 1.0, 0
    while term > _EPS * total:
        term *= (a + 0.5 + n) / (1.5 + n) * v
        total += term
        n += 1
    centre = math.exp(0.5 * lv + a * lw - lnb) * total
    return 0.5 - centre, centre


def _t_sf(x, df):
    if x != x or df != df or df <= 0:
        return math.nan
    if math.isinf(x):
        return 0.0 if x > 0 else 1.0
    tail, centre = _t_tail(x, df)
    return tail if x >= 0 else 0.5 + centre


def _t_cdf(x, df):
    return _t_sf(-x, df) if x == x else math.nan


def _t_logpdf(x, df):
    return -_ln_beta_half(0.5 * df) - 0.5 * math.log(df) - 0.5 * (df + 1.0) * math.log1p(x * x / df)


def _t_ppf(p, df):
    """The quantile: Newton's method inside a shrinking bracket, on the centre's probability near
    the median and on the tail's logarithm beyond, so both ends keep full relative precision."""
    if p != p or df != df or df <= 0 or p < 0.0 or p > 1.0:
        return math.nan
    if p == 0.0:
        return -math.inf
    if p == 1.0:
        return math.inf
    if p == 0.5:
        return 0.0
    sign, q = (-1.0, p) if p < 0.5 else (1.0, 1.0 - p)  # q: the upper tail, exact for p ≥ ½
    if df == 1.0:
        return sign * (1.0 / math.tan(math.pi * q) if q < 0.25 else math.tan(math.pi * (0.5 - q)))
    if df == 2.0:
        return sign * (1.0 - 2.0 * q) / math.sqrt(2.0 * q * (1.0 - q))
    # the bracket: below, the normal's quantile (t's tails are heavier); above, the root of the
    # bound P(T > x) ≤ df^(df/2 − 1)·x^(−df)/B(df/2, ½), from (1 + x²/df) > x²/df in the density
    lo = -_STD.inv_cdf(q)
    hi = math.sqrt(df) * math.exp(-(math.log(q) + math.log(df) + _ln_beta_half(0.5 * df)) / df)
    x = lo * (1.0 + (lo * lo + 1.0) / (4.0 * df))  # Cornish–Fisher's first term
    if not lo < x < hi:
        x = 0.5 * (lo + hi)
    lq, half = math.log(q), 0.5 - q  # half: exact for q ≥ ¼
    for _ in range(200):
        tail, centre = _t_tail(x, df)
        if (centre < half) if q >= 0.25 else (tail > q):  # x is below the quantile
            lo = x
        else:
            hi = x
        if q >= 0.25:  # near the centre: Newton on P(0 < T < x) − (½ − q)
            nx = x + (half - centre) * math.exp(-_t_logpdf(x, df))
        elif tail > 0.0:  # in the tail: on ln P(T > x) − ln q, nearly linear in ln x
            nx = x + (math.log(tail) - lq) * math.exp(math.log(tail) - _t_logpdf(x, df))
        else:
            nx = hi
        if abs(nx - x) <= 1e-15 * abs(x):
            return sign * nx
        x = nx if lo < nx < hi else 0.5 * (lo + hi)
    return sign * x


def _gamma_pq(a, x):
    """The regularized incomplete gamma functions (P(a, x), Q(a, x)), the smaller one computed
    directly: the series for P when x < a + 1, Lentz's continued fraction for Q beyond."""
    if x <= 0.0:
        return 0.0, 1.0
    front = math.exp(a * math.log(x) - x - math.lgamma(a))
    if x < a + 1.0:
        ap, term, total = a, 1.0 / a, 1.0 / a
        while abs(term) > _EPS * total:
            ap += 1.0
            term *= x / ap
            total += term
        p = front * total
        return p, 1.0 - p
    b = x + 1.0 - a
    c, d = 1.0 / 1e-300, 1.0 / b
    h = d
    for i in range(1, 100_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = 1.0 / (d if abs(d) > 1e-300 else 1e-300)
        c = b + an / c
        c = c if abs(c) > 1e-300 else 1e-300
        de = d * c
        h *= de
        if abs(de - 1.0) <= _EPS:
            break
    q = front * h
    return 1.0 - q, q


def _chi2_sf(x, df):
    if x != x or df != df or df <= 0:
        return math.nan
    return 1.0 if x <= 0 else 0.0 if math.isinf(x) else _gamma_pq(0.5 * df, 0.5 * x)[1]


def _chi2_ppf(p, df):
    """The quantile: Newton's method on ln P (below the median) or ln Q (above) in a bracket."""
    if p != p or df != df or df <= 0 or p < 0.0 or p > 1.0:
        return math.nan
    if p == 0.0:
        return 0.0
    if p == 1.0:
        return math.inf
    a = 0.5 * df
    upper = p > 0.5
    target = math.log(1.0 - p if upper else p)
    lo, hi = 0.0, math.inf
    z = _STD.inv_cdf(p)  # Wilson and Hilferty's cube for a start
    c = 1.0 / (9.0 * a)
    y = a * (1.0 - c + z * math.sqrt(c)) ** 3 if 1.0 - c + z * math.sqrt(c) > 0 else a * 1e-3
    if not upper:  # far down P(a, y) ≈ yᵃ/Γ(a + 1)
        ln_small = (math.log(p) + math.lgamma(a + 1.0)) / a
        if ln_small < -700.0:
            return 0.0  # below the smallest double, as scipy returns
        y = min(y, math.exp(ln_small))
    for _ in range(300):
        pp, qq = _gamma_pq(a, y)
        f = qq if upper else pp
        if (qq > 1.0 - p) if upper else (pp < p):  # y is below the quantile
            lo = y
        else:
            hi = y
        if f > 0.0:
            # Newton on ln P (or ln Q) against ln y: d ln P/d ln y = y·density/P
            g = math.exp(a * math.log(y) - y - math.lgamma(a)) / f
            ny = y * math.exp((target - math.log(f)) / (-g if upper else g))
        else:
            ny = math.inf
        if abs(ny - y) <= 1e-15 * y:
            return 2.0 * ny
        y = ny if lo < ny < hi else math.sqrt(lo * hi) if lo > 0.0 and math.isfinite(hi) else (
            2.0 * y if not math.isfinite(hi) else 0.5 * hi)
    return 2.0 * y


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
    """Student's t with ``df`` degrees of freedom (as ``scipy.stats.t``; ``df`` a number)."""

    @staticmethod
    def ppf(p, df):
        return _each(lambda v: _t_ppf(v, float(df)), p)

    @staticmethod
    def cdf(x, df):
        return _each(lambda v: _t_cdf(v, float(df)), x)

    @staticmethod
    def sf(x, df):
        return _each(lambda v: _t_sf(v, float(df)), x)


class _ChiSquare:
    """The chi-square with ``df`` degrees of freedom (as ``scipy.stats.chi2``; ``df`` a number)."""

    @staticmethod
    def ppf(p, df):
        return _each(lambda v: _chi2_ppf(v, float(df)), p)

    @staticmethod
    def sf(x, df):
        return _each(lambda v: _chi2_sf(v, float(df)), x)


norm = _Normal()
t = _StudentT()
chi2 = _ChiSquare()
