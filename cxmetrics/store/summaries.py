"""Summary tables: every base relation materialised for the unfiltered view, once per data version,
and the executor's binding of a query to a summary or to the relation's SQL.

At a million customers and ten million responses a page computed from the raw tables joins and
groups tens of millions of rows, several times over. Each base relation of
:mod:`cxmetrics.relations` is a pure function of the data, so it is computed once per data version,
inside the transaction that changes the data (:func:`cxmetrics.store.bump_version` runs the commit
step of :mod:`cxmetrics.commit`, which calls :func:`refresh`), and stored as an ordinary table named
after it (``summary_*``), together with the model fits of the unfiltered view (:data:`FITS`).

A metric's SQL names the relations it reads (``FROM {summary_responses} r``); :func:`source` binds
each to its table when the table holds exactly the answer — built (or carried over) at the current
data version, for the same inner filters and arguments (see :mod:`cxmetrics.relations`) — and to
the relation's own SQL otherwise (same figures, slower). A write rebuilds only the summaries
computed from the tables it changed. ``tests/test_summaries.py`` computes every page both ways and
requires the same figures.

This module sits in the store layer and imports no metric module: the default landmark and the
kept fits are registered from above, by :mod:`cxmetrics.commit`.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from cxmetrics import store
from cxmetrics.core import filters as _filters
from cxmetrics.core.filters import Filters
from cxmetrics.store import incremental, relations
from cxmetrics.store.relations import RELATIONS, Relation, Via

LANDMARK_TABLE = relations.LANDMARK.name
COMPLAINT_CHURN_TABLE = relations.COMPLAINT_CHURN.name
CLV_CELLS_TABLE = relations.CLV_CELLS.name
LATEST_TABLE = relations.LATEST.name
CUSTOMER_TABLE = relations.CUSTOMER.name
COMPLAINT_RATE_TABLE = relations.COMPLAINT_RATE.name
NRR_CELLS_TABLE = relations.NRR_CELLS.name
RESPONSES_TABLE = relations.RESPONSES.name
KPI_TABLE = relations.KPI_LINKED.name
DETRACTORS_TABLE = relations.DETRACTORS.name
DETRACTOR_CELLS_TABLE = relations.DETRACTOR_CELLS.name
RFM_TABLE = relations.RFM.name
PAIRS_TABLE = relations.PAIRS.name
GAPS_TABLE = relations.GAPS.name
COMPLAINTS_TABLE = relations.COMPLAINTS.name
REVENUE_TABLE = relations.REVENUE.name
UPLIFT_TABLE = relations.UPLIFT.name
LIFECYCLE_TABLE = relations.LIFECYCLE.name
KPI_DAILY_TABLE = relations.KPI_DAILY.name
DEPARTMENTS_TABLE = relations.CUSTOMER_DEPARTMENTS.name
WALLET_TABLE = relations.WALLET.name
KPI_ALLTIME_TABLE = relations.KPI_WINDOW.name
FITS_TABLE = "summary_fits"
_META_KEY = "summary_landmark"
#: Bumped by hand only for a change neither the definitions' SQL nor the fits' code shows (how a
#: file records its summaries); a change of either changes :func:`format_version` by itself.
FORMAT = 23  # 17: the cluster sums are kept per department too; 18: the kept Cox check is fitted by
#            survival.cox_breslow; 19: the kept CSAT and CES cluster sums count an anonymous answer as a
#            cluster; 20: the BTYD fits and holdout check are kept per segment and per region too;
#            21: the kept BTYD fits keep their observed-information covariances; 22: the kept
#            touchpoint cluster sums are kept per quarter too; 23: the initiatives' impacts are kept

#: Each summary and the contract tables it is computed from (build order). A write that changes
#: none of a summary's tables carries it over to the new data version without rebuilding it.
DEPENDS: dict[str, frozenset[str]] = {r.name: r.depends for r in relations.ALL}
DEPENDS[FITS_TABLE] = frozenset({"customers", "survey_responses", "complaints", "churn_events", "transactions"})


def _reading(names: frozenset[str]) -> frozenset[str]:
    """``names`` and every relation that reads one of them, directly or through another."""
    out = set(names)
    for r in relations.ALL:  # build order: a relation after those it reads
        if any(sub in out for sub in r.uses):
            out.add(r.name)
    return frozenset(out)


#: Summaries that need a last transaction date (their arguments are taken from it), and those
#: computed from them (without transactions they would recompute them from the raw tables).
NEED_TRANSACTIONS = _reading(frozenset({LANDMARK_TABLE, relations.LANDMARK_REVENUE.name, RFM_TABLE, CUSTOMER_TABLE}))

#: The relations computed at a landmark: the churn landmark base and those read from it (its
#: revenue, the CLV cells, the complaint churn cells). Kept for the default landmark of the
#: unfiltered view and, as twins (:func:`twin`), for :func:`second_landmark`.
LANDMARK_FAMILY = _reading(frozenset({LANDMARK_TABLE}))


def twin(name: str) -> str:
    """The table that keeps relation ``name`` of :data:`LANDMARK_FAMILY` at :func:`second_landmark`."""
    return name + "_l12"


def second_landmark(con: duckdb.DuckDBPyConnection) -> tuple[dt.date | None, dt.date | None]:
    """The landmark and follow-up end of the sidebar's "Last 12 months", the most common view of a
    dashboard: its first day in the survey answers' dates (:func:`cxmetrics.core.periods.preset_range`,
    as the app sets it), which a churn figure under that range takes as its landmark, and its last
    day when that is before the data's end (else None: the end, as the churn metrics'
    ``follow_up_end`` rules). (None, None) without answers."""
    from cxmetrics.core import periods

    lo, hi, end = con.execute("SELECT min(responded_on), max(responded_on), (SELECT " + relations.DATA_END_SQL
                              + ") FROM survey_responses").fetchone()
    if lo is None:
        return None, None
    return periods.preset_range(periods.LAST_12_MONTHS, lo, hi)[0], (hi if end is not None and hi < end else None)


#: Fits kept in summary_fits: name → function(con) returning a JSON-able result, for the
#: unfiltered view at the default landmark / calibration end (see :func:`fit`). Registered by
#: :mod:`cxmetrics.commit` (the cox fit of churn, the BTYD fit of btyd).
FITS: dict[str, Callable] = {}
#: The relation each kept fit is computed from, alone (with the arguments that relation was built
#: with): a fit whose relation a write carried over unchanged is kept as it is, not fitted again.
#: Or a tuple of the relations and tables it reads: kept when the write carried over each relation
#: and changed none of the tables (:func:`_fit_kept`). Registered with :data:`FITS`.
FIT_READS: dict[str, str | tuple[str, ...]] = {}
#: Fits brought up to date after a write that only appended rows, when their relation
#: (:data:`FIT_READS`) took the rows in place: name → function(con, the fit's kept result) → its
#: result with the appended rows, computed from the appended customers' rows alone
#: (:func:`cxmetrics.store.incremental.narrowed`); the same result as the fit's function (tested).
FIT_UPDATES: dict[str, Callable] = {}
#: The source the kept fits are computed by: files, and folders of ``.py`` files (registered with
#: :data:`FITS`). Their text is hashed into :func:`format_version`, so a release that changes how
#: a fit is computed fits it again, as a changed definition rebuilds its summary.
FIT_SOURCES: list[Path] = []
#: The default landmark date of the unfiltered view: function(con) → date, registered by
#: :mod:`cxmetrics.commit` (the rule belongs to the churn metrics).
DEFAULT_LANDMARK: list[Callable] = []


@dataclass(frozen=True)
class LandmarkSummary:
    landmark: dt.date
    end: dt.date


# ----------------------------------------------------------------------------- binding


@dataclass(frozen=True)
class Source:
    """Where a relation's rows come from for one query: its stored table, or its SQL in brackets
    with the parameters that SQL binds."""

    relation: Relation
    sql: str
    params: dict[str, Any] = field(default_factory=dict)
    stored: bool = False

    def __str__(self) -> str:
        return self.sql

    def where(self, filters: Filters, **kwargs) -> tuple[str, dict[str, Any]]:
        """The caller's condition on this relation's columns (``Filters.where`` arguments): the
        department scope is left out where the relation applied it inside."""
        return filters.where(scope=not self.relation.scope_inside, **kwargs)


def _merge(params: dict, more: dict) -> dict:
    for k, v in more.items():
        if k in params and params[k] != v:
            raise ValueError(f"parameter ${k} bound twice with different values")
        params[k] = v
    return params


def definition(rel: Relation, filters: Filters, args: dict, bind: Callable[[str, Filters], Source]
               ) -> tuple[str, dict[str, Any]]:
    """The relation's SQL for ``filters`` and ``args`` (the relations it reads bound by ``bind``)."""
    fmt: dict[str, str] = {}
    params: dict[str, Any] = {}
    if "{inner}" in rel.sql:
        cond, p = rel.inner(filters)
        fmt["inner"] = cond
        _merge(params, p)
    for sub, narrow in rel.uses.items():
        s = bind(sub, narrow(filters))
        fmt[sub] = s.sql
        _merge(params, s.params)
    for a in rel.args:
        _merge(params, {a: args.get(a)})
    sql = rel.sql
    for key, value in fmt.items():
        sql = sql.replace("{" + key + "}", value)
    return sql, params


def _via(con: duckdb.DuckDBPyConnection, rel: Relation, via: Via, filters: Filters, args: dict,
         bind: Callable[[str, Filters], Source] | None = None) -> tuple[str, dict[str, Any]] | None:
    """``rel`` under ``filters`` and ``args`` from the stored relations ``via`` (one of its
    :attr:`Relation.vias`) reads (the relations it uses bound as for its definition, or by
    ``bind``); None when those cannot answer."""
    got = via.cond(filters, args)
    if got is None:
        return None
    fmt, params = got
    params = dict(params)
    sql = via.sql
    for key, value in fmt.items():
        sql = sql.replace("{" + key + "}", value)
    for name in via.reads:
        sql = sql.replace("{" + name + "}", name)  # names from relations.ALL
    for sub, narrow in rel.uses.items():
        if "{" + sub + "}" in sql:
            s = (bind(sub, narrow(filters)) if bind is not None
                 else source(con, sub, narrow(filters), inline=sub in rel.inline_uses, **args))
            sql = sql.replace("{" + sub + "}", s.sql)
            _merge(params, s.params)
    return sql, params


def _built_args(info: dict, *, second: bool = False) -> dict[str, Any]:
    """The arguments the stored summaries were built with (``second``: the twins of
    :data:`LANDMARK_FAMILY`, at :func:`second_landmark`)."""
    end = dt.date.fromisoformat(info["end"]) if info.get("end") else None
    key = "landmark2" if second else "landmark"
    landmark = dt.date.fromisoformat(info[key]) if info.get(key) else None
    end2 = dt.date.fromisoformat(info["end2"]) if second and info.get("end2") else None
    return {"landmark": landmark, "end": end2, "cal_end": end}


def _table(name: str, second: bool) -> str:
    """Where relation ``name`` is stored for the default landmark, or (``second``) the second one."""
    return twin(name) if second and name in LANDMARK_FAMILY else name


def _held(rel: Relation, filters: Filters, args: dict, is_current: Callable[[str], bool], built: dict) -> bool:
    """Whether the stored table of ``rel`` answers ``filters`` and ``args``: current, built for the
    same inner condition (the unfiltered one) and arguments, and so are the relations it reads."""
    if not is_current(rel.name):
        return False
    if "{inner}" in rel.sql and rel.inner(filters) != rel.inner(Filters()):
        return False
    if any(args.get(a) != built.get(a) for a in rel.args):
        return False
    return all(_held(RELATIONS[sub], narrow(filters), args, is_current, built) for sub, narrow in rel.uses.items())


#: The date of each dated contract table's rows (what a relation's inner date condition is on).
_DATED = {"survey_responses": "responded_on", "complaints": "opened_on", "transactions": "occurred_on",
          "churn_events": "churned_on", "kpi_observations": "observed_on", "followups": "contacted_on"}


def _within_data(con: duckdb.DuckDBPyConnection, rel: Relation, filters: Filters) -> Filters:
    """``filters`` with a date bound that lies beyond the data ``rel`` is computed from left out: a
    range that ends on or after the last date of every dated table the relation reads (or starts on
    or before the first) keeps the same rows without that bound. "The last 12 months" ends on the
    data's last day, so the relations that take the range inside (the latest answer as of its end,
    …) are read from their stored tables for that end. Only the relation's rows are concerned: the
    caller still applies the range to the columns it filters, and arguments such as the landmark's
    end are not filters."""
    if filters.date_from is None and filters.date_to is None:
        return filters
    tables = sorted(t for t in rel.depends if t in _DATED)
    if not tables:
        return filters
    lo, hi = store.rows(con, store.Query("data_span", "SELECT min(lo), max(hi) FROM (" + " UNION ALL ".join(
        f"SELECT min({_DATED[t]}) AS lo, max({_DATED[t]}) AS hi FROM {t}" for t in tables) + ")"))[0]
    if lo is None:
        return filters
    out = filters
    if filters.date_from is not None and filters.date_from <= lo:
        out = out.with_(date_from=None)
    if filters.date_to is not None and filters.date_to >= hi:
        out = out.with_(date_to=None)
    return out


def within_data(con: duckdb.DuckDBPyConnection, name: str, filters: Filters) -> Filters:
    """``filters`` without a date bound that lies beyond the data relation ``name`` is computed from
    (:func:`_within_data`): "the last 12 months" is then a range open at its end."""
    return _within_data(con, RELATIONS[name], filters)


def source(con: duckdb.DuckDBPyConnection, name: str, filters: Filters | None = None, *, inline: bool = False,
           **args) -> Source:
    """Bind relation ``name`` for a query under ``filters`` (and arguments such as ``landmark``,
    ``end``, ``cal_end``): its summary table when that holds exactly the answer, else its SQL.

    A relation answered from its histories (a via), or marked ``per_page``, is computed once per
    page call into a temporary table that the page's queries share; ``inline``: as a subquery of
    the one query that reads it instead, unless the page already made that table
    (:attr:`Relation.inline_uses`; :func:`query`'s ``inline``)."""
    rel = RELATIONS[name]
    f = _within_data(con, rel, filters or Filters())
    info, version = _state(con)
    built_versions, built_args = info.get("built", {}), _built_args(info)
    if _held(rel, f, args, lambda n: built_versions.get(n) == version, built_args):
        return Source(rel, rel.name, {}, True)
    if rel.name in LANDMARK_FAMILY and info.get("landmark2") and _held(
            rel, f, args, lambda n: built_versions.get(_table(n, True)) == version, _built_args(info, second=True)):
        return Source(rel, twin(rel.name), {}, True)
    via = next((got for v in rel.vias if all(built_versions.get(n) == version for n in v.reads)
                and all(args.get(a) == built_args.get(a) for a in v.same_args)
                and (got := _via(con, rel, v, f, args)) is not None), None)
    if via is not None:
        q = store.Query(rel.name, *via)
        prefix = "__" + rel.name + "_via_"
        table = store.made_temp_table(con, prefix, q) if inline else store.temp_table(con, prefix, q)
        return Source(rel, table, {}, False) if table is not None else Source(rel, f"({via[0]})", via[1], False)
    sql, params = definition(rel, f, args, lambda sub, sf: source(con, sub, sf, inline=sub in rel.inline_uses, **args))
    if rel.per_page:
        table = store.temp_table(con, "__" + rel.name + "_", store.Query(rel.name, sql, params))
        if table is not None:
            return Source(rel, table, {}, False)
    return Source(rel, f"({sql})", params, False)


def query(con: duckdb.DuckDBPyConnection, name: str, sql: str, params: dict | None = None, *,
          filters: Filters | None = None, inline: tuple[str, ...] = (), **args) -> store.Query:
    """A named query whose SQL reads relations by placeholder (``{summary_responses}``), each bound
    with :func:`source` for ``filters`` and ``args``; their parameters join ``params``. ``inline``:
    relations this query reads as a subquery rather than a page table when no other query of the
    page has made one (it reads few of their columns, and on its own page nothing else reads them)."""
    all_params = dict(params or {})
    for rel_name in RELATIONS:
        token = "{" + rel_name + "}"
        if token in sql:
            s = source(con, rel_name, filters, inline=rel_name in inline, **args)
            sql = sql.replace(token, s.sql)
            _merge(all_params, s.params)
    return store.Query(name, sql, all_params)


def where(name: str, filters: Filters, **kwargs) -> tuple[str, dict[str, Any]]:
    """A caller's condition on relation ``name``'s columns (``Filters.where`` arguments): the
    department scope is left out where the relation applies it inside."""
    return filters.where(scope=not RELATIONS[name].scope_inside, **kwargs)


def relation_query(name: str, filters: Filters | None = None, **args) -> store.Query:
    """Relation ``name``'s own SQL (every relation it reads from its SQL too): what its summary
    table must equal, for tests and "How was this computed?"."""
    def bind(sub: str, f: Filters) -> Source:
        sql, params = definition(RELATIONS[sub], f, args, bind)
        return Source(RELATIONS[sub], f"({sql})", params)

    sql, params = definition(RELATIONS[name], filters or Filters(), args, bind)
    return store.Query(name, sql, params)


@dataclass(frozen=True)
class Cells:
    """A counted relation (rows weighted by ``n``; survey weights summed in ``sw``, ``sw2``) under
    alias ``alias``, bound by :func:`source`: the aggregates over it, written once. Segment and
    region are columns of the cube, on the same alias."""

    alias: str
    rel: Source

    @property
    def source(self) -> str:
        return f"{self.rel.sql} {self.alias}"

    @property
    def params(self) -> dict[str, Any]:
        return self.rel.params

    @property
    def customer(self) -> str:
        """The alias that carries segment and region (for ``Filters.where(customer=…)``)."""
        return self.alias

    def dim(self, expr: str) -> str:
        """A grouping expression written over a response/complaint row and its customer ``c``."""
        a = self.alias
        return expr.replace("c.segment", f"{a}.segment").replace("c.region", f"{a}.region")

    def count(self, cond: str | None = None) -> str:
        f = f" FILTER (WHERE {cond})" if cond else ""
        return f"CAST(coalesce(sum({self.alias}.n){f}, 0) AS BIGINT)"

    def wsum(self, cond: str | None = None) -> str:
        """Sum of survey weights (responses only)."""
        f = f" FILTER (WHERE {cond})" if cond else ""
        return f"sum({self.alias}.sw){f}"

    def w2sum(self) -> str:
        return f"sum({self.alias}.sw2)"

    def xsum(self, expr: str) -> str:
        return f"sum(({expr}) * {self.alias}.n)"

    def mean(self, expr: str) -> str:
        a = self.alias
        return f"sum(({expr}) * {a}.n) / sum({a}.n) FILTER (WHERE ({expr}) IS NOT NULL)"


def responses(con: duckdb.DuckDBPyConnection) -> Cells:
    """Counted survey responses (alias ``r``), :data:`cxmetrics.relations.RESPONSES`."""
    return Cells("r", source(con, RESPONSES_TABLE))


def complaints(con: duckdb.DuckDBPyConnection) -> Cells:
    """Counted complaints (alias ``k``), :data:`cxmetrics.relations.COMPLAINTS`."""
    return Cells("k", source(con, COMPLAINTS_TABLE))


def landmark_query(landmark: dt.date) -> store.Query:
    """summary_landmark's definition: the churn landmark base at ``landmark``."""
    return relation_query(LANDMARK_TABLE, landmark=landmark, end=None)


# ----------------------------------------------------------------------------- building


def _read(con: duckdb.DuckDBPyConnection) -> dict:
    row = con.execute("SELECT value FROM meta WHERE key = ?", [_META_KEY]).fetchone()
    info = json.loads(row[0]) if row else {}
    return info if info.get("format") == format_version() else {}


_format_memo: tuple | None = None


def fit_source_files(sources: tuple[Path, ...] | None = None) -> list[Path]:
    """The ``.py`` files of ``sources`` (:data:`FIT_SOURCES`), in a fixed order."""
    out: set[Path] = set()
    for src in FIT_SOURCES if sources is None else sources:
        out.update(src.rglob("*.py") if src.is_dir() else [src])
    return sorted(out)


@functools.lru_cache(maxsize=4)
def _sources_hash(sources: tuple[Path, ...]) -> str:
    """A hash of the text of ``sources`` (:func:`fit_source_files`): 0.8 MB read once a process."""
    h = hashlib.sha256()
    for path in fit_source_files(sources):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def format_version() -> str:
    """The summaries' format: a hash of every relation's definition (SQL, what it reads, its
    arguments, the order it is stored in), of what each is computed from, of the fits kept and of
    the code that computes them (:data:`FIT_SOURCES`). A file built with another format is treated
    as having no summaries (raw queries) until it is next opened read-write, which rebuilds them.
    Hashed once for the same definitions (a page asks dozens of times)."""
    global _format_memo
    fits = tuple(sorted(FITS))
    sources = tuple(FIT_SOURCES)
    memo = _format_memo
    if memo is not None and memo[0] is relations.ALL and memo[1:4] == (FORMAT, fits, sources):
        return memo[4]
    parts = [str(FORMAT)]
    parts += [f"{r.name}:{r.sql}:{sorted(r.depends)}:{sorted(r.uses)}:{r.args}:{r.scope_inside}"
              f":{':'.join(v.sql for v in r.vias)}:{r.stored_order}" for r in relations.ALL]
    parts += fits
    parts.append(_sources_hash(sources))
    out = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
    _format_memo = (relations.ALL, FORMAT, fits, sources, out)
    return out


def fit_json(name: str, compute: Callable[[], Any], errors: dict[str, str]) -> str | None:
    """Kept fit ``name`` as the JSON text of ``compute()`` (None when it gives none). A fit that
    fails in Python (a singular matrix, an initiative the code cannot measure) gives None and says
    why in ``errors``: a model the data cannot fit must not fail the write or build that triggered
    it; nothing is kept and the pages fit live and show the error. An error of the store is raised:
    inside a writing transaction DuckDB has aborted the write, which then changes nothing."""
    try:
        result = compute()
        return None if result is None else json.dumps(result)
    except duckdb.Error:
        raise
    except Exception as exc:  # noqa: BLE001  (see above: reported, not raised)
        errors[name] = f"{type(exc).__name__}: {exc}"
        return None


def label(name: str) -> str:
    """A summary table's name as a person reads it: ``summary_answer_spells`` → "answer spells"."""
    return name.removeprefix("summary_").replace("_", " ")


def refresh(con: duckdb.DuckDBPyConnection, version: int, *, previous: int | None = None,
            changed: set[str] | None = None) -> list[str]:
    """Bring the summaries to data version ``version`` (call inside the writing transaction).

    ``changed`` names the contract tables the write changed (None: any may have): a summary that
    was current at ``previous`` and reads none of them is carried over; when the write only
    appended rows to fact tables, the summaries that can take appended rows in place are updated
    (:mod:`cxmetrics.store.incremental`); the others are rebuilt. Returns the names rebuilt; what
    was rebuilt, updated and carried over is recorded (:func:`last_refresh`)."""
    info = _read(con)
    built = dict(info.get("built", {}))
    landmark = DEFAULT_LANDMARK[0](con) if DEFAULT_LANDMARK else None
    end = con.execute("SELECT max(occurred_on) FROM transactions").fetchone()[0]
    args = {"landmark": landmark, "end": None, "cal_end": end}
    landmark2, end2 = second_landmark(con) if landmark is not None and end is not None else (None, None)
    if (landmark2, end2) == (landmark, None):
        landmark2 = end2 = None
    args2 = {**args, "landmark": landmark2, "end": end2}
    rebuilt, updated, carried = [], [], []
    delta = None
    if changed is not None and previous is not None and info:
        delta = incremental.appended(con, set(changed), info.get("counts", {}))
    # a relation that reads appended tables only before the landmark may stay as it was built
    same_args = (info.get("landmark") == (landmark.isoformat() if landmark else None)
                 and info.get("end") == (end.isoformat() if end else None))
    fits_current = built.get(FITS_TABLE) == previous and previous is not None
    fits_kept: list[str] = []
    fits_updated: list[str] = []
    fit_errors: dict[str, str] = {}  # fit → why it could not be kept
    seconds: dict[str, float] = {}  # per relation and fit rebuilt or updated (the bench reports the slowest)

    def save():
        info = {"format": format_version(), "landmark": landmark.isoformat() if landmark else None,
                "landmark2": landmark2.isoformat() if landmark2 else None, "end2": end2.isoformat() if end2 else None,
                "end": end.isoformat() if end else None, "built": built, "counts": incremental.counts(con),
                "last_refresh": {"rebuilt": rebuilt, "updated": updated, "carried": carried,
                                 "appended": delta or {}, "fits_kept": fits_kept,
                                 "fits_updated": fits_updated, "fit_errors": fit_errors, "seconds": seconds}}
        con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [_META_KEY, json.dumps(info)])

    def bind(sub: str, f: Filters) -> Source:
        """At build time a relation reads the summaries already brought to ``version``."""
        if _held(RELATIONS[sub], f, args, lambda n: built.get(n) == version, args):
            return Source(RELATIONS[sub], sub)
        sql, params = definition(RELATIONS[sub], f, args, bind)
        return Source(RELATIONS[sub], f"({sql})", params)

    def expand(sub: str, f: Filters) -> Source:
        """A used relation as its own SQL (an update narrows the tables it reads)."""
        sql, params = definition(RELATIONS[sub], f, args, expand)
        return Source(RELATIONS[sub], f"({sql})", params)

    for name, deps in DEPENDS.items():
        keep = changed is not None and not (deps & set(changed)) and built.get(name) == previous
        if (not keep and delta is not None and name in RELATIONS and built.get(name) == previous
                and incremental.unchanged_by(con, RELATIONS[name], set(delta) & deps, landmark, same_args,
                                             set(carried))):
            keep = True
        if keep:
            built[name] = version
            carried.append(name)
        elif name == FITS_TABLE:
            built.pop(name, None)  # fitted last, on the summaries just built
        elif (end is None or landmark is None) and name in NEED_TRANSACTIONS:
            built.pop(name, None)  # no transactions yet: nothing to summarise against
        else:
            t0 = time.perf_counter()
            store.progress(f"summary: {label(name)}")
            sql, params = definition(RELATIONS[name], Filters(), args, bind)
            if delta is not None and built.get(name) == previous and incremental.can_update(RELATIONS[name],
                                                                                           set(delta)):
                if RELATIONS[name].grain == "customer_cells":
                    sql, params = definition(RELATIONS[name], Filters(), args, expand)
                incremental.update(con, RELATIONS[name], sql, params, set(delta))
                updated.append(name)
            else:
                order = RELATIONS[name].stored_order if name in RELATIONS else ""
                if order:  # a column list written in cxmetrics
                    sql = f"SELECT * FROM ({sql}) ORDER BY {order}"
                con.execute(f"CREATE OR REPLACE TABLE {name} AS {sql}", params)  # name from relations.ALL
                rebuilt.append(name)
            built[name] = version
            seconds[name] = round(time.perf_counter() - t0, 3)
    _build_twins(con, version, previous, changed, delta, info, built, args, args2, rebuilt, carried, seconds)
    save()
    if built.get(FITS_TABLE) != version:
        # a fit whose relation was carried over unchanged (at the same arguments) is the same fit;
        # one whose relation took appended rows in place may be brought up to date the same way
        old = dict(con.execute("SELECT name, result FROM summary_fits").fetchall()) if fits_current else {}
        rows = []
        for fit_name, fit_fn in FITS.items():
            if fits_current and _fit_kept(fit_name, carried, changed):
                fits_kept.append(fit_name)
                result = old.get(fit_name)
                if result is not None:
                    rows.append((fit_name, result))
                continue
            t0 = time.perf_counter()
            store.progress(f"fit: {fit_name}")
            if (fits_current and delta is not None and fit_name in FIT_UPDATES and old.get(fit_name) is not None
                    and FIT_READS.get(fit_name) in updated):
                text = fit_json(fit_name, lambda n=fit_name: FIT_UPDATES[n](con, json.loads(old[n])), fit_errors)
                if fit_name not in fit_errors:
                    fits_updated.append(fit_name)
            else:
                text = fit_json(fit_name, lambda f=fit_fn: f(con), fit_errors)
            if text is not None:
                rows.append((fit_name, text))
            seconds[f"fit {fit_name}"] = round(time.perf_counter() - t0, 3)
        con.execute("CREATE OR REPLACE TABLE summary_fits (name VARCHAR PRIMARY KEY, result VARCHAR)")
        if rows:
            con.executemany("INSERT INTO summary_fits VALUES (?, ?)", rows)
        rebuilt.append(FITS_TABLE)
        built[FITS_TABLE] = version
        save()
    if delta is not None:
        incremental.done(con, delta)
    return rebuilt


def _build_twins(con: duckdb.DuckDBPyConnection, version: int, previous: int | None, changed: set[str] | None,
                 delta: dict | None, info: dict, built: dict, args: dict, args2: dict, rebuilt: list[str],
                 carried: list[str], seconds: dict) -> None:
    """Keep :data:`LANDMARK_FAMILY` at the second landmark too (``args2``; its landmark None: no
    twins; ``args``: the other summaries' arguments), each twin after its relation is current at
    ``version``: carried over when the write changed none of its tables (or, for appended rows,
    none it reads before that landmark) and the second landmark is the one it was built at, else
    rebuilt, reading the twins before it and the other summaries: from the histories where a via
    reads only those (the landmark base from the landmark states, its revenue from the customer
    summary: filters; 0.63 / 0.15 s at 1M customers against 0.93 / 0.50 s from the definitions in one
    build, by hand), else from its definition."""
    landmark2 = args2["landmark"]
    same = all(info.get(k) == (v.isoformat() if v else None)
               for k, v in (("landmark2", landmark2), ("end2", args2["end"]), ("end", args2["cal_end"])))
    done: set[str] = set()  # relations whose twin was carried over (for incremental.unchanged_by)

    def bind2(sub: str, f: Filters) -> Source:
        rel = RELATIONS[sub]
        if _held(rel, f, args2, lambda n: built.get(_table(n, True)) == version, args2):
            return Source(rel, _table(sub, True))
        sql, params = definition(rel, f, args2, bind2)
        return Source(rel, f"({sql})", params)

    for name in DEPENDS:
        if name not in LANDMARK_FAMILY:
            continue
        t, rel = twin(name), RELATIONS[name]
        if landmark2 is None or built.get(name) != version:
            if built.pop(t, None) is not None:
                con.execute(f"DROP TABLE IF EXISTS {t}")  # name from relations.ALL
            continue
        was = built.get(t) == previous and previous is not None and same
        if was and ((changed is not None and not rel.depends & set(changed)) or (
                delta is not None and incremental.unchanged_by(con, rel, set(delta) & rel.depends, landmark2, True,
                                                               done | {n for n in carried if n not in LANDMARK_FAMILY}))):
            built[t] = version
            carried.append(t)
            done.add(name)
            continue
        t0 = time.perf_counter()
        store.progress(f"summary: {label(name)} (second landmark)")
        via = next((got for v in rel.vias if not set(v.reads) & LANDMARK_FAMILY
                    and all(built.get(n) == version for n in v.reads)
                    and all(args2.get(a) == args.get(a) for a in v.same_args)
                    and (got := _via(con, rel, v, Filters(), args2, bind2)) is not None), None)
        sql, params = via if via is not None else definition(rel, Filters(), args2, bind2)
        if rel.stored_order:
            sql = f"SELECT * FROM ({sql}) ORDER BY {rel.stored_order}"
        con.execute(f"CREATE OR REPLACE TABLE {t} AS {sql}", params)  # name from relations.ALL
        built[t] = version
        rebuilt.append(t)
        seconds[t] = round(time.perf_counter() - t0, 3)


def _fit_kept(name: str, carried: list[str], changed: set[str] | None) -> bool:
    """Whether the write leaves what fit ``name`` reads (:data:`FIT_READS`) as it was: each relation
    carried over, none of the tables changed."""
    reads = FIT_READS.get(name)
    if reads is None:
        return False
    return all(r in carried if r in DEPENDS else changed is not None and r not in changed
               for r in ((reads,) if isinstance(reads, str) else reads))


# ----------------------------------------------------------------------------- state


def last_refresh(con: duckdb.DuckDBPyConnection) -> dict:
    """What the last refresh did: the summaries ``rebuilt`` from all the data, ``updated`` in place
    with the rows a write appended, ``carried`` over unchanged, the rows ``appended`` per table,
    the fits that could not be kept and why (``fit_errors``), and the ``seconds`` each relation and
    fit rebuilt or updated took."""
    return _read(con).get("last_refresh", {})


def unfiltered(filters) -> bool:
    """Whether ``filters`` select everything (any role with an unrestricted scope)."""
    return (filters.date_from is None and filters.date_to is None and not filters.segments
            and not filters.regions and not filters.scope.restricted)


#: The kept fits that keep views of one segment or one region (:func:`one_value`, :func:`kept_view`)
#: keep them for at most this many values of each, those with the most customers.
KEPT_VALUES = 12


def one_value(filters) -> tuple[str, str] | None:
    """``("segment", s)`` or ``("region", r)`` when ``filters`` narrow to exactly one segment or one
    region and nothing else (no date range, an unrestricted scope): the views a kept fit may also
    be kept for, per value (the BTYD fits, :func:`cxmetrics.metrics.btyd.default_fit`); else None."""
    if filters.date_from is not None or filters.date_to is not None or filters.scope.restricted:
        return None
    if len(filters.segments) == 1 and not filters.regions:
        return "segment", filters.segments[0]
    if len(filters.regions) == 1 and not filters.segments:
        return "region", filters.regions[0]
    return None


def kept_view(con: duckdb.DuckDBPyConnection, name: str, filters) -> dict | None:
    """The kept fit ``name`` of the view ``filters`` select: the fit itself when they select
    everything, its entry under ``by`` for one segment or one region (:func:`one_value`; the values
    the fit keeps), else (or when none is kept) None."""
    one = one_value(filters)
    if not unfiltered(filters) and one is None:
        return None
    kept = fit(con, name)
    if kept is None or one is None:
        return kept
    return kept.get("by", {}).get(one[0], {}).get(one[1])


def fit(con: duckdb.DuckDBPyConnection, name: str):
    """The stored fit ``name`` (its JSON result) when current, else None."""
    text = fit_text(con, name)
    return json.loads(text) if text is not None else None


def fit_text(con: duckdb.DuckDBPyConnection, name: str) -> str | None:
    """The stored fit ``name`` as its JSON text when current, else None (for a caller that keeps
    what it parses from it, keyed by the text)."""
    if not current(con, FITS_TABLE):
        return None
    # as a Python string: a frame of one large text cell costs more to build than the query (the
    # cluster sums' text is 0.36 MB at 1M customers)
    return store.scalar(con, "SELECT result FROM summary_fits WHERE name = $n", {"n": name}, name="summary_fit")


def _state(con: duckdb.DuckDBPyConnection) -> tuple[dict, int]:
    """(summary info, current data version): one small query, read and parsed once within a page's
    call (:func:`cxmetrics.store.page_memo`; a page asks dozens of times)."""
    def read() -> tuple[dict, int]:
        df = store.run(con, store.Query("summary_state", "SELECT (SELECT value FROM meta WHERE key = $k) AS info, "
                                                         "(SELECT value FROM meta WHERE key = 'data_version') AS v",
                                        {"k": _META_KEY}))
        raw, v = df["info"].iloc[0], df["v"].iloc[0]
        info = json.loads(raw) if isinstance(raw, str) else {}
        return (info if info.get("format") == format_version() else {}), int(v or 0)

    return store.page_memo(("summary_state", id(con)), read)


def current(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether summary ``name`` was built (or carried over) at the current data version."""
    info, version = _state(con)
    return info.get("built", {}).get(name) == version


def missing(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether any summary that can be built is not current (read-write opens then rebuild)."""
    info, version = _state(con)
    built = info.get("built", {})
    return not info or any(built.get(n) != version for n in DEPENDS
                           if info.get("end") or n not in NEED_TRANSACTIONS | {FITS_TABLE})


def landmark(con: duckdb.DuckDBPyConnection) -> LandmarkSummary | None:
    """The landmark summary's landmark and end dates when it is current, else None."""
    info, version = _state(con)
    if info.get("built", {}).get(LANDMARK_TABLE) != version or not info.get("end"):
        return None
    return LandmarkSummary(dt.date.fromisoformat(info["landmark"]), dt.date.fromisoformat(info["end"]))


def rfm_end(con: duckdb.DuckDBPyConnection) -> dt.date | None:
    """The calibration end of ``summary_rfm`` when it is current, else None."""
    info, version = _state(con)
    if info.get("built", {}).get(RFM_TABLE) != version or not info.get("end"):
        return None
    return dt.date.fromisoformat(info["end"])


def _department_map(con: duckdb.DuckDBPyConnection | None):
    """A page call's set-up (:data:`cxmetrics.store.PAGE_HOOKS`): department scopes read the kept
    customer set when it is current."""
    table = DEPARTMENTS_TABLE if con is not None and current(con, DEPARTMENTS_TABLE) else None
    token = _filters.CUSTOMER_DEPARTMENTS.set(table)
    return lambda: _filters.CUSTOMER_DEPARTMENTS.reset(token)


if _department_map not in store.PAGE_HOOKS:
    store.PAGE_HOOKS.append(_department_map)
