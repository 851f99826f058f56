"""Data model for unified diffs: hunk lines, hunks, file patches, patch sets."""

from dataclasses import dataclass, field

from .errors import PatchError

DEV_NULL = "/dev/null"
TAGS = (" ", "-", "+")


def format_range(start: int, count: int) -> str:
    """Format one side of a hunk header (``"3,4"``, ``"7"`` or ``"0,0"``)."""
    if count == 1:
        return str(start)
    return f"{start},{count}"


def strip_components(path: str, count: int) -> str:
    """Drop ``count`` leading directory components, like ``patch -pN``."""
    if count <= 0 or path == DEV_NULL:
        return path
    parts = [part for part in path.split("/") if part]
    if len(parts) <= count:
        raise PatchError(f"cannot strip {count} components from {path!r}")
    return "/".join(parts[count:])


@dataclass(frozen=True)
class HunkLine:
    """A single line of a hunk with its tag (``' '``, ``'-'`` or ``'+'``)."""

    tag: str
    text: str

    def __post_init__(self) -> None:
        if self.tag not in TAGS:
            raise ValueError(f"invalid hunk line tag {self.tag!r}")

    @property
    def is_context(self) -> bool:
        return self.tag == " "

    def swapped(self) -> "HunkLine":
        """The same line as seen by the reversed patch."""
        if self.tag == "-":
            return HunkLine("+", self.text)
        if self.tag == "+":
            return HunkLine("-", self.text)
        return self


@dataclass
class Hunk:
    """A contiguous region of change, using header numbering conventions.

    ``old_start`` and ``new_start`` are 1-based line numbers; when a side is
    empty its start is the number of the line *before* the hunk.
    """

    old_start: int
    old_count: int
    new_start: int
    new_count: int
    lines: list[HunkLine] = field(default_factory=list)
    section: str = ""

    @property
    def old_index(self) -> int:
        """0-based position of the hunk in the old text."""
        return self.old_start - 1 if self.old_count else self.old_start

    @property
    def new_index(self) -> int:
        """0-based position of the hunk in the new text."""
        return self.new_start - 1 if self.new_count else self.new_start

    def old_lines(self) -> list[str]:
        return [line.text for line in self.lines if line.tag != "+"]

    def new_lines(self) -> list[str]:
        return [line.text for line in self.lines if line.tag != "-"]

    @property
    def additions(self) -> int:
        return sum(1 for line in self.lines if line.tag == "+")

    @property
    def deletions(self) -> int:
        return sum(1 for line in self.lines if line.tag == "-")

    def header(self) -> str:
        text = f"@@ -{format_range(self.old_start, self.old_count)} +{format_range(self.new_start, self.new_count)} @@"
        if self.section:
            text += " " + self.section
        return text

    def check(self) -> None:
        """Raise :class:`PatchError` if the line counts disagree with the header."""
        old = len(self.old_lines())
        new = len(self.new_lines())
        if old != self.old_count or new != self.new_count:
            raise PatchError(
                f"{self.header()} declares {self.old_count}/{self.new_count} lines "
                f"but contains {old}/{new}"
            )

    def reversed(self) -> "Hunk":
        """The hunk that undoes this one."""
        return Hunk(
            self.new_start,
            self.new_count,
            self.old_start,
            self.old_count,
            [line.swapped() for line in self.lines],
            self.section,
        )


@dataclass
class FilePatch:
    """All hunks that apply to one file."""

    old_path: str
    new_path: str
    hunks: list[Hunk] = field(default_factory=list)
    header_lines: list[str] = field(default_factory=list)

    @property
    def is_creation(self) -> bool:
        return self.old_path == DEV_NULL

    @property
    def is_deletion(self) -> bool:
        return self.new_path == DEV_NULL

    @property
    def additions(self) -> int:
        return sum(hunk.additions for hunk in self.hunks)

    @property
    def deletions(self) -> int:
        return sum(hunk.deletions for hunk in self.hunks)

    def display_path(self, strip: int = 0) -> str:
        """The most meaningful path of this patch after stripping components."""
        path = self.old_path if self.is_deletion else self.new_path
        return strip_components(path, strip)

    def source_path(self, strip: int = 0) -> str | None:
        """Path of the file the patch reads, or None for a creation."""
        if self.is_creation:
            return None
        return strip_components(self.old_path, strip)

    def reversed(self) -> "FilePatch":
        return FilePatch(
            self.new_path,
            self.old_path,
            [hunk.reversed() for hunk in self.hunks],
            list(self.header_lines),
        )


@dataclass
class PatchSet:
    """An ordered collection of file patches."""

    files: list[FilePatch] = field(default_factory=list)

    def __iter__(self):
        return iter(self.files)

    def __len__(self) -> int:
        return len(self.files)

    def paths(self, strip: int = 0) -> list[str]:
        return [patch.display_path(strip) for patch in self.files]

    def reversed(self) -> "PatchSet":
        return PatchSet([patch.reversed() for patch in self.files])
