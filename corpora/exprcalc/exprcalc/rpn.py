"""Conversion of syntax trees to reverse Polish notation and a stack machine.

RPN tokens are plain strings: numbers, variable names, operator symbols,
``neg`` for unary minus, ``!`` for factorial and ``name/N`` for a call with
N arguments.
"""

from __future__ import annotations

from .errors import EvalError, ExprError, UndefinedVariableError
from .evaluator import BINARY_OPERATIONS, CONSTANTS, apply_binary
from .functions import FunctionTable, Real, default_functions, factorial
from .nodes import Binary, Call, Node, Number, Unary, Variable
from .printer import format_number


def to_rpn(node: Node) -> list[str]:
    """Return the postfix token sequence for an expression tree."""
    if isinstance(node, Number):
        return [format_number(node.value)]
    if isinstance(node, Variable):
        return [node.name]
    if isinstance(node, Unary):
        operand = to_rpn(node.operand)
        if node.op == "+":
            return operand
        return operand + ["neg" if node.op == "-" else node.op]
    if isinstance(node, Binary):
        return to_rpn(node.left) + to_rpn(node.right) + [node.op]
    if isinstance(node, Call):
        tokens: list[str] = []
        for arg in node.args:
            tokens.extend(to_rpn(arg))
        return tokens + [f"{node.name}/{len(node.args)}"]
    raise ExprError(f"cannot convert {type(node).__name__} to RPN")


def _literal(token: str) -> Real | None:
    try:
        return int(token)
    except ValueError:
        pass
    try:
        return float(token)
    except ValueError:
        return None


def eval_rpn(tokens: list[str], variables: dict[str, Real] | None = None,
             functions: FunctionTable | None = None) -> Real:
    """Evaluate a postfix token sequence and return the single result."""
    scope = variables or {}
    table = functions if functions is not None else default_functions()
    stack: list[Real] = []

    def pop(count: int, token: str) -> list[Real]:
        if len(stack) < count:
            raise EvalError(f"malformed RPN: not enough operands for {token!r}")
        values = stack[len(stack) - count:]
        del stack[len(stack) - count:]
        return values

    for token in tokens:
        if token in BINARY_OPERATIONS:
            left, right = pop(2, token)
            stack.append(apply_binary(token, left, right))
        elif token == "neg":
            stack.append(-pop(1, token)[0])
        elif token == "!":
            stack.append(factorial(pop(1, token)[0]))
        elif "/" in token:
            name, _, count_text = token.rpartition("/")
            if not count_text.isdigit():
                raise EvalError(f"malformed RPN call token {token!r}")
            args = pop(int(count_text), token)
            if name == "if" and len(args) == 3:
                stack.append(args[1] if args[0] != 0 else args[2])
            else:
                stack.append(table.call(name, args))
        else:
            value = _literal(token)
            if value is None:
                if token in scope:
                    value = scope[token]
                elif token in CONSTANTS:
                    value = CONSTANTS[token]
                else:
                    raise UndefinedVariableError(token)
            stack.append(value)
    if len(stack) != 1:
        raise EvalError(f"malformed RPN: {len(stack)} values left on the stack")
    return stack[0]
