"""SR XML without pixelmed: number and text rules, refusals, round trips, the CLI's files.

What pixelmed itself does is measured in ``test_srxml_pixelmed.py``; here the rules it
showed are pinned, and every refusal must name the file and the element.
"""

from __future__ import annotations

import io
import os
import random
import struct
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from typer.testing import CliRunner

from csv2sr.cli import app
from csv2sr.formats.srxml.dicom_file import part10_bytes
from csv2sr.formats.srxml.errors import SrXmlError
from csv2sr.formats.srxml.pixelmed_compat import (
    character_set_for,
    format_float32,
    java_trim,
    parse_float32,
)
from csv2sr.formats.srxml.read import read_sr_xml
from csv2sr.formats.srxml.write import write_sr_xml

runner = CliRunner()


def _f32(value: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


def test_float32_is_rounded_once() -> None:
    assert parse_float32("16777217") == 16777216.0
    assert parse_float32("1.000000059604644775390625") == 1.0  # a tie: to even
    # the nearest double is that tie, so double-then-single rounding would give 1.0
    assert parse_float32("1.0000000596046447753906250000001") == _f32(1.0000001192092896)
    assert parse_float32(".1E-09") == _f32(1e-10)
    assert parse_float32("1e39") == float("inf")
    for bad in ("1.5f", "0x1p3", "1,5", "", "1_000", "inf"):
        assert parse_float32(bad) is None


def test_float32_text_reads_back_the_same() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        value = _f32(rng.uniform(-1e6, 1e6) * 10 ** rng.randint(-30, 30))
        assert parse_float32(format_float32(value)) == value


def test_java_trim_and_character_sets() -> None:
    assert java_trim("\t\n a b \x00\r") == "a b"
    assert java_trim("\u00a0x\u00a0") == "\u00a0x\u00a0"
    assert character_set_for(["abc"]) is None
    assert character_set_for(["äöü", "\u00d7°£"]) == "ISO_IR 100"
    assert character_set_for(["αβγ"]) == "ISO_IR 126"
    assert character_set_for(["абв"]) == "ISO_IR 144"
    assert character_set_for(["عرب"]) == "ISO_IR 127"
    for mixed in (["ä\u03b1"], ["\u03b1£"], ["€"], ["čř"], ["אב"], ["日本"]):
        assert character_set_for(mixed) == "ISO_IR 192"


# ---- a dataset with every value type the format has -----------------------------------


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = value, scheme, meaning
    return code


def _item(relationship: str, value_type: str, name: str | None, **values: object) -> Dataset:
    item = Dataset()
    item.RelationshipType, item.ValueType = relationship, value_type
    if name is not None:
        item.ConceptNameCodeSequence = Sequence([_code(name, "99TEST", f"concept {name}")])
    for keyword, value in values.items():
        setattr(item, keyword, value)
    return item


def _ref(sop_class: str, instance: str, **values: object) -> Sequence:
    ref = Dataset()
    ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = sop_class, instance
    for keyword, value in values.items():
        setattr(ref, keyword, value)
    return Sequence([ref])


def kitchen_sink(text: str = "line 1\nline 2 & <3>") -> Dataset:
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.88.33", "2.25.1"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = "2.25.2", "2.25.3"
    ds.Modality, ds.PatientName, ds.PatientID = "SR", "Doe^Jane", "P1"
    ds.ImageType = ["ORIGINAL", "", "PRIMARY"]
    ds.add_new(0x00189089, "FD", [1.0, 1 / 3, 1e-10])
    ds.add_new(0x00209165, "AT", [0x0010001A, 0x7FE00010])
    ds.add_new(0x00280010, "US", 512)
    ds.add_new(0x00091010, "LO", "private value")
    ds.ContentDate, ds.ContentTime = "20200101", "101010"
    ds.ValueType, ds.ContinuityOfContent = "CONTAINER", "SEPARATE"
    ds.ConceptNameCodeSequence = Sequence([_code("126000", "DCM", "Imaging Measurement Report")])
    template = Dataset()
    template.MappingResource, template.TemplateIdentifier = "DCMR", "1500"
    ds.ContentTemplateSequence = Sequence([template])
    num = _item("CONTAINS", "NUM", "n", ObservationDateTime="20200101", ObservationUID="2.25.9")
    mv = Dataset()
    mv.NumericValue, mv.FloatingPointValue = "1.50", 1.5
    mv.RationalNumeratorValue, mv.RationalDenominatorValue = 3, 2
    mv.MeasurementUnitsCodeSequence = Sequence([_code("mm", "UCUM", "mm")])
    num.MeasuredValueSequence = Sequence([mv])
    num.ContentSequence = Sequence([
        _item("INFERRED FROM", "SCOORD", None, GraphicType="POLYLINE",
              GraphicData=[172.8353591, 270.0640884, 133.798895, 343.0453039],
              ContentSequence=Sequence([
                  _item("SELECTED FROM", "IMAGE", None, ReferencedSOPSequence=_ref(
                      "1.2.840.10008.5.1.4.1.1.2", "2.25.5"))]))])
    empty = _item("CONTAINS", "NUM", "q", MeasuredValueSequence=Sequence())
    empty.NumericValueQualifierCodeSequence = Sequence([_code("114006", "DCM", "failure")])
    by_reference = Dataset()
    by_reference.RelationshipType = "INFERRED FROM"
    by_reference.ReferencedContentItemIdentifier = [1, 1]
    container = _item("CONTAINS", "CONTAINER", "c", ContinuityOfContent="CONTINUOUS",
                      ContentSequence=Sequence([by_reference]))
    code = _item("CONTAINS", "CODE", "code",
                 ConceptCodeSequence=Sequence([_code("X1", "99TEST", "a \"quoted\" <code>")]))
    code.ConceptCodeSequence[0].CodingSchemeVersion = "2024"
    ds.ContentSequence = Sequence([
        num, empty, container, code,
        _item("CONTAINS", "TEXT", "t", TextValue=text),
        _item("CONTAINS", "PNAME", "p", PersonName="Doe^John"),
        _item("CONTAINS", "UIDREF", "u", UID="2.25.10"),
        _item("CONTAINS", "DATE", "d", Date="20200102"),
        _item("CONTAINS", "TIME", "tm", Time="101010.5"),
        _item("CONTAINS", "DATETIME", "dt", DateTime="20200101120000.123+0100"),
        _item("CONTAINS", "COMPOSITE", "cp", ReferencedSOPSequence=_ref("1.2.3", "2.25.11")),
        _item("CONTAINS", "IMAGE", "im", ReferencedSOPSequence=_ref(
            "1.2.840.10008.5.1.4.1.1.2", "2.25.12", ReferencedFrameNumber="2",
            ReferencedSegmentNumber=3,
            ReferencedSOPSequence=_ref("1.2.840.10008.5.1.4.1.1.11.1", "2.25.13"))),
        _item("CONTAINS", "WAVEFORM", "w", ReferencedSOPSequence=_ref(
            "1.2.840.10008.5.1.4.1.1.9.1.1", "2.25.14", ReferencedWaveformChannels=[1, 2])),
        _item("CONTAINS", "SCOORD3D", "s3", GraphicType="POINT", GraphicData=[1.5, 2.25, -3.0],
              ReferencedFrameOfReferenceUID="2.25.15"),
        _item("CONTAINS", "TCOORD", "tc", TemporalRangeType="SEGMENT",
              ReferencedTimeOffsets=["0.5", "1.25"]),
    ])
    return ds


def _file(ds: Dataset) -> Dataset:
    """``ds`` as written and read back, the way to-xml gets it."""
    return pydicom.dcmread(io.BytesIO(part10_bytes(ds)))


def test_every_value_type_round_trips(tmp_path: Path) -> None:
    original = _file(kitchen_sink())
    xml = write_sr_xml(original, "sink.dcm")
    back = _file(read_sr_xml(xml, "sink.xml"))
    assert back == original
    assert b'<reference ID="ci_1.3.1" IDREF="ci_1.1" relationship="INFERRED FROM"/>' in xml
    assert b"<Private_0009_1010" in xml
    # the compatible encoding is the same dataset with pixelmed's file meta and lengths
    compatible = pydicom.dcmread(io.BytesIO(part10_bytes(read_sr_xml(xml, "s.xml"),
                                                         pixelmed_compatible=True)))
    assert compatible == original
    assert compatible.file_meta.ImplementationVersionName == "PIXELMEDJAVA001"


def test_generated_text_round_trips() -> None:
    """Seeded texts: everything but leading white space survives to-xml and to-dicom."""
    rng = random.Random(3)
    alphabet = "ab Z09&<>\"'\t\n\räöß€αд日"
    for _ in range(200):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))).strip()
        if not text:
            continue
        ds = kitchen_sink(text)
        ds.SpecificCharacterSet = "ISO_IR 192"
        original = _file(ds)
        back = read_sr_xml(write_sr_xml(original, "g.dcm"), "g.xml")
        assert str(back.ContentSequence[4].TextValue) == text.rstrip()
        if not text.isascii():
            assert back.SpecificCharacterSet == character_set_for([text])


@pytest.mark.parametrize(("change", "message"), [
    (lambda ds: setattr(ds.ContentSequence[3].ConceptCodeSequence[0], "LongCodeValue",
                        "x" * 70), "content item 1.4: LongCodeValue"),
    (lambda ds: setattr(ds.ContentSequence[11].ReferencedSOPSequence[0],
                        "ReferencedFrameNumber", ["1", "2"]), "content item 1.12: "
                        "ReferencedFrameNumber has 2 values"),
    (lambda ds: setattr(ds.ContentSequence[0].ContentSequence[0], "PixelOriginInterpretation",
                        "VOLUME"), "content item 1.1.1: PixelOriginInterpretation"),
    (lambda ds: ds.add_new(0x00420011, "OB", b"\x01\x02"), "EncapsulatedDocument: a OB value"),
    (lambda ds: setattr(ds.ContentSequence[4], "TextValue", "  lead"),
     "content item 1.5: TextValue: leading white space"),
    (lambda ds: delattr(ds.ContentSequence[5], "RelationshipType"),
     "content item 1.6: no Relationship Type"),
    (lambda ds: delattr(ds.ContentSequence[13], "GraphicData"),
     "content item 1.14: no Graphic Type or Graphic Data"),
])
def test_what_the_format_cannot_carry_is_refused(change: object, message: str) -> None:
    ds = kitchen_sink()
    change(ds)  # type: ignore[operator]
    with pytest.raises(SrXmlError) as raised:
        write_sr_xml(_file(ds), "in.dcm")
    assert str(raised.value).startswith("in.dcm: ")
    assert message in str(raised.value)


GOOD = write_sr_xml(_file(kitchen_sink()), "k.dcm").decode("utf-8")


@pytest.mark.parametrize(("old", "new", "where", "why"), [
    ("DicomStructuredReport>", "Other>", "/Other (line 2)", "root element"),
    ('vr="US">', 'vr="SS">', "/Rows", "has VR US, not SS"),
    ("<value>1.50</value>", "<value>1.50 mm</value>", "/num[1]/value (line", "NumericValue (DS)"),
    ("<value>1.50</value>", "<value>1.234567890123456789</value>", "/num[1]/value",
     "exceeds the maximum length of 16"),
    ('<value number="1">20200101</value>', '<value number="1">2020-01-01</value>',
     "/ContentDate (line", "ContentDate (DA)"),
    ("<x>1.5</x>", "<x>1.5</x><x>2</x>", "/point/x[2]", "expected <y>"),
    ('continuity="SEPARATE"', 'continuity="SOMETIMES"', "/DicomStructuredReportContent/"
     "container", "continuity 'SOMETIMES'"),
    ('template="1500" ', "", "/DicomStructuredReportContent/container", "go together"),
    ("<double>1.5</double>", "<double>one</double>", "/num[1]/double", "not a decimal"),
    ("<units ", '<units foo="1" ', "/num[1]/units", "unknown attribute 'foo'"),
    ("<numerator>3</numerator>", "", "/num[1] (line", "go together"),
    ("<frameofreference>2.25.15</frameofreference>", "", "/scoord3d", "frameofreference"),
    ('<value number="1">512</value>', '<value number="1">0x200</value>', "/Rows (line",
     "not an integer"),
    ("<ImageType ", "<ContentSequence element=\"a730\" group=\"0040\" vr=\"SQ\"/><ImageType ",
     "/DicomStructuredReportHeader", "belongs to <DicomStructuredReportContent>"),
    ("<segment>3</segment>", "<segment>3</segment><segment>4</segment>", "/image/segment[2]",
     "given twice"),
    ("</DicomStructuredReport>", "<!DOCTYPE x></DicomStructuredReport>", "line",
     "not well-formed"),
])
def test_reader_refusals_name_the_element(old: str, new: str, where: str, why: str) -> None:
    assert old in GOOD, old
    with pytest.raises(SrXmlError) as raised:
        read_sr_xml(GOOD.replace(old, new).encode("utf-8"), "in.xml")
    text = str(raised.value)
    assert text.startswith("in.xml: ") and where in text and why in text, text


def test_no_entity_expansion() -> None:
    doc = GOOD.replace("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>",
                       '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e SYSTEM "/etc/passwd">]>')
    doc = doc.replace('<value number="1">P1</value>', '<value number="1">&e;</value>')
    with pytest.raises(SrXmlError) as raised:
        read_sr_xml(doc.encode("utf-8"), "in.xml")
    assert "entity" in str(raised.value)


# ---- the command line -----------------------------------------------------------------


def test_cli_round_trip_and_file_rules(tmp_path: Path) -> None:
    source = tmp_path / "dcm" / "a" / "one.dcm"
    source.parent.mkdir(parents=True)
    source.write_bytes(part10_bytes(kitchen_sink()))
    (tmp_path / "dcm" / "notes.txt").write_text("not DICOM")
    xml_dir, back_dir = tmp_path / "xml", tmp_path / "back"
    result = runner.invoke(app, ["sr-xml", "to-xml", str(tmp_path / "dcm"), "-o", str(xml_dir)])
    assert result.exit_code == 0, result.output
    assert (xml_dir / "a" / "one.xml").stat().st_mode & 0o777 == 0o644
    result = runner.invoke(app, ["sr-xml", "to-dicom", str(xml_dir), "-o", str(back_dir)])
    assert result.exit_code == 0, result.output
    assert (back_dir / "a" / "one.dcm").read_bytes() == source.read_bytes()
    assert [p.name for p in back_dir.rglob("*") if p.name.startswith(".")] == []


def test_cli_bad_input_leaves_no_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text(GOOD.replace('relationship="CONTAINS"', "", 1), encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    (out / "bad.dcm").write_bytes(b"stale")
    result = runner.invoke(app, ["sr-xml", "to-dicom", str(bad), "-o", str(out)])
    assert result.exit_code == 1
    assert "no relationship" in result.output and "Traceback" not in result.output
    assert list(out.iterdir()) == []
    not_dicom = tmp_path / "x.dcm"
    not_dicom.write_text("hello")
    result = runner.invoke(app, ["sr-xml", "to-xml", str(not_dicom), "-o", str(out)])
    assert result.exit_code == 1
    assert "x.dcm: not a readable DICOM file" in " ".join(result.output.split())


def test_cli_collisions_and_links_outside(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "same.xml").write_text(GOOD, encoding="utf-8")
    result = runner.invoke(app, ["sr-xml", "to-dicom", str(tmp_path / "a" / "same.xml"),
                                 str(tmp_path / "b" / "same.xml"), "-o", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "would both write" in result.output
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    out = tmp_path / "o2"
    out.mkdir()
    os.symlink(outside, out / "a")
    result = runner.invoke(app, ["sr-xml", "to-dicom", str(tmp_path), "-o", str(out)])
    assert result.exit_code == 1
    assert "outside" in result.output
    assert list(outside.iterdir()) == []


def test_a_default_namespace_is_accepted_a_prefix_is_not() -> None:
    with_default = GOOD.replace("<DicomStructuredReport>",
                                '<DicomStructuredReport xmlns="urn:example">', 1)
    assert read_sr_xml(with_default.encode("utf-8"), "ns.xml") == read_sr_xml(
        GOOD.encode("utf-8"), "plain.xml")
    prefixed = GOOD.replace("<DicomStructuredReport>",
                            '<DicomStructuredReport xmlns:p="urn:example">', 1).replace(
        "<Modality ", "<p:Modality ", 1).replace("</Modality>", "</p:Modality>", 1)
    with pytest.raises(SrXmlError, match="no namespace prefix"):
        read_sr_xml(prefixed.encode("utf-8"), "prefixed.xml")


def test_the_documented_makefile_is_the_example() -> None:
    root = Path(__file__).resolve().parent.parent
    doc = (root / "docs" / "sr-xml.md").read_text(encoding="utf-8")
    block = doc.split("```make\n", 1)[1].split("```", 1)[0]
    example = (root / "docs" / "examples" / "legacy-srxml.mk").read_text(encoding="utf-8")
    assert example.endswith(block)


def test_worker_processes_give_the_same_files(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for n in range(11):
        (inputs / f"f{n:02d}.xml").write_text(GOOD.replace("Doe^Jane", f"Doe^N{n}"),
                                              encoding="utf-8")
    (inputs / "f99.xml").write_text(GOOD.replace("<units ", "<unit/><units "), encoding="utf-8")
    outputs = {}
    for jobs in ("1", "2"):
        out = tmp_path / f"out{jobs}"
        result = runner.invoke(app, ["sr-xml", "to-dicom", str(inputs), "-o", str(out),
                                     "--jobs", jobs, "--pixelmed-compatible"])
        assert result.exit_code == 1
        assert "f99.xml" in result.output and "<unit>" in result.output
        outputs[jobs] = {p.name: p.read_bytes() for p in out.iterdir()}
    assert len(outputs["1"]) == 11
    assert outputs["1"] == outputs["2"]
