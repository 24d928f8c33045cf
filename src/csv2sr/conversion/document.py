"""What every builder of an SR shares, and none needs highdicom for: the document of a
record (:func:`as_document`, its Cornerstone3D form :func:`with_ohif`, the planar groups of
a 3D box :func:`planar_groups`), its UIDs (:func:`document_uids`), a record's codes as
pydicom's (:func:`code`), the Part 10 bytes of a dataset (:func:`dataset_bytes`) and the one
line for a row a builder refused (:func:`failure_problem`).

The reference builder (:mod:`csv2sr.conversion.build`, highdicom) and the template path
(:mod:`csv2sr.conversion.fastpath`) both use these, so the template path does not
depend on the highdicom builder.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, replace

from pydicom import Dataset
from pydicom.datadict import keyword_for_tag
from pydicom.filewriter import dcmwrite
from pydicom.sr.coding import Code

from csv2sr.conversion.group import document_identity, single
from csv2sr.dicom import ohif
from csv2sr.dicom.codes import CodeMode, code_key
from csv2sr.dicom.ohif import UID_PART, tracking_identifier
from csv2sr.dicom.uids import derive_uid
from csv2sr.mapping.record import (
    Concept,
    Document,
    Geometry,
    Geometry3D,
    Group,
    Record,
    RowProblem,
)
from csv2sr.mapping.spec import Spec

__all__ = [
    "DocumentUIDs",
    "as_document",
    "attribute_columns",
    "code",
    "dataset_bytes",
    "document_uids",
    "failure_problem",
    "planar_groups",
    "with_ohif",
]


@dataclass(frozen=True)
class DocumentUIDs:
    """The two document UIDs csv2sr makes for an SR (see :mod:`csv2sr.dicom.uids`); the
    Tracking UIDs are the groups' own (:mod:`csv2sr.mapping.forward`)."""

    series: str
    sop_instance: str


def document_uids(document: Document, spec: Spec, mode: CodeMode,
                  ohif: bool = False) -> DocumentUIDs:
    """Deterministic UIDs: the series from the document's series key (its study, or its
    identity: one series per SR), the instance from its identity; both with the options
    that change the bytes, the code mode and ``ohif`` (the Cornerstone3D Tracking
    Identifiers, :mod:`csv2sr.dicom.ohif`).  The Tracking UIDs name the findings and
    depend on neither (:mod:`csv2sr.mapping.forward`)."""
    variant = (spec.name, mode.value, *((UID_PART,) if ohif else ()))
    return DocumentUIDs(
        series=derive_uid("series", *variant, *document.series_key),
        sop_instance=derive_uid("sop", *variant, *document_identity(document.records)),
    )


def with_ohif(item: Document | Record, spec: Spec) -> Document:
    """The document with, in every group that has a Cornerstone3D tool
    (:func:`csv2sr.dicom.ohif.tool_for`: Length, Bidirectional, RectangleROI,
    EllipticalROI, Probe), the Tracking Identifier OHIF loads as that tool
    (``Cornerstone3DTools@^0.1.0:<Tool>:<identifier>``), and the NUM meanings the tool's
    adapter finds them by (:func:`csv2sr.dicom.ohif.adapter_meaning`). Other groups keep
    theirs and stay read-only in OHIF (docs/ohif.md)."""
    document = as_document(item, spec)
    records = tuple(replace(r, groups=tuple(_ohif_group(g) for g in r.groups))
                    for r in document.records)
    return replace(document, records=records)


def _ohif_graphic(geometry: Geometry | Geometry3D | None) -> ohif.Graphic | None:
    if not isinstance(geometry, Geometry):  # an SCOORD3D has no Cornerstone3D 2D tool here
        return None
    image = geometry.image.sop_instance_uid if geometry.image is not None else ""
    return ohif.Graphic(geometry.graphic_type, geometry.points, image)


def _key(concept: Concept) -> tuple[str, str]:
    return code_key(code(concept))


def _ohif_group(group: Group) -> Group:
    """One group of :func:`with_ohif`."""
    numbers = [ohif.Number(_key(m.concept), _ohif_graphic(m.geometry))
               for m in group.measurements]
    tool = ohif.tool_for(group.template, _ohif_graphic(group.region), numbers)
    if tool is None:
        return group
    measurements = tuple(
        replace(m, concept=m.concept._replace(
            meaning=ohif.adapter_meaning(tool, _key(m.concept), m.concept.meaning)))
        for m in group.measurements)
    return replace(group, measurements=measurements, tracking_identifier=tracking_identifier(
        tool, group.tracking_identifier, True))


def as_document(item: Document | Record, spec: Spec) -> Document:
    """A record alone is the document of ``per = "row"``."""
    return item if isinstance(item, Document) else single(item, spec)


def code(concept: Concept) -> Code:
    """A record's code as pydicom's."""
    return Code(concept.value, concept.scheme, concept.meaning)


def planar_groups(group: Group) -> tuple[Group, ...]:
    """The measurement groups one group of a record is written as: itself, or for a TID
    1410 group of a 3D box (its ``regions``, identity.image.slice.last) one PS3.16 TID
    1410 Planar ROI group per slice, in slice order, each with its Image Region (row 7)
    SELECTED FROM its own slice (TID 320 row 2) and the same Tracking Identifier and
    Tracking Unique Identifier (rows 2-3): the slices are regions of one finding, and a
    tracking identifier tracks "a finding or feature" (PS3.3, Tracking ID (0062,0020),
    which SR tracking identifiers link to)."""
    if group.template != "1410" or not group.regions:
        return (group,)
    return tuple(replace(group, region=region, regions=()) for region in group.regions)


def dataset_bytes(ds: Dataset) -> bytes:
    """The Part 10 file of ``ds`` (preamble, File Meta, dataset; PS3.10 7.1) as bytes."""
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def attribute_columns(spec: Spec) -> dict[str, str]:
    """Attribute an encoder error names -> the column its value comes from (by the
    profile's roles)."""
    ident = spec.identity
    found: dict[str, str] = {}

    def put(keywords: tuple[str, ...], columns: tuple[str, ...]) -> None:
        if columns:
            for keyword in keywords:
                found.setdefault(keyword, "/".join(columns))

    for keywords, source in (
        (("PatientID",), ident.patient_id), (("PatientName",), ident.patient_name),
        (("StudyInstanceUID",), ident.study_uid), (("StudyDate", "Date"), ident.study_date),
        (("StudyTime", "Time"), ident.study_time),
        (("ReferencedSOPInstanceUID",), ident.sop_instance_uid),
        (("ReferencedSOPClassUID", "SOPClassUID"), ident.sop_class_uid),
        (("PersonName",), spec.observer.name),
        (("ContentDate", "ContentTime"), spec.document.content_datetime),
    ):
        if source is not None:
            put(keywords, source.columns)
    for group in spec.groups:
        for measurement in group.measurements:
            if measurement.value is not None:
                put(("NumericValue",), measurement.value.columns)
            if measurement.geometry is not None:
                put(("GraphicData",), measurement.geometry.columns)
        if group.region is not None:
            put(("GraphicData",), group.region.columns)
    if spec.document.instance_number:
        put(("InstanceNumber",), (spec.document.instance_number,))
    return found


_WRAPPED = re.compile(r"With tag \(([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})\) got exception: ")
_REASON_CHARS = 200


def failure_problem(record: Record, exc: BaseException, spec: Spec) -> RowProblem:
    """One line for a row the builder refused: the column, and the innermost cause.

    pydicom wraps a write error once per enclosing sequence ("With tag (0040,A730) got
    exception: ...", with a whole traceback each time), so the message can be 100,000
    characters; only the innermost attribute and the first line of its cause are kept.
    The column is the one that feeds that attribute (:func:`attribute_columns`), else the
    one whose value the message quotes, else ``(row)``.  The row checks are meant to make
    this rare.
    """
    text = str(exc)
    wrapped = list(_WRAPPED.finditer(text))
    column = None
    if wrapped:
        tag = int(wrapped[-1].group(1) + wrapped[-1].group(2), 16)
        column = attribute_columns(spec).get(keyword_for_tag(tag) or "")
        text = text[wrapped[-1].end():]
    cause = next((line.strip() for line in text.splitlines() if line.strip()), "")
    named = cause.split(":", 1)[0]
    cells = record.cells
    if column is None and named in cells:  # csv2sr's own errors start with the column
        column = named
    if column is None:
        quoted = [c for c, v in cells.items() if len(v.strip()) > 1 and v in str(exc)]
        column = max(quoted, key=lambda c: len(cells[c]), default="(row)")
    message = f"could not be encoded: {type(exc).__name__}: {cause}"
    if len(message) > _REASON_CHARS:
        message = message[:_REASON_CHARS] + "..."
    return RowProblem(column, message, cells.get(column.split("/")[0], ""))
