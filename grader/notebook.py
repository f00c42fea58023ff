"""The assignment as an nbgrader notebook, from one source, and notebooks back into modules.

    python -m grader notebook [--check]           write notebooks/<pack>.ipynb (or report drift)
    python -m grader nbgrader-course DIR          nbgrader_config.py + source/<pack>/<pack>.ipynb
    python -m grader grade SUBMISSION.ipynb       grade a notebook in the sandbox

**The source notebook** is the pack's jupytext percent-format outline
(``grader/packs/<pack>/notebook/outline.py``: markdown from the lesson, ``# %% nbgrader={...}``
cell headers) with its code cells filled from ``solutions/``. A code cell whose header says
``kit={"fill": ["conv2d", ...]}`` gets the source of those top-level definitions of the module
its ``grade_id`` names (``"conv-conv2d"`` -> ``solutions/conv.py``), solution regions and all,
so ``nbgrader generate_assignment`` turns each region into ``raise NotImplementedError()``;
``kit={"fill": "imports"}`` gets the imports of every reference module. The build checks what
nbgrader cannot: every definition of every reference module is in exactly one cell (the
regions parsed by ``grader.release.find_regions``), test cells are worth exactly the pack's
points per exercise and hide their grading call between ``### BEGIN HIDDEN TESTS`` and
``### END HIDDEN TESTS``. Building needs the ``[nbgrader]`` extra (jupytext).

**A submitted notebook** becomes the module layout again (``notebook_to_package``): each
solution cell goes to the module its ``grade_id`` names, after the notebook's ``setup`` cell,
with ``from .<module> import <name>`` for names other modules' cells define. So
``python -m grader grade`` grades a notebook in its sandbox; this needs only the standard
library, not the extra.
"""

from __future__ import annotations

import ast
import copy
import json
import sys
from pathlib import Path
from typing import Any

from grader import limits
from grader.manifest import Pack
from grader.packs import DEFAULT_PACK
from grader.release import REPO, ReleaseError, find_regions, solutions_dir_of
from grader.submission import SubmissionError, read_regular_file
from grader.text import one_line

BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
SETUP_ID = "setup"
NBGRADER_DEFAULTS = {"grade": False, "locked": False, "solution": False, "schema_version": 3,
                     "task": False}
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
EXTRACT_HEADER = ("# Extracted from the notebook {name} by python -m grader: its setup cell and "
                  "the solution cells of this module.\n")
CELL_TIMEOUT_S = limits.CELL_TIMEOUT_S  # nbgrader's Execute.timeout (grader/limits.py)
NAMES_MAX_CHARS = 2 << 20  # the sandbox stages no module larger (sandbox/client.py)


class NotebookError(ReleaseError):
    """Why no notebook could be built, in one line (the CLI prints it as ``error:``)."""


# -- building the source notebook ----------------------------------------------------------------
def outline_path(pack: Pack) -> Path:
    return pack.root / "notebook" / "outline.py"


def notebook_path(pack: Pack) -> Path:
    """``notebooks/<pack>.ipynb`` beside the pack's solutions (the kit's own for Day 2)."""
    try:
        return pack.solutions_dir.parent / "notebooks" / f"{pack.name}.ipynb"
    except FileNotFoundError:
        return REPO / "notebooks" / f"{pack.name}.ipynb"


def module_of(grade_id: str) -> str:
    """``"conv-conv2d"`` -> ``"conv"``: a solution cell's grade_id starts with its module."""
    return grade_id.split("-", 1)[0]


def _top_level(tree: ast.Module) -> dict[str, ast.stmt]:
    """Name -> statement for each top-level def, class and assignment."""
    found: dict[str, ast.stmt] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            found[node.name] = node
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    found[target.id] = node
    return found


def _definition_source(lines: list[str], node: ast.stmt) -> str:
    """The definition's lines, with the comments that close its body (``### END SOLUTION``
    follows the last statement, so the AST's end line stops short of it)."""
    decorators = getattr(node, "decorator_list", [])
    start = min([node.lineno] + [d.lineno for d in decorators])
    end = node.end_lineno
    assert end is not None  # set on every node ast.parse makes
    while end < len(lines) and lines[end].strip().startswith("#") \
            and len(lines[end]) - len(lines[end].lstrip()) > node.col_offset:
        end += 1
    return "\n".join(lines[start - 1: end])


class _Reference:
    """The reference modules, parsed once: sources, top-level definitions, imports."""

    def __init__(self, pack: Pack, solutions_dir: str | Path | None) -> None:
        folder = solutions_dir_of(pack, solutions_dir)
        self.lines: dict[str, list[str]] = {}
        self.defs: dict[str, dict[str, ast.stmt]] = {}
        self.trees: dict[str, ast.Module] = {}
        self.regions: dict[str, int] = {}
        for module in pack.modules:
            path = folder / f"{module}.py"
            if not path.is_file():
                raise NotebookError(f"{path} is missing: pack {pack.name} lists module {module!r}")
            source = path.read_text(encoding="utf-8")
            self.regions[module] = len(find_regions(source, f"{folder.name}/{path.name}"))
            self.trees[module] = tree = ast.parse(source, str(path))
            self.lines[module] = source.splitlines()
            self.defs[module] = _top_level(tree)

    def fill(self, module: str, names: list[str], where: str) -> str:
        if module not in self.defs:
            raise NotebookError(f"{where}: no module {module!r} in the pack (grade_id must "
                                "start with a module name and '-')")
        parts = []
        for name in names:
            node = self.defs[module].get(name)
            if node is None:
                raise NotebookError(f"{where}: solutions/{module}.py has no top-level {name!r}")
            parts.append(_definition_source(self.lines[module], node))
        return "\n\n\n".join(parts)

    def imports(self) -> str:
        """Every absolute import of the reference modules, merged and sorted like isort."""
        plain: set[str] = set()
        froms: dict[str, set[str]] = {}
        for tree in self.trees.values():
            for node in tree.body:
                if isinstance(node, ast.Import):
                    plain |= {ast.unparse(ast.Import(names=[a])) for a in node.names}
                elif isinstance(node, ast.ImportFrom) and not node.level and node.module \
                        and node.module != "__future__":
                    froms.setdefault(node.module, set()).update(
                        ast.unparse(a) for a in node.names)
        sections = []
        for stdlib in (True, False):
            def ours(module: str, stdlib: bool = stdlib) -> bool:
                return (module.split(".")[0] in sys.stdlib_module_names) == stdlib

            block = sorted((line for line in plain if ours(line.split()[1])),
                           key=lambda line: line.split()[1])
            block += [f"from {m} import {', '.join(sorted(froms[m], key=_isort_key))}"
                      for m in sorted(froms) if ours(m)]
            if block:
                sections.append("\n".join(block))
        return "\n\n".join(sections)


def _isort_key(name: str) -> tuple[int, str]:
    """isort's order-by-type: CONSTANTS, then Classes, then everything else."""
    bare = name.split(" as ")[0]
    kind = 0 if bare.isupper() and len(bare) > 1 else 1 if bare[:1].isupper() else 2
    return kind, bare


def _read_outline(pack: Pack) -> Any:
    try:
        import jupytext
    except ImportError:
        raise NotebookError("building the notebook needs jupytext: pip install "
                            "'dl-exercise-kit[nbgrader]'") from None
    path = outline_path(pack)
    if not path.is_file():
        raise NotebookError(f"pack {pack.name} has no notebook outline at {path}")
    return jupytext.reads(path.read_text(encoding="utf-8"), fmt="py:percent")


def _check_test_cell(cell: Any, pack: Pack, grade_id: str, where: str) -> str:
    exercise = grade_id.removeprefix("test_")
    try:
        points = pack.exercise(exercise).points
    except KeyError:
        raise NotebookError(f"{where}: a test cell's grade_id is test_<exercise id>; "
                            f"{exercise!r} is not one") from None
    meta = cell.metadata["nbgrader"]
    if meta.get("points") != points:
        raise NotebookError(f"{where}: {exercise} is worth {points} points in the pack, the "
                            f"cell says {meta.get('points')}")
    lines = [line.strip() for line in cell.source.splitlines()]
    if BEGIN_HIDDEN not in lines or END_HIDDEN not in lines:
        raise NotebookError(f"{where}: a test cell hides its grading call between "
                            f"'{BEGIN_HIDDEN}' and '{END_HIDDEN}'")
    hidden = lines[lines.index(BEGIN_HIDDEN) + 1: lines.index(END_HIDDEN)]
    call = check_call(pack, exercise)
    if not hidden or hidden[-1] != call or lines[-1] != END_HIDDEN:
        # the cell's last expression is its score in nbgrader: it must be the hidden check
        raise NotebookError(f"{where}: the hidden part must end with {call} and the cell with "
                            "the end marker")
    return exercise


def check_call(pack: Pack, exercise: str) -> str:
    """The hidden grading call of a test cell: the default pack's, or one naming its pack."""
    if pack.name == DEFAULT_PACK:
        return f'check("{exercise}")'
    return f'check("{exercise}", pack="{pack.name}")'


def _owners(pack: Pack, module: str, names: list[str]) -> set[str]:
    owners = set()
    for name in names:
        try:
            owners.add(pack.owner(module, name).id)
        except KeyError:  # a helper (IntPair, _pair): it goes wherever its cell goes
            pass
    return owners


def render_notebook(pack: Pack, *, only: tuple[str, ...] = (),
                    solutions_dir: str | Path | None = None) -> dict[str, Any]:
    """The nbgrader source notebook (nbformat 4 as a dict); ``only`` keeps just the solution
    and test cells of those exercises (the markdown stays)."""
    for ex_id in only:
        pack.exercise(ex_id)  # a typo is a usage error
    reference = _Reference(pack, solutions_dir)
    outline = _read_outline(pack)
    filled: dict[str, set[str]] = {m: set() for m in pack.modules}
    regions = dict.fromkeys(pack.modules, 0)
    tested: set[str] = set()
    cells = []
    for no, cell in enumerate(outline.cells, 1):
        cell = copy.deepcopy(cell)
        where = f"{outline_path(pack).name} cell {no}"
        kit = cell.metadata.pop("kit", {})
        keep = True
        if cell.cell_type == "code" and "nbgrader" in cell.metadata:
            meta = {**NBGRADER_DEFAULTS, **cell.metadata["nbgrader"]}
            cell.metadata["nbgrader"] = meta
            grade_id = meta.get("grade_id", "")
            if kit.get("fill") == "imports":
                cell.source = reference.imports()
            elif kit.get("fill"):
                module = module_of(grade_id)
                cell.source = reference.fill(module, kit["fill"], where)
                # whole regions only: nbgrader would leave a half-marked one in the release
                regions[module] += len(find_regions(cell.source, where))
                for name in kit["fill"]:
                    if name in filled.get(module, set()):
                        raise NotebookError(f"{where}: {module}.{name} is in two cells")
                    filled[module].add(name)
                owners = _owners(pack, module, kit["fill"])
                keep = not only or bool(owners & set(only))
            elif meta["grade"]:
                exercise = _check_test_cell(cell, pack, grade_id, where)
                if exercise in tested:
                    raise NotebookError(f"{where}: a second test cell for {exercise}")
                tested.add(exercise)
                keep = not only or exercise in only
        if keep:
            cells.append(cell)
    _check_complete(pack, reference, filled, tested)
    lost = [m for m in pack.modules if regions[m] != reference.regions[m]]
    if lost:
        raise NotebookError(f"solutions/{lost[0]}.py has {reference.regions[lost[0]]} solution "
                            f"regions, its notebook cells {regions[lost[0]]}")
    return _notebook(cells, pack)


def _check_complete(pack: Pack, reference: _Reference, filled: dict[str, set[str]],
                    tested: set[str]) -> None:
    for module in pack.modules:
        missing = sorted(set(reference.defs[module]) - filled[module])
        if missing:
            raise NotebookError(f"the outline has no cell for solutions/{module}.py's "
                                f"{', '.join(missing)}")
    untested = [e for e in pack.ids if e not in tested]
    if untested:
        raise NotebookError(f"the outline has no test cell for {', '.join(untested)}")


def _notebook(cells: list[Any], pack: Pack) -> dict[str, Any]:
    """nbformat 4.5 with ids that do not change from one build to the next."""
    out = []
    for no, cell in enumerate(cells):
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        data = {"cell_type": cell.cell_type, "id": grade_id or f"{cell.cell_type}-{no}",
                "metadata": dict(cell.metadata), "source": cell.source}
        if cell.cell_type == "code":
            data.update(execution_count=None, outputs=[])
        out.append(data)
    metadata = {"kernelspec": KERNELSPEC, "language_info": {"name": "python"},
                "kit": {"pack": pack.name, "generated_by": "python -m grader notebook"}}
    return {"cells": out, "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}


def notebook_text(nb: dict[str, Any]) -> str:
    """The notebook as nbformat writes it (validated), so a drift check compares text."""
    import nbformat

    node = nbformat.from_dict(nb)
    nbformat.validate(node)
    return nbformat.writes(node) + "\n"


def write_notebook(pack: Pack, out: Path | None = None, **options: Any) -> Path:
    text = notebook_text(render_notebook(pack, **options))  # all or nothing
    out = out or notebook_path(pack)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out


def notebook_drifted(pack: Pack, path: Path | None = None) -> bool:
    """True when the committed notebook differs from what the outline and solutions make now."""
    path = path or notebook_path(pack)
    text = notebook_text(render_notebook(pack))
    return not path.is_file() or path.read_text(encoding="utf-8") != text


# -- an nbgrader course directory ---------------------------------------------------------------
NBGRADER_CONFIG = '''\
"""nbgrader configuration of the {title} course (written by python -m grader nbgrader-course).

Run nbgrader from this folder:
    nbgrader generate_assignment {assignment}   source/ -> release/ (no solutions, no hidden tests)
    python -m grader nbgrader-autograde . {assignment}
                                      submitted/ -> autograded/ and the gradebook; student code
                                      runs only in the kit's sandbox (marks that count)
    nbgrader generate_feedback {assignment}     feedback/<student>/ (hidden tests removed)
    nbgrader export                             grades.csv
Plain `nbgrader autograde {assignment}` also works, in a kernel that has the kit installed (the
test cells call its graders), but it runs student code unsandboxed: formative use only (see
the kit's README, "Notebook courses").
"""

import os

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import ClearHiddenTests, GetGrades

HERE = os.path.dirname(os.path.abspath(__file__))
c = get_config()  # noqa: F821 (traitlets defines it)

c.CourseDirectory.course_id = {course_id!r}
c.CourseDirectory.root = HERE
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(HERE, "gradebook.db")
# A student who deletes a test cell gets it back (and graded) instead of losing its points.
c.OverwriteCells.add_missing_cells = True
# Seconds per cell; the default 30 is too short for the smoke test's training run on a CPU.
c.Execute.timeout = {timeout}
# Feedback shows the graders' messages but not the hidden test lines.
c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, CSSHTMLHeaderPreprocessor]
'''


def make_nbgrader_course(root: str | Path, pack: Pack, *, only: tuple[str, ...] = (),
                         force: bool = False, course_id: str | None = None) -> list[Path]:
    """Write ``nbgrader_config.py`` and ``source/<pack>/<pack>.ipynb`` under ``root``."""
    root = Path(root)
    config = root / "nbgrader_config.py"
    source = root / "source" / pack.name / f"{pack.name}.ipynb"
    existing = [p for p in (config, source) if p.exists()]
    if existing and not force:
        raise NotebookError(f"{existing[0]} already exists; pass --force to replace it")
    text = notebook_text(render_notebook(pack, only=only))
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text(text, encoding="utf-8")
    config.write_text(NBGRADER_CONFIG.format(
        title=pack.title, assignment=pack.name, course_id=course_id or f"kit-{pack.name}",
        timeout=CELL_TIMEOUT_S), encoding="utf-8")
    return [config, source]


# -- a submitted notebook, as modules -----------------------------------------------------------
def _cell_text(cell: dict[str, Any]) -> str:
    """A cell's source: a string or a list of strings (nbformat); SubmissionError otherwise."""
    source = cell.get("source", "")
    if isinstance(source, str):
        return source
    if isinstance(source, list) and all(isinstance(line, str) for line in source):
        return "".join(source)
    raise SubmissionError(f"a code cell's source is {type(source).__name__} "
                          f"{one_line(repr(source), 60)}, not text")


def _nbgrader_meta(cell: dict[str, Any]) -> dict[str, Any]:
    """A cell's ``metadata.nbgrader``, or {} when it is missing or not a mapping."""
    metadata = cell.get("metadata")
    meta = metadata.get("nbgrader") if isinstance(metadata, dict) else None
    return meta if isinstance(meta, dict) else {}


def _without_magics(code: str) -> str:
    """IPython magics and shell escapes are no Python: comment them out."""
    return "\n".join(f"# {line}" if line.lstrip().startswith(("%", "!")) else line
                     for line in code.splitlines())


def _names(code: str) -> tuple[set[str], set[str]]:
    """(top-level names ``code`` defines, names it reads but never binds); empty if broken."""
    try:
        tree = ast.parse(code)
        return _names_of(tree)
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # broken, or nested too deep
        return set(), set()


def _names_of(tree: ast.Module) -> tuple[set[str], set[str]]:
    defined = set(_top_level(tree))
    bound: set[str] = set()
    read: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    return defined, read - bound


def notebook_sources(nb: dict[str, Any], modules: tuple[str, ...], name: str = "") -> dict:
    """Module name -> source of that module, from a notebook's setup and solution cells."""
    setup: list[str] = []
    cells: dict[str, list[str]] = {m: [] for m in modules}
    for cell in nb.get("cells", []):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        meta = _nbgrader_meta(cell)
        grade_id = str(meta.get("grade_id", ""))
        if grade_id == SETUP_ID:
            setup.append(_without_magics(_cell_text(cell)))
        elif meta.get("solution") and module_of(grade_id) in cells:
            cells[module_of(grade_id)].append(_without_magics(_cell_text(cell)))
    bodies = {m: "\n\n\n".join(c) for m, c in cells.items() if c}
    # parsed here, in the grader: a module the sandbox would not stage anyway (over its 2 MiB
    # cap) is not parsed either (an AST takes many times its source's memory)
    names = {m: _names(body) if len(body) <= NAMES_MAX_CHARS else (set(), set())
             for m, body in bodies.items()}
    out = {}
    for module, body in bodies.items():
        wanted = names[module][1] - names[module][0]
        imports = [_import_from(other, wanted & names[other][0]) for other in bodies
                   if other != module and wanted & names[other][0]]
        header = EXTRACT_HEADER.format(name=one_line(name, 200)).rstrip()  # a comment
        out[module] = "\n\n".join([header, *setup, *imports, body]) + "\n"
    return out


def _import_from(module: str, names: set[str]) -> str:
    """``from .module import names``; as in the notebook, a broken cell loses only its names."""
    return (f"try:\n    from .{module} import {', '.join(sorted(names))}\n"
            "except Exception:  # the notebook would run on without that cell's names\n"
            "    pass")


def notebook_to_package(path: str | Path, out_dir: str | Path,
                        modules: tuple[str, ...]) -> list[Path]:
    """Write the modules a submitted notebook holds into ``out_dir`` (a module with no cell in
    the notebook is not written, so the report says it is missing). The notebook is data:
    read without following a link, at most ``limits.NOTEBOOK_MAX_BYTES``; whatever is wrong
    with it (JSON nested too deeply, cells of the wrong types) is one SubmissionError."""
    path, out_dir = Path(path), Path(out_dir)
    name = one_line(path.name, 200)
    try:
        data = read_regular_file(path, limits.NOTEBOOK_MAX_BYTES)
    except OSError as exc:
        raise SubmissionError(f"{name} cannot be read ({one_line(exc.strerror or exc, 80)})"
                              ) from None
    if len(data) > limits.NOTEBOOK_MAX_BYTES:
        raise SubmissionError(f"{name} is larger than {limits.NOTEBOOK_MAX_BYTES >> 20} MiB")
    try:
        nb = json.loads(data.decode("utf-8"))
    except ValueError as exc:  # not UTF-8, not JSON, an integer of 5,000 digits
        raise SubmissionError(f"{name} is not a notebook (not JSON: {one_line(exc, 120)})"
                              ) from None
    except (RecursionError, MemoryError):
        raise SubmissionError(f"{name} is not a notebook (its JSON is nested too deeply to "
                              "read)") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise SubmissionError(f"{name} is not a notebook (no list of cells)")
    try:
        sources = notebook_sources(nb, tuple(modules), name)
    except SubmissionError as exc:
        raise SubmissionError(f"{name} is not a notebook this kit can read: {exc}") from None
    except (RecursionError, MemoryError, TypeError, ValueError, AttributeError) as exc:
        raise SubmissionError(f"{name} is not a notebook this kit can read "
                              f"({type(exc).__name__})") from None
    if not sources:
        raise SubmissionError(f"{name} has no solution cells of this assignment (their "
                              "nbgrader grade_id names the module: conv-..., blocks-...)")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "__init__.py").write_text(f"# The solution cells of {name}.\n")  # one line
    written = []
    for module, text in sources.items():  # a lone surrogate is written as its escape
        (out_dir / f"{module}.py").write_bytes(text.encode("utf-8", "backslashreplace"))
        written.append(out_dir / f"{module}.py")
    return written

