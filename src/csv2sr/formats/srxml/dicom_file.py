"""A dataset read from SR XML -> Part 10 bytes: csv2sr's encoding or pixelmed's."""

from __future__ import annotations

import copy
import io

from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import UID, ExplicitVRLittleEndian

from csv2sr import __version__
from csv2sr.dicom.uids import derive_uid
from csv2sr.formats.srxml.pixelmed_compat import mark_undefined_lengths, pixelmed_file_meta

__all__ = ["csv2sr_file_meta", "part10_bytes"]


def csv2sr_file_meta(ds: Dataset) -> FileMetaDataset:
    """csv2sr's File Meta Information (PS3.10 7.1), as ``csv2sr convert`` writes it."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID(derive_uid("implementation", "csv2sr", __version__))
    meta.ImplementationVersionName = f"CSV2SR_{__version__}"[:16]
    return meta


def part10_bytes(ds: Dataset, *, pixelmed_compatible: bool = False) -> bytes:
    """The Part 10 file of ``ds`` (PS3.10 7.1, Explicit VR Little Endian).

    Default: csv2sr's File Meta and sequences of defined length.  ``pixelmed_compatible``:
    pixelmed's File Meta and every sequence and item of undefined length, which gives the
    bytes pixelmed's toDICOM writes for the same XML.
    """
    out = copy.copy(ds)
    out.file_meta = pixelmed_file_meta(out) if pixelmed_compatible else csv2sr_file_meta(out)
    out.preamble = b"\x00" * 128
    mark_undefined_lengths(out, undefined=pixelmed_compatible)  # sets the flags of ds's items
    buffer = io.BytesIO()
    dcmwrite(buffer, out, enforce_file_format=True)
    return buffer.getvalue()
