"""Pictures of what a submission built, as its pack declares them (``Pack.figures``: Day 2
draws gradient norms, first-layer filters and a loss curve, ``packs/day02/figures.py``).

    python -m grader figures exercises --out figures       # sandboxed, like grading
    pytest exercises --figures figures                     # the student's self-check

The numbers come from probes run on the submission's own models through a handle (a sandbox
when grading); the pack's module draws them, with matplotlib's Agg backend (``pyplot()``). A
figure that cannot be drawn (a stub, a crash) becomes one line saying why; the others are
still drawn. Every
figure's numbers are also written to ``figures.json``, so a picture can be traced to its data.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from grader.manifest import Pack
from grader.probes import ProbeFailure


@dataclass
class Figure:
    name: str  # "gradient_norms.png"
    path: Path | None  # None when it could not be drawn
    message: str  # what it shows, or why it is missing


def pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def attempt(name: str, out: Path, data: dict, measure, draw) -> Figure:
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


def draw_all(handle: Any, out: str | Path, pack: Pack) -> list[Figure]:
    """The pack's figures (``Pack.figures``, a module with ``draw(handle, out, data)``) of the
    submission behind ``handle``: PNGs and ``figures.json`` in ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not pack.figures:
        return [Figure("(none)", None, f"the {pack.name} pack draws no figures")]
    data: dict[str, Any] = {}
    figures = importlib.import_module(pack.figures).draw(handle, out, data)
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
