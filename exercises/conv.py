# Student stub generated from the reference by `python -m grader stubs`; fill in the NotImplementedError parts.
"""Convolution arithmetic and a convolution built by hand.

A convolution slides a kernel across the input and takes a dot product at every position:

    output[n, o, i, j] = bias[o] + sum_{c, m, k} input[n, c, i*s + m*d - p, j*s + k*d - p]
                                                  * weight[o, c, m, k]

(deep-learning "convolution" is really cross-correlation: the kernel is not flipped).

Usage:
    >>> conv_output_size(32, kernel_size=3, stride=1, padding=1)
    32
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

IntPair = int | tuple[int, int]


def _pair(value: IntPair, name: str) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return value
    raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0,
                     dilation: int = 1) -> int:
    """Output length of a convolution along one spatial axis.

    H_out = floor((H_in + 2p - d(k - 1) - 1) / s + 1)

    The dilated kernel spans ``d(k - 1) + 1`` pixels; the padded input offers ``H_in + 2p``
    pixels; the kernel fits at ``floor((H_in + 2p - span) / s) + 1`` positions.

    Examples: the lesson's 5x5 input and 3x3 kernel give 3; a 32x32 CIFAR image keeps its size
    under a 3x3 conv with padding 1 ("same" padding p = floor(k/2)); stride 2 halves it to 16.

    Raises ValueError for a non-positive size, kernel, stride or dilation, a negative padding,
    or a kernel that does not fit in the padded input (an empty output).
    """
    raise NotImplementedError("exercise conv_output_size: write conv_output_size (see the docstring above)")


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntPair = 1,
           padding: IntPair = 0, dilation: IntPair = 1) -> Tensor:
    """2-D convolution by hand; same shapes and values as ``torch.nn.functional.conv2d``.

    input (N, C, H, W), weight (O, C, kh, kw), bias (O,) or None -> output (N, O, H_out, W_out)
    with H_out = conv_output_size(H, kh, s, p, d) and likewise for W.

    No call into torch's convolution operators: pad, then for every kernel offset (m, k) take
    the strided slice of the input that this offset touches and contract it over channels
    with ``weight[:, :, m, k]``. Autograd differentiates the slices and products for free.

    Worked example (the lesson's): the 5x5 checkerboard of ones and zeros with the 3x3 kernel
    [[1, 0, 1], [0, 1, 0], [1, 0, 1]] gives the 3x3 output [[5, 0, 5], [0, 5, 0], [5, 0, 5]]:
    where the kernel sits on a "1" centre all five ones line up with ones.
    """
    raise NotImplementedError("exercise conv2d: write conv2d (see the docstring above)")
