"""What an import reports and raises: a problem by row and column, the rejection, the limits, the report (:mod:`cxmetrics.registers.importer`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


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
