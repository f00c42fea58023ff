# Student stub generated from the reference by `python -m grader stubs`; fill in the NotImplementedError parts.
"""Receptive fields: how much of the input one output unit can see.

For a stack of layers with kernels k_l, strides s_l and dilations d_l:

    r_l = r_{l-1} + d_l (k_l - 1) * prod_{i < l} s_i,    r_0 = 1

The product of the earlier strides is the "jump": how many input pixels one step of layer l's
input grid spans. Usage:
    >>> receptive_field([(3, 1), (3, 1)])
    5
"""

from __future__ import annotations

from collections.abc import Sequence

Layer = tuple[int, int] | tuple[int, int, int]  # (kernel, stride) or (kernel, stride, dilation)


def receptive_field(layers: Sequence[Layer]) -> int:
    """Receptive field (in input pixels, per axis) of the last layer of ``layers``.

    r = 1; jump = 1; for each layer: r += d (k - 1) * jump; jump *= s.

    Example: two 3x3 stride-1 convs see 5x5; a 3x3 stride-2 conv followed by a 3x3 conv sees
    3 + 2 * 2 = 7. An empty stack sees 1 pixel. Raises ValueError on a malformed layer
    (not 2 or 3 entries, or a non-positive kernel, stride or dilation).
    """
    raise NotImplementedError("exercise receptive_field: write receptive_field (see the docstring above)")


def resnet18_receptive_fields() -> dict[str, int]:
    """Receptive field after conv1 and after each stage of the CIFAR ResNet-18 (main path).

    conv1 is 3x3 stride 1; each stage is two BasicBlocks of two 3x3 convs, the first conv of
    layer2..layer4 with stride 2. Shortcuts are 1x1 and never widen the field.

        conv1 3, layer1 11, layer2 25, layer3 53, layer4 109

    109 > 32: after layer4 every unit sees the whole 32x32 image (and the padding around it),
    so the final 4x4 map can be pooled into a global descriptor.
    """
    raise NotImplementedError("exercise receptive_field: write resnet18_receptive_fields (see the docstring above)")
