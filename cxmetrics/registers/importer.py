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

import codecs
import contextvars
import csv
import functools
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

from cxmetrics import store
from cxmetrics.registers import import_digest, import_fast, import_rows, parsing, readers
from cxmetrics.store import schema, stubs
from cxmetrics.store.schema import FORMULA_PREFIXES, TABLES, Column, Table


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
        #: what was detected before the rejection (e.g. "Qualtrics export detected …")
        self.notes: list[str] = []
        super().__init__(self.summary())

    def summary(self) -> str:
        first = str(self.problems[0]) if self.problems else "rejected"
        more = f" (+{self.total - 1} more problems)" if self.total > 1 else ""
        return f"{self.source} rejected for {self.table}: {first}{more}"

    def report(self) -> str:
        lines = [f"{self.source}: rejected, nothing was imported into {self.table}."]
        lines += [f"note: {n}" for n in self.notes]
        lines.append(f"{self.total} problem(s):")
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
    #: rows left out on purpose, by reason (previews, spam, unfinished, no_answer)
    excluded: dict = field(default_factory=dict)
    #: "unchanged" when the file adds nothing to what is stored (nothing was written)
    status: str = "accepted"
    #: anonymous responses (no customer id) and stub customers created (see cxmetrics.stubs)
    anonymous: int = 0
    stubs: int = 0
    #: what the file looked like (shown by the Data page before an import; see cxmetrics.import_preview):
    #: header rows, its columns, and (source, target) pairs of the mapping used
    header_rows: int | None = None
    source_columns: list = field(default_factory=list)
    columns: list = field(default_factory=list)
    #: in a dry run, the first rows as they will be stored (text values, with their file row)
    sample: list = field(default_factory=list)

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
        src, tgt = src.strip(), tgt.strip()
        if src in out and tgt and out[src]:  # one source column feeding two targets
            prev = out[src]
            out[src] = (*(prev if isinstance(prev, tuple) else (prev,)), tgt)
        else:
            out[src] = tgt  # an empty target removes the column (and any automatic mapping)
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


# Encodings accepted by ``--encoding`` (Python codec names; see :mod:`cxmetrics.parsing`).
@functools.cache
def _encodings() -> dict[str, str]:
    """Codec name → the codec to read with (looked up on first use: each lookup imports a codec)."""
    return {"utf-8": "utf-8", "utf-8-sig": "utf-8", "latin-1": "latin-1", "iso8859-1": "latin-1",
            **{codecs.lookup(e).name: codecs.lookup(e).name for e in parsing.EXPLICIT_ENCODINGS}}


def _line_of(data: bytes, pos: int) -> int:
    """The file line (CR, LF or CRLF endings) holding byte ``pos``."""
    return len(re.findall(rb"\r\n|\r|\n", data[:pos])) + 1


def _detect_encoding(path: Path, head: bytes, requested: str | None) -> tuple[str, int]:
    """Return (Python codec, bytes of BOM). Rejects encodings we cannot read, by name, and bytes
    that are invalid in the stated or detected encoding, by line and byte."""
    name = path.name
    for bom, enc in ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
                     (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16")):
        if head.startswith(bom):
            raise ImportRejected("?", name, [Problem(None, None, f"the file is {enc}-encoded; save it as UTF-8")])
    if b"\x00" in head:
        raise ImportRejected("?", name, [Problem(None, None, "the file contains NUL bytes: it is binary, not CSV text")])
    bom = 3 if head.startswith(codecs.BOM_UTF8) else 0
    data = path.read_bytes()
    enc = "utf-8"
    if requested:
        try:
            norm = codecs.lookup(requested).name
        except LookupError:
            norm = requested.lower()
        if norm not in _encodings():
            raise ImportRejected("?", name, [Problem(None, None, f"encoding {requested} is not supported; "
                                                     "use one of " + ", ".join(parsing.EXPLICIT_ENCODINGS))])
        enc = _encodings()[norm]
        if enc != "utf-8":
            bom = 0
    try:
        data[bom:].decode(enc)
    except UnicodeDecodeError as exc:
        start = exc.start + bom
        line = _line_of(data, start)
        byte = f"0x{data[start]:02x}"
        if requested:
            raise ImportRejected("?", name, [Problem(line, None, f"byte {byte} is not valid {requested}")]) from None
        if exc.end + bom >= len(data) and "unexpected end" in exc.reason:
            raise ImportRejected("?", name, [Problem(line, None, "the file ends in the middle of a UTF-8 character (truncated?)")]) from None
        # valid multi-byte UTF-8 elsewhere: a UTF-8 file with a stray byte, never read as Latin-1
        if re.search(rb"[\xc2-\xf4][\x80-\xbf]+", data) and _mostly_utf8(data):
            raise ImportRejected("?", name, [Problem(line, None,
                f"byte {byte} is not valid UTF-8 in a file that is otherwise UTF-8; fix that byte "
                "(or pass --encoding if the whole file is in another encoding)", repr(data[start - 1:start + 2]))]) from None
        if not re.search(rb"[\x80-\x9f]", data):
            bad = parsing.western_implausible(data[bom:].decode("latin-1"))
            if bad is None:
                return "latin-1", 0  # Western European text in Latin-1
            start = bad + bom
            line = _line_of(data, start)
        guess = parsing.guess_legacy(data[bom:])
        if guess is not None:
            codec, what = guess
            hint = f"looks like {what}; pass --encoding {codec}" + (" (or cp850 for DOS exports)" if codec == "cp1252" else "")
        else:
            hint = "is in an encoding that could not be recognised; pass --encoding (e.g. cp1252, cp1251, iso-8859-2)"
        raise ImportRejected("?", name, [Problem(line, None, f"the file is not UTF-8 and {hint}, or save it as UTF-8",
                                                 repr(data[max(0, start - 1):start + 2]))]) from None
    return enc, bom


def _mostly_utf8(data: bytes) -> bool:
    """True when the valid UTF-8 multi-byte sequences outnumber the bytes that are not UTF-8."""
    good = len(re.findall(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}", data))
    high = len(re.findall(rb"[\x80-\xff]", data))
    bad = high - sum(len(m) for m in re.findall(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}", data))
    return good >= bad


def is_qualtrics(records: list[list[str]]) -> bool:
    return len(records) >= 3 and bool(records[2]) and (records[2][0] or "").strip().startswith('{"ImportId"')


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


def _read_xlsx(path: Path, limits: Limits, name: str, sheet: str | None = None):
    """Rows of one sheet (``sheet``, else the active tab when it is a visible worksheet, else the
    first visible one) as lists of strings, read with python-calamine, after zip-bomb checks and
    within the row limit. Formulas never calculated, error values and merged ranges are refused
    by cell, and numbers beyond 2**53 keep the digits stored in the file (:mod:`cxmetrics.readers`)."""
    import python_calamine

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
        wb = python_calamine.CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # calamine raises several types for damaged files
        raise ImportRejected("?", name, [Problem(None, None, f"the workbook cannot be read: {type(exc).__name__}")]) from None
    try:
        names = wb.sheet_names
        if sheet is not None:
            if sheet not in names:
                raise ImportRejected("?", name, [Problem(None, None, f"no sheet {sheet!r} (sheets: {', '.join(names)})")])
            chosen = sheet
        else:
            visible = [m.name for m in wb.sheets_metadata
                       if m.visible == python_calamine.SheetVisibleEnum.Visible
                       and m.typ == python_calamine.SheetTypeEnum.WorkSheet]
            if not visible:
                raise ImportRejected("?", name, [Problem(None, None, "the workbook has no visible worksheet")])
            active = readers.xlsx_active_sheet(path)
            chosen = names[active] if active is not None and active < len(names) and names[active] in visible else visible[0]
        try:
            ws = wb.get_sheet_by_name(chosen)
            data = ws.to_python(skip_empty_area=False, nrows=limits.xlsx_max_rows + 2)
            merged = ws.merged_cell_ranges
        except ImportRejected:
            raise
        except Exception as exc:
            raise ImportRejected("?", name, [Problem(None, None, f"the sheet {chosen!r} cannot be read: {type(exc).__name__}")]) from None
    finally:
        wb.close()
    if len(data) > limits.xlsx_max_rows:
        raise ImportRejected("?", name, [Problem(limits.xlsx_max_rows + 1, None, f"more than {limits.xlsx_max_rows:,} rows")])
    found, exact = readers.xlsx_sheet_problems(path, names.index(chosen), list(data[0]) if data else [], merged)
    if found:
        raise ImportRejected("?", name, sorted((Problem(*f) for f in found), key=lambda p: (p.row or 0)))
    rows = [[exact.get((i + 1, j)) or _cell_text(v) for j, v in enumerate(row)] for i, row in enumerate(data)]
    while rows and all(v is None for v in rows[-1]):
        rows.pop()
    return rows


def _cell_text(v) -> str | None:
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer() and abs(v) < readers.EXACT_INT:
        return str(int(v))
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return str(v)


def _norm(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", parsing.clean_header(name)).lower()


# ----------------------------------------------------------------------------- options and cleaning


@dataclass
class ImportOptions:
    """What a real file needs beyond renaming columns (all documented CLI options of ``import``)."""

    #: keep unfinished Qualtrics responses (previews and spam are always excluded)
    include_incomplete: bool = False
    #: ``{column (source or target name): {label: value}}`` from ``--labels FILE``
    labels: dict[str, dict[str, float]] = field(default_factory=dict)
    #: constant columns, ``{target: value}`` from ``--set COLUMN=VALUE``
    sets: dict[str, str] = field(default_factory=dict)
    #: ``"Quantity*UnitPrice"`` (a product or a sum of source columns) from ``--amount``
    amount: str | None = None
    #: rows sharing a transaction key are summed into one transaction
    line_items: bool = False
    #: strftime format of every date column, from ``--date-format``
    date_format: str | None = None
    #: worksheet name of an .xlsx file (default: the first visible sheet)
    sheet: str | None = None
    #: keep only rows whose source column holds one of these values, from ``--only`` (see
    #: :mod:`cxmetrics.import_rows`)
    only: dict[str, tuple[str, ...]] = field(default_factory=dict)


def parse_labels(path: str | os.PathLike) -> dict[str, dict[str, float]]:
    """Read a ``column,label,value`` CSV (header optional) into ``{column: {label: value}}``."""
    out: dict[str, dict[str, float]] = {}
    with open(path, encoding="utf-8-sig", newline="") as f:
        for i, rec in enumerate(csv.reader(f), 1):
            if not rec or not any(x.strip() for x in rec):
                continue
            if i == 1 and [x.strip().lower() for x in rec] == ["column", "label", "value"]:
                continue
            if len(rec) != 3:
                raise ValueError(f"labels file line {i}: expected column,label,value, found {len(rec)} fields")
            col, label, value = (x.strip() for x in rec)
            try:
                out.setdefault(col, {})[label] = float(value)
            except ValueError:
                raise ValueError(f"labels file line {i}: value {value!r} is not a number") from None
    return out


def parse_sets(items: list[str] | None) -> dict[str, str]:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"--set needs COLUMN=VALUE: {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


#: Qualtrics' standard 5-point satisfaction scale, read as CSAT 1–5.
SATISFACTION_LABELS = {
    "extremely dissatisfied": 1, "somewhat dissatisfied": 2, "neither satisfied nor dissatisfied": 3,
    "somewhat satisfied": 4, "extremely satisfied": 5,
    "very dissatisfied": 1, "dissatisfied": 2, "neutral": 3, "satisfied": 4, "very satisfied": 5,
}
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$|^[+-]?(inf|infinity|nan)$", re.I)
_LEADING_NUMBER = re.compile(r"^\s*(\d+)\s*[-–—:=.)]\s*\S")
_MISSING = ("", "NA")
_SCORES = ("nps", "csat", "ces", "share_of_wallet_pct")


def _parse_amount(expr: str, header: list[str]) -> tuple[str, list[int]]:
    """``A*B`` or ``A+B+C`` over source column names → (operator, column positions). Not eval'd."""
    ops = {op for op in "*+" if op in expr}
    if len(ops) != 1 and not (len(ops) == 0 and expr.strip()):
        raise ValueError(f"--amount {expr!r}: use a product (A*B) or a sum (A+B) of source columns, not both")
    op = ops.pop() if ops else "+"
    names = [n.strip().strip('"') for n in expr.split(op)]
    idx = []
    for n in names:
        if n not in header:
            raise ValueError(f"--amount {expr!r}: no source column {n!r} (columns: {', '.join(header[:30])})")
        idx.append(header.index(n))
    return op, idx


def _excel_serial(v: str) -> str | None:
    import datetime as dt

    try:
        x = float(v)
    except ValueError:
        return None
    if not 20000 <= x <= 80000:  # 1954 … 2119: a plausible serial day count
        return None
    return (dt.date(1899, 12, 30) + dt.timedelta(days=int(x))).isoformat()


_SLASH = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})(?:[ T]\d{1,2}:\d{2}(?::\d{2})?(?:\s*[AaPp][Mm])?)?$")
_DOT = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?$")
_ISO = re.compile(r"^\d{4}[-/]\d{1,2}[-/]\d{1,2}")


def _convert_dates(values: list, lines: list[int], column: str, fmt: str | None,
                   problems: list[Problem], notes: list[str]) -> list:
    """Dates to ISO text: ``--date-format`` when given, else an unambiguous reading of
    M/D/YYYY or D/M/YYYY (decided by the whole column), D.M.YYYY, timestamps, Excel serials."""
    import datetime as dt

    if fmt:
        out = []
        for v, line in zip(values, lines, strict=True):
            if v is None:
                out.append(None)
                continue
            try:
                out.append(dt.datetime.strptime(v, fmt).date().isoformat())
            except ValueError:
                problems.append(Problem(line, column, f"unparseable date: does not match --date-format {fmt}", v))
                out.append(None)
        return out
    slash = [(m, line, v) for v, line in zip(values, lines, strict=True) if v is not None and (m := _SLASH.match(v))]
    order = None
    if slash:
        day_first = next(((line, v) for m, line, v in slash if int(m.group(1)) > 12), None)
        month_first = next(((line, v) for m, line, v in slash if int(m.group(2)) > 12), None)
        if day_first and month_first:
            problems.append(Problem(month_first[0], column, f"dates mix M/D/YYYY ({month_first[1]}) and "
                                    f"D/M/YYYY (row {day_first[0]}: {day_first[1]}); pass --date-format"))
            return values
        if day_first:
            order = "dmy"
        elif month_first:
            order = "mdy"
        else:
            m, line, v = slash[0]
            a, b, y = int(m.group(1)), int(m.group(2)), m.group(3)
            problems.append(Problem(line, column, f"ambiguous dates: {v} reads as {y}-{a:02d}-{b:02d} (M/D/YYYY) "
                                    f"or {y}-{b:02d}-{a:02d} (D/M/YYYY); pass --date-format %m/%d/%Y or %d/%m/%Y", v))
            return values
        notes.append(f"{column}: dates read as {'D/M/YYYY' if order == 'dmy' else 'M/D/YYYY'}")
    out = []
    serials = 0
    for v in values:
        if v is None:
            out.append(v)
        elif _ISO.match(v):  # checked field by field; a date-time gives the date as written
            day, _why = parsing.iso_day(v)
            out.append(day or v)  # a bad one stays as written: the SQL check names it with the others
        elif (m := _SLASH.match(v)) or (m := _DOT.match(v)):
            a, b, y = int(m.group(1)), int(m.group(2)), int(m.group(3))
            month, day = (a, b) if (m.re is _SLASH and order == "mdy") else (b, a)
            try:
                out.append(dt.date(y, month, day).isoformat())
            except ValueError:
                out.append(v)  # the SQL check names it as an unparseable date
        elif (s := _excel_serial(v)) is not None:
            serials += 1
            out.append(s)
        else:
            out.append(v)
    if serials:
        notes.append(f"{column}: {serials:,} Excel serial date(s) converted")
    return out


def _score_values(values: list, lines: list[int], column: str, source: str, c: Column,
                  labels: dict[str, dict[str, float]], problems: list[Problem], notes: list[str]) -> list:
    """Choice text to numbers: ``--labels`` entries, labels beginning with a number
    (``10 - Extremely likely``), Qualtrics' 5-point satisfaction labels; anything else is refused."""
    table = {**labels.get(column, {}), **labels.get(source, {})}
    out, unmapped, first = [], {}, None
    converted = 0
    for v, line in zip(values, lines, strict=True):
        if v is not None and v in table:  # --labels first: it may recode numbers (1–10 → 1–5)
            num = table[v]
        elif v is None or _NUMBER.match(v):
            out.append(v)
            continue
        elif (m := _LEADING_NUMBER.match(v)):
            num = float(m.group(1))
        elif v.strip().lower() in SATISFACTION_LABELS:
            num = float(SATISFACTION_LABELS[v.strip().lower()])
        else:
            unmapped[v] = unmapped.get(v, 0) + 1
            first = first or line
            out.append(None)
            continue
        converted += 1
        out.append(repr(int(num)) if float(num).is_integer() else repr(num))
    if unmapped:
        seen = ", ".join(repr(k) for k in list(unmapped)[:10])
        problems.append(Problem(first, column, f"not a number and not a known label (labels seen: {seen}); "
                                "map them with --labels FILE (column,label,value)"))
    elif converted:
        notes.append(f"{column}: {converted:,} choice-text label(s) read as numbers")
    return out


def _qualtrics_filter(header: list[str], records: list, include_incomplete: bool, notes: list[str],
                      counts: dict) -> list:
    """Drop previews, spam and (unless asked) unfinished responses; count each."""
    pos = {h: i for i, h in enumerate(header)}

    def val(rec, name):
        i = pos.get(name)
        return rec[i].strip() if i is not None and i < len(rec) else ""

    kept = []
    for line, rec in records:
        status, channel = val(rec, "Status"), val(rec, "DistributionChannel").lower()
        if status in ("Survey Preview", "1") or channel == "preview":
            counts["previews"] = counts.get("previews", 0) + 1
        elif status in ("Spam", "8"):
            counts["spam"] = counts.get("spam", 0) + 1
        elif not include_incomplete and val(rec, "Finished").lower() in ("false", "0"):
            counts["unfinished"] = counts.get("unfinished", 0) + 1
        else:
            kept.append((line, rec))
    if counts:
        notes.append("Qualtrics rows excluded: " + ", ".join(f"{v:,} {k}" for k, v in counts.items())
                     + ("" if include_incomplete else " (--include-incomplete keeps unfinished ones)"))
    return kept


def _read_csv_records(path: Path, t: Table, encoding: str, bom: int, limits: Limits):
    """Every record of a CSV file with the file line it starts on (CR, LF and CRLF alike)."""
    name = path.name
    text = path.read_bytes()[bom:].decode(encoding)
    first_line = re.split(r"\r\n|\r|\n", text, maxsplit=1)[0]
    counts = {d: first_line.count(d) for d in (",", ";", "\t", "|")}
    delim = max(counts, key=counts.get) if max(counts.values()) > 0 else ","
    csv.field_size_limit(4_000_000)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim, strict=True)
    records = []
    start, header_end = 1, 1
    try:
        for rec in reader:
            if rec or not records:
                records.append((start, rec))
                if len(records) == 1:
                    header_end = reader.line_num
            start = reader.line_num + 1
            if len(records) > limits.max_rows + 3:
                raise ImportRejected(t.name, name, [Problem(None, None, f"more than {limits.max_rows:,} rows")])
    except csv.Error as exc:
        msg = str(exc)
        if "field larger" in msg:
            reason = "a line is longer than 4,000,000 bytes"
        elif "unexpected end of data" in msg or "EOF" in msg:
            reason = "a quoted value is never closed (truncated file?)"
        else:
            reason = f"the file cannot be parsed as CSV: {msg}"
        raise ImportRejected(t.name, name, [Problem(start, None, reason)]) from None
    lines = parsing.physical_lines(text)
    if reader.line_num != lines:  # every line of the file is in exactly one record (or blank)
        raise ImportRejected(t.name, name, [Problem(None, None, f"the CSV reader read {reader.line_num:,} "
                                                    f"lines but the file has {lines:,}; nothing was imported")])
    return records, delim, header_end


# ----------------------------------------------------------------------------- typing and checks

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


def _typed_select(t: Table, present: set[str]) -> str:
    cols = []
    for c in t.columns:
        expr = _typed_expr(c) if c.name in present else "NULL"
        cols.append(f"CAST({expr} AS {c.sql_type}) AS \"{c.name}\"")
    return ", ".join(cols)


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
    if checks:  # one scan counts every check; only the failing ones are then listed
        counts = con.execute("SELECT " + ", ".join(f"count(*) FILTER (WHERE {cond})" for _, cond, _ in checks)
                             + " FROM __stage s").fetchone()
        for (column, cond, reason), cnt in zip(checks, counts, strict=True):
            if cnt:
                collect(f'SELECT __row, "{column}" FROM __stage s WHERE {cond}', column, reason)
    if line_items and t.name != "transactions":
        problems.append(Problem(None, None, "--line-items applies to transactions only"))
    if all(k in present for k in t.key) and not line_items:
        key = ", ".join(f'{_raw(k)}' for k in t.key)
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
    con.execute("DROP TABLE __stage")  # the text copy is no longer needed: free its memory
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


def _staging_config() -> dict[str, str]:
    """Settings of the private staging database: its memory is capped (``CX_IMPORT_MEMORY``,
    default 640MB) and spills to a temporary directory beyond that. A plain CSV file is read by
    DuckDB (:mod:`cxmetrics.import_fast`) within that bound; the records the general reader parses
    from other CSV or xlsx files are held in Python memory before staging, so those are not."""
    return {"memory_limit": os.environ.get("CX_IMPORT_MEMORY", "640MB"),
            "temp_directory": os.path.join(tempfile.gettempdir(), "cxmetrics-import")}


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
    try:
        return _import_file(path, table, db=db, mapping=mapping, encoding=encoding, limits=limits,
                            actor=actor, dry_run=dry_run, source=source or path.name, options=options)
    finally:
        _OPTIONS.reset(digest_token)
        _ROLE.reset(token)


#: the caller's role for the audit rows written by the current import
_ROLE: contextvars.ContextVar[str | None] = contextvars.ContextVar("cx_import_role", default=None)
#: the digest of the current import's options (see cxmetrics.import_digest), logged with it
_OPTIONS: contextvars.ContextVar[str | None] = contextvars.ContextVar("cx_import_options", default=None)


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
    digest = sha256_of(path)
    report = ImportReport(table=table, source=source, sha256=digest, rows=0)
    started = store.now()
    # the same bytes with the same options into the data version they produced: nothing to read
    if not dry_run and (seen := import_digest.seen_rows(db, table, digest, _OPTIONS.get())) is not None:
        report.rows, report.status = seen, "unchanged"
        report.warnings.append("unchanged: this file was imported with the same options into the current data "
                               "version (same sha256); it was not read again and nothing was written")
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
        rejected, unchanged = None, False
        with store.attached(con, db, read_only=True):
            try:
                t0 = time.perf_counter()
                present, _ = _stage(con, path, t, fmt, encoding, mapping, limits, report, options)
                report.rows = con.execute("SELECT count(*) FROM __stage").fetchone()[0]
                problems, total = _validate(con, t, present, limits, digest,
                                            bool(options and options.line_items), report)
                report.seconds_validating = time.perf_counter() - t0
                if problems:
                    raise ImportRejected(table, path.name, problems, total)
                unchanged = _unchanged(con, t)
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
    cols = ", ".join('coalesce("weight", 1.0)' if (t.name == "survey_responses" and c == "weight") else f'"{c}"'
                     for c in t.names)
    names = ", ".join(f'"{c}"' for c in t.names)
    return con.execute(f'SELECT count(*) FROM (SELECT {cols} FROM __typed EXCEPT SELECT {names} FROM "{t.name}")'  # noqa: S608
                       ).fetchone()[0] == 0


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
                                                    "error": error, "options": _OPTIONS.get(),
                                                    "data_version": store.data_version(con)}))
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
    replaced = stubs.stubs_replaced(con, t.name)
    with store.transaction(con):
        created = stubs.create(con, t.name, report.source)
        if t.fact:
            con.execute(f'DELETE FROM "{t.name}" x WHERE EXISTS (SELECT 1 FROM __typed y WHERE {key_match})')
            con.execute(f'INSERT INTO "{t.name}" ({cols}) SELECT {values} FROM __typed')
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
        store.bump_version(con, [t.name, "customers"] if created else [t.name])
        report.seconds_summaries = time.perf_counter() - t0
        report.import_id = _log(con, report, started, "accepted", None, actor)

