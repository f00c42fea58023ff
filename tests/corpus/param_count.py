"""Variants of param_count.py."""

from tests.corpus import Edit, Variant

COUNT = ("    return sum(p.numel() for p in model.parameters() if p.requires_grad or not "
         "trainable_only)")
TABLE = "    return [(name, tuple(p.shape), p.numel()) for name, p in model.named_parameters()]"
KERNEL = "    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size"
SHORTCUT = ("                total += conv2d_params(c_in, out_ch, 1, bias=False) + "
            "batchnorm2d_params(out_ch)")

VARIANTS = [
    Variant(
        "pc_state_dict_count",
        (Edit("param_count", COUNT,
              "    return sum(v.numel() for v in model.state_dict().values())"),),
        hurts=("param_count",),
        why="sums the state_dict: BatchNorm's running stats (buffers) counted as parameters"),
    Variant(
        "pc_conv_bias_always",
        (Edit("param_count",
              "return in_channels * out_channels * kh * kw + (out_channels if bias else 0)",
              "return in_channels * out_channels * kh * kw + out_channels"),),
        hurts=("param_count",),
        why="always counts the conv bias, even with bias=False"),
    Variant(
        "pc_square_kernel_only",
        (Edit("param_count", KERNEL,
              "    kh = kw = kernel_size if isinstance(kernel_size, int) else kernel_size[0]"),),
        hurts=("param_count",),
        why="treats a (kh, kw) kernel as kh x kh"),
    Variant(
        "pc_bn_running_stats",
        (Edit("param_count", "    return 2 * num_features", "    return 4 * num_features"),),
        hurts=("param_count",),
        why="batchnorm2d_params counts running mean and variance too"),
    Variant(
        "pc_trainable_ignored",
        (Edit("param_count", COUNT, "    return sum(p.numel() for p in model.parameters())"),),
        hurts=("param_count",),
        why="ignores trainable_only: frozen parameters are always counted"),
    Variant(
        "pc_table_sorted",
        (Edit("param_count", TABLE,
              "    return [(name, tuple(p.shape), p.numel())\n"
              "            for name, p in sorted(model.named_parameters())]"),),
        hurts=("param_count",),
        why="parameter_table sorted by name instead of named_parameters() order"),
    Variant(
        "pc_resnet_no_shortcut_bn",
        (Edit("param_count", SHORTCUT,
              "                total += conv2d_params(c_in, out_ch, 1, bias=False)"),),
        hurts=("param_count",),
        why="resnet18 closed form forgets the BatchNorms of the projection shortcuts"),
    Variant(
        "pc_resnet_fc_no_bias",
        (Edit("param_count", "    return total + linear_params(512, num_classes)",
              "    return total + linear_params(512, num_classes, bias=False)"),),
        hurts=("param_count",),
        why="resnet18 closed form forgets the fc bias"),
    Variant(
        "pc_resnet_hardcoded",
        (Edit("param_count", "    total = conv2d_params(3, 64, 3, bias=False)",
              "    return 11_173_962\n    total = conv2d_params(3, 64, 3, bias=False)"),),
        hurts=("param_count",),
        why="resnet18_param_count returns the CIFAR-10 total for every num_classes"),
    Variant(
        "pc_table_torch_size",
        (Edit("param_count", TABLE,
              "    rows = []\n"
              "    for name, p in model.named_parameters():\n"
              "        rows.append((name, p.shape, p.nelement()))  # torch.Size is a tuple\n"
              "    return rows"),),
        hurts=(),
        why="correct alternative: torch.Size shapes (a tuple subclass) and nelement()"),
    Variant(
        "pc_closed_form_literal",
        (Edit("param_count", "    total = conv2d_params(3, 64, 3, bias=False)",
              "    return 11_168_832 + 513 * num_classes  # body + fc (512 weights + 1 bias "
              "per class)\n    total = conv2d_params(3, 64, 3, bias=False)"),
         Edit("param_count", COUNT,
              "    params = [p for _, p in model.named_parameters()]\n"
              "    if trainable_only:\n"
              "        params = [p for p in params if p.requires_grad]\n"
              "    return sum(int(torch.tensor(p.shape).prod()) for p in params)"),
         Edit("param_count", "from torch import nn\n", "import torch\nfrom torch import nn\n")),
        hurts=(),
        why="correct alternative: the total worked out once, counts from shapes"),
]
