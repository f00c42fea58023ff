"""Day 2's pictures: the gradient norms of the plain net and its residual twin, the first
conv's filters after a short run, and that run's loss curve (declared in the pack manifest,
drawn by ``grader.figures.draw_all``).

    python -m grader figures exercises --out figures       # sandboxed, like grading
    pytest exercises --figures figures                     # the student's self-check
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from grader.figures import Figure, attempt, pyplot
from grader.packs.day02.probes import figures as FP

GRADIENT_CASE = {"seed": 0, "batch": 8, "size": 16, "depth": 50}
TRAINING_CASE: dict[str, Any] = {"seed": 0, "batch": 16, "steps": 4, "epochs": 3, "lr": 0.05}


def draw_gradient_norms(profiles: dict, path: Path) -> None:
    """Plain and residual per-layer gradient norms (log scale), side by side."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, key in zip(axes, ("plain", "residual"), strict=True):
        norms = [max(n, 1e-30) for _, n in profiles[key]]
        spread = math.log10(max(norms) / min(norms)) if norms else float("nan")
        ax.semilogy(range(1, len(norms) + 1), norms, marker=".")
        ax.set_title(f"{key.capitalize()}Net({GRADIENT_CASE['depth']}): "
                     f"spread log10(max/min) = {spread:.1f}")
        ax.set_xlabel("weight layer (input → output)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("‖∂loss/∂W‖ at initialisation")
    fig.suptitle("With BatchNorm the plain net's gradients grow toward the input; "
                 "the residual twin's stay level")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def draw_filters(weight: torch.Tensor, path: Path) -> None:
    """The first conv's filters as a grid, each min-max scaled on its own."""
    from torchvision.utils import make_grid

    plt = pyplot()
    w = weight.float()[:, :3] if weight.shape[1] >= 3 else weight.float()  # (C_out, 3, k, k)
    grid = make_grid(w, nrow=8, padding=1, normalize=True, scale_each=True)  # (3, H, W)
    fig, ax = plt.subplots(figsize=(6, 6 * grid.shape[1] / grid.shape[2]))
    ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(f"conv1: {w.shape[0]} filters of {w.shape[2]}x{w.shape[3]} after a short run")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def draw_loss_curve(losses: list[float], steps_per_epoch: int, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(range(1, len(losses) + 1), losses, marker=".")
    for epoch in range(1, len(losses) // max(steps_per_epoch, 1)):
        ax.axvline(epoch * steps_per_epoch + 0.5, color="grey", alpha=0.3)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title("Smoke run: your ResNet18 + your train_one_epoch on a fixed batch")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def draw(handle: Any, out: Path, data: dict[str, Any]) -> list[Figure]:
    """Run the probes through ``handle``; write the PNGs into ``out`` and their numbers into
    ``data`` (``figures.json``)."""
    figures = [attempt("gradient_norms.png", out, data,
                       lambda: handle.run(FP.gradient_profiles, GRADIENT_CASE),
                       draw_gradient_norms)]
    run: dict = {}

    def training() -> dict:
        run.update(handle.run(FP.short_training, TRAINING_CASE))
        return {"losses": run["losses"], "conv1_weight": run["conv1_weight"]}

    figures.append(attempt("filters.png", out, data, training,
                           lambda v, p: draw_filters(v["conv1_weight"], p)))
    if run:
        figures.append(attempt("loss_curve.png", out, data, lambda: run["losses"],
                               lambda v, p: draw_loss_curve(v, TRAINING_CASE["steps"], p)))
    else:
        figures.append(Figure("loss_curve.png", None, figures[-1].message))
    return figures
