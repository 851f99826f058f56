import pytest

from inikit import ValueSyntaxError, format_value, parse_value, to_text
from inikit.values import ListNode, Scalar, coerce_scalar, describe, parse_node, split_comment


@pytest.mark.parametrize(
    "text, expected",
    [
        ("42", 42),
        ("-17", -17),
        ("1_000_000", 1000000),
        ("0x1F", 31),
        ("-0b101", -5),
        ("0o17", 15),
        ("3.25", 3.25),
        ("1e3", 1000.0),
        ("YES", True),
        ("off", False),
        ("007", "007"),
        ("hello world", "hello world"),
    ],
)
def test_coerce_scalar_types(text, expected):
    result = coerce_scalar(text)
    assert result == expected
    assert type(result) is type(expected)


def test_quoted_string_stays_string_and_unescapes():
    assert parse_value('"42"') == "42"
    assert parse_value(r'"a\tb\n\"c\" \\ d"') == 'a\tb\n"c" \\ d'


def test_nested_list_with_mixed_types():
    assert parse_value('[1, [true, "x, y"], 2.5, plain word,]') == [1, [True, "x, y"], 2.5, "plain word"]


def test_empty_list_and_empty_value():
    assert parse_value("[]") == []
    assert parse_value("   ") == ""


def test_parse_node_structure():
    node = parse_node('[a, "b"]')
    assert node == ListNode((Scalar("a", False), Scalar("b", True)))


def test_unterminated_quote_raises():
    with pytest.raises(ValueSyntaxError, match="unterminated quoted string"):
        parse_node('"abc')


def test_empty_list_item_raises():
    with pytest.raises(ValueSyntaxError, match="empty list item"):
        parse_node("[1,,2]")


def test_trailing_text_after_list_raises():
    with pytest.raises(ValueSyntaxError, match="unexpected text after value: 'x'"):
        parse_node("[1, 2] x")


def test_unknown_escape_raises():
    with pytest.raises(ValueSyntaxError, match=r"unknown escape sequence '\\q'"):
        parse_node(r'"a\qb"')


def test_split_comment_respects_quotes_and_spacing():
    assert split_comment('"a # b" # note') == ('"a # b"', " # note")
    assert split_comment("color#red ; alt") == ("color#red", " ; alt")
    assert split_comment("plain") == ("plain", "")


def test_format_value_quotes_ambiguous_strings():
    assert format_value("true") == '"true"'
    assert format_value("123") == '"123"'
    assert format_value(" padded") == '" padded"'
    assert format_value("cost $5") == '"cost $$5"'
    assert format_value("simple-word") == "simple-word"


def test_format_value_round_trips_through_parser():
    data = [1, -2.5, True, "a,b", ["nested", "x\ny"], "", "on"]
    assert parse_value(format_value(data)) == [1, -2.5, True, "a,b", ["nested", "x\ny"], "", "on"]


def test_format_value_rejects_unsupported_values():
    with pytest.raises(ValueError, match="non-finite"):
        format_value(float("inf"))
    with pytest.raises(TypeError, match="unsupported value type: dict"):
        format_value({"a": 1})


def test_to_text_and_describe():
    assert to_text([1, False, 2.5, "x"]) == "1, false, 2.5, x"
    assert describe("abc") == "string 'abc'"
    assert describe(True) == "boolean true"
    assert describe([1, "a b"]) == "list [1, a b]"
