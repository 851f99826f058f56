"""Helpers for splitting text into lines while keeping line terminators.

Throughout textpatch a *line* is a string that includes its terminating
``"\\n"`` (and a preceding ``"\\r"`` if present).  Only the final line of a
text may lack a terminator, which is how a missing trailing newline is
represented.
"""

NO_NEWLINE_MARKER = "\\ No newline at end of file"


def split_lines(text: str) -> list[str]:
    """Split ``text`` on ``"\\n"`` and keep the terminator on each line.

    Unlike :meth:`str.splitlines`, only ``"\\n"`` is treated as a line
    boundary, so form feeds or lone carriage returns stay inside a line.
    """
    lines: list[str] = []
    start = 0
    while True:
        index = text.find("\n", start)
        if index < 0:
            break
        lines.append(text[start:index + 1])
        start = index + 1
    if start < len(text):
        lines.append(text[start:])
    return lines


def join_lines(lines: list[str]) -> str:
    """Inverse of :func:`split_lines`."""
    return "".join(lines)


def has_newline(line: str) -> bool:
    """Return True when ``line`` ends with a line terminator."""
    return line.endswith("\n")


def strip_eol(line: str) -> str:
    """Return ``line`` without its ``"\\n"`` or ``"\\r\\n"`` terminator."""
    if line.endswith("\r\n"):
        return line[:-2]
    if line.endswith("\n"):
        return line[:-1]
    return line


def ensure_newline(line: str) -> str:
    """Return ``line`` with a ``"\\n"`` terminator added if it has none."""
    return line if line.endswith("\n") else line + "\n"


def line_key(line: str, ignore_whitespace: bool = False, ignore_case: bool = False) -> str:
    """Compute the comparison key of a line.

    With ``ignore_whitespace`` every run of whitespace collapses into a
    single space and leading/trailing whitespace (including the line
    terminator) is dropped.  With ``ignore_case`` the line is case-folded.
    """
    key = line
    if ignore_whitespace:
        key = " ".join(key.split())
    if ignore_case:
        key = key.casefold()
    return key


def describe_line(line: str | None) -> str:
    """Render a line for use in human readable error messages."""
    if line is None:
        return "end of file"
    return repr(strip_eol(line))
