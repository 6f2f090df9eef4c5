"""The only Streamlit-aware module: cached loaders, the global filters and shared widgets.

Pages call :func:`compute` to get metric results. It opens a short read-only connection only on
a cache miss, and caches by (function, database, data version, filters incl. scope, arguments),
so an import invalidates results and cached values never cross scopes.

Where the data comes from is decided here, once: the embedded DuckDB file (``CX_DB``), or with
``CX_ENGINE=spark`` the Parquet lake ``CX_LAKE`` on Spark (:mod:`cxmetrics.store.engines`), whose
data version is a fingerprint of its files. A lake is landed by its pipelines: the app's imports
and edits are refused on it with the reason (:func:`read_only_reason`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import streamlit as st

from cxmetrics import store
from cxmetrics.core import periods, roles
from cxmetrics.core.filters import Filters, Scope
from cxmetrics.core.markup import WORD_JOINER, md_escape  # noqa: F401  (pages and tests use ui.md_escape)
from cxmetrics.core.results import DEFAULT_MIN_N, Estimate, Result
from cxmetrics.metrics import finance
from cxmetrics.registers import demo
from cxmetrics.store import engines, faults
from cxmetrics.store.engines import lakeversion
from cxmetrics.story import exports

CACHE_TTL = 3600


# ----------------------------------------------------------------------------- database


def db_file() -> Path:
    return store.db_path(os.environ.get("CX_DB"))


def engine() -> str:
    """``duckdb`` or ``spark`` (``CX_ENGINE``); an unknown name stops the page with the reason."""
    try:
        return engines.engine_name()
    except ValueError as exc:
        st.error(str(exc), icon="🛑")
        st.stop()
        raise  # unreachable: st.stop() raises


def data_source() -> str:
    """Where the pages read: the DuckDB file, or the lake (``CX_LAKE``) on Spark."""
    if engine() == "spark":
        try:
            return engines.lake_path()
        except ValueError as exc:
            st.error(str(exc), icon="🛑")
            st.stop()
    return str(db_file())


def read_only_reason() -> str | None:
    """Why the app may not write (None when it may): a lake belongs to the pipelines landing it."""
    if engine() == "spark":
        return (f"The data is read on Spark from the lake {data_source()}, which its pipelines land: "
                "imports and edits are made there, not in this app.")
    return None


def store_held_open():
    """For one script run (``app.py``): the store file stays open from the first read to the end
    of the run, so the run's other reads (each cache miss opens a connection) join it instead of
    opening the file again (:func:`cxmetrics.store.held_open`)."""
    return store.held_open()


def _connect(eng: str, where: str):
    return engines.connect(eng, lake=where) if eng == "spark" else store.connect(where)


def ensure_database() -> None:
    """Build the demo company on first start when there is no usable database, and say so.

    The build goes to a temporary file renamed into place when complete; a half-built file (missing
    tables, or empty without a completion marker) is rebuilt. A store made by ``init`` is kept."""
    if engine() == "spark":  # a landed lake: never build a demo into it
        where = data_source()
        if lakeversion.is_local(where) and not lakeversion._local_path(where).is_dir():  # noqa: SLF001
            st.error(f"No lake at {where} (CX_LAKE): publish one with `python -m cxmetrics lake export`.", icon="🛑")
            st.stop()
        return
    path = db_file()
    try:
        reason = store.incomplete_reason(path)
    except STORE_FAILURES as exc:  # it opens, but its catalog or meta table cannot be read
        store_failed(exc)
    if reason is None:
        return
    damaged = faults.unreadable(path)
    if damaged is not None:  # never build the demo over a file someone may need: say what to do
        st.error(str(damaged), icon="🛑")
        st.stop()
    with st.status(f"{reason} — building the demo company…", expanded=True) as status:
        bar = st.progress(0.0)
        demo.build_atomic(str(path), progress=lambda f, m: bar.progress(min(f, 1.0), text=m))
        status.update(label=f"Built the demo company in {path} ({reason.split(' (')[0].lower()}).", state="complete")
    st.session_state["demo_built_notice"] = True


def store_failed(exc: BaseException) -> None:
    """Show a store or disk failure as one line naming the problem and the way out (never an
    exception box), then stop the page."""
    st.error(faults.explain(exc, db_file()), icon="🛑")
    st.stop()


#: What a store or disk failure raises on its way to a page (shown by :func:`store_failed`).
STORE_FAILURES = (store.StoreError, duckdb.Error, OSError)


#: file state (the store's and its write-ahead log's size and mtime) -> data version, so that the
#: many cache lookups of one rerun do not each open the file: every commit changes the log or the
#: file, so an unchanged state means an unchanged version.
_VERSIONS: dict[tuple, int] = {}


def _file_state(path: Path) -> tuple:
    out = [str(path)]
    for f in (path, path.with_name(path.name + ".wal")):
        try:
            st_ = f.stat()
            out += [st_.st_size, st_.st_mtime_ns, st_.st_ino]
        except OSError:
            out += [None, None, None]
    return tuple(out)


def data_version() -> int:
    if engine() == "spark":
        return _lake_version(data_source())
    path = db_file()
    state = _file_state(path)
    if state in _VERSIONS:
        return _VERSIONS[state]
    try:
        with store.connect(str(path)) as con:
            version = store.data_version(con)
    except STORE_FAILURES as exc:
        store_failed(exc)
        raise  # unreachable: st.stop() raises
    if len(_VERSIONS) > 64:
        _VERSIONS.clear()
    _VERSIONS[state] = version
    return version


def _lake_version(lake: str) -> int:
    """A lake's data version: its files listed on every rerun when local (cheap); at a URI through
    Spark, at most once a minute."""
    if lakeversion.is_local(lake):
        return lakeversion.version(lake)
    return _remote_lake_version(lake, int(dt.datetime.now().timestamp()) // 60)


@st.cache_data(ttl=120, max_entries=8, show_spinner=False)
def _remote_lake_version(lake: str, minute: int) -> int:
    from cxmetrics.store.engines import spark

    return lakeversion.version(lake, spark.session())


@st.cache_data(ttl=CACHE_TTL, max_entries=512, show_spinner=False)
def _cached_call(module: str, func: str, db: str, version: int, filters_key: tuple,
                 kwargs_json: str, _filters: Filters, _kwargs: dict, eng: str = "duckdb") -> Any:
    fn = getattr(importlib.import_module(module), func)
    with _connect(eng, db) as con:
        return fn(con, _filters, **_kwargs)


def compute(fn: Callable, filters: Filters, **kwargs: Any) -> Any:
    """Run ``fn(con, filters, **kwargs)`` through the cache (keyed by data version and scope)."""
    key = json.dumps(kwargs, sort_keys=True, default=str)
    version = data_version()
    try:
        return _cached_call(fn.__module__, fn.__name__, data_source(), version, filters.key(), key,
                            filters, kwargs, engine())
    except STORE_FAILURES as exc:
        store_failed(exc)


@st.cache_data(ttl=CACHE_TTL, max_entries=64, show_spinner=False)
def _options(db: str, version: int, eng: str = "duckdb") -> dict[str, Any]:
    with _connect(eng, db) as con:
        segs = [r[0] for r in con.execute("SELECT DISTINCT segment FROM customers ORDER BY 1").fetchall()]
        regs = [r[0] for r in con.execute("SELECT DISTINCT region FROM customers ORDER BY 1").fetchall()]
        depts = [r[0] for r in con.execute("SELECT department FROM departments ORDER BY 1").fetchall()]
        lo, hi = con.execute("SELECT min(responded_on), max(responded_on) FROM survey_responses").fetchone()
    return {"segments": segs, "regions": regs, "departments": depts, "min_date": lo, "max_date": hi}


def options() -> dict[str, Any]:
    version = data_version()
    try:
        return _options(data_source(), version, engine())
    except STORE_FAILURES as exc:
        store_failed(exc)


def clear_caches() -> None:
    st.cache_data.clear()


# ----------------------------------------------------------------------------- role and filters


def login_configured() -> bool:
    """Whether an identity provider is configured (an ``[auth]`` section in secrets.toml)."""
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all  # noqa: BLE001
        return False


def identify() -> Scope:
    """The caller's scope: from the login and the role mapping when a login is configured,
    otherwise from the clearly labelled demo role switcher."""
    if not login_configured():
        return role_switcher()
    from cxmetrics.core import identity

    if not getattr(st.user, "is_logged_in", False):
        st.title("CX to P&L")
        st.info("Sign in with your company account to see the dashboard.")
        st.button("Sign in", on_click=st.login, type="primary")
        st.stop()
    try:
        scope = identity.resolve(st.user.get("email"), identity.load())
    except identity.MappingError as exc:
        st.error(f"The role mapping is invalid, so nobody can be let in: {exc}")
        st.stop()
    if scope is None:
        st.error(f"{st.user.get('email')} is not mapped to a role. Ask an administrator to add you.")
        st.button("Sign out", on_click=st.logout)
        st.stop()
    st.session_state["identity_scope"] = scope
    with st.sidebar:
        st.caption(md_escape(f"Signed in as {scope.user} — {roles.ROLE_LABELS[scope.role]}"
                             + (f" ({', '.join(scope.departments)})" if scope.departments else "")))
        st.button("Sign out", on_click=st.logout, key="logout")
    return scope


def current_scope() -> Scope:
    """The caller's role and department scope (from the login, or the demo switcher)."""
    if "identity_scope" in st.session_state:
        return st.session_state["identity_scope"]
    role = st.session_state.get("role", "analyst")
    if role not in roles.ROLES:
        role = "analyst"
    departments = None
    if role == "department":
        dep = st.session_state.get("role_department")
        departments = (dep,) if dep else ()
    return Scope(role=role, departments=departments, user=st.session_state.get("user", "demo user"))


def role_switcher() -> Scope:
    """Sidebar: a clearly labelled demo role switcher (no identity provider configured)."""
    with st.sidebar:
        st.caption("Demo role — no login is configured, so you can switch roles freely.")
        qp = st.query_params
        if "role" not in st.session_state:
            st.session_state["role"] = qp.get("role", "analyst") if qp.get("role") in roles.ROLES else "analyst"
        st.selectbox("Role", roles.ROLES, key="role", format_func=roles.ROLE_LABELS.get)
        if st.session_state["role"] == "department":
            depts = options()["departments"]
            chosen = st.session_state.get("role_department", "")
            if chosen is not None and chosen not in depts:
                # A shared link that names a department shows that department or, when the name is
                # empty, unknown or anything else, nothing at all (fail closed, never the first
                # one). Without a department in the link the demo switcher starts on the first.
                if "department" in qp:
                    wanted = qp.get("department")
                    st.session_state["role_department"] = wanted if wanted in depts else None
                else:
                    st.session_state["role_department"] = depts[0] if depts else None
            st.selectbox("Department", depts, key="role_department", placeholder="Choose a department")
            if st.session_state["role_department"] is None:
                st.warning("No department is selected (the link named one that does not exist), so "
                           "nothing is shown. Choose a department.")
    return current_scope()


def _parse_date(s: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(s) if s else None
    except ValueError:
        return None


def _clamp(d: dt.date | None, lo: dt.date | None, hi: dt.date | None) -> dt.date | None:
    """``d`` moved into ``[lo, hi]`` (either bound may be missing)."""
    if d is None:
        return d
    if lo is not None and d < lo:
        return lo
    if hi is not None and d > hi:
        return hi
    return d


def _period_named() -> None:
    """The date inputs' ``on_change``: the date-range select names the range the dates now make."""
    lo, hi = st.session_state["flt_bounds"]
    d_from, d_to = st.session_state.get("flt_from"), st.session_state.get("flt_to")
    st.session_state["flt_period"] = (periods.preset_of(d_from, d_to, lo, hi) if None not in (d_from, d_to, lo, hi)
                                      else periods.CUSTOM)


def _period_chosen() -> None:
    """The date-range select's ``on_change``: a named range sets both dates (``Custom`` keeps them)."""
    lo, hi = st.session_state["flt_bounds"]
    got = periods.preset_range(st.session_state["flt_period"], lo, hi) if None not in (lo, hi) else None
    if got is not None:
        st.session_state["flt_from"], st.session_state["flt_to"] = got


def _link_dates(qp, lo, hi, notes: list[str]) -> None:
    """A new session's dates from its link: a named range (``range=last-12-months``), else the
    ``from`` and ``to`` dates (the period is then named after them, once they are in the data)."""
    slug = qp.get("range")
    name = periods.SLUGS.get(slug or "")
    if slug and name is None:
        notes.append(f"'range' {slug!r} is not one of {', '.join(periods.SLUGS)}")
    for key, end in (("from", lo), ("to", hi)):
        raw = qp.get(key)
        wanted = _parse_date(raw)
        if raw and wanted is None:
            notes.append(f"'{key}' date {raw!r} is not a date (YYYY-MM-DD)")
        st.session_state[f"flt_{key}"] = wanted or end
    st.session_state["flt_period"] = name  # None: named after the dates below


def sidebar_filters() -> Filters:
    """Global filters (a named period or two dates, segment, region) kept in the URL so a view can
    be shared by link. A named period ("Last 12 months") is kept by name: it follows the data when
    new rows arrive, and a link to it stays the last 12 months."""
    opts = options()
    qp = st.query_params
    lo, hi = opts["min_date"], opts["max_date"]
    st.session_state["flt_bounds"] = (lo, hi)
    if "flt_init" not in st.session_state:
        notes: list[str] = []
        _link_dates(qp, lo, hi, notes)
        st.session_state["flt_segments"] = [s for s in qp.get_all("segment") if s in opts["segments"]]
        st.session_state["flt_regions"] = [r for r in qp.get_all("region") if r in opts["regions"]]
        st.session_state["flt_init"] = True
        st.session_state["flt_notes"] = notes
    period = st.session_state.get("flt_period")
    if period not in (None, periods.CUSTOM):  # a named period: its dates in the data as they are now
        got = periods.preset_range(period, lo, hi) if None not in (lo, hi) else None
        if got is None:
            period = None
        else:
            st.session_state["flt_from"], st.session_state["flt_to"] = got
    for name in ("from", "to"):  # a link's (or an earlier data version's) date outside the data
        was = st.session_state[f"flt_{name}"]
        now = _clamp(was, lo, hi)
        if now != was:
            st.session_state[f"flt_{name}"] = now
            st.session_state.setdefault("flt_notes", []).append(
                f"'{name}' date {was} is outside the data ({lo} to {hi}), so {now} is used")
    if period is None:
        _period_named()
    with st.sidebar:
        st.subheader("Filters")
        notes = st.session_state.pop("flt_notes", None)
        if notes:
            st.warning(md_escape("The link's dates were adjusted: " + "; ".join(notes) + "."))
        if None not in (lo, hi):
            st.selectbox("Date range", [p for p in periods.PRESETS
                                        if p == periods.CUSTOM or periods.preset_range(p, lo, hi) is not None],
                         key="flt_period", on_change=_period_chosen,
                         help="A named range follows the data: 'Last 12 months' is the 12 months to the "
                              "last day with data, also after new data arrive. Changing a date makes it 'Custom'.")
        st.date_input("From", key="flt_from", min_value=lo, max_value=hi, on_change=_period_named)
        st.date_input("To", key="flt_to", min_value=lo, max_value=hi, on_change=_period_named)
        st.multiselect("Segment", opts["segments"], key="flt_segments", placeholder="All segments")
        st.multiselect("Region", opts["regions"], key="flt_regions", placeholder="All regions")
    d_from, d_to = st.session_state["flt_from"], st.session_state["flt_to"]
    if d_from and d_to and d_from > d_to:
        st.sidebar.warning("'From' is after 'To': the dates were swapped.")
        d_from, d_to = d_to, d_from
    scope = current_scope()
    params: dict[str, Any] = {}
    period = st.session_state.get("flt_period")
    if period in periods.SLUGS.values() and period != periods.ALL:
        params["range"] = next(slug for slug, name in periods.SLUGS.items() if name == period)
    else:
        if d_from and d_from != lo:
            params["from"] = d_from.isoformat()
        if d_to and d_to != hi:
            params["to"] = d_to.isoformat()
    if st.session_state["flt_segments"]:
        params["segment"] = list(st.session_state["flt_segments"])
    if st.session_state["flt_regions"]:
        params["region"] = list(st.session_state["flt_regions"])
    if scope.role != "analyst":
        params["role"] = scope.role
    if scope.role == "department" and scope.departments:
        params["department"] = scope.departments[0]
    if {k: qp.get_all(k) for k in qp} != {k: (v if isinstance(v, list) else [v]) for k, v in params.items()}:
        st.query_params.from_dict(params)
    return Filters(
        date_from=d_from if d_from != lo else None,
        date_to=d_to if d_to != hi else None,
        segments=tuple(st.session_state["flt_segments"]),
        regions=tuple(st.session_state["flt_regions"]),
        scope=scope,
        min_n=int(st.session_state.get("min_n", DEFAULT_MIN_N)),
    )


# ----------------------------------------------------------------------------- shared widgets


def estimate_tile(est: Estimate, *, fmt: str = "{:.1f}", help: str | None = None) -> None:
    """A metric tile: estimate, CI and n; small samples are flagged. An estimate that could not be
    computed shows a dash and its one-line reason (never ``nan``)."""
    if est.estimate is None or est.estimate != est.estimate:
        st.metric(md_escape(est.label), "—", help=help or est.method or None)
        st.caption(md_escape(est.warnings[0]) if est.warnings else "Not enough data in this selection.")
        return
    if est.unit == "EUR" and abs(est.estimate) >= 1e6:
        value = f"{est.estimate / 1e6:,.1f} M EUR"
    else:
        value = fmt.format(est.estimate) + (f" {est.unit}" if est.unit and est.unit not in ("points",) else "")
    st.metric(md_escape(est.label), value, help=help or est.method)
    n_text = f"n = {est.n:,}" + (f", effective n = {est.n_eff:,.0f}" if est.n_eff is not None else "")
    st.caption(f"{est.ci_text(fmt)} · {n_text}")
    if est.small_sample:
        st.warning(f"Small sample: fewer than {est.min_n} responses — treat as indicative.", icon="⚠️")
    for w in est.warnings:
        st.caption(f"⚠️ {md_escape(w)}")


def how_computed(result: Result | Estimate, *, key: str) -> None:
    """The traceability expander: method, reference, n, filters, assumptions, SQL and lineage (of a
    Result, an Estimate, or anything carrying the same fields, such as a P&L scenario)."""
    with st.expander("How was this computed?"):
        st.markdown(f"**Method.** {md_escape(result.method)}")
        if result.reference:
            st.markdown(f"**Reference.** {md_escape(result.reference)}")
        st.markdown(f"**Filters.** {md_escape(result.filters or 'all data')}")
        assumptions = getattr(result, "assumptions", {}) or {}
        if assumptions:
            st.markdown("**Assumptions used.**")
            st.dataframe(pd.DataFrame([{"assumption": k, "value": v} for k, v in assumptions.items()]),
                         hide_index=True, key=f"{key}_assumptions")
        for w in getattr(result, "warnings", ()):
            st.markdown(f"⚠️ {md_escape(w)}")
        for q in getattr(result, "queries", ()):
            st.code(q.describe() if hasattr(q, "describe") else str(q), language="sql")
        tables = tuple(getattr(result, "extra", {}).get("tables", ()))
        if tables:
            st.markdown("**Data lineage** (imports that fed this figure)")
            rows = compute(finance.lineage, Filters(scope=current_scope()), tables=list(tables))
            if rows.empty and current_scope().restricted:
                st.caption("Import records are store-wide, so they are shown to unrestricted roles only.")
            else:
                st.dataframe(rows, hide_index=True, key=f"{key}_lineage")


def column_config(df: pd.DataFrame) -> dict:
    """How a table shows its columns: names without underscores, numbers rounded (p-values to 4
    places, other decimals to 2), and dates as dates — a DuckDB DATE arrives as a timestamp at
    midnight, which would show a meaningless ``00:00:00``."""
    config = {}
    for col in df.columns:
        label = str(col).replace("_", " ")
        values = df[col]
        if pd.api.types.is_float_dtype(values):
            fmt = "%.4f" if "p_value" in str(col) else "%.2f"
            config[col] = st.column_config.NumberColumn(label, format=fmt)
        elif pd.api.types.is_datetime64_any_dtype(values):
            seen = values.dropna()
            if (seen == seen.dt.normalize()).all():
                config[col] = st.column_config.DateColumn(label, format="YYYY-MM-DD")
            else:
                config[col] = st.column_config.DatetimeColumn(label, format="YYYY-MM-DD HH:mm")
        else:
            config[col] = st.column_config.Column(label)
    return config


def table(df: pd.DataFrame, *, key: str, name: str, caption: str | None = None, **kwargs: Any) -> None:
    """A table with safe CSV and Excel downloads (formula injection neutralised).

    On screen, column names lose their underscores and numbers are rounded (p-values to 4
    places, other decimals to 2); the downloads keep full precision."""
    config = column_config(df)
    config.update(kwargs.pop("column_config", None) or {})
    st.dataframe(df, hide_index=True, key=f"{key}_df", column_config=config, **kwargs)
    if caption:
        st.caption(md_escape(caption))
    if roles.can(current_scope().role, "export") and len(df):
        c1, c2, _ = st.columns([1, 1, 4])
        # the bytes are built when the button is clicked (a callable), not on every rerun: building
        # CSV and Excel for every table was most of a warm rerun's table time (scripts/rerun_bench.py)
        c1.download_button("CSV", lambda: exports.to_csv_bytes(df), file_name=f"{name}.csv", mime="text/csv",
                           key=f"{key}_csv")
        c2.download_button("Excel", lambda: exports.to_xlsx_bytes(df), file_name=f"{name}.xlsx",
                           mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                           key=f"{key}_xlsx")


def say(text: object, *, bold: bool = False, bullet: bool = False) -> None:
    """Write a generated sentence (which may quote imported labels) as plain, escaped text."""
    body = md_escape(text)
    st.markdown(("- " if bullet else "") + (f"**{body}**" if bold else body))


def empty_state(message: str) -> None:
    st.info(message, icon="ℹ️")


def save_upload(uploaded) -> Path:
    """Write an uploaded file to a private temp file (keeping its suffix) and return the path."""
    suffix = Path(uploaded.name).suffix.lower()[:10]
    fd, name = tempfile.mkstemp(prefix="cx_upload_", suffix=suffix)
    with os.fdopen(fd, "wb") as f:
        f.write(uploaded.getbuffer())
    return Path(name)


@contextlib.contextmanager
def upload_file(uploaded) -> Iterator[Path]:
    """The uploaded file written to a private temp file for the duration of a ``with`` block, then
    deleted: uploads are never left in the server's temp folder, whatever the outcome."""
    path = save_upload(uploaded)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def working(label: str) -> Iterator[None]:
    """A status box for long library work (an import): its label follows what the work says it
    starts (``store.progress``: "Importing: checking 10,000,000 rows…"), with the seconds so far,
    and ends saying how long it took, or that it stopped."""
    start = time.perf_counter()
    with st.status(f"{label}…", expanded=False) as box:
        def say(message: str) -> None:
            box.update(label=f"{label}: {message}… ({time.perf_counter() - start:.0f} s)")

        try:
            with store.reporting(say):
                yield
        except BaseException:
            box.update(label=f"{label}: stopped after {time.perf_counter() - start:.1f} s", state="error")
            raise
        box.update(label=f"{label}: done in {time.perf_counter() - start:.1f} s", state="complete")


def leave_legacy_multipage_mode() -> None:
    """Make sure app.py's ``st.navigation`` routes every request.

    Streamlit treats a folder named ``pages/`` beside the entry script as a "v1" multipage app
    until the first ``st.navigation`` call clears a process-wide flag; a first visitor landing
    directly on a page URL would then run that page without app.py's frame (layout, role,
    filters). Clearing the flag and rerunning once routes the request through app.py.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def page_filters() -> Filters:
    """The filters for the current run (set by app.py; rebuilt when a page runs on its own)."""
    leave_legacy_multipage_mode()
    f = st.session_state.get("filters")
    if f is None:
        ensure_database()
        identify()
        f = sidebar_filters()
    return f


def chart(fig, *, key: str, caption: str | None = None) -> None:
    """Draw a plotly figure full width, with its plain-language finding underneath."""
    st.plotly_chart(fig, key=key, width="stretch", config={"displaylogo": False})
    if caption:
        st.caption(md_escape(caption))


def write_action(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """Run ``fn(con, *args, **kwargs)`` on a short read-write connection, then drop cached results.

    Used for the app's own writes (assumption edits, booked revenue, initiative edits). Raises what
    ``fn`` raises; the caller shows the message. On a lake nothing is written: the reason is shown
    and the page stops there.
    """
    reason = read_only_reason()
    if reason:
        st.error(md_escape(reason), icon="🔒")
        st.stop()
    try:
        with store.connect(str(db_file()), read_only=False) as con:
            out = fn(con, *args, **kwargs)
    except (faults.StoreFault, duckdb.Error, OSError) as exc:  # the file or its disk
        clear_caches()
        store_failed(exc)
    clear_caches()
    return out


def file_action(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """Run ``fn(path, *args, **kwargs)`` on the store's file, for an action that opens its own
    connections (a long read-only step, then a short write: theme discovery), then drop cached
    results. Errors as :func:`write_action`."""
    reason = read_only_reason()
    if reason:
        st.error(md_escape(reason), icon="🔒")
        st.stop()
    try:
        out = fn(str(db_file()), *args, **kwargs)
    except (faults.StoreFault, duckdb.Error, OSError) as exc:  # the file or its disk
        clear_caches()
        store_failed(exc)
    clear_caches()
    return out


def deck_button(filters: Filters, *, key: str, department: str | None = None) -> None:
    """Build the executive update (PowerPoint or PDF) on request and offer it for download."""
    from cxmetrics.story import report

    c1, c2 = st.columns([1, 3])
    fmt = c1.selectbox("Format", ("pptx", "pdf", "html"), key=f"{key}_fmt")
    if c2.button("Prepare the executive update", key=f"{key}_build"):
        with st.spinner("Building the update from the same results as this dashboard…"):
            fd, name = tempfile.mkstemp(suffix=f".{fmt}")
            os.close(fd)
            try:
                path = report.generate(data_source(), fmt, name, filters, department=department, engine=engine())
                st.session_state[f"{key}_file"] = (path.read_bytes(), fmt)
            except report.RendererMissing as exc:
                st.session_state.pop(f"{key}_file", None)
                st.error(f"Cannot build the update: {md_escape(exc)}.")
            finally:
                Path(name).unlink(missing_ok=True)
    built = st.session_state.get(f"{key}_file")
    if built:
        data, fmt_built = built
        mime = {"pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
                "pdf": "application/pdf", "html": "text/html"}[fmt_built]
        st.download_button(f"Download the update (.{fmt_built})", data, file_name=f"cx_update.{fmt_built}", mime=mime,
                           key=f"{key}_download", type="primary")
