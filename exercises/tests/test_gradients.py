"""Self-check of ``gradients.py`` (exercise ``grad_norms``).

Oracles: the same measurement done here with torch on a copy of a tiny model built in this
file (not your ResNet), and the definition of the spread, log10(max / min).
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from .feedback import msg

NORM_HINT = ("one forward, cross-entropy against y, one backward; then for each parameter with "
             "dim() >= 2, in named_parameters() order: (name, its gradient's L2 norm as a float)")


def tiny_cnn(seed: int = 0) -> nn.Module:
    """Conv-BN-ReLU, a biased conv, a linear head: weights (dim 4 and 2) and vectors (dim 1)."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(6, 5))


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(4, 3, 6, 6, generator=g), torch.randint(0, 5, (4,), generator=g)


def _torch_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[tuple[str, float]]:
    model = copy.deepcopy(model)
    F.cross_entropy(model(x), y).backward()
    return [(n, p.grad.norm().item()) for n, p in model.named_parameters() if p.dim() >= 2]


def _rows(got: object) -> list:
    return [tuple(r) for r in got] if isinstance(got, (list, tuple)) else [got]


@pytest.mark.grad_norms
@pytest.mark.points(1)
def test_norm_names_and_order(load_exercise):
    """lists the weight tensors (dim >= 2) by name, in named_parameters() order"""
    gradients = load_exercise("gradients")
    model, (x, y) = tiny_cnn(), _batch()
    got = _rows(gradients.measure_gradient_norms(model, x, y))
    names = [r[0] if isinstance(r, tuple) and r else r for r in got]
    expected = [n for n, p in model.named_parameters() if p.dim() >= 2]
    assert names == expected, msg(
        "measure_gradient_norms on Conv2d-BN-ReLU-Conv2d-ReLU-pool-Linear", names, expected,
        "skip biases and BatchNorm vectors (dim 1); keep named_parameters() order")


@pytest.mark.grad_norms
@pytest.mark.points(2)
def test_norm_values(load_exercise):
    """each norm equals the L2 norm of that weight's cross-entropy gradient"""
    gradients = load_exercise("gradients")
    for seed in range(2):
        model, (x, y) = tiny_cnn(seed), _batch(seed)
        expected = _torch_norms(model, x, y)
        got = _rows(gradients.measure_gradient_norms(model, x, y))
        types = {type(r[1]).__name__ for r in got if isinstance(r, tuple) and len(r) == 2}
        assert types == {"float"}, msg("measure_gradient_norms: the type of each norm",
                                        sorted(types), "['float']",
                                        "return plain Python floats (tensor.item())")
        for (name, want), row in zip(expected, got, strict=False):
            assert row[0] == name and math.isclose(row[1], want, rel_tol=1e-5), msg(
                f"measure_gradient_norms on the tiny CNN, seed {seed}", row, (name, want),
                NORM_HINT)
        assert len(got) == len(expected), msg("measure_gradient_norms: number of rows",
                                               len(got), len(expected), NORM_HINT)


@pytest.mark.grad_norms
@pytest.mark.points(1)
def test_norms_repeatable(load_exercise):
    """a second call measures the same norms (old gradients are cleared)"""
    gradients = load_exercise("gradients")
    model, (x, y) = tiny_cnn(), _batch()
    model.eval()  # BatchNorm's running statistics must not change the second forward
    first = _rows(gradients.measure_gradient_norms(model, x, y))
    second = _rows(gradients.measure_gradient_norms(model, x, y))
    same = len(first) == len(second) and all(
        math.isclose(a[1], b[1], rel_tol=1e-5) for a, b in zip(first, second, strict=False))
    assert same, msg("measure_gradient_norms twice on the same model and batch",
                      f"first {first[:2]}..., second {second[:2]}...", "the same norms",
                      "backward ADDS into .grad: clear the old gradients first "
                      "(model.zero_grad())")


@pytest.mark.grad_norms
@pytest.mark.points(1)
def test_spread_examples(load_exercise):
    """gradient_norm_spread is log10(max / min): 0.01 and 10 give 3"""
    gradients = load_exercise("gradients")
    cases = [([("a", 0.01), ("b", 10.0)], 3.0), ([("b", 10.0), ("a", 0.01)], 3.0),
             ([("a", 2.5)], 0.0), ([("a", 1.0), ("b", 1.0), ("c", 1.0)], 0.0),
             ([("a", 1.0), ("b", 0.5), ("c", 100.0)], math.log10(200.0))]
    for norms, expected in cases:
        got = gradients.gradient_norm_spread(norms)
        assert isinstance(got, float) and math.isclose(got, expected, abs_tol=1e-12), msg(
            f"gradient_norm_spread({norms})", repr(got), expected,
            "log10(largest norm / smallest norm), as a float")
    try:
        outcome = f"returned {gradients.gradient_norm_spread([])!r}"
    except ValueError:
        outcome = ""
    assert not outcome, msg("gradient_norm_spread([])", outcome, "a ValueError",
                             "there is nothing to compare in an empty list")


@pytest.mark.grad_norms
@pytest.mark.points(1)
def test_spread_closed_form(load_exercise):
    """gradient_norm_spread matches log10(max / min) on norms over many magnitudes"""
    gradients = load_exercise("gradients")
    norm = st.builds(lambda m, e: m * 10.0 ** e, st.floats(0.1, 10.0), st.integers(-8, 4))

    @settings(max_examples=20)
    @given(st.lists(norm, min_size=1, max_size=10))
    def check(values: list[float]) -> None:
        norms = [(f"layer{i}.weight", v) for i, v in enumerate(values)]
        expected = math.log10(max(values) / min(values))
        got = gradients.gradient_norm_spread(norms)
        assert math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-9), msg(
            f"gradient_norm_spread({norms})", repr(got), expected,
            "log10(max / min) over the norms (the second entry of each row)")

    check()
