"""Validated, all-or-nothing, idempotent import of CSV, Excel, Parquet and Qualtrics files.

Flow: an unchanged re-import is answered from the file's hash (:mod:`cxmetrics.import_digest`) →
detect format and encoding → parse (a plain UTF-8 CSV by DuckDB in parallel, :mod:`cxmetrics.import_fast`;
other CSV with the csv module, xlsx with python-calamine, both into records in memory: such a file is
held whole while it is staged; Parquet is read by pyarrow) into a staging table of text columns named by position, in a private in-memory DuckDB with
the store attached read-only (file headers never become SQL identifiers) → run every check in SQL and collect all problems with their row and column → if
any, record a rejected import and raise :class:`ImportRejected`; else attach the store read-write
and upsert by key inside ``BEGIN … COMMIT`` and record it (the write lock is held only then).

Row numbers are those a person sees: for CSV the line of the file (the header is line 1; a
Qualtrics export's data starts at line 4), for Excel the sheet's row.
"""

from __future__ import annotations

__all__ = ["ImportOptions", "ImportRejected", "ImportReport", "Limits", "Problem", "import_file", "parse_labels",
           "parse_mapping", "parse_sets", "sha256_of"]

import contextvars
import json
import os
import re
import tempfile
import time
from pathlib import Path

import duckdb

from cxmetrics import store
from cxmetrics.registers import import_digest, import_fast, import_rows, parsing, readers
from cxmetrics.registers.import_checks import _validate
from cxmetrics.registers.import_files import (
    _detect_encoding,
    _detect_format,
    _norm,
    _qualtrics_mapping,
    _read_csv_records,
    _read_xlsx,
    is_qualtrics,
    parse_mapping,
    sha256_of,
)
from cxmetrics.registers.import_types import ImportRejected, ImportReport, Limits, Problem
from cxmetrics.registers.import_values import (
    _MISSING,
    _NUMBER,
    _SCORES,
    ImportOptions,
    _convert_dates,
    _parse_amount,
    _qualtrics_filter,
    _score_values,
    parse_labels,
    parse_sets,
)
from cxmetrics.store import schema, stubs
from cxmetrics.store.schema import TABLES, Table

# ----------------------------------------------------------------------------- the import


def _header(first: list, report: ImportReport) -> list[str]:
    """The header record as text; headers with invisible or full-width characters are noted."""
    header = ["" if h is None else str(h).lstrip("\ufeff") for h in first]
    hidden = [h for h in header if parsing.clean_header(h) != h.strip()]
    if hidden:  # a zero-width space or full-width letters in a header must not drop the column
        report.warnings.append("headers with invisible or full-width characters read without them: "
                               + ", ".join(repr(h) for h in hidden[:10]))
    return header


def _map_columns(t: Table, header: list[str], mapping: dict, opts: ImportOptions, report: ImportReport,
                 fmt: str, qualtrics: bool, unsupported: dict[int, str], name: str):
    """Match the file's columns to ours (shared by the CSV fast path, :mod:`cxmetrics.import_fast`):
    ``(seen, present, amount, opts)`` with ``seen`` = {our column: source position}. Raises
    :class:`ImportRejected` for a mapping that cannot work (two sources for one column, an
    unknown target, a required column missing)."""
    problems: list[Problem] = []
    # map source columns to ours: --map wins (an empty target removes a column), then the header's own name
    lookup = {_norm(k): v for k, v in mapping.items()}
    targets: list[list[str]] = []
    for h in header:
        m = mapping[h] if h in mapping else lookup.get(_norm(h)) if _norm(h) in lookup else None
        if m is None:
            tg = [_norm(h)] if h.strip() else []
        else:
            tg = [x.strip() for x in (m if isinstance(m, (list, tuple)) else [m]) if x.strip()]
        targets.append([x for x in tg if x in t.names] if m is None else tg)
    unknown = [h for h, tg in zip(header, targets, strict=False) if not tg and h.strip() and h not in mapping]
    if unknown:
        report.warnings.append("ignored columns not in the contract: " + ", ".join(unknown[:20])
                               + (f" … (+{len(unknown) - 20})" if len(unknown) > 20 else ""))
    seen: dict[str, int] = {}
    for i, tgs in enumerate(targets):
        for tgt in tgs:
            if tgt in seen:
                problems.append(Problem(1, tgt, f"two columns map to {tgt} (positions {seen[tgt] + 1} and {i + 1})"))
            seen[tgt] = i
    for m_target in [x for v in mapping.values() for x in (v if isinstance(v, (list, tuple)) else [v])]:
        if m_target.strip() and m_target.strip() not in t.names:
            problems.append(Problem(None, m_target, f"--map target {m_target} is not a column of {t.name}"))
    for k in opts.sets:
        if k not in t.names:
            problems.append(Problem(None, k, f"--set column {k} is not a column of {t.name}"))
        elif k in seen:
            problems.append(Problem(None, k, f"--set {k} and the file's column {header[seen[k]]!r} both give {k}"))
    amount = None
    if opts.amount:
        try:
            amount = _parse_amount(opts.amount, header)
        except ValueError as exc:
            problems.append(Problem(None, "amount", str(exc)))
        if "amount" not in t.names:
            problems.append(Problem(None, "amount", f"--amount applies to transactions, not {t.name}"))
        seen.pop("amount", None)
    present = set(seen) | set(opts.sets) | ({"amount"} if amount else set())
    report.header_rows, report.source_columns = (3 if qualtrics else 1), header
    report.columns = ([[header[i], tgt] for tgt, i in seen.items()] + [[f"--set {k}={v}", k] for k, v in opts.sets.items()]
                      + ([[f"--amount {opts.amount}", "amount"]] if amount else []))
    if fmt == "qualtrics" and "survey" not in present:
        opts = ImportOptions(**{**opts.__dict__, "sets": {**opts.sets, "survey": "relationship"}})
        present.add("survey")
    for c in t.required:
        if c not in present and not (c in t.key and t.derive_key_from) and not (c in t.key and t.fact):
            problems.append(Problem(None, c, f"Required column {c} missing"))
    problems += [Problem(None, header[i], unsupported[i]) for i in sorted(set(seen.values()) & set(unsupported))]
    if problems:
        raise ImportRejected(t.name, name, problems)
    return seen, present, amount, opts


def _fast_rules() -> import_fast.Rules:
    return import_fast.Rules(header=_header, map_columns=_map_columns, rejected=ImportRejected, problem=Problem,
                             options=ImportOptions, scores=_SCORES)


def _stage(con: duckdb.DuckDBPyConnection, path: Path, t: Table, fmt: str, encoding: str | None,
           mapping: dict, limits: Limits, report: ImportReport,
           options: ImportOptions | None = None) -> tuple[set[str], int]:
    """Load the file into TEMP table __stage (text columns named after our columns, plus __row).

    Returns the set of our columns present, and the row offset (file line of data row 1).
    """
    name = path.name
    opts = options or ImportOptions()
    unsupported: dict[int, str] = {}
    if fmt == "parquet":  # read into text rows and checked by the same rules as a CSV file
        rows, unsupported, pq_notes, found = readers.read_parquet(path)
        if found:
            raise ImportRejected(t.name, name, [Problem(*f) for f in found])
        report.warnings.extend(pq_notes)
        records = list(enumerate(rows))  # rows numbered from 1 after the header
    elif fmt == "xlsx":
        rows = _read_xlsx(path, limits, name, opts.sheet)
        if not rows:
            raise ImportRejected(t.name, name, [Problem(None, None, "the workbook's sheet is empty")])
        records = [(i + 1, r) for i, r in enumerate(rows)]
    elif import_fast.enabled() and (fast := import_fast.stage(con, path, t, encoding, mapping, limits, report,
                                                              options, _fast_rules())) is not None:
        return fast  # a plain UTF-8 file read by DuckDB, cleaned in SQL as below
    else:
        enc, bom = _detect_encoding(path, open(path, "rb").read(1 << 16), encoding)
        report.encoding = enc
        records, delim, header_end = _read_csv_records(path, t, enc, bom, limits)
        if not records or not any((x or "").strip() for x in records[0][1]):
            raise ImportRejected(t.name, name, [Problem(1, None, "no header row")])
        if header_end > 1:
            raise ImportRejected(t.name, name, [Problem(1, None,
                f"the header record spans lines 1–{header_end}: a quote in the header is never "
                "closed where it should be, so it swallows data rows; fix the header's quotes")])
        if (swallowed := parsing.swallowed_records(records, delim)) is not None:
            line, pos, part = swallowed
            raise ImportRejected(t.name, name, [Problem(line, str(records[0][1][pos]),
                "a quoted value runs over several lines and holds what looks like a whole record: a "
                "quote is probably not closed, so rows would be lost; fix the quotes", part[:80])])
    header = _header(records[0][1], report)
    body = records[1:]
    qualtrics = is_qualtrics([r for _, r in records[:3]])
    resaved = not qualtrics and {"ResponseId", "RecordedDate"} <= set(header)
    mapping = dict(mapping)
    if qualtrics or resaved:
        if t.name != "survey_responses":
            raise ImportRejected(t.name, name, [Problem(None, None, "a Qualtrics export can only be imported into survey_responses")])
        report.format = fmt = "qualtrics"
        qmap = _qualtrics_mapping(header, [str(x or "") for x in records[1][1]] if qualtrics else header)
        for src, tgt in qmap.items():
            mapping.setdefault(src, tgt)
        if qualtrics:
            body = body[2:]
        report.warnings.append("Qualtrics export detected" + (" (one header row: re-saved through Excel)" if resaved else "")
                               + ": mapped " + ", ".join(f"{k}→{v}" for k, v in qmap.items() if mapping.get(k)))
        counts: dict[str, int] = {}
        body = _qualtrics_filter(header, body, opts.include_incomplete, report.warnings, counts)
        report.excluded.update(counts)
    try:
        body = import_rows.filter_rows(header, body, opts.only, report)
    except ValueError as exc:
        raise ImportRejected(t.name, name, [Problem(None, None, str(exc))]) from None
    # wrong number of fields is reported by line before anything else
    problems: list[Problem] = []
    width = len(header)
    for line, rec in body:
        if len(rec) != width and not (len(rec) < width and fmt == "xlsx"):
            problems.append(Problem(line, None, f"wrong number of fields: expected {width}, found {len(rec)}"))
            if len(problems) >= limits.max_problems_per_check:
                break
    if problems:
        raise ImportRejected(t.name, name, problems)
    if not body:
        raise ImportRejected(t.name, name, [Problem(None, None, "the file has a header but no data rows")])

    seen, present, amount, opts = _map_columns(t, header, mapping, opts, report, fmt, qualtrics, unsupported, name)

    lines = [line for line, _ in body]
    cols: dict[str, list] = {}

    def cell(rec, i, raw=False):
        v = rec[i] if i < len(rec) else None
        if v is None:
            return None
        v = str(v)
        s = v.strip()
        return None if s in _MISSING else (v if raw else s)

    for tgt, i in seen.items():
        # identifiers and categories keep surrounding whitespace here: parsing.clean_identifiers
        # trims it and reports it (a trailing tab is never removed silently)
        raw = t.column(tgt).kind in ("id", "category")
        cols[tgt] = [cell(rec, i, raw) for _, rec in body]
    for k, v in opts.sets.items():
        cols[k] = [v or None] * len(body)
    if amount:
        from decimal import Decimal, InvalidOperation

        op, idx = amount
        vals = []
        for line, rec in body:
            parts = [cell(rec, i) for i in idx]
            if any(p is None for p in parts):
                vals.append(None)
                continue
            try:
                if not all(_NUMBER.match(p) for p in parts):  # Decimal would read 1_0 as 10
                    raise InvalidOperation
                nums = [Decimal(p) for p in parts]
            except InvalidOperation:
                bad = next(j for j, p in zip(idx, parts, strict=True) if not _NUMBER.match(p))
                problems.append(Problem(line, header[bad], "not a number (in --amount)", cell(rec, bad)))
                vals.append(None)
                continue
            total = nums[0]
            for x in nums[1:]:
                total = total * x if op == "*" else total + x
            vals.append(str(total))
        cols["amount"] = vals
    notes = report.warnings
    for tgt in list(cols):
        c = t.column(tgt)
        src = header[seen[tgt]] if tgt in seen else tgt
        if c.kind in ("id", "category"):  # look-alike identifiers: normalised and reported, or refused
            found: list = []
            cols[tgt] = parsing.clean_identifiers(cols[tgt], lines, tgt, found, notes, strict=c.kind == "id")
            problems += [Problem(*f) for f in found]
        if c.kind == "date":
            cols[tgt] = _convert_dates(cols[tgt], lines, tgt, opts.date_format, problems, notes)
        elif c.kind in ("int", "float") and tgt != "amount":
            cols[tgt] = _score_values(cols[tgt], lines, tgt, src, c, opts.labels, problems, notes)
        elif c.kind == "id":
            vals = [v for v in cols[tgt] if v is not None]
            if vals and all(re.fullmatch(r"-?\d+\.0+", v) for v in vals):
                cols[tgt] = [None if v is None else v.split(".")[0] for v in cols[tgt]]
                notes.append(f"{tgt}: integral numbers written as floats (e.g. {vals[0]}) read as {vals[0].split('.')[0]}")
    if problems:
        problems.sort(key=lambda p: (p.row is None, p.row or 0))
        raise ImportRejected(t.name, name, problems[:limits.max_problems_per_check * 5], len(problems))
    # rows with no answer at all (no score, no text) are skipped and counted
    if t.name == "survey_responses" and any(s in cols for s in _SCORES):
        answer = [cols[s] for s in (*_SCORES, "verbatim") if s in cols]
        keep = [i for i in range(len(body)) if any(a[i] is not None for a in answer)]
        skipped = len(body) - len(keep)
        if skipped:
            report.excluded["no_answer"] = skipped
            notes.append(f"{skipped:,} row(s) with no answer at all (no score, no text) skipped")
            lines = [lines[i] for i in keep]
            cols = {k: [v[i] for i in keep] for k, v in cols.items()}
    lines, cols = stubs.drop_rows_without_customer(t.name, lines, cols, report)
    if not lines:
        raise ImportRejected(t.name, name, [Problem(None, None, "the file has no rows left to import")])
    import pyarrow as pa

    arrays = {k: pa.array(v, pa.string()) for k, v in cols.items()}
    arrays["__row"] = pa.array(lines, pa.int64())
    con.register("__rows", pa.table(arrays))
    sel = ", ".join(f'"{k}"' for k in cols)
    con.execute(f"CREATE TEMP TABLE __stage AS SELECT __row, {sel} FROM __rows")  # noqa: S608 (schema names)
    con.unregister("__rows")
    n = len(lines)
    if n > limits.max_rows:
        raise ImportRejected(t.name, name, [Problem(None, None, f"{n:,} rows is more than the limit of {limits.max_rows:,}")])
    return present, lines[0] - 1


def _staging_config() -> dict[str, str]:
    """Settings of the private staging database: its memory is capped (``CX_IMPORT_MEMORY``,
    default 640MB) and spills to a temporary directory beyond that. The final transaction runs
    under the same cap first, then once under DuckDB's default when it runs out
    (:func:`_more_memory`). A plain CSV file is read by DuckDB (:mod:`cxmetrics.import_fast`)
    within that bound; the records the general reader parses from other CSV or xlsx files are
    held in Python memory before staging, so those are not."""
    return {"memory_limit": _cap(), "temp_directory": os.path.join(tempfile.gettempdir(), "cxmetrics-import")}


def _cap() -> str:
    """The import's memory cap as set (``CX_IMPORT_MEMORY``, default 640MB)."""
    return os.environ.get("CX_IMPORT_MEMORY", "640MB")


#: The ``meta`` key recording the cap (as set) under which a write into this store ran out of
#: memory: the next write under the same cap goes straight to DuckDB's default limit.
_SHORT_CAP = "import_cap_short"


def import_file(path: str | os.PathLike, table: str, *, db: str | os.PathLike | None = None,
                mapping: dict[str, str] | None = None, encoding: str | None = None,
                limits: Limits | None = None, actor: str = "cli", dry_run: bool = False,
                options: ImportOptions | None = None, role: str = "analyst",
                source: str | None = None) -> ImportReport:
    """Validate and import one file into ``table``. All-or-nothing; raises :class:`ImportRejected`.

    ``options`` carries what real files need (Qualtrics incomplete rows, labels, constants, an
    amount expression, line items, a date format, a sheet); see :class:`ImportOptions`. A file
    that adds nothing to what is stored changes nothing (``report.status == "unchanged"``).

    ``dry_run`` validates and reports without writing anything (used by the app before it asks
    for confirmation). ``role`` is the caller's role, checked before anything is read (finance
    assumptions only by the finance role, other tables by the analyst) and recorded in the audit
    row; ``source`` is the name to log (the uploaded file's own name, not its temporary path).
    """
    from cxmetrics.core import roles

    path = Path(path)
    if not roles.can(role, roles.import_action(table)):
        raise PermissionError(f"the {role or 'unknown'} role may not import into {table}"
                              + (" (finance assumptions are imported by the finance role)"
                                 if table == "assumptions" else ""))
    token = _ROLE.set(role)
    digest_token = _OPTIONS.set(import_digest.options_digest(table, mapping, encoding, options or ImportOptions()))
    file_token = _FILE.set(None)
    try:
        return _import_file(path, table, db=db, mapping=mapping, encoding=encoding, limits=limits,
                            actor=actor, dry_run=dry_run, source=source or path.name, options=options)
    finally:
        _FILE.reset(file_token)
        _OPTIONS.reset(digest_token)
        _ROLE.reset(token)


#: the caller's role for the audit rows written by the current import
_ROLE: contextvars.ContextVar[str | None] = contextvars.ContextVar("cx_import_role", default=None)
#: the digest of the current import's options (see cxmetrics.import_digest), logged with it
_OPTIONS: contextvars.ContextVar[str | None] = contextvars.ContextVar("cx_import_options", default=None)
#: the identity of the file the current import reads, when settled (cxmetrics.import_digest.file_identity)
_FILE: contextvars.ContextVar[str | None] = contextvars.ContextVar("cx_import_file", default=None)


def _import_file(path: Path, table: str, *, db, mapping, encoding, limits, actor, dry_run, source,
                 options=None) -> ImportReport:
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
    # the file's identity is taken before it is read, and its hash from an earlier import of that
    # identity if there was one (cxmetrics.import_digest)
    identity = import_digest.file_identity(path)
    _FILE.set(identity)
    known = import_digest.known_sha256(db, identity)
    if not known:
        store.progress("hashing the file (SHA-256)")
    digest = known or sha256_of(path)
    report = ImportReport(table=table, source=source, sha256=digest, rows=0)
    started = store.now()
    # the same bytes with the same options into the data version they produced: nothing to read
    if not dry_run and (seen := import_digest.seen_rows(db, table, digest, _OPTIONS.get())) is not None:
        report.rows, report.status = seen, "unchanged"
        how = ("the same file, not changed since an earlier import hashed it: same device, inode, size, "
               "modification and status-change times" if known else "same sha256")
        report.warnings.append("unchanged: this file was imported with the same options into the current data "
                               f"version ({how}); it was not read again and nothing was written")
        # still logged: the audit lists every import attempt (who brought which file when), and an
        # unchanged one is no exception. The write open costs little: the store is as the last
        # checked write left it, so its blocks are not read again (faults.verify_once).
        with store.connect(db, read_only=False) as con:
            report.import_id = _log(con, report, started, "unchanged", None, actor)
        return report
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
    con.execute("SET enable_progress_bar = false")  # a long scan must not draw bars into the CLI's stderr
    try:
        rejected, unchanged, short = None, False, False
        with store.attached(con, db, read_only=True):
            try:
                t0 = time.perf_counter()
                store.progress("reading the file")
                present, _ = _stage(con, path, t, fmt, encoding, mapping, limits, report, options)
                report.rows = con.execute("SELECT count(*) FROM __stage").fetchone()[0]
                store.progress(f"checking {report.rows:,} rows")
                problems, total = _validate(con, t, present, limits, digest,
                                            bool(options and options.line_items), report)
                report.seconds_validating = time.perf_counter() - t0
                if problems:
                    raise ImportRejected(table, path.name, problems, total)
                unchanged = _unchanged(con, t)
                short = con.execute("SELECT value FROM meta WHERE key = $k", {"k": _SHORT_CAP}).fetchone() == (_cap(),)
                stubs.preview(con, t.name, report)
            except ImportRejected as exc:
                exc.table = table
                exc.notes = list(report.warnings)
                rejected = exc
        if rejected is not None:
            if not dry_run:
                with store.attached(con, db, read_only=False):
                    _log(con, report, started, "rejected", rejected.summary(), actor)
            raise rejected
        if dry_run:
            report.inserted = report.rows
            report.sample = _sample(con, t)
            return report
        if unchanged:
            report.status = "unchanged"
            report.warnings.append("unchanged: every row is already stored as it is in this file; nothing was written")
            with store.attached(con, db, read_only=False):
                report.import_id = _log(con, report, started, "unchanged", None, actor)
            return report
        warnings = list(report.warnings)
        if short:  # the last write into this store ran out of memory under this cap: not tried again
            con.execute("RESET memory_limit")
            warnings.append(f"the last write into this store ran out of memory under the import's cap of {_cap()} "
                            "(CX_IMPORT_MEMORY), so this one ran under DuckDB's default memory limit ("
                            + con.execute("SELECT current_setting('memory_limit')").fetchone()[0] + ") from the start")
            report.warnings[:] = warnings
        for last in (True,) if short else (False, True):  # again under more memory when the cap was not enough
            t0 = time.perf_counter()
            store.progress(f"writing {report.rows:,} rows" + (" again, under more memory" if last and not short else ""))
            try:
                with store.attached(con, db, read_only=False):
                    try:
                        _write(con, t, present, report, started, actor, short_cap=_cap() if last else None)
                    except duckdb.ConstraintException as exc:  # a safety net: the checks above should catch it
                        rejected = ImportRejected(table, path.name, [Problem(
                            None, None, f"the store refused the rows: {str(exc).splitlines()[0]}")])
                        _log(con, report, started, "rejected", rejected.summary(), actor)
                        raise rejected from None
                break
            except duckdb.OutOfMemoryException:
                if last:
                    raise
                _more_memory(con, report, warnings, time.perf_counter() - t0)
    finally:
        con.close()
    return report


def _sample(con, t: Table, n: int = 20) -> list[dict]:
    """The first ``n`` typed rows as they will be stored (values as text), with their file row."""
    cols = ", ".join(f'CAST("{c}" AS VARCHAR) AS "{c}"' for c in t.names)
    cur = con.execute(f"SELECT __row AS row, {cols} FROM __typed ORDER BY __row LIMIT {int(n)}")  # noqa: S608
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _unchanged(con, t: Table) -> bool:
    """True when every staged row is already stored exactly so (the store is attached read-only)."""
    # staged rows are distinct (keys are unique in the file, derived from the row, or summed line
    # items), so a table holding fewer rows cannot hold them all: no need to compare 10M rows
    staged, stored = con.execute(f'SELECT (SELECT count(*) FROM __typed), (SELECT count(*) FROM "{t.name}")').fetchone()  # noqa: S608
    if stored < staged:
        return False
    # keys first (one column): a file with a key not stored is not unchanged, and only the stored
    # rows with the file's keys need comparing column by column
    key_match = " AND ".join(f'x."{k}" = y."{k}"' for k in t.key)
    matched = con.execute(f'SELECT count(*) FROM __typed y WHERE EXISTS (SELECT 1 FROM "{t.name}" x WHERE {key_match})'  # noqa: S608
                          ).fetchone()[0]
    if matched < staged:
        return False
    cols = ", ".join('coalesce("weight", 1.0)' if (t.name == "survey_responses" and c == "weight") else f'"{c}"'
                     for c in t.names)
    names = ", ".join(f'x."{c}"' for c in t.names)
    return con.execute(f'SELECT count(*) FROM (SELECT {cols} FROM __typed EXCEPT SELECT {names} FROM "{t.name}" x '  # noqa: S608
                       f'WHERE EXISTS (SELECT 1 FROM __typed y WHERE {key_match}))').fetchone()[0] == 0


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
                                                    "error": error, "options": _OPTIONS.get(), "file": _FILE.get(),
                                                    "data_version": store.data_version(con)}))
    return row[0]


def _more_memory(con, report: ImportReport, warnings: list[str], lost: float) -> None:
    """After the final transaction ran out of memory under the staging cap: DuckDB's default
    memory limit (80 % of the machine) for a second attempt, and the report says so.

    That transaction holds every stored table's changes of the write until ``COMMIT``, and what it
    needs grows with the store, not the file: an append of 100,000 answers to the ten-times bench
    store (100M answers) failed under caps of 640MB, 1GB and 2GB and needed 6.8 GiB of process
    memory (issue 21, by hand). The failed attempt was rolled back and the store detached, so the
    second one starts from the stored data as they were."""
    def limit() -> str:
        return con.execute("SELECT current_setting('memory_limit')").fetchone()[0]

    cap = limit()
    con.execute("RESET memory_limit")
    report.warnings[:] = warnings + [
        f"the write ran out of memory under the import's cap of {cap} (CX_IMPORT_MEMORY) after "
        f"{lost:.1f} s and was rolled back; it was done again under DuckDB's default memory limit ({limit()})"]


def _write(con, t: Table, present: set[str], report: ImportReport, started, actor: str,
           short_cap: str | None = None) -> None:
    """Upsert the typed rows by key inside one explicit transaction (``short_cap``: the import's
    memory cap this write needed more than, recorded with it for the next write)."""
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
    replaced = stubs.stubs_replaced(con, t.name)
    with store.transaction(con):
        created = stubs.create(con, t.name, report.source)
        if t.fact:
            if report.updated:  # counted above under the write lock: a pure append replaces nothing
                con.execute(f'DELETE FROM "{t.name}" x WHERE EXISTS (SELECT 1 FROM __typed y WHERE {key_match})')
            con.execute(f'INSERT INTO "{t.name}" ({cols}) SELECT {values} FROM __typed{t.stored_order}')
        else:
            upd = ", ".join(f'"{c}" = excluded."{c}"' for c in t.names if c not in t.key)
            con.execute(f'INSERT INTO "{t.name}" ({cols}) SELECT {values} FROM __typed '
                        f"ON CONFLICT ({key}) DO UPDATE SET {upd}")
        report.inserted = report.rows - report.updated
        stubs.clear(con, t.name)
        if replaced:
            report.warnings.append(f"{replaced:,} stub customer(s) replaced by this file's rows")
        if t.name == "assumptions":
            from cxmetrics.store import assumptions  # versions every changed assumption

            assumptions.record_history(con, actor=actor, action=f"import {report.source}")
        t0 = time.perf_counter()
        store.progress("bringing the summaries up to date")
        store.bump_version(con, [t.name, "customers"] if created else [t.name])
        report.seconds_summaries = time.perf_counter() - t0
        report.import_id = _log(con, report, started, "accepted", None, actor)
        if short_cap is not None:
            con.execute("INSERT OR REPLACE INTO meta VALUES ($k, $v)", {"k": _SHORT_CAP, "v": short_cap})

