"""Data for Day 2: the lesson's CIFAR-10 pipeline, offline stand-ins and a device-resident loader.

Usage:
    >>> from data_utils import cifar10_loaders, synthetic_cifar, synthetic_loaders, to_device_loader
    >>> train_loader, test_loader = cifar10_loaders("./data", download=True)  # needs internet
    >>> train_loader, test_loader = synthetic_loaders(n_train=512, seed=0)  # offline, learnable
    >>> fast = to_device_loader(synthetic_cifar(512), batch_size=128, device="cuda")
    >>> for images, labels in fast:  # (B, 3, 32, 32) float32 on the device, (B,) int64
    ...     ...

A missing CIFAR-10 raises ``DatasetNotFoundError`` with a one-line fix, not a traceback.
"""

from .augment import normalize_uint8, random_crop_flip
from .cifar import (
    CIFAR10_CLASSES,
    CIFAR10_MEAN,
    CIFAR10_STD,
    DatasetNotFoundError,
    cifar10_datasets,
    cifar10_loaders,
    test_transform,
    train_transform,
)
from .gpu import DeviceLoader, to_device_loader
from .synthetic import fake_cifar, synthetic_cifar, synthetic_loaders

__all__ = [
    "CIFAR10_CLASSES",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "DatasetNotFoundError",
    "DeviceLoader",
    "cifar10_datasets",
    "cifar10_loaders",
    "fake_cifar",
    "normalize_uint8",
    "random_crop_flip",
    "synthetic_cifar",
    "synthetic_loaders",
    "test_transform",
    "to_device_loader",
    "train_transform",
]
