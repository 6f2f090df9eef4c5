"""``lake export`` and ``lake check``: the store published as a lake, and a landed lake checked.

A lake is a folder (or, for ``check``, any URI Spark reads) with one Parquet table per
data-contract table, ``<table>.parquet``, beside a manifest ``cxmetrics_lake.json`` (schema and
data versions, row counts, content hashes). :func:`export` writes one from an embedded store
through a read-only connection, so it is one committed state. Pipelines that land their own
tables write the same layout; :func:`check` then runs the importer's rules on them, on Spark:
the required columns and their types, ranges and allowed values, text lengths, dates, unique
keys, parents that exist, and the contract's row checks (all from :mod:`cxmetrics.schema`),
reporting each problem by table, column and example rows (their keys and the value).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cxmetrics import store
from cxmetrics.metrics import theme_store
from cxmetrics.registers.importer import sha256_of
from cxmetrics.store import engines, schema
from cxmetrics.store.engines import lake_kept, lakeversion
from cxmetrics.store.engines.layout import LAKE_MANIFEST as MANIFEST
from cxmetrics.store.engines.layout import LAKE_SYSTEM_TABLES as SYSTEM_TABLES
from cxmetrics.store.engines.layout import table_file

#: Example rows kept per problem.
EXAMPLES = 5

#: Parquet/Spark types each contract kind accepts (ints widen to float; dates must be DATE).
ACCEPTED_TYPES = {
    "id": ("string",), "category": ("string",), "text": ("string",),
    "int": ("tinyint", "smallint", "int", "bigint"),
    "float": ("tinyint", "smallint", "int", "bigint", "float", "double", "decimal"),
    "date": ("date",), "bool": ("boolean",),
}


def export(db: str | os.PathLike | None, lake: str | os.PathLike) -> dict:
    """Write every contract table (and the bookkeeping tables pages read) of the store at ``db``
    to ``lake`` (a new or empty folder) as ``<table>.parquet``, with the manifest. Returns it."""
    out = Path(lake)
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} is not empty: choose a new folder for the lake")
    out.mkdir(parents=True, exist_ok=True)
    tables = [*schema.LOAD_ORDER, *SYSTEM_TABLES]
    with store.connect(db) as con:
        con.execute("BEGIN TRANSACTION")  # one snapshot for every table
        try:
            counts = store.row_counts(con)
            version = store.data_version(con)
            for name in tables:  # names from the contract; the path is quoted as a SQL string
                target = str(out / table_file(name)).replace("'", "''")
                con.execute(f"COPY (SELECT * FROM \"{name}\") TO '{target}' (FORMAT parquet)")
            # the kept theme run, at the lake's data version when current here (written after the
            # tables: the version is their files' fingerprint; the kept folder is not part of it)
            kept = theme_store.export_tables(con)
            if kept:
                lake_version = lakeversion.version(out)
                lake_kept.export(con, out, {name: (sql, {**params, "lake_version": lake_version} if "$lake_version"
                                                   in sql else params) for name, (sql, params) in kept.items()})
        finally:
            con.execute("ROLLBACK")
    manifest = {"schema_version": schema.SCHEMA_VERSION, "data_version": version, "rows": counts,
                "sha256": {table_file(name): sha256_of(out / table_file(name)) for name in tables}}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


# ----------------------------------------------------------------------------- check


@dataclass(frozen=True)
class LakeProblem:
    """One broken rule: where (table, column), which rule, how many rows, and example rows."""

    table: str
    column: str | None
    check: str
    reason: str
    rows: int = 0
    examples: tuple[dict, ...] = ()

    def __str__(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        n = f" ({self.rows:,} rows)" if self.rows else ""
        ex = "; e.g. " + ", ".join(json.dumps(e, default=str) for e in self.examples) if self.examples else ""
        return f"{where}: {self.reason}{n}{ex}"


@dataclass
class LakeReport:
    lake: str
    rows: dict[str, int] = field(default_factory=dict)
    problems: list[LakeProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {"lake": self.lake, "ok": self.ok, "rows": self.rows,
                "problems": [{**asdict(p), "examples": list(p.examples)} for p in self.problems]}

    def text(self) -> str:
        lines = [f"{self.lake}: " + ("every contract check passed" if self.ok else f"{len(self.problems)} problem(s)")]
        for name in schema.LOAD_ORDER:
            mine = [p for p in self.problems if p.table == name]
            rows = f"{self.rows[name]:,} rows" if name in self.rows else "missing"
            lines.append(f"  {name} ({rows}): " + ("ok" if not mine else f"{len(mine)} problem(s)"))
            lines += [f"    - {p}" for p in mine]
        return "\n".join(lines)


def _value_checks(t: schema.Table, types: dict[str, str]) -> list[tuple[str, str, str, str]]:
    """(column, check, SQL condition flagging a bad row, reason) for the columns whose type is
    right. Identifiers and literals come from the contract only."""
    out = []
    for c in t.columns:
        if c.name not in types or not _type_ok(c, types[c.name]):
            continue
        v = f'"{c.name}"'
        if c.required:
            out.append((c.name, "required", f"{v} IS NULL", "required value is empty"))
        if c.kind in ("id", "category", "text"):
            out.append((c.name, "length", f"length({v}) > {c.max_len}", f"text longer than {c.max_len} characters"))
        if c.kind == "float":
            out.append((c.name, "finite", f"isnan(CAST({v} AS DOUBLE))", "not a finite number"))
        if c.min is not None:
            out.append((c.name, "range", f"{v} < {c.min!r}", f"below the minimum {c.min:g}"))
        if c.max is not None:
            out.append((c.name, "range", f"{v} > {c.max!r}", f"above the maximum {c.max:g}"))
        if c.kind == "date":
            out.append((c.name, "range", f"{v} > current_date + INTERVAL 1 DAY", "date is in the future"))
            out.append((c.name, "range", f"{v} < DATE '1900-01-01'", "date is before 1900"))
        if c.allowed:
            allowed = ", ".join("'" + a.replace("'", "''") + "'" for a in c.allowed)
            out.append((c.name, "allowed", f"{v} IS NOT NULL AND {v} NOT IN ({allowed})",
                        f"must be one of {', '.join(c.allowed)}"))
    for cond, column, reason in t.row_checks:
        cols = [c.name for c in t.columns if c.name in cond]
        if all(n in types and _type_ok(t.column(n), types[n]) for n in cols):
            out.append((column, "row", f"NOT ({cond})", reason))
    return out


def _type_ok(c: schema.Column, spark_type: str) -> bool:
    base = spark_type.split("(")[0].lower()
    return base in ACCEPTED_TYPES[c.kind]


def _examples(con, sql: str, params=None) -> tuple[dict, ...]:
    frame = con.execute(sql, params).df()
    return tuple({k: (None if v != v else v) for k, v in rec.items()}  # NaN → None
                 for rec in frame.astype(object).to_dict("records"))


def check(con) -> LakeReport:
    """Run the contract's checks on the lake behind ``con`` (a Spark connection from
    :func:`cxmetrics.engines.connect`). Every table is checked; nothing stops at the first problem."""
    report = LakeReport(getattr(con, "lake", "?"))
    present: dict[str, dict[str, str]] = {}
    for name in schema.LOAD_ORDER:
        if name in getattr(con, "missing", ()):
            report.problems.append(LakeProblem(name, None, "table", f"no {table_file(name)} in the lake"))
            continue
        present[name] = con.column_types(name)
    for name, types in present.items():
        t = schema.TABLES[name]
        for c in t.columns:
            if c.name not in types:
                if c.required:
                    report.problems.append(LakeProblem(name, c.name, "columns", f"Required column {c.name} missing"))
            elif not _type_ok(c, types[c.name]):
                report.problems.append(LakeProblem(
                    name, c.name, "type", f"type {types[c.name]} where the contract wants {c.kind} "
                                          f"({' or '.join(ACCEPTED_TYPES[c.kind])})"))
        checks = _value_checks(t, types)
        key = [k for k in t.key if k in types]
        counts = con.execute("SELECT count(*) AS n" + "".join(
            f", count(*) FILTER (WHERE {cond}) AS c{i}" for i, (_, _, cond, _) in enumerate(checks))
            + f' FROM "{name}"').fetchone()
        report.rows[name] = int(counts[0])
        for (column, kind, cond, reason), n in zip(checks, counts[1:], strict=True):
            if n:
                cols = ", ".join(f'"{c}"' for c in dict.fromkeys([*key, column]))
                report.problems.append(LakeProblem(name, column, kind, reason, int(n), _examples(
                    con, f'SELECT {cols} FROM "{name}" WHERE {cond} ORDER BY 1 LIMIT {EXAMPLES}')))
        if len(key) == len(t.key):
            cols = ", ".join(f'"{k}"' for k in key)
            dup = con.execute(f'SELECT count(*) FROM (SELECT {cols} FROM "{name}" GROUP BY {cols} '
                              "HAVING count(*) > 1)").fetchone()[0]
            if dup:
                report.problems.append(LakeProblem(name, t.key[0], "key", "duplicate key", int(dup), _examples(
                    con, f'SELECT {cols}, count(*) AS copies FROM "{name}" GROUP BY {cols} HAVING count(*) > 1 '
                         f"ORDER BY 1 LIMIT {EXAMPLES}")))
        for column, parent, pcol in t.parents:
            if column not in types or parent not in present or pcol not in present[parent]:
                continue
            orphan = (f'FROM "{name}" x WHERE x."{column}" IS NOT NULL AND NOT EXISTS '
                      f'(SELECT 1 FROM "{parent}" p WHERE p."{pcol}" = x."{column}")')
            n = con.execute(f"SELECT count(*) {orphan}").fetchone()[0]
            if n:
                cols = ", ".join(f'x."{c}"' for c in dict.fromkeys([*key, column]))
                report.problems.append(LakeProblem(name, column, "parent", f"unknown {column}: not in {parent}",
                                                   int(n), _examples(con, f"SELECT {cols} {orphan} ORDER BY 1 LIMIT {EXAMPLES}")))
    return report


# ----------------------------------------------------------------------------- CLI


def cmd_export(args: argparse.Namespace) -> int:
    m = export(args.db, args.lake)
    print(f"lake written to {args.lake}: " + ", ".join(f"{k} {v:,}" for k, v in m["rows"].items()))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    with engines.connect("spark", lake=args.lake) as con:
        report = check(con)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        print(report.text())
    return 0 if report.ok else 3


def cmd_summaries_build(args: argparse.Namespace) -> int:
    """Build the summary tables and kept fits into the lake on Spark (see
    :mod:`cxmetrics.store.engines.lake_summaries`)."""
    from cxmetrics.store.engines import lake_summaries

    if engines.engine_name(args.engine) != "spark":
        raise ValueError("the embedded store brings its summaries up to date on every write; "
                         "`summaries build` is for a lake (--engine spark --lake PATH)")
    say = None if args.json else (lambda msg: print(f"  {msg}", file=sys.stderr))
    with engines.connect("spark", lake=args.lake) as con:
        state = lake_summaries.build(con, progress=say)
        t0 = time.perf_counter()
        themes_kept = theme_store.keep_on_lake(con)  # only when the lake has no current theme run
        if themes_kept is not None:
            state["seconds"]["theme_run"] = time.perf_counter() - t0
            if say:
                say(f"theme run {themes_kept['run_id']} kept ({themes_kept['themes']} themes, "
                    f"{themes_kept['tags']:,} assignments): {state['seconds']['theme_run']:.1f} s")
    out = {"lake": con.lake, "data_version": state["lake_version"], "folder": state["folder"],
           "landmark": state["landmark"], "end": state["end"], "seconds": state["seconds"],
           "theme_run": None if themes_kept is None else themes_kept["run_id"], "fit_errors": state["fit_errors"]}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        total = sum(state["seconds"].values())
        print(f"{len(state['seconds'])} summaries built into {con.lake}/{state['folder']} in {total:.1f} s "
              f"(data version {state['lake_version']}, landmark {state['landmark']})")
    return 0


def register_cli(sub, parents) -> None:
    lake = sub.add_parser("lake", help="publish the store as a Parquet lake, or check a landed lake (Spark)")
    lsub = lake.add_subparsers(dest="lake_command", required=True, metavar="ACTION")
    p = lsub.add_parser("export", parents=[parents[0]], help="write every contract table to a lake folder as Parquet")
    p.add_argument("--lake", required=True, help="new or empty folder")
    p.set_defaults(func=cmd_export)
    p = lsub.add_parser("check", help="run the import checks on a lake with Spark (exit 3 when a check fails)")
    p.add_argument("--lake", default=os.environ.get("CX_LAKE"), required="CX_LAKE" not in os.environ,
                   help="lake folder or URI (default $CX_LAKE)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=cmd_check)

    summ = sub.add_parser("summaries", help="build the summary tables of a lake on Spark")
    ssub = summ.add_subparsers(dest="summaries_command", required=True, metavar="ACTION")
    p = ssub.add_parser("build", help="compute the summary tables and kept fits on Spark and write them into the lake")
    engines.add_arguments(p)
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=cmd_summaries_build)
