import unittest
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from fractions import Fraction

from moneyunits import (Currency, CurrencyMismatchError, CurrencyRegistry, Money,
                        UnknownCurrencyError, allocate, allocate_with_minimum,
                        get_currency, split_evenly)


class CurrencyTests(unittest.TestCase):
    def test_minor_units_and_exponent(self):
        self.assertEqual(get_currency("jpy").minor_units, 0)
        self.assertEqual(get_currency("KWD").exponent, Decimal("0.001"))
        self.assertEqual(get_currency("USD").to_minor("12.345"), 1234)
        self.assertEqual(get_currency("BHD").from_minor(1500), Decimal("1.500"))

    def test_unknown_currency(self):
        with self.assertRaises(UnknownCurrencyError) as ctx:
            get_currency("XYZ")
        self.assertEqual(str(ctx.exception), "unknown currency 'XYZ'")

    def test_invalid_currency_definition(self):
        with self.assertRaises(ValueError):
            Currency("usd", 2, "$", "lower case")
        with self.assertRaises(ValueError):
            Currency("ABC", 9, "?", "too precise")

    def test_symbol_lookup_and_ambiguity(self):
        registry = CurrencyRegistry([Currency("AAA", 2, "a", "A"), Currency("BBB", 2, "b", "B"),
                                     Currency("CCC", 2, "b", "C")])
        self.assertEqual(registry.by_symbol("a").code, "AAA")
        with self.assertRaises(UnknownCurrencyError) as ctx:
            registry.by_symbol("b")
        self.assertEqual(str(ctx.exception), "ambiguous currency symbol 'b' (BBB, CCC)")


class MoneyArithmeticTests(unittest.TestCase):
    def test_construction_rounds_half_even(self):
        self.assertEqual(Money("2.675", "USD").amount, Decimal("2.68"))
        self.assertEqual(Money("2.665", "USD").amount, Decimal("2.66"))
        self.assertEqual(Money("0.5", "JPY").amount, Decimal("0"))
        self.assertEqual(Money("1.5", "JPY").amount, Decimal("2"))
        self.assertEqual(Money("2.665", "USD", rounding=ROUND_HALF_UP).amount, Decimal("2.67"))

    def test_floats_are_rejected(self):
        with self.assertRaises(TypeError):
            Money(0.1, "USD")

    def test_add_subtract_and_sum(self):
        a, b = Money("10.10", "EUR"), Money("0.95", "EUR")
        self.assertEqual(a + b, Money("11.05", "EUR"))
        self.assertEqual(b - a, Money("-9.15", "EUR"))
        self.assertEqual(sum([a, b, b]), Money("12.00", "EUR"))
        self.assertEqual(Money.total([], "EUR"), Money(0, "EUR"))

    def test_currency_mismatch(self):
        with self.assertRaises(CurrencyMismatchError) as ctx:
            Money(1, "USD") + Money(1, "EUR")
        self.assertEqual(str(ctx.exception), "cannot combine USD and EUR")
        self.assertNotEqual(Money(1, "USD"), Money(1, "EUR"))
        with self.assertRaises(CurrencyMismatchError):
            Money(1, "USD") < Money(2, "EUR")

    def test_multiply_divide_and_percent(self):
        price = Money("19.99", "USD")
        self.assertEqual(price * 3, Money("59.97", "USD"))
        self.assertEqual(price * Decimal("0.5"), Money("10.00", "USD"))
        self.assertEqual(price / 4, Money("5.00", "USD"))
        self.assertEqual(Money("10", "USD") / Money("4", "USD"), Decimal("2.5"))
        self.assertEqual(price.percent("7.5"), Money("1.50", "USD"))
        self.assertEqual(price.multiply(Fraction(1, 3), ROUND_DOWN), Money("6.66", "USD"))

    def test_taxes(self):
        tax, gross = Money("100", "EUR").add_tax(19)
        self.assertEqual((tax, gross), (Money("19", "EUR"), Money("119", "EUR")))
        net, tax = Money("100", "EUR").extract_tax(19)
        self.assertEqual((net, tax), (Money("84.03", "EUR"), Money("15.97", "EUR")))

    def test_cash_rounding(self):
        self.assertEqual(Money("10.03", "CHF").round_cash(), Money("10.05", "CHF"))
        self.assertEqual(Money("10.025", "CHF").round_cash(), Money("10.00", "CHF"))
        self.assertEqual(Money("10.03", "USD").round_cash(), Money("10.03", "USD"))

    def test_immutability_and_hash(self):
        money = Money("1.00", "GBP")
        with self.assertRaises(AttributeError):
            money.amount = Decimal("2")
        self.assertEqual(len({money, Money("1", "GBP"), Money("1", "USD")}), 2)
        self.assertEqual(repr(money), "Money('1.00', 'GBP')")


class AllocationTests(unittest.TestCase):
    def test_allocate_keeps_every_unit(self):
        self.assertEqual(allocate(100, [1, 1, 1]), [34, 33, 33])
        self.assertEqual(allocate(5, [3, 7]), [2, 3])
        self.assertEqual(allocate(-100, [1, 1, 1]), [-34, -33, -33])

    def test_allocate_largest_remainder(self):
        self.assertEqual(allocate(10, ["0.14", "0.36", "0.5"]), [1, 4, 5])
        self.assertEqual(allocate(10, ["0.15", "0.35", "0.5"]), [2, 3, 5])
        self.assertEqual(allocate(7, [Fraction(1, 3), Fraction(2, 3), 0]), [2, 5, 0])

    def test_allocate_validation(self):
        with self.assertRaises(ValueError):
            allocate(10, [])
        with self.assertRaises(ValueError):
            allocate(10, [0, 0])
        with self.assertRaises(ValueError):
            allocate(10, [1, -1])
        with self.assertRaises(TypeError):
            allocate(1.5, [1])

    def test_split_and_minimum(self):
        self.assertEqual(split_evenly(11, 4), [3, 3, 3, 2])
        self.assertEqual(allocate_with_minimum(10, [1, 0, 0], 2), [6, 2, 2])
        with self.assertRaises(ValueError):
            allocate_with_minimum(3, [1, 1], 2)

    def test_money_allocate_and_split(self):
        parts = Money("100.00", "USD").allocate([70, 20, 10])
        self.assertEqual(parts, [Money("70", "USD"), Money("20", "USD"), Money("10", "USD")])
        thirds = Money("0.05", "EUR").split(3)
        self.assertEqual([p.amount for p in thirds], [Decimal("0.02"), Decimal("0.02"), Decimal("0.01")])
        self.assertEqual(Money.total(Money("1000", "JPY").split(7), "JPY"), Money("1000", "JPY"))
        self.assertEqual([p.minor_amount for p in Money("1.001", "KWD").split(2)], [501, 500])
