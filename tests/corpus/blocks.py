"""Variants of blocks.py: BasicBlock bugs that must cost points on ``basic_block``, and correct
alternatives (own names, ModuleList, shortcut first, nn.Identity, torchvision's style) that
must keep full marks everywhere.

A bug here usually also breaks ``resnet18`` / ``plain_vs_residual`` (they build their blocks
from the student's ``BasicBlock``), so bugs set ``keeps=()``: only ``basic_block`` is asserted,
and the control exercise must keep full marks.
"""

from tests.corpus import Edit, Variant

INIT = """\
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1,
                               bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Sequential()  # identity: an empty Sequential returns its input
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
"""
FORWARD = """\
        out = F.relu(self.bn1(self.conv1(x)))  # (N, C_out, H/s, W/s)
        out = self.bn2(self.conv2(out))  # (N, C_out, H/s, W/s)
        out = out + self.shortcut(x)  # THE residual connection
        return F.relu(out)
"""
CONDITION = "        if stride != 1 or in_channels != out_channels:\n"
BN2_LINE = "        out = self.bn2(self.conv2(out))  # (N, C_out, H/s, W/s)\n"
ADD_LINE = "        out = out + self.shortcut(x)  # THE residual connection\n"
PROJ_CONV = "nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),\n"


def _bug(name: str, why: str, *edits: tuple[str, str]) -> Variant:
    return Variant(name, tuple(Edit("blocks", old, new) for old, new in edits),
                   hurts=("basic_block",), keeps=(), why=why)


def _ok(name: str, why: str, init: str, forward: str) -> Variant:
    return Variant(name, (Edit("blocks", INIT, init), Edit("blocks", FORWARD, forward)),
                   hurts=(), why=why)


BUGS = [
    _bug("blocks_no_relu_after_add", "returns the sum without the final ReLU",
         ("        return F.relu(out)\n", "        return out\n")),
    _bug("blocks_relu_before_add", "ReLU on the branch before the add, none after it",
         (FORWARD, """\
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return out + self.shortcut(x)
""")),
    _bug("blocks_always_projection", "a 1x1 conv + BN shortcut even when shapes match",
         (CONDITION, "        if True:\n")),
    _bug("blocks_never_projection", "identity shortcut always: shapes clash on a projection",
         (CONDITION, "        if False:\n")),
    _bug("blocks_projection_condition_and", "projection only when stride AND width change",
         (CONDITION, "        if stride != 1 and in_channels != out_channels:\n")),
    _bug("blocks_projection_without_bn", "the projection is a bare 1x1 conv, no BatchNorm",
         ("                nn.BatchNorm2d(out_channels),\n            )\n", "            )\n")),
    _bug("blocks_projection_3x3", "the projection is a 3x3 conv (padding 1) + BN, not 1x1",
         (PROJ_CONV,
          "nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),\n")),
    _bug("blocks_projection_no_stride", "the 1x1 projection conv ignores the stride",
         (PROJ_CONV, "nn.Conv2d(in_channels, out_channels, 1, bias=False),\n")),
    _bug("blocks_stride_on_conv2", "the stride sits on the second conv instead of the first",
         ("3, stride=stride, padding=1,\n", "3, stride=1, padding=1,\n"),
         ("3, stride=1, padding=1, bias=False)\n", "3, stride=stride, padding=1, bias=False)\n")),
    _bug("blocks_no_padding", "3x3 convs without padding: the branch shrinks, the add fails",
         ("3, stride=stride, padding=1,\n", "3, stride=stride, padding=0,\n"),
         ("3, stride=1, padding=1, bias=False)\n", "3, stride=1, padding=0, bias=False)\n")),
    _bug("blocks_no_bn2", "no BatchNorm after the second conv",
         (BN2_LINE, "        out = self.conv2(out)\n")),
    _bug("blocks_bn1_twice", "bn1 used after both convs (bn2 built but never used)",
         (BN2_LINE, "        out = self.bn1(self.conv2(out))\n")),
    _bug("blocks_no_relu_after_bn1", "no ReLU between the two convs",
         ("        out = F.relu(self.bn1(self.conv1(x)))  # (N, C_out, H/s, W/s)\n",
          "        out = self.bn1(self.conv1(x))\n")),
    _bug("blocks_add_before_bn2", "adds the shortcut before bn2 instead of after",
         (BN2_LINE + ADD_LINE, "        out = self.bn2(self.conv2(out) + self.shortcut(x))\n")),
    _bug("blocks_branch_dropped", "returns relu(shortcut(x)): the residual branch never runs",
         (FORWARD, "        return F.relu(self.shortcut(x))\n")),
    _bug("blocks_expansion_4", "expansion = 4 (Bottleneck's) on a BasicBlock",
         ("    expansion = 1\n", "    expansion = 4\n")),
    _bug("blocks_inplace_add_into_input", "`s = shortcut(x); s += out` writes into x itself "
         "when the shortcut is the identity (and breaks autograd on a leaf input)",
         (ADD_LINE + "        return F.relu(out)\n",
          "        s = self.shortcut(x)\n        s += out\n        return F.relu(s)\n")),
    _bug("blocks_detached_shortcut", "the shortcut is detached: forward right, no gradient "
         "highway", (ADD_LINE, "        out = out + self.shortcut(x).detach()\n")),
    _bug("blocks_bn2_without_running_stats", "bn2 keeps no running statistics: train mode "
         "right, eval mode wrong",
         ("        self.bn2 = nn.BatchNorm2d(out_channels)\n",
          "        self.bn2 = nn.BatchNorm2d(out_channels, track_running_stats=False)\n")),
    _bug("blocks_conv_bias", "convs with bias=True before BN: equivalent outputs, loses only "
         "the parameter count",
         ("3, stride=stride, padding=1,\n                               bias=False)",
          "3, stride=stride, padding=1)"),
         ("3, stride=1, padding=1, bias=False)\n", "3, stride=1, padding=1)\n")),
]

ALTERNATIVES = [
    _ok("blocks_ok_modulelist_own_names", "own names, a ModuleList branch, a flag for the "
        "projection", """\
        self.branch = nn.ModuleList([
            nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        ])
        self.project = stride != 1 or in_channels != out_channels
        if self.project:
            self.proj_conv = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)
            self.proj_bn = nn.BatchNorm2d(out_channels)
""", """\
        out = x
        for i, layer in enumerate(self.branch):
            out = layer(out)
            if i == 1:
                out = F.relu(out)
        skip = self.proj_bn(self.proj_conv(x)) if self.project else x
        return F.relu(out + skip)
"""),
    _ok("blocks_ok_shortcut_first", "the seed's order: the shortcut runs before the branch",
        INIT, """\
        shortcut = self.shortcut(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += shortcut
        return F.relu(out)
"""),
    _ok("blocks_ok_identity_relu_modules", "nn.Identity shortcut and nn.ReLU modules, "
        "shortcut defined first", """\
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels))
        else:
            self.shortcut = nn.Identity()
        self.c1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride,
                            padding=1, bias=False)
        self.n1 = nn.BatchNorm2d(out_channels)
        self.relu1 = nn.ReLU()
        self.c2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.n2 = nn.BatchNorm2d(out_channels)
        self.relu2 = nn.ReLU()
""", """\
        return self.relu2(self.n2(self.c2(self.relu1(self.n1(self.c1(x))))) + self.shortcut(x))
"""),
    _ok("blocks_ok_torchvision_style", "torchvision's style: one nn.ReLU(inplace=True), a "
        "downsample that may be None, in-place add", """\
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels))
""", """\
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)
"""),
    _ok("blocks_ok_functional_inplace_relu", "F.relu(..., inplace=True) on the branch and "
        "after the add", INIT, """\
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        out = out + self.shortcut(x)
        return F.relu(out, inplace=True)
"""),
]

VARIANTS = BUGS + ALTERNATIVES
