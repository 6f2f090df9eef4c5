"""Survival statistics the churn metrics share: Wilson intervals, Kaplan–Meier bands from
Greenwood's variance, and the churn window a landmark really has. No SQL, no store.

References
----------
Wilson, E. B. (1927), "Probable inference, the law of succession, and statistical inference",
JASA 22(158). Greenwood, M. (1926), Reports on Public Health and Medical Subjects 33.
Kalbfleisch, J. D. & Prentice, R. L. (2002), The Statistical Analysis of Failure Time Data,
2nd ed., Wiley, §1.3 (transformed pointwise bands).
"""

from __future__ import annotations

import datetime as dt
import math

from cxmetrics.core import lazy
from cxmetrics.core.dist import norm

np = lazy.module("numpy")
pd = lazy.module("pandas")

#: Days in an average month.
MONTH_DAYS = 365.25 / 12


def add_months(d: dt.date, months: int) -> dt.date:
    return (pd.Timestamp(d) + pd.DateOffset(months=months)).date()


def wilson(k: float, n: float, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval for k successes out of n.

    >>> [round(v, 4) for v in wilson(10, 100)]
    [0.0552, 0.1744]
    """
    if n <= 0:
        return float("nan"), float("nan")
    z = norm.ppf(1 - alpha / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # exact at the boundary (k = 0 or k = n), where rounding would leave the point just outside
    return (0.0 if k <= 0 else float(max(centre - half, 0.0))), (1.0 if k >= n else float(min(centre + half, 1.0)))


def churn_window(landmark: dt.date, end: dt.date | None) -> tuple[float, dt.date | None]:
    """The churn window a landmark really has: (months, last day). 12 months when the data reach
    12 months past ``landmark``; otherwise the follow-up to ``end`` in months (days / 30.44);
    (0, None) without an end.

    >>> churn_window(dt.date(2026, 3, 1), dt.date(2026, 9, 29))[0] < 7
    True
    """
    if end is None or end <= landmark:
        return 0.0, None
    full = add_months(landmark, 12)
    if end >= full:
        return 12.0, full - dt.timedelta(days=1)
    return (end - landmark).days / MONTH_DAYS, end


def window_label(months: float) -> str:
    """"12-month", "3-month": the window rounded to whole months."""
    return f"{max(round(months), 1)}-month"


KM_TRANSFORMS = ("log-log", "log", "plain")


def greenwood_band(n_risk, n_events, alpha: float = 0.05, transform: str = "log-log"
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Kaplan–Meier estimate and pointwise ``1 - alpha`` band from risk-set sizes and event counts.

    S(t) = Π (1 − d_j / n_j) and Greenwood's variance of log S: V(t) = Σ d_j / (n_j (n_j − d_j))
    (Kalbfleisch & Prentice 2002, eq. 1.11). The band is built on a transformed scale:

    * ``"log-log"`` (default; Kalbfleisch & Prentice 2002 §1.3): S^exp(±z·√V / log S), inside (0, 1);
    * ``"log"``: S·exp(±z·√V), capped at 1;
    * ``"plain"``: S ± z·S·√V (Greenwood's SE of S), clipped to [0, 1].

    Counts may be frequency-weighted sums. Greenwood is computed here rather than taken from
    statsmodels: with ``freq_weights`` ``SurvfuncRight.surv_prob_se`` is Tsiatis' SE of −log S (not
    of S), which used as an SE of S gave bands too wide by 1/S(t).

    Returns S, Greenwood's SE of S, lower and upper bounds; at a time where everyone left has
    the event (S = 0) the band is [0, 0].

    Examples
    --------
    A hand-worked case: 10 at risk, 2 events; then 8 at risk (no censoring), 4 events.
    S = 0.8 then 0.4; V = 2/(10·8) = 0.025, then + 4/(8·4) = 0.15; SE(S) = 0.4·√0.15 = 0.155.

    >>> s, se, lo, hi = greenwood_band([10, 8], [2, 4], transform="plain")
    >>> [round(float(v), 3) for v in (*s, *se)]
    [0.8, 0.4, 0.126, 0.155]
    """
    if transform not in KM_TRANSFORMS:
        raise ValueError(f"transform must be one of {', '.join(KM_TRANSFORMS)}")
    n = np.asarray(n_risk, float)
    d = np.asarray(n_events, float)
    z = norm.ppf(1 - alpha / 2)
    s = np.cumprod(1 - d / n)
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.cumsum(np.where(n > d, d / (n * (n - d)), np.inf))
        se = s * np.sqrt(v)
        if transform == "plain":
            lo, hi = s - z * se, s + z * se
        elif transform == "log":
            lo, hi = s * np.exp(-z * np.sqrt(v)), s * np.exp(z * np.sqrt(v))
        else:
            w = z * np.sqrt(v) / np.log(s)
            lo, hi = s ** np.exp(-w), s ** np.exp(w)
    zero = s <= 0
    lo = np.where(zero, 0.0, np.where(np.isfinite(lo), lo, s))
    hi = np.where(zero, 0.0, np.where(np.isfinite(hi), hi, s))
    # no event yet (V = 0): the band is the point
    return s, np.where(zero, 0.0, se), np.clip(lo, 0.0, 1.0), np.clip(hi, 0.0, 1.0)
