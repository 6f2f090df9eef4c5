"""Customer-clustered (linearised) variances for survey ratios: a customer who answers more than
once is one cluster, not several independent responses.

A survey figure is a ratio R = Σy / Σw over responses (NPS: y = promoter − detractor; a mean
rating: y = rating; a share: y = 1 when satisfied; w = 1 or the survey weight). With customers as
clusters, Y_c and W_c a customer's sums, the linearised (Taylor) variance of R is

    V(R) = m / (m − 1) · Σ_c (Y_c − R·W_c)² / (Σw)²

(Wolter 2007, §6.4; the same as the CR1 cluster-robust variance of a mean). It needs only the
cluster sums Σ_c Y_c², Σ_c Y_c·W_c and Σ_c W_c², which DuckDB returns in one GROUP BY.

References
----------
Wolter, K. M. (2007), Introduction to Variance Estimation, 2nd ed., Springer, §6.4.
Kish, L. (1965), Survey Sampling, §8.2 (design effect; effective n = n / deff).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from dataclasses import dataclass

from cxmetrics import store
from cxmetrics.core import lazy
from cxmetrics.core.periods import next_period_start, period_start
from cxmetrics.store import histories, incremental, summaries

pd = lazy.module("pandas")

#: The cluster sums kept with the summaries (kept fit "clusters", :data:`cxmetrics.store.summaries.FITS`,
#: registered by :mod:`cxmetrics.commit`): the unfiltered view's per-group sums for the (measure,
#: grouping, survey) the pages ask for. Rows keep the segment and region (a customer has one of
#: each), so a view narrowed by segment or region only picks its customers' rows and its sums are
#: exact. They are kept per department too: a scope of one department keeps a customer's answers in
#: it, whose sums are that department's rows. A range that is exactly one kept period reads its
#: rows (:func:`_whole_period`, :data:`BY_QUARTER`); any other date range, the sums kept per
#: customer and answer day for the kinds kept there (:func:`in_range`). A scope of several
#: departments (a customer who answered in two is one cluster), or any other key, reads the raw
#: responses.
KEPT = (("nps", None, "all"), ("nps", None, "relationship"), ("nps", None, "transactional"),
        ("nps", "quarter", "relationship"), ("nps", "quarter", "transactional"), ("nps", "touchpoint", "transactional"),
        ("csat", "touchpoint", "all"), ("ces", "touchpoint", "all"))

#: Kept groupings also kept per calendar quarter (a ``quarter`` column: the quarter's first day; a
#: customer's answers in one quarter are one cluster): a date range that is exactly one quarter,
#: first day to last, reads that quarter's rows. The overall figure needs none: the NPS by quarter
#: is kept (:func:`_whole_period`).
BY_QUARTER = (("nps", "touchpoint", "transactional"), ("csat", "touchpoint", "all"), ("ces", "touchpoint", "all"))


def kept_key(measure: str, dim: str | None, survey: str, by_department: bool = False, by_quarter: bool = False) -> str:
    return (f"{measure}|{dim or 'all'}|{survey}" + ("|department" if by_department else "")
            + ("|quarter" if by_quarter else ""))


def to_kept(df) -> dict:
    """A cluster-sum frame as JSON-able columns and rows (groups and quarters as text: dates in ISO form)."""
    df = df.assign(**{c: df[c].map(lambda v: v.isoformat() if isinstance(v, dt.date) else v)
                      for c in ("grp", "quarter") if c in df.columns})
    rows = [[None if (isinstance(v, float) and v != v) else (v.item() if hasattr(v, "item") else v) for v in r]
            for r in df.itertuples(index=False, name=None)]
    return {"columns": list(df.columns), "rows": rows}


_SHAPE = re.compile(r"^\s*WITH per AS \((?P<per>.*)\)\s*(?P<final>SELECT\b.*\bFROM per\b.*)$", re.S)


def _parts(query: store.Query) -> tuple[str, str]:
    m = _SHAPE.match(query.sql)
    if m is None:
        raise ValueError(f"{query.name} is not a cluster-sum query")
    return m["per"], m["final"]


def changed_sums(con, query: store.Query) -> tuple[list[tuple], list[tuple]]:
    """Inside a write that only appended rows (:func:`cxmetrics.store.incremental.narrowed`): the
    cluster sums of ``query`` (a cluster-sum query: ``WITH per AS (`` one row per cluster: its
    group, segment, region and id, then additive sums ``) SELECT … FROM per …``) over the clusters
    the appended rows fall in, before the write and after it, as the query's rows. One pass over
    the appended customers' earlier answers: a cluster's sums after the write are its sums before
    plus the appended rows'."""
    per, final = _parts(query)
    con.execute(f"CREATE OR REPLACE TEMP TABLE __cl_new AS {incremental.narrowed(con, per, rows='appended')}",
                query.params)
    cols = [d[0] for d in con.execute("SELECT * FROM __cl_new LIMIT 0").description]
    keys, sums = cols[:cols.index("k")], cols[cols.index("k"):]
    same = " AND ".join(f'b."{k}" IS NOT DISTINCT FROM n."{k}"' for k in keys)
    # the cluster id is the customer's (an anonymous answer is a cluster of its own: never one of these)
    hit = f'SELECT "{keys[-1]}" FROM __cl_new'
    also, params = None, query.params
    # a cluster per period (the group or the quarter, a period's first day): the answers before the
    # first period the appended rows fall in are in no cluster they hit
    periods = [d[0] for d in con.execute("DESCRIBE __cl_new").fetchall() if d[0] in keys and d[1] in ("DATE", "TIMESTAMP")]
    if periods:
        since = con.execute(f"SELECT greatest({', '.join(f'min({c})' for c in periods)}) FROM __cl_new").fetchone()[0]
        if since is not None:
            also, params = {"survey_responses": "responded_on >= $__cl_since"}, {**params, "__cl_since": since}
    con.execute(f"CREATE OR REPLACE TEMP TABLE __cl_before AS SELECT * FROM "
                f"({incremental.narrowed(con, per, rows='before', customers=hit, also=also)}) b "
                f"WHERE EXISTS (SELECT 1 FROM __cl_new n WHERE {same})", params)
    added = ", ".join(f'sum("{c}") AS "{c}"' for c in sums)
    con.execute(f"CREATE OR REPLACE TEMP TABLE __cl_after AS SELECT {', '.join(keys)}, {added} FROM "
                "(SELECT * FROM __cl_before UNION ALL SELECT * FROM __cl_new) GROUP BY ALL")
    out = tuple(con.execute(re.sub(r"\bFROM per\b", f"FROM __cl_{side}", final)).fetchall()
                for side in ("before", "after"))
    for t in ("new", "before", "after"):
        con.execute(f"DROP TABLE __cl_{t}")
    return out


_KEYS = ("grp", "segment", "region", "department", "quarter")


def _kept_value(v):
    """A fetched group value as :func:`to_kept` writes it from a frame: a day or a time as the ISO
    text of its midnight timestamp."""
    if isinstance(v, dt.datetime):
        return v.isoformat()
    if isinstance(v, dt.date):
        return dt.datetime.combine(v, dt.time()).isoformat()
    return v


def updated(doc: dict, before: list[tuple], after: list[tuple]) -> dict:
    """A kept cluster-sum document (:func:`to_kept`) with some customers' sums replaced: ``before``
    and ``after`` are those customers' cluster sums (rows of the query the document was made with,
    narrowed to them: :func:`changed_sums`). m and the sums are additive over customers; a
    customer's answer count only grows, so the largest cluster is the larger of the kept one and
    the largest after. Groups left with no customer are dropped; the rows come back ordered by
    their group columns (missing values last), as a rebuild orders them, m and the largest cluster
    as whole numbers and the sums as floats, as :func:`to_kept` writes a frame's."""
    cols = doc["columns"]
    nk = sum(c in _KEYS for c in cols)  # the group columns come first
    m_at, k_at = cols.index("m") - nk, cols.index("max_k") - nk  # in a row's values after them
    out = {tuple(r[:nk]): [0.0 if v is None else v for v in r[nk:]] for r in doc["rows"]}  # a missing sum adds as 0
    for rows, sign in ((after, 1), (before, -1)):
        for r in rows:
            if len(r) != len(cols):
                raise ValueError(f"cluster sums: {len(r)} columns where the kept ones have {len(cols)}")
            cur = out.setdefault(tuple(_kept_value(v) for v in r[:nk]),
                                 [0 if i in (m_at, k_at) else 0.0 for i in range(len(cols) - nk)])
            for i, v in enumerate(r[nk:]):
                if i == k_at:
                    cur[i] = max(cur[i], v) if sign > 0 else cur[i]
                elif v is not None:
                    cur[i] += sign * (v if i == m_at else float(v))
    rows = sorted(([*k, *v] for k, v in out.items() if v[m_at] > 0),
                  key=lambda r: tuple((x is None, "" if x is None else x) for x in r[:nk]))
    return {"columns": list(cols), "rows": rows}


def kept(con, measure: str, dim: str | None, survey: str, filters, like=None):
    """The kept cluster sums for this query when they hold exactly its answer (unfiltered, narrowed
    by segment or region, or by a scope of one department; no date range, or a range that is
    exactly one kept period: for the overall figure :func:`_whole_period`, for a grouping of
    :data:`BY_QUARTER` one calendar quarter; the kept fit current), else None. ``like``: the group
    column of the counts the sums are merged with, whose type the groups take back."""
    if (measure, dim, survey) not in KEPT:
        return None
    quarter = None
    if filters.date_from is not None or filters.date_to is not None:
        if dim is None:
            return _whole_period(con, measure, survey, filters)
        quarter = _one_period(filters, "quarter")
        if quarter is None or (measure, dim, survey) not in BY_QUARTER:
            return None
    one = filters.scope.departments[0] if filters.scope.restricted and len(filters.scope.departments or ()) == 1 \
        else None
    if filters.scope.restricted and one is None:  # several departments: a customer in two is one cluster
        return None
    text = summaries.fit_text(con, "clusters")
    key = kept_key(measure, dim, survey, by_department=one is not None, by_quarter=quarter is not None)
    df = _kept_frames(text).get(key) if text else None
    if df is None:
        return None
    if quarter is not None:
        df = df[pd.to_datetime(df["quarter"]).dt.date == quarter].drop(columns="quarter")
    if one is not None:
        df = df[df["department"] == one].drop(columns="department")
    if filters.segments:
        df = df[df["segment"].isin(filters.segments)]
    if filters.regions:
        df = df[df["region"].isin(filters.regions)]
    if like is not None:
        sample = like.dropna()
        if pd.api.types.is_datetime64_any_dtype(like):
            df = df.assign(grp=pd.to_datetime(df["grp"]).astype(like.dtype))
        elif len(sample) and isinstance(sample.iloc[0], dt.date):
            df = df.assign(grp=pd.to_datetime(df["grp"]).dt.date)
    return df.reset_index(drop=True).copy()


def in_range(con, measure: str, dim: str | None, survey: str, filters, query: store.Query, dims: bool):
    """The cluster sums of ``query`` (the cluster-sum query for ``filters``) under a date range, from
    the sums kept per customer and answer day (:data:`cxmetrics.store.histories.CLUSTER_SUFFIXES`, a
    table per kind), which ``query``'s final SELECT adds up in place of its GROUP BY per customer
    over the responses. A customer's row holding on a day D
    (:func:`cxmetrics.store.histories.holds`) has their sums over every answer from D on, so:

    * a range open at its end, starting on D ("the last 12 months"): their sums are that row's;
    * a range closed at its end E: that row's less those of their row holding on E + 1 (none: zero),
      and a customer with no answer in the range (the two rows' counts equal) is left out. An
      answer without a customer is its own row, in the range when its day is.

    A range that starts before the data is each customer's first row (after_day NULL). A scope of
    one department reads the kinds kept within each department (its customers' answers there are
    their clusters). ``dims``: as for :func:`per_customer` (segment and region read, else NULL, as
    the query has them). None without a date range (:func:`kept` answers it), for a scope of no or
    several departments (a customer who answered in two is one cluster), a kind not kept, or a
    stored table not current."""
    one = None
    if filters.scope.restricted:
        if len(filters.scope.departments or ()) != 1:
            return None
        one = filters.scope.departments[0]
    key = kept_key(measure, dim, survey, by_department=one is not None)
    if key not in histories.SUFFIX_KINDS or (filters.date_from is None and filters.date_to is None):
        return None
    name = histories.SUFFIX_KINDS[key][0]  # from relations.ALL
    if not summaries.current(con, name):
        return None
    f = summaries.within_data(con, name, filters)
    cwhere, cparams = f.where(dates=False, customer="x", scope=False)
    shown = "x.segment, x.region" if dims or cwhere.strip() != "TRUE" else "NULL::VARCHAR AS segment, NULL::VARCHAR AS region"
    if one is not None:
        cwhere, cparams = f"x.department = $department AND {cwhere}", {**cparams, "department": one}
    params = dict(cparams)
    where = "x.after_day IS NULL"
    if f.date_from is not None:
        where, params["date_from"] = histories.holds("x", "$date_from"), f.date_from
    if f.date_to is not None:
        params["date_after"] = f.date_to + dt.timedelta(days=1)
    return _from_suffixes(con, key, query, shown, f"{where} AND {cwhere}", params, "in_range",
                          until="$date_after" if f.date_to is not None else None)


def untouched(con, key: str) -> bool:
    """Inside a write that appended survey answers (:func:`cxmetrics.store.incremental.appended`):
    whether ``key`` is a kind kept per customer and answer day that no appended answer belongs to
    (its cluster sums are then as they were). False for any other key."""
    if key not in histories.SUFFIX_KINDS:
        return False
    cond = histories.SUFFIX_KINDS[key][2]  # from histories: the kind's condition on the answers
    rows = incremental.appended_rows("survey_responses")
    return not con.execute(f"SELECT count(*) FROM {rows} r WHERE {cond}").fetchone()[0]


def whole(con, key: str, query: store.Query):
    """The kept fit's cluster sums for ``key`` (:func:`kept_key`, no quarter) — ``query``, the
    unfiltered query :func:`cxmetrics.metrics.scores.kept_clusters` runs for it — from the sums kept
    per customer and answer day: a customer's sums over all their answers are those of their row
    with no answer before (after_day NULL). None for a kind not kept there or a table not current
    (the raw responses are read then)."""
    if key not in histories.SUFFIX_KINDS or not summaries.current(con, histories.SUFFIX_KINDS[key][0]):
        return None
    shown = "x.segment, x.region" + (", x.department" if key.endswith("|department") else "")
    return _from_suffixes(con, key, query, shown, "x.after_day IS NULL", {}, "kept")


def _from_suffixes(con, key: str, query: store.Query, shown: str, where: str, params: dict, how: str,
                   until: str | None = None):
    """``query``'s final SELECT over the rows ``where`` of the sums kept per customer and answer day
    for ``key`` (:data:`cxmetrics.store.histories.SUFFIX_KINDS`): each row one customer's (or
    anonymous answer's) sums, with the group and the columns ``shown``. ``until`` (a day after the
    range): less each customer's row holding on it (:func:`in_range`); the customers with no answer
    in the range are left out, as are the answers without a customer given on it or after."""
    name, _, _, measure = histories.SUFFIX_KINDS[key]  # from relations.ALL
    cols = ("k", "u", "w", "y") if measure == "nps" else ("k", "x", "s")
    source, sums = f"{name} x", ", ".join(f"x.{c}" for c in cols)
    if until is not None:
        same = " AND z.department = x.department" if key.endswith("|department") else ""
        source = (f"{name} x LEFT JOIN (SELECT * FROM {name} z WHERE {histories.holds('z', until)}) z"
                  f" ON z.customer_id = x.customer_id AND z.grp = x.grp{same}")
        sums = ", ".join(f"x.{c} - coalesce(z.{c}, 0) AS {c}" for c in cols)
        # a row dated on or after ``until`` has no answer in the range (for a customer, their row
        # holding on ``until`` is then the same row): left out by its day, the stored order, so only
        # the range's rows are read on this side (a range of two weeks with no answer: 0.05 → 0.035 s,
        # by hand at 10M responses)
        where += f" AND x.day < {until} AND x.k > coalesce(z.k, 0)"
    sql = f"""
WITH per AS (
    SELECT x.grp, {shown}, {sums}
    FROM {source}
    WHERE {where}
)
{_parts(query)[1]}"""
    return store.run(con, store.Query(f"{measure}_clusters_{how}", sql, params))


def kept_periods(con, measure: str, period: str, survey: str, filters, live, like=None, answered=None):
    """Cluster sums per ``period`` under a date range from the kept sums where they hold it: a
    customer's answers in one period are one cluster, so the periods the range covers whole have
    exactly their kept (unfiltered-range) sums, and only the days of the periods it cuts at its ends
    are summed live, by ``live(filters)`` (the same query under a narrower range) — unless
    ``answered`` (the first days of the periods with an answer in the range, from the caller's
    counts) shows the cut days have none (a survey sent in waves: 0.035 s saved a cut end, by hand at
    10M responses). None when no period is covered whole or nothing is kept for the rest of the
    filters (the caller then sums the whole range live)."""
    if period not in ("week", "month", "quarter") or (filters.date_from is None and filters.date_to is None):
        return None
    lo, hi = filters.date_from, filters.date_to
    # the first period the range covers whole, and the first start after the last one it does
    first = None if lo is None else lo if period_start(lo, period) == lo \
        else next_period_start(period_start(lo, period), period)
    after = None if hi is None else period_start(hi + dt.timedelta(days=1), period)
    if first is not None and after is not None and first >= after:
        return None
    df = kept(con, measure, period, survey, filters.undated(), like=like)
    if df is None:
        return None
    starts = pd.to_datetime(df["grp"]).dt.date
    keep = pd.Series(True, index=df.index)
    if first is not None:
        keep &= starts >= first
    if after is not None:
        keep &= starts < after
    parts = [df[keep]]

    def cut(start: dt.date) -> bool:  # whether the days of the period starting on ``start`` are summed
        return answered is None or start in answered

    if first is not None and lo < first and cut(period_start(lo, period)):  # the period the range starts in
        parts.append(live(filters.with_(date_to=first - dt.timedelta(days=1))))
    if after is not None and hi >= after and cut(after):  # the period it ends in
        parts.append(live(filters.with_(date_from=after)))
    parts = [p for p in parts if len(p)]
    if not parts:
        return df.iloc[0:0].reset_index(drop=True)
    out = pd.concat(parts, ignore_index=True)
    if like is not None and pd.api.types.is_datetime64_any_dtype(like):
        out = out.assign(grp=pd.to_datetime(out["grp"]).astype(like.dtype))
    return out


def _one_period(filters, period: str) -> dt.date | None:
    """The first day of the ``period`` when the date range is exactly that one period, first day to
    last; else None."""
    lo, hi = filters.date_from, filters.date_to
    if lo is None or hi is None or period_start(lo, period) != lo or next_period_start(lo, period) - dt.timedelta(days=1) != hi:
        return None
    return lo


def _whole_period(con, measure: str, survey: str, filters):
    """The overall (ungrouped) cluster sums under a date range that is exactly one kept period (a
    calendar quarter, first day to last): a customer's answers in the range are their answers in
    that period, so the period's kept sums are the range's, with ``'all'`` as the group. None for
    any other range, or when nothing is kept for the rest of the filters."""
    for period in ("week", "month", "quarter"):
        lo = _one_period(filters, period)
        if (measure, period, survey) in KEPT and lo is not None:
            df = kept(con, measure, period, survey, filters.undated())
            if df is None:
                return None
            return df[pd.to_datetime(df["grp"]).dt.date == lo].assign(grp="all").reset_index(drop=True)
    return None


@functools.lru_cache(maxsize=4)
def _kept_frames(text: str) -> dict:
    """The kept cluster sums (the fit's JSON text) as one frame per key, parsed once per data
    version: a page asks for them a dozen times (:func:`kept` hands out copies)."""
    return {k: pd.DataFrame(d["rows"], columns=d["columns"]) for k, d in json.loads(text).items()}


@dataclass(frozen=True)
class Clusters:
    """Per-customer sums of a ratio estimator R = Σy / Σw over the customers (clusters) of a group:
    m customers, the most answers one customer gave, Σ_c Y_c², Σ_c Y_c·W_c and Σ_c W_c², with Y_c
    and W_c a customer's sums of y and w."""

    m: int
    max_size: int
    yy: float
    yw: float
    ww: float

    @property
    def repeated(self) -> bool:
        return self.max_size > 1 and self.m > 1

    def var(self, ratio: float, total_w: float) -> float:
        """Linearised variance of R: m/(m−1) · Σ_c (Y_c − R·W_c)² / (Σw)² (Wolter 2007, §6.4)."""
        ss = max(self.yy - 2 * ratio * self.yw + ratio * ratio * self.ww, 0.0)
        return self.m / (self.m - 1) * ss / (total_w * total_w)


def per_customer(group: str, where: str, sums: dict[str, str], customer_where: str = "TRUE", *,
                 by_department: bool = False, also: str = "", dims: bool = True, by_quarter: bool = False) -> str:
    """The ``per`` part of a cluster-sum query: one row per cluster (group, segment, region,
    [department,] [quarter,] cluster id ``cid``, then ``k`` and the additive ``sums``). The responses are
    summed per cluster first and only those rows joined to the customers (a customer has one segment
    and region): at 10M responses that is a join of the clusters, not of every response.
    ``where``: the responses' condition (no customers alias); ``customer_where``: the customers'
    (alias ``c``: segment and region); ``group``: a response expression, or the customer's segment
    or region (``c.…``, taken after the join); ``sums``: name → expression, ``k`` (the count) first.
    ``also``: an extra condition on the responses. An answer without a customer is a cluster of its
    own (``'anonymous:'`` and its response id; no segment or region): the customers' clusters are
    grouped on the stored id and the anonymous answers apart (a computed key costs a quarter more
    to group). ``dims=False``: the caller does not read the segment and region (NULL), so the
    customers are joined only when the group or ``customer_where`` needs them. ``by_quarter``: per
    calendar quarter too (``quarter``, its first day), a customer's answers in each quarter their own
    cluster (the sums a range of that one quarter has)."""
    on_customer = group.startswith("c.")
    joined = dims or on_customer or customer_where.strip() != "TRUE"
    names = ", ".join(f"p.{k}" for k in sums)
    quarter = "CAST(date_trunc('quarter', r.responded_on) AS DATE) AS quarter, " if by_quarter else ""
    exprs = ", ".join(f"{e} AS {k}" for k, e in sums.items())

    def clusters(cid: str, cond: str) -> str:
        return f"""SELECT {"" if on_customer else f"{group} AS grp, "}{"r.department, " if by_department else ""}{quarter}{cid} AS cid, {exprs}
          FROM survey_responses r
          WHERE {where}{also}{" AND r.department IS NOT NULL" if by_department else ""} AND {cond}
          GROUP BY ALL"""

    def select(dims_sql: str) -> str:
        return f"""SELECT {group if on_customer else "p.grp"} AS grp, {dims_sql}, {"p.department, " if by_department else ""}{"p.quarter, " if by_quarter else ""}p.cid,
           {names}"""

    known = clusters("r.customer_id", "r.customer_id IS NOT NULL")
    if not joined:
        out = f"""
    {select("NULL::VARCHAR AS segment, NULL::VARCHAR AS region")}
    FROM ({known}) p"""
    else:
        out = f"""
    {select("c.segment, c.region")}
    FROM ({known}) p
    JOIN customers c ON c.customer_id = p.cid
    WHERE {customer_where}"""
    # no customer: no segment or region, as a customer's filter sees them
    return out + f"""
    UNION ALL
    {select("c.segment, c.region")}
    FROM ({clusters("'anonymous:' || r.response_id", "r.customer_id IS NULL")}) p,
         (SELECT NULL::VARCHAR AS segment, NULL::VARCHAR AS region) c
    WHERE {customer_where}"""


def score_cluster_query(group: str, where: str, params: dict, col: str, sat: int | None,
                        by_department: bool = False, customer_where: str = "TRUE", dims: bool = True,
                        by_quarter: bool = False) -> store.Query:
    """Per group, segment and region (a customer has one of each, so the customers' sums are the
    same as per group alone; :func:`by_group` adds them up): customers m, the most answers of one
    customer, and the cluster sums for the mean of ``col`` (Σ X_c², Σ X_c·K_c, Σ K_c²; X_c the
    customer's sum of ratings, K_c their number of answers) and, with ``sat``, for the share of
    ratings ≥ ``sat`` (Σ S_c², Σ S_c·K_c); an anonymous answer is a cluster of its own. Always from
    the raw responses (the customer is the cluster, which no counted summary keeps). ``group`` and
    ``col`` come from allow-lists; ``where`` (on the responses) and ``customer_where`` (on the
    customers, alias ``c``) carry bound parameters only. ``by_department``: per department too (a customer's answers in each
    department their own cluster; answers without a department are in no scope). ``dims``: as for
    :func:`per_customer`, as is ``by_quarter``."""
    s = f"count(*) FILTER (WHERE r.{col} >= {int(sat)})" if sat else "0"
    per = per_customer(group, where, {"k": "count(*)", "x": f"sum(r.{col})", "s": s}, customer_where,
                       by_department=by_department, also=f" AND r.{col} IS NOT NULL", dims=dims,
                       by_quarter=by_quarter)
    sql = f"""
WITH per AS ({per}
)
SELECT grp, segment, region, {"department, " if by_department else ""}{"quarter, " if by_quarter else ""}count(*) AS m,
       max(k) AS max_k, sum(x * x) AS xx, sum(x * k) AS xk,
       sum(k * k) AS kk, sum(s * s) AS ss, sum(s * k) AS sk
FROM per GROUP BY ALL ORDER BY ALL"""
    return store.Query(f"{col}_clusters", sql, params)


def shown(ran, prefix: str, from_kept: bool, query) -> tuple[store.Query, ...]:
    """The queries of cluster sums a result shows (its interval's "How was this computed?"): of
    those ``ran``, the ones named ``prefix…`` (the sums summed live, or added up from the per-day
    tables under a range); when the sums were read, even in part, from the kept fit, the one
    ``query()`` (the query for the caller's filters) that gives them all instead."""
    if not from_kept:
        run = store.distinct(q for q in ran if q.name.startswith(prefix))
        if run:
            return run
    return (query(),)


def by_group(df):
    """Cluster sums per (group, segment, region) added up per group (m and the sums add, the
    largest cluster is the largest of any cell)."""
    sums = {c: (c, "sum") for c in df.columns if c not in ("grp", "segment", "region", "max_k")}
    return df.groupby("grp", sort=True).agg(max_k=("max_k", "max"), **sums).reset_index()
