"""Resolve ``%include`` directives against an in-memory mapping of sources.

Sources are plain text keyed by a file-like name such as ``"conf/app.ini"``.
Include targets are resolved relative to the directory of the including
source unless they start with ``/``.  Nothing touches the file system.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Mapping, Optional

from .config import Config
from .document import Document, Entry, Include, SectionHeader
from .errors import IncludeError
from .parser import parse_document


@dataclass(frozen=True)
class SourceEntry:
    """An entry placed in the merged table, remembering where it came from."""

    section: str
    key: str
    entry: Entry
    source: str

    @property
    def lineno(self) -> int:
        return self.entry.lineno

    @property
    def node(self):
        return self.entry.node

    @property
    def raw(self) -> str:
        return self.entry.raw


def resolve_include(current: str, target: str) -> str:
    """Return the source name ``target`` refers to when included by ``current``."""
    if target.startswith("/"):
        return posixpath.normpath(target).lstrip("/")
    return posixpath.normpath(posixpath.join(posixpath.dirname(current), target))


class Loader:
    """Parse sources on demand and merge them, following includes.

    Later definitions of a key override earlier ones; within a single
    source a repeated key is a parse error.  An included source's global
    entries land in the section that was open at the ``%include`` line.
    """

    def __init__(self, sources: Mapping[str, str], *, max_depth: int = 16) -> None:
        self._sources = dict(sources)
        self._documents: dict[str, Document] = {}
        self.max_depth = max_depth

    def document(self, name: str) -> Document:
        """Return the parsed document for ``name`` (cached)."""
        if name not in self._documents:
            if name not in self._sources:
                raise IncludeError(f"no source named {name!r}")
            self._documents[name] = parse_document(self._sources[name], name)
        return self._documents[name]

    def load(self, name: str) -> Config:
        """Load ``name`` and everything it includes into a :class:`Config`."""
        table: dict[str, dict[str, SourceEntry]] = {}
        origins: dict[str, tuple[str, int]] = {}
        self._merge(name, "", table, origins, [name])
        return Config(table, section_origins=origins, main=name)

    def _merge(self, name, section, table, origins, stack) -> None:
        document = self.document(name)
        for line in document.lines:
            if isinstance(line, SectionHeader):
                section = line.name
                table.setdefault(section, {})
                origins.setdefault(section, (name, line.lineno))
            elif isinstance(line, Entry):
                table.setdefault(section, {})[line.key] = SourceEntry(
                    section, line.key, line, name)
            elif isinstance(line, Include):
                self._include(name, line, section, table, origins, stack)

    def _include(self, name, line: Include, section, table, origins, stack) -> None:
        target = resolve_include(name, line.target)
        if target in stack:
            chain = " -> ".join(stack + [target])
            raise IncludeError(f"include cycle: {chain}", source=name, line=line.lineno)
        if len(stack) >= self.max_depth:
            raise IncludeError(f"includes nested deeper than {self.max_depth} levels",
                               source=name, line=line.lineno)
        if target not in self._sources:
            raise IncludeError(f"cannot include {line.target!r}: no such source",
                               source=name, line=line.lineno)
        self._merge(target, section, table, origins, stack + [target])


def load(name: str, sources: Mapping[str, str]) -> Config:
    """Load the source ``name`` from ``sources``."""
    return Loader(sources).load(name)


def loads(text: str, *, name: str = "<string>",
          sources: Optional[Mapping[str, str]] = None) -> Config:
    """Load configuration text; ``sources`` supplies files it may include."""
    mapping = dict(sources or {})
    mapping[name] = text
    return Loader(mapping).load(name)
