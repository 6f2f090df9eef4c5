"""Import in the app (issue 17.9): the Data page checks a file with the importer's own dry run, shows
what was detected, the mapping, the first rows as they will be stored and every problem, then imports
with the same arguments. The widget values become the importer's arguments in
:mod:`cxmetrics.import_preview`, tested here directly; the page is driven with AppTest.

AppTest cannot drive a file uploader, so ``st.file_uploader`` is replaced by one that returns a
file as Streamlit's ``UploadedFile`` would (its name, size and bytes); everything after it is the page.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from cxmetrics import store
from cxmetrics.registers import import_preview

from . import fixtures_real as fr

ROOT = Path(__file__).resolve().parent.parent
PAGE = "pages/11_data.py"
VALIDATE = "FormSubmitter:data_upload-Validate"


class _Upload:
    """What ``st.file_uploader`` returns for one uploaded file."""

    def __init__(self, path: Path):
        self.name, self._data = path.name, path.read_bytes()
        self.size, self.file_id = len(self._data), f"test-{path.name}"

    def getbuffer(self) -> memoryview:
        return memoryview(self._data)


@pytest.fixture
def fresh(tmp_path) -> Path:
    db = tmp_path / "fresh.duckdb"
    r = subprocess.run([sys.executable, "-m", "cxmetrics", "init", "--db", str(db)], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return db


@pytest.fixture
def upload(monkeypatch):
    """Make the page's uploader return ``path`` (set it with ``upload(path)``)."""
    import streamlit as st

    held: dict = {}
    monkeypatch.setattr(st, "file_uploader", lambda *a, **k: held.get("file"))

    def set_file(path: Path | None):
        held["file"] = None if path is None else _Upload(path)

    return set_file


def _frame(at, *cols: str) -> pd.DataFrame:
    """The page's dataframe that has these columns."""
    found = [d.value for d in at.dataframe if set(cols) <= set(d.value.columns)]
    assert found, [list(d.value.columns) for d in at.dataframe]
    return found[-1]


def _texts(at) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [s.value for s in at.success]
    parts += [e.value for e in at.error] + [c.value for c in at.code]
    return re.sub(r"\\(.)", r"\1", "\n".join(str(p) for p in parts))  # markdown escapes undone


def test_request_from_widgets_is_the_cli_arguments():
    req = import_preview.request(
        "survey_responses", "retailer_nps.csv",
        mapping_rows=pd.DataFrame({"source column": ["client_id", "satisfaction", "comment", "", "Q3"],
                                   "target": ["customer_id", "csat", "verbatim", "nps", None]}),
        set_rows=[{"column": "survey", "value": "relationship"}, {"column": "responded_on", "value": "2019-06-30"}],
        label_rows=[{"column": "satisfaction", "label": "10", "value": "5"}],
        only_rows=[{"source column": "Status", "value": "IP Address"}],
        encoding="cp1252", date_format="", include_incomplete=True)
    assert req.mapping == {"client_id": "customer_id", "satisfaction": "csat", "comment": "verbatim", "Q3": ""}
    assert req.encoding == "cp1252" and req.options.sets == {"survey": "relationship", "responded_on": "2019-06-30"}
    assert req.options.labels == {"satisfaction": {"10": 5.0}} and req.options.only == {"Status": ("IP Address",)}
    assert req.options.include_incomplete and req.options.date_format is None
    cmd = import_preview.cli_command(req)
    assert cmd.startswith("python -m cxmetrics import survey_responses retailer_nps.csv --map client_id=customer_id")
    assert "--set survey=relationship" in cmd and "--encoding cp1252" in cmd and "--map Q3=" in cmd
    with pytest.raises(ValueError, match="not a number"):
        import_preview.request("survey_responses", "f.csv", label_rows=[{"column": "c", "label": "x", "value": "high"}])


def test_check_is_the_importers_dry_run(fresh, tmp_path):
    shape = fr.retailer(tmp_path)
    req = import_preview.request(
        "survey_responses", "retailer_nps.csv", encoding="cp1252",
        mapping_rows=[{"source column": "client_id", "target": "customer_id"},
                      {"source column": "satisfaction", "target": "csat"}, {"source column": "comment", "target": "verbatim"}],
        set_rows=[{"column": "survey", "value": "relationship"}, {"column": "responded_on", "value": "2019-06-30"}],
        label_rows=[{"column": "satisfaction", "label": str(k), "value": str((k + 1) // 2)} for k in range(1, 11)])
    c = import_preview.check(tmp_path / "retailer_nps.csv", req, db=str(fresh), actor="t", role="analyst")
    assert c.ok, c.rejected and c.rejected.report()
    assert c.detected() == "format csv, encoding cp1252, 1 header row"
    m = c.mapping_frame().set_index("source column")["target"].to_dict()
    assert m == {"client_id": "customer_id", "nps": "nps", "satisfaction": "csat", "comment": "verbatim"}
    sample = c.sample_frame()
    assert len(sample) == 20 and set(sample["responded_on"]) == {"2019-06-30"} and int(sample["row"].iloc[0]) == 2
    assert c.report.rows == shape.facts["rows"] and "no answer" in c.excluded_text()
    with store.connect(str(fresh)) as con:  # a dry run writes nothing
        assert con.execute("SELECT count(*) FROM survey_responses").fetchone()[0] == 0
    done = import_preview.run(tmp_path / "retailer_nps.csv", req, db=str(fresh), actor="t", role="analyst")
    assert done.rows == shape.facts["rows"] and done.stubs == shape.facts["stubs"]


def test_data_page_detects_previews_and_imports_a_qualtrics_export(make_app, fresh, tmp_path, upload):
    shape = fr.qualtrics(tmp_path)
    upload(tmp_path / "qualtrics_export.csv")
    at = make_app(fresh, page=PAGE, timeout=180)
    assert not at.exception
    at.button(key=VALIDATE).click().run()
    assert not at.exception, at.exception
    text = _texts(at)
    assert "format qualtrics, Qualtrics export, encoding utf-8, 3 header rows" in text
    f = shape.facts
    assert f"{f['rows']:,} rows are valid for survey_responses" in text
    assert f"{f['previews']} previews, {f['spam']} spam, {f['unfinished']} unfinished, {f['no_answer']} no answer" in text
    assert "python -m cxmetrics import survey_responses qualtrics_export.csv" in text
    sample = _frame(at, "row", "response_id", "nps")
    assert len(sample) == 20 and sample["customer_id"].isna().all()
    # a widget changes the check: unfinished answers kept (the one with a score; the empty one is skipped)
    at.checkbox(key="data_incomplete").check()
    at.button(key=VALIDATE).click().run()
    assert f"{f['rows'] + 1:,} rows are valid" in _texts(at) and "--include-incomplete" in _texts(at)
    at.button(key="data_confirm").click().run()
    assert not at.exception, at.exception
    assert f"Imported {f['rows'] + 1:,} rows into survey_responses" in _texts(at)
    # the status box followed the import's steps and says how long it took
    assert re.fullmatch(r"Importing: done in \d+\.\d s", at.status[-1].label) and at.status[-1].state == "complete"
    with store.connect(str(fresh)) as con:
        assert con.execute("SELECT count(*) FROM survey_responses WHERE customer_id IS NULL").fetchone()[0] == f["rows"] + 1
        assert con.execute("SELECT source, status FROM imports ORDER BY import_id DESC LIMIT 1").fetchone() == (
            "qualtrics_export.csv", "accepted")


def test_data_page_lists_every_problem_by_row_and_column(make_app, fresh, tmp_path, upload):
    fr.retailer(tmp_path)
    upload(tmp_path / "retailer_nps.csv")
    at = make_app(fresh, page=PAGE, timeout=180)
    at.button(key=VALIDATE).click().run()
    assert not at.exception
    assert "retailer_nps.csv was rejected — nothing was imported" in _texts(at)
    assert any("--encoding cp1252" in p for p in _frame(at, "row", "column", "problem")["problem"])
    # the encoding widget: now the file reads, and the missing columns are named
    at.selectbox(key="data_encoding").select("cp1252")
    at.button(key=VALIDATE).click().run()
    problems = _frame(at, "row", "column", "problem")
    assert {"responded_on", "survey"} <= set(problems["column"])
    # a malformed value is named by its row and column
    bad = tmp_path / "bad.csv"
    bad.write_text("response_id,responded_on,survey,nps\nB1,2024-01-01,relationship,9\nB2,2024-01-02,relationship,11\n")
    upload(bad)
    at.selectbox(key="data_encoding").select("auto")
    at.button(key=VALIDATE).click().run()
    problems = _frame(at, "row", "column", "problem")
    assert problems[["row", "column"]].values.tolist() == [[3, "nps"]]
    with store.connect(str(fresh)) as con:
        assert con.execute("SELECT count(*) FROM survey_responses").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM imports WHERE status = 'rejected'").fetchone()[0] == 3


def test_uploads_are_not_left_in_the_temp_folder(make_app, fresh, tmp_path, upload, monkeypatch):
    import tempfile

    tmp = tmp_path / "server_tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    fr.complaints(tmp_path)
    upload(tmp_path / "complaints_log.csv")
    at = make_app(fresh, page=PAGE, timeout=180)
    at.selectbox(key="data_table").select("complaints")
    at.button(key=VALIDATE).click().run()
    assert not list(tmp.glob("cx_upload_*"))
    assert "complaints_log.csv was rejected" in _texts(at)  # not mapped yet: no column has a contract name
    assert not list(tmp.glob("cx_upload_*")), "a rejected upload is deleted too"
