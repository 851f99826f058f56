import pytest

from exprcalc import Calculator, DomainError


def test_calculator_keeps_state_and_ans():
    calc = Calculator()
    assert calc.run("rate = 0.5") == 0.5
    assert calc.run("200 * rate") == 100.0
    assert calc.run("ans + 1") == 101.0
    assert calc.variables == {"rate": 0.5, "ans": 101.0}


def test_definitions_produce_no_result_and_are_listed():
    calc = Calculator()
    assert calc.run("area(w, h) = w * h") is None
    assert calc.run("area(3, 4)") == 12
    assert calc.user_functions() == ["area(w, h) = w * h"]
    assert calc.history == [("area(3, 4)", 12)]


def test_run_text_formats_results_and_errors():
    calc = Calculator({"n": 5})
    assert calc.run_text("n!") == "120"
    assert calc.run_text("n / 2") == "2.5"
    assert calc.run_text("n / 0") == "error: division by zero\nn / 0\n  ^"


def test_diagnose_reports_syntax_errors_only():
    calc = Calculator()
    assert calc.diagnose("1 + (2") == "expected ')' but found end of input\n1 + (2\n      ^"
    assert calc.diagnose("undefined_thing + 1") is None


def test_reset_restores_initial_variables():
    calc = Calculator({"base": 10})
    calc.run("base = 2; sq(v) = v * v")
    calc.reset()
    assert calc.variables == {"base": 10}
    assert calc.user_functions() == []
    assert calc.history == []


def test_errors_leave_earlier_assignments_in_place():
    calc = Calculator()
    with pytest.raises(DomainError):
        calc.run("a = 3; b = a / 0")
    assert calc.variables == {"a": 3}
