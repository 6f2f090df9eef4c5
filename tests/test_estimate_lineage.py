"""A figure shown as a tile (an Estimate: the NPS, its change, the re-contact rate, the net revenue
retention, the value of moving detractors, an initiative's effect) or a table (the complaint
Pareto, the hazard ratios, a department's KPIs, scores and complaints) carries the queries it is
computed from, its interval's included, so that its "How was this computed?" shows SQL a reviewer
can run: run as shown, on a fresh connection, the rows give the figure back."""

import json

import numpy as np
import pandas as pd
import pytest

from cxmetrics import store
from cxmetrics.core.filters import Filters
from cxmetrics.core.results import described, estimate_from_parts, estimate_parts
from cxmetrics.metrics import clustered, complaints, finance, impact, nps, scores, wallet
from cxmetrics.views import executive, nps_page

from .test_summaries import CUSTOM_RANGE


def _rows(db, q: store.Query):
    """The rows of ``q`` run as its description shows it: the page's tables it reads made first."""
    text = q.describe()
    with store.connect(str(db)) as fresh:
        for name, made in q.made:
            assert f"CREATE TEMP TABLE {name} AS" in text
            fresh.execute(f"CREATE TEMP TABLE {name} AS {made.sql}", made.params)
        assert text.endswith(f"-- {q.name}\n{q.sql.strip()}\n-- parameters: {dict(q.params)}")
        return fresh.execute(q.sql, q.params).df()


def _one(e, name: str) -> store.Query:
    assert [q.name for q in e.queries] == [name], (e.name, [q.name for q in e.queries])
    return e.queries[0]


def _nps(r) -> float:
    return 100 * (r["promoters"] - r["detractors"]) / r["n"]


@pytest.mark.parametrize("filters", [Filters(), CUSTOM_RANGE], ids=["all data", "custom range"])
def test_each_tiles_estimate_carries_the_query_whose_rows_give_it(con, demo_db, filters):
    overall = nps.overall(con, filters)
    counts, *clusters = overall.queries
    assert counts.name == "nps_overall" and clusters and all(q.name.startswith("nps_clusters") for q in clusters)
    r = _rows(demo_db, counts).iloc[0]
    assert (int(r["n"]), _nps(r)) == (overall.n, pytest.approx(overall.estimate, rel=1e-12))
    # its interval: the customer-clustered SE from the cluster sums the queries shown give (kept with
    # the summaries for all data: the query that gives them; under the range: the query run)
    sums = pd.concat([_rows(demo_db, q) for q in clusters])
    assert 0 < sums["m"].sum() <= overall.n and sums["max_k"].max() > 1  # customers who answered more than once
    row = pd.concat([r, sums[["uu", "uk", "kk", "yy", "yw", "ww", "m"]].sum(), pd.Series({"max_k": sums["max_k"].max()})])
    again = nps._row_estimate(row, False, overall.alpha, filters, "NPS")
    assert (again.ci_low, again.ci_high) == (pytest.approx(overall.ci_low, rel=1e-9), pytest.approx(overall.ci_high, rel=1e-9))
    assert nps.CLUSTER_METHOD in overall.method
    # the weighted NPS: its cells by segment and region, weighted in Python to the base the next query gives
    weighted = nps.overall(con, filters, weighted=True)
    assert [q.name for q in weighted.queries[:2]] == ["nps_overall", "active_base"]
    cells = _rows(demo_db, weighted.queries[0])
    assert {"segment", "region"} <= set(cells.columns) and int(cells["n"].sum()) == overall.n

    # a trend under the range: each quarter's interval from the queries it shows (for the range,
    # quarters covered whole are kept, the days at its ends summed live: the query giving them all)
    trend = nps.trend(con, filters)
    counts, *clusters = trend.queries
    sums = clustered.by_group(pd.concat([_rows(demo_db, q) for q in clusters])).set_index("grp")
    for (_, r), (_, shown) in zip(_rows(demo_db, counts).iterrows(), trend.table.iterrows(), strict=True):
        c = sums.loc[r["grp"]]
        e = nps._row_estimate(pd.concat([r, c]), False, trend.alpha, filters, "NPS")
        assert (e.ci_low, e.ci_high) == (pytest.approx(shown["ci_low"], rel=1e-9), pytest.approx(shown["ci_high"], rel=1e-9))

    change, _ = nps.last_change(con, filters)
    assert change.queries[0].name == "nps_by_quarter"
    last_two = _rows(demo_db, change.queries[0]).tail(2)
    assert _nps(last_two.iloc[1]) - _nps(last_two.iloc[0]) == pytest.approx(change.estimate, rel=1e-12)

    rec = complaints.recontact(con, filters)
    r = _rows(demo_db, _one(rec, "recontact")).iloc[0]
    assert (int(r["n"]), 100 * r["again"] / r["n"]) == (rec.n, pytest.approx(rec.estimate, rel=1e-12))

    nrr = finance.net_revenue_retention(con, filters)
    r = _rows(demo_db, _one(nrr, "net_revenue_retention")).iloc[0]
    assert (int(r["n"]), 100 * r["sx"] / r["sy"]) == (nrr.n, pytest.approx(nrr.estimate, rel=1e-12))

    # the CSAT mean's interval likewise, from the sums of the cluster queries it carries
    csat = scores.score(con, filters, metric="csat")
    (mean, _), head = csat.table.iloc[0][["mean", "n"]], csat.headline[0]
    first, *cq = head.queries
    assert first.name == "csat_by_all" and cq and all(q.name.startswith("csat_clusters") for q in cq)
    assert [q.describe() for q in csat.queries] == [q.describe() for q in head.queries]
    c = clustered.by_group(pd.concat([_rows(demo_db, q) for q in cq])).iloc[0]
    n = int(_rows(demo_db, first).iloc[0]["n"])
    var = clustered.Clusters(int(c["m"]), int(c["max_k"]), c["xx"], c["xk"], c["kk"]).var(mean, n)
    assert head.se == pytest.approx(var ** 0.5, rel=1e-9) and n == head.n

    slope = wallet.nps_relation(con, filters)
    c = _rows(demo_db, _one(slope, "wallet_by_group")).sum(numeric_only=True)
    n = c["n_stated"]
    got = (c["sxy"] - c["sx"] * c["s_stated"] / n) / (c["sxx"] - c["sx"] ** 2 / n)
    assert (int(n), got) == (slope.n, pytest.approx(slope.estimate, rel=1e-9))


def test_a_pages_tiles_carry_the_queries_of_the_results_they_are_computed_from(con, demo_db):
    """Inside a page call (its memo, its tables) the tiles carry the same queries; the value of
    moving detractors, computed from the CLV by group and by its strata, carries theirs, once each."""
    data = store.memoized(nps_page.page_data)(con, CUSTOM_RANGE)
    r = _rows(demo_db, data.overall.queries[0]).iloc[0]
    assert (int(r["n"]), _nps(r)) == (data.overall.n, pytest.approx(data.overall.estimate, rel=1e-12))
    ex = store.memoized(executive.page_data)(con, CUSTOM_RANGE)
    assert [q.describe() for q in ex.nps.queries] == [q.describe() for q in data.overall.queries]
    value = ex.promoter_value
    assert value.crude is not None  # the segment-adjusted figure: the CLV by group and by its strata
    assert [q.describe() for q in value.queries] == [q.describe() for q in store.distinct(ex.clv.queries)]
    for q in value.queries:
        assert len(_rows(demo_db, q))


def test_an_initiatives_effect_and_money_carry_the_monthly_series_they_are_fitted_on(con, demo_db):
    impacts = {i.initiative_id: i for i in impact.all_impacts(con, Filters())}
    measured = [i for i in impacts.values() if i.effect is not None]
    assert measured and any(i.money is not None for i in measured)
    for i in measured:
        (text,) = described(i.effect.queries)  # the kept impacts carry the text of the query they ran
        assert text.startswith("-- series_")
        if i.money is not None:
            assert described(i.money.queries) == [text]
    live = {i.initiative_id: i for i in [impact.estimate(con, Filters(), r)
                                         for _, r in impact.initiatives_frame(con, Filters()).iterrows()]}
    for i in measured:
        q = live[i.initiative_id].effect.queries[0]
        assert described(i.effect.queries) == [q.describe()]
        cells = _rows(demo_db, q).dropna(subset=["y"])
        assert int(cells["n"].sum()) == i.effect.n


def test_an_estimates_queries_go_to_json_as_text_and_come_back(con):
    e = nps.overall(con, CUSTOM_RANGE)
    d = e.to_dict()
    assert d["queries"] == [q.describe() for q in e.queries] and d["small_sample"] == e.small_sample
    back = estimate_from_parts(json.loads(json.dumps(estimate_parts(e))))
    assert back == e and back.queries == tuple(q.describe() for q in e.queries)
    assert estimate_from_parts(d) == e  # small_sample is derived, not a field
    # queries are not part of an estimate's value: the same figure from a kept fit is equal
    assert e == estimate_from_parts({**d, "queries": []})


@pytest.mark.parametrize("page, shown", [
    ("pages/01_executive_summary.py", {"nps_overall": 1}),
    ("pages/02_nps_drivers.py", {"nps_overall": 2, "nps_by_quarter": 2}),  # the NPS, weighted; the change, the trend
    ("pages/05_customer_value.py", {"clv_inputs": 2, "holdout": 1}),  # the CLV by group, the value of moving detractors
    ("pages/08_complaints.py", {"recontact": 1}),
    ("pages/10_finance_review.py", {"net_revenue_retention": 1}),
    ("pages/03_customer_voice.py", {"theme_result_cost": 1}),  # the kept theme run's results
    ("pages/06_department.py", {"kpi_trend": 1, "nps_by_touchpoint": 1, "nps_clusters": 1, "csat_by_touchpoint": 1,
                                "csat_clusters": 1,
                                "complaints_by_category": 1}),
])
def test_the_how_was_this_computed_under_a_tile_or_table_shows_its_sql(demo_db, make_app, page, shown):
    at = make_app(demo_db, role="executive", page=page)
    assert not at.exception, at.exception
    hows = [e for e in at.expander if e.label == "How was this computed?"]
    for name, times in shown.items():
        assert sum(any(f"-- {name}\n" in c.value for c in e.code) for e in hows) >= times, (page, name)


def test_the_complaint_pareto_and_the_cox_check_carry_the_queries_their_rows_come_from(con, demo_db):
    """Two results whose inputs were run but not shown: the Pareto's volumes, churn uplifts and cost
    per complaint, and the Cox check's (seeded) sample of customers."""
    from cxmetrics.metrics import churn, complaints
    from cxmetrics.metrics.survival import cox_breslow

    par = complaints.pareto(con, Filters())
    by_name = {q.name: q for q in par.queries}
    assert {"complaints_by_category", "category_uplift", "assumptions_current"} <= set(by_name)
    vol = _rows(demo_db, by_name["complaints_by_category"]).set_index("grp")["complaints"]
    assert vol.to_dict() == par.table.set_index("category")["complaints"].to_dict()
    up = _rows(demo_db, by_name["category_uplift"]).set_index("category")
    want = par.table.set_index("category")["churn_after_pct"].dropna()
    assert (100 * up["churned"] / up["customers"]).loc[want.index].to_numpy() == pytest.approx(want.to_numpy())

    hr = churn.hazard_ratios(con, Filters())  # the Cox rows kept with the summaries for all data
    cox = hr.table[hr.table["model"].str.startswith("Cox")].set_index("group")
    assert len(cox) == 2 and [q.name for q in hr.queries] == ["churn_cells", "cox_sample"]
    sample = _rows(demo_db, hr.queries[1])
    assert f"({len(sample):,} customers" in cox["model"].iloc[0]
    X = churn._design(sample).drop(columns="const")
    fit = cox_breslow(sample["days"].to_numpy(float), sample["event"].to_numpy(int), X.to_numpy(float))
    for g in cox.index:
        j = list(X.columns).index(f"nps_group[{g}]")
        assert np.exp(fit.params[j]) == pytest.approx(cox.loc[g, "ratio"], rel=1e-6)
    assert [q.name for q in churn.hazard_ratios(con, Filters(), cox=False).queries] == ["churn_cells"]


def test_the_btyd_holdout_check_carries_the_queries_of_its_split_and_cells(con, demo_db):
    from cxmetrics.metrics import btyd_checks

    for filters in (Filters(), Filters(segments=("smb",)), Filters(regions=("north", "south"))):  # kept, kept, live
        hold = btyd_checks.holdout(con, filters)
        assert len(hold.table) and [q.name for q in hold.queries][-2:] == ["rfm_summary", "holdout"]
        got = _rows(demo_db, hold.queries[-1]).set_index("x")
        want = hold.table.set_index("x")
        assert got["customers"].to_dict() == want["customers"].to_dict()
        assert got["actual"].to_dict() == pytest.approx(want["actual"].to_dict())


def test_what_moved_carries_the_queries_of_its_cells(con, demo_db):
    from cxmetrics.metrics import moved

    res = moved.what_moved(con, CUSTOM_RANGE)  # a range: its cells computed from the answers
    by_name = {q.name: q for q in res.queries}
    assert {"moved_survey", "moved_complaints"} <= set(by_name) and len(res.table)
    survey = _rows(demo_db, by_name["moved_survey"])
    assert len(survey) and {"dim", "level"} <= set(survey.columns)


def test_an_estimates_repr_leaves_its_queries_out(con):
    e = nps.overall(con, Filters())
    assert e.queries and "SELECT" not in repr(e) and "queries" not in repr(e)


def test_the_themes_cost_carries_every_query_the_themes_part_ran(con, demo_db):
    """What the themes cost, how their share moves and how customers feel: read from the kept run's
    results for all data, aggregated from its assignments under a segment or a range."""
    from cxmetrics import views

    for filters, names in ((Filters(), {"theme_results", "theme_result_cost", "theme_result_trend"}),
                           (Filters(segments=("smb",)), {"theme_lean_mentions", "theme_lean_trend"}),
                           (CUSTOM_RANGE, {"theme_lean_mentions", "theme_lean_nps", "theme_lean_churn"})):
        th = views.voice.themes_data(con, filters)
        assert len(th.cost.table) and names <= {q.name for q in th.cost.queries}, filters
        assert len(th.cost.queries) == len(store.distinct(th.cost.queries))
        for q in th.cost.queries:
            _rows(demo_db, q)  # each runs as shown


def test_the_cox_checks_sample_is_the_same_rows_whatever_the_number_of_threads(con, demo_db):
    """The SQL shown must give the rows the check was fitted on, on a reviewer's machine too: a
    seeded reservoir sample drew other rows under another number of threads (1M customers, by hand).
    The sample is the customers first by the MD5 of their id: checked against Python's hashlib, and
    under one and two threads."""
    import hashlib

    from cxmetrics.metrics import churn

    L = churn.default_landmark(con, Filters())
    q = churn._cox_query(con, Filters(), L, 300)  # fewer than the demo's base: a real sample
    got = []
    with store.connect(str(demo_db)) as fresh:
        for threads in (1, 2):
            fresh.execute(f"SET threads = {threads}")
            got.append(fresh.execute(q.sql, q.params).df())
        base = store.run(fresh, churn._base(fresh, Filters(), L, "SELECT customer_id, nps_group, segment, tenure, "
                                            "days, event FROM b", "cox_base"))
    cols = ["nps_group", "segment", "tenure", "days", "event"]
    first = base.assign(h=[hashlib.md5(c.encode()).hexdigest() for c in base["customer_id"]]).sort_values("h").head(300)
    want = first[cols].sort_values(cols).reset_index(drop=True)
    assert len(base) > 300 and len(want) == 300
    for rows in got:
        pd.testing.assert_frame_equal(rows.sort_values(cols).reset_index(drop=True), want, check_dtype=False)
