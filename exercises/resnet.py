# Student stub generated from the reference by `python -m grader stubs`; fill in the NotImplementedError parts.
"""ResNet-18 for CIFAR-10, a plain deep net, its residual twin, and Kaiming initialisation.

CIFAR images are 32x32, so the stem is a 3x3 stride-1 conv with no max-pool (the ImageNet
ResNet's 7x7 stride-2 conv + max-pool would shrink 32x32 to 8x8 before layer1).

    stage    blocks  width  stride  output (N, C, H, W) for N x 3 x 32 x 32
    conv1    -        64     1      (N,  64, 32, 32)
    layer1   2        64     1      (N,  64, 32, 32)
    layer2   2       128     2      (N, 128, 16, 16)
    layer3   2       256     2      (N, 256,  8,  8)
    layer4   2       512     2      (N, 512,  4,  4)
    pool+fc  -        10     -      (N, 10)          11,173,962 parameters in all

Plain vs residual, honestly. The usual story is "gradients vanish in deep plain nets". With
BatchNorm at PyTorch's default init that is not what you measure: in a 50-layer plain
conv-BN-ReLU stack the per-layer gradient norms *grow* toward the input (first/last conv
about 10^3 apart), because BN at initialisation makes the backward pass explode with depth
(Yang et al. 2019, "A Mean Field Theory of Batch Normalization"); without BN they vanish
instead. Either way the spread log10(max/min) across layers is huge, and the optimiser cannot
use one learning rate for all layers: that is the degradation He et al. (2015) observed. The
residual twin keeps the spread within about one order of magnitude, because each block adds
to an identity path (dy/dx = I + dF/dx), and behaves like an ensemble of shallower paths
(Veit et al. 2016).

Usage:
    >>> model = ResNet18()
    >>> model(torch.randn(2, 3, 32, 32)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .blocks import BasicBlock


class ResNet18(nn.Module):
    """CIFAR ResNet-18: 3x3 stem, four stages of two BasicBlocks (strides 1, 2, 2, 2), fc.

    Attributes: conv1, bn1, layer1..layer4 (each an nn.Sequential of two BasicBlocks), fc.
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        raise NotImplementedError("exercise resnet18: write ResNet18.__init__ (see the class docstring)")

    @staticmethod
    def _make_layer(in_ch: int, out_ch: int, num_blocks: int, stride: int) -> nn.Sequential:
        """One stage: the first block may downsample (stride) and widen; the rest keep shape."""
        raise NotImplementedError("exercise resnet18: write ResNet18._make_layer (see the docstring above)")

    def forward(self, x: Tensor) -> Tensor:
        """(N, 3, 32, 32) -> logits (N, num_classes)."""
        raise NotImplementedError("exercise resnet18: write ResNet18.forward (see the docstring above)")


class PlainNet(nn.Module):
    """The lesson's plain stack: ``depth - 1`` conv3x3-BN-ReLU layers at width 64, pool, fc.

    ``depth`` counts weight layers: a stem conv (3 -> 64), ``depth - 2`` convs 64 -> 64, and
    the fc layer. Convs keep their default bias, as in the lesson. No shortcut anywhere.
    """

    def __init__(self, num_classes: int = 10, depth: int = 18) -> None:
        super().__init__()
        raise NotImplementedError("exercise plain_vs_residual: write PlainNet.__init__ (see the class docstring)")

    def forward(self, x: Tensor) -> Tensor:
        """(N, 3, H, W) -> logits (N, num_classes)."""
        raise NotImplementedError("exercise plain_vs_residual: write PlainNet.forward (see the docstring above)")


class ResidualNet(nn.Module):
    """PlainNet's residual twin: the same stem, ``(depth - 2) // 2`` BasicBlock(64, 64), pool, fc.

    Same depth in weight layers and the same width as ``PlainNet(depth)``; the only change is
    that every two convs are wrapped in an identity shortcut. ``depth`` must be even, >= 4.
    """

    def __init__(self, num_classes: int = 10, depth: int = 18) -> None:
        super().__init__()
        raise NotImplementedError("exercise plain_vs_residual: write ResidualNet.__init__ (see the class docstring)")

    def forward(self, x: Tensor) -> Tensor:
        """(N, 3, H, W) -> logits (N, num_classes)."""
        raise NotImplementedError("exercise plain_vs_residual: write ResidualNet.forward (see the docstring above)")


def kaiming_init_(model: nn.Module) -> nn.Module:
    """Initialise in place and return ``model``:

    convs: Kaiming-normal, mode="fan_out", nonlinearity="relu" (std = sqrt(2 / (C_out k k))),
    drawn from torch's global generator as torch.nn.init does (the grader seeds it and replays
    the draw); conv biases (if any) 0; BatchNorm: weight 1, bias 0. Linear layers keep their
    default.
    """
    raise NotImplementedError("exercise init: write kaiming_init_ (see the docstring above)")
