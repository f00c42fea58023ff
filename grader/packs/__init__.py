"""Course packs: one folder per day. ``load_pack()`` returns the one the CLI grades by default."""

from __future__ import annotations

import importlib

from grader.manifest import Pack

DEFAULT_PACK = "day02"


def load_pack(name: str = DEFAULT_PACK) -> Pack:
    try:
        module = importlib.import_module(f"grader.packs.{name}")
    except ModuleNotFoundError as exc:
        raise ValueError(f"no course pack named {name!r} "
                         f"(looked for grader/packs/{name}/)") from exc
    return module.PACK
