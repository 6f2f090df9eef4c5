"""ITS interval (issue 18 item 9): seeded coverage simulation of the demo's two ITS designs.

INI-005: a monthly self-service rate, 36 months, 55% then 65% from month 18, N(0, 1) noise, one
value a month. INI-004: the monthly mean call wait of about 150 events a month, exponential with
mean 8 then 6 minutes from month 12 (cxmetrics/demo.py). Newey–West SEs with 3 lags covered the
level change in about 80% of such series; the interval must cover it in at least 93%.
"""

import numpy as np
import pandas as pd
import pytest

from cxmetrics.metrics import impact
from cxmetrics.registers import demo

MONTHS = pd.date_range("2023-10-01", periods=36, freq="MS")
REPS = 600


def self_service(rng):
    start = 18
    y = np.where(np.arange(36) >= start, demo.SELF_SERVICE_AFTER, demo.SELF_SERVICE_BEFORE) + rng.normal(0, 1.0, 36)
    return np.arange(36.0) - start, y, np.ones(36), demo.SELF_SERVICE_AFTER - demo.SELF_SERVICE_BEFORE


def call_wait(rng):
    start = 12
    n = rng.poisson(150, 36)
    mean = np.where(np.arange(36) >= start, demo.WAIT_MEAN_AFTER, demo.WAIT_MEAN_BEFORE)
    y = np.array([rng.exponential(m, k).mean() for m, k in zip(mean, n, strict=True)])
    return np.arange(36.0) - start, y, n.astype(float), demo.WAIT_MEAN_AFTER - demo.WAIT_MEAN_BEFORE


@pytest.mark.parametrize("design", [self_service, call_wait])
def test_its_interval_covers_the_planted_level_change(design):
    rng = np.random.default_rng(2018)
    hits = 0
    for _ in range(REPS):
        t, y, n, truth = design(rng)
        lo, hi = impact.its_fit(t, y, n)["ci"]
        hits += lo <= truth <= hi
    assert hits / REPS >= 0.93


def test_its_on_a_frame_is_its_fit_on_arrays():
    t, y, n, _ = call_wait(np.random.default_rng(1))
    r = impact.its(pd.DataFrame({"month": MONTHS, "y": y, "n": n}), MONTHS[12])
    assert r["ci"] == pytest.approx(impact.its_fit(t, y, n)["ci"]) and r["effect"] == impact.its_fit(t, y, n)["effect"]


def test_ar1_errors_are_estimated():
    rng = np.random.default_rng(4)
    t = np.arange(48)
    e = np.zeros(48)
    for i in range(1, 48):
        e[i] = 0.7 * e[i - 1] + rng.normal()
    months = pd.date_range("2022-01-01", periods=48, freq="MS")
    series = pd.DataFrame({"month": months, "y": 50 + 0.1 * t + 5 * (t >= 24) + e, "n": 1})
    r = impact.its(series, months[24])
    assert 0.4 < r["rho"] < 0.95
    lo, hi = r["ci"]
    assert lo < 5 < hi
