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

from .filters import Filters, Scope
from .results import jsonable


class CLIError(Exception):
    """An error to report as one line on stderr with exit code 1."""


def filters_from_args(args: argparse.Namespace) -> Filters:
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
            print(f"  {e.label}: {e.estimate:.2f} {e.unit} ({e.ci_text()}, n={e.n})")
        print(obj.table.to_string(index=False))
        for k, v in (getattr(obj, "assumptions", None) or {}).items():
            print(f"assumption: {k} = {v}")
        for w in getattr(obj, "warnings", ()):
            print(f"warning: {w}")
    else:
        print(json.dumps(jsonable(obj), indent=2, ensure_ascii=False))
