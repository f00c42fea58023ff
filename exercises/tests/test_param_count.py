"""Self-check of ``param_count.py`` (exercise ``param_count``).

Oracles: the number of scalars torch's own modules hold (``p.numel()``), built on the ``meta``
device so that no memory is allocated, and the lesson's total for ResNet-18: 11,173,962.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from .feedback import msg

RESNET18_PARAMS = 11_173_962


def _numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def small_model() -> nn.Module:
    """Conv, BatchNorm (which also holds buffers), ReLU and a linear head, nested."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8), nn.ReLU()),
        nn.Sequential(nn.Conv2d(8, 4, (1, 3)), nn.AdaptiveAvgPool2d(1), nn.Flatten()),
        nn.Linear(4, 5))


@pytest.mark.param_count
@pytest.mark.points(1)
def test_lesson_examples(load_exercise):
    """gives the lesson's counts for conv1, a BatchNorm and the fc layer"""
    pc = load_exercise("param_count")
    cases = [("conv2d_params(3, 64, 3, bias=False)", pc.conv2d_params(3, 64, 3, bias=False),
              1_728, "in * out * k * k"),
             ("conv2d_params(3, 64, 3)", pc.conv2d_params(3, 64, 3), 1_792,
              "a bias adds one scalar per output channel"),
             ("batchnorm2d_params(64)", pc.batchnorm2d_params(64), 128,
              "a scale and a shift per channel; running statistics are buffers"),
             ("linear_params(512, 10)", pc.linear_params(512, 10), 5_130,
              "in * out weights plus out biases")]
    for call, got, expected, hint in cases:
        assert got == expected, msg(call, repr(got), expected, hint)


@pytest.mark.param_count
@pytest.mark.points(2)
def test_closed_forms_match_torch(load_exercise):
    """closed forms equal the parameter counts of nn.Conv2d, nn.BatchNorm2d and nn.Linear"""
    pc = load_exercise("param_count")
    kernels = st.one_of(st.integers(1, 7), st.tuples(st.integers(1, 7), st.integers(1, 7)))

    @settings(max_examples=20)
    @given(st.integers(1, 64), st.integers(1, 64), kernels, st.booleans())
    def check(c_in: int, c_out: int, k: int | tuple[int, int], bias: bool) -> None:
        conv = nn.Conv2d(c_in, c_out, k, bias=bias, device="meta")
        got = pc.conv2d_params(c_in, c_out, k, bias=bias)
        assert got == _numel(conv), msg(
            f"conv2d_params({c_in}, {c_out}, {k}, bias={bias})", repr(got),
            f"{_numel(conv)} (what nn.Conv2d holds)", "a tuple kernel (kh, kw) is kh x kw")
        bn = nn.BatchNorm2d(c_out, device="meta")
        got = pc.batchnorm2d_params(c_out)
        assert got == _numel(bn), msg(f"batchnorm2d_params({c_out})", repr(got),
                                       f"{_numel(bn)} (what nn.BatchNorm2d holds)",
                                       "count parameters only, not the running statistics")
        fc = nn.Linear(c_in, c_out, bias=bias, device="meta")
        got = pc.linear_params(c_in, c_out, bias=bias)
        assert got == _numel(fc), msg(f"linear_params({c_in}, {c_out}, bias={bias})",
                                       repr(got), f"{_numel(fc)} (what nn.Linear holds)",
                                       "in * out weights, plus out biases when bias=True")

    check()


@pytest.mark.param_count
@pytest.mark.points(1)
def test_count_parameters_excludes_buffers(load_exercise):
    """count_parameters counts parameters, not BatchNorm's buffers"""
    pc = load_exercise("param_count")
    model = small_model()
    expected = _numel(model)
    with_buffers = expected + sum(b.numel() for b in model.buffers())
    got = pc.count_parameters(model)
    hint = ("sum p.numel() over model.parameters(); BatchNorm's running_mean, running_var and "
            "num_batches_tracked are buffers, not parameters" if got == with_buffers else
            "sum p.numel() over model.parameters() (nested modules included)")
    assert got == expected, msg("count_parameters on Conv2d-BatchNorm2d-ReLU-Conv2d-Linear",
                                 repr(got), expected, hint)


@pytest.mark.param_count
@pytest.mark.points(1)
def test_count_parameters_trainable_only(load_exercise):
    """count_parameters(trainable_only=True) skips frozen parameters"""
    pc = load_exercise("param_count")
    model = small_model()
    for p in model[0].parameters():  # freeze the first conv and its BatchNorm
        p.requires_grad_(False)
    expected = sum(p.numel() for p in model.parameters() if p.requires_grad)
    got = pc.count_parameters(model, trainable_only=True)
    assert got == expected, msg("count_parameters(model, trainable_only=True), first conv + "
                                 "BatchNorm frozen", repr(got), expected,
                                 "count only parameters with requires_grad=True")
    got = pc.count_parameters(model)
    assert got == _numel(model), msg("count_parameters(model) with some layers frozen",
                                      repr(got), _numel(model),
                                      "without trainable_only, frozen parameters count too")


@pytest.mark.param_count
@pytest.mark.points(1)
def test_parameter_table(load_exercise):
    """parameter_table lists (name, shape, count) in named_parameters() order"""
    pc = load_exercise("param_count")
    model = nn.Sequential()
    model.add_module("zeta", nn.Conv2d(3, 4, 3))  # names out of alphabetical order
    model.add_module("alpha", nn.BatchNorm2d(4))
    model.add_module("head", nn.Linear(4, 2, bias=False))
    expected = [(name, tuple(p.shape), p.numel()) for name, p in model.named_parameters()]
    got = pc.parameter_table(model)
    rows = [tuple(row) for row in got] if isinstance(got, list) else got
    assert rows == expected, msg("parameter_table(Sequential(zeta=Conv2d, alpha=BatchNorm2d, "
                                  "head=Linear))", repr(got), expected,
                                  "one row per named_parameters() entry, in that order: "
                                  "(name, tuple(shape), number of scalars)")


@pytest.mark.param_count
@pytest.mark.points(2)
def test_resnet18_param_count(load_exercise):
    """resnet18_param_count() is 11,173,962, and the fc layer follows num_classes"""
    pc = load_exercise("param_count")
    got = pc.resnet18_param_count()
    assert got == RESNET18_PARAMS, msg(
        "resnet18_param_count()", repr(got), f"{RESNET18_PARAMS:,}",
        "stem conv 3->64 + BN; per stage two blocks of two 3x3 convs + two BNs, no conv bias; "
        "a 1x1 conv + BN shortcut where the width changes (layer2..layer4); fc 512->10")
    got = pc.resnet18_param_count(num_classes=100)
    expected = RESNET18_PARAMS + 90 * 512 + 90
    assert got == expected, msg("resnet18_param_count(num_classes=100)", repr(got),
                                 f"{expected:,}", "only the fc layer depends on num_classes")
