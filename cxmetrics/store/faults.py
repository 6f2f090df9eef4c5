"""What went wrong with the store file, in one line, with the way out.

A damaged, truncated or full store must never reach the user as a traceback or a DuckDB message
alone. This module turns the failures DuckDB 2.x and the operating system raise into
:class:`StoreFault` errors with one line that names the problem and what to do, for the CLI
(``error: …``, exit 1) and the app (``st.error``).

What is verified, plainly
-------------------------
DuckDB stores a checksum with every block and checks it when it reads the block; DuckDB 2.0 has
no statement that checks every block of a file (``PRAGMA enable_verification`` verifies query
plans, not storage). :func:`verify` therefore reads every column of every table (the contract
tables, the summaries and the bookkeeping tables), which makes DuckDB read, and check, every data
block those tables use. Blocks that hold no table data (free blocks, index blocks) are not read,
so damage there goes unnoticed until DuckDB reads them. :func:`verify` runs when the store is
opened for writes (``init``, an import's final transaction, the app's edits), before a backup,
on the restored file before it replaces the store, and in ``status``; read-only opens (every
page, every ``metrics`` command) do not verify, and a damaged block they read gives the one-line
message of :func:`explain`.

Disk full while writing (measured on a 40 MB tmpfs with DuckDB 2.0.1): when the write-ahead log
cannot be written, ``COMMIT`` fails and nothing is committed. When the commit is in the log but
the checkpoint that copies it into the file fails (at ``DETACH``, ``close`` or an automatic
checkpoint), DuckDB "invalidates" the database, yet the commit is durable: a read-only open, even
while the disk is still full, replays the log and sees it, and the next read-write open with room
on the disk writes it into the file. :func:`committed_since` checks which of the two happened.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import time
from pathlib import Path

import duckdb

#: The way out of a damaged store, quoted in every message about one.
RESTORE_HINT = "restore the latest backup with `python -m cxmetrics restore BACKUP_FOLDER`"


class StoreError(RuntimeError):
    """A problem with the database file itself (missing, busy, wrong version); re-exported as
    ``store.StoreError``."""


class StoreFault(StoreError):
    """A problem with the store file or its disk, with a one-line message naming the way out."""


class StoreDamaged(StoreFault):
    """The file is truncated, not a DuckDB file, or a block fails its checksum."""


class DiskFull(StoreFault):
    """No space left on the device that holds the store (or its write-ahead log)."""


class ReadOnlyStore(StoreFault):
    """The store's file system (or the file) cannot be written."""


class CheckpointFailed(StoreFault):
    """A commit is durable in the write-ahead log but could not be written into the file."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _where(path: str | os.PathLike | None) -> str:
    return str(path) if path else "the store"


def classify(exc: BaseException, path: str | os.PathLike | None = None) -> StoreFault | None:
    """The :class:`StoreFault` for a DuckDB or OS error about the store file (None for others).

    >>> classify(OSError(errno.ENOSPC, "No space left on device"), "cx.duckdb").__class__.__name__
    'DiskFull'
    >>> classify(ValueError("x")) is None
    True
    """
    if isinstance(exc, StoreFault):
        return exc
    msg = str(exc)
    low = msg.lower()
    where = _where(path)
    err_no = getattr(exc, "errno", None)
    if err_no in (errno.ENOSPC, errno.EFBIG) or "no space left on device" in low or "file too large" in low:
        if "checkpoint" in low or "invalidated" in low:
            return CheckpointFailed(
                f"the disk holding {where} is full: the last commit is safe in its write-ahead log "
                f"({Path(where).name}.wal) but could not be written into the file — free disk space; "
                "the next open applies the log")
        return DiskFull(f"there is no room to write {where} (the disk is full or the file reached its "
                        f"size limit: {_first_line(exc)}) — free disk space and run the command again")
    if err_no in (errno.EROFS, errno.EACCES, errno.EPERM) or "read-only file system" in low \
            or "permission denied" in low:
        return ReadOnlyStore(f"{where} cannot be written ({_first_line(exc)}): open it on a writable "
                             "disk, or fix the file's permissions")
    if "corrupt database file" in low or "checksum" in low and "does not match" in low:
        return StoreDamaged(f"{where} is damaged (a block fails its checksum: {_first_line(exc)}) — "
                            f"{RESTORE_HINT}")
    if "could not read enough bytes" in low or "not a valid duckdb database file" in low \
            or "database file is truncated" in low:
        return StoreDamaged(f"{where} is truncated or not a DuckDB database ({_first_line(exc)}) — "
                            f"{RESTORE_HINT}")
    if "invalidated" in low:
        return CheckpointFailed(f"{where} stopped accepting writes after an earlier failure "
                                f"({_first_line(exc)}) — check the disk, then open it again; "
                                f"if it does not open, {RESTORE_HINT}")
    return None


def explain(exc: BaseException, path: str | os.PathLike | None = None) -> str:
    """One line for any error that reaches the user: a store fault's message, else the error's
    first line."""
    fault = classify(exc, path)
    return str(fault) if fault is not None else _first_line(exc)


def unreadable(path: str | os.PathLike) -> StoreFault | None:
    """The fault that stops DuckDB opening the existing file at ``path`` (None when it opens, is
    locked by another process, or does not exist)."""
    p = Path(path)
    if not p.exists():
        return None
    try:
        con = duckdb.connect(str(p), read_only=True)
    except duckdb.Error as exc:
        if "lock" in str(exc).lower() or "different configuration" in str(exc):
            return None
        return classify(exc, p) or StoreDamaged(f"{p} cannot be opened ({_first_line(exc)}) — {RESTORE_HINT}")
    con.close()
    return None


#: DuckDB's memory while a write-open reads every block (:func:`verify_once`). The blocks a read
#: brings in stay cached up to the limit, and a write-open is fresh, under DuckDB's default (80 % of
#: the machine). Capped, the blocks are read through and let go. A write-open, by hand (issue 21):
#: of the ten-times bench store (an 8.1 GiB file), 8,171 MiB of process memory at its peak before,
#: 522 MiB after (20.4 s before, 16.8 s after, the file in the page cache both times); of the 1.1
#: GiB default-scale store, 1,100 MiB before, 435 MiB after (2.4 s, 2.3 s). Read-only connections
#: and the importer's staging database have caps of their own.
VERIFY_MEMORY = 256 * 2**20


@contextlib.contextmanager
def memory_capped(con: duckdb.DuckDBPyConnection, size: int):
    """For a connection under DuckDB's default memory limit: the limit lowered to ``size`` bytes
    for the block, then reset to the default."""
    con.execute(f"SET memory_limit = '{int(size)}B'")  # a number written here
    try:
        yield
    finally:
        con.execute("RESET memory_limit")


def verify(con: duckdb.DuckDBPyConnection, path: str | os.PathLike | None = None,
           catalog: str | None = None) -> int:
    """Read every column of every table of ``catalog`` (default: the connection's current one) so
    that DuckDB checks the checksum of every data block; raises :class:`StoreDamaged`.

    Returns the number of tables read. Identifiers come from DuckDB's own catalog and are quoted.
    """
    cat = catalog or con.execute("SELECT current_database()").fetchone()[0]
    cols = con.execute(
        "SELECT schema_name, table_name, list(column_name ORDER BY column_index) FROM duckdb_columns() "
        "WHERE database_name = ? AND NOT internal GROUP BY ALL ORDER BY 1, 2", [cat]).fetchall()

    def q(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    bar = con.execute("SELECT current_setting('enable_progress_bar')").fetchone()[0]
    con.execute("SET enable_progress_bar = false").fetchall()  # a long read must not draw on the terminal
    try:
        for schema_name, table, columns in cols:
            # min(hash(col)) makes DuckDB materialise every value (count(*) reads metadata only)
            sql = ("SELECT count(*), " + ", ".join(f"min(hash({q(c)}))" for c in columns)
                   + f" FROM {q(cat)}.{q(schema_name)}.{q(table)}")
            try:
                con.execute(sql).fetchall()
            except duckdb.Error as exc:
                raise classify(exc, path) or StoreDamaged(
                    f"{_where(path)} cannot be read ({table}: {_first_line(exc)}) — {RESTORE_HINT}") from exc
    finally:
        if bar:
            quietly(lambda: con.execute("SET enable_progress_bar = true").fetchall())
    return len(cols)


def data_version_of(path: str | os.PathLike) -> int | None:
    """The data version a fresh read-only open sees (it replays a write-ahead log in memory, even
    on a full disk); None when the file cannot be opened."""
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error:
        return None
    try:
        row = con.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone()
        return int(row[0]) if row else 0
    except duckdb.Error:
        return None
    finally:
        con.close()


def committed_since(path: str | os.PathLike, before: int | None) -> bool | None:
    """Whether a write committed after the store was at data version ``before`` (None: unknown)."""
    after = data_version_of(path)
    if after is None or before is None:
        return None
    return after > before


def after_write_failure(exc: BaseException, path: str | os.PathLike, before: int | None) -> StoreFault:
    """The truthful one-line fault for a write that failed at or after its commit: whether the
    change is committed is checked by reopening the file read-only (which replays the log)."""
    fault = classify(exc, path)
    reason = _first_line(exc)
    if "original error:" in str(exc).lower():
        reason = str(exc).split("Original error:")[-1].strip().splitlines()[0].strip(' "')
    done = committed_since(path, before)
    p = Path(path)
    if done:
        return CheckpointFailed(
            f"the change was committed, but writing it into {p} failed ({reason}): the data is safe in the "
            f"write-ahead log {p.name}.wal — free disk space (or make the disk writable); the next open "
            "writes it into the file")
    if done is False:
        cls = type(fault) if fault is not None and not isinstance(fault, CheckpointFailed) else StoreFault
        return cls(f"nothing was committed to {p} ({reason}); the store is as it was — free disk space "
                   "(or make the disk writable) and run it again")
    return fault or StoreFault(f"writing to {p} failed ({reason}); check the disk, then run "
                               "`python -m cxmetrics status` to see what the store holds")


def quietly(fn, *args) -> None:
    """Clean up after a failure without hiding it (the original error is the one to report)."""
    try:
        fn(*args)
    except (duckdb.Error, OSError):
        pass


#: How long a full check stands for a file left as it was (``CX_VERIFY_MAX_AGE``, hours).
MAX_AGE_HOURS = 24.0


def _max_age() -> float:
    try:
        return float(os.environ.get("CX_VERIFY_MAX_AGE", MAX_AGE_HOURS)) * 3600
    except ValueError:
        return MAX_AGE_HOURS * 3600


def _record_path(path: Path) -> Path:
    """Where the state of a checked file is recorded: ``.NAME.verified`` beside it."""
    return path.parent / f".{path.name}.verified"


def forget(path: str | os.PathLike) -> None:
    """Remove the check record of a file that is being removed or renamed (a temporary build or
    restore), so no record outlives the file it describes."""
    _record_path(Path(path)).unlink(missing_ok=True)


def file_state(path: Path) -> list[int] | None:
    """The file's device, inode, size, modification and change times (ns); None when it cannot be
    read or has a write-ahead log (then what DuckDB reads is not the file alone)."""
    try:
        st = path.stat()
        if Path(str(path) + ".wal").exists():
            return None
    except OSError:
        return None
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _recorded(path: Path) -> dict | None:
    try:
        doc = json.loads(_record_path(path).read_text())
        return doc if isinstance(doc, dict) else None
    except (OSError, ValueError):
        return None


def _record(path: Path, state: list[int], checked_at: float) -> None:
    """Record ``state`` as resting on the full check made at ``checked_at`` (quietly: a directory
    that cannot be written only means the next open checks again)."""
    target = _record_path(path)
    try:
        tmp = target.with_name(target.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"state": state, "checked_at": checked_at}))
        os.replace(tmp, target)
    except OSError:
        pass


def verify_once(con: duckdb.DuckDBPyConnection, path: Path, catalog: str | None = None) -> float | None:
    """:func:`verify` before a write, so a damaged file is refused with the way out instead of
    being written on — once per file state: when the file is exactly as a full check found it, or
    as a write that followed one left it (same device, inode, size, modification and change time,
    no write-ahead log), and that check is less than ``CX_VERIFY_MAX_AGE`` hours old (default 24),
    it is not read again. Anything that writes the file (a copy, a restore, random bytes, a
    truncation, ``touch``) changes its change time, which no program can set back.

    Returns the time of the full check this open rests on (see :func:`record_written`)."""
    path = Path(path)
    state = file_state(path)
    rec = _recorded(path) if state is not None else None
    if rec is not None and rec.get("state") == state:
        checked = float(rec.get("checked_at") or 0)
        if 0 <= time.time() - checked < _max_age():
            return checked
    verify(con, path, catalog)
    checked = time.time()
    if state is not None:
        _record(path, state, checked)
    return checked


def record_written(path: Path, checked_at: float | None) -> None:
    """After a write that began on a checked file (``checked_at`` from :func:`verify_once`) closed
    cleanly, record the state it left the file in, so the next write does not read every block
    again. A failed write records nothing."""
    if checked_at is None:
        return
    path = Path(path)
    state = file_state(path)
    if state is not None:
        _record(path, state, checked_at)
