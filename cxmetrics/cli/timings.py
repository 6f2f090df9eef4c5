"""Start-up and import timings for the bench (issue 21, items 2 and 3), each in fresh processes.

* :func:`command_seconds` — ``python -m cxmetrics <args>`` from process start to exit (``--help``,
  ``status``: budget 0.5 s).
* :func:`metric_overhead` — a metric command's fixed overhead: from process start until the
  command's function is called (interpreter, imports, parser; budget 1 s). Libraries a metric
  needs (pandas, SciPy) load after that, on first use (:mod:`cxmetrics.core.lazy`), and count in
  the metric's own time, reported beside it.
* :func:`app_first_run` — app cold start: a new process runs ``app.py`` once with Streamlit's
  AppTest (imports, the store opened, the first page computed and drawn into Streamlit's element
  tree); the nearest honest proxy for "the server has served its first page" that needs no
  browser. Budget 2 s.
* :func:`import_file` — ``python -m cxmetrics import`` of a file under ``/usr/bin/time``-like
  accounting: wall seconds and the peak resident memory of the process (``ru_maxrss`` of the
  child).

Each returns the median of ``runs`` runs and every run's figure. Nothing here asserts a budget.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_OVERHEAD_PROBE = """
import sys, time
from cxmetrics import cli
parser = cli.build_parser()
args = parser.parse_args(sys.argv[1:])
entered = time.time()
out = args.func(args)
print("@@", entered, time.time(), file=sys.stderr)
"""

_APP_PROBE = """
import sys, time
from streamlit.testing.v1 import AppTest
at = AppTest.from_file("app.py", default_timeout=120).run()
errors = [e.value for e in at.exception] + [e.value for e in at.error]
print("@@", time.time(), len(errors), file=sys.stderr)
"""


def _median(values: list[float]) -> dict:
    return {"median_s": round(statistics.median(values), 3), "runs_s": [round(v, 3) for v in values]}


def command_seconds(args: list[str], runs: int = 5, env: dict | None = None) -> dict:
    """Wall seconds of ``python -m cxmetrics *args`` (median of ``runs``)."""
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "cxmetrics", *args], cwd=ROOT, capture_output=True,
                       env={**os.environ, **(env or {})}, check=False)
        out.append(time.perf_counter() - t0)
    return _median(out)


def metric_overhead(args: list[str], runs: int = 5) -> dict:
    """Seconds from process start until the command function of ``args`` (e.g. ``["metrics",
    "nps", "--db", DB]``) is entered, and until it returned (median of ``runs``)."""
    overhead, total = [], []
    for _ in range(runs):
        t0 = time.time()
        r = subprocess.run([sys.executable, "-c", _OVERHEAD_PROBE, *args], cwd=ROOT, capture_output=True,
                           text=True, check=False)
        mark = [ln for ln in r.stderr.splitlines() if ln.startswith("@@")]
        if not mark:
            return {"error": (r.stderr.strip().splitlines() or ["failed"])[-1]}
        entered, done = (float(x) for x in mark[-1].split()[1:3])
        overhead.append(entered - t0)
        total.append(done - t0)
    return {"overhead": _median(overhead), "total": _median(total)}


def app_first_run(db: str | os.PathLike, runs: int = 5) -> dict:
    """Seconds from process start until ``app.py``'s first run has finished (AppTest)."""
    out = []
    for _ in range(runs):
        t0 = time.time()
        r = subprocess.run([sys.executable, "-c", _APP_PROBE], cwd=ROOT, capture_output=True, text=True,
                           env={**os.environ, "CX_DB": str(db)}, check=False)
        mark = [ln for ln in r.stderr.splitlines() if ln.startswith("@@")]
        if not mark:
            return {"error": (r.stderr.strip().splitlines() or ["failed"])[-1]}
        done, errors = mark[-1].split()[1:3]
        if int(errors):
            return {"error": f"app.py's first run showed {errors} error(s)"}
        out.append(float(done) - t0)
    return _median(out)


def import_file(table: str, path: str | os.PathLike, db: str | os.PathLike) -> dict:
    """``python -m cxmetrics import TABLE PATH --db DB --json``: wall seconds, the child's peak
    resident memory (MiB) and the import report's own split (validating, summaries)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "cxmetrics", "import", table, str(path), "--db", str(db), "--json"],
                       cwd=ROOT, capture_output=True, text=True, check=False)
    secs = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out = {"seconds": round(secs, 2), "exit": r.returncode,
           # ru_maxrss of children is the largest child so far: exact when this is the largest
           "peak_rss_mib": round(peak / 1024, 1) if peak > before else None}
    try:
        rep = json.loads(r.stdout)
        out.update({k: rep.get(k) for k in ("status", "rows", "seconds_validating", "seconds_summaries")})
    except json.JSONDecodeError:
        out["error"] = (r.stderr.strip().splitlines() or ["failed"])[-1]
    return out


def startup_report(db: str | os.PathLike, runs: int = 5) -> dict:
    """Every start-up figure of issue 21 item 3 for the store ``db`` (the one call the bench makes)."""
    return {"help": command_seconds(["--help"], runs),
            "status": command_seconds(["status", "--db", str(db)], runs),
            "metric_nps": metric_overhead(["metrics", "nps", "--db", str(db)], runs),
            "app_first_run": app_first_run(db, runs)}


if __name__ == "__main__":  # python -m cxmetrics.cli.timings DB [RUNS]
    print(json.dumps(startup_report(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 5), indent=2))
