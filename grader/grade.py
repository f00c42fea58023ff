"""``python -m grader grade SUBMISSION [--out DIR] [--only IDS]``: grade one submission.

Runs the pack's hidden graders with the kit's plugin under the grader's own pytest config,
prints the per-exercise table and writes ``DIR/results.json`` (plus ``DIR/junit.xml``).
Exit status 0 whenever grading completed, whatever the score.

    python -m grader grade exercises --out grading-report
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grader.packs import load_pack
from grader.results import GradeReport, PropertyResult, format_table
from grader.submission import SubmissionError, open_submission

GRADER_DIR = Path(__file__).resolve().parent


def _empty_report(pack, reason: str, only: tuple[str, ...]) -> GradeReport:
    """Every exercise at 0 with the reason: the report is complete even when nothing ran."""
    tests = [PropertyResult(ex.id, f"{ex.id}: submission", ex.points, 0.0, reason)
             for ex in pack.exercises if not only or ex.id in only]
    return GradeReport(tests, 0.0, f"{pack.title}: could not grade: {reason}")


def grade(submission: str | Path, out: str | Path = "grading-report", *, only: tuple[str, ...] = (),
          pack_name: str = "day02", handle: str = "in-process", quiet: bool = False) -> GradeReport:
    pack = load_pack(pack_name)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report_path = out / "results.json"
    try:
        with open_submission(submission, pack.modules) as package_dir:
            args = [
                str(pack.graders_dir), "-c", str(GRADER_DIR / "grading.ini"),
                "--rootdir", str(GRADER_DIR), "-p", "grader.plugin", "-p", "no:cacheprovider",
                "--submission", str(package_dir), "--kit-profile", "grading",
                "--kit-report", str(report_path), "--kit-pack", pack.name,
                "--kit-handle", handle, "--junitxml", str(out / "junit.xml"),
                "-p", "no:warnings",
            ]
            if only:
                args += ["--kit-only", ",".join(only)]
            if quiet:
                args += ["-p", "no:terminal"]
            else:
                args += ["-q", "--tb=no"]
            old = os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
            os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # no third-party plugins
            try:
                code = pytest.main(args)
            finally:
                if old is None:
                    os.environ.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
                else:
                    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = old
    except SubmissionError as exc:
        report = _empty_report(pack, str(exc), only)
        report.write_json(report_path)
        if not quiet:
            print(f"could not grade: {exc}")
            print(format_table(report.by_exercise(pack.ids)))
        return report
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        raise RuntimeError(f"the graders did not run (pytest exit code {int(code)})")
    return GradeReport.from_gradescope_dict(__import__("json").loads(report_path.read_text()))
