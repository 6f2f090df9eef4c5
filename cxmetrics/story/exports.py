"""Safe table exports (CSV and Excel) that a spreadsheet will not execute.

Cells beginning with ``=``, ``+``, ``-``, ``@``, tab or carriage return are prefixed with ``'``
(OWASP "CSV injection", CWE-1236), in CSV and Excel alike. Numbers stay numbers: only text is
touched, so a negative amount is still a number while the text ``-2+3`` becomes ``'-2+3``.
"""

from __future__ import annotations

import csv
import io
import re

from cxmetrics.core import lazy
from cxmetrics.store.schema import FORMULA_PREFIXES

pd = lazy.module("pandas")


def neutralise(value):
    """Prefix a formula-looking string with a quote; leave everything else alone.

    >>> neutralise("=1+2"), neutralise("-5"), neutralise(-5), neutralise("fine")
    ("'=1+2", "'-5", -5, 'fine')
    """
    if not isinstance(value, str):
        return value
    if value.startswith(FORMULA_PREFIXES):
        value = "'" + value
    # a spreadsheet may start a new cell or line after a CR or LF: neutralise there too
    return _AFTER_BREAK.sub(lambda m: m.group(1) + "'" + m.group(2), value)


_AFTER_BREAK = re.compile("(\r\n|\r|\n)([" + re.escape("".join(p for p in FORMULA_PREFIXES if p not in "\r")) + "])")


def safe_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` with every text cell (and column name) neutralised."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(neutralise)
    out.columns = [neutralise(str(c)) for c in out.columns]
    return out


def to_csv_bytes(df: pd.DataFrame) -> bytes:
    # CRLF line ends make the csv writer quote every field containing a CR or an LF
    return safe_frame(df).to_csv(index=False, lineterminator="\r\n",
                                 quoting=csv.QUOTE_MINIMAL).encode("utf-8-sig")


def to_xlsx_bytes(df: pd.DataFrame, sheet: str = "data") -> bytes:
    buf = io.BytesIO()
    frame = safe_frame(df)
    for col in frame.columns:  # Excel cannot store timezone-aware datetimes
        if isinstance(frame[col].dtype, pd.DatetimeTZDtype):
            frame[col] = frame[col].dt.tz_localize(None)
    with pd.ExcelWriter(buf, engine="openpyxl") as xw:
        frame.to_excel(xw, index=False, sheet_name=sheet[:31])
    return buf.getvalue()
