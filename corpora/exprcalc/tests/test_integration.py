import pytest

from exprcalc import (Calculator, DomainError, Evaluator, ParseError, TokenizeError, derivative,
                      eval_rpn, evaluate, parse, parse_program, simplify, to_rpn, to_string)


def test_printed_program_evaluates_identically():
    source = "a = 0x10; sq(v) = v ^ 2; sq(a) // 3 + a % 5"
    printed = to_string(parse_program(source))
    assert printed == "a = 16; sq(v) = v^2; sq(a) // 3 + a % 5"
    assert evaluate(printed) == evaluate(source) == 86


def test_simplify_inside_function_definition():
    program = simplify(parse_program("f(x) = x * 1 + 0 * y + 2 * 3; f(4)"))
    assert to_string(program) == "f(x) = x + 6; f(4)"


def test_derivative_then_rpn_evaluation():
    slope = derivative("x^3 - 4 * x")
    assert to_rpn(slope) == ["3", "x", "2", "^", "*", "4", "-"]
    assert eval_rpn(to_rpn(slope), {"x": 3}) == 23


def test_calculator_uses_derivative_text():
    calc = Calculator()
    calc.run("df(x) = " + to_string(derivative("x^2 * 5 + 3 * x")))
    assert calc.user_functions() == ["df(x) = 10 * x + 3"]
    assert calc.run("df(2)") == 23


def test_error_positions_survive_simplification_of_untouched_nodes():
    tree = simplify(parse("y + 10 / (x - x)"))
    with pytest.raises(DomainError) as info:
        Evaluator({"y": 1}).evaluate(tree)
    assert info.value.position == 7


def test_tokenizer_errors_surface_through_evaluate():
    with pytest.raises(TokenizeError) as info:
        evaluate("1 + 2x")
    assert info.value.position == 4


def test_trailing_tokens_are_rejected_by_parse():
    with pytest.raises(ParseError) as info:
        parse("1 + 2 3")
    assert info.value.message == "unexpected number 3"


def test_factorial_and_round_work_together():
    assert evaluate("round(10! / 7, -3)") == 518000
    assert evaluate("round(-0.125, 2)") == -0.13
