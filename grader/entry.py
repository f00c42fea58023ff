"""How the kit's processes start without importing anything from the working directory.

    dl-kit grade SUBMISSION ...       # the console script (pyproject.toml): main()
    python -m grader grade ...        # grader/__main__.py: drop_working_directory() first
    trusted_argv("grader.batch.run", [...])   # a child process of the kit, started safely

``python -m X`` and ``python -c`` put the working directory first on ``sys.path``: graded
from inside a submission (``cd student && python -m grader grade .``), its ``pytest.py``,
``torch.py`` or ``hypothesis.py`` would be imported into the trusted grader, before any
sandbox exists. A console script puts its own folder (the environment's ``bin/``) there
instead, and ``drop_working_directory`` removes the working directory, ``''`` and relative
entries from ``sys.path`` before anything else of the kit is imported. The kit's own root (a
checkout run in place) is kept, at the end, where nothing it holds shadows an installed
package. What ``python -m grader`` cannot undo: a ``grader/`` package in the working
directory is imported instead of the kit, before any line of the kit runs (use ``dl-kit``,
``python -P -m grader`` or another working directory).

Only ``os`` and ``sys`` are imported here: both are loaded before the working directory is
searched (so a submission's ``os.py`` is never read).
"""

import os
import sys

KIT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _real(path: str) -> str:
    try:
        return os.path.realpath(path)
    except (OSError, ValueError):
        return path


def _placeholder(entry: str) -> bool:
    """A ``sys.path`` entry that names no folder but a path hook of its own (setuptools'
    editable install: ``__editable__.<dist>.finder.__path_hook__``): kept."""
    if entry.startswith("__editable__.") and entry.endswith(".__path_hook__"):
        return True
    finder = sys.path_importer_cache.get(entry)
    return finder is not None and type(finder).__name__ not in ("FileFinder", "zipimporter")


def drop_working_directory() -> list[str]:
    """Remove the working directory, ``''`` and relative entries from ``sys.path`` (the kit's
    own root moves to the end); the removed entries are returned."""
    try:
        cwd = _real(os.getcwd())
    except OSError:  # a removed working directory: only '' and relative entries go
        cwd = None
    kit = _real(KIT_ROOT)
    kept: list[str] = []
    dropped: list[str] = []
    for entry in sys.path:
        untrusted = not isinstance(entry, str) or (
            not os.path.isabs(entry) and not _placeholder(entry)) or \
            (cwd is not None and os.path.isabs(entry) and _real(entry) == cwd)
        (dropped if untrusted else kept).append(entry)
    if any(isinstance(e, str) and os.path.isabs(e) and _real(e) == kit for e in dropped) or \
            (dropped and kit not in map(_real, kept)):
        kept.append(KIT_ROOT)  # a checkout run in place still finds its packages
    sys.path[:] = kept
    return dropped


def trusted_argv(module: str, args: list[str]) -> list[str]:
    """``python -m module args...`` as a child process that never searches its working
    directory: the kit's root first only until ``module`` is found, then
    ``drop_working_directory``."""
    boot = (f"import sys; sys.path.insert(0, {KIT_ROOT!r}); "
            "from grader.entry import run_module; "
            f"sys.path.remove({KIT_ROOT!r}); run_module({module!r})")
    return [sys.executable, "-c", boot, *args]


def run_module(module: str) -> None:
    """Run ``module`` as ``__main__`` (as ``python -m`` does), the working directory dropped."""
    import runpy  # frozen in the interpreter: never read from the working directory

    drop_working_directory()
    runpy.run_module(module, run_name="__main__", alter_sys=True)


def main() -> int:
    """The ``dl-kit`` console script: ``python -m grader``'s verbs."""
    drop_working_directory()
    from grader.cli import main as cli_main

    return cli_main()
