import pytest

from exprcalc import TokenKind, TokenizeError, tokenize


def kinds(source):
    return [token.kind for token in tokenize(source)]


def test_simple_expression_kinds():
    assert kinds("1 + x*2") == [
        TokenKind.NUMBER, TokenKind.PLUS, TokenKind.IDENT,
        TokenKind.STAR, TokenKind.NUMBER, TokenKind.EOF,
    ]


def test_token_positions_skip_whitespace():
    tokens = tokenize("  ab  +\t7")
    assert [(t.text, t.position) for t in tokens] == [("ab", 2), ("+", 6), ("7", 8), ("", 9)]


def test_two_character_operators_are_preferred():
    assert kinds("a ** b // c <= d != e") == [
        TokenKind.IDENT, TokenKind.POW, TokenKind.IDENT, TokenKind.DSLASH,
        TokenKind.IDENT, TokenKind.LE, TokenKind.IDENT, TokenKind.NE,
        TokenKind.IDENT, TokenKind.EOF,
    ]


@pytest.mark.parametrize("source, value", [
    ("42", 42),
    ("1_000_000", 1000000),
    ("0x1F", 31),
    ("0b1011", 11),
    ("2.5", 2.5),
    (".5", 0.5),
    ("1e3", 1000.0),
    ("2.5E-2", 0.025),
])
def test_number_literal_values(source, value):
    token = tokenize(source)[0]
    assert token.kind is TokenKind.NUMBER
    assert token.value == value
    assert type(token.value) is type(value)


def test_comment_runs_to_end_of_line():
    tokens = tokenize("1 # ignored + 2\n+ 3")
    assert [t.text for t in tokens] == ["1", "+", "3", ""]


def test_factorial_bang_and_not_equal_are_distinct():
    assert kinds("3! != 6") == [
        TokenKind.NUMBER, TokenKind.BANG, TokenKind.NE, TokenKind.NUMBER, TokenKind.EOF,
    ]


def test_unexpected_character_reports_position():
    with pytest.raises(TokenizeError) as info:
        tokenize("1 + $x")
    assert info.value.position == 4
    assert "'$'" in info.value.message


def test_number_followed_by_letter_is_malformed():
    with pytest.raises(TokenizeError) as info:
        tokenize("3 + 2x")
    assert info.value.position == 4
    assert info.value.message == "malformed number '2x'"


@pytest.mark.parametrize("source", ["1__0", "1_", "1e", "0x", "1.2.3", "0b102"])
def test_invalid_number_forms(source):
    with pytest.raises(TokenizeError):
        tokenize(source)


def test_error_pointer_draws_caret_under_position():
    with pytest.raises(TokenizeError) as info:
        tokenize("ab @")
    assert info.value.pointer("ab @") == "ab @\n   ^"
    assert str(info.value) == "unexpected character '@' (at position 3)"
