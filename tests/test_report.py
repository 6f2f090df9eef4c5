"""The executive update: deck, HTML, PDF, department option, narrative, download button, exports."""

import io
import re
import shutil
import subprocess
import sys

import openpyxl
import pandas as pd
import pytest
from pptx import Presentation

from cxmetrics import store, story
from cxmetrics.core.filters import Filters
from cxmetrics.core.results import Estimate
from cxmetrics.story import exports, report
from cxmetrics.views import executive as summary


@pytest.fixture(scope="module")
def deck(demo_db, tmp_path_factory):
    out = tmp_path_factory.mktemp("deck") / "update.pptx"
    res = subprocess.run([sys.executable, "-m", "cxmetrics", "report", "--format", "pptx", "--out", str(out),
                          "--db", str(demo_db)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    return Presentation(str(out))


def test_deck_has_the_expected_slides_images_and_numbers(deck, demo_db):
    titles = [s.shapes.title.text for s in deck.slides]
    assert titles[0] == "CX executive update"
    for t in ("The headlines", "What CX is worth: the CX-to-P&L bridge", "NPS: level and trend",
              "Detractors leave sooner and are worth less", "Department targets vs customer expectations",
              "Complaints: the result-driven track", "CX initiatives: what they delivered",
              "Methodology, sample sizes and lineage"):
        assert t in titles
    pictures = sum(1 for s in deck.slides for sh in s.shapes if sh.shape_type == 13)
    assert pictures >= 6
    text = "\n".join(sh.text_frame.text for s in deck.slides for sh in s.shapes if sh.has_text_frame)
    with store.connect(str(demo_db)) as con:
        s = summary.page_data(con, Filters())
    assert f"NPS is {s.nps.estimate:.1f} ({s.nps.ci_text()}" in text  # the same numbers as the app
    assert "v1" in text  # assumption versions cited on the methodology slide


def test_department_deck(demo_db, tmp_path):
    out = tmp_path / "logistics.pptx"
    report.generate(str(demo_db), "pptx", out, Filters(), department="logistics")
    titles = [s.shapes.title.text for s in Presentation(str(out)).slides]
    assert "Logistics: CX update" in titles and "Delivery time: target vs customer expectation" in titles
    assert not any("Call wait" in t for t in titles)


def test_html_is_self_contained(demo_db, tmp_path):
    out = report.generate(str(demo_db), "html", tmp_path / "u.html", Filters())
    html = out.read_text(encoding="utf-8")
    assert "plotly" in html.lower() and html.count("class=\"plotly-graph-div\"") >= 5
    assert not re.search(r"<script[^>]+src=\"https?://", html)  # nothing fetched from the network


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="pdftoppm (poppler-utils) is installed by scripts/test.sh")
def test_pdf_pages_render(demo_db, tmp_path):
    out = report.generate(str(demo_db), "pdf", tmp_path / "u.pdf", Filters())
    info = subprocess.run(["pdfinfo", str(out)], capture_output=True, text=True).stdout
    pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))
    assert pages >= 8
    subprocess.run(["pdftoppm", "-png", "-r", "40", "-f", "2", "-l", "2", str(out), str(tmp_path / "p")], check=True)
    assert list(tmp_path.glob("p*.png"))


def test_narrative_says_not_significant_plainly(demo_db):
    from cxmetrics.metrics import nps

    with store.connect(str(demo_db)) as con:
        slides = story.story(con, Filters())
        change, said = nps.last_change(con, Filters())
    sentences = [x for s in slides for x in s.sentences]
    assert said in sentences  # the deck carries the library's sentence, not a paraphrase
    assert change.p_value >= change.alpha  # on the demo the last quarter-on-quarter move is noise …
    assert said.endswith("not significant, it may not have moved.") and "(95% CI" in said  # … and says so
    big = nps.difference(Estimate("a", "a", 40.0, 35.0, 45.0, n=900, se=2.5),
                         Estimate("b", "b", 10.0, 5.0, 15.0, n=900, se=2.5))
    assert "not significant" not in nps.describe_change(big, "Q2", "Q3")  # a real move is stated as one


def test_period_option():
    assert report.period_bounds("2025") == (pd.Timestamp("2025-01-01").date(), pd.Timestamp("2025-12-31").date())
    with pytest.raises(ValueError):
        report.period_bounds("last year")


def test_exports_neutralise_formulas():
    df = pd.DataFrame({"text": ["=cmd|' /C calc'!A0", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx", "fine", "<b>x</b>"],
                       "amount": [-5, 1, 2, 3, 4, 5, 6, 7]})
    csv = exports.to_csv_bytes(df).decode("utf-8-sig")
    for bad in ("=cmd", "+1", "-2+3", "@SUM"):
        assert f"'{bad}" in csv
    assert csv.splitlines()[1].endswith(",-5")  # a negative number is not text: left alone
    wb = openpyxl.load_workbook(io.BytesIO(exports.to_xlsx_bytes(df)))
    ws = wb.active
    values = [c.value for c in ws["A"][1:]]
    assert values[0].startswith("'=") and values[6] == "fine" and values[7] == "<b>x</b>"
    assert all(c.data_type != "f" for c in ws["A"])  # no cell is a formula
    assert [c.value for c in ws["B"][1:]][0] == -5  # numbers stay numbers


def test_app_download_button_returns_a_valid_deck(demo_db, make_app):
    at = make_app(demo_db, role="executive")
    at.button(key="exec_deck_build").click().run()
    assert not at.exception, at.exception
    data, fmt = at.session_state["exec_deck_file"]
    assert fmt == "pptx"
    assert len(Presentation(io.BytesIO(data)).slides) >= 9


def test_a_chart_image_that_fails_once_is_rendered_again(monkeypatch):
    """Kaleido on a loaded machine once called its tab before the tab's script had loaded (a
    JavascriptError in the department deck's test): the batch falls back to one figure at a time,
    each tried twice, so one transient failure does not fail the export."""
    from types import SimpleNamespace

    import plotly.io as pio

    from cxmetrics.story import report as report_mod

    def no_batch(*a, **k):
        raise RuntimeError("batch failed")

    calls = []

    def flaky(fig, width=1000, height=480):
        calls.append(fig)
        if len(calls) == 1:
            raise RuntimeError("ReferenceError: kaleido_scopes is not defined")
        return b"png"

    monkeypatch.setattr(pio, "write_images", no_batch)
    monkeypatch.setattr(report_mod, "_png", flaky)
    monkeypatch.setattr(report_mod, "browser", lambda: "chromium")
    slides = [SimpleNamespace(figures=["a", "b"]), SimpleNamespace(figures=[]), SimpleNamespace(figures=["c"])]
    assert report_mod.render_images(slides) == {0: [b"png", b"png"], 2: [b"png"]}
    assert calls == ["a", "a", "b", "c"]
