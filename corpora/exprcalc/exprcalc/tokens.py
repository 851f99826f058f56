"""Lexical analysis: turn expression source text into a list of tokens."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .errors import TokenizeError

DECIMAL_DIGITS = "0123456789"
HEX_DIGITS = "0123456789abcdefABCDEF"
BINARY_DIGITS = "01"


class TokenKind(Enum):
    """The different kinds of token produced by the tokenizer."""

    NUMBER = "number"
    IDENT = "identifier"
    PLUS = "+"
    MINUS = "-"
    STAR = "*"
    SLASH = "/"
    DSLASH = "//"
    PERCENT = "%"
    POW = "^"
    BANG = "!"
    LPAREN = "("
    RPAREN = ")"
    COMMA = ","
    ASSIGN = "="
    SEMI = ";"
    EQ = "=="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    EOF = "end of input"


_TWO_CHAR_SYMBOLS = {
    "**": TokenKind.POW,
    "//": TokenKind.DSLASH,
    "==": TokenKind.EQ,
    "!=": TokenKind.NE,
    "<=": TokenKind.LE,
    ">=": TokenKind.GE,
}

_ONE_CHAR_SYMBOLS = {
    "+": TokenKind.PLUS,
    "-": TokenKind.MINUS,
    "*": TokenKind.STAR,
    "/": TokenKind.SLASH,
    "%": TokenKind.PERCENT,
    "^": TokenKind.POW,
    "!": TokenKind.BANG,
    "(": TokenKind.LPAREN,
    ")": TokenKind.RPAREN,
    ",": TokenKind.COMMA,
    "=": TokenKind.ASSIGN,
    ";": TokenKind.SEMI,
    "<": TokenKind.LT,
    ">": TokenKind.GT,
}


@dataclass(frozen=True)
class Token:
    """A single lexical token with its source position."""

    kind: TokenKind
    text: str
    position: int
    value: int | float | None = None

    def describe(self) -> str:
        """Return a human readable description used in error messages."""
        if self.kind is TokenKind.EOF:
            return "end of input"
        if self.kind is TokenKind.NUMBER:
            return f"number {self.text}"
        if self.kind is TokenKind.IDENT:
            return f"identifier '{self.text}'"
        return f"'{self.text}'"


def _digits_value(digits: str, base: int) -> int:
    """Convert a string of digits in the given base to an integer."""
    value = 0
    for ch in digits.lower():
        value = value * base + "0123456789abcdef".index(ch)
    return value


def _is_ident_start(ch: str) -> bool:
    return ch == "_" or (ch.isascii() and ch.isalpha())


def _is_ident_char(ch: str) -> bool:
    return ch == "_" or (ch.isascii() and ch.isalnum())


class Tokenizer:
    """Convert source text into tokens, one at a time or all at once."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.pos = 0

    def tokenize(self) -> list[Token]:
        """Return every token in the source, ending with an EOF token."""
        tokens = []
        while True:
            token = self.next_token()
            tokens.append(token)
            if token.kind is TokenKind.EOF:
                return tokens

    def _peek(self, offset: int = 0) -> str:
        index = self.pos + offset
        return self.source[index] if index < len(self.source) else ""

    def _skip_trivia(self) -> None:
        while True:
            ch = self._peek()
            if ch and ch.isspace():
                self.pos += 1
            elif ch == "#":
                while self._peek() and self._peek() != "\n":
                    self.pos += 1
            else:
                return

    def next_token(self) -> Token:
        """Read and return the next token."""
        self._skip_trivia()
        start = self.pos
        ch = self._peek()
        if not ch:
            return Token(TokenKind.EOF, "", start)
        if ch in DECIMAL_DIGITS or (ch == "." and self._peek(1) and self._peek(1) in DECIMAL_DIGITS):
            return self._read_number()
        if _is_ident_start(ch):
            while _is_ident_char(self._peek()):
                self.pos += 1
            return Token(TokenKind.IDENT, self.source[start:self.pos], start)
        pair = self.source[start:start + 2]
        if pair in _TWO_CHAR_SYMBOLS:
            self.pos += 2
            return Token(_TWO_CHAR_SYMBOLS[pair], pair, start)
        if ch in _ONE_CHAR_SYMBOLS:
            self.pos += 1
            return Token(_ONE_CHAR_SYMBOLS[ch], ch, start)
        raise TokenizeError(f"unexpected character {ch!r}", start)

    def _read_digit_run(self, alphabet: str) -> str:
        start = self.pos
        while self._peek() and (self._peek() in alphabet or self._peek() == "_"):
            self.pos += 1
        run = self.source[start:self.pos]
        if run.startswith("_") or run.endswith("_") or "__" in run:
            raise TokenizeError("misplaced underscore in number", start)
        return run.replace("_", "")

    def _read_number(self) -> Token:
        start = self.pos
        if self._peek() == "0" and self._peek(1) and self._peek(1) in "xXbB":
            return self._read_radix_number(start)
        self._read_digit_run(DECIMAL_DIGITS)
        is_float = False
        if self._peek() == ".":
            is_float = True
            self.pos += 1
            self._read_digit_run(DECIMAL_DIGITS)
        if self._peek() and self._peek() in "eE":
            is_float = True
            self.pos += 1
            if self._peek() and self._peek() in "+-":
                self.pos += 1
            if not (self._peek() and self._peek() in DECIMAL_DIGITS):
                raise TokenizeError("malformed exponent in number", start)
            self._read_digit_run(DECIMAL_DIGITS)
        self._reject_trailing(start)
        text = self.source[start:self.pos]
        cleaned = text.replace("_", "")
        value: int | float = float(cleaned) if is_float else _digits_value(cleaned, 10)
        return Token(TokenKind.NUMBER, text, start, value)

    def _read_radix_number(self, start: int) -> Token:
        prefix = self._peek(1).lower()
        self.pos += 2
        base, alphabet = (16, HEX_DIGITS) if prefix == "x" else (2, BINARY_DIGITS)
        digits = self._read_digit_run(alphabet)
        if not digits:
            raise TokenizeError(f"missing digits after '0{prefix}'", start)
        self._reject_trailing(start)
        text = self.source[start:self.pos]
        return Token(TokenKind.NUMBER, text, start, _digits_value(digits, base))

    def _reject_trailing(self, start: int) -> None:
        follower = self._peek()
        if follower and (follower == "." or _is_ident_char(follower)):
            bad = self.source[start:self.pos + 1]
            raise TokenizeError(f"malformed number {bad!r}", start)


def tokenize(source: str) -> list[Token]:
    """Tokenize *source* and return the list of tokens, ending with EOF."""
    return Tokenizer(source).tokenize()
