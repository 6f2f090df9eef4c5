"""The executive update: a deck (PowerPoint), a self-contained HTML document and a PDF.

``story(con, filters)`` builds a list of :class:`Slide` from the same page-data functions the
dashboard uses (``cxmetrics.story``); the writers here only lay them out. Charts are the same
plotly figures as in the app, rendered to PNG by kaleido (Debian's chromium) for the deck and
the PDF, and embedded interactive (plotly.js inline, no network) in the HTML.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from cxmetrics.core import lazy

pd = lazy.module("pandas")

FORMATS = ("pptx", "html", "pdf")

from cxmetrics.store import engines  # noqa: E402
from cxmetrics.story.narrative import Slide  # noqa: E402  the type lives with the story that builds the slides


class RendererMissing(RuntimeError):
    """No headless browser to render chart images (kaleido) or print the PDF: a one-line reason."""


#: Browsers kaleido and the PDF printer can drive, in order of preference.
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")
RENDERER_HELP = ("needs a headless chromium to render the charts, and none was found: install Debian's chromium "
                 "(`apt-get install chromium`, which scripts/run.sh does when run as root) or set BROWSER_PATH; "
                 "the HTML format needs no browser")


def browser() -> str:
    """The browser used for chart images and PDFs ($BROWSER_PATH, else the first of ``BROWSERS`` on
    PATH); raises :class:`RendererMissing` with a one-line reason when there is none."""
    env = os.environ.get("BROWSER_PATH")
    if env and (shutil.which(env) or os.path.exists(env)):
        return env
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    raise RendererMissing(f"the deck {RENDERER_HELP}")


def _png(fig, width: int = 1000, height: int = 480) -> bytes:
    return fig.to_image(format="png", width=width, height=height, scale=1)


def _twice(render):
    try:
        return render()
    except Exception:
        return render()


def render_images(slides: list[Slide]) -> dict[int, list[bytes]]:
    """PNG of every figure, rendered in one kaleido batch where possible."""
    import plotly.io as pio

    figs = [(i, f) for i, s in enumerate(slides) for f in s.figures]
    out: dict[int, list[bytes]] = {}
    if not figs:
        return out
    browser()  # a one-line reason rather than kaleido's traceback when there is no browser
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp) / f"f{k}.png" for k in range(len(figs))]
        try:
            pio.write_images([f for _, f in figs], paths, width=1000, height=480)
            pngs = [p.read_bytes() for p in paths]
        except Exception:  # older kaleido without batch support, or a batch that failed: one by one,
            # each tried twice (on a loaded machine kaleido's tab can be called before its script has
            # loaded: "ReferenceError: kaleido_scopes is not defined", seen once in the test suite)
            pngs = [_twice(lambda f=f: _png(f)) for _, f in figs]
    for (i, _), png in zip(figs, pngs, strict=True):
        out.setdefault(i, []).append(png)
    return out


# ----------------------------------------------------------------------------- PowerPoint


def to_pptx(slides: list[Slide], path: str | os.PathLike, *, title: str, subtitle: str) -> Path:
    from pptx import Presentation
    from pptx.util import Emu, Inches, Pt

    images = render_images(slides)
    prs = Presentation()
    prs.slide_width, prs.slide_height = Inches(13.333), Inches(7.5)
    first = prs.slides.add_slide(prs.slide_layouts[0])
    first.shapes.title.text = title
    first.placeholders[1].text = subtitle
    blank = prs.slide_layouts[5]  # title only
    for i, s in enumerate(slides):
        sl = prs.slides.add_slide(blank)
        sl.shapes.title.text = s.title
        sl.shapes.title.text_frame.paragraphs[0].font.size = Pt(30)
        top = Inches(1.35)
        pics = images.get(i, [])
        text_w = Inches(5.2) if pics else Inches(12.3)
        box = sl.shapes.add_textbox(Inches(0.5), top, text_w, Inches(5.3))
        tf = box.text_frame
        tf.word_wrap = True
        for j, sentence in enumerate(s.sentences):
            p = tf.paragraphs[0] if j == 0 else tf.add_paragraph()
            p.text = "• " + sentence
            p.font.size = Pt(15 if len(s.sentences) < 6 else 12)
            p.space_after = Pt(8)
        if pics:
            h = Inches(5.3) / len(pics[:2])
            for k, png in enumerate(pics[:2]):
                sl.shapes.add_picture(io.BytesIO(png), Inches(5.9), top + h * k, height=Emu(int(h * 0.98)))
        if s.table is not None and not s.table.empty and not pics:
            _add_table(sl, s.table, Inches(0.5), top + Inches(0.3 + 0.45 * len(s.sentences)), Inches(12.3))
        if s.notes:
            nb = sl.shapes.add_textbox(Inches(0.5), Inches(6.85), Inches(12.3), Inches(0.5))
            nb.text_frame.word_wrap = True
            nb.text_frame.text = s.notes[:600]
            nb.text_frame.paragraphs[0].font.size = Pt(9)
            sl.notes_slide.notes_text_frame.text = s.notes
    path = Path(path)
    prs.save(path)
    return path


def _add_table(slide, df: pd.DataFrame, left, top, width) -> None:
    from pptx.util import Inches, Pt

    df = df.head(12)
    rows, cols = len(df) + 1, len(df.columns)
    shape = slide.shapes.add_table(rows, cols, left, top, width, Inches(0.3) * rows)
    t = shape.table
    for j, c in enumerate(df.columns):
        t.cell(0, j).text = str(c)
    for i, (_, r) in enumerate(df.iterrows(), start=1):
        for j, v in enumerate(r):
            t.cell(i, j).text = _fmt(v)
    for cell in (t.cell(i, j) for i in range(rows) for j in range(cols)):
        for p in cell.text_frame.paragraphs:
            p.font.size = Pt(11)


def _fmt(v) -> str:
    if isinstance(v, float):
        if v != v:
            return "–"
        return f"{v:,.2f}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, (pd.Timestamp, dt.date)):
        return str(v)[:10]
    return str(v)


# ----------------------------------------------------------------------------- HTML and PDF


_CSS = """
body{font-family:DejaVu Sans,Arial,sans-serif;max-width:1100px;margin:2em auto;color:#222;line-height:1.45}
h1{color:#2b5d8a} h2{border-bottom:2px solid #2b5d8a;padding-bottom:4px;margin-top:2em}
section{page-break-before:always} .notes{font-size:.8em;color:#666}
table{border-collapse:collapse;font-size:.85em;margin:1em 0} td,th{border:1px solid #ccc;padding:3px 8px}
img{max-width:100%}
"""


def to_html(slides: list[Slide], path: str | os.PathLike, *, title: str, subtitle: str,
            static: bool = False) -> Path:
    """A self-contained HTML document. Interactive charts embed plotly.js inline (no network);
    ``static=True`` embeds PNG images instead (used for the PDF)."""
    images = render_images(slides) if static else {}
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p>"]
    js_included = False
    for i, s in enumerate(slides):
        parts.append(f"<section><h2>{html.escape(s.title)}</h2><ul>")
        parts += [f"<li>{html.escape(x)}</li>" for x in s.sentences]
        parts.append("</ul>")
        if static:
            parts += [f"<img alt='{html.escape(s.title)} chart' src='data:image/png;base64,"
                      f"{base64.b64encode(png).decode()}'>" for png in images.get(i, [])]
        else:
            for f in s.figures:
                parts.append(f.to_html(full_html=False, include_plotlyjs=not js_included,
                                       config={"displaylogo": False}))
                js_included = True
        if s.table is not None and not s.table.empty:
            parts.append(s.table.head(25).map(_fmt).to_html(index=False, escape=True))
        if s.notes:
            parts.append(f"<p class='notes'>{html.escape(s.notes)}</p>")
        parts.append("</section>")
    parts.append("</body></html>")
    path = Path(path)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def chromium() -> str:
    try:
        return browser()
    except RendererMissing:
        raise RendererMissing(f"the PDF {RENDERER_HELP}") from None


def to_pdf(slides: list[Slide], path: str | os.PathLike, *, title: str, subtitle: str) -> Path:
    """Print the static HTML document to PDF with headless chromium."""
    path = Path(path).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        doc = to_html(slides, Path(tmp) / "update.html", title=title, subtitle=subtitle, static=True)
        cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
               f"--user-data-dir={tmp}/profile", "--no-pdf-header-footer", f"--print-to-pdf={path}",
               doc.as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if not path.exists() or path.stat().st_size == 0:
            raise RuntimeError(f"chromium did not write the PDF: {proc.stderr.strip()[-300:]}")
    return path


def write(slides: list[Slide], fmt: str, path: str | os.PathLike, *, title: str, subtitle: str) -> Path:
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    writer = {"pptx": to_pptx, "html": to_html, "pdf": to_pdf}[fmt]
    return writer(slides, path, title=title, subtitle=subtitle)


def generate(db, fmt: str, out, filters, *, department: str | None = None, engine: str | None = None,
             lake=None) -> Path:
    """Build the update from the store and write it (used by the CLI and the app's download button).

    ``engine`` ``spark`` reads the lake ``lake`` (or ``db`` given as the lake, as the app does;
    default ``$CX_LAKE``) on Spark instead of the DuckDB file ``db``."""
    from cxmetrics.story import narrative as story

    if engines.engine_name(engine) == "spark":
        lake = lake or db
    with engines.connect(engine, lake=lake, db=db) as con:
        slides, title, subtitle = story.build(con, filters, department_name=department)
    return write(slides, fmt, out, title=title, subtitle=subtitle)


def register_cli(sub, parents) -> None:
    p = sub.add_parser("report", parents=parents[1:], help="the executive update as a deck, HTML or PDF")
    p.add_argument("--db", help="DuckDB file (default $CX_DB or data/cx.duckdb)")
    engines.add_arguments(p)
    p.add_argument("--format", choices=FORMATS, default="pptx")
    p.add_argument("--out", required=True, help="output file")
    p.add_argument("--period", help="shorthand for --from/--to: YYYY, YYYY-Qn or YYYY-MM")
    p.add_argument("--dept", dest="report_department", help="a department's update instead of the company's")
    p.set_defaults(func=_cli)


def period_bounds(period: str) -> tuple[dt.date, dt.date]:
    """'2025', '2025-Q3' or '2025-07' to (first day, last day).

    >>> period_bounds("2025-Q3")
    (datetime.date(2025, 7, 1), datetime.date(2025, 9, 30))
    """
    import calendar

    p = period.strip().upper()
    try:
        if len(p) == 4:
            y = int(p)
            return dt.date(y, 1, 1), dt.date(y, 12, 31)
        if "-Q" in p:
            y, q = int(p[:4]), int(p[-1])
            m = 3 * (q - 1) + 1
            return dt.date(y, m, 1), dt.date(y, m + 2, calendar.monthrange(y, m + 2)[1])
        y, m = int(p[:4]), int(p[5:7])
        return dt.date(y, m, 1), dt.date(y, m, calendar.monthrange(y, m)[1])
    except (ValueError, IndexError):
        raise ValueError(f"--period must look like 2025, 2025-Q3 or 2025-07, not {period!r}") from None


def _cli(args) -> int:
    from cxmetrics.core.output import filters_from_args

    f = filters_from_args(args)
    if args.period:
        if args.date_from or args.date_to or getattr(args, "date_range", None):
            raise ValueError("give --period or --from/--to/--range, not both")
        lo, hi = period_bounds(args.period)
        f = f.with_(date_from=lo, date_to=hi)
    dept = args.report_department or (f.scope.departments[0] if f.scope.departments else None)
    if f.scope.restricted and not dept:
        raise ValueError(f"{f.scope.describe()}: give the department's report with --department NAME")
    try:
        path = generate(args.db, args.format, args.out, f, department=dept, engine=args.engine, lake=args.lake)
    except RendererMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    return 0
