"""Hidden graders of rnn_cell: the student's cell against the reference, on drawn cases."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grader.feedback import check_equal, check_tensor
from grader.packs.day03.probes import rnn as P


@st.composite
def rnn_case(draw) -> dict:
    return {
        "input": draw(st.integers(1, 8)),
        "hidden": draw(st.integers(1, 8)),
        "batch": draw(st.integers(1, 4)),
        "steps": draw(st.integers(1, 4)),
        "seed": draw(st.integers(0, 2**31 - 1)),
    }


def _tried(case: dict) -> str:
    return f"RNNCell({case['input']}, {case['hidden']}) for {case['steps']} step(s)"


@pytest.mark.rnn_cell
@pytest.mark.points(4)
@given(case=rnn_case())
def test_parameters(student, reference, case):
    """has torch.nn.RNNCell's parameters, with their shapes"""
    got, expected = student.run(P.unroll, case), reference.run(P.unroll, case)
    check_equal(
        got["shapes"],
        expected["shapes"],
        _tried(case),
        "weight_ih (hidden, input), weight_hh (hidden, hidden), two (hidden,) biases",
    )


@pytest.mark.rnn_cell
@pytest.mark.points(6)
@given(case=rnn_case())
def test_unrolled(student, reference, case):
    """each step equals tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)"""
    got, expected = student.run(P.unroll, case), reference.run(P.unroll, case)
    check_equal(got["shapes"], expected["shapes"], _tried(case), "the parameters come first")
    for t, (g, e) in enumerate(zip(got["outputs"], expected["outputs"], strict=True)):
        check_tensor(
            g, e, _tried(case), "both biases go inside the tanh", what=f"h after step {t + 1}"
        )
