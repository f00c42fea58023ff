"""A class of hostile names through ``grader batch`` and ``grader similarity`` (issue 22,
points 3 and 4): ids that start with a dash or a formula sign, the batch's own file names,
400 bytes of 4-byte characters, terminal escapes, bidi overrides, HTML and javascript: links,
in student ids and in the file names their notes quote. Every student is graded or reported,
the gradebook and summary are written, and nothing raw reaches any output: no control
character in any file, no formula cell, no markup a Markdown or HTML reader would obey."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grader.batch.collect import MAX_ID_BYTES, RESERVED_IDS
from grader.batch.run import BatchOptions, run_batch
from grader.text import BIDI
from tests.corpus import REPO, SOLUTIONS

# a batch on Dask, then the similarity reports: a whole class (make test-ci)
pytestmark = [pytest.mark.slow, pytest.mark.ci]

RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f" + BIDI + "\u2028\u2029]")
MODULES = ("conv.py", "receptive_field.py")
HOSTILE = [
    "-2+3", "--student", "-", "+1", "=1+1", "@SUM(1+1)", "=HYPERLINK(\"http:x\")",
    "similarity.md", "similarity.html", "gradebook.csv", "Summary.MD", "canvas.json",
    "\U0001d518" * 100,  # 400 bytes: ENAMETOOLONG took down the whole batch
    "\x1b[2J\x1b[H\x1b[32mtotal 100 of 100 ok\x1b[0m", "\x1b]52;c;cm0gLXJmIH4=\x07",
    "evil\u202egnp", "<img src=x onerror=alert(1)>", "[click](javascript:alert(1))",
    "`code` | pipe", ".hidden", "..", "alice",
]
LINK = "<a href='javascript:alert(1)'>\x1b]0;pwned\x07x</a>.py"


def hostile_class(path: Path) -> Path:
    """A class zip: each hostile name a student folder, and alice's a link with an HTML and
    escape-sequence name (its note quotes it)."""
    with zipfile.ZipFile(path, "w") as zf:
        for name in HOSTILE:
            for module in MODULES:
                zf.writestr(f"{name}/{module}", (SOLUTIONS / module).read_bytes())
        link = zipfile.ZipInfo(f"alice/{LINK}")
        link.external_attr = 0o120777 << 16
        zf.writestr(link, "/etc/shadow")
    return path


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    source = hostile_class(root / "class.zip")
    result = run_batch(source, root / "out", BatchOptions(
        only=("conv_output_size",), handle="in-process", jobs=2, quiet=True))
    return source, root / "out", result


def test_every_student_is_graded_and_the_class_reports_written(graded):
    _, out, result = graded
    assert result.exit_code == 0 and not result.errors
    ids = set(result.graded)
    assert len(ids) == len(HOSTILE) - 1  # "../" is an unsafe path: a batch note
    for sid in ids:
        assert re.fullmatch(r"[\w.@+-]+", sid) and len(sid.encode()) <= MAX_ID_BYTES
        assert not sid.startswith((".", "-", "+", "@", "=")) and sid.casefold() not in \
            RESERVED_IDS
        report = json.loads((out / sid / "results.json").read_text())
        assert report["score"] == report["max_score"] == 6
    rows = list(csv.reader(io.StringIO((out / "gradebook.csv").read_text())))
    assert sorted(r[0] for r in rows[1:]) == sorted(ids)
    for name in ("gradebook.csv", "summary.md", "canvas.json", "histogram.png"):
        assert (out / name).is_file(), name


def test_no_output_holds_a_control_character_or_a_formula(graded):
    _, out, _ = graded
    for path in out.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".md", ".csv", ".xml", ".html"):
            text = path.read_text(encoding="utf-8")
            assert not RAW.search(text), (path, RAW.search(text))
    for row in csv.reader(io.StringIO((out / "gradebook.csv").read_text())):
        assert not row[0].lstrip().startswith(("=", "+", "-", "@")), row[0]


def rendered(markdown_text: str) -> str:
    markdown_it = pytest.importorskip("markdown_it")
    return markdown_it.MarkdownIt("commonmark").enable("table").render(markdown_text)


# the kit's own picture and links between its reports
KIT_MARKUP = re.compile(r'<img src="histogram\.png" alt="score histograms" />|'
                        r'<a href="similarity\.(md|html)">similarity\.(md|html)</a>')


def assert_inert(html: str, where: object) -> None:
    html = KIT_MARKUP.sub("", html)
    for tag in ("<img", "<script", "<a ", "<h1>click"):  # escaped text is "&lt;img"
        assert tag not in html, (where, tag)
    outside = re.sub(r"<code[^>]*>.*?</code>", "", html, flags=re.S)  # student text is code
    for word in ("href=", "javascript:", "onerror"):
        assert word not in outside, (where, word)


def test_markdown_reports_render_the_names_as_text(graded):
    _, out, _ = graded
    summary = (out / "summary.md").read_text()
    assert_inert(rendered(summary), "summary.md")
    assert "is a symbolic link and was ignored" in summary  # alice's note, quoted as code
    assert "\\x1b]0;pwned\\x07" in summary  # the escape, shown for what it is
    for feedback in out.glob("*/feedback.md"):
        assert_inert(rendered(feedback.read_text()), feedback)
    alice = json.loads((out / "alice" / "results.json").read_text())
    assert "\\x1b]0;pwned\\x07x</a>.py is a symbolic link" in alice["output"]


def test_similarity_reports_over_the_class(graded):
    source, out, _ = graded
    done = subprocess.run([sys.executable, "-m", "grader", "similarity", str(out),
                           "--submissions", str(source)], cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "\x1b" not in done.stdout + done.stderr
    html = (out / "similarity.html").read_text()
    assert not RAW.search(html) and "<img" not in html and "<script" not in html
    md = (out / "similarity.md").read_text()
    assert not RAW.search(md)
    assert_inert(rendered(md), "similarity.md")
    assert "## Similarity" in (out / "summary.md").read_text()


def test_a_rerun_finds_every_student_again(graded):
    source, out, _ = graded
    again = run_batch(source, out, BatchOptions(
        only=("conv_output_size",), handle="in-process", jobs=2, quiet=True))
    assert not again.graded and not again.errors
    assert len(again.skipped) == len(HOSTILE) - 1


def test_a_notebook_named_with_escapes_never_reaches_the_terminal(tmp_path):
    """The name of a notebook that cannot be read, printed by grade: visible, not obeyed."""
    name = "\x1b[2J\x1b[H\x1b[32mtotal 100 of 100 ok\x1b[0m\u202e.ipynb"
    (tmp_path / name).write_text("not json")
    done = subprocess.run([sys.executable, "-m", "grader", "grade", str(tmp_path / name),
                           "--out", str(tmp_path / "out"), "--only", "conv_output_size"],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not RAW.search(done.stdout + done.stderr)
    assert "\\x1b[2J" in done.stdout
    report = json.loads((tmp_path / "out" / "results.json").read_text())
    assert "\\x1b[2J" in report["tests"][0]["output"]


def test_a_student_whose_folder_cannot_be_written_costs_only_that_student(tmp_path,
                                                                          monkeypatch):
    """Ids are safe by construction; should a student's folder still fail to be written (a
    full disk, a name some file system refuses), that student is one grader error and the
    rest of the class is graded, with its gradebook and summary."""
    import errno

    import grader.batch.run as batch_run

    real = batch_run.save_graded

    def save_graded(folder, meta, results, feedback):
        if folder.name == "bob":
            raise OSError(errno.ENAMETOOLONG, "File name too long")
        return real(folder, meta, results, feedback)

    monkeypatch.setattr(batch_run, "save_graded", save_graded)
    cls = tmp_path / "class"
    for sid in ("alice", "bob", "carol"):
        (cls / sid).mkdir(parents=True)
        for module in MODULES:
            (cls / sid / module).write_bytes((SOLUTIONS / module).read_bytes())
    result = run_batch(cls, tmp_path / "out", BatchOptions(
        only=("conv_output_size",), handle="in-process", jobs=2, quiet=True))
    assert sorted(result.graded) == ["alice", "carol"] and list(result.errors) == ["bob"]
    assert "could not be written" in result.errors["bob"]
    rows = (tmp_path / "out" / "gradebook.csv").read_text().splitlines()
    assert [r.split(",")[:2] for r in rows[1:]] == [["alice", "6"], ["bob", ""], ["carol", "6"]]
    assert "## Grader errors" in (tmp_path / "out" / "summary.md").read_text()
