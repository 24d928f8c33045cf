"""Rows that do not name their image, resolved through the image index (issue 11, part 1).

Real files on disk (tests/resolvegen.py), real ``csv2sr convert --images`` processes, real
dciodvfy, highdicom reading the SRs back, ``validate --images`` and ``export``.  The four
table shapes are tests/data/profiles/resolve/*.toml.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import highdicom as hd
import pydicom
import pytest

from conftest import ROOT
from csv2sr.conversion.build import encode
from csv2sr.conversion.checks import Record, read_rows
from csv2sr.conversion.document import dataset_bytes
from csv2sr.conversion.fastpath import FastEncoder
from csv2sr.conversion.group import documents
from csv2sr.dicom.codes import CodeMode
from csv2sr.images.enrich import enriched_header
from csv2sr.images.index import ImageIndex, ImageLookupError, z_position
from csv2sr.images.resolve import resolve_record
from csv2sr.mapping.load import ProfileError, load_profile
from csv2sr.mapping.record import Document
from resolvegen import ResolveImages, write_resolve_images
from srtree import decoded

PROFILES = ROOT / "tests" / "data" / "profiles" / "resolve"


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> ResolveImages:
    return write_resolve_images(tmp_path_factory.mktemp("resolve-images"))


@pytest.fixture(scope="module")
def index(images: ResolveImages) -> ImageIndex:
    return ImageIndex.from_folder(images.folder)


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "csv2sr", *map(str, args)],
                          capture_output=True, text=True, check=False, timeout=600)


def write_table(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def manifest(out: Path) -> list[dict[str, str]]:
    with (out / "manifest.csv").open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def dciodvfy_errors(binary: Path, path: Path) -> list[str]:
    done = subprocess.run([str(binary), str(path)], capture_output=True, text=True,
                          check=False)
    return [line for line in (done.stdout + done.stderr).splitlines()
            if line.startswith("Error")]


def evidence_uids(ds: pydicom.Dataset) -> set[str]:
    return {
        item.ReferencedSOPInstanceUID
        for study in ds.CurrentRequestedProcedureEvidenceSequence
        for series in study.ReferencedSeriesSequence
        for item in series.ReferencedSOPSequence
    }


def regions(path: Path) -> list[hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations]:
    report = hd.sr.srread(path)
    groups = report.content.get_planar_roi_measurement_groups()
    assert groups
    return list(groups)


def selected_from(group: hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations) -> pydicom.Dataset:
    """The Referenced SOP item of the IMAGE the group's region is SELECTED FROM (TID 1410
    row 7 > TID 320)."""
    region = group.roi
    assert region is not None
    (image,) = region.ContentSequence
    assert image.RelationshipType == "SELECTED FROM"
    item: pydicom.Dataset = image.ReferencedSOPSequence[0]
    return item


def export_rows(sr: Path, profile: str, back: Path, key: str,
                *images: Path) -> dict[str, dict[str, str]]:
    """``csv2sr export --profile`` (with ``--images`` when given): the rows by ``key``."""
    extra = ("--images", images[0]) if images else ()
    done = run("export", sr, "--profile", PROFILES / profile, "-o", back, *extra)
    assert done.returncode == 0, done.stdout + done.stderr
    with back.open(newline="", encoding="utf-8") as fh:
        return {row[key]: row for row in csv.DictReader(fh)}


def validate_with_images(sr: Path, folder: Path) -> dict[str, object]:
    done = run("validate", sr, "--images", folder, "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    report: dict[str, object] = json.loads(done.stdout)
    return report


# --------------------------------------------------------------------------- the index


def test_series_instances_in_both_orders_and_every_lookup(
    images: ResolveImages, index: ImageIndex
) -> None:
    t2 = images.series["t2"]
    by_number = [uid for uid, _ in index.ordered(t2.series_uid, "instance_number")]
    by_z = [uid for uid, _ in index.ordered(t2.series_uid, "z")]
    assert by_number == t2.by_instance_number() and by_z == t2.by_z()
    assert by_z == list(reversed(by_number))  # instance 1 is the top slice
    assert index.find_slice(t2.series_uid, 0, by="index", order="z") == t2.by_z()[0]
    assert index.find_slice(t2.series_uid, 1, by="index", order="instance_number",
                            base=1) == t2.by_instance_number()[0]
    assert index.find_slice(t2.series_uid, 4, by="instance_number") == t2.instance_uids[3]
    assert index.find_slice(t2.series_uid, 38.004, by="z", tolerance=0.01) == \
        t2.instance_uids[3]  # z = 50 - 4 * 3
    sagittal = images.series["t1"]
    header = index.get(sagittal.instance_uids[0])
    assert header is not None and z_position(header) == pytest.approx(-5.0)
    assert index.series_of_patient("RES-0001") == sorted(
        images.series[n].series_uid for n in ("t2", "t1", "ct"))
    assert index.number_of_frames(images.series["us"].instance_uids[0]) == 5
    assert index.number_of_frames(t2.instance_uids[0]) == 1


@pytest.mark.parametrize(("by", "order", "base"), [
    ("index", "z", 0), ("index", "instance_number", 1), ("instance_number", "", 0),
    ("z", "", 0),
])
def test_slice_value_is_the_inverse_of_find_slice(
    images: ResolveImages, index: ImageIndex, by: str, order: str, base: int
) -> None:
    """What export writes back in a slice column (csv2sr.mapping.inverse) names the same
    instance again."""
    t2 = images.series["t2"]
    order = order or "instance_number"
    for uid in t2.instance_uids:
        value = index.slice_value(uid, by=by, order=order, base=base)
        assert index.find_slice(t2.series_uid, value, by=by, order=order, base=base) == uid
    with pytest.raises(ImageLookupError, match="is not in"):
        index.slice_value("1.2.3", by=by)


@pytest.mark.parametrize(("call", "expected"), [
    (lambda i, s: i.find_slice(s["t2"].series_uid, 6, by="index", order="z"),
     r"slice 6 is out of range: series \S+ has 6 instances \(0-based indices 0 to 5 in z"),
    (lambda i, s: i.find_slice(s["t2"].series_uid, 7, by="instance_number"),
     r"no instance of series \S+ has Instance Number 7 \(they run from 1 to 6"),
    (lambda i, s: i.find_slice(s["t2"].series_uid, 40, by="z"),
     r"no instance .* has z 40 within 0.01 mm \(they run from 30 to 50; nearest 38\)"),
    (lambda i, s: i.find_slice(s["gap"].series_uid, 2, by="index"),
     r"series \S+ has missing Instance Numbers 3: a slice index"),
    (lambda i, s: i.find_slice(s["gap"].series_uid, 0, by="index", order="z"),
     r"uneven spacing along the slice normal \(steps from 5 to 10 mm\)"),
    (lambda i, s: i.find_slice(s["noplane"].series_uid, 0, by="z"),
     r"has no usable Image Position and Orientation \(Patient\), which order = 'z' needs"),
    (lambda i, s: i.find_slice("1.2.3", 0, by="index"), r"series 1.2.3 is not in "),
    (lambda i, s: i.select_series("RES-0002", modality="MR", description="T2"),
     r"2 series of the patient match the rule \(Modality = MR and Series Description "
     r"matches 'T2'\): .*'T2 AX'.*'T2 AX FS'"),
    (lambda i, s: i.select_series("RES-0001", modality="PT"),
     r"no series of the patient matches the rule \(Modality = PT\); the patient has: .*CT"),
    (lambda i, s: i.select_series("NOBODY", modality="MR"), r"no series of patient 'NOBODY'"),
])
def test_each_ambiguity_is_named(
    images: ResolveImages, index: ImageIndex, call: object, expected: str
) -> None:
    with pytest.raises(ImageLookupError, match=expected):
        call(index, images.series)  # type: ignore[operator]


def test_the_series_rule_picks_one_series(images: ResolveImages, index: ImageIndex) -> None:
    chosen = index.select_series("RES-0002", modality="MR", description="^T2 AX$")
    assert chosen == images.series["t2b"].series_uid


# --------------------------------------------------------------------------- the profile


def _profile(tmp_path: Path, name: str, old: str, new: str) -> Path:
    text = (PROFILES / name).read_text(encoding="utf-8")
    assert old in text, old
    path = tmp_path / name
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


@pytest.mark.parametrize(("name", "old", "new", "key", "message"), [
    ("slice-series.toml", '"sop_instance_uid", ', "", "identity.sop_instance_uid",
     "not given: give a column"),
    ("slice-series.toml", 'by = "index", order = "z"', 'by = "z", order = "z"',
     "identity.image.slice.order", 'order is for by = "index"'),
    ("slice-series.toml", 'series_uid = "series_uid"\nneeds = [',
     'needs = ["series_uid", ', "identity.image.slice",
     "a slice is a slice of a series"),
    ("slice-series.toml", 'column = "slice"', 'column = "x"', "identity.image.slice.column",
     "column 'x' is of type 'coordinate' in [cells]; this key needs IS"),
    ("patient-rule.toml", '"^T2 AX$"', '"(unclosed"', "identity.image.series.description",
     "not a regular expression"),
    ("patient-rule.toml", 'patient_id = "patient"', 'patient_id = { const = "P" }',
     "identity.image.series", "give identity.patient_id as a column"),
    ("frames.toml", 'frame = { column = "frame", base = 1 }', 'frame = { column = "frame", '
     'base = 2 }', "identity.image.frame.base", "2 is not one of 0, 1"),
    ("frames.toml", '"series_uid", ', "", "identity.series_uid", "not given"),
])
def test_profile_mistakes_name_the_key(
    tmp_path: Path, name: str, old: str, new: str, key: str, message: str
) -> None:
    with pytest.raises(ProfileError) as caught:
        load_profile(_profile(tmp_path, name, old, new))
    assert caught.value.key == key and message in caught.value.problem, str(caught.value)


def test_convert_without_images_is_a_usage_error(tmp_path: Path) -> None:
    table = write_table(tmp_path / "a.csv", ["finding_id", "series_uid", "slice", "x", "y",
                                              "w", "h"], [[1, "1.2.3", 0, 1, 1, 1, 1]])
    done = run("convert", table, "-o", tmp_path / "out",
               "--profile", PROFILES / "slice-series.toml")
    assert done.returncode == 2
    assert "come from the source images: give --images DIR or --images-url URL" in done.stderr
    assert not (tmp_path / "out").exists()
    check = run("profile", "check", PROFILES / "slice-series.toml")
    assert check.returncode == 0
    assert "resolved through the source images (convert --images DIR" in \
        check.stdout.replace("\n", " ")


# --------------------------------------------------------------------------- the tables


def _convert(
    table: Path, profile: str, out: Path, folder: Path
) -> subprocess.CompletedProcess[str]:
    return run("convert", table, "-o", out, "--profile", PROFILES / profile, "--images",
               folder, "--jobs", "1", "--quiet")


def test_a_series_uid_and_slice_index(
    images: ResolveImages, tmp_path: Path, dciodvfy: Path
) -> None:
    t2, gap = images.series["t2"], images.series["gap"]
    table = write_table(tmp_path / "a.csv", ["finding_id", "series_uid", "slice", "x", "y",
                                              "w", "h"], [
        [1, t2.series_uid, 0, 10, 20, 30, 40],
        [2, t2.series_uid, 5, 300, 200, 10, 10],
        [3, t2.series_uid, 6, 1, 1, 1, 1],        # out of range
        [4, gap.series_uid, 0, 1, 1, 1, 1],       # uneven z spacing
        [5, "1.2.826.0.1.9", 0, 1, 1, 1, 1],      # not indexed
        [6, t2.series_uid, 2, 310, 1, 20, 1],     # outside the 320 columns
    ])
    out = tmp_path / "out"
    done = _convert(table, "slice-series.toml", out, images.folder)
    assert done.returncode == 1
    status = {row["finding_id"]: row for row in manifest(out)}
    assert [status[k]["status"] for k in "123456"] == [
        "converted", "converted", "rejected", "rejected", "rejected", "rejected"]
    assert f"{table}:4: slice: slice 6 is out of range" in done.stderr
    assert f"{table}:5: slice: series {gap.series_uid} has uneven spacing" in done.stderr
    assert f"{table}:6: slice: series 1.2.826.0.1.9 is not in" in done.stderr
    assert f"{table}:7: x: outside the image" in done.stderr  # the box's columns
    for key, slice_index in (("1", 0), ("2", 5)):
        path = out / status[key]["path"]
        assert dciodvfy_errors(dciodvfy, path) == []
        ds = pydicom.dcmread(path)
        expected = t2.by_z()[slice_index]
        assert ds.PatientID == "RES-0001" and ds.StudyInstanceUID == t2.study_uid
        assert str(ds.PatientName) == "RES-0001^Test" and ds.StudyDate == "20210305"
        assert evidence_uids(ds) == {expected}  # every instance the SR references
        (group,) = regions(path)
        assert selected_from(group).ReferencedSOPInstanceUID == expected
    validate_with_images(out / "sr", images.folder)
    back = tmp_path / "back.csv"
    assert run("export", out / "sr", "--profile", PROFILES / "slice-series.toml",
               "-o", back).returncode == 0
    with back.open(newline="", encoding="utf-8") as fh:
        rows = {row["finding_id"]: row for row in csv.DictReader(fh)}
    assert rows["1"]["series_uid"] == t2.series_uid and rows["1"]["x"] == "10"
    assert rows["2"]["w"] == "10" and rows["2"]["h"] == "10"
    assert rows["1"]["slice"] == ""  # the limit: the slice is not in the SR (docs/images.md)
    # ... but the source images know it: the index of the referenced instance in z order;
    # a cache of the run without them is not taken for the run with them
    cache = tmp_path / "export-cache.json"
    for given, expected in (((), ("", "")), ((images.folder,), ("0", "5"))):
        extra = ("--images", *given) if given else ()
        done = run("export", out / "sr", "--profile", PROFILES / "slice-series.toml", "-o",
                   back, "--cache", cache, *extra)
        assert done.returncode == 0, done.stderr
        with back.open(newline="", encoding="utf-8") as fh:
            rows = {row["finding_id"]: row for row in csv.DictReader(fh)}
        assert (rows["1"]["slice"], rows["2"]["slice"]) == expected
    assert export_rows(out / "sr", "slice-series.toml", back, "finding_id",
                       images.folder) == rows


def test_d_normalised_box_takes_the_size_from_the_image(
    images: ResolveImages, tmp_path: Path, dciodvfy: Path
) -> None:
    t2 = images.series["t2"]  # 256 rows x 320 columns
    table = write_table(tmp_path / "d.csv", ["box", "series", "instance", "cx", "cy", "w", "h"], [
        [1, t2.series_uid, 3, 0.5, 0.25, 0.25, 0.5],
        [2, t2.series_uid, 9, 0.5, 0.5, 0.1, 0.1],   # no Instance Number 9
    ])
    out = tmp_path / "out"
    done = _convert(table, "fraction-size.toml", out, images.folder)
    assert done.returncode == 1
    assert f"{table}:3: instance: no instance of series {t2.series_uid} has Instance " \
        "Number 9" in done.stderr
    (row, _) = manifest(out)
    path = out / row["path"]
    assert dciodvfy_errors(dciodvfy, path) == []
    (group,) = regions(path)
    region = group.roi
    assert region is not None
    points = region.value.reshape(-1, 2).tolist()
    # x: (0.5 -/+ 0.125) * 320 columns; y: (0.25 -/+ 0.25) * 256 rows
    assert points == [[120.0, 0.0], [200.0, 0.0], [200.0, 128.0], [120.0, 128.0], [120.0, 0.0]]
    assert selected_from(group).ReferencedSOPInstanceUID == t2.instance_uids[2]
    assert evidence_uids(pydicom.dcmread(path)) == {t2.instance_uids[2]}
    validate_with_images(out / "sr", images.folder)
    back = run("export", out / "sr", "--profile", PROFILES / "fraction-size.toml",
               "-o", tmp_path / "back.csv")
    assert back.returncode == 1  # the limit: the image size is not in the profile
    assert "the box is in fractions of the image's own size" in back.stderr + back.stdout


def test_c_multiframe_image_with_a_frame_column(
    images: ResolveImages, tmp_path: Path, dciodvfy: Path
) -> None:
    us = images.series["us"].instance_uids[0]
    table = write_table(tmp_path / "c.csv", ["mark", "image", "frame", "x", "y"], [
        [1, us, 1, 10, 20],
        [2, us, 5, 30, 40],
        [3, us, 6, 1, 1],   # 5 frames
        [4, us, 0, 1, 1],   # 1-based
    ])
    out = tmp_path / "out"
    done = _convert(table, "frames.toml", out, images.folder)
    assert done.returncode == 1
    assert re.search(rf"{re.escape(str(table))}:4: frame: frame 6 is not a frame of the "
                     r"image \S+, which has 5 \(Number of Frames; 1-based frames 1 to 5\)",
                     done.stderr), done.stderr
    assert f"{table}:5: frame: frame 0 is not a frame" in done.stderr
    rows = manifest(out)
    for row, frame in zip(rows[:2], (1, 5), strict=True):
        path = out / row["path"]
        assert dciodvfy_errors(dciodvfy, path) == []
        ds = pydicom.dcmread(path)
        assert ds.PatientID == "RES-0003" and ds.SeriesInstanceUID != images.series["us"].series_uid
        (group,) = regions(path)
        referenced = selected_from(group)
        assert referenced.ReferencedSOPInstanceUID == us
        assert referenced.ReferencedSOPClassUID == images.series["us"].sop_class_uid
        assert int(referenced.ReferencedFrameNumber) == frame
    validate_with_images(out / "sr", images.folder)
    assert run("export", out / "sr", "--profile", PROFILES / "frames.toml",
               "-o", tmp_path / "back.csv").returncode == 0
    with (tmp_path / "back.csv").open(newline="", encoding="utf-8") as fh:
        back = list(csv.DictReader(fh))
    assert [(r["mark"], r["image"], r["frame"], r["x"], r["y"]) for r in back] == [
        ("1", us, "1", "10", "20"), ("2", us, "5", "30", "40")]  # Referenced Frame Number


def test_b_patient_and_series_rule(
    images: ResolveImages, tmp_path: Path, dciodvfy: Path
) -> None:
    table = write_table(tmp_path / "b.csv", ["lesion", "patient", "slice", "x0", "y0", "x1",
                                              "y1"], [
        [1, "RES-0002", 2, 10, 10, 50, 60],
        [2, "RES-0001", 1, 10, 10, 50, 60],   # RES-0001's T2 AX is also exactly "T2 AX"
        [3, "RES-0003", 1, 1, 1, 2, 2],       # no MR "T2 AX" series
        [4, "RES-0002", 4, 1, 1, 2, 2],       # 3 slices
        [5, "NOBODY", 1, 1, 1, 2, 2],
    ])
    out = tmp_path / "out"
    done = _convert(table, "patient-rule.toml", out, images.folder)
    assert done.returncode == 1
    assert f"{table}:4: patient: no series of the patient matches the rule (Modality = MR " \
        "and Series Description matches '^T2 AX$'); the patient has:" in done.stderr
    assert f"{table}:5: slice: slice 4 is out of range" in done.stderr
    assert f"{table}:6: patient: no series of patient 'NOBODY'" in done.stderr
    rows = {row["lesion"]: row for row in manifest(out)}
    expected = {"1": images.series["t2b"].by_instance_number()[1],
                "2": images.series["t2"].by_instance_number()[0]}
    for key, uid in expected.items():
        path = out / rows[key]["path"]
        assert dciodvfy_errors(dciodvfy, path) == []
        (group,) = regions(path)
        assert selected_from(group).ReferencedSOPInstanceUID == uid
        assert evidence_uids(pydicom.dcmread(path)) == {uid}
    validate_with_images(out / "sr", images.folder)
    assert run("export", out / "sr", "--profile", PROFILES / "patient-rule.toml",
               "-o", tmp_path / "back.csv").returncode == 0
    with (tmp_path / "back.csv").open(newline="", encoding="utf-8") as fh:
        back = {r["lesion"]: r for r in csv.DictReader(fh)}
    assert back["1"]["patient"] == "RES-0002" and back["1"]["slice"] == ""
    assert (back["2"]["x0"], back["2"]["y1"]) == ("10", "60")
    back = export_rows(out / "sr", "patient-rule.toml", tmp_path / "back.csv", "lesion",
                       images.folder)  # 1-based in Instance Number order
    assert (back["1"]["slice"], back["2"]["slice"]) == ("2", "1")


def test_bad_files_in_the_folder_do_not_stop_the_rows(
    images: ResolveImages, tmp_path: Path
) -> None:
    folder = tmp_path / "images"
    import shutil  # noqa: PLC0415

    shutil.copytree(images.folder, folder)
    (folder / "notes.txt").write_text("not DICOM\n", encoding="utf-8")
    t2 = images.series["t2"]
    copy = folder / "copy-of-slice-1.dcm"
    shutil.copy(next(p for p in images.files if p.parent.name == "res-t2"), copy)
    table = write_table(tmp_path / "a.csv", ["finding_id", "series_uid", "slice", "x", "y",
                                              "w", "h"], [[1, t2.series_uid, 3, 1, 1, 5, 5]])
    out = tmp_path / "out"
    done = _convert(table, "slice-series.toml", out, folder)
    assert done.returncode == 0, done.stderr
    assert "notes.txt: not a DICOM file" in done.stderr
    assert "is in two files (a copy)" in done.stderr
    (row,) = manifest(out)
    assert row["status"] == "converted"


def test_a_dicomweb_server_that_is_down_is_one_clear_error(tmp_path: Path) -> None:
    import socket  # noqa: PLC0415

    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    table = write_table(tmp_path / "a.csv", ["finding_id", "series_uid", "slice", "x", "y",
                                              "w", "h"], [[1, "1.2.3", 0, 1, 1, 1, 1]])
    out = tmp_path / "out"
    done = run("convert", table, "-o", out, "--profile", PROFILES / "slice-series.toml",
               "--images-url", f"http://127.0.0.1:{port}/dicom-web", "--quiet")
    assert done.returncode == 1
    # the table names no study (study_uid comes from the images): every study is listed
    assert f"error: http://127.0.0.1:{port}/dicom-web: cannot list the studies" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (out / "manifest.csv").exists()  # nothing half-written


# --------------------------------------------------------------------------- the cache


def test_the_index_cache_skips_the_scan_and_changes_nothing(
    images: ResolveImages, index: ImageIndex, tmp_path: Path
) -> None:
    import os  # noqa: PLC0415
    import shutil  # noqa: PLC0415

    from csv2sr.images.index import header_values  # noqa: PLC0415

    folder = tmp_path / "images"
    shutil.copytree(images.folder, folder)
    (folder / "README").write_text("not DICOM\n", encoding="utf-8")
    before = sorted((p, p.stat().st_mtime_ns) for p in folder.rglob("*"))
    out = tmp_path / "out"
    first = ImageIndex.from_folder(folder, cache_in=out)
    (cache,) = (out / "cache").iterdir()
    assert not first.cached and cache.name.startswith("images-") and cache.suffix == ".json"
    second = ImageIndex.from_folder(folder, cache_in=out)
    assert second.cached and second.uids() == first.uids() == index.uids()
    for uid in first.uids():
        again = second.get(uid)
        assert again is not None and header_values(again) == header_values(first.get(uid))  # type: ignore[arg-type]
        assert second.source(uid) == first.source(uid)
    assert [str(s) for s in second.skipped] == [str(s) for s in first.skipped]
    assert second.find_slice(images.series["t2"].series_uid, 0, by="index", order="z") == \
        images.series["t2"].by_z()[0]
    assert sorted((p, p.stat().st_mtime_ns) for p in folder.rglob("*")) == before
    # a file touched, or a damaged cache: read again, never an error
    some = next(folder.rglob("*.dcm"))
    os.utime(some, ns=(some.stat().st_atime_ns, some.stat().st_mtime_ns + 1_000_000))
    assert not ImageIndex.from_folder(folder, cache_in=out).cached
    assert ImageIndex.from_folder(folder, cache_in=out).cached
    cache.write_text('{"format": 1, "key": ', encoding="utf-8")
    damaged = ImageIndex.from_folder(folder, cache_in=out)
    assert not damaged.cached and damaged.uids() == first.uids()


def test_a_second_convert_reads_the_cache_and_writes_the_same_srs(
    images: ResolveImages, tmp_path: Path
) -> None:
    t2 = images.series["t2"]
    table = write_table(tmp_path / "a.csv", ["finding_id", "series_uid", "slice", "x", "y",
                                              "w", "h"], [[1, t2.series_uid, 1, 5, 5, 9, 9],
                                                          [2, t2.series_uid, 4, 1, 2, 3, 4]])
    out = tmp_path / "out"
    args = ("convert", table, "-o", out, "--profile", PROFILES / "slice-series.toml",
            "--images", images.folder, "--jobs", "1")
    first = run(*args)
    assert first.returncode == 0, first.stderr
    assert "(from " not in first.stdout
    srs = {p: p.read_bytes() for p in sorted((out / "sr").rglob("*.dcm"))}
    second = run(*args)
    assert second.returncode == 0, second.stderr
    assert f"headers indexed from {images.folder} (from {out / 'cache'})" in \
        second.stdout.replace("\n", "")
    assert {p: p.read_bytes() for p in sorted((out / "sr").rglob("*.dcm"))} == srs


# --------------------------------------------------------------------------- 3D boxes

_BOX_HEADER = ["lesion", "patient", "x0", "x1", "y0", "y1", "slice0", "slice1"]
_BOXES = [
    [1, "RES-0001", 10, 60, 20, 80, 1, 3],
    [2, "RES-0002", 5, 9, 5, 9, 2, 0],        # the range either way round
    [5, "RES-0001", 1.5, 2.25, 1, 2, 4, 4],   # one slice
]
"""3D boxes (lesion, patient, column, row and slice ranges) that convert."""


def _convert_boxes(images: ResolveImages, tmp_path: Path,
                   profile: str) -> tuple[Path, dict[str, tuple[Path, list[str]]]]:
    """Convert :data:`_BOXES` and two bad rows with ``profile``: (OUT, lesion -> (its SR,
    the SOP Instance UIDs of its slices in z order)); the bad rows are rejected, named."""
    t2, t2b = images.series["t2"], images.series["t2b"]
    table = write_table(tmp_path / "boxes.csv", _BOX_HEADER, [
        *_BOXES,
        [3, "RES-0001", 1, 2, 1, 2, 4, 9],        # 6 slices
        [4, "RES-0003", 1, 2, 1, 2, 0, 1],        # no MR "T2 AX" series
    ])
    out = tmp_path / "out"
    done = _convert(table, profile, out, images.folder)
    assert done.returncode == 1
    assert f"{table}:5: slice1: slice 9 is out of range" in done.stderr
    assert f"{table}:6: patient: no series of the patient matches the rule" in done.stderr
    rows = {row["lesion"]: row for row in manifest(out)}
    slices = {"1": t2.by_z()[1:4], "2": t2b.by_z()[0:3], "5": t2.by_z()[4:5]}
    return out, {key: (out / rows[key]["path"], uids) for key, uids in slices.items()}



def test_b_patient_and_3d_box_make_one_volumetric_group(
    images: ResolveImages, tmp_path: Path, dciodvfy: Path
) -> None:
    out, expected = _convert_boxes(images, tmp_path, "patient-volume.toml")
    for path, uids in expected.values():
        assert dciodvfy_errors(dciodvfy, path) == []
        report = hd.sr.srread(path)
        assert report.content.get_planar_roi_measurement_groups() == []
        (group,) = report.content.get_volumetric_roi_measurement_groups()
        container = group[0]
        assert container.ContentTemplateSequence[0].TemplateIdentifier == "1411"
        regions = [i for i in container.ContentSequence if i.ValueType == "SCOORD"]
        assert [r.ConceptNameCodeSequence[0].CodeValue for r in regions] == \
            ["111030"] * len(uids)
        selected = [r.ContentSequence[0] for r in regions]
        assert {s.RelationshipType for s in selected} == {"SELECTED FROM"}
        assert [s.ReferencedSOPSequence[0].ReferencedSOPInstanceUID for s in selected] == uids
        first = list(regions[0].GraphicData)
        assert all(list(r.GraphicData) == first for r in regions)
        assert evidence_uids(pydicom.dcmread(path)) == set(uids)  # every slice referenced
    validate_with_images(out / "sr", images.folder)
    done = run("export", out / "sr", "--profile", PROFILES / "patient-volume.toml",
               "-o", tmp_path / "back.csv")
    assert done.returncode == 0, done.stderr
    assert "a second region of the same group is not exported" in done.stderr + done.stdout
    with (tmp_path / "back.csv").open(newline="", encoding="utf-8") as fh:
        back = {r["lesion"]: r for r in csv.DictReader(fh)}
    assert [back["1"][c] for c in ("patient", "x0", "x1", "y0", "y1", "slice0", "slice1")] == [
        "RES-0001", "10", "60", "20", "80", "", ""]  # the slices: not given back
    # with the source images the slice range comes back too, first to last in z order
    back = export_rows(out / "sr", "patient-volume.toml", tmp_path / "back.csv", "lesion",
                       images.folder)
    assert [(back[k]["slice0"], back[k]["slice1"]) for k in "125"] == [
        ("1", "3"), ("0", "2"), ("4", "4")]


def test_b_patient_and_3d_box_make_one_planar_group_per_slice(
    images: ResolveImages, tmp_path: Path, dciodvfy: Path
) -> None:
    """template = "1410" with identity.image.slice.last: one TID 1410 group per slice,
    each with the box as its Image Region SELECTED FROM its own slice and the row's
    tracking identifier and UID; export merges them back into the row."""
    out, expected = _convert_boxes(images, tmp_path, "patient-slices.toml")
    header, good, table = _BOX_HEADER, _BOXES, tmp_path / "boxes.csv"
    for key, (path, uids) in expected.items():
        assert dciodvfy_errors(dciodvfy, path) == []
        report = hd.sr.srread(path)
        assert report.content.get_volumetric_roi_measurement_groups() == []
        groups = report.content.get_planar_roi_measurement_groups()
        assert [selected_from(g).ReferencedSOPInstanceUID for g in groups] == uids
        assert {str(g.tracking_identifier) for g in groups} == {f"lesion-{key}"}
        assert len({str(g.tracking_uid) for g in groups}) == 1
        assert all(g[0].ContentTemplateSequence[0].TemplateIdentifier == "1410"
                   for g in groups)
        shapes = [list(g.roi.GraphicData) for g in groups if g.roi is not None]
        assert len(shapes) == len(uids) and all(s == shapes[0] for s in shapes)
        assert all(g.finding_type.value == "4147007" for g in groups)
        assert evidence_uids(pydicom.dcmread(path)) == set(uids)  # every slice referenced
    validate_with_images(out / "sr", images.folder)
    # the fast path (convert's default) gives the reference builder's bytes
    reference = tmp_path / "reference"
    assert run("convert", table, "-o", reference, "--profile", PROFILES /
               "patient-slices.toml", "--images", images.folder, "--jobs", "1", "--quiet",
               "--reference-builder").returncode == 1
    built = {p.relative_to(reference): p.read_bytes() for p in reference.rglob("sr/**/*.dcm")}
    assert len(built) == 3
    assert built == {p.relative_to(out): p.read_bytes() for p in out.rglob("sr/**/*.dcm")}
    done = run("export", out / "sr", "--profile", PROFILES / "patient-slices.toml",
               "-o", tmp_path / "back.csv")
    assert done.returncode == 0, done.stderr
    assert "not exported" not in done.stderr + done.stdout
    assert "slice0, slice1: the SR names the instance, not its slice: give the source " \
        "images (--images DIR)" in done.stderr.replace("\n", "")
    with (tmp_path / "back.csv").open(newline="", encoding="utf-8") as fh:
        back = {r["lesion"]: r for r in csv.DictReader(fh)}
    assert sorted(back) == ["1", "2", "5"]  # one row per 3D box
    for row in good:
        written = dict(zip(header, map(str, row), strict=True))
        assert back[written["lesion"]] == {**written, "slice0": "", "slice1": ""}
    # with the source images the slice range comes back too, first to last in z order
    back = export_rows(out / "sr", "patient-slices.toml", tmp_path / "back.csv", "lesion",
                       images.folder)
    for row in good:
        written = dict(zip(header, map(str, row), strict=True))
        first, last = sorted((written["slice0"], written["slice1"]))
        assert back[written["lesion"]] == {**written, "slice0": first, "slice1": last}


@pytest.mark.parametrize(("old", "new", "key", "message"), [
    ('last = "slice1", ', "", "groups[0].template", "give identity.image.slice.last"),
])
def test_3d_profile_mistakes_name_the_key(
    tmp_path: Path, old: str, new: str, key: str, message: str
) -> None:
    path = _profile(tmp_path, "patient-volume.toml", old, new)
    if not new:  # slice1 is then unused: mark it ignored so the template check is reached
        text = path.read_text(encoding="utf-8").replace(
            'slice1 = { type = "IS", min = 0 }', 'slice1 = { type = "ignore" }')
        path.write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    assert caught.value.key == key and message in caught.value.problem, str(caught.value)


def test_the_fast_path_renders_the_per_slice_groups(
    images: ResolveImages, index: ImageIndex, tmp_path: Path
) -> None:
    """The TID 1410 groups of a 3D box are ordinary TID 1410 groups to the fast path: one
    template per number of slices (the shape), highdicom's bytes for every document."""
    spec = load_profile(PROFILES / "patient-slices.toml")
    table = write_table(tmp_path / "f.csv", ["lesion", "patient", "x0", "x1", "y0", "y1",
                                              "slice0", "slice1"], [
        [1, "RES-0001", 10, 60, 20, 80, 1, 3], [2, "RES-0001", 1, 2, 3, 4, 2, 4],
        [3, "RES-0001", 5.5, 9, 5, 9.25, 3, 1], [4, "RES-0001", 7, 8, 7, 8, 0, 0],
    ])
    records = []
    for item in read_rows(table, spec):
        assert isinstance(item, Record)
        resolved = resolve_record(item, index, spec)
        assert isinstance(resolved, Record), resolved
        records.append(resolved)
    docs = [d for d in documents(records, spec, table) if isinstance(d, Document)]
    fast = FastEncoder(spec, CodeMode.SCT)
    for document in docs:
        headers = {image.sop_instance_uid: enriched_header(found, document.first, image)
                   for image in document.images
                   if (found := index.get(image.sop_instance_uid)) is not None}
        reference = dataset_bytes(encode(document, spec, CodeMode.SCT, headers=headers))
        assert fast.encode_bytes(document, headers) == reference
    rendered = [t for t in fast.templates.values() if t is not None]
    assert len(rendered) == 1  # the three 3-slice boxes share one; the 1-slice box waits


@pytest.mark.parametrize(("edits", "key", "message"), [
    ([('"slice1"]', '"slice1", "size"]'), ('slice1 = { type = "IS", min = 0 }',
                                             'slice1 = { type = "IS", min = 0 }\nsize = '
                                             '{ type = "DS" }'),
      ('region = {', 'measurements = [{ concept = "SCT:81827009", unit = "mm", '
                     'value = "size" }]\nregion = {')],
     "groups[0].measurements", 'in a TID 1411 group (template = "1411")'),
    ([('region = { type = "box", corners = [["x0", "y0"], ["x1", "y1"]] }',
       'region = { type = "point", space = "patient", points = [["x0", "y0", "x1"]] }')],
     "groups[0].region.space", "give it in pixels"),
])
def test_per_slice_profile_mistakes_name_the_key(
    tmp_path: Path, edits: list[tuple[str, str]], key: str, message: str
) -> None:
    """One TID 1410 group per slice repeats the row on each slice: no measurement (of the
    whole box), no region in patient mm (not on a slice)."""
    text = (PROFILES / "patient-slices.toml").read_text(encoding="utf-8")
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "patient-slices.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    assert caught.value.key == key and message in caught.value.problem, str(caught.value)


# --------------------------------------------------------------------------- DICOMweb


def test_a_real_orthanc_resolves_the_same_rows_as_the_folder(
    images: ResolveImages, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    pytest.importorskip("dicomweb_client", reason="dicomweb-client is not installed")
    from orthanc import orthanc_factory  # noqa: PLC0415

    t2 = images.series["t2"]
    table = write_table(tmp_path / "b.csv", ["lesion", "patient", "slice", "x0", "y0", "x1",
                                              "y1"], [[1, "RES-0002", 2, 10, 10, 50, 60],
                                                      [2, "RES-0001", 9, 1, 1, 2, 2]])
    with orthanc_factory(tmp_path_factory.mktemp) as make:
        server = make("orthanc", dicom=False)
        for path in images.files:
            assert server.upload(path.read_bytes())["Status"] == "Success"
        remote = run("convert", table, "-o", tmp_path / "remote", "--profile",
                     PROFILES / "patient-rule.toml", "--images-url", server.dicomweb,
                     "--jobs", "1", "--quiet")
    local = _convert(table, "patient-rule.toml", tmp_path / "local", images.folder)
    assert remote.returncode == local.returncode == 1, remote.stderr
    assert f"{table}:3: slice: slice 9 is out of range: series {t2.series_uid}" in remote.stderr
    remote_srs = sorted((tmp_path / "remote" / "sr").rglob("*.dcm"))
    local_srs = sorted((tmp_path / "local" / "sr").rglob("*.dcm"))
    assert len(remote_srs) == len(local_srs) == 1
    assert decoded(pydicom.dcmread(remote_srs[0])) == decoded(pydicom.dcmread(local_srs[0]))


# --------------------------------------------------------------------------- generated


def _oblique_series(angles: tuple[float, float], spacing: float, origin: float,
                    numbers: list[int]) -> list[tuple[str, pydicom.Dataset]]:
    """Headers of one series of parallel slices, tilted by ``angles``, ``spacing`` mm
    apart along their normal, with Instance Numbers in the order given."""
    import math  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415

    a, b = angles
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rotation = ry @ rx
    row, column = rotation @ np.array([1.0, 0, 0]), rotation @ np.array([0, 1.0, 0])
    normal = np.cross(row, column)
    items = []
    for position, number in enumerate(numbers):
        ds = pydicom.Dataset()
        ds.SOPInstanceUID = f"1.2.3.{number}"
        ds.SeriesInstanceUID = "1.2.3"
        ds.InstanceNumber = number
        ds.ImageOrientationPatient = [f"{v:.12f}" for v in (*row, *column)]
        ds.ImagePositionPatient = [f"{v:.12f}" for v in
                                   (normal * (origin + spacing * position) + 3 * row)]
        items.append((f"slice-{number}", ds))
    return items


@pytest.mark.filterwarnings("ignore")
def test_slices_of_any_orientation_are_found_by_z_and_by_index() -> None:
    from hypothesis import given, settings  # noqa: PLC0415
    from hypothesis import strategies as st  # noqa: PLC0415

    @settings(max_examples=60, deadline=None)
    @given(
        angles=st.tuples(st.floats(-3.1, 3.1), st.floats(-3.1, 3.1)),
        spacing=st.floats(0.5, 10.0),
        origin=st.floats(-500.0, 500.0),
        numbers=st.permutations(list(range(1, 9))),
    )
    def check(angles: tuple[float, float], spacing: float, origin: float,
              numbers: list[int]) -> None:
        index = ImageIndex.from_datasets(_oblique_series(angles, spacing, origin, numbers))
        by_z = [uid for uid, _ in index.ordered("1.2.3", "z")]
        assert by_z == [f"1.2.3.{n}" for n in numbers]  # written in ascending z
        assert index.gaps("1.2.3", "z") == "" and index.gaps("1.2.3", "instance_number") == ""
        for position, uid in enumerate(by_z):
            assert index.find_slice("1.2.3", position, by="index", order="z") == uid
            assert index.find_slice("1.2.3", position + 1, by="index", order="z",
                                    base=1) == uid
            header = index.get(uid)
            assert header is not None
            z = z_position(header)
            assert z is not None
            assert z == pytest.approx(origin + spacing * position, abs=1e-6)
            assert index.find_slice("1.2.3", z + spacing / 4, by="z",
                                    tolerance=spacing / 3) == uid
        assert index.find_slice("1.2.3", 1, by="index", order="instance_number") == \
            f"1.2.3.{2}"

    check()
