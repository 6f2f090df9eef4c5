"""The README's generated sections (data contract, CLI, planted truths …) are never stale."""

from cxmetrics.cli import build_parser, docs


def test_readme_sections_are_current():
    text = docs.README.read_text(encoding="utf-8")
    assert docs.stale_sections(text, build_parser()) == [], "run `python -m cxmetrics docs --write`"


def test_render_detects_a_stale_section():
    text = docs.README.read_text(encoding="utf-8")
    broken = text.replace("| customers |", "| clients |", 1)
    assert "contract" in docs.stale_sections(broken, build_parser())
