"""csv2sr's SR XML against pixelmed's, measured by running pixelmed (Debian libpixelmed-java).

For the 2018 reference SR and csv2sr's real CCC2017 SRs:

* pixelmed's toXML fed to ``csv2sr sr-xml to-dicom --pixelmed-compatible`` gives pixelmed's
  own toDICOM bytes, and without the flag the same dataset element for element;
* ``csv2sr sr-xml to-xml`` gives pixelmed's toXML byte for byte, and pixelmed's toDICOM
  turns it back into the same dataset.

pixelmed runs in one JVM for all files (``tests/pixelmed_srxml.py``).  Every real SR: about
1 minute on this machine, so ``slow``; a sample of 24 is checked in every run.  Where
pixelmed is silent or wrong, the second half shows what it does and that csv2sr refuses.
"""

from __future__ import annotations

import io
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from typer.testing import CliRunner

from csv2sr.cli import app
from csv2sr.formats.srxml.dicom_file import part10_bytes
from csv2sr.formats.srxml.errors import SrXmlError
from csv2sr.formats.srxml.files import dicom_file_to_xml
from csv2sr.formats.srxml.pixelmed_compat import java_trim
from csv2sr.formats.srxml.read import read_sr_xml
from pixelmed_srxml import PixelmedSrXml, available

runner = CliRunner()


@pytest.fixture(scope="module")
def pixelmed(tmp_path_factory: pytest.TempPathFactory) -> PixelmedSrXml:
    found = available()
    if found is None:
        pytest.skip("java, javac and pixelmed.jar are needed (Debian libpixelmed-java and a "
                    "JDK)")
    return PixelmedSrXml(*found, tmp_path_factory.mktemp("pixelmed-caller"))


@dataclass
class Compared:
    """One SR through both tools: pixelmed's XML and DICOM, csv2sr's XML, pixelmed's DICOM
    of csv2sr's XML."""

    source: Path
    pm_xml: Path
    pm_dcm: Path
    our_xml: Path
    pm_of_our_xml: Path


def _compare_all(pixelmed: PixelmedSrXml, sources: list[Path], work: Path) -> list[Compared]:
    rows = []
    for n, source in enumerate(sources):
        base = work / f"{n:05d}"
        row = Compared(source, base.with_suffix(".pm.xml"), base.with_suffix(".pm.dcm"),
                       base.with_suffix(".our.xml"), base.with_suffix(".pm-of-our.dcm"))
        row.our_xml.write_bytes(dicom_file_to_xml(source))
        rows.append(row)
    pixelmed.run([("toXML", r.source, r.pm_xml) for r in rows]
                 + [("toDICOM", r.pm_xml, r.pm_dcm) for r in rows]
                 + [("toDICOM", r.our_xml, r.pm_of_our_xml) for r in rows])
    return rows


def _check(rows: list[Compared], *, every_element: bool = True) -> int:
    """Each file through both tools as the module says.  ``every_element=False`` (every real
    SR): when csv2sr's file of pixelmed's XML is the source file byte for byte, the
    element-by-element comparisons (pydicom, four fifths of the time) are left out: the
    source is then the very dataset that gave pixelmed's bytes, written with defined
    lengths.  The sample and the reference SR are compared element by element.  Returns how
    many files were."""
    compared = 0
    for row in rows:
        expected = row.pm_dcm.read_bytes()
        assert expected, f"pixelmed wrote nothing for {row.source}"
        ds = read_sr_xml(row.pm_xml.read_bytes(), row.pm_xml)
        assert part10_bytes(ds, pixelmed_compatible=True) == expected, row.source
        assert row.our_xml.read_bytes() == row.pm_xml.read_bytes(), row.source
        assert row.pm_of_our_xml.read_bytes() == expected, row.source
        ours_bytes = part10_bytes(ds)
        if not every_element and ours_bytes == row.source.read_bytes():
            continue
        ours = pydicom.dcmread(io.BytesIO(ours_bytes))
        theirs = pydicom.dcmread(io.BytesIO(expected))
        assert ours == theirs, row.source
        assert ours.file_meta.ImplementationVersionName.startswith("CSV2SR_")
        assert pydicom.dcmread(row.source) == theirs, row.source
        compared += 1
    return compared


def test_reference_sr_both_ways(pixelmed: PixelmedSrXml, reference_sr: Path,
                                tmp_path: Path) -> None:
    rows = _compare_all(pixelmed, [reference_sr], tmp_path)
    assert _check(rows) == 1
    # the 2018 reference SR was itself written by pixelmed: the round trip is the file
    assert rows[0].pm_dcm.read_bytes() == reference_sr.read_bytes()


def _real_srs(converted_real: Path) -> list[Path]:
    files = sorted((converted_real / "sr").rglob("*.dcm"))
    assert len(files) == 2345
    return files


def test_sample_of_real_srs(pixelmed: PixelmedSrXml, converted_real: Path,
                            tmp_path: Path) -> None:
    files = _real_srs(converted_real)
    sample = random.Random(15).sample(files, 24)
    assert _check(_compare_all(pixelmed, sample, tmp_path)) == 24


@pytest.mark.slow
def test_every_real_sr(pixelmed: PixelmedSrXml, converted_real: Path, tmp_path: Path) -> None:
    """All 2,345: one JVM, 7,035 pixelmed conversions (about a minute here); csv2sr's file
    of each pixelmed XML is the converted SR byte for byte."""
    rows = _compare_all(pixelmed, _real_srs(converted_real), tmp_path)
    assert _check(rows, every_element=False) == 0


def test_cli_on_pixelmed_xml_is_pixelmed_bytes(pixelmed: PixelmedSrXml, reference_sr: Path,
                                               tmp_path: Path) -> None:
    xml, dcm = tmp_path / "in" / "ref.xml", tmp_path / "pm.dcm"
    xml.parent.mkdir()
    pixelmed.run([("toXML", reference_sr, xml), ("toDICOM", xml, dcm)])
    result = runner.invoke(app, ["sr-xml", "to-dicom", str(xml.parent), "-o",
                                 str(tmp_path / "out"), "--pixelmed-compatible", "-q"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "ref.dcm").read_bytes() == dcm.read_bytes()
    assert (tmp_path / "out" / "ref.dcm").stat().st_mode & 0o777 == 0o644


# ---- generated inputs: the rules of docs/sr-xml.md, checked against pixelmed ------------

_TEXT = 'grubby_alpaca '
_CHARS = "abcXYZ019 _-.,;:/()&<>\"'äöüßéñ€\t\n"


def _variant(base: str, rng: random.Random) -> tuple[str, str]:
    """The csv2sr XML of one SR with random text, coordinates, a number and a meaning."""
    text = "".join(rng.choice(_CHARS) for _ in range(rng.randint(0, 30)))
    text = rng.choice(["", " ", "  "]) + text + rng.choice(["", " ", "\n  "])
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    xml = base.replace(f"<value>{_TEXT}</value>", f"<value>{escaped}</value>", 1)
    for old in ("324.455261230469", "220.278457641602", "283.155792236328", "307.4033203125"):
        digits = rng.choice([f"{rng.uniform(-1e4, 1e4):.{rng.randint(0, 12)}f}",
                             f"{rng.uniform(0, 600):.9g}", f"{rng.uniform(0, 1):.3e}",
                             str(rng.randint(0, 10**9)), "16777217", "0.1"])
        xml = xml.replace(f">{old}<", f"> {digits} <", 1)
    number = f"{rng.uniform(0, 999):.{rng.randint(0, 8)}f}"
    xml = xml.replace("<value>71.56006194</value>", f"<value>{number}</value>", 1)
    meaning = "".join(rng.choice(_CHARS.replace("\t", "").replace("\n", ""))
                      for _ in range(rng.randint(1, 20)))
    attr = meaning.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
    return xml.replace('cm="Neoplasm"', f'cm="{attr}"', 1), text


def test_generated_variants_match_pixelmed(pixelmed: PixelmedSrXml, converted_real: Path,
                                           tmp_path: Path) -> None:
    """200 seeded variants: trimming, float32 rounding, character sets, escaping, DS text.

    pixelmed writes ST/LT/UT in UTF-8 whatever character set it declares; where that
    garbles its file, ``--pixelmed-compatible`` refuses and the default writes it right."""
    source = _real_srs(converted_real)[0]
    base_xml = dicom_file_to_xml(source).decode("utf-8")
    assert f"<value>{_TEXT}</value>" in base_xml
    rng = random.Random(20260101)
    jobs = []
    for n in range(200):
        xml = tmp_path / f"v{n:03d}.xml"
        text, value = _variant(base_xml, rng)
        xml.write_text(text, encoding="utf-8")
        jobs.append((xml, tmp_path / f"v{n:03d}.dcm", java_trim(value)))
    pixelmed.to_dicom([(xml, dcm) for xml, dcm, _ in jobs])
    same = garbled = 0
    for xml, dcm, value in jobs:
        expected = dcm.read_bytes()
        assert expected, xml
        right = read_sr_xml(xml.read_bytes(), xml)
        assert _text_value(right) == value
        try:
            ds = read_sr_xml(xml.read_bytes(), xml, pixelmed_compatible=True)
        except SrXmlError as exc:
            assert "garbled" in str(exc) and "/text/value" in str(exc)
            theirs = pydicom.dcmread(io.BytesIO(expected))
            assert _text_value(theirs) != value
            garbled += 1
            continue
        assert part10_bytes(ds, pixelmed_compatible=True) == expected, xml.read_text()
        assert pydicom.dcmread(io.BytesIO(part10_bytes(right))) == pydicom.dcmread(
            io.BytesIO(expected))
        same += 1
    assert same > 40 and garbled > 20


def _text_value(ds: pydicom.Dataset) -> str:
    return str(ds.ContentSequence[3].TextValue)


# ---- where pixelmed is silent or wrong -------------------------------------------------

_TEXT_ITEM_ATTRS = 'ID="ci_1.4" relationship="HAS OBS CONTEXT"'


@dataclass(frozen=True)
class Bad:
    """A broken input: what pixelmed does with it, and the element csv2sr names."""

    name: str
    old: str
    new: str
    pixelmed: str  # "empty": an empty file (exit 0); "ignores": as if it were not there;
    #                "differs": wrote something else
    element: str


BAD = [
    Bad("unknown item", "<text ID=\"ci_1.4\"", '<foo relationship="CONTAINS"><concept cm="X" '
        'csd="99X" cv="1"/></foo><text ID="ci_1.4"', "differs", "/container/foo"),
    Bad("no relationship", _TEXT_ITEM_ATTRS, 'ID="ci_1.4"', "differs", "/container/text"),
    Bad("bad number", "<x>324.455261230469</x>", "<x>3,5</x>", "empty", "/polyline/x"),
    Bad("odd coordinates", "<y>307.4033203125</y>", "", "differs", "/polyline"),
    Bad("unknown child", "<units ", "<unit/><units ", "ignores", "/num/unit"),
    Bad("two values", "<value>grubby_alpaca </value>", "<value>a</value><value>b</value>",
        "differs", "/text/value[2]"),
    Bad("dangling IDREF", "</scoord>",
        '</scoord><reference IDREF="ci_9.9" relationship="INFERRED FROM"/>', "differs",
        "/num/reference"),
    Bad("bad relationship", _TEXT_ITEM_ATTRS, 'ID="ci_1.4" relationship="OWNS"', "differs",
        "/container/text"),
    Bad("no code meaning", 'cm="Neoplasm" ', "", "empty", "/code[1]/value"),
    Bad("no SOP Class", '<SOPClassUID element="0016" group="0008" vr="UI">\n'
        '            <value number="1">1.2.840.10008.5.1.4.1.1.88.22</value>\n'
        '        </SOPClassUID>', "", "empty", "/DicomStructuredReportHeader"),
    Bad("US overflow", "<PatientID ",
        '<Rows element="0010" group="0028" vr="US"><value number="1">70000</value></Rows>'
        "<PatientID ", "differs", "/Rows"),
    Bad("second root", "</DicomStructuredReportContent>",
        '<container continuity="SEPARATE"><concept cm="X" csd="99X" cv="1"/></container>'
        "</DicomStructuredReportContent>", "ignores", "/DicomStructuredReportContent"),
]


@pytest.fixture(scope="module")
def bad_inputs(pixelmed: PixelmedSrXml, reference_sr: Path, converted_real: Path,
               tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path, Path]]:
    work = tmp_path_factory.mktemp("bad")
    source = _real_srs(converted_real)[0]
    good_xml = work / "good.xml"
    good_xml.write_bytes(dicom_file_to_xml(source))
    base = good_xml.read_text(encoding="utf-8")
    found = {}
    for n, bad in enumerate(BAD):
        assert bad.old in base, bad.name
        xml = work / f"bad{n:02d}.xml"
        xml.write_text(base.replace(bad.old, bad.new, 1), encoding="utf-8")
        found[bad.name] = (xml, work / f"bad{n:02d}.dcm", work / "good.dcm")
    pixelmed.to_dicom([(good_xml, work / "good.dcm")] + [v[:2] for v in found.values()])
    return found


@pytest.mark.parametrize("bad", BAD, ids=[b.name for b in BAD])
def test_csv2sr_refuses_what_pixelmed_gets_wrong(
        bad: Bad, bad_inputs: dict[str, tuple[Path, Path, Path]], tmp_path: Path) -> None:
    xml, pm_dcm, good_dcm = bad_inputs[bad.name]
    written = pm_dcm.read_bytes()
    if bad.pixelmed == "empty":
        assert written == b""
    elif bad.pixelmed == "ignores":
        assert written == good_dcm.read_bytes()
    else:
        assert written and written != good_dcm.read_bytes()
    out = tmp_path / "out"
    result = runner.invoke(app, ["sr-xml", "to-dicom", str(xml), "-o", str(out), "-q"])
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert str(xml) in message.replace(" ", "") or xml.name in message
    assert bad.element.replace(" ", "") in message.replace(" ", ""), message
    assert list(out.iterdir()) == []
    assert "Traceback" not in result.output


def test_a_bad_file_does_not_stop_the_batch(bad_inputs: dict[str, tuple[Path, Path, Path]],
                                            tmp_path: Path) -> None:
    xml, _, _ = bad_inputs["no relationship"]
    good = tmp_path / "in" / "good.xml"
    good.parent.mkdir()
    shutil.copy(xml.parent / "good.xml", good)
    result = runner.invoke(app, ["sr-xml", "to-dicom", str(xml), str(good), "-o",
                                 str(tmp_path / "out")])
    assert result.exit_code == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.dcm"]
    assert "1 of 2 files written" in result.output
