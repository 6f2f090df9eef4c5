"""Start the dashboard: ``streamlit run app.py`` (arguments after the script are Streamlit's), with
the libraries the first page needs imported in a background thread meanwhile.

Streamlit runs ``app.py`` only when the first browser connects. Between the server answering and
that first run the browser loads Streamlit's page (0.6–0.7 s on the bench's machine), and the
server is idle; the first run then spent about 0.5 s importing pandas, plotly and the library
before computing anything (``cxmetrics bench``'s app cold start). Importing them here, while the
server starts and the browser loads, takes that out of the first page's time. Nothing is computed
or cached here beyond what importing does: the first run still reads the store and fills the
caches.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _preload() -> None:
    try:
        sys.path.insert(0, str(ROOT))
        import cxmetrics.ui  # noqa: F401  (pandas, the store, the roles)
        from cxmetrics import charts, store, views  # noqa: F401

        charts.go.Figure  # noqa: B018  (plotly.graph_objects, with the house template)
        store.incomplete_reason(os.environ.get("CX_DB"))  # the app's first check: a stat from then on
    except Exception:  # noqa: BLE001  (the first run imports them itself and reports any error)
        pass


def main() -> int:
    threading.Thread(target=_preload, name="cx-preload", daemon=True).start()
    from streamlit.web import cli

    sys.argv = ["streamlit", "run", str(ROOT / "app.py"), *sys.argv[1:]]
    return cli.main()


if __name__ == "__main__":
    sys.exit(main())
