"""Churn intervals and windows (issue 18 items 6, 11, 12 and cohort retention from 13).

External references: lifelines' ``KaplanMeierFitter`` (an independent Kaplan–Meier with
Greenwood's variance and the log-log band) and a Greenwood example worked by hand below.
"""

import math

import numpy as np
import pytest

from cxmetrics import churn, store
from cxmetrics.filters import Filters


# ------------------------------------------------ item 6: Kaplan–Meier bands
def test_greenwood_by_hand():
    # 10 at risk; 2 events at t1 (1 censored after), 7 at risk at t2 with 3 events, 4 at risk at t3 with 1
    n, d = [10, 7, 4], [2, 3, 1]
    s1, s2, s3 = 8 / 10, 8 / 10 * 4 / 7, 8 / 10 * 4 / 7 * 3 / 4
    v1 = 2 / (10 * 8)
    v2 = v1 + 3 / (7 * 4)
    v3 = v2 + 1 / (4 * 3)
    s, se, lo, hi = churn.greenwood_band(n, d, transform="plain")
    assert s == pytest.approx([s1, s2, s3])
    assert se == pytest.approx([s1 * math.sqrt(v1), s2 * math.sqrt(v2), s3 * math.sqrt(v3)])
    z = 1.959963984540054
    assert lo[1] == pytest.approx(s2 - z * s2 * math.sqrt(v2)) and hi[1] == pytest.approx(s2 + z * s2 * math.sqrt(v2))
    # log-log: exp(-exp(log(-log S) ± z·√V / |log S|))
    _, _, lo, hi = churn.greenwood_band(n, d)
    c, w = math.log(-math.log(s2)), z * math.sqrt(v2) / abs(math.log(s2))
    assert lo[1] == pytest.approx(math.exp(-math.exp(c + w))) and hi[1] == pytest.approx(math.exp(-math.exp(c - w)))
    _, _, lo, hi = churn.greenwood_band(n, d, transform="log")
    assert lo[2] == pytest.approx(s3 * math.exp(-z * math.sqrt(v3)))
    with pytest.raises(ValueError):
        churn.greenwood_band(n, d, transform="arcsine")


def test_greenwood_band_matches_lifelines_on_literal_weighted_data():
    import statsmodels.api as sm
    from lifelines import KaplanMeierFitter

    time = np.array([1, 1, 2, 3, 3, 4, 5, 6, 6, 7, 8, 9], float)
    event = np.array([1, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0])
    weight = np.array([12, 3, 9, 7, 5, 6, 4, 8, 2, 5, 3, 10], float)
    sf = sm.SurvfuncRight(time, event, freq_weights=weight)
    s, _, lo, hi = churn.greenwood_band(sf.n_risk, sf.n_events)
    km = KaplanMeierFitter().fit(time, event, weights=weight)
    ci = km.confidence_interval_.loc[sf.surv_times]
    assert s == pytest.approx(km.survival_function_.loc[sf.surv_times].iloc[:, 0].to_numpy())
    assert lo == pytest.approx(ci.iloc[:, 0].to_numpy(), abs=1e-9)
    assert hi == pytest.approx(ci.iloc[:, 1].to_numpy(), abs=1e-9)


def test_survival_curves_bands_match_lifelines_on_the_demo(con):
    from lifelines import KaplanMeierFitter

    f = Filters()
    L = churn.default_landmark(con, f)
    res = churn.survival_curves(con, f, landmark=L)
    assert "log-log" in res.method and "Greenwood" in res.method
    q = churn.raw_base(f, L, "SELECT nps_group, ceil(days / $month) AS month, event, count(*) AS n "
                             "FROM b GROUP BY ALL", "km_check")
    q.params["month"] = churn.MONTH_DAYS
    counts = store.run(con, q)
    for g, d in counts.groupby("nps_group"):
        km = KaplanMeierFitter().fit(d["month"], d["event"], weights=d["n"])
        mine = res.table[(res.table["nps_group"] == g) & (res.table["month"] > 0)].set_index("month")
        ci = km.confidence_interval_.loc[mine.index]
        assert mine["survival"].to_numpy() == pytest.approx(km.survival_function_.loc[mine.index].iloc[:, 0].to_numpy())
        assert mine["ci_low"].to_numpy() == pytest.approx(ci.iloc[:, 0].to_numpy(), abs=1e-9)
        assert mine["ci_high"].to_numpy() == pytest.approx(ci.iloc[:, 1].to_numpy(), abs=1e-9)
