from datetime import date

import pytest

from datefmt import (RangeError, days_in_month, from_iso_calendar, from_ordinal, is_leap_year,
                     iso_calendar, to_ordinal, weekday, weeks_in_iso_year)
from datefmt.calendar_math import day_of_year, from_day_of_year, split_micros, validate_time
from datefmt.names import ordinal_suffix, parse_month, parse_weekday, with_ordinal


def test_gregorian_leap_rules():
    assert [y for y in (1900, 2000, 2023, 2024, 2100, 2400) if is_leap_year(y)] == [2000, 2024, 2400]


def test_days_in_month():
    assert [days_in_month(2024, 2), days_in_month(2023, 2), days_in_month(2023, 4),
            days_in_month(2023, 12)] == [29, 28, 30, 31]


def test_invalid_month():
    with pytest.raises(RangeError) as info:
        days_in_month(2024, 13)
    assert str(info.value) == "month must be in 1..12, got 13"


def test_known_ordinals():
    assert to_ordinal(1, 1, 1) == 1
    assert to_ordinal(1970, 1, 1) == 719163
    assert from_ordinal(738948) == (2024, 3, 3)
    assert from_ordinal(3652059) == (9999, 12, 31)


def test_ordinal_round_trip_agrees_with_standard_library():
    for ordinal in range(730000, 740000, 37):
        expected = date.fromordinal(ordinal)
        assert from_ordinal(ordinal) == (expected.year, expected.month, expected.day)
        assert to_ordinal(expected.year, expected.month, expected.day) == ordinal


def test_year_end_boundaries():
    assert from_ordinal(to_ordinal(2000, 12, 31)) == (2000, 12, 31)
    assert from_ordinal(to_ordinal(2100, 12, 31) + 1) == (2101, 1, 1)
    with pytest.raises(RangeError):
        from_ordinal(0)


def test_day_of_year_round_trip():
    assert day_of_year(2024, 12, 31) == 366
    assert day_of_year(2023, 3, 1) == 60
    assert from_day_of_year(2024, 60) == (2, 29)
    with pytest.raises(RangeError):
        from_day_of_year(2023, 366)


def test_weekday():
    assert weekday(2024, 3, 3) == 6
    assert weekday(2000, 1, 1) == 5
    assert weekday(1, 1, 1) == 0


def test_iso_calendar_at_year_boundaries():
    assert iso_calendar(2021, 1, 3) == (2020, 53, 7)
    assert iso_calendar(2024, 12, 30) == (2025, 1, 1)
    assert iso_calendar(2026, 1, 1) == (2026, 1, 4)


def test_iso_calendar_matches_standard_library():
    for ordinal in range(737000, 739000, 13):
        d = date.fromordinal(ordinal)
        assert iso_calendar(d.year, d.month, d.day) == tuple(d.isocalendar())


def test_weeks_in_iso_year():
    assert {y: weeks_in_iso_year(y) for y in (2015, 2020, 2021, 2026)} == {
        2015: 53, 2020: 53, 2021: 52, 2026: 53}


def test_from_iso_calendar():
    assert from_iso_calendar(2020, 53, 7) == (2021, 1, 3)
    assert from_iso_calendar(2025, 1, 1) == (2024, 12, 30)
    with pytest.raises(RangeError):
        from_iso_calendar(2021, 53, 1)


def test_split_micros_and_validation():
    assert split_micros(50_709_123_456) == (14, 5, 9, 123_456)
    with pytest.raises(RangeError) as info:
        validate_time(12, 60)
    assert str(info.value) == "minute must be in 0..59, got 60"


def test_name_lookup_with_prefixes():
    assert parse_month("Sept") == 9
    assert parse_month("jun.") == 6
    assert parse_month("ju") is None
    assert parse_weekday("THURS") == 3
    assert parse_weekday("frog") is None


def test_ordinal_suffixes():
    assert [with_ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th"]
    assert ordinal_suffix(0) == "th"
