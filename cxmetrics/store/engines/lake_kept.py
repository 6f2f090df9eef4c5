"""Kept results of a lake: tables a metric keeps beside the data (the kept theme run), under
``<lake>/_kept/``.

The embedded store keeps a theme run (:mod:`cxmetrics.metrics.theme_store`) in tables of its own
file. A lake carries the same tables as Parquet, written either by ``lake export`` (the store's
kept tables, copied) or by ``summaries build`` on Spark (a run kept on the lake), and laid out as
the summaries are:

* ``_kept/k<stamp>/<table>.parquet``: one folder per write, so a write that fails half-way never
  mixes with the one in use;
* ``_kept/state.parquet``: one row, JSON ``{"folder": …, "tables": […]}``.

This module knows no table's meaning: :func:`attach` (run by every
:class:`~cxmetrics.store.engines.spark.SparkConnection`) registers the listed tables as views,
and the metric that reads them applies its own version rule (a theme run is current only when its
``data_version`` is the lake's data version, :mod:`cxmetrics.store.engines.lakeversion`; the
``_kept`` folder is not part of that fingerprint, so writing it does not move the version).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from cxmetrics.store.engines import lakeversion

FOLDER = "_kept"
STATE = "state.parquet"


def _state_path(lake: str) -> str:
    return f"{lake}/{FOLDER}/{STATE}"


def read_state(con) -> dict | None:
    """The stored state of the lake's kept tables, or None when it keeps none."""
    path = _state_path(con.lake)
    if lakeversion.is_local(con.lake) and not lakeversion._local_path(path).exists():  # noqa: SLF001
        return None
    try:
        rows = con.spark.read.parquet(path).collect()
    except Exception:  # no state at a URI
        return None
    return json.loads(rows[0][0]) if rows else None


def attach(con) -> tuple[str, ...]:
    """Register the kept tables of ``con``'s lake as views; returns their names."""
    state = read_state(con)
    if not state:
        return ()
    folder = f"{con.lake}/{state['folder']}"
    for name in state["tables"]:
        con.spark.read.parquet(f"{folder}/{name}.parquet").createOrReplaceTempView(name)
    return tuple(state["tables"])


def new_folder() -> str:
    """A new folder for one write, relative to the lake."""
    return f"{FOLDER}/k{time.strftime('%Y%m%dT%H%M%S')}-{time.perf_counter_ns() % 1_000_000:06d}"


def export(duck, lake: Path, tables: dict[str, tuple[str, list]]) -> dict:
    """Write ``tables`` (name → (DuckDB query, parameters)) from the DuckDB connection ``duck``
    into the local lake folder ``lake`` and point the state at them (``lake export``)."""
    folder = new_folder()
    (lake / folder).mkdir(parents=True, exist_ok=True)
    for name, (sql, params) in tables.items():
        target = str(lake / folder / f"{name}.parquet").replace("'", "''")
        duck.execute(f"COPY ({sql}) TO '{target}' (FORMAT parquet)", params)  # names and SQL from the caller
    state = {"folder": folder, "tables": list(tables)}
    target = str(lake / FOLDER / STATE).replace("'", "''")
    duck.execute(f"COPY (SELECT '{_quote(json.dumps(state))}' AS state) TO '{target}' (FORMAT parquet)")
    return state


def _quote(s: str) -> str:
    return s.replace("'", "''")


class Writer:
    """Writes kept tables into the lake behind a Spark connection (``summaries build``): each
    table is written to a new folder and registered as a view at once (later steps read it);
    :meth:`commit` points the state at the folder and removes earlier ones."""

    def __init__(self, con) -> None:
        self.con = con
        self.folder = new_folder()
        self.tables: list[str] = []

    def _path(self, name: str) -> str:
        return f"{self.con.lake}/{self.folder}/{name}.parquet"

    def _written(self, name: str, frame) -> int:
        frame.write.mode("overwrite").parquet(self._path(name))
        self.con.spark.read.parquet(self._path(name)).createOrReplaceTempView(name)
        if name not in self.tables:
            self.tables.append(name)
        return int(self.con.spark.table(name).count())

    def query(self, name: str, sql: str, params: dict | None = None) -> int:
        """Keep the rows of a DuckDB-dialect query (translated like every metric query) as
        ``name``; returns the row count."""
        return self._written(name, self.con.sql(sql, params))

    def frame(self, name: str, df, schema: str | None = None) -> int:
        """Keep rows (tuples, or an Arrow table) as ``name`` (``schema``: a Spark DDL string)."""
        return self._written(name, self.con.spark.createDataFrame(df, schema).coalesce(1))

    def commit(self) -> dict:
        """Point the lake's state at this write (the tables of an earlier one are dropped from
        the session and, in a local lake, deleted)."""
        before = read_state(self.con) or {}
        for name in before.get("tables", ()):
            if name not in self.tables:
                self.con.spark.catalog.dropTempView(name)
        state = {"folder": self.folder, "tables": list(self.tables)}
        self.con.spark.createDataFrame([(json.dumps(state),)], "state STRING").coalesce(1) \
            .write.mode("overwrite").parquet(_state_path(self.con.lake))
        if lakeversion.is_local(self.con.lake):
            root = lakeversion._local_path(self.con.lake) / FOLDER  # noqa: SLF001
            for d in root.glob("k*"):
                if d.is_dir() and d.name != Path(self.folder).name:
                    shutil.rmtree(d, ignore_errors=True)
        return state
