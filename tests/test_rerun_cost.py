"""What a warm page rerun does on the server (issue 19 item 16; times are measured by
``scripts/rerun_bench.py``, not asserted here): no download bytes are built until a button is
clicked, and cache hits do not open the store while its files are unchanged."""

from __future__ import annotations

from cxmetrics import store
from cxmetrics.story import exports


def _count(monkeypatch, module, name: str) -> list:
    calls = []
    real = getattr(module, name)

    def counted(*args, **kwargs):
        calls.append(name)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_downloads_are_built_on_click_not_on_every_rerun(small_db, make_app, monkeypatch):
    at = make_app(small_db, page="pages/10_finance_review.py")
    assert not at.exception
    csv_built, xlsx_built = _count(monkeypatch, exports, "to_csv_bytes"), _count(monkeypatch, exports, "to_xlsx_bytes")
    at.run()
    assert not at.exception
    assert len(at.get("download_button")) >= 4  # the tables still offer their downloads
    assert csv_built == [] and xlsx_built == []


def test_a_warm_rerun_does_not_open_the_store(small_db, make_app, monkeypatch):
    at = make_app(small_db, page="pages/02_nps_drivers.py")
    assert not at.exception
    opened = _count(monkeypatch, store, "connect")
    at.run()
    assert not at.exception
    assert opened == []  # every result is a cache hit and the data version is unchanged
