"""What the Data page shows before an import: the importer's own dry run, laid out for a person.

The page collects the analyst's choices (table, mapping, constants, labels, date format, encoding,
row selection …) with widgets and calls :func:`check`, which runs
:func:`cxmetrics.importer.import_file` with ``dry_run=True`` — the same code path as
``python -m cxmetrics import … --dry-run`` — and returns a :class:`Check`: what was detected (format,
Qualtrics, encoding, header rows), the mapping used, the first rows as they will be stored, and
every problem by row and column. :func:`run` then imports with exactly the same arguments. No
import logic lives here or in the page: only the translation between widgets and the importer's
arguments, and :func:`cli_command`, the equivalent command line.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from cxmetrics.core import lazy
from cxmetrics.registers import importer
from cxmetrics.store import schema

pd = lazy.module("pandas")

#: encodings offered by the page ("auto" = detect: UTF-8, else refused with the one to pick)
ENCODINGS = ("auto", "utf-8", "latin-1", "cp1252", "cp850")


@dataclass(frozen=True)
class Request:
    """Everything ``import`` takes, as the page's widgets give it."""

    table: str
    source: str
    mapping: dict = field(default_factory=dict)
    encoding: str | None = None
    options: importer.ImportOptions = field(default_factory=importer.ImportOptions)

    def kwargs(self) -> dict:
        return {"mapping": self.mapping, "encoding": self.encoding, "options": self.options, "source": self.source}


@dataclass
class Check:
    """The outcome of a dry run: either ``report`` (valid) or ``rejected`` (with its problems)."""

    request: Request
    report: importer.ImportReport | None = None
    rejected: importer.ImportRejected | None = None

    @property
    def ok(self) -> bool:
        return self.report is not None

    def detected(self) -> str:
        """One line: format, Qualtrics, encoding, header rows."""
        rep = self.report
        if rep is None:
            notes = self.rejected.notes if self.rejected else []
            return "; ".join(notes) if notes else "nothing detected before the file was refused"
        bits = [f"format {rep.format}"]
        if rep.format == "qualtrics":
            bits.append("Qualtrics export" + (" re-saved through Excel" if rep.header_rows == 1 else ""))
        if rep.encoding:
            bits.append(f"encoding {rep.encoding}")
        if rep.header_rows is not None:
            bits.append(f"{rep.header_rows} header row{'s' if rep.header_rows != 1 else ''}")
        return ", ".join(bits)

    def mapping_frame(self) -> pd.DataFrame:
        """Every source column with the target it feeds (empty: ignored), for the mapping editor."""
        rep = self.report
        if rep is None:
            return pd.DataFrame({"source column": list(self.request.mapping),
                                 "target": [str(v) for v in self.request.mapping.values()]})
        used = {}
        for src, tgt in rep.columns:
            used.setdefault(src, []).append(tgt)
        srcs = [s for s in rep.source_columns if str(s).strip()]
        rows = [{"source column": s, "target": ", ".join(used.get(s, []))} for s in srcs]
        return pd.DataFrame(rows, columns=["source column", "target"])  # constants: see cli_command

    def sample_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.report.sample) if self.report is not None else pd.DataFrame()

    def problems_frame(self) -> pd.DataFrame:
        if self.rejected is None:
            return pd.DataFrame(columns=["row", "column", "problem", "value"])
        return pd.DataFrame([{"row": p.row, "column": p.column, "problem": p.reason, "value": p.value}
                             for p in self.rejected.problems], columns=["row", "column", "problem", "value"])

    def excluded_text(self) -> str:
        ex = self.report.excluded if self.report is not None else {}
        return ", ".join(f"{v:,} {k.replace('_', ' ')}" for k, v in ex.items())


def rows(*names: str) -> pd.DataFrame:
    """An empty editor table with these text columns."""
    return pd.DataFrame({n: pd.Series([], dtype="object") for n in names})


def _pairs(rows, *names: str) -> list[tuple]:
    """Rows of an editor (a DataFrame or a list of dicts) as tuples of trimmed text, blanks skipped."""
    records = rows.to_dict("records") if isinstance(rows, pd.DataFrame) else list(rows or [])
    out = []
    for r in records:
        vals = tuple("" if r.get(n) is None or (isinstance(r.get(n), float) and pd.isna(r.get(n))) else str(r.get(n)).strip()
                     for n in names)
        if vals[0]:
            out.append(vals)
    return out


def request(table: str, source: str, *, mapping_rows=None, set_rows=None, label_rows=None, only_rows=None,
            encoding: str = "auto", date_format: str = "", include_incomplete: bool = False,
            amount: str = "", line_items: bool = False, sheet: str = "") -> Request:
    """The page's widget values as the importer's arguments (ValueError names a bad entry).

    ``mapping_rows``: ``source column``/``target`` (an empty target removes an automatic mapping;
    several targets separated by commas feed each from the one column); ``set_rows``:
    ``column``/``value``; ``label_rows``: ``column``/``label``/``value``; ``only_rows``:
    ``source column``/``value``.
    """
    if table not in schema.TABLES:
        raise ValueError(f"unknown table {table}")
    mapping: dict = {}
    for src, tgt in _pairs(mapping_rows, "source column", "target"):
        targets = tuple(x.strip() for x in tgt.split(",") if x.strip())
        mapping[src] = targets[0] if len(targets) == 1 else (targets or "")
    sets = {k: v for k, v in _pairs(set_rows, "column", "value")}
    labels: dict = {}
    for col, label, value in _pairs(label_rows, "column", "label", "value"):
        try:
            labels.setdefault(col, {})[label] = float(value)
        except ValueError:
            raise ValueError(f"label {label!r} of {col}: value {value!r} is not a number") from None
    only: dict = {}
    for col, value in _pairs(only_rows, "source column", "value"):
        only[col] = (*only.get(col, ()), value)
    opts = importer.ImportOptions(include_incomplete=bool(include_incomplete), labels=labels, sets=sets,
                                  amount=amount.strip() or None, line_items=bool(line_items),
                                  date_format=date_format.strip() or None, sheet=sheet.strip() or None, only=only)
    return Request(table, source, mapping, None if encoding in ("", "auto") else encoding, opts)


def check(path: str | Path, req: Request, *, db, actor: str, role: str) -> Check:
    """Dry-run the import (nothing is written). A rejected file is then run once more for real, which
    writes no data but records the rejection in ``imports`` and ``audit`` under the file's own name."""
    try:
        rep = importer.import_file(path, req.table, db=db, dry_run=True, actor=actor, role=role, **req.kwargs())
        return Check(req, report=rep)
    except importer.ImportRejected as exc:
        try:
            importer.import_file(path, req.table, db=db, actor=actor, role=role, **req.kwargs())
        except importer.ImportRejected:
            pass
        return Check(req, rejected=exc)


def run(path: str | Path, req: Request, *, db, actor: str, role: str) -> importer.ImportReport:
    """Import for real with the arguments that were checked (the CLI's function)."""
    return importer.import_file(path, req.table, db=db, actor=actor, role=role, **req.kwargs())


def cli_command(req: Request, file_name: str | None = None) -> str:
    """The ``python -m cxmetrics import …`` line that does the same import."""
    o = req.options
    parts = ["python", "-m", "cxmetrics", "import", req.table, file_name or req.source]
    for src, tgt in req.mapping.items():
        for t in (tgt if isinstance(tgt, tuple) else (tgt,)):
            parts += ["--map", f"{src}={t}"]
    if req.encoding:
        parts += ["--encoding", req.encoding]
    if o.include_incomplete:
        parts.append("--include-incomplete")
    for k, v in o.sets.items():
        parts += ["--set", f"{k}={v}"]
    if o.labels:
        parts += ["--labels", "labels.csv"]
    if o.amount:
        parts += ["--amount", o.amount]
    if o.line_items:
        parts.append("--line-items")
    if o.date_format:
        parts += ["--date-format", o.date_format]
    if o.sheet:
        parts += ["--sheet", o.sheet]
    for col, vals in o.only.items():
        for v in vals:
            parts += ["--only", f"{col}={v}"]
    return " ".join(shlex.quote(p) if p != "python" else p for p in parts)
