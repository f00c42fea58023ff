"""A device-resident loader: the whole uint8 dataset lives on the device, batches never leave it.

CIFAR-10 is 150 MB as uint8, so it fits on any GPU; doing crop, flip and normalization there, a
batch at a time and vectorised over the batch, removes the per-image PIL work and worker
processes that otherwise bound a small ResNet's training speed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import TensorDataset

from .augment import normalize_uint8, random_crop_flip
from .cifar import CIFAR10_MEAN, CIFAR10_STD

PADDING = 4  # the lesson's RandomCrop(32, padding=4)


class DeviceLoader:
    """Iterates (images (B, 3, H, W) ``dtype``, labels (B,) int64) batches on ``device``.

    Per batch, on the device: when ``train``, a random crop of the zero-padded image (black
    padding, as torchvision's ``RandomCrop`` pads with 0 before ``ToTensor``) and a random
    horizontal flip, per image but vectorised; then scale to [0, 1] and normalize with the
    CIFAR-10 mean/std. When ``train`` the order is reshuffled every epoch.

    Randomness comes from one ``torch.Generator`` on ``device`` seeded with ``seed``: a new
    loader with the same seed replays the same epochs on the same device type (CPU and CUDA
    generators draw different streams). ``drop_last`` defaults to ``train``, so evaluation
    sees every sample unless asked otherwise.
    """

    def __init__(self, images_uint8: torch.Tensor, labels: torch.Tensor, batch_size: int,
                 device: torch.device | str, train: bool = True, seed: int = 0,
                 drop_last: bool | None = None, channels_last: bool = False,
                 dtype: torch.dtype = torch.float32) -> None:
        if images_uint8.dtype != torch.uint8 or images_uint8.dim() != 4:
            raise TypeError("images_uint8 must be a uint8 (N, C, H, W) tensor, got "
                            f"{images_uint8.dtype} {tuple(images_uint8.shape)}")
        if len(labels) != len(images_uint8):
            raise ValueError(f"{len(images_uint8)} images but {len(labels)} labels")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        # One upload for the whole run; contiguous so every batch gather reads dense memory.
        self.images = images_uint8.to(device).contiguous()  # (N, C, H, W) uint8
        self.device = self.images.device  # resolved: "cuda" becomes "cuda:0"
        self.labels = torch.as_tensor(labels, dtype=torch.int64).to(self.device)  # (N,)
        self.batch_size = batch_size
        self.train = train
        self.drop_last = train if drop_last is None else drop_last
        self.channels_last = channels_last
        self.dtype = dtype
        self.generator = torch.Generator(device=self.device).manual_seed(seed)

    @property
    def num_samples(self) -> int:
        return len(self.labels)

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n, b = self.num_samples, self.batch_size
        order = (torch.randperm(n, generator=self.generator, device=self.device)
                 if self.train else None)  # (N,) fresh permutation each epoch
        for k in range(len(self)):
            if order is None:  # eval: contiguous slices, no index gather needed
                x, y = self.images[k * b : (k + 1) * b], self.labels[k * b : (k + 1) * b]
            else:
                idx = order[k * b : (k + 1) * b]  # (B,)
                x, y = self.images[idx], self.labels[idx]  # (B, C, H, W) uint8, (B,)
            if self.train:  # augment the uint8 batch, so padding is black before normalizing
                x = random_crop_flip(x, PADDING, generator=self.generator)  # (B, C, H, W)
            x = normalize_uint8(x, CIFAR10_MEAN, CIFAR10_STD, self.dtype)  # (B, C, H, W)
            if self.channels_last:  # NHWC strides for tensor-core convolutions
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, y


def _as_uint8_tensors(data: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 (N, C, H, W), labels (N,)) from a TensorDataset, a pair, or a torchvision CIFAR."""
    if isinstance(data, TensorDataset):
        images, labels = data.tensors[0], data.tensors[1]
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        images, labels = data
    elif hasattr(data, "data") and hasattr(data, "targets"):
        # torchvision CIFAR keeps the raw images as a numpy (N, H, W, C) uint8 array.
        images = torch.as_tensor(data.data).permute(0, 3, 1, 2).contiguous()  # (N, C, H, W)
        labels = torch.as_tensor(data.targets, dtype=torch.int64)  # (N,)
    else:
        raise TypeError("expected a TensorDataset, an (images, labels) pair or a dataset with "
                        f".data (N, H, W, C) and .targets, got {type(data).__name__}")
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
        raise TypeError("images must be uint8 (raw pixels); the loader normalizes them itself")
    return images, torch.as_tensor(labels, dtype=torch.int64)


def to_device_loader(dataset_or_tensors: Any, batch_size: int, device: torch.device | str,
                     **kwargs: Any) -> DeviceLoader:
    """A :class:`DeviceLoader` over a TensorDataset of uint8 images (e.g. ``synthetic_cifar``),
    an ``(images, labels)`` pair, or a torchvision CIFAR10 dataset (its transform is ignored:
    the loader applies the lesson's transforms itself). ``kwargs`` go to DeviceLoader.
    """
    images, labels = _as_uint8_tensors(dataset_or_tensors)
    return DeviceLoader(images, labels, batch_size, device, **kwargs)
