"""Render the patch model as unified-diff text."""

from .lines import NO_NEWLINE_MARKER, has_newline
from .model import FilePatch, Hunk, PatchSet


def render_hunk(hunk: Hunk) -> str:
    """Render one hunk including its ``@@`` header."""
    out = [hunk.header(), "\n"]
    for line in hunk.lines:
        out.append(line.tag)
        out.append(line.text)
        if not has_newline(line.text):
            out.append("\n")
            out.append(NO_NEWLINE_MARKER)
            out.append("\n")
    return "".join(out)


def render_file_patch(patch: FilePatch) -> str:
    """Render the header lines, the ``---``/``+++`` pair and every hunk."""
    out = list(patch.header_lines)
    out.append(f"--- {patch.old_path}\n")
    out.append(f"+++ {patch.new_path}\n")
    out.extend(render_hunk(hunk) for hunk in patch.hunks)
    return "".join(out)


def render_patchset(patchset: PatchSet) -> str:
    """Render every file patch of ``patchset`` in order."""
    return "".join(render_file_patch(patch) for patch in patchset.files)
