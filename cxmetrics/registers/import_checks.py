"""An import's typing and checks in SQL over the staging table: every problem with its row and column (:mod:`cxmetrics.registers.importer`)."""

from __future__ import annotations

import duckdb

from cxmetrics.registers.import_types import ImportReport, Limits, Problem
from cxmetrics.store import stubs
from cxmetrics.store.schema import FORMULA_PREFIXES, Column, Table

_BOOL_TRUE = "('true', 't', '1', 'yes', 'y')"
#: a number in plain decimal or exponent notation, or a NaN/infinity (named as not finite)
_NUMBER_SQL = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?|[+-]?(inf|infinity|nan)"
_BOOL_FALSE = "('false', 'f', '0', 'no', 'n')"


def _raw(col: str) -> str:
    return f"NULLIF(trim(s.\"{col}\"), '')"


def _typed_expr(c: Column) -> str:
    v = _raw(c.name)
    if c.kind in ("id", "category", "text"):
        return v
    if c.kind == "int":
        return f"CAST(TRY_CAST({v} AS DOUBLE) AS BIGINT)"
    if c.kind == "float":
        return f"TRY_CAST({v} AS DOUBLE)"
    if c.kind == "date":
        return (f"coalesce(TRY_CAST({v} AS DATE), TRY_CAST(TRY_CAST({v} AS TIMESTAMP) AS DATE), "
                f"TRY_CAST(try_strptime({v}, '%Y/%m/%d') AS DATE))")
    if c.kind == "bool":
        return (f"CASE WHEN lower({v}) IN {_BOOL_TRUE} THEN true "
                f"WHEN lower({v}) IN {_BOOL_FALSE} THEN false END")
    raise ValueError(c.kind)


def _checks(t: Table, present: set[str]) -> list[tuple[str, str, str]]:
    """(column, SQL condition that flags a bad row over staging `s`, reason) for every check."""
    out = []
    today_plus = "current_date + INTERVAL 1 DAY"
    for c in t.columns:
        if c.name not in present:
            continue
        v, typed = _raw(c.name), _typed_expr(c)
        if c.required:
            out.append((c.name, f"{v} IS NULL", "required value is empty"))
        if c.kind in ("id", "category", "text"):
            out.append((c.name, f"length({v}) > {c.max_len}", f"text longer than {c.max_len} characters"))
            if c.kind != "text":
                prefixes = " OR ".join(f"starts_with({v}, '{p}')" for p in FORMULA_PREFIXES)
                out.append((c.name, f"({prefixes})", "looks like a spreadsheet formula; identifiers and labels may not start with = + - @"))
        if c.kind in ("int", "float"):
            # plain decimal notation only: DuckDB's cast also reads 1_0 as 10 and rounds
            # 8.9999999999999999 to 9; NaN and infinities are named as such, not as out of range
            number = f"regexp_full_match({v}, '{_NUMBER_SQL}', 'i')"
            num = f"TRY_CAST({v} AS DOUBLE)"
            out.append((c.name, f"{v} IS NOT NULL AND NOT {number}", "not a number"))
            out.append((c.name, f"{number} AND ({num} IS NULL OR NOT isfinite({num}))", "not a finite number"))
            if c.kind == "int":
                out.append((c.name, f"{number} AND isfinite({num}) AND NOT regexp_full_match({v}, '[+-]?[0-9]+(\\.0*)?(e\\+?[0-9]+)?', 'i')",
                            "not a whole number"))
            if c.min is not None:
                out.append((c.name, f"isfinite({num}) AND {num} < {c.min!r}", f"below the minimum {c.min:g}"))
            if c.max is not None:
                out.append((c.name, f"isfinite({num}) AND {num} > {c.max!r}", f"above the maximum {c.max:g}"))
        if c.kind == "date":
            # the parser hands dates on as YYYY-MM-DD; anything else (epoch, infinity) is refused
            out.append((c.name, f"{v} IS NOT NULL AND ({typed} IS NULL OR NOT regexp_full_match({v}, "
                                "'[0-9]{4}-[0-9]{2}-[0-9]{2}'))", "unparseable date (use YYYY-MM-DD)"))
            out.append((c.name, f"{typed} > {today_plus}", "date is in the future"))
            out.append((c.name, f"{typed} < DATE '1900-01-01'", "date is before 1900"))
        if c.kind == "bool":
            out.append((c.name, f"{v} IS NOT NULL AND {typed} IS NULL", "not true/false (use true, false, 1, 0, yes, no)"))
        if c.allowed:
            allowed = ", ".join("'" + a + "'" for a in c.allowed)
            out.append((c.name, f"{v} IS NOT NULL AND {v} NOT IN ({allowed})", f"must be one of {', '.join(c.allowed)}"))
    return out


def few_values(c: Column) -> bool:
    """Whether a column's values repeat: categories, dates, flags, bounded whole numbers (scores,
    ranks) and percentages. A check on such a column is judged once per distinct value and
    weighted by its rows (:func:`count_where`)."""
    return c.kind in ("category", "date", "bool", "int") or (c.kind == "float" and c.max is not None and c.max <= 100)


def count_where(con: duckdb.DuckDBPyConnection, t: Table, conds: list[tuple[str | None, str]],
                source: str = "__stage") -> list[int]:
    """How many rows of ``source`` (alias ``s``) meet each condition, ``conds`` being (column the
    condition reads alone, or None; SQL condition). A condition on one column of
    :func:`few_values` is counted over that column's distinct values with their row counts (a
    hash of a few hundred values instead of regular expressions on ten million rows: 0.6–0.8 s
    per check and column → 0.05 s); the others in one scan of the rows."""
    out = [0] * len(conds)
    by_column: dict[str, list[int]] = {}
    rows = []
    for i, (column, _) in enumerate(conds):
        if column is not None and few_values(t.column(column)):
            by_column.setdefault(column, []).append(i)
        else:
            rows.append(i)
    if rows:
        got = con.execute("SELECT " + ", ".join(f"count(*) FILTER (WHERE {conds[i][1]})" for i in rows)  # noqa: S608
                          + f" FROM {source} s").fetchone()
        for i, n in zip(rows, got, strict=True):
            out[i] = int(n)
    for column, idx in by_column.items():
        got = con.execute("SELECT " + ", ".join(f"coalesce(sum(__n) FILTER (WHERE {conds[i][1]}), 0)" for i in idx)  # noqa: S608
                          + f' FROM (SELECT "{column}", count(*) AS __n FROM {source} GROUP BY ALL) s').fetchone()
        for i, n in zip(idx, got, strict=True):
            out[i] = int(n)
    return out


def drop_stage(con: duckdb.DuckDBPyConnection) -> None:
    """Drop ``__stage``: the general reader's table, or the fast path's view and the table under it
    (:mod:`cxmetrics.registers.import_fast`)."""
    if con.execute("SELECT count(*) FROM duckdb_views() WHERE temporary AND view_name = '__stage'").fetchone()[0]:
        con.execute("DROP VIEW __stage")
    con.execute("DROP TABLE IF EXISTS __stage")
    con.execute("DROP TABLE IF EXISTS __stage_file")


def _typed_select(t: Table, present: set[str]) -> str:
    cols = []
    for c in t.columns:
        expr = _typed_expr(c) if c.name in present else "NULL"
        cols.append(f"CAST({expr} AS {c.sql_type}) AS \"{c.name}\"")
    return ", ".join(cols)




def _validate(con: duckdb.DuckDBPyConnection, t: Table, present: set[str], limits: Limits,
              sha256: str = "", line_items: bool = False, report: ImportReport | None = None) -> tuple[list[Problem], int]:
    problems: list[Problem] = []
    total = 0
    cap = limits.max_problems_per_check

    def collect(sql: str, column: str | None, reason: str, with_value: bool = True):
        nonlocal total
        cnt = con.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0]
        if cnt:
            total += cnt
            for row in con.execute(f"SELECT * FROM ({sql}) ORDER BY 1 LIMIT {cap}").fetchall():
                val = row[1] if with_value and len(row) > 1 and row[1] is not None else None
                problems.append(Problem(row[0], column, reason, None if val is None else str(val)[:80]))

    checks = _checks(t, present)
    keyed = all(k in present for k in t.key) and not line_items
    # whether the staged keys are already as checked (both readers trim identifiers and read empty
    # as missing): then the duplicate check groups the stored column, not a computed copy of it,
    # which at 100M rows does not fit the staging database's memory (issue 21)
    as_read = [(None, " OR ".join(f's."{k}" IS DISTINCT FROM {_raw(k)}' for k in t.key))] if keyed else []
    # one scan counts every check (and the keys as read); only the failing checks are then listed
    counts = count_where(con, t, [*((column, cond) for column, cond, _ in checks), *as_read])
    for (column, cond, reason), cnt in zip(checks, counts[:len(checks)], strict=True):
        if cnt:
            collect(f'SELECT __row, "{column}" FROM __stage s WHERE {cond}', column, reason)
    if line_items and t.name != "transactions":
        problems.append(Problem(None, None, "--line-items applies to transactions only"))
    if keyed:
        key = ", ".join(f's."{k}"' if counts[-1] == 0 else _raw(k) for k in t.key)
        collect(f"SELECT min(__row), {key} FROM __stage s GROUP BY {key} HAVING count(*) > 1",
                t.key[0], "duplicate key in the file")
    for column, parent, pcol in t.parents:
        if column in present and not stubs.creates_stubs(t.name, column):
            collect(
                f'SELECT s.__row, {_raw(column)} FROM __stage s WHERE {_raw(column)} IS NOT NULL AND NOT EXISTS '
                f'(SELECT 1 FROM "{parent}" p WHERE p."{pcol}" = {_raw(column)})',
                column, f"unknown {column}: not in {parent}")
    for column, parent, pcol in t.soft_parents:  # checked once the parent table holds rows
        if column in present and con.execute(f'SELECT count(*) FROM (SELECT 1 FROM "{parent}" LIMIT 1)').fetchone()[0]:
            collect(
                f'SELECT s.__row, {_raw(column)} FROM __stage s WHERE {_raw(column)} IS NOT NULL AND NOT EXISTS '
                f'(SELECT 1 FROM "{parent}" p WHERE p."{pcol}" = {_raw(column)})',
                column, f"unknown {column}: not in {parent} (checked because {parent} has rows)")
    if problems:  # the typed checks below assume parseable values
        problems.sort(key=lambda p: (p.row is None, p.row or 0))
        return problems, total
    typed = _typed_select(t, present)
    con.execute(f"CREATE TEMP TABLE __typed AS SELECT s.__row, {typed} FROM __stage s")
    drop_stage(con)  # the text copy is no longer needed: free its memory
    if t.key[0] not in present and (t.derive_key_from or t.fact):
        # keys come from the file's hash and the row's line, never from the row's content: two
        # files holding equal rows are two sets of rows; the same file again gives the same keys
        con.execute(f"UPDATE __typed SET \"{t.key[0]}\" = 'f' || substr(md5($h || ':' || CAST(__row AS VARCHAR)), 1, 20)",
                    {"h": sha256})
        if report is not None:
            report.warnings.append(f"{t.key[0]} derived from the file's hash and row number")
    if line_items:
        bad = con.execute(
            f'SELECT min(__row), "{t.key[0]}" FROM __typed GROUP BY "{t.key[0]}" '
            "HAVING count(DISTINCT customer_id) > 1 OR count(DISTINCT occurred_on) > 1 ORDER BY 1 LIMIT $n",
            {"n": cap}).fetchall()
        for row, key in bad:
            problems.append(Problem(row, "customer_id", "line items of one transaction disagree on customer_id or occurred_on", str(key)))
        if bad:
            return problems, len(problems)
        before = con.execute("SELECT count(*) FROM __typed").fetchone()[0]
        others = ", ".join(f'any_value("{c}") AS "{c}"' for c in t.names if c not in (t.key[0], "amount"))
        con.execute(f'CREATE TEMP TABLE __lines AS SELECT min(__row) AS __row, "{t.key[0]}", {others}, '  # noqa: S608
                    f'sum(amount) AS amount FROM __typed GROUP BY "{t.key[0]}"')
        con.execute("DROP TABLE __typed")
        con.execute(f"CREATE TEMP TABLE __typed AS SELECT __row, {', '.join(chr(34) + c + chr(34) for c in t.names)} FROM __lines")
        con.execute("DROP TABLE __lines")
        after = con.execute("SELECT count(*) FROM __typed").fetchone()[0]
        if report is not None:
            report.warnings.append(f"{before:,} line items summed into {after:,} transactions")
            report.rows = after
    if t.name == "transactions" and report is not None:
        neg = con.execute("SELECT count(*) FILTER (WHERE amount < 0) FROM __typed").fetchone()[0]
        if neg:
            report.excluded["negative_amounts_kept"] = neg
            report.warnings.append(f"{neg:,} transaction(s) with a negative amount (cancellations, returns) kept")
    # Rows that update stored ones keep the columns this file does not carry: merge them first,
    # so the cross-column checks judge each row as it will be stored (the write repeats the merge).
    keep = [c for c in t.names if c not in present and c not in t.key]
    if keep:
        key_match = " AND ".join(f'x."{k}" = y."{k}"' for k in t.key)
        sets = ", ".join(f'"{c}" = x."{c}"' for c in keep)
        con.execute(f'UPDATE __typed y SET {sets} FROM "{t.name}" x WHERE {key_match}')
    for cond, column, reason in t.row_checks:
        collect(f'SELECT __row, "{column}" FROM __typed WHERE NOT ({cond})', column, reason)
    problems.sort(key=lambda p: (p.row is None, p.row or 0))
    return problems, total
