"""A stateful calculator session that remembers variables and functions."""

from __future__ import annotations

from .errors import ExprError
from .evaluator import Evaluator
from .functions import Real, default_functions
from .parser import parse_program
from .printer import format_number


class Calculator:
    """Evaluate successive inputs, keeping assignments and definitions.

    The result of each input that produces a value is stored in the
    variable ``ans`` and appended to :attr:`history`.
    """

    def __init__(self, variables: dict[str, Real] | None = None) -> None:
        self._initial = dict(variables or {})
        self.reset()

    def reset(self) -> None:
        """Forget all variables, user functions and history."""
        self.functions = default_functions()
        self.evaluator = Evaluator(self._initial, self.functions)
        self.history: list[tuple[str, Real]] = []

    @property
    def variables(self) -> dict[str, Real]:
        return dict(self.evaluator.variables)

    def run(self, source: str) -> Real | None:
        """Evaluate *source* and return the value of its last statement."""
        result = self.evaluator.evaluate(parse_program(source))
        if result is not None:
            self.evaluator.variables["ans"] = result
            self.history.append((source, result))
        return result

    def run_text(self, source: str) -> str:
        """Evaluate *source* and return the result or error as display text."""
        try:
            result = self.run(source)
        except ExprError as exc:
            return f"error: {exc.message}\n{exc.pointer(source)}"
        return "" if result is None else format_number(result)

    def user_functions(self) -> list[str]:
        """Return the source text of each user-defined function."""
        return [function.doc for function in self.functions.user_functions()]

    def diagnose(self, source: str) -> str | None:
        """Return a caret diagram for the first syntax error, or None."""
        try:
            parse_program(source)
        except ExprError as exc:
            return f"{exc.message}\n{exc.pointer(source)}"
        return None
