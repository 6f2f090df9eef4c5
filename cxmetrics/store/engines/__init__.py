"""Where the metric SQL runs: the embedded DuckDB store (default) or Apache Spark over a lake.

:func:`connect` returns a connection-like object for :func:`cxmetrics.store.run`, chosen by
``engine`` (else ``$CX_ENGINE``, else ``duckdb``): a DuckDB connection to ``db`` (``$CX_DB``), or a
:class:`~cxmetrics.engines.spark.SparkConnection` over ``lake`` (``$CX_LAKE``), a folder or
object-store URI with one Parquet table per data-contract table. Spark is imported only when
asked for, so DuckDB users need neither Java nor pyspark.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from cxmetrics import store

ENGINES = ("duckdb", "spark")


def engine_name(engine: str | None = None) -> str:
    """The engine to use: the argument, else ``$CX_ENGINE``, else ``duckdb``."""
    name = (engine or os.environ.get("CX_ENGINE") or "duckdb").strip().lower()
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}: one of {', '.join(ENGINES)}")
    return name


def lake_path(lake: str | os.PathLike | None = None) -> str:
    """The lake: the argument, else ``$CX_LAKE`` (required for Spark)."""
    value = str(lake) if lake else os.environ.get("CX_LAKE")
    if not value:
        raise ValueError("the Spark engine needs a lake: --lake PATH or CX_LAKE (see `lake export`)")
    return value


@contextlib.contextmanager
def connect(engine: str | None = None, *, lake: str | os.PathLike | None = None,
            db: str | os.PathLike | None = None) -> Iterator:
    """A read-only connection-like object on the chosen engine, for a ``with`` block.

    >>> with connect("duckdb", db=":memory:") as con:  # doctest: +SKIP
    ...     store.run(con, store.Query("one", "SELECT 1 AS x"))
    """
    if engine_name(engine) == "duckdb":
        with store.connect(db) as con:
            yield con
        return
    from cxmetrics.store.engines.spark import SparkConnection

    con = SparkConnection(lake_path(lake))
    try:
        yield con
    finally:
        con.close()


def connect_args(args):
    """:func:`connect` for a CLI command's parsed ``--engine``, ``--lake`` and ``--db``."""
    return connect(getattr(args, "engine", None), lake=getattr(args, "lake", None), db=getattr(args, "db", None))


def add_arguments(parser) -> None:
    """``--engine`` and ``--lake`` for a CLI command (defaults from ``CX_ENGINE`` and ``CX_LAKE``)."""
    parser.add_argument("--engine", choices=ENGINES, default=None,
                        help="where the SQL runs: duckdb (default, $CX_ENGINE) or spark")
    parser.add_argument("--lake", default=None, help="Parquet lake folder or URI for --engine spark (default $CX_LAKE)")
