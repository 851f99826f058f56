"""Quantities: exact numbers attached to units, plus a text parser."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Optional, Union

from .errors import DimensionError, ParseError, UnitError
from .numeric import fraction_to_decimal, fraction_to_str, round_fraction, to_fraction
from .units import (DEFAULT_REGISTRY, DIMENSIONLESS, Unit, UnitRegistry,
                    base_unit)

UnitLike = Union[str, Unit]

_NUMBER = re.compile(
    r"\s*(?P<number>[+\-−]?(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(?P<unit>.*?)\s*\Z",
    re.S)

_ONE = Unit("1", Fraction(1), DIMENSIONLESS)


def _as_unit(unit: UnitLike, registry: Optional[UnitRegistry] = None) -> Unit:
    if isinstance(unit, Unit):
        return unit
    if isinstance(unit, str):
        return (registry or DEFAULT_REGISTRY).parse(unit)
    raise TypeError(f"expected a unit or unit expression, got {type(unit).__name__}")


class Quantity:
    """An exact magnitude with a unit, e.g. ``Quantity('12.5', 'km/h')``."""

    __slots__ = ("_value", "_unit")

    def __init__(self, value, unit: UnitLike) -> None:
        object.__setattr__(self, "_value", to_fraction(value))
        object.__setattr__(self, "_unit", _as_unit(unit))

    def __setattr__(self, name, value):
        raise AttributeError("Quantity objects are immutable")

    @property
    def value(self) -> Fraction:
        return self._value

    @property
    def unit(self) -> Unit:
        return self._unit

    @property
    def dimension(self):
        return self._unit.dimension

    def magnitude(self, places: Optional[int] = None,
                  rounding: str = ROUND_HALF_EVEN) -> Decimal:
        """The value as a Decimal, rounded to ``places`` if given."""
        if places is None:
            return fraction_to_decimal(self._value)
        return round_fraction(self._value, places, rounding)

    def to(self, unit: UnitLike) -> "Quantity":
        """Convert to another unit of the same dimension."""
        target = _as_unit(unit)
        return Quantity(self._unit.convert(self._value, target), target)

    def to_base(self) -> "Quantity":
        """Convert to coherent SI base units (``m``, ``kg``, ``s``, ``K``)."""
        return self.to(base_unit(self.dimension))

    def base_value(self) -> Fraction:
        return self._unit.to_base(self._value)

    def __repr__(self) -> str:
        return f"Quantity('{fraction_to_str(self._value)}', '{self._unit.symbol}')"

    def __str__(self) -> str:
        return f"{fraction_to_str(self._value)} {self._unit.symbol}"

    def _coerce_other(self, other: "Quantity", action: str) -> Fraction:
        """Return ``other``'s value expressed in a unit linear with ``self``."""
        if not self._unit.is_compatible(other._unit):
            raise DimensionError(
                f"cannot {action} {other._unit.dimension.name} and {self._unit.dimension.name}")
        return other._unit.delta().convert(other._value, self._unit.delta())

    def __add__(self, other: "Quantity") -> "Quantity":
        if not isinstance(other, Quantity):
            return NotImplemented
        if other._unit.is_affine:
            raise UnitError("cannot add an absolute temperature; subtract or use a delta unit")
        return Quantity(self._value + self._coerce_other(other, "add"), self._unit)

    def __sub__(self, other: "Quantity") -> "Quantity":
        if not isinstance(other, Quantity):
            return NotImplemented
        if other._unit.is_affine:
            if not self._unit.is_compatible(other._unit):
                raise DimensionError("cannot subtract quantities of different dimensions")
            difference = self.base_value() - other.base_value()
            target = self._unit.delta()
            return Quantity(target.from_base(difference), target)
        return Quantity(self._value - self._coerce_other(other, "subtract"), self._unit)

    def __neg__(self) -> "Quantity":
        self._unit._require_linear("negate")
        return Quantity(-self._value, self._unit)

    def __abs__(self) -> "Quantity":
        self._unit._require_linear("take the absolute value of")
        return Quantity(abs(self._value), self._unit)

    def __mul__(self, other) -> "Quantity":
        if isinstance(other, Quantity):
            return Quantity(self._value * other._value, self._unit * other._unit)
        if isinstance(other, (int, Fraction, Decimal, float)) and not isinstance(other, bool):
            self._unit._require_linear("scale")
            return Quantity(self._value * to_fraction(other), self._unit)
        return NotImplemented

    __rmul__ = __mul__

    def __truediv__(self, other) -> "Quantity":
        if isinstance(other, Quantity):
            if other._value == 0:
                raise ZeroDivisionError("division by a zero quantity")
            return Quantity(self._value / other._value, self._unit / other._unit)
        if isinstance(other, (int, Fraction, Decimal, float)) and not isinstance(other, bool):
            self._unit._require_linear("scale")
            divisor = to_fraction(other)
            if divisor == 0:
                raise ZeroDivisionError("division of a quantity by zero")
            return Quantity(self._value / divisor, self._unit)
        return NotImplemented

    def __rtruediv__(self, other) -> "Quantity":
        if isinstance(other, (int, Fraction, Decimal, float)) and not isinstance(other, bool):
            if self._value == 0:
                raise ZeroDivisionError("division by a zero quantity")
            return Quantity(to_fraction(other) / self._value, _ONE / self._unit)
        return NotImplemented

    def __pow__(self, exponent: int) -> "Quantity":
        return Quantity(self._value ** exponent, self._unit ** exponent)

    def __eq__(self, other) -> bool:
        if not isinstance(other, Quantity):
            return NotImplemented
        return (self._unit.is_compatible(other._unit)
                and self.base_value() == other.base_value())

    def __hash__(self) -> int:
        return hash((self.dimension, self.base_value()))

    def _compare(self, other: "Quantity") -> int:
        if not isinstance(other, Quantity):
            raise TypeError(f"cannot compare Quantity with {type(other).__name__}")
        if not self._unit.is_compatible(other._unit):
            raise DimensionError(
                f"cannot compare {self.dimension.name} with {other.dimension.name}")
        mine, theirs = self.base_value(), other.base_value()
        return (mine > theirs) - (mine < theirs)

    def __lt__(self, other) -> bool:
        return self._compare(other) < 0

    def __le__(self, other) -> bool:
        return self._compare(other) <= 0

    def __gt__(self, other) -> bool:
        return self._compare(other) > 0

    def __ge__(self, other) -> bool:
        return self._compare(other) >= 0


def parse_quantity(text: str, registry: Optional[UnitRegistry] = None) -> Quantity:
    """Parse text such as ``"12.5 km/h"``, ``"-3 °C"`` or ``"1e3 kg*m/s^2"``."""
    if not isinstance(text, str):
        raise TypeError("parse_quantity expects a string")
    match = _NUMBER.match(text)
    if not match:
        raise ParseError(f"expected a number followed by a unit, got {text!r}")
    number = match.group("number").replace("−", "-")
    unit_text = match.group("unit")
    if not unit_text:
        raise ParseError(f"missing unit in {text!r}")
    if unit_text[0] in "*/^":
        raise ParseError(f"unit may not start with {unit_text[0]!r} in {text!r}")
    return Quantity(to_fraction(number), _as_unit(unit_text, registry))
