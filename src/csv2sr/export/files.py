"""Find the SR files to export: files as given, folders walked recursively.

In a folder, a file is taken when its name ends in ``.dcm`` (any case) or when it is a
DICOM file by content (``DICM`` after the 128-byte preamble, PS3.10 7.1); other files
(manifests, READMEs) are passed over and counted in the log.  A file named explicitly is
always read, so that a non-DICOM file given by name is reported, never skipped.  A file
reached twice through the paths given is read once.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = ["ExportInputError", "find_dicom_files", "is_dicom_file"]

from csv2sr.errors import SourceError

log = logging.getLogger(__name__)

_PREFIX = b"DICM"


class ExportInputError(SourceError):
    """A path given to export does not exist (a usage error, not a data problem)."""


def is_dicom_file(path: Path) -> bool:
    """PS3.10 7.1: a 128-byte preamble followed by ``DICM``."""
    try:
        with path.open("rb") as fh:
            fh.seek(128)
            return fh.read(4) == _PREFIX
    except OSError:
        return False


def _walk(folder: Path) -> Iterator[Path]:
    skipped = 0
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = Path(root, name)
            if name.startswith(".") and name.endswith(".tmp"):
                continue  # a writer's temporary file (atomic writes), not a result
            if name.lower().endswith(".dcm") or is_dicom_file(path):
                yield path
            else:
                skipped += 1
    if skipped:
        log.info("%s: %d non-DICOM file(s) passed over", folder, skipped)


def find_dicom_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """Yield every file to read, in a stable order (each folder sorted by name).

    A file reached twice (``export OUT OUT/sr/a.dcm``) is read once.  Raises
    :class:`ExportInputError` for a path that does not exist.
    """
    seen: set[Path] = set()
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found: Iterable[Path] = _walk(path)
        elif path.exists():
            found = (path,)
        else:
            raise ExportInputError(path, "no such file or folder")
        for file in found:
            key = file.resolve()
            if key in seen:
                log.info("%s: already listed, read once", file)
                continue
            seen.add(key)
            yield file
