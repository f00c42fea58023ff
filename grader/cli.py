"""The instructor's command line: one sub-command per verb.

    python -m grader grade SUBMISSION [--out DIR] [--only ID,...]
    python -m grader figures SUBMISSION [--out DIR]
    python -m grader precompute
    python -m grader release OUT [--force]
    python -m grader stubs [--check]
    python -m grader notebook [--check]
    python -m grader nbgrader-course DIR [--only ID,...] [--force]
    python -m grader nbgrader-autograde COURSE ASSIGNMENT [--student ID] [--jobs N] [--force]
    python -m grader batch SUBMISSIONS --out DIR [--jobs N] [--scheduler ADDRESS] [--force]
    python -m grader canvas-csv OUT --gradebook EXPORT.csv --assignment "TITLE (ID)" [--out CSV]
    python -m grader similarity OUT --submissions SUBMISSIONS [--allowed DIR] [--threshold T]
    python -m grader gradescope OUT.zip [--force]

``dl-kit VERB ...`` (the console script, grader/entry.py) is the same command line, and never
imports from the working directory; ``python -m grader`` drops it too, once the kit is found.
"""

from __future__ import annotations

import argparse
import sys

from grader.config import parse_only
from grader.packs import DEFAULT_PACK
from grader.text import visible


def _grade(args: argparse.Namespace) -> int:
    from grader.grade import grade

    warn_working_directory(args.submission)
    report = grade(args.submission, args.out, only=parse_only(args.only), pack_name=args.pack,
                   handle=args.handle, probe_timeout=args.timeout,
                   allow_unsandboxed=args.allow_unsandboxed)
    print(f"report written to {visible(args.out)}/results.json: {report.score:g} / "
          f"{report.max_score:g}")
    return 0


def warn_working_directory(submission: str) -> None:
    """A warning on stderr when the working directory is inside the submission: the kit never
    imports from it (grader/entry.py), but other tools started there might."""
    from pathlib import Path

    try:
        inside = Path.cwd().resolve().is_relative_to(Path(submission).resolve())
    except (OSError, RuntimeError):
        return
    if inside and Path(submission).resolve().is_dir():
        print("warning: the working directory is inside the submission; the kit imports "
              "nothing from it, but grade from another folder (README, \"What a submission "
              "can steer\")", file=sys.stderr)


def _figures(args: argparse.Namespace) -> int:
    from grader.figures import draw_all, summary
    from grader.handle import open_handle
    from grader.packs import load_pack
    from grader.submission import open_submission

    pack = load_pack(args.pack)
    if args.handle in ("sandbox", "fallback"):  # student code runs here too: same refusal
        from grader.grade import check_isolation

        check_isolation(args.submission, args.handle, args.allow_unsandboxed, pack)
    with open_submission(args.submission, pack.modules) as folder, \
            open_handle(folder, args.handle, pack.name) as handle:
        figures = draw_all(handle, args.out, pack)
    print(visible(summary(figures), newlines=True))
    return 0


def _precompute(args: argparse.Namespace) -> int:
    from grader.precompute import precompute

    cache = precompute(args.pack)
    print(f"reference results for {args.pack} cached in {cache}")
    return 0


def _release(args: argparse.Namespace) -> int:
    from grader.release import build_release

    build_release(args.out, pack_name=args.pack, force=args.force)
    print(f"student release written to {args.out}")
    return 0


def _stubs(args: argparse.Namespace) -> int:
    from grader.packs import load_pack
    from grader.release import drifted_stubs, generate_stubs

    pack = load_pack(args.pack)
    out = pack.submission_dir  # beside the solutions: exercises/ for Day 2
    if args.check:
        drifted = drifted_stubs(out, pack)
        if drifted:  # exit 1, not 2: the tool worked, the stubs are stale
            names = ", ".join(f"{out.name}/{p.name}" for p in drifted)
            print(f"stubs out of date: {names} (run python -m grader stubs)", file=sys.stderr)
            return 1
        print(f"stubs in {out.name}/ are up to date")
        return 0
    written = generate_stubs(out, pack)
    print(f"wrote {len(written)} files to {out}")
    return 0


def _notebook(args: argparse.Namespace) -> int:
    from grader.notebook import notebook_drifted, notebook_path, write_notebook
    from grader.packs import load_pack
    from grader.release import REPO

    pack = load_pack(args.pack)
    path = notebook_path(pack)
    if args.check:
        if notebook_drifted(pack):  # exit 1, not 2: the tool worked, the notebook is stale
            print(f"{path.relative_to(REPO)} is out of date (run python -m grader notebook)",
                  file=sys.stderr)
            return 1
        print(f"{path.relative_to(REPO)} is up to date")
        return 0
    print(f"wrote {write_notebook(pack)}")
    return 0


def _nbgrader_course(args: argparse.Namespace) -> int:
    from grader.notebook import make_nbgrader_course
    from grader.packs import load_pack

    for path in make_nbgrader_course(args.dir, load_pack(args.pack), only=parse_only(args.only),
                                     force=args.force):
        print(f"wrote {path}")
    return 0


def _nbgrader_autograde(args: argparse.Namespace) -> int:
    from grader.nbgrader_autograde import AutogradeError, nbgrader_autograde, summary
    from grader.packs import load_pack

    try:
        result = nbgrader_autograde(args.course, args.assignment, students=tuple(args.student),
                                    jobs=args.jobs, force=args.force, pack=load_pack(args.pack),
                                    allow_unsandboxed=args.allow_unsandboxed)
    except AutogradeError as exc:
        print(f"error: {visible(exc)}", file=sys.stderr)
        return 2
    print(visible(summary(result), newlines=True))
    print(f"recorded in the gradebook; feedback: nbgrader generate_feedback {args.assignment}; "
          "grades: nbgrader export")
    return result.exit_code


def _batch(args: argparse.Namespace) -> int:
    from grader.batch.run import BatchOptions, run_batch

    options = BatchOptions(only=parse_only(args.only),
                           handle=args.handle, probe_timeout=args.timeout, jobs=args.jobs,
                           scheduler=args.scheduler, force=args.force, gpu=args.gpu,
                           pack=args.pack, allow_unsandboxed=args.allow_unsandboxed)
    result = run_batch(args.submissions, args.out, options)
    errors = f", grader errors: {len(result.errors)}" if result.errors else ""
    print(f"graded {len(result.graded)}, skipped {len(result.skipped)} (already graded)"
          f"{errors} in {result.wall_s:.0f} s -> {result.out}/gradebook.csv, summary.md")
    return result.exit_code  # 1: the grader failed on some submission (see summary.md)


def _canvas_csv(args: argparse.Namespace) -> int:
    from grader.batch.canvas import CanvasCsvError, canvas_csv

    try:
        done = canvas_csv(args.batch_out, args.gradebook, args.assignment, args.out)
    except CanvasCsvError as exc:
        for line in exc.warnings:  # Canvas names are the students' own: shown, never obeyed
            print(f"warning: {visible(line)}", file=sys.stderr)
        for line in exc.problems:
            print(f"error: {visible(line)}", file=sys.stderr)
        return 2
    for line in done.warnings:
        print(f"warning: {visible(line)}", file=sys.stderr)
    for line in done.notes:
        print(visible(line))
    print(f"wrote {visible(done.path)}: {visible(repr(done.column))} filled for "
          f"{done.filled} student"
          + ("s" if done.filled != 1 else "")
          + (f", {len(done.warnings)} left as exported (warnings above)" if done.warnings
             else "") + "; import it in Canvas: Grades > Import")
    return 0


def _similarity(args: argparse.Namespace) -> int:
    from pathlib import Path

    from grader.batch.collect import collect
    from grader.batch.similarity import (
        DEFAULT_THRESHOLD,
        SimilarityError,
        compare_class,
        write_reports,
    )
    from grader.packs import load_pack

    try:
        report = compare_class(collect(args.submissions), load_pack(args.pack),
                               allowed=Path(args.allowed) if args.allowed else None,
                               threshold=DEFAULT_THRESHOLD if args.threshold is None
                               else args.threshold)
        written = write_reports(report, Path(args.out))
    except SimilarityError as exc:
        print(f"error: {visible(exc)}", file=sys.stderr)
        return 2
    print(f"{len(report.flagged)} of {report.pair_count} pairs flagged at threshold "
          f"{report.threshold:g} ({len(report.students)} submissions compared; no score "
          "changed) -> " + ", ".join(visible(p) for p in written))
    return 0


def _gradescope(args: argparse.Namespace) -> int:
    from grader.gradescope import build_bundle

    try:
        out = build_bundle(args.out, force=args.force, pack_name=args.pack)
    except FileExistsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Gradescope autograder written to {out}")
    return 0


def _allow_unsandboxed(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--allow-unsandboxed", action="store_true",
                        help="grade even where no sandbox tier is available (macOS, old "
                        "kernels): student code could then read the solutions")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m grader", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pack", default=DEFAULT_PACK, help="course pack (default: %(default)s)")
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("grade", help="grade one submission folder, .zip or notebook (.ipynb)")
    g.add_argument("submission", help="folder or .zip holding conv.py, blocks.py, ...")
    g.add_argument("--out", default="grading-report", help="report folder (default: %(default)s)")
    g.add_argument("--only", default=None, help="comma-separated exercise ids to grade")
    g.add_argument("--handle", default="sandbox", choices=("sandbox", "fallback", "in-process"),
                   help="how student code runs: the best sandbox tier here (default), the "
                   "tiers without namespaces (fallback), or in this process (trusted code only)")
    _allow_unsandboxed(g)
    g.add_argument("--timeout", type=float, default=None,
                   help="wall-clock seconds one probe call may take (default: 20 in the sandbox, "
                   "60 in process; grader/limits.py)")
    g.set_defaults(func=_grade)

    f = sub.add_parser("figures", help="draw gradient norms, filters and the loss curve of a "
                       "submission's own models as PNGs")
    f.add_argument("submission", help="folder or .zip holding the submission's modules")
    f.add_argument("--out", default="figures", help="folder for the PNGs (default: %(default)s)")
    f.add_argument("--handle", default="sandbox", choices=("sandbox", "fallback", "in-process"),
                   help="how student code runs (default: %(default)s)")
    _allow_unsandboxed(f)
    f.set_defaults(func=_figures)

    pc = sub.add_parser("precompute", help="grade the solutions once to fill this machine's "
                        "reference cache (every later grade of a correct submission reuses it)")
    pc.set_defaults(func=_precompute)

    r = sub.add_parser("release", help="build the student distribution (no solutions)")
    r.add_argument("out", help="folder to write (must not exist, unless --force)")
    r.add_argument("--force", action="store_true", help="replace OUT if it exists")
    r.set_defaults(func=_release)

    s = sub.add_parser("stubs", help="regenerate the student stubs in exercises/ from solutions/")
    s.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 naming the stubs that differ from the solutions")
    s.set_defaults(func=_stubs)

    n = sub.add_parser("notebook", help="regenerate notebooks/<pack>.ipynb (the nbgrader source "
                       "notebook) from the outline and solutions/")
    n.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 if the committed notebook is out of date")
    n.set_defaults(func=_notebook)

    c = sub.add_parser("nbgrader-course", help="lay out an nbgrader course directory: "
                       "nbgrader_config.py and source/<pack>/<pack>.ipynb")
    c.add_argument("dir", help="the course directory (created if missing)")
    c.add_argument("--only", default=None,
                   help="comma-separated exercise ids: only their exercise and test cells")
    c.add_argument("--force", action="store_true", help="replace existing files")
    c.set_defaults(func=_nbgrader_course)

    a = sub.add_parser("nbgrader-autograde", help="nbgrader autograde, with student code run "
                       "only in the sandbox: scores and feedback go into nbgrader's gradebook")
    a.add_argument("course", help="the nbgrader course directory (holds nbgrader_config.py)")
    a.add_argument("assignment", help="the assignment id, e.g. day02")
    a.add_argument("--student", action="append", default=[], metavar="ID",
                   help="grade only this student (repeatable; default: every submission)")
    a.add_argument("--jobs", type=int, default=None,
                   help="notebooks graded at once (default: the cores)")
    a.add_argument("--force", action="store_true",
                   help="regrade notebooks already graded with the same content and grader")
    _allow_unsandboxed(a)
    a.set_defaults(func=_nbgrader_autograde)

    b = sub.add_parser("batch", help="grade a class: a folder or zip of submissions, or a "
                       "Canvas download, on Dask; gradebook.csv and summary.md")
    b.add_argument("submissions", help="folder (one sub-folder or .zip per student), a zip of "
                   "one, or a Canvas 'Download Submissions' zip")
    b.add_argument("--out", required=True, help="folder for the reports and the gradebook")
    b.add_argument("--jobs", type=int, default=None,
                   help="submissions graded at once (default: the cores, or the cluster's)")
    b.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="grade on an existing Dask cluster (tcp://host:8786) instead of a "
                   "local one")
    b.add_argument("--force", action="store_true",
                   help="regrade students already graded with the same content and grader")
    b.add_argument("--only", default=None, help="comma-separated exercise ids to grade")
    b.add_argument("--handle", default="sandbox", choices=("sandbox", "fallback", "in-process"),
                   help="how student code runs (default: %(default)s)")
    b.add_argument("--timeout", type=float, default=20.0,
                   help="wall-clock seconds one probe call may take (default: %(default)s)")
    _allow_unsandboxed(b)
    b.add_argument("--gpu", action="store_true",
                   help="send every submission to a worker started with --resources GPU=1")
    b.set_defaults(func=_batch)

    cv = sub.add_parser("canvas-csv", help="fill one assignment column of a Canvas gradebook "
                        "export with a batch's totals, as a CSV Canvas imports unchanged")
    cv.add_argument("batch_out", metavar="OUT", help="the batch's output folder (graded from a "
                    "Canvas 'Download Submissions' zip)")
    cv.add_argument("--gradebook", required=True, metavar="EXPORT.csv",
                    help="the gradebook exported from Canvas (Grades > Export)")
    cv.add_argument("--assignment", required=True,
                    help="the assignment's column, exactly as in the export, e.g. "
                    "'Day 2 (12345)'")
    cv.add_argument("--out", default=None, metavar="CSV",
                    help="the file to import into Canvas (default: OUT/canvas-import.csv)")
    cv.set_defaults(func=_canvas_csv)

    sm = sub.add_parser("similarity", help="pairs of students whose code overlaps beyond the "
                        "stubs, the lesson's code and allowed sources: similarity.md and .html "
                        "(for a person to read; no score changes)")
    sm.add_argument("out", help="the batch's output folder (its summary.md gets the count), or "
                    "any folder for the two reports")
    sm.add_argument("--submissions", required=True, help="what the batch graded (folder, zip "
                    "or Canvas zip): the batch keeps no sources, so they are read again")
    sm.add_argument("--allowed", default=None, metavar="DIR", help="code every student may "
                    "use (.py files, notebooks' code cells): not counted as shared")
    sm.add_argument("--threshold", type=float, default=None, metavar="T",
                    help="flag a pair when a module's own code is this share shared "
                    "(0-1, default 0.5)")
    sm.set_defaults(func=_similarity)

    z = sub.add_parser("gradescope", help="build the Gradescope autograder zip (setup.sh, "
                       "run_autograder, the grader and the hidden solutions)")
    z.add_argument("out", help="the zip to write, e.g. autograder.zip")
    z.add_argument("--force", action="store_true", help="replace OUT if it exists")
    z.set_defaults(func=_gradescope)
    return parser


def main(argv: list[str] | None = None) -> int:
    if argv is None and sys.argv[1:2] == ["grade"]:  # before torch: a re-exec is cheap here
        from grader.entry import trusted_argv
        from grader.sandbox.zygote import clean_environment

        # as python -m grader, minus the working directory on sys.path (grader/entry.py)
        clean_environment(trusted_argv("grader", sys.argv[1:])[1:])
    from grader.submission import SubmissionError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, KeyError, FileNotFoundError, RuntimeError, SubmissionError) as exc:
        # one clear line, never a traceback wall (and never a student's escape sequence)
        print(f"error: {visible(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
