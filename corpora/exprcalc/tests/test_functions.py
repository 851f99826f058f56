import unittest

from exprcalc import (ArityError, DomainError, FunctionTable, default_functions, evaluate,
                      round_half_away)
from exprcalc.functions import closest_name, edit_distance, factorial, power, true_divide


class BuiltinFunctionTests(unittest.TestCase):
    def test_min_max_abs(self):
        self.assertEqual(evaluate("min(4, -2, 7)"), -2)
        self.assertEqual(evaluate("max(4, -2, 7)"), 7)
        self.assertEqual(evaluate("abs(-3.5)"), 3.5)

    def test_round_half_away_from_zero(self):
        self.assertEqual(evaluate("round(2.5)"), 3)
        self.assertEqual(evaluate("round(-2.5)"), -3)
        self.assertEqual(evaluate("round(2.675, 2)"), 2.68)
        self.assertEqual(evaluate("round(1250, -2)"), 1300)
        self.assertEqual(round_half_away(7, 3), 7)

    def test_sqrt_is_exact_for_perfect_squares(self):
        self.assertEqual(evaluate("sqrt(144)"), 12)
        self.assertIs(type(evaluate("sqrt(144)")), int)
        self.assertEqual(evaluate("sqrt(2.25)"), 1.5)

    def test_statistics(self):
        self.assertEqual(evaluate("mean(1, 2, 3, 4)"), 2.5)
        self.assertEqual(evaluate("median(9, 1, 5)"), 5)
        self.assertEqual(evaluate("median(4, 1, 3, 2)"), 2.5)
        self.assertEqual(evaluate("sum(1, 2, 3)"), 6)

    def test_integer_functions(self):
        self.assertEqual(evaluate("gcd(84, 36, 60)"), 12)
        self.assertEqual(evaluate("lcm(4, 6)"), 12)
        self.assertEqual(evaluate("fact(6)"), 720)
        self.assertEqual(evaluate("floor(-2.5) + ceil(2.1) + trunc(-2.7)"), -2)

    def test_logarithms(self):
        self.assertEqual(evaluate("log(1000)"), 3.0)
        self.assertEqual(evaluate("log(32, 2)"), 5.0)
        self.assertEqual(evaluate("ln(1)"), 0.0)

    def test_clamp_and_sign(self):
        self.assertEqual(evaluate("clamp(15, 0, 10)"), 10)
        self.assertEqual(evaluate("clamp(-5, 0, 10)"), 0)
        self.assertEqual(evaluate("sign(-0.5) + sign(0) + sign(8)"), 0)


class DomainErrorTests(unittest.TestCase):
    def test_domain_errors_get_call_position(self):
        with self.assertRaises(DomainError) as ctx:
            evaluate("1 + sqrt(-4)")
        self.assertEqual(ctx.exception.message, "sqrt() of a negative number")
        self.assertEqual(ctx.exception.position, 4)

    def test_integer_requirements(self):
        with self.assertRaises(DomainError) as ctx:
            evaluate("gcd(4, 2.5)")
        self.assertEqual(ctx.exception.message, "gcd() requires an integer, got 2.5")
        with self.assertRaises(DomainError):
            evaluate("(-3)!")

    def test_clamp_rejects_inverted_bounds(self):
        with self.assertRaises(DomainError):
            evaluate("clamp(1, 5, 2)")

    def test_helpers_directly(self):
        self.assertEqual(true_divide(9, 3), 3)
        self.assertEqual(power(2, 10), 1024)
        self.assertEqual(factorial(0), 1)
        with self.assertRaises(DomainError):
            power(-8, 0.5)
        with self.assertRaises(DomainError):
            power(0, -1)


class FunctionTableTests(unittest.TestCase):
    def test_register_custom_function_and_call(self):
        table = FunctionTable()
        table.register("double", lambda v: v * 2, 1)
        self.assertEqual(table.call("double", [21]), 42)
        self.assertEqual(table.names(), ["double"])

    def test_variadic_arity_message(self):
        table = default_functions()
        with self.assertRaises(ArityError) as ctx:
            table.call("max", [], position=3)
        self.assertEqual(str(ctx.exception), "max() expects at least 1 argument, got 0 (at position 3)")

    def test_edit_distance_and_closest_name(self):
        self.assertEqual(edit_distance("kitten", "sitting"), 3)
        self.assertEqual(edit_distance("", "abc"), 3)
        self.assertEqual(closest_name("mox", ["max", "min", "mean"]), "max")
        self.assertIsNone(closest_name("zzzzz", ["max", "min"]))

    def test_copy_is_independent(self):
        table = default_functions()
        clone = table.copy()
        clone.register("inc", lambda v: v + 1, 1)
        self.assertIn("inc", clone)
        self.assertNotIn("inc", table)
