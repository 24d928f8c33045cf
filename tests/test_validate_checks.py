"""csv2sr validate: own checks and dciodvfy on a valid csv2sr SR broken one way at a time.

Every broken file is made here from a valid SR built with ``read_rows`` + ``encode`` from
``fixtures/ccc2017-sample.csv`` row 1 (see ``validate_breakers.py`` for the item ids).  Each
case asserts what the own checks say (severity, item id, message) and, where the real
dciodvfy is installed, what dciodvfy says, or that it says nothing (what it misses).
"""

from __future__ import annotations

import copy
import io
from pathlib import Path

import pydicom
import pytest
from pydicom import Dataset
from pydicom.data import get_testdata_file

import imagegen
from csv2sr.codes import CodeMode
from csv2sr.encode import encode
from csv2sr.profiles import get_profile
from csv2sr.rows import Annotation, read_rows
from csv2sr.validate import validate_files
from csv2sr.validate.checks import check_file
from csv2sr.validate.dciodvfy import run_dciodvfy
from csv2sr.validate.findings import Finding, Severity, Source
from validate_breakers import BREAKERS, MORE_BREAKERS, meta_uid_differs

SAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "ccc2017-sample.csv"


def _first_row(mode: CodeMode = CodeMode.SCT) -> Dataset:
    profile = get_profile("ccc2017")
    row = next(r for r in read_rows(SAMPLE, profile) if isinstance(r, Annotation))
    assert row.radiologist, "the item ids below assume row 1 has the Radiologist role"
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
    "meaning_differs": (Severity.WARNING, "1.8.1.4", "csv2sr's code table"),
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
