"""Comprehensive SR and Comprehensive 3D SR checks, one defect at a time (issue 13).

The valid files are highdicom's (tests/corpus.py): a Comprehensive SR with TID 1410 and
TID 1501 groups and a Comprehensive 3D SR with a SCOORD3D region of every planar graphic
type.  Each case breaks one thing and asserts what csv2sr says (severity, item id, message)
and, where the real dciodvfy is installed, what dciodvfy says or that it misses it: dciodvfy
checks the value type enumeration but not the relationship tables of these IODs.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import pytest
from pydicom import Dataset, dcmread
from pydicom.dataelem import DataElement

import corpus
from csv2sr.validate.checks import check_file
from csv2sr.validate.dciodvfy import run_dciodvfy
from csv2sr.validate.findings import Finding, Severity, Source

Breaker = Callable[[Dataset], str]
"""Breaks a copy of the valid SR; returns the id of the item the finding must name."""


@pytest.fixture(scope="module")
def valid(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Dataset]:
    """The two valid SRs, written and read back as a reader sees them."""
    folder = tmp_path_factory.mktemp("comprehensive")
    slices = corpus.ct_slices()
    out = {}
    for name, make in (("2d", corpus.highdicom_planar_2d), ("3d", corpus.highdicom_planar_3d)):
        path = folder / f"{name}.dcm"
        make(slices).save_as(path, enforce_file_format=True)
        assert [f for f in check_file(path) if f.severity is not Severity.INFO] == []
        out[name] = dcmread(path)
    return out


def nodes(ds: Dataset, prefix: str = "1") -> list[tuple[str, Dataset]]:
    out = [(prefix, ds)]
    for index, child in enumerate(ds.get("ContentSequence") or [], 1):
        out.extend(nodes(child, f"{prefix}.{index}"))
    return out


def first(ds: Dataset, value_type: str, graphic_type: str | None = None) -> tuple[str, Dataset]:
    return next((i, n) for i, n in nodes(ds) if n.get("ValueType") == value_type and (
        graphic_type is None or n.get("GraphicType") == graphic_type))


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = value, scheme, meaning
    return code


def _text_item(relationship: str) -> Dataset:
    item = Dataset()
    item.RelationshipType, item.ValueType = relationship, "TEXT"
    item.ConceptNameCodeSequence = [_code("121106", "DCM", "Comment")]
    item.TextValue = "x"
    return item


def _append(parent: Dataset, child: Dataset, parent_id: str) -> str:
    parent.ContentSequence = [*(parent.get("ContentSequence") or []), child]
    return f"{parent_id}.{len(parent.ContentSequence)}"


def _by_reference(relationship: str, target: str) -> Dataset:
    item = Dataset()
    item.RelationshipType = relationship
    item.ReferencedContentItemIdentifier = [int(p) for p in target.split(".")]
    return item


# -- Comprehensive SR (the 2-D file) ----------------------------------------------------------


def scoord3d_in_comprehensive(ds: Dataset) -> str:
    item_id, scoord = first(ds, "SCOORD", "POINT")
    scoord.ValueType = "SCOORD3D"
    scoord.GraphicData = [1.0, 2.0, 3.0]
    scoord.ReferencedFrameOfReferenceUID = corpus.uid("frame")
    del scoord.ContentSequence
    return item_id


def polygon_in_scoord(ds: Dataset) -> str:
    item_id, scoord = first(ds, "SCOORD", "POLYLINE")
    scoord.GraphicType = "POLYGON"
    return item_id


def code_selected_from_image(ds: Dataset) -> str:
    code_id, code = first(ds, "CODE")
    image = copy.deepcopy(first(ds, "IMAGE")[1])
    image.RelationshipType = "SELECTED FROM"
    return _append(code, image, code_id)


def concept_mod_by_reference(ds: Dataset) -> str:
    group_id, group = next((i, n) for i, n in nodes(ds) if n.get("ValueType") == "CONTAINER"
                           and n.ConceptNameCodeSequence[0].CodeValue == "125007")
    target = next(f"{group_id}.{k}" for k, c in enumerate(group.ContentSequence, 1)
                  if c.ValueType == "CODE")
    return _append(group, _by_reference("HAS CONCEPT MOD", target), group_id)


def container_by_reference(ds: Dataset) -> str:
    measurements_id, measurements = next(
        (i, n) for i, n in nodes(ds) if n.get("ValueType") == "CONTAINER"
        and n.ConceptNameCodeSequence[0].CodeValue == "126010")
    return _append(measurements, _by_reference("CONTAINS", f"{measurements_id}.1"),
                   measurements_id)


def reference_to_nothing(ds: Dataset) -> str:
    num_id, num = first(ds, "NUM")
    return _append(num, _by_reference("INFERRED FROM", "1.99.1"), num_id)


def scoord_two_images(ds: Dataset) -> str:
    item_id, scoord = first(ds, "SCOORD", "CIRCLE")
    scoord.ContentSequence = [*scoord.ContentSequence, copy.deepcopy(scoord.ContentSequence[0])]
    return item_id


def num_has_acq_context_text(ds: Dataset) -> str:
    """Allowed: Table A.35.13-2 row 3 (and so accepted in Comprehensive SR): no finding."""
    num_id, num = first(ds, "NUM")
    _append(num, _text_item("HAS ACQ CONTEXT"), num_id)
    return ""


def pname_has_properties_num(ds: Dataset) -> str:
    pname_id, pname = first(ds, "PNAME")
    num = copy.deepcopy(first(ds, "NUM")[1])
    num.RelationshipType = "HAS PROPERTIES"
    if "ContentSequence" in num:
        del num.ContentSequence
    return _append(pname, num, pname_id)


# -- Comprehensive 3D SR (the 3-D file) -------------------------------------------------------


def scoord3d_selected_from_image(ds: Dataset) -> str:
    item_id, scoord = first(ds, "SCOORD3D", "POLYGON")
    image = Dataset()
    image.RelationshipType, image.ValueType = "SELECTED FROM", "IMAGE"
    reference = Dataset()
    slices = corpus.ct_slices(1)
    reference.ReferencedSOPClassUID = slices[0].SOPClassUID
    reference.ReferencedSOPInstanceUID = slices[0].SOPInstanceUID
    image.ReferencedSOPSequence = [reference]
    return _append(scoord, image, item_id)


def scoord3d_circle(ds: Dataset) -> str:
    item_id, scoord = first(ds, "SCOORD3D", "POLYLINE")
    scoord.GraphicType = "CIRCLE"
    return item_id


def scoord3d_partial_point(ds: Dataset) -> str:
    item_id, scoord = first(ds, "SCOORD3D", "POLYLINE")
    scoord.GraphicData = [float(v) for v in scoord.GraphicData][:-2]
    return item_id


def ellipsoid_four_points(ds: Dataset) -> str:
    item_id, scoord = first(ds, "SCOORD3D", "ELLIPSOID")
    scoord.GraphicData = [float(v) for v in scoord.GraphicData][:12]
    return item_id


def scoord3d_without_frame(ds: Dataset) -> str:
    item_id, scoord = first(ds, "SCOORD3D", "POINT")
    del scoord.ReferencedFrameOfReferenceUID
    return item_id


def scoord3d_fl_as_fd(ds: Dataset) -> str:
    """Graphic Data written as FD (8 bytes a value): the VR of (0070,0022) is FL."""
    item_id, scoord = first(ds, "SCOORD3D", "POINT")
    scoord[0x00700022] = DataElement(0x00700022, "FD", [0.0, 0.0, 1.0])
    return item_id


def group_without_tracking_uid_3d(ds: Dataset) -> str:
    group_id, group = next((i, n) for i, n in nodes(ds) if n.get("ValueType") == "CONTAINER"
                           and n.ConceptNameCodeSequence[0].CodeValue == "125007")
    group.ContentSequence = [c for c in group.ContentSequence
                             if c.ConceptNameCodeSequence[0].CodeValue != "112040"]
    return group_id


def num_selected_from_scoord3d(ds: Dataset) -> str:
    num_id, num = first(ds, "NUM")
    scoord = copy.deepcopy(first(ds, "SCOORD3D", "POINT")[1])
    scoord.RelationshipType = "SELECTED FROM"
    return _append(num, scoord, num_id)


# name -> (file, breaker, own (severity, message part) or None for "no finding",
#          dciodvfy error message part or None for "dciodvfy misses it")
CASES: dict[str, tuple[str, Breaker, tuple[Severity, str] | None, str | None]] = {
    "scoord3d_in_comprehensive": (
        "2d", scoord3d_in_comprehensive,
        (Severity.ERROR, "value type SCOORD3D is not allowed in Comprehensive SR"),
        "Unrecognized enumerated value = <SCOORD3D>"),
    "polygon_in_scoord": (
        "2d", polygon_in_scoord,
        (Severity.ERROR, "Graphic Type <POLYGON> is not one of the SCOORD graphic types"),
        "Unrecognized enumerated value = <POLYGON>"),
    "code_selected_from_image": (
        "2d", code_selected_from_image,
        (Severity.ERROR, "CODE SELECTED FROM IMAGE is not allowed in Comprehensive SR "
                         "(PS3.3 Table A.35.3-2)"), None),
    "concept_mod_by_reference": (
        "2d", concept_mod_by_reference,
        (Severity.ERROR, "CONTAINER HAS CONCEPT MOD CODE must be by value"), None),
    "container_by_reference": (
        "2d", container_by_reference,
        (Severity.ERROR, "CONTAINER CONTAINS CONTAINER must be by value"),
        "Type 1C Conditional - Module=<DocumentRelationshipMacro>"),
    "reference_to_nothing": (
        "2d", reference_to_nothing,
        (Severity.ERROR, "by-reference relationship to no content item"), None),
    "scoord_two_images": (
        "2d", scoord_two_images,
        (Severity.ERROR, "SCOORD with 2 SELECTED FROM IMAGE children"), None),
    "num_has_acq_context_text": ("2d", num_has_acq_context_text, None, None),
    "pname_has_properties_num": (
        "2d", pname_has_properties_num,
        (Severity.ERROR, "PNAME HAS PROPERTIES NUM is not allowed in Comprehensive SR"),
        None),
    "scoord3d_selected_from_image": (
        "3d", scoord3d_selected_from_image,
        (Severity.ERROR, "SCOORD3D SELECTED FROM IMAGE is not allowed in Comprehensive 3D "
                         "SR (PS3.3 Table A.35.13-2)"), None),
    "scoord3d_circle": (
        "3d", scoord3d_circle,
        (Severity.ERROR, "Graphic Type <CIRCLE> is not one of the SCOORD3D graphic types"),
        "Unrecognized enumerated value = <CIRCLE>"),
    "scoord3d_partial_point": (
        "3d", scoord3d_partial_point,
        (Severity.ERROR, "7 values do not make whole 3-D points (PS3.3 C.18.9)"),
        "incorrect number of GraphicData values for SCOORD3D = <7>"),
    "ellipsoid_four_points": (
        "3d", ellipsoid_four_points,
        (Severity.ERROR, "ELLIPSOID with 4 points; it needs 6"),
        "(18 Required by GraphicTypeIsELLIPSOID)"),
    "scoord3d_without_frame": (
        "3d", scoord3d_without_frame,
        (Severity.ERROR, "SCOORD3D content item without ReferencedFrameOfReferenceUID"),
        None),
    "scoord3d_fl_as_fd": (
        "3d", scoord3d_fl_as_fd,
        (Severity.ERROR, "Graphic Data (0070,0022) is encoded as FD; its VR is FL"),
        "Invalid Value Representation FD (FL Required)"),
    "group_without_tracking_uid_3d": (
        "3d", group_without_tracking_uid_3d,
        (Severity.ERROR, "Measurement Group without Tracking Unique Identifier"), None),
    "num_selected_from_scoord3d": (
        "3d", num_selected_from_scoord3d,
        (Severity.ERROR, "NUM SELECTED FROM SCOORD3D is not allowed in Comprehensive 3D SR"),
        None),
}


def _dciodvfy_or_none(request: pytest.FixtureRequest) -> Path | None:
    try:
        return Path(request.getfixturevalue("dciodvfy"))
    except pytest.skip.Exception:
        return None


def _errors(findings: list[Finding], source: Source) -> list[Finding]:
    return [f for f in findings if f.severity is Severity.ERROR and f.source is source]


@pytest.mark.parametrize("name", sorted(CASES))
def test_one_defect(
    name: str, valid: dict[str, Dataset], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    which, breaker, own_expected, dciodvfy_expected = CASES[name]
    ds = copy.deepcopy(valid[which])
    item = breaker(ds)
    path = tmp_path / f"{name}.dcm"
    ds.save_as(path, enforce_file_format=True)
    own = [f for f in check_file(path) if f.severity is not Severity.INFO]
    if own_expected is None:
        assert own == [], [(f.item, f.message) for f in own]
    else:
        severity, words = own_expected
        assert any(f.severity is severity and f.item == item and words in f.message
                   for f in own), [(f.item, f.message) for f in own]
    dciodvfy = _dciodvfy_or_none(request)
    if dciodvfy is None:
        return
    said = _errors(run_dciodvfy(dciodvfy, path), Source.DCIODVFY)
    if dciodvfy_expected is None:
        assert said == [], [f.message for f in said]  # what only the own checks find
    else:
        assert any(dciodvfy_expected in f.message for f in said), [f.message for f in said]
