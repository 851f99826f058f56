"""Group opcodes into hunks with surrounding context lines."""

from collections.abc import Sequence

from .diff import Opcode, diff_lines
from .model import FilePatch, Hunk, HunkLine


def group_changes(opcodes: list[Opcode], context: int) -> list[list[Opcode]]:
    """Partition the non-equal opcodes into groups that share a hunk.

    Two changes end up in the same group when the unchanged gap between them
    is at most ``2 * context`` lines, so their context regions would touch or
    overlap.
    """
    if context < 0:
        raise ValueError("context must be non-negative")
    groups: list[list[Opcode]] = []
    for op in opcodes:
        if op.tag == "equal":
            continue
        if groups and op.i1 - groups[-1][-1].i2 <= 2 * context:
            groups[-1].append(op)
        else:
            groups.append([op])
    return groups


def _hunk_for_group(
    a: Sequence[str], b: Sequence[str], group: list[Opcode], context: int
) -> Hunk:
    first, last = group[0], group[-1]
    a_start = max(0, first.i1 - context)
    b_start = first.j1 - (first.i1 - a_start)
    a_end = min(len(a), last.i2 + context)
    b_end = last.j2 + (a_end - last.i2)
    lines: list[HunkLine] = []
    i = a_start
    for op in group:
        lines.extend(HunkLine(" ", a[k]) for k in range(i, op.i1))
        lines.extend(HunkLine("-", a[k]) for k in range(op.i1, op.i2))
        lines.extend(HunkLine("+", b[k]) for k in range(op.j1, op.j2))
        i = op.i2
    lines.extend(HunkLine(" ", a[k]) for k in range(i, a_end))
    old_count = a_end - a_start
    new_count = b_end - b_start
    return Hunk(
        old_start=a_start + 1 if old_count else a_start,
        old_count=old_count,
        new_start=b_start + 1 if new_count else b_start,
        new_count=new_count,
        lines=lines,
    )


def build_hunks(
    a: Sequence[str], b: Sequence[str], opcodes: list[Opcode], context: int = 3
) -> list[Hunk]:
    """Build unified-diff hunks from opcodes describing ``a`` -> ``b``."""
    return [_hunk_for_group(a, b, group, context) for group in group_changes(opcodes, context)]


def make_file_patch(
    a: Sequence[str],
    b: Sequence[str],
    old_path: str = "a",
    new_path: str = "b",
    context: int = 3,
    algorithm: str = "myers",
    ignore_whitespace: bool = False,
) -> FilePatch:
    """Diff two line lists and wrap the resulting hunks in a :class:`FilePatch`."""
    opcodes = diff_lines(a, b, algorithm=algorithm, ignore_whitespace=ignore_whitespace)
    return FilePatch(old_path, new_path, build_hunks(a, b, opcodes, context))
