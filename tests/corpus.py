"""A corpus of third-party SRs, made in the tests with the real libraries (issue 13).

* highdicom: every TID 1500 measurement group kind it has (TID 1501; TID 1410 with a 2D
  region of every SCOORD graphic type and a 3D region of every SCOORD3D graphic type, and
  with a segment reference; TID 1411 with a segment reference, a volume surface and 2D
  regions), qualitative evaluations, measurement properties, algorithm identification,
  person and device observers, in Enhanced, Comprehensive and Comprehensive 3D SR;
* dcmjs through Cornerstone3D's adapter ``MeasurementReport.generateReport`` (node, the
  package in ``tests/js``): every 2D tool whose SR dciodvfy accepts;
* dcmqi's ``tid1500writer`` (PyPI ``dcmqi``) from its own example JSON
  (``doc/examples/sr-tid1500-ct-liver-example.json`` and ``sr-tid1500-qualitative.json``
  of QIICR/dcmqi), pointed at the synthetic CT slices and SEG made here;
* the real dcmjs SR of ``../shared/data/sr-wild/``.

Everything but the dcmjs UIDs is deterministic.  The source images are three tiny CT
slices (16 x 16, uncompressed) and the SEG is made from them with highdicom.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import numpy as np
from highdicom.sr import (
    AlgorithmIdentification,
    Comprehensive3DSR,
    ComprehensiveSR,
    CoordinatesForMeasurement,
    CoordinatesForMeasurement3D,
    DeviceObserverIdentifyingAttributes,
    EnhancedSR,
    FindingSite,
    ImageRegion,
    ImageRegion3D,
    Measurement,
    MeasurementProperties,
    MeasurementReport,
    MeasurementsAndQualitativeEvaluations,
    ObservationContext,
    ObserverContext,
    PersonObserverIdentifyingAttributes,
    PlanarROIMeasurementsAndQualitativeEvaluations,
    QualitativeEvaluation,
    ReferencedSegment,
    SourceImageForMeasurement,
    SourceImageForRegion,
    SourceImageForSegmentation,
    SourceSeriesForSegmentation,
    TimePointContext,
    TrackingIdentifier,
    VolumeSurface,
    VolumetricROIMeasurementsAndQualitativeEvaluations,
)
from pydicom import Dataset, dcmread
from pydicom.dataset import FileMetaDataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

ROOT = Path(__file__).resolve().parent.parent
JS = ROOT / "tests" / "js"
WILD = ROOT.parent / "shared" / "data" / "sr-wild" / "ccc2018_bidirectional_sr.dcm"
_NAMESPACE = uuid.UUID("3f1f3b1e-7d2a-4f57-8a0c-13c2f7d59d01")
SIZE = 16
SPACING = (0.75, 0.75)


def uid(*parts: str) -> str:
    return f"2.25.{uuid.uuid5(_NAMESPACE, '/'.join(parts)).int}"


# -- source images and a SEG ------------------------------------------------------------


def ct_slices(count: int = 3) -> list[Dataset]:
    """Tiny CT Image Storage instances of one series (PS3.3 A.3), pixel data included."""
    slices = []
    for index in range(count):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = uid("ct", str(index))
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.PatientID, ds.PatientName = "SYN-3P", "Third^Party"
        ds.PatientBirthDate, ds.PatientSex = "19700101", "O"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = uid("study"), uid("ct-series")
        ds.StudyDate, ds.StudyTime, ds.StudyID = "20200102", "101112", "1"
        ds.AccessionNumber, ds.ReferringPhysicianName = "ACC3P", ""
        ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "CT", 1, index + 1
        ds.Manufacturer = "csv2sr tests"
        ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = uid("frame"), ""
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ContentDate, ds.ContentTime = "20200102", "101112"
        ds.KVP, ds.AcquisitionNumber = "120", 1
        ds.PixelSpacing = list(SPACING)
        ds.SliceThickness = "1"
        ds.ImagePositionPatient = [-6.0, -6.0, float(index)]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows = ds.Columns = SIZE
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "-1024", "1", "HU"
        pixels = np.full((SIZE, SIZE), 1024, dtype=np.int16)
        pixels[4:12, 4:12] = 1084
        ds.PixelData = pixels.tobytes()
        slices.append(ds)
    return slices


def segmentation(slices: list[Dataset]) -> hd.seg.Segmentation:
    """A binary SEG of two segments on the CT slices (highdicom)."""
    mask = np.zeros((len(slices), SIZE, SIZE), dtype=np.uint8)
    mask[:, 4:12, 4:12] = 1
    mask[1, 6:10, 6:10] = 2
    algorithm = hd.AlgorithmIdentificationSequence(
        name="threshold", version="1.0", family=codes.DCM.ArtificialIntelligence)
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=number, segment_label=label,
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=codes.SCT.Neoplasm,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm)
        for number, label in ((1, "lesion"), (2, "core"))
    ]
    return hd.seg.Segmentation(
        source_images=slices, pixel_array=mask,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=uid("seg-series"),
        series_number=2, sop_instance_uid=uid("seg"), instance_number=1,
        manufacturer="csv2sr tests", manufacturer_model_name="corpus",
        software_versions="1", device_serial_number="1")


# -- highdicom SRs -------------------------------------------------------------------------

LESION = Code("52988006", "SCT", "Lesion")
LIVER = Code("10200004", "SCT", "Liver")
MM = Code("mm", "UCUM", "millimeter")
MM2 = Code("mm2", "UCUM", "square millimeter")
MM3 = Code("mm3", "UCUM", "cubic millimeter")
HU = Code("[hnsf'U]", "UCUM", "Hounsfield unit")
RADELEMENT_SOLID = Code("RDE1301.0", "RADELEMENT", "solid")
"""A RadElement code (PS3.16 Table 8-1 designator RADELEMENT)."""


def _observation_context() -> ObservationContext:
    """A person and a device observer (PS3.16 TID 1001, TID 1002, TID 1004)."""
    person = ObserverContext(
        observer_type=codes.DCM.Person,
        observer_identifying_attributes=PersonObserverIdentifyingAttributes(
            name="Reader^One", login_name="reader1", organization_name="Corpus Lab"))
    device = ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=DeviceObserverIdentifyingAttributes(
            uid=uid("device"), name="CAD", manufacturer_name="csv2sr tests",
            model_name="corpus", serial_number="42"))
    return ObservationContext(observer_person_context=person, observer_device_context=device)


def _source(image: Dataset) -> SourceImageForRegion:
    return SourceImageForRegion(image.SOPClassUID, image.SOPInstanceUID)


def _tracking(name: str) -> TrackingIdentifier:
    return TrackingIdentifier(uid=uid("tracking", name), identifier=name)


def _area(value: float, properties: bool = False) -> Measurement:
    return Measurement(
        name=codes.SCT.Area, value=value, unit=MM2,
        properties=MeasurementProperties(
            normality=codes.SCT.Abnormal, selection_status=codes.DCM.MaximumSelected
            if hasattr(codes.DCM, "MaximumSelected") else None) if properties else None)


def _solid() -> QualitativeEvaluation:
    return QualitativeEvaluation(Code("RID5741", "RADLEX", "solid"), RADELEMENT_SOLID)


MULTIPOINT_2D = np.array([[4.0, 4.0], [6.5, 9.25], [11.0, 5.0]])
"""The one SCOORD graphic type TID 1410 row 7 does not take: used by a TID 300 NUM's
coordinates (TID 320) in the TID 1501 group."""

REGIONS_2D: dict[str, np.ndarray] = {
    "POINT": np.array([[8.0, 8.0]]),
    "POLYLINE": np.array([[4.0, 4.0], [12.0, 4.0], [12.0, 12.0], [4.0, 12.0], [4.0, 4.0]]),
    "CIRCLE": np.array([[8.0, 8.0], [12.0, 8.0]]),
    "ELLIPSE": np.array([[3.0, 8.0], [13.0, 8.0], [8.0, 5.0], [8.0, 11.0]]),
}
"""Every SCOORD graphic type highdicom's ImageRegion takes (TID 1410 row 7)."""

REGIONS_3D: dict[str, np.ndarray] = {
    "POINT": np.array([[0.0, 0.0, 1.0]]),
    "MULTIPOINT": np.array([[-3.0, -3.0, 1.0], [0.5, 1.25, 1.0], [3.0, -2.0, 1.0]]),
    "POLYLINE": np.array([[-3.0, -3.0, 1.0], [3.0, -3.0, 1.0], [3.0, 3.0, 1.0]]),
    "POLYGON": np.array([[-3.0, -3.0, 1.0], [3.0, -3.0, 1.0], [3.0, 3.0, 1.0],
                         [-3.0, 3.0, 1.0], [-3.0, -3.0, 1.0]]),
    "ELLIPSE": np.array([[-4.0, 0.0, 1.0], [4.0, 0.0, 1.0], [0.0, -2.0, 1.0],
                         [0.0, 2.0, 1.0]]),
    "ELLIPSOID": np.array([[-4.0, 0.0, 1.0], [4.0, 0.0, 1.0], [0.0, -2.0, 1.0],
                           [0.0, 2.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 2.0]]),
}
"""Every SCOORD3D graphic type (PS3.3 C.18.9.1.2), in the CT's frame of reference."""


def _report(groups: list[object], slices: list[Dataset]) -> MeasurementReport:
    return MeasurementReport(
        observation_context=_observation_context(),
        procedure_reported=codes.LN.CTUnspecifiedBodyRegion,
        imaging_measurements=groups,  # type: ignore[arg-type]
        referenced_images=slices)


def _document(
    kind: type[EnhancedSR | ComprehensiveSR | Comprehensive3DSR], report: MeasurementReport,
    evidence: list[Dataset], name: str,
) -> Dataset:
    return kind(
        evidence=evidence, content=report, series_instance_uid=uid(name, "series"),
        series_number=10, sop_instance_uid=uid(name), instance_number=1,
        manufacturer="csv2sr tests", is_complete=True, is_final=True)


def highdicom_planar_2d(slices: list[Dataset]) -> Dataset:
    """TID 1410 with a 2D region of every graphic type (some groups region-only, as IDC
    writes boxes and points), and a TID 1501 group with qualitative evaluations."""
    groups: list[object] = []
    for index, (graphic_type, data) in enumerate(REGIONS_2D.items()):
        measured = graphic_type in ("POLYLINE", "CIRCLE", "ELLIPSE")
        groups.append(PlanarROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=_tracking(f"2d-{graphic_type}"),
            referenced_region=ImageRegion(graphic_type, data, _source(slices[1])),
            finding_type=LESION, finding_sites=[FindingSite(LIVER)],
            measurements=[_area(30.0 + index, properties=index == 2)] if measured else None,
            qualitative_evaluations=[_solid()] if graphic_type == "POINT" else None))
    groups.append(MeasurementsAndQualitativeEvaluations(
        tracking_identifier=_tracking("1501-image"), finding_type=LESION,
        time_point_context=TimePointContext("baseline"),
        algorithm_id=AlgorithmIdentification(name="measurer", version="2.1"),
        measurements=[
            Measurement(name=codes.SCT.Diameter, value=6.5, unit=MM,
                        referenced_images=[SourceImageForMeasurement(
                            slices[1].SOPClassUID, slices[1].SOPInstanceUID)]),
            Measurement(name=Code("246205007", "SCT", "Quantity"), value=3, unit=Code(
                "{lesions}", "UCUM", "lesions"), referenced_coordinates=[
                    CoordinatesForMeasurement("MULTIPOINT", MULTIPOINT_2D,
                                              _source(slices[2]))])],
        qualitative_evaluations=[_solid()]))
    return _document(ComprehensiveSR, _report(groups, slices), slices, "hd-planar-2d")


def highdicom_planar_3d(slices: list[Dataset]) -> Dataset:
    """TID 1410 with a 3D region of every SCOORD3D graphic type highdicom takes there;
    MULTIPOINT and ELLIPSOID (not planar) as the coordinates of a TID 1501 NUM."""
    groups: list[object] = [MeasurementsAndQualitativeEvaluations(
        tracking_identifier=_tracking("1501-3d-coordinates"), finding_type=LESION,
        measurements=[
            Measurement(name=Code("246205007", "SCT", "Quantity"), value=3,
                        unit=Code("{lesions}", "UCUM", "lesions"),
                        referenced_coordinates=[CoordinatesForMeasurement3D(
                            "MULTIPOINT", REGIONS_3D["MULTIPOINT"],
                            slices[0].FrameOfReferenceUID)]),
            Measurement(name=codes.SCT.Volume, value=33.5, unit=MM3,
                        referenced_coordinates=[CoordinatesForMeasurement3D(
                            "ELLIPSOID", REGIONS_3D["ELLIPSOID"],
                            slices[0].FrameOfReferenceUID)])])]
    for graphic_type, data in REGIONS_3D.items():
        if graphic_type in ("MULTIPOINT", "ELLIPSOID"):
            continue  # TID 1410 row 8: not planar (highdicom refuses them)
        groups.append(PlanarROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=_tracking(f"3d-{graphic_type}"),
            referenced_region=ImageRegion3D(graphic_type, data,
                                            slices[0].FrameOfReferenceUID),
            finding_type=LESION,
            measurements=[_area(12.0)] if graphic_type in ("POLYGON", "ELLIPSE") else None))
    return _document(Comprehensive3DSR, _report(groups, slices), slices, "hd-planar-3d")


def highdicom_segments(slices: list[Dataset], seg: Dataset) -> Dataset:
    """TID 1411 by segment reference, by 3D volume surfaces and by 2D regions; measurement
    properties and algorithm identification.

    TID 1410 by a segment frame reference (highdicom's ReferencedSegmentationFrame) is left
    out: highdicom writes Referenced Segment Number and Referenced Frame Number together,
    which dciodvfy reports as an error (PS3.3 Table 10-11, Referenced Segment Number 1C).
    """
    sources = [SourceImageForSegmentation(s.SOPClassUID, s.SOPInstanceUID) for s in slices]
    algorithm = AlgorithmIdentification(name="volumetry", version="3.0",
                                        parameters=["threshold=60"])
    groups: list[object] = [
        VolumetricROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=_tracking("1411-segment-1"),
            referenced_segment=ReferencedSegment(seg.SOPClassUID, seg.SOPInstanceUID, 1,
                                                 source_images=sources),
            finding_type=LESION, finding_sites=[FindingSite(LIVER)],
            algorithm_id=algorithm,
            measurements=[Measurement(
                name=codes.SCT.Volume, value=144.0, unit=MM3, algorithm_id=algorithm,
                properties=MeasurementProperties(normality=codes.SCT.Abnormal)),
                Measurement(name=codes.SCT.Mean, value=60.0, unit=HU)],
            qualitative_evaluations=[_solid()]),
        VolumetricROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=_tracking("1411-segment-2-only"),
            referenced_segment=ReferencedSegment(seg.SOPClassUID, seg.SOPInstanceUID, 2,
                                                 source_images=sources),
            finding_type=LESION),
    ]
    for graphic_type in ("ELLIPSOID", "POINT", "POLYGON"):
        data = REGIONS_3D[graphic_type]
        surface: np.ndarray | list[np.ndarray] = data
        if graphic_type == "POLYGON":
            surface = [data, data + np.array([0.0, 0.0, 1.0])]
        groups.append(VolumetricROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=_tracking(f"1411-surface-{graphic_type}"),
            referenced_volume_surface=VolumeSurface(
                graphic_type, surface, slices[0].FrameOfReferenceUID,
                source_series=SourceSeriesForSegmentation(slices[0].SeriesInstanceUID)),
            finding_type=LESION,
            measurements=[Measurement(name=codes.SCT.Volume, value=50.0, unit=MM3)]
            if graphic_type == "ELLIPSOID" else None))
    groups.append(VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=_tracking("1411-regions"),
        referenced_regions=[ImageRegion("POLYLINE", REGIONS_2D["POLYLINE"], _source(s))
                            for s in slices],
        finding_type=LESION, measurements=[Measurement(codes.SCT.Volume, 192.0, MM3)]))
    return _document(Comprehensive3DSR, _report(groups, slices), [*slices, seg],
                     "hd-segments")


def _enhanced_group(kind: str, slices: list[Dataset]) -> object:
    """A TID 1501 group with qualitative evaluations only, or a TID 1410 polyline group."""
    if kind == "1501":
        return MeasurementsAndQualitativeEvaluations(
            tracking_identifier=_tracking("1501-qualitative-only"), finding_type=LESION,
            finding_sites=[FindingSite(LIVER, laterality=codes.SCT.Right)],
            qualitative_evaluations=[_solid()])
    return PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=_tracking("1410-enhanced"),
        referenced_region=ImageRegion("POLYLINE", REGIONS_2D["POLYLINE"], _source(slices[0])),
        finding_type=LESION, measurements=[_area(64.0)])


def highdicom_enhanced(slices: list[Dataset], kinds: tuple[str, ...] = ("1501", "1410"),
                       name: str = "hd-enhanced") -> Dataset:
    """Enhanced SR (no SCOORD3D, no by-reference): TID 1501 groups, one only qualitative."""
    groups = [_enhanced_group(kind, slices) for kind in kinds]
    return _document(EnhancedSR, _report(groups, slices), slices, name)


def write_enhanced_groups(slices: list[Dataset], kinds: tuple[str, ...], path: Path) -> Path:
    """An Enhanced SR of the given groups (``"1501"``, ``"1410"``), saved at ``path``."""
    highdicom_enhanced(slices, kinds, f"hd-enhanced-{'-'.join(kinds)}").save_as(
        path, enforce_file_format=True)
    return path


HIGHDICOM: dict[str, Callable[..., Dataset]] = {
    "highdicom-planar-2d.dcm": highdicom_planar_2d,
    "highdicom-planar-3d.dcm": highdicom_planar_3d,
    "highdicom-segments.dcm": highdicom_segments,
    "highdicom-enhanced.dcm": highdicom_enhanced,
}


# -- dcmjs (Cornerstone3D adapters) ------------------------------------------------------

CORNERSTONE_TOOLS = ("Length", "Bidirectional", "RectangleROI", "EllipticalROI",
                     "CircleROI", "Probe", "ArrowAnnotate", "PlanarFreehandROI")
"""The 2D tools whose SRs dciodvfy accepts.  Angle and CobbAngle are left out: their
unit's Code Meaning is "°" and dcmjs writes no Specific Character Set (a dciodvfy error);
3D (volume) annotations need a rendered volume in Cornerstone's cache.  No finding site is
given: the adapter writes Finding Site as CONTAINS where TID 1501 row 6 says HAS CONCEPT
MOD (pixelmed reports it)."""


def cornerstone_spec(slices: list[Dataset]) -> dict[str, object]:
    """What tests/js/cornerstone.mjs generate-report reads: images and annotations."""
    image = slices[1]
    image_id = "wadouri:ct-2"
    header = {
        "imageId": image_id, "StudyInstanceUID": image.StudyInstanceUID,
        "SeriesInstanceUID": image.SeriesInstanceUID, "SOPInstanceUID": image.SOPInstanceUID,
        "SOPClassUID": image.SOPClassUID, "PatientID": image.PatientID,
        "PatientName": str(image.PatientName), "PatientBirthDate": image.PatientBirthDate,
        "PatientSex": image.PatientSex, "StudyDate": image.StudyDate,
        "StudyTime": image.StudyTime, "StudyID": image.StudyID,
        "AccessionNumber": image.AccessionNumber, "ReferringPhysicianName": "",
        "Modality": "CT", "SeriesNumber": 1, "InstanceNumber": 2, "Rows": SIZE,
        "Columns": SIZE, "PixelSpacing": list(SPACING),
        "ImagePositionPatient": [float(v) for v in image.ImagePositionPatient],
        "ImageOrientationPatient": [1, 0, 0, 0, 1, 0],
        "FrameOfReferenceUID": image.FrameOfReferenceUID, "SliceThickness": 1.0,
    }
    area = {"areaUnit": "mm\u00b2", "modalityUnit": "HU"}
    annotations = [
        {"tool": "Length", "points": [[2, 3], [9, 7]], "stats": {"length": 6.0, "unit": "mm"}},
        {"tool": "Bidirectional", "points": [[3, 8], [13, 8], [8, 6], [8, 10]],
         "stats": {"length": 7.5, "width": 3.0, "unit": "mm"}},
        {"tool": "RectangleROI", "points": [[2, 2], [6, 2], [2, 5], [6, 5]],
         "stats": {"area": 6.75, "mean": 40, "stdDev": 3, "max": 90, "perimeter": 10.5,
                   **area}},
        {"tool": "EllipticalROI", "points": [[8, 5], [8, 11], [5, 8], [11, 8]],
         "stats": {"area": 15.9, "mean": 10, "stdDev": 2, "max": 50, "min": -10, **area}},
        {"tool": "CircleROI", "points": [[8, 8], [10, 8]],
         "stats": {"area": 7.07, "radius": 1.5, "mean": 5, "stdDev": 1, "max": 9, "min": 1,
                   "radiusUnit": "mm", **area}},
        {"tool": "Probe", "points": [[7, 7]], "stats": {"value": 33}},
        {"tool": "ArrowAnnotate", "points": [[1, 12], [4, 14]], "text": "nodule"},
        {"tool": "PlanarFreehandROI", "points": [[3, 3], [9, 2], [12, 9], [4, 12], [3, 3]],
         "closed": True, "stats": {"area": 40.5, "mean": 1, "stdDev": 1, "max": 4, **area}},
    ]
    for annotation in annotations:
        annotation["imageId"] = image_id
    return {"images": [header], "annotations": annotations, "options": {}}


def node_ready() -> str | None:
    """Why the node package cannot run here, or None when it can."""
    if shutil.which("node") is None:
        return "node is not installed (apt-get install nodejs npm)"
    if not (JS / "node_modules" / "@cornerstonejs" / "adapters").is_dir():
        return f"the node packages are not installed: run npm ci in {JS}"
    return None


def cornerstone_report(slices: list[Dataset], folder: Path, work: Path) -> Path:
    """The SR Cornerstone3D's generateReport writes for one annotation of each tool."""
    spec = work / "cornerstone-spec.json"
    spec.write_text(json.dumps(cornerstone_spec(slices)), encoding="utf-8")
    out = folder / "dcmjs-cornerstone3d.dcm"
    subprocess.run(["node", str(JS / "cornerstone.mjs"), "generate-report", str(spec),
                    str(out)], check=True, capture_output=True, text=True, timeout=300)
    return out


# -- dcmqi ---------------------------------------------------------------------------------

_CODE = dict[str, str]


def _code(value: str, scheme: str, meaning: str) -> _CODE:
    return {"CodeValue": value, "CodingSchemeDesignator": scheme, "CodeMeaning": meaning}


DCMQI_LIVER_EXAMPLE: dict[str, object] = {
    "SeriesDescription": "Measurements", "SeriesNumber": "1001", "InstanceNumber": "1",
    "compositeContext": ["liver.dcm"], "imageLibrary": ["01.dcm", "02.dcm", "03.dcm"],
    "observerContext": {"ObserverType": "PERSON", "PersonObserverName": "Reader1"},
    "VerificationFlag": "VERIFIED", "CompletionFlag": "COMPLETE",
    "activitySession": "1", "timePoint": "1",
    "Measurements": [{
        "TrackingIdentifier": "Measurements group 1", "ReferencedSegment": 1,
        "SourceSeriesForImageSegmentation": "",
        "segmentationSOPInstanceUID": "",
        "Finding": _code("T-D0060", "SRT", "Organ"),
        "FindingSite": _code("T-62000", "SRT", "Liver"),
        "measurementItems": [
            {"value": "37.3289", "quantity": _code("112031", "DCM", "Attenuation Coefficient"),
             "units": _code("[hnsf'U]", "UCUM", "Hounsfield unit"),
             "derivationModifier": _code("R-00317", "SRT", "Mean"),
             "measurementModifiers": [
                 {"modifier": _code("A.13", "99TEST", "Preprocessing operation"),
                  "modifierValue": _code("A.14", "99TEST", "Top secret filter")}],
             "measurementDerivationParameters": [
                 {"derivationParameter": _code("A.15", "99TEST", "Parameter A"),
                  "derivationParameterValue": "9.91",
                  "derivationParameterUnits": _code("A.16", "99TEST", "Cats")}],
             "measurementPopulationDescription": "Elves of the Black Forest"},
            {"value": "221", "quantity": _code("112031", "DCM", "Attenuation Coefficient"),
             "units": _code("[hnsf'U]", "UCUM", "Hounsfield unit"),
             "derivationModifier": _code("G-A437", "SRT", "Maximum")},
            {"value": "70361.9", "quantity": _code("G-D705", "SRT", "Volume"),
             "units": _code("mm3", "UCUM", "cubic millimeter")},
        ],
    }],
}
"""dcmqi's doc/examples/sr-tid1500-ct-liver-example.json, shortened (one item of each
kind kept) and pointed at the synthetic files: the SEG, its source series and instance.
Its ``measurementNumProperties`` are left out: dcmqi writes them as NUM HAS PROPERTIES NUM
under the measurement, which pixelmed's TID 1419 reports as an error."""

DCMQI_QUALITATIVE_EXAMPLE: dict[str, object] = {
    "SeriesDescription": "Measurements", "SeriesNumber": "1001", "InstanceNumber": "1",
    "compositeContext": ["liver.dcm"], "imageLibrary": ["01.dcm", "02.dcm", "03.dcm"],
    "observerContext": {"ObserverType": "PERSON", "PersonObserverName": "Reader1"},
    "VerificationFlag": "VERIFIED", "CompletionFlag": "COMPLETE",
    "activitySession": "1", "timePoint": "1",
    "Measurements": [{
        "TrackingIdentifier": "Measurements group 1", "ReferencedSegment": 1,
        "SourceSeriesForImageSegmentation": "", "segmentationSOPInstanceUID": "",
        "MeasurementMethod": _code("126401", "DCM", "SUV body weight calculation method"),
        "Finding": _code("M-80003", "SRT", "Neoplasm, Primary"),
        "FindingSite": _code("T-00317", "SRT", "pharyngeal tonsil (adenoid)"),
        "measurementItems": [
            {"value": "1.96772", "quantity": _code("126401", "DCM", "SUVbw"),
             "units": _code("{SUVbw}g/ml", "UCUM", "Standardized Uptake Value body weight"),
             "derivationModifier": _code("R-00317", "SRT", "Mean"),
             "measurementAlgorithmIdentification": {
                 "AlgorithmName": "3D Slicer Editor effect", "AlgorithmVersion": "4.6"}}],
        "qualitativeEvaluations": [
            {"conceptCode": _code("123", "99TEST", "Tremendousness"), "conceptValue": "Bad"},
            {"conceptCode": _code("123", "99TEST", "Tremendousness"),
             "conceptValue": _code("124", "99TEST", "Absent")}],
    }],
}
"""dcmqi's doc/examples/sr-tid1500-qualitative.json (without its RWVM reference)."""


def tid1500writer() -> Path | None:
    found = shutil.which("tid1500writer")
    if found is None:
        import sys  # noqa: PLC0415

        candidate = Path(sys.executable).parent / "tid1500writer"
        return candidate if candidate.is_file() else None
    return Path(found)


def dcmqi_report(
    example: dict[str, object], name: str, slices: list[Dataset], seg: Dataset, folder: Path,
    work_root: Path,
) -> Path:
    """Run dcmqi's tid1500writer on its example JSON with the synthetic images and SEG."""
    binary = tid1500writer()
    assert binary is not None
    work = work_root / f"dcmqi-{name}"
    (work / "images").mkdir(parents=True)
    (work / "context").mkdir()
    for index, image in enumerate(slices, 1):
        image.save_as(work / "images" / f"{index:02d}.dcm", enforce_file_format=True)
    seg.save_as(work / "context" / "liver.dcm", enforce_file_format=True)
    document = copy.deepcopy(example)
    group = document["Measurements"][0]  # type: ignore[index]
    group["SourceSeriesForImageSegmentation"] = slices[0].SeriesInstanceUID
    group["segmentationSOPInstanceUID"] = seg.SOPInstanceUID
    (work / "meta.json").write_text(json.dumps(document), encoding="utf-8")
    out = folder / f"dcmqi-{name}.dcm"
    subprocess.run([str(binary), "--inputMetadata", str(work / "meta.json"),
                    "--inputImageLibraryDirectory", str(work / "images"),
                    "--inputCompositeContextDirectory", str(work / "context"),
                    "--outputDICOM", str(out)],
                   check=True, capture_output=True, text=True, timeout=300)
    return out


# -- the whole corpus ----------------------------------------------------------------------


@dataclass(frozen=True)
class Corpus:
    folder: Path
    """The SRs made here (nothing else: the writers' inputs are in a sibling folder)."""
    files: dict[str, Path]
    """Corpus file name -> path."""
    missing: dict[str, str]
    """Writer -> why its files could not be made here (a skip reason)."""


def make_corpus(root: Path) -> Corpus:
    """Every corpus file that can be made on this machine, in ``root/sr`` (the inputs the
    writers read, images, SEG and specs, in ``root/work``)."""
    folder, work = root / "sr", root / "work"
    folder.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    slices = ct_slices()
    seg = segmentation(slices)
    files: dict[str, Path] = {}
    missing: dict[str, str] = {}
    for name, make in HIGHDICOM.items():
        dataset = make(slices, seg) if make is highdicom_segments else make(slices)
        dataset.save_as(folder / name, enforce_file_format=True)
        files[name] = folder / name
    why = node_ready()
    if why is None:
        files["dcmjs-cornerstone3d.dcm"] = cornerstone_report(slices, folder, work)
    else:
        missing["dcmjs"] = why
    if tid1500writer() is None:
        missing["dcmqi"] = "dcmqi's tid1500writer is not installed (pip install dcmqi)"
    else:
        for name, example in (("liver", DCMQI_LIVER_EXAMPLE),
                              ("qualitative", DCMQI_QUALITATIVE_EXAMPLE)):
            files[f"dcmqi-{name}.dcm"] = dcmqi_report(example, name, slices, seg, folder,
                                                       work)
    if WILD.is_file():
        files["sr-wild-ccc2018.dcm"] = WILD
    else:
        missing["sr-wild"] = f"the real dcmjs SR is not at {WILD}"
    return Corpus(folder, files, missing)


def read(path: Path) -> Dataset:
    return dcmread(path)
