"""Render syntax trees back into source text with minimal parentheses."""

from __future__ import annotations

from .nodes import Assign, Binary, Call, FunctionDef, Node, Number, Program, Unary, Variable

ASSIGN_PRECEDENCE = 0
UNARY_PRECEDENCE = 4
POSTFIX_PRECEDENCE = 6
ATOM_PRECEDENCE = 7

BINARY_PRECEDENCE = {
    "==": 1, "!=": 1, "<": 1, "<=": 1, ">": 1, ">=": 1,
    "+": 2, "-": 2,
    "*": 3, "/": 3, "//": 3, "%": 3,
    "^": 5,
}


def format_number(value: int | float) -> str:
    """Format a numeric value the way it would be written in an expression."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


def precedence(node: Node) -> int:
    """Return the binding strength of *node* when printed."""
    if isinstance(node, Binary):
        return BINARY_PRECEDENCE[node.op]
    if isinstance(node, Unary):
        return POSTFIX_PRECEDENCE if node.op == "!" else UNARY_PRECEDENCE
    if isinstance(node, Number) and node.value < 0:
        return UNARY_PRECEDENCE
    if isinstance(node, (Assign, FunctionDef, Program)):
        return ASSIGN_PRECEDENCE
    return ATOM_PRECEDENCE


def _wrap(node: Node, needed: bool) -> str:
    text = to_string(node)
    return f"({text})" if needed else text


def _binary_to_string(node: Binary) -> str:
    level = BINARY_PRECEDENCE[node.op]
    left_level = precedence(node.left)
    right_level = precedence(node.right)
    if node.op == "^":
        left = _wrap(node.left, left_level <= level)
        right = _wrap(node.right, right_level < UNARY_PRECEDENCE)
        return f"{left}^{right}"
    if level == 1:
        left = _wrap(node.left, left_level <= level)
    else:
        left = _wrap(node.left, left_level < level)
    right = _wrap(node.right, right_level <= level)
    return f"{left} {node.op} {right}"


def to_string(node: Node) -> str:
    """Return source text that parses back to a tree equivalent to *node*."""
    if isinstance(node, Number):
        return format_number(node.value)
    if isinstance(node, Variable):
        return node.name
    if isinstance(node, Call):
        return f"{node.name}({', '.join(to_string(arg) for arg in node.args)})"
    if isinstance(node, Unary):
        if node.op == "!":
            return _wrap(node.operand, precedence(node.operand) < POSTFIX_PRECEDENCE) + "!"
        return node.op + _wrap(node.operand, precedence(node.operand) <= UNARY_PRECEDENCE)
    if isinstance(node, Binary):
        return _binary_to_string(node)
    if isinstance(node, Assign):
        return f"{node.name} = {to_string(node.value)}"
    if isinstance(node, FunctionDef):
        return f"{node.name}({', '.join(node.params)}) = {to_string(node.body)}"
    if isinstance(node, Program):
        return "; ".join(to_string(statement) for statement in node.statements)
    raise TypeError(f"cannot print {type(node).__name__}")


def tree_lines(node: Node, indent: str = "  ") -> list[str]:
    """Return an indented outline of the tree, one node per line."""
    lines: list[str] = []

    def visit(current: Node, level: int) -> None:
        prefix = indent * level
        if isinstance(current, Number):
            lines.append(f"{prefix}Number {format_number(current.value)}")
        elif isinstance(current, Variable):
            lines.append(f"{prefix}Variable {current.name}")
        elif isinstance(current, Unary):
            lines.append(f"{prefix}Unary {current.op}")
            visit(current.operand, level + 1)
        elif isinstance(current, Binary):
            lines.append(f"{prefix}Binary {current.op}")
            visit(current.left, level + 1)
            visit(current.right, level + 1)
        elif isinstance(current, Call):
            lines.append(f"{prefix}Call {current.name}/{len(current.args)}")
            for arg in current.args:
                visit(arg, level + 1)
        elif isinstance(current, Assign):
            lines.append(f"{prefix}Assign {current.name}")
            visit(current.value, level + 1)
        elif isinstance(current, FunctionDef):
            lines.append(f"{prefix}FunctionDef {current.name}({', '.join(current.params)})")
            visit(current.body, level + 1)
        elif isinstance(current, Program):
            lines.append(f"{prefix}Program")
            for statement in current.statements:
                visit(statement, level + 1)

    visit(node, 0)
    return lines
