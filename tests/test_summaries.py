"""The summary tables give exactly the figures of the raw queries, follow every write, and are
ignored when stale."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from types import SimpleNamespace

import duckdb
import pandas as pd
import pytest

from cxmetrics import store, views
from cxmetrics.core import roles
from cxmetrics.core.filters import Filters, Scope
from cxmetrics.core.results import Estimate
from cxmetrics.metrics import churn
from cxmetrics.registers import importer
from cxmetrics.store import histories, relations, summaries
from tests.test_scope import walk


def _landmark_rows(con) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary table, the same base computed from the raw tables), both sorted."""
    s = summaries.landmark(con)
    raw = summaries.landmark_query(s.landmark)
    got = con.execute(f"SELECT * FROM {summaries.LANDMARK_TABLE} ORDER BY customer_id").df()
    want = con.execute(raw.sql + " ORDER BY customer_id", raw.params).df()
    return got, want


def test_demo_build_leaves_a_current_summary_equal_to_the_raw_base(con):
    s = summaries.landmark(con)
    assert s is not None and summaries.current(con, summaries.LANDMARK_TABLE)
    assert s.landmark == churn.default_landmark(con, Filters())
    got, want = _landmark_rows(con)
    assert len(got) > 500
    pd.testing.assert_frame_equal(got, want)


def _figures(obj) -> list:
    out = []
    for item in walk(obj):
        if isinstance(item, pd.DataFrame):
            out.append(item.reset_index(drop=True))
        elif isinstance(item, Estimate):
            out.append((item.estimate, item.ci_low, item.ci_high, item.n))
    return out


def _same(a, b) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        if isinstance(x, pd.DataFrame):
            pd.testing.assert_frame_equal(x, y, check_exact=False, rtol=1e-9)
        else:
            for u, v in zip(x, y, strict=True):
                assert (u is None and v is None) or (isinstance(u, float) and math.isnan(u) and math.isnan(v)) \
                    or u == pytest.approx(v, rel=1e-9), (x, y)


PAGES = [p for p in roles.PAGES if p.title != "Data"]


LAST_12_MONTHS = Filters(date_from=dt.date(2025, 7, 1), date_to=dt.date(2026, 6, 30))
#: A range that starts and ends mid-month (whole-month cells cannot answer it alone).
CUSTOM_RANGE = Filters(date_from=dt.date(2025, 2, 17), date_to=dt.date(2026, 1, 9))
BILLING = Scope(role="department", departments=("billing",), user="b")
#: A range that ends after the data: the relations that take it inside are read from their stored tables.
TO_BEYOND_THE_DATA = Filters(date_from=dt.date(2025, 7, 1), date_to=dt.date(2031, 1, 1))


@pytest.mark.parametrize("filters", [Filters(), Filters(segments=("smb",)), Filters(regions=("north",)),
                                     Filters(scope=Scope(role="department", departments=("billing",), user="b")),
                                     LAST_12_MONTHS, Filters(date_from=dt.date(2026, 1, 1), date_to=dt.date(2026, 3, 31)),
                                     CUSTOM_RANGE, CUSTOM_RANGE.with_(scope=BILLING, segments=("smb",)),
                                     Filters(date_from=dt.date(2025, 11, 20)), TO_BEYOND_THE_DATA,
                                     Filters(date_from=dt.date(2000, 1, 1), date_to=dt.date(2026, 3, 31))],
                         ids=["all", "segment", "region", "billing scope", "last 12 months", "one quarter",
                              "custom range", "custom range, billing scope, segment", "from a day on",
                              "to beyond the data's end", "from before the data's start"])
@pytest.mark.parametrize("spec", PAGES, ids=[p.title for p in PAGES])
def test_every_page_shows_the_same_figures_with_and_without_the_summary(con, monkeypatch, spec, filters):
    fn = views.data_for(spec)
    fast = _figures(fn(con, filters))
    monkeypatch.setattr(summaries, "_state", lambda con: ({}, 0))  # no summary is current: raw queries
    slow = fn(con, filters)
    _same(fast, _figures(slow))


def test_a_date_bound_beyond_the_data_is_no_bound_for_the_relations_rows(con):
    lo, hi = con.execute("SELECT min(responded_on), max(responded_on) FROM survey_responses").fetchone()
    day = dt.timedelta(days=1)

    @store.memoized
    def stored(f: Filters) -> bool:
        return summaries.source(con, summaries.LATEST_TABLE, f).stored

    assert stored(Filters(date_to=hi)) and stored(Filters(date_to=hi + 400 * day))
    assert stored(Filters(date_from=lo)) and stored(Filters(date_from=lo - day, date_to=hi + day))
    assert not stored(Filters(date_to=hi - day)) and not stored(Filters(date_from=lo + day))
    # the key drivers pair CSAT with the latest NPS as of the range's end: for a range that ends with
    # the data, the stored one — kept beside each customer's per-day CSAT sums, which a range open at
    # its end reads (the page figures are compared with the raw ones above)
    from cxmetrics.metrics import drivers

    assert "summary_driver_pair_suffixes" in " ".join(q.sql for q in drivers.key_drivers(con, TO_BEYOND_THE_DATA).queries)


def _numbers(obj, out=None) -> list:
    """Every number in a JSON document, in order (the SQL text and its parameters left out)."""
    out = [] if out is None else out
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k not in ("queries", "sql", "params"):
                _numbers(v, out)
    elif isinstance(obj, list):
        for v in obj:
            _numbers(v, out)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        out.append(obj)
    return out


@pytest.mark.parametrize("command", ["nps --by segment", "csat --by touchpoint", "ces", "churn --by nps_group", "clv",
                                     "wallet", "complaints --by department", "impact", "alignment", "pnl"])
@pytest.mark.parametrize("window", [[], ["--from", "2025-07-01", "--to", "2026-06-30"]], ids=["all", "last 12 months"])
def test_every_cli_metric_prints_the_same_figures_with_and_without_the_summaries(demo_db, monkeypatch, capsys,
                                                                                 command, window):
    import json

    from cxmetrics import cli

    argv = ["metrics", *command.split(), "--json", "--db", str(demo_db), *window]
    assert cli.main(argv) == 0
    fast = _numbers(json.loads(capsys.readouterr().out))
    monkeypatch.setattr(summaries, "_state", lambda con: ({}, 0))  # no summary is current: raw queries
    assert cli.main(argv) == 0
    slow = _numbers(json.loads(capsys.readouterr().out))
    assert len(fast) == len(slow) and len(fast) > 3
    for a, b in zip(fast, slow, strict=True):
        assert (a != a and b != b) or a == pytest.approx(b, rel=1e-9, abs=1e-9), command


def test_queries_read_the_summary_only_when_it_holds_that_base(con):
    def stored(sql: str) -> bool:  # the stored base itself, not the landmark states it is answered from
        return re.search(r"\bsummary_landmark\b", sql) is not None

    L = churn.default_landmark(con, Filters())
    assert stored(churn._base(con, Filters(), L, "SELECT 1", "q").sql)
    assert stored(churn._base(con, Filters(regions=("north",)), L, "SELECT 1", "q").sql)
    other = churn._base(con, Filters(), L - dt.timedelta(days=1), "SELECT 1", "q").sql
    assert not stored(other) and "summary_landmark_states" in other
    assert not stored(churn._base(con, Filters(date_to=dt.date(2026, 1, 1)), L, "SELECT 1", "q").sql)


def test_an_import_rebuilds_the_summary_in_its_transaction(small_copy, tmp_path):
    with store.connect(str(small_copy)) as con:
        before, version = summaries.landmark(con), store.data_version(con)
        got, _ = _landmark_rows(con)
        alive = got[~got["event"]]["customer_id"].iloc[0]
    f = tmp_path / "churn.csv"
    f.write_text(f"customer_id,churned_on,reason\n{alive},{before.end.isoformat()},price\n")
    importer.import_file(f, "churn_events", db=small_copy)
    with store.connect(str(small_copy)) as con:
        assert store.data_version(con) == version + 1 and summaries.current(con, summaries.LANDMARK_TABLE)
        got, want = _landmark_rows(con)
    pd.testing.assert_frame_equal(got, want)
    assert bool(got.set_index("customer_id").loc[alive, "event"])


def test_a_stale_summary_is_ignored_and_rebuilt_on_the_next_write_open(small_copy):
    with store.connect(str(small_copy), read_only=False) as con:  # a writer that skips bump_version
        con.execute("UPDATE meta SET value = CAST(CAST(value AS BIGINT) + 1 AS VARCHAR) WHERE key = 'data_version'")
    with store.connect(str(small_copy)) as con:
        assert summaries.landmark(con) is None
        L = churn.default_landmark(con, Filters())
        assert "summary_landmark" not in churn._base(con, Filters(), L, "SELECT 1", "q").sql
    with store.connect(str(small_copy), read_only=False):
        pass  # opening read-write (as `init` does) rebuilds what is missing or stale
    with store.connect(str(small_copy)) as con:
        assert summaries.landmark(con) is not None and not summaries.missing(con)


def test_a_file_without_summaries_gets_them_when_opened_read_write(small_copy):
    raw = duckdb.connect(str(small_copy))
    raw.execute(f"DROP TABLE {summaries.LANDMARK_TABLE}")
    raw.execute("DELETE FROM meta WHERE key = 'summary_landmark'")
    raw.close()
    with store.connect(str(small_copy)) as con:
        assert summaries.landmark(con) is None
    with store.connect(str(small_copy), read_only=False):
        pass
    with store.connect(str(small_copy)) as con:
        got, want = _landmark_rows(con)
    pd.testing.assert_frame_equal(got, want)


def test_customer_summary_serves_only_the_views_it_holds(con):
    import datetime as dt

    from cxmetrics.metrics import drivers, wallet

    def sql(res):
        return " ".join(q.sql for q in res.queries)

    assert "FROM summary_wallet" in sql(wallet.by_group(con, Filters(segments=("smb",))))
    for f in (Filters(date_from=dt.date(2025, 1, 1)),
              Filters(scope=Scope(role="department", departments=("billing",), user="b"))):
        got = sql(wallet.by_group(con, f))  # those filters pick the responses: latest answers recomputed
        assert "summary_wallet" not in got
        if f.date_from:  # a range open at its end: the latest answers given in it, kept with the revenue
            assert "FROM summary_customer c WHERE c.nps_on >= $date_from" in got and "summary_latest" not in got
        else:  # … from the spells, beside the unfiltered revenue per customer, still kept
            assert "summary_latest" not in got and "JOIN summary_customer" in got
    # key drivers pair CSAT with the latest NPS as of the range's end: kept for an open end only
    # (beside each customer's per-day CSAT sums, which such a range reads)
    assert "summary_driver_pair_suffixes" in sql(drivers.key_drivers(con, Filters(date_from=dt.date(2025, 1, 1))))
    assert "summary_latest" not in sql(drivers.key_drivers(con, Filters(date_to=dt.date(2026, 1, 1))))


def test_the_complaint_and_clv_views_read_their_counted_cells_where_those_hold_the_answer(con, monkeypatch):
    """The Complaints page and the money pages read small counted relations, not the complaints,
    the responses or a table per customer, under every view those hold; elsewhere the same figures
    from their definitions (the page comparison above checks the page; here each reader, and the
    follow-up window at any length)."""
    from cxmetrics.metrics import clv, complaints, finance

    def sql(res) -> str:
        return " ".join(q.sql for q in res.queries)

    def ran(f: Filters, fn) -> dict[str, str]:
        """The SQL of each query ``fn`` runs, by name."""
        seen = {}
        real = store.run

        def spy(c, q, *a, **k):
            seen[q.name] = q.sql
            return real(c, q, *a, **k)
        monkeypatch.setattr(store, "run", spy)
        try:
            fn(con, f)
        finally:
            monkeypatch.setattr(store, "run", real)
        return seen

    def rate_sql(f: Filters, fn=complaints.rate_by_nps_group) -> str:
        return " ".join(ran(f, fn).values())

    billing = Filters(scope=BILLING)
    for f in (Filters(), Filters(segments=("smb",)), Filters(regions=("north",)), billing, LAST_12_MONTHS):
        held = f.scope.departments is None
        assert ("FROM summary_complaint_rate" in rate_sql(f)) == held  # the date range does not apply to it
        assert ("FROM summary_complaint_churn" in sql(complaints.churn_uplift(con, f))) == (held and f.date_from is None)
        assert "FROM summary_detractor_cells" in sql(complaints.detractor_followup(con, f))
        got = sql(clv.clv_by_group(con, f))  # one department at the default landmark: its kept cells
        assert ("FROM summary_clv_cells k" in got) == (held and f.date_from is None)
        assert ("FROM summary_clv_cells_by_department" in got) == (not held and f.date_from is None)
        assert ("FROM summary_nrr_cells" in rate_sql(f, finance.net_revenue_retention)) == held
        assert "FROM summary_complaints" in sql(complaints.resolution(con, f))
        assert "FROM complaints k" not in sql(complaints.resolution(con, f))
    # … not at another landmark (its rows were counted at the default one), nor for two departments
    other = churn.default_landmark(con, Filters()) - dt.timedelta(days=40)
    assert "summary_clv_cells_by_department" not in sql(clv.clv_by_group(con, billing, landmark=other))
    two = Filters(scope=Scope(role="department", departments=("billing", "support"), user="b"))
    assert "summary_clv_cells" not in sql(clv.clv_by_group(con, two))
    # the landmark's first relationship answer, from the counted responses
    first = ran(Filters(), churn.default_landmark)["first_relationship_response"]
    assert "FROM summary_responses" in first and "survey_responses" not in first
    fast = {"landmark": churn.default_landmark(con, Filters())}
    for f in (Filters(), Filters(segments=("smb",)), billing, CUSTOM_RANGE, two):
        fast[f] = (complaints.rate_by_nps_group(con, f), complaints.churn_uplift(con, f).table,
                   clv.clv_by_group(con, f, by_segment=True, by_tenure=True).table,
                   complaints.resolution(con, f).table, complaints.resolution(con, f, by="region").table,
                   *(complaints.detractor_followup(con, f, within_days=d).table for d in (0, 1, 7, 30, 400)))
    nrr = {f: (e.estimate, e.ci_low) for f in (Filters(), Filters(regions=("north",)), billing)
           for e in [finance.net_revenue_retention(con, f)]}
    clv_other = clv.clv_by_group(con, billing, landmark=other).table
    monkeypatch.setattr(summaries, "_state", lambda con: ({}, 0))  # no summary is current: raw queries
    assert churn.default_landmark(con, Filters()) == fast.pop("landmark")
    pd.testing.assert_frame_equal(clv_other, clv.clv_by_group(con, billing, landmark=other).table, check_exact=False,
                                  rtol=1e-9)
    for f, (e, lo) in nrr.items():  # and the net revenue retention
        got = finance.net_revenue_retention(con, f)
        assert (e, lo) == pytest.approx((got.estimate, got.ci_low), rel=1e-12)
    for f, got in fast.items():
        want = (complaints.rate_by_nps_group(con, f), complaints.churn_uplift(con, f).table,
                clv.clv_by_group(con, f, by_segment=True, by_tenure=True).table,
                complaints.resolution(con, f).table, complaints.resolution(con, f, by="region").table,
                *(complaints.detractor_followup(con, f, within_days=d).table for d in (0, 1, 7, 30, 400)))
        for a, b in zip(got, want, strict=True):
            assert len(a) or f.scope.departments  # relationship answers carry no department in the demo
            pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9)
    followed = [t.loc[t["followed"], "responses"].sum() for t in fast[Filters()][5:]]  # 0, 1, 7, 30, 400 days
    assert followed == sorted(followed) and 0 < followed[2] < followed[-1] < fast[Filters()][5]["responses"].sum()


@pytest.mark.parametrize("name", [r.name for r in relations.ALL])
def test_every_rebuilt_summary_equals_its_relation_computed_from_the_contract_tables(writable_db, name):
    """A tenth of every fact table is deleted behind the summaries' back, then the data version is
    bumped: each summary must have been rebuilt (it changed) and equal its definition."""
    with store.connect(str(writable_db), read_only=False) as con:
        before = con.execute(f"SELECT * FROM {name} ORDER BY ALL").df()
        with store.transaction(con):
            for table, key in (("survey_responses", "response_id"), ("complaints", "complaint_id"),
                               ("transactions", "transaction_id"), ("kpi_observations", "observation_id"),
                               ("churn_events", "customer_id")):
                con.execute(f"DELETE FROM {table} WHERE hash({key}) % 10 = 0")  # names from this test
            store.bump_version(con)
        info, _ = summaries._state(con)
        raw = summaries.relation_query(name, **summaries._built_args(info))  # every relation it reads computed too
        got = con.execute(f"SELECT * FROM {name} ORDER BY ALL").df()
        want = con.execute(f"SELECT * FROM ({raw.sql}) ORDER BY ALL", raw.params).df()
    assert len(got) > 0 and not got.equals(before)
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-9)


def _last_12_months(con) -> tuple[Filters, dict]:
    """The sidebar's "Last 12 months" in ``con``'s answers (as the app sets it) and the summaries' state."""
    from cxmetrics.core import periods

    lo, hi = con.execute("SELECT min(responded_on), max(responded_on) FROM survey_responses").fetchone()
    return Filters(date_from=periods.preset_range(periods.LAST_12_MONTHS, lo, hi)[0], date_to=hi), summaries._state(con)[0]


def _twins_equal_their_definitions_and_pages_read_them(db, monkeypatch, filters: Filters, info: dict) -> None:
    """Each twin equals its relation's definition at the second landmark (and end); every page under
    ``filters`` reads no landmark base from the states, the churn pages read the twin, and every
    page shows the figures of the raw path."""
    from cxmetrics.tools import bench

    ran = []
    real = store._execute

    def spy(c, q, fetch, copy):
        ran.append(q)
        return real(c, q, fetch, copy)

    with store.connect(str(db)) as con:
        for name in (n for n in summaries.DEPENDS if n in summaries.LANDMARK_FAMILY):
            raw = summaries.relation_query(name, **summaries._built_args(info, second=True))
            got = con.execute(f"SELECT * FROM {summaries.twin(name)} ORDER BY ALL").df()
            want = con.execute(f"SELECT * FROM ({raw.sql}) ORDER BY ALL", raw.params).df()
            assert len(got) > 0, name
            pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-9, obj=name)
        for spec in PAGES:
            fn = bench.page_function(spec)
            monkeypatch.setattr(store, "_execute", spy)
            ran.clear()
            fast = fn(con, filters)
            monkeypatch.undo()
            sql = " ".join(q.sql for q in ran)
            assert "summary_landmark_states" not in sql and "__summary_landmark_via_" not in sql, spec.title
            if spec.title in ("Executive summary", "Churn & retention", "Finance review", "Department"):
                assert "summary_landmark_l12" in sql, spec.title
            monkeypatch.setattr(summaries, "_state", lambda con: ({}, 0))  # no summary current: raw queries
            _same(_figures(fast), _figures(fn(con, filters)))
            monkeypatch.undo()
        # a range starting another day reads the landmark states, not the twins
        ran.clear()
        monkeypatch.setattr(store, "_execute", spy)
        churn.churn_by(con, filters.with_(date_from=filters.date_from + dt.timedelta(days=1)))
        monkeypatch.undo()
        assert "summary_landmark_states" in " ".join(q.sql for q in ran)
        assert "summary_landmark_l12" not in " ".join(q.sql for q in ran)


def test_the_landmark_family_is_kept_at_the_last_12_months_landmark_too_and_read_there(writable_db, monkeypatch):
    """The sidebar's "Last 12 months" takes its first day as the churn landmark (and its last as the
    follow-up's end when the data go on after the answers): the landmark base and every relation
    read from it are kept there too (twins), rebuilt with their relations, equal to their
    definitions at that landmark; every page under that range reads them (no landmark base
    computed from the landmark states), with the figures of the raw path. Another range reads the
    states; a store whose last-12-months landmark is the default one keeps no twins."""
    family = [n for n in summaries.DEPENDS if n in summaries.LANDMARK_FAMILY]
    assert family == [summaries.LANDMARK_TABLE, summaries.COMPLAINT_CHURN_TABLE, relations.LANDMARK_REVENUE.name,
                      relations.CLV_CELLS_BY_DEPARTMENT.name, summaries.CLV_CELLS_TABLE]
    vias, real_via = [], summaries._via

    def via_spy(con, rel, via, filters, args, bind=None):
        got = real_via(con, rel, via, filters, args, bind)
        vias.append((rel.name, via.reads, bind is not None and got is not None))
        return got

    with store.connect(str(writable_db), read_only=False) as con:
        with store.transaction(con):  # a tenth of every fact table gone: the twins rebuilt
            for table, key in (("survey_responses", "response_id"), ("complaints", "complaint_id"),
                               ("transactions", "transaction_id"), ("churn_events", "customer_id")):
                con.execute(f"DELETE FROM {table} WHERE hash({key}) % 10 = 3")  # names from this test
            monkeypatch.setattr(summaries, "_via", via_spy)
            store.bump_version(con)
            monkeypatch.undo()
        assert set(map(summaries.twin, family)) <= set(summaries.last_refresh(con)["rebuilt"])
        last12, info = _last_12_months(con)
    # the base and its revenue built from the landmark states and the customer summary
    assert {(n, r) for n, r, used in vias if used} == {
        (summaries.LANDMARK_TABLE, (relations.LANDMARK_STATES.name,)),
        (relations.LANDMARK_REVENUE.name, (summaries.CUSTOMER_TABLE,))}
    assert info["landmark2"] == last12.date_from.isoformat() != info["landmark"] and info["end2"] is None
    _twins_equal_their_definitions_and_pages_read_them(writable_db, monkeypatch, last12, info)

    # answers that stop a month before the transactions: the follow-up ends on the last answer
    with store.connect(str(writable_db), read_only=False) as con:
        with store.transaction(con):
            con.execute("DELETE FROM survey_responses WHERE responded_on > "
                        "(SELECT max(responded_on) - INTERVAL 30 DAY FROM survey_responses)")
            store.bump_version(con)
        last12, info = _last_12_months(con)
        assert last12.date_to < con.execute("SELECT max(occurred_on) FROM transactions").fetchone()[0]
    assert (info["landmark2"], info["end2"]) == (last12.date_from.isoformat(), last12.date_to.isoformat())
    _twins_equal_their_definitions_and_pages_read_them(writable_db, monkeypatch, last12, info)

    # data whose last 12 months start on the default landmark: no twins, the old ones dropped
    monkeypatch.setattr(summaries, "second_landmark", lambda con: (summaries.DEFAULT_LANDMARK[0](con), None))
    with store.connect(str(writable_db), read_only=False) as con:
        with store.transaction(con):
            store.bump_version(con)
        info, _ = summaries._state(con)
        assert info["landmark2"] is None and not any(n.endswith("_l12") for n in info["built"])
        assert not con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '%\\_l12' ESCAPE '\\'"
                               ).fetchone()[0]


def test_a_relation_depends_on_every_table_the_relations_it_reads_depend_on():
    """Otherwise a write could rebuild a relation and carry over one computed from it."""
    for rel in relations.ALL:
        for sub in rel.uses:
            assert relations.RELATIONS[sub].depends <= rel.depends, (rel.name, sub)
            assert relations.ALL.index(relations.RELATIONS[sub]) < relations.ALL.index(rel), (rel.name, sub)


def test_a_write_rebuilds_only_the_summaries_computed_from_what_it_changed(writable_db):
    with store.connect(str(writable_db), read_only=False) as con:
        con.execute("BEGIN TRANSACTION")
        v = store.data_version(con)
        # an assumption changes no summary table; the kept fits are measured again (the
        # initiatives' money reads the cost per escalation), each fit kept whose relation was carried
        assert summaries.refresh(con, v + 1, previous=v, changed={"assumptions"}) == [summaries.FITS_TABLE]
        assert summaries.last_refresh(con)["fits_kept"] == [n for n in summaries.FITS if n != "impacts"]
        # the landmark family's twins at the second landmark (the "Last 12 months" one) follow it
        family = [summaries.LANDMARK_TABLE, summaries.COMPLAINT_CHURN_TABLE, relations.LANDMARK_REVENUE.name,
                  relations.CLV_CELLS_BY_DEPARTMENT.name, summaries.CLV_CELLS_TABLE]
        twins = [summaries.twin(n) for n in family]
        assert summaries.refresh(con, v + 2, previous=v + 1, changed={"complaints"}) == [
            relations.LANDMARK_STATES.name, summaries.DEPARTMENTS_TABLE, relations.LIFECYCLE_BY_DEPARTMENT.name,
            relations.GAPS_BY_DEPARTMENT.name, relations.UPLIFT_BY_DEPARTMENT.name, summaries.CUSTOMER_TABLE,
            summaries.COMPLAINT_RATE_TABLE, summaries.NRR_CELLS_TABLE, *family, summaries.GAPS_TABLE,
            summaries.COMPLAINTS_TABLE, summaries.UPLIFT_TABLE, summaries.WALLET_TABLE, *twins, summaries.FITS_TABLE]
        assert summaries.refresh(con, v + 3, previous=v + 2, changed={"kpi_observations"}) == [
            summaries.KPI_TABLE, summaries.KPI_DAILY_TABLE, summaries.KPI_ALLTIME_TABLE, summaries.FITS_TABLE]
        assert set(twins) <= set(summaries.last_refresh(con)["carried"])
        assert summaries.refresh(con, v + 4, previous=v + 3, changed={"transactions"}) == [
            relations.REVENUE_MONTHS.name, summaries.CUSTOMER_TABLE, summaries.COMPLAINT_RATE_TABLE, summaries.NRR_CELLS_TABLE,
            *family, summaries.RFM_TABLE, relations.RFM_HOLDOUT.name, summaries.REVENUE_TABLE, summaries.WALLET_TABLE,
            *twins, summaries.FITS_TABLE]
        assert summaries.refresh(con, v + 5, previous=v + 1, changed={"assumptions"}) == [
            *list(summaries.DEPENDS)[:-1], *twins, summaries.FITS_TABLE]
        con.execute("ROLLBACK")


def test_an_assumption_edit_keeps_every_summary_current(writable_db):
    from cxmetrics.store import assumptions

    with store.connect(str(writable_db), read_only=False) as con:
        assumptions.set_value(con, "gross_margin", 0.41, actor="fin", role="finance")
    with store.connect(str(writable_db)) as con:
        assert not summaries.missing(con)
        assert all(summaries.current(con, n) for n in summaries.DEPENDS)


def test_key_drivers_agree_on_responses_without_a_touchpoint(small_copy, tmp_path, monkeypatch):
    from cxmetrics.metrics import drivers

    with store.connect(str(small_copy)) as con:
        who = con.execute("SELECT customer_id FROM customers LIMIT 1").fetchone()[0]
    f = tmp_path / "r.csv"  # transactional answers with no touchpoint count towards the detractor base only
    f.write_text("response_id,customer_id,responded_on,survey,nps,csat\n"
                 + "".join(f"T{i},{who},2025-0{1 + i % 9}-10,transactional,{i % 11},{1 + i % 5}\n" for i in range(40)))
    importer.import_file(f, "survey_responses", db=small_copy)
    with store.connect(str(small_copy)) as con:
        fast = drivers.key_drivers(con, Filters())
        assert "summary_driver_pairs" in fast.queries[0].sql
        monkeypatch.setattr(summaries, "_state", lambda con: ({}, 0))
        slow = drivers.key_drivers(con, Filters())
    pd.testing.assert_frame_equal(fast.table, slow.table, check_exact=False, rtol=1e-9)


def test_kept_model_fits_are_the_fits_of_the_unfiltered_view(con, monkeypatch):
    from cxmetrics.metrics import btyd

    cox = summaries.fit(con, "cox")
    assert cox and cox["rows"] and all(r["model"].startswith("Cox") for r in cox["rows"])
    L = churn.default_landmark(con, Filters())
    assert cox["rows"] == churn._cox(con, Filters(), L, 50_000, 0.05)
    kept = summaries.fit(con, "btyd")
    monkeypatch.setattr(summaries, "fit", lambda con, name: None)
    live = btyd.clv_non_contractual(con, Filters()).extra
    assert kept["bgnbd"][:4] == [live["bgnbd"][k] for k in ("r", "alpha", "a", "b")]
    assert kept["gamma_gamma"][:3] == [live["gamma_gamma"][k] for k in ("p", "q", "gamma")]


def test_the_btyd_fits_and_holdout_check_are_kept_for_each_segment_and_region(con, monkeypatch):
    """A view of one segment or one region (a date range besides: the RFM cells take none) reads
    its own kept BG/NBD, Gamma-Gamma and holdout fits and the fits' observed-information
    covariances, as the unfiltered view does — the figures and intervals fitting it live gives —
    and fits nothing on the page; any other narrowing fits live."""
    from cxmetrics.metrics import btyd, btyd_checks, btyd_intervals

    values = btyd.kept_values(con)
    assert len(values["segment"]) >= 2 and len(values["region"]) >= 2
    span = con.execute("SELECT min(responded_on), max(responded_on) FROM survey_responses").fetchone()
    views = [btyd.narrowed_to(d, v) for d, vs in values.items() for v in vs]
    views.append(views[0].with_(date_from=span[0], date_to=span[1]))

    def figures(f):
        res, check = btyd.clv_non_contractual(con, f), btyd_checks.holdout(con, f)
        page = btyd_checks.non_contractual_value(con, f)  # with intervals (the Hessians kept too)
        return (res.table, res.extra["bgnbd"], res.extra["gamma_gamma"], check.table, check.warnings, check.extra,
                [(e.name, e.estimate, e.ci_low, e.ci_high, e.se) for e in page.headline],
                page.extra["bgnbd_params"], page.extra["gamma_gamma_params"])

    real = btyd.fit_from_rfm, btyd_checks.holdout_parts, btyd_intervals.fit_intervals

    def refuse(*args, **kwargs):
        raise AssertionError("fitted on the page")

    monkeypatch.setattr(btyd, "fit_from_rfm", refuse)
    monkeypatch.setattr(btyd_checks, "holdout_parts", refuse)
    monkeypatch.setattr(btyd_intervals, "fit_intervals", refuse)
    kept = [figures(f) for f in [Filters(), *views]]
    for narrower in (Filters(segments=tuple(values["segment"][:2])),
                     Filters(segments=values["segment"][:1], regions=values["region"][:1])):
        with pytest.raises(AssertionError, match="fitted on the page"):
            figures(narrower)
    monkeypatch.setattr(btyd, "fit_from_rfm", real[0])
    monkeypatch.setattr(btyd_checks, "holdout_parts", real[1])
    monkeypatch.setattr(btyd_intervals, "fit_intervals", real[2])
    monkeypatch.setattr(summaries, "fit", lambda con, name: None)
    for f, k in zip([Filters(), *views], kept, strict=True):
        live = figures(f)
        assert not k[0].empty and not k[3].empty and len(k[6]) == 2, f.describe()
        for i in (0, 3, 7, 8):
            pd.testing.assert_frame_equal(k[i], live[i])
        assert k[1:3] == live[1:3] and k[4:7] == live[4:7], f.describe()


def test_a_store_with_only_customers_and_responses_imports_and_summarises(tmp_path, small_db):
    """The benchmark's import target: no transactions, assumptions or churn yet. Writes must not
    fail on summaries or fits that cannot be computed; those are simply not kept."""
    target = tmp_path / "t.duckdb"
    with store.connect(str(target), read_only=False) as con:
        con.execute("ATTACH ? AS src (READ_ONLY)", [str(small_db)])
        con.execute("INSERT INTO customers SELECT * FROM src.customers")
        con.execute("DETACH src")
    with store.connect(str(small_db)) as con:
        who = con.execute("SELECT customer_id FROM customers LIMIT 1").fetchone()[0]
    f = tmp_path / "r.csv"
    f.write_text("response_id,customer_id,responded_on,survey,nps\n"
                 + "".join(f"Z{i},{who},2025-01-{1 + i % 28:02d},relationship,{i % 11}\n" for i in range(60)))
    importer.import_file(f, "survey_responses", db=target)
    with store.connect(str(target)) as con:
        assert summaries.current(con, summaries.RESPONSES_TABLE) and summaries.current(con, summaries.FITS_TABLE)
        # more rows appended than the table held (a first import): rebuilt, not updated row by row
        assert summaries.last_refresh(con)["updated"] == [] and summaries.last_refresh(con)["appended"] == {}
        assert summaries.fit(con, "cox") is None and summaries.fit(con, "btyd") is None
        assert summaries.landmark(con) is None  # nothing to follow customers to yet: raw queries


def test_department_scopes_read_the_kept_customer_set_inside_a_page(con):
    from cxmetrics.core import filters as filters_mod

    seen = []

    @store.memoized
    def page(c, f):
        seen.append(filters_mod.CUSTOMER_DEPARTMENTS.get())
        return f.where(customer_id_col="x.customer_id")[0]

    f = Filters(scope=Scope(role="department", departments=("billing",), user="b"))
    assert summaries.DEPARTMENTS_TABLE in page(con, f) and seen == [summaries.DEPARTMENTS_TABLE]
    assert "survey_responses" in f.where(customer_id_col="x.customer_id")[0]  # outside a page: raw tables


def test_a_filtered_page_computes_its_landmark_base_once_and_drops_it(con):
    import datetime as dt

    f = Filters(date_from=dt.date(2025, 1, 1))
    page = views.churn.page_data(con, f)
    name = re.search(r"__summary_landmark_\w+", page.hazard.queries[0].sql)  # read from the page's own table …
    assert name is not None
    with pytest.raises(duckdb.CatalogException):  # … which is gone when the page call ends
        con.execute(f"SELECT count(*) FROM {name.group(0)}")
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM duckdb_views() WHERE temporary AND NOT internal").fetchone()[0] == 0
    raw = summaries.relation_query(summaries.LANDMARK_TABLE, landmark=dt.date(2025, 1, 1), end=None)
    assert page.hazard.extra["customers"] == con.execute(f"SELECT count(*) FROM ({raw.sql}) WHERE nps_group IS NOT NULL",
                                                         raw.params).fetchone()[0]


def test_a_changed_definition_makes_stored_summaries_stale_and_a_write_open_rebuilds_them(writable_db, monkeypatch):
    """The format version is a hash of the definitions: no hand-bumped number needed."""
    with store.connect(str(writable_db)) as con:
        assert summaries.current(con, summaries.RESPONSES_TABLE) and not summaries.missing(con)
    before = summaries.format_version()
    import dataclasses

    changed = dataclasses.replace(relations.RESPONSES, sql=relations.RESPONSES.sql + "\n-- changed definition")
    monkeypatch.setattr(relations, "ALL", tuple(changed if r is relations.RESPONSES else r for r in relations.ALL))
    assert summaries.format_version() != before
    with store.connect(str(writable_db)) as con:  # read-only: the stored tables are not used any more
        assert not summaries.current(con, summaries.RESPONSES_TABLE) and summaries.missing(con)
    with store.connect(str(writable_db), read_only=False):  # a read-write open rebuilds them
        pass
    with store.connect(str(writable_db)) as con:
        assert summaries.current(con, summaries.RESPONSES_TABLE) and not summaries.missing(con)


def test_the_fits_code_is_part_of_the_format(writable_db, tmp_path, monkeypatch):
    """The kept fits are computed by code, not by SQL the definitions show: the registered sources
    cover every library module a fit's code imports, and a change of their text changes the format,
    so a release that changes how a fit is computed fits it again at the next read-write open."""
    import sys
    import types
    from pathlib import Path

    files = {p.resolve() for p in summaries.fit_source_files()}
    todo = [sys.modules[fn.__module__] for fn in (*summaries.FITS.values(), *summaries.FIT_UPDATES.values())]
    seen: set[str] = set()
    while todo:  # each fit's module and, through its globals, every library module it imports
        mod = todo.pop()
        if mod.__name__ in seen:
            continue
        seen.add(mod.__name__)
        assert Path(mod.__file__).resolve() in files, f"{mod.__name__} computes a kept fit but is not in FIT_SOURCES"
        for value in vars(mod).values():
            name = value.__name__ if isinstance(value, types.ModuleType) else getattr(value, "__module__", None)
            if isinstance(name, str) and name.startswith("cxmetrics.") and name in sys.modules:
                todo.append(sys.modules[name])
    assert {"cxmetrics.metrics.survival", "cxmetrics.metrics.impact", "cxmetrics.metrics.clustered",
            "cxmetrics.core.results", "cxmetrics.store.summaries"} <= seen
    assert not any(n.startswith(("cxmetrics.views", "cxmetrics.registers", "cxmetrics.ui")) for n in seen)

    before = summaries.format_version()
    code = tmp_path / "fit_code.py"
    code.write_text("ALPHA = 0.05\n")
    monkeypatch.setattr(summaries, "FIT_SOURCES", [*summaries.FIT_SOURCES, code])
    with_code = summaries.format_version()
    assert with_code != before
    code.write_text("ALPHA = 0.10\n")  # the next release's text
    summaries._sources_hash.cache_clear()  # hashed once a process: a release is a new process
    monkeypatch.setattr(summaries, "_format_memo", None)
    assert summaries.format_version() != with_code
    with store.connect(str(writable_db)) as con:  # read-only: the fits are not kept any more
        assert not summaries.current(con, summaries.FITS_TABLE) and summaries.fit(con, "cox") is None
    with store.connect(str(writable_db), read_only=False):  # a read-write open fits them again
        pass
    with store.connect(str(writable_db)) as con:
        assert summaries.current(con, summaries.FITS_TABLE) and summaries.fit(con, "cox") is not None


def test_a_fit_that_fails_keeps_nothing_and_the_write_goes_on_unless_the_store_failed(writable_db, monkeypatch,
                                                                                         capsys):
    """A model the data cannot fit (an error in Python) is not kept, says why in the last refresh,
    and the write that triggered it goes on; an error of the store inside the writing transaction
    fails the whole write, which then changes nothing."""
    from cxmetrics.registers import initiatives

    rec = {"initiative_id": "INI-102", "name": "Probe", "track": "strategic", "department": "billing",
           "started_on": "2025-05-01", "cost": 1, "treated_segment": "all"}

    def singular(con, *old):
        raise ValueError("singular matrix")

    def broken(con):
        con.execute("SELECT * FROM no_such_table")

    # the impacts are measured again at every write to the initiatives (they read no one relation)
    with store.connect(str(writable_db), read_only=False) as con:
        with monkeypatch.context() as m:
            m.setitem(summaries.FITS, "impacts", singular)
            initiatives.save(con, rec, actor="ana", role="analyst")
        assert con.execute("SELECT count(*) FROM initiatives WHERE initiative_id = 'INI-102'").fetchone()[0] == 1
        assert summaries.last_refresh(con)["fit_errors"] == {"impacts": "ValueError: singular matrix"}
        assert summaries.current(con, summaries.FITS_TABLE) and summaries.fit_text(con, "impacts") is None
        assert summaries.fit_text(con, "cox") is not None and summaries.fit_text(con, "clusters") is not None
    from cxmetrics import cli

    assert cli.main(["status", "--db", str(writable_db), "--json"]) == 0  # … and `status` says so
    assert json.loads(capsys.readouterr().out)["fits_not_kept"] == {"impacts": "ValueError: singular matrix"}
    with store.connect(str(writable_db), read_only=False) as con:
        version = store.data_version(con)
        with monkeypatch.context() as m:
            m.setitem(summaries.FITS, "impacts", broken)
            with pytest.raises(duckdb.CatalogException, match="no_such_table"):
                initiatives.save(con, {**rec, "name": "Renamed"}, actor="ana", role="analyst")
        assert con.execute("SELECT name FROM initiatives WHERE initiative_id = 'INI-102'").fetchone()[0] == "Probe"
        assert store.data_version(con) == version and summaries.current(con, summaries.FITS_TABLE)
        initiatives.save(con, {**rec, "name": "Renamed"}, actor="ana", role="analyst")  # the fit works again
        assert summaries.last_refresh(con)["fit_errors"] == {} and summaries.fit_text(con, "impacts") is not None
    # an update of a kept fit after an append that fails keeps nothing and is not reported as updated
    f = writable_db.parent / "more.csv"
    with store.connect(str(writable_db)) as con:
        _append_csv(con, f, 50)
    with monkeypatch.context() as m:
        m.setitem(summaries.FIT_UPDATES, "clusters", singular)
        importer.import_file(f, "survey_responses", db=writable_db)
    with store.connect(str(writable_db)) as con:
        done = summaries.last_refresh(con)
        assert done["appended"] == {"survey_responses": 50} and "clusters" not in done["fits_updated"]
        assert done["fit_errors"] == {"clusters": "ValueError: singular matrix"}
        assert summaries.fit_text(con, "clusters") is None and summaries.fit_text(con, "cox") is not None


def test_the_answer_spells_are_stored_in_answer_date_order_and_the_order_is_part_of_the_format(con):
    """The answer spells are written in answer-date order (a date range reads the blocks it
    covers); changing a stored order changes the format, so stored tables are rebuilt in it."""
    from cxmetrics.store import histories

    assert histories.ANSWER_SPELLS.stored_order == "responded_on"
    col = con.execute("SELECT responded_on FROM summary_answer_spells ORDER BY rowid").df()["responded_on"]
    assert len(col) > 1000 and col.notna().all() and col.is_monotonic_increasing
    before = summaries.format_version()
    import dataclasses

    changed = dataclasses.replace(histories.ANSWER_SPELLS, stored_order="customer_id")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(relations, "ALL", tuple(changed if r is histories.ANSWER_SPELLS else r for r in relations.ALL))
        assert summaries.format_version() != before


# ----------------------------------------------------------------------------- incremental refresh


def _stored(con) -> dict[str, pd.DataFrame]:
    """Every stored summary table (the kept fits aside), rows sorted by every column, a list's
    elements as a tuple (compared element by element)."""
    out = {}
    twins = [summaries.twin(n) for n in summaries.DEPENDS if n in summaries.LANDMARK_FAMILY]
    for name in [rel.name for rel in relations.ALL] + [t for t in twins if summaries.current(con, t)]:
        df = con.execute(f"SELECT * FROM {name} ORDER BY ALL").df()  # names from relations.ALL
        for col in df.columns:
            if df[col].map(lambda v: hasattr(v, "tolist")).any():
                df[col] = df[col].map(lambda v: tuple(v.tolist()) if hasattr(v, "tolist") else v)
        out[name] = df
    return out


def _append_csv(con, path, n: int, *, new_ids: bool = True) -> None:
    """``n`` survey responses copied from stored ones (existing customers, shifted a few days on),
    with new response ids — or, with ``new_ids=False``, the stored ids (a re-import that replaces)."""
    df = con.execute(
        "SELECT * REPLACE (responded_on + (hash(response_id) % 40)::INT AS responded_on) FROM survey_responses "
        "WHERE customer_id IS NOT NULL ORDER BY hash(response_id) LIMIT $n", {"n": n}).df()
    if new_ids:
        df["response_id"] = [f"appended-{i}" for i in range(len(df))]
    df.to_csv(path, index=False)


def test_an_append_updates_summaries_in_place_to_what_a_rebuild_stores(small_copy, tmp_path):
    f = tmp_path / "more.csv"
    with store.connect(str(small_copy)) as con:
        _append_csv(con, f, 400)
    importer.import_file(f, "survey_responses", db=small_copy)
    with store.connect(str(small_copy)) as con:
        done = summaries.last_refresh(con)
        incremental = _stored(con)
    assert done["appended"] == {"survey_responses": 400}
    # the relations that take appended rows in place were updated, not rebuilt; those that do not
    # read the responses were carried over; every other one was rebuilt
    took = {r.name for r in relations.ALL if "survey_responses" in r.depends and r.grain != "table"
            and not r.args and (not r.uses or r.grain in ("customer_cells", "customer"))}
    assert took == {"summary_responses", "summary_kpi_linked", "summary_customer_departments",
                    "summary_answer_spells", *(r.name for r in histories.CLUSTER_SUFFIXES), "summary_landmark_states", "summary_lifecycle_by_department", "summary_latest", "summary_detractors",
                    "summary_driver_pairs_by_department", "summary_driver_pair_suffixes", "summary_driver_pairs",
                    "summary_customer"}
    assert set(done["updated"]) == took
    assert not took & set(done["rebuilt"])
    for rel in relations.ALL:
        assert rel.name in done["updated"] + done["rebuilt"] + done["carried"], rel.name  # none skipped
        assert (rel.name in done["carried"]) == ("survey_responses" not in rel.depends), rel.name
    assert done["fits_updated"] == ["clusters"]  # the cluster sums: the appended customers' replaced
    # each relation and fit that was worked on is timed (the bench reports the slowest), none carried
    fits_done = {f"fit {n}" for n in summaries.FITS if n not in done["fits_kept"]}
    assert set(done["seconds"]) == set(done["updated"]) | set(done["rebuilt"]) - {summaries.FITS_TABLE} | fits_done
    assert all(v >= 0 for v in done["seconds"].values())
    with store.connect(str(small_copy)) as con:
        fits = _fits(con)
    with store.connect(str(small_copy), read_only=False) as con, store.transaction(con):
        store.bump_version(con)  # everything from scratch
        assert summaries.last_refresh(con)["updated"] == [] and summaries.last_refresh(con)["fits_updated"] == []
        rebuilt, refitted = _stored(con), _fits(con)
    for name, want in rebuilt.items():
        got = incremental[name]
        assert len(got) == len(want), name
        pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12, obj=name)
    _same_fits(fits, refitted)


def test_appended_transactions_update_each_customers_revenue_by_month_as_a_rebuild_does(small_copy, tmp_path):
    """Transactions appended before a customer's first month, after their last, inside a month
    without one and inside one with one (and a new customer's first) are taken in place by the
    customers' revenue by month (those customers recomputed): the stored rows equal a rebuild's."""
    f = tmp_path / "more_tx.csv"
    with store.connect(str(small_copy)) as con:
        cust = con.execute("SELECT customer_id FROM summary_revenue_months WHERE list_count(revs) < len(revs) "
                           "ORDER BY customer_id LIMIT 1").fetchone()[0]
        m0, m1, revs = con.execute("SELECT m0, m1, revs FROM summary_revenue_months WHERE customer_id = $c",
                                   {"c": cust}).fetchone()
        gap = m0 + revs.index(None)
        stub = con.execute("SELECT customer_id FROM customers WHERE customer_id NOT IN "
                           "(SELECT customer_id FROM transactions) ORDER BY 1 LIMIT 1").fetchone()
        def day(m: int, d: int = 15) -> dt.date:
            return dt.date((m - 1) // 12, (m - 1) % 12 + 1, d)
        rows = [(cust, day(m0 - 3), 12.5), (cust, day(m1 + 1, 2), 40.0), (cust, day(gap, 28), 7.25),
                (cust, day(m0, 1), -3.0)]
        rows += [(c, d + dt.timedelta(days=9), a) for c, d, a in con.execute(
            "SELECT customer_id, occurred_on, amount FROM transactions ORDER BY transaction_id LIMIT 40").fetchall()]
        if stub:
            rows.append((stub[0], day(m1), 99.0))
    pd.DataFrame([{"transaction_id": f"APP-{i}", "customer_id": c, "occurred_on": d, "amount": a}
                  for i, (c, d, a) in enumerate(rows)]).to_csv(f, index=False)
    importer.import_file(f, "transactions", db=small_copy)
    with store.connect(str(small_copy)) as con:
        done = summaries.last_refresh(con)
        incremental = _stored(con)[relations.REVENUE_MONTHS.name]
        after = con.execute("SELECT m0, m1, revs FROM summary_revenue_months WHERE customer_id = $c", {"c": cust}).fetchone()
    assert done["appended"] == {"transactions": len(rows)}
    assert relations.REVENUE_MONTHS.name in done["updated"]
    # the customer summary takes appended answers in place, not transactions (they can move the
    # last transaction date, and with it every customer's 12-month window)
    assert relations.CUSTOMER.name in done["rebuilt"]
    in_gap = sum(a for c, d, a in rows if c == cust and d.year * 12 + d.month == gap)  # the month had none
    assert (after[0], after[1]) == (m0 - 3, m1 + 1) and after[2][3 + gap - m0] == pytest.approx(in_gap)
    with store.connect(str(small_copy), read_only=False) as con, store.transaction(con):
        store.bump_version(con)  # everything from scratch
        rebuilt = _stored(con)[relations.REVENUE_MONTHS.name]
    assert len(incremental) == len(rebuilt)
    pd.testing.assert_frame_equal(incremental, rebuilt, check_exact=False, rtol=1e-12)


def test_appended_answers_end_the_stored_answer_spells_as_a_rebuild_does(small_copy, tmp_path):
    """The answer spells take appended answers in time linear in them (histories._append_spells):
    answers planted before, between, on and after a customer's stored ones, stating a share of
    wallet or a WAR rank or neither, in the same or another department, and a customer's first
    relationship answer, and answers on a day that already has one with a lower response id; the
    stored spells must equal a rebuild's."""
    with store.connect(str(small_copy)) as con:
        cid = con.execute("SELECT customer_id FROM survey_responses WHERE survey = 'relationship' AND nps IS NOT NULL "
                          "GROUP BY 1 HAVING count(DISTINCT responded_on) >= 3 ORDER BY 1 LIMIT 1").fetchone()[0]
        days = [r[0] for r in con.execute("SELECT DISTINCT responded_on FROM survey_responses WHERE customer_id = $c "
                                          "AND survey = 'relationship' AND nps IS NOT NULL ORDER BY 1", {"c": cid}).fetchall()]
        dept = con.execute("SELECT any_value(department) FROM survey_responses WHERE customer_id = $c AND "
                           "survey = 'relationship'", {"c": cid}).fetchone()[0]
        fresh = con.execute("SELECT customer_id FROM customers c WHERE NOT EXISTS (SELECT 1 FROM survey_responses r "
                            "WHERE r.customer_id = c.customer_id AND r.survey = 'relationship') ORDER BY 1 LIMIT 1"
                            ).fetchone()[0]
    one = dt.timedelta(days=1)
    rows = [  # (customer, day, department, stated share of wallet, brand rank, brands used)
        (cid, days[0] - one, dept, None, None, None),  # before every stored answer
        (cid, days[0] + (days[1] - days[0]) / 2 if days[1] - days[0] > one else days[0], dept, None, None, None),
        (cid, days[1], "other dept", 40.0, None, None),  # on a stored day, another department
        (cid, days[1] + one, None, None, 2, 3),  # no department, a WAR rank only
        (cid, days[-1] + 10 * one, dept, 25.0, 1, 2),  # after them all, stating both
        (cid, days[-1] + 10 * one, dept, None, None, None),  # the same day twice
        (fresh, days[-1], dept, None, None, None),  # a customer's first relationship answers, stating
        (fresh, days[-1] + 5 * one, dept, None, None, None),  # nothing: their spells keep no next share
    ]
    later = [(fresh, days[-1] + 20 * one, dept, 10.0, 3, 4)]  # then a later import: it ends only those
    # then answers on days that already have one, with lower response ids ("0tie-…" sorts before the
    # stored "R…" and the appended "spells-…"): of a day's answers the lowest id is the latest, so
    # each ends the same-day answers it outranks on that very day
    ties = [(cid, days[1], dept, 30.0, None, None), (cid, days[-1] + 10 * one, dept, None, 2, 5),
            (cid, days[0], "other dept", None, None, None)]

    def append(rows, name):
        df = pd.DataFrame([{"response_id": f"{name}-{i}", "customer_id": c, "responded_on": d, "survey": "relationship",
                            "department": dp, "nps": 3 + i, "share_of_wallet_pct": sw, "brand_rank": br,
                            "brands_used": bu} for i, (c, d, dp, sw, br, bu) in enumerate(rows)])
        df.to_csv(tmp_path / f"{name}.csv", index=False)
        importer.import_file(tmp_path / f"{name}.csv", "survey_responses", db=small_copy)

    append(rows, "spells")
    append(later, "later")
    append(ties, "0tie")
    with store.connect(str(small_copy)) as con:
        assert "summary_answer_spells" in summaries.last_refresh(con)["updated"]
        got = _stored(con)["summary_answer_spells"]
        # relationship answers only: the kept cluster sums of the other kinds are kept as they were
        assert summaries.last_refresh(con)["fits_updated"] == ["clusters"]
        fits = _fits(con)
    with store.connect(str(small_copy), read_only=False) as con, store.transaction(con):
        store.bump_version(con)
        want = _stored(con)["summary_answer_spells"]
        _same_fits(fits, _fits(con))
        answers = con.execute("SELECT count(*) FROM survey_responses WHERE customer_id = $c AND survey = "
                              "'relationship' AND nps IS NOT NULL", {"c": cid}).fetchone()[0]
    assert (got["customer_id"] == cid).sum() == answers  # every answer of the customer, once
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12)


def test_a_failed_statement_in_the_spells_append_raises_its_own_error(writable_db):
    """The answer spells' append runs inside the write: a statement that fails aborts it, and the
    error the importer reports is that statement's (a clean-up in a ``finally`` would replace it with
    DuckDB's "transaction aborted")."""
    with duckdb.connect(str(writable_db)) as con:
        con.execute("BEGIN")
        con.execute("CREATE TEMP TABLE __rows AS SELECT * FROM survey_responses "
                    "WHERE survey = 'relationship' AND nps IS NOT NULL LIMIT 5")
        con.execute("ALTER TABLE summary_answer_spells RENAME COLUMN next_war TO renamed")
        with pytest.raises(duckdb.BinderException, match="next_war"):
            histories._append_spells(con, "__rows")
        con.execute("ROLLBACK")
        assert "next_war" in {r[0] for r in con.execute("DESCRIBE summary_answer_spells").fetchall()}


def test_appended_answers_update_the_kept_per_day_cluster_sums_as_a_rebuild_stores_them(small_copy, tmp_path):
    """The cluster sums kept per customer and answer day take appended answers in place (the
    customers who answered recomputed, anonymous answers added as rows): answers before every stored day of a
    customer at a touchpoint, between two, on a stored day, after them all (twice on one day), at
    another touchpoint and in another department, anonymous ones, a customer's first, and a
    relationship answer's CSAT; then a later import. Every kind's table must equal a rebuild's."""
    with store.connect(str(small_copy)) as con:
        cid, tp, dept = con.execute(
            "SELECT customer_id, touchpoint, any_value(department) FROM survey_responses WHERE survey = 'transactional' "
            "AND nps IS NOT NULL AND csat IS NOT NULL AND department IS NOT NULL GROUP BY 1, 2 "
            "HAVING count(DISTINCT responded_on) >= 3 ORDER BY 1, 2 LIMIT 1").fetchone()
        days = [r[0] for r in con.execute("SELECT DISTINCT responded_on FROM survey_responses WHERE customer_id = $c "
                                          "AND touchpoint = $t ORDER BY 1", {"c": cid, "t": tp}).fetchall()]
        other_tp, other_dept = con.execute(
            "SELECT (SELECT min(touchpoint) FROM survey_responses WHERE touchpoint <> $t), "
            "(SELECT min(department) FROM survey_responses WHERE department <> $d)", {"t": tp, "d": dept}).fetchone()
        fresh = con.execute("SELECT customer_id FROM customers c WHERE NOT EXISTS (SELECT 1 FROM survey_responses r "
                            "WHERE r.customer_id = c.customer_id) ORDER BY 1 LIMIT 1").fetchone()[0]
    one = dt.timedelta(days=1)
    mid = days[0] + (days[1] - days[0]) / 2 if days[1] - days[0] > one else days[0]
    rows = [  # (customer, day, survey, touchpoint, department)
        (cid, days[0] - one, "transactional", tp, dept),  # before every stored answer
        (cid, mid, "transactional", tp, dept),  # between two (or on the first)
        (cid, days[1], "transactional", tp, dept),  # on a stored day
        (cid, days[-1] + 10 * one, "transactional", tp, dept),  # after them all …
        (cid, days[-1] + 10 * one, "transactional", tp, other_dept),  # … twice, in another department
        (cid, days[1], "transactional", other_tp, dept),  # another touchpoint
        (None, days[1], "transactional", tp, dept),  # anonymous answers
        (None, days[1], "transactional", tp, None),
        (fresh, days[-1], "transactional", tp, dept),  # a customer's first answers
        (fresh, days[-1] + 5 * one, "transactional", other_tp, None),
        (cid, days[-1] + 3 * one, "relationship", None, dept),  # a relationship answer's CSAT
    ]
    later = [(fresh, days[-1] + 2 * one, "transactional", tp, dept), (cid, days[0], "transactional", tp, dept)]

    def append(rows, name):
        df = pd.DataFrame([{"response_id": f"{name}-{i}", "customer_id": c, "responded_on": d, "survey": sv,
                            "touchpoint": t, "department": dp, "nps": i % 11, "csat": 1 + i % 5, "ces": 1 + i % 7}
                           for i, (c, d, sv, t, dp) in enumerate(rows)])
        df.to_csv(tmp_path / f"{name}.csv", index=False)
        importer.import_file(tmp_path / f"{name}.csv", "survey_responses", db=small_copy)

    names = [r.name for r in histories.CLUSTER_SUFFIXES]
    append(rows, "suffixes")
    append(later, "later")
    with store.connect(str(small_copy)) as con:
        assert set(names) <= set(summaries.last_refresh(con)["updated"])
        got = {n: df for n, df in _stored(con).items() if n in names}
    with store.connect(str(small_copy), read_only=False) as con, store.transaction(con):
        store.bump_version(con)
        want = {n: df for n, df in _stored(con).items() if n in names}
    for name in names:
        assert len(got[name]) == len(want[name]), name
        pd.testing.assert_frame_equal(got[name], want[name], check_exact=False, rtol=1e-12, obj=name)
    assert (got["summary_suffixes_nps_touchpoint"]["anonymous"].notna()).sum() >= 2


def _fits(con) -> dict:
    return dict(con.execute("SELECT name, result FROM summary_fits").fetchall())


def _close(a, b) -> bool:
    """The same JSON values, floats to 1e-9 (relative)."""
    if isinstance(a, float) or isinstance(b, float):
        return a == pytest.approx(b, rel=1e-9, nan_ok=True)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _same_fits(got: dict, want: dict) -> None:
    """The kept fits are the same: the cluster sums (updated in place: float sums added in another
    order) to 1e-12, group by group, their counts exactly; the initiatives' impacts to 1e-9 (their
    monthly series are DuckDB float sums, whose last bits depend on the order threads add them);
    every other fit as the same JSON."""
    assert set(got) == set(want)
    loose = {"clusters", "impacts"}
    assert {k: v for k, v in got.items() if k not in loose} == {k: v for k, v in want.items() if k not in loose}
    assert _close(json.loads(got.get("impacts", "null")), json.loads(want.get("impacts", "null")))
    g, w = json.loads(got["clusters"]), json.loads(want["clusters"])
    assert set(g) == set(w)
    for key in w:
        a, b = (pd.DataFrame(d["rows"], columns=d["columns"]) for d in (g[key], w[key]))
        keys = [c for c in ("grp", "segment", "region", "department", "quarter") if c in a.columns]
        a, b = (df.sort_values(keys, na_position="first").reset_index(drop=True) for df in (a, b))
        assert len(a) == len(b) and (a["m"] == b["m"]).all() and (a["max_k"] == b["max_k"]).all(), key
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12, check_dtype=False, obj=key)


@pytest.mark.parametrize("early", [0, 1])
def test_responses_appended_after_the_landmark_keep_the_landmark_base_and_its_fit(small_copy, tmp_path, early):
    """Responses dated on or after the landmark cannot change the landmark base (it reads answers
    before the landmark only), so it, its revenue and the Cox fit on it are kept, not rebuilt; the
    BTYD fit reads no response. One appended response before the landmark rebuilds the base and
    refits Cox. Either way every stored table and fit equals a full rebuild's."""
    f = tmp_path / "late.csv"
    with store.connect(str(small_copy)) as con:
        L = summaries.landmark(con).landmark
        df = con.execute(
            "SELECT * FROM survey_responses WHERE customer_id IS NOT NULL AND responded_on >= $L "
            "ORDER BY hash(response_id) LIMIT 300", {"L": L}).df()
        if early:
            df.loc[0, "responded_on"] = pd.Timestamp(L - dt.timedelta(days=1))
        df["response_id"] = [f"late-{i}" for i in range(len(df))]
        df.to_csv(f, index=False)
        fits_before = _fits(con)
    importer.import_file(f, "survey_responses", db=small_copy)
    kept = {summaries.LANDMARK_TABLE, relations.LANDMARK_REVENUE.name}
    with store.connect(str(small_copy)) as con:
        done = summaries.last_refresh(con)
        assert summaries.landmark(con).landmark == L and summaries.current(con, summaries.FITS_TABLE)
        stored, fits = _stored(con), _fits(con)
        assert json.loads(fits["cox"])["rows"] == churn._cox(con, Filters(), L, 50_000, 0.05)
    assert done["appended"] == {"survey_responses": 300}
    if early:
        assert not kept & set(done["carried"]) and kept <= set(done["rebuilt"])
        assert done["fits_kept"] == ["btyd", "btyd_holdout"]  # Cox fitted again (on this small store it may come out the same)
    else:
        assert kept <= set(done["carried"])
        # the clustered SEs' sums read every response: updated; the initiatives' impacts (their
        # monthly series read every answer) and the what-moved cells measured again; the others
        # kept as they were
        assert done["fits_kept"] == ["cox", "btyd", "btyd_holdout"] and done["fits_updated"] == ["clusters"]
        measured = ("clusters", "impacts", "moved")
        assert {k: v for k, v in fits.items() if k not in measured} == {
            k: v for k, v in fits_before.items() if k not in measured}
        assert fits["moved"] != fits_before["moved"]
    with store.connect(str(small_copy), read_only=False) as con, store.transaction(con):
        store.bump_version(con)  # everything from scratch, every fit fitted again
        assert summaries.last_refresh(con)["fits_kept"] == []
        rebuilt, refitted = _stored(con), _fits(con)
    _same_fits(fits, refitted)
    for name, want in rebuilt.items():
        pd.testing.assert_frame_equal(stored[name], want, check_exact=False, rtol=1e-12, obj=name)


def test_customer_cells_relations_read_only_per_customer_relations():
    """A ``"customer_cells"`` relation is updated from the appended customers' rows with its used
    relations expanded and every table narrowed to those customers: that holds only when what it
    uses is itself per customer (``"customer"`` grain, no arguments) and its SQL reads no total
    over all customers (no look-up of a whole table such as a maximum date)."""
    cells = [r for r in relations.ALL if r.grain == "customer_cells"]
    assert [r.name for r in cells] == ["summary_lifecycle_by_department", "summary_driver_pairs_by_department",
                                       "summary_driver_pairs"]
    for rel in cells:
        for sub in rel.uses:
            assert relations.RELATIONS[sub].grain == "customer" and not relations.RELATIONS[sub].args, (rel.name, sub)
        for r in (rel, *(relations.RELATIONS[s] for s in rel.uses)):
            assert not _WHOLE_TABLE.search(r.sql), r.name
    # the check sees the relations that do read a whole table's total
    assert _WHOLE_TABLE.search(relations.CUSTOMER.sql) and _WHOLE_TABLE.search(relations.LANDMARK.sql)


_WHOLE_TABLE = re.compile(r"\(\s*SELECT\s+(?:max|min)\s*\(", re.I)  # a scalar look-up such as (SELECT max(d) FROM t)


def test_an_append_of_new_groups_and_anonymous_answers_updates_pairs_and_cluster_sums_as_a_rebuild(
        small_copy, tmp_path):
    """The in-place update where it is most likely to go wrong: appended answers that open a new
    quarter (before the data's) and a new touchpoint (new cells and groups), anonymous answers (each
    its own cluster, no segment), a customer's first answers, answers dated before others they gave."""
    f = tmp_path / "new.csv"
    with store.connect(str(small_copy)) as con:
        first, last = con.execute("SELECT min(responded_on), max(responded_on) FROM survey_responses").fetchone()
        fresh = con.execute("SELECT customer_id FROM customers WHERE customer_id NOT IN "
                            "(SELECT customer_id FROM survey_responses WHERE customer_id IS NOT NULL) LIMIT 1"
                            ).fetchone()
        who = con.execute("SELECT customer_id FROM survey_responses WHERE customer_id IS NOT NULL "
                          "AND survey = 'transactional' GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 3").fetchall()
    people = [w[0] for w in who] + ([fresh[0]] if fresh else [])
    later = first - dt.timedelta(days=100)  # a new quarter (before the data: later ones would be in the future)
    lines = ["response_id,customer_id,responded_on,survey,touchpoint,nps,csat,ces"]
    for i in range(30):
        cid = "" if i % 5 == 0 else people[i % len(people)]
        day = later if i % 3 == 0 else last - dt.timedelta(days=40 + i)
        survey, tp = ("relationship", "") if i % 4 == 0 else ("transactional", "kiosk" if i % 2 else "web")
        lines.append(f"new-{i},{cid},{day},{survey},{tp},{i % 11},{1 + i % 5},{1 + i % 7}")
    f.write_text("\n".join(lines) + "\n")
    importer.import_file(f, "survey_responses", db=small_copy)
    with store.connect(str(small_copy)) as con:
        done = summaries.last_refresh(con)
        stored, fits = _stored(con), _fits(con)
    assert done["appended"] == {"survey_responses": 30}
    assert "summary_driver_pairs" in done["updated"] and done["fits_updated"] == ["clusters"]
    clusters = json.loads(fits["clusters"])
    assert any(r[0] == "kiosk" for r in clusters["nps|touchpoint|transactional"]["rows"])
    assert any(r[0].startswith(later.replace(month=3 * ((later.month - 1) // 3) + 1, day=1).isoformat())
               for r in clusters["nps|quarter|relationship"]["rows"])
    with store.connect(str(small_copy), read_only=False) as con, store.transaction(con):
        store.bump_version(con)
        rebuilt, refitted = _stored(con), _fits(con)
    _same_fits(fits, refitted)
    for name, want in rebuilt.items():
        pd.testing.assert_frame_equal(stored[name], want, check_exact=False, rtol=1e-12, obj=name)


def test_an_import_that_replaces_rows_rebuilds(small_copy, tmp_path):
    f = tmp_path / "again.csv"
    with store.connect(str(small_copy)) as con:
        _append_csv(con, f, 50, new_ids=False)  # same ids, other dates: 50 responses replaced
    importer.import_file(f, "survey_responses", db=small_copy)
    with store.connect(str(small_copy)) as con:
        done = summaries.last_refresh(con)
        got = _stored(con)
        want = {r.name: summaries.relation_query(r.name) for r in relations.ALL if r.name == "summary_responses"}
        raw = con.execute(want["summary_responses"].sql).df()
    assert done["appended"] == {} and done["updated"] == []
    assert "summary_responses" in done["rebuilt"] and "summary_latest" in done["rebuilt"]
    raw = raw.sort_values(list(raw.columns), na_position="first").reset_index(drop=True)
    pd.testing.assert_frame_equal(got["summary_responses"], raw, check_exact=False, rtol=1e-12)


def test_a_date_range_reads_the_answer_histories_not_the_raw_responses(con, monkeypatch):
    """The fast path under a date range is not the raw one (the page comparisons would pass either way)."""
    latest = summaries.source(con, summaries.LATEST_TABLE, CUSTOM_RANGE).sql
    assert "summary_answer_spells" in latest and "survey_responses" not in latest
    scoped = summaries.source(con, summaries.LATEST_TABLE, CUSTOM_RANGE.with_(scope=BILLING)).sql
    assert "dept_next_any" in scoped and "survey_responses" not in scoped
    base = summaries.source(con, summaries.LANDMARK_TABLE, CUSTOM_RANGE, landmark=CUSTOM_RANGE.date_from, end=None).sql
    assert "summary_landmark_states" in base and "survey_responses r" not in base and "complaints k" not in base
    revenue = summaries.source(con, relations.LANDMARK_REVENUE.name, CUSTOM_RANGE, landmark=CUSTOM_RANGE.date_from,
                               end=None).sql
    assert "summary_customer" in revenue and "t.occurred_on" not in revenue
    monkeypatch.setattr(summaries, "_state", lambda con: ({}, 0))  # no summary current: the relation's own SQL
    assert "summary_answer_spells" not in summaries.source(con, summaries.LATEST_TABLE, CUSTOM_RANGE).sql


def test_the_key_drivers_read_the_latest_answers_as_of_the_ranges_end_inside_their_query(con):
    """The pairs' latest answers (as of the range's end, every answer before it) have one reader: they
    are a subquery of the key drivers' query, not a page table holding every column for millions of
    customers; so are the range's own latest answers in the share of wallet's query, where nothing
    else on its page reads them (a page with two readers makes one table: the next tests)."""
    from cxmetrics.metrics import drivers, wallet

    def tables() -> set[str]:
        return {r[0] for r in con.execute("SHOW TABLES").fetchall() if r[0].startswith("__summary_latest")}

    @store.memoized
    def page(con, f):
        before = tables()
        kd = drivers.key_drivers(con, f)
        after_drivers = tables()
        wallet.by_group(con, f)
        return kd, before, after_drivers, tables()

    kd, before, after_drivers, after_wallet = page(con, CUSTOM_RANGE)
    assert before == after_drivers  # the key drivers left no table of latest answers
    # on a page they read the pairs' cells (by touchpoint, segment and region) from a table made
    # once from the sums kept per customer and answer day, each customer's latest NPS as of the
    # range's end inside it (alone, the same query is a subquery of theirs)
    assert "__summary_driver_pairs_via_" in kd.queries[0].sql
    sql = drivers.key_drivers(con, CUSTOM_RANGE).queries[0].sql
    assert "summary_answer_spells" in sql and "summary_driver_pair_suffixes" in sql and "survey_responses r" not in sql
    assert "next_any > $date_to" in sql and "s.responded_on >= $date_from" not in sql  # as of the end: no start
    assert after_wallet == after_drivers  # the wallet, their one reader here, read them inline too
    monkeypatch = pytest.MonkeyPatch()
    try:  # the same figures as the relation's own SQL over the raw responses
        monkeypatch.setattr(summaries, "_state", lambda con: ({}, 0))
        raw = drivers.key_drivers(con, CUSTOM_RANGE)
    finally:
        monkeypatch.undo()
    assert "summary_answer_spells" not in raw.queries[0].sql
    pd.testing.assert_frame_equal(kd.table, raw.table, check_exact=False, rtol=1e-9)


def _queries(obj):
    """Every store.Query inside a page's data (results, estimates' containers, dicts, lists)."""
    return walk(obj, kinds=(store.Query,))


def test_a_pages_sql_shows_the_tables_the_page_made_and_runs_as_shown_on_a_fresh_connection(con, demo_db):
    """A page computes some relations once into tables its queries share (the landmark base at a
    range's start, the latest answers as of its end, the key drivers' pairs, …). A figure's SQL that
    reads one names it; "How was this computed?" must then show how the table was made, so that a
    reviewer can run the statements shown, in their order, on a fresh connection and get the page's
    rows. Alone (the CLI, a notebook) the same query reads its relations inline: nothing to show."""
    from cxmetrics.metrics import wallet
    from cxmetrics.tools import bench

    temp = re.compile(r"\b(__summary\w+|cx_\w+_[0-9a-f]{16})\b")

    @store.memoized
    def page(con, f, fn):
        every = list(_queries(fn(con, f)))
        for q in every:  # every table of the page a figure's SQL names is shown with it
            assert set(temp.findall(q.sql)) <= {n for n, _ in q.made}, q.name
        qs = [q for q in every if q.made]
        return qs, [con.execute(q.sql, q.params).df() for q in qs]  # while the page's tables exist

    def latest_then_wallet(con, f):  # a table made from another: the wallet's cells from the latest answers
        summaries.source(con, summaries.LATEST_TABLE, f)
        return wallet.by_group(con, f)

    shown, chains = set(), set()
    for fn in [bench.page_function(spec) for spec in roles.PAGES] + [latest_then_wallet]:
        qs, want = page(con, CUSTOM_RANGE, fn)
        for q, rows in zip(qs, want, strict=True):
            text = q.describe()
            with store.connect(str(demo_db)) as fresh:
                for name, made in q.made:
                    assert f"CREATE TEMP TABLE {name} AS\n{made.sql.strip()};" in text
                    fresh.execute(f"CREATE TEMP TABLE {name} AS {made.sql}", made.params)
                    shown.add(re.sub(r"[0-9a-f]{16}$", "", name))
                chains.add(tuple(re.sub(r"[0-9a-f]{16}$", "", name) for name, _ in q.made))
                assert text.endswith(f"-- {q.name}\n{q.sql.strip()}\n-- parameters: {dict(q.params)}")
                got = fresh.execute(q.sql, q.params).df()
            key = list(rows.columns)
            pd.testing.assert_frame_equal(got.sort_values(key).reset_index(drop=True),
                                          rows.sort_values(key).reset_index(drop=True), check_exact=False, rtol=1e-9)
    # among them the relations read through their histories under a closed range, and a table made
    # from another, shown after it (the wallet's cells read the page's latest answers)
    assert {"__summary_landmark_via_", "__summary_driver_pairs_via_", "__summary_latest_via_"} <= shown
    assert ("__summary_latest_via_", "__summary_wallet_") in chains
    alone = churn.churn_by(con, CUSTOM_RANGE)
    assert alone.queries and all(not q.made and "CREATE TEMP TABLE" not in q.describe() for q in alone.queries)


def test_a_reader_that_takes_its_relation_inline_reads_the_pages_table_once_one_is_made(con):
    """The response rates count the range's latest answers inside their own query on a page where
    nothing else reads them, and from the page's table where another query made it first; the
    complaint churn cells take the landmark base inline likewise. Same figures every way."""
    from cxmetrics.metrics import complaints, representativeness, wallet

    def latest_read(res) -> str:
        q = next(q for q in res.queries if q.name == "response_rates")
        return "table" if "__summary_latest_via_" in q.sql else "inline" if "summary_answer_spells" in q.sql else "?"

    @store.memoized
    def alone(con, f):
        return representativeness.response_rates(con, f), complaints.churn_uplift(con, f)

    @store.memoized
    def after_others(con, f):
        summaries.source(con, summaries.LATEST_TABLE, f)  # a page with two readers makes the table first
        wallet.by_group(con, f)
        churn.churn_by(con, f)  # the landmark base's page table
        return representativeness.response_rates(con, f), complaints.churn_uplift(con, f)

    (r1, c1), (r2, c2) = alone(con, CUSTOM_RANGE), after_others(con, CUSTOM_RANGE)
    assert (latest_read(r1), latest_read(r2)) == ("inline", "table")
    assert "summary_landmark_states" in c1.queries[0].sql and "__summary_landmark_via_" not in c1.queries[0].sql
    assert "__summary_landmark_via_" in c2.queries[0].sql
    assert not c1.table.empty
    for a, b in ((r1, r2), (c1, c2)):
        pd.testing.assert_frame_equal(a.table, b.table, check_exact=False, rtol=1e-12)


def test_a_page_that_reads_the_latest_answers_twice_makes_one_table_of_them(con, monkeypatch):
    """The Finance review reads the range's latest answers in the bridge's share of wallet and in the
    response rates: one page table that both read. The Customer value page, whose share of wallet is
    their one reader, reads them inside the wallet's query (no table, no copy of every customer's row)."""
    from cxmetrics.views import finance, value

    made = []
    real = store.temp_table

    def spy(c, prefix, q):
        made.append((prefix, q.sql))
        return real(c, prefix, q)

    monkeypatch.setattr(store, "temp_table", spy)
    fin = finance.page_data(con, CUSTOM_RANGE)
    assert len({sql for prefix, sql in made if prefix == "__summary_latest_via_"}) == 1
    wallet_sql = next(sql for prefix, sql in made if prefix == "__summary_wallet_")
    assert "__summary_latest_via_" in wallet_sql and "summary_answer_spells" not in wallet_sql
    rates = next(q.sql for q in fin.representativeness.queries if q.name == "response_rates")
    assert "__summary_latest_via_" in rates
    made.clear()
    value.page_data(con, CUSTOM_RANGE)
    assert not any(prefix == "__summary_latest_via_" for prefix, _ in made)
    assert "summary_answer_spells" in next(sql for prefix, sql in made if prefix == "__summary_wallet_")


def test_of_answers_given_on_the_same_day_the_lowest_response_id_is_the_latest_on_every_path(small_copy):
    """A customer's latest relationship answer, when they gave several on their latest day, is the one
    with the lowest response id (as the churn landmark base picks), field by field: the stored latest
    answers, the customer summary, and the latest answers read from the answer spells under closed
    ranges and one or two departments' scope all agree with that rule, whatever order the rows are
    stored in. Planted: same-day answers with lower ids stored after the originals (another score,
    another or no stated share of wallet, another WAR rank, some in another department), and
    same-day answers with higher ids; the old pick (the latest day, any answer of it) can return
    either."""
    with store.connect(str(small_copy), read_only=False) as con, store.transaction(con):
        con.execute("UPDATE survey_responses SET department = CASE hash(response_id) % 3 WHEN 0 THEN 'billing' "
                    "WHEN 1 THEN 'support' END WHERE survey = 'relationship'")
        rel = "survey = 'relationship' AND nps IS NOT NULL"
        con.execute(f"""INSERT INTO survey_responses SELECT * REPLACE (
            '0' || response_id AS response_id, (nps + 5) % 11 AS nps,
            CASE WHEN hash(response_id) % 2 = 0 THEN NULL ELSE (coalesce(share_of_wallet_pct, 0) + 7) % 100 END
                AS share_of_wallet_pct,
            CASE WHEN brand_rank IS NOT NULL THEN greatest(brands_used - brand_rank + 1, 1) END AS brand_rank,
            CASE WHEN hash(response_id) % 4 = 1 THEN coalesce(CASE department WHEN 'billing' THEN 'support' END,
                 'billing') ELSE department END AS department)
            FROM survey_responses WHERE {rel} AND hash(response_id) % 3 <> 2""")
        con.execute(f"""INSERT INTO survey_responses SELECT * REPLACE (response_id || '~' AS response_id,
            (nps + 3) % 11 AS nps, 55.0 AS share_of_wallet_pct)
            FROM survey_responses WHERE {rel} AND hash(response_id) % 5 = 0 AND response_id NOT LIKE '0%'""")
        store.bump_version(con)
    with store.connect(str(small_copy)) as con:
        answers = con.execute(f"SELECT r.customer_id, r.responded_on, r.response_id, r.nps, r.share_of_wallet_pct "
                              f"FROM survey_responses r JOIN customers USING (customer_id) WHERE r.{rel}").df()
        ties = answers.groupby(["customer_id", "responded_on"])["nps"].nunique()
        assert (ties > 1).sum() > 100
        order = answers.sort_values(["customer_id", "responded_on", "response_id"], ascending=[True, False, True])
        want_nps = order.groupby("customer_id")["nps"].first()
        want_stated = order.dropna(subset=["share_of_wallet_pct"]).groupby("customer_id")["share_of_wallet_pct"].first()
        for table in ("summary_latest", "summary_customer"):
            got = con.execute(f"SELECT customer_id, nps, stated FROM {table} WHERE nps IS NOT NULL").df()  # names above
            got = got.set_index("customer_id")
            assert len(got) == len(want_nps)
            assert (got["nps"] == want_nps.reindex(got.index)).all(), table
            pd.testing.assert_series_equal(got["stated"].dropna().sort_index(), want_stated.sort_index(),
                                           check_names=False, check_dtype=False, obj=table)
        # the spells list their rows' columns by name (the lake's Spark has no SELECT * EXCLUDE)
        spells = [r[0] for r in con.execute("DESCRIBE summary_answer_spells").fetchall()]
        raw_rows = con.execute(f"SELECT * FROM ({histories._SPELL_ROWS.format(responses='survey_responses')}) LIMIT 0")
        assert [d[0] for d in raw_rows.description] == list(histories._SPELL_COLUMNS)
        assert spells == [*histories._SPELL_COLUMNS, *(col for col, _, _ in histories._NEXT)]
        days = sorted({d.date() for d in pd.to_datetime(answers["responded_on"])})
        two = Scope(role="department", departments=("billing", "support"), user="b")
        cases = [Filters(date_to=days[len(days) // 2]), Filters(date_from=days[len(days) // 4], date_to=days[-3]),
                 Filters(scope=BILLING), Filters(scope=two), Filters(date_to=days[-2], scope=two),
                 Filters(date_from=days[len(days) // 3], date_to=days[-5], scope=BILLING)]
        for f in cases:
            fast = summaries.source(con, summaries.LATEST_TABLE, f)
            assert not fast.stored and "summary_answer_spells" in fast.sql, f
            raw = summaries.relation_query(summaries.LATEST_TABLE, f)
            got = con.execute(f"SELECT * FROM {fast.sql} x ORDER BY ALL", fast.params).df()
            want = con.execute(f"SELECT * FROM ({raw.sql}) x ORDER BY ALL", raw.params).df()
            assert len(want) > 20
            pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-9, obj=repr(f))


def test_the_latest_answer_from_histories_equals_its_definition_under_any_range_and_scope(small_copy):
    """With relationship answers attributed to departments (the demo leaves them without one), the
    latest answer, the wallet cells and the landmark base read from the histories equal their
    definitions over the raw responses, for ranges and scopes that cut customers' answer runs; a
    range open at its end in an unrestricted scope reads the stored latest answers instead of the
    spells (each field's latest value kept only when given in the range), and the wallet cells read
    them from the customer summary alone."""
    with store.connect(str(small_copy), read_only=False) as con, store.transaction(con):
        con.execute("UPDATE survey_responses SET department = CASE hash(response_id) % 3 WHEN 0 THEN 'billing' "
                    "WHEN 1 THEN 'support' END WHERE survey = 'relationship'")
        con.execute("UPDATE survey_responses SET share_of_wallet_pct = NULL WHERE hash(response_id) % 4 = 0")
        store.bump_version(con)
    with store.connect(str(small_copy)) as con:
        first, last = con.execute("SELECT min(responded_on), max(responded_on) FROM survey_responses").fetchone()
        mid = first + (last - first) / 2
        latest_answer = con.execute("SELECT max(responded_on) FROM survey_responses WHERE survey = 'relationship'"
                                    ).fetchone()[0]
        # a start on the day many customers gave their latest answer (the range's first day counts)
        boundary = con.execute("SELECT mode(d) FROM (SELECT max(responded_on) AS d FROM survey_responses "
                               "WHERE survey = 'relationship' AND nps IS NOT NULL GROUP BY customer_id "
                               "HAVING max(responded_on) > $m)", {"m": mid}).fetchone()[0]
        cases = [Filters(date_from=mid, date_to=last - dt.timedelta(days=17)), Filters(date_to=mid),
                 Filters(date_from=mid + dt.timedelta(days=3)), Filters(date_from=latest_answer - dt.timedelta(days=20)),
                 Filters(date_from=first + (last - first) / 4), Filters(date_from=boundary),
                 Filters(date_from=mid, scope=Scope(role="department", departments=("billing",), user="b")),
                 Filters(date_to=mid, scope=Scope(role="department", departments=("billing", "support"), user="b"))]
        # the open ranges hold customers whose latest share of wallet was stated before the range
        stated_before = con.execute(
            "SELECT count(*) FROM (SELECT customer_id FROM survey_responses WHERE survey = 'relationship' "
            "AND nps IS NOT NULL GROUP BY 1 HAVING max(responded_on) >= $d AND "
            "max(responded_on) FILTER (WHERE share_of_wallet_pct IS NOT NULL) < $d)",
            {"d": mid + dt.timedelta(days=3)}).fetchone()[0]
        assert stated_before > 0
        checked = 0
        for f in cases:
            open_range = f.date_to is None and not f.scope.restricted
            for name, args in ((summaries.LATEST_TABLE, {}), (summaries.WALLET_TABLE, {}),
                               (summaries.LANDMARK_TABLE, {"landmark": f.date_from or mid, "end": None})):
                fast = summaries.source(con, name, f, **args)
                history = ("summary_landmark_states" if name == summaries.LANDMARK_TABLE else
                           "summary_customer c WHERE c.nps_on >= $date_from" if open_range and name == summaries.WALLET_TABLE
                           else "summary_latest l WHERE l.nps_on >= $date_from" if open_range else "summary_answer_spells")
                assert not fast.stored and history in fast.sql, (name, f)
                if open_range and name != summaries.LANDMARK_TABLE:
                    assert "summary_answer_spells" not in fast.sql, (name, f)
                raw = summaries.relation_query(name, f, **args)
                got = con.execute(f"SELECT * FROM {fast.sql} x ORDER BY ALL", fast.params).df()
                want = con.execute(f"SELECT * FROM ({raw.sql}) x ORDER BY ALL", raw.params).df()
                pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-9, obj=name)
                checked += len(want) > 0
    assert checked == 3 * len(cases)


def test_the_landmark_base_from_its_states_equals_its_definition_at_any_landmark(small_copy):
    """The churn landmark base at any landmark, read from the landmark states (one row per customer
    and day with an answer or complaint), equals its definition over the raw tables: landmarks before
    the data, on and the day after a customer's answer and complaint days, between, and past the
    end, with an end date too; with answers given on the same day with other scores (the lowest
    response id wins in both), a complaint opened on a landmark, an escalated one, and contract
    customers with no answer, no complaint, or churned before the landmark."""
    with store.connect(str(small_copy), read_only=False) as con, store.transaction(con):
        con.execute("INSERT INTO survey_responses SELECT * REPLACE (response_id || '~' AS response_id, "
                    "(nps + 5) % 11 AS nps, csat % 5 + 1 AS csat) FROM survey_responses WHERE hash(response_id) % 5 = 0")
        con.execute("INSERT INTO survey_responses SELECT * REPLACE ('0' || response_id AS response_id, "
                    "(nps + 3) % 11 AS nps, (csat + 1) % 5 + 1 AS csat) FROM survey_responses "
                    "WHERE hash(response_id) % 7 = 0 AND response_id NOT LIKE '%~'")
        con.execute("INSERT INTO customers SELECT * REPLACE ('NEW-' || customer_id AS customer_id) FROM customers "
                    "WHERE contract = 'contractual' LIMIT 5")  # no answer, no complaint
        store.bump_version(con)
    with store.connect(str(small_copy)) as con:
        first, last = con.execute("SELECT min(responded_on), max(responded_on) FROM survey_responses").fetchone()
        cust, day = con.execute("SELECT r.customer_id, min(r.responded_on) FROM survey_responses r JOIN customers c "
                                "USING (customer_id) WHERE c.contract = 'contractual' AND r.survey = 'relationship' "
                                "GROUP BY 1 HAVING count(*) > 2 ORDER BY 1 LIMIT 1").fetchone()
        opened = con.execute("SELECT min(opened_on) FROM complaints WHERE customer_id = $c", {"c": cust}).fetchone()[0]
        escalated = con.execute("SELECT min(opened_on) FROM complaints WHERE escalated").fetchone()[0]
        churned = con.execute("SELECT min(churned_on) FROM churn_events").fetchone()[0]
        mid = first + (last - first) / 2
        landmarks = {first - dt.timedelta(days=400), first, day, day + dt.timedelta(days=1), mid,
                     escalated, escalated + dt.timedelta(days=1), churned, churned + dt.timedelta(days=1), last,
                     last + dt.timedelta(days=30)} | ({opened, opened + dt.timedelta(days=1)} if opened else set())
        ties = con.execute("SELECT count(*) FROM (SELECT customer_id, responded_on FROM survey_responses "
                           "WHERE nps IS NOT NULL GROUP BY ALL HAVING count(DISTINCT nps) > 1)").fetchone()[0]
        assert ties > 10
        rows = 0
        for L in sorted(landmarks):
            for end in (None, mid + dt.timedelta(days=45)):
                fast = summaries.source(con, summaries.LANDMARK_TABLE, Filters(), landmark=L, end=end)
                assert not fast.stored and "summary_landmark_states" in fast.sql and "survey_responses r" not in fast.sql
                raw = summaries.relation_query(summaries.LANDMARK_TABLE, landmark=L, end=end)
                got = con.execute(f"SELECT * FROM {fast.sql} x ORDER BY ALL", fast.params).df()
                want = con.execute(f"SELECT * FROM ({raw.sql}) x ORDER BY ALL", raw.params).df()
                pd.testing.assert_frame_equal(got, want, obj=f"landmark {L}, end {end}")
                rows += len(want)
        assert rows > 1000
        assert con.execute("SELECT count(*) FROM summary_landmark_states WHERE customer_id LIKE 'NEW-%'").fetchone()[0] == 5


def test_the_landmark_revenue_from_monthly_revenue_equals_its_definition_at_any_end(small_copy):
    """The revenue and active months of each landmark customer in the 12 months to any end E, sliced
    from the customers' revenue by month (whole months) and read from the transactions of the
    window's partial months only, equal the definition over every transaction in the window: ends on
    a month's last day (no partial month), mid-month, on a month's first day, on 29 February (the
    window starts on 28 February, its month's last day in a common year) and on 28 February of a
    common year (the window's first day is 29 February of a leap year), before the data and after
    it; with transactions on the window's first and last days, a customer's month whose amounts sum
    to 0 (still an active month) and a transaction-free gap inside a customer's months."""
    with store.connect(str(small_copy), read_only=False) as con, store.transaction(con):
        cust, mid = con.execute("SELECT customer_id, min(occurred_on) + (date_diff('day', min(occurred_on), max(occurred_on)) // 2)::INTEGER "
                                "FROM transactions WHERE customer_id IN (SELECT customer_id FROM summary_landmark WHERE "
                                "nps_group IS NOT NULL) GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1").fetchone()
        # an active month whose amounts cancel, and a whole month of that customer emptied
        con.execute("INSERT INTO transactions SELECT transaction_id || '~', customer_id, occurred_on, -amount "
                    "FROM transactions WHERE customer_id = $c AND date_trunc('month', occurred_on) = "
                    "date_trunc('month', $d::DATE - INTERVAL 3 MONTH)", {"c": cust, "d": mid})
        con.execute("DELETE FROM transactions WHERE customer_id = $c AND date_trunc('month', occurred_on) = "
                    "date_trunc('month', $d::DATE - INTERVAL 2 MONTH)", {"c": cust, "d": mid})
        store.bump_version(con)
    with store.connect(str(small_copy)) as con:
        first, last = con.execute("SELECT min(occurred_on), max(occurred_on) FROM transactions").fetchone()
        assert summaries.current(con, relations.REVENUE_MONTHS.name)
        gaps = con.execute("SELECT count(*) FROM summary_revenue_months WHERE list_count(revs) < len(revs)").fetchone()[0]
        assert gaps > 0 and con.execute("SELECT list_count(revs) < len(revs) FROM summary_revenue_months "
                                        "WHERE customer_id = $c", {"c": cust}).fetchone()[0]
        assert len(con.execute("SELECT * FROM summary_revenue_months WHERE customer_id = $c",
                                            {"c": cust}).fetchall()) == 1
        L = summaries.landmark(con).landmark
        month_end = dt.date(mid.year, mid.month, 1) - dt.timedelta(days=1)
        ends = {month_end, mid, dt.date(mid.year, mid.month, 1), last, last - dt.timedelta(days=40),
                first - dt.timedelta(days=3), first + dt.timedelta(days=200), last + dt.timedelta(days=400)}
        ends |= {d for d in (dt.date(2024, 2, 29), dt.date(2025, 2, 28), dt.date(2025, 3, 31)) if first < d < last}
        assert {dt.date(2024, 2, 29), dt.date(2025, 2, 28)} <= ends
        days = con.execute("SELECT count(*) FROM transactions WHERE occurred_on IN (SELECT unnest($d::DATE[]))",
                           {"d": sorted(ends | {(pd.Timestamp(e) - pd.DateOffset(months=12)).date() + dt.timedelta(days=1)
                                                for e in ends})}).fetchone()[0]
        assert days > 0  # transactions on windows' first and last days
        rows = seen = 0
        for end in sorted(ends):
            fast = summaries.source(con, relations.LANDMARK_REVENUE.name, Filters(), landmark=L, end=end)
            assert not fast.stored and "summary_revenue_months" in fast.sql, end
            partial = end.day != pd.Timestamp(end).days_in_month or end == dt.date(2025, 2, 28)
            assert ("FROM transactions t" in fast.sql) == partial, end
            raw = summaries.relation_query(relations.LANDMARK_REVENUE.name, landmark=L, end=end)
            got = con.execute(f"SELECT * FROM {fast.sql} x ORDER BY ALL", fast.params).df()
            want = con.execute(f"SELECT * FROM ({raw.sql}) x ORDER BY ALL", raw.params).df()
            pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-9, obj=f"end {end}")
            rows += len(want)
            seen += cust in set(want["customer_id"])
        assert rows > 150 and seen >= 4


def test_a_scope_of_one_department_reads_the_relations_kept_per_department(small_copy):
    """The active customers, complaint gaps, category uplift, key-driver pairs and CLV cells under a scope of one department
    are that department's rows of the relations kept per department: the same rows as their
    definitions, for each department (relationship answers given departments too, so that
    customers deal with several); a scope of two departments or a date range with the scope is
    not held there (the definition)."""
    with store.connect(str(small_copy), read_only=False) as con, store.transaction(con):
        con.execute("UPDATE survey_responses SET department = CASE hash(response_id) % 3 WHEN 0 THEN 'billing' "
                    "WHEN 1 THEN 'support' END WHERE survey = 'relationship'")
        store.bump_version(con)
    kept = {summaries.LIFECYCLE_TABLE: relations.LIFECYCLE_BY_DEPARTMENT.name,
            summaries.GAPS_TABLE: relations.GAPS_BY_DEPARTMENT.name,
            summaries.UPLIFT_TABLE: relations.UPLIFT_BY_DEPARTMENT.name,
            summaries.PAIRS_TABLE: relations.PAIRS_BY_DEPARTMENT.name,
            summaries.CLV_CELLS_TABLE: relations.CLV_CELLS_BY_DEPARTMENT.name}
    with store.connect(str(small_copy)) as con:
        L = churn.default_landmark(con, Filters())
        args = {summaries.CLV_CELLS_TABLE: {"landmark": L, "end": None}}  # the CLV cells at the default landmark
        depts = [r[0] for r in con.execute("SELECT DISTINCT department FROM complaints WHERE department IS NOT NULL "
                                           "ORDER BY 1").fetchall()]
        assert len(depts) >= 3
        rows = dict.fromkeys(kept, 0)
        for d in depts:
            f = Filters(scope=Scope(role="department", departments=(d,), user="b"))
            for name, by_dept in kept.items():
                fast = summaries.source(con, name, f, **args.get(name, {}))
                assert not fast.stored and by_dept in fast.sql, (name, d)
                raw = summaries.relation_query(name, f, **args.get(name, {}))
                got = con.execute(f"SELECT * FROM {fast.sql} x ORDER BY ALL", fast.params).df()
                want = con.execute(f"SELECT * FROM ({raw.sql}) x ORDER BY ALL", raw.params).df()
                pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-9, obj=f"{name}, {d}")
                rows[name] += len(want)
        assert all(rows.values()), rows
        two = Filters(scope=Scope(role="department", departments=tuple(depts[:2]), user="b"))
        dated = Filters(date_from=dt.date(2025, 1, 1), scope=Scope(role="department", departments=(depts[0],), user="b"))
        for name, by_dept in kept.items():
            assert by_dept not in summaries.source(con, name, two, **args.get(name, {})).sql
        # the date range is applied inside: the uplift's distinct customers are recounted, the
        # key-driver pairs' means taken over the range; the CLV cells are counted at the range's
        # start (and at any other landmark); the gaps are the kept ones of the complaints in the
        # range (tested below)
        for name in (summaries.UPLIFT_TABLE, summaries.PAIRS_TABLE):
            assert kept[name] not in summaries.source(con, name, dated).sql
        for landmark in (dated.date_from, L - dt.timedelta(days=1)):
            f = dated if landmark == dated.date_from else Filters(scope=dated.scope)
            assert kept[summaries.CLV_CELLS_TABLE] not in summaries.source(
                con, summaries.CLV_CELLS_TABLE, f, landmark=landmark, end=None).sql
        for name in (summaries.GAPS_TABLE, summaries.LIFECYCLE_TABLE):
            assert kept[name] in summaries.source(con, name, dated).sql


def test_complaint_gaps_under_any_range_and_one_department_equal_their_definition(small_copy):
    """The gaps between a customer's complaints under a date range (and a scope of one department)
    are read from the kept gaps — a complaint's next one in the range is its next one overall when
    that was opened by the range's end — and equal the definition over the complaints in the range:
    ranges that cut a customer's run of complaints at either end, with complaints opened on the same
    day (the lower id first in both). Two departments read the complaints."""
    with store.connect(str(small_copy), read_only=False) as con, store.transaction(con):
        con.execute("INSERT INTO complaints SELECT * REPLACE (complaint_id || '~' AS complaint_id) FROM complaints "
                    "WHERE hash(complaint_id) % 6 = 0")  # a second complaint the same day
        store.bump_version(con)
    with store.connect(str(small_copy)) as con:
        first, last = con.execute("SELECT min(opened_on), max(opened_on) FROM complaints").fetchone()
        dept = con.execute("SELECT min(department) FROM complaints").fetchone()[0]
        mid = first + (last - first) / 2
        one = Scope(role="department", departments=(dept,), user="b")
        cases = [Filters(date_from=mid, date_to=last - dt.timedelta(days=40)), Filters(date_to=mid),
                 Filters(date_from=mid + dt.timedelta(days=3)), Filters(date_from=mid, scope=one),
                 Filters(date_from=first + dt.timedelta(days=30), date_to=mid, scope=one)]
        for f in cases:
            fast = summaries.source(con, summaries.GAPS_TABLE, f)
            assert not fast.stored and "summary_complaint_gaps" in fast.sql, f
            raw = summaries.relation_query(summaries.GAPS_TABLE, f)
            got = con.execute(f"SELECT segment, region, opened_on, gap_days, sum(n) AS n FROM {fast.sql} x "
                              "GROUP BY ALL ORDER BY ALL", fast.params).df()
            want = con.execute(f"SELECT segment, region, opened_on, gap_days, sum(n) AS n FROM ({raw.sql}) x "
                               "GROUP BY ALL ORDER BY ALL", raw.params).df()
            assert len(want) and want["gap_days"].eq(0).any(), f
            pd.testing.assert_frame_equal(got, want, obj=str(f))
            if f.date_to is not None:  # the range's end cut some gaps: the next complaint came after it
                cut = con.execute("SELECT count(*) FROM summary_complaint_gaps WHERE opened_on <= $to "
                                  "AND gap_days > date_diff('day', opened_on, $to)", {"to": f.date_to}).fetchone()[0]
                assert cut > 0, f
        two = Filters(date_from=mid, scope=Scope(role="department", departments=("billing", "support"), user="b"))
        assert "summary_complaint_gaps" not in summaries.source(con, summaries.GAPS_TABLE, two).sql


def test_a_quarterly_trend_under_any_range_reads_the_kept_quarters_and_sums_only_the_cut_ones(writable_db, monkeypatch):
    """Under a date range the NPS trend by quarter takes the quarters the range covers whole from the
    kept cluster sums (a customer's answers in a quarter are one cluster, whatever else is in the
    range) and sums only the days of the quarters cut at its ends, as the overall figure is summed
    for a range (from the sums kept per customer and answer day where they hold it): the same table
    as summing the whole range from the raw responses, for ranges cut at either end or not at all,
    inside one quarter, beyond the data, with a segment, a department scope and weights."""
    from cxmetrics.metrics import clustered, nps

    with store.connect(str(writable_db), read_only=False) as w:
        with store.transaction(w):  # repeat answers within a quarter (clustered SEs), summaries rebuilt
            w.execute("""INSERT INTO survey_responses BY NAME
                SELECT * REPLACE (response_id || '-again' AS response_id, responded_on + 9 AS responded_on,
                                  (nps + 4) % 11 AS nps)
                FROM survey_responses WHERE survey = 'relationship' AND nps IS NOT NULL AND hash(response_id) % 3 = 0""")
            store.bump_version(w, ["survey_responses"])
    ranges = [(dt.date(2024, 11, 17), dt.date(2026, 2, 3)), (dt.date(2025, 1, 1), dt.date(2025, 8, 9)),
              (dt.date(2024, 12, 31), dt.date(2025, 12, 31)), (dt.date(2025, 4, 1), dt.date(2025, 6, 30)),
              (dt.date(2025, 4, 2), dt.date(2025, 6, 29)), (dt.date(2025, 5, 5), dt.date(2030, 1, 1)),
              (None, dt.date(2025, 2, 14)), (dt.date(2025, 2, 14), None),
              (dt.date(2024, 12, 1), dt.date(2025, 9, 15))]  # its first quarter's days: December, no answers
    scopes = [Filters(), Filters(segments=("smb",)),
              Filters(scope=Scope(role="department", departments=("billing",), user="b"))]
    live = []
    execute = store._execute

    def spy(c, query, fetch, copy):
        if query.name in ("nps_clusters", "nps_clusters_in_range"):
            after = query.params.get("date_after")
            live.append((query.name, query.params.get("date_from"),
                         query.params.get("date_to") if after is None else after - dt.timedelta(days=1)))
        return execute(c, query, fetch, copy)

    monkeypatch.setattr(store, "_execute", spy)
    with store.connect(str(writable_db)) as con:
        repeated = cut = skipped = 0
        for lo, hi in ranges:
            for base in scopes:
                f = base.with_(date_from=lo, date_to=hi)
                for weighted in (False, True):
                    live.clear()
                    fast = nps.trend(con, f, period="quarter", weighted=weighted)
                    trend_live = list(live)
                    with monkeypatch.context() as m:  # nothing kept: the whole range live
                        m.setattr(summaries, "fit_text", lambda c, name: None)
                        m.setattr(clustered, "in_range", lambda *a, **k: None)
                        slow = nps.trend(con, f, period="quarter", weighted=weighted)
                    pd.testing.assert_frame_equal(fast.table, slow.table, check_exact=False, rtol=1e-9, atol=1e-9)
                    assert len(fast.table) or (f.scope.restricted and not len(slow.table))
                    repeated += int(fast.table["n_eff"].notna().sum()) if len(fast.table) else 0
                    if (lo, hi) == (dt.date(2024, 11, 17), dt.date(2026, 2, 3)) and len(fast.table):  # two cut quarters
                        # the overall headline and the days of the two quarters cut: from the sums
                        # kept per customer and answer day (a department's scope has no relationship
                        # answer, and no table)
                        how = "nps_clusters_in_range"
                        assert set(trend_live) == {(how, lo, hi), (how, lo, dt.date(2024, 12, 31)),
                                                   (how, dt.date(2026, 1, 1), hi)}, trend_live
                        cut += 1
                    elif (lo, hi) == (dt.date(2024, 12, 1), dt.date(2025, 9, 15)) and not f.scope.restricted:
                        # the demo's relationship survey goes out in a quarter's first two months: the
                        # counts show no answer in December, whose days are not summed
                        how = "nps_clusters_in_range"
                        assert set(trend_live) == {(how, lo, hi), (how, dt.date(2025, 7, 1), hi)}, trend_live
                        assert dt.date(2024, 10, 1) not in set(pd.to_datetime(fast.table["period"]).dt.date)
                        skipped += 1
                    elif not f.scope.restricted and lo is not None and (hi is None or hi >= lo):
                        assert {name for name, *_ in trend_live} <= {"nps_clusters_in_range"}, (f, trend_live)
        assert repeated > 50 and cut == 4 and skipped == 4  # quarters with repeat answers: the cluster sums decide their intervals


def _query_names(monkeypatch) -> list[str]:
    """The names of the queries run from here on, in order (the caller clears the list)."""
    names: list[str] = []
    execute = store._execute

    def named(c, query, fetch, copy):
        names.append(query.name)
        return execute(c, query, fetch, copy)

    monkeypatch.setattr(store, "_execute", named)
    return names


#: The quarter the one-quarter tests plant repeat answers in.
_QUARTER = Filters(date_from=dt.date(2026, 1, 1), date_to=dt.date(2026, 3, 31))


def _answer_twice_in_the_quarter(path, survey: str, rescored: str) -> None:
    """A third of the customers' ``survey`` answers in :data:`_QUARTER` given again five days later
    with other scores (``rescored``: the score columns' new expressions): customers who answer
    twice in the quarter, whom the demo does not have for every survey and touchpoint."""
    with store.connect(str(path), read_only=False) as con, store.transaction(con):
        con.execute("INSERT INTO survey_responses SELECT * REPLACE (response_id || '~' AS response_id, "
                    f"responded_on + 5 AS responded_on, {rescored}) FROM survey_responses "
                    "WHERE survey = $survey AND customer_id IS NOT NULL "
                    "AND responded_on BETWEEN $lo AND $hi - 5 AND hash(response_id) % 3 = 0",
                    {"survey": survey, "lo": _QUARTER.date_from, "hi": _QUARTER.date_to})
        store.bump_version(con)


def test_the_overall_nps_of_a_range_that_is_one_quarter_reads_that_quarters_kept_sums(small_copy, monkeypatch):
    """A date range from a quarter's first day to its last: the relationship NPS overall (weighted
    or not, under a segment too) and by segment takes its customer-clustered sums from the quarter's kept sums
    (a customer's answers in the range are their answers in the quarter) — no per-customer query,
    the same estimates and intervals as from the raw responses, with customers who answered twice
    in the quarter (other scores, a few days later). A range one day short of the quarter, of two
    quarters, or of one month, reads the sums kept per customer and answer day; each is compared
    with the raw responses."""
    from cxmetrics.metrics import clustered, nps

    q = _QUARTER
    _answer_twice_in_the_quarter(small_copy, "relationship", "(nps + 6) % 11 AS nps")
    with store.connect(str(small_copy)) as con:
        assert clustered.kept(con, "nps", None, "relationship", q)["max_k"].max() == 2
        kept_ones = (q, q.with_(segments=("smb",)), q.with_(regions=("north", "south")))
        ranged = (q.with_(date_from=dt.date(2026, 1, 2)), q.with_(date_from=dt.date(2025, 10, 1)),
                  Filters(date_from=dt.date(2026, 1, 1), date_to=dt.date(2026, 1, 31)))
        names = _query_names(monkeypatch)
        for f in kept_ones + ranged:
            for weighted in (False, True):
                names.clear()
                fast = nps.overall(con, f, survey="relationship", weighted=weighted)
                assert "nps_clusters" not in names, (f, weighted, names)
                assert ("nps_clusters_in_range" in names) == (f in ranged), (f, weighted, names)
                with monkeypatch.context() as m:
                    m.setattr(summaries, "fit_text", lambda c, name: None)
                    m.setattr(clustered, "in_range", lambda *a, **k: None)
                    slow = nps.overall(con, f, survey="relationship", weighted=weighted)
                assert fast.n > 5 and fast.n == slow.n
                for a, b in ((fast.estimate, slow.estimate), (fast.ci_low, slow.ci_low), (fast.ci_high, slow.ci_high)):
                    assert a == pytest.approx(b, rel=1e-9, abs=1e-9), (f, weighted)
            names.clear()  # by segment: the quarter's sums of each segment's customers
            fast = nps.by(con, f, dim="segment", survey="relationship")
            assert "nps_clusters" not in names and ("nps_clusters_in_range" in names) == (f in ranged), (f, names)
            with monkeypatch.context() as m:
                m.setattr(summaries, "fit_text", lambda c, name: None)
                m.setattr(clustered, "in_range", lambda *a, **k: None)
                slow = nps.by(con, f, dim="segment", survey="relationship")
            assert len(fast.table) >= 1
            pd.testing.assert_frame_equal(fast.table, slow.table, check_exact=False, rtol=1e-9, atol=1e-9)


def test_touchpoint_figures_of_a_range_that_is_one_quarter_read_that_quarters_kept_sums(small_copy, monkeypatch):
    """A date range from a quarter's first day to its last: the transactional NPS, CSAT and CES by
    touchpoint take their customer-clustered sums from the touchpoint sums kept per quarter (a
    customer's answers in the range are their answers in that quarter) — no per-customer query,
    unfiltered, under a segment or region, and in a scope of one department — with the same table
    as from the raw responses, customers answering twice at a touchpoint in the quarter. A range one
    day short of the quarter, of two quarters, or of one month reads the sums kept per customer and
    answer day; a scope of two departments, the raw responses. (After an append, the kept quarters are those of a rebuild:
    test_an_append_updates_summaries_in_place_to_what_a_rebuild_stores.)"""
    from cxmetrics.metrics import clustered, nps, scores

    q = _QUARTER
    _answer_twice_in_the_quarter(small_copy, "transactional", "(nps + 6) % 11 AS nps, 6 - csat AS csat, 8 - ces AS ces")
    one = Scope(role="department", departments=("billing",), user="b")
    two = Scope(role="department", departments=("billing", "logistics"), user="b")
    kept_ones = (q, q.with_(segments=("smb",)), q.with_(regions=("north", "south")), q.with_(scope=one))
    ranged = (q.with_(date_from=dt.date(2026, 1, 2)), q.with_(date_from=dt.date(2025, 10, 1)),
              Filters(date_from=dt.date(2026, 1, 1), date_to=dt.date(2026, 1, 31)))
    raw_ones = (q.with_(scope=two),)
    calls = {"nps_clusters": lambda c, f: nps.by(c, f, dim="touchpoint", survey="transactional").table,
             "csat_clusters": lambda c, f: scores.score(c, f, metric="csat", dim="touchpoint").table,
             "ces_clusters": lambda c, f: scores.score(c, f, metric="ces", dim="touchpoint").table}
    with store.connect(str(small_copy)) as con:
        assert clustered.kept(con, "nps", "touchpoint", "transactional", q)["max_k"].max() >= 2
        assert clustered.kept(con, "csat", "touchpoint", "all", q.with_(scope=one))["max_k"].max() >= 2
        names = _query_names(monkeypatch)
        for f in kept_ones + ranged + raw_ones:
            for name, call in calls.items():
                names.clear()
                fast = call(con, f)
                read_raw, read_ranged = name in names, f"{name}_in_range" in names
                with monkeypatch.context() as m:
                    m.setattr(summaries, "fit_text", lambda c, n: None)
                    m.setattr(clustered, "in_range", lambda *a, **k: None)
                    slow = call(con, f)
                if name == "ces_clusters" and f.scope.restricted and len(slow) == 0:  # CES: asked at one touchpoint
                    assert len(fast) == 0
                    continue
                assert read_raw == (f in raw_ones) and read_ranged == (f in ranged), (f, name, names)
                assert len(fast) >= 1
                pd.testing.assert_frame_equal(fast, slow, check_exact=False, rtol=1e-9, atol=1e-9)


def test_a_date_range_reads_each_customers_sums_from_the_days_it_starts_and_ends(small_copy, monkeypatch):
    """A date range: the relationship and transactional NPS overall (weighted too, under a segment
    or regions) and by touchpoint, and the CSAT and CES by touchpoint, take their customer-clustered
    sums from the sums kept per customer and answer day — no per-customer query over the responses,
    the same tables as from the raw responses, with customers who answered twice on one day, again
    days later, and answers without a customer (each a cluster of its own). A range open at its end
    ("the last 12 months") reads the customer's row holding on its first day; a range closed at its
    end, that row less the one holding on the day after its end. A scope of one department reads the
    kinds kept within each department (the others, and a scope of two departments, read the raw
    responses). The kept rows equal the query's per-customer sums for every start day tried, with
    ranges open and closed (one day, a week, months, starting before the data), within each
    department too. The kept fit's unfiltered sums, read from the same rows where a kind is kept
    there, equal the raw responses'. The key drivers' pairs under a date range (unrestricted scope)
    read their per-day sums the same way: open at its end, with each customer's latest NPS kept
    beside them; closed, with their latest NPS as of its end."""
    from cxmetrics.metrics import clustered, nps, scores

    with store.connect(str(small_copy), read_only=False) as con, store.transaction(con):
        for shift, cond in ((0, "hash(response_id) % 4 = 0"), (9, "hash(response_id) % 4 = 1")):
            con.execute("INSERT INTO survey_responses SELECT * REPLACE (response_id || $tag AS response_id, "
                        "responded_on + $shift AS responded_on, (nps + 4) % 11 AS nps, 6 - csat AS csat) "
                        f"FROM survey_responses WHERE customer_id IS NOT NULL AND {cond} "
                        "AND responded_on + $shift <= (SELECT max(responded_on) FROM survey_responses)",
                        {"tag": f"~{shift}", "shift": shift})
        con.execute("INSERT INTO survey_responses SELECT * REPLACE (response_id || '~anon' AS response_id, "
                    "NULL AS customer_id) FROM survey_responses WHERE hash(response_id) % 7 = 0")
        store.bump_version(con)
    with store.connect(str(small_copy)) as con:
        hi = con.execute("SELECT max(responded_on) FROM survey_responses").fetchone()[0]
        for table, *_ in histories.SUFFIX_KINDS.values():  # names from relations.ALL
            assert con.execute(f"SELECT count(*) FROM {table} WHERE anonymous IS NOT NULL").fetchone()[0] > 10, table
        open_ones = [Filters(date_from=hi - dt.timedelta(days=365)), Filters(date_from=dt.date(2025, 11, 20), date_to=hi),
                     Filters(date_from=dt.date(2026, 2, 3), date_to=dt.date(2031, 1, 1), segments=("smb",)),
                     Filters(date_from=dt.date(2024, 6, 30), regions=("north", "south"))]

        def dept(*names):
            return Scope(role="department", departments=names, user="b")

        one_dept = [Filters(date_from=dt.date(2025, 11, 20), scope=dept("billing")),
                    Filters(date_from=hi - dt.timedelta(days=365), segments=("smb",), scope=dept("logistics"))]
        closed_ones = [Filters(date_from=dt.date(2025, 11, 20), date_to=hi - dt.timedelta(days=1)),
                       Filters(date_from=dt.date(2025, 11, 17), date_to=dt.date(2026, 2, 9), regions=("north",)),
                       Filters(date_to=dt.date(2026, 3, 4), segments=("smb",))]
        closed_dept = [Filters(date_from=dt.date(2025, 11, 20), date_to=hi - dt.timedelta(days=1), scope=dept("billing"))]
        raw_ones = [Filters(date_from=dt.date(2025, 11, 20), scope=dept("billing", "logistics"))]

        def overall(survey: str, weighted: bool):
            # the same estimate either way; its queries are those of the path taken
            return lambda c, f: pd.DataFrame([vars(nps.overall(c, f, survey=survey, weighted=weighted))]).drop(
                columns=["filters", "queries"])

        # (the kind each call reads, the call)
        calls = {"nps_clusters": [("nps|touchpoint|transactional",
                                   lambda c, f: nps.by(c, f, dim="touchpoint", survey="transactional").table),
                                  *((f"nps|all|{s}", overall(s, w)) for s in ("relationship", "transactional")
                                    for w in (False, True))],
                 "csat_clusters": [("csat|touchpoint|all",
                                    lambda c, f: scores.score(c, f, metric="csat", dim="touchpoint").table)],
                 "ces_clusters": [("ces|touchpoint|all",
                                   lambda c, f: scores.score(c, f, metric="ces", dim="touchpoint").table)]}
        names = _query_names(monkeypatch)
        read_raw = by_department = 0
        for f in open_ones + closed_ones + one_dept + closed_dept + raw_ones:
            for name, fns in calls.items():
                for kind, call in fns:
                    names.clear()
                    fast = call(con, f)
                    if name == "ces_clusters" and len(fast) == 0:  # CES is asked at one touchpoint
                        with monkeypatch.context() as m:
                            m.setattr(clustered, "in_range", lambda *a, **k: None)
                            assert len(call(con, f)) == 0, f
                        continue
                    if f in open_ones + closed_ones or (f in one_dept + closed_dept
                                                        and f"{kind}|department" in histories.SUFFIX_KINDS):
                        assert f"{name}_in_range" in names and name not in names, (f, name, names)
                        by_department += f in one_dept + closed_dept
                    else:  # (a department's scope: no relationship answer has one)
                        assert f"{name}_in_range" not in names, (f, name, names)
                    with monkeypatch.context() as m:
                        m.setattr(clustered, "in_range", lambda *a, **k: None)
                        slow = call(con, f)
                    assert len(fast) >= 1
                    pd.testing.assert_frame_equal(fast, slow, check_exact=False, rtol=1e-9, atol=1e-9)
                    read_raw += name in names
        assert read_raw >= 4 and by_department == 12
        # the key drivers' pairs in an unrestricted scope: each customer's mean CSAT per touchpoint
        # from their row of the kept per-day sums holding on the range's first day (less the one
        # holding on the day after its end), with their latest NPS as of the end (the raw responses
        # under a department's scope)
        from dataclasses import replace

        from cxmetrics.metrics import drivers

        pairs = summaries.RELATIONS[summaries.PAIRS_TABLE]

        def same_key_drivers(f):
            fast = drivers.key_drivers(con, f)
            via = "summary_driver_pair_suffixes" in fast.queries[0].sql
            assert via == (not f.scope.restricted), f
            with monkeypatch.context() as m:
                m.setitem(summaries.RELATIONS, pairs.name, replace(pairs, via=pairs.vias[:1]))
                slow = drivers.key_drivers(con, f)
            assert "summary_driver_pair_suffixes" not in slow.queries[0].sql
            pd.testing.assert_frame_equal(fast.table, slow.table, check_exact=False, rtol=1e-9, atol=1e-12)
            return len(fast.table)

        for f in open_ones + one_dept + closed_ones + closed_dept + raw_ones:
            assert same_key_drivers(f) >= (1 if f.scope.restricted else 3), f
        repeated, closed, seen = 0, 0, set()
        lo = con.execute("SELECT min(responded_on) FROM survey_responses").fetchone()[0]
        days = pd.date_range(hi - dt.timedelta(days=800), hi, freq="37D").date
        # each start day with a range open at its end, and closed: on the same day, a week later,
        # months later, on the data's last day; and ranges starting before the data
        ranges = [(day, None) for day in days] + [(day, day + dt.timedelta(days=span))
                                                   for i, day in enumerate(days) for span in ((0, 6, 100, 400)[i % 4],)]
        ranges += [(days[3], hi), (None, days[5]), (lo - dt.timedelta(days=3), days[8])]
        for i, (start, end) in enumerate(ranges):
            if i % 3 == 0:
                same_key_drivers(Filters(date_from=start, date_to=end))
            for key in histories.SUFFIX_KINDS:
                measure, dim, survey, *within = key.split("|")
                dim = None if dim == "all" else dim
                # each range in another department (a department's kinds)
                f = Filters(date_from=start, date_to=end,
                            scope=dept(("billing", "logistics", "contact_centre")[i % 3]) if within else Scope())
                for dims in (True, False):
                    q = (nps._cluster_query(f, dim, survey, dims=dims) if measure == "nps"
                         else scores._score_cluster_q(f, dim, survey, *scores._SCORE_COLS[measure], dims=dims))
                    want = store.run(con, q)
                    repeated += int((want["max_k"] > 1).any())
                    if within and len(want):
                        seen |= set(f.scope.departments)
                    got = clustered.in_range(con, measure, dim, survey, f, q, dims)
                    closed += end is not None and len(want) > 0
                    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12, atol=1e-9)
        assert repeated > 200 and closed > 200 and seen == {"billing", "logistics", "contact_centre"}
        # the kept fit's unfiltered sums: a kind kept per answer day reads each customer's first row
        raw = {}
        for key, q in scores._kept_queries():
            raw[key] = store.run(con, q)
            got = clustered.whole(con, key, q)
            assert (got is None) == (key not in histories.SUFFIX_KINDS), key
            if got is not None:
                pd.testing.assert_frame_equal(got, raw[key], check_exact=False, rtol=1e-12, obj=key)
        _same_fits({"clusters": summaries.fit_text(con, "clusters")},
                   {"clusters": json.dumps({k: clustered.to_kept(df) for k, df in raw.items()})})


def test_cluster_sums_are_kept_and_read_where_they_hold_the_answer(con, monkeypatch):
    """The clustered SEs' per-customer sums (one GROUP BY per customer over the raw responses) are
    kept with the summaries for the unfiltered view, overall and per department; NPS, CSAT and CES
    under a segment or region read them (a customer keeps all their answers), and so does a scope of
    one department (with a segment too); a date range reads the sums kept per customer and answer
    day, and whole quarters' kept sums for a trend by quarter; a scope of two departments (a
    customer who answered in both is one cluster) reads the raw responses — same estimates."""
    from cxmetrics.metrics import clustered, nps, scores

    kept = summaries.fit(con, "clusters")
    assert set(kept) == ({clustered.kept_key(*k, by_department=d) for k in clustered.KEPT for d in (False, True)}
                         | {clustered.kept_key(*k, by_department=d, by_quarter=True) for k in clustered.BY_QUARTER
                            for d in (False, True)})
    one = Filters(scope=Scope(role="department", departments=("billing",), user="b"))
    one_smb = one.with_(segments=("smb",))
    two = Filters(scope=Scope(role="department", departments=("billing", "logistics"), user="b"))
    raw_ones = (two,)
    names = _query_names(monkeypatch)
    cases = [(f, call) for f in (Filters(), Filters(segments=("smb",)), Filters(regions=("north", "south")), LAST_12_MONTHS,
                                 one, one_smb, two)
             for call in (lambda c, f: nps.trend(c, f, period="quarter", survey="relationship"),
                          lambda c, f: nps.by(c, f, dim="touchpoint", survey="transactional"),
                          # one group over all touchpoints: a customer who answered in two departments
                          lambda c, f: SimpleNamespace(table=pd.DataFrame(
                              [vars(nps.overall(c, f, survey="transactional"))]).drop(columns=["filters", "queries"])),
                          lambda c, f: nps.by(c, f, dim="segment", survey="relationship"))]
    ranged = 0
    for f, call in cases:
        names.clear()
        fast = call(con, f)
        reads_raw = "nps_clusters" in names
        assert reads_raw == (f in raw_ones), (f, names)
        ranged += "nps_clusters_in_range" in names
        with monkeypatch.context() as m:
            m.setattr(summaries, "fit_text", lambda c, name: None)
            m.setattr(clustered, "in_range", lambda *a, **k: None)
            slow = call(con, f)
        # relationship answers carry no department: a department's relationship trend is empty
        assert len(fast.table) >= 1 or (f.scope.restricted and len(slow.table) == 0)
        pd.testing.assert_frame_equal(fast.table, slow.table, check_exact=False, rtol=1e-9, atol=1e-9)
    assert ranged == 4  # the last 12 months: each of the four calls (the trend's headline)
    for f in (Filters(), Filters(segments=("smb",)), Filters(regions=("north", "south")), LAST_12_MONTHS, one, one_smb,
              two):
        for metric in ("csat", "ces"):
            names.clear()
            fast = scores.score(con, f, metric=metric, dim="touchpoint")
            read_raw = f"{metric}_clusters" in names
            with monkeypatch.context() as m:
                m.setattr(summaries, "fit_text", lambda c, name: None)
                m.setattr(clustered, "in_range", lambda *a, **k: None)
                slow = scores.score(con, f, metric=metric, dim="touchpoint")
            if f.scope.restricted and len(slow.table) == 0:  # CES is asked at one touchpoint, not in every department
                assert len(fast.table) == 0
                continue
            assert read_raw == (f in raw_ones), (f, metric, names)
            assert (f"{metric}_clusters_in_range" in names) == (f == LAST_12_MONTHS), (f, metric, names)
            assert len(fast.table) >= 1 and fast.table["customers"].notna().all()  # CES: one touchpoint
            pd.testing.assert_frame_equal(fast.table, slow.table, check_exact=False, rtol=1e-9, atol=1e-9)


def test_relations_with_a_stored_order_are_written_in_it(con):
    """The histories a date range filters (answer spells, per-day sums) are stored in day order, so
    that a range's filter skips the blocks of days before its start."""
    ordered = [r for r in relations.ALL if r.stored_order]
    assert {"summary_answer_spells", "summary_driver_pair_suffixes",
            *(r.name for r in histories.CLUSTER_SUFFIXES)} <= {r.name for r in ordered}
    for rel in ordered:
        col = rel.stored_order  # one column name, from relations.ALL
        rows, back = con.execute(f"SELECT count(*), count(*) FILTER (WHERE {col} < before) FROM (SELECT {col}, "
                                 f"lag({col}) OVER (ORDER BY rowid) AS before FROM {rel.name})").fetchone()
        assert rows > 100 and back == 0, rel.name
