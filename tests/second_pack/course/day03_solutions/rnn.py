"""An Elman RNN cell: one step h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class RNNCell(nn.Module):
    """One step of an Elman RNN, with torch.nn.RNNCell's parameters: ``weight_ih`` (hidden,
    input), ``weight_hh`` (hidden, hidden), ``bias_ih`` and ``bias_hh`` (hidden,)."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        ### BEGIN SOLUTION
        bound = hidden_size**-0.5
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size).uniform_(-bound, bound))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size).uniform_(-bound, bound))
        self.bias_ih = nn.Parameter(torch.empty(hidden_size).uniform_(-bound, bound))
        self.bias_hh = nn.Parameter(torch.empty(hidden_size).uniform_(-bound, bound))
        ### END SOLUTION

    def forward(self, x: Tensor, h: Tensor) -> Tensor:
        """x: (N, input_size), h: (N, hidden_size) -> h': (N, hidden_size)."""
        ### BEGIN SOLUTION
        pre = x @ self.weight_ih.T + self.bias_ih + h @ self.weight_hh.T + self.bias_hh
        return torch.tanh(pre)  # (N, hidden_size)
        ### END SOLUTION
