"""Hypothesis strategies shared by the Day-2 graders (and reusable by the self-check).

Composite strategies draw dependent values (an input at least as large as the dilated
kernel) instead of filtering with ``assume``, so no example is wasted.
"""

from __future__ import annotations

from hypothesis import strategies as st

seeds = st.integers(min_value=0, max_value=2**31 - 1)


@st.composite
def conv_geometry(draw, max_size: int = 40) -> tuple[int, int, int, int, int]:
    """(size, kernel, stride, padding, dilation) for which the output is non-empty."""
    kernel = draw(st.integers(1, 7))
    dilation = draw(st.integers(1, 3))
    stride = draw(st.integers(1, 4))
    padding = draw(st.integers(0, 3))
    span = dilation * (kernel - 1) + 1
    size = draw(st.integers(max(1, span - 2 * padding), max(max_size, span)))
    return size, kernel, stride, padding, dilation


@st.composite
def invalid_conv_geometry(draw) -> tuple[int, int, int, int, int]:
    """Arguments that must raise ValueError: one bad value, or a kernel that cannot fit."""
    size, kernel, stride, padding, dilation = draw(conv_geometry())
    which = draw(st.sampled_from(["size", "kernel", "stride", "dilation", "padding", "fit"]))
    if which == "size":
        size = draw(st.integers(-3, 0))
    elif which == "kernel":
        kernel = draw(st.integers(-3, 0))
    elif which == "stride":
        stride = draw(st.integers(-3, 0))
    elif which == "dilation":
        dilation = draw(st.integers(-3, 0))
    elif which == "padding":
        padding = draw(st.integers(-3, -1))
    else:  # the dilated kernel is wider than the padded input
        kernel = draw(st.integers(3, 7))
        span = dilation * (kernel - 1) + 1
        padding = draw(st.integers(0, (span - 2) // 2))
        size = draw(st.integers(1, span - 2 * padding - 1))
    return size, kernel, stride, padding, dilation


def _as_pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return v if isinstance(v, tuple) else (v, v)


pairs = st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3)))


@st.composite
def conv2d_case(draw, *, bias: bool | None = None, square: bool = False,
                unit: bool = False) -> dict:
    """A conv2d call: shapes, stride/padding/dilation (ints or pairs), bias or not, a seed."""
    kh = draw(st.integers(1, 4))
    kw = kh if square else draw(st.integers(1, 4))
    if unit:
        stride, padding, dilation = 1, draw(st.integers(0, 2)), 1
    else:
        stride = draw(pairs)
        dilation = draw(pairs)
        padding = draw(st.one_of(st.integers(0, 2), st.tuples(st.integers(0, 2),
                                                              st.integers(0, 2))))
    (dh, dw), (ph, pw) = _as_pair(dilation), _as_pair(padding)
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - 2 * ph), 12))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - 2 * pw), 12))
    n, c, o = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    return {"input_shape": (n, c, h, w), "weight_shape": (o, c, kh, kw),
            "bias": draw(st.booleans()) if bias is None else bias,
            "stride": stride, "padding": padding, "dilation": dilation, "seed": draw(seeds)}
