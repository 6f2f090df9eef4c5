"""cxmetrics: the CX-to-P&L metrics library behind the dashboard, CLI, notebook and deck.

Layers, each importing only those before it (``tests/test_layers.py`` enforces it):
``core`` (results, filters, roles, how results print) ← ``store`` (connection, schema, executor,
relations, summaries, finance assumptions) ← ``metrics`` ← ``commit`` and ``registers`` (importer,
initiatives, demo, backup) ← ``views`` (one module per page, and the page registry) ← ``story``
and ``charts`` ← ``cli`` and ``ui`` (the only Streamlit-aware module) ← ``tools`` (bench, docs:
tooling outside the library, imported only by ``__main__``). See ../README.md ("Architecture").

The modules lived flat in this package before; ``from cxmetrics import nps`` and
``import cxmetrics.summaries`` keep working through :data:`MOVED` (the notebook and older scripts
use them): the old name is the same module object as the new one.
"""

import importlib
import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"

#: Old flat module name → where it lives now.
MOVED = {
    "results": "core.results", "filters": "core.filters", "roles": "core.roles", "identity": "core.identity",
    "output": "core.output", "schema": "store.schema", "relations": "store.relations",
    "summaries": "store.summaries", "assumptions": "store.assumptions", "nps": "metrics.nps",
    "drivers": "metrics.drivers", "representativeness": "metrics.representativeness", "voice": "views.voice",
    "churn": "metrics.churn", "clv": "metrics.clv", "btyd": "metrics.btyd", "wallet": "metrics.wallet",
    "alignment": "metrics.alignment", "complaints": "metrics.complaints", "impact": "metrics.impact",
    "bridge": "metrics.bridge", "pnl": "metrics.pnl", "finance": "metrics.finance",
    "department": "views.department", "importer": "registers.importer", "initiatives": "registers.initiatives",
    "demo": "registers.demo", "backup": "registers.backup", "nps_page": "views.nps_page",
    "summary": "views.executive", "report": "story.report", "exports": "story.exports", "docs": "tools.docs",
    "bench": "tools.bench", "lake": "registers.lake", "engines": "store.engines",
    "markup": "core.markup",
    "faults": "store.faults",
    "stubs": "store.stubs",
    "alignment_money": "metrics.alignment_money",
    "break_even": "metrics.break_even",
    "btyd_intervals": "metrics.btyd_intervals",
    "clustered": "metrics.clustered",
    "inference": "metrics.inference",
    "moved": "metrics.moved",
    "retention": "metrics.retention",
    "scores": "metrics.scores",
    "stopwords": "metrics.stopwords",
    "survival": "metrics.survival",
    "text": "metrics.text",
    "theme_cost": "metrics.theme_cost",
    "themes": "metrics.themes",
    "threshold": "metrics.threshold",
    "demo_voice": "registers.demo_voice",
    "import_preview": "registers.import_preview",
    "import_rows": "registers.import_rows",
    "import_fast": "registers.import_fast",
    "import_digest": "registers.import_digest", "import_files": "registers.import_files",
    "import_values": "registers.import_values", "import_checks": "registers.import_checks", "import_types": "registers.import_types",
    "lazy": "core.lazy",
    "parsing": "registers.parsing",
    "readers": "registers.readers",
}


class _OldNames(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Import ``cxmetrics.<old name>`` as the module at its new place (one module object)."""

    def find_spec(self, fullname, path=None, target=None):
        name = fullname.removeprefix(__name__ + ".")
        if fullname.startswith(__name__ + ".") and name in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return importlib.import_module(f"{__name__}.{MOVED[spec.name.removeprefix(__name__ + '.')]}")

    def exec_module(self, module):
        pass  # already executed at its new place


if not any(isinstance(f, _OldNames) for f in sys.meta_path):
    sys.meta_path.insert(0, _OldNames())

from cxmetrics import commit as _commit  # noqa: E402,F401  wires the store's commit step (summaries, fits)
