"""Writing output files safely: atomically, with the usual mode, never through a link.

Every file csv2sr writes (SRs, manifest, rejected rows, validation reports, JSON, JUnit,
exported tables, dumps, the release report, the archive) goes through
:func:`atomic_open` / :func:`write_atomic`:

* a temporary file in the target's own folder, named ``.<name>.csv2sr-<pid>-<8 hex>.tmp``
  (:func:`is_temporary` recognises it, so that a later run can remove what a killed one
  left), created with ``O_EXCL`` and mode 0666 less the umask, as any program's new file
  (0644 under the usual umask 022);
* written, ``fsync``-ed when ``durable`` (single files such as the manifest, a table, an
  archive; not the thousands of per-row files, see docs/reliability.md), then renamed onto
  the target with ``os.replace``: a reader sees the old file or the new one, never a part;
* any failure, an interrupt included, removes the temporary file; a failure of the system
  (disk full, permission denied, read-only file system, name too long) is an
  :class:`OutputError` naming the path and saying what the system said.

Two kinds of target:

* ``root=None``: a path the user named (``--json FILE``, ``-o TABLE``, ``-o ZIP``).  Its
  folder is created when missing; a symbolic link the user named is written through to its
  target; a device or FIFO (``/dev/stdout``, ``/dev/full``) is written directly, there
  being nothing to rename.
* ``root=FOLDER``: a path inside an output folder (``OUTDIR/sr/P/order-0001.dcm``,
  ``REPORT_DIR/P/order-0001.txt``).  Every folder below ``root`` is opened with
  ``O_NOFOLLOW`` (created when missing), so a symbolic link inside the output folder is
  never written through: it is an :class:`OutputError`.  The final rename replaces a link
  at the target's own name, never what it points to.

:func:`open_inside` reads the same way (``package`` and ``check-release`` never follow a
link inside the release folder).

A log that only grows (``publish``'s journal) cannot be replaced at each record: it is an
:class:`AppendLog`, opened with ``O_APPEND`` and locked, each append of whole lines one
``write(2)``; a torn last line (a write stopped part-way) is cut off when it is opened.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO

if TYPE_CHECKING:
    from typing_extensions import Buffer

from csv2sr.errors import SourceError

__all__ = [
    "AppendLog",
    "InsideReader",
    "OutputError",
    "atomic_open",
    "atomic_text",
    "holds",
    "is_temporary",
    "open_inside",
    "output_error",
    "prune",
    "remove_in_flight",
    "remove_inside",
    "temp_name",
    "write_atomic",
]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_READ_FLAGS = os.O_RDONLY | _NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
"""A file read inside a folder: no link followed; a FIFO opens at once (and is refused)."""
_TMP = re.compile(r"^\..*\.csv2sr-\d+-[0-9a-f]{8}\.tmp$", re.DOTALL)
_LEGACY_TMP = re.compile(r"^\.order-\d+\.dcm\.\d+\.tmp$|^\.(manifest|rejected)\.csv\.\d+\.tmp$")
"""What csv2sr 0.1.0 named its temporary SR, manifest and rejected-rows files."""
_TMP_NAME_BYTES = 100
"""At most this much of the target's name is kept in a temporary name (NAME_MAX is 255)."""
_IN_FLIGHT: set[str] = set()
"""The temporary files this process is writing now (see :func:`remove_in_flight`)."""


class OutputError(SourceError):
    """An output file or folder could not be written: ``str()`` is ``"<path>: <why>"``.

    ``errno`` is the system's error number when the system refused (``ENOSPC``,
    ``EACCES``, ``EROFS``, ``ENAMETOOLONG``), else None.
    """

    def __init__(
        self, source: str | Path, message: str, errno: int | None = None, *,
        inside: bool = False,
    ) -> None:
        super().__init__(source, message)
        self.errno = errno
        self.inside = inside

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.source, self.message, self.errno, self.inside))

    @property
    def wrong_path(self) -> bool:
        """True when a path the caller named cannot be written (a file stands where it
        needs a folder, or a folder where it needs a file): a usage error, not a failure of
        the system.  Inside an output folder the same is a wrong entry there (not usage)."""
        return not self.inside and self.errno in (errno.ENOTDIR, errno.EISDIR)


def _rebuild(source: str | Path, message: str, number: int | None, inside: bool) -> OutputError:
    return OutputError(source, message, number, inside=inside)


def output_error(path: str | Path, exc: OSError, *, inside: bool = False) -> OutputError:
    """``exc`` as an :class:`OutputError` about ``path`` (the system's words, no errno
    prefix): ``out/sr: No space left on device``; ``inside`` an output folder, ``ELOOP``
    is a symbolic link that was not followed."""
    if inside and exc.errno == errno.ELOOP:
        message = "a symbolic link inside the output folder: not written through"
    elif inside and exc.errno == errno.ENOTDIR:
        message = "not a folder (something else is in the way)"
    else:
        message = exc.strerror or str(exc)
    return OutputError(path, message, exc.errno, inside=inside)


def temp_name(name: str) -> str:
    """The temporary name for ``name``: ``.<name>.csv2sr-<pid>-<8 hex>.tmp`` (short enough
    for any file system whatever the length of ``name``)."""
    kept = name.encode("utf-8", "surrogateescape")[:_TMP_NAME_BYTES]
    short = kept.decode("utf-8", "ignore")
    return f".{short}.csv2sr-{os.getpid()}-{secrets.token_hex(4)}.tmp"


def is_temporary(name: str) -> bool:
    """True for a name :func:`temp_name` makes (or csv2sr 0.1.0 made for its SRs)."""
    return bool(_TMP.match(name) or _LEGACY_TMP.match(name))


class _Sink(io.RawIOBase):
    """An open file descriptor whose write errors are :class:`OutputError` about ``path``
    (not the caller's own I/O errors: a failing *input* keeps its own exception)."""

    def __init__(self, fd: int, path: Path) -> None:
        super().__init__()
        self.fd = fd
        self.path = path
        self.position = 0

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.fd

    def tell(self) -> int:
        return self.position

    def write(self, data: Buffer) -> int:
        try:
            written = os.write(self.fd, data)
        except OSError as exc:
            raise output_error(self.path, exc) from None
        self.position += written
        return written

    def close(self) -> None:
        if not self.closed:
            try:
                os.close(self.fd)
            finally:
                super().close()


def _buffered(fd: int, path: Path) -> io.BufferedWriter:
    return io.BufferedWriter(_Sink(fd, path), buffer_size=1 << 16)


def _finish(handle: io.BufferedWriter, path: Path, *, durable: bool) -> None:
    """Flush and (when ``durable``) fsync ``handle``, then close it."""
    try:
        handle.flush()
        if durable:
            os.fsync(handle.fileno())
    except OSError as exc:
        raise output_error(path, exc) from None
    finally:
        with contextlib.suppress(OSError, OutputError):
            handle.close()


def _stream_target(path: Path) -> int | None:
    """An open descriptor when ``path`` is a device, FIFO or socket (written directly);
    None for a regular or missing file; :class:`OutputError` for a folder."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISDIR(info.st_mode):
        raise OutputError(path, "is a folder, not a file", errno.EISDIR)
    if stat.S_ISREG(info.st_mode):
        return None
    return os.open(path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))


def _open_named_folder(path: Path) -> tuple[int, str]:
    """(descriptor of the folder, file name) for a path the user named."""
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # a file on the way
        raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(folder)) from None
    return os.open(folder, _DIR_FLAGS), target.name


def _parts_inside(root: Path, path: Path) -> tuple[str, ...]:
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        raise OutputError(path, f"not inside {root}") from None
    if not parts or any(p in ("", ".", "..") for p in parts):
        raise OutputError(path, f"not a file name inside {root}")
    return parts


def _try_open(path: str | Path, flags: int, dir_fd: int | None = None) -> int | None:
    """``os.open``, or None when it fails (the caller then takes the long way, which
    raises what it raises)."""
    try:
        return os.open(path, flags, dir_fd=dir_fd)
    except OSError:
        return None


def _open_folder_inside(root: Path, parts: tuple[str, ...], *, create: bool) -> int:
    """Descriptor of ``root/parts...``, each part opened without following a link.

    ``create``: a folder that is missing is made.  A folder is opened first and made only
    when it is not there (one SR per file: making each folder of the path before opening
    it cost three failed ``mkdir`` calls per file); what fails is then what failed before.
    """
    fd = _try_open(root, _DIR_FLAGS) if create else None
    if fd is None:
        if create:
            try:
                root.mkdir(parents=True, exist_ok=True)
            except FileExistsError:  # a file on the way
                raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(root)) from None
        fd = os.open(root, _DIR_FLAGS)
    here = root
    try:
        for part in parts:
            here = here / part
            child = _try_open(part, _DIR_FLAGS | _NOFOLLOW, fd) if create else None
            if child is not None:
                os.close(fd)
                fd = child
                continue
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o777, dir_fd=fd)
            try:
                child = os.open(part, _DIR_FLAGS | _NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                # Linux says ENOTDIR, not ELOOP, for a link opened with O_DIRECTORY
                if exc.errno in (errno.ENOTDIR, errno.ELOOP) and stat.S_ISLNK(
                    os.lstat(part, dir_fd=fd).st_mode
                ):
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), str(here)) from None
                exc.filename = str(here)
                raise
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None,
    durable: bool = True,
) -> Iterator[BinaryIO]:
    """A binary file that replaces ``path`` when the ``with`` block ends without error.

    See the module docstring for ``root``; ``durable`` fsyncs the file and its folder.
    Raises :class:`OutputError` for every failure of the system.
    """
    target = Path(path)
    try:
        if root is None:
            stream = _stream_target(target)
            if stream is not None:
                handle = _buffered(stream, target)
                try:
                    yield handle
                finally:
                    _finish(handle, target, durable=False)
                return
            folder_fd, name = _open_named_folder(target)
            folder = target.parent
        else:
            base = Path(root)
            parts = _parts_inside(base, target)
            folder_fd = _open_folder_inside(base, parts[:-1], create=True)
            name = parts[-1]
            folder = base.joinpath(*parts[:-1])
    except OSError as exc:
        raise output_error(exc.filename or target, exc, inside=root is not None) from None
    try:
        yield from _write_in(folder_fd, folder, name, target, durable=durable,
                             inside=root is not None)
    finally:
        os.close(folder_fd)


def _write_in(
    folder_fd: int, folder: Path, name: str, target: Path, *, durable: bool, inside: bool,
) -> Iterator[BinaryIO]:
    tmp = temp_name(name)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    in_flight = os.path.join(os.path.abspath(folder), tmp)
    _IN_FLIGHT.add(in_flight)
    try:
        fd = os.open(tmp, flags, 0o666, dir_fd=folder_fd)
    except OSError as exc:
        _IN_FLIGHT.discard(in_flight)
        raise output_error(target, exc, inside=inside) from None
    try:
        handle = _buffered(fd, target)
        try:
            yield handle
        except BaseException:
            with contextlib.suppress(OSError, OutputError):
                handle.close()
            raise
        _finish(handle, target, durable=durable)
        try:
            os.replace(tmp, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
            if durable:
                os.fsync(folder_fd)
        except OSError as exc:
            raise output_error(target, exc, inside=inside) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=folder_fd)
        raise
    finally:
        _IN_FLIGHT.discard(in_flight)


def remove_in_flight() -> None:
    """Remove the temporary files this process is writing now: for a signal handler that
    ends the process at once (``os._exit``) rather than unwinding."""
    for path in list(_IN_FLIGHT):
        with contextlib.suppress(OSError):
            os.unlink(path)


@contextlib.contextmanager
def atomic_text(
    path: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None,
    durable: bool = True, newline: str | None = "",
) -> Iterator[TextIO]:
    """:func:`atomic_open` as UTF-8 text (``newline=""``: line ends as written)."""
    with atomic_open(path, root=root, durable=durable) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline=newline)
        yield text
        text.detach()  # flushes; on an error the temporary file goes with ``raw``


def write_atomic(
    path: str | os.PathLike[str], data: bytes | str, *,
    root: str | os.PathLike[str] | None = None, durable: bool = True,
    keep_same: bool = False,
) -> bool:
    """Write ``data`` (text as UTF-8) to ``path`` atomically; see :func:`atomic_open`.

    ``keep_same``: when ``path`` is already a regular file holding exactly these bytes
    (read as :func:`holds` reads it), nothing is written and the file keeps its time, so
    that a rerun leaves what it did not change as it was.  Returns whether it wrote.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    if keep_same and root is not None:
        return _write_inside_unless_same(Path(path), payload, Path(root), durable=durable)
    if keep_same and holds(path, payload, root=root):
        return False
    with atomic_open(path, root=root, durable=durable) as handle:
        handle.write(payload)
    return True


def _write_inside_unless_same(target: Path, payload: bytes, base: Path, *,
                              durable: bool) -> bool:
    """:func:`write_atomic` with ``keep_same`` inside ``base``: the folders are opened
    once (no link followed) for both the comparison and the write, where :func:`holds`
    and :func:`atomic_open` opened them one after the other (one SR per file: eight
    ``open`` calls per file became five).  What fails raises what ``atomic_open`` raises."""
    parts = _parts_inside(base, target)
    try:
        folder_fd = _open_folder_inside(base, parts[:-1], create=True)
    except OSError as exc:
        raise output_error(exc.filename or target, exc, inside=True) from None
    try:
        if _holds_in(folder_fd, parts[-1], payload):
            return False
        write = contextlib.contextmanager(_write_in)
        with write(folder_fd, base.joinpath(*parts[:-1]), parts[-1], target,
                   durable=durable, inside=True) as handle:
            handle.write(payload)
        return True
    finally:
        os.close(folder_fd)


def _holds_in(folder_fd: int, name: str, data: bytes) -> bool:
    """:func:`holds` of the file ``name`` of an open folder (a link is not followed, a
    FIFO opens at once and is refused)."""
    flags = os.O_RDONLY | _NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(name, flags, dir_fd=folder_fd)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as handle:
        return _same_bytes(handle, data)


def holds(
    path: str | os.PathLike[str], data: bytes, *, root: str | os.PathLike[str] | None = None,
) -> bool:
    """True when ``path`` is a regular file whose bytes are exactly ``data``.

    Inside ``root`` it is read as :func:`open_inside` reads (no link followed), else as
    named; anything that cannot be read (missing, a link inside ``root``, a FIFO, no
    permission) is False: the caller then writes, and says what fails.
    """
    target = Path(path)
    try:
        if root is None:
            fd = os.open(target, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
            handle: BinaryIO = os.fdopen(fd, "rb")
        else:
            handle = open_inside(root, "/".join(_parts_inside(Path(root), target)))
    except (OSError, OutputError):
        return False
    with handle:
        return _same_bytes(handle, data)


def _same_bytes(handle: BinaryIO, data: bytes) -> bool:
    """True when the open ``handle`` is a regular file of exactly ``data``."""
    try:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size != len(data):
            return False
        return handle.read(len(data) + 1) == data
    except OSError:
        return False


class InsideReader(contextlib.AbstractContextManager["InsideReader"]):
    """Read many files inside ``root`` as :func:`open_inside` reads one (no link followed),
    opening each folder once and keeping it open until :meth:`close` (the SRs of one
    patient share a folder: a cached conversion or a package reads thousands of files)::

        with InsideReader(outdir) as reader:
            data = reader("sr/P1/order-0001.dcm")   # None when it cannot be read
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._folders: dict[tuple[str, ...], int] = {}

    def __call__(self, relpath: str) -> bytes | None:
        """The bytes of the regular file ``root/relpath``, or None when :meth:`read`
        cannot read it."""
        try:
            return self.read(relpath)
        except OSError:
            return None

    def read(self, relpath: str) -> bytes:
        """The bytes of the regular file ``root/relpath``; raises :class:`OSError` as
        :func:`open_inside` does (``ELOOP`` for a link, ``ENOENT``, ``EINVAL`` for a path
        outside or a file that is not regular), with the path as ``filename``."""
        parts = tuple(relpath.split("/"))
        full = os.path.join(self.root, relpath)
        if relpath.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise OSError(errno.EINVAL, "not a path inside the folder", full)
        folder = self._folders.get(parts[:-1])
        if folder is None:
            folder = self._folders[parts[:-1]] = _open_folder_inside(
                self.root, parts[:-1], create=False)
        with _open_regular_at(folder, parts[-1], full) as handle:
            return handle.read()

    def close(self) -> None:
        """Close the folders opened so far (it can read again after)."""
        for fd in self._folders.values():
            os.close(fd)
        self._folders.clear()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open_regular_at(folder: int, name: str, full: str) -> BinaryIO:
    """``name`` in the open folder ``folder``, for reading: no link followed; a FIFO opens at
    once (O_NONBLOCK, it does not hang) and is refused with anything that is not a regular
    file (``EINVAL``); what fails names ``full``."""
    try:
        fd = os.open(name, _READ_FLAGS, dir_fd=folder)
    except OSError as exc:
        exc.filename = full
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", full)
    return os.fdopen(fd, "rb")


def open_inside(root: str | os.PathLike[str], relpath: str) -> BinaryIO:
    """Open ``root/relpath`` for reading without following a link at or below ``root``.

    Raises :class:`OSError` (``ELOOP`` for a link, ``ENOTDIR``, ``ENOENT``) with the path
    as ``filename``, and ``EINVAL`` for a path that is absolute, holds ``..``, or is not a
    regular file.
    """
    base = Path(root)
    parts = Path(relpath).parts
    full = base / relpath
    if not parts or Path(relpath).is_absolute() or any(p in ("", ".", "..") for p in parts):
        raise OSError(errno.EINVAL, "not a path inside the folder", str(full))
    folder = _open_folder_inside(base, tuple(parts[:-1]), create=False)
    try:
        return _open_regular_at(folder, parts[-1], str(full))
    finally:
        os.close(folder)


class AppendLog:
    """A file of newline-ended records that is only ever appended to, by one process.

    :meth:`open` opens it with ``O_APPEND`` (created mode 0644, a symbolic link at its
    name refused), takes an exclusive ``flock`` for as long as it is open, and returns its
    complete lines: a torn last line (no newline: a write stopped part-way by a kill, a
    full disk or a power cut) is cut off, and fsynced, before anything is appended.
    :meth:`append` writes whole lines in one ``write(2)`` (a regular file takes them
    whole; a short write is continued), :meth:`sync` fsyncs them, :meth:`close` fsyncs
    and unlocks, and removes a file that holds nothing.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.torn = 0
        """Bytes of the torn last line cut off by :meth:`open`."""
        self._fd = -1

    def open(self) -> bytes:
        """Open and lock the file; its complete lines.  Raises :class:`OSError` when it
        cannot be opened, :class:`BlockingIOError` when another process holds it."""
        import fcntl  # noqa: PLC0415  (POSIX only)

        self.path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | _NOFOLLOW
        fd = os.open(self.path, flags, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            raise BlockingIOError(exc.errno, "held by another process", str(self.path)) from None
        self._fd = fd
        data = _read_all(fd)
        complete = data.rfind(b"\n") + 1
        self.torn = len(data) - complete
        if self.torn:
            os.ftruncate(fd, complete)
            os.fsync(fd)
        return data[:complete]

    def append(self, data: bytes) -> None:
        """Append ``data`` (whole lines) in one ``write(2)``."""
        view = memoryview(data)
        while view:  # a regular file takes it whole; loop only for a short write
            written = os.write(self._fd, view)
            view = view[written:]

    def sync(self) -> None:
        """fsync what was appended."""
        if self._fd >= 0:
            os.fsync(self._fd)

    def close(self) -> None:
        """fsync, unlock and close (idempotent); a file that holds nothing is removed."""
        if self._fd < 0:
            return
        with contextlib.suppress(OSError):
            os.fsync(self._fd)
            if os.fstat(self._fd).st_size == 0:  # nothing appended, ever: leave no file
                self.path.unlink()
        os.close(self._fd)  # releases the lock
        self._fd = -1


def _read_all(fd: int) -> bytes:
    chunks: list[bytes] = []
    offset = 0
    while chunk := os.pread(fd, 1 << 20, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def remove_inside(root: str | os.PathLike[str], relpath: str, *, folder: bool = False) -> None:
    """Remove the file (or the empty folder) ``root/relpath`` without following a link on
    the way: a link at ``relpath`` itself is removed, never what it points to.

    Raises :class:`OSError` as the system does (``FileNotFoundError``, ``ENOTEMPTY``).
    """
    base = Path(root)
    parts = Path(relpath).parts
    if not parts or Path(relpath).is_absolute() or any(p in ("", ".", "..") for p in parts):
        raise OSError(errno.EINVAL, "not a path inside the folder", str(base / relpath))
    fd = _open_folder_inside(base, tuple(parts[:-1]), create=False)
    try:
        if folder:
            os.rmdir(parts[-1], dir_fd=fd)
        else:
            os.unlink(parts[-1], dir_fd=fd)
    finally:
        os.close(fd)


def prune(root: str | os.PathLike[str], keep: set[str], suffix: str) -> list[str]:
    """Remove from the output folder ``root`` every regular file named ``*suffix`` whose
    POSIX path relative to ``root`` is not in ``keep`` (what an earlier run wrote for an
    input that is gone), the temporary files a killed run left, and the folders that this
    leaves empty; links are neither followed nor removed.  Returns what was removed.

    Raises :class:`OutputError` when a file cannot be removed.
    """
    base = Path(root)
    removed: list[str] = []
    if not base.is_dir() or base.is_symlink():
        return removed
    for folder, _dirs, names in os.walk(base, topdown=False):  # os.walk never follows links
        here = Path(folder)
        for name in names:
            rel = (here / name).relative_to(base).as_posix()
            stale = name.endswith(suffix) and not name.startswith(".") and rel not in keep
            if not (stale or is_temporary(name)) or not stat.S_ISREG(
                (here / name).lstat().st_mode
            ):
                continue
            try:
                remove_inside(base, rel)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise output_error(here / name, exc, inside=True) from None
            removed.append(rel)
        if here != base and removed and not os.listdir(here):
            with contextlib.suppress(OSError):
                remove_inside(base, here.relative_to(base).as_posix(), folder=True)
    return removed
