"""Algebraic simplification: constant folding and identity rewriting."""

from __future__ import annotations

from .errors import ExprError
from .evaluator import Evaluator, apply_binary
from .functions import FunctionTable, default_functions
from .nodes import Assign, Binary, Call, FunctionDef, Node, Number, Program, Unary

MAX_PASSES = 20


def _is_value(node: Node, value: int) -> bool:
    return isinstance(node, Number) and node.value == value


class Simplifier:
    """Rewrite trees bottom-up into equivalent, smaller trees.

    Only sub-expressions made entirely of literals are folded; named
    constants such as ``pi`` stay symbolic.  Folding that would raise an
    error (for instance ``1 / 0``) leaves the sub-expression untouched so the
    error surfaces when the result is evaluated.
    """

    def __init__(self, functions: FunctionTable | None = None) -> None:
        self._folder = Evaluator({}, functions if functions is not None else default_functions())

    def simplify(self, node: Node) -> Node:
        if isinstance(node, Program):
            return Program(tuple(self.simplify(s) for s in node.statements), node.position)
        if isinstance(node, Assign):
            return Assign(node.name, self.simplify(node.value), node.position)
        if isinstance(node, FunctionDef):
            return FunctionDef(node.name, node.params, self.simplify(node.body), node.position)
        return self._simplify_expression(node)

    def _simplify_expression(self, node: Node) -> Node:
        if isinstance(node, Unary):
            node = Unary(node.op, self._simplify_expression(node.operand), node.position)
        elif isinstance(node, Binary):
            node = Binary(node.op, self._simplify_expression(node.left),
                          self._simplify_expression(node.right), node.position)
        elif isinstance(node, Call):
            node = Call(node.name, tuple(self._simplify_expression(a) for a in node.args),
                        node.position)
        else:
            return node
        return self._rewrite(node)

    def _rewrite(self, node: Node) -> Node:
        for _ in range(MAX_PASSES):
            if not isinstance(node, (Unary, Binary, Call)):
                return node
            folded = self._fold(node)
            if folded is not None:
                return folded
            rewritten = self._apply_rules(node)
            if rewritten is None:
                return node
            node = rewritten
        return node

    def _fold(self, node: Node) -> Number | None:
        if isinstance(node, Unary):
            operands: tuple[Node, ...] = (node.operand,)
        elif isinstance(node, Binary):
            operands = (node.left, node.right)
        else:
            assert isinstance(node, Call)
            if node.name == "if":
                return None
            operands = node.args
        if not all(isinstance(operand, Number) for operand in operands):
            return None
        try:
            value = self._folder.evaluate(node)
        except ExprError:
            return None
        return Number(value, position=node.position)

    def _apply_rules(self, node: Node) -> Node | None:
        if isinstance(node, Unary):
            if node.op == "+":
                return node.operand
            if node.op == "-" and isinstance(node.operand, Unary) and node.operand.op == "-":
                return node.operand.operand
            return None
        if isinstance(node, Call):
            if node.name == "if" and len(node.args) == 3 and isinstance(node.args[0], Number):
                return node.args[1] if node.args[0].value != 0 else node.args[2]
            return None
        assert isinstance(node, Binary)
        handler = _BINARY_RULES.get(node.op)
        return handler(node) if handler else None


def _rules_add(node: Binary) -> Node | None:
    a, b = node.left, node.right
    if _is_value(b, 0):
        return a
    if _is_value(a, 0):
        return b
    if a == b:
        return Binary("*", Number(2), a, node.position)
    if isinstance(b, Unary) and b.op == "-":
        return Binary("-", a, b.operand, node.position)
    if isinstance(b, Number) and isinstance(a, Binary) and a.op == "+" \
            and isinstance(a.right, Number):
        total = apply_binary("+", a.right.value, b.value)
        return Binary("+", a.left, Number(total), node.position)
    return None


def _rules_subtract(node: Binary) -> Node | None:
    a, b = node.left, node.right
    if _is_value(b, 0):
        return a
    if _is_value(a, 0):
        return Unary("-", b, node.position)
    if a == b:
        return Number(0, node.position)
    if isinstance(b, Unary) and b.op == "-":
        return Binary("+", a, b.operand, node.position)
    return None


def _rules_multiply(node: Binary) -> Node | None:
    a, b = node.left, node.right
    if _is_value(a, 0) or _is_value(b, 0):
        return Number(0, node.position)
    if _is_value(b, 1):
        return a
    if _is_value(a, 1):
        return b
    if _is_value(b, -1):
        return Unary("-", a, node.position)
    if _is_value(a, -1):
        return Unary("-", b, node.position)
    if isinstance(b, Number) and not isinstance(a, Number):
        return Binary("*", b, a, node.position)
    if isinstance(a, Number) and isinstance(b, Binary) and b.op == "*" \
            and isinstance(b.left, Number):
        product = apply_binary("*", a.value, b.left.value)
        return Binary("*", Number(product), b.right, node.position)
    return None


def _rules_divide(node: Binary) -> Node | None:
    if _is_value(node.right, 1):
        return node.left
    return None


def _rules_power(node: Binary) -> Node | None:
    if _is_value(node.right, 1):
        return node.left
    if _is_value(node.right, 0) or _is_value(node.left, 1):
        return Number(1, node.position)
    return None


_BINARY_RULES = {
    "+": _rules_add,
    "-": _rules_subtract,
    "*": _rules_multiply,
    "/": _rules_divide,
    "^": _rules_power,
}


def simplify(node: Node, functions: FunctionTable | None = None) -> Node:
    """Return a simplified copy of *node*."""
    return Simplifier(functions).simplify(node)
