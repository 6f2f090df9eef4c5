"""Kept theme runs and the theme cost's intervals.

* A kept run is current at the data version it records, carried over by writes that cannot change it,
  stale after a write to the survey (the page then classifies on the fly and says so); the kept figures
  equal the on-the-fly ones; saving a codebook re-classifies at once; only analysts run discovery.
* The token join classifies exactly as the regular expressions do.
* Coverage of the customer-clustered interval of the NPS gap (crude and segment-adjusted) in a seeded
  simulation with planted within-customer correlation: nominal 95% covers within ±3 points
  (400 replicates: the Monte Carlo SE of a 95% coverage is 1.1 points).
* The demo's planted theme costs (from the planted theme labels, not from our classification) lie in
  the intervals.

External numbers: none. Planted truths: the simulation's parameters; cxmetrics.registers.demo_voice.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pytest

from cxmetrics import cli, store, views
from cxmetrics.core.filters import Filters, Scope
from cxmetrics.metrics import theme_cost, theme_lean, theme_store, theme_sums, themes
from cxmetrics.registers import demo_voice
from cxmetrics.store import stubs

PLANTED_KEYWORDS = {
    "late delivery": ["late", "retard", "laat", "spät", "verspätet"],
    "billing error": ["invoice", "facture", "factuur", "rechnung"],
    "phone wait": ["phone", "téléphone", "telefoon", "telefon"],
    "price": ["price", "prix", "prijs", "preis"],
    "friendly staff": ["staff", "personnel", "personeel", "personal"],
    "easy app": ["app", "application"],
}


#: The demo's fixed detractor sentences (``demo.VERBATIMS[2]``, used for the hostile-text rows) and
#: the planted theme each is about.
FIXED_SENTENCES = {"Parcel arrived four days late, again.": "late delivery",
                   "Billing error on my invoice for the third month.": "billing error",
                   "Waited 25 minutes on the phone.": "phone wait"}


def _numeric(t: pd.DataFrame) -> pd.DataFrame:
    t = t.set_index("theme").sort_index()
    return t.select_dtypes("number")


def test_demo_keeps_a_current_run_and_the_page_reads_it(con):
    run = theme_store.latest(con)
    assert run is not None and theme_store.is_current(con, run)
    page = views.voice.themes_data(con, Filters())
    assert page.kept and page.notes == tuple(run.discovery.warnings)
    fly = theme_cost.cost(con, Filters(), run.codebook)
    pd.testing.assert_frame_equal(_numeric(page.cost.table), _numeric(fly.table), check_dtype=False, check_like=True)
    seg = Filters(segments=("consumer",))
    kept = views.voice.themes_data(con, seg)
    pd.testing.assert_frame_equal(_numeric(kept.cost.table), _numeric(theme_cost.cost(con, seg, run.codebook).table),
                                  check_dtype=False, check_like=True)
    assert kept.verbatims < page.verbatims


def test_run_is_carried_over_then_stale(writable_db):
    with store.connect(str(writable_db), read_only=False) as con:
        with store.transaction(con):
            store.bump_version(con, ["kpis"])  # a write the themes do not depend on
        assert theme_store.status(con)["current"]
        with store.transaction(con):
            con.execute("UPDATE survey_responses SET verbatim = 'The parcel was late' WHERE response_id = "
                        "(SELECT min(response_id) FROM survey_responses WHERE verbatim IS NOT NULL)")
            store.bump_version(con, ["survey_responses"])
        assert not theme_store.status(con)["current"]
        page = views.voice.themes_data(con, Filters())
        assert not page.kept and "changed since themes were last discovered" in page.notes[0]
        assert page.verbatims > 0 and not page.cost.table.empty
        out = theme_store.keep(con, actor="t", sample=3000)
        assert theme_store.status(con)["current"] and out["tags"] > 0
        audit = con.execute("SELECT outcome FROM audit WHERE action = 'themes_keep'").fetchall()
        assert ("accepted",) in audit


def test_saving_a_codebook_reclassifies_and_only_analysts_discover(writable_db):
    cb = {"Late delivery": PLANTED_KEYWORDS["late delivery"]}
    with store.connect(str(writable_db), read_only=False) as con:
        with pytest.raises(themes.CodebookError, match="analyst only"):
            theme_store.keep(con, role="finance")
        v = theme_store.save_codebook(con, cb, actor="ana", role="analyst")
        run = theme_store.latest(con)
        assert theme_store.is_current(con, run) and run.codebook_version == v and list(run.codebook) == ["Late delivery"]
        page = views.voice.themes_data(con, Filters())
        assert page.kept and page.source.startswith(f"saved codebook v{v}")
        n = con.execute("SELECT count(*) FROM theme_tags WHERE theme = 'Late delivery'").fetchone()[0]
        truth = con.execute("SELECT count(*) FROM survey_responses WHERE theme IS NULL AND "
                            "regexp_matches(lower(verbatim), ?)", [themes.pattern(cb["Late delivery"])]).fetchone()[0]
        assert n == truth > 0
        drill = theme_cost.verbatims(con, Filters(), page.codebook, "Late delivery", kept=True, limit=50)
        assert len(drill) == 50 and drill["verbatim"].str.lower().str.contains("late|retard|laat|spät|verspätet").all()


def test_token_join_classifies_as_the_regular_expressions(con):
    cb = {**{k: tuple(v) for k, v in PLANTED_KEYWORDS.items()}, "phrases": ("te laat", "j'ai", "charged twice")}
    sql, params = themes.tagged_sql(Filters(), cb)
    got = set(con.execute(sql + " SELECT response_id, theme FROM tagged", params).fetchall())
    want = set()
    for name, kws in cb.items():
        rows = con.execute("SELECT response_id FROM survey_responses WHERE verbatim IS NOT NULL AND theme IS NULL "
                           "AND regexp_matches(lower(verbatim), ?)", [themes.pattern(kws)]).fetchall()
        want |= {(r[0], name) for r in rows}
    assert got == want and len({t for _, t in got}) == len(cb)


def test_cli_discover_and_status(writable_db, capsys):
    assert cli.main(["themes", "discover", "--db", str(writable_db), "--sample", "2000", "--themes", "4", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"sample": 2000' in out
    assert cli.main(["themes", "status", "--db", str(writable_db)]) == 0
    assert "current" in capsys.readouterr().out


# --------------------------------------------------------------------------- coverage


def _simulate(rng, customers: int = 600, seg_shift: float = 0.25):
    """Customers in two segments with a customer-level latent score (strong within-customer
    correlation), 1–6 answers each; a customer-level propensity to mention the theme; mentioning
    moves an answer down by ``DROP`` on the latent scale. Returns responses and the true gap."""
    seg = rng.integers(0, 2, customers)
    latent = rng.normal(0, 1.2, customers) + seg_shift * seg
    k = rng.integers(1, 7, customers)
    prop = rng.beta(1, 3, customers)
    cust = np.repeat(np.arange(customers), k)
    mention = rng.random(cust.size) < prop[cust]
    score = latent[cust] + rng.normal(0, 0.6, cust.size) - DROP * mention
    nps = np.clip(np.round(7 + 2 * score), 0, 10).astype(int)
    return pd.DataFrame({"response_id": [f"R{i}" for i in range(cust.size)], "customer_id": [f"C{c}" for c in cust],
                         "segment": np.where(seg[cust] == 1, "b", "a"), "nps": nps, "mention": mention})


DROP = 0.8


def _truth(rng) -> tuple[float, float]:
    """The population gap, crude and standardised to the answers' segment mix, from one large draw
    (the estimands: ratio of expected sums)."""
    big = _simulate(rng, 100_000)
    big["y"] = np.where(big["nps"] >= 9, 1, np.where(big["nps"] <= 6, -1, 0))
    crude = 100 * (big.loc[big["mention"], "y"].mean() - big.loc[~big["mention"], "y"].mean())
    by = big.groupby("segment")
    w = by.size() / len(big)
    d = by.apply(lambda g: g.loc[g["mention"], "y"].mean() - g.loc[~g["mention"], "y"].mean())
    return crude, 100 * float((w * d).sum())


def test_clustered_interval_covers_the_planted_gap():
    rng = np.random.default_rng(2026)
    crude_truth, adj_truth = _truth(np.random.default_rng(99))
    con = duckdb.connect()
    con.execute("CREATE TABLE customers (customer_id VARCHAR, segment VARCHAR, acquired_on DATE)")
    con.execute("CREATE TABLE customer_stubs (customer_id VARCHAR)")
    hits = {"crude": 0, "adjusted": 0, "naive": 0}
    reps = 400
    for _ in range(reps):
        df = _simulate(rng)
        cust = df.drop_duplicates("customer_id")[["customer_id", "segment"]]
        con.execute("DELETE FROM customers")
        con.register("cu", cust)
        con.execute("INSERT INTO customers SELECT customer_id, segment, NULL FROM cu")
        con.register("resp", df)
        prefix = """WITH v AS (SELECT response_id, customer_id, DATE '2025-01-01' AS responded_on, nps FROM resp),
tagged AS (SELECT response_id, 'T' AS theme FROM resp WHERE mention)"""
        sums = con.execute(prefix + theme_sums.NPS_SQL, {"stub_stratum": stubs.STUB_STRATUM}).df()
        t = theme_sums.nps_table(sums).loc["T"]
        hits["crude"] += t["nps_gap_ci_low"] <= crude_truth <= t["nps_gap_ci_high"]
        hits["adjusted"] += t["nps_gap_adjusted_ci_low"] <= adj_truth <= t["nps_gap_adjusted_ci_high"]
        # the independent-answers interval the clustered one replaces
        y = np.where(df["nps"] >= 9, 1, np.where(df["nps"] <= 6, -1, 0))
        a, b = y[df["mention"]], y[~df["mention"]]
        se = 100 * np.sqrt(a.var() / len(a) + b.var() / len(b))
        gap = 100 * (a.mean() - b.mean())
        hits["naive"] += gap - 1.96 * se <= crude_truth <= gap + 1.96 * se
    cover = {k: v / reps for k, v in hits.items()}
    assert abs(cover["crude"] - 0.95) <= 0.03, cover
    assert abs(cover["adjusted"] - 0.95) <= 0.03, cover
    assert cover["naive"] < cover["crude"] - 0.03, cover  # the correlation planted matters


# --------------------------------------------------------------------------- planted costs


def test_planted_theme_costs_are_recovered(con, demo_frames):
    """Per planted theme: the NPS gap and the points at stake computed from the planted labels
    (the truth of this data) lie in the intervals of the figures our classification gives."""
    r = theme_cost.cost(con, Filters(), PLANTED_KEYWORDS).table.set_index("theme")
    sr, vt = demo_frames["survey_responses"], demo_frames["voice_truth"]
    resp = sr[sr["verbatim"].notna()].merge(vt.rename(columns={"theme": "planted"}), on="response_id", how="left")
    # the few verbatims demo_voice does not write are the demo's fixed (hostile-text) sentences
    fixed = resp["planted"].isna()
    assert fixed.mean() < 0.15
    resp.loc[fixed, "planted"] = resp.loc[fixed, "verbatim"].map(FIXED_SENTENCES)
    resp = resp[resp["nps"].notna() & resp["customer_id"].notna()]
    y = np.where(resp["nps"] >= 9, 1, np.where(resp["nps"] <= 6, -1, 0))
    n_all = sr["nps"].notna().sum()
    for planted in demo_voice.THEMES:
        mention = ((resp["planted"] == planted) | (resp["theme2"] == planted)).to_numpy()
        gap = 100 * (y[mention].mean() - y[~mention].mean())
        row = r.loc[planted]
        assert row["nps_gap_ci_low"] <= gap <= row["nps_gap_ci_high"], (planted, gap, row["nps_gap"])
        stake = 100 * ((resp["nps"] <= 6).to_numpy() & mention).sum() / n_all
        assert row["nps_points_at_stake_ci_low"] <= stake <= row["nps_points_at_stake_ci_high"], (planted, stake)
        assert np.isfinite(row["nps_gap_adjusted"]) and row["nps_adjusted_by"]
        assert np.sign(row["nps_gap_adjusted"]) == np.sign(gap)


LEAN_FILTERS = {"all": Filters(), "segment": Filters(segments=("consumer",)), "region": Filters(regions=("north",)),
                "segment and region": Filters(segments=("smb",), regions=("north",)),
                "last 12 months": Filters(date_from=dt.date(2025, 7, 1)),
                "custom range": Filters(date_from=dt.date(2025, 10, 17),
                                        date_to=dt.date(2026, 3, 9)),
                "department scope": Filters(scope=Scope(role="department", departments=("billing",), user="b")),
                "department scope and region": Filters(regions=("north",), scope=Scope(
                    role="department", departments=("logistics",), user="d")),
                "two departments": Filters(scope=Scope(role="department", departments=("billing", "logistics"),
                                                       user="b")),
                "range, scope and segment": Filters(date_from=dt.date(2025, 10, 17),
                                                    segments=("smb",),
                                                    scope=Scope(role="department", departments=("billing",), user="b"))}


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    keys = [c for c in ("theme", "segment", "tenure", "month", "language", "sentiment_label", "by", "group", "emotion")
            if c in df.columns]
    df = df.drop(columns=["method"], errors="ignore")
    df = df.astype({c: float for c in df.columns if c not in keys and df[c].dtype != object})
    return df.sort_values(keys, na_position="first").reset_index(drop=True)


@pytest.mark.parametrize("name", list(LEAN_FILTERS))
def test_lean_tables_give_the_sums_of_the_kept_assignments(con, name):
    """The lean tables (counted cells for segment and region, per-customer rows otherwise) give the
    same sums as the kept assignments joined to the survey, so the same figures and intervals; the
    verbatim browse reads them too and shows the same rows."""
    f = LEAN_FILTERS[name]
    assert theme_store.lean(con)
    prefix, params = theme_store.kept_prefix(f)
    old = theme_sums.aggregate(con, prefix, params, f)
    old.update(theme_store.feelings(con, prefix, params))
    new = theme_lean.aggregate(con, f)
    new.update(theme_lean.feelings(con, f))
    assert theme_lean.extras_present(con)
    with pytest.MonkeyPatch.context() as mp:  # a run kept before the day cells: the lean tables' rows
        mp.setattr(theme_lean, "extras_present", lambda con: False)
        rows = theme_lean.aggregate(con, f)
    assert set(new) == set(old)
    for k in old:
        assert len(old[k]) > 0 or k == "churn" and f.date_from > dt.date(2025, 7, 1), k  # no year of follow-up
        pd.testing.assert_frame_equal(_sorted(old[k]), _sorted(new[k][old[k].columns]), check_dtype=False, rtol=1e-12)
        if k in rows:
            pd.testing.assert_frame_equal(_sorted(old[k]), _sorted(rows[k][old[k].columns]), check_dtype=False,
                                          rtol=1e-12)
    page = views.voice.page_data(con, f, limit=300)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(theme_store, "lean", lambda con: False)
        slow = views.voice.page_data(con, f, limit=300)
    assert page.total_matching == slow.total_matching > 0
    pd.testing.assert_frame_equal(page.verbatims, slow.verbatims, check_dtype=False)
    pd.testing.assert_frame_equal(page.themes, slow.themes, check_dtype=False)
    cb = theme_store.latest(con).codebook
    theme = next(iter(cb))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(theme_store, "lean", lambda con: False)
        slow_drill = theme_cost.verbatims(con, f, cb, theme, kept=True, limit=40)
    pd.testing.assert_frame_equal(theme_cost.verbatims(con, f, cb, theme, kept=True, limit=40), slow_drill,
                                  check_dtype=False)


def test_discovery_fits_read_only_and_refuses_when_the_data_moved(writable_db):
    """The fit needs no write lock (a read-only connection); the write refuses, audited, when the
    data version moved since the fit, and keeps the fit when it did not."""
    with store.connect(str(writable_db)) as ro:  # read-only: any write would fail
        fitted = theme_store.fit(ro, sample=2000, n_themes=4)
    assert fitted.discovery.n_sample == 2000 and len(fitted.annotations) == 2000
    with store.connect(str(writable_db), read_only=False) as con:
        runs = con.execute("SELECT count(*) FROM theme_runs").fetchone()[0]
        with store.transaction(con):
            store.bump_version(con, ["survey_responses"])  # someone imported meanwhile
        with pytest.raises(theme_store.StaleFit, match="data changed while themes were being fitted"):
            theme_store.write(con, fitted, actor="ana")
        assert con.execute("SELECT count(*) FROM theme_runs").fetchone()[0] == runs
        assert ("refused",) in con.execute("SELECT outcome FROM audit WHERE action = 'themes_keep'").fetchall()
        fitted = theme_store.fit(con, sample=2000, n_themes=4)
        out = theme_store.write(con, fitted, actor="ana")
        assert out["run_id"] == runs + 1 and theme_store.lean(con)
    out = theme_store.discover_file(str(writable_db), sample=2000, n_themes=4)
    with store.connect(str(writable_db)) as ro:
        assert theme_store.status(ro)["current"] and theme_store.latest(ro).run_id == out["run_id"]


def test_a_run_kept_before_the_day_cells_keeps_its_lean_path_and_gains_them_in_place(writable_db):
    """A run kept by a version without ``theme_day_cells`` is still lean (its readers count the rows);
    :func:`theme_lean.write_extras` adds the table to it without a new run, the same table the run
    would have written, and the readers' figures do not move."""
    f = LEAN_FILTERS["range, scope and segment"]
    with store.connect(str(writable_db), read_only=False) as con:
        run = theme_store.latest(con).run_id
        kept = con.execute(f"SELECT * FROM {theme_lean.DAY_CELLS}").df()
        with_cells = theme_lean.aggregate(con, f)
        con.execute(f"DROP TABLE {theme_lean.DAY_CELLS}")
        assert theme_store.lean(con) and not theme_lean.extras_present(con)
        without = theme_lean.aggregate(con, f)
        theme_lean.write_extras(con)
        assert theme_lean.extras_present(con) and theme_store.latest(con).run_id == run
        again = con.execute(f"SELECT * FROM {theme_lean.DAY_CELLS}").df()
    keys = list(kept.columns)
    pd.testing.assert_frame_equal(kept.sort_values(keys, na_position="first").reset_index(drop=True),
                                  again.sort_values(keys, na_position="first").reset_index(drop=True))
    assert len(kept) and kept["theme"].isna().any() and kept["theme"].notna().any()
    for k in ("mentions", "trend"):
        pd.testing.assert_frame_equal(_sorted(with_cells[k]), _sorted(without[k]), check_dtype=False)
