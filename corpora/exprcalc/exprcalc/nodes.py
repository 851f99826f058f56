"""Abstract syntax tree node types and generic tree helpers.

Nodes are immutable dataclasses.  Source positions are kept for error
reporting but ignored by equality, so two trees compare equal whenever they
have the same structure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator


@dataclass(frozen=True)
class Node:
    """Base class for syntax tree nodes."""


@dataclass(frozen=True)
class Number(Node):
    """A numeric literal."""

    value: int | float
    position: int = field(default=-1, compare=False, repr=False)


@dataclass(frozen=True)
class Variable(Node):
    """A reference to a named variable or constant."""

    name: str
    position: int = field(default=-1, compare=False, repr=False)


@dataclass(frozen=True)
class Unary(Node):
    """A prefix ``-``/``+`` or the postfix factorial ``!``."""

    op: str
    operand: Node
    position: int = field(default=-1, compare=False, repr=False)


@dataclass(frozen=True)
class Binary(Node):
    """An infix operation such as ``a + b`` or ``a ^ b``."""

    op: str
    left: Node
    right: Node
    position: int = field(default=-1, compare=False, repr=False)


@dataclass(frozen=True)
class Call(Node):
    """A function call ``name(arg, ...)``."""

    name: str
    args: tuple[Node, ...]
    position: int = field(default=-1, compare=False, repr=False)


@dataclass(frozen=True)
class Assign(Node):
    """An assignment statement ``name = value``."""

    name: str
    value: Node
    position: int = field(default=-1, compare=False, repr=False)


@dataclass(frozen=True)
class FunctionDef(Node):
    """A user function definition ``name(p1, p2) = body``."""

    name: str
    params: tuple[str, ...]
    body: Node
    position: int = field(default=-1, compare=False, repr=False)


@dataclass(frozen=True)
class Program(Node):
    """A sequence of statements separated by semicolons."""

    statements: tuple[Node, ...]
    position: int = field(default=0, compare=False, repr=False)


def children(node: Node) -> tuple[Node, ...]:
    """Return the direct child nodes of *node* in source order."""
    if isinstance(node, Unary):
        return (node.operand,)
    if isinstance(node, Binary):
        return (node.left, node.right)
    if isinstance(node, Call):
        return node.args
    if isinstance(node, Assign):
        return (node.value,)
    if isinstance(node, FunctionDef):
        return (node.body,)
    if isinstance(node, Program):
        return node.statements
    return ()


def walk(node: Node) -> Iterator[Node]:
    """Yield *node* and all of its descendants in pre-order."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(children(current)))


def free_variables(node: Node) -> set[str]:
    """Return the names of variables referenced but not bound inside *node*."""
    if isinstance(node, Variable):
        return {node.name}
    if isinstance(node, FunctionDef):
        return free_variables(node.body) - set(node.params)
    names: set[str] = set()
    for child in children(node):
        names |= free_variables(child)
    return names


def contains_variable(node: Node, name: str) -> bool:
    """Return True when *node* references the variable *name*."""
    return any(isinstance(n, Variable) and n.name == name for n in walk(node))


def node_count(node: Node) -> int:
    """Return the number of nodes in the tree rooted at *node*."""
    return sum(1 for _ in walk(node))


def depth(node: Node) -> int:
    """Return the height of the tree rooted at *node* (a leaf has depth 1)."""
    kids = children(node)
    if not kids:
        return 1
    return 1 + max(depth(child) for child in kids)
