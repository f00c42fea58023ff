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


# -- receptive fields, parameter counts, gradient norms, filter grids ------------------------
@st.composite
def rf_layer(draw, *, dilation: bool = True, max_kernel: int = 7, max_stride: int = 3,
             max_dilation: int = 3) -> tuple[int, ...]:
    """A (kernel, stride) layer, or (kernel, stride, dilation) when ``dilation`` allows."""
    kernel, stride = draw(st.integers(1, max_kernel)), draw(st.integers(1, max_stride))
    if dilation and draw(st.booleans()):
        return kernel, stride, draw(st.integers(1, max_dilation))
    return kernel, stride


@st.composite
def rf_stack(draw, *, min_len: int = 0, max_len: int = 8, dilated: bool = False,
             **layer: int) -> list[tuple[int, ...]]:
    """A stack of layers; ``dilated``: a mix of both forms with at least one real dilation."""
    layers = draw(st.lists(rf_layer(dilation=dilated, **layer), min_size=min_len,
                           max_size=max_len - (1 if dilated else 0)))
    if dilated:  # one layer whose dilation changes the answer: k >= 2, d >= 2
        kernel = draw(st.integers(2, layer.get("max_kernel", 7)))
        extra = (kernel, draw(st.integers(1, layer.get("max_stride", 3))),
                 draw(st.integers(2, layer.get("max_dilation", 3))))
        layers.insert(draw(st.integers(0, len(layers))), extra)
    return layers


@st.composite
def bad_rf_stack(draw) -> list[tuple[int, ...]]:
    """A valid stack with one malformed layer: 1 or 4 entries, or a non-positive value."""
    layers = draw(rf_stack(max_len=4, dilated=False))
    which = draw(st.sampled_from(["short", "long", "kernel", "stride", "dilation"]))
    k, s = draw(st.integers(1, 5)), draw(st.integers(1, 3))
    bad = {"short": (k,), "long": (k, s, 1, 1), "kernel": (draw(st.integers(-2, 0)), s),
           "stride": (k, draw(st.integers(-2, 0))),
           "dilation": (k, s, draw(st.integers(-2, 0)))}[which]
    layers.insert(draw(st.integers(0, len(layers))), bad)
    return layers


kernel_sizes = st.one_of(st.integers(1, 7), st.tuples(st.integers(1, 7), st.integers(1, 7)))


@st.composite
def param_layer_spec(draw, kind: str | None = None) -> dict:
    """One layer of a grader-built model (see probes/param_count.py), maybe frozen."""
    kind = kind or draw(st.sampled_from(["conv", "bn", "linear", "relu"]))
    spec: dict = {"kind": kind, "frozen": draw(st.booleans())}
    if kind == "conv":
        spec.update({"in": draw(st.integers(1, 16)), "out": draw(st.integers(1, 16)),
                     "k": draw(kernel_sizes), "bias": draw(st.booleans())})
    elif kind == "bn":
        spec["c"] = draw(st.integers(1, 32))
    elif kind == "linear":
        spec.update({"in": draw(st.integers(1, 64)), "out": draw(st.integers(1, 16)),
                     "bias": draw(st.booleans())})
    return spec


@st.composite
def param_model_spec(draw) -> dict:
    """Named groups of layers with at least one BatchNorm (buffers), one frozen layer with
    parameters and one trainable one, so every counting mistake changes the answer."""
    layers = draw(st.lists(param_layer_spec(), min_size=1, max_size=8))
    must = [dict(draw(param_layer_spec("bn")), frozen=False),
            dict(draw(param_layer_spec(draw(st.sampled_from(["conv", "linear"])))),
                 frozen=True)]
    for spec in must:
        layers.insert(draw(st.integers(0, len(layers))), spec)
    cut = draw(st.integers(1, len(layers) - 1))
    names = draw(st.sampled_from([("features", "head"), ("stem", "body"), ("0", "1")]))
    return {"groups": [(names[0], layers[:cut]), (names[1], layers[cut:])]}


@st.composite
def grad_model_case(draw) -> dict:
    """A small conv-BN-ReLU CNN with a linear head (probes/gradients.py) and its batch."""
    return {"depth": draw(st.integers(1, 3)), "width": draw(st.integers(2, 8)),
            "classes": draw(st.integers(2, 6)), "conv_bias": draw(st.booleans()),
            "batch": draw(st.integers(2, 6)), "size": draw(st.integers(4, 8)),
            "seed": draw(st.integers(0, 2**20))}


@st.composite
def norm_list(draw, min_size: int = 1, max_size: int = 12) -> list[tuple[str, float]]:
    """(name, norm) rows with positive norms spread over many orders of magnitude."""
    n = draw(st.integers(min_size, max_size))
    values = [draw(st.floats(0.1, 10.0)) * 10.0 ** draw(st.integers(-8, 4)) for _ in range(n)]
    return [(f"layer{i}.weight", v) for i, v in enumerate(values)]


@st.composite
def filter_case(draw, channels: int = 3) -> dict:
    """Filters (O, C, k, k) with O in 2..70 and k in 1..5, nrow 1..10, padding 0..3.

    Single-channel filters get k >= 2: a 1x1x1 filter is constant, and how a constant filter
    is scaled (0, 0.5 or NaN) is an edge case no real first layer has."""
    o, k = draw(st.integers(2, 70)), draw(st.integers(1 if channels > 1 else 2, 5))
    return {"shape": (o, channels, k, k), "nrow": draw(st.integers(1, 10)),
            "padding": draw(st.integers(0, 3)), "seed": draw(seeds)}


# -- the residual BasicBlock ---------------------------------------------------------------
SHORTCUT_KINDS = ("identity", "stride", "width", "both")


@st.composite
def block_case(draw, kinds: tuple[str, ...] = SHORTCUT_KINDS, max_channels: int = 16,
               max_size: int = 9) -> dict:
    """A BasicBlock and its input (probes/blocks.py). ``kinds``: "identity" (stride 1, same
    width), or a projection for "stride" 2, a change of "width", or "both". Odd and even H, W;
    at least two values per channel after the stride, so train-mode BatchNorm is defined."""
    kind = draw(st.sampled_from(kinds))
    c_in = draw(st.integers(1, max_channels))
    c_out = c_in
    if kind in ("width", "both"):  # a different width, wider or narrower
        c_out = draw(st.integers(1, max_channels - 1))
        c_out += c_out >= c_in
    stride = 2 if kind in ("stride", "both") else 1
    batch, h = draw(st.integers(1, 4)), draw(st.integers(1, max_size))
    h_out = (h - 1) // stride + 1
    w = draw(st.integers(1 if batch * h_out >= 2 else stride + 1, max_size))
    return {"in": c_in, "out": c_out, "stride": stride, "batch": batch, "h": h, "w": w,
            "seed": draw(seeds)}
