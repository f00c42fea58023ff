"""A non-editable install works: the wheel that `pip install .` builds (what Gradescope's
setup.sh runs) holds every file the installed grader reads, so `python -m grader release` and
`python -m grader grade` run from the installed copy, outside the source tree.

The wheel is built offline (no build isolation: this venv's setuptools) from a copy of the
source tree, so no stale build/ or *.egg-info of the checkout can put a file in it. The fresh
venv gets the wheel first (--no-deps), then a .pth naming this venv's site-packages for torch,
pytest and the rest: that directory is appended after the wheel's, and its own .pth files (the
editable finder pointing at the checkout) are never run, so `grader` is the installed copy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("grader", "solutions", "exercises", "data_utils")  # pyproject's packages.find
# Not part of a source tree a build reads (.gitignore, plus the checkout's own build output).
SKIP_TOP = {".git", ".venv", ".venv-lint", "build", "dist", "data", "grading-report", "bench",
            "notebooks"}
SKIP_ANY = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".pytest_cache",
                                  ".hypothesis", ".ruff_cache", ".mypy_cache")


def _ignore(folder: str, names: list[str]) -> set[str]:
    skipped = set(SKIP_ANY(folder, names))
    if Path(folder) == REPO:
        skipped |= SKIP_TOP & set(names)
    return skipped


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 300):
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


def _package_files(root: Path) -> set[str]:
    """Every file under the packages' folders that is not Python: all of it must ship."""
    return {p.relative_to(root).as_posix() for package in PACKAGES
            for p in (root / package).rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts}


@pytest.mark.slow
@pytest.mark.ci  # the wheel build: make test-ci
def test_wheel_install_releases_and_grades(tmp_path):
    # the environment of a plain shell: nothing from this test run or its venv leaks in
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")}
    work = tmp_path / "work"  # cwd for the installed commands: outside the source tree
    work.mkdir()

    # 1. the wheel, offline, from a clean copy of the source tree
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=_ignore)
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "--no-index", "-q", "-w", str(wheels), str(source)], work, env)
    (wheel,) = wheels.glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        shipped = set(zf.namelist())
    data = _package_files(source)
    assert {"grader/grading.ini", "grader/templates/pyproject.toml.in",
            "grader/packs/day02/README.md.in"} <= data
    assert data - shipped == set(), "files the installed package reads are not in the wheel"

    # 2. a fresh venv: the wheel, then this venv's site-packages (torch, pytest) behind it
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], work, env)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
          "--no-index", "-q", str(wheel)], work, env)
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                      "['purelib'])"], work, env).stdout.strip())
    (site / "kit-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    found = _run([str(python), "-c", "import data_utils, exercises, grader, solutions, torch; "
                  "print(grader.__file__, solutions.__file__, exercises.__file__, "
                  "data_utils.__file__)"], work, env).stdout.split()
    for path in found:
        assert Path(path).resolve().is_relative_to(site.resolve()), path
        assert not Path(path).resolve().is_relative_to(REPO), path

    # 3. release from the installed copy
    out = work / "release"
    _run([str(python), "-m", "grader", "release", str(out)], work, env)
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert "conv_output_size" in readme and "${" not in readme
    assert 'name = "day02-exercises"' in (out / "pyproject.toml").read_text(encoding="utf-8")
    stub = (out / "exercises" / "conv.py").read_text(encoding="utf-8")
    assert "NotImplementedError" in stub and "BEGIN SOLUTION" not in stub
    assert (out / "exercises" / "tests" / "test_conv.py").is_file()
    assert (out / "data_utils" / "__init__.py").is_file()
    assert (out / "grader" / "plugin.py").is_file() and not (out / "solutions").exists()

    # 4. grade the installed reference (a copy: a submission folder of its own)
    submission = work / "submission"
    shutil.copytree(site / "solutions", submission, ignore=SKIP_ANY)
    report = work / "report"
    _run([str(python), "-m", "grader", "grade", str(submission), "--out", str(report),
          "--only", "conv_output_size", "--handle", "in-process"], work, env)
    results = json.loads((report / "results.json").read_text())
    assert (results["score"], results["max_score"]) == (6.0, 6.0)
