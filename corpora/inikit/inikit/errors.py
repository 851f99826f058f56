"""Exception hierarchy shared by every inikit module."""

from __future__ import annotations

from typing import Optional


class InikitError(Exception):
    """Base class for every error raised by inikit.

    Errors optionally carry the name of the source they came from and a
    1-based line number; both are rendered in front of the message.
    """

    def __init__(self, message: str, *, source: Optional[str] = None,
                 line: Optional[int] = None) -> None:
        self.message = message
        self.source = source
        self.line = line
        super().__init__(message)

    def location(self) -> str:
        """Return ``source:line``, ``line N`` or the bare source name."""
        if self.source and self.line:
            return f"{self.source}:{self.line}"
        if self.line:
            return f"line {self.line}"
        return self.source or ""

    def __str__(self) -> str:
        where = self.location()
        return f"{where}: {self.message}" if where else self.message


class ParseError(InikitError):
    """The text of a document is not well formed."""


class ValueSyntaxError(ParseError):
    """A value on the right-hand side of ``=`` cannot be tokenised."""


class IncludeError(InikitError):
    """An ``%include`` directive could not be resolved."""


class InterpolationError(InikitError):
    """A ``${section:key}`` reference is malformed, unknown or cyclic."""


class MissingKeyError(InikitError, LookupError):
    """A requested section or key does not exist."""


class TypeMismatchError(InikitError, TypeError):
    """A value does not have the type the caller asked for."""


class SchemaError(InikitError):
    """Validation against a schema failed; ``issues`` lists every problem."""

    def __init__(self, issues) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))
