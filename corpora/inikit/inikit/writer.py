"""Serialise documents and plain data back to configuration text."""

from __future__ import annotations

from typing import Mapping, Optional

from .document import Document, is_valid_key, is_valid_section
from .values import format_value


def dump_document(document: Document) -> str:
    """Return the text of ``document``, byte for byte if it was not edited."""
    if not document.lines:
        return ""
    text = "\n".join(line.text for line in document.lines)
    return text + "\n" if document.trailing_newline else text


def _section_lines(name: str, entries: Mapping[str, object]) -> list[str]:
    if not isinstance(entries, Mapping):
        raise TypeError(f"section {name!r} must map keys to values")
    lines = []
    for key, value in entries.items():
        if not is_valid_key(key):
            raise ValueError(f"invalid key {key!r} in section {name!r}")
        if isinstance(value, Mapping):
            raise TypeError(f"nested mapping under {key!r} cannot be written")
        lines.append(f"{key} = {format_value(value)}")
    return lines


def dumps(data: Mapping[str, Mapping[str, object]], *,
          comment: Optional[str] = None) -> str:
    """Render ``{section: {key: value}}`` as text.

    The global section ``""`` is written first, without a header.  Parsing
    the result yields the same data again.
    """
    blocks: list[list[str]] = []
    if comment:
        blocks.append([f"# {line}".rstrip() for line in comment.splitlines()])
    if "" in data and data[""]:
        blocks.append(_section_lines("", data[""]))
    for name, entries in data.items():
        if name == "":
            continue
        if not is_valid_section(name):
            raise ValueError(f"invalid section name {name!r}")
        blocks.append([f"[{name}]"] + _section_lines(name, entries))
    if not blocks:
        return ""
    return "\n\n".join("\n".join(block) for block in blocks) + "\n"
