"""CSAT and CES intervals with repeat respondents (issue 18 item 7).

External references: the SE formulas worked out for customers answering four times identically,
and an independent pandas computation of the clustered SE on the demo's raw rows.
"""

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from cxmetrics import store
from cxmetrics.core.filters import Filters
from cxmetrics.metrics import scores
from cxmetrics.registers import importer

M = 300  # customers


@pytest.fixture(scope="module")
def repeat_stores(tmp_path_factory) -> dict[int, str]:
    """Two stores with the same answers: each customer answering once, and four times identically."""
    rng = np.random.default_rng(11)
    csat = rng.choice([1, 2, 3, 4, 5], size=M, p=[0.1, 0.1, 0.2, 0.3, 0.3])
    ces = rng.integers(1, 8, M)
    ids = [f"C{i:03d}" for i in range(M)]
    folder = tmp_path_factory.mktemp("repeat")
    customers = pd.DataFrame({"customer_id": ids, "segment": "consumer", "region": "north",
                              "acquired_on": "2020-01-01", "contract": "contractual"})
    out = {}
    for k in (1, 4):
        db = folder / f"k{k}.duckdb"
        r = subprocess.run([sys.executable, "-m", "cxmetrics", "init", "--db", str(db)], capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        resp = pd.DataFrame({"response_id": [f"R{j}-{i}" for j in range(k) for i in range(M)],
                             "customer_id": ids * k, "responded_on": [f"2024-0{j + 1}-15" for j in range(k) for _ in ids],
                             "survey": "transactional", "csat": list(csat) * k, "ces": list(ces) * k})
        customers.to_csv(folder / "customers.csv", index=False)
        resp.to_csv(folder / f"responses{k}.csv", index=False)
        importer.import_file(folder / "customers.csv", "customers", db=str(db), actor="test")
        importer.import_file(folder / f"responses{k}.csv", "survey_responses", db=str(db), actor="test")
        out[k] = str(db)
    return out


@pytest.mark.parametrize("metric", ["csat", "ces"])
def test_four_identical_answers_give_about_twice_the_naive_se(repeat_stores, metric):
    with store.connect(repeat_stores[1]) as c:
        once = scores.score(c, Filters(), metric=metric)
    with store.connect(repeat_stores[4]) as c:
        four = scores.score(c, Filters(), metric=metric)
    a, b = once.headline[0], four.headline[0]
    assert a.estimate == pytest.approx(b.estimate) and b.n == 4 * a.n
    # naive SE of the 4M responses: sqrt(s²/n) with s² on 4M − 1 df; clustered: the M customers' SE
    naive_four = math.sqrt(a.se ** 2 * (M - 1) * 4 * M / ((4 * M - 1) * M) / 4)
    assert b.se / naive_four == pytest.approx(math.sqrt((4 * M - 1) / (M - 1)), rel=1e-9)
    assert b.se / naive_four == pytest.approx(2, rel=0.01)
    assert "clustered" in b.method and "clustered" not in a.method
    # four copies of the same answers carry the information of one: the same SE and t interval
    assert b.se == pytest.approx(a.se, rel=1e-9)
    assert (b.ci_low, b.ci_high) == pytest.approx((a.ci_low, a.ci_high), rel=1e-9)
    if metric == "csat":
        s1, s4 = once.headline[1], four.headline[1]
        p = s4.estimate / 100
        assert s4.se == pytest.approx(100 * math.sqrt(p * (1 - p) / (M - 1)), rel=1e-9)  # naive: /(4M)
        assert s4.se / (100 * math.sqrt(p * (1 - p) / (4 * M))) == pytest.approx(2, rel=0.01)
        assert s4.n_eff == pytest.approx(M - 1) and s4.ci_low < s1.ci_low < s1.ci_high < s4.ci_high


def test_clustered_csat_se_matches_pandas_on_the_demo(con):
    df = con.execute("SELECT customer_id, csat FROM survey_responses WHERE csat IS NOT NULL").df()
    per = df.groupby("customer_id")["csat"].agg(["sum", "count"])
    assert per["count"].max() > 1  # the demo has repeat respondents
    r, m, n = df["csat"].mean(), len(per), len(df)
    se = math.sqrt(m / (m - 1) * ((per["sum"] - r * per["count"]) ** 2).sum() / n ** 2)
    res = scores.score(con, Filters(), metric="csat")
    assert res.headline[0].se == pytest.approx(se, rel=1e-9)
    sat = df.assign(s=(df["csat"] >= 4).astype(float)).groupby("customer_id")["s"].sum()
    p = (df["csat"] >= 4).mean()
    se_p = math.sqrt(m / (m - 1) * ((sat - p * per["count"]) ** 2).sum() / n ** 2)
    assert res.headline[1].se == pytest.approx(100 * se_p, rel=1e-9)
