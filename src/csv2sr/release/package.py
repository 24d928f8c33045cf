"""The release archive: a byte-reproducible zip of what the manifest lists.

Only the files of :data:`ARCHIVED`, only regular files, never through a link inside OUT,
under ``ROOT/`` with a ``SHA256SUMS``; fixed times (``SOURCE_DATE_EPOCH`` or 1980), order,
modes and level, so the same files give the same bytes.  No clock is read for anything
that is written into the archive.
"""

from __future__ import annotations

import errno
import hashlib
import io
import logging
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from csv2sr.atomic import open_inside, write_atomic
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


def _archived_files(out: Path) -> list[str]:
    """Every archived file (:data:`ARCHIVED`), as sorted POSIX paths relative to ``out``:
    only what the manifest lists, only regular files, no link followed."""
    paths = converted_paths(read_csv_rows(out / "manifest.csv"), out)
    found: set[str] = set()
    for entry in ARCHIVED:
        if entry in _DERIVED:
            for path in paths:
                rel = PurePosixPath(entry, *PurePosixPath(path).parts[1:])
                candidate = rel.with_suffix(_DERIVED[entry]).as_posix()
                if entry == "sr/" or _is_regular(out, candidate):
                    found.add(candidate)
        elif _is_regular(out, entry):
            found.add(entry)
    return sorted(found)


def _is_regular(out: Path, rel: str) -> bool:
    try:
        with open_inside(out, rel):
            return True
    except OSError:
        return False


def _read(out: Path, rel: str) -> bytes:
    """The bytes of ``out/rel``, never through a link: :class:`ReleaseError` otherwise."""
    try:
        with open_inside(out, rel) as handle:
            return handle.read()
    except OSError as exc:
        why = {
            errno.ELOOP: "a symbolic link inside the release: not packaged",
            errno.ENOENT: "listed in the manifest but missing",
        }.get(exc.errno or 0, exc.strerror or str(exc))
        raise ReleaseError(f"{out / rel}: {why}") from None


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
    for rel in files:
        digest = hashlib.sha256(_read(out, rel)).hexdigest()
        lines.append(f"{digest}  {rel}\n")
    return "".join(lines).encode("utf-8")


def _entry(root: str, rel: str, when: tuple[int, int, int, int, int, int]) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(f"{root}/{rel}" if root else rel, date_time=when)
    info.create_system = 3  # Unix, so that the permission bits below are honoured
    info.external_attr = (0o100644 & 0xFFFF) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def package(out: Path, zip_path: Path, *, root: str) -> list[str]:
    """Write ``zip_path``: the archived files of ``out`` (:data:`ARCHIVED`: only what the
    manifest lists, never through a link) under ``root/`` plus a ``SHA256SUMS``; same files
    in, same bytes out (fixed times, order, modes, level).

    Returns the archived paths (relative to ``out``, SHA256SUMS excluded).  Raises
    :class:`ReleaseError` for a release that cannot be packed, and
    :class:`csv2sr.atomic.OutputError` when the archive cannot be written.
    """
    files = _archived_files(out)
    if not any(f.startswith("sr/") for f in files):
        raise ReleaseError(f"{out}: no SR files to package")
    when = _zip_time()
    buffer = io.BytesIO()
    sums: list[str] = []
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for rel in files:
            data = _read(out, rel)  # once, for the entry and its checksum
            zf.writestr(_entry(root, rel, when), data)
            sums.append(f"{hashlib.sha256(data).hexdigest()}  {rel}\n")
        zf.writestr(_entry(root, "SHA256SUMS", when), "".join(sums).encode("utf-8"))
    write_atomic(zip_path, buffer.getvalue())
    return files
