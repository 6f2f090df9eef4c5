"""A fresh store works: every page, every `metrics` command and `report` on partial stores.

The stores are built the way a user builds them: `python -m cxmetrics init`, then some tables of
the (small) demo company written to CSV and imported with the library's importer. Each page must
show its figures or a one-line reason (never an exception, `nan` or pandas text); each command must
exit 0, or 1 with a one-line reason, never a traceback.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cxmetrics import store
from cxmetrics.core import roles
from cxmetrics.registers import demo, importer
from cxmetrics.store import assumptions

ROOT = Path(__file__).resolve().parent.parent

#: store name -> tables imported after `init` (parents first). Transactions and complaints need
#: their customers: the importer refuses rows for unknown customers.
STORES: dict[str, tuple[str, ...]] = {
    "empty": (),
    "survey": ("customers", "survey_responses"),
    "transactions": ("customers", "transactions"),
    "complaints": ("customers", "complaints"),
    "churn_csat": ("customers", "churn_events", "survey_responses"),
}
METRICS = ("nps", "csat", "ces", "churn", "clv", "wallet", "complaints", "impact", "alignment", "pnl")
BAD_TEXT = ("nan", "Empty DataFrame", "Traceback", "NaN")



def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cxmetrics", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def partial_stores(tmp_path_factory) -> dict[str, Path]:
    frames = demo.generate(300, 5)
    folder = tmp_path_factory.mktemp("partial")
    out = {}
    for name, tables in STORES.items():
        db = folder / f"{name}.duckdb"
        r = _cli("init", "--db", str(db))
        assert r.returncode == 0, r.stderr
        for t in tables:
            df = frames[t]
            if name == "churn_csat" and t == "survey_responses":  # CSAT answers only, no NPS question
                df = df[df["csat"].notna()].assign(nps=None)
            path = folder / f"{name}_{t}.csv"
            df.to_csv(path, index=False)
            importer.import_file(path, t, db=str(db), actor="test")
        out[name] = db
    return out


@pytest.fixture(params=[*STORES, "demo"])
def any_store(request, partial_stores, small_db) -> Path:
    return small_db if request.param == "demo" else partial_stores[request.param]


def _page_text(at) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [str(m.value) for m in at.metric]
    parts += [i.value for i in at.info] + [w.value for w in at.warning] + [e.value for e in at.error]
    return "\n".join(str(p) for p in parts)


def test_every_page_renders(make_app, any_store):
    for spec in roles.PAGES:
        role = "finance" if spec.path.endswith("10_finance_review.py") else "analyst"
        at = make_app(any_store, role=role, page=spec.path, timeout=180)
        assert not at.exception, (spec.title, [e.value for e in at.exception])
        text = _page_text(at)
        for bad in ("nan", "Empty DataFrame", "None%"):
            assert f" {bad} " not in f" {text} ".replace("(", " ").replace(")", " "), (spec.title, bad, text[:2000])
        assert any(t.value == spec.headline for t in at.title), spec.title


@pytest.mark.parametrize("metric", METRICS)
def test_every_metrics_command(partial_stores, small_db, metric):
    for name, db in [*partial_stores.items(), ("demo", small_db)]:
        r = _cli("metrics", metric, "--db", str(db))
        assert r.returncode in (0, 1), (name, metric, r.stderr[-2000:])
        assert "Traceback" not in r.stderr, (name, metric, r.stderr[-2000:])
        if r.returncode == 1:  # a one-line reason
            assert r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1, (name, metric, r.stderr)
        for bad in BAD_TEXT:  # whole words: "finance" holds "nan"
            assert not re.search(rf"(?<![A-Za-z]){re.escape(bad)}(?![A-Za-z])", r.stdout), (name, metric, bad, r.stdout[:2000])
        j = _cli("metrics", metric, "--db", str(db), "--json")
        assert j.returncode == r.returncode and "Traceback" not in j.stderr, (name, metric, j.stderr[-2000:])


def test_report_on_every_store(partial_stores, small_db, tmp_path):
    for name, db in [*partial_stores.items(), ("demo", small_db)]:
        out = tmp_path / f"{name}.pptx"
        r = _cli("report", "--format", "pptx", "--out", str(out), "--db", str(db))
        assert r.returncode == 0, (name, r.stderr[-2000:])
        assert out.stat().st_size > 10_000
        from pptx import Presentation

        text = "\n".join(sh.text_frame.text for s in Presentation(str(out)).slides for sh in s.shapes
                         if sh.has_text_frame)
        for bad in ("nan", "NaN", "Data lineage: ."):
            assert bad not in text.replace("financ", ""), (name, bad, text[:3000])


def test_defaults_are_cited_until_finance_sets_a_value(partial_stores, tmp_path):
    """No assumption stored: money figures use the documented defaults and say so; the finance
    role saves the first value, which then replaces the default."""
    import shutil

    from cxmetrics.core.filters import Filters
    from cxmetrics.metrics import clv

    db = tmp_path / "fresh.duckdb"
    shutil.copy(partial_stores["survey"], db)
    with store.connect(str(db)) as con:
        assert assumptions.stored(con) == {}
        res = clv.clv_by_group(con, Filters(), draws=200)
    assert set(res.assumptions) == {"gross_margin", "discount_rate", "horizon_years"}
    assert all(assumptions.DEFAULT_SOURCE in v for v in res.assumptions.values())
    with store.connect(str(db), read_only=False) as con:
        a = assumptions.set_value(con, "gross_margin", 0.4, actor="fin", role="finance", source="FY27 budget")
        assert (a.value, a.version, a.is_default) == (0.4, 1, False)
        cur = assumptions.current(con)
    assert not cur["gross_margin"].is_default and cur["discount_rate"].is_default
    assert assumptions.DEFAULT_SOURCE not in cur["gross_margin"].cite()


def test_every_known_assumption_has_a_default_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for key, rule in assumptions.RULES.items():
        assert rule.default is not None and rule.min <= rule.default <= rule.max, key
        row = next((line for line in readme.splitlines() if line.startswith(f"| `{key}` |")), None)
        assert row is not None, f"README assumptions table lacks {key}"
        assert rule.unit in row and f"{rule.min:g} to {rule.max:g}" in row and f"{rule.default:g}" in row, row


def test_finance_creates_the_first_assumption_in_the_app(make_app, partial_stores, tmp_path):
    import shutil

    db = tmp_path / "fresh.duckdb"
    shutil.copy(partial_stores["empty"], db)
    at = make_app(db, role="finance", page="pages/10_finance_review.py", timeout=180)
    assert not at.exception
    assert assumptions.DEFAULT_SOURCE in _page_text(at) or any(
        assumptions.DEFAULT_SOURCE in str(df.value.to_string()) for df in at.dataframe)
    at.selectbox(key="fin_key").set_value("gross_margin")
    at.number_input(key="fin_value").set_value(0.42)
    at.text_input(key="fin_source").set_value("FY27 budget")
    next(b for b in at.button if "Save new version" in str(b.label)).click().run()
    assert not at.exception, [e.value for e in at.exception]
    with store.connect(str(db)) as con:
        got = assumptions.stored(con)
    assert got["gross_margin"].value == pytest.approx(0.42) and got["gross_margin"].source == "FY27 budget"


# ----------------------------------------------------------------------------- first start


def test_half_built_files_are_detected(tmp_path):
    assert store.incomplete_reason(tmp_path / "none.duckdb").startswith("No database")
    junk = tmp_path / "junk.duckdb"
    junk.write_bytes(b"not a database")
    assert "not a readable database" in store.incomplete_reason(junk)
    # what an interrupted first-start build of the old code left: schema created, no marker, no data
    half = tmp_path / "half.duckdb"
    with store.connect(str(half), read_only=False):
        pass
    assert "half-built" in store.incomplete_reason(half)
    # missing tables
    import duckdb

    partial = tmp_path / "partial.duckdb"
    with duckdb.connect(str(partial)) as c:
        c.execute("CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)")
    assert "missing tables" in store.incomplete_reason(partial)
    # `init` on purpose: a usable (empty) store, never replaced by the demo
    inited = tmp_path / "inited.duckdb"
    assert _cli("init", "--db", str(inited)).returncode == 0
    assert store.incomplete_reason(inited) is None


def test_a_usable_store_is_checked_again_once_its_file_changes(tmp_path, monkeypatch):
    """The app asks on every rerun whether the store is usable: a file found usable is not opened
    again while its bytes are unchanged (a stat), and any write makes it read again."""
    import duckdb

    db = tmp_path / "cx.duckdb"
    assert _cli("init", "--db", str(db)).returncode == 0
    assert store.incomplete_reason(db) is None
    opened = []
    real = duckdb.connect
    monkeypatch.setattr(duckdb, "connect", lambda *a, **k: opened.append(a) or real(*a, **k))
    assert store.incomplete_reason(db) is None and opened == []  # the same bytes: not opened
    with real(str(db)) as c:  # a write: the file's times and size change
        c.execute("DROP TABLE complaints")
    assert "missing tables: complaints" in store.incomplete_reason(db) and len(opened) == 1
    assert "missing tables" in store.incomplete_reason(db) and len(opened) == 2  # a bad verdict is not kept


def test_demo_build_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / "cx.duckdb"
    with store.connect(str(target), read_only=False):
        pass  # a half-built file is in the way
    calls = []

    def boom(frac, msg):
        calls.append(msg)
        if msg.startswith("writing survey_responses"):
            raise KeyboardInterrupt  # the build is interrupted half-way
    before = target.read_bytes()
    with pytest.raises(KeyboardInterrupt):
        demo.build_atomic(str(target), customers=150, seed=2, progress=boom)
    assert target.read_bytes() == before  # untouched: the build went to a temporary file
    # the temporary file is gone, and no record of its checks outlives it (the store's own
    # record, `.cx.duckdb.verified`, belongs to the file that is still there)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".cx.duckdb.verified", "cx.duckdb"]
    demo.build_atomic(str(target), customers=150, seed=2)
    assert store.incomplete_reason(target) is None
    with store.connect(str(target)) as con:
        assert con.execute("SELECT count(*) FROM customers").fetchone()[0] == 150


def test_app_rebuilds_a_half_built_file(make_app, tmp_path, monkeypatch):
    db = tmp_path / "cx.duckdb"
    with store.connect(str(db), read_only=False):
        pass
    monkeypatch.setattr(demo, "build", _small_build(demo.build))
    at = make_app(db, timeout=180)
    assert not at.exception, [e.value for e in at.exception]
    assert store.incomplete_reason(db) is None
    with store.connect(str(db)) as con:
        assert con.execute("SELECT count(*) FROM customers").fetchone()[0] == 150


def _small_build(original):
    def build(db=None, customers=10_000, seed=7, actor="demo", progress=None):
        return original(db, customers=150, seed=seed, actor=actor, progress=progress)
    return build


# ----------------------------------------------------------------------------- missing renderer


def _no_browser_env(tmp_path) -> dict[str, str]:
    """PATH with python but without any browser, and no BROWSER_PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    return {"PATH": str(bin_dir), "BROWSER_PATH": ""}


def test_report_without_a_browser_is_one_line(small_db, tmp_path):
    env = _no_browser_env(tmp_path)
    for fmt in ("pptx", "pdf"):
        r = _cli("report", "--format", fmt, "--out", str(tmp_path / f"u.{fmt}"), "--db", str(small_db), env=env)
        assert r.returncode == 1, r.stdout
        lines = [x for x in r.stderr.strip().splitlines() if "Warning" not in x and not x.startswith("  ")]
        assert lines and lines[-1].startswith("error: ") and "chromium" in lines[-1], r.stderr
        assert "Traceback" not in r.stderr
    r = _cli("report", "--format", "html", "--out", str(tmp_path / "u.html"), "--db", str(small_db), env=env)
    assert r.returncode == 0, r.stderr  # HTML needs no browser


def test_app_deck_without_a_browser_is_one_line(make_app, small_db, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", _no_browser_env(tmp_path)["PATH"])
    monkeypatch.delenv("BROWSER_PATH", raising=False)
    at = make_app(small_db, timeout=180)
    next(b for b in at.button if "Prepare the executive update" in str(b.label)).click().run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "chromium" in errors[0] and "\n" not in errors[0], errors
