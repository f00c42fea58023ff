"""The notebook course end to end with the real nbgrader 0.9.6 (the ``[nbgrader]`` extra).

One course directory from ``python -m grader nbgrader-course``, two assignments: ``day02``, the
whole notebook, released with ``nbgrader generate_assignment`` and checked for solution text and
hidden tests; ``quick``, the same notebook cut to two cheap exercises (``--only``), which four
students submit and nbgrader autogrades in a kernel on this venv's python: a correct one, a
buggy one, a stub, and one who deleted a test cell and faked another. Then feedback and the
CSV export. Jupyter's and IPython's config, data and runtime folders live in the temp dir.
"""

from __future__ import annotations

import csv
import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from grader.cli import main as grader_cli
from grader.notebook import write_notebook
from grader.packs import load_pack
from grader.release import find_leaks, solution_fingerprints
from tests.corpus import Edit
from tests.faults import breaking_grader
from tests.notebook_helpers import REPO, cell, load, nbgrader_meta, save, solved, text

# real nbgrader courses, kernels and sandboxed batches: make test-ci
pytestmark = [pytest.mark.slow, pytest.mark.ci]

pytest.importorskip("nbgrader", reason="needs the [nbgrader] extra (make test installs it)")
pytest.importorskip("jupytext", reason="needs the [nbgrader] extra (make test installs it)")

PACK = load_pack("day02")
QUICK = ("conv_output_size", "param_count")  # the two cheapest exercises to grade
BN_BUFFERS = Edit("param_count", "    return 2 * num_features", "    return 4 * num_features")
SIZE_NO_DILATION = Edit("conv", "span = dilation * (kernel_size - 1) + 1", "span = kernel_size")
STUDENTS = ("good", "buggy", "stub", "tamper")
HIDDEN_CALL = re.compile(r'(?<!self_)check\("')


def _jupyter_env(tmp: Path) -> dict[str, str]:
    """Every Jupyter/IPython folder inside ``tmp``; the kernel is this venv's python."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JUPYTER", "IPYTHON", "PYTEST_"))}
    folders = {"HOME": "home", "JUPYTER_CONFIG_DIR": "jupyter/config",
               "JUPYTER_DATA_DIR": "jupyter/data", "JUPYTER_RUNTIME_DIR": "jupyter/runtime",
               "IPYTHONDIR": "ipython", "MPLCONFIGDIR": "mpl"}
    for name, sub in folders.items():
        (tmp / sub).mkdir(parents=True, exist_ok=True)
        env[name] = str(tmp / sub)
    kernel = tmp / "jupyter/data/kernels/python3"
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "kit venv", "language": "python"}))
    # nbgrader runs `alembic` from PATH: this venv's bin comes first
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    return env


def _nbgrader(course: Path, env: dict[str, str], *args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env,
                          capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{done.stderr[-3000:]}"


def _students(release: dict) -> dict[str, dict]:
    tamper = solved(release, (SIZE_NO_DILATION,))
    tamper["cells"].remove(cell(tamper, "test_param_count"))  # deleted a test cell
    cell(tamper, "test_conv_output_size")["source"] = "6"  # claims full marks
    return {"good": solved(release), "buggy": solved(release, (BN_BUFFERS,)),
            "stub": release, "tamper": tamper}


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> SimpleNamespace:
    tmp = tmp_path_factory.mktemp("nbgrader")
    env = _jupyter_env(tmp)
    root = tmp / "course"
    assert grader_cli(["nbgrader-course", str(root)]) == 0
    write_notebook(PACK, root / "source" / "quick" / "quick.ipynb", only=QUICK)
    _nbgrader(root, env, "generate_assignment", "day02")
    _nbgrader(root, env, "generate_assignment", "quick")
    release = load(root / "release" / "quick" / "quick.ipynb")
    for student, nb in _students(release).items():
        save(nb, root / "submitted" / student / "quick" / "quick.ipynb")
    _nbgrader(root, env, "autograde", "quick")
    _nbgrader(root, env, "generate_feedback", "quick")
    _nbgrader(root, env, "export")
    with open(root / "grades.csv", newline="") as f:
        totals = {row["student_id"]: (float(row["score"]), float(row["max_score"]))
                  for row in csv.DictReader(f)}
    return SimpleNamespace(root=root, totals=totals)


def _cell_scores(root: Path, student: str) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", "kit-day02") as gb:
        return {f"test_{ex}": gb.find_grade(f"test_{ex}", "quick", "quick", student).score
                for ex in QUICK}


def test_student_notebook_has_no_solution_text_and_no_hidden_tests(course, tmp_path):
    release = load(course.root / "release" / "day02" / "day02.ipynb")
    code = [c for c in release["cells"] if c["cell_type"] == "code"]
    for no, c in enumerate(code):
        (tmp_path / f"cell{no:02d}.py").write_text(text(c))
    assert find_leaks(tmp_path, solution_fingerprints(PACK)) == []
    assert not any("HIDDEN TESTS" in text(c) or HIDDEN_CALL.search(text(c)) for c in code)
    solutions = [c for c in code if nbgrader_meta(c).get("solution")]
    assert len(solutions) == 11 and all("raise NotImplementedError()" in text(c)
                                        for c in solutions)
    tests = [c for c in code if nbgrader_meta(c).get("grade")]
    assert sum(nbgrader_meta(c)["points"] for c in tests) == PACK.max_score


def test_exported_totals(course):
    """grades.csv: full marks, points lost, zero, and no marks for faking a test cell."""
    assert course.totals["good"] == (14.0, 14.0)
    assert 6.0 < course.totals["buggy"][0] < 14.0
    assert course.totals["stub"] == (0.0, 14.0)
    assert course.totals["tamper"][0] < 14.0


def test_points_are_lost_on_the_buggy_cell_only(course):
    assert _cell_scores(course.root, "good") == {"test_conv_output_size": 6.0,
                                                 "test_param_count": 8.0}
    buggy = _cell_scores(course.root, "buggy")
    assert buggy["test_conv_output_size"] == 6.0
    assert 0 < buggy["test_param_count"] < 8.0  # partial credit: the BatchNorm properties


def test_deleted_and_edited_test_cells_are_restored_and_graded(course):
    graded = load(course.root / "autograded" / "tamper" / "quick" / "quick.ipynb")
    restored = cell(graded, "test_param_count")
    assert 'check("param_count")' in text(restored)
    assert text(cell(graded, "test_conv_output_size")) != "6"
    scores = _cell_scores(course.root, "tamper")
    assert scores["test_param_count"] == 8.0  # its code is correct
    assert scores["test_conv_output_size"] < 6.0  # its bug counts, whatever the cell said


@pytest.mark.parametrize("student", STUDENTS)
def test_graded_cells_print_on_stdout_only(course, student):
    """Nothing on stderr and no exception in a test cell: nbgrader would score it 0."""
    graded = load(course.root / "autograded" / student / "quick" / "quick.ipynb")
    for c in graded["cells"]:
        if nbgrader_meta(c).get("grade"):
            kinds = {(o["output_type"], o.get("name")) for o in c["outputs"]}
            assert kinds <= {("stream", "stdout"), ("execute_result", None)}, (c["id"], kinds)


def test_feedback_shows_results_but_not_hidden_tests(course):
    page = (course.root / "feedback" / "buggy" / "quick" / "quick.html").read_text()
    words = html.unescape(re.sub(r"<[^>]+>", "", page))
    assert "param_count: " in words and "(hidden tests)" in words  # the graders' report
    assert "HIDDEN TESTS" not in words
    assert not HIDDEN_CALL.search(words)


# -- python -m grader nbgrader-autograde: the same flow, student code only in the sandbox ----------
READS_SOLUTIONS = (f"exec(open({str(REPO / 'solutions' / 'conv.py')!r}).read())  "
                   "# the instructor's copy, readable in the instructor's kernel")
PATCHES_CHECK = ("import grader.notebook_api as api\n"
                 "api.check = lambda *args, **kwargs: 1000.0  # every test cell: full marks")
SANDBOXED = ("good", "buggy", "stub", "tamper", "reader", "patcher", "unlucky")


def _sandboxed_students(release: dict) -> dict[str, dict]:
    students = _students(release)
    reader = solved(release)
    cell(reader, "conv-conv_output_size")["source"] = READS_SOLUTIONS
    patcher = json.loads(json.dumps(release))
    patcher["cells"].insert(0, {"cell_type": "code", "id": "patch", "metadata": {},
                                "execution_count": None, "outputs": [],
                                "source": PATCHES_CHECK})
    cell(patcher, "test_param_count")["source"] = PATCHES_CHECK + "\ncheck('param_count')"
    return {**students, "reader": reader, "patcher": patcher, "unlucky": solved(release)}


def _kit(course: Path, env: dict[str, str], *args: str, status: int = 0) -> str:
    done = subprocess.run([sys.executable, "-m", "grader", "nbgrader-autograde", str(course),
                           *args], cwd=course, env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == status, f"nbgrader-autograde:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def sandboxed(tmp_path_factory) -> SimpleNamespace:
    from nbgrader.api import Gradebook

    tmp = tmp_path_factory.mktemp("sandboxed")
    env = _jupyter_env(tmp)
    root = tmp / "course"
    assert grader_cli(["nbgrader-course", str(root)]) == 0
    write_notebook(PACK, root / "source" / "quick" / "quick.ipynb", only=QUICK)
    _nbgrader(root, env, "generate_assignment", "quick")
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", "kit-day02") as gb:
        gb.update_or_create_assignment("quick", duedate="2026-01-01 12:00:00 UTC")
    release = load(root / "release" / "quick" / "quick.ipynb")
    for student, nb in _sandboxed_students(release).items():
        save(nb, root / "submitted" / student / "quick" / "quick.ipynb")
    (root / "submitted" / "buggy" / "quick" / "timestamp.txt").write_text(
        "2026-01-02 12:00:00.000000 UTC")  # a day late
    # the grader itself fails on "unlucky" (tests/faults, in the grading processes): nothing
    # of theirs may reach the gradebook, and the command must say so and exit 1
    broken = {**env, **breaking_grader(tmp / "faults", "unlucky")}
    first = _kit(root, broken, "quick", "--jobs", "2", status=1)
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", "kit-day02") as gb:
        unrecorded = [s.student.id for s in gb.find_assignment("quick").submissions]
        mark = gb.find_grade("test_param_count", "quick", "quick", "buggy")
        mark.manual_score = 7.5  # a TA's override, then a regrade of that student
        gb.find_comment("conv-conv_output_size", "quick", "quick", "buggy").manual_comment = \
            "see me"
        gb.db.commit()
    again = _kit(root, env, "quick", "--student", "buggy", "--student", "unlucky", "--force")
    _nbgrader(root, env, "generate_feedback", "quick")
    _nbgrader(root, env, "export")
    with open(root / "grades.csv", newline="") as f:
        totals = {row["student_id"]: (float(row["score"]), float(row["max_score"]))
                  for row in csv.DictReader(f)}
    return SimpleNamespace(root=root, env=env, totals=totals, first=first, again=again,
                           recorded_after_failure=unrecorded)


def test_sandboxed_autograde_scores(sandboxed):
    totals = sandboxed.totals
    assert totals["good"] == (14.0, 14.0)
    assert totals["stub"] == (0.0, 14.0)
    assert 6.0 <= totals["buggy"][0] < 14.0
    assert totals["tamper"][0] < 14.0
    # the solutions are out of reach in the sandbox, and check() is never called there
    assert _cell_scores(sandboxed.root, "reader")["test_conv_output_size"] == 0.0
    assert totals["patcher"] == (0.0, 14.0)
    assert "good" in sandboxed.first and "14 / 14" in sandboxed.first


def test_a_grader_failure_records_nothing_and_says_so(sandboxed):
    assert "grader error, nothing recorded for unlucky (run again)" in sandboxed.first
    assert "simulated grader failure" in sandboxed.first
    assert "unlucky" not in sandboxed.recorded_after_failure
    assert sandboxed.totals["unlucky"] == (14.0, 14.0)  # graded on the next run


def test_sandboxed_autograde_matches_python_m_grader_grade(sandboxed, tmp_path):
    from grader.grade import grade

    for student in SANDBOXED:
        if student == "buggy":  # its TA override (7.5) counts in the export instead
            continue
        notebook = sandboxed.root / "submitted" / student / "quick" / "quick.ipynb"
        report = grade(notebook, tmp_path / student, only=QUICK, quiet=True)
        assert sandboxed.totals[student] == (report.score, report.max_score), student


def test_sandboxed_autograde_restores_deleted_test_cells(sandboxed):
    graded = load(sandboxed.root / "autograded" / "tamper" / "quick" / "quick.ipynb")
    restored = cell(graded, "test_param_count")
    printed = "".join("".join(o.get("text", "")) for o in restored["outputs"])
    assert "param_count: 8 / 8 points (graded in the sandbox)" in printed
    assert _cell_scores(sandboxed.root, "tamper")["test_param_count"] == 8.0
    assert _cell_scores(sandboxed.root, "tamper")["test_conv_output_size"] < 6.0


def test_sandboxed_autograde_keeps_manual_grades_and_timestamps(sandboxed):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{sandboxed.root / 'gradebook.db'}", "kit-day02") as gb:
        mark = gb.find_grade("test_param_count", "quick", "quick", "buggy")
        assert mark.manual_score == 7.5 and mark.score == 7.5 and 0 < mark.auto_score < 8
        comment = gb.find_comment("conv-conv_output_size", "quick", "quick", "buggy")
        assert comment.manual_comment == "see me"
        late = gb.find_submission("quick", "buggy")
        assert str(late.timestamp).startswith("2026-01-02 12:00:00")
        assert late.total_seconds_late == 24 * 3600
    assert sandboxed.totals["buggy"][0] == 6.0 + 7.5


def test_sandboxed_autograde_feedback_and_no_kernel_output(sandboxed):
    page = (sandboxed.root / "feedback" / "buggy" / "quick" / "quick.html").read_text()
    words = html.unescape(re.sub(r"<[^>]+>", "", page))
    assert "(graded in the sandbox)" in words and "HIDDEN TESTS" not in words
    for student in SANDBOXED:
        graded = load(sandboxed.root / "autograded" / student / "quick" / "quick.ipynb")
        for c in graded["cells"]:
            if nbgrader_meta(c).get("grade") and c["cell_type"] == "code":
                kinds = [(o["output_type"], o.get("name")) for o in c["outputs"]]
                assert kinds == [("stream", "stdout"), ("execute_result", None)], kinds
            elif c["cell_type"] == "code":
                assert not c.get("outputs"), (student, c.get("id"))  # no kernel ran it
