"""The content tree: items, their value types and the relationship constraints.

PS3.3 C.17.3 (SR Document Content Module: relationship and value type of every item, the
concept name), C.18 (the attributes each value type needs; C.18.6 SCOORD) and the
relationship content constraints of the IOD: Table A.35.2-2 (Enhanced SR), Table A.35.3-2
(Comprehensive SR) and Table A.35.13-2 (Comprehensive 3D SR, which adds SCOORD3D); the
value types each IOD allows; by-reference relationships resolved (PS3.3 C.17.3.2.2).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from pydicom import Dataset

from csv2sr.dicom import vr
from csv2sr.dicom.paths import content_step
from csv2sr.dicom.tree import ROOT_ID, child_id
from csv2sr.validate.access import sequence, text
from csv2sr.validate.findings import Finding, Severity, Source

__all__ = ["Node", "build_tree", "check_content", "iter_nodes"]

ENHANCED = "1.2.840.10008.5.1.4.1.1.88.22"
COMPREHENSIVE = "1.2.840.10008.5.1.4.1.1.88.33"
COMPREHENSIVE_3D = "1.2.840.10008.5.1.4.1.1.88.34"

_NAMED = frozenset({"TEXT", "NUM", "CODE", "DATETIME", "DATE", "TIME", "UIDREF", "PNAME",
                    "CONTAINER"})
"""Value types whose Concept Name Code Sequence is required (PS3.3 C.17.3, Type 1C)."""

_LEAF = frozenset({"TEXT", "CODE", "NUM", "DATETIME", "DATE", "TIME", "UIDREF", "PNAME"})
_REFS = frozenset({"COMPOSITE", "IMAGE", "WAVEFORM"})

# PS3.3 Table A.35.2-2 (Enhanced SR): (source value types, relationship) -> targets.
_ENHANCED_RULES: tuple[tuple[frozenset[str], str, frozenset[str]], ...] = (
    (frozenset({"CONTAINER"}), "CONTAINS",
     _LEAF | _REFS | {"SCOORD", "TCOORD", "CONTAINER"}),
    (frozenset({"CONTAINER"}), "HAS OBS CONTEXT", _LEAF | {"COMPOSITE"}),
    (frozenset({"CONTAINER", "IMAGE", "WAVEFORM", "COMPOSITE"}), "HAS ACQ CONTEXT", _LEAF),
    (_LEAF | _REFS | {"CONTAINER", "SCOORD", "TCOORD"}, "HAS CONCEPT MOD",
     frozenset({"TEXT", "CODE"})),
    (frozenset({"TEXT", "CODE", "NUM"}), "HAS PROPERTIES",
     _LEAF | _REFS | {"SCOORD", "TCOORD"}),
    (frozenset({"TEXT", "CODE", "NUM"}), "INFERRED FROM",
     _LEAF | _REFS | {"SCOORD", "TCOORD"}),
    (frozenset({"SCOORD"}), "SELECTED FROM", frozenset({"IMAGE"})),
    (frozenset({"TCOORD"}), "SELECTED FROM", frozenset({"SCOORD", "IMAGE", "WAVEFORM"})),
)

_COORDINATES = frozenset({"SCOORD", "TCOORD"})
_ANY_TARGET = _LEAF | _REFS | _COORDINATES | {"CONTAINER"}


def _comprehensive_rules(
    scoord: frozenset[str],
) -> tuple[tuple[frozenset[str], str, frozenset[str]], ...]:
    """PS3.3 Table A.35.3-2 (Comprehensive SR, ``scoord`` = SCOORD) and Table A.35.13-2
    (Comprehensive 3D SR, ``scoord`` = SCOORD and SCOORD3D), row by row.

    NUM as a source of HAS ACQ CONTEXT and PNAME as a source of HAS PROPERTIES (rows 3
    and 6 of Table A.35.13-2) are allowed in both: a validator must not call an SR wrong
    for what the newer table permits.  HAS CONCEPT MOD and CONTAINER CONTAINS CONTAINER
    are by-value only (CP 359): see :func:`_check_by_reference`.
    """
    targets = _LEAF | _REFS | {"TCOORD", "CONTAINER"} | scoord
    return (
        (frozenset({"CONTAINER"}), "CONTAINS", targets),                        # row 1
        (frozenset({"CONTAINER", "TEXT", "CODE", "NUM"}), "HAS OBS CONTEXT",   # row 2
         _LEAF | {"COMPOSITE"}),
        (frozenset({"CONTAINER", "IMAGE", "WAVEFORM", "COMPOSITE", "NUM"}),   # row 3
         "HAS ACQ CONTEXT", _LEAF | {"CONTAINER"}),
        (targets, "HAS CONCEPT MOD", frozenset({"TEXT", "CODE"})),             # row 4
        (frozenset({"TEXT", "CODE", "NUM"}), "HAS PROPERTIES", targets),        # row 5
        (frozenset({"PNAME"}), "HAS PROPERTIES",                                # row 6
         frozenset({"TEXT", "CODE", "DATETIME", "DATE", "TIME", "UIDREF", "PNAME"})),
        (frozenset({"TEXT", "CODE", "NUM"}), "INFERRED FROM", targets),         # row 7
        (frozenset({"SCOORD"}), "SELECTED FROM", frozenset({"IMAGE"})),         # row 8
        (frozenset({"TCOORD"}), "SELECTED FROM",                                # row 9
         frozenset({"IMAGE", "WAVEFORM"}) | scoord),
    )


_COMPREHENSIVE_RULES = _comprehensive_rules(frozenset({"SCOORD"}))
_COMPREHENSIVE_3D_RULES = _comprehensive_rules(frozenset({"SCOORD", "SCOORD3D"}))

_TABLES = {
    ENHANCED: ("Enhanced SR", "PS3.3 Table A.35.2-2", _ENHANCED_RULES),
    COMPREHENSIVE: ("Comprehensive SR", "PS3.3 Table A.35.3-2", _COMPREHENSIVE_RULES),
    COMPREHENSIVE_3D: ("Comprehensive 3D SR", "PS3.3 Table A.35.13-2",
                       _COMPREHENSIVE_3D_RULES),
}

_VALUE_TYPES = {
    ENHANCED: _ANY_TARGET,
    COMPREHENSIVE: _ANY_TARGET,
    COMPREHENSIVE_3D: _ANY_TARGET | {"SCOORD3D"},
}
"""Value types each IOD allows (PS3.3 A.35.2.3.1.1, A.35.3.3.1.1, A.35.13.3.1.1)."""

_GRAPHIC_TYPES = {
    "SCOORD": frozenset({"POINT", "MULTIPOINT", "POLYLINE", "CIRCLE", "ELLIPSE"}),
    "SCOORD3D": frozenset({"POINT", "MULTIPOINT", "POLYLINE", "POLYGON", "ELLIPSE",
                           "ELLIPSOID"}),
}
"""Graphic Type (0070,0023) enumerated values: PS3.3 C.18.6.1.2 (SCOORD) and
C.18.9.1.2 (SCOORD3D)."""

_POINTS = {"POINT": (1, 1), "MULTIPOINT": (1, None), "POLYLINE": (2, None), "CIRCLE": (2, 2),
           "ELLIPSE": (4, 4), "POLYGON": (3, None), "ELLIPSOID": (6, 6)}
"""Graphic type -> (minimum, maximum) number of points (PS3.3 C.18.6.1.2, C.18.9.1.2)."""


@dataclass
class Node:
    """One content item with its id (PS3.3 C.17.3: root is 1, children 1.1, 1.2, ...)."""

    id: str
    path: str
    ds: Dataset
    parent: Node | None
    relationship: str | None
    value_type: str | None
    concept: tuple[str, str, str] | None
    children: list[Node] = field(default_factory=list)

    def named(self, value: str, scheme: str = "DCM") -> bool:
        return self.concept is not None and self.concept[:2] == (value, scheme)


def _code_of(ds: Dataset, keyword: str) -> tuple[str, str, str] | None:
    items = sequence(ds, keyword)
    if not items:
        return None
    item = items[0]
    value = text(item, "CodeValue") or text(item, "LongCodeValue") or text(item, "URNCodeValue")
    return (value or "", text(item, "CodingSchemeDesignator") or "",
            text(item, "CodeMeaning") or "")


def build_tree(ds: Dataset) -> Node:
    """The content tree rooted at the data set (PS3.3 C.17.3)."""
    root = Node(ROOT_ID, "", ds, None, None, text(ds, "ValueType"),
                _code_of(ds, "ConceptNameCodeSequence"))
    _add_children(root)
    return root


def _add_children(node: Node) -> None:
    for index, item in enumerate(sequence(node.ds, "ContentSequence") or [], start=1):
        child = Node(
            child_id(node.id, index), node.path + content_step(index), item,
            node, text(item, "RelationshipType"), text(item, "ValueType"),
            _code_of(item, "ConceptNameCodeSequence"),
        )
        node.children.append(child)
        _add_children(child)


def iter_nodes(root: Node) -> list[Node]:
    """Every node, depth first in document order."""
    out = [root]
    for child in root.children:
        out.extend(iter_nodes(child))
    return out


def _error(node: Node, attribute: str, message: str) -> Finding:
    return Finding(Severity.ERROR, Source.CSV2SR, node.id, node.path + attribute, message)


def check_content(root: Node, sop_class: str) -> list[Finding]:
    """Per-item checks (C.17.3, C.18) and the IOD's relationship constraints."""
    findings: list[Finding] = []
    if root.value_type != "CONTAINER":
        findings.append(_error(root, "/ValueType(0040,a040)",
                               "the root content item must be a CONTAINER (PS3.3 C.17.3)"))
    table = _TABLES.get(sop_class)
    allowed = _VALUE_TYPES.get(sop_class)
    for node in iter_nodes(root):
        findings.extend(_check_item(node))
        if allowed is not None and node.value_type and node.value_type not in allowed:
            findings.append(_error(node, "/ValueType(0040,a040)",
                                   f"value type {node.value_type} is not allowed in "
                                   f"{table[0] if table else 'this IOD'} (PS3.3 A.35)"))
            continue
        if node.parent is not None and table is not None:
            findings.extend(_check_relationship(node, root, sop_class, table))
        if node.value_type == "SCOORD":
            findings.extend(_check_scoord_source(node, root))
    return findings


def _check_item(node: Node) -> list[Finding]:
    findings: list[Finding] = []
    if node.parent is not None and not node.relationship:
        findings.append(_error(node, "/RelationshipType(0040,a010)",
                               "content item without Relationship Type (0040,A010) "
                               "(PS3.3 C.17.3, Type 1)"))
    if "ReferencedContentItemIdentifier" in node.ds and not node.value_type:
        return findings
    if not node.value_type:
        findings.append(_error(node, "/ValueType(0040,a040)",
                               "content item without Value Type (0040,A040) "
                               "(PS3.3 C.17.3, Type 1)"))
        return findings
    if node.value_type in _NAMED and node.concept is None:
        findings.append(_error(node, "/ConceptNameCodeSequence(0040,a043)",
                               f"{node.value_type} content item without Concept Name Code "
                               "Sequence (PS3.3 C.17.3, Type 1C)"))
    findings.extend(_check_value(node))
    return findings


_REQUIRED: dict[str, tuple[tuple[str, str], ...]] = {
    "TEXT": (("TextValue", "(0040,a160)"),),
    "CODE": (("ConceptCodeSequence", "(0040,a168)"),),
    "NUM": (("MeasuredValueSequence", "(0040,a300)"),),
    "DATETIME": (("DateTime", "(0040,a120)"),),
    "DATE": (("Date", "(0040,a121)"),),
    "TIME": (("Time", "(0040,a122)"),),
    "UIDREF": (("UID", "(0040,a124)"),),
    "PNAME": (("PersonName", "(0040,a123)"),),
    "CONTAINER": (("ContinuityOfContent", "(0040,a050)"),),
    "SCOORD": (("GraphicType", "(0070,0023)"), ("GraphicData", "(0070,0022)")),
    "SCOORD3D": (("GraphicType", "(0070,0023)"), ("GraphicData", "(0070,0022)"),
                 ("ReferencedFrameOfReferenceUID", "(3006,0024)")),
    "TCOORD": (("TemporalRangeType", "(0040,a130)"),),
    "IMAGE": (("ReferencedSOPSequence", "(0008,1199)"),),
    "COMPOSITE": (("ReferencedSOPSequence", "(0008,1199)"),),
    "WAVEFORM": (("ReferencedSOPSequence", "(0008,1199)"),),
}
"""Value type -> attributes its item must carry (PS3.3 C.18.1 - C.18.9; C.18.7 TCOORD)."""


def _check_value(node: Node) -> list[Finding]:
    vt = node.value_type or ""
    findings = [
        _error(node, f"/{keyword}{tag}",
               f"{vt} content item without {keyword} {tag} (PS3.3 C.18)")
        for keyword, tag in _REQUIRED.get(vt, ())
        if keyword not in node.ds
    ]
    if findings:
        return findings
    if vt == "NUM":
        findings.extend(_check_num(node))
    elif vt in _REFS:
        findings.extend(_check_reference(node))
    elif vt in ("SCOORD", "SCOORD3D"):
        findings.extend(_check_points(node, 3 if vt == "SCOORD3D" else 2))
        findings.extend(_check_point_values(node))
    elif vt == "CODE" and not sequence(node.ds, "ConceptCodeSequence"):
        findings.append(_error(node, "/ConceptCodeSequence(0040,a168)",
                               "CODE content item with an empty Concept Code Sequence "
                               "(PS3.3 C.18.2)"))
    return findings


def _check_num(node: Node) -> list[Finding]:
    """PS3.3 C.18.1: a NUM holds one measured value with its units (or a qualifier)."""
    values = sequence(node.ds, "MeasuredValueSequence") or []
    path = "/MeasuredValueSequence(0040,a300)[1]"
    if not values:
        if "NumericValueQualifierCodeSequence" in node.ds:
            return []
        return [_error(node, path, "NUM without a measured value or a Numeric Value "
                                   "Qualifier (PS3.3 C.18.1)")]
    value = values[0]
    findings = []
    if not text(value, "NumericValue"):
        findings.append(_error(node, path + "/NumericValue(0040,a30a)",
                               "NUM without Numeric Value (0040,A30A) (PS3.3 C.18.1)"))
    if not sequence(value, "MeasurementUnitsCodeSequence"):
        findings.append(_error(node, path + "/MeasurementUnitsCodeSequence(0040,08ea)",
                               "NUM without Measurement Units Code Sequence (0040,08EA) "
                               "(PS3.3 C.18.1)"))
    return findings


def _check_reference(node: Node) -> list[Finding]:
    """PS3.3 C.18.3/C.18.4: one referenced SOP with class and instance UIDs."""
    refs = sequence(node.ds, "ReferencedSOPSequence") or []
    path = "/ReferencedSOPSequence(0008,1199)"
    if len(refs) != 1:
        return [_error(node, path, f"{node.value_type} must reference exactly one SOP "
                                   f"instance, found {len(refs)} (PS3.3 C.18.3)")]
    return [
        _error(node, f"{path}[1]/{keyword}{tag}",
               f"{node.value_type} reference without {keyword} {tag} (PS3.3 C.18.3)")
        for keyword, tag in (("ReferencedSOPClassUID", "(0008,1150)"),
                             ("ReferencedSOPInstanceUID", "(0008,1155)"))
        if not text(refs[0], keyword)
    ]


def _check_points(node: Node, dims: int) -> list[Finding]:
    """PS3.3 C.18.6.1.2 / C.18.9.1.2: a graphic type of the value type, and a point count
    that fits it.  Graphic Data (0070,0022) is FL for both: 4 bytes per value, 2 values a
    point for SCOORD, 3 for SCOORD3D."""
    graphic_type = text(node.ds, "GraphicType") or ""
    allowed = _GRAPHIC_TYPES[node.value_type or "SCOORD"]
    if graphic_type not in allowed:
        clause = "C.18.9.1.2" if dims == 3 else "C.18.6.1.2"
        return [_error(node, "/GraphicType(0070,0023)",
                       f"Graphic Type <{graphic_type}> is not one of the {node.value_type} "
                       f"graphic types {', '.join(sorted(allowed))} (PS3.3 {clause})")]
    raw = node.ds.get_item(0x00700022)
    if raw is not None and raw.VR not in (None, "FL"):
        return [_error(node, "/GraphicData(0070,0022)",
                       f"Graphic Data (0070,0022) is encoded as {raw.VR}; its VR is FL "
                       "(PS3.6, PS3.3 C.18.6 / C.18.9)")]
    if raw is not None and isinstance(raw.value, bytes):
        count = len(raw.value) // 4  # Graphic Data is FL for SCOORD and SCOORD3D
    else:
        data = node.ds.GraphicData
        count = len(data) if isinstance(data, list | tuple) or hasattr(data, "__len__") else 1
    limits = _POINTS[graphic_type]
    if count % dims:
        return [_error(node, "/GraphicData(0070,0022)",
                       f"{count} values do not make whole {dims}-D points (PS3.3 "
                       f"{'C.18.9' if dims == 3 else 'C.18.6'})")]
    points, (low, high) = count // dims, limits
    if points < low or (high is not None and points > high):
        wanted = str(low) if high == low else f"at least {low}"
        return [_error(node, "/GraphicData(0070,0022)",
                       f"{graphic_type} with {points} points; it needs {wanted} "
                       "(PS3.3 C.18.6.1.2)")]
    return []


def _graphic_values(node: Node) -> list[float]:
    """The numbers of Graphic Data (0070,0022), FL: from the raw bytes when not converted."""
    raw = node.ds.get_item(0x00700022)
    if raw is not None and isinstance(raw.value, bytes):
        data = raw.value[: len(raw.value) // 4 * 4]
        order = "<" if getattr(raw, "is_little_endian", True) else ">"
        return [v for (v,) in struct.iter_unpack(f"{order}f", data)]
    value = node.ds.GraphicData
    return [float(value)] if isinstance(value, int | float) else [float(v) for v in value]


def _check_point_values(node: Node) -> list[Finding]:
    """PS3.5 Table 6.2-1 FL (:func:`csv2sr.dicom.vr.check_fl`): every coordinate finite."""
    for number in _graphic_values(node):
        problem = vr.check_fl(number)
        if problem:
            return [_error(node, "/GraphicData(0070,0022)",
                           f"a coordinate <{number}> is {problem} (PS3.5 Table 6.2-1 FL)")]
    return []


def _referenced(node: Node, root: Node) -> Node | None:
    """The item a by-reference relationship points to (PS3.3 C.17.3.2.2: the 1-based
    positions from the root in Referenced Content Item Identifier (0040,DB73))."""
    raw = node.ds.get("ReferencedContentItemIdentifier")
    positions = [int(raw)] if isinstance(raw, int) else [int(v) for v in raw or []]
    if not positions or positions[0] != 1:
        return None
    target = root
    for position in positions[1:]:
        if not 1 <= position <= len(target.children):
            return None
        target = target.children[position - 1]
    return target


def _check_relationship(
    node: Node, root: Node, sop_class: str,
    table: tuple[str, str, tuple[tuple[frozenset[str], str, frozenset[str]], ...]],
) -> list[Finding]:
    parent = node.parent
    if parent is None or not node.relationship or not parent.value_type:
        return []
    name, where, rules = table
    target = node.value_type
    by_reference = target is None and "ReferencedContentItemIdentifier" in node.ds
    if by_reference:
        if sop_class == ENHANCED:
            return [_error(node, "/ReferencedContentItemIdentifier(0040,db73)",
                           f"by-reference relationships are not allowed in {name} ({where})")]
        referenced = _referenced(node, root)
        if referenced is None:
            return [_error(node, "/ReferencedContentItemIdentifier(0040,db73)",
                           "by-reference relationship to no content item of this document "
                           "(PS3.3 C.17.3.2.2)")]
        target = referenced.value_type
        if node.relationship == "HAS CONCEPT MOD" or (
                node.relationship == "CONTAINS" and target == "CONTAINER"):
            return [_error(node, "/ReferencedContentItemIdentifier(0040,db73)",
                           f"{parent.value_type} {node.relationship} {target} must be by "
                           f"value, not by reference ({where})")]
    if target is None:
        return []
    for sources, relationship, targets in rules:
        if parent.value_type in sources and node.relationship == relationship and (
                target in targets):
            return []
    shown = f"{target} (by reference)" if by_reference else target
    return [_error(node, "/RelationshipType(0040,a010)",
                   f"{parent.value_type} {node.relationship} {shown} is not allowed "
                   f"in {name} ({where})")]


def _check_scoord_source(node: Node, root: Node) -> list[Finding]:
    """PS3.3 C.18.6.1.1: a SCOORD is the source of exactly one SELECTED FROM an IMAGE
    (by value, or by reference to an IMAGE, as the Image Library entry)."""
    selected = [
        c for c in node.children
        if c.relationship == "SELECTED FROM" and (
            c.value_type == "IMAGE" or (c.value_type is None and (
                (target := _referenced(c, root)) is not None and target.value_type == "IMAGE")))
    ]
    if len(selected) == 1:
        return []
    return [_error(node, "", f"SCOORD with {len(selected)} SELECTED FROM IMAGE children; "
                             "it needs exactly one (PS3.3 C.18.6.1.1)")]
