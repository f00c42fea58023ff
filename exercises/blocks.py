# Student stub generated from the reference by `python -m grader stubs`; fill in the NotImplementedError parts.
"""The residual BasicBlock (ResNet-18/34): y = relu(F(x) + shortcut(x)).

    x ──► conv3x3(stride) ─► BN ─► ReLU ─► conv3x3 ─► BN ──► (+) ─► ReLU ─► y
    └──────────── identity, or 1x1 conv(stride) + BN ──────────┘

The gradient through a block is dF/dx + I: even when the residual branch contributes
nothing, the identity carries the gradient back unchanged (the "gradient highway").

Usage:
    >>> block = BasicBlock(64, 128, stride=2)
    >>> block(torch.randn(8, 64, 32, 32)).shape
    torch.Size([8, 128, 16, 16])
"""

from __future__ import annotations

import torch  # noqa: F401  (used in the usage example above)
import torch.nn.functional as F
from torch import Tensor, nn


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with a shortcut; ``expansion = 1`` (output width = out_channels).

    in: (N, in_channels, H, W) -> out: (N, out_channels, H/stride, W/stride).
    The shortcut is the identity when shapes already match (stride 1, same width) and a
    1x1 conv with the block's stride followed by BatchNorm otherwise (the "projection").
    Convs carry no bias: each is followed by a BatchNorm whose shift does that job.
    """

    expansion = 1

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        raise NotImplementedError("exercise basic_block: write BasicBlock.__init__ (see the class docstring)")

    def forward(self, x: Tensor) -> Tensor:
        """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)); the add comes before the ReLU."""
        raise NotImplementedError("exercise basic_block: write BasicBlock.forward (see the docstring above)")
