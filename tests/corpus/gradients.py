"""Variants of gradients.py."""

from tests.corpus import Edit, Variant

LESSON = '''    out = model(x)
    loss = F.cross_entropy(out, y)
    loss.backward()
    norms = []
    for name, param in model.named_parameters():
        if 'weight' in name and param.grad is not None and param.dim() >= 2:
            norms.append((name, param.grad.norm().item()))
    return norms
'''

VARIANTS = [
    Variant(
        "gn_includes_biases",
        (Edit("gradients", "if p.dim() >= 2 and p.grad is not None]",
              "if p.dim() >= 1 and p.grad is not None]"),),
        hurts=("grad_norms",),
        why="keeps biases and BatchNorm vectors (dim 1) as rows"),
    Variant(
        "gn_l1_norm",
        (Edit("gradients", "[(name, p.grad.norm().item())", "[(name, p.grad.abs().sum().item())"),),
        hurts=("grad_norms",),
        why="the L1 norm (sum of absolute values) instead of the L2 norm"),
    Variant(
        "gn_sum_loss",
        (Edit("gradients", "loss = F.cross_entropy(model(x), y)",
              'loss = F.cross_entropy(model(x), y, reduction="sum")'),),
        hurts=("grad_norms",),
        why="summed instead of mean cross-entropy: every norm N times too large"),
    Variant(
        "gn_tensor_norms",
        (Edit("gradients", "[(name, p.grad.norm().item())", "[(name, p.grad.norm())"),),
        hurts=("grad_norms",),
        why="returns 0-d tensors instead of Python floats"),
    Variant(
        "gn_spread_natural_log",
        (Edit("gradients", "return math.log10(high / low)", "return math.log(high / low)"),),
        hurts=("grad_norms",),
        why="spread with the natural log instead of log10"),
    Variant(
        "gn_spread_no_log",
        (Edit("gradients", "return math.log10(high / low)", "return high / low"),),
        hurts=("grad_norms",),
        why="spread as the plain ratio max / min (1.0 for equal norms)"),
    Variant(
        "gn_lesson_code",
        (Edit("gradients", "    model.zero_grad(set_to_none=True)\n",
              LESSON + "    model.zero_grad(set_to_none=True)\n"),),
        hurts=(),
        why="correct alternative: the lesson's code exactly ('weight' in name, no zero_grad)"),
    Variant(
        "gn_spread_numpy",
        (Edit("gradients", "    values = [float(v) for _, v in norms]\n",
              "    import numpy as np\n\n"
              "    v = np.array([n for _, n in norms], dtype=np.float64)\n"
              "    return np.log10(v.max()) - np.log10(v.min())  # a numpy float64\n"
              "    values = [float(v) for _, v in norms]\n"),),
        hurts=(),
        why="correct alternative: log10(max) - log10(min) in numpy (np.float64 is a float)"),
]
