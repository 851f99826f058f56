import unittest
from decimal import Decimal

from moneyunits import (ACCOUNTING_STYLE, CODE_STYLE, EUROPEAN_STYLE, Money, MoneyStyle,
                        ParseError, UnitPrice, format_amount, format_money, format_quantity,
                        parse_money, parse_quantity)


class FormatMoneyTests(unittest.TestCase):
    def test_default_style(self):
        self.assertEqual(format_money(Money("1234.5", "USD")), "$1,234.50")
        self.assertEqual(format_money(Money("-0.5", "GBP")), "-£0.50")
        self.assertEqual(format_money(Money("1234567", "JPY")), "¥1,234,567")
        self.assertEqual(format_money(Money("99", "CHF")), "CHF 99.00")

    def test_symbol_after_amount(self):
        self.assertEqual(format_money(Money("-5", "SEK")), "-5.00 kr")
        self.assertEqual(format_money(Money("1234.5", "EUR"), EUROPEAN_STYLE), "1.234,50 €")

    def test_code_and_accounting_styles(self):
        self.assertEqual(format_money(Money("1234.5", "USD"), CODE_STYLE), "USD 1,234.50")
        self.assertEqual(format_money(Money("-12", "USD"), ACCOUNTING_STYLE), "($12.00)")
        self.assertEqual(format_money(Money("2.5", "KWD"), MoneyStyle(display="none")), "2.500")

    def test_invalid_style(self):
        with self.assertRaises(ValueError):
            MoneyStyle(thousands=".", decimal_point=".")
        with self.assertRaises(ValueError):
            MoneyStyle(display="emoji")

    def test_format_amount_with_extra_places(self):
        self.assertEqual(format_amount(Decimal("1.659"), "EUR", 3), "€1.659")
        self.assertEqual(format_amount("-0.0004", "USD", 3), "$0.000")


class ParseMoneyTests(unittest.TestCase):
    def test_symbols_and_codes(self):
        self.assertEqual(parse_money("$1,234.50"), Money("1234.50", "USD"))
        self.assertEqual(parse_money("EUR 12"), Money("12", "EUR"))
        self.assertEqual(parse_money("12.5 sek"), Money("12.50", "SEK"))
        self.assertEqual(parse_money("¥1,000"), Money("1000", "JPY"))

    def test_negative_forms(self):
        self.assertEqual(parse_money("-$0.99"), Money("-0.99", "USD"))
        self.assertEqual(parse_money("(CHF 3.05)"), Money("-3.05", "CHF"))
        self.assertEqual(parse_money("USD -4"), Money("-4", "USD"))

    def test_default_currency_and_european_input(self):
        self.assertEqual(parse_money("1.234,50", default="EUR", style=EUROPEAN_STYLE),
                         Money("1234.50", "EUR"))
        with self.assertRaises(ParseError) as ctx:
            parse_money("12.00")
        self.assertEqual(str(ctx.exception), "no currency in '12.00' and no default given")

    def test_strictness_about_minor_units(self):
        with self.assertRaises(ParseError) as ctx:
            parse_money("¥10.5")
        self.assertEqual(str(ctx.exception), "'10.5' has more decimal places than JPY allows (0)")
        self.assertEqual(parse_money("$2.675", strict=False), Money("2.68", "USD"))

    def test_ambiguous_and_malformed_input(self):
        with self.assertRaises(ParseError) as ctx:
            parse_money("5 kr")
        self.assertEqual(str(ctx.exception), "ambiguous currency symbol 'kr' (NOK, SEK)")
        with self.assertRaises(ParseError):
            parse_money("$1.2.3")
        with self.assertRaises(ParseError):
            parse_money("USD 5 EUR")

    def test_format_parse_round_trip(self):
        for money in (Money("-1234567.89", "USD"), Money("0.001", "BHD"), Money("42", "KRW")):
            for style in (MoneyStyle(), ACCOUNTING_STYLE, CODE_STYLE):
                self.assertEqual(parse_money(format_money(money, style)), money)


class QuantityAndPriceFormattingTests(unittest.TestCase):
    def test_format_quantity(self):
        self.assertEqual(format_quantity(parse_quantity("100 km/h"), 2, unit="mph"), "62.14 mph")
        self.assertEqual(format_quantity(parse_quantity("1234567.5 m"), thousands=","), "1,234,567.5 m")
        self.assertEqual(format_quantity(parse_quantity("98.6 °F"), 1, unit="°C"), "37.0 °C")
        self.assertEqual(format_quantity(parse_quantity("2.50 kg"), decimal_point=","), "2,5 kg")

    def test_unit_price_per_other_unit(self):
        petrol = UnitPrice("1.659", "EUR", "L")
        per_gallon = petrol.per("gal")
        self.assertEqual(per_gallon.format(3), "€6.280/gal")
        self.assertEqual(petrol.format(3, EUROPEAN_STYLE), "1,659 €/L")
        self.assertEqual(petrol.format(), "€1.66/L")
        self.assertEqual(per_gallon, petrol)

    def test_unit_price_cost(self):
        petrol = UnitPrice.of(Money("1.66", "EUR"), "L")
        self.assertEqual(petrol.cost(parse_quantity("40 L")), Money("66.40", "EUR"))
        self.assertEqual(petrol.cost(parse_quantity("500 mL")), Money("0.83", "EUR"))
        self.assertEqual(format_money(petrol.cost(parse_quantity("10 gal"))), "€62.84")
        with self.assertRaises(ValueError):
            UnitPrice("1", "USD", "°C")
