"""csv2sr.dicom.reading, the quick reader of the report's pages and of export: what it
reads gives the pages and the export rows that pydicom's Dataset gives, byte for byte, and
what it does not read exactly is left to dcmread (the same result, the same error)."""

from __future__ import annotations

import copy
from pathlib import Path
from unittest import mock

import pytest
from lxml import etree
from pydicom import dcmread
from pydicom.uid import ImplicitVRLittleEndian

from csv2sr.dicom.reading import NotQuickError, read_items
from csv2sr.export import reader
from csv2sr.release.pages import _document, sr_file_to_xml
from csv2sr.release.render import ReportRenderError

QUICK = {"reference", "resaved", "utf8", "latin1", "iso2022", "plain"}
"""The variants the quick reader reads itself (the others go to dcmread)."""


@pytest.fixture(scope="module")
def variants(reference_sr: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The reference SR as csv2sr wrote it and as pydicom writes it (undefined-length
    sequences and items), with UTF-8, Latin-1 and ISO 2022 names, multi-valued and empty
    text, in Implicit VR, cut short, with bytes after it, without its preamble."""
    folder = tmp_path_factory.mktemp("variants")
    source = dcmread(reference_sr)
    made = [folder / "reference.dcm"]
    made[0].write_bytes(reference_sr.read_bytes())

    def save(name: str, charset: str | list[str] | None = None, patient: str = "",
             implicit: bool = False) -> Path:
        ds = copy.deepcopy(source)
        if charset is not None:
            ds.SpecificCharacterSet = charset
        if patient:
            ds.PatientName = patient
        if implicit:
            ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
        ds.StudyDescription = "a\\b\\ c "
        ds.InstanceNumber = None
        path = folder / f"{name}.dcm"
        ds.save_as(path, enforce_file_format=True, implicit_vr=implicit, little_endian=True)
        made.append(path)
        return path

    save("resaved")
    save("utf8", "ISO_IR 192", "M\u00fcller^J\u00fcrgen=\u5c71\u7530^\u592a\u90ce")
    save("latin1", "ISO_IR 100", "M\u00fcller^J\u00fcrgen")
    save("iso2022", ["", "ISO 2022 IR 87"], "Yamada^Tarou=\u5c71\u7530^\u592a\u90ce")
    save("implicit", implicit=True)
    data = save("plain").read_bytes()
    for name, cut in (("short", data[:-7]), ("longer", data + b"\0\0"),
                      ("no-preamble", data[128:])):
        (folder / f"{name}.dcm").write_bytes(cut)
        made.append(folder / f"{name}.dcm")
    return made


def _page_xml(ds: object, path: Path) -> bytes:
    return etree.tostring(_document(ds, path, "sr/x.dcm"))  # type: ignore[arg-type]


def test_pages_read_quickly_are_those_dcmread_gives(variants: list[Path]) -> None:
    quick = set()
    for path in variants:
        try:
            expected = _page_xml(dcmread(path), path)
        except Exception as exc:  # the page then names what dcmread said
            expected = f"not readable as DICOM: {exc}".encode()
        try:
            ours = _page_xml(read_items(path.read_bytes()), path)
            quick.add(path.stem)
        except NotQuickError:
            ours = expected
        assert ours == expected, path.name
        try:
            via_pages = etree.tostring(sr_file_to_xml(path, "sr/x.dcm"))
        except ReportRenderError as exc:
            via_pages = str(exc).encode()
        assert via_pages.endswith(expected), path.name
    assert quick == QUICK


def test_export_read_quickly_is_what_dcmread_gives(variants: list[Path]) -> None:
    quick = set()
    for path in variants:
        with mock.patch.object(reader, "_read_quickly", lambda name: None):
            expected = reader.read_file(path)
        if reader._read_quickly(str(path)) is not None:
            quick.add(path.stem)
        assert reader.read_file(path) == expected, path.name
        assert expected.measurements or path.stem not in QUICK
    assert quick == QUICK


def test_a_value_pydicom_refuses_is_left_to_dcmread(reference_sr: Path, tmp_path: Path) -> None:
    """Graphic Data (FL) of 6 bytes, which pydicom refuses to decode: the quick reader
    reads the file, its value raises, and dcmread's reading says what is wrong (export:
    the file's problem; the page: the same error as without the quick reader)."""
    import struct  # noqa: PLC0415

    ds = dcmread(reference_sr)
    for element in ds.iterall():
        if element.VR == "SQ":
            element.is_undefined_length = True  # so that a shorter value keeps it readable
            for item in element.value:
                item.is_undefined_length_sequence_item = True
        if element.tag == 0x00700022:
            element.value = [1.5, 2.5]
    path = tmp_path / "odd.dcm"
    ds.save_as(path, enforce_file_format=True)
    value = b"\x70\x00\x22\x00FL\x08\x00" + struct.pack("<2f", 1.5, 2.5)
    data = path.read_bytes()
    assert value in data
    path.write_bytes(data.replace(value, b"\x70\x00\x22\x00FL\x06\x00" + b"\0" * 6))
    read_items(path.read_bytes())  # the structure is one it reads
    with mock.patch.object(reader, "_read_quickly", lambda name: None):
        expected = reader.read_file(path)
    assert expected.problems
    assert reader.read_file(path) == expected
    with pytest.raises(Exception) as quick_error:
        sr_file_to_xml(path, "sr/x.dcm")
    with pytest.raises(Exception) as slow_error:
        _page_xml(dcmread(path), path)
    assert repr(quick_error.value) == repr(slow_error.value)
