"""Series as volumes: patient coordinates, the Frame of Reference, and which slice a point
is in.

A row that gives a point in patient millimetres (LUNA16: a nodule centre) names a series,
not an image.  Its SR holds an SCOORD3D (PS3.3 C.18.9) in the series' Frame of Reference
(Frame of Reference UID, PS3.3 C.7.4.1.1.1), and lists as evidence and in its Image
Library the slice the point lies in.  :func:`series_volumes` groups the image index
(:class:`csv2sr.images.index.ImageIndex`) by series into :class:`SeriesVolume` (slices
sorted along the normal of Image Orientation (Patient), PS3.3 C.7.6.2.1.1), and
:func:`resolve_points` fills a record's Frame of Reference and evidence, rejecting a point
outside the volume.

:func:`pixel_to_patient` and :func:`patient_to_pixel` are the one pair of conversions
between DICOM pixel coordinates (PS3.3 C.18.6.1.1: (0,0) the top left corner of the top
left pixel) and patient millimetres, by highdicom's ``ImageToReferenceTransformer`` and
``ReferenceToImageTransformer`` (the same convention).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

from pydicom import Dataset
from pydicom.datadict import tag_for_keyword
from pydicom.tag import BaseTag, Tag

from csv2sr.images.index import ImageIndex, header_numbers, header_uid
from csv2sr.mapping.record import Geometry3D, Group, ImageRef, Record, RowProblem

__all__ = [
    "Plane",
    "SeriesVolume",
    "VolumeError",
    "patient_to_pixel",
    "pixel_to_patient",
    "resolve_points",
    "series_volumes",
]

log = logging.getLogger(__name__)


def _tag(keyword: str) -> BaseTag:
    tag = tag_for_keyword(keyword)
    if tag is None:  # pragma: no cover - the keywords here are all in the dictionary
        raise KeyError(keyword)
    return Tag(tag)


_POSITION, _ORIENTATION, _SPACING, _ROWS, _COLUMNS, _SERIES, _FRAME, _SOP_CLASS = (
    _tag(k) for k in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing",
                      "Rows", "Columns", "SeriesInstanceUID", "FrameOfReferenceUID",
                      "SOPClassUID"))


class VolumeError(ValueError):
    """An image header without the geometry a patient coordinate needs."""


@dataclass(frozen=True)
class Plane:
    """The geometry of one image (PS3.3 C.7.6.2.1.1): Image Position (Patient) of the
    centre of the first pixel, Image Orientation (Patient) (row then column direction
    cosines), Pixel Spacing (between rows, between columns; mm), Rows and Columns."""

    position: tuple[float, float, float]
    orientation: tuple[float, float, float, float, float, float]
    spacing: tuple[float, float]
    rows: int
    columns: int

    @classmethod
    def of(cls, header: Dataset) -> Plane:
        """The plane of an image header; :class:`VolumeError` names what is missing."""
        try:
            position = header_numbers(header, _POSITION) or ()
            orientation = header_numbers(header, _ORIENTATION) or ()
            spacing = header_numbers(header, _SPACING) or ()
            sizes = [header_numbers(header, tag) for tag in (_ROWS, _COLUMNS)]
            if not sizes[0] or not sizes[1]:
                raise ValueError("no Rows or Columns")
            rows, columns = int(sizes[0][0]), int(sizes[1][0])
        except (AttributeError, TypeError, ValueError) as exc:
            raise VolumeError("no usable Image Position/Orientation (Patient), Pixel Spacing, "
                              f"Rows and Columns ({exc})") from None
        if len(position) != 3 or len(orientation) != 6 or len(spacing) != 2:
            raise VolumeError("Image Position (Patient) needs 3 values, Image Orientation "
                              "(Patient) 6, Pixel Spacing 2")
        if not all(math.isfinite(v) for v in (*position, *orientation, *spacing)) or min(
                spacing) <= 0:
            raise VolumeError("Image Position/Orientation (Patient) or Pixel Spacing is not "
                              "finite and positive")
        return cls(position, orientation, spacing, rows, columns)

    @property
    def normal(self) -> tuple[float, float, float]:
        """The row cosines x the column cosines: the direction slices are stacked in."""
        r, c = self.orientation[:3], self.orientation[3:]
        return (r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0])

    def depth(self) -> float:
        """Where the plane is along its normal (mm)."""
        return sum(p * n for p, n in zip(self.position, self.normal, strict=True))


def pixel_to_patient(plane: Plane, points: Sequence[tuple[float, float]],
                     ) -> list[tuple[float, float, float]]:
    """DICOM pixel coordinates (column, row) on the image ``plane`` (PS3.3 C.18.6.1.1) ->
    patient millimetres (PS3.3 C.7.6.2.1.1, Equation C.7.6.2.1-1)."""
    import highdicom as hd  # noqa: PLC0415  (heavy; only with patient coordinates)
    import numpy as np  # noqa: PLC0415

    transform = hd.spatial.ImageToReferenceTransformer(
        image_position=plane.position, image_orientation=plane.orientation,
        pixel_spacing=plane.spacing)
    out = transform(np.array(points, dtype=np.float64).reshape(-1, 2))
    return [(float(x), float(y), float(z)) for x, y, z in out]


def patient_to_pixel(plane: Plane, points: Sequence[tuple[float, float, float]],
                     spacing_between_slices: float = 1.0) -> list[tuple[float, float, float]]:
    """Patient millimetres -> (column, row, slice) of the image ``plane``: DICOM pixel
    coordinates (PS3.3 C.18.6.1.1) and the distance from the plane along its normal in
    units of ``spacing_between_slices`` (0 on the plane)."""
    transform = _to_pixel(plane, spacing_between_slices)
    out = transform(_np().array(points, dtype=float).reshape(-1, 3))
    return [(float(c), float(r), float(s)) for c, r, s in out]


def _to_pixel(plane: Plane, spacing_between_slices: float) -> Any:
    """highdicom's patient mm -> (column, row, slice) transformer of ``plane``."""
    import highdicom as hd  # noqa: PLC0415  (heavy; only with patient coordinates)

    return hd.spatial.ReferenceToImageTransformer(
        image_position=plane.position, image_orientation=plane.orientation,
        pixel_spacing=plane.spacing, spacing_between_slices=spacing_between_slices)


@dataclass(frozen=True)
class SeriesVolume:
    """One series of parallel slices: its Frame of Reference and slices in order along
    the normal (PS3.3 C.7.6.2.1.1)."""

    series_uid: str
    frame_of_reference_uid: str
    plane: Plane
    """The first slice's plane."""
    slices: tuple[ImageRef, ...]
    depths: tuple[float, ...]
    """Each slice's position along the normal (mm), ascending."""

    @property
    def spacing(self) -> float:
        """The distance between slice centres (mm; 1 for one slice)."""
        if len(self.depths) < 2:
            return 1.0
        return (self.depths[-1] - self.depths[0]) / (len(self.depths) - 1)

    @cached_property
    def _to_pixel(self) -> Any:
        """:func:`patient_to_pixel`'s transformer, made once per series (making one per
        point was most of placing a LUNA16 nodule)."""
        return _to_pixel(self.plane, self.spacing)

    def locate(self, point: tuple[float, float, float]) -> tuple[int, str | None]:
        """The index of the slice ``point`` is in, and why it is outside the volume (None
        inside): within the first slice's Rows x Columns and at most half a spacing before
        the first slice or after the last."""
        column, row, depth = (float(v) for v in self._to_pixel(
            _np().array([point], dtype=float))[0])
        index = round(depth)
        where = (f"pixel ({column:.1f}, {row:.1f}) of {self.plane.columns} x "
                 f"{self.plane.rows}, slice {depth:.2f} of 0..{len(self.slices) - 1}")
        inside = (0 <= column <= self.plane.columns and 0 <= row <= self.plane.rows
                  and -0.5 <= depth <= len(self.slices) - 0.5)
        return min(max(index, 0), len(self.slices) - 1), None if inside else where


def _np() -> Any:
    import numpy as np  # noqa: PLC0415  (heavy; only with patient coordinates)

    return np


def series_volumes(index: ImageIndex) -> tuple[dict[str, SeriesVolume], dict[str, str]]:
    """Each series of ``index`` with the geometry of a volume, and why each other series
    cannot be one (no Frame of Reference, no position, slices not parallel)."""
    members: dict[str, list[tuple[float, Plane, Dataset, str]]] = {}
    refused: dict[str, str] = {}
    for uid in index:
        header = index.get(uid)
        if header is None:
            continue
        series = header_uid(header, _SERIES)
        if not series or series in refused:
            continue
        try:
            plane = Plane.of(header)
        except VolumeError as exc:
            refused[series] = f"{index.source(uid) or uid}: {exc}"
            members.pop(series, None)
            continue
        members.setdefault(series, []).append((plane.depth(), plane, header, uid))
    volumes: dict[str, SeriesVolume] = {}
    for series, found in members.items():
        volume = _volume(series, found)
        if isinstance(volume, str):
            refused[series] = volume
        else:
            volumes[series] = volume
    return volumes, refused


def _volume(series: str, found: list[tuple[float, Plane, Dataset, str]]) -> SeriesVolume | str:
    found.sort(key=lambda item: item[0])
    first = found[0][1]
    frames = {header_uid(h, _FRAME) for _, _, h, _ in found}
    if frames != {next(iter(frames))} or not next(iter(frames)):
        return "its images have no Frame of Reference UID, or several (PS3.3 C.7.4.1)"
    normal = first.normal
    for _, plane, _, uid in found:
        if plane.orientation != first.orientation or (plane.rows, plane.columns) != (
                first.rows, first.columns):
            return (f"the slices are not parallel slices of one size ({uid} differs from the "
                    "first)")
    del normal
    slices = tuple(ImageRef(header_uid(h, _SOP_CLASS), uid, series) for _, _, h, uid in found)
    return SeriesVolume(series, next(iter(frames)), first, slices,
                        tuple(d for d, _, _, _ in found))


def _columns(geometry: Geometry3D) -> str:
    return "/".join(geometry.columns) or "(row)"


def resolve_points(record: Record, volumes: dict[str, SeriesVolume],
                   refused: dict[str, str], series_column: str,
                   ) -> Record | list[RowProblem]:
    """The record with each Image Region 3D in its series' Frame of Reference, and the
    slice of each point as the image it lists (evidence, Image Library; PS3.3 C.17.2.3);
    or the problems: the series is not a volume of the index, a point is outside it."""
    if not record.is_3d:
        return record
    series = record.series_uid
    volume = volumes.get(series)
    if volume is None:
        why = refused.get(series, "no image of this series in the source images")
        return [RowProblem(series_column, f"cannot place a point in patient coordinates: "
                           f"{why}", series)]
    problems: list[RowProblem] = []
    groups: list[Group] = []
    images: dict[str, ImageRef] = {i.sop_instance_uid: i for i in record.images}
    for group in record.groups:
        region = group.region
        if not isinstance(region, Geometry3D):
            groups.append(group)
            continue
        points = [tuple(region.points[i:i + 3]) for i in range(0, len(region.points), 3)]
        found = [volume.locate(point) for point in points]  # type: ignore[arg-type]
        outside = next(((n, why) for n, (_, why) in enumerate(found) if why is not None),
                       None)
        if outside is not None:
            values = " ".join(f"{v:g}" for v in region.points)
            which = f"point {outside[0] + 1} " if len(points) > 1 else ""
            problems.append(RowProblem(_columns(region), f"{which}outside the volume of the "
                                       f"series {series} ({outside[1]})", values))
            continue
        # the slice of the first vertex is the image the SR lists (evidence, Image Library)
        image = volume.slices[found[0][0]]
        images.setdefault(image.sop_instance_uid, image)
        groups.append(replace(group, region=replace(
            region, frame_of_reference_uid=volume.frame_of_reference_uid, image=image)))
    if problems:
        return problems
    return replace(record, groups=tuple(groups), images=tuple(images.values()))

