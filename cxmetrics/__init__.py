"""cxmetrics: the CX-to-P&L metrics library behind the dashboard, CLI, notebook and deck.

Only :mod:`cxmetrics.ui` imports Streamlit. See ../README.md and DESIGN.md for the architecture.
"""

__version__ = "0.1.0"

from . import commit as _commit  # noqa: E402,F401  wires the store's commit step (summaries, fits)
