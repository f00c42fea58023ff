"""Training throughput of the reference CIFAR ResNet-18: images/s and achieved TFLOP/s.

    python -m bench train                  # CUDA when present, else CPU (batch 128, few steps)
    python -m bench train --device cuda    # the GPU run: one JSON line on stdout, < 3 minutes
    python -m bench.train_throughput --device cpu --batch 8 --steps 2

On CUDA it uses the lesson's fast setting: data resident on the GPU as uint8 (data_utils'
``DeviceLoader``: crop, flip and normalize on the device), channels_last, bf16 autocast, fused
SGD with momentum, ``cudnn.benchmark``, batch 512. Throughput is the median over several timed
windows after warm-up (cuDNN autotuning, allocator growth); each window ends with a device
synchronize, so queued kernels are paid for in the window that launched them.

TFLOP/s assumes 3.33 GFLOP per image per training step: CIFAR ResNet-18 is 0.556 GMAC =
1.11 GFLOP forward, and backward costs about twice the forward. Peaks are dense bf16 tensor-core
numbers from the vendors' data sheets; the A100 reference point is derived from the airbench
README (ResNet-18 on CIFAR-10 at about 23-24k images/s on one A100).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

GFLOP_PER_IMAGE = 3.33  # forward + backward of CIFAR ResNet-18, per image
A100_AIRBENCH_IMAGES_PER_S = 23_500.0
# Dense bf16 tensor-core peaks (TFLOP/s), longest name first so "H100 PCIe" beats "H100".
PEAK_BF16_TFLOPS = {
    "H100 PCIe": 756.0,
    "H100 NVL": 835.0,
    "H200": 989.0,
    "H100": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
}


@dataclass
class Config:
    device: str  # "cpu" or "cuda"
    batch: int
    warmup_steps: int
    steps: int  # per timed window
    windows: int
    channels_last: bool
    bf16: bool
    fused_sgd: bool
    compile: bool = False
    seed: int = 0

    @property
    def dataset_size(self) -> int:
        # a few batches of distinct images: the loader reshuffles and augments every epoch,
        # like real training, without generating 50k images on the host first
        return self.batch * 16


def default_config(device: str) -> Config:
    """The lesson's fast setting on CUDA; a short fp32 run on CPU (2 cores: seconds per step)."""
    if device == "cuda":
        return Config("cuda", batch=512, warmup_steps=30, steps=50, windows=5,
                      channels_last=True, bf16=True, fused_sgd=True)
    return Config("cpu", batch=128, warmup_steps=1, steps=1, windows=3,
                  channels_last=False, bf16=False, fused_sgd=False)


def peak_tflops(device_name: str) -> float | None:
    for key, peak in PEAK_BF16_TFLOPS.items():
        if key in device_name:
            return peak
    return None


def _batches(loader) -> Iterator[tuple[Any, Any]]:
    while True:  # epochs back to back; the loader reshuffles each time
        yield from loader


def measure(cfg: Config) -> dict[str, Any]:
    """Train the reference ResNet-18 on random CIFAR-shaped data; return the measurements."""
    import torch
    import torch.nn.functional as F

    from data_utils import synthetic_cifar, to_device_loader
    from solutions.resnet import ResNet18

    started = time.perf_counter()
    torch.manual_seed(cfg.seed)
    device = torch.device(cfg.device)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True  # fixed shapes: autotune once, in the warm-up
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model = ResNet18(num_classes=10).to(device, memory_format=memory_format)
    model.train()
    # fused SGD: one kernel for every parameter's momentum + weight-decay update
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9,
                                weight_decay=5e-4, fused=cfg.fused_sgd or None)
    step_model = torch.compile(model) if cfg.compile else model
    loader = to_device_loader(synthetic_cifar(cfg.dataset_size, seed=cfg.seed), cfg.batch,
                              device, train=True, seed=cfg.seed,
                              channels_last=cfg.channels_last)
    batches = _batches(loader)

    def step() -> torch.Tensor:
        images, labels = next(batches)  # (B, 3, 32, 32) float32 on the device, (B,) int64
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            loss = F.cross_entropy(step_model(images), labels)  # autocast keeps it fp32
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    for _ in range(cfg.warmup_steps):
        loss = step()
    sync()
    window_ips = []
    for _ in range(cfg.windows):
        t0 = time.perf_counter()
        for _ in range(cfg.steps):
            loss = step()  # no .item() here: it would stall the GPU queue every step
        sync()
        window_ips.append(cfg.batch * cfg.steps / (time.perf_counter() - t0))
    final_loss = float(loss)

    ips = statistics.median(window_ips)
    tflops = ips * GFLOP_PER_IMAGE / 1000.0
    name = torch.cuda.get_device_name(device) if cuda else f"CPU ({torch.get_num_threads()} "\
        "threads)"
    peak = peak_tflops(name) if cuda else None
    return {
        "suite": "train",
        "device": name,
        "device_type": device.type,
        "images_per_s": round(ips, 3),
        "images_per_s_windows": [round(v, 1) for v in window_ips],
        "step_ms": round(1000.0 * cfg.batch / ips, 3),
        "tflops": tflops,
        "gflop_per_image": GFLOP_PER_IMAGE,
        "peak_bf16_tflops": peak,
        "fraction_of_peak": round(tflops / peak, 4) if peak else None,
        "a100_airbench_images_per_s": A100_AIRBENCH_IMAGES_PER_S,
        "vs_a100_airbench": round(ips / A100_AIRBENCH_IMAGES_PER_S, 3),
        "final_loss": round(final_loss, 4),
        "loss_finite": math.isfinite(final_loss),
        "max_memory_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        if cuda else None,
        "torch": torch.__version__,
        "config": asdict(cfg),
        "wall_s": round(time.perf_counter() - started, 2),
    }


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.train_throughput", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    p.add_argument("--out", default=None, help="also write the JSON here")
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The training knobs, shared with ``python -m bench train``."""
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="auto: CUDA when available, else CPU (default)")
    p.add_argument("--batch", type=int, default=None, help="default: 512 on CUDA, 128 on CPU")
    p.add_argument("--steps", type=int, default=None, help="steps per timed window")
    p.add_argument("--windows", type=int, default=None, help="timed windows (median reported)")
    p.add_argument("--warmup-steps", type=int, default=None)
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the model (adds compile time to the warm-up)")
    p.add_argument("--fp32", action="store_true", help="no bf16 autocast, NCHW, plain SGD")


def config_from_args(args: argparse.Namespace, device: str) -> Config:
    cfg = default_config(device)
    for name in ("batch", "steps", "windows", "warmup_steps"):
        value = getattr(args, name)
        if value is not None:
            if value < (0 if name == "warmup_steps" else 1):
                raise ValueError(f"--{name.replace('_', '-')} must be positive, got {value}")
            setattr(cfg, name, value)
    cfg.compile = bool(args.compile)
    if args.fp32:
        cfg.channels_last = cfg.bf16 = cfg.fused_sgd = False
    return cfg


def run(args: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    """(exit status, the JSON record). No CUDA when asked for it: status 1 and one clear line."""
    has_cuda = cuda_available()
    device = ("cuda" if has_cuda else "cpu") if args.device == "auto" else args.device
    if device == "cuda" and not has_cuda:
        return 1, {"suite": "train", "device_type": "cuda",
                   "error": "no CUDA device: torch.cuda.is_available() is False"}
    from bench.harness import environment

    env = environment()  # before: the load average while we measured is what matters
    record = measure(config_from_args(args, device))
    if hasattr(os, "getloadavg"):
        env["loadavg_end"] = list(os.getloadavg())
    return 0, {**record, "environment": env}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code, record = run(args)
    print(json.dumps(record), flush=True)  # one line: what the device run hands back
    if args.out:
        from bench.harness import write_json

        write_json(record, args.out)
    return code


if __name__ == "__main__":
    sys.exit(main())
