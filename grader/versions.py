"""What decides the cases a grade draws, recorded in every report and in the batch's resume key.

The grading profile is derandomized: a grader draws the same cases on every run. Which cases
those are still depends on the machine: hypothesis's version (how it turns its seed into
values), torch's (how a drawn seed becomes a tensor), Python's, and the profile itself. The
grading lock (``constraints/grading.txt``: pip's constraints file, used by the Makefile, the
Gradescope ``setup.sh`` and Dask worker images) pins them, so the instructor's laptop, the
Gradescope image and a Dask worker draw the same cases for the same student; a report says,
in ``extra_data.versions``, what it was drawn with:

    {"profile": "grading", "python": "3.11", "hypothesis": "6.170.17", "torch": "2.14.1"}

numpy is pinned by the lock but is not here: no strategy or grader draws with it.
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version

GRADING_PROFILE = "grading"
LOCK = "constraints/grading.txt"  # relative to the repository (and to the Gradescope source)
CASE_DISTRIBUTIONS = ("hypothesis", "torch")  # installed packages whose version moves the cases


def installed_version(dist: str) -> str:
    """The installed version of ``dist`` ("" when it is not installed)."""
    try:
        return version(dist)
    except PackageNotFoundError:
        return ""


def case_versions(profile: str = GRADING_PROFILE) -> dict[str, str]:
    """The versions that decide which cases a grade under ``profile`` draws, on this machine."""
    found = {"profile": profile, "python": f"{sys.version_info[0]}.{sys.version_info[1]}"}
    for dist in CASE_DISTRIBUTIONS:
        found[dist] = installed_version(dist)
    return found


def describe(versions: dict[str, str]) -> str:
    """``hypothesis 6.170.17, torch 2.14.1, Python 3.11, profile grading`` (for people)."""
    if not versions:
        return "unknown versions"
    parts = [f"{dist} {versions.get(dist) or 'missing'}" for dist in CASE_DISTRIBUTIONS]
    parts.append(f"Python {versions.get('python', '?')}")
    parts.append(f"profile {versions.get('profile', '?')}")
    return ", ".join(parts)


def differences(ours: dict[str, str], theirs: dict[str, str]) -> list[str]:
    """``["hypothesis 6.100.0 (here 6.170.17)", ...]``: where ``theirs`` differs from ours."""
    return [f"{key} {theirs.get(key) or 'missing'} (here {ours.get(key) or 'missing'})"
            for key in sorted(set(ours) | set(theirs)) if ours.get(key) != theirs.get(key)]
