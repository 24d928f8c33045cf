"""The evidence an SR is built from when its image is known (PS3.3 C.7.1.1, C.7.2.1,
C.7.2.2), and whether highdicom's Image Library can describe the image (PS3.16 TID 1600,
1601, 1602, 1604).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import highdicom as hd
from pydicom import Dataset
from pydicom.datadict import tag_for_keyword
from pydicom.tag import BaseTag, Tag

from csv2sr.dicom.codes import image_modality
from csv2sr.images.index import GEOMETRY_KEYWORDS, PATIENT_STUDY_KEYWORDS, decode_header
from csv2sr.mapping.record import ImageRef, Record

__all__ = ["enriched_header", "library_ready"]

log = logging.getLogger(__name__)

_TYPE2_KEYWORDS: tuple[str, ...] = (
    "PatientName", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
    "ReferringPhysicianName", "StudyID", "AccessionNumber",
)
"""Type 2 attributes highdicom reads from the evidence: present, maybe empty."""


def _tags(keywords: tuple[str, ...]) -> tuple[tuple[str, BaseTag], ...]:
    """(keyword, tag) of each keyword: a Dataset looked up by a tag skips the keyword
    dictionary and the tag parser (the cost of :func:`enriched_header`, once per image)."""
    found = []
    for keyword in keywords:
        tag = tag_for_keyword(keyword)
        if tag is None:  # pragma: no cover - the keywords here are all in the dictionary
            raise KeyError(keyword)
        found.append((keyword, Tag(tag)))
    return tuple(found)


def _value(header: Dataset, tag: BaseTag) -> Any:
    """``header.get(keyword)``: the element's value, or None."""
    element = header.get(tag)
    return None if element is None else element.value


_COPIED = _tags(("SpecificCharacterSet", *PATIENT_STUDY_KEYWORDS, "SeriesInstanceUID",
                 "SOPClassUID", "SOPInstanceUID", "Modality"))
_GEOMETRY = _tags(GEOMETRY_KEYWORDS)
_TYPE2 = _tags(_TYPE2_KEYWORDS)
_FALLBACK = _tags(("StudyDate", "StudyTime", "PatientID", "StudyInstanceUID",
                   "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID"))
_ROWS, _COLUMNS, _SOP_CLASS, _MODALITY = (tag for _, tag in _tags(
    ("Rows", "Columns", "SOPClassUID", "Modality")))


_LIBRARY_READY: dict[tuple[Any, ...], bool] = {}
"""library_ready's verdict per header *shape* (SOP class, modality, which values exist)."""


def _shape(header: Dataset) -> tuple[Any, ...]:
    present = []
    for _, tag in _GEOMETRY:
        value = _value(header, tag)
        if value is None or value == "":
            present.append(0)
        elif isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
            present.append(sum(v not in (None, "") for v in value))
        else:
            present.append(1)
    sop_class, modality = header.get(_SOP_CLASS), header.get(_MODALITY)
    return ("" if sop_class is None else str(sop_class.value),
            "" if modality is None else str(modality.value), *present)


_NUMERIC_GEOMETRY = _tags((
    "Rows", "Columns", "PixelSpacing", "ImageOrientationPatient", "ImagePositionPatient",
    "SliceThickness", "ImagerPixelSpacing",
))


def _numbers_readable(header: Dataset) -> bool:
    """Every numeric geometry value present decodes as a finite number."""
    try:
        for _, tag in _NUMERIC_GEOMETRY:
            value = _value(header, tag)
            if value is None or value == "":
                continue
            items = value if isinstance(value, (list, tuple)) or type(value).__name__ == (
                "MultiValue") else [value]
            if not all(math.isfinite(float(v)) for v in items):
                return False
    except (ValueError, TypeError, OverflowError):
        return False
    return True


def library_ready(header: Dataset) -> bool:
    """True when highdicom can describe the image in TID 1602/1603/1604 from ``header``.

    Decided by building ``hd.sr.ImageLibraryEntryDescriptors`` once per header shape
    (SOP class, modality, number of values of each geometry attribute), then cached.
    """
    if (not _value(header, _ROWS) or not _value(header, _COLUMNS)
            or not _value(header, _SOP_CLASS)):
        return False
    if not _numbers_readable(header):
        return False
    shape = _shape(header)
    verdict = _LIBRARY_READY.get(shape)
    if verdict is None:
        try:
            hd.sr.ImageLibraryEntryDescriptors(header)
            verdict = True
        except Exception as exc:  # highdicom raises several types for missing values
            log.debug("%s: no Image Library descriptors (%s)", header.get("SOPInstanceUID"), exc)
            verdict = False
        _LIBRARY_READY[shape] = verdict
    return verdict


def enriched_header(header: Dataset, row: Record, image: ImageRef | None = None) -> Dataset:
    """The evidence dataset for the row's SR, built from the header of its ``image``
    (default: the row's first).

    Patient and study attributes (PS3.3 C.7.1.1, C.7.2.1, C.7.2.2) are the image's, so
    that the SR agrees with its images; the Type 2 ones that the image lacks are present
    and empty (the row's Study Date/Time stand in when the image has no such element).
    SOP Class, Series and Modality are the image's.  Rows, Columns and the geometry of
    TID 1602/1604 (Pixel Spacing, Image Orientation/Position (Patient), Slice Thickness,
    Frame of Reference UID) are copied *only* when :func:`library_ready` holds, so the
    encoder can rely on "has Rows" to call ``hd.sr.ImageLibrary([header])``.
    """
    decode_header(header)  # read whole below: decoded at once (csv2sr.images.index)
    out = Dataset()
    for _, tag in _COPIED:
        if tag in header:
            out[tag] = header[tag]
    image = image if image is not None else row.images[0]
    fallback = (row.study_date, row.study_time, row.patient_id, row.study_uid,
                image.series_uid, image.sop_instance_uid, image.sop_class_uid)
    for (keyword, tag), value in zip(_FALLBACK, fallback, strict=True):
        if tag not in out:
            setattr(out, keyword, value)
    for keyword, tag in _TYPE2:
        if tag not in out:
            setattr(out, keyword, "")
    if _MODALITY not in out:
        modality = image_modality(str(out.SOPClassUID))
        out.Modality = modality.value if modality is not None else "OT"
    if library_ready(header):
        for _, tag in _GEOMETRY:
            if tag in header:
                out[tag] = header[tag]
    return out
