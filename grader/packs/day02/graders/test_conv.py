"""Hidden graders for ``conv.py``: exercises ``conv_output_size`` and ``conv2d``."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings

from grader.feedback import check_equal, check_tensor, fail
from grader.packs.day02 import strategies as S
from grader.packs.day02.probes import conv as P

SIZE_HINT = ("H_out = floor((H_in + 2p - d(k - 1) - 1) / s) + 1; the dilated kernel spans "
             "d(k - 1) + 1 pixels")


# valid geometries (plain, padded, strided): the evidence behind "rejects invalid arguments
# (and only those)"; a function that handles stride 1 and raises on everything else would
# otherwise pass. No dilation: a formula that forgets it loses the value properties already,
# and still tells invalid from valid.
PLAIN_GEOMETRIES = ((5, 3, 1, 0, 1), (8, 1, 1, 0, 1), (6, 3, 1, 1, 1), (9, 3, 2, 1, 1))


def _call(args: tuple) -> str:
    size, k, s, p, d = args
    return (f"conv_output_size(size={size}, kernel_size={k}, stride={s}, padding={p}, "
            f"dilation={d})")


@pytest.mark.conv_output_size
@pytest.mark.points(2)
@given(args=S.conv_geometry())
def test_output_size_matches_reference(student, reference, args):
    """matches the output-size formula on valid geometries

    Evidence: the returned int against the reference's on drawn geometries.
    """
    case = {"args": args}
    check_equal(student.run(P.output_size, case), reference.run(P.output_size, case),
                _call(args), SIZE_HINT)


@pytest.mark.conv_output_size
@pytest.mark.points(2)
@given(args=S.conv_geometry(max_size=24))
def test_output_size_matches_torch(student, args):
    """agrees with the shape torch.nn.functional.conv2d produces

    Evidence: the returned int against the shape F.conv2d gives (an oracle).
    """
    size, k, s, p, d = args
    actual = F.conv2d(torch.zeros(1, 1, size, size), torch.zeros(1, 1, k, k), stride=s,
                      padding=p, dilation=d).shape[-1]
    check_equal(student.run(P.output_size, {"args": args}), int(actual), _call(args),
                "compare with the shape F.conv2d returns for the same arguments")


@pytest.mark.conv_output_size
@pytest.mark.points(2)
@given(args=S.invalid_conv_geometry())
def test_output_size_rejects_invalid(student, reference, args):
    """raises ValueError on invalid arguments or an empty output (and only on those)

    Evidence: the name of what was raised, scored with plain valid geometries computed right
    (rejecting means telling invalid from valid: a function that always raises is not it).
    """
    got = student.run(P.output_size_error, {"args": args})
    check_equal(got, "ValueError", _call(args),
                "non-positive size/kernel/stride/dilation, negative padding, or a kernel wider "
                "than the padded input must raise ValueError")
    for valid in PLAIN_GEOMETRIES:
        case = {"args": valid}
        check_equal(student.run(P.output_size, case), reference.run(P.output_size, case),
                    _call(valid) + " (valid: it must not be rejected)", SIZE_HINT)


# -- conv2d ----------------------------------------------------------------------------------
CHECKERBOARD = [[1, 0, 1, 0, 1], [0, 1, 0, 1, 0], [1, 0, 1, 0, 1], [0, 1, 0, 1, 0],
                [1, 0, 1, 0, 1]]
X_KERNEL = [[1, 0, 1], [0, 1, 0], [1, 0, 1]]
CONV_HINT = ("output[n, o, i, j] = bias[o] + sum over c, m, k of "
             "input[n, c, i*s + m*d - p, j*s + k*d - p] * weight[o, c, m, k]")


def _describe(case: dict) -> str:
    if "values" in case:
        return "conv2d on the lesson's 5x5 checkerboard with the 3x3 'X' kernel"
    return (f"conv2d(input {case['input_shape']}, weight {case['weight_shape']}, "
            f"bias={'yes' if case['bias'] else 'None'}, stride={case['stride']}, "
            f"padding={case['padding']}, dilation={case['dilation']})")


def _read_by_hand(static_scan) -> None:
    """conv.py's source, read as text in the grader (grader/static_check.py): what the worker,
    the student's own process, cannot hide from the runtime recorder's check."""
    found = static_scan.hand_made("conv", "conv2d")
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        fail("reading conv.py as text: conv2d, what it calls, and the modules that run with it",
             f"{found[0]}{more}", "a convolution built from slicing, unfold or matmul/einsum, "
             "with nothing that reaches into torch's dispatcher or the interpreter",
             "F.conv2d, nn.Conv2d and their aliases score 0 here, and so does code that could "
             "hide them from the grader (torch._C, frames, sys.modules, exec, threads...)",
             raw=True)


def _run(student, reference, case: dict, static_scan) -> tuple[dict, dict]:
    _read_by_hand(static_scan)
    got = student.run(P.conv2d_run, case)
    banned = P.convolution_ops(got.get("ops", []))
    if banned:
        fail(_describe(case), f"your conv2d reached torch's convolution operator ({banned[0]})",
             "a convolution built from slicing, unfold or matmul/einsum",
             "the exercise is to build the convolution by hand: F.conv2d, nn.Conv2d and "
             "their aliases score 0 here", raw=True)
    return got, reference.run(P.conv2d_run, case)


def _check_forward(student, reference, case: dict, static_scan) -> None:
    got, expected = _run(student, reference, case, static_scan)
    check_tensor(got["output"], expected["output"], _describe(case), CONV_HINT,
                 rtol=1e-6, atol=1e-8)


@pytest.mark.conv2d
@pytest.mark.points(2)
def test_conv2d_worked_example(student, reference, static_scan):
    """reproduces the lesson's worked example

    Evidence: the output against the reference's; the recorded operators and the source read
    as text.
    """
    case = {"values": {"input": [[CHECKERBOARD]], "weight": [[X_KERNEL]]}, "stride": 1,
            "padding": 0, "dilation": 1, "bias": False}
    _check_forward(student, reference, case, static_scan)


@pytest.mark.conv2d
@pytest.mark.points(3)
@settings(max_examples=25)
@given(case=S.conv2d_case(bias=False, square=True, unit=True))
def test_conv2d_values_simple(student, reference, static_scan, case):
    """matches F.conv2d for square kernels, stride 1, with padding

    Evidence: the output against the reference's on drawn tensors; the recorded operators
    and the source read as text.
    """
    _check_forward(student, reference, case, static_scan)


@pytest.mark.conv2d
@pytest.mark.points(3)
@settings(max_examples=40)
@given(case=S.conv2d_case())
def test_conv2d_values_general(student, reference, static_scan, case):
    """matches F.conv2d across strides, paddings, dilations, rectangular kernels and bias

    Evidence: the output against the reference's on drawn tensors; the recorded operators
    and the source read as text.
    """
    _check_forward(student, reference, case, static_scan)


@pytest.mark.conv2d
@pytest.mark.points(3)
@settings(max_examples=25)
@given(case=S.conv2d_case())
def test_conv2d_gradients(student, reference, static_scan, case):
    """gradients for input, weight and bias match F.conv2d's

    Evidence: the three gradients against the reference's for the grader's upstream
    gradient; the recorded operators and the source read as text.
    """
    got, expected = _run(student, reference, case, static_scan)
    for key in ("grad_input", "grad_weight", "grad_bias"):
        if key in expected:
            check_tensor(got.get(key), expected[key], _describe(case) + " then backward",
                         "build the output from differentiable torch ops (no .item(), numpy "
                         "or in-place writes into a tensor that needs grad)",
                         rtol=1e-6, atol=1e-8, what=f"the {key.replace('_', ' of ', 1)}")


@pytest.mark.conv2d
@pytest.mark.points(1)
def test_conv2d_hand_made(student, static_scan):
    """is built by hand: no call into torch's convolution operators

    Evidence: the output against F.conv2d's, the operators recorded while it ran, and the
    grader's own reading of conv.py and the modules it imports (as text, never run).
    """
    _read_by_hand(static_scan)
    case = {"input_shape": (1, 2, 6, 6), "weight_shape": (3, 2, 3, 3), "bias": True,
            "stride": 1, "padding": 1, "dilation": 1, "seed": 7}
    got = student.run(P.conv2d_run, case)
    banned = P.convolution_ops(got.get("ops", []))
    if banned:
        fail(_describe(case), f"your conv2d reached torch's convolution operator ({banned[0]})",
             "no convolution operator", "build it from slicing/unfold and sums", raw=True)
    expected = F.conv2d(*[P.conv_tensors(case)[k] for k in ("input", "weight", "bias")],
                        padding=1)
    check_tensor(got["output"], expected, _describe(case), CONV_HINT, rtol=1e-6, atol=1e-8,
                 source="F.conv2d")
