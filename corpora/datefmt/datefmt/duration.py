"""Calendar-aware durations with ISO 8601, compact and clock notations.

A :class:`Duration` has two independent parts: a number of calendar months
(years count as twelve months) whose length depends on where it is applied,
and an exact number of microseconds.  Days are treated as exactly 24 hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import total_ordering

from .calendar_math import MICROS_PER_DAY, MICROS_PER_HOUR, MICROS_PER_MINUTE, MICROS_PER_SECOND
from .errors import DateError, FormatError, ParseError

MICROS_PER_WEEK = 7 * MICROS_PER_DAY

_HUMAN_UNITS: dict[str, tuple[str, int]] = {}
for _names, _kind, _scale in (
    (("y", "yr", "yrs", "year", "years"), "months", 12),
    (("mo", "mon", "mos", "month", "months"), "months", 1),
    (("w", "wk", "wks", "week", "weeks"), "micros", MICROS_PER_WEEK),
    (("d", "day", "days"), "micros", MICROS_PER_DAY),
    (("h", "hr", "hrs", "hour", "hours"), "micros", MICROS_PER_HOUR),
    (("m", "min", "mins", "minute", "minutes"), "micros", MICROS_PER_MINUTE),
    (("s", "sec", "secs", "second", "seconds"), "micros", MICROS_PER_SECOND),
    (("ms", "msec", "millisecond", "milliseconds"), "micros", 1000),
    (("us", "usec", "microsecond", "microseconds"), "micros", 1),
):
    for _name in _names:
        _HUMAN_UNITS[_name] = (_kind, _scale)

_ISO_DATE_UNITS = {"Y": (0, "months", 12), "M": (1, "months", 1),
                   "W": (2, "micros", MICROS_PER_WEEK), "D": (3, "micros", MICROS_PER_DAY)}
_ISO_TIME_UNITS = {"H": (4, "micros", MICROS_PER_HOUR), "M": (5, "micros", MICROS_PER_MINUTE),
                   "S": (6, "micros", MICROS_PER_SECOND)}


@total_ordering
@dataclass(frozen=True)
class Duration:
    """An amount of time: calendar months plus exact microseconds."""

    months: int = 0
    micros: int = 0

    @classmethod
    def of(cls, *, years: int = 0, months: int = 0, weeks: int = 0, days: int = 0,
           hours: int = 0, minutes: int = 0, seconds: int = 0, milliseconds: int = 0,
           microseconds: int = 0) -> Duration:
        """Build a duration from whole-number components."""
        parts = (years, months, weeks, days, hours, minutes, seconds, milliseconds, microseconds)
        if not all(isinstance(p, int) for p in parts):
            raise TypeError("Duration.of() components must be integers")
        exact = (weeks * MICROS_PER_WEEK + days * MICROS_PER_DAY + hours * MICROS_PER_HOUR
                 + minutes * MICROS_PER_MINUTE + seconds * MICROS_PER_SECOND
                 + milliseconds * 1000 + microseconds)
        return cls(years * 12 + months, exact)

    @property
    def is_exact(self) -> bool:
        """True when the duration has no calendar-month part."""
        return self.months == 0

    def total_seconds(self) -> float:
        if not self.is_exact:
            raise DateError("a duration with months has no fixed length")
        return self.micros / MICROS_PER_SECOND

    def __add__(self, other: object) -> Duration:
        if not isinstance(other, Duration):
            return NotImplemented
        return Duration(self.months + other.months, self.micros + other.micros)

    def __sub__(self, other: object) -> Duration:
        if not isinstance(other, Duration):
            return NotImplemented
        return Duration(self.months - other.months, self.micros - other.micros)

    def __neg__(self) -> Duration:
        return Duration(-self.months, -self.micros)

    def __mul__(self, factor: object) -> Duration:
        if not isinstance(factor, int) or isinstance(factor, bool):
            return NotImplemented
        return Duration(self.months * factor, self.micros * factor)

    __rmul__ = __mul__

    def __bool__(self) -> bool:
        return bool(self.months or self.micros)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Duration):
            return NotImplemented
        if not (self.is_exact and other.is_exact):
            raise DateError("durations with months cannot be ordered")
        return self.micros < other.micros

    def __str__(self) -> str:
        return format_human(self)

    def isoformat(self) -> str:
        return format_iso(self)


def _exact_parts(micros: int) -> tuple[int, int, int, int, int]:
    days, rest = divmod(micros, MICROS_PER_DAY)
    hours, rest = divmod(rest, MICROS_PER_HOUR)
    minutes, rest = divmod(rest, MICROS_PER_MINUTE)
    seconds, micro = divmod(rest, MICROS_PER_SECOND)
    return days, hours, minutes, seconds, micro


def _seconds_text(seconds: int, micro: int) -> str:
    if not micro:
        return str(seconds)
    return f"{seconds}.{micro:06d}".rstrip("0")


def format_iso(duration: Duration) -> str:
    """Return the ISO 8601 representation, e.g. ``P1Y2M3DT4H5M6.5S``."""
    if (duration.months < 0 < duration.micros) or (duration.micros < 0 < duration.months):
        raise FormatError("cannot express a mixed-sign duration in ISO 8601")
    if not duration:
        return "PT0S"
    sign = "-" if duration.months < 0 or duration.micros < 0 else ""
    years, months = divmod(abs(duration.months), 12)
    days, hours, minutes, seconds, micro = _exact_parts(abs(duration.micros))
    text = sign + "P"
    text += f"{years}Y" if years else ""
    text += f"{months}M" if months else ""
    text += f"{days}D" if days else ""
    clock = ""
    clock += f"{hours}H" if hours else ""
    clock += f"{minutes}M" if minutes else ""
    if seconds or micro:
        clock += _seconds_text(seconds, micro) + "S"
    return text + ("T" + clock if clock else "")


_SHORT_LABELS = ("y", "mo", "d", "h", "m", "s")
_LONG_LABELS = ("year", "month", "day", "hour", "minute", "second")


def _piece(number: str, index: int, long: bool) -> str:
    if not long:
        return number + _SHORT_LABELS[index]
    return f"{number} {_LONG_LABELS[index]}" + ("" if number == "1" else "s")


def format_human(duration: Duration, long: bool = False) -> str:
    """Return a compact (``1h 30m``) or long (``1 hour, 30 minutes``) description."""
    separator = ", " if long else " "
    groups: list[str] = []
    if duration.months:
        years, months = divmod(abs(duration.months), 12)
        pieces = [_piece(str(value), index, long)
                  for index, value in enumerate((years, months)) if value]
        groups.append(("-" if duration.months < 0 else "") + separator.join(pieces))
    if duration.micros:
        days, hours, minutes, seconds, micro = _exact_parts(abs(duration.micros))
        pieces = [_piece(str(value), index, long)
                  for index, value in ((2, days), (3, hours), (4, minutes)) if value]
        if seconds or micro:
            pieces.append(_piece(_seconds_text(seconds, micro), 5, long))
        groups.append(("-" if duration.micros < 0 else "") + separator.join(pieces))
    if not groups:
        return "0 seconds" if long else "0s"
    return separator.join(groups)


def format_clock(duration: Duration) -> str:
    """Return ``H:MM:SS`` with a fractional part when needed."""
    if not duration.is_exact:
        raise FormatError("a duration with months cannot be shown as a clock")
    sign = "-" if duration.micros < 0 else ""
    total_hours, rest = divmod(abs(duration.micros), MICROS_PER_HOUR)
    minutes, rest = divmod(rest, MICROS_PER_MINUTE)
    seconds, micro = divmod(rest, MICROS_PER_SECOND)
    fraction = f".{micro:06d}".rstrip("0") if micro else ""
    return f"{sign}{total_hours}:{minutes:02d}:{seconds:02d}{fraction}"


def _scaled(whole: str, fraction: str, scale: int) -> int:
    value = int(whole or "0") * scale
    if fraction:
        value += int(fraction) * scale // 10 ** len(fraction)
    return value


class _DurationScanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = len(text) - len(text.lstrip())
        self.end = len(text.rstrip())

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < self.end else ""

    def error(self, message: str, position: int | None = None) -> ParseError:
        return ParseError(message, self.text, self.pos if position is None else position)

    def number(self) -> tuple[str, str]:
        start = self.pos
        while self.peek().isdigit():
            self.pos += 1
        whole = self.text[start:self.pos]
        fraction = ""
        if self.peek() and self.peek() in ".,":
            self.pos += 1
            fraction_start = self.pos
            while self.peek().isdigit():
                self.pos += 1
            fraction = self.text[fraction_start:self.pos]
            if not fraction:
                raise self.error("expected digits after decimal point")
        if not whole and not fraction:
            raise self.error("expected a number")
        return whole, fraction

    def skip_separators(self) -> None:
        while True:
            ch = self.peek()
            if ch.isspace() or ch == ",":
                self.pos += 1
            elif self.text[self.pos:self.pos + 4].lower() == "and " and self.pos > 0:
                self.pos += 4
            else:
                return


def parse_duration(text: str) -> Duration:
    """Parse ISO (``P1DT2H``), compact (``1h30m``), worded or clock notation."""
    scanner = _DurationScanner(text)
    if scanner.pos >= scanner.end:
        raise ParseError("empty duration", text, 0)
    negative = False
    if scanner.peek() in ("+", "-"):
        negative = scanner.peek() == "-"
        scanner.pos += 1
    if scanner.peek() in ("P", "p"):
        result = _parse_iso(scanner)
    elif ":" in text:
        result = _parse_clock(scanner)
    else:
        result = _parse_units(scanner)
    return -result if negative else result


def _parse_iso(scanner: _DurationScanner) -> Duration:
    scanner.pos += 1
    months = micros = 0
    last_rank = -1
    in_time = False
    time_components = 0
    saw_fraction = False
    components = 0
    while scanner.pos < scanner.end:
        if scanner.peek() in ("T", "t"):
            if in_time:
                raise scanner.error("duplicate 'T' designator")
            in_time = True
            scanner.pos += 1
            continue
        start = scanner.pos
        whole, fraction = scanner.number()
        if saw_fraction:
            raise scanner.error("only the last component may have a fraction", start)
        unit = scanner.peek().upper()
        table = _ISO_TIME_UNITS if in_time else _ISO_DATE_UNITS
        if unit not in table:
            raise scanner.error(f"expected a designator, found {scanner.peek() or 'end of input'!r}")
        rank, kind, scale = table[unit]
        if rank <= last_rank:
            raise scanner.error(f"designator '{unit}' is out of order")
        last_rank = rank
        if kind == "months":
            if fraction:
                raise scanner.error("years and months must be whole numbers", start)
            months += int(whole) * scale
        else:
            micros += _scaled(whole, fraction, scale)
        saw_fraction = bool(fraction)
        scanner.pos += 1
        components += 1
        time_components += in_time
    if components == 0:
        raise scanner.error("duration has no components")
    if in_time and not time_components:
        raise scanner.error("'T' must be followed by a time component")
    return Duration(months, micros)


def _parse_clock(scanner: _DurationScanner) -> Duration:
    fields = scanner.text[scanner.pos:scanner.end].split(":")
    if len(fields) not in (2, 3):
        raise scanner.error("clock durations need H:MM or H:MM:SS")
    hours_text, minutes_text = fields[0], fields[1]
    seconds_text = fields[2] if len(fields) == 3 else "00"
    whole_seconds, _, fraction = seconds_text.partition(".")
    for label, value, exact_two in (("hours", hours_text, False), ("minutes", minutes_text, True),
                                    ("seconds", whole_seconds, True)):
        if not value.isdigit() or (exact_two and len(value) != 2):
            raise scanner.error(f"invalid {label} field {value!r}")
    if fraction and not fraction.isdigit():
        raise scanner.error(f"invalid fraction {fraction!r}")
    minutes, seconds = int(minutes_text), int(whole_seconds)
    if minutes > 59 or seconds > 59:
        raise scanner.error("minutes and seconds must be below 60")
    micros = (int(hours_text) * MICROS_PER_HOUR + minutes * MICROS_PER_MINUTE
              + _scaled(whole_seconds, fraction, MICROS_PER_SECOND))
    return Duration(0, micros)


def _parse_units(scanner: _DurationScanner) -> Duration:
    months = micros = 0
    seen: set[int] = set()
    scanner.skip_separators()
    while scanner.pos < scanner.end:
        start = scanner.pos
        whole, fraction = scanner.number()
        while scanner.peek() == " ":
            scanner.pos += 1
        unit_start = scanner.pos
        while scanner.peek().isalpha():
            scanner.pos += 1
        unit = scanner.text[unit_start:scanner.pos].lower()
        if not unit:
            raise scanner.error("expected a unit after the number")
        if unit not in _HUMAN_UNITS:
            raise scanner.error(f"unknown unit {unit!r}", unit_start)
        kind, scale = _HUMAN_UNITS[unit]
        key = scale * (1 if kind == "micros" else -1)
        if key in seen:
            raise scanner.error(f"unit {unit!r} given more than once", unit_start)
        seen.add(key)
        if kind == "months":
            if fraction:
                raise scanner.error("years and months must be whole numbers", start)
            months += int(whole) * scale
        else:
            micros += _scaled(whole, fraction, scale)
        scanner.skip_separators()
    if not seen:
        raise scanner.error("duration has no components")
    return Duration(months, micros)
