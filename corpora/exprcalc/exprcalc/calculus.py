"""Symbolic differentiation and a few numeric tools built on top of it."""

from __future__ import annotations

from typing import Callable

from .errors import DomainError, EvalError
from .evaluator import Evaluator
from .functions import Real
from .nodes import Binary, Call, Node, Number, Unary, Variable, contains_variable
from .parser import parse
from .simplify import simplify


def _add(a: Node, b: Node) -> Node:
    return Binary("+", a, b)


def _sub(a: Node, b: Node) -> Node:
    return Binary("-", a, b)


def _mul(a: Node, b: Node) -> Node:
    return Binary("*", a, b)


def _div(a: Node, b: Node) -> Node:
    return Binary("/", a, b)


def _pow(a: Node, b: Node) -> Node:
    return Binary("^", a, b)


def _call(name: str, arg: Node) -> Node:
    return Call(name, (arg,))


_CHAIN_RULES: dict[str, Callable[[Node], Node]] = {
    "sin": lambda u: _call("cos", u),
    "cos": lambda u: Unary("-", _call("sin", u)),
    "tan": lambda u: _div(Number(1), _pow(_call("cos", u), Number(2))),
    "exp": lambda u: _call("exp", u),
    "ln": lambda u: _div(Number(1), u),
    "sqrt": lambda u: _div(Number(1), _mul(Number(2), _call("sqrt", u))),
    "abs": lambda u: _call("sign", u),
}


def differentiate(node: Node, var: str) -> Node:
    """Return the (unsimplified) derivative of *node* with respect to *var*."""
    if isinstance(node, Number):
        return Number(0)
    if isinstance(node, Variable):
        return Number(1 if node.name == var else 0)
    if isinstance(node, Unary):
        if node.op in ("+", "-"):
            return Unary(node.op, differentiate(node.operand, var))
        raise EvalError(f"cannot differentiate operator '{node.op}'", node.position)
    if isinstance(node, Binary):
        return _differentiate_binary(node, var)
    if isinstance(node, Call):
        rule = _CHAIN_RULES.get(node.name)
        if rule is None or len(node.args) != 1:
            raise EvalError(f"cannot differentiate function '{node.name}'", node.position)
        inner = node.args[0]
        return _mul(rule(inner), differentiate(inner, var))
    raise EvalError(f"cannot differentiate {type(node).__name__}",
                    getattr(node, "position", None))


def _differentiate_binary(node: Binary, var: str) -> Node:
    a, b = node.left, node.right
    if node.op in ("+", "-"):
        return Binary(node.op, differentiate(a, var), differentiate(b, var))
    if node.op == "*":
        return _add(_mul(differentiate(a, var), b), _mul(a, differentiate(b, var)))
    if node.op == "/":
        numerator = _sub(_mul(differentiate(a, var), b), _mul(a, differentiate(b, var)))
        return _div(numerator, _pow(b, Number(2)))
    if node.op == "^":
        base_varies = contains_variable(a, var)
        exponent_varies = contains_variable(b, var)
        if not exponent_varies:
            return _mul(_mul(b, _pow(a, _sub(b, Number(1)))), differentiate(a, var))
        if not base_varies:
            return _mul(_mul(node, _call("ln", a)), differentiate(b, var))
        inner = _add(_mul(differentiate(b, var), _call("ln", a)),
                     _div(_mul(b, differentiate(a, var)), a))
        return _mul(node, inner)
    raise EvalError(f"cannot differentiate operator '{node.op}'", node.position)


def derivative(expression: str | Node, var: str = "x") -> Node:
    """Return the simplified derivative of *expression* with respect to *var*."""
    node = parse(expression) if isinstance(expression, str) else expression
    return simplify(differentiate(node, var))


def slope_at(expression: str | Node, var: str, at: Real,
             variables: dict[str, Real] | None = None) -> Real:
    """Evaluate the derivative of *expression* at ``var = at``."""
    scope = dict(variables or {})
    scope[var] = at
    return Evaluator(scope).evaluate(derivative(expression, var))


def tangent_line(expression: str | Node, var: str, at: Real) -> tuple[Real, Real]:
    """Return ``(slope, intercept)`` of the tangent to the curve at ``var = at``."""
    node = parse(expression) if isinstance(expression, str) else expression
    value = Evaluator({var: at}).evaluate(node)
    slope = slope_at(node, var, at)
    return slope, value - slope * at


def newton(expression: str | Node, var: str, start: Real,
           tolerance: float = 1e-12, max_iterations: int = 50) -> float:
    """Find a root of *expression* near *start* with Newton's method."""
    node = parse(expression) if isinstance(expression, str) else expression
    slope_node = derivative(node, var)
    x = float(start)
    for _ in range(max_iterations):
        evaluator = Evaluator({var: x})
        fx = evaluator.evaluate(node)
        dfx = evaluator.evaluate(slope_node)
        if dfx == 0:
            raise DomainError(f"derivative vanished at {var} = {x!r}")
        step = fx / dfx
        x -= step
        if abs(step) <= tolerance * max(1.0, abs(x)):
            return x
    raise DomainError(f"no convergence after {max_iterations} iterations")
