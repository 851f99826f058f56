"""Parse unified-diff text into the patch model."""

import re

from .errors import ParseError
from .lines import NO_NEWLINE_MARKER, ensure_newline, split_lines, strip_eol
from .model import FilePatch, Hunk, HunkLine, PatchSet

HUNK_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(?: ?(.*))?$")


def parse_path(field: str) -> str:
    """Extract the path from a ``---``/``+++`` header field.

    Anything after a tab (usually a timestamp) is discarded, as are
    surrounding double quotes.
    """
    path = strip_eol(field).split("\t", 1)[0].rstrip()
    if len(path) >= 2 and path[0] == '"' and path[-1] == '"':
        path = path[1:-1]
    if not path:
        raise ValueError("empty path")
    return path


def parse_hunk_header(line: str, lineno: int | None = None) -> Hunk:
    """Parse an ``@@ -a,b +c,d @@ section`` line into an empty :class:`Hunk`."""
    match = HUNK_HEADER.match(strip_eol(line))
    if match is None:
        raise ParseError(f"malformed hunk header {strip_eol(line)!r}", lineno)
    old_start, old_count, new_start, new_count, section = match.groups()
    return Hunk(
        old_start=int(old_start),
        old_count=1 if old_count is None else int(old_count),
        new_start=int(new_start),
        new_count=1 if new_count is None else int(new_count),
        section=(section or "").strip(),
    )


def _is_marker(line: str) -> bool:
    return line.startswith("\\")


def _drop_newline(hunk: Hunk, lineno: int) -> None:
    if not hunk.lines:
        raise ParseError(f"{NO_NEWLINE_MARKER!r} marker without a preceding line", lineno)
    last = hunk.lines[-1]
    hunk.lines[-1] = HunkLine(last.tag, strip_eol(last.text))


def _parse_hunk(lines: list[str], index: int) -> tuple[Hunk, int]:
    """Parse the hunk whose header is ``lines[index]``; return it and the next index."""
    hunk = parse_hunk_header(lines[index], index + 1)
    old_left = hunk.old_count
    new_left = hunk.new_count
    index += 1
    while old_left > 0 or new_left > 0:
        if index >= len(lines):
            raise ParseError(
                f"hunk {hunk.header()} is truncated: missing {old_left} old and {new_left} new lines",
                index,
            )
        raw = lines[index]
        lineno = index + 1
        index += 1
        if _is_marker(raw):
            _drop_newline(hunk, lineno)
            continue
        if raw in ("\n", "\r\n"):
            tag, text = " ", raw
        else:
            tag, text = raw[0], raw[1:]
        if tag == " ":
            old_left -= 1
            new_left -= 1
        elif tag == "-":
            old_left -= 1
        elif tag == "+":
            new_left -= 1
        else:
            raise ParseError(f"unexpected line in hunk body: {strip_eol(raw)!r}", lineno)
        if old_left < 0 or new_left < 0:
            raise ParseError(f"hunk {hunk.header()} has more lines than its header declares", lineno)
        if index == len(lines):
            text = ensure_newline(text)
        hunk.lines.append(HunkLine(tag, text))
    if index < len(lines) and _is_marker(lines[index]):
        _drop_newline(hunk, index + 1)
        index += 1
    return hunk, index


def _starts_file(lines: list[str], index: int) -> bool:
    return (
        lines[index].startswith("--- ")
        and index + 1 < len(lines)
        and lines[index + 1].startswith("+++ ")
    )


def parse_patch(text: str) -> PatchSet:
    """Parse unified-diff ``text`` containing one or more file patches.

    Lines before a ``---``/``+++`` pair (such as ``diff --git`` or
    ``index`` lines) are kept as the file patch's ``header_lines``.
    """
    lines = split_lines(text)
    files: list[FilePatch] = []
    pending: list[str] = []
    index = 0
    while index < len(lines):
        if not _starts_file(lines, index):
            if HUNK_HEADER.match(strip_eol(lines[index])):
                raise ParseError("hunk header outside of a file patch", index + 1)
            pending.append(lines[index])
            index += 1
            continue
        try:
            old_path = parse_path(lines[index][4:])
            new_path = parse_path(lines[index + 1][4:])
        except ValueError:
            raise ParseError("file header without a path", index + 1) from None
        header_at = index + 1
        index += 2
        patch = FilePatch(old_path, new_path, header_lines=pending)
        pending = []
        while index < len(lines) and lines[index].startswith("@@"):
            hunk, index = _parse_hunk(lines, index)
            patch.hunks.append(hunk)
        if not patch.hunks:
            raise ParseError(f"no hunks for {new_path!r}", header_at)
        files.append(patch)
    if not files:
        raise ParseError("no file patches found")
    _check_order(files)
    return PatchSet(files)


def _check_order(files: list[FilePatch]) -> None:
    """Reject hunks that overlap or are not sorted within a file patch."""
    for patch in files:
        previous_end = 0
        for hunk in patch.hunks:
            if hunk.old_index < previous_end:
                raise ParseError(f"hunk {hunk.header()} overlaps the previous hunk in {patch.new_path!r}")
            previous_end = hunk.old_index + hunk.old_count
