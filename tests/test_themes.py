"""Themes: discovery recovers the demo's planted themes, the codebook classifies in SQL, is versioned,
audited and migrated; the cost of a theme has the planted sign; a French retailer-like survey works.

External numbers: none. Planted truths: cxmetrics.registers.demo_voice (themes by NPS group and touchpoint,
languages, the late-delivery surge in the last quarter)."""

from __future__ import annotations

import shutil

import duckdb
import numpy as np
import pandas as pd
import pytest

from cxmetrics import store, views
from cxmetrics.core.filters import Filters
from cxmetrics.metrics import text, theme_cost, theme_store, themes
from cxmetrics.registers import demo_voice

LATE = {"Late delivery": ["late", "retard", "laat", "verspätet", "spät"]}


@pytest.fixture(scope="module")
def discovered(demo_db):
    with store.connect(str(demo_db)) as con:
        d = themes.discover(con, Filters())
        sql, params = themes.tagged_sql(Filters(), d.codebook)
        tags = con.execute(sql + " SELECT response_id, theme FROM tagged", params).df()
    return d, tags


def test_languages_are_recovered(demo_frames):
    vt = demo_frames["voice_truth"]
    got = vt["response_id"].map(dict(zip(demo_frames["survey_responses"]["response_id"],
                                         demo_frames["survey_responses"]["verbatim"], strict=True))).map(text.detect_language)
    assert (got == vt["language"]).mean() > 0.99
    shares = vt["language"].value_counts(normalize=True)
    for lang, p in demo_voice.LANGUAGE_P.items():
        assert abs(shares[lang] - p) < 0.03


def test_discovery_recovers_planted_themes_per_language(discovered, demo_frames):
    """Every planted theme with at least 100 verbatims in a language is found: the discovered themes
    of that language that are at least 80% about it (the ones an analyst would merge) cover 90% of
    its verbatims, and together are at least 80% precise."""
    d, tags = discovered
    vt = demo_frames["voice_truth"]
    lang_of = dict(zip(d.themes["theme"], d.themes["language"], strict=True))
    checked = 0
    for planted in demo_voice.THEMES:
        for lang in text.LANGUAGES:
            truth = set(vt.loc[((vt["theme"] == planted) | (vt["theme2"] == planted)) & (vt["language"] == lang),
                               "response_id"])
            if len(truth) < 100:
                continue
            good = [name for name, g in tags.groupby("theme")
                    if lang_of.get(name) == lang and len(set(g["response_id"]) & truth) >= 0.8 * len(g)]
            cover = set(tags.loc[tags["theme"].isin(good), "response_id"])
            assert len(cover & truth) >= 0.9 * len(truth), (planted, lang, good)
            assert len(cover & truth) >= 0.8 * len(cover), (planted, lang, good)
            checked += 1
    assert checked >= 12


def test_discovery_is_deterministic_and_labelled(demo_db, discovered):
    d, _ = discovered
    with store.connect(str(demo_db)) as con:
        again = themes.discover(con, Filters())
    assert again.codebook == d.codebook
    assert d.themes["examples"].map(len).min() >= 1 and (d.themes["label"].str.count("·") == 2).all()


def test_planted_emotions_dominate_their_theme(demo_frames):
    vt = demo_frames["voice_truth"]
    single = vt[vt["theme2"].isna()].sample(3000, random_state=1)
    texts = single["response_id"].map(dict(zip(demo_frames["survey_responses"]["response_id"],
                                               demo_frames["survey_responses"]["verbatim"], strict=True)))
    a = text.annotate(texts)
    for planted, emotion in demo_voice.THEME_EMOTION.items():
        mine = a[single["theme"].to_numpy() == planted]
        assert (mine["emotion"] == emotion).mean() > 0.9, planted


def test_cost_of_late_delivery_has_the_planted_sign(con):
    r = theme_cost.cost(con, Filters(), LATE)
    row = r.table.set_index("theme").loc["Late delivery"]
    assert row["nps_gap_adjusted_ci_high"] < -30  # detractors' theme
    assert row["nps_gap_ci_high"] < -30
    assert 0 < row["nps_points_at_stake_ci_low"] < row["nps_points_at_stake"] < row["nps_points_at_stake_ci_high"]
    assert row["ci_low"] < row["estimate"] < row["ci_high"]
    n_all = con.execute("SELECT count(nps) FROM survey_responses").fetchone()[0]
    det = con.execute("SELECT count(*) FROM survey_responses WHERE nps <= 6 AND regexp_matches(lower(verbatim), ?)",
                      [themes.pattern(LATE["Late delivery"])]).fetchone()[0]
    assert row["nps_points_at_stake"] == pytest.approx(100 * det / n_all)


def test_trend_shows_the_planted_surge(con):
    t = theme_cost.trend(con, Filters(), LATE)
    t = t[t["theme"] == "Late delivery"].sort_values("month")
    last, before = t.tail(3), t.iloc[-9:-3]
    assert last["mentions"].sum() / last["verbatims"].sum() > 1.5 * before["mentions"].sum() / before["verbatims"].sum()
    assert (t["share_ci_low"] <= t["share"]).all() and (t["share"] <= t["share_ci_high"]).all()


def test_classification_is_whole_word_and_unicode():
    con = duckdb.connect()
    for s, kw, hit in [("chocolate cake", "late", False), ("late!", "late", True), ("qualité moyenne", "qualité", True),
                       ("qualités", "qualité", False), ("te   laat", "te laat", True), ("a+b (c)", "a+b", True)]:
        assert con.execute("SELECT regexp_matches(?, ?)", [s, themes.pattern([kw])]).fetchone()[0] is hit, (s, kw)


def test_codebook_edits():
    cb = {"a": ("late", "parcel"), "b": ("retard",), "c": ("price",)}
    assert themes.rename(cb, "c", "Price") == {"a": ("late", "parcel"), "b": ("retard",), "Price": ("price",)}
    assert themes.merge(cb, ["a", "b"], "Late")["Late"] == ("late", "parcel", "retard")
    s = themes.split(cb, "a", {"Parcel": ["parcel"]})
    assert s["a"] == ("late",) and s["Parcel"] == ("parcel",)
    with pytest.raises(themes.CodebookError, match="not keywords"):
        themes.split(cb, "a", {"x": ["nope"]})
    rows = pd.DataFrame({"theme": ["Late", "Late", None, "=cmd"], "keywords": ["late", "retard, laat", "x", "y"]})
    with pytest.raises(themes.CodebookError, match="may not start"):
        themes.from_rows(rows)
    assert themes.from_rows(rows.iloc[:3]) == {"Late": ("late", "retard", "laat")}


def test_codebook_is_versioned_audited_and_classifies(writable_db):
    with store.connect(str(writable_db), read_only=False) as con:
        before = store.data_version(con)
        with pytest.raises(themes.CodebookError, match="analyst only"):
            themes.save(con, LATE, actor="fin", role="finance")
        v1 = themes.save(con, LATE, actor="ana", role="analyst", note="first")
        v2 = themes.save(con, {**LATE, "Price": ["price", "prix"]}, actor="ana", role="analyst")
        assert (v1, v2) == (1, 2) and store.data_version(con) == before + 2
        assert themes.current(con) == (2, {"Late delivery": tuple(sorted(LATE["Late delivery"])), "Price": ("price", "prix")})
        assert themes.current(con, 1)[1] == {"Late delivery": tuple(sorted(LATE["Late delivery"]))}
        audit = con.execute("SELECT outcome FROM audit WHERE action = 'codebook_save' ORDER BY audit_id").fetchall()
        assert [a[0] for a in audit] == ["refused", "accepted", "accepted"]
        # an imported theme wins over the codebook
        rid = con.execute("SELECT response_id FROM survey_responses WHERE verbatim ILIKE '%parcel%late%' LIMIT 1").fetchone()[0]
        con.execute("UPDATE survey_responses SET theme = 'imported label' WHERE response_id = ?", [rid])
        sql, params = themes.tagged_sql(Filters(), themes.current(con)[1])
        got = con.execute(sql + " SELECT theme FROM tagged WHERE response_id = $rid", {**params, "rid": rid}).fetchall()
        assert got == [("imported label",)]
        several = con.execute(sql + " SELECT count(*) FROM (SELECT response_id FROM tagged GROUP BY 1 HAVING count(*) > 1)",
                              params).fetchone()[0]
        assert several > 0  # a verbatim can carry several themes


def test_schema_2_file_is_migrated(small_db, tmp_path):
    path = tmp_path / "v2.duckdb"
    shutil.copy(small_db, path)
    con = duckdb.connect(str(path))
    con.execute("DROP TABLE codebook")
    con.execute("DROP TABLE codebook_versions")
    con.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    n = con.execute("SELECT count(*) FROM survey_responses").fetchone()[0]
    con.close()
    with pytest.raises(store.StoreError, match="schema version 2.*migrate"):
        with store.connect(str(path)):
            pass
    with store.connect(str(path), read_only=False) as con:
        assert themes.current(con) == (None, {})
        assert con.execute("SELECT count(*) FROM survey_responses").fetchone()[0] == n
    with store.connect(str(path)) as con:
        assert themes.history(con).empty


FR = {  # a French retailer's survey: what shoppers write (planted themes), several wordings each
    "caisse": ["Trop d'attente à la caisse, une seule caisse ouverte", "Attente interminable en caisse ce samedi",
               "La file d'attente aux caisses était très longue"],
    "rayons": ["Rayons vides, produit en rupture de stock", "Encore des ruptures de stock dans les rayons frais",
               "Le rayon fruits et légumes était vide"],
    "personnel": ["Personnel souriant et aimable, merci", "Vendeuse très aimable et de bon conseil",
                  "Accueil chaleureux, personnel aimable"],
    "prix": ["Les prix ont beaucoup augmenté, trop cher", "Promotions intéressantes mais prix trop élevés",
             "Prix trop chers par rapport au magasin concurrent"],
}


@pytest.fixture
def french_store(tmp_path):
    rng = np.random.default_rng(11)
    path = tmp_path / "fr.duckdb"
    n = 400
    planted = rng.choice(list(FR), n)
    verb = [FR[t][rng.integers(0, 3)] + rng.choice(["", ".", " !", " ..."]) for t in planted]
    nps = np.where(np.isin(planted, ["caisse", "rayons", "prix"]), rng.integers(0, 7, n), rng.integers(8, 11, n))
    cust = pd.DataFrame({"customer_id": [f"C{i}" for i in range(n)], "segment": "magasin", "region": "idf",
                         "acquired_on": pd.Timestamp("2024-01-01"), "contract": "non_contractual"})
    resp = pd.DataFrame({"response_id": [f"R{i}" for i in range(n)], "customer_id": cust["customer_id"],
                         "responded_on": pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 365, n), "D"),
                         "survey": "transactional", "touchpoint": "magasin", "nps": nps, "verbatim": verb})
    with store.connect(str(path), read_only=False) as con:
        con.register("c", cust)
        con.execute("INSERT INTO customers (customer_id, segment, region, acquired_on, contract) SELECT * FROM c")
        con.register("r", resp)
        con.execute("INSERT INTO survey_responses (response_id, customer_id, responded_on, survey, touchpoint, nps, verbatim) "
                    "SELECT * FROM r")
    return path, pd.Series(planted, index=resp["response_id"])


def test_french_retailer_survey(french_store):
    path, planted = french_store
    with store.connect(str(path), read_only=False) as con:
        theme_store.keep(con, n_themes=4)  # `python -m cxmetrics themes discover --themes 4`
    with store.connect(str(path)) as con:
        d = themes.discover(con, Filters(), n_themes=4)
        assert list(d.languages["language"]) == ["fr"]
        sql, params = themes.tagged_sql(Filters(), d.codebook)
        tags = con.execute(sql + " SELECT response_id, theme FROM tagged", params).df()
        page = views.voice.themes_data(con, Filters())
        assert page.kept and page.codebook == d.codebook
    tags["planted"] = tags["response_id"].map(planted)
    purity = tags.groupby("theme")["planted"].agg(lambda s: s.value_counts(normalize=True).iloc[0])
    assert len(purity) == 4 and (purity > 0.9).all()
    assert set(tags.groupby("theme")["planted"].agg(lambda s: s.mode()[0])) == set(FR)
    assert tags["response_id"].nunique() >= 0.9 * len(planted)  # the codebook classifies nearly all
    assert page.cost.table["nps_gap"].notna().all() and page.sentiment["language"].tolist()[0] == "fr"


def test_theme_page_data_obeys_the_scope(con):
    from cxmetrics.core.filters import Scope

    nobody = views.voice.themes_data(con, Filters(scope=Scope(role="department", departments=(), user="x")))
    assert nobody.verbatims == 0 and nobody.cost.table.empty and nobody.trend.empty and nobody.sentiment.empty
    billing = views.voice.themes_data(con, Filters(scope=Scope(role="department", departments=("billing",), user="b")))
    everyone = views.voice.themes_data(con, Filters())
    n_billing = con.execute("SELECT count(*) FROM survey_responses WHERE department = 'billing' "
                            "AND verbatim IS NOT NULL").fetchone()[0]
    assert billing.verbatims == n_billing < everyone.verbatims
