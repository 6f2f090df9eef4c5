"""The bench's budgets, checks and report: the terminal table and the README's Performance figures.

Every budget of the performance issue (and the earlier baseline/floor ones) is a check with
``measured``, ``budget`` and ``met``; a budget the run did not measure is still listed, with
``met`` None and the reason ("not run: --skip-import"), so it never silently disappears.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VIEW_NAMES = ("unfiltered", "segment", "region", "last 12 months", "one quarter", "custom range",
              "department scope")
#: The check of the weekly export's shape appended to the whole store (``bench_load._csv_next``).
_NEXT_CHECK = "append of the next {rows} answers to the whole store: summary refresh (s)"


def publish(res: dict, out: Path, render) -> int:
    """Write a run's JSON to ``out`` and print ``render(res)`` (the DuckDB and the Spark bench)."""
    import json

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2, default=str))
    print(render(res))
    print(f"\nwritten to {out}")
    return 0


def budgets(scale: float = 1.0) -> dict:
    """Issue 21's budgets at this scale: at 1× every page < 0.5 s under every filter, 1 GiB; at the
    ten-times scale filtered pages < 1 s, 2 GiB per page, the import 10 s per 10M rows."""
    big = scale > 1
    return {"page_cold_s": 0.5, "page_filtered_s": 1.0 if big else 0.5, "page_warm_s": 0.25,
            "app_memory_mib": 2048 if big else 1024, "baseline_speedup": 5.0, "baseline_memory_ratio": 0.2,
            "floor_ratio": 3.0, "import_s": 10.0 * max(scale, 1.0), "import_memory_mib": 1024,
            "reimport_s": 2.0, "append_summaries_s": 1.0, "help_s": 0.5, "status_s": 0.5,
            "metric_overhead_s": 1.0, "cold_start_s": 2.0, "discovery_s": 60.0, "discovery_verbatims": 1_000_000}


def _budgets(res: dict) -> dict:
    return {**budgets(res.get("scale_factor", 1.0)), **res.get("budgets", {})}


def view_pages(res: dict, view: str) -> dict | None:
    """``title -> row`` of a view (None: not run); copes with older JSON (views without "pages")."""
    if view == "unfiltered":
        return res.get("pages") or None
    v = res.get("views", {}).get(view)
    if v is None:
        return None
    return v.get("pages", v) if isinstance(v, dict) else None


def _why_skipped(res: dict, key: str) -> str:
    reason = res.get("skipped", {}).get(key)
    return f"not run: {reason}" if reason else "not run"


def checks(res: dict) -> list[dict]:
    """Every budget against the measurement: check, group, measured, budget, met (None: not run), detail."""
    b = _budgets(res)
    out: list[dict] = []

    def add(group, name, value, budget, met, detail=None):
        row = {"group": group, "check": name, "measured": value, "budget": budget,
               "met": None if met is None else bool(met)}
        if detail:
            row["detail"] = detail
        out.append(row)

    worst_mem = None
    for view in VIEW_NAMES:
        pages = view_pages(res, view)
        limit = b["page_cold_s"] if view == "unfiltered" else b["page_filtered_s"]
        if pages is None:
            for kind in ("uncached", "cached"):
                add("pages", f"every page {kind}, {view}", "not run", f"< {limit if kind == 'uncached' else b['page_warm_s']} s",
                    None, _why_skipped(res, f"view {view}"))
            continue
        for title, row in pages.items():
            if "error" in row:
                add("page", f"{title} ({view}): computes", row["error"], "no error", False)
                continue
            worst_mem = max(worst_mem or 0.0, row.get("peak_mib", 0.0))
            add("page", f"{title} ({view}): uncached", round(row["uncached_s"], 3), f"< {limit} s",
                row["uncached_s"] < limit)
            if "warm_s" in row:
                add("page", f"{title} ({view}): cached", round(row["warm_s"], 4), f"< {b['page_warm_s']} s",
                    row["warm_s"] < b["page_warm_s"])
        for kind in ("uncached", "cached"):
            rows = [c for c in out if c["group"] == "page" and f"({view}): {kind}" in c["check"]]
            errors = [c for c in out if c["group"] == "page" and f"({view}): computes" in c["check"]]
            budget = f"< {limit} s" if kind == "uncached" else f"< {b['page_warm_s']} s"
            if not rows:
                add("pages", f"every page {kind}, {view}", "not measured", budget, None)
                continue
            worst = max(rows, key=lambda c: c["measured"])
            met = sum(c["met"] for c in rows)
            add("pages", f"every page {kind}, {view}", worst["measured"], budget,
                met == len(rows) and not errors,
                f"{met} of {len(rows) + len(errors)} pages met; worst {worst['check'].split(' (')[0]}")
    add("pages", "peak memory of any page's process (MiB)", round(worst_mem) if worst_mem else "not run",
        f"< {b['app_memory_mib']}", None if worst_mem is None else worst_mem < b["app_memory_mib"])

    floor = (res.get("floor") or {}).get("seconds")
    for title, row in res.get("pages", {}).items():
        if "error" in row:
            continue
        if floor:
            ratio = row["uncached_s"] / floor
            add("compare", f"{title}: ours / floor", round(ratio, 1), f"≤ {b['floor_ratio']}", ratio <= b["floor_ratio"])
        base = row.get("baseline")
        if base and "seconds" in base:
            speed = base["seconds"] / row["uncached_s"]
            mem = row["work_mib"] / max(base["work_mib"], 1)
            add("compare", f"{title}: pandas baseline / ours (time)", round(speed, 1), f"≥ {b['baseline_speedup']}",
                speed >= b["baseline_speedup"])
            add("compare", f"{title}: ours / pandas baseline (memory used by the call)", round(mem, 2),
                f"≤ {b['baseline_memory_ratio']}", mem <= b["baseline_memory_ratio"])

    imp = res.get("import")
    rows = f"{imp['rows']:,}" if imp and imp.get("rows") else "the"
    if not imp:
        for name, budget in ((f"import of {rows} rows (s)", f"< {b['import_s']:g}"),
                             ("import peak memory (MiB)", f"< {b['import_memory_mib']}"),
                             ("unchanged re-import (s)", f"< {b['reimport_s']:g}"),
                             ("append of 100,000 rows: summary refresh (s)", f"< {b['append_summaries_s']:g}"),
                             ("append of 100,000 rows to the whole store: summary refresh (s)",
                              f"< {b['append_summaries_s']:g}"),
                             (_NEXT_CHECK.format(rows="100,000"), f"< {b['append_summaries_s']:g}")):
            add("import", name, "not run", budget, None, _why_skipped(res, "import"))
    elif "first" not in imp:  # older JSON: one import only
        add("import", f"import of {rows} rows (s)", round(imp.get("seconds", 0), 1), f"< {b['import_s']:g}",
            imp.get("seconds", 1e9) < b["import_s"])
        if imp.get("peak_mib"):
            add("import", "import peak memory (MiB)", round(imp["peak_mib"]), f"< {b['import_memory_mib']}",
                imp["peak_mib"] < b["import_memory_mib"])
        for name, budget in (("unchanged re-import (s)", f"< {b['reimport_s']:g}"),
                             ("append of 100,000 rows: summary refresh (s)", f"< {b['append_summaries_s']:g}"),
                             ("append of 100,000 rows to the whole store: summary refresh (s)",
                              f"< {b['append_summaries_s']:g}"),
                             (_NEXT_CHECK.format(rows="100,000"), f"< {b['append_summaries_s']:g}")):
            add("import", name, "not run", budget, None, "not measured by this run's bench version")
    else:
        first, again = imp["first"], imp["unchanged"]
        if "error" in first:
            add("import", f"import of {rows} rows (s)", first["error"], f"< {b['import_s']:g}", False)
        else:
            detail = f"a {imp.get('csv_mib', 0):,.0f} MiB CSV"
            if first.get("seconds_validating") is not None and first.get("seconds_summaries") is not None:
                detail += (f"; {first['seconds_validating']:.1f} s reading and validating, "
                           f"{first['seconds_summaries']:.1f} s rebuilding summaries, the rest process start-up and writing")
            if first.get("refresh_steps"):
                detail += f"; slowest summaries: {_steps(first['refresh_steps'], 4)}"
            detail += _warned(first)
            add("import", f"import of {rows} rows (s)", round(first["seconds"], 1), f"< {b['import_s']:g}",
                first["seconds"] < b["import_s"], detail)
            peak = first.get("peak_mib")
            add("import", "import peak memory (MiB)", round(peak) if peak else "not measured",
                f"< {b['import_memory_mib']}", None if peak is None else peak < b["import_memory_mib"])
        if "error" in again:
            add("import", "unchanged re-import (s)", again["error"], f"< {b['reimport_s']:g}", False)
        else:
            add("import", "unchanged re-import (s)", round(again["seconds"], 2), f"< {b['reimport_s']:g}",
                again["seconds"] < b["reimport_s"],
                f"status {again.get('status')}, {again.get('inserted', '?')} inserted, {again.get('updated', '?')} updated, "
                f"summaries {again.get('seconds_summaries') or 0:.2f} s" + _warned(again))
        n = f"{imp.get('append_rows', 100_000):,}"
        for key, name, what in (
                ("append", f"append of {n} rows: summary refresh (s)",
                 "into the first import's store (customers and responses): copies of the bench store's oldest "
                 "answers as they were dated (a backfill)"),
                ("append_full", f"append of {n} rows to the whole store: summary refresh (s)",
                 "a copy of the bench store (every table), the same rows"),
                ("append_next_full", _NEXT_CHECK.format(rows=n),
                 f"a copy of the bench store (every table); its latest {n} answers moved on by the days they "
                 "span (a weekly export's shape)")):
            row = imp.get(key)
            if row is None:
                add("import", name, "not run", f"< {b['append_summaries_s']:g}", None,
                    "not measured by this run's bench version")
            elif "error" in row:
                add("import", name, row["error"], f"< {b['append_summaries_s']:g}", False)
            else:
                s = row.get("seconds_summaries")
                add("import", name, round(s, 2) if s is not None else "not reported", f"< {b['append_summaries_s']:g}",
                    None if s is None else s < b["append_summaries_s"], f"{what}; whole command {row['seconds']:.1f} s"
                    + (f"; slowest steps: {_steps(row['refresh_steps'])}" if row.get("refresh_steps") else "")
                    + _warned(row))

    cli = res.get("cli")
    for key, name, budget in (("help", "`--help` (s)", b["help_s"]), ("status", "`status` (s)", b["status_s"]),
                              ("metric", "metric command's fixed overhead (s)", b["metric_overhead_s"])):
        row = (cli or {}).get(key)
        if row is None:
            add("startup", name, "not run", f"< {budget:g}", None, _why_skipped(res, "startup"))
        elif "error" in row:
            add("startup", name, row["error"], f"< {budget:g}", False)
        else:
            add("startup", name, round(row["seconds"], 2), f"< {budget:g}", row["seconds"] < budget,
                f"median of {len(row['runs'])} runs on the {res.get('demo_customers', 0):,}-customer demo store"
                if key != "help" else None)
    cs = res.get("app_cold_start")
    if cs is None:
        add("startup", "app cold start (s)", "not run", f"< {b['cold_start_s']}", None, _why_skipped(res, "startup"))
    else:
        secs = cs.get("seconds")
        detail = (f"server answering after {cs['health_s']:.2f} s, first page rendered {cs['first_page_s']:.2f} s later"
                  if secs is not None and cs.get("first_page_s") is not None
                  else cs.get("note") or cs.get("error"))
        if secs is None and cs.get("health_s") is not None:  # no browser: the server's answer only
            secs = cs["health_s"]
        add("startup", "app cold start (s)", round(secs, 2) if secs is not None else "failed", f"< {b['cold_start_s']}",
            secs is not None and secs < b["cold_start_s"], detail)
    _discovery_check(res, b, add)
    st = res.get("startup") or {}
    add("startup", "statsmodels imported at startup", st.get("statsmodels_imported", "not run"), "False",
        None if not st else st.get("statsmodels_imported") is False)
    return out


def _discovery_check(res: dict, b: dict, add) -> None:
    """Issue 22: theme discovery on 1M verbatims under 60 s. The bench store holds N verbatims: the
    budget is taken at N as 60 s × max(1, N / 1M) (the topic model is fitted on a fixed sample; the
    classification of every verbatim is linear in N), and the detail says N."""
    per = b.get("discovery_verbatims", 1_000_000)
    name = f"theme discovery on {per / 1e6:g}M verbatims (s)"
    d = res.get("discovery")
    if d is None:
        add("discovery", name, "not run", f"< {b['discovery_s']:g}", None, _why_skipped(res, "discovery"))
        return
    if "error" in d:
        add("discovery", name, d["error"], f"< {b['discovery_s']:g}", False)
        return
    n = d.get("verbatims") or 0
    budget = b["discovery_s"] * max(1.0, n / per)
    steps = ", ".join(f"{k[:-2]} {v:.1f}" for k, v in (d.get("steps_s") or {}).items())
    add("discovery", name, round(d["seconds"], 1), f"< {budget:.0f}", d["seconds"] < budget,
        f"`themes discover` on the bench store's {n:,} verbatims, budget scaled to them"
        + (f"; {steps} s" if steps else ""))


def _cell(row: dict | None, key: str, limit: float, fmt: str) -> str:
    if row is None:
        return "n/a"
    if "error" in row:
        return "error"
    v = row.get(key)
    if v is None:
        return "—"
    return format(v, fmt) + ("" if v < limit else " ✗")


def table(res: dict) -> str:
    """The terminal report: the page matrix, then every other budget, measured / budget / met (the
    per-page checks are in the JSON)."""
    lines = page_matrix(res) + ["", f"{'check':64} {'measured':>14} {'budget':>10}  met"]
    for c in res["checks"]:
        if c["group"] == "page":
            continue
        met = {True: "yes", False: "NO", None: "not run"}[c["met"]]
        lines.append(f"{c['check'][:64]:64} {str(c['measured'])[:14]:>14} {c['budget']:>10}  {met}")
    lines += ["", load_text(res)]
    return "\n".join(lines)


def load_text(res: dict) -> str:
    load = res.get("load")
    if not load:
        return f"load: {_why_skipped(res, 'load')}"
    if "error" in load:
        return f"load: error: {load['error']}"
    return "\n".join(f"load, {n} session(s): p50 {r.get('p50_s', float('nan')):.2f} s, p95 {r.get('p95_s', float('nan')):.2f} s, "
                     f"server CPU {r.get('server_cpu_per_page_s', float('nan')):.2f} s per page, {r['rendered']} pages rendered"
                     + (f", errors: {r['errors'][:1]}" if r.get("errors") else "")
                     for n, r in load["levels"].items())


def _met(c: dict) -> str:
    return {True: "yes", False: "**no**", None: "not run"}[c["met"]]


def page_matrix(res: dict) -> list[str]:
    """Uncached seconds of every page under every filter, with the worst cached time and peak memory."""
    b = _budgets(res)
    lines: list[str] = []
    titles = list(res.get("pages", {}))
    lines += [f"Uncached seconds per page under every filter (✗: over budget, {b['page_cold_s']} s unfiltered, "
              f"{b['page_filtered_s']} s filtered; n/a: a page the department role cannot open):", "",
              "| page | " + " | ".join(VIEW_NAMES) + " |", "| --- |" + " ---: |" * len(VIEW_NAMES)]
    for t in titles:
        cells = []
        for v in VIEW_NAMES:
            pages = view_pages(res, v)
            limit = b["page_cold_s"] if v == "unfiltered" else b["page_filtered_s"]
            cells.append("not run" if pages is None else _cell(pages.get(t), "uncached_s", limit, ".2f"))
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    for key, label, limit, fmt in (("warm_s", "cached s, worst page", b["page_warm_s"], ".4f"),
                                   ("peak_mib", "peak MiB, worst page", b["app_memory_mib"], ".0f")):
        cells = []
        for v in VIEW_NAMES:
            pages = view_pages(res, v)
            vals = [r[key] for r in (pages or {}).values() if key in r]
            cells.append("not run" if pages is None else (format(max(vals), fmt) + ("" if max(vals) < limit else " ✗"))
                         if vals else "—")
        lines.append(f"| *{label}* | " + " | ".join(cells) + " |")
    return lines


def readme_section(res: dict) -> str:
    """The README's measured figures (between ``<!-- BEGIN bench -->`` markers) from a run's JSON."""
    b = _budgets(res)
    m = res["machine"]
    floor = (res.get("floor") or {}).get("seconds")
    ds = res.get("dataset") or {}
    rec = ds.get("built", ds) if ds else {}
    built = (f"built in {rec['build_s']:.0f} s ({rec.get('demo_s', 0):.0f} s of it the demo company"
             + (f", {rec['themes_s']:.0f} s keeping the themes of {rec['verbatims']:,} verbatims" if "themes_s" in rec else "")
             + ")" + (f", reused from that build of {rec['built_at']}" if ds.get("reused") and "built_at" in rec else
                      ", reused" if ds.get("reused") else "")) if "build_s" in rec else \
        (f"finished after an interrupted build ({rec['finish_s']:.0f} s, {rec['themes_s']:.0f} s of it keeping the "
         f"themes of {rec['verbatims']:,} verbatims; the first run's time not recorded)"
         + (f", reused from {rec['built_at']}" if ds.get("reused") else "")) if rec.get("finished") else \
        "reused from an earlier build (not recorded)" if ds else "build not recorded"
    if ds.get("summaries_rebuilt_s") is not None:
        built += f" (its summaries rebuilt to this version's definitions first, {ds['summaries_rebuilt_s']:.0f} s)"
    if ds.get("theme_cells_s") is not None:
        built += f" (its kept theme run's day and per-department cells added first, {ds['theme_cells_s']:.0f} s)"
    lines = (["**A partial run** (interrupted): what it did not reach is shown as not run.", ""] if res.get("partial")
             else [])
    lines += [f"Machine: {m['cpus']} cores, {m['memory_gib']} GiB, {m['platform']}, Python {m['python']}"
             + (f", load average {m['load_avg_1m']} at the start" if "load_avg_1m" in m else "")
             + (f" and {res['load_avg_1m_end']} at the end" if "load_avg_1m_end" in res else "")
             + f". Scale {res.get('scale_factor', 1):g}×: " + ", ".join(f"{v:,} {k}" for k, v in res["scale"].items())
             + f"; dataset {built}" + (f", file {ds['file_mib'] / 1024:.1f} GiB" if ds.get("file_mib", 0) >= 1024 else
                f", file {ds['file_mib']} MiB" if ds.get("file_mib") else "")
             + (f"; floor {floor:.2f} s." if floor else ".")
             + (f" Disk free: {res['disk_free_gib_before']} GiB before the run, {res['disk_free_gib_after']} GiB after."
                if "disk_free_gib_after" in res else ""), ""]
    checks_ = res["checks"]
    lines += page_matrix(res)
    labels = [f"{v}: {res['views'][v]['label']}" for v in VIEW_NAMES[1:] if isinstance(res.get("views", {}).get(v), dict)
              and "label" in res["views"][v]]
    if labels:
        lines += ["", "Filters: " + "; ".join(labels) + "."]
    # every budget
    lines += ["", "| budget | measured | budget | met |", "| --- | ---: | ---: | --- |"]
    lines += [f"| {c['check']}{' (' + c['detail'] + ')' if c.get('detail') else ''} | {c['measured']} | {c['budget']} | {_met(c)} |"
              for c in checks_ if c["group"] in ("pages", "import", "startup", "discovery")]
    # side by side
    rows = [(t, r) for t, r in res.get("pages", {}).items() if r.get("baseline") or r.get("polars")]
    if rows:
        lines += ["", "Side by side, the same page computations (seconds; memory: the call's own MiB):", "",
                  "| page | ours uncached | pandas baseline | Polars lazy streaming | DuckDB floor |",
                  "| --- | ---: | ---: | ---: | ---: |"]
        for t, r in rows:
            def fig(x):
                return x.get("error", "—")[:60] if x and "seconds" not in x else \
                    f"{x['seconds']:.2f} s, {x.get('work_mib', 0):.0f} MiB" if x else "—"
            lines.append(f"| {t} | {r['uncached_s']:.2f} s, {r.get('work_mib', 0):.0f} MiB | {fig(r.get('baseline'))} | "
                         f"{fig(r.get('polars'))} | {f'{floor:.2f} s' if floor else '—'} |")
        comp = [c for c in checks_ if c["group"] == "compare"]
        lines += ["", f"Against the baseline and floor: {sum(bool(c['met']) for c in comp)} of {len(comp)} checks met "
                      f"(ours ≥ {b['baseline_speedup']:g}× faster than pandas, ≤ {b['baseline_memory_ratio']:g} of its "
                      f"memory, ≤ {b['floor_ratio']:g}× the floor; the JSON has each)."]
    lines += ["", *load_section(res)]
    # what is not met
    bad = [c for c in checks_ if c["met"] is False and c["group"] != "page"]
    skipped = [c for c in checks_ if c["met"] is None]
    lines += ["", f"**Not met ({len(bad)}):**" if bad else "**Every measured budget met.**"]
    lines += [f"* {c['check']}: {c['measured']} against {c['budget']}" + (f" — {c['detail']}" if c.get("detail") else "")
              for c in bad]
    if skipped:
        lines += ["", f"**Not run in this run ({len(skipped)}):** " + "; ".join(
            f"{c['check']} ({c.get('detail', 'not run')})" for c in skipped) + "."]
    met = sum(c["met"] is True for c in checks_)
    lines += ["", f"{met} of {len(checks_)} checks met, {len(bad)} budgets not met, {len(skipped)} not run "
                  "(per-page, per-filter checks included in the count; the JSON has every one)."]
    return "\n".join(lines)


def load_section(res: dict) -> list[str]:
    """Issue 19 item 16: server CPU per page rerun and time to a rendered page under load (no budget)."""
    out = ["Load (issue 19 item 16; reported, no budget):", ""]
    rerun = res.get("rerun")
    if rerun and "error" not in rerun:
        out += ["Server CPU seconds per page rerun on the demo store (AppTest: the page script in one process "
                "as on the server; *cold*: caches empty, *warm*: every result cached, as for a second visitor "
                "or a widget change):", "", "| page | cold CPU s | warm CPU s |", "| --- | ---: | ---: |"]
        out += [f"| {t} | {r['cold_s']} | {r['warm_s']} |" for t, r in rerun.items()]
        out.append("")
    else:
        out += [f"Server CPU per page rerun: {rerun['error'] if rerun else _why_skipped(res, 'load')}.", ""]
    load = res.get("load")
    if load and "error" not in load:
        out += [f"Time to a rendered page with concurrent browser sessions (headless chromium, one server on the "
                f"{res.get('demo_customers', 0):,}-customer demo store, each session opening {len(load['pages'])} pages "
                "in turn after a warm-up visit, so results are cached; *rendered*: the headline shown and the app's "
                "script finished). Server CPU per page is the server process's CPU time over the pages rendered:", "",
                "| sessions | pages rendered | p50 s | p95 s | max s | headline shown, p50 s | server CPU s per page | errors |",
                "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for n, r in load["levels"].items():
            out.append(f"| {n} | {r['rendered']} | {r.get('p50_s', float('nan')):.2f} | {r.get('p95_s', float('nan')):.2f} | "
                       f"{r.get('max_s', float('nan')):.2f} | {r.get('headline_p50_s', float('nan')):.2f} | "
                       f"{r.get('server_cpu_per_page_s', float('nan')):.3f} | {len(r.get('errors', []))} |")
        out += ["", "What the figures mean: *server CPU per page* is what one rendered page costs the server "
                    "(script rerun, cached results, figures and tables serialised); with two cores, *n* sessions "
                    "asking at once cannot be served faster than about *n* × that / 2 seconds. Time to a rendered "
                    "page well above that is spent outside the server's CPU: in the browser (plotly and the data "
                    "grid drawing; the headless chromium shares the same two cores here), on the websocket, or "
                    "waiting for other processes on a busy machine (see the load average above)."]
    else:
        out.append(f"Concurrent sessions: {load['error'] if load else _why_skipped(res, 'load')}.")
    return out


def write_readme(res: dict, readme: Path = ROOT / "README.md") -> None:
    """Rewrite the README's block for this run's scale: ``<!-- BEGIN bench -->`` at the default
    scale, ``<!-- BEGIN bench scale 10 -->`` (any scale factor F but 1: ``scale F``)."""
    text = readme.read_text(encoding="utf-8")
    f = float(res.get("scale_factor", 1) or 1)
    tag = "bench" if f == 1 else f"bench scale {f:g}"
    pattern = re.compile(rf"(<!-- BEGIN {re.escape(tag)} -->\n).*?(<!-- END {re.escape(tag)} -->)", re.S)
    if not pattern.search(text):
        raise ValueError(f"README has no <!-- BEGIN {tag} --> markers")
    body = readme_section(res) + "\n"
    readme.write_text(pattern.sub(lambda mt: mt.group(1) + body + mt.group(2), text), encoding="utf-8")


def _warned(row: dict) -> str:
    """The import's warnings for a check's detail (e.g. a write done again under more memory),
    "" when it gave none; JSON from before the bench recorded them has none to show. The note an
    unchanged file always gets ("unchanged: …") is left out: the status says so."""
    said = [w for w in row.get("warnings") or () if not w.startswith("unchanged:")]
    return "".join(f"; the import warned: {w}" for w in said)


def _steps(seconds: dict[str, float], top: int = 6) -> str:
    """``{"summary_answer_spells": 2.31, …}`` as "answer spells 2.31 s, …" (the first ``top``)."""
    return ", ".join(f"{k.removeprefix('summary_').replace('_', ' ')} {v:.2f} s" for k, v in list(seconds.items())[:top])
