"""What moved: planted changes are found and planted noise stays below the FDR (seeded simulation);
on the demo the planted late-delivery surge of the last quarter is in the list, as a plain sentence."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from cxmetrics.core.filters import Filters, Scope
from cxmetrics.core.results import Result
from cxmetrics.metrics import moved, theme_lean, theme_store
from cxmetrics.store import summaries

Q = 0.10


def _simulate(rng, n_cells=200, n_planted=20, n=800):
    """Share cells (a theme's share of verbatims, previous vs current period) and NPS cells;
    the first ``n_planted`` of each kind change, the others are noise around the same value."""
    rows = []
    for i in range(n_cells):
        planted = i < n_planted
        metric = "share" if i % 2 else "nps"
        if metric == "share":
            p0 = rng.uniform(0.05, 0.3)
            p1 = p0 + (0.08 if planted else 0.0)
            rows.append({"metric": "share", "dim": "segment", "level": f"s{i}", "theme": "t", "n_0": n, "n_1": n,
                         "k_0": rng.binomial(n, p0), "k_1": rng.binomial(n, p1), "planted": planted})
        else:
            mix0 = np.array([0.4, 0.3, 0.3])
            mix1 = mix0 + (np.array([-0.1, 0.0, 0.1]) if planted else 0.0)  # promoters, passives, detractors
            a, b = rng.multinomial(n, mix0), rng.multinomial(n, mix1)
            rows.append({"metric": "nps", "dim": "region", "level": f"r{i}", "theme": None, "n_0": n, "n_1": n,
                         "p_0": a[0], "d_0": a[2], "p_1": b[0], "d_1": b[2], "planted": planted})
    return pd.DataFrame(rows)


def test_planted_changes_found_and_noise_below_the_fdr():
    rng = np.random.default_rng(2026)
    fdp, power, raw_false = [], [], []
    for _ in range(100):
        cells = _simulate(rng)
        out = moved.assess_cells(cells, q=Q, min_n=30)
        found = out["moved"]
        false = (found & ~out["planted"]).sum()
        fdp.append(false / max(found.sum(), 1))
        power.append((found & out["planted"]).sum() / out["planted"].sum())
        raw_false.append(((out["p_value"] < Q) & ~out["planted"]).sum())
    assert np.mean(power) > 0.9
    assert np.mean(fdp) <= Q  # BH: expected FDP <= q * (null share) = 0.09
    assert np.mean(raw_false) > 10  # without the correction, noise would be listed (about 18 cells)


def test_global_null_rarely_lists_anything():
    rng = np.random.default_rng(7)
    any_found = [moved.assess_cells(_simulate(rng, n_planted=0), q=Q, min_n=30)["moved"].any() for _ in range(100)]
    assert np.mean(any_found) <= Q + 0.03  # under the global null BH controls the family-wise rate at q


def test_each_metric_is_tested_with_its_own_formula():
    cells = pd.DataFrame([
        {"metric": "csat", "dim": "all", "level": "all", "theme": None, "n_0": 100, "n_1": 100,
         "s_0": 400.0, "ss_0": 1700.0, "s_1": 420.0, "ss_1": 1850.0},
        {"metric": "complaints", "dim": "all", "level": "all", "theme": None, "k_0": 90, "k_1": 150, "months": 3},
        {"metric": "share", "dim": "all", "level": "all", "theme": "t", "n_0": 10, "n_1": 500, "k_0": 1, "k_1": 50},
    ])
    out = moved.assess_cells(cells, q=0.05, min_n=30)
    csat, comp, share = out.iloc[0], out.iloc[1], out.iloc[2]
    assert csat["change"] == pytest.approx(0.2)
    assert csat["se"] == pytest.approx(np.sqrt((1 * 100 / 99) / 100 + (0.86 * 100 / 99) / 100), rel=1e-3)  # 18.5 - 4.2²
    assert comp["change"] == pytest.approx(20.0) and comp["se"] == pytest.approx(np.sqrt(240) / 3)
    assert np.isnan(share["p_value"]) and not share["moved"]  # 10 verbatims: below the minimum, not tested


def test_strongest_evidence_first_when_p_values_underflow():
    # at a million customers the moved cells' p-values are 0.0 (and so their adjusted ones): the
    # z statistic orders them; the input is weakest first, so keeping its order would fail
    cells = pd.DataFrame([{"metric": "share", "dim": "segment", "level": f"s{i}", "theme": "t", "n_0": 400_000,
                           "n_1": 400_000, "k_0": 40_000, "k_1": 40_000 + 20_000 * (i + 1)} for i in range(4)]
                         + [{"metric": "share", "dim": "segment", "level": "flat", "theme": "t", "n_0": 400_000,
                             "n_1": 400_000, "k_0": 40_000, "k_1": 40_000}])
    out = moved.strongest_first(moved.assess_cells(cells, q=0.05, min_n=30))
    assert (out.loc[out["moved"], "q_value"] == 0).all()
    assert list(out["level"]) == ["s3", "s2", "s1", "s0", "flat"]


def _sentences(n):
    return Result("what_moved", "What moved", pd.DataFrame({"x": [1]}),
                  extra={"sentences": [f"s{i}" for i in range(n)], "tested": 99})


def test_describe_says_the_strongest_few_and_counts_the_rest():
    assert moved.describe(_sentences(20)) == [f"s{i}" for i in range(20)]
    got = moved.describe(_sentences(20), limit=8, rest_where="the table below lists them all")
    assert got[:8] == [f"s{i}" for i in range(8)] and len(got) == 9
    assert got[8].startswith("…and 12 more changes survived") and got[8].endswith("the table below lists them all.")
    assert moved.describe(_sentences(9), limit=8)[8].startswith("…and 1 more change survived")
    assert moved.describe(_sentences(8), limit=8) == [f"s{i}" for i in range(8)]
    assert "nothing moved beyond noise" in moved.describe(_sentences(0), limit=8)[0]


def test_the_moved_cells_table(con):
    r = moved.what_moved(con, Filters(), cb={"Late delivery": ["late", "retard", "laat", "verspätet", "spät"]})
    t = moved.moved_cells(r)
    assert len(t) == len(r.extra["sentences"]) > 0
    assert list(t.columns) == ["metric", "dimension", "level", "theme", "before", "after", "change", "ci_low",
                               "ci_high", "fdr_adjusted_p_value", "n"]
    hit = r.table[r.table["moved"]].reset_index(drop=True)
    assert (t["change"] == hit["change"]).all() and (t["fdr_adjusted_p_value"] <= 0.05).all()
    want = np.where(hit["metric"] == "complaints", hit.get("k_0", 0) + hit.get("k_1", 0), hit["n_0"] + hit["n_1"])
    assert (t["n"].to_numpy() == want).all() and (t["n"] > 0).all()
    assert moved.moved_cells(Result("what_moved", "x", pd.DataFrame())).columns[-1] == "n"


def test_demo_surge_is_in_the_list(con):
    cb = {"Late delivery": ["late", "retard", "laat", "verspätet", "spät"]}
    r = moved.what_moved(con, Filters(), cb=cb)
    top = r.table[(r.table["metric"] == "share") & (r.table["dim"] == "all")].iloc[0]
    assert top["moved"] and top["change"] > 0 and top["ci_low"] > 0
    sentence = next(s for s in r.extra["sentences"] if "Late delivery" in s and "overall" in s)
    assert "rose" in sentence and "95% CI" in sentence and "FDR-adjusted p" in sentence
    assert r.table["q_value"].dropna().between(0, 1).all()


def test_what_moved_obeys_the_scope(con):
    cb = {"Late delivery": ["late"]}
    nobody = moved.what_moved(con, Filters(scope=Scope(role="department", departments=(), user="x")), cb=cb)
    assert not nobody.extra["sentences"] and nobody.table.get("n", pd.Series(dtype=float)).sum() == 0
    billing = moved.what_moved(con, Filters(scope=Scope(role="department", departments=("billing",), user="b")), cb=cb)
    levels = set(billing.table.loc[billing.table["dim"] == "department", "level"])
    assert levels <= {"billing"} and levels


@pytest.mark.parametrize("filters", [
    Filters(), Filters(segments=("smb",)), Filters(regions=("north",), date_to=dt.date(2026, 6, 30)),
    Filters(date_from=dt.date(2025, 10, 1), date_to=dt.date(2026, 3, 31)),
    Filters(scope=Scope(role="department", departments=("billing",), user="b")),
    Filters(segments=("smb",), scope=Scope(role="department", departments=("delivery", "billing"), user="d"))],
    ids=["all", "segment", "region to a day", "custom range", "billing scope", "segment, two departments"])
def test_cells_are_the_same_from_the_summaries_and_lean_tables_as_from_the_raw_tables(con, monkeypatch, filters):
    """What moved reads its counts from the responses and complaints summaries and its theme shares
    from the kept run's day cells; from the lean tables' rows (a run kept before the day cells) and with neither (raw survey, complaints and kept assignments) every
    cell's sufficient statistics are the same."""
    run = theme_store.latest(con)
    assert theme_store.is_current(con, run) and theme_store.lean(con)
    fast, when = moved.cells(con, filters, cb=run.codebook, kept=True, from_fit=False)
    assert set(fast["metric"]) == {"nps", "csat", "complaints", "share"}
    with monkeypatch.context() as mp:
        mp.setattr(theme_lean, "extras_present", lambda con: False)  # a run kept before the day cells
        rows, _ = moved.cells(con, filters, cb=run.codebook, kept=True, from_fit=False)
        mp.setattr(theme_store, "lean_run", lambda con: None)
        no_lean, _ = moved.cells(con, filters, cb=run.codebook, kept=True, from_fit=False)
        mp.setattr(summaries, "_state", lambda con: ({}, 0))  # no summary is current: raw queries
        raw, raw_when = moved.cells(con, filters, cb=run.codebook, kept=True, from_fit=False)
    assert when == raw_when
    for other in (rows, no_lean, raw):
        pd.testing.assert_frame_equal(_by_cell(fast), _by_cell(other), check_dtype=False)


def _pivoted(w: pd.DataFrame, cols, metric: str, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """The reference for a metric's cells: the long cells (one row per period) pivoted by pandas."""
    piv = w.pivot_table(index=["dim", "level", *extra], columns="period", values=list(cols), aggfunc="sum")
    flat = pd.DataFrame(index=piv.index)
    for src, dst in cols.items():
        for per in (0, 1):
            flat[f"{dst}_{per}"] = piv[(src, per)] if (src, per) in piv.columns else 0.0
    flat = flat.fillna(0).reset_index()
    flat.insert(0, "metric", metric)
    if "theme" not in flat.columns:
        flat["theme"] = None
    return flat


def _pivoted_shares(tag: pd.DataFrame, tot: pd.DataFrame) -> list[pd.DataFrame]:
    tag = tag.dropna(subset=["theme"])
    if not len(tag):
        return []
    s = _pivoted(tag, {"k": "k"}, "share", extra=("theme",))
    n = tot.pivot_table(index=["dim", "level"], columns="period", values="n", aggfunc="sum").reindex(columns=[0, 1])
    n.columns = ["n_0", "n_1"]
    s = s.merge(n.reset_index(), on=["dim", "level"], how="left")
    s[["n_0", "n_1"]] = s[["n_0", "n_1"]].fillna(0)
    return [s]


@pytest.mark.parametrize("filters", [
    Filters(), Filters(segments=("smb",)), Filters(date_from=dt.date(2025, 10, 1), date_to=dt.date(2026, 3, 31)),
    Filters(scope=Scope(role="department", departments=("billing",), user="b"))],
    ids=["all", "segment", "custom range", "billing scope"])
def test_the_periods_split_in_sql_are_the_long_cells_pivoted(con, monkeypatch, filters):
    """The two periods' sums come side by side from the queries (``FILTER (WHERE period = …)``):
    the same cells, in the same order, as the per-period rows pivoted by pandas — with the kept
    run's day cells, its rows, and themes classified from the codebook."""
    run = theme_store.latest(con)
    for lean_extras, lean in ((True, True), (False, True), (False, False)):
        with monkeypatch.context() as mp:
            mp.setattr(theme_lean, "extras_present", lambda con, v=lean_extras: v)
            mp.setattr(theme_store, "lean_run", lambda con, v=run.run_id if lean else None: v)
            got, when = moved.cells(con, filters, cb=run.codebook, kept=lean, from_fit=False)
            mp.setattr(moved, "_by_period", lambda cells, sums, keys=(): cells)
            mp.setattr(moved, "_flatten", _pivoted)
            mp.setattr(moved, "_share_frames", _pivoted_shares)
            want, want_when = moved.cells(con, filters, cb=run.codebook, kept=lean, from_fit=False)
        assert when == want_when and set(got["metric"]) == {"nps", "csat", "complaints", "share"}
        pd.testing.assert_frame_equal(got, want, check_dtype=False)


def _by_cell(df: pd.DataFrame) -> pd.DataFrame:
    keys = ["metric", "dim", "level", "theme"]
    num = [c for c in df.columns if c not in keys]
    out = df.astype({c: float for c in num}).sort_values(keys, na_position="first").reset_index(drop=True)
    return out[keys + sorted(num)]


def test_cells_leave_out_answers_and_complaints_without_a_customer_on_every_path(writable_db, monkeypatch):
    """Anonymous answers (some with verbatims) and complaints without a customer have no segment or
    region: every path leaves them out of every cell (they are in no segment's cell, so not in the
    overall one either), and the overall counts equal a direct count of the known ones. Blank
    verbatims are no verbatim on any path either."""
    from cxmetrics import store

    with store.connect(str(writable_db), read_only=False) as con:
        with store.transaction(con):
            con.execute("UPDATE survey_responses SET customer_id = NULL WHERE responded_on > DATE '2026-04-01' "
                        "AND hash(response_id) % 20 = 0")
            con.execute("UPDATE complaints SET customer_id = NULL WHERE opened_on > DATE '2026-04-01' "
                        "AND hash(complaint_id) % 20 = 0")
            con.execute("UPDATE survey_responses SET verbatim = '  ' WHERE responded_on > DATE '2026-04-01' "
                        "AND verbatim IS NOT NULL AND hash(response_id) % 20 = 1")  # blank: not a verbatim
            store.bump_version(con, ["survey_responses", "complaints"])
        theme_store.save_codebook(con, theme_store.latest(con).codebook, actor="ana", role="analyst")
        run = theme_store.latest(con)
        assert theme_store.is_current(con, run) and theme_store.lean(con)
        assert con.execute("SELECT count(*) FROM theme_tagged WHERE NOT known").fetchone()[0] > 0
        assert con.execute("SELECT count(*) FROM theme_verbatims WHERE blank AND known").fetchone()[0] > 0
        fast, (_, cur, end) = moved.cells(con, Filters(), cb=run.codebook, kept=True, from_fit=False)
        with monkeypatch.context() as mp:
            mp.setattr(theme_lean, "extras_present", lambda con: False)
            rows, _ = moved.cells(con, Filters(), cb=run.codebook, kept=True, from_fit=False)
            mp.setattr(theme_store, "lean_run", lambda con: None)
            mp.setattr(summaries, "_state", lambda con: ({}, 0))
            raw, _ = moved.cells(con, Filters(), cb=run.codebook, kept=True, from_fit=False)
        pd.testing.assert_frame_equal(_by_cell(fast), _by_cell(raw), check_dtype=False)
        pd.testing.assert_frame_equal(_by_cell(rows), _by_cell(raw), check_dtype=False)
        known = con.execute("SELECT count(nps) FROM survey_responses WHERE customer_id IS NOT NULL AND "
                            "responded_on > ? AND responded_on <= ?", [cur, end]).fetchone()[0]
        overall = fast[(fast["metric"] == "nps") & (fast["dim"] == "all")].iloc[0]
        assert overall["n_1"] == known


def _no_live(*args, **kwargs):
    raise AssertionError("computed live where the kept cells serve")


def test_kept_cells_are_the_live_cells_for_every_kept_view(con, monkeypatch):
    """The cells kept with the summaries (:func:`moved.default_fit`) are exactly (values and dtypes)
    what the queries give for the unfiltered view and each kept segment and region, and for a date
    range ending at the data's end (the window is the same); a view they do not cover is computed."""
    run = theme_store.latest(con)
    doc = summaries.fit(con, "moved")
    assert doc is not None and doc["theme_run"] == run.run_id == theme_store.lean_run(con)
    end = dt.date.fromisoformat(doc["end"])
    views = [Filters(), Filters(date_from=dt.date(2025, 10, 1)), Filters(date_from=dt.date(2026, 1, 1), date_to=end),
             Filters(segments=("smb",), date_from=dt.date(2025, 10, 1), min_n=5)]
    views += [Filters(segments=(v,)) for v in doc["by"]["segment"]] + [Filters(regions=(v,)) for v in doc["by"]["region"]]
    assert len(views) > 8
    live = {f: moved.cells(con, f, cb=run.codebook, kept=True, from_fit=False) for f in views}
    with monkeypatch.context() as mp:
        for name in ("_base_frames", "_lean_share_frames", "_classified_share_frames"):
            mp.setattr(moved, name, _no_live)
        for f in views:
            got, when = moved.cells(con, f, cb=run.codebook, kept=True)
            assert when == live[f][1]
            pd.testing.assert_frame_equal(got, live[f][0])
    not_kept = [Filters(date_to=end - dt.timedelta(days=1)), Filters(segments=("smb", "consumer")),
                Filters(segments=("smb",), regions=("north",)),
                Filters(scope=Scope(role="department", departments=("billing",), user="b"))]
    calls = []
    with monkeypatch.context() as mp:
        mp.setattr(moved, "_base_frames", lambda *a, f=moved._base_frames: calls.append(1) or f(*a))
        for f in not_kept:
            pd.testing.assert_frame_equal(moved.cells(con, f, cb=run.codebook, kept=True)[0],
                                          moved.cells(con, f, cb=run.codebook, kept=True, from_fit=False)[0])
        moved.cells(con, Filters(), months=6, cb=run.codebook, kept=True)  # another comparison: computed
    assert len(calls) == 2 * len(not_kept) + 1


def test_kept_cells_follow_the_theme_run(writable_db, monkeypatch):
    """The kept theme shares are those of the run current when the cells were kept: a write that
    leaves the run current keeps them with it (the run is carried over before the fits are kept), a
    survey write keeps the NPS, CSAT and complaint cells only (the page classifies the shares with
    the codebook, as without kept cells), and a theme run keeps them again with the new run. On each
    store what moved is the same as computed live."""
    from cxmetrics import store

    def check(con, theme_run):
        doc = summaries.fit(con, "moved")
        assert doc["theme_run"] == theme_run == theme_store.lean_run(con) and bool(doc["shares"]) == (theme_run is not None)
        with monkeypatch.context() as mp:
            mp.setattr(moved, "_kept_cells", lambda *a: None)
            want = moved.what_moved.__wrapped__(con, Filters(), cb=_cb(con), kept=theme_run is not None)
        got = moved.what_moved.__wrapped__(con, Filters(), cb=_cb(con), kept=theme_run is not None)
        pd.testing.assert_frame_equal(got.table, want.table)
        assert "share" in set(got.table["metric"])

    def _cb(con):
        return theme_store.latest(con).codebook

    with store.connect(str(writable_db), read_only=False) as con:
        run = theme_store.latest(con)
        check(con, run.run_id)
        with store.transaction(con):  # complaints only: the run stays current, the cells are kept again
            con.execute("UPDATE complaints SET category = 'billing' WHERE hash(complaint_id) % 50 = 0")
            store.bump_version(con, ["complaints"])
        assert theme_store.is_current(con, theme_store.latest(con))
        assert "moved" not in summaries.last_refresh(con)["fits_kept"]
        check(con, run.run_id)
        with store.transaction(con):  # survey answers: the run is no longer current
            con.execute("UPDATE survey_responses SET nps = 10 - nps WHERE hash(response_id) % 50 = 0 AND nps IS NOT NULL")
            store.bump_version(con, ["survey_responses"])
        assert theme_store.lean_run(con) is None
        check(con, None)
        theme_store.save_codebook(con, run.codebook, actor="ana", role="analyst")  # a new run, kept
        new = theme_store.latest(con)
        assert new.run_id != run.run_id
        refresh = summaries.last_refresh(con)
        assert {"cox", "btyd", "clusters"} <= set(refresh["fits_kept"]) and "moved" not in refresh["fits_kept"]
        check(con, new.run_id)
