"""Summaries of patches in the style of ``diffstat``."""

from dataclasses import dataclass

from .model import PatchSet


@dataclass(frozen=True)
class FileStat:
    """Number of added and removed lines for one file."""

    path: str
    added: int
    removed: int

    @property
    def changed(self) -> int:
        return self.added + self.removed


def diffstat(patchset: PatchSet, strip: int = 0) -> list[FileStat]:
    """Per-file counts, in patch order."""
    return [
        FileStat(patch.display_path(strip), patch.additions, patch.deletions)
        for patch in patchset
    ]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def summary_line(stats: list[FileStat]) -> str:
    """The closing ``N files changed, ...`` line."""
    added = sum(stat.added for stat in stats)
    removed = sum(stat.removed for stat in stats)
    parts = [_plural(len(stats), "file") + " changed"]
    if added:
        parts.append(_plural(added, "insertion") + "(+)")
    if removed:
        parts.append(_plural(removed, "deletion") + "(-)")
    return ", ".join(parts)


def _bar(stat: FileStat, scale_to: int, largest: int) -> str:
    plus, minus = stat.added, stat.removed
    if largest > scale_to:
        plus = stat.added * scale_to // largest
        minus = stat.removed * scale_to // largest
        if stat.added and plus == 0:
            plus = 1
        if stat.removed and minus == 0:
            minus = 1
    return "+" * plus + "-" * minus


def format_diffstat(patchset: PatchSet, strip: int = 0, width: int = 40) -> str:
    """Render a diffstat table followed by a summary line.

    Bars longer than ``width`` characters are scaled down proportionally;
    every non-zero count keeps at least one symbol.
    """
    stats = diffstat(patchset, strip)
    if not stats:
        return summary_line(stats) + "\n"
    name_width = max(len(stat.path) for stat in stats)
    largest = max(stat.changed for stat in stats)
    count_width = len(str(largest))
    rows = []
    for stat in stats:
        bar = _bar(stat, width, largest)
        row = f" {stat.path.ljust(name_width)} | {str(stat.changed).rjust(count_width)} {bar}"
        rows.append(row.rstrip() + "\n")
    rows.append(" " + summary_line(stats) + "\n")
    return "".join(rows)
