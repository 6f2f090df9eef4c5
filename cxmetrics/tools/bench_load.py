"""The bench's whole-process measurements: imports through the CLI, start-up, the app's cold start,
the server's CPU per page rerun and the time to a rendered page under concurrent browser sessions.

Every figure here is a real process started the way a user starts it (``python -m cxmetrics …``,
``streamlit run app.py``, chromium through Playwright), timed from outside. Peak memory of a CLI
process is GNU time's maximum resident set size (``/usr/bin/time -f %M``): time is a small C
program, so the figure is the Python process's own peak, not inherited from the bench.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from cxmetrics import store
from cxmetrics.registers.import_types import Limits

ROOT = Path(__file__).resolve().parents[2]
GNU_TIME = "/usr/bin/time"
CHROMIUM = os.environ.get("CX_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage"]


def timed_cli(*args: str, timeout: float = 3600, env: dict | None = None) -> dict:
    """``python -m cxmetrics ARGS`` in a subprocess (``env``: variables added to this process's):
    wall seconds, peak RSS (MiB), exit code, and the JSON it printed when it printed some."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        cmd = [sys.executable, "-m", "cxmetrics", *args]
        if os.path.exists(GNU_TIME):
            cmd = [GNU_TIME, "-f", "%e %M", "-o", tf.name, *cmd]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=timeout,
                           env={**os.environ, **env} if env else None)
        wall = time.perf_counter() - t0
        out = {"seconds": wall, "exit": r.returncode}
        parts = tf.read().split()
        if len(parts) >= 2:
            out["peak_mib"] = int(parts[-1]) / 1024
    if r.returncode != 0:
        out["error"] = (r.stderr.strip().splitlines() or [f"exit {r.returncode}"])[-1][:300]
    elif "{" in r.stdout:
        try:  # DuckDB's progress bars (a long import) can come before the JSON on stdout
            out["json"] = json.loads(r.stdout[r.stdout.index("{"):])
        except ValueError:
            pass
    return out


# ----------------------------------------------------------------------------- imports


def _csv(con, path: Path, prefix: str, rows: int, offset: int = 0) -> None:
    """A survey CSV of ``rows`` responses (new ids ``prefix`` + n) from the bench store's responses."""
    if path.exists():
        return
    con.execute(
        "COPY (SELECT $prefix || (i - 1) AS response_id, s.customer_id, s.responded_on, s.survey, s.touchpoint, "
        "s.department, s.nps, s.csat, s.ces, s.share_of_wallet_pct, s.verbatim "
        "FROM (SELECT *, row_number() OVER () AS i FROM survey_responses) s WHERE i > $offset AND i <= $offset + $n) "
        "TO $path (HEADER, DELIMITER ',')", {"prefix": prefix, "n": rows, "offset": offset, "path": str(path)})


def _csv_next(con, path: Path, prefix: str, rows: int) -> None:
    """A survey CSV of the answers the weeks after the bench store's last day would bring: its latest
    ``rows`` answers (new ids ``prefix`` + n) moved on by the days they span, the same customers,
    surveys, touchpoints and scores (a weekly export's shape; :func:`_csv`'s oldest answers, dated as
    they were, are a backfill). Never past today (the importer refuses future dates): data that end
    less than that span ago are moved on by the days to today only."""
    if path.exists():
        return
    con.execute(
        "COPY (WITH latest AS (SELECT * FROM survey_responses ORDER BY responded_on DESC, hash(response_id) LIMIT $n), "
        "span AS (SELECT CAST(greatest(least(max(responded_on) - min(responded_on) + 1, current_date - max(responded_on)), "
        "0) AS INTEGER) AS days FROM latest) "
        "SELECT $prefix || row_number() OVER (ORDER BY s.responded_on, s.response_id) AS response_id, s.customer_id, "
        "s.responded_on + span.days AS responded_on, s.survey, s.touchpoint, s.department, s.nps, s.csat, s.ces, "
        "s.share_of_wallet_pct, s.verbatim FROM latest s, span) TO $path (HEADER, DELIMITER ',')",
        {"prefix": prefix, "n": rows, "path": str(path)})


def bench_import(db: Path, out_dir: Path, rows: int, append_rows: int = 100_000, log=print) -> dict:
    """Imports through the CLI into a store holding the bench store's customers: ``rows`` new
    responses, the same file again (unchanged), then ``append_rows`` more (copies of the store's
    oldest answers); then those rows appended to a copy of the whole bench store, and the answers of
    the weeks after its last day (:func:`_csv_next`) appended to another copy."""
    csv_path = out_dir / f"responses_{rows}.csv"
    append_path = out_dir / f"responses_append_{append_rows}.csv"
    next_path = out_dir / f"responses_next_{append_rows}.csv"
    target = out_dir / "import_target.duckdb"
    with store.connect(str(db)) as con:
        _csv(con, csv_path, "I", rows)
        _csv(con, append_path, "A", append_rows)
        _csv_next(con, next_path, "N", append_rows)
    target.unlink(missing_ok=True)
    Path(str(target) + ".wal").unlink(missing_ok=True)
    with store.connect(str(target), read_only=False) as con:
        con.execute("ATTACH $p AS src (READ_ONLY)", {"p": str(db)})
        con.execute("INSERT INTO customers SELECT * FROM src.customers")
        con.execute("DETACH src")
    out: dict = {"rows": rows, "csv_mib": round(csv_path.stat().st_size / 2**20, 1), "append_rows": append_rows}
    # the importer refuses files over CX_MAX_IMPORT_ROWS and CX_MAX_IMPORT_MB (50M rows, 4 GiB by
    # default); the ten-times run's own 100M-row file is the one it is meant to time: raised for it
    size_mb = csv_path.stat().st_size // 2**20 + 1
    env = ({"CX_MAX_IMPORT_ROWS": str(max(rows + append_rows, Limits().max_rows)),
            "CX_MAX_IMPORT_MB": str(max(size_mb, Limits().max_bytes // 2**20))}
           if rows + append_rows > Limits().max_rows or size_mb > Limits().max_bytes // 2**20 else None)
    for step, path in (("first", csv_path), ("unchanged", csv_path), ("append", append_path)):
        log(f"import ({step}) of {path.name} …")
        r = timed_cli("import", "survey_responses", str(path), "--db", str(target), "--json", "--actor", "bench",
                      env=env)
        rep = r.pop("json", None) or {}
        r.update({k: rep.get(k) for k in ("rows", "inserted", "updated", "status", "warnings",
                                          "seconds_validating", "seconds_summaries") if k in rep})
        if r.get("exit") == 0 and step != "unchanged":  # the refresh's slowest relations and fits
            r["refresh_steps"] = refresh_steps(target)
        out[step] = r
    target.unlink(missing_ok=True)
    out["append_full"] = _append_to_copy(db, out_dir, append_path, env, log)
    out["append_next_full"] = _append_to_copy(db, out_dir, next_path, env, log)
    return out


def _append_to_copy(db: Path, out_dir: Path, append_path: Path, env: dict | None, log=print) -> dict:
    """The same appended rows imported into a copy of the whole bench store (customers, responses,
    complaints, churn, transactions, KPIs, its summaries current): a user's weekly survey export
    into a store that has everything, where more summaries and fits read the responses than in the
    customers-and-responses store of :func:`bench_import`."""
    copy = out_dir / "append_full.duckdb"
    log(f"import (append to a copy of the whole store) of {append_path.name} …")
    try:
        shutil.copyfile(db, copy)
        r = timed_cli("import", "survey_responses", str(append_path), "--db", str(copy), "--json", "--actor", "bench",
                      env=env)
        rep = r.pop("json", None) or {}
        r.update({k: rep.get(k) for k in ("rows", "inserted", "updated", "status", "warnings", "seconds_summaries")
                  if k in rep})
        if r.get("exit") == 0:
            r["refresh_steps"] = refresh_steps(copy)
        return r
    except OSError as exc:  # e.g. no room for the copy
        return {"error": f"could not copy the store: {exc}"}
    finally:
        for f in (copy, Path(str(copy) + ".wal"), copy.with_name(f".{copy.name}.verified")):
            f.unlink(missing_ok=True)


def refresh_steps(db: Path, top: int = 8) -> dict[str, float]:
    """The ``top`` slowest relations and fits of the store's last summary refresh, in seconds
    (:func:`cxmetrics.store.summaries.last_refresh`), slowest first."""
    from cxmetrics.store import summaries

    with store.connect(str(db)) as con:
        seconds = summaries.last_refresh(con).get("seconds", {})
    return dict(sorted(seconds.items(), key=lambda kv: -kv[1])[:top])


# ----------------------------------------------------------------------------- start-up


def startup_cli(db: Path, repeats: int = 3) -> dict:
    """Median wall time of ``--help``, ``status`` and a metric command (``metrics nps --by segment``)
    on a small store: the metric command's time there is its fixed overhead (imports, opening the
    store), the computation being a few milliseconds."""
    out = {}
    for name, args in (("help", ("--help",)), ("status", ("status", "--db", str(db))),
                       ("metric", ("metrics", "nps", "--by", "segment", "--db", str(db)))):
        runs = [timed_cli(*args, timeout=300) for _ in range(repeats)]
        bad = [r for r in runs if "error" in r]
        out[name] = {"error": bad[0]["error"]} if bad else {
            "seconds": statistics.median(r["seconds"] for r in runs), "runs": [round(r["seconds"], 3) for r in runs],
            "peak_mib": max(r.get("peak_mib", 0) for r in runs)}
    return out


STARTUP_PROBE = "import sys, time; t = time.perf_counter(); import cxmetrics.ui, cxmetrics.roles; " \
    "print(time.perf_counter() - t, 'statsmodels' in sys.modules)"


def startup() -> dict:
    """What app.py imports before any page runs (a fresh interpreter): statsmodels must not be among them."""
    r = subprocess.run([sys.executable, "-c", STARTUP_PROBE], capture_output=True, text=True, cwd=ROOT, timeout=120)
    secs, loaded = r.stdout.split()
    return {"import_s": float(secs), "statsmodels_imported": loaded == "True"}


# ----------------------------------------------------------------------------- the running app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``streamlit run app.py`` on a free port against ``db``; stopped by its own process group."""

    def __init__(self, db: Path):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "CX_DB": str(db), "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(self.port),
             "--server.address", "127.0.0.1", "--server.headless", "true", "--server.fileWatcherType", "none"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def wait_healthy(self, timeout: float = 90) -> float | None:
        """Seconds from start until ``/_stcore/health`` answers 200 (None: it never did)."""
        while time.perf_counter() - self.started < timeout and self.proc.poll() is None:
            try:
                with urllib.request.urlopen(self.url + "/_stcore/health", timeout=1) as r:
                    if r.status == 200:
                        return time.perf_counter() - self.started
            except OSError:
                time.sleep(0.05)
        return None

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the server process has used so far (Linux /proc)."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def browser_available() -> str | None:
    """None when Playwright and chromium are there, else why not."""
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "playwright is not installed"
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        return f"{CHROMIUM} is missing"
    return None


async def _rendered(page, url: str, timeout_s: float, marks: list | None = None) -> float:
    """Open ``url`` and return the seconds until the page is rendered: the headline is shown and
    the app's script has finished (``data-test-script-state`` not running, seen twice 100 ms apart;
    the figure is the time of the first of those two looks). The seconds to the headline alone
    are appended to ``marks`` when given."""
    t0 = time.perf_counter()
    await page.goto(url, timeout=timeout_s * 1000)
    await page.wait_for_selector("h1", timeout=timeout_s * 1000)
    if marks is not None:
        marks.append(time.perf_counter() - t0)
    await page.wait_for_selector('[data-testid="stApp"][data-test-connection-state="CONNECTED"]',
                                 timeout=timeout_s * 1000)
    first_idle = None
    while time.perf_counter() - t0 < timeout_s:
        state = await page.get_attribute('[data-testid="stApp"]', "data-test-script-state")
        if state == "notRunning":
            if first_idle is not None:
                return first_idle - t0
            first_idle = time.perf_counter()
        else:
            first_idle = None
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{url} still running after {timeout_s} s")


async def _sessions(url: str, paths: list[str], sessions: int, timeout_s: float) -> dict:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        exe = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
        browser = await pw.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_FLAGS)
        try:
            headlines: list[float] = []

            async def one(i: int) -> list[float]:
                ctx = await browser.new_context(viewport={"width": 1400, "height": 1000})
                page = await ctx.new_page()
                times = []
                try:
                    for k in range(len(paths)):  # each session starts at a different page
                        times.append(await _rendered(page, url + paths[(i + k) % len(paths)], timeout_s, headlines))
                finally:
                    await ctx.close()
                return times

            t0 = time.perf_counter()
            results = await asyncio.gather(*(one(i) for i in range(sessions)), return_exceptions=True)
            wall = time.perf_counter() - t0
        finally:
            await browser.close()
    times = sorted(t for r in results if isinstance(r, list) for t in r)
    errors = [repr(r)[:200] for r in results if isinstance(r, BaseException)]
    out = {"sessions": sessions, "pages_per_session": len(paths), "rendered": len(times), "wall_s": wall,
           "errors": errors}
    if times:
        out["p50_s"] = statistics.median(times)
        out["p95_s"] = _p95(times)
        out["max_s"] = times[-1]
    if headlines:
        out["headline_p50_s"] = statistics.median(headlines)
    return out


def _p95(sorted_times: list[float]) -> float:
    """The 95th percentile, nearest rank."""
    return sorted_times[min(len(sorted_times) - 1, max(0, -(-95 * len(sorted_times) // 100) - 1))]


def url_paths(n: int) -> list[str]:
    """The URLs of the first ``n`` pages an analyst sees (Streamlit's: file name without its number)."""
    import re

    from cxmetrics.core import roles

    specs = roles.pages_for("analyst")
    return ["/" if i == 0 else "/" + re.sub(r"^\d+_", "", Path(s.path).stem) for i, s in enumerate(specs)][:n]


def load(db: Path, session_counts: tuple[int, ...], pages: int, timeout_s: float = 600, log=print) -> dict:
    """p50/p95 time to a rendered page with 1, 5, 20 … concurrent browser sessions against one
    server on ``db`` (each session opens ``pages`` pages in turn), and the server's CPU seconds
    per page rendered. Every level starts after a warm-up visit, so results are cached (the warm
    state a busy app is in); the per-session cost is what is left."""
    why = browser_available()
    if why:
        return {"error": why}
    server = Server(db)
    try:
        if server.wait_healthy() is None:
            return {"error": "streamlit did not answer"}
        paths = url_paths(pages)
        log("load: warm-up visit of every page …")
        asyncio.run(_sessions(server.url, paths, 1, timeout_s))
        out = {"pages": paths, "levels": {}}
        for n in session_counts:
            log(f"load: {n} concurrent session(s) × {len(paths)} page(s) …")
            cpu0 = server.cpu_s()
            row = asyncio.run(_sessions(server.url, paths, n, timeout_s))
            row["server_cpu_s"] = server.cpu_s() - cpu0
            if row["rendered"]:
                row["server_cpu_per_page_s"] = row["server_cpu_s"] / row["rendered"]
            out["levels"][str(n)] = row
        return out
    finally:
        server.stop()


def app_cold_start(db: Path, timeout_s: float = 120) -> dict:
    """From ``streamlit run app.py`` to (1) its HTTP health endpoint answering and (2) the first
    page rendered in a headless chromium started beforehand (the browser's own start is not
    counted): the app's first script run, caches empty, included."""
    why = browser_available()
    if why:
        server = Server(db)
        try:
            return {"health_s": server.wait_healthy(), "note": f"first page not timed: {why}"}
        finally:
            server.stop()

    async def go() -> dict:
        from playwright.async_api import async_playwright

        async with async_playwright() as pw:
            exe = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
            browser = await pw.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_FLAGS)
            page = await (await browser.new_context()).new_page()
            server = Server(db)
            try:
                health = await asyncio.to_thread(server.wait_healthy)
                if health is None:
                    return {"error": "streamlit did not answer"}
                first = await _rendered(page, server.url + "/", timeout_s)
                return {"health_s": health, "seconds": time.perf_counter() - server.started,
                        "first_page_s": first}
            finally:
                server.stop()
                await browser.close()

    try:
        return asyncio.run(go())
    except Exception as exc:  # noqa: BLE001  (reported in the bench, not raised)
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}


def rerun_cpu(db: Path, reruns: int = 2, timeout: float = 1800) -> dict:
    """Server CPU seconds per page rerun (cold: caches empty; warm: every result cached), from
    ``scripts/rerun_bench.py`` (Streamlit's AppTest, the page script in one process as on the server)."""
    script = ROOT / "scripts" / "rerun_bench.py"
    if not script.exists():
        return {"error": "scripts/rerun_bench.py is missing"}
    r = subprocess.run([sys.executable, str(script), "--db", str(db), "--reruns", str(reruns), "--json"],
                       capture_output=True, text=True, cwd=ROOT, timeout=timeout)
    if r.returncode != 0:
        return {"error": (r.stderr.strip().splitlines() or ["failed"])[-1][:300]}
    return json.loads(r.stdout)
