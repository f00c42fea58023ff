"""Course packs: one folder per day. ``load_pack()`` returns the one the CLI grades by default.

A pack is the package ``grader.packs.<name>``: a folder here, or one in a directory named by
``KIT_PACK_PATH`` (``os.pathsep``-separated, like ``PYTHONPATH``), so a course keeps its own
days outside the kit: ``KIT_PACK_PATH=~/course/packs python -m grader --pack day03 grade ...``.
"""

from __future__ import annotations

import importlib
import os
import sys

from grader.manifest import Pack

DEFAULT_PACK = "day02"
PACK_PATH_ENV = "KIT_PACK_PATH"

# more folders that hold pack folders: searched after the kit's own (a pack cannot shadow day02)
__path__ = [*__path__, *(p for p in os.environ.get(PACK_PATH_ENV, "").split(os.pathsep) if p)]


def load_pack(name: str = DEFAULT_PACK) -> Pack:
    if not name.isidentifier():
        raise ValueError(f"no course pack named {name!r}: a pack name is a Python identifier")
    try:
        module = importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise  # the pack exists; something it imports does not
        where = ", ".join(__path__)
        raise ValueError(f"no course pack named {name!r} (looked in {where}; a course's own "
                         f"packs are found through {PACK_PATH_ENV})") from exc
    return module.PACK


def loaded_packs() -> list[Pack]:
    """The packs this process has loaded: their solutions and graders are its secrets."""
    prefix = f"{__name__}."
    return [module.PACK for name, module in list(sys.modules.items())
            if name.startswith(prefix) and "." not in name[len(prefix):]
            and isinstance(getattr(module, "PACK", None), Pack)]
