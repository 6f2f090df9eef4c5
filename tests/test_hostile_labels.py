"""Imported labels are plain text on every surface (issue 19 item 9): department, leader and
ambassador names, KPI names, initiative names and complaint categories that are markdown, HTML or
bare URLs render as text in the app's markdown and widget labels, in plotly figures, and in the
HTML report — never as a link, an image or formatting."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from cxmetrics import store, ui
from cxmetrics.charts import escape_labels, plain
from cxmetrics.core.filters import Filters
from cxmetrics.registers import importer

MARK = "EVILMARK"
IMG = f"![{MARK}](http://127.0.0.1:9/p.png)"
LINK = f'<a href="http://evil.example/a">{MARK}</a>'
URL = f"{MARK} see http://evil.example/u or www.evil.example"
MD = f"**{MARK}** [click](http://evil.example/m) <img src=x>"
#: Markup a label must never bring into a plotly figure (raw or JSON-escaped).
PLOTLY_MARKUP = ('<a href', '\\u003ca href', '<img', '\\u003cimg', '<b>', '\\u003cb\\u003e')


@pytest.fixture(scope="module")
def hostile_db(small_db, tmp_path_factory) -> Path:
    """The small demo company with hostile labels imported through the importer (as a user would)."""
    tmp = tmp_path_factory.mktemp("hostile")
    db = tmp / "hostile.duckdb"
    shutil.copy(small_db, db)
    with store.connect(str(db)) as con:
        deps = con.execute("SELECT * FROM departments ORDER BY department").df()
        kpis = con.execute("SELECT * FROM kpis ORDER BY kpi_id").df()
        inis = con.execute("SELECT * FROM initiatives ORDER BY initiative_id").df()
        cids = [r[0] for r in con.execute("SELECT customer_id FROM customers ORDER BY 1 LIMIT 60").fetchall()]
    deps["leader"], deps["ambassador"] = IMG, URL
    kpis["name"] = [f"{LINK} {n}" for n in kpis["name"]]
    inis["name"] = [f"{MD} {n}" for n in inis["name"]]
    comps = pd.DataFrame({"complaint_id": [f"HOST{i}" for i in range(len(cids) * 3)],
                          "customer_id": cids * 3, "opened_on": "2026-01-15",
                          "category": [LINK, IMG, URL] * len(cids)})
    for name, frame in (("departments", deps), ("kpis", kpis), ("initiatives", inis), ("complaints", comps)):
        path = tmp / f"{name}.csv"
        frame.to_csv(path, index=False)
        importer.import_file(path, name, db=db)
    return db


def _texts(at) -> list[str]:
    """Every text the page shows through markdown: element bodies and widget labels."""
    out = []
    for kind in ("markdown", "caption", "title", "header", "subheader", "info", "warning", "success",
                 "error", "expander", "metric", "tab", "selectbox", "button"):
        try:
            elements = at.get(kind)
        except Exception:  # noqa: BLE001  an element type this Streamlit version does not know
            continue
        for el in elements:
            for attr in ("value", "label"):
                v = getattr(el, attr, None)
                if isinstance(v, str) and MARK in v:
                    out.append(v)
    return out


def _inert(md: str) -> list[str]:
    """Why this markdown source would render the data's markup or a link (empty when inert)."""
    checks = {"an image": r"(?<!\\)!(?<!\\)\[", "a link": r"(?<!\\)\](?<!\\)\(",
              "an HTML tag": r"(?<!\\)<(?:a|img)\b", "bold data": r"(?<!\\)\*(?<!\\)\*" + MARK}
    bad = [what for what, pattern in checks.items() if re.search(pattern, md)]
    if re.search(r"(?i)https?://|www\.", md.replace("\\", "")):  # what GFM would autolink
        bad.append("an autolinkable URL")
    return bad


def _figures(at) -> list[str]:
    return [el.proto.spec for el in at.get("plotly_chart")]


def _check_page(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    texts = _texts(at)
    assert texts, "the page shows none of the hostile labels: the test would prove nothing"
    problems = {t: _inert(t) for t in texts if _inert(t)}
    assert not problems, problems
    for spec in _figures(at):
        if MARK in spec:
            assert not any(m in spec for m in PLOTLY_MARKUP), spec[:2000]


def test_department_page_labels_are_plain_text(hostile_db, make_app):
    at = make_app(hostile_db, page="pages/06_department.py")
    _check_page(at)
    texts = _texts(at)
    assert any("Leader" in t for t in texts) and any("ambassador" in t for t in texts)
    assert any(MARK in s for s in _figures(at))  # the KPI charts carry the hostile KPI names


def test_alignment_page_labels_are_plain_text(hostile_db, make_app):
    at = make_app(hostile_db, page="pages/07_alignment.py")
    _check_page(at)


def test_complaints_page_chart_categories_are_plain_text(hostile_db, make_app):
    at = make_app(hostile_db, page="pages/08_complaints.py")
    _check_page(at)
    assert any(MARK in s for s in _figures(at))  # the Pareto chart has the hostile categories


def test_initiative_expander_labels_are_plain_text(hostile_db, make_app):
    at = make_app(hostile_db, page="pages/09_initiatives.py")
    _check_page(at)
    labels = [e.label for e in at.get("expander") if MARK in e.label]
    assert labels and not any(_inert(x) for x in labels), labels


def test_html_report_carries_no_markup_from_the_data(hostile_db, tmp_path):
    from cxmetrics.story import report

    out = report.generate(str(hostile_db), "html", str(tmp_path / "update.html"), Filters())
    doc = Path(out).read_text()
    assert doc.count(MARK) >= 3  # in the sentences, the tables and the figures' JSON
    # (plotly.js itself, inlined in the file, contains <a href> for map attributions: look only at
    # what surrounds the data's labels)
    for m in re.finditer(MARK, doc):
        near = doc[max(0, m.start() - 60): m.end() + 60]
        for bad in ("<a href", "\\u003ca href", "<img", "\\u003cimg", "<b>", "\\u003cb\\u003e"):
            assert bad not in near, near


def test_md_escape_breaks_every_autolink_streamlit_knows():
    # the regexes of mdast-util-gfm-autolink-literal, which Streamlit's markdown runs on text nodes
    # after backslash escapes are resolved (found in streamlit/static StreamlitMarkdown*.js)
    url = re.compile(r"(https?://|www(?=\.))([-.\w]+)([^ \t\r\n]*)", re.I)
    email = re.compile(r"([-.\w+]+)@([-\w]+(?:\.[-\w]+)+)")
    for text in (URL, "https://x.example", "WWW.x.example", "a.b@evil.example", f"_{URL}", "x\n- item"):
        shown = re.sub(r"\\(.)", r"\1", ui.md_escape(text))
        assert not url.search(shown) and not email.search(shown), shown
        assert "\n" not in shown
        assert shown.replace(ui.WORD_JOINER, "") == text.replace("\n", " ")  # the same text on screen


def test_plotly_labels_are_escaped_everywhere_in_a_figure():
    import plotly.graph_objects as go

    fig = go.Figure(go.Bar(x=pd.Series([LINK, "b"]), y=[1, 2], text=[IMG, "t"], name=LINK,
                           hovertext=[LINK, "h"], customdata=[[LINK], ["c"]]))
    fig.update_layout(title=LINK, xaxis_title=LINK, legend_title_text=LINK)
    fig.add_annotation(text=LINK, x=0, y=0)
    escape_labels(fig)
    doc = json.dumps(fig.to_plotly_json(), default=str)
    assert "<a" not in doc and doc.count("&lt;a href") == 8, doc  # every one of the 8 places it was put
    assert plain("<b>&</b>") == "&lt;b&gt;&amp;&lt;/b&gt;"
