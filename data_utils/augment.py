"""Batched tensor versions of the lesson's transforms, shared by the offline and device loaders.

They reproduce ``train_transform()``/``test_transform()`` on uint8 (N, 3, H, W) batches without
PIL and without a Python loop over images, and draw their randomness from an explicit
``torch.Generator`` so a seed fixes every crop and flip.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .cifar import CIFAR10_MEAN, CIFAR10_STD


def random_crop_flip(images: torch.Tensor, padding: int = 4,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-image random crop of a zero-padded batch, then a per-image horizontal flip (p=0.5).

    Matches ``T.RandomCrop(H, padding=padding)`` + ``T.RandomHorizontalFlip()``: the padding is
    the constant 0, i.e. black pixels before normalization, as torchvision pads by default.
    Works on any dtype; apply it to the uint8 batch, before normalizing, to match the lesson.
    """
    n, c, h, w = images.shape
    dev = images.device
    padded = F.pad(images, (padding, padding, padding, padding))  # (N, C, H+2p, W+2p), zeros
    # One (top, left) offset per image in [0, 2p]; offset p is the un-shifted image.
    top = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=dev)  # (N,)
    left = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=dev)  # (N,)
    flip = torch.rand(n, generator=generator, device=dev) < 0.5  # (N,)
    rows = top[:, None] + torch.arange(h, device=dev)  # (N, H) source rows of each window
    cols = left[:, None] + torch.arange(w, device=dev)  # (N, W) source columns
    # Reading a window's columns right-to-left is the flip of the crop, so both are one gather.
    cols = torch.where(flip[:, None], cols.flip(1), cols)  # (N, W)
    batch_idx = torch.arange(n, device=dev)[:, None, None, None]  # (N, 1, 1, 1)
    chan_idx = torch.arange(c, device=dev)[None, :, None, None]  # (1, C, 1, 1)
    return padded[batch_idx, chan_idx, rows[:, None, :, None], cols[:, None, None, :]]  # (N,C,H,W)


def normalize_uint8(images: torch.Tensor, mean: Sequence[float] = CIFAR10_MEAN,
                    std: Sequence[float] = CIFAR10_STD,
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 (N, C, H, W) -> ``dtype`` ((x / 255) - mean) / std, as ToTensor + Normalize do.

    The arithmetic runs in float32 with the same operations in the same order as torchvision,
    so the float32 result equals ``test_transform()`` bit for bit; other dtypes are cast last.
    """
    x = images.to(torch.float32).div_(255)  # (N, C, H, W) in [0, 1], like ToTensor
    m = torch.as_tensor(mean, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    x = x.sub_(m).div_(s)  # (N, C, H, W), per-channel normalized
    return x if dtype == torch.float32 else x.to(dtype)
