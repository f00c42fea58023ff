"""Which sandbox tier a test runs student code in, on this machine or under tests/dockerlike.py.

    @pytest.fixture(params=TIERS)
    def tier(request, monkeypatch):
        return use_tier(request.param, monkeypatch)

A tier this machine cannot give is skipped, unless ``KIT_REQUIRE_TIERS`` names it: then the
test fails (CI sets it, so a CI machine without bubblewrap or Landlock never passes quietly).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grader.grade import grade as grade_here
from grader.results import GradeReport
from grader.sandbox.tiers import DISABLE_ENV, Tier, detect

REPO = Path(__file__).resolve().parents[1]

REQUIRE_ENV = "KIT_REQUIRE_TIERS"
# name -> the pieces left out to get it on a machine that has more. "forked" is the container
# tier graded through the command line, whose clean process forks the sandbox's supervisor
# (grader/sandbox/zygote.py); the others call grade() from this (not clean) test process.
ALL_TIERS = {"bubblewrap": "", "container": "namespaces", "forked": "namespaces"}
# Which tiers the tier-parametrized tests run in (default: all): `make test` runs bubblewrap
# here and the container tier inside the Docker-like harness (tests/test_container.py).
TIERS = {name: off for name, off in ALL_TIERS.items()
         if name in os.environ.get("KIT_TEST_TIERS", ",".join(ALL_TIERS)).split(",")}


def expected(name: str, tier: Tier) -> bool:
    if name == "bubblewrap":
        return tier.namespaces
    if name == "forked" and os.environ.get("KIT_ZYGOTE") == "0":
        return False
    wanted = {"landlock", "seccomp"} | ({"uid"} if os.getuid() == 0 else set())
    return not tier.namespaces and wanted <= set(tier.pieces)


_current = {"name": ""}


def grade(submission: str | Path, out: str | Path, *, only: tuple[str, ...] = (),
          quiet: bool = True, probe_timeout: float | None = None) -> GradeReport:
    """``grader.grade.grade`` in the tier ``use_tier`` chose: for "forked", the command line."""
    if _current["name"] != "forked":
        return grade_here(submission, out, only=only, quiet=quiet, probe_timeout=probe_timeout)
    argv = [sys.executable, "-m", "grader", "grade", str(submission), "--out", str(out)]
    argv += ["--only", ",".join(only)] if only else []
    argv += ["--timeout", str(probe_timeout)] if probe_timeout else []
    env = {k: v for k, v in os.environ.items() if k != "KIT_ZYGOTE"}
    done = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"grade exited {done.returncode}: {done.stderr[-2000:]}")
    return GradeReport.from_gradescope_dict(json.loads((Path(out) / "results.json").read_text()))


# Tests that drive a sandbox handle from this process (not through the command line) cannot
# run the forked tier itself; its sandbox is the container tier's, so they run that instead.
HANDLE_TIERS = list(dict.fromkeys("container" if n == "forked" else n for n in TIERS))


def use_tier(name: str, monkeypatch: pytest.MonkeyPatch) -> Tier:
    _current["name"] = name
    monkeypatch.setenv(DISABLE_ENV, ALL_TIERS[name])
    tier = detect()
    if not expected(name, tier):
        why = f"the {name} tier is not available here: {tier.describe()} {tier.gaps()}"
        if name in os.environ.get(REQUIRE_ENV, "").split(","):
            pytest.fail(why)
        pytest.skip(why)
    return tier
