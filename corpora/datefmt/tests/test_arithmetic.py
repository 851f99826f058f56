import unittest
from datetime import date, datetime, timedelta, timezone

from datefmt import (DateError, Duration, EasterHoliday, FixedHoliday, HolidayCalendar,
                     RangeError, WeekdayHoliday, add_business_days, add_days, add_duration,
                     add_months, add_years, age, business_days_between, calendar_difference,
                     date_range, days_between, difference, easter_sunday, end_of_month,
                     end_of_quarter, is_business_day, month_sequence, months_between,
                     next_weekday, nth_weekday, observed, parse_date, parse_duration,
                     previous_weekday, roll, start_of_quarter, start_of_week,
                     subtract_duration, us_federal_calendar)


class MonthArithmeticTests(unittest.TestCase):
    def test_add_months_clamps_to_month_end(self):
        self.assertEqual(add_months(date(2024, 1, 31), 1), date(2024, 2, 29))
        self.assertEqual(add_months(date(2023, 1, 31), 1), date(2023, 2, 28))
        self.assertEqual(add_months(date(2024, 3, 31), -1), date(2024, 2, 29))
        self.assertEqual(add_months(date(2024, 11, 30), 3), date(2025, 2, 28))
        self.assertEqual(add_months(date(2024, 1, 15), -13), date(2022, 12, 15))

    def test_add_years_from_leap_day(self):
        self.assertEqual(add_years(date(2024, 2, 29), 1), date(2025, 2, 28))
        self.assertEqual(add_years(date(2024, 2, 29), 4), date(2028, 2, 29))

    def test_datetime_keeps_time_and_offset(self):
        start = datetime(2024, 1, 31, 9, 30, tzinfo=timezone.utc)
        self.assertEqual(add_months(start, 1), datetime(2024, 2, 29, 9, 30, tzinfo=timezone.utc))
        self.assertEqual(add_days(start, 366), datetime(2025, 1, 31, 9, 30, tzinfo=timezone.utc))

    def test_out_of_range(self):
        with self.assertRaises(RangeError):
            add_months(date(9999, 12, 1), 1)

    def test_month_sequence_keeps_anchor(self):
        self.assertEqual(month_sequence(date(2024, 1, 31), 4), [
            date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31), date(2024, 4, 30)])


class DurationArithmeticTests(unittest.TestCase):
    def test_add_parsed_duration_to_datetime(self):
        start = datetime(2024, 3, 3, 22, 30)
        self.assertEqual(add_duration(start, parse_duration("P1M2DT3H")),
                         datetime(2024, 4, 6, 1, 30))
        self.assertEqual(subtract_duration(start, parse_duration("23h")),
                         datetime(2024, 3, 2, 23, 30))

    def test_add_duration_to_plain_date(self):
        self.assertEqual(add_duration(date(2024, 1, 31), parse_duration("1mo 1d")),
                         date(2024, 3, 1))
        with self.assertRaises(DateError):
            add_duration(date(2024, 1, 31), parse_duration("1h"))

    def test_difference_respects_offsets(self):
        utc = datetime(2024, 3, 3, 10, 0, tzinfo=timezone.utc)
        plus_two = datetime(2024, 3, 3, 13, 30, tzinfo=timezone(timedelta(hours=2)))
        self.assertEqual(str(difference(utc, plus_two)), "1h 30m")
        self.assertEqual(difference(plus_two, utc), -Duration.of(minutes=90))
        with self.assertRaises(DateError):
            difference(utc, datetime(2024, 3, 3))

    def test_difference_round_trips_with_add(self):
        start = datetime(2023, 12, 30, 18, 45, 10)
        end = datetime(2024, 3, 1, 6, 0, 0)
        self.assertEqual(add_duration(start, difference(start, end)), end)


class CalendarDifferenceTests(unittest.TestCase):
    def test_days_and_months_between(self):
        self.assertEqual(days_between(date(2024, 1, 1), date(2025, 1, 1)), 366)
        self.assertEqual(months_between(date(2024, 1, 31), date(2024, 2, 29)), 1)
        self.assertEqual(months_between(date(2024, 1, 31), date(2024, 2, 28)), 0)
        self.assertEqual(months_between(date(2024, 5, 10), date(2024, 2, 11)), -2)

    def test_calendar_difference_and_age(self):
        self.assertEqual(calendar_difference(date(1990, 5, 17), date(2024, 3, 3)), (33, 9, 15))
        self.assertEqual(calendar_difference(date(2024, 3, 3), date(2024, 1, 1)), (0, -2, -2))
        self.assertEqual(age(parse_date("17 May 1990"), date(2024, 5, 16)), 33)
        self.assertEqual(age(date(1990, 5, 17), date(2024, 5, 17)), 34)
        with self.assertRaises(DateError):
            age(date(2000, 1, 1), date(1999, 1, 1))


class WeekdayTests(unittest.TestCase):
    def test_next_and_previous(self):
        sunday = date(2024, 3, 3)
        self.assertEqual(next_weekday(sunday, 4), date(2024, 3, 8))
        self.assertEqual(next_weekday(sunday, 6), date(2024, 3, 10))
        self.assertEqual(next_weekday(sunday, 6, include_today=True), sunday)
        self.assertEqual(previous_weekday(sunday, 0), date(2024, 2, 26))

    def test_nth_weekday_of_month(self):
        self.assertEqual(nth_weekday(2024, 11, 3, 4), date(2024, 11, 28))
        self.assertEqual(nth_weekday(2024, 5, 0, -1), date(2024, 5, 27))
        self.assertEqual(nth_weekday(2024, 2, 3, 5), date(2024, 2, 29))
        with self.assertRaises(RangeError):
            nth_weekday(2024, 2, 4, 5)

    def test_period_boundaries(self):
        value = date(2024, 8, 14)
        self.assertEqual(start_of_week(value), date(2024, 8, 12))
        self.assertEqual(start_of_week(value, first_day=6), date(2024, 8, 11))
        self.assertEqual(end_of_month(date(2024, 2, 3)), date(2024, 2, 29))
        self.assertEqual(start_of_quarter(value), date(2024, 7, 1))
        self.assertEqual(end_of_quarter(value), date(2024, 9, 30))

    def test_date_range(self):
        self.assertEqual(list(date_range(date(2024, 2, 27), date(2024, 3, 2))),
                         [date(2024, 2, 27), date(2024, 2, 28), date(2024, 2, 29), date(2024, 3, 1)])
        self.assertEqual(list(date_range(date(2024, 3, 10), date(2024, 3, 1), -4)),
                         [date(2024, 3, 10), date(2024, 3, 6), date(2024, 3, 2)])


class BusinessDayTests(unittest.TestCase):
    def test_add_business_days_skips_weekends(self):
        self.assertEqual(add_business_days(date(2024, 3, 1), 1), date(2024, 3, 4))
        self.assertEqual(add_business_days(date(2024, 3, 4), -1), date(2024, 3, 1))
        self.assertEqual(add_business_days(date(2024, 3, 2), 0), date(2024, 3, 4))
        self.assertEqual(add_business_days(date(2024, 3, 1), 10), date(2024, 3, 15))

    def test_custom_weekend_and_holidays(self):
        holidays = {date(2024, 3, 5)}
        self.assertEqual(add_business_days(date(2024, 3, 4), 1, holidays), date(2024, 3, 6))
        friday_saturday = {4, 5}
        self.assertEqual(add_business_days(date(2024, 3, 7), 1, weekend=friday_saturday),
                         date(2024, 3, 10))
        with self.assertRaises(DateError):
            add_business_days(date(2024, 3, 7), 1, weekend=range(7))

    def test_business_days_between_matches_stepping(self):
        holidays = {date(2024, 3, 29), date(2024, 4, 1), date(2024, 3, 30)}
        start = date(2024, 3, 1)
        for end in (date(2024, 3, 1), date(2024, 3, 8), date(2024, 4, 17)):
            count = business_days_between(start, end, holidays)
            stepped = sum(1 for d in date_range(start, end) if is_business_day(d, holidays))
            self.assertEqual(count, stepped)
        self.assertEqual(business_days_between(date(2024, 3, 1), date(2024, 3, 31)), 21)
        self.assertEqual(business_days_between(date(2024, 3, 31), date(2024, 3, 1)), -21)

    def test_roll_conventions(self):
        saturday = date(2024, 8, 31)
        self.assertEqual(roll(saturday), date(2024, 9, 2))
        self.assertEqual(roll(saturday, "preceding"), date(2024, 8, 30))
        self.assertEqual(roll(saturday, "modified_following"), date(2024, 8, 30))
        self.assertEqual(roll(date(2024, 6, 1), "modified_following"), date(2024, 6, 3))


class HolidayTests(unittest.TestCase):
    def test_easter_dates(self):
        self.assertEqual([easter_sunday(y) for y in (2019, 2024, 2025, 2038)], [
            date(2019, 4, 21), date(2024, 3, 31), date(2025, 4, 20), date(2038, 4, 25)])

    def test_observed_shift(self):
        self.assertEqual(observed(date(2022, 12, 25)), date(2022, 12, 26))
        self.assertEqual(observed(date(2021, 12, 25)), date(2021, 12, 24))
        self.assertEqual(observed(date(2024, 12, 25)), date(2024, 12, 25))

    def test_us_federal_holidays(self):
        calendar = us_federal_calendar()
        dates_2022 = calendar.holidays_in(2022)
        self.assertEqual(len(dates_2022), 10)
        self.assertEqual(calendar.name_of(date(2021, 12, 31)), "New Year's Day")
        self.assertEqual(calendar.name_of(date(2022, 11, 24)), "Thanksgiving Day")
        self.assertIn(date(2022, 6, 20), calendar)
        self.assertNotIn(date(2022, 6, 19), calendar)

    def test_calendar_drives_business_day_functions(self):
        calendar = us_federal_calendar()
        self.assertEqual(business_days_between(date(2024, 1, 1), date(2025, 1, 1), calendar), 251)
        self.assertEqual(add_business_days(date(2024, 11, 27), 1, calendar), date(2024, 11, 29))
        self.assertEqual(roll(date(2024, 12, 25), "following", calendar), date(2024, 12, 26))

    def test_custom_rules_and_descriptions(self):
        calendar = HolidayCalendar([EasterHoliday("Good Friday", -2), EasterHoliday("Easter Monday", 1)])
        calendar.add(FixedHoliday("Boxing Day", 12, 26))
        self.assertEqual(list(calendar.holidays_in(2024)),
                         [date(2024, 3, 29), date(2024, 4, 1), date(2024, 12, 26)])
        self.assertEqual(calendar.dates_between(date(2024, 4, 1), date(2025, 4, 1)),
                         [date(2024, 4, 1), date(2024, 12, 26)])
        self.assertEqual(calendar.rules[0].describe(), "Good Friday: 2 days before Easter Sunday")
        self.assertEqual(WeekdayHoliday("Labor Day", 9, 0, 1).describe(),
                         "Labor Day: 1st Monday of September")
        self.assertEqual(FixedHoliday("Juneteenth", 6, 19, True).describe(),
                         "Juneteenth: 19 June (observed)")
