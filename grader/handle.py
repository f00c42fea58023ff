"""Handles run probes: on the reference (trusted, in the grader) or on a student's submission.

    expected = reference.run(probe, case)      # solutions.<probe.module>
    got = student.run(probe, case)             # exercises.<probe.module> of the submission

``InProcessHandle`` imports the submission into this process (the student self-check and the
quick path); the sandbox swaps in isolated workers behind the same ``run`` method, so no grader
changes. Student failures come back as ``ProbeFailure`` with a one-line message.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import os
import stat
import sys
import tempfile
import types
from pathlib import Path
from typing import Any

from grader import limits
from grader.config import HandleMode
from grader.packs import DEFAULT_PACK
from grader.probes import ProbeFailure, ProbeFn, sanitize
from grader.sandbox.worker import wire
from grader.sandbox.worker.guard import (
    ModuleUnavailable,
    describe_exception,
    guarded_call,
    import_submission_module,
    install_submission_package,
)

# the in-process side of the worker's guards (the self-check's load_exercise uses them too)
__all__ = ["DEFAULT_TIMEOUT_S", "InProcessHandle", "ModuleUnavailable", "ReferenceHandle",
           "UnavailableHandle", "describe_exception", "guarded_call", "import_submission_module",
           "open_handle", "reference_cache"]

DEFAULT_TIMEOUT_S = limits.IN_PROCESS_TIMEOUT_S
CACHE_ENV = "KIT_REFERENCE_CACHE"


def _qualname(probe: ProbeFn) -> str:
    return getattr(probe, "probe_name", getattr(probe, "__qualname__", repr(probe)))


class ReferenceHandle:
    """Runs probes on the hidden reference package (``solutions``) in the grader process."""

    isolation = "reference"

    def __init__(self, package: str = "solutions", cache_dir: str | Path | None = None) -> None:
        self.package = package
        # A batch grades every student against the same reference runs (the smoke run alone
        # is seconds): results are kept on disk, keyed by probe and case. The caller puts the
        # grader version in the path; only the grader process reads or writes it. Every
        # result, fast ones too: a hit costs about 1 ms (read, strict decode, sanitize), and a
        # "fast" probe is fast only once torch is warm: the first operator recording imports
        # torch._dynamo (2.3 s). Measured on one grade of the reference: keeping only results
        # over 0.1 s recomputed 552 of 587 reference runs every grade (6.2 s on a busy 2-core
        # machine); keeping all, a precomputed grade reads 587 entries in about 0.5 s.
        self.cache_dir = Path(cache_dir) if cache_dir else None

    def run(self, probe: ProbeFn, case: dict) -> Any:
        path = self._cache_path(probe, case)
        if path is not None and path.is_file():
            try:
                return sanitize(wire.loads(path.read_bytes()))
            except Exception:  # noqa: BLE001  (a damaged entry: compute it again)
                pass
        module = importlib.import_module(f"{self.package}.{probe.module}")
        result = sanitize(probe(module, copy.deepcopy(case)))
        if path is not None:
            _write_atomically(path, wire.dumps(result))
        return result

    def _cache_path(self, probe: ProbeFn, case: dict) -> Path | None:
        if self.cache_dir is None or not _is_plain_data(case):
            return None
        key = f"{getattr(probe, 'probe_name', _qualname(probe))}\0{case!r}"
        return self.cache_dir / f"{hashlib.sha256(key.encode()).hexdigest()}.pt"


def reference_cache(handle: str) -> Path | None:
    """Where this machine keeps reference results for the grader version: every
    student faces the same reference run, computed once per machine (``precompute`` fills
    it ahead of time; ``KIT_REFERENCE_CACHE`` moves it, ``=off`` turns it off). Only where the
    sandbox confines the workers' files (bubblewrap's private /tmp, or Landlock's write
    allowlist): student code that can write where the grader can, unsandboxed or in process,
    could otherwise poison the next student's reference."""
    from grader.sandbox.tiers import detect

    tier = detect(handle == "fallback")
    if handle not in ("sandbox", "fallback") or not (tier.namespaces
                                                      or "landlock" in tier.pieces):
        return None
    if os.environ.get(CACHE_ENV) == "off":
        return None
    base = Path(os.environ.get(CACHE_ENV) or
                Path(tempfile.gettempdir()) / f"kit-reference-cache-{os.getuid()}")
    try:
        base.mkdir(mode=0o700, exist_ok=True)
        info = base.lstat()
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        return None  # not ours alone (another user made it first): no cache
    from grader.batch.store import grader_version  # reads the solutions: after the fork

    return base / grader_version()[:20]


def _is_plain_data(value: Any) -> bool:
    """Builtin data only, so that ``repr`` is an exact, stable cache key."""
    if type(value) is dict:
        return all(type(k) is str and _is_plain_data(v) for k, v in value.items())
    if type(value) in (list, tuple):
        return all(_is_plain_data(v) for v in value)
    return type(value) in (type(None), bool, int, float, str)


def _write_atomically(path: Path, data: bytes) -> None:
    from grader.results import atomic_write  # grader side only: the sandbox has no results.py

    try:
        atomic_write(path, data)
    except OSError:  # a cache that cannot be written is no cache, not an error
        pass


class InProcessHandle:
    """Imports the submission as the package ``exercises`` in this process and runs probes.

    Use as a context manager: while open, ``sys.modules["exercises"]`` is the submission.
    """

    isolation = "in-process"

    def __init__(self, package_dir: str | Path, package: str = "exercises",
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.package_dir = Path(package_dir).resolve()
        self.package = package
        self.timeout_s = timeout_s
        self._saved: dict[str, types.ModuleType] = {}
        self._import_failures: dict[str, ProbeFailure] = {}
        self.notes: list[str] = []

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> InProcessHandle:
        self._saved = {k: v for k, v in sys.modules.items()
                       if k == self.package or k.startswith(self.package + ".")}
        for k in self._saved:
            del sys.modules[k]
        self.notes += install_submission_package(self.package, self.package_dir)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for k in [k for k in sys.modules if k == self.package or k.startswith(self.package + ".")]:
            del sys.modules[k]
        sys.modules.update(self._saved)

    # -- probes ------------------------------------------------------------------------------
    def module(self, name: str) -> types.ModuleType:
        """The submission's module ``name``, or ProbeFailure("import_error") saying why not."""
        if name in self._import_failures:
            raise self._import_failures[name]
        try:
            return import_submission_module(self.package, self.package_dir, name,
                                            self.timeout_s)
        except ProbeFailure as failure:
            self._import_failures[name] = failure
            raise

    def run(self, probe: ProbeFn, case: dict) -> Any:
        for other in getattr(probe, "uses", ()):
            self.module(other)  # its import failure, not a confusing one from inside the probe
        module = self.module(probe.module)
        timeout_s = float(getattr(probe, "timeout", None) or self.timeout_s)  # as in a worker
        result = guarded_call(lambda: probe(module, copy.deepcopy(case)), timeout_s,
                              self.package_dir, _qualname(probe))
        return sanitize(result)


class UnavailableHandle:
    """Stands in for a submission that could not be opened: every probe fails with why."""

    isolation = "unavailable"

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.notes = [f"could not grade the submission: {reason}"]

    def __enter__(self) -> UnavailableHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass

    def run(self, probe: ProbeFn, case: dict) -> Any:
        raise ProbeFailure("import_error", self.reason)


def open_handle(package_dir: str | Path, mode: HandleMode | str = HandleMode.IN_PROCESS,
                pack_name: str = DEFAULT_PACK, *, reason: str = "", **options: Any):
    """The handle the plugin gives graders as ``student``: in process, sandboxed workers, or
    (``HandleMode.UNAVAILABLE``) none, every probe failing with ``reason``."""
    mode = HandleMode(mode)  # a ValueError names an unknown mode
    if mode is HandleMode.UNAVAILABLE:
        return UnavailableHandle(reason)
    if mode is HandleMode.IN_PROCESS:
        from grader.packs import load_pack

        return InProcessHandle(package_dir, load_pack(pack_name).submission_package, **options)
    from grader.sandbox.client import SandboxHandle

    return SandboxHandle(package_dir, pack_name, force_fallback=mode is HandleMode.FALLBACK,
                         **options)
