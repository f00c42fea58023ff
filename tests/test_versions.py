"""The same submission gets the same cases on every machine: the grading lock pins what draws
them (and matches this environment), every report names the versions that drew its cases, and
the batch regrades instead of reusing a report when they change."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from importlib.metadata import version

import pytest

from grader import versions
from grader.batch.collect import Collection, Student
from grader.batch.gradebook import write_class_reports
from grader.batch.run import _mismatch
from grader.batch.store import Meta, forget_versions, grader_version, is_done, save_graded
from grader.packs import load_pack
from grader.results import GradeReport, PropertyResult
from tests.corpus import REPO

LOCKED = {"hypothesis", "numpy", "pytest", "torch", "torchvision"}
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;#]+)$")


def lock_pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / versions.LOCK).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = PIN.match(line)
        assert match, f"not an exact pin: {line!r}"
        pins[match.group(1).lower()] = match.group(2)
    return pins


def test_lock_pins_exactly_the_installed_versions():
    pins = lock_pins()
    assert set(pins) == LOCKED
    for dist, pinned in pins.items():  # pip's ==X also accepts X+local (torch's +cpu)
        assert version(dist).split("+")[0] == pinned, f"{dist}: installed {version(dist)}"
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"  # local wheels


@pytest.mark.skipif(shutil.which("make") is None, reason="no make here")
def test_makefile_installs_with_the_lock(tmp_path):
    venv = tmp_path / "venv"

    def dry_run(*args: str) -> list[str]:
        done = subprocess.run(["make", "-n", "-B", f"VENV={venv}", *args, f"{venv}/.installed"],
                              cwd=REPO, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()

    pins = lock_pins()
    commands = dry_run()
    # TORCH_SPEC's default is the lock's pair
    assert any(line.endswith(f"pip install --quiet torch=={pins['torch']} "
                             f"torchvision=={pins['torchvision']}") for line in commands)
    dev = [line for line in commands if "-e '.[dev]'" in line]
    assert len(dev) == 1 and f"-c {venv}/grading-lock-rest.txt" in dev[0]
    # the kit's dependencies get the rest of the lock: run the line that writes it
    grep = [line for line in commands if line.startswith("grep ")]
    assert len(grep) == 1
    venv.mkdir()
    subprocess.run(["bash", "-c", grep[0]], cwd=REPO, check=True, timeout=30)
    rest = (venv / "grading-lock-rest.txt").read_text()
    assert {f"{d}=={pins[d]}" for d in ("hypothesis", "numpy", "pytest")} <= set(rest.split())
    assert not [line for line in rest.splitlines() if line.startswith("torch")]
    # another host's torch: TORCH_SPEC decides it, and the lock still pins the rest
    other = dry_run("TORCH_SPEC=torch torchvision")
    assert any(line.endswith("pip install --quiet torch torchvision") for line in other)
    assert any("-c " in line and "-e '.[dev]'" in line for line in other)


def test_case_versions_name_what_draws_the_cases():
    found = versions.case_versions()
    assert found == {"profile": "grading",
                     "python": f"{sys.version_info.major}.{sys.version_info.minor}",
                     "hypothesis": version("hypothesis"), "torch": version("torch")}
    assert versions.case_versions("selfcheck")["profile"] == "selfcheck"
    assert versions.describe(found).startswith(f"hypothesis {version('hypothesis')}, torch ")


def test_report_round_trip_keeps_the_versions(tmp_path):
    report = GradeReport([PropertyResult("conv2d", "conv2d: values", 3.0, 3.0, "passed")],
                         extra_data={"versions": versions.case_versions()})
    data = json.loads(report.write_json(tmp_path / "results.json").read_text())
    assert data["extra_data"] == {"versions": versions.case_versions()}
    again = GradeReport.from_gradescope_dict(data)
    assert again.to_gradescope_dict() == report.to_gradescope_dict()
    assert "extra_data" not in GradeReport().to_gradescope_dict()  # nothing to say: no key


@pytest.fixture
def other_hypothesis(monkeypatch):
    """This machine, as if it had another hypothesis installed."""
    real = versions.installed_version

    def patched() -> None:
        monkeypatch.setattr(versions, "installed_version",
                            lambda dist: "6.90.0" if dist == "hypothesis" else real(dist))
        forget_versions()

    forget_versions()
    yield patched
    monkeypatch.undo()
    forget_versions()


def test_batch_key_changes_with_the_hypothesis_version(other_hypothesis, tmp_path):
    settings = {"only": [], "handle": "sandbox", "probe_timeout": 20.0, "pack": "day02"}
    key = grader_version()
    here = versions.case_versions()
    report = GradeReport([PropertyResult("conv2d", "conv2d: values", 3.0, 3.0, "passed")],
                         extra_data={"versions": here}).to_gradescope_dict()
    save_graded(tmp_path, Meta("ann", "h", key, settings, "graded", versions=here), report,
                "feedback")
    assert is_done(tmp_path, "h", key, settings)  # same machine: the report is reused
    other_hypothesis()
    assert versions.case_versions()["hypothesis"] == "6.90.0"
    assert grader_version() != key  # the key itself moves ...
    assert not is_done(tmp_path, "h", grader_version(), settings)  # ... so it regrades
    assert not is_done(tmp_path, "h", key, settings)  # even against the old code hash
    assert json.loads((tmp_path / ".batch.json").read_text())["versions"] == here


def test_worker_with_other_versions_is_refused_with_a_reason():
    here = versions.case_versions()
    worker = {**here, "hypothesis": "6.90.0"}
    meta = Meta("ann", "h", "0123", {}, "graded", versions=worker)
    why = _mismatch(meta, "abcd", here)
    assert f"hypothesis 6.90.0 (here {here['hypothesis']})" in why
    assert versions.LOCK in why
    same = _mismatch(Meta("ann", "h", "0123", {}, "graded", versions=here), "abcd", here)
    assert "grader version 0123, this batch abcd" in same


def test_summary_names_the_versions_and_warns_when_they_differ(tmp_path):
    pack = load_pack("day02")
    here = versions.case_versions()
    older = {**here, "hypothesis": "6.90.0"}
    students = [Student(sid, f"{sid}/") for sid in ("ann", "ben", "cat")]
    for student, drawn in zip(students, (here, here, here), strict=True):
        report = GradeReport([PropertyResult("conv2d", "conv2d: values", 3.0, 3.0, "passed")],
                             extra_data={"versions": drawn}).to_gradescope_dict()
        save_graded(tmp_path / student.id, Meta(student.id, "h", grader_version(), {},
                                                "graded", versions=drawn), report, "fb")
    write_class_reports(tmp_path, pack, Collection(students, []))
    summary = (tmp_path / "summary.md").read_text()
    assert f"Cases drawn with {versions.describe(here)}." in summary
    assert "different versions" not in summary
    report = json.loads((tmp_path / "cat" / "results.json").read_text())
    report["extra_data"]["versions"] = older
    save_graded(tmp_path / "cat", Meta("cat", "h", grader_version(), {}, "graded",
                                       versions=older), report, "fb")
    write_class_reports(tmp_path, pack, Collection(students, []))
    summary = (tmp_path / "summary.md").read_text()
    assert "**Graded under different versions**" in summary
    assert f"- 2 with {versions.describe(here)}: `ann`, `ben`" in summary
    assert f"- 1 with {versions.describe(older)}: `cat`" in summary
