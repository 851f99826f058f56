"""Exact numeric helpers shared by the money and unit modules.

Money is kept as :class:`decimal.Decimal`; physical quantities are kept as
:class:`fractions.Fraction` so that unit conversions are exact.  This module
converts between the two and implements rounding without relying on the
thread-local decimal context.
"""

from __future__ import annotations

from decimal import (ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_DOWN,
                     ROUND_HALF_EVEN, ROUND_HALF_UP, ROUND_UP, Context,
                     Decimal, DivisionByZero, InvalidOperation, Overflow)
from fractions import Fraction

CONTEXT = Context(prec=34, rounding=ROUND_HALF_EVEN,
                  traps=[InvalidOperation, DivisionByZero, Overflow])

ROUNDING_MODES = frozenset({ROUND_HALF_EVEN, ROUND_HALF_UP, ROUND_HALF_DOWN,
                            ROUND_UP, ROUND_DOWN, ROUND_CEILING, ROUND_FLOOR})


def to_decimal(value) -> Decimal:
    """Convert ``int``, ``str``, ``Decimal`` or ``Fraction`` to a finite Decimal.

    Floats are refused because they rarely hold the amount the caller meant.
    """
    if isinstance(value, bool):
        raise TypeError("booleans are not amounts")
    if isinstance(value, float):
        raise TypeError("floats are inexact; pass a str or Decimal instead")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"invalid number {value!r}") from None
    elif isinstance(value, Fraction):
        return fraction_to_decimal(value)
    else:
        raise TypeError(f"cannot convert {type(value).__name__} to Decimal")
    if not result.is_finite():
        raise ValueError(f"number must be finite, got {value!r}")
    return result


def to_fraction(value) -> Fraction:
    """Convert a number or numeric string to an exact Fraction."""
    if isinstance(value, bool):
        raise TypeError("booleans are not numbers")
    if isinstance(value, Fraction):
        return value
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        return Fraction(repr(value))
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"number must be finite, got {value!r}")
        return Fraction(value)
    if isinstance(value, str):
        try:
            return Fraction(value.strip().replace("_", ""))
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"invalid number {value!r}") from None
    raise TypeError(f"cannot convert {type(value).__name__} to Fraction")


def _round_integer(numerator: int, denominator: int, mode: str) -> int:
    """Divide and round to an integer according to a decimal rounding mode."""
    if mode not in ROUNDING_MODES:
        raise ValueError(f"unsupported rounding mode {mode!r}")
    sign = -1 if (numerator < 0) != (denominator < 0) else 1
    quotient, remainder = divmod(abs(numerator), abs(denominator))
    if remainder == 0:
        return sign * quotient
    twice = 2 * remainder
    half = abs(denominator)
    if mode == ROUND_DOWN:
        bump = False
    elif mode == ROUND_UP:
        bump = True
    elif mode == ROUND_CEILING:
        bump = sign > 0
    elif mode == ROUND_FLOOR:
        bump = sign < 0
    elif twice != half:
        bump = twice > half
    elif mode == ROUND_HALF_UP:
        bump = True
    elif mode == ROUND_HALF_DOWN:
        bump = False
    else:
        bump = quotient % 2 == 1
    return sign * (quotient + 1 if bump else quotient)


def round_fraction(value: Fraction, places: int,
                   rounding: str = ROUND_HALF_EVEN) -> Decimal:
    """Round ``value`` to ``places`` decimal places, exactly."""
    value = to_fraction(value)
    scale = 10 ** places if places >= 0 else 1
    divisor = 1 if places >= 0 else 10 ** (-places)
    units = _round_integer(value.numerator * scale, value.denominator * divisor, rounding)
    return Decimal(units).scaleb(-places, CONTEXT)


def is_terminating(value: Fraction) -> bool:
    """Whether ``value`` has a finite decimal expansion."""
    denominator = to_fraction(value).denominator
    for prime in (2, 5):
        while denominator % prime == 0:
            denominator //= prime
    return denominator == 1


def fraction_to_decimal(value: Fraction, places=None,
                        rounding: str = ROUND_HALF_EVEN) -> Decimal:
    """Convert to Decimal; exact when possible, else rounded to ``places``.

    Without ``places`` a non-terminating fraction is rounded to the 34
    significant digits of :data:`CONTEXT`.
    """
    value = to_fraction(value)
    if places is not None:
        return round_fraction(value, places, rounding)
    if is_terminating(value):
        places = 0
        while (value * 10 ** places).denominator != 1:
            places += 1
        return round_fraction(value, places)
    return CONTEXT.divide(Decimal(value.numerator), Decimal(value.denominator))


def plain(value: Decimal) -> str:
    """Render a Decimal without exponent notation or trailing zeros."""
    text = format(value.normalize(CONTEXT), "f")
    return "0" if text in ("-0", "") else text


def fraction_to_str(value: Fraction, max_places: int = 10) -> str:
    """Short decimal text for a Fraction, rounding at ``max_places``."""
    value = to_fraction(value)
    if is_terminating(value):
        return plain(fraction_to_decimal(value))
    return plain(round_fraction(value, max_places))


def group_digits(digits: str, separator: str = ",", size: int = 3) -> str:
    """Insert ``separator`` every ``size`` digits from the right."""
    if not separator or len(digits) <= size:
        return digits
    head = len(digits) % size or size
    groups = [digits[:head]]
    groups.extend(digits[i:i + size] for i in range(head, len(digits), size))
    return separator.join(groups)


def format_decimal(value: Decimal, places=None, *, thousands: str = "",
                   decimal_point: str = ".", rounding: str = ROUND_HALF_EVEN) -> str:
    """Format a Decimal with fixed ``places`` and digit grouping."""
    if places is not None:
        value = round_fraction(Fraction(value), places, rounding)
    text = format(value, "f")
    negative = text.startswith("-")
    text = text.lstrip("-")
    whole, _, fraction = text.partition(".")
    body = group_digits(whole, thousands)
    if fraction:
        body += decimal_point + fraction
    if negative and any(ch not in "0.," for ch in text):
        body = "-" + body
    return body
