"""The writable folders of an exercise: measured while it runs, emptied before the next one.

Runs in the supervisor, never in a child. Everything in these folders was made by student code,
so nothing here follows a link: folders are opened with O_NOFOLLOW relative to their parent's
descriptor, and removal is shutil.rmtree's descriptor-based walk, which refuses links.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys

OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


MAX_DEPTH = 64  # folders nested deeper are over the cap: a walk holds one descriptor a level


class _Over(Exception):
    """The walk stopped: what is over the cap."""


def usage(folders: list[str], max_files: int) -> tuple[int, int]:
    """(entries, bytes) under ``folders``; the walk stops once entries pass ``max_files``.

    _Over when a folder is nested past MAX_DEPTH or cannot be opened for a reason other than
    having just been removed (out of descriptors, no permission): what cannot be counted is
    never taken to be small."""
    total = [0, 0]

    def walk(fd: int, depth: int) -> None:
        subfolders = []
        with os.scandir(fd) as listing:
            for entry in listing:
                total[0] += 1
                if total[0] > max_files:
                    return
                try:
                    info = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                total[1] += info.st_blocks * 512
                if stat.S_ISDIR(info.st_mode):
                    subfolders.append(entry.name)
        for name in subfolders:  # one descriptor per level, never one per sibling
            if depth >= MAX_DEPTH:
                raise _Over(f"folders nested more than {MAX_DEPTH} deep")
            try:
                child = os.open(name, OPEN_DIR, dir_fd=fd)
            except (FileNotFoundError, NotADirectoryError):
                continue  # removed, or replaced by a link, since the listing
            except OSError as exc:
                raise _Over(f"a folder that cannot be counted ({exc.strerror})") from None
            try:
                walk(child, depth + 1)
            finally:
                os.close(child)
            if total[0] > max_files:
                return

    for folder in folders:
        try:
            fd = os.open(folder, OPEN_DIR)
        except OSError:
            continue
        try:
            walk(fd, 1)
        finally:
            os.close(fd)
        if total[0] > max_files:
            break
    return total[0], total[1]


def over_cap(folders: list[str], max_files: int, max_bytes: int) -> str:
    """Why the folders hold too much for one exercise, or ""."""
    try:
        entries, size = usage(folders, max_files)
    except _Over as over:
        return str(over)
    except OSError as exc:  # a listing that failed midway: not counted, so not small
        return f"a folder that cannot be counted ({exc.strerror})"
    if entries > max_files:
        return f"more than {max_files} files and folders"
    if size > max_bytes:
        return f"{size >> 20} MiB, over the {max_bytes >> 20} MiB allowed"
    return ""


def empty(folder: str, keep: tuple[str, ...] = ()) -> None:
    """Remove everything in ``folder`` (never the folder itself); a kept name that is a real
    folder of ours is emptied instead (scratch/home, the children's HOME)."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        path = os.path.join(folder, name)
        try:
            info = os.lstat(path)
        except OSError:
            continue
        if name in keep and stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid():
            empty(path)
            continue
        if stat.S_ISDIR(info.st_mode):
            remove_folder(path)
        else:
            try:
                os.unlink(path)  # a link itself, never its target
            except OSError:
                pass


def remove_folder(path: str) -> None:
    """rmtree; a folder a child locked (mode 000, same uid) is unlocked through an O_PATH
    descriptor, never through a path that could be swapped for a link."""
    for _ in range(64):
        if sys.version_info >= (3, 12):
            shutil.rmtree(path, onexc=_unlock)
        else:
            shutil.rmtree(path, onerror=_unlock)
        if not os.path.lexists(path):
            return


def _unlock(func, path: str, error) -> None:
    if not isinstance(error[1] if isinstance(error, tuple) else error, PermissionError):
        return
    for folder in (os.path.dirname(path), path):
        try:
            fd = os.open(folder, os.O_PATH | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            os.chmod(f"/proc/self/fd/{fd}", 0o700)
        except OSError:
            pass
        finally:
            os.close(fd)
