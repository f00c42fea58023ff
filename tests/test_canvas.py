"""Canvas gradebook import (python -m grader canvas-csv): a Canvas download graded by the batch,
then its totals written into the gradebook the instructor exported; every failure named.

The export below follows Canvas's exporter (instructure/canvas-lms lib/gradebook_exporter.rb):
a byte-order mark, LF line endings, ``Student, ID, SIS User ID, SIS Login ID, Section``, the
assignments as ``Title (id)``, read-only totals after them, the "    Points Possible" row,
names quoted when they hold a comma, and the test student last.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import zipfile
from pathlib import Path

import pytest

from grader.batch.canvas import CanvasCsvError, canvas_csv
from grader.batch.collect import Collection, Student
from grader.batch.gradebook import canvas_json
from grader.batch.run import BatchOptions, run_batch
from grader.batch.store import Meta, grader_version, save_error, save_graded
from grader.cli import main
from tests.corpus import REPO, SOLUTIONS, build_submission
from tests.corpus.conv import VARIANTS as CONV_VARIANTS

ONLY = ("conv_output_size",)  # one cheap exercise: 6 points
DAY2 = "Day 2 (12345)"
EXPORT = (
    "Student,ID,SIS User ID,SIS Login ID,Section,Day 1 (12344),Day 2 (12345),"
    "Current Score,Unposted Current Score,Final Score,Unposted Final Score\n"
    "    Points Possible,,,,,10.00,10.00,(read only),(read only),(read only),(read only)\n"
    '"Doe, Jane",1001,S1001,jdoe,"Section A, Mon",9.50,,95.00,95.00,47.50,47.50\n'
    '"Roe, John",1002,S1002,jroe,"Section A, Mon",7.00,,70.00,70.00,35.00,35.00\n'
    '"Smith, Ann",1003,S1003,asmith,Section B,EX,,,,0.00,0.00\n'
    '"Nguyen, Bao",1004,S1004,bnguyen,Section B,8.00,,80.00,80.00,40.00,40.00\n'
    '"Student, Test",1099,,3f1c2e9a0b,"Section A, Mon",,,,,0.00,0.00\n'
)


def export(tmp_path: Path, text: str = EXPORT, bom: bool = True, name: str = "export.csv",
           ) -> Path:
    path = tmp_path / name
    path.write_bytes((codecs.BOM_UTF8 if bom else b"") + text.encode())
    return path


def rows_of(path: Path, delimiter: str = ",") -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text("utf-8-sig"), newline=""),
                           delimiter=delimiter))


def column(path: Path, title: str = DAY2, delimiter: str = ",") -> dict[str, str]:
    rows = rows_of(path, delimiter)
    col = rows[0].index(title)
    return {r[0]: r[col] for r in rows[1:]}


# -- a Canvas download, graded by the batch, then imported -------------------------------------
@pytest.fixture(scope="module")
def graded_download(tmp_path_factory):
    """Canvas 'Download Submissions' files: Jane correct, John the stubs, Ann (late, a .zip)
    a floor/ceil bug; Bao and the test student handed in nothing."""
    root = tmp_path_factory.mktemp("canvas")
    ceil = build_submission(next(v for v in CONV_VARIANTS if v.name == "conv_size_ceil"),
                            root / "ann")
    inner = root / "ann.zip"
    with zipfile.ZipFile(inner, "w") as zf:
        for f in sorted(ceil.glob("*.py")):
            zf.write(f, f.name)
    download = root / "submissions.zip"
    with zipfile.ZipFile(download, "w") as zf:
        for f in sorted(SOLUTIONS.glob("*.py")):
            zf.write(f, f"doejane_1001_501_{f.name}")
        for f in sorted((REPO / "exercises").glob("*.py")):
            zf.write(f, f"roejohn_1002_502_{f.name}")
        zf.write(inner, "smithann_LATE_1003_503_day2.zip")
    out = root / "out"
    result = run_batch(download, out, BatchOptions(only=ONLY, handle="in-process", jobs=2,
                                                   quiet=True))
    assert sorted(result.graded) == ["doejane", "roejohn", "smithann"] and not result.errors
    return out


@pytest.mark.slow
@pytest.mark.ci  # a whole class through the batch: make test-ci
def test_graded_download_into_the_exported_gradebook(graded_download, tmp_path, capsys):
    out = graded_download
    assert json.loads((out / "canvas.json").read_text()) == {
        "doejane": "1001", "roejohn": "1002", "smithann": "1003"}
    ann = json.loads((out / "smithann" / "results.json").read_text())
    assert 0 < ann["score"] < ann["max_score"] == 6
    text = EXPORT.replace('"Smith, Ann",1003,S1003,asmith,Section B,EX,',
                          '"Smith, Ann",1003,S1003,asmith,Section B,,')  # not excused here
    gradebook = export(tmp_path, text)
    dest = tmp_path / "import.csv"
    code = main(["canvas-csv", str(out), "--gradebook", str(gradebook), "--assignment", DAY2,
                 "--out", str(dest)])
    said = capsys.readouterr()
    assert code == 0, said.err
    ann_points = f"{round(ann['score'] * 10 / 6, 2):.2f}".rstrip("0").rstrip(".")
    assert column(dest) == {"    Points Possible": "10.00", "Doe, Jane": "10", "Roe, John": "0",
                            "Smith, Ann": ann_points, "Nguyen, Bao": "",
                            "Student, Test": ""}
    assert said.out.splitlines() == [
        f"scaled: the batch's totals are out of 6, {DAY2!r} is worth 10 points: each total "
        "x 10/6",
        f"wrote {dest}: {DAY2!r} filled for 3 students, 1 left as exported (warnings above); "
        "import it in Canvas: Grades > Import"]
    assert said.err.splitlines() == [  # the test student is no one's missing grade
        "warning: Nguyen, Bao (ID 1004): no grade in the batch (no submission?): left as "
        "exported (empty)"]
    # what Canvas reads back: same header, same rows, only Day 2's cells of the graded changed
    data = dest.read_bytes()
    assert data.startswith(codecs.BOM_UTF8) and b"\r" not in data
    before, after = text.splitlines(keepends=True), data[3:].decode().splitlines(keepends=True)
    assert len(after) == len(before)
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert changed == [2, 3, 4]  # Jane, John, Ann; header and Points Possible byte-identical
    assert after[2] == '"Doe, Jane",1001,S1001,jdoe,"Section A, Mon",9.50,10,95.00,95.00,' \
                       '47.50,47.50\n'


# -- failures, on a batch folder written directly ---------------------------------------------
def fake_batch(out: Path, students: dict[str, tuple[str, float | None]],
               top: float = 6.0) -> Path:
    """A batch's output: student -> (Canvas user id or "", score; None: a grader error)."""
    found = []
    for sid, (user, score) in students.items():
        found.append(Student(sid, f"Canvas files {sid}_{user}_*", canvas_user=user))
        if score is None:
            save_error(out / sid, Meta(sid, "h", grader_version(), {}, "grader_error",
                                       error="RuntimeError: boom\nin the grader"))
        else:
            save_graded(out / sid, Meta(sid, "h", grader_version(), {}, "graded"),
                        {"score": score, "max_score": top, "tests": [], "output": ""}, "")
    (out / "canvas.json").write_text(canvas_json(Collection(found)))
    return out


CLASS = {"doejane": ("1001", 6.0), "roejohn": ("1002", 2.5), "smithann": ("1003", 4.0)}


def problems_of(tmp_path: Path, out: Path, gradebook: Path, assignment: str = DAY2,
                ) -> list[str]:
    dest = tmp_path / "import.csv"
    with pytest.raises(CanvasCsvError) as caught:
        canvas_csv(out, gradebook, assignment, dest)
    assert not dest.exists()  # nothing written half-way
    return caught.value.problems


def test_points_as_canvas_says_and_warnings_for_cells_left_alone(tmp_path):
    out = fake_batch(tmp_path / "out", CLASS)
    text = EXPORT.replace("10.00,10.00,(read only)", "10.00,6.00,(read only)")  # no scaling
    done = canvas_csv(out, export(tmp_path, text), DAY2)
    assert done.path == out / "canvas-import.csv" and done.filled == 3 and done.notes == []
    assert column(done.path) == {"    Points Possible": "6.00", "Doe, Jane": "6",
                                 "Roe, John": "2.5", "Smith, Ann": "4", "Nguyen, Bao": "",
                                 "Student, Test": ""}
    assert column(done.path, "Day 1 (12344)")["Smith, Ann"] == "EX"  # another column: as is
    assert done.warnings == ["Nguyen, Bao (ID 1004): no grade in the batch (no submission?): "
                             "left as exported (empty)"]
    excused = EXPORT.replace("Section B,EX,,", "Section B,8.00,EX,")
    kept = canvas_csv(out, export(tmp_path, excused, name="excused.csv"), DAY2)
    assert column(kept.path)["Smith, Ann"] == "EX"
    assert kept.warnings == [
        "Smith, Ann (ID 1003): EX (excused) left as exported; the batch gives 6.67",
        "Nguyen, Bao (ID 1004): no grade in the batch (no submission?): left as exported "
        "(empty)"]
    assert kept.notes == [f"scaled: the batch's totals are out of 6, {DAY2!r} is worth 10 "
                          "points: each total x 10/6"]


def test_semicolons_crlf_decimal_commas_and_no_points_row(tmp_path):
    out = fake_batch(tmp_path / "out", CLASS)
    text = EXPORT.replace(",", ";").replace('"Doe; Jane"', '"Doe, Jane"')
    lines = [line.replace("10.00", "10,00") for line in text.splitlines()]
    gradebook = export(tmp_path, "\r\n".join(lines) + "\r\n", bom=False)
    done = canvas_csv(out, gradebook, DAY2)
    data = done.path.read_bytes()
    assert not data.startswith(codecs.BOM_UTF8) and data.count(b"\r\n") == len(lines)
    assert column(done.path, delimiter=";")["Roe; John"] == "4.17"  # 2.5 x 10/6
    no_points = export(tmp_path, "".join(EXPORT.splitlines(keepends=True)[:1]
                                         + EXPORT.splitlines(keepends=True)[2:]),
                       name="nopoints.csv")
    plain = canvas_csv(out, no_points, DAY2, tmp_path / "plain.csv")
    assert column(plain.path)["Roe, John"] == "2.5"
    assert plain.notes == ["no Points Possible row: totals written as they are (out of 6)"]


def test_unknown_assignment_lists_the_assignment_columns(tmp_path):
    out = fake_batch(tmp_path / "out", CLASS)
    for wrong in ("Day 3 (12346)", "Current Score", "Day 2"):
        assert problems_of(tmp_path, out, export(tmp_path), wrong) == [
            f"{wrong!r} is not an assignment column of {tmp_path / 'export.csv'}; its "
            "assignment columns: 'Day 1 (12344)', 'Day 2 (12345)'"]


def test_every_problem_named_at_once_and_nothing_written(tmp_path):
    out = fake_batch(tmp_path / "out", {
        "doejane": ("1001", 6.0),
        "roejohn": ("1002", None),  # the grader failed on him
        "lee": ("1005", 3.0),  # not in the gradebook
        "ann": ("1003", 1.0), "ann2": ("1003", 2.0),  # one Canvas id, two batch students
        "folder": ("", 3.0),  # graded from a plain folder: no Canvas id
    })
    duplicated = EXPORT + '"Doe, Jane",1001,S1001,jdoe,Section B,,,,,,\n'
    gradebook = export(tmp_path, duplicated)
    dest = tmp_path / "import.csv"
    dest.write_text("an older import")
    with pytest.raises(CanvasCsvError) as caught:
        canvas_csv(out, gradebook, DAY2, dest)
    assert dest.read_text() == "an older import"
    assert caught.value.problems == [
        "roejohn (Canvas id 1002): the grader failed on it, so it has no grade (RuntimeError: "
        "boom in the grader); fix and rerun the batch",
        "folder: not from a Canvas download (no Canvas user id in its file names), so it "
        "matches no row of the gradebook",
        "Canvas user id 1003 belongs to 2 batch students (ann, ann2)",
        f"the ID 1001 appears on 2 rows of {gradebook} (rows 3, 8): keep one",
        f"lee (Canvas id 1005) is not in {gradebook}: a dropped student? export with Show "
        "Inactive/Concluded Enrollments, or remove their files from the download",
    ]


def test_not_a_batch_or_not_a_canvas_export(tmp_path):
    gradebook = export(tmp_path)
    assert problems_of(tmp_path, tmp_path / "none", gradebook) == [
        f"{tmp_path / 'none'} is not a batch output folder (python -m grader batch ... --out "
        "OUT)"]
    (tmp_path / "old").mkdir()  # graded before canvas.json existed
    assert "has no canvas.json" in problems_of(tmp_path, tmp_path / "old", gradebook)[0]
    out = fake_batch(tmp_path / "out", CLASS)
    ours = tmp_path / "ours.csv"
    ours.write_text("student,total,conv_output_size\ndoejane,6,6\n")
    assert problems_of(tmp_path, out, ours) == [
        f"{ours} is not a Canvas gradebook export: its first row should start with Student, "
        "ID, ... (Grades > Export in Canvas)"]
    with pytest.raises(CanvasCsvError, match="is the exported gradebook"):
        canvas_csv(out, gradebook, DAY2, gradebook)
    assert gradebook.read_bytes() == codecs.BOM_UTF8 + EXPORT.encode()


def test_cli_errors_say_error_and_exit_2(tmp_path, capsys):
    out = fake_batch(tmp_path / "out", {**CLASS, "roejohn": ("1002", None)})
    code = main(["canvas-csv", str(out), "--gradebook", str(export(tmp_path)),
                 "--assignment", "Day 9 (1)"])
    err = capsys.readouterr().err.splitlines()
    assert code == 2 and len(err) == 2 and all(line.startswith("error: ") for line in err)
    assert "'Day 9 (1)' is not an assignment column" in err[0] and "roejohn" in err[1]
    assert not (out / "canvas-import.csv").exists()
