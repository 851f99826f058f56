"""Turn configuration text into a :class:`~inikit.document.Document`.

Grammar, line by line:

* blank lines and lines starting with ``#`` or ``;`` are kept as trivia;
* ``[name]`` opens (or re-opens) a section;
* ``%include "file"`` pulls in another source (resolved by the loader);
* ``key = value`` assigns a value; indented lines that follow continue it.
"""

from __future__ import annotations

import re

from .document import (Document, Entry, Include, SectionHeader, Trivia,
                       describe_section)
from .errors import ParseError, ValueSyntaxError
from .values import parse_node, split_comment

_SECTION = re.compile(r"\[\s*([A-Za-z0-9_][A-Za-z0-9_.\-]*)\s*\]\s*(?:[#;].*)?\Z")
_ENTRY = re.compile(r"([A-Za-z_][A-Za-z0-9_.\-]*)([ \t]*=[ \t]*)(.*)\Z")
_INCLUDE = re.compile(r'%include\s+(?:"([^"]+)"|([^\s"#;]+))\s*(?:[#;].*)?\Z')


def _is_continuation(line: str) -> bool:
    stripped = line.strip()
    return bool(line[:1].isspace() and stripped and stripped[0] not in "#;")


def _parse_entry(physical: list[str], index: int, name: str) -> tuple[Entry, int]:
    line = physical[index]
    lineno = index + 1
    match = _ENTRY.match(line)
    if not match:
        if "=" in line:
            key = line.split("=", 1)[0].strip()
            raise ParseError(f"invalid key {key!r}", source=name, line=lineno)
        raise ParseError("expected 'key = value', a [section] header or a comment",
                         source=name, line=lineno)
    key, separator, rest = match.groups()
    value, comment = split_comment(rest)
    parts = [value.strip()]
    texts = [line]
    index += 1
    while index < len(physical) and _is_continuation(physical[index]):
        texts.append(physical[index])
        more, _ = split_comment(physical[index].strip())
        parts.append(more.strip())
        index += 1
    raw = "\n".join(parts)
    try:
        node = parse_node(raw)
    except ValueSyntaxError as exc:
        raise ValueSyntaxError(exc.message, source=name, line=lineno) from None
    multiline = len(texts) > 1
    entry = Entry(key, raw, node, "\n".join(texts), lineno, key + separator,
                  "" if multiline else comment)
    return entry, index


def parse_document(text: str, name: str = "<string>") -> Document:
    """Parse ``text`` into a document named ``name``.

    Raises :class:`ParseError` (with the line number) on malformed input,
    including a key assigned twice in the same section of one document.
    """
    physical = text.splitlines()
    lines = []
    seen: dict[str, dict[str, int]] = {}
    section = ""
    index = 0
    while index < len(physical):
        line = physical[index]
        lineno = index + 1
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            lines.append(Trivia(line, lineno))
            index += 1
            continue
        if line[0].isspace():
            raise ParseError("unexpected indented line (continuation without an entry)",
                             source=name, line=lineno)
        if stripped[0] == "[":
            match = _SECTION.match(stripped)
            if not match:
                raise ParseError(f"invalid section header {stripped!r}",
                                 source=name, line=lineno)
            section = match.group(1)
            lines.append(SectionHeader(section, line, lineno))
            index += 1
            continue
        if stripped[0] == "%":
            match = _INCLUDE.match(stripped)
            if not match:
                directive = stripped.split()[0]
                message = ("malformed %include directive" if directive == "%include"
                           else f"unknown directive {directive!r}")
                raise ParseError(message, source=name, line=lineno)
            lines.append(Include(match.group(1) or match.group(2), line, lineno))
            index += 1
            continue
        entry, index = _parse_entry(physical, index, name)
        keys = seen.setdefault(section, {})
        if entry.key in keys:
            raise ParseError(
                f"duplicate key {entry.key!r} in {describe_section(section)} "
                f"(first defined on line {keys[entry.key]})",
                source=name, line=lineno)
        keys[entry.key] = lineno
        lines.append(entry)
    trailing = text.endswith(("\n", "\r")) or not text
    return Document(name, lines, trailing)
