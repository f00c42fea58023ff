"""Pictures of what a submission built: gradient norms, first-layer filters, the loss curve.

    python -m grader figures exercises --out figures       # sandboxed, like grading
    pytest exercises --figures figures                     # the student's self-check

The numbers come from probes run on the submission's own models through a handle (a sandbox
when grading); this module only draws them, with matplotlib's Agg backend. A figure that cannot
be drawn (a stub, a crash) becomes one line saying why; the others are still drawn. Every
figure's numbers are also written to ``figures.json``, so a picture can be traced to its data.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from grader.packs.day02.probes import figures as FP
from grader.probes import ProbeFailure

GRADIENT_CASE = {"seed": 0, "batch": 8, "size": 16, "depth": 50}
TRAINING_CASE = {"seed": 0, "batch": 16, "steps": 4, "epochs": 3, "lr": 0.05}


@dataclass
class Figure:
    name: str  # "gradient_norms.png"
    path: Path | None  # None when it could not be drawn
    message: str  # what it shows, or why it is missing


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def draw_gradient_norms(profiles: dict, path: Path) -> None:
    """Plain and residual per-layer gradient norms (log scale), side by side."""
    plt = _pyplot()
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

    plt = _pyplot()
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
    plt = _pyplot()
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


def _attempt(name: str, out: Path, data: dict, measure, draw) -> Figure:
    try:
        value = measure()
    except ProbeFailure as failure:
        return Figure(name, None, f"not drawn: {failure.message}")
    data[name] = value
    path = out / name
    try:
        draw(value, path)
    except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as exc:
        # the numbers came back in a shape no picture can show
        return Figure(name, None, f"not drawn: the measurements were unusable ({exc})")
    return Figure(name, path, "drawn")


def draw_all(handle: Any, out: str | Path) -> list[Figure]:
    """Run the probes through ``handle`` and write the PNGs and ``figures.json`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {}
    figures = [_attempt("gradient_norms.png", out, data,
                        lambda: handle.run(FP.gradient_profiles, GRADIENT_CASE),
                        draw_gradient_norms)]
    run: dict = {}

    def training() -> dict:
        run.update(handle.run(FP.short_training, TRAINING_CASE))
        return {"losses": run["losses"], "conv1_weight": run["conv1_weight"]}

    figures.append(_attempt("filters.png", out, data, training,
                            lambda v, p: draw_filters(v["conv1_weight"], p)))
    if run:
        figures.append(_attempt("loss_curve.png", out, data, lambda: run["losses"],
                                lambda v, p: draw_loss_curve(v, TRAINING_CASE["steps"], p)))
    else:
        figures.append(Figure("loss_curve.png", None, figures[-1].message))
    (out / "figures.json").write_text(json.dumps(_to_plain(data), indent=1))
    return figures


def _to_plain(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return {"shape": list(value.shape), "values": value.flatten().tolist()}
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    return value


def summary(figures: list[Figure]) -> str:
    return "\n".join(f"{f.name}: {f.path if f.path else f.message}" for f in figures)
