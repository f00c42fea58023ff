"""Bad input to `python -m grader grade`: each case gives a complete report whose affected
properties carry a one-line reason, and costs only the exercises of the affected module.
Every case runs in every sandbox tier (tests/sandbox_tiers.py), as the attack suite does."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.corpus import REPO, SOLUTIONS, copy_solutions
from tests.sandbox_tiers import TIERS, grade, use_tier

pytestmark = pytest.mark.slow  # every case grades a submission in the sandbox

ONLY = ("conv_output_size", "receptive_field")


@pytest.fixture(autouse=True, params=list(TIERS))
def tier(request, monkeypatch):
    return use_tier(request.param, monkeypatch)


def scores(report) -> dict[str, float]:
    return {r.exercise: r.score for r in report.by_exercise()}


def feedback(report, exercise: str) -> list[str]:
    return [t.output for t in report.tests if t.exercise == exercise]


def assert_complete(out: Path, expected_ids=ONLY) -> dict:
    saved = json.loads((out / "results.json").read_text())
    assert {t["tags"][0] for t in saved["tests"]} == set(expected_ids)
    assert all(t["status"] in ("passed", "failed") for t in saved["tests"])
    return saved


@pytest.mark.parametrize("make", ["missing", "empty", "not_a_zip", "traversal_zip"])
def test_unusable_submission_gives_complete_report(make, tmp_path):
    if make == "missing":
        path = tmp_path / "nope"
        reason = "does not exist"
    elif make == "empty":
        path = tmp_path / "empty"
        path.mkdir()
        reason = "is missing from the submission"
    elif make == "not_a_zip":
        path = tmp_path / "sub.zip"
        path.write_bytes(b"this is not a zip")
        reason = "not a valid zip"
    else:
        path = tmp_path / "evil.zip"
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("../../escaped.py", "x = 1\n")
        reason = "unsafe path"
    report = grade(path, tmp_path / "out", only=ONLY, quiet=True)
    assert report.score == 0
    assert_complete(tmp_path / "out")
    for out in feedback(report, "conv_output_size"):
        assert reason in out and "\n" not in out
    assert not (tmp_path.parent / "escaped.py").exists()


def test_zip_submission_is_graded(tmp_path):
    folder = copy_solutions(tmp_path / "student" / "exercises")
    archive = tmp_path / "student.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in folder.iterdir():
            zf.write(f, f"exercises/{f.name}")
    report = grade(archive, tmp_path / "out", only=ONLY, quiet=True)
    assert report.score == report.max_score


@pytest.mark.parametrize("case,reason", [
    ("missing_module", "conv.py is missing from the submission"),
    ("syntax_error", "SyntaxError"),
    ("not_utf8", "could not be imported"),
    ("missing_package", "No module named 'sklearnx'"),
    ("wrong_signature", "TypeError"),
])
def test_broken_module_costs_only_its_exercises(case, reason, tmp_path):
    sub = copy_solutions(tmp_path / "sub")
    conv = sub / "conv.py"
    if case == "missing_module":
        conv.unlink()
    elif case == "syntax_error":
        conv.write_text(conv.read_text() + "\ndef broken(:\n    pass\n")
    elif case == "not_utf8":
        # Python tolerates stray bytes in comments, not in code
        conv.write_bytes(conv.read_bytes() + b'\nCAFE = "caf\xe9 \xff\xfe"\n')
    elif case == "missing_package":
        conv.write_text(conv.read_text() + "\nimport sklearnx  # noqa\n")
    else:
        old = "def conv_output_size(size: int, kernel_size: int, stride"
        conv.write_text(conv.read_text().replace(old, old.replace("int, stride", "int, *, stride")))
    report = grade(sub, tmp_path / "out", only=ONLY, quiet=True)
    got = scores(report)
    assert got["conv_output_size"] == 0
    assert got["receptive_field"] == next(r.max_score for r in report.by_exercise()
                                          if r.exercise == "receptive_field")
    for out in feedback(report, "conv_output_size"):
        assert reason in out, out
    assert_complete(tmp_path / "out")


def test_cli_exit_status_and_error_line(tmp_path):
    """Grading completed (even at 0 points): exit 0. Bad usage: exit 2 and one line."""
    done = subprocess.run([sys.executable, "-m", "grader", "grade", str(tmp_path / "nope"),
                           "--out", str(tmp_path / "out"), "--only", "conv_output_size"],
                          capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "does not exist" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "grader", "grade", str(SOLUTIONS),
                          "--out", str(tmp_path / "out"), "--only", "no_such_exercise"],
                         capture_output=True, text=True, cwd=REPO)
    assert bad.returncode == 2
    assert bad.stderr.strip().startswith("error:") and len(bad.stderr.strip().splitlines()) == 1
