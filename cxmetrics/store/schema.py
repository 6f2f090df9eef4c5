"""The data contract as data: every table, column, type, key and check.

The DDL, the import validator and the README's data-contract table are all generated from
``TABLES`` so they cannot drift apart (see ``tests/test_schema.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

SCHEMA_VERSION = 5  # 2: assumption_history, booked_revenue; 3: assumption ranges (low, high); 4: customer_stubs, anonymous responses and complaints; 5: codebook_versions, codebook

#: Columns whose values are identifiers or categories. Text here that starts like a spreadsheet
#: formula (``=``, ``+``, ``-``, ``@``, tab, CR) is rejected on import; free text is accepted and
#: neutralised on export instead (see :mod:`cxmetrics.exports`).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Column:
    """One column of the contract.

    ``kind`` is one of ``id`` (identifier text), ``category`` (short label), ``text`` (free text),
    ``int``, ``float``, ``date``, ``bool``.
    """

    name: str
    kind: str
    required: bool = False
    min: float | None = None
    max: float | None = None
    allowed: tuple[str, ...] = ()
    max_len: int = 200
    doc: str = ""

    @property
    def sql_type(self) -> str:
        return {
            "id": "VARCHAR",
            "category": "VARCHAR",
            "text": "VARCHAR",
            "int": "INTEGER",
            "float": "DOUBLE",
            "date": "DATE",
            "bool": "BOOLEAN",
        }[self.kind]


@dataclass(frozen=True)
class Table:
    name: str
    grain: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    #: (column, parent table, parent column): checked on import, not by a DuckDB constraint
    #: (DuckDB forbids updating a parent row that children reference, which would break upserts).
    parents: tuple[tuple[str, str, str], ...] = ()
    #: (column, parent table, parent column) checked on import only when the parent table has rows,
    #: so partial data (complaints before any department list) still imports.
    soft_parents: tuple[tuple[str, str, str], ...] = ()
    #: Columns to derive the key from when the file has no key column (hash of these + ordinal).
    derive_key_from: tuple[str, ...] = ()
    #: Extra row checks in SQL over the typed staging columns: (sql condition that must hold, message)
    row_checks: tuple[tuple[str, str, str], ...] = ()
    fact: bool = False  # large fact table: no primary-key index, uniqueness enforced by the importer
    #: Columns the rows of one write are stored in the order of (:attr:`stored_order`); a date
    #: column by its calendar month.
    order: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    @property
    def stored_order(self) -> str:
        """``ORDER BY`` for the rows a write adds to this table (``""``: as they come). DuckDB keeps
        each row group's least and greatest value of every column and skips the row groups a
        condition rules out, and groups by customer fastest when a customer's rows are near each
        other. A file in date order (a survey export) is stored by what the pages narrow by (the
        survey, the department), then by month, then by customer. Within a write only: the rows
        already stored stay where they are. What the order did to the pages, timed on the bench
        store: README, "Importing" and "Performance"."""
        cols = {c.name: c for c in self.columns}
        keys = [f"date_trunc('month', \"{c}\")" if cols[c].kind == "date" else f'"{c}"' for c in self.order]
        return f" ORDER BY {', '.join(keys)}" if keys else ""


C = Column
SURVEYS = ("relationship", "transactional")
CONTRACTS = ("contractual", "non_contractual")
TRACKS = ("strategic", "result_driven")
DIRECTIONS = ("lower_is_better", "higher_is_better")

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "customers",
            "one row per customer",
            (
                C("customer_id", "id", True),
                C("segment", "category", True),
                C("region", "category", True),
                C("acquired_on", "date", True),
                C("contract", "category", True, allowed=CONTRACTS),
                C("category_wallet", "float", min=0, doc="annual spend in the category, all suppliers"),
            ),
            key=("customer_id",),
        ),
        Table(
            "transactions",
            "one row per invoice or purchase",
            (
                C("transaction_id", "id", True, doc="derived from the row when the file has none"),
                C("customer_id", "id", True),
                C("occurred_on", "date", True),
                C("amount", "float", True, min=-1e9, max=1e9),
            ),
            key=("transaction_id",),
            parents=(("customer_id", "customers", "customer_id"),),
            derive_key_from=("customer_id", "occurred_on", "amount"),
            fact=True,
            order=("occurred_on", "customer_id"),
        ),
        Table(
            "survey_responses",
            "one row per response",
            (
                C("response_id", "id", True),
                C("customer_id", "id", doc="empty for an anonymous response"),
                C("responded_on", "date", True),
                C("survey", "category", True, allowed=SURVEYS),
                C("touchpoint", "category"),
                C("department", "category"),
                C("nps", "int", min=0, max=10),
                C("csat", "int", min=1, max=5),
                C("ces", "int", min=1, max=7),
                C("share_of_wallet_pct", "float", min=0, max=100),
                C("brand_rank", "int", min=1, max=100),
                C("brands_used", "int", min=1, max=100),
                C("verbatim", "text", max_len=10_000),
                C("theme", "category", doc="optional theme label of the verbatim"),
                C("weight", "float", min=0, doc="design weight; defaults to 1"),
            ),
            key=("response_id",),
            parents=(("customer_id", "customers", "customer_id"),),
            row_checks=(
                ("brand_rank IS NULL OR brands_used IS NULL OR brand_rank <= brands_used",
                 "brand_rank", "brand_rank is larger than brands_used"),
                ("nps IS NOT NULL OR csat IS NOT NULL OR ces IS NOT NULL OR share_of_wallet_pct IS NOT NULL",
                 "nps", "the response has no score (nps, csat, ces or share_of_wallet_pct)"),
            ),
            fact=True,
            order=("survey", "department", "responded_on", "customer_id"),
        ),
        Table(
            "churn_events",
            "one row per churned customer",
            (
                C("customer_id", "id", True),
                C("churned_on", "date", True),
                C("reason", "category"),
                C("voluntary", "bool"),
            ),
            key=("customer_id",),
            parents=(("customer_id", "customers", "customer_id"),),
        ),
        Table(
            "complaints",
            "one row per complaint",
            (
                C("complaint_id", "id", True),
                C("customer_id", "id", doc="empty when the complaints log has no customer key"),
                C("opened_on", "date", True),
                C("closed_on", "date", doc="empty while the complaint is open"),
                C("category", "category", True),
                C("channel", "category"),
                C("department", "category"),
                C("escalated", "bool"),
                C("callback_promised", "bool"),
                C("callback_done", "bool"),
                C("root_cause", "category"),
                C("cost", "float", min=0),
            ),
            key=("complaint_id",),
            parents=(("customer_id", "customers", "customer_id"),),
            soft_parents=(("department", "departments", "department"),),
            row_checks=(
                ("closed_on IS NULL OR closed_on >= opened_on", "closed_on", "closed_on is before opened_on"),
                ("NOT coalesce(callback_done, false) OR coalesce(callback_promised, false)",
                 "callback_done", "callback_done is true but no callback was promised"),
            ),
            fact=True,
            order=("department", "opened_on", "customer_id"),
        ),
        Table(
            "followups",
            "one row per outbound contact closing the loop with a customer (extension)",
            (
                C("followup_id", "id", True),
                C("customer_id", "id", True),
                C("response_id", "id", doc="the survey response being followed up, if any"),
                C("contacted_on", "date", True),
                C("channel", "category"),
                C("outcome", "category"),
            ),
            key=("followup_id",),
            parents=(("customer_id", "customers", "customer_id"),),
            soft_parents=(("response_id", "survey_responses", "response_id"),),
            fact=True,
        ),
        Table(
            "departments",
            "one row per department",
            (
                C("department", "category", True),
                C("leader", "category"),
                C("ambassador", "category"),
            ),
            key=("department",),
        ),
        Table(
            "kpis",
            "one row per departmental KPI",
            (
                C("kpi_id", "id", True),
                C("department", "category", True),
                C("name", "category", True),
                C("unit", "category", True),
                C("direction", "category", True, allowed=DIRECTIONS),
                C("target", "float", True, min=-1e12, max=1e12),
                C("touchpoint", "category", doc="survey touchpoint whose responses this KPI is linked to"),
            ),
            key=("kpi_id",),
            parents=(("department", "departments", "department"),),
        ),
        Table(
            "kpi_observations",
            "one row per measurement",
            (
                C("observation_id", "id", True, doc="derived from the row when the file has none"),
                C("kpi_id", "id", True),
                C("observed_on", "date", True),
                C("value", "float", True, min=-1e12, max=1e12),
                C("customer_id", "id", doc="empty for period-level measurements"),
                C("response_id", "id", doc="the survey response about this very event, if any"),
            ),
            key=("observation_id",),
            parents=(("kpi_id", "kpis", "kpi_id"), ("customer_id", "customers", "customer_id")),
            derive_key_from=("kpi_id", "observed_on", "value", "customer_id"),
            fact=True,
        ),
        Table(
            "initiatives",
            "one row per CX initiative",
            (
                C("initiative_id", "id", True),
                C("name", "category", True),
                C("track", "category", True, allowed=TRACKS),
                C("department", "category", True),
                C("owner", "category"),
                C("started_on", "date", True),
                C("ended_on", "date"),
                C("cost", "float", min=0),
                C("target_metric", "category", doc="e.g. escalation_rate, csat:billing, kpi:KPI-CC-WAIT"),
                C("treated_segment", "category", doc="e.g. region=south, segment=smb, all"),
                C("description", "text", max_len=5_000),
            ),
            key=("initiative_id",),
            parents=(("department", "departments", "department"),),
            row_checks=(("ended_on IS NULL OR ended_on >= started_on", "ended_on", "ended_on is before started_on"),),
        ),
        Table(
            "assumptions",
            "one row per finance assumption",
            (
                C("key", "id", True),
                C("value", "float", True, min=-1e12, max=1e12),
                C("unit", "category", True),
                C("source", "text", max_len=500),
                C("updated_by", "category"),
                C("updated_on", "date"),
                C("low", "float", min=-1e12, max=1e12, doc="low end of the plausible range (finance; optional)"),
                C("high", "float", min=-1e12, max=1e12, doc="high end of the plausible range (finance; optional)"),
            ),
            key=("key",),
            row_checks=(("(low IS NULL) = (high IS NULL)", "high", "give both low and high, or neither"),
                        ("low IS NULL OR low <= value", "low", "low is above the value"),
                        ("high IS NULL OR high >= value", "high", "high is below the value")),
        ),
    )
}

#: Tables the importer accepts (everything in the contract except bookkeeping).
IMPORTABLE = tuple(TABLES)

#: Order in which tables must be loaded so parents exist before children.
LOAD_ORDER = (
    "departments", "customers", "kpis", "assumptions", "initiatives", "transactions",
    "survey_responses", "churn_events", "complaints", "followups", "kpi_observations",
)

#: The theme codebook (schema 3): append-only versions, one row per (version, theme, keyword).
CODEBOOK_DDL = (
    """CREATE TABLE IF NOT EXISTS codebook_versions (
        version INTEGER PRIMARY KEY CHECK (version >= 1), saved_at TIMESTAMP NOT NULL,
        saved_by VARCHAR NOT NULL, note VARCHAR, themes INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS codebook (
        version INTEGER NOT NULL, theme VARCHAR NOT NULL, keyword VARCHAR NOT NULL,
        PRIMARY KEY (version, theme, keyword))""",
)

#: Bookkeeping tables (not importable).
SYSTEM_DDL = (
    """CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)""",
    """CREATE SEQUENCE IF NOT EXISTS imports_seq START 1""",
    """CREATE TABLE IF NOT EXISTS imports (
        import_id INTEGER PRIMARY KEY DEFAULT nextval('imports_seq'),
        "table" VARCHAR NOT NULL, source VARCHAR NOT NULL, sha256 VARCHAR, rows BIGINT,
        started_at TIMESTAMP NOT NULL, finished_at TIMESTAMP, status VARCHAR NOT NULL
            CHECK (status IN ('accepted', 'rejected', 'unchanged')),
        error VARCHAR, inserted BIGINT, updated BIGINT, actor VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS assumption_history (
        key VARCHAR NOT NULL, version INTEGER NOT NULL CHECK (version >= 1), value DOUBLE NOT NULL,
        unit VARCHAR, source VARCHAR, updated_by VARCHAR, updated_at TIMESTAMP NOT NULL,
        action VARCHAR NOT NULL, low DOUBLE, high DOUBLE, PRIMARY KEY (key, version))""",
    """CREATE TABLE IF NOT EXISTS booked_revenue (
        period DATE PRIMARY KEY, amount DOUBLE NOT NULL, entered_by VARCHAR, entered_at TIMESTAMP)""",
    # customers created by the importer for ids seen in responses or transactions before the
    # customers file (cxmetrics.stubs); a customers import that brings the id removes its row
    """CREATE TABLE IF NOT EXISTS customer_stubs (
        customer_id VARCHAR PRIMARY KEY, created_at TIMESTAMP NOT NULL, source VARCHAR)""",
    *CODEBOOK_DDL,
    """CREATE SEQUENCE IF NOT EXISTS audit_seq START 1""",
    """CREATE TABLE IF NOT EXISTS audit (
        audit_id INTEGER PRIMARY KEY DEFAULT nextval('audit_seq'),
        "at" TIMESTAMP NOT NULL, actor VARCHAR NOT NULL, role VARCHAR, action VARCHAR NOT NULL,
        object VARCHAR, outcome VARCHAR NOT NULL, detail VARCHAR)""",
)


def _column_ddl(c: Column) -> str:
    parts = [f'"{c.name}" {c.sql_type}']
    if c.required:
        parts.append("NOT NULL")
    checks = []
    if c.min is not None:
        checks.append(f'"{c.name}" >= {c.min!r}')
    if c.max is not None:
        checks.append(f'"{c.name}" <= {c.max!r}')
    if c.allowed:
        allowed = ", ".join("'" + a.replace("'", "''") + "'" for a in c.allowed)
        checks.append(f'"{c.name}" IN ({allowed})')
    if checks:
        parts.append(f"CHECK ({' AND '.join(checks)})")
    return " ".join(parts)


def table_ddl(t: Table) -> str:
    """CREATE TABLE statement for a contract table (identifiers come from ``TABLES`` only)."""
    cols = [_column_ddl(c) for c in t.columns]
    if not t.fact:
        cols.append("PRIMARY KEY (" + ", ".join(f'"{k}"' for k in t.key) + ")")
    for cond, _col, _msg in t.row_checks:
        cols.append(f"CHECK ({cond})")
    return f'CREATE TABLE IF NOT EXISTS "{t.name}" (\n  ' + ",\n  ".join(cols) + "\n)"


def all_ddl() -> list[str]:
    return [*SYSTEM_DDL, *(table_ddl(TABLES[name]) for name in LOAD_ORDER)]


def contract_markdown() -> str:
    """The README's data-contract table, generated from ``TABLES``."""
    lines = ["| table | grain | columns (required in **bold**) | key |", "| --- | --- | --- | --- |"]
    for name in LOAD_ORDER:
        t = TABLES[name]
        cols = []
        for c in t.columns:
            label = f"**{c.name}**" if c.required else c.name
            rng = ""
            if c.min is not None and c.max is not None and abs(c.max) < 1e6:
                rng = f" {c.min:g}–{c.max:g}"
            elif c.allowed:
                rng = " (" + " / ".join(c.allowed) + ")"
            cols.append(f"{label} {c.kind}{rng}")
        lines.append(f"| {name} | {t.grain} | {', '.join(cols)} | {', '.join(t.key)} |")
    return "\n".join(lines)
