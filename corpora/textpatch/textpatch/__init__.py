"""textpatch: line-based diffing, unified diffs and patch application.

The convenience functions in this module cover the common round trip::

    patch = unified_diff(old, new, "a/file.txt", "b/file.txt")
    assert apply_patch(old, patch) == new
    assert apply_patch(new, reverse_patch(patch)) == old
"""

from .apply import (
    ApplyResult,
    apply_file_patch,
    apply_hunks,
    apply_patchset,
    apply_with_report,
    can_apply,
    revert_file_patch,
)
from .diff import Opcode, diff_lines, match_sequences, similarity
from .errors import HunkConflict, MissingFileError, ParseError, PatchError
from .hunks import build_hunks, make_file_patch
from .lines import join_lines, split_lines
from .model import FilePatch, Hunk, HunkLine, PatchSet
from .parse import parse_patch
from .render import render_file_patch, render_hunk, render_patchset
from .stats import diffstat, format_diffstat

__all__ = [
    "ApplyResult", "FilePatch", "Hunk", "HunkConflict", "HunkLine", "MissingFileError",
    "Opcode", "ParseError", "PatchError", "PatchSet", "apply_file_patch", "apply_hunks",
    "apply_patch", "apply_patchset", "apply_with_report", "build_hunks", "can_apply",
    "diff_lines", "diffstat", "format_diffstat", "join_lines", "make_file_patch",
    "match_sequences", "parse_patch", "render_file_patch", "render_hunk",
    "render_patchset", "revert_file_patch", "reverse_patch", "similarity",
    "split_lines", "unified_diff",
]


def unified_diff(
    old_text: str,
    new_text: str,
    old_path: str = "a",
    new_path: str = "b",
    context: int = 3,
    algorithm: str = "myers",
) -> str:
    """Return a unified diff turning ``old_text`` into ``new_text``.

    The result is the empty string when the texts are identical.
    """
    patch = make_file_patch(
        split_lines(old_text), split_lines(new_text), old_path, new_path, context, algorithm
    )
    if not patch.hunks:
        return ""
    return render_file_patch(patch)


def apply_patch(text: str, patch_text: str, max_offset: int | None = None) -> str:
    """Apply a single-file unified diff to ``text``."""
    patchset = parse_patch(patch_text)
    if len(patchset) != 1:
        raise PatchError(f"expected a patch for exactly one file, found {len(patchset)}")
    return apply_file_patch(text, patchset.files[0], max_offset)


def reverse_patch(patch_text: str) -> str:
    """Return the unified diff that undoes ``patch_text``."""
    return render_patchset(parse_patch(patch_text).reversed())
