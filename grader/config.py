"""One typed configuration for a grade, from the command line to the plugin.

    config = GradeConfig(pack="day02", handle=HandleMode.SANDBOX, only=parse_only("conv2d"))
    report = run_graders(load_pack(config.pack), package_dir, out, config)   # grade.py

``grade.py`` hands the config to the plugin as an object (``pytest.main(args,
plugins=[KitGrading(config)])``) and gets the report back in memory; the ``--kit-*`` options
exist only for a person who runs the graders with pytest by hand, and become the same config.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from grader.manifest import Pack
from grader.packs import DEFAULT_PACK


class HandleMode(str, Enum):
    """Where student code runs while grading."""

    IN_PROCESS = "in-process"  # this process: the self-check and trusted code only
    SANDBOX = "sandbox"  # the best sandbox tier this machine has
    FALLBACK = "fallback"  # the tier without namespaces (a container's), even where bwrap works
    UNAVAILABLE = "unavailable"  # no submission to run: every probe fails with the reason

    @property
    def sandboxed(self) -> bool:
        return self in (HandleMode.SANDBOX, HandleMode.FALLBACK)


def parse_only(text: str | Iterable[str] | None) -> tuple[str, ...]:
    """``"conv2d, init"`` (or a list of ids) -> ``("conv2d", "init")``; None or "" -> ()."""
    if text is None:
        return ()
    parts = text.split(",") if isinstance(text, str) else list(text)
    return tuple(p.strip() for p in parts if p.strip())


def check_only(only: tuple[str, ...], pack: Pack) -> None:
    """A typo in ``only`` is a usage error (ValueError), reported before anything runs."""
    for ex_id in only:
        try:
            pack.exercise(ex_id)
        except KeyError as exc:
            raise ValueError(exc.args[0]) from None


@dataclass(frozen=True)
class GradeConfig:
    """What decides a grade besides the submission and the graders."""

    pack: str = DEFAULT_PACK
    handle: HandleMode = HandleMode.SANDBOX
    reason: str = ""  # HandleMode.UNAVAILABLE: why the submission could not be opened
    only: tuple[str, ...] = ()  # exercise ids; () = all
    probe_timeout: float | None = None  # None: the handle's default (grader.limits)
    threads: int | None = None  # torch threads for the references and each worker
    reference_cache: str | None = None  # a folder, "auto" (the machine's), or None
    # whether the submission folder holds the student's source for the static check
    # (grader/static_check.py); False where it holds the kit's own shims over code that lives
    # elsewhere (a notebook kernel's check(), grader/notebook_api.py)
    read_source: bool = True
    # what opening the submission skipped (a symbolic link, a name that is not UTF-8), one
    # line each, for the report's output (grader/submission.py)
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "handle", HandleMode(self.handle))
        if (self.handle is HandleMode.UNAVAILABLE) != bool(self.reason):
            raise ValueError("a reason goes with HandleMode.UNAVAILABLE, and only with it")
