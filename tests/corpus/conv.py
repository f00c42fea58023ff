"""Variants of conv.py."""

from tests.corpus import Edit, Variant

VARIANTS = [
    Variant(
        "conv_size_ceil",
        (Edit("conv", "return room // stride + 1", "return -(-room // stride) + 1"),),
        hurts=("conv_output_size", "conv2d"),
        why="ceil instead of floor: a partial last window is counted (conv2d's shapes too)"),
    Variant(
        "conv_size_no_dilation",
        (Edit("conv", "span = dilation * (kernel_size - 1) + 1", "span = kernel_size"),),
        hurts=("conv_output_size", "conv2d"),
        why="forgets the dilation in the kernel span (conv2d uses it for its output shape)"),
    Variant(
        "conv_size_no_validation",
        (Edit("conv", 'raise ValueError(f"{name} must be positive, got {value}")', "pass"),
         Edit("conv", 'raise ValueError(f"padding must be non-negative, got {padding}")',
              "pass"),),
        hurts=("conv_output_size",), keeps=("conv2d",),
        why="never raises ValueError on non-positive arguments"),
    Variant(
        "conv2d_calls_F_conv2d",
        (Edit("conv", "    x = F.pad(input, (pw, pw, ph, ph))",
              "    return F.conv2d(input, weight, bias, stride, padding, dilation)\n"
              "    x = F.pad(input, (pw, pw, ph, ph))"),),
        hurts=("conv2d",), keeps=("conv_output_size",),
        why="calls torch's convolution instead of building it"),
    Variant(
        "conv2d_no_bias",
        (Edit("conv", "        out = out + bias.view(1, o, 1, 1)", "        pass"),),
        hurts=("conv2d",), keeps=("conv_output_size",),
        why="ignores the bias"),
    Variant(
        "conv2d_flipped_kernel",
        (Edit("conv", 'weight[:, :, m, k])', 'weight[:, :, kh - 1 - m, kw - 1 - k])'),),
        hurts=("conv2d",), keeps=("conv_output_size",),
        why="a true (flipped) convolution instead of deep learning's cross-correlation"),
    Variant(
        "conv2d_unfold",
        (Edit("conv", "    x = F.pad(input, (pw, pw, ph, ph))",
              "    cols = F.unfold(input, (kh, kw), dilation=(dh, dw), padding=(ph, pw),\n"
              "                    stride=(sh, sw))  # (N, C*kh*kw, L)\n"
              "    out = (weight.view(o, -1) @ cols).view(n, o, h_out, w_out)\n"
              "    return out if bias is None else out + bias.view(1, o, 1, 1)\n"
              "    x = F.pad(input, (pw, pw, ph, ph))"),),
        hurts=(),
        why="correct alternative: im2col with F.unfold and a matmul"),
]
