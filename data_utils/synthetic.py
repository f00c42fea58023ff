"""Offline stand-ins for CIFAR-10: no network, no files, deterministic for a seed.

``synthetic_cifar`` draws each image as its class's fixed smooth colour template plus noise, so
the label depends on the image and a small net learns it in a few steps (tests, CPU smoke runs).
``fake_cifar`` is torchvision's ``FakeData``: pure noise with random labels, so nothing to learn,
but it goes through the real PIL + ``test_transform()`` path.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, TensorDataset
from torchvision import datasets

from .augment import normalize_uint8, random_crop_flip
from .cifar import CIFAR10_MEAN, CIFAR10_STD, test_transform

_TEMPLATE_GRID = 4  # templates are 4x4 colour grids blown up to the image size: low frequency
_NOISE_STD = 40.0  # per-pixel noise in uint8 units: visible, yet far below template distances


def synthetic_cifar(n: int = 512, num_classes: int = 10, seed: int = 0,
                    image_size: int = 32) -> TensorDataset:
    """TensorDataset of (uint8 images (n, 3, S, S), int64 labels (n,) in [0, num_classes)).

    Labels are balanced (a shuffled ``arange(n) % num_classes``). The class templates are drawn
    first from the seeded generator, so they depend on ``seed`` but not on ``n``: to hold out
    data with the same classes, draw ``n_train + n_test`` images and split them.
    """
    g = torch.Generator().manual_seed(seed)
    grid = torch.rand(num_classes, 3, _TEMPLATE_GRID, _TEMPLATE_GRID, generator=g)  # (K,3,4,4)
    # Bilinear upsampling keeps the templates smooth, so a 4-pixel crop shift keeps the class.
    templates = F.interpolate(grid, size=(image_size, image_size), mode="bilinear",
                              align_corners=False)  # (K, 3, S, S) in [0, 1]
    templates = 32.0 + 192.0 * templates  # (K, 3, S, S): room for noise on both sides of 0..255
    labels = (torch.arange(n) % num_classes)[torch.randperm(n, generator=g)]  # (n,) int64
    noise = _NOISE_STD * torch.randn(n, 3, image_size, image_size, generator=g)  # (n, 3, S, S)
    images = (templates[labels] + noise).round().clamp(0, 255).to(torch.uint8)  # (n, 3, S, S)
    return TensorDataset(images, labels)


class _Uint8ImageDataset(Dataset):
    """Applies the lesson's transforms to uint8 (3, H, W) tensors, with seeded randomness.

    torchvision's random transforms draw from the global RNG; drawing from our own generator
    keeps the loaders reproducible for a seed whatever else the program does with the RNG.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, normalize: bool,
                 augment: bool, generator: torch.Generator) -> None:
        self.images, self.labels = images, labels  # (N, 3, H, W) uint8, (N,) int64
        self.normalize, self.augment, self.generator = normalize, augment, generator

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        img = self.images[i : i + 1]  # (1, 3, H, W) uint8: the batched helpers want a batch
        if self.augment:  # crop and flip the uint8 image, so padding is black, as with PIL
            img = random_crop_flip(img, padding=4, generator=self.generator)
        if self.normalize:
            x = normalize_uint8(img, CIFAR10_MEAN, CIFAR10_STD)  # (1, 3, H, W) float32
        else:
            x = img.to(torch.float32).div_(255)  # (1, 3, H, W) in [0, 1], like ToTensor
        return x[0], self.labels[i]


def synthetic_loaders(n_train: int = 512, n_test: int = 256, batch_size: int = 64, seed: int = 0,
                      normalize: bool = True, augment: bool = False, drop_last: bool = True
                      ) -> tuple[DataLoader, DataLoader]:
    """(train_loader, test_loader) over one :func:`synthetic_cifar` draw split in two.

    Batches are float32 (B, 3, 32, 32) (scaled to [0, 1], then CIFAR-normalized when
    ``normalize``) and int64 (B,) labels. The train loader shuffles, augments when ``augment``
    and drops the last partial batch when ``drop_last``; the test loader does none of these.
    Single process (num_workers=0) and seeded generators: same seed, same batches.
    """
    images, labels = synthetic_cifar(n_train + n_test, seed=seed).tensors
    shuffle_gen = torch.Generator().manual_seed(seed)
    augment_gen = torch.Generator().manual_seed(seed + 1)  # separate stream from the shuffle
    trainset = _Uint8ImageDataset(images[:n_train], labels[:n_train], normalize, augment,
                                  augment_gen)
    testset = _Uint8ImageDataset(images[n_train:], labels[n_train:], normalize, False,
                                 augment_gen)
    train_loader = DataLoader(trainset, batch_size=batch_size, shuffle=True, num_workers=0,
                              drop_last=drop_last, generator=shuffle_gen)
    test_loader = DataLoader(testset, batch_size=batch_size, shuffle=False, num_workers=0)
    return train_loader, test_loader


def fake_cifar(n: int = 512, seed: int = 0) -> datasets.FakeData:
    """torchvision ``FakeData`` shaped like CIFAR-10, through ``test_transform()``.

    Image ``i`` is seeded by ``i + seed`` (torchvision's ``random_offset``), so different seeds
    give shifted, overlapping sequences; use seeds at least ``n`` apart for disjoint sets.
    """
    return datasets.FakeData(size=n, image_size=(3, 32, 32), num_classes=10,
                             transform=test_transform(), random_offset=seed)
