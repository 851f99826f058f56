"""Lexing, typing and rendering of configuration values.

The raw text to the right of ``=`` is first turned into a tiny syntax tree
made of :class:`Scalar` and :class:`ListNode` objects.  Evaluating that tree
produces plain Python objects: ``str``, ``int``, ``float``, ``bool`` and
``list``.  Bare (unquoted) scalars are typed *after* interpolation, quoted
scalars are always strings.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable, Optional, Union

from .errors import ValueSyntaxError

TRUE_WORDS = frozenset({"true", "yes", "on"})
FALSE_WORDS = frozenset({"false", "no", "off"})

TYPE_LABELS = {
    str: "string",
    int: "integer",
    float: "float",
    bool: "boolean",
    list: "list",
}

_DECIMAL_INT = re.compile(r"[+-]?(?:0|[1-9]\d*(?:_\d+)*)\Z")
_PREFIXED_INT = re.compile(r"([+-]?)0([xXoObB])([0-9a-fA-F]+(?:_[0-9a-fA-F]+)*)\Z")
_FLOAT = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?\Z")
_BASES = {"x": 16, "o": 8, "b": 2}

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
_REVERSE_ESCAPES = {value: "\\" + key for key, value in _ESCAPES.items()}
_UNSAFE_BARE = set('#;"[],$\\\n\r\t')


@dataclass(frozen=True)
class Scalar:
    """A single value; ``quoted`` tells whether it was written in quotes."""

    text: str
    quoted: bool = False


@dataclass(frozen=True)
class ListNode:
    """A bracketed, comma separated list of nodes."""

    items: tuple


Node = Union[Scalar, ListNode]


@dataclass(frozen=True)
class Resolved:
    """Returned by a substitution hook to hand back an already typed value."""

    value: object


Substitute = Callable[[str, bool], Union[str, Resolved]]


def coerce_scalar(text: str):
    """Type a bare word: booleans, integers, floats, otherwise the string."""
    lowered = text.lower()
    if lowered in TRUE_WORDS:
        return True
    if lowered in FALSE_WORDS:
        return False
    if _DECIMAL_INT.match(text):
        return int(text.replace("_", ""))
    match = _PREFIXED_INT.match(text)
    if match:
        sign, base, digits = match.groups()
        try:
            number = int(digits.replace("_", ""), _BASES[base.lower()])
        except ValueError:
            return text
        return -number if sign == "-" else number
    if _FLOAT.match(text) and any(ch in text for ch in ".eE"):
        return float(text)
    return text


def split_comment(text: str) -> tuple[str, str]:
    """Split ``text`` into the value and a trailing ``#``/``;`` comment.

    A comment marker only counts outside quotes and when it starts the text
    or follows whitespace.  The whitespace before the marker belongs to the
    comment so that ``value + comment`` reproduces the input.
    """
    in_quote = False
    escaped = False
    for index, ch in enumerate(text):
        if in_quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_quote = False
        elif ch == '"':
            in_quote = True
        elif ch in "#;" and (index == 0 or text[index - 1].isspace()):
            start = index
            while start > 0 and text[start - 1].isspace():
                start -= 1
            return text[:start], text[start:]
    return text, ""


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def _read_quoted(text: str, pos: int) -> tuple[str, int]:
    pos += 1
    out = []
    while pos < len(text):
        ch = text[pos]
        if ch == '"':
            return "".join(out), pos + 1
        if ch == "\n":
            raise ValueSyntaxError("quoted string may not span lines")
        if ch == "\\":
            if pos + 1 >= len(text):
                break
            follower = text[pos + 1]
            if follower not in _ESCAPES:
                raise ValueSyntaxError(f"unknown escape sequence '\\{follower}'")
            out.append(_ESCAPES[follower])
            pos += 2
            continue
        out.append(ch)
        pos += 1
    raise ValueSyntaxError("unterminated quoted string")


def _read_list(text: str, pos: int) -> tuple[ListNode, int]:
    pos += 1
    items = []
    while True:
        pos = _skip_space(text, pos)
        if pos >= len(text):
            raise ValueSyntaxError("unterminated list")
        ch = text[pos]
        if ch == "]":
            return ListNode(tuple(items)), pos + 1
        if ch == ",":
            raise ValueSyntaxError("empty list item")
        if ch == "[":
            item, pos = _read_list(text, pos)
        elif ch == '"':
            word, pos = _read_quoted(text, pos)
            item = Scalar(word, True)
        else:
            start = pos
            while pos < len(text) and text[pos] not in ',[]"':
                pos += 1
            if pos < len(text) and text[pos] in '["':
                raise ValueSyntaxError(f"unexpected {text[pos]!r} inside list item")
            item = Scalar(text[start:pos].strip(), False)
        items.append(item)
        pos = _skip_space(text, pos)
        if pos >= len(text):
            raise ValueSyntaxError("unterminated list")
        if text[pos] == ",":
            pos += 1
        elif text[pos] != "]":
            raise ValueSyntaxError(f"expected ',' or ']' in list, found {text[pos]!r}")


def parse_node(raw: str) -> Node:
    """Tokenise a raw value into a syntax tree, raising on malformed input."""
    text = raw.strip()
    if not text:
        return Scalar("", False)
    if text[0] == "[":
        node, pos = _read_list(text, 0)
    elif text[0] == '"':
        word, pos = _read_quoted(text, 0)
        node = Scalar(word, True)
    else:
        return Scalar(text, False)
    rest = text[pos:].strip()
    if rest:
        raise ValueSyntaxError(f"unexpected text after value: {rest!r}")
    return node


def evaluate(node: Node, substitute: Optional[Substitute] = None):
    """Evaluate a syntax tree, applying ``substitute`` to every scalar.

    ``substitute(text, whole)`` receives the scalar text and whether a typed
    value may replace it entirely; it returns new text or a :class:`Resolved`.
    """
    if isinstance(node, ListNode):
        return [evaluate(item, substitute) for item in node.items]
    text = node.text
    if substitute is not None:
        expanded = substitute(text, not node.quoted)
        if isinstance(expanded, Resolved):
            return expanded.value
        text = expanded
    if node.quoted:
        return text
    return coerce_scalar(text)


def parse_value(raw: str):
    """Parse and evaluate ``raw`` without any interpolation."""
    return evaluate(parse_node(raw))


def type_name(value) -> str:
    """Human readable name of the type of ``value``."""
    for kind in (bool, int, float, str, list):
        if isinstance(value, kind):
            return TYPE_LABELS[kind]
    return type(value).__name__


def describe(value) -> str:
    """Describe a value for error messages, e.g. ``string 'abc'``."""
    if isinstance(value, str):
        return f"string {value!r}"
    try:
        shown = format_value(value)
    except (TypeError, ValueError):
        shown = repr(value)
    return f"{type_name(value)} {shown}"


def to_text(value) -> str:
    """Render a value as plain text, as used inside interpolated strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, str)):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(to_text(item) for item in value)
    raise TypeError(f"cannot render {type(value).__name__} as text")


def _needs_quotes(text: str) -> bool:
    if not text or text != text.strip():
        return True
    if any(ch in _UNSAFE_BARE for ch in text):
        return True
    return not isinstance(coerce_scalar(text), str)


def quote(text: str) -> str:
    """Quote a string so that it reads back verbatim after interpolation."""
    body = "".join(_REVERSE_ESCAPES.get(ch, ch) for ch in text)
    return '"' + body.replace("$", "$$") + '"'


def format_value(value) -> str:
    """Render a Python value as source text that parses back to it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot represent non-finite float {value!r}")
        return repr(value)
    if isinstance(value, str):
        return quote(value) if _needs_quotes(value) else value
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(item) for item in value) + "]"
    raise TypeError(f"unsupported value type: {type(value).__name__}")
