"""Self-check of ``conv.py``: exercises ``conv_output_size`` and ``conv2d``.

Oracles: the shapes and values of ``torch.nn.functional.conv2d`` and the lesson's worked example.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils._python_dispatch import TorchDispatchMode

from .feedback import msg

SIZE_HINT = ("H_out = floor((H_in + 2p - d(k - 1) - 1) / s) + 1: the dilated kernel spans "
             "d(k - 1) + 1 pixels and a partial last window is dropped (floor, not ceil)")
CONV_HINT = ("output[n, o, i, j] = bias[o] + sum over c, m, k of "
             "input[n, c, i*s + m*d - p, j*s + k*d - p] * weight[o, c, m, k] "
             "(no kernel flip: it is a cross-correlation)")


def _call(size: int, k: int, s: int = 1, p: int = 0, d: int = 1) -> str:
    return f"conv_output_size({size}, kernel_size={k}, stride={s}, padding={p}, dilation={d})"


@st.composite
def geometry(draw, max_size: int = 20) -> tuple[int, int, int, int, int]:
    """(size, kernel, stride, padding, dilation) whose output is not empty."""
    k, d = draw(st.integers(1, 6)), draw(st.integers(1, 3))
    s, p = draw(st.integers(1, 4)), draw(st.integers(0, 3))
    span = d * (k - 1) + 1
    size = draw(st.integers(max(1, span - 2 * p), max(max_size, span)))
    return size, k, s, p, d


# -- conv_output_size ----------------------------------------------------------------------------
@pytest.mark.conv_output_size
@pytest.mark.points(2)
def test_output_size_lesson_examples(load_exercise):
    """gives the lesson's output sizes"""
    conv = load_exercise("conv")
    cases = [((5, 3), 3, "the lesson's 5x5 input, 3x3 kernel"),
             ((32, 3, 1, 1), 32, "'same' padding p = floor(k/2) keeps 32"),
             ((32, 3, 2, 1), 16, "stride 2 halves 32"),
             ((6, 3, 2), 2, "(6 - 3) / 2 = 1.5 rounds DOWN"),
             ((7, 3, 1, 0, 2), 3, "dilation 2 makes a 3x3 kernel span 5 pixels"),
             ((3, 3), 1, "the kernel fits exactly once"),
             ((1, 3, 1, 1), 1, "padding lets a 3-kernel fit a 1-pixel input")]
    for args, expected, why in cases:
        got = conv.conv_output_size(*args)
        assert type(got) is int and got == expected, msg(
            _call(*args), repr(got), f"{expected} (an int): {why}", SIZE_HINT)


@pytest.mark.conv_output_size
@pytest.mark.points(2)
def test_output_size_matches_torch(load_exercise):
    """agrees with the shape F.conv2d produces"""
    conv = load_exercise("conv")

    @settings(max_examples=30)
    @given(geometry())
    def check(args: tuple[int, int, int, int, int]) -> None:
        size, k, s, p, d = args
        expected = F.conv2d(torch.zeros(1, 1, size, 1), torch.zeros(1, 1, k, 1), stride=s,
                            padding=(p, 0), dilation=d).shape[2]
        got = conv.conv_output_size(size, k, s, p, d)
        assert got == expected, msg(_call(*args), repr(got),
                                     f"{expected} (the height F.conv2d returns)", SIZE_HINT)

    check()


@pytest.mark.conv_output_size
@pytest.mark.points(1)
def test_output_size_rejects_invalid(load_exercise):
    """raises ValueError on invalid arguments or an empty output"""
    conv = load_exercise("conv")
    cases = [((0, 3), "a size of 0"), ((-4, 3), "a negative size"), ((8, 0), "a kernel of 0"),
             ((8, 3, 0), "a stride of 0"), ((8, 3, 1, -1), "a negative padding"),
             ((8, 3, 1, 0, 0), "a dilation of 0"), ((2, 3), "a 3-kernel on a 2-pixel input"),
             ((5, 3, 1, 0, 3), "a dilated span of 7 on a 5-pixel input")]
    for args, why in cases:
        try:
            outcome = f"returned {conv.conv_output_size(*args)!r}"
        except ValueError:
            continue
        except NotImplementedError:
            raise
        except Exception as exc:  # noqa: BLE001  (the wrong kind of error teaches as much as none)
            outcome = f"raised {type(exc).__name__}: {exc}"
        raise AssertionError(msg(_call(*args) + f" ({why})", outcome, "a ValueError",
                                  "check size, kernel, stride, dilation >= 1 and padding >= 0, "
                                  "and that the dilated kernel fits in the padded input"))


# -- conv2d --------------------------------------------------------------------------------------
CHECKERBOARD = [[1, 0, 1, 0, 1], [0, 1, 0, 1, 0], [1, 0, 1, 0, 1], [0, 1, 0, 1, 0],
                [1, 0, 1, 0, 1]]
X_KERNEL = [[1, 0, 1], [0, 1, 0], [1, 0, 1]]
X_OUTPUT = [[5, 0, 5], [0, 5, 0], [5, 0, 5]]

pairs = st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3)))
paddings = st.one_of(st.integers(0, 2), st.tuples(st.integers(0, 2), st.integers(0, 2)))


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return v if isinstance(v, tuple) else (v, v)


@st.composite
def conv_case(draw) -> dict:
    """Shapes, stride/padding/dilation (ints or pairs), bias or not, and a seed."""
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride, padding, dilation = draw(pairs), draw(paddings), draw(pairs)
    (dh, dw), (ph, pw) = _pair(dilation), _pair(padding)
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - 2 * ph), 10))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - 2 * pw), 10))
    n, c, o = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return {"input": (n, c, h, w), "weight": (o, c, kh, kw), "bias": draw(st.booleans()),
            "stride": stride, "padding": padding, "dilation": dilation,
            "seed": draw(st.integers(0, 2**31 - 1))}


def _tensors(case: dict) -> list[torch.Tensor | None]:
    g = torch.Generator().manual_seed(case["seed"])
    x = torch.randn(case["input"], generator=g, dtype=torch.float64)  # (N, C, H, W)
    w = torch.randn(case["weight"], generator=g, dtype=torch.float64)  # (O, C, kh, kw)
    b = torch.randn(case["weight"][0], generator=g, dtype=torch.float64) if case["bias"] else None
    return [x, w, b]


def _describe(case: dict) -> str:
    return (f"conv2d(input {case['input']}, weight {case['weight']}, "
            f"bias={'(O,)' if case['bias'] else 'None'}, stride={case['stride']}, "
            f"padding={case['padding']}, dilation={case['dilation']})")


def _check_close(got: object, expected: torch.Tensor, tried: str, what: str = "output") -> None:
    assert isinstance(got, torch.Tensor), msg(tried, f"a {type(got).__name__}",
                                               "a torch.Tensor", CONV_HINT)
    assert got.shape == expected.shape, msg(
        tried, f"{what} of shape {tuple(got.shape)}", f"shape {tuple(expected.shape)}",
        "H_out and W_out follow conv_output_size, per axis")
    assert got.dtype == expected.dtype, msg(
        tried, f"{what} of dtype {got.dtype}", f"dtype {expected.dtype}",
        "build the result in the input's dtype (e.g. input.new_zeros(...))")
    err = (got - expected).abs().max().item()
    assert torch.allclose(got, expected, rtol=1e-6, atol=1e-8), msg(
        tried, f"{what} differs from F.conv2d's by up to {err:.3g}", "the same values", CONV_HINT)


@pytest.mark.conv2d
@pytest.mark.points(2)
def test_conv2d_worked_example(load_exercise):
    """reproduces the lesson's worked example"""
    conv = load_exercise("conv")
    x = torch.tensor([[CHECKERBOARD]], dtype=torch.float64)  # (1, 1, 5, 5)
    w = torch.tensor([[X_KERNEL]], dtype=torch.float64)  # (1, 1, 3, 3)
    got = conv.conv2d(x, w)
    expected = torch.tensor([[X_OUTPUT]], dtype=torch.float64)  # (1, 1, 3, 3)
    shown = got.tolist() if isinstance(got, torch.Tensor) else repr(got)
    assert isinstance(got, torch.Tensor) and got.shape == expected.shape and \
        torch.equal(got, expected), msg(
            "conv2d on the lesson's 5x5 checkerboard with the 3x3 'X' kernel", shown,
            X_OUTPUT, "where the kernel's centre sits on a 1, all five ones line up with ones")


@pytest.mark.conv2d
@pytest.mark.points(3)
def test_conv2d_matches_torch(load_exercise):
    """matches F.conv2d across strides, paddings, dilations, rectangular kernels and bias"""
    conv = load_exercise("conv")

    @settings(max_examples=25)
    @given(conv_case())
    def check(case: dict) -> None:
        x, w, b = _tensors(case)
        opts = {k: case[k] for k in ("stride", "padding", "dilation")}
        _check_close(conv.conv2d(x, w, b, **opts), F.conv2d(x, w, b, **opts), _describe(case))

    check()


@pytest.mark.conv2d
@pytest.mark.points(2)
def test_conv2d_per_axis_arguments(load_exercise):
    """handles per-axis (tuple) stride, padding and dilation and a bias"""
    conv = load_exercise("conv")
    case = {"input": (2, 3, 9, 8), "weight": (4, 3, 2, 3), "bias": True, "stride": (2, 1),
            "padding": (0, 2), "dilation": (1, 2), "seed": 0}
    x, w, b = _tensors(case)
    opts = {k: case[k] for k in ("stride", "padding", "dilation")}
    _check_close(conv.conv2d(x, w, b, **opts), F.conv2d(x, w, b, **opts), _describe(case))
    zero_w = torch.zeros_like(w)  # only the bias is left: one constant per output channel
    _check_close(conv.conv2d(x, zero_w, b, **opts), F.conv2d(x, zero_w, b, **opts),
                 _describe(case) + " with an all-zero weight (the output is the bias alone)")


@pytest.mark.conv2d
@pytest.mark.points(2)
def test_conv2d_gradients(load_exercise):
    """gradients for input, weight and bias match F.conv2d's"""
    conv = load_exercise("conv")

    @settings(max_examples=15)
    @given(conv_case())
    def check(case: dict) -> None:
        leaves = [t.requires_grad_(True) for t in _tensors(case) if t is not None]
        x, w, b = leaves[0], leaves[1], (leaves[2] if case["bias"] else None)
        opts = {k: case[k] for k in ("stride", "padding", "dilation")}
        out = conv.conv2d(x, w, b, **opts)
        tried = _describe(case) + ", then backward"
        assert isinstance(out, torch.Tensor) and out.requires_grad, msg(
            tried, "an output autograd cannot differentiate", "an output with requires_grad",
            "build it from differentiable torch ops: no .item(), numpy or .detach()")
        ref = F.conv2d(x, w, b, **opts)
        upstream = torch.randn(ref.shape, dtype=ref.dtype,
                               generator=torch.Generator().manual_seed(case["seed"] + 1))
        assert out.shape == ref.shape, msg(tried, f"output shape {tuple(out.shape)}",
                                            f"shape {tuple(ref.shape)}", SIZE_HINT)
        got = torch.autograd.grad(out, leaves, upstream, allow_unused=True)
        expected = torch.autograd.grad(ref, leaves, upstream)
        for name, g, e in zip(("input", "weight", "bias"), got, expected, strict=False):
            assert g is not None, msg(tried, f"no gradient reaches the {name}",
                                       "a gradient", f"the {name} must take part in the output")
            _check_close(g, e, tried, f"the gradient of the {name}")

    check()


class _AtenOps(TorchDispatchMode):
    """Records every aten op that runs, whatever alias the Python code called it by."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.add(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


@pytest.mark.conv2d
@pytest.mark.points(1)
def test_conv2d_hand_made(load_exercise):
    """is built by hand: no call into torch's convolution operators"""
    conv = load_exercise("conv")
    x, w = torch.randn(1, 2, 6, 6), torch.randn(3, 2, 3, 3)  # (N, C, H, W), (O, C, kh, kw)
    recorder = _AtenOps()
    with recorder:
        conv.conv2d(x, w, None, 1, 1, 1)
    banned = sorted(op for op in recorder.ops if "conv" in op)
    assert not banned, msg("conv2d(input (1, 2, 6, 6), weight (3, 2, 3, 3), padding=1)",
                            f"it reached torch's convolution operator {banned}",
                            "no convolution operator", "the exercise is to build it by hand: "
                            "slice the padded input per kernel offset (or unfold) and sum")
