"""The fast path for plain delimited UTF-8 files: DuckDB reads them in parallel, SQL does the rest.

The general reader (:mod:`cxmetrics.importer`) parses a CSV with Python's ``csv`` module into lists
held in memory; for a 10-million-row survey file that takes half a minute and several GiB (issue 21,
item 2). Most files are plain: one header line, UTF-8, one record per line, ISO dates, numbers
written as numbers. For those this module stages the file into ``__stage`` with DuckDB's
``read_csv`` (typed as text, in parallel, in bounded memory) and the same clean-up as the general
reader done in SQL, so that everything after staging — the checks, the messages, the write — is the
same code. The fast path gives way to the general reader (returns None, having changed nothing)
whenever it cannot *guarantee* the same rows and report:

* the file is not valid UTF-8, holds a NUL byte, a UTF-16/32 mark, bare carriage returns (CR-only
  or mixed line endings), or a space between a quote and a field boundary (where DuckDB trims the
  space and Python's reader keeps it or refuses the line);
* DuckDB refuses a line (wrong number of fields, a quote never closed, text after a closing quote),
  or reads a different number of records than the file has lines (a value over several lines, a
  blank line): the general reader then names the line;
* the file is a Qualtrics export, or the import uses labels, constants, an amount expression,
  ``--only``, ``--date-format`` or another encoding; the mapping of its header fails;
* a value needs what only the general reader does: dates not written ``YYYY-MM-DD``, scores that
  are not plain numbers (choice text), identifiers with characters outside printable ASCII (they
  are normalised or refused there), identifiers written as integral floats.

Rows are numbered by their line (the header is line 1), as the general reader numbers them: each
record is one line, which the record count check above makes sure of. ``tests/test_import_fast.py``
imports the same files both ways and compares stored rows, reports and the first problem.
"""

from __future__ import annotations

import codecs
import copy
import csv
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cxmetrics.registers import import_checks
from cxmetrics.registers.import_checks import _NUMBER_SQL
from cxmetrics.store.schema import Table

#: Characters Python's ``str.strip()`` removes (the general reader strips every value with it)
#: besides the space, which DuckDB's ``trim`` removes: as an RE2 class, for values that begin or
#: end with one (there the general reader decides). ``tests/test_import_fast.py`` checks the list
#: against ``str.isspace``.
OTHER_SPACE = ("[\\x{9}-\\x{d}\\x{1c}-\\x{1f}\\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}"
               "\\x{202f}\\x{205f}\\x{3000}]")
_PRINTABLE = bytes(range(0x20, 0x7F))
_CHUNK = 1 << 23


@dataclass(frozen=True)
class Rules:
    """What the general reader lends the fast path (passed in by :mod:`cxmetrics.importer`, which
    imports this module, so that the two do not import each other)."""

    header: Callable  # (first record, report) -> header
    map_columns: Callable  # (t, header, mapping, opts, report, fmt, qualtrics, unsupported, name)
    rejected: type  # ImportRejected
    problem: type  # Problem
    options: type  # ImportOptions
    scores: tuple  # the score columns a response needs one of


class _Scan:
    """One pass over the file's bytes: is it plain enough for DuckDB, and how many lines has it."""

    def __init__(self, path: Path, delim: bytes):
        self.ok, self.ascii_printable, self.lines = True, True, 0
        decoder = codecs.getincrementaldecoder("utf-8")()
        keep = _PRINTABLE + b"\n\r"  # a tab (even as the delimiter) makes the file not plain
        crs = crlfs = lfs = 0
        carry, last = b"", b""
        with open(path, "rb") as f:
            while self.ok:
                chunk = f.read(_CHUNK)
                if not chunk:
                    break
                last = chunk[-1:]
                if b"\x00" in chunk:
                    self.ok = False
                    break
                if not chunk.isascii():
                    try:
                        decoder.decode(chunk)
                    except UnicodeDecodeError:
                        self.ok = False
                        break
                if self.ascii_printable and chunk.translate(None, keep):
                    self.ascii_printable = False
                lfs += chunk.count(b"\n")
                crs += chunk.count(b"\r")
                # lines whole: a quote and its neighbours are never split between two buffers
                buf = carry + chunk
                cut = buf.rfind(b"\n") + 1
                work, carry = (buf[:cut], buf[cut:]) if cut else (b"", buf)
                if crs:  # no carriage return so far: none in this work either (a count spared)
                    crlfs += work.count(b"\r\n")
                if _space_by_quote(work, delim):
                    self.ok = False
        if self.ok and carry:
            crlfs += carry.count(b"\r\n")
            self.ok = not _space_by_quote(carry, delim)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            self.ok = False
        if crs and not (crs == crlfs == lfs):  # CR-only or mixed endings: the general reader
            self.ok = False
        self.lines = lfs + (1 if last and last not in b"\r\n" else 0)


def _space_by_quote(buf: bytes, delim: bytes) -> bool:
    """True when a space stands between a field boundary and a quote that opens or closes a value
    (`` "a"`` or ``"a" ,``): DuckDB trims such spaces, Python's reader keeps them or refuses the
    line. Escaped quotes (``""``) inside a quoted value are told apart by the parity of the run of
    quotes; anything doubtful counts (the general reader then decides)."""
    bounds = (delim[0], 10, 13)
    i = buf.find(b' "')
    while i != -1:
        j = i
        while j > 0 and buf[j - 1] == 32:
            j -= 1
        if j == 0 or buf[j - 1] in bounds:
            k = i + 1
            while k < len(buf) and buf[k] == 34:
                k += 1
            if (k - i - 1) % 2 == 1:
                return True
        i = buf.find(b' "', i + 2)
    i = buf.find(b'" ')
    while i != -1:
        k = i + 1
        while k < len(buf) and buf[k] == 32:
            k += 1
        if k == len(buf) or buf[k] in bounds:
            s = i
            while s > 0 and buf[s - 1] == 34:
                s -= 1
            if (i - s + 1) % 2 == 1 or s == 0 or buf[s - 1] in bounds:
                return True
        i = buf.find(b'" ', i + 2)
    return False


def _first_line(path: Path) -> str | None:
    """The header line (decoded, without a UTF-8 mark), or None."""
    with open(path, "rb") as f:
        head = f.read(1 << 20)
    if head.startswith(codecs.BOM_UTF8):
        head = head[3:]
    end = head.find(b"\n")
    if end == -1:
        return None
    try:
        return head[:end].rstrip(b"\r").decode("utf-8")
    except UnicodeDecodeError:
        return None


def plain_options(options, encoding: str | None) -> bool:
    """True when nothing asked for needs the general reader."""
    try:
        if encoding and codecs.lookup(encoding).name != "utf-8":
            return False
    except LookupError:
        return False
    return options is None or not (options.labels or options.sets or options.amount or options.only
                                   or options.date_format)


def stage(con, path: Path, t: Table, encoding: str | None, mapping: dict, limits, report, options,
          rules: Rules):
    """Stage a plain CSV file into ``__stage`` as the general reader would: ``(present, 1)``, or
    None (nothing changed, ``report`` as it was) when the general reader must do it."""
    if not plain_options(options, encoding):
        return None
    line = _first_line(path)
    if line is None:
        return None
    counts = {d: line.count(d) for d in (",", ";", "\t", "|")}
    delim = max(counts, key=counts.get) if max(counts.values()) > 0 else ","
    try:
        records = list(csv.reader([line], delimiter=delim, strict=True))
    except csv.Error:
        return None
    if len(records) != 1 or not any(x.strip() for x in records[0]):
        return None
    raw = records[0]
    if raw and raw[0].strip().startswith('{"ImportId"'):
        return None
    saved = copy.deepcopy(report.__dict__)
    header = rules.header(raw, report)
    if {"ResponseId", "RecordedDate"} <= set(header):  # a Qualtrics export re-saved through Excel
        report.__dict__.update(saved)
        return None
    scan = _Scan(path, delim.encode())
    if not scan.ok or scan.lines < 2 or scan.lines > limits.max_rows + 3:
        report.__dict__.update(saved)
        return None
    opts = options or rules.options()
    try:
        seen, present, amount, opts = rules.map_columns(t, header, dict(mapping), opts, report, "csv",
                                                            False, {}, path.name)
    except rules.rejected:
        report.__dict__.update(saved)  # the general reader may find a problem it names first
        return None
    if not _load(con, path, delim, len(header), seen, t) or not _same_as_general_reader(con, t, seen, scan):
        report.__dict__.update(saved)
        return None
    report.encoding = "utf-8"
    _skip_rows(con, t, seen, report, rules.scores)
    n = con.execute("SELECT count(*) FROM __stage").fetchone()[0]
    if not n:
        raise rules.rejected(t.name, path.name, [rules.problem(None, None, "the file has no rows left to import")])
    if n > limits.max_rows:
        raise rules.rejected(t.name, path.name, [rules.problem(
            None, None, f"{n:,} rows is more than the limit of {limits.max_rows:,}")])
    return present, 1


def _load(con, path: Path, delim: str, width: int, seen: dict[str, int], t: Table) -> bool:
    """``__stage`` from DuckDB's reader: each mapped column without surrounding spaces (identifiers
    and categories as read: the general reader trims and reports their spaces, so
    :func:`_same_as_general_reader` hands such a file over), empty and ``NA`` as missing, ``__row``
    the file line. False (and no table) when DuckDB refuses the file."""
    import duckdb

    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(width)) + "}"
    def value(tgt: str, i: int) -> str:
        raw = t.column(tgt).kind in ("id", "category")
        return f"NULLIF(NULLIF({f'c{i}' if raw else f'trim(c{i})'}, ''), 'NA') AS \"{tgt}\""

    cols = ", ".join(value(tgt, i) for tgt, i in seen.items())
    try:
        # the table keeps the file's order (DuckDB preserves insertion order): a row's rowid is its
        # record's index, so its line is rowid + 2, which the view __stage adds to every read.
        # Numbering the rows in the read (row_number() OVER ()) took half of it (4.5 of 9 s at 10M
        # rows); an UPDATE after it held 100M new values in memory the staging database cannot
        # spill, which then refused the 100M-row file at its duplicate-key check (issue 21)
        con.execute(
            f"CREATE TEMP TABLE __stage_file AS SELECT {cols} "  # noqa: S608
            f"FROM read_csv($path, delim = $delim, quote = '\"', escape = '\"', header = false, skip = 1, "
            f"columns = {columns}, auto_detect = false, strict_mode = true, null_padding = false, "
            "ignore_errors = false, encoding = 'utf-8')",
            {"path": str(path), "delim": delim})
    except duckdb.Error:
        import_checks.drop_stage(con)
        return False
    _view(con, [])
    return True


def _view(con, keep: list[str]) -> None:
    """``__stage``: the file's rows with their line, without the rows ``keep`` leaves out (the
    table is never changed, so a row's rowid stays its record's index)."""
    where = f" WHERE {' AND '.join(keep)}" if keep else ""
    con.execute(f"CREATE OR REPLACE TEMP VIEW __stage AS SELECT rowid + 2 AS __row, * FROM __stage_file{where}")  # noqa: S608


def _same_as_general_reader(con, t: Table, seen: dict[str, int], scan: _Scan) -> bool:
    """True when every staged value is what the general reader would stage (one scan of the rows
    and one of each few-valued column's distinct values, :func:`import_checks.count_where`); else
    the table is dropped."""
    conds: list[tuple[str | None, str]] = []
    for tgt in seen:
        c = t.column(tgt)
        v = f'"{tgt}"'
        if c.kind in ("id", "category"):
            conds.append((tgt, f"{v} <> trim({v})"))  # trimmed and reported there
            if not scan.ascii_printable:  # normalised or refused there (a value that begins or ends
                conds.append((tgt, f"NOT regexp_full_match({v}, '[ -~]*')"))  # with another space is not ASCII)
        elif not scan.ascii_printable:  # strip() removes more than spaces
            conds.append((tgt, f"regexp_matches({v}, '^{OTHER_SPACE}|{OTHER_SPACE}$')"))
        if c.kind == "date":
            conds.append((tgt, f"NOT regexp_full_match({v}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}')"))
        elif c.kind in ("int", "float") and tgt != "amount":
            conds.append((tgt, f"NOT regexp_full_match({v}, '{_NUMBER_SQL}', 'i')"))  # labels are read there
    ids = [tgt for tgt in seen if t.column(tgt).kind == "id"]
    # a column of integral floats used as an id is rewritten there: its values, and its integral floats
    shapes = [c for tgt in ids for c in ((tgt, f'"{tgt}" IS NOT NULL'),
                                         (tgt, f"regexp_full_match(\"{tgt}\", '-?[0-9]+\\.0+')"))]
    counts = import_checks.count_where(con, t, [*conds, *shapes, (None, "TRUE")])
    floats = counts[len(conds):-1]
    got = [*counts[:len(conds)], *(int(0 < floats[i] == floats[i + 1]) for i in range(0, len(floats), 2)),
           counts[-1]]
    if any(got[:-1]) or got[-1] != scan.lines - 1:  # a record over several lines, a blank line
        import_checks.drop_stage(con)
        return False
    return True


def _skip_rows(con, t: Table, seen: dict[str, int], report, score_columns: tuple) -> None:
    """Rows the general reader skips and counts: responses with no answer at all, transaction
    lines without a customer (same notes, same order)."""
    scores = [s for s in score_columns if s in seen]
    if t.name == "survey_responses" and scores:
        none = " AND ".join(f'"{c}" IS NULL' for c in (*scores, "verbatim") if c in seen)
        skipped = con.execute(f"SELECT count(*) FROM __stage WHERE {none}").fetchone()[0]  # noqa: S608
        if skipped:
            report.excluded["no_answer"] = skipped
            report.warnings.append(f"{skipped:,} row(s) with no answer at all (no score, no text) skipped")
            _view(con, [f"NOT ({none})"])
    if t.name == "transactions" and "customer_id" in seen:
        skipped, kept = con.execute("SELECT count(*) FILTER (WHERE customer_id IS NULL), count(customer_id) "
                                    "FROM __stage").fetchone()
        if skipped and kept:
            report.excluded["no_customer"] = skipped
            report.warnings.append(f"{skipped:,} row(s) without a customer id skipped (they belong to no customer)")
            _view(con, ["customer_id IS NOT NULL"])


def enabled() -> bool:
    """The fast path is on unless ``CX_IMPORT_FAST=0`` (the tests compare both paths)."""
    return os.environ.get("CX_IMPORT_FAST", "1") != "0"
