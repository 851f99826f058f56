"""English month and weekday names, lookups and ordinal suffixes."""

from __future__ import annotations

from .errors import RangeError

MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July",
               "August", "September", "October", "November", "December")
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def month_name(month: int, abbreviated: bool = False) -> str:
    """Return the English name of *month* (1-12)."""
    if not 1 <= month <= 12:
        raise RangeError(f"month must be in 1..12, got {month}")
    name = MONTH_NAMES[month - 1]
    return name[:3] if abbreviated else name


def weekday_name(day: int, abbreviated: bool = False) -> str:
    """Return the English name of weekday *day* (0 = Monday)."""
    if not 0 <= day <= 6:
        raise RangeError(f"weekday must be in 0..6, got {day}")
    name = WEEKDAY_NAMES[day]
    return name[:3] if abbreviated else name


def _match_name(text: str, names: tuple[str, ...]) -> int | None:
    word = text.strip().rstrip(".").lower()
    if len(word) < 3:
        return None
    matches = [i for i, name in enumerate(names) if name.lower().startswith(word)]
    return matches[0] if len(matches) == 1 else None


def parse_month(text: str) -> int | None:
    """Return the month number for a name or unique prefix such as ``"Sept"``."""
    index = _match_name(text, MONTH_NAMES)
    return None if index is None else index + 1


def parse_weekday(text: str) -> int | None:
    """Return the weekday number (0 = Monday) for a name or unique prefix."""
    return _match_name(text, WEEKDAY_NAMES)


def ordinal_suffix(number: int) -> str:
    """Return the English ordinal suffix for *number* (``st``, ``nd``, ...)."""
    if 10 <= abs(number) % 100 <= 20:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(abs(number) % 10, "th")


def with_ordinal(number: int) -> str:
    return f"{number}{ordinal_suffix(number)}"


def plural(count: int, unit: str) -> str:
    """Return e.g. ``"1 day"`` or ``"3 days"``."""
    return f"{count} {unit}" + ("" if abs(count) == 1 else "s")
