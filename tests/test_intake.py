"""What the trusted grader does with a submission before the sandbox: links are never
followed, and an archive or notebook it cannot read is a complete report at 0 with one line
naming the problem, never a traceback (issue 22, points 1 and 5).

The unit tests open submissions without grading them; the ones marked slow grade (the
sandbox's tier on this machine, two cheap exercises) or run a small batch.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import zipfile
from pathlib import Path

import pytest

from grader.batch.collect import collect
from grader.grade import grade
from grader.notebook import notebook_to_package
from grader.packs import load_pack
from grader.static_check import scan_submission
from grader.submission import (
    MAX_NAME_BYTES,
    SubmissionError,
    find_package_dir,
    open_submission,
)
from tests.corpus import REPO, SOLUTIONS, copy_solutions

PACK = load_pack("day02")
MODULES = PACK.modules
ONLY = ("conv_output_size", "receptive_field")
NOTEBOOK = REPO / "notebooks" / "day02.ipynb"


# -- links ---------------------------------------------------------------------------------------
def link_to_solutions(root: Path) -> Path:
    """A folder whose only content is ``exercises -> <kit>/solutions`` (12/12 before)."""
    root.mkdir()
    os.symlink(SOLUTIONS, root / "exercises")
    return root


def link_to_notebook(root: Path) -> Path:
    """A folder whose only file is a link to the kit's own (solved) notebook."""
    root.mkdir()
    os.symlink(NOTEBOOK, root / "day02.ipynb")
    return root


def test_a_link_is_never_the_package_folder(tmp_path):
    root = link_to_solutions(tmp_path / "sub")
    with open_submission(root, MODULES) as folder:
        assert folder == root  # not the solutions behind the link
        assert not any((folder / f"{m}.py").is_file() for m in MODULES)


def test_a_link_to_a_notebook_is_not_graded_as_one(tmp_path):
    root = link_to_notebook(tmp_path / "sub")
    with open_submission(root, MODULES) as folder:
        assert folder == root  # the folder as it is, not the notebook's cells


def test_links_in_other_folders_are_noted(tmp_path):
    root = tmp_path / "sub"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    os.symlink(SOLUTIONS / "conv.py", root / "a" / "conv.py")
    os.symlink(SOLUTIONS / "blocks.py", root / "a" / "blocks.py")
    (root / "b" / "train.py").write_bytes((SOLUTIONS / "train.py").read_bytes())
    os.symlink(SOLUTIONS, root / "linked")
    notes: list[str] = []
    with open_submission(root, MODULES, notes) as folder:
        assert folder == root / "b"  # one real module beats two linked ones
    assert sorted(notes) == ["a/blocks.py is a symbolic link and was ignored",
                             "a/conv.py is a symbolic link and was ignored",
                             "linked is a symbolic link and was ignored"]
    assert find_package_dir(root / "a", MODULES) == root / "a"  # no module in it at all


class OpenLog:
    """Every file the grader process opens or lists while it is on (an audit hook: it sees
    open(), os.open(), os.scandir() and os.listdir() of any thread)."""

    events: list[tuple[str, str, int]] = []
    on = False

    @classmethod
    def hook(cls, event: str, args: tuple) -> None:
        if cls.on and event in ("open", "os.scandir", "os.listdir"):
            path = args[0] if args else None
            if isinstance(path, str | bytes | os.PathLike):
                flags = args[2] if event == "open" and len(args) > 2 and args[2] else 0
                cls.events.append((event, os.fsdecode(path), flags))

    def __enter__(self) -> list[tuple[str, str, int]]:
        if not getattr(OpenLog, "_installed", False):
            sys.addaudithook(OpenLog.hook)
            OpenLog._installed = True
        OpenLog.events = []
        OpenLog.on = True
        return OpenLog.events

    def __exit__(self, *exc: object) -> None:
        OpenLog.on = False


def hostile_links(root: Path, secrets: Path) -> tuple[list[Path], list[Path]]:
    """A submission of links to a secret file, /etc/shadow, /etc and a copy of the solutions
    (the grader reads the real ones itself): (links, targets)."""
    root.mkdir()
    copy_solutions(root / "real")  # something real to grade beside them
    hidden = copy_solutions(secrets / "solutions")
    secret = secrets / "secret.txt"
    secret.write_text("the grader's secret\n")
    links = {root / "conv.py": secret, root / "notes.ipynb": secret,
             root / "real" / "shadow.py": Path("/etc/shadow"),
             root / "etc": Path("/etc"), root / "real" / "exercises": hidden,
             root / "real" / "blocks2.py": hidden / "blocks.py"}
    for link, target in links.items():
        os.symlink(target, link)
    return list(links), list(links.values())


def assert_never_read(events, links: list[Path], targets: list[Path]) -> None:
    real = {os.path.realpath(t) for t in targets}
    for event, path, flags in events:
        assert os.path.realpath(path) not in real or Path(path) in links, (event, path)
        if Path(path) in links:  # tried only without following it (ELOOP): nothing read
            assert event == "open" and flags & os.O_NOFOLLOW, (event, path, flags)
        assert not any(path.startswith(str(t)) for t in targets), (event, path)


def test_links_are_never_read_while_opening_or_scanning(tmp_path):
    links, targets = hostile_links(tmp_path / "sub", tmp_path / "secrets")
    notes: list[str] = []
    with OpenLog() as events:
        with open_submission(tmp_path / "sub", MODULES, notes) as folder:
            assert folder == tmp_path / "sub" / "real"
            scan_submission(folder)
    assert_never_read(events, links, targets)
    assert sorted(notes) == ["conv.py is a symbolic link and was ignored",
                             "etc is a symbolic link and was ignored",
                             "notes.ipynb is a symbolic link and was ignored"]


@pytest.mark.slow
def test_links_score_nothing_and_are_never_read_while_grading(tmp_path):
    """Graded in the sandbox: the links of issue 22 score 0 (12/12 before), a note says why,
    and no linked file is opened by the grader, its static check or the sandbox's staging."""
    for make in (link_to_solutions, link_to_notebook):
        root = make(tmp_path / make.__name__)
        report = grade(root, tmp_path / f"out-{make.__name__}", only=ONLY, quiet=True)
        assert report.score == 0 and report.max_score == 12
        assert "is a symbolic link and was ignored" in report.output
    links, targets = hostile_links(tmp_path / "sub", tmp_path / "secrets")
    with OpenLog() as events:
        report = grade(tmp_path / "sub", tmp_path / "out", only=ONLY, quiet=True)
    assert report.score == 12  # the real modules, one folder down
    assert_never_read(events, links, targets)


# -- archives and notebooks the grader cannot read -----------------------------------------------
def write_zip(path: Path, members: list[tuple[str, bytes]], raw: dict[str, bytes] | None = None,
              method: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in members:
            zf.writestr(name, data)
    data = path.read_bytes()
    for placeholder, name_bytes in (raw or {}).items():  # a name zipfile would not write
        data = data.replace(placeholder.encode(), name_bytes)
    path.write_bytes(data)
    return path


def corrupt_deflate(path: Path) -> Path:
    conv = (SOLUTIONS / "conv.py").read_bytes()
    write_zip(path, [("conv.py", conv * 4)], method=zipfile.ZIP_DEFLATED)
    data = bytearray(path.read_bytes())
    start = 30 + len("conv.py")  # the local header, then the deflate stream
    for i in range(start + 20, start + 200):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    return path


def notebook(path: Path, edit) -> Path:
    nb = json.loads(NOTEBOOK.read_text())
    edit(nb)
    path.write_text(json.dumps(nb))
    return path


def code_cells(nb) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def _nbgrader_string(nb):
    for c in code_cells(nb):
        c["metadata"]["nbgrader"] = "not a mapping"


def _int_source(nb):
    for c in code_cells(nb):
        c["source"] = [1, 2]


CONV = (SOLUTIONS / "conv.py").read_bytes()
# name -> (build the submission under tmp_path, words its one-line problem holds)
UNREADABLE = {
    "file_and_folder": (lambda t: write_zip(t / "s.zip", [("conv.py", CONV),
                                                          ("conv.py/x.py", b"x = 1\n")]),
                        "conv.py is both a file and a folder"),
    "deep_path": (lambda t: write_zip(t / "s.zip", [("d/" * 2000 + "conv.py", CONV)]),
                  "is nested 2001 levels deep"),
    "long_name": (lambda t: write_zip(t / "s.zip", [("conv.py", CONV),
                                                    ("a" * 300 + ".py", b"x = 1\n")]),
                  f"longer than {MAX_NAME_BYTES} bytes"),
    "corrupt_deflate": (lambda t: corrupt_deflate(t / "s.zip"),
                        "conv.py cannot be read, the archive is damaged"),
    "nbgrader_meta_string": (lambda t: notebook(t / "s.ipynb", _nbgrader_string),
                             "has no solution cells"),
    "int_source": (lambda t: notebook(t / "s.ipynb", _int_source),
                   "a code cell's source is list [1, 2], not text"),
    "deep_json": (lambda t: _write(t / "s.ipynb", b'{"cells": ' + b"[" * 100_000
                                   + b"]" * 100_000 + b"}"),
                  "nested too deeply"),
    "not_utf8_json": (lambda t: _write(t / "s.ipynb", b'{"cells": ["\xff"]}'),
                      "is not a notebook (not JSON"),
    "huge_notebook": (lambda t: _write(t / "s.ipynb", b" " * (17 << 20)),
                      "is larger than 16 MiB"),
    "huge_integer": (lambda t: _write(t / "s.ipynb", b'{"cells": [], "n": ' + b"7" * 5000
                                      + b"}"),
                     "is not a notebook (not JSON"),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def assert_one_line(problem: str, words: str) -> None:
    assert words in problem, problem
    assert "\n" not in problem and "Traceback" not in problem
    assert not problem.lower().startswith("error")


@pytest.mark.parametrize("case", list(UNREADABLE))
def test_unreadable_submissions_are_one_line(case, tmp_path):
    make, words = UNREADABLE[case]
    path = make(tmp_path)
    with pytest.raises(SubmissionError) as caught, open_submission(path, MODULES):
        pass
    assert_one_line(str(caught.value), words)


@pytest.mark.parametrize("case", [c for c in UNREADABLE if c in (
    "file_and_folder", "deep_path", "long_name", "corrupt_deflate")])
def test_unreadable_zips_are_a_students_problem_in_a_batch(case, tmp_path):
    make, words = UNREADABLE[case]
    (tmp_path / "class").mkdir()
    make(tmp_path).rename(tmp_path / "class" / "bob.zip")
    copy_solutions(tmp_path / "class" / "alice")
    students = {s.id: s for s in collect(tmp_path / "class").students}
    assert not students["alice"].problem
    assert_one_line(students["bob"].problem, words)
    assert not students["bob"].files


def test_a_canvas_file_name_too_long_for_the_disk_is_a_problem(tmp_path):
    archive = write_zip(tmp_path / "canvas.zip", [
        ("ann_1001_5001_conv.py", CONV), ("bob_1002_5002_" + "b" * 300 + ".py", b"x = 1\n")])
    students = {s.id: s for s in collect(archive).students}
    assert not students["ann"].problem and students["ann"].files
    assert_one_line(students["bob"].problem, f"longer than {MAX_NAME_BYTES} bytes")


def test_a_name_that_is_not_utf8_is_skipped_with_a_note(tmp_path):
    path = write_zip(tmp_path / "s.zip", [("conv.py", CONV), ("X?.py", b"x = 1\n")],
                     raw={"X?.py": b"X\xff.py"})
    notes: list[str] = []
    with open_submission(path, MODULES, notes) as folder:
        assert sorted(p.name for p in folder.iterdir()) == ["conv.py"]
    assert notes == ["the file name 'X\\xa0.py' in s.zip is not valid UTF-8 and the file "
                     "was ignored"]


def test_a_deep_expression_in_a_notebook_cell_still_opens(tmp_path):
    """The notebook's cells are parsed by the grader to wire modules together: a 200k-deep
    expression is nested too deeply to parse there, and the module is written as it is."""
    def deep(nb):
        cell = next(c for c in code_cells(nb)
                    if c["metadata"].get("nbgrader", {}).get("grade_id", "").startswith("conv-"))
        cell["source"] = "".join(cell["source"]) + "\nX = " + "-" * 200_000 + "1\n"

    written = notebook_to_package(notebook(tmp_path / "s.ipynb", deep), tmp_path / "out",
                                  MODULES)
    assert tmp_path / "out" / "conv.py" in written
    scan = scan_submission(tmp_path / "out")
    assert any(f.what == "nested too deeply to read" for f in scan.all_findings())


def test_a_lone_surrogate_in_a_cell_is_written_as_its_escape(tmp_path):
    """Red team: a cell holding "\\ud800" (valid JSON) once made writing the module raise."""
    def surrogate(nb):
        cell = next(c for c in code_cells(nb)
                    if c["metadata"].get("nbgrader", {}).get("grade_id", "").startswith("conv-"))
        cell["source"] = "".join(cell["source"]) + '\nODD = "\ud800"\n'

    notebook_to_package(notebook(tmp_path / "s.ipynb", surrogate), tmp_path / "out", MODULES)
    text = (tmp_path / "out" / "conv.py").read_text(encoding="utf-8")  # valid UTF-8
    assert 'ODD = "\\ud800"' in text


@pytest.mark.skipif(os.getuid() != 0, reason="a file of another owner needs root")
def test_a_hard_link_to_another_owners_file_is_never_read(tmp_path):
    """Red team: as root, a student's folder held a hard link to /etc/shadow and to the
    kit's solutions (18/18); O_NOFOLLOW sees no link. Read, staged or shipped: never."""
    from grader.batch.collect import collect
    from grader.sandbox.client import stage_submission

    secret = tmp_path / "secret.py"
    secret.write_text("SECRET = 'the grader may read this, a student may not'\n")
    os.chown(secret, 4242, 4242)
    os.chmod(secret, 0o600)
    student = copy_solutions(tmp_path / "class" / "mallory")
    os.link(secret, student / "secret.py")
    os.link(secret, student / "day02.ipynb")

    staged = tmp_path / "staged"
    notes = stage_submission(student, staged)
    assert not (staged / "secret.py").exists() and (staged / "conv.py").is_file()
    assert any("secret.py" in n for n in notes), notes
    mallory = next(s for s in collect(tmp_path / "class").students if s.id == "mallory")
    assert not any(b"SECRET" in data for data in mallory.files.values())
    assert "conv.py" in mallory.files
    with pytest.raises(SubmissionError):
        notebook_to_package(student / "day02.ipynb", tmp_path / "nb", MODULES)


@pytest.mark.parametrize("name", ["s.zip", "s.ipynb"])
def test_a_fifo_given_as_the_submission_is_one_line(name, tmp_path):
    """Red team: `grade fifo.zip` blocked for ever in zipfile."""
    os.mkfifo(tmp_path / name)
    with pytest.raises(SubmissionError) as caught, open_submission(tmp_path / name, MODULES):
        pass
    assert_one_line(str(caught.value), "is not a regular file or a folder")


def test_a_notebook_named_with_escapes_is_written_as_a_comment(tmp_path):
    name = "\x1b[2J\"\"\"\nimport os.ipynb"
    path = notebook(tmp_path / name, lambda nb: None)
    notebook_to_package(path, tmp_path / "out", MODULES)
    init = (tmp_path / "out" / "__init__.py").read_text()
    assert init.count("\n") == 1 and init.startswith("# ") and "\x1b" not in init
    compile(init, "__init__.py", "exec")


@pytest.mark.slow
@pytest.mark.parametrize("case", list(UNREADABLE))
def test_unreadable_submissions_get_a_complete_report(case, tmp_path):
    make, words = UNREADABLE[case]
    report = grade(make(tmp_path), tmp_path / "out", only=ONLY, quiet=True)
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["score"] == 0 and saved["max_score"] == 12
    assert {t["tags"][0] for t in saved["tests"]} == set(ONLY)
    for test in saved["tests"]:
        assert_one_line(test["output"], words)
    assert_one_line(saved["extra_data"]["submission_problem"], words)
    assert report.score == 0


@pytest.mark.slow
@pytest.mark.ci  # a class through the batch on Dask: make test-ci
def test_a_batch_reports_unreadable_submissions_as_students_problems(tmp_path):
    """Every case in one class: graded at 0 with its reason, listed under 'could not be
    opened', no grader error, the gradebook and summary written, exit status 0."""
    from grader.batch.run import BatchOptions, run_batch

    cls = tmp_path / "class"
    copy_solutions(cls / "alice")
    for case, (make, _) in UNREADABLE.items():
        made = make(tmp_path)
        if made.suffix == ".zip":
            made.rename(cls / f"{case}.zip")
        else:
            (cls / case).mkdir()
            made.rename(cls / case / made.name)
    result = run_batch(cls, tmp_path / "out", BatchOptions(
        only=("conv_output_size",), handle="in-process", jobs=2, quiet=True))
    assert not result.errors and result.exit_code == 0
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert f"{len(UNREADABLE) + 1} students: 1 graded, {len(UNREADABLE)} could not be opened" \
        in summary
    for case, (_, words) in UNREADABLE.items():
        saved = json.loads((tmp_path / "out" / case / "results.json").read_text())
        assert saved["score"] == 0
        assert words in saved["tests"][0]["output"]
    rows = (tmp_path / "out" / "gradebook.csv").read_text().splitlines()
    assert len(rows) == len(UNREADABLE) + 2


def test_the_submission_argument_itself_may_be_a_link(tmp_path):
    """The path on the command line is the instructor's choice: followed, once."""
    folder = copy_solutions(tmp_path / "real")
    os.symlink(folder, tmp_path / "alias")
    with open_submission(tmp_path / "alias", MODULES) as opened:
        assert stat.S_ISDIR(os.lstat(opened).st_mode)
        assert (opened / "conv.py").is_file()
