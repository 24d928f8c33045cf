"""csv2sr validate: own checks and dciodvfy on a valid csv2sr SR broken one way at a time.

Every broken file is made here from a valid SR built with ``read_rows`` + ``encode`` from
``fixtures/ccc2017-sample.csv`` row 1 (the breakers below list its item ids).  Each
case asserts what the own checks say (severity, item id, message) and, where the real
dciodvfy is installed, what dciodvfy says, or that it says nothing (what it misses).
"""

from __future__ import annotations

import copy
import io
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest
from pydicom import Dataset
from pydicom.data import get_testdata_file
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag

import imagegen
from csv2sr.conversion.build import encode
from csv2sr.conversion.checks import Record, read_rows
from csv2sr.dicom.codes import CodeMode
from csv2sr.mapping.load import load_profile
from csv2sr.validate import validate_files
from csv2sr.validate.checks import check_file
from csv2sr.validate.dciodvfy import run_dciodvfy
from csv2sr.validate.findings import Finding, Severity, Source
from records import radiologist

SAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "ccc2017-sample.csv"

# --------------------------------------------------------------------------- breakers
# Each breaker takes a copy of the valid SR and breaks it in one way.  Item ids of that SR:
# 1.1 language, 1.2-1.5 observer context, 1.6 procedure reported, 1.7 image library
# (1.7.1.1 IMAGE), 1.8 imaging measurements > 1.8.1 measurement group > 1.8.1.1 tracking
# id, 1.8.1.2 tracking UID, 1.8.1.3 finding, 1.8.1.4 finding site, 1.8.1.5 NUM Length >
# 1.8.1.5.1 SCOORD > 1.8.1.5.1.1 IMAGE.

Breaker = Callable[[Dataset], None]


def item(ds: Dataset, item_id: str) -> Dataset:
    """The content item ``1.x.y`` of ``ds``."""
    node = ds
    for index in item_id.split(".")[1:]:
        node = node.ContentSequence[int(index) - 1]
    return node


def raw(ds: Dataset, keyword: str, vr: str, value: bytes) -> None:
    """Put an element with exactly these bytes (no pydicom validation)."""
    tag = Tag(keyword)
    if len(value) % 2:
        value += b"\x00" if vr == "UI" else b" "
    ds[tag] = RawDataElement(tag, vr, len(value), value, 0, False, True)  # type: ignore[assignment]


def missing_type1(ds: Dataset) -> None:
    del ds.SeriesInstanceUID


def missing_value_type(ds: Dataset) -> None:
    del item(ds, "1.8.1.5").ValueType


def bad_uid(ds: Dataset) -> None:
    raw(ds, "SeriesInstanceUID", "UI", b"1.2.03.4")


def bad_da(ds: Dataset) -> None:
    raw(ds, "ContentDate", "DA", b"20171345")


def non_numeric_ds(ds: Dataset) -> None:
    raw(item(ds, "1.8.1.5").MeasuredValueSequence[0], "NumericValue", "DS", b"12.5mm")


def bad_enumerated(ds: Dataset) -> None:
    raw(ds, "CompletionFlag", "CS", b"DONE")


def empty_code_meaning(ds: Dataset) -> None:
    item(ds, "1.8.1.4").ConceptCodeSequence[0].CodeMeaning = ""


def missing_units(ds: Dataset) -> None:
    del item(ds, "1.8.1.5").MeasuredValueSequence[0].MeasurementUnitsCodeSequence


def scoord_without_image(ds: Dataset) -> None:
    del item(ds, "1.8.1.5.1").ContentSequence


def scoord_contains_image(ds: Dataset) -> None:
    item(ds, "1.8.1.5.1.1").RelationshipType = "CONTAINS"


def procedure_wrong_relationship(ds: Dataset) -> None:
    item(ds, "1.6").RelationshipType = "CONTAINS"


def rows_out_of_order(ds: Dataset) -> None:
    items = list(ds.ContentSequence)
    items[5], items[6] = items[6], items[5]  # image library (row 5) before procedure (row 4)
    ds.ContentSequence = items


def title_not_in_cid7021(ds: Dataset) -> None:
    title = ds.ConceptNameCodeSequence[0]
    title.CodeValue, title.CodingSchemeDesignator = "18748-4", "LN"
    title.CodeMeaning = "Diagnostic imaging report"


def snomed_bad_check_digit(ds: Dataset) -> None:
    item(ds, "1.8.1.4").ConceptCodeSequence[0].CodeValue = "64033008"  # Kidney is 64033007


BREAKERS: dict[str, Breaker] = {
    "missing_type1": missing_type1,
    "missing_value_type": missing_value_type,
    "bad_uid": bad_uid,
    "bad_da": bad_da,
    "non_numeric_ds": non_numeric_ds,
    "bad_enumerated": bad_enumerated,
    "empty_code_meaning": empty_code_meaning,
    "missing_units": missing_units,
    "scoord_without_image": scoord_without_image,
    "scoord_contains_image": scoord_contains_image,
    "procedure_wrong_relationship": procedure_wrong_relationship,
    "rows_out_of_order": rows_out_of_order,
    "title_not_in_cid7021": title_not_in_cid7021,
    "snomed_bad_check_digit": snomed_bad_check_digit,
}


def meta_uid_differs(data: bytes) -> bytes:
    """Change the last digit of Media Storage SOP Instance UID (0002,0003) in the bytes.

    pydicom rewrites the meta header from the data set when saving, so this defect is
    made in the file's bytes (same length: the group length stays right).
    """
    start = data.index(b"\x02\x00\x03\x00UI") + 8
    length = int.from_bytes(data[start - 2:start], "little")
    uid = data[start:start + length].rstrip(b"\x00")
    last = uid[-1:]
    changed = uid[:-1] + (b"1" if last != b"1" else b"2")
    return data[:start] + changed + data[start + len(uid):]


def image_not_in_evidence(ds: Dataset) -> None:
    ref = item(ds, "1.8.1.5.1.1").ReferencedSOPSequence[0]
    ref.ReferencedSOPInstanceUID = "2.25.1234"


def polyline_one_point(ds: Dataset) -> None:
    item(ds, "1.8.1.5.1").GraphicData = [1.0, 2.0]


def language_missing(ds: Dataset) -> None:
    del ds.ContentSequence[0]


def tracking_uid_missing(ds: Dataset) -> None:
    del item(ds, "1.8.1").ContentSequence[1]


def units_not_ucum(ds: Dataset) -> None:
    units = item(ds, "1.8.1.5").MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0]
    units.CodingSchemeDesignator = "99LOCAL"


def meaning_differs(ds: Dataset) -> None:
    item(ds, "1.8.1.4").ConceptCodeSequence[0].CodeMeaning = "Renal structure"


def unknown_scheme(ds: Dataset) -> None:
    item(ds, "1.8.1.3").ConceptCodeSequence[0].CodingSchemeDesignator = "MADEUP"


def missing_type2(ds: Dataset) -> None:
    del ds.StudyID


def bad_tm(ds: Dataset) -> None:
    raw(ds, "ContentTime", "TM", b"256100")


def obs_context_below_num(ds: Dataset) -> None:
    """NUM HAS OBS CONTEXT TEXT: allowed in Comprehensive SR, not in Enhanced SR."""
    context = Dataset()
    context.RelationshipType = "HAS OBS CONTEXT"
    context.ValueType = "TEXT"
    name = Dataset()
    name.CodeValue, name.CodingSchemeDesignator = "112039", "DCM"
    name.CodeMeaning = "Tracking Identifier"
    context.ConceptNameCodeSequence = [name]
    context.TextValue = "extra"
    item(ds, "1.8.1.5").ContentSequence.append(context)


MORE_BREAKERS: dict[str, Breaker] = {
    "image_not_in_evidence": image_not_in_evidence,
    "polyline_one_point": polyline_one_point,
    "language_missing": language_missing,
    "tracking_uid_missing": tracking_uid_missing,
    "units_not_ucum": units_not_ucum,
    "unknown_scheme": unknown_scheme,
    "missing_type2": missing_type2,
    "bad_tm": bad_tm,
    "obs_context_below_num": obs_context_below_num,
}


# --------------------------------------------------------------------------- tests


def _first_row(mode: CodeMode = CodeMode.SCT) -> Dataset:
    profile = load_profile("ccc2017")
    row = next(r for r in read_rows(SAMPLE, profile) if isinstance(r, Record))
    assert radiologist(row), "the item ids below assume row 1 has the Radiologist role"
    return encode(row, profile, mode)


@pytest.fixture(scope="module")
def valid_sr() -> Dataset:
    """The SR as a reader sees it: written and read back (plain pydicom, no highdicom types)."""
    buffer = io.BytesIO()
    _first_row().save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    return pydicom.dcmread(buffer)


@pytest.fixture
def valid_file(valid_sr: Dataset, tmp_path: Path) -> Path:
    path = tmp_path / "valid.dcm"
    copy.deepcopy(valid_sr).save_as(path, enforce_file_format=True)
    return path


def _errors(findings: list[Finding], source: Source = Source.CSV2SR) -> list[Finding]:
    return [f for f in findings if f.severity is Severity.ERROR and f.source is source]


def _has(findings: list[Finding], severity: Severity, item: str, text: str) -> bool:
    return any(
        f.severity is severity and f.item == item and text in f.message for f in findings
    )


# name -> (own: severity, item id, message part), dciodvfy: (severity, item, part) or None
CASES: dict[str, tuple[tuple[Severity, str, str], tuple[Severity, str, str] | None]] = {
    "missing_type1": ((Severity.ERROR, "", "missing Type 1 attribute SeriesInstanceUID"),
                      (Severity.ERROR, "", "Missing attribute for Type 1 Required")),
    "missing_value_type": ((Severity.ERROR, "1.8.1.5", "without Value Type"),
                           (Severity.WARNING, "1.8.1.5", "not present in standard DICOM IOD")),
    "bad_uid": ((Severity.ERROR, "", "invalid UI value <1.2.03.4>"),
                (Severity.ERROR, "", "Leading zeroes")),
    "bad_da": ((Severity.ERROR, "", "invalid DA value <20171345>: not a calendar date"),
               (Severity.ERROR, "", "Value invalid for this VR [DA]")),
    "non_numeric_ds": ((Severity.ERROR, "1.8.1.5", "invalid DS value <12.5mm>"),
                       (Severity.ERROR, "1.8.1.5", "Value invalid for this VR [DS]")),
    "bad_enumerated": ((Severity.ERROR, "", "CompletionFlag <DONE> is not one of"),
                       (Severity.ERROR, "", "Unrecognized enumerated value")),
    "empty_code_meaning": ((Severity.ERROR, "1.8.1.4", "empty Code Meaning"),
                           (Severity.ERROR, "1.8.1.4", "Empty attribute")),
    "missing_units": ((Severity.ERROR, "1.8.1.5", "without Measurement Units Code Sequence"),
                      (Severity.ERROR, "1.8.1.5", "Missing attribute for Type 1 Required")),
    "scoord_without_image": ((Severity.ERROR, "1.8.1.5.1", "0 SELECTED FROM IMAGE"),
                             (Severity.ERROR, "", "expected IMAGE")),
    "scoord_contains_image": ((Severity.ERROR, "1.8.1.5.1.1",
                               "SCOORD CONTAINS IMAGE is not allowed in Enhanced SR"),
                              (Severity.ERROR, "1.8.1.5.1.1", "expected SELECTED FROM")),
    "procedure_wrong_relationship": ((Severity.ERROR, "1.6",
                                      "Procedure reported must be related by HAS CONCEPT MOD"),
                                     None),
    "rows_out_of_order": ((Severity.ERROR, "1.7", "rows out of order: Procedure reported"),
                          None),
    "title_not_in_cid7021": ((Severity.ERROR, "1", "is not in CID 7021"), None),
    "snomed_bad_check_digit": ((Severity.ERROR, "1.8.1.4",
                                "SNOMED CT code 64033008 is not a valid SCTID"), None),
}


@pytest.mark.filterwarnings("ignore:Invalid value for VR")
@pytest.mark.parametrize("name", sorted(CASES))
def test_broken_sr_is_caught(
    name: str, valid_sr: Dataset, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    ds = copy.deepcopy(valid_sr)
    BREAKERS[name](ds)
    path = tmp_path / f"{name}.dcm"
    ds.save_as(path, enforce_file_format=True)
    (severity, item, text), expected_dciodvfy = CASES[name]

    own = check_file(path)
    assert _has(own, severity, item, text), [f.message for f in own]

    dciodvfy = _dciodvfy_or_none(request)
    if dciodvfy is None:
        return
    said = run_dciodvfy(dciodvfy, path)
    if expected_dciodvfy is None:
        # what dciodvfy misses and only the own checks find
        assert _errors(said, Source.DCIODVFY) == []
    else:
        assert _has(said, *expected_dciodvfy), [(f.item, f.message) for f in said]


def _dciodvfy_or_none(request: pytest.FixtureRequest) -> Path | None:
    try:
        return Path(request.getfixturevalue("dciodvfy"))
    except pytest.skip.Exception:
        return None


def test_scoord_contains_image_also_leaves_scoord_without_selected_from(
    valid_sr: Dataset, tmp_path: Path
) -> None:
    ds = copy.deepcopy(valid_sr)
    BREAKERS["scoord_contains_image"](ds)
    path = tmp_path / "broken.dcm"
    ds.save_as(path, enforce_file_format=True)
    assert _has(check_file(path), Severity.ERROR, "1.8.1.5.1", "0 SELECTED FROM IMAGE")


def test_meta_uid_differing_from_dataset(
    valid_file: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    path = tmp_path / "meta.dcm"
    path.write_bytes(meta_uid_differs(valid_file.read_bytes()))
    own = check_file(path)
    assert any(
        f.severity is Severity.ERROR and f.attribute.startswith("/MediaStorageSOPInstanceUID")
        and "differs from SOPInstanceUID" in f.message for f in own
    ), [f.message for f in own]
    _dciodvfy_says(request, path, Severity.ERROR,
                   "MediaStorageSOPInstanceUID different from SOPInstanceUID")


def _dciodvfy_says(
    request: pytest.FixtureRequest, path: Path, severity: Severity, text: str
) -> None:
    """Where the real dciodvfy is installed, it says ``text`` at ``severity`` of ``path``."""
    dciodvfy = _dciodvfy_or_none(request)
    if dciodvfy is not None:
        said = run_dciodvfy(dciodvfy, path)
        assert any(f.severity is severity and text in f.message for f in said), [
            f.message for f in said]


def test_truncated_file(
    valid_file: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    path = tmp_path / "truncated.dcm"
    data = valid_file.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    own = check_file(path)
    assert [f.severity for f in own] == [Severity.ERROR]
    assert "truncated" in own[0].message
    _dciodvfy_says(request, path, Severity.ERROR, "Dicom dataset read failed")


@pytest.mark.parametrize(("content", "text"), [
    (b"", "empty file"),
    (b"patientID,length\nTCGA-1,12.5\n", "not a DICOM file"),
])
def test_empty_and_text_files(
    content: bytes, text: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    path = tmp_path / "input.dcm"
    path.write_bytes(content)
    own = check_file(path)
    assert len(own) == 1 and own[0].severity is Severity.ERROR and text in own[0].message
    _dciodvfy_says(request, path, Severity.ERROR, "Information Object Not found")


def test_ct_image_is_not_an_sr(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """A CT image is one clear error (pydicom's CT_small.dcm, native pixel data).

    dciodvfy validates it as the CT image it is: it cannot know an SR was expected.
    """
    source = get_testdata_file("CT_small.dcm")
    if source is None:
        pytest.skip("pydicom's CT_small.dcm test file is not installed")
    path = tmp_path / "ct.dcm"
    pydicom.dcmread(source).save_as(path, enforce_file_format=True)
    own = check_file(path)
    assert len(own) == 1, [f.message for f in own]
    assert _has(own, Severity.ERROR, "", "is not an SR Storage SOP class")
    _dciodvfy_says(request, path, Severity.INFO, "IOD: CTImage")


def test_rle_ct_image_is_not_an_sr(tmp_path: Path) -> None:
    """Encapsulated (RLE) pixel data is walked without error: still one clear finding."""
    files = imagegen.make_collection().write(tmp_path / "images")
    own = check_file(files[0])
    assert len(own) == 1, [f.message for f in own]
    assert _has(own, Severity.ERROR, "", "(CT Image Storage) is not an SR Storage SOP class")


def test_bad_inputs_never_crash_a_run(valid_file: Path, tmp_path: Path) -> None:
    """A folder of bad files validates to the end: every file gets a finding."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "empty.dcm").write_bytes(b"")
    (folder / "text.dcm").write_text("hello\n")
    (folder / "short.dcm").write_bytes(valid_file.read_bytes()[:300])
    (folder / "ok.dcm").write_bytes(valid_file.read_bytes())
    report = validate_files([folder], use_dciodvfy=False, jobs=1)
    failed = {Path(f.path).name for f in report.files if not f.passed}
    assert failed == {"empty.dcm", "text.dcm", "short.dcm"}


def test_fresh_csv2sr_sr_has_no_errors(
    valid_file: Path, dciodvfy: Path
) -> None:
    """csv2sr's own SR: no error from either source; only the documented dciodvfy warnings."""
    own = check_file(valid_file)
    assert [f for f in own if f.severity is not Severity.INFO] == []
    said = run_dciodvfy(dciodvfy, valid_file)
    assert _errors(said, Source.DCIODVFY) == []
    warnings = sorted(f.message for f in said if f.severity is Severity.WARNING)
    assert len(warnings) == 2
    assert "DICOMDIR" in warnings[0] and "Retired Person Name form" in warnings[1]


def test_srt_mode_sr_gives_deprecation_warnings_only(tmp_path: Path) -> None:
    path = tmp_path / "srt.dcm"
    _first_row(CodeMode.SRT).save_as(path, enforce_file_format=True)
    own = check_file(path)
    assert _errors(own) == []
    deprecated = [f for f in own if f.severity is Severity.WARNING and "SRT" in f.message]
    # Finding Site name + Kidney, Length, Neoplasm (the Radiologist role has no SRT code)
    assert len(deprecated) == 4
    assert {f.item for f in deprecated} == {"1.8.1.3", "1.8.1.4", "1.8.1.5"}


def test_reference_sr(reference_sr: Path) -> None:
    """The published reference: no error, and exactly the warnings its dciodvfy record has.

    Own checks (documented here): the three SRT codes are deprecated (warnings, the same
    three items dciodvfy names); Procedure reported (41806-1, LN) is not in CID 100 (info,
    not a warning).  dciodvfy (recorded in order-0001.dciodvfy.txt): Study ID, three retired
    person name forms and the three deprecated SRT designators.
    """
    own = check_file(reference_sr)
    assert _errors(own) == []
    own_warnings = sorted((f.item, f.message.split(":")[0]) for f in own
                          if f.severity is Severity.WARNING)
    assert own_warnings == [("1.5.1.3", "code (G-C0E3,SRT)"), ("1.5.1.3", "code (T-71000,SRT)"),
                            ("1.5.1.4", "code (G-D7FE,SRT)")]
    infos = [f for f in own if f.severity is Severity.INFO]
    assert len(infos) == 1 and infos[0].item == "1.3" and "CID 100" in infos[0].message


def test_reference_sr_dciodvfy_matches_record(reference_sr: Path, dciodvfy: Path) -> None:
    said = run_dciodvfy(dciodvfy, reference_sr)
    assert _errors(said, Source.DCIODVFY) == []
    warnings = [f for f in said if f.severity is Severity.WARNING]
    record = (reference_sr.parent / "order-0001.dciodvfy.txt").read_text()
    assert len(warnings) == record.count("Warning - ") == 7
    kinds = sorted(
        "SRT" if "deprecated" in f.message else "PN" if "Retired Person Name" in f.message
        else "StudyID" if f.attribute.startswith("/StudyID") else f.message
        for f in warnings
    )
    assert kinds == ["PN"] * 3 + ["SRT"] * 3 + ["StudyID"]
    assert sorted(f.item for f in warnings if "deprecated" in f.message) == [
        "1.5.1.3", "1.5.1.3", "1.5.1.4"]
    assert any(f.severity is Severity.INFO and f.message == "IOD: EnhancedSR" for f in said)


MORE_CASES: dict[str, tuple[Severity, str, str]] = {
    "image_not_in_evidence": (Severity.ERROR, "1.8.1.5.1.1", "in neither the Current"),
    "polyline_one_point": (Severity.ERROR, "1.8.1.5.1", "POLYLINE with 1 points"),
    "language_missing": (Severity.ERROR, "1", "TID 1500 row 2 is missing"),
    "tracking_uid_missing": (Severity.ERROR, "1.8.1",
                             "without Tracking Unique Identifier"),
    "units_not_ucum": (Severity.ERROR, "1.8.1.5", "not UCUM"),
    "unknown_scheme": (Severity.WARNING, "1.8.1.3", "unknown Coding Scheme Designator MADEUP"),
    "missing_type2": (Severity.ERROR, "", "missing Type 2 attribute StudyID"),
    "bad_tm": (Severity.ERROR, "", "invalid TM value <256100>: not a time of day"),
    "obs_context_below_num": (Severity.ERROR, "1.8.1.5.2",
                              "NUM HAS OBS CONTEXT TEXT is not allowed in Enhanced SR"),
}


@pytest.mark.parametrize("name", sorted(MORE_CASES))
def test_more_defects_found_by_own_checks(
    name: str, valid_sr: Dataset, tmp_path: Path
) -> None:
    ds = copy.deepcopy(valid_sr)
    MORE_BREAKERS[name](ds)
    path = tmp_path / f"{name}.dcm"
    ds.save_as(path, enforce_file_format=True)
    own = check_file(path)
    assert _has(own, *MORE_CASES[name]), [(f.item, f.message) for f in own]


def test_code_meaning_wording_is_no_finding(valid_sr: Dataset, tmp_path: Path) -> None:
    """PS3.16 does not fix the Code Meaning text: "Renal structure" for Kidney is fine."""
    ds = copy.deepcopy(valid_sr)
    meaning_differs(ds)
    path = tmp_path / "meaning.dcm"
    ds.save_as(path, enforce_file_format=True)
    assert [f for f in check_file(path) if f.severity is not Severity.INFO] == []


def test_comprehensive_sr_allows_what_enhanced_forbids(
    valid_sr: Dataset, tmp_path: Path
) -> None:
    """PS3.3 Table A.35.3-2 allows NUM HAS OBS CONTEXT; Table A.35.2-2 does not."""
    ds = copy.deepcopy(valid_sr)
    MORE_BREAKERS["obs_context_below_num"](ds)
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.33"
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    path = tmp_path / "comprehensive.dcm"
    ds.save_as(path, enforce_file_format=True)
    assert _errors(check_file(path)) == []


def test_reference_sr_whole_report(reference_sr: Path, dciodvfy: Path) -> None:
    """validate_files on the reference: 0 errors; warnings: dciodvfy 7, own 3 (SRT)."""
    report = validate_files([reference_sr], jobs=1)
    summary = report.summary()
    by_source = summary["by_source"]
    assert isinstance(by_source, dict)
    assert summary["by_severity"] == {"error": 0, "warning": 10, "info": 2}
    assert by_source["dciodvfy"]["warning"] == 7 and by_source["csv2sr"]["warning"] == 3
    assert report.ok() and report.tools["dciodvfy"]


def test_implicit_vr_sr_is_read_and_its_truncation_found(
    valid_sr: Dataset, tmp_path: Path
) -> None:
    """The byte scanner follows Implicit VR Little Endian too (PS3.5 A.1)."""
    ds = copy.deepcopy(valid_sr)
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    path = tmp_path / "implicit.dcm"
    ds.save_as(path, implicit_vr=True, little_endian=True, enforce_file_format=True)
    assert [f for f in check_file(path) if f.severity is not Severity.INFO] == []
    cut = tmp_path / "implicit-cut.dcm"
    cut.write_bytes(path.read_bytes()[:-40])
    own = check_file(cut)
    assert len(own) == 1 and "truncated" in own[0].message
