"""Self-check of ``blocks.py`` (exercise ``basic_block``).

Oracles: shapes, parameter counts in closed form (the lesson's 230,144 for BasicBlock(64, 128, 2)),
and the block's own intermediate values read with forward hooks: whatever your attributes are
called, the output must be relu(residual branch + shortcut), and with the last BatchNorm zeroed
an identity block must pass relu(x) and its gradient straight through.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from .feedback import msg

STRUCTURE = ("conv3x3(stride) - BN - ReLU - conv3x3 - BN, plus the shortcut, add, then ReLU; "
             "convs without bias (the BN after each has its own shift)")


def _numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _convs(block: nn.Module) -> list[nn.Conv2d]:
    return [m for m in block.modules() if isinstance(m, nn.Conv2d)]


def _bns(block: nn.Module) -> list[nn.BatchNorm2d]:
    return [m for m in block.modules() if isinstance(m, nn.BatchNorm2d)]


def _run_with_bn_outputs(block: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list]:
    """Forward ``x``; also return [(bn module, a copy of its output)] in the order BNs ran."""
    seen: list[tuple[nn.Module, torch.Tensor]] = []
    hooks = [bn.register_forward_hook(lambda m, i, o: seen.append((m, o.detach().clone())))
             for bn in _bns(block)]
    try:
        out = block(x)
    finally:
        for h in hooks:
            h.remove()
    return out, seen


def _expected_count(c_in: int, c_out: int, stride: int) -> int:
    main = 9 * c_in * c_out + 9 * c_out * c_out + 2 * 2 * c_out  # two 3x3 convs, two BNs
    projection = stride != 1 or c_in != c_out
    return main + (c_in * c_out + 2 * c_out if projection else 0)  # 1x1 conv + BN


@pytest.mark.basic_block
@pytest.mark.points(2)
@pytest.mark.parametrize("c_in, c_out, stride, size, out_size", [
    (16, 16, 1, 8, 8), (16, 32, 2, 8, 4), (16, 32, 1, 8, 8), (16, 16, 2, 8, 4), (8, 8, 2, 7, 4)])
def test_output_shape(load_exercise, c_in, c_out, stride, size, out_size):
    """maps (N, C_in, H, W) to (N, C_out, H/stride, W/stride)"""
    blocks = load_exercise("blocks")
    torch.manual_seed(0)
    block = blocks.BasicBlock(c_in, c_out, stride)
    out = block(torch.randn(2, c_in, size, size))  # (N, C_in, H, W)
    expected = (2, c_out, out_size, out_size)
    got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    assert got == expected, msg(
        f"BasicBlock({c_in}, {c_out}, stride={stride}) on an input of shape (2, {c_in}, "
        f"{size}, {size})", got, expected,
        "3x3 convs with padding 1; only the first conv and the shortcut carry the stride; "
        "the shortcut must produce the same shape as the residual branch")


@pytest.mark.basic_block
@pytest.mark.points(1)
def test_identity_shortcut_has_no_parameters(load_exercise):
    """uses a parameter-free identity shortcut when shapes match"""
    blocks = load_exercise("blocks")
    block = blocks.BasicBlock(16, 16, 1)
    ones = [tuple(c.kernel_size) for c in _convs(block) if tuple(c.kernel_size) == (1, 1)]
    assert not ones and len(_bns(block)) == 2, msg(
        "BasicBlock(16, 16, stride=1)", f"{len(_convs(block))} convs ({len(ones)} of them 1x1) "
        f"and {len(_bns(block))} BatchNorms", "two 3x3 convs and two BatchNorms, nothing more",
        "stride 1 and the same width: the shortcut is the identity (no conv, no BN)")
    got, expected = _numel(block), _expected_count(16, 16, 1)
    assert got == expected, msg("BasicBlock(16, 16, stride=1): count its parameters",
                                 f"{got:,}", f"{expected:,}", STRUCTURE)


@pytest.mark.basic_block
@pytest.mark.points(1)
@pytest.mark.parametrize("c_in, c_out, stride", [(16, 32, 1), (16, 16, 2), (16, 32, 2)])
def test_projection_shortcut(load_exercise, c_in, c_out, stride):
    """uses a 1x1 conv + BatchNorm shortcut when the shape changes"""
    blocks = load_exercise("blocks")
    block = blocks.BasicBlock(c_in, c_out, stride)
    tried = f"BasicBlock({c_in}, {c_out}, stride={stride})"
    ones = [c for c in _convs(block) if tuple(c.kernel_size) == (1, 1)]
    assert len(ones) == 1, msg(tried, f"{len(ones)} 1x1 convs", "exactly one (the shortcut)",
                                "when the stride or the width changes, x must be projected: "
                                "a 1x1 conv with the block's stride, then BatchNorm")
    conv = ones[0]
    got = (conv.in_channels, conv.out_channels, tuple(conv.stride), conv.bias is not None)
    want = (c_in, c_out, (stride, stride), False)
    assert got == want, msg(tried + ": the 1x1 conv's (in, out, stride, has bias)", got, want,
                             "the 1x1 conv maps C_in to C_out with the block's stride, no bias")
    assert len(_bns(block)) == 3, msg(tried, f"{len(_bns(block))} BatchNorms",
                                       "3: two on the residual branch, one after the 1x1 conv",
                                       "a projection shortcut is nn.Sequential(1x1 conv, "
                                       "BatchNorm2d(C_out))")
    got_n, expected_n = _numel(block), _expected_count(c_in, c_out, stride)
    assert got_n == expected_n, msg(tried + ": count its parameters", f"{got_n:,}",
                                     f"{expected_n:,}", STRUCTURE)


@pytest.mark.basic_block
@pytest.mark.points(1)
def test_lesson_parameter_count(load_exercise):
    """BasicBlock(64, 128, stride=2) holds the lesson's 230,144 parameters"""
    blocks = load_exercise("blocks")
    got = _numel(blocks.BasicBlock(64, 128, 2))
    assert got == 230_144, msg("BasicBlock(64, 128, stride=2): count its parameters",
                                f"{got:,}", "230,144 = 73,728 + 147,456 + 8,192 (1x1 shortcut) "
                                "+ 3 x 256 (three BNs)", STRUCTURE)


@pytest.mark.basic_block
@pytest.mark.points(2)
@pytest.mark.parametrize("c_in, c_out, stride", [(8, 8, 1), (8, 16, 2)])
def test_add_before_relu(load_exercise, c_in, c_out, stride):
    """outputs relu(residual branch + shortcut): the add comes before the last ReLU"""
    blocks = load_exercise("blocks")
    torch.manual_seed(1)
    block = blocks.BasicBlock(c_in, c_out, stride)
    x = torch.randn(4, c_in, 6, 6)  # (N, C_in, H, W)
    with torch.no_grad():
        out, seen = _run_with_bn_outputs(block, x)
    # the two added terms are BN outputs (branch, projection) or x itself (identity)
    terms = [o for _, o in seen] + [x]
    ok = any(a.shape == b.shape == out.shape and torch.allclose(out, (a + b).relu(), atol=1e-5)
             for a, b in itertools.combinations(terms, 2))
    negative = bool((out < 0).any()) if isinstance(out, torch.Tensor) else False
    assert ok, msg(
        f"BasicBlock({c_in}, {c_out}, stride={stride}): compare the output with relu(a + b) for "
        "every pair of BatchNorm outputs (and the input x) seen during the forward",
        "no pair matches" + (" (and the output has negative values: no final ReLU?)"
                             if negative else ""),
        "output == relu(bn2 output + shortcut output)",
        "y = relu(F(x) + shortcut(x)): no ReLU on the branch after its second BN, the add "
        "first, then one ReLU")


@pytest.mark.basic_block
@pytest.mark.points(2)
def test_gradient_highway(load_exercise):
    """with its last BatchNorm zeroed, an identity block passes relu(x) and its gradient"""
    blocks = load_exercise("blocks")
    torch.manual_seed(2)
    block = blocks.BasicBlock(8, 8, 1)
    _, seen = _run_with_bn_outputs(block, torch.randn(2, 8, 5, 5))
    assert seen, msg("BasicBlock(8, 8): look for its BatchNorm2d layers", "none ran",
                      "two BatchNorm2d layers", STRUCTURE)
    last_bn = seen[-1][0]
    with torch.no_grad():  # the residual branch now adds exactly 0: F(x) = 0
        last_bn.weight.zero_()
        last_bn.bias.zero_()
    x = torch.randn(2, 8, 5, 5, requires_grad=True)  # (N, C, H, W)
    out = block(x)
    tried = ("BasicBlock(8, 8) with the weight and bias of its last BatchNorm set to 0, "
             "so that F(x) = 0")
    assert torch.allclose(out, x.relu(), atol=1e-6), msg(
        tried, f"output differs from relu(x) by up to {(out - x.relu()).abs().max().item():.3g}",
        "relu(x): the identity shortcut carries x through unchanged",
        "the shortcut of a block whose shapes match must be the identity, added before the "
        "final ReLU")
    out.sum().backward()
    expected = (x > 0).to(x.dtype)
    assert x.grad is not None and torch.allclose(x.grad, expected), msg(
        tried + ", then backward of output.sum()", "a gradient other than 1 where x > 0",
        "dy/dx = I + dF/dx = I where x > 0 (0 elsewhere): the gradient highway",
        "add x itself (not a copy cut from the graph) to the branch output")
