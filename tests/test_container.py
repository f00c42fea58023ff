"""The kit where courses grade: inside a Docker-like container (tests/dockerlike.py: root
without namespaces, Docker's capabilities and seccomp rules) and in Gradescope's default box
(768 MB, half a CPU). The attack and bad-input suites run again in there, in the tier without
namespaces; the Gradescope bundle ends every grade with a complete results.json."""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from grader.packs import load_pack
from grader.sandbox.memory import MIN_CONTAINER_BYTES
from tests import dockerlike
from tests.corpus import REPO, SOLUTIONS

# CI's second tier (make test-ci): the container tier and Gradescope's boxes
pytestmark = [pytest.mark.slow, pytest.mark.ci]
PY = sys.executable
MIN_BOX = f"{MIN_CONTAINER_BYTES >> 20}M"  # the smallest container a full grade fits in: 768M
ONLY = "conv_output_size,receptive_field,basic_block"


@pytest.fixture(autouse=True)
def _harness():
    dockerlike.require_dockerlike()


def in_container(argv: list[str], timeout: float = 900, **options) -> dockerlike.Result:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "KIT_"))}
    return dockerlike.run(argv, env={**env, **options.pop("env", {})}, cwd=REPO,
                          timeout=timeout, **options)


SUITE_TIERS = ("container", "forked")
SUITES_TEST = "test_attack_and_bad_input_suites_hold_in_a_container"


@pytest.fixture(scope="module", autouse=True)
def suites(request: pytest.FixtureRequest) -> dict[str, concurrent.futures.Future]:
    """Both tiers' runs of the attack and bad-input suites, started with this module's first
    test, each in a container of its own. Each spends most of its time starting interpreters
    and waiting on its sandbox, so they run side by side, and beside the half-a-CPU box tests
    below; the tests at the end of this module collect their results (the module takes about
    7 minutes instead of 13 on two cores). Containers do not see each other's processes
    (test_attacks.sandbox_processes looks in its own cgroup)."""
    selected = {item.callspec.params["tier"] for item in request.session.items
                if getattr(item, "originalname", "") == SUITES_TEST}
    tiers = [tier for tier in SUITE_TIERS if tier in selected]
    if not tiers or dockerlike.available():  # not asked for, or no harness (the tests skip)
        return {}
    pool = concurrent.futures.ThreadPoolExecutor(len(tiers))
    runs = {tier: pool.submit(
        in_container, [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
                       "tests/test_attacks.py", "tests/test_bad_input.py"], timeout=1500,
        env={"KIT_TEST_TIERS": tier, "KIT_REQUIRE_TIERS": tier}) for tier in tiers}
    pool.shutdown(wait=False)
    return runs


@pytest.mark.parametrize("answer,why", [("eperm", "EPERM"), ("enosys", "no Landlock")])
def test_old_profiles_and_kernels_degrade_to_the_next_tier(answer, why, tmp_path):
    """Landlock's calls refused: the worker still drops its uid and loads seccomp, the secrets
    stay unreadable by mode bits, and the report says exactly what was not in force."""
    done = in_container([PY, "-m", "grader", "grade", "solutions", "--out", str(tmp_path),
                         "--only", "conv_output_size"], landlock=answer, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["score"] == results["max_score"]
    assert "Student code ran: unprivileged uid + seccomp + rlimits" in results["output"]
    assert "Not in force: Landlock" in results["output"] and why in results["output"]


# -- Gradescope's default box --------------------------------------------------------------
@pytest.fixture(scope="module")
def autograder(tmp_path_factory) -> Path:
    """The bundle, unpacked as Gradescope does into ROOT/source."""
    root = tmp_path_factory.mktemp("gradescope") / "autograder"
    bundle = root.parent / "autograder.zip"
    subprocess.run([PY, "-m", "grader", "gradescope", str(bundle)], cwd=REPO, check=True,
                   capture_output=True, timeout=120)
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(root / "source")
    os.chmod(root.parent, 0o755)  # pytest's own tmp folders are 0700
    return root


MEMORY_BOMB = textwrap.dedent("""
    def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
        hog = []
        while True:  # under the 6 GB address-space rlimit: only the container's limit stops it
            hog.append(bytearray(64 << 20))
            for i in range(0, len(hog[-1]), 4096):
                hog[-1][i] = 1
    """)
FORK_BOMB = textwrap.dedent("""
    def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
        import os
        import time
        for _ in range(64):  # every process forks on: up to the process limit
            try:
                os.fork()
            except OSError:
                pass
        time.sleep(10 ** 6)
    """)


def grade_in_box(autograder: Path, case: str, memory: str,
                 only: str = ONLY) -> tuple[dict, dict[str, float]]:
    """run_autograder on the reference (+ a bomb in conv.py) in a box of ``memory``, half a
    CPU: it must exit 0 with a complete results.json, whatever happened inside."""
    submission = autograder / "submission"
    shutil.rmtree(submission, ignore_errors=True)
    shutil.rmtree(autograder / "results", ignore_errors=True)
    submission.mkdir()
    for src in SOLUTIONS.glob("*.py"):
        shutil.copy(src, submission / src.name)
    if case != "correct":
        with open(submission / "conv.py", "a") as f:
            f.write(MEMORY_BOMB if case == "memory_bomb" else FORK_BOMB)
    env = {"AUTOGRADER_ROOT": str(autograder), "KIT_PYTHON": PY, "KIT_AUTOGRADER_ONLY": only}
    done = in_container(["bash", str(autograder / "source" / "run_autograder")], env=env,
                        timeout=900, memory=memory, cpus=0.5)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    results = json.loads((autograder / "results" / "results.json").read_text())
    ids = set(only.split(",")) if only else {ex.id for ex in load_pack("day02").exercises}
    assert {t["tags"][0] for t in results["tests"]} == ids  # complete
    assert "Student code ran: unprivileged uid + Landlock + seccomp" in results["output"]
    by_ex: dict[str, float] = {}
    for t in results["tests"]:
        by_ex[t["tags"][0]] = by_ex.get(t["tags"][0], 0) + t["score"]
    return results, by_ex


def precompute(autograder: Path) -> None:
    """What setup.sh does when Gradescope builds the image: fill the reference cache."""
    env = {"KIT_REFERENCE_CACHE": str(autograder / "reference-cache")}
    subprocess.run([PY, "-m", "grader", "precompute"], cwd=autograder / "source", check=True,
                   capture_output=True, timeout=600, env={**os.environ, **env})


def test_smallest_box_gives_a_correct_full_grade_full_marks(autograder):
    """The whole grade, every exercise, in the smallest box the README names and half a CPU,
    with the reference results precomputed as setup.sh does: full marks."""
    precompute(autograder)
    results, _ = grade_in_box(autograder, "correct", MIN_BOX, only="")
    assert results["score"] == results["max_score"], results["output"]
    assert "Memory: this container" not in results["output"]


BELOW_MIN = "640M"  # under what a grade needs: the report must still be complete


def test_a_box_below_the_minimum_ends_with_a_complete_report(autograder):
    """Below the smallest box a grade needs, the report is complete whatever happens, says in
    one line that the container is too small, and an exercise killed for memory says so."""
    precompute(autograder)
    results, by_ex = grade_in_box(autograder, "correct", BELOW_MIN, only="")
    assert "Memory: this container has 640 MiB" in results["output"]
    lost = {ex for ex in by_ex if by_ex[ex] < load_pack("day02").exercise(ex).points}
    for ex in lost:  # not blamed on the student
        feedback = " ".join(t["output"] for t in results["tests"] if ex in t["tags"])
        assert "memory" in feedback, (ex, feedback)


@pytest.mark.parametrize("case", ["correct", "memory_bomb", "fork_bomb"])
def test_smallest_box_grades_fairly(case, autograder):
    """In the smallest container the README names, a correct grade is full marks, and a bomb
    costs only its own exercise, with feedback that says what happened."""
    results, by_ex = grade_in_box(autograder, case, MIN_BOX)
    assert "Memory: this container" not in results["output"]
    assert by_ex["receptive_field"] == 6 and by_ex["basic_block"] == 14
    if case == "correct":
        assert results["score"] == results["max_score"]
        return
    assert by_ex["conv_output_size"] == 0
    feedback = " ".join(t["output"] for t in results["tests"]
                        if t["tags"][0] == "conv_output_size").lower()
    words = ("out of memory",) if case == "memory_bomb" else ("did not finish", "crash")
    assert any(w in feedback for w in words), feedback


# -- the suites again, in the container (started by the fixture above) ----------------------
@pytest.mark.parametrize("tier", SUITE_TIERS)
def test_attack_and_bad_input_suites_hold_in_a_container(tier, suites):
    """Every attack: no points, no trace (processes, files, secrets), tier named: all again,
    in the container tier, once graded from this test process (the supervisor a fresh
    interpreter) and once through the command line (the supervisor a fork of the grader, as
    on Gradescope). KIT_REQUIRE_TIERS: the tier must run there, not be skipped."""
    done = suites[tier].result()
    tail = (done.stdout + done.stderr)[-3000:]
    assert done.returncode == 0, tail
    assert " passed" in tail and "skipped" not in tail and "failed" not in tail, tail
