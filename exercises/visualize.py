# Student stub generated from the reference by `python -m grader stubs`; fill in the NotImplementedError parts.
"""Looking at what the first layer learned: its filters as one image.

ResNet-18's conv1 holds 64 filters of shape 3x3x3, one tiny RGB image each. Scaled one by
one to [0, 1] and tiled 8 to a row, trained filters show oriented edges and colour blobs,
like the Gabor filters of classic vision (Zeiler & Fergus 2013); untrained ones show noise.

Usage:
    >>> grid = filter_grid(model.conv1.weight.detach())   # (3, 33, 33) for 64 3x3 filters
    >>> plt.imshow(grid.permute(1, 2, 0))
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def filter_grid(weight: Tensor, nrow: int = 8, padding: int = 1) -> Tensor:
    """Tile filters (O, C, kh, kw), C in {1, 3}, into one (3, H, W) image in [0, 1].

    Each filter is min-max scaled on its own: (f - f.min()) / max(f.max() - f.min(), 1e-5).
    Layout as ``torchvision.utils.make_grid(weight, nrow, padding, normalize=True,
    scale_each=True)``, built by hand (make_grid is what the grader compares with; do not
    call it): min(nrow, O) columns, ceil(O / columns) rows, ``padding`` zero pixels
    around and between tiles, so H = rows * (kh + padding) + padding (a single filter is
    returned as it is, without padding). Single-channel filters are repeated to grey RGB.
    Example: 64 filters of 3x3, nrow 8, padding 1 -> (3, 33, 33).
    """
    raise NotImplementedError("exercise filters: write filter_grid (see the docstring above)")
