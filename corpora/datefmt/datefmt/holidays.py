"""Rule-based holiday calendars usable wherever a holiday set is expected."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Iterable, Protocol

from .arithmetic import add_days, nth_weekday
from .calendar_math import date_to_ordinal, date_weekday
from .names import month_name, weekday_name, with_ordinal


def easter_sunday(year: int) -> date:
    """Return Western (Gregorian) Easter Sunday using the anonymous algorithm."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    leap = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * leap) // 451
    month, day = divmod(h + leap - 7 * m + 114, 31)
    return date(year, month, day + 1)


def observed(value: date) -> date:
    """Shift a Saturday holiday to Friday and a Sunday holiday to Monday."""
    day = date_weekday(value)
    if day == 5:
        return add_days(value, -1)
    if day == 6:
        return add_days(value, 1)
    return value


class HolidayRule(Protocol):
    name: str

    def date_in(self, year: int) -> date | None: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class FixedHoliday:
    """A holiday on the same month and day every year."""

    name: str
    month: int
    day: int
    weekend_observed: bool = False

    def date_in(self, year: int) -> date | None:
        actual = date(year, self.month, self.day)
        return observed(actual) if self.weekend_observed else actual

    def describe(self) -> str:
        text = f"{self.name}: {self.day} {month_name(self.month)}"
        return text + (" (observed)" if self.weekend_observed else "")


@dataclass(frozen=True)
class WeekdayHoliday:
    """A holiday on the n-th weekday of a month (negative n counts from the end)."""

    name: str
    month: int
    weekday: int
    n: int

    def date_in(self, year: int) -> date | None:
        return nth_weekday(year, self.month, self.weekday, self.n)

    def describe(self) -> str:
        which = "last" if self.n == -1 else with_ordinal(self.n)
        return f"{self.name}: {which} {weekday_name(self.weekday)} of {month_name(self.month)}"


@dataclass(frozen=True)
class EasterHoliday:
    """A holiday a fixed number of days from Easter Sunday."""

    name: str
    offset: int = 0

    def date_in(self, year: int) -> date | None:
        return add_days(easter_sunday(year), self.offset)

    def describe(self) -> str:
        if self.offset == 0:
            return f"{self.name}: Easter Sunday"
        relation = "after" if self.offset > 0 else "before"
        return f"{self.name}: {abs(self.offset)} days {relation} Easter Sunday"


class HolidayCalendar:
    """A set of holiday rules that behaves like a collection of dates."""

    def __init__(self, rules: Iterable[HolidayRule] = ()) -> None:
        self.rules: list[HolidayRule] = list(rules)
        self._cache: dict[int, dict[date, str]] = {}

    def add(self, rule: HolidayRule) -> None:
        self.rules.append(rule)
        self._cache.clear()

    def holidays_in(self, year: int) -> dict[date, str]:
        """Return ``{date: name}`` for holidays observed in *year*, in date order.

        Rules are evaluated for neighbouring years too, because an observed
        date can cross a year boundary (1 January on a Saturday is observed
        on 31 December).
        """
        if year not in self._cache:
            found: dict[date, str] = {}
            for rule_year in (year - 1, year, year + 1):
                if not 1 <= rule_year <= 9999:
                    continue
                for rule in self.rules:
                    when = rule.date_in(rule_year)
                    if when is not None and when.year == year:
                        found.setdefault(date(when.year, when.month, when.day), rule.name)
            self._cache[year] = dict(sorted(found.items(), key=lambda kv: date_to_ordinal(kv[0])))
        return self._cache[year]

    def name_of(self, value: date) -> str | None:
        return self.holidays_in(value.year).get(date(value.year, value.month, value.day))

    def __contains__(self, value: object) -> bool:
        return isinstance(value, date) and self.name_of(value) is not None

    def dates_between(self, start: date, end: date) -> list[date]:
        """Return holiday dates in ``[start, end)`` in order."""
        first, last = date_to_ordinal(start), date_to_ordinal(end)
        result = []
        for year in range(start.year, end.year + 1):
            for when in self.holidays_in(year):
                if first <= date_to_ordinal(when) < last:
                    result.append(when)
        return result


def us_federal_calendar() -> HolidayCalendar:
    """Return the United States federal holidays (as observed since 2021)."""
    return HolidayCalendar([
        FixedHoliday("New Year's Day", 1, 1, weekend_observed=True),
        WeekdayHoliday("Martin Luther King Jr. Day", 1, 0, 3),
        WeekdayHoliday("Washington's Birthday", 2, 0, 3),
        WeekdayHoliday("Memorial Day", 5, 0, -1),
        FixedHoliday("Juneteenth", 6, 19, weekend_observed=True),
        FixedHoliday("Independence Day", 7, 4, weekend_observed=True),
        WeekdayHoliday("Labor Day", 9, 0, 1),
        WeekdayHoliday("Columbus Day", 10, 0, 2),
        FixedHoliday("Veterans Day", 11, 11, weekend_observed=True),
        WeekdayHoliday("Thanksgiving Day", 11, 3, 4),
        FixedHoliday("Christmas Day", 12, 25, weekend_observed=True),
    ])
