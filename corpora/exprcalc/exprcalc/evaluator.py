"""Tree-walking evaluator with variables, constants and user functions."""

from __future__ import annotations

import math
import operator
from typing import Callable

from .errors import ArityError, DomainError, EvalError, UndefinedVariableError
from .functions import (FunctionTable, Real, check_finite, closest_name, default_functions,
                        factorial, floor_divide, modulo, power, true_divide)
from .nodes import Assign, Binary, Call, FunctionDef, Node, Number, Program, Unary, Variable
from .parser import parse_program
from .printer import to_string

CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}
MAX_CALL_DEPTH = 32


def _compare(test: Callable[[Real, Real], bool]) -> Callable[[Real, Real], int]:
    return lambda a, b: int(test(a, b))


BINARY_OPERATIONS: dict[str, Callable[[Real, Real], Real]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": true_divide,
    "//": floor_divide,
    "%": modulo,
    "^": power,
    "==": _compare(operator.eq),
    "!=": _compare(operator.ne),
    "<": _compare(operator.lt),
    "<=": _compare(operator.le),
    ">": _compare(operator.gt),
    ">=": _compare(operator.ge),
}


def apply_binary(op: str, left: Real, right: Real, position: int | None = None) -> Real:
    """Apply the binary operator *op*, attaching *position* to any error."""
    operation = BINARY_OPERATIONS.get(op)
    if operation is None:
        raise EvalError(f"unknown operator {op!r}", position)
    try:
        result = operation(left, right)
    except DomainError as exc:
        raise DomainError(exc.message, position) from None
    except OverflowError:
        raise DomainError("numeric overflow", position) from None
    return check_finite(result, position)


class Evaluator:
    """Evaluate syntax trees against a variable scope and a function table."""

    def __init__(self, variables: dict[str, Real] | None = None,
                 functions: FunctionTable | None = None) -> None:
        self.variables: dict[str, Real] = dict(variables or {})
        self.functions = functions if functions is not None else default_functions()
        self._call_stack: list[str] = []

    def evaluate(self, node: Node) -> Real | None:
        """Evaluate *node*; definitions evaluate to None."""
        handler = getattr(self, "_eval_" + type(node).__name__, None)
        if handler is None:
            raise EvalError(f"cannot evaluate {type(node).__name__}")
        return handler(node)

    def _eval_Number(self, node: Number) -> Real:
        return node.value

    def _eval_Variable(self, node: Variable) -> Real:
        if node.name in self.variables:
            return self.variables[node.name]
        if node.name in CONSTANTS:
            return CONSTANTS[node.name]
        suggestion = closest_name(node.name, [*self.variables, *CONSTANTS], max_distance=1)
        raise UndefinedVariableError(node.name, node.position, suggestion)

    def _eval_Unary(self, node: Unary) -> Real:
        value = self._operand(node.operand)
        if node.op == "-":
            return -value
        if node.op == "+":
            return value
        if node.op == "!":
            try:
                return factorial(value)
            except DomainError as exc:
                raise DomainError(exc.message, node.position) from None
        raise EvalError(f"unknown unary operator {node.op!r}", node.position)

    def _eval_Binary(self, node: Binary) -> Real:
        left = self._operand(node.left)
        right = self._operand(node.right)
        return apply_binary(node.op, left, right, node.position)

    def _eval_Call(self, node: Call) -> Real:
        if node.name == "if":
            if len(node.args) != 3:
                raise ArityError("if", "3 arguments", len(node.args), node.position)
            condition = self._operand(node.args[0])
            return self._operand(node.args[1] if condition != 0 else node.args[2])
        args = [self._operand(arg) for arg in node.args]
        return self.functions.call(node.name, args, node.position)

    def _eval_Assign(self, node: Assign) -> Real:
        if node.name in CONSTANTS:
            raise EvalError(f"cannot assign to constant '{node.name}'", node.position)
        value = self._operand(node.value)
        self.variables[node.name] = value
        return value

    def _eval_FunctionDef(self, node: FunctionDef) -> None:
        if node.name == "if":
            raise EvalError("cannot redefine 'if'", node.position)

        def impl(*args: Real) -> Real:
            return self._invoke(node, args)

        try:
            self.functions.register(node.name, impl, len(node.params), len(node.params),
                                    doc=to_string(node))
        except DomainError as exc:
            raise EvalError(exc.message, node.position) from None
        return None

    def _eval_Program(self, node: Program) -> Real | None:
        result: Real | None = None
        for statement in node.statements:
            result = self.evaluate(statement)
        return result

    def _operand(self, node: Node) -> Real:
        value = self.evaluate(node)
        if value is None:
            raise EvalError("a definition cannot be used as a value", getattr(node, "position", None))
        return value

    def _invoke(self, definition: FunctionDef, args: tuple[Real, ...]) -> Real:
        stack = self._call_stack
        if len(stack) >= MAX_CALL_DEPTH:
            raise EvalError(f"maximum call depth of {MAX_CALL_DEPTH} exceeded in "
                            f"'{definition.name}'", definition.position)
        scope = dict(self.variables)
        scope.update(zip(definition.params, args))
        local = Evaluator(scope, self.functions)
        local._call_stack = stack
        stack.append(definition.name)
        try:
            return local._operand(definition.body)
        finally:
            stack.pop()


def evaluate(source: str, variables: dict[str, Real] | None = None) -> Real | None:
    """Parse and evaluate *source*, returning the value of its last statement."""
    return Evaluator(variables).evaluate(parse_program(source))
