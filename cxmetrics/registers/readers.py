"""Parquet files and xlsx workbooks as rows of text, checked by the same rules as a CSV file.

The importer reads every format into ``[header, row, row, …]`` lists of text and runs one set of
checks on them. This module holds what is particular to the binary formats:

* **Parquet** is read with pyarrow. Duplicate column names are refused (a CSV with two equal
  headers is refused too); nested and binary columns (struct, list, map, binary) are reported by
  column; a timezone-aware timestamp is converted to the wall-clock time of its own zone (the zone
  stored in the file) before its date is taken, so ``2024-03-01 00:30 Europe/Paris`` stays
  2024-03-01 (stored as 2024-02-29 23:30 UTC, it would otherwise move a day).
* **xlsx** cells are read with python-calamine, which returns an empty cell for a formula that was
  never calculated and for an error value (``#N/A``, ``#REF!``), and a float for an 18-digit
  number. :func:`xlsx_sheet_problems` scans the sheet's XML (ECMA-376 Part 1, §18.3.1.4 ``c``,
  §18.3.1.40 ``f``, §18.3.1.96 ``v``; §18.18.11 ``ST_CellType`` ``e`` for errors) for those cells
  and for merged ranges, and :func:`xlsx_active_sheet` reads the workbook's active tab
  (§18.2.30 ``workbookView/@activeTab``).
"""

from __future__ import annotations

import re
import zipfile
from collections import Counter
from pathlib import Path, PurePosixPath

#: Largest integer a spreadsheet number (an IEEE-754 double) holds exactly.
EXACT_INT = 2**53


# ----------------------------------------------------------------------------- Parquet


def read_parquet(path: Path) -> tuple[list[list], dict[int, str], list[str], list[tuple]]:
    """``(rows, unsupported, notes, problems)``: the header and data rows as text, the positions of
    columns that cannot be imported with the reason, notes on conversions, and file-level problems
    as ``(row, column, reason)`` tuples."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        table = pq.ParquetFile(path).read()  # read_table refuses duplicate names without naming them
    except Exception as exc:  # pyarrow raises several types for damaged files
        return [], {}, [], [(None, None, f"the Parquet file cannot be read: {str(exc).splitlines()[0][:200]}")]
    names = [str(n) for n in table.column_names]
    dup = [n for n, k in Counter(names).items() if k > 1]
    if dup:
        return [], {}, [], [(1, n, f"duplicate column name {n!r} (columns "
                             + " and ".join(str(i + 1) for i, m in enumerate(names) if m == n) + ")")
                            for n in dup]
    unsupported: dict[int, str] = {}
    notes: list[str] = []
    columns = []
    for i, (name, col) in enumerate(zip(names, table.columns, strict=True)):
        typ = col.type
        if pa.types.is_dictionary(typ):
            col, typ = col.cast(typ.value_type), typ.value_type
        if (pa.types.is_nested(typ) or pa.types.is_binary(typ) or pa.types.is_large_binary(typ)
                or pa.types.is_fixed_size_binary(typ)):
            unsupported[i] = f"a {typ} column cannot be imported (nested or binary values); flatten it or leave it out"
            columns.append([None] * table.num_rows)
            continue
        if pa.types.is_timestamp(typ) and typ.tz is not None:
            col = pc.local_timestamp(col)
            notes.append(f"{name}: timestamps with time zone {typ.tz} read as the date in that zone")
        if (pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_integer(typ)
                or pa.types.is_date(typ) or pa.types.is_decimal(typ) or pa.types.is_timestamp(typ)):
            columns.append(col.cast(pa.string()).to_pylist())  # exact text, cast by Arrow
        else:
            columns.append([_text(v) for v in col.to_pylist()])
    rows = [names] + [list(r) for r in zip(*columns, strict=True)] if columns else [names]
    return rows, unsupported, notes, []


def _text(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return str(v)


# ----------------------------------------------------------------------------- xlsx


def _a1(ref: str) -> tuple[int, int]:
    """``"AB12"`` → (row 12, column index 27, 0-based)."""
    m = re.fullmatch(r"\$?([A-Z]+)\$?(\d+)", ref)
    if not m:
        return 0, -1
    col = 0
    for ch in m.group(1):
        col = col * 26 + ord(ch) - 64
    return int(m.group(2)), col - 1


def _col_letter(i: int) -> str:
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(65 + r) + s
    return s


def _sheet_part(zf: zipfile.ZipFile, index: int) -> str | None:
    """Path inside the archive of the ``index``-th sheet of the workbook (0-based)."""
    try:
        wb = zf.read("xl/workbook.xml").decode("utf-8", "replace")
        rels = zf.read("xl/_rels/workbook.xml.rels").decode("utf-8", "replace")
    except KeyError:
        return None
    sheets = re.findall(r"<(?:\w+:)?sheet\b([^>]*)/?>", wb)
    if index >= len(sheets):
        return None
    rid = re.search(r'\br:id="([^"]+)"|\b\w+:id="([^"]+)"', sheets[index])
    if not rid:
        return None
    rid = rid.group(1) or rid.group(2)
    for rel in re.findall(r"<(?:\w+:)?Relationship\b([^>]*)/?>", rels):
        if re.search(rf'\bId="{re.escape(rid)}"', rel):
            target = re.search(r'\bTarget="([^"]+)"', rel)
            if target:
                t = target.group(1)
                return t.lstrip("/") if t.startswith("/") else str(PurePosixPath("xl") / t)
    return None


def xlsx_active_sheet(path: Path) -> int | None:
    """Index of the workbook's active tab (``activeTab``, 0 when absent), or None if unreadable."""
    try:
        with zipfile.ZipFile(path) as zf:
            wb = zf.read("xl/workbook.xml").decode("utf-8", "replace")
    except (KeyError, zipfile.BadZipFile, OSError):
        return None
    m = re.search(r'<(?:\w+:)?workbookView\b[^>]*\bactiveTab="(\d+)"', wb)
    return int(m.group(1)) if m else 0


_CELL = re.compile(rb"<(?:\w+:)?c\s([^>]*?)(?:/>|>(.*?)</(?:\w+:)?c>)", re.S)
_VALUE = re.compile(rb"<(?:\w+:)?v>([^<]*)</(?:\w+:)?v>")


def xlsx_sheet_problems(path: Path, index: int, header: list, merged: list) -> tuple[list[tuple], dict]:
    """Cells calamine reads wrongly in the ``index``-th sheet: ``(problems, exact)``.

    ``problems`` are ``(row, column, reason, value)`` for formulas without a cached value, error
    values and merged ranges (``merged`` as calamine's ``((r0, c0), (r1, c1))``, 0-based);
    ``exact`` maps ``(row, column index)`` to the integer text of numbers beyond 2**53 (18-digit
    ids), which calamine returns as rounded floats.
    """

    def colname(i: int) -> str:
        return str(header[i]) if 0 <= i < len(header) and header[i] else _col_letter(i)

    problems: list[tuple] = []
    for (r0, c0), (r1, c1) in merged or []:
        ref = f"{_col_letter(c0)}{r0 + 1}:{_col_letter(c1)}{r1 + 1}"
        problems.append((r0 + 1, colname(c0), f"merged cells {ref}: unmerge them and fill every cell", None))
    exact: dict = {}
    try:
        with zipfile.ZipFile(path) as zf:
            part = _sheet_part(zf, index)
            if part is None:
                return problems, exact
            xml = zf.read(part)
    except (KeyError, zipfile.BadZipFile, OSError):
        return problems, exact
    if b"<f" not in xml and b":f" not in xml and b't="e"' not in xml and not re.search(rb">[-+]?\d{16}|>[-+]?[\d.]+[eE]\+?\d\d", xml):
        return problems, exact
    for m in _CELL.finditer(xml):
        attrs, body = m.group(1), m.group(2) or b""
        ref = re.search(rb'\br="([A-Z$]+\d+)"', attrs)
        row, col = _a1(ref.group(1).decode()) if ref else (None, -1)
        cell = ref.group(1).decode() if ref else "a cell"
        v = _VALUE.search(body)
        value = v.group(1).decode("utf-8", "replace") if v else ""
        if re.search(rb'\bt="e"', attrs):
            problems.append((row, colname(col), f"cell {cell} holds the error value {value or '#error'}; "
                             "fix the formula or clear the cell", value or None))
        elif re.search(rb"<(?:\w+:)?f\b", body) and not value:
            problems.append((row, colname(col), f"cell {cell} holds a formula that was never calculated (no "
                             "value is stored); open and save the workbook in Excel, or paste values", None))
        elif value and not re.search(rb'\bt="(s|str|inlineStr|b)"', attrs):
            try:
                x = float(value)
            except ValueError:
                continue
            if abs(x) >= EXACT_INT and x.is_integer():
                if re.fullmatch(r"[-+]?\d+", value):
                    exact[(row, col)] = value.lstrip("+")
                else:
                    problems.append((row, colname(col), f"cell {cell}: the number {value} has more digits than a "
                                     "spreadsheet number holds exactly; store identifiers as text", value))
    return problems, exact
