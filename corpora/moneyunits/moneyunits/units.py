"""Physical dimensions, units, a unit registry and a unit-expression parser.

Every unit is described by a conversion to coherent SI base units
(metre, kilogram, second, kelvin)::

    base_value = (value + offset) * factor

``offset`` is non-zero only for affine scales such as degrees Celsius.
Factors are :class:`fractions.Fraction` objects, so conversions are exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Iterable, Optional

from .errors import DimensionError, ParseError, UnitError, UnknownUnitError
from .numeric import to_fraction

_BASE_SYMBOLS = ("kg", "m", "s", "K")
_DIMENSION_LETTERS = ("L", "M", "T", "Θ")


@dataclass(frozen=True)
class Dimension:
    """Exponents of length, mass, time and temperature."""

    length: int = 0
    mass: int = 0
    time: int = 0
    temperature: int = 0

    @property
    def vector(self) -> tuple[int, int, int, int]:
        return (self.length, self.mass, self.time, self.temperature)

    def __mul__(self, other: "Dimension") -> "Dimension":
        return Dimension(*(a + b for a, b in zip(self.vector, other.vector)))

    def __truediv__(self, other: "Dimension") -> "Dimension":
        return Dimension(*(a - b for a, b in zip(self.vector, other.vector)))

    def __pow__(self, exponent: int) -> "Dimension":
        return Dimension(*(a * exponent for a in self.vector))

    @property
    def is_dimensionless(self) -> bool:
        return not any(self.vector)

    @property
    def name(self) -> str:
        """A familiar name such as ``speed``, or the formula."""
        return KNOWN_DIMENSIONS.get(self.vector, str(self))

    def __str__(self) -> str:
        parts = []
        for letter, exponent in zip(_DIMENSION_LETTERS, self.vector):
            if exponent == 1:
                parts.append(letter)
            elif exponent:
                parts.append(f"{letter}^{exponent}")
        return "·".join(parts) or "1"


KNOWN_DIMENSIONS = {
    (0, 0, 0, 0): "dimensionless",
    (1, 0, 0, 0): "length",
    (0, 1, 0, 0): "mass",
    (0, 0, 1, 0): "time",
    (0, 0, 0, 1): "temperature",
    (2, 0, 0, 0): "area",
    (3, 0, 0, 0): "volume",
    (1, 0, -1, 0): "speed",
    (1, 0, -2, 0): "acceleration",
    (1, 1, -2, 0): "force",
    (2, 1, -2, 0): "energy",
    (2, 1, -3, 0): "power",
    (-3, 1, 0, 0): "density",
    (-1, 1, -2, 0): "pressure",
    (0, 0, -1, 0): "frequency",
}

LENGTH = Dimension(length=1)
MASS = Dimension(mass=1)
TIME = Dimension(time=1)
TEMPERATURE = Dimension(temperature=1)
DIMENSIONLESS = Dimension()


def _needs_group(symbol: str, operators: str = "*/^") -> bool:
    return any(ch in symbol for ch in operators)


@dataclass(frozen=True)
class Unit:
    """A unit of measurement."""

    symbol: str
    factor: Fraction
    dimension: Dimension
    offset: Fraction = Fraction(0)
    name: str = ""

    def __str__(self) -> str:
        return self.symbol

    @property
    def is_affine(self) -> bool:
        return self.offset != 0

    def _require_linear(self, action: str) -> None:
        if self.is_affine:
            raise UnitError(f"cannot {action} the affine unit {self.symbol}; "
                            f"use its delta() instead")

    def __mul__(self, other: "Unit") -> "Unit":
        if not isinstance(other, Unit):
            return NotImplemented
        self._require_linear("combine")
        other._require_linear("combine")
        return Unit(f"{self.symbol}*{other.symbol}", self.factor * other.factor,
                    self.dimension * other.dimension)

    def __truediv__(self, other: "Unit") -> "Unit":
        if not isinstance(other, Unit):
            return NotImplemented
        self._require_linear("combine")
        other._require_linear("combine")
        right = f"({other.symbol})" if _needs_group(other.symbol, "*/") else other.symbol
        return Unit(f"{self.symbol}/{right}", self.factor / other.factor,
                    self.dimension / other.dimension)

    def __pow__(self, exponent: int) -> "Unit":
        if not isinstance(exponent, int) or isinstance(exponent, bool):
            return NotImplemented
        self._require_linear("raise")
        if exponent == 1:
            return self
        base = f"({self.symbol})" if _needs_group(self.symbol) else self.symbol
        return Unit(f"{base}^{exponent}", self.factor ** exponent,
                    self.dimension ** exponent)

    def delta(self) -> "Unit":
        """The linear unit for differences on this scale (e.g. ``Δ°C``)."""
        if not self.is_affine:
            return self
        return Unit("Δ" + self.symbol, self.factor, self.dimension,
                    Fraction(0), f"{self.name} difference".strip())

    def to_base(self, value) -> Fraction:
        """Convert a value in this unit to coherent SI base units."""
        return (to_fraction(value) + self.offset) * self.factor

    def from_base(self, value) -> Fraction:
        """Convert a value in SI base units to this unit."""
        return to_fraction(value) / self.factor - self.offset

    def is_compatible(self, other: "Unit") -> bool:
        return self.dimension == other.dimension

    def equivalent(self, other: "Unit") -> bool:
        """Same dimension and scale, whatever the spelling of the symbol."""
        return (self.dimension == other.dimension and self.factor == other.factor
                and self.offset == other.offset)

    def convert(self, value, other: "Unit") -> Fraction:
        """Convert ``value`` from this unit to ``other``."""
        if not self.is_compatible(other):
            raise DimensionError(
                f"cannot convert {self.symbol} ({self.dimension.name}) "
                f"to {other.symbol} ({other.dimension.name})")
        return other.from_base(self.to_base(value))


def base_unit(dimension: Dimension) -> Unit:
    """The coherent SI unit for ``dimension``, e.g. ``kg*m/s^2`` for force."""
    numerator, denominator = [], []
    exponents = (dimension.mass, dimension.length, dimension.time, dimension.temperature)
    for symbol, exponent in zip(_BASE_SYMBOLS, exponents):
        if exponent > 0:
            numerator.append(symbol if exponent == 1 else f"{symbol}^{exponent}")
        elif exponent < 0:
            denominator.append(symbol if exponent == -1 else f"{symbol}^{-exponent}")
    text = "*".join(numerator) or "1"
    if denominator:
        below = "*".join(denominator)
        text += "/" + (f"({below})" if len(denominator) > 1 else below)
    return Unit(text, Fraction(1), dimension)


PREFIXES = {
    "G": Fraction(10) ** 9,
    "M": Fraction(10) ** 6,
    "k": Fraction(1000),
    "h": Fraction(100),
    "c": Fraction(1, 100),
    "m": Fraction(1, 1000),
    "µ": Fraction(1, 10 ** 6),
    "u": Fraction(1, 10 ** 6),
    "n": Fraction(1, 10 ** 9),
}
_PREFIX_NAMES = {"G": "giga", "M": "mega", "k": "kilo", "h": "hecto", "c": "centi",
                 "m": "milli", "µ": "micro", "u": "micro", "n": "nano"}


class UnitRegistry:
    """Named units, SI prefixes and parsing of unit expressions."""

    def __init__(self) -> None:
        self._units: dict[str, Unit] = {}
        self._prefixable: set[str] = set()

    def define(self, symbol: str, factor, dimension: Dimension, *,
               aliases: Iterable[str] = (), offset=0, name: str = "",
               prefixable: bool = False) -> Unit:
        """Register a unit under ``symbol`` and any ``aliases``."""
        unit = Unit(symbol, to_fraction(factor), dimension, to_fraction(offset), name)
        if unit.factor <= 0:
            raise UnitError(f"unit factor must be positive for {symbol!r}")
        for spelling in (symbol, *aliases):
            if spelling in self._units:
                raise UnitError(f"unit {spelling!r} is already defined")
            self._units[spelling] = unit
        if prefixable:
            if unit.is_affine:
                raise UnitError("affine units cannot take prefixes")
            self._prefixable.add(symbol)
        return unit

    def derive(self, symbol: str, expression: str, *, aliases: Iterable[str] = (),
               name: str = "", prefixable: bool = False) -> Unit:
        """Register ``symbol`` as equal to a unit expression such as ``kg*m/s^2``."""
        template = self.parse(expression)
        return self.define(symbol, template.factor, template.dimension,
                           aliases=aliases, name=name, prefixable=prefixable)

    def __contains__(self, symbol: str) -> bool:
        try:
            self.get(symbol)
        except UnknownUnitError:
            return False
        return True

    def symbols(self) -> list[str]:
        """All directly registered spellings, sorted."""
        return sorted(self._units)

    def get(self, symbol: str) -> Unit:
        """Look up a unit, trying SI prefixes when there is no direct match."""
        unit = self._units.get(symbol)
        if unit is not None:
            return unit
        prefix, rest = symbol[:1], symbol[1:]
        if prefix in PREFIXES and rest in self._units:
            base = self._units[rest]
            if base.symbol in self._prefixable:
                canonical = "µ" if prefix == "u" else prefix
                return Unit(canonical + base.symbol, PREFIXES[prefix] * base.factor,
                            base.dimension, Fraction(0),
                            _PREFIX_NAMES[prefix] + base.name)
        raise UnknownUnitError(f"unknown unit {symbol!r}")

    def parse(self, text: str) -> Unit:
        """Parse a unit expression such as ``km/h``, ``kg*m/s^2`` or ``m²``."""
        return _UnitParser(text, self).parse()


_SUPERSCRIPTS = {"²": 2, "³": 3}
_NAME_CHARS = "°µΔ_'\""
_DIGITS = "0123456789"


def _tokenize(text: str) -> list[tuple[str, object, int]]:
    tokens: list[tuple[str, object, int]] = []
    index = 0
    while index < len(text):
        ch = text[index]
        if ch.isspace():
            index += 1
        elif ch.isalpha() or ch in _NAME_CHARS:
            start = index
            while index < len(text) and (text[index].isalpha() or text[index] in _NAME_CHARS):
                index += 1
            tokens.append(("name", text[start:index], start))
            if index < len(text) and text[index] in _DIGITS:
                digits_start = index
                while index < len(text) and text[index] in _DIGITS:
                    index += 1
                tokens.append(("power", int(text[digits_start:index]), digits_start))
        elif ch in _SUPERSCRIPTS:
            tokens.append(("power", _SUPERSCRIPTS[ch], index))
            index += 1
        elif ch == "^":
            start = index
            index += 1
            while index < len(text) and text[index].isspace():
                index += 1
            digits_start = index
            if index < len(text) and text[index] in "+-":
                index += 1
            while index < len(text) and text[index] in _DIGITS:
                index += 1
            digits = text[digits_start:index]
            if not digits.lstrip("+-"):
                raise ParseError(f"expected an integer exponent at position {start} in {text!r}")
            tokens.append(("power", int(digits), start))
        elif ch in _DIGITS:
            start = index
            while index < len(text) and text[index] in _DIGITS:
                index += 1
            tokens.append(("number", int(text[start:index]), start))
        elif ch in "*·/()":
            tokens.append(("op", "*" if ch == "·" else ch, index))
            index += 1
        else:
            raise ParseError(f"unexpected character {ch!r} at position {index} in {text!r}")
    return tokens


class _UnitParser:
    """Recursive-descent parser: ``expr := term (('*' | '/' | ' ') term)*``."""

    def __init__(self, text: str, registry: UnitRegistry) -> None:
        self.text = text
        self.registry = registry
        self.tokens = _tokenize(text)
        self.index = 0

    def _peek(self) -> Optional[tuple[str, object, int]]:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _fail(self, message: str):
        raise ParseError(f"{message} in unit {self.text!r}")

    def parse(self) -> Unit:
        if not self.tokens:
            self._fail("empty expression")
        unit = self._expression()
        token = self._peek()
        if token is not None:
            self._fail(f"unexpected {token[1]!r} at position {token[2]}")
        return unit

    def _expression(self) -> Unit:
        unit = self._term()
        while True:
            token = self._peek()
            if token is None or (token[0] == "op" and token[1] == ")"):
                return unit
            if token[0] == "op" and token[1] in "*/":
                self.index += 1
                right = self._term()
                unit = unit * right if token[1] == "*" else unit / right
            elif token[0] in ("name", "number") or token[1] == "(":
                unit = unit * self._term()
            else:
                self._fail(f"unexpected {token[1]!r} at position {token[2]}")

    def _term(self) -> Unit:
        unit = self._atom()
        token = self._peek()
        if token is not None and token[0] == "power":
            self.index += 1
            unit = unit ** token[1]
        return unit

    def _atom(self) -> Unit:
        token = self._peek()
        if token is None:
            self._fail("unexpected end")
        kind, value, position = token
        self.index += 1
        if kind == "name":
            return self.registry.get(value)
        if kind == "number":
            if value != 1:
                self._fail(f"unexpected number {value} at position {position}")
            return Unit("1", Fraction(1), DIMENSIONLESS)
        if value == "(":
            inner = self._expression()
            closing = self._peek()
            if closing is None or closing[1] != ")":
                self._fail("missing ')'")
            self.index += 1
            return inner
        self._fail(f"unexpected {value!r} at position {position}")


def _build_default() -> UnitRegistry:
    reg = UnitRegistry()
    reg.define("m", 1, LENGTH, aliases=("metre", "meter"), name="metre", prefixable=True)
    reg.define("in", "0.0254", LENGTH, aliases=("inch", '"'), name="inch")
    reg.define("ft", "0.3048", LENGTH, aliases=("foot", "feet", "'"), name="foot")
    reg.define("yd", "0.9144", LENGTH, aliases=("yard",), name="yard")
    reg.define("mi", "1609.344", LENGTH, aliases=("mile",), name="mile")
    reg.define("nmi", 1852, LENGTH, name="nautical mile")
    reg.define("g", Fraction(1, 1000), MASS, aliases=("gram",), name="gram", prefixable=True)
    reg.define("t", 1000, MASS, aliases=("tonne",), name="tonne")
    reg.define("lb", "0.45359237", MASS, aliases=("lbs", "pound"), name="pound")
    reg.define("oz", Fraction("0.45359237") / 16, MASS, aliases=("ounce",), name="ounce")
    reg.define("s", 1, TIME, aliases=("sec", "second"), name="second", prefixable=True)
    reg.define("min", 60, TIME, aliases=("minute",), name="minute")
    reg.define("h", 3600, TIME, aliases=("hr", "hour"), name="hour")
    reg.define("d", 86400, TIME, aliases=("day",), name="day")
    reg.define("K", 1, TEMPERATURE, aliases=("kelvin",), name="kelvin")
    reg.define("°C", 1, TEMPERATURE, aliases=("degC", "celsius"), offset="273.15",
               name="degree Celsius")
    reg.define("°F", Fraction(5, 9), TEMPERATURE, aliases=("degF", "fahrenheit"),
               offset="459.67", name="degree Fahrenheit")
    reg.define("°R", Fraction(5, 9), TEMPERATURE, aliases=("degR", "rankine"),
               name="degree Rankine")
    reg.define("L", Fraction(1, 1000), LENGTH ** 3, aliases=("l", "litre", "liter"),
               name="litre", prefixable=True)
    reg.define("gal", "0.003785411784", LENGTH ** 3, aliases=("gallon",), name="US gallon")
    reg.define("ha", 10000, LENGTH ** 2, aliases=("hectare",), name="hectare")
    reg.derive("N", "kg*m/s^2", name="newton", prefixable=True)
    reg.derive("J", "N*m", name="joule", prefixable=True)
    reg.derive("W", "J/s", name="watt", prefixable=True)
    reg.derive("Wh", "W*h", name="watt hour", prefixable=True)
    reg.derive("Pa", "N/m^2", name="pascal", prefixable=True)
    reg.define("bar", 100000, Dimension(-1, 1, -2, 0), name="bar")
    reg.derive("Hz", "1/s", name="hertz", prefixable=True)
    reg.define("cal", "4.184", Dimension(2, 1, -2, 0), name="calorie", prefixable=True)
    reg.derive("kn", "nmi/h", aliases=("knot",), name="knot")
    reg.derive("mph", "mi/h", name="mile per hour")
    return reg


DEFAULT_REGISTRY = _build_default()


def parse_unit(text: str, registry: Optional[UnitRegistry] = None) -> Unit:
    """Parse a unit expression with the default (or given) registry."""
    return (registry or DEFAULT_REGISTRY).parse(text)
