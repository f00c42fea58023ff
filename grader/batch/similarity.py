"""Similarity across a class: the pairs of students whose code overlaps beyond what they were given.

    python -m grader similarity OUT --submissions SUBMISSIONS [--allowed DIR] [--threshold T]

    report = compare_class(collect("submissions.zip"), load_pack(), allowed=Path("allowed"))
    write_reports(report, Path("grades"))   # similarity.md, similarity.html, a summary.md line

The batch keeps no sources in OUT, so the students' modules are read again from SUBMISSIONS
with the batch's own ``collect()`` (folders, zips, Canvas zips) and opened as grading opens them
(``open_submission``: the modules at the top or one folder down; a notebook becomes the modules
its solution cells make). Every top-level ``.py`` of that folder but ``__init__.py`` is compared.

Fingerprints are copydetect's (the winnowing approach of MOSS): each module is tokenised and
normalised (names become V, F or O, strings S; comments and layout go), and every k-gram of
``K`` normalised characters is hashed. The window is 1 (copydetect's default: every k-gram is
kept, so the result does not depend on Python's salted string hash). What every student was
given is boilerplate: the stubs, the lesson's printed code (the pack's ``lesson_code.txt``),
the notebook's setup cell and the instructor's ``--allowed`` sources. A student's characters
covered by a boilerplate k-gram are *given*, and so is a boilerplate line (``MIN_LINE``
normalised characters or more) pasted anywhere, since a short lesson line between a stub's
docstring and a student's own code forms k-grams that neither holds. The rest is the
student's *own* code, counted in stretches of at least K characters. The hidden reference
solutions are not boilerplate: students never see them, so two students sharing their text is
a case to look at.

For a pair (A, B), a module of A scores the share of A's own code in it that occurs anywhere
in B (a helper moved to another module still counts), and likewise for B. The pair's score is
the highest module score on either side, among modules sharing at least ``MIN_SHARED``
normalised characters (a few forced lines shared by chance are not a case); the pair is
flagged when that reaches the threshold. Flags are for a person to read: nothing here changes
a score or writes into a student's folder.
"""

from __future__ import annotations

import html
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from grader.batch.collect import Collection, Student, write_files
from grader.manifest import Pack
from grader.results import atomic_write
from grader.submission import SubmissionError, open_submission
from grader.text import md_code, md_fence, visible

K = 25  # k-gram length in normalised characters: copydetect's default noise threshold
MIN_SHARED = 100  # normalised characters (about four statements) a module must share to count
MIN_LINE = 12  # normalised characters: a given line this long is given wherever it is pasted
DEFAULT_THRESHOLD = 0.5
MAX_MODULE_BYTES = 1 << 20  # a larger .py is no hand-written module: skipped, with a note
MD_FRAGMENTS, HTML_FRAGMENTS = 3, 8  # longest shared fragments shown per flagged pair
COLUMN = 58  # characters per side in similarity.md's side-by-side fragments
NEAR_MISSES = 5  # unflagged pairs listed under the threshold, closest first
DETAILED = 50  # flagged pairs shown with fragments (the rest: a table of scores)
SECTION = "## Similarity"
NOTICE = ("These flags point a person at pairs of submissions to read side by side. They are "
          "not a finding of misconduct and change no score: grades, results.json and feedback "
          "are untouched.")


class SimilarityError(ValueError):
    """The comparison cannot run (a bad option or folder); the CLI prints it as ``error:``."""


# -- fingerprints ---------------------------------------------------------------------------------
@dataclass
class Module:
    """One module of one student: its text, normalised, and where it sits in the student's
    fingerprint arrays (modules are laid end to end there, K characters apart)."""

    name: str
    raw: str
    normalised: str
    offsets: np.ndarray  # copydetect's map from normalised to raw positions
    base: int  # position of normalised[0] in the student's arrays
    own: int  # normalised characters of own code: not given, in runs of at least K


@dataclass
class Submission:
    """One student's fingerprints: every own (non-boilerplate) k-gram of every module."""

    student: str
    modules: dict[str, Module]
    pos: np.ndarray  # start of each own k-gram, ascending
    hashes: np.ndarray  # its hash
    given: np.ndarray  # bool per position: covered by a boilerplate k-gram (or between modules)
    unique: np.ndarray  # ``hashes`` sorted, once
    bounds: np.ndarray  # each module's first position (``modules``' order)

    def module_at(self, position: int) -> Module:
        return list(self.modules.values())[int(np.searchsorted(self.bounds, position, "right")) - 1]


def normalise(text: str, name: str) -> tuple[str, np.ndarray]:
    """copydetect's tokenising filter: (normalised code, offsets back to ``text``)."""
    from copydetect.utils import filter_code

    return filter_code(text, name if name.endswith(".py") else f"{name}.py")


def kgram_hashes(normalised: str) -> np.ndarray:
    """The hash of the k-gram starting at each position (none for a text shorter than K)."""
    from copydetect.utils import hashed_kgrams

    if len(normalised) < K:
        return np.zeros(0, dtype=np.int64)
    return hashed_kgrams(normalised, K).astype(np.int64)


def spans(pos: np.ndarray, length: int) -> np.ndarray:
    """Bool per position: covered by one of the k-grams starting at ``pos`` (unique)."""
    edges = np.zeros(length + 1, dtype=np.int32)
    edges[pos] += 1
    edges[pos + K] -= 1
    return np.cumsum(edges[:length]) > 0


def long_runs(mask: np.ndarray, shortest: int) -> np.ndarray:
    """``mask`` without its runs of True shorter than ``shortest``."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    keep = np.zeros(len(mask) + 1, dtype=np.int32)
    long = ends - starts >= shortest
    np.add.at(keep, starts[long], 1)
    np.add.at(keep, ends[long], -1)
    return np.cumsum(keep[:-1]) > 0


def member(values: np.ndarray, sorted_unique: np.ndarray) -> np.ndarray:
    """Bool per value: in ``sorted_unique`` (np.isin without sorting the haystack again)."""
    if not len(sorted_unique):
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_unique, values), len(sorted_unique) - 1)
    return sorted_unique[at] == values


def line_spans(raw: str, normalised: str, offsets: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) in ``normalised`` of each source line that keeps any code."""
    at = np.arange(len(normalised))
    if len(offsets):  # copydetect's map, as compare_files applies it to slice ends
        at = at + offsets[:, 1][np.clip(np.searchsorted(offsets[:, 0], at), 0, len(offsets) - 1)]
    newlines = np.flatnonzero(np.frombuffer(raw.encode("utf-32-le"), dtype=np.uint32) == 10)
    line = np.searchsorted(newlines, at)
    cuts = np.flatnonzero(np.diff(line)) + 1
    bounds = [0, *cuts.tolist(), len(normalised)]
    return [(s, e) for s, e in zip(bounds, bounds[1:], strict=False) if e > s]


@dataclass
class Boilerplate:
    """What every student was given, as k-gram hashes and as whole normalised lines."""

    hashes: np.ndarray  # sorted, once
    lines: set[str]  # normalised lines of at least MIN_LINE characters


def boilerplate(texts: Iterable[tuple[str, str]]) -> Boilerplate:
    parts, lines = [], set()
    for name, text in texts:
        normalised, offsets = normalise(text, name)
        parts.append(kgram_hashes(normalised))
        lines |= {normalised[s:e] for s, e in line_spans(text, normalised, offsets)
                  if e - s >= MIN_LINE}
    hashes = np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)
    return Boilerplate(hashes, lines)


def submission(student: str, sources: dict[str, str], given: Boilerplate) -> Submission:
    """Fingerprint every module, drop the boilerplate k-grams, lay the rest end to end."""
    modules: dict[str, Module] = {}
    pos, hashes, given_masks = [], [], []
    base = 0
    for name, text in sorted(sources.items()):
        normalised, offsets = normalise(text, name)
        h = kgram_hashes(normalised)
        is_given = member(h, given.hashes)
        n = len(normalised)
        covered_given = spans(np.flatnonzero(is_given), n)
        for s, e in line_spans(text, normalised, offsets):  # a given line anywhere
            if e - s >= MIN_LINE and normalised[s:e] in given.lines:
                covered_given[s:e] = True
        own_pos = np.flatnonzero(~is_given)
        own = int(long_runs(spans(own_pos, n) & ~covered_given, K).sum())  # as shared_code
        modules[name] = Module(name, text, normalised, offsets, base, own)
        pos.append(own_pos + base)
        hashes.append(h[~is_given])
        given_masks += [covered_given, np.ones(K, dtype=bool)]  # the gap: no k-gram spans two
        base += n + K
    all_hashes = np.concatenate(hashes) if hashes else np.zeros(0, dtype=np.int64)
    return Submission(student, modules,
                      np.concatenate(pos) if pos else np.zeros(0, dtype=np.int64), all_hashes,
                      np.concatenate(given_masks) if given_masks else np.zeros(0, dtype=bool),
                      np.unique(all_hashes), np.array([m.base for m in modules.values()]))


# -- what the students handed in, and what they were given ----------------------------------------
def student_sources(student: Student, pack: Pack) -> tuple[dict[str, str], list[str]]:
    """(module name -> source, notes) of one student's submission, found as grading finds it.

    Raises SubmissionError when it cannot be opened (a broken notebook), OSError when its
    files cannot be laid out (a file and a folder of one name)."""
    notes: list[str] = []
    sources: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="kit-similarity-") as tmp:
        root = Path(tmp) / "submission"
        root.mkdir()
        write_files(root, student.files)
        with open_submission(root, pack.modules) as folder:
            for path in sorted(folder.glob("*.py")):
                if path.name == "__init__.py" or not path.is_file() or path.is_symlink():
                    continue
                if path.stat().st_size > MAX_MODULE_BYTES:
                    notes.append(f"{path.name} is larger than {MAX_MODULE_BYTES >> 20} MiB and "
                                 "was not compared")
                    continue
                sources[path.stem] = path.read_bytes().decode("utf-8", "replace")
    return sources, notes


def _notebook_setup(pack: Pack) -> str:
    """The notebook's locked setup cell (the same imports for everyone), where the notebook is."""
    import json

    from grader.notebook import SETUP_ID, notebook_path

    try:
        nb = json.loads(notebook_path(pack).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    cells = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"
             and ((c.get("metadata") or {}).get("nbgrader") or {}).get("grade_id") == SETUP_ID]
    return "\n\n".join("".join(c.get("source", "")) for c in cells)


def _allowed_texts(folder: Path) -> list[tuple[str, str]]:
    """The .py files under ``folder`` and the code cells of its notebooks."""
    import json

    texts = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.stat().st_size > MAX_MODULE_BYTES:
            continue
        if path.suffix == ".py":
            texts.append((path.name, path.read_bytes().decode("utf-8", "replace")))
        elif path.suffix == ".ipynb":
            try:
                cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
            except (OSError, ValueError, AttributeError):
                continue
            code = ["".join(c.get("source", "")) for c in cells
                    if isinstance(c, dict) and c.get("cell_type") == "code"]
            texts.append((path.stem + ".py", "\n\n".join(code)))
    return texts


def given_sources(pack: Pack, allowed: Path | None = None) -> dict[str, list[tuple[str, str]]]:
    """What every student was given, by origin: the stubs, the lesson's printed code, the
    notebook's setup cell, and the instructor's allowed folder."""
    from grader.release import REPO

    stubs = REPO / pack.submission_package
    given: dict[str, list[tuple[str, str]]] = {
        f"the stubs ({pack.submission_package}/)": [
            (p.name, p.read_text(encoding="utf-8")) for p in sorted(stubs.glob("*.py"))]}
    lesson = pack.root / "lesson_code.txt"
    if lesson.is_file():
        given["the lesson's printed code"] = [("lesson_code.py", lesson.read_text("utf-8"))]
    setup = _notebook_setup(pack)
    if setup:
        given["the notebook's setup cell"] = [("setup.py", setup)]
    if allowed is not None:
        if not allowed.is_dir():
            raise SimilarityError(f"--allowed {allowed} is not a folder")
        given[f"the allowed sources ({allowed})"] = _allowed_texts(allowed)
    return given


# -- comparing ------------------------------------------------------------------------------------
@dataclass
class ModuleScore:
    module: str
    a: float | None  # share of A's own code in this module found in B; None: A has no such module
    b: float | None
    shared_a: int = 0  # normalised characters
    shared_b: int = 0


@dataclass
class Fragment:
    """One shared stretch, as whole lines of both students' files."""

    length: int  # normalised characters
    module_a: str
    lines_a: tuple[int, int]
    text_a: str
    module_b: str
    lines_b: tuple[int, int]
    text_b: str


@dataclass
class Pair:
    a: str
    b: str
    score: float  # the highest module score on either side (0 when none shares MIN_SHARED)
    overall_a: float  # share of all of A's own code found in B
    overall_b: float
    modules: list[ModuleScore]
    flagged: bool = False
    fragments: list[Fragment] = field(default_factory=list)
    # module name -> highlighted HTML of A's and B's module (flagged pairs only)
    highlighted: dict[str, tuple[str, str]] = field(default_factory=dict)


@dataclass
class Report:
    threshold: float
    students: list[str]  # compared
    pairs: list[Pair]  # every pair sharing own code, highest score first
    not_compared: dict[str, str]  # student -> why
    notes: list[str]
    given: dict[str, int]  # origin -> files discounted as boilerplate
    pair_count: int = 0

    @property
    def flagged(self) -> list[Pair]:
        return [p for p in self.pairs if p.flagged]

    def groups(self) -> list[list[str]]:
        """Students linked by flagged pairs (a chain a-b, b-c is one group), largest first."""
        parent: dict[str, str] = {}

        def root(x: str) -> str:
            while parent.setdefault(x, x) != x:
                x = parent[x]
            return x

        for p in self.flagged:
            parent[root(p.a)] = root(p.b)
        groups: dict[str, list[str]] = {}
        for x in sorted(parent):
            groups.setdefault(root(x), []).append(x)
        return sorted(groups.values(), key=lambda g: (-len(g), g))


def shared_code(x: Submission, y: Submission) -> tuple[np.ndarray, np.ndarray]:
    """(bool per own k-gram of x: also in y, bool per position of x: shared own code).

    Shared own code comes in runs of at least K characters: a k-gram that is mostly given
    code (a stub's signature and docstring) with the start of a body after it shares a few own
    characters with every student who starts that body the same way, which is no evidence."""
    mask = member(x.hashes, y.unique)
    return mask, long_runs(spans(x.pos[mask], len(x.given)) & ~x.given, K)


def _per_module(x: Submission, shared: np.ndarray) -> dict[str, int]:
    counts = np.add.reduceat(shared.astype(np.int64), x.bounds) if len(x.bounds) else []
    return {name: int(c) for name, c in zip(x.modules, counts, strict=True)}


def compare(a: Submission, b: Submission) -> Pair | None:
    """The pair's scores, or None when they share no own code at all."""
    shared_a, shared_b = shared_code(a, b)[1], shared_code(b, a)[1]
    if not (shared_a.any() or shared_b.any()):
        return None
    count_a, count_b = _per_module(a, shared_a), _per_module(b, shared_b)
    rows, score = [], 0.0
    for name in sorted(set(a.modules) | set(b.modules)):
        row = ModuleScore(name, None, None, count_a.get(name, 0), count_b.get(name, 0))
        if name in a.modules:
            row.a = row.shared_a / a.modules[name].own if a.modules[name].own else 0.0
        if name in b.modules:
            row.b = row.shared_b / b.modules[name].own if b.modules[name].own else 0.0
        rows.append(row)
        for share, n in ((row.a, row.shared_a), (row.b, row.shared_b)):
            if share is not None and n >= MIN_SHARED:
                score = max(score, share)

    def overall(x: Submission, shared: np.ndarray) -> float:
        own = sum(m.own for m in x.modules.values())
        return int(shared.sum()) / own if own else 0.0

    return Pair(a.student, b.student, score, overall(a, shared_a), overall(b, shared_b), rows)


def _raw(module: Module, start: int, end: int) -> tuple[int, int]:
    """A normalised span as a raw one (copydetect's own mapping, from compare_files)."""
    ends = np.array([start, end])
    if len(module.offsets):
        o = module.offsets
        ends = ends + o[:, 1][np.clip(np.searchsorted(o[:, 0], ends), 0, o.shape[0] - 1)]
    return int(ends[0]), int(min(ends[1], len(module.raw)))


def _lines(module: Module, start: int, end: int) -> tuple[tuple[int, int], str]:
    """The whole lines a normalised span touches: (first, last) line numbers and their text."""
    s, e = _raw(module, start, end)
    s = module.raw.rfind("\n", 0, s) + 1
    stop = module.raw.find("\n", max(e - 1, s))
    e = len(module.raw) if stop < 0 else stop
    first = module.raw.count("\n", 0, s) + 1
    text = module.raw[s:e]
    return (first, first + text.count("\n")), text


def _runs(pos: np.ndarray, own: np.ndarray) -> list[tuple[int, int]]:
    """copydetect's copied slices over k-gram starts ``pos``, with given code at either end
    trimmed off (a slice that starts in a stub's signature shows from the student's code on)."""
    from copydetect.utils import get_copied_slices

    if not len(pos):
        return []
    out = []
    for s, e in zip(*get_copied_slices(np.sort(pos), K), strict=True):
        inside = np.flatnonzero(own[int(s):int(e)])
        if len(inside):
            out.append((int(s) + int(inside[0]), int(s) + int(inside[-1]) + 1))
    return out


def fragments(a: Submission, b: Submission, limit: int) -> list[Fragment]:
    """The longest stretches of A's own code found in B, each beside where B has it."""
    mask, shared = shared_code(a, b)
    found = sorted(((int(shared[s:e].sum()), s, e) for s, e in _runs(a.pos[mask], shared)),
                   key=lambda f: (-f[0], f[1]))
    out = []
    for length, s, e in found[:limit]:
        wanted = np.unique(a.hashes[mask & (a.pos > s - K) & (a.pos < e)])
        best = max(_runs(b.pos[member(b.hashes, wanted)], ~b.given),
                   key=lambda r: r[1] - r[0], default=None)
        if best is None:
            continue
        ma, mb = a.module_at(s), b.module_at(best[0])
        lines_a, text_a = _lines(ma, s - ma.base, e - ma.base)
        lines_b, text_b = _lines(mb, best[0] - mb.base, best[1] - mb.base)
        out.append(Fragment(length, ma.name, lines_a, text_a, mb.name, lines_b, text_b))
    return out


def highlighted(x: Submission, y: Submission) -> dict[str, str]:
    """Module name -> x's module as HTML, its code shared with y marked."""
    from copydetect.utils import highlight_overlap

    mask, shared = shared_code(x, y)
    runs = _runs(x.pos[mask], shared)
    out = {}
    for module in x.modules.values():
        end = module.base + len(module.normalised)
        here = [_raw(module, s - module.base, e - module.base) for s, e in runs
                if module.base <= s < end]
        if not here:
            out[module.name] = html.escape(module.raw)
            continue
        slices = np.array([[s for s, _ in here], [e for _, e in here]])
        out[module.name] = highlight_overlap(module.raw, slices, "<mark>", "</mark>",
                                             escape_html=True)[0]
    return out


def compare_class(found: Collection, pack: Pack, *, allowed: Path | None = None,
                  threshold: float = DEFAULT_THRESHOLD) -> Report:
    """Every pair of the class's openable submissions, the flagged ones with their fragments."""
    if not 0.0 < threshold <= 1.0:
        raise SimilarityError(f"--threshold must be in (0, 1], got {threshold:g}")
    given = given_sources(pack, allowed)
    common = boilerplate(t for texts in given.values() for t in texts)
    subs: list[Submission] = []
    not_compared: dict[str, str] = {}
    notes: list[str] = []
    for student in found.students:
        if student.problem:
            not_compared[student.id] = student.problem
            continue
        try:
            sources, more = student_sources(student, pack)
        except (SubmissionError, OSError) as exc:  # one bad submission costs only itself
            not_compared[student.id] = str(exc) or type(exc).__name__
            continue
        notes += [f"`{student.id}`: {n}" for n in more]
        if not sources:
            not_compared[student.id] = "no Python modules found"
            continue
        subs.append(submission(student.id, sources, common))
    pairs = []
    for i, a in enumerate(subs):
        for b in subs[i + 1:]:
            pair = compare(a, b)
            if pair is not None and pair.score > 0:
                pairs.append(pair)
    pairs.sort(key=lambda p: (-p.score, p.a, p.b))
    by_id = {s.student: s for s in subs}
    for n, pair in enumerate(p for p in pairs if p.score >= threshold):
        pair.flagged = True
        if n >= DETAILED:
            continue
        a, b = by_id[pair.a], by_id[pair.b]
        pair.fragments = fragments(a, b, HTML_FRAGMENTS)
        marked_a, marked_b = highlighted(a, b), highlighted(b, a)
        pair.highlighted = {row.module: (marked_a.get(row.module, ""),
                                         marked_b.get(row.module, ""))
                            for row in pair.modules if row.shared_a or row.shared_b}
    n = len(subs)
    return Report(threshold, [s.student for s in subs], pairs, not_compared, notes,
                  {origin: len(texts) for origin, texts in given.items()}, n * (n - 1) // 2)


# -- the reports ----------------------------------------------------------------------------------
def _pct(x: float | None) -> str:
    return "–" if x is None else f"{round(100 * x)}%"


def _side_by_side(left: str, right: str, titles: tuple[str, str]) -> list[str]:
    def cut(line: str) -> str:
        line = line.expandtabs(4).rstrip()
        return line if len(line) <= COLUMN else line[: COLUMN - 1] + "…"

    lefts, rights = left.splitlines(), right.splitlines()
    rows = [f"{cut(titles[0]):<{COLUMN}} │ {cut(titles[1])}", f"{'─' * COLUMN}─┼─{'─' * COLUMN}"]
    for i in range(max(len(lefts), len(rights))):
        l_line = cut(lefts[i]) if i < len(lefts) else ""
        r_line = cut(rights[i]) if i < len(rights) else ""
        rows.append(f"{l_line:<{COLUMN}} │ {r_line}".rstrip())
    return rows


def _where(student: str, module: str, lines: tuple[int, int]) -> str:
    return f"{student} · {module}.py:{lines[0]}-{lines[1]}"


def _distribution(report: Report) -> str:
    bins = [0] * 10
    for p in report.pairs:
        bins[min(9, int(p.score * 10))] += 1
    bins[0] += report.pair_count - len(report.pairs)
    return ", ".join(f"{i / 10:.1f}–{(i + 1) / 10:.1f}: {n}" for i, n in enumerate(bins))


def similarity_markdown(report: Report) -> str:
    flagged = report.flagged
    lines = ["# Similarity across the class", "", f"> {NOTICE}", "",
             f"{len(report.students)} submissions compared ({report.pair_count} "
             f"pair{'s' if report.pair_count != 1 else ''}): **{len(flagged)} "
             f"pair{'s' if len(flagged) != 1 else ''} flagged** at threshold "
             f"{report.threshold:g}. Browsable report with whole modules side by side: "
             "[similarity.html](similarity.html).", "",
             "Not counted (given to every student): "
             + "; ".join(f"{origin}, {n} file{'s' if n != 1 else ''}"
                         for origin, n in report.given.items()) + ".", "",
             "A module's score is the share of one student's own code in it (after the above is "
             "taken out, and with names, strings and comments normalised away) that also occurs "
             "anywhere in the other's submission. A pair's score is its highest module score on "
             f"either side, among modules sharing at least {MIN_SHARED} normalised characters "
             "(about four statements).", "",
             f"Pair scores: {_distribution(report)}."]
    groups = report.groups()
    if len(groups) < len(flagged):
        lines += ["", f"The flagged pairs link {sum(map(len, groups))} students in "
                  f"{len(groups)} group{'s' if len(groups) != 1 else ''}: "
                  + "; ".join(", ".join(md_code(s) for s in g) for g in groups) + "."]
    if len(report.students) > 2 and len(flagged) > report.pair_count // 2:
        lines += ["", "**Most of the class is flagged.** Code that every student was given "
                  "and that is not counted yet (a template, last year's handout, a shared "
                  "starter notebook) looks like copying: pass it with `--allowed DIR`."]
    for n, pair in enumerate(flagged[:DETAILED], 1):
        a, b = md_code(pair.a), md_code(pair.b)
        lines += ["", f"## {n}. {a} and {b}: {_pct(pair.score)}", "",
                  f"All own code: {_pct(pair.overall_a)} of {a}'s is in {b}'s, "
                  f"{_pct(pair.overall_b)} of {b}'s in {a}'s.", "",
                  f"| module | {md_code(pair.a, table=True)} | {md_code(pair.b, table=True)} |",
                  "|---|---:|---:|"]
        lines += [f"| {md_code(r.module, table=True)} | {_pct(r.a)} | {_pct(r.b)} |"
                  for r in pair.modules if r.shared_a or r.shared_b]
        shown = pair.fragments[:MD_FRAGMENTS]
        if shown:
            lines += ["", f"Longest shared fragment{'s' if len(shown) > 1 else ''}:"]
        for frag in shown:  # the students' code, in a block no line of it can close
            lines += ["", md_fence("\n".join(_side_by_side(
                frag.text_a, frag.text_b, (_where(pair.a, frag.module_a, frag.lines_a),
                                           _where(pair.b, frag.module_b, frag.lines_b)))))]
    if len(flagged) > DETAILED:
        lines += ["", f"## The other {len(flagged) - DETAILED} flagged pairs", "",
                  "| pair | score | all own code |", "|---|---:|---:|"]
        lines += [f"| {md_code(p.a, table=True)} and {md_code(p.b, table=True)} | "
                  f"{_pct(p.score)} | {_pct(p.overall_a)} / {_pct(p.overall_b)} |"
                  for p in flagged[DETAILED:]]
    near = [p for p in report.pairs if not p.flagged][:NEAR_MISSES]
    if near:
        lines += ["", "## Closest pairs under the threshold", ""]
        lines += [f"- {md_code(p.a)} and {md_code(p.b)}: {_pct(p.score)}" for p in near]
    if report.not_compared:
        lines += ["", "## Not compared", ""]
        lines += [f"- {md_code(s)}: {md_code(why, 400)}"
                  for s, why in report.not_compared.items()]
    if report.notes:
        lines += ["", "## Notes", ""] + [f"- {md_code(n, 400)}" for n in report.notes]
    return visible("\n".join(lines) + "\n", newlines=True, tabs=True)


CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
.notice { background: #fff6d6; border: 1px solid #e0c060; padding: .6em 1em; }
table { border-collapse: collapse; margin: .5em 0; }
td, th { border: 1px solid #ccc; padding: .2em .6em; text-align: left; vertical-align: top; }
td.num { text-align: right; }
.side { display: grid; grid-template-columns: 1fr 1fr; gap: 1em; }
pre { background: #f7f7f7; padding: .5em; overflow-x: auto; font-size: 12px; margin: 0; }
mark { background: #ffd2d2; }
"""


def similarity_html(report: Report) -> str:
    """The browsable report: every text goes through html.escape, and the whole page through
    grader.text.visible (no control character or bidi override of a student's survives)."""
    e = html.escape
    flagged = report.flagged
    out = ["<!DOCTYPE html>", "<html><head><meta charset='utf-8'>",
           "<title>Similarity across the class</title>", f"<style>{CSS}</style></head><body>",
           "<h1>Similarity across the class</h1>", f"<p class='notice'>{e(NOTICE)}</p>",
           f"<p>{len(report.students)} submissions compared ({report.pair_count} "
           f"pair{'s' if report.pair_count != 1 else ''}): "
           f"<b>{len(flagged)} flagged</b> at threshold {report.threshold:g}. Not counted: "
           + e("; ".join(f"{o} ({n})" for o, n in report.given.items())) + ".</p>",
           f"<p>Pair scores: {e(_distribution(report))}.</p>"]
    if report.pairs:
        out += ["<table><tr><th>#</th><th>students</th><th>score</th><th>all own code</th>"
                "<th>flagged</th></tr>"]
        for n, p in enumerate(report.pairs[: len(flagged) + NEAR_MISSES], 1):
            name = f"<a href='#pair{n}'>{e(p.a)} · {e(p.b)}</a>" if n <= DETAILED and \
                p.flagged else f"{e(p.a)} · {e(p.b)}"
            out.append(f"<tr><td>{n}</td><td>{name}</td><td class='num'>{_pct(p.score)}</td>"
                       f"<td class='num'>{_pct(p.overall_a)} / {_pct(p.overall_b)}</td>"
                       f"<td>{'yes' if p.flagged else ''}</td></tr>")
        out.append("</table>")
    for n, pair in enumerate(flagged[:DETAILED], 1):
        out += [f"<h2 id='pair{n}'>{n}. {e(pair.a)} and {e(pair.b)}: {_pct(pair.score)}</h2>",
                "<table><tr><th>module</th>"
                f"<th>{e(pair.a)}</th><th>{e(pair.b)}</th></tr>"]
        out += [f"<tr><td>{e(r.module)}</td><td class='num'>{_pct(r.a)}</td>"
                f"<td class='num'>{_pct(r.b)}</td></tr>" for r in pair.modules
                if r.shared_a or r.shared_b]
        out.append("</table>")
        for frag in pair.fragments:
            out += ["<div class='side'>",
                    f"<div><b>{e(_where(pair.a, frag.module_a, frag.lines_a))}</b>"
                    f"<pre>{e(frag.text_a)}</pre></div>",
                    f"<div><b>{e(_where(pair.b, frag.module_b, frag.lines_b))}</b>"
                    f"<pre>{e(frag.text_b)}</pre></div></div><br>"]
        for module, (left, right) in pair.highlighted.items():
            out += [f"<details><summary>{e(module)}.py, whole modules (shared code marked)"
                    "</summary><div class='side'>",
                    f"<div><b>{e(pair.a)}</b><pre>{left}</pre></div>",
                    f"<div><b>{e(pair.b)}</b><pre>{right}</pre></div></div></details>"]
    if report.not_compared:
        out += ["<h2>Not compared</h2><ul>"]
        out += [f"<li>{e(s)}: {e(why)}</li>" for s, why in report.not_compared.items()]
        out.append("</ul>")
    out.append("</body></html>")
    return visible("\n".join(out) + "\n", newlines=True, tabs=True)


def summary_line(report: Report) -> str:
    n = len(report.flagged)
    return (f"**{n} pair{'s' if n != 1 else ''} of students flagged** as similar at threshold "
            f"{report.threshold:g} ({len(report.students)} submissions compared): "
            "[similarity.md](similarity.md), [similarity.html](similarity.html). For a person "
            "to read; no score changed.")


def write_reports(report: Report, out: Path) -> list[Path]:
    """similarity.md and similarity.html in ``out``, and the count in its summary.md (where a
    batch wrote one; a later batch keeps that section, gradebook._kept_similarity)."""
    from grader.batch.store import BatchLock

    out.mkdir(parents=True, exist_ok=True)
    for name in ("similarity.md", "similarity.html"):
        if (out / name).is_dir() or (out / name).is_symlink():  # a student folder of a batch
            raise SimilarityError(f"{out / name} is a folder (a student's, graded before the "
                                  "batch reserved the name?): move it, or write the reports "
                                  "to another folder")
    with BatchLock(out):  # a batch rewriting summary.md now would lose the line
        written = [atomic_write(out / "similarity.md", similarity_markdown(report)),
                   atomic_write(out / "similarity.html", similarity_html(report))]
        summary = out / "summary.md"
        if summary.is_file():
            text = summary.read_text(encoding="utf-8")
            cut = text.find(f"\n{SECTION}\n")
            text = (text if cut < 0 else text[:cut]).rstrip("\n") + "\n"
            atomic_write(summary, f"{text}\n{SECTION}\n\n{summary_line(report)}\n")
            written.append(summary)
    return written
