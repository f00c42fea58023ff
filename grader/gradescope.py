"""The Gradescope autograder bundle, and what it runs on Gradescope.

    python -m grader gradescope autograder.zip     # build: upload it as the autograder

The zip's root becomes ``/autograder/source``: ``setup.sh`` (run once when Gradescope builds
the image: Python, bubblewrap, torch, the kit, all at the grading lock's versions),
``run_autograder`` (run per submission), the grader with the hidden graders and the
solutions, the packaging files and the grading lock (``constraints/grading.txt``: the same
hypothesis and torch as every other grading machine, so a student gets the same cases here as
in a batch). ``run_autograder``
grades ``/autograder/submission`` with the sandboxed grader and writes
``/autograder/results/results.json`` (docs/contract.md's schema is Gradescope's). Its paths
come from the environment, so a test runs it against a fake ``/autograder`` tree:

    AUTOGRADER_ROOT=/tmp/fake KIT_PYTHON=.venv/bin/python bash /tmp/fake/source/run_autograder

A grader failure writes no results.json and exits non-zero: Gradescope then shows "the
autograder failed" instead of a wrong 0.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import zipfile
from pathlib import Path

from grader import limits
from grader.config import parse_only
from grader.manifest import Pack
from grader.packs import DEFAULT_PACK, load_pack
from grader.versions import LOCK

REPO = Path(__file__).resolve().parents[1]
# copied into the bundle: the grader (with the kit's packs) and the graded pack's reference;
# a pack from KIT_PACK_PATH goes into the bundle's grader/packs/, so the image needs no path
BUNDLED_FILES = ("pyproject.toml", "README.md",  # what `pip install .` needs
                 LOCK)  # what setup.sh installs it with
SKIP_PARTS = {"__pycache__", ".pytest_cache", ".hypothesis"}
DEFAULT_PROBE_TIMEOUT_S = limits.PROBE_TIMEOUT_S
ONLY_ENV = "KIT_AUTOGRADER_ONLY"  # comma-separated ids: tests grade a cheap subset
HANDLE_ENV = "KIT_AUTOGRADER_HANDLE"

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (Ubuntu).
set -euo pipefail
SOURCE="$(cd "$(dirname "${{BASH_SOURCE[0]}}")" && pwd)"
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Student code runs in the best sandbox tier the container allows (README, "Sandbox tiers"):
# bubblewrap where namespaces work; in Gradescope's Docker container, an unprivileged uid +
# Landlock + seccomp (libseccomp2) + rlimits. The grade's top-level output names the tier.
apt-get install -y -qq python3 python3-venv python3-pip bubblewrap libseccomp2 >/dev/null
# The grading lock's hypothesis and numpy need Python >= 3.11 (Ubuntu 22.04's python3 is 3.10)
PYTHON=python3
if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  apt-get install -y -qq python3.11 python3.11-venv >/dev/null
  PYTHON=python3.11
fi
"$PYTHON" -m venv "$ROOT/venv"
"$ROOT/venv/bin/python" -m pip install --quiet --upgrade pip
# The grading lock: the versions every grading machine uses, so the cases drawn here are a
# batch's too (README, "Grading a class"); each results.json names them (extra_data.versions)
LOCK="$SOURCE/{lock}"
"$ROOT/venv/bin/python" -m pip install --quiet -c "$LOCK" torch torchvision
"$ROOT/venv/bin/python" -m pip install --quiet -c "$LOCK" "$SOURCE"
# Every correct submission faces the same reference results: compute them now, into the
# image, so a grade reuses them (faster, and it fits Gradescope's default 768 MB).
(cd "$SOURCE" && KIT_REFERENCE_CACHE="$ROOT/reference-cache" \
  "$ROOT/venv/bin/python" -m grader --pack {pack} precompute) \
  || echo "warning: reference results not precomputed: each grade computes its own"
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission: grade $ROOT/submission in the sandbox and write
# $ROOT/results/results.json. AUTOGRADER_ROOT and KIT_PYTHON let a test use a fake tree.
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PYTHON="${KIT_PYTHON:-$ROOT/venv/bin/python}"
cd "$(dirname "${BASH_SOURCE[0]}")"  # the bundled grader, not an installed copy
# Secrets stay unreadable to the workers' uid, even where Landlock is missing
chmod -R o-rwx . "$ROOT/results" 2>/dev/null || true
export KIT_REFERENCE_CACHE="$ROOT/reference-cache"  # filled by setup.sh (precompute)
exec "$PYTHON" -m grader.gradescope run --root "$ROOT" --pack @PACK@
"""


def _tree(folder: Path, name: str) -> list[tuple[Path, str]]:
    """Every file under ``folder``, named ``name/...`` in the bundle (no caches)."""
    files = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and not SKIP_PARTS & set(rel.parts) and path.suffix != ".pyc":
            files.append((path, f"{name}/{rel.as_posix()}"))
    return files


def _bundled_files(repo: Path, pack: Pack) -> list[tuple[Path, str]]:
    from grader.release import in_repo

    files = [(repo / name, name) for name in BUNDLED_FILES if (repo / name).is_file()]
    files += _tree(repo / "grader", "grader")
    if not pack.root.is_relative_to(REPO / "grader"):  # a course's own pack
        files += _tree(pack.root, f"grader/packs/{pack.name}")
    return files + _tree(in_repo(pack.solutions_dir, repo), pack.solutions_package)


def _add(zf: zipfile.ZipFile, name: str, data: bytes, mode: int) -> None:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))  # reproducible bytes
    info.external_attr = (0o100000 | mode) << 16  # regular file; the exec bit for scripts
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, data)


def build_bundle(out: str | Path, force: bool = False, repo: Path = REPO,
                 pack_name: str = DEFAULT_PACK) -> Path:
    """Write the autograder zip to ``out`` (atomically); refuse to overwrite unless ``force``."""
    pack = load_pack(pack_name)
    out = Path(out).resolve()
    if out.exists() and not force:
        raise FileExistsError(f"{out} exists (use --force to replace it)")
    if not (repo / LOCK).is_file():  # setup.sh installs with it: no bundle without it
        raise FileNotFoundError(f"{repo / LOCK} is missing (the grading lock)")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w") as zf:
            _add(zf, "setup.sh", SETUP_SH.format(lock=LOCK, pack=pack.name).encode(), 0o755)
            _add(zf, "run_autograder", RUN_AUTOGRADER.replace("@PACK@", pack.name).encode(),
                 0o755)
            for path, name in _bundled_files(repo, pack):
                _add(zf, name, path.read_bytes(), 0o644)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def run_autograder(root: str | Path, only: tuple[str, ...] = (), handle: str = "sandbox",
                   pack_name: str = DEFAULT_PACK) -> int:
    """Grade ``root/submission`` into ``root/results/results.json``; 0 when grading ran."""
    from grader.grade import grade

    root = Path(root)
    with tempfile.TemporaryDirectory(prefix="kit-gradescope-") as tmp:
        report = grade(root / "submission", tmp, only=only, handle=handle, quiet=True,
                       probe_timeout=DEFAULT_PROBE_TIMEOUT_S, pack_name=pack_name)
    report.write_json(root / "results" / "results.json")  # atomic: temp file + rename
    print(f"graded: {report.score:g} / {report.max_score:g}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.gradescope",
                                     description="run the autograder (inside the bundle)")
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="grade ROOT/submission into ROOT/results/results.json")
    r.add_argument("--root", default=os.environ.get("AUTOGRADER_ROOT", "/autograder"))
    r.add_argument("--pack", default=DEFAULT_PACK, help="course pack (default: %(default)s)")
    args = parser.parse_args(argv)
    only = parse_only(os.environ.get(ONLY_ENV))
    return run_autograder(args.root, only, os.environ.get(HANDLE_ENV, "sandbox"), args.pack)


if __name__ == "__main__":
    from grader.sandbox.zygote import clean_environment

    clean_environment(["-m", "grader.gradescope", *sys.argv[1:]])  # before torch: cheap
    sys.exit(main())
