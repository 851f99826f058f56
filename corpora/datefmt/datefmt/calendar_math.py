"""Proleptic Gregorian calendar arithmetic on plain integers.

Ordinals count days from 0001-01-01, which is ordinal 1.  Weekdays are
numbered 0 (Monday) to 6 (Sunday); ISO weekdays are 1 (Monday) to 7.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from .errors import RangeError

MIN_YEAR = 1
MAX_YEAR = 9999
MICROS_PER_SECOND = 1_000_000
MICROS_PER_MINUTE = 60 * MICROS_PER_SECOND
MICROS_PER_HOUR = 60 * MICROS_PER_MINUTE
MICROS_PER_DAY = 24 * MICROS_PER_HOUR

_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def is_leap_year(year: int) -> bool:
    """Return True for Gregorian leap years."""
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def check_year(year: int) -> None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise RangeError(f"year must be in {MIN_YEAR}..{MAX_YEAR}, got {year}")


def days_in_month(year: int, month: int) -> int:
    """Return the number of days in *month* of *year*."""
    if not 1 <= month <= 12:
        raise RangeError(f"month must be in 1..12, got {month}")
    if month == 2 and is_leap_year(year):
        return 29
    return _DAYS_IN_MONTH[month - 1]


def days_in_year(year: int) -> int:
    return 366 if is_leap_year(year) else 365


def validate_date(year: int, month: int, day: int) -> None:
    """Raise RangeError unless the three components form a real date."""
    check_year(year)
    limit = days_in_month(year, month)
    if not 1 <= day <= limit:
        raise RangeError(f"day must be in 1..{limit} for {year:04d}-{month:02d}, got {day}")


def validate_time(hour: int, minute: int, second: int = 0, microsecond: int = 0) -> None:
    """Raise RangeError unless the components form a valid clock time."""
    for name, value, limit in (("hour", hour, 23), ("minute", minute, 59),
                               ("second", second, 59), ("microsecond", microsecond, 999_999)):
        if not 0 <= value <= limit:
            raise RangeError(f"{name} must be in 0..{limit}, got {value}")


def day_of_year(year: int, month: int, day: int) -> int:
    """Return the 1-based position of the date within its year."""
    validate_date(year, month, day)
    return sum(days_in_month(year, m) for m in range(1, month)) + day


def from_day_of_year(year: int, yday: int) -> tuple[int, int]:
    """Return ``(month, day)`` for the *yday*-th day of *year*."""
    check_year(year)
    if not 1 <= yday <= days_in_year(year):
        raise RangeError(f"day of year must be in 1..{days_in_year(year)}, got {yday}")
    month = 1
    while yday > days_in_month(year, month):
        yday -= days_in_month(year, month)
        month += 1
    return month, yday


def _days_before_year(year: int) -> int:
    y = year - 1
    return y * 365 + y // 4 - y // 100 + y // 400


def to_ordinal(year: int, month: int, day: int) -> int:
    """Return the day number of a date, with 0001-01-01 as day 1."""
    return _days_before_year(year) + day_of_year(year, month, day)


MAX_ORDINAL = _days_before_year(MAX_YEAR + 1)


def from_ordinal(ordinal: int) -> tuple[int, int, int]:
    """Inverse of :func:`to_ordinal`."""
    if not 1 <= ordinal <= MAX_ORDINAL:
        raise RangeError(f"ordinal must be in 1..{MAX_ORDINAL}, got {ordinal}")
    n = ordinal - 1
    n400, n = divmod(n, 146_097)
    n100, n = divmod(n, 36_524)
    n4, n = divmod(n, 1_461)
    n1, n = divmod(n, 365)
    year = n400 * 400 + n100 * 100 + n4 * 4 + n1 + 1
    if n1 == 4 or n100 == 4:
        return year - 1, 12, 31
    month, day = from_day_of_year(year, n + 1)
    return year, month, day


def weekday(year: int, month: int, day: int) -> int:
    """Return the weekday, 0 for Monday through 6 for Sunday."""
    return (to_ordinal(year, month, day) + 6) % 7


def _week_one_monday(iso_year: int) -> int:
    jan4 = _days_before_year(iso_year) + 4
    return jan4 - (jan4 + 6) % 7


def weeks_in_iso_year(iso_year: int) -> int:
    """Return 52 or 53, the number of ISO weeks in *iso_year*."""
    check_year(iso_year)
    return (_week_one_monday(iso_year + 1) - _week_one_monday(iso_year)) // 7


def iso_calendar(year: int, month: int, day: int) -> tuple[int, int, int]:
    """Return ``(iso_year, iso_week, iso_weekday)`` for a date."""
    ordinal = to_ordinal(year, month, day)
    iso_year = year
    week_one = _week_one_monday(year)
    if ordinal < week_one:
        iso_year -= 1
        week_one = _week_one_monday(iso_year)
    elif ordinal >= _week_one_monday(year + 1):
        iso_year += 1
        week_one = _week_one_monday(iso_year)
    return iso_year, (ordinal - week_one) // 7 + 1, (ordinal + 6) % 7 + 1


def from_iso_calendar(iso_year: int, week: int, iso_weekday: int) -> tuple[int, int, int]:
    """Return the ``(year, month, day)`` for an ISO week date."""
    limit = weeks_in_iso_year(iso_year)
    if not 1 <= week <= limit:
        raise RangeError(f"week must be in 1..{limit} for {iso_year}, got {week}")
    if not 1 <= iso_weekday <= 7:
        raise RangeError(f"ISO weekday must be in 1..7, got {iso_weekday}")
    return from_ordinal(_week_one_monday(iso_year) + (week - 1) * 7 + iso_weekday - 1)


def quarter_of(month: int) -> int:
    """Return the quarter (1-4) that contains *month*."""
    if not 1 <= month <= 12:
        raise RangeError(f"month must be in 1..12, got {month}")
    return (month - 1) // 3 + 1


def date_to_ordinal(value: date) -> int:
    return to_ordinal(value.year, value.month, value.day)


def date_from_ordinal(ordinal: int) -> date:
    return date(*from_ordinal(ordinal))


def date_weekday(value: date) -> int:
    return weekday(value.year, value.month, value.day)


def time_to_micros(value: time | datetime) -> int:
    """Return microseconds since midnight for the clock part of *value*."""
    return (value.hour * MICROS_PER_HOUR + value.minute * MICROS_PER_MINUTE
            + value.second * MICROS_PER_SECOND + value.microsecond)


def split_micros(micros: int) -> tuple[int, int, int, int]:
    """Split microseconds since midnight into ``(hour, minute, second, micro)``."""
    if not 0 <= micros < MICROS_PER_DAY:
        raise RangeError(f"time of day out of range: {micros} microseconds")
    hour, rest = divmod(micros, MICROS_PER_HOUR)
    minute, rest = divmod(rest, MICROS_PER_MINUTE)
    second, micro = divmod(rest, MICROS_PER_SECOND)
    return hour, minute, second, micro


def offset_minutes(value: date | time) -> int | None:
    """Return the fixed UTC offset of an aware value in minutes, or None."""
    if isinstance(value, (datetime, time)) and value.tzinfo is not None:
        offset = value.utcoffset()
        if offset is not None:
            return offset // timedelta(minutes=1)
    return None
