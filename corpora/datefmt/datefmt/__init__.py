"""datefmt: parse, format and calculate with calendar dates and times.

All computations are pure functions of their arguments; nothing reads the
system clock or a time zone database.  ``datetime.date``, ``datetime.time``
and ``datetime.datetime`` serve as value types, with fixed UTC offsets only.
"""

from .arithmetic import (add_business_days, add_days, add_duration, add_months, add_years,
                         age, business_days_between, calendar_difference, date_range,
                         days_between, difference, end_of_month, end_of_quarter,
                         is_business_day, month_sequence, months_between, next_weekday,
                         nth_weekday, previous_weekday, roll, start_of_month,
                         start_of_quarter, start_of_week, subtract_duration)
from .calendar_math import (days_in_month, from_iso_calendar, from_ordinal, is_leap_year,
                            iso_calendar, to_ordinal, weekday, weeks_in_iso_year)
from .duration import Duration, format_clock, format_human, format_iso, parse_duration
from .errors import DateError, FormatError, ParseError, RangeError
from .formatting import (DateFormatter, compile_pattern, format_date, format_preset,
                         isoformat, iso_week_string, ordinal_date_string)
from .holidays import (EasterHoliday, FixedHoliday, HolidayCalendar, WeekdayHoliday,
                       easter_sunday, observed, us_federal_calendar)
from .parsing import (InvalidValueError, parse, parse_date, parse_datetime, parse_iso,
                      parse_iso_time, parse_time, parse_with_pattern)
from .relative import describe_relative, parse_relative

__all__ = [
    "DateError", "DateFormatter", "Duration", "EasterHoliday", "FixedHoliday", "FormatError",
    "HolidayCalendar", "InvalidValueError", "ParseError", "RangeError", "WeekdayHoliday",
    "add_business_days", "add_days", "add_duration", "add_months", "add_years", "age",
    "business_days_between", "calendar_difference", "compile_pattern", "date_range",
    "days_between", "days_in_month", "describe_relative", "difference", "easter_sunday",
    "end_of_month", "end_of_quarter", "format_clock", "format_date", "format_human",
    "format_iso", "format_preset", "from_iso_calendar", "from_ordinal", "is_business_day",
    "is_leap_year", "iso_calendar", "iso_week_string", "isoformat", "month_sequence",
    "months_between", "next_weekday", "nth_weekday", "observed", "ordinal_date_string",
    "parse", "parse_date", "parse_datetime", "parse_duration", "parse_iso", "parse_iso_time",
    "parse_relative", "parse_time", "parse_with_pattern", "previous_weekday", "roll",
    "start_of_month", "start_of_quarter", "start_of_week", "subtract_duration",
    "to_ordinal", "us_federal_calendar", "weekday", "weeks_in_iso_year",
]
