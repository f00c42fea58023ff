"""Which isolation this machine can give student code: chosen once per process, named in reports.

    tier = detect()           # Tier(pieces=("uid", "landlock", "seccomp", "rlimits"), ...)
    print(tier.describe())    # Student code ran: unprivileged uid + Landlock + seccomp + ...

    where                                        pieces in force
    a Linux box or VM (bubblewrap works)         namespaces, unprivileged uid, seccomp, rlimits
    root, no namespaces (Docker: Gradescope)     unprivileged uid, Landlock, seccomp, rlimits
    not root, no namespaces (laptop, JupyterHub) Landlock, seccomp, rlimits
    none of these (macOS, an old kernel)         rlimits only: not ``usable``, grading refuses

A piece that does not work here (an older Docker profile answers Landlock's calls with EPERM, an
old kernel with ENOSYS, Python installed where other users cannot read it) is left out and
named with its reason: the tier degrades, and the report says exactly what was in force.
``KIT_SANDBOX_DISABLE=namespaces,uid,landlock,seccomp`` leaves pieces out on purpose (tests).
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from grader.sandbox import paths

DISABLE_ENV = "KIT_SANDBOX_DISABLE"
WORDS = {"namespaces": "bubblewrap namespaces", "uid": "unprivileged uid",
         "landlock": "Landlock", "seccomp": "seccomp", "rlimits": "rlimits"}
CONFINEMENT = ("uid", "landlock", "seccomp")  # the pieces a worker applies to itself


@dataclass(frozen=True)
class Tier:
    pieces: tuple[str, ...]  # in force, in WORDS order
    missing: tuple[tuple[str, str], ...] = ()  # (piece, why it is not in force)
    context: str = ""  # why there are no namespaces, when there are none

    @property
    def namespaces(self) -> bool:
        return "namespaces" in self.pieces

    @property
    def usable(self) -> bool:
        """Student files and the grader's are kept apart (else: refuse untrusted code)."""
        return bool({"namespaces", "uid", "landlock"} & set(self.pieces))

    @property
    def name(self) -> str:
        return "bubblewrap" if self.namespaces else "+".join(self.pieces)

    def describe(self) -> str:
        """One line for the terminal and results.json's top-level output."""
        shown = tuple(p for p in self.pieces if p in ("namespaces", "seccomp")) \
            if self.namespaces else self.pieces
        line = "Student code ran: " + " + ".join(WORDS[p] for p in shown)
        if self.namespaces:
            line += " (bubblewrap: no network, no other processes, a read-only view)"
        elif self.context:
            line += f" ({self.context})"
        if not self.usable:
            line += " -- WITHOUT isolation: it could read and change anything the grader can"
        return line + "."

    def gaps(self) -> list[str]:
        """A line per piece that was wanted and is not in force, with why."""
        return [f"Not in force: {WORDS[p]}: {why}." for p, why in self.missing]


class SandboxUnavailable(RuntimeError):
    """No tier can keep student code from the grader here: one line saying what to do."""

    def __init__(self, tier: Tier) -> None:
        why = "; ".join(f"{WORDS[p]}: {w}" for p, w in tier.missing) or tier.context
        super().__init__(
            f"refusing to run untrusted code without a sandbox ({tier.context}; {why}). "
            "Install bubblewrap (apt-get install bubblewrap) or use Linux >= 5.13 with "
            "Landlock, or pass --allow-unsandboxed to run it anyway")


def disabled() -> set[str]:
    return {p.strip() for p in os.environ.get(DISABLE_ENV, "").split(",") if p.strip()}


def in_container() -> bool:
    if Path("/.dockerenv").exists() or Path("/run/.containerenv").exists():
        return True
    try:
        text = Path("/proc/1/cgroup").read_text()
    except OSError:
        return False
    return any(word in text for word in ("docker", "kubepods", "containerd", "lxc"))


def detect(force_fallback: bool = False) -> Tier:
    """The best tier here (``force_fallback``: without namespaces); checked once per setting."""
    return _detect(frozenset(disabled() | ({"namespaces"} if force_fallback else set())))


@functools.lru_cache(maxsize=8)
def _detect(off: frozenset[str]) -> Tier:
    from grader.sandbox.launcher import bwrap_problem

    problem = "left out (KIT_SANDBOX_DISABLE or --handle fallback)" if "namespaces" in off \
        else bwrap_problem()
    if not problem:  # children still load the seccomp filter: sockets, SysV IPC (confine.py)
        walls: tuple[str, ...] = ("namespaces", "uid") if os.getuid() == 0 else ("namespaces",)
        why = "left out (KIT_SANDBOX_DISABLE)" if "seccomp" in off \
            else self_test(["seccomp"], bubblewrap=True).get("seccomp", "untested")
        if why:
            return Tier(walls + ("rlimits",), (("seccomp", why),))
        return Tier(walls + ("seccomp", "rlimits"))
    found = self_test()
    pieces, missing = [], []
    for piece in CONFINEMENT:
        why = "left out (KIT_SANDBOX_DISABLE)" if piece in off else found.get(piece, "untested")
        if piece == "uid" and os.getuid() != 0:
            continue  # not a gap: without root there is no uid to drop to
        (missing.append((piece, why)) if why else pieces.append(piece))
    if "namespaces" in off:
        context = "bubblewrap " + problem
    else:
        context = "no namespaces available: " + ("running in a container" if in_container()
                                                 else problem)
    return Tier(tuple(pieces) + ("rlimits",), tuple(missing), context)


def self_test(pieces: list[str] | None = None, bubblewrap: bool = False) -> dict[str, str]:
    """Ask a throwaway worker process which confinement pieces work here (why not, or "");
    with ``bubblewrap``, one inside bwrap's view of the system, as the sandbox's children."""
    with tempfile.TemporaryDirectory(prefix="kit-tier-") as probe_dir:
        options = {"uid": paths.UID_BASE + os.getpid(), "read": paths.readable([]),
                   "must_read": paths.must_read(), "probe_dir": probe_dir,
                   "pieces": pieces or list(CONFINEMENT)}
        script = Path(__file__).resolve().parent / "worker" / "confine.py"
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
        argv = [sys.executable, "-I", str(script), "--self-test", json.dumps(options)]
        if bubblewrap:
            from grader.sandbox.launcher import bubblewrap_argv

            # under the fresh /tmp: a top-level folder could hide Python (a venv in /check/...)
            inside = "/tmp/kit-self-test"
            argv = bubblewrap_argv(["--ro-bind", str(script.parent), inside],
                                   [*argv[:2], f"{inside}/confine.py", *argv[3:]], env)
        try:
            done = subprocess.run(argv, capture_output=True, timeout=60, env=env)
            return json.loads(done.stdout)
        except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
            said = done.stderr.decode(errors="replace").strip()[-200:] \
                if isinstance(exc, ValueError) else ""
            why = f"the confinement self-test failed ({exc}{'; ' + said if said else ''})"
            return {piece: why for piece in pieces or CONFINEMENT}
