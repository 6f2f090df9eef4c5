"""Customer histories: stored relations from which other relations are answered for any date
(:class:`cxmetrics.store.relation_types.Via`) — each relationship answer with the day the next one
replaced it, each CSAT answer likewise, and each customer's first (escalated) complaint. The
latest answer as of a day, or the churn landmark base at any landmark, is then a filter over
one row per answer or customer instead of a look-back over every raw response."""

from __future__ import annotations

from typing import Any

from cxmetrics.core.filters import Filters
from cxmetrics.store.relation_types import DATA_END_SQL, Relation, Via, war

#: Every relationship answer with an NPS (customer, department, day, score, stated share of wallet,
#: WAR share) with the day the customer's next answer replaced it — overall and within the same
#: department, for the score and for each field's next non-empty value. The latest answer as of
#: any day D is then the answer given on or before D and not replaced by D: a filter, no look-back.
ANSWER_SPELLS = Relation("summary_answer_spells", frozenset({"customers", "survey_responses"}), f"""
WITH sp_r AS (
    SELECT r.customer_id, c.segment, c.region, r.department, r.responded_on, r.nps,
           r.share_of_wallet_pct AS stated, {war("r.brand_rank", "r.brands_used")} AS war
    FROM survey_responses r JOIN customers c USING (customer_id)
    WHERE r.survey = 'relationship' AND r.nps IS NOT NULL
)
SELECT *, min(responded_on) OVER later AS next_any,
       min(responded_on) FILTER (WHERE stated IS NOT NULL) OVER later AS next_stated,
       min(responded_on) FILTER (WHERE war IS NOT NULL) OVER later AS next_war,
       min(responded_on) OVER later_dept AS dept_next_any,
       min(responded_on) FILTER (WHERE stated IS NOT NULL) OVER later_dept AS dept_next_stated,
       min(responded_on) FILTER (WHERE war IS NOT NULL) OVER later_dept AS dept_next_war
FROM sp_r
WINDOW later AS (PARTITION BY customer_id ORDER BY responded_on
                 RANGE BETWEEN INTERVAL 1 DAY FOLLOWING AND UNBOUNDED FOLLOWING),
       later_dept AS (PARTITION BY customer_id, department ORDER BY responded_on
                      RANGE BETWEEN INTERVAL 1 DAY FOLLOWING AND UNBOUNDED FOLLOWING)""", grain="customer")


def _latest_from_spells(filters: Filters, args: dict | None = None) -> tuple[dict[str, str], dict[str, Any]]:
    """:data:`LATEST` under ``filters`` from :data:`ANSWER_SPELLS`: the answers in the date range
    (and scope) not replaced by its end — within the scope's departments when restricted (the
    latest in any of them then wins). Each field has its own spell: ``arg_max`` skips empty values,
    so a field's latest value may come from an earlier answer than the score's."""
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
    return {"cond": cond, "any": valid("any"), "stated": valid("stated"), "war": valid("war")}, params


#: :data:`cxmetrics.store.relations.LATEST` under a date range or department scope, from the answer spells.
LATEST_VIA = Via("""
SELECT s.customer_id, any_value(s.segment) AS segment, any_value(s.region) AS region,
       arg_max(s.nps, s.responded_on) FILTER (WHERE {any}) AS nps,
       arg_max(s.stated, s.responded_on) FILTER (WHERE {stated}) AS stated,
       arg_max(s.war, s.responded_on) FILTER (WHERE {war}) AS war
FROM {summary_answer_spells} s WHERE {cond} AND ({any} OR {stated} OR {war})
GROUP BY 1""", ("summary_answer_spells",), _latest_from_spells)

#: Every CSAT answer (any survey) of a known customer with the day the customer's next CSAT answer
#: replaced it: the latest CSAT as of any day is a filter (the churn landmark at any date).
CSAT_SPELLS = Relation("summary_csat_spells", frozenset({"survey_responses"}), """
SELECT r.customer_id, r.responded_on, r.csat,
       min(r.responded_on) OVER (PARTITION BY r.customer_id ORDER BY r.responded_on
                                 RANGE BETWEEN INTERVAL 1 DAY FOLLOWING AND UNBOUNDED FOLLOWING) AS next_on
FROM survey_responses r WHERE r.csat IS NOT NULL AND r.customer_id IS NOT NULL""", grain="customer")

#: Per customer, the day of their first complaint and of their first escalated one: whether they
#: had complained (escalated) before any day is a comparison.
COMPLAINT_FIRSTS = Relation("summary_complaint_firsts", frozenset({"complaints"}), """
SELECT k.customer_id, min(k.opened_on) AS first_on, min(k.opened_on) FILTER (WHERE k.escalated) AS first_escalated_on
FROM complaints k WHERE k.customer_id IS NOT NULL GROUP BY 1""", grain="customer")

#: The churn landmark base's per-customer inputs at any landmark L from the histories: the latest
#: relationship NPS and CSAT before L, and whether (escalated) complaints were opened before L
#: (its final SELECT is :data:`cxmetrics.store.relations.LANDMARK`'s own).
LANDMARK_HISTORIES = f"""
WITH lm_bounds AS (
    SELECT $landmark::DATE AS L,
           coalesce($end::DATE, {DATA_END_SQL})::DATE AS E
), lm_grp AS (
    SELECT s.customer_id, arg_max(s.nps, s.responded_on) AS nps
    FROM summary_answer_spells s, lm_bounds
    WHERE s.responded_on < lm_bounds.L AND (s.next_any IS NULL OR s.next_any >= lm_bounds.L)
    GROUP BY 1
), lm_cs AS (
    SELECT s.customer_id, arg_max(s.csat, s.responded_on) AS csat
    FROM summary_csat_spells s, lm_bounds
    WHERE s.responded_on < lm_bounds.L AND (s.next_on IS NULL OR s.next_on >= lm_bounds.L)
    GROUP BY 1
), lm_comp AS (
    SELECT f.customer_id, coalesce(f.first_escalated_on < lm_bounds.L, false) AS escalated
    FROM summary_complaint_firsts f, lm_bounds WHERE f.first_on < lm_bounds.L
)"""
LANDMARK_READS = (ANSWER_SPELLS.name, CSAT_SPELLS.name, COMPLAINT_FIRSTS.name)
