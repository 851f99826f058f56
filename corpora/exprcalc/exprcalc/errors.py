"""Exception hierarchy for exprcalc.

Every error may carry the zero-based character offset in the source text at
which the problem was detected, so callers can point at the offending spot.
"""

from __future__ import annotations


class ExprError(Exception):
    """Base class for every error raised by exprcalc."""

    def __init__(self, message: str, position: int | None = None) -> None:
        self.message = message
        self.position = position
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.position is None or self.position < 0:
            return self.message
        return f"{self.message} (at position {self.position})"

    def pointer(self, source: str) -> str:
        """Return *source* followed by a line with a caret under the error."""
        if self.position is None or self.position < 0:
            return source
        column = min(self.position, len(source))
        return f"{source}\n{' ' * column}^"


class TokenizeError(ExprError):
    """Raised when the source text contains characters that form no token."""


class ParseError(ExprError):
    """Raised when the token stream does not match the grammar."""


class EvalError(ExprError):
    """Raised when a syntactically valid expression cannot be evaluated."""


class DomainError(EvalError):
    """Raised for mathematically undefined operations such as division by zero."""


class UndefinedVariableError(EvalError):
    """Raised when an expression refers to a variable that has no value."""

    def __init__(self, name: str, position: int | None = None,
                 suggestion: str | None = None) -> None:
        self.name = name
        self.suggestion = suggestion
        message = f"undefined variable '{name}'"
        if suggestion:
            message += f"; did you mean '{suggestion}'?"
        super().__init__(message, position)


class UnknownFunctionError(EvalError):
    """Raised when an expression calls a function that is not registered."""

    def __init__(self, name: str, position: int | None = None,
                 suggestion: str | None = None) -> None:
        self.name = name
        self.suggestion = suggestion
        message = f"unknown function '{name}'"
        if suggestion:
            message += f"; did you mean '{suggestion}'?"
        super().__init__(message, position)


class ArityError(EvalError):
    """Raised when a function is called with the wrong number of arguments."""

    def __init__(self, name: str, expected: str, got: int,
                 position: int | None = None) -> None:
        self.name = name
        self.expected = expected
        self.got = got
        super().__init__(f"{name}() expects {expected}, got {got}", position)
