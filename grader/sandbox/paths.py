"""What a worker may see: the Python installation, system libraries, the kit, the submission.

Both walls use these lists: bubblewrap binds them read-only into an empty root, Landlock allows
reading them and nothing else. Never in them: the solutions and the grader package where an
install put them into site-packages (``hidden``), the repository, the report folder, /proc
(other processes' environments), home folders.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

HIDDEN_PACKAGES = ("solutions", "grader")  # masked where an install put them in site-packages
SYSTEM = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc")
UID_BASE = 2_000_000_000  # as root, a worker runs as UID_BASE + its supervisor's pid


def python_roots() -> list[Path]:
    """Folders the interpreter and its packages live in (real paths, no duplicates)."""
    roots = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(),
             Path(sys.executable).resolve().parents[1]}
    for entry in sys.path:
        path = Path(entry).resolve() if entry else None
        if path and path.is_dir() and "site-packages" in path.parts:
            roots.add(path)
    ordered = sorted(roots, key=lambda p: len(p.parts))
    return [r for i, r in enumerate(ordered) if not any(r.is_relative_to(o) for o in ordered[:i])]


def secret_packages() -> tuple[str, ...]:
    """The grader, and the solutions of every pack this process loaded (a course's own pack
    may name its reference package differently)."""
    from grader.packs import loaded_packs

    names = HIDDEN_PACKAGES + tuple(p.solutions_package for p in loaded_packs())
    return tuple(dict.fromkeys(names))


def hidden_dirs(within: list[Path]) -> list[Path]:
    """Every copy of the solutions and the grader inside ``within``: the one Python imports and
    any installed one (a ``pip install .`` puts both into site-packages)."""
    hidden: set[Path] = set()
    for name in secret_packages():
        spec = importlib.util.find_spec(name)
        found = [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
        found += [Path(e) / name for e in sys.path if e and (Path(e) / name).is_dir()]
        for loc in (p.resolve() for p in found):
            if any(loc.is_relative_to(m) for m in within):
                hidden.add(loc)
    return sorted(hidden)


def _without(root: Path, hidden: list[Path]) -> list[Path]:
    """``root`` as a list of folders and files that together hold all of it but ``hidden``.

    Landlock can only allow, never carve out: a root holding a hidden folder is allowed entry by
    entry, down to the hidden one's siblings.
    """
    if root in hidden:
        return []
    if not any(h.is_relative_to(root) for h in hidden):
        return [root]
    parts: list[Path] = []
    for entry in sorted(root.iterdir()):
        parts += _without(entry.resolve() if entry.is_symlink() else entry, hidden)
    return parts


def readable(extra: list[Path | str]) -> list[str]:
    """Everything a worker may read under Landlock: system, Python (less hidden), ``extra``."""
    roots = python_roots()
    hidden = hidden_dirs(roots + [Path("/usr")])
    found = [p for p in SYSTEM if Path(p).exists()] + ["/sys"]
    for root in roots:
        found += [str(p) for p in _without(root, hidden)]
    return found + [str(p) for p in extra]


def must_read() -> list[str]:
    """Files a worker cannot start without (checked for the unprivileged uid by the tier test)."""
    import os

    files = [sys.executable, os.__file__]
    torch = importlib.util.find_spec("torch")
    if torch and torch.origin:
        files.append(torch.origin)
    return files
