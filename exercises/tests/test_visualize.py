"""Self-check of ``visualize.py`` (exercise ``filters``).

Oracle: ``torchvision.utils.make_grid(weight, nrow, padding, normalize=True, scale_each=True)``,
which lays out and scales filters exactly as ``filter_grid`` must (your version is by hand).
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.utils import make_grid

from .feedback import msg

GRID_HINT = ("scale each filter on its own: (f - f.min()) / max(f.max() - f.min(), 1e-5); "
             "min(nrow, O) columns, ceil(O / columns) rows, `padding` zero pixels around and "
             "between tiles; single-channel filters repeated to grey RGB")


def _check(vis, shape: tuple[int, int, int, int], nrow: int, padding: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(shape, generator=g)  # (O, C, kh, kw)
    kept = weight.clone()
    expected = make_grid(weight.clone(), nrow=nrow, padding=padding, normalize=True,
                         scale_each=True)  # (3, H, W)
    tried = f"filter_grid(weight of shape {shape}, nrow={nrow}, padding={padding})"
    got = vis.filter_grid(weight, nrow=nrow, padding=padding)
    assert isinstance(got, torch.Tensor), msg(tried, type(got).__name__, "a torch.Tensor",
                                               "return the grid tensor itself, not a figure")
    assert tuple(got.shape) == tuple(expected.shape), msg(
        tried, f"shape {tuple(got.shape)}", f"shape {tuple(expected.shape)} (make_grid's)",
        GRID_HINT)
    err = (got.float() - expected).abs().max().item()
    assert err < 1e-5, msg(tried, f"values differ from make_grid's by up to {err:.3g}",
                            "the same image", GRID_HINT)
    assert torch.equal(weight, kept), msg(tried, "the weight passed in was modified",
                                           "weight left as it was", "work on a copy")


@pytest.mark.filters
@pytest.mark.points(1)
def test_resnet_conv1_grid_shape(load_exercise):
    """64 filters of 3x3 tile into a (3, 33, 33) image"""
    vis = load_exercise("visualize")
    got = vis.filter_grid(torch.randn(64, 3, 3, 3))
    shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
    assert shape == (3, 33, 33), msg("filter_grid(weight of shape (64, 3, 3, 3))", shape,
                                      (3, 33, 33), "8 x 8 tiles of 3 pixels, 1 pixel of padding "
                                      "around and between them: 8 * (3 + 1) + 1 = 33")


@pytest.mark.filters
@pytest.mark.points(2)
@pytest.mark.parametrize("shape, nrow, padding", [
    ((64, 3, 3, 3), 8, 1), ((10, 3, 5, 5), 4, 2), ((7, 1, 4, 4), 3, 0), ((3, 3, 2, 2), 8, 1),
    ((1, 3, 3, 3), 8, 1)])
def test_filter_grid_matches_make_grid(load_exercise, shape, nrow, padding):
    """matches torchvision's make_grid(normalize=True, scale_each=True)"""
    _check(load_exercise("visualize"), shape, nrow, padding, seed=0)


@pytest.mark.filters
@pytest.mark.points(1)
def test_filter_grid_random_layouts(load_exercise):
    """matches make_grid on random filter counts, sizes, nrow and padding"""
    vis = load_exercise("visualize")

    @st.composite
    def layouts(draw) -> tuple:
        channels = draw(st.sampled_from([1, 3]))
        k = draw(st.integers(2 if channels == 1 else 1, 5))  # a 1x1 grey filter is constant
        shape = (draw(st.integers(2, 40)), channels, k, k)
        return shape, draw(st.integers(1, 10)), draw(st.integers(0, 3)), draw(st.integers(0, 999))

    @settings(max_examples=15)
    @given(layouts())
    def check(layout: tuple) -> None:
        _check(vis, *layout)

    check()
