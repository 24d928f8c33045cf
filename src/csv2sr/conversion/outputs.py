"""What a conversion owns in OUTDIR, and so may replace or remove (docs/reliability.md).

Its lock ``.csv2sr.lock``, ``manifest.csv``, ``rejected.csv``, its temporary files, and the
SRs under ``sr/``: regular files named ``<safe name>.dcm`` in a real folder ``sr/<name>`` whose
File Meta Information says csv2sr wrote them (Implementation Version Name ``CSV2SR_...``,
PS3.10 7.1).  Anything else in ``sr/`` (a link, a FIFO, another file) makes the run stop
before it writes anything; nothing outside OUTDIR is ever opened for writing or removed.
A path read from a file (the old manifest) is never trusted: stale SRs are found by
looking at ``sr/`` (:func:`scan_sr`, :func:`remove_stale`).  A lock (``flock`` on
``OUTDIR/.csv2sr.lock``, released by the system when a run dies, :class:`OutdirLock`)
keeps a second run out of the same OUTDIR while one is running.  File names are made
safe by :func:`safe_name` (:func:`csv2sr.conversion.group.relpath_of`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import logging
import os
import re
import socket
import stat
from dataclasses import dataclass, field
from pathlib import Path

from csv2sr.atomic import OutputError, is_temporary, output_error, remove_inside

__all__ = [
    "LOCK_NAME",
    "SAFE_NAME_MAX",
    "OutdirLock",
    "Owned",
    "check_kinds",
    "is_own_sr",
    "refuse_foreign",
    "remove_leftovers",
    "remove_stale",
    "safe_name",
    "scan_sr",
]

log = logging.getLogger(__name__)

LOCK_NAME = ".csv2sr.lock"
"""The lock a running conversion holds in OUTDIR (removed when it ends)."""

_SAFE = re.compile(r"[^A-Za-z0-9._-]")
_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL"] + [f"{kind}{n}" for kind in ("COM", "LPT") for n in range(10)]
)
"""Names Windows reserves for devices, with or without an extension, in any case."""
SAFE_NAME_MAX = 120
"""Longest folder name :func:`safe_name` makes (ASCII, so bytes): well under NAME_MAX 255."""
_OWN_FOLDER = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")
_OWN_FILE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*\.dcm$")


def safe_name(value: str) -> str:
    """A file-system-safe, unique, bounded folder name for ``value``.

    Characters outside ``[A-Za-z0-9._-]`` become ``_``, a leading dot and a Windows device
    name (``CON``, ``nul.txt``, ``Com1``) get a leading ``_``, a trailing dot is changed (so
    ``../x`` cannot leave OUTDIR and no system reads the name as a device or drops a dot),
    and a name longer than :data:`SAFE_NAME_MAX` is cut; whenever anything was changed, 8 hex
    digits of the value's SHA-256 are appended, so that two different values never share a
    folder.
    """
    cleaned = _SAFE.sub("_", value)
    if cleaned.startswith(".") or cleaned.split(".", 1)[0].upper() in _RESERVED:
        cleaned = "_" + cleaned
    changed = cleaned != value or not cleaned or cleaned.endswith(".")
    if changed or len(cleaned) > SAFE_NAME_MAX:
        digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
        cleaned = f"{cleaned[: SAFE_NAME_MAX - 9]}-{digest[:8]}"
    return cleaned


def is_own_sr(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a regular file (not a link) whose File Meta Information
    (PS3.10 7.1) says csv2sr wrote it: Implementation Version Name (0002,0013) ``CSV2SR_``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        head = os.read(fd, 1024)
    except OSError:
        return False
    finally:
        os.close(fd)
    if head[128:132] != b"DICM":
        return False
    at = head.find(b"\x02\x00\x13\x00SH", 132)
    if at < 0:
        return False
    size = int.from_bytes(head[at + 6 : at + 8], "little")
    return head[at + 8 : at + 8 + size].startswith(b"CSV2SR_")


@dataclass
class Owned:
    """What csv2sr owns under ``OUTDIR/sr`` (relative paths ``sr/FOLDER/NAME.dcm``)."""

    files: set[str] = field(default_factory=set)
    folders: set[str] = field(default_factory=set)
    temporaries: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"), (stat.S_ISREG, "a file"),
    ):
        if test(mode):
            return name
    return "not a file"


def _scan_patient(entry: os.DirEntry[str], owned: Owned) -> None:
    folder = f"sr/{entry.name}"
    owned.folders.add(folder)
    with os.scandir(entry.path) as children:
        for child in children:
            rel = f"{folder}/{child.name}"
            mode = child.stat(follow_symlinks=False).st_mode
            if stat.S_ISREG(mode) and is_temporary(child.name):
                owned.temporaries.append(rel)
            elif not stat.S_ISREG(mode):
                owned.foreign.append(f"{rel} ({_kind(mode)})")
            elif not _OWN_FILE.match(child.name):
                owned.foreign.append(f"{rel} (not a file name csv2sr writes)")
            elif not is_own_sr(child.path):
                owned.foreign.append(f"{rel} (not an SR written by csv2sr)")
            else:
                owned.files.add(rel)


def scan_sr(outdir: Path) -> Owned:
    """What ``OUTDIR/sr`` holds, sorted into csv2sr's own and the rest; links never followed."""
    owned = Owned()
    root = outdir / "sr"
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except FileNotFoundError:
        return owned
    except OSError as exc:
        raise output_error(root, exc) from None
    for entry in entries:
        mode = entry.stat(follow_symlinks=False).st_mode
        if stat.S_ISDIR(mode) and _OWN_FOLDER.match(entry.name):
            try:
                _scan_patient(entry, owned)
            except OSError as exc:
                raise output_error(entry.path, exc) from None
        else:
            what = "a folder csv2sr does not make" if stat.S_ISDIR(mode) else _kind(mode)
            owned.foreign.append(f"sr/{entry.name} ({what})")
    return owned


def refuse_foreign(outdir: Path, owned: Owned) -> None:
    if not owned.foreign:
        return
    shown = ", ".join(owned.foreign[:5]) + (", ..." if len(owned.foreign) > 5 else "")
    raise OutputError(
        outdir / "sr",
        f"holds {len(owned.foreign)} entries csv2sr did not write ({shown}); csv2sr never "
        "removes, replaces or follows them, and sr/ must hold only the converted rows: move "
        "them out, or convert into another folder",
    )


_OWN_FILES = {"sr": "a folder", "manifest.csv": "a file", "rejected.csv": "a file"}


def check_kinds(outdir: Path) -> None:
    """``sr`` must be a real folder, ``manifest.csv`` and ``rejected.csv`` regular files
    (or missing): anything else (a link, a FIFO, a file for a folder) stops the run."""
    for name, wanted in _OWN_FILES.items():
        path = outdir / name
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise output_error(path, exc) from None
        found = _kind(mode)
        if found != wanted:
            raise OutputError(
                path, f"is {found}, where csv2sr writes {wanted} of its own (it never writes "
                "through a link or replaces another kind of file): remove it, or convert "
                "into another folder",
            )


def remove_leftovers(outdir: Path, owned: Owned) -> None:
    """Temporary files of a killed run, and the manifest of the previous run (this run
    rewrites ``sr/``, so an interrupted one must not leave a manifest that lies)."""
    for rel in owned.temporaries:
        remove_inside(outdir, rel)
        log.info("removed %s (a temporary file of an interrupted run)", outdir / rel)
    with os.scandir(outdir) as entries:
        for entry in entries:
            if is_temporary(entry.name) and entry.is_file(follow_symlinks=False) and any(
                entry.name.startswith(f".{name}.") for name in ("manifest.csv", "rejected.csv")
            ):
                remove_inside(outdir, entry.name)
    for name in ("manifest.csv", "rejected.csv"):
        with contextlib.suppress(FileNotFoundError):
            remove_inside(outdir, name)


def remove_stale(outdir: Path, owned: Owned, written: set[str]) -> int:
    """Remove the SRs csv2sr wrote before (found in ``sr/``) that this run did not write,
    and the folders left empty; return how many files went."""
    stale = sorted(owned.files - written)
    for rel in stale:
        remove_inside(outdir, rel)
        log.info("removed stale %s", outdir / rel)
    kept = {rel.rsplit("/", 1)[0] for rel in written}
    for folder in sorted(owned.folders - kept):
        with contextlib.suppress(OSError):  # only when the folder is now empty
            remove_inside(outdir, folder, folder=True)
    return len(stale)


class OutdirLock:
    """``flock`` on ``OUTDIR/.csv2sr.lock``: one conversion at a time per OUTDIR.

    The system releases the lock when its process dies, however it dies, so a killed run
    leaves no stale lock (its file may stay; the next run takes it over).  The file holds
    who holds it, for the message the second run prints.
    """

    def __init__(self, outdir: Path) -> None:
        self.outdir = outdir
        self.path = outdir / LOCK_NAME
        self.fd: int | None = None

    def __enter__(self) -> OutdirLock:
        try:
            import fcntl  # noqa: PLC0415  (POSIX only)
        except ImportError:  # pragma: no cover  (no flock: run unlocked)
            log.warning("%s: no file locking on this system; run one conversion at a time",
                        self.outdir)
            return self
        for _ in range(50):
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                holder = os.read(fd, 4096).decode("utf-8", "replace").strip()
                os.close(fd)
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise output_error(self.path, exc) from None
                raise OutputError(
                    self.outdir,
                    f"another csv2sr convert is writing into this folder "
                    f"({holder or 'it has not said who it is yet'}; lock {self.path}): wait "
                    "for it to finish, or convert into another folder",
                ) from None
            if self._still_there(fd):
                self._claim(fd)
                return self
            os.close(fd)  # the run that held it removed it meanwhile: take the new one
        raise OutputError(self.path, "could not take the lock")

    def _open(self) -> int:
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = os.open(self.path, flags, 0o666)
        except OSError as exc:
            raise output_error(self.path, exc, inside=True) from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise OutputError(self.path, "is not a regular file: remove it")
        return fd

    def _still_there(self, fd: int) -> bool:
        try:
            return os.stat(self.path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False

    def _claim(self, fd: int) -> None:
        started = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        who = f"pid {os.getpid()} on {socket.gethostname()}, started {started}\n"
        try:
            os.ftruncate(fd, 0)
            os.write(fd, who.encode("utf-8"))
        except OSError as exc:
            os.close(fd)
            raise output_error(self.path, exc) from None
        self.fd = fd

    def __exit__(self, *exc: object) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):  # removed while still held: see _still_there
            os.unlink(self.path)
        os.close(self.fd)
        self.fd = None
