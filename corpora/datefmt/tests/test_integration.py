from datetime import date, datetime, timedelta, timezone

from datefmt import (add_business_days, add_duration, difference, format_date, format_human,
                     isoformat, iso_week_string, parse, parse_date, parse_datetime,
                     parse_duration, parse_relative, parse_with_pattern, us_federal_calendar)


def test_parse_add_and_format_pipeline():
    start = parse_datetime("Fri 29 Mar 2024 4:45 pm")
    later = add_duration(start, parse_duration("P1MT8H"))
    assert format_date(later, "%a %-d %b %Y %H:%M") == "Tue 30 Apr 2024 00:45"


def test_invoice_due_date_in_business_days():
    issued = parse_date("2024-12-20")
    due = add_business_days(issued, 5, us_federal_calendar())
    assert format_date(due, "%A, %o %B") == "Monday, 30th December"


def test_week_date_round_trip_through_formatting():
    for text in ("2020-W53-7", "2025-W01-1", "2024-W09-7"):
        assert iso_week_string(parse(text)) == text


def test_difference_between_parsed_offsets_formats_as_human_text():
    departure = parse_datetime("2024-03-10T08:15+01:00")
    arrival = parse_datetime("2024-03-10T10:40-05:00")
    assert format_human(difference(departure, arrival)) == "8h 25m"


def test_relative_result_formatted_with_pattern():
    reference = parse_date("3 March 2024")
    result = parse_relative("end of next quarter", reference)
    assert format_date(result, "%F (Q%q, day %j)") == "2024-06-30 (Q2, day 182)"


def test_pattern_and_iso_parsers_agree():
    value = parse_with_pattern("31.12.1999 23:59:58", "%d.%m.%Y %H:%M:%S")
    assert value == parse("1999-12-31T23:59:58")
    assert isoformat(add_duration(value, parse_duration("2s"))) == "2000-01-01T00:00:00"


def test_offset_survives_parse_format_parse():
    original = datetime(2024, 7, 1, 6, 30, tzinfo=timezone(timedelta(hours=-7)))
    text = format_date(original, "%d/%m/%Y %H:%M %:z")
    assert text == "01/07/2024 06:30 -07:00"
    assert parse_with_pattern(text, "%d/%m/%Y %H:%M %:z") == original


def test_leap_day_anniversaries():
    leap_day = parse_date("February 29th, 2024")
    anniversaries = [format_date(add_duration(leap_day, parse_duration(f"{n}y")), "%F")
                     for n in (1, 4)]
    assert anniversaries == ["2025-02-28", "2028-02-29"]
    assert parse_relative("last year", date(2024, 2, 29)) == date(2023, 2, 28)
