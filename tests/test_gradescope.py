"""The Gradescope bundle: built by the CLI, and its run_autograder run locally against a fake
/autograder tree (AUTOGRADER_ROOT), writing results.json in Gradescope's schema."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile

import pytest

from grader.gradescope import HANDLE_ENV, ONLY_ENV
from grader.versions import LOCK, case_versions
from tests.corpus import REPO, SOLUTIONS

pytestmark = pytest.mark.slow  # builds and runs the autograder bundle

TEST_KEYS = {"name", "score", "max_score", "status", "output", "visibility", "tags"}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("gs") / "autograder.zip"
    done = subprocess.run([sys.executable, "-m", "grader", "gradescope", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return out


def test_bundle_contents(bundle, tmp_path):
    with zipfile.ZipFile(bundle) as zf:
        infos = {i.filename: i for i in zf.infolist()}
        setup = zf.read("setup.sh").decode()
    for script in ("setup.sh", "run_autograder"):  # Gradescope runs them: executable
        assert stat.S_IMODE(infos[script].external_attr >> 16) == 0o755
    for needed in ("grader/grade.py", "grader/packs/day02/graders/test_conv.py",
                   "grader/packs/day02/probes/conv.py", "grader/sandbox/worker/supervisor.py",
                   "solutions/conv.py", "pyproject.toml", "README.md", LOCK):
        assert needed in infos, needed
    assert not any("__pycache__" in n or n.startswith(("tests/", "exercises/")) for n in infos)
    assert "bubblewrap" in setup and "libseccomp2" in setup
    # the grading lock, as the repository has it, pins everything setup.sh installs
    with zipfile.ZipFile(bundle) as zf:
        assert zf.read(LOCK) == (REPO / LOCK).read_bytes()
    assert f'LOCK="$SOURCE/{LOCK}"' in setup
    installs = [line for line in setup.splitlines() if " pip install " in line
                and "--upgrade pip" not in line]
    assert len(installs) == 2 and all('-c "$LOCK"' in line for line in installs)
    assert installs[0].endswith(" torch torchvision") and installs[1].endswith('"$SOURCE"')
    (tmp_path / "setup.sh").write_text(setup)
    assert subprocess.run(["bash", "-n", str(tmp_path / "setup.sh")]).returncode == 0
    again = subprocess.run([sys.executable, "-m", "grader", "gradescope", str(bundle)],
                           cwd=REPO, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "exists" in again.stderr  # no silent overwrite


def test_run_autograder_on_a_fake_tree(bundle, tmp_path):
    root = tmp_path / "autograder"
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(root / "source")
    (root / "submission").mkdir()
    for f in SOLUTIONS.glob("*.py"):
        shutil.copy(f, root / "submission" / f.name)
    (root / "submission" / "conv.py").write_text(  # a bug: ceil instead of floor
        (SOLUTIONS / "conv.py").read_text().replace("return room // stride + 1",
                                                     "return -(-room // stride) + 1"))
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "KIT_PYTHON": sys.executable,
           ONLY_ENV: "conv_output_size,receptive_field"}
    env.pop(HANDLE_ENV, None)  # the real path: the sandbox
    done = subprocess.run(["bash", str(root / "source" / "run_autograder")], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((root / "results" / "results.json").read_text())
    assert {"score", "max_score", "output", "execution_time", "tests"} <= set(results)
    assert results["extra_data"] == {"versions": case_versions("grading")}  # what drew them
    assert isinstance(results["score"], (int, float)) and results["max_score"] == 12
    for t in results["tests"]:
        assert set(t) == TEST_KEYS
        assert t["status"] in ("passed", "failed") and t["visibility"] == "visible"
        assert len(t["tags"]) == 1 and t["tags"][0] in ("conv_output_size", "receptive_field")
    by_ex = {}
    for t in results["tests"]:
        by_ex[t["tags"][0]] = by_ex.get(t["tags"][0], 0) + t["score"]
    assert by_ex["receptive_field"] == 6 and by_ex["conv_output_size"] < 6
    assert results["score"] == sum(t["score"] for t in results["tests"])
    failed = [t for t in results["tests"] if t["status"] == "failed"]
    assert failed and all("Tried:" in t["output"] for t in failed)
    assert "room // stride" not in done.stdout + json.dumps(results)  # no solution code
    assert sorted(p.name for p in (root / "results").iterdir()) == ["results.json"]
