"""The command line run as a user runs it: a subprocess, its exit code, stdout and stderr."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    full_env.pop("CX_DB", None) if env is None or "CX_DB" not in env else None
    return subprocess.run([sys.executable, "-m", "cxmetrics", *args], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def test_help_lists_the_commands():
    r = cli("--help")
    assert r.returncode == 0
    for cmd in ("init", "demo", "import", "metrics", "status", "report", "docs"):
        assert cmd in r.stdout
    r = cli("metrics", "--help")
    for m in ("nps", "churn", "clv", "wallet", "complaints", "impact", "alignment", "pnl"):
        assert m in r.stdout


def test_bad_usage_exits_2():
    r = cli("import", "no_such_table", "x.csv")
    assert r.returncode == 2
    assert "invalid choice" in r.stderr


def test_missing_database_is_one_line_error(tmp_path):
    r = cli("status", "--db", str(tmp_path / "none.duckdb"))
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no database at")


def test_demo_then_bad_import_leaves_counts_unchanged(tmp_path):
    """The issue's done-when flow: demo, then a bad file names row and column and changes nothing."""
    db = str(tmp_path / "x.duckdb")
    r = cli("demo", "--customers", "300", "--seed", "5", "--db", db)
    assert r.returncode == 0, r.stderr
    assert "survey_responses" in r.stdout
    before = json.loads(cli("status", "--db", db, "--json").stdout)["tables"]
    bad = tmp_path / "bad.csv"
    bad.write_text("response_id,customer_id,responded_on,survey,nps\n"
                   "N1,C0000001,2024-01-01,relationship,9\n"
                   "N2,C0000002,2024-13-40,relationship,12\n")
    r = cli("import", "survey_responses", str(bad), "--db", db)
    assert r.returncode == 3
    assert len(r.stderr.strip().splitlines()) == 1
    assert "row 3" in r.stderr and "responded_on" in r.stderr
    assert "row 3, column nps: above the maximum 10" in r.stdout
    assert "nothing was imported" in r.stdout
    after = json.loads(cli("status", "--db", db, "--json").stdout)["tables"]
    assert after == before

    r = cli("import", "survey_responses", str(bad), "--db", db, "--json")
    doc = json.loads(r.stdout)
    assert doc["status"] == "rejected" and doc["total_problems"] == 2
    assert {(p["row"], p["column"]) for p in doc["problems"]} == {(3, "responded_on"), (3, "nps")}

    good = tmp_path / "good.csv"
    good.write_text("Id;Client;When;Kind;Score\nN1;C0000001;2024-01-01;relationship;9\n")
    r = cli("import", "survey_responses", str(good), "--db", db, "--map", "Id=response_id",
            "--map", "Client=customer_id", "--map", "When=responded_on", "--map", "Kind=survey",
            "--map", "Score=nps", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["inserted"] == 1

    r = cli("metrics", "nps", "--db", db, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    head = doc
    assert -100 <= head["estimate"] <= 100 and head["ci_low"] < head["estimate"] < head["ci_high"]
    assert head["n"] > 0 and doc["method"]


def test_cx_db_environment_variable(tmp_path):
    db = tmp_path / "env.duckdb"
    r = cli("init", env={"CX_DB": str(db)})
    assert r.returncode == 0, r.stderr
    assert db.exists() and str(db) in r.stdout


def test_department_role_without_department_sees_nothing(small_db):
    r = cli("metrics", "complaints", "--db", str(small_db), "--role", "department", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["headline"][0]["n"] == 0


@pytest.mark.parametrize("args", [["metrics", "nps", "--from", "2024-99-01"], ["metrics", "nps", "--min-n", "x"]])
def test_bad_arguments_exit_2(args, small_db):
    r = cli(*args, "--db", str(small_db))
    assert r.returncode == 2


def test_department_cli_call_contains_only_that_department(small_db):
    r = cli("metrics", "complaints", "--db", str(small_db), "--role", "department", "--department", "billing", "--json")
    assert r.returncode == 0, r.stderr
    text = r.stdout
    assert "billing" in text
    for other in ("logistics", "contact_centre", "digital"):
        assert f'"{other}"' not in text, other


def test_cli_json_prints_the_library_result_with_warnings_and_assumptions(small_copy):
    """The CLI adds a headline to the library's Result and drops nothing: its assumptions and its
    warnings are those the library returns (a store with no revenue, so CLV has a warning)."""
    from cxmetrics import store
    from cxmetrics.core.filters import Filters
    from cxmetrics.core.results import jsonable
    from cxmetrics.metrics import clv

    with store.connect(str(small_copy), read_only=False) as con, store.transaction(con):
        con.execute("DELETE FROM transactions")
        store.bump_version(con, ["transactions"])
    r = cli("metrics", "clv", "--db", str(small_copy), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    with store.connect(str(small_copy)) as con:
        lib = clv.clv_by_group(con, Filters())
    assert lib.warnings and doc["warnings"] == list(lib.warnings)
    assert doc["assumptions"] and doc["assumptions"] == jsonable(lib.assumptions)


def test_import_says_what_it_is_doing_on_stderr_when_asked(small_copy, tmp_path):
    """``--progress`` prints each step with the seconds so far (one line each: stderr is not a
    terminal here); by default, off a terminal, stderr stays empty for scripts."""
    head = "response_id,customer_id,responded_on,survey,nps\n"
    first, second = tmp_path / "p1.csv", tmp_path / "p2.csv"
    first.write_text(head + "P1,,2024-01-01,relationship,9\n")
    second.write_text(head + "P2,,2024-01-02,relationship,3\n")
    r = cli("import", "survey_responses", str(first), "--db", str(small_copy), "--progress")
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert [re.fullmatch(r"\[ *\d+\.\d s\] (.*) …", x).group(1) for x in lines[:4]] == [
        "hashing the file (SHA-256)", "reading the file", "checking 1 rows", "writing 1 rows"]
    assert any(x.endswith("] summary: answer spells …") for x in lines)
    assert "inserted" not in r.stderr and "into survey_responses" in r.stdout
    r = cli("import", "survey_responses", str(second), "--db", str(small_copy))
    assert (r.returncode, r.stderr) == (0, "")


def test_init_says_which_summaries_a_migration_rebuilds(small_copy):
    """A store whose summaries are not current (written by older code, say) is brought up to date
    by ``init``, which names each summary as it builds it with ``--progress``."""
    from cxmetrics import store
    from cxmetrics.store import summaries

    with store.connect(str(small_copy), read_only=False) as con:
        con.execute("DELETE FROM meta WHERE key = ?", [summaries._META_KEY])
    r = cli("init", "--db", str(small_copy), "--progress")
    assert r.returncode == 0, r.stderr
    assert "] summary: answer spells …" in r.stderr and "] fit: clusters …" in r.stderr
    assert "database ready" in r.stdout
    r = cli("init", "--db", str(small_copy), "--progress")  # now current: nothing to do, nothing said
    assert (r.returncode, r.stderr) == (0, "")
