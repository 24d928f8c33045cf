"""csv2sr export reads the encodings of other writers, and reports what it cannot read.

* highdicom's TID 1410 classes (PlanarROIMeasurementsAndQualitativeEvaluations with a
  group-level ImageRegion), 2D and 3D, with a qualitative evaluation;
* TID 1501 without any template identifier and with frame numbers (as OHIF/dcmjs write);
* by-reference SELECTED FROM (PS3.3 C.17.3.2.2) to the Image Library entry;
* broken files and content: each reported with file, item and reason; the rest exported.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import highdicom as hd
import numpy as np
import pytest
from pydicom import Dataset, dcmread
from pydicom.dataset import FileMetaDataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian
from typer.testing import CliRunner

from csv2sr.cli import app
from csv2sr.conversion.batch import convert
from csv2sr.dicom.codes import Codes
from csv2sr.export import ProblemKind, export_table, read_file, write_table

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CSV = ROOT / "fixtures" / "ccc2017-sample.csv"
LINE = np.array([[172.8353591, 270.0640884], [133.798895, 343.0453039]])
WHEN = dt.datetime(2017, 11, 26, 22, 42, 17)


def ct_header() -> Dataset:
    """The header of a made-up CT slice (the evidence highdicom needs)."""
    ds = Dataset()
    ds.PatientID = "SYN-1410"
    ds.PatientName = "SYN-1410^"
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyInstanceUID = "2.25.1410001"
    ds.StudyDate = "20010203"
    ds.StudyTime = "093309.25"
    ds.StudyID = ""
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.SeriesInstanceUID = "2.25.1410002"
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = "2.25.1410003"
    ds.Modality = "CT"
    ds.FrameOfReferenceUID = "2.25.1410004"
    return ds


def highdicom_sr(path: Path, *, three_d: bool = False, evaluation: bool = False) -> Path:
    """A TID 1500 report made only with highdicom's TID 1410 classes."""
    ct = ct_header()
    region: hd.sr.ImageRegion | hd.sr.ImageRegion3D
    if three_d:
        region = hd.sr.ImageRegion3D(
            graphic_type=hd.sr.GraphicTypeValues3D.POLYLINE,
            graphic_data=np.array([[1.1, 2.2, 3.3], [4.4, 5.5, 6.6]]),
            frame_of_reference_uid=ct.FrameOfReferenceUID,
        )
    else:
        region = hd.sr.ImageRegion(
            graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
            graphic_data=LINE,
            source_image=hd.sr.SourceImageForRegion(ct.SOPClassUID, ct.SOPInstanceUID),
        )
    group = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid="2.25.1410005", identifier="lesion-1"),
        referenced_region=region,
        finding_type=Codes.NEOPLASM,
        finding_sites=[hd.sr.FindingSite(anatomic_location=Codes.KIDNEY)],
        measurements=[hd.sr.Measurement(name=Codes.LENGTH, value=12.5, unit=Codes.MILLIMETER)],
        qualitative_evaluations=(
            [hd.sr.QualitativeEvaluation(codes.SCT.Neoplasm, codes.SCT.Circumscribed)]
            if evaluation else None
        ),
    )
    observer = hd.sr.ObservationContext(
        observer_person_context=hd.sr.ObserverContext(
            observer_type=Codes.PERSON,
            observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
                name="Doe^Jane", login_name="jdoe", role_in_organization=Codes.RADIOLOGIST,
            ),
        )
    )
    report = hd.sr.MeasurementReport(
        observation_context=observer,
        procedure_reported=Codes.CT_UNSPECIFIED,
        imaging_measurements=[group],
    )
    kind = hd.sr.Comprehensive3DSR if three_d else hd.sr.EnhancedSR
    sr = kind(
        evidence=[ct], content=report[0], series_instance_uid="2.25.1410006",
        series_number=1, sop_instance_uid="2.25.1410007", instance_number=7,
        manufacturer="test", content_date=WHEN.date(), content_time=WHEN.time(),
    )
    sr.TimezoneOffsetFromUTC = "+0100"
    sr.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture(scope="module")
def sample_srs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("sample")
    assert convert(SAMPLE_CSV, out, jobs=1).ok
    return sorted((out / "sr").rglob("*.dcm"))


def walk(ds: Dataset, prefix: str = "1") -> Iterator[tuple[str, Dataset]]:
    """Every content item with its dcsrdump number."""
    yield prefix, ds
    for position, item in enumerate(ds.get("ContentSequence") or [], 1):
        yield from walk(item, f"{prefix}.{position}")


def find(ds: Dataset, value_type: str) -> tuple[str, Dataset]:
    return next((i, item) for i, item in walk(ds) if item.get("ValueType") == value_type)


# -- highdicom TID 1410 ------------------------------------------------------------------------


def test_highdicom_tid1410_exports_to_a_ccc2017_row(tmp_path: Path) -> None:
    sr = highdicom_sr(tmp_path / "hd.dcm")
    frame = export_table(sr, profile="ccc2017")
    assert frame.attrs["problems"] == []
    row = frame.iloc[0].to_dict()
    assert row["order"] == "7"
    assert row["anatomy"] == "Renal"
    assert row["length"] == "12.5"
    assert [row[c] for c in ("start_x", "start_y", "end_x", "end_y")] == [
        "172.83536", "270.0641", "133.79889", "343.04532"]
    assert (row["patientID"], row["StudyInstanceUID"]) == ("SYN-1410", "2.25.1410001")
    assert (row["seriesUID"], row["instanceUID"]) == ("2.25.1410002", "2.25.1410003")
    assert row["SOPClassUID"] == CTImageStorage
    assert (row["annotator"], row["radiologist_status"]) == ("jdoe", "radiologist")
    assert row["_id"] == "lesion-1"
    assert (row["StudyDate"], row["StudyTime"]) == ("20010203", "093309.25")
    # 22:42:17 at +0100 is 21:42:17 UTC
    expected = int(dt.datetime(2017, 11, 26, 21, 42, 17, tzinfo=dt.timezone.utc).timestamp())
    assert row["date_unix"] == str(expected)
    assert row["date"] == "43065"
    assert row["sliceIndex"] == ""


def test_highdicom_tid1410_generic_row(tmp_path: Path) -> None:
    frame = export_table(highdicom_sr(tmp_path / "hd.dcm"))
    row = frame.iloc[0]
    assert row["template"] == "1410"
    assert row["measurement"] == "SCT:410668003"
    assert row["finding"] == "SCT:108369006"
    assert row["observer_role"] == "SCT:66862007"
    assert row["observer_name"] == "Doe^Jane"
    assert row["coordinate_type"] == "SCOORD"
    assert row["graphic_type"] == "POLYLINE"
    assert row["unit"] == "mm"


def test_qualitative_evaluation_is_a_column(tmp_path: Path) -> None:
    """TID 1410 qualitative evaluation: a qualitative_<concept> column, nothing dropped."""
    sr = highdicom_sr(tmp_path / "hd.dcm", evaluation=True)
    result = write_table([sr], tmp_path / "t.csv")
    assert (result.rows, result.ok, result.problems) == (1, True, [])
    row = export_table(sr).iloc[0]
    column = f"qualitative_SCT_{codes.SCT.Neoplasm.value}"
    assert row[column] == f"SCT:{codes.SCT.Circumscribed.value}"
    assert row[column + "_meaning"] == codes.SCT.Circumscribed.meaning


def test_highdicom_tid1410_scoord3d(tmp_path: Path) -> None:
    sr = highdicom_sr(tmp_path / "hd3d.dcm", three_d=True)
    row = export_table(sr).iloc[0]
    assert row["coordinate_type"] == "SCOORD3D"
    assert row["points"] == "1.1 2.2 3.3 4.4 5.5 6.6"  # FL, as SCOORD: shortest float32 decimals
    assert row["frame_of_reference_uid"] == "2.25.1410004"
    ccc = write_table([sr], tmp_path / "t.csv", profile="ccc2017")
    assert ccc.rows == 0
    assert [p.kind for p in ccc.errors] == [ProblemKind.UNRECOGNISED]
    assert "two-point SCOORD" in ccc.errors[0].message


# -- other TID 1501 writers --------------------------------------------------------------------


def test_without_template_identifiers_and_with_frame_numbers(
    sample_srs: list[Path], tmp_path: Path
) -> None:
    """OHIF/dcmjs style: no Content Template Sequence below the root, frames referenced."""
    ds = dcmread(sample_srs[0])
    for _, item in walk(ds):
        if "ContentTemplateSequence" in item:
            del item.ContentTemplateSequence
    _, scoord = find(ds, "SCOORD")
    scoord.ContentSequence[0].ReferencedSOPSequence[0].ReferencedFrameNumber = 1
    ds.save_as(tmp_path / "dcmjs.dcm", enforce_file_format=True)
    original = export_table(sample_srs[0], profile="ccc2017")
    stripped = export_table(tmp_path / "dcmjs.dcm", profile="ccc2017")
    assert stripped.attrs["problems"] == []
    assert stripped.to_dict("records") == original.to_dict("records")
    generic = export_table(tmp_path / "dcmjs.dcm").iloc[0]
    assert (generic["template"], generic["referenced_frame_numbers"]) == ("1501", "1")


def test_selected_from_by_reference(sample_srs: list[Path], tmp_path: Path) -> None:
    """SCOORD SELECTED FROM the Image Library entry by reference (PS3.3 C.17.3.2.2)."""
    ds = dcmread(sample_srs[0])
    library_image = next(
        item_id for item_id, item in walk(ds)
        if item.get("ValueType") == "IMAGE" and item.get("RelationshipType") == "CONTAINS"
    )
    _, scoord = find(ds, "SCOORD")
    reference = Dataset()
    reference.RelationshipType = "SELECTED FROM"
    reference.ReferencedContentItemIdentifier = [int(p) for p in library_image.split(".")]
    scoord.ContentSequence[0] = reference
    ds.save_as(tmp_path / "byref.dcm", enforce_file_format=True)
    original = export_table(sample_srs[0], profile="ccc2017")
    by_reference = export_table(tmp_path / "byref.dcm", profile="ccc2017")
    assert by_reference.attrs["problems"] == []
    assert by_reference.to_dict("records") == original.to_dict("records")


# -- what cannot be read is reported ---------------------------------------------------------


def broken_files(sample: Path, folder: Path) -> dict[str, tuple[str, str]]:
    """Write broken files; return name -> (item id, words of the expected message)."""
    folder.mkdir()
    expected: dict[str, tuple[str, str]] = {}
    (folder / "text.dcm").write_text("not DICOM at all", encoding="utf-8")
    expected["text.dcm"] = ("", "not a DICOM file")

    ct = ct_header()
    ct.file_meta = FileMetaDataset()
    ct.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ct.file_meta.MediaStorageSOPClassUID = ct.SOPClassUID
    ct.file_meta.MediaStorageSOPInstanceUID = ct.SOPInstanceUID
    ct.save_as(folder / "ct.dcm", enforce_file_format=True)
    expected["ct.dcm"] = ("", "not a structured report")

    ds = dcmread(sample)
    number_id, number = find(ds, "NUM")
    number.MeasuredValueSequence = []
    ds.save_as(folder / "no-value.dcm", enforce_file_format=True)
    expected["no-value.dcm"] = (number_id, "has no measured value")  # ccc2017: no Length

    half = sample.read_bytes()
    (folder / "truncated.dcm").write_bytes(half[: len(half) // 2])
    expected["truncated.dcm"] = ("", "")

    ds = dcmread(sample)
    scoord_id, scoord = find(ds, "SCOORD")
    scoord.GraphicData = [1.0, 2.0, 3.0]
    ds.save_as(folder / "odd-points.dcm", enforce_file_format=True)
    expected["odd-points.dcm"] = (scoord_id, "not a whole number of 2-D points")

    ds = dcmread(sample)
    number_id, _ = find(ds, "NUM")
    group_id = number_id.rpartition(".")[0]
    group = dict(walk(ds))[group_id]
    stray = Dataset()
    stray.RelationshipType = "CONTAINS"
    stray.ValueType = "CONTAINER"
    stray.ContinuityOfContent = "SEPARATE"
    group.ContentSequence.append(stray)
    ds.save_as(folder / "stray.dcm", enforce_file_format=True)
    expected["stray.dcm"] = (f"{group_id}.{len(group.ContentSequence)}", "unexpected")

    ds = dcmread(sample)
    measurements = next(
        i for i, item in enumerate(ds.ContentSequence)
        if item.ConceptNameCodeSequence[0].CodeValue == Codes.IMAGING_MEASUREMENTS.value
    )
    del ds.ContentSequence[measurements]
    ds.save_as(folder / "no-measurements.dcm", enforce_file_format=True)
    expected["no-measurements.dcm"] = ("1", "no Imaging Measurements")
    return expected


def test_unreadable_and_unrecognised_content_is_reported(
    sample_srs: list[Path], tmp_path: Path
) -> None:
    expected = broken_files(sample_srs[0], tmp_path / "broken")
    for name, (item, words) in expected.items():
        result = write_table([tmp_path / "broken" / name], tmp_path / "t.csv",
                             profile="ccc2017")
        errors = result.errors
        assert len(errors) >= 1, name
        assert errors[0].item == item, name
        assert words in errors[0].message, (name, errors[0].message)
        assert errors[0].path.endswith(name)
    truncated = read_file(tmp_path / "broken" / "truncated.dcm")
    assert [p.kind for p in truncated.problems] == [ProblemKind.UNREADABLE]


def test_num_without_value_is_exported_empty_with_a_note(
    sample_srs: list[Path], tmp_path: Path
) -> None:
    """PS3.3 C.18.1: Measured Value Sequence is Type 2 (dcmjs writes a "Center" point so)."""
    ds = dcmread(sample_srs[0])
    number_id, number = find(ds, "NUM")
    number.MeasuredValueSequence = []
    ds.save_as(tmp_path / "no-value.dcm", enforce_file_format=True)
    result = write_table([tmp_path / "no-value.dcm"], tmp_path / "t.csv")
    assert (result.rows, result.ok) == (1, True)
    assert [(p.kind, p.item) for p in result.problems] == [(ProblemKind.NOTE, number_id)]
    row = export_table(tmp_path / "no-value.dcm").iloc[0]
    assert (row["value"], row["unit"], row["graphic_type"]) == ("", "", "POLYLINE")


def test_cli_reports_each_problem_and_exits_1(sample_srs: list[Path], tmp_path: Path) -> None:
    expected = broken_files(sample_srs[0], tmp_path / "in")
    good = tmp_path / "in" / "good.dcm"
    good.write_bytes(sample_srs[1].read_bytes())
    table = tmp_path / "t.csv"
    done = CliRunner().invoke(app, ["export", str(tmp_path / "in"), "-o", str(table),
                                    "--profile", "ccc2017", "--quiet"])
    assert done.exit_code == 1
    text = " ".join(done.output.split())  # rich may wrap long lines
    for name, (item, _words) in expected.items():
        assert name in text
        if item:
            assert f"item {item}" in text
    rows = table.read_text(encoding="utf-8").splitlines()
    # the good file and the one with a stray container still give their row
    assert len(rows) == 1 + 2


def content_item(relationship: str, value_type: str, concept: Code) -> Dataset:
    item = Dataset()
    item.RelationshipType = relationship
    item.ValueType = value_type
    name = Dataset()
    name.CodeValue = concept.value
    name.CodingSchemeDesignator = concept.scheme_designator
    name.CodeMeaning = concept.meaning
    item.ConceptNameCodeSequence = [name]
    return item


def test_group_observer_overrides_the_document_observer(
    sample_srs: list[Path], tmp_path: Path
) -> None:
    """PS3.16 TID 1501 row 2 / TID 1410 row 2: observer context inside the group."""
    ds = dcmread(sample_srs[0])
    number_id, _ = find(ds, "NUM")
    group = dict(walk(ds))[number_id.rpartition(".")[0]]
    login = content_item("HAS OBS CONTEXT", "TEXT", Codes.PERSON_OBSERVER_LOGIN_NAME)
    login.TextValue = "group_login"
    group.ContentSequence.insert(0, login)
    ds.save_as(tmp_path / "group-observer.dcm", enforce_file_format=True)
    document = export_table(sample_srs[0], profile="ccc2017").iloc[0]
    grouped = export_table(tmp_path / "group-observer.dcm", profile="ccc2017").iloc[0]
    assert document["annotator"] != "group_login"
    assert grouped["annotator"] == "group_login"


def test_unused_segment_region_is_a_note(sample_srs: list[Path], tmp_path: Path) -> None:
    """A group region (here a segment reference) that no NUM uses, because the NUM has its
    own SCOORD, cannot be held by the row: a note naming it."""
    ds = dcmread(sample_srs[0])
    number_id, _ = find(ds, "NUM")
    group_id = number_id.rpartition(".")[0]
    group = dict(walk(ds))[group_id]
    segment = content_item("CONTAINS", "IMAGE", codes.DCM.ReferencedSegment)
    reference = Dataset()
    reference.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.66.4"
    reference.ReferencedSOPInstanceUID = "2.25.1411"
    reference.ReferencedSegmentNumber = 1
    segment.ReferencedSOPSequence = [reference]
    group.ContentSequence.append(segment)
    ds.save_as(tmp_path / "segment.dcm", enforce_file_format=True)
    result = write_table([tmp_path / "segment.dcm"], tmp_path / "t.csv", profile="ccc2017")
    assert (result.rows, result.ok) == (1, True)
    assert [(p.kind, p.item) for p in result.problems] == [
        (ProblemKind.NOTE, f"{group_id}.{len(group.ContentSequence)}")]
    assert "region is not exported" in result.problems[0].message


def test_empty_imaging_measurements_is_a_note(sample_srs: list[Path], tmp_path: Path) -> None:
    ds = dcmread(sample_srs[0])
    container_id, container = next(
        (i, item) for i, item in walk(ds)
        if item.get("ValueType") == "CONTAINER" and "ConceptNameCodeSequence" in item
        and item.ConceptNameCodeSequence[0].CodeValue == Codes.IMAGING_MEASUREMENTS.value
    )
    del container.ContentSequence
    ds.save_as(tmp_path / "empty.dcm", enforce_file_format=True)
    result = write_table([tmp_path / "empty.dcm"], tmp_path / "t.csv")
    assert (result.rows, result.ok) == (0, True)
    assert [(p.kind, p.item) for p in result.problems] == [(ProblemKind.NOTE, container_id)]
