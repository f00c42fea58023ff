"""The batch's files: written atomically, and enough recorded to resume without regrading.

    DIR/<student>/results.json    the report (docs/contract.md's schema)
    DIR/<student>/feedback.md     the same, for the student to read
    DIR/<student>/.batch.json     written LAST: content hash, grader version, settings, the
                                  versions that drew the cases, status

A student counts as graded only when ``.batch.json`` says so and the ``results.json`` beside
it has the hash it records, so a batch killed between two writes regrades that student and
never trusts half of its files. Every write is a temp file in the same folder plus
``os.replace``: a reader sees the old file or the new one, never a torn one.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from grader import versions as kit_versions
from grader.results import atomic_write

GRADER_DIR = Path(__file__).resolve().parents[1]
META = ".batch.json"
LOCK = ".batch.lock"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# Code that writes reports or tools but never decides a score: editing it must not force a
# regrade of the class.
NOT_SCORING = ("batch", "release.py", "figures.py", "gradescope.py", "cli.py", "templates")


def grader_version() -> str:
    """A hash of everything that decides a score: the grader's code, the packs (graders,
    probes, strategies), the grading config, the hidden solutions, and what decides the cases
    the graders draw (grader/versions.py: hypothesis, torch, Python major.minor, the grading
    profile). A machine with another hypothesis therefore regrades instead of reusing a
    report, and keeps reference results of its own. A course's own packs (KIT_PACK_PATH) and
    every loaded pack's reference count too: the hash is cached per set of loaded packs."""
    from grader.packs import loaded_packs

    outside = [p for p in loaded_packs() if not p.root.is_relative_to(GRADER_DIR)]
    return _version_of(tuple(sorted(str(p.root) for p in outside)),
                       tuple(sorted({p.solutions_package for p in loaded_packs()})))


def forget_versions() -> None:
    """Hash again on the next grader_version() (a test that changes what decides a score)."""
    _version_of.cache_clear()


@functools.lru_cache(maxsize=8)
def _version_of(pack_roots: tuple[str, ...], references: tuple[str, ...]) -> str:
    from importlib.util import find_spec

    h = hashlib.sha256()
    h.update(json.dumps(kit_versions.case_versions(), sort_keys=True).encode() + b"\0")
    roots = [GRADER_DIR, *(Path(r) for r in pack_roots)]
    for name in dict.fromkeys(["solutions", *references]):
        spec = find_spec(name)
        locations = spec.submodule_search_locations if spec else None
        if locations is not None:
            roots.append(Path(next(iter(locations))))
    for root in roots:
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root)
            if path.suffix not in (".py", ".ini") or "__pycache__" in rel.parts or \
                    (root == GRADER_DIR and rel.parts[0] in NOT_SCORING):
                continue
            h.update(f"{root.name}/{rel.as_posix()}\0".encode())
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:16]


@dataclass
class Meta:
    """What one grading of one student left: the resume key and what the batch learnt."""

    student: str
    hash: str  # the submission's content hash
    grader_version: str
    settings: dict[str, Any]  # only, handle, timeout: anything else that changes a score
    status: str  # "graded" or "grader_error"
    results_sha256: str = ""
    problem: str = ""  # the submission could not be opened (graded at 0, says why)
    error: str = ""  # the grader itself failed on it: one line
    log_tail: str = ""  # ... and the end of the grading process's output, for the bug report
    worker: str = ""  # which dask worker graded it
    timings: dict[str, Any] = field(default_factory=dict)
    # what drew the cases on the worker that graded it (grader/versions.py; in grader_version)
    versions: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, folder: Path) -> Meta | None:
        try:
            data = json.loads((folder / META).read_text())
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None


def is_done(folder: Path, digest: str, version: str, settings: dict[str, Any],
            versions: dict[str, str] | None = None) -> bool:
    """Graded before with the same content, grader, settings and case versions (default:
    this machine's), and its report intact."""
    if versions is None:
        versions = kit_versions.case_versions()
    meta = Meta.load(folder)
    if meta is None or meta.status != "graded" or meta.hash != digest or \
            meta.grader_version != version or meta.settings != settings or \
            meta.versions != versions:
        return False
    try:
        return sha256((folder / "results.json").read_bytes()) == meta.results_sha256
    except OSError:
        return False


def save_graded(folder: Path, meta: Meta, results: dict[str, Any], feedback: str) -> None:
    """The report, the feedback, then the meta that makes them count (in that order)."""
    data = (json.dumps(results, indent=2) + "\n").encode()
    atomic_write(folder / "results.json", data)
    atomic_write(folder / "feedback.md", feedback)
    meta.results_sha256 = sha256(data)
    atomic_write(folder / META, json.dumps(asdict(meta), indent=2) + "\n")


def save_error(folder: Path, meta: Meta) -> None:
    """The grader failed on this student: no stale report may pass for a current one."""
    atomic_write(folder / META, json.dumps(asdict(meta), indent=2) + "\n")
    for name in ("results.json", "feedback.md"):
        (folder / name).unlink(missing_ok=True)


def remove_stale_temp_files(out: Path) -> None:
    """Temp files of writes a killed batch never finished (never read: rename is the commit).
    Called under the batch lock, so no live writer owns them."""
    for pattern in (".*.tmp", "*/.*.tmp"):
        for path in out.glob(pattern):
            path.unlink(missing_ok=True)


class BatchLock:
    """One batch per output folder at a time (released by the kernel, even on kill -9)."""

    def __init__(self, out: Path) -> None:
        self.path = out / LOCK
        self._fd: int | None = None

    def __enter__(self) -> BatchLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            self._fd = None
            raise RuntimeError(f"another batch is writing to {self.path.parent}") from None
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
