import unittest

from exprcalc import (DomainError, EvalError, UndefinedVariableError, derivative,
                      eval_rpn, evaluate, newton, parse, simplify, slope_at, tangent_line,
                      to_rpn, to_string)


def simplified(source):
    return to_string(simplify(parse(source)))


class SimplifyTests(unittest.TestCase):
    def test_constant_folding(self):
        self.assertEqual(simplified("2 * 3 + 4"), "10")
        self.assertEqual(simplified("x + 2 * 3"), "x + 6")

    def test_identities(self):
        self.assertEqual(simplified("x * 1 + 0"), "x")
        self.assertEqual(simplified("0 * (a + b) + y ^ 1"), "y")
        self.assertEqual(simplified("z ^ 0"), "1")
        self.assertEqual(simplified("--q"), "q")
        self.assertEqual(simplified("0 - w"), "-w")

    def test_like_terms_and_reassociation(self):
        self.assertEqual(simplified("a + a"), "2 * a")
        self.assertEqual(simplified("(x + 2) + 3"), "x + 5")
        self.assertEqual(simplified("x * 3 * 2"), "6 * x")
        self.assertEqual(simplified("(p - q) - (p - q)"), "0")

    def test_named_constants_stay_symbolic(self):
        self.assertEqual(simplified("2 * pi * 1"), "2 * pi")

    def test_failing_fold_is_left_in_place(self):
        self.assertEqual(simplified("x + 1 / 0"), "x + 1 / 0")

    def test_if_with_constant_condition(self):
        self.assertEqual(simplified("if(3 > 2, a, b)"), "a")

    def test_simplified_tree_evaluates_the_same(self):
        source = "(x + 0) * (y * 1) + (2 + 3) * x - x ^ 1"
        scope = {"x": 7, "y": 3}
        self.assertEqual(simplified(source), "x * y + 5 * x - x")
        self.assertEqual(evaluate(simplified(source), scope), evaluate(source, scope))


class CalculusTests(unittest.TestCase):
    def test_polynomial_derivative(self):
        self.assertEqual(to_string(derivative("3 * x^2 + 5 * x - 7")), "6 * x + 5")
        self.assertEqual(to_string(derivative("x^3")), "3 * x^2")

    def test_chain_rule(self):
        self.assertEqual(to_string(derivative("sin(x^2)")), "cos(x^2) * (2 * x)")
        self.assertEqual(to_string(derivative("sqrt(x)")), "1 / (2 * sqrt(x))")

    def test_derivative_respects_variable_choice(self):
        self.assertEqual(to_string(derivative("a * t^2 + b * t", "t")), "a * (2 * t) + b")
        self.assertEqual(to_string(derivative("y^2", "x")), "0")

    def test_slope_and_tangent(self):
        self.assertEqual(slope_at("x^3 - 2 * x", "x", 2), 10)
        self.assertEqual(tangent_line("x^2", "x", 3), (6, -9))

    def test_newton_root(self):
        self.assertEqual(round(newton("x^2 - 4", "x", 3), 9), 2.0)
        self.assertLess(abs(newton("x^3 - x - 2", "x", 1.5) - 1.5213797068045676), 1e-12)

    def test_undifferentiable_inputs(self):
        with self.assertRaises(EvalError) as ctx:
            derivative("x!")
        self.assertEqual(ctx.exception.message, "cannot differentiate operator '!'")
        with self.assertRaises(EvalError):
            derivative("max(x, 1)")
        with self.assertRaises(DomainError):
            newton("x^2 + 1", "x", 0)


class RpnTests(unittest.TestCase):
    def test_to_rpn_sequence(self):
        self.assertEqual(to_rpn(parse("max(1, -x) + 3!")),
                         ["1", "x", "neg", "max/2", "3", "!", "+"])

    def test_rpn_machine_matches_evaluator(self):
        scope = {"x": 4, "y": -2}
        for source in ["x * (y + 3) ^ 2", "gcd(12, x * 6) - y % 3", "if(x > y, x, y) / 8",
                       "-x ^ 2 + hypot(3, 4)"]:
            with self.subTest(source=source):
                self.assertEqual(eval_rpn(to_rpn(parse(source)), scope), evaluate(source, scope))

    def test_rpn_errors(self):
        with self.assertRaises(EvalError):
            eval_rpn(["1", "+"])
        with self.assertRaises(EvalError):
            eval_rpn(["1", "2"])
        with self.assertRaises(UndefinedVariableError):
            eval_rpn(["q", "1", "+"])
