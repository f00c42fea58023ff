"""Probes of rnn.py: the same function runs on the reference and on the student's module."""

from __future__ import annotations

import torch

from grader.probes import one_thread, probe


def case_weights(case: dict) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(case["seed"])
    i, h = case["input"], case["hidden"]
    shapes = {"weight_ih": (h, i), "weight_hh": (h, h), "bias_ih": (h,), "bias_hh": (h,)}
    return {n: torch.randn(s, generator=g, dtype=torch.float64) / h**0.5 for n, s in shapes.items()}


@probe("rnn")
def unroll(mod, case: dict) -> dict:
    """RNNCell with the case's weights, ``steps`` steps from a random h: shapes and outputs."""
    with one_thread():
        cell = mod.RNNCell(case["input"], case["hidden"])
        weights = case_weights(case)
        shapes = {n: [int(d) for d in p.shape] for n, p in cell.named_parameters()}
        if shapes != {n: list(w.shape) for n, w in weights.items()}:
            return {"shapes": shapes, "outputs": []}  # the grader says which differ
        cell.double().load_state_dict(weights, strict=False)
        g = torch.Generator().manual_seed(case["seed"] + 1)
        xs = torch.randn(
            case["steps"], case["batch"], case["input"], generator=g, dtype=torch.float64
        )  # (T, N, input)
        h = torch.randn(case["batch"], case["hidden"], generator=g, dtype=torch.float64)
        outputs = []
        for x in xs:
            h = cell(x, h)  # (N, hidden)
            outputs.append(h.detach())
        return {"shapes": shapes, "outputs": outputs}
