"""``python -m cxmetrics bench --engine spark``: the summary build and every page timed on local
Spark beside DuckDB, on the same data.

The data is the benchmark's (:func:`cxmetrics.tools.bench_data.dataset`: the demo company at
``--customers``, its fact tables replicated up to ``--responses``, ``--complaints`` and
``--transactions``), published as a lake with ``lake export``. Measured, in this process:

* **DuckDB**: the summaries' rebuild (what every write of the embedded store runs) and each page's
  data function on a fresh read-only connection (summary tables current);
* **Spark** (local, ``--spark-master``, default ``local[2]``; or ``CX_SPARK_REMOTE``): the session
  start, ``summaries build`` into the lake, and each page's data function on a new connection to
  the lake, first with the stored summaries (what the app reads), then on the raw relations
  (what a lake without a build, or a filtered view, costs).

Figures are reported, never asserted. Spark's timings include its per-query fixed cost (planning
and scheduling, a few hundred milliseconds a job on a small machine); see the README section
"Spark: when it pays off" for the model this measures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from cxmetrics import store, views
from cxmetrics.core import roles
from cxmetrics.core.filters import Filters


def _page(spec: roles.PageSpec):
    """The whole page: every data function it calls on load (:func:`cxmetrics.views.calls_for`)."""
    calls = views.calls_for(spec)
    return lambda con, filters: tuple(fn(con, filters) for fn in calls)


def _timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _pages(connect, log, label: str) -> dict[str, dict]:
    """Each page's data function on a new connection: seconds, or the error's first line."""
    out = {}
    for spec in roles.PAGES:
        try:
            with connect() as con:
                seconds, _ = _timed(lambda con=con, spec=spec: _page(spec)(con, Filters()))
            out[spec.title] = {"s": round(seconds, 3)}
        except Exception as exc:  # a page failing is a finding of the benchmark, reported
            out[spec.title] = {"error": str(exc).splitlines()[0][:200]}
        log(f"  {label} {spec.title}: " + (f"{out[spec.title]['s']:.2f} s" if "s" in out[spec.title]
                                           else out[spec.title]["error"]))
    return out


def run(args: argparse.Namespace, log=print) -> dict:
    from cxmetrics import commit
    from cxmetrics.registers import lake
    from cxmetrics.store import engines
    from cxmetrics.store.engines import lake_summaries
    from cxmetrics.store.engines import spark as spark_engine
    from cxmetrics.tools import bench_data

    out_dir = Path(args.dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n = bench_data.sizes(args)
    name = f"bench_{n['customers']}_{n['responses']}_{n['complaints']}_{n['transactions']}"
    db = Path(bench_data.dataset(out_dir / f"{name}.duckdb", n["customers"], n["responses"], n["complaints"],
                                 n["transactions"], log)["path"])
    lake_dir = out_dir / f"{name}.lake"
    if not (lake_dir / lake.MANIFEST).exists():
        shutil.rmtree(lake_dir, ignore_errors=True)
        log(f"exporting the lake to {lake_dir} …")
        seconds, _ = _timed(lambda: lake.export(db, lake_dir))
        log(f"  {seconds:.1f} s")
    with store.connect(str(db)) as con:
        rows = store.row_counts(con)
    res: dict = {"machine": {"cpus": os.cpu_count(), "load_average_1min_at_start": os.getloadavg()[0],
                             "spark_master": os.environ.get("CX_SPARK_REMOTE") or args.spark_master,
                             "spark_driver_memory": os.environ.get("CX_SPARK_DRIVER_MEMORY", args.spark_memory)},
                 "scale": rows, "duckdb": {}, "spark": {}}

    log("DuckDB: rebuilding every summary and kept fit …")
    with store.connect(str(db), read_only=False) as con:
        con.execute("BEGIN TRANSACTION")
        seconds, built = _timed(lambda: commit.commit(con, store.data_version(con)))
        con.execute("ROLLBACK")  # the timing only: the file keeps its summaries
    res["duckdb"]["summaries_build_s"] = round(seconds, 2)
    log(f"  {seconds:.1f} s ({len(built)} summaries)")
    res["duckdb"]["pages"] = _pages(lambda: store.connect(str(db)), log, "DuckDB")

    os.environ.setdefault("CX_SPARK_MASTER", args.spark_master)
    os.environ.setdefault("CX_SPARK_PARTITIONS", str(args.spark_partitions))
    os.environ.setdefault("CX_SPARK_DRIVER_MEMORY", args.spark_memory)
    seconds, _ = _timed(spark_engine.session)
    res["spark"]["session_start_s"] = round(seconds, 2)
    log(f"Spark session started in {seconds:.1f} s")
    log("Spark: summaries build into the lake …")
    with engines.connect("spark", lake=lake_dir) as con:
        seconds, state = _timed(lambda: lake_summaries.build(con, progress=lambda m: log("  " + m)))
    res["spark"]["summaries_build_s"] = round(seconds, 2)
    res["spark"]["summaries_s"] = {k: round(v, 2) for k, v in state["seconds"].items()}
    log(f"  {seconds:.1f} s")
    res["spark"]["pages_summaries"] = _pages(lambda: engines.connect("spark", lake=lake_dir), log, "Spark")
    if not args.skip_raw:
        stash = lake_dir / lake_summaries.FOLDER
        hidden = lake_dir.with_name(lake_dir.name + ".summaries-aside")
        shutil.move(stash, hidden)  # the raw relations: no stored summaries for this run
        try:
            res["spark"]["pages_raw"] = _pages(lambda: engines.connect("spark", lake=lake_dir), log, "Spark raw")
        finally:
            shutil.move(hidden, stash)
    res["machine"]["load_average_1min_at_end"] = os.getloadavg()[0]  # other work on the machine inflates every figure
    return res


def table(res: dict) -> str:
    d, s = res["duckdb"], res["spark"]
    scale = res["scale"]
    lines = [f"{scale['survey_responses']:,} responses, {scale['customers']:,} customers, "
             f"{scale['transactions']:,} transactions; Spark {res['machine']['spark_master']}, "
             f"{res['machine']['cpus']} CPUs, load average {res['machine'].get('load_average_1min_at_start', 0):.1f} "
             f"→ {res['machine'].get('load_average_1min_at_end', 0):.1f}",
             f"{'':28} {'DuckDB':>9} {'Spark':>9} {'Spark raw':>10}",
             f"{'session start':28} {'':>9} {s['session_start_s']:>8.1f}s",
             f"{'summaries build':28} {d['summaries_build_s']:>8.1f}s {s['summaries_build_s']:>8.1f}s"]

    def cell(row):
        return f"{row['s']:>8.2f}s" if row and "s" in row else f"{'error':>9}"

    for title in d["pages"]:
        raw = s.get("pages_raw", {}).get(title)
        lines.append(f"{title:28} {cell(d['pages'][title])} {cell(s['pages_summaries'][title])} "
                     + (cell(raw) if raw else ""))
    return "\n".join(lines)


def cmd_bench(args: argparse.Namespace) -> int:
    from cxmetrics.tools import bench_report

    res = run(args, log=lambda m: print(m, file=sys.stderr, flush=True))
    return bench_report.publish(res, Path(args.out).with_name("bench_spark.json"), table)


def register_cli(sub, parents) -> None:
    """Adds ``--engine`` and the Spark options to the ``bench`` command (defined by
    :mod:`cxmetrics.tools.bench`, which keeps its own flags and runs the DuckDB benchmark)."""
    p = sub.choices["bench"]
    p.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb",
                   help="spark: time the summary build and every page on local Spark beside DuckDB")
    p.add_argument("--spark-master", default="local[2]", help="local Spark master for --engine spark (default local[2])")
    p.add_argument("--spark-partitions", type=int, default=2, help="spark.sql.shuffle.partitions (default 2)")
    p.add_argument("--spark-memory", default="8g",
                   help="local Spark's driver memory, which is its executors' too (default 8g; CX_SPARK_DRIVER_MEMORY)")
    p.add_argument("--skip-raw", action="store_true", help="--engine spark: skip the pages on the raw relations")
    duckdb_bench = p.get_default("func")
    p.set_defaults(func=lambda a: cmd_bench(a) if a.engine == "spark" else duckdb_bench(a))
