"""The README's generated sections (data contract, CLI, planted truths …) are never stale, and the
tool commands (bench, docs) are listed and documented the same whether or not their module is loaded."""

import subprocess
import sys

from cxmetrics import tools
from cxmetrics.tools import docs


def test_readme_sections_are_current():
    text = docs.README.read_text(encoding="utf-8")
    assert docs.stale_sections(text, tools.build_parser()) == [], "run `python -m cxmetrics docs --write`"


def test_render_detects_a_stale_section():
    text = docs.README.read_text(encoding="utf-8")
    broken = text.replace("| customers |", "| clients |", 1)
    assert "contract" in docs.stale_sections(broken, tools.build_parser())


def test_tool_commands_are_listed_with_their_own_help_lines():
    listed = docs._cli(tools.build_parser())
    loaded = docs._cli(tools.build_parser(load=tuple(tools.COMMANDS)))
    assert listed == loaded
    for name in tools.COMMANDS:
        assert f"| `python -m cxmetrics {name}` |" in listed


def test_the_tools_are_imported_only_when_their_command_runs():
    probe = ("import sys; from cxmetrics import tools; tools.build_parser(); "
             "print(sorted(m for m in sys.modules if m.startswith('cxmetrics.tools.')))")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
    r = subprocess.run([sys.executable, "-m", "cxmetrics", "docs", "--help"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and "--write" in r.stdout, r.stderr
