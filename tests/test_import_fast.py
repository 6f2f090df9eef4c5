"""The CSV fast path (:mod:`cxmetrics.import_fast`) stores exactly what the general reader stores
and reports exactly what it reports, problems included; files it cannot guarantee go to the
general reader. And an unchanged re-import is answered from the file's hash before any parse
(:mod:`cxmetrics.import_digest`)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from cxmetrics import store
from cxmetrics.registers import import_fast, importer
from cxmetrics.registers.importer import ImportRejected
from tests.test_importer import customer_ids, write

SR = "survey_responses"
H = "response_id,customer_id,responded_on,survey,touchpoint,department,nps,csat,ces,verbatim"


def _rows(a: str, b: str, n: int = 30) -> list[str]:
    out = []
    for i in range(n):
        verbatim = ['"Late, again; support ""helpful"" though"', "fine", "", '"a, b"', "NA"][i % 5]
        nps = "" if i % 7 == 3 else str(i % 11)
        csat = "" if i % 3 else str(1 + i % 5)
        out.append(f"F{i},{a if i % 2 else b},2024-0{1 + i % 9}-1{i % 9},{'relationship' if i % 4 else 'transactional'},"
                   f"web,billing,{nps},{csat},,{verbatim}")
    return out


def _text(*lines: str, end: str = "\n") -> str:
    return end.join([H, *lines]) + end


# name: (table, content builder (a, b) -> str or bytes, the fast path is taken)
FILES = {
    "plain": (SR, lambda a, b: _text(*_rows(a, b)), True),
    "crlf": (SR, lambda a, b: _text(*_rows(a, b), end="\r\n"), True),
    "bom, no final newline": (SR, lambda a, b: "\ufeff" + _text(*_rows(a, b)).rstrip("\n"), True),
    "semicolons": (SR, lambda a, b: _text(*_rows(a, b)).replace(",", ";"), True),
    "spaces around values": (SR, lambda a, b: _text(*[r.replace(",web,", ",  web ,") for r in _rows(a, b)]), False),  # trimmed and reported by the general reader
    "non-ASCII verbatim": (SR, lambda a, b: _text(*_rows(a, b), f"U1,{a},2024-02-02,relationship,web,billing,9,,,Très rapide ✓"), True),
    "unknown customer makes a stub": (SR, lambda a, b: _text(*_rows(a, b), "S1,NEWCUST9,2024-02-02,relationship,,,9,,,"), True),
    "no answer rows skipped": (SR, lambda a, b: _text(*_rows(a, b), f"N1,{a},2024-02-02,relationship,,,,,,"), True),
    "a problem after skipped rows": (SR, lambda a, b: _text(f"N1,{a},2024-02-02,relationship,,,,,,", *_rows(a, b)[:5], f"N2,{b},2024-02-02,relationship,,,,,,",
                                                           f"E1,{a},2024-02-02,relationship,,,11,,,", *_rows(a, b)[5:]), True),
    "transactions: a problem after a row without a customer": ("transactions", lambda a, b: f"customer_id,occurred_on,amount\n,2024-01-02,3\n{a},2024-01-01,10\n{b},2024-01-03,2025-01-01\n", True),
    "nps above 10": (SR, lambda a, b: _text(*_rows(a, b), f"E1,{a},2024-02-02,relationship,,,11,,,", f"E2,{a},2024-02-02,relationship,,,12,,,"), True),
    "duplicate key": (SR, lambda a, b: _text(*_rows(a, b), f"F3,{a},2024-02-02,relationship,,,9,,,"), True),
    "not a calendar date": (SR, lambda a, b: _text(*_rows(a, b), f"D1,{a},2024-02-30,relationship,,,9,,,"), True),
    "survey misspelt": (SR, lambda a, b: _text(*_rows(a, b), f"X1,{a},2024-02-02,Relationship,,,9,,,"), True),
    "formula in a touchpoint": (SR, lambda a, b: _text(*_rows(a, b), f"X1,{a},2024-02-02,relationship,=cmd,,9,,,"), True),
    "transactions without some customers": ("transactions", lambda a, b: f"customer_id,occurred_on,amount\n{a},2024-01-01,10.5\n,2024-01-02,3\n{b},2024-01-03,-2\n", True),
    # files for the general reader
    "wrong number of fields": (SR, lambda a, b: _text(*_rows(a, b), f"W1,{a},2024-02-02,relationship,,,9,,,,extra"), False),
    "value over two lines": (SR, lambda a, b: _text(*_rows(a, b), f'M1,{a},2024-02-02,relationship,,,9,,,"one\ntwo"'), False),
    "space before a quote": (SR, lambda a, b: _text(*_rows(a, b), f'Q1,{a},2024-02-02,relationship,,,9,,, "quoted"'), False),
    "space after a closing quote": (SR, lambda a, b: _text(*_rows(a, b), f'Q1,{a},2024-02-02,relationship,,,9,,,"quoted" '), False),
    "slash dates": (SR, lambda a, b: _text(*_rows(a, b), f"Q1,{a},3/15/2024,relationship,,,9,,,"), False),
    "not a number (read as a label there)": (SR, lambda a, b: _text(*_rows(a, b), f"X1,{a},2024-02-02,relationship,,,9,1_0,,"), False),
    "choice text": (SR, lambda a, b: _text(*_rows(a, b), f"Q1,{a},2024-02-02,relationship,,,10 - Extremely likely,,,"), False),
    "full-width id": (SR, lambda a, b: _text(*_rows(a, b), f"Ｑ１,{a},2024-02-02,relationship,,,9,,,"), False),
    "tab before an id": (SR, lambda a, b: _text(*_rows(a, b), f"\tQ1,{a},2024-02-02,relationship,,,9,,,"), False),
    "cr only": (SR, lambda a, b: _text(*_rows(a, b), end="\r"), False),
    "blank line": (SR, lambda a, b: _text(*_rows(a, b)[:3], "", *_rows(a, b)[3:]), False),
    "latin-1": (SR, lambda a, b: _text(*_rows(a, b), f"L1,{a},2024-02-02,relationship,,,9,,,caf\xe9").encode("latin-1"), False),
    "float ids": (SR, lambda a, b: _text(f"1.0,{a},2024-02-02,relationship,,,9,,,", f"2.0,{b},2024-02-02,relationship,,,9,,,"), False),
}


def _stored(db: Path, table: str) -> list[tuple]:
    t = importer.TABLES[table]
    cols = ", ".join(f'"{c}"' for c in t.names)
    with store.connect(str(db)) as c:
        rows = c.execute(f'SELECT {cols} FROM "{table}" ORDER BY ALL').fetchall()  # noqa: S608
        custs = c.execute("SELECT customer_id, segment, acquired_on FROM customers ORDER BY ALL").fetchall()
    return rows + custs


def _outcome(path: Path, table: str, db: Path, monkeypatch, fast: bool, taken: list):
    monkeypatch.setenv("CX_IMPORT_FAST", "1" if fast else "0")
    real = import_fast.stage

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        taken.append(out is not None)
        return out

    monkeypatch.setattr(import_fast, "stage", spy)
    try:
        rep = importer.import_file(path, table, db=db)
    except ImportRejected as e:
        return ("rejected", [str(p) for p in e.problems], e.total, e.notes)
    finally:
        monkeypatch.setattr(import_fast, "stage", real)
    d = rep.to_dict()
    for k in ("seconds_validating", "seconds_summaries", "import_id"):
        d.pop(k)
    return ("accepted", d, _stored(db, table))


@pytest.mark.parametrize("case", list(FILES), ids=list(FILES))
def test_fast_path_gives_what_the_general_reader_gives(case, small_db, tmp_path, monkeypatch):
    table, build, fast_expected = FILES[case]
    dbs = [tmp_path / "general.duckdb", tmp_path / "fast.duckdb"]
    for db in dbs:
        shutil.copy(small_db, db)
    a, b, _ = customer_ids(dbs[0])
    path = write(tmp_path, build(a, b))
    taken: list[bool] = []
    general = _outcome(path, table, dbs[0], monkeypatch, False, taken)
    assert taken == []  # CX_IMPORT_FAST=0: the general reader only
    fast = _outcome(path, table, dbs[1], monkeypatch, True, taken)
    assert taken == [fast_expected]
    assert fast == general


def test_other_space_is_what_str_strip_removes_besides_the_space():
    import re
    import sys

    spaces = {ch for ch in map(chr, range(sys.maxunicode + 1)) if ch.isspace() and ch != " "}
    ranges = re.findall(r"\\x\{([0-9a-f]+)\}(?:-\\x\{([0-9a-f]+)\})?", import_fast.OTHER_SPACE)
    listed = {chr(c) for lo, hi in ranges for c in range(int(lo, 16), int(hi or lo, 16) + 1)}
    assert listed == spaces


def test_fast_path_row_numbers_are_file_lines(small_copy, tmp_path):
    a, b, _ = customer_ids(small_copy)
    rows = _rows(a, b, 500)
    rows[436] = rows[436].replace(",relationship,", ",relation,").replace(",transactional,", ",relation,")
    with pytest.raises(ImportRejected) as e:
        importer.import_file(write(tmp_path, _text(*rows)), SR, db=small_copy)
    assert (e.value.problems[0].row, e.value.problems[0].column) == (438, "survey")


# ----------------------------------------------------------------------------- unchanged re-import


def test_unchanged_reimport_is_answered_from_the_hash_before_any_parse(small_copy, tmp_path, monkeypatch):
    a, b, _ = customer_ids(small_copy)
    path = write(tmp_path, _text(*[r for i, r in enumerate(_rows(a, b)) if i % 7 != 3]))  # each with a score
    assert importer.import_file(path, SR, db=small_copy).status == "accepted"

    def no_parse(*args, **kwargs):
        raise AssertionError("the file was parsed")

    monkeypatch.setattr(importer, "_stage", no_parse)
    rep = importer.import_file(path, SR, db=small_copy)
    assert (rep.status, rep.inserted, rep.updated, rep.rows) == ("unchanged", 0, 0, 26)
    with store.connect(str(small_copy)) as c:
        assert c.execute("SELECT status FROM imports ORDER BY import_id DESC LIMIT 1").fetchone()[0] == "unchanged"
    # other options, or another data version: the full path decides (and parses)
    with pytest.raises(AssertionError, match="parsed"):
        importer.import_file(path, SR, db=small_copy, mapping={"touchpoint": ""})
    monkeypatch.undo()
    importer.import_file(write(tmp_path, "department\nnew_department\n", "d.csv"), "departments", db=small_copy)
    monkeypatch.setattr(importer, "_stage", no_parse)
    with pytest.raises(AssertionError, match="parsed"):
        importer.import_file(path, SR, db=small_copy)


def test_a_settled_file_is_not_hashed_again(small_copy, tmp_path, monkeypatch):
    """The second import of a file not changed since the first takes its SHA-256 from the first's
    record (its device, inode, size and times); any write to the file makes it hashed again."""
    from cxmetrics.registers import import_digest

    a, b, _ = customer_ids(small_copy)
    path = write(tmp_path, _text(*[r for i, r in enumerate(_rows(a, b)) if i % 7 != 3]))
    # read as if ten seconds after it was written: settled
    monkeypatch.setattr(import_digest, "_now_ns", lambda: path.stat().st_ctime_ns + 10**10)
    hashed = []
    real = importer.sha256_of
    monkeypatch.setattr(importer, "sha256_of", lambda p: hashed.append(p) or real(p))
    first = importer.import_file(path, SR, db=small_copy)
    assert first.status == "accepted" and len(hashed) == 1
    rep = importer.import_file(path, SR, db=small_copy)
    assert (rep.status, rep.sha256, len(hashed)) == ("unchanged", first.sha256, 1)
    assert "same device, inode, size" in rep.warnings[0]
    # copied over with other bytes of the same size (a score changed) and its old modification
    # time set back (`cp -p`): the status-change time moved, so it is hashed, read and stored
    text, st = path.read_text(), path.stat()
    changed = text.replace(",web,billing,5,", ",web,billing,6,", 1)
    assert changed != text and len(changed) == len(text)
    path.write_text(changed)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    rep = importer.import_file(path, SR, db=small_copy)
    assert (rep.status, len(hashed)) == ("accepted", 2)
    assert rep.sha256 == real(path) != first.sha256
    with store.connect(str(small_copy)) as c:
        assert c.execute("SELECT nps FROM survey_responses WHERE response_id = 'F5'").fetchone()[0] == 6


def test_a_file_changed_a_moment_ago_has_no_identity(tmp_path, monkeypatch):
    """A file read within the clock ticks after its last change could change again without its
    times moving: it is hashed every time (no identity is recorded)."""
    from types import SimpleNamespace

    from cxmetrics.registers import import_digest

    st = SimpleNamespace(st_dev=1, st_ino=2, st_size=3, st_mtime_ns=5_000_000_000_123, st_ctime_ns=7_000_000_000_123)
    assert import_digest.identity_of(st, st.st_ctime_ns + 50_000_000) is None
    assert import_digest.identity_of(st, st.st_ctime_ns + 150_000_000) == "1:2:3:5000000000123:7000000000123"
    # a later modification time (set to the future, say) counts
    assert import_digest.identity_of(SimpleNamespace(**{**vars(st), "st_mtime_ns": st.st_ctime_ns + 10**9}),
                                     st.st_ctime_ns + 150_000_000) is None
    # a file system keeping whole seconds: three seconds
    whole = SimpleNamespace(**{**vars(st), "st_ctime_ns": 7_000_000_000_000})
    assert import_digest.identity_of(whole, whole.st_ctime_ns + 2 * 10**9) is None
    assert import_digest.identity_of(whole, whole.st_ctime_ns + 4 * 10**9) is not None
    # a real file, read at a moment and a second after its write
    path = tmp_path / "f.csv"
    path.write_text("a\n")
    st = path.stat()
    monkeypatch.setattr(import_digest, "_now_ns", lambda: st.st_ctime_ns + 50_000_000)
    assert import_digest.file_identity(path) is None
    monkeypatch.setattr(import_digest, "_now_ns", lambda: st.st_ctime_ns + 10**9)
    assert import_digest.file_identity(path) == f"{st.st_dev}:{st.st_ino}:2:{st.st_mtime_ns}:{st.st_ctime_ns}"


def test_an_import_says_what_it_is_doing(small_copy, tmp_path):
    """Inside ``store.reporting`` an import names each step as it starts (the CLI prints them, the
    Data page shows them in its status box); outside one it tells no one."""
    a, b, _ = customer_ids(small_copy)
    path = write(tmp_path, _text(*[r for i, r in enumerate(_rows(a, b)) if i % 7 != 3]))
    said: list[str] = []
    with store.reporting(said.append):
        importer.import_file(path, SR, db=small_copy)
    assert said[:5] == ["hashing the file (SHA-256)", "reading the file", "checking 26 rows", "writing 26 rows",
                        "bringing the summaries up to date"]
    steps = said[5:]
    assert steps and all(m.startswith(("summary: ", "fit: ")) for m in steps)
    assert "summary: answer spells" in steps and any(m.startswith("fit: ") for m in steps)
    store.progress("nobody listens")  # no block: nothing happens
    assert len(said) == 5 + len(steps)
