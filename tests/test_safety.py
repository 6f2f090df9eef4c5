"""Reliability and security: crash safety, backups, hostile files (property-based), hostile
filter values, and the app's configuration."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxmetrics import store
from cxmetrics.core.filters import Filters
from cxmetrics.registers import backup, importer
from cxmetrics.store import schema

ROOT = Path(__file__).resolve().parent.parent
#: generated cases per importer: 300 in CI (CI=true), fewer on a developer's machine; CX_FUZZ_CASES sets it
FUZZ_CASES = int(os.environ.get("CX_FUZZ_CASES", "300" if os.environ.get("CI") else "150"))


# ----------------------------------------------------------------------------- backups


def test_backup_restore_round_trip(small_copy, tmp_path, digest):
    before = digest(small_copy)
    manifest = backup.backup(small_copy, tmp_path / "bk")
    assert manifest["rows"]["customers"] == 300
    with pytest.raises(ValueError, match="not empty"):
        backup.backup(small_copy, tmp_path / "bk")
    restored = tmp_path / "restored.duckdb"
    backup.restore(tmp_path / "bk", restored)
    assert digest(restored) == before
    assert not list(tmp_path.glob("*restoring*")), "no temporary file, nor its check record, is left"
    backup.restore(tmp_path / "bk", restored)  # over an existing store: the swap under its lock
    assert not list(tmp_path.glob("*restoring*"))
    with store.connect(str(restored)) as con:  # bookkeeping came along and sequences still work
        n_audit = con.execute("SELECT count(*) FROM audit").fetchone()[0]
        assert n_audit > 0
    cid = "C0000001"
    csv = tmp_path / "one.csv"
    csv.write_text(f"response_id,customer_id,responded_on,survey,nps\nAFTER1,{cid},2024-01-01,relationship,9\n")
    importer.import_file(csv, "survey_responses", db=restored)
    with store.connect(str(restored)) as con:
        assert con.execute("SELECT count(*) FROM audit").fetchone()[0] == n_audit + 1


def test_restore_replaces_only_when_complete(small_copy, tmp_path, digest):
    before = digest(small_copy)
    with pytest.raises(ValueError, match="not a cxmetrics backup"):
        backup.restore(tmp_path, small_copy)
    bk = tmp_path / "bk"
    backup.backup(small_copy, bk)
    (bk / "customers.parquet").write_bytes(b"PAR1 damaged")
    with pytest.raises(Exception):  # noqa: B017 - DuckDB's own error for a damaged file
        backup.restore(bk, small_copy)
    assert digest(small_copy) == before
    assert not list(tmp_path.glob("*.restoring"))


def test_backup_cli_round_trip(small_copy, tmp_path):
    r = subprocess.run([sys.executable, "-m", "cxmetrics", "backup", "--db", str(small_copy), "--out", str(tmp_path / "b")],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-m", "cxmetrics", "restore", str(tmp_path / "b"), "--db", str(tmp_path / "r.duckdb")],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "restored" in r.stdout


# ----------------------------------------------------------------------------- crash safety

KILLED_IMPORT = textwrap.dedent("""
    import sys, time
    from cxmetrics import importer, store
    real = store.bump_version
    def slow(con, tables=None):
        real(con, tables)  # rows are deleted and inserted, the transaction is not committed yet
        print("inside the transaction", flush=True)
        time.sleep(60)
    store.bump_version = slow
    importer.import_file(sys.argv[2], "survey_responses", db=sys.argv[1])
""")


def test_process_killed_mid_import_leaves_the_store_as_it_was(small_copy, tmp_path, digest):
    with store.connect(str(small_copy)) as con:
        rows = con.execute("SELECT response_id, customer_id, responded_on, survey, nps FROM survey_responses "
                           "ORDER BY response_id LIMIT 200").fetchall()
    lines = ["response_id,customer_id,responded_on,survey,nps"]
    lines += [f"{r[0]},{r[1]},{r[2]},{r[3]},{0 if r[4] is None else 10 - r[4]}" for r in rows]  # updates
    lines += [f"NEW{i},{rows[0][1]},2024-01-01,relationship,9" for i in range(500)]  # inserts
    csv = tmp_path / "big.csv"
    csv.write_text("\n".join(lines) + "\n")
    before = digest(small_copy)
    proc = subprocess.Popen([sys.executable, "-c", KILLED_IMPORT, str(small_copy), str(csv)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "inside the transaction"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert digest(small_copy) == before
    with store.connect(str(small_copy), read_only=False) as con:  # reopens read-write, replays the WAL
        assert con.execute("SELECT count(*) FROM survey_responses WHERE response_id LIKE 'NEW%'").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM imports WHERE status = 'accepted' AND source = 'big.csv'").fetchone()[0] == 0
    assert digest(small_copy) == before
    importer.import_file(csv, "survey_responses", db=small_copy)  # and the same file then imports
    assert digest(small_copy) != before


# ----------------------------------------------------------------------------- property-based fuzzing


def _valid_frame(table: str) -> pd.DataFrame:
    rows = {
        "survey_responses": {"response_id": ["F1", "F2"], "customer_id": ["C0000001", "C0000002"],
                             "responded_on": ["2024-01-01", "2024-02-01"], "survey": ["relationship", "transactional"],
                             "touchpoint": ["billing", ""], "nps": ["9", "3"], "csat": ["5", ""],
                             "verbatim": ["fine", "<script>alert(1)</script>"]},
        "complaints": {"complaint_id": ["FK1", "FK2"], "customer_id": ["C0000001", "C0000002"],
                       "opened_on": ["2024-01-01", "2024-01-02"], "closed_on": ["2024-01-03", ""],
                       "category": ["billing error", "late delivery"], "escalated": ["no", "yes"],
                       "callback_promised": ["yes", "no"], "callback_done": ["yes", "no"], "cost": ["12.5", "3"]},
        "customers": {"customer_id": ["FC1", "FC2"], "segment": ["smb", "enterprise"], "region": ["north", "south"],
                      "acquired_on": ["2021-01-01", "2022-05-05"], "contract": ["contractual", "non_contractual"],
                      "category_wallet": ["1000", "250.5"]},
    }[table]
    return pd.DataFrame(rows)


def _mutate(df: pd.DataFrame, data) -> pd.DataFrame:
    df = df.copy()
    for _ in range(data.draw(st.integers(0, 4), label="mutations")):
        kind = data.draw(st.sampled_from(["cell", "drop_column", "dup_row", "rename"]), label="kind")
        if kind == "cell":
            r = data.draw(st.integers(0, len(df) - 1), label="row")
            c = data.draw(st.sampled_from(list(df.columns)), label="col")
            df.loc[r, c] = data.draw(st.one_of(
                st.text(max_size=30),
                st.sampled_from(["", "11", "-1", "7.5", "1e309", "nan", "=1+1", "@SUM(A1)", "2999-01-01", "31/02/2024",
                                 "1850-01-01", "NOBODY", "' OR 1=1 --", "x" * 300, "true", "maybe", "\t", "\r\n"]),
                st.integers(-10**12, 10**12).map(str)), label="value")
        elif kind == "drop_column" and len(df.columns) > 1:
            df = df.drop(columns=[data.draw(st.sampled_from(list(df.columns)), label="drop")])
        elif kind == "dup_row":
            df = pd.concat([df, df.iloc[[0]]], ignore_index=True)
        elif kind == "rename":
            c = data.draw(st.sampled_from(list(df.columns)), label="rename")
            new = data.draw(st.text(min_size=1, max_size=12), label="new name")
            if new not in df.columns:  # Parquet cannot hold two columns of one name (CSV duplicates are tested)
                df = df.rename(columns={c: new})
    return df


def _encode(df: pd.DataFrame, fmt: str, data, path: Path) -> Path:
    if fmt == "csv":
        text = df.to_csv(index=False, sep=data.draw(st.sampled_from([",", ";", "\t"]), label="sep"))
        raw = text.encode(data.draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1"]), label="enc"), errors="replace")
        cut = data.draw(st.one_of(st.none(), st.integers(0, len(raw))), label="truncate")
        if cut is not None:
            raw = raw[:cut]
        if data.draw(st.booleans(), label="noise"):
            at = data.draw(st.integers(0, len(raw)), label="at")
            raw = raw[:at] + data.draw(st.binary(min_size=1, max_size=8), label="bytes") + raw[at:]
        path = path.with_suffix(".csv")
        path.write_bytes(raw)
    elif fmt == "xlsx":
        path = path.with_suffix(".xlsx")
        df.to_excel(path, index=False)
    else:
        path = path.with_suffix(".parquet")
        df.to_parquet(path)
    return path


def _qualtrics(df: pd.DataFrame) -> str:
    out = io.StringIO()
    cols = list(df.columns)
    out.write(",".join(f'"{c}"' for c in cols) + "\n")
    out.write(",".join(f'"Question {i}"' for i, _ in enumerate(cols)) + "\n")
    out.write(",".join(f'"{{""ImportId"":""QID{i}""}}"' for i, _ in enumerate(cols)) + "\n")
    df.to_csv(out, index=False, header=False)
    return out.getvalue()


@pytest.fixture(scope="module")
def fuzz_db(tmp_path_factory):
    """A tiny store (two customers) so each generated case costs milliseconds."""
    d = tmp_path_factory.mktemp("fuzz")
    path = d / "fuzz.duckdb"
    seed = d / "customers.csv"
    seed.write_text("customer_id,segment,region,acquired_on,contract\n"
                    "C0000001,smb,north,2020-01-01,contractual\nC0000002,enterprise,south,2021-01-01,contractual\n")
    importer.import_file(seed, "customers", db=path)
    return path


def _check_one(db: Path, path: Path, table: str, digest) -> None:
    before = digest(db)
    try:
        rep = importer.import_file(path, table, db=db)
    except importer.ImportRejected as exc:
        assert exc.problems, "a rejection lists at least one problem"
        for p in exc.problems:
            assert p.reason and (p.row is not None or p.column is not None or len(p.reason) > 10), p
        assert digest(db) == before, f"a rejected {path.name} changed the store"
        return
    assert rep.rows > 0
    with store.connect(str(db)) as con:
        t = schema.TABLES[table]
        # what was accepted obeys the contract (the DDL's checks would have refused it otherwise)
        assert con.execute(f'SELECT count(*) FROM "{table}" WHERE "{t.key[0]}" IS NULL').fetchone()[0] == 0


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "parquet"])
@pytest.mark.parametrize("table", ["survey_responses", "complaints", "customers"])
def test_fuzzed_files_import_or_are_rejected_cleanly(fmt, table, fuzz_db, tmp_path, digest):
    cases = FUZZ_CASES // 3 + 1  # per importer (format): ≥ FUZZ_CASES over its three tables

    @settings(max_examples=cases, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(data=st.data())
    def run(data):
        df = _mutate(_valid_frame(table), data)
        path = _encode(df, fmt, data, tmp_path / "fuzz")
        _check_one(fuzz_db, path, table, digest)

    run()


def test_fuzzed_qualtrics_exports(fuzz_db, tmp_path, digest):
    @settings(max_examples=FUZZ_CASES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(data=st.data())
    def run(data):
        df = _mutate(_valid_frame("survey_responses"), data).rename(
            columns={"response_id": "ResponseId", "customer_id": "ExternalReference", "responded_on": "RecordedDate"})
        path = tmp_path / "q.csv"
        path.write_text(_qualtrics(df))
        _check_one(fuzz_db, path, "survey_responses", digest)

    run()


# ----------------------------------------------------------------------------- hostile filter values


@pytest.mark.parametrize("value", ["smb' OR '1'='1", "x\"; DROP TABLE customers; --", "$1", "?", "%", "\x00"])
def test_sql_looking_filter_values_are_bound_not_interpolated(con, value):
    from cxmetrics.metrics import nps

    f = Filters(segments=(value,), regions=(value,))
    where, params = f.where(date_col="s.responded_on", customer="c")
    assert value not in where
    assert any(v == value or (isinstance(v, list | tuple) and value in v) for v in params.values())
    res = nps.overall(con, f)
    assert res.n == 0  # no segment has that name: nothing matches, nothing breaks
    assert con.execute("SELECT count(*) FROM customers").fetchone()[0] > 0


# ----------------------------------------------------------------------------- configuration


def test_streamlit_config_is_hardened():
    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert cfg["server"]["enableXsrfProtection"] is True
    assert cfg["server"]["enableCORS"] is True  # True means cross-origin requests are refused
    assert cfg["browser"]["gatherUsageStats"] is False
    assert 1 <= cfg["server"]["maxUploadSize"] <= 1024
    assert cfg["client"]["showErrorDetails"] in ("type", "none", False)


def test_no_unsafe_html_anywhere():
    hits = []
    for path in [ROOT / "app.py", *(ROOT / "pages").glob("*.py"), *(ROOT / "cxmetrics").rglob("*.py")]:
        text = path.read_text()
        for pattern in (r"unsafe_allow_html\s*=\s*True", r"st\.html\(", r"components\.html\("):
            if re.search(pattern, text):
                hits.append(f"{path.name}: {pattern}")
    assert not hits, hits


SEEDS = [(f, t) for f in ("csv", "xlsx", "parquet") for t in ("survey_responses", "complaints", "customers")]


@pytest.mark.parametrize("fmt, table", [*SEEDS, ("qualtrics", "survey_responses")])
def test_unmutated_fuzz_seeds_import(fmt, table, fuzz_db, tmp_path):
    """The fuzzers start from files that import, so their cases exercise both outcomes."""

    class Fixed:  # a `data` stand-in that always takes the first choice
        @staticmethod
        def draw(strategy, label=None):
            return {"sep": ",", "enc": "utf-8", "truncate": None, "noise": False}.get(label, 0)

    df = _valid_frame(table)
    if fmt == "qualtrics":
        path = tmp_path / "q.csv"
        path.write_text(_qualtrics(df.rename(columns={"response_id": "ResponseId", "customer_id": "ExternalReference",
                                                      "responded_on": "RecordedDate"})))
    else:
        path = _encode(df, fmt, Fixed, tmp_path / "seed")
    rep = importer.import_file(path, table, db=fuzz_db)
    assert rep.rows == 2


def test_imported_labels_cannot_inject_markdown(writable_db, make_app, tmp_path):
    """A complaint category that is a markdown image (which would make every viewer's browser
    fetch an outside URL) is quoted in the page's sentences as inert text."""
    evil = "![x](http://evil.example/p.png)"
    with store.connect(str(writable_db)) as con:
        cids = [r[0] for r in con.execute("SELECT customer_id FROM customers ORDER BY 1 LIMIT 400").fetchall()]
    rows = [f"EVIL{i},{c},2026-06-01,\"{evil}\"" for i, c in enumerate(cids * 5)]
    path = tmp_path / "evil.csv"
    path.write_text("complaint_id,customer_id,opened_on,category\n" + "\n".join(rows) + "\n")
    importer.import_file(path, "complaints", db=writable_db)
    at = make_app(writable_db, page="pages/08_complaints.py")
    assert not at.exception, at.exception
    texts = [m.value for m in at.markdown]
    # escaped, and the URL broken with an invisible word joiner so that it is not autolinked either
    assert any("\\!\\[x\\]\\(http\u2060://evil.example/p.png\\)" in t for t in texts), texts[:5]
    assert not any(evil in t for t in texts)


# ----------------------------------------------------------------------------- issue 19


HOLD_WRITE_LOCK = textwrap.dedent("""
    import sys, time
    import duckdb
    con = duckdb.connect(sys.argv[1])
    con.execute("BEGIN TRANSACTION")
    con.execute("INSERT INTO audit (\\"at\\", actor, action, outcome) VALUES (now(), 'writer', 'import', 'accepted')")
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
    con.execute("COMMIT")
    con.close()
    print("committed", flush=True)
""")


def _refused_while_a_writer_holds_the_lock(db: Path, *command: str) -> None:
    """``python -m cxmetrics COMMAND … --db DB`` while a second process holds the store's write lock
    (and commits after): exit 1 with the one-line message, no traceback."""
    writer = subprocess.Popen([sys.executable, "-c", HOLD_WRITE_LOCK, str(db), "4"], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "holding"
        r = subprocess.run([sys.executable, "-m", "cxmetrics", *command, "--db", str(db)],
                           cwd=ROOT, capture_output=True, text=True, timeout=120,
                           env={**os.environ, "CX_LOCK_TIMEOUT": "0.5"})
        assert r.returncode == 1, r.stdout + r.stderr
        assert "locked by another process" in r.stderr and "Traceback" not in r.stderr
    finally:
        assert writer.wait(timeout=60) == 0


def test_restore_waits_for_the_write_lock_and_never_loses_a_commit(small_copy, tmp_path):
    """Two processes: a writer holds the store's lock; restore must not swap the file under it
    (today's code did, and the writer's commit went into the unlinked old file)."""
    bk = tmp_path / "bk"
    backup.backup(small_copy, bk)
    _refused_while_a_writer_holds_the_lock(small_copy, "restore", str(bk))
    with store.connect(str(small_copy)) as con:  # the writer's commit is in the live file
        assert con.execute("SELECT count(*) FROM audit WHERE actor = 'writer'").fetchone()[0] == 1
    # a writer that starts during a restore waits and then writes into the restored file
    writer = subprocess.Popen([sys.executable, "-c", HOLD_WRITE_LOCK, str(small_copy), "1"], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "holding"
    backup.restore(bk, small_copy)  # waits for the writer (default timeout), then swaps
    assert writer.wait(timeout=60) == 0
    with store.connect(str(small_copy)) as con:  # restored: the backup predates both writes
        assert con.execute("SELECT count(*) FROM audit WHERE actor = 'writer'").fetchone()[0] == 0
    importer_csv = tmp_path / "one.csv"
    importer_csv.write_text("response_id,customer_id,responded_on,survey,nps\nAFTER1,C0000001,2024-01-01,relationship,9\n")
    importer.import_file(importer_csv, "survey_responses", db=small_copy)
    with store.connect(str(small_copy)) as con:
        assert con.execute("SELECT count(*) FROM survey_responses WHERE response_id = 'AFTER1'").fetchone()[0] == 1


def test_backup_manifest_carries_content_hashes_checked_on_restore(small_copy, tmp_path, digest):
    before = digest(small_copy)
    bk = tmp_path / "bk"
    manifest = backup.backup(small_copy, bk)
    assert set(manifest["sha256"]) >= {"schema.sql", "customers.parquet"}
    # a flipped byte that Parquet itself might still read is caught by the hash
    f = bk / "customers.parquet"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    r = subprocess.run([sys.executable, "-m", "cxmetrics", "restore", str(bk), "--db", str(small_copy)],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "customers.parquet does not match its content hash" in r.stderr and "store is unchanged" in r.stderr
    assert digest(small_copy) == before
    f.unlink()
    with pytest.raises(ValueError, match="customers.parquet is missing"):
        backup.restore(bk, small_copy)
    assert digest(small_copy) == before


def _shuffle(db: Path, table: str) -> None:
    """Store ``table``'s rows in a random order, as rows imported before the stored order existed
    lie (the content and the data version unchanged)."""
    with store.connect(str(db), read_only=False) as c:
        c.execute(f'CREATE TEMP TABLE __x AS SELECT * FROM "{table}" ORDER BY hash(rowid * 7919)')
        c.execute(f'DELETE FROM "{table}"')
        c.execute(f'INSERT INTO "{table}" SELECT * FROM __x')


def _summary_digest(db: Path) -> str:
    with store.connect(str(db)) as c:
        return c.execute("SELECT md5(string_agg(CAST(x AS VARCHAR), '|' ORDER BY CAST(x AS VARCHAR))) "
                         "FROM summary_responses x").fetchone()[0]


def test_compact_stores_the_large_tables_in_their_stored_order_and_changes_no_row(small_copy, digest):
    from tests.test_importer import _in_stored_order

    for table in ("transactions", "survey_responses", "complaints"):
        _shuffle(small_copy, table)
    with store.connect(str(small_copy)) as c:
        assert not _in_stored_order(c, "transactions")
        n_audit = c.execute("SELECT count(*) FROM audit").fetchone()[0]
        state_before = c.execute("SELECT value FROM meta WHERE key = 'summary_landmark'").fetchone()[0]
    before, summaries = digest(small_copy), _summary_digest(small_copy)
    said = []
    out = backup.compact(small_copy, log=said.append)
    assert digest(small_copy) == before  # every contract table and the data version
    assert _summary_digest(small_copy) == summaries  # the summaries came along, still current
    with store.connect(str(small_copy)) as c:
        assert out["rows"]["transactions"] == c.execute("SELECT count(*) FROM transactions").fetchone()[0] > 0
    assert any("transactions" in s and "stored order" in s for s in said)
    with store.connect(str(small_copy)) as c:
        for table in ("transactions", "survey_responses", "complaints"):
            assert _in_stored_order(c, table), table
        assert c.execute("SELECT action, outcome FROM audit ORDER BY audit_id DESC LIMIT 1").fetchone() \
            == ("compact", "accepted")
        assert c.execute("SELECT count(*) FROM audit").fetchone()[0] == n_audit + 1
        summary_state = c.execute("SELECT value FROM meta WHERE key = 'summary_landmark'").fetchone()[0]
    kept = small_copy.with_name(small_copy.name + ".before-compact")
    assert Path(out["kept"]) == kept and digest(kept) == before  # the old file, as it was
    assert not list(small_copy.parent.glob("*compacting*")), "no temporary file, nor its check record, is left"
    # the sequences carried on (the next import's id and audit row are new), no summary was rebuilt
    csv = small_copy.parent / "one.csv"
    csv.write_text("response_id,customer_id,responded_on,survey,nps\nAFTER1,C0000001,2024-01-01,relationship,9\n")
    importer.import_file(csv, "survey_responses", db=small_copy)
    with store.connect(str(small_copy)) as c:
        assert c.execute("SELECT count(*) FROM audit").fetchone()[0] == n_audit + 2
    assert summary_state == state_before  # no refresh ran: what the last write rebuilt, and when, as it was


def test_compact_refuses_and_leaves_the_store_as_it_was(small_copy, digest, monkeypatch):
    before, ino = digest(small_copy), small_copy.stat().st_ino
    real = backup._fingerprints
    calls = []

    def differs(con, catalog):  # the rewritten copy reads back with one row fewer
        out = real(con, catalog)
        calls.append(catalog)
        if catalog == "__compact":
            n, h = out["complaints"]
            out["complaints"] = (n - 1, h)
        return out

    monkeypatch.setattr(backup, "_fingerprints", differs)
    with pytest.raises(ValueError, match="differs from the store in complaints; the store is unchanged"):
        backup.compact(small_copy, log=lambda _: None)
    assert calls == [small_copy.stem, "__compact"]
    assert digest(small_copy) == before and small_copy.stat().st_ino == ino
    assert not list(small_copy.parent.glob("*compact*")), "neither a temporary nor a kept file"
    monkeypatch.setattr(backup, "_fingerprints", real)
    monkeypatch.setattr(backup.shutil, "disk_usage", lambda _: type("U", (), {"free": 2**20})())
    with pytest.raises(ValueError, match="not enough free disk space.*the store is unchanged"):
        backup.compact(small_copy)
    with pytest.raises(ValueError, match="does not exist"):
        backup.compact(small_copy.with_name("none.duckdb"))
    monkeypatch.undo()
    monkeypatch.setenv("CX_COMPACT_MEMORY", "lots")
    with pytest.raises(ValueError, match="CX_COMPACT_MEMORY='lots' is not a memory size.*the store is unchanged"):
        backup.compact(small_copy)
    assert digest(small_copy) == before and small_copy.stat().st_ino == ino
    assert not small_copy.with_name("none.duckdb").exists()


def test_compact_cli_waits_for_the_write_lock(small_copy):
    _refused_while_a_writer_holds_the_lock(small_copy, "compact")
    r = subprocess.run([sys.executable, "-m", "cxmetrics", "compact", "--db", str(small_copy)],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "compacted" in r.stdout and "every table's rows and content checked" in r.stdout
    with store.connect(str(small_copy)) as c:  # the writer's commit is in the compacted file
        assert c.execute("SELECT count(*) FROM audit WHERE actor = 'writer'").fetchone()[0] == 1


@pytest.mark.parametrize("role", ["intern", "Department", "FINANCE", ""])
def test_unknown_or_mistyped_role_fails_closed(role, con):
    from cxmetrics import cli
    from cxmetrics.core.filters import Scope
    from cxmetrics.metrics import nps

    r = subprocess.run([sys.executable, "-m", "cxmetrics", "metrics", "nps", "--role", role, "--db", "x.duckdb"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "unknown role" in r.stderr and "Traceback" not in r.stderr
    scope = Scope(role=role)
    assert scope.restricted and scope.departments == ()
    res = nps.overall(con, Filters(scope=scope)) if hasattr(nps, "overall") else None
    if res is not None:
        assert res.n == 0
    assert Scope(role="department").departments == ()  # a department role without a department
    del cli


@pytest.mark.parametrize("argv", [
    ["metrics", "pnl", "--role", "department", "--department", "billing"],
    ["report", "--role", "department"],
])
def test_department_scoped_cli_commands_give_one_line_errors(argv, demo_db, tmp_path):
    r = subprocess.run([sys.executable, "-m", "cxmetrics", *argv, "--db", str(demo_db)]
                       + (["--out", str(tmp_path / "r.html")] if argv[0] == "report" else []),
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode in (0, 1)
    if r.returncode == 1:
        assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("error: ")


def test_csv_export_quotes_line_breaks_and_neutralises_after_them():
    import csv as csvmod

    from cxmetrics.story import exports

    df = pd.DataFrame({"verbatim": ["fine\r@SUM(1+1)*cmd|' /C calc'!A0", "two\nlines\n=1+1", "a\r\n-2", "ok"]})
    text = exports.to_csv_bytes(df).decode("utf-8-sig")
    assert "\r@" not in text and "\n=" not in text and "\n-" not in text
    assert '"fine\r\'@SUM(1+1)' in text  # quoted, and neutralised after the CR
    rows = list(csvmod.reader(io.StringIO(text, newline="")))
    assert [r[0] for r in rows[1:]] == ["fine\r'@SUM(1+1)*cmd|' /C calc'!A0", "two\nlines\n'=1+1", "a\r\n'-2", "ok"]
    assert exports.neutralise("x\r\n+1") == "x\r\n'+1"


def test_assumptions_import_is_finance_only_and_the_audit_records_the_role(writable_db, tmp_path):
    f = tmp_path / "a.csv"
    f.write_text("key,value,unit,source\ngross_margin,0.99,share,analyst guess\n")
    with store.connect(str(writable_db)) as con:
        before = con.execute("SELECT value FROM assumptions WHERE key = 'gross_margin'").fetchone()
    for role in ("analyst", "department", "intern"):
        with pytest.raises(PermissionError, match="may not import into assumptions"):
            importer.import_file(f, "assumptions", db=str(writable_db), role=role)
    r = subprocess.run([sys.executable, "-m", "cxmetrics", "import", "assumptions", str(f), "--db", str(writable_db)],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "finance" in r.stderr and "Traceback" not in r.stderr
    with store.connect(str(writable_db)) as con:
        assert con.execute("SELECT value FROM assumptions WHERE key = 'gross_margin'").fetchone() == before
    importer.import_file(f, "assumptions", db=str(writable_db), role="finance", source="budget.csv")
    with store.connect(str(writable_db)) as con:
        row = con.execute("SELECT role, object FROM audit WHERE action = 'import' ORDER BY \"at\" DESC LIMIT 1").fetchone()
    assert row == ("finance", "assumptions ← budget.csv")


def test_a_rejected_import_is_logged_under_the_name_it_was_given(writable_db, tmp_path):
    """The Data page passes the uploaded file's own name as ``source`` (the browser flow in
    tests/browser checks the page end to end, temp-file deletion included)."""
    from cxmetrics.registers import importer as imp

    path = tmp_path / "cx_upload_x1y2.csv"
    path.write_text("response_id,customer_id,responded_on,survey,nps\nBAD1,C0000001,2024-01-01,relationship,11\n")
    with pytest.raises(imp.ImportRejected):
        imp.import_file(path, "survey_responses", db=str(writable_db), source="my survey.csv")
    with store.connect(str(writable_db)) as con:
        row = con.execute("SELECT source, status FROM imports ORDER BY import_id DESC LIMIT 1").fetchone()
    assert row == ("my survey.csv", "rejected")
