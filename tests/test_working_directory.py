"""Nothing from the working directory (issue 22, point 2): graded from inside a submission, or
a class, whose ``pytest.py``, ``torch.py``, ``hypothesis.py`` or ``grader/`` would otherwise be
imported into the trusted grader before any sandbox exists. Each planted module writes a
marker file when imported; the grade must leave no marker and give full marks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.corpus import REPO, copy_solutions

pytestmark = pytest.mark.slow  # each test grades through the command line

DL_KIT = Path(sys.executable).with_name("dl-kit")  # the console script (pyproject.toml)
PLANTED = ("pytest", "torch", "hypothesis", "numpy", "dask", "argparse", "json", "grader")


def plant(folder: Path, markers: Path, names=PLANTED) -> None:
    """Modules that shadow what the grader imports, each leaving a marker when imported."""
    markers.mkdir(exist_ok=True)
    for name in names:
        code = (f"import pathlib\npathlib.Path({str(markers / name)!r}).write_text('imported')\n"
                "raise ImportError('planted')\n")
        if name == "grader":
            (folder / "grader").mkdir()
            (folder / "grader" / "__init__.py").write_text(code)
            (folder / "grader" / "__main__.py").write_text(code)
        else:
            (folder / f"{name}.py").write_text(code)


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def test_dl_kit_grades_from_inside_the_submission(tmp_path):
    if not DL_KIT.is_file():
        pytest.skip("dl-kit is not installed in this environment (pip install -e .)")
    sub = copy_solutions(tmp_path / "sub")
    plant(sub, tmp_path / "markers")
    before = tree(sub)
    done = subprocess.run([str(DL_KIT), "grade", ".", "--out", str(tmp_path / "out"),
                           "--only", "conv_output_size"], cwd=sub, env=env(),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not list((tmp_path / "markers").iterdir())
    assert "6 / 6" in done.stdout
    assert "working directory is inside the submission" in done.stderr
    assert tree(sub) == before  # a grade writes only where it is told (no .hypothesis/)


def test_python_m_grader_grades_from_inside_the_submission(tmp_path):
    """python -m grader finds the kit first only where the folder has no grader/ of its own
    (README: dl-kit, or python -P, then); everything else planted there stays unread, also
    after the grading process re-execs itself with a plain environment."""
    sub = copy_solutions(tmp_path / "sub")
    plant(sub, tmp_path / "markers", [n for n in PLANTED if n != "grader"])
    before = tree(sub)
    done = subprocess.run([sys.executable, "-m", "grader", "grade", ".", "--out",
                           str(tmp_path / "out"), "--only", "conv_output_size"], cwd=sub,
                          env={**env(), "KIT_SECRET_TOKEN": "forces the re-exec"},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not list((tmp_path / "markers").iterdir())
    assert "6 / 6" in done.stdout
    assert tree(sub) == before


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.ci  # a class through the batch on Dask: make test-ci
def test_a_batch_started_inside_the_class_imports_no_student(tmp_path):
    """The class folder is the working directory of the batch, its Dask workers and every
    grading process: students named pytest and torch (packages) are graded, not imported."""
    cls = tmp_path / "class"
    copy_solutions(cls / "alice")
    for name in ("pytest", "torch"):
        copy_solutions(cls / name)
        (cls / name / "__init__.py").write_text(
            f"import pathlib\npathlib.Path({str(tmp_path / 'markers' / name)!r})"
            ".write_text('imported')\n")
    # what Dask's and multiprocessing's own `python -c` children import first (red team)
    plant(cls, tmp_path / "markers", ("multiprocessing", "_multiprocessing", "_posixshmem",
                                      "subprocess", "weakref", "distributed"))
    done = subprocess.run([sys.executable, "-m", "grader", "batch", ".", "--out",
                           str(tmp_path / "out"), "--only", "conv_output_size", "--jobs", "1"],
                          cwd=cls, env=env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not list((tmp_path / "markers").iterdir())
    rows = (tmp_path / "out" / "gradebook.csv").read_text().splitlines()
    assert sorted(rows[1:]) == sorted(f"{s},6,6" + "," * 11 for s in ("alice", "pytest",
                                                                      "torch"))


def test_the_kit_checkout_itself_still_runs_in_place(tmp_path):
    """From the kit's own folder, python -m grader still finds its packages (solutions,
    exercises) after the working directory is dropped."""
    done = subprocess.run([sys.executable, "-m", "grader", "stubs", "--check"], cwd=REPO,
                          env=env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
