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


def _clustered_se(values: pd.Series, clusters: pd.Series) -> float:
    """The linearised SE of a mean with ``clusters`` as clusters, from the rows (Wolter 2007 §6.4)."""
    per = pd.DataFrame({"v": values, "c": clusters}).groupby("c")["v"].agg(["sum", "count"])
    r, m, n = values.mean(), len(per), len(values)
    return math.sqrt(m / (m - 1) * ((per["sum"] - r * per["count"]) ** 2).sum() / n ** 2)


def test_clustered_se_under_filters_counts_each_anonymous_answer_as_its_own_cluster(small_copy):
    """NPS, CSAT and CES SEs under a date range, a segment and a touchpoint breakdown (the cluster
    sums computed live; unfiltered they are the kept ones) against pandas from the raw rows: a
    customer's answers are one cluster, an answer without a customer a cluster of its own."""
    from cxmetrics.metrics import nps

    with store.connect(str(small_copy), read_only=False) as w:
        with store.transaction(w):  # a tenth of the answers made anonymous, summaries rebuilt
            w.execute("UPDATE survey_responses SET customer_id = NULL WHERE hash(response_id) % 10 = 0")
            store.bump_version(w, ["survey_responses"])
    with store.connect(str(small_copy)) as con:
        raw = con.execute("SELECT r.*, c.segment, coalesce(r.customer_id, 'anonymous:' || r.response_id) AS cid "
                          "FROM survey_responses r LEFT JOIN customers c USING (customer_id)").df()
        assert raw["customer_id"].isna().sum() > 20 and raw.groupby("customer_id").size().max() > 1
        days = raw["responded_on"].sort_values()
        lo, hi = days.iloc[len(days) // 4].date(), days.iloc[3 * len(days) // 4].date()
        seg = raw["segment"].dropna().min()
        cases = {"unfiltered": (Filters(), raw),
                 "range": (Filters(date_from=lo, date_to=hi), raw[raw["responded_on"].dt.date.between(lo, hi)]),
                 "segment and range": (Filters(segments=(seg,), date_from=lo, date_to=hi),
                                       raw[raw["responded_on"].dt.date.between(lo, hi) & (raw["segment"] == seg)])}
        for name, (f, rows) in cases.items():
            rel = rows[(rows["survey"] == "relationship") & rows["nps"].notna()]
            y = (rel["nps"] >= 9).astype(float) - (rel["nps"] <= 6).astype(float)
            assert nps.overall(con, f).se == pytest.approx(100 * _clustered_se(y, rel["cid"]), rel=1e-9), name
            cs = rows[rows["csat"].notna()]
            res = scores.score(con, f, metric="csat")
            assert res.headline[0].se == pytest.approx(_clustered_se(cs["csat"].astype(float), cs["cid"]), rel=1e-9), name
            assert res.headline[1].se == pytest.approx(
                100 * _clustered_se((cs["csat"] >= 4).astype(float), cs["cid"]), rel=1e-9), name
            ce = rows[rows["ces"].notna()]
            assert scores.score(con, f, metric="ces").headline[0].se == pytest.approx(
                _clustered_se(ce["ces"].astype(float), ce["cid"]), rel=1e-9), name
            by_tp = scores.score(con, f, metric="csat", dim="touchpoint").table.set_index("touchpoint")
            for tp, g in cs.assign(tp=cs["touchpoint"].fillna("(relationship)")).groupby("tp"):
                if len(g) > 1 and g["cid"].nunique() > 1:
                    assert by_tp.loc[tp, "mean_se"] == pytest.approx(_clustered_se(g["csat"].astype(float), g["cid"]),
                                                                     rel=1e-9), (name, tp)
