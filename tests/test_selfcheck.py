"""The student's self-check (``pytest exercises``): the same points as the grade, every
exercise checked (smoke_test included), and failures a student can read: the Tried / Got /
Expected / Hint block and the shrunk case, not the test's source or hypothesis's explanation."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import Phase, settings

import grader.plugin  # noqa: F401  (registers the profiles)
from grader.grade import grade
from grader.packs import load_pack

REPO = Path(__file__).resolve().parents[1]
PACK = load_pack()
SPAN = "    span = dilation * (kernel_size - 1) + 1  # pixels covered by the dilated kernel\n"


def student_folder(tmp_path: Path, modules: str = "solutions") -> Path:
    """A student's checkout: ``exercises/`` with the public tests and ``modules``' code."""
    root = tmp_path / "student"
    shutil.copytree(REPO / "exercises", root / "exercises",
                    ignore=shutil.ignore_patterns("__pycache__"))
    if modules == "solutions":
        for src in (REPO / "solutions").glob("*.py"):
            if src.name != "__init__.py":
                shutil.copy(src, root / "exercises" / src.name)
    return root


def self_check(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "exercises", "-p", "no:cacheprovider",
                           *args], cwd=root, capture_output=True, text=True, timeout=600)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))


@pytest.mark.slow  # a self-check or a grade in a subprocess
def test_solutions_pass_the_self_check_with_the_graded_points(tmp_path):
    root = student_folder(tmp_path)
    run = self_check(root, "--kit-report", "report.json")
    assert run.returncode == 0, run.stdout[-3000:]
    report = json.loads((root / "report.json").read_text())
    maxima: dict[str, float] = {}
    for t in report["tests"]:
        maxima[t["tags"][0]] = maxima.get(t["tags"][0], 0.0) + t["max_score"]
    # every exercise, smoke_test included, has public checks worth exactly its points
    assert {ex: round(m, 6) for ex, m in maxima.items()} == {
        ex.id: ex.points for ex in PACK.exercises}
    assert report["score"] == report["max_score"] == PACK.max_score == 100


@pytest.mark.slow  # a self-check or a grade in a subprocess
def test_graded_points_add_up_to_the_manifest(tmp_path):
    report = grade(REPO / "exercises", tmp_path / "out", quiet=True, handle="in-process")
    rows = {row.exercise: row.max_score for row in report.by_exercise()}
    assert rows == {ex.id: ex.points for ex in PACK.exercises}


@pytest.mark.slow  # a self-check or a grade in a subprocess
def test_a_failing_check_shows_the_feedback_block_not_the_test_source(tmp_path):
    root = student_folder(tmp_path)
    edit(root / "exercises" / "conv.py", SPAN, "    span = kernel_size\n")  # forgets dilation
    run = self_check(root, "-m", "conv_output_size")
    out = run.stdout
    assert run.returncode == 1
    assert "conv_output_size: agrees with the shape F.conv2d produces" in out
    assert "\nTried: conv_output_size(" in out and "\nGot: " in out and "\nHint: H_out" in out
    assert "Smallest failing case found: args=(" in out
    for noise in ("Explanation", "always and only run by failing", "def check", "assert (",
                  "load_exercise = <function", "Hint: \n"):
        assert noise not in out, noise
    assert re.search(r"\nconv_output_size +0 / 6 ", out)
    # the student can still ask for the traceback
    assert "def check" in self_check(root, "-m", "conv_output_size", "--tb=long").stdout


@pytest.mark.slow  # a self-check or a grade in a subprocess
def test_an_exception_in_student_code_names_its_line(tmp_path):
    root = student_folder(tmp_path)
    edit(root / "exercises" / "blocks.py", "out = out + self.shortcut(x)", "out = out + x")
    out = self_check(root, "-m", "basic_block").stdout
    assert "your code raised RuntimeError: The size of tensor a" in out
    assert "(blocks.py, line 54)" in out
    assert "Hint: " in out and "Traceback" not in out


@pytest.mark.slow  # a self-check or a grade in a subprocess
def test_a_broken_sibling_costs_only_its_own_exercises_in_the_self_check(tmp_path):
    root = student_folder(tmp_path)
    edit(root / "exercises" / "blocks.py", "class BasicBlock", "def broken(:\n\n\nclass BasicBlock")
    run = self_check(root, "-m", "init or resnet18")
    assert re.search(r"\ninit +6 / 6 ", run.stdout), run.stdout[-3000:]
    assert re.search(r"\nresnet18 +0 / 12 ", run.stdout), run.stdout[-3000:]
    assert "\nBasicBlock is unavailable: blocks.py failed to import (SyntaxError" in run.stdout


def test_the_selfcheck_profile_has_no_explain_phase():
    for name in ("selfcheck", "grading"):
        assert Phase.explain not in settings.get_profile(name).phases
    assert not settings.get_profile("selfcheck").derandomize


def test_every_public_message_has_a_hint():
    missing = []
    for path in sorted((REPO / "exercises" / "tests").glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "msg":
                args = [*node.args, *(k.value for k in node.keywords)]
                empty = len(args) > 3 and isinstance(args[3], ast.Constant) and not args[3].value
                if len(args) < 4 or empty:
                    missing.append(f"{path.name}:{node.lineno}")
    assert not missing, f"msg(...) without a hint: {missing}"


@pytest.mark.parametrize("marker", [ex.id for ex in PACK.exercises])
def test_every_exercise_has_public_checks(marker):
    sources = "".join(p.read_text() for p in (REPO / "exercises" / "tests").glob("test_*.py"))
    assert f"@pytest.mark.{marker}\n" in sources
