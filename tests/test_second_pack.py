"""A second pack that lives outside the kit: stubs, grade, release and the self-check.

tests/second_pack/ (a Day-3 pack with one exercise, one probe module and one grader module, its
reference and its public tests) is copied to a temporary folder and found through
``KIT_PACK_PATH``; nothing is written to grader/ (checked). This is the proof that a new day
is a folder beside the kit, not an edit of its core.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grader.sandbox.tiers import detect

REPO = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).resolve().parent / "second_pack"

pytestmark = pytest.mark.slow


def _tree_digest(root: Path) -> str:
    """Names and contents of every file under ``root`` but caches."""
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def _env(course: Path, packs: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "KIT_PACK"))}
    env["PYTHONPATH"] = os.pathsep.join([str(course), str(REPO)])
    if packs is not None:
        env["KIT_PACK_PATH"] = str(packs)
    return env


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """The pack and its course folder in a temporary directory; grader/'s digest before."""
    root = tmp_path_factory.mktemp("second-pack")
    shutil.copytree(FIXTURE, root, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    env = _env(root / "course", root / "packs")
    before = _tree_digest(REPO / "grader")
    stubs = _run([sys.executable, "-m", "grader", "--pack", "day03", "stubs"], env, root)
    assert stubs.returncode == 0, stubs.stderr
    return root, env, before


def _grade(course, submission: Path, name: str) -> dict:
    root, env, _ = course
    out = root / "reports" / name
    done = _run([sys.executable, "-m", "grader", "--pack", "day03", "grade", str(submission),
                 "--out", str(out)], env, root)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads((out / "results.json").read_text())


SECRETS = """
import sys
from grader.packs import load_pack
from grader.batch.store import grader_version
from grader.sandbox import paths, zygote

before = grader_version()  # day02 only: nothing of day03 is loaded yet
load_pack("day03")
print("PACKAGES", *paths.secret_packages())
import day03_solutions.rnn  # noqa: F401  (the reference, as the grader's reference handle loads it)
print("SECRET", *sorted(zygote.secret_modules()))
print("VERSION", before != grader_version())
"""


def test_the_pack_s_reference_is_a_secret_and_counts_in_the_version(course):
    """A loaded pack's reference package is hidden from the sandbox and keeps the zygote from
    forking; its files change the grader version (the cache and the batch key)."""
    root, env, _ = course
    done = _run([sys.executable, "-c", SECRETS], env, root)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = {line.split(" ", 1)[0]: line.split()[1:] for line in done.stdout.splitlines()}
    assert "day03_solutions" in lines["PACKAGES"] and "solutions" in lines["PACKAGES"]
    assert {"day03_solutions", "day03_solutions.rnn"} <= set(lines["SECRET"])
    assert lines["VERSION"] == ["True"]


def test_stubs_are_written_beside_the_pack_solutions(course):
    root, _, _ = course
    stub = (root / "course" / "day03_exercises" / "rnn.py").read_text()
    assert 'raise NotImplementedError("exercise rnn_cell: write RNNCell.forward' in stub
    assert "tanh(pre)" not in stub and "BEGIN SOLUTION" not in stub
    init = (root / "course" / "day03_exercises" / "__init__.py").read_text()
    assert "Day 3" in init and "pytest day03_exercises" in init


def test_the_reference_scores_full_marks_in_the_sandbox(course):
    root, _, _ = course
    results = _grade(course, root / "course" / "day03_solutions", "reference")
    assert results["score"] == 10 and {t["tags"][0] for t in results["tests"]} == {"rnn_cell"}
    # the sandbox's workers ran the pack's probes from their own copy of the pack
    assert detect().describe() in results["output"]


def test_stubs_score_nothing_and_say_so(course):
    root, _, _ = course
    results = _grade(course, root / "course" / "day03_exercises", "stubs")
    assert results["score"] == 0
    assert all("not implemented" in t["output"] for t in results["tests"])


@pytest.fixture(scope="module")
def buggy(course) -> Path:
    """The reference with weight_hh not transposed (square: every shape still fits)."""
    root, _, _ = course
    buggy = root / "buggy"
    shutil.copytree(root / "course" / "day03_solutions", buggy)
    source = (buggy / "rnn.py").read_text()
    (buggy / "rnn.py").write_text(source.replace("h @ self.weight_hh.T", "h @ self.weight_hh"))
    return buggy


def test_a_realistic_bug_loses_only_the_outputs(course, buggy):
    results = _grade(course, buggy, "buggy")
    scores = {t["name"].split(": ", 1)[-1]: t["score"] for t in results["tests"]}
    assert results["score"] == 4, scores  # the parameters' 4 points, not the outputs' 6
    failed = next(t for t in results["tests"] if t["score"] == 0)
    assert "h after step 1" in failed["output"] and "inside the tanh" in failed["output"]


@pytest.fixture(scope="module")
def release(course):
    root, env, _ = course
    out = root / "release"
    done = _run([sys.executable, "-m", "grader", "--pack", "day03", "release", str(out)], env,
                root)
    assert done.returncode == 0, done.stderr
    return out


def test_the_release_ships_the_pack_and_nothing_hidden(release):
    files = {p.relative_to(release).as_posix() for p in release.rglob("*") if p.is_file()}
    assert {"day03_exercises/rnn.py", "day03_exercises/tests/test_rnn.py",
            "grader/packs/day03/__init__.py", "grader/packs/day03/probes/__init__.py",
            "README.md", "pyproject.toml"} <= files
    assert not [f for f in files if "graders" in f or "solutions" in f or "day02" in f]
    assert "pytest day03_exercises -m rnn_cell" in (release / "README.md").read_text()
    assert '\nkit_pack = "day03"' in (release / "pyproject.toml").read_text()


def _self_check(release: Path) -> subprocess.CompletedProcess:
    """A student's ``pytest`` in the release: its own grader, no KIT_PACK_PATH."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "PYTHON", "KIT_PACK"))}
    env.update(PYTHONPATH=str(release), PYTHONNOUSERSITE="1", PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    return _run([sys.executable, "-m", "pytest", "-p", "grader.plugin", "-p",
                 "no:cacheprovider"], env, release)


def test_the_self_check_scores_the_release_against_its_pack(release):
    stubs = _self_check(release)
    assert stubs.returncode == 1, stubs.stdout[-3000:]
    assert re.search(r"rnn_cell +0 / 10 +0/2", stubs.stdout), stubs.stdout[-3000:]
    assert "not implemented yet: exercise rnn_cell" in stubs.stdout
    solved = release.parent / "solved"
    shutil.copytree(release, solved)
    shutil.copy(FIXTURE / "course" / "day03_solutions" / "rnn.py",
                solved / "day03_exercises" / "rnn.py")
    done = _self_check(solved)
    assert done.returncode == 0, done.stdout[-3000:]
    assert re.search(r"rnn_cell +10 / 10 +2/2", done.stdout), done.stdout[-3000:]


def test_the_gradescope_bundle_carries_the_pack(course, buggy):
    """The bundle holds the pack and its reference, and grades Day 3 without KIT_PACK_PATH."""
    root, env, _ = course
    bundle = root / "autograder.zip"
    done = _run([sys.executable, "-m", "grader", "--pack", "day03", "gradescope", str(bundle)],
                env, root)
    assert done.returncode == 0, done.stderr
    fake = root / "autograder"
    with zipfile.ZipFile(bundle) as zf:
        names = set(zf.namelist())
        zf.extractall(fake / "source")
    assert {"grader/packs/day03/graders/test_rnn.py", "grader/packs/day03/probes/rnn.py",
            "day03_solutions/rnn.py"} <= names
    assert "--pack day03" in (fake / "source" / "run_autograder").read_text()
    assert "--pack day03 precompute" in (fake / "source" / "setup.sh").read_text()
    shutil.copytree(buggy, fake / "submission")
    plain = {k: v for k, v in _env(root, None).items() if k != "PYTHONPATH"}
    plain.update(AUTOGRADER_ROOT=str(fake), KIT_PYTHON=sys.executable)
    done = _run(["bash", str(fake / "source" / "run_autograder")], plain, root)
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((fake / "results" / "results.json").read_text())
    assert (results["score"], results["max_score"]) == (4, 10)


NOTEBOOK_RUN = """
import json, sys
from grader.notebook_api import check

nb = json.load(open(sys.argv[1]))
ns = {}
for cell in nb["cells"]:
    if cell["cell_type"] == "code":
        source = "".join(cell["source"])
        if sys.argv[2] == "buggy":
            source = source.replace("h @ self.weight_hh.T", "h @ self.weight_hh")
        exec(source, ns)  # as a kernel runs the cells, the test cell's self_check too
print("SCORE", check("rnn_cell", pack="day03", namespace=ns))
"""


def test_the_notebook_is_built_from_the_pack_and_graded_by_it(course):
    """``notebook`` writes notebooks/day03.ipynb beside the reference; its test cell's
    ``check("rnn_cell", pack="day03")`` grades the notebook's definitions with Day 3's graders."""
    root, env, _ = course
    done = _run([sys.executable, "-m", "grader", "--pack", "day03", "notebook"], env, root)
    assert done.returncode == 0, done.stderr
    notebook = root / "course" / "notebooks" / "day03.ipynb"
    cells = json.loads(notebook.read_text())["cells"]
    test = next(c for c in cells if c["metadata"].get("nbgrader", {}).get("grade_id")
                == "test_rnn_cell")
    assert 'check("rnn_cell", pack="day03")' in "".join(test["source"])
    for variant, score in (("solved", "10"), ("buggy", "4")):
        ran = _run([sys.executable, "-c", NOTEBOOK_RUN, str(notebook), variant], env, root)
        assert ran.returncode == 0, ran.stderr[-2000:]
        assert f"SCORE {score}" in ran.stdout, ran.stdout[-2000:]
        assert "rnn_cell: " in ran.stdout  # the self-check's and the check's summaries


def test_nothing_was_written_to_the_kit(course, release):
    _, _, before = course
    assert _tree_digest(REPO / "grader") == before
