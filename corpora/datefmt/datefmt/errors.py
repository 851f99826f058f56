"""Exception types raised by datefmt."""

from __future__ import annotations


class DateError(ValueError):
    """Base class for every datefmt error."""


class RangeError(DateError):
    """A calendar or clock component lies outside its valid range."""


class ParseError(DateError):
    """Input text could not be understood.

    ``position`` is the zero-based offset in ``text`` where the problem was
    noticed, or None when it concerns the input as a whole.
    """

    def __init__(self, message: str, text: str, position: int | None = None) -> None:
        self.message = message
        self.text = text
        self.position = position
        super().__init__(str(self))

    def __str__(self) -> str:
        where = "" if self.position is None else f" at position {self.position}"
        return f"{self.message}{where} in {self.text!r}"


class FormatError(DateError):
    """A format pattern is invalid or cannot be applied to a value."""

    def __init__(self, message: str, position: int | None = None) -> None:
        self.message = message
        self.position = position
        where = "" if position is None else f" (pattern position {position})"
        super().__init__(f"{message}{where}")
