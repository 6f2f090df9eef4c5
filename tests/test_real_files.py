"""Bring your own data (issue 17): files shaped like the real exports import with the README's exact
commands (no pre-processing), and every `metrics` command and the report run on the stores they make.

The fixtures and the documented commands live in :mod:`tests.fixtures_real`; the figures checked
here are computed from the rows the builders wrote. Anonymous responses and stub customers
(:mod:`cxmetrics.stubs`) are checked on these stores and on a copy of the small demo.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from cxmetrics import cli, store
from cxmetrics.core.filters import Filters
from cxmetrics.metrics import nps, scores
from cxmetrics.registers import importer
from cxmetrics.store import schema, stubs, summaries

from . import fixtures_real as fr
from .test_partial_stores import BAD_TEXT, METRICS, _page_text

ROOT = Path(__file__).resolve().parent.parent


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> dict[str, tuple[fr.Shape, Path, list[dict]]]:
    """Every shape imported into its own store after `init`, with the README's commands (run from the
    folder holding the files, `--db` and `--json` appended). Value: (shape, store, import reports)."""
    folder = tmp_path_factory.mktemp("real")
    out = {}
    for name, shape in fr.build_all(folder).items():
        where = folder / name
        db = where / "cx.duckdb"
        assert _run([sys.executable, "-m", "cxmetrics", "init", "--db", str(db)], ROOT).returncode == 0
        reports = []
        for cmd in shape.commands:
            argv = shlex.split(cmd)
            assert argv[:3] == ["python", "-m", "cxmetrics"], cmd
            r = _run([sys.executable, *argv[1:], "--db", str(db), "--json"], where)
            assert r.returncode == 0, (name, cmd, r.stdout[-3000:], r.stderr[-3000:])
            reports.append(json.loads(r.stdout))
        out[name] = (shape, db, reports)
    return out


def _scores(db: Path, col: str) -> list[int]:
    with store.connect(str(db)) as con:
        return [r[0] for r in con.execute(f"SELECT {col} FROM survey_responses WHERE {col} IS NOT NULL").fetchall()]


# ----------------------------------------------------------------------------- each shape as imported


@pytest.mark.parametrize("name", ["qualtrics", "qualtrics_resaved"])
def test_qualtrics_exports_import_as_downloaded(real, name):
    shape, db, (rep,) = real[name]
    f = shape.facts
    assert rep["format"] == "qualtrics" and rep["status"] == "accepted"
    assert rep["rows"] == f["rows"] and rep["anonymous"] == f["anonymous"]
    assert rep["excluded"] == {k: f[k] for k in ("previews", "spam", "unfinished", "no_answer")}
    with store.connect(str(db)) as con:
        assert con.execute("SELECT count(*) FROM survey_responses WHERE customer_id IS NULL").fetchone()[0] == f["rows"]
        assert con.execute("SELECT count(*) FROM customers").fetchone()[0] == 0  # anonymous: no stub customers
        first = con.execute("SELECT min(responded_on) FROM survey_responses").fetchone()[0]
        head = nps.overall(con, Filters())
        csat = scores.score(con, Filters(), metric="csat", survey="all")
    # choice text read as numbers: 0 - Not at all likely … 10 - Extremely likely, the 5-point labels
    assert sorted(_scores(db, "nps")) == sorted(f["nps"]) and sorted(_scores(db, "csat")) == sorted(f["csat"])
    assert (first.year, first.month, first.day) == ((2022, 3, 1) if name == "qualtrics_resaved" else (2023, 5, 1))
    # anonymous responses count in NPS and CSAT
    assert head.n == f["rows"] and head.estimate == pytest.approx(fr.nps_of(f["nps"]))
    assert csat.headline[0].n == f["rows"] and csat.headline[0].estimate == pytest.approx(sum(f["csat"]) / len(f["csat"]))


def test_retailer_survey_with_r_quirks_and_mixed_encodings(real, tmp_path):
    shape, db, (rep,) = real["retailer"]
    f = shape.facts
    assert rep["rows"] == f["rows"] and rep["excluded"] == {"no_answer": f["no_answer"]}
    assert rep["stubs"] == f["stubs"] and any("stub customers created" in w for w in rep["warnings"])
    with store.connect(str(db)) as con:
        texts = {r[0] for r in con.execute("SELECT verbatim FROM survey_responses WHERE verbatim IS NOT NULL").fetchall()}
        dates = con.execute("SELECT DISTINCT responded_on::VARCHAR FROM survey_responses").fetchall()
        stub_rows = con.execute("SELECT count(*), count(*) FILTER (WHERE segment = 'unknown' AND region = 'unknown' "
                                "AND contract = 'non_contractual') FROM customers "
                                "WHERE customer_id IN (SELECT customer_id FROM customer_stubs)").fetchone()
        ids = con.execute("SELECT count(DISTINCT response_id) FROM survey_responses").fetchone()[0]
    assert set(f["texts_1252"]) <= texts  # the Windows-1252 lines read exactly; "NA" is missing, not text
    assert "NA" not in texts
    assert dates == [("2019-06-30",)]  # --set responded_on: the file has no date column
    assert stub_rows == (f["stubs"], f["stubs"]) and ids == f["rows"]  # ids from the file's hash and row
    assert sorted(_scores(db, "csat")) == sorted(f["csat"])  # 1–10 recoded by --labels
    # without --encoding the file is refused with the encoding to use, and nothing is written
    folder = db.parent
    r = _run([sys.executable, "-m", "cxmetrics", "import", "survey_responses", "retailer_nps.csv", "--dry-run",
              "--db", str(db), "--map", "client_id=customer_id"], folder)
    assert r.returncode == 3 and "--encoding cp1252" in r.stdout + r.stderr


def test_line_items_become_transactions_of_stub_customers(real):
    shape, db, (rep,) = real["line_items"]
    f = shape.facts
    assert rep["rows"] == f["transactions"]
    assert rep["excluded"] == {"no_customer": f["no_customer"], "negative_amounts_kept": f["negative"]}
    assert rep["stubs"] == f["stubs"]
    with store.connect(str(db)) as con:
        total, n_neg = con.execute("SELECT round(sum(amount), 2), count(*) FILTER (WHERE amount < 0) "
                                   "FROM transactions").fetchone()
        sample = con.execute("SELECT count(*) > 0 FROM customer_stubs WHERE customer_id = ?", [f["sample_id"]]).fetchone()
    assert total == pytest.approx(f["revenue"]) and n_neg == f["negative"]
    assert sample == (True,)  # 17850.0 read as 17850, a stub customer


def test_complaints_log_without_customer_key(real):
    shape, db, (rep,) = real["complaints"]
    assert rep["rows"] == shape.facts["rows"] and rep["anonymous"] == shape.facts["rows"]
    with store.connect(str(db)) as con:
        from cxmetrics.metrics import complaints

        vol = complaints.volume(con, Filters(), by="category")
        raw = vol.table
    assert int(raw["complaints"].sum()) == shape.facts["rows"]
    assert int(raw["escalated"].sum()) == shape.facts["escalated"]


def test_churn_workbook_three_imports(real):
    shape, db, reps = real["churn_xlsx"]
    f = shape.facts
    assert [r["table"] for r in reps] == ["customers", "churn_events", "survey_responses"]
    assert reps[0]["rows"] == f["customers"] and reps[1]["rows"] == f["churned"]
    assert reps[1]["excluded"] == {"not_selected": f["customers"] - f["churned"]}
    assert reps[2]["rows"] == f["customers"] and reps[2]["stubs"] == 0
    assert sorted(_scores(db, "csat")) == sorted(f["csat"])


# ----------------------------------------------------------------------------- every command on every store


def _cli_inproc(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = cli.main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.parametrize("name", list(fr.BUILDERS))
def test_every_metrics_command_and_the_report(real, name, capsys, tmp_path):
    _, db, _ = real[name]
    for metric in METRICS:
        for extra in ((), ("--json",)):
            rc, out, err = _cli_inproc(capsys, "metrics", metric, "--db", str(db), *extra)
            assert rc in (0, 1), (name, metric, err[-2000:])
            if rc == 1:  # a one-line reason
                assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, (name, metric, err)
            if not extra:
                for bad in BAD_TEXT:
                    assert not re.search(rf"(?<![A-Za-z]){re.escape(bad)}(?![A-Za-z])", out), (name, metric, bad, out[:2000])
    pptx = tmp_path / f"{name}.pptx"
    rc, _, err = _cli_inproc(capsys, "report", "--format", "pptx", "--out", str(pptx), "--db", str(db))
    assert rc == 0, (name, err[-2000:])
    from pptx import Presentation

    text = "\n".join(sh.text_frame.text for s in Presentation(str(pptx)).slides for sh in s.shapes if sh.has_text_frame)
    for bad in ("nan", "NaN", "Data lineage: ."):
        assert bad not in text.replace("financ", ""), (name, bad, text[:3000])


@pytest.mark.parametrize("name", list(fr.BUILDERS))
def test_every_page_renders_on_the_real_shaped_store(make_app, real, name):
    from cxmetrics.core import roles

    _, db, _ = real[name]
    for spec in roles.PAGES:
        role = "finance" if spec.path.endswith("10_finance_review.py") else "analyst"
        at = make_app(db, role=role, page=spec.path, timeout=180)
        assert not at.exception, (name, spec.title, [e.value for e in at.exception])
        text = _page_text(at)
        for bad in ("nan", "Empty DataFrame", "None%"):
            assert f" {bad} " not in f" {text} ".replace("(", " ").replace(")", " "), (name, spec.title, bad, text[:2000])
        assert any(t.value == spec.headline for t in at.title), (name, spec.title)


def test_survey_metrics_give_figures_on_anonymous_and_stub_stores(real, capsys):
    """Not an empty state: the survey-only stores show NPS figures with n."""
    for name in ("qualtrics", "qualtrics_resaved", "retailer"):
        shape, db, _ = real[name]
        rc, out, _ = _cli_inproc(capsys, "metrics", "nps", "--db", str(db), "--json")
        assert rc == 0
        got = json.loads(out)
        assert got["n"] == len(shape.facts["nps"]) and got["estimate"] == pytest.approx(fr.nps_of(shape.facts["nps"]))


# ----------------------------------------------------------------------------- anonymous and stubs


def test_readme_commands_are_the_tested_commands(real):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Bring your own data", 1)[1].split("\n## ", 1)[0]
    documented = [line.strip() for line in section.splitlines() if line.strip().startswith("python -m cxmetrics import")]
    tested = [c for shape, _, _ in real.values() for c in shape.commands]
    assert documented == tested


def _anonymous_file(tmp_path: Path, db: Path, k: int) -> tuple[Path, list[int]]:
    with store.connect(str(db)) as con:
        a = con.execute("SELECT min(customer_id) FROM customers").fetchone()[0]
    scores = [(3 * i) % 11 for i in range(k)]
    lines = ["response_id,customer_id,responded_on,survey,nps,verbatim"]
    lines += [f"AN{i},,2024-01-{1 + i % 28:02d},relationship,{s},anonymous {i}" for i, s in enumerate(scores)]
    lines += ["ST1,NEW-CUSTOMER-1,2024-02-01,relationship,9,", f"KN1,{a},2024-02-02,relationship,8,"]
    p = tmp_path / "anon.csv"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p, scores


def test_anonymous_responses_count_in_nps_and_are_left_out_of_customer_analyses(small_copy, tmp_path, monkeypatch):
    with store.connect(str(small_copy)) as con:
        before = nps.overall(con, Filters())
        seg_before = nps.by(con, Filters(), dim="segment").table
    p, scores = _anonymous_file(tmp_path, small_copy, 12)
    rep = importer.import_file(p, "survey_responses", db=small_copy)
    assert (rep.anonymous, rep.stubs) == (12, 1)
    with store.connect(str(small_copy)) as con:
        assert summaries.current(con, summaries.RESPONSES_TABLE)
        fast = nps.overall(con, Filters())
        seg = nps.by(con, Filters(), dim="segment").table
        from cxmetrics.metrics import churn, clv, drivers, wallet

        results = [churn.churn_by(con, Filters()), wallet.by_group(con, Filters()), drivers.key_drivers(con, Filters()),
                   clv.clv_by_group(con, Filters(), draws=100)]
        # share of wallet counts customers: from the summary, and from the raw responses (a date filter
        # that keeps everything), anonymous answers are no customer
        import datetime as dt

        w_fast = int(results[1].table["customers"].sum())
        w_raw = int(wallet.by_group(con, Filters(date_from=dt.date(1900, 1, 1))).table["customers"].sum())
        with monkeypatch.context() as m:
            m.setattr(summaries, "_state", lambda con: ({}, 0))  # raw queries
            slow = nps.overall(con, Filters())
            seg_slow = nps.by(con, Filters(), dim="segment").table
    # every anonymous answer counts, from the summary and from the raw tables alike, SE included
    assert fast.n == before.n + 14 and slow.n == fast.n
    assert (fast.estimate, fast.ci_low, fast.ci_high) == pytest.approx((slow.estimate, slow.ci_low, slow.ci_high))
    # by segment: anonymous answers have no segment; the stub customer shows under 'unknown'
    key = "segment"
    assert set(seg[key]) == set(seg_before[key]) | {"unknown"} and set(seg_slow[key]) == set(seg[key])
    assert int(seg["n"].sum()) == before.n + 2
    assert w_raw == w_fast
    for res in results:
        assert any("12 anonymous survey response(s)" in w for w in res.warnings), (res.name, res.warnings)


def test_stubs_are_replaced_when_the_customers_file_arrives(small_copy, tmp_path):
    p, _ = _anonymous_file(tmp_path, small_copy, 2)
    importer.import_file(p, "survey_responses", db=small_copy)
    with store.connect(str(small_copy)) as con:
        assert con.execute("SELECT segment FROM customers WHERE customer_id = 'NEW-CUSTOMER-1'").fetchone() == ("unknown",)
        assert stubs.counts(con) == (2, 1)
    c = tmp_path / "customers.csv"
    c.write_text("customer_id,segment,region,acquired_on,contract\nNEW-CUSTOMER-1,smb,north,2021-05-01,contractual\n")
    rep = importer.import_file(c, "customers", db=small_copy)
    assert any("1 stub customer(s) replaced" in w for w in rep.warnings)
    with store.connect(str(small_copy)) as con:
        row = con.execute("SELECT segment, region, contract FROM customers WHERE customer_id = 'NEW-CUSTOMER-1'").fetchone()
        assert row == ("smb", "north", "contractual") and stubs.counts(con) == (2, 0)


def test_a_schema_2_file_migrates(small_db, tmp_path):
    """A store written by the previous code (no customer_stubs, customer ids required) opens read-write
    at the current schema, and then takes anonymous responses."""
    db = tmp_path / "old.duckdb"
    shutil.copy(small_db, db)
    raw = duckdb.connect(str(db))
    raw.execute("DROP TABLE customer_stubs")
    raw.execute("ALTER TABLE survey_responses ALTER COLUMN customer_id SET NOT NULL")
    raw.execute("ALTER TABLE complaints ALTER COLUMN customer_id SET NOT NULL")
    raw.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    raw.close()
    with pytest.raises(store.StoreError, match="schema version 2"):
        with store.connect(str(db)):
            pass
    with store.connect(str(db), read_only=False) as con:
        assert store.migrate(con) == schema.SCHEMA_VERSION
    p, _ = _anonymous_file(tmp_path, db, 3)
    rep = importer.import_file(p, "survey_responses", db=db)
    assert (rep.anonymous, rep.stubs) == (3, 1)
    with store.connect(str(db)) as con:
        assert con.execute("SELECT count(*) FROM customer_stubs").fetchone()[0] == 1
