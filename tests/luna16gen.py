"""Synthetic CT headers for the LUNA16 series (../shared/data/luna16/), seeded.

LUNA16's ``annotations.csv`` gives nodule centres in patient millimetres; the real CT
series (LIDC-IDRI) are not here.  :func:`luna16_series` makes, for every series of the
table, a CT series with the real Series, Study and Patient IDs (from ``series-map.txt``)
and a seeded Frame of Reference UID, pixel spacing, slice spacing and position, such that
every real nodule centre of that series lies inside its volume (PS3.3 C.7.6.2.1.1).
:func:`write_headers` writes them as tiny CT Image Storage files without Pixel Data (the
index reads headers only).  The patient orientation is axial (LIDC's is), the table
position random.
"""

from __future__ import annotations

import csv
import math
import random
from dataclasses import dataclass, replace
from pathlib import Path

from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import UID, CTImageStorage, ExplicitVRLittleEndian

from imagegen import synthetic_uid

__all__ = ["LUNA16", "LunaSeries", "luna16_like", "luna16_series", "read_annotations",
           "write_headers"]

LUNA16 = Path(__file__).resolve().parents[2] / "shared" / "data" / "luna16"
SIZE = 512
SLICES = 6


@dataclass(frozen=True)
class LunaSeries:
    patient_id: str
    study_uid: str
    series_uid: str
    frame_of_reference_uid: str
    origin: tuple[float, float, float]
    """Image Position (Patient) of the first slice."""
    pixel_spacing: float
    slice_spacing: float
    slices: int = SLICES

    def instance_uid(self, index: int) -> str:
        return synthetic_uid("luna16", self.series_uid, "image", str(index))

    def position(self, index: int) -> tuple[float, float, float]:
        x, y, z = self.origin
        return (x, y, z + index * self.slice_spacing)


def read_annotations(path: Path | None = None) -> list[dict[str, str]]:
    with (path or LUNA16 / "annotations.csv").open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _series_map() -> dict[str, tuple[str, str]]:
    found = {}
    for line in (LUNA16 / "series-map.txt").read_text(encoding="utf-8").splitlines()[1:]:
        patient, study, series = line.split()
        found[series] = (patient, study)
    return found


def luna16_series(rows: list[dict[str, str]], seed: int = 16) -> dict[str, LunaSeries]:
    """One synthetic series per series of ``rows``: every centre inside, with a seeded
    margin of 10-40 mm on each side."""
    rng = random.Random(seed)
    mapping = _series_map()
    points: dict[str, list[tuple[float, float, float]]] = {}
    for row in rows:
        points.setdefault(row["seriesuid"], []).append(
            (float(row["coordX"]), float(row["coordY"]), float(row["coordZ"])))
    found = {}
    for series, centres in points.items():
        patient, study = mapping[series]
        low = [min(p[i] for p in centres) for i in range(3)]
        high = [max(p[i] for p in centres) for i in range(3)]
        margin = [rng.uniform(10, 40) for _ in range(3)]
        span = max(high[0] - low[0], high[1] - low[1]) + 2 * max(margin[:2])
        spacing = max(rng.choice((0.625, 0.703125, 0.78125)), math.ceil(span / SIZE * 64) / 64)
        slice_spacing = max(rng.choice((1.25, 2.5)),
                            math.ceil((high[2] - low[2] + 2 * margin[2]) / (SLICES - 1) * 4) / 4)
        origin = (round(low[0] - margin[0], 3), round(low[1] - margin[1], 3),
                  round(low[2] - margin[2], 3))
        found[series] = LunaSeries(patient, study, series,
                                   synthetic_uid("luna16", series, "for"), origin, spacing,
                                   slice_spacing)
    return found


def header(series: LunaSeries, index: int) -> Dataset:
    """A CT Image Storage header (PS3.3 A.3) of slice ``index``, without Pixel Data."""
    ds = Dataset()
    uid = series.instance_uid(index)
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = uid
    ds.StudyDate = "20000101"
    ds.StudyTime = "000000"
    ds.AccessionNumber = ""
    ds.Modality = "CT"
    ds.Manufacturer = "SYNTHETIC"
    ds.ReferringPhysicianName = ""
    ds.PatientName = series.patient_id
    ds.PatientID = series.patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyInstanceUID = series.study_uid
    ds.SeriesInstanceUID = series.series_uid
    ds.StudyID = ""
    ds.SeriesNumber = 1
    ds.InstanceNumber = index + 1
    ds.ImagePositionPatient = [f"{v:.10g}" for v in series.position(index)]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.FrameOfReferenceUID = series.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.SliceThickness = f"{series.slice_spacing:g}"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = SIZE
    ds.Columns = SIZE
    ds.PixelSpacing = [f"{series.pixel_spacing:.10g}"] * 2
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = UID(uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID(synthetic_uid("luna16gen"))
    ds.file_meta = meta
    ds.preamble = b"\x00" * 128
    return ds


def write_headers(series: dict[str, LunaSeries], folder: Path) -> list[Path]:
    """``folder/<patient>/<series>/<n>.dcm`` for every slice of every series."""
    paths = []
    for one in series.values():
        target = folder / one.patient_id / one.series_uid[-12:]
        target.mkdir(parents=True, exist_ok=True)
        for index in range(one.slices):
            path = target / f"{index + 1}.dcm"
            header(one, index).save_as(path, enforce_file_format=True)
            paths.append(path)
    return paths


def luna16_like(rows: list[dict[str, str]], copies: int
                ) -> tuple[list[dict[str, str]], dict[str, LunaSeries], str]:
    """A LUNA16-shaped table ``copies`` times the size of ``rows``: each copy the same
    nodules in new series (new Series, Study, Patient and Frame of Reference UIDs, the same
    geometry).  Returns the rows, their series and the join table (series-map.txt's
    layout: PatientID StudyInstanceUID SeriesInstanceUID)."""
    real = luna16_series(rows)
    table: list[dict[str, str]] = []
    series: dict[str, LunaSeries] = {}
    lines = ["PatientID StudyInstanceUID SeriesInstanceUID"]
    for copy in range(copies):
        renamed: dict[str, LunaSeries] = {}
        for uid, one in real.items():
            new = uid if copy == 0 else synthetic_uid("luna16-like", uid, str(copy))
            renamed[uid] = replace(
                one, series_uid=new,
                patient_id=one.patient_id if copy == 0 else f"{one.patient_id}-{copy}",
                study_uid=one.study_uid if copy == 0 else synthetic_uid(
                    "luna16-like", one.study_uid, str(copy)),
                frame_of_reference_uid=synthetic_uid("luna16", new, "for"))
        table.extend({**row, "seriesuid": renamed[row["seriesuid"]].series_uid}
                     for row in rows)
        for one in renamed.values():
            series[one.series_uid] = one
            lines.append(f"{one.patient_id} {one.study_uid} {one.series_uid}")
    return table, series, "\n".join(lines) + "\n"
