"""Assertions that fail with feedback that teaches: what was tried, what came back, what was
expected, and a hint. Graders raise ``PropertyFailed``; the plugin turns it into the test's
``output`` in the report. Never put solution code in a message: only behaviour.

One comparison for every grader: ``check_number`` (Python numbers), ``check_tensor`` (tensors)
and ``check_equal`` (exact data), with ``agrees`` as the same rule returning a bool (for
evidence gates). All of them fail NaN, inf, a wrong type or dtype, a tensor subclass and a wrong
shape before comparing values, so no reply passes by being odd: ``abs(nan) > tol`` is False,
but ``agrees(nan, 0.0)`` is False too. When got and expected print alike, the feedback prints
enough digits (or the types) to show how they differ.
"""

from __future__ import annotations

import math
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


def distinct(got: Any, expected: Any) -> tuple[str, str]:
    """``got`` and ``expected`` as text that differs wherever they do: 6 significant digits,
    more when those print alike (28.5714 vs 28.5714 becomes 28.571428298950195 vs
    28.571428571428573), and the type when even the digits agree (3 vs 3.0)."""
    if isinstance(got, float) and isinstance(expected, float):
        for digits in (6, 9, 12, 17):
            a, b = f"{got:.{digits}g}", f"{expected:.{digits}g}"
            if a != b:
                return a, b
        return repr(got), repr(expected)
    a, b = _short(got), _short(expected)
    if a == b and type(got) is not type(expected):
        return f"{a} (a {type(got).__name__})", f"{b} (a {type(expected).__name__})"
    return a, b


def fail(tried: str, got: Any = None, expected: Any = None, hint: str = "",
         *, raw: bool = False) -> None:
    """Raise PropertyFailed with the four parts of good feedback (``raw``: values are text)."""
    if not raw and got is not None and expected is not None:
        got, expected = distinct(got, expected)
        raw = True
    parts = [f"Tried: {tried}"]
    if got is not None:
        parts.append(f"Got: {got if raw else _short(got)}")
    if expected is not None:
        parts.append(f"Expected: {expected if raw else _short(expected)}")
    if hint:
        parts.append(f"Hint: {hint}")
    raise PropertyFailed("\n".join(parts))


def check_equal(got: Any, expected: Any, tried: str, hint: str = "") -> None:
    """Exact equality, including the exact type (an int must be an int, not 3.0 or a tensor).

    Containers are compared element by element with the same rule, so ``[3, 3.0]`` is not
    ``[3, 3]`` and a NaN anywhere never equals anything."""
    if not _same_data(got, expected):
        if type(got) is not type(expected):
            fail(tried, f"{_short(got)} (a {type(got).__name__})",
                 f"{_short(expected)} (a {type(expected).__name__})", hint, raw=True)
        fail(tried, got, expected, hint)


def _same_data(got: Any, expected: Any) -> bool:
    if type(got) is not type(expected):
        return False
    if isinstance(got, (list, tuple)):
        return len(got) == len(expected) and all(map(_same_data, got, expected))
    if isinstance(got, dict):
        return got.keys() == expected.keys() and all(_same_data(got[k], expected[k])
                                                      for k in got)
    if isinstance(got, torch.Tensor):
        return agrees(got, expected, rtol=0.0, atol=0.0)
    if isinstance(got, float) and not (math.isfinite(got) and math.isfinite(expected)):
        return False  # a NaN is never equal, and the graders expect no inf
    return bool(got == expected)


def _number_problem(got: Any, expected: float | int, rtol: float, atol: float) -> str:
    """Why ``got`` is not ``expected`` (empty if it is): exact for ints, close for floats."""
    kind = type(got)
    if type(expected) is int:  # counts and sizes: an int, exactly (True is not 1)
        if kind is not int:
            return f"a {kind.__name__}, not an int"
        return "" if got == expected else "different"
    if kind not in (int, float):
        return f"a {kind.__name__}, not a number"
    if not math.isfinite(got):
        return "not a finite number"
    return "" if abs(got - expected) <= atol + rtol * abs(expected) else "different"


def check_number(got: Any, expected: float | int, tried: str, hint: str = "", *,
                 rtol: float = 0.0, atol: float = 0.0, what: str = "") -> None:
    """A Python number equal to ``expected``: an int exactly when ``expected`` is an int, else
    finite and within ``atol + rtol * |expected|`` (NaN and inf never pass)."""
    problem = _number_problem(got, expected, rtol, atol)
    if not problem:
        return
    label = f"{what}: " if what else ""
    shown, want = distinct(got, expected)
    if problem != "different":
        shown = f"{shown} ({problem})"
    if type(expected) is float and (rtol or atol):
        want += f" (within {_tolerance(rtol, atol)})"
    fail(tried, label + shown, label + want, hint, raw=True)


def _tolerance(rtol: float, atol: float) -> str:
    parts = ([f"rtol {rtol:g}"] if rtol else []) + ([f"atol {atol:g}"] if atol else [])
    return ", ".join(parts)


def agrees(got: Any, expected: Any, rtol: float = 1e-6, atol: float = 0.0) -> bool:
    """The rule of ``check_tensor`` / ``check_number`` as a bool: a plain tensor of the same
    shape and dtype, finite, and close; or a number equal within the tolerances."""
    if isinstance(expected, torch.Tensor):
        return not _tensor_problem(got, expected, rtol, atol)
    if type(expected) in (int, float):
        return not _number_problem(got, expected, rtol, atol)
    return _same_data(got, expected)


def _tensor_problem(got: Any, expected: torch.Tensor, rtol: float, atol: float) -> str:
    if type(got) is not torch.Tensor:  # a subclass could answer comparisons its own way
        return "type"
    if got.shape != expected.shape:
        return "shape"
    if got.dtype != expected.dtype:
        return "dtype"
    if expected.is_floating_point() or expected.is_complex():
        if not torch.isfinite(got).all():
            return "finite"
        if not torch.allclose(got, expected, rtol=rtol, atol=atol):
            return "values"
    elif not torch.equal(got, expected):
        return "values"
    return ""


def check_tensor(got: Any, expected: torch.Tensor, tried: str, hint: str = "", *,
                 rtol: float = 1e-4, atol: float = 1e-5, what: str = "the output",
                 source: str = "the reference") -> None:
    """Type, dtype, exact shape, finiteness, then closeness (no broadcasting can sneak in).

    ``source`` names where ``expected`` came from in the feedback (e.g. "F.conv2d").
    """
    problem = _tensor_problem(got, expected, rtol, atol)
    if not problem:
        return
    if problem == "type":
        fail(tried, f"{what} is a {type(got).__name__}", "a torch.Tensor", hint, raw=True)
    if problem == "shape":
        fail(tried, f"{what} has shape {tuple(got.shape)}", f"shape {tuple(expected.shape)}",
             hint, raw=True)
    if problem == "dtype":
        fail(tried, f"{what} has dtype {got.dtype}", f"dtype {expected.dtype}", hint, raw=True)
    if problem == "finite":
        fail(tried, f"{what} contains NaN or inf", "finite values", hint, raw=True)
    diff = (got.double() - expected.double()).abs()
    where = tuple(int(i) for i in torch.nonzero(diff == diff.max())[0])
    mine, want = distinct(float(got[where].item()), float(expected[where].item()))
    fail(tried, f"{what} differs from {source} by up to {diff.max().item():.3g} "
         f"(first at index {where}: {mine} vs {want})",
         f"agreement within rtol={rtol:g}, atol={atol:g}", hint, raw=True)


def fail_on_findings(found: list, tried: str, expected: str, hint: str) -> None:
    """Fail with the first findings of the static check (grader/static_check.py), if any."""
    if found:
        fail(tried, "; ".join(str(f) for f in found[:3]), expected, hint, raw=True)
