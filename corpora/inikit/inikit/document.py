"""A lossless, editable model of one configuration file.

A :class:`Document` is a list of line objects that remember their original
text, so that writing an unmodified document reproduces the input exactly.
Edits through :meth:`Document.set` and friends only touch the lines they
concern, leaving comments and layout elsewhere untouched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterator, Optional, Union

from .values import Node, evaluate, format_value, parse_node

SECTION_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*\Z")
KEY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*\Z")


def is_valid_section(name: str) -> bool:
    """Return whether ``name`` may appear in a ``[section]`` header."""
    return bool(SECTION_NAME.match(name))


def is_valid_key(name: str) -> bool:
    """Return whether ``name`` may be used as a key."""
    return bool(KEY_NAME.match(name))


def describe_section(section: str) -> str:
    """Describe a section for messages: ``section [x]`` or the global one."""
    return f"section [{section}]" if section else "the global section"


@dataclass(eq=False)
class Trivia:
    """A blank or comment line."""

    text: str
    lineno: int = 0


@dataclass(eq=False)
class SectionHeader:
    """A ``[name]`` line."""

    name: str
    text: str
    lineno: int = 0


@dataclass(eq=False)
class Include:
    """An ``%include target`` directive."""

    target: str
    text: str
    lineno: int = 0


@dataclass(eq=False)
class Entry:
    """A ``key = value`` assignment, possibly spanning continuation lines."""

    key: str
    raw: str
    node: Node
    text: str
    lineno: int = 0
    prefix: str = ""
    comment: str = ""

    @property
    def end_lineno(self) -> int:
        """Line number of the last physical line of the entry."""
        return self.lineno + self.text.count("\n")

    @property
    def value(self):
        """The typed value, without interpolation."""
        return evaluate(self.node)


Line = Union[Trivia, SectionHeader, Include, Entry]


@dataclass(eq=False)
class Document:
    """An ordered collection of lines belonging to one named source."""

    name: str = "<string>"
    lines: list = field(default_factory=list)
    trailing_newline: bool = True

    def __iter__(self) -> Iterator[Line]:
        return iter(self.lines)

    def __len__(self) -> int:
        return len(self.lines)

    def walk(self) -> Iterator[tuple[str, Line]]:
        """Yield ``(section, line)`` pairs in document order."""
        section = ""
        for line in self.lines:
            if isinstance(line, SectionHeader):
                section = line.name
            yield section, line

    def sections(self) -> list[str]:
        """Section names in order of first appearance.

        The global section ``""`` is listed first when it holds entries.
        """
        names: list[str] = []
        for section, line in self.walk():
            if isinstance(line, SectionHeader) or (
                    isinstance(line, (Entry, Include)) and section == ""):
                if section not in names:
                    names.append(section)
        if "" in names:
            names.remove("")
            names.insert(0, "")
        return names

    def entries(self, section: str) -> list[Entry]:
        """All entries of ``section`` across every header that opens it."""
        return [line for name, line in self.walk()
                if name == section and isinstance(line, Entry)]

    def includes(self) -> list[tuple[str, Include]]:
        """``(section, directive)`` for every include in the document."""
        return [(name, line) for name, line in self.walk()
                if isinstance(line, Include)]

    def find(self, section: str, key: str) -> Optional[Entry]:
        """Return the entry for ``key`` in ``section`` or ``None``."""
        for entry in self.entries(section):
            if entry.key == key:
                return entry
        return None

    def get(self, section: str, key: str, default=None):
        """Typed value of an entry, without interpolation."""
        entry = self.find(section, key)
        return default if entry is None else entry.value

    def _index_of(self, target: Line) -> int:
        for index, line in enumerate(self.lines):
            if line is target:
                return index
        raise ValueError("line is not part of this document")

    def _insertion_point(self, section: str) -> Optional[int]:
        last = None
        for index, (name, line) in enumerate(self.walk()):
            if name != section:
                continue
            if isinstance(line, (Entry, Include, SectionHeader)):
                last = index
        if last is None:
            return 0 if section == "" else None
        return last + 1

    def add_section(self, name: str) -> None:
        """Append an empty ``[name]`` section unless it already exists."""
        if not is_valid_section(name):
            raise ValueError(f"invalid section name {name!r}")
        if any(isinstance(line, SectionHeader) and line.name == name
               for line in self.lines):
            return
        if self.lines and self.lines[-1].text.strip():
            self.lines.append(Trivia(""))
        self.lines.append(SectionHeader(name, f"[{name}]"))

    def set(self, section: str, key: str, value) -> None:
        """Assign ``value`` to ``key``, editing in place or inserting a line."""
        if not is_valid_key(key):
            raise ValueError(f"invalid key {key!r}")
        formatted = format_value(value)
        node = parse_node(formatted)
        existing = self.find(section, key)
        if existing is not None:
            prefix = existing.prefix or f"{key} = "
            comment = "" if "\n" in existing.text else existing.comment
            replacement = Entry(key, formatted, node, prefix + formatted + comment,
                                existing.lineno, prefix, comment)
            self.lines[self._index_of(existing)] = replacement
            return
        index = self._insertion_point(section)
        if index is None:
            self.add_section(section)
            index = len(self.lines)
        prefix = f"{key} = "
        self.lines.insert(index, Entry(key, formatted, node, prefix + formatted,
                                       0, prefix, ""))

    def remove(self, section: str, key: str) -> bool:
        """Delete ``key`` from ``section``; return whether it existed."""
        entry = self.find(section, key)
        if entry is None:
            return False
        del self.lines[self._index_of(entry)]
        return True

    def remove_section(self, name: str) -> bool:
        """Delete every header of ``name`` and the lines that follow it."""
        kept = []
        removed = False
        for section, line in self.walk():
            if section == name and name != "":
                removed = True
                continue
            kept.append(line)
        self.lines = kept
        return removed
