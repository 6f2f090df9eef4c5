"""``backup`` and ``restore``: a consistent copy of the store as Parquet files (DuckDB's
``EXPORT DATABASE``), and its restore into a new file that replaces the old one only when complete;
``compact``: the store rewritten into a new file the same way, its large tables in their stored order.

A backup is taken through a read-only connection, so it sees one committed state and never a
half-written import; every data block is read first (:func:`cxmetrics.faults.verify`), so a damaged
store is refused rather than backed up. A restore builds the new database beside the target and renames it into
place (atomic on one filesystem); the old file is kept as ``<name>.before-restore``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

from cxmetrics import store
from cxmetrics.registers.importer import sha256_of
from cxmetrics.store import faults, schema


def backup(db: str | os.PathLike | None, out: str | os.PathLike) -> dict:
    """Export every table to ``out`` (which must not exist or be empty). Returns row counts."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} is not empty: choose a new folder for the backup")
    out.mkdir(parents=True, exist_ok=True)
    with store.connect(db) as con:
        faults.verify(con, store.db_path(db))  # never back up a damaged file as if it were good
        counts = store.row_counts(con)
        version = store.data_version(con)
        con.execute("EXPORT DATABASE '" + str(out).replace("'", "''") + "' (FORMAT parquet)")
    files = {f.name: sha256_of(f) for f in sorted(out.iterdir()) if f.is_file()}
    manifest = {"schema_version": schema.SCHEMA_VERSION, "data_version": version, "rows": counts,
                "sha256": files}
    (out / "cxmetrics_backup.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def restore(folder: str | os.PathLike, db: str | os.PathLike | None) -> dict:
    """Rebuild the database from a backup folder; the current file is replaced only on success."""
    folder = Path(folder)
    manifest_path = folder / "cxmetrics_backup.json"
    if not manifest_path.exists():
        raise ValueError(f"{folder} is not a cxmetrics backup (no cxmetrics_backup.json)")
    manifest = json.loads(manifest_path.read_text())
    if manifest["schema_version"] != schema.SCHEMA_VERSION:
        raise ValueError(f"the backup is at schema {manifest['schema_version']}, this code needs {schema.SCHEMA_VERSION}")
    _verify_files(folder, manifest)
    target = store.db_path(db)
    tmp = target.with_name(target.name + ".restoring")
    tmp.unlink(missing_ok=True)
    try:
        import duckdb

        con = duckdb.connect(str(tmp))
        try:
            con.execute("IMPORT DATABASE '" + str(folder).replace("'", "''") + "'")
            got = store.row_counts(con)
            con.execute("CHECKPOINT")
            faults.verify(con, tmp)  # the restored file reads back whole before it replaces the store
        finally:
            con.close()
        if got != manifest["rows"]:
            raise ValueError(f"restored row counts {got} differ from the backup's manifest {manifest['rows']}")
        with store.connect(str(tmp)):
            pass  # schema version check
        if not target.exists():
            os.replace(tmp, target)
        else:
            # Hold the store's write lock while swapping: an import (or any writer) that has the
            # file open makes us wait and then fail with StoreBusy, and one that starts now waits
            # for us and then writes into the restored file, never into the replaced one.
            with store.connect(target, read_only=False) as old:
                _swap(old, target, tmp, ".before-restore")
    finally:
        _clean(tmp)
    return manifest


def _swap(old, target: Path, tmp: Path, keep: str) -> Path:
    """Put the finished file ``tmp`` in ``target``'s place while ``old`` (a read-write connection
    to ``target``: the store's write lock) is open; the old file stays as ``<name><keep>``
    (a second name for it, not a copy). The new file is held open too, so nobody opens it before
    the old one is closed."""
    kept = target.with_name(target.name + keep)
    with store.connect(tmp, read_only=False):
        old.execute("CHECKPOINT")  # nothing of the old file is left in a WAL
        kept.unlink(missing_ok=True)
        faults.forget(kept)
        try:
            os.link(target, kept)
        except OSError:  # a filesystem without hard links
            shutil.copy2(target, kept)
        os.replace(tmp, target)
        old.close()
    return kept


def _clean(tmp: Path) -> None:
    tmp.unlink(missing_ok=True)
    Path(str(tmp) + ".wal").unlink(missing_ok=True)
    faults.forget(tmp)


def _q(name: str) -> str:
    """A quoted identifier (names come from DuckDB's own catalog)."""
    return '"' + name.replace('"', '""') + '"'


def _fingerprints(con, catalog: str) -> dict[str, tuple[int, int]]:
    """Row count and an order-free content hash (the sum of every row's hash) of each table of
    ``catalog``: equal for two copies of a table whatever order its rows are stored in."""
    tables = [r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'main' "
        "AND NOT internal AND NOT temporary ORDER BY 1", [catalog]).fetchall()]
    out = {}
    for t in tables:
        n, h = con.execute(f"SELECT count(*), coalesce(sum(hash(x)::HUGEINT), 0) FROM {_q(catalog)}.main.{_q(t)} x"
                           ).fetchone()
        out[t] = (int(n), int(h))
    return out


#: DuckDB's memory while ``compact`` sorts the large tables (``CX_COMPACT_MEMORY`` overrides it):
#: beyond it the sort spills to ``<db>.tmp`` beside the store. With DuckDB's default (80% of the
#: machine's memory) the ten-times bench store's 200M transactions took the process to 20 GiB.
COMPACT_MEMORY = "2GB"


def _limit_memory(con) -> None:
    value = os.environ.get("CX_COMPACT_MEMORY", COMPACT_MEMORY).strip()
    try:
        con.execute("SET memory_limit = $m", {"m": value})
    except Exception as exc:  # noqa: BLE001  (DuckDB's error for a size it cannot read)
        raise ValueError(f"CX_COMPACT_MEMORY={value!r} is not a memory size (e.g. 2GB or 1500MB): "
                         f"{str(exc).splitlines()[0]}; the store is unchanged") from exc


def compact(db: str | os.PathLike | None, *, actor: str = "cli", log=print) -> dict:
    """Rewrite the store into a new file: the large tables in their stored order
    (:attr:`cxmetrics.store.schema.Table.stored_order`), as one import of all their rows would
    write them, and no space left from deleted or replaced rows. Rows imported before the stored
    order existed, or over many small imports, are then read by date range and customer as fast as
    a fresh import's.

    All or nothing: the store's write lock is held throughout (an import waits, or fails with
    :class:`~cxmetrics.store.StoreBusy`), every table's row count and content hash must match the
    old file's, every data block of the new file is read back, and only then is the new file renamed
    into place. The data version stays (the content is the same: caches and summaries stay
    valid); the old file is kept as ``<name>.before-compact``. Returns sizes, rows and seconds."""
    t0 = time.perf_counter()
    target = store.db_path(db)
    if not target.exists():
        raise ValueError(f"{target} does not exist: nothing to compact")
    tmp = target.with_name(target.name + ".compacting")
    _clean(tmp)
    before_mib = target.stat().st_size / 2**20
    free_mib = shutil.disk_usage(target.parent).free / 2**20
    if free_mib < before_mib * 1.1:  # the new file is at most about the old one's size
        raise ValueError(f"not enough free disk space to compact: the new file needs up to {before_mib:,.0f} MiB "
                         f"beside the store, {free_mib:,.0f} MiB are free; the store is unchanged")
    try:
        with store.connect(target, read_only=False) as old:
            _limit_memory(old)
            faults.verify(old, target)  # never rewrite a damaged file as if it were good
            old.execute("CHECKPOINT")
            cat = old.execute("SELECT current_database()").fetchone()[0]
            old.execute("ATTACH ? AS __compact", [str(tmp)])
            old.execute(f"COPY FROM DATABASE {_q(cat)} TO __compact (SCHEMA)")
            want = _fingerprints(old, cat)
            log(f"writing {len(want)} tables …")
            for name, (n, _) in want.items():
                t = schema.TABLES.get(name)
                order = t.stored_order if t is not None else ""
                if order and n:
                    log(f"writing {name} ({n:,} rows) in its stored order …")
                old.execute(f"INSERT INTO __compact.main.{_q(name)} SELECT * FROM {_q(cat)}.main.{_q(name)}{order}")
            got = _fingerprints(old, "__compact")
            if got != want:
                bad = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
                raise ValueError(f"the rewritten file differs from the store in {', '.join(bad)}; "
                                 "the store is unchanged")
            old.execute("DETACH __compact")
            log("reading the new file back …")
            # a write-open reads every block of a file it has not read (the new one: under the
            # write-open's memory cap, faults.VERIFY_MEMORY) and records it as read when it closes,
            # so the swap's open does not read it again
            with store.connect(tmp, read_only=False) as new:
                store.audit(new, actor=actor, action="compact", outcome="accepted", object=target.name,
                            detail=f"{before_mib:.0f} MiB before")
            kept = _swap(old, target, tmp, ".before-compact")
    finally:
        _clean(tmp)
    after_mib = target.stat().st_size / 2**20
    return {"path": str(target), "kept": str(kept), "mib_before": round(before_mib, 1),
            "mib_after": round(after_mib, 1), "rows": {k: v[0] for k, v in want.items()},
            "seconds": round(time.perf_counter() - t0, 1)}


def _verify_files(folder: Path, manifest: dict) -> None:
    """Every file the backup wrote is there with the content hash its manifest records."""
    hashes = manifest.get("sha256")
    if not isinstance(hashes, dict):
        raise ValueError(f"{folder}: the manifest has no content hashes (a backup from older code?); "
                         "take a new backup")
    for name, want in hashes.items():
        f = folder / name
        if not f.is_file():
            raise ValueError(f"the backup is incomplete: {name} is missing from {folder}; the store is unchanged")
        if sha256_of(f) != want:
            raise ValueError(f"the backup is damaged: {name} does not match its content hash in the "
                             f"manifest; the store is unchanged — restore from another backup")


def cmd_backup(args: argparse.Namespace) -> int:
    m = backup(args.db, args.out)
    print(f"backup written to {args.out}: " + ", ".join(f"{k} {v:,}" for k, v in m["rows"].items()))
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    m = restore(args.folder, args.db)
    print(f"restored {store.db_path(args.db)} from {args.folder} (data version {m['data_version']})")
    return 0


def cmd_compact(args: argparse.Namespace) -> int:
    m = compact(args.db, log=lambda msg: print(msg, flush=True))
    print(f"compacted {m['path']} in {m['seconds']:.0f} s: {m['mib_before']:,.0f} MiB → {m['mib_after']:,.0f} MiB, "
          f"every table's rows and content checked; the old file is kept as {Path(m['kept']).name} "
          f"(delete it once you have checked the store)")
    return 0


def register_cli(sub, parents) -> None:
    common = parents[0]
    p = sub.add_parser("backup", parents=[common], help="export the store to a folder of Parquet files")
    p.add_argument("--out", required=True, help="new or empty folder")
    p.set_defaults(func=cmd_backup)
    p = sub.add_parser("restore", parents=[common], help="replace the store with a backup folder")
    p.add_argument("folder")
    p.set_defaults(func=cmd_restore)
    p = sub.add_parser("compact", parents=[common],
                       help="rewrite the store: the large tables in their stored order, no space left from "
                            "replaced rows (a new file, swapped in when checked)")
    p.set_defaults(func=cmd_compact)
