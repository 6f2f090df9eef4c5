"""An import's options and value cleaning: mappings, constants, labels, amounts, dates and scores (:mod:`cxmetrics.registers.importer`)."""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass, field

from cxmetrics.registers import parsing
from cxmetrics.registers.import_types import Problem
from cxmetrics.store.schema import Column


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
