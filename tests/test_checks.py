"""The friendly checks graded cells use: they pass on right answers and explain wrong ones."""

import numpy as np
import pytest

from tinyml_edu import checks


def test_passing_checks_print_a_tick(capsys):
    checks.check_close(0.1 + 0.2, 0.3, "sum")
    checks.check_shape(np.zeros((5, 49, 40)), (None, 49, 40), "features")
    checks.check_between(0.93, 0.9, 1.0, "accuracy")
    assert capsys.readouterr().out.count("✓") == 3


@pytest.mark.parametrize("call, words", [
    (lambda: checks.check_answered(None, "scale"), "no answer yet"),
    (lambda: checks.check_type([1], np.ndarray, "x"),
     "should have type ndarray, but it has type list"),
    (lambda: checks.check_type(3, (float, str), "x"),
     "should have type float or str, but it has type int"),
    (lambda: checks.check_shape([1, 2], (2,), "x"), "should be an array, but it has type list"),
    (lambda: checks.check_shape(np.zeros((49, 40)), (None, 49, 40), "features"),
     "has shape (49, 40), expected (any, 49, 40)"),
    (lambda: checks.check_close(0.5, 0.25, "scale"), "is 0.5, expected about 0.25"),
    (lambda: checks.check_close([1.0, np.nan], [1.0, 2.0], "y"), "NaN"),
    (lambda: checks.check_between(0.5, 0.9, 1.0, "accuracy"), "expected between 0.9 and 1"),
    (lambda: checks.check_equal(3, 4, "n"), "is 3, expected 4"),
    (lambda: checks.check_in("maybe", ["yes", "no"], "label"), "expected one of"),
    (lambda: checks.check_true(False, "the header names g_model_data"), "g_model_data"),
])
def test_failures_say_what_is_wrong(call, words):
    with pytest.raises(checks.CheckFailed, match="✗") as err:
        call()
    assert words in str(err.value)
    assert isinstance(err.value, AssertionError)  # nbgrader counts it as a failed test


def test_type_names_read_as_english_whatever_their_first_letter(capsys):
    checks.check_type(3, int, "n")  # "is a int" was wrong: no article before a type name
    assert capsys.readouterr().out.strip() == "✓ n has type int"


def test_hint_is_shown():
    with pytest.raises(checks.CheckFailed, match="Try: use mode='int8'"):
        checks.check_at_most(9000, 3000, "size", hint="use mode='int8'")


@pytest.mark.parametrize("call, words", [
    (lambda: checks.check_at_most(9000, 3000, "size"), "is 9000, expected at most 3000"),
    (lambda: checks.check_at_least(0.5, 0.9, "accuracy"), "is 0.5, expected at least 0.9"),
])
def test_one_sided_bounds_name_no_infinity(call, words):
    with pytest.raises(checks.CheckFailed) as err:
        call()
    assert words in str(err.value)
    assert "inf" not in str(err.value)


def test_one_sided_pass_message_names_no_infinity(capsys):
    checks.check_at_most(1000, 3000, "size")
    out = capsys.readouterr().out
    assert "at most 3000" in out and "inf" not in out


def test_close_reports_worst_element():
    with pytest.raises(checks.CheckFailed, match="flat index 2"):
        checks.check_close([1.0, 2.0, 9.0], [1.0, 2.0, 3.0], "y")


def test_a_by_hand_answer_is_not_given_away():
    with pytest.raises(checks.CheckFailed) as err:
        checks.check_equal(35840, 71680, "macs_conv1", reveal=False, hint="positions × filters")
    assert "35840" in str(err.value) and "71680" not in str(err.value)
    assert "not right" in str(err.value) and "Try: positions" in str(err.value)
