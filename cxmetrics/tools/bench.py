"""``python -m cxmetrics bench``: every budget of the performance issue measured and reported.

* theme discovery (``python -m cxmetrics themes discover``) on the bench store's verbatims, timed
  in a fresh process (``worker_discovery``), first, so the pages read the run it keeps;
* every page's data functions (all those the page calls on load) under every filter the app offers
  (unfiltered, a segment, a region, the last 12 months, one quarter, a custom range, a department
  scope): uncached, cached and peak memory, each in a fresh subprocess (``worker_page``);
* beside it, for the pages that have one: a pandas baseline, Polars (lazy, streaming) and the
  one-scan DuckDB floor (:mod:`cxmetrics.tools.bench_compare`);
* imports of a survey CSV through the CLI: first, unchanged re-import, append of 100,000 rows;
  start-up of the CLI and of the app; server CPU per page rerun and the time to a rendered page
  for 1, 5 and 20 concurrent browser sessions (:mod:`cxmetrics.tools.bench_load`);
* ``--scale F`` multiplies the default sizes (1M customers, 10M responses, 2M complaints, 20M
  transactions, a 10M-row import); the dataset is built in SQL (:mod:`cxmetrics.tools.bench_data`).

The dataset is the demo company replicated in SQL (new keys, same score distributions): shapes
are realistic for timing; the planted truths are only guaranteed at demo scale. Budgets are
reported (:mod:`cxmetrics.tools.bench_report`), never asserted in tests.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import pickle
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from cxmetrics import store
from cxmetrics import views as page_views
from cxmetrics.core import periods, roles
from cxmetrics.core.filters import Filters, Scope
from cxmetrics.tools import bench_compare, bench_data, bench_load, bench_report, bench_spark
from cxmetrics.tools.bench_data import BASE_SCALE, sizes  # noqa: F401  (tests and callers use bench.sizes)
from cxmetrics.tools.bench_report import VIEW_NAMES, budgets, checks, readme_section, table, write_readme  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
#: This module's import name, for its workers (``python -m <it> page …``), wherever it lives.
WORKER_MODULE = __spec__.name if __name__ == "__main__" and __spec__ else __name__
startup = bench_load.startup  # kept here: tests and older callers use bench.startup()


def page_function(spec: roles.PageSpec):
    """The callable ``(con, filters) -> data`` behind a page (the one place that knows how pages
    name their data functions): every function the page calls on load, in its order
    (:func:`cxmetrics.views.calls_for`), so the whole page is timed."""
    calls = page_views.calls_for(spec)
    if len(calls) == 1:
        return calls[0]

    def whole(con, filters):
        return tuple(fn(con, filters) for fn in calls)

    whole.calls = calls
    return whole


# ----------------------------------------------------------------------------- filtered views


def _filters(view: str | None) -> Filters:
    """The Filters of a view (JSON from :func:`views`); None or ``{}``: unfiltered."""
    v = json.loads(view) if view else {}
    scope = Scope(role="department", departments=tuple(v["departments"]), user="bench") if v.get("departments") \
        else Scope()
    return Filters(segments=tuple(v.get("segments", ())), regions=tuple(v.get("regions", ())), scope=scope,
                   date_from=dt.date.fromisoformat(v["date_from"]) if v.get("date_from") else None,
                   date_to=dt.date.fromisoformat(v["date_to"]) if v.get("date_to") else None)




def views(db: Path) -> dict[str, dict]:
    """Every filter the app offers, as ``name -> {"label", "filters"}``: one segment, one region,
    the sidebar's "Last 12 months" (:func:`cxmetrics.core.periods.preset_range`: the days the app
    sets), a whole calendar quarter that ends before the data do, a custom range that starts and
    ends mid-month, and the first department's scope (the department role)."""
    with store.connect(str(db)) as con:
        seg = con.execute("SELECT min(segment) FROM customers").fetchone()[0]
        region = con.execute("SELECT min(region) FROM customers").fetchone()[0]
        first, last = con.execute("SELECT min(responded_on), max(responded_on) FROM survey_responses").fetchone()
        dept = con.execute("SELECT min(department) FROM departments").fetchone()[0]
    c_from = (last - dt.timedelta(days=300)).replace(day=17)
    c_to = (last - dt.timedelta(days=40)).replace(day=9)
    out = {
        "unfiltered": {"label": "unfiltered", "filters": {}},
        "segment": {"label": f"segment {seg}", "filters": {"segments": [seg]}},
        "region": {"label": f"region {region}", "filters": {"regions": [region]}},
    }
    # the quarter: the sidebar's "Last complete quarter" as of the day before the last, so a range
    # closed at both ends. When the data end on a quarter's last day, that quarter itself runs to the
    # end and is answered as "the last 12 months" is (from the stored latest answers); the one
    # before it is the harder case, and the quarter every earlier run measured
    for name, preset, end in (("last 12 months", periods.LAST_12_MONTHS, last),
                              ("one quarter", periods.LAST_QUARTER, last - dt.timedelta(days=1))):
        got = periods.preset_range(preset, first, end)
        if got is not None:
            out[name] = {"label": f"{got[0].isoformat()} – {got[1].isoformat()}",
                         "filters": {"date_from": got[0].isoformat(), "date_to": got[1].isoformat()}}
    out["custom range"] = {"label": f"{c_from.isoformat()} – {c_to.isoformat()}",
                           "filters": {"date_from": c_from.isoformat(), "date_to": c_to.isoformat()}}
    out["department scope"] = {"label": f"department role, {dept}", "filters": {"departments": [dept]}}
    return out


# ----------------------------------------------------------------------------- workers (subprocesses)


def worker_page(db: str, path: str, view: str | None = None, repeats: str = "1") -> dict:
    """One page in a fresh process: ``cold_s`` is its first call (DuckDB buffers empty, libraries the
    page imports lazily, such as statsmodels, loaded inside the call); ``uncached_s`` is a cache
    miss in a running app: a new connection (every request opens one, so DuckDB's buffers start
    empty again) with the libraries loaded, the median of ``repeats`` such misses (each one's time
    in ``uncached_runs_s``: on this machine a single miss of one page read 1.17 s in a run and
    0.72–0.83 s in three processes right after); ``warm_s`` is a cache hit (``st.cache_data``
    unpickles the stored result); ``peak_mib`` the process's peak resident memory after the first
    miss (before the repeats)."""
    spec = next(p for p in roles.PAGES if p.path == path)
    fn = page_function(spec)
    import pandas  # noqa: F401  (loaded by the app before any page runs)

    filters = _filters(view)
    with store.connect(db) as con:
        before = bench_compare.rss_mib()
        t0 = time.perf_counter()
        result = fn(con, filters)
        cold = time.perf_counter() - t0
    blob = pickle.dumps(result)
    t0 = time.perf_counter()
    pickle.loads(blob)
    warm = time.perf_counter() - t0
    runs, peak = [], None
    for _ in range(max(1, int(repeats))):
        parts = {}
        with store.connect(db) as con:
            t0 = time.perf_counter()
            for part in getattr(fn, "calls", (fn,)):  # a page that calls several: each one timed too
                t = time.perf_counter()
                part(con, filters)
                parts[part.__name__] = time.perf_counter() - t
            runs.append((time.perf_counter() - t0, parts))
        if peak is None:
            peak = bench_compare.peak_mib()
    uncached, parts = sorted(runs, key=lambda r: r[0])[(len(runs) - 1) // 2]  # the median run (lower of two)
    out = {"cold_s": cold, "uncached_s": uncached, "warm_s": warm, "peak_mib": peak,
           "work_mib": peak - before, "result_kib": len(blob) / 1024}
    if len(runs) > 1:
        out["uncached_runs_s"] = [r[0] for r in runs]
    if len(parts) > 1:
        out["parts_uncached_s"] = parts
    return out


def worker_discovery(db: str) -> dict:
    """``python -m cxmetrics themes discover`` on the bench store, timed as a user runs it (a fresh
    process: imports, the read-only fit, the write); the run it keeps is what the pages then read."""
    with store.connect(db) as con:
        verbatims = int(con.execute("SELECT count(*) FROM survey_responses WHERE verbatim IS NOT NULL "
                                    "AND length(trim(verbatim)) > 0").fetchone()[0])
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "cxmetrics", "themes", "discover", "--db", db, "--json"],
                       capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - t0
    if r.returncode != 0:
        return {"error": (r.stderr.strip().splitlines() or ["failed"])[-1][:300], "verbatims": verbatims}
    text = r.stdout
    out = json.loads(text[text.index("{"):text.rindex("}") + 1])  # the JSON, whatever else was printed
    return {"seconds": seconds, "verbatims": verbatims, "run_id": out.get("run_id"), "themes": out.get("themes"),
            "tags": out.get("tags"), "sample": out.get("sample"),
            "steps_s": {k: round(v, 2) for k, v in out.items() if k.endswith("_s")}}


WORKERS = {"page": worker_page, "discovery": worker_discovery, "baseline": bench_compare.worker_baseline, "polars": bench_compare.worker_polars,
           "floor": bench_compare.worker_floor}


def _spawn(*args: str, timeout: float = 3600) -> dict:
    try:
        r = subprocess.run([sys.executable, "-m", WORKER_MODULE, *args], capture_output=True, text=True,
                           cwd=ROOT, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if r.returncode != 0:
        return {"error": (r.stderr.strip().splitlines() or ["failed"])[-1][:300]}
    # the result is the last JSON line: DuckDB's progress bar (a long query) writes to the same
    # stdout, straight to the file descriptor, so its lines can come before or after it
    for line in reversed(r.stdout.splitlines()):
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                return json.loads(line)
    return {"error": f"no result in the worker's output: {r.stdout.strip()[-200:]!r}"}


# ----------------------------------------------------------------------------- the command


def _machine() -> dict:
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "load_avg_1m": round(os.getloadavg()[0], 1)}


def _bytecode() -> dict:
    """Compile the app's modules to bytecode first, as an installed package has them. Python reads
    a module's cached bytecode only while it is newer than the source; with
    ``PYTHONDONTWRITEBYTECODE`` set (as in this container) it never writes it back, so every fresh
    process of the run (each page's, the CLI's, the app's) would compile again each module changed
    since, and time that with the start-up."""
    import compileall

    root = bench_load.ROOT
    t0 = time.perf_counter()
    ok = all([compileall.compile_dir(str(root / "cxmetrics"), quiet=1), compileall.compile_dir(str(root / "pages"), quiet=1),
              compileall.compile_file(str(root / "app.py"), quiet=1)])
    return {"ok": bool(ok), "seconds": round(time.perf_counter() - t0, 2)}


def run(args: argparse.Namespace, log=print) -> dict:
    out_dir = Path(args.dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n = sizes(args)
    name = f"bench_{n['customers']}_{n['responses']}_{n['complaints']}_{n['transactions']}.duckdb"
    res: dict = {"machine": _machine(), "scale": {k: n[k] for k in ("customers", "responses", "complaints",
                                                                       "transactions")},
                 "scale_factor": args.scale, "budgets": budgets(args.scale), "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                 "pages": {}, "views": {}, "skipped": {}}
    res["disk_free_gib_before"] = round(shutil.disk_usage(out_dir).free / 2**30, 1)
    res["bytecode"] = _bytecode()
    res["dataset"] = bench_data.dataset(out_dir / name, n["customers"], n["responses"], n["complaints"],
                                        n["transactions"], log, args.demo_max_customers)
    db = out_dir / name
    log("floor: one DuckDB aggregation over the survey table …")
    res["floor"] = _spawn("floor", str(db))
    parquet = None
    if not args.skip_baseline:
        log("Parquet copies for Polars …")
        t0 = time.perf_counter()
        parquet = json.dumps(bench_data.parquet_copies(db, out_dir))
        res["parquet_s"] = round(time.perf_counter() - t0, 1)
    else:
        res["skipped"]["baseline"] = "--skip-baseline"
    if args.skip_discovery:
        res["skipped"]["discovery"] = "--skip-discovery"
    else:  # first: the pages then read the run it keeps (a store built by an older version gets its lean tables)
        log("theme discovery on the bench store's verbatims (`themes discover`) …")
        res["discovery"] = _spawn("discovery", str(db))
    all_views = views(db)
    chosen = [v for v in VIEW_NAMES if v == "unfiltered" or not args.views or v in args.views]
    for v in VIEW_NAMES:
        if v not in chosen:
            res["skipped"][f"view {v}"] = "--views"
        elif v not in all_views:  # data too short for the named range (no whole calendar quarter)
            res["skipped"][f"view {v}"] = "the data hold no such range"
    chosen = [v for v in chosen if v in all_views]
    for v in chosen:
        spec_json = all_views[v]
        if v != "unfiltered":
            res["views"][v] = {"label": spec_json["label"], "filters": spec_json["filters"], "pages": {}}
        for spec in roles.PAGES:
            if "departments" in spec_json["filters"] and "department" not in spec.roles:
                continue  # pages a department role cannot open
            log(f"{v}: {spec.title} …")
            row = _spawn("page", str(db), spec.path, json.dumps(spec_json["filters"]), str(args.page_repeats))
            if v == "unfiltered":
                if spec.path in bench_compare.BASELINE_PAGES and parquet:
                    row["baseline"] = _spawn("baseline", str(db), spec.path)
                    row["polars"] = _spawn("polars", parquet, spec.path)
                res["pages"][spec.title] = row
            else:
                res["views"][v]["pages"][spec.title] = row
            _save_partial(args, res)
    res["startup"] = bench_load.startup()
    small = out_dir / "bench_demo.duckdb"
    if not (args.skip_startup and args.skip_load):
        if not small.exists():
            log(f"demo store for start-up and load ({args.demo_customers:,} customers) …")
            from cxmetrics.registers import demo

            demo.build(str(small), customers=args.demo_customers, seed=7)
        res["demo_customers"] = args.demo_customers
    if args.skip_startup:
        res["skipped"]["startup"] = "--skip-startup"
    else:
        log("CLI start-up …")
        res["cli"] = bench_load.startup_cli(small, args.startup_repeats)
        log("app cold start …")
        res["app_cold_start"] = bench_load.app_cold_start(db)
    if args.skip_load:
        res["skipped"]["load"] = "--skip-load"
    else:
        log("server CPU per page rerun (AppTest) …")
        res["rerun"] = bench_load.rerun_cpu(small, reruns=2)
        res["load"] = bench_load.load(small, tuple(args.sessions), args.load_pages, log=log)
    if args.skip_import:
        res["skipped"]["import"] = "--skip-import"
    else:
        log(f"import of a {n['import_rows']:,}-row CSV, unchanged re-import, append of {args.append_rows:,} rows …")
        res["import"] = bench_load.bench_import(db, out_dir, n["import_rows"], args.append_rows, log)
    res["disk_free_gib_after"] = round(shutil.disk_usage(out_dir).free / 2**30, 1)
    res["load_avg_1m_end"] = round(os.getloadavg()[0], 1)
    res["checks"] = checks(res)
    _partial(args).unlink(missing_ok=True)
    return res


def _partial(args: argparse.Namespace) -> Path:
    """Where a long run keeps what it has measured so far (``OUT.partial``): an interrupted ten-times
    run still leaves its figures, which ``--readme-from`` can render (what did not run shows so)."""
    return Path(args.out).with_name(Path(args.out).name + ".partial")


def _save_partial(args: argparse.Namespace, res: dict) -> None:
    _partial(args).write_text(json.dumps({**res, "partial": True}, default=str))


@contextlib.contextmanager
def _stdout_to_stderr():
    """File descriptor 1 pointed at stderr for the duration, so stdout carries only the report."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def cmd_bench(args: argparse.Namespace) -> int:
    if args.readme_from:
        res = json.loads(Path(args.readme_from).read_text())
        res["checks"] = checks(res)  # against this version's budgets (older JSON included)
        write_readme(res)
        print(f"README figures rewritten from {args.readme_from}")
        return 0
    with _stdout_to_stderr():  # DuckDB's progress bars (long builds) write to the process's stdout
        res = run(args, log=lambda m: print(m, file=sys.stderr, flush=True))
    return bench_report.publish(res, Path(args.out), table)


def register_cli(sub, parents) -> None:
    p = sub.add_parser("bench", help="measure every performance budget: pages under every filter, imports, "
                                     "start-up, load, beside pandas, Polars and a DuckDB floor")
    p.add_argument("--scale", type=float, default=1.0,
                   help="multiply the default sizes (1M customers, 10M responses, 2M complaints, 20M transactions, "
                        "a 10M-row import); 10 is issue 21's ten-times run")
    for name in ("customers", "responses", "complaints", "transactions"):
        p.add_argument(f"--{name}", type=int, default=None, help=f"override the {name} count")
    p.add_argument("--import-rows", type=int, default=None, help="rows of the CSV import test (default 10M × scale)")
    p.add_argument("--append-rows", type=int, default=100_000, help="rows appended to the imported store")
    p.add_argument("--views", nargs="*", choices=VIEW_NAMES[1:], help="only these filtered views (default: all)")
    p.add_argument("--sessions", type=int, nargs="+", default=[1, 5, 20], help="concurrent browser sessions")
    p.add_argument("--load-pages", type=int, default=3, help="pages each browser session opens")
    p.add_argument("--demo-customers", type=int, default=10_000, help="the demo store for start-up and load")
    p.add_argument("--demo-max-customers", type=int, default=bench_data.DEMO_CUSTOMERS_MAX,
                   help="customers generated as the demo company; more are copied in SQL (default 1M)")
    p.add_argument("--startup-repeats", type=int, default=3, help="runs of each CLI start-up command (median)")
    p.add_argument("--page-repeats", type=int, default=3,
                   help="uncached runs of each page under each view, in its process (median)")
    p.add_argument("--dir", default=str(ROOT / "data" / "bench"), help="where the dataset is kept (reused)")
    p.add_argument("--out", default=str(ROOT / "data" / "bench" / "bench.json"), help="JSON results")
    for flag in ("baseline", "import", "startup", "load", "discovery"):
        p.add_argument(f"--skip-{flag}", action="store_true")
    p.add_argument("--readme-from", metavar="JSON", help="only rewrite the README's figures from a run's JSON")
    p.set_defaults(func=cmd_bench)
    bench_spark.register_cli(sub, parents)  # --engine spark and its options


def _worker_main(argv: list[str]) -> None:
    kind, *rest = argv
    print("\n" + json.dumps(WORKERS[kind](*rest)), flush=True)  # on a line of its own


if __name__ == "__main__":
    _worker_main(sys.argv[1:])
