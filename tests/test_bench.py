"""The benchmark command runs end to end at a tiny scale (its figures are read, never asserted),
and the layering rules that keep the app fast and thin hold."""

from __future__ import annotations

import ast
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

from cxmetrics.core import roles
from cxmetrics.store import relations
from cxmetrics.tools import bench

ROOT = Path(__file__).resolve().parent.parent


def test_bench_runs_and_reports_every_page_and_budget(tmp_path):
    out = tmp_path / "bench.json"
    r = subprocess.run([sys.executable, "-m", "cxmetrics", "bench", "--customers", "400", "--responses", "3000",
                        "--complaints", "500", "--transactions", "6000", "--import-rows", "2000",
                        "--append-rows", "300", "--views", "custom range", "--skip-load",
                        "--startup-repeats", "1", "--page-repeats", "2", "--demo-customers", "300",
                        "--dir", str(tmp_path), "--out", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert not (tmp_path / "bench.json.partial").exists()  # kept while running, gone once the run is whole
    titles = {p.title for p in roles.PAGES}
    assert set(res["pages"]) == titles
    assert all("error" not in row for row in res["pages"].values()), res["pages"]
    assert res["scale"]["responses"] == 3000
    # the views asked for ran on every page, with uncached, cached and peak memory
    assert set(res["views"]) == {"custom range"}
    custom = res["views"]["custom range"]
    assert set(custom["pages"]) == titles
    assert custom["filters"]["date_from"][-2:] != "01" and custom["filters"]["date_from"] < custom["filters"]["date_to"]
    for row in custom["pages"].values():
        assert {"uncached_s", "warm_s", "peak_mib"} <= set(row), row
        # two cache misses, the reported one the median's lower (of two: the faster)
        assert len(row["uncached_runs_s"]) == 2 and row["uncached_s"] == min(row["uncached_runs_s"]), row
    # imports through the CLI: first, unchanged, append; each with its peak memory
    imp = res["import"]
    assert imp["first"]["rows"] == 2000 and imp["append"]["rows"] == 300
    assert all(imp[k]["exit"] == 0 and imp[k]["peak_mib"] > 0 for k in ("first", "unchanged", "append"))
    # the importer's warnings are recorded (the unchanged re-import always has one: it says so)
    assert all(isinstance(imp[k]["warnings"], list) for k in ("first", "unchanged", "append"))
    assert any(w.startswith("unchanged:") for w in imp["unchanged"]["warnings"])
    # the append refresh's slowest relations and fits, read from the store, slowest first (which are
    # slowest on a store this small is the machine's noise: none is named here)
    steps = imp["append"]["refresh_steps"]
    assert 0 < len(steps) <= 8 and list(steps.values()) == sorted(steps.values(), reverse=True)
    assert all(k in relations.RELATIONS or k.startswith("fit ") for k in steps), steps
    full = imp["append_full"]  # the same rows appended to a copy of the whole bench store
    assert full["exit"] == 0 and full["inserted"] == 300 and full["seconds_summaries"] > 0, full
    assert full["refresh_steps"] and list(full["refresh_steps"].values()) == sorted(full["refresh_steps"].values(),
                                                                                     reverse=True)
    assert not list(tmp_path.glob("*append_full*"))  # the copy is removed
    # the answers of the weeks after the store's last day, appended to another copy (a weekly export)
    nxt = imp["append_next_full"]
    assert nxt["exit"] == 0 and nxt["inserted"] == 300 and nxt["seconds_summaries"] > 0, nxt
    with __import__("duckdb").connect() as duck:
        first_day, to_day = duck.execute("SELECT min(responded_on), max(responded_on) FROM read_csv($p)",
                                         {"p": str(tmp_path / "responses_next_300.csv")}).fetchone()
        with __import__("duckdb").connect(str(next(tmp_path.glob("bench_400_*.duckdb"))), read_only=True) as bench_con:
            last_day = bench_con.execute("SELECT max(responded_on) FROM survey_responses").fetchone()[0]
    # after the data's last day, or moved on to today when they span more than the days since it
    assert first_day > last_day or to_day == dt.date.today()
    assert res["floor"]["seconds"] > 0
    for title in ("NPS & drivers", "Complaints & closed loop", "Churn & retention"):
        assert res["pages"][title]["baseline"]["seconds"] > 0
        assert res["pages"][title]["polars"]["seconds"] > 0, res["pages"][title]["polars"]
    # the whole Customer voice page is timed (the browse and the themes), and theme discovery is an entry
    voice = res["pages"]["Customer voice"]
    assert set(voice["parts_uncached_s"]) == {"page_data", "themes_data"}, voice
    assert set(custom["pages"]["Customer voice"]["parts_uncached_s"]) == {"page_data", "themes_data"}
    disc = res["discovery"]
    assert "error" not in disc, disc
    assert disc["seconds"] > 0 and disc["verbatims"] > 0 and disc["tags"] > 0
    assert {"discover_s", "classify_s", "write_s"} <= set(disc["steps_s"])
    assert {"help", "status", "metric"} <= set(res["cli"]) and all("seconds" in v for v in res["cli"].values())
    # every budget is a check; the views and load not run say so instead of disappearing
    checks = {c["check"]: c for c in res["checks"]}
    for view in bench.VIEW_NAMES:
        for kind in ("uncached", "cached"):
            assert f"every page {kind}, {view}" in checks
    assert checks["every page uncached, region"]["met"] is None
    assert checks["every page uncached, custom range"]["met"] in (True, False)
    for name in ("app cold start (s)", "statsmodels imported at startup", "`--help` (s)", "`status` (s)",
                 "metric command's fixed overhead (s)", "unchanged re-import (s)", "import peak memory (MiB)",
                 "append of 300 rows: summary refresh (s)", "import of 2,000 rows (s)",
                 "append of 300 rows to the whole store: summary refresh (s)",
                 "append of the next 300 answers to the whole store: summary refresh (s)",
                 "peak memory of any page's process (MiB)", "theme discovery on 1M verbatims (s)"):
        assert name in checks and checks[name]["met"] in (True, False), name
    assert "budget" in r.stdout and "| custom range |" in r.stdout
    assert "slowest steps: " in checks["append of 300 rows: summary refresh (s)"]["detail"]
    section = bench.readme_section(res)
    assert "| Data |" in section and "Polars" in section
    assert "| theme discovery on 1M verbatims (s) (`themes discover` on the bench store's" in section
    assert "every page uncached, region (not run: --views) | not run | < 0.5 s | not run |" in section
    assert "Concurrent sessions: not run: --skip-load" in section
    readme = tmp_path / "README.md"
    readme.write_text("x\n<!-- BEGIN bench -->\nSTALE FIGURES\n<!-- END bench -->\ny\n")
    bench.write_readme(res, readme)
    assert "STALE FIGURES" not in readme.read_text() and "| Data |" in readme.read_text()
    with __import__("duckdb").connect(str(next(tmp_path.glob("bench_400_*.duckdb"))), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM survey_responses").fetchone()[0] == 3000
        assert con.execute("SELECT count(*) FROM complaints").fetchone()[0] == 500


def test_the_bench_times_every_data_function_a_page_calls_on_load():
    """Each page's unconditional ``x = ui.compute(views.<module>.<function>, …)`` calls are what
    :func:`cxmetrics.views.calls_for` lists, so a page's timing is the whole page (a call behind a
    widget, such as a drill-down, is not part of the load)."""
    import re

    from cxmetrics import views

    for spec in roles.PAGES:
        src = (ROOT / spec.path).read_text()
        called = re.findall(r"^\w+ = ui\.compute\(views\.(\w+)\.(\w+)", src, flags=re.M)
        assert called, spec.path
        listed = [(f.__module__.rsplit(".", 1)[-1], f.__name__) for f in views.calls_for(spec)]
        assert listed == called, spec.path


def test_readme_renders_load_figures_and_unmet_budgets():
    """Rendering only (made-up figures): the load table, a budget not met named with its detail."""
    res = {"machine": {"cpus": 2, "memory_gib": 23.5, "platform": "Linux", "python": "3.11"},
           "scale": {"customers": 10}, "scale_factor": 1.0,
           "pages": {"Data": {"cold_s": 0.1, "uncached_s": 0.7, "warm_s": 0.001, "peak_mib": 100, "work_mib": 1}},
           "views": {}, "floor": {"seconds": 0.1},
           "load": {"pages": ["/"], "levels": {"1": {"rendered": 3, "p50_s": 1.5, "p95_s": 2.5, "max_s": 2.5,
                                                   "headline_p50_s": 0.8, "server_cpu_per_page_s": 0.25, "errors": []}}},
           "rerun": {"Data": {"cold_s": 0.4, "warm_s": 0.07}}}
    res["checks"] = bench.checks(res)
    text = bench.readme_section(res)
    assert "| 1 | 3 | 1.50 | 2.50 | 2.50 | 0.80 | 0.250 | 0 |" in text
    assert "| Data | 0.4 | 0.07 |" in text
    assert "**Not met (" in text and "every page uncached, unfiltered: 0.7 against < 0.5 s" in text
    assert "| Data | 0.70 ✗ | not run |" in text
    assert "`--help` (s) (not run) | not run | < 0.5 | not run |" in text
    assert "partial run" not in text
    res["partial"] = True  # what an interrupted run leaves in OUT.partial
    assert bench.readme_section(res).startswith("**A partial run** (interrupted)")


def test_an_imports_warnings_reach_its_checks_detail():
    """Rendering only (made-up figures): a write done again under more memory shows in the import's
    and the append's detail, any other warning in the unchanged re-import's, but not the note every
    unchanged file gets ("unchanged: …")."""
    again = ("the write ran out of memory under the import's cap of 640.0 MiB (CX_IMPORT_MEMORY) after 440.0 s "
             "and was rolled back; it was done again under DuckDB's default memory limit (18.8 GiB)")
    res = {"machine": {"cpus": 2, "memory_gib": 23.5, "platform": "Linux", "python": "3.11"},
           "scale": {"customers": 10}, "scale_factor": 1.0, "pages": {}, "views": {}, "floor": {"seconds": 0.1},
           "import": {"rows": 100, "csv_mib": 1.0, "append_rows": 10,
                      "first": {"seconds": 12.0, "peak_mib": 900, "warnings": [again]},
                      "unchanged": {"seconds": 1.0, "status": "unchanged",
                                    "warnings": ["unchanged: every row is already stored", "ignored columns: x"]},
                      "append": {"seconds": 3.0, "seconds_summaries": 0.5, "warnings": []},
                      "append_full": {"seconds": 3.0, "seconds_summaries": 0.5, "warnings": [again]},
                      "append_next_full": {"seconds": 3.0, "seconds_summaries": 0.5}}}  # older JSON: none recorded
    checks = {c["check"]: c for c in bench.checks(res)}
    assert checks["import of 100 rows (s)"]["detail"].endswith("; the import warned: " + again)
    assert checks["append of 10 rows to the whole store: summary refresh (s)"]["detail"].endswith(again)
    assert checks["unchanged re-import (s)"]["detail"].endswith("summaries 0.00 s; the import warned: ignored columns: x")
    for name in ("append of 10 rows: summary refresh (s)",
                 "append of the next 10 answers to the whole store: summary refresh (s)"):
        assert "warned" not in (checks[name].get("detail") or ""), name


def test_scale_sizes_and_budgets():
    args = __import__("cxmetrics.tools", fromlist=["build_parser"]).build_parser(load=("bench",)).parse_args(["bench", "--scale", "10"])
    assert bench.sizes(args) == {"customers": 10_000_000, "responses": 100_000_000, "complaints": 20_000_000,
                                 "transactions": 200_000_000, "import_rows": 100_000_000}
    b10, b1 = bench.budgets(10), bench.budgets(1)
    assert (b10["page_filtered_s"], b10["app_memory_mib"], b10["import_s"]) == (1.0, 2048, 100.0)
    assert (b1["page_filtered_s"], b1["app_memory_mib"], b1["import_s"]) == (0.5, 1024, 10.0)


def test_dataset_copies_whole_customers_in_sql(tmp_path):
    """Beyond the demo company's size customers are copied with their rows: no orphan facts."""
    from cxmetrics import store
    from cxmetrics.tools import bench_data

    db = tmp_path / "scaled.duckdb"
    info = bench_data.dataset(db, 700, 5000, 400, 6000, log=lambda m: None, demo_max=300)
    assert info["demo_customers"] == 300
    with store.connect(str(db)) as con:
        counts = store.row_counts(con, ["customers", "survey_responses", "complaints", "transactions"])
        assert counts == {"customers": 700, "survey_responses": 5000, "complaints": 400, "transactions": 6000}
        for table in ("survey_responses", "complaints", "transactions", "churn_events", "followups"):
            orphans = con.execute(f"SELECT count(*) FROM {table} t ANTI JOIN customers c USING (customer_id)").fetchone()[0]
            assert orphans == 0, table
        copied = con.execute("SELECT count(DISTINCT customer_id) FROM survey_responses WHERE customer_id LIKE '%~c%'").fetchone()[0]
        assert copied > 0


def test_a_build_stopped_after_its_copies_is_finished_not_reused_as_complete(tmp_path, monkeypatch):
    """The bench's ten-times build was once killed while keeping its themes: a later run must not
    take the tables for a finished dataset (no theme run kept, no build record). A dataset reused by
    a version whose summaries are defined otherwise has them rebuilt before any page is timed (else
    every page would read the raw tables); one whose theme run was kept before the day cells gains them."""
    from cxmetrics import store
    from cxmetrics.metrics import theme_lean, theme_store
    from cxmetrics.store import summaries
    from cxmetrics.tools import bench_data

    db = tmp_path / "scaled.duckdb"
    bench_data.dataset(db, 400, 3000, 300, 3000, log=lambda m: None, demo_max=300)
    record = bench_data._record(db)
    assert record.exists()
    again = bench_data.dataset(db, 400, 3000, 300, 3000, log=lambda m: None, demo_max=300)
    assert again["reused"] and again["built"]["verbatims"] > 0 and "summaries_rebuilt_s" not in again
    monkeypatch.setattr(summaries, "FORMAT", summaries.FORMAT + 1000)  # another version's definitions
    with store.connect(str(db)) as con:
        assert summaries.missing(con)
    said: list[str] = []
    again = bench_data.dataset(db, 400, 3000, 300, 3000, log=said.append, demo_max=300)
    assert again["reused"] and again["summaries_rebuilt_s"] >= 0 and any("summaries rebuilt" in m for m in said)
    with store.connect(str(db)) as con:
        assert not summaries.missing(con) and theme_store.is_current(con, theme_store.latest(con))
        assert theme_lean.extras_present(con) and "theme_cells_s" not in again
    with store.connect(str(db), read_only=False) as con:  # a theme run kept before the day cells
        for t in theme_lean.EXTRAS:
            con.execute(f"DROP TABLE {t}")
    said = []
    cells = bench_data.dataset(db, 400, 3000, 300, 3000, log=said.append, demo_max=300)
    assert cells["reused"] and cells["theme_cells_s"] >= 0 and any("theme cells written" in m for m in said)
    with store.connect(str(db)) as con:
        assert theme_lean.extras_present(con) and theme_store.lean(con)
    assert "day and per-department cells added first" in bench.readme_section(
        {"machine": {"cpus": 2, "memory_gib": 1, "platform": "p", "python": "3"}, "scale": {}, "dataset": cells,
         "checks": [], "pages": {}, "views": {}, "skipped": {}})
    assert "its summaries rebuilt to this version's definitions first" in bench.readme_section(
        {"machine": {"cpus": 2, "memory_gib": 1, "platform": "p", "python": "3"}, "scale": {}, "dataset": again,
         "checks": [], "pages": {}, "views": {}, "skipped": {}})
    with store.connect(str(db), read_only=False) as con:  # as if killed before the themes were kept
        con.execute("DELETE FROM theme_runs")
    record.unlink()
    said = []
    out = bench_data.dataset(db, 400, 3000, 300, 3000, log=said.append, demo_max=300)
    assert out["finished"] and not out["reused"] and out["verbatims"] > 0
    assert any("finishing the build" in m for m in said) and record.exists()
    with store.connect(str(db)) as con:
        assert theme_store.is_current(con, theme_store.latest(con))
    assert "finished after an interrupted build" in bench.readme_section(
        {"machine": {"cpus": 2, "memory_gib": 1, "platform": "p", "python": "3"}, "scale": {}, "dataset": out,
         "checks": [], "pages": {}, "views": {}, "skipped": {}})


def test_statsmodels_is_not_imported_at_startup():
    assert bench.startup()["statsmodels_imported"] is False


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_only_ui_imports_streamlit_and_pages_stay_thin():
    for path in (ROOT / "cxmetrics").rglob("*.py"):
        if path.name != "ui.py":
            assert "streamlit" not in _imports(path), path
    for path in (ROOT / "pages").glob("*.py"):
        assert not _imports(path) & {"duckdb", "statsmodels", "scipy"}, path
        assert "con.execute(" not in path.read_text(), path


def test_readme_keeps_one_block_per_scale(tmp_path):
    """The default run and the ten-times run each rewrite their own README block."""
    from cxmetrics.tools import bench_report

    readme = tmp_path / "README.md"
    readme.write_text("a\n<!-- BEGIN bench -->\nold 1\n<!-- END bench -->\nb\n<!-- BEGIN bench scale 10 -->\nold 10\n"
                      "<!-- END bench scale 10 -->\nc\n")
    res = {"machine": {"cpus": 2, "memory_gib": 23.5, "platform": "Linux", "python": "3.11"},
           "scale": {"customers": 10}, "scale_factor": 10.0, "pages": {}, "views": {}}
    res["checks"] = bench.checks(res)
    bench_report.write_readme(res, readme)
    text = readme.read_text()
    assert "old 1" in text and "old 10" not in text and "Scale 10×" in text
    res["scale_factor"] = 1.0
    bench_report.write_readme(res, readme)
    assert "old 1" not in readme.read_text() and readme.read_text().count("Scale") == 2


def test_the_import_bench_raises_the_importers_limits_for_its_own_file(demo_db, tmp_path, monkeypatch):
    """The ten-times run imports a 100M-row, 8 GiB file, over the importer's default limits (50M
    rows, 4 GiB): the bench raises them for its own import; under them it leaves them alone."""
    import dataclasses

    from cxmetrics.tools import bench_load

    seen = []
    monkeypatch.setattr(bench_load, "timed_cli", lambda *a, env=None, **k: seen.append(env) or {"seconds": 0.0,
                                                                                                 "exit": 0})
    bench_load.bench_import(demo_db, tmp_path, 100, 10, log=lambda m: None)
    assert seen == [None] * 5  # first, unchanged, append, append to the whole store, the next answers to it
    small = dataclasses.replace(bench_load.Limits(), max_rows=50)
    monkeypatch.setattr(bench_load, "Limits", lambda: small)
    seen.clear()
    bench_load.bench_import(demo_db, tmp_path, 100, 10, log=lambda m: None)
    assert seen[0]["CX_MAX_IMPORT_ROWS"] == "110" and int(seen[0]["CX_MAX_IMPORT_MB"]) >= 4096
    assert len(seen) == 5 and seen[0] == seen[2] == seen[3] == seen[4]


def test_a_worker_result_is_read_past_duckdbs_progress_bar(monkeypatch):
    """A long query's progress bar shares the worker's stdout (carriage returns, lines after the
    result): the result is the last JSON line; output without one is an error row, never a crash
    of the whole run (a ten-times run died on it after 20 minutes)."""
    import types

    out = " 50% ▕██▏\r 100% ▕███▏\n\n{\"uncached_s\": 1.5}\n 100% ▕█▏ (00:00:01 elapsed)\n"
    monkeypatch.setattr(bench.subprocess, "run", lambda *a, **k: types.SimpleNamespace(returncode=0, stdout=out))
    assert bench._spawn("page") == {"uncached_s": 1.5}  # noqa: SLF001
    out = " 100% ▕███▏ (00:00:01 elapsed)\n"
    assert "no result" in bench._spawn("page")["error"]  # noqa: SLF001
