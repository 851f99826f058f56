import unittest
from datetime import date, datetime, time, timedelta, timezone

from datefmt import (FormatError, InvalidValueError, ParseError, parse, parse_date,
                     parse_datetime, parse_iso, parse_time, parse_with_pattern)


class IsoParsingTests(unittest.TestCase):
    def test_calendar_week_and_ordinal_forms(self):
        for text in ("2024-03-03", "20240303", "2024-W09-7", "2024W097", "2024-063", "2024063"):
            with self.subTest(text=text):
                self.assertEqual(parse_iso(text), date(2024, 3, 3))

    def test_week_without_weekday_means_monday(self):
        self.assertEqual(parse_iso("2024-W09"), date(2024, 2, 26))

    def test_datetime_with_fraction_and_offsets(self):
        self.assertEqual(parse_iso("2024-03-03T14:05:09.5Z"),
                         datetime(2024, 3, 3, 14, 5, 9, 500000, tzinfo=timezone.utc))
        self.assertEqual(parse_iso("2024-03-03T14:05-03:30").utcoffset(),
                         -timedelta(hours=3, minutes=30))
        self.assertEqual(parse_iso("20240303T140509,25+0100"),
                         datetime(2024, 3, 3, 14, 5, 9, 250000,
                                  tzinfo=timezone(timedelta(hours=1))))

    def test_midnight_at_end_of_day_rolls_over(self):
        self.assertEqual(parse_iso("2024-12-31T24:00"), datetime(2025, 1, 1))

    def test_invalid_calendar_values(self):
        with self.assertRaises(InvalidValueError) as ctx:
            parse_iso("2023-02-29")
        self.assertEqual(ctx.exception.message, "day must be in 1..28 for 2023-02, got 29")
        with self.assertRaises(InvalidValueError):
            parse_iso("2021-W53-1")

    def test_syntax_error_position(self):
        with self.assertRaises(ParseError) as ctx:
            parse_iso("2024-03-0")
        self.assertEqual(ctx.exception.position, 8)
        self.assertEqual(ctx.exception.message, "expected 2-digit day")


class HumanParsingTests(unittest.TestCase):
    def test_month_name_forms(self):
        for text in ("3 Mar 2024", "March 3rd, 2024", "Sunday, 3 March 2024",
                     "3rd of March 2024", "mar 3 2024", "3-Mar-24", "3 MARCH 2024"):
            with self.subTest(text=text):
                self.assertEqual(parse_date(text), date(2024, 3, 3))

    def test_numeric_forms_and_day_first(self):
        self.assertEqual(parse_date("2024/03/04"), date(2024, 3, 4))
        self.assertEqual(parse_date("03/04/2024"), date(2024, 3, 4))
        self.assertEqual(parse_date("03/04/2024", day_first=True), date(2024, 4, 3))
        self.assertEqual(parse_date("3.4.2024"), date(2024, 4, 3))
        self.assertEqual(parse_date("12/31/99"), date(1999, 12, 31))
        self.assertEqual(parse_date("1/2/30"), date(2030, 1, 2))

    def test_dates_with_times(self):
        self.assertEqual(parse_datetime("2024/03/03 14:05"), datetime(2024, 3, 3, 14, 5))
        self.assertEqual(parse_datetime("Mar 3 2024 2:05pm"), datetime(2024, 3, 3, 14, 5))
        self.assertEqual(parse_datetime("3 March 2024 at noon"), datetime(2024, 3, 3, 12, 0))
        self.assertEqual(parse_datetime("Tue 5 Mar 2024 9 a.m. UTC"),
                         datetime(2024, 3, 5, 9, 0, tzinfo=timezone.utc))
        self.assertEqual(parse_datetime("5 March 2024 14:00 +02:00").utcoffset(),
                         timedelta(hours=2))

    def test_parse_returns_date_or_datetime(self):
        self.assertEqual(type(parse("2024-3-7")), date)
        self.assertEqual(parse("2024-03-03 2pm"), datetime(2024, 3, 3, 14, 0))
        self.assertEqual(parse_datetime("7 Mar 2024"), datetime(2024, 3, 7, 0, 0))

    def test_default_year(self):
        self.assertEqual(parse_date("5 June", default_year=2023), date(2023, 6, 5))
        with self.assertRaises(ParseError) as ctx:
            parse_date("5 June")
        self.assertEqual(ctx.exception.message, "missing year")

    def test_weekday_must_agree_with_date(self):
        with self.assertRaises(ParseError) as ctx:
            parse_date("Monday, 3 March 2024")
        self.assertEqual(ctx.exception.message, "2024-03-03 is a Sunday, not a Monday")

    def test_human_errors(self):
        cases = {
            "3 Foo 2024": "unrecognised word 'Foo'",
            "31/31/2024": "month must be in 1..12, got 31",
            "1/2-2024": "numeric dates need two identical separators",
            "March 2024": "missing day of the month",
            "2024-03-03x": "unexpected 'x' after the date",
        }
        for text, message in cases.items():
            with self.subTest(text=text):
                with self.assertRaises(ParseError) as ctx:
                    parse(text)
                self.assertEqual(ctx.exception.message, message)

    def test_parse_date_rejects_time(self):
        with self.assertRaises(ParseError):
            parse_date("2024-03-03T10:00")


class TimeParsingTests(unittest.TestCase):
    def test_time_forms(self):
        self.assertEqual(parse_time("2pm"), time(14, 0))
        self.assertEqual(parse_time("12am"), time(0, 0))
        self.assertEqual(parse_time("12:30 pm"), time(12, 30))
        self.assertEqual(parse_time("midnight"), time(0, 0))
        self.assertEqual(parse_time("14:05:30.25"), time(14, 5, 30, 250000))
        self.assertEqual(parse_time("T08:15Z"), time(8, 15, tzinfo=timezone.utc))

    def test_time_errors(self):
        with self.assertRaises(ParseError) as ctx:
            parse_time("13 pm")
        self.assertEqual(ctx.exception.message, "hour 13 cannot be used with pm")
        with self.assertRaises(ParseError):
            parse_time("24:00")


class PatternParsingTests(unittest.TestCase):
    def test_patterns(self):
        self.assertEqual(parse_with_pattern("03/04/2024 14:05", "%d/%m/%Y %H:%M"),
                         datetime(2024, 4, 3, 14, 5))
        self.assertEqual(parse_with_pattern("Sun, 3 Mar 2024 2:05 PM", "%a, %-d %b %Y %I:%M %p"),
                         datetime(2024, 3, 3, 14, 5))
        self.assertEqual(parse_with_pattern("2024-063", "%Y-%j"), date(2024, 3, 3))
        self.assertEqual(parse_with_pattern("March 2024", "%B %Y"), date(2024, 3, 1))
        self.assertEqual(parse_with_pattern("14:05:09.123 +0530", "%T.%L %z"),
                         time(14, 5, 9, 123000, tzinfo=timezone(timedelta(hours=5, minutes=30))))

    def test_pattern_errors(self):
        with self.assertRaises(ParseError) as ctx:
            parse_with_pattern("2024-03-03 extra", "%F")
        self.assertEqual(ctx.exception.position, 10)
        with self.assertRaises(ParseError):
            parse_with_pattern("Mon 2024-03-03", "%a %F")
        with self.assertRaises(FormatError):
            parse_with_pattern("5", "%q")
