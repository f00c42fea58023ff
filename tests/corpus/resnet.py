"""Variants of resnet.py: ResNet18, PlainNet / ResidualNet and kaiming_init_ bugs that must
cost points in their own exercise (and only there), and correct alternatives that keep full
marks: a generic ``ResNet(block, [2, 2, 2, 2])`` with a ``linear`` head, a fixed 4x4 pool, own
layer names, ``torch.flatten`` / ``view``, ModuleList loops, bias-free plain convs, the classic
hand-written Kaiming formula.
"""

from tests.corpus import Edit, Variant

STEM = "        self.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)\n"
STEM_FORWARD = "        x = torch.relu(self.bn1(self.conv1(x)))  # (N, 64, 32, 32)\n"
LAYER2 = "        self.layer2 = self._make_layer(64, 128, num_blocks=2, stride=2)\n"
LAYER4 = "        self.layer4 = self._make_layer(256, 512, num_blocks=2, stride=2)\n"
FC = "        self.fc = nn.Linear(512 * BasicBlock.expansion, num_classes)\n"
POOL = "        self.avg_pool = nn.AdaptiveAvgPool2d((1, 1))\n"
HEAD_FORWARD = "        x = self.avg_pool(x).flatten(1)  # (N, 512)\n"
R18_INIT = """\
        self.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = self._make_layer(64, 64, num_blocks=2, stride=1)
        self.layer2 = self._make_layer(64, 128, num_blocks=2, stride=2)
        self.layer3 = self._make_layer(128, 256, num_blocks=2, stride=2)
        self.layer4 = self._make_layer(256, 512, num_blocks=2, stride=2)
        self.avg_pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * BasicBlock.expansion, num_classes)
"""
R18_FORWARD = """\
        x = torch.relu(self.bn1(self.conv1(x)))  # (N, 64, 32, 32)
        x = self.layer1(x)  # (N, 64, 32, 32)
        x = self.layer2(x)  # (N, 128, 16, 16)
        x = self.layer3(x)  # (N, 256, 8, 8)
        x = self.layer4(x)  # (N, 512, 4, 4)
        x = self.avg_pool(x).flatten(1)  # (N, 512)
        return self.fc(x)  # (N, num_classes)
"""
PLAIN_INIT = """\
        layers: list[nn.Module] = [nn.Conv2d(3, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(64, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU()]
        self.features = nn.Sequential(*layers)
"""
PLAIN_FORWARD = "        x = self.features(x)  # (N, 64, H, W)\n"
BLOCKS = ("        self.blocks = nn.Sequential(*[BasicBlock(64, 64) for _ in "
          "range((depth - 2) // 2)])\n")
RESIDUAL_FORWARD = "        x = self.blocks(self.stem(x))  # (N, 64, H, W)\n"
KAIMING = 'nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")'
INIT_BODY = """\
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return model
"""


def _r18(name: str, why: str, *edits: tuple[str, str]) -> Variant:
    return Variant(name, tuple(Edit("resnet", old, new) for old, new in edits),
                   hurts=("resnet18",), why=why)


def _pvr(name: str, why: str, *edits: tuple[str, str]) -> Variant:
    return Variant(name, tuple(Edit("resnet", old, new) for old, new in edits),
                   hurts=("plain_vs_residual",), why=why)


def _init(name: str, why: str, *edits: tuple[str, str]) -> Variant:
    return Variant(name, tuple(Edit("resnet", old, new) for old, new in edits),
                   hurts=("init",), why=why)


def _ok(name: str, why: str, *edits: tuple[str, str]) -> Variant:
    return Variant(name, tuple(Edit("resnet", old, new) for old, new in edits), hurts=(),
                   why=why)


RESNET18_BUGS = [
    _r18("resnet18_imagenet_stem",
         "the ImageNet stem: 7x7 stride-2 conv and a 3x3 stride-2 max-pool",
         (STEM, STEM.replace("3, stride=1, padding=1", "7, stride=2, padding=3")),
         (STEM_FORWARD, "        x = nn.functional.max_pool2d(torch.relu(self.bn1(self.conv1(x)))"
          ", 3, 2, 1)\n")),
    _r18("resnet18_stem_maxpool", "a 3x3 stem, but followed by the ImageNet max-pool",
         (STEM_FORWARD, "        x = nn.functional.max_pool2d(torch.relu(self.bn1(self.conv1(x)))"
          ", 3, 2, 1)\n")),
    _r18("resnet18_strides_1122", "stage strides 1, 1, 2, 2: layer2 does not downsample",
         (LAYER2, LAYER2.replace("stride=2", "stride=1"))),
    _r18("resnet18_layer4_256", "layer4 keeps width 256 (fc 256 -> classes)",
         (LAYER4, LAYER4.replace("(256, 512,", "(256, 256,")),
         (FC, "        self.fc = nn.Linear(256, num_classes)\n")),
    _r18("resnet18_stem_no_relu", "no ReLU after the stem's BatchNorm",
         (STEM_FORWARD, "        x = self.bn1(self.conv1(x))\n")),
    _r18("resnet18_no_avgpool", "no global pool: flattens 512x4x4 into an fc of 8192 inputs",
         (FC, "        self.fc = nn.Linear(512 * 4 * 4, num_classes)\n"),
         (HEAD_FORWARD, "        x = x.flatten(1)\n")),
    _r18("resnet18_blocks_2221", "blocks per stage [2, 2, 2, 1]",
         (LAYER4, LAYER4.replace("num_blocks=2", "num_blocks=1"))),
    _r18("resnet18_ignores_num_classes", "the head always has 10 outputs",
         (FC, "        self.fc = nn.Linear(512, 10)\n")),
    _r18("resnet18_max_pool_head", "global max-pool instead of average-pool before the fc",
         (POOL, "        self.avg_pool = nn.AdaptiveMaxPool2d((1, 1))\n")),
    _r18("resnet18_stem_bias", "the stem conv keeps bias=True: harmless before BatchNorm (values "
         "agree), but not the contract's 11,173,962 parameters",
         (STEM, STEM.replace("bias=False", "bias=True"))),
    _r18("resnet18_torchvision",
         "torchvision.models.resnet18 with a CIFAR stem instead of own code",
         ("class PlainNet(nn.Module):", """\
def ResNet18(num_classes: int = 10) -> nn.Module:  # noqa: F811
    import torchvision

    model = torchvision.models.resnet18(num_classes=num_classes)
    model.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


class PlainNet(nn.Module):""")),
]

PLAIN_VS_RESIDUAL_BUGS = [
    _pvr("resnet_pvr_plain_with_skips",
         "PlainNet adds an identity around every conv-BN-ReLU after the stem",
         (PLAIN_FORWARD, """\
        layers = list(self.features)
        x = layers[2](layers[1](layers[0](x)))
        for i in range(3, len(layers), 3):
            x = x + layers[i + 2](layers[i + 1](layers[i](x)))
""")),
    _pvr("resnet_pvr_residual_without_skips",
         "ResidualNet stacks plain conv-BN-ReLU layers: no skips",
         (BLOCKS, """\
        plain = []
        for _ in range(depth - 2):
            plain += [nn.Conv2d(64, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU()]
        self.blocks = nn.Sequential(*plain)
""")),
    _pvr("resnet_pvr_residual_depth_over_2",
         "ResidualNet builds depth // 2 blocks (two layers too many)",
         (BLOCKS, BLOCKS.replace("range((depth - 2) // 2)", "range(depth // 2)"))),
    _pvr("resnet_pvr_plain_no_batchnorm", "PlainNet without BatchNorm (conv-ReLU only)",
         (PLAIN_INIT, """\
        layers: list[nn.Module] = [nn.Conv2d(3, 64, 3, padding=1), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(64, 64, 3, padding=1), nn.ReLU()]
        self.features = nn.Sequential(*layers)
""")),
    _pvr("resnet_pvr_plain_depth_plus_one",
         "PlainNet builds depth - 1 hidden convs: depth + 1 layers",
         (PLAIN_INIT, PLAIN_INIT.replace("range(depth - 2)", "range(depth - 1)"))),
    _pvr("resnet_pvr_residual_width_32", "ResidualNet at width 32 instead of PlainNet's 64",
         ("        self.stem = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.BatchNorm2d(64), "
          "nn.ReLU())\n",
          "        self.stem = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), "
          "nn.ReLU())\n"),
         (BLOCKS, BLOCKS.replace("BasicBlock(64, 64)", "BasicBlock(32, 32)")),
         ("        self.fc = nn.Linear(64, num_classes)\n        ### END SOLUTION\n\n    def "
          "forward(self, x: Tensor) -> Tensor:\n        \"\"\"(N, 3, H, W) -> logits (N, "
          "num_classes).\"\"\"\n        ### BEGIN SOLUTION\n        x = self.blocks",
          "        self.fc = nn.Linear(32, num_classes)\n        ### END SOLUTION\n\n    def "
          "forward(self, x: Tensor) -> Tensor:\n        \"\"\"(N, 3, H, W) -> logits (N, "
          "num_classes).\"\"\"\n        ### BEGIN SOLUTION\n        x = self.blocks")),
]

INIT_BUGS = [
    _init("resnet_init_fan_in", "Kaiming with mode='fan_in' (the default) instead of fan_out",
          (KAIMING, 'nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")')),
    _init("resnet_init_uniform", "kaiming_uniform_ instead of kaiming_normal_",
          (KAIMING, 'nn.init.kaiming_uniform_(m.weight, mode="fan_out", nonlinearity="relu")')),
    _init("resnet_init_no_relu_gain", "nonlinearity='linear': gain 1 instead of sqrt(2)",
          (KAIMING, 'nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="linear")')),
    _init("resnet_init_bn_weight_zero", "BatchNorm weights set to 0 instead of 1",
          ("            nn.init.ones_(m.weight)\n", "            nn.init.zeros_(m.weight)\n")),
    _init("resnet_init_returns_none", "initialises in place but returns None",
          ("                nn.init.zeros_(m.bias)\n        elif isinstance(m, nn.BatchNorm2d):\n"
           "            nn.init.ones_(m.weight)\n            nn.init.zeros_(m.bias)\n"
           "    return model\n",
           "                nn.init.zeros_(m.bias)\n        elif isinstance(m, nn.BatchNorm2d):\n"
           "            nn.init.ones_(m.weight)\n            nn.init.zeros_(m.bias)\n")),
    _init("resnet_init_linear_too", "also re-initialises Linear layers with Kaiming",
          ("        if isinstance(m, nn.Conv2d):\n            nn.init.kaiming",
           "        if isinstance(m, nn.Linear):\n            nn.init.kaiming_normal_(m.weight)\n"
           "        if isinstance(m, nn.Conv2d):\n            nn.init.kaiming")),
    _init("resnet_init_conv_bias_kept", "leaves conv biases as they were",
          ("            if m.bias is not None:\n                nn.init.zeros_(m.bias)\n", "")),
]

CORRECT = [
    _ok("resnet18_generic_resnet", "a generic ResNet(block, [2, 2, 2, 2]) with a linear head, "
        "F.avg_pool2d(out, 4) and view; ResNet18 is a function",
        ("class ResNet18(nn.Module):", """\
class ResNet(nn.Module):
    def __init__(self, block, num_blocks, num_classes=10):
        super().__init__()
        self.in_planes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = self._stage(block, 64, num_blocks[0], stride=1)
        self.layer2 = self._stage(block, 128, num_blocks[1], stride=2)
        self.layer3 = self._stage(block, 256, num_blocks[2], stride=2)
        self.layer4 = self._stage(block, 512, num_blocks[3], stride=2)
        self.linear = nn.Linear(512 * block.expansion, num_classes)

    def _stage(self, block, planes, num_blocks, stride):
        layers = []
        for s in [stride] + [1] * (num_blocks - 1):
            layers.append(block(self.in_planes, planes, s))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def forward(self, x):
        out = nn.functional.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = nn.functional.avg_pool2d(out, 4)
        out = out.view(out.size(0), -1)
        return self.linear(out)


def _resnet18(num_classes: int = 10) -> nn.Module:
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes)


class ResNet18(nn.Module):"""),
        ("class PlainNet(nn.Module):", "ResNet18 = _resnet18  # noqa: F811\n\n\n"
         "class PlainNet(nn.Module):")),
    _ok("resnet18_fixed_avgpool", "a fixed 4x4 average pool (inputs are 32x32) and torch.flatten",
        (POOL, "        self.avg_pool = nn.AvgPool2d(4)\n"),
        (HEAD_FORWARD, "        x = torch.flatten(self.avg_pool(x), 1)\n")),
    _ok("resnet18_own_names", "own names: a stem and a head as nn.Sequential of named modules, "
        "nn.ReLU modules, nn.Flatten, a loop over the stages",
        (R18_INIT, """\
        from collections import OrderedDict

        self.stem = nn.Sequential(OrderedDict(
            conv=nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False),
            norm=nn.BatchNorm2d(64), act=nn.ReLU(inplace=True)))
        self.layer1 = self._make_layer(64, 64, num_blocks=2, stride=1)
        self.layer2 = self._make_layer(64, 128, num_blocks=2, stride=2)
        self.layer3 = self._make_layer(128, 256, num_blocks=2, stride=2)
        self.layer4 = self._make_layer(256, 512, num_blocks=2, stride=2)
        self.head = nn.Sequential(OrderedDict(
            pool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(), classifier=nn.Linear(512,
                                                                                   num_classes)))
"""),
        (R18_FORWARD, """\
        x = self.stem(x)
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = stage(x)
        return self.head(x)
""")),
    _ok("resnet_pvr_modulelists",
        "PlainNet and ResidualNet as ModuleList loops, bias-free plain convs",
        (PLAIN_INIT, """\
        self.convs = nn.ModuleList(
            [nn.Conv2d(3 if i == 0 else 64, 64, 3, padding=1, bias=False)
             for i in range(depth - 1)])
        self.norms = nn.ModuleList([nn.BatchNorm2d(64) for _ in range(depth - 1)])
"""),
        (PLAIN_FORWARD, """\
        for conv, norm in zip(self.convs, self.norms):
            x = torch.relu(norm(conv(x)))
"""),
        (BLOCKS, "        self.blocks = nn.ModuleList(BasicBlock(64, 64) for _ in "
         "range((depth - 2) // 2))\n"),
        (RESIDUAL_FORWARD, """\
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
""")),
    _ok("resnet_init_classic_formula",
        "the classic hand-written formula: normal_(0, sqrt(2 / n)) with "
        "n = kh * kw * out_channels, fill_(1) / zero_() on .data",
        (INIT_BODY, """\
    import math

    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            m.weight.data.normal_(0, math.sqrt(2.0 / n))
            if m.bias is not None:
                m.bias.data.zero_()
        elif isinstance(m, nn.BatchNorm2d):
            m.weight.data.fill_(1)
            m.bias.data.zero_()
    return model
""")),
    _ok("resnet_init_apply_leaky_default",
        "model.apply with a nested function, kaiming_normal_ left at its leaky_relu default "
        "(a=0 gives ReLU's gain), BatchNorms first",
        (INIT_BODY, """    def init(m: nn.Module) -> None:
        if isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, 1.0)
            nn.init.constant_(m.bias, 0.0)
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                m.bias.data.zero_()

    model.apply(init)
    return model
""")),
    _ok("resnet_init_randn_copy",
        "a fresh torch.randn tensor times the std, copied in under no_grad",
        (INIT_BODY, """    import math

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.out_channels * m.kernel_size[0] * m.kernel_size[1]
                m.weight.copy_(torch.randn(m.weight.shape) * math.sqrt(2 / fan_out))
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.fill_(1.0)
                m.bias.zero_()
    return model
""")),
]

VARIANTS = RESNET18_BUGS + PLAIN_VS_RESIDUAL_BUGS + INIT_BUGS + CORRECT
