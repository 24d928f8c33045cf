"""Run a conversion: rows in, one SR file per good row, a manifest and the rejected rows out.

Rows stream from :func:`csv2sr.rows.read_rows` in input order, are encoded in worker
processes in small chunks (memory stays flat), and every file is written by
:mod:`csv2sr.atomic`: a temporary file in the target folder, then ``os.replace``, never
through a symbolic link.  An interrupted run leaves no partial ``.dcm``.  The manifest has
one line per input row, converted or rejected.

What a run owns in OUTDIR, and so may replace or remove (docs/reliability.md, "Output"):
its lock ``.csv2sr.lock``, ``manifest.csv``, ``rejected.csv``, its temporary files, and the
SRs under ``sr/``: regular files named ``order-N.dcm`` in a real folder ``sr/<name>`` whose
File Meta Information says csv2sr wrote them (Implementation Version Name ``CSV2SR_...``,
PS3.10 7.1).  Anything else in ``sr/`` (a link, a FIFO, another file) makes the run stop
before it writes anything; nothing outside OUTDIR is ever opened for writing or removed.
A path read from a file (the old manifest) is never trusted: stale SRs are found by
looking at ``sr/``.  After a successful run ``sr/`` holds exactly the converted rows of the
manifest.  A lock (``flock`` on ``OUTDIR/.csv2sr.lock``, released by the system when a
run dies) keeps a second run out of the same OUTDIR while one is running.

Output layout::

    OUTDIR/manifest.csv                     one line per input row
    OUTDIR/rejected.csv                     the rejected rows, their cells, line and reason
    OUTDIR/sr/<PatientID>/order-<order>.dcm one SR per converted row
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import errno
import hashlib
import itertools
import logging
import multiprocessing
import os
import re
import signal
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from pydicom import Dataset

from csv2sr.atomic import (
    OutputError,
    atomic_text,
    is_temporary,
    output_error,
    remove_in_flight,
    remove_inside,
    write_atomic,
)
from csv2sr.codes import CodeMode
from csv2sr.encode import dataset_bytes, encode, failure_problem, row_uids
from csv2sr.errors import leave_interrupts
from csv2sr.fastpath import FastEncoder
from csv2sr.images import ImageIndex, check_row_against_image, enriched_header
from csv2sr.profiles import Profile, get_profile
from csv2sr.rows import Annotation, InputFileError, RowError, RowProblem, read_rows

__all__ = [
    "LOCK_NAME",
    "MANIFEST_COLUMNS",
    "ConversionResult",
    "InputFileError",
    "OutputError",
    "convert",
    "is_own_sr",
    "safe_name",
    "sr_relpath",
]

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = (
    "line", "order", "_id", "path", "sop_instance_uid", "series_instance_uid",
    "tracking_uid", "status", "message",
)
CHUNK = 32
"""Rows per task sent to a worker: large enough to amortise IPC, small enough to stream."""

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
_OWN_FILE = re.compile(r"^order--?[0-9]+\.dcm$")


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


def sr_relpath(row: Annotation) -> str:
    """``sr/<safe PatientID>/order-<order, at least 4 digits>.dcm`` (``order`` is unique)."""
    return f"sr/{safe_name(row.patient_id)}/order-{row.order:04d}.dcm"


@dataclass
class ConversionResult:
    """What a conversion did; ``errors`` holds every rejected row with its reasons."""

    csv_path: Path
    outdir: Path
    rows_read: int = 0
    converted: int = 0
    rejected: int = 0
    seconds: float = 0.0
    errors: list[RowError] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """SRs written per second."""
        return self.converted / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        """True when every row was converted."""
        return self.rejected == 0


@dataclass(frozen=True)
class _Done:
    """A converted row, as the manifest records it."""

    line: int
    order: int
    annotation_id: str
    path: str
    sop_instance_uid: str
    series_instance_uid: str
    tracking_uid: str


class _Worker:
    """Per-process state: the profile, code mode, ``ohif``, fast encoder and optional
    image index."""

    def __init__(
        self, csv_path: Path, outdir: Path, profile: Profile, mode: CodeMode,
        images: ImageIndex | None, fast: bool, ohif: bool = False,
    ) -> None:
        self.csv_path = csv_path
        self.outdir = outdir
        self.profile = profile
        self.mode = mode
        self.ohif = ohif
        self.images = images
        self.fast = FastEncoder(profile, mode, ohif) if fast and images is None else None

    def handle(self, item: Annotation | RowError) -> _Done | RowError:
        if isinstance(item, RowError):
            return item
        header: Dataset | None = None
        if self.images is not None:
            found, problems = check_row_against_image(item, self.images, path=self.csv_path)
            if problems:
                return RowError(self.csv_path, item.line, tuple(problems), item.cells)
            header = enriched_header(found, item) if found is not None else None
        try:
            if self.fast is not None:
                data = self.fast.encode_bytes(item)
            else:
                data = dataset_bytes(
                    encode(item, self.profile, self.mode, header=header, ohif=self.ohif)
                )
        except Exception as exc:  # a row highdicom refuses is a rejected row, not a crash
            # one line naming the column; the whole traceback only with -vv
            log.debug("line %d: could not be encoded", item.line, exc_info=True)
            problem = failure_problem(item, exc)
            return RowError(self.csv_path, item.line, (problem,), item.cells)
        relpath = sr_relpath(item)
        refused = self.write(item, relpath, data)
        if refused is not None:
            return refused
        uids = row_uids(item, self.profile, self.mode, self.ohif)
        return _Done(
            item.line, item.order, item.annotation_id, relpath,
            uids.sop_instance, uids.series, uids.tracking,
        )


    def write(self, item: Annotation, relpath: str, data: bytes) -> RowError | None:
        """Write one SR inside OUTDIR (never through a link); a name the file system
        cannot hold is a rejected row, any other failure of the system stops the run."""
        try:
            write_atomic(self.outdir / relpath, data, root=self.outdir, durable=False)
        except OutputError as exc:
            if exc.errno != errno.ENAMETOOLONG:
                raise
            problem = RowProblem(
                "order", f"the file name {relpath} is too long for the file system", str(item.order)
            )
            return RowError(self.csv_path, item.line, (problem,), item.cells)
        return None


_WORKER: _Worker | None = None


def _init_worker(args: tuple[Any, ...]) -> None:
    global _WORKER  # noqa: PLW0603  (one worker object per process)
    _WORKER = _Worker(*args)


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    remove_in_flight()
    os._exit(128 + signum)


def _init_pool_worker(args: tuple[Any, ...]) -> None:
    """A worker process: Ctrl-C is the parent's to handle (it ends the pool); SIGTERM (the
    pool ending it, or a signal to the whole process group) removes the file being
    written and ends the process at once, without a traceback."""
    leave_interrupts()
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    _init_worker(args)


def _run_chunk(chunk: list[Annotation | RowError]) -> list[_Done | RowError]:
    assert _WORKER is not None, "worker not initialised"
    return [_WORKER.handle(item) for item in chunk]


def _chunks(items: Iterable[Annotation | RowError]) -> Iterator[list[Annotation | RowError]]:
    chunk: list[Annotation | RowError] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _pool(context: Any, jobs: int, worker_args: tuple[Any, ...]) -> Any:
    """The worker pool, started with SIGINT ignored: a process started with a signal
    ignored keeps it ignored (POSIX exec), so the fork server and every worker it forks
    ignore Ctrl-C from birth (the parent ends them), with no window for a traceback."""
    if threading.current_thread() is not threading.main_thread():
        return context.Pool(jobs, initializer=_init_pool_worker, initargs=(worker_args,))
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return context.Pool(jobs, initializer=_init_pool_worker, initargs=(worker_args,))
    finally:
        signal.signal(signal.SIGINT, previous)


def _results(
    items: Iterable[Annotation | RowError], jobs: int, worker_args: tuple[Any, ...]
) -> Iterator[_Done | RowError]:
    if jobs <= 1:
        _init_worker(worker_args)
        for chunk in _chunks(items):
            yield from _run_chunk(chunk)
        return
    context = multiprocessing.get_context("forkserver" if os.name == "posix" else "spawn")
    with _pool(context, jobs, worker_args) as pool:
        for results in pool.imap(_run_chunk, _chunks(items)):
            yield from results
    # Leaving the block terminates the workers (SIGTERM: each removes the file it is
    # writing and ends at once); every result is in by then.


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
class _Owned:
    """What csv2sr owns under ``OUTDIR/sr`` (relative paths ``sr/P/order-0001.dcm``)."""

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


def _scan_patient(entry: os.DirEntry[str], owned: _Owned) -> None:
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


def _scan_sr(outdir: Path) -> _Owned:
    """What ``OUTDIR/sr`` holds, sorted into csv2sr's own and the rest; links never followed."""
    owned = _Owned()
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


def _refuse_foreign(outdir: Path, owned: _Owned) -> None:
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


def _check_kinds(outdir: Path) -> None:
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


def _remove_leftovers(outdir: Path, owned: _Owned) -> None:
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


def _remove_stale(outdir: Path, owned: _Owned, written: set[str]) -> int:
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


class _OutdirLock:
    """``flock`` on ``OUTDIR/.csv2sr.lock``: one conversion at a time per OUTDIR.

    The system releases the lock when its process dies, however it dies, so a killed run
    leaves no stale lock (its file may stay; the next run takes it over).  The file holds
    who holds it, for the message the second run prints.
    """

    def __init__(self, outdir: Path) -> None:
        self.outdir = outdir
        self.path = outdir / LOCK_NAME
        self.fd: int | None = None

    def __enter__(self) -> _OutdirLock:
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


def _manifest_line(item: _Done | RowError) -> list[str]:
    if isinstance(item, RowError):
        return [
            str(item.line), item.cells.get("order", ""), item.cells.get("_id", ""),
            "", "", "", "", "rejected", item.reason,
        ]
    return [
        str(item.line), str(item.order), item.annotation_id, item.path,
        item.sop_instance_uid, item.series_instance_uid, item.tracking_uid, "converted", "",
    ]


def _convert_rows(
    items: Iterable[Annotation | RowError], result: ConversionResult, owned: _Owned,
    worker_args: tuple[Any, ...], workers: int, progress: Callable[[int], None] | None,
) -> None:
    """Convert every row, then remove the stale SRs.  ``rejected.csv`` and ``manifest.csv``
    are committed after that (the manifest last), so that a run that fails or is
    interrupted leaves neither, and a manifest always tells what ``sr/`` holds."""
    out: Path = worker_args[1]
    prof: Profile = worker_args[2]
    written: set[str] = set()
    with (
        atomic_text(out / "manifest.csv", root=out) as manifest_file,
        atomic_text(out / "rejected.csv", root=out) as rejected_file,
    ):
        manifest = csv.writer(manifest_file, lineterminator="\n")
        rejected = csv.writer(rejected_file, lineterminator="\n")
        manifest.writerow(MANIFEST_COLUMNS)
        rejected.writerow((*prof.columns, "line", "reason"))
        for done in _results(items, workers, worker_args):
            result.rows_read += 1
            manifest.writerow(_manifest_line(done))
            if isinstance(done, RowError):
                result.rejected += 1
                result.errors.append(done)
                rejected.writerow(
                    [done.cells.get(c, "") for c in prof.columns] + [str(done.line), done.reason]
                )
                for message in done.messages():
                    log.info("rejected: %s", message)
            else:
                result.converted += 1
                written.add(done.path)
            if progress is not None:
                progress(result.rows_read)
        _remove_stale(out, owned, written)


def convert(
    csv_path: str | os.PathLike[str],
    outdir: str | os.PathLike[str],
    *,
    jobs: int | None = None,
    codes: str | CodeMode = CodeMode.SCT,
    profile: str | Profile = "ccc2017",
    images: ImageIndex | None = None,
    progress: Callable[[int], None] | None = None,
    fast: bool = True,
    ohif: bool = False,
) -> ConversionResult:
    """Convert every row of ``csv_path`` into one SR under ``outdir``.

    ``jobs`` worker processes (default: the CPU count); ``codes`` ``"sct"`` or ``"srt"``;
    ``images`` an :class:`csv2sr.images.ImageIndex` of the source images, which adds the
    image cross-checks and enriches the SRs; ``progress`` is called with the number of rows
    done after each row; ``fast=False`` builds every SR with highdicom (the reference
    builder) rather than the proven-equal template path of :mod:`csv2sr.fastpath`;
    ``ohif=True`` writes the Tracking Identifier that OHIF loads as an editable Length
    measurement, ``Cornerstone3DTools@^0.1.0:Length:<_id>`` (:mod:`csv2sr.ohif`, docs/ohif.md),
    with its own SOP Instance and Series UIDs.

    Raises :class:`InputFileError` when the file as a whole is unusable, and
    :class:`csv2sr.atomic.OutputError` when OUTDIR cannot be written (disk full, no
    permission, another run holding it, something in ``sr/`` that csv2sr did not write).
    """
    started = time.perf_counter()
    source = Path(csv_path)
    out = Path(outdir)
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    mode = CodeMode(codes)
    workers = max(1, jobs if jobs is not None else (os.cpu_count() or 1))
    result = ConversionResult(csv_path=source, outdir=out)
    rows = read_rows(source, prof)
    first = next(rows)  # raises InputFileError before anything is written
    try:
        out.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(out, "is not a folder", errno.ENOTDIR) from None
    except OSError as exc:
        raise output_error(out, exc) from None
    with _OutdirLock(out):
        _check_kinds(out)
        owned = _scan_sr(out)
        _refuse_foreign(out, owned)
        _remove_leftovers(out, owned)
        _convert_rows(
            itertools.chain([first], rows), result, owned,
            (source, out, prof, mode, images, fast, ohif), workers, progress,
        )
    result.seconds = time.perf_counter() - started
    log.info(
        "%s: %d rows read, %d converted, %d rejected in %.1f s",
        source, result.rows_read, result.converted, result.rejected, result.seconds,
    )
    return result

