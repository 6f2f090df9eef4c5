"""More hand-written malformed files (issue 19): each is rejected with its row and column and the
store unchanged (content digest), like ``MALFORMED`` in ``test_importer.py``; together they hold
at least 100 files. Binary files (xlsx, Parquet) are built by small functions below."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cxmetrics.registers import importer
from cxmetrics.registers.importer import ImportRejected
from tests.test_importer import HEADER, MALFORMED, customer_ids, write

SR = "survey_responses"
ROW = "T1,{a},2024-01-01,relationship,,9,,"  # a valid survey row (customer id filled in)


def survey(*lines: str) -> str:
    return "\n".join([HEADER, *lines]) + "\n"


def nps(value: str) -> str:
    return survey(f"T1,{{a}},2024-01-01,relationship,,{value},,")


def responded(value: str) -> str:
    return survey(f"T1,{{a}},{value},relationship,,9,,")


def tx(amount: str) -> str:
    return f"customer_id,occurred_on,amount\n{{a}},2024-01-01,{amount}\n"


# ----------------------------------------------------------------------------- binary builders


def xlsx(rows: list[list], *, hidden_first: list[list] | None = None, merge: str | None = None,
         patch: tuple[bytes, bytes] | None = None, first_state: str = "hidden"):
    """A builder of an .xlsx file: ``rows`` on the active sheet; optionally a first sheet before it
    (hidden, or visible but not active), a merged range, or a raw edit of the workbook's XML."""

    def build(tmp_path: Path, a: str, b: str) -> bytes:
        wb = openpyxl.Workbook()
        ws = wb.active
        if hidden_first is not None:
            ws.title = "Old"
            for r in hidden_first:
                ws.append([str(x).replace("{a}", a) for x in r])
            ws.sheet_state = first_state
            ws = wb.create_sheet("Data")
            wb.active = 1
        for r in rows:
            ws.append([x.replace("{a}", a).replace("{b}", b) if isinstance(x, str) else x for x in r])
        if merge:
            ws.merge_cells(merge)
        p = tmp_path / "built.xlsx"
        wb.save(p)
        data = p.read_bytes()
        if patch:
            src, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
            with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
                for info in src.infolist():
                    part = src.read(info)
                    if info.filename.endswith(".xml"):
                        part = part.replace(*patch)
                    z.writestr(info, part)
            data = out.getvalue()
        return data

    return build


def parquet(columns: dict | list[tuple[str, pa.Array]]):
    """A builder of a Parquet file from ``{name: values}`` (strings may hold ``{a}``) or a list of
    ``(name, pyarrow array)`` pairs (duplicate names, nested types)."""

    def build(tmp_path: Path, a: str, b: str) -> bytes:
        if isinstance(columns, dict):
            arrays = [pa.array([v.replace("{a}", a) if isinstance(v, str) else v for v in vals])
                      for vals in columns.values()]
            table = pa.Table.from_arrays(arrays, names=list(columns))
        else:
            table = pa.Table.from_arrays([arr for _, arr in columns], names=[n for n, _ in columns])
        buf = io.BytesIO()
        pq.write_table(table, buf)
        return buf.getvalue()

    return build


XH = ["response_id", "customer_id", "responded_on", "survey", "nps"]
PQ = {"response_id": ["P1"], "customer_id": ["{a}"], "responded_on": ["2024-01-01"], "survey": ["relationship"]}


def pq_with(**extra) -> dict:
    return {**PQ, **extra}


# name: (table, content, file name, expected row, expected column, text in the reason[, import kwargs])
MORE: dict[str, tuple] = {
    # item 2: quotes that swallow rows
    "stray quote in header closes in a data row": (SR, HEADER.replace("verbatim", '"verbatim') + "\n" + ROW + "ok\n" + ROW + '"\n', "f.csv", 1, None, "header record spans lines 1–3"),
    "stray quote in header never closed": (SR, HEADER.replace("touchpoint", '"touchpoint') + "\n" + ROW + "\n", "f.csv", 1, None, "never closed"),
    "stray quote in a row swallows the next rows": (SR, survey(ROW + '"oops', ROW.replace("T1", "T2"), ROW.replace("T1", "T3") + 'end"'), "f.csv", 2, "verbatim", "holds what looks like a whole record"),
    "text after a closing quote": (SR, survey(ROW + '"quoted"tail'), "f.csv", 2, None, "cannot be parsed as CSV"),
    "extra field": (SR, survey(ROW + "text,extra"), "f.csv", 2, None, "number of fields"),
    "page footer line": (SR, survey(ROW + "ok", "Page 1 of 2"), "f.csv", 3, None, "number of fields"),
    "header repeated mid-file": (SR, survey(ROW + "ok", HEADER), "f.csv", 3, "nps", "not a number"),
    "excel sep line": (SR, "sep=,\n" + survey(ROW + "ok"), "f.csv", 2, None, "number of fields"),
    "json renamed csv": (SR, '[\n  {"response_id": "T1", "nps": 9}\n]\n', "f.csv", 2, None, "number of fields"),
    "html renamed csv": (SR, "<html>\n<body><table><tr><td>nps</td></tr></table></body>\n</html>\n", "f.csv", None, "responded_on", "Required column responded_on missing"),
    # item 7: messages that say what is wrong
    "nps nan": (SR, nps("nan"), "f.csv", 2, "nps", "not a finite number"),
    "nps NaN": (SR, nps("NaN"), "f.csv", 2, "nps", "not a finite number"),
    "nps inf": (SR, nps("inf"), "f.csv", 2, "nps", "not a finite number"),
    "nps -infinity": (SR, nps("-infinity"), "f.csv", 2, "nps", "not a finite number"),
    "nps 1e309": (SR, nps("1e309"), "f.csv", 2, "nps", "not a finite number"),
    "csat nan": (SR, survey("T1,{a},2024-01-01,relationship,,9,nan,"), "f.csv", 2, "csat", "not a finite number"),
    "shift-jis": (SR, survey(ROW + "ご意見ありがとうございます").replace("{a}", "C0000001").encode("shift_jis"), "f.csv", 2, None, "Shift-JIS"),
    "row numbers are lines after a multi-line value": (SR, survey(ROW + '"one\ntwo\nthree"', "T2,{a},2024-01-01,relationship,,11,,"), "f.csv", 5, "nps", "above the maximum 10"),
    "cr-only line endings": (SR, survey(ROW + "ok", "T2,{a},2024-01-01,relationship,,12,,").replace("\n", "\r"), "f.csv", 3, "nps", "above the maximum 10"),
    "mixed line endings": (SR, HEADER + "\r\n" + ROW + "ok\r" + ROW.replace("T1", "T2") + "\n" + "T3,{a},2024-01-01,relationship,,12,,\r\n", "f.csv", 4, "nps", "above the maximum 10"),
    "crlf with a bad row": (SR, survey(ROW, "T2,{a},2024-01-01,relationship,,9,0,").replace("\n", "\r\n"), "f.csv", 3, "csat", "below the minimum 1"),
    # item 10: encodings
    "utf-8 with one stray byte": (SR, survey(ROW + "café", ROW.replace("T1", "T2") + "ok").replace("{a}", "C0000001").encode().replace(b"ok", b"o\xe9k"), "f.csv", 3, None, "not valid UTF-8"),
    "utf-8 bom then a stray byte": (SR, b"\xef\xbb\xbf" + survey(ROW + "na\xefve", ROW.replace("T1", "T2") + "ok").replace("{a}", "C0000001").encode().replace(b"ok", b"\xffk"), "f.csv", 3, None, "not valid UTF-8"),
    "cp1251 read as latin-1": (SR, survey(ROW + "Очень долго ждали").replace("{a}", "C0000001").encode("cp1251"), "f.csv", 2, None, "Windows-1251"),
    "iso-8859-2 read as latin-1": (SR, survey(ROW + "Zażółć gęślą jaźń").replace("{a}", "C0000001").encode("iso-8859-2"), "f.csv", 2, None, "ISO-8859-2"),
    "koi8-r undetected": (SR, survey(ROW + "Привет").replace("{a}", "C0000001").encode("koi8-r"), "f.csv", 2, None, "KOI8-R"),
    "stated cp1251 with an undefined byte": (SR, survey(ROW + "Да", ROW.replace("T1", "T2") + "x").replace("{a}", "C0000001").encode("cp1251").replace(b",x\n", b",\x98\n"), "f.csv", 3, None, "not valid cp1251", {"encoding": "cp1251"}),
    "stated utf-8 with latin-1 bytes": (SR, survey(ROW + "caf\xe9").replace("{a}", "C0000001").encode("latin-1"), "f.csv", 2, None, "not valid utf-8", {"encoding": "utf-8"}),
    "unsupported encoding": (SR, survey(ROW), "f.csv", None, None, "is not supported", {"encoding": "ebcdic-cp-us"}),
    "utf-32": (SR, survey(ROW).encode("utf-32"), "f.csv", None, None, "UTF-32"),
    "utf-16 big endian": (SR, b"\xfe\xff" + survey(ROW).encode("utf-16-be"), "f.csv", None, None, "UTF-16"),
    # item 11: xlsx
    "xlsx formula never calculated": (SR, xlsx([XH, ["X1", "{a}", "2024-01-01", "relationship", "=4+5"]]), "f.xlsx", 2, "nps", "never calculated"),
    "xlsx #N/A": (SR, xlsx([XH, ["X1", "{a}", "2024-01-01", "relationship", 9], ["X2", "{a}", "2024-01-02", "relationship", "#N/A"]]), "f.xlsx", 3, "nps", "error value #N/A"),
    "xlsx #REF! in an id": (SR, xlsx([XH, ["X1", "#REF!", "2024-01-01", "relationship", 9]]), "f.xlsx", 2, "customer_id", "error value #REF!"),
    "xlsx merged cells": (SR, xlsx([XH, ["X1", "{a}", "2024-01-01", "relationship", 9], ["X2", "{a}", "2024-01-01", "relationship", 8]], merge="C2:C3"), "f.xlsx", 2, "responded_on", "merged cells C2:C3"),
    "xlsx 18-digit id rounded in the file": (SR, xlsx([XH, ["X1", 123456789012345678, "2024-01-01", "relationship", 9]]), "f.xlsx", 2, "customer_id", "more digits than a spreadsheet number holds"),
    "xlsx active sheet is checked, not the hidden first": (SR, xlsx([XH, ["X1", "{a}", "2024-01-01", "relationship", 11]], hidden_first=[XH, ["H1", "{a}", "2024-01-01", "relationship", 5]]), "f.xlsx", 2, "nps", "above the maximum 10"),
    "xlsx the active sheet, not the first visible one": (SR, xlsx([XH, ["X1", "{a}", "2024-01-01", "relationship", 12]], hidden_first=[XH, ["H1", "{a}", "2024-01-01", "relationship", 5]], first_state="visible"), "f.xlsx", 2, "nps", "above the maximum 10"),
    "xlsx no such sheet": (SR, xlsx([XH, ["X1", "{a}", "2024-01-01", "relationship", 9]]), "f.xlsx", None, None, "no sheet 'Responses'", {"options": importer.ImportOptions(sheet="Responses")}),
    "xlsx no visible sheet": (SR, xlsx([XH, ["X1", "{a}", "2024-01-01", "relationship", 9]], patch=(b'state="visible"', b'state="hidden"')), "f.xlsx", None, None, "no visible worksheet"),
    "xlsx header only": (SR, xlsx([XH]), "f.xlsx", None, None, "no data rows"),
    "xlsx date typed as text": (SR, xlsx([XH, ["X1", "{a}", "epoch", "relationship", 9]]), "f.xlsx", 2, "responded_on", "unparseable date"),
    # item 12: identifiers and orphans
    "cyrillic look-alike id": (SR, "response_id,customer_id,responded_on,survey,nps\nT1,\u04210000001,2024-01-01,relationship,9\n", "f.csv", 2, "customer_id", "look-alike"),
    "greek look-alike id": (SR, "response_id,customer_id,responded_on,survey,nps\nT\u039f1,{a},2024-01-01,relationship,9\n", "f.csv", 2, "response_id", "look-alike"),
    "cyrillic look-alike new customer": ("customers", "customer_id,segment,region,acquired_on,contract\nC\u0410\u04121,smb,north,2020-01-01,contractual\n", "f.csv", 2, "customer_id", "look-alike"),
    "tab inside an id": (SR, 'response_id,customer_id,responded_on,survey,nps\n"T\t1",{a},2024-01-01,relationship,9\n', "f.csv", 2, "response_id", "control character"),
    "unit separator at the end of an id": (SR, 'response_id,customer_id,responded_on,survey,nps\nT1\x1f,{a},2024-01-01,relationship,9\n', "f.csv", 2, "response_id", "control character"),
    "vertical tab before a customer id": (SR, 'response_id,customer_id,responded_on,survey,nps\nT1,{a},2024-01-01,relationship,9\nT2,"\x0b{a}",2024-01-01,relationship,8\n', "f.csv", 3, "customer_id", "control character"),
    "zero-width space makes a duplicate key": (SR, survey(ROW, "T1\u200b,{a},2024-01-02,relationship,,8,,"), "f.csv", 2, "response_id", "duplicate key"),
    "full-width id makes a duplicate key": (SR, survey(ROW, "Ｔ１,{a},2024-01-02,relationship,,8,,"), "f.csv", 2, "response_id", "duplicate key"),
    "zero-width header twin": (SR, "response_id,customer_id,responded_on,survey,nps,\u200bnps\nT1,{a},2024-01-01,relationship,9,8\n", "f.csv", 1, "nps", "two columns map to nps"),
    "full-width header twin": (SR, "response_id,customer_id,responded_on,survey,nps,ｎｐｓ\nT1,{a},2024-01-01,relationship,9,8\n", "f.csv", 1, "nps", "two columns map to nps"),
    "complaint department not in departments": ("complaints", "complaint_id,customer_id,opened_on,category,department\nK1,{a},2024-01-01,billing,billing\nK2,{a},2024-01-01,billing,Nowhere\n", "f.csv", 3, "department", "unknown department"),
    "followup for an unknown response": ("followups", "followup_id,customer_id,response_id,contacted_on\nF1,{a},NO-SUCH-RESPONSE,2024-01-01\n", "f.csv", 2, "response_id", "unknown response_id"),
    "initiative for an unknown department": ("initiatives", "initiative_id,name,track,department,started_on\nI1,Test,strategic,Nowhere,2024-01-01\n", "f.csv", 2, "department", "unknown department"),
    # complaints keep refusing unknown customers (responses and transactions make stubs of them)
    "excel text apostrophe on an id": ("complaints", "complaint_id,customer_id,opened_on,category\nK1,'{a},2024-01-01,billing\n", "f.csv", 2, "customer_id", "unknown customer_id"),
    # item 13: Parquet by the CSV rules
    "parquet duplicate column": (SR, parquet([("response_id", pa.array(["P1"])), ("nps", pa.array([9])), ("nps", pa.array([3]))]), "f.parquet", 1, "nps", "duplicate column name"),
    "parquet struct column": (SR, parquet([*[(k, pa.array(v)) for k, v in PQ.items()], ("verbatim", pa.array([{"text": "hi"}]))]), "f.parquet", None, "verbatim", "nested or binary"),
    "parquet binary column": (SR, parquet([*[(k, pa.array(v)) for k, v in PQ.items()], ("nps", pa.array([b"\x09"], pa.binary()))]), "f.parquet", None, "nps", "nested or binary"),
    "parquet list column": (SR, parquet([*[(k, pa.array(v)) for k, v in PQ.items()], ("nps", pa.array([[9, 10]]))]), "f.parquet", None, "nps", "nested or binary"),
    "parquet fractional nps": (SR, parquet(pq_with(nps=[9.5])), "f.parquet", 1, "nps", "not a whole number"),
    "parquet NaN nps": (SR, parquet(pq_with(nps=[float("nan")])), "f.parquet", 1, "nps", "not a finite number"),
    "parquet epoch date": (SR, parquet({**PQ, "responded_on": ["epoch"], "nps": [9]}), "f.parquet", 1, "responded_on", "unparseable date"),
    "parquet orphan customer": ("complaints", parquet({"complaint_id": ["K1"], "customer_id": ["NOBODY"], "opened_on": ["2024-01-01"], "category": ["billing"]}), "f.parquet", 1, "customer_id", "unknown customer_id"),
    "parquet missing column": (SR, parquet({"response_id": ["P1"], "nps": [9]}), "f.parquet", None, "responded_on", "Required column responded_on missing"),
    "parquet damaged": (SR, b"PAR1" + b"\x00garbage" * 20 + b"PAR1", "f.parquet", None, None, "cannot be read"),
    "parquet look-alike id": (SR, parquet({**PQ, "customer_id": ["\u04210000001"], "nps": [9]}), "f.parquet", 1, "customer_id", "look-alike"),
    # item 14: lenient parsing
    "nps 1_0": (SR, nps("1_0"), "f.csv", 2, "nps", "not a number"),
    "nps 8.9999999999999999": (SR, nps("8.9999999999999999"), "f.csv", 2, "nps", "not a whole number"),
    "nps 0x9": (SR, nps("0x9"), "f.csv", 2, "nps", "not a number"),
    "nps with a space inside": (SR, nps("9 9"), "f.csv", 2, "nps", "not a number"),
    "nps decimal comma": (SR, nps('"9,5"'), "f.csv", 2, "nps", "not a number"),
    "nps n/a": (SR, nps("n/a"), "f.csv", 2, "nps", "not a number"),
    "nps #VALUE!": (SR, nps("#VALUE!"), "f.csv", 2, "nps", "not a number"),
    "date epoch": (SR, responded("epoch"), "f.csv", 2, "responded_on", "unparseable date"),
    "date hour 24": (SR, responded("2024-03-01T24:00:00"), "f.csv", 2, "responded_on", "unparseable date"),
    "date minute 60": (SR, responded("2024-03-01 10:60"), "f.csv", 2, "responded_on", "unparseable date"),
    "date 30 february": (SR, responded("2024-02-30"), "f.csv", 2, "responded_on", "unparseable date"),
    "date month 13": (SR, responded("2024-13-01"), "f.csv", 2, "responded_on", "unparseable date"),
    "date infinity": (SR, responded("infinity"), "f.csv", 2, "responded_on", "unparseable date"),
    "date NULL literal": (SR, responded("NULL"), "f.csv", 2, "responded_on", "unparseable date"),
    "date with a zone name": (SR, responded("2024-03-01 10:00 CET"), "f.csv", 2, "responded_on", "unparseable date"),
    "date two-digit year": (SR, responded("01/03/24"), "f.csv", 2, "responded_on", "unparseable date"),
    "date compact": (SR, responded("20240301"), "f.csv", 2, "responded_on", "unparseable date"),
    "dates mix M/D and D/M": (SR, survey(ROW.replace("2024-01-01", "3/15/2024"), ROW.replace("T1", "T2").replace("2024-01-01", "15/3/2024")), "f.csv", 2, "responded_on", "dates mix"),
    "ambiguous slash dates": (SR, responded("3/4/2024"), "f.csv", 2, "responded_on", "ambiguous dates"),
    "amount 1_000": ("transactions", tx("1_000"), "f.csv", 2, "amount", "not a number"),
    "amount with currency": ("transactions", tx("$12.50"), "f.csv", 2, "amount", "not a number"),
    "amount with thousands separator": ("transactions", tx('"1,234.50"'), "f.csv", 2, "amount", "not a number"),
    "amount hex": ("transactions", tx("0x10"), "f.csv", 2, "amount", "not a number"),
    "amount nan": ("transactions", tx("NaN"), "f.csv", 2, "amount", "not a finite number"),
    "amount expression with 1_0": ("transactions", "customer_id,occurred_on,Quantity,UnitPrice\n{a},2024-01-01,1_0,2.5\n", "f.csv", 2, "Quantity", "not a number", {"options": importer.ImportOptions(amount="Quantity*UnitPrice")}),
    "wallet percent sign": (SR, "response_id,customer_id,responded_on,survey,share_of_wallet_pct\nT1,{a},2024-01-01,relationship,85%\n", "f.csv", 2, "share_of_wallet_pct", "not a number"),
    "complaint cost 1e400": ("complaints", "complaint_id,customer_id,opened_on,category,cost\nK1,{a},2024-01-01,billing,1e400\n", "f.csv", 2, "cost", "not a finite number"),
    "kpi value infinity": ("kpi_observations", "kpi_id,observed_on,value\n{k},2024-01-01,Infinity\n", "f.csv", 2, "value", "not a finite number"),
    # realistic breakages
    "excel total row": (SR, survey(ROW + "ok", "Total,,,,,9,,"), "f.csv", 3, "responded_on", "required value is empty"),
    "ces above 7": (SR, "response_id,customer_id,responded_on,survey,ces\nT1,{a},2024-01-01,relationship,8\n", "f.csv", 2, "ces", "above the maximum 7"),
    "csat zero": (SR, "response_id,customer_id,responded_on,survey,csat\nT1,{a},2024-01-01,relationship,0\n", "f.csv", 2, "csat", "below the minimum 1"),
    "customer acquired in the future": ("customers", "customer_id,segment,region,acquired_on,contract\nCNEW1,smb,north,2999-01-01,contractual\n", "f.csv", 2, "acquired_on", "future"),
    "contract misspelt": ("customers", "customer_id,segment,region,acquired_on,contract\nCNEW1,smb,north,2020-01-01,Contractual\n", "f.csv", 2, "contract", "must be one of"),
    "phone number as a touchpoint": (SR, survey("T1,{a},2024-01-01,relationship,+44 20 7946 0000,9,,"), "f.csv", 2, "touchpoint", "formula"),
    "tab then formula in an id": (SR, 'response_id,customer_id,responded_on,survey,nps\n"\t=cmd|\' /C calc\'!A0",{a},2024-01-01,relationship,9\n', "f.csv", 2, "response_id", "formula"),
    "bom only": (SR, b"\xef\xbb\xbf", "f.csv", 1, None, "no header"),
    "blank lines only": (SR, "\n\n\n", "f.csv", 1, None, "no header"),
    "bom and header only": (SR, b"\xef\xbb\xbf" + (HEADER + "\r\n").encode(), "f.csv", None, None, "no data rows"),
}


def _kpi_id(db: Path) -> str:
    from cxmetrics import store

    with store.connect(str(db)) as c:
        return c.execute("SELECT min(kpi_id) FROM kpis").fetchone()[0]


@pytest.mark.parametrize("case", list(MORE), ids=list(MORE))
def test_more_malformed_files_rejected_and_store_unchanged(case, small_copy, tmp_path, digest):
    table, content, name, row, column, reason, *rest = MORE[case]
    kwargs = rest[0] if rest else {}
    a, b, _ = customer_ids(small_copy)
    if callable(content):
        content = content(tmp_path, a, b)
    elif isinstance(content, str):
        content = content.replace("{a}", a).replace("{b}", b).replace("{k}", _kpi_id(small_copy))
    path = write(tmp_path, content, name)
    before = digest(small_copy)
    with pytest.raises(ImportRejected) as e:
        importer.import_file(path, table, db=small_copy, **kwargs)
    problems = e.value.problems
    assert any(reason in p.reason for p in problems), [str(p) for p in problems]
    first = next(p for p in problems if reason in p.reason)
    assert (first.row, first.column) == (row, column), str(first)
    assert digest(small_copy) == before
    assert "nothing was imported" in e.value.report()


def test_at_least_100_hand_written_malformed_files():
    assert len(MALFORMED) + len(MORE) >= 100
    assert not set(MALFORMED) & set(MORE)


# ----------------------------------------------------------------------------- accepted by rule


def _one(db: Path, sql: str, params=None):
    from cxmetrics import store

    with store.connect(str(db)) as c:
        return c.execute(sql, params or []).fetchall()


@pytest.mark.parametrize("ending", ["\r", "\r\n", "mixed"])
def test_cr_only_and_mixed_line_endings_are_accepted(ending, small_copy, tmp_path):
    rows = [ROW.replace("T1", f"E{i}") + f"ok {i}" for i in range(3)]
    if ending == "mixed":
        text = HEADER + "\r\n" + rows[0] + "\r" + rows[1] + "\n" + rows[2] + "\r\n"
    else:
        text = ending.join([HEADER, *rows]) + ending
    a = customer_ids(small_copy)[0]
    rep = importer.import_file(write(tmp_path, text.replace("{a}", a)), SR, db=small_copy)
    assert rep.inserted == 3
    assert _one(small_copy, "SELECT verbatim FROM survey_responses WHERE response_id LIKE 'E%' ORDER BY 1") == [
        ("ok 0",), ("ok 1",), ("ok 2",)]


@pytest.mark.parametrize("encoding, text", [
    ("cp1251", "Очень долго ждали доставку"), ("iso-8859-2", "Zażółć gęślą jaźń"),
    ("shift_jis", "ご意見ありがとうございます"), ("koi8-r", "Спасибо"), ("cp1250", "Příliš žluťoučký kůň")])
def test_a_stated_encoding_is_read_exactly(encoding, text, small_copy, tmp_path):
    """Refused without ``--encoding`` (named, see MORE), read exactly with it."""
    a = customer_ids(small_copy)[0]
    data = survey(ROW.replace("T1", "ENC1") + text).replace("{a}", a).encode(encoding)
    path = write(tmp_path, data)
    with pytest.raises(ImportRejected, match="not UTF-8"):
        importer.import_file(path, SR, db=small_copy)
    rep = importer.import_file(path, SR, db=small_copy, encoding=encoding.replace("_", "-"))
    assert rep.inserted == 1
    assert _one(small_copy, "SELECT verbatim FROM survey_responses WHERE response_id = 'ENC1'") == [(text,)]


@pytest.mark.parametrize("variant", ["\u200b{a}", "\ufeff{a}", "{a}\u200d", "fullwidth", "{a}\t", "\t{a}", "{a} ",
                                     "{a}\u00a0"])
def test_invisible_and_full_width_ids_are_normalised_and_reported(variant, small_copy, tmp_path):
    a = customer_ids(small_copy)[0]
    value = ("".join(chr(ord(c) + 0xFEE0) for c in a) if variant == "fullwidth" else variant.format(a=a))
    n = _one(small_copy, "SELECT count(*) FROM customers")[0][0]
    text = f'response_id,customer_id,responded_on,survey,nps\nN1,"{value}",2024-01-01,relationship,9\n'
    rep = importer.import_file(write(tmp_path, text), SR, db=small_copy)
    assert _one(small_copy, "SELECT customer_id FROM survey_responses WHERE response_id = 'N1'") == [(a,)]
    assert _one(small_copy, "SELECT count(*) FROM customers")[0][0] == n  # no look-alike customer
    assert any("customer_id: 1 value(s) normalised" in w for w in rep.warnings), rep.warnings


def test_a_trailing_tab_in_an_id_is_reported_with_the_count_and_the_first_row(small_copy, tmp_path):
    """Issue 19 item 12: a trailing tab used to be trimmed with every value's whitespace, silently.
    It is still trimmed (the id is the customer's), and the note counts the rows and names the
    first row and the column."""
    a, b, _ = customer_ids(small_copy)
    text = ("response_id,customer_id,responded_on,survey,nps\n"
            f"W1,{a},2024-01-01,relationship,9\nW2,\"{a}\t\",2024-01-02,relationship,8\n"
            f"W3,\"{b}\t\",2024-01-03,relationship,7\n")
    n = _one(small_copy, "SELECT count(*) FROM customers")[0][0]
    rep = importer.import_file(write(tmp_path, text), SR, db=small_copy)
    assert rep.inserted == 3
    assert _one(small_copy, "SELECT customer_id FROM survey_responses WHERE response_id IN ('W2', 'W3') ORDER BY 1"
                ) == [(a,), (b,)]
    assert _one(small_copy, "SELECT count(*) FROM customers")[0][0] == n  # no look-alike (stub) customer
    note = next(w for w in rep.warnings if w.startswith("customer_id:"))
    assert "2 value(s) normalised" in note and "trimmed" in note and f"row 3 '{a}\\t'" in note, note


def test_a_header_with_a_zero_width_space_keeps_its_column(small_copy, tmp_path):
    a = customer_ids(small_copy)[0]
    text = f"response_id,customer_id,responded_on,survey,\u200bnps\nZ1,{a},2024-01-01,relationship,7\n"
    rep = importer.import_file(write(tmp_path, text), SR, db=small_copy)
    assert _one(small_copy, "SELECT nps FROM survey_responses WHERE response_id = 'Z1'") == [(7,)]
    assert any("invisible" in w for w in rep.warnings)


def test_a_long_verbatim_over_several_lines_is_not_taken_for_swallowed_rows(small_copy, tmp_path):
    a = customer_ids(small_copy)[0]
    text = survey(ROW.replace("T1", "V1") + '"First, the parcel was late.\nSecond, it was, frankly, damaged.\n\nThird: no reply."')
    assert importer.import_file(write(tmp_path, text.replace("{a}", a)), SR, db=small_copy).inserted == 1


def test_iso_date_times_keep_the_date_as_written(small_copy, tmp_path):
    a = customer_ids(small_copy)[0]
    rows = [f"D1,{a},2024-03-01T00:30:00+05:00,relationship,,9,,", f"D2,{a},2024-03-01 23:59:59Z,relationship,,9,,",
            f"D3,{a},2024-3-1,relationship,,9,,", f"D4,{a},2024/03/01 10:00,relationship,,9,,"]
    importer.import_file(write(tmp_path, survey(*rows)), SR, db=small_copy)
    got = _one(small_copy, "SELECT DISTINCT responded_on::VARCHAR FROM survey_responses WHERE response_id LIKE 'D_'")
    assert got == [("2024-03-01",)]


def test_xlsx_reads_the_active_visible_sheet_and_keeps_18_digit_ids(small_copy, tmp_path):
    a = customer_ids(small_copy)[0]
    build = xlsx([["customer_id", "segment", "region", "acquired_on", "contract"],
                  [999999999999999999, "smb", "north", "2020-01-01", "contractual"]],
                 hidden_first=[["customer_id", "segment", "region", "acquired_on", "contract"],
                               ["HIDDEN1", "smb", "north", "2020-01-01", "contractual"]],
                 patch=(b"<v>1e+18</v>", b"<v>123456789012345678</v>"))
    data = build(tmp_path, a, a)
    sheet = zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet2.xml")
    assert b"<v>123456789012345678</v>" in sheet  # the cell holds all 18 digits
    rep = importer.import_file(write(tmp_path, data, "c.xlsx"), "customers", db=small_copy)
    assert rep.inserted == 1
    assert _one(small_copy, "SELECT count(*) FROM customers WHERE customer_id = '123456789012345678'") == [(1,)]
    assert _one(small_copy, "SELECT count(*) FROM customers WHERE customer_id = 'HIDDEN1'") == [(0,)]
    # the hidden sheet only when asked for by name
    rep = importer.import_file(write(tmp_path, data, "c.xlsx"), "customers", db=small_copy,
                               options=importer.ImportOptions(sheet="Old"))
    assert _one(small_copy, "SELECT count(*) FROM customers WHERE customer_id = 'HIDDEN1'") == [(1,)]


def test_parquet_float_ids_and_zoned_timestamps(small_copy, tmp_path):
    """``77001.0`` reads as ``77001`` (reported); a timestamp with a zone gives the date in that
    zone: 2024-03-01 00:30 in Paris is stored in the file as 2024-02-29 23:30 UTC."""
    import datetime as dt

    new = {"customer_id": pa.array([77001.0, 77002.0]), "segment": pa.array(["smb", "smb"]),
           "region": pa.array(["north", "north"]),
           "acquired_on": pa.array([dt.datetime(2024, 2, 29, 23, 30, tzinfo=dt.UTC)] * 2,
                                   pa.timestamp("us", tz="Europe/Paris")),
           "contract": pa.array(["contractual", "contractual"])}
    path = tmp_path / "c.parquet"
    pq.write_table(pa.table(new), path)
    rep = importer.import_file(path, "customers", db=small_copy)
    assert rep.inserted == 2
    assert any("77001.0" in w and "77001" in w for w in rep.warnings), rep.warnings
    assert any("Europe/Paris" in w for w in rep.warnings), rep.warnings
    got = _one(small_copy, "SELECT customer_id, acquired_on::VARCHAR FROM customers WHERE customer_id LIKE '7700_' ORDER BY 1")
    assert got == [("77001", "2024-03-01"), ("77002", "2024-03-01")]


def test_parent_checks_that_apply_only_once_the_parent_table_has_rows(tmp_path):
    """Partial data keeps importing: a complaint's department is checked against ``departments``
    and a follow-up's response against ``survey_responses`` only when those tables hold rows."""
    db = tmp_path / "fresh.duckdb"
    importer.import_file(write(tmp_path, "customer_id,segment,region,acquired_on,contract\n"
                               "C1,smb,north,2020-01-01,contractual\n", "c.csv"), "customers", db=db)
    rep = importer.import_file(write(tmp_path, "complaint_id,customer_id,opened_on,category,department\n"
                                     "K1,C1,2024-01-01,billing,Anything\n", "k.csv"), "complaints", db=db)
    assert rep.inserted == 1
    rep = importer.import_file(write(tmp_path, "followup_id,customer_id,response_id,contacted_on\n"
                                     "F1,C1,R-LATER,2024-01-02\n", "f.csv"), "followups", db=db)
    assert rep.inserted == 1
    importer.import_file(write(tmp_path, "department\nbilling\n", "d.csv"), "departments", db=db)
    with pytest.raises(ImportRejected, match="unknown department"):
        importer.import_file(write(tmp_path, "complaint_id,customer_id,opened_on,category,department\n"
                                   "K2,C1,2024-01-01,billing,Anything\n", "k2.csv"), "complaints", db=db)
