"""Base relations: each defined once, here, as SQL over the data-contract tables.

A *relation* is a set of rows many metrics share: responses counted by cell, each customer's
latest relationship answer, the churn landmark base, RFM per customer, … Metric SQL reads a
relation through a placeholder (``FROM {summary_responses} r``) and never says where its rows come
from. The executor (:func:`cxmetrics.summaries.source`) binds the placeholder to the stored
summary table when that table holds exactly the answer, and to the relation's SQL otherwise — so
each relation has one definition and each metric one SQL text.

How a relation takes the caller's filters
-----------------------------------------
* Filters on a relation's *columns* (a date, segment, region, department or customer id column)
  are applied by the caller, outside, on either path.
* Filters that change *which rows are computed* (the responses a customer's "latest answer" is
  taken from, the complaints a gap is measured between) are applied inside, by :attr:`Relation.inner`.
  The stored table was built for the unfiltered view, so it answers a query only when the inner
  condition under the caller's filters is the unfiltered one — and the same holds for every
  relation it reads and for its arguments (the landmark date, the calibration end).
* A relation whose rows keep no department or customer id (the counted lifecycle, revenue and
  wallet cells) applies the department scope inside (:attr:`Relation.scope_inside`); the caller
  then leaves it out of its own condition (:meth:`cxmetrics.summaries.Source.where`).

* A relation whose stored table cannot answer the caller's filters may be answered from the
  customer histories of :mod:`cxmetrics.store.histories` instead of the raw tables
  (:attr:`Relation.via`: the latest answer for any date range or scope, the churn landmark base at
  any landmark). Which stored table answers is the relation's decision; metric SQL never changes.
* How a write that only appended rows updates a stored table in place: :attr:`Relation.grain`
  (:mod:`cxmetrics.store.incremental`).

The relation type and the shared SQL rules live in :mod:`cxmetrics.store.relation_types` and are
re-exported here. This module is in the store layer: it imports nothing from the metrics. The metric modules and
:mod:`cxmetrics.summaries` (which materialises every relation for the unfiltered view and binds
queries to it) import it.
"""

from __future__ import annotations

from collections.abc import Callable

from cxmetrics.core.filters import Filters
from cxmetrics.store import histories
from cxmetrics.store.histories import ANSWER_SPELLS, CLUSTER_SUFFIXES, LANDMARK_STATES, REVENUE_MONTHS
from cxmetrics.store.relation_types import (
    CSAT_SATISFIED_MIN,
    DATA_END_SQL,
    PASSIVE_MIN,
    PROMOTER_MIN,
    TOUCHPOINT_GROUP,
    Relation,
    Via,
    detractor,
    nps_group,
    nps_points,
    promoter,
    war,
)

__all__ = ["ALL", "ANSWER_SPELLS", "CLUSTER_SUFFIXES", "CSAT_SATISFIED_MIN", "DATA_END_SQL", "LANDMARK_STATES",
           "PASSIVE_MIN", "PROMOTER_MIN", "RELATIONS", "Relation", "TOUCHPOINT_GROUP", "Via", "detractor", "nps_group",
           "nps_points", "promoter", "war"]

def _same(filters: Filters) -> Filters:
    return filters


def _unfiltered(filters: Filters) -> Filters:
    return Filters()


def _responses_inside(filters: Filters) -> tuple[str, dict]:
    """Which responses count: the date range and the department scope (on the response's department)."""
    return filters.where(date_col="r.responded_on", department_col="r.department", customers=False)


def _complaints_inside(filters: Filters) -> tuple[str, dict]:
    """Which complaints count: the date range and the department scope (on the complaint's department)."""
    return filters.where(date_col="k.opened_on", department_col="k.department", customers=False)


def _scope_on(col: str) -> Callable[[Filters], tuple[str, dict]]:
    def inner(filters: Filters) -> tuple[str, dict]:
        return filters.where(customer_id_col=col, dates=False, customers=False)
    return inner


def _one_department(*, dates: bool) -> Callable[[Filters, dict], tuple[dict, dict] | None]:
    """A :class:`Via` condition: a scope of exactly one department (and, with ``dates``, no date
    range, which the relation would apply inside too) is that department's rows of a stored
    relation kept per department; anything else is not held there (None)."""
    def cond(filters: Filters, args: dict) -> tuple[dict, dict] | None:
        if dates and (filters.date_from is not None or filters.date_to is not None):
            return None
        if not filters.scope.restricted or len(filters.scope.departments or ()) != 1:
            return None
        return {}, {"via_department": filters.scope.departments[0]}
    return cond


# ----------------------------------------------------------------------------- counted cubes

#: Responses counted by every column a survey filter or grouping touches, with weight sums.
RESPONSES = Relation("summary_responses", frozenset({"customers", "survey_responses"}), """
SELECT r.responded_on, r.survey, r.touchpoint, r.department, c.segment, c.region, r.nps, r.csat, r.ces,
       r.customer_id IS NULL AS anonymous, count(*) AS n, sum(r.weight) AS sw, sum(r.weight * r.weight) AS sw2
FROM survey_responses r LEFT JOIN customers c ON c.customer_id = r.customer_id  -- anonymous answers count too
GROUP BY ALL""", grain="cells", measures=("n", "sw", "sw2"))

#: Complaints counted by every column the complaint views filter or group on, with recorded costs
#: and the days each took to close (NULL while open).
COMPLAINTS = Relation("summary_complaints", frozenset({"customers", "complaints"}), """
SELECT k.opened_on, k.category, k.channel, k.department, k.root_cause, c.segment, c.region, k.escalated,
       k.callback_promised, k.callback_done, date_diff('day', k.opened_on, k.closed_on) AS close_days,
       count(*) AS n, count(k.cost) AS n_cost, sum(k.cost) AS sum_cost
FROM complaints k LEFT JOIN customers c ON c.customer_id = k.customer_id  -- so do complaints without a customer
GROUP BY ALL""", grain="cells", measures=("n", "n_cost", "sum_cost"))

#: Revenue and transactions per day, segment and region (a department scope keeps the customers
#: who dealt with the department, applied inside: the rows keep no customer id).
REVENUE = Relation("summary_revenue", frozenset({"customers", "transactions"}), """
SELECT t.occurred_on, c.segment, c.region, sum(t.amount) AS revenue, count(*) AS transactions
FROM transactions t JOIN customers c USING (customer_id) WHERE {inner} GROUP BY ALL""",
                   inner=_scope_on("t.customer_id"), scope_inside=True, grain="cells",
                   measures=("revenue", "transactions"))

#: Kept per department (the rows a scope of one department reads; :func:`_one_department`):
#: customers counted as :data:`LIFECYCLE` counts them, once for each department they dealt with (a
#: response or complaint attributed to it, as :data:`CUSTOMER_DEPARTMENTS` records); the gaps between
#: a customer's complaints to the same department, as :data:`GAPS` computes them among one
#: department's complaints; and complaining contract customers per category as :data:`UPLIFT` counts
#: them among one department's complaints.
def _lifecycle_sql(by_department: bool) -> str:
    """:data:`LIFECYCLE`'s SQL, or per department (a customer once in each department they dealt with)."""
    dept = "JOIN {summary_customer_departments} d ON d.customer_id = c.customer_id " if by_department else ""
    return f"""
SELECT {"d.department, " if by_department else ""}c.segment, c.region, c.contract, c.acquired_on, ce.churned_on, count(*) AS n,
       count(c.category_wallet) AS n_wallet, sum(c.category_wallet) AS s_wallet,
       sum(c.category_wallet * c.category_wallet) AS ss_wallet
FROM customers c {dept}LEFT JOIN churn_events ce ON ce.customer_id = c.customer_id
{"" if by_department else "WHERE {inner}" + chr(10)}GROUP BY ALL"""


def _gaps_sql(by_department: bool) -> str:
    """:data:`GAPS`'s SQL, or per department (gaps between a customer's complaints to one department)."""
    dept = "k.department, " if by_department else ""
    return f"""
WITH ga_k AS (
    SELECT k.customer_id, {dept}k.opened_on,
           lead(k.opened_on) OVER (PARTITION BY k.customer_id{", k.department" if by_department else ""} ORDER BY k.opened_on, k.complaint_id) AS next_on
    FROM complaints k WHERE {"k.department IS NOT NULL" if by_department else "{inner}"}
)
SELECT {dept}c.segment, c.region, k.opened_on, date_diff('day', k.opened_on, k.next_on) AS gap_days, count(*) AS n
FROM ga_k k JOIN customers c USING (customer_id) GROUP BY ALL"""


def _uplift_sql(by_department: bool) -> str:
    """:data:`UPLIFT`'s SQL, or per department (each department's complaints counted on their own)."""
    return f"""
SELECT {"k.department, " if by_department else ""}k.category, c.segment, c.region, count(DISTINCT k.customer_id) AS customers,
       count(DISTINCT k.customer_id) FILTER (WHERE ce.churned_on > k.opened_on
                                             AND ce.churned_on <= k.opened_on + INTERVAL 12 MONTH) AS churned
FROM complaints k JOIN customers c USING (customer_id) LEFT JOIN churn_events ce ON ce.customer_id = k.customer_id
WHERE c.contract = 'contractual' AND k.opened_on <= (SELECT max(opened_on) FROM complaints) - INTERVAL 12 MONTH
  AND {"k.department IS NOT NULL" if by_department else "{inner}"}
GROUP BY ALL"""


LIFECYCLE_BY_DEPARTMENT = Relation("summary_lifecycle_by_department", frozenset({"customers", "churn_events",
                                                                                "survey_responses", "complaints"}),
                                   _lifecycle_sql(True), uses={"summary_customer_departments": _unfiltered},
                                   grain="customer_cells", measures=("n", "n_wallet", "s_wallet", "ss_wallet"))
GAPS_BY_DEPARTMENT = Relation("summary_complaint_gaps_by_department", frozenset({"customers", "complaints"}),
                              _gaps_sql(True))
UPLIFT_BY_DEPARTMENT = Relation("summary_category_uplift_by_department",
                                frozenset({"customers", "complaints", "churn_events"}), _uplift_sql(True))

#: Customers counted by segment, region, contract, acquisition and churn date, with their category
#: wallets' count, sum and sum of squares: active bases and exposures for any window are sums.
LIFECYCLE = Relation("summary_lifecycle", frozenset({"customers", "churn_events"}), _lifecycle_sql(False), inner=_scope_on("c.customer_id"), scope_inside=True, via=Via("""
SELECT segment, region, contract, acquired_on, churned_on, n, n_wallet, s_wallet, ss_wallet
FROM {summary_lifecycle_by_department} WHERE department = $via_department""",
    ("summary_lifecycle_by_department",), _one_department(dates=False)))

#: KPI observations per KPI and day, split by whether they are about one customer, with the count
#: and sum of values (monthly and windowed averages are ratios of sums over these rows).
KPI_DAILY = Relation("summary_kpi_daily", frozenset({"kpi_observations"}), """
SELECT kpi_id, observed_on, customer_id IS NOT NULL AS customer_level, count(*) AS n, count(value) AS n_value,
       sum(value) AS s_value
FROM kpi_observations GROUP BY ALL""", grain="cells", measures=("n", "n_value", "s_value"))

#: Customer-level KPI observations with the NPS answer of the response they are linked to and the
#: responding customer's segment and region, counted by every column the alignment filters on.
#: Stored in day order: a date range reads the row groups of its days (the last 12 months'
#: curves 0.022 → 0.017 s, one quarter's 0.013 → 0.007 s at 1.5M rows, by hand).
KPI_LINKED = Relation("summary_kpi_linked", frozenset({"customers", "survey_responses", "kpi_observations"}), """
SELECT o.kpi_id, round(o.value, 1) AS x, o.observed_on, r.department, c.segment, c.region, r.nps, count(*) AS n
FROM kpi_observations o
JOIN survey_responses r ON r.response_id = o.response_id
JOIN customers c ON c.customer_id = r.customer_id
WHERE o.response_id IS NOT NULL AND r.nps IS NOT NULL
GROUP BY ALL""", grain="cells", measures=("n",), stored_order="observed_on")

#: The linked observations in the date window without the day, with the count in the last 12 months
#: of observations (the alignment views group by KPI value only).
KPI_WINDOW = Relation("summary_kpi_linked_alltime", KPI_LINKED.depends, """
SELECT o.kpi_id, o.x, o.department, o.segment, o.region, o.nps, sum(o.n) AS n,
       coalesce(sum(o.n) FILTER (WHERE o.observed_on > (SELECT max(observed_on) FROM kpi_observations)
                                                      - INTERVAL 12 MONTH), 0) AS n_last_year
FROM {summary_kpi_linked} o WHERE {inner} GROUP BY ALL""",
                      inner=lambda f: f.where(date_col="o.observed_on", customers=False, scope=False),
                      uses={"summary_kpi_linked": _unfiltered})

#: Which customers dealt with which department (a response or complaint attributed to it): the rows
#: a department scope keeps on customer-level tables (see :meth:`Filters.where`).
CUSTOMER_DEPARTMENTS = Relation("summary_customer_departments", frozenset({"survey_responses", "complaints"}), """
SELECT customer_id, department FROM survey_responses WHERE department IS NOT NULL
UNION
SELECT customer_id, department FROM complaints WHERE department IS NOT NULL""", grain="customer")

# ----------------------------------------------------------------------------- per customer

#: Each customer's latest relationship answer with an NPS among the responses that count (the
#: date range and department scope): the score, the stated share of wallet and the WAR share
#: (each field's value at the latest such response), with the customer's segment and region and
#: the day each value was given (the day of the latest answer, of the latest stating a share of
#: wallet, of the latest giving a WAR share: what answers a range open at its end from this table,
#: :data:`cxmetrics.store.histories.LATEST_OPEN_VIA`). Of answers given on the same day, the one
#: with the lowest response id is the latest (:data:`cxmetrics.store.histories.LATEST_KEY`, as the
#: churn landmark base picks), so the table is the same whatever order DuckDB reads the rows in.
_KEY = histories.LATEST_KEY.format(a="r")
LATEST = Relation("summary_latest", frozenset({"customers", "survey_responses"}), f"""
SELECT r.customer_id, any_value(c.segment) AS segment, any_value(c.region) AS region,
       arg_min(r.nps, {_KEY}) AS nps, arg_min(r.share_of_wallet_pct, {_KEY}) AS stated,
       arg_min({war("r.brand_rank", "r.brands_used")}, {_KEY}) AS war,
       max(r.responded_on) AS nps_on, max(r.responded_on) FILTER (WHERE r.share_of_wallet_pct IS NOT NULL) AS stated_on,
       max(r.responded_on) FILTER (WHERE {war("r.brand_rank", "r.brands_used")} IS NOT NULL) AS war_on
FROM survey_responses r JOIN customers c USING (customer_id)
WHERE r.survey = 'relationship' AND r.nps IS NOT NULL AND {{inner}}
GROUP BY 1""", inner=_responses_inside, scope_inside=True, grain="customer",
                via=(histories.LATEST_OPEN_VIA, histories.LATEST_VIA))

#: The customer summary's columns taken from the latest relationship answer (:data:`LATEST`).
_LATEST_COLUMNS = ("nps", "stated", "war", "nps_on", "stated_on", "war_on")


def _append_answers_to_customers(con, rows: str) -> None:
    """:data:`CUSTOMER` after survey answers ``rows`` were appended: only the latest answer's columns
    of the customers who answered can change, and :data:`LATEST` (which it reads, brought up to date
    before it) holds them; every other column reads tables nothing was appended to."""
    sets = ", ".join(f"{c} = l.{c}" for c in _LATEST_COLUMNS)
    con.execute(f"""
UPDATE summary_customer x SET {sets}
FROM summary_latest l
WHERE l.customer_id = x.customer_id AND l.customer_id IN (SELECT customer_id FROM {rows})""")


#: Per customer, over all the data: the latest relationship answer, revenue in the 12 months to
#: the last transaction date E (and its active calendar months, as a bit set of month offsets),
#: revenue in the 12 months before that, complaints ever opened, and the churn date. Appended
#: survey answers change only the answering customers' latest answer (taken in place, from
#: :data:`LATEST`); appended transactions can move E for everyone, so they rebuild it.
CUSTOMER = Relation("summary_customer", frozenset({"customers", "survey_responses", "complaints", "transactions",
                                                   "churn_events"}), f"""
WITH cu_last AS (
    SELECT S, year(S) * 12 + month(S) AS s_month, (E - INTERVAL 24 MONTH)::DATE AS S2
    FROM (SELECT E, (E - INTERVAL 12 MONTH)::DATE AS S FROM (SELECT max(occurred_on) AS E FROM transactions) cu_e) cu_s
),
cu_rev AS (  -- month offsets as in LANDMARK_REVENUE
    SELECT t.customer_id,
           sum(t.amount) FILTER (WHERE t.occurred_on > cu_last.S) AS rev_12m,
           bit_count(bit_or(1::UBIGINT << greatest(year(t.occurred_on) * 12 + month(t.occurred_on) - cu_last.s_month, 0)::UBIGINT)
                     FILTER (WHERE t.occurred_on > cu_last.S)) AS months_12m,
           sum(t.amount) FILTER (WHERE t.occurred_on <= cu_last.S) AS rev_prev_12m
    FROM transactions t, cu_last WHERE t.occurred_on > cu_last.S2 GROUP BY 1
), cu_k AS (SELECT customer_id, count(*) AS complaints FROM complaints GROUP BY 1)
SELECT c.customer_id, c.segment, c.region, c.contract, c.acquired_on, c.category_wallet, ce.churned_on,
       {", ".join("l." + c for c in _LATEST_COLUMNS)}, cu_rev.rev_12m, cu_rev.months_12m, cu_rev.rev_prev_12m,
       coalesce(k.complaints, 0) AS complaints
FROM customers c LEFT JOIN {{summary_latest}} l USING (customer_id) LEFT JOIN cu_rev USING (customer_id)
LEFT JOIN cu_k k USING (customer_id) LEFT JOIN churn_events ce ON ce.customer_id = c.customer_id""",
                    uses={"summary_latest": _unfiltered}, grain="customer", append=_append_answers_to_customers,
                    append_to="survey_responses")

#: Complaints and customer-years per latest relationship NPS answer, segment and region (the
#: customers with an answer): the complaint rate by NPS group. A customer is exposed from
#: acquisition (or the first complaint date in the data) to churn (or the last complaint date).
#: The department scope keeps the customers who dealt with one of its departments (inside: the
#: rows keep no customer id).
COMPLAINT_RATE = Relation("summary_complaint_rate", CUSTOMER.depends, """
WITH cr_b AS (SELECT min(opened_on) AS lo, max(opened_on) AS hi FROM complaints)
SELECT c.nps, c.segment, c.region, count(*) AS customers,
       sum(greatest(date_diff('day', greatest(c.acquired_on, cr_b.lo), least(coalesce(c.churned_on, cr_b.hi), cr_b.hi)),
                    0) / 365.25) AS years,
       sum(c.complaints) AS complaints
FROM {summary_customer} c, cr_b WHERE c.nps IS NOT NULL AND {inner} GROUP BY ALL""",
                          inner=_scope_on("c.customer_id"), uses={"summary_customer": _unfiltered},
                          scope_inside=True)

#: Net revenue retention's sums per segment and region over the customers with revenue in the 12
#: months before the last 12 (y = that revenue, x = the last 12 months'): n, Σx, Σy, Σx², Σy², Σxy.
#: The department scope keeps the customers who dealt with one of its departments (inside).
NRR_CELLS = Relation("summary_nrr_cells", CUSTOMER.depends, """
SELECT c.segment, c.region, count(*) AS n, sum(coalesce(c.rev_12m, 0)) AS sx, sum(c.rev_prev_12m) AS sy,
       sum(coalesce(c.rev_12m, 0) * coalesce(c.rev_12m, 0)) AS sxx, sum(c.rev_prev_12m * c.rev_prev_12m) AS syy,
       sum(coalesce(c.rev_12m, 0) * c.rev_prev_12m) AS sxy
FROM {summary_customer} c WHERE c.rev_prev_12m > 0 AND {inner} GROUP BY ALL""", inner=_scope_on("c.customer_id"),
                     uses={"summary_customer": _unfiltered}, scope_inside=True)

_WALLET_SUMS = """
SELECT segment, region, nps, count(*) AS customers,
       count(stated) AS n_stated, sum(stated) AS s_stated, sum(stated * stated) AS ss_stated,
       count(observed) AS n_obs, sum(observed) AS s_obs, sum(observed * observed) AS ss_obs,
       count(war) AS n_war, sum(war * 100) AS s_war, sum(war * war * 10000) AS ss_war,
       sum(nps) FILTER (WHERE stated IS NOT NULL) AS sx, sum(nps * nps) FILTER (WHERE stated IS NOT NULL) AS sxx,
       sum(nps * stated) AS sxy
FROM wa_cust GROUP BY ALL"""
_OBSERVED = """CASE WHEN c.category_wallet > 0 AND c.contract = 'contractual'
                THEN least(coalesce(c.rev_12m, 0) / c.category_wallet, 1.0) * 100 END AS observed"""

#: Share-of-wallet sums per segment, region and latest NPS answer: stated, observed (12-month
#: revenue / category wallet, contract customers) and WAR, and the sums for the OLS of stated
#: share on the score. The latest answer is taken from the responses that count (scope inside).
#: A range open at its end reads it from the customer summary alone, which keeps each customer's
#: latest answer with the day of each field (as :data:`histories.LATEST_OPEN_VIA` reads it): no
#: join of every customer's latest answer with every customer.
WALLET = Relation("summary_wallet", CUSTOMER.depends, f"""
WITH wa_cust AS (
    SELECT l.segment, l.region, l.nps, l.stated, l.war,
           {_OBSERVED}
    FROM {{summary_latest}} l JOIN {{summary_customer}} c USING (customer_id)
){_WALLET_SUMS}""", uses={"summary_latest": _same, "summary_customer": _unfiltered}, inline_uses=("summary_latest",), scope_inside=True,
                  per_page=True, via=Via(f"""
WITH wa_cust AS (
    SELECT c.segment, c.region, c.nps, CASE WHEN c.stated_on >= $date_from THEN c.stated END AS stated,
           CASE WHEN c.war_on >= $date_from THEN c.war END AS war,
           {_OBSERVED}
    FROM {{summary_customer}} c WHERE c.nps_on >= $date_from
){_WALLET_SUMS}""", ("summary_customer",), histories.open_range))

def _pairs_sql(by_department: bool) -> str:
    dept = "r.department, " if by_department else ""
    return f"""
WITH pa_tp AS (
    SELECT r.customer_id, {dept}r.touchpoint, avg(r.csat) AS csat FROM survey_responses r
    WHERE r.survey = 'transactional' AND r.csat IS NOT NULL AND r.touchpoint IS NOT NULL AND {{inner}} GROUP BY ALL
)
SELECT {dept.replace("r.", "pa_tp.")}pa_tp.touchpoint, rel.segment, rel.region, count(*) AS n, sum(pa_tp.csat) AS sx,
       sum(rel.nps) AS sy, sum(pa_tp.csat * pa_tp.csat) AS sxx, sum(rel.nps * rel.nps) AS syy, sum(pa_tp.csat * rel.nps) AS sxy
FROM pa_tp JOIN {{summary_latest}} rel USING (customer_id) GROUP BY ALL"""


_PAIRS_MEASURES = ("n", "sx", "sy", "sxx", "syy", "sxy")

#: :data:`PAIRS` kept per department (each customer's mean CSAT per touchpoint over their responses
#: to the department): what a scope of one department reads without a date range.
PAIRS_BY_DEPARTMENT = Relation("summary_driver_pairs_by_department", frozenset({"customers", "survey_responses"}),
                               _pairs_sql(True).replace("{inner}", "r.department IS NOT NULL"),
                               uses={"summary_latest": _unfiltered}, grain="customer_cells", measures=_PAIRS_MEASURES)

#: :data:`PAIRS`' inputs kept per customer, touchpoint and day they rated it (transactional CSAT):
#: their answer count ``k`` and CSAT sum ``x`` over that day's answers and every later one, the day
#: of their answer before (``after_day``, NULL for the first), and their latest relationship NPS
#: overall with its segment and region (the customers who have one). A customer's mean CSAT at a
#: touchpoint over a range starting on D and running to the data's end is x / k of their one row
#: with after_day < D <= day, and the latest NPS as of the data's end is the overall one: the pairs
#: of such a range are a filter and a GROUP BY by touchpoint, segment and region, no GROUP BY per
#: customer over the responses and no join (0.15–0.19 s → 0.026 s at 10M responses, by hand). Stored
#: in day order, as the cluster suffixes are.
PAIR_SUFFIXES = Relation("summary_driver_pair_suffixes", frozenset({"customers", "survey_responses"}), """
WITH ps_day AS (
    SELECT r.customer_id, r.touchpoint, r.responded_on AS day, count(*) AS k, sum(r.csat) AS x
    FROM survey_responses r
    WHERE r.survey = 'transactional' AND r.csat IS NOT NULL AND r.touchpoint IS NOT NULL AND r.customer_id IS NOT NULL
    GROUP BY ALL
)
SELECT d.touchpoint, rel.segment, rel.region, rel.nps, d.customer_id, lead(d.day) OVER back AS after_day, d.day,
       CAST(sum(d.k) OVER later AS BIGINT) AS k, CAST(sum(d.x) OVER later AS BIGINT) AS x
FROM ps_day d JOIN {summary_latest} rel ON rel.customer_id = d.customer_id
WINDOW back AS (PARTITION BY d.touchpoint, d.customer_id ORDER BY d.day DESC),
       later AS (PARTITION BY d.touchpoint, d.customer_id ORDER BY d.day DESC
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)""", uses={"summary_latest": _unfiltered},
                         grain="customer", stored_order="day")

#: Key-driver sums per touchpoint, segment and region: for each customer and touchpoint, their mean
#: transactional CSAT (over the responses that count) paired with their latest relationship NPS as
#: of the end of the range (sums of x, y, x², y², xy and the count; additive over segments). A scope
#: of one department reads :data:`PAIRS_BY_DEPARTMENT`; a date range, in an unrestricted scope,
#: :data:`PAIR_SUFFIXES`: open at its end, each customer's row holding on its first day with the
#: latest NPS beside it; closed, that row less the one holding on the day after its end
#: (:func:`cxmetrics.store.histories.closed_range`), with the latest NPS as of its end
#: (:data:`cxmetrics.store.histories.LATEST_NPS_AT`).
PAIRS = Relation("summary_driver_pairs", frozenset({"customers", "survey_responses"}), _pairs_sql(False),
                 inner=_responses_inside, uses={"summary_latest": lambda f: Filters(date_to=f.date_to)},
                 inline_uses=("summary_latest",), scope_inside=True, grain="customer_cells", measures=_PAIRS_MEASURES,
                 via=(Via("""
SELECT touchpoint, segment, region, n, sx, sy, sxx, syy, sxy FROM {summary_driver_pairs_by_department}
WHERE department = $via_department""", ("summary_driver_pairs_by_department",), _one_department(dates=True)),
                      Via("""
SELECT touchpoint, segment, region, count(*) AS n, sum(x / k) AS sx, sum(nps) AS sy, sum((x / k) * (x / k)) AS sxx,
       sum(nps * nps) AS syy, sum((x / k) * nps) AS sxy
FROM {summary_driver_pair_suffixes}
WHERE day >= $date_from AND (after_day IS NULL OR after_day < $date_from) GROUP BY ALL""",
                          ("summary_driver_pair_suffixes",), histories.open_range),
                      Via(f"""
SELECT x.touchpoint, rel.segment, rel.region, count(*) AS n, sum(x.x / x.k) AS sx, sum(rel.nps) AS sy,
       sum((x.x / x.k) * (x.x / x.k)) AS sxx, sum(rel.nps * rel.nps) AS syy, sum((x.x / x.k) * rel.nps) AS sxy
FROM (SELECT x.customer_id, x.touchpoint, x.k - coalesce(z.k, 0) AS k, x.x - coalesce(z.x, 0) AS x
      FROM summary_driver_pair_suffixes x LEFT JOIN (
          SELECT z.customer_id, z.touchpoint, z.k, z.x FROM summary_driver_pair_suffixes z
          WHERE {histories.holds("z", "$date_after")}) z ON z.customer_id = x.customer_id AND z.touchpoint = x.touchpoint
      WHERE {{start}} AND x.k > coalesce(z.k, 0)) x
JOIN ({histories.LATEST_NPS_AT}) rel USING (customer_id) GROUP BY ALL""",
                          ("summary_driver_pair_suffixes", "summary_answer_spells"), histories.closed_range)))

#: Every relationship detractor response with what the closed-loop view needs: the first follow-up
#: contact on or after the response day (the same day counts; followed within d days ⟺ it falls
#: within d days), the churn date, and the NPS (NULL when that answer has none) of the customer's
#: next relationship answer, on the first later day they answered one. Ties: when the customer gave
#: two or more relationship answers on that later day, the one with the lowest ``response_id``
#: gives the NPS (plain byte order of the id, the same on DuckDB and Spark; the definition before
#: this one, with ``ORDER BY responded_on LIMIT 1``, took either).
#:
#: Written with window functions, no correlated subquery. DuckDB decorrelated the earlier
#: definition's two scalar subqueries; Spark planned them as date-inequality joins across all
#: customers (2,371 s of a 2,567 s build at 10M responses) and lost the ``LIMIT 1``'s order (a
#: later answer's NPS for 1 row in 10 on a 100,000-customer demo lake). ``de_first`` runs a
#: minimum of follow-up days down each customer's timeline of detractor answers and follow-ups,
#: newest first with a day's follow-ups before its answers, so the running minimum at an answer is
#: its first follow-up on or after its day (a running frame: linear on both engines, where Spark
#: recomputes a frame that ends UNBOUNDED FOLLOWING at every row). ``de_days`` keeps one
#: relationship answer per customer and day (the lowest ``response_id``) and takes LEAD over the
#: days, joined back on (customer, day). Every table is read by ``FROM``/``JOIN`` name, so the
#: incremental update can narrow each to the appended customers.
DETRACTORS = Relation("summary_detractors", frozenset({"customers", "survey_responses", "followups", "churn_events"}),
                      f"""
WITH de_line AS (
    SELECT r.response_id, r.customer_id, r.responded_on AS d, r.department, 0 AS kind
    FROM survey_responses r
    WHERE r.survey = 'relationship' AND {detractor("r.nps")} AND r.customer_id IS NOT NULL
    UNION ALL
    SELECT NULL, f.customer_id, f.contacted_on, NULL, 1 FROM followups f
), de_first AS (
    SELECT l.response_id, l.customer_id, l.d AS responded_on, l.department, l.kind,
           min(CASE WHEN l.kind = 1 THEN l.d END) OVER (
               PARTITION BY l.customer_id ORDER BY l.d DESC, l.kind DESC
               ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS first_followup
    FROM de_line l
), de_days AS (
    SELECT a.customer_id, a.responded_on,
           lead(a.nps) OVER (PARTITION BY a.customer_id ORDER BY a.responded_on) AS next_nps
    FROM (SELECT r2.customer_id, r2.responded_on, r2.nps,
                 row_number() OVER (PARTITION BY r2.customer_id, r2.responded_on ORDER BY r2.response_id) AS k
          FROM survey_responses r2
          WHERE r2.survey = 'relationship' AND r2.customer_id IS NOT NULL) a
    WHERE a.k = 1
)
SELECT r.response_id, r.customer_id, r.responded_on, r.department, c.segment, c.region, c.contract,
       r.first_followup, ce.churned_on, nx.next_nps
FROM de_first r JOIN customers c USING (customer_id)
LEFT JOIN churn_events ce ON ce.customer_id = r.customer_id
LEFT JOIN de_days nx ON nx.customer_id = r.customer_id AND nx.responded_on = r.responded_on
WHERE r.kind = 0""", grain="customer")

#: The relationship detractor responses counted by day, department, segment, region and contract,
#: with the days to the first follow-up (NULL: none) and whether the customer churned within 12
#: months of the answer; the next relationship NPS summed for its mean and SD (count, sum, squares).
DETRACTOR_CELLS = Relation("summary_detractor_cells", DETRACTORS.depends, """
SELECT d.responded_on, d.department, d.segment, d.region, d.contract,
       date_diff('day', d.responded_on, d.first_followup) AS followup_days,
       coalesce(d.churned_on > d.responded_on AND d.churned_on <= d.responded_on + INTERVAL 12 MONTH, false) AS churned,
       count(*) AS n, count(d.next_nps) AS n_next, CAST(coalesce(sum(d.next_nps), 0) AS BIGINT) AS s_next,
       CAST(coalesce(sum(d.next_nps * d.next_nps), 0) AS BIGINT) AS ss_next
FROM {summary_detractors} d GROUP BY ALL""", uses={"summary_detractors": _unfiltered})
#: (Rebuilt from the stored detractor rows at every write that changes them: 0.12 s at a million
#: customers, where recounting the appended customers' cells before and after an append took 0.4 s.)


def _gaps_within(filters: Filters, args: dict) -> tuple[dict, dict] | None:
    """:data:`GAPS`' :class:`Via` condition: a date range and a scope of none or one department.
    The complaints that count are those opened in the range (and the department); a complaint's
    next one among them is its next one overall (in the department) when that was opened by the
    range's end — it was opened on the same day or later, so never before the range — so the gaps
    are the stored ones of the complaints opened in the range, each kept when the next complaint
    (opened ``gap_days`` later) falls in the range and none otherwise. Several departments: None."""
    one = None
    if filters.scope.restricted:
        if len(filters.scope.departments or ()) != 1:
            return None
        one = filters.scope.departments[0]
    parts, params = [], {}
    if one is not None:
        parts.append("department = $via_department")
        params["via_department"] = one
    if filters.date_from is not None:
        parts.append("opened_on >= $via_from")
        params["via_from"] = filters.date_from
    if filters.date_to is not None:
        parts.append("opened_on <= $via_to")
        params["via_to"] = filters.date_to
    return {"src": "{summary_complaint_gaps_by_department}" if one is not None else "{summary_complaint_gaps}",
            "cond": " AND ".join(parts) or "TRUE",
            "next": "gap_days <= date_diff('day', opened_on, $via_to)" if filters.date_to is not None else "TRUE"}, params


#: Complaints (those that count) by opening day, with the days until the same customer's next
#: complaint that counts (NULL: none) and the customer's segment and region.
GAPS = Relation("summary_complaint_gaps", frozenset({"customers", "complaints"}), _gaps_sql(False), inner=_complaints_inside, scope_inside=True,
                via=Via("""
SELECT segment, region, opened_on, CASE WHEN {next} THEN gap_days END AS gap_days, n FROM {src} WHERE {cond}""",
                        ("summary_complaint_gaps", "summary_complaint_gaps_by_department"), _gaps_within))

#: Per complaint category, segment and region: contract customers who complained (among the
#: complaints that count, up to 12 months before the last complaint date) and those of them who
#: churned within 12 months of such a complaint (distinct customers add up over segments and regions).
UPLIFT = Relation("summary_category_uplift", frozenset({"customers", "complaints", "churn_events"}), _uplift_sql(False), inner=_complaints_inside, scope_inside=True, via=Via("""
SELECT category, segment, region, customers, churned FROM {summary_category_uplift_by_department}
WHERE department = $via_department""", ("summary_category_uplift_by_department",), _one_department(dates=True)))

#: The landmark base's columns from ``lm_in`` (each contractual customer's segment, region,
#: acquisition and churn dates, the latest relationship NPS and CSAT before L, whether they complained
#: before L and whether escalated) and the bounds L, E — shared by its definition and its answer from
#: the landmark states (:data:`cxmetrics.store.histories.LANDMARK_INPUTS`).
_LANDMARK_SELECT = f"""
SELECT i.customer_id, i.segment, i.region, CASE WHEN i.nps IS NOT NULL THEN {nps_group("i.nps")} END AS nps_group,
       i.csat,
       CASE WHEN NOT i.complained THEN 'no complaint'
            WHEN i.escalated THEN 'escalated complaint' ELSE 'complaint, not escalated' END AS complaint_history,
       CASE WHEN date_diff('month', i.acquired_on, lm_bounds.L) < 12 THEN '0-11m'
            WHEN date_diff('month', i.acquired_on, lm_bounds.L) < 24 THEN '12-23m' ELSE '24m+' END AS tenure,
       (i.churned_on IS NOT NULL AND i.churned_on <= lm_bounds.E) AS event,
       greatest(date_diff('day', lm_bounds.L, least(coalesce(i.churned_on, lm_bounds.E), lm_bounds.E)), 0.5) AS days,
       (i.churned_on IS NOT NULL AND i.churned_on < lm_bounds.L + INTERVAL 12 MONTH) AS churn12
FROM lm_in i CROSS JOIN lm_bounds
WHERE i.acquired_on <= lm_bounds.L AND (i.churned_on IS NULL OR i.churned_on >= lm_bounds.L)"""

_LANDMARK_BOUNDS = f"""
WITH lm_bounds AS (
    SELECT $landmark::DATE AS L,
           coalesce($end::DATE, {DATA_END_SQL})::DATE AS E
)"""

#: What the landmark base reads only before the landmark (responses and complaints dated on or after
#: it change nothing there).
_BEFORE_LANDMARK = (("survey_responses", "responded_on"), ("complaints", "opened_on"))

#: The churn landmark base: one row per contractual customer active at the landmark L — the NPS
#: group of their latest relationship answer before L (no look-ahead; NULL without one), their
#: latest CSAT before L (of answers on the same day, the one with the lowest ``response_id``, as in
#: :data:`DETRACTORS`: the key is the days to a fixed date, smallest first, then the id), complaint
#: history before L, tenure band at L, and the outcome: churned by E (the end: ``$end``, else the last
#: transaction date), days at risk from L, and churn within 12 months of L. The end without
#: transactions: :data:`DATA_END_SQL`. Any other landmark is a filter over the landmark states.
LANDMARK = Relation("summary_landmark", frozenset({"customers", "survey_responses", "complaints", "churn_events",
                                                   "transactions"}), _LANDMARK_BOUNDS + f""", lm_grp AS (
    SELECT r.customer_id, arg_min(r.nps, {_KEY}) AS nps
    FROM survey_responses r, lm_bounds
    WHERE r.survey = 'relationship' AND r.nps IS NOT NULL AND r.responded_on < lm_bounds.L
    GROUP BY 1
), lm_cs AS (
    SELECT r.customer_id, arg_min(r.csat, {_KEY}) AS csat
    FROM survey_responses r, lm_bounds
    WHERE r.csat IS NOT NULL AND r.responded_on < lm_bounds.L
    GROUP BY 1
), lm_comp AS (
    SELECT k.customer_id, bool_or(coalesce(k.escalated, false)) AS escalated
    FROM complaints k, lm_bounds WHERE k.opened_on < lm_bounds.L GROUP BY 1
), lm_in AS (
    SELECT c.customer_id, c.segment, c.region, c.acquired_on, ce.churned_on, g.nps, lm_cs.csat,
           lm_comp.customer_id IS NOT NULL AS complained, coalesce(lm_comp.escalated, false) AS escalated
    FROM customers c
    LEFT JOIN lm_grp g USING (customer_id)
    LEFT JOIN churn_events ce ON ce.customer_id = c.customer_id
    LEFT JOIN lm_cs ON lm_cs.customer_id = c.customer_id
    LEFT JOIN lm_comp ON lm_comp.customer_id = c.customer_id
    WHERE c.contract = 'contractual'
)""" + _LANDMARK_SELECT, args=("landmark", "end"), per_page=True, before_landmark=_BEFORE_LANDMARK,
                    via=Via(_LANDMARK_BOUNDS + histories.LANDMARK_INPUTS + _LANDMARK_SELECT,
                            (histories.LANDMARK_STATES.name,),
    lambda filters, args: ({}, {"landmark": args.get("landmark"), "end": args.get("end")})))

#: The churn landmark base (customers with a relationship NPS answer before L) counted by NPS group,
#: segment, region, tenure band and complaint history before L — unresolved at L (any complaint
#: still open on L), else escalated (any), else resolved; "no complaint" without one — with churn
#: events and days at risk: the cells of the churn hazard after complaints. The department scope
#: keeps the customers who dealt with one of its departments (inside: the rows keep no customer id).
#: Whether a customer complained before L, and whether escalated, is the base's complaint history
#: (the same complaints: opened before L); only the complaints still open on L are read here, a
#: filter on two dates instead of grouping every earlier complaint by customer (at 20M complaints,
#: 1.0–1.3 s for a landmark late in the data).
COMPLAINT_CHURN = Relation("summary_complaint_churn", LANDMARK.depends, """
WITH cc_open AS (
    SELECT DISTINCT k.customer_id FROM complaints k
    WHERE k.opened_on < $landmark::DATE AND (k.closed_on IS NULL OR k.closed_on >= $landmark::DATE))
SELECT b.nps_group, b.segment, b.region, b.tenure,
       CASE WHEN b.complaint_history = 'no complaint' THEN 'no complaint'
            WHEN cc_open.customer_id IS NOT NULL THEN 'unresolved'
            WHEN b.complaint_history = 'escalated complaint' THEN 'escalated' ELSE 'resolved' END AS state,
       count(*) AS customers, count(*) FILTER (WHERE b.event) AS events, sum(b.days) AS days
FROM {summary_landmark} b LEFT JOIN cc_open USING (customer_id)
WHERE b.nps_group IS NOT NULL AND {inner} GROUP BY ALL""", inner=_scope_on("b.customer_id"), scope_inside=True,
                           uses={"summary_landmark": _same}, inline_uses=("summary_landmark",), args=("landmark",),
                           before_landmark=_BEFORE_LANDMARK)

#: Revenue of each landmark-base customer in the 12 months to E, and its active calendar months
#: (a bit set of month offsets: count(DISTINCT date_trunc('month', …)) gives the same at four times
#: the cost) — the margin input of contractual CLV. A month's offset is its calendar months after
#: the window's start S (year × 12 + month, what ``date_diff('month', S, day)`` counts), the start
#: computed once: ``date_diff`` and the interval arithmetic on every transaction made the query
#: 0.35 s instead of 0.25 s at 20M transactions (a window ending inside the data, by hand).
LANDMARK_REVENUE = Relation("summary_landmark_revenue", LANDMARK.depends, f"""
WITH lr_bounds AS (
    SELECT E, S, year(S) * 12 + month(S) AS s_month
    FROM (SELECT E, (E - INTERVAL 12 MONTH)::DATE AS S
          FROM (SELECT coalesce($end::DATE, {DATA_END_SQL})::DATE AS E) lr_e) lr_s
)
SELECT t.customer_id, sum(t.amount) AS revenue,
       bit_count(bit_or(1::UBIGINT << (year(t.occurred_on) * 12 + month(t.occurred_on) - lr_bounds.s_month)::UBIGINT)) AS months
FROM transactions t, lr_bounds
WHERE t.occurred_on > lr_bounds.S AND t.occurred_on <= lr_bounds.E
  AND t.customer_id IN (SELECT customer_id FROM {{summary_landmark}} WHERE nps_group IS NOT NULL)  -- those valued
GROUP BY 1""", uses={"summary_landmark": _same}, args=("end",), before_landmark=_BEFORE_LANDMARK, via=(Via("""
SELECT c.customer_id, c.rev_12m AS revenue, c.months_12m AS months
FROM summary_customer c
WHERE c.rev_12m IS NOT NULL
  AND c.customer_id IN (SELECT customer_id FROM {summary_landmark} WHERE nps_group IS NOT NULL)""",
    ("summary_customer",), lambda filters, args: None if args.get("end") is not None else ({}, {})),
    histories.LANDMARK_REVENUE_MONTHS_VIA))
#: (summary_customer keeps each customer's revenue and active months in the 12 months to the last
#: transaction date — the same E when no end is given; any other end is sliced from each customer's
#: revenue by month, histories.REVENUE_MONTHS.)

def _clv_cells_sql(by_department: bool) -> str:
    dept, join = (("cd.department, ", "JOIN {summary_customer_departments} cd USING (customer_id) ") if by_department
                  else ("", ""))
    return f"""
SELECT {dept}b.nps_group, b.segment, b.region, b.tenure, count(*) AS customers,
       count(*) FILTER (WHERE b.event) AS events, sum(b.days) AS days, sum(coalesce(rev.revenue, 0)) AS revenue,
       sum(coalesce(rev.months, 0)) AS revenue_months,
       sum(coalesce(rev.revenue, 0) * coalesce(rev.revenue, 0) / greatest(coalesce(rev.months, 1), 1)) AS rev_sq
FROM {{summary_landmark}} b {join}LEFT JOIN {{summary_landmark_revenue}} rev USING (customer_id)
WHERE b.nps_group IS NOT NULL{"" if by_department else " AND {inner}"} GROUP BY ALL"""


#: :data:`CLV_CELLS` kept per department (a customer counted once in each department they dealt
#: with): what a scope of one department reads at the default landmark and end.
CLV_CELLS_BY_DEPARTMENT = Relation("summary_clv_cells_by_department", LANDMARK.depends, _clv_cells_sql(True),
                                   uses={"summary_landmark": _same, "summary_landmark_revenue": _same,
                                         "summary_customer_departments": _unfiltered},
                                   before_landmark=_BEFORE_LANDMARK)

#: The churn landmark base (customers with a relationship NPS answer before L) counted by NPS group,
#: segment, region and tenure band with churn events, days at risk and each customer's revenue and
#: active months in the 12 months to E (summed, and the sum of revenue² / months for the SE of the
#: revenue per customer-month): the inputs of contractual CLV. The department scope keeps the
#: customers who dealt with one of its departments (inside: the rows keep no customer id); one
#: department at the default landmark and end reads its rows of :data:`CLV_CELLS_BY_DEPARTMENT`.
CLV_CELLS = Relation("summary_clv_cells", LANDMARK.depends, _clv_cells_sql(False), inner=_scope_on("b.customer_id"),
                     scope_inside=True, uses={"summary_landmark": _same, "summary_landmark_revenue": _same},
                     inline_uses=("summary_landmark_revenue",),
                     before_landmark=_BEFORE_LANDMARK, via=Via("""
SELECT nps_group, segment, region, tenure, customers, events, days, revenue, revenue_months, rev_sq
FROM {summary_clv_cells_by_department} WHERE department = $via_department""",
    ("summary_clv_cells_by_department",), _one_department(dates=True), same_args=("landmark", "end")))

#: Per-customer recency/frequency/monetary value at the calibration end ``$cal_end`` over the
#: purchases in ``{source}`` (``customer_id``, ``occurred_on``, ``amount``). Purchases on the same day
#: count once (the usual BTYD convention); ``m`` is the mean value of repeat purchases (the first
#: purchase excluded, as in Fader, Hardie & Lee 2005b); amounts are summed as exact cents (a float
#: sum depends on the order of parallel work, and m is rounded).
RFM_PER_CUSTOMER = """
WITH rfm_tx AS (
    SELECT t.customer_id, t.occurred_on::DATE AS d, sum(CAST(t.amount AS DECIMAL(18, 2))) AS amount
    FROM {source} t WHERE t.occurred_on::DATE <= $cal_end GROUP BY 1, 2
)
SELECT customer_id, count(*) - 1 AS x, date_diff('day', min(d), max(d)) AS t_x_days,
       date_diff('day', min(d), $cal_end) AS T_days,
       CASE WHEN count(*) > 1 THEN (sum(amount) - arg_min(amount, d)) / (count(*) - 1) END AS m
FROM rfm_tx GROUP BY 1"""

#: RFM cells: customers counted by (x, t_x, T, m) — what the BG/NBD and Gamma-Gamma likelihoods need.
RFM_CELLS = """
SELECT x, t_x_days, T_days, CAST(round(m * 100) / 100 AS DOUBLE) AS m, count(*) AS w
FROM {rfm} c WHERE {where} GROUP BY ALL ORDER BY ALL"""

#: Non-contractual customers' RFM at the calibration end, with segment, region and customer id for filters.
RFM = Relation("summary_rfm", frozenset({"customers", "transactions"}), """
SELECT p.*, c.segment, c.region FROM (""" + RFM_PER_CUSTOMER.replace(
    "{source}", "(SELECT t.* FROM transactions t JOIN customers c USING (customer_id) "
                "WHERE c.contract = 'non_contractual')") + """) p
JOIN customers c USING (customer_id)""", args=("cal_end",))

#: The share of the observed span of non-contractual purchases held out for the BG/NBD
#: calibration/holdout check (the last third).
HOLDOUT_SHARE = 1 / 3

#: The BG/NBD calibration/holdout check's inputs per non-contractual customer with a purchase in the
#: calibration period: the RFM at the calibration end (as :data:`RFM_PER_CUSTOMER`), the distinct
#: purchase days in the holdout, segment and region, and the split itself — the first such purchase,
#: the calibration end (the first two thirds of the span: ⌊days × (1 − share)⌋ days after the first
#: purchase, in double precision as Python computes it) and the holdout end (the last transaction
#: date). A filtered check then counts cells of these rows instead of scanning the transactions twice.
RFM_HOLDOUT = Relation("summary_rfm_holdout", frozenset({"customers", "transactions"}), f"""
WITH ho_tx AS (
    SELECT t.customer_id, t.occurred_on::DATE AS d, sum(CAST(t.amount AS DECIMAL(18, 2))) AS amount
    FROM transactions t JOIN customers c USING (customer_id) WHERE c.contract = 'non_contractual' GROUP BY 1, 2
), ho_split AS (
    SELECT s.first_on,
           s.first_on + CAST(floor(CAST(date_diff('day', s.first_on, s.last_on) AS DOUBLE)
                                   * CAST({1 - HOLDOUT_SHARE!r} AS DOUBLE)) AS INTEGER) AS cal_end,
           s.last_on AS hold_end
    FROM (SELECT min(d) AS first_on, (SELECT max(occurred_on) FROM transactions)::DATE AS last_on FROM ho_tx) s
), ho_cal AS (
    SELECT h.customer_id, count(*) - 1 AS x, date_diff('day', min(h.d), max(h.d)) AS t_x_days,
           date_diff('day', min(h.d), any_value(s.cal_end)) AS T_days,
           CASE WHEN count(*) > 1 THEN (sum(h.amount) - arg_min(h.amount, h.d)) / (count(*) - 1) END AS m
    FROM ho_tx h, ho_split s WHERE h.d <= s.cal_end GROUP BY 1
), ho_hold AS (
    SELECT h.customer_id, count(*) AS holdout_days
    FROM ho_tx h, ho_split s WHERE h.d > s.cal_end AND h.d <= s.hold_end GROUP BY 1
)
SELECT p.customer_id, c.segment, c.region, p.x, p.t_x_days, p.T_days, p.m,
       coalesce(o.holdout_days, 0) AS holdout_days, s.first_on, s.cal_end, s.hold_end
FROM ho_cal p JOIN customers c USING (customer_id) LEFT JOIN ho_hold o USING (customer_id) CROSS JOIN ho_split s""")

#: Every relation, in build order (a relation after those it reads).
ALL: tuple[Relation, ...] = (ANSWER_SPELLS, *CLUSTER_SUFFIXES, LANDMARK_STATES, REVENUE_MONTHS, CUSTOMER_DEPARTMENTS, LIFECYCLE_BY_DEPARTMENT,
                             GAPS_BY_DEPARTMENT,
                             UPLIFT_BY_DEPARTMENT, LATEST, CUSTOMER, COMPLAINT_RATE, NRR_CELLS, LANDMARK, COMPLAINT_CHURN, LANDMARK_REVENUE, CLV_CELLS_BY_DEPARTMENT, CLV_CELLS, RESPONSES, KPI_LINKED, DETRACTORS, DETRACTOR_CELLS, RFM, RFM_HOLDOUT,
                             PAIRS_BY_DEPARTMENT, PAIR_SUFFIXES, PAIRS, GAPS, COMPLAINTS, REVENUE, UPLIFT, LIFECYCLE, KPI_DAILY,
                             KPI_WINDOW, WALLET)
RELATIONS: dict[str, Relation] = {r.name: r for r in ALL}
