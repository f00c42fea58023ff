"""Variants of visualize.py."""

from tests.corpus import Edit, Variant

VECTORISED = '''    n, _, kh, kw = w.shape
    if n == 1:
        return w[0]
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    tiles = torch.zeros(rows * cols, 3, kh + padding, kw + padding)  # padding top-left
    tiles[:n, :, padding:, padding:] = w
    grid = tiles.view(rows, cols, 3, kh + padding, kw + padding).permute(2, 0, 3, 1, 4)
    grid = grid.reshape(3, rows * (kh + padding), cols * (kw + padding))
    return torch.nn.functional.pad(grid, (0, padding, 0, padding))  # bottom/right border
'''
LOOP_START = "    n, _, kh, kw = w.shape\n    if n == 1:\n"

VARIANTS = [
    Variant(
        "fg_global_norm",
        (Edit("visualize", "    low = flat.min(dim=1).values.view(-1, 1, 1, 1)\n"
              "    high = flat.max(dim=1).values.view(-1, 1, 1, 1)\n",
              "    low = flat.min()\n    high = flat.max()\n"),),
        hurts=("filters",),
        why="one min-max over all filters instead of each filter on its own"),
    Variant(
        "fg_column_major",
        (Edit("visualize", "        top = (i // cols) * (kh + padding) + padding\n"
              "        left = (i % cols) * (kw + padding) + padding\n",
              "        top = (i % rows) * (kh + padding) + padding\n"
              "        left = (i // rows) * (kw + padding) + padding\n"),),
        hurts=("filters",),
        why="fills the grid column by column (rows and columns swapped)"),
    Variant(
        "fg_nrow_means_rows",
        (Edit("visualize", "    cols = min(nrow, n)\n    rows = math.ceil(n / cols)\n",
              "    rows = min(nrow, n)\n    cols = math.ceil(n / rows)\n"),),
        hurts=("filters",),
        why="reads nrow as the number of rows (make_grid: images per row)"),
    Variant(
        "fg_no_outer_border",
        (Edit("visualize", "rows * (kh + padding) + padding, cols * (kw + padding) + padding)",
              "rows * (kh + padding) - padding, cols * (kw + padding) - padding)"),
         Edit("visualize", "        top = (i // cols) * (kh + padding) + padding\n",
              "        top = (i // cols) * (kh + padding)\n"),
         Edit("visualize", "        left = (i % cols) * (kw + padding) + padding\n",
              "        left = (i % cols) * (kw + padding)\n")),
        hurts=("filters",),
        why="padding only between tiles, not around the grid"),
    Variant(
        "fg_divide_by_max",
        (Edit("visualize", "    w = (w - low) / (high - low).clamp_min(1e-5)",
              "    w = w / high.clamp_min(1e-5)"),),
        hurts=("filters",),
        why="divides each filter by its max without shifting by its min (negatives stay)"),
    Variant(
        "fg_vectorised",
        (Edit("visualize", LOOP_START, VECTORISED + LOOP_START),),
        hurts=(),
        why="correct alternative: pad every tile, then one reshape/permute into the grid"),
    Variant(
        "fg_make_grid",
        (Edit("visualize", "    w = weight.detach().float()\n",
              "    from torchvision.utils import make_grid\n\n"
              "    return make_grid(weight.detach().float(), nrow=nrow, padding=padding,\n"
              "                     normalize=True, scale_each=True)\n"
              "    w = weight.detach().float()\n"),),
        hurts=("filters",),
        why="calls torchvision's make_grid, the grader's oracle: the grid is the exercise "
            "(the docstring and contract say to build it by hand)"),
]
