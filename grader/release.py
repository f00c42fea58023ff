"""From the reference to what students get: the stubs, and the student release.

    python -m grader stubs [--check]     regenerate exercises/ from solutions/ (or report drift)
    python -m grader release OUT         write the student distribution to OUT

A *solution region* is the lines between a whole line ``### BEGIN SOLUTION`` and a whole line
``### END SOLUTION`` (indentation allowed) inside a function or method of ``solutions/<module>.py``.
The stub keeps every other line verbatim (module docstring, imports, signatures, docstrings,
class attributes, ``super().__init__()``) and puts in place of each region ONE line at the
marker's indentation: ``raise NotImplementedError("exercise <id>: write <qualname> (see ...)")``;
the exercise is the one the pack manifest says owns that function (``Pack.owner``).

The leak rule (``solution_fingerprints``). A release must not hold solution text. Every line of
every region is *normalised* (surrounding and repeated whitespace removed) twice: as written,
and as its code part (trailing ``# comment`` cut off, quote-aware); a comment-only line gives
its comment. A normalised line is a fingerprint when it is *distinctive*: at least 16 characters
and at least 3 words (identifiers or numbers) that are not Python keywords. That leaves out
idioms any PyTorch file may hold and that give nothing away (``return model``,
``loss.backward()``, ``optimizer.step()``, ``with torch.no_grad():``, ``batches += 1``) and
keeps every line that carries an idea of a solution (``out = out + self.shortcut(x)``,
``r += d * (k - 1) * jump``). Every line of every released file, normalised the same way (also
with a doctest ``>>>``/``...`` prompt removed), must match no fingerprint, and no line may hold
the marker words. It catches copied lines, with or without their indentation or comments; it
cannot catch a paraphrase, which is why the release ships an explicit list of files, not a tree.
"""

from __future__ import annotations

import ast
import keyword
import re
import shutil
import tempfile
import textwrap
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from string import Template

from grader.manifest import Pack
from grader.packs import DEFAULT_PACK, load_pack

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
MARKER_WORDS = ("BEGIN SOLUTION", "END SOLUTION")
REPO = Path(__file__).resolve().parents[1]
TEMPLATES = Path(__file__).resolve().parent / "templates"
STUB_HEADER = ("# Student stub generated from the reference by `python -m grader stubs`; "
               "fill in the NotImplementedError parts.")

# The part of the grader the self-check plugin needs (plus the pack's manifest, added per pack).
# Nothing else ships: no solutions, no hidden graders or strategies, no sandbox.
PUBLIC_GRADER_FILES = (
    "grader/__init__.py", "grader/plugin.py", "grader/manifest.py", "grader/handle.py",
    "grader/probes.py", "grader/results.py", "grader/feedback.py", "grader/packs/__init__.py",
    "grader/figures.py",  # pytest exercises --figures DIR
    "grader/versions.py",  # results.json's extra_data.versions (what drew the cases)
    "grader/limits.py", "grader/config.py",  # the plugin's and the handles' settings
    "grader/text.py",  # what the reports show of a student's text (the plugin's report)
    # the in-process handle calls student code through the worker's guards
    "grader/sandbox/__init__.py", "grader/sandbox/worker/__init__.py",
    "grader/sandbox/worker/guard.py", "grader/sandbox/worker/wire.py",
)
# Per pack, the measurement probes the figures need (no thresholds, no solutions).
PUBLIC_PACK_FILES = ("__init__.py", "probes/__init__.py")
# and, for a pack that declares figures (pytest exercises --figures DIR), its drawing module
# and the probes it measures with
FIGURE_PROBES = "probes/figures.py"
# Imports inside the public files that run only while grading, never in the self-check:
# handle.open_handle imports the sandbox only for --kit-handle sandbox/fallback,
# handle.reference_cache the tiers and the grader version only for a grade's reference, and
# the plugin the static check only for a grade.
GRADING_ONLY_IMPORTS = frozenset({"grader.sandbox", "grader.sandbox.client",
                                  "grader.sandbox.tiers", "grader.batch.store",
                                  "grader.static_check"})
COPY_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".hypothesis")
MIN_FINGERPRINT_CHARS = 16
MIN_FINGERPRINT_WORDS = 3
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+")
_PROMPT = re.compile(r"^(>>>|\.\.\.)\s")


class ReleaseError(ValueError):
    """Why no stubs or no release could be made, in one line (the CLI prints it as ``error:``)."""


# -- regions ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Region:
    """One solution region: marker lines (1-based), the marker's indentation, its function."""

    begin: int
    end: int
    indent: str
    qualname: str  # "conv2d", "BasicBlock.forward"
    see: str  # where the student reads what to write: "the docstring above", ...


def find_regions(source: str, filename: str) -> list[Region]:
    """The solution regions of one solutions file, each tied to the function that encloses it."""
    lines = source.splitlines()
    spans = _marker_spans(lines, filename)
    if not spans:
        raise ReleaseError(f"{filename}: no '{BEGIN}' / '{END}' markers, so no stub can be made")
    try:
        tree = ast.parse(source, filename)
    except SyntaxError as exc:
        raise ReleaseError(f"{filename} line {exc.lineno}: not valid Python ({exc.msg})") from None
    functions = list(_functions(tree, ""))
    module_doc = ast.get_docstring(tree) is not None
    return [_region(b, e, indent, lines, functions, module_doc, filename)
            for b, e, indent in spans]


def _marker_spans(lines: list[str], filename: str) -> list[tuple[int, int, str]]:
    spans: list[tuple[int, int, str]] = []
    open_at, indent = 0, ""
    for no, line in enumerate(lines, 1):
        text = line.strip()
        if text == BEGIN:
            if open_at:
                raise ReleaseError(f"{filename} line {no}: nested '{BEGIN}' (the region opened "
                                   f"on line {open_at} has no '{END}' yet)")
            open_at, indent = no, line[: len(line) - len(line.lstrip())]
        elif text == END:
            if not open_at:
                raise ReleaseError(f"{filename} line {no}: '{END}' without a '{BEGIN}' before it")
            if line[: len(line) - len(line.lstrip())] != indent:
                raise ReleaseError(f"{filename} line {no}: '{END}' is indented differently from "
                                   f"its '{BEGIN}' on line {open_at}")
            spans.append((open_at, no, indent))
            open_at = 0
    if open_at:
        raise ReleaseError(f"{filename} line {open_at}: '{BEGIN}' is never closed by '{END}'")
    return spans


def _functions(node: ast.AST, prefix: str) -> Iterator[
        tuple[str, ast.FunctionDef | ast.AsyncFunctionDef, ast.ClassDef | None]]:
    """(qualname, function node, enclosing class node or None) for every def, nested too."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.ClassDef):
            for name, fn, cls in _functions(child, f"{prefix}{child.name}."):
                yield name, fn, cls if cls is not None else child
        elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            yield f"{prefix}{child.name}", child, None
            yield from _functions(child, f"{prefix}{child.name}.")
        else:
            yield from _functions(child, prefix)


def _region(begin: int, end: int, indent: str, lines: list[str],
            functions: list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef,
                                  ast.ClassDef | None]], module_doc: bool,
            filename: str) -> Region:
    code = [no for no in range(begin + 1, end)
            if lines[no - 1].strip() and not lines[no - 1].strip().startswith("#")]
    if not code:
        raise ReleaseError(f"{filename} line {begin}: empty solution region")
    # the innermost def that starts before the region and ends at or after its last code line
    inside = [(name, fn, cls) for name, fn, cls in functions
              if fn.lineno < begin and code[-1] <= (fn.end_lineno or 0)]  # ast.parse sets it
    if not inside:
        raise ReleaseError(f"{filename} line {begin}: solution region is not inside a function "
                           "(regions may only replace the body of a function or method)")
    name, fn, cls = max(inside, key=lambda t: t[1].lineno)
    if ast.get_docstring(fn) is not None:
        see = "the docstring above"
    elif cls is not None and ast.get_docstring(cls) is not None:
        see = "the class docstring"
    else:
        see = "the module docstring" if module_doc else "the lesson"
    return Region(begin, end, indent, name, see)


# -- stubs --------------------------------------------------------------------------------------
def make_stub(source: str, module: str, pack: Pack, *, filename: str | None = None) -> str:
    """The student stub of one solutions file: each region becomes one NotImplementedError."""
    filename = filename or f"{pack.solutions_package}/{module}.py"
    lines = source.splitlines(keepends=True)
    out, pos = [STUB_HEADER + "\n"], 0
    for region in find_regions(source, filename):
        out += lines[pos: region.begin - 1]
        hint = _hint(region, module, pack, filename)
        out.append(f'{region.indent}raise NotImplementedError("{hint}")\n')
        pos = region.end
    out += lines[pos:]
    stub = "".join(out)
    try:
        ast.parse(stub, filename)
    except SyntaxError as exc:  # e.g. markers indented less than the code they wrap
        raise ReleaseError(f"{filename}: the stub would not parse (stub line {exc.lineno}: "
                           f"{exc.msg}); indent the markers like the code they wrap") from None
    return stub


def _hint(region: Region, module: str, pack: Pack, filename: str) -> str:
    try:
        exercise = pack.owner(module, region.qualname)
    except KeyError as exc:
        raise ReleaseError(f"{filename} line {region.begin}: {exc.args[0]}") from None
    return f"exercise {exercise.id}: write {region.qualname} (see {region.see})"


def init_text(pack: Pack) -> str:
    """The student package's ``__init__.py``: a docstring saying what the package is."""
    modules = textwrap.fill(", ".join(f"{m}.py" for m in pack.modules) + ".", width=96)
    return (f'"""{pack.title}: the package the grader imports as '
            f'``{pack.submission_package}``.\n\n'
            "Your code goes in its modules, in place of each ``raise NotImplementedError(...)``:\n"
            f"{modules}\n\n"
            "Keep the names and signatures: the grader calls them. Check your work with\n"
            f"``pytest {pack.submission_package}``.\n"
            '"""\n')


def solutions_dir_of(pack: Pack, solutions_dir: str | Path | None = None) -> Path:
    if solutions_dir is not None:
        path = Path(solutions_dir)
    else:
        try:
            path = pack.solutions_dir
        except FileNotFoundError:
            path = REPO / pack.solutions_package
    if not path.is_dir():
        raise ReleaseError(f"no solutions folder at {path}: stubs are made from the reference")
    return path


def _solution_sources(pack: Pack, solutions_dir: str | Path | None) -> Iterator[tuple[str, Path]]:
    folder = solutions_dir_of(pack, solutions_dir)
    for module in pack.modules:
        path = folder / f"{module}.py"
        if not path.is_file():
            raise ReleaseError(f"{path} is missing: pack {pack.name} lists module {module!r}")
        yield module, path


def render_stubs(pack: Pack, solutions_dir: str | Path | None = None) -> dict[str, str]:
    """File name -> text of the student package: ``__init__.py`` and one stub per module."""
    files = {"__init__.py": init_text(pack)}
    for module, path in _solution_sources(pack, solutions_dir):
        files[f"{module}.py"] = make_stub(path.read_text(encoding="utf-8"), module, pack,
                                          filename=f"{path.parent.name}/{path.name}")
    return files


def generate_stubs(out_dir: Path, pack: Pack, *,
                   solutions_dir: str | Path | None = None) -> list[Path]:
    """Write the student package (``__init__.py`` and the stubs) into ``out_dir``."""
    files = render_stubs(pack, solutions_dir)  # all or nothing: render before writing
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        (out_dir / name).write_text(text, encoding="utf-8")
        written.append(out_dir / name)
    return written


def drifted_stubs(out_dir: Path, pack: Pack, *,
                  solutions_dir: str | Path | None = None) -> list[Path]:
    """The files of ``out_dir`` that are missing or differ from what the generator makes now."""
    drifted = []
    for name, text in render_stubs(pack, solutions_dir).items():
        path = Path(out_dir) / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            drifted.append(path)
    return drifted


# -- the leak rule ------------------------------------------------------------------------------
def _code_part(line: str) -> str:
    """``line`` without its trailing comment (a ``#`` outside string quotes starts one)."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote and line[i - 1] != "\\":
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "#":
            return line[:i]
    return line


def _forms(line: str) -> set[str]:
    """The normalised forms of a line: as written, and its code part (or comment alone)."""
    text = " ".join(line.split())
    code = " ".join(_code_part(text).split())
    forms = {text, code}
    if not code and text.startswith("#"):
        forms.add(text.lstrip("#").strip())
    return {f for f in forms if f}


def is_distinctive(text: str) -> bool:
    """A fingerprint needs >= 16 characters and >= 3 words that are not Python keywords."""
    words = [w for w in _WORD.findall(text) if not keyword.iskeyword(w)]
    return len(text) >= MIN_FINGERPRINT_CHARS and len(words) >= MIN_FINGERPRINT_WORDS


def solution_fingerprints(pack: Pack,
                          solutions_dir: str | Path | None = None) -> dict[str, str]:
    """Distinctive normalised region line -> where it comes from ("solutions/blocks.py line 40")."""
    prints: dict[str, str] = {}
    for _, path in _solution_sources(pack, solutions_dir):
        name = f"{path.parent.name}/{path.name}"
        lines = path.read_text(encoding="utf-8").splitlines()
        for begin, end, _ in _marker_spans(lines, name):
            for no in range(begin + 1, end):
                for form in _forms(lines[no - 1]):
                    if is_distinctive(form):
                        prints.setdefault(form, f"{name} line {no}")
    return prints


def find_leaks(root: Path, fingerprints: dict[str, str]) -> list[str]:
    """One line per leak in the files under ``root``: markers or fingerprinted solution lines."""
    leaks = []
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        text = path.read_bytes().decode("utf-8", errors="replace")
        for no, line in enumerate(text.splitlines(), 1):
            if any(word in line for word in MARKER_WORDS):
                leaks.append(f"{rel} line {no} holds a solution marker")
                continue
            stripped = _PROMPT.sub("", line.strip())
            hit = next((fingerprints[f] for f in _forms(stripped) if f in fingerprints), None)
            if hit:
                leaks.append(f"{rel} line {no} repeats {hit}")
    return leaks


# -- the release --------------------------------------------------------------------------------
def public_grader_files(pack: Pack) -> tuple[str, ...]:
    """The grader files a release ships, as paths inside it (and inside the kit's tree)."""
    return PUBLIC_GRADER_FILES + tuple(_public_pack_files(pack))


def _public_pack_files(pack: Pack) -> dict[str, Path]:
    """The pack's shipped files: release path -> where the pack has it (any folder on the
    pack path, not only grader/packs/)."""
    names = list(PUBLIC_PACK_FILES)
    if pack.figures:
        prefix = f"grader.packs.{pack.name}."
        if not pack.figures.startswith(prefix):
            raise ReleaseError(f"pack {pack.name}: figures={pack.figures!r} is not a module of "
                               f"the pack ({prefix}...)")
        names.append(pack.figures.removeprefix(prefix).replace(".", "/") + ".py")
        if (pack.root / FIGURE_PROBES).is_file():
            names.append(FIGURE_PROBES)
    return {f"grader/packs/{pack.name}/{name}": pack.root / name for name in names}


def _source_of(rel: str, repo: Path, pack: Pack) -> Path:
    """Where the release path ``rel`` (one of public_grader_files) comes from."""
    return _public_pack_files(pack).get(rel) or repo / rel


def _module_of(rel: str) -> str:
    return rel.removesuffix(".py").removesuffix("/__init__").replace("/", ".")


def _grader_imports(path: Path, module: str) -> Iterator[str]:
    """Every ``grader...`` module ``path`` imports, lazily or not (relative ones resolved)."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")[: len(module.split(".")) - node.level + is_package]
                base = ".".join(parts + ([base] if base else []))
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        yield from (n for n in names if n == "grader" or n.startswith("grader."))


def _is_module(name: str, repo: Path, pack: Pack) -> bool:
    """Whether ``name`` is a module of the kit's tree or of the pack (not a name inside one)."""
    base = f"grader.packs.{pack.name}"
    if name == base or name.startswith(base + "."):
        folder = pack.root.joinpath(*name.removeprefix(base).split(".")[1:])
    else:
        folder = repo.joinpath(*name.split("."))
    return folder.with_suffix(".py").is_file() or (folder / "__init__.py").is_file()


def check_public_imports(repo: Path, pack: Pack, extra: Iterable[Path] = ()) -> None:
    """Fail if a shipped file imports a grader module that the release does not ship."""
    shipped = {_module_of(rel) for rel in public_grader_files(pack)}
    files = [(_source_of(rel, repo, pack), _module_of(rel)) for rel in public_grader_files(pack)]
    files += [(p, p.stem) for p in extra]
    for path, module in files:
        for name in _grader_imports(path, module):
            if _is_module(name, repo, pack) and name not in shipped and \
                    name not in GRADING_ONLY_IMPORTS:
                shown = path.relative_to(repo) if path.is_relative_to(repo) else path
                raise ReleaseError(f"{shown} imports {name}, which the release does not ship "
                                   "(add it to PUBLIC_GRADER_FILES if it is public)")


def _template(template: str | Path, **values: str) -> str:
    path = TEMPLATES / template  # a pack's template is an absolute path
    if not path.is_file():
        raise ReleaseError(f"template {path} is missing")
    return Template(path.read_text(encoding="utf-8")).substitute(values)


def student_readme(pack: Pack) -> str:
    rows = "\n".join(f"| `{ex.id}` | {ex.title} | {', '.join(f'{m}.py' for m in ex.modules)} "
                     f"| {ex.points} | `pytest {pack.submission_package} -m {ex.id}` |"
                     for ex in pack.exercises)
    return _template(pack.readme_template, title=pack.title, exercise_rows=rows,
                     max_score=str(pack.max_score))


STUDENT_CONTRACT = ("## What a student hands in", "## What instructors run")


def student_contract(pack: Pack, repo: Path = REPO) -> str | None:
    """The student-facing part of the pack's contract (what to hand in, the names to keep, the
    exercises and what each depends on); None for a pack without one, or where an installed
    kit has no docs/."""
    if pack.contract is None or not (path := in_repo(pack.contract, repo)).is_file():
        return None
    text = path.read_text(encoding="utf-8")
    start, end = (text.find(marker) for marker in STUDENT_CONTRACT)
    if start < 0 or end < start:
        raise ReleaseError(f"{path} has no section {STUDENT_CONTRACT[0]!r} followed by "
                           f"{STUDENT_CONTRACT[1]!r}: the release takes the part between them")
    return ("# What the grader expects\n\nThe names, signatures and dependencies the grader "
            "relies on. Keep them as they are: the grader calls them.\n\n"
            + text[start:end].rstrip() + "\n")


def release_pyproject(pack: Pack) -> str:
    return _template("pyproject.toml.in", name=f"{pack.name}-exercises",
                     description=f"{pack.title}: exercises and self-check", pack=pack.name,
                     package=pack.submission_package)


def _python_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*.py") if "__pycache__" not in p.parts]


def _write_release(root: Path, repo: Path, pack: Pack, stubs: dict[str, str]) -> None:
    package = root / pack.submission_package
    package.mkdir()
    for name, text in stubs.items():
        (package / name).write_text(text, encoding="utf-8")
    tests = _public_tests(repo, pack)
    if tests is not None:
        shutil.copytree(tests, package / "tests", ignore=COPY_IGNORE)
    if (repo / "data_utils").is_dir():
        shutil.copytree(repo / "data_utils", root / "data_utils", ignore=COPY_IGNORE)
    for rel in public_grader_files(pack):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_source_of(rel, repo, pack), root / rel)
    (root / "README.md").write_text(student_readme(pack), encoding="utf-8")
    contract = student_contract(pack, repo)
    if contract is not None:
        (root / "docs").mkdir()
        (root / "docs" / "contract.md").write_text(contract, encoding="utf-8")
    (root / "pyproject.toml").write_text(release_pyproject(pack), encoding="utf-8")


def in_repo(path: Path, repo: Path) -> Path:
    """``path``, read from ``repo`` when it lives in the kit's tree (a test builds a release
    from a copy of the tree); a course's own pack keeps its files where they are."""
    return repo / path.relative_to(REPO) if path.is_relative_to(REPO) else path


def _public_tests(repo: Path, pack: Pack) -> Path | None:
    if pack.public_tests is None:
        return None
    tests = in_repo(pack.public_tests, repo)
    return tests if tests.is_dir() else None


def _check_shape(root: Path, pack: Pack) -> None:
    """Only the public grader files, and no solutions folder anywhere."""
    allowed = set(public_grader_files(pack))
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if pack.solutions_package in path.relative_to(root).parts:
            raise ReleaseError(f"the release would ship {rel}")
        if path.is_file() and rel.startswith("grader/") and rel not in allowed:
            raise ReleaseError(f"the release would ship {rel}, which is not public")


def build_release(out: str | Path, pack_name: str = DEFAULT_PACK, force: bool = False, *,
                  repo: str | Path | None = None,
                  solutions_dir: str | Path | None = None) -> Path:
    """Write the student distribution to ``out``; it never holds solution text.

    The release is built in a temporary folder beside ``out``, checked (shape, imports,
    leaks), and only then moved into place, so a failed build leaves ``out`` untouched.
    """
    pack = load_pack(pack_name)
    repo = Path(repo).resolve() if repo is not None else REPO
    out = Path(out).resolve()
    if out.exists() and not force:
        raise ReleaseError(f"{out} already exists; pass --force to replace it")
    if out == repo or repo.is_relative_to(out):
        raise ReleaseError(f"refusing to write the release over {out}: it holds the kit itself")
    solutions = solutions_dir if solutions_dir is not None else \
        in_repo(solutions_dir_of(pack), repo)
    stubs = render_stubs(pack, solutions)  # nothing is written unless every stub can be made
    prints = solution_fingerprints(pack, solutions)
    extra = [p for d in (_public_tests(repo, pack), repo / "data_utils")
             if d is not None and d.is_dir() for p in _python_files(d)]
    check_public_imports(repo, pack, extra)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        _write_release(staging, repo, pack, stubs)
        _check_shape(staging, pack)
        leaks = find_leaks(staging, prints)
        if leaks:
            more = f" (and {len(leaks) - 1} more)" if len(leaks) > 1 else ""
            raise ReleaseError(f"the release would leak solution text: {leaks[0]}{more}")
        if out.is_dir() and not out.is_symlink():
            shutil.rmtree(out)
        elif out.exists() or out.is_symlink():
            out.unlink()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out
