"""Hidden graders for ``receptive_field.py``: exercise ``receptive_field`` (6 points).

Besides the reference, one property uses an oracle that needs no solution: the support of
the gradient of one output unit with respect to the input, in a ReLU conv net with positive
weights built here, spans exactly the receptive field.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from torch import nn

from grader.feedback import check_equal, fail
from grader.packs.day02 import strategies as S
from grader.packs.day02.probes import receptive_field as P
from grader.probes import ProbeFailure

RF_HINT = ("r starts at 1 and grows by d(k - 1) times the jump, the product of the strides "
           "of all EARLIER layers; a layer's own stride only affects the layers after it")
RESNET18_FIELDS = {"conv1": 3, "layer1": 11, "layer2": 25, "layer3": 53, "layer4": 109}


# stacks whose fields the student's receptive_field must compute before a constant answer (the
# documented ResNet-18 table) or a raised ValueError counts: evidence of the computation
COMPUTED_STACKS = ([(3, 1), (3, 1)], [(3, 2), (3, 1), (5, 1)], [(3, 1, 2), (2, 2), (3, 1)])


def _call(layers: list) -> str:
    return f"receptive_field({layers!r})"


def require_computed(student, reference, claim: str) -> None:
    """``claim`` scores only when receptive_field computes a few stacks right."""
    for layers in COMPUTED_STACKS:
        case = {"layers": layers}
        try:
            got = student.run(P.field, case)
        except ProbeFailure as failure:
            got = f"failed: {failure.message}"
        want = reference.run(P.field, case)
        if type(got) is not int or got != want:
            fail(f"{claim}, backed by receptive_field computing plain stacks: {_call(layers)}",
                 f"the claim cannot be verified: {_call(layers)} gave {got!r}"[:300], want,
                 RF_HINT + "; a right constant or error counts only with the function "
                 "computing fields", raw=True)


@pytest.mark.receptive_field
@pytest.mark.points(2)
@given(layers=S.rf_stack(max_len=8))
def test_field_kernel_stride(student, reference, layers):
    """matches the recursion on (kernel, stride) stacks of 0 to 8 layers

    Evidence: the returned int against the reference's on drawn stacks.
    """
    case = {"layers": layers}
    check_equal(student.run(P.field, case), reference.run(P.field, case), _call(layers),
                RF_HINT + "; an empty stack sees 1 pixel")


@pytest.mark.receptive_field
@pytest.mark.points(1)
@given(layers=S.rf_stack(min_len=1, max_len=8, dilated=True))
def test_field_with_dilation(student, reference, layers):
    """handles (kernel, stride, dilation) layers mixed with (kernel, stride) ones

    Evidence: the returned int against the reference's on drawn stacks.
    """
    case = {"layers": layers}
    check_equal(student.run(P.field, case), reference.run(P.field, case), _call(layers),
                "a dilated kernel spans d(k - 1) + 1 pixels of its input, so it adds "
                "d(k - 1) times the jump; a 2-tuple layer has dilation 1")


@pytest.mark.receptive_field
@pytest.mark.points(1)
def test_resnet18_table(student, reference):
    """gives ResNet-18's fields after conv1 and layer1..layer4 as ints

    Evidence: the table (its values are printed in the lesson), scored with receptive_field
    computing plain stacks right.
    """
    got = student.run(P.resnet18_table, {})
    expected = RESNET18_FIELDS  # facts of the lesson (docs/design.md), no reference needed
    tried = "resnet18_receptive_fields()"
    hint = ("conv1 is one 3x3 conv; each stage adds two BasicBlocks of two 3x3 convs on the "
            "main path (the first with stride 2 in layer2..layer4); shortcuts never widen it")
    if not isinstance(got, dict):
        fail(tried, got, "a dict {'conv1': int, 'layer1': int, ...}", hint, raw=True)
    if sorted(got) != sorted(expected):
        fail(tried, f"keys {sorted(got)}", f"keys {sorted(expected)}", hint, raw=True)
    wrong = {k: got[k] for k in expected if got[k] != expected[k] or type(got[k]) is not int}
    if wrong:
        fail(tried, wrong, {k: expected[k] for k in wrong}, hint)
    require_computed(student, reference, tried)


# -- the gradient-support oracle --------------------------------------------------------------
def _layer(layer: tuple[int, ...]) -> tuple[int, int, int]:
    return (*layer, 1) if len(layer) == 2 else layer  # type: ignore[return-value]


def support_width(layers: list[tuple[int, ...]], seed: int, channels: int = 2) -> int:
    """Width (per axis) of the input region whose pixels change the centre output unit of a
    conv-BN-ReLU stack with these layers, positive weights and positive inputs, measured
    with autograd. Positive everything keeps every ReLU open, so no path cancels: the
    gradient is non-zero exactly on the receptive field (dilation leaves holes inside it,
    so the width is the extent from the first to the last non-zero pixel)."""
    g = torch.Generator().manual_seed(seed)
    modules: list[nn.Module] = []
    for k, s, d in map(_layer, layers):
        conv = nn.Conv2d(channels, channels, k, stride=s, dilation=d, bias=True)
        bn = nn.BatchNorm2d(channels)
        with torch.no_grad():
            conv.weight.copy_(torch.rand(conv.weight.shape, generator=g) + 0.1)
            conv.bias.copy_(torch.rand(channels, generator=g))
            bn.weight.copy_(torch.rand(channels, generator=g) + 0.5)
        modules += [conv, bn, nn.ReLU()]
    net = nn.Sequential(*modules).double().eval()  # BN eval: a positive per-channel scale
    # input size: enough for a non-empty output (valid convs, no padding) plus a margin, so
    # the measured region of the centre unit cannot touch the border
    size = 1
    for k, s, d in map(_layer, reversed(layers)):
        size = (size - 1) * s + d * (k - 1) + 1
    size += 4
    x = (torch.rand(1, channels, size, size, generator=g, dtype=torch.float64) + 0.5)
    x.requires_grad_(True)  # (1, C, H, W)
    out = net(x)  # (1, C, h, w)
    out[0, :, out.shape[2] // 2, out.shape[3] // 2].sum().backward()
    seen = x.grad[0].abs().sum(0) > 0  # (H, W)
    rows = torch.nonzero(seen.any(1)).flatten()
    cols = torch.nonzero(seen.any(0)).flatten()
    height, width = int(rows[-1] - rows[0]) + 1, int(cols[-1] - cols[0]) + 1
    assert height == width  # square kernels: one width per axis
    return width


@pytest.mark.receptive_field
@pytest.mark.points(1.5)
@settings(max_examples=12)
@given(layers=S.rf_stack(min_len=1, max_len=4, dilated=True, max_kernel=5, max_dilation=2),
       seed=S.seeds)
def test_field_equals_gradient_support(student, layers, seed):
    """equals the width of the input region that moves an output unit (autograd oracle)

    Evidence: the returned int against the support of an autograd gradient the grader
    measures itself (an oracle).
    """
    got = student.run(P.field, {"layers": layers})
    expected = support_width(layers, seed)
    if got != expected or type(got) is not int:
        fail(_call(layers), repr(got),
             f"{expected} (in a conv-BN-ReLU net with these layers and positive weights, the "
             f"gradient of one output unit is non-zero across a {expected}x{expected} input "
             "square)", RF_HINT, raw=True)


@pytest.mark.receptive_field
@pytest.mark.points(0.5)
@settings(max_examples=10)
@given(layers=S.bad_rf_stack())
def test_malformed_layer_raises(student, reference, layers):
    """raises ValueError on a malformed layer

    Evidence: the name of what was raised, scored with well-formed stacks computed right.
    """
    check_equal(student.run(P.field_error, {"layers": layers}), "ValueError", _call(layers),
                "a layer is (kernel, stride) or (kernel, stride, dilation) with positive "
                "entries; anything else must raise ValueError")
    require_computed(student, reference, _call(layers))

