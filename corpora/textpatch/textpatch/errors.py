"""Exception hierarchy used throughout :mod:`textpatch`."""


class PatchError(Exception):
    """Base class for every error raised by textpatch."""


class ParseError(PatchError):
    """Raised when a unified diff cannot be parsed.

    ``lineno`` is the 1-based line of the patch text where the problem was
    detected, or ``None`` when the problem concerns the patch as a whole.
    """

    def __init__(self, reason: str, lineno: int | None = None) -> None:
        self.reason = reason
        self.lineno = lineno
        if lineno is None:
            message = reason
        else:
            message = f"line {lineno}: {reason}"
        super().__init__(message)


class HunkConflict(PatchError):
    """Raised when a hunk's context does not match the target text."""

    def __init__(
        self,
        hunk_number: int,
        header: str,
        detail: str,
        already_applied: bool = False,
    ) -> None:
        self.hunk_number = hunk_number
        self.header = header
        self.detail = detail
        self.already_applied = already_applied
        message = f"hunk #{hunk_number} ({header}) does not apply: {detail}"
        if already_applied:
            message += " (the patch appears to be already applied)"
        super().__init__(message)


class MissingFileError(PatchError):
    """Raised when a patch refers to a file that is not available."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"file not found: {path}")
