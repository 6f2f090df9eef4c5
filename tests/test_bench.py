"""The benchmark command runs end to end at a tiny scale (its figures are read, never asserted),
and the layering rules that keep the app fast and thin hold."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from cxmetrics.core import roles
from cxmetrics.tools import bench

ROOT = Path(__file__).resolve().parent.parent


def test_bench_runs_and_reports_every_page_and_budget(tmp_path):
    out = tmp_path / "bench.json"
    r = subprocess.run([sys.executable, "-m", "cxmetrics", "bench", "--customers", "400", "--responses", "3000",
                        "--complaints", "500", "--transactions", "6000", "--import-rows", "2000",
                        "--dir", str(tmp_path), "--out", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert set(res["pages"]) == {p.title for p in roles.PAGES}
    assert all("error" not in row for row in res["pages"].values()), res["pages"]
    assert res["scale"]["responses"] == 3000
    assert res["import"]["rows"] == 2000
    assert res["floor"]["seconds"] > 0
    for title in ("NPS & drivers", "Complaints & closed loop", "Churn & retention"):
        assert res["pages"][title]["baseline"]["seconds"] > 0
    names = {c["check"] for c in res["checks"]}
    assert "app cold start (s)" in names and "statsmodels imported at startup" in names
    assert "uncached" in r.stdout and "budget" in r.stdout
    section = bench.readme_section(res)
    assert "| Data |" in section and "Per page: cached" in section
    readme = tmp_path / "README.md"
    readme.write_text("x\n<!-- BEGIN bench -->\nSTALE FIGURES\n<!-- END bench -->\ny\n")
    bench.write_readme(res, readme)
    assert "STALE FIGURES" not in readme.read_text() and "| Data |" in readme.read_text()
    with __import__("duckdb").connect(str(next(tmp_path.glob("bench_*.duckdb"))), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM survey_responses").fetchone()[0] == 3000
        assert con.execute("SELECT count(*) FROM complaints").fetchone()[0] == 500


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
