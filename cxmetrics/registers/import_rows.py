"""Row selection for an import: ``--only "Source Column=VALUE"``.

A spreadsheet often holds several tables' worth of facts in one sheet: a telco churn workbook has a
row per customer with a ``Churn Label`` of ``Yes`` or ``No``; only the ``Yes`` rows are churn
events. ``--only "Churn Label=Yes"`` keeps the rows whose source column holds that value
(repeatable: values for the same column are alternatives, different columns must all match); the
others are counted in the import report (``excluded["not_selected"]``), never silently dropped.
The comparison is on the cell's text, trimmed, case-sensitive.
"""

from __future__ import annotations


def parse_only(items: list[str] | None) -> dict[str, tuple[str, ...]]:
    """``["Churn Label=Yes", …]`` into ``{"Churn Label": ("Yes",)}``; ValueError names a bad item."""
    out: dict[str, tuple[str, ...]] = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"--only needs 'Source Column=VALUE': {item!r}")
        col, value = item.rsplit("=", 1)
        out[col.strip()] = (*out.get(col.strip(), ()), value.strip())
    return out


def filter_rows(header: list[str], body: list, only: dict[str, tuple[str, ...]], report) -> list:
    """Keep the ``(line, record)`` pairs of ``body`` whose cells match ``only``; count the rest.

    Raises ValueError naming a column that is not in the file's header."""
    if not only:
        return body
    pos = {}
    for col in only:
        if col not in header:
            raise ValueError(f"--only column {col!r} is not in the file (columns: {', '.join(header[:30])})")
        pos[col] = header.index(col)

    def cell(rec, i):
        return str(rec[i]).strip() if i < len(rec) and rec[i] is not None else ""

    kept = [(line, rec) for line, rec in body if all(cell(rec, pos[c]) in vals for c, vals in only.items())]
    dropped = len(body) - len(kept)
    if dropped:
        report.excluded["not_selected"] = dropped
        report.warnings.append(f"{dropped:,} row(s) left out by --only "
                               + ", ".join(f"{c}={'|'.join(v)}" for c, v in only.items()))
    return kept
