"""Stub customers in segment-adjusted money figures (issue 17 follow-up): they are their own
'unknown' stratum — never pooled with a real segment, even one called 'unknown' — and never
dropped without a word; every figure says how many stub customers it includes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cxmetrics import store
from cxmetrics.core.filters import Filters
from cxmetrics.metrics import alignment_money, clv, pnl, theme_cost, themes
from cxmetrics.registers import importer
from cxmetrics.store import stubs

LATE = {"Late delivery": ["late"]}
N_STUBS = 400
N_REAL_UNKNOWN = 60


@pytest.fixture(scope="module")
def stub_db(demo_db, tmp_path_factory) -> str:
    """The demo company plus 400 relationship answers from ids not in customers (stub customers, with
    share of wallet and verbatims), and 60 real contract customers whose segment is 'unknown' too."""
    import shutil

    folder = tmp_path_factory.mktemp("stubmix")
    db = folder / "stubs.duckdb"
    shutil.copy(demo_db, db)
    rng = np.random.default_rng(1)
    nps = rng.choice([2, 5, 7, 8, 9, 10], N_STUBS)
    pd.DataFrame({"response_id": [f"STUBR{i}" for i in range(N_STUBS)],
                  "customer_id": [f"STUB{i}" for i in range(N_STUBS)], "responded_on": "2025-03-01",
                  "survey": "relationship", "nps": nps,
                  "share_of_wallet_pct": np.clip(20 + 5 * nps + rng.normal(0, 5, N_STUBS), 0, 100).round(),
                  "verbatim": np.where(nps <= 6, "the parcel was late again", "friendly staff")}
                 ).to_csv(folder / "stub_answers.csv", index=False)
    rep = importer.import_file(folder / "stub_answers.csv", "survey_responses", db=str(db), actor="test")
    assert rep.stubs == N_STUBS
    with store.connect(str(db), read_only=False) as con:
        con.execute("UPDATE customers SET segment = 'unknown' WHERE customer_id IN (SELECT customer_id FROM customers "
                    "WHERE contract = 'contractual' AND customer_id NOT IN (SELECT customer_id FROM customer_stubs) "
                    "ORDER BY customer_id LIMIT ?)", [N_REAL_UNKNOWN])
    return str(db)


def test_the_stub_stratum_is_apart_from_a_real_unknown_segment(stub_db):
    with store.connect(stub_db) as con:
        got = dict(con.execute(f"SELECT {stubs.segment_stratum('c.segment', 'c.customer_id')} AS s, count(*) "
                               "FROM customers c WHERE c.segment = 'unknown' GROUP BY 1",
                               {"stub_stratum": stubs.STUB_STRATUM}).fetchall())
    assert got == {"unknown": N_REAL_UNKNOWN, stubs.STUB_STRATUM: N_STUBS}


def test_theme_cost_counts_stub_customers_as_their_own_segment(stub_db):
    with store.connect(stub_db) as con:
        r = theme_cost.cost(con, Filters(), LATE)
    assert r.extra["stub_customers"] == N_STUBS
    note = next(w for w in r.warnings if "stub customer" in w)
    assert f"{N_STUBS} stub customer(s)" in note and stubs.STUB_STRATUM in note and "left out" not in note
    row = r.table.set_index("theme").loc["Late delivery"]
    assert np.isfinite(row["nps_gap_adjusted"])


def test_theme_cost_adjustment_matches_a_standardisation_with_stubs_apart(stub_db):
    """The adjusted NPS gap equals direct standardisation over segments in which the stub
    customers are one stratum and the 60 real 'unknown' customers another (computed here from the
    raw answers)."""
    with store.connect(stub_db) as con:
        r = theme_cost.cost(con, Filters(), LATE)
        raw = con.execute("SELECT r.nps, c.segment, r.customer_id IN (SELECT customer_id FROM customer_stubs) AS stub, "
                          "r.theme IS NULL AND regexp_matches(lower(r.verbatim), ?) AS mention "
                          "FROM survey_responses r JOIN customers c USING (customer_id) "
                          "WHERE r.nps IS NOT NULL AND length(trim(r.verbatim)) > 0",
                          [themes.pattern(LATE["Late delivery"])]).df()
    raw["segment"] = np.where(raw["stub"], stubs.STUB_STRATUM, raw["segment"])
    raw["grp"] = np.where(raw["mention"], "mention", "other")
    g = raw.groupby(["grp", "segment"]).agg(n=("nps", "size"), p=("nps", lambda s: (s >= 9).sum()),
                                            d=("nps", lambda s: (s <= 6).sum())).reset_index()
    t = theme_cost._nps_by_segment(g, 0.05)
    want, _, _ = theme_cost._adjusted(t, "nps", "se")
    got = r.table.set_index("theme").loc["Late delivery", "nps_gap_adjusted"]
    assert got == pytest.approx(want, rel=1e-9)
    # pooling the stubs into the real 'unknown' segment (what a plain c.segment does) gives another figure
    pooled = raw.assign(segment=np.where(raw["stub"], "unknown", raw["segment"]))
    g2 = pooled.groupby(["grp", "segment"]).agg(n=("nps", "size"), p=("nps", lambda s: (s >= 9).sum()),
                                                d=("nps", lambda s: (s <= 6).sum())).reset_index()
    other, _, _ = theme_cost._adjusted(theme_cost._nps_by_segment(g2, 0.05), "nps", "se")
    assert abs(other - got) > 1e-6


def test_contract_money_figures_say_they_include_no_stub_customer(stub_db):
    with store.connect(stub_db) as con:
        c = clv.clv_by_group(con, Filters())
        strata = clv.clv_by_group(con, Filters(), by_segment=True, by_tenure=True)
        gap = alignment_money.detractor_gap(c, strata)
        inp, warnings, ctx = pnl.gather(con, Filters())
    value = clv.promoter_value(c, strata=strata)
    for est in (value, value.crude, gap, gap.crude):
        assert any(f"{N_STUBS} stub customer(s)" in w and "includes none of them" in w for w in est.warnings), est.warnings
    assert stubs.STUB_STRATUM not in set(strata.table["segment"])  # contract customers only
    sow = next(w for w in warnings if "share-of-wallet question" in w)
    assert f"{N_STUBS} stub customer(s)" in sow and "crude" in sow and "no weight" in sow
    assert any(f"{N_REAL_UNKNOWN} contract customer(s) have the real segment 'unknown'" in w for w in warnings)
