"""Finding the student's modules in what was handed in: a folder, a ``.zip`` of one, or a
notebook (``.ipynb``, alone or as the only file of a folder without modules).

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
from typing import IO

MAX_ZIP_FILES = 2000
MAX_ZIP_BYTES = 50 * 1024 * 1024  # uncompressed


class SubmissionError(Exception):
    """The submission cannot be graded at all; the message is one line for the report."""


def _checked_members(zf: zipfile.ZipFile, label: str) -> Iterator[tuple[zipfile.ZipInfo,
                                                                          tuple[str, ...]]]:
    """The members of ``zf`` with their path parts, after the caps and path checks.

    The declared sizes are enough for the size cap: zipfile never inflates a member past
    its declared ``file_size``.
    """
    infos = zf.infolist()
    if len(infos) > MAX_ZIP_FILES:
        raise SubmissionError(f"{label} holds {len(infos)} files (limit {MAX_ZIP_FILES})")
    if sum(i.file_size for i in infos) > MAX_ZIP_BYTES:
        raise SubmissionError(f"{label} unpacks to more than {MAX_ZIP_BYTES // 2**20} MiB")
    for info in infos:
        name = PurePosixPath(info.filename.replace("\\", "/"))
        if name.is_absolute() or ".." in name.parts:
            raise SubmissionError(f"{label} contains an unsafe path: {info.filename}")
        yield info, name.parts


def _open_zip(archive: Path | IO[bytes], label: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError):
        raise SubmissionError(f"{label} is not a valid zip file") from None


def _safe_extract(archive: Path, target: Path) -> None:
    with _open_zip(archive, archive.name) as zf:
        for info, parts in _checked_members(zf, archive.name):
            if stat.S_ISLNK(info.external_attr >> 16):
                continue  # never materialise symlinks from an archive
            dest = target.joinpath(*parts)
            if info.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)


def member_name(info: zipfile.ZipInfo) -> str | None:
    """A zip member's name as text, or None when it is neither ASCII nor UTF-8.

    zipfile decodes names without the UTF-8 flag as cp437; many tools store UTF-8 anyway.
    """
    name = info.filename
    if info.flag_bits & 0x800 or name.isascii():
        return name
    try:
        return name.encode("cp437").decode("utf-8")
    except UnicodeError:
        return None


def read_zip(archive: Path | IO[bytes], label: str) -> tuple[dict[str, bytes], list[str]]:
    """The regular files of a zip in memory, ``{"sub/conv.py": b"..."}``, with the checks of
    unpacking, plus notes on what was skipped (symbolic links). Used by batch grading, which
    ships submissions to workers as data."""
    files: dict[str, bytes] = {}
    notes: list[str] = []
    with _open_zip(archive, label) as zf:
        for info, _ in _checked_members(zf, label):
            name = member_name(info)
            parts = PurePosixPath(name.replace("\\", "/")).parts if name else ()
            if stat.S_ISLNK(info.external_attr >> 16):
                notes.append(f"{info.filename} is a symbolic link and was ignored")
            elif name is None:
                notes.append(f"the file name {ascii(info.filename)} in {label} is not valid "
                             "UTF-8 and the file was ignored")
            elif not info.is_dir() and parts:
                try:
                    files["/".join(parts)] = zf.read(info)
                except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError,
                        RuntimeError) as exc:  # CRC error, unsupported method, encrypted
                    raise SubmissionError(f"{label}: {info.filename} cannot be read "
                                          f"({exc})") from None
    return files, notes


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


def _lone_notebook(root: Path, modules: Iterable[str]) -> Path | None:
    """The one notebook of a folder that has none of the modules (a notebook class handed in
    through a batch or an LMS folder), or None."""
    modules = tuple(modules)
    package = find_package_dir(root, modules)
    if any((package / f"{m}.py").exists() for m in modules):
        return None
    notebooks = [p for p in (*root.glob("*.ipynb"), *root.glob("*/*.ipynb"))
                 if p.is_file() and not any(part.startswith(".") for part in p.parts[-2:])]
    return notebooks[0] if len(notebooks) == 1 else None


@contextmanager
def open_submission(path: str | Path, modules: Iterable[str]) -> Iterator[Path]:
    """Yield the folder holding the submission's modules (unpacking a zip to a temp dir)."""
    path = Path(path)
    if not path.exists():
        raise SubmissionError(f"submission {path} does not exist")
    if path.is_dir():
        notebook = _lone_notebook(path, modules)
        if notebook is None:
            yield find_package_dir(path, modules)
            return
        path = notebook  # a folder that holds a notebook and no modules: grade the notebook
    if path.suffix.lower() == ".ipynb":  # a notebook course: its solution cells, as modules
        from grader.notebook import notebook_to_package

        with tempfile.TemporaryDirectory(prefix="kit-submission-") as tmp:
            notebook_to_package(path, Path(tmp), tuple(modules))
            yield Path(tmp)
        return
    if path.suffix.lower() != ".zip":
        raise SubmissionError(f"submission {path} is not a folder, a .zip or a notebook "
                              "(.ipynb)")
    with tempfile.TemporaryDirectory(prefix="kit-submission-") as tmp:
        (Path(tmp) / "zip").mkdir()
        _safe_extract(path, Path(tmp) / "zip")
        notebook = _lone_notebook(Path(tmp) / "zip", modules)
        if notebook is None:
            yield find_package_dir(Path(tmp) / "zip", modules)
        else:
            from grader.notebook import notebook_to_package

            notebook_to_package(notebook, Path(tmp) / "notebook", tuple(modules))
            yield Path(tmp) / "notebook"
