"""Numeric helpers and the registry of callable functions.

The arithmetic helpers here (division, powers, factorial) are shared by the
evaluator and the RPN machine so that both agree on exact integer results and
on which operations are undefined.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Callable, Iterable

from .errors import ArityError, DomainError, UnknownFunctionError
from .printer import format_number

Real = int | float

MAX_RESULT_BITS = 100_000
MAX_FACTORIAL = 500
_ROUNDING_CONTEXT = Context(prec=400)


def check_finite(value: Real, position: int | None = None) -> Real:
    """Return *value* unchanged, raising DomainError for inf or NaN."""
    if isinstance(value, float):
        if math.isnan(value):
            raise DomainError("result is not a number", position)
        if math.isinf(value):
            raise DomainError("numeric overflow", position)
    return value


def require_int(value: Real, fname: str) -> int:
    """Return *value* as an int, or raise DomainError if it is not integral."""
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise DomainError(f"{fname}() requires an integer, got {format_number(value)}")


def true_divide(a: Real, b: Real) -> Real:
    """Divide, keeping an exact int result when both operands are ints."""
    if b == 0:
        raise DomainError("division by zero")
    if isinstance(a, int) and isinstance(b, int) and a % b == 0:
        return a // b
    return a / b


def floor_divide(a: Real, b: Real) -> Real:
    """Floor division with a DomainError for a zero divisor."""
    if b == 0:
        raise DomainError("division by zero")
    return a // b


def modulo(a: Real, b: Real) -> Real:
    """Modulo with the sign of the divisor and a DomainError for zero."""
    if b == 0:
        raise DomainError("modulo by zero")
    return a % b


def power(base: Real, exponent: Real) -> Real:
    """Raise *base* to *exponent*, guarding against undefined or huge results."""
    if isinstance(base, int) and isinstance(exponent, int):
        if abs(base) > 1 and abs(base).bit_length() * abs(exponent) > MAX_RESULT_BITS:
            raise DomainError("result too large")
        if exponent < 0:
            if base == 0:
                raise DomainError("zero cannot be raised to a negative power")
            return true_divide(1, base ** -exponent)
        return base ** exponent
    if base == 0 and exponent < 0:
        raise DomainError("zero cannot be raised to a negative power")
    if base < 0 and not float(exponent).is_integer():
        raise DomainError("fractional power of a negative number")
    try:
        return math.pow(base, exponent)
    except OverflowError:
        raise DomainError("numeric overflow") from None


def factorial(n: Real) -> int:
    """Return n! for a non-negative integer n."""
    value = require_int(n, "factorial")
    if value < 0:
        raise DomainError("factorial of a negative number")
    if value > MAX_FACTORIAL:
        raise DomainError(f"factorial argument larger than {MAX_FACTORIAL}")
    result = 1
    for k in range(2, value + 1):
        result *= k
    return result


def round_half_away(x: Real, ndigits: Real = 0) -> Real:
    """Round to *ndigits* decimals, sending halves away from zero.

    Rounding works on the shortest decimal representation of *x*, so
    ``round_half_away(2.675, 2)`` gives ``2.68``.  The result is an int when
    *ndigits* is zero or negative.
    """
    places = require_int(ndigits, "round")
    if abs(places) > 300:
        raise DomainError("round() digit count out of range")
    if isinstance(x, int) and places >= 0:
        return x
    quantum = Decimal(1).scaleb(-places)
    rounded = Decimal(repr(x)).quantize(quantum, rounding=ROUND_HALF_UP,
                                        context=_ROUNDING_CONTEXT)
    if places <= 0:
        return int(rounded)
    return float(rounded)


def _sqrt(x: Real) -> Real:
    if x < 0:
        raise DomainError("sqrt() of a negative number")
    if isinstance(x, int):
        root = math.isqrt(x)
        if root * root == x:
            return root
    return math.sqrt(x)


def _ln(x: Real) -> float:
    if x <= 0:
        raise DomainError("ln() requires a positive argument")
    return math.log(x)


def _log(x: Real, base: Real = 10) -> float:
    if x <= 0:
        raise DomainError("log() requires a positive argument")
    if base <= 0 or base == 1:
        raise DomainError("log() base must be positive and not 1")
    if base == 10:
        return math.log10(x)
    if base == 2:
        return math.log2(x)
    return math.log(x) / math.log(base)


def _sign(x: Real) -> int:
    return (x > 0) - (x < 0)


def _clamp(x: Real, low: Real, high: Real) -> Real:
    if low > high:
        raise DomainError("clamp() lower bound exceeds upper bound")
    return min(max(x, low), high)


def _gcd(*args: Real) -> int:
    return math.gcd(*(require_int(a, "gcd") for a in args))


def _lcm(*args: Real) -> int:
    return math.lcm(*(require_int(a, "lcm") for a in args))


def _mean(*args: Real) -> Real:
    return true_divide(sum(args), len(args))


def _median(*args: Real) -> Real:
    ordered = sorted(args)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return true_divide(ordered[middle - 1] + ordered[middle], 2)


@dataclass(frozen=True)
class Function:
    """A callable entry in a function table."""

    name: str
    impl: Callable[..., Real]
    min_args: int
    max_args: int | None
    doc: str = ""
    builtin: bool = True

    def accepts(self, count: int) -> bool:
        """Return True when the function can be called with *count* arguments."""
        if count < self.min_args:
            return False
        return self.max_args is None or count <= self.max_args

    def arity_text(self) -> str:
        """Describe the accepted argument count, e.g. ``"1 to 2 arguments"``."""
        def plural(n: int) -> str:
            return f"{n} argument" + ("" if n == 1 else "s")

        if self.max_args is None:
            return "at least " + plural(self.min_args)
        if self.min_args == self.max_args:
            return plural(self.min_args)
        return f"{self.min_args} to {self.max_args} arguments"


def edit_distance(a: str, b: str) -> int:
    """Return the Levenshtein distance between two strings."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def closest_name(name: str, candidates: Iterable[str], max_distance: int = 2) -> str | None:
    """Return the candidate closest to *name*, or None if none is close enough."""
    best: tuple[int, str] | None = None
    for candidate in sorted(set(candidates)):
        distance = edit_distance(name, candidate)
        if distance <= max_distance and (best is None or distance < best[0]):
            best = (distance, candidate)
    return best[1] if best else None


class FunctionTable:
    """A mutable registry mapping names to :class:`Function` entries."""

    def __init__(self, functions: Iterable[Function] = ()) -> None:
        self._functions: dict[str, Function] = {f.name: f for f in functions}

    def register(self, name: str, impl: Callable[..., Real], min_args: int,
                 max_args: int | None = -1, doc: str = "", builtin: bool = False) -> Function:
        """Add or replace a function; *max_args* defaults to *min_args*."""
        existing = self._functions.get(name)
        if existing is not None and existing.builtin and not builtin:
            raise DomainError(f"cannot redefine built-in function '{name}'")
        if max_args == -1:
            max_args = min_args
        function = Function(name, impl, min_args, max_args, doc, builtin)
        self._functions[name] = function
        return function

    def __contains__(self, name: object) -> bool:
        return name in self._functions

    def names(self) -> list[str]:
        """Return the registered names in alphabetical order."""
        return sorted(self._functions)

    def user_functions(self) -> list[Function]:
        """Return the functions that were not registered as built-ins."""
        return [self._functions[n] for n in self.names() if not self._functions[n].builtin]

    def copy(self) -> FunctionTable:
        return FunctionTable(self._functions.values())

    def lookup(self, name: str, position: int | None = None) -> Function:
        """Return the function called *name* or raise UnknownFunctionError."""
        function = self._functions.get(name)
        if function is None:
            raise UnknownFunctionError(name, position, closest_name(name, self._functions))
        return function

    def call(self, name: str, args: list[Real], position: int | None = None) -> Real:
        """Call *name* with already evaluated arguments."""
        function = self.lookup(name, position)
        if not function.accepts(len(args)):
            raise ArityError(name, function.arity_text(), len(args), position)
        try:
            result = function.impl(*args)
        except DomainError as exc:
            if exc.position is None:
                raise DomainError(exc.message, position) from None
            raise
        except OverflowError:
            raise DomainError(f"numeric overflow in {name}()", position) from None
        except (ValueError, ZeroDivisionError):
            raise DomainError(f"invalid argument to {name}()", position) from None
        return check_finite(result, position)


_BUILTINS: tuple[tuple[str, Callable[..., Real], int, int | None, str], ...] = (
    ("abs", abs, 1, 1, "absolute value"),
    ("min", min, 1, None, "smallest argument"),
    ("max", max, 1, None, "largest argument"),
    ("sum", lambda *a: sum(a), 1, None, "sum of the arguments"),
    ("mean", _mean, 1, None, "arithmetic mean"),
    ("median", _median, 1, None, "median of the arguments"),
    ("round", round_half_away, 1, 2, "round half away from zero"),
    ("floor", math.floor, 1, 1, "largest integer not above x"),
    ("ceil", math.ceil, 1, 1, "smallest integer not below x"),
    ("trunc", math.trunc, 1, 1, "integer part of x"),
    ("sign", _sign, 1, 1, "-1, 0 or 1"),
    ("clamp", _clamp, 3, 3, "limit x to [low, high]"),
    ("sqrt", _sqrt, 1, 1, "square root"),
    ("exp", math.exp, 1, 1, "e raised to x"),
    ("ln", _ln, 1, 1, "natural logarithm"),
    ("log", _log, 1, 2, "logarithm, base 10 by default"),
    ("sin", math.sin, 1, 1, "sine"),
    ("cos", math.cos, 1, 1, "cosine"),
    ("tan", math.tan, 1, 1, "tangent"),
    ("hypot", math.hypot, 1, None, "Euclidean norm"),
    ("gcd", _gcd, 1, None, "greatest common divisor"),
    ("lcm", _lcm, 1, None, "least common multiple"),
    ("pow", power, 2, 2, "x raised to y"),
    ("fact", factorial, 1, 1, "factorial"),
)


def default_functions() -> FunctionTable:
    """Return a fresh table containing all built-in functions."""
    table = FunctionTable()
    for name, impl, low, high, doc in _BUILTINS:
        table.register(name, impl, low, high, doc, builtin=True)
    return table
