"""Customer histories: stored relations from which other relations are answered for any date
(:class:`cxmetrics.store.relation_types.Via`) — each relationship answer with the day the next one
replaced it, each contractual customer's landmark state (latest NPS and CSAT, complaint
history) with the span of days it holds for, and each customer's revenue by calendar month. The
latest answer as of a day, the churn landmark base at any landmark, or a customer's revenue in the
12 months to any day, is then a filter or a slice of these rows instead of a look-back over every
raw response or transaction."""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Any

from cxmetrics.core.filters import Filters
from cxmetrics.store.relation_types import CSAT_SATISFIED_MIN, TOUCHPOINT_GROUP, Relation, Via, nps_points, war

#: The columns of :data:`_SPELL_ROWS`, in their order.
_SPELL_COLUMNS = ("customer_id", "segment", "region", "department", "responded_on", "response_id", "nps", "stated", "war")
_SPELL_ROWS = f"""
    SELECT r.customer_id, c.segment, c.region, r.department, r.responded_on, r.response_id, r.nps,
           r.share_of_wallet_pct AS stated, {war("r.brand_rank", "r.brands_used")} AS war
    FROM {{responses}} r JOIN customers c USING (customer_id)
    WHERE r.survey = 'relationship' AND r.nps IS NOT NULL"""
#: The next-day columns: (column, the field a later answer must state (None: any answer), within
#: the same department).
_NEXT = (("next_any", None, False), ("next_stated", "stated", False), ("next_war", "war", False),
         ("dept_next_any", None, True), ("dept_next_stated", "stated", True), ("dept_next_war", "war", True))


#: The key that picks a customer's latest answer where several were given on their latest day: the
#: one with the lowest response id (``arg_min`` of it: the days to a fixed date, fewest first, then
#: the id). The latest answers and the churn landmark base both pick with it. ``{a}`` is the
#: answers' alias.
LATEST_KEY = "{{'d': date_diff('day', {a}.responded_on, DATE '2000-01-01'), 'i': {a}.response_id}}"


def _after(later: str, spell: str) -> str:
    """The answer ``later`` comes after the answer ``spell``: on a later day, or on the same day with a
    lower response id (it wins the day, :data:`LATEST_KEY`). Written as a range on the day and a
    residual condition, which DuckDB joins faster than the same OR (0.49–0.53 against 0.56–0.63 s for
    the spells' append of 100,000 answers to the 1× bench store, by hand)."""
    return (f"{later}.responded_on >= {spell}.responded_on AND ({later}.responded_on > {spell}.responded_on "
            f"OR {later}.response_id < {spell}.response_id)")


def _later(later: str, spell: str, field: str | None, dept: bool) -> str:
    """The condition on the answer ``later`` that it can end the spell ``spell`` for a next-day column
    (besides coming after it, :func:`_after`)."""
    conds = [f"{later}.{field} IS NOT NULL"] if field else []
    if dept:
        conds.append(f"{later}.department IS NOT DISTINCT FROM {spell}.department")
    return " AND ".join(conds) or "TRUE"


def _append_spells(con, rows: str) -> None:
    """:data:`ANSWER_SPELLS` after ``rows`` were appended to the responses, in time linear in them:
    a spell's next day is the day of the first answer after it among its customer's (and
    department's) answers (:func:`_after`: a same-day answer with a lower id ends it that day), so
    with answers only added it is the earlier of its stored next day and the first appended answer
    after it; an appended answer's next days are those of the first answers after it among the old
    and the new answers of its customer."""
    new = "__spells_new"
    con.execute(f"CREATE OR REPLACE TEMP TABLE {new} AS SELECT *, row_number() OVER () AS __i FROM ("
                + _SPELL_ROWS.format(responses=rows) + ")")

    def firsts(spell: str, later: str) -> str:
        return ", ".join(f"min({later}.responded_on) FILTER (WHERE {_later(later, spell, field, dept)}) AS {col}"
                         for col, field, dept in _NEXT)

    # the stored spells of those customers that an appended later answer ends earlier (or at all)
    earlier = " OR ".join(f"({_later('n', 'x', field, dept)} AND (x.{col} IS NULL OR n.responded_on < x.{col}))"
                          for col, field, dept in _NEXT)
    sets = ", ".join(f"{col} = least(x.{col}, u.{col})" for col, _, _ in _NEXT)
    # no try/finally: a failed statement aborts the write, whose rollback drops the table too, and a
    # DROP in a finally would replace the statement's own error with "transaction aborted"
    con.execute(f"""
UPDATE summary_answer_spells x SET {sets}
FROM (SELECT x.rowid AS rid, {firsts("x", "n")}
      FROM summary_answer_spells x JOIN {new} n ON n.customer_id = x.customer_id AND {_after("n", "x")}
      WHERE {earlier} GROUP BY x.rowid) u
WHERE x.rowid = u.rid""")
    con.execute(f"""
INSERT INTO summary_answer_spells BY NAME
WITH a AS (SELECT customer_id, department, responded_on, response_id, stated, war FROM summary_answer_spells
           WHERE customer_id IN (SELECT customer_id FROM {new})
           UNION ALL SELECT customer_id, department, responded_on, response_id, stated, war FROM {new})
SELECT any_value(n.customer_id) AS customer_id, any_value(n.segment) AS segment, any_value(n.region) AS region,
       any_value(n.department) AS department, any_value(n.responded_on) AS responded_on,
       any_value(n.response_id) AS response_id, any_value(n.nps) AS nps,
       any_value(n.stated) AS stated, any_value(n.war) AS war, {firsts("n", "a")}
FROM {new} n LEFT JOIN a ON a.customer_id = n.customer_id AND {_after("a", "n")}
GROUP BY n.__i""")
    con.execute(f"DROP TABLE {new}")


#: Each customer's latest NPS as of ``$date_to``, with their segment and region, from
#: :data:`ANSWER_SPELLS`: the one answer of theirs that holds on that day (given on or before it and
#: not replaced by it), so a filter where :data:`LATEST_VIA`, which also picks each field's latest
#: value, needs a GROUP BY per customer (0.07–0.08 → 0.012 s at 1M customers, by hand).
LATEST_NPS_AT = """SELECT s.customer_id, s.segment, s.region, s.nps FROM {summary_answer_spells} s
WHERE s.responded_on <= $date_to AND (s.next_any IS NULL OR s.next_any > $date_to)"""


def _next_day(col: str, field: str | None, dept: bool) -> str:
    """A next-day column of :data:`ANSWER_SPELLS`: the day of the first answer after this one
    (:func:`_after`) among its customer's (and department's) answers stating ``field`` (any answer
    when None: the next row)."""
    after = "after_dept" if dept else "after"
    if field is None:
        return f"lead(responded_on) OVER {after} AS {col}"
    return f"min(responded_on) FILTER (WHERE {field} IS NOT NULL) OVER {after}_rest AS {col}"


def _after_window(name: str, keys: str) -> str:
    """The answers of each group of ``keys`` in the order that puts every answer's later ones
    (:func:`_after`) after it: by day, then by response id from the highest (a same-day answer
    with a lower id comes after); and the frame of the rows following the current one."""
    order = f"PARTITION BY {keys} ORDER BY responded_on, response_id DESC"
    return f"{name} AS ({order}), {name}_rest AS ({order} ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING)"


#: Every relationship answer with an NPS (customer, department, day, response id, score, stated share
#: of wallet, WAR share) with the day the customer's next answer replaced it — overall and within the
#: same department, for the score and for each field's next non-empty value. The latest answer as of
#: any day D is then the answer given on or before D and not replaced by D: a filter, no look-back.
#: Of answers given on the same day, the one with the lowest response id is the latest (as in
#: :data:`LATEST`, :data:`LATEST_KEY`): the others are replaced on their own day, so at most one
#: answer per customer (and department) holds on any day and picking it is deterministic. With a
#: customer's answers ordered by day and then by id from the highest, the answers that replace one
#: are exactly those after it, so each next day is the day of the next row (or of the first later
#: row stating the field): two sorts, no join. The version before found the days with several
#: answers by a GROUP BY and joined them back to windows over the later days: 8.3 → 3.5 s at 10M
#: responses and 169 → 71 s at 100M on the bench stores under the import's 640MB memory cap, the
#: same rows (by hand).
ANSWER_SPELLS = Relation("summary_answer_spells", frozenset({"customers", "survey_responses"}), f"""
WITH sp_r AS ({_SPELL_ROWS.format(responses="survey_responses")}
)
SELECT {", ".join(_SPELL_COLUMNS)},
       {", ".join(_next_day(col, field, dept) for col, field, dept in _NEXT)}
FROM sp_r
WINDOW {_after_window("after", "customer_id")},
       {_after_window("after_dept", "customer_id, department")}""", grain="customer",
                         append=_append_spells, stored_order="responded_on")


def _latest_from_spells(filters: Filters, args: dict | None = None) -> tuple[dict[str, str], dict[str, Any]]:
    """:data:`LATEST` under ``filters`` from :data:`ANSWER_SPELLS`: the answers in the date range
    (and scope) not replaced by its end — within the scope's departments when restricted (the
    latest in any of them then wins). Each field has its own spell: ``arg_max`` skips empty values,
    so a field's latest value may come from an earlier answer than the score's. At most one answer
    per customer holds on a day overall and within one department (:data:`ANSWER_SPELLS`), so the
    latest is the one of the latest day; under several departments the answers of two of them can
    hold on the same day, and the key then also takes the lowest id (:data:`LATEST_KEY`: a struct
    key, slower, for that case only)."""
    cond, params = filters.where(date_col="s.responded_on", customers=False, scope=False)
    prefix = "next_"
    if filters.scope.restricted:
        prefix = "dept_next_"
        if filters.scope.departments:
            cond += " AND list_contains($scope_departments, s.department)"
            params["scope_departments"] = list(filters.scope.departments)
        else:
            cond += " AND FALSE"

    def valid(col: str) -> str:
        if filters.date_to is None:
            return f"s.{prefix}{col} IS NULL"
        return f"(s.{prefix}{col} IS NULL OR s.{prefix}{col} > $date_to)"

    params.update({"date_to": filters.date_to} if filters.date_to is not None else {})
    several = filters.scope.restricted and len(filters.scope.departments or ()) > 1
    pick = ("arg_min", LATEST_KEY.format(a="s")) if several else ("arg_max", "s.responded_on")
    return {"cond": cond, "any": valid("any"), "stated": valid("stated"), "war": valid("war"),
            "pick": pick[0], "key": pick[1]}, params


#: :data:`cxmetrics.store.relations.LATEST` under a date range or department scope, from the answer spells.
LATEST_VIA = Via("""
SELECT s.customer_id, any_value(s.segment) AS segment, any_value(s.region) AS region,
       {pick}(s.nps, {key}) FILTER (WHERE {any}) AS nps,
       {pick}(s.stated, {key}) FILTER (WHERE {stated}) AS stated,
       {pick}(s.war, {key}) FILTER (WHERE {war}) AS war,
       max(s.responded_on) FILTER (WHERE {any}) AS nps_on,
       max(s.responded_on) FILTER (WHERE {stated} AND s.stated IS NOT NULL) AS stated_on,
       max(s.responded_on) FILTER (WHERE {war} AND s.war IS NOT NULL) AS war_on
FROM {summary_answer_spells} s WHERE {cond} AND ({any} OR {stated} OR {war})
GROUP BY 1""", ("summary_answer_spells",), _latest_from_spells)


def open_range(filters: Filters, args: dict | None = None) -> tuple[dict[str, str], dict[str, Any]] | None:
    """The condition of the vias that answer a range open at its end from the stored latest answers
    (:data:`LATEST_OPEN_VIA`, the wallet's): a range that starts on a day and runs to the data's end
    ("the last 12 months"), in an unrestricted scope; None otherwise."""
    if filters.date_from is None or filters.date_to is not None or filters.scope.restricted:
        return None
    return {}, {"date_from": filters.date_from}


def closed_range(filters: Filters, args: dict | None = None) -> tuple[dict[str, str], dict[str, Any]] | None:
    """The condition of the vias that answer a range closed at its end from rows kept per customer
    and answer day with their sums from that day on: each customer's row holding on the range's
    first day (:func:`holds`; their first row when the range starts before the data), less their row
    holding on the day after its end (``$date_after``). ``{start}`` is the first condition, on the
    alias ``x``. In an unrestricted scope; None otherwise, or for a range open at its end."""
    if filters.date_to is None or filters.scope.restricted:
        return None
    params: dict[str, Any] = {"date_to": filters.date_to, "date_after": filters.date_to + dt.timedelta(days=1)}
    start = "x.after_day IS NULL"
    if filters.date_from is not None:
        start, params["date_from"] = holds("x", "$date_from"), filters.date_from
    return {"start": start}, params


def holds(alias: str, day: str) -> str:
    """The condition that the row ``alias`` of a table kept per customer and answer day with the
    sums from that day on (:data:`CLUSTER_SUFFIXES`, the key drivers' pairs) holds on ``day``: the
    first day on or after it that the customer answered on, so their sums over ``day`` and later."""
    return f"{alias}.day >= {day} AND ({alias}.after_day IS NULL OR {alias}.after_day < {day})"


#: :data:`cxmetrics.store.relations.LATEST` under a range open at its end, from the stored latest
#: answers (tried before the spells): nothing given on or after the range's start replaces a
#: customer's latest answer, so a field's latest value in the range is its latest value overall when
#: that was given on or after the start, and none otherwise; a customer is in it when their latest
#: answer is. A filter of one row per customer instead of a GROUP BY over the spells (0.13 s → 0.045 s
#: at 1M customers, by hand).
LATEST_OPEN_VIA = Via("""
SELECT l.customer_id, l.segment, l.region, l.nps,
       CASE WHEN l.stated_on >= $date_from THEN l.stated END AS stated,
       CASE WHEN l.war_on >= $date_from THEN l.war END AS war,
       l.nps_on, CASE WHEN l.stated_on >= $date_from THEN l.stated_on END AS stated_on,
       CASE WHEN l.war_on >= $date_from THEN l.war_on END AS war_on
FROM {summary_latest} l WHERE l.nps_on >= $date_from""", ("summary_latest",), open_range)

#: The cluster sums kept per customer and answer day (:data:`CLUSTER_SUFFIXES`), by kind: the key
#: :func:`cxmetrics.metrics.clustered.kept_key` gives them → (the table, the group, the responses
#: that count, the measure).
SUFFIX_KINDS = {
    "nps|all|relationship": ("summary_suffixes_nps_relationship", "'all'",
                             "r.survey = 'relationship' AND r.nps IS NOT NULL", "nps"),
    "nps|all|transactional": ("summary_suffixes_nps_transactional", "'all'",
                              "r.survey = 'transactional' AND r.nps IS NOT NULL", "nps"),
    "nps|touchpoint|transactional": ("summary_suffixes_nps_touchpoint", TOUCHPOINT_GROUP,
                                     "r.survey = 'transactional' AND r.nps IS NOT NULL", "nps"),
    "csat|touchpoint|all": ("summary_suffixes_csat_touchpoint", TOUCHPOINT_GROUP, "r.csat IS NOT NULL", "csat"),
    "ces|touchpoint|all": ("summary_suffixes_ces_touchpoint", TOUCHPOINT_GROUP, "r.ces IS NOT NULL", "ces"),
}
#: The kinds also kept within each department (the key's ``|department``; a department's page reads
#: its transactional NPS overall and by touchpoint and its CSAT by touchpoint): a customer's answers
#: in one department are one cluster, as under a scope of that department alone.
SUFFIX_KINDS.update({f"{kind}|department": (f"{table}_by_department", grp, f"{cond} AND r.department IS NOT NULL", m)
                     for kind, (table, grp, cond, m) in list(SUFFIX_KINDS.items())
                     if kind in ("nps|all|transactional", "nps|touchpoint|transactional", "csat|touchpoint|all")})
_PTS = nps_points("r.nps")
#: Per measure: a day's sums (NPS: answers k, points u = promoter − detractor, weights w and y = w·u;
#: CSAT: the ratings x and the satisfied ones s; CES: the ratings x, s = 0 as its cluster-sum query
#: has it), and their sums from a day on.
_SUFFIX_SUMS = {
    "nps": (f"sum({_PTS}) AS u, sum(r.weight) AS w, sum(r.weight * {_PTS}) AS y",
            "CAST(sum(d.u) OVER later AS BIGINT) AS u, sum(d.w) OVER later AS w, sum(d.y) OVER later AS y"),
    "csat": (f"sum(r.csat) AS x, count(*) FILTER (WHERE r.csat >= {CSAT_SATISFIED_MIN}) AS s",
             "CAST(sum(d.x) OVER later AS BIGINT) AS x, CAST(sum(d.s) OVER later AS BIGINT) AS s"),
    "ces": ("sum(r.ces) AS x", "CAST(sum(d.x) OVER later AS BIGINT) AS x, CAST(0 AS BIGINT) AS s"),
}


def _suffixes(kind: str) -> Relation:
    """The relation of :data:`CLUSTER_SUFFIXES` for one kind of :data:`SUFFIX_KINDS`."""
    table, grp, cond, measure = SUFFIX_KINDS[kind]
    day_sums, later_sums = _SUFFIX_SUMS[measure]
    dept = "department, " if kind.endswith("|department") else ""
    return Relation(table, frozenset({"customers", "survey_responses"}), f"""
WITH cs_day AS (
    SELECT {grp} AS grp, {dept and "r." + dept}r.customer_id, CASE WHEN r.customer_id IS NULL THEN r.response_id END AS anonymous,
           r.responded_on AS day, count(*) AS k, {day_sums}
    FROM survey_responses r WHERE {cond} GROUP BY ALL
)
SELECT d.grp, {dept and "d." + dept}c.segment, c.region, d.customer_id, d.anonymous, lead(d.day) OVER back AS after_day, d.day,
       CAST(sum(d.k) OVER later AS BIGINT) AS k, {later_sums}
FROM cs_day d LEFT JOIN customers c ON c.customer_id = d.customer_id
WHERE d.customer_id IS NULL OR c.customer_id IS NOT NULL
WINDOW back AS (PARTITION BY d.grp, {dept and "d." + dept}d.customer_id, d.anonymous ORDER BY d.day DESC),
       later AS (PARTITION BY d.grp, {dept and "d." + dept}d.customer_id, d.anonymous ORDER BY d.day DESC
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)""", grain="customer", stored_order="day")


#: The customer-clustered variances' per-customer sums (:mod:`cxmetrics.metrics.clustered`) for a
#: range open at its end ("the last 12 months"), one relation per kind of :data:`SUFFIX_KINDS`: per
#: group, one row per customer and day they answered on, with their sums over that day's answers
#: and every later one (k answers and the measure's sums) and the day of their answer before
#: (``after_day``, NULL for the first). A customer's sums in a range starting on D are then those
#: of their one row with after_day < D <= day: a filter, no GROUP BY per customer over the
#: responses. An answer without a customer is a cluster of its own (one row with its response id,
#: ``anonymous``, and no segment or region); a customer's rows carry their segment and region. At
#: 10M responses the five kinds hold 6.6M rows, built in 7–10 s, each by a statement of its own (the
#: window over all of them at once needed more than the import's 640 MB); a range's sums read in
#: 0.02–0.03 s instead of 0.12–0.19 s (by hand). The three kept within each department (a
#: ``department`` column, a customer's rows per department) serve a department's page: 0.04–0.07 s
#: → about 0.015 s a query at 10M responses, 2.2 s each to build (by hand). Stored in day order, so
#: that a range's filter skips the blocks of days before its start (at 100M responses 0.085 →
#: 0.052 s a year's query, 0.062 → 0.018 s a quarter's; 0.1–0.35 s more to build each at 10M, by hand).
CLUSTER_SUFFIXES = tuple(_suffixes(kind) for kind in SUFFIX_KINDS)


#: Each contractual customer's state as the churn landmark base sees it at a landmark L, over the
#: span of landmarks it holds for: ``from_l <= L < to_l`` (NULL: unbounded). The state is the latest
#: relationship NPS and the latest CSAT (any survey) answered before L — among answers given on the
#: same day the one with the lowest response id, as in the base's definition — and whether any
#: (escalated) complaint was opened before L; with the customer's segment, region, acquisition and
#: churn dates. It changes only the day after an answer or complaint, so each customer has one row
#: per day with one, plus the span before the first: the base at any L is a filter over these rows
#: (no look-back, no join), not three scans of histories joined with every contractual customer.
LANDMARK_STATES = Relation("summary_landmark_states", frozenset({"customers", "survey_responses", "complaints",
                                                                 "churn_events"}), """
WITH st_c AS (
    SELECT customer_id, segment, region, acquired_on FROM customers WHERE contract = 'contractual'
), st_ev AS (
    SELECT r.customer_id, r.responded_on AS d,
           arg_min(r.nps, r.response_id) FILTER (WHERE r.survey = 'relationship' AND r.nps IS NOT NULL) AS nps,
           arg_min(r.csat, r.response_id) FILTER (WHERE r.csat IS NOT NULL) AS csat,
           false AS complained, false AS escalated
    FROM survey_responses r WHERE r.customer_id IN (SELECT customer_id FROM st_c)
      AND ((r.survey = 'relationship' AND r.nps IS NOT NULL) OR r.csat IS NOT NULL)
    GROUP BY 1, 2
    UNION ALL
    SELECT k.customer_id, k.opened_on, NULL, NULL, true, bool_or(coalesce(k.escalated, false))
    FROM complaints k WHERE k.customer_id IN (SELECT customer_id FROM st_c) AND k.opened_on IS NOT NULL
    GROUP BY 1, 2
), st_day AS (
    SELECT customer_id, d, max(nps) AS nps, max(csat) AS csat, bool_or(complained) AS complained,
           bool_or(escalated) AS escalated
    FROM st_ev GROUP BY 1, 2
), st_span AS (
    SELECT customer_id, d + 1 AS from_l, lead(d) OVER (PARTITION BY customer_id ORDER BY d) + 1 AS to_l,
           last_value(nps IGNORE NULLS) OVER so_far AS nps, last_value(csat IGNORE NULLS) OVER so_far AS csat,
           bool_or(complained) OVER so_far AS complained, bool_or(escalated) OVER so_far AS escalated
    FROM st_day
    WINDOW so_far AS (PARTITION BY customer_id ORDER BY d ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
    UNION ALL
    SELECT customer_id, NULL, min(d) + 1, NULL, NULL, false, false FROM st_day GROUP BY 1
)
SELECT c.customer_id, c.segment, c.region, c.acquired_on, ce.churned_on, s.from_l, s.to_l, s.nps, s.csat,
       coalesce(s.complained, false) AS complained, coalesce(s.escalated, false) AS escalated
FROM st_c c LEFT JOIN st_span s USING (customer_id)
LEFT JOIN churn_events ce ON ce.customer_id = c.customer_id""", grain="customer")

#: The churn landmark base's per-customer inputs at any landmark L from :data:`LANDMARK_STATES`
#: (``lm_in``, what :data:`cxmetrics.store.relations.LANDMARK`'s final SELECT reads).
LANDMARK_INPUTS = """
, lm_in AS (
    SELECT s.customer_id, s.segment, s.region, s.acquired_on, s.churned_on, s.nps, s.csat, s.complained, s.escalated
    FROM {summary_landmark_states} s  -- L as the parameter itself: compared in the scan, not after a join
    WHERE (s.from_l IS NULL OR s.from_l <= $landmark::DATE) AND (s.to_l IS NULL OR s.to_l > $landmark::DATE)
      AND s.acquired_on <= $landmark::DATE AND (s.churned_on IS NULL OR s.churned_on >= $landmark::DATE)
)"""


#: Each customer's revenue by calendar month from the month of their first transaction (``m0``, as
#: year × 12 + month) to that of their last (``m1``): ``revs`` holds one element per month, NULL for
#: a month without a transaction. The revenue and active months of any run of whole months are then
#: a slice of one row per customer: no scan of the transactions, no grouping by customer
#: (:data:`LANDMARK_REVENUE_MONTHS_VIA`).
REVENUE_MONTHS = Relation("summary_revenue_months", frozenset({"transactions"}), """
WITH rm_m AS (
    SELECT customer_id, year(occurred_on) * 12 + month(occurred_on) AS m, sum(amount) AS revenue
    FROM transactions GROUP BY 1, 2
), rm_span AS (
    SELECT customer_id, min(m) AS m0, max(m) AS m1 FROM rm_m GROUP BY 1
), rm_grid AS (
    SELECT customer_id, m0, m1, unnest(range(m0, m1 + 1)) AS m FROM rm_span
)
SELECT g.customer_id, any_value(g.m0) AS m0, any_value(g.m1) AS m1, list(rm_m.revenue ORDER BY g.m) AS revs
FROM rm_grid g LEFT JOIN rm_m USING (customer_id, m) GROUP BY 1""", grain="customer")


def _month_window(filters: Filters, args: dict) -> tuple[dict[str, str], dict[str, Any]] | None:
    """The window of :data:`LANDMARK_REVENUE_MONTHS_VIA` for the ``end`` argument E: (S, E] with
    S = E − 12 months (DuckDB's interval arithmetic: the day clamped to the month's last). Its whole
    calendar months are those after S's month up to E's (E's only when E is its month's last day);
    the rest of S's month after S and E's month up to E, when not empty or whole, are read from the
    transactions of those days ({edges}). None without an end (the data's end: the customer summary
    answers it)."""
    end = args.get("end")
    if end is None:
        return None
    if isinstance(end, dt.datetime):
        end = end.date()
    last = calendar.monthrange(end.year, end.month)[1]
    s_last = calendar.monthrange(end.year - 1, end.month)[1]
    start = dt.date(end.year - 1, end.month, min(end.day, s_last))
    params: dict[str, Any] = {"rv_lo": start.year * 12 + start.month + 1,
                              "rv_hi": end.year * 12 + end.month - (0 if end.day == last else 1)}
    days = []
    if start.day < s_last:
        days.append("(t.occurred_on > $rv_s AND t.occurred_on <= $rv_s_last)")
        params.update(rv_s=start, rv_s_last=start.replace(day=s_last))
    if end.day < last:
        days.append("(t.occurred_on >= $rv_e_first AND t.occurred_on <= $rv_e)")
        params.update(rv_e_first=end.replace(day=1), rv_e=end)
    if not days:
        return {"edges": "", "out": "SELECT customer_id, revenue, months::SMALLINT AS months FROM rv_whole WHERE months > 0"}, params
    # The two edges are different calendar months (twelve apart), so a customer's active edge
    # months are one per edge with a transaction: no count(DISTINCT month) per customer.
    edges = f"""
    UNION ALL
    SELECT t.customer_id, sum(t.amount), {" + ".join(f"CAST(bool_or({d}) AS INTEGER)" for d in days)}
    FROM transactions t WHERE ({" OR ".join(days)})
      AND t.customer_id IN (SELECT customer_id FROM {{summary_landmark}} WHERE nps_group IS NOT NULL)
    GROUP BY 1"""
    return {"edges": edges, "out": "SELECT customer_id, sum(revenue) AS revenue, sum(months)::SMALLINT AS months "
                                   "FROM rv_whole GROUP BY 1 HAVING sum(months) > 0"}, params


#: :data:`cxmetrics.store.relations.LANDMARK_REVENUE` for an end inside the data (a date range's
#: end), from :data:`REVENUE_MONTHS`: the window's whole months sliced from each landmark
#: customer's row, its partial months (if any) from the transactions of those days alone
#: (:func:`_month_window`). At 1M customers and 20M transactions, 0.08 s instead of 0.21 s for a
#: window of whole months (by hand): the definition groups the window's 7.9M transactions by customer.
LANDMARK_REVENUE_MONTHS_VIA = Via("""
WITH rv_whole AS (
    SELECT customer_id, coalesce(list_sum(sl), 0) AS revenue, list_count(sl) AS months
    FROM (SELECT m.customer_id, list_slice(m.revs, greatest($rv_lo - m.m0, 0) + 1, least($rv_hi, m.m1) - m.m0 + 1) AS sl
          FROM summary_revenue_months m
          WHERE m.m0 <= $rv_hi AND m.m1 >= $rv_lo
            AND m.customer_id IN (SELECT customer_id FROM {summary_landmark} WHERE nps_group IS NOT NULL)) rv_sl{edges}
)
{out}""", ("summary_revenue_months",), _month_window)
