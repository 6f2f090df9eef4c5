"""Incremental refresh: a write that only appended rows updates the summaries it can in place.

A summary table is its relation materialised for the unfiltered view (:mod:`cxmetrics.store.summaries`).
When a write only *appended* rows to fact tables (an import of new survey responses, say), most
relations need not be recomputed from all the data:

* ``grain="cells"`` (counted cubes: responses, complaints, revenue, KPI days, linked KPI
  observations): the appended rows are counted into cells with the relation's own SQL, reading
  the appended rows in place of the table, and merged in — existing cells get the counts and sums
  added, new cells are inserted. Counts are exact; float sums equal a rebuild's up to the order of
  addition.
* ``grain="customer"`` (latest answer, answer spells, detractor responses, customer departments):
  the customers in the appended rows are recomputed with the relation's own SQL, every table it
  reads narrowed to those customers (each table read once per refresh, :func:`narrowed`; a
  relation it reads, itself per customer, as stored: brought up to date before it) — or,
  for a relation with an :attr:`~cxmetrics.store.relation_types.Relation.append` function (the
  answer spells; the customer summary, for appended answers only), brought up to date by it in
  time linear in the appended rows.
* ``grain="customer_cells"`` (key-driver pairs): cells summed over customers, each customer's
  contribution depending on that customer's rows only. The appended customers' contributions are
  computed twice with the relation's own SQL (its used relations expanded to their SQL), every
  table narrowed to those customers: from their rows before the write and from all of them. The
  difference is added to the cells; a cell whose count (the first measure) falls to 0 is removed.
* a relation that reads some tables only before the landmark (:attr:`Relation.before_landmark`:
  the churn landmark base and its revenue) is left as it is when every appended row is dated on or
  after the landmark it was built with, the landmark and the data's end are unchanged and so are
  the relations it reads (:func:`unchanged_by`); the kept fit computed from it is then kept too.
* every other relation (``grain="table"``, a relation with arguments such as the landmark date,
  or one that reads other relations) is rebuilt by :func:`cxmetrics.store.summaries.refresh`.

Which rows a write appended: inside the writing transaction DuckDB gives the rows the transaction
inserted row ids from ``MAX_ROW_ID`` up until it commits. A table counts as *appended to* only when
its row count is the count recorded at the last refresh plus exactly those rows (no row deleted or
replaced); otherwise, or if DuckDB ever numbers them otherwise (then no row is found there), the
refresh rebuilds. An in-place ``UPDATE`` of a fact table keeps the count and is not seen — no
writer of a fact table updates in place (the importer deletes and re-inserts replaced rows).
"""

from __future__ import annotations

import re

import duckdb

from cxmetrics.store.relations import RELATIONS, Relation

#: DuckDB's first row id of rows a transaction has inserted and not yet committed.
MAX_ROW_ID = 36_028_797_018_960_000

#: Fact tables whose appended rows can be told apart (every other table's change rebuilds).
APPENDABLE = ("survey_responses", "complaints", "transactions", "kpi_observations", "followups", "churn_events")

_DELTA = "__appended_"
_NARROW = "__narrow_"
#: The tables narrowed to the appended customers (each has a ``customer_id``).
CUSTOMER_TABLES = ("customers", *APPENDABLE)


def counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows in each appendable table (recorded at each refresh: the next write's starting point)."""
    sql = ", ".join(f'(SELECT count(*) FROM "{t}") AS "{t}"' for t in APPENDABLE)  # names from APPENDABLE
    row = con.execute(f"SELECT {sql}").fetchone()
    return dict(zip(APPENDABLE, row, strict=True))


def appended(con: duckdb.DuckDBPyConnection, changed: set[str], recorded: dict) -> dict[str, int] | None:
    """When every table in ``changed`` was only appended to since ``recorded`` (row counts of the
    last refresh), and by no more rows than it held (rebuilding costs less than recomputing most
    customers and cells one by one, and stores the same), copy each one's appended rows to a
    temporary table and return the number of rows appended per table; else None (rebuild)."""
    if not changed or any(t not in APPENDABLE or t not in recorded for t in changed):
        return None
    out = {}
    for t in sorted(changed):
        now, new = con.execute(f'SELECT count(*), count(*) FILTER (WHERE rowid >= {MAX_ROW_ID}) FROM "{t}"'
                               ).fetchone()  # t from APPENDABLE
        if new == 0 or now != recorded[t] + new:
            return None
        if new > recorded[t]:  # more new rows than old ones (a first import): a rebuild costs less
            return None
        out[t] = new
    for t in out:
        con.execute(f'CREATE OR REPLACE TEMP TABLE {_DELTA}{t} AS SELECT * FROM "{t}" WHERE rowid >= {MAX_ROW_ID}')
    cust = " UNION ".join(f"SELECT customer_id FROM {_DELTA}{t}" for t in out)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_DELTA}customers AS {cust}")
    return out


def appended_rows(table: str) -> str:
    """The temporary table of the rows the write appended to ``table`` (copied by :func:`appended`,
    until :func:`done`)."""
    return f"{_DELTA}{table}"


def done(con: duckdb.DuckDBPyConnection, tables) -> None:
    """Drop the temporary copies of the appended rows and the narrowed tables."""
    for t in [*tables, "customers"]:
        con.execute(f"DROP TABLE IF EXISTS {_DELTA}{t}")
    for t in CUSTOMER_TABLES:
        con.execute(f"DROP TABLE IF EXISTS {_NARROW}{t}")


def narrowed(con: duckdb.DuckDBPyConnection, sql: str, *, rows: str = "all", customers: str | None = None,
             also: dict[str, str] | None = None) -> str:
    """``sql`` with every table of :data:`CUSTOMER_TABLES` it reads (``FROM``/``JOIN`` by name)
    narrowed to the customers in the appended rows (copied by :func:`appended`, until :func:`done`):
    ``rows`` "all" their rows, "before" those the tables held before the write, "appended" the
    appended ones (and all their rows of a table nothing was appended to); ``customers``: a query
    of customer ids (a subset of them) to narrow to instead; ``also``: table → a further condition
    on its rows (bound parameters only). Each table is read once
    for the whole refresh, into a temporary table of those customers' rows. Valid only for SQL
    whose every read of those tables is per customer (no total over all customers)."""
    names = [t for t in CUSTOMER_TABLES if re.search(rf"\b(?:FROM|JOIN)\s+{t}\b", sql)]
    if not names:
        return sql
    for t in names:  # t from CUSTOMER_TABLES
        con.execute(f"CREATE TEMP TABLE IF NOT EXISTS {_NARROW}{t} AS SELECT x.*, x.rowid >= {MAX_ROW_ID} AS __new "
                    f"FROM \"{t}\" x SEMI JOIN {_DELTA}customers a ON x.customer_id IS NOT DISTINCT FROM a.customer_id")
    cond = {"all": "TRUE", "before": "NOT __new", "appended": "__new"}[rows]
    if rows == "appended":
        took = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()}
        conds = {t: cond if t in APPENDABLE and f"{_DELTA}{t}" in took else "TRUE" for t in names}
    else:
        conds = dict.fromkeys(names, cond)
    if customers is not None:
        conds = {t: f"{c} AND customer_id IN ({customers})" for t, c in conds.items()}
    for t, cond in (also or {}).items():
        if t in conds:
            conds[t] += f" AND {cond}"
    return re.sub(rf"\b(FROM|JOIN)\s+({'|'.join(names)})\b",
                  lambda m: f"{m.group(1)} (SELECT * EXCLUDE (__new) FROM {_NARROW}{m.group(2)} WHERE {conds[m.group(2)]})",
                  sql)


def can_update(rel: Relation, tables: set[str]) -> bool:
    """Whether ``rel``'s stored table can take the appended rows of ``tables`` in place."""
    if rel.args or "customers" in tables:
        return False
    if rel.grain == "customer_cells":
        return True
    if rel.grain == "customer":  # reading only relations whose rows are per customer too (built before it)
        if rel.append is not None and not (rel.depends & tables) <= {rel.appended_table}:
            return False  # its append function takes the rows of one table
        return all(RELATIONS[sub].grain == "customer" and not RELATIONS[sub].args for sub in rel.uses)
    if rel.uses:
        return False
    if rel.grain == "cells":
        hit = rel.depends & tables
        return len(hit) == 1 and len(_reads(rel.sql, next(iter(hit)))) == 1
    return False


def unchanged_by(con: duckdb.DuckDBPyConnection, rel: Relation, tables: set[str], landmark, same_args: bool,
                 carried: set[str]) -> bool:
    """Whether the rows appended to ``tables`` (copied by :func:`appended`) leave ``rel``'s stored
    table exactly as it is: each such table is one ``rel`` reads only before the landmark, no
    appended row is dated before the landmark it was built with (``same_args``: that landmark and
    the data's end are the current ones; the caller compares them), and every relation ``rel``
    reads is ``carried`` over unchanged."""
    window = dict(rel.before_landmark)
    if not window or landmark is None or not same_args or not tables or not tables <= set(window):
        return False
    if any(sub not in carried for sub in rel.uses):
        return False
    for t in sorted(tables):  # t and its date column from the relation's definition
        early = con.execute(f'SELECT count(*) FROM {_DELTA}{t} WHERE "{window[t]}" < $landmark',
                            {"landmark": landmark}).fetchone()[0]
        if early:
            return False
    return True


def _reads(sql: str, table: str) -> list[str]:
    return re.findall(rf"\b(?:FROM|JOIN)\s+{table}\b", sql)


def update(con: duckdb.DuckDBPyConnection, rel: Relation, sql: str, params: dict, tables: set[str]) -> None:
    """Bring ``rel``'s stored table up to date with the appended rows (``sql``, ``params``: its
    definition for the unfiltered view, with a ``"customer_cells"`` relation's used relations
    expanded to their own SQL; see :func:`can_update`)."""
    name = rel.name  # from relations.ALL
    if rel.grain == "customer" and rel.append is not None:
        rel.append(con, f"{_DELTA}{rel.appended_table}")
        return
    if rel.grain == "customer":
        # every table it reads narrowed to the appended customers (their rows depend on theirs only)
        con.execute(f"DELETE FROM {name} x WHERE EXISTS (SELECT 1 FROM {_DELTA}customers a "
                    f"WHERE a.customer_id IS NOT DISTINCT FROM x.customer_id)")
        con.execute(f"INSERT INTO {name} {narrowed(con, sql)}", params)
        return
    if rel.grain == "customer_cells":
        # the appended customers' contributions after the write less theirs before it
        minus = ", ".join(f'-"{m}" AS "{m}"' for m in rel.measures)
        delta_sql = (f"SELECT * FROM ({narrowed(con, sql)}) UNION ALL BY NAME "
                     f"SELECT * REPLACE ({minus}) FROM ({narrowed(con, sql, rows='before')})")
        cols = ", ".join(f'sum("{c}") AS "{c}"' if c in rel.measures else f'"{c}"'
                         for c in _columns(con, f"SELECT * FROM ({sql}) LIMIT 0", params))
        delta_sql = f"SELECT {cols} FROM ({delta_sql}) GROUP BY ALL"
    else:
        table = next(iter(rel.depends & tables))
        delta_sql = re.sub(rf"\b(FROM|JOIN)\s+{table}\b", rf"\1 {_DELTA}{table}", sql)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_DELTA}cells AS {delta_sql}", params)
    cols = [r[0] for r in con.execute(f"DESCRIBE {_DELTA}cells").fetchall()]
    keys = [c for c in cols if c not in rel.measures]
    same = " AND ".join(f'x."{k}" IS NOT DISTINCT FROM d."{k}"' for k in keys)
    add = ", ".join(f'"{m}" = CASE WHEN x."{m}" IS NULL THEN d."{m}" WHEN d."{m}" IS NULL THEN x."{m}" '
                    f'ELSE x."{m}" + d."{m}" END' for m in rel.measures)
    con.execute(f"UPDATE {name} x SET {add} FROM {_DELTA}cells d WHERE {same}")
    con.execute(f"INSERT INTO {name} SELECT * FROM {_DELTA}cells d "
                f"WHERE NOT EXISTS (SELECT 1 FROM {name} x WHERE {same})")
    if rel.grain == "customer_cells":
        con.execute(f'DELETE FROM {name} WHERE "{rel.measures[0]}" = 0')
    con.execute(f"DROP TABLE {_DELTA}cells")


def _columns(con: duckdb.DuckDBPyConnection, sql: str, params: dict) -> list[str]:
    return [d[0] for d in con.execute(sql, params).description]
