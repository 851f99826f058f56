"""Parsing of ISO 8601 text, common human-written dates and custom patterns.

Supported ISO forms include calendar dates (``2024-03-03``, ``20240303``),
week dates (``2024-W09-7``), ordinal dates (``2024-063``), times with
optional fractions and ``24:00``, and UTC offsets (``Z``, ``+05:30``).

Human forms include ``3 Mar 2024``, ``March 3rd, 2024``, ``Sunday, 3 March
2024``, ``2024/03/03 14:05``, ``03/03/2024`` (month first unless
``day_first`` is set), ``3.3.2024`` (always day first) and times such as
``2:05 pm``, ``2pm``, ``noon`` or ``14:05:30.25``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Callable

from .calendar_math import (from_day_of_year, from_iso_calendar, from_ordinal, to_ordinal,
                            validate_date, validate_time, weekday)
from .errors import FormatError, ParseError, RangeError
from .formatting import compile_pattern
from .names import parse_month, parse_weekday, weekday_name

DIGITS = "0123456789"
_MERIDIEM = {"am": 0, "pm": 12}
_FILLER_WORDS = frozenset({"at", "on", "of", "the"})
_ORDINAL_SUFFIXES = frozenset({"st", "nd", "rd", "th"})

Parts = tuple[tuple[int, int, int] | None, tuple[int, int, int, int] | None, int | None]


def _is_digit(ch: str) -> bool:
    return ch != "" and ch in DIGITS


def make_zone(offset_minutes: int | None) -> timezone | None:
    """Return a fixed-offset tzinfo for *offset_minutes* (None for naive)."""
    if offset_minutes is None:
        return None
    if offset_minutes == 0:
        return timezone.utc
    return timezone(timedelta(minutes=offset_minutes))


def expand_two_digit_year(year: int) -> int:
    """Map 69-99 to 1969-1999 and 00-68 to 2000-2068."""
    return 1900 + year if year >= 69 else 2000 + year


class InvalidValueError(ParseError):
    """The text is well formed but names a date or time that does not exist."""


def _checked(text: str, position: int | None, func: Callable[..., Any], *args: int) -> Any:
    try:
        return func(*args)
    except RangeError as exc:
        raise InvalidValueError(str(exc), text, position) from None


class _Cursor:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = len(text) - len(text.lstrip())
        self.end = len(text.rstrip())

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < self.end else ""

    def at_end(self) -> bool:
        return self.pos >= self.end

    def accept(self, chars: str) -> str:
        ch = self.peek()
        if ch and ch in chars:
            self.pos += 1
            return ch
        return ""

    def error(self, message: str, position: int | None = None) -> ParseError:
        return ParseError(message, self.text, self.pos if position is None else position)

    def expect(self, chars: str, what: str) -> None:
        if not self.accept(chars):
            raise self.error(f"expected {what}")

    def digits(self, count: int, what: str) -> int:
        start = self.pos
        for _ in range(count):
            if not _is_digit(self.peek()):
                raise self.error(f"expected {count}-digit {what}", start)
            self.pos += 1
        return int(self.text[start:self.pos])

    def digit_run(self) -> str:
        start = self.pos
        while _is_digit(self.peek()):
            self.pos += 1
        return self.text[start:self.pos]


def _iso_week(cur: _Cursor, year: int, start: int, extended: bool) -> tuple[int, int, int]:
    week = cur.digits(2, "week number")
    day = 1
    if extended and cur.accept("-"):
        day = cur.digits(1, "weekday")
    elif not extended and _is_digit(cur.peek()):
        day = cur.digits(1, "weekday")
    return _checked(cur.text, start, from_iso_calendar, year, week, day)


def _iso_date(cur: _Cursor) -> tuple[int, int, int]:
    start = cur.pos
    year = cur.digits(4, "year")
    extended = bool(cur.accept("-"))
    if cur.accept("W"):
        return _iso_week(cur, year, start, extended)
    field_start = cur.pos
    run = cur.digit_run()
    if len(run) == 3:
        month, day = _checked(cur.text, start, from_day_of_year, year, int(run))
        return year, month, day
    if extended and len(run) == 2:
        month = int(run)
        cur.expect("-", "'-' before the day")
        day = cur.digits(2, "day")
    elif not extended and len(run) == 4:
        month, day = int(run[:2]), int(run[2:])
    else:
        expected = "2-digit month" if extended else "'-' or MMDD"
        raise cur.error(f"expected {expected} after the year", field_start)
    _checked(cur.text, start, validate_date, year, month, day)
    return year, month, day


def _fraction(cur: _Cursor) -> int:
    if not cur.accept(".,"):
        return 0
    run = cur.digit_run()
    if not run:
        raise cur.error("expected digits after the decimal separator")
    return int((run + "00000")[:6])


def _iso_time(cur: _Cursor) -> tuple[tuple[int, int, int, int], bool]:
    start = cur.pos
    hour = cur.digits(2, "hour")
    minute = second = micro = 0
    if cur.accept(":"):
        minute = cur.digits(2, "minute")
        if cur.accept(":"):
            second = cur.digits(2, "second")
            micro = _fraction(cur)
    elif _is_digit(cur.peek()):
        minute = cur.digits(2, "minute")
        if _is_digit(cur.peek()):
            second = cur.digits(2, "second")
            micro = _fraction(cur)
    if hour == 24 and minute == second == micro == 0:
        return (0, 0, 0, 0), True
    _checked(cur.text, start, validate_time, hour, minute, second, micro)
    return (hour, minute, second, micro), False


def _iso_offset(cur: _Cursor) -> int | None:
    if cur.accept("Zz"):
        return 0
    start = cur.pos
    sign = cur.accept("+-")
    if not sign:
        return None
    hours = cur.digits(2, "offset hours")
    minutes = 0
    if cur.accept(":") or _is_digit(cur.peek()):
        minutes = cur.digits(2, "offset minutes")
    if hours > 23 or minutes > 59:
        raise cur.error("UTC offset out of range", start)
    total = hours * 60 + minutes
    return -total if sign == "-" else total


def _iso_parts(text: str) -> Parts:
    cur = _Cursor(text)
    return _iso_rest(cur, _iso_date(cur))


def _iso_rest(cur: _Cursor, ymd: tuple[int, int, int]) -> Parts:
    text = cur.text
    if cur.at_end():
        return ymd, None, None
    if not cur.accept("Tt "):
        raise cur.error(f"unexpected {cur.peek()!r} after the date")
    hms, next_day = _iso_time(cur)
    offset = _iso_offset(cur)
    if not cur.at_end():
        raise cur.error(f"unexpected {cur.peek()!r}")
    if next_day:
        ymd = _checked(text, None, from_ordinal, to_ordinal(*ymd) + 1)
    return ymd, hms, offset


def parse_iso(text: str) -> date | datetime:
    """Parse strict ISO 8601 text into a date or a datetime."""
    ymd, hms, offset = _iso_parts(text)
    if hms is None:
        return date(*ymd)
    return datetime(*ymd, *hms, tzinfo=make_zone(offset))


def parse_iso_time(text: str) -> time:
    """Parse an ISO 8601 time of day such as ``14:05:09.5+02:00``."""
    cur = _Cursor(text)
    cur.accept("Tt")
    hms, next_day = _iso_time(cur)
    if next_day:
        raise cur.error("24:00 is only valid together with a date", 0)
    offset = _iso_offset(cur)
    if not cur.at_end():
        raise cur.error(f"unexpected {cur.peek()!r}")
    return time(*hms, tzinfo=make_zone(offset))


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    position: int

    @property
    def end(self) -> int:
        return self.position + len(self.text)


def _scan(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        start = i
        if _is_digit(ch):
            while i < n and _is_digit(text[i]):
                i += 1
            tokens.append(_Token("num", text[start:i], start))
            continue
        if ch.isascii() and ch.isalpha():
            while i < n and text[i].isascii() and text[i].isalpha():
                i += 1
            word = text[start:i]
            if word.lower() in ("a", "p") and text[i:i + 2].lower() == ".m":
                i += 3 if text[i + 2:i + 3] == "." else 2
                word += "m"
            tokens.append(_Token("word", word, start))
            continue
        tokens.append(_Token("sep", ch, start))
        i += 1
    return tokens


def _kind_at(tokens: list[_Token], index: int, kind: str, texts: Any = None) -> bool:
    if index >= len(tokens) or tokens[index].kind != kind:
        return False
    return texts is None or tokens[index].text.lower() in texts


def _clock_tokens(tokens: list[_Token], i: int, text: str) -> tuple[list[int], int]:
    hour_tok, minute_tok = tokens[i], tokens[i + 2]
    if len(hour_tok.text) > 2 or len(minute_tok.text) != 2:
        raise ParseError("expected a time like H:MM", text, hour_tok.position)
    parts = [int(hour_tok.text), int(minute_tok.text), 0, 0]
    j = i + 3
    if _kind_at(tokens, j, "sep", ":") and _kind_at(tokens, j + 1, "num"):
        if len(tokens[j + 1].text) != 2:
            raise ParseError("expected 2-digit seconds", text, tokens[j + 1].position)
        parts[2] = int(tokens[j + 1].text)
        j += 2
        if _kind_at(tokens, j, "sep", ".") and _kind_at(tokens, j + 1, "num"):
            parts[3] = int((tokens[j + 1].text + "00000")[:6])
            j += 2
    return parts, j


def _offset_tokens(tokens: list[_Token], j: int, text: str) -> tuple[int | None, int]:
    if _kind_at(tokens, j, "word", ("utc", "gmt", "z")):
        return 0, j + 1
    if not (_kind_at(tokens, j, "sep", ("+", "-")) and _kind_at(tokens, j + 1, "num")):
        return None, j
    sign = -1 if tokens[j].text == "-" else 1
    digits = tokens[j + 1].text
    k = j + 2
    if len(digits) == 2 and _kind_at(tokens, k, "sep", ":") and _kind_at(tokens, k + 1, "num"):
        digits += tokens[k + 1].text
        k += 2
    if len(digits) != 4 or int(digits[:2]) > 23 or int(digits[2:]) > 59:
        raise ParseError("invalid UTC offset", text, tokens[j].position)
    return sign * (int(digits[:2]) * 60 + int(digits[2:])), k


def _take_time(tokens: list[_Token], text: str) -> tuple[Any, list[_Token]]:
    found = None
    rest: list[_Token] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        parts: list[int] | None = None
        if tok.kind == "num" and _kind_at(tokens, i + 1, "sep", ":") \
                and _kind_at(tokens, i + 2, "num"):
            parts, j = _clock_tokens(tokens, i, text)
        elif tok.kind == "num" and len(tok.text) <= 2 and _kind_at(tokens, i + 1, "word", _MERIDIEM):
            parts, j = [int(tok.text), 0, 0, 0], i + 1
        elif tok.kind == "word" and tok.text.lower() in ("noon", "midnight"):
            parts, j = [12 if tok.text.lower() == "noon" else 0, 0, 0, 0], i + 1
        if parts is None:
            rest.append(tok)
            i += 1
            continue
        if found is not None:
            raise ParseError("more than one time of day", text, tok.position)
        if tok.kind == "num" and _kind_at(tokens, j, "word", _MERIDIEM):
            marker = tokens[j].text.lower()
            if not 1 <= parts[0] <= 12:
                raise ParseError(f"hour {parts[0]} cannot be used with {marker}", text, tok.position)
            parts[0] = parts[0] % 12 + _MERIDIEM[marker]
            j += 1
        _checked(text, tok.position, validate_time, *parts)
        offset, j = _offset_tokens(tokens, j, text)
        found = (tuple(parts), offset)
        i = j
    return found, rest


def _year_value(tok: _Token, text: str) -> int:
    if len(tok.text) == 4:
        return int(tok.text)
    if len(tok.text) == 2:
        return expand_two_digit_year(int(tok.text))
    raise ParseError("a year needs two or four digits", text, tok.position)


def _named_month_date(numbers: list[list[Any]], month_tok: _Token, text: str,
                      default_year: int | None) -> tuple[int, int]:
    """Return ``(day, year)`` from the numbers that accompany a month name."""
    if len(numbers) == 1:
        tok, is_ordinal = numbers[0]
        if len(tok.text) > 2 and not is_ordinal:
            raise ParseError("missing day of the month", text, tok.position)
        if default_year is None:
            raise ParseError("missing year", text, tok.position)
        return int(tok.text), default_year
    if len(numbers) != 2:
        raise ParseError("expected a day and a year next to the month name", text,
                         month_tok.position)
    (first, first_ordinal), (second, second_ordinal) = numbers
    if len(first.text) > 2 and len(second.text) > 2:
        raise ParseError("found two years", text, second.position)
    if len(first.text) > 2 or second_ordinal:
        day_tok, year_tok = second, first
    else:
        day_tok, year_tok = first, second
    if year_tok is first and first_ordinal or year_tok is second and second_ordinal:
        raise ParseError("a year cannot have an ordinal suffix", text, year_tok.position)
    return int(day_tok.text), _year_value(year_tok, text)


def _numeric_date(numbers: list[list[Any]], seps: list[_Token], text: str,
                  day_first: bool) -> tuple[int, int, int]:
    if len(numbers) != 3:
        position = numbers[0][0].position if numbers else None
        raise ParseError("expected day, month and year", text, position)
    a, b, c = (entry[0] for entry in numbers)
    if len(seps) != 2 or seps[0].text != seps[1].text \
            or not a.end <= seps[0].position < b.position \
            or not b.end <= seps[1].position < c.position:
        raise ParseError("numeric dates need two identical separators", text, a.position)
    if len(a.text) == 4:
        return int(a.text), int(b.text), int(c.text)
    if seps[0].text == "." or day_first:
        return _year_value(c, text), int(b.text), int(a.text)
    return _year_value(c, text), int(a.text), int(b.text)


def _human_date(tokens: list[_Token], text: str, day_first: bool,
                default_year: int | None) -> tuple[int, int, int]:
    numbers: list[list[Any]] = []
    seps: list[_Token] = []
    month: tuple[int, _Token] | None = None
    named_weekday: tuple[int, _Token] | None = None
    previous: _Token | None = None
    for tok in tokens:
        low = tok.text.lower()
        if tok.kind == "num":
            numbers.append([tok, False])
        elif tok.kind == "sep":
            if low in "/-.":
                seps.append(tok)
            elif low != ",":
                raise ParseError(f"unexpected {tok.text!r}", text, tok.position)
        elif low in _ORDINAL_SUFFIXES and previous is not None and previous.kind == "num" \
                and previous.end == tok.position:
            numbers[-1][1] = True
        elif low in _FILLER_WORDS:
            pass
        elif parse_month(low) is not None:
            if month is not None:
                raise ParseError("more than one month name", text, tok.position)
            month = (parse_month(low), tok)
        elif parse_weekday(low) is not None:
            if named_weekday is not None:
                raise ParseError("more than one weekday name", text, tok.position)
            named_weekday = (parse_weekday(low), tok)
        else:
            raise ParseError(f"unrecognised word {tok.text!r}", text, tok.position)
        previous = tok
    if month is not None:
        day, year = _named_month_date(numbers, month[1], text, default_year)
        ymd = (year, month[0], day)
    else:
        ymd = _numeric_date(numbers, seps, text, day_first)
    first = min((t.position for t in tokens if t.kind != "sep"), default=0)
    _checked(text, first, validate_date, *ymd)
    if named_weekday is not None and weekday(*ymd) != named_weekday[0]:
        actual = weekday_name(weekday(*ymd))
        raise ParseError(f"{ymd[0]:04d}-{ymd[1]:02d}-{ymd[2]:02d} is a {actual}, "
                         f"not a {weekday_name(named_weekday[0])}", text,
                         named_weekday[1].position)
    return ymd


def _human_parts(text: str, day_first: bool, default_year: int | None) -> Parts:
    tokens = _scan(text)
    if not tokens:
        raise ParseError("empty input", text, 0)
    found, rest = _take_time(tokens, text)
    meaningful = [t for t in rest if not (t.kind == "sep" and t.text == ",")
                  and t.text.lower() not in _FILLER_WORDS]
    ymd = _human_date(rest, text, day_first, default_year) if meaningful else None
    if found is None:
        return ymd, None, None
    return ymd, found[0], found[1]


def _parse_parts(text: str, day_first: bool, default_year: int | None) -> Parts:
    """Try ISO 8601 first and fall back to the human-format parser.

    Text whose date part is not ISO is handed to the human parser alone.
    When the ISO date part is well formed but invalid, that error is final;
    when only the remainder fails, the ISO error is reported if the human
    parser cannot make sense of the text either.
    """
    cur = _Cursor(text)
    try:
        ymd = _iso_date(cur)
    except InvalidValueError:
        raise
    except ParseError:
        return _human_parts(text, day_first, default_year)
    try:
        return _iso_rest(cur, ymd)
    except ParseError as iso_error:
        try:
            return _human_parts(text, day_first, default_year)
        except ParseError:
            raise iso_error from None


def parse_date(text: str, *, day_first: bool = False, default_year: int | None = None) -> date:
    """Parse a calendar date written in ISO or a common human format."""
    ymd, hms, _ = _parse_parts(text, day_first, default_year)
    if ymd is None:
        raise ParseError("no date found", text)
    if hms is not None:
        raise ParseError("expected a date without a time of day", text)
    return date(*ymd)


def parse_datetime(text: str, *, day_first: bool = False,
                   default_year: int | None = None) -> datetime:
    """Parse a date with an optional time; a missing time means midnight."""
    ymd, hms, offset = _parse_parts(text, day_first, default_year)
    if ymd is None:
        raise ParseError("no date found", text)
    return datetime(*ymd, *(hms or (0, 0, 0, 0)), tzinfo=make_zone(offset))


def parse_time(text: str) -> time:
    """Parse a time of day such as ``14:05``, ``2:05 pm``, ``2pm`` or ``noon``."""
    try:
        return parse_iso_time(text)
    except ParseError as iso_error:
        tokens = _scan(text)
        found, rest = _take_time(tokens, text)
        if found is None:
            raise iso_error from None
        if rest:
            raise ParseError(f"unexpected {rest[0].text!r}", text, rest[0].position) from None
        return time(*found[0], tzinfo=make_zone(found[1]))


def parse(text: str, *, day_first: bool = False,
          default_year: int | None = None) -> date | datetime:
    """Return a date when *text* has no time of day, otherwise a datetime."""
    ymd, hms, offset = _parse_parts(text, day_first, default_year)
    if ymd is None:
        raise ParseError("no date found", text)
    if hms is None:
        return date(*ymd)
    return datetime(*ymd, *hms, tzinfo=make_zone(offset))


_PATTERN_DIGITS = {"Y": (4, 4), "y": (2, 2), "j": (1, 3), "f": (1, 6), "L": (3, 3)}
_PATTERN_KEYS = {"Y": "year", "y": "year", "m": "month", "d": "day", "e": "day", "j": "yday",
                 "H": "hour", "I": "hour12", "M": "minute", "S": "second", "f": "micro",
                 "L": "micro"}


class _PatternReader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.values: dict[str, int] = {}

    def store(self, key: str, value: int, position: int) -> None:
        if key in self.values and self.values[key] != value:
            raise ParseError(f"conflicting values for {key}", self.text, position)
        self.values[key] = value

    def read_digits(self, low: int, high: int) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.pos - start < high and _is_digit(self.text[self.pos]):
            self.pos += 1
        if self.pos - start < low:
            raise ParseError(f"expected at least {low} digit(s)", self.text, start)
        return self.text[start:self.pos]

    def read_word(self) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos].isalpha():
            self.pos += 1
        return self.text[start:self.pos]

    def literal(self, chunk: str) -> None:
        for ch in chunk:
            if ch.isspace():
                while self.pos < len(self.text) and self.text[self.pos].isspace():
                    self.pos += 1
            elif self.text[self.pos:self.pos + 1] == ch:
                self.pos += 1
            else:
                raise ParseError(f"expected {ch!r}", self.text, self.pos)

    def directive(self, code: str, position: int) -> None:
        start = self.pos
        if code in _PATTERN_KEYS:
            if code == "e":
                while self.text[self.pos:self.pos + 1] == " ":
                    self.pos += 1
            low, high = _PATTERN_DIGITS.get(code, (1, 2))
            digits = self.read_digits(low, high)
            value = int(digits)
            if code == "y":
                value = expand_two_digit_year(value)
            elif code == "f":
                value = int((digits + "00000")[:6])
            elif code == "L":
                value *= 1000
            self.store(_PATTERN_KEYS[code], value, start)
        elif code in ("b", "B", "a", "A"):
            word = self.read_word()
            is_month = code in ("b", "B")
            number = parse_month(word) if is_month else parse_weekday(word)
            if number is None:
                kind = "month" if is_month else "weekday"
                raise ParseError(f"expected a {kind} name", self.text, start)
            self.store("month" if is_month else "weekday", number, start)
        elif code in ("p", "P"):
            marker = self.read_word().lower()
            if marker not in _MERIDIEM:
                raise ParseError("expected AM or PM", self.text, start)
            self.store("meridiem", _MERIDIEM[marker], start)
        elif code in ("z", ":z"):
            cur = _Cursor(self.text)
            cur.pos, cur.end = self.pos, len(self.text)
            offset = _iso_offset(cur)
            if offset is None:
                raise ParseError("expected a UTC offset", self.text, start)
            self.pos = cur.pos
            self.store("offset", offset, start)
        else:
            raise FormatError(f"directive '%{code}' cannot be used for parsing", position)


def parse_with_pattern(text: str, pattern: str) -> date | datetime | time:
    """Parse *text* according to a formatting pattern.

    Returns a date, a time or a datetime depending on which fields the
    pattern contains.  A missing day of the month defaults to 1.
    """
    reader = _PatternReader(text)
    for item in compile_pattern(pattern):
        if isinstance(item, str):
            reader.literal(item)
        else:
            reader.directive(item.code, item.position)
    if reader.pos != len(text):
        raise ParseError("unexpected trailing text", text, reader.pos)
    values = reader.values
    has_date = any(k in values for k in ("year", "month", "day", "yday", "weekday"))
    has_time = any(k in values for k in ("hour", "hour12", "minute", "second", "micro"))
    hour = values.get("hour", 0)
    if "hour12" in values:
        if not 1 <= values["hour12"] <= 12:
            raise ParseError("12-hour clock hour must be in 1..12", text, None)
        hour = values["hour12"] % 12 + values.get("meridiem", 0)
    hms = (hour, values.get("minute", 0), values.get("second", 0), values.get("micro", 0))
    _checked(text, None, validate_time, *hms)
    zone = make_zone(values.get("offset"))
    if not has_date:
        return time(*hms, tzinfo=zone)
    if "year" not in values:
        raise ParseError("the pattern does not provide a year", text, None)
    year = values["year"]
    if "yday" in values:
        month, day = _checked(text, None, from_day_of_year, year, values["yday"])
    elif "month" in values:
        month, day = values["month"], values.get("day", 1)
    else:
        raise ParseError("the pattern does not provide a month", text, None)
    _checked(text, None, validate_date, year, month, day)
    if "weekday" in values and weekday(year, month, day) != values["weekday"]:
        raise ParseError(f"{year:04d}-{month:02d}-{day:02d} is a "
                         f"{weekday_name(weekday(year, month, day))}", text, None)
    if has_time or zone is not None:
        return datetime(year, month, day, *hms, tzinfo=zone)
    return date(year, month, day)
