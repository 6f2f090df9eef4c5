"""The relation type and the shared SQL rules (NPS groups, the Wallet Allocation Rule, the data's
end): what :mod:`cxmetrics.store.relations` and :mod:`cxmetrics.store.histories` are written with.
:mod:`cxmetrics.store.relations` re-exports every name here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cxmetrics.core.filters import Filters

# ----------------------------------------------------------------------------- shared rules

#: A relationship or transactional NPS answer's group (promoters 9–10, passives 7–8, detractors 0–6).
PROMOTER_MIN = 9
PASSIVE_MIN = 7
#: A CSAT rating that counts as satisfied (4–5 of 1–5: "% satisfied").
CSAT_SATISFIED_MIN = 4
#: A response's touchpoint as a group (a relationship answer has none).
TOUCHPOINT_GROUP = "coalesce(r.touchpoint, '(relationship)')"


def nps_group(col: str) -> str:
    """The NPS group of score column ``col`` as SQL (the one place the cut-offs are written).

    >>> nps_group("r.nps")
    "CASE WHEN r.nps >= 9 THEN 'promoter' WHEN r.nps >= 7 THEN 'passive' ELSE 'detractor' END"
    """
    return (f"CASE WHEN {col} >= {PROMOTER_MIN} THEN 'promoter' WHEN {col} >= {PASSIVE_MIN} THEN 'passive' "
            "ELSE 'detractor' END")


def promoter(col: str) -> str:
    """SQL condition: ``col`` is a promoter's score."""
    return f"{col} >= {PROMOTER_MIN}"


def detractor(col: str) -> str:
    """SQL condition: ``col`` is a detractor's score."""
    return f"{col} < {PASSIVE_MIN}"


def nps_points(col: str, scale: str = "1") -> str:
    """SQL: +scale for a promoter's score, −scale for a detractor's, 0 otherwise (NPS is the mean × 100/scale).

    >>> nps_points("r.nps", "100.0")
    'CASE WHEN r.nps >= 9 THEN 100.0 WHEN r.nps < 7 THEN -100.0 ELSE 0 END'
    """
    return f"CASE WHEN {promoter(col)} THEN {scale} WHEN {detractor(col)} THEN -{scale} ELSE 0 END"


def war(rank: str, brands: str) -> str:
    """The Wallet Allocation Rule (Keiningham et al. 2011) as SQL: (1 − rank/(brands + 1)) × 2/brands."""
    return f"(1 - {rank} / ({brands} + 1)) * 2 / {brands}"


#: The last date the store knows about: the last transaction, or without transactions the last
#: churn event or survey response (the end E that customers are followed to).
DATA_END_SQL = """coalesce((SELECT max(occurred_on) FROM transactions),
         (SELECT max(d) FROM (SELECT max(churned_on) AS d FROM churn_events
                              UNION ALL SELECT max(responded_on) FROM survey_responses)))"""


# ----------------------------------------------------------------------------- the relation type


def _none(filters: Filters) -> tuple[str, dict[str, Any]]:
    return "TRUE", {}


@dataclass(frozen=True)
class Via:
    """How a relation is answered, for filters its own stored table does not hold, from other
    stored relations that keep its history (e.g. each customer's answers with the date the next
    one replaced it): ``sql`` reads those relations by placeholder (bound to their stored tables,
    built for the unfiltered view) and ``{cond}``, the condition :attr:`cond` returns for the
    caller's filters and the relation's arguments (None: the histories cannot answer them). Same rows as the relation's own SQL under those filters — the page
    comparison tests compute every page both ways."""

    sql: str
    reads: tuple[str, ...]
    cond: Callable[[Filters, dict[str, Any]], tuple[dict[str, str], dict[str, Any]] | None]
    #: arguments that must be the ones the stored relations were built with (their rows were
    #: computed for those: the default landmark and end, say)
    same_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Relation:
    """One base relation.

    Attributes
    ----------
    name : the summary table that stores it (and the placeholder metric SQL reads it by).
    depends : the contract tables it is computed from (a write to any of them rebuilds it).
    sql : its definition. ``{inner}`` stands for the condition :attr:`inner` returns; ``{name}``
        of another relation for that relation (bound for the filters :attr:`uses` gives).
    inner : the caller's filters → (condition, parameters) the relation applies inside.
    uses : other relation name → the filters it is read with, from the caller's.
    args : parameters of the definition besides the filters (``landmark``, ``end``, ``cal_end``);
        the stored table holds the answer only for the values it was built with.
    scope_inside : the department scope is applied by :attr:`inner` (the rows keep no column the
        caller could restrict on).
    per_page : when the stored table cannot answer, compute the relation once per page call into
        a temporary table (several queries of a page read it).
    grain : how a write that only appended rows brings the stored table up to date
        (:mod:`cxmetrics.store.incremental`): ``"cells"`` — counted cells, each appended row adds to
        one cell (the SQL reads the appended table once, with no window, distinct or look-up over
        it), so the appended rows' cells are merged in by adding :attr:`measures`; ``"customer"`` —
        each row belongs to one ``customer_id`` and depends only on that customer's rows, so the
        customers in the appended rows are recomputed; ``"customer_cells"`` — cells summed over
        customers, each customer's contribution depending only on their rows (in every table and
        used relation, which must be ``"customer"`` relations), so the appended customers'
        contributions after the write less those before it are added; ``"table"`` — rebuilt.
    measures : the added columns of a ``"cells"`` or ``"customer_cells"`` relation (counts and
        sums; the first one of a ``"customer_cells"`` relation is its cells' count); the others are
        its cells' keys.
    via : when the stored table cannot answer, the same rows computed from other stored relations
        (pre-aggregated histories) instead of the raw tables, when those are current (see :class:`Via`);
        several are tried in order, the first whose condition holds answering.
    before_landmark : (table, date column) pairs whose rows count only when dated before the
        ``landmark`` argument: rows appended to them on or after it (or undated) leave the stored
        table as it was, when the landmark and the data's end are the ones it was built with and
        the relations it reads are unchanged too (:func:`cxmetrics.store.incremental.unchanged_by`).
    append : for a ``"customer"`` relation, ``append(con, rows)`` brings the stored table up to
        date from ``rows`` (a table of the rows appended to :attr:`append_to`) in time linear in
        those rows, instead of recomputing the appended customers from all their rows (tested
        against a rebuild like every update).
    append_to : the contract table whose appended rows :attr:`append` takes; empty: the one table
        the relation reads besides ``customers``. Rows appended to any other table it reads rebuild
        it (e.g. a relation whose rows also depend on a total over every customer's transactions
        takes appended answers, not appended transactions).
    inline_uses : relations of :attr:`uses` bound into the definition as a subquery even when
        their histories answer them (a via), instead of a temporary table for the page, unless
        the page already made that table: this relation is their only reader under those filters
        (on its page) and reads few of their columns, so DuckDB computes just those, and the rows
        are never held outside its memory limit.
    stored_order : the order the stored table's rows are written in when it is (re)built (an
        ORDER BY list; empty: the definition's), so that DuckDB's per-block min/max skip the blocks
        a filter on those columns excludes; rows an update adds go at the end. Only the stored
        table: the relation computed for a caller is never sorted for it.
    """

    name: str
    depends: frozenset[str]
    sql: str
    inner: Callable[[Filters], tuple[str, dict[str, Any]]] = _none
    uses: dict[str, Callable[[Filters], Filters]] = field(default_factory=dict)
    args: tuple[str, ...] = ()
    scope_inside: bool = False
    per_page: bool = False
    grain: str = "table"
    measures: tuple[str, ...] = ()
    via: Via | tuple[Via, ...] | None = None
    before_landmark: tuple[tuple[str, str], ...] = ()
    append: Callable[[Any, str], None] | None = None
    append_to: str = ""
    inline_uses: tuple[str, ...] = ()
    stored_order: str = ""

    @property
    def appended_table(self) -> str:
        """The contract table whose appended rows :attr:`append` takes (see :attr:`append_to`)."""
        if self.append_to:
            return self.append_to
        (only,) = self.depends - {"customers"}
        return only

    @property
    def vias(self) -> tuple[Via, ...]:
        """:attr:`via` as a tuple (empty when there is none), in the order they are tried."""
        if self.via is None:
            return ()
        return self.via if isinstance(self.via, tuple) else (self.via,)
