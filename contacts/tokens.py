"""Blind-index tokens for segmentable contact attributes (docs/architecture.md).

Every token is ``crypto.blind_token(<token field>, <normalized value>)``. The token
field is part of the key derivation, so equal values of different attributes never
share a token.

Dates use hierarchical tokens: each date yields ``C<cc>`` (century), ``X<yyy>``
(decade), ``Y<yyyy>``, ``M<yyyy-mm>`` and ``D<yyyy-mm-dd>``; a closed range ``[lo, hi]``
is covered by the minimal set of whole centuries, decades, years, months and single
days (:func:`date_range_values`), which makes every date and age comparison exact while
the database only sees opaque integers. The century and decade levels (token version 2)
keep broad ranges short: "age >= 50" is ~30 tokens instead of ~95, and a GIN scan's cost
grows with the number of tokens it ORs for each candidate row.

:data:`TOKEN_VERSION` names the token layout the code writes. Contacts tokenized by an
older layout lack the coarse levels; ``manage.py contacts_reindex`` rewrites them and
records the version in the database (:class:`contacts.models.TokenIndexState`). Until
then segments compile ranges without the coarse levels (``coarse=False``), which the
older layout answers exactly.

``bench/segments.py`` reuses these functions so benchmark data is tokenized exactly
like data written by the services.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from functools import lru_cache

from luxmail import crypto

# The bounded domain of every date attribute: validation refuses dates outside it and
# open-ended ranges (``gte``, ``more_than_days_ago``) are closed at its ends.
DATE_MIN = dt.date(1900, 1, 1)
DATE_MAX = dt.date(2099, 12, 31)

EXISTS_SUFFIX = "#exists"

# The token layout written by this code: 1 = year/month/day dates, 2 = + decade/century.
TOKEN_VERSION = 2


@lru_cache(maxsize=65536)
def token(field: str, value: str) -> int:
    """The token of one normalized value of ``field`` (cached: values repeat a lot)."""
    return crypto.blind_token(field, value)


def exists_token(field: str) -> int:
    """The token every contact that has a value for ``field`` carries."""
    return token(field + EXISTS_SUFFIX, "1")


def date_values(value: dt.date) -> tuple[str, ...]:
    """The hierarchy levels of a date: century, decade, year, year-month, day."""
    year = value.year
    return (
        f"C{year // 100:02d}",
        f"X{year // 10:03d}",
        f"Y{year:04d}",
        f"M{year:04d}-{value.month:02d}",
        f"D{value.isoformat()}",
    )


def date_tokens(field: str, value: dt.date) -> list[int]:
    return [token(field, item) for item in date_values(value)]


def _next_month(value: dt.date) -> dt.date:
    return dt.date(value.year + (value.month == 12), value.month % 12 + 1, 1)


def _whole_years(day: dt.date, hi: dt.date, span: int) -> bool:
    """``day`` starts an aligned block of ``span`` years that ends on or before ``hi``."""
    return (
        (day.month, day.day) == (1, 1)
        and day.year % span == 0
        and dt.date(day.year + span - 1, 12, 31) <= hi
    )


def date_range_values(lo: dt.date, hi: dt.date, *, coarse: bool = True) -> list[str]:
    """The fewest hierarchy values whose dates are exactly ``[lo, hi]`` (inclusive).

    Greedy from ``lo``: the largest aligned block starting there that fits — a whole
    century, decade (only with ``coarse``), year, month, else one day; the blocks nest,
    so the greedy cover is minimal. Both ends are clamped to the date domain; an empty
    range gives an empty list. ``coarse=False`` gives the year/month/day cover that
    token version 1 data answers.
    """
    lo = max(lo, DATE_MIN)
    hi = min(hi, DATE_MAX)
    values: list[str] = []
    day = lo
    one_day = dt.timedelta(days=1)
    while day <= hi:
        if coarse and _whole_years(day, hi, 100):
            values.append(f"C{day.year // 100:02d}")
            day = dt.date(day.year + 100, 1, 1)
        elif coarse and _whole_years(day, hi, 10):
            values.append(f"X{day.year // 10:03d}")
            day = dt.date(day.year + 10, 1, 1)
        elif _whole_years(day, hi, 1):
            values.append(f"Y{day.year:04d}")
            day = dt.date(day.year + 1, 1, 1)
        elif day.day == 1 and _next_month(day) - one_day <= hi:
            values.append(f"M{day.year:04d}-{day.month:02d}")
            day = _next_month(day)
        else:
            values.append(f"D{day.isoformat()}")
            day += one_day
    return values


def date_range_tokens(field: str, lo: dt.date, hi: dt.date, *, coarse: bool = True) -> list[int]:
    return [token(field, item) for item in date_range_values(lo, hi, coarse=coarse)]


def years_ago(today: dt.date, years: int) -> dt.date:
    """``today`` minus ``years`` calendar years (29 February becomes 28 February).

    A person born on or before this date is at least ``years`` old today, with the
    usual convention that a 29 February birthday falls on 1 March in common years.
    """
    year = today.year - years
    try:
        return today.replace(year=year)
    except ValueError:
        return dt.date(year, 2, 28)


def age_on(birth_date: dt.date, today: dt.date) -> int:
    """Age in whole years on ``today`` (the reference definition the tokens implement)."""
    return (
        today.year
        - birth_date.year
        - ((today.month, today.day) < (birth_date.month, birth_date.day))
    )


def age_range(lo: int | None, hi: int | None, today: dt.date) -> tuple[dt.date, dt.date]:
    """The birth dates whose age today lies in ``[lo, hi]`` (either end may be open)."""
    latest = years_ago(today, lo) if lo is not None else DATE_MAX
    earliest = years_ago(today, hi + 1) + dt.timedelta(days=1) if hi is not None else DATE_MIN
    return earliest, latest


def text_tokens(field: str, values: Iterable[str]) -> list[int]:
    return [token(field, value) for value in values]
