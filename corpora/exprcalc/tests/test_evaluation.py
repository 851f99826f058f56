import math

import pytest

from exprcalc import (ArityError, DomainError, EvalError, Evaluator, UndefinedVariableError,
                      UnknownFunctionError, evaluate, parse)


def test_operator_precedence_and_grouping():
    assert evaluate("2 + 3 * 4") == 14
    assert evaluate("(2 + 3) * 4") == 20
    assert evaluate("-2 ^ 2") == -4
    assert evaluate("2 ^ 3 ^ 2") == 512


def test_integer_division_stays_exact_when_possible():
    assert evaluate("8 / 2") == 4
    assert type(evaluate("8 / 2")) is int
    assert evaluate("7 / 2") == 3.5
    assert evaluate("7 // 2") == 3
    assert evaluate("-7 % 3") == 2


def test_negative_integer_power_gives_float():
    assert evaluate("2 ^ -2") == 0.25
    assert evaluate("(-1) ^ -3") == -1


def test_comparisons_yield_one_or_zero():
    assert evaluate("3 > 2") == 1
    assert evaluate("3 <= 2") == 0
    assert evaluate("2 + 2 == 4") == 1
    assert evaluate("1 != 1") == 0


def test_variables_and_constants():
    assert evaluate("x * y + 1", {"x": 3, "y": 4}) == 13
    assert evaluate("2 * pi") == math.tau
    assert evaluate("tau - 2 * pi") == 0


def test_program_assignments_carry_forward():
    assert evaluate("a = 4; b = a * a; b - a") == 12


def test_lazy_if_does_not_evaluate_other_branch():
    assert evaluate("if(1, 10, 1 / 0)") == 10
    assert evaluate("if(0, 1 / 0, 20)") == 20


def test_recursive_user_function():
    source = "fib(n) = if(n < 2, n, fib(n - 1) + fib(n - 2)); fib(15)"
    assert evaluate(source) == 610


def test_user_function_sees_global_at_call_time():
    assert evaluate("k = 1; addk(v) = v + k; k = 10; addk(5)") == 15


def test_division_by_zero_points_at_operator():
    with pytest.raises(DomainError) as info:
        evaluate("1 + 4 / (2 - 2)")
    assert info.value.message == "division by zero"
    assert info.value.position == 6


def test_undefined_variable_with_suggestion():
    with pytest.raises(UndefinedVariableError) as info:
        evaluate("totl + 1", {"total": 5})
    assert info.value.name == "totl"
    assert info.value.suggestion == "total"
    assert info.value.position == 0


def test_unknown_function_with_suggestion():
    with pytest.raises(UnknownFunctionError) as info:
        evaluate("sqr(16)")
    assert str(info.value) == "unknown function 'sqr'; did you mean 'sqrt'? (at position 0)"


def test_wrong_argument_count():
    with pytest.raises(ArityError) as info:
        evaluate("round(1, 2, 3)")
    assert info.value.message == "round() expects 1 to 2 arguments, got 3"


def test_constants_cannot_be_reassigned():
    with pytest.raises(EvalError) as info:
        evaluate("pi = 3")
    assert info.value.message == "cannot assign to constant 'pi'"


def test_builtin_cannot_be_redefined():
    with pytest.raises(EvalError) as info:
        evaluate("sqrt(v) = v")
    assert info.value.message == "cannot redefine built-in function 'sqrt'"


def test_runaway_recursion_is_stopped():
    with pytest.raises(EvalError) as info:
        evaluate("loop(n) = loop(n + 1); loop(0)")
    assert "maximum call depth of 32" in info.value.message


def test_huge_power_is_rejected():
    with pytest.raises(DomainError) as info:
        evaluate("10 ^ 100000")
    assert info.value.message == "result too large"


def test_float_overflow_is_reported():
    with pytest.raises(DomainError) as info:
        evaluate("1e308 * 10")
    assert info.value.message == "numeric overflow"


def test_evaluator_reuses_scope_across_calls():
    evaluator = Evaluator({"n": 2})
    evaluator.evaluate(parse("n = n * 5"))
    assert evaluator.evaluate(parse("n + 1")) == 11
    assert evaluator.variables == {"n": 10}
