"""exprcalc: a small arithmetic expression language.

Typical use::

    >>> from exprcalc import evaluate
    >>> evaluate("x = 3; 2 * x ^ 2 + max(1, x)")
    21
"""

from .calculus import derivative, differentiate, newton, slope_at, tangent_line
from .errors import (ArityError, DomainError, EvalError, ExprError, ParseError,
                     TokenizeError, UndefinedVariableError, UnknownFunctionError)
from .evaluator import CONSTANTS, Evaluator, evaluate
from .functions import FunctionTable, default_functions, round_half_away
from .nodes import (Assign, Binary, Call, FunctionDef, Number, Program, Unary, Variable,
                    free_variables, node_count)
from .parser import parse, parse_program
from .printer import format_number, to_string, tree_lines
from .rpn import eval_rpn, to_rpn
from .session import Calculator
from .simplify import simplify
from .tokens import Token, TokenKind, tokenize

__all__ = [
    "ArityError", "Assign", "Binary", "CONSTANTS", "Calculator", "Call", "DomainError",
    "EvalError", "Evaluator", "ExprError", "FunctionDef", "FunctionTable", "Number",
    "ParseError", "Program", "Token", "TokenKind", "TokenizeError", "Unary",
    "UndefinedVariableError", "UnknownFunctionError", "Variable", "default_functions",
    "derivative", "differentiate", "eval_rpn", "evaluate", "format_number",
    "free_variables", "newton", "node_count", "parse", "parse_program", "round_half_away",
    "simplify", "slope_at", "tangent_line", "to_rpn", "to_string", "tokenize", "tree_lines",
]
