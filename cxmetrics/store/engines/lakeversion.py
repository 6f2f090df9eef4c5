"""The data version of a lake: a fingerprint of the files holding its tables.

A lake is landed by pipelines, so no writer bumps a counter the way the embedded store does.
What identifies its content is the set of Parquet files behind each table: their paths, sizes
and modification times. :func:`version` hashes that listing (contract and bookkeeping tables;
the ``_summaries`` folder is not part of it) into a positive integer: any rewritten, added or
removed file gives another version, so summaries built on an earlier state are not used, and
the dashboard's cache (keyed by data version) drops its results.

A local folder is listed with ``os.stat`` (no Spark needed, cheap enough for every rerun of a
page); an object-store URI through Spark's ``binaryFile`` source, which lists the files and
their metadata without reading their content (works over Spark Connect).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cxmetrics.store import schema
from cxmetrics.store.engines.layout import LAKE_SYSTEM_TABLES, table_file

#: Tables whose files make up the data version.
VERSIONED = (*schema.LOAD_ORDER, *LAKE_SYSTEM_TABLES)


def is_local(lake: str | os.PathLike) -> bool:
    s = str(lake)
    return "://" not in s or s.startswith("file://")


def _local_path(lake: str | os.PathLike) -> Path:
    s = str(lake)
    return Path(s[len("file://"):] if s.startswith("file://") else s)


def listing(lake: str | os.PathLike, spark=None) -> list[tuple]:
    """(table, relative file, size, modification time) of every data file, sorted."""
    out: list[tuple] = []
    if is_local(lake):
        root = _local_path(lake)
        for name in VERSIONED:
            p = root / table_file(name)
            if p.is_file():
                s = p.stat()
                out.append((name, p.name, s.st_size, s.st_mtime_ns))
            elif p.is_dir():
                for f in sorted(p.rglob("*")):
                    if f.is_file() and not f.name.startswith((".", "_")):
                        s = f.stat()
                        out.append((name, str(f.relative_to(root)), s.st_size, s.st_mtime_ns))
            else:
                out.append((name, None, None, None))
        return out
    if spark is None:
        raise ValueError("listing a lake at a URI needs a Spark session")
    base = str(lake).rstrip("/")
    for name in VERSIONED:
        try:
            rows = (spark.read.format("binaryFile").option("recursiveFileLookup", "true")
                    .load(f"{base}/{table_file(name)}").select("path", "length", "modificationTime").collect())
        except Exception:  # the table is not in the lake
            rows = []
        if not rows:
            out.append((name, None, None, None))
        for r in sorted(rows, key=lambda r: r[0]):
            if not r[0].rsplit("/", 1)[-1].startswith((".", "_")):
                out.append((name, r[0][len(base):], int(r[1]), str(r[2])))
    return out


def version(lake: str | os.PathLike, spark=None) -> int:
    """The lake's data version: a 48-bit hash of :func:`listing` (never 0, the empty store's)."""
    text = "\n".join("\t".join(str(v) for v in row) for row in listing(lake, spark))
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16) or 1
