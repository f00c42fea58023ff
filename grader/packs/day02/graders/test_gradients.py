"""Hidden graders for ``gradients.py``: exercise ``grad_norms`` (6 points).

``measure_gradient_norms`` runs on a small conv-BN-ReLU CNN the probe builds fresh from the
case's seed on every call (never the student's ResNet). A second call on the same model is
NOT graded: the contract says "cross-entropy, one backward" and the lesson's own code does not
clear old gradients, so a student who follows the lesson exactly would accumulate them; the
reference clears them, and both earn full marks here.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grader.feedback import check_equal, fail
from grader.packs.day02 import strategies as S
from grader.packs.day02.probes import gradients as P

NORM_HINT = ("one forward, F.cross_entropy(model(x), y), one backward; then for each "
             "(name, p) in model.named_parameters() with p.dim() >= 2: the L2 norm "
             "p.grad.norm() as a float")
SPREAD_HINT = "log10(max / min) over the norms (base 10, not the natural log)"


def _describe(case: dict) -> str:
    return (f"measure_gradient_norms on a fresh CNN of {case['depth']} conv-BN-ReLU block(s) "
            f"of width {case['width']} (conv bias: {case['conv_bias']}), pool, "
            f"Linear({case['width']}, {case['classes']}); x of shape "
            f"({case['batch']}, 3, {case['size']}, {case['size']}), seed {case['seed']}")


def _norms(student, reference, case: dict) -> tuple[dict, dict, str]:
    got = student.run(P.gradient_norms, case)
    expected = reference.run(P.gradient_norms, case)
    tried = _describe(case)
    if "error" in got:
        fail(tried, got["error"], "a list of (name, float) rows", NORM_HINT, raw=True)
    return got, expected, tried


@pytest.mark.grad_norms
@pytest.mark.points(2)
@settings(max_examples=6)
@given(case=S.grad_model_case())
def test_norm_names_in_order(student, reference, case):
    """one row per weight with dim >= 2, in named_parameters() order"""
    got, expected, tried = _norms(student, reference, case)
    check_equal(got["names"], expected["names"], tried + ": the row names",
                "biases and BatchNorm weights have dim 1 and are skipped; keep the order of "
                "model.named_parameters()")


@pytest.mark.grad_norms
@pytest.mark.points(2)
@settings(max_examples=6)
@given(case=S.grad_model_case())
def test_norm_values(student, reference, case):
    """each row holds the L2 norm of that weight's gradient (rtol 1e-4)"""
    got, expected, tried = _norms(student, reference, case)
    rows = dict(zip(got["names"], got["values"], strict=True))
    for name, value in zip(expected["names"], expected["values"], strict=True):
        if name not in rows:
            fail(tried, f"no row for {name!r}", f"a row ({name!r}, {value:.6g})", NORM_HINT,
                 raw=True)
        mine = rows[name]
        if mine is None or not math.isclose(mine, value, rel_tol=1e-4, abs_tol=1e-9):
            fail(tried, f"{name}: {mine}", f"{name}: {value:.6g} (within rtol 1e-4)",
                 NORM_HINT, raw=True)


def _spread_text(got: dict):
    return got["value"] if got["value"] is not None else f"a {got['type']}"


@pytest.mark.grad_norms
@pytest.mark.points(1)
@given(norms=S.norm_list())
def test_spread_is_log10_ratio(student, reference, norms):
    """gradient_norm_spread is log10(max / min)"""
    case = {"norms": norms}
    got = student.run(P.spread, case)
    expected = reference.run(P.spread, case)["value"]
    if got["value"] is None or not math.isclose(got["value"], expected, rel_tol=1e-6,
                                                abs_tol=1e-6):
        fail(f"gradient_norm_spread({norms!r})", _spread_text(got), expected, SPREAD_HINT)


@pytest.mark.grad_norms
@pytest.mark.points(0.5)
@settings(max_examples=8)
@given(value=st.floats(1e-6, 1e3), n=st.integers(1, 6))
def test_spread_of_equal_norms_is_zero(student, value, n):
    """equal norms (or a single one) give a spread of 0.0"""
    norms = [(f"layer{i}.weight", value) for i in range(n)]
    got = student.run(P.spread, {"norms": norms})
    if got["value"] is None or abs(got["value"]) > 1e-12:
        fail(f"gradient_norm_spread({norms!r})", _spread_text(got), 0.0,
             "max / min is 1 when all norms are equal, and log10(1) = 0")


@pytest.mark.grad_norms
@pytest.mark.points(0.5)
def test_results_are_python_floats(student):
    """norms and spread are Python floats, not tensors"""
    case = {"depth": 2, "width": 4, "classes": 3, "conv_bias": True, "batch": 4, "size": 6,
            "seed": 5}
    got = student.run(P.gradient_norms, case)
    if "error" in got:
        fail(_describe(case), got["error"], "a list of (name, float) rows", NORM_HINT, raw=True)
    hint = "call .item() on a 0-d tensor to get a Python float"
    wrong = [(n, t) for n, t in zip(got["names"], got["types"], strict=True) if t != "float"]
    if wrong:
        fail(_describe(case), f"the norm of {wrong[0][0]} is a {wrong[0][1]}", "a float", hint,
             raw=True)
    norms = [("a.weight", 0.5), ("b.weight", 2.0)]
    kind = student.run(P.spread, {"norms": norms})["type"]
    if kind != "float":
        fail(f"gradient_norm_spread({norms!r})", f"a {kind}", "a float", hint, raw=True)
