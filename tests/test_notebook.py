"""The notebook course without nbgrader: the generated source notebook, its test cells' API, and
grading a submitted ``.ipynb`` in the sandbox (tests/test_nbgrader.py runs the real nbgrader).

The notebook is built from the outline and solutions/ (drift-checked like the stubs); its test
cells are worth the pack's points; ``check`` grades the notebook's own definitions and writes
nothing on stderr; ``python -m grader grade X.ipynb`` extracts the solution cells into modules.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
import warnings

import pytest

from grader.grade import grade
from grader.handle import InProcessHandle
from grader.notebook import (
    NotebookError,
    module_of,
    notebook_path,
    notebook_sources,
    notebook_text,
    outline_path,
    render_notebook,
)
from grader.notebook_api import check, self_check
from grader.packs import load_pack
from grader.probes import ProbeFailure
from grader.submission import SubmissionError, open_submission
from tests.corpus import Edit
from tests.notebook_helpers import REPO, cell, load, nbgrader_meta, save, solved, text

PACK = load_pack("day02")
BN_BUFFERS = Edit("param_count", "    return 2 * num_features", "    return 4 * num_features")
SIZE_NO_DILATION = Edit("conv", "span = dilation * (kernel_size - 1) + 1", "span = kernel_size")
CHEAP = ("conv_output_size", "param_count")  # the two cheapest exercises to grade


def _needs_jupytext() -> None:
    pytest.importorskip("jupytext", reason="the [nbgrader] extra builds the notebook")


def _test_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if nbgrader_meta(c).get("grade")]


# -- the source notebook ------------------------------------------------------------------------
def test_committed_notebook_matches_the_generator():
    """notebooks/day02.ipynb is what the outline and solutions/ make now (drift check)."""
    _needs_jupytext()
    text_now = notebook_text(render_notebook(PACK))
    assert notebook_path(PACK).read_text(encoding="utf-8") == text_now, \
        "notebooks/day02.ipynb is out of date: run python -m grader notebook"


def test_a_changed_solution_shows_as_drift(tmp_path):
    _needs_jupytext()
    shutil.copytree(REPO / "solutions", tmp_path / "solutions")
    blocks = tmp_path / "solutions" / "blocks.py"
    blocks.write_text(blocks.read_text().replace("THE residual connection", "the skip"))
    changed = notebook_text(render_notebook(PACK, solutions_dir=tmp_path / "solutions"))
    assert changed != notebook_path(PACK).read_text(encoding="utf-8")
    assert "the skip" in changed


def test_test_cells_carry_the_packs_points_in_teaching_order():
    nb = load()
    cells = _test_cells(nb)
    exercises = [nbgrader_meta(c)["grade_id"].removeprefix("test_") for c in cells]
    assert exercises == list(PACK.ids)  # the pack lists them in the lesson's order
    for c, ex in zip(cells, exercises, strict=True):
        assert nbgrader_meta(c)["points"] == PACK.exercise(ex).points
        lines = text(c).splitlines()
        # nbgrader scores the last expression: the hidden check is the cell's last statement
        assert lines[-3:] == ["### BEGIN HIDDEN TESTS", f'check("{ex}")', "### END HIDDEN TESTS"]
    assert sum(nbgrader_meta(c)["points"] for c in cells) == PACK.max_score == 100


def test_solution_cells_hold_every_region_of_the_reference():
    nb = load()
    solution_cells = [c for c in nb["cells"] if nbgrader_meta(c).get("solution")]
    assert {module_of(nbgrader_meta(c)["grade_id"]) for c in solution_cells} == set(PACK.modules)
    begins = sum(text(c).count("### BEGIN SOLUTION") for c in solution_cells)
    in_solutions = sum((REPO / "solutions" / f"{m}.py").read_text().count("### BEGIN SOLUTION")
                       for m in PACK.modules)
    assert begins == in_solutions
    assert all(not nbgrader_meta(c).get("locked") for c in solution_cells)
    assert all(nbgrader_meta(c).get("locked") for c in _test_cells(nb))


def _pack_with_outline(tmp_path, old: str, new: str):
    text_ = outline_path(PACK).read_text(encoding="utf-8")
    assert text_.count(old) == 1, old
    (tmp_path / "notebook").mkdir()
    (tmp_path / "notebook" / "outline.py").write_text(text_.replace(old, new))
    return dataclasses.replace(PACK, root=tmp_path)


@pytest.mark.parametrize(("old", "new", "message"), [
    ('"grade_id": "test_conv2d", "locked": true, "points": 12',
     '"grade_id": "test_conv2d", "locked": true, "points": 10', "worth 12 points"),
    ('kit={"fill": ["IntPair", "_pair", "conv2d"]}', 'kit={"fill": ["IntPair", "conv2d"]}',
     "no cell for solutions/conv.py's _pair"),
    ('### BEGIN HIDDEN TESTS\ncheck("init")\n### END HIDDEN TESTS', 'check("init")',
     "hides its grading call"),
    ('kit={"fill": ["filter_grid"]}', 'kit={"fill": ["filter_grid", "conv2d"]}',
     "no top-level 'conv2d'"),
])
def test_a_broken_outline_is_refused_in_one_line(tmp_path, old, new, message):
    _needs_jupytext()
    with pytest.raises(NotebookError, match=message):
        render_notebook(_pack_with_outline(tmp_path, old, new))


def test_only_keeps_the_chosen_exercises():
    _needs_jupytext()
    nb = render_notebook(PACK, only=CHEAP)
    ids = [nbgrader_meta(c).get("grade_id") for c in nb["cells"] if c["cell_type"] == "code"]
    assert ids == ["setup", "conv-conv_output_size", "test_conv_output_size",
                   "param_count-code", "test_param_count"]


# -- check(): the test cells' API, on a notebook's namespace ------------------------------------
def _namespace(nb: dict, grade_ids: tuple[str, ...]) -> dict:
    """Run the setup cell and the given cells of ``nb`` like a kernel would (one namespace)."""
    ns: dict = {"__name__": "__main__"}
    for grade_id in ("setup", *grade_ids):
        exec(compile(text(cell(nb, grade_id)), f"<cell {grade_id}>", "exec"), ns)
    return ns


def test_check_grades_the_notebooks_definitions_silently(capfd):
    """Full points for the reference; partial, on stdout only, for a bug; nothing on stderr."""
    good = _namespace(solved(load()), ("conv-conv_output_size",))
    assert check("conv_output_size", namespace=good) == 6.0
    buggy = _namespace(solved(load(), (SIZE_NO_DILATION,)), ("conv-conv_output_size",))
    score = check("conv_output_size", namespace=buggy)
    assert 0 < score < 6
    public = self_check("conv_output_size", namespace=buggy)
    assert public is not None and public < 6
    out, err = capfd.readouterr()
    assert err == ""
    assert "conv_output_size: 6 / 6 points (hidden tests)" in out
    assert "FAIL matches the output-size formula on valid geometries" in out
    assert "self-check, public tests only" in out


def test_check_keeps_student_noise_off_stderr_and_scores_a_stub_zero(capfd):
    ns = _namespace(load(), ())

    def conv_output_size(*args, **kwargs):
        print("debugging", file=sys.stderr)
        warnings.warn("careful", stacklevel=1)
        raise NotImplementedError

    ns["conv_output_size"] = conv_output_size
    assert check("conv_output_size", namespace=ns) == 0.0
    out, err = capfd.readouterr()
    assert err == ""
    assert "0 / 6 points" in out and "not implemented yet" in out


def test_check_rejects_an_unknown_exercise():
    with pytest.raises(KeyError, match="unknown exercise id"):
        check("conv3d", namespace={})


# -- a submitted notebook, graded as modules -----------------------------------------------------
def test_extracted_modules_import_across_cells_and_survive_a_broken_cell(tmp_path):
    nb = solved(load())
    sources = notebook_sources(nb, PACK.modules, "day02.ipynb")
    assert "from .blocks import BasicBlock" in sources["resnet"]
    assert "try:" not in sources["conv"]  # conv needs no other module
    cell(nb, "blocks-BasicBlock")["source"] = "class BasicBlock(:\n"  # a syntax error
    cell(nb, "conv-conv2d")["source"] += "\n%timeit conv2d\n!ls\n"  # magics are no Python
    sources = notebook_sources(nb, PACK.modules, "day02.ipynb")
    for module, source in sources.items():
        (tmp_path / f"{module}.py").write_text(source)
    with InProcessHandle(tmp_path, package="kit_nb_test") as handle:
        assert hasattr(handle.module("conv"), "conv2d")
        assert hasattr(handle.module("resnet"), "kaiming_init_")  # blocks is broken, not resnet
        with pytest.raises(ProbeFailure, match="blocks.py could not be imported: SyntaxError"):
            handle.module("blocks")


def test_a_notebook_without_solution_cells_is_no_submission(tmp_path):
    empty = save({"cells": [{"cell_type": "code", "source": "1", "metadata": {}}]},
                 tmp_path / "empty.ipynb")
    with pytest.raises(SubmissionError, match="no solution cells"), \
            open_submission(empty, PACK.modules):
        pass
    (tmp_path / "junk.ipynb").write_text("not json")
    with pytest.raises(SubmissionError, match="not a notebook"), \
            open_submission(tmp_path / "junk.ipynb", PACK.modules):
        pass


def test_grade_a_notebook_in_the_sandbox(tmp_path):
    """python -m grader grade X.ipynb: the right cell loses points, the other keeps them."""
    nb = save(solved(load(), (BN_BUFFERS,)), tmp_path / "day02.ipynb")
    report = grade(nb, tmp_path / "report", only=CHEAP, quiet=True)
    scores = {row.exercise: row.score for row in report.by_exercise(PACK.ids)}
    assert scores["conv_output_size"] == 6
    assert 0 < scores["param_count"] < 8
    from grader.sandbox.tiers import detect

    assert detect().describe() in report.output  # graded in the sandbox, tier named


def test_a_folder_or_zip_holding_only_a_notebook_is_that_notebook(tmp_path):
    """A notebook class through the batch or an LMS: alice/day02.ipynb, or a zip of it."""
    import zipfile

    nb = save(solved(load(), (BN_BUFFERS,)), tmp_path / "alice" / "day02.ipynb")
    with zipfile.ZipFile(tmp_path / "bob.zip", "w") as zf:
        zf.write(nb, "bob/day02.ipynb")
    for submission in (tmp_path / "alice", tmp_path / "bob.zip"):
        with open_submission(submission, PACK.modules) as folder:
            assert {"conv.py", "param_count.py"} <= {p.name for p in folder.iterdir()}
            assert "4 * num_features" in (folder / "param_count.py").read_text()
    (tmp_path / "alice" / "conv.py").write_text("")  # modules present: the folder as it is
    with open_submission(tmp_path / "alice", PACK.modules) as folder:
        assert folder == tmp_path / "alice"
