"""Hidden graders for ``gradients.py``: exercise ``grad_norms`` (6 points).

``measure_gradient_norms`` runs on a small conv-BN-ReLU CNN the probe builds fresh from the
case's seed on every call (never the student's ResNet). A second call on the same model is
NOT graded: the contract says "cross-entropy, one backward" and the lesson's own code does not
clear old gradients, so a student who follows the lesson exactly would accumulate them; the
reference clears them, and both earn full marks here.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grader.feedback import agrees, check_equal, check_number, fail
from grader.packs.day02 import strategies as S
from grader.packs.day02.probes import gradients as P

NORM_HINT = ("one forward, F.cross_entropy(model(x), y), one backward; then for each "
             "(name, p) in model.named_parameters() with p.dim() >= 2: the L2 norm "
             "p.grad.norm() as a float")
SPREAD_HINT = "log10(max / min) over the norms (base 10, not the natural log)"
NORM_RTOL = 1e-4  # float32 norms of float32 gradients, summed in another order


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
    if not (type(got.get("names")) is type(got.get("values")) is type(got.get("types")) is list
            and len(got["names"]) == len(got["values"]) == len(got["types"])):
        fail(tried, "a malformed reply", "names, values and types of one length", NORM_HINT,
             raw=True)
    return got, expected, tried


def values_problem(got: dict, expected: dict) -> str:
    """'' when every row of the reference has a row of the same name with the same norm."""
    rows = dict(zip(got["names"], got["values"], strict=True))
    for name, value in zip(expected["names"], expected["values"], strict=True):
        if name not in rows:
            return f"no row for {name!r}"
        if not agrees(rows[name], value, rtol=NORM_RTOL, atol=1e-9):
            return f"{name}: {rows[name]!r}, the reference's {value:.6g}"
    return ""


def require_values(got: dict, expected: dict, tried: str) -> None:
    """A claim about the rows (names, types) scores only with their norms behind it."""
    problem = values_problem(got, expected)
    if problem:
        fail(tried, f"the claim cannot be verified: the norms differ ({problem})",
             "every row's norm equal to the reference's", NORM_HINT, raw=True)


@pytest.mark.grad_norms
@pytest.mark.points(2)
@settings(max_examples=6)
@given(case=S.grad_model_case())
def test_norm_names_in_order(student, reference, case):
    """one row per weight with dim >= 2, in named_parameters() order

    Evidence: the row names, scored with each row's norm equal to the reference's.
    """
    got, expected, tried = _norms(student, reference, case)
    check_equal(got["names"], expected["names"], tried + ": the row names",
                "biases and BatchNorm weights have dim 1 and are skipped; keep the order of "
                "model.named_parameters()")
    require_values(got, expected, tried)


@pytest.mark.grad_norms
@pytest.mark.points(2)
@settings(max_examples=6)
@given(case=S.grad_model_case())
def test_norm_values(student, reference, case):
    """each row holds the L2 norm of that weight's gradient (rtol 1e-4)

    Evidence: each row's norm against the reference's on the same fresh model and batch.
    """
    got, expected, tried = _norms(student, reference, case)
    rows = dict(zip(got["names"], got["values"], strict=True))
    for name, value in zip(expected["names"], expected["values"], strict=True):
        if name not in rows:
            fail(tried, f"no row for {name!r}", f"a row ({name!r}, {value:.6g})", NORM_HINT,
                 raw=True)
        check_number(rows[name], value, tried, NORM_HINT, rtol=NORM_RTOL, atol=1e-9,
                     what=name)


def _spread_text(got: dict):
    return got["value"] if got["value"] is not None else f"a {got['type']}"


@pytest.mark.grad_norms
@pytest.mark.points(1)
@given(norms=S.norm_list())
def test_spread_is_log10_ratio(student, reference, norms):
    """gradient_norm_spread is log10(max / min)

    Evidence: the value against the reference's on the same norms.
    """
    case = {"norms": norms}
    got = student.run(P.spread, case)
    expected = reference.run(P.spread, case)["value"]
    check_number(_spread_value(got), expected, f"gradient_norm_spread({norms!r})",
                 SPREAD_HINT, rtol=1e-6, atol=1e-6)


def _spread_value(got: dict):
    """The value, or the type's name when the student returned no number."""
    return got["value"] if got["value"] is not None else f"a {got['type']}"


# a spread computed before "equal norms give 0" and the types count: 0.0 and float are known
# without computing anything
PLAIN_NORMS = [("a.weight", 0.37), ("b.weight", 4.2), ("c.weight", 1.9)]


def require_spread(student, reference, claim: str) -> None:
    case = {"norms": PLAIN_NORMS}
    got, want = student.run(P.spread, case), reference.run(P.spread, case)["value"]
    if not agrees(got["value"], want, rtol=1e-6, atol=1e-6):
        fail(f"{claim}, backed by gradient_norm_spread({PLAIN_NORMS!r})",
             f"the claim cannot be verified: that spread is {_spread_text(got)}", want,
             SPREAD_HINT, raw=True)


@pytest.mark.grad_norms
@pytest.mark.points(0.5)
@settings(max_examples=8)
@given(value=st.floats(1e-6, 1e3), n=st.integers(1, 6))
def test_spread_of_equal_norms_is_zero(student, reference, value, n):
    """equal norms (or a single one) give a spread of 0.0

    Evidence: the value (NaN and inf fail), scored with a spread of unequal norms computed
    right.
    """
    norms = [(f"layer{i}.weight", value) for i in range(n)]
    got = student.run(P.spread, {"norms": norms})
    check_number(_spread_value(got), 0.0, f"gradient_norm_spread({norms!r})",
                 "max / min is 1 when all norms are equal, and log10(1) = 0", atol=1e-12)
    require_spread(student, reference, f"gradient_norm_spread({norms!r})")


@pytest.mark.grad_norms
@pytest.mark.points(0.5)
def test_results_are_python_floats(student, reference):
    """norms and spread are Python floats, not tensors

    Evidence: the types, scored with the norms and a spread equal to the reference's.
    """
    case = {"depth": 2, "width": 4, "classes": 3, "conv_bias": True, "batch": 4, "size": 6,
            "seed": 5}
    got, expected, tried = _norms(student, reference, case)
    hint = "call .item() on a 0-d tensor to get a Python float"
    wrong = [(n, t) for n, t in zip(got["names"], got["types"], strict=True) if t != "float"]
    if wrong:
        fail(_describe(case), f"the norm of {wrong[0][0]} is a {wrong[0][1]}", "a float", hint,
             raw=True)
    norms = [("a.weight", 0.5), ("b.weight", 2.0)]
    kind = student.run(P.spread, {"norms": norms})["type"]
    if kind != "float":
        fail(f"gradient_norm_spread({norms!r})", f"a {kind}", "a float", hint, raw=True)
    require_values(got, expected, tried)
    require_spread(student, reference, f"gradient_norm_spread({norms!r})")
