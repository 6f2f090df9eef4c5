"""README sections generated from code, so the docs cannot drift (``python -m cxmetrics docs``).

Each section lives in the README between ``<!-- BEGIN name -->`` and ``<!-- END name -->``.
``tests/test_docs.py`` fails when a section is stale; ``python -m cxmetrics docs --write``
regenerates them.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def _contract() -> str:
    from cxmetrics.store.schema import contract_markdown

    return contract_markdown()


def _truths() -> str:
    from cxmetrics.registers.demo import truths_markdown

    return truths_markdown()


def _cli(parser=None) -> str:
    """One row per CLI command with its help line (``parser``: the CLI's, which the caller passes in
    — this module imports no CLI)."""
    if parser is None:
        raise ValueError("the cli section needs the CLI's parser: stale_sections(text, parser=…)")
    rows = ["| command | what it does |", "| --- | --- |"]
    for action in parser._subparsers._group_actions:  # argparse keeps sub-commands here
        for choice in action._choices_actions:
            rows.append(f"| `python -m cxmetrics {choice.dest}` | {choice.help} |")
            sub = action.choices[choice.dest]
            for a2 in getattr(sub, "_subparsers", None)._group_actions if sub._subparsers else []:
                for c2 in getattr(a2, "_choices_actions", []):
                    rows.append(f"| `python -m cxmetrics {choice.dest} {c2.dest}` | {c2.help} |")
    return "\n".join(rows)


#: name -> generator of the section's markdown
SECTIONS: dict[str, Callable[[], str]] = {
    "contract": _contract,
    "truths": _truths,
    "cli": _cli,
}


def render(text: str, names: tuple[str, ...] | None = None, parser=None) -> str:
    """The README text with the named (default: all) generated sections refreshed."""
    for name in names or tuple(SECTIONS):
        pattern = re.compile(rf"(<!-- BEGIN {name} -->\n).*?(<!-- END {name} -->)", re.S)
        if not pattern.search(text):
            raise ValueError(f"README has no section markers for {name!r}")
        body = (SECTIONS[name](parser) if name == "cli" else SECTIONS[name]()).rstrip("\n") + "\n"
        text = pattern.sub(lambda m, body=body: m.group(1) + body + m.group(2), text)
    return text


def stale_sections(text: str, parser=None) -> list[str]:
    return [name for name in SECTIONS if render(text, (name,), parser) != text]


def cmd_docs(args: argparse.Namespace) -> int:
    text = README.read_text(encoding="utf-8")
    if args.write:
        README.write_text(render(text, parser=args.parser), encoding="utf-8")
        print(f"regenerated {', '.join(SECTIONS)} in {README}")
        return 0
    stale = stale_sections(text, args.parser)
    if stale:
        print(f"stale README sections: {', '.join(stale)} (run `python -m cxmetrics docs --write`)")
        return 1
    print("README sections are up to date")
    return 0


def register_cli(sub, parents) -> None:
    p = sub.add_parser("docs", help="check or regenerate the README's generated sections")
    p.add_argument("--write", action="store_true", help="rewrite the sections in README.md")
    p.set_defaults(func=cmd_docs)
