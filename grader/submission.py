"""Finding the student's modules in what was handed in: a folder or a ``.zip`` of one.

Accepted layouts: the modules at the top (``conv.py``, ``blocks.py`` ...), or one folder
below (``exercises/conv.py`` or ``day02/conv.py``). Zips are unpacked with caps on size and
file count and no path may leave the target folder.
"""

from __future__ import annotations

import shutil
import stat
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

MAX_ZIP_FILES = 2000
MAX_ZIP_BYTES = 50 * 1024 * 1024  # uncompressed


class SubmissionError(Exception):
    """The submission cannot be graded at all; the message is one line for the report."""


def _safe_extract(archive: Path, target: Path) -> None:
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile:
        raise SubmissionError(f"{archive.name} is not a valid zip file") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_ZIP_FILES:
            raise SubmissionError(f"{archive.name} holds {len(infos)} files "
                                  f"(limit {MAX_ZIP_FILES})")
        if sum(i.file_size for i in infos) > MAX_ZIP_BYTES:
            raise SubmissionError(f"{archive.name} unpacks to more than "
                                  f"{MAX_ZIP_BYTES // 2**20} MiB")
        for info in infos:
            name = PurePosixPath(info.filename.replace("\\", "/"))
            if name.is_absolute() or ".." in name.parts:
                raise SubmissionError(f"{archive.name} contains an unsafe path: {info.filename}")
            if stat.S_ISLNK(info.external_attr >> 16):
                continue  # never materialise symlinks from an archive
            dest = target.joinpath(*name.parts)
            if info.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)


def find_package_dir(root: Path, modules: Iterable[str]) -> Path:
    """The folder under ``root`` (itself or one level down) holding most expected modules."""
    modules = tuple(modules)

    def hits(folder: Path) -> int:
        return sum((folder / f"{m}.py").exists() for m in modules)

    candidates = [root] + sorted(p for p in root.iterdir()
                                 if p.is_dir() and not p.name.startswith((".", "__")))
    for sub in list(candidates[1:]):  # a zip of a folder of a folder: look one more level
        candidates += sorted(p for p in sub.iterdir() if p.is_dir() and not p.name.startswith("."))
    best = max(candidates, key=hits)
    return best if hits(best) else root  # none at all: every probe says which file is missing


@contextmanager
def open_submission(path: str | Path, modules: Iterable[str]) -> Iterator[Path]:
    """Yield the folder holding the submission's modules (unpacking a zip to a temp dir)."""
    path = Path(path)
    if not path.exists():
        raise SubmissionError(f"submission {path} does not exist")
    if path.is_dir():
        yield find_package_dir(path, modules)
        return
    if path.suffix.lower() != ".zip":
        raise SubmissionError(f"submission {path} is neither a folder nor a .zip")
    with tempfile.TemporaryDirectory(prefix="kit-submission-") as tmp:
        _safe_extract(path, Path(tmp))
        yield find_package_dir(Path(tmp), modules)
