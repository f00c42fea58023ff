"""What a batch leaves for people: the gradebook, class insights, and each student's feedback.

    DIR/gradebook.csv   student, total, one column per exercise id in docs/contract.md's order
    DIR/summary.md      per-exercise mean and distribution, the most-failed properties with
                        the share of the class failing each, the static check's findings,
                        grader errors, unopenable input
    DIR/histogram.png   totals and per-exercise scores
    DIR/canvas.json     each student's Canvas user id (null: not from a Canvas download), read
                        by ``python -m grader canvas-csv`` (grader/batch/canvas.py)

Everything is rebuilt from the per-student files on disk at the end of every run, so a
resumed batch writes exactly what an uninterrupted one would (one row per student).

Student ids, file names, notes and messages are the students' text: Markdown shows them as
code spans or fenced blocks they cannot leave, the CSV as cells no spreadsheet evaluates, and
control characters never reach either (grader/text.py).
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.batch.collect import Collection
from grader.batch.store import Meta, grader_version
from grader.manifest import Pack
from grader.results import atomic_write, format_points
from grader.text import csv_cell, md_code, md_fence, one_line
from grader.versions import LOCK, describe

TOP_FAILED = 15
SHOWN_FINDINGS = 3  # per submission in summary.md; results.json has them all
BINS = ("0", "<50%", "50-79%", "80-99%", "100%")  # of an exercise's points


@dataclass
class Row:
    student: str
    results: dict[str, Any] | None  # None: no report (the grader failed on it)
    meta: Meta | None

    @property
    def report(self) -> dict[str, Any]:
        """``results``, of a row known to have them (a reported one)."""
        assert self.results is not None
        return self.results

    @property
    def opened(self) -> bool:
        return self.results is not None and not (self.meta and self.meta.problem)

    def exercise_scores(self) -> dict[str, tuple[float, float]]:
        """exercise id -> (score, max score) of this report."""
        scores: dict[str, tuple[float, float]] = {}
        for t in (self.results or {}).get("tests", []):
            got, top = scores.get(t["tags"][0], (0.0, 0.0))
            scores[t["tags"][0]] = (got + t["score"], top + t["max_score"])
        return scores


def load_rows(out: Path, found: Collection) -> list[Row]:
    rows = []
    for student in found.students:
        folder = out / student.id
        meta = Meta.load(folder)
        results = None
        if meta is not None and meta.status == "graded":
            try:
                results = json.loads((folder / "results.json").read_text())
            except (OSError, ValueError):
                results = None
        rows.append(Row(student.id, results, meta))
    return rows


def gradebook_csv(rows: list[Row], pack: Pack) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["student", "total", *pack.ids])
    for row in rows:
        if row.results is None:  # no grade yet: empty cells, never a fake 0
            writer.writerow([csv_cell(row.student), ""] + [""] * len(pack.ids))
            continue
        scores = row.exercise_scores()
        writer.writerow([csv_cell(row.student), format_points(row.results["score"])]
                        + [format_points(scores[ex][0]) if ex in scores else "" for ex in pack.ids])
    return buf.getvalue()


def _bin(score: float, top: float) -> int:
    share = score / top if top else 0.0
    if share <= 0:
        return 0
    if share >= 1:
        return 4
    return 1 if share < 0.5 else 2 if share < 0.8 else 3


def failed_properties(rows: list[Row]) -> list[tuple[str, int, int]]:
    """(property name, students failing it, students graded on it), most failed first.
    Only submissions that could be opened count: an unopenable one tells nothing about a
    property."""
    fails: dict[str, int] = {}
    seen: dict[str, int] = {}
    for row in rows:
        if not row.opened:
            continue
        for t in row.report["tests"]:
            seen[t["name"]] = seen.get(t["name"], 0) + 1
            if t["score"] < t["max_score"]:
                fails[t["name"]] = fails.get(t["name"], 0) + 1
    ranked = sorted(fails, key=lambda n: (-fails[n] / seen[n], -fails[n], n))
    return [(n, fails[n], seen[n]) for n in ranked]


def summary_markdown(rows: list[Row], pack: Pack, found: Collection,
                     only: tuple[str, ...] = ()) -> str:
    reported = [r for r in rows if r.results is not None]
    opened = [r for r in reported if r.opened]
    unopened = [r for r in reported if not r.opened]
    errors = [r for r in rows if r.results is None]
    lines = [f"# Batch summary · {pack.title}", ""]
    lines.append(f"{len(rows)} students: {len(opened)} graded, {len(unopened)} could not be "
                 f"opened (0 points, their report says why), {len(errors)} grader "
                 f"error{'s' if len(errors) != 1 else ''}.")
    lines.append(f"Grader version `{grader_version()}`; exercises: "
                 + (", ".join(only) if only else "all") + ".")
    lines += versions_lines(reported)
    if errors:
        lines += ["", "**The grader failed on some submissions** (a bug in the grader, not in "
                  "the students' code): they have no grade yet. Rerun the batch after fixing; "
                  "graded students are skipped."]
    if reported:
        totals = [r.report["score"] for r in reported]
        top = reported[0].report["max_score"]
        lines += ["", "## Totals", "",
                  f"Over the {len(reported)} students with a report: mean "
                  f"{format_points(statistics.mean(totals))} / {format_points(top)}, median "
                  f"{format_points(statistics.median(totals))}, "
                  f"min {format_points(min(totals))}, max {format_points(max(totals))}.", "",
                  "![score histograms](histogram.png)"]
        lines += ["", "## Per exercise", "",
                  "| exercise | points | mean | mean % | full marks | "
                  + " | ".join(BINS) + " |", "|---|---:|---:|---:|---:|" + "---:|" * len(BINS)]
        for ex in pack.ids:
            pairs = [r.exercise_scores()[ex] for r in reported if ex in r.exercise_scores()]
            if not pairs:
                continue
            mean = statistics.mean(p[0] for p in pairs)
            points = pairs[0][1]
            counts = [0] * len(BINS)
            for score, most in pairs:
                counts[_bin(score, most)] += 1
            full = sum(1 for s, m in pairs if s >= m)
            lines.append(f"| `{ex}` | {format_points(points)} | {format_points(mean)} | "
                         f"{round(100 * mean / points) if points else 0}% | "
                         f"{round(100 * full / len(pairs))}% | "
                         + " | ".join(str(c) for c in counts) + " |")
    failed = failed_properties(reported)
    if failed:
        lines += ["", "## Most-failed properties", "",
                  f"Share of the {len(opened)} submissions that could be opened failing each "
                  "property:", ""]
        for name, n, of in failed[:TOP_FAILED]:
            lines.append(f"- {round(100 * n / of)}% ({n}/{of}) fail {_code(name)}")
    lines += static_findings_lines(reported)
    if errors:
        lines += ["", "## Grader errors", "",
                  "The end of each grading process's output is in `STUDENT/.batch.json` "
                  "(`log_tail`).", ""]
        lines += [f"- {_code(r.student)}: {_code(r.meta.error if r.meta else 'not graded', 400)}"
                  for r in errors]
    if unopened:
        lines += ["", "## Submissions that could not be opened", ""]
        lines += [f"- {_code(r.student)}: {_code(r.meta.problem, 400)}" for r in unopened
                  if r.meta]
    notes = [_code(n, 400) for n in found.notes]
    notes += [f"{_code(s.id)}: {_code(n, 400)}" for s in found.students for n in s.notes]
    if notes:
        lines += ["", "## Input notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def versions_lines(reported: list[Row], shown: int = 10) -> list[str]:
    """What drew the class's cases (each report's ``extra_data.versions``), and a warning
    when students of this class did not all face the same cases."""
    groups: dict[str, list[str]] = {}
    for row in reported:
        versions = (row.report.get("extra_data") or {}).get("versions") or {}
        groups.setdefault(describe(versions), []).append(row.student)
    if len(groups) <= 1:
        return [f"Cases drawn with {text}." for text in groups]
    lines = ["", f"**Graded under different versions**: these students did not all face the "
             f"same cases. Install the grading lock (`{LOCK}`) on every grading machine and "
             "grade them again.", ""]
    for text, students in sorted(groups.items(), key=lambda g: (-len(g[1]), g[0])):
        names = ", ".join(_code(s) for s in students[:shown])
        lines.append(f"- {len(students)} with {text}: {names}"
                     + (" ..." if len(students) > shown else ""))
    return lines


def static_findings_lines(reported: list[Row]) -> list[str]:
    """The submissions the static check flagged (``extra_data.static_findings``) and their
    first findings, for a person to read: a finding changes no score by itself, and the
    conv2d grader has already failed what it concerns."""
    flagged = [(row.student, found) for row in reported if (found := _findings(row))]
    if not flagged:
        return []
    lines = ["", "## Static findings", "",
             f"For a person to read; no score changed. The static check read each submission "
             f"as text (never run) and found something in {len(flagged)}: a convolution "
             "operator conv2d reaches, tampering with the interpreter or the dispatcher, or a "
             "module it could not read (each report's `extra_data.static_findings` lists them "
             "all).", ""]
    for student, found in flagged:
        shown = "; ".join(_code(f) for f in found[:SHOWN_FINDINGS])
        more = f" (and {len(found) - SHOWN_FINDINGS} more)" if len(found) > SHOWN_FINDINGS \
            else ""
        lines.append(f"- {_code(student)}: {shown}{more}")
    return lines


def _findings(row: Row) -> list[str]:
    found = (row.report.get("extra_data") or {}).get("static_findings")
    return [f for f in found if isinstance(f, str)] if isinstance(found, list) else []


def _code(text: str, limit: int = 200) -> str:
    """Text a submission chose (a file name in a finding, a student id, a note naming its
    files), as one code span it cannot leave (grader/text.py)."""
    return md_code(text, limit)


def histogram_png(rows: list[Row], pack: Pack) -> bytes:
    """Totals on top, one small histogram per exercise below (Agg: no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    reported = [r for r in rows if r.results is not None]
    exercises = [ex for ex in pack.ids if any(ex in r.exercise_scores() for r in reported)]
    cols = 4
    grid_rows = 2 + (len(exercises) + cols - 1) // cols
    fig = Figure(figsize=(12, 2.4 * grid_rows), dpi=80)
    FigureCanvasAgg(fig)
    spec = fig.add_gridspec(grid_rows, cols)
    ax = fig.add_subplot(spec[:2, :])
    top = reported[0].report["max_score"] if reported else 100
    ax.hist([r.report["score"] for r in reported], bins=20, range=(0, top or 1),
            color="#4c72b0", edgecolor="white")
    ax.set_title(f"total score ({len(reported)} students)")
    ax.set_xlabel(f"points out of {top:g}")
    ax.set_ylabel("students")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # students come whole
    for i, ex in enumerate(exercises):
        sub = fig.add_subplot(spec[2 + i // cols, i % cols])
        pairs = [r.exercise_scores()[ex] for r in reported if ex in r.exercise_scores()]
        most = pairs[0][1] or 1
        sub.hist([s for s, _ in pairs], bins=min(10, max(2, int(most) + 1)), range=(0, most),
                 color="#55a868", edgecolor="white")
        sub.set_title(ex, fontsize=9)
        sub.yaxis.set_major_locator(MaxNLocator(integer=True))
        sub.tick_params(labelsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def _kept_similarity(summary: Path) -> str:
    """The similarity section a ``python -m grader similarity`` run added to summary.md: a
    regrade rewrites the rest and keeps it (it is about the code, not the scores)."""
    from grader.batch.similarity import SECTION

    try:
        text = summary.read_text(encoding="utf-8")
    except OSError:
        return ""
    cut = text.find(f"\n{SECTION}\n")
    return "" if cut < 0 else text[cut:].rstrip() + "\n"


def write_class_reports(out: Path, pack: Pack, found: Collection,
                        only: tuple[str, ...] = ()) -> list[Row]:
    rows = load_rows(out, found)
    atomic_write(out / "gradebook.csv", gradebook_csv(rows, pack))
    atomic_write(out / "summary.md", summary_markdown(rows, pack, found, only)
                 + _kept_similarity(out / "summary.md"))
    atomic_write(out / "histogram.png", histogram_png(rows, pack))
    atomic_write(out / "canvas.json", canvas_json(found))
    return rows


def canvas_json(found: Collection) -> str:
    """The class's students -> their Canvas user id, or null when not from Canvas files."""
    ids = {s.id: s.canvas_user or None for s in found.students}
    return json.dumps(ids, indent=2) + "\n"


def feedback_markdown(student: str, results: dict[str, Any], pack: Pack) -> str:
    """The report, for the student to read: the table, then what failed and why."""
    lines = [f"# {pack.title}: feedback for {_code(student)}", "",
             f"**Score: {format_points(results['score'])} / "
             f"{format_points(results['max_score'])}**", ""]
    if results.get("output"):  # the tier, notes naming the student's files: as written
        lines += [md_fence(results["output"]), ""]
    by_ex: dict[str, list[dict[str, Any]]] = {}
    for t in results["tests"]:
        by_ex.setdefault(t["tags"][0], []).append(t)
    order = [ex for ex in pack.ids if ex in by_ex] + sorted(set(by_ex) - set(pack.ids))
    lines += ["| exercise | points | properties passed |", "|---|---:|---:|"]
    for ex in order:
        tests = by_ex[ex]
        lines.append(f"| {md_code(ex, table=True)} | "
                     f"{format_points(sum(t['score'] for t in tests))} / "
                     f"{format_points(sum(t['max_score'] for t in tests))} | "
                     f"{sum(t['status'] == 'passed' for t in tests)} / {len(tests)} |")
    failed = [t for ex in order for t in by_ex[ex] if t["status"] != "passed"]
    if failed:
        lines += ["", "## What to look at", ""]
        for t in failed:
            # the property's name is the grader's docstring; its output holds the student's
            # messages: a block they cannot close
            lines += [f"### {one_line(t['name'], 300)} ({format_points(t['score'])} / "
                      f"{format_points(t['max_score'])})", "",
                      md_fence(t.get("output") or "failed"), ""]
    else:
        lines += ["", "Every property passed."]
    return "\n".join(lines).rstrip() + "\n"
