"""One document (one or more checked rows) -> one Enhanced SR dataset (PS3.3 A.35.2)
holding a TID 1500 Measurement Report.

This is the reference builder: the content tree is made by highdicom's TID 1500 classes
(TID 1501 groups: ``MeasurementsAndQualitativeEvaluations``; TID 1410 groups:
``PlanarROIMeasurementsAndQualitativeEvaluations``), then the few values highdicom cannot
express are set on the dataset (measured values exactly as written, reproducible dates,
the SNOMED-RT switch).  :mod:`csv2sr.conversion.fastpath` must produce exactly the same
bytes; tests prove it on every real row and on generated rows of every test profile.
"""

from __future__ import annotations

import datetime as dt
import logging
import warnings
from collections.abc import Mapping

import highdicom as hd
import numpy as np
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.sr.coding import Code
from pydicom.uid import UID, ExplicitVRLittleEndian
from pydicom.valuerep import DA, TM

from csv2sr import __version__
from csv2sr.conversion.document import (
    DocumentUIDs,
    as_document,
    code,
    document_uids,
    planar_groups,
    with_ohif,
)
from csv2sr.dicom.codes import (
    CodeMode,
    Codes,
    image_modality,
    procedure_reported,
    to_srt,
)
from csv2sr.dicom.tree import children, datasets
from csv2sr.dicom.uids import derive_uid
from csv2sr.mapping.record import (
    Document,
    Geometry,
    Geometry3D,
    Group,
    ImageRef,
    Measurement,
    Observer,
    Record,
)
from csv2sr.mapping.spec import Spec

__all__ = ["encode", "encode_document", "is_image_header", "source_header"]

log = logging.getLogger(__name__)

IMPLEMENTATION_VERSION_NAME = f"CSV2SR_{__version__}"[:16]


def modality(image: ImageRef) -> Code:
    """The modality of an image, from its SOP Class (PS3.16 TID 1602 row 1, CID 29).

    The row checks accept only SOP classes that have one; an image header of another
    class is refused here, naming the attribute.
    """
    found = image_modality(image.sop_class_uid)
    if found is None:
        raise ValueError(
            f"SOPClassUID: {image.sop_class_uid} is not an image storage SOP class with a "
            "known modality"
        )
    return found


def source_header(record: Record, image: ImageRef) -> Dataset:
    """What is known of an annotated image without its file: the row's own values.

    The other Type 2 patient and study attributes are empty (PS3.3 C.7.1.1, C.7.2.1).
    """
    ds = Dataset()
    ds.PatientID = record.patient_id
    ds.PatientName = record.patient_name
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyInstanceUID = record.study_uid
    ds.StudyDate = record.study_date
    ds.StudyTime = record.study_time
    ds.StudyID = ""
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.SeriesInstanceUID = image.series_uid
    ds.SOPClassUID = image.sop_class_uid
    ds.SOPInstanceUID = image.sop_instance_uid
    ds.Modality = modality(image).value
    return ds


def _observer_context(observer: Observer) -> hd.sr.ObservationContext:
    """PS3.16 TID 1500 row 3 > TID 1001 > TID 1002 rows 1-4 (person observer) or
    TID 1004 rows 1-2 (device observer)."""
    if observer.kind == "device":
        device = hd.sr.DeviceObserverIdentifyingAttributes(
            uid=observer.device_uid, name=observer.name or None,
        )
        return hd.sr.ObservationContext(
            observer_device_context=hd.sr.ObserverContext(
                observer_type=Codes.DEVICE, observer_identifying_attributes=device,
            )
        )
    person = hd.sr.PersonObserverIdentifyingAttributes(
        name=observer.name,
        login_name=observer.login or None,
        role_in_organization=code(observer.role) if observer.role is not None else None,
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


def _entry_descriptors(image: ImageRef, header: Dataset) -> list[hd.sr.ContentItem]:
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
        value=modality(image),
        relationship_type=hd.sr.RelationshipTypeValues.HAS_ACQ_CONTEXT,
    )
    return [item, *_study_descriptors(header)]


def _image_library(images: list[tuple[ImageRef, Dataset]]) -> hd.sr.ContainerContentItem:
    """PS3.16 TID 1600 rows 1-2 > TID 1601 row 1 (each annotated image, one Image Library
    Group each) > its descriptors.

    The IMAGE entries' concept name is removed by :func:`finish` (TID 1601 row 1 has none).
    """
    groups = []
    for image, header in images:
        entry = hd.sr.ImageContentItem(
            name=Codes.SOURCE,
            referenced_sop_class_uid=image.sop_class_uid,
            referenced_sop_instance_uid=image.sop_instance_uid,
            relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
        )
        entry.ContentSequence = hd.sr.ContentSequence(_entry_descriptors(image, header))
        group = hd.sr.ContainerContentItem(
            name=Codes.IMAGE_LIBRARY_GROUP,
            relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
        )
        group.ContentSequence = hd.sr.ContentSequence([entry])
        groups.append(group)
    library = hd.sr.ContainerContentItem(
        name=Codes.IMAGE_LIBRARY,
        relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
    )
    library.ContentSequence = hd.sr.ContentSequence(groups)
    return library


def _source_image(image: ImageRef) -> hd.sr.SourceImageForRegion:
    """PS3.16 TID 320 row 2 / TID 1410 row 7: the IMAGE a region is SELECTED FROM, with its
    Referenced Frame Number (PS3.3 C.18.4, Table C.18.4-1) for a frame of a multi-frame image."""
    return hd.sr.SourceImageForRegion(
        referenced_sop_class_uid=image.sop_class_uid,
        referenced_sop_instance_uid=image.sop_instance_uid,
        referenced_frame_numbers=list(image.frames) or None,
    )


def _graphic_data(geometry: Geometry) -> np.ndarray:
    return np.array(geometry.points, dtype=np.float64).reshape(-1, 2)


def _measurement(measurement: Measurement, classes: Mapping[str, str]) -> hd.sr.Measurement:
    """PS3.16 TID 300: the NUM (row 1) INFERRED FROM its SCOORD (row 12, TID 320) when it
    has one; the value as written is set by :func:`_verbatim_values`."""
    coordinates = None
    geometry = measurement.geometry
    if geometry is not None:
        assert geometry.image is not None
        coordinates = [hd.sr.CoordinatesForMeasurement(
            graphic_type=geometry.graphic_type,
            graphic_data=_graphic_data(geometry),
            source_image=_source_image(_with_class(geometry.image, classes)),
        )]
    return hd.sr.Measurement(
        name=code(measurement.concept),
        value=float(measurement.value),
        unit=code(measurement.unit),
        referenced_coordinates=coordinates,
    )


def _with_class(image: ImageRef, classes: Mapping[str, str]) -> ImageRef:
    sop_class = classes.get(image.sop_instance_uid)
    if sop_class is None or sop_class == image.sop_class_uid:
        return image
    return ImageRef(sop_class, image.sop_instance_uid, image.series_uid, image.frames)


def _measurement_group(
    group: Group, classes: Mapping[str, str],
) -> (hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations
      | hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations
      | hd.sr.MeasurementsAndQualitativeEvaluations):
    """PS3.16 TID 1501: tracking (rows 2-3), finding (row 3b), finding site (row 8), the
    TID 300 NUMs (row 9) and the qualitative evaluations (row 11); or TID 1410: the same
    around the Image Region (row 7) every NUM is made on."""
    common = dict(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=group.tracking_uid, identifier=group.tracking_identifier
        ),
        finding_type=code(group.finding) if group.finding is not None else None,
        finding_sites=[hd.sr.FindingSite(anatomic_location=code(group.finding_site))]
        if group.finding_site is not None else None,
        measurements=[_measurement(m, classes) for m in group.measurements] or None,
        qualitative_evaluations=[
            hd.sr.QualitativeEvaluation(name=code(q.concept), value=code(q.value))
            for q in group.qualitative
        ] or None,
    )
    if group.template == "1411":
        # PS3.16 TID 1411 Volumetric ROI Measurements: one Image Region SCOORD per slice,
        # each SELECTED FROM its own image (a box given as row/column/slice ranges)
        return hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
            referenced_regions=[
                hd.sr.ImageRegion(
                    graphic_type=r.graphic_type, graphic_data=_graphic_data(r),
                    source_image=_source_image(_with_class(r.image, classes)),
                )
                for r in group.regions if r.image is not None
            ],
            **common,  # type: ignore[arg-type]
        )
    if group.template == "1410" and isinstance(group.region, Geometry3D):
        return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            referenced_region=_region_3d(group.region), **common,  # type: ignore[arg-type]
        )
    if group.template == "1410":
        region = group.region
        assert isinstance(region, Geometry) and region.image is not None
        return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            referenced_region=hd.sr.ImageRegion(
                graphic_type=region.graphic_type,
                graphic_data=_graphic_data(region),
                source_image=_source_image(_with_class(region.image, classes)),
            ),
            **common,  # type: ignore[arg-type]
        )
    return hd.sr.MeasurementsAndQualitativeEvaluations(**common)  # type: ignore[arg-type]


def _region_3d(region: Geometry3D) -> hd.sr.ImageRegion3D:
    """PS3.16 TID 1410, the Image Region as an SCOORD3D (PS3.3 C.18.9): Graphic Type,
    Graphic Data in patient mm (FL), Referenced Frame of Reference UID (Type 1)."""
    if not region.frame_of_reference_uid:
        raise ValueError(f"{'/'.join(region.columns) or 'GraphicData'}: a geometry in patient "
                         "coordinates needs its series' Frame of Reference UID: give the "
                         "source images (--images or --images-url)")
    return hd.sr.ImageRegion3D(
        graphic_type=region.graphic_type,
        graphic_data=np.array(region.points, dtype=np.float64).reshape(-1, 3),
        frame_of_reference_uid=region.frame_of_reference_uid,
    )


def _procedures(document: Document, images: list[ImageRef]) -> list[Code]:
    """TID 1500 row 4: the profile's procedure, else one per modality of the images."""
    first = document.first
    if first.procedure is not None:
        return [code(first.procedure)]
    found: list[Code] = []
    for image in images:
        procedure = procedure_reported(modality(image))
        if procedure not in found:
            found.append(procedure)
    return found


def build_content(
    document: Document, evidence: list[tuple[ImageRef, Dataset]], classes: Mapping[str, str]
) -> hd.sr.MeasurementReport:
    """PS3.16 TID 1500 rows 1-6 for one document (row 4, Procedure Reported, from the
    modality)."""
    procedures = _procedures(document, [image for image, _ in evidence])
    report = hd.sr.MeasurementReport(
        observation_context=_observer_context(document.first.observer),
        procedure_reported=procedures[0] if len(procedures) == 1 else procedures,
        imaging_measurements=[_measurement_group(p, classes) for g in document.groups
                              for p in planar_groups(g)],
        title=Codes.TITLE,
        language_of_content_item_and_descendants=hd.sr.LanguageOfContentItemAndDescendants(
            language=hd.sr.CodedConcept.from_code(Codes.ENGLISH_US)
        ),
    )
    library = _image_library(evidence)
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


def _verbatim_values(ds: Dataset, document: Document) -> None:
    """TID 300 row 1: each measurement's NUM carries its value exactly as the table wrote
    it (a DS), in the order the groups hold them.

    Only the measurements of Imaging Measurements: the TID 1604 descriptors of an Image
    Library entry are NUMs too and keep the image's values.
    """
    values = iter(m.value for g in document.groups for p in planar_groups(g)
                  for m in p.measurements)
    for _, container in children(ds):
        names = container.get("ConceptNameCodeSequence")
        if not names or names[0].CodeValue != Codes.IMAGING_MEASUREMENTS.value:
            continue
        for _, group in children(container):
            for _, item in children(group):
                if item.get("ValueType") == "NUM" and "MeasuredValueSequence" in item:
                    value = item.MeasuredValueSequence[0]
                    value.NumericValue = next(values)
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


def _author_observer(observer: Observer) -> Dataset:
    """PS3.3 C.17.2.1 Author Observer Sequence item for a person (Observer Type PSN)."""
    item = Dataset()
    item.ObserverType = "PSN"
    item.PersonName = observer.name
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


def finish(sr: Dataset, document: Document, spec: Spec, mode: CodeMode) -> Dataset:
    """Make the dataset reproducible and complete the header (PS3.3 C.12.1, C.17.2).

    A device observer gets no Author Observer Sequence (Type 3, PS3.3 C.17.2): the
    observer context of the content tree names it.
    """
    when: dt.datetime = document.content_datetime
    sr.ContentDate = when.strftime("%Y%m%d")
    sr.ContentTime = when.strftime("%H%M%S")
    sr.InstanceCreationDate = sr.ContentDate
    sr.InstanceCreationTime = sr.ContentTime
    sr.TimezoneOffsetFromUTC = "+0000"
    for equipment in sr.get("ContributingEquipmentSequence", []):
        equipment.ContributionDateTime = sr.ContentDate + sr.ContentTime
    sr.Manufacturer = spec.document.manufacturer
    sr.ManufacturerModelName = "csv2sr"
    sr.SoftwareVersions = __version__
    if spec.document.series_description:
        sr.SeriesDescription = spec.document.series_description
    observer = document.first.observer
    if observer.kind == "person":
        sr.AuthorObserverSequence = Sequence([_author_observer(observer)])
    _verbatim_values(sr, document)
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
    item: Document | Record,
    spec: Spec,
    mode: CodeMode = CodeMode.SCT,
    headers: Mapping[str, Dataset] | None = None,
    ohif: bool = False,
) -> Dataset:
    """Build the Enhanced SR of one document with highdicom (PS3.3 A.35.2, PS3.16 TID 1500).

    ``ohif`` writes the Tracking Identifiers OHIF loads as editable tools
    (:func:`with_ohif`), and so other SOP Instance and Series UIDs (docs/ohif.md).

    ``headers`` are the annotated images' headers by SOP Instance UID, when the source
    images are known (:func:`csv2sr.images.enrich.enriched_header`): they are the evidence
    highdicom copies the Patient and General Study modules from (the first image's), and,
    when they hold the image attributes (Rows...), highdicom's Image Library describes the
    image from them (TID 1602/1604); an image's own SOP Class wins over the table's.
    Otherwise :func:`source_header` stands in for each.
    """
    document = with_ohif(item, spec) if ohif else as_document(item, spec)
    return encode_document(document, spec, mode, headers, ohif)


def encode_document(
    document: Document, spec: Spec, mode: CodeMode = CodeMode.SCT,
    headers: Mapping[str, Dataset] | None = None, ohif: bool = False,
) -> Dataset:
    """:func:`encode` of a document as it is (``ohif``: its UIDs only; the Tracking
    Identifiers are the document's own, see :func:`with_ohif`)."""
    found = headers or {}
    classes = {uid: str(h.SOPClassUID) for uid, h in found.items() if h.get("SOPClassUID")}
    images = [_with_class(image, classes) for image in document.images]
    evidence = [
        (image, found.get(image.sop_instance_uid) or source_header(document.first, image))
        for image in images
    ]
    uids = document_uids(document, spec, mode, ohif)
    with warnings.catch_warnings():
        # Patient's Name = Patient ID, as in TCIA's images, and observer names of one
        # component (a login as the name): documented in conformance.md
        warnings.filterwarnings("ignore", message=".*unlikely to represent the intended person")
        content = build_content(document, evidence, classes)
        sr = _enhanced_sr(document, spec, uids, [h for _, h in evidence], content[0])
    dataset = Dataset()
    dataset.update(sr)
    return finish(dataset, document, spec, mode)


def _enhanced_sr(
    document: Document, spec: Spec, uids: DocumentUIDs, evidence: list[Dataset],
    content: Dataset,
) -> hd.sr.EnhancedSR | hd.sr.Comprehensive3DSR:
    """PS3.3 A.35.2 Enhanced SR IOD, or A.35.13 Comprehensive 3D SR IOD when a group has
    an Image Region 3D, via highdicom (evidence walk included)."""
    when = document.content_datetime
    # an SCOORD3D is allowed in a Comprehensive 3D SR (PS3.3 A.35.13), not an Enhanced SR
    iod = hd.sr.Comprehensive3DSR if document.is_3d else hd.sr.EnhancedSR
    return iod(
        evidence=evidence,
        content=content,
        series_instance_uid=uids.series,
        series_number=spec.document.series_number,
        sop_instance_uid=uids.sop_instance,
        instance_number=document.instance_number,
        manufacturer=spec.document.manufacturer,
        is_complete=True,
        is_final=False,
        is_verified=False,
        content_date=when.date(),
        content_time=when.time().replace(tzinfo=None),
    )


