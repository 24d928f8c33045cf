"""File-level conversions between SR XML and Part 10 DICOM files."""

from __future__ import annotations

from pathlib import Path

from csv2sr.errors import SourceError
from csv2sr.formats.filemap import read_dicom_file
from csv2sr.formats.srxml.dicom_file import part10_bytes
from csv2sr.formats.srxml.read import read_sr_xml
from csv2sr.formats.srxml.write import write_sr_xml

__all__ = ["dicom_file_to_xml", "xml_file_to_dicom"]


def xml_file_to_dicom(path: Path, *, pixelmed_compatible: bool = False) -> bytes:
    """The Part 10 bytes of the SR XML file ``path`` (see :func:`read_sr_xml`)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(path, f"cannot read: {exc.strerror or exc}") from None
    ds = read_sr_xml(data, path, pixelmed_compatible=pixelmed_compatible)
    return part10_bytes(ds, pixelmed_compatible=pixelmed_compatible)


def dicom_file_to_xml(path: Path) -> bytes:
    """The SR XML of the DICOM SR file ``path`` (see :func:`write_sr_xml`)."""
    return write_sr_xml(read_dicom_file(path), path)
