"""Summary tables on Spark, kept in the lake: built by ``summaries build``, read by every page.

The embedded store keeps its summaries (:mod:`cxmetrics.store.summaries`) in the file and brings
them up to date inside each write. A lake has no writer of ours, so :func:`build` computes the
same relations — each from its one definition, reading the summaries already built, in the same
order — and the kept fits on Spark, and writes them as Parquet under ``<lake>/_summaries/``:

* ``_summaries/v<version>-<stamp>/<summary>.parquet``: one folder per build, so a build that fails
  half-way never mixes with the one in use;
* ``_summaries/state.parquet``: one row, the JSON state the embedded store keeps in ``meta``
  (format hash of the relations, landmark, end, the data version each summary was built at),
  plus the lake's data version (:mod:`cxmetrics.store.engines.lakeversion`) and the folder.

The version rules are the embedded ones. :func:`attach` (run by every
:class:`~cxmetrics.store.engines.spark.SparkConnection`) registers the stored tables and the state
only when the state was built at the lake's current data version; :func:`cxmetrics.store.summaries.source`
then binds a relation to its table only when the format hash matches the definitions of this
code and the arguments are the built ones. A lake whose files changed since the build, or code
whose relations changed, reads the raw relations (same figures, slower) until the next build.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from pathlib import Path

from cxmetrics.core.filters import Filters
from cxmetrics.store import summaries
from cxmetrics.store.engines import lakeversion
from cxmetrics.store.relations import RELATIONS

FOLDER = "_summaries"
STATE = "state.parquet"
#: The key of the summaries' state in ``meta`` (the embedded store's, so ``summaries`` reads it).
META_KEY = summaries._META_KEY  # noqa: SLF001  (one key for both engines)


def _state_path(con) -> str:
    return f"{con.lake}/{FOLDER}/{STATE}"


def read_state(con) -> dict | None:
    """The stored state of the lake's summaries, or None when none was built."""
    path = _state_path(con)
    if lakeversion.is_local(con.lake) and not lakeversion._local_path(path).exists():  # noqa: SLF001
        return None
    try:
        rows = con.spark.read.parquet(path).collect()
    except Exception:  # no state at a URI
        return None
    return json.loads(rows[0][0]) if rows else None


def attach(con) -> dict | None:
    """Register the stored summaries of ``con``'s lake when built at its current data version
    (their tables as views, their state in ``meta``); returns the state used, else None."""
    state = read_state(con)
    if not state or state.get("lake_version") != con.version:
        return None
    folder = f"{con.lake}/{state['folder']}"
    for name in state["built"]:
        con.spark.read.parquet(f"{folder}/{name}.parquet").createOrReplaceTempView(name)
    con.set_meta(META_KEY, json.dumps(_info(state)))
    return state


def _info(state: dict) -> dict:
    """The part of the state ``summaries`` reads from ``meta``."""
    return {k: state[k] for k in ("format", "landmark", "end", "built")}


def build(con, *, progress=None) -> dict:
    """Compute every summary and kept fit of the lake behind ``con`` on its Spark session and
    write them to ``<lake>/_summaries`` (see the module docs). Returns the state written, with
    ``seconds`` per summary and the fits not kept with why (``fit_errors``,
    :func:`cxmetrics.store.summaries.fit_json`)."""
    say = progress or (lambda msg: None)
    version = con.version
    landmark = summaries.DEFAULT_LANDMARK[0](con) if summaries.DEFAULT_LANDMARK else None
    end = con.execute("SELECT max(occurred_on) FROM transactions").fetchone()[0]
    if isinstance(end, dt.datetime):
        end = end.date()
    args = {"landmark": landmark, "end": None, "cal_end": end}
    stamp = time.strftime("%Y%m%dT%H%M%S")
    rel_folder = f"{FOLDER}/v{version}-{stamp}"
    folder = f"{con.lake}/{rel_folder}"
    built: dict[str, int] = {}
    seconds: dict[str, float] = {}

    def bind(sub: str, f: Filters) -> summaries.Source:
        """A relation reads the summaries this build has already written."""
        if summaries._held(RELATIONS[sub], f, args, lambda n: built.get(n) == version, args):  # noqa: SLF001
            return summaries.Source(RELATIONS[sub], sub)
        sql, params = summaries.definition(RELATIONS[sub], f, args, bind)
        return summaries.Source(RELATIONS[sub], f"({sql})", params)

    for name in summaries.DEPENDS:
        if name == summaries.FITS_TABLE:
            continue
        if (end is None or landmark is None) and name in summaries.NEED_TRANSACTIONS:
            continue  # no transactions: nothing to summarise against (as embedded)
        t0 = time.perf_counter()
        sql, params = summaries.definition(RELATIONS[name], Filters(), args, bind)
        con.sql(sql, params).write.mode("overwrite").parquet(f"{folder}/{name}.parquet")
        con.spark.read.parquet(f"{folder}/{name}.parquet").createOrReplaceTempView(name)
        built[name] = version
        seconds[name] = time.perf_counter() - t0
        say(f"{name}: {seconds[name]:.1f} s")

    state = {"format": summaries.format_version(), "landmark": landmark.isoformat() if landmark else None,
             "end": end.isoformat() if end else None, "built": built}
    con.set_meta(META_KEY, json.dumps(state))  # the fits read the summaries just built
    t0 = time.perf_counter()
    rows, errors = [], {}
    for fit_name, fit_fn in summaries.FITS.items():
        text = summaries.fit_json(fit_name, lambda f=fit_fn: f(con), errors)
        if text is not None:
            rows.append((fit_name, text))
    for fit_name, why in errors.items():
        say(f"fit {fit_name} not kept (the pages fit it when asked): {why}")
    fits = con.spark.createDataFrame(rows, "name STRING, result STRING")
    fits.coalesce(1).write.mode("overwrite").parquet(f"{folder}/{summaries.FITS_TABLE}.parquet")
    con.spark.read.parquet(f"{folder}/{summaries.FITS_TABLE}.parquet").createOrReplaceTempView(summaries.FITS_TABLE)
    built[summaries.FITS_TABLE] = version
    seconds[summaries.FITS_TABLE] = time.perf_counter() - t0
    say(f"{summaries.FITS_TABLE}: {seconds[summaries.FITS_TABLE]:.1f} s")

    state = {**state, "built": built, "lake_version": version, "folder": rel_folder}
    con.spark.createDataFrame([(json.dumps(state),)], "state STRING").coalesce(1) \
        .write.mode("overwrite").parquet(_state_path(con))
    con.set_meta(META_KEY, json.dumps(_info(state)))
    _remove_old(con, rel_folder)
    return {**state, "seconds": seconds, "fit_errors": errors}


def _remove_old(con, keep: str) -> None:
    """Delete earlier builds of a local lake (a URI's are left to its lifecycle rules)."""
    if not lakeversion.is_local(con.lake):
        return
    root = lakeversion._local_path(con.lake) / FOLDER  # noqa: SLF001
    for d in root.glob("v*"):
        if d.is_dir() and d.name != Path(keep).name:
            shutil.rmtree(d, ignore_errors=True)
