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
from collections.abc import Iterable

from csv2sr.errors import SourceError
from csv2sr.inputs import InputList, InputPathError, is_dicom_file, unique_inputs

__all__ = [
    "ExportInputError",
    "export_inputs",
    "is_dicom_file",
]

log = logging.getLogger(__name__)


class ExportInputError(SourceError):
    """A path given to export does not exist (a usage error, not a data problem)."""


def export_inputs(paths: Iterable[str | os.PathLike[str]] | InputList) -> InputList:
    """The files to read and the input problems, in walk order, each file once
    (:func:`csv2sr.inputs.unique_inputs`; skipped entries are logged).

    Raises :class:`ExportInputError` for a path that does not exist.
    """
    try:
        return unique_inputs(paths)
    except InputPathError as exc:
        raise ExportInputError(exc.source, exc.message) from None
