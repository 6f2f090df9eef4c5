"""The Spark engine on a real local Spark session (``local[2]``, one per module): the DuckDB SQL
constructs our metrics use give DuckDB's answers on literal data, parameters are bound, metric
functions give DuckDB's figures on the exported demo company, and ``lake export``/``lake check``
publish and check a lake.

Select with ``-m spark``. Needs Java 17+ and pyspark (``scripts/test.sh`` installs both).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import re
import shutil

import duckdb
import pandas as pd
import pytest

pytest.importorskip("pyspark")
if shutil.which("java") is None:
    pytest.skip("the Spark engine needs Java 17+ (scripts/test.sh installs openjdk-17-jre-headless)",
                allow_module_level=True)

from cxmetrics import cli, store, views  # noqa: E402
from cxmetrics.core import roles  # noqa: E402
from cxmetrics.core.filters import Filters  # noqa: E402
from cxmetrics.core.output import jsonable  # noqa: E402
from cxmetrics.metrics import nps, scores, theme_store  # noqa: E402
from cxmetrics.registers import demo, lake  # noqa: E402
from cxmetrics.store import engines, relations, schema, summaries  # noqa: E402
from cxmetrics.store.engines import lake_kept, lake_summaries, sqlmap  # noqa: E402
from cxmetrics.store.engines import spark as spark_engine  # noqa: E402
from cxmetrics.story import narrative  # noqa: E402
from cxmetrics.views import executive  # noqa: E402

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark"),
              # PySpark 4.3 warns about pandas 3 on every conversion; our frames are checked below
              pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
              pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")]

#: Relative tolerance for figures computed on both engines (floating sums in another order).
RTOL = 1e-9


@pytest.fixture(scope="module")
def small_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("spark") / "demo.duckdb"
    demo.build(str(path), customers=1_500, seed=7)
    return path


@pytest.fixture(scope="module")
def lake_dir(small_db, tmp_path_factory):
    out = tmp_path_factory.mktemp("spark") / "lake"
    lake.export(small_db, out)
    return out


@pytest.fixture(scope="module")
def sc(lake_dir):
    with engines.connect("spark", lake=lake_dir) as con:
        yield con
    spark_engine.session().stop()


@pytest.fixture(scope="module")
def dc(small_db):
    with store.connect(small_db) as con:
        yield con


def _same(a, b) -> None:
    """Two results equal: numbers to RTOL, dates as dates, everything else exactly."""
    assert len(a) == len(b), (a, b)
    for x, y in zip(a, b, strict=True):
        if isinstance(x, tuple | list):
            _same(x, y)
        elif isinstance(x, float) or isinstance(y, float):
            assert (x is None and y is None) or math.isclose(float(x), float(y), rel_tol=RTOL), (a, b)
        elif isinstance(x, dt.datetime) or isinstance(y, dt.datetime):
            assert pd.Timestamp(x) == pd.Timestamp(y), (a, b)
        else:
            assert x == y, (a, b)


# ------------------------------------------------------------------ constructs, one by one

#: (construct, DuckDB SQL over literal data, parameters): each must give DuckDB's rows on Spark.
CONSTRUCTS = [
    ("arg_max", "SELECT g, arg_max(v, k) AS v FROM (VALUES ('a', 'x', 1), ('a', 'y', 3), ('b', 'z', 2)) t(g, v, k) "
                "GROUP BY g ORDER BY g", {}),
    ("list_contains", "SELECT s FROM (VALUES ('smb'), ('consumer'), ('enterprise')) t(s) "
                      "WHERE list_contains($segments, s) ORDER BY s", {"segments": ["smb", "enterprise"]}),
    ("date_diff day", "SELECT date_diff('day', DATE '2024-01-31', DATE '2024-03-01') AS d", {}),
    ("date_diff month boundary", "SELECT date_diff('month', a, b) AS m FROM (VALUES (DATE '2024-01-31', DATE '2024-02-01'), "
                                 "(DATE '2023-12-15', DATE '2025-01-14'), (DATE '2024-05-01', DATE '2024-03-31')) t(a, b) "
                                 "ORDER BY ALL", {}),
    ("date_diff quarter and year", "SELECT date_diff('quarter', DATE '2024-03-31', DATE '2024-04-01') AS q, "
                                   "date_diff('year', DATE '2024-12-31', DATE '2025-01-01') AS y", {}),
    ("INTERVAL month end", "SELECT (DATE '2024-03-31' - INTERVAL 1 MONTH)::DATE AS a, "
                           "(DATE '2024-02-29' + INTERVAL 12 MONTH)::DATE AS b", {}),
    ("INTERVAL compare", "SELECT count(*) AS n FROM (VALUES (DATE '2023-06-30'), (DATE '2023-07-01'), (DATE '2024-01-01')) t(d) "
                         "WHERE d > (DATE '2024-06-30' - INTERVAL 12 MONTH)::DATE", {}),
    ("bit_count of bit_or", "SELECT g, bit_count(bit_or(1::UBIGINT << m::UBIGINT)) AS months "
                            "FROM (VALUES (1, 0), (1, 3), (1, 3), (2, 23)) t(g, m) GROUP BY g ORDER BY g", {}),
    ("FILTER (WHERE", "SELECT count(*) FILTER (WHERE nps >= 9) AS p, count(*) FILTER (WHERE nps <= 6) AS d, "
                      "sum(w) FILTER (WHERE nps >= 9) AS wp FROM (VALUES (10, 1.5), (9, 1.0), (3, 2.0), (7, 1.0)) t(nps, w)", {}),
    ("GROUP BY ALL, ORDER BY ALL with NULLs", "SELECT g, count(*) AS n FROM (VALUES ('b'), (NULL), ('a'), ('b')) t(g) "
                                              "GROUP BY ALL ORDER BY ALL", {}),
    ("USING", "SELECT r.customer_id, c.segment, r.nps FROM (VALUES ('c1', 9), ('c2', 4)) r(customer_id, nps) "
              "JOIN (VALUES ('c1', 'smb'), ('c2', 'consumer')) c(customer_id, segment) USING (customer_id) ORDER BY 1", {}),
    ("::DATE casts of parameters", "SELECT $landmark::DATE AS l, coalesce($end::DATE, DATE '2024-12-31') AS e",
     {"landmark": dt.date(2024, 1, 15), "end": None}),
    ("$name parameters with NULL", "SELECT coalesce($date_from, min(d)) AS lo FROM (VALUES (DATE '2024-02-01'), "
                                   "(DATE '2024-01-05')) t(d)", {"date_from": None}),
    ("date_trunc", "SELECT date_trunc('quarter', DATE '2024-05-17') AS q, date_trunc('week', DATE '2024-05-17') AS w, "
                   "date_trunc('month', DATE '2024-05-17') AS m", {}),
    ("range end excluded", "SELECT unnest(range(0, 37, 3)) AS k ORDER BY k", {}),
    ("generate_series of months", "SELECT unnest(generate_series(DATE '2024-01-01', DATE '2024-04-01', INTERVAL 1 MONTH))::DATE "
                                  "AS m ORDER BY m", {}),
    ("to_months", "SELECT (DATE '2024-01-31' + to_months(date_diff('month', DATE '2024-01-31', DATE '2024-03-01')))::DATE AS d", {}),
    ("to_days", "SELECT count(*) FILTER (WHERE b <= a + to_days($days)) AS n FROM (VALUES (DATE '2024-01-01', DATE '2024-01-08'), "
                "(DATE '2024-01-01', DATE '2024-01-09')) t(a, b)", {"days": 7}),
    ("greatest, least, coalesce", "SELECT greatest(0, date_diff('day', greatest(DATE '2024-01-01', DATE '2024-02-01'), "
                                  "least(coalesce(NULL, DATE '2024-03-01'), DATE '2024-04-01'))) AS days", {}),
    ("decimal division is DOUBLE", "SELECT 100.0 * (sum(CASE WHEN v > 1 THEN 1.0 ELSE 0 END) / count(*)) AS p, "
                                   "sum(v * 1.5) / 7 AS q FROM (VALUES (1), (2), (3), (5), (8), (13), (21)) t(v)", {}),
    ("round(x * 100) / 100 of a DOUBLE at a tie, round of a DECIMAL",
     "SELECT round(m * 100) / 100 AS r, round(1.005, 2) AS d FROM (VALUES (63.735::DOUBLE), (130.915::DOUBLE), "
     "(16.365::DOUBLE), (-2.675::DOUBLE), (2.5::DOUBLE)) t(m) ORDER BY m", {}),
    ("unnest side by side", "SELECT k, t FROM (SELECT unnest($words) AS k, unnest($themes) AS t) z ORDER BY k, t",
     {"words": ["slow", "rude", "slow"], "themes": ["speed", "staff", "waiting"]}),
    ("arg_min of a struct key: the latest day, then the lowest id",
     "SELECT g, arg_min(v, {'d': date_diff('day', d, DATE '2000-01-01'), 'i': id}) AS v FROM (VALUES "
     "('a', 1, DATE '2024-01-02', 'r2'), ('a', 2, DATE '2024-01-02', 'r1'), ('a', 3, DATE '2024-01-01', 'r0'), "
     "('b', 4, DATE '2023-05-05', 'x')) t(g, v, d, id) GROUP BY g ORDER BY g", {}),
    ("arg_min with FILTER", "SELECT g, arg_min(v, id) FILTER (WHERE v IS NOT NULL) AS v FROM (VALUES ('a', NULL, 'r0'), "
                            "('a', 4, 'r2'), ('a', 6, 'r1'), ('b', 2, 'x')) t(g, v, id) GROUP BY g ORDER BY g", {}),
    ("running last_value IGNORE NULLS and bool_or, lead of a date plus one",
     "SELECT c, d + 1 AS f, lead(d) OVER (PARTITION BY c ORDER BY d) + 1 AS t, last_value(v IGNORE NULLS) OVER w AS v, "
     "bool_or(x) OVER w AS x FROM (VALUES ('a', DATE '2024-01-01', 5, false), ('a', DATE '2024-01-31', NULL, true), "
     "('a', DATE '2024-02-01', 7, false), ('b', DATE '2024-01-01', NULL, false)) t(c, d, v, x) "
     "WINDOW w AS (PARTITION BY c ORDER BY d ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) ORDER BY c, f", {}),
    ("list(x ORDER BY k) with NULLs, sliced, summed and counted",
     "WITH l AS (SELECT g, list(v ORDER BY k) AS vs FROM (VALUES ('a', 3, 1.5), ('a', 1, NULL), ('a', 2, 2.0), "
     "('a', 4, NULL), ('b', 1, NULL), ('b', 2, -1.0), ('c', 1, NULL)) t(g, k, v) GROUP BY g) "
     "SELECT g, vs, list_slice(vs, 2, 3) AS mid, list_sum(vs) AS s, list_count(vs) AS n, "
     "list_sum(list_slice(vs, 1, 1)) AS first_sum, list_count(list_slice(vs, 3, 2)) AS none FROM l ORDER BY g", {}),
    ("IN (SELECT unnest($list))", "SELECT k FROM (VALUES ('a'), ('b'), ('c')) t(k) WHERE k IN (SELECT unnest($keys)) ORDER BY k",
     {"keys": ["a", "c"]}),
]


@pytest.mark.parametrize(("construct", "sql", "params"), CONSTRUCTS, ids=[c[0] for c in CONSTRUCTS])
def test_construct_gives_duckdbs_answer(sc, construct, sql, params):
    want = duckdb.connect().execute(sql, params).fetchall()
    got = sc.execute(sql, params).fetchall()
    assert want, f"{construct}: the literal data must produce rows"
    _same(want, got)


def test_temp_table_is_created_read_and_dropped(sc):
    """``CREATE OR REPLACE TEMP TABLE … AS`` with a bound parameter (what ``store.temp_table``
    runs) is kept for the session, readable, and dropped by ``DROP TABLE IF EXISTS``."""
    sc.execute("CREATE OR REPLACE TEMP TABLE cx_tmp_promoters AS SELECT customer_id FROM survey_responses "
               "WHERE nps >= $cut", {"cut": 9})
    n = sc.execute("SELECT count(*) FROM cx_tmp_promoters").fetchone()[0]
    want = sc.execute("SELECT count(*) FROM survey_responses WHERE nps >= 9").fetchone()[0]
    assert n == want and n > 0
    sc.execute("DROP TABLE IF EXISTS cx_tmp_promoters")
    assert "cx_tmp_promoters" not in sc.tables()


def test_a_sample_is_refused_rather_than_translated():
    """Spark's TABLESAMPLE (n ROWS) takes the first n rows and a random draw differs by engine: a
    DuckDB sample has no translation (the product samples by the MD5 of a key instead)."""
    for sql in ("SELECT * FROM customers USING SAMPLE reservoir(50 ROWS) REPEATABLE (7)",
                "SELECT count(*) FROM (SELECT * FROM customers USING SAMPLE 10%) t"):
        with pytest.raises(ValueError, match="USING SAMPLE has no Spark translation"):
            sqlmap.translate(sql)


def test_values_are_bound_never_formatted(sc):
    """A value with a quote is a value: the SQL sent to Spark carries the marker, not the text."""
    sql = "SELECT count(*) AS n FROM customers WHERE segment = $segment"
    assert ":segment" in sqlmap.translate(sql) and "O'Brien" not in sqlmap.translate(sql)
    assert sc.execute(sql, {"segment": "x' OR '1'='1"}).fetchone()[0] == 0
    assert sc.execute(sql, {"segment": "smb"}).fetchone()[0] > 0


def test_writes_to_the_lake_are_refused(sc):
    with pytest.raises(spark_engine.EngineError, match="read-only"):
        sc.execute("DELETE FROM customers")
    with pytest.raises(spark_engine.EngineError, match="read-only"):
        sc.execute("DROP TABLE customers")


# ------------------------------------------------------------------ engine selection


def test_engine_choice(monkeypatch, small_db):
    monkeypatch.delenv("CX_ENGINE", raising=False)
    assert engines.engine_name() == "duckdb"
    monkeypatch.setenv("CX_ENGINE", "Spark")
    assert engines.engine_name() == "spark"
    with pytest.raises(ValueError, match="unknown engine"):
        engines.engine_name("postgres")
    monkeypatch.delenv("CX_LAKE", raising=False)
    with pytest.raises(ValueError, match="needs a lake"), engines.connect("spark"):
        pass
    with engines.connect("duckdb", db=small_db) as con:
        assert isinstance(con, duckdb.DuckDBPyConnection)
    parser = argparse.ArgumentParser()
    engines.add_arguments(parser)
    args = parser.parse_args(["--engine", "spark", "--lake", "/lake"])
    assert (args.engine, args.lake) == ("spark", "/lake")
    with pytest.raises(SystemExit):
        parser.parse_args(["--engine", "postgres"])


# ------------------------------------------------------------------ metrics, end to end


def test_nps_overall_and_by_segment_match_duckdb(sc, dc):
    f = Filters()
    a, b = nps.overall(dc, f), nps.overall(sc, f)
    assert a.n == b.n > 0
    for attr in ("estimate", "ci_low", "ci_high", "se"):
        assert math.isclose(getattr(a, attr), getattr(b, attr), rel_tol=RTOL), attr
    ta, tb = nps.by(dc, f, dim="segment").table, nps.by(sc, f, dim="segment").table
    pd.testing.assert_frame_equal(ta, tb, check_dtype=False, rtol=RTOL)


def test_filtered_nps_and_csat_match_duckdb(sc, dc):
    """Dates, a segment list and a region list reach Spark as bound parameters."""
    f = Filters(date_from=dt.date(2024, 1, 1), segments=("smb", "enterprise"), regions=("north", "south", "east", "west"))
    ta, tb = nps.by(dc, f, dim="region").table, nps.by(sc, f, dim="region").table
    assert ta["n"].sum() > 0
    pd.testing.assert_frame_equal(ta, tb, check_dtype=False, rtol=RTOL)
    ca, cb = scores.score(dc, f, metric="csat").table, scores.score(sc, f, metric="csat").table
    pd.testing.assert_frame_equal(ca, cb, check_dtype=False, rtol=RTOL)


# ------------------------------------------------------------------ lake export and check


def test_export_writes_every_contract_table(lake_dir, dc):
    manifest = json.loads((lake_dir / lake.MANIFEST).read_text())
    assert manifest["rows"] == store.row_counts(dc)
    assert manifest["data_version"] == store.data_version(dc)
    for name in schema.LOAD_ORDER:
        assert (lake_dir / f"{name}.parquet").is_file()
    with pytest.raises(ValueError, match="not empty"):
        lake.export(None, lake_dir)


def test_check_passes_on_the_exported_demo(sc, dc):
    report = lake.check(sc)
    assert report.ok, report.text()
    assert report.rows == store.row_counts(dc)
    assert "every contract check passed" in report.text()


@pytest.fixture(scope="module")
def broken_lake(lake_dir, tmp_path_factory):
    """The demo lake with planted faults: an out-of-range score, a duplicate key and an orphan in
    survey_responses, customers without region, amounts stored as text, followups missing."""
    out = tmp_path_factory.mktemp("spark") / "broken"
    shutil.copytree(lake_dir, out)
    (out / "followups.parquet").unlink()
    con = duckdb.connect()
    src = str(lake_dir / "survey_responses.parquet")
    first = con.execute("SELECT response_id FROM read_parquet($p) ORDER BY 1 LIMIT 2", {"p": src}).fetchall()
    rel = con.sql(
        "SELECT * FROM read_parquet($p) UNION ALL "
        "SELECT * REPLACE ('planted-11' AS response_id, 11 AS nps) FROM (SELECT * FROM read_parquet($p) ORDER BY response_id LIMIT 1) "
        "UNION ALL SELECT * REPLACE ('nobody' AS customer_id) FROM (SELECT * FROM read_parquet($p) ORDER BY response_id LIMIT 2)",
        params={"p": src})
    rel.write_parquet(str(out / "survey_responses.parquet"))
    con.sql("SELECT * EXCLUDE (region) FROM read_parquet($p)", params={"p": str(lake_dir / "customers.parquet")}) \
        .write_parquet(str(out / "customers.parquet"))
    con.sql("SELECT * REPLACE (CAST(amount AS VARCHAR) AS amount) FROM read_parquet($p)",
            params={"p": str(lake_dir / "transactions.parquet")}).write_parquet(str(out / "transactions.parquet"))
    return out, [r[0] for r in first]


def test_lake_check_reports_problems_by_table_column_and_rows(broken_lake, capsys):
    """``lake check`` on the planted faults: each found once, by table, column and rule, with the
    offending rows' keys and values; exit code 3 and JSON from the CLI."""
    out, first = broken_lake
    assert cli.main(["lake", "check", "--lake", str(out), "--json"]) == 3
    doc = json.loads(capsys.readouterr().out)
    assert not doc["ok"]
    found = {(p["table"], p["column"], p["check"]): p for p in doc["problems"]}
    assert set(found) == {
        ("survey_responses", "nps", "range"), ("survey_responses", "response_id", "key"),
        ("survey_responses", "customer_id", "parent"), ("customers", "region", "columns"),
        ("transactions", "amount", "type"), ("followups", None, "table"),
    }, doc
    assert found[("survey_responses", "nps", "range")]["examples"] == [{"response_id": "planted-11", "nps": 11}]
    orphans = found[("survey_responses", "customer_id", "parent")]
    assert orphans["rows"] == 2 and [e["response_id"] for e in orphans["examples"]] == first
    assert found[("survey_responses", "response_id", "key")]["rows"] == 2


# ------------------------------------------------------------------ every metrics command


#: `metrics` commands compared (DuckDB reads its summary tables, Spark the raw relations).
COMMANDS = ["nps", "nps --by segment", "nps --period quarter", "nps --weighted",
            "nps --by region --segment smb --from 2024-01-01", "csat", "ces --by touchpoint", "churn", "clv",
            "wallet", "complaints", "impact", "alignment", "pnl"]


def _numbers_equal(a, b, path="") -> list[str]:
    """Differences between two JSON documents: numbers at a relative 1e-6, the rest exactly;
    the SQL text (``queries``, a query's ``sql``: summary-backed or lean tables on DuckDB, raw
    relations on Spark) left out."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return [f"{path}: keys {sorted(set(a) ^ set(b))}"]
        return [d for k in a if k not in ("queries", "sql") for d in _numbers_equal(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} vs {len(b)} items"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _numbers_equal(x, y, f"{path}[{i}]")]
    if isinstance(a, float) or isinstance(b, float):
        same = (a is not None and b is not None
                and (math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9) or (a != a and b != b)))
        return [] if same else [f"{path}: {a} vs {b}"]
    return [] if a == b else [f"{path}: {a!r} vs {b!r}"]


@pytest.mark.slow
def test_every_metrics_command_gives_duckdbs_figures(sc, small_db, lake_dir, capsys):
    """Each `metrics … --json --engine spark --lake DIR` prints the figures DuckDB prints for the
    store the lake was exported from."""
    def run(cmd, *engine):
        assert cli.main(["metrics", *cmd.split(), "--db", str(small_db), "--json", *engine]) == 0, cmd
        return json.loads(capsys.readouterr().out)

    want = {cmd: run(cmd) for cmd in COMMANDS}
    diffs = {cmd: _numbers_equal(want[cmd], run(cmd, "--engine", "spark", "--lake", str(lake_dir))) for cmd in COMMANDS}
    assert not any(diffs.values()), {k: v[:5] for k, v in diffs.items() if v}


# ------------------------------------------------------------------ summaries on Spark, pages, report, app


@pytest.fixture(scope="module")
def built_lake(lake_dir, sc, tmp_path_factory):
    """A copy of the demo lake with its summaries built on Spark by the CLI."""
    out = tmp_path_factory.mktemp("spark") / "built"
    shutil.copytree(lake_dir, out)
    assert cli.main(["summaries", "build", "--engine", "spark", "--lake", str(out), "--json"]) == 0
    return out


@pytest.fixture(scope="module")
def sb(built_lake):
    with engines.connect("spark", lake=built_lake) as con:
        yield con


def _page_functions():
    """Every page's data function, reached through the page registry."""
    out = []
    for spec in roles.PAGES:
        out.append((spec.title, views.data_for(spec)))
    return out


def _doc(value):
    return json.loads(json.dumps(jsonable(value), default=str))


#: A query reading a raw contract table (the DuckDB-dialect text the engine is handed).
RAW_READ = re.compile(r'\b(?:FROM|JOIN)\s+"?(survey_responses|customers|complaints|churn_events|transactions)\b', re.I)


@pytest.mark.slow
def test_pages_read_the_stored_summaries_and_give_duckdbs_figures(sb, dc, monkeypatch):
    """After ``summaries build`` every summary is current on the lake, each relation binds to its
    stored table, the pages' queries read those tables, and every page gives the DuckDB figures.
    The NPS & drivers page reads no raw table: the clustered SEs' per-customer sums are a kept fit
    of the build ("clusters")."""
    assert sb.summaries is not None and sb.summaries["lake_version"] == sb.version
    for name in summaries.DEPENDS:
        assert summaries.current(sb, name), name
    assert summaries.source(sb, summaries.RESPONSES_TABLE).stored
    seen: list[str] = []
    names: dict[str, str] = {}
    run, execute = sb.execute, store._execute

    def recording(sql, params=None):
        seen.append(sql)
        return run(sql, params)

    def named(con, query, fetch, copy):
        names[query.sql] = query.name
        return execute(con, query, fetch, copy)

    monkeypatch.setattr(store, "_execute", named)
    sb.execute = recording
    try:
        diffs = {}
        for title, fn in _page_functions():
            seen.clear()
            got = _doc(fn(sb, Filters()))
            diffs[title] = _numbers_equal(_doc(fn(dc, Filters())), got)
            if title == "NPS & drivers":
                nps_sql = list(seen)
    finally:
        del sb.execute
    assert not any(diffs.values()), {k: v[:5] for k, v in diffs.items() if v}
    assert any(summaries.RESPONSES_TABLE in q for q in nps_sql)
    raw = {names.get(q, q[:300]) for q in nps_sql if RAW_READ.search(q)}
    assert not raw, raw


def test_stale_or_foreign_summaries_are_not_used(built_lake, sb, small_db, tmp_path, monkeypatch):
    """A lake table rewritten after the build gives another data version: the stored summaries
    are not attached and the figures come from the new rows (DuckDB's on the same change). Code
    whose relations differ (another format hash) does not use them either."""
    monkeypatch.setattr(summaries, "FORMAT", summaries.FORMAT + 1000)
    assert not summaries.current(sb, summaries.RESPONSES_TABLE)
    assert not summaries.source(sb, summaries.RESPONSES_TABLE).stored
    monkeypatch.undo()
    stale = tmp_path / "stale"
    shutil.copytree(built_lake, stale)
    path = stale / "survey_responses.parquet"
    duckdb.connect().sql("SELECT * FROM read_parquet($p) WHERE nps <> 10", params={"p": str(built_lake / path.name)}) \
        .write_parquet(str(path))
    changed = tmp_path / "changed.duckdb"
    shutil.copy(small_db, changed)
    with store.connect(changed, read_only=False) as con:  # the same change in the embedded store
        con.execute("DELETE FROM survey_responses WHERE nps = 10")
        store.bump_version(con)
    with engines.connect("spark", lake=stale) as con, store.connect(changed) as dcon:
        assert con.version != sb.version
        assert con.summaries is None and lake_summaries.read_state(con)["lake_version"] == sb.version
        assert not summaries.current(con, summaries.RESPONSES_TABLE)
        got, want = nps.overall(con, Filters()), nps.overall(dcon, Filters())
        assert got.n == want.n < nps.overall(sb, Filters()).n
        assert math.isclose(got.estimate, want.estimate, rel_tol=RTOL)


def test_the_landmark_revenue_to_a_ranges_end_from_the_lakes_monthly_revenue_is_duckdbs(sb, dc):
    """A date range's 12-month revenue per landmark customer, answered on Spark from the built
    lake's revenue by month (its whole months sliced, a range ending mid-month reading its partial
    months from the transactions), gives the embedded store's rows."""
    assert summaries.current(sb, relations.REVENUE_MONTHS.name)
    last = dc.execute("SELECT max(occurred_on) FROM transactions").fetchone()[0]
    L = summaries.landmark(dc).landmark
    month_end = dt.date(last.year, last.month, 1) - dt.timedelta(days=1)
    mid_month = (month_end - dt.timedelta(days=40)).replace(day=15)
    for end, partial in ((month_end, False), (mid_month, True)):
        fast = summaries.source(sb, relations.LANDMARK_REVENUE.name, Filters(), landmark=L, end=end)
        assert "summary_revenue_months" in fast.sql and ("FROM transactions t" in fast.sql) == partial
        got = sorted(sb.execute(f"SELECT * FROM {fast.sql} x", fast.params).fetchall())
        want = summaries.source(dc, relations.LANDMARK_REVENUE.name, Filters(), landmark=L, end=end)
        want = sorted(dc.execute(f"SELECT * FROM {want.sql} x", want.params).fetchall())
        assert len(want) > 50
        _same(want, got)


def test_the_answer_spells_on_spark_are_duckdbs_rows(small_db, tmp_path):
    """The answer spells' definition (lead and a filtered minimum over the rows after each answer,
    ordered by day and then by response id from the highest) gives DuckDB's rows on Spark, on the
    demo with same-day answers planted: lower and higher ids, another score, no stated share of
    wallet, another department."""
    db = tmp_path / "ties.duckdb"
    shutil.copyfile(small_db, db)
    rel = "survey = 'relationship' AND nps IS NOT NULL"
    with store.connect(str(db), read_only=False) as con, store.transaction(con):
        con.execute(f"""INSERT INTO survey_responses SELECT * REPLACE ('0' || response_id AS response_id,
            (nps + 5) % 11 AS nps, CASE WHEN hash(response_id) % 2 = 0 THEN NULL END AS share_of_wallet_pct,
            CASE WHEN hash(response_id) % 4 = 1 THEN 'billing' ELSE department END AS department)
            FROM survey_responses WHERE {rel} AND hash(response_id) % 3 <> 2""")
        con.execute(f"""INSERT INTO survey_responses SELECT * REPLACE (response_id || '~' AS response_id,
            (nps + 3) % 11 AS nps) FROM survey_responses WHERE {rel} AND hash(response_id) % 5 = 0""")
        store.bump_version(con)
    lake.export(db, tmp_path / "lake")
    sql = relations.RELATIONS["summary_answer_spells"].sql
    with store.connect(str(db)) as con:
        want = sorted(con.execute(f"SELECT * FROM ({sql}) s").fetchall(), key=lambda r: r[5])  # by response id
        same_day = con.execute("SELECT count(*) FROM (SELECT * FROM summary_answer_spells "
                               "WHERE next_any = responded_on)").fetchone()[0]
    with engines.connect("spark", lake=tmp_path / "lake") as con:
        got = sorted(con.execute(f"SELECT * FROM ({sql}) s").fetchall(), key=lambda r: r[5])
    assert len(want) > 1_000 and same_day > 500
    _same(want, got)


def test_summary_detractors_on_spark_gives_the_hand_written_rows_and_duckdbs(sc, dc, lake_dir, tmp_path):
    """The detractors' definition (window frames, LEAD, ROW_NUMBER, CASE) on Spark: the hand-made
    edge cases of ``tests/test_detractors.py`` (a follow-up on the answer's day, ties on the next
    answer's day, a next answer without an NPS) give the rows written out by hand, and the demo
    lake gives DuckDB's rows."""
    from tests import test_detractors as edge

    db = edge.build_edge_store(tmp_path / "edge.duckdb")
    lake.export(db, tmp_path / "edge_lake")
    sql = summaries.relation_query(summaries.DETRACTORS_TABLE).sql
    cols = ", ".join(edge.COLUMNS)
    with engines.connect("spark", lake=tmp_path / "edge_lake") as con:
        assert sorted(con.execute(f"SELECT {cols} FROM ({sql}) d").fetchall()) == edge.EXPECTED
    got = sorted(sc.execute(f"SELECT {cols} FROM ({sql}) d").fetchall())
    want = sorted(dc.execute(f"SELECT {cols} FROM ({sql}) d").fetchall())
    assert len(want) > 100 and got == want


def test_report_and_status_on_spark(sb, dc, built_lake, tmp_path, capsys):
    """The executive update built on Spark says what DuckDB's says (its sentences carry the
    headline figures); ``report --engine spark`` writes it; ``status --engine spark`` counts the
    lake's rows and says its summaries are current."""
    run = theme_store.latest(sb)  # exported with the lake, at its data version
    assert theme_store.is_current(sb, run) and run.codebook == theme_store.latest(dc).codebook
    want, _, _ = narrative.build(dc, Filters())
    got, _, _ = narrative.build(sb, Filters())
    assert [(s.title, s.sentences) for s in got] == [(s.title, s.sentences) for s in want]
    assert sum(len(s.sentences) for s in want) > 5
    assert len(executive.moved_data(sb, Filters()).table) == len(executive.moved_data(dc, Filters()).table)
    out = tmp_path / "update.html"
    assert cli.main(["report", "--engine", "spark", "--lake", str(built_lake), "--format", "html", "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000 and want[0].title in out.read_text()
    capsys.readouterr()
    assert cli.main(["status", "--engine", "spark", "--lake", str(built_lake), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["summaries_current"] and doc["data_version"] == sb.version
    assert {t["table"]: t["rows"] for t in doc["tables"]} == store.row_counts(dc)


@pytest.mark.slow
def test_a_lake_without_a_theme_run_gets_one_kept_on_spark(lake_dir, dc, tmp_path):
    """``summaries build``'s theme step on a lake with no kept run: the same discovery and
    classification as the embedded store's (same codebook, same assignments), kept in the lake at
    its data version, so "What moved" gives DuckDB's cells; once the lake's files change the run
    is stale (not used as kept) and a current run is left alone."""
    bare = tmp_path / "bare"
    shutil.copytree(lake_dir, bare)
    shutil.rmtree(bare / lake_kept.FOLDER)
    with engines.connect("spark", lake=bare) as con:
        assert theme_store.latest(con) is None and con.kept == ()
        out = theme_store.keep_on_lake(con)
        assert out is not None and out["data_version"] == con.version and out["tags"] > 0
    want_run = theme_store.latest(dc)
    with engines.connect("spark", lake=bare) as con:
        run = theme_store.latest(con)
        assert theme_store.is_current(con, run) and run.codebook == want_run.codebook
        assert theme_store.keep_on_lake(con) is None  # current: nothing to do
        n_tags = con.execute("SELECT count(*) FROM theme_tags").fetchone()[0]
        assert n_tags == dc.execute("SELECT count(*) FROM theme_tags").fetchone()[0]
        got, want = executive.moved_data(con, Filters()), executive.moved_data(dc, Filters())
        assert len(got.table) == len(want.table) and got.extra["sentences"] == want.extra["sentences"]
    (bare / "complaints.parquet").touch()  # another file time: another data version
    with engines.connect("spark", lake=bare) as con:
        assert not theme_store.is_current(con, theme_store.latest(con))


@pytest.mark.slow
def test_every_page_of_the_app_runs_on_spark(built_lake, small_db, make_app, monkeypatch):
    """AppTest of every page with CX_ENGINE=spark on the lake: no exception, the page's title;
    the Data page offers no upload and an edit on Finance review is refused with the reason."""
    monkeypatch.setenv("CX_ENGINE", "spark")
    monkeypatch.setenv("CX_LAKE", str(built_lake))
    for spec in roles.PAGES:
        role = "finance" if spec.title == "Finance review" else "analyst"
        at = make_app(small_db, role=role, page=spec.path, timeout=300)
        assert not at.exception, (spec.title, at.exception)
        assert at.title and at.title[0].value == spec.headline, spec.title
        if spec.title == "Data":
            assert any("pipelines" in i.value for i in at.info), [i.value for i in at.info]
            assert not at.get("file_uploader")
        if spec.title == "Finance review":
            at.number_input(key="fin_value").set_value(0.5)
            next(b for b in at.button if b.label == "Save new version").click().run()
            assert not at.exception, at.exception
            assert any("pipelines" in e.value for e in at.error), [e.value for e in at.error]


# ------------------------------------------------------------------ Spark Connect


@pytest.fixture(scope="module")
def connect_url(sc):
    """A Spark Connect server on the module's local session (its JVM, a free port): the client
    talks gRPC to it exactly as to a cluster's ``sc://host:15002``."""
    for dep in ("grpc", "grpc_status", "google.rpc", "zstandard"):
        pytest.importorskip(dep)
    import socket

    classic = spark_engine.session()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    classic._jsc.sc().conf().set("spark.connect.grpc.binding.port", str(port))
    service = classic._jvm.org.apache.spark.sql.connect.service.SparkConnectService
    service.start(classic._jsc.sc())
    return f"sc://localhost:{port}"  # the server ends with the module's session


def test_spark_connect_runs_the_same_code_path(connect_url, built_lake, sb, dc, monkeypatch):
    """With ``CX_SPARK_REMOTE`` the engine opens a Spark Connect session (no SparkContext, no
    RDDs): the stored summaries attach, a temp table is made and dropped, and the NPS page gives
    DuckDB's figures."""
    monkeypatch.setenv("CX_SPARK_REMOTE", connect_url)
    monkeypatch.setattr(spark_engine, "_SESSION", None)
    remote = spark_engine.session()
    assert type(remote).__module__.startswith("pyspark.sql.connect")
    try:
        with spark_engine.SparkConnection(built_lake, spark=remote) as con:
            assert con.summaries is not None and con.version == sb.version
            con.execute("CREATE OR REPLACE TEMP TABLE cx_tmp_c AS SELECT customer_id FROM customers WHERE segment = $s",
                        {"s": "smb"})
            assert con.execute("SELECT count(*) FROM cx_tmp_c").fetchone()[0] > 0
            con.execute("DROP TABLE IF EXISTS cx_tmp_c")
            fn = dict(_page_functions())["NPS & drivers"]
            diffs = _numbers_equal(_doc(fn(dc, Filters())), _doc(fn(con, Filters())))
            assert not diffs, diffs[:5]
    finally:
        remote.stop()


def test_bench_engine_spark_is_dispatched_and_reported(monkeypatch, tmp_path, capsys):
    """``bench --engine spark`` runs the Spark benchmark (:mod:`cxmetrics.tools.bench_spark`; its
    timings are reported, never asserted) and prints every page's row; ``--engine`` defaults to
    the DuckDB benchmark."""
    from cxmetrics import tools
    from cxmetrics.tools import bench_spark

    pages = {spec.title: {"s": 0.5} for spec in roles.PAGES}
    fake = {"machine": {"cpus": 2, "spark_master": "local[2]", "load_average_1min_at_start": 1.0,
                        "load_average_1min_at_end": 1.5},
            "scale": {"survey_responses": 20_000, "customers": 2_000, "transactions": 40_000},
            "duckdb": {"summaries_build_s": 3.0, "pages": pages},
            "spark": {"session_start_s": 9.0, "summaries_build_s": 60.0, "pages_summaries": pages,
                      "pages_raw": {**pages, "Data": {"error": "boom"}}}}
    seen = []
    monkeypatch.setattr(bench_spark, "run", lambda args, log=print: seen.append(args) or fake)
    assert tools.main(["bench", "--engine", "spark", "--customers", "10", "--out", str(tmp_path / "b.json")]) == 0
    out = capsys.readouterr().out
    assert seen and seen[0].customers == 10 and seen[0].spark_master == "local[2]"
    assert json.loads((tmp_path / "bench_spark.json").read_text())["spark"]["summaries_build_s"] == 60.0
    assert all(spec.title in out for spec in roles.PAGES) and "error" in out and "60.0s" in out
    assert tools.build_parser(load=("bench",)).parse_args(["bench"]).engine == "duckdb"
