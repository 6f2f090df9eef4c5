"""Stub customers in segment-adjusted money figures (issue 17 follow-up): they are their own
'unknown' stratum — never pooled with a real segment, even one called 'unknown' — and never
dropped without a word; every figure says how many stub customers it includes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cxmetrics import store
from cxmetrics.core.filters import Filters
from cxmetrics.metrics import alignment_money, clv, pnl, theme_cost, theme_sums
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


def test_theme_cost_adjustment_keeps_the_stubs_a_stratum_apart(stub_db):
    """The sums the adjusted NPS gap standardises over hold the stub customers as a stratum of
    their own, apart from the real 'unknown' segment; pooling them (what a plain c.segment did)
    gives another adjusted figure, so the separation matters."""
    with store.connect(stub_db) as con:
        frames = theme_cost.frames_for(con, Filters(), LATE)
        r = theme_cost.cost(con, Filters(), LATE)
    tot = frames["nps"][frames["nps"]["theme"].isna()]
    by_seg = tot.groupby("segment")["m"].sum()
    assert by_seg[stubs.STUB_STRATUM] == N_STUBS
    assert "unknown" in by_seg.index and by_seg["unknown"] > 0
    got = r.table.set_index("theme").loc["Late delivery", "nps_gap_adjusted"]
    want = theme_sums.standardised(frames["nps"]).loc["Late delivery", "adj"]
    assert got == pytest.approx(want, rel=1e-9)
    pooled = frames["nps"].assign(segment=frames["nps"]["segment"].replace(stubs.STUB_STRATUM, "unknown"))
    keys = ["theme", "segment", "tenure"]
    pooled = pooled.groupby(keys, dropna=False).agg({c: ("max" if c == "max_k" else "sum")
                                                     for c in pooled.columns if c not in keys}).reset_index()
    other = theme_sums.standardised(pooled).loc["Late delivery", "adj"]
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
