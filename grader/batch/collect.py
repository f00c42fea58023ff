"""Finding the students in what the LMS gave: a folder, a zip of one, or a Canvas zip.

    found = collect(Path("submissions.zip"))
    for student in found.students:         # sorted by id, one per student
        student.id, student.files, student.problem, student.notes

Layouts (mixable): one sub-folder or ``.zip`` per student (its name is the student id), or
Canvas "Download Submissions" files ``login_userid_submissionid_name.py`` (``_LATE_`` allowed,
``conv-1.py`` re-uploads renamed back), grouped by login. A zip of such a folder may wrap it
in one top folder. Everything is read into memory with the single-submission caps (file
count, bytes), since workers get submissions as data, not paths.

Nothing here raises on bad input: a submission that cannot be graded gets a one-line
``problem`` (its report says why, every property at 0), a skipped file gets a ``note``, and
what belongs to no student is a batch-level note.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import re
import stat
import unicodedata
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from grader import limits
from grader.submission import (
    DAMAGED,
    MAX_ZIP_BYTES,
    MAX_ZIP_FILES,
    SubmissionError,
    foreign_hard_link,
    path_problem,
    read_zip,
)
from grader.text import clip_utf8, one_line

MAX_CLASS_ENTRIES = 500_000  # members of a class zip / files under a class folder
MAX_DEPTH = 12  # folder levels below a student's folder
JUNK_PARTS = {"__MACOSX", "__pycache__", ".git", ".ipynb_checkpoints", ".DS_Store", "Thumbs.db"}
CODE = (".py", ".ipynb")  # a submission holding neither has nothing to grade
# Every name the kit writes into a batch's output folder beside the students' folders (a
# student's id is their folder's name): an id equal to one, in any case, gets a "_" appended.
# Temporary and lock files start with "." (.batch.lock, .summary.md.*.tmp), as no id does.
RESERVED_IDS = {"gradebook.csv", "summary.md", "histogram.png", "batch.log", "canvas.json",
                "canvas-import.csv", "similarity.md", "similarity.html", "kit-reports"}
MAX_ID_BYTES = limits.STUDENT_ID_MAX_BYTES
# login, optional LATE, user id, submission id, the file's own name
CANVAS_NAME = re.compile(r"^(?P<login>.+?)_(?:late_)?(?P<user>\d+)_(?P<sub>\d+)_(?P<file>.+)$",
                         re.IGNORECASE)
CANVAS_REUPLOAD = re.compile(r"^(?P<stem>.+)-(?P<n>\d+)(?P<ext>\.[A-Za-z0-9]+)$")


@dataclass
class Student:
    id: str
    origin: str  # where it came from, for messages: "alice/", "alice.zip", "Canvas files"
    files: dict[str, bytes] = field(default_factory=dict)  # relative posix path -> bytes
    problem: str = ""  # why it cannot be graded; "" when it can
    notes: list[str] = field(default_factory=list)  # skipped files and renames
    canvas_user: str = ""  # the Canvas user id in its file names; "" when not from Canvas

    def digest(self) -> str:
        """The content hash: same files (and same problem) -> same hash, whatever the order."""
        h = hashlib.sha256()
        h.update(f"problem\0{self.problem}\0".encode())
        for path in sorted(self.files):
            h.update(path.encode("utf-8", "surrogateescape") + b"\0")
            h.update(hashlib.sha256(self.files[path]).digest())
        return h.hexdigest()


@dataclass
class Collection:
    students: list[Student]
    notes: list[str] = field(default_factory=list)  # what belonged to no student


# -- a uniform listing of a folder or a zip ----------------------------------------------------
@dataclass
class Entry:
    parts: tuple[str, ...]  # path below the source's root
    kind: str  # file, dir, link, other, unsafe
    size: int
    read: Callable[[], bytes]
    shown: str  # the name as shown in messages


def _nothing() -> bytes:
    return b""


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # os.listdir's surrogate escapes for undecodable bytes
        return False
    return True


def _escaped(name: str) -> bool:
    """Whether ``name``'s lone surrogates are all surrogateescape's (undecodable bytes)."""
    return all(not "\ud800" <= c <= "\udfff" or "\udc80" <= c <= "\udcff" for c in name)


def _shown(name: str) -> str:
    return name if _utf8(name) else ascii(os.fsencode(name))


def list_folder(root: Path) -> list[Entry]:
    """Every entry under ``root`` without following links; files are read on demand."""
    entries: list[Entry] = []

    def walk(folder: Path, parts: tuple[str, ...]) -> None:
        with os.scandir(folder) as it:
            items = sorted(it, key=lambda e: e.name)
        for item in items:
            if len(entries) >= MAX_CLASS_ENTRIES:
                raise SubmissionError(f"{root} holds more than {MAX_CLASS_ENTRIES} entries")
            sub = parts + (item.name,)
            info = item.stat(follow_symlinks=False)
            shown = "/".join(_shown(p) for p in sub)
            if stat.S_ISLNK(info.st_mode):
                entries.append(Entry(sub, "link", 0, _nothing, shown))
            elif stat.S_ISDIR(info.st_mode):
                entries.append(Entry(sub, "dir", 0, _nothing, shown))
                if len(sub) <= MAX_DEPTH:
                    walk(Path(item.path), sub)
            elif stat.S_ISREG(info.st_mode):
                entries.append(Entry(sub, "file", info.st_size,
                                     _file_reader(Path(item.path)), shown))
            else:
                entries.append(Entry(sub, "other", 0, _nothing, shown))

    walk(root, ())
    return entries


def _file_reader(path: Path) -> Callable[[], bytes]:
    def read() -> bytes:
        # a file swapped for a link or a FIFO since the listing: not followed, not waited on
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode) \
                    or foreign_hard_link(f.fileno(), path):
                return b""
            return f.read(MAX_ZIP_BYTES + 1)
    return read


def _zip_text(info: zipfile.ZipInfo) -> str:
    """A member's name as text; undecodable bytes surrogate-escaped, as os.listdir does."""
    if info.flag_bits & 0x800 or info.filename.isascii():
        return info.filename
    # zipfile decoded the raw bytes as cp437: get them back, then try UTF-8 (most tools)
    return info.filename.encode("cp437").decode("utf-8", "surrogateescape")


def list_zip(zf: zipfile.ZipFile) -> list[Entry]:
    """Every member of a class zip; unsafe paths are kept, marked as such ("/" or ".." first
    when they belong to no student)."""
    infos = zf.infolist()
    if len(infos) > MAX_CLASS_ENTRIES:
        raise SubmissionError(f"the zip holds {len(infos)} entries (limit {MAX_CLASS_ENTRIES})")
    entries = []
    for info in infos:
        path = PurePosixPath(_zip_text(info).replace("\\", "/"))
        if not path.parts:
            continue
        if path.is_absolute() or ".." in path.parts:
            kind = "unsafe"
        elif stat.S_ISLNK(info.external_attr >> 16):
            kind = "link"
        elif info.is_dir():
            kind = "dir"
        else:
            kind = "file"
        entries.append(Entry(path.parts, kind, info.file_size,
                             functools.partial(zf.read, info) if kind == "file" else _nothing,
                             "/".join(_shown(p) for p in path.parts).replace("//", "/")))
    return entries


# -- students ----------------------------------------------------------------------------------
def safe_id(name: str) -> str:
    """A student id usable as a folder name, a command-line value and a CSV cell, by
    construction: letters, digits and ``_.@+-`` (any script's letters: NFC-normalised), never
    starting with ``.`` (a hidden file, ``..``) or with ``- + @`` (an option, a spreadsheet
    formula), at most ``MAX_ID_BYTES`` bytes of UTF-8 (a long name keeps a hash of the whole,
    so two long names stay two ids), and never a name the batch writes in its output folder
    (``RESERVED_IDS``). A plain ASCII id (``alice``, ``s1234567``, ``j.doe``) is unchanged."""
    text = name
    if not _utf8(name):  # an undecodable name's bytes, as \xNN
        raw = name.encode("utf-8", "surrogateescape" if _escaped(name) else "surrogatepass")
        text = raw.decode("utf-8", "backslashreplace")
    text = unicodedata.normalize("NFC", text)
    text = re.sub(r"[^\w.@+-]", "_", text).lstrip(".") or "_"
    if text.startswith(("-", "+", "@")):
        text = "_" + text
    if len(text.encode("utf-8")) > MAX_ID_BYTES:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
        text = clip_utf8(text, MAX_ID_BYTES - len(digest) - 1) + "_" + digest
    return text + "_" if text.casefold() in RESERVED_IDS else text


def _is_junk(parts: Iterable[str]) -> bool:
    return any(p in JUNK_PARTS or p.endswith(".pyc") for p in parts)


def _read(entry: Entry, student: Student | None) -> bytes | None:
    """An entry's bytes; None (and a note) when it vanished or cannot be read."""
    try:
        return entry.read()
    except DAMAGED as exc:  # a class zip's damaged member, a file gone since the listing
        if student is not None:
            student.notes.append(f"{entry.shown} could not be read and was ignored "
                                 f"({type(exc).__name__})")
        return None


def _student_from_entries(sid: str, origin: str, entries: list[Entry]) -> Student:
    """A student's folder (its entries, paths relative to it), with the submission caps."""
    student = Student(sid, origin)
    files = [e for e in entries if e.kind == "file"]
    for e in entries:
        if e.kind == "unsafe":
            student.problem = f"{origin} contains an unsafe path: {e.shown}"
            return student
    if len(files) > MAX_ZIP_FILES:
        student.problem = f"{origin} holds {len(files)} files (limit {MAX_ZIP_FILES})"
        return student
    if sum(e.size for e in files) > MAX_ZIP_BYTES:
        student.problem = f"{origin} holds more than {MAX_ZIP_BYTES // 2**20} MiB"
        return student
    for e in entries:
        if e.kind == "link":
            student.notes.append(f"{e.shown} is a symbolic link and was ignored")
        elif e.kind == "other":
            student.notes.append(f"{e.shown} is not a regular file and was ignored")
        elif e.kind == "file" and not all(_utf8(p) for p in e.parts):
            student.notes.append(f"the file name {e.shown} is not valid UTF-8 and the file "
                                 "was ignored")
        elif e.kind == "file":
            data = _read(e, student)
            if data is not None:
                student.files["/".join(e.parts)] = data
    if sum(len(b) for b in student.files.values()) > MAX_ZIP_BYTES:  # sizes can change
        student.files.clear()
        student.problem = f"{origin} holds more than {MAX_ZIP_BYTES // 2**20} MiB"
    return student


def _student_from_zip(sid: str, origin: str, data: bytes) -> Student:
    student = Student(sid, origin)
    try:
        student.files, student.notes = read_zip(io.BytesIO(data), origin)
    except SubmissionError as exc:
        student.problem = str(exc)
    except Exception as exc:  # noqa: BLE001  (a malformed zip must cost one student only)
        student.problem = f"{origin} could not be read ({type(exc).__name__}, {one_line(exc, 200)})"
    student.files = {k: v for k, v in student.files.items()
                     if not _is_junk(PurePosixPath(k).parts)}
    return student


def _canvas_students(entries: list[tuple[Entry, re.Match]]) -> list[Student]:
    """Canvas files grouped by (login, user id); a login shared by two users gets the id."""
    groups: dict[tuple[str, str], list[tuple[Entry, re.Match]]] = {}
    for entry, match in entries:
        groups.setdefault((match["login"], match["user"]), []).append((entry, match))
    logins = [login for login, _ in groups]
    students = []
    for (login, user), members in sorted(groups.items()):
        sid = safe_id(login if logins.count(login) == 1 else f"{login}_{user}")
        student = Student(sid, f"Canvas files {login}_{user}_*", canvas_user=user)
        if logins.count(login) > 1:
            student.notes.append(f"two Canvas users share the login {login!r}: graded as {sid}")
        chosen: dict[str, tuple[int, Entry]] = {}
        for entry, match in members:
            if entry.size > MAX_ZIP_BYTES:
                student.problem = f"{entry.shown} is larger than {MAX_ZIP_BYTES // 2**20} MiB"
                break
            if match["file"].lower().endswith(".zip"):
                inner = _student_from_zip(sid, entry.shown, _read(entry, student) or b"")
                if inner.problem:
                    student.problem = inner.problem
                    break
                student.files.update(inner.files)
                student.notes += inner.notes
                continue
            name, n = match["file"], 0
            again = CANVAS_REUPLOAD.match(name)
            if again:  # Canvas renames a re-upload of conv.py to conv-1.py
                name, n = again["stem"] + again["ext"], int(again["n"])
            if name not in chosen or n > chosen[name][0]:
                chosen[name] = (n, entry)
        else:
            for name, (_, entry) in chosen.items():
                data = _read(entry, student)
                if data is not None:
                    student.files[name] = data
        if student.problem:
            student.files.clear()
        students.append(student)
    return students


def _strip_wrapper(entries: list[Entry]) -> list[Entry]:
    """Descend through a single top folder holding no code of its own (a zipped folder)."""
    while True:
        tops = {e.parts[0] for e in entries}
        if len(tops) != 1:
            return entries
        top = next(iter(tops))
        # a student's folder holds code; a wrapper holds only student folders and zips
        own_files = [e for e in entries if len(e.parts) == 2 and e.kind == "file"
                     and e.parts[1].endswith(CODE)]
        if own_files or not any(len(e.parts) > 1 for e in entries) or \
                any(e.parts == (top,) and e.kind != "dir" for e in entries):
            return entries
        entries = [Entry(e.parts[1:], e.kind, e.size, e.read, e.shown)
                   for e in entries if len(e.parts) > 1]


def group_students(entries: list[Entry]) -> Collection:
    entries = _strip_wrapper([e for e in entries if not _is_junk(e.parts)])
    notes: list[str] = []
    by_top: dict[str, list[Entry]] = {}
    for e in entries:
        by_top.setdefault(e.parts[0], []).append(e)
    students: list[Student] = []
    canvas: list[tuple[Entry, re.Match]] = []
    for top, members in sorted(by_top.items()):
        head = next((e for e in members if e.parts == (top,)), None)
        kind = head.kind if head else "dir"  # zips may omit folder entries
        shown = head.shown if head else _shown(top)
        if top in ("/", "..") or kind == "unsafe":  # belongs to no student
            notes += [f"skipped {e.shown}: an unsafe path" for e in members]
            continue
        stem = top[:-4] if kind == "file" and top.lower().endswith(".zip") else top
        sid = safe_id(stem)
        if kind == "dir":
            student = _student_from_entries(sid, f"{shown}/", [
                Entry(e.parts[1:], e.kind, e.size, e.read, e.shown) for e in members
                if len(e.parts) > 1])
        elif kind == "link":
            student = Student(sid, shown, problem=f"{shown} is a symbolic link and was not "
                              "followed")
        elif kind == "file" and (named := CANVAS_NAME.match(top)) and _utf8(top):
            assert head is not None  # kind "file" is the head's
            canvas.append((head, named))
            continue
        elif kind == "file" and stem != top:
            assert head is not None  # kind "file" is the head's
            student = (Student(sid, shown, problem=f"{shown} is larger than "
                               f"{MAX_ZIP_BYTES // 2**20} MiB") if head.size > MAX_ZIP_BYTES
                       else _student_from_zip(sid, shown, _read(head, None) or b""))
        else:
            notes.append(f"ignored {shown}: not a student folder, a .zip or a Canvas file")
            continue
        if sid != stem:
            student.notes.append(f"the name {_shown(stem)} is not a plain id: graded as {sid}")
        students.append(student)
    students += _canvas_students(canvas)
    return Collection(_check(students), notes)


def _check(students: list[Student]) -> list[Student]:
    """Duplicates become one row that says so; empty submissions say so too."""
    by_key: dict[str, list[Student]] = {}
    for s in students:
        by_key.setdefault(s.id.casefold(), []).append(s)
    result = []
    for key in sorted(by_key):
        same = by_key[key]
        if len(same) > 1:
            origins = ", ".join(s.origin for s in same)
            result.append(Student(min(s.id for s in same), origins,
                                  problem=f"the student id {same[0].id!r} appears "
                                  f"{len(same)} times ({origins}): not graded; keep one and "
                                  "grade again"))
            continue
        student = same[0]
        problem = path_problem(tuple(PurePosixPath(p).parts) for p in student.files)
        if problem and not student.problem:  # a Canvas file's name, a folder's odd layout
            student.files.clear()
            student.problem = f"{student.origin}: {problem}"
        if not student.problem and not student.files:
            student.problem = f"{student.origin} is empty: nothing was handed in"
        elif not student.problem and not any(p.endswith(CODE) for p in student.files):
            names = ", ".join(sorted(student.files)[:5])
            student.problem = f"{student.origin} holds no Python (.py) files (found: {names})"
        result.append(student)
    return result


def collect(source: str | Path) -> Collection:
    """The students in ``source``: a folder, a zip of one, or a Canvas zip."""
    source = Path(source)
    if source.is_dir():
        return group_students(list_folder(source))
    if not source.is_file():
        raise FileNotFoundError(f"{source} does not exist")
    try:
        with zipfile.ZipFile(source) as zf:
            return group_students(list_zip(zf))
    except zipfile.BadZipFile:
        raise SubmissionError(f"{source} is neither a folder nor a valid zip file") from None


def write_files(root: Path, files: dict[str, bytes]) -> None:
    """Materialise a student's files under ``root`` (a batch worker, the similarity report);
    the paths were checked at collection and are checked again here."""
    root.mkdir(mode=0o755, parents=True, exist_ok=True)
    for rel, data in files.items():
        parts = PurePosixPath(rel).parts
        if not parts or PurePosixPath(rel).is_absolute() or ".." in parts or "\0" in rel:
            continue
        path = root.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
