"""``backup`` and ``restore``: a consistent copy of the store as Parquet files (DuckDB's
``EXPORT DATABASE``), and its restore into a new file that replaces the old one only when complete.

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
            # The new file is held open too, so nobody opens it before the old file is closed.
            with store.connect(target, read_only=False) as old, store.connect(tmp, read_only=False):
                old.execute("CHECKPOINT")  # nothing of the old file is left in a WAL
                shutil.copy2(target, target.with_name(target.name + ".before-restore"))
                os.replace(tmp, target)
                old.close()
    finally:
        tmp.unlink(missing_ok=True)
        Path(str(tmp) + ".wal").unlink(missing_ok=True)
        faults.forget(tmp)
    return manifest


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


def register_cli(sub, parents) -> None:
    common = parents[0]
    p = sub.add_parser("backup", parents=[common], help="export the store to a folder of Parquet files")
    p.add_argument("--out", required=True, help="new or empty folder")
    p.set_defaults(func=cmd_backup)
    p = sub.add_parser("restore", parents=[common], help="replace the store with a backup folder")
    p.add_argument("folder")
    p.set_defaults(func=cmd_restore)
