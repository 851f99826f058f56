from datetime import date, datetime, time, timedelta, timezone

import pytest

from datefmt import (DateFormatter, FormatError, compile_pattern, format_date, format_preset,
                     iso_week_string, isoformat, ordinal_date_string, parse_datetime,
                     parse_with_pattern)

IST = timezone(timedelta(hours=5, minutes=30))
SAMPLE = datetime(2024, 3, 3, 14, 5, 9, 123456, tzinfo=IST)


def test_numeric_directives():
    assert format_date(SAMPLE, "%Y-%m-%d %H:%M:%S.%f") == "2024-03-03 14:05:09.123456"
    assert format_date(SAMPLE, "%j %u %w %V %G %q %C %y") == "063 7 0 09 2024 1 20 24"


def test_names_and_twelve_hour_clock():
    assert format_date(SAMPLE, "%A %-d %B %Y") == "Sunday 3 March 2024"
    assert format_date(SAMPLE, "%a %e %b, %I:%M %p") == "Sun  3 Mar, 02:05 PM"
    assert format_date(datetime(2024, 1, 1, 0, 30), "%-I:%M%P") == "12:30am"
    assert format_date(SAMPLE, "the %o of %B") == "the 3rd of March"


def test_flags_and_widths():
    assert format_date(SAMPLE, "%^a|%10B|%-m/%-d|%_H") == "SUN|     March|3/3|14"
    assert format_date(date(2024, 3, 9), "%_d|%5d|%-j|%3Y") == " 9|00009|69|2024"
    assert format_date(SAMPLE, "%3f|%L|%-f|%8f") == "123|123|123456|12345600"


def test_offsets_and_epoch_seconds():
    assert format_date(SAMPLE, "%z %:z %Z") == "+0530 +05:30 UTC+05:30"
    assert format_date(datetime(2024, 1, 1, tzinfo=timezone.utc), "%s %Z") == "1704067200 UTC"
    assert format_date(SAMPLE, "%s") == "1709454909"
    assert format_date(datetime(2024, 1, 1), "[%z%Z]") == "[]"


def test_composite_and_literal_directives():
    assert format_date(SAMPLE, "%F %T") == "2024-03-03 14:05:09"
    assert format_date(SAMPLE, "%D %R") == "03/03/24 14:05"
    assert format_date(SAMPLE, "%c") == "Sun Mar  3 14:05:09 2024"
    assert format_date(SAMPLE, "100%%%n%t") == "100%\n\t"


def test_dates_format_as_midnight_and_times_reject_date_codes():
    assert format_date(date(2024, 2, 29), "%F %T") == "2024-02-29 00:00:00"
    assert format_date(time(7, 8, 9), "%H:%M:%S") == "07:08:09"
    with pytest.raises(FormatError) as info:
        format_date(time(7, 8), "%H %d")
    assert info.value.message == "directive '%d' needs a date"
    assert info.value.position == 3


@pytest.mark.parametrize("pattern, position", [("abc %Q", 4), ("%", 0), ("x %:y", 2), ("%-", 0)])
def test_invalid_patterns(pattern, position):
    with pytest.raises(FormatError) as info:
        compile_pattern(pattern)
    assert info.value.position == position


def test_compiled_pattern_structure():
    items = compile_pattern("Day %-d!")
    assert items[0] == "Day "
    assert (items[1].code, items[1].flag, items[1].width) == ("d", "-", None)
    assert items[2] == "!"
    assert DateFormatter("%H:%M").needs_date is False
    assert DateFormatter("%H %Y").needs_date is True


def test_isoformat_variants():
    assert isoformat(SAMPLE) == "2024-03-03T14:05:09.123456+05:30"
    assert isoformat(SAMPLE, sep=" ", timespec="minutes") == "2024-03-03 14:05+05:30"
    assert isoformat(datetime(2024, 3, 3, 14, 5)) == "2024-03-03T14:05:00"
    assert isoformat(time(9, 5, 1, 250000), timespec="milliseconds") == "09:05:01.250"
    assert isoformat(date(33, 1, 5)) == "0033-01-05"


def test_week_and_ordinal_strings():
    assert iso_week_string(date(2021, 1, 3)) == "2020-W53-7"
    assert ordinal_date_string(date(2024, 12, 31)) == "2024-366"


def test_presets():
    assert format_preset(date(2024, 3, 3), "long") == "Sunday, 3 March 2024"
    assert format_preset(SAMPLE, "rfc2822") == "Sun, 03 Mar 2024 14:05:09 +0530"
    with pytest.raises(FormatError):
        format_preset(SAMPLE, "fancy")


def test_format_then_parse_round_trip():
    pattern = "%A, %-d %B %Y %I:%M:%S %p %:z"
    text = format_date(SAMPLE.replace(microsecond=0), pattern)
    assert text == "Sunday, 3 March 2024 02:05:09 PM +05:30"
    assert parse_with_pattern(text, pattern) == SAMPLE.replace(microsecond=0)
    assert parse_datetime(isoformat(SAMPLE)) == SAMPLE
