from decimal import ROUND_DOWN, Decimal

import pytest

from moneyunits import (CurrencyMismatchError, Money, RateNotFoundError, RateTable,
                        UnitPrice, UnknownCurrencyError, format_money, parse_quantity)


@pytest.fixture
def table():
    return RateTable.from_quotes("USD", {"EUR": "0.9", "JPY": "150", "GBP": "0.8"})


def test_direct_and_inverse_rates(table):
    assert table.rate("USD", "EUR") == Decimal("0.9")
    assert table.rate("EUR", "USD") == Decimal("1.11111111111")
    assert table.rate("GBP", "USD") == Decimal("1.25")
    assert table.rate("JPY", "JPY") == Decimal(1)


def test_cross_rate_goes_through_pivot(table):
    assert table.path("EUR", "JPY") == ["EUR", "USD", "JPY"]
    assert table.rate("EUR", "JPY") == Decimal("166.666666667")
    assert table.rate("GBP", "EUR") == Decimal("1.125")


def test_convert_rounds_to_target_minor_units(table):
    assert table.convert(Money("10", "EUR"), "JPY") == Money("1667", "JPY")
    assert table.convert(Money("1", "JPY"), "USD") == Money("0.01", "USD")
    assert table.convert(Money("19.99", "USD"), "EUR", rounding=ROUND_DOWN) == Money("17.99", "EUR")
    same = Money("5", "USD")
    assert table.convert(same, "USD") is same


def test_missing_rate_raises():
    table = RateTable()
    table.set_rate("USD", "EUR", "0.9")
    table.set_rate("GBP", "CHF", "1.1")
    with pytest.raises(RateNotFoundError, match="no exchange rate from USD to CHF"):
        table.rate("USD", "CHF")
    assert table.currencies() == ["CHF", "EUR", "GBP", "USD"]


def test_setting_a_rate_replaces_its_inverse():
    table = RateTable()
    table.set_rate("EUR", "USD", "1.10")
    table.set_rate("USD", "EUR", "0.8")
    assert table.rate("EUR", "USD") == Decimal("1.25")


def test_invalid_rates_rejected():
    table = RateTable()
    with pytest.raises(ValueError, match="rate must be positive"):
        table.set_rate("USD", "EUR", "-1")
    with pytest.raises(ValueError, match="against itself"):
        table.set_rate("USD", "usd", "1")
    with pytest.raises(UnknownCurrencyError):
        table.set_rate("USD", "ZZZ", "2")


def test_total_rounds_once(table):
    amounts = [Money("0.01", "USD"), Money("1", "JPY"), Money("1", "JPY")]
    assert table.total(amounts, "USD") == Money("0.02", "USD")
    assert sum((table.convert(m, "USD") for m in amounts), Money(0, "USD")) == Money("0.03", "USD")


def test_spread(table):
    assert table.spread("USD", "EUR", "1") == (Decimal("0.891"), Decimal("0.909"))


def test_precision_controls_derived_rates():
    table = RateTable.from_quotes("USD", {"EUR": "0.9"}, precision=4)
    assert table.rate("EUR", "USD") == Decimal("1.111")
    with pytest.raises(ValueError):
        RateTable(precision=0)


def test_unit_price_in_other_currency(table):
    diesel = UnitPrice("1.80", "EUR", "L")
    in_usd = diesel.convert(table, "USD")
    assert in_usd.price == Money("2.00", "USD")
    assert in_usd.cost(parse_quantity("10 gal")) == Money("75.71", "USD")
    assert format_money(diesel.cost(parse_quantity("45.5 L"))) == "€81.90"


def test_unit_price_budget_checks_currency():
    price = UnitPrice("2.50", "USD", "kg")
    assert price.quantity_for(Money("10", "USD")) == parse_quantity("4 kg")
    with pytest.raises(ValueError, match="budget is in EUR, price in USD"):
        price.quantity_for(Money("10", "EUR"))
    with pytest.raises(CurrencyMismatchError):
        price.price + Money(1, "EUR")
