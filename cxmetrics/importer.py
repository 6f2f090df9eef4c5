"""Validated, all-or-nothing, idempotent import of CSV, Excel, Parquet and Qualtrics files.

Flow: detect format and encoding → parse, in a private in-memory DuckDB with the store attached
read-only, into a staging table of text columns named by position (file headers never become SQL
identifiers) → run every check in SQL and collect all problems with their row and column → if
any, record a rejected import and raise :class:`ImportRejected`; else attach the store read-write
and upsert by key inside ``BEGIN … COMMIT`` and record it (the write lock is held only then).

Row numbers are those a person sees: for CSV the line of the file (the header is line 1; a
Qualtrics export's data starts at line 4), for Excel the sheet's row.
"""

from __future__ import annotations

import codecs
import contextvars
import csv
import hashlib
import io
import json
import os
import re
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from . import schema, store
from .schema import FORMULA_PREFIXES, TABLES, Column, Table


@dataclass(frozen=True)
class Problem:
    row: int | None
    column: str | None
    reason: str
    value: str | None = None

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column:
            where.append(f"column {self.column}")
        prefix = ", ".join(where)
        val = f" (value {self.value!r})" if self.value is not None else ""
        return f"{prefix}: {self.reason}{val}" if prefix else f"{self.reason}{val}"


class ImportRejected(Exception):
    """The file was rejected; ``problems`` lists every problem found (capped per check)."""

    def __init__(self, table: str, source: str, problems: list[Problem], total: int | None = None):
        self.table, self.source, self.problems = table, source, problems
        self.total = total if total is not None else len(problems)
        super().__init__(self.summary())

    def summary(self) -> str:
        first = str(self.problems[0]) if self.problems else "rejected"
        more = f" (+{self.total - 1} more problems)" if self.total > 1 else ""
        return f"{self.source} rejected for {self.table}: {first}{more}"

    def report(self) -> str:
        lines = [f"{self.source}: rejected, nothing was imported into {self.table}.",
                 f"{self.total} problem(s):"]
        lines += [f"  - {p}" for p in self.problems]
        if self.total > len(self.problems):
            lines.append(f"  … and {self.total - len(self.problems)} more")
        return "\n".join(lines)


@dataclass(frozen=True)
class Limits:
    """Defensive limits, checked before parsing. Override with CX_MAX_IMPORT_MB and friends."""

    max_bytes: int = int(os.environ.get("CX_MAX_IMPORT_MB", "4096")) * 1024 * 1024
    max_rows: int = int(os.environ.get("CX_MAX_IMPORT_ROWS", "50000000"))
    xlsx_max_uncompressed: int = 512 * 1024 * 1024
    xlsx_max_ratio: float = 200.0
    xlsx_max_rows: int = 1_048_576
    max_problems_per_check: int = 20


@dataclass
class ImportReport:
    table: str
    source: str
    sha256: str
    rows: int
    inserted: int = 0
    updated: int = 0
    format: str = "csv"
    encoding: str | None = None
    warnings: list[str] = field(default_factory=list)
    import_id: int | None = None
    #: seconds spent staging and validating the file, and rebuilding the summary tables it
    #: invalidated (inside the write transaction)
    seconds_validating: float | None = None
    seconds_summaries: float | None = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


# ----------------------------------------------------------------------------- file reading


def parse_mapping(lines: list[str] | str | None) -> dict[str, str]:
    """``'Source Column=target_column'`` items (or text lines) into a dict; ValueError names a bad one."""
    items = lines.splitlines() if isinstance(lines, str) else list(lines or [])
    out = {}
    for i, line in enumerate(items, 1):
        if not line.strip():
            continue
        if "=" not in line:
            raise ValueError(f"mapping {i} has no '=' (expected 'Source Column=target_column'): {line!r}")
        src, tgt = line.rsplit("=", 1)
        out[src.strip()] = tgt.strip()
    return out


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _detect_format(path: Path, head: bytes) -> str:
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        raise ImportRejected("?", path.name, [Problem(None, None, "file named .xlsx is not an Excel workbook")])
    if suffix == ".parquet":
        raise ImportRejected("?", path.name, [Problem(None, None, "file named .parquet is not a Parquet file")])
    if suffix == ".xls":
        raise ImportRejected("?", path.name, [Problem(None, None, "old .xls files are not supported; save as .xlsx or CSV")])
    return "csv"


def _detect_encoding(path: Path, head: bytes, requested: str | None) -> tuple[str, int]:
    """Return (encoding for DuckDB, bytes of BOM). Rejects encodings we cannot read, by name."""
    name = path.name
    for bom, enc in ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
                     (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16")):
        if head.startswith(bom):
            raise ImportRejected("?", name, [Problem(None, None, f"the file is {enc}-encoded; save it as UTF-8")])
    if b"\x00" in head:
        raise ImportRejected("?", name, [Problem(None, None, "the file contains NUL bytes: it is binary, not CSV text")])
    bom = 3 if head.startswith(codecs.BOM_UTF8) else 0
    if requested:
        norm = codecs.lookup(requested).name
        if norm in ("utf-8", "utf-8-sig"):
            return "utf-8", bom
        if norm in ("latin-1", "iso8859-1"):
            return "latin-1", 0
        raise ImportRejected("?", name, [Problem(None, None, f"encoding {requested} is not supported; use UTF-8 or Latin-1")])
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                bad = chunk[max(0, exc.start - 1): exc.start + 2]
                line += chunk[: exc.start].count(b"\n")
                if re.search(rb"[\x80-\x9f]", chunk):
                    raise ImportRejected("?", name, [Problem(line, None,
                        "the file is not UTF-8 and looks like Windows-1252; save it as UTF-8 "
                        "(or pass --encoding latin-1 if it really is Latin-1)", repr(bad))]) from None
                return "latin-1", 0
            line += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise ImportRejected("?", name, [Problem(line, None, "the file ends in the middle of a UTF-8 character (truncated?)")]) from None
    return "utf-8", bom


def _first_records(path: Path, encoding: str, bom: int, count: int = 3) -> tuple[list[list[str]], str]:
    """The first records (parsed with the csv module) and the delimiter."""
    with open(path, "rb") as f:
        raw = f.read(1 << 20)[bom:]
    text = raw.decode("latin-1" if encoding == "latin-1" else "utf-8", errors="replace")
    first_line = text.split("\n", 1)[0]
    counts = {d: first_line.count(d) for d in (",", ";", "\t", "|")}
    delim = max(counts, key=counts.get) if max(counts.values()) > 0 else ","
    records = []
    reader = csv.reader(io.StringIO(text), delimiter=delim)
    try:
        for rec in reader:
            records.append(rec)
            if len(records) >= count:
                break
    except csv.Error:
        pass
    return records, delim


def is_qualtrics(records: list[list[str]]) -> bool:
    return len(records) >= 3 and bool(records[2]) and records[2][0].strip().startswith('{"ImportId"')


#: Default mapping of Qualtrics export fields to survey_responses columns.
QUALTRICS_MAP = {
    "ResponseId": "response_id",
    "RecordedDate": "responded_on",
    "ExternalReference": "customer_id",
    "ExternalDataReference": "customer_id",
}


def _qualtrics_mapping(header: list[str], questions: list[str]) -> dict[str, str]:
    """Map Qualtrics field names: metadata by name; the NPS question by its ``_NPS_GROUP`` twin
    or by question text mentioning "recommend"; embedded data fields that already use our names."""
    mapping = {h: QUALTRICS_MAP[h] for h in header if h in QUALTRICS_MAP}
    names = set(header)
    for h, q in zip(header, questions, strict=False):
        if h in mapping:
            continue
        if f"{h}_NPS_GROUP" in names or ("recommend" in q.lower() and not h.endswith("_NPS_GROUP")):
            mapping.setdefault(h, "nps")
    return mapping


def _read_xlsx(path: Path, limits: Limits, name: str):
    """Rows of the first sheet as lists of strings, with zip-bomb and row limits."""
    import openpyxl

    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            total = sum(i.file_size for i in infos)
            packed = max(1, sum(i.compress_size for i in infos))
    except zipfile.BadZipFile:
        raise ImportRejected("?", name, [Problem(None, None, "the .xlsx file is damaged (not a valid zip archive)")]) from None
    if total > limits.xlsx_max_uncompressed or total / packed > limits.xlsx_max_ratio:
        raise ImportRejected("?", name, [Problem(None, None,
            f"the workbook expands to {total:,} bytes ({total / packed:.0f}× its size): refused as a "
            "possible zip bomb")])
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for damaged files
        raise ImportRejected("?", name, [Problem(None, None, f"the workbook cannot be read: {type(exc).__name__}")]) from None
    try:
        ws = wb.worksheets[0]
        rows = []
        for i, row in enumerate(ws.iter_rows(values_only=True)):
            if i > limits.xlsx_max_rows:
                raise ImportRejected("?", name, [Problem(i + 1, None, f"more than {limits.xlsx_max_rows:,} rows")])
            rows.append([_cell_text(v) for v in row])
    finally:
        wb.close()
    while rows and all(v is None for v in rows[-1]):
        rows.pop()
    return rows


def _cell_text(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return str(v)


def _norm(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lstrip("\ufeff")).lower()


# ----------------------------------------------------------------------------- typing and checks

_BOOL_TRUE = "('true', 't', '1', 'yes', 'y')"
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
        if c.kind == "int":
            out.append((c.name, f"{v} IS NOT NULL AND TRY_CAST({v} AS DOUBLE) IS NULL", "not a number"))
            out.append((c.name, f"TRY_CAST({v} AS DOUBLE) <> floor(TRY_CAST({v} AS DOUBLE))", "not a whole number"))
        if c.kind == "float":
            out.append((c.name, f"{v} IS NOT NULL AND ({typed} IS NULL OR NOT isfinite({typed}))", "not a finite number"))
        if c.kind in ("int", "float"):
            num = f"TRY_CAST({v} AS DOUBLE)"
            if c.min is not None:
                out.append((c.name, f"{num} < {c.min!r}", f"below the minimum {c.min:g}"))
            if c.max is not None:
                out.append((c.name, f"{num} > {c.max!r}", f"above the maximum {c.max:g}"))
        if c.kind == "date":
            out.append((c.name, f"{v} IS NOT NULL AND {typed} IS NULL", "unparseable date (use YYYY-MM-DD)"))
            out.append((c.name, f"{typed} > {today_plus}", "date is in the future"))
            out.append((c.name, f"{typed} < DATE '1900-01-01'", "date is before 1900"))
        if c.kind == "bool":
            out.append((c.name, f"{v} IS NOT NULL AND {typed} IS NULL", "not true/false (use true, false, 1, 0, yes, no)"))
        if c.allowed:
            allowed = ", ".join("'" + a + "'" for a in c.allowed)
            out.append((c.name, f"{v} IS NOT NULL AND {v} NOT IN ({allowed})", f"must be one of {', '.join(c.allowed)}"))
    return out


def _typed_select(t: Table, present: set[str]) -> str:
    cols = []
    for c in t.columns:
        expr = _typed_expr(c) if c.name in present else "NULL"
        cols.append(f"CAST({expr} AS {c.sql_type}) AS \"{c.name}\"")
    return ", ".join(cols)


# ----------------------------------------------------------------------------- the import


def _stage(con: duckdb.DuckDBPyConnection, path: Path, t: Table, fmt: str, encoding: str | None,
           mapping: dict[str, str], limits: Limits, report: ImportReport) -> tuple[set[str], int]:
    """Load the file into TEMP table __stage (text columns named after our columns, plus __row).

    Returns the set of our columns present, and the row offset (file line of data row 1).
    """
    name = path.name
    if fmt == "xlsx":
        rows = _read_xlsx(path, limits, name)
        if not rows:
            raise ImportRejected(t.name, name, [Problem(None, None, "the workbook's first sheet is empty")])
        header = ["" if h is None else str(h) for h in rows[0]]
        body = rows[1:]
        first_line = 2
    elif fmt == "parquet":
        try:
            rel = con.sql("SELECT * FROM read_parquet($p)", params={"p": str(path)})
            header = list(rel.columns)
        except duckdb.Error as exc:
            raise ImportRejected(t.name, name, [Problem(None, None, f"the Parquet file cannot be read: {str(exc).splitlines()[0]}")]) from None
        body = None
        first_line = 1
    else:
        enc, bom = _detect_encoding(path, open(path, "rb").read(1 << 16), encoding)
        report.encoding = enc
        records, delim = _first_records(path, enc, bom)
        if not records or not any(x.strip() for x in records[0]):
            raise ImportRejected(t.name, name, [Problem(1, None, "no header row")])
        header = records[0]
        skip = 1
        if is_qualtrics(records):
            if t.name != "survey_responses":
                raise ImportRejected(t.name, name, [Problem(None, None, "a Qualtrics export can only be imported into survey_responses")])
            report.format = fmt = "qualtrics"
            qmap = _qualtrics_mapping(header, records[1])
            mapping = {**qmap, **mapping}
            skip = 3
            report.warnings.append(f"Qualtrics export detected: mapped {', '.join(f'{k}→{v}' for k, v in qmap.items())}")
        body = None
        first_line = skip + 1

    # map source columns to ours
    lookup = {_norm(k): v for k, v in mapping.items()}
    targets: list[str | None] = []
    for h in header:
        tgt = mapping.get(h) or lookup.get(_norm(h)) or _norm(h)
        targets.append(tgt if tgt in t.names else None)
    unknown = [h for h, tgt in zip(header, targets, strict=False) if tgt is None and h.strip()]
    if unknown:
        report.warnings.append("ignored columns not in the contract: " + ", ".join(unknown[:20]))
    seen: dict[str, int] = {}
    problems = []
    for i, tgt in enumerate(targets):
        if tgt is None:
            continue
        if tgt in seen:
            problems.append(Problem(1, tgt, f"two columns map to {tgt} (positions {seen[tgt] + 1} and {i + 1})"))
        seen[tgt] = i
    for m_target in mapping.values():
        if m_target not in t.names:
            problems.append(Problem(None, m_target, f"--map target {m_target} is not a column of {t.name}"))
    present = set(seen)
    for c in t.required:
        if c not in present and not (c in t.key and t.derive_key_from):
            if not (fmt == "qualtrics" and c == "survey"):
                problems.append(Problem(None, c, f"Required column {c} missing"))
    if problems:
        raise ImportRejected(t.name, name, problems)

    sel = ", ".join(f'CAST(c{i} AS VARCHAR) AS "{tgt}"' for tgt, i in seen.items())
    extra = ""
    if fmt == "qualtrics" and "survey" not in present:
        extra = ", 'relationship' AS survey"
    offset = first_line - 1
    # one pass from the file to __stage (text columns under our names, __row = line in the file)
    create = f"CREATE TEMP TABLE __stage AS SELECT __row + {int(offset)} AS __row, {sel}{extra} FROM "  # noqa: S608 (identifiers from schema)
    try:
        if fmt == "parquet":
            pos = ", ".join(f'CAST("{_q(h)}" AS VARCHAR) AS c{i}' for i, h in enumerate(header))
            con.execute(create + "(SELECT row_number() OVER () AS __row, " + pos + " FROM read_parquet($p))",
                        {"p": str(path)})
        elif fmt == "xlsx":
            import pyarrow as pa

            width = len(header)
            arrays = {f"c{i}": pa.array([(r[i] if i < len(r) else None) for r in body], pa.string())
                      for i in range(width)}
            arrays["__row"] = pa.array(range(1, len(body) + 1), pa.int64())
            con.register("__xlsx", pa.table(arrays))
            con.execute(create + "__xlsx")
            con.unregister("__xlsx")
        else:
            columns = {f"c{i}": "VARCHAR" for i in range(len(header))}
            con.execute(
                create + "(SELECT row_number() OVER () AS __row, * FROM read_csv($p, "
                "columns = $cols, header = false, skip = $skip, delim = $delim, quote = '\"', escape = '\"', "
                "strict_mode = true, auto_detect = false, encoding = $enc, max_line_size = 4000000))",
                {"p": str(path), "cols": columns, "skip": skip, "delim": delim,
                 "enc": "latin-1" if report.encoding == "latin-1" else "utf-8"})
    except duckdb.Error as exc:
        msg = str(exc)
        m = re.search(r"Line: (\d+)", msg)
        detail = next((ln.strip() for ln in msg.splitlines()[1:6]
                       if ln.strip() and not ln.startswith("Original Line")), "")
        reason = "the file cannot be parsed as CSV" if fmt == "csv" else f"the {fmt} file cannot be read"
        if "unterminated quote" in msg.lower():
            reason = "a quoted value is never closed (truncated file?)"
        elif "Expected Number of Columns" in msg:
            reason = f"wrong number of fields: {detail}"
        elif "Maximum line size" in msg or "maximum line size" in msg.lower():
            reason = "a line is longer than 4,000,000 bytes"
        elif "unicode" in msg.lower() or "encoding" in msg.lower():
            reason = "invalid characters for the file's encoding"
        raise ImportRejected(t.name, name, [Problem(int(m.group(1)) if m else None, None, reason)]) from None
    if extra:
        present.add("survey")
    n = con.execute("SELECT count(*) FROM __stage").fetchone()[0]
    if n == 0:
        raise ImportRejected(t.name, name, [Problem(None, None, "the file has a header but no data rows")])
    if n > limits.max_rows:
        raise ImportRejected(t.name, name, [Problem(None, None, f"{n:,} rows is more than the limit of {limits.max_rows:,}")])
    return present, offset


def _q(ident: str) -> str:
    return ident.replace('"', '""')


def _validate(con: duckdb.DuckDBPyConnection, t: Table, present: set[str], limits: Limits) -> tuple[list[Problem], int]:
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
    if checks:  # one scan counts every check; only the failing ones are then listed
        counts = con.execute("SELECT " + ", ".join(f"count(*) FILTER (WHERE {cond})" for _, cond, _ in checks)
                             + " FROM __stage s").fetchone()
        for (column, cond, reason), cnt in zip(checks, counts, strict=True):
            if cnt:
                collect(f'SELECT __row, "{column}" FROM __stage s WHERE {cond}', column, reason)
    if all(k in present for k in t.key):
        key = ", ".join(f'{_raw(k)}' for k in t.key)
        collect(f"SELECT min(__row), {key} FROM __stage s GROUP BY {key} HAVING count(*) > 1",
                t.key[0], "duplicate key in the file")
    for column, parent, pcol in t.parents:
        if column in present:
            collect(
                f'SELECT s.__row, {_raw(column)} FROM __stage s WHERE {_raw(column)} IS NOT NULL AND NOT EXISTS '
                f'(SELECT 1 FROM "{parent}" p WHERE p."{pcol}" = {_raw(column)})',
                column, f"unknown {column}: not in {parent}")
    if problems:  # the typed checks below assume parseable values
        problems.sort(key=lambda p: (p.row is None, p.row or 0))
        return problems, total
    typed = _typed_select(t, present)
    con.execute(f"CREATE TEMP TABLE __typed AS SELECT s.__row, {typed} FROM __stage s")
    con.execute("DROP TABLE __stage")  # the text copy is no longer needed: free its memory
    if t.key[0] not in present and t.derive_key_from:
        parts = " || '|' || ".join(f"coalesce(CAST(\"{c}\" AS VARCHAR), '')" for c in t.derive_key_from)
        part_cols = ", ".join(f'"{c}"' for c in t.derive_key_from)
        con.execute(
            f"UPDATE __typed SET \"{t.key[0]}\" = 'h' || substr(md5({parts} || '|' || CAST(k.ord AS VARCHAR)), 1, 20) "
            f"FROM (SELECT __row AS r, row_number() OVER (PARTITION BY {part_cols} ORDER BY __row) AS ord "
            "FROM __typed) k WHERE k.r = __typed.__row")
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


def _staging_config() -> dict[str, str]:
    """Settings of the private staging database: its memory is capped (``CX_IMPORT_MEMORY``,
    default 640MB) and spills to a temporary directory beyond that, so a file of any size is
    staged in bounded memory."""
    return {"memory_limit": os.environ.get("CX_IMPORT_MEMORY", "640MB"),
            "temp_directory": os.path.join(tempfile.gettempdir(), "cxmetrics-import")}


def import_file(path: str | os.PathLike, table: str, *, db: str | os.PathLike | None = None,
                mapping: dict[str, str] | None = None, encoding: str | None = None,
                limits: Limits | None = None, actor: str = "cli", dry_run: bool = False,
                role: str = "analyst", source: str | None = None) -> ImportReport:
    """Validate and import one file into ``table``. All-or-nothing; raises :class:`ImportRejected`.

    ``dry_run`` validates and reports without writing anything (used by the app before it asks
    for confirmation). ``role`` is the caller's role, checked before anything is read (finance
    assumptions only by the finance role, other tables by the analyst) and recorded in the audit
    row; ``source`` is the name to log (the uploaded file's own name, not its temporary path).
    """
    from . import roles

    path = Path(path)
    if not roles.can(role, roles.import_action(table)):
        raise PermissionError(f"the {role or 'unknown'} role may not import into {table}"
                              + (" (finance assumptions are imported by the finance role)"
                                 if table == "assumptions" else ""))
    token = _ROLE.set(role)
    try:
        return _import_file(path, table, db=db, mapping=mapping, encoding=encoding, limits=limits,
                            actor=actor, dry_run=dry_run, source=source or path.name)
    finally:
        _ROLE.reset(token)


#: the caller's role for the audit rows written by the current import
_ROLE: contextvars.ContextVar[str | None] = contextvars.ContextVar("cx_import_role", default=None)


def _import_file(path: Path, table: str, *, db, mapping, encoding, limits, actor, dry_run, source) -> ImportReport:
    limits = limits or Limits()
    mapping = dict(mapping or {})
    if table not in TABLES:
        raise ImportRejected(table, path.name, [Problem(None, None, f"unknown table {table}; one of {', '.join(schema.IMPORTABLE)}")])
    t = TABLES[table]
    if not path.exists():
        raise ImportRejected(table, path.name, [Problem(None, None, "file not found")])
    size = path.stat().st_size
    if size == 0:
        raise ImportRejected(table, path.name, [Problem(None, None, "the file is empty")])
    if size > limits.max_bytes:
        raise ImportRejected(table, path.name, [Problem(None, None, f"the file is {size:,} bytes, over the limit of {limits.max_bytes:,}")])
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    digest = sha256_of(path)
    report = ImportReport(table=table, source=source, sha256=digest, rows=0)
    started = store.now()
    try:
        fmt = _detect_format(path, head)
    except ImportRejected as exc:
        exc.table = table
        _record_rejection(db, report, started, exc, actor, dry_run)
        raise
    report.format = fmt
    # Stage and validate in a private in-memory database with the store attached read-only, so
    # readers (the dashboard) are not blocked while a large file is parsed and checked; the write
    # lock is taken only for the final transaction.
    if not store.db_path(db).exists() and not dry_run:
        with store.connect(db, read_only=False):
            pass  # a first import creates the store
    con = duckdb.connect(config=_staging_config())
    try:
        rejected = None
        with store.attached(con, db, read_only=True):
            try:
                t0 = time.perf_counter()
                present, _ = _stage(con, path, t, fmt, encoding, mapping, limits, report)
                report.rows = con.execute("SELECT count(*) FROM __stage").fetchone()[0]
                problems, total = _validate(con, t, present, limits)
                report.seconds_validating = time.perf_counter() - t0
                if problems:
                    raise ImportRejected(table, path.name, problems, total)
            except ImportRejected as exc:
                exc.table = table
                rejected = exc
        if rejected is not None:
            if not dry_run:
                with store.attached(con, db, read_only=False):
                    _log(con, report, started, "rejected", rejected.summary(), actor)
            raise rejected
        if dry_run:
            report.inserted = report.rows
            return report
        with store.attached(con, db, read_only=False):
            try:
                _write(con, t, present, report, started, actor)
            except duckdb.ConstraintException as exc:  # a safety net: the checks above should catch it
                rejected = ImportRejected(table, path.name, [Problem(
                    None, None, f"the store refused the rows: {str(exc).splitlines()[0]}")])
                _log(con, report, started, "rejected", rejected.summary(), actor)
                raise rejected from None
    finally:
        con.close()
    return report


def _record_rejection(db, report, started, exc, actor, dry_run):
    if dry_run:
        return
    with store.connect(db, read_only=False) as con:
        _log(con, report, started, "rejected", exc.summary(), actor)


def _log(con, report: ImportReport, started, status: str, error: str | None, actor: str) -> int:
    row = con.execute(
        'INSERT INTO imports ("table", source, sha256, rows, started_at, finished_at, status, error, '
        "inserted, updated, actor) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING import_id",
        [report.table, report.source, report.sha256, report.rows, started, store.now(), status, error,
         report.inserted, report.updated, actor]).fetchone()
    store.audit(con, actor=actor, action="import", object=f"{report.table} ← {report.source}",
                outcome=status, role=_ROLE.get(), detail=json.dumps({"sha256": report.sha256, "rows": report.rows,
                                                    "error": error}))
    return row[0]


def _write(con, t: Table, present: set[str], report: ImportReport, started, actor: str) -> None:
    """Upsert the typed rows by key inside one explicit transaction."""
    cols = ", ".join(f'"{c}"' for c in t.names)
    key = ", ".join(f'"{k}"' for k in t.key)
    key_match = " AND ".join(f'x."{k}" = y."{k}"' for k in t.key)
    # columns absent from the file keep their stored value on update (NULL on insert)
    keep = [c for c in t.names if c not in present and c not in t.key]
    # Prepare the staged rows first (a transaction may write to one database only); nobody else
    # can write between here and COMMIT because this process holds the store's write lock.
    report.updated = con.execute(
        f'SELECT count(*) FROM __typed y WHERE EXISTS (SELECT 1 FROM "{t.name}" x WHERE {key_match})'
    ).fetchone()[0]
    if keep and report.updated:
        sets = ", ".join(f'"{c}" = x."{c}"' for c in keep)
        con.execute(f'UPDATE __typed y SET {sets} FROM "{t.name}" x WHERE {key_match}')
    # survey weights default to 1 (after the merge: a stored weight is kept)
    values = ", ".join('coalesce("weight", 1.0)' if (t.name == "survey_responses" and c == "weight") else f'"{c}"'
                       for c in t.names)
    con.execute("BEGIN TRANSACTION")
    try:
        if t.fact:
            con.execute(f'DELETE FROM "{t.name}" x WHERE EXISTS (SELECT 1 FROM __typed y WHERE {key_match})')
            con.execute(f'INSERT INTO "{t.name}" ({cols}) SELECT {values} FROM __typed')
        else:
            upd = ", ".join(f'"{c}" = excluded."{c}"' for c in t.names if c not in t.key)
            con.execute(f'INSERT INTO "{t.name}" ({cols}) SELECT {values} FROM __typed '
                        f"ON CONFLICT ({key}) DO UPDATE SET {upd}")
        report.inserted = report.rows - report.updated
        if t.name == "assumptions":
            from . import assumptions  # versions every changed assumption

            assumptions.record_history(con, actor=actor, action=f"import {report.source}")
        t0 = time.perf_counter()
        store.bump_version(con, [t.name])
        report.seconds_summaries = time.perf_counter() - t0
        report.import_id = _log(con, report, started, "accepted", None, actor)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise

