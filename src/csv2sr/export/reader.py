"""Read one TID 1500 SR file into :class:`~csv2sr.export.model.Measurement` records.

Every encoding of a measured line seen in the wild is recognised:

* PS3.16 TID 1501 groups whose NUM (TID 300) is INFERRED FROM a SCOORD that is SELECTED FROM
  an IMAGE (TID 300 row 12, TID 320): csv2sr, the 2018 TCIA reference, OHIF/dcmjs;
* PS3.16 TID 1410 groups whose NUMs share the group-level Image Region SCOORD (TID 1410
  row 7): highdicom's ``PlanarROIMeasurementsAndQualitativeEvaluations``, Imaging Data Commons;
* by-value or by-reference (PS3.3 C.17.3.2.2, Referenced Content Item Identifier) links;
* SNOMED CT and the deprecated SNOMED-RT codes (PS3.16 Annex O), compared with
  :func:`csv2sr.dicom.codes.code_key`; with or without Content Template Sequence identifiers.

What is not understood becomes a :class:`~csv2sr.export.model.Problem` naming the file and
the content item (numbered as dcsrdump does: ``1.5.1.4``); nothing is skipped silently.
"""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from pydicom import Dataset, dcmread
from pydicom.dataelem import RawDataElement
from pydicom.errors import InvalidDicomError
from pydicom.sr.coding import Code

from csv2sr.dicom.codes import Codes, code_key
from csv2sr.dicom.reading import NotQuickError, read_items
from csv2sr.dicom.tree import ROOT_ID, children, resolve
from csv2sr.export.model import (
    CodedValue,
    FurtherRegion,
    Measurement,
    Problem,
    ProblemKind,
    Qualitative,
)

__all__ = ["FileResult", "read_dataset", "read_file"]

log = logging.getLogger(__name__)

_NUMERIC_VALUE = 0x0040A30A
_CONTEXT_RELATIONSHIPS = frozenset(
    {"HAS OBS CONTEXT", "HAS CONCEPT MOD", "HAS PROPERTIES", "HAS ACQ CONTEXT"}
)
_COORDINATE_TYPES = frozenset({"SCOORD", "SCOORD3D"})


@functools.lru_cache(maxsize=4096)
def _key(value: str, scheme: str) -> tuple[str, str]:
    """The comparison identity of a code, SNOMED-RT mapped to SNOMED CT (PS3.16 Annex O)."""
    return code_key(Code(value, scheme, "-"))


def _code_identity(code: Code) -> tuple[str, str]:
    return _key(code.value, code.scheme_designator)


_IMAGING_MEASUREMENTS = _code_identity(Codes.IMAGING_MEASUREMENTS)
_MEASUREMENT_GROUP = _code_identity(Codes.MEASUREMENT_GROUP)
_IMAGE_LIBRARY = _code_identity(Codes.IMAGE_LIBRARY)
_TRACKING_IDENTIFIER = _code_identity(Codes.TRACKING_IDENTIFIER)
_TRACKING_UID = _code_identity(Codes.TRACKING_UID)
_FINDING = _code_identity(Codes.FINDING)
_FINDING_SITE = _code_identity(Codes.FINDING_SITE)
_PROCEDURE_REPORTED = _code_identity(Codes.PROCEDURE_REPORTED)
_OBSERVER_NAME = _code_identity(Codes.PERSON_OBSERVER_NAME)
_OBSERVER_LOGIN = _code_identity(Codes.PERSON_OBSERVER_LOGIN_NAME)
_OBSERVER_ROLE = _code_identity(Codes.PERSON_OBSERVER_ROLE)
_DEVICE_UID = _code_identity(Codes.DEVICE_OBSERVER_UID)
_DEVICE_NAME = _code_identity(Codes.DEVICE_OBSERVER_NAME)


@dataclass(frozen=True, slots=True)
class FileResult:
    """What one file gave: its measurements and its problems."""

    path: str
    measurements: tuple[Measurement, ...] = ()
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True, slots=True)
class _Observer:
    """PS3.16 TID 1002 person observer (rows 1-4); a group may override the document's."""

    name: str = ""
    login_name: str = ""
    role: CodedValue | None = None
    device_uid: str = ""
    device_name: str = ""


@dataclass(frozen=True, slots=True)
class _Geometry:
    """A SCOORD (TID 320 row 1, PS3.3 C.18.6) or SCOORD3D (C.18.9) and what it is on."""

    coordinate_type: str = ""
    graphic_type: str = ""
    points: tuple[float, ...] = ()
    sop_class_uid: str = ""
    sop_instance_uid: str = ""
    frame_numbers: str = ""
    frame_of_reference_uid: str = ""
    segment_number: str = ""


@dataclass(slots=True)
class _Context:
    """The file being read: header values, evidence, and the problems found so far."""

    path: str
    root: Dataset
    header: dict[str, str]
    series_of_instance: dict[str, str]
    problems: list[Problem] = field(default_factory=list)

    def problem(self, item: str, message: str, kind: ProblemKind) -> None:
        self.problems.append(Problem(self.path, item, message, kind))


# -- small readers of content items (PS3.3 C.17.3) ------------------------------------


def _coded(sequence: Sequence[Dataset] | None) -> CodedValue | None:
    if not sequence:
        return None
    code = sequence[0]
    return CodedValue(
        str(code.get("CodeValue") or code.get("LongCodeValue") or code.get("URNCodeValue", "")),
        str(code.get("CodingSchemeDesignator", "")),
        str(code.get("CodeMeaning", "")),
    )


def _concept(item: Dataset) -> CodedValue | None:
    return _coded(item.get("ConceptNameCodeSequence"))


def _identity(code: CodedValue | None) -> tuple[str, str] | None:
    return None if code is None else _key(code.value, code.scheme)


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("ascii", "replace").rstrip(" \x00")
    return str(value)


def _raw_string(item: Dataset, tag: int) -> str:
    """An element's value exactly as stored (PS3.5 6.2: DS/TM kept as written)."""
    if tag not in item:
        return ""
    element = item.get_item(tag)
    if isinstance(element, RawDataElement):
        return _text(element.value).strip()
    return _text(element.value).strip()


def _label(code: CodedValue | None) -> str:
    return f"'{code.meaning}'" if code is not None and code.meaning else "(unnamed)"


def _describe(item: Dataset) -> str:
    relationship = item.get("RelationshipType", "?")
    return f"{relationship} {item.get('ValueType', '?')} {_label(_concept(item))}"


def _declared_template(item: Dataset) -> str:
    """PS3.3 C.18.8: the TemplateIdentifier of the Content Template Sequence, if any."""
    templates = item.get("ContentTemplateSequence")
    if not templates:
        return ""
    return str(templates[0].get("TemplateIdentifier", ""))


def _numbers(value: object, kind: type[Any] = int) -> list[Any]:
    """A multi-valued numeric element (VM 1-n) as a list, whatever pydicom made of it."""
    if value is None or value == "":
        return []
    if isinstance(value, int | float):
        return [kind(value)]
    return [kind(v) for v in value]  # type: ignore[attr-defined]


def _target(item: Dataset, ctx: _Context) -> Dataset | None:
    """The content item itself, or the one it references (by-reference relationship)."""
    if "ReferencedContentItemIdentifier" in item and "ValueType" not in item:
        return resolve(ctx.root, _numbers(item.get("ReferencedContentItemIdentifier")))
    return item


# -- document level: header and TID 1500 rows 1-4 --------------------------------------


def _header(ds: Dataset) -> dict[str, str]:
    """Header attributes copied to every row (PS3.3 C.7.1.1, C.7.2.1, C.7.3.1, C.12.1, C.17.2)."""
    return {
        "sop_instance_uid": _text(ds.get("SOPInstanceUID")),
        "series_instance_uid": _text(ds.get("SeriesInstanceUID")),
        "study_instance_uid": _text(ds.get("StudyInstanceUID")),
        "patient_id": _text(ds.get("PatientID")),
        "instance_number": _raw_string(ds, 0x00200013),
        "study_date": _raw_string(ds, 0x00080020),
        "study_time": _raw_string(ds, 0x00080030),
        "content_date": _raw_string(ds, 0x00080023),
        "content_time": _raw_string(ds, 0x00080033),
        "timezone_offset": _raw_string(ds, 0x00080201),
    }


def _evidence(ds: Dataset) -> dict[str, str]:
    """SOP Instance -> Series Instance UID from the evidence sequences (PS3.3 C.17.2.3)."""
    series_of: dict[str, str] = {}
    for keyword in ("CurrentRequestedProcedureEvidenceSequence", "PertinentOtherEvidenceSequence"):
        for study in ds.get(keyword) or []:
            for series in study.get("ReferencedSeriesSequence") or []:
                uid = _text(series.get("SeriesInstanceUID"))
                for sop in series.get("ReferencedSOPSequence") or []:
                    series_of.setdefault(_text(sop.get("ReferencedSOPInstanceUID")), uid)
    return series_of


def _observer(items: Iterable[Dataset], base: _Observer) -> _Observer:
    """PS3.16 TID 1002 rows 1-4 (person) and TID 1004 rows 1-2 (device), read from HAS OBS
    CONTEXT items; absent fields inherit."""
    name, login, role = base.name, base.login_name, base.role
    device_uid, device_name = base.device_uid, base.device_name
    for item in items:
        if item.get("RelationshipType") != "HAS OBS CONTEXT":
            continue
        concept = _identity(_concept(item))
        if concept == _OBSERVER_NAME:
            name = _text(item.get("PersonName"))
        elif concept == _OBSERVER_LOGIN:
            login = _text(item.get("TextValue"))
        elif concept == _OBSERVER_ROLE:
            role = _coded(item.get("ConceptCodeSequence"))
        elif concept == _DEVICE_UID:
            device_uid = _text(item.get("UID"))
        elif concept == _DEVICE_NAME:
            device_name = _text(item.get("TextValue"))
    return _Observer(name, login, role, device_uid, device_name)


def _truncation(ds: Dataset, path: str) -> str:
    """Why the file is cut short, or "" (pydicom reads a truncated file without error)."""
    tags = list(ds.keys())
    if not tags:
        return "the file holds no data set"
    last = ds.get_item(tags[-1])
    if not isinstance(last, RawDataElement) or last.length == 0xFFFFFFFF:
        return ""
    size = Path(path).stat().st_size
    if last.value_tell + last.length > size:
        return (f"truncated: element {last.tag} needs {last.length} bytes from offset "
                f"{last.value_tell}, the file ends at {size}")
    return ""


def read_file(path: str | Path) -> FileResult:
    """Read one file; never raises for bad input (the problem is returned instead).

    pydicom's warnings about values it reads (an invalid UI, a value too long for its VR)
    are not shown: what export cannot use is reported as a :class:`Problem`, and values
    are checked by ``csv2sr validate``.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _read_file(str(path))


def _read_file(name: str) -> FileResult:
    quick = _read_quickly(name)
    if quick is not None:
        return quick
    try:
        ds = dcmread(name, force=False)
    except InvalidDicomError:
        return FileResult(name, problems=(Problem(
            name, "", "not a DICOM file (no DICM prefix, PS3.10 7.1)", ProblemKind.UNREADABLE),))
    except Exception as exc:  # any parse failure of untrusted input is that file's problem
        return FileResult(name, problems=(Problem(
            name, "", f"cannot be read: {type(exc).__name__}: {exc}", ProblemKind.UNREADABLE),))
    truncated = _truncation(ds, name)
    if truncated:
        return FileResult(name, problems=(Problem(name, "", truncated, ProblemKind.UNREADABLE),))
    try:
        return read_dataset(ds, name)
    except RecursionError:
        return FileResult(name, problems=(Problem(
            name, "", "the content tree is nested too deeply to be read (PS3.3 C.17.3 sets "
            "no depth limit; pydicom parses nested sequences recursively)",
            ProblemKind.UNREADABLE),))
    except Exception as exc:  # a malformed tree must not stop the other files
        log.debug("reading %s failed", name, exc_info=True)
        return FileResult(name, problems=(Problem(
            name, "", f"malformed SR content: {type(exc).__name__}: {exc}",
            ProblemKind.UNREADABLE),))


def _read_quickly(name: str) -> FileResult | None:
    """The file read by :func:`csv2sr.dicom.reading.read_items` (pydicom's values without
    its Dataset: an :class:`~csv2sr.dicom.reading.Item` answers every call this module
    makes of one), or None: a file that reader does not take, that holds no data set, or
    whose reading raises, is read again with ``dcmread``, which says what is wrong with it.
    The reader takes only a file it reads to its last byte: it is never truncated."""
    try:
        with open(name, "rb") as handle:
            data = handle.read()
        items = read_items(data)
        if not len(items):
            return None
        return read_dataset(cast(Dataset, items), name)
    except NotQuickError:
        return None
    except Exception:  # OSError, a value pydicom refuses: dcmread's turn, it says what
        log.debug("%s: read again with dcmread", name, exc_info=True)
        return None


def read_dataset(ds: Dataset, path: str) -> FileResult:
    """Every NUM measurement of a TID 1500 document (PS3.16 TID 1500 row 6, its groups)."""
    if ds.get("ValueType") != "CONTAINER" or "ContentSequence" not in ds:
        return FileResult(path, problems=(Problem(
            path, "", "not a structured report: no SR content tree (PS3.3 C.17.3)",
            ProblemKind.UNRECOGNISED),))
    ctx = _Context(path, ds, _header(ds), _evidence(ds))
    observer = _observer(ds.get("ContentSequence"), _Observer())
    procedure: CodedValue | None = None
    measurements: list[Measurement] = []
    found = False
    for item_id, item in children(ds):
        concept = _identity(_concept(item))
        if concept == _PROCEDURE_REPORTED and procedure is None:
            procedure = _coded(item.get("ConceptCodeSequence"))
        elif concept == _IMAGING_MEASUREMENTS and item.get("ValueType") == "CONTAINER":
            found = True
            if not item.get("ContentSequence"):
                ctx.problem(item_id, "Imaging Measurements holds no measurement group: "
                            "nothing to export", ProblemKind.NOTE)
            for group_id, group in children(item, item_id):
                if (group.get("ValueType") == "CONTAINER"
                        and _identity(_concept(group)) == _MEASUREMENT_GROUP):
                    measurements.extend(_group(group, group_id, observer, procedure, ctx))
                else:
                    ctx.problem(group_id, f"{_describe(group)} is not a Measurement Group "
                                "(TID 1501/1410) in Imaging Measurements",
                                ProblemKind.UNRECOGNISED)
        elif item.get("RelationshipType") == "CONTAINS" and concept != _IMAGE_LIBRARY:
            ctx.problem(item_id, f"{_describe(item)} is not exported (only the measurements "
                        "of Imaging Measurements are)", ProblemKind.NOTE)
    if not found:
        ctx.problem(ROOT_ID, "no Imaging Measurements container (TID 1500 row 6): "
                    "not a measurement report", ProblemKind.UNRECOGNISED)
    return FileResult(path, tuple(measurements), tuple(ctx.problems))


# -- measurement groups: TID 1501, TID 1410 and TID 1411 ---------------------------------


@dataclass(slots=True)
class _Group:
    tracking_identifier: str = ""
    tracking_uid: str = ""
    finding: CodedValue | None = None
    finding_site: CodedValue | None = None
    region: _Geometry | None = None
    region_item: str = ""
    further: list[_Geometry] = field(default_factory=list)
    """The regions after the first (TID 1411 regions on several images)."""
    method: CodedValue | None = None
    algorithm: tuple[str, str] = ("", "")
    numbers: list[tuple[str, Dataset]] = field(default_factory=list)
    qualitative: list[Qualitative] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _NumDetails:
    """What TID 300 says of one NUM besides its value: unit, geometry, site, modifiers."""

    value: str = ""
    unit: CodedValue | None = None
    geometry: _Geometry | None = None
    site: CodedValue | None = None
    derivation: CodedValue | None = None
    method: CodedValue | None = None
    algorithm: tuple[str, str] = ("", "")


def _group(
    group: Dataset, group_id: str, observer: _Observer, procedure: CodedValue | None,
    ctx: _Context,
) -> list[Measurement]:
    """PS3.16 TID 1501 / 1410 / 1411: the group's context and its NUMs; a group without
    NUM (a region-only box or point, a segment, qualitative evaluations) is one row."""
    found = _Group()
    for item_id, item in children(group, group_id):
        _group_item(item, item_id, found, ctx)
    template = _declared_template(group) or ("1410" if found.region is not None else "1501")
    group_observer = _observer((c for _, c in children(group, group_id)), observer)

    def record(item_id: str, number: Dataset | None, details: _NumDetails) -> Measurement:
        return _record(ctx, observer=group_observer, procedure=procedure, template=template,
                       group_id=group_id, item_id=item_id, group=found, number=number,
                       details=details)

    if not found.numbers:
        return [record(group_id, None, _NumDetails(
            geometry=found.region, method=found.method, algorithm=found.algorithm))]
    rows = [record(item_id, number, _measurement(number, item_id, found, ctx))
            for item_id, number in found.numbers]
    if found.region is not None and not any(r.item == "" or _uses_region(r, found.region)
                                            for r in rows):
        ctx.problem(found.region_item, "the group's region is not exported: every NUM of "
                    "the group has its own SCOORD", ProblemKind.NOTE)
    return rows


def _uses_region(row: Measurement, region: _Geometry) -> bool:
    return (row.referenced_sop_instance_uid, row.points) == (region.sop_instance_uid,
                                                             region.points)


_SEGMENT_REFERENCES = frozenset({_code_identity(Codes.REFERENCED_SEGMENT),
                                 _code_identity(Codes.REFERENCED_SEGMENTATION_FRAME)})
_SEGMENT_SOURCES = frozenset({_code_identity(Codes.SOURCE_IMAGE_FOR_SEGMENTATION),
                              _code_identity(Codes.SOURCE_SERIES_FOR_SEGMENTATION)})
_METHOD = _code_identity(Codes.MEASUREMENT_METHOD)
_DERIVATION = _code_identity(Codes.DERIVATION)
_ALGORITHM_NAME = _code_identity(Codes.ALGORITHM_NAME)
_ALGORITHM_VERSION = _code_identity(Codes.ALGORITHM_VERSION)


def _group_item(item: Dataset, item_id: str, found: _Group, ctx: _Context) -> None:
    """Sort one child of a measurement group into the group's fields."""
    relationship = item.get("RelationshipType")
    target = _target(item, ctx)
    if target is None:
        ctx.problem(item_id, "by-reference item points to no content item",
                    ProblemKind.UNRECOGNISED)
        return
    item = target
    value_type = item.get("ValueType")
    concept = _identity(_concept(item))
    if value_type == "NUM" and relationship == "CONTAINS":
        found.numbers.append((item_id, item))
    elif concept == _TRACKING_IDENTIFIER:
        found.tracking_identifier = _text(item.get("TextValue"))
    elif concept == _TRACKING_UID:
        found.tracking_uid = _text(item.get("UID"))
    elif concept == _FINDING and value_type == "CODE":
        found.finding = _coded(item.get("ConceptCodeSequence"))
    elif concept == _FINDING_SITE and value_type == "CODE":
        found.finding_site = _coded(item.get("ConceptCodeSequence"))
    elif concept == _METHOD and value_type == "CODE":
        found.method = _coded(item.get("ConceptCodeSequence"))
    elif concept in (_ALGORITHM_NAME, _ALGORITHM_VERSION) and value_type == "TEXT":
        name, version = found.algorithm
        value = _text(item.get("TextValue"))
        found.algorithm = (value, version) if concept == _ALGORITHM_NAME else (name, value)
    elif value_type in _COORDINATE_TYPES and relationship == "CONTAINS":
        # TID 1410 Image Region, TID 1411 Volume Surface / regions: what NUMs are made on
        _add_region(found, _geometry(item, item_id, ctx), item_id, ctx)
    elif concept in _SEGMENT_REFERENCES and value_type in {"IMAGE", "COMPOSITE"}:
        _add_region(found, _segment(item), item_id, ctx)
    elif relationship == "CONTAINS" and value_type in {"CODE", "TEXT"}:
        found.qualitative.append(Qualitative(
            item_id, _concept(item) or CodedValue("", "", ""), str(value_type),
            _coded(item.get("ConceptCodeSequence")), _text(item.get("TextValue"))))
    elif concept in _SEGMENT_SOURCES:
        ctx.problem(item_id, f"{_label(_concept(item))} is not exported (the SEG it "
                    "belongs to is: referenced_sop_instance_uid)", ProblemKind.NOTE)
    elif relationship in _CONTEXT_RELATIONSHIPS:
        if item.get("RelationshipType") != "HAS OBS CONTEXT":
            ctx.problem(item_id, f"{_describe(item)} is not exported (no column holds it)",
                        ProblemKind.NOTE)
    elif relationship == "CONTAINS" and value_type in {"IMAGE", "COMPOSITE", "UIDREF"}:
        ctx.problem(item_id, f"{_describe(item)} is not exported (no column holds it)",
                    ProblemKind.NOTE)
    else:
        ctx.problem(item_id, f"unexpected {_describe(item)} in a measurement group",
                    ProblemKind.UNRECOGNISED)


def _add_region(found: _Group, region: _Geometry | None, item_id: str, ctx: _Context) -> None:
    """The group's region; a second one (TID 1411 regions on several images, several
    surfaces) cannot be held by one row: a note."""
    if found.region is None:
        found.region, found.region_item = region, item_id
    elif region is not None:
        found.further.append(region)
        ctx.problem(item_id, "a second region of the same group is not exported (the row "
                    "holds the first)", ProblemKind.NOTE)


def _segment(item: Dataset) -> _Geometry:
    """TID 1411 Referenced Segment / TID 1410 Referenced Segmentation Frame: the SEG, the
    segment number (0062,000B) and frames (PS3.3 Table 10-11)."""
    sop_class, instance, frames = _referenced_image(item)
    references = item.get("ReferencedSOPSequence") or []
    segment = _numbers(references[0].get("ReferencedSegmentNumber")) if references else []
    return _Geometry(sop_class_uid=sop_class, sop_instance_uid=instance,
                     frame_numbers=frames,
                     segment_number=" ".join(str(n) for n in segment))


def _measurement(number: Dataset, item_id: str, group: _Group, ctx: _Context) -> _NumDetails:
    """PS3.16 TID 300: the value as written (row 1), method (row 3), derivation (row 4),
    finding site (row 5, overriding the group's), algorithm (TID 4019), and its SCOORD
    (row 12) or else the group's region."""
    values = number.get("MeasuredValueSequence")
    value = ""
    unit: CodedValue | None = None
    if values:
        value = _raw_string(values[0], _NUMERIC_VALUE)
        unit = _coded(values[0].get("MeasurementUnitsCodeSequence"))
    if not value:
        # PS3.3 C.18.1: Measured Value Sequence is Type 2 (e.g. a dcmjs "Center" point)
        qualifier = _coded(number.get("NumericValueQualifierCodeSequence"))
        why = f" (qualifier: {qualifier.meaning})" if qualifier else ""
        ctx.problem(item_id, f"NUM {_label(_concept(number))} has no measured value{why}: "
                    "exported with an empty value", ProblemKind.NOTE)
    geometry: _Geometry | None = None
    site = derivation = method = None
    name, version = group.algorithm
    for child_id, child in children(number, item_id):
        target = _target(child, ctx)
        relationship = child.get("RelationshipType")
        if target is None:
            ctx.problem(child_id, "by-reference item points to no content item",
                        ProblemKind.UNRECOGNISED)
            continue
        value_type = target.get("ValueType")
        concept = _identity(_concept(target))
        if relationship == "INFERRED FROM" and value_type in _COORDINATE_TYPES:
            if geometry is None:
                geometry = _geometry(target, child_id, ctx)
            else:
                ctx.problem(child_id, "a second SCOORD for the same NUM is not exported",
                            ProblemKind.NOTE)
        elif relationship == "INFERRED FROM" and value_type == "IMAGE" and geometry is None:
            geometry = _image_only(target)
        elif concept == _FINDING_SITE and value_type == "CODE":
            site = _coded(target.get("ConceptCodeSequence"))
        elif concept == _DERIVATION and value_type == "CODE":
            derivation = _coded(target.get("ConceptCodeSequence"))
        elif concept == _METHOD and value_type == "CODE":
            method = _coded(target.get("ConceptCodeSequence"))
        elif concept == _ALGORITHM_NAME and value_type == "TEXT":
            name = _text(target.get("TextValue"))
        elif concept == _ALGORITHM_VERSION and value_type == "TEXT":
            version = _text(target.get("TextValue"))
        elif relationship == "HAS OBS CONTEXT":
            pass  # observer (TID 1002/1004) of this NUM: read with the group's observer
        else:
            ctx.problem(child_id, f"{_describe(target)} under a NUM is not exported (no "
                        "column holds it)", ProblemKind.NOTE)
    return _NumDetails(value, unit, geometry if geometry is not None else group.region,
                       site, derivation, method or group.method, (name, version))


def _referenced_image(item: Dataset) -> tuple[str, str, str]:
    references = item.get("ReferencedSOPSequence") or []
    if not references:
        return "", "", ""
    sop = references[0]
    frames = sop.get("ReferencedFrameNumber")
    if frames is None or frames == "":
        frame_text = ""
    elif isinstance(frames, str | int):
        frame_text = str(frames)
    else:
        frame_text = " ".join(str(f) for f in frames)
    return (_text(sop.get("ReferencedSOPClassUID")),
            _text(sop.get("ReferencedSOPInstanceUID")), frame_text)


def _image_only(item: Dataset) -> _Geometry:
    sop_class, instance, frames = _referenced_image(item)
    return _Geometry(sop_class_uid=sop_class, sop_instance_uid=instance, frame_numbers=frames)


def _geometry(item: Dataset, item_id: str, ctx: _Context) -> _Geometry | None:
    """PS3.3 C.18.6 (SCOORD: image pixels, SELECTED FROM an IMAGE, TID 320 row 2) or
    C.18.9 (SCOORD3D: patient coordinates in a Frame of Reference)."""
    value_type = str(item.get("ValueType"))
    width = 3 if value_type == "SCOORD3D" else 2
    points = tuple(_numbers(item.get("GraphicData"), float))
    if not points or len(points) % width:
        ctx.problem(item_id, f"{value_type} Graphic Data holds {len(points)} values, "
                    f"not a whole number of {width}-D points", ProblemKind.UNRECOGNISED)
        return None
    graphic_type = _text(item.get("GraphicType"))
    if value_type == "SCOORD3D":
        return _Geometry(value_type, graphic_type, points,
                         frame_of_reference_uid=_text(item.get("ReferencedFrameOfReferenceUID")))
    for child_id, child in children(item, item_id):
        target = _target(child, ctx)
        if (child.get("RelationshipType") == "SELECTED FROM" and target is not None
                and target.get("ValueType") == "IMAGE"):
            sop_class, instance, frames = _referenced_image(target)
            return _Geometry(value_type, graphic_type, points, sop_class, instance, frames)
        ctx.problem(child_id, f"{_describe(child)} under a SCOORD is not "
                    "understood", ProblemKind.UNRECOGNISED)
    ctx.problem(item_id, "SCOORD is SELECTED FROM no IMAGE (TID 320 row 2): the image its "
                "points are on is unknown", ProblemKind.UNRECOGNISED)
    return None


def _series_of(shape: _Geometry, series_of: dict[str, str]) -> str:
    """The series of the image a SCOORD is on (the evidence, PS3.3 C.17.2.3); for an
    SCOORD3D, which names no image (PS3.3 C.18.9), the series of the evidence when it is
    one series (as csv2sr writes a point in patient coordinates: images.volume)."""
    if shape.coordinate_type == "SCOORD3D":
        series = set(series_of.values())
        return series.pop() if len(series) == 1 else ""
    return series_of.get(shape.sop_instance_uid, "")


def _record(
    ctx: _Context, *, observer: _Observer, procedure: CodedValue | None, template: str,
    group_id: str, item_id: str, group: _Group, number: Dataset | None,
    details: _NumDetails,
) -> Measurement:
    concept = (_concept(number) if number is not None else None) or CodedValue("", "", "")
    shape = details.geometry if details.geometry is not None else _Geometry()
    header = ctx.header
    return Measurement(
        file=ctx.path,
        sop_instance_uid=header["sop_instance_uid"],
        series_instance_uid=header["series_instance_uid"],
        study_instance_uid=header["study_instance_uid"],
        patient_id=header["patient_id"],
        instance_number=header["instance_number"],
        study_date=header["study_date"],
        study_time=header["study_time"],
        content_date=header["content_date"],
        content_time=header["content_time"],
        timezone_offset=header["timezone_offset"],
        observer_name=observer.name,
        observer_login_name=observer.login_name,
        observer_role=observer.role,
        procedure_reported=procedure,
        template=template,
        group_item=group_id,
        item=item_id if number is not None else "",
        tracking_identifier=group.tracking_identifier,
        tracking_uid=group.tracking_uid,
        finding=group.finding,
        finding_site=details.site if details.site is not None else group.finding_site,
        measurement=concept,
        value=details.value,
        unit=details.unit,
        coordinate_type=shape.coordinate_type,
        graphic_type=shape.graphic_type,
        points=shape.points,
        referenced_sop_class_uid=shape.sop_class_uid,
        referenced_sop_instance_uid=shape.sop_instance_uid,
        referenced_series_instance_uid=_series_of(shape, ctx.series_of_instance),
        referenced_frame_numbers=shape.frame_numbers,
        frame_of_reference_uid=shape.frame_of_reference_uid,
        row_type="measurement" if number is not None else "group",
        referenced_segment_number=shape.segment_number,
        derivation=details.derivation,
        method=details.method,
        algorithm_name=details.algorithm[0],
        algorithm_version=details.algorithm[1],
        device_observer_uid=observer.device_uid,
        device_observer_name=observer.device_name,
        qualitative=tuple(group.qualitative),
        further_regions=tuple(
            FurtherRegion(r.graphic_type, r.points, r.sop_class_uid, r.sop_instance_uid,
                          _series_of(r, ctx.series_of_instance))
            for r in group.further if r.coordinate_type == "SCOORD" and r.sop_instance_uid),
    )
