"""The commit step: what every write brings up to date inside its own transaction.

The store (bottom layer) knows only that a write moves the data version; it imports no metric
module. This module sits above the metrics and registers, once, with :func:`cxmetrics.store.on_commit`
the step every writer (importer, assumptions, initiatives, finance, demo, a read-write open of an
older file) then runs: the summary tables of :mod:`cxmetrics.summaries` (the base relations of
:mod:`cxmetrics.relations`), at the default landmark that the churn metrics define, and the kept
model fits (Cox, BTYD and its holdout check, the clustered SEs' sums), which it registers into the summaries here, and the kept theme run's carry-over
(:func:`cxmetrics.theme_store.carry_over`). The package's ``__init__`` imports this module, so any use
of the store has it wired.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from cxmetrics import store
from cxmetrics.core.filters import Filters
from cxmetrics.metrics import alignment, btyd_checks, churn, impact, moved, scores, theme_store
from cxmetrics.store import summaries

summaries.DEFAULT_LANDMARK[:] = [lambda con: churn.default_landmark(con, Filters())]
summaries.FITS.update({"cox": churn.default_cox_fit, "btyd": btyd_checks.default_fit, "btyd_holdout": btyd_checks.default_holdout,
                       "clusters": scores.kept_clusters, "kpi_thresholds": alignment.kept_thresholds,
                       "impacts": impact.kept_impacts, "moved": moved.default_fit})
# the impacts read the initiatives, answers, complaints, KPI observations and assumptions: measured
# again at every write to one of them (no FIT_READS entry). The "what moved" cells keep the theme
# shares of the kept theme run: a theme run or a saved codebook keeps them again, and measures the
# impacts again (0.07 s at 1M customers); the other fits' relations are carried over, and those fits
# with them
summaries.DEPENDS[summaries.FITS_TABLE] |= {"initiatives", "assumptions", "kpi_observations", "theme_runs", "codebook"}
# the Cox fit reads the landmark base at the default landmark and the data's end; BTYD the RFM at
# the last transaction date: each is kept when a write leaves its relation as it was
summaries.FIT_READS.update({"cox": summaries.LANDMARK_TABLE, "btyd": summaries.RFM_TABLE,
                            "btyd_holdout": summaries.RFM_TABLE,  # the same tables: transactions × customers
                            "clusters": summaries.RESPONSES_TABLE,  # the cluster sums: responses × customers
                            # the KPI curves (the KPI list and directions are in the fit's key)
                            "kpi_thresholds": summaries.KPI_ALLTIME_TABLE,
                            # the counted answers and complaints, and the theme run and codebook
                            "moved": (summaries.RESPONSES_TABLE, summaries.COMPLAINTS_TABLE, "theme_runs", "codebook")})
summaries.FIT_UPDATES.update({"clusters": scores.updated_clusters})  # per customer: an append updates them
# the code the fits are computed by: the layers a metric may import (core ← store ← metrics,
# tests/test_layers.py) and this module. A release that changes any of it fits them again.
_LIBRARY = Path(__file__).parent
summaries.FIT_SOURCES[:] = [_LIBRARY / "core", _LIBRARY / "store", _LIBRARY / "metrics", Path(__file__)]


def commit(con: duckdb.DuckDBPyConnection, version: int, *, previous: int | None = None,
           changed: set[str] | None = None) -> list[str]:
    """Bring the summaries and kept fits to data version ``version`` (inside the writing
    transaction; see :func:`cxmetrics.summaries.refresh`). Returns the names rebuilt."""
    return summaries.refresh(con, version, previous=previous, changed=changed)


commit.stale = summaries.missing  # a read-write open runs the step when a summary is not current
# a kept theme run stays current across writes that cannot change it: carried over first, so that
# the kept fits computed next see it current (the "what moved" cells keep its theme shares)
store.on_commit(theme_store.carry_over)
store.on_commit(commit)
