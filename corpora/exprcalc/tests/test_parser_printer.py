import unittest

from exprcalc import (Assign, Binary, Call, FunctionDef, Number, ParseError, Program, Unary,
                      Variable, free_variables, node_count, parse, parse_program, to_string,
                      tree_lines)
from exprcalc.nodes import depth


class ParserStructureTests(unittest.TestCase):
    def test_multiplication_binds_tighter_than_addition(self):
        self.assertEqual(
            parse("1 + 2 * 3"),
            Binary("+", Number(1), Binary("*", Number(2), Number(3))),
        )

    def test_subtraction_is_left_associative(self):
        self.assertEqual(
            parse("a - b - c"),
            Binary("-", Binary("-", Variable("a"), Variable("b")), Variable("c")),
        )

    def test_power_is_right_associative_and_beats_unary_minus(self):
        self.assertEqual(
            parse("-2 ^ 3 ^ 2"),
            Unary("-", Binary("^", Number(2), Binary("^", Number(3), Number(2)))),
        )

    def test_double_star_is_power(self):
        self.assertEqual(parse("x ** 2"), parse("x ^ 2"))

    def test_call_with_nested_arguments(self):
        self.assertEqual(
            parse("max(1, min(a, 2))"),
            Call("max", (Number(1), Call("min", (Variable("a"), Number(2))))),
        )

    def test_postfix_factorial_applies_before_power(self):
        self.assertEqual(parse("3!^2"), Binary("^", Unary("!", Number(3)), Number(2)))

    def test_assignment_and_function_definition(self):
        program = parse_program("y = 2; sq(v) = v * v; sq(y)")
        self.assertEqual(program.statements, (
            Assign("y", Number(2)),
            FunctionDef("sq", ("v",), Binary("*", Variable("v"), Variable("v"))),
            Call("sq", (Variable("y"),)),
        ))

    def test_call_that_is_not_a_definition_is_backtracked(self):
        self.assertEqual(parse("f(2) + 1"), Binary("+", Call("f", (Number(2),)), Number(1)))

    def test_empty_statements_are_skipped(self):
        self.assertEqual(parse_program(";; 1 ;; 2 ;"), Program((Number(1), Number(2))))


class ParserErrorTests(unittest.TestCase):
    def test_missing_closing_parenthesis(self):
        with self.assertRaises(ParseError) as ctx:
            parse("(1 + 2")
        self.assertEqual(ctx.exception.message, "expected ')' but found end of input")
        self.assertEqual(ctx.exception.position, 6)

    def test_chained_comparison_is_rejected(self):
        with self.assertRaises(ParseError) as ctx:
            parse("1 < 2 < 3")
        self.assertEqual(ctx.exception.position, 6)

    def test_dangling_operator(self):
        with self.assertRaises(ParseError) as ctx:
            parse("4 *")
        self.assertEqual(ctx.exception.message, "unexpected end of input")

    def test_duplicate_parameters(self):
        with self.assertRaises(ParseError) as ctx:
            parse("f(a, a) = a")
        self.assertIn("duplicate parameter", ctx.exception.message)

    def test_assignment_to_literal_is_rejected(self):
        with self.assertRaises(ParseError) as ctx:
            parse("3 = x")
        self.assertEqual(ctx.exception.message, "unexpected '='")
        self.assertEqual(ctx.exception.position, 2)


class PrinterTests(unittest.TestCase):
    def test_minimal_parentheses(self):
        self.assertEqual(to_string(parse("((a + b)) * c - (d - e)")), "(a + b) * c - (d - e)")

    def test_round_trip_preserves_structure(self):
        sources = ["(-2)^2", "-(x - 1)", "2^-x", "(a / b)^-2", "(1 + 2)!", "a - (b + c)",
                   "f(x, y) = x % y", "(a < b) == c"]
        for source in sources:
            with self.subTest(source=source):
                self.assertEqual(parse(to_string(parse(source))), parse(source))
                self.assertEqual(to_string(parse(source)), source)

    def test_tree_lines_outline(self):
        self.assertEqual(tree_lines(parse("-max(x, 2)")), [
            "Unary -",
            "  Call max/2",
            "    Variable x",
            "    Number 2",
        ])

    def test_tree_metrics(self):
        tree = parse("a * (b + c) - f(d)")
        self.assertEqual(node_count(tree), 8)
        self.assertEqual(depth(tree), 4)
        self.assertEqual(free_variables(tree), {"a", "b", "c", "d"})
        self.assertEqual(free_variables(parse("g(a) = a + b")), {"b"})
