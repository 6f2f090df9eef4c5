"""The DuckDB store: where the file lives, how it is opened, migrated and queried.

One writer at a time
--------------------
DuckDB lets one process hold a database file read-write, or any number of processes hold it
read-only, never both. We live with that rule like this:

* every connection is short-lived (:func:`connect` is a context manager); nobody keeps the file
  open between requests, so the dashboard never blocks the CLI for longer than one query;
* an import parses and validates its file in a private in-memory database with the store
  attached read-only (readers keep working), and takes the write lock only for its final
  transaction, so a reader sees all of an import or none of it (:func:`attached`);
* when the file is locked, :func:`connect` retries with back-off for ``CX_LOCK_TIMEOUT`` seconds
  (default 30) and then raises :class:`StoreBusy` with a one-line reason.

The dashboard caches every result keyed by :func:`data_version`, so it keeps serving while an
import holds the lock; a page that needs a fresh query waits for the commit.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from cxmetrics.core import lazy
from cxmetrics.store import faults, schema

pd = lazy.module("pandas")

DEFAULT_DB = Path(__file__).resolve().parents[2] / "data" / "cx.duckdb"


#: A problem with the database file itself (missing, busy, wrong version, damaged, disk full):
#: defined with the faults so that every ``except store.StoreError`` also catches them.
StoreError = faults.StoreError


class StoreBusy(StoreError):
    """Another process holds the write lock for longer than we are willing to wait."""


def db_path(path: str | os.PathLike | None = None) -> Path:
    """The database file: the argument, else ``$CX_DB``, else ``data/cx.duckdb``."""
    if path:
        return Path(path)
    env = os.environ.get("CX_DB")
    return Path(env) if env else DEFAULT_DB


def _lock_timeout() -> float:
    try:
        return float(os.environ.get("CX_LOCK_TIMEOUT", "30"))
    except ValueError:
        return 30.0


#: The memory DuckDB may hold for the queries of read-only connections (pages, CLI reports) unless
#: ``CX_QUERY_MEMORY`` says otherwise. Beyond it a query spills to disk (next to the database file,
#: DuckDB's default) instead of growing: at ten times the bench scale a page under a date range
#: otherwise held 3–5 GiB (DuckDB's own default is 80 % of the machine's memory, shared by every
#: session of the app). 768MB: the worst page there peaked at 2.1 GiB of process memory under 1GB
#: and 1.9 GiB under 768MB, in the same time; at the default scale no page reaches either.
#: Writes (the summaries' rebuild, the app's edits) keep DuckDB's default; an import stages and
#: writes under its own cap (``CX_IMPORT_MEMORY``), and its write gets DuckDB's default only when
#: that cap was not enough (:func:`cxmetrics.registers.importer._more_memory`).
QUERY_MEMORY = "768MB"


def _limit_query_memory(con: duckdb.DuckDBPyConnection) -> None:
    """Cap DuckDB's memory for a read-only connection: ``CX_QUERY_MEMORY`` (a size such as 1GB or
    1500MB; ``none`` keeps DuckDB's default), else :data:`QUERY_MEMORY`. The setting belongs to the
    database instance, which every read-only connection to a file in this process shares."""
    value = os.environ.get("CX_QUERY_MEMORY", QUERY_MEMORY).strip()
    if value.lower() == "none":
        con.execute("RESET memory_limit")  # the instance may have been capped by an earlier connection
        return
    try:
        con.execute("SET memory_limit = $m", {"m": value})
    except duckdb.Error as exc:
        raise StoreError(f"CX_QUERY_MEMORY={value!r} is not a memory size (e.g. 1GB or 1500MB, or none): "
                         f"{str(exc).splitlines()[0]}") from exc


@contextlib.contextmanager
def connect(path: str | os.PathLike | None = None, *, read_only: bool = True,
            timeout: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the database for the duration of a ``with`` block.

    Read-only connections require the file to exist and to be at the current schema version.
    Read-write connections create and migrate it. A lock held by another process is retried with
    back-off until ``timeout`` (default ``$CX_LOCK_TIMEOUT`` or 30 s), then :class:`StoreBusy`.
    """
    p = db_path(path)
    if read_only and not p.exists():
        raise StoreError(f"no database at {p}: run `python -m cxmetrics demo` or `init` first")
    if not read_only:
        p.parent.mkdir(parents=True, exist_ok=True)
        release(p)
    con = _with_lock_retry(p, lambda: duckdb.connect(str(p), read_only=read_only), timeout)
    if read_only:
        _hold(p)
    before = checked = None
    try:
        # DuckDB draws a progress bar on the process's output for a long query: in a CLI command's
        # JSON, a log or a worker's answer it is noise (the commands report their own progress).
        # In a Jupyter kernel DuckDB refuses to change the setting without ipywidgets (and draws
        # no bar there without them): the notebook's connections keep it as it is
        with contextlib.suppress(duckdb.InvalidInputException):
            con.execute("SET enable_progress_bar = false")
        if read_only:
            _limit_query_memory(con)
            check_version(con, p)
        else:
            with faults.memory_capped(con, faults.VERIFY_MEMORY):  # a fresh write-open: DuckDB's default
                checked = faults.verify_once(con, p)
            migrate(con)
            before = data_version(con)
        yield con
    except (duckdb.Error, OSError) as exc:
        faults.quietly(con.close)
        fault = faults.classify(exc, p)
        if fault is None:
            raise
        raise (fault if read_only else faults.after_write_failure(exc, p, before)) from exc
    except BaseException:
        faults.quietly(con.close)
        raise
    try:
        con.close()  # a read-write close checkpoints: it can fail on a full or read-only disk
    except (duckdb.Error, OSError) as exc:
        if read_only or faults.classify(exc, p) is None:
            raise
        raise faults.after_write_failure(exc, p, before) from exc
    if not read_only:
        faults.record_written(p, checked)


#: The read-only connections that :func:`held_open` scopes keep, per store file (resolved path),
#: with the number of scopes open. Process-wide: a write from any thread releases them.
_HELD: dict[str, list] = {}
_HELD_LOCK = threading.Lock()
#: The files the current :func:`held_open` scope holds: a list the scope owns, appended to in place,
#: so a hold made in a copied context (a thread pool's, a cache's) is still released by the scope.
_HOLDING: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("cxmetrics_holding", default=None)


@contextlib.contextmanager
def held_open() -> Iterator[None]:
    """Inside the block, a store file read with :func:`connect` stays open read-only (one extra
    connection, made at the first read) until the block ends, so that every later read-only
    connection to it in this process joins the same DuckDB database instance: no opening of the
    file again (20–35 ms each at 1M customers, by hand) and its buffers warm. The app holds the
    store for one script run (``app.py``): a page's cache misses each open a connection. A write
    to the file, or an attach of it (:func:`connect` read-write, :func:`attached`), from any thread
    closes the held connection first (DuckDB refuses a second configuration of an open file, and
    a file replaced under a held instance would be read stale); later reads in the block open the
    file again and hold it again."""
    mine: list[str] = []
    token = _HOLDING.set(mine)
    try:
        yield
    finally:
        _HOLDING.reset(token)
        for key in mine:
            _unhold(key)


def _hold(p: Path) -> None:
    """After a read-only open inside :func:`held_open`: keep the file open for the rest of the block."""
    mine = _HOLDING.get()
    if mine is None:
        return
    key = str(p.resolve())
    with _HELD_LOCK:
        slot = _HELD.setdefault(key, [None, 0])
        if key not in mine:
            slot[1] += 1
            mine.append(key)
        if slot[0] is None:
            with contextlib.suppress(duckdb.Error):
                slot[0] = duckdb.connect(str(p), read_only=True)  # joins the instance just opened


def _unhold(key: str) -> None:
    with _HELD_LOCK:
        slot = _HELD.get(key)
        if slot is None:
            return
        slot[1] -= 1
        if slot[1] <= 0:
            del _HELD[key]
            if slot[0] is not None:
                faults.quietly(slot[0].close)


def release(path: str | os.PathLike) -> None:
    """Close the connection :func:`held_open` scopes keep on ``path`` (before a write or an attach
    of it); a later read in a scope holds it again."""
    key = str(Path(path).resolve())
    with _HELD_LOCK:
        slot = _HELD.get(key)
        if slot is not None and slot[0] is not None:
            con, slot[0] = slot[0], None
            faults.quietly(con.close)


def _with_lock_retry(p: Path, fn, timeout: float | None = None):
    """Call ``fn`` (which opens or attaches ``p``), retrying with back-off while the file is locked."""
    deadline = time.monotonic() + (_lock_timeout() if timeout is None else timeout)
    delay = 0.02
    while True:
        try:
            return fn()
        except (duckdb.IOException, duckdb.ConnectionException, duckdb.BinderException,
                duckdb.ResourceInUseException) as exc:
            # another process's lock; in this process, a reader's open database instance of the
            # file (another session's query), which refuses a second configuration or an attach
            # until it closes
            msg = str(exc)
            if "lock" not in msg.lower() and "different configuration" not in msg and "file handle conflict" not in msg:
                raise StoreError(f"cannot open {p}: {msg.splitlines()[0]}") from exc
            if time.monotonic() >= deadline:
                raise StoreBusy(
                    f"{p} is locked by another process (an import or another writer) — "
                    f"try again when it finishes"
                ) from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


@contextlib.contextmanager
def attached(con: duckdb.DuckDBPyConnection, path: str | os.PathLike | None = None, *,
             read_only: bool = True, timeout: float | None = None) -> Iterator[None]:
    """Attach the store to ``con`` (an in-memory staging connection) as its default catalog.

    The importer stages and validates a file in its own in-memory database with the store attached
    read-only (other readers, such as the dashboard, keep working), and re-attaches it read-write
    only for the final transaction. Temporary tables of ``con`` survive the re-attach.
    """
    p = db_path(path)
    if read_only and not p.exists():
        raise StoreError(f"no database at {p}: run `python -m cxmetrics demo` or `init` first")
    if not read_only:
        p.parent.mkdir(parents=True, exist_ok=True)
    mode = " (READ_ONLY)" if read_only else ""
    sql = "ATTACH '" + str(p).replace("'", "''") + "' AS cxstore" + mode
    release(p)  # another database instance of the file must not stay open beside the attach
    _with_lock_retry(p, lambda: con.execute(sql), timeout)
    before = checked = None

    def detach() -> None:
        con.execute("USE memory")
        con.execute("DETACH cxstore")

    try:
        con.execute("USE cxstore")
        if read_only:  # the staging database keeps its own memory cap (CX_IMPORT_MEMORY)
            check_version(con, p)
        else:
            checked = faults.verify_once(con, p, "cxstore")
            migrate(con)
            before = data_version(con)
        yield
    except (duckdb.Error, OSError) as exc:
        faults.quietly(detach)
        if read_only or faults.classify(exc, p) is None:
            raise
        raise faults.after_write_failure(exc, p, before) from exc
    except BaseException:
        faults.quietly(detach)
        raise
    try:
        detach()  # a read-write DETACH checkpoints: it can fail on a full or read-only disk
    except (duckdb.Error, OSError) as exc:
        if read_only or faults.classify(exc, p) is None:
            raise
        raise faults.after_write_failure(exc, p, before) from exc
    if not read_only:
        faults.record_written(p, checked)


#: meta keys that say a file was finished on purpose: by ``init`` or by a completed demo build.
COMPLETE_MARKERS = ("initialised", "demo_complete")


def mark(con: duckdb.DuckDBPyConnection, key: str, value: str | None = None) -> None:
    """Write a completion marker (``COMPLETE_MARKERS``) into ``meta`` (inside the caller's transaction)."""
    con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, value or now().isoformat(timespec="seconds")])


def incomplete_reason(path: str | os.PathLike | None = None) -> str | None:
    """Why the file at ``path`` is not a usable store (None when it is).

    Usable: a cxmetrics file with every contract table that ``init`` created, a demo build
    completed, or that holds imports. Not usable: no file, not a DuckDB file, missing tables, or an
    empty file with no completion marker (what an interrupted first-start build leaves). A file
    locked by another process counts as usable: someone is writing it, never rebuild it under them.
    """
    p = db_path(path)
    if not p.exists():
        return f"No database at {p}"
    state = faults.file_state(p)
    key = (str(p.resolve()), *state) if state is not None else None
    if key is not None and key in _USABLE:
        return None
    try:
        con = duckdb.connect(str(p), read_only=True)
    except (duckdb.IOException, duckdb.ConnectionException, duckdb.BinderException) as exc:
        if "lock" in str(exc).lower():
            return None
        return f"{p} is not a readable database ({str(exc).splitlines()[0]})"
    except duckdb.Error as exc:
        return f"{p} is not a readable database ({str(exc).splitlines()[0]})"
    try:
        present = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        missing = [t for t in ("meta", "imports", *schema.LOAD_ORDER) if t not in present]
        if missing:
            return f"{p} is half-built (missing tables: {', '.join(missing)})"
        markers = con.execute("SELECT count(*) FROM meta WHERE key IN (SELECT unnest($keys))",
                              {"keys": list(COMPLETE_MARKERS)}).fetchone()[0]
        if markers or con.execute("SELECT count(*) FROM imports").fetchone()[0]:
            if key is not None:
                if len(_USABLE) > 64:
                    _USABLE.clear()
                _USABLE.add(key)
            return None
        return f"{p} is half-built (no completion marker: an interrupted build)"
    finally:
        con.close()


#: The file states (:func:`cxmetrics.store.faults.file_state`: device, inode, size, modification
#: and change times, no write-ahead log) that :func:`incomplete_reason` read and found usable: the
#: same bytes give the same answer, so the app's check on every rerun is a ``stat`` instead of
#: opening the database (20–40 ms at 1M customers, by hand). Anything that writes the file changes
#: its change time. A file found locked by a writer is never remembered.
_USABLE: set[tuple] = set()


def check_version(con: duckdb.DuckDBPyConnection, p: Path | str = "") -> None:
    try:
        rows = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
    except duckdb.CatalogException as exc:
        raise StoreError(f"{p} is not a cxmetrics database (no meta table); run `init`") from exc
    found = int(rows[0][0]) if rows else 0
    if found != schema.SCHEMA_VERSION:
        raise StoreError(
            f"{p} is at schema version {found}, this code needs {schema.SCHEMA_VERSION}: "
            "open it once read-write (`python -m cxmetrics init`) to migrate"
        )


#: Migrations from version N to N+1: statements run after the (idempotent) CREATE … IF NOT EXISTS
#: DDL. 1 → 2 added the assumption_history and booked_revenue tables, which the DDL creates.
#: 2 → 3 added the optional range (low, high) of an assumption and of its versions; 3 → 4 marks stub
#: customers (table ``customer_stubs``, created by the DDL) and lets a survey response be anonymous
#: (``survey_responses.customer_id`` may be empty), as may a complaint (a log without customer key);
#: 4 → 5 the theme codebook (``schema.CODEBOOK_DDL``, idempotent, listed here for the record).
MIGRATIONS: dict[int, list[str]] = {
    1: [],
    2: ["ALTER TABLE assumptions ADD COLUMN IF NOT EXISTS low DOUBLE",
        "ALTER TABLE assumptions ADD COLUMN IF NOT EXISTS high DOUBLE",
        "ALTER TABLE assumption_history ADD COLUMN IF NOT EXISTS low DOUBLE",
        "ALTER TABLE assumption_history ADD COLUMN IF NOT EXISTS high DOUBLE"],
    3: ["ALTER TABLE survey_responses ALTER COLUMN customer_id DROP NOT NULL",
        "ALTER TABLE complaints ALTER COLUMN customer_id DROP NOT NULL"],
    4: list(schema.CODEBOOK_DDL),
}


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Create missing tables and apply pending migrations in one transaction. Returns the version.

    A file already at the current version is left alone (no DDL runs), so opening it is cheap.
    """
    try:
        rows = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
        if rows and int(rows[0][0]) == schema.SCHEMA_VERSION:
            _ensure_summaries(con)
            return schema.SCHEMA_VERSION
    except duckdb.CatalogException:
        pass
    with transaction(con):
        for ddl in schema.all_ddl():
            con.execute(ddl)
        row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = int(row[0]) if row else schema.SCHEMA_VERSION
        if version > schema.SCHEMA_VERSION:
            raise StoreError(f"database schema {version} is newer than this code ({schema.SCHEMA_VERSION})")
        while version < schema.SCHEMA_VERSION:
            for stmt in MIGRATIONS.get(version, []):
                con.execute(stmt)
            version += 1
        con.execute(
            "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(version)]
        )
        con.execute("INSERT OR IGNORE INTO meta VALUES ('data_version', '0')")
    return version


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """``BEGIN TRANSACTION`` … ``COMMIT``, or ``ROLLBACK`` and re-raise when the block fails: the one
    explicit transaction every writer uses (DuckDB does not roll a failed batch back by itself)."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


#: The commit step: what every write brings up to date with the data (the summary tables and kept
#: fits). The store imports no metric, so the layer above registers it (:mod:`cxmetrics.commit`,
#: wired by the package's ``__init__``) with :func:`on_commit`.
COMMIT_HOOKS: list = []


def on_commit(hook):
    """Register ``hook(con, version, previous=…, changed=…)``, called inside each writing transaction
    after the data version moves (``previous`` None and ``changed`` None: rebuild everything). Its
    ``stale(con)`` attribute, when it has one, tells a read-write open that the hook must run."""
    if hook not in COMMIT_HOOKS:
        COMMIT_HOOKS.append(hook)
    return hook


def _ensure_summaries(con: duckdb.DuckDBPyConnection) -> None:
    """Run the commit step for a file written before it existed (or by older code)."""
    stale = [h for h in COMMIT_HOOKS if getattr(h, "stale", None) and h.stale(con)]
    if stale:
        with transaction(con):
            for hook in stale:
                hook(con, data_version(con))


def bump_version(con: duckdb.DuckDBPyConnection, tables=None) -> int:
    """Mark the data as changed (call inside the writing transaction) and run the commit step in the
    same transaction: the summary tables computed from ``tables`` (the contract tables the write
    changed; None = any) are rebuilt, the others carried over. Returns the new version."""
    previous = data_version(con)
    con.execute(
        "UPDATE meta SET value = CAST(CAST(value AS BIGINT) + 1 AS VARCHAR) WHERE key = 'data_version'"
    )
    version = int(con.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone()[0])
    for hook in COMMIT_HOOKS:
        hook(con, version, previous=previous, changed=None if tables is None else set(tables))
    return version


def data_version(con: duckdb.DuckDBPyConnection) -> int:
    """A number that changes whenever data, assumptions or initiatives change: the cache key."""
    rows = con.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchall()  # fetched to the end:
    return int(rows[0][0]) if rows else 0  # an open result would block con.register() etc.


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def audit(con: duckdb.DuckDBPyConnection, *, actor: str, action: str, outcome: str,
          object: str | None = None, role: str | None = None, detail: str | None = None) -> None:
    """Append one row to the audit log (append-only: nothing in cxmetrics updates or deletes it)."""
    con.execute(
        "INSERT INTO audit (\"at\", actor, role, action, object, outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [now(), actor, role, action, object, outcome, detail],
    )


# --------------------------------------------------------------------------- query execution


CUSTOMERS_JOIN = "JOIN customers c USING (customer_id)"


def prune_customers_join(sql: str) -> str:
    """Drop ``JOIN customers c USING (customer_id)`` from a query that never uses alias ``c``.

    Metric queries join the customers table for segment and region; without such a filter or
    grouping the join changes no result (the importer guarantees every fact row's customer
    exists) but hashing a million customers is most of a query's cost.

    >>> prune_customers_join("SELECT count(*) FROM complaints k JOIN customers c USING (customer_id) WHERE TRUE")
    'SELECT count(*) FROM complaints k WHERE TRUE'
    >>> prune_customers_join("SELECT c.segment FROM t JOIN customers c USING (customer_id)").count("JOIN")
    1
    """
    if CUSTOMERS_JOIN not in sql:
        return sql
    rest = sql.replace(CUSTOMERS_JOIN, "")
    if re.search(r"\bc\.", rest):
        return sql
    return re.sub(r" ?" + re.escape(CUSTOMERS_JOIN), "", sql)


@dataclass(frozen=True)
class Query:
    """A named SQL statement with its bound parameters, kept on results for traceability.

    The SQL kept is the SQL run: an unused join to customers is removed on creation. A query built
    inside a :func:`memoized` page call that reads a table the call made (:func:`temp_table`: a
    relation computed once for the page) keeps that table's definition in ``made`` (name, query;
    each before the tables that read it), so that :meth:`describe` gives statements that run as
    they are on a fresh connection to the store."""

    name: str
    sql: str
    params: dict[str, Any] = field(default_factory=dict)
    made: tuple[tuple[str, Query], ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sql", prune_customers_join(self.sql))
        if not self.made:
            object.__setattr__(self, "made", _made_for(self.sql))

    def describe(self) -> str:
        made = "".join(f"-- {q.name}: a table this page computed once, read below as {name}\n"
                       f"CREATE TEMP TABLE {name} AS\n{q.sql.strip()};\n-- parameters: {dict(q.params)}\n\n"
                       for name, q in self.made)
        return f"{made}-- {self.name}\n{self.sql.strip()}\n-- parameters: {dict(self.params)}"


_MEMO: contextvars.ContextVar[dict | None] = contextvars.ContextVar("cxmetrics_query_memo", default=None)


def memoized(fn):
    """Decorator for a page's data function: identical queries (same SQL and parameters) inside
    one call run once. Metric functions compose (a trend reuses a breakdown, which reuses the
    overall figure), so without this a page would scan the same table several times."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if _MEMO.get() is not None:
            return fn(*args, **kwargs)
        token = _MEMO.set({})
        con = args[0] if args and (isinstance(args[0], duckdb.DuckDBPyConnection)
                                   or getattr(args[0], "engine", None) == "spark") else None
        resets = [enter(con) for enter in PAGE_HOOKS]
        try:
            return fn(*args, **kwargs)
        finally:
            for con, name in _MEMO.get().get(_TEMP_TABLES, ()):
                with contextlib.suppress(duckdb.Error):  # names made by temp_table()
                    if isinstance(con, duckdb.DuckDBPyConnection):
                        con.unregister(name)
                    else:
                        con.execute(f"DROP TABLE IF EXISTS {name}")
            for reset in reversed(resets):
                reset()
            _MEMO.reset(token)

    return wrapper


#: Set-ups for a :func:`memoized` page call, registered from above (e.g. the summaries' kept
#: department map): ``enter(con)`` (con None when the call has no connection) returns the
#: function that undoes it when the call ends.
PAGE_HOOKS: list = []


_TEMP_TABLES = "__temp_tables__"
_TEMP_DEFS = "__temp_defs__"


def _made_for(sql: str) -> tuple[tuple[str, Query], ...]:
    """The tables made in this page call that ``sql`` reads, with those their definitions read, in
    the order they were made (a table's definition reads only tables made before it)."""
    memo = _MEMO.get()
    defs = memo.get(_TEMP_DEFS) if memo else None
    if not defs:
        return ()
    wanted = set()
    for name, q in defs.items():
        if name in sql:
            wanted.add(name)
            wanted.update(n for n, _ in q.made)
    return tuple((name, q) for name, q in defs.items() if name in wanted)


def page_memo(key: tuple, compute: Callable[[], Any]) -> Any:
    """Inside a :func:`memoized` page call, ``compute()`` once per ``key`` (a value derived from
    query results already memoised, e.g. parsed JSON: the same within the call); outside one,
    every time. A later call counts the queries the first one ran for :func:`recorded`."""
    memo = _MEMO.get()
    if memo is None:
        return compute()
    key = ("__page_memo__", *key)
    if key not in memo:
        with recorded() as ran:
            value = compute()
        memo[key] = (value, tuple(ran))
    else:
        for rec in _RECORDERS.get():
            rec.extend(memo[key][1])
    return memo[key][0]


_PROGRESS: contextvars.ContextVar[Callable[[str], None] | None] = contextvars.ContextVar("cxmetrics_progress",
                                                                                      default=None)


@contextlib.contextmanager
def reporting(callback: Callable[[str], None]) -> Iterator[None]:
    """Long work inside the block (an import: hashing, reading, checking, writing the file, then
    each summary and fit it brings up to date) tells ``callback`` what it starts, as a short phrase
    ("checking 10,000,000 rows"): the CLI prints it, the Data page shows it in its status box."""
    token = _PROGRESS.set(callback)
    try:
        yield
    finally:
        _PROGRESS.reset(token)


def progress(message: str) -> None:
    """Tell the caller's :func:`reporting` callback, if any, what starts now."""
    callback = _PROGRESS.get()
    if callback is not None:
        callback(message)


_RECORDERS: contextvars.ContextVar[tuple[list, ...]] = contextvars.ContextVar("cxmetrics_query_recorders",
                                                                              default=())


@contextlib.contextmanager
def recorded() -> Iterator[list[Query]]:
    """The queries a block runs, in order (those a page call answers from its memo included): for a
    figure computed from other metrics' results (the P&L bridge), its "How was this computed?"."""
    ran: list[Query] = []
    token = _RECORDERS.set((*_RECORDERS.get(), ran))
    try:
        yield ran
    finally:
        _RECORDERS.reset(token)


def distinct(queries) -> tuple[Query, ...]:
    """``queries`` without repeats (the same name, SQL and parameters, or the same text for a kept
    result's), in their first order."""
    out = {}
    for q in queries:
        out.setdefault(q if isinstance(q, str) else (q.name, q.sql, repr(sorted(q.params.items(), key=lambda kv: kv[0]))), q)
    return tuple(out.values())


def temp_table(con: duckdb.DuckDBPyConnection, prefix: str, query: Query) -> str | None:
    """Inside a :func:`memoized` page call, materialise ``query`` once as a table only ``con``
    sees (dropped when the call ends) and return its name; outside one, None."""
    memo = _MEMO.get()
    if memo is None:
        return None
    name = _temp_name(prefix, query)
    made = memo.setdefault(_TEMP_TABLES, [])
    if (con, name) not in made:
        if isinstance(con, duckdb.DuckDBPyConnection):
            # an Arrow table registered on this connection: writing the rows into a DuckDB temporary
            # table costs about as much again as computing them (0.08 of 0.13 s for the landmark
            # base of 350,000 customers), and scanning either costs the same
            con.execute("SELECT 1").fetchall()  # execute() ends a result left open on con; sql() refuses one
            con.register(name, con.sql(query.sql, params=query.params).to_arrow_table())
        else:  # the Spark engine keeps a temporary view
            con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {query.sql}", query.params)
        made.append((con, name))
        memo.setdefault(_TEMP_DEFS, {})[name] = query
    return name


def made_temp_table(con: duckdb.DuckDBPyConnection, prefix: str, query: Query) -> str | None:
    """The name of the table :func:`temp_table` made of ``query`` in this page call, or None
    (none made yet, or outside a :func:`memoized` call)."""
    memo = _MEMO.get()
    if memo is None:
        return None
    name = _temp_name(prefix, query)
    return name if (con, name) in memo.get(_TEMP_TABLES, ()) else None


def _temp_name(prefix: str, query: Query) -> str:
    import hashlib

    return prefix + hashlib.sha1((query.sql + repr(sorted(query.params.items()))).encode()).hexdigest()[:16]


def _execute(con: duckdb.DuckDBPyConnection, query: Query, fetch, copy):
    """Run ``query`` and ``fetch`` its result: memoised inside a :func:`memoized` call (``copy``
    hands out a copy), errors named after the query, results bounded by ``MAX_RESULT_ROWS``."""
    for rec in _RECORDERS.get():
        rec.append(query)
    memo = _MEMO.get()
    key = None
    if memo is not None:
        key = (fetch.__name__, id(con), query.sql, repr(sorted(query.params.items(), key=lambda kv: kv[0])))
        if key in memo:
            return copy(memo[key])
    try:
        out = fetch(con.execute(query.sql, query.params))
    except duckdb.Error as exc:
        raise StoreError(f"query {query.name} failed: {str(exc).splitlines()[0]}") from exc
    if len(out) > MAX_RESULT_ROWS:
        raise StoreError(f"query {query.name} returned {len(out):,} rows; aggregate in SQL instead")
    if key is not None:
        memo[key] = copy(out)
    return out


def _frame(result) -> pd.DataFrame:
    return result.df()


def _tuples(result) -> list[tuple]:
    return result.fetchall()


def run(con: duckdb.DuckDBPyConnection, query: Query) -> pd.DataFrame:
    """Execute a (small, aggregated) query with bound parameters and return a pandas frame.

    This is the only place metric SQL is executed. Callers must
    aggregate in SQL: a query returning more than ``MAX_RESULT_ROWS`` rows is an error, so that no
    page can pull a raw table into pandas by accident. Inside a :func:`memoized` call an identical
    query returns a copy of the first result.
    """
    return _execute(con, query, _frame, lambda df: df.copy())


MAX_RESULT_ROWS = 2_000_000


def rows(con: duckdb.DuckDBPyConnection, query: Query) -> list[tuple]:
    """Like :func:`run`, for small look-ups: the rows as Python tuples (dates as ``datetime.date``)."""
    return _execute(con, query, _tuples, list)


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None, *, name: str = "scalar") -> Any:
    """The first value of a one-row look-up through :func:`rows` (None when there is no row)."""
    out = rows(con, Query(name, sql, dict(params or {})))
    return out[0][0] if out else None


def row_counts(con: duckdb.DuckDBPyConnection, tables=None) -> dict[str, int]:
    """Rows in each contract table (default: all). Names are checked against the contract, so
    only known identifiers ever reach the SQL text."""
    names = list(schema.TABLES) if tables is None else list(tables)
    unknown = [t for t in names if t not in schema.TABLES]
    if unknown:
        raise ValueError(f"not contract tables: {', '.join(unknown)}")
    sql = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM \"{t}\"" for t in names)  # whitelisted identifiers
    return {name: int(n) for name, n in con.execute(sql).fetchall()}


def table_overview(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Row count and date coverage of every contract table (the Data page)."""
    return pd.DataFrame(table_overview_rows(con))


def table_overview_rows(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """:func:`table_overview` as plain rows (``status`` prints them without loading pandas)."""
    rows = []
    for name in schema.LOAD_ORDER:
        t = schema.TABLES[name]
        date_cols = [c.name for c in t.columns if c.kind == "date"]
        first = date_cols[0] if date_cols else None
        if first:
            n, lo, hi = con.execute(
                f'SELECT count(*), min("{first}"), max("{first}") FROM "{name}"'  # identifiers from schema
            ).fetchone()
        else:
            n, lo, hi = con.execute(f'SELECT count(*), NULL, NULL FROM "{name}"').fetchone()
        rows.append({"table": name, "rows": int(n), "date_column": first, "from": lo, "to": hi})
    return rows


def import_history(con: duckdb.DuckDBPyConnection, limit: int = 200) -> pd.DataFrame:
    return con.execute(
        'SELECT import_id, "table", source, sha256, rows, inserted, updated, status, error, '
        "started_at, finished_at, actor FROM imports ORDER BY import_id DESC LIMIT ?",
        [limit],
    ).df()


def lineage(con: duckdb.DuckDBPyConnection, tables: tuple[str, ...]) -> pd.DataFrame:
    """The accepted imports that fed the given tables (file, sha256, date, rows)."""
    return con.execute(
        'SELECT import_id, "table", source, sha256, rows, finished_at FROM imports '
        "WHERE status = 'accepted' AND list_contains($tables, \"table\") ORDER BY import_id",
        {"tables": list(tables)},
    ).df()
