"""Strict reading of the values in an imported file: text encodings, identifiers and dates.

The importer (:mod:`cxmetrics.importer`) calls these helpers while it parses a file; each either
returns a clean value, or records a :class:`~cxmetrics.importer.Problem`-shaped tuple naming the
row and column, so that nothing is guessed silently:

* **Encodings.** A file that is not UTF-8 is read as Latin-1 only when it looks like Western
  European text; Cyrillic (CP1251), Central European (ISO-8859-2) and Japanese (Shift-JIS) bytes
  are recognised by the letters they decode to and refused with the encoding to pass, never
  turned into mojibake (the heuristics follow the byte-distribution idea of Li & Momoi, "A
  composite approach to language/encoding detection", 19th International Unicode Conference,
  2001, reduced to the few encodings our users meet).
* **Identifiers.** Unicode NFKC normalisation (Unicode Standard Annex #15) folds full-width and
  compatibility characters; invisible format characters (category Cf: zero-width space, BOM,
  joiners, direction marks) are removed, and the change is reported; an identifier that mixes
  ASCII with Cyrillic or Greek look-alike letters (Unicode Technical Standard #39, "mixed-script
  confusables") is refused with its row.
* **Dates.** ISO 8601 dates and date-times are checked field by field (hour 24 and words such as
  ``epoch`` are refused); a date-time with a UTC offset gives the date as written, in the zone it
  was written in (the offset is not applied, so no day moves).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

# ----------------------------------------------------------------------------- encodings

#: Encodings accepted by ``--encoding`` (Python codec names; aliases such as ``iso-8859-2``,
#: ``windows-1251`` or ``shift-jis`` are resolved with :func:`codecs.lookup`).
EXPLICIT_ENCODINGS = (
    "utf-8", "latin-1", "cp1252", "cp850", "cp437", "iso8859-15", "mac-roman",
    "cp1250", "iso8859-2", "cp1251", "iso8859-5", "koi8-r", "cp1253", "iso8859-7", "cp1254",
    "iso8859-9", "shift_jis", "cp932", "euc_jp", "gb18030", "big5",
)

#: Symbols Latin-1 text uses between words, never inside one.
_WESTERN_SYMBOLS = set("«»°£¥§©®±·¿¡×÷µ¶ªº¹²³¼½¾¢¤¦¨¯´¸¬\xa0")


def western_implausible(text: str) -> int | None:
    """Index of the first character that makes ``text`` (decoded as Latin-1) unlikely to be
    Western European, or None when it reads plausibly.

    Western languages rarely write three accented letters in a row, and never put a symbol such as
    ``³`` or ``¿`` between two letters of a word; Cyrillic or Central European bytes read as
    Latin-1 do both (``Ïðèâåò`` for ``Привет``, ``Za¿ó³æ`` for ``Zażółć``).

    Examples
    --------
    >>> western_implausible("Très rapide, ça va") is None
    True
    >>> western_implausible("Привет".encode("cp1251").decode("latin-1"))
    0
    """
    run = 0
    for i, ch in enumerate(text):
        if ord(ch) < 128:
            run = 0
            continue
        if ch.isalpha():
            run += 1
            if run >= 3:
                return i - 2
        else:
            run = 0
            if (ch in _WESTERN_SYMBOLS and 0 < i < len(text) - 1 and text[i - 1].isalpha()
                    and text[i + 1].isalpha()):
                return i
    return None


def _share(text: str, pred) -> float:
    high = [ch for ch in text if ord(ch) >= 128]
    return sum(1 for ch in high if pred(ch)) / len(high) if high else 0.0


def _japanese(ch: str) -> bool:  # kana, kanji, full-width forms (not half-width katakana)
    return "\u3000" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff" or "\uff01" <= ch <= "\uff5e"


def _cyrillic(ch: str) -> bool:
    return "\u0400" <= ch <= "\u04ff"


def _cyrillic_vowel_share(text: str) -> float:
    """Share of vowels among the Cyrillic letters: about 0.4 in Russian text decoded right, much
    less when KOI8-R bytes are read as Windows-1251 or the other way round (the two order the
    alphabet differently)."""
    letters = [ch.lower() for ch in text if _cyrillic(ch)]
    return sum(ch in "аеёиоуыэюяіїєў" for ch in letters) / len(letters) if letters else 0.0


_CENTRAL = set("ąćęłńśźżĄĆĘŁŃŚŹŻčďěňřšťůžČĎĚŇŘŠŤŮŽőűŐŰăâîșțĂÂÎȘȚŞşĹĺŔŕľĽ")


def guess_legacy(data: bytes) -> tuple[str, str] | None:
    """The most likely legacy encoding of ``data`` (which is not valid UTF-8): ``(codec, name)``.

    Only encodings whose decoded letters are of one script are considered: Shift-JIS (kana and
    kanji), Windows-1251 (Cyrillic), ISO-8859-2 (Central European letters), Windows-1252 (bytes
    0x80–0x9F used as curly quotes and dashes). None when nothing fits well.

    Examples
    --------
    >>> guess_legacy("Очень долго".encode("cp1251"))
    ('cp1251', 'Windows-1251 (Cyrillic)')
    >>> guess_legacy("ご意見".encode("shift_jis"))
    ('shift_jis', 'Shift-JIS (Japanese)')
    >>> guess_legacy("Livr\u00e9 en retard, d\u00e9\u00e7u".encode("cp1252") + " d\u00e9j\u00e0".encode("cp850"))
    ('cp1252', 'Windows-1252')
    """
    cyrillic = []
    for codec, name in (("cp1251", "Windows-1251 (Cyrillic)"), ("koi8-r", "KOI8-R (Cyrillic)")):
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        # Cyrillic text writes words: runs of Cyrillic letters. Accented Western letters read as
        # Cyrillic stand alone between ASCII letters (French "pét" in cp1252 reads "pйt").
        if _share(text, _cyrillic) >= 0.8 and re.search(r"[\u0400-\u04ff]{3}", text):
            cyrillic.append((_cyrillic_vowel_share(text), codec, name))
    if cyrillic:
        _, codec, name = max(cyrillic)
        return codec, name
    candidates = (
        ("shift_jis", "Shift-JIS (Japanese)", _japanese, 0.9),
        ("iso8859-2", "ISO-8859-2 (Central European)", lambda ch: ch in _CENTRAL, 0.3),
    )
    for codec, name, pred, need in candidates:
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        if _share(text, pred) >= need:
            return codec, name
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        return None
    if re.search(rb"[\x80-\x9f]", data) and western_implausible(text) is None:
        return "cp1252", "Windows-1252"
    return None


# ----------------------------------------------------------------------------- identifiers

#: Invisible format characters removed from identifiers and headers (Unicode category Cf, plus
#: the Mongolian vowel separator and the soft hyphen).
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

#: Cyrillic and Greek capitals and small letters drawn like Latin ones (UTS #39 confusables).
_LOOKALIKE = {
    **dict(zip("АВСЕНІЈКМОРЅТХУаеорсухіјѕԁԛԝ", "ABCEHIJKMOPSTXYaeopcyxijsdqw", strict=True)),
    **dict(zip("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧοικνρτυχ", "ABEZHIKMNOPTYXoikvptux", strict=True)),
}


def clean_text(value: str) -> str:
    """NFKC-normalised ``value`` without invisible format characters, stripped.

    Examples
    --------
    >>> clean_text("\ufeffＣ０００１\u200b")
    'C0001'
    """
    return unicodedata.normalize("NFKC", _INVISIBLE.sub("", value)).strip()


def clean_header(name: str) -> str:
    """A header as it is matched against the contract: invisible characters removed, NFKC."""
    return clean_text(name)


def lookalike(value: str) -> str | None:
    """Why ``value`` is a look-alike identifier, or None.

    Refused: ASCII letters mixed with Cyrillic/Greek letters, or ASCII digits beside Cyrillic/Greek
    letters that are all drawn like Latin ones (``С0000001`` with a Cyrillic Es). A word written
    wholly in Cyrillic or Greek is accepted.

    Examples
    --------
    >>> lookalike("\u04210000001") is not None, lookalike("Сергей1") is None, lookalike("C0000001") is None
    (True, True, True)
    """
    foreign = [ch for ch in value if ch.isalpha() and ord(ch) >= 128
               and unicodedata.name(ch, "").split(" ")[0] in ("CYRILLIC", "GREEK")]
    if not foreign:
        return None
    ascii_letters = any(ch.isascii() and ch.isalpha() for ch in value)
    ascii_digits = any(ch.isascii() and ch.isdigit() for ch in value)
    if ascii_letters or (ascii_digits and all(ch in _LOOKALIKE for ch in foreign)):
        ch = next((c for c in foreign if c in _LOOKALIKE), foreign[0])
        like = f", drawn like Latin {_LOOKALIKE[ch]!r}" if ch in _LOOKALIKE else ""
        return (f"identifier mixes Latin letters or digits with {unicodedata.name(ch).split(' ')[0].title()} "
                f"{ch!r} (U+{ord(ch):04X}{like}): a look-alike of another id; retype it")
    return None


def clean_identifiers(values: list, lines: list[int], column: str, problems: list, notes: list[str],
                      strict: bool = True) -> list:
    """Normalise identifier values (NFKC, invisible characters removed) and report how many
    changed; with ``strict``, refuse control characters and mixed-script look-alikes by row.

    ``problems`` receives ``(line, column, reason, value)`` tuples (the importer turns them into
    its ``Problem``).
    """
    out, changed, first = [], 0, None
    for v, line in zip(values, lines, strict=True):
        if v is None or (v.isascii() and v.isprintable() and v[:1] != " " and v[-1:] != " "):
            out.append(v)  # the common case: nothing to clean
            continue
        nv = clean_text(v)
        if nv != v:
            changed += 1
            first = first or (line, v, nv)
        # spaces, tabs and line breaks around the value are trimmed (and reported); any other control
        # character, inside or at either end (vertical tab, unit separator …), is refused
        if strict and _CONTROL.search(_INVISIBLE.sub("", v).strip(" \t\r\n")):
            problems.append((line, column, "identifier contains a control character (tab, line break …)", v))
        elif strict and (why := lookalike(nv)):
            problems.append((line, column, why, v))
        out.append(nv or None)
    if changed:
        line, v, nv = first
        notes.append(f"{column}: {changed:,} value(s) normalised (surrounding spaces and tabs trimmed, invisible "
                     f"characters removed, full-width and compatibility forms folded, NFKC), e.g. row {line} "
                     f"{v!r} → {nv!r}")
    return out


# ----------------------------------------------------------------------------- dates

_ISO_FULL = re.compile(
    r"^(\d{4})([-/])(\d{1,2})\2(\d{1,2})"
    r"(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,]\d+)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?)?$")


def iso_day(value: str) -> tuple[str | None, str | None]:
    """``(YYYY-MM-DD, None)`` for an ISO 8601 date or date-time, else ``(None, reason)``.

    A date-time keeps the date as written: ``2024-03-01T00:30:00+05:00`` is 2024-03-01 (the day in
    the zone it was written in; the offset is not applied). Hour 24, minute 60 and second 60 are
    refused rather than rolled into the next day or minute.

    Examples
    --------
    >>> iso_day("2024-03-01T00:30:00+05:00")
    ('2024-03-01', None)
    >>> iso_day("2024-03-01T24:00:00")[1]
    'not a time of day (hours 0–23, minutes and seconds 0–59)'
    >>> iso_day("epoch")[1]
    'unparseable date (use YYYY-MM-DD)'
    """
    if len(value) == 10:  # the common case, YYYY-MM-DD, checked by the standard library
        try:
            return dt.date.fromisoformat(value).isoformat(), None
        except ValueError:
            pass
    m = _ISO_FULL.match(value.strip())
    if not m:
        return None, "unparseable date (use YYYY-MM-DD)"
    y, mo, d = int(m.group(1)), int(m.group(3)), int(m.group(4))
    try:
        day = dt.date(y, mo, d)
    except ValueError:
        return None, "not a calendar date"
    if m.group(5) is not None:
        h, mi, s = int(m.group(5)), int(m.group(6)), int(m.group(7) or 0)
        if h > 23 or mi > 59 or s > 59:
            return None, "not a time of day (hours 0–23, minutes and seconds 0–59)"
    return day.isoformat(), None


# ----------------------------------------------------------------------------- CSV records


def physical_lines(text: str) -> int:
    """Lines of ``text`` as a person counts them (CR, LF and CRLF endings; a last line without
    an ending counts)."""
    breaks = len(re.findall(r"\r\n|\r|\n", text))
    return breaks + (1 if text and text[-1] not in "\r\n" else 0)


def swallowed_records(records: list[tuple[int, list]], delim: str) -> tuple[int, int, str] | None:
    """A quoted value that holds whole records: ``(line, column position, first swallowed line)``.

    A stray opening quote makes the CSV reader run on to the next quote, so the lines in between
    become one field and their rows vanish. A line inside a multi-line value that, read alone, has
    exactly the header's number of fields is taken as a swallowed record (only for files of three
    or more columns, where a verbatim is unlikely to look like a whole record).
    """
    import csv

    width = len(records[0][1]) if records else 0
    if width < 3:
        return None
    for line, rec in records[1:]:
        for pos, value in enumerate(rec):
            if "\n" not in value and "\r" not in value:
                continue
            for part in re.split(r"\r\n|\r|\n", value)[1:]:
                if len(next(csv.reader([part], delimiter=delim), [])) == width:
                    return line, pos, part
    return None
