"""Flatten an SR content tree for comparisons in tests (concept, value type, relation, value)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from pydicom import Dataset

Node = tuple[int, str, str, tuple[str, str] | None, object]


def _code(item: Dataset) -> tuple[str, str]:
    return (str(item.CodeValue), str(item.CodingSchemeDesignator))


def value_of(item: Dataset) -> object:
    """The value of a content item in a comparable form (PS3.3 C.17.3)."""
    vt = item.ValueType
    if vt == "CODE":
        return _code(item.ConceptCodeSequence[0])
    if vt == "NUM":
        mv = item.MeasuredValueSequence[0]
        return (str(mv.NumericValue), _code(mv.MeasurementUnitsCodeSequence[0]))
    if vt == "SCOORD":
        points = np.asarray(item.GraphicData, dtype=np.float32)
        return (str(item.GraphicType), tuple(float(p) for p in points))
    if vt == "IMAGE":
        ref = item.ReferencedSOPSequence[0]
        return (str(ref.ReferencedSOPClassUID), str(ref.ReferencedSOPInstanceUID))
    if vt == "TEXT":
        return str(item.TextValue)
    if vt == "PNAME":
        return str(item.PersonName)
    if vt == "UIDREF":
        return str(item.UID)
    if vt == "DATE":
        return str(item.Date)
    if vt == "TIME":
        return str(item.Time)
    if vt == "CONTAINER":
        return None
    return repr(item)


def flatten(ds: Dataset, depth: int = 0) -> Iterator[Node]:
    """Every item of the tree in document order: (depth, relationship, value type, name, value)."""
    names = ds.get("ConceptNameCodeSequence")
    name = _code(names[0]) if names else None
    yield (depth, str(ds.get("RelationshipType", "")), str(ds.ValueType), name, value_of(ds))
    for child in ds.get("ContentSequence", []):
        yield from flatten(child, depth + 1)


def decoded(ds: Dataset) -> list[tuple[str, object]]:
    """Every element as (keyword, value), decimal strings as floats, nested in order: two
    datasets that agree value for value compare equal, although DICOM JSON carries a DS as
    a number ("-180" in a file may come back as "-180.0"; docs/images.md, Limits)."""
    out: list[tuple[str, object]] = []
    for element in ds:
        if element.VR == "SQ":
            out.append((element.keyword, [decoded(item) for item in element.value]))
        elif element.VR == "DS" and element.value not in (None, ""):
            values = element.value if element.VM > 1 else [element.value]
            out.append((element.keyword, [float(v) for v in values]))
        else:
            out.append((element.keyword, str(element.value)))
    return out
