"""ruff format for what a commit adds: new files whole, changed files only where they changed.

Most of the kit predates ruff format (``ruff format --check .`` would restyle 129 files):
formatting a whole file on its first edit would bury the change in restyling, and clash with
others editing that file. So a file HEAD lacks is checked whole, and a file HEAD has only in
the line ranges that differ from HEAD (``ruff format --range``, once per range). The
pre-commit hook ``ruff-format-touched`` runs it on the staged Python files (pre-commit sets
unstaged changes aside first, so the tree then holds what the commit will).

    python tools/ruff_format_touched.py FILE...        # show what would change; exit 1 if any
    python tools/ruff_format_touched.py --fix FILE...  # rewrite those ranges

ruff is the one beside this Python (.venv-lint/bin), else the one on PATH.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@", re.MULTILINE)


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], capture_output=True, text=True)


def changed_ranges(path: str) -> list[tuple[int, int]] | None:
    """Lines ``[start, end)`` of ``path`` that differ from HEAD; None when HEAD lacks it."""
    if _git("cat-file", "-e", f"HEAD:{path}").returncode != 0:
        return None
    diff = _git("diff", "-U0", "--no-color", "--no-ext-diff", "HEAD", "--", path)
    if diff.returncode != 0:
        sys.exit(f"git diff {path}: {diff.stderr.strip()}")
    spans = []
    for hunk in HUNK.finditer(diff.stdout):
        start, count = int(hunk[1]), int(hunk[2] if hunk[2] is not None else 1)
        if count:  # a hunk that only deletes lines adds nothing to format
            spans.append((start, start + count))
    return spans


def main(argv: list[str]) -> int:
    fix = "--fix" in argv
    files = [a for a in argv if a != "--fix"]
    beside = Path(sys.executable).with_name("ruff")
    ruff = str(beside) if beside.exists() else shutil.which("ruff") or "ruff"
    failed = False
    for path in files:
        spans = changed_ranges(path)
        # bottom up, so that rewriting one range leaves the line numbers of those above valid
        ranges = [[]] if spans is None else [[f"--range={a}-{b}"] for a, b in reversed(spans)]
        for extra in ranges:
            mode = [] if fix else ["--diff"]
            done = subprocess.run([ruff, "format", "--force-exclude", *mode, *extra, path])
            failed |= done.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
