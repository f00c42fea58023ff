"""Variants that the training smoke test must catch (or must not punish).

``smoke_test`` is a training run (~10 s), so the corpus grades it only where a variant names
it; every variant here does, in ``hurts`` or ``keeps``.
"""

from tests.corpus import Edit, Variant
from tests.corpus.train import LESSON_LOOP, TRAIN_BODY, TRAIN_RETURN

VARIANTS = [
    Variant(
        "smoke_no_step",
        (Edit("train", "        optimizer.step()\n", ""),),
        hurts=("training", "smoke_test"),
        why="never calls optimizer.step(): the weights never change, the loss cannot fall"),
    Variant(
        "smoke_conv2_skipped",
        (Edit("blocks", "        out = self.bn2(self.conv2(out))  # (N, C_out, H/s, W/s)\n",
              "        out = self.bn2(out)  # conv2 built but never called\n"),),
        hurts=("basic_block", "resnet18", "smoke_test"),
        keeps=("training",),
        why="conv2 is built but skipped in forward: it never receives a gradient"),
    Variant(
        "smoke_returns_swapped",
        (Edit("train", TRAIN_RETURN, TRAIN_RETURN.replace(
            "return total_loss / max(batches, 1), 100.0 * correct / max(seen, 1)",
            "return 100.0 * correct / max(seen, 1), total_loss / max(batches, 1)")),),
        hurts=("training", "smoke_test"),
        why="returns (accuracy, loss) instead of (loss, accuracy)"),
    Variant(
        "smoke_ends_in_eval",
        (Edit("train", TRAIN_RETURN, "    model.eval()\n" + TRAIN_RETURN),),
        hurts=("smoke_test",),
        keeps=("training",),  # harmless in the lesson's loop, which calls model.train() first
        why="switches the model to eval mode before returning from train_one_epoch"),
    Variant(
        "smoke_lesson_loop_ok",
        (Edit("train", TRAIN_BODY, LESSON_LOOP),),
        hurts=(),
        keeps=("training", "smoke_test"),
        why="the lesson's loop: zero_grad after the forward pass is just as correct"),
]
