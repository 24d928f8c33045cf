"""Synthetic CT series whose UIDs match the rows of a synthetic CCC2017-style CSV.

The images are real CT Image Storage instances (PS3.3 A.3: 512 x 512, Pixel Spacing,
Image Position/Orientation (Patient), Slice Thickness, a Frame of Reference), with constant
pixel data compressed as RLE Lossless (PS3.5 Annex G) so that each file stays a few KB.
Everything is deterministic: UIDs are ``2.25.`` + a name-based UUID over a seed.

:func:`make_collection` gives two patients (one with anisotropic pixel spacing, to prove
rows and columns are not swapped); :func:`good_rows` and :func:`broken_rows` give CSV rows
that match the images or break exactly one cross-check each.
"""

from __future__ import annotations

import csv
import functools
import math
import shutil
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom import Dataset, dcmread
from pydicom.dataset import FileMetaDataset
from pydicom.uid import UID, CTImageStorage, ExplicitVRLittleEndian, RLELossless

from csv2sr.mapping.load import load_profile

__all__ = [
    "SyntheticCollection",
    "SyntheticSeries",
    "broken_rows",
    "good_rows",
    "image_dataset",
    "line_length_mm",
    "make_collection",
    "make_series",
    "synthetic_uid",
    "write_csv",
    "write_duplicate",
    "write_junk",
    "write_many",
    "write_series",
]

_NAMESPACE = uuid.UUID("6f6c1a52-0d1f-4c53-9c5e-2f1c2d9a7b10")
SIZE = 512


def synthetic_uid(*parts: str) -> str:
    """A deterministic made-up UID (PS3.5 B.2): ``2.25.<uuid5 integer>``."""
    return f"2.25.{uuid.uuid5(_NAMESPACE, '/'.join(parts)).int}"


@dataclass(frozen=True)
class SyntheticSeries:
    """One CT series of one study of one patient."""

    seed: str
    patient_id: str
    patient_name: str
    study_uid: str
    series_uid: str
    frame_of_reference_uid: str
    instance_uids: tuple[str, ...]
    pixel_spacing: tuple[float, float]
    """(row spacing, column spacing) in mm, PS3.3 C.7.6.2.1.1 order."""
    slice_thickness: float
    study_date: str
    study_time: str
    study_id: str
    accession_number: str
    series_number: int
    anatomy: str = "Renal"

    def position(self, index: int) -> tuple[float, float, float]:
        """Image Position (Patient) of slice ``index``: axial, centred field of view."""
        row_spacing, column_spacing = self.pixel_spacing
        return (
            -column_spacing * SIZE / 2,
            -row_spacing * SIZE / 2,
            -100.0 + index * self.slice_thickness,
        )


@dataclass(frozen=True)
class SyntheticCollection:
    """Two patients, one study and one series each."""

    series: tuple[SyntheticSeries, ...]

    def write(self, folder: Path) -> list[Path]:
        """Write every series under ``folder``; return the files."""
        paths: list[Path] = []
        for series in self.series:
            paths.extend(write_series(series, folder))
        return paths


def make_series(
    seed: str,
    *,
    patient_id: str,
    slices: int = 4,
    pixel_spacing: tuple[float, float] = (0.703125, 0.703125),
    slice_thickness: float = 2.5,
    study_time: str = "132539",
    series_number: int = 2,
    anatomy: str = "Renal",
) -> SyntheticSeries:
    """A series with its own study; UIDs derived from ``seed``."""
    return SyntheticSeries(
        seed=seed,
        patient_id=patient_id,
        patient_name=patient_id,
        study_uid=synthetic_uid(seed, "study"),
        series_uid=synthetic_uid(seed, "series"),
        frame_of_reference_uid=synthetic_uid(seed, "for"),
        instance_uids=tuple(synthetic_uid(seed, "image", str(i)) for i in range(slices)),
        pixel_spacing=pixel_spacing,
        slice_thickness=slice_thickness,
        study_date="20030227",
        study_time=study_time,
        study_id=f"{sum(seed.encode()) % 10000}",
        accession_number=f"ACC-{seed[:8].upper()}",
        series_number=series_number,
        anatomy=anatomy,
    )


def make_collection() -> SyntheticCollection:
    """Patient SYN-0001 (isotropic 0.703125 mm, 4 slices) and SYN-0002 (0.6 x 0.9 mm, 3)."""
    return SyntheticCollection(
        series=(
            make_series("alpha", patient_id="SYN-0001", slices=4),
            make_series(
                "beta",
                patient_id="SYN-0002",
                slices=3,
                pixel_spacing=(0.6, 0.9),
                slice_thickness=5.0,
                study_time="093309.25",
                series_number=3,
                anatomy="Lung",
            ),
        )
    )


@functools.lru_cache(maxsize=1)
def _rle_pixel_data() -> bytes:
    """Encapsulated RLE Lossless fragments of a constant 512 x 512 16-bit image."""
    ds = Dataset()
    ds.Rows = SIZE
    ds.Columns = SIZE
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.compress(RLELossless, np.full((SIZE, SIZE), 1024, dtype=np.uint16),
                generate_instance_uid=False)
    return bytes(ds.PixelData)


def image_dataset(series: SyntheticSeries, index: int) -> Dataset:
    """The CT Image Storage instance for slice ``index`` (PS3.3 A.3 modules)."""
    ds = Dataset()
    uid = series.instance_uids[index]
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = uid
    ds.StudyDate = series.study_date
    ds.SeriesDate = series.study_date
    ds.StudyTime = series.study_time
    ds.SeriesTime = series.study_time
    ds.AccessionNumber = series.accession_number
    ds.Modality = "CT"
    ds.Manufacturer = "SYNTHETIC"
    ds.ReferringPhysicianName = "Referrer^Rita"
    ds.StudyDescription = f"CT {series.anatomy} synthetic"
    ds.SeriesDescription = "axial"
    ds.PatientName = series.patient_name
    ds.PatientID = series.patient_id
    ds.PatientBirthDate = "19500101"
    ds.PatientSex = "F"
    ds.PatientAge = "053Y"
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "synthetic test data"
    ds.BodyPartExamined = "ABDOMEN"
    ds.SliceThickness = f"{series.slice_thickness:g}"
    ds.KVP = "120"
    ds.PatientPosition = "FFS"
    ds.StudyInstanceUID = series.study_uid
    ds.SeriesInstanceUID = series.series_uid
    ds.StudyID = series.study_id
    ds.SeriesNumber = series.series_number
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = index + 1
    position = series.position(index)
    ds.ImagePositionPatient = [f"{v:.10g}" for v in position]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.FrameOfReferenceUID = series.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.SliceLocation = f"{position[2]:g}"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = SIZE
    ds.Columns = SIZE
    ds.PixelSpacing = [f"{v:.10g}" for v in series.pixel_spacing]
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.WindowCenter = 40
    ds.WindowWidth = 400
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.RescaleType = "HU"
    ds.PixelData = _rle_pixel_data()
    ds["PixelData"].VR = "OB"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = UID(uid)
    meta.TransferSyntaxUID = RLELossless
    meta.ImplementationClassUID = UID(synthetic_uid("imagegen"))
    ds.file_meta = meta
    ds.preamble = b"\x00" * 128
    return ds


def write_series(series: SyntheticSeries, folder: Path) -> list[Path]:
    """Write the series as ``folder/<patient>/<series number>/IM-<n>.dcm``."""
    target = folder / series.patient_id / str(series.series_number)
    target.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(len(series.instance_uids)):
        path = target / f"IM-{index + 1:04d}.dcm"
        image_dataset(series, index).save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def write_many(folder: Path, count: int, *, per_series: int = 100) -> list[Path]:
    """``count`` images in series of ``per_series`` slices (for benchmarks)."""
    paths: list[Path] = []
    number = 0
    while len(paths) < count:
        slices = min(per_series, count - len(paths))
        series = make_series(f"bulk-{number}", patient_id=f"BULK-{number:04d}", slices=slices)
        paths.extend(write_series(series, folder))
        number += 1
    return paths


def write_duplicate(source: Path, folder: Path, *, patient_name: str = "Other^Name") -> Path:
    """Copy an image under another name with the same SOP Instance UID, one name changed."""
    ds = dcmread(source)
    ds.PatientName = patient_name
    target = folder / "duplicates" / f"copy-of-{source.name}"
    target.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(target, enforce_file_format=True)
    return target


def write_junk(folder: Path, sample: Path) -> list[Path]:
    """A text file and a DICOM file cut in its header: the index must skip both."""
    junk = folder / "junk"
    junk.mkdir(parents=True, exist_ok=True)
    text = junk / "README.txt"
    text.write_text("not an image\n", encoding="ascii")
    cut = junk / "truncated.dcm"
    with sample.open("rb") as src, cut.open("wb") as dst:
        dst.write(src.read(400))
    empty = junk / "empty.dcm"
    empty.write_bytes(b"")
    return [text, cut, empty]


def line_length_mm(series: SyntheticSeries, points: tuple[float, float, float, float]) -> float:
    """Length of the line (x = column, y = row) in mm with the series' Pixel Spacing."""
    row_spacing, column_spacing = series.pixel_spacing
    x0, y0, x1, y1 = points
    return math.hypot((x1 - x0) * column_spacing, (y1 - y0) * row_spacing)


def _row(
    series: SyntheticSeries,
    slice_index: int,
    *,
    order: int,
    points: tuple[float, float, float, float],
    length: float | None = None,
) -> dict[str, str]:
    value = line_length_mm(series, points) if length is None else length
    x0, y0, x1, y1 = points
    return {
        "order": str(order),
        "anatomy": series.anatomy,
        "seriesUID": series.series_uid,
        "patientID": series.patient_id,
        "instanceUID": series.instance_uids[slice_index],
        "length": f"{value:.10g}",
        "start_x": repr(x0),
        "start_y": repr(y0),
        "end_x": repr(x1),
        "end_y": repr(y1),
        "annotator": "synthetic_heron",
        "radiologist_status": "radiologist" if order % 2 else "not_radiologist",
        "_id": f"syn{order:021d}",
        "sliceIndex": str(slice_index),
        "date_unix": str(1511736137 + order),
        "date": "43065",
        "StudyInstanceUID": series.study_uid,
        "StudyDate": series.study_date,
        # the CSV lost the leading zero, as the real one did
        "StudyTime": series.study_time.lstrip("0") or "0",
        "SOPClassUID": CTImageStorage,
    }


def good_rows(collection: SyntheticCollection) -> list[dict[str, str]]:
    """Four rows that match the images: two on alpha, two on beta (one horizontal)."""
    alpha, beta = collection.series
    return [
        _row(alpha, 1, order=1, points=(172.8353591, 270.0640884, 133.798895, 343.0453039)),
        _row(alpha, 2, order=2, points=(149.0989011, 287.1288711, 211.5004995, 312.1918082)),
        _row(beta, 0, order=3, points=(100.0, 200.0, 200.0, 200.0)),  # 100 px across: 90 mm
        _row(beta, 2, order=4, points=(300.0, 100.0, 300.0, 150.0)),  # 50 px down: 30 mm
    ]


def broken_rows(collection: SyntheticCollection) -> dict[str, dict[str, str]]:
    """One row per cross-check, each breaking exactly that check (key = what is broken)."""
    alpha, beta = collection.series
    rows = {
        "wrong_series": _row(alpha, 0, order=11, points=(10.0, 10.0, 20.0, 20.0)),
        "wrong_study": _row(alpha, 0, order=12, points=(10.0, 10.0, 20.0, 20.0)),
        "wrong_patient": _row(alpha, 3, order=13, points=(10.0, 10.0, 20.0, 20.0)),
        "missing_instance": _row(alpha, 0, order=14, points=(10.0, 10.0, 20.0, 20.0)),
        "outside": _row(beta, 1, order=15, points=(500.0, 100.0, 530.5, 120.0)),
        "bad_length": _row(beta, 1, order=16, points=(100.0, 100.0, 200.0, 100.0), length=70.0),
        "swapped_spacing": _row(
            beta, 1, order=17, points=(100.0, 100.0, 200.0, 100.0), length=60.0
        ),
    }
    rows["wrong_series"]["seriesUID"] = beta.series_uid
    rows["wrong_study"]["StudyInstanceUID"] = beta.study_uid
    rows["wrong_patient"]["patientID"] = beta.patient_id
    rows["missing_instance"]["instanceUID"] = synthetic_uid("alpha", "image", "999")
    return rows


def write_csv(path: Path, rows: Iterable[dict[str, str]]) -> Path:
    """Write rows with the ccc2017 header, CRLF line ends, as the published table."""
    columns = load_profile("ccc2017").columns
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="ascii", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\r\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
    return path


def copy_tree(source: Path, target: Path) -> Path:
    """Copy a generated image folder (tests that alter images work on a copy)."""
    shutil.copytree(source, target)
    return target


@dataclass(frozen=True)
class SyntheticFixture:
    """Images and CSVs written to one folder by :func:`write_fixture`."""

    collection: SyntheticCollection
    image_dir: Path
    image_files: tuple[Path, ...]
    good_csv: Path
    broken_csv: Path
    all_csv: Path


def write_fixture(folder: Path) -> SyntheticFixture:
    """Write the collection's images to ``folder/images`` and three CSVs next to them."""
    collection = make_collection()
    image_dir = folder / "images"
    files = collection.write(image_dir)
    good = good_rows(collection)
    broken = list(broken_rows(collection).values())
    return SyntheticFixture(
        collection=collection,
        image_dir=image_dir,
        image_files=tuple(files),
        good_csv=write_csv(folder / "good.csv", good),
        broken_csv=write_csv(folder / "broken.csv", broken),
        all_csv=write_csv(folder / "all.csv", good + broken),
    )


def write_images_like(csv_path: Path, folder: Path) -> dict[str, Path]:
    """One synthetic CT image per annotated instance of a CCC2017 table (its real UIDs).

    Patient, study, series, Study Date/Time (leading zeros restored) and Instance Number
    (``sliceIndex`` + 1) come from the rows; the isotropic Pixel Spacing is ``length``
    over the pixel distance of the instance's first row, rounded to 1/1024 mm as 1,428 of
    the 1,466 images' spacings are (field of view over 512), else to ten digits.
    Returns instance UID -> file.
    """
    from csv2sr.conversion.checks import repair_study_time  # noqa: PLC0415

    firsts: dict[str, dict[str, str]] = {}
    with csv_path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            firsts.setdefault(row["instanceUID"], row)
    written: dict[str, Path] = {}
    for uid, row in firsts.items():
        points = tuple(float(row[c]) for c in ("start_x", "start_y", "end_x", "end_y"))
        distance = math.hypot(points[2] - points[0], points[3] - points[1])
        ratio = float(row["length"]) / distance
        spacing = round(ratio * 1024) / 1024
        if abs(spacing - ratio) > 1e-6 * ratio:  # 38 of 1,466 are not k/1024 mm
            spacing = float(f"{ratio:.10g}")
        series = SyntheticSeries(
            seed=uid, patient_id=row["patientID"], patient_name=row["patientID"],
            study_uid=row["StudyInstanceUID"], series_uid=row["seriesUID"],
            frame_of_reference_uid=synthetic_uid(row["seriesUID"], "for"),
            instance_uids=(uid,), pixel_spacing=(spacing, spacing), slice_thickness=2.5,
            study_date=row["StudyDate"], study_time=repair_study_time(row["StudyTime"]),
            study_id="1", accession_number="", series_number=1, anatomy=row["anatomy"],
        )
        ds = image_dataset(series, 0)
        slice_index = int(row["sliceIndex"] or 0)
        ds.InstanceNumber = slice_index + 1
        z = -slice_index * series.slice_thickness
        ds.ImagePositionPatient = [*ds.ImagePositionPatient[:2], f"{z:g}"]
        ds.SliceLocation = f"{z:g}"
        target = folder / row["patientID"] / row["seriesUID"][-12:] / f"{uid[-16:]}.dcm"
        target.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(target, enforce_file_format=True)
        written[uid] = target
    return written


def write_malformed_spacing(source: Path, target: Path) -> Path:
    """Copy an image with its Pixel Spacing bytes made unreadable (``x.6`` for ``0.6``).

    pydicom refuses to write an invalid DS, so the file's bytes are patched instead.
    """
    data = source.read_bytes()
    ds = dcmread(source, stop_before_pixels=True)
    value = "\\".join(str(v) for v in ds.PixelSpacing).encode("ascii")
    at = data.find(value)
    if at < 0:
        raise ValueError(f"{source}: Pixel Spacing bytes not found")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data[:at] + b"x" + data[at + 1 :])
    return target
