"""Server time of one page rerun, and where it goes (issue 19 item 16).

Runs every page of the app in Streamlit's AppTest (the script runs in this process, as on the
server, without the browser and the websocket) on a demo store, once cold (caches empty) and then
``--reruns`` times warm (every result cached, as for a second visitor or a widget change), and
splits the warm rerun's CPU time with cProfile into:

* ``figures``: ``ui.chart``, i.e. ``st.plotly_chart`` validating each figure and serialising it to
  JSON (building the figure in ``cxmetrics.charts`` happens before and is not counted);
* ``tables``: ``ui.table``, i.e. ``st.dataframe``'s Arrow conversion and the download buttons;
* ``exports``: the part of ``tables`` spent building CSV and Excel bytes (``cxmetrics.exports``);
* ``results``: ``ui.compute`` (a cache hit when warm: hashing the key and unpickling the result).

Usage: ``python scripts/rerun_bench.py [--db FILE] [--customers N] [--reruns K] [--json]``.
With no ``--db`` a demo company of ``--customers`` customers is built in a temporary folder.
``cold_s`` and ``warm_s`` are CPU seconds of this process (``time.process_time``, the median of
the warm reruns); the parts are wall seconds of the extra timed rerun (``timed_wall_s``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: label -> (module, attribute) of the functions whose time is counted (wrapped with a timer; the
#: script runs in AppTest's own thread, so a profiler in this thread would see nothing).
PARTS = {
    "figures": (("cxmetrics.ui", "chart"),),  # st.plotly_chart: validate the figure, serialise it to JSON
    "tables": (("cxmetrics.ui", "table"),),  # st.dataframe's Arrow conversion and the CSV/Excel downloads
    "exports": (("cxmetrics.exports", "to_csv_bytes"), ("cxmetrics.exports", "to_xlsx_bytes")),
    "results": (("cxmetrics.ui", "compute"),),  # a cache hit when warm: key hashing and unpickling
}
SPENT: dict[str, float] = dict.fromkeys(PARTS, 0.0)


def _instrument() -> None:
    import functools
    import importlib

    for label, targets in PARTS.items():
        for module, name in targets:
            mod = importlib.import_module(module)
            fn = getattr(mod, name)
            if getattr(fn, "_timed", False):
                continue

            def timed(*args, __fn=fn, __label=label, **kwargs):
                t0 = time.perf_counter()
                try:
                    return __fn(*args, **kwargs)
                finally:
                    SPENT[__label] += time.perf_counter() - t0

            timed = functools.wraps(fn)(timed)
            timed._timed = True
            setattr(mod, name, timed)


def _app(db: Path):
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.testing.v1 import AppTest

    original = PagesManager.__init__

    def init(self, *args, **kwargs):  # as tests/conftest.py: route every run through app.py
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    if not getattr(PagesManager.__init__, "_routed", False):
        init._routed = True
        PagesManager.__init__ = init
    os.environ["CX_DB"] = str(db)
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)


def measure(db: Path, reruns: int = 3) -> dict:
    import streamlit as st

    from cxmetrics import roles

    _instrument()
    rows = {}
    for spec in sorted(roles.PAGES, key=lambda p: p.path):
        st.cache_data.clear()
        at = _app(db)
        t0 = time.process_time()
        at.run()
        at.switch_page(spec.path).run()
        cold = time.process_time() - t0
        warm = []
        for _ in range(reruns):
            t0 = time.process_time()
            at.run()
            warm.append(time.process_time() - t0)
        for k in SPENT:
            SPENT[k] = 0.0
        t0 = time.perf_counter()
        at.run()
        timed = time.perf_counter() - t0
        rows[spec.title] = {
            "cold_s": round(cold, 3), "warm_s": round(statistics.median(warm), 3), "timed_wall_s": round(timed, 3),
            **{f"{k}_s": round(v, 3) for k, v in SPENT.items()},
            "figures": len(at.get("plotly_chart")), "tables": len(at.dataframe),
            "exception": [e.value for e in at.exception][:1],
        }
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", help="store to read (default: build a demo company)")
    p.add_argument("--customers", type=int, default=10_000)
    p.add_argument("--reruns", type=int, default=3)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(args.db) if args.db else Path(tmp) / "demo.duckdb"
        if not args.db:
            from cxmetrics import demo

            demo.build(str(db), customers=args.customers, seed=7)
        rows = measure(db, args.reruns)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    cols = ("cold_s", "warm_s", "timed_wall_s", "figures_s", "tables_s", "exports_s", "results_s", "figures", "tables")
    print(f"{'page':28}" + "".join(f"{c:>15}" for c in cols))
    for title, r in rows.items():
        print(f"{title:28}" + "".join(f"{r[c]:>15}" for c in cols) + (f"  EXCEPTION {r['exception']}" if r["exception"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
