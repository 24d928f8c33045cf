"""Synthetic source images for tables that do not name their images (issue 11: resolve).

Real DICOM files on disk, deterministic (UIDs from :func:`imagegen.synthetic_uid` over a
seed), small native 8-bit pixel data:

- patient RES-0001, one study: MR "T2 AX" (6 axial slices, 256 rows x 320 columns, so x and
  y scale differently; Instance Number 1 is the *highest* z, so the two slice orders
  differ), MR "T1 SAG" (3 sagittal slices) and CT "CHEST" (4 axial slices);
- patient RES-0002: MR "T2 AX" and MR "T2 AX FS" (two series a loose rule both matches),
  and an MR series with a gap in its Instance Numbers (1, 2, 4);
- patient RES-0003: one Ultrasound Multi-frame image (PS3.3 A.7, 5 frames, 240 x 320),
  and one MR slice without Image Position/Orientation (Patient).

:func:`write_resolve_images` writes them and returns a :class:`ResolveImages` that knows
every UID, slice order and z; the tests write their tables from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian

from imagegen import synthetic_uid

__all__ = ["ResolveImages", "ResolveSeries", "write_resolve_images"]

MR = "1.2.840.10008.5.1.4.1.1.4"
CT = "1.2.840.10008.5.1.4.1.1.2"
US_MULTIFRAME = "1.2.840.10008.5.1.4.1.1.3.1"
AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
SAGITTAL = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)


@dataclass(frozen=True)
class ResolveSeries:
    """One synthetic series: its UIDs and, per instance, Instance Number and z (mm)."""

    seed: str
    patient_id: str
    study_uid: str
    series_uid: str
    modality: str
    sop_class_uid: str
    description: str
    instance_uids: tuple[str, ...]
    instance_numbers: tuple[int, ...]
    z: tuple[float, ...]
    rows: int
    columns: int
    frames: int = 1
    orientation: tuple[float, ...] | None = AXIAL

    def by_instance_number(self) -> list[str]:
        """The instances in Instance Number order."""
        return [u for _, u in sorted(zip(self.instance_numbers, self.instance_uids,
                                         strict=True))]

    def by_z(self) -> list[str]:
        """The instances in ascending z (position along the slice normal)."""
        return [u for _, u in sorted(zip(self.z, self.instance_uids, strict=True))]


@dataclass
class ResolveImages:
    folder: Path
    series: dict[str, ResolveSeries] = field(default_factory=dict)
    """By a short name: t2, t1, ct, t2b, t2fs, gap, us, noplane."""
    files: list[Path] = field(default_factory=list)


def _series(seed: str, patient: str, study: str, modality: str, description: str, *,
            numbers: tuple[int, ...], z: tuple[float, ...], rows: int = 256,
            columns: int = 320, frames: int = 1,
            orientation: tuple[float, ...] | None = AXIAL) -> ResolveSeries:
    sop_class = {"MR": MR, "CT": CT, "US": US_MULTIFRAME}[modality]
    return ResolveSeries(
        seed=seed, patient_id=patient, study_uid=study,
        series_uid=synthetic_uid(seed, "series"), modality=modality,
        sop_class_uid=sop_class, description=description,
        instance_uids=tuple(synthetic_uid(seed, "image", str(n)) for n in numbers),
        instance_numbers=numbers, z=z, rows=rows, columns=columns, frames=frames,
        orientation=orientation,
    )


def _dataset(series: ResolveSeries, i: int, number: int) -> Dataset:
    uid = series.instance_uids[i]
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
    ds.SOPClassUID = series.sop_class_uid
    ds.SOPInstanceUID = uid
    ds.StudyDate = "20210305"
    ds.StudyTime = "101500"
    ds.AccessionNumber = f"ACC-{series.patient_id}"
    ds.Modality = series.modality
    ds.Manufacturer = "SYNTHETIC"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "synthetic resolve study"
    ds.SeriesDescription = series.description
    ds.PatientName = f"{series.patient_id}^Test"
    ds.PatientID = series.patient_id
    ds.PatientBirthDate = "19600101"
    ds.PatientSex = "M"
    ds.StudyInstanceUID = series.study_uid
    ds.SeriesInstanceUID = series.series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = sum(series.seed.encode()) % 900 + 1
    ds.InstanceNumber = number
    if series.orientation is not None:
        z = series.z[i]
        # sagittal: the normal (row x column cosines) is (-1, 0, 0), so x = -z
        position = (-160.0, -128.0, z) if series.orientation == AXIAL else (-z, -160.0, 128.0)
        ds.ImagePositionPatient = [f"{v:g}" for v in position]
        ds.ImageOrientationPatient = [f"{v:g}" for v in series.orientation]
        ds.FrameOfReferenceUID = synthetic_uid(series.study_uid, "for")
        ds.PositionReferenceIndicator = ""
        ds.PixelSpacing = ["0.8", "0.5"]
        ds.SliceThickness = "3"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = series.rows
    ds.Columns = series.columns
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    if series.frames > 1:
        ds.NumberOfFrames = series.frames
        ds.FrameIncrementPointer = 0x00181063
        ds.FrameTime = "33.3"
    ds.PixelData = bytes(series.rows * series.columns * series.frames)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(series.sop_class_uid)
    meta.MediaStorageSOPInstanceUID = UID(uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID(synthetic_uid("resolvegen"))
    ds.file_meta = meta
    ds.preamble = b"\x00" * 128
    return ds


def _all_series() -> dict[str, ResolveSeries]:
    study1 = synthetic_uid("res-1", "study")
    study2 = synthetic_uid("res-2", "study")
    study3 = synthetic_uid("res-3", "study")
    six = (1, 2, 3, 4, 5, 6)
    return {
        # Instance Number 1 is the top slice: z order is the reverse of Instance Number
        "t2": _series("res-t2", "RES-0001", study1, "MR", "T2 AX", numbers=six,
                      z=tuple(50.0 - 4.0 * (n - 1) for n in six)),
        "t1": _series("res-t1", "RES-0001", study1, "MR", "T1 SAG", numbers=(1, 2, 3),
                      z=(-5.0, 0.0, 5.0), orientation=SAGITTAL),
        "ct": _series("res-ct", "RES-0001", study1, "CT", "CHEST", numbers=(1, 2, 3, 4),
                      z=(0.0, 2.5, 5.0, 7.5), rows=128, columns=128),
        "t2b": _series("res-t2b", "RES-0002", study2, "MR", "T2 AX", numbers=(1, 2, 3),
                       z=(0.0, 5.0, 10.0)),
        "t2fs": _series("res-t2fs", "RES-0002", study2, "MR", "T2 AX FS", numbers=(1, 2, 3),
                        z=(0.0, 5.0, 10.0)),
        "gap": _series("res-gap", "RES-0002", study2, "MR", "DWI", numbers=(1, 2, 4),
                       z=(0.0, 5.0, 15.0)),
        "us": _series("res-us", "RES-0003", study3, "US", "CINE", numbers=(1,), z=(0.0,),
                      rows=240, columns=320, frames=5, orientation=None),
        "noplane": _series("res-noplane", "RES-0003", study3, "MR", "LOCALIZER",
                           numbers=(1,), z=(0.0,), orientation=None),
    }


def write_resolve_images(folder: Path) -> ResolveImages:
    """Write every series under ``folder/<patient>/<seed>/<n>.dcm``."""
    out = ResolveImages(folder)
    for name, series in _all_series().items():
        out.series[name] = series
        target = folder / series.patient_id / series.seed
        target.mkdir(parents=True, exist_ok=True)
        for i, number in enumerate(series.instance_numbers):
            path = target / f"{number}.dcm"
            _dataset(series, i, number).save_as(path, enforce_file_format=True)
            out.files.append(path)
    return out
