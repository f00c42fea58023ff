"""Hidden graders for ``visualize.py``: exercise ``filters`` (4 points).

The oracle is torchvision's ``make_grid(w, nrow, padding, normalize=True, scale_each=True)``,
which the contract names as the layout to reproduce (filter_grid's default padding is 1,
make_grid's is 2: the oracle is always called with filter_grid's values). It runs as a
reference result (probes/visualize.py: make_grid_oracle), cached with the others.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings

from grader.feedback import check_tensor, fail, fail_on_findings
from grader.packs.day02 import strategies as S
from grader.packs.day02.probes import visualize as P

GRID_HINT = ("min(nrow, O) columns and ceil(O / columns) rows, filled row by row; `padding` "
             "zero pixels around and between tiles; each filter scaled to [0, 1] by its own "
             "min and max")


def oracle(reference, case: dict) -> torch.Tensor:
    return reference.run(P.make_grid_oracle, case)  # (3, H, W)


def _describe(case: dict) -> str:
    args = "" if case.get("nrow") is None else \
        f", nrow={case['nrow']}, padding={case['padding']}"
    text = f"filter_grid(filters of shape {case['shape']}{args})"
    for index, scale, shift in case.get("boost", ()):
        text += f"; filter {index} was scaled by {scale:g} and shifted by {shift:g}"
    return text


def by_hand(static_scan) -> None:
    """The grid is the exercise: make_grid is the grader's oracle, not the student's answer.
    Read from the source of visualize.py and what it imports (as text, never run)."""
    found = static_scan.uses(static_scan.import_closure("visualize"),
                             "torchvision.utils.make_grid",
                             "the grader's oracle: the exercise is to build the grid")
    fail_on_findings(found, "the source of visualize.py and the modules it imports, read as text",
                     "a grid built by hand",
                     "scale each filter and tile them yourself (slicing, torch.zeros, copying "
                     "tiles); torchvision.utils.make_grid is what your result is compared with")


def _check(student, reference, case: dict, hint: str = GRID_HINT,
           static_scan=None) -> torch.Tensor:
    if static_scan is not None:
        by_hand(static_scan)
    got = student.run(P.grid, case)
    check_tensor(got, oracle(reference, case), _describe(case), hint, rtol=1e-5, atol=1e-6,
                 what="the grid", source="torchvision's make_grid")
    return got


@pytest.mark.filters
@pytest.mark.points(1.5)
@settings(max_examples=20)
@given(case=S.filter_case())
def test_matches_make_grid(student, reference, static_scan, case):
    """matches make_grid(normalize=True, scale_each=True) for any count, size, nrow, padding

    Evidence: the grid against torchvision's make_grid on the grader's filters, and the source
    read as text (make_grid itself is not the answer).
    """
    _check(student, reference, case, static_scan=static_scan)


@pytest.mark.filters
@pytest.mark.points(1)
def test_default_resnet_conv1(student, reference, static_scan):
    """64 filters of 3x3x3 with the defaults give a (3, 33, 33) image in [0, 1]

    Evidence: the grid against make_grid's, and the source read as text.
    """
    by_hand(static_scan)
    case = {"shape": (64, 3, 3, 3), "seed": 18}
    got = student.run(P.grid, case)
    if type(got) is torch.Tensor and got.shape == (3, 33, 33) and got.is_floating_point() \
            and (got.min() < 0 or got.max() > 1):
        fail(_describe(case), f"values from {got.min().item():.3g} to {got.max().item():.3g}",
             "values in [0, 1]", "scale each filter: (f - f.min()) / (f.max() - f.min())",
             raw=True)
    check_tensor(got, oracle(reference, case), _describe(case),
                 "defaults nrow=8, padding=1: 8 x 8 tiles of 3x3 with 1-pixel borders, "
                 "8 * (3 + 1) + 1 = 33", rtol=1e-5, atol=1e-6, what="the grid",
                 source="torchvision's make_grid")


@pytest.mark.filters
@pytest.mark.points(1)
def test_each_filter_scaled_on_its_own(student, reference, static_scan):
    """each filter uses its own min and max (one wide filter squashes no other)

    Evidence: the grid against make_grid's, and the source read as text.
    """
    case = {"shape": (12, 3, 4, 4), "seed": 3, "nrow": 4, "padding": 1,
            "boost": ((0, 100.0, 50.0), (7, 0.01, -3.0))}
    _check(student, reference, case, "min-max scale every filter by its own range, not the "
           "range of all filters together: a filter with a huge range must not flatten the "
           "others", static_scan)


@pytest.mark.filters
@pytest.mark.points(0.5)
@settings(max_examples=5)
@given(case=S.filter_case(channels=1))
def test_single_channel_filters(student, reference, static_scan, case):
    """single-channel filters become grey RGB tiles (3 channels)

    Evidence: the grid against make_grid's, and the source read as text.
    """
    _check(student, reference, case, "repeat a 1-channel filter to 3 channels (grey RGB), as "
           "make_grid does, then scale and tile as usual", static_scan)
