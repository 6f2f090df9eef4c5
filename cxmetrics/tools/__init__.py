"""Tooling outside the library: the benchmark (``bench``) and the README generator (``docs``).

Nothing in ``cxmetrics`` imports this package: it sits above ``cli`` and ``ui`` and only the
``python -m cxmetrics`` entry point (``__main__``) imports it (``tests/test_layers.py``). The entry
point lists the tool commands beside the library's own and imports a tool's module only when its
command runs: until then a command is its name and help line (:data:`COMMANDS`).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from cxmetrics import cli

#: command -> (module, help line); the module is imported only when its command runs (its own
#: ``register_cli`` then adds the command with its options; the help lines must match, a test checks)
COMMANDS: dict[str, tuple[str, str]] = {
    "docs": ("cxmetrics.tools.docs", "check or regenerate the README's generated sections"),
    "bench": ("cxmetrics.tools.bench", "measure every performance budget: pages under every filter, imports, start-up, load, beside pandas, Polars and a DuckDB floor"),
}


def _listed(name: str, help_line: str):
    def register(sub) -> None:
        sub.add_parser(name, help=help_line, add_help=False)  # never run: main() loads a command it runs
    return register


def _loaded(module: str):
    def register(sub) -> None:
        importlib.import_module(module).register_cli(sub, [])
    return register


def build_parser(*, load: tuple[str, ...] = ()) -> argparse.ArgumentParser:
    """The CLI's parser with the tool commands: those in ``load`` with their options (their module
    imported), the others by name and help line only."""
    return cli.build_parser(extra=[_loaded(module) if name in load else _listed(name, help_line)
                                   for name, (module, help_line) in COMMANDS.items()])


def main(argv: list[str] | None = None) -> int:
    """``python -m cxmetrics``: the library's commands and the tools (a tool imported only when it runs)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)  # the top level has no options but -h
    return cli.main(argv, parser=build_parser(load=(command,) if command in COMMANDS else ()))
