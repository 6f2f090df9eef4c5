"""A damaged, truncated, full or read-only store (issue 19 items 4 and 6): one line that names the
problem and the way out, in the CLI (exit 1, no traceback) and in the app (``st.error``, no
exception box); damage is found by a full read before any write, backup and ``status``; a disk
that fills up around a commit is reported as what really happened (committed or not)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from cxmetrics import store
from cxmetrics.store import faults

ROOT = Path(__file__).resolve().parent.parent
HEADER = 3 * 4096  # DuckDB's file header: three 4 KiB blocks before block 0


def _cli(*argv: str, timeout: int = 180, pre: str = "") -> subprocess.CompletedProcess:
    code = pre + "import sys\nfrom cxmetrics.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    return subprocess.run([sys.executable, "-c", code, *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def _one_line_error(r: subprocess.CompletedProcess, *words: str) -> str:
    assert r.returncode == 1, (r.returncode, r.stdout[-500:], r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def _damage(db: Path, table: str = "complaints") -> None:
    """64 KiB of random bytes inside a data block of ``table`` (found from DuckDB's storage info)."""
    with duckdb.connect(str(db), read_only=True) as c:
        block = c.execute("SELECT min(block_id) FROM pragma_storage_info(?) WHERE block_id >= 0 "
                          "AND segment_type = 'VARCHAR'", [table]).fetchone()[0]
    assert block is not None
    with open(db, "r+b") as f:
        f.seek(HEADER + block * 262_144 + 4096)
        f.write(os.urandom(65_536))


def _files(db: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in db.parent.iterdir() if p.name.startswith(db.name)}


def test_random_bytes_in_the_file_are_found_before_status_import_and_backup(small_copy, tmp_path):
    _damage(small_copy)
    before = _files(small_copy)
    _one_line_error(_cli("status", "--db", str(small_copy)), "is damaged", "restore")
    csv = tmp_path / "one.csv"
    csv.write_text("response_id,customer_id,responded_on,survey,nps\nNEW1,C0000001,2024-01-01,relationship,9\n")
    _one_line_error(_cli("import", "survey_responses", str(csv), "--db", str(small_copy)), "is damaged", "restore")
    _one_line_error(_cli("init", "--db", str(small_copy)), "is damaged")
    _one_line_error(_cli("backup", "--out", str(tmp_path / "bk"), "--db", str(small_copy)), "is damaged")
    assert _files(small_copy) == before  # nothing was written on a damaged file
    with store.connect(str(small_copy)) as con, pytest.raises(faults.StoreDamaged, match="restore"):
        faults.verify(con, small_copy)


def test_a_healthy_store_verifies_and_status_says_so(small_copy):
    r = _cli("status", "--db", str(small_copy))
    assert r.returncode == 0, r.stderr
    assert "checksum-verified" in r.stdout
    with store.connect(str(small_copy)) as con:
        assert faults.verify(con, small_copy) >= 13  # the contract tables and the bookkeeping ones


def test_a_write_open_reads_the_file_under_a_memory_cap_and_lets_the_blocks_go(demo_db, tmp_path, monkeypatch):
    """A write-open reads every block of the file first (verify_once). The connection is fresh,
    under DuckDB's default limit (80 % of the machine): without a cap the blocks stayed cached, and
    a write-open of an 8 GiB store took 8 GiB of memory. Under the cap the open ends holding no
    more than it (and the few blocks read after it), with the default limit back for the write's own work."""
    db = tmp_path / "copy.duckdb"
    shutil.copy(demo_db, db)
    cap = 4 * 2**20

    def held(con) -> int:
        return con.execute("SELECT sum(memory_usage_bytes) FROM duckdb_memory()").fetchone()[0]

    with duckdb.connect(str(db)) as con:
        default = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    monkeypatch.setattr(faults, "VERIFY_MEMORY", cap)
    with store.connect(str(db), read_only=False) as con:  # the cap, and the blocks the open reads after it
        assert held(con) < 2 * cap
        assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0] == default
    faults._record_path(db).unlink()  # read again at the next open
    monkeypatch.setattr(faults, "VERIFY_MEMORY", 2**40)  # no cap: the same open keeps the file's blocks
    with store.connect(str(db), read_only=False) as con:
        assert held(con) > 3 * cap


def test_status_rests_on_a_recent_full_check_of_the_same_file_and_not_on_a_changed_one(small_copy):
    """An hour-old full check of this very file state spares the read (and says when it ran);
    ``--full`` reads again; random bytes written since make the file another one: read, refused."""
    import time

    faults._record(small_copy, faults.file_state(small_copy), time.time() - 3600)
    r = _cli("status", "--db", str(small_copy))
    assert r.returncode == 0, r.stderr
    assert "checksum-verified at " in r.stdout and "unchanged since" in r.stdout
    r = _cli("status", "--db", str(small_copy), "--full")
    assert r.returncode == 0 and "checksum-verified now" in r.stdout
    faults._record(small_copy, faults.file_state(small_copy), time.time() - 3600)
    _damage(small_copy)
    _one_line_error(_cli("status", "--db", str(small_copy)), "is damaged", "restore")


@pytest.mark.parametrize("cut", ["half", "header"])
def test_a_truncated_store_gives_one_line_in_the_cli(small_copy, cut):
    size = small_copy.stat().st_size
    os.truncate(small_copy, size // 2 if cut == "half" else 100)
    for argv in (["status"], ["metrics", "nps"], ["metrics", "complaints"]):
        _one_line_error(_cli(*argv, "--db", str(small_copy)), "truncated", "restore")


def test_the_app_shows_a_damaged_store_in_one_line_and_never_rebuilds_over_it(small_copy, make_app):
    os.truncate(small_copy, small_copy.stat().st_size // 2)
    before = small_copy.read_bytes()
    at = make_app(small_copy)
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert any("truncated" in e and "restore" in e for e in errors), errors
    assert small_copy.read_bytes() == before  # the demo was not built over the user's file


def test_the_app_shows_a_bad_block_in_one_line(small_copy, make_app):
    _damage(small_copy, "survey_responses")
    at = make_app(small_copy)
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert any("is damaged" in e and "restore" in e for e in errors), errors


#: The CLI under a file-size limit: writes past it fail like a full disk (EFBIG instead of ENOSPC).
LIMIT = textwrap.dedent("""
    import resource, signal
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
""")


def _transactions_csv(path: Path, n: int) -> Path:
    lines = ["transaction_id,customer_id,occurred_on,amount"]
    lines += [f"X{i:08d},C{1 + i % 300:07d},2025-{1 + i % 12:02d}-{1 + i % 28:02d},{5 + i % 190}.25" for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _imported(db: Path) -> int:
    with store.connect(str(db)) as con:
        return con.execute("SELECT count(*) FROM transactions WHERE transaction_id LIKE 'X%'").fetchone()[0]


def test_no_room_for_the_log_means_nothing_was_committed_and_says_so(small_copy, tmp_path):
    csv = _transactions_csv(tmp_path / "tx.csv", 8000)
    r = _cli("import", "transactions", str(csv), "--db", str(small_copy), pre=LIMIT.format(limit=300_000))
    _one_line_error(r, "nothing was committed", "free disk space")
    assert _imported(small_copy) == 0


def test_no_room_for_the_checkpoint_after_commit_says_the_data_is_safe(small_copy, tmp_path):
    """The red team's case: the commit is in the write-ahead log, the checkpoint into the file fails
    and DuckDB invalidates the database. Old code: a traceback ending in "has been invalidated"."""
    csv = _transactions_csv(tmp_path / "tx.csv", 8000)
    limit = small_copy.stat().st_size + 65_536  # the log fits; the file cannot grow for the checkpoint
    r = _cli("import", "transactions", str(csv), "--db", str(small_copy), pre=LIMIT.format(limit=limit))
    line = _one_line_error(r, "was committed", "write-ahead log", "free disk space")
    assert "nothing was committed" not in line
    assert Path(str(small_copy) + ".wal").stat().st_size > 0
    assert _imported(small_copy) == 8000  # true: the next open (with room) applies the log


def _mount_read_only(src: Path, mnt: Path) -> bool:
    mnt.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mnt)], capture_output=True).returncode:
        return False
    shutil.copy(src, mnt / src.name)
    return subprocess.run(["mount", "-o", "remount,ro", str(mnt)], capture_output=True).returncode == 0


def test_a_read_only_file_system_gives_one_line_for_writes(small_db, tmp_path):
    mnt = tmp_path / "ro"
    if not _mount_read_only(small_db, mnt):
        pytest.skip("needs root and a tmpfs mount to make a read-only file system")
    try:
        db = mnt / small_db.name
        assert _cli("metrics", "nps", "--db", str(db)).returncode == 0  # reading still works
        csv = _transactions_csv(tmp_path / "tx.csv", 10)
        _one_line_error(_cli("import", "transactions", str(csv), "--db", str(db)), "cannot be written",
                        "writable disk")
        _one_line_error(_cli("init", "--db", str(db)), "Read-only file system")
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def test_a_file_left_as_a_full_check_or_a_write_after_one_left_it_is_not_read_again(small_copy, monkeypatch):
    """verify_once rests on the file's state (device, inode, size, times): a write open of the
    file as the last checked write left it skips the full read; any change from outside, an
    unclean file (write-ahead log) or an old check reads every block again, and damage whose
    modification time was set back is still found (the change time cannot be set back)."""
    calls = []
    real = faults.verify
    monkeypatch.setattr(faults, "verify", lambda *a, **k: calls.append(1) or real(*a, **k))
    with store.connect(str(small_copy), read_only=False):
        pass
    assert len(calls) == 1
    with store.connect(str(small_copy), read_only=False) as con:  # as the last open left it
        store.audit(con, actor="t", action="test", object="x", outcome="ok")
    assert len(calls) == 1
    with store.connect(str(small_copy), read_only=False):  # as the write above left it
        pass
    assert len(calls) == 1
    os.utime(small_copy)  # touched from outside
    with store.connect(str(small_copy), read_only=False):
        pass
    assert len(calls) == 2
    monkeypatch.setenv("CX_VERIFY_MAX_AGE", "0")  # the check is too old
    with store.connect(str(small_copy), read_only=False):
        pass
    assert len(calls) == 3
    monkeypatch.delenv("CX_VERIFY_MAX_AGE")
    with store.connect(str(small_copy), read_only=False):
        pass
    assert len(calls) == 3
    st = small_copy.stat()
    _damage(small_copy)
    os.utime(small_copy, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, same mtime: ctime moved
    with pytest.raises(faults.StoreDamaged, match="restore"):
        with store.connect(str(small_copy), read_only=False):
            pass
    assert len(calls) == 4


def test_imports_in_a_row_read_the_store_whole_once(small_copy, tmp_path, monkeypatch):
    """The first write open reads every block; the import after it, an unchanged re-import (logged
    as such) and an append each find the file as the previous write left it and skip the read."""
    from cxmetrics.registers import importer

    calls = []
    real = faults.verify
    monkeypatch.setattr(faults, "verify", lambda *a, **k: calls.append(1) or real(*a, **k))
    with store.connect(str(small_copy)) as con:
        who = con.execute("SELECT customer_id FROM customers ORDER BY 1 LIMIT 1").fetchone()[0]
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    one.write_text(f"response_id,customer_id,responded_on,survey,nps\nNEW1,{who},2024-01-01,relationship,9\n")
    two.write_text(f"response_id,customer_id,responded_on,survey,nps\nNEW2,{who},2024-01-02,relationship,3\n")
    assert importer.import_file(one, "survey_responses", db=small_copy).status == "accepted"
    assert len(calls) == 1
    assert importer.import_file(one, "survey_responses", db=small_copy).status == "unchanged"
    assert importer.import_file(two, "survey_responses", db=small_copy).status == "accepted"
    assert len(calls) == 1
    with store.connect(str(small_copy)) as con:
        assert [r[0] for r in con.execute("SELECT status FROM imports ORDER BY import_id").fetchall()][-3:] == [
            "accepted", "unchanged", "accepted"]
