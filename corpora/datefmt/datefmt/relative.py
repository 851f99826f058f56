"""Relative descriptions ("in 3 days") and expressions ("next friday").

Nothing here consults a clock: every function takes the reference moment
as an argument.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Collection

from .arithmetic import (add_business_days, add_days, add_duration, add_months, days_between,
                         difference, end_of_month, end_of_quarter, months_between,
                         next_weekday, previous_weekday, start_of_month, start_of_quarter,
                         start_of_week)
from .calendar_math import MICROS_PER_SECOND
from .duration import parse_duration
from .errors import DateError, ParseError
from .names import parse_weekday, plural


def _phrase(count: int, unit: str, future: bool) -> str:
    text = plural(count, unit)
    return f"in {text}" if future else f"{text} ago"


def _describe_days(days: int, start: date, end: date) -> str:
    if days == 0:
        return "today"
    if days == 1:
        return "tomorrow"
    if days == -1:
        return "yesterday"
    future = days > 0
    if abs(days) < 14:
        return _phrase(abs(days), "day", future)
    months = months_between(start, end)
    if months == 0:
        return _phrase(abs(days) // 7, "week", future)
    if abs(months) < 12:
        return _phrase(abs(months), "month", future)
    return _phrase(abs(months) // 12, "year", future)


def describe_relative(target: date, reference: date) -> str:
    """Describe *target* as seen from *reference*, e.g. ``"3 hours ago"``.

    Plain dates are described in days and larger units; datetimes use
    seconds, minutes and hours for differences under a day.
    """
    if isinstance(target, datetime) != isinstance(reference, datetime):
        raise DateError("compare a date with a date or a datetime with a datetime")
    if not isinstance(target, datetime):
        return _describe_days(days_between(reference, target), reference, target)
    micros = difference(reference, target).micros
    seconds = abs(micros) // MICROS_PER_SECOND
    future = micros > 0
    if seconds < 45:
        return "just now"
    if seconds < 3600:
        return _phrase(max(1, round(seconds / 60)), "minute", future)
    if seconds < 86_400:
        return _phrase(seconds // 3600, "hour", future)
    days = seconds // 86_400
    if days < 14:
        return _phrase(days, "day", future)
    return _describe_days(days if future else -days, reference, target)


_ANCHORS = {
    "start of week": start_of_week,
    "start of month": start_of_month,
    "end of month": end_of_month,
    "start of quarter": start_of_quarter,
    "end of quarter": end_of_quarter,
}


def _shift_period(reference: date, unit: str, amount: int, text: str) -> date:
    if unit == "week":
        return add_days(reference, 7 * amount)
    if unit == "month":
        return add_months(reference, amount)
    if unit == "year":
        return add_months(reference, 12 * amount)
    if unit == "quarter":
        return add_months(reference, 3 * amount)
    raise ParseError(f"unknown period {unit!r}", text, None)


def parse_relative(text: str, reference: date, holidays: Collection[date] = ()) -> date:
    """Resolve a relative expression against *reference*.

    Understood forms: ``today``, ``tomorrow``, ``yesterday``,
    ``next|last|this <weekday>``, ``next|last week|month|quarter|year``,
    ``start|end of [next|last] month|quarter`` (and ``start of week``),
    ``in <duration>``, ``<duration> ago``, ``<duration> from now`` and
    ``in N business days`` / ``N business days ago``.
    """
    words = text.strip().lower().replace(",", " ").split()
    phrase = " ".join(words)
    if not words:
        raise ParseError("empty expression", text, 0)
    simple = {"today": 0, "now": 0, "tomorrow": 1, "yesterday": -1}
    if phrase in simple:
        return add_days(reference, simple[phrase])
    if len(words) == 2 and words[0] in ("next", "last", "this"):
        day = parse_weekday(words[1])
        if day is not None:
            if words[0] == "next":
                return next_weekday(reference, day)
            if words[0] == "last":
                return previous_weekday(reference, day)
            return next_weekday(reference, day, include_today=True)
        if words[0] != "this":
            return _shift_period(reference, words[1], 1 if words[0] == "next" else -1, text)
    for anchor, func in _ANCHORS.items():
        if phrase == anchor:
            return func(reference)
        for modifier, amount in (("next", 1), ("last", -1)):
            head, _, unit = anchor.rpartition(" ")
            if phrase == f"{head} {modifier} {unit}":
                return func(_shift_period(reference, unit, amount, text))
    business = _business_offset(words)
    if business is not None:
        return add_business_days(reference, business, holidays)
    if words[0] == "in" and len(words) > 1:
        return add_duration(reference, parse_duration(" ".join(words[1:])))
    if len(words) > 1 and words[-1] == "ago":
        return add_duration(reference, -parse_duration(" ".join(words[:-1])))
    if len(words) > 2 and words[-2:] == ["from", "now"]:
        return add_duration(reference, parse_duration(" ".join(words[:-2])))
    raise ParseError("unrecognised relative expression", text, 0)


def _business_offset(words: list[str]) -> int | None:
    if len(words) == 4 and words[0] == "in" and words[2:] == ["business", "days"] \
            and words[1].isdigit():
        return int(words[1])
    if len(words) == 4 and words[1:] == ["business", "days", "ago"] and words[0].isdigit():
        return -int(words[0])
    return None
