from datetime import date, datetime

import pytest

from datefmt import DateError, ParseError, describe_relative, parse_relative, us_federal_calendar

SUNDAY = date(2024, 3, 3)


@pytest.mark.parametrize("text, expected", [
    ("tomorrow", date(2024, 3, 4)),
    ("Yesterday", date(2024, 3, 2)),
    ("next friday", date(2024, 3, 8)),
    ("last sunday", date(2024, 2, 25)),
    ("this sunday", date(2024, 3, 3)),
    ("next month", date(2024, 4, 3)),
    ("last year", date(2023, 3, 3)),
    ("end of month", date(2024, 3, 31)),
    ("start of next quarter", date(2024, 4, 1)),
    ("end of last month", date(2024, 2, 29)),
    ("in 2 weeks", date(2024, 3, 17)),
    ("3 days ago", date(2024, 2, 29)),
    ("1y 2mo from now", date(2025, 5, 3)),
    ("in 3 business days", date(2024, 3, 6)),
])
def test_parse_relative_on_dates(text, expected):
    assert parse_relative(text, SUNDAY) == expected


def test_parse_relative_on_datetime_keeps_time():
    reference = datetime(2024, 1, 31, 8, 15)
    assert parse_relative("in 1 hour 50 minutes", reference) == datetime(2024, 1, 31, 10, 5)
    assert parse_relative("next month", reference) == datetime(2024, 2, 29, 8, 15)


def test_business_days_use_holiday_calendar():
    calendar = us_federal_calendar()
    assert parse_relative("in 1 business days", date(2024, 7, 3), calendar) == date(2024, 7, 5)
    assert parse_relative("2 business days ago", date(2024, 7, 8), calendar) == date(2024, 7, 3)


def test_unrecognised_relative_expression():
    with pytest.raises(ParseError):
        parse_relative("the day after the heat death", SUNDAY)
    with pytest.raises(ParseError):
        parse_relative("next fortnight", SUNDAY)


def test_describe_relative_dates():
    assert [describe_relative(d, SUNDAY) for d in (
        date(2024, 3, 3), date(2024, 3, 4), date(2024, 3, 1), date(2024, 3, 20),
        date(2024, 6, 3), date(2026, 4, 1), date(2022, 3, 3))] == [
        "today", "tomorrow", "2 days ago", "in 2 weeks", "in 3 months", "in 2 years",
        "2 years ago"]


def test_describe_relative_datetimes():
    reference = datetime(2024, 3, 3, 12, 0)
    assert describe_relative(datetime(2024, 3, 3, 12, 0, 30), reference) == "just now"
    assert describe_relative(datetime(2024, 3, 3, 12, 1), reference) == "in 1 minute"
    assert describe_relative(datetime(2024, 3, 3, 9, 0), reference) == "3 hours ago"
    assert describe_relative(datetime(2024, 3, 5, 12, 0), reference) == "in 2 days"
    assert describe_relative(datetime(2024, 5, 1), reference) == "in 1 month"


def test_describe_relative_rejects_mixed_types():
    with pytest.raises(DateError):
        describe_relative(datetime(2024, 3, 3, 1, 0), SUNDAY)
