"""One comparison for every grader (grader/feedback.py): odd values never pass, honest
float32 arithmetic does, and the feedback shows a difference when there is one."""

from __future__ import annotations

import math

import pytest
import torch

from grader.feedback import PropertyFailed, agrees, check_equal, check_number, check_tensor


class Tensorish(torch.Tensor):
    """A tensor subclass: it could answer comparisons its own way."""


@pytest.mark.parametrize("got", [math.nan, math.inf, -math.inf, 1e300, "0.0", None, True,
                                 torch.tensor(0.0), [0.0]])
def test_odd_numbers_never_agree(got):
    assert not agrees(got, 0.0, rtol=1e-6, atol=1e-12)
    with pytest.raises(PropertyFailed):
        check_number(got, 0.0, "gradient_norm_spread([...])", atol=1e-12)


def test_nan_no_longer_passes_a_small_difference():
    """``abs(nan) > tol`` is False: the old check let a NaN spread through."""
    assert not abs(math.nan) > 1e-12  # the trap
    with pytest.raises(PropertyFailed, match="not a finite number"):
        check_number(math.nan, 0.0, "spread", atol=1e-12)


def test_negative_zero_is_zero():
    check_number(-0.0, 0.0, "spread", atol=1e-12)
    check_tensor(torch.tensor([-0.0, 1.0]), torch.tensor([0.0, 1.0]), "t", rtol=0, atol=0)
    check_equal([-0.0], [0.0], "t")


def test_ints_are_exact_and_bools_are_not_ints():
    check_number(3, 3, "size")
    for got in (3.0, True, 4, torch.tensor(3)):
        with pytest.raises(PropertyFailed):
            check_number(got, 3, "size")
    with pytest.raises(PropertyFailed):
        check_equal([3, 3.0], [3, 3], "sizes")  # element types count too


@pytest.mark.parametrize("got", [
    torch.tensor([1.0, math.nan]), torch.tensor([1.0, math.inf]), torch.tensor([1.0]),
    torch.tensor([1.0, 2.0], dtype=torch.float64), torch.tensor([[1.0, 2.0]]),
    torch.tensor([1.0, 2.0]).as_subclass(Tensorish), [1.0, 2.0]])
def test_odd_tensors_never_agree(got):
    expected = torch.tensor([1.0, 2.0])
    assert not agrees(got, expected, rtol=1e-6)
    with pytest.raises(PropertyFailed):
        check_tensor(got, expected, "t")


def test_float32_accuracy_passes_and_a_miscount_does_not():
    """2 of 7 right: a float32 running count gives 28.5714283, float64 28.5714286."""
    float32 = float(torch.tensor(200.0) / 7)
    check_number(float32, 200 / 7, "accuracy", rtol=1e-6)
    with pytest.raises(PropertyFailed):
        check_number(100 * 3 / 7, 200 / 7, "accuracy", rtol=1e-6)


def test_feedback_shows_the_digits_that_differ():
    """Values that print alike at 6 digits get as many as it takes to tell them apart."""
    with pytest.raises(PropertyFailed) as failed:
        check_number(28.571428298950195, 28.571428571428573, "accuracy", rtol=1e-9)
    text = str(failed.value)
    assert "28.5714283" in text and "28.5714286" in text
    got_line = next(line for line in text.splitlines() if line.startswith("Got:"))
    want_line = next(line for line in text.splitlines() if line.startswith("Expected:"))
    assert got_line.split(":", 1)[1].split("(")[0] != want_line.split(":", 1)[1].split("(")[0]


def test_feedback_shows_the_type_when_the_digits_agree():
    with pytest.raises(PropertyFailed) as failed:
        check_equal(3.0, 3, "conv_output_size(...)")
    assert "3.0 (a float)" in str(failed.value) and "3 (a int)" in str(failed.value)
