"""A broken module costs only the exercises that depend on it, even when a sibling imports it.

``resnet.py`` starts with ``from .blocks import BasicBlock``: when ``blocks.py`` cannot be
imported, the worker imports ``resnet.py`` again with a stand-in ``blocks`` whose names fail
only when used, so ``init`` (which runs ``kaiming_init_`` on the grader's own model) keeps its
points while the exercises that build a BasicBlock lose theirs. The same holds for a
``train.py`` that imports a helper from a broken ``gradients.py``, and the other way round. A
module whose *own* import line is wrong (a misspelt name) is still that module's failure.
"""

from tests.corpus import Edit, Variant

BLOCKS_IMPORTS = "from torch import Tensor, nn\n\n\nclass BasicBlock"
TRAIN_IMPORTS = "from torch.optim.lr_scheduler import LRScheduler\n"
GRADIENTS_IMPORTS = "from torch import Tensor, nn\n\n\ndef measure_gradient_norms"
BLOCK_USES = ("basic_block", "resnet18", "plain_vs_residual")

VARIANTS = [
    Variant(
        "blocks_syntax_error_spares_init",
        (Edit("blocks", BLOCKS_IMPORTS,
              "from torch import Tensor, nn\n\n\ndef broken(:\n    pass\n\n\nclass BasicBlock"),),
        hurts=BLOCK_USES,
        keeps=("init",),
        why="blocks.py has a syntax error; resnet.py imports it but kaiming_init_ needs none of it",
    ),
    Variant(
        "blocks_raises_at_import_spares_init",
        (Edit("blocks", BLOCKS_IMPORTS,
              "from torch import Tensor, nn\n\nWIDTHS = {64: 1}[128]\n\n\nclass BasicBlock"),),
        hurts=BLOCK_USES,
        keeps=("init",),
        why="blocks.py raises KeyError at import; resnet.py's kaiming_init_ is still graded",
    ),
    Variant(
        "resnet_misspells_its_import",
        (Edit("resnet", "from .blocks import BasicBlock\n",
              "from .blocks import BasicBlok as BasicBlock\n"),),
        hurts=("resnet18", "plain_vs_residual", "init"),
        keeps=("basic_block",),
        why="resnet.py's own import line is wrong: all of resnet.py fails, blocks.py does not",
    ),
    Variant(
        "train_imports_a_broken_gradients",
        (Edit("train", TRAIN_IMPORTS,
              TRAIN_IMPORTS + "\nfrom .gradients import measure_gradient_norms  # noqa: F401\n"),
         Edit("gradients", GRADIENTS_IMPORTS,
              "from torch import Tensor, nn\n\nif True\n    pass\n\n\ndef measure_gradient_norms")),
        hurts=("grad_norms",),
        keeps=("training",),
        why="gradients.py has a syntax error; train.py imports it but never calls it",
    ),
    Variant(
        "gradients_imports_a_broken_train",
        (Edit("gradients", GRADIENTS_IMPORTS,
              "from torch import Tensor, nn\n\nfrom .train import evaluate  # noqa: F401\n\n\n"
              "def measure_gradient_norms"),
         Edit("train", TRAIN_IMPORTS, TRAIN_IMPORTS + "\nDEFAULT_LR = undefined_name * 0.1\n")),
        hurts=("training",),
        keeps=("grad_norms",),
        why="train.py raises NameError at import; gradients.py imports it but never calls it",
    ),
]
