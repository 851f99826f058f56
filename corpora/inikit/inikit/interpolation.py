"""``${section:key}`` interpolation with cycle detection.

Reference forms:

* ``${key}``          -- a key of the section the value lives in;
* ``${section:key}``  -- a key of another section;
* ``${:key}``         -- a key of the global section;
* ``$$``              -- a literal dollar sign.

A bare value consisting of exactly one reference takes over the referenced
value with its type (so lists and numbers survive); anywhere else the
referenced value is rendered as text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Optional, Union

from .document import describe_section
from .errors import InterpolationError, MissingKeyError
from .values import Resolved, evaluate, to_text

_REFERENCE = re.compile(
    r"(?:([A-Za-z0-9_][A-Za-z0-9_.\-]*)?:)?([A-Za-z_][A-Za-z0-9_.\-]*)\Z")


@dataclass(frozen=True)
class Reference:
    """A parsed reference; ``section`` is ``None`` for "same section"."""

    section: Optional[str]
    key: str


def qualified(section: str, key: str) -> str:
    """Render a key with its section, e.g. ``server:port``."""
    return f"{section}:{key}" if section else key


def split_template(text: str) -> list[Union[str, Reference]]:
    """Split text into literal pieces and :class:`Reference` objects."""
    pieces: list[Union[str, Reference]] = []
    buffer: list[str] = []
    index = 0
    while index < len(text):
        ch = text[index]
        if ch != "$":
            buffer.append(ch)
            index += 1
            continue
        follower = text[index + 1:index + 2]
        if follower == "$":
            buffer.append("$")
            index += 2
            continue
        if follower != "{":
            buffer.append("$")
            index += 1
            continue
        end = text.find("}", index + 2)
        if end < 0:
            raise InterpolationError(f"unterminated reference in {text!r}")
        body = text[index + 2:end].strip()
        match = _REFERENCE.match(body)
        if not match:
            raise InterpolationError(f"malformed reference '${{{body}}}'")
        if buffer:
            pieces.append("".join(buffer))
            buffer = []
        section = match.group(1)
        if section is None and ":" in body:
            section = ""
        pieces.append(Reference(section, match.group(2)))
        index = end + 1
    if buffer:
        pieces.append("".join(buffer))
    return pieces


def _copy(value):
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


class Interpolator:
    """Resolve values of a merged table of entries, memoising results.

    ``table`` maps section names to mappings of key to an object with
    ``node``, ``section``, ``source`` and ``lineno`` attributes (see
    :class:`inikit.loader.SourceEntry`).
    """

    def __init__(self, table: Mapping[str, Mapping[str, object]]) -> None:
        self._table = table
        self._cache: dict[tuple[str, str], object] = {}
        self._stack: list[tuple[str, str]] = []

    def value(self, section: str, key: str):
        """Return the fully interpolated value of ``section``/``key``."""
        ident = (section, key)
        if ident in self._cache:
            return _copy(self._cache[ident])
        entry = self._table.get(section, {}).get(key)
        if entry is None:
            raise MissingKeyError(f"no key {key!r} in {describe_section(section)}")
        if ident in self._stack:
            chain = self._stack[self._stack.index(ident):] + [ident]
            raise InterpolationError(
                "interpolation cycle: " + " -> ".join(qualified(*item) for item in chain),
                source=entry.source, line=entry.lineno)
        self._stack.append(ident)
        try:
            result = evaluate(entry.node,
                              lambda text, whole: self._expand(text, whole, entry))
        finally:
            self._stack.pop()
        self._cache[ident] = result
        return _copy(result)

    def _resolve(self, reference: Reference, entry):
        section = entry.section if reference.section is None else reference.section
        if reference.key not in self._table.get(section, {}):
            raise InterpolationError(
                f"unknown reference ${{{qualified(section, reference.key)}}}",
                source=entry.source, line=entry.lineno)
        return self.value(section, reference.key)

    def _expand(self, text: str, whole: bool, entry):
        if "$" not in text:
            return text
        try:
            pieces = split_template(text)
        except InterpolationError as exc:
            raise InterpolationError(exc.message, source=entry.source,
                                     line=entry.lineno) from None
        if whole and len(pieces) == 1 and isinstance(pieces[0], Reference):
            return Resolved(self._resolve(pieces[0], entry))
        out = []
        for piece in pieces:
            if isinstance(piece, Reference):
                out.append(to_text(self._resolve(piece, entry)))
            else:
                out.append(piece)
        return "".join(out)
