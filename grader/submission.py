"""Finding the student's modules in what was handed in: a folder, a ``.zip`` of one, or a
notebook (``.ipynb``, alone or as the only file of a folder without modules).

Accepted layouts: the modules at the top (``conv.py``, ``blocks.py`` ...), or one folder
below (``exercises/conv.py`` or ``day02/conv.py``). Zips are unpacked with caps on size and
file count and no path may leave the target folder.

Everything here is data to the grader. A symbolic link inside a submission is never followed:
not when choosing the package folder, not when finding a lone notebook, and a zip's links are
not made; each one is ignored with a note in the report (``open_submission``'s ``notes``).
Files are read with ``O_NOFOLLOW``, and only regular ones. (The path given on the command
line is the instructor's: it may itself be a link.) What cannot be laid out as files (a name
longer than the file system allows, a path nested deeper than ``MAX_PATH_PARTS``, a file and
a folder of one name), a damaged archive and an unreadable notebook are a ``SubmissionError``:
a complete report at 0 whose every property names the problem in one line.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO

from grader.text import one_line

MAX_ZIP_FILES = 2000
MAX_ZIP_BYTES = 50 * 1024 * 1024  # uncompressed
# A path's folders below the submission's root: real submissions are a few levels deep; a
# zip's 2,000-deep path would exhaust the file system's path length and Python's recursion.
MAX_PATH_PARTS = 32
# One name in a path, in bytes: the file system's limit (NAME_MAX), which a zip does not have.
MAX_NAME_BYTES = 255
# What zipfile (and zlib beneath it) raises on a damaged member: a bad CRC, a corrupt deflate
# stream, a truncated file, an unsupported method, an encrypted member.
DAMAGED = (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError,
           ValueError)


class SubmissionError(Exception):
    """The submission cannot be graded at all; the message is one line for the report."""


def path_problem(files: Iterable[tuple[str, ...]],
                 folders: Iterable[tuple[str, ...]] = ()) -> str:
    """Why files at these relative paths (and these folders) cannot be laid out on disk, in
    one line, or "" when they can."""
    seen: set[tuple[str, ...]] = set()
    parents: set[tuple[str, ...]] = set()
    for parts in files:
        shown = one_line("/".join(parts), 120)
        if len(parts) > MAX_PATH_PARTS:
            return f"{shown} is nested {len(parts)} levels deep (the limit is {MAX_PATH_PARTS})"
        for part in parts:
            if len(os.fsencode(part)) > MAX_NAME_BYTES:
                return (f"the name {one_line(part, 60)} is longer than {MAX_NAME_BYTES} bytes, "
                        "which no file system allows")
            if part in ("", ".", "..") or "\0" in part or "/" in part:
                return f"{shown} is not a valid path"
        seen.add(tuple(parts))
        parents.update(tuple(parts[:i]) for i in range(1, len(parts)))
    for parts in folders:
        parents.update(tuple(parts[:i]) for i in range(1, len(parts) + 1))
    both = sorted(seen & parents)
    if both:
        return f"{one_line('/'.join(both[0]), 120)} is both a file and a folder"
    return ""


def _checked_members(zf: zipfile.ZipFile, label: str) -> list[tuple[zipfile.ZipInfo,
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
    members = []
    for info in infos:
        name = PurePosixPath((member_name(info) or info.filename).replace("\\", "/"))
        if name.is_absolute() or ".." in name.parts:
            raise SubmissionError(f"{label} contains an unsafe path: {info.filename}")
        members.append((info, name.parts))
    laid_out = [(i, parts) for i, parts in members if parts and not _is_link(i)]
    problem = path_problem([p for i, p in laid_out if not i.is_dir()],
                           [p for i, p in laid_out if i.is_dir()])
    if problem:
        raise SubmissionError(f"{label}: {problem}")
    return members


def _is_link(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, label: str) -> bytes:
    try:
        return zf.read(info)
    except DAMAGED as exc:  # CRC error, corrupt deflate data, unsupported method, encrypted
        raise SubmissionError(f"{label}: {info.filename} cannot be read, the archive is "
                              f"damaged ({one_line(exc, 120)})") from None


def _open_zip(archive: Path | IO[bytes], label: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(archive)
    except DAMAGED:
        raise SubmissionError(f"{label} is not a valid zip file") from None


def _safe_extract(archive: Path, target: Path, notes: list[str]) -> None:
    label = archive.name
    with _open_zip(archive, label) as zf:
        for info, parts in _checked_members(zf, label):
            if _is_link(info):
                notes.append(f"{info.filename} is a symbolic link and was ignored")
                continue  # never materialise symlinks from an archive
            if member_name(info) is None:
                notes.append(f"the file name {ascii(info.filename)} in {label} is not valid "
                             "UTF-8 and the file was ignored")
                continue
            if not parts:
                continue
            dest = target.joinpath(*parts)
            if info.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            data = _read_member(zf, info, label)
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "wb") as out:  # a member listed twice: the last one counts
                out.write(data)


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
        for info, parts in _checked_members(zf, label):
            if _is_link(info):
                notes.append(f"{info.filename} is a symbolic link and was ignored")
            elif member_name(info) is None:
                notes.append(f"the file name {ascii(info.filename)} in {label} is not valid "
                             "UTF-8 and the file was ignored")
            elif not info.is_dir() and parts:
                files["/".join(parts)] = _read_member(zf, info, label)
    return files, notes


# -- a folder, never through a link ----------------------------------------------------------
def _kind(path: Path) -> str:
    """"file", "dir", "link", "other" or "missing", from ``lstat`` (a link is not followed)."""
    try:
        mode = os.lstat(path).st_mode
    except (OSError, ValueError):
        return "missing"
    if stat.S_ISLNK(mode):
        return "link"
    return "dir" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else "other"


def _entries(folder: Path) -> list[tuple[str, str]]:
    """(name, kind) of each entry of ``folder``, sorted, without following links."""
    try:
        with os.scandir(folder) as it:
            names = sorted(entry.name for entry in it)
    except OSError:
        return []
    return [(name, _kind(folder / name)) for name in names]


def _candidates(root: Path) -> list[Path]:
    """``root`` and its real sub-folders, two levels down (a zip of a folder of a folder)."""
    found = [root] + [root / n for n, kind in _entries(root)
                      if kind == "dir" and not n.startswith((".", "__"))]
    for sub in list(found[1:]):
        found += [sub / n for n, kind in _entries(sub) if kind == "dir" and not n.startswith(".")]
    return found


def _hits(folder: Path, modules: tuple[str, ...]) -> int:
    return sum(_kind(folder / f"{m}.py") == "file" for m in modules)


def find_package_dir(root: Path, modules: Iterable[str]) -> Path:
    """The folder under ``root`` (itself or one level down) holding most expected modules; a
    link is neither a folder nor a module here."""
    modules = tuple(modules)
    candidates = _candidates(root)
    best = max(candidates, key=lambda folder: _hits(folder, modules))
    # none at all: every probe says which file is missing
    return best if _hits(best, modules) else root


def _lone_notebook(root: Path, modules: Iterable[str]) -> Path | None:
    """The one notebook of a folder that has none of the modules (a notebook class handed in
    through a batch or an LMS folder), or None. A link to a notebook is none."""
    modules = tuple(modules)
    if _hits(find_package_dir(root, modules), modules):
        return None
    folders = [root] + [root / n for n, kind in _entries(root)
                        if kind == "dir" and not n.startswith(".")]
    notebooks = [folder / n for folder in folders for n, kind in _entries(folder)
                 if kind == "file" and n.endswith(".ipynb") and not n.startswith(".")]
    return notebooks[0] if len(notebooks) == 1 else None


def _links(root: Path) -> list[Path]:
    """The symbolic links among the entries the search above looks at."""
    folders = [root] + [root / n for n, kind in _entries(root) if kind == "dir"]
    folders += [sub / n for sub in folders[1:] for n, kind in _entries(sub) if kind == "dir"]
    return [folder / n for folder in folders for n, kind in _entries(folder) if kind == "link"]


def link_notes(root: Path, package: Path | None) -> list[str]:
    """One note per link the search ignored, except those in ``package`` itself (the
    sandbox's staging names those, as it ignores them too)."""
    return [f"{one_line(link.relative_to(root).as_posix(), 200)} is a symbolic link and was "
            "ignored" for link in _links(root) if link.parent != package]


def read_regular_file(path: Path, limit: int) -> bytes:
    """The bytes of ``path``, a regular file read without following a link or waiting on a
    FIFO; OSError (ELOOP for a link) when it is anything else, ``limit + 1`` bytes at most."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        if foreign_hard_link(f.fileno(), path):
            raise OSError(errno.EPERM, "a hard link to a file of another owner")
        return f.read(limit + 1)


def foreign_hard_link(fd: int, path: Path) -> bool:
    """``fd`` (opened from ``path``) is a second name for a file whose owner is not its
    folder's: a student with an account on the grading machine can hard-link a file only the
    grader may read (O_NOFOLLOW sees no link). Uploads, clones and copies own their files."""
    info = os.fstat(fd)
    if info.st_nlink <= 1:
        return False
    try:
        return info.st_uid != os.lstat(path.parent).st_uid
    except OSError:
        return True


@contextmanager
def open_submission(path: str | Path, modules: Iterable[str],
                    notes: list[str] | None = None) -> Iterator[Path]:
    """Yield the folder holding the submission's modules (unpacking a zip to a temp dir, a
    notebook's cells into modules). What was skipped (links, names that are not UTF-8) is
    appended to ``notes``, for the report."""
    notes = notes if notes is not None else []
    path = Path(path)
    if path.is_symlink():  # the instructor's own argument: followed, once
        path = path.resolve()
    if not path.exists():
        raise SubmissionError(f"submission {one_line(path, 300)} does not exist")
    if path.is_dir():
        notebook = _lone_notebook(path, modules)
        package = find_package_dir(path, modules) if notebook is None else None
        notes += link_notes(path, package)
        if package is not None:
            yield package
            return
        assert notebook is not None
        path = notebook  # a folder that holds a notebook and no modules: grade the notebook
    elif not path.is_file():  # a FIFO would block the unzipping for ever
        raise SubmissionError(f"submission {one_line(path, 300)} is not a regular file or a "
                              "folder")
    if path.suffix.lower() == ".ipynb":  # a notebook course: its solution cells, as modules
        from grader.notebook import notebook_to_package

        with tempfile.TemporaryDirectory(prefix="kit-submission-") as tmp:
            notebook_to_package(path, Path(tmp), tuple(modules))
            yield Path(tmp)
        return
    if path.suffix.lower() != ".zip":
        raise SubmissionError(f"submission {one_line(path, 300)} is not a folder, a .zip or a "
                              "notebook (.ipynb)")
    with tempfile.TemporaryDirectory(prefix="kit-submission-") as tmp:
        (Path(tmp) / "zip").mkdir()
        try:
            _safe_extract(path, Path(tmp) / "zip", notes)
        except OSError as exc:  # what the checks above did not foresee: still one line
            raise SubmissionError(f"{one_line(path.name, 200)} cannot be unpacked "
                                  f"({one_line(exc.strerror or exc, 120)})") from None
        notebook = _lone_notebook(Path(tmp) / "zip", modules)
        if notebook is None:
            yield find_package_dir(Path(tmp) / "zip", modules)
        else:
            from grader.notebook import notebook_to_package

            notebook_to_package(notebook, Path(tmp) / "notebook", tuple(modules))
            yield Path(tmp) / "notebook"
