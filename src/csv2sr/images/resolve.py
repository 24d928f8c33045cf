"""A row's image found through the image index, when the row does not name it (issue 11).

A profile says how (``identity.needs`` and ``[identity.image]``, docs/profiles.md):

1. the series: the row's ``identity.series_uid``, or the one series of its patient that
   a rule chooses (Modality, PS3.3 C.7.3.1; a Series Description pattern);
2. the instance: the row's ``identity.sop_instance_uid``, or a slice of the series
   (:meth:`csv2sr.images.index.ImageIndex.find_slice`: an index in Instance Number or z
   order, an Instance Number, or a z position);
3. the frame: Referenced Frame Number (PS3.3 C.18.4, Table C.18.4-1), at most Number of
   Frames (C.7.6.6);
4. the identity keys listed in ``identity.needs``, from the image's header (Patient
   Module C.7.1.1, General Study C.7.2.1, SOP Common C.12.1);
5. boxes in fractions of the image without ``[image]`` columns and rows: scaled by the
   image's Columns (x) and Rows (y), PS3.3 C.7.6.3.

A row that gives no single image becomes :class:`~csv2sr.mapping.record.RowProblem`\\ s
naming the column, the rule and the candidates; the other rows go on.
"""

from __future__ import annotations

import dataclasses
import logging

from pydicom import Dataset

from csv2sr.images.index import ImageIndex, ImageLookupError
from csv2sr.mapping.record import (
    Geometry,
    Geometry3D,
    Group,
    ImageRef,
    Measurement,
    Record,
    RowProblem,
)
from csv2sr.mapping.spec import GeometrySpec, Source, Spec

__all__ = ["resolve_record"]

log = logging.getLogger(__name__)

_FROM_HEADER: dict[str, str] = {
    "patient_id": "PatientID", "patient_name": "PatientName",
    "study_uid": "StudyInstanceUID", "study_date": "StudyDate", "study_time": "StudyTime",
}
"""identity.needs key -> the header attribute its Record field takes."""


def _column(source: Source | None, fallback: str = "(row)") -> str:
    if source is None or not source.columns:
        return fallback
    return source.columns[0]


def _number(record: Record, column: str) -> float:
    """A cell the profile already parsed as IS/DS (so float() cannot fail here)."""
    return float(record.cells.get(column, "").strip())


class _FailedError(Exception):
    def __init__(self, problem: RowProblem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def resolve_record(record: Record, index: ImageIndex, spec: Spec) -> Record | list[RowProblem]:
    """The record with its image (and the identity ``needs`` lists) from ``index``, or the
    problems that stop it.  A profile that resolves nothing gets the record back as is."""
    ident = spec.identity
    if not ident.resolved:
        return record
    try:
        image, header = _image(record, index, spec)
        volume = _range(record, index, spec, image)
    except _FailedError as failed:
        return [failed.problem]
    def taken(field: str, given: str) -> str:
        if field not in ident.needs:
            return given
        return str(header.get(_FROM_HEADER[field], "") or "")

    try:
        groups = tuple(_group(g, i, spec, image, header, index, volume)
                       for i, g in enumerate(record.groups))
    except _FailedError as failed:
        return [failed.problem]
    return dataclasses.replace(
        record, images=volume or (image,), groups=groups,
        patient_id=taken("patient_id", record.patient_id),
        patient_name=taken("patient_name", record.patient_name),
        study_uid=taken("study_uid", record.study_uid),
        study_date=taken("study_date", record.study_date),
        study_time=taken("study_time", record.study_time),
    )


def _series(record: Record, index: ImageIndex, spec: Spec) -> str:
    ident = spec.identity
    rule = ident.image.series if ident.image is not None else None
    if rule is None:
        return record.images[0].series_uid
    try:
        return index.select_series(record.patient_id, modality=rule.modality,
                                   description=rule.description,
                                   study_uid=record.study_uid if ident.study_uid else "")
    except ImageLookupError as exc:
        column = _column(ident.patient_id)
        raise _FailedError(RowProblem(column, str(exc), record.cells.get(column, ""))) from None


def _image(record: Record, index: ImageIndex, spec: Spec) -> tuple[ImageRef, Dataset]:
    """The annotated image (with its frame) and its header."""
    ident = spec.identity
    resolve = ident.image
    sop = record.images[0].sop_instance_uid
    if resolve is not None and resolve.slice is not None:
        part = resolve.slice
        series = _series(record, index, spec)
        try:
            sop = index.find_slice(series, _number(record, part.column), by=part.by,
                                   order=part.order, base=part.base, tolerance=part.tolerance)
        except ImageLookupError as exc:
            raise _FailedError(RowProblem(part.column, str(exc),
                                     record.cells.get(part.column, ""))) from None
    header = index.get(sop)
    if header is None:
        column = _column(ident.sop_instance_uid)
        raise _FailedError(RowProblem(
            column, f"no source image with this SOP Instance UID in "
            f"{index.origin or 'the image index'} ({len(index)} instances indexed)", sop))
    frames: tuple[int, ...] = ()
    if resolve is not None and resolve.frame is not None:
        frames = (_frame(record, index, sop, resolve.frame.column, resolve.frame.base),)
    series_uid = str(header.get("SeriesInstanceUID", "")) or record.images[0].series_uid
    sop_class = record.images[0].sop_class_uid
    if "sop_class_uid" in ident.needs or not sop_class:
        sop_class = str(header.get("SOPClassUID", ""))
    return ImageRef(sop_class, sop, series_uid, frames), header


def _range(record: Record, index: ImageIndex, spec: Spec,
           first: ImageRef) -> tuple[ImageRef, ...]:
    """A 3D box's slices: every instance of the series from the slice column's to the
    ``last`` column's (inclusive, either way round), in the slice order; () for one slice."""
    resolve = spec.identity.image
    part = resolve.slice if resolve is not None else None
    if part is None or not part.last:
        return ()
    try:
        last = index.find_slice(first.series_uid, _number(record, part.last), by=part.by,
                                order=part.order, base=part.base, tolerance=part.tolerance)
        order = part.order if part.by == "index" else (
            "z" if part.by == "z" else "instance_number")
        keyed = [uid for uid, _ in index.ordered(first.series_uid, order)]
    except ImageLookupError as exc:
        raise _FailedError(RowProblem(part.last, str(exc),
                                      record.cells.get(part.last, ""))) from None
    start, end = sorted((keyed.index(first.sop_instance_uid), keyed.index(last)))
    images = []
    for uid in keyed[start:end + 1]:
        header = index.get(uid)
        sop_class = str(header.get("SOPClassUID", "")) if header is not None else ""
        images.append(ImageRef(sop_class or first.sop_class_uid, uid, first.series_uid))
    return tuple(images)


def _frame(record: Record, index: ImageIndex, sop: str, column: str, base: int) -> int:
    """Referenced Frame Number (PS3.3 C.18.4, Table C.18.4-1, from 1) of the row's frame cell."""
    value = _number(record, column)
    number = int(value) - base + 1
    count = index.number_of_frames(sop)
    if value != int(value) or not 1 <= number <= count:
        last = count - 1 + base
        raise _FailedError(RowProblem(
            column, f"frame {value:g} is not a frame of the image {index.source(sop) or sop}, "
            f"which has {count} (Number of Frames; {base}-based frames {base} to {last})",
            record.cells.get(column, "")))
    return number


def _size(header: Dataset, spec: GeometrySpec, sop: str, index: ImageIndex) -> tuple[int, int]:
    try:
        columns, rows = int(header.get("Columns") or 0), int(header.get("Rows") or 0)
    except (TypeError, ValueError):
        columns = rows = 0
    if columns <= 0 or rows <= 0:
        raise _FailedError(RowProblem(
            (spec.columns or ("(row)",))[0],
            f"{spec.key} is in fractions of the image size, but the image "
            f"{index.source(sop) or sop} has no usable Rows and Columns", ""))
    return columns, rows


def _geometry(geometry: Geometry | None, spec: GeometrySpec | None, image: ImageRef,
              header: Dataset, index: ImageIndex, scale: bool) -> Geometry | None:
    """The geometry on the resolved image; fractions scaled by Columns (x), Rows (y)."""
    if geometry is None:
        return None
    points = geometry.points
    if spec is not None and scale and spec.units == "fraction":
        columns, rows = _size(header, spec, image.sop_instance_uid, index)
        shift = spec.shift
        points = tuple((v - shift) * (columns if i % 2 == 0 else rows) + shift
                       for i, v in enumerate(points))
    return dataclasses.replace(geometry, points=points, image=image)


def _group(group: Group, index_in_spec: int, spec: Spec, image: ImageRef, header: Dataset,
           index: ImageIndex, volume: tuple[ImageRef, ...]) -> Group:
    """A group on the resolved image (the record's groups are the profile's, in order); a
    TID 1411 group, and a TID 1410 group of a 3D box (``per_slice``), has the same region
    on every slice of ``volume``, each SELECTED FROM its own slice (TID 320 row 2): the
    TID 1411 group holds them all, the TID 1410 one is written once per slice
    (:func:`csv2sr.conversion.build.planar_groups`)."""
    group_spec = spec.groups[index_in_spec]
    scale = spec.image.columns is None
    # a region in patient mm (SCOORD3D) names no image: it stays as the row gave it
    region: Geometry | Geometry3D | None = (
        group.region if isinstance(group.region, Geometry3D)
        else _geometry(group.region, group_spec.region, image, header, index, scale))
    measurements = tuple(
        _measurement(m, ms.geometry, image, header, index, scale)
        for m, ms in zip(group.measurements, group_spec.measurements, strict=True)
    )
    regions: tuple[Geometry, ...] = ()
    if (group.template == "1411" or group_spec.per_slice) and isinstance(region, Geometry):
        regions = tuple(dataclasses.replace(region, image=slice_image) for slice_image in volume)
        region = regions[0] if regions else region
    return dataclasses.replace(group, region=region, measurements=measurements,
                               regions=regions)


def _measurement(measurement: Measurement, spec: GeometrySpec | None, image: ImageRef,
                 header: Dataset, index: ImageIndex, scale: bool) -> Measurement:
    geometry = _geometry(measurement.geometry, spec, image, header, index, scale)
    return dataclasses.replace(measurement, geometry=geometry)
