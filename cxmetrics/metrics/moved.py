"""What moved this period: every metric × dimension against the previous period, FDR-controlled.

For NPS, CSAT, complaints per month and each theme's share of verbatims, overall and by segment,
region, touchpoint and department (complaints: no touchpoint), the last ``months`` months are
compared with the ``months`` before them:

* NPS: difference of two independent NPS, z = Δ / √(SE₁² + SE₂²) (:func:`cxmetrics.nps.difference`);
* CSAT: difference of means, Welch (unequal-variance) normal test;
* complaints per month: two Poisson counts over equal exposure, Δ = (k₁ − k₀)/months,
  SE = √(k₁ + k₀)/months;
* theme share: difference of two proportions, Wald SE (unpooled) for the interval and the test.

Cells with fewer than ``filters.min_n`` observations in either period are not tested (counted).
All p-values of the family go through Benjamini & Hochberg (1995)
(:func:`cxmetrics.core.stats.benjamini_hochberg`, as statsmodels' ``multipletests``, ``fdr_bh``) at
``q``: the list keeps the changes whose adjusted p-value (q-value) is below ``q``, so the expected
share of false discoveries among them is at most ``q``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Mapping

import duckdb

from cxmetrics import store
from cxmetrics.core import lazy
from cxmetrics.core.dist import norm
from cxmetrics.core.filters import Filters
from cxmetrics.core.results import Result, frame_from_parts, frame_parts
from cxmetrics.core.stats import benjamini_hochberg
from cxmetrics.metrics import nps, theme_lean, theme_store, themes
from cxmetrics.store import summaries

np = lazy.module("numpy")
pd = lazy.module("pandas")

DIMS = ("segment", "region", "touchpoint", "department")
_DIM_SQL = {"segment": "c.segment", "region": "c.region",
            "touchpoint": "coalesce(r.touchpoint, '(relationship)')", "department": "coalesce(r.department, '(none)')"}
#: The complaint dimensions over the complaints summary (alias ``k``).
_COMPLAINT_DIM_SQL = {"segment": "k.segment", "region": "k.region", "department": "coalesce(k.department, '(none)')"}
#: The same dimensions over the kept theme run's lean tables (alias ``x``; touchpoint already coalesced).
_LEAN_DIM_SQL = {"segment": "x.segment", "region": "x.region", "touchpoint": "x.touchpoint",
                 "department": "coalesce(x.department, '(none)')"}
METHOD = ("Last period vs the one before, every metric × dimension cell: NPS difference z-test, CSAT Welch test, "
          "complaints per month as two Poisson counts, theme share two-proportion Wald test; cells below the "
          "minimum n in either period are not tested; Benjamini–Hochberg FDR over the whole family.")
REFERENCE = "Benjamini & Hochberg (1995), Controlling the false discovery rate, JRSS B 57(1)."


def periods(end: dt.date, months: int) -> tuple[dt.date, dt.date, dt.date]:
    """(start of previous, start of current, end): two back-to-back windows of ``months`` ending at ``end``.

    >>> periods(dt.date(2026, 9, 30), 3)
    (datetime.date(2026, 3, 30), datetime.date(2026, 6, 30), datetime.date(2026, 9, 30))
    """
    cur = (pd.Timestamp(end) - pd.DateOffset(months=months)).date()
    prev = (pd.Timestamp(end) - pd.DateOffset(months=2 * months)).date()
    return prev, cur, end


def assess_cells(cells: pd.DataFrame, *, q: float = 0.05, alpha: float = 0.05, min_n: int = 30) -> pd.DataFrame:
    """Test every cell and control the FDR. ``cells`` has ``metric, dim, level`` and per period
    (suffix ``_0`` previous, ``_1`` current) the sufficient statistics of its metric:
    ``nps``: n, p, d; ``csat``: n, s, ss (sum and sum of squares); ``complaints``: k and
    ``months``; ``share``: n (verbatims), k (mentions). Returns the cells with ``before, after,
    change, ci_low, ci_high, p_value, q_value, moved`` (untested cells have NaN p-values)."""
    z = float(norm.ppf(1 - alpha / 2))
    out = cells.copy()
    before, after, se = np.full(len(out), np.nan), np.full(len(out), np.nan), np.full(len(out), np.nan)
    tested = np.zeros(len(out), dtype=bool)
    for i, r in enumerate(out.itertuples(index=False)):
        m = r.metric
        if m == "nps":
            if min(r.n_0, r.n_1) < min_n:
                continue
            a = nps.nps_estimate(int(r.n_0), float(r.p_0), float(r.d_0), alpha=alpha)
            b = nps.nps_estimate(int(r.n_1), float(r.p_1), float(r.d_1), alpha=alpha)
            before[i], after[i], se[i] = a.estimate, b.estimate, math.hypot(a.se, b.se)
        elif m == "csat":
            if min(r.n_0, r.n_1) < min_n:
                continue
            mu0, mu1 = r.s_0 / r.n_0, r.s_1 / r.n_1
            v0 = max(r.ss_0 / r.n_0 - mu0 ** 2, 0) * r.n_0 / (r.n_0 - 1)
            v1 = max(r.ss_1 / r.n_1 - mu1 ** 2, 0) * r.n_1 / (r.n_1 - 1)
            before[i], after[i], se[i] = mu0, mu1, math.sqrt(v0 / r.n_0 + v1 / r.n_1)
        elif m == "complaints":
            if r.k_0 + r.k_1 < min_n:
                continue
            before[i], after[i], se[i] = r.k_0 / r.months, r.k_1 / r.months, math.sqrt(r.k_0 + r.k_1) / r.months
        elif m == "share":
            if min(r.n_0, r.n_1) < min_n:
                continue
            p0, p1 = r.k_0 / r.n_0, r.k_1 / r.n_1
            before[i], after[i] = 100 * p0, 100 * p1
            se[i] = 100 * math.sqrt(p0 * (1 - p0) / r.n_0 + p1 * (1 - p1) / r.n_1)
        else:
            raise ValueError(f"unknown metric {m!r}")
        tested[i] = se[i] > 0
    change = after - before
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(tested, 2 * norm.sf(np.abs(change) / se), np.nan)
    out["before"], out["after"], out["change"] = before, after, change
    out["ci_low"], out["ci_high"], out["se"], out["p_value"] = change - z * se, change + z * se, se, p
    out["q_value"], out["moved"] = np.nan, False
    if tested.any():
        reject, qv = benjamini_hochberg(p[tested], q)
        out.loc[tested, "q_value"] = qv
        out.loc[tested, "moved"] = reject
    return out


UNITS = {"nps": ("NPS", "points", "{:.1f}"), "csat": ("CSAT", "points", "{:.2f}"),
         "complaints": ("Complaints", "a month", "{:,.1f}"), "share": ("share of verbatims", "points", "{:.1f}")}


def sentence(r, before: str, after: str, alpha: float = 0.05) -> str:
    """A plain sentence for one tested cell, e.g. "NPS for region north fell from 32.1 to 24.0
    (−8.1 points, 95% CI −12.0 to −4.2; FDR-adjusted p = 0.003), Apr–Jun vs Jul–Sep."

    >>> r = pd.Series({"metric": "nps", "dim": "region", "level": "north", "theme": None, "before": 32.1,
    ...                "after": 24.0, "change": -8.1, "ci_low": -12.0, "ci_high": -4.2, "q_value": 0.003})
    >>> sentence(r, "Q2", "Q3")
    'NPS for region north fell from 32.1 to 24.0 (-8.1 points, 95% CI -12.0 to -4.2; FDR-adjusted p = 0.003), Q2 to Q3.'
    """
    name, unit, fmt = UNITS[r["metric"]]
    if r["metric"] == "share":
        name = f"Theme \u201c{r['theme']}\u201d ({name})"
    where = "overall" if r["dim"] == "all" else f"for {r['dim']} {r['level']}"
    verb = "rose" if r["change"] > 0 else "fell"
    level = round((1 - alpha) * 100)
    return (f"{name} {where} {verb} from {fmt.format(r['before'])} to {fmt.format(r['after'])} "
            f"({r['change']:+.1f} {unit}, {level}% CI {r['ci_low']:.1f} to {r['ci_high']:.1f}; "
            f"FDR-adjusted p {_p(r['q_value'])}), {before} to {after}.").replace("+-", "-")


def _p(v: float) -> str:
    return "< 0.001" if v < 0.001 else f"= {v:.3f}"


def _cells_sql(dims: Iterable[str], body: str, keys: Mapping[str, str], sums: Mapping[str, str],
               dim_sql: Callable[[str], str] | None = None) -> tuple[str, str]:
    """The ``sums`` (additive aggregates: counts and sums, by name) per ``keys`` (expressions, by
    name) overall and by each whitelisted dimension (``dim_sql`` maps one to its expression over
    ``body``; default: a response row ``r`` and its customer ``c``), in one scan of ``body``: it is
    grouped by every dimension at once into ``mv_cells`` (a few thousand rows), which the overall
    and per-dimension rows then add up. Returns (``mv_cells``' query, the query over it), for
    :func:`_one_scan` or a caller's own WITH list."""
    dim_sql = dim_sql or _DIM_SQL.get
    dims = tuple(dims)
    inner = ", ".join([f"{dim_sql(d)} AS mv_{d}" for d in dims] + [f"{e} AS {n}" for n, e in keys.items()]
                      + [f"{e} AS {n}" for n, e in sums.items()])
    added = ", ".join([*keys] + [f"sum({n}) AS {n}" for n in sums])
    parts = [f"SELECT 'all' AS dim, 'all' AS level, {added} FROM mv_cells GROUP BY ALL"]
    for d in dims:
        parts.append(f"SELECT '{d}' AS dim, CAST(mv_{d} AS VARCHAR) AS level, {added} FROM mv_cells GROUP BY ALL")
    return f"SELECT {inner} FROM {body} GROUP BY ALL", "\nUNION ALL\n".join(parts)  # dims come from DIMS only


def _one_scan(cells: tuple[str, str]) -> str:
    return f"WITH mv_cells AS ({cells[0]})\n{cells[1]}"


#: A view of :func:`_scan`: None (the window's rows), or a dimension of the cells (segment or
#: region) and one of its values.
View = tuple[str, str] | None


def _scan(con: duckdb.DuckDBPyConnection, name: str, cells: tuple[str, str], params: dict,
          views: tuple[View, ...] = (None,)) -> list[pd.DataFrame]:
    """``cells``' query (:func:`_cells_sql`, :func:`_by_period`) for each of ``views``: its rows, or those
    of one segment or region. Every view's cells are the finest cells' (``mv_cells``: grouped by
    every dimension at once) of that segment or region, so several views take one scan of the
    window: its finest cells, kept in a temporary table, then one query adding them up for every
    view at once (each view's rows in the order its own query gives: ORDER BY every column)."""
    if views == (None,):
        return [store.run(con, store.Query(name, _one_scan(cells), params))]
    table = f"__mv_cells_{name}"  # the caller's name: a literal
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {cells[0]}", params)
    try:
        parts, vparams = [], {}
        for i, v in enumerate(views):  # the dimension: segment or region (the fit's)
            where = "" if v is None else f" WHERE mv_{v[0]} = $mv_{i}"
            if v is not None:
                vparams[f"mv_{i}"] = v[1]
            parts.append(f"SELECT {i} AS mv_view, * FROM (WITH mv_cells AS (SELECT * FROM {table}{where})\n{cells[1]})")
        both = store.run(con, store.Query(name, "\nUNION ALL\n".join(parts), vparams))
    finally:
        con.execute(f"DROP TABLE IF EXISTS {table}")
    cols = [c for c in both.columns if c != "mv_view"]
    return [both[both["mv_view"] == i][cols].sort_values(cols, na_position="last", kind="stable").reset_index(drop=True)
            for i in range(len(views))]


def _by_period(cells: tuple[str, str], sums: Iterable[str], keys: tuple[str, ...] = ()) -> tuple[str, str]:
    """``cells`` (keyed by ``period`` 0/1 among others) with the two periods side by side: one row per
    dimension, level (and ``keys``) and each sum as ``<name>_0`` and ``<name>_1`` (NULL where the
    period has no row). Rows whose level or key is missing are left out."""
    split = ", ".join(f"sum({n}) FILTER (WHERE period = {p}) AS {n}_{p}" for n in sums for p in (0, 1))
    known = " AND ".join(f"{k} IS NOT NULL" for k in ("level", *keys))
    return cells[0], (f"SELECT dim, level{''.join(', ' + k for k in keys)}, {split}\nFROM ({cells[1]}) mv_split\n"
                      f"WHERE {known} GROUP BY ALL ORDER BY ALL")


def last_answer(con: duckdb.DuckDBPyConnection) -> dt.date | None:
    """The day of the last survey answer: where the comparison ends without a date range."""
    return store.scalar(con, "SELECT max(responded_on) FROM survey_responses", name="last_answer")


def cells(con: duckdb.DuckDBPyConnection, filters: Filters, *, months: int = 3, end: dt.date | None = None,
          cb: Mapping[str, Iterable[str]] | None = None, kept: bool = False,
          from_fit: bool = True) -> tuple[pd.DataFrame, tuple[dt.date, dt.date, dt.date]]:
    """The sufficient statistics of every metric × dimension × period cell (see :func:`assess_cells`);
    ``kept``: the themes are read from the kept assignments of a current theme run (``cb`` is its codebook).
    A view whose cells are kept with the summaries (:func:`default_fit`: unfiltered or one segment or
    one region, at the data's end, ``months`` as kept) reads them from there (``from_fit=False``: never)."""
    if end is None:
        end = filters.date_to or last_answer(con)
    if end is None:
        return pd.DataFrame(), (None, None, None)
    prev, cur, end = periods(pd.Timestamp(end).date(), months)
    f = filters.with_(date_from=prev + dt.timedelta(days=1), date_to=end)
    doc = _kept_cells(con, filters, end, months) if from_fit else None
    frames = [frame_from_parts(p) for p in doc["base"]] if doc else _base_frames(con, f, cur, months)[0]
    if cb and kept and (run_id := theme_store.lean_run(con)) is not None:  # the kept run's lean tables
        if doc and doc.get("theme_run") == run_id:  # kept with the cells at this run
            frames += [frame_from_parts(p) for p in doc["shares"]]
        else:
            frames += _lean_share_frames(con, f, cur)[0]
    elif cb:
        frames += _classified_share_frames(con, f, cur, cb, kept)
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return out, (prev, cur, end)


def _base_frames(con: duckdb.DuckDBPyConnection, f: Filters, cur: dt.date, months: int,
                 views: tuple[View, ...] = (None,)) -> list[list[pd.DataFrame]]:
    """The NPS, CSAT and complaint cells of the window ``f`` (current period after ``cur``), for
    each of ``views`` (:func:`_scan`)."""
    # Counts from the responses and complaints summaries (counted cubes by day, segment, region,
    # touchpoint and department; the relations' own SQL when a summary is not current). A response
    # or complaint without a customer has no segment: left out, as the join to customers does.
    src = summaries.responses(con)
    where, params = f.where(date_col="r.responded_on", customer=src.customer, department_col="r.department")
    sums = {"n_nps": src.count("r.nps IS NOT NULL"), "p": src.count("r.nps >= 9"), "d": src.count("r.nps <= 6"),
            "n_csat": src.count("r.csat IS NOT NULL"), "s": src.xsum("r.csat"), "ss": src.xsum("r.csat * r.csat")}
    surveys = _scan(con, "moved_survey", _by_period(_cells_sql(
        DIMS, f"{src.source} WHERE {where} AND r.segment IS NOT NULL",
        {"period": "CAST(r.responded_on > $cur AS INTEGER)"}, sums, lambda d: src.dim(_DIM_SQL[d])), sums),
        {**src.params, **params, "cur": cur}, views)
    csrc = summaries.complaints(con)
    cw, cparams = f.where(date_col="k.opened_on", customer=csrc.customer, department_col="k.department")
    comps = _scan(con, "moved_complaints", _by_period(_cells_sql(
        ("segment", "region", "department"), f"{csrc.source} WHERE {cw} AND k.segment IS NOT NULL",
        {"period": "CAST(k.opened_on > $cur AS INTEGER)"}, {"k": csrc.count()}, _COMPLAINT_DIM_SQL.get), ("k",)),
        {**csrc.params, **cparams, "cur": cur}, views)
    out = []
    for survey, comp in zip(surveys, comps, strict=True):
        frames = [_flatten(survey, cols, metric) for metric, cols in (("nps", {"n_nps": "n", "p": "p", "d": "d"}),
                                                                       ("csat", {"n_csat": "n", "s": "s", "ss": "ss"}))]
        if len(comp):
            c = _flatten(comp, {"k": "k"}, "complaints")
            c["months"] = months
            frames.append(c)
        out.append(frames)
    return out


def _lean_share_frames(con: duckdb.DuckDBPyConnection, f: Filters, cur: dt.date,
                       views: tuple[View, ...] = (None,)) -> list[list[pd.DataFrame]]:
    """The theme-share cells of the window ``f`` from the kept run's lean tables (no join at read
    time), for each of ``views`` (:func:`_scan`)."""
    lw, lparams = theme_lean.cond(f)
    lparams["cur"] = cur
    lper = "CAST(x.responded_on > $cur AS INTEGER)"
    if theme_lean.extras_present(con):  # mentions and verbatims counted by day and dimension
        tags = (f"{theme_lean.DAY_CELLS} x WHERE {lw} AND x.known AND x.theme IS NOT NULL", "sum(x.mentions)::BIGINT")
        verbatims = (f"{theme_lean.DAY_CELLS} x WHERE {lw} AND x.known AND x.theme IS NULL", "sum(x.mentions)::BIGINT")
    else:  # a run kept before the day cells: its rows
        tags = (f"theme_tagged x WHERE {lw} AND x.known", "count(*)")
        verbatims = (f"theme_verbatims x WHERE {lw} AND x.known AND NOT x.blank", "count(*)")
    tags = _scan(con, "moved_themes", _by_period(_cells_sql(
        DIMS, tags[0], {"theme": "x.theme", "period": lper}, {"k": tags[1]}, _LEAN_DIM_SQL.get), ("k",), ("theme",)),
        lparams, views)
    tots = _scan(con, "moved_verbatims", _by_period(_cells_sql(
        DIMS, verbatims[0], {"period": lper}, {"n": verbatims[1]}, _LEAN_DIM_SQL.get), ("n",)), lparams, views)
    return [_share_frames(tag, tot) for tag, tot in zip(tags, tots, strict=True)]


def _classified_share_frames(con: duckdb.DuckDBPyConnection, f: Filters, cur: dt.date,
                             cb: Mapping[str, Iterable[str]], kept: bool) -> list[pd.DataFrame]:
    """The theme-share cells of the window ``f`` from the kept assignments (``kept``) or the verbatims
    classified with ``cb`` on the fly."""
    sql, tparams = theme_store.kept_prefix(f, con) if kept else themes.tagged_sql(f, cb)
    tparams = {**tparams, "cur": cur}
    tbody = ("v JOIN survey_responses r USING (response_id) JOIN customers c ON c.customer_id = r.customer_id "
             "LEFT JOIN tagged t USING (response_id)")
    per = "CAST(r.responded_on > $cur AS INTEGER)"
    tag_cells = _by_period(_cells_sql(DIMS, tbody, {"theme": "t.theme", "period": per}, {"k": "count(*)"}),
                           ("k",), ("theme",))
    tag = store.run(con, store.Query("moved_themes", f"{sql}\n, mv_cells AS ({tag_cells[0]})\n{tag_cells[1]}",
                                     tparams))
    tot_cells = _by_period(_cells_sql(
        DIMS, "v JOIN survey_responses r USING (response_id) JOIN customers c ON c.customer_id = r.customer_id",
        {"period": per}, {"n": "count(*)"}), ("n",))
    tot = store.run(con, store.Query("moved_verbatims", f"{sql}\n, mv_cells AS ({tot_cells[0]})\n{tot_cells[1]}",
                                     tparams))
    return _share_frames(tag, tot)


#: The cells are kept (:func:`default_fit`) for the last ``KEPT_MONTHS`` against the ones before, the
#: page's comparison.
KEPT_MONTHS = 3


def default_fit(con: duckdb.DuckDBPyConnection) -> dict | None:
    """The cells of the unfiltered view at the data's end (the last answer's day), and under ``by``
    those of each view of one segment or one region (``summaries.KEPT_VALUES``), as plain values, kept in
    summary_fits (:mod:`cxmetrics.store.summaries`): the NPS, CSAT and complaint cells (``base``),
    and the theme shares (``shares``) when the latest theme run is current with its lean tables
    (``theme_run`` names it; else the page reads them as it would without kept cells). None without
    survey responses, and on a lake (Spark), whose pages compute the cells."""
    if getattr(con, "engine", "duckdb") == "spark":
        return None
    end = last_answer(con)
    if end is None:
        return None
    run_id = theme_store.lean_run(con)
    cb = theme_store.latest(con).codebook if run_id is not None else None
    prev, cur, end = periods(pd.Timestamp(end).date(), KEPT_MONTHS)
    views: list[View] = [None]
    for dim in ("segment", "region"):  # column names from this tuple
        values = store.run(con, store.Query(f"moved_kept_{dim}s", f"SELECT {dim} AS v FROM customers WHERE {dim} IS NOT "
                                            f"NULL GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT $n", {"n": summaries.KEPT_VALUES}))
        views += [(dim, str(v)) for v in values["v"]]
    # the unfiltered window's finest cells, scanned once, added up for each view
    f = Filters(date_from=prev + dt.timedelta(days=1), date_to=end)
    base = _base_frames(con, f, cur, KEPT_MONTHS, tuple(views))
    shares = _lean_share_frames(con, f, cur, tuple(views)) if cb else [[] for _ in views]
    docs = [{"end": end.isoformat(), "months": KEPT_MONTHS, "theme_run": run_id,
             "base": [frame_parts(x) for x in b], "shares": [frame_parts(x) for x in sh]} for b, sh in zip(base, shares, strict=True)]
    out = docs[0]
    out["by"] = {"segment": {}, "region": {}}
    for v, doc in zip(views[1:], docs[1:], strict=True):
        out["by"][v[0]][v[1]] = doc
    return out


def _kept_cells(con: duckdb.DuckDBPyConnection, filters: Filters, end: dt.date, months: int) -> dict | None:
    """The kept cells (:func:`default_fit`) of the view ``filters`` select, ending at ``end``, when there are."""
    doc = summaries.kept_view(con, "moved", filters.undated())
    if doc is None or doc["end"] != end.isoformat() or doc["months"] != months:
        return None
    return doc


def _share_frames(tag: pd.DataFrame, tot: pd.DataFrame) -> list[pd.DataFrame]:
    """The theme-share cells from mentions per (dim, level, theme) and verbatims per (dim, level),
    each period side by side (:func:`_by_period`)."""
    if not len(tag):
        return []
    s = _flatten(tag, {"k": "k"}, "share", extra=("theme",))
    n = tot[["dim", "level", "n_0", "n_1"]]
    s = s.merge(n, on=["dim", "level"], how="left")  # keeps the order of s
    s[["n_0", "n_1"]] = s[["n_0", "n_1"]].fillna(0)
    return [s]


def _flatten(w: pd.DataFrame, cols: Mapping[str, str], metric: str, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """One metric's cells from a :func:`_by_period` frame: ``metric, dim, level`` (and ``extra``
    keys), each sum renamed per period (``<src>_0`` → ``<dst>_0``), a missing period as 0."""
    flat = w[["dim", "level", *extra]].copy()
    for src, dst in cols.items():
        for per in (0, 1):
            flat[f"{dst}_{per}"] = w[f"{src}_{per}"].fillna(0)
    flat.insert(0, "metric", metric)
    if "theme" not in flat.columns:
        flat["theme"] = None
    return flat


def strongest_first(t: pd.DataFrame) -> pd.DataFrame:
    """Tested cells (:func:`assess_cells`) with the moved ones first, strongest evidence first: by
    FDR-adjusted p, and where those tie by the size of the z statistic — BH's adjusted values often
    tie, and at a million customers most moved cells' p-values are 0.0 in floating point."""
    t = t.assign(_abs_z=(t["change"] / t["se"]).abs())
    return t.sort_values(["moved", "q_value", "_abs_z"], ascending=[False, True, False],
                         na_position="last").drop(columns="_abs_z").reset_index(drop=True)


@store.memoized
def what_moved(con: duckdb.DuckDBPyConnection, filters: Filters, *, months: int = 3, q: float = 0.05,
               alpha: float = 0.05, cb: Mapping[str, Iterable[str]] | None = None, kept: bool = False) -> Result:
    """The "what moved this period" list: every tested cell in ``table`` (``moved`` marks those that
    survive the FDR), and ``extra["sentences"]`` the plain sentences of the moved ones, strongest
    evidence first. ``cb`` defaults to the saved codebook (no theme shares without one)."""
    with store.recorded() as ran:  # the cells' queries (those of the kept cells' read when they hold them)
        if cb is None:
            cb = themes.current(con)[1]
        raw, (prev, cur, end) = cells(con, filters, months=months, cb=cb, kept=kept)
    queries = store.distinct(ran)
    if raw.empty:
        return Result("what_moved", "What moved this period", pd.DataFrame(), method=METHOD, reference=REFERENCE,
                      alpha=alpha, warnings=("No survey responses to compare.",), extra={"sentences": []},
                      queries=queries)
    t = assess_cells(raw, q=q, alpha=alpha, min_n=filters.min_n)
    before = f"{prev + dt.timedelta(days=1):%d %b %Y}–{cur:%d %b %Y}"
    after = f"{cur + dt.timedelta(days=1):%d %b %Y}–{end:%d %b %Y}"
    t["sentence"] = ""
    hit = t["moved"].to_numpy(dtype=bool)
    if hit.any():  # the moved cells only: a few of thousands
        t.loc[hit, "sentence"] = [sentence(r, before, after, alpha) for r in t[hit].to_dict("records")]
    t = strongest_first(t)
    t["estimate"], t["n"] = t["change"], t.filter(regex=r"^n_[01]$").sum(axis=1)
    t["small_sample"] = t["p_value"].isna()
    untested = int(t["p_value"].isna().sum())
    warnings = (f"{untested:,} cells below the minimum n ({filters.min_n}) were not tested.",) if untested else ()
    return Result("what_moved", "What moved this period", t, method=METHOD, reference=REFERENCE,
                  filters=filters.describe(), alpha=alpha, warnings=warnings, queries=queries,
                  assumptions={"months per period": months, "FDR q": q,
                               "codebook themes": len(cb)},
                  extra={"sentences": t.loc[t["moved"], "sentence"].tolist(), "tested": int(t["p_value"].notna().sum()),
                         "periods": (before, after)})


#: How many moved cells the Executive summary and the deck say in sentences: at a million customers
#: hundreds of cells survive the FDR control (597 on the bench's store), and a page of them is no
#: summary. The rest are counted in one more sentence; the page lists them all in a table.
HEADLINES = 8


def describe(result: Result, limit: int | None = None, rest_where: str = "the Executive summary lists them all"
             ) -> list[str]:
    """The sentences to show (at most ``limit`` of the moved cells, strongest evidence first, and
    then one counting the others and saying ``rest_where`` they are), or one sentence saying why
    there are none."""
    sentences = list(result.extra.get("sentences") or ())
    if sentences:
        if limit is None or len(sentences) <= limit:
            return sentences
        rest = len(sentences) - limit
        return sentences[:limit] + [f"…and {rest:,} more change{'s' if rest > 1 else ''} survived the "
                                    f"false-discovery-rate control, each with weaker evidence than these: "
                                    f"{rest_where}."]
    if result.table.empty:
        return ["Nothing to compare: no survey responses in the last two periods."]
    q = result.assumptions.get("FDR q", 0.05)
    return [f"No change survived the false-discovery-rate control (Benjamini–Hochberg, q = {q:.0%}) among "
            f"{result.extra.get('tested', 0):,} metric × group comparisons: nothing moved beyond noise."]


def moved_cells(result: Result) -> pd.DataFrame:
    """The cells that moved (strongest evidence first), with the columns a reader needs: what, where,
    before, after, the change with its interval, the FDR-adjusted p and the answers (or complaints)
    behind them."""
    cols = ["metric", "dim", "level", "theme", "before", "after", "change", "ci_low", "ci_high", "q_value", "n"]
    names = {"dim": "dimension", "q_value": "fdr_adjusted_p_value"}
    t = result.table
    if t.empty or "moved" not in t.columns:
        return pd.DataFrame(columns=cols).rename(columns=names)
    hit = t.loc[t["moved"].astype(bool)]
    out = hit.reindex(columns=cols).reset_index(drop=True)
    # n: the answers (NPS, CSAT) or verbatims (a theme's share) of both periods; complaints: their count
    answers = hit.reindex(columns=["n_0", "n_1"]).sum(axis=1).to_numpy()
    complaints = hit.reindex(columns=["k_0", "k_1"]).sum(axis=1).to_numpy()
    out["n"] = np.where(hit["metric"].eq("complaints").to_numpy(), complaints, answers).astype("int64")
    return out.rename(columns=names)
