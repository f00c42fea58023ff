"""Variants of train.py."""

from tests.corpus import Edit, Variant

# the end of train_one_epoch's solution, unique because evaluate's return is the file's end
TRAIN_RETURN = ("    return total_loss / max(batches, 1), 100.0 * correct / max(seen, 1)\n"
                "    ### END SOLUTION\n\n\ndef evaluate")
MODEL_TRAIN = ("    model.train()  # BatchNorm uses batch statistics and updates its running "
               "averages\n")
TRAIN_BODY = MODEL_TRAIN + '''    total_loss, correct, seen, batches = 0.0, 0, 0, 0
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)  # (N, 3, H, W), (N,)
        optimizer.zero_grad()
        outputs = model(images)  # (N, classes)
        loss = criterion(outputs, labels)
        loss.backward()
        optimizer.step()
        total_loss += loss.item()
        correct += (outputs.argmax(dim=1) == labels).sum().item()
        seen += labels.size(0)
        batches += 1
''' + TRAIN_RETURN
LESSON_LOOP = '''    model.train()
    total_loss, correct, total = 0, 0, 0
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        outputs = model(images)
        loss = criterion(outputs, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total_loss += loss.item()
        _, predicted = outputs.max(1)
        total += labels.size(0)
        correct += predicted.eq(labels).sum().item()
    return total_loss / len(loader), 100. * correct / total
    ### END SOLUTION


def evaluate'''
COSINE = "    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)\n"

VARIANTS = [
    Variant(
        "tr_no_zero_grad",
        (Edit("train", "        optimizer.zero_grad()\n", ""),),
        hurts=("training",),
        why="never zeroes the gradients: they accumulate across batches"),
    Variant(
        "tr_step_before_backward",
        (Edit("train", "        loss.backward()\n        optimizer.step()\n",
              "        optimizer.step()\n        loss.backward()\n"),),
        hurts=("training",),
        why="optimizer.step() before loss.backward(): each step uses no or stale gradients"),
    Variant(
        "tr_no_model_train",
        (Edit("train", MODEL_TRAIN, ""),),
        hurts=("training",),
        why="no model.train(): after evaluate() the epoch runs in eval mode"),
    Variant(
        "tr_accuracy_fraction",
        (Edit("train", TRAIN_RETURN, TRAIN_RETURN.replace("100.0 * correct", "correct")),
         Edit("train", "100.0 * correct / max(seen, 1)", "correct / max(seen, 1)")),
        hurts=("training",),
        why="accuracy as a fraction in [0, 1] instead of a percentage"),
    Variant(
        "tr_loss_over_samples",
        (Edit("train", TRAIN_RETURN, TRAIN_RETURN.replace("max(batches, 1)", "max(seen, 1)")),),
        hurts=("training",),
        why="sums the batch-mean losses, then divides by the number of samples"),
    Variant(
        "tr_accuracy_int_division",
        (Edit("train", TRAIN_RETURN, TRAIN_RETURN.replace("100.0 * correct / max(seen, 1)",
                                                          "100 * correct // max(seen, 1)")),),
        hurts=("training",),
        why="integer division: the accuracy is a truncated int, not a float"),
    Variant(
        "tr_eval_train_mode",
        (Edit("train", "    model.eval()  # BatchNorm uses its running statistics; nothing is "
              "updated\n", ""),),
        hurts=("training",),
        why="evaluate without model.eval(): BatchNorm uses batch statistics and updates them"),
    Variant(
        "tr_eval_no_grad_missing",
        (Edit("train", "    with torch.no_grad():\n", "    if True:  # no torch.no_grad()\n"),),
        hurts=("training",),
        why="evaluate builds an autograd graph (no torch.no_grad())"),
    Variant(
        "tr_default_weight_decay",
        (Edit("train", "weight_decay: float = 5e-4)", "weight_decay: float = 1e-4)"),),
        hurts=("training",),
        why="ImageNet's weight decay 1e-4 as the default instead of the lesson's 5e-4"),
    Variant(
        "tr_no_weight_decay",
        (Edit("train", "lr=lr, momentum=momentum,\n                           "
              "weight_decay=weight_decay)", "lr=lr, momentum=momentum)"),),
        hurts=("training",),
        why="never passes weight_decay to SGD"),
    Variant(
        "tr_fixed_momentum",
        (Edit("train", "momentum=momentum,", "momentum=0.9,"),),
        hurts=("training",),
        why="momentum fixed at 0.9: a custom momentum is ignored"),
    Variant(
        "tr_step_lr",
        (Edit("train", COSINE, "    return torch.optim.lr_scheduler.StepLR(optimizer, "
              "step_size=max(epochs // 3, 1), gamma=0.1)\n"),),
        hurts=("training",),
        why="StepLR instead of cosine annealing"),
    Variant(
        "tr_cosine_tmax_200",
        (Edit("train", COSINE, COSINE.replace("T_max=epochs", "T_max=200")),),
        hurts=("training",),
        why="T_max fixed at the lesson's 200, ignoring epochs"),
    Variant(
        "tr_lesson_loop",
        (Edit("train", TRAIN_BODY, LESSON_LOOP),),
        hurts=(),
        why="correct alternative: the lesson's loop exactly (zero_grad after the forward, "
            "outputs.max(1), total_loss / len(loader))"),
    Variant(
        "tr_per_sample_mean",
        (Edit("train", "        total_loss += loss.item()\n",
              "        total_loss += loss.item() * labels.size(0)\n"),
         Edit("train", TRAIN_RETURN, TRAIN_RETURN.replace("max(batches, 1)", "max(seen, 1)")),
         Edit("train", "            total_loss += criterion(outputs, labels).item()\n",
              "            total_loss += criterion(outputs, labels).item() * labels.size(0)\n"),
         Edit("train", "    return total_loss / max(batches, 1), 100.0 * correct / max(seen, 1)"
              "\n    ### END SOLUTION\n",
              "    return total_loss / max(seen, 1), 100.0 * correct / max(seen, 1)"
              "\n    ### END SOLUTION\n")),
        hurts=(),
        why="correct alternative: per-sample mean loss (equal batches give the same value)"),
    Variant(
        "tr_lambda_cosine",
        (Edit("train", COSINE,
              "    import math\n\n"
              "    return torch.optim.lr_scheduler.LambdaLR(\n"
              "        optimizer,\n"
              "        lambda epoch: 0.5 * (1 + math.cos(math.pi * epoch / epochs)))\n"),),
        hurts=(),
        why="correct alternative: LambdaLR with the cosine formula (same lr sequence)"),
    Variant(
        "tr_eval_inference_mode",
        (Edit("train", "    with torch.no_grad():\n", "    with torch.inference_mode():\n"),
         Edit("train", "    model.eval()  # BatchNorm uses its running statistics; nothing is "
              "updated\n", "    model.train(False)\n")),
        hurts=(),
        why="correct alternative: evaluate under torch.inference_mode() and model.train(False)"),
    Variant(
        "tr_dataset_length",
        (Edit("train", "            batches += 1\n    return total_loss / max(batches, 1), "
              "100.0 * correct / max(seen, 1)\n",
              "            batches += 1\n    return total_loss / len(loader), "
              "100.0 * correct / len(loader.dataset)\n"),
         Edit("train", "    return torch.optim.SGD(model.parameters(),",
              "    return torch.optim.SGD([p for p in model.parameters() if p.requires_grad],")),
        hurts=(),
        why="correct alternative: DataLoader-style len(loader) and len(loader.dataset) in "
            "evaluate, SGD over the parameters that require grad"),
    Variant(
        "tr_ok_float32_accuracy",
        (Edit("train", TRAIN_BODY, TRAIN_BODY.replace(
            "        correct += (outputs.argmax(dim=1) == labels).sum().item()\n",
            "        correct = correct + (outputs.argmax(dim=1) == labels).float().sum()\n"
        ).replace("100.0 * correct / max(seen, 1)", "float(100.0 * correct / max(seen, 1))")),
         Edit("train", "            correct += (outputs.argmax(dim=1) == labels).sum().item()\n",
              "            correct = correct + (outputs.argmax(dim=1) == labels).float().sum()\n"),
         Edit("train", "    return total_loss / max(batches, 1), 100.0 * correct / max(seen, 1)\n"
              "    ### END SOLUTION\n",
              "    return total_loss / max(batches, 1), float(100.0 * correct / max(seen, 1))\n"
              "    ### END SOLUTION\n")),
        hurts=(),
        why="a float32 tensor accumulates the correct count, as much example code does: "
            "the accuracy is right to float32 precision (28.571428 for 28.571428571...)"),
]
