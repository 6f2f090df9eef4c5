"""What every command prints through: the shared output helpers of the CLI.

Metric modules register their own ``metrics <name>`` commands and print with these, so they import
this module, never :mod:`cxmetrics.cli` (the CLI imports the metrics, not the other way round).
:func:`emit` prints a result as the library returned it: with ``--json`` every field, warnings and
assumptions included; as text its headline, table, assumptions and warnings.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from cxmetrics.core.filters import Filters, Scope
from cxmetrics.core.results import jsonable


class CLIError(Exception):
    """An error to report as one line on stderr with exit code 1."""


def filters_from_args(args: argparse.Namespace) -> Filters:
    from cxmetrics.core.roles import ROLES

    if args.role not in ROLES:
        raise CLIError(f"unknown role {args.role!r}: use one of {', '.join(ROLES)} (roles are lower-case)")
    departments = tuple(args.scope_department) if args.scope_department is not None else None
    if args.role == "department" and departments is None:
        departments = ()  # fail closed: a department role without a department sees nothing
    return Filters(
        date_from=args.date_from, date_to=args.date_to, segments=tuple(args.segment),
        regions=tuple(args.region), min_n=args.min_n,
        scope=Scope(role=args.role, departments=departments, user="cli"),
    )


def emit(obj: Any, args: argparse.Namespace, text: Callable[[Any], str] | None = None) -> None:
    """Print a result as JSON (``--json``) or as readable text."""
    if getattr(args, "json", False):
        print(json.dumps(jsonable(obj), indent=2, ensure_ascii=False))
        return
    if text is not None:
        print(text(obj))
    elif hasattr(obj, "table"):
        print(f"{obj.label} — {obj.method}")
        for e in getattr(obj, "headline", ()):
            print("  " + estimate_text(e, "{:.2f}", unit=True))
        print(table_text(obj.table))
        for k, v in (getattr(obj, "assumptions", None) or {}).items():
            print(f"assumption: {k} = {v}")
        for w in getattr(obj, "warnings", ()):
            print(f"warning: {w}")
    else:
        print(json.dumps(jsonable(obj), indent=2, ensure_ascii=False))


NO_ROWS = ("no rows: the tables this needs are empty or the filters exclude everything "
           "(`python -m cxmetrics status` shows what is in the store; import on the Data page or with `import`)")


def estimate_text(e: Any, fmt: str = "{:.1f}", *, unit: bool = False) -> str:
    """One line for an estimate; an estimate that could not be computed says so instead of ``nan``."""
    value = e.estimate
    if value is None or value != value or value in (float("inf"), float("-inf")):
        return f"{e.label}: not available (n={e.n:,})" + (f" — {e.warnings[0]}" if e.warnings else "")
    if unit:  # the headline form
        return f"{e.label}: {fmt.format(value)} {e.unit} ({e.ci_text()}, n={e.n})"
    n_eff = f", effective n={e.n_eff:,.0f}" if e.n_eff else ""
    return f"{e.label}: {fmt.format(value)} ({e.ci_text(fmt)}, n={e.n:,}{n_eff})"


def table_text(df: Any) -> str:
    """A table as text: missing values as '—', an empty table as a reason, never pandas' 'Empty DataFrame'."""
    if df is None or len(df) == 0:
        return NO_ROWS
    return df.to_string(index=False, na_rep="—")
