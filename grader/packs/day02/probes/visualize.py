"""Probes of ``visualize.py``: the first-layer filter grid."""

from __future__ import annotations

import torch

from grader.probes import probe


def filter_weights(case: dict) -> torch.Tensor:
    """Filters (O, C, k, k) from the case's seed; ``boost`` stretches chosen filters' ranges
    (scale and shift) so that one global min-max would squash all the others."""
    g = torch.Generator().manual_seed(case["seed"])
    w = torch.randn(*case["shape"], generator=g)  # (O, C, k, k)
    for index, scale, shift in case.get("boost", ()):
        w[index] = w[index] * scale + shift
    return w


@probe("visualize")
def grid(mod, case: dict):
    """``filter_grid`` on the case's filters: nrow/padding given, or the defaults (None)."""
    w = filter_weights(case)
    if case.get("nrow") is None:
        out = mod.filter_grid(w)
    else:
        out = mod.filter_grid(w, nrow=case["nrow"], padding=case["padding"])
    if type(out) is not torch.Tensor:
        return f"a {type(out).__name__}"
    # float64 (or float16) math is a benign choice: compare in float32 like make_grid's output
    return out.detach().float() if out.is_floating_point() else out.detach()


@probe("visualize")
def make_grid_oracle(mod, case: dict) -> torch.Tensor:
    """The oracle, run by the reference handle (``mod``, the reference's module, is not used):
    torchvision's ``make_grid(w, nrow, padding, normalize=True, scale_each=True)`` with
    filter_grid's values. As a reference result it is cached like every other, so a grade
    whose cases were precomputed never imports torchvision (2-3 s: it imports torch._dynamo)."""
    from torchvision.utils import make_grid

    nrow = 8 if case.get("nrow") is None else case["nrow"]
    padding = 1 if case.get("nrow") is None else case["padding"]
    return make_grid(filter_weights(case).clone(), nrow=nrow, padding=padding,
                     normalize=True, scale_each=True)  # (3, H, W)
