import pytest

from datefmt import DateError, Duration, FormatError, ParseError, format_clock, format_human, parse_duration

HOUR = 3_600_000_000
MINUTE = 60_000_000
DAY = 24 * HOUR


@pytest.mark.parametrize("text, expected", [
    ("1h30m", Duration(0, 90 * MINUTE)),
    ("P1DT2H", Duration(0, DAY + 2 * HOUR)),
    ("P1Y2M", Duration(14, 0)),
    ("P2W", Duration(0, 14 * DAY)),
    ("PT0.5S", Duration(0, 500_000)),
    ("2 hours and 30 minutes", Duration(0, 150 * MINUTE)),
    ("1.5h", Duration(0, 90 * MINUTE)),
    ("1 day, 1 second", Duration(0, DAY + 1_000_000)),
    ("1:02:03.25", Duration(0, HOUR + 2 * MINUTE + 3_250_000)),
    ("-PT45M", Duration(0, -45 * MINUTE)),
    ("250ms", Duration(0, 250_000)),
])
def test_parse_duration_forms(text, expected):
    assert parse_duration(text) == expected


def test_of_constructor_combines_units():
    assert Duration.of(years=1, months=2, weeks=1, days=1, hours=1) == Duration(14, 8 * DAY + HOUR)


def test_iso_formatting():
    assert parse_duration("P1Y2M3DT4H5M6.5S").isoformat() == "P1Y2M3DT4H5M6.5S"
    assert parse_duration("3w 2d").isoformat() == "P23D"
    assert Duration().isoformat() == "PT0S"
    assert (-Duration.of(minutes=90)).isoformat() == "-PT1H30M"


def test_iso_rejects_mixed_signs():
    with pytest.raises(FormatError):
        Duration(1, -DAY).isoformat()


def test_human_formatting_short_and_long():
    value = parse_duration("P1DT2H0M3S")
    assert str(value) == "1d 2h 3s"
    assert format_human(value, long=True) == "1 day, 2 hours, 3 seconds"
    assert format_human(Duration(13, 0)) == "1y 1mo"
    assert format_human(Duration(), long=True) == "0 seconds"


def test_clock_formatting():
    assert format_clock(parse_duration("26h 5s")) == "26:00:05"
    assert format_clock(parse_duration("-1m 0.125s")) == "-0:01:00.125"
    with pytest.raises(FormatError):
        format_clock(Duration(1, 0))


def test_arithmetic_and_ordering():
    a = parse_duration("1h")
    b = parse_duration("45m")
    assert a + b == parse_duration("1h45m")
    assert a - b == parse_duration("15m")
    assert 3 * b == parse_duration("2h15m")
    assert b < a
    assert sorted([a, b, Duration()]) == [Duration(), b, a]
    assert (a - a) == Duration() and not (a - a)


def test_total_seconds_requires_exact_duration():
    assert parse_duration("PT1M30S").total_seconds() == 90.0
    with pytest.raises(DateError):
        parse_duration("P1M").total_seconds()
    with pytest.raises(DateError):
        _ = Duration(1, 0) < Duration(0, 5)


@pytest.mark.parametrize("text, message", [
    ("P", "duration has no components"),
    ("P1H", "expected a designator, found 'H'"),
    ("PT1H2H", "designator 'H' is out of order"),
    ("P1.5Y", "years and months must be whole numbers"),
    ("3 fortnights", "unknown unit 'fortnights'"),
    ("1h 2h", "unit 'h' given more than once"),
    ("1:3", "invalid minutes field '3'"),
])
def test_parse_errors(text, message):
    with pytest.raises(ParseError) as info:
        parse_duration(text)
    assert info.value.message == message


def test_parse_error_position():
    with pytest.raises(ParseError) as info:
        parse_duration("  2d 4x")
    assert info.value.position == 6
    assert str(info.value) == "unknown unit 'x' at position 6 in '  2d 4x'"
