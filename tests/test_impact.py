"""Initiative impact (DiD / ITS), money, register edits and the page."""

import datetime as dt
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from cxmetrics import store
from cxmetrics.core.filters import Filters
from cxmetrics.core.results import described
from cxmetrics.metrics import impact
from cxmetrics.registers import demo, initiatives

from .test_alignment import live_only, refuse


@pytest.fixture(scope="module")
def impacts(demo_db):
    with store.connect(str(demo_db)) as con:
        return {i.initiative_id: i for i in impact.all_impacts(con, Filters())}


def test_did_recovers_planted_escalation_drop(impacts):
    i = impacts["INI-001"]
    assert i.design == "difference-in-differences" and i.status == "effect"
    planted = demo.TRUTHS["escalation_drop_south"].value  # -12 points
    assert i.effect.ci_low <= planted <= i.effect.ci_high
    assert any("Pre-trend test passed" in c for c in i.checks)
    assert i.money is not None and i.money.estimate > 0 and i.roi is not None


def test_planted_null_is_not_claimed(impacts):
    assert impacts["INI-002"].status != "effect"


def test_its_recovers_planted_level_changes(impacts):
    for key, truth in (("INI-004", "wait_level_change"), ("INI-005", "self_service_level_change")):
        i = impacts[key]
        assert i.design == "interrupted time series" and i.status == "effect"
        assert i.effect.ci_low <= demo.TRUTHS[truth].value <= i.effect.ci_high, key


def test_strategic_initiatives_have_no_measured_result(impacts):
    assert impacts["INI-003"].status == "no target metric" and impacts["INI-003"].effect is None
    p = impact.portfolio(list(impacts.values())).set_index("track")
    assert p.loc["strategic", "no_result_yet"] == 2 and p.loc["result_driven", "initiatives"] == 4


def test_the_portfolio_is_a_group_by_track_of_the_summary_table(impacts):
    """Against pandas' group-by of the summary table (what the portfolio was computed with before)."""
    imps = list(impacts.values())
    for some in (imps, imps[:1], [i for i in imps if i.track == "strategic"]):
        t = impact.summary_table(some)
        want = t.groupby("track").agg(
            initiatives=("initiative", "count"), spend=("cost", "sum"),
            with_effect=("status", lambda s: int((s == "effect").sum())),
            measured_no_effect=("status", lambda s: int((s == "no significant effect").sum())),
            no_result_yet=("status", lambda s: int(s.isin(["no target metric", "not estimable"]).sum())),
            money=("money", "sum")).reset_index()
        want["share_of_initiatives_pct"] = 100 * want["initiatives"] / want["initiatives"].sum()
        want["share_of_spend_pct"] = 100 * want["spend"] / want["spend"].sum()
        pd.testing.assert_frame_equal(impact.portfolio(some), want, check_exact=False, rtol=1e-12)
    assert impact.portfolio([]).empty


def test_its_hand_checked_against_least_squares():
    # y = 10 + 0.5 t, then a level drop of 3 and a slope change of -0.2 from t = 0; no noise
    t = np.arange(-8, 8)
    y = 10 + 0.5 * t + np.where(t >= 0, -3 - 0.2 * t, 0)
    months = pd.date_range("2024-01-01", periods=16, freq="MS")
    r = impact.its(pd.DataFrame({"month": months, "y": y, "n": 1}), months[8])
    assert r["effect"] == pytest.approx(-3.0) and r["slope_change"] == pytest.approx(-0.2)


def _statsmodels_wls(X, y, w):
    """The reference: statsmodels' WLS with HC1 covariance (what :func:`impact._wls_hc1` reproduces)."""
    import statsmodels.api as sm

    fit = sm.WLS(y, X, weights=w).fit(cov_type="HC1")
    return impact._Fit(np.asarray(fit.params), np.asarray(fit.bse))


@pytest.mark.filterwarnings("ignore:The design matrix is rank-deficient")
@pytest.mark.parametrize("seed", range(6))
def test_wls_hc1_equals_statsmodels(seed):
    """Coefficients, HC1 standard errors, p-values and intervals against statsmodels, on weighted
    cells with fixed effects, including a design with a column the others already span (the
    pseudo-inverse, as statsmodels takes it)."""
    import statsmodels.api as sm

    rng = np.random.default_rng(seed)
    n = 60
    X = pd.DataFrame({"Intercept": 1.0, "a": rng.normal(size=n), "b": rng.integers(0, 2, n).astype(float),
                      "c": rng.normal(size=n)})
    if seed % 2:
        X["d"] = X["a"] + 2 * X["b"]  # collinear: rank 4 of 5 columns
    y = X.to_numpy() @ rng.normal(size=X.shape[1]) + rng.normal(size=n) * rng.uniform(0.5, 3, n)
    w = rng.integers(20, 400, n).astype(float)
    got = impact._wls_hc1(X.to_numpy(), y, w)
    want = sm.WLS(y, X, weights=w).fit(cov_type="HC1")
    np.testing.assert_allclose(got.params, want.params, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(got.bse, want.bse, rtol=1e-8, atol=1e-10)
    for j in range(X.shape[1]):
        assert got.p(j) == pytest.approx(want.pvalues.iloc[j], rel=1e-7, abs=1e-12)
        assert got.ci(j, 0.1) == pytest.approx(tuple(want.conf_int(0.1).iloc[j]), rel=1e-8, abs=1e-10)


def test_did_equals_its_statsmodels_form(monkeypatch):
    """The planted initiatives' DiD (effect, interval, p, pre-trend p, event study, wild-cluster
    bootstrap) is the same with statsmodels doing the least squares."""
    rng = np.random.default_rng(2)
    months = pd.date_range("2023-01-01", periods=30, freq="MS")
    rows = [{"grp": g, "month": m, "y": 50 + (4.0 if g == "a" and k >= 15 else 0.0) + rng.normal(0, 1),
             "n": int(rng.integers(50, 300))} for g in ("a", "b", "c", "d") for k, m in enumerate(months)]
    cells = pd.DataFrame(rows)
    got = impact.did(cells, "a", months[15])
    monkeypatch.setattr(impact, "_wls_hc1", _statsmodels_wls)
    want = impact.did(cells, "a", months[15])
    assert got["effect"] == pytest.approx(want["effect"], rel=1e-9) and got["se"] == pytest.approx(want["se"], rel=1e-8)
    assert got["ci"] == pytest.approx(want["ci"], rel=1e-8) and got["p"] == pytest.approx(want["p"], rel=1e-6, abs=1e-12)
    assert got["pretrend_p"] == pytest.approx(want["pretrend_p"], rel=1e-6)
    pd.testing.assert_frame_equal(got["event_study"], want["event_study"], rtol=1e-7, atol=1e-9)
    assert got["wild_cluster"] == want["wild_cluster"] and got["unidentified_quarters"] == want["unidentified_quarters"]
    assert 2 < got["effect"] < 6
    # the designs too, from statsmodels' formulas: y ~ C(grp) + C(month) + treated × post, the
    # pre-period trend, and the event study's quarters relative to the start (the one before left out)
    import statsmodels.formula.api as smf

    d = cells.assign(tp=((cells["grp"] == "a") & (cells["month"] >= months[15])).astype(float),
                     rel=(cells["month"].dt.year - 2024) * 12 + cells["month"].dt.month - 4)
    main = smf.wls("y ~ C(grp) + C(month) + tp", d, weights=d["n"]).fit(cov_type="HC1")
    assert got["effect"] == pytest.approx(main.params["tp"], rel=1e-9) and got["se"] == pytest.approx(main.bse["tp"], rel=1e-8)
    pre = d[d["rel"] < 0].assign(tt=lambda f: (f["grp"] == "a") * f["rel"])
    trend = smf.wls("y ~ C(grp) + C(month) + tt", pre, weights=pre["n"]).fit(cov_type="HC1")
    assert got["pretrend_p"] == pytest.approx(trend.pvalues["tt"], rel=1e-6)
    d["q"] = np.clip(np.floor(d["rel"] / 3), -6, 6).astype(int)
    for k in sorted(set(d["q"]) - {-1}):
        d[f"e{k + 6}"] = ((d["grp"] == "a") & (d["q"] == k)).astype(float)
    es = smf.wls("y ~ C(grp) + C(month) + " + " + ".join(c for c in d if c[0] == "e" and c[1:].isdigit()), d,
                 weights=d["n"]).fit(cov_type="HC1")
    study = got["event_study"].set_index("quarter")
    for k in sorted(set(d["q"]) - {-1}):
        assert study.loc[k, "effect"] == pytest.approx(es.params[f"e{k + 6}"], rel=1e-7, abs=1e-9), k
        assert study.loc[k, "ci_high"] - study.loc[k, "ci_low"] == pytest.approx(
            float(np.diff(es.conf_int(0.05).loc[f"e{k + 6}"])[0]), rel=1e-7)


def test_failing_pretrend_is_detected():
    rng = np.random.default_rng(1)
    months = pd.date_range("2023-01-01", periods=24, freq="MS")
    rows = []
    for g in ("a", "b", "c"):
        for k, m in enumerate(months):
            drift = 1.5 * k if g == "a" else 0.0  # the treated group is already diverging
            rows.append({"grp": g, "month": m, "y": 50 + drift + rng.normal(0, 0.5), "n": 100})
    r = impact.did(pd.DataFrame(rows), "a", months[12])
    assert r["pretrend_p"] < 0.05


def test_event_study_quarters_the_data_cannot_identify_are_named_not_shown_as_zero():
    """A quarter with no treated month, and one whose treated months have no comparison month, have
    no estimable effect: they are left out of the event study and named (before, the design was
    singular and they came out as 0 with an interval of no width). The rest is fitted on a design
    of full rank."""
    import warnings

    from statsmodels.tools.sm_exceptions import SingularMatrixWarning

    rng = np.random.default_rng(3)
    months = pd.date_range("2024-01-01", periods=24, freq="MS")  # the start: 2025-01, quarter 0
    rows = [{"grp": g, "month": m, "y": 50 + rng.normal(0, 1), "n": 100} for g in ("a", "b", "c") for m in months
            if not (g == "a" and m.month in (4, 5, 6) and m.year == 2024)  # quarter -3: no treated month
            and not (g != "a" and m.month in (7, 8, 9) and m.year == 2025)]  # quarter +2: treated only
    with warnings.catch_warnings():
        warnings.simplefilter("error", SingularMatrixWarning)
        r = impact.did(pd.DataFrame(rows), "a", months[12])
    assert r["unidentified_quarters"] == [-3, 2]
    es = r["event_study"]
    assert set(es["quarter"]) == {-4, -2, -1, 0, 1, 3} and not ({-3, 2} & set(es["quarter"]))
    assert (es.loc[es["quarter"] != -1, "ci_high"] - es.loc[es["quarter"] != -1, "ci_low"] > 0.1).all()


def test_an_effect_with_no_comparison_after_the_start_is_not_identified():
    """After the start only the treated group is observed: the post-period effect is a combination of
    the month effects, so no estimate is given and the reason is the one raised."""
    months = pd.date_range("2024-01-01", periods=24, freq="MS")
    rows = [{"grp": g, "month": m, "y": 50.0 + (g == "a"), "n": 100} for g in ("a", "b", "c") for m in months
            if g == "a" or m < months[12]]
    with pytest.raises(impact.NotIdentified, match="no month has both a and a comparison"):
        impact.did(pd.DataFrame(rows), "a", months[12])


def test_money_translation_hand_worked():
    from cxmetrics.core.results import Estimate

    class FakeCon:  # only assumptions.current is used
        def execute(self, *a, **k):
            class R:
                def fetchall(self):
                    return [("cost_per_escalation", 100.0, "EUR", None, None, None, 1)]
            return R()

    eff = Estimate("effect", "x", -10.0, -15.0, -5.0)
    cells = pd.DataFrame({"grp": ["s", "s", "n"], "month": pd.to_datetime(["2025-01-01", "2025-02-01", "2025-02-01"]),
                          "y": [20, 20, 30], "n": [300, 200, 999]})
    m = impact._money(FakeCon(), Filters(), "escalation_rate", eff, cells, "s", pd.Timestamp("2025-01-01"))
    # 10 points of 500 complaints = 50 escalations avoided × 100 = 5,000 (CI 2,500 to 7,500)
    assert (m.estimate, m.ci_low, m.ci_high) == (5000.0, 2500.0, 7500.0)


def test_register_validation_and_audit(writable_db):
    rec = {"initiative_id": "INI-100", "name": "Trial", "track": "strategic", "department": "billing",
           "started_on": "2025-05-01", "cost": 10, "treated_segment": "all"}
    with store.connect(str(writable_db), read_only=False) as con:
        with pytest.raises(initiatives.InitiativeError, match="may not edit"):
            initiatives.save(con, rec, actor="e", role="executive")
        for bad, msg in (({"track": "fast"}, "track must be one of"), ({"department": "nowhere"}, "not a known"),
                         ({"ended_on": "2025-01-01"}, "before started_on"), ({"cost": -1}, "non-negative"),
                         ({"name": "=cmd"}, "may not start")):
            with pytest.raises(initiatives.InitiativeError, match=msg):
                initiatives.save(con, rec | bad, actor="a", role="analyst")
        initiatives.save(con, rec, actor="ana", role="analyst")
        initiatives.save(con, rec | {"cost": 20}, actor="ana", role="analyst")
        assert con.execute("SELECT cost FROM initiatives WHERE initiative_id = 'INI-100'").fetchone()[0] == 20
        audit = con.execute("SELECT action, outcome, detail FROM audit WHERE object = 'INI-100' ORDER BY audit_id").fetchall()
    assert [a[:2] for a in audit] == [("initiative_edit", "refused"), ("initiative_add", "accepted"),
                                      ("initiative_edit", "accepted")]
    assert '"cost": "10.0"' in audit[2][2] and '"cost": "20.0"' in audit[2][2]


def test_page_and_edit(writable_db, make_app):
    at = make_app(writable_db, page="pages/09_initiatives.py")
    assert not at.exception, at.exception
    assert at.title[0].value == "Initiatives & impact"
    at.text_input(key="ini_id").input("INI-200")
    at.text_input(key="ini_name").input("Callback pledge")
    at.text_input(key="ini_dept").input("contact_centre")
    at.button(key="FormSubmitter:ini_form-Save initiative").click().run()
    assert not at.exception, at.exception
    assert any("Saved INI-200" in s.value for s in at.success)


def test_page_read_only_for_executive(demo_db, make_app):
    at = make_app(demo_db, role="executive", page="pages/09_initiatives.py")
    assert not at.exception, at.exception
    assert any("Only the CX analyst" in i.value for i in at.info)


def test_cli(demo_db):
    out = subprocess.run([sys.executable, "-m", "cxmetrics", "metrics", "impact", "--initiative", "INI-001", "--json",
                          "--db", str(demo_db)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)["initiatives"][0]
    assert res["status"] == "effect" and res["effect"]["estimate"] < 0


def test_did_interval_is_labelled_hc1_and_says_clustering_is_not_available(impacts):
    i = impacts["INI-001"]
    assert "HC1" in i.effect.method and "not clustered" in i.effect.method
    assert any("Cluster-robust inference by region is not available: one treated region of 4" in w
               for w in i.effect.warnings)
    wild = next(c for c in i.checks if "wild cluster bootstrap" in c)
    assert "Webb" in wild and "all 1,296 weight vectors" in wild
    assert i.effect.se is not None and i.effect.se > 0
    assert "cluster-robust inference is not available" in i.explanation  # the sentence the deck quotes


def test_its_interval_names_its_method(impacts):
    for key in ("INI-004", "INI-005"):
        e = impacts[key].effect
        assert "Prais–Winsten" in e.method and "Bell–McCaffrey" in e.method, key
        assert "Newey" not in e.method


def test_an_impact_is_measured_over_the_whole_history_and_says_so_under_a_date_range(con):
    """A DiD or ITS needs the months before and after the start: the date range does not apply, so
    the result names the filters without it and, when one was given, warns that it was not applied."""
    everything = impact.all_impacts(con, Filters())
    dated = impact.all_impacts(con, Filters(date_from=dt.date(2025, 10, 1)))
    measured = [(a, b) for a, b in zip(everything, dated, strict=True) if a.effect is not None]
    assert measured, "the demo has initiatives with a measured effect"
    for a, b in measured:
        assert (a.effect.estimate, a.effect.ci_low, a.effect.ci_high) == (b.effect.estimate, b.effect.ci_low,
                                                                           b.effect.ci_high)
        assert b.effect.filters == a.effect.filters == "all data"
        assert impact.WHOLE_HISTORY in b.effect.warnings and impact.WHOLE_HISTORY not in a.effect.warnings
        if b.money is not None:
            assert b.money.filters == "all data"


def test_the_cli_says_a_date_range_does_not_apply_to_initiatives(small_db):
    def run(*extra):
        return subprocess.run([sys.executable, "-m", "cxmetrics", "metrics", "impact", "--db", str(small_db), *extra],
                              capture_output=True, text=True, timeout=300)

    dated, plain = run("--range", "last-12-months"), run()
    assert dated.returncode == plain.returncode == 0, dated.stderr
    assert impact.WHOLE_HISTORY in dated.stdout and impact.WHOLE_HISTORY not in plain.stdout
    assert dated.stdout.replace(f"\nnote: {impact.WHOLE_HISTORY}", "") == plain.stdout  # the same results


# ------------------------------------------------ kept impacts (the unfiltered view's, under any range)

def _same(a: impact.Impact, b: impact.Impact, *, exact: bool) -> None:
    """The same impact: to the bit (``exact``), else up to the last bits of DuckDB's parallel float
    sums (two live measurements of a KPI series differ there too)."""
    import dataclasses

    for f in dataclasses.fields(impact.Impact):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, pd.DataFrame):
            pd.testing.assert_frame_equal(x, y, check_exact=exact, rtol=1e-9)
        elif f.name in ("effect", "money") and x is not None and not exact:
            for g in dataclasses.fields(x):
                u, v = getattr(x, g.name), getattr(y, g.name)
                if g.name == "queries":  # a kept estimate's are the text a live one's give
                    u, v = described(u), described(v)
                assert u == pytest.approx(v, rel=1e-9, nan_ok=True) if isinstance(u, float) else u == v, (f.name, g.name)
        elif isinstance(x, float) and not exact:
            assert x == pytest.approx(y, rel=1e-9), f.name
        else:
            assert x == y, f.name


def test_an_impact_is_kept_to_the_bit(impacts):
    assert {i.design for i in impacts.values()} >= {"difference-in-differences", "interrupted time series", "none"}
    for i in impacts.values():
        _same(i, impact.Impact.from_json(json.loads(json.dumps(i.to_json()))), exact=True)
    # a frame whose index is not 0, 1, 2, … keeps it
    cells = pd.DataFrame({"grp": pd.Series(["a", None], dtype="str"), "y": [1.5, float("nan")],
                          "n": pd.array([4, None], dtype="Int64"), "ok": [True, False]}, index=[3, 7])
    pd.testing.assert_frame_equal(impact._frame_from_json(json.loads(json.dumps(impact._frame_json(cells)))), cells,
                                  check_exact=True)


def test_the_kept_impacts_are_what_a_page_would_measure_under_any_range(demo_db, monkeypatch):
    year = Filters(date_from=dt.date(2025, 10, 1), date_to=dt.date(2026, 9, 29))
    with store.connect(str(demo_db)) as con:
        with monkeypatch.context() as m:
            refuse(m, impact, "estimate", "measured an impact live")
            kept, kept_year = impact.all_impacts(con, Filters()), impact.all_impacts(con, year)
            one = impact.all_impacts(con, year, initiative="INI-004")
            for narrower in ({"segments": ("smb",)}, {"regions": ("south",)}):  # measured: a group narrows them
                with pytest.raises(AssertionError, match="measured an impact"):
                    impact.all_impacts(con, Filters(**narrower))
            with pytest.raises(AssertionError, match="measured an impact"):
                impact.all_impacts(con, Filters(), alpha=0.1)
        with monkeypatch.context() as m:
            live_only(m, "impacts")
            live, live_year = impact.all_impacts(con, Filters()), impact.all_impacts(con, year)
    assert [i.initiative_id for i in kept] == [i.initiative_id for i in live] and len(kept) >= 5
    for a, b in zip(kept + kept_year, live + live_year, strict=True):
        _same(a, b, exact=False)
    assert all(impact.WHOLE_HISTORY in i.effect.warnings for i in kept_year if i.effect)
    assert not any(impact.WHOLE_HISTORY in i.effect.warnings for i in kept if i.effect)
    assert [i.initiative_id for i in one] == ["INI-004"]


def test_a_write_measures_the_kept_impacts_again(writable_db, monkeypatch):
    from cxmetrics.store import assumptions

    rec = {"initiative_id": "INI-100", "name": "Trial", "track": "result_driven", "department": "billing",
           "started_on": "2025-05-01", "cost": 10, "treated_segment": "all"}
    with store.connect(str(writable_db), read_only=False) as con:
        before = {i.initiative_id: i for i in impact.all_impacts(con, Filters())}
        initiatives.save(con, rec, actor="ana", role="analyst")
        assumptions.set_value(con, "cost_per_escalation", 2 * assumptions.get(con, "cost_per_escalation").value,
                              actor="fiona", role="finance")
        with monkeypatch.context() as m:
            refuse(m, impact, "estimate", "measured an impact live")
            after = {i.initiative_id: i for i in impact.all_impacts(con, Filters())}
    assert "INI-100" in after and "INI-100" not in before
    assert after["INI-100"].status == "no target metric"
    # the escalation initiative's money follows the new cost per escalation
    assert after["INI-001"].money.estimate == pytest.approx(2 * before["INI-001"].money.estimate, rel=1e-9)


def test_an_initiative_that_cannot_be_measured_does_not_fail_a_write(writable_db, monkeypatch):
    """Measuring the kept impacts runs inside every write that can change them: a failure there
    keeps no impacts (the pages measure live and show the error) and the write goes on."""
    from cxmetrics.store import summaries

    rec = {"initiative_id": "INI-101", "name": "Odd", "track": "strategic", "department": "billing",
           "started_on": "2025-05-01", "cost": 1, "treated_segment": "all"}
    with store.connect(str(writable_db), read_only=False) as con:
        with monkeypatch.context() as m:
            refuse(m, impact, "estimate", "an initiative the code cannot measure")
            initiatives.save(con, rec, actor="ana", role="analyst")  # no error
        assert con.execute("SELECT count(*) FROM initiatives WHERE initiative_id = 'INI-101'").fetchone()[0] == 1
        assert summaries.current(con, summaries.FITS_TABLE) and summaries.fit_text(con, "impacts") is None
        assert summaries.fit_text(con, "cox") is not None  # the other fits are kept as before
        with monkeypatch.context() as m:
            refuse(m, impact, "estimate", "measured an impact live")
            with pytest.raises(AssertionError, match="measured an impact live"):
                impact.all_impacts(con, Filters())  # nothing kept: the page measures
        assert "INI-101" in {i.initiative_id for i in impact.all_impacts(con, Filters())}
