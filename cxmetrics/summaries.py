"""Summary tables: the heaviest shared sub-results, materialised with each data version.

At a million customers and ten million responses a page computed from the raw tables joins and
groups tens of millions of rows, several times over. The sub-results many queries share are pure
functions of the data, so they are computed once per data version, inside the transaction that
changes the data (:func:`cxmetrics.store.bump_version` runs the commit step of
:mod:`cxmetrics.commit`, which calls :func:`refresh`), and stored as
ordinary tables named ``summary_*`` (each defined by the SQL constant beside its name below):

* counted cubes that any filter can be applied to, because every column a filter or grouping
  touches is kept and counts add up: responses (:data:`RESPONSES_SQL`), complaints
  (:data:`COMPLAINTS_SQL`), revenue per day (:data:`REVENUE_SQL`), KPI values per day
  (:data:`KPI_DAILY_SQL`), linked KPI observations (:data:`KPI_SQL`), customers by lifecycle
  dates (:data:`LIFECYCLE_SQL`);
* customer-level tables for the unfiltered view (or a segment/region of it): the churn landmark
  base of :mod:`cxmetrics.churn`, customer facts (:data:`CUSTOMER_SQL`), detractor responses
  (:data:`DETRACTORS_SQL`), key-driver sums (:data:`PAIRS_SQL`), complaint gaps (:data:`GAPS_SQL`),
  category churn (:data:`UPLIFT_SQL`), RFM at the last transaction date;
* the model fits of the unfiltered view (:data:`FITS`).

A query reads a summary only when it holds exactly the raw query's answer: built (or carried
over) at the current data version, and for filters it can apply; otherwise the raw query runs
(same figures, slower). A write rebuilds only the summaries computed from the tables it changed
(:data:`DEPENDS`). ``tests/test_summaries.py`` computes every page both ways and requires the
same figures.

This module sits in the store layer and imports no metric module: the definitions a metric module
owns (the churn landmark base, RFM, the default landmark) and the kept fits are registered into
:data:`RELATIONS` and :data:`FITS` from above, by :mod:`cxmetrics.commit`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

import duckdb

from . import filters as _filters
from . import store

LANDMARK_TABLE = "summary_landmark"
CUSTOMER_TABLE = "summary_customer"
RESPONSES_TABLE = "summary_responses"
KPI_TABLE = "summary_kpi_linked"
DETRACTORS_TABLE = "summary_detractors"
RFM_TABLE = "summary_rfm"
PAIRS_TABLE = "summary_driver_pairs"
FITS_TABLE = "summary_fits"
GAPS_TABLE = "summary_complaint_gaps"
COMPLAINTS_TABLE = "summary_complaints"
REVENUE_TABLE = "summary_revenue"
UPLIFT_TABLE = "summary_category_uplift"
LIFECYCLE_TABLE = "summary_lifecycle"
KPI_DAILY_TABLE = "summary_kpi_daily"
DEPARTMENTS_TABLE = "summary_customer_departments"
WALLET_TABLE = "summary_wallet"
KPI_ALLTIME_TABLE = "summary_kpi_linked_alltime"
_META_KEY = "summary_landmark"
#: Bumped by hand only for a change the definitions' SQL does not show (how a file records its
#: summaries); a change of any definition changes :func:`format_version` by itself.
FORMAT = 14

RESPONSES_SQL = """
SELECT r.responded_on, r.survey, r.touchpoint, r.department, c.segment, c.region, r.nps, r.csat, r.ces,
       count(*) AS n, sum(r.weight) AS sw, sum(r.weight * r.weight) AS sw2
FROM survey_responses r LEFT JOIN customers c ON c.customer_id = r.customer_id
GROUP BY ALL
"""

#: Customer-level KPI observations with the NPS answer of the response they are linked to, and the
#: responding customer's segment and region, counted by every column the alignment filters on.
KPI_SQL = """
SELECT o.kpi_id, round(o.value, 1) AS x, o.observed_on, r.department, c.segment, c.region, r.nps, count(*) AS n
FROM kpi_observations o
JOIN survey_responses r ON r.response_id = o.response_id
JOIN customers c ON c.customer_id = r.customer_id
WHERE o.response_id IS NOT NULL AND r.nps IS NOT NULL
GROUP BY ALL
"""

#: Every relationship detractor response with what the closed-loop view needs: the first follow-up
#: contact on or after the response (followed within d days ⟺ it falls within d days), the churn
#: date, and the NPS of the customer's next relationship answer.
DETRACTORS_SQL = """
SELECT r.response_id, r.customer_id, r.responded_on, r.department, c.segment, c.region, c.contract,
       (SELECT min(f.contacted_on) FROM followups f
        WHERE f.customer_id = r.customer_id AND f.contacted_on >= r.responded_on) AS first_followup,
       ce.churned_on,
       (SELECT r2.nps FROM survey_responses r2 WHERE r2.customer_id = r.customer_id AND r2.survey = 'relationship'
          AND r2.responded_on > r.responded_on ORDER BY r2.responded_on LIMIT 1) AS next_nps
FROM survey_responses r JOIN customers c USING (customer_id)
LEFT JOIN churn_events ce ON ce.customer_id = r.customer_id
WHERE r.survey = 'relationship' AND r.nps <= 6
"""

#: Key-driver sums per touchpoint, segment and region over all the data: for each customer and
#: touchpoint, their mean transactional CSAT paired with their latest relationship NPS (sums of x,
#: y, x², y², xy and the count; additive, so any segment or region filter is a sum of rows).
PAIRS_SQL = """
WITH tp AS (
    SELECT r.customer_id, r.touchpoint, avg(r.csat) AS csat FROM survey_responses r
    WHERE r.survey = 'transactional' AND r.csat IS NOT NULL AND r.touchpoint IS NOT NULL GROUP BY 1, 2
), rel AS (
    SELECT customer_id, arg_max(nps, responded_on) AS nps FROM survey_responses r
    WHERE r.survey = 'relationship' AND r.nps IS NOT NULL GROUP BY 1
)
SELECT tp.touchpoint, c.segment, c.region, count(*) AS n, sum(tp.csat) AS sx, sum(rel.nps) AS sy,
       sum(tp.csat * tp.csat) AS sxx, sum(rel.nps * rel.nps) AS syy, sum(tp.csat * rel.nps) AS sxy
FROM tp JOIN rel USING (customer_id) JOIN customers c USING (customer_id) GROUP BY ALL
"""

#: Complaints by opening day, with the days until the same customer's next complaint (NULL: none),
#: and the customer's segment and region: the re-contact rate of the unfiltered view (or a segment
#: or region of it) for any window is a sum over these rows.
GAPS_SQL = """
WITH k AS (
    SELECT k.customer_id, k.opened_on,
           lead(k.opened_on) OVER (PARTITION BY k.customer_id ORDER BY k.opened_on, k.complaint_id) AS next_on
    FROM complaints k
)
SELECT c.segment, c.region, k.opened_on, date_diff('day', k.opened_on, k.next_on) AS gap_days, count(*) AS n
FROM k JOIN customers c USING (customer_id) GROUP BY ALL
"""

#: Complaints counted by every column the complaint views filter or group on (day, category,
#: channel, department, root cause, segment, region and the three flags), with recorded costs.
COMPLAINTS_SQL = """
SELECT k.opened_on, k.category, k.channel, k.department, k.root_cause, c.segment, c.region, k.escalated,
       k.callback_promised, k.callback_done, count(*) AS n, count(k.cost) AS n_cost, sum(k.cost) AS sum_cost
FROM complaints k LEFT JOIN customers c ON c.customer_id = k.customer_id
GROUP BY ALL
"""

#: Revenue and transactions per day, segment and region.
REVENUE_SQL = """
SELECT t.occurred_on, c.segment, c.region, sum(t.amount) AS revenue, count(*) AS transactions
FROM transactions t JOIN customers c USING (customer_id) GROUP BY ALL
"""

#: Per complaint category, segment and region: contract customers who complained (up to 12 months
#: before the last complaint date) and those of them who churned within 12 months of such a
#: complaint. Distinct customers add up over segments and regions (a customer has one of each).
UPLIFT_SQL = """
SELECT k.category, c.segment, c.region, count(DISTINCT k.customer_id) AS customers,
       count(DISTINCT k.customer_id) FILTER (WHERE ce.churned_on > k.opened_on
                                             AND ce.churned_on <= k.opened_on + INTERVAL 12 MONTH) AS churned
FROM complaints k JOIN customers c USING (customer_id) LEFT JOIN churn_events ce ON ce.customer_id = k.customer_id
WHERE c.contract = 'contractual' AND k.opened_on <= (SELECT max(opened_on) FROM complaints) - INTERVAL 12 MONTH
GROUP BY ALL
"""

#: Customers counted by segment, region, contract, acquisition date and churn date, with their
#: category wallets' count, sum and sum of squares: active-base counts and exposures for any
#: window are sums over these rows (each row's dates stand for all n of its customers).
LIFECYCLE_SQL = """
SELECT c.segment, c.region, c.contract, c.acquired_on, ce.churned_on, count(*) AS n,
       count(c.category_wallet) AS n_wallet, sum(c.category_wallet) AS s_wallet,
       sum(c.category_wallet * c.category_wallet) AS ss_wallet
FROM customers c LEFT JOIN churn_events ce ON ce.customer_id = c.customer_id
GROUP BY ALL
"""

#: KPI observations per KPI and day, split by whether they are about one customer, with the count
#: and sum of values (monthly and windowed averages are ratios of sums over these rows).
KPI_DAILY_SQL = """
SELECT kpi_id, observed_on, customer_id IS NOT NULL AS customer_level, count(*) AS n, count(value) AS n_value,
       sum(value) AS s_value
FROM kpi_observations GROUP BY ALL
"""

#: Which customers dealt with which department (a response or complaint attributed to it): the
#: rows a department scope keeps on customer-level tables (see :meth:`Filters.where`).
DEPARTMENTS_SQL = """
SELECT customer_id, department FROM survey_responses WHERE department IS NOT NULL
UNION
SELECT customer_id, department FROM complaints WHERE department IS NOT NULL
"""

#: summary_kpi_linked without the day: per KPI, value, department, segment, region and NPS answer,
#: with the count in the last 12 months of observations (the views without a date filter).
KPI_ALLTIME_SQL = """
SELECT kpi_id, x, department, segment, region, nps, sum(n) AS n,
       coalesce(sum(n) FILTER (WHERE observed_on > (SELECT max(observed_on) FROM kpi_observations)
                                                  - INTERVAL 12 MONTH), 0) AS n_last_year
FROM summary_kpi_linked GROUP BY ALL
"""

#: Share-of-wallet sums per segment, region and latest NPS answer (from summary_customer): the
#: unfiltered wallet view, or a segment or region of it, is a sum of these rows.
WALLET_SQL = """
WITH cust AS (
    SELECT c.segment, c.region, c.nps, c.stated, c.war,
           CASE WHEN c.category_wallet > 0 AND c.contract = 'contractual'
                THEN least(coalesce(c.rev_12m, 0) / c.category_wallet, 1.0) * 100 END AS observed
    FROM summary_customer c WHERE c.nps IS NOT NULL
)
SELECT segment, region, nps, count(*) AS customers,
       count(stated) AS n_stated, sum(stated) AS s_stated, sum(stated * stated) AS ss_stated,
       count(observed) AS n_obs, sum(observed) AS s_obs, sum(observed * observed) AS ss_obs,
       count(war) AS n_war, sum(war * 100) AS s_war, sum(war * war * 10000) AS ss_war,
       sum(nps) FILTER (WHERE stated IS NOT NULL) AS sx, sum(nps * nps) FILTER (WHERE stated IS NOT NULL) AS sxx,
       sum(nps * stated) AS sxy
FROM cust GROUP BY ALL
"""

#: Per customer, as of the whole data: latest relationship answer with an NPS (the queries it
#: replaces take each field's arg_max by date), revenue in the 12 months to the last transaction
#: date E (and its active calendar months, as a bit set of month offsets), revenue in the 12 months
#: before that, and complaints ever opened.
CUSTOMER_SQL = """
WITH last AS (SELECT max(occurred_on) AS E FROM transactions),
latest AS (
    SELECT r.customer_id, arg_max(r.nps, r.responded_on) AS nps,
           arg_max(r.share_of_wallet_pct, r.responded_on) AS stated,
           arg_max((1 - r.brand_rank / (r.brands_used + 1)) * 2 / r.brands_used, r.responded_on) AS war
    FROM survey_responses r WHERE r.survey = 'relationship' AND r.nps IS NOT NULL GROUP BY 1
), rev AS (
    SELECT t.customer_id,
           sum(t.amount) FILTER (WHERE t.occurred_on > (last.E - INTERVAL 12 MONTH)::DATE) AS rev_12m,
           bit_count(bit_or(1::UBIGINT << greatest(date_diff('month', last.E - INTERVAL 12 MONTH, t.occurred_on), 0)::UBIGINT)
                     FILTER (WHERE t.occurred_on > (last.E - INTERVAL 12 MONTH)::DATE)) AS months_12m,
           sum(t.amount) FILTER (WHERE t.occurred_on <= (last.E - INTERVAL 12 MONTH)::DATE) AS rev_prev_12m
    FROM transactions t, last WHERE t.occurred_on > (last.E - INTERVAL 24 MONTH)::DATE GROUP BY 1
), k AS (SELECT customer_id, count(*) AS complaints FROM complaints GROUP BY 1)
SELECT c.customer_id, c.segment, c.region, c.contract, c.acquired_on, c.category_wallet, ce.churned_on,
       latest.nps, latest.stated, latest.war, rev.rev_12m, rev.months_12m, rev.rev_prev_12m,
       coalesce(k.complaints, 0) AS complaints
FROM customers c LEFT JOIN latest USING (customer_id) LEFT JOIN rev USING (customer_id) LEFT JOIN k USING (customer_id)
LEFT JOIN churn_events ce ON ce.customer_id = c.customer_id
"""


#: Each summary, the contract tables it is computed from, and how it is built. A write that changes
#: none of a summary's tables carries it over to the new data version without rebuilding it.
DEPENDS: dict[str, frozenset[str]] = {
    CUSTOMER_TABLE: frozenset({"customers", "survey_responses", "complaints", "transactions", "churn_events"}),
    # built after summary_customer, whose 12-month revenue it carries
    LANDMARK_TABLE: frozenset({"customers", "survey_responses", "complaints", "churn_events", "transactions"}),
    RESPONSES_TABLE: frozenset({"customers", "survey_responses"}),
    KPI_TABLE: frozenset({"customers", "survey_responses", "kpi_observations"}),
    DETRACTORS_TABLE: frozenset({"customers", "survey_responses", "followups", "churn_events"}),
    RFM_TABLE: frozenset({"customers", "transactions"}),
    PAIRS_TABLE: frozenset({"customers", "survey_responses"}),
    GAPS_TABLE: frozenset({"customers", "complaints"}),
    COMPLAINTS_TABLE: frozenset({"customers", "complaints"}),
    REVENUE_TABLE: frozenset({"customers", "transactions"}),
    UPLIFT_TABLE: frozenset({"customers", "complaints", "churn_events"}),
    LIFECYCLE_TABLE: frozenset({"customers", "churn_events"}),
    KPI_DAILY_TABLE: frozenset({"kpi_observations"}),
    DEPARTMENTS_TABLE: frozenset({"survey_responses", "complaints"}),
    # built from the summaries above them
    KPI_ALLTIME_TABLE: frozenset({"customers", "survey_responses", "kpi_observations"}),
    WALLET_TABLE: frozenset({"customers", "survey_responses", "complaints", "transactions", "churn_events"}),
    # model fits of the unfiltered view, computed from the tables above once they are current
    FITS_TABLE: frozenset({"customers", "survey_responses", "complaints", "churn_events", "transactions"}),
}

#: Summaries that need a last transaction date, and summaries computed from another summary.
NEED_TRANSACTIONS = frozenset({LANDMARK_TABLE, RFM_TABLE, CUSTOMER_TABLE, WALLET_TABLE})
BUILT_FROM = {LANDMARK_TABLE: CUSTOMER_TABLE, WALLET_TABLE: CUSTOMER_TABLE, KPI_ALLTIME_TABLE: KPI_TABLE}

#: Fits kept in summary_fits: name → function(con) returning a JSON-able result, for the
#: unfiltered view at the default landmark / calibration end (see :func:`fit`). Registered by
#: :mod:`cxmetrics.commit` (the cox fit of churn, the BTYD fit of btyd).
FITS: dict[str, Callable] = {}
#: Definitions owned by metric modules, registered by :mod:`cxmetrics.commit`: summary name →
#: function(landmark, end) returning its Query (summary_landmark, summary_rfm), and ``"landmark"``
#: → function(con) returning the default landmark date.
RELATIONS: dict[str, Callable] = {}


@dataclass(frozen=True)
class LandmarkSummary:
    landmark: dt.date
    end: dt.date


def landmark_query(landmark: dt.date):
    """summary_landmark's definition: the churn landmark base at ``landmark``, with each
    customer's revenue in the 12 months to the last transaction (from summary_customer)."""
    return RELATIONS[LANDMARK_TABLE](landmark, None)


#: The fixed definitions (the landmark base and RFM take the landmark / calibration end).
DEFINITIONS = {CUSTOMER_TABLE: CUSTOMER_SQL, RESPONSES_TABLE: RESPONSES_SQL, KPI_TABLE: KPI_SQL,
               DETRACTORS_TABLE: DETRACTORS_SQL, PAIRS_TABLE: PAIRS_SQL, GAPS_TABLE: GAPS_SQL,
               COMPLAINTS_TABLE: COMPLAINTS_SQL, REVENUE_TABLE: REVENUE_SQL, UPLIFT_TABLE: UPLIFT_SQL,
               LIFECYCLE_TABLE: LIFECYCLE_SQL, KPI_DAILY_TABLE: KPI_DAILY_SQL, DEPARTMENTS_TABLE: DEPARTMENTS_SQL,
               KPI_ALLTIME_TABLE: KPI_ALLTIME_SQL, WALLET_TABLE: WALLET_SQL}


def _build(con: duckdb.DuckDBPyConnection, name: str, landmark: dt.date, end) -> None:
    if name not in DEPENDS or name == FITS_TABLE:  # only known summary names reach the SQL text
        raise ValueError(f"not a summary table: {name}")
    q = RELATIONS[name](landmark, end) if name in (LANDMARK_TABLE, RFM_TABLE) else None
    sql, params = (q.sql, q.params) if q else (DEFINITIONS[name], {})
    con.execute(f"CREATE OR REPLACE TABLE {name} AS {sql}", params)  # name checked against DEPENDS above


def _read(con: duckdb.DuckDBPyConnection) -> dict:
    row = con.execute("SELECT value FROM meta WHERE key = ?", [_META_KEY]).fetchone()
    info = json.loads(row[0]) if row else {}
    return info if info.get("format") == format_version() else {}


def format_version() -> str:
    """The summaries' format: a hash of every definition's SQL (the fixed ones, the registered
    landmark base and RFM at a fixed date), of what each is computed from, and of the fits kept.
    A file built with another format is treated as having no summaries (raw queries) until it is
    next opened read-write, which rebuilds them."""
    probe = dt.date(2000, 1, 1)
    parts = [str(FORMAT)] + [f"{n}:{DEFINITIONS.get(n, '')}:{sorted(d)}" for n, d in DEPENDS.items()]
    parts += [f"{n}:{RELATIONS[n](probe, probe).sql}" for n in (LANDMARK_TABLE, RFM_TABLE) if n in RELATIONS]
    parts += sorted(FITS)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def refresh(con: duckdb.DuckDBPyConnection, version: int, *, previous: int | None = None,
            changed: set[str] | None = None) -> list[str]:
    """Bring the summaries to data version ``version`` (call inside the writing transaction).

    ``changed`` names the contract tables the write changed (None: any may have): a summary that
    was current at ``previous`` and reads none of them is carried over; the others are rebuilt.
    Returns the names rebuilt."""
    info = _read(con)
    built = dict(info.get("built", {}))
    landmark = RELATIONS["landmark"](con)
    end = con.execute("SELECT max(occurred_on) FROM transactions").fetchone()[0]
    rebuilt = []
    def save():
        info = {"format": format_version(), "landmark": landmark.isoformat(), "end": end.isoformat() if end else None,
                "built": built}
        con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [_META_KEY, json.dumps(info)])

    for name, deps in DEPENDS.items():
        keep = changed is not None and not (deps & set(changed)) and built.get(name) == previous
        if keep:
            built[name] = version
        elif name == FITS_TABLE:
            built.pop(name, None)  # fitted last, on the summaries just built
        elif (end is None and name in NEED_TRANSACTIONS) or (name in BUILT_FROM
                                                             and built.get(BUILT_FROM[name]) != version):
            built.pop(name, None)  # no transactions yet (nothing to summarise against), or no source
        else:
            _build(con, name, landmark, end)
            rebuilt.append(name)
            built[name] = version
    save()
    if built.get(FITS_TABLE) != version:
        rows = []
        for fit_name, fit_fn in FITS.items():
            result = fit_fn(con)
            if result is not None:
                rows.append((fit_name, json.dumps(result)))
        con.execute("CREATE OR REPLACE TABLE summary_fits (name VARCHAR PRIMARY KEY, result VARCHAR)")
        if rows:
            con.executemany("INSERT INTO summary_fits VALUES (?, ?)", rows)
        rebuilt.append(FITS_TABLE)
        built[FITS_TABLE] = version
        save()
    return rebuilt


def customer_filters_only(filters) -> bool:
    """Whether ``filters`` narrow by customer only (segment, region): no dates, unrestricted scope."""
    return filters.date_from is None and filters.date_to is None and not filters.scope.restricted


def lifecycle(con: duckdb.DuckDBPyConnection, filters) -> bool:
    """Whether ``summary_lifecycle`` may stand for customers ⟕ churn_events under ``filters``:
    current, and no department scope (that restriction needs each customer's id)."""
    return not filters.scope.restricted and current(con, LIFECYCLE_TABLE)


def unfiltered(filters) -> bool:
    """Whether ``filters`` select everything (any role with an unrestricted scope)."""
    return (filters.date_from is None and filters.date_to is None and not filters.segments
            and not filters.regions and not filters.scope.restricted)


def fit(con: duckdb.DuckDBPyConnection, name: str):
    """The stored fit ``name`` (its JSON result) when current, else None."""
    if not current(con, FITS_TABLE):
        return None
    df = store.run(con, store.Query("summary_fit", "SELECT result FROM summary_fits WHERE name = $n", {"n": name}))
    return json.loads(df["result"].iloc[0]) if len(df) else None


def _state(con: duckdb.DuckDBPyConnection) -> tuple[dict, int]:
    """(summary info, current data version): one small query, memoised within a page's call."""
    df = store.run(con, store.Query("summary_state", "SELECT (SELECT value FROM meta WHERE key = $k) AS info, "
                                                     "(SELECT value FROM meta WHERE key = 'data_version') AS v",
                                    {"k": _META_KEY}))
    raw, v = df["info"].iloc[0], df["v"].iloc[0]
    info = json.loads(raw) if isinstance(raw, str) else {}
    return (info if info.get("format") == format_version() else {}), int(v or 0)


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


def customer(con: duckdb.DuckDBPyConnection, filters=None, *, response_filters: bool = False) -> bool:
    """Whether ``summary_customer`` may replace the raw customer-level query for ``filters``.

    It must be current. With ``response_filters`` the raw query restricts the *responses* it takes
    the latest answer from (by date and by the scope's departments), so only the unfiltered view
    matches; otherwise the filters act on customers (segment, region, scope) and apply to the
    summary's rows as they would to the customers table."""
    if not current(con, CUSTOMER_TABLE):
        return False
    return filters is None or not response_filters or customer_filters_only(filters)


@dataclass(frozen=True)
class Cells:
    """Where counts come from: a raw table joined to customers (alias ``c`` for segment and
    region), or its counted summary (segment and region on the row alias, rows weighted by
    ``n``). The methods write each aggregate for either path; the row alias is the same on both."""

    cube: bool
    alias: str
    raw: str
    summary: str

    @property
    def source(self) -> str:
        return f"{self.summary} {self.alias}" if self.cube else self.raw

    @property
    def customer(self) -> str:
        return self.alias if self.cube else "c"

    def dim(self, expr: str) -> str:
        """A grouping expression written for the raw path, on this source."""
        a = self.alias
        return expr.replace("c.segment", f"{a}.segment").replace("c.region", f"{a}.region") if self.cube else expr

    def count(self, cond: str | None = None) -> str:
        f = f" FILTER (WHERE {cond})" if cond else ""
        return f"CAST(coalesce(sum({self.alias}.n){f}, 0) AS BIGINT)" if self.cube else f"count(*){f}"

    def wsum(self, cond: str | None = None) -> str:
        """Sum of survey weights (responses only)."""
        a, f = self.alias, f" FILTER (WHERE {cond})" if cond else ""
        return f"sum({a}.sw){f}" if self.cube else f"sum({a}.weight){f}"

    def w2sum(self) -> str:
        a = self.alias
        return f"sum({a}.sw2)" if self.cube else f"sum({a}.weight * {a}.weight)"

    def xsum(self, expr: str) -> str:
        return f"sum(({expr}) * {self.alias}.n)" if self.cube else f"sum({expr})"

    def mean(self, expr: str) -> str:
        a = self.alias
        return f"sum(({expr}) * {a}.n) / sum({a}.n) FILTER (WHERE ({expr}) IS NOT NULL)" if self.cube else f"avg({expr})"


def responses(con: duckdb.DuckDBPyConnection) -> Cells:
    """The source for survey counts (alias ``r``): ``summary_responses`` when it is current."""
    return Cells(current(con, RESPONSES_TABLE), "r", "survey_responses r JOIN customers c USING (customer_id)",
                 RESPONSES_TABLE)


def complaints(con: duckdb.DuckDBPyConnection) -> Cells:
    """The source for complaint counts (alias ``k``): ``summary_complaints`` when it is current."""
    return Cells(current(con, COMPLAINTS_TABLE), "k", "complaints k JOIN customers c USING (customer_id)",
                 COMPLAINTS_TABLE)


def _department_map(con: duckdb.DuckDBPyConnection | None):
    """A page call's set-up (:data:`cxmetrics.store.PAGE_HOOKS`): department scopes read the kept
    customer set when it is current."""
    table = DEPARTMENTS_TABLE if con is not None and current(con, DEPARTMENTS_TABLE) else None
    token = _filters.CUSTOMER_DEPARTMENTS.set(table)
    return lambda: _filters.CUSTOMER_DEPARTMENTS.reset(token)


if _department_map not in store.PAGE_HOOKS:
    store.PAGE_HOOKS.append(_department_map)
