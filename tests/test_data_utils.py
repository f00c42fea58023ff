"""Tests for data_utils: the lesson's CIFAR-10 pipeline, the offline sets and DeviceLoader.

Everything runs offline on the CPU: CIFAR-10 itself is replaced by a tiny on-disk fake in the
real file format, and downloads are replaced by a failing stub.
"""

from __future__ import annotations

import pickle
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from torchvision import transforms as T
from torchvision.transforms.functional import to_pil_image

import data_utils as du
from data_utils import cifar as cifar_mod

MEAN = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
STD = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)


def reference_normalize(images_uint8: torch.Tensor) -> torch.Tensor:
    """((x / 255) - mean) / std in float32, written independently of data_utils."""
    return (images_uint8.float() / 255 - MEAN) / STD  # (N, 3, H, W)


def torchvision_reference(images_uint8: torch.Tensor) -> torch.Tensor:
    """The lesson's test_transform applied the torchvision way: one PIL image at a time."""
    tf = T.Compose([T.ToTensor(), T.Normalize(MEAN.flatten().tolist(), STD.flatten().tolist())])
    return torch.stack([tf(to_pil_image(img)) for img in images_uint8])  # (N, 3, H, W)


def all_windows(img: torch.Tensor, padding: int = 4) -> dict[tuple[int, int, bool], torch.Tensor]:
    """Every (top, left, flipped) crop of ``img`` (C, H, W) zero-padded by ``padding``."""
    c, h, w = img.shape
    canvas = torch.zeros(c, h + 2 * padding, w + 2 * padding, dtype=img.dtype)
    canvas[:, padding : padding + h, padding : padding + w] = img
    out = {}
    for top in range(2 * padding + 1):
        for left in range(2 * padding + 1):
            win = canvas[:, top : top + h, left : left + w]
            out[(top, left, False)] = win
            out[(top, left, True)] = win.flip(-1)
    return out


def match_window(out: torch.Tensor, img: torch.Tensor) -> tuple[int, int, bool] | None:
    """The (top, left, flipped) window of ``img`` equal to ``out``, preferring unflipped."""
    for key, win in all_windows(img).items():
        if torch.equal(out, win):
            return key
    return None


# --------------------------------------------------------------------------- constants/transforms

def test_constants_match_the_lesson():
    assert du.CIFAR10_MEAN == (0.4914, 0.4822, 0.4465)
    assert du.CIFAR10_STD == (0.2470, 0.2435, 0.2616)
    assert list(du.CIFAR10_CLASSES) == ["airplane", "automobile", "bird", "cat", "deer", "dog",
                                        "frog", "horse", "ship", "truck"]


def test_train_transform_is_the_lesson_pipeline():
    steps = du.train_transform().transforms
    assert [type(s) for s in steps] == [T.RandomCrop, T.RandomHorizontalFlip, T.ToTensor,
                                        T.Normalize]
    crop, flip, _, norm = steps
    assert tuple(crop.size) == (32, 32) and crop.padding == 4
    assert crop.fill == 0 and crop.padding_mode == "constant"
    assert flip.p == 0.5
    assert tuple(norm.mean) == du.CIFAR10_MEAN and tuple(norm.std) == du.CIFAR10_STD


def test_test_transform_only_scales_and_normalizes():
    steps = du.test_transform().transforms
    assert [type(s) for s in steps] == [T.ToTensor, T.Normalize]
    assert tuple(steps[1].mean) == du.CIFAR10_MEAN and tuple(steps[1].std) == du.CIFAR10_STD
    # Its name starts with "test": it must not be collected by pytest where it is imported.
    assert du.test_transform.__test__ is False


# --------------------------------------------------------------------------- synthetic set

def test_synthetic_cifar_shapes_dtypes_and_labels():
    images, labels = du.synthetic_cifar(n=200, seed=3).tensors
    assert images.shape == (200, 3, 32, 32) and images.dtype == torch.uint8
    assert labels.shape == (200,) and labels.dtype == torch.int64
    assert labels.min() >= 0 and labels.max() < 10
    assert torch.equal(labels.bincount(minlength=10), torch.full((10,), 20))  # balanced
    small, small_labels = du.synthetic_cifar(n=30, num_classes=3, image_size=16).tensors
    assert small.shape == (30, 3, 16, 16) and set(small_labels.tolist()) == {0, 1, 2}


def test_synthetic_cifar_is_deterministic_per_seed():
    a_img, a_lab = du.synthetic_cifar(n=64, seed=7).tensors
    b_img, b_lab = du.synthetic_cifar(n=64, seed=7).tensors
    c_img, c_lab = du.synthetic_cifar(n=64, seed=8).tensors
    assert torch.equal(a_img, b_img) and torch.equal(a_lab, b_lab)
    assert not torch.equal(a_img, c_img) and not torch.equal(a_lab, c_lab)


def nearest_mean_accuracy(train_x, train_y, test_x, test_y, num_classes=10) -> float:
    train_x, test_x = train_x.flatten(1).float(), test_x.flatten(1).float()  # (N, D)
    means = torch.stack([train_x[train_y == k].mean(0) for k in range(num_classes)])  # (K, D)
    pred = torch.cdist(test_x, means).argmin(1)  # (M,)
    return (pred == test_y).float().mean().item()


def test_synthetic_cifar_is_learnable_by_nearest_class_mean():
    images, labels = du.synthetic_cifar(n=600, seed=0).tensors
    acc = nearest_mean_accuracy(images[:300], labels[:300], images[300:], labels[300:])
    assert acc > 0.9  # chance is 0.1; unlearnable labels would score about that


# --------------------------------------------------------------------------- synthetic loaders

def test_synthetic_loaders_shapes_dtypes_and_lengths():
    train, test = du.synthetic_loaders(n_train=200, n_test=70, batch_size=64)
    assert len(train) == 3 and len(test) == 2  # drop_last on train only: 200 // 64, ceil(70/64)
    x, y = next(iter(train))
    assert x.shape == (64, 3, 32, 32) and x.dtype == torch.float32
    assert y.shape == (64,) and y.dtype == torch.int64
    assert sum(len(y) for _, y in test) == 70
    train_keep, _ = du.synthetic_loaders(n_train=200, batch_size=64, drop_last=False)
    assert len(train_keep) == 4


def test_synthetic_test_loader_normalizes_like_the_lesson():
    images, labels = du.synthetic_cifar(n=100 + 50, seed=2).tensors
    _, test = du.synthetic_loaders(n_train=100, n_test=50, batch_size=50, seed=2)
    x, y = next(iter(test))
    assert torch.equal(y, labels[100:])  # the held-out part, in order
    assert torch.allclose(x, reference_normalize(images[100:]), atol=1e-6)
    assert torch.equal(x, torchvision_reference(images[100:]))  # bit for bit


def test_synthetic_loaders_without_normalize_give_unit_range():
    images, _ = du.synthetic_cifar(n=80 + 16, seed=0).tensors
    _, test = du.synthetic_loaders(n_train=80, n_test=16, batch_size=16, normalize=False)
    x, _ = next(iter(test))
    assert torch.allclose(x, images[80:].float() / 255)


def test_synthetic_loaders_are_deterministic_and_seeded():
    def first_batches(seed, augment):
        train, _ = du.synthetic_loaders(n_train=128, batch_size=32, seed=seed, augment=augment)
        return [b for b in train]

    a, b = first_batches(0, True), first_batches(0, True)
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    c = first_batches(1, True)
    assert not torch.equal(a[0][0], c[0][0])
    plain = first_batches(0, False)
    assert torch.equal(a[0][1], plain[0][1])  # same seed, same shuffle order...
    assert not torch.equal(a[0][0], plain[0][0])  # ...but augmentation changed the images


def test_synthetic_train_loader_augments_with_padded_crops_and_flips():
    n = 64
    images, _ = du.synthetic_cifar(n=n + 8, seed=4).tensors
    train, _ = du.synthetic_loaders(n_train=n, n_test=8, batch_size=n, seed=4, augment=True,
                                    normalize=False)
    x, _ = next(iter(train))
    # Labels do not identify the source image, so look every output up among all sources.
    sources = images[:n]
    keys = []
    for out in x:
        out_u8 = (out * 255).round().to(torch.uint8)
        found = [k for k in (match_window(out_u8, src) for src in sources) if k is not None]
        assert found, "an augmented image is no crop/flip of any padded source image"
        keys.append(found[0])
    assert len({(t, l) for t, l, _ in keys}) > 5  # offsets vary per image
    assert any(f for *_, f in keys) and not all(f for *_, f in keys)


def test_synthetic_train_loader_learns_the_held_out_classes():
    train, test = du.synthetic_loaders(n_train=300, n_test=200, batch_size=100, seed=5)
    tx, ty = map(torch.cat, zip(*train, strict=True))
    vx, vy = map(torch.cat, zip(*test, strict=True))
    assert nearest_mean_accuracy(tx, ty, vx, vy) > 0.9  # train and test share class templates


# --------------------------------------------------------------------------- batched augment

def test_random_crop_flip_yields_padded_windows_of_each_image():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (200, 3, 8, 8), dtype=torch.uint8, generator=g)
    out = du.random_crop_flip(images, padding=4, generator=torch.Generator().manual_seed(1))
    assert out.shape == images.shape and out.dtype == torch.uint8
    keys = [match_window(o, img) for o, img in zip(out, images, strict=True)]
    assert all(k is not None for k in keys)
    assert len({(t, l) for t, l, _ in keys}) > 30  # 81 possible offsets, 200 draws
    flipped = sum(f for _, _, f in keys)
    assert 60 < flipped < 140  # p = 0.5


def test_random_crop_flip_pads_with_zeros():
    images = torch.full((500, 1, 4, 4), 255, dtype=torch.uint8)
    out = du.random_crop_flip(images, padding=4, generator=torch.Generator().manual_seed(0))
    assert set(out.unique().tolist()) == {0, 255}  # only image pixels and zero padding


def test_normalize_uint8_equals_reference_and_casts():
    images = torch.randint(0, 256, (4, 3, 5, 5), dtype=torch.uint8)
    assert torch.equal(du.normalize_uint8(images), reference_normalize(images))
    half = du.normalize_uint8(images, dtype=torch.bfloat16)
    assert half.dtype == torch.bfloat16
    assert torch.equal(half, reference_normalize(images).to(torch.bfloat16))


# --------------------------------------------------------------------------- DeviceLoader (CPU)

def indexed_images(n: int = 100, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random uint8 images whose label is their own index, so outputs can be traced back."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g), torch.arange(n)


def test_device_loader_shapes_dtype_and_length():
    images, labels = indexed_images(100)
    loader = du.DeviceLoader(images, labels, batch_size=32, device="cpu")
    batches = list(loader)
    assert len(loader) == len(batches) == 3  # drop_last=True by default for training
    x, y = batches[0]
    assert x.shape == (32, 3, 32, 32) and x.dtype == torch.float32 and x.device.type == "cpu"
    assert y.shape == (32,) and y.dtype == torch.int64


def test_device_loader_eval_batch_is_exactly_the_reference():
    images, labels = indexed_images(70)
    loader = du.DeviceLoader(images, labels, batch_size=32, device="cpu", train=False)
    assert len(loader) == 3  # eval keeps the last partial batch by default
    x, y = next(iter(loader))
    assert torch.equal(y, labels[:32])  # eval: no shuffle
    assert torch.equal(x, reference_normalize(images[:32]))
    assert torch.equal(x, torchvision_reference(images[:32]))
    assert sum(len(y) for _, y in loader) == 70


def test_device_loader_train_batches_are_crops_and_flips_of_the_padded_images():
    images, labels = indexed_images(96)
    plain = reference_normalize(images)  # (N, 3, 32, 32)
    loader = du.DeviceLoader(images, labels, batch_size=96, device="cpu", seed=3)
    x, y = next(iter(loader))
    assert not torch.equal(y, labels)  # shuffled
    pad_value = ((0 - MEAN) / STD)[0]  # (3, 1, 1): black padding after normalization
    keys = []
    for out, i in zip(x, y.tolist(), strict=True):
        windows = all_windows(images[i])
        key = next((k for k, w in windows.items()
                    if torch.equal(out, reference_normalize(w[None])[0])), None)
        assert key is not None, f"output for image {i} is no crop/flip of its padded image"
        keys.append(key)
    assert sum(k[:2] != (4, 4) for k in keys) > len(keys) // 2  # content really shifts
    assert 20 < sum(k[2] for k in keys) < 76  # about half are flipped
    assert not torch.equal(x, plain[y])  # augmented differs from un-augmented
    assert torch.isclose(x, pad_value).all(1).any()  # some pixels (all 3 channels) are padding


def test_device_loader_covers_every_label_once_per_epoch():
    images, labels = indexed_images(100)
    loader = du.DeviceLoader(images, labels, batch_size=32, device="cpu", drop_last=False)
    assert len(loader) == 4
    for _ in range(2):
        seen = torch.cat([y for _, y in loader])
        assert torch.equal(seen.sort().values, labels)
    dropped = du.DeviceLoader(images, labels, batch_size=32, device="cpu", drop_last=True)
    seen = torch.cat([y for _, y in dropped])
    assert len(seen) == 96 and len(seen.unique()) == 96


def test_device_loader_is_deterministic_per_seed_and_reshuffles_each_epoch():
    images, labels = indexed_images(64)

    def two_epochs(seed):
        loader = du.DeviceLoader(images, labels, batch_size=16, device="cpu", seed=seed)
        return [list(loader), list(loader)]

    a, b, c = two_epochs(0), two_epochs(0), two_epochs(1)
    for epoch_a, epoch_b in zip(a, b, strict=True):
        for (xa, ya), (xb, yb) in zip(epoch_a, epoch_b, strict=True):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(a[0][0][1], a[1][0][1])  # epoch 2 has a new order
    assert not torch.equal(a[0][0][1], c[0][0][1])  # another seed, another order


def test_device_loader_dtype_and_channels_last():
    images, labels = indexed_images(16)
    loader = du.DeviceLoader(images, labels, batch_size=8, device="cpu", train=False,
                             dtype=torch.bfloat16, channels_last=True)
    x, _ = next(iter(loader))
    assert x.dtype == torch.bfloat16
    assert x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    assert torch.equal(x, reference_normalize(images[:8]).to(torch.bfloat16))


def test_device_loader_rejects_float_images():
    images, labels = indexed_images(8)
    with pytest.raises(TypeError, match="uint8"):
        du.DeviceLoader(images.float(), labels, batch_size=4, device="cpu")
    with pytest.raises(TypeError, match="uint8"):
        du.to_device_loader((images.float() / 255, labels), batch_size=4, device="cpu")


def test_to_device_loader_from_synthetic_tensor_dataset():
    ds = du.synthetic_cifar(n=40, seed=1)
    loader = du.to_device_loader(ds, batch_size=16, device="cpu", train=False)
    x, y = next(iter(loader))
    assert torch.equal(y, ds.tensors[1][:16])
    assert torch.equal(x, reference_normalize(ds.tensors[0][:16]))


# --------------------------------------------------------------------------- CIFAR-10 on disk

def write_fake_cifar(root: Path, per_batch: int = 6, seed: int = 0) -> dict[str, np.ndarray]:
    """A tiny cifar-10-batches-py in the real pickle format (rows of 3072 = CHW bytes)."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    raw = {}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=per_batch).tolist()
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": labels}, f)
        raw[name] = data
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": list(du.CIFAR10_CLASSES)}, f)
    return raw


@pytest.fixture
def fake_cifar_root(tmp_path, monkeypatch):
    raw = write_fake_cifar(tmp_path)
    # The real files are checked by md5; the fake ones cannot match, so accept them.
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *a, **k: True)
    return tmp_path, raw


def test_cifar10_datasets_use_the_lesson_transforms(fake_cifar_root):
    root, raw = fake_cifar_root
    trainset, testset = du.cifar10_datasets(root)
    assert len(trainset) == 30 and len(testset) == 6
    assert trainset.train and not testset.train
    assert [type(t) for t in trainset.transform.transforms][0] is T.RandomCrop
    test_images = torch.from_numpy(raw["test_batch"]).view(-1, 3, 32, 32)  # (6, 3, 32, 32)
    x, y = testset[0]
    assert torch.equal(x, reference_normalize(test_images[:1])[0]) and isinstance(y, int)


def test_cifar10_loaders_batches(fake_cifar_root):
    root, _ = fake_cifar_root
    train, test = du.cifar10_loaders(root, batch_size=4, test_batch_size=5, num_workers=0)
    assert train.batch_size == 4 and test.batch_size == 5
    assert isinstance(train.sampler, torch.utils.data.RandomSampler)
    assert isinstance(test.sampler, torch.utils.data.SequentialSampler)
    x, y = next(iter(train))
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64


def test_to_device_loader_from_a_torchvision_cifar_dataset(fake_cifar_root):
    root, raw = fake_cifar_root
    _, testset = du.cifar10_datasets(root)
    loader = du.to_device_loader(testset, batch_size=6, device="cpu", train=False)
    x, y = next(iter(loader))
    expected = torch.stack([testset[i][0] for i in range(6)])  # torchvision's own pipeline
    assert torch.equal(x, expected)  # HWC numpy -> CHW tensor conversion is right
    assert y.tolist() == testset.targets


# --------------------------------------------------------------------------- errors, FakeData

def test_missing_cifar_raises_a_one_line_error_naming_the_root(tmp_path):
    with pytest.raises(du.DatasetNotFoundError) as info:
        du.cifar10_datasets(root=tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert str(tmp_path) in message and "download=True" in message
    assert isinstance(info.value, RuntimeError)
    assert info.value.__suppress_context__ and info.value.__cause__ is None  # no chained trace
    with pytest.raises(du.DatasetNotFoundError):
        du.cifar10_loaders(root=tmp_path, num_workers=0)


def test_failed_download_raises_a_one_line_error(tmp_path, monkeypatch):
    def no_network(self):
        raise urllib.error.URLError("[Errno -3] Temporary failure\nin name resolution")

    monkeypatch.setattr(torchvision.datasets.CIFAR10, "download", no_network)
    with pytest.raises(du.DatasetNotFoundError) as info:
        du.cifar10_datasets(root=tmp_path, download=True)
    message = str(info.value)
    assert "\n" not in message and str(tmp_path) in message
    assert "download" in message and "name resolution" in message
    assert info.value.__suppress_context__


def test_dataset_error_is_only_raised_for_dataset_problems(monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("a bug, not a missing dataset")

    monkeypatch.setattr(cifar_mod.datasets, "CIFAR10", broken)
    with pytest.raises(ValueError, match="a bug"):
        du.cifar10_datasets("./nowhere")


def test_fake_cifar_works_offline_and_is_seeded():
    fake = du.fake_cifar(8, seed=0)
    assert len(fake) == 8
    x, y = fake[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    assert isinstance(y, int) and 0 <= y < 10
    assert torch.equal(x, du.fake_cifar(8, seed=0)[0][0])
    assert not torch.equal(x, du.fake_cifar(8, seed=100)[0][0])
    assert torch.equal(du.fake_cifar(8, seed=1)[0][0], fake[1][0])  # random_offset shifts
    lowest = min((0 - m) / s for m, s in zip(du.CIFAR10_MEAN, du.CIFAR10_STD, strict=True))
    assert x.min() >= lowest - 1e-6  # normalized from [0, 1], not raw noise
