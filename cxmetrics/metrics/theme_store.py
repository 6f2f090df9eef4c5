"""Kept theme results: discovery fitted once, every verbatim classified once, per data version.

Fitting themes (:func:`cxmetrics.themes.discover`) and classifying every verbatim by its codebook
take seconds to a minute at a million verbatims; a page load must never do either. A run is two
steps: :func:`fit` (the seeded sample, the topic model, the sample's sentiment and emotions) needs
only a read-only connection, so ``python -m cxmetrics themes discover`` (:func:`discover_file`) fits
while other processes read and write the store; :func:`write` then takes the write lock only to
classify every verbatim in SQL and keep the results, in one transaction, and refuses
(:class:`StaleFit`) when the data version moved since the fit. :func:`keep` does both on one
read-write connection. A run keeps:

* ``theme_runs`` — one row per run: the data version it describes, the settings (sample, seed,
  themes per language), the discovered themes and languages, the codebook that classified (the
  saved one when there is one, else the discovered one) and the unfiltered view's aggregates
  (:mod:`cxmetrics.theme_sums` frames and the sentiment/emotion mixes), all as JSON;
* ``theme_tags`` — every verbatim's themes (``response_id, theme``), for the latest run;
* ``theme_annotations`` — language, sentiment and Plutchik emotion counts of the seeded sample;
* the lean tables of :mod:`cxmetrics.metrics.theme_lean`, which the Customer voice page reads under
  any filter (the verbatims in date order with their filter columns, the assignments beside them,
  counted cells).

The run moves the data version (so cached pages are recomputed) and is *current* while the data
version is the one it recorded. A write that changes none of ``survey_responses``, ``customers``,
``churn_events`` or ``codebook`` carries it over (:func:`carry_over`, registered by
:mod:`cxmetrics.commit`); any other write leaves it **stale**: pages then classify on the fly with
the kept codebook (slower, still in SQL, never a refit) and say so, until discovery is run again.
Saving a codebook (:func:`save_codebook`) re-classifies with it at once, reusing the kept discovery.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from io import StringIO

import duckdb

from cxmetrics import store
from cxmetrics.core import lazy, roles
from cxmetrics.core.filters import Filters
from cxmetrics.core.results import DEFAULT_MIN_N
from cxmetrics.metrics import text, theme_lean, theme_sums, themes
from cxmetrics.store import summaries

pd = lazy.module("pandas")

SAMPLE = 20_000
#: The unfiltered view's results kept as tables ``theme_result_<name>`` (95%, default minimum n).
RESULTS = ("cost", "trend", "sentiment", "emotions")
#: What a kept run depends on: a write to any other table carries it over.
DEPENDS = frozenset({"survey_responses", "customers", "churn_events", "codebook"})
_EMO = ", ".join(f"{e} INTEGER" for e in text.PLUTCHIK)  # literal names from text.PLUTCHIK
DDL = (
    "CREATE TABLE IF NOT EXISTS theme_runs (run_id INTEGER PRIMARY KEY, data_version BIGINT, created_at TIMESTAMP, "
    "actor VARCHAR, seconds DOUBLE, codebook_version INTEGER, settings VARCHAR, discovery VARCHAR, "
    "codebook VARCHAR, aggregates VARCHAR)",
    "CREATE TABLE IF NOT EXISTS theme_tags (response_id VARCHAR, theme VARCHAR)",
    f"CREATE TABLE IF NOT EXISTS theme_annotations (response_id VARCHAR, language VARCHAR, sentiment DOUBLE, "
    f"sentiment_method VARCHAR, sentiment_label VARCHAR, {_EMO})",
)


@dataclass(frozen=True)
class Run:
    """A kept run as read back (frames rebuilt from JSON)."""

    run_id: int
    data_version: int
    created_at: object
    actor: str
    seconds: float
    codebook_version: int | None
    settings: dict
    discovery: themes.Discovery | None
    codebook: dict


def _exists(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the store keeps theme runs (a lake on Spark: when ``lake export`` or ``summaries
    build`` wrote them into it, :mod:`cxmetrics.store.engines.lake_kept`)."""
    if getattr(con, "engine", "duckdb") == "spark":
        return "theme_runs" in con.kept
    return bool(store.scalar(con, "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
                                  "AND schema_name = current_schema() AND table_name = 'theme_runs'"))


def _frame_json(df: pd.DataFrame) -> str:
    return df.to_json(orient="table", index=False, date_format="iso")


def _frame(s: str) -> pd.DataFrame:
    df = pd.read_json(StringIO(s), orient="table")
    for col in ("month",):
        if col in df.columns and len(df):
            df[col] = pd.to_datetime(df[col]).dt.tz_localize(None).dt.date
    return df


def kept_prefix(filters: Filters, con: duckdb.DuckDBPyConnection | None = None) -> tuple[str, dict]:
    """``v`` and ``tagged`` read from the kept assignments (no regular expression). Given ``con``
    inside a page call (:func:`cxmetrics.store.memoized`) and narrowing filters, both are
    materialised once as temporary tables, which every query of the call then reads."""
    cond, params = themes._where(filters)
    narrow = "" if summaries.unfiltered(filters) else " WHERE t.response_id IN (SELECT response_id FROM v)"
    sql = f"""
WITH v AS (SELECT r.response_id, r.customer_id, r.responded_on, r.nps,
                  coalesce(r.touchpoint, '(relationship)') AS touchpoint, r.department
           FROM survey_responses r WHERE {cond}),
tagged AS (SELECT t.response_id, t.theme FROM theme_tags t{narrow})"""
    if con is not None and narrow:
        v = store.temp_table(con, "cx_kept_v_", store.Query("kept_v", sql + " SELECT * FROM v", params))
        if v:
            t = store.temp_table(con, "cx_kept_t_", store.Query("kept_tagged", sql + " SELECT * FROM tagged", params))
            return f"WITH v AS (SELECT * FROM {v}), tagged AS (SELECT * FROM {t})", {}  # names made by temp_table
    return sql, params


def feelings(con: duckdb.DuckDBPyConnection, prefix: str, params: dict) -> dict[str, pd.DataFrame]:
    """Sentiment by language and emotion shares by touchpoint and NPS group over the kept sample's
    annotations that fall in ``v`` (counts only; intervals are added by the caller)."""
    sent = store.run(con, store.Query("theme_sentiment", prefix + """
SELECT a.language, a.sentiment_label, count(*) AS k, any_value(a.sentiment_method) AS method,
       coalesce(sum(a.sentiment), 0) AS sentiment_sum, count(a.sentiment) AS sentiment_n
FROM theme_annotations a JOIN v USING (response_id) GROUP BY ALL ORDER BY 1, 2""", params))
    hits = ", ".join(f"count(*) FILTER (WHERE a.{e} > 0) AS {e}" for e in text.PLUTCHIK)  # literal names
    frames = []
    for dim, expr in (("touchpoint", "v.touchpoint"),
                      ("nps_group", "CASE WHEN v.nps >= 9 THEN 'promoter' WHEN v.nps >= 7 THEN 'passive' "
                                    "WHEN v.nps <= 6 THEN 'detractor' ELSE '(no score)' END")):
        f = store.run(con, store.Query(f"theme_emotions_{dim}", prefix + f"""
SELECT {expr} AS "group", count(*) AS n, {hits}
FROM theme_annotations a JOIN v USING (response_id) GROUP BY 1 ORDER BY 1""", params))
        f = f.melt(id_vars=["group", "n"], value_vars=list(text.PLUTCHIK), var_name="emotion", value_name="k")
        f.insert(0, "by", dim)
        frames.append(f)
    emo = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return {"sentiment": sent, "emotions": emo[["by", "group", "emotion", "k", "n"]] if len(emo) else emo}


class _StoreSink:
    """Where :func:`_compute` keeps a run's tables in the embedded store (inside the caller's
    transaction; the tables exist, :data:`DDL`)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def tags(self, sql: str, params: dict) -> int:
        self.con.execute("DELETE FROM theme_tags")
        self.con.execute("INSERT INTO theme_tags " + sql, params)
        return int(self.con.execute("SELECT count(*) FROM theme_tags").fetchone()[0])

    def annotations(self, a: pd.DataFrame) -> None:
        self.con.execute("DELETE FROM theme_annotations")
        self.con.register("cx_theme_annotations", a)
        try:
            self.con.execute("INSERT INTO theme_annotations SELECT * FROM cx_theme_annotations")
        finally:
            self.con.unregister("cx_theme_annotations")

    def result(self, name: str, df: pd.DataFrame) -> None:
        table = f"theme_result_{name}"  # names from RESULTS
        self.con.execute(f"DROP TABLE IF EXISTS {table}")
        if len(df.columns):
            self.con.register("cx_theme_result", df)
            try:
                self.con.execute(f"CREATE TABLE {table} AS SELECT * FROM cx_theme_result")
            finally:
                self.con.unregister("cx_theme_result")

    def run(self, row: list) -> None:
        self.con.execute("INSERT INTO theme_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)

    def frames(self, con, timings: dict) -> dict:
        """Build the lean tables (:mod:`cxmetrics.metrics.theme_lean`) and read the unfiltered
        view's sums from them, as the page does."""
        t = time.perf_counter()
        theme_lean.build(self.con)
        timings["lean_s"] = time.perf_counter() - t
        t = time.perf_counter()
        frames = theme_lean.aggregate(self.con, Filters())
        frames.update(theme_lean.feelings(self.con, Filters()))
        timings["aggregate_s"] = time.perf_counter() - t
        return frames


#: Spark types of the kept tables (:data:`DDL`'s columns), for a run kept on a lake.
_LAKE_TYPES = {
    "theme_runs": "run_id INT, data_version BIGINT, created_at TIMESTAMP, actor STRING, seconds DOUBLE, "
                  "codebook_version INT, settings STRING, discovery STRING, codebook STRING, aggregates STRING",
    "theme_annotations": "response_id STRING, language STRING, sentiment DOUBLE, sentiment_method STRING, "
                         "sentiment_label STRING, " + ", ".join(f"{e} INT" for e in text.PLUTCHIK),
}


class _LakeSink:
    """Where :func:`_compute` keeps a run's tables in a lake on Spark
    (:class:`cxmetrics.store.engines.lake_kept.Writer`: Parquet, registered as views at once)."""

    def __init__(self, con) -> None:
        from cxmetrics.store.engines import lake_kept

        self.writer = lake_kept.Writer(con)

    def tags(self, sql: str, params: dict) -> int:
        return self.writer.query("theme_tags", sql, params)

    def annotations(self, a: pd.DataFrame) -> None:
        rows = [tuple(None if pd.isna(v) else (float(v) if i == 2 else (int(v) if i > 4 else str(v)))
                      for i, v in enumerate(r)) for r in a.itertuples(index=False, name=None)]
        self.writer.frame("theme_annotations", rows, _LAKE_TYPES["theme_annotations"])

    def result(self, name: str, df: pd.DataFrame) -> None:
        if len(df.columns):
            self.writer.frame(f"theme_result_{name}", _spark_ready(df))  # names from RESULTS

    def run(self, row: list) -> None:
        self.writer.frame("theme_runs", [tuple(row)], _LAKE_TYPES["theme_runs"])

    def frames(self, con, timings: dict) -> dict:
        """The unfiltered view's sums, read from the tables just written (a lake keeps no lean
        tables: its pages read the kept run's sums and results, or the raw relations)."""
        t = time.perf_counter()
        prefix, params = kept_prefix(Filters())
        frames = theme_sums.aggregate(con, prefix, params, Filters())
        frames.update(feelings(con, prefix, params))
        timings["aggregate_s"] = time.perf_counter() - t
        return frames


def _spark_ready(df: pd.DataFrame):
    """A result frame as an Arrow table Spark can write: a column with no value at all is typed
    as text (Parquet has no type for "always NULL")."""
    import pyarrow as pa

    t = pa.Table.from_pandas(df, preserve_index=False)
    for i, f in enumerate(t.schema):
        if pa.types.is_null(f.type):
            t = t.set_column(i, pa.field(f.name, pa.string()), t.column(i).cast(pa.string()))
    return t


def annotations(con, sample: int, seed: int) -> pd.DataFrame:
    """Language, sentiment and emotions of the seeded sample (read only; kept by :func:`write`)."""
    df = store.run(con, themes.sample_query(Filters(), sample, seed))
    a = text.annotate(df["verbatim"]) if len(df) else pd.DataFrame(
        columns=["language", "sentiment", "sentiment_method", "sentiment_label", *text.PLUTCHIK])
    a.insert(0, "response_id", df["response_id"].to_numpy())
    return a[["response_id", "language", "sentiment", "sentiment_method", "sentiment_label", *text.PLUTCHIK]]


def _disc_json(d: themes.Discovery) -> str:
    t = d.themes.copy()
    for col in ("keywords", "top_terms", "examples"):
        t[col] = t[col].map(list)
    return json.dumps({"themes": t.to_dict(orient="records"), "codebook": {k: list(v) for k, v in d.codebook.items()},
                       "n_sample": d.n_sample, "n_total": d.n_total, "languages": d.languages.to_dict(orient="records"),
                       "seed": d.seed, "warnings": list(d.warnings)})


def _disc(s: str | None) -> themes.Discovery | None:
    if not s:
        return None
    o = json.loads(s)
    t = pd.DataFrame(o["themes"], columns=["theme", "language", "label", "keywords", "top_terms", "docs", "examples",
                                           "share_of_sample"])
    for col in ("keywords", "top_terms", "examples"):
        t[col] = t[col].map(tuple)
    return themes.Discovery(t, {k: tuple(v) for k, v in o["codebook"].items()}, o["n_sample"], o["n_total"],
                            pd.DataFrame(o["languages"]), o["seed"], warnings=tuple(o["warnings"]))


class StaleFit(themes.CodebookError):
    """The data changed between the fit (read only) and the write: the fit describes other data."""


@dataclass(frozen=True)
class Fit:
    """What :func:`fit` computes on a read-only connection: the discovery, the sample's annotations
    and the data version they describe."""

    data_version: int
    discovery: themes.Discovery
    settings: dict
    annotations: pd.DataFrame
    timings: dict
    refit: bool = True


def _refuse_role(con: duckdb.DuckDBPyConnection, actor: str, role: str) -> None:
    if not roles.can(role, "edit_codebook"):
        store.audit(con, actor=actor, role=role, action="themes_keep", outcome="refused",
                    detail="role may not discover themes")
        raise themes.CodebookError(f"the {role} role may not discover themes (analyst only)")


def fit(con, *, sample: int = SAMPLE, seed: int = 0, n_themes: int = 12,
        refit: bool = True) -> Fit:
    """The slow part of a run, on any connection (read-only is enough, no lock held; a lake on Spark
    too): discover themes
    on a seeded sample (unless ``refit`` is False: the latest run's discovery is reused) and annotate
    the sample's sentiment and emotions. :func:`write` keeps it."""
    t0 = time.perf_counter()
    version = store.data_version(con)
    prev = latest(con) if not refit else None
    if refit or prev is None or prev.discovery is None:
        disc = themes.discover(con, Filters(), n_themes=n_themes, sample=sample, seed=seed)
        settings = {"sample": int(sample), "seed": int(seed), "n_themes": int(n_themes)}
        refit = True
    else:
        disc, settings = prev.discovery, prev.settings
    timings = {"discover_s": time.perf_counter() - t0}
    t = time.perf_counter()
    a = annotations(con, settings["sample"], settings["seed"])
    timings["annotate_s"] = time.perf_counter() - t
    return Fit(version, disc, settings, a, timings, refit)


def write(con: duckdb.DuckDBPyConnection, f: Fit, *, actor: str = "cli", role: str = "analyst") -> dict:
    """Keep a :func:`fit` (read-write connection, one transaction): classify every verbatim with the
    saved codebook (else the discovered one), write the annotations, the lean tables
    (:mod:`cxmetrics.metrics.theme_lean`) and the unfiltered view's aggregates, at the data version
    this write creates. Refuses (:class:`StaleFit`, audited) when the data version is no longer the
    one the fit read. Analyst role (as the codebook), audited. Returns timings and counts."""
    _refuse_role(con, actor, role)
    t0 = time.perf_counter()
    now_version = store.data_version(con)
    if now_version != f.data_version:
        store.audit(con, actor=actor, role=role, action="themes_keep", outcome="refused",
                    detail=f"data changed during the fit ({f.data_version} -> {now_version})")
        raise StaleFit(f"the data changed while themes were being fitted (data version {f.data_version}, now "
                       f"{now_version}): nothing was kept; run discovery again")
    with store.transaction(con):
        for ddl in DDL:
            con.execute(ddl)
        out = _compute(con, _StoreSink(con), f, actor=actor, data_version=lambda: store.data_version(con))
        version = store.bump_version(con, ["theme_runs"])  # carries the run over (carry_over)
        store.audit(con, actor=actor, role=role, action="themes_keep", object=f"theme run {out['run_id']}",
                    outcome="accepted", detail=json.dumps({"themes": out["themes"], "tags": out["tags"],
                                                           "refit": bool(f.refit)}))
    return {**out, "data_version": version, "write_s": time.perf_counter() - t0}


def _compute(con, sink, f: Fit, *, actor: str, data_version) -> dict:
    """Classify every verbatim with the saved codebook (else ``f``'s discovered one), keep the
    sample's annotations, aggregate the unfiltered view and keep it all through ``sink``, the run's
    row recording ``data_version()``. The same steps and SQL on both engines; only where the
    tables go (and, in the store, the lean tables) differs."""
    t0 = time.perf_counter()
    timings = dict(f.timings)
    disc, settings = f.discovery, f.settings
    cb_version, cb = themes.current(con)
    if not cb:
        cb = dict(disc.codebook)
    t = time.perf_counter()
    if cb:
        sql, params = themes.tagged_sql(Filters(), cb)
        tags = sink.tags(sql + " SELECT DISTINCT response_id, theme FROM tagged", params)
    else:
        tags = sink.tags("SELECT CAST(NULL AS VARCHAR) AS response_id, CAST(NULL AS VARCHAR) AS theme WHERE FALSE", {})
    timings["classify_s"] = time.perf_counter() - t
    sink.annotations(f.annotations)
    frames = sink.frames(con, timings)
    t = time.perf_counter()
    results = {"cost": theme_sums.cost_table(frames, cb, min_n=DEFAULT_MIN_N).assign(
                   stub_customers=theme_sums.stub_customers(frames)),
               "trend": theme_sums.trend_table(frames["trend"]), **theme_sums.feelings_tables(frames)}
    for name in RESULTS:
        sink.result(name, results[name])
    timings["aggregate_s"] += time.perf_counter() - t
    run_id = int(store.scalar(con, "SELECT coalesce(max(run_id), 0) + 1 FROM theme_runs") if _exists(con) else 1)
    seconds = sum(f.timings.values()) + time.perf_counter() - t0  # the fit's and this write's
    sink.run([run_id, data_version(), store.now(), actor, seconds, cb_version,
              json.dumps({**settings, **{k: round(v, 2) for k, v in timings.items()}}), _disc_json(disc),
              json.dumps({k: list(v) for k, v in cb.items()}),
              json.dumps({k: _frame_json(v) for k, v in frames.items()})])
    return {"run_id": run_id, "verbatims": disc.n_total, "sample": disc.n_sample, "themes": len(cb), "tags": tags,
            "annotated": len(f.annotations), "seconds": seconds,
            "codebook": f"saved v{cb_version}" if cb_version else "discovered", **timings}


def keep(con: duckdb.DuckDBPyConnection, *, sample: int = SAMPLE, seed: int = 0, n_themes: int = 12,
         actor: str = "cli", role: str = "analyst", refit: bool = True) -> dict:
    """:func:`fit` and :func:`write` on one read-write connection (the demo build, saving a codebook).
    Discovery on a file should use :func:`discover_file`, which holds the write lock only to write."""
    _refuse_role(con, actor, role)
    return write(con, fit(con, sample=sample, seed=seed, n_themes=n_themes, refit=refit), actor=actor, role=role)


def discover_file(path, *, sample: int = SAMPLE, seed: int = 0, n_themes: int = 12, actor: str = "cli",
                  role: str = "analyst", timeout: float | None = None) -> dict:
    """Discovery on the store at ``path``: fit on a read-only connection (other readers and writers
    go on meanwhile), then open it read-write only to :func:`write` the results — refused
    (:class:`StaleFit`) when the data changed in between."""
    if not roles.can(role, "edit_codebook"):
        with store.connect(path, read_only=False, timeout=timeout) as con:
            _refuse_role(con, actor, role)
    with store.connect(path, timeout=timeout) as con:
        f = fit(con, sample=sample, seed=seed, n_themes=n_themes)
    with store.connect(path, read_only=False, timeout=timeout) as con:
        return write(con, f, actor=actor, role=role)


def keep_on_lake(con, *, sample: int = SAMPLE, seed: int = 0, n_themes: int = 12, actor: str = "summaries build"
                 ) -> dict | None:
    """Keep a theme run on the lake behind the Spark connection ``con`` when it has no current one
    (``summaries build``): the same :func:`fit` on the same seeded sample pulled to Python, every
    verbatim classified by the same SQL (translated for Spark), the same aggregates, written into
    the lake (:mod:`cxmetrics.store.engines.lake_kept`) at the lake's data version. Returns what
    :func:`keep` returns, or None when the lake's run is current (nothing to do)."""
    if is_current(con, latest(con)):
        return None
    sink = _LakeSink(con)
    out = _compute(con, sink, fit(con, sample=sample, seed=seed, n_themes=n_themes), actor=actor,
                   data_version=lambda: con.version)
    sink.writer.commit()
    con.kept = tuple(sink.writer.tables)
    return {**out, "data_version": con.version}


def export_tables(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[str, dict]]:
    """The kept tables as (query, parameters) for ``lake export`` (empty when no run is kept). The
    run that is current here is current on the lake (its ``data_version`` becomes ``$lake_version``,
    bound by the caller once the lake's files are written); any other run is stale there (0)."""
    if latest(con) is None:
        return {}
    have = _result_tables(con)
    out = {"theme_runs": ("SELECT * REPLACE (CASE WHEN data_version = $dv THEN $lake_version ELSE 0 END "
                          "AS data_version) FROM theme_runs", {"dv": store.data_version(con)}),
           "theme_tags": ("SELECT * FROM theme_tags", {}),
           "theme_annotations": ("SELECT * FROM theme_annotations", {})}
    for name in RESULTS:
        table = f"theme_result_{name}"  # names from RESULTS
        if table in have:
            out[table] = (f"SELECT * FROM {table}", {})
    return out


def carry_over(con: duckdb.DuckDBPyConnection, version: int, *, previous: int | None = None,
               changed: set[str] | None = None) -> None:
    """Commit hook: a write that changes none of :data:`DEPENDS` keeps the latest run current."""
    if previous is None or changed is None or changed & DEPENDS or not _exists(con):
        return
    con.execute("UPDATE theme_runs SET data_version = ? WHERE data_version = ? "
                "AND run_id = (SELECT max(run_id) FROM theme_runs)", [version, previous])


def latest(con: duckdb.DuckDBPyConnection) -> Run | None:
    """The latest kept run, or None when discovery was never run on this store."""
    if not _exists(con):
        return None
    # as Python values and without the kept sums (``aggregates``, 0.45 MB on the bench store), which
    # a page reading the run does not need: a frame of them cost about 0.01 s
    rows = store.rows(con, store.Query("theme_run", "SELECT run_id, data_version, created_at, actor, seconds, "
                                                    "codebook_version, settings, discovery, codebook "
                                                    "FROM theme_runs ORDER BY run_id DESC LIMIT 1"))
    if not rows:
        return None
    run_id, version, created, actor, seconds, cbv, settings, disc, codebook = rows[0]
    return Run(int(run_id), int(version), created, str(actor), float(seconds), None if cbv is None else int(cbv),
               json.loads(settings), _disc(disc), {k: tuple(v) for k, v in json.loads(codebook).items()})


def kept_sums(con: duckdb.DuckDBPyConnection, run: Run) -> dict[str, pd.DataFrame]:
    """The run's unfiltered sums (:func:`cxmetrics.theme_sums.aggregate` frames and feeling counts),
    for figures at another confidence level or minimum n than the kept results."""
    raw = store.scalar(con, "SELECT aggregates FROM theme_runs WHERE run_id = $r", {"r": run.run_id})
    return {k: _frame(v) for k, v in json.loads(raw).items()}


def kept_results(con: duckdb.DuckDBPyConnection) -> dict[str, pd.DataFrame]:
    """The latest run's unfiltered results at 95% and the default minimum n: ``cost`` (the table of
    :func:`cxmetrics.theme_sums.cost_table`), ``trend``, ``sentiment``, ``emotions``."""
    have = _result_tables(con)
    out = {}
    for name in RESULTS:
        table = f"theme_result_{name}"  # names from RESULTS
        out[name] = store.run(con, store.Query(table, f"SELECT * FROM {table}")) if table in have else pd.DataFrame()
    return out


def _result_tables(con) -> set[str]:
    if getattr(con, "engine", "duckdb") == "spark":
        return {t for t in con.kept if t.startswith("theme_result_")}
    return set(store.run(con, store.Query("theme_results", "SELECT table_name FROM duckdb_tables() WHERE "
                                          "database_name = current_database() AND schema_name = current_schema() "
                                          "AND table_name LIKE 'theme_result_%'"))["table_name"])


def lean(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the latest run is current and kept the lean tables (:mod:`cxmetrics.metrics.theme_lean`):
    pages may then read those (one small query, no JSON parsed)."""
    return lean_run(con) is not None


def lean_run(con: duckdb.DuckDBPyConnection) -> int | None:
    """The latest run's id when it is current and kept the lean tables (:func:`lean`), else None."""
    if getattr(con, "engine", "duckdb") == "spark" or not _exists(con):
        return None  # a lake keeps no lean tables
    row = store.rows(con, store.Query("theme_run_version", "SELECT run_id, data_version FROM theme_runs "
                                                           "ORDER BY run_id DESC LIMIT 1"))
    if not row or int(row[0][1]) != store.data_version(con) or not theme_lean.present(con):
        return None
    return int(row[0][0])


def is_current(con: duckdb.DuckDBPyConnection, run: Run | None) -> bool:
    return run is not None and run.data_version == store.data_version(con)


def save_codebook(con: duckdb.DuckDBPyConnection, cb, *, actor: str, role: str, note: str = "") -> int:
    """Save the codebook (:func:`cxmetrics.themes.save`) and classify every verbatim with it at once,
    reusing the kept discovery (no refit). Returns the codebook version."""
    version = themes.save(con, cb, actor=actor, role=role, note=note)
    keep(con, actor=actor, role=role, refit=False)
    return version


def status(con: duckdb.DuckDBPyConnection) -> dict:
    run = latest(con)
    if run is None:
        return {"kept": False, "data_version": store.data_version(con)}
    return {"kept": True, "run_id": run.run_id, "current": is_current(con, run), "run_data_version": run.data_version,
            "data_version": store.data_version(con), "created_at": str(run.created_at), "actor": run.actor,
            "seconds": round(run.seconds, 2), "themes": len(run.codebook), "settings": run.settings,
            "codebook": f"saved v{run.codebook_version}" if run.codebook_version else "discovered"}


# --------------------------------------------------------------------------- command line


def _cli_discover(args) -> int:
    from cxmetrics.core.output import emit

    out = discover_file(args.db, sample=args.sample, seed=args.seed, n_themes=args.themes, actor=args.actor,
                        role=args.role)
    emit(out, args, lambda o: (f"theme run {o['run_id']} kept at data version {o['data_version']}: {o['themes']} themes "
                               f"({o['codebook']} codebook) fitted on {o['sample']:,} of {o['verbatims']:,} verbatims; "
                               f"{o['tags']:,} theme assignments; {o['annotated']:,} verbatims annotated; "
                               f"{o['seconds']:.1f} s (discover {o['discover_s']:.1f}, classify {o['classify_s']:.1f}, "
                               f"annotate {o['annotate_s']:.1f}, aggregate {o['aggregate_s']:.1f}; write lock held "
                               f"{o['write_s']:.1f})"))
    return 0


def _cli_status(args) -> int:
    from cxmetrics.core.output import emit

    with store.connect(args.db) as con:
        out = status(con)
    emit(out, args, lambda o: ("no theme run kept: run `python -m cxmetrics themes discover`" if not o["kept"] else
                               f"theme run {o['run_id']} ({o['themes']} themes, {o['codebook']} codebook) at data version "
                               f"{o['run_data_version']}; the data is at {o['data_version']}: "
                               + ("current" if o["current"] else "stale — run `themes discover` again")))
    return 0


def register_cli(sub, parents) -> None:
    p = sub.add_parser("themes", help="discover the verbatims' themes and keep them (`themes discover`, `themes status`)")
    s = p.add_subparsers(dest="themes_command", required=True, metavar="discover|status")
    d = s.add_parser("discover", parents=parents[:1], help="fit themes on a seeded sample (read-only), then take the write lock to "
                                                    "classify every verbatim and keep (refused if the data changed meanwhile)")
    d.add_argument("--sample", type=int, default=SAMPLE, help=f"verbatims the topic model is fitted on (default {SAMPLE:,})")
    d.add_argument("--seed", type=int, default=0, help="seed of the sample and of the NMF start (default 0)")
    d.add_argument("--themes", type=int, default=12, help="themes per language (default 12)")
    d.add_argument("--actor", default="cli", help="who runs it (for the audit log)")
    d.add_argument("--role", default="analyst", help="caller's role (analyst: the role that edits the codebook)")
    d.set_defaults(func=_cli_discover)
    st = s.add_parser("status", parents=parents[:1], help="the kept run and whether it is current")
    st.set_defaults(func=_cli_status)
