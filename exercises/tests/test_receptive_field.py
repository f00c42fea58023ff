"""Self-check of ``receptive_field.py`` (exercise ``receptive_field``).

Oracles: the lesson's ResNet-18 table, hand-worked examples, and the empirical receptive field:
the gradient of one output unit with respect to the input is nonzero exactly on the pixels
that unit sees. With positive weights, positive inputs, ReLU and BatchNorm in eval mode, no
term can cancel, so the width of that support IS the receptive field.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from .feedback import msg

RF_HINT = ("grow the field layer by layer: each layer adds d (k - 1) times the 'jump', the "
           "product of the strides of the layers BEFORE it (its own stride does not count)")
RESNET18_FIELDS = {"conv1": 3, "layer1": 11, "layer2": 25, "layer3": 53, "layer4": 109}


def _support_width(grad: torch.Tensor, dim: int) -> int:
    """Width of the nonzero support of a 2-D ``grad`` along ``dim``, holes included."""
    where = (grad != 0).any(dim=1 - dim).nonzero().flatten()
    return int(where[-1] - where[0] + 1)


def empirical_field(layers: list[tuple[int, ...]], size: int = 96) -> tuple[int, int]:
    """Measure the (height, width) receptive field of output unit (0, 0) of a conv-BN-ReLU stack.

    No padding, so unit (0, 0) sits fully inside the image; positive weights, BN in eval mode
    (a positive scale), ReLU of positive values: every path adds, nothing cancels.
    """
    torch.manual_seed(0)
    modules: list[nn.Module] = []
    channels = 1
    for layer in layers:
        k, s, d = (*layer, 1) if len(layer) == 2 else layer
        conv = nn.Conv2d(channels, 2, k, stride=s, dilation=d, dtype=torch.float64)
        with torch.no_grad():
            conv.weight.uniform_(0.1, 1.0)
            conv.bias.fill_(0.1)
        modules += [conv, nn.BatchNorm2d(2, dtype=torch.float64), nn.ReLU()]
        channels = 2
    stack = nn.Sequential(*modules).eval()
    x = (torch.rand(1, 1, size, size, dtype=torch.float64) + 0.5).requires_grad_(True)
    out = stack(x)  # (1, 2, H_out, W_out)
    (grad,) = torch.autograd.grad(out[0, 0, 0, 0], x)  # (1, 1, size, size)
    return _support_width(grad[0, 0], 0), _support_width(grad[0, 0], 1)


@st.composite
def rf_stack(draw) -> list[tuple[int, ...]]:
    """1 to 4 layers, (kernel, stride) or (kernel, stride, dilation); field at most 91."""
    layers = []
    for _ in range(draw(st.integers(1, 4))):
        k, s = draw(st.integers(1, 4)), draw(st.integers(1, 2))
        layers.append((k, s, draw(st.integers(1, 2))) if draw(st.booleans()) else (k, s))
    return layers


@pytest.mark.receptive_field
@pytest.mark.points(1)
def test_receptive_field_examples(load_exercise):
    """gives the worked examples' receptive fields"""
    rf = load_exercise("receptive_field")
    cases = [([], 1, "an empty stack sees 1 pixel"),
             ([(3, 1)], 3, "one 3x3 conv sees 3x3"),
             ([(3, 1), (3, 1)], 5, "two 3x3 stride-1 convs see 5x5"),
             ([(3, 2), (3, 1)], 7, "after a stride-2 layer each step spans 2 input pixels"),
             ([(3, 1), (3, 2)], 5, "a layer's own stride does not widen its own field"),
             ([(3, 1, 2)], 5, "dilation 2 spreads a 3x3 kernel over 5 pixels"),
             ([(7, 2), (3, 2), (3, 1)], 19, "7 + 2 * 2 + 2 * 4")]
    for layers, expected, why in cases:
        got = rf.receptive_field(layers)
        assert got == expected, msg(f"receptive_field({layers})", repr(got),
                                     f"{expected}: {why}", RF_HINT)


@pytest.mark.receptive_field
@pytest.mark.points(2)
def test_receptive_field_matches_gradient(load_exercise):
    """equals the field measured from a gradient through a conv-BN-ReLU stack"""
    rf = load_exercise("receptive_field")

    @settings(max_examples=15)
    @given(rf_stack())
    def check(layers: list[tuple[int, ...]]) -> None:
        got = rf.receptive_field(layers)
        height, width = empirical_field(layers)
        assert height == width  # the oracle itself: square kernels, square field
        assert got == height, msg(
            f"receptive_field({layers})", repr(got),
            f"{height}: the gradient of one output unit of that stack (Conv2d, BatchNorm, "
            f"ReLU) w.r.t. the input is nonzero over {height}x{height} pixels", RF_HINT)

    check()


@pytest.mark.receptive_field
@pytest.mark.points(2)
def test_resnet18_table(load_exercise):
    """gives the lesson's ResNet-18 table: 3, 11, 25, 53, 109"""
    rf = load_exercise("receptive_field")
    got = rf.resnet18_receptive_fields()
    assert isinstance(got, dict) and set(got) == set(RESNET18_FIELDS), msg(
        "resnet18_receptive_fields()", repr(got), f"a dict with keys {list(RESNET18_FIELDS)}",
        "one entry after the stem conv and one after each stage")
    wrong = {k: got[k] for k in RESNET18_FIELDS if got[k] != RESNET18_FIELDS[k]}
    assert not wrong, msg(
        "resnet18_receptive_fields()", f"{wrong} (wrong entries)", RESNET18_FIELDS,
        "main path only: conv1 is 3x3 stride 1; each stage holds 4 convs 3x3, the first of "
        "layer2..layer4 with stride 2; 1x1 shortcuts never widen the field")


@pytest.mark.receptive_field
@pytest.mark.points(1)
def test_receptive_field_rejects_malformed(load_exercise):
    """raises ValueError on a malformed layer"""
    rf = load_exercise("receptive_field")
    cases = [[(3,)], [(3, 1), (3, 1, 1, 1)], [(0, 1)], [(3, 0)], [(3, 1, 0)], [(3, 1), (-1, 1)]]
    for layers in cases:
        try:
            outcome = f"returned {rf.receptive_field(layers)!r}"
        except ValueError:
            continue
        except NotImplementedError:
            raise
        except Exception as exc:  # noqa: BLE001  (the wrong kind of error teaches as much as none)
            outcome = f"raised {type(exc).__name__}: {exc}"
        raise AssertionError(msg(f"receptive_field({layers})", outcome, "a ValueError",
                                  "a layer is (kernel, stride) or (kernel, stride, dilation), "
                                  "each a positive int"))
