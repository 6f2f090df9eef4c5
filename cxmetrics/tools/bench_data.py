"""The benchmark's datasets, built in SQL: the demo company replicated to any scale.

:func:`dataset` builds the demo company (pandas, at most ``DEMO_CUSTOMERS_MAX`` customers) and
then, in DuckDB alone, (1) copies whole customers with their churn events, responses, complaints,
transactions and follow-ups under new ids (``C0001~c3``) until the customer target is reached, and
(2) copies fact rows with new keys (``R0001-x2``, same customer) up to each fact table's target.
Step 1 is what ``bench --scale 10`` needs (10M customers would not fit pandas on this machine);
the shapes stay realistic for timing, the planted truths hold only at demo scale.

:func:`parquet_copies` writes the tables the Polars comparison scans (once, kept beside the store).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from cxmetrics import store
from cxmetrics.metrics import theme_lean, theme_store
from cxmetrics.registers import demo
from cxmetrics.store import summaries

#: The largest demo company generated in pandas; larger customer counts are copied in SQL.
DEMO_CUSTOMERS_MAX = 1_000_000
#: Tables copied with their customer in step 1: (table, key column or None, other id columns
#: that refer to copied rows and get the same suffix).
CUSTOMER_TABLES = (("churn_events", None, ()), ("survey_responses", "response_id", ()),
                   ("complaints", "complaint_id", ()), ("transactions", "transaction_id", ()),
                   ("followups", "followup_id", ("response_id",)))


#: Sizes at ``--scale 1`` (issue 21: 1M customers / 10M responses / 2M complaints / 20M transactions).
BASE_SCALE = {"customers": 1_000_000, "responses": 10_000_000, "complaints": 2_000_000,
              "transactions": 20_000_000, "import_rows": 10_000_000}


def sizes(args: argparse.Namespace) -> dict[str, int]:
    """The run's sizes: ``--scale`` times the base, each overridable by its own option."""
    return {k: getattr(args, k) if getattr(args, k) is not None else round(v * args.scale)
            for k, v in BASE_SCALE.items()}


def _cols(table: str) -> list[str]:
    from cxmetrics.store.schema import TABLES

    return list(TABLES[table].names)


def _replicate(con, table: str, key: str, target: int) -> None:
    """Add copies of ``table``'s rows with new keys until it holds ``target`` rows."""
    n = store.row_counts(con, [table])[table]
    if n == 0 or n >= target:
        return
    copies = -(-target // n) - 1
    other = ", ".join(f'"{c}"' for c in _cols(table) if c != key)
    con.execute(
        f'INSERT INTO "{table}" ("{key}", {other}) '
        f'SELECT "{key}" || \'-x\' || k, {other} FROM "{table}", range(1, $copies + 1) r(k) '
        f"LIMIT $extra", {"copies": copies, "extra": target - n})


def _as_one_import(con, table: str, log=print) -> None:
    """Store ``table``'s rows in the order one import of them all would
    (:attr:`cxmetrics.store.schema.Table.stored_order`): the copies above were added after the
    demo's rows, a customer's rows in each copy, as no import of a history file leaves them."""
    from cxmetrics.store.schema import TABLES

    order = TABLES[table].stored_order
    log(f"storing {table} as one import would …")
    con.execute(f'CREATE TEMP TABLE __whole AS SELECT * FROM "{table}"{order}')
    con.execute(f'DELETE FROM "{table}"')
    con.execute("CHECKPOINT")  # the deleted rows' blocks are free for the rows written back
    con.execute(f'INSERT INTO "{table}" SELECT * FROM __whole')
    con.execute("DROP TABLE __whole")


def _trim(con, table: str, key: str, target: int) -> None:
    n = store.row_counts(con, [table])[table]
    if n > target:
        con.execute(f'DELETE FROM "{table}" WHERE "{key}" IN (SELECT "{key}" FROM "{table}" '
                    f'ORDER BY "{key}" DESC LIMIT $extra)', {"extra": n - target})


def replicate_customers(con, target: int, log=print) -> None:
    """Copy whole customers (and the rows that belong to them) under new ids up to ``target``."""
    n = store.row_counts(con, ["customers"])["customers"]
    if n == 0 or n >= target:
        return
    copies = -(-target // n) - 1
    cols = _cols("customers")
    other = ", ".join(f'"{c}"' for c in cols if c != "customer_id")
    log(f"copying customers {n:,} → {target:,} in SQL …")
    con.execute(f'INSERT INTO customers (customer_id, {other}) '
                f"SELECT customer_id || '~c' || k, {other} FROM customers, range(1, $copies + 1) r(k) "
                "ORDER BY k, customer_id LIMIT $extra", {"copies": copies, "extra": target - n})
    for table, key, linked in CUSTOMER_TABLES:
        tcols = _cols(table)
        select = []
        for c in tcols:
            if c == key or c == "customer_id" or c in linked:
                select.append(f"\"{c}\" || '~c' || k")
            else:
                select.append(f'"{c}"')
        log(f"  … {table} of the copied customers")
        con.execute(
            f'INSERT INTO "{table}" ({", ".join(chr(34) + c + chr(34) for c in tcols)}) '
            f'SELECT {", ".join(select)} FROM "{table}", range(1, $copies + 1) r(k) '
            "WHERE customer_id || '~c' || k IN (SELECT customer_id FROM customers)", {"copies": copies})


def dataset(path: Path, customers: int, responses: int, complaints: int, transactions: int,
            log=print, demo_max: int = DEMO_CUSTOMERS_MAX) -> dict:
    """Build (or reuse) the benchmark database; returns what the build took (seconds, MiB).
    At most ``demo_max`` customers are generated as the demo company, the rest copied in SQL."""
    from cxmetrics.store.schema import TABLES

    want = {"customers": customers, "survey_responses": responses, "complaints": complaints,
            "transactions": transactions}
    if path.exists():
        with store.connect(str(path)) as con:
            have = store.row_counts(con, want)
            stale = summaries.missing(con)
            no_theme_cells = theme_store.lean(con) and not theme_lean.extras_present(con)
        built = _record(path)
        if have == want and built.exists():
            log(f"reusing {path}")
            out = {"path": str(path), "reused": True, "file_mib": round(path.stat().st_size / 2**20),
                   "built": json.loads(built.read_text())}
            if stale:  # built by another version of the summaries: pages would read the raw tables
                log("bringing its summaries up to this version's definitions …")
                t0 = time.perf_counter()
                with store.connect(str(path), read_only=False):  # a read-write open rebuilds them
                    pass
                out["summaries_rebuilt_s"] = round(time.perf_counter() - t0, 1)
                log(f"summaries rebuilt in {out['summaries_rebuilt_s']:.0f} s")
            if no_theme_cells:  # themes kept by a version before those cells: add them to the run
                log("adding the day and per-department cells to its kept theme run …")
                t0 = time.perf_counter()
                with store.connect(str(path), read_only=False) as con:
                    theme_lean.write_extras(con)
                out["theme_cells_s"] = round(time.perf_counter() - t0, 1)
                log(f"theme cells written in {out['theme_cells_s']:.0f} s")
            return out
        if have == want:  # the copies are in, the build stopped later (its record is written last)
            return _finish(path, log)
        path.unlink()
    base = min(customers, demo_max)
    log(f"building the demo company with {base:,} customers …")
    t0 = time.perf_counter()
    demo.build(str(path), customers=base, seed=11)
    demo_s = time.perf_counter() - t0
    with store.connect(str(path), read_only=False) as con:
        replicate_customers(con, customers, log)
        for table, target in (("survey_responses", responses), ("complaints", complaints),
                              ("transactions", transactions)):
            log(f"replicating {table} to {target:,} rows …")
            key = TABLES[table].key[0]
            _replicate(con, table, key, target)
            _trim(con, table, key, target)  # demo scale may already exceed it
        for table in (name for name, t in TABLES.items() if t.order):
            _as_one_import(con, table, log)
        store.bump_version(con)
        kept = _keep_themes(con, log)
    secs = time.perf_counter() - t0
    log(f"dataset ready in {secs:.0f} s")
    out = {"path": str(path), "reused": False, "build_s": round(secs, 1), "demo_s": round(demo_s, 1),
           "demo_customers": base, "themes_s": round(kept["seconds"], 1), "verbatims": kept["verbatims"],
           "built_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "file_mib": round(path.stat().st_size / 2**20)}
    _record(path).write_text(json.dumps(out))  # what building took, reported again when it is reused
    return out


def _keep_themes(con, log) -> dict:
    log("discovering and keeping the verbatims' themes …")
    kept = theme_store.keep(con, actor="bench")
    log(f"themes kept in {kept['seconds']:.1f} s ({kept['verbatims']:,} verbatims)")
    con.execute("CHECKPOINT")
    return kept


def _finish(path: Path, log) -> dict:
    """A build that stopped after its copies (killed while keeping the themes): the read-write open
    brings any stale summary up to date, then the themes are kept. The first run's time is not
    known; the record says the build was finished."""
    log(f"finishing the build of {path} (its tables are complete, its build record missing) …")
    t0 = time.perf_counter()
    with store.connect(str(path), read_only=False) as con:
        kept = _keep_themes(con, log)
    out = {"path": str(path), "reused": False, "finished": True, "finish_s": round(time.perf_counter() - t0, 1),
           "themes_s": round(kept["seconds"], 1), "verbatims": kept["verbatims"],
           "built_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "file_mib": round(path.stat().st_size / 2**20)}
    _record(path).write_text(json.dumps(out))
    return out


def _record(path: Path) -> Path:
    """The build record kept beside a benchmark store."""
    return path.with_name(path.name + ".build.json")


#: What the Polars comparison scans: the tables its page computations read.
PARQUET_TABLES = ("customers", "survey_responses", "complaints", "churn_events")


def parquet_copies(db: Path, out_dir: Path) -> dict[str, str]:
    """The tables as Parquet files beside the store (written once per store and reused)."""
    stamp = f"{db.stem}"
    paths = {t: out_dir / f"{stamp}.{t}.parquet" for t in PARQUET_TABLES}
    if not all(p.exists() and p.stat().st_mtime >= db.stat().st_mtime for p in paths.values()):
        with store.connect(str(db)) as con:
            for t, p in paths.items():
                # a table name from the fixed tuple above; the path is bound as a parameter
                con.execute(f'COPY (SELECT * FROM "{t}") TO $p (FORMAT parquet)', {"p": str(p)})
    return {t: str(p) for t, p in paths.items()}
