"""Self-check of rnn_cell: the student's cell against torch.nn.RNNCell (no solution needed)."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st


@pytest.mark.rnn_cell
@pytest.mark.points(2)
def test_matches_torch(load_exercise):
    """one step equals torch.nn.RNNCell with the same weights"""
    rnn = load_exercise("rnn")

    @settings(max_examples=20)
    @given(st.integers(1, 6), st.integers(1, 6), st.integers(1, 4))
    def check(n_in: int, n_hidden: int, batch: int) -> None:
        oracle, cell = torch.nn.RNNCell(n_in, n_hidden), rnn.RNNCell(n_in, n_hidden)
        cell.load_state_dict(oracle.state_dict())
        x, h = torch.randn(batch, n_in), torch.randn(batch, n_hidden)
        got, expected = cell(x, h), oracle(x, h)
        assert torch.allclose(got, expected, atol=1e-6), (
            f"Tried: RNNCell({n_in}, {n_hidden})\nGot: {got}\nExpected: {expected}\n"
            "Hint: h' = tanh(x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh)"
        )

    check()


@pytest.mark.rnn_cell
@pytest.mark.points(1)
def test_output_shape(load_exercise):
    """returns (N, hidden_size)"""
    cell = load_exercise("rnn").RNNCell(3, 5)
    assert cell(torch.zeros(2, 3), torch.zeros(2, 5)).shape == (2, 5)
