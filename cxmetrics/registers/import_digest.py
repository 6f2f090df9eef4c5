"""An unchanged re-import answered from the file's hash, before anything is parsed (issue 17,
item 8; issue 21, item 2: "an unchanged re-import a no-op in under 2 s").

Every import's audit row records, besides the file's SHA-256, a digest of the options it ran with
(table, mapping, encoding, :class:`~cxmetrics.importer.ImportOptions`) and the data version the
store was at when the import finished (after its own commit for an accepted file). When the same
bytes arrive again with the same options and the store is still at that data version, nothing can
have changed: the file's rows were stored exactly as in the file by that import (or found already
stored), and no write of any kind has happened since. The importer then reports "unchanged"
without reading the file further, and logs the import as such. Any other case (another data
version, other options, a dry run, a rejected earlier attempt) takes the full path, where rows
are compared with what is stored.

Hashing is itself a full read of the file (0.7 s for the bench's 830 MiB CSV, over 6 s for the
ten-times run's 8.6 GiB one). An import also records the file's identity — device, inode, size,
modification and status-change times, as ``os.stat`` gives them — when the file had not changed for
a moment before it was read (:func:`file_identity`); a later import of a file with that same
identity takes its SHA-256 from that record instead of reading the file (:func:`known_sha256`). This
is the check ``git status`` and ``rsync`` make: any write to a file moves its status-change time,
which no user can set back, and a replaced file is a new inode or a new status-change time. A file
changed in the same clock tick as the earlier read could keep its times, so a file changed less
than :data:`SETTLED_S` before it is read (:data:`SETTLED_COARSE_S` on a file system that keeps
whole seconds) has no identity recorded and is hashed every time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from typing import Any

from cxmetrics import store

_SEEN = """
SELECT CAST(json_extract(detail, '$.rows') AS BIGINT) FROM audit
WHERE action = 'import' AND outcome IN ('accepted', 'unchanged') AND starts_with(object, $prefix)
  AND json_extract_string(detail, '$.sha256') = $sha256
  AND json_extract_string(detail, '$.options') = $options
  AND CAST(json_extract(detail, '$.data_version') AS BIGINT) = $version
ORDER BY "at" DESC LIMIT 1
"""


_KNOWN = """
SELECT json_extract_string(detail, '$.sha256') FROM audit
WHERE action = 'import' AND json_extract_string(detail, '$.file') = $file
ORDER BY "at" DESC LIMIT 1
"""

#: Seconds a file must have been unchanged (since the later of its modification and status-change
#: times) when it is read for its identity to be recorded: many clock ticks of the kernel's file
#: times (a few milliseconds). :data:`SETTLED_COARSE_S` where the file system keeps whole seconds
#: (a status-change time with no fraction; FAT keeps two seconds).
SETTLED_S = 0.1
SETTLED_COARSE_S = 3.0


def _now_ns() -> int:
    return time.time_ns()


def file_identity(path: os.PathLike) -> str | None:
    """The file's identity ("device:inode:size:mtime_ns:ctime_ns"), or None when it changed too
    recently for its times to tell a later change from this state (see the module's notes)."""
    return identity_of(os.stat(path), _now_ns())


def identity_of(st: os.stat_result, now_ns: int) -> str | None:
    """:func:`file_identity` of a file whose ``os.stat`` is ``st``, read at ``now_ns``."""
    settled = SETTLED_S if st.st_ctime_ns % 1_000_000_000 else SETTLED_COARSE_S
    if now_ns - max(st.st_mtime_ns, st.st_ctime_ns) < settled * 1e9:
        return None
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"


def known_sha256(db, identity: str | None) -> str | None:
    """The SHA-256 an earlier import into this store recorded for a file of this identity, or None."""
    if identity is None or not store.db_path(db).exists():
        return None
    try:
        with store.connect(db) as con:
            row = con.execute(_KNOWN, {"file": identity}).fetchone()
    except Exception:  # an old or damaged store, say: the file is hashed
        return None
    return None if row is None else row[0]


def options_digest(table: str, mapping: dict | None, encoding: str | None, options: Any) -> str:
    """A digest of everything besides the file's bytes that decides what an import stores."""
    opts = dataclasses.asdict(options) if dataclasses.is_dataclass(options) else {}
    doc = {"table": table, "mapping": mapping or {}, "encoding": (encoding or "").lower(), "options": opts}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:32]


def seen_rows(db, table: str, sha256: str, options: str) -> int | None:
    """Rows of the earlier import of these bytes with these options into the store's current data
    version, or None when there was none (or the store cannot be read: the full path decides)."""
    if not store.db_path(db).exists():
        return None
    try:
        with store.connect(db) as con:
            row = con.execute(_SEEN, {"prefix": f"{table} ←", "sha256": sha256, "options": options,
                                      "version": store.data_version(con)}).fetchone()
    except Exception:  # an old or damaged store, say: the full path decides and reports it
        return None
    return None if row is None else int(row[0] or 0)
