"""The main flows as a person performs them, in chromium against the running app."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pandas as pd
import pytest

from cxmetrics import store
from cxmetrics.core import periods, roles

pytestmark = pytest.mark.browser


def url_path(spec: roles.PageSpec) -> str:
    """Streamlit's URL for a page file: the file name without its number prefix; the first is /."""
    if spec is roles.pages_for("analyst")[0]:
        return "/"
    return "/" + re.sub(r"^\d+_", "", Path(spec.path).stem)


def settle(page, timeout_s: float = 120) -> None:
    """Wait until the app is connected and its script has stayed idle for ~0.6 s (a run may
    trigger another run, e.g. when it writes the filters to the URL)."""
    page.wait_for_selector('[data-testid="stApp"][data-test-connection-state="CONNECTED"]', timeout=timeout_s * 1000)
    idle = 0
    for _ in range(int(timeout_s * 5)):
        state = page.get_attribute('[data-testid="stApp"]', "data-test-script-state")
        idle = idle + 1 if state == "notRunning" else 0
        if idle >= 3:
            return
        page.wait_for_timeout(200)
    raise AssertionError(f"the app was still running after {timeout_s} s")


def wait_for_text(locator, needle: str, timeout_s: float = 30) -> str:
    """The locator's text once it contains ``needle`` (canvas grids fill their cells lazily)."""
    text = ""
    for _ in range(int(timeout_s * 4)):
        text = locator.text_content() or ""
        if needle in text:
            return text
        locator.page.wait_for_timeout(250)
    return text


def download(page, button, timeout_s: float = 60):
    """Click a download button and return the download. Under load a rerun can follow the idle
    moment :func:`settle` saw and replace the button as it is clicked (the click then starts no
    download; the full suite failed once so beside other work): settle again and click once more."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in (1, 2):
        try:
            with page.expect_download(timeout=timeout_s * 1000) as dl:
                button.click()
            return dl.value
        except PlaywrightTimeout:
            if attempt == 2:
                raise
            settle(page)


def open_page(page, server: str, path: str, query: str = "") -> None:
    page.goto(server + path + (f"?{query}" if query else ""))
    page.wait_for_selector("h1")
    settle(page)


def assert_no_exception(page) -> None:
    boxes = page.locator('[data-testid="stException"]')
    assert boxes.count() == 0, boxes.first.inner_text()


def full_screenshot(page, path: Path, width: int) -> None:
    """Screenshot of the whole page: Streamlit scrolls inside its main block, so grow the viewport."""
    page.set_viewport_size({"width": width, "height": 1000})
    settle(page)
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('[data-testid=\"stMain\"], [data-testid=\"stSidebar\"] > div')]"
        ".map(e => e.scrollHeight), 800)")
    page.set_viewport_size({"width": width, "height": min(int(height) + 40, 16000)})
    page.wait_for_timeout(800)  # plotly re-lays out charts on resize
    page.screenshot(path=str(path), full_page=True)


def metric_values(page) -> list[str]:
    return [t.strip() for t in page.locator('[data-testid="stMetricValue"]').all_inner_texts()]


def metrics_after_change(page, before: list[str], timeout_s: float = 60) -> list[str]:
    """The metric values once they differ from ``before`` (the rerun has landed), or ``before``."""
    for _ in range(int(timeout_s * 4)):
        now = metric_values(page)
        if now and now != before:
            settle(page)
            return metric_values(page)
        page.wait_for_timeout(250)
    return before


def metrics_become(page, want: list[str], timeout_s: float = 120) -> list[str]:
    """The metric values once they equal ``want``, or the last ones seen after ``timeout_s``: under
    load a page opened from a link can rerun after the idle moment :func:`settle` saw (leaving the
    older multipage mode, writing the filters to the URL), its metrics half drawn in between."""
    now: list[str] = []
    for _ in range(int(timeout_s * 4)):
        settle(page)
        now = metric_values(page)
        if now == want:
            return now
        page.wait_for_timeout(250)
    return now


def grid_text(page) -> str:
    """Text of every dataframe on the page (the grid is drawn on a canvas; its cells are in the
    DOM once it has been drawn, so each is scrolled into view and waited for)."""
    out = []
    # under load a rerun (the filters written to the URL) can follow the idle moment `settle`
    # saw, and the grids come with it: wait for the first one before listing them
    page.wait_for_selector('[data-testid="stDataFrame"]', timeout=120_000)
    settle(page)
    for grid in page.locator('[data-testid="stDataFrame"]').all():
        grid.scroll_into_view_if_needed()
        for _ in range(80):
            text = (grid.text_content() or "").strip()
            if text:
                break
            page.wait_for_timeout(250)
        out.append(text)
    return " ".join(out)


@pytest.mark.parametrize("spec", roles.PAGES, ids=[Path(p.path).stem for p in roles.PAGES])
def test_every_page_opens_with_its_headline(spec, server, page, shots):
    open_page(page, server, url_path(spec))
    assert_no_exception(page)
    assert page.locator("h1").first.inner_text().strip() == spec.headline
    stem = Path(spec.path).stem
    full_screenshot(page, shots / f"{stem}_desktop.png", 1400)
    full_screenshot(page, shots / f"{stem}_narrow.png", 420)
    assert_no_exception(page)
    assert (shots / f"{stem}_desktop.png").stat().st_size > 10_000


def _pick(page, label: str, option: str) -> None:
    box = page.locator('[data-testid="stSidebar"] [data-testid="stMultiSelect"]').filter(has_text=label)
    box.evaluate("e => e.scrollIntoView({block: 'center'})")  # as a person scrolls the sidebar: a list
    box.locator("input").click()  # opened at the window's bottom edge may not show its options
    page.get_by_role("option", name=option, exact=True).click()
    page.keyboard.press("Escape")
    settle(page)


def _set_date(page, label: str, iso: str) -> None:
    """Type a date into Streamlit's segmented date field (year, month, day spin buttons)."""
    y, m, d = iso.split("-")
    page.locator(f'[data-testid="stSidebar"] [aria-label="year, {label}"]').click()
    page.keyboard.type(y + m + d)
    page.locator("h1").first.click()  # the field commits when it loses focus
    settle(page)


def test_filters_change_figures_and_live_in_the_url(server, page):
    open_page(page, server, "/nps_drivers")
    before = metrics_after_change(page, [])
    assert before, "the NPS page shows metrics"
    _pick(page, "Segment", "smb")
    after_segment = metrics_after_change(page, before)
    assert after_segment != before
    assert parse_qs(urlparse(page.url).query)["segment"] == ["smb"]
    _set_date(page, "From", "2025-01-01")
    after_date = metrics_after_change(page, after_segment)
    assert after_date != after_segment
    q = parse_qs(urlparse(page.url).query)
    assert q["from"] == ["2025-01-01"] and q["segment"] == ["smb"]
    assert_no_exception(page)

    shared = page.url
    other = page.context.new_page()
    other.goto(shared)
    other.wait_for_selector("h1")  # the new session's first run has started (settle alone can
    other.wait_for_selector('[data-testid="stMetricValue"]', timeout=60_000)  # see the idle state before it)
    assert metrics_become(other, after_date) == after_date  # the shared link opens the same view
    chips = other.locator('[data-testid="stSidebar"] [data-testid="stMultiSelect"]').filter(has_text="Segment")
    assert "smb" in chips.inner_text()
    other.close()


def test_a_named_period_sets_the_dates_and_is_shared_by_name(server, browser_db, page, shots):
    """The sidebar's date-range select: "Last 12 months" fills both dates, changes the figures and
    puts the period (not two dates) in the link; the link opens the same view."""
    open_page(page, server, "/nps_drivers")
    before = metrics_after_change(page, [])
    box = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').filter(has_text="Date range")
    box.click()
    page.get_by_role("option", name="Last 12 months", exact=True).click()
    settle(page)
    after = metrics_after_change(page, before)
    assert after != before
    q = parse_qs(urlparse(page.url).query)
    assert q.get("range") == ["last-12-months"] and "from" not in q, q
    with store.connect(str(browser_db)) as con:
        lo, hi = con.execute("SELECT min(responded_on), max(responded_on) FROM survey_responses").fetchone()
    start = periods.preset_range(periods.LAST_12_MONTHS, lo, hi)[0]
    frm = page.locator('[data-testid="stSidebar"] [data-testid="stDateInput"]').filter(has_text="From")
    assert "".join(frm.inner_text().split()).endswith(start.strftime("%Y/%m/%d")), frm.inner_text()
    assert_no_exception(page)
    page.locator('[data-testid="stSidebar"]').screenshot(path=str(shots / "sidebar_period.png"))
    other = page.context.new_page()
    other.goto(page.url)
    other.wait_for_selector('[data-testid="stMetricValue"]', timeout=60_000)
    assert metrics_become(other, after) == after
    other.close()


def _upload(page, file: Path) -> None:
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(file))
    page.wait_for_selector(f'text={file.name}')
    page.get_by_role("button", name="Validate").click()
    settle(page)


def _row_count(page, table: str) -> int:
    """The Data page's "Rows in all tables" metric, found by its label (not by position: a
    position can match a metric of a page still being replaced)."""
    metric = page.locator('[data-testid="stMetric"]').filter(has_text="Rows in all tables")
    metric.first.wait_for(timeout=60_000)
    return int(metric.first.locator('[data-testid="stMetricValue"]').inner_text().replace(",", ""))


def _last_import(db: Path) -> tuple[str, str]:
    with store.connect(str(db)) as con:
        return con.execute("SELECT source, status FROM imports ORDER BY import_id DESC LIMIT 1").fetchone()


def test_bad_upload_shows_errors_then_good_upload_imports(server, server_tmp, browser_db, page, tmp_path, shots):
    open_page(page, server, "/data")
    total_before = _row_count(page, "survey_responses")
    bad = tmp_path / "bad_responses.csv"
    bad.write_text("response_id,customer_id,responded_on,survey,nps\n"
                   "B1,C0000001,2024-01-01,relationship,9\n"
                   "B2,C0000002,not a date,relationship,11\n")
    _upload(page, bad)
    err = page.locator('[data-testid="stAlertContentError"]')
    assert "rejected — nothing was imported" in err.first.inner_text()
    problems = page.locator('[data-testid="stDataFrame"]').last
    problems.scroll_into_view_if_needed()
    text = wait_for_text(problems, "responded_on")
    assert "responded_on" in text and "nps" in text
    page.screenshot(path=str(shots / "data_rejected_upload.png"))
    assert _last_import(browser_db) == ("bad_responses.csv", "rejected")  # logged under the file's own name
    open_page(page, server, "/data")
    assert _row_count(page, "survey_responses") == total_before

    good = tmp_path / "good_responses.csv"
    good.write_text("response_id,customer_id,responded_on,survey,nps,verbatim\n"
                    "G1,C0000001,2024-01-01,relationship,9,<b>not bold</b>\n"
                    "G2,C0000002,2024-01-02,relationship,3,fine\n")
    _upload(page, good)
    assert "2 rows are valid" in page.locator('[data-testid="stAlertContentSuccess"]').first.inner_text()
    page.get_by_role("button", name=re.compile("Import 2 rows")).click()
    settle(page)
    assert page.get_by_text(re.compile(r"Imported 2 rows into survey_responses")).count() == 1
    open_page(page, server, "/data")
    assert _row_count(page, "survey_responses") == total_before + 2
    assert _last_import(browser_db) == ("good_responses.csv", "accepted")
    assert not list(server_tmp.glob("cx_upload_*")), "uploads are deleted from the temp folder"
    assert_no_exception(page)

    # the uploaded verbatim is shown as text on Customer voice, never as HTML
    open_page(page, server, "/customer_voice")
    box = page.get_by_label("Search the verbatims")
    box.fill("not bold")
    box.press("Enter")
    settle(page)
    assert "1" == page.locator('[data-testid="stMetricValue"]').first.inner_text().strip()
    assert "<b>not bold</b>" in grid_text(page)
    assert page.locator("b", has_text="not bold").count() == 0


def test_qualtrics_export_checked_changed_and_imported(server, server_tmp, browser_db, page, tmp_path, shots):
    """Issue 17.9: the Data page shows what it detected, the mapping and the first rows as stored;
    a widget changes the check; the import uses the same arguments."""
    from tests import fixtures_real as fr

    shape = fr.qualtrics(tmp_path)
    n = shape.facts["rows"]
    open_page(page, server, "/data")
    _upload(page, tmp_path / "qualtrics_export.csv")
    main = page.locator('[data-testid="stMain"]')
    # the command block comes after the preview: read the text once it is there (a loaded machine
    # rendered the headings before it and failed a single read)
    text = wait_for_text(main, "python -m cxmetrics import survey_responses qualtrics_export.csv")
    assert "format qualtrics, Qualtrics export, encoding utf-8, 3 header rows" in text
    assert f"{n} rows are valid for survey_responses" in text
    assert "2 previews, 1 spam, 2 unfinished, 1 no answer" in text
    assert "python -m cxmetrics import survey_responses qualtrics_export.csv" in text
    assert "R_17" in grid_text(page)  # the first rows as they will be stored (and the mapping editor)
    page.screenshot(path=str(shots / "data_qualtrics_checked.png"))
    page.get_by_text("Qualtrics: keep unfinished responses").click()
    page.get_by_role("button", name="Validate").click()
    settle(page)
    assert f"{n + 1} rows are valid" in main.inner_text() and "--include-incomplete" in main.inner_text()
    page.get_by_role("button", name=re.compile(f"Import {n + 1} rows")).click()
    settle(page)
    assert page.get_by_text(re.compile(rf"Imported {n + 1} rows into survey_responses")).count() == 1
    assert_no_exception(page)
    with store.connect(str(browser_db)) as con:
        assert con.execute("SELECT count(*) FROM survey_responses WHERE response_id LIKE 'R\\_17%' ESCAPE '\\' "
                           "AND customer_id IS NULL").fetchone()[0] == n + 1
    assert _last_import(browser_db) == ("qualtrics_export.csv", "accepted")
    assert not list(server_tmp.glob("cx_upload_*")), "uploads are deleted from the temp folder"


def test_csv_download_and_executive_deck(server, page, tmp_path):
    open_page(page, server, "/complaints")
    got = download(page, page.locator('[data-testid="stDownloadButton"]').filter(has_text="CSV").first, 30)
    path = tmp_path / got.suggested_filename
    got.save_as(path)
    df = pd.read_csv(path)
    assert len(df) > 0 and len(df.columns) > 1

    open_page(page, server, "/")
    page.get_by_text("Export the executive update").click()
    page.get_by_role("button", name="Prepare the executive update").click()
    button = page.get_by_role("button", name=re.compile(r"Download the update \(\.pptx\)"))
    button.wait_for(timeout=240_000)
    deck = tmp_path / "deck.pptx"
    download(page, button, 30).save_as(deck)
    from pptx import Presentation

    prs = Presentation(str(deck))
    assert len(prs.slides) >= 6
    texts = " ".join(sh.text_frame.text for s in prs.slides for sh in s.shapes if sh.has_text_frame)
    assert "NPS" in texts and "95%" in texts


def test_department_role_sees_only_its_department(server, page, shots):
    open_page(page, server, "/department", "role=department&department=billing")
    assert_no_exception(page)
    nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
    assert "Executive summary" not in nav and "Finance review" not in nav and "Data" not in nav
    assert "Billing" in page.locator("h2, h3").all_inner_texts()
    picker = page.locator('[data-testid="stSelectbox"]').filter(has_text="Department").last
    assert picker.locator("input").input_value() == "billing"
    full_screenshot(page, shots / "department_role_billing_desktop.png", 1400)

    open_page(page, server, "/complaints", "role=department&department=billing")
    assert_no_exception(page)
    text = grid_text(page).lower()
    assert "billing" in text
    for other in ("logistics", "contact_centre", "digital", "sales"):
        assert other not in text, other

    open_page(page, server, "/finance_review", "role=department&department=billing")
    assert page.locator("h1").first.inner_text().strip() != "Finance review"
