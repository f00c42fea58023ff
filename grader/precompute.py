"""``python -m grader precompute``: fill the machine's reference cache before students come.

    python -m grader precompute          # Gradescope's setup.sh runs it when it builds the image

Under the grading profile every student faces the same derandomized cases, so the slow
reference results (the smoke run, the ResNet forward passes) are the same for all of them.
This grades the hidden solutions once, in process (they are trusted), with the cache on; each
later grade of a correct submission then reads those results instead of training the
reference again: seconds and, in a 768 MiB container, the memory that decides whether a grade
completes. Cases a wrong submission shrinks to are computed live. The cache folder is named
by the grader version (code, solutions, torch and hypothesis), so an update never reads stale
results.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from grader.config import GradeConfig, HandleMode
from grader.grade import run_graders
from grader.handle import reference_cache
from grader.packs import DEFAULT_PACK, load_pack


def precompute(pack_name: str = DEFAULT_PACK, handle: str = "sandbox") -> Path:
    """Grade the solutions once with the cache that grades with ``handle`` will read."""
    cache = reference_cache(handle)
    if cache is None:
        raise RuntimeError("no reference cache here: it is kept only where the sandbox stops "
                           "student code from writing it (bubblewrap or Landlock), and not "
                           "with KIT_REFERENCE_CACHE=off")
    pack = load_pack(pack_name)
    with tempfile.TemporaryDirectory(prefix="kit-precompute-") as out:
        config = GradeConfig(pack=pack.name, handle=HandleMode.IN_PROCESS,
                             reference_cache=str(cache))
        report = run_graders(pack, pack.solutions_dir, Path(out), config, quiet=True)
    if report.score != report.max_score:
        raise RuntimeError(f"the solutions scored {report.score:g} / {report.max_score:g}: "
                           "the reference cache would not match a correct submission's cases")
    return cache
