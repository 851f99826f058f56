"""A strftime-like formatting mini-language.

A pattern mixes literal text with directives of the form
``%[flag][width]code``.  Flags: ``-`` no padding, ``_`` pad with spaces,
``0`` pad with zeros, ``^`` upper-case the result.

Numeric codes: ``Y`` year, ``y`` two-digit year, ``C`` century, ``m`` month,
``d`` day, ``e`` space-padded day, ``j`` day of year, ``H`` hour, ``I``
12-hour clock hour, ``M`` minute, ``S`` second, ``L`` milliseconds, ``f``
fractional seconds (width = number of digits), ``u`` ISO weekday (1-7),
``w`` weekday with Sunday as 0, ``V`` ISO week, ``G`` ISO week-year, ``q``
quarter, ``s`` seconds since 1970-01-01 UTC.

Text codes: ``a``/``A`` weekday name, ``b``/``B`` month name, ``p``/``P``
AM/PM marker, ``o`` day with ordinal suffix, ``z`` offset ``+HHMM``, ``:z``
offset ``+HH:MM``, ``Z`` ``UTC``-style zone label.  ``%%``, ``%n`` and
``%t`` produce literal characters and ``F``, ``T``, ``D``, ``R`` and ``c``
expand to common combinations.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from functools import lru_cache

from .calendar_math import (date_to_ordinal, day_of_year, iso_calendar, offset_minutes,
                            quarter_of, to_ordinal, weekday)
from .errors import FormatError
from .names import month_name, weekday_name, with_ordinal

EPOCH_ORDINAL = to_ordinal(1970, 1, 1)

_NUMERIC: dict[str, tuple[int, str]] = {
    "Y": (4, "0"), "y": (2, "0"), "C": (2, "0"), "m": (2, "0"), "d": (2, "0"), "e": (2, " "),
    "j": (3, "0"), "H": (2, "0"), "I": (2, "0"), "M": (2, "0"), "S": (2, "0"), "L": (3, "0"),
    "u": (1, "0"), "w": (1, "0"), "V": (2, "0"), "G": (4, "0"), "q": (1, "0"), "s": (1, "0"),
}
_TEXT = frozenset({"a", "A", "b", "B", "p", "P", "o", "z", ":z", "Z"})
_LITERALS = {"%": "%", "n": "\n", "t": "\t"}
_COMPOSITES = {
    "F": "%Y-%m-%d",
    "T": "%H:%M:%S",
    "D": "%m/%d/%y",
    "R": "%H:%M",
    "c": "%a %b %e %H:%M:%S %Y",
}
DATE_CODES = frozenset("YyCmdejuwVGqaAbBos")
TIME_CODES = frozenset("HIMSLfpP")

PRESETS = {
    "iso": "%Y-%m-%d",
    "iso-datetime": "%Y-%m-%dT%H:%M:%S",
    "long": "%A, %-d %B %Y",
    "medium": "%-d %b %Y",
    "short": "%d/%m/%y",
    "us": "%m/%d/%Y",
    "rfc2822": "%a, %d %b %Y %H:%M:%S %z",
    "clock12": "%-I:%M %p",
}


@dataclass(frozen=True)
class Directive:
    """One ``%`` directive of a compiled pattern."""

    code: str
    flag: str
    width: int | None
    position: int

    @property
    def needs_date(self) -> bool:
        return self.code in DATE_CODES


@lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> tuple[str | Directive, ...]:
    """Split *pattern* into literal strings and :class:`Directive` objects."""
    items: list[str | Directive] = []
    literal: list[str] = []

    def flush() -> None:
        if literal:
            items.append("".join(literal))
            literal.clear()

    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch != "%":
            literal.append(ch)
            i += 1
            continue
        start = i
        i += 1
        flag = ""
        if i < n and pattern[i] in "-_0^":
            flag = pattern[i]
            i += 1
        width_start = i
        while i < n and pattern[i].isdigit():
            i += 1
        width = int(pattern[width_start:i]) if i > width_start else None
        if i >= n:
            raise FormatError("incomplete directive at end of pattern", start)
        code = pattern[i]
        i += 1
        if code == ":":
            if i < n and pattern[i] == "z":
                code = ":z"
                i += 1
            else:
                raise FormatError("expected 'z' after '%:'", start)
        if code in _LITERALS:
            literal.append(_LITERALS[code])
            continue
        flush()
        if code in _COMPOSITES:
            for item in compile_pattern(_COMPOSITES[code]):
                items.append(item if isinstance(item, str)
                             else Directive(item.code, item.flag, item.width, start))
            continue
        if code not in _NUMERIC and code not in _TEXT and code != "f":
            raise FormatError(f"unknown directive '%{code}'", start)
        items.append(Directive(code, flag, width, start))
    flush()
    return tuple(items)


@dataclass(frozen=True)
class _Fields:
    year: int
    month: int
    day: int
    hour: int
    minute: int
    second: int
    micro: int
    offset: int | None
    has_date: bool


def _fields(value: date | time) -> _Fields:
    if isinstance(value, datetime):
        return _Fields(value.year, value.month, value.day, value.hour, value.minute,
                       value.second, value.microsecond, offset_minutes(value), True)
    if isinstance(value, date):
        return _Fields(value.year, value.month, value.day, 0, 0, 0, 0, None, True)
    if isinstance(value, time):
        return _Fields(0, 0, 0, value.hour, value.minute, value.second, value.microsecond,
                       offset_minutes(value), False)
    raise TypeError(f"cannot format {type(value).__name__}")


def offset_text(minutes: int | None, colon: bool = True) -> str:
    """Render a UTC offset in minutes as ``+HH:MM`` (or ``+HHMM``)."""
    if minutes is None:
        return ""
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}{':' if colon else ''}{mins:02d}"


def _numeric_value(code: str, f: _Fields) -> int:
    if code in ("u", "w", "V", "G"):
        iso_year, iso_week, iso_day = iso_calendar(f.year, f.month, f.day)
        return {"u": iso_day, "w": iso_day % 7, "V": iso_week, "G": iso_year}[code]
    if code == "s":
        days = to_ordinal(f.year, f.month, f.day) - EPOCH_ORDINAL
        return days * 86_400 + f.hour * 3600 + f.minute * 60 + f.second - (f.offset or 0) * 60
    simple = {
        "Y": f.year, "y": f.year % 100, "C": f.year // 100, "m": f.month, "d": f.day,
        "e": f.day, "H": f.hour, "I": f.hour % 12 or 12, "M": f.minute, "S": f.second,
        "L": f.micro // 1000,
    }
    if code in simple:
        return simple[code]
    if code == "j":
        return day_of_year(f.year, f.month, f.day)
    return quarter_of(f.month)


def _text_value(code: str, f: _Fields) -> str:
    if code == "a" or code == "A":
        return weekday_name(weekday(f.year, f.month, f.day), abbreviated=code == "a")
    if code == "b" or code == "B":
        return month_name(f.month, abbreviated=code == "b")
    if code == "p":
        return "AM" if f.hour < 12 else "PM"
    if code == "P":
        return "am" if f.hour < 12 else "pm"
    if code == "o":
        return with_ordinal(f.day)
    if code == "z":
        return offset_text(f.offset, colon=False)
    if code == ":z":
        return offset_text(f.offset, colon=True)
    if f.offset is None:
        return ""
    return "UTC" if f.offset == 0 else "UTC" + offset_text(f.offset)


def _pad(text: str, width: int, fill: str) -> str:
    sign = ""
    if fill == "0" and text.startswith("-"):
        sign, text = "-", text[1:]
        width -= 1
    return sign + text.rjust(width, fill)


def _render(directive: Directive, f: _Fields) -> str:
    code, flag = directive.code, directive.flag
    if not f.has_date and code in DATE_CODES:
        raise FormatError(f"directive '%{code}' needs a date", directive.position)
    if code == "f":
        digits = f"{f.micro:06d}"
        width = 6 if directive.width is None else directive.width
        text = digits[:width] if width <= 6 else digits + "0" * (width - 6)
        if flag == "-":
            text = text.rstrip("0") or "0"
    elif code in _NUMERIC:
        default_width, default_fill = _NUMERIC[code]
        text = str(_numeric_value(code, f))
        width = default_width if directive.width is None else directive.width
        fill = {"_": " ", "0": "0"}.get(flag, default_fill)
        if flag != "-":
            text = _pad(text, width, fill)
    else:
        text = _text_value(code, f)
        if directive.width is not None and flag != "-":
            text = _pad(text, directive.width, "0" if flag == "0" else " ")
    return text.upper() if flag == "^" else text


class DateFormatter:
    """A compiled pattern that can format many values."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.items = compile_pattern(pattern)

    @property
    def needs_date(self) -> bool:
        return any(isinstance(item, Directive) and item.needs_date for item in self.items)

    def format(self, value: date | time) -> str:
        fields = _fields(value)
        return "".join(item if isinstance(item, str) else _render(item, fields)
                       for item in self.items)


def format_date(value: date | time, pattern: str) -> str:
    """Format a date, datetime or time with a pattern."""
    return DateFormatter(pattern).format(value)


def format_preset(value: date | time, name: str) -> str:
    """Format *value* with one of the named :data:`PRESETS`."""
    if name not in PRESETS:
        raise FormatError(f"unknown preset {name!r}")
    return format_date(value, PRESETS[name])


_TIMESPECS = ("auto", "hours", "minutes", "seconds", "milliseconds", "microseconds")


def _iso_time(value: time | datetime, timespec: str) -> str:
    if timespec not in _TIMESPECS:
        raise FormatError(f"unknown timespec {timespec!r}")
    if timespec == "auto":
        timespec = "microseconds" if value.microsecond else "seconds"
    text = f"{value.hour:02d}"
    if timespec != "hours":
        text += f":{value.minute:02d}"
    if timespec in ("seconds", "milliseconds", "microseconds"):
        text += f":{value.second:02d}"
    if timespec == "milliseconds":
        text += f".{value.microsecond // 1000:03d}"
    elif timespec == "microseconds":
        text += f".{value.microsecond:06d}"
    return text + offset_text(offset_minutes(value))


def isoformat(value: date | time, sep: str = "T", timespec: str = "auto") -> str:
    """Return the ISO 8601 text for a date, datetime or time."""
    if isinstance(value, datetime):
        return f"{value.year:04d}-{value.month:02d}-{value.day:02d}{sep}" + _iso_time(value, timespec)
    if isinstance(value, date):
        return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
    if isinstance(value, time):
        return _iso_time(value, timespec)
    raise TypeError(f"cannot format {type(value).__name__}")


def iso_week_string(value: date) -> str:
    """Return the ISO week date, e.g. ``2024-W09-7``."""
    iso_year, week, day = iso_calendar(value.year, value.month, value.day)
    return f"{iso_year:04d}-W{week:02d}-{day}"


def ordinal_date_string(value: date) -> str:
    """Return the ISO ordinal date, e.g. ``2024-063``."""
    return f"{value.year:04d}-{day_of_year(value.year, value.month, value.day):03d}"


def days_since_epoch(value: date) -> int:
    """Return the number of days from 1970-01-01 to *value*."""
    return date_to_ordinal(value) - EPOCH_ORDINAL
