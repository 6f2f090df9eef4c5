"""Reading an import's file: format and encoding detection, Qualtrics exports, xlsx sheets and CSV records, each refused with the line or cell (:mod:`cxmetrics.registers.importer`)."""

from __future__ import annotations

import codecs
import csv
import functools
import hashlib
import io
import re
import zipfile
from pathlib import Path

from cxmetrics.registers import parsing, readers
from cxmetrics.registers.import_types import ImportRejected, Limits, Problem
from cxmetrics.store.schema import Table


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
