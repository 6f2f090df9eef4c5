"""The lake's layout: one ``<table>.parquet`` per data-contract table, the bookkeeping tables some
pages read, and a manifest (shared by :mod:`cxmetrics.lake` and :mod:`cxmetrics.engines.spark`)."""

#: A lake's manifest (``lake export`` writes it; a backup folder's ``cxmetrics_backup.json`` is read too).
LAKE_MANIFEST = "cxmetrics_lake.json"
#: Bookkeeping tables a lake carries beside the contract tables (some pages read them).
LAKE_SYSTEM_TABLES = ("booked_revenue", "assumption_history", "imports", "customer_stubs", "audit",
                      "codebook_versions", "codebook")
#: Bookkeeping tables the metrics read, and their columns when a lake landed by a pipeline has none
#: (no stub customers: every customer came from the customers table).
EMPTY_WHEN_MISSING = {
    "customer_stubs": "customer_id STRING, created_at TIMESTAMP, source STRING",
    "booked_revenue": "period DATE, amount DOUBLE, entered_by STRING, entered_at TIMESTAMP",
    "assumption_history": "key STRING, version INT, value DOUBLE, unit STRING, source STRING, updated_by STRING, "
                          "updated_at TIMESTAMP, action STRING, low DOUBLE, high DOUBLE",
    "imports": "import_id INT, `table` STRING, source STRING, sha256 STRING, rows BIGINT, started_at TIMESTAMP, "
               "finished_at TIMESTAMP, status STRING, error STRING, inserted BIGINT, updated BIGINT, actor STRING",
    "codebook_versions": "version INT, saved_at TIMESTAMP, saved_by STRING, note STRING, themes INT",
    "codebook": "version INT, theme STRING, keyword STRING",
    "audit": "audit_id INT, `at` TIMESTAMP, actor STRING, role STRING, action STRING, object STRING, "
             "outcome STRING, detail STRING",
}


def table_file(table: str) -> str:
    """The file (or folder of part files) holding ``table`` in a lake."""
    return f"{table}.parquet"
