"""``python -m grader grade SUBMISSION [--out DIR] [--only IDS]``: grade one submission.

Runs the pack's hidden graders with the kit's plugin under the grader's own pytest config
(no config, conftest or plugin of the submission is ever read), prints the per-exercise table
and writes ``DIR/results.json`` (plus ``DIR/junit.xml``). Student code runs in sandboxed
workers unless ``handle="in-process"``. Exit status 0 whenever grading completed.

    python -m grader grade exercises --out grading-report
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from grader.config import GradeConfig, HandleMode, check_only
from grader.manifest import Pack
from grader.packs import DEFAULT_PACK, load_pack
from grader.plugin import KitGrading
from grader.results import GradeReport
from grader.sandbox.launcher import protect
from grader.submission import SubmissionError, open_submission
from grader.text import one_line

GRADER_DIR = Path(__file__).resolve().parent
REPO = GRADER_DIR.parent


def grade(submission: str | Path, out: str | Path = "grading-report", *,
          only: tuple[str, ...] = (), pack_name: str = DEFAULT_PACK,
          handle: HandleMode | str = HandleMode.SANDBOX, quiet: bool = False,
          probe_timeout: float | None = None, threads: int | None = None,
          reference_cache: str | Path | None = "auto",
          allow_unsandboxed: bool = False) -> GradeReport:
    config = GradeConfig(pack=pack_name, handle=HandleMode(handle), only=tuple(only),
                         probe_timeout=probe_timeout, threads=threads,
                         reference_cache=str(reference_cache) if reference_cache else None)
    pack = load_pack(pack_name)
    check_only(config.only, pack)  # a typo is a usage error, before any student code runs
    if config.handle.sandboxed:
        check_isolation(submission, config.handle, allow_unsandboxed, pack)
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    protect(out)  # a worker running as another uid cannot even list the report folder
    notes: list[str] = []  # what opening it skipped (links ...): into the report
    try:
        with open_submission(submission, pack.modules, notes) as package_dir, \
                early_sandbox(package_dir, pack, config) as early:
            return run_graders(pack, package_dir, out, replace(config, notes=tuple(notes)),
                               quiet, early)
    except SubmissionError as exc:
        # still a complete report: every property fails with the one-line reason
        reason = one_line(exc, 500) or "the submission could not be opened"
        if not quiet:
            print(f"could not open the submission: {reason}")
        return run_graders(pack, out, out, replace(config, handle=HandleMode.UNAVAILABLE,
                                                   reason=reason), quiet)


@contextlib.contextmanager
def early_sandbox(package_dir: Path, pack: Pack, config: GradeConfig):
    """The sandbox, started before pytest imports the hidden graders: a supervisor forked
    from this still-clean process shares its torch (zygote.py), and one started by
    bubblewrap gets going while pytest collects. None for the in-process handle."""
    if not config.handle.sandboxed:
        yield None
        return
    from grader.sandbox.client import SandboxHandle

    sandbox = SandboxHandle(package_dir, pack.name,
                            force_fallback=config.handle is HandleMode.FALLBACK,
                            timeout_s=config.probe_timeout, threads=config.threads)
    sandbox.__enter__()
    try:
        yield sandbox
    finally:
        sandbox.__exit__(None, None, None)


def check_isolation(submission: str | Path, handle: str, allow_unsandboxed: bool,
                    pack: Pack | None = None) -> None:
    """Refuse untrusted code where no sandbox tier can hold it (SandboxUnavailable).

    The kit's own stubs and solutions are not untrusted: ``make grade`` works on any machine.
    """
    from grader.sandbox.tiers import SandboxUnavailable, detect

    tier = detect(handle == "fallback")
    ours = {REPO / "exercises", REPO / "solutions"}
    if pack is not None:
        with contextlib.suppress(FileNotFoundError):
            ours |= {pack.solutions_dir, pack.submission_dir}
    if not tier.usable and not allow_unsandboxed and Path(submission).resolve() not in ours:
        raise SandboxUnavailable(tier)


def run_graders(pack: Pack, package_dir: Path, out: Path, config: GradeConfig,
                quiet: bool = False, early_handle: Any = None) -> GradeReport:
    """The pack's hidden graders on ``package_dir`` under the grader's own pytest config;
    ``DIR/results.json`` and ``DIR/junit.xml`` are written, the report is returned."""
    args = [
        str(pack.graders_dir), "-c", str(GRADER_DIR / "grading.ini"),
        "--rootdir", str(GRADER_DIR), "-p", "grader.plugin", "-p", "no:cacheprovider",
        "-p", "no:warnings", "--junitxml", str(out / "junit.xml"),
        # its clean-up runs gc.collect() five times per pytest run: 0.4 s of a 3.5 s grade in
        # a process holding torch, to report warnings nobody reads here
        "-p", "no:unraisableexception",
    ]
    args += ["-p", "no:terminal"] if quiet else ["-q", "--tb=no", "-rN"]
    grading = KitGrading(config, package_dir, early_handle)
    old = os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # no third-party plugins
    try:
        code = pytest.main(args, plugins=[grading])
    finally:
        if old is None:
            os.environ.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
        else:
            os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = old
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) or grading.report is None:
        raise RuntimeError(f"the graders did not run (pytest exit code {int(code)})")
    grading.report.write_json(out / "results.json")
    return grading.report
