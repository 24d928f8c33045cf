"""One checked row -> one Enhanced SR dataset (PS3.3 A.35.2) holding a TID 1500 report.

This is the reference builder: the content tree is made by highdicom's TID 1500 classes,
then the few values highdicom cannot express are set on the dataset (verbatim ``length``,
reproducible dates, the SNOMED-RT switch).  :mod:`csv2sr.conversion.fastpath` must produce
exactly the same datasets; a test proves it on every row of the real CSV.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import re
import warnings
from dataclasses import dataclass, replace

import highdicom as hd
import numpy as np
from pydicom import Dataset
from pydicom.datadict import keyword_for_tag
from pydicom.dataset import FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.sequence import Sequence
from pydicom.sr.coding import Code
from pydicom.uid import UID, ExplicitVRLittleEndian
from pydicom.valuerep import DA, TM

from csv2sr import __version__
from csv2sr.conversion.checks import Annotation, RowProblem
from csv2sr.dicom.codes import CodeMode, Codes, code_key, image_modality, procedure_reported, to_srt
from csv2sr.dicom.ohif import UID_PART, tracking_identifier
from csv2sr.dicom.tree import datasets
from csv2sr.dicom.uids import derive_uid
from csv2sr.profiles import Profile

__all__ = [
    "RowUIDs",
    "dataset_bytes",
    "encode",
    "failure_problem",
    "modality",
    "row_uids",
    "source_header",
]

log = logging.getLogger(__name__)

IMPLEMENTATION_VERSION_NAME = f"CSV2SR_{__version__}"[:16]


@dataclass(frozen=True)
class RowUIDs:
    """The three UIDs csv2sr makes for a row (see :mod:`csv2sr.dicom.uids`)."""

    series: str
    sop_instance: str
    tracking: str


def row_uids(
    row: Annotation, profile: Profile, mode: CodeMode, ohif: bool = False
) -> RowUIDs:
    """Deterministic UIDs: an SR series and an instance per row, code mode and ``ohif``.

    One series per SR, as the 2018 TCIA release had: OHIF shows one SR per series (the one
    with the highest Instance Number), so a series per study would hide all but one of its
    rows (docs/conformance.md, "Series").  ``ohif`` (the Cornerstone3D Tracking Identifier,
    :mod:`csv2sr.dicom.ohif`) changes the bytes as the code mode does, so it names a different
    series and instance.  The tracking UID names the finding (the line), so it depends on
    neither.
    """
    identity = (row.annotation_id, row.instance_uid, *(repr(p) for p in row.points))
    variant = (profile.name, mode.value, *((UID_PART,) if ohif else ()))
    return RowUIDs(
        series=derive_uid("series", *variant, *identity),
        sop_instance=derive_uid("sop", *variant, *identity),
        tracking=derive_uid("tracking", profile.name, *identity),
    )


def modality(row: Annotation) -> Code:
    """The modality of the row's image, from its SOP Class (PS3.16 TID 1602 row 1, CID 29).

    :func:`csv2sr.conversion.checks.check_row` accepts only SOP classes that have one; an
    image header of another class (``encode(header=...)``) is refused here, naming the column.
    """
    code = image_modality(row.sop_class_uid)
    if code is None:
        raise ValueError(
            f"SOPClassUID: {row.sop_class_uid} is not an image storage SOP class with a "
            "known modality"
        )
    return code


def source_header(row: Annotation) -> Dataset:
    """What is known of the annotated image without its file: the row's own columns.

    Patient's Name is the Patient ID, as in TCIA's images (PS3.3 C.7.1.1); the other
    Type 2 patient and study attributes are empty (PS3.3 C.7.2.1).
    """
    ds = Dataset()
    ds.PatientID = row.patient_id
    ds.PatientName = row.patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyInstanceUID = row.study_uid
    ds.StudyDate = row.study_date
    ds.StudyTime = row.study_time
    ds.StudyID = ""
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.SeriesInstanceUID = row.series_uid
    ds.SOPClassUID = row.sop_class_uid
    ds.SOPInstanceUID = row.instance_uid
    ds.Modality = modality(row).value
    return ds


def _observer_context(row: Annotation) -> hd.sr.ObservationContext:
    """PS3.16 TID 1500 row 3 > TID 1001 > TID 1002 rows 1-4 (person observer)."""
    person = hd.sr.PersonObserverIdentifyingAttributes(
        name=f"{row.annotator}^",
        login_name=row.annotator,
        role_in_organization=Codes.RADIOLOGIST if row.radiologist else None,
    )
    return hd.sr.ObservationContext(
        observer_person_context=hd.sr.ObserverContext(
            observer_type=Codes.PERSON,
            observer_identifying_attributes=person,
        )
    )


def _study_descriptors(header: Dataset) -> list[hd.sr.ContentItem]:
    """PS3.16 TID 1602 rows: Study Date and Study Time of the image, when known."""
    items: list[hd.sr.ContentItem] = []
    if header.get("StudyDate"):
        items.append(
            hd.sr.DateContentItem(
                name=Codes.STUDY_DATE,
                value=DA(header.StudyDate),
                relationship_type=hd.sr.RelationshipTypeValues.HAS_ACQ_CONTEXT,
            )
        )
    if header.get("StudyTime"):
        items.append(
            hd.sr.TimeContentItem(
                name=Codes.STUDY_TIME,
                value=TM(header.StudyTime),
                relationship_type=hd.sr.RelationshipTypeValues.HAS_ACQ_CONTEXT,
            )
        )
    return items


def is_image_header(header: Dataset | None) -> bool:
    """True when ``header`` is a real image's header (it has the TID 1604 attributes)."""
    return header is not None and "Rows" in header and "PixelSpacing" in header


def _entry_descriptors(row: Annotation, header: Dataset) -> list[hd.sr.ContentItem]:
    """PS3.16 TID 1601 row 2 > TID 1602 (and TID 1604 when the image header is known).

    From a real image header highdicom writes Modality (from its SOP Class), Frame of
    Reference, Rows, Columns and the cross-sectional descriptors; the Study Date/Time
    rows of TID 1602 follow.  Without one, the row gives Modality and the study's date
    and time only.
    """
    if is_image_header(header):
        entry = hd.sr.ImageLibraryEntryDescriptors(
            header, additional_descriptors=_study_descriptors(header)
        )
        return [item for item in entry]
    item = hd.sr.CodeContentItem(
        name=Codes.MODALITY,
        value=modality(row),
        relationship_type=hd.sr.RelationshipTypeValues.HAS_ACQ_CONTEXT,
    )
    return [item, *_study_descriptors(header)]


def _image_library(row: Annotation, header: Dataset) -> hd.sr.ContainerContentItem:
    """PS3.16 TID 1600 rows 1-2 > TID 1601 row 1 (the annotated image) > its descriptors.

    The IMAGE entry's concept name is removed by :func:`finish` (TID 1601 row 1 has none).
    """
    descriptors = _entry_descriptors(row, header)
    image = hd.sr.ImageContentItem(
        name=Codes.SOURCE,
        referenced_sop_class_uid=row.sop_class_uid,
        referenced_sop_instance_uid=row.instance_uid,
        relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
    )
    image.ContentSequence = hd.sr.ContentSequence(descriptors)
    group = hd.sr.ContainerContentItem(
        name=Codes.IMAGE_LIBRARY_GROUP,
        relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
    )
    group.ContentSequence = hd.sr.ContentSequence([image])
    library = hd.sr.ContainerContentItem(
        name=Codes.IMAGE_LIBRARY,
        relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
    )
    library.ContentSequence = hd.sr.ContentSequence([group])
    return library


def _measurement_group(
    row: Annotation, profile: Profile, uids: RowUIDs, ohif: bool
) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    """PS3.16 TID 1501: tracking (rows 2-3), finding (row 3b), finding site (row 8),
    and one TID 300 Length (row 9) INFERRED FROM its SCOORD POLYLINE (TID 300 row 12).

    The Tracking Identifier is ``_id``, after the Cornerstone3D Length prefix with ``ohif``
    (:func:`csv2sr.dicom.ohif.tracking_identifier`)."""
    x0, y0, x1, y1 = row.points
    line = hd.sr.CoordinatesForMeasurement(
        graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
        graphic_data=np.array([[x0, y0], [x1, y1]], dtype=np.float64),
        source_image=hd.sr.SourceImageForRegion(
            referenced_sop_class_uid=row.sop_class_uid,
            referenced_sop_instance_uid=row.instance_uid,
        ),
    )
    length = hd.sr.Measurement(
        name=Codes.LENGTH,
        value=float(row.length),
        unit=Codes.MILLIMETER,
        referenced_coordinates=[line],
    )
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=uids.tracking,
            identifier=tracking_identifier("Length", row.annotation_id, ohif),
        ),
        finding_type=Codes.NEOPLASM,
        finding_sites=[hd.sr.FindingSite(anatomic_location=profile.organ(row.anatomy))],
        measurements=[length],
    )


def build_content(
    row: Annotation, profile: Profile, uids: RowUIDs, header: Dataset,
    image_library: hd.sr.ContainerContentItem | None = None, ohif: bool = False,
) -> hd.sr.MeasurementReport:
    """PS3.16 TID 1500 rows 1-6 for one row (row 4, Procedure Reported, from the modality)."""
    report = hd.sr.MeasurementReport(
        observation_context=_observer_context(row),
        procedure_reported=procedure_reported(modality(row)),
        imaging_measurements=[_measurement_group(row, profile, uids, ohif)],
        title=Codes.TITLE,
        language_of_content_item_and_descendants=hd.sr.LanguageOfContentItemAndDescendants(
            language=hd.sr.CodedConcept.from_code(Codes.ENGLISH_US)
        ),
    )
    library = image_library if image_library is not None else _image_library(row, header)
    root = report[0]
    # TID 1500 row 5 (Image Library) stands before row 6 (Imaging Measurements).
    items = list(root.ContentSequence)
    position = next(
        i for i, item in enumerate(items)
        if item.ConceptNameCodeSequence[0].CodeValue == Codes.IMAGING_MEASUREMENTS.value
    )
    items.insert(position, library)
    root.ContentSequence = hd.sr.ContentSequence(items, is_root=False, is_sr=True)
    return report


def _verbatim_length(ds: Dataset, length: str) -> None:
    """TID 300 row 1: the Length NUM carries ``length`` exactly as the CSV wrote it (a DS).

    Only the Length measurement: the TID 1604 descriptors of an Image Library entry are
    NUMs too and keep the image's values.
    """
    for item in datasets(ds):
        names = item.get("ConceptNameCodeSequence")
        if (
            item.get("ValueType") == "NUM"
            and "MeasuredValueSequence" in item
            and names
            and code_key(Code(names[0].CodeValue, names[0].CodingSchemeDesignator, ""))
            == code_key(Codes.LENGTH)
        ):
            value = item.MeasuredValueSequence[0]
            value.NumericValue = length
            if "FloatingPointValue" in value:
                del value.FloatingPointValue


def _to_srt(ds: Dataset) -> None:
    """Replace every SNOMED CT code that has a 2018 SNOMED-RT equivalent (``--codes srt``)."""
    for item in datasets(ds):
        if item.get("CodingSchemeDesignator") == "SCT":
            srt = to_srt(Code(item.CodeValue, "SCT", item.CodeMeaning))
            item.CodeValue = srt.value
            item.CodingSchemeDesignator = srt.scheme_designator


def _unnamed_references(ds: Dataset) -> None:
    """Drop highdicom's (260753009, SCT, "Source") concept name from IMAGE and SCOORD items.

    PS3.16 TID 1601 row 1 (Image Library entry) and TID 320 rows 1-2 (the SCOORD a
    measurement is INFERRED FROM, and the IMAGE it is SELECTED FROM) give these items no
    concept name; the reference SR has none (PS3.3 C.17.3: optional for these value types).
    """
    for item in datasets(ds):
        if item.get("ValueType") in {"IMAGE", "SCOORD"} and "ConceptNameCodeSequence" in item:
            name = item.ConceptNameCodeSequence[0]
            if name.CodeValue == Codes.SOURCE.value:
                del item.ConceptNameCodeSequence


def _author_observer(row: Annotation) -> Dataset:
    """PS3.3 C.17.2.1 Author Observer Sequence item for a person (Observer Type PSN)."""
    item = Dataset()
    item.ObserverType = "PSN"
    item.PersonName = f"{row.annotator}^"
    item.PersonIdentificationCodeSequence = Sequence()
    item.InstitutionName = ""
    item.InstitutionCodeSequence = Sequence()
    return item


_TEXT_VRS = {"PN", "LO", "SH", "UT", "ST", "LT"}


def _needs_unicode(ds: Dataset) -> bool:
    for item in datasets(ds):
        for element in item:
            value = element.value
            if element.VR in _TEXT_VRS and value and not str(value).isascii():
                return True
    return False


def finish(
    sr: Dataset, row: Annotation, profile: Profile, mode: CodeMode
) -> Dataset:
    """Make the dataset reproducible and complete the header (PS3.3 C.12.1, C.17.2)."""
    when: dt.datetime = row.content_datetime
    sr.ContentDate = when.strftime("%Y%m%d")
    sr.ContentTime = when.strftime("%H%M%S")
    sr.InstanceCreationDate = sr.ContentDate
    sr.InstanceCreationTime = sr.ContentTime
    sr.TimezoneOffsetFromUTC = "+0000"
    for equipment in sr.get("ContributingEquipmentSequence", []):
        equipment.ContributionDateTime = sr.ContentDate + sr.ContentTime
    sr.Manufacturer = profile.manufacturer
    sr.ManufacturerModelName = "csv2sr"
    sr.SoftwareVersions = __version__
    sr.SeriesDescription = profile.series_description
    sr.AuthorObserverSequence = Sequence([_author_observer(row)])
    _verbatim_length(sr, row.length)
    _unnamed_references(sr)
    if mode is CodeMode.SRT:
        _to_srt(sr)
    if "SpecificCharacterSet" in sr:
        del sr.SpecificCharacterSet
    if _needs_unicode(sr):
        sr.SpecificCharacterSet = "ISO_IR 192"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sr.SOPClassUID
    meta.MediaStorageSOPInstanceUID = sr.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID(derive_uid("implementation", "csv2sr", __version__))
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    sr.file_meta = meta
    sr.preamble = b"\x00" * 128
    return sr


def encode(
    row: Annotation,
    profile: Profile,
    mode: CodeMode = CodeMode.SCT,
    header: Dataset | None = None,
    image_library: hd.sr.ContainerContentItem | None = None,
    ohif: bool = False,
) -> Dataset:
    """Build the Enhanced SR for one row with highdicom (PS3.3 A.35.2, PS3.16 TID 1500).

    ``header`` is the annotated image's header when the source images are known
    (:func:`csv2sr.images.enrich.enriched_header`): it is the evidence highdicom copies the
    Patient and General Study modules from, and, when it holds the image attributes
    (Rows...), highdicom's Image Library describes the image from it (TID 1602/1604).
    Otherwise :func:`source_header` stands in for it.  ``ohif`` writes the Tracking
    Identifier OHIF loads as an editable Length tool (:mod:`csv2sr.dicom.ohif`).
    """
    if header is not None and header.get("SOPClassUID"):
        # the image's own SOP Class wins over the table's (or its CT default)
        row = replace(row, sop_class_uid=str(header.SOPClassUID))
    uids = row_uids(row, profile, mode, ohif)
    evidence = header if header is not None else source_header(row)
    content = build_content(row, profile, uids, evidence, image_library, ohif)
    with warnings.catch_warnings():
        # Patient's Name = Patient ID, as in TCIA's images (documented in conformance.md)
        warnings.filterwarnings("ignore", message=".*unlikely to represent the intended person")
        sr = _enhanced_sr(row, profile, uids, evidence, content[0])
    dataset = Dataset()
    dataset.update(sr)
    return finish(dataset, row, profile, mode)


def _enhanced_sr(
    row: Annotation, profile: Profile, uids: RowUIDs, evidence: Dataset, content: Dataset
) -> hd.sr.EnhancedSR:
    """PS3.3 A.35.2 Enhanced SR IOD, via highdicom (evidence walk included)."""
    return hd.sr.EnhancedSR(
        evidence=[evidence],
        content=content,
        series_instance_uid=uids.series,
        series_number=profile.series_number,
        sop_instance_uid=uids.sop_instance,
        instance_number=row.order,
        manufacturer=profile.manufacturer,
        is_complete=True,
        is_final=False,
        is_verified=False,
        content_date=row.content_datetime.date(),
        content_time=row.content_datetime.time().replace(tzinfo=None),
    )


def dataset_bytes(ds: Dataset) -> bytes:
    """The Part 10 file of ``ds`` (preamble, File Meta, dataset; PS3.10 7.1) as bytes."""
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


_ATTRIBUTE_COLUMNS: dict[str, str] = {
    "PatientID": "patientID", "PatientName": "patientID", "StudyInstanceUID": "StudyInstanceUID",
    "StudyDate": "StudyDate", "StudyTime": "StudyTime", "Date": "StudyDate",
    "Time": "StudyTime", "ReferencedSOPInstanceUID": "instanceUID",
    "ReferencedSOPClassUID": "SOPClassUID", "SOPClassUID": "SOPClassUID",
    "GraphicData": "start_x/start_y/end_x/end_y", "NumericValue": "length",
    "PersonName": "annotator", "InstanceNumber": "order", "ContentDate": "date_unix",
    "ContentTime": "date_unix",
}
"""Attribute an encoder error names -> the CSV column its value comes from."""
_WRAPPED = re.compile(r"With tag \(([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})\) got exception: ")
_REASON_CHARS = 200


def failure_problem(row: Annotation, exc: BaseException) -> RowProblem:
    """One line for a row the builder refused: the column, and the innermost cause.

    pydicom wraps a write error once per enclosing sequence ("With tag (0040,A730) got
    exception: ...", with a whole traceback each time), so the message can be 100,000
    characters; only the innermost attribute and the first line of its cause are kept.
    The column is the one that feeds that attribute, else the one whose value the message
    quotes, else ``(row)``.  :func:`csv2sr.conversion.checks.check_row` is meant to make this rare.
    """
    text = str(exc)
    wrapped = list(_WRAPPED.finditer(text))
    column = None
    if wrapped:
        tag = int(wrapped[-1].group(1) + wrapped[-1].group(2), 16)
        column = _ATTRIBUTE_COLUMNS.get(keyword_for_tag(tag) or "")
        text = text[wrapped[-1].end():]
    cause = next((line.strip() for line in text.splitlines() if line.strip()), "")
    named = cause.split(":", 1)[0]
    if column is None and named in row.cells:  # csv2sr's own errors start with the column
        column = named
    if column is None:
        quoted = [c for c, v in row.cells.items() if len(v.strip()) > 1 and v in str(exc)]
        column = max(quoted, key=lambda c: len(row.cells[c]), default="(row)")
    message = f"could not be encoded: {type(exc).__name__}: {cause}"
    if len(message) > _REASON_CHARS:
        message = message[:_REASON_CHARS] + "..."
    return RowProblem(column, message, row.cells.get(column, ""))
