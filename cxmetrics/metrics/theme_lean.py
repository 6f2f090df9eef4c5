"""The kept run's lean tables: what the Customer voice page reads under any filter, fast by design.

A kept theme run (:mod:`cxmetrics.metrics.theme_store`) classifies every verbatim once. Read
back through ``survey_responses`` and ``customers`` (string keys, ten million rows), a filtered
page would join and group the whole survey on every load. So the run also keeps, written once
with it (:func:`build`):

* ``theme_verbatims`` — one row per verbatim (``verbatim IS NOT NULL``), newest first (``vid`` is
  the rank by ``responded_on DESC, response_id``), with everything a filter or the page reads:
  day, NPS, CSAT, touchpoint, department, the customer's segment and region, an integer customer
  key ``cid``, the customer's adjustment stratum and acquisition date, the imported theme, whether
  the text is blank, and the text;
* ``theme_tagged`` — one row per (verbatim, theme) of the run's assignments with the same filter
  columns (no join at read time);
* ``theme_churn`` — the churn dates of those customers by ``cid``;
* ``theme_answers`` — every NPS answer (with or without a verbatim) counted by day, department,
  segment and region: the base of the points at stake;
* ``theme_nps_cells`` and ``theme_churn_cells`` — the unfiltered NPS and churn sums of
  :mod:`cxmetrics.metrics.theme_sums` per theme and stratum, further split by the customer's segment
  and region: a segment or region filter keeps or drops whole customers, so their sums are exactly
  the sums of the cells it keeps (a handful of rows);
* ``theme_feel`` — the annotated sample with its filter columns;
* ``theme_day_cells`` — mentions (a theme) and verbatims (no theme) counted by day, segment, region,
  touchpoint, department and whether the customer is known, with the NPS groups of the mentions: a
  date range or a department scope counts the mentions and trend from these cells (a few hundred
  thousand rows where the tagged rows are millions, at any scale), and What moved its theme shares;
* ``theme_nps_cells_by_department`` and ``theme_churn_cells_by_department`` — the same sums as the
  cells above, each customer's answers taken one department at a time (a customer who answered about
  two departments is a customer of each): a scope of one department without a date range is exactly
  its department's cells.

The last three (:data:`EXTRAS`) came after the others: a run kept by an older version has none
(:func:`extras_present`) and its readers count the rows, as before; :func:`write_extras` adds
them to a current run without a new one.

:func:`aggregate` returns the frames of :func:`cxmetrics.metrics.theme_sums.aggregate` for any
filters, with the same sums (so the same figures and intervals). Mentions and trend are counts over
the lean tables. The customer-clustered NPS sums and the churn outcome depend on each customer's
answers inside the filter, so a date range or a department scope (which keep part of a customer's
answers) needs per-customer rows: that is one grouped scan of ``theme_verbatims`` and one of
``theme_tagged`` by the integer key, date-pruned (the tables are in date order). Segment and region
alone read the cells.
"""

from __future__ import annotations

import duckdb

from cxmetrics import store
from cxmetrics.core import lazy
from cxmetrics.core.filters import Filters
from cxmetrics.metrics import text, theme_sums
from cxmetrics.store import stubs

pd = lazy.module("pandas")

TABLES = ("theme_verbatims", "theme_codes", "theme_tagged", "theme_churn", "theme_answers", "theme_nps_cells", "theme_churn_cells", "theme_month_cells",
          "theme_feel")
#: Written with the others but not required by :func:`present` (runs kept before they existed keep the lean path).
DAY_CELLS = "theme_day_cells"
EXTRAS = (DAY_CELLS, "theme_nps_cells_by_department", "theme_churn_cells_by_department")

_GROUPS = (("promoters", ">= 9"), ("passives", "BETWEEN 7 AND 8"), ("detractors", "<= 6"))
_Y = "CASE WHEN x.nps >= 9 THEN 1 WHEN x.nps <= 6 THEN -1 ELSE 0 END"


def cond(filters: Filters) -> tuple[str, dict]:
    """The filters on a lean table aliased ``x`` (day, segment, region and department columns)."""
    return filters.where(date_col="x.responded_on", customer="x", department_col="x.department")


# --------------------------------------------------------------------------- writing (inside the run)

def build(con: duckdb.DuckDBPyConnection) -> None:
    """(Re)write the lean tables from ``theme_tags`` and ``theme_annotations`` (inside the run's
    writing transaction)."""
    seg = stubs.segment_stratum("c.segment", "c.customer_id")
    stub = {"stub_stratum": stubs.STUB_STRATUM}
    con.execute(f"""
CREATE OR REPLACE TABLE theme_codes AS
SELECT 'stratum' AS kind, (row_number() OVER (ORDER BY stratum NULLS FIRST))::SMALLINT AS code, stratum AS name
FROM (SELECT DISTINCT {seg} AS stratum FROM customers c)
UNION ALL
SELECT 'theme', (row_number() OVER (ORDER BY theme))::SMALLINT, theme FROM (SELECT DISTINCT theme FROM theme_tags)""",
                stub)
    con.execute(f"""
CREATE OR REPLACE TABLE theme_verbatims AS
WITH r AS (SELECT r.response_id, r.customer_id, r.responded_on, r.nps, r.csat,
                  coalesce(r.touchpoint, '(relationship)') AS touchpoint, r.department, r.theme AS imported,
                  length(trim(r.verbatim)) = 0 AS blank, r.verbatim
           FROM survey_responses r WHERE r.verbatim IS NOT NULL),
x AS (SELECT r.*, c.customer_id IS NOT NULL AS known, c.segment, c.region, c.acquired_on,
             CASE WHEN c.customer_id IS NOT NULL THEN {seg} END AS stratum
      FROM r LEFT JOIN customers c ON c.customer_id = r.customer_id)
SELECT (row_number() OVER (ORDER BY x.responded_on DESC, x.response_id))::INTEGER AS vid, x.response_id,
       x.customer_id, CASE WHEN x.customer_id IS NOT NULL THEN (dense_rank() OVER (ORDER BY x.customer_id))::INTEGER
                      END AS cid,
       x.known, x.responded_on, x.nps, ({_Y})::TINYINT AS y, x.csat, x.touchpoint, x.department, x.segment, x.region,
       x.stratum, k.code AS sid, x.acquired_on, x.imported, x.blank, x.verbatim
FROM x LEFT JOIN theme_codes k ON k.kind = 'stratum' AND x.known AND k.name IS NOT DISTINCT FROM x.stratum
ORDER BY vid""", stub)
    con.execute("""
CREATE OR REPLACE TABLE theme_tagged AS
SELECT x.vid, x.cid, x.known, x.responded_on, x.nps, x.y, x.touchpoint, x.department, x.segment, x.region, t.theme,
       k.code AS tid
FROM theme_tags t JOIN theme_verbatims x USING (response_id) JOIN theme_codes k ON k.kind = 'theme' AND k.name = t.theme
ORDER BY x.vid, t.theme""")
    con.execute("""
CREATE OR REPLACE TABLE theme_churn AS
SELECT k.cid, ch.churned_on
FROM churn_events ch JOIN (SELECT DISTINCT cid, customer_id FROM theme_verbatims WHERE known) k USING (customer_id)""")
    con.execute("""
CREATE OR REPLACE TABLE theme_answers AS
SELECT r.responded_on, r.department, c.segment, c.region, count(r.nps) AS n, count(*) AS responses
FROM survey_responses r LEFT JOIN customers c ON c.customer_id = r.customer_id GROUP BY ALL ORDER BY 1""")
    con.execute(f"""
CREATE OR REPLACE TABLE theme_feel AS
SELECT a.language, a.sentiment, a.sentiment_method, a.sentiment_label, {", ".join(f"a.{e}" for e in text.PLUTCHIK)},
       x.responded_on, x.nps, x.touchpoint, x.department, x.segment, x.region
FROM theme_annotations a JOIN theme_verbatims x USING (response_id) WHERE NOT x.blank""")
    con.execute("""
CREATE OR REPLACE TABLE theme_month_cells AS
SELECT date_trunc('month', x.responded_on)::DATE AS responded_on, x.theme, x.segment, x.region, count(*) AS mentions,
       count(*) FILTER (WHERE x.nps >= 9) AS promoters, count(*) FILTER (WHERE x.nps BETWEEN 7 AND 8) AS passives,
       count(*) FILTER (WHERE x.nps <= 6) AS detractors
FROM theme_tagged x GROUP BY ALL
UNION ALL
SELECT date_trunc('month', x.responded_on)::DATE, NULL, x.segment, x.region, count(*), 0, 0, 0
FROM theme_verbatims x WHERE NOT x.blank GROUP BY ALL""")
    _write_cells(con, "theme_nps_cells", "theme_churn_cells", department=False)
    write_extras(con)


def _write_cells(con: duckdb.DuckDBPyConnection, nps: str, churn: str, *, department: bool) -> None:
    ca, ta = base_sql("x.department IS NOT NULL" if department else "TRUE", cells=True, department=department)
    con.execute(f"CREATE OR REPLACE TEMP TABLE cx_theme_ca AS {ca}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE cx_theme_ta AS {ta}")
    try:  # table names from this module
        con.execute(f"CREATE OR REPLACE TABLE {nps} AS "
                    + nps_sql("cx_theme_ca", "cx_theme_ta", cells=True, department=department))
        con.execute(f"CREATE OR REPLACE TABLE {churn} AS "
                    + churn_sql("cx_theme_ca", "cx_theme_ta", cells=True, department=department),
                    {"days": theme_sums.CHURN_DAYS})
    finally:
        con.execute("DROP TABLE IF EXISTS cx_theme_ca")
        con.execute("DROP TABLE IF EXISTS cx_theme_ta")


def write_extras(con: duckdb.DuckDBPyConnection) -> None:
    """(Re)write the :data:`EXTRAS` from the run's ``theme_tagged`` and ``theme_verbatims`` (with the
    other lean tables, or alone for a run kept before they existed)."""
    groups = ", ".join(f"count(*) FILTER (WHERE x.nps {c}) AS {k}" for k, c in _GROUPS)
    con.execute(f"""
CREATE OR REPLACE TABLE {DAY_CELLS} AS
SELECT * FROM (
    SELECT x.responded_on, x.theme, x.known, x.segment, x.region, x.touchpoint, x.department,
           count(*) AS mentions, {groups}
    FROM theme_tagged x GROUP BY ALL
    UNION ALL
    SELECT x.responded_on, NULL, x.known, x.segment, x.region, x.touchpoint, x.department, count(*), 0, 0, 0
    FROM theme_verbatims x WHERE NOT x.blank GROUP BY ALL)
ORDER BY responded_on DESC""")
    _write_cells(con, *EXTRAS[1:], department=True)


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    have = store.run(con, store.Query("theme_lean_tables", "SELECT table_name FROM duckdb_tables() WHERE "
                                      "database_name = current_database() AND schema_name = current_schema() "
                                      "AND table_name LIKE 'theme_%'"))
    return set(have["table_name"])


def present(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the store holds the lean tables (a run kept by an older version has none)."""
    return set(TABLES) <= _tables(con)


def extras_present(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the lean tables include the :data:`EXTRAS` (a run kept by an older version has none)."""
    return set(EXTRAS) <= _tables(con)


# --------------------------------------------------------------------------- reading

#: The tenure band's code (0 unknown, 1 0-11m, 2 12-23m, 3 24m+), as :data:`theme_sums._TENURE`, and back.
_TENURE_CODE = """(CASE WHEN {acq} IS NULL THEN 0 WHEN date_diff('month', {acq}, {first}) < 12 THEN 1
                        WHEN date_diff('month', {acq}, {first}) < 24 THEN 2 ELSE 3 END)::TINYINT"""
_TENURE_NAME = "CASE {c} WHEN 0 THEN 'unknown' WHEN 1 THEN '0-11m' WHEN 2 THEN '12-23m' ELSE '24m+' END"
_NAMES = """LEFT JOIN theme_codes tn ON tn.kind = 'theme' AND tn.code = s.tid
LEFT JOIN theme_codes sn ON sn.kind = 'stratum' AND sn.code = s.sid"""


def base_sql(where: str, *, cells: bool = False, department: bool = False) -> tuple[str, str]:
    """The two per-customer relations the NPS and churn sums read, each one grouped scan of a lean
    table by integer keys: ``ca`` (per customer in the filters: stratum code, acquisition date,
    first verbatim, first verbatim with an NPS answer, wt = NPS answers, yt = Σy, a_t = Σy², with
    y = +1/0/−1 and 0 without an answer) and ``ta`` (per customer and theme code: w1, y1, a1 and
    the first tagged day). ``cells`` adds the customer's segment and region; ``department`` makes the
    customer a customer per department (``f_department``) in both."""
    by = ", any_value(x.segment) AS f_segment, any_value(x.region) AS f_region" if cells else ""
    dep = "x.department AS f_department, " if department else ""
    ca = f"""SELECT x.cid, {dep}any_value(x.sid) AS sid, any_value(x.acquired_on) AS acq, min(x.responded_on) AS t0,
       min(x.responded_on) FILTER (WHERE x.nps IS NOT NULL) AS t_nps, count(x.nps)::INTEGER AS wt,
       sum(x.y)::INTEGER AS yt, sum(x.y * x.y)::INTEGER AS a_t{by}
FROM theme_verbatims x WHERE NOT x.blank AND x.known AND {where} GROUP BY ALL"""
    ta = f"""SELECT x.tid, x.cid, {dep}count(x.nps)::INTEGER AS w1, sum(x.y)::INTEGER AS y1, sum(x.y * x.y)::INTEGER AS a1,
       min(x.responded_on) AS t_first
FROM theme_tagged x WHERE x.known AND {where} GROUP BY ALL"""
    return ca, ta


def nps_sql(ca: str, ta: str, *, cells: bool = False, department: bool = False) -> str:
    """Per (theme, stratum, tenure) the NPS sums of :data:`cxmetrics.metrics.theme_sums.NPS_SQL` from
    the relations of :func:`base_sql` (table names or parenthesised queries; ``cells``: also by the
    customer's segment and region). With y ∈ {−1, 0, 1}, promoters = (Σy² + Σy)/2 and detractors =
    (Σy² − Σy)/2 exactly; the tenure band is taken at the customer's first verbatim with an answer."""
    extra, extra_t, extra_s, key = _extra(cells, department, "cu")
    return f"""
WITH cu AS (SELECT c.*, {_TENURE_CODE.format(acq="c.acq", first="c.t_nps")} AS ten FROM {ca} c WHERE c.wt > 0),
pt AS (SELECT t.* FROM {ta} t WHERE t.w1 > 0),
s AS (SELECT pt.tid, cu.sid, cu.ten{extra}, count(*) AS m, max(pt.w1) AS max_k,
             count(*) FILTER (WHERE pt.w1 = cu.wt) AS m_all, sum(pt.w1) AS w, sum(pt.y1) AS y, sum(pt.a1) AS a,
             sum(pt.y1 * pt.y1) AS yy, sum(pt.y1 * pt.w1) AS yw, sum(pt.w1 * pt.w1) AS ww,
             sum(pt.y1 * cu.yt) AS y_yt, sum(pt.y1 * cu.wt) AS y_wt, sum(pt.w1 * cu.yt) AS w_yt,
             sum(pt.w1 * cu.wt) AS w_wt
      FROM pt JOIN cu USING ({key}) GROUP BY ALL
      UNION ALL
      SELECT NULL, sid, ten{extra_t}, count(*), max(wt), 0, sum(wt), sum(yt), sum(a_t), sum(yt * yt), sum(yt * wt),
             sum(wt * wt), sum(yt * yt), sum(yt * wt), sum(wt * yt), sum(wt * wt)
      FROM cu GROUP BY ALL)
SELECT tn.name AS theme, sn.name AS segment, {_TENURE_NAME.format(c="s.ten")} AS tenure{extra_s}, s.m, s.max_k,
       s.m_all, s.w, s.y, (s.a + s.y) // 2 AS p, (s.a - s.y) // 2 AS d, s.yy, s.yw, s.ww, s.y_yt, s.y_wt, s.w_yt,
       s.w_wt
FROM s {_NAMES}"""


def churn_sql(ca: str, ta: str, *, cells: bool = False, department: bool = False) -> str:
    """Per (theme, stratum, tenure) the churn counts of :data:`cxmetrics.metrics.theme_sums.CHURN_SQL`
    from the relations of :func:`base_sql` (``cells``: also by the customer's segment and region):
    customers whose first verbatim leaves a year of follow-up, raised = a verbatim of the theme by then."""
    grp = _extra(cells, department, "f")[0]
    extra, extra_t, extra_s, key = _extra(cells, department, "o")
    return f"""
WITH ends AS (SELECT max(responded_on) - $days::INTEGER AS cutoff FROM theme_answers),
first AS (SELECT c.*, {_TENURE_CODE.format(acq="c.acq", first="c.t0")} AS ten FROM {ca} c
          WHERE c.t0 <= (SELECT cutoff FROM ends)),
outcome AS (SELECT f.cid, f.sid, f.ten{grp},
                   coalesce(bool_or(ch.churned_on > f.t0 AND ch.churned_on <= f.t0 + $days::INTEGER), FALSE) AS churned
            FROM first f LEFT JOIN theme_churn ch USING (cid) GROUP BY ALL),
raised AS (SELECT t.* FROM {ta} t WHERE t.t_first <= (SELECT cutoff FROM ends)),
s AS (SELECT r.tid, o.sid, o.ten{extra}, count(*) AS n, count(*) FILTER (WHERE o.churned) AS k
      FROM raised r JOIN outcome o USING ({key}) GROUP BY ALL
      UNION ALL SELECT NULL, sid, ten{extra_t}, count(*), count(*) FILTER (WHERE churned) FROM outcome GROUP BY ALL)
SELECT tn.name AS theme, sn.name AS segment, {_TENURE_NAME.format(c="s.ten")} AS tenure{extra_s}, s.n, s.k
FROM s {_NAMES}"""


def _extra(cells: bool, department: bool, alias: str) -> tuple[str, str, str, str]:
    """The cells' extra grouping columns (on ``alias``, bare, on ``s``) and the per-customer join key."""
    cols = (["f_segment", "f_region"] if cells else []) + (["f_department"] if department else [])
    return ("".join(f", {alias}.{c}" for c in cols), "".join(f", {c}" for c in cols),
            "".join(f", s.{c}" for c in cols), "cid, f_department" if department else "cid")


_NPS_SUMS = ("m", "m_all", "w", "y", "p", "d", "yy", "yw", "ww", "y_yt", "y_wt", "w_yt", "w_wt")


def customer_level(filters: Filters) -> bool:
    """Whether the filters keep or drop whole customers (segment, region, nothing): then the NPS and
    churn sums are sums of the kept cells."""
    return filters.date_from is None and filters.date_to is None and not filters.scope.restricted


def one_department(filters: Filters) -> str | None:
    """The department of a scope of exactly one, without a date range: its customers' answers about
    that department are whole customers of the per-department cells."""
    if filters.date_from is not None or filters.date_to is not None or not filters.scope.restricted:
        return None
    deps = filters.scope.departments or ()
    return deps[0] if len(deps) == 1 else None


def aggregate(con: duckdb.DuckDBPyConnection, filters: Filters) -> dict[str, pd.DataFrame]:
    """The frames of :func:`cxmetrics.metrics.theme_sums.aggregate` (``n_all``, ``nps``, ``mentions``,
    ``trend``, ``churn``) for ``filters``, from the lean tables: the same sums."""
    where, params = cond(filters)
    out = {"n_all": store.run(con, store.Query("theme_lean_n_all", f"SELECT coalesce(sum(x.n), 0) AS n "
                                                                  f"FROM theme_answers x WHERE {where}", params))}
    if customer_level(filters):  # whole customers kept or dropped: the month cells hold the counts
        tagged = "(SELECT * FROM theme_month_cells WHERE theme IS NOT NULL)"
        verbatims = "(SELECT * FROM theme_month_cells WHERE theme IS NULL)"
        count, counted = "sum(x.mentions)::BIGINT", "sum(x.{0})::BIGINT"
    elif extras_present(con):  # part of a customer's answers: the day cells hold the counts
        tagged = f"(SELECT * FROM {DAY_CELLS} WHERE theme IS NOT NULL)"
        verbatims = f"(SELECT * FROM {DAY_CELLS} WHERE theme IS NULL)"
        count, counted = "sum(x.mentions)::BIGINT", "sum(x.{0})::BIGINT"
    else:  # rows of the lean tables (a run kept before the day cells)
        tagged, verbatims = "theme_tagged", "(SELECT * FROM theme_verbatims WHERE NOT blank)"
        count, counted = "count(*)", "count(*) FILTER (WHERE x.nps {1})"
    groups = ", ".join(counted.format(k, c) + f" AS {k}" for k, c in _GROUPS)
    out["mentions"] = store.run(con, store.Query("theme_lean_mentions", f"""
SELECT (SELECT {count} FROM {verbatims} x WHERE {where}) AS verbatims, x.theme, {count} AS mentions, {groups}
FROM {tagged} x WHERE {where} GROUP BY x.theme""", params))
    out["trend"] = store.run(con, store.Query("theme_lean_trend", f"""
WITH months AS (SELECT date_trunc('month', x.responded_on)::DATE AS month, {count} AS verbatims
                FROM {verbatims} x WHERE {where} GROUP BY 1)
SELECT m.month, t.theme, coalesce(t.mentions, 0) AS mentions, m.verbatims
FROM months m JOIN (SELECT date_trunc('month', x.responded_on)::DATE AS month, x.theme, {count} AS mentions
                    FROM {tagged} x WHERE {where} GROUP BY ALL) t USING (month)
ORDER BY m.month, t.theme""", params))
    one = one_department(filters)
    if customer_level(filters) or (one and extras_present(con)):  # whole customers (per department): cell sums
        cells, cparams = filters.where(customer="x_f", dates=False, scope=False)
        cells = cells.replace("x_f.", "x.f_")  # the customer's segment and region columns of the cells
        nps_t, churn_t = EXTRAS[1:] if one else ("theme_nps_cells", "theme_churn_cells")
        if one:
            cells += " AND x.f_department = $lean_department"
            cparams["lean_department"] = one
        sums = ", ".join(f"sum(x.{c}) AS {c}" for c in _NPS_SUMS[1:])
        out["nps"] = store.run(con, store.Query("theme_lean_nps_cells", f"""
SELECT x.theme, x.segment, x.tenure, sum(x.m) AS m, max(x.max_k) AS max_k, {sums}
FROM {nps_t} x WHERE {cells} GROUP BY ALL""", cparams))
        out["churn"] = store.run(con, store.Query("theme_lean_churn_cells", f"""
SELECT x.theme, x.segment, x.tenure, sum(x.n) AS n, sum(x.k) AS k
FROM {churn_t} x WHERE {cells} GROUP BY ALL""", cparams))
    else:  # part of a customer's answers: per-customer rows, one grouped scan of each lean table, read by both
        ca_sql, ta_sql = base_sql(where)
        ca = store.temp_table(con, "cx_theme_ca_", store.Query("theme_lean_customers", ca_sql, params))
        ta = store.temp_table(con, "cx_theme_ta_", store.Query("theme_lean_customer_themes", ta_sql, params)) \
            if ca else None
        if ca and ta:  # inside a page call: materialised once (names made by temp_table)
            rel, rparams = (ca, ta), {}
        else:
            rel, rparams = (f"({ca_sql})", f"({ta_sql})"), params
        out["nps"] = store.run(con, store.Query("theme_lean_nps", nps_sql(*rel), rparams))
        out["churn"] = store.run(con, store.Query("theme_lean_churn", churn_sql(*rel),
                                                  {**rparams, "days": theme_sums.CHURN_DAYS}))
    return out


def feelings(con: duckdb.DuckDBPyConnection, filters: Filters) -> dict[str, pd.DataFrame]:
    """The counts of :func:`cxmetrics.metrics.theme_store.feelings` from ``theme_feel``."""
    where, params = cond(filters)
    sent = store.run(con, store.Query("theme_lean_sentiment", f"""
SELECT x.language, x.sentiment_label, count(*) AS k, any_value(x.sentiment_method) AS method,
       coalesce(sum(x.sentiment), 0) AS sentiment_sum, count(x.sentiment) AS sentiment_n
FROM theme_feel x WHERE {where} GROUP BY ALL ORDER BY 1, 2""", params))
    hits = ", ".join(f"count(*) FILTER (WHERE x.{e} > 0) AS {e}" for e in text.PLUTCHIK)  # literal names
    frames = []
    for dim, expr in (("touchpoint", "x.touchpoint"),
                      ("nps_group", "CASE WHEN x.nps >= 9 THEN 'promoter' WHEN x.nps >= 7 THEN 'passive' "
                                    "WHEN x.nps <= 6 THEN 'detractor' ELSE '(no score)' END")):
        f = store.run(con, store.Query(f"theme_lean_emotions_{dim}", f"""
SELECT {expr} AS "group", count(*) AS n, {hits} FROM theme_feel x WHERE {where} GROUP BY 1 ORDER BY 1""", params))
        f = f.melt(id_vars=["group", "n"], value_vars=list(text.PLUTCHIK), var_name="emotion", value_name="k")
        f.insert(0, "by", dim)
        frames.append(f)
    emo = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return {"sentiment": sent, "emotions": emo[["by", "group", "emotion", "k", "n"]] if len(emo) else emo}


def imported(con: duckdb.DuckDBPyConnection, filters: Filters) -> int:
    """Verbatims (not blank) in the filters that keep an imported theme."""
    where, params = cond(filters)
    return int(store.scalar(con, f"SELECT count(x.imported) FROM theme_verbatims x WHERE NOT x.blank AND {where}",
                            params) or 0)
