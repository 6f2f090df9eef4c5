"""Calendar periods and the date ranges the sidebar offers by name.

A dashboard's reader rarely types two dates: they ask for "the last 12 months" or "last quarter".
:data:`PRESETS` names those ranges; :func:`preset_range` turns a name into the first and last day
within the data's dates, and :func:`preset_of` names the range two dates make (``"Custom"`` when
none). The bench measures the same ranges (:func:`cxmetrics.tools.bench.views`). Plain dates only:
no pandas, so the sidebar and the CLI can use it without loading it.
"""

from __future__ import annotations

import calendar
import datetime as dt

ALL, LAST_12_MONTHS, LAST_QUARTER, YEAR_TO_DATE, CUSTOM = (
    "All data", "Last 12 months", "Last complete quarter", "Year to date", "Custom")
#: The named ranges, in the order the sidebar lists them (``Custom``: the dates as typed).
PRESETS = (ALL, LAST_12_MONTHS, LAST_QUARTER, YEAR_TO_DATE, CUSTOM)


def add_months(d: dt.date, months: int) -> dt.date:
    """``d`` moved by whole calendar months, the day kept or clamped to the month's last
    (31 January + 1 month = 28 or 29 February), as pandas' ``DateOffset(months=…)``.

    >>> add_months(dt.date(2024, 3, 31), -1), add_months(dt.date(2026, 9, 30), -12)
    (datetime.date(2024, 2, 29), datetime.date(2025, 9, 30))
    """
    m = d.year * 12 + d.month - 1 + months
    year, month = divmod(m, 12)
    return dt.date(year, month + 1, min(d.day, calendar.monthrange(year, month + 1)[1]))


def period_start(d: dt.date, period: str) -> dt.date:
    """The first day of the ``period`` (week, month or quarter; DuckDB's ``date_trunc``: weeks
    start on Monday) holding ``d``."""
    if period == "week":
        return d - dt.timedelta(days=d.weekday())
    if period == "month":
        return d.replace(day=1)
    if period == "quarter":
        return d.replace(month=3 * ((d.month - 1) // 3) + 1, day=1)
    raise ValueError(f"unknown period {period!r}")


def next_period_start(d: dt.date, period: str) -> dt.date:
    """The first day of the period after the one starting on ``d``."""
    if period == "week":
        return d + dt.timedelta(days=7)
    return add_months(d, 1 if period == "month" else 3)


def preset_range(name: str, lo: dt.date, hi: dt.date) -> tuple[dt.date, dt.date] | None:
    """The first and last day of the named range in data whose dates run from ``lo`` to ``hi``;
    None for ``Custom``, or when the data hold no such range (no calendar quarter inside them).

    * ``All data``: ``lo`` to ``hi``.
    * ``Last 12 months``: the 12 months that end on ``hi`` (from the day after ``hi`` a year
      earlier), or from ``lo`` when the data are shorter.
    * ``Last complete quarter``: the latest calendar quarter the data cover from its first day to
      its last (the one ending on ``hi`` when ``hi`` is a quarter's last day).
    * ``Year to date``: 1 January of ``hi``'s year (or ``lo``, when later) to ``hi``.

    >>> preset_range(LAST_12_MONTHS, dt.date(2023, 10, 1), dt.date(2026, 9, 30))
    (datetime.date(2025, 10, 1), datetime.date(2026, 9, 30))
    >>> preset_range(LAST_QUARTER, dt.date(2023, 10, 1), dt.date(2026, 9, 29))
    (datetime.date(2026, 4, 1), datetime.date(2026, 6, 30))
    """
    if name == ALL:
        return lo, hi
    if name == LAST_12_MONTHS:
        return max(lo, add_months(hi, -12) + dt.timedelta(days=1)), hi
    if name == LAST_QUARTER:
        start = period_start(hi + dt.timedelta(days=1), "quarter")  # the quarter after the last one complete
        start = add_months(start, -3)
        return (start, add_months(start, 3) - dt.timedelta(days=1)) if start >= lo else None
    if name == YEAR_TO_DATE:
        return max(lo, dt.date(hi.year, 1, 1)), hi
    if name == CUSTOM:
        return None
    raise ValueError(f"unknown date range {name!r}: one of {', '.join(PRESETS)}")


def preset_of(d_from: dt.date, d_to: dt.date, lo: dt.date, hi: dt.date) -> str:
    """The name of the range ``d_from`` to ``d_to`` in data from ``lo`` to ``hi``: the first of
    :data:`PRESETS` that gives exactly these days, else ``Custom``."""
    for name in PRESETS[:-1]:
        if preset_range(name, lo, hi) == (d_from, d_to):
            return name
    return CUSTOM


#: The named ranges as a link spells them (``?range=last-12-months``).
SLUGS = {"all": ALL, "last-12-months": LAST_12_MONTHS, "last-quarter": LAST_QUARTER, "year-to-date": YEAR_TO_DATE}
