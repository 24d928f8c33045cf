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

from csv2sr.dicom.codes import image_modality
from csv2sr.images.index import GEOMETRY_KEYWORDS, PATIENT_STUDY_KEYWORDS
from csv2sr.mapping.record import ImageRef, Record

__all__ = ["enriched_header", "library_ready"]

log = logging.getLogger(__name__)

_TYPE2_KEYWORDS: tuple[str, ...] = (
    "PatientName", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
    "ReferringPhysicianName", "StudyID", "AccessionNumber",
)
"""Type 2 attributes highdicom reads from the evidence: present, maybe empty."""


_LIBRARY_READY: dict[tuple[Any, ...], bool] = {}
"""library_ready's verdict per header *shape* (SOP class, modality, which values exist)."""


def _shape(header: Dataset) -> tuple[Any, ...]:
    present = []
    for keyword in GEOMETRY_KEYWORDS:
        value = header.get(keyword)
        if value is None or value == "":
            present.append(0)
        elif isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
            present.append(sum(v not in (None, "") for v in value))
        else:
            present.append(1)
    return (str(header.get("SOPClassUID", "")), str(header.get("Modality", "")), *present)


_NUMERIC_GEOMETRY = (
    "Rows", "Columns", "PixelSpacing", "ImageOrientationPatient", "ImagePositionPatient",
    "SliceThickness", "ImagerPixelSpacing",
)


def _numbers_readable(header: Dataset) -> bool:
    """Every numeric geometry value present decodes as a finite number."""
    try:
        for keyword in _NUMERIC_GEOMETRY:
            value = header.get(keyword)
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
    if not header.get("Rows") or not header.get("Columns") or not header.get("SOPClassUID"):
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
    out = Dataset()
    for keyword in ("SpecificCharacterSet", *PATIENT_STUDY_KEYWORDS,
                    "SeriesInstanceUID", "SOPClassUID", "SOPInstanceUID", "Modality"):
        if keyword in header:
            out[keyword] = header[keyword]
    image = image if image is not None else row.images[0]
    fallback = {"StudyDate": row.study_date, "StudyTime": row.study_time,
                "PatientID": row.patient_id, "StudyInstanceUID": row.study_uid,
                "SeriesInstanceUID": image.series_uid, "SOPInstanceUID": image.sop_instance_uid,
                "SOPClassUID": image.sop_class_uid}
    for keyword, value in fallback.items():
        if keyword not in out:
            setattr(out, keyword, value)
    for keyword in _TYPE2_KEYWORDS:
        if keyword not in out:
            setattr(out, keyword, "")
    if "Modality" not in out:
        modality = image_modality(str(out.SOPClassUID))
        out.Modality = modality.value if modality is not None else "OT"
    if library_ready(header):
        for keyword in GEOMETRY_KEYWORDS:
            if keyword in header:
                out[keyword] = header[keyword]
    return out
