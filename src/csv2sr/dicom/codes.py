"""Every coded concept csv2sr writes or recognises: the one table.

Codes are taken from pydicom's generated tables (``pydicom.sr.codedict.codes``,
PS3.16 Annex D and the CID tables) and never retyped; the only literals are the few
concepts pydicom's tables lack, each typed once here.  SNOMED-RT (``SRT``) equivalents
come from pydicom's SNOMED mapping table (``pydicom.sr._snomed_dict``, PS3.16 Annex O).
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable

from pydicom.sr import _snomed_dict
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

__all__ = [
    "CODE_TABLE",
    "CodeMode",
    "Codes",
    "code_key",
    "from_srt",
    "image_modality",
    "procedure_reported",
    "to_srt",
]


class CodeMode(str, enum.Enum):
    """Which SNOMED flavour to write: SNOMED CT (default) or the deprecated SNOMED-RT."""

    SCT = "sct"
    SRT = "srt"


_SCT_TO_SRT: dict[str, str] = dict(_snomed_dict.mapping["SCT"])
_SRT_TO_SCT: dict[str, str] = dict(_snomed_dict.mapping["SRT"])


def to_srt(code: Code) -> Code:
    """Return the 2018 SNOMED-RT equivalent of a SNOMED CT code, or the code unchanged.

    Codes of other schemes, and SNOMED CT codes that SNOMED-RT never had (e.g.
    Radiologist 66862007), are returned as they are.
    """
    if code.scheme_designator != "SCT" or code.value not in _SCT_TO_SRT:
        return code
    return Code(_SCT_TO_SRT[code.value], "SRT", code.meaning)


def from_srt(code: Code) -> Code:
    """Return the SNOMED CT equivalent of a SNOMED-RT code (PS3.16 Annex O), or the code."""
    if code.scheme_designator != "SRT" or code.value not in _SRT_TO_SCT:
        return code
    return Code(_SRT_TO_SCT[code.value], "SCT", code.meaning)


def code_key(code: Code) -> tuple[str, str]:
    """(value, scheme) with SNOMED-RT mapped to SNOMED CT: the identity used to compare codes.

    A code under SRT whose value is a SNOMED CT identifier (digits only: SNOMED-RT codes
    read like ``T-28000``, PS3.16 Annex O) is that SNOMED CT concept: dcmjs (CCC 2018)
    writes the Finding Site Lung as (39607008, SRT)."""
    if code.scheme_designator == "SRT" and code.value.isdigit():
        return (code.value, "SCT")
    sct = from_srt(code)
    return (sct.value, sct.scheme_designator)


class Codes:
    """The concepts of the SR csv2sr writes (PS3.16 TID 1500, 1501, 300, 1204, 1600)."""

    # TID 1500 row 1: document title from CID 7021
    TITLE = codes.DCM.ImagingMeasurementReport
    # TID 1500 row 2 > TID 1204: language of content
    LANGUAGE = codes.DCM.LanguageOfContentItemAndDescendants
    # RFC 5646 tag; pydicom has no RFC5646 table, so it is typed once, here.
    ENGLISH_US = Code("en-US", "RFC5646", "English (United States)")
    # TID 1500 row 3 > TID 1001 > TID 1002: observer context
    OBSERVER_TYPE = codes.DCM.ObserverType
    PERSON = codes.DCM.Person
    DEVICE = codes.DCM.Device  # TID 1002 row 1 for a device observer (TID 1004)
    PERSON_OBSERVER_NAME = codes.DCM.PersonObserverName
    PERSON_OBSERVER_LOGIN_NAME = codes.DCM.PersonObserverLoginName
    PERSON_OBSERVER_ROLE = codes.DCM.PersonObserverRoleInTheOrganization
    # CID 7452 is baseline; SNOMED CT "Radiologist" is absent from pydicom's CID table.
    RADIOLOGIST = Code("66862007", "SCT", "Radiologist")
    # TID 1500 row 4: procedure reported, from CID 100
    PROCEDURE_REPORTED = codes.DCM.ProcedureReported
    CT_UNSPECIFIED = codes.LN.CTUnspecifiedBodyRegion
    MR_UNSPECIFIED = codes.cid100.MRIUnspecifiedBodyRegion
    NM_UNSPECIFIED = codes.cid100.NMUnspecifiedBodyRegion
    PET_UNSPECIFIED = codes.cid100.PETUnspecifiedBodyRegion
    XR_UNSPECIFIED = codes.cid100.XRUnspecifiedBodyRegion
    ANGIOGRAPHY = codes.cid100.Angiography
    IMAGING_PROCEDURE = codes.cid100.ImagingProcedure
    # TID 1500 row 5 > TID 1600: image library
    IMAGE_LIBRARY = codes.DCM.ImageLibrary
    IMAGE_LIBRARY_GROUP = codes.DCM.ImageLibraryGroup
    MODALITY = codes.DCM.Modality
    CT = codes.DCM.ComputedTomography
    STUDY_DATE = codes.DCM.StudyDate
    STUDY_TIME = codes.DCM.StudyTime
    # TID 1500 row 6 > TID 1501: measurement group
    IMAGING_MEASUREMENTS = codes.DCM.ImagingMeasurements
    MEASUREMENT_GROUP = codes.DCM.MeasurementGroup
    TRACKING_IDENTIFIER = codes.DCM.TrackingIdentifier
    TRACKING_UID = codes.DCM.TrackingUniqueIdentifier
    FINDING = codes.DCM.Finding
    NEOPLASM = codes.SCT.Neoplasm
    FINDING_SITE = codes.SCT.FindingSite
    # TID 300: the measurement
    LENGTH = codes.SCT.Length
    MILLIMETER = codes.UCUM.Millimeter
    # TID 300 concepts whose groups convert --ohif turns into Cornerstone3D tools
    # (csv2sr.dicom.ohif): a bidirectional measurement's axes, an ROI's area
    LONG_AXIS = codes.SCT.LongAxis
    SHORT_AXIS = codes.SCT.ShortAxis
    AREA = codes.SCT.Area
    # highdicom's name for the image library entry
    SOURCE = codes.SCT.Source
    # organs of the CCC2017 collections (Finding Site values, named by its profile)
    KIDNEY = codes.SCT.Kidney
    OVARY = codes.SCT.Ovary
    LUNG = codes.SCT.Lung
    LIVER = codes.SCT.Liver
    # TID 1410 row 7: the group-level region a planar ROI measurement group is made on
    # (recognised by csv2sr.export; csv2sr writes TID 1501 groups)
    IMAGE_REGION = codes.DCM.ImageRegion
    # recognised by csv2sr.export in the groups other writers make (PS3.16 TID 1410, 1411,
    # TID 300, TID 4019, TID 1004)
    REFERENCED_SEGMENT = codes.DCM.ReferencedSegment  # TID 1411
    REFERENCED_SEGMENTATION_FRAME = codes.DCM.ReferencedSegmentationFrame  # TID 1410
    SOURCE_IMAGE_FOR_SEGMENTATION = codes.DCM.SourceImageForSegmentation
    SOURCE_SERIES_FOR_SEGMENTATION = codes.DCM.SourceSeriesForSegmentation
    DERIVATION = codes.DCM.Derivation  # TID 300 row 4
    MEASUREMENT_METHOD = codes.SCT.MeasurementMethod  # TID 300 row 3
    ALGORITHM_NAME = codes.DCM.AlgorithmName  # TID 4019 row 1
    ALGORITHM_VERSION = codes.DCM.AlgorithmVersion  # TID 4019 row 2
    DEVICE_OBSERVER_UID = codes.DCM.DeviceObserverUID  # TID 1004 row 1
    DEVICE_OBSERVER_NAME = codes.DCM.DeviceObserverName  # TID 1004 row 2


def _all_codes() -> Iterable[Code]:
    for name, value in vars(Codes).items():
        if not name.startswith("_") and isinstance(value, Code):
            yield value
            srt = to_srt(value)
            if srt is not value:
                yield srt


_PROCEDURES: dict[str, Code] = {
    "CT": Codes.CT_UNSPECIFIED,
    "MR": Codes.MR_UNSPECIFIED,
    "NM": Codes.NM_UNSPECIFIED,
    "PT": Codes.PET_UNSPECIFIED,
    "CR": Codes.XR_UNSPECIFIED,
    "DX": Codes.XR_UNSPECIFIED,
    "MG": Codes.XR_UNSPECIFIED,
    "IO": Codes.XR_UNSPECIFIED,
    "XA": Codes.ANGIOGRAPHY,
}
"""Modality (CID 29 code value) -> Procedure Reported (PS3.16 TID 1500 row 4, CID 100)."""


@functools.cache
def image_modality(sop_class_uid: str) -> Code | None:
    """The modality of an image SOP class (PS3.16 TID 1602 row 1, CID 29), or None.

    highdicom's SOP Class -> modality table (the one its Image Library uses for a real
    image header) is the source; only image storage SOP classes (PS3.4 Annex B, named
    "... Image Storage" in pydicom's UID dictionary) count: an SR, a presentation state or
    a waveform cannot be the image a line is drawn on.
    """
    from highdicom.sr.templates import _get_coded_modality  # noqa: PLC0415  (heavy)
    from pydicom.uid import UID  # noqa: PLC0415

    if "Image Storage" not in UID(sop_class_uid).name:
        return None
    try:
        return _get_coded_modality(sop_class_uid)
    except ValueError:
        return None


def procedure_reported(modality: Code) -> Code:
    """PS3.16 TID 1500 row 4 (CID 100) for images of ``modality``: the modality's
    "unspecified body region" code, or "Imaging procedure" when CID 100 has none."""
    procedure: Code = _PROCEDURES.get(modality.value, Codes.IMAGING_PROCEDURE)
    return procedure


CODE_TABLE: dict[tuple[str, str], str] = {
    (c.value, c.scheme_designator): c.meaning for c in _all_codes()
}
"""(value, scheme) -> meaning for every code csv2sr emits, in both code modes."""
