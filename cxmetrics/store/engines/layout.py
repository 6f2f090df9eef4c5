"""The lake's layout: one ``<table>.parquet`` per data-contract table, the bookkeeping tables some
pages read, and a manifest (shared by :mod:`cxmetrics.lake` and :mod:`cxmetrics.engines.spark`)."""

#: A lake's manifest (``lake export`` writes it; a backup folder's ``cxmetrics_backup.json`` is read too).
LAKE_MANIFEST = "cxmetrics_lake.json"
#: Bookkeeping tables a lake carries beside the contract tables (some pages read them).
LAKE_SYSTEM_TABLES = ("booked_revenue", "assumption_history", "imports")


def table_file(table: str) -> str:
    """The file (or folder of part files) holding ``table`` in a lake."""
    return f"{table}.parquet"
