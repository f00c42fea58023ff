"""Similarity across a class (``python -m grader similarity``): a copied, renamed helper is
flagged; two honest students who both follow the lesson's printed code are not; the stubs alone
never are (folders or notebooks); the report, the HTML and the summary line; no grade changes.

The honest students are written by hand, as students write them: the stubs with each
``raise NotImplementedError`` replaced by their own body, the lesson's code where it gives one.
Nothing here grades (the summary and the reports come from a fabricated batch folder), so the
file runs in seconds.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import textwrap
from pathlib import Path

import pytest

from grader.batch.collect import collect
from grader.batch.similarity import (
    DEFAULT_THRESHOLD,
    SECTION,
    SimilarityError,
    compare_class,
    write_reports,
)
from grader.cli import main
from grader.packs import load_pack
from tests.corpus import REPO, SOLUTIONS
from tests.notebook_helpers import load, nbgrader_meta, save, solved, text

PACK = load_pack("day02")
STUBS = REPO / "exercises"
RAISE = re.compile(r'^(?P<indent> *)raise NotImplementedError\("exercise \w+: write '
                   r'(?P<name>[\w.]+) .*$', re.MULTILINE)


def student(dest: Path, bodies: dict[str, str], helpers: dict[str, str] | None = None) -> Path:
    """The stubs, each ``raise NotImplementedError`` for a name in ``bodies`` replaced by that
    body (indented like the raise), ``helpers[module]`` appended to the module."""
    dest.mkdir(parents=True)
    used = set()
    for stub in sorted(STUBS.glob("*.py")):
        def fill(m: re.Match) -> str:
            if m["name"] not in bodies:
                return m[0]
            used.add(m["name"])
            return textwrap.indent(textwrap.dedent(bodies[m["name"]]).strip("\n"), m["indent"])

        code = RAISE.sub(fill, stub.read_text())
        if helpers and stub.stem in helpers:
            code += "\n\n" + textwrap.dedent(helpers[stub.stem]).strip("\n") + "\n"
        (dest / stub.name).write_text(code)
    assert used == set(bodies), set(bodies) - used
    return dest


# -- two honest students: the lesson's code where it has some, their own elsewhere ---------------
ANA = {
    "BasicBlock.__init__": """
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3,
                               stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3,
                               stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        # Shortcut for dimension mismatch
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels)
            )
    """,
    "BasicBlock.forward": """
        identity = self.shortcut(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity  # the residual connection
        out = F.relu(out)
        return out
    """,
    "ResNet18.__init__": """
        self.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = self._make_layer(64, 64, num_blocks=2, stride=1)
        self.layer2 = self._make_layer(64, 128, num_blocks=2, stride=2)
        self.layer3 = self._make_layer(128, 256, num_blocks=2, stride=2)
        self.layer4 = self._make_layer(256, 512, num_blocks=2, stride=2)
        self.avg_pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)
    """,
    "ResNet18._make_layer": """
        layers = [BasicBlock(in_ch, out_ch, stride)]
        for _ in range(1, num_blocks):
            layers.append(BasicBlock(out_ch, out_ch, stride=1))
        return nn.Sequential(*layers)
    """,
    "ResNet18.forward": """
        x = torch.relu(self.bn1(self.conv1(x)))  # 32x32
        x = self.layer1(x)  # 32x32
        x = self.layer2(x)  # 16x16
        x = self.layer3(x)  # 8x8
        x = self.layer4(x)  # 4x4
        x = self.avg_pool(x)
        x = x.view(x.size(0), -1)
        x = self.fc(x)
        return x
    """,
    "PlainNet.__init__": """
        layers = [nn.Conv2d(3, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(64, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(64, num_classes)
    """,
    "PlainNet.forward": """
        x = self.features(x)
        x = self.pool(x)
        x = x.view(x.size(0), -1)
        return self.fc(x)
    """,
    "ResidualNet.__init__": """
        if depth % 2 or depth < 4:
            raise ValueError("depth must be even and at least 4")
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU())
        n_blocks = (depth - 2) // 2
        self.blocks = nn.Sequential(*[BasicBlock(64, 64) for _ in range(n_blocks)])
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(64, num_classes)
    """,
    "ResidualNet.forward": """
        x = self.blocks(self.stem(x))
        x = self.pool(x)
        x = x.view(x.size(0), -1)
        return self.fc(x)
    """,
    "kaiming_init_": """
        for layer in model.modules():
            if isinstance(layer, nn.Conv2d):
                nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
                if layer.bias is not None:
                    nn.init.constant_(layer.bias, 0)
            elif isinstance(layer, nn.BatchNorm2d):
                nn.init.constant_(layer.weight, 1)
                nn.init.constant_(layer.bias, 0)
        return model
    """,
    "measure_gradient_norms": """
        model.zero_grad()
        out = model(x)
        loss = F.cross_entropy(out, y)
        loss.backward()
        norms = []
        for name, param in model.named_parameters():
            if param.grad is not None and param.dim() >= 2:
                norms.append((name, param.grad.norm().item()))
        return norms
    """,
    "gradient_norm_spread": """
        if len(norms) == 0:
            raise ValueError("empty")
        values = [v for _, v in norms]
        if min(values) == 0:
            return math.inf
        return math.log10(max(values) / min(values))
    """,
    "make_optimizer": """
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum,
                               weight_decay=weight_decay)
    """,
    "make_scheduler": """
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    """,
    "train_one_epoch": """
        model.train()
        return _run_batches(model, loader, criterion, device, optimizer)
    """,
    "evaluate": """
        model.eval()
        with torch.no_grad():
            return _run_batches(model, loader, criterion, device)
    """,
    "conv2d_params": """
        if isinstance(kernel_size, int):
            kernel_size = (kernel_size, kernel_size)
        n = in_channels * out_channels * kernel_size[0] * kernel_size[1]
        return n + out_channels if bias else n
    """,
    "batchnorm2d_params": "return 2 * num_features",
    "linear_params": """
        n = in_features * out_features
        return n + out_features if bias else n
    """,
    "count_parameters": """
        params = model.parameters()
        if trainable_only:
            params = [p for p in params if p.requires_grad]
        return sum(p.numel() for p in params)
    """,
    "parameter_table": """
        rows = []
        for name, p in model.named_parameters():
            rows.append((name, tuple(p.shape), p.numel()))
        return rows
    """,
    "receptive_field": """
        rf, jump = 1, 1
        for layer in layers:
            if len(layer) == 2:
                k, s, d = layer[0], layer[1], 1
            elif len(layer) == 3:
                k, s, d = layer
            else:
                raise ValueError(f"bad layer {layer}")
            if k < 1 or s < 1 or d < 1:
                raise ValueError(f"bad layer {layer}")
            rf = rf + d * (k - 1) * jump
            jump = jump * s
        return rf
    """,
}
# Ana's own helper: one loop for training and evaluation (optimizer None: no update).
ANA_HELPER = {"train": """
    def _run_batches(model, loader, criterion, device, optimizer=None):
        total_loss, correct, total, n_batches = 0.0, 0, 0, 0
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            outputs = model(images)
            loss = criterion(outputs, labels)
            if optimizer is not None:
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            total_loss += loss.item()
            correct += (outputs.argmax(1) == labels).sum().item()
            total += labels.size(0)
            n_batches += 1
        if n_batches == 0:
            return 0.0, 0.0
        return total_loss / n_batches, 100.0 * correct / total
"""}

BEN = {
    "BasicBlock.__init__": """
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1,
                               bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
    """,
    "BasicBlock.forward": """
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = out + self.shortcut(x)
        return F.relu(out)
    """,
    "ResNet18.__init__": """
        # CIFAR stem: 3x3 conv, no max-pool
        self.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = self._make_layer(64, 64, num_blocks=2, stride=1)
        self.layer2 = self._make_layer(64, 128, num_blocks=2, stride=2)
        self.layer3 = self._make_layer(128, 256, num_blocks=2, stride=2)
        self.layer4 = self._make_layer(256, 512, num_blocks=2, stride=2)
        self.avg_pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)
    """,
    "ResNet18._make_layer": """
        strides = [stride] + [1] * (num_blocks - 1)
        blocks = []
        for i, s in enumerate(strides):
            blocks.append(BasicBlock(in_ch if i == 0 else out_ch, out_ch, s))
        return nn.Sequential(*blocks)
    """,
    "ResNet18.forward": """
        out = torch.relu(self.bn1(self.conv1(x)))
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            out = layer(out)
        out = torch.flatten(self.avg_pool(out), 1)
        return self.fc(out)
    """,
    "PlainNet.__init__": """
        layers = [nn.Conv2d(3, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(64, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(64, num_classes)
    """,
    "PlainNet.forward": """
        x = self.features(x)
        x = self.pool(x)
        x = x.view(x.size(0), -1)
        return self.fc(x)
    """,
    "ResidualNet.__init__": """
        assert depth >= 4 and depth % 2 == 0, "depth: even, >= 4"
        stem = [nn.Conv2d(3, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU()]
        self.stem = nn.Sequential(*stem)
        blocks = []
        while len(blocks) < (depth - 2) // 2:
            blocks.append(BasicBlock(64, 64, stride=1))
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)
    """,
    "ResidualNet.forward": """
        h = self.stem(x)
        h = self.blocks(h)
        return self.fc(torch.flatten(self.pool(h), 1))
    """,
    "kaiming_init_": """
        def init(m):
            if type(m) is nn.Conv2d:
                torch.nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    m.bias.data.zero_()
            if type(m) is nn.BatchNorm2d:
                m.weight.data.fill_(1.0)
                m.bias.data.zero_()
        model.apply(init)
        return model
    """,
    "measure_gradient_norms": """
        for p in model.parameters():
            p.grad = None
        out = model(x)
        loss = F.cross_entropy(out, y)
        loss.backward()
        result = []
        for name, param in model.named_parameters():
            if param.dim() < 2 or param.grad is None:
                continue
            result.append((name, float(param.grad.norm())))
        return result
    """,
    "gradient_norm_spread": """
        vals = sorted(float(n) for _, n in norms)
        if not vals:
            raise ValueError("no norms")
        lo, hi = vals[0], vals[-1]
        return math.inf if lo <= 0 else math.log10(hi / lo)
    """,
    "make_optimizer": """
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum,
                                    weight_decay=weight_decay)
        return optimizer
    """,
    "make_scheduler": """
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
        return scheduler
    """,
    "train_one_epoch": """
        model.train()
        total_loss, correct, total = 0, 0, 0
        n = 0
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
            n += 1
        return total_loss / max(n, 1), 100. * correct / max(total, 1)
    """,
    "evaluate": """
        model.eval()
        total_loss, correct, total = 0, 0, 0
        n = 0
        with torch.no_grad():
            for images, labels in loader:
                images, labels = images.to(device), labels.to(device)
                outputs = model(images)
                total_loss += criterion(outputs, labels).item()
                _, predicted = outputs.max(1)
                total += labels.size(0)
                correct += predicted.eq(labels).sum().item()
                n += 1
        return total_loss / max(n, 1), 100. * correct / max(total, 1)
    """,
    "conv2d_params": """
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        return in_channels * out_channels * kh * kw + (out_channels if bias else 0)
    """,
    "batchnorm2d_params": "return num_features * 2  # gamma and beta",
    "linear_params": "return in_features * out_features + (out_features if bias else 0)",
    "count_parameters": """
        total = 0
        for p in model.parameters():
            if trainable_only and not p.requires_grad:
                continue
            total += p.numel()
        return total
    """,
    "parameter_table": """
        return [(n, tuple(p.size()), p.numel()) for n, p in model.named_parameters()]
    """,
    "receptive_field": """
        r = 1
        j = 1
        for layer in layers:
            if len(layer) not in (2, 3):
                raise ValueError("layer must be (k, s) or (k, s, d)")
            k, s = layer[0], layer[1]
            d = layer[2] if len(layer) == 3 else 1
            if k <= 0 or s <= 0 or d <= 0:
                raise ValueError("kernel, stride, dilation must be positive")
            r += d * (k - 1) * j
            j *= s
        return r
    """,
}
# Ben's copy of Ana's loop helper, renamed throughout, in place of his own training code.
BEN_COPIED = {**BEN, "train_one_epoch": """
    model.train()
    return _loop(model, loader, criterion, device, optimizer)
""", "evaluate": """
    model.eval()
    with torch.no_grad():
        return _loop(model, loader, criterion, device)
"""}
BEN_COPIED_HELPER = {"train": """
    def _loop(net, data, loss_fn, dev, opt=None):
        running, hits, seen, steps = 0.0, 0, 0, 0
        for xb, yb in data:
            xb, yb = xb.to(dev), yb.to(dev)
            logits = net(xb)
            batch_loss = loss_fn(logits, yb)
            if opt is not None:
                opt.zero_grad()
                batch_loss.backward()
                opt.step()
            running += batch_loss.item()
            hits += (logits.argmax(1) == yb).sum().item()
            seen += yb.size(0)
            steps += 1
        if steps == 0:
            return 0.0, 0.0
        return running / steps, 100.0 * hits / seen
"""}


@pytest.fixture(scope="module")
def honest(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("honest")
    student(root / "ana", ANA, ANA_HELPER)
    student(root / "ben", BEN)
    return root


@pytest.fixture(scope="module")
def copied(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("copied")
    student(root / "ana", ANA, ANA_HELPER)
    student(root / "ben", BEN_COPIED, BEN_COPIED_HELPER)
    return root


def test_two_honest_students_following_the_lesson_are_not_flagged(honest):
    report = compare_class(collect(honest), PACK)
    assert report.students == ["ana", "ben"] and report.pair_count == 1
    assert report.flagged == []
    # they do share some code of their own (forced one-liners), only not enough to matter
    pair = report.pairs[0] if report.pairs else None
    assert pair is None or pair.score < DEFAULT_THRESHOLD / 2, pair


def test_a_copied_renamed_helper_is_flagged(copied):
    report = compare_class(collect(copied), PACK)
    assert [(p.a, p.b) for p in report.flagged] == [("ana", "ben")]
    pair = report.flagged[0]
    train = next(r for r in pair.modules if r.module == "train")
    assert train.a >= 0.6 and train.b >= 0.6, train  # the helper is most of train.py's own code
    # the longest shared fragment is the helper, on both sides, renamed on one
    top = pair.fragments[0]
    assert (top.module_a, top.module_b) == ("train", "train")
    assert "_run_batches" in top.text_a and "optimizer.step()" in top.text_a
    assert "_loop" in top.text_b and "opt.step()" in top.text_b


def test_a_canvas_download_is_compared_by_student(copied, tmp_path):
    """The same two students as a Canvas "Download Submissions" zip (login_userid_subid_file)."""
    import zipfile

    download = tmp_path / "submissions.zip"
    with zipfile.ZipFile(download, "w") as zf:
        for no, name in enumerate(("ana", "ben")):
            for f in sorted((copied / name).rglob("*.py")):
                zf.write(f, f"{name}_{2001 + no}_{601 + no}_{f.name}")
    report = compare_class(collect(download), PACK)
    assert report.students == ["ana", "ben"]
    assert [(p.a, p.b) for p in report.flagged] == [("ana", "ben")]


def test_the_stubs_alone_never_flag(tmp_path):
    for name in ("s1", "s2", "s3"):
        shutil.copytree(STUBS, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__",
                                                                              "tests"))
    student(tmp_path / "ana", ANA, ANA_HELPER)  # a finished submission built on the same stubs
    report = compare_class(collect(tmp_path), PACK, threshold=0.05)
    assert report.flagged == []
    assert all(p.score == 0 for p in report.pairs if {"s1", "s2", "s3"} & {p.a, p.b})


def unsolved(nb: dict) -> dict:
    """The notebook as released to students: each solution region a bare raise, as nbgrader's
    generate_assignment leaves it."""
    out = json.loads(json.dumps(nb))
    for cell in out["cells"]:
        if nbgrader_meta(cell).get("solution"):
            cell["source"] = re.sub(
                r"(?m)^( *)### BEGIN SOLUTION\n.*?### END SOLUTION\n?",
                lambda m: f"{m[1]}# YOUR CODE HERE\n{m[1]}raise NotImplementedError()\n",
                text(cell), flags=re.DOTALL)
    return out


def test_notebooks_are_compared_as_their_modules(tmp_path):
    save(unsolved(load()), tmp_path / "nb_empty1" / "day02.ipynb")
    save(unsolved(load()), tmp_path / "nb_empty2" / "day02.ipynb")
    save(solved(load()), tmp_path / "nb_solved" / "day02.ipynb")
    shutil.copytree(SOLUTIONS, tmp_path / "folder_solved",
                    ignore=shutil.ignore_patterns("__*"))
    report = compare_class(collect(tmp_path), PACK)
    assert len(report.students) == 4 and report.not_compared == {}
    # a released notebook handed in untouched is boilerplate only, like the stubs
    assert [(p.a, p.b) for p in report.flagged] == [("folder_solved", "nb_solved")]
    assert {r.module for r in report.flagged[0].modules} >= set(PACK.modules) - {"__init__"}


def test_allowed_sources_are_not_counted(copied, tmp_path):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "loop.py").write_text(textwrap.dedent(ANA_HELPER["train"]))
    report = compare_class(collect(copied), PACK, allowed=allowed)
    assert ("ana", "ben") not in {(p.a, p.b) for p in report.flagged}
    assert any("allowed" in origin for origin in report.given)
    with pytest.raises(SimilarityError, match="not a folder"):
        compare_class(collect(copied), PACK, allowed=tmp_path / "missing")


def digests(out: Path) -> dict[str, str]:
    return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file() and not p.name.startswith(".batch")}


def test_cli_writes_the_reports_and_one_summary_line(copied, tmp_path, capsys):
    out = tmp_path / "grades"  # a batch's folder: its summary and each student's report
    out.mkdir()
    (out / "summary.md").write_text("# Batch summary · Day 2\n\n2 students: 2 graded.\n")
    for name in ("ana", "ben"):
        (out / name).mkdir()
        (out / name / "results.json").write_text(json.dumps({"score": 40, "tests": []}))
        (out / name / "feedback.md").write_text("# feedback\n")
    before = digests(out)
    args = ["similarity", str(out), "--submissions", str(copied)]
    assert main(args) == 0
    assert "1 of 1 pairs flagged" in capsys.readouterr().out
    md = (out / "similarity.md").read_text()
    assert md.splitlines()[2].startswith("> These flags point a person at pairs")
    assert "`ana` and `ben`" in md and "│" in md  # the fragments, side by side
    page = (out / "similarity.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<mark>" in page and "_run_batches" in page
    summary = (out / "summary.md").read_text()
    assert summary.startswith("# Batch summary · Day 2\n\n2 students: 2 graded.\n")
    assert summary.count(SECTION) == 1 and "**1 pair of students flagged**" in summary
    assert main(args + ["--threshold", "0.99"]) == 0  # again: the line is replaced, not added
    summary = (out / "summary.md").read_text()
    assert summary.count(SECTION) == 1 and "flagged** as similar at threshold 0.99" in summary
    after = digests(out)
    changed = {p for p in before if before[p] != after.get(p)}
    assert changed == {"summary.md"}  # no results.json, no feedback.md
    assert set(after) - set(before) == {"similarity.md", "similarity.html"}


def test_a_regrade_keeps_the_similarity_line(copied, tmp_path):
    """The batch rewrites summary.md on every run; the similarity section stays."""
    from grader.batch.collect import collect
    from grader.batch.gradebook import write_class_reports
    from grader.packs import load_pack

    out = tmp_path / "grades"
    out.mkdir()
    found = collect(copied)
    write_class_reports(out, load_pack(), found)  # a batch's class reports (nobody graded)
    assert main(["similarity", str(out), "--submissions", str(copied)]) == 0
    write_class_reports(out, load_pack(), found)  # the batch runs again
    summary = (out / "summary.md").read_text()
    assert summary.count(SECTION) == 1 and "**1 pair of students flagged**" in summary
    assert summary.startswith("# ")


def test_cli_usage_errors(copied, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["similarity", str(out), "--submissions", str(tmp_path / "nowhere")]) == 2
    assert "error:" in capsys.readouterr().err
    assert main(["similarity", str(out), "--submissions", str(copied), "--threshold", "0"]) == 2
    assert "error: --threshold" in capsys.readouterr().err
    assert main(["similarity", str(out), "--submissions", str(copied), "--allowed",
                 str(tmp_path / "nope")]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert not out.exists()


def test_write_reports_without_a_batch_writes_no_summary(honest, tmp_path):
    written = write_reports(compare_class(collect(honest), PACK), tmp_path / "fresh")
    assert sorted(p.name for p in written) == ["similarity.html", "similarity.md"]
    assert "**0 pairs flagged**" in (tmp_path / "fresh" / "similarity.md").read_text()
