"""The index's readers of undecoded header elements (``header_numbers``, ``header_uid``)
give what pydicom's own decoding gives, for any DS/IS/UI value written to a file and read
back (hypothesis), and for elements pydicom has already decoded."""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom import Dataset, dcmread
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from csv2sr.images.index import header_numbers, header_uid

_POSITION = Tag("ImagePositionPatient")
_NUMBER = Tag("InstanceNumber")
_SERIES = Tag("SeriesInstanceUID")

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
       uid_root=st.sampled_from(["1.2.826.0.1.3680043.8.498.", "2.25.", "1.3.6.1.4.1.9590."]))
def test_undecoded_elements_read_as_pydicom_decodes_them(
        position: list[float], number: int, uid_root: str) -> None:
    ds = Dataset()
    ds.ImagePositionPatient = position
    ds.InstanceNumber = number
    ds.SeriesInstanceUID = generate_uid(prefix=uid_root if uid_root != "2.25." else None)
    read = _read_back(ds)
    assert isinstance(read.get_item(_POSITION), RawDataElement)
    fast = (header_numbers(read, _POSITION), header_numbers(read, _NUMBER),
            header_uid(read, _SERIES))
    assert isinstance(read.get_item(_POSITION), RawDataElement)  # still undecoded
    value = read.ImagePositionPatient
    decoded = tuple(float(v) for v in (value if len(position) > 1 else [value]))
    assert fast == (decoded, (float(read.InstanceNumber),), str(read.SeriesInstanceUID))
    # and the same once pydicom has decoded them
    assert (header_numbers(read, _POSITION), header_numbers(read, _NUMBER),
            header_uid(read, _SERIES)) == fast


def test_absent_and_empty_elements() -> None:
    ds = Dataset()
    ds.ImagePositionPatient = None
    read = _read_back(ds)
    assert header_numbers(read, _POSITION) is None
    assert header_numbers(read, _NUMBER) is None
    assert header_uid(read, _SERIES) == ""
