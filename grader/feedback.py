"""Assertions that fail with feedback that teaches: what was tried, what came back, what was
expected, and a hint. Graders raise ``PropertyFailed``; the plugin turns it into the test's
``output`` in the report. Never put solution code in a message: only behaviour.
"""

from __future__ import annotations

from typing import Any

import torch


class PropertyFailed(AssertionError):
    """A property of the submission does not hold; ``str()`` is the student's feedback."""


def _short(value: Any, limit: int = 200) -> str:
    if isinstance(value, torch.Tensor):
        text = f"tensor of shape {tuple(value.shape)}, dtype {value.dtype}"
        if value.numel() <= 8:
            text += f": {value.tolist()}"
        return text
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def fail(tried: str, got: Any = None, expected: Any = None, hint: str = "",
         *, raw: bool = False) -> None:
    """Raise PropertyFailed with the four parts of good feedback (``raw``: values are text)."""
    parts = [f"Tried: {tried}"]
    if got is not None:
        parts.append(f"Got: {got if raw else _short(got)}")
    if expected is not None:
        parts.append(f"Expected: {expected if raw else _short(expected)}")
    if hint:
        parts.append(f"Hint: {hint}")
    raise PropertyFailed("\n".join(parts))


def check_equal(got: Any, expected: Any, tried: str, hint: str = "") -> None:
    """Exact equality, including the exact type (an int must be an int, not 3.0 or a tensor)."""
    if type(got) is not type(expected):
        fail(tried, f"{_short(got)} (a {type(got).__name__})",
             f"{_short(expected)} (a {type(expected).__name__})", hint, raw=True)
    if got != expected:
        fail(tried, got, expected, hint)


def check_tensor(got: Any, expected: torch.Tensor, tried: str, hint: str = "", *,
                 rtol: float = 1e-4, atol: float = 1e-5, what: str = "the output",
                 source: str = "the reference") -> None:
    """Type, dtype, exact shape, finiteness, then closeness (no broadcasting can sneak in).

    ``source`` names where ``expected`` came from in the feedback (e.g. "F.conv2d").
    """
    if type(got) is not torch.Tensor:
        fail(tried, f"{what} is a {type(got).__name__}", "a torch.Tensor", hint, raw=True)
    if got.shape != expected.shape:
        fail(tried, f"{what} has shape {tuple(got.shape)}", f"shape {tuple(expected.shape)}",
             hint, raw=True)
    if got.dtype != expected.dtype:
        fail(tried, f"{what} has dtype {got.dtype}", f"dtype {expected.dtype}", hint, raw=True)
    if expected.is_floating_point() and not torch.isfinite(got).all():
        fail(tried, f"{what} contains NaN or inf", "finite values", hint, raw=True)
    if not torch.allclose(got, expected, rtol=rtol, atol=atol):
        diff = (got.double() - expected.double()).abs()
        where = tuple(int(i) for i in torch.nonzero(diff == diff.max())[0])
        fail(tried, f"{what} differs from {source} by up to {diff.max().item():.3g} "
             f"(first at index {where}: {got[where].item():.6g} vs "
             f"{expected[where].item():.6g})", f"agreement within rtol={rtol:g}, atol={atol:g}",
             hint, raw=True)
