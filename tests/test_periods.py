"""Named date ranges (``cxmetrics.core.periods``) and the sidebar's Period select: a named period
sets both dates, follows the data, and is kept in the link by name; a typed date makes it
'Custom'."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as hs

from cxmetrics import store
from cxmetrics.core import periods
from cxmetrics.core.periods import ALL, CUSTOM, LAST_12_MONTHS, LAST_QUARTER, YEAR_TO_DATE, preset_of, preset_range

D = dt.date


@pytest.mark.parametrize("lo, hi, name, want", [
    (D(2023, 10, 1), D(2026, 9, 30), LAST_12_MONTHS, (D(2025, 10, 1), D(2026, 9, 30))),
    (D(2023, 10, 1), D(2024, 2, 29), LAST_12_MONTHS, (D(2023, 10, 1), D(2024, 2, 29))),  # shorter data
    (D(2020, 1, 1), D(2024, 2, 29), LAST_12_MONTHS, (D(2023, 3, 1), D(2024, 2, 29))),
    (D(2023, 10, 1), D(2026, 9, 30), LAST_QUARTER, (D(2026, 7, 1), D(2026, 9, 30))),  # ends on a quarter's last day
    (D(2023, 10, 1), D(2026, 9, 29), LAST_QUARTER, (D(2026, 4, 1), D(2026, 6, 30))),
    (D(2026, 4, 1), D(2026, 6, 30), LAST_QUARTER, (D(2026, 4, 1), D(2026, 6, 30))),
    (D(2026, 4, 2), D(2026, 9, 29), LAST_QUARTER, None),  # no quarter inside the data
    (D(2023, 10, 1), D(2026, 9, 30), YEAR_TO_DATE, (D(2026, 1, 1), D(2026, 9, 30))),
    (D(2026, 3, 5), D(2026, 9, 30), YEAR_TO_DATE, (D(2026, 3, 5), D(2026, 9, 30))),
    (D(2023, 10, 1), D(2026, 9, 30), ALL, (D(2023, 10, 1), D(2026, 9, 30))),
    (D(2023, 10, 1), D(2026, 9, 30), CUSTOM, None),
])
def test_named_ranges(lo, hi, name, want):
    assert preset_range(name, lo, hi) == want


def test_an_unknown_name_is_refused():
    with pytest.raises(ValueError, match="Last 12 months"):
        preset_range("last year", D(2024, 1, 1), D(2025, 1, 1))


@given(hs.dates(D(1990, 1, 1), D(2100, 12, 31)), hs.integers(-400, 400))
def test_add_months_is_pandas_date_offset(d, k):
    assert periods.add_months(d, k) == (pd.Timestamp(d) + pd.DateOffset(months=k)).date()


@given(hs.dates(D(2000, 1, 1), D(2090, 12, 31)), hs.integers(0, 3000))
def test_every_named_range_lies_in_the_data_and_is_named_back(lo, days):
    hi = lo + dt.timedelta(days=days)
    for name in periods.PRESETS[:-1]:
        got = preset_range(name, lo, hi)
        if got is None:
            continue
        a, b = got
        assert lo <= a <= b <= hi, (name, got)
        # the first preset with exactly these days names them (All data before a 12 months that is all)
        named = preset_of(a, b, lo, hi)
        assert preset_range(named, lo, hi) == got
    assert preset_of(lo, hi, lo, hi) == ALL


@given(hs.dates(D(2000, 1, 1), D(2090, 12, 31)))
def test_the_last_complete_quarter_is_a_whole_calendar_quarter(hi):
    start, end = preset_range(LAST_QUARTER, D(1999, 1, 1), hi)
    assert start == periods.period_start(start, "quarter") and end + dt.timedelta(days=1) == \
        periods.next_period_start(start, "quarter")
    assert end <= hi < periods.add_months(end + dt.timedelta(days=1), 3)  # the latest one that ends by hi


def test_a_typed_range_is_custom():
    assert preset_of(D(2025, 3, 17), D(2026, 8, 9), D(2023, 10, 1), D(2026, 9, 30)) == CUSTOM


# ----------------------------------------------------------------------------- the sidebar


def _bounds(db):
    with store.connect(str(db)) as c:
        return c.execute("SELECT min(responded_on), max(responded_on) FROM survey_responses").fetchone()


def test_choosing_a_period_sets_the_dates_and_the_link(small_db, make_app):
    lo, hi = _bounds(small_db)
    at = make_app(small_db, page="pages/02_nps_drivers.py")
    assert at.sidebar.selectbox(key="flt_period").value == ALL
    at.sidebar.selectbox(key="flt_period").select(LAST_12_MONTHS).run()
    assert not at.exception, [e.value for e in at.exception]
    want = preset_range(LAST_12_MONTHS, lo, hi)
    f = at.session_state["filters"]
    assert (f.date_from, f.date_to or hi) == want and f.date_to is None  # it runs to the data's end
    assert (at.sidebar.date_input(key="flt_from").value, at.sidebar.date_input(key="flt_to").value) == want
    assert at.query_params.get("range") in ("last-12-months", ["last-12-months"])
    assert "from" not in at.query_params and "to" not in at.query_params


def test_typing_a_date_makes_the_period_custom_and_the_link_dated(small_db, make_app):
    lo, hi = _bounds(small_db)
    at = make_app(small_db, page="pages/02_nps_drivers.py")
    at.sidebar.selectbox(key="flt_period").select(LAST_12_MONTHS).run()
    day = preset_range(LAST_12_MONTHS, lo, hi)[0] + dt.timedelta(days=3)
    at.sidebar.date_input(key="flt_from").set_value(day).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.sidebar.selectbox(key="flt_period").value == CUSTOM
    assert at.session_state["filters"].date_from == day
    assert at.query_params.get("from") in (day.isoformat(), [day.isoformat()])
    assert "range" not in at.query_params
    # typing the dates of a named range names it again
    at.sidebar.date_input(key="flt_from").set_value(lo).run()
    at.sidebar.date_input(key="flt_to").set_value(hi).run()
    assert at.sidebar.selectbox(key="flt_period").value == ALL


def test_a_link_to_a_period_opens_it(small_db, make_app):
    lo, hi = _bounds(small_db)
    at = make_app(small_db, query={"range": "last-quarter"})
    assert not at.exception, [e.value for e in at.exception]
    assert at.sidebar.selectbox(key="flt_period").value == LAST_QUARTER
    f = at.session_state["filters"]
    assert (f.date_from, f.date_to) == preset_range(LAST_QUARTER, lo, hi)


def test_a_link_to_an_unknown_period_says_so_and_shows_everything(small_db, make_app):
    at = make_app(small_db, query={"range": "<b>last-decade</b>"})
    assert not at.exception, [e.value for e in at.exception]
    assert any("'range'" in w.value and "is not one of" in w.value for w in at.sidebar.warning)
    assert at.sidebar.selectbox(key="flt_period").value == ALL
    f = at.session_state["filters"]
    assert f.date_from is None and f.date_to is None


def test_a_named_period_follows_new_data(small_copy, make_app, tmp_path):
    """The last 12 months after an import of later answers are the 12 months to the new last day,
    in the same session (the data version changes, the period is kept by name)."""
    from cxmetrics.registers import importer

    at = make_app(small_copy, page="pages/02_nps_drivers.py")
    at.sidebar.selectbox(key="flt_period").select(LAST_12_MONTHS).run()
    lo, hi = _bounds(small_copy)
    with store.connect(str(small_copy)) as c:
        later = c.execute("""SELECT * REPLACE ('late-' || response_id AS response_id,
                                               CAST(responded_on + INTERVAL 40 DAY AS DATE) AS responded_on)
                             FROM survey_responses WHERE responded_on = $hi""", {"hi": hi}).df()
    later.to_csv(tmp_path / "later.csv", index=False)
    importer.import_file(tmp_path / "later.csv", "survey_responses", db=str(small_copy), actor="test")
    new_hi = _bounds(small_copy)[1]
    assert new_hi == hi + dt.timedelta(days=40)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    f = at.session_state["filters"]
    assert at.sidebar.selectbox(key="flt_period").value == LAST_12_MONTHS
    assert f.date_from == preset_range(LAST_12_MONTHS, lo, new_hi)[0] and f.date_to is None


def test_a_store_without_answers_has_no_period_select(tmp_path, make_app):
    path = tmp_path / "empty.duckdb"
    with store.connect(str(path), read_only=False) as c:  # as `python -m cxmetrics init` leaves it
        c.execute("INSERT OR IGNORE INTO meta VALUES ('initialised', 'test')")
    at = make_app(path, page="pages/02_nps_drivers.py")
    assert not at.exception, [e.value for e in at.exception]
    assert not [s for s in at.sidebar.selectbox if s.key == "flt_period"]


def test_the_bench_measures_the_sidebars_last_12_months_and_a_closed_quarter(small_db):
    from cxmetrics.tools import bench

    lo, hi = _bounds(small_db)
    v = bench.views(small_db)
    r12 = v["last 12 months"]["filters"]
    assert (D.fromisoformat(r12["date_from"]), D.fromisoformat(r12["date_to"])) == preset_range(LAST_12_MONTHS, lo, hi)
    q = v["one quarter"]["filters"]
    start, end = D.fromisoformat(q["date_from"]), D.fromisoformat(q["date_to"])
    assert (start, end) == preset_range(LAST_QUARTER, lo, end) and end < hi  # a whole quarter, closed before the end
    assert preset_range(LAST_QUARTER, lo, hi - dt.timedelta(days=1)) == (start, end)


# ----------------------------------------------------------------------------- the CLI's --range


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cxmetrics", *args], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[1])


def test_the_cli_takes_the_sidebars_named_ranges(small_db):
    lo, hi = _bounds(small_db)
    start = preset_range(LAST_12_MONTHS, lo, hi)[0]
    named = _cli("metrics", "nps", "--db", str(small_db), "--range", "last-12-months", "--json")
    dated = _cli("metrics", "nps", "--db", str(small_db), "--from", start.isoformat(), "--json")
    everything = _cli("metrics", "nps", "--db", str(small_db), "--json")
    assert named.returncode == dated.returncode == everything.returncode == 0, named.stderr
    assert json.loads(named.stdout) == json.loads(dated.stdout)  # the same days, left open at the end as the app
    assert json.loads(named.stdout)["n"] < json.loads(everything.stdout)["n"]
    q = _cli("metrics", "nps", "--db", str(small_db), "--range", "last-quarter", "--json")
    a, b = preset_range(LAST_QUARTER, lo, hi)
    assert json.loads(q.stdout)["filters"] == json.loads(_cli(
        "metrics", "nps", "--db", str(small_db), "--from", a.isoformat(), "--to", b.isoformat(), "--json").stdout)["filters"]


def test_the_cli_refuses_a_range_with_dates_or_one_it_does_not_know(small_db, tmp_path):
    both = _cli("metrics", "nps", "--db", str(small_db), "--range", "year-to-date", "--from", "2025-01-01")
    assert both.returncode == 1 and "not both" in both.stderr
    unknown = _cli("metrics", "nps", "--db", str(small_db), "--range", "last-decade")
    assert unknown.returncode == 2 and "last-12-months" in unknown.stderr  # argparse lists the choices
    empty = tmp_path / "empty.duckdb"
    assert _cli("init", "--db", str(empty)).returncode == 0
    none = _cli("metrics", "nps", "--db", str(empty), "--range", "last-12-months")
    assert none.returncode == 1 and "no survey responses" in none.stderr, none.stderr


def test_the_reports_period_and_a_named_range_are_not_mixed(small_db, tmp_path):
    out = tmp_path / "update.html"
    for extra in (("--range", "last-12-months"), ("--from", "2025-01-01")):
        r = _cli("report", "--db", str(small_db), "--format", "html", "--out", str(out), "--period", "2025-Q3", *extra)
        assert r.returncode == 1 and "not both" in r.stderr, (extra, r.stderr)
    assert not out.exists()



@pytest.mark.parametrize("page, module", [("pages/09_initiatives.py", "impact"), ("pages/05_customer_value.py", "btyd")])
def test_a_page_says_which_of_its_figures_a_date_range_does_not_narrow(demo_db, make_app, page, module):
    """The initiatives' impacts and the non-contractual CLV take every month whatever the range:
    under a range their pages say so, without one they do not."""
    from cxmetrics.metrics import btyd, impact

    note = {"impact": impact, "btyd": btyd}[module].WHOLE_HISTORY
    at = make_app(demo_db, page=page)
    assert not any(note in c.value for c in at.caption)
    at.sidebar.selectbox(key="flt_period").select(LAST_12_MONTHS).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(note in c.value for c in at.caption)
