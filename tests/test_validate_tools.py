"""dciodvfy and pixelmed output parsing (recorded text), path -> item ids, and real runs.

The recorded pixelmed text below is what DicomSRValidator (Debian libpixelmed-java
20220618) printed for a csv2sr SR and for the reference SR on this project's machine.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from csv2sr import tools
from csv2sr.dicom.paths import item_id_from_path
from csv2sr.validate import pixelmed, validate_files
from csv2sr.validate.coding import loinc_valid, verhoeff_valid
from csv2sr.validate.dciodvfy import parse_output, run_dciodvfy
from csv2sr.validate.findings import Severity, Source

PIXELMED_CSV2SR = """\
Found EnhancedSR IOD
Found Root Template TID_1500 (MeasurementReport)
Error: Template 1003 PersonObserverIdentifyingAttributes/[Row 3] CODE (121010,DCM,"Person \
Observer#s Role in the Organization"): 1.5: /CONTAINER (126000,DCM,"Imaging Measurement \
Report")/CODE (121010,DCM,"Person Observer's Role in the Organization"): Code (66862007,SCT,\
"Radiologist") not found in context group 7452
Root Template Validation Complete
IOD validation complete
"""

PIXELMED_BATCH = f"""\
{pixelmed.BEGIN}/data/a.dcm
{PIXELMED_CSV2SR}{pixelmed.END}
{pixelmed.BEGIN}/data/notes.txt
IOD (SOP Class) unrecognized
IOD validation complete
{pixelmed.END}
{pixelmed.BEGIN}/data/cut.dcm
"""

DCIODVFY_TEXT = """\
Warning - </StudyID(0020,0010)> - Missing attribute or value that would be needed to build DICOMDIR
Error - </ContentSequence(0040,a730)[8]/ContentSequence(0040,a730)[1]/ContentSequence(0040,a730)[5]/MeasuredValueSequence(0040,a300)[1]/MeasurementUnitsCodeSequence(0040,08ea)> - Missing attribute for Type 1 Required - Module=<NumericMeasurementMacro>
EnhancedSR
Error - Dicom dataset read failed
something unexpected
"""  # noqa: E501


@pytest.mark.parametrize(("path", "item"), [
    ("</ContentSequence(0040,a730)[5]/ContentSequence(0040,a730)[1]/ContentSequence(0040,a730)"
     "[4]/ConceptNameCodeSequence(0040,a043)[1]/CodingSchemeDesignator(0008,0102)[1]>",
     "1.5.1.4"),
    ("/ContentSequence(0040,a730)[2]/PersonName(0040,a123)[1]", "1.2"),
    ("/ConceptNameCodeSequence(0040,a043)[1]/CodeValue(0008,0100)", "1"),
    ("/ContentTemplateSequence(0040,a504)", "1"),
    ("/StudyID(0020,0010)", ""),
    ("/AuthorObserverSequence(0040,a078)[1]/PersonName(0040,a123)[1]", ""),
    ("", ""),
])
def test_item_id_from_path(path: str, item: str) -> None:
    assert item_id_from_path(path) == item


def test_dciodvfy_parser_classifies_every_line() -> None:
    findings = parse_output(DCIODVFY_TEXT, returncode=1)
    assert [(f.severity, f.item) for f in findings] == [
        (Severity.WARNING, ""), (Severity.ERROR, "1.8.1.5"), (Severity.INFO, ""),
        (Severity.ERROR, ""), (Severity.ERROR, ""),
    ]
    assert findings[1].attribute.endswith("MeasurementUnitsCodeSequence(0040,08ea)")
    assert findings[1].message.startswith("Missing attribute for Type 1 Required")
    assert findings[2].message == "IOD: EnhancedSR"
    assert all(f.source is Source.DCIODVFY for f in findings)
    # an unprefixed line is only an error when dciodvfy exited non-zero
    assert parse_output("something unexpected\n", returncode=0)[0].severity is Severity.INFO


def test_pixelmed_parser_on_recorded_output() -> None:
    findings = pixelmed.parse_output(PIXELMED_CSV2SR)
    errors = [f for f in findings if f.severity is Severity.ERROR]
    assert len(errors) == 1 and len(findings) == 5
    assert errors[0].item == "1.5" and errors[0].source is Source.PIXELMED
    assert "context group 7452" in errors[0].message
    assert errors[0].attribute.endswith("""CODE (121010,DCM,"Person Observer's Role in the \
Organization")""")


def test_pixelmed_batch_stream_is_split_per_file() -> None:
    results = pixelmed.parse_stream(PIXELMED_BATCH)
    assert set(results) == {"/data/a.dcm", "/data/notes.txt"}  # cut.dcm never finished
    assert results["/data/notes.txt"][0].message == "IOD (SOP Class) unrecognized"


def test_pixelmed_jar_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    jar = tmp_path / "pixelmed-20990101.jar"
    jar.write_bytes(b"PK")
    monkeypatch.setenv("PIXELMED_JAR", str(jar))
    assert tools.find_pixelmed_jar() == jar
    assert tools.find_pixelmed_jar(tmp_path / "missing.jar") == jar
    assert pixelmed.version(jar) == "20990101"


@pytest.mark.parametrize(("code", "valid"), [
    ("64033007", True), ("363698007", True), ("410668003", True), ("108369006", True),
    ("64033008", False), ("6403300A", False),
])
def test_snomed_verhoeff(code: str, valid: bool) -> None:
    assert verhoeff_valid(code) is valid


@pytest.mark.parametrize(("code", "valid"), [
    ("25045-6", True), ("41806-1", True), ("8867-4", True), ("18748-4", True),
    ("25045-5", False), ("250456", False), ("LA6576-8", True),
])
def test_loinc_mod10(code: str, valid: bool) -> None:
    assert loinc_valid(code) is valid


def test_dciodvfy_version_and_timeout(dciodvfy: Path, reference_sr: Path) -> None:
    assert tools.dicom3tools_version(dciodvfy)
    findings = run_dciodvfy(dciodvfy, reference_sr, timeout=0.000001)
    assert len(findings) == 1 and "did not finish" in findings[0].message


def test_pixelmed_real_run(reference_sr: Path, tmp_path: Path) -> None:
    """validate_files(use_pixelmed=True): one JVM for several files (slow: about 15 s)."""
    java, jar = tools.find_java(), tools.find_pixelmed_jar()
    if java is None or jar is None:
        pytest.skip("java or a pixelmed jar (PIXELMED_JAR, libpixelmed-java) is missing")
    text = tmp_path / "text.dcm"
    text.write_text("hello")
    copy = tmp_path / "ref.dcm"
    shutil.copyfile(reference_sr, copy)
    report = validate_files([copy, text], use_dciodvfy=False, use_pixelmed=True, jobs=1)
    assert report.tools["pixelmed"] == pixelmed.version(jar)
    found = {Path(f.path).name: [x for x in f.findings if x.source is Source.PIXELMED]
             for f in report.files}
    errors = [f for f in found["ref.dcm"] if f.severity is Severity.ERROR]
    # the documented pixelmed finding on the reference: 41806-1 is not in CID 100
    assert len(errors) == 1 and errors[0].item == "1.3" and "context group 100" in errors[0].message
    assert any("unrecognized" in f.message for f in found["text.dcm"])


def test_pixelmed_without_java_is_a_note(
    reference_sr: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tools, "find_java", lambda: None)
    report = validate_files([reference_sr], use_dciodvfy=False, use_pixelmed=True, jobs=1)
    assert report.ok() and report.tools["pixelmed"] is None
    assert report.notes == ["pixelmed not run: java not found"]
