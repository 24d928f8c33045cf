"""The release archive: a byte-reproducible zip of what the manifest lists.

Only the files of :data:`ARCHIVED`, only regular files, never through a link inside OUT,
under ``ROOT/`` with a ``SHA256SUMS``; fixed times (``SOURCE_DATE_EPOCH`` or 1980), order,
modes and level, so the same files give the same bytes.  No clock is read for anything
that is written into the archive.  Each file is read once; the entries are compressed by
threads (zlib releases the GIL) and laid out here as zipfile lays them out (PKWARE
APPNOTE 4.3), so the bytes are the ones zipfile writes; an archive that would need ZIP64
is left to zipfile.
"""

from __future__ import annotations

import errno
import hashlib
import io
import itertools
import logging
import os
import struct
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path, PurePosixPath

from csv2sr.atomic import InsideReader, write_atomic
from csv2sr.cache import ResultCache, file_digest, read_regular
from csv2sr.pools import stopping
from csv2sr.release.folder import ReleaseError, converted_paths, read_csv_rows

__all__ = [
    "ARCHIVED",
    "ZIP_EPOCH",
    "package",
    "sha256sums",
]

log = logging.getLogger(__name__)


ARCHIVED = (
    "manifest.csv",
    "rejected.csv",
    "validation.json",
    "validation.junit.xml",
    "export.csv",
    "sr/",
    "reports/",
    "dumps/",
    "report/index.html",
    "report/sr/",
)
"""What the zip holds, relative to OUT: the files, and in each folder (ending in ``/``) the
file of every converted row of the manifest (``sr/P/order-0001.dcm``,
``reports/P/order-0001.txt``, ``dumps/P/order-0001.txt``, ``report/sr/P/order-0001.html``)
when it is there; nothing else (a stale or foreign file is never packed)."""


_DERIVED = {"sr/": ".dcm", "reports/": ".txt", "dumps/": ".txt", "report/sr/": ".html"}


ZIP_EPOCH = 315532800
"""1980-01-01T00:00:00Z, the earliest time a zip entry can carry (PKWARE APPNOTE 4.4.6)."""


def _archived_files(out: Path) -> list[tuple[str, bool]]:
    """Every file that may be archived (:data:`ARCHIVED`: only what the manifest lists), as
    sorted POSIX paths relative to ``out``, each with True for an SR of the manifest (which
    must be there) and False for a file packed only when it is a regular file inside
    ``out`` (:func:`_read_if_regular`).

    The test that a file is regular and the reading of its bytes are one open (the zip
    stage opened every file twice: about 16,000 safe opens for the real CSV's release).
    """
    paths = converted_paths(read_csv_rows(out / "manifest.csv"), out)
    candidates: dict[str, bool] = {}
    for entry in ARCHIVED:
        if entry in _DERIVED:
            for path in paths:
                rel = PurePosixPath(entry, *PurePosixPath(path).parts[1:])
                candidates[rel.with_suffix(_DERIVED[entry]).as_posix()] = entry == "sr/"
        else:
            candidates[entry] = False
    return sorted(candidates.items())


def _read(reader: InsideReader, rel: str) -> bytes:
    """The bytes of ``rel`` in the release, never through a link: :class:`ReleaseError`
    otherwise."""
    try:
        return reader.read(rel)
    except OSError as exc:
        why = {
            errno.ELOOP: "a symbolic link inside the release: not packaged",
            errno.ENOENT: "listed in the manifest but missing",
        }.get(exc.errno or 0, exc.strerror or str(exc))
        raise ReleaseError(f"{reader.root / rel}: {why}") from None


def _zip_time() -> tuple[int, int, int, int, int, int]:
    """``SOURCE_DATE_EPOCH`` (reproducible-builds.org) when set, else 1980-01-01."""
    import time  # noqa: PLC0415

    epoch = ZIP_EPOCH
    value = os.environ.get("SOURCE_DATE_EPOCH", "")
    if value.isdigit():
        epoch = max(ZIP_EPOCH, int(value))
    stamp = time.gmtime(epoch)
    return (stamp.tm_year, stamp.tm_mon, stamp.tm_mday, stamp.tm_hour, stamp.tm_min,
            stamp.tm_sec - stamp.tm_sec % 2)


def sha256sums(out: Path, files: Sequence[str]) -> bytes:
    """``sha256sum`` format: ``<hex>  <path>`` per file, in the given (sorted) order."""
    lines = []
    with InsideReader(out) as reader:
        for rel in files:
            digest = hashlib.sha256(_read(reader, rel)).hexdigest()
            lines.append(f"{digest}  {rel}\n")
    return "".join(lines).encode("utf-8")


def _entry(root: str, rel: str, when: tuple[int, int, int, int, int, int]) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(f"{root}/{rel}" if root else rel, date_time=when)
    info.create_system = 3  # Unix, so that the permission bits below are honoured
    info.external_attr = (0o100644 & 0xFFFF) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


_LEVEL = zlib.Z_DEFAULT_COMPRESSION
"""The DEFLATE level of every entry: zlib's default (6), the level the archive has always
had (zipfile's ``compresslevel=9`` never applied to it: ``writestr`` of a ``ZipInfo`` keeps
the entry's own level, which is unset, so zipfile used zlib's default)."""

_WINDOW = 256
"""Files read and compressed ahead at most (bounds the memory of the parallel deflate)."""


def _deflate(data: bytes) -> tuple[bytes, int]:
    """``data`` as zipfile's ZIP_DEFLATED entry holds it (raw DEFLATE, PKWARE APPNOTE 4.4.5
    method 8: ``zlib.compressobj(level, DEFLATED, -15)``, one ``compress`` and a ``flush``),
    with its CRC-32.  zlib releases the GIL, so threads compress in parallel."""
    compressor = zlib.compressobj(_LEVEL, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush(), zlib.crc32(data)


def _filename(info: zipfile.ZipInfo) -> tuple[bytes, int]:
    """The name's bytes and the flags, as zipfile encodes them (APPNOTE 4.4.4 bit 11: UTF-8)."""
    try:
        return info.filename.encode("ascii"), info.flag_bits
    except UnicodeEncodeError:
        return info.filename.encode("utf-8"), info.flag_bits | 0x800


def _central_entry(info: zipfile.ZipInfo) -> bytes:
    """The central directory header of one entry (APPNOTE 4.3.12), as zipfile writes it."""
    year, month, day, hour, minute, second = info.date_time
    name, flags = _filename(info)
    return struct.pack(
        "<4s4B4HL2L5H2L", b"PK\x01\x02", info.create_version, info.create_system,
        info.extract_version, info.reserved, flags, info.compress_type,
        hour << 11 | minute << 5 | second // 2, (year - 1980) << 9 | month << 5 | day,
        info.CRC, info.compress_size, info.file_size, len(name), 0, 0, 0,
        info.internal_attr, info.external_attr, info.header_offset,
    ) + name


class _Archive:
    """The bytes of a zip of already compressed entries: what :class:`zipfile.ZipFile`
    writes (``ZIP_DEFLATED`` entries of level :data:`_LEVEL`, into a seekable file) for
    the same entries, so that the entries can be compressed in parallel.  Without ZIP64
    (APPNOTE 4.5.3): :attr:`fits` turns False when an entry or the archive would need it,
    and the caller then lets zipfile write the archive."""

    def __init__(self) -> None:
        self.buffer = io.BytesIO()
        self.entries: list[zipfile.ZipInfo] = []
        self.fits = True

    def add(self, info: zipfile.ZipInfo, size: int, deflated: bytes, crc: int) -> None:
        if size * 1.05 > zipfile.ZIP64_LIMIT or self.buffer.tell() > zipfile.ZIP64_LIMIT:
            self.fits = False
            return
        info.file_size, info.compress_size, info.CRC = size, len(deflated), crc
        info.flag_bits = 0
        info.header_offset = self.buffer.tell()
        self.buffer.write(info.FileHeader(False))
        self.buffer.write(deflated)
        self.entries.append(info)

    def close(self) -> bytes:
        start = self.buffer.tell()
        for info in self.entries:
            self.buffer.write(_central_entry(info))
        size = self.buffer.tell() - start
        count = len(self.entries)
        if (count > zipfile.ZIP_FILECOUNT_LIMIT or start > zipfile.ZIP64_LIMIT
                or size > zipfile.ZIP64_LIMIT):
            self.fits = False
        self.buffer.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, size,
                                      start, 0))
        return self.buffer.getvalue()


class _Deflated:
    """The DEFLATE streams of an earlier archive (``--cache``): a file whose bytes are
    unchanged is not compressed again.  The streams are kept in one file beside the
    :class:`~csv2sr.cache.ResultCache` that maps (path, SHA-256) to (offset, size, CRC-32)
    in it; the key holds zlib's version and level (the same bytes in give the same stream)
    and the SHA-256 of the streams' file, so an index never points into other streams."""

    def __init__(self, index: Path | None) -> None:
        self.blob_path = index.with_suffix(".deflated") if index is not None else None
        blob = read_regular(self.blob_path) if self.blob_path is not None else None
        self.blob = blob or b""
        self.store = ResultCache(index, {
            "stage": "package", "zlib": zlib.ZLIB_RUNTIME_VERSION, "level": _LEVEL,
            "streams": file_digest(self.blob),
        })
        self.parts: list[bytes] = []
        self.size = 0

    def reuse(self, rel: str, digest: str, data: bytes) -> tuple[bytes, int] | None:
        """The stream and CRC-32 an earlier run made of these bytes, or None."""
        if not self.store.enabled:
            return None
        found = self.store.get(rel, digest)
        if found is None:
            return None
        try:
            offset, size, crc = (int(v) for v in found)
        except (TypeError, ValueError):
            return None
        if offset < 0 or offset + size > len(self.blob) or zlib.crc32(data) != crc:
            return None
        return self.blob[offset:offset + size], crc

    def keep(self, rel: str, digest: str, deflated: bytes, crc: int) -> None:
        """This run's stream of a file, for the next run."""
        if self.store.enabled:
            self.store.put(rel, digest, [self.size, len(deflated), crc])
            self.parts.append(deflated)
            self.size += len(deflated)

    def save(self) -> None:
        """The streams, then their index (whose key names the streams' digest)."""
        if self.blob_path is None:
            return
        blob = b"".join(self.parts)
        write_atomic(self.blob_path, blob, durable=False, keep_same=True)
        self.store.key["streams"] = file_digest(blob)
        self.store.save()


def _packed(
    out: Path, candidates: list[tuple[str, bool]], streams: _Deflated,
) -> Iterator[tuple[str, bytes, bytes, int, str]]:
    """(path, bytes, deflated bytes, CRC-32, SHA-256) of every candidate that is there, in
    order.  Files are read, hashed and looked up in ``streams`` here, one after the other
    (thousands of small files: threads that share the interpreter only slowed this down,
    2.0 s against 1.1 s for a rerun's 9,387), and only the files to compress again go to
    threads (zlib lets go of the interpreter), at most :data:`_WINDOW` files ahead."""
    threads = max(1, min(4, os.cpu_count() or 1))
    with InsideReader(out) as reader, stopping(ThreadPoolExecutor(threads)) as pool:
        for start in range(0, len(candidates), _WINDOW):
            window: list[tuple[str, bytes, str, tuple[bytes, int] | Future[tuple[bytes, int]]]]
            window = []
            for rel, required in candidates[start:start + _WINDOW]:
                # a file the manifest lists must be there; another one only when regular
                data = _read(reader, rel) if required else reader(rel)
                if data is None:
                    continue
                digest = file_digest(data)
                ready = streams.reuse(rel, digest, data)
                window.append((rel, data, digest, ready or pool.submit(_deflate, data)))
            for rel, data, digest, made in window:
                deflated, crc = made if isinstance(made, tuple) else made.result()
                yield rel, data, deflated, crc, digest


def _with_zipfile(files: Iterable[tuple[zipfile.ZipInfo, bytes]]) -> bytes:
    """The archive written by zipfile itself (an archive that needs ZIP64)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for info, data in files:
            zf.writestr(info, data)
    return buffer.getvalue()


def package(out: Path, zip_path: Path, *, root: str, cache: Path | None = None) -> list[str]:
    """Write ``zip_path``: the archived files of ``out`` (:data:`ARCHIVED`: only what the
    manifest lists, never through a link) under ``root/`` plus a ``SHA256SUMS``; same files
    in, same bytes out (fixed times, order, modes, level).

    ``cache``: a JSON file (:mod:`csv2sr.cache`), with the DEFLATE streams of the last
    archive beside it (``.deflated``): a file whose path and bytes are unchanged is not
    compressed again (the stream is the one zlib makes of it, same version and level).

    Returns the archived paths (relative to ``out``, SHA256SUMS excluded).  Raises
    :class:`ReleaseError` for a release that cannot be packed, and
    :class:`csv2sr.atomic.OutputError` when the archive cannot be written.
    """
    candidates = _archived_files(out)
    if not any(required for _, required in candidates):
        raise ReleaseError(f"{out}: no SR files to package")
    when = _zip_time()
    archive = _Archive()
    sums: list[str] = []
    files: list[str] = []
    streams = _Deflated(cache)
    for rel, data, deflated, crc, digest in _packed(out, candidates, streams):
        files.append(rel)
        archive.add(_entry(root, rel, when), len(data), deflated, crc)
        streams.keep(rel, digest, deflated, crc)
        sums.append(f"{digest}  {rel}\n")
    listing = "".join(sums).encode("utf-8")
    archive.add(_entry(root, "SHA256SUMS", when), len(listing), *_deflate(listing))
    written = archive.close()
    if not archive.fits:  # never for a release of this size; zipfile writes ZIP64
        with InsideReader(out) as reader:
            written = _with_zipfile(itertools.chain(
                ((_entry(root, rel, when), _read(reader, rel)) for rel in files),
                [(_entry(root, "SHA256SUMS", when), listing)]))
    write_atomic(zip_path, written)
    streams.save()
    return files
