"""Date arithmetic: days, months, durations, weekdays and business days.

Functions accept ``date`` or ``datetime`` values and return the same type,
keeping the clock time and any fixed UTC offset of a datetime.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Collection, Iterator

from .calendar_math import (MICROS_PER_DAY, MICROS_PER_MINUTE, date_to_ordinal, days_in_month,
                            from_ordinal, offset_minutes, quarter_of, split_micros,
                            time_to_micros, weekday)
from .duration import Duration
from .errors import DateError, RangeError

WEEKEND = frozenset({5, 6})


def _rebuild(value: date, year: int, month: int, day: int) -> date:
    if isinstance(value, datetime):
        return datetime(year, month, day, value.hour, value.minute, value.second,
                        value.microsecond, tzinfo=value.tzinfo)
    return date(year, month, day)


def _weekday_of(value: date) -> int:
    return weekday(value.year, value.month, value.day)


def add_days(value: date, days: int) -> date:
    """Return *value* moved by a whole number of days."""
    return _rebuild(value, *from_ordinal(date_to_ordinal(value) + days))


def add_months(value: date, months: int) -> date:
    """Move by calendar months, clamping the day to the end of shorter months.

    ``add_months(date(2024, 1, 31), 1)`` is ``2024-02-29``.
    """
    index = value.year * 12 + (value.month - 1) + months
    year, month_index = divmod(index, 12)
    month = month_index + 1
    if not 1 <= year <= 9999:
        raise RangeError(f"year {year} is out of range")
    return _rebuild(value, year, month, min(value.day, days_in_month(year, month)))


def add_years(value: date, years: int) -> date:
    """Move by whole years; 29 February becomes 28 February in common years."""
    return add_months(value, 12 * years)


def add_duration(value: date, duration: Duration) -> date:
    """Apply a duration: first its months, then its exact part.

    A plain date only accepts durations whose exact part is whole days.
    """
    moved = add_months(value, duration.months) if duration.months else value
    if not isinstance(moved, datetime):
        days, rest = divmod(duration.micros, MICROS_PER_DAY)
        if rest:
            raise DateError("cannot add a duration with a time part to a date")
        return add_days(moved, days)
    day_shift, micros = divmod(time_to_micros(moved) + duration.micros, MICROS_PER_DAY)
    year, month, day = from_ordinal(date_to_ordinal(moved) + day_shift)
    hour, minute, second, micro = split_micros(micros)
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=moved.tzinfo)


def subtract_duration(value: date, duration: Duration) -> date:
    return add_duration(value, -duration)


def _absolute_micros(value: date) -> tuple[int, bool]:
    micros = date_to_ordinal(value) * MICROS_PER_DAY
    if isinstance(value, datetime):
        micros += time_to_micros(value)
        offset = offset_minutes(value)
        if offset is not None:
            return micros - offset * MICROS_PER_MINUTE, True
    return micros, False


def difference(start: date, end: date) -> Duration:
    """Return the exact duration from *start* to *end* (negative if earlier)."""
    start_micros, start_aware = _absolute_micros(start)
    end_micros, end_aware = _absolute_micros(end)
    if start_aware != end_aware:
        raise DateError("cannot mix values with and without a UTC offset")
    return Duration(0, end_micros - start_micros)


def days_between(start: date, end: date) -> int:
    """Return the number of calendar days from *start* to *end*."""
    return date_to_ordinal(end) - date_to_ordinal(start)


def _sort_key(value: date) -> tuple[int, int]:
    clock = time_to_micros(value) if isinstance(value, datetime) else 0
    return date_to_ordinal(value), clock


def months_between(start: date, end: date) -> int:
    """Return the number of whole months from *start* to *end*.

    A month is complete when ``add_months(start, n)`` does not pass *end*,
    so the result is truncated toward zero.
    """
    months = (end.year - start.year) * 12 + (end.month - start.month)
    if months > 0 and _sort_key(add_months(start, months)) > _sort_key(end):
        months -= 1
    elif months < 0 and _sort_key(add_months(start, months)) < _sort_key(end):
        months += 1
    return months


def calendar_difference(start: date, end: date) -> tuple[int, int, int]:
    """Return ``(years, months, days)`` between two dates.

    When *end* is before *start* every component is negative.
    """
    if _sort_key(end) < _sort_key(start):
        years, months, days = calendar_difference(end, start)
        return -years, -months, -days
    total_months = months_between(start, end)
    anchor = add_months(start, total_months)
    years, months = divmod(total_months, 12)
    return years, months, days_between(anchor, end)


def age(birth: date, on: date) -> int:
    """Return the age in completed years on the date *on*."""
    if _sort_key(on) < _sort_key(birth):
        raise DateError("the reference date is before the birth date")
    return calendar_difference(birth, on)[0]


def next_weekday(value: date, target: int, include_today: bool = False) -> date:
    """Return the next date falling on weekday *target* (0 = Monday)."""
    if not 0 <= target <= 6:
        raise RangeError(f"weekday must be in 0..6, got {target}")
    ahead = (target - _weekday_of(value)) % 7
    if ahead == 0 and not include_today:
        ahead = 7
    return add_days(value, ahead)


def previous_weekday(value: date, target: int, include_today: bool = False) -> date:
    """Return the most recent date before *value* falling on weekday *target*."""
    if not 0 <= target <= 6:
        raise RangeError(f"weekday must be in 0..6, got {target}")
    back = (_weekday_of(value) - target) % 7
    if back == 0 and not include_today:
        back = 7
    return add_days(value, -back)


def nth_weekday(year: int, month: int, target: int, n: int) -> date:
    """Return the n-th *target* weekday of a month; negative n counts from the end.

    ``nth_weekday(2024, 11, 3, 4)`` is the fourth Thursday of November 2024.
    """
    if n == 0:
        raise RangeError("n must not be zero")
    if n > 0:
        first = next_weekday(date(year, month, 1), target, include_today=True)
        result = add_days(first, 7 * (n - 1))
    else:
        last = previous_weekday(date(year, month, days_in_month(year, month)), target,
                                include_today=True)
        result = add_days(last, 7 * (n + 1))
    if (result.year, result.month) != (year, month):
        raise RangeError(f"{year:04d}-{month:02d} has no weekday number {n} for day {target}")
    return result


def start_of_week(value: date, first_day: int = 0) -> date:
    """Return the first day of the week containing *value*."""
    return previous_weekday(value, first_day, include_today=True)


def start_of_month(value: date) -> date:
    return _rebuild(value, value.year, value.month, 1)


def end_of_month(value: date) -> date:
    return _rebuild(value, value.year, value.month, days_in_month(value.year, value.month))


def start_of_quarter(value: date) -> date:
    first_month = 3 * (quarter_of(value.month) - 1) + 1
    return _rebuild(value, value.year, first_month, 1)


def end_of_quarter(value: date) -> date:
    last_month = 3 * quarter_of(value.month)
    return _rebuild(value, value.year, last_month, days_in_month(value.year, last_month))


def date_range(start: date, stop: date, step: int = 1) -> Iterator[date]:
    """Yield dates from *start* up to but not including *stop*."""
    if step == 0:
        raise ValueError("step must not be zero")
    current, limit = date_to_ordinal(start), date_to_ordinal(stop)
    while (current < limit) if step > 0 else (current > limit):
        yield _rebuild(start, *from_ordinal(current))
        current += step


def month_sequence(start: date, count: int, step: int = 1) -> list[date]:
    """Return *count* dates *step* months apart, anchored on the start day.

    Each date is computed from *start*, so a month-end anchor is kept:
    31 Jan, 29 Feb, 31 Mar, ...
    """
    return [add_months(start, i * step) for i in range(count)]


def is_business_day(value: date, holidays: Collection[date] = (),
                    weekend: Collection[int] = WEEKEND) -> bool:
    """Return True when *value* is neither a weekend day nor a holiday."""
    plain = date(value.year, value.month, value.day)
    return _weekday_of(value) not in weekend and plain not in holidays


def _check_weekend(weekend: Collection[int]) -> None:
    if len(set(weekend) & set(range(7))) == 7:
        raise DateError("a week needs at least one business day")


def add_business_days(value: date, count: int, holidays: Collection[date] = (),
                      weekend: Collection[int] = WEEKEND) -> date:
    """Move by *count* business days; zero rolls forward to a business day."""
    _check_weekend(weekend)
    step = 1 if count >= 0 else -1
    current = value
    if count == 0:
        while not is_business_day(current, holidays, weekend):
            current = add_days(current, 1)
        return current
    remaining = abs(count)
    while remaining:
        current = add_days(current, step)
        if is_business_day(current, holidays, weekend):
            remaining -= 1
    return current


def business_days_between(start: date, end: date, holidays: Collection[date] = (),
                          weekend: Collection[int] = WEEKEND) -> int:
    """Count business days in ``[start, end)``; negative when *end* is earlier."""
    _check_weekend(weekend)
    first, last = date_to_ordinal(start), date_to_ordinal(end)
    sign = 1
    if last < first:
        first, last, sign = last, first, -1
    full_weeks, extra = divmod(last - first, 7)
    count = full_weeks * (7 - len(set(weekend)))
    base = first + full_weeks * 7
    count += sum(1 for k in range(extra) if (base + k + 6) % 7 not in weekend)
    holiday_ordinals = _holiday_ordinals(holidays, first, last)
    count -= sum(1 for o in holiday_ordinals if (o + 6) % 7 not in weekend)
    return sign * count


def _holiday_ordinals(holidays: Collection[date], first: int, last: int) -> set[int]:
    between = getattr(holidays, "dates_between", None)
    if between is not None:
        candidates = between(date(*from_ordinal(first)), date(*from_ordinal(last)))
    else:
        candidates = holidays
    return {o for o in map(date_to_ordinal, candidates) if first <= o < last}


def roll(value: date, convention: str = "following", holidays: Collection[date] = (),
         weekend: Collection[int] = WEEKEND) -> date:
    """Adjust a date that is not a business day.

    ``following`` moves forward, ``preceding`` moves back and
    ``modified_following`` moves forward unless that changes the month, in
    which case it moves back.
    """
    if convention not in ("following", "preceding", "modified_following"):
        raise ValueError(f"unknown convention {convention!r}")
    _check_weekend(weekend)
    if is_business_day(value, holidays, weekend):
        return value
    if convention == "preceding":
        return add_business_days(value, -1, holidays, weekend)
    forward = add_business_days(value, 1, holidays, weekend)
    if convention == "modified_following" and forward.month != value.month:
        return add_business_days(value, -1, holidays, weekend)
    return forward
