"""Apply parsed patches to text.

Matching is exact: every context and removed line of a hunk must be found
verbatim in the target.  A hunk may however be found at a different
position than the one its header declares (an *offset*), which happens
when earlier, unrelated edits shifted the text.  ``max_offset`` limits how
far from the declared position the search may go; ``0`` demands the exact
position.
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from .errors import HunkConflict, MissingFileError, PatchError
from .lines import describe_line, join_lines, split_lines
from .model import FilePatch, Hunk, PatchSet, strip_components


@dataclass
class ApplyResult:
    """Outcome of applying a file patch: the new text and per-hunk offsets."""

    text: str
    offsets: list[int] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        """True when every hunk applied at its declared position."""
        return all(offset == 0 for offset in self.offsets)


def _matches_at(target: list[str], expected: list[str], pos: int) -> bool:
    if pos < 0 or pos + len(expected) > len(target):
        return False
    return target[pos:pos + len(expected)] == expected


def candidate_positions(want: int, lower: int, upper: int, max_offset: int | None) -> Iterator[int]:
    """Positions in ``[lower, upper]`` ordered by distance from ``want``.

    When two positions are equally far, the earlier one comes first.
    """
    limit = max(want - lower, upper - want, 0)
    if max_offset is not None:
        limit = min(limit, max_offset)
    if lower <= want <= upper:
        yield want
    for distance in range(1, limit + 1):
        for pos in (want - distance, want + distance):
            if lower <= pos <= upper:
                yield pos


def locate(
    target: list[str], expected: list[str], want: int, lower: int = 0, max_offset: int | None = None
) -> int | None:
    """Find where ``expected`` occurs in ``target`` closest to ``want``."""
    if not expected:
        return want if lower <= want <= len(target) else None
    upper = len(target) - len(expected)
    for pos in candidate_positions(want, lower, upper, max_offset):
        if _matches_at(target, expected, pos):
            return pos
    return None


def _mismatch_detail(target: list[str], expected: list[str], pos: int) -> str:
    if pos > len(target):
        return f"it starts at line {pos + 1} but the text has only {len(target)} lines"
    for k, line in enumerate(expected):
        actual = target[pos + k] if pos + k < len(target) else None
        if actual != line:
            return f"line {pos + k + 1}: expected {describe_line(line)}, found {describe_line(actual)}"
    return "its context could not be located"


def _looks_applied(target: list[str], hunk: Hunk, want: int, lower: int, max_offset: int | None) -> bool:
    new = hunk.new_lines()
    if not new or new == hunk.old_lines():
        return False
    return locate(target, new, want, lower, max_offset) is not None


def apply_hunks(
    target: list[str], hunks: list[Hunk], max_offset: int | None = None
) -> tuple[list[str], list[int]]:
    """Apply ``hunks`` in order to the line list ``target``.

    Returns the new lines and the offset at which each hunk applied.  Raises
    :class:`HunkConflict` naming the first hunk that cannot be placed.
    """
    output: list[str] = []
    cursor = 0
    shift = 0
    offsets: list[int] = []
    for number, hunk in enumerate(hunks, 1):
        hunk.check()
        expected = hunk.old_lines()
        want = hunk.old_index + shift
        pos = locate(target, expected, want, cursor, max_offset)
        if pos is None:
            probe = max(want, cursor)
            raise HunkConflict(
                number,
                hunk.header(),
                _mismatch_detail(target, expected, probe),
                already_applied=_looks_applied(target, hunk, want, cursor, max_offset),
            )
        output.extend(target[cursor:pos])
        output.extend(hunk.new_lines())
        cursor = pos + len(expected)
        shift = pos - hunk.old_index
        offsets.append(shift)
    output.extend(target[cursor:])
    return output, offsets


def apply_with_report(text: str, patch: FilePatch, max_offset: int | None = None) -> ApplyResult:
    """Apply a file patch to ``text`` and report the hunk offsets."""
    if patch.is_creation and text:
        raise PatchError(f"cannot create {patch.new_path!r}: target is not empty")
    lines, offsets = apply_hunks(split_lines(text), patch.hunks, max_offset)
    if patch.is_deletion and lines:
        raise PatchError(f"{patch.old_path!r} still has {len(lines)} lines after deletion")
    return ApplyResult(join_lines(lines), offsets)


def apply_file_patch(text: str, patch: FilePatch, max_offset: int | None = None) -> str:
    """Apply a file patch to ``text`` and return the patched text."""
    return apply_with_report(text, patch, max_offset).text


def revert_file_patch(text: str, patch: FilePatch, max_offset: int | None = None) -> str:
    """Undo ``patch`` on text that it was previously applied to."""
    return apply_file_patch(text, patch.reversed(), max_offset)


def can_apply(text: str, patch: FilePatch, max_offset: int | None = None) -> bool:
    """Dry run: True when ``patch`` would apply cleanly to ``text``."""
    try:
        apply_with_report(text, patch, max_offset)
    except PatchError:
        return False
    return True


def apply_patchset(
    files: Mapping[str, str],
    patchset: PatchSet,
    strip: int = 0,
    max_offset: int | None = None,
) -> dict[str, str]:
    """Apply every file patch to an in-memory mapping of path to text.

    The input mapping is never modified; on any error nothing is returned,
    so a patch set is applied either completely or not at all.  Created
    files are added, deleted files removed and renamed files moved.
    """
    result = dict(files)
    for patch in patchset:
        source = patch.source_path(strip)
        if source is None:
            original = ""
        elif source in result:
            original = result[source]
        else:
            raise MissingFileError(source)
        new_text = apply_file_patch(original, patch, max_offset)
        if patch.is_deletion:
            del result[source]
            continue
        target = strip_components(patch.new_path, strip)
        if source is None and result.get(target):
            raise PatchError(f"cannot create {target!r}: file already exists")
        if source is not None and source != target:
            del result[source]
        result[target] = new_text
    return result
