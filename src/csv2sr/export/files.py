"""Find the SR files to export: files as given, folders walked (:mod:`csv2sr.inputs`).

In a folder, a file is taken when its name ends in ``.dcm`` (any case) or when it is a
DICOM file by content (``DICM`` after the 128-byte preamble, PS3.10 7.1); other files
(manifests, READMEs) and hidden entries are passed over and counted in the log.  A file
named explicitly is always read, so that a non-DICOM file given by name is reported, never
skipped.  What cannot be read (a dangling link, a symbolic link loop, an unreadable
folder) is an input problem: reported as ``FILE: why``, never a crash.  A file reached
twice through the paths given is read once.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from csv2sr.errors import SourceError
from csv2sr.inputs import (
    EntryKind,
    InputEntry,
    InputList,
    InputPathError,
    find_inputs,
    is_dicom_file,
)

__all__ = [
    "ExportInputError",
    "export_inputs",
    "find_dicom_files",
    "is_dicom_file",
]

log = logging.getLogger(__name__)


class ExportInputError(SourceError):
    """A path given to export does not exist (a usage error, not a data problem)."""


def export_inputs(paths: Iterable[str | os.PathLike[str]] | InputList) -> InputList:
    """The files to read and the input problems, in walk order; skipped entries logged.

    A file reached twice (``export OUT OUT/sr/a.dcm``) is listed once.  Raises
    :class:`ExportInputError` for a path that does not exist.
    """
    try:
        listing = find_inputs(paths)
    except InputPathError as exc:
        raise ExportInputError(exc.source, exc.message) from None
    out = InputList()
    seen: set[Path] = set()
    skipped = 0
    for entry in listing:
        if entry.kind is EntryKind.SKIPPED:
            skipped += 1
            log.debug("%s: passed over: %s", entry.path, entry.reason)
            continue
        if entry.kind is EntryKind.FILE and not _first_time(entry, seen):
            continue
        out.append(entry)
    if skipped:
        log.info("%d non-DICOM or hidden entries passed over", skipped)
    return out


def _first_time(entry: InputEntry, seen: set[Path]) -> bool:
    key = entry.path.resolve()  # safe: the walk lists no loop as a file
    if key in seen:
        log.info("%s: already listed, read once", entry.path)
        return False
    seen.add(key)
    return True


def find_dicom_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """Yield every file to read, in a stable order (each folder sorted by name).

    Input problems (dangling links, loops) are not files and are left out here; use
    :func:`export_inputs` to see them.  Raises :class:`ExportInputError` for a path that
    does not exist.
    """
    for entry in export_inputs(paths):
        if entry.kind is EntryKind.FILE:
            yield entry.path
