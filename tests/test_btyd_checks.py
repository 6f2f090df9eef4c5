"""Non-contractual value (issue 17 item 10): identification of the BG/NBD and Gamma-Gamma fits,
the holdout check on a split from the data, reference dates from the data, and transactions-only
stores (no surveys, stub customers only)."""

from __future__ import annotations

import datetime as dt
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxmetrics import store
from cxmetrics.core.filters import Filters, Scope
from cxmetrics.metrics import btyd
from cxmetrics.metrics import btyd_checks as bc
from cxmetrics.registers import demo, importer

from . import fixtures_real as fr
from .test_churn_clv import cdnow

ROOT = Path(__file__).resolve().parent.parent


def _cli(args: list[str], cwd: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    r = subprocess.run([sys.executable, "-m", "cxmetrics", *args], cwd=cwd, capture_output=True, text=True,
                       timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]


@pytest.fixture(scope="module")
def tx_stores(tmp_path_factory) -> dict[str, Path]:
    return build_stores_without_surveys(tmp_path_factory)


def build_stores_without_surveys(tmp_path_factory) -> dict[str, Path]:
    """Two stores without a single survey answer, built as a user builds them (`init`, then imports):
    ``transactions``: the small demo company's customers and transactions; ``line_items``: the
    line-item retail fixture alone (every customer a stub, one year of invoices)."""
    folder = tmp_path_factory.mktemp("btyd_tx")
    out = {}
    db = folder / "transactions.duckdb"
    _cli(["init", "--db", str(db)], ROOT)
    frames = demo.generate(300, 5)
    for t in ("customers", "transactions"):
        frames[t].to_csv(folder / f"{t}.csv", index=False)
        importer.import_file(folder / f"{t}.csv", t, db=str(db), actor="test")
    out["transactions"] = db
    shape = fr.line_items(folder)
    db = folder / "line_items.duckdb"
    _cli(["init", "--db", str(db)], ROOT)
    argv = shlex.split(shape.commands[0])
    _cli([*argv[3:], "--db", str(db)], folder)
    out["line_items"] = db
    return out


# ----------------------------------------------------------------------------- identification


def test_a_base_with_no_dropout_and_no_heterogeneity_is_not_identified():
    """Planted: 10 months (43 weeks) of purchases where every customer bought again in the last
    week and everyone bought 2 or 3 times. The BG/NBD dropout term B(a, b+x−1)/B(a, b) is then
    maximised only as a/(a+b) → 0, and the counts are less dispersed than a Poisson's, so the gamma
    heterogeneity runs off too (r, α → ∞): the likelihood has no finite maximum."""
    x = np.array([2.0, 3.0] * 60)
    T = np.full(120, 43.0)
    fit = btyd.fit_bgnbd(x, T, T)
    why = bc.identify_bgnbd(fit, x, T, T)
    assert any("a/(a+b)" in r and "→ 0" in r for r in why), why
    assert any("ran off" in r for r in why), why
    # the same window drawn from a BG/NBD with the demo's planted parameters is identified
    x2, t_x, T2 = _simulate_bgnbd(2000, weeks=43.0, seed=3, **demo.BGNBD)
    fit2 = btyd.fit_bgnbd(x2, t_x, T2)
    assert bc.identify_bgnbd(fit2, x2, t_x, T2) == ()


def _simulate_bgnbd(n: int, *, weeks: float, seed: int, r: float, alpha: float, a: float, b: float):
    """(x, t_x, T) of ``n`` customers from the BG/NBD story: a first purchase at 0, then Poisson
    purchases at rate λ ~ Gamma(r, α), dropping out after each with probability p ~ Beta(a, b)."""
    rng = np.random.default_rng(seed)
    lam, p = rng.gamma(r, 1 / alpha, n), rng.beta(a, b, n)
    x, t_x = np.zeros(n), np.zeros(n)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1 / lam[i])
            if t > weeks:
                break
            x[i], t_x[i] = x[i] + 1, t
            if rng.random() < p[i]:
                break
    return x, t_x, np.full(n, weeks)


def test_published_cdnow_fits_are_identified():
    d = pd.read_csv(cdnow("cdnow_customers_summary.csv"))
    f = btyd.fit_bgnbd(d["frequency"], d["recency"], d["T"])
    assert bc.identify_bgnbd(f, d["frequency"], d["recency"], d["T"]) == ()
    g = pd.read_csv(cdnow("cdnow_customers_summary_with_transactions.csv"))
    g = g[g["x"] > 0]
    gg = btyd.fit_gamma_gamma(g["x"], g["zbar"])
    assert bc.identify_gamma_gamma(gg, g["x"], g["zbar"]) == ()


def test_non_convergence_a_bound_and_an_infinite_mean_spend_are_each_named():
    good = btyd.BGNBDFit(0.243, 4.414, 0.793, 2.426, float("nan"), 0, converged=False)
    d = pd.read_csv(cdnow("cdnow_customers_summary.csv"))
    assert bc.identify_bgnbd(good, d["frequency"], d["recency"], d["T"]) == ("the optimiser did not converge",)
    x, m = np.array([1.0, 2.0, 3.0]), np.array([10.0, 12.0, 9.0])
    why = bc.identify_gamma_gamma(btyd.GammaGammaFit(2.0, 0.8, np.exp(10.0), float("nan"), 0), x, m)
    assert any("gamma = " in r and "bound" in r for r in why) and any("q = 0.8 ≤ 1" in r for r in why), why


def test_the_planted_demo_fit_is_identified_and_shown_with_distributions(con):
    res = bc.non_contractual_value(con, Filters())
    assert res.extra["not_identified"] == {"bgnbd": (), "gamma_gamma": ()}
    assert {e.name for e in res.headline} == {"btyd_mean_clv", "btyd_mean_p_alive"}
    got = res.extra["bgnbd"]
    for k in ("r", "alpha", "a", "b"):  # the planted truth, loosely (as test_churn_clv)
        assert got[k] == pytest.approx(demo.BGNBD[k], rel=0.3), k
    s, d = res.extra["summary"], res.extra["distributions"]
    for name in ("p_alive", "expected_purchases", "clv"):
        assert d[name]["customers"].sum() == pytest.approx(s["customers"])  # every customer in one bin
    assert d["p_alive"]["bin_high"].max() == 1.0
    cells = btyd.clv_non_contractual(con, Filters()).table  # every RFM cell, valued
    w = cells["w"]
    assert s["mean_expected_purchases"] == pytest.approx((cells["expected_purchases"] * w).sum() / w.sum())
    assert 0 < s["mean_expected_purchases"] < 52
    # the section's table: its headline estimates, one row each
    assert res.table["name"].tolist() == [e.name for e in res.headline]
    assert res.table["estimate"].tolist() == [e.estimate for e in res.headline]


def test_holdout_is_the_last_third_of_the_data_and_tracks_actuals(con):
    first, cal, last = bc.holdout_split(con)
    assert last == con.execute("SELECT max(occurred_on) FROM transactions").fetchone()[0]
    assert abs((last - cal).days - (last - first).days / 3) <= 1
    h = bc.holdout(con, Filters())
    assert not h.warnings, h.warnings
    assert str(cal) in h.extra["stated"] and "last third" in h.extra["stated"] and str(cal) in h.method
    assert list(h.table.columns) == ["calibration_repeats", "x", "customers", "actual", "predicted",
                                     "actual_per_customer", "predicted_per_customer"]
    assert h.extra["predicted_total"] == pytest.approx(h.extra["actual_total"], rel=0.2)
    # more calibration repeats, more holdout purchases per customer: the model ranks customers
    per = h.table["predicted_per_customer"]
    assert per.iloc[-1] > per.iloc[0] and h.table["actual_per_customer"].iloc[-1] > h.table["actual_per_customer"].iloc[0]


def test_the_unfiltered_holdout_is_kept_and_a_date_range_does_not_apply(con, monkeypatch):
    """The holdout check is kept with the data for the unfiltered view and read back with the same
    figures as a live fit; a date range reads it too (the check spans all the data, and its filters
    say so); a segment is fitted live on that segment's customers."""
    from cxmetrics.store import summaries

    ran = []
    real = btyd.holdout_cells
    monkeypatch.setattr(btyd, "holdout_cells", lambda *a, **k: ran.append(1) or real(*a, **k))
    kept = bc.holdout(con, Filters())
    dated = bc.holdout(con, Filters(date_from=dt.date(2026, 1, 1), date_to=dt.date(2026, 3, 31)))
    assert not ran, "the kept check is read, not refitted"
    live = bc._holdout_result(bc.holdout_parts(con, Filters()), Filters())  # noqa: SLF001
    assert ran
    for other in (dated, live):
        pd.testing.assert_frame_equal(kept.table, other.table)
        assert kept.extra == other.extra and kept.method == other.method
    assert "2026" not in dated.filters  # no date range is claimed for it
    with monkeypatch.context() as mp:
        mp.setattr(summaries, "_state", lambda con: ({}, 0))  # nothing kept: fitted on the page
        pd.testing.assert_frame_equal(bc.holdout(con, Filters()).table, kept.table)
    smb = bc.holdout(con, Filters(segments=("smb",)))
    assert 0 < smb.table["customers"].sum() < kept.table["customers"].sum()


def test_reference_date_is_the_data_last_transaction_not_today(con):
    res = btyd.clv_non_contractual(con, Filters())
    last = con.execute("SELECT max(occurred_on) FROM transactions").fetchone()[0]
    assert res.extra["summary"]["calibration_end"] == str(last) != str(dt.date.today())


# ----------------------------------------------------------------------------- transactions only


def test_transactions_only_store_is_valued_and_an_unidentified_spend_model_withholds_only_clv(tx_stores):
    """The small demo company's transactions without surveys: 88 non-contractual customers. BG/NBD
    is identified; the 76 repeat buyers' spends are so alike that Gamma-Gamma's p runs to the
    no-heterogeneity limit (SE of log p ≈ 12), so P(alive) and expected purchases are shown and
    the CLV is withheld with the reason."""
    with store.connect(str(tx_stores["transactions"])) as con:
        assert con.execute("SELECT count(*) FROM survey_responses").fetchone()[0] == 0
        res = bc.non_contractual_value(con, Filters())
    why = res.extra["not_identified"]
    # which check fires first (a flat profile in p, or p run to its bound) depends on the optimiser's
    # path; either says the spend model is not identified
    assert why["bgnbd"] == () and any("flat in p" in r or "p = " in r for r in why["gamma_gamma"]), why
    assert res.warnings[0].startswith("The model's parameters are not identified") and "no CLV" in res.warnings[0]
    assert [e.name for e in res.headline] == ["btyd_mean_p_alive"]
    e = res.headline[0]
    assert e.ci_low < e.estimate < e.ci_high
    assert res.table["name"].tolist() == ["btyd_mean_p_alive"] and "clv" not in res.extra["distributions"]
    assert res.extra["summary"]["mean_clv"] is None and "gamma_gamma_params" not in res.extra
    assert res.extra["distributions"]["p_alive"]["customers"].sum() == res.extra["summary"]["customers"] == 88
    assert res.extra["holdout"].table["customers"].sum() > 0
    _kept_as_live(tx_stores["transactions"], res)


def _kept_as_live(db: Path, res) -> None:
    """``res`` (the unfiltered section of the store ``db``) was the one kept with its fit, and
    is the section valuing live gives."""
    with store.connect(str(db)) as con:
        assert bc._kept_section(con, Filters(), 0.05) is not None
        kept = bc._kept_section
        bc._kept_section = lambda *a, **k: None
        try:
            _same_section(res, bc.non_contractual_value(con, Filters()))
        finally:
            bc._kept_section = kept


def test_a_year_of_uniform_line_items_is_flagged_not_shown(tx_stores):
    """The line-item fixture: 70 stub customers picked uniformly for each invoice over a year — a
    homogeneous base in which no one is seen to stop. The fit runs off (a/(a+b) → 0) and the result
    says so instead of showing P(alive) ≈ 1 and a CLV of 0."""
    with store.connect(str(tx_stores["line_items"])) as con:
        res = bc.non_contractual_value(con, Filters())
        raw = btyd.clv_non_contractual(con, Filters())
    assert raw.extra["summary"]["mean_p_alive"] > 0.999  # what used to be shown as an estimate
    assert res.table.empty and res.headline == ()
    assert res.warnings[0].startswith("The model's parameters are not identified by this data")
    assert "a/(a+b)" in res.warnings[0] and "BG/NBD" in res.warnings[0]
    assert any("stub customer" in w for w in res.warnings)
    assert res.extra["not_identified"]["bgnbd"]
    # kept so too: the reason first, then the stub customers' note where the valuation put it
    assert any("stub customer" in w for w in res.warnings[1:])
    _kept_as_live(tx_stores["line_items"], res)
    hold = res.extra["holdout"]
    assert hold.table.empty and "not identified" in hold.warnings[0] and "last third" in hold.warnings[0]


def test_a_filtered_holdout_counts_the_stored_check_inputs_as_the_transactions_give(con, monkeypatch):
    """Under a segment, a region or a department scope the calibration RFM cells and holdout counts
    come from the stored check inputs (summary_rfm_holdout, whose split is the one the transactions
    give) — the same frames as counted from the transactions — and the check shows the same table."""
    from cxmetrics.store import relations, summaries

    split = bc.holdout_split(con)
    assert btyd.kept_holdout_split(con) == split
    with monkeypatch.context() as mp:
        mp.setattr(btyd, "kept_holdout_split", lambda con: None)
        assert bc.holdout_split(con) == split  # the same split from the transactions
    _, cal, last = split
    names = []
    real = store.run
    monkeypatch.setattr(store, "run", lambda c, q, *a, **k: names.append(q.sql) or real(c, q, *a, **k))
    for f in (Filters(segments=("smb",)), Filters(regions=("north", "south")),
              Filters(scope=Scope(role="department", departments=("billing",), user="b"))):
        names.clear()
        fast = btyd.holdout_cells(con, f, calibration_end=cal, holdout_end=last)
        assert names and all(relations.RFM_HOLDOUT.name in q and "transactions" not in q for q in names[1:])
        got = bc.holdout(con, f)
        with monkeypatch.context() as mp:
            mp.setattr(btyd, "kept_holdout_split", lambda con: None)
            slow = btyd.holdout_cells(con, f, calibration_end=cal, holdout_end=last)
            want = bc.holdout(con, f)
        assert len(fast[0]) > 10 and fast[1]["customers"].sum() > 50, f
        for a, b in zip(fast, slow, strict=True):
            pd.testing.assert_frame_equal(a, b, check_dtype=False, obj=str(f))
        pd.testing.assert_frame_equal(got.table, want.table)
    assert summaries.current(con, relations.RFM_HOLDOUT.name)


@pytest.mark.parametrize("seed", range(12))
def test_the_histograms_weighted_quantile_is_the_sorted_cumulative_weights(seed):
    """The distributions' top edge (the weighted 99th percentile) sorts only the values above an
    unweighted cut when the weight below it falls short: the same value as sorting every value and
    reading the cumulative weights, with heavy tails, ties at the answer, most of the weight on a few
    cells (the cut is then too high and every value is sorted), integer and fractional weights."""
    from cxmetrics.metrics.btyd_checks import weighted_quantile

    rng = np.random.default_rng(seed)
    n = int(rng.choice([5, 999, 1001, 20_000, 120_000]))
    v = np.round(rng.gamma(0.4, 3.0, n), 1 if seed % 3 == 0 else 6)  # rounded: many ties
    w = rng.integers(1, 5, n).astype(float) if seed % 2 else rng.uniform(0.1, 3.0, n)
    if seed % 4 == 1:  # a few heavy cells among the smallest values: the cut leaves too little weight above
        w[np.argsort(v)[: max(1, n // 50)]] *= 1000
    for q in (0.5, 0.9, 0.99):
        order = np.argsort(v, kind="stable")
        cum = np.cumsum(w[order])
        want = float(v[order][np.searchsorted(cum, q * cum[-1])])
        got = weighted_quantile(v, w, q)
        if seed % 2:  # integer weights: exact sums, the same element
            assert got == want, (seed, n, q)
        else:  # fractional weights: sums in another order may move a boundary by one element
            pos = np.searchsorted(v[order], got)
            assert abs(np.searchsorted(cum, q * cum[-1]) - pos) <= 1 or got == want, (seed, n, q)


def test_the_non_contractual_clv_takes_no_date_range_and_says_so(con):
    """The RFM cells are every purchase up to the last transaction: under a date range the fit and
    the table are the same, the result names the filters without the range and warns it was not applied."""
    plain = btyd.clv_non_contractual(con, Filters())
    dated = btyd.clv_non_contractual(con, Filters(date_from=dt.date(2025, 10, 1)))
    assert not plain.table.empty
    pd.testing.assert_frame_equal(plain.table, dated.table)
    assert dated.filters == plain.filters == "all data"
    assert btyd.WHOLE_HISTORY in dated.warnings and btyd.WHOLE_HISTORY not in plain.warnings


def _same_section(a, b) -> None:
    """Two page sections equal field by field, frames with their dtypes."""
    assert a.to_dict() == b.to_dict()
    for k in ("bgnbd_params", "gamma_gamma_params"):
        if k in a.extra or k in b.extra:
            pd.testing.assert_frame_equal(a.extra[k], b.extra[k])
    for k in set(a.extra.get("distributions", {})) | set(b.extra.get("distributions", {})):
        pd.testing.assert_frame_equal(a.extra["distributions"][k], b.extra["distributions"][k])
    pd.testing.assert_frame_equal(a.table, b.table)


def test_the_customer_value_section_is_kept_with_each_fit_and_is_what_valuing_live_gives(con, monkeypatch):
    """The section the Customer value page shows (headline with intervals, distributions,
    parameters) is kept with the view's BTYD fit: unfiltered, each kept segment and region, with a
    date range besides (the whole-history note added where read). Read so, it values no RFM cell on
    the page, and it is the section valuing them live gives; any other narrowing values live."""
    values = btyd.kept_values(con)
    span = con.execute("SELECT min(responded_on), max(responded_on) FROM survey_responses").fetchone()
    views = [Filters(), *(btyd.narrowed_to(d, v) for d, vs in values.items() for v in vs)]
    views += [views[0].with_(date_from=span[0] + dt.timedelta(days=40)), views[1].with_(date_to=span[1])]
    real = btyd.clv_non_contractual

    def refuse(*args, **kwargs):
        raise AssertionError("valued on the page")

    monkeypatch.setattr(btyd, "clv_non_contractual", refuse)
    kept = [bc.non_contractual_value(con, f) for f in views]
    narrower = Filters(segments=tuple(values["segment"][:2]))
    with pytest.raises(AssertionError, match="valued on the page"):
        bc.non_contractual_value(con, narrower)
    monkeypatch.setattr(btyd, "clv_non_contractual", real)
    monkeypatch.setattr(bc, "_kept_section", lambda *a, **k: None)
    for f, got in zip(views, kept, strict=True):
        live = bc.non_contractual_value(con, f)
        _same_section(got, live)
        assert len(got.headline) == 2 and got.extra["holdout"].table["customers"].sum() > 0
        assert (btyd.WHOLE_HISTORY in got.warnings) == f.dated
    assert kept[0].headline[0].estimate != kept[1].headline[0].estimate  # each view its own
    # another level than the kept one is valued live
    monkeypatch.undo()
    monkeypatch.setattr(btyd, "clv_non_contractual", refuse)
    with pytest.raises(AssertionError, match="valued on the page"):
        bc.non_contractual_value(con, Filters(), alpha=0.1)


def test_a_kept_section_is_not_read_once_the_margin_it_was_valued_with_changed(writable_db, monkeypatch):
    """A write of assumptions alone keeps the BTYD fits (their RFM cells did not change) and with
    them the kept sections, valued at the old gross margin: the page values live then, at the new
    one (the CLV scales with the margin, P(alive) does not move)."""
    from cxmetrics.store import assumptions

    with store.connect(str(writable_db)) as c:
        before = bc.non_contractual_value(c, Filters())
    with store.connect(str(writable_db), read_only=False) as c:
        gm = assumptions.get(c, "gross_margin").value
        assumptions.set_value(c, "gross_margin", gm * 1.2, actor="fiona", role="finance", source="test")
    with store.connect(str(writable_db)) as c:
        assert "section" in btyd.kept_fit(c, Filters())  # kept: the fit did not change
        calls = []
        real = btyd.clv_non_contractual
        monkeypatch.setattr(btyd, "clv_non_contractual", lambda *a, **k: calls.append(1) or real(*a, **k))
        after = bc.non_contractual_value(c, Filters())
    assert calls, "the section valued at the old margin was read"
    b, a = ({e.name: e.estimate for e in r.headline} for r in (before, after))
    assert a["btyd_mean_clv"] == pytest.approx(b["btyd_mean_clv"] * 1.2)
    assert a["btyd_mean_p_alive"] == pytest.approx(b["btyd_mean_p_alive"])
