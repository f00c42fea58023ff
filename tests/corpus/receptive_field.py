"""Variants of receptive_field.py."""

from tests.corpus import Edit, Variant

BACKWARD = '''    parsed = []
    for layer in layers:
        if len(layer) == 2:
            (k, s), d = layer, 1
        elif len(layer) == 3:
            k, s, d = layer
        else:
            raise ValueError(f"bad layer {layer}")
        if k < 1 or s < 1 or d < 1:
            raise ValueError(f"bad layer {layer}")
        parsed.append((k, s, d))
    r = 1  # one output unit, walked back to the input
    for k, s, d in reversed(parsed):
        r = (r - 1) * s + d * (k - 1) + 1
    return r
'''

VARIANTS = [
    Variant(
        "rf_current_stride",
        (Edit("receptive_field", "r += d * (k - 1) * jump", "r += d * (k - 1) * s"),),
        hurts=("receptive_field",),
        why="multiplies by the layer's own stride instead of the product of earlier ones"),
    Variant(
        "rf_no_dilation",
        (Edit("receptive_field", "d = layer[2] if len(layer) == 3 else 1", "d = 1"),),
        hurts=("receptive_field",),
        why="ignores the dilation of 3-tuple layers"),
    Variant(
        "rf_r0_zero",
        (Edit("receptive_field", "r, jump = 1, 1", "r, jump = 0, 1"),),
        hurts=("receptive_field",),
        why="off by one: starts from r0 = 0 instead of 1 pixel"),
    Variant(
        "rf_jump_before_add",
        (Edit("receptive_field", "        r += d * (k - 1) * jump\n        jump *= s\n",
              "        jump *= s\n        r += d * (k - 1) * jump\n"),),
        hurts=("receptive_field",),
        why="updates the jump before using it: includes the layer's own stride"),
    Variant(
        "rf_table_one_block_per_stage",
        (Edit("receptive_field", "stack += [(3, stride), (3, 1), (3, 1), (3, 1)]",
              "stack += [(3, stride), (3, 1)]"),),
        hurts=("receptive_field",),
        why="ResNet-18 table counts one BasicBlock per stage instead of two"),
    Variant(
        "rf_no_validation",
        (Edit("receptive_field",
              "            raise ValueError(f\"a layer is (kernel, stride) or (kernel, stride, "
              "dilation): {layer}\")\n", "            pass\n"),
         Edit("receptive_field",
              "            raise ValueError(f\"kernel, stride and dilation must be positive: "
              "{layer}\")\n", "            pass\n")),
        hurts=("receptive_field",),
        why="never raises ValueError on malformed layers"),
    Variant(
        "rf_backward_recursion",
        (Edit("receptive_field", "    r, jump = 1, 1\n", BACKWARD + "    r, jump = 1, 1\n"),),
        hurts=(),
        why="correct alternative: walk back from one output unit, r = (r - 1) s + d(k - 1) + 1"),
    Variant(
        "rf_table_literal",
        (Edit("receptive_field", '    stack: list[Layer] = [(3, 1)]\n',
              '    return {"conv1": 3, "layer1": 11, "layer2": 25, "layer3": 53, '
              '"layer4": 109}\n    stack: list[Layer] = [(3, 1)]\n'),),
        hurts=(),
        why="correct alternative: the ResNet-18 table worked out by hand"),
]
