"""Hidden graders for ``param_count.py``: exercise ``param_count`` (8 points).

Closed forms are checked against the parameter count of the real ``torch.nn`` module (an
oracle) and the reference. Model-level functions run on models the probe builds from plain
``torch.nn`` layers (never the student's ResNet). ``parameter_table`` shapes may come back as
tuples, ``torch.Size`` or lists of ints (all converted to tuples by the probe); names must be
str and counts int.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from grader.feedback import check_equal, fail
from grader.packs.day02 import strategies as S
from grader.packs.day02.probes import param_count as P

RESNET18_CIFAR10 = 11_173_962  # docs/design.md: CIFAR ResNet-18 with a 512 -> 10 head


def _numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _call(case: dict) -> str:
    args = ", ".join(repr(a) for a in case["args"])
    if case.get("bias") is not None:
        args += f", bias={case['bias']}"
    return f"{case['fn']}({args})"


def _check_closed_form(student, reference, case: dict, oracle: int, hint: str) -> None:
    got = student.run(P.closed_form, case)
    check_equal(got, oracle, _call(case), hint)
    check_equal(got, reference.run(P.closed_form, case), _call(case), hint)


@pytest.mark.param_count
@pytest.mark.points(1.5)
@given(c_in=st.integers(1, 64), c_out=st.integers(1, 64), k=S.kernel_sizes,
       bias=st.sampled_from([None, True, False]))
def test_conv2d_params(student, reference, c_in, c_out, k, bias):
    """conv2d_params equals nn.Conv2d's count (int or tuple kernel, bias or not)

    Evidence: the returned int against nn.Conv2d's count and the reference's.
    """
    oracle = _numel(nn.Conv2d(c_in, c_out, k, bias=bias is not False))
    _check_closed_form(student, reference, {"fn": "conv2d_params", "args": (c_in, c_out, k),
                                            "bias": bias}, oracle,
                       "in * out * kh * kw weights, plus one bias per output channel only when "
                       "bias=True (the default); a tuple kernel is (kh, kw)")


@pytest.mark.param_count
@pytest.mark.points(0.5)
@settings(max_examples=10)
@given(c=st.integers(1, 1024))
def test_batchnorm2d_params(student, reference, c):
    """batchnorm2d_params equals nn.BatchNorm2d's parameter count

    Evidence: the returned int against nn.BatchNorm2d's count and the reference's.
    """
    _check_closed_form(student, reference, {"fn": "batchnorm2d_params", "args": (c,)},
                       _numel(nn.BatchNorm2d(c)),
                       "a scale (gamma) and a shift (beta) per channel; the running mean and "
                       "variance are buffers, not parameters")


@pytest.mark.param_count
@pytest.mark.points(1)
@given(f_in=st.integers(1, 600), f_out=st.integers(1, 100),
       bias=st.sampled_from([None, True, False]))
def test_linear_params(student, reference, f_in, f_out, bias):
    """linear_params equals nn.Linear's parameter count (with/without bias)

    Evidence: the returned int against nn.Linear's count and the reference's.
    """
    _check_closed_form(student, reference, {"fn": "linear_params", "args": (f_in, f_out),
                                            "bias": bias},
                       _numel(nn.Linear(f_in, f_out, bias=bias is not False)),
                       "in * out weights, plus out biases only when bias=True (the default)")


# -- on grader-built models ----------------------------------------------------------------------
def _describe_spec(spec: dict) -> str:
    parts = []
    for name, layers in spec["groups"]:
        inner = []
        for s in layers:
            frozen = " frozen" if s["frozen"] and s["kind"] != "relu" else ""
            if s["kind"] == "conv":
                inner.append(f"Conv2d({s['in']}, {s['out']}, {s['k']}, bias={s['bias']})"
                             + frozen)
            elif s["kind"] == "linear":
                inner.append(f"Linear({s['in']}, {s['out']}, bias={s['bias']})" + frozen)
            elif s["kind"] == "bn":
                inner.append(f"BatchNorm2d({s['c']})" + frozen)
            else:
                inner.append("ReLU()")
        parts.append(f"{name}: [{', '.join(inner)}]")
    return "a model with " + "; ".join(parts)


def _count_call(case: dict) -> str:
    arg = "" if case["trainable_only"] is None else f", trainable_only={case['trainable_only']}"
    return f"count_parameters(model{arg}) on {_describe_spec(case['spec'])}"


@pytest.mark.param_count
@pytest.mark.points(1.5)
@settings(max_examples=15)
@given(spec=S.param_model_spec(), flag=st.sampled_from([None, False]))
def test_count_parameters_all(student, reference, spec, flag):
    """count_parameters counts every parameter, frozen or not, and no buffers

    Evidence: the returned int against the reference's on a model the grader builds.
    """
    case = {"spec": spec, "trainable_only": flag}
    check_equal(student.run(P.count, case), reference.run(P.count, case), _count_call(case),
                "sum p.numel() over model.parameters(): BatchNorm's running statistics are "
                "buffers (in state_dict, not in parameters()); with trainable_only=False "
                "(the default) frozen parameters count too")


@pytest.mark.param_count
@pytest.mark.points(1)
@settings(max_examples=15)
@given(spec=S.param_model_spec())
def test_count_parameters_trainable(student, reference, spec):
    """count_parameters(trainable_only=True) skips frozen parameters

    Evidence: the returned int against the reference's on a model the grader builds.
    """
    case = {"spec": spec, "trainable_only": True}
    check_equal(student.run(P.count, case), reference.run(P.count, case), _count_call(case),
                "with trainable_only=True count only parameters with requires_grad=True")


def _table_case(student, reference, spec: dict) -> tuple[object, list, str]:
    case = {"spec": spec}
    return (student.run(P.table, case), reference.run(P.table, case),
            f"parameter_table(model) on {_describe_spec(spec)}")


@pytest.mark.param_count
@pytest.mark.points(0.75)
@settings(max_examples=10)
@given(spec=S.param_model_spec())
def test_parameter_table_names(student, reference, spec):
    """parameter_table lists every parameter once, in named_parameters() order

    Evidence: the names (the model's own, known to anyone), scored with each row's element
    count computed right behind them.
    """
    got, expected, tried = _table_case(student, reference, spec)
    hint = "one row per model.named_parameters() entry, in that order (not sorted)"
    if not isinstance(got, list):
        fail(tried, got, "a list of (name, shape, count) rows", hint, raw=True)
    bad = [row for row in got if not isinstance(row, tuple)]
    if bad:
        fail(tried, f"a row {bad[0]}", "rows (name, shape, count)", hint, raw=True)
    check_equal([row[0] for row in got], [row[0] for row in expected], tried + ": the names",
                hint)
    counts = [row[2] if len(row) == 3 else None for row in got]
    if counts != [row[2] for row in expected] or not all(type(n) is int for n in counts):
        fail(tried, "the claim cannot be verified: the rows' element counts are "
             f"{counts[:6]}", f"{[row[2] for row in expected][:6]}",
             "a row's names are scored with its count behind it: p.numel(), an int", raw=True)


@pytest.mark.param_count
@pytest.mark.points(0.75)
@settings(max_examples=10)
@given(spec=S.param_model_spec())
def test_parameter_table_shapes_counts(student, reference, spec):
    """parameter_table rows hold each parameter's shape tuple and element count

    Evidence: each row against the reference's on a model the grader builds.
    """
    got, expected, tried = _table_case(student, reference, spec)
    hint = ("shape: tuple(p.shape) (a tuple of ints); count: p.numel() (an int, the product "
            "of the shape)")
    rows = {row[0]: row for row in got if isinstance(row, tuple)} \
        if isinstance(got, list) else {}
    for name, shape, n in expected:
        row = rows.get(name)
        if row is None:
            fail(tried, f"no row named {name!r}", f"a row ({name!r}, {shape}, {n})", hint,
                 raw=True)
        check_equal(row, (name, shape, n), tried + f": the row of {name}", hint)


@pytest.mark.param_count
@pytest.mark.points(0.5)
def test_resnet18_param_count_cifar10(student, reference):
    """resnet18_param_count() gives 11,173,962 for CIFAR-10

    Evidence: the count (printed in the lesson), scored with the closed formula behind it:
    the right count for another number of classes.
    """
    hint = ("stem conv (no bias) + BN, two BasicBlocks per stage (two 3x3 convs + two "
            "BNs each), a 1x1 conv + BN projection where the width changes "
            "(layer2..4), and the 512 -> num_classes fc with bias")
    for num_classes in (None, 10):
        arg = "" if num_classes is None else "num_classes=10"
        check_equal(student.run(P.resnet18_count, {"num_classes": num_classes}),
                    RESNET18_CIFAR10, f"resnet18_param_count({arg})", hint)
    case = {"num_classes": 37}
    check_equal(student.run(P.resnet18_count, case), reference.run(P.resnet18_count, case),
                "resnet18_param_count(num_classes=37): the formula behind the constant", hint)


@pytest.mark.param_count
@pytest.mark.points(0.5)
@settings(max_examples=8)
@given(num_classes=st.one_of(st.sampled_from([1, 100, 1000]), st.integers(2, 5000)))
def test_resnet18_param_count_classes(student, reference, num_classes):
    """resnet18_param_count follows num_classes (the fc head)

    Evidence: the returned int against the reference's for drawn numbers of classes.
    """
    case = {"num_classes": num_classes}
    check_equal(student.run(P.resnet18_count, case), reference.run(P.resnet18_count, case),
                f"resnet18_param_count(num_classes={num_classes})",
                "only the fc layer depends on num_classes: 512 * num_classes weights plus "
                "num_classes biases")
