"""The lesson's CIFAR-10 pipeline through torchvision: constants, transforms, datasets, loaders.

A missing dataset or a failed download raises :class:`DatasetNotFoundError` with one line that
says what to do, instead of a torchvision traceback (students hit this first, often offline).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torchvision import datasets
from torchvision import transforms as T

# Per-channel statistics of the 50k training images (scaled to [0, 1]), as used in the lesson.
CIFAR10_MEAN: tuple[float, float, float] = (0.4914, 0.4822, 0.4465)
CIFAR10_STD: tuple[float, float, float] = (0.2470, 0.2435, 0.2616)
CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)


class DatasetNotFoundError(RuntimeError):
    """The dataset is not on disk (or could not be downloaded); the message says what to do."""


def train_transform() -> T.Compose:
    """Augment (4-pixel zero-padded random crop, horizontal flip), scale to [0, 1], normalize."""
    return T.Compose([
        T.RandomCrop(32, padding=4),  # pads with 0 (black) before cropping back to 32x32
        T.RandomHorizontalFlip(),
        T.ToTensor(),  # PIL HWC uint8 -> (3, 32, 32) float32 in [0, 1]
        T.Normalize(CIFAR10_MEAN, CIFAR10_STD),
    ])


def test_transform() -> T.Compose:
    """No augmentation at test time: only scale to [0, 1] and normalize."""
    return T.Compose([T.ToTensor(), T.Normalize(CIFAR10_MEAN, CIFAR10_STD)])


# The name starts with "test": without this, pytest collects it as a test wherever it is imported.
test_transform.__test__ = False  # type: ignore[attr-defined]


def _one_line(text: object) -> str:
    # Exception texts (HTTP errors, OS errors) may span lines; the error must stay one line.
    return " ".join(str(text).split())


def _load_split(root: str | Path, train: bool, transform: T.Compose,
                download: bool) -> datasets.CIFAR10:
    where = os.fspath(root)
    try:
        return datasets.CIFAR10(where, train=train, transform=transform, download=download)
    except OSError as exc:  # urllib's URLError/HTTPError and socket errors are OSErrors
        raise DatasetNotFoundError(
            f"CIFAR-10 download to {where} failed ({_one_line(exc)}): check the network, "
            "or copy cifar-10-batches-py/ there and pass download=False"
        ) from None
    except RuntimeError as exc:  # torchvision: "Dataset not found or corrupted. ..."
        if download:  # the archive arrived but failed its checksum, or extraction broke
            raise DatasetNotFoundError(
                f"CIFAR-10 under {where} is incomplete or corrupted after download "
                f"({_one_line(exc)}): delete {where}/cifar-10-batches-py* and retry"
            ) from None
        raise DatasetNotFoundError(
            f"CIFAR-10 not found under {where}: pass download=True (needs internet) "
            "or copy cifar-10-batches-py/ there"
        ) from None


def cifar10_datasets(root: str | Path = "./data", download: bool = False
                     ) -> tuple[datasets.CIFAR10, datasets.CIFAR10]:
    """(trainset, testset): 50k augmented training images and 10k plain test images.

    Raises DatasetNotFoundError (one line) when the files are missing and ``download`` is
    False, or when the download fails.
    """
    trainset = _load_split(root, True, train_transform(), download)
    testset = _load_split(root, False, test_transform(), download)
    return trainset, testset


def cifar10_loaders(root: str | Path = "./data", batch_size: int = 128,
                    test_batch_size: int = 256, num_workers: int = 2, download: bool = False
                    ) -> tuple[DataLoader, DataLoader]:
    """(train_loader, test_loader) over :func:`cifar10_datasets`; only the train one shuffles."""
    trainset, testset = cifar10_datasets(root, download=download)
    pin = torch.cuda.is_available()  # page-locked host batches copy to the GPU faster
    train_loader = DataLoader(trainset, batch_size=batch_size, shuffle=True,
                              num_workers=num_workers, pin_memory=pin)
    test_loader = DataLoader(testset, batch_size=test_batch_size, shuffle=False,
                             num_workers=num_workers, pin_memory=pin)
    return train_loader, test_loader
