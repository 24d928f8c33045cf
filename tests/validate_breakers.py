"""Broken variants of a valid csv2sr SR, one defect each, for the validate tests.

Each breaker takes a fresh copy of a valid csv2sr SR (``ccc2017-sample.csv`` row 1, built
with ``read_rows`` + ``encode``; content item ids as in ``docs/validation.md``) and breaks
it in one way.  Item ids of that SR: 1.1 language, 1.2-1.5 observer context, 1.6 procedure
reported, 1.7 image library (1.7.1.1 IMAGE), 1.8 imaging measurements > 1.8.1 measurement
group > 1.8.1.1 tracking id, 1.8.1.2 tracking UID, 1.8.1.3 finding, 1.8.1.4 finding site,
1.8.1.5 NUM Length > 1.8.1.5.1 SCOORD > 1.8.1.5.1.1 IMAGE.
"""

from __future__ import annotations

from collections.abc import Callable

from pydicom import Dataset
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag

Breaker = Callable[[Dataset], None]


def item(ds: Dataset, item_id: str) -> Dataset:
    """The content item ``1.x.y`` of ``ds``."""
    node = ds
    for index in item_id.split(".")[1:]:
        node = node.ContentSequence[int(index) - 1]
    return node


def raw(ds: Dataset, keyword: str, vr: str, value: bytes) -> None:
    """Put an element with exactly these bytes (no pydicom validation)."""
    tag = Tag(keyword)
    if len(value) % 2:
        value += b"\x00" if vr == "UI" else b" "
    ds[tag] = RawDataElement(tag, vr, len(value), value, 0, False, True)  # type: ignore[assignment]


def missing_type1(ds: Dataset) -> None:
    del ds.SeriesInstanceUID


def missing_value_type(ds: Dataset) -> None:
    del item(ds, "1.8.1.5").ValueType


def bad_uid(ds: Dataset) -> None:
    raw(ds, "SeriesInstanceUID", "UI", b"1.2.03.4")


def bad_da(ds: Dataset) -> None:
    raw(ds, "ContentDate", "DA", b"20171345")


def non_numeric_ds(ds: Dataset) -> None:
    raw(item(ds, "1.8.1.5").MeasuredValueSequence[0], "NumericValue", "DS", b"12.5mm")


def bad_enumerated(ds: Dataset) -> None:
    raw(ds, "CompletionFlag", "CS", b"DONE")


def empty_code_meaning(ds: Dataset) -> None:
    item(ds, "1.8.1.4").ConceptCodeSequence[0].CodeMeaning = ""


def missing_units(ds: Dataset) -> None:
    del item(ds, "1.8.1.5").MeasuredValueSequence[0].MeasurementUnitsCodeSequence


def scoord_without_image(ds: Dataset) -> None:
    del item(ds, "1.8.1.5.1").ContentSequence


def scoord_contains_image(ds: Dataset) -> None:
    item(ds, "1.8.1.5.1.1").RelationshipType = "CONTAINS"


def procedure_wrong_relationship(ds: Dataset) -> None:
    item(ds, "1.6").RelationshipType = "CONTAINS"


def rows_out_of_order(ds: Dataset) -> None:
    items = list(ds.ContentSequence)
    items[5], items[6] = items[6], items[5]  # image library (row 5) before procedure (row 4)
    ds.ContentSequence = items


def title_not_in_cid7021(ds: Dataset) -> None:
    title = ds.ConceptNameCodeSequence[0]
    title.CodeValue, title.CodingSchemeDesignator = "18748-4", "LN"
    title.CodeMeaning = "Diagnostic imaging report"


def snomed_bad_check_digit(ds: Dataset) -> None:
    item(ds, "1.8.1.4").ConceptCodeSequence[0].CodeValue = "64033008"  # Kidney is 64033007


BREAKERS: dict[str, Breaker] = {
    "missing_type1": missing_type1,
    "missing_value_type": missing_value_type,
    "bad_uid": bad_uid,
    "bad_da": bad_da,
    "non_numeric_ds": non_numeric_ds,
    "bad_enumerated": bad_enumerated,
    "empty_code_meaning": empty_code_meaning,
    "missing_units": missing_units,
    "scoord_without_image": scoord_without_image,
    "scoord_contains_image": scoord_contains_image,
    "procedure_wrong_relationship": procedure_wrong_relationship,
    "rows_out_of_order": rows_out_of_order,
    "title_not_in_cid7021": title_not_in_cid7021,
    "snomed_bad_check_digit": snomed_bad_check_digit,
}


def meta_uid_differs(data: bytes) -> bytes:
    """Change the last digit of Media Storage SOP Instance UID (0002,0003) in the bytes.

    pydicom rewrites the meta header from the data set when saving, so this defect is
    made in the file's bytes (same length: the group length stays right).
    """
    start = data.index(b"\x02\x00\x03\x00UI") + 8
    length = int.from_bytes(data[start - 2:start], "little")
    uid = data[start:start + length].rstrip(b"\x00")
    last = uid[-1:]
    changed = uid[:-1] + (b"1" if last != b"1" else b"2")
    return data[:start] + changed + data[start + len(uid):]


def image_not_in_evidence(ds: Dataset) -> None:
    ref = item(ds, "1.8.1.5.1.1").ReferencedSOPSequence[0]
    ref.ReferencedSOPInstanceUID = "2.25.1234"


def polyline_one_point(ds: Dataset) -> None:
    item(ds, "1.8.1.5.1").GraphicData = [1.0, 2.0]


def language_missing(ds: Dataset) -> None:
    del ds.ContentSequence[0]


def tracking_uid_missing(ds: Dataset) -> None:
    del item(ds, "1.8.1").ContentSequence[1]


def units_not_ucum(ds: Dataset) -> None:
    units = item(ds, "1.8.1.5").MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0]
    units.CodingSchemeDesignator = "99LOCAL"


def meaning_differs(ds: Dataset) -> None:
    item(ds, "1.8.1.4").ConceptCodeSequence[0].CodeMeaning = "Renal structure"


def unknown_scheme(ds: Dataset) -> None:
    item(ds, "1.8.1.3").ConceptCodeSequence[0].CodingSchemeDesignator = "MADEUP"


def missing_type2(ds: Dataset) -> None:
    del ds.StudyID


def bad_tm(ds: Dataset) -> None:
    raw(ds, "ContentTime", "TM", b"256100")


def obs_context_below_num(ds: Dataset) -> None:
    """NUM HAS OBS CONTEXT TEXT: allowed in Comprehensive SR, not in Enhanced SR."""
    context = Dataset()
    context.RelationshipType = "HAS OBS CONTEXT"
    context.ValueType = "TEXT"
    name = Dataset()
    name.CodeValue, name.CodingSchemeDesignator = "112039", "DCM"
    name.CodeMeaning = "Tracking Identifier"
    context.ConceptNameCodeSequence = [name]
    context.TextValue = "extra"
    item(ds, "1.8.1.5").ContentSequence.append(context)


MORE_BREAKERS: dict[str, Breaker] = {
    "image_not_in_evidence": image_not_in_evidence,
    "polyline_one_point": polyline_one_point,
    "language_missing": language_missing,
    "tracking_uid_missing": tracking_uid_missing,
    "units_not_ucum": units_not_ucum,
    "meaning_differs": meaning_differs,
    "unknown_scheme": unknown_scheme,
    "missing_type2": missing_type2,
    "bad_tm": bad_tm,
    "obs_context_below_num": obs_context_below_num,
}
