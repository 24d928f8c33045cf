"""Find the input files under PATH arguments: the one walk of ``validate`` and ``export``.

Every entry met is accounted for, never dropped silently (docs/reliability.md):

* a **file** to read: a regular file named on the command line (always), or, in a
  folder, a regular file named ``*.dcm`` (any case) or holding ``DICM`` after the 128-byte
  preamble (PS3.10 7.1);
* **skipped**, with the reason: in a folder, a regular file that is not DICOM by that
  rule, a hidden file or folder (leading ``.``: e.g. the temporary file of an atomic
  write), or a symbolic link to a folder already walked;
* a **problem**, with the reason: a dangling symbolic link, a symbolic link loop, a folder
  or file that cannot be read, or something that is not a regular file (a FIFO or device
  would block or never end).

Symbolic links are followed, but a folder is walked once: a link back to a folder on the
way down is a loop (a problem), a second link to a folder walked elsewhere is skipped.  So
nothing can loop and no file outside the given paths is reached except through a link
inside them.  The walk is iterative (no recursion limit on deep folder trees); entries are
sorted by name within each folder and folders are entered where they sort.
"""

from __future__ import annotations

import enum
import errno
import logging
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from csv2sr.errors import SourceError

__all__ = [
    "EntryKind",
    "InputEntry",
    "InputList",
    "InputPathError",
    "find_inputs",
    "input_files",
    "is_dicom_file",
    "unique_inputs",
    "walk_inputs",
]

log = logging.getLogger(__name__)

_PREFIX = b"DICM"
_PREAMBLE = 128


class InputPathError(SourceError):
    """A PATH argument that does not exist at all (a usage error, not a finding)."""


class EntryKind(str, enum.Enum):
    """What the walk made of one entry."""

    FILE = "file"
    SKIPPED = "skipped"
    PROBLEM = "problem"


@dataclass(frozen=True, slots=True)
class InputEntry:
    """One entry met by the walk: a file to read, a skipped entry or a problem."""

    path: Path
    """The entry as found (the PATH argument joined with the walk)."""
    relative: str
    """Its path relative to its PATH argument (the name, for a PATH that is not a folder)."""
    kind: EntryKind
    reason: str = ""
    """Why it was skipped, or what the problem is (empty for a file)."""


class InputList(list[InputEntry]):
    """The walk of some PATH arguments, listed once and passed on (a plain list)."""

    unique = False
    """Made by :func:`unique_inputs`: each file once, skipped entries left out."""

    @property
    def files(self) -> list[InputEntry]:
        return [e for e in self if e.kind is EntryKind.FILE]

    @property
    def skipped(self) -> list[InputEntry]:
        return [e for e in self if e.kind is EntryKind.SKIPPED]

    @property
    def problems(self) -> list[InputEntry]:
        return [e for e in self if e.kind is EntryKind.PROBLEM]


def is_dicom_file(path: Path) -> bool:
    """PS3.10 7.1: a 128-byte preamble followed by ``DICM`` (False when unreadable)."""
    try:
        return _has_prefix(path)
    except OSError:
        return False


def _has_prefix(path: Path) -> bool:
    with path.open("rb") as fh:
        fh.seek(_PREAMBLE)
        return fh.read(4) == _PREFIX


def _kind_name(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def _link_problem(path: Path, exc: OSError) -> str:
    """Why ``stat`` failed on an entry: a loop, a dangling link or an unreadable entry."""
    if path.is_symlink():
        if exc.errno == errno.ELOOP:
            return "symbolic link loop: not followed"
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        if exc.errno == errno.ENOENT:
            return f"dangling symbolic link to {target}: nothing to read"
    return f"cannot be read: {exc.strerror or exc}"


def _problem(path: Path, relative: str, reason: str) -> InputEntry:
    return InputEntry(path, relative, EntryKind.PROBLEM, reason)


def _given(path: Path) -> Iterator[InputEntry]:
    """A PATH argument: a file is always read; a folder is walked."""
    if not os.path.lexists(path):
        raise InputPathError(path, "no such file or folder")
    try:
        info = path.stat()
    except OSError as exc:
        yield _problem(path, path.name, _link_problem(path, exc))
        return
    if stat.S_ISDIR(info.st_mode):
        yield from _walk(path, info)
    elif stat.S_ISREG(info.st_mode):
        yield InputEntry(path, path.name, EntryKind.FILE)
    else:
        yield _problem(path, path.name, f"{_kind_name(info.st_mode)}, not a file: not read")


_Frame = tuple[Iterator[str], Path, str, frozenset[tuple[int, int]]]


def _walk(top: Path, info: os.stat_result) -> Iterator[InputEntry]:
    """Depth first with a stack of folder listings (no recursion); each folder once."""
    key = (info.st_dev, info.st_ino)
    seen: dict[tuple[int, int], str] = {key: "."}
    stack: list[_Frame] = []
    opened = _open(top, "", frozenset({key}))
    if isinstance(opened, InputEntry):
        yield opened
        return
    stack.append(opened)
    while stack:
        names, folder, prefix, ancestors = stack[-1]
        name = next(names, None)
        if name is None:
            stack.pop()
            continue
        entry = _entry(folder / name, prefix + name, ancestors, seen)
        if isinstance(entry, InputEntry):
            yield entry
            continue
        path, relative, inner = entry
        opened = _open(path, relative, inner)
        if isinstance(opened, InputEntry):
            yield opened
        else:
            stack.append(opened)


def _open(
    folder: Path, relative: str, ancestors: frozenset[tuple[int, int]]
) -> _Frame | InputEntry:
    """A folder's sorted listing, or the problem that it cannot be read."""
    try:
        with os.scandir(folder) as listing:
            names = sorted(entry.name for entry in listing)
    except OSError as exc:
        return _problem(folder, relative or ".",
                        f"folder cannot be read: {exc.strerror or exc}")
    return iter(names), folder, f"{relative}/" if relative else "", ancestors


def _entry(
    path: Path, relative: str, ancestors: frozenset[tuple[int, int]],
    seen: dict[tuple[int, int], str],
) -> InputEntry | tuple[Path, str, frozenset[tuple[int, int]]]:
    """One entry of a folder: a finished entry, or a folder to enter."""
    if path.name.startswith("."):
        return InputEntry(path, relative, EntryKind.SKIPPED, "hidden (name starts with '.')")
    try:
        info = path.stat()
    except OSError as exc:
        return _problem(path, relative, _link_problem(path, exc))
    if stat.S_ISDIR(info.st_mode):
        key = (info.st_dev, info.st_ino)
        if key in ancestors:
            return _problem(path, relative, "symbolic link loop: leads back to a folder "
                                            "above it, not followed")
        if key in seen:
            return InputEntry(path, relative, EntryKind.SKIPPED,
                              f"the same folder as {seen[key]}, walked once")
        seen[key] = relative
        return (path, relative, ancestors | {key})
    if not stat.S_ISREG(info.st_mode):
        return _problem(path, relative, f"{_kind_name(info.st_mode)}, not a file: not read")
    if path.name.lower().endswith(".dcm"):
        return InputEntry(path, relative, EntryKind.FILE)
    try:
        dicom = _has_prefix(path)
    except OSError as exc:
        return _problem(path, relative, f"cannot be read: {exc.strerror or exc}")
    if dicom:
        return InputEntry(path, relative, EntryKind.FILE)
    return InputEntry(path, relative, EntryKind.SKIPPED,
                      "not DICOM: no 'DICM' after the 128-byte preamble (PS3.10 7.1) "
                      "and not named *.dcm")


def walk_inputs(paths: Iterable[str | os.PathLike[str]]) -> Iterator[InputEntry]:
    """Every entry under ``paths``, in order (see the module docstring).

    Raises :class:`InputPathError` for a PATH that does not exist (not even as a link).
    """
    for given in paths:
        yield from _given(Path(given))


def find_inputs(paths: Iterable[str | os.PathLike[str]] | InputList) -> InputList:
    """The whole walk as a list (``paths`` already walked are returned as they are)."""
    if isinstance(paths, InputList):
        return paths
    return InputList(walk_inputs(paths))


def unique_inputs(paths: Iterable[str | os.PathLike[str]] | InputList) -> InputList:
    """The files to read and the input problems, in walk order, each file once (``export
    OUT OUT/sr/a.dcm`` lists ``a.dcm`` once); skipped entries are logged, not listed.

    Raises :class:`InputPathError` for a PATH that does not exist.
    """
    if isinstance(paths, InputList) and paths.unique:
        return paths
    out = InputList()
    out.unique = True
    seen: set[str] = set()
    folders: dict[str, str] = {}
    skipped = 0
    for entry in find_inputs(paths):
        if entry.kind is EntryKind.SKIPPED:
            skipped += 1
            log.debug("%s: passed over: %s", entry.path, entry.reason)
            continue
        if entry.kind is EntryKind.FILE and not _first_time(entry, seen, folders):
            continue
        out.append(entry)
    if skipped:
        log.info("%d non-DICOM or hidden entries passed over", skipped)
    return out


def _first_time(entry: InputEntry, seen: set[str], folders: dict[str, str]) -> bool:
    key = _real_path(entry.path, folders)
    if key in seen:
        log.info("%s: already listed, read once", entry.path)
        return False
    seen.add(key)
    return True


def _real_path(path: Path, folders: dict[str, str]) -> str:
    """``os.path.realpath`` of a listed file (safe: the walk lists no loop as a file), its
    folder's resolved once (``folders``): a file that is not a link is its real folder
    and its own name, one ``lstat`` where resolving walked every part of the path."""
    text = os.fspath(path)
    folder, name = os.path.split(text)
    if name in ("", ".", "..") or os.path.islink(text):
        return os.path.realpath(text)
    real = folders.get(folder)
    if real is None:
        real = folders[folder] = os.path.realpath(folder or ".")
    return os.path.join(real, name)


def input_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """Every file to read under ``paths``, once, in walk order (each folder sorted by name).

    Input problems (dangling links, loops) are not files and are left out here; use
    :func:`unique_inputs` to see them.  Raises :class:`InputPathError` for a PATH that
    does not exist.
    """
    for entry in unique_inputs(paths):
        if entry.kind is EntryKind.FILE:
            yield entry.path
