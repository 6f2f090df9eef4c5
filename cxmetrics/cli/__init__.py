"""``python -m cxmetrics``: the command line over the same results the dashboard shows.

Exit codes: 0 ok; 1 an error (one-line reason on stderr); 2 bad usage; 3 an import was rejected
(the one-line reason on stderr, the full report on stdout, or as JSON with ``--json``), or
``lake check`` found problems (the report on stdout).

Metric commands live with their metric modules: each module listed in ``METRIC_MODULES`` has a
``register_cli(subparsers, common)`` function that adds ``metrics <name>``; other command groups
(``report``, ``backup`` …) are listed in ``COMMAND_MODULES`` the same way. The tooling commands
(``bench``, ``docs``) live outside the library in :mod:`cxmetrics.tools`, which this module never
imports: ``python -m cxmetrics`` passes them in (``build_parser(extra=…)``, ``main(parser=…)``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import json
import sys
import time

import duckdb

from cxmetrics import store
from cxmetrics.core import periods
from cxmetrics.core.output import CLIError, emit, estimate_text, filters_from_args, table_text  # noqa: F401  (the shared output helpers)
from cxmetrics.core.results import DEFAULT_MIN_N
from cxmetrics.registers import demo, import_rows, importer
from cxmetrics.store import engines, faults, schema, summaries

#: Modules that add `metrics <name>` sub-commands.
METRIC_MODULES: list[str] = ["cxmetrics.metrics.nps", "cxmetrics.metrics.scores", "cxmetrics.metrics.churn", "cxmetrics.metrics.clv", "cxmetrics.metrics.wallet", "cxmetrics.metrics.complaints", "cxmetrics.metrics.impact", "cxmetrics.metrics.alignment", "cxmetrics.metrics.pnl"]
#: Modules that add top-level sub-commands.
COMMAND_MODULES: list[str] = ["cxmetrics.metrics.btyd", "cxmetrics.story.report", "cxmetrics.registers.backup", "cxmetrics.registers.lake", "cxmetrics.metrics.theme_store"]


def _date(s: str) -> dt.date:
    try:
        return dt.date.fromisoformat(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (use YYYY-MM-DD): {s!r}") from None


def common_parser() -> argparse.ArgumentParser:
    """Options every data command takes: --db and --json."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--db", help="DuckDB file (default $CX_DB or data/cx.duckdb)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    return p


def filter_parser() -> argparse.ArgumentParser:
    """The global filters and the caller's scope, shared by every metric command."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("filters")
    g.add_argument("--from", dest="date_from", type=_date, help="first date (YYYY-MM-DD)")
    g.add_argument("--to", dest="date_to", type=_date, help="last date (YYYY-MM-DD)")
    g.add_argument("--range", dest="date_range", choices=list(periods.SLUGS),
                   help="a named date range in the data's dates, as the sidebar's (instead of --from/--to)")
    g.add_argument("--segment", action="append", default=[], help="segment (repeatable)")
    g.add_argument("--region", action="append", default=[], help="region (repeatable)")
    g.add_argument("--min-n", type=int, default=DEFAULT_MIN_N, help="small-sample threshold (default 30)")
    g.add_argument("--alpha", type=float, default=0.05, help="1 - confidence level (default 0.05)")
    g.add_argument("--role", default="analyst", help="caller's role (default analyst)")
    g.add_argument("--department", dest="scope_department", action="append", default=None,
                   help="restrict to a department's rows (repeatable); implied by --role department")
    return p


# ----------------------------------------------------------------------------- commands


def cmd_init(args: argparse.Namespace) -> int:
    with _progress(args.progress), store.connect(args.db, read_only=False) as con:  # a migration rebuilds summaries
        version = store.data_version(con)
        con.execute("INSERT OR IGNORE INTO meta VALUES ('initialised', ?)", [store.now().isoformat(timespec="seconds")])
    print(f"database ready at {store.db_path(args.db)} (schema {schema.SCHEMA_VERSION}, data version {version})")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    def progress(frac: float, msg: str) -> None:
        if not args.json:
            print(f"[{frac:4.0%}] {msg}", file=sys.stderr)

    counts = demo.build(args.db, customers=args.customers, seed=args.seed, progress=progress)
    emit({"db": str(store.db_path(args.db)), "rows": counts}, args,
         lambda o: "\n".join([f"demo company written to {o['db']}"] +
                             [f"  {k:18} {v:>12,}" for k, v in o["rows"].items()]))
    return 0


def _progress_flag(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help=f"say on stderr what {what} is doing and for how long (default: when stderr is a terminal)")


@contextlib.contextmanager
def _progress(wanted: bool | None):
    """An import's or a migration's progress (``store.reporting``) on stderr: on a terminal, one line rewritten in
    place ("[ 12.3 s] checking 10,000,000 rows …") and cleared at the end; with ``--progress``
    elsewhere (a log), one line per step; nothing with ``--no-progress`` or, by default, when
    stderr is not a terminal."""
    tty = sys.stderr.isatty()
    if wanted is False or (wanted is None and not tty):
        yield
        return
    start, said = time.perf_counter(), []

    def say(message: str) -> None:
        line = f"[{time.perf_counter() - start:6.1f} s] {message} …"
        sys.stderr.write("\r\033[K" + line if tty else line + "\n")
        sys.stderr.flush()
        said.append(message)

    try:
        with store.reporting(say):
            yield
    finally:
        if tty and said:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def cmd_import(args: argparse.Namespace) -> int:
    try:
        options = importer.ImportOptions(
            include_incomplete=args.include_incomplete,
            labels=importer.parse_labels(args.labels) if args.labels else {},
            sets=importer.parse_sets(args.set), amount=args.amount, line_items=args.line_items,
            date_format=args.date_format, sheet=args.sheet, only=import_rows.parse_only(args.only))
        with _progress(args.progress):
            rep = importer.import_file(args.file, args.table, db=args.db, mapping=importer.parse_mapping(args.map),
                                       encoding=args.encoding, dry_run=args.dry_run, actor=args.actor,
                                       options=options, role=args.role)
    except importer.ImportRejected as exc:
        print(exc.summary(), file=sys.stderr)
        if args.json:
            print(json.dumps({"status": "rejected", "table": exc.table, "source": exc.source,
                              "notes": exc.notes, "total_problems": exc.total,
                              "problems": [p.__dict__ for p in exc.problems]}, indent=2))
        else:
            print(exc.report())
        return 3
    emit({**rep.to_dict(), "status": "validated" if args.dry_run else rep.status}, args,
         lambda o: (f"{o['source']}: {o['status']} into {o['table']} — {o['rows']:,} rows "
                    f"({o['inserted']:,} new, {o['updated']:,} updated), sha256 {o['sha256'][:12]}…"
                    + "".join(f"\nnote: {w}" for w in o["warnings"])))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Row counts and coverage, after reading every data block (``faults.verify``): a damaged
    block fails the command with the way out instead of a status that looks fine. The read is
    spared when the file is exactly as a full check in the last day found it (or as a write that
    followed one left it: ``faults.verify_once``); the output says when that check ran, and
    ``--full`` reads every block again.

    On a lake (``--engine spark``): the tables' row counts and coverage read on Spark, the lake's
    data version and whether its stored summaries are current (``summaries build``)."""
    if engines.engine_name(args.engine) == "spark":
        with engines.connect_args(args) as con:
            overview = store.table_overview(con)
            out = {"data_version": con.version, "lake": con.lake, "missing_tables": con.missing,
                   "summaries_current": con.summaries is not None, "tables": overview}
        emit(out, args, lambda o: (f"lake {o['lake']} on Spark, data version {o['data_version']}; summaries "
                                   + ("current" if o["summaries_current"] else "not built for this data version "
                                      "(`summaries build`)") + "\n" + overview.to_string(index=False)))
        return 0
    path = store.db_path(args.db)
    with store.connect(args.db) as con:
        if getattr(args, "full", False):
            faults.verify(con, path)
            checked_at = time.time()
        else:
            checked_at = faults.verify_once(con, path)
        overview = store.table_overview_rows(con)
        version = store.data_version(con)
        not_kept = summaries.last_refresh(con).get("fit_errors", {})
    when = dt.datetime.fromtimestamp(checked_at, dt.UTC)
    ago = time.time() - checked_at
    emit({"data_version": version, "verified_at": when.isoformat(timespec="seconds"), "tables": overview,
          "fits_not_kept": not_kept}, args,
         lambda o: (f"data version {o['data_version']}; every data block checksum-verified "
                    + ("now" if ago < 60 else f"at {when:%Y-%m-%d %H:%M} UTC (the file is unchanged since; "
                                              "--full reads it again)")
                    + "".join(f"\nkept fit {name} not kept at the last write (the pages fit it live): {why}"
                              for name, why in not_kept.items())
                    + "\n" + rows_text(overview)))
    return 0


def rows_text(rows: list[dict]) -> str:
    """Rows of dicts as a right-aligned text table (as pandas' ``to_string(index=False)`` prints
    one, without loading pandas); a missing value prints as '—'."""
    if not rows:
        return ""
    cols = list(rows[0])
    cells = [[_cell(r[c]) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    lines = [" ".join(c.rjust(w) for c, w in zip(cols, widths, strict=True))]
    lines += [" ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def _cell(v) -> str:
    return "—" if v is None else v.isoformat() if hasattr(v, "isoformat") else str(v)


def build_parser(*, extra=()) -> argparse.ArgumentParser:
    """The CLI's parser; ``extra``: functions ``register(subparsers)`` adding more commands after
    the library's own (the tools, from ``python -m cxmetrics``)."""
    common = common_parser()
    parser = argparse.ArgumentParser(
        prog="python -m cxmetrics",
        description="CX-to-P&L analytics: the store, imports, metrics and reports behind the dashboard.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parser.set_defaults(parser=parser)  # `docs` documents the commands from it

    p = sub.add_parser("init", parents=[common], help="create or migrate the database")
    _progress_flag(p, "a migration")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("demo", parents=[common], help="build the demo company (replaces the data)")
    p.add_argument("--customers", type=int, default=10_000, help="number of customers (default 10,000)")
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("import", parents=[common], help="validate and import a file into a table",
                       description="Import CSV (any delimiter; UTF-8, UTF-8 with BOM or Latin-1), .xlsx, "
                                   "Parquet or a Qualtrics CSV export. All-or-nothing; re-importing "
                                   "upserts by key.")
    p.add_argument("table", choices=schema.IMPORTABLE)
    p.add_argument("file")
    p.add_argument("--map", action="append", default=[], metavar="'Source Column=target_column'",
                   help="rename a source column (repeatable; the same source twice feeds two targets; "
                        "'Source=' removes an automatic mapping)")
    p.add_argument("--encoding", help="the CSV encoding when it is not UTF-8: latin-1, cp1252, cp850, cp1250, cp1251, "
                        "iso-8859-2, koi8-r, shift_jis, … (cxmetrics.parsing.EXPLICIT_ENCODINGS)")
    p.add_argument("--include-incomplete", action="store_true",
                   help="Qualtrics: keep unfinished responses (previews and spam are always excluded)")
    p.add_argument("--labels", metavar="FILE", help="CSV of column,label,value mapping choice text to numbers")
    p.add_argument("--set", action="append", default=[], metavar="COLUMN=VALUE",
                   help="a constant column, e.g. survey=relationship (repeatable)")
    p.add_argument("--amount", metavar="EXPR", help="amount from source columns: A*B (product) or A+B (sum)")
    p.add_argument("--line-items", action="store_true",
                   help="transactions: sum rows sharing a transaction_id into one transaction")
    p.add_argument("--date-format", metavar="STRFTIME", help="format of every date column, e.g. %%m/%%d/%%Y")
    p.add_argument("--sheet", help="the .xlsx sheet to read (default: the active sheet if visible, else the first visible one)")
    p.add_argument("--only", action="append", default=[], metavar="'Source Column=VALUE'",
                   help="keep only rows whose source column holds VALUE (repeatable), e.g. 'Churn Label=Yes'")
    p.add_argument("--dry-run", action="store_true", help="validate only; write nothing")
    p.add_argument("--actor", default="cli", help="who is importing (for the audit log)")
    p.add_argument("--role", default="analyst",
                   help="caller's role (default analyst; `import assumptions` needs finance)")
    _progress_flag(p, "the import")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("status", parents=[common], help="row counts and date coverage of every table, after checking "
                       "every data block's checksum (once per file state a day; --full: again)")
    p.add_argument("--full", action="store_true",
                   help="read every data block again even when the file is unchanged since the last full check")
    engines.add_arguments(p)
    p.set_defaults(func=cmd_status)

    metrics = sub.add_parser("metrics", help="compute a metric (see `metrics --help`)")
    msub = metrics.add_subparsers(dest="metric", required=True, metavar="METRIC")
    flt = filter_parser()
    eng = argparse.ArgumentParser(add_help=False)
    engines.add_arguments(eng)  # metrics run on DuckDB (default) or Spark over a lake
    for name in METRIC_MODULES:
        importlib.import_module(name).register_cli(msub, [common, flt, eng])
    for name in COMMAND_MODULES:
        importlib.import_module(name).register_cli(sub, [common, flt])
    for register in extra:
        register(sub)
    return parser


def _db_of(args: argparse.Namespace) -> str:
    return str(store.db_path(getattr(args, "db", None)))


def _resolve_range(args: argparse.Namespace) -> None:
    """``--range``'s days in the data the command reads, as the sidebar sets them: a day at the
    data's first or last answer is left open (so the figures are the app's for the same range)."""
    if args.date_from or args.date_to:
        raise CLIError("give --range or --from/--to, not both")
    with engines.connect_args(args) as con:
        lo, hi = con.execute("SELECT min(responded_on), max(responded_on) FROM survey_responses").fetchone()
    name = periods.SLUGS[args.date_range]
    got = periods.preset_range(name, lo, hi) if lo is not None else None
    if got is None:
        raise CLIError(f"--range {args.date_range}: " + ("the store has no survey responses to date it"
                                                       if lo is None else f"the data ({lo} to {hi}) hold no {name.lower()}"))
    args.date_from = got[0] if got[0] != lo else None
    args.date_to = got[1] if got[1] != hi else None


def main(argv: list[str] | None = None, *, parser: argparse.ArgumentParser | None = None) -> int:
    parser = parser or build_parser()
    args = parser.parse_args(argv)
    try:
        if getattr(args, "date_range", None):
            _resolve_range(args)
        return int(args.func(args) or 0)
    except (CLIError, store.StoreError, ValueError, PermissionError) as exc:
        print(f"error: {faults.explain(exc, _db_of(args))}", file=sys.stderr)
        return 1
    except (duckdb.Error, OSError) as exc:  # the store file or its disk: one line, the way out
        print(f"error: {faults.explain(exc, _db_of(args))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `… --json | head`: the reader left; say nothing more
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
