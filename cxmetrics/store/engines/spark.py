"""Apache Spark as a query engine: a connection-like object over a lake of Parquet tables.

:class:`SparkConnection` answers what :func:`cxmetrics.store.run` asks of a DuckDB connection —
``execute(sql, params)`` returning something with ``.df()``, ``.fetchone()`` and ``.fetchall()`` —
so the same metric SQL (DuckDB dialect, ``$name`` parameters) runs on Spark, translated by
:mod:`cxmetrics.engines.sqlmap` and bound as Spark named parameters (never formatted in).

The lake is a folder or an object-store URI with one Parquet table per data-contract table,
named ``<table>.parquet`` (a file or a folder of part files): the layout ``python -m cxmetrics
backup`` and ``lake export`` write. Each contract table becomes a temporary view of the session;
a table the lake lacks is an empty view with the contract's columns (``missing`` lists them).
A ``meta`` view carries the schema version (from the lake's manifest) and the lake's data version,
a fingerprint of its files (:mod:`cxmetrics.store.engines.lakeversion`). Summary tables built
into the lake by ``summaries build`` (:mod:`cxmetrics.store.engines.lake_summaries`) are
registered, with their state in ``meta``, only when built at that data version; otherwise every
metric reads the raw relations. Kept tables (a theme run, :mod:`cxmetrics.store.engines.lake_kept`)
are registered as they are; the theme run carries the data version it describes.

Sessions: ``CX_SPARK_REMOTE=sc://host:15002`` connects through Spark Connect (needs
``pyspark[connect]``: grpcio, grpcio-status, googleapis-common-protos, zstandard); the engine uses
only DataFrame and SQL APIs (no SparkContext, no RDDs), so every statement runs the same over
Connect. Otherwise one local session per process (``CX_SPARK_MASTER``, default
``local[2]``). Settings chosen to match DuckDB's semantics: ANSI mode off (``x / 0`` is NULL,
not an error), session time zone UTC.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from pathlib import Path
from typing import Any

import pandas as pd

from cxmetrics import store
from cxmetrics.store import schema
from cxmetrics.store.engines import lake_kept, lake_summaries, lakeversion, sqlmap
from cxmetrics.store.engines.layout import EMPTY_WHEN_MISSING, LAKE_MANIFEST, table_file
from cxmetrics.store.engines.layout import LAKE_SYSTEM_TABLES as SYSTEM_TABLES

_SPARK_TYPES = {"id": "STRING", "category": "STRING", "text": "STRING", "int": "INT", "float": "DOUBLE",
                "date": "DATE", "bool": "BOOLEAN"}

_LOCK = threading.Lock()
_SESSION = None


class EngineError(store.StoreError):
    """A statement the Spark engine could not run (translation, analysis or execution)."""


def session():
    """The process's Spark session: Spark Connect when ``CX_SPARK_REMOTE`` is set, else local."""
    global _SESSION
    with _LOCK:
        if _SESSION is not None and not _stopped(_SESSION):
            return _SESSION
        try:
            from pyspark.sql import SparkSession
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise EngineError("the Spark engine needs pyspark (pip install -r requirements.txt) and Java 17+") from exc
        remote = os.environ.get("CX_SPARK_REMOTE")
        builder = SparkSession.builder.appName("cxmetrics")
        if remote:
            builder = remote_builder(remote)
        else:
            builder = (builder.master(os.environ.get("CX_SPARK_MASTER", "local[2]"))
                       .config("spark.ui.enabled", "false")
                       .config("spark.ui.showConsoleProgress", "false")
                       .config("spark.sql.shuffle.partitions", os.environ.get("CX_SPARK_PARTITIONS", "2"))
                       .config("spark.sql.execution.arrow.pyspark.enabled", "true"))
            if os.environ.get("CX_SPARK_DRIVER_MEMORY"):  # local mode: the driver is the executor
                builder = builder.config("spark.driver.memory", os.environ["CX_SPARK_DRIVER_MEMORY"])
        spark = builder.getOrCreate()
        spark.conf.set("spark.sql.ansi.enabled", "false")
        spark.conf.set("spark.sql.session.timeZone", "UTC")
        if not remote:
            spark.sparkContext.setLogLevel("ERROR")
        _SESSION = spark
        return spark


def remote_builder(url: str):
    """A Spark Connect session builder for ``url`` (``sc://host:15002``, or ``local[2]`` to start
    a local Connect server). Built on the Connect client's own class, so it works beside a local
    classic session in the same process (the generic builder refuses then)."""
    try:
        from pyspark.sql.connect.session import SparkSession as RemoteSession
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise EngineError("Spark Connect needs grpcio, grpcio-status, googleapis-common-protos and zstandard "
                          "(pip install -r requirements.txt)") from exc
    return RemoteSession.builder.remote(url).appName("cxmetrics")


def _stopped(spark) -> bool:
    try:
        return spark.sparkContext._jsc is None  # a classic session whose context was stopped
    except Exception:  # Spark Connect has no sparkContext
        return False


def _bind(value: Any) -> Any:
    """A parameter value Spark can turn into a literal (lists for tuples, plain Python scalars)."""
    if isinstance(value, tuple | list):
        return [_bind(v) for v in value]
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if hasattr(value, "item") and not isinstance(value, dt.date):  # numpy scalars
        return value.item()
    return value


def _args(params) -> dict | list | None:
    if not params:
        return None
    if isinstance(params, dict):
        return {k: _bind(v) for k, v in params.items()}
    return [_bind(v) for v in params]


def _first_line(exc: Exception) -> str:
    """The first non-empty line of an error (Spark's messages may start with a newline)."""
    return next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)[:400]


class SparkResult:
    """The answer to one statement, in DuckDB's shapes: ``df()``, ``fetchone()``, ``fetchall()``."""

    def __init__(self, frame) -> None:
        self._frame = frame

    def _collect(self, fn):
        try:
            return fn()
        except Exception as exc:
            raise EngineError(f"Spark failed running the query: {_first_line(exc)}") from exc

    def df(self) -> pd.DataFrame:
        """A pandas frame; DECIMAL columns as float64 and DATE columns as datetime64 (as DuckDB's
        ``.df()`` gives them)."""
        types = dict(self._frame.dtypes)
        out = self._collect(self._frame.toPandas)
        for name, kind in types.items():
            if kind.startswith("decimal"):
                out[name] = pd.to_numeric(out[name].map(lambda v: None if v is None else float(v)), errors="coerce")
            elif kind == "date":
                out[name] = pd.to_datetime(out[name]).astype("datetime64[us]")
        return out

    fetchdf = df

    def fetchall(self) -> list[tuple]:
        return [tuple(r) for r in self._collect(self._frame.collect)]

    def fetchone(self) -> tuple | None:
        rows = self._collect(self._frame.limit(1).collect)
        return tuple(rows[0]) if rows else None


class SparkConnection:
    """A read-only, connection-like view of a lake on a Spark session (see the module docs)."""

    engine = "spark"

    def __init__(self, lake: str | os.PathLike, spark=None) -> None:
        self.lake = str(lake).rstrip("/")
        base = spark or session()
        try:
            self.spark = base.newSession()  # own temporary views, shared context
        except Exception:  # Spark Connect: one session per client
            self.spark = base
        self.manifest = self._manifest()
        self.version = lakeversion.version(self.lake, self.spark)
        self._meta = {"schema_version": str(self.manifest.get("schema_version", schema.SCHEMA_VERSION)),
                      "data_version": str(self.version)}
        self.missing: list[str] = []
        for name in schema.LOAD_ORDER:
            self._register(name, contract=True)
        for name in SYSTEM_TABLES:
            self._register(name, contract=False)
        self._register_meta()
        self.summaries = lake_summaries.attach(self)
        #: Kept tables of the lake (a theme run), registered as views (:mod:`lake_kept`).
        self.kept = lake_kept.attach(self)

    # ------------------------------------------------------------------ the lake
    def path(self, table: str) -> str:
        """Where ``table`` lives in the lake (``<lake>/<table>.parquet``)."""
        return f"{self.lake}/{table_file(table)}"

    def _local(self) -> Path | None:
        return None if "://" in self.lake else Path(self.lake)

    def _manifest(self) -> dict:
        local = self._local()
        if local is None:
            return {}
        for name in (LAKE_MANIFEST, "cxmetrics_backup.json"):
            f = local / name
            if f.is_file():
                return json.loads(f.read_text())
        return {}

    def _exists(self, table: str) -> bool:
        local = self._local()
        if local is not None:
            return (local / table_file(table)).exists()
        try:
            self.spark.read.parquet(self.path(table)).schema  # noqa: B018  (reading the footer checks it)
            return True
        except Exception:
            return False

    def _register(self, name: str, *, contract: bool) -> None:
        if self._exists(name):
            self.spark.read.parquet(self.path(name)).createOrReplaceTempView(name)
        elif contract:
            cols = ", ".join(f"`{c.name}` {_SPARK_TYPES[c.kind]}" for c in schema.TABLES[name].columns)
            self.spark.createDataFrame([], cols).createOrReplaceTempView(name)  # identifiers from schema
            self.missing.append(name)
        elif name in EMPTY_WHEN_MISSING:
            self.spark.createDataFrame([], EMPTY_WHEN_MISSING[name]).createOrReplaceTempView(name)

    def _register_meta(self) -> None:
        self.spark.createDataFrame(sorted(self._meta.items()), "key STRING, value STRING").createOrReplaceTempView("meta")

    def set_meta(self, key: str, value: str) -> None:
        """Set one ``meta`` row of this connection (the lake is not written)."""
        self._meta[key] = value
        self._register_meta()

    def column_types(self, table: str) -> dict[str, str]:
        """Column name → Spark type name (``string``, ``int``, ``date`` …) of a registered table."""
        return dict(self.spark.table(table).dtypes)

    def tables(self) -> list[str]:
        """Temporary views of this connection (contract tables, bookkeeping, temp tables)."""
        return sorted(t.name for t in self.spark.catalog.listTables() if t.isTemporary)

    # ------------------------------------------------------------------ statements
    def sql(self, sql: str, params=None):
        """A Spark DataFrame for one DuckDB-dialect query (translated, parameters bound)."""
        return self._run(sqlmap.parse(sql), params)

    def execute(self, sql: str, params=None) -> SparkResult:
        """Run one statement: a query, ``CREATE [OR REPLACE] TEMP TABLE name AS query`` (kept as
        a cached temporary view) or ``DROP TABLE [IF EXISTS] name`` of such a table. Writes to
        the lake are refused: it belongs to the pipelines that land it."""
        from sqlglot import exp

        try:
            tree = sqlmap.parse(sql)
        except Exception as exc:
            raise EngineError(f"cannot parse: {str(exc).splitlines()[0]}") from exc
        props = tree.args.get("properties")
        if isinstance(tree, exp.Create) and str(tree.args.get("kind", "")).upper() == "TABLE" and props \
                and any(isinstance(p, exp.TemporaryProperty) for p in props.expressions):
            name = tree.find(exp.Table).name
            query = tree.expression
            frame = self._run(query, params).cache()
            frame.createOrReplaceTempView(name)
            return SparkResult(self.spark.createDataFrame([], "Count BIGINT"))
        if isinstance(tree, exp.Drop) and str(tree.args.get("kind", "")).upper() == "TABLE":
            name = tree.find(exp.Table).name
            if name in schema.TABLES or name in SYSTEM_TABLES or name == "meta":
                raise EngineError(f"the lake is read-only: will not drop {name}")
            self.spark.catalog.dropTempView(name)
            return SparkResult(self.spark.createDataFrame([], "Count BIGINT"))
        if not isinstance(tree, exp.Query):
            raise EngineError(f"the Spark engine is read-only: {type(tree).__name__} statements are not run")
        return SparkResult(self._run(tree, params))

    def _run(self, tree, params):
        try:
            text = sqlmap.to_spark(tree)
        except Exception as exc:
            raise EngineError(f"cannot translate for Spark: {str(exc).splitlines()[0]}") from exc
        try:
            frame = self.spark.sql(text, args=_args(params))
        except Exception as exc:
            raise EngineError(f"Spark rejected the query: {_first_line(exc)}") from exc
        return frame

    def close(self) -> None:
        for name in self.tables():
            self.spark.catalog.dropTempView(name)

    def __enter__(self) -> SparkConnection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
