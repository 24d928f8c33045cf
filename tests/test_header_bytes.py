"""The index's readers of undecoded header elements (``header_numbers``, ``header_uid``)
give what pydicom's own decoding gives, for any DS/IS/UI value written to a file and read
back (hypothesis), and for elements pydicom has already decoded."""

from __future__ import annotations

import base64
import io
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom import Dataset, dcmread
from pydicom.dataelem import RawDataElement
from pydicom.filereader import read_dataset
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from csv2sr.images.index import (
    ImageIndex,
    _header_bytes,
    _header_of,
    header_numbers,
    header_uid,
)

_POSITION = Tag("ImagePositionPatient")
_NUMBER = Tag("InstanceNumber")
_SERIES = Tag("SeriesInstanceUID")
_ROWS = Tag("Rows")

numbers = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False).map(
    lambda v: float(f"{v:.6g}"))


def _read_back(ds: Dataset) -> Dataset:
    """``ds`` written as a Part 10 file and read again: its elements undecoded."""
    ds.file_meta = Dataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3"
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    return dcmread(buffer)


@settings(max_examples=60, deadline=None)
@given(position=st.lists(numbers, min_size=1, max_size=3), number=st.integers(-999, 99999),
       rows=st.integers(0, 65535),
       uid_root=st.sampled_from(["1.2.826.0.1.3680043.8.498.", "2.25.", "1.3.6.1.4.1.9590."]))
def test_undecoded_elements_read_as_pydicom_decodes_them(
        position: list[float], number: int, rows: int, uid_root: str) -> None:
    ds = Dataset()
    ds.Rows = rows
    ds.ImagePositionPatient = position
    ds.InstanceNumber = number
    ds.SeriesInstanceUID = generate_uid(prefix=uid_root if uid_root != "2.25." else None)
    read = _read_back(ds)
    assert isinstance(read.get_item(_POSITION), RawDataElement)
    fast = (header_numbers(read, _POSITION), header_numbers(read, _NUMBER),
            header_uid(read, _SERIES), header_numbers(read, _ROWS))
    assert isinstance(read.get_item(_POSITION), RawDataElement)  # still undecoded
    value = read.ImagePositionPatient
    decoded = tuple(float(v) for v in (value if len(position) > 1 else [value]))
    assert fast == (decoded, (float(read.InstanceNumber),), str(read.SeriesInstanceUID),
                    (float(read.Rows),))
    # and the same once pydicom has decoded them
    assert (header_numbers(read, _POSITION), header_numbers(read, _NUMBER),
            header_uid(read, _SERIES), header_numbers(read, _ROWS)) == fast


def test_absent_and_empty_elements() -> None:
    ds = Dataset()
    ds.ImagePositionPatient = None
    read = _read_back(ds)
    assert header_numbers(read, _POSITION) is None
    assert header_numbers(read, _NUMBER) is None
    assert header_uid(read, _SERIES) == ""


def test_cached_header_reads_back_as_pydicom_reads_it(tmp_path: Path) -> None:
    """A header of the index's cache (``_header_bytes``) parsed by the index
    (``_header_of``) decodes to the values pydicom's ``read_dataset`` gives, element by
    element, for an ASCII and a UTF-8 header."""
    for charset, name in (("", "Doe^Jane"), ("ISO_IR 192", "Müller^Zoë")):
        ds = Dataset()
        if charset:
            ds.SpecificCharacterSet = charset
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        ds.SOPInstanceUID = generate_uid()
        ds.SeriesInstanceUID = generate_uid()
        ds.PatientName = name
        ds.PatientID = "P 1"
        ds.StudyDate = "20200102"
        ds.InstanceNumber = 7
        ds.Rows = 512
        ds.ImagePositionPatient = [-1.5, 2, 3.25]
        path = tmp_path / f"{ds.SOPInstanceUID}.dcm"
        ds.file_meta = Dataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.save_as(path, enforce_file_format=True)
        index = ImageIndex.from_folder(tmp_path)
        header = index.get(ds.SOPInstanceUID)
        assert header is not None
        text = _header_bytes(header)
        fast = _header_of(text)
        slow = read_dataset(io.BytesIO(base64.b64decode(text)), is_implicit_VR=False,
                            is_little_endian=True)
        assert list(fast.keys()) == list(slow.keys())
        for tag in slow.keys():  # noqa: SIM118  (iterating a Dataset gives elements)
            assert (fast[tag].VR, fast[tag].value) == (slow[tag].VR, slow[tag].value), tag
        assert str(fast.PatientName) == name
        path.unlink()
