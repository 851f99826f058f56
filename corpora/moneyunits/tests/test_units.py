from decimal import Decimal
from fractions import Fraction

import pytest

from moneyunits import (DimensionError, ParseError, Quantity, UnitError, UnitRegistry,
                        UnknownUnitError, base_unit, parse_quantity, parse_unit)
from moneyunits.units import LENGTH, TIME, Dimension


@pytest.mark.parametrize(
    "text, symbol, factor",
    [
        ("km/h", "km/h", Fraction(5, 18)),
        ("kg*m/s^2", "kg*m/s^2", Fraction(1)),
        ("J/(kg*K)", "J/(kg*K)", Fraction(1)),
        ("m²", "m^2", Fraction(1)),
        ("kW h", "kW*h", Fraction(3600000)),
        ("um", "µm", Fraction(1, 10 ** 6)),
        ("(m/s)^2", "(m/s)^2", Fraction(1)),
    ],
)
def test_parse_unit_expressions(text, symbol, factor):
    unit = parse_unit(text)
    assert (unit.symbol, unit.factor) == (symbol, factor)


def test_dimension_names_and_formula():
    assert parse_unit("N").dimension.name == "force"
    assert parse_unit("mph").dimension.name == "speed"
    assert str(parse_unit("J/(kg*K)").dimension) == "L^2·T^-2·Θ^-1"
    assert str(Dimension()) == "1"
    assert LENGTH / TIME == parse_unit("m/s").dimension


def test_base_unit_symbol():
    assert base_unit(parse_unit("kWh").dimension).symbol == "kg*m^2/s^2"
    assert base_unit(parse_unit("J/(kg*K)").dimension).symbol == "m^2/(s^2*K)"
    assert base_unit(parse_unit("Hz").dimension).symbol == "1/s"


def test_unit_parse_errors():
    with pytest.raises(UnknownUnitError, match="unknown unit 'furlong'"):
        parse_unit("furlong/s")
    with pytest.raises(ParseError, match="missing '\\)'"):
        parse_unit("m/(s*s")
    with pytest.raises(ParseError, match="unexpected character '%'"):
        parse_unit("m%")
    with pytest.raises(ParseError, match="empty expression"):
        parse_unit("   ")


def test_affine_units_cannot_be_combined():
    with pytest.raises(UnitError, match="cannot combine the affine unit °C"):
        parse_unit("W/°C")
    assert (parse_unit("W") / parse_unit("°C").delta()).symbol == "W/Δ°C"


def test_custom_registry_with_prefixes():
    registry = UnitRegistry()
    registry.define("m", 1, LENGTH, prefixable=True)
    registry.define("s", 1, TIME)
    registry.define("furlong", "201.168", LENGTH, aliases=("fur",))
    registry.derive("fps", "fur/s")
    assert registry.parse("km/s").factor == 1000
    assert Quantity(5, registry.parse("fps")).to(registry.parse("m/s")).value == Fraction("1005.84")
    assert "ks" not in registry
    assert registry.symbols() == ["fps", "fur", "furlong", "m", "s"]
    with pytest.raises(UnitError, match="already defined"):
        registry.define("s", 1, TIME)


class TestQuantityConversion:
    def test_speed_conversion(self):
        speed = parse_quantity("12.5 km/h")
        assert speed.to("m/s").value == Fraction(125, 36)
        assert speed.to("mph").magnitude(3) == Decimal("7.767")
        assert str(parse_quantity("36 km/h").to("m/s")) == "10 m/s"

    def test_temperature_offsets(self):
        assert parse_quantity("212 °F").to("°C").value == 100
        assert parse_quantity("-40 degF").to("degC").value == -40
        assert parse_quantity("0 K").to("°C").magnitude() == Decimal("-273.15")
        assert parse_quantity("25 °C").to("K").value == Fraction("298.15")

    def test_imperial_lengths_are_exact(self):
        assert parse_quantity("1 mi").to("ft").value == 5280
        assert parse_quantity("3 ft") == parse_quantity("36 in")
        assert parse_quantity("1 lb").to("oz").value == 16

    def test_incompatible_conversion(self):
        with pytest.raises(DimensionError) as info:
            parse_quantity("5 kg").to("m")
        assert str(info.value) == "cannot convert kg (mass) to m (length)"


class TestQuantityArithmetic:
    def test_add_in_left_unit(self):
        total = parse_quantity("1 km") + parse_quantity("250 m")
        assert (total.value, total.unit.symbol) == (Fraction(5, 4), "km")

    def test_temperature_differences(self):
        diff = parse_quantity("20 °C") - parse_quantity("68 °F")
        assert (diff.value, diff.unit.symbol) == (0, "Δ°C")
        warmer = parse_quantity("20 °C") + parse_quantity("9 °R")
        assert str(warmer) == "25 °C"
        with pytest.raises(UnitError, match="cannot add an absolute temperature"):
            parse_quantity("20 °C") + parse_quantity("5 °C")
        with pytest.raises(UnitError, match="cannot scale"):
            parse_quantity("20 °C") * 2

    def test_multiply_and_divide_make_compound_units(self):
        speed = parse_quantity("100 km") / parse_quantity("2 h")
        assert str(speed) == "50 km/h"
        energy = parse_quantity("2 kW") * parse_quantity("3 h")
        assert energy.to("kWh").value == 6
        assert str(energy.to_base()) == "21600000 kg*m^2/s^2"
        assert str(1 / parse_quantity("4 s")) == "0.25 1/s"

    def test_comparisons(self):
        assert parse_quantity("1 mi") > parse_quantity("1.5 km")
        assert parse_quantity("0 °C") < parse_quantity("33 °F")
        assert sorted([parse_quantity("1 ft"), parse_quantity("20 cm"), parse_quantity("0.1 m")]) == [
            parse_quantity("10 cm"), parse_quantity("20 cm"), parse_quantity("12 in")]
        with pytest.raises(DimensionError):
            parse_quantity("1 m") < parse_quantity("1 s")
        assert parse_quantity("1 m") != parse_quantity("1 s")


@pytest.mark.parametrize(
    "text, value, symbol",
    [
        ("12.5 km/h", Fraction(25, 2), "km/h"),
        ("-3 °C", Fraction(-3), "°C"),
        ("1e3m", Fraction(1000), "m"),
        (".5 kg*m/s^2", Fraction(1, 2), "kg*m/s^2"),
        ("1_000 L", Fraction(1000), "L"),
        ("−2 ft", Fraction(-2), "ft"),
    ],
)
def test_parse_quantity(text, value, symbol):
    quantity = parse_quantity(text)
    assert (quantity.value, quantity.unit.symbol) == (value, symbol)


def test_parse_quantity_errors():
    with pytest.raises(ParseError, match="missing unit"):
        parse_quantity("12.5")
    with pytest.raises(ParseError, match="expected a number"):
        parse_quantity("km/h")
    with pytest.raises(ParseError, match="unit may not start with '/'"):
        parse_quantity("3 /s")


def test_quantity_is_immutable_and_hashable():
    quantity = Quantity("1.5", "m")
    with pytest.raises(AttributeError):
        quantity.value = 2
    assert len({quantity, parse_quantity("150 cm"), parse_quantity("1.5 s")}) == 2
    assert repr(quantity) == "Quantity('1.5', 'm')"
