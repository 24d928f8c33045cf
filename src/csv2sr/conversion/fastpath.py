"""The same SR files as :func:`csv2sr.conversion.build.encode`, an order of magnitude faster.

highdicom's SR constructor costs 16-21 ms per document (deep copies, the evidence walk, a
re-parse of the content tree) and pydicom's writer another 3-5 ms.  Rows of one *shape*
(observer role present or not, Study Date/Time known or not; one code mode and one
``ohif`` setting per encoder, ``ohif`` changing only the Tracking Identifier's value) give
files that differ only in the values a row brings, so:

1. the first row of each shape (which also fixes the modality, and so the Modality and
   Procedure Reported codes) is built by highdicom (the reference builder);
2. a copy of that dataset gets a distinct *sentinel* value in every row-dependent place
   (:func:`set_fields`, the same function that fills a dataset from a row) and is written
   once; parsing those bytes (explicit VR little endian, PS3.5 section 7.1.2) gives a
   template tree whose leaves are either constant bytes or a named slot;
3. each later row renders the tree with its own values, recomputing the lengths of
   sequences, items and the File Meta group (PS3.10 section 7.1).

Equality is not assumed: ``tests/test_fastpath.py`` encodes every row of the real CSV both
ways (in both code modes, with and without ``ohif``) and compares the bytes.  Rows this
module does not handle (non-ASCII text, a source image header) go to highdicom.
"""

from __future__ import annotations

import copy
import logging
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from pydicom import Dataset
from pydicom.sr.coding import Code
from pydicom.uid import UID

from csv2sr.conversion.build import dataset_bytes, encode, row_uids
from csv2sr.conversion.checks import Annotation
from csv2sr.dicom.codes import CodeMode, Codes, code_key, image_modality, to_srt
from csv2sr.dicom.ohif import tracking_identifier
from csv2sr.dicom.tree import content_items
from csv2sr.errors import Csv2srError
from csv2sr.profiles import Profile

__all__ = ["FastEncoder", "TemplateError", "row_values", "set_fields"]

log = logging.getLogger(__name__)

Value = str | int | tuple[float, ...]
_Shape = tuple[bool, bool, bool, str]
"""Observer role present, Study Date known, Study Time known, modality (CID 29 value)."""

_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR",
             b"UT", b"UV"}
_ITEM = b"\xfe\xff\x00\xe0"
_UNDEFINED = 0xFFFFFFFF


class TemplateError(Csv2srError):
    """The template bytes are not in the form the renderer knows (the caller falls back)."""


def row_values(
    row: Annotation, profile: Profile, mode: CodeMode, ohif: bool = False
) -> dict[str, Value]:
    """Every row-dependent value of the SR, by slot name (the inputs of :func:`set_fields`)."""
    uids = row_uids(row, profile, mode, ohif)
    when = row.content_datetime
    organ = profile.organ(row.anatomy)
    if mode is CodeMode.SRT:
        organ = to_srt(organ)
    return {
        "patient_id": row.patient_id,
        "study_uid": row.study_uid,
        "study_date": row.study_date,
        "study_time": row.study_time,
        "series_uid": row.series_uid,
        "instance_uid": row.instance_uid,
        "sop_class_uid": row.sop_class_uid,
        "sr_series_uid": uids.series,
        "sop_instance_uid": uids.sop_instance,
        "order": row.order,
        "content_date": when.strftime("%Y%m%d"),
        "content_time": when.strftime("%H%M%S"),
        "contribution_datetime": when.strftime("%Y%m%d%H%M%S"),
        "observer_name": f"{row.annotator}^",
        "login_name": row.annotator,
        "tracking_id": tracking_identifier("Length", row.annotation_id, ohif),
        "tracking_uid": uids.tracking,
        "organ_value": organ.value,
        "organ_meaning": organ.meaning,
        "length": row.length,
        "points": tuple(row.points),
    }


_SENTINELS: dict[str, Value] = {
    "patient_id": "ZZpatientZZ",
    "study_uid": "1.2.3.99901",
    "study_date": "19010102",
    "study_time": "010203",
    "series_uid": "1.2.3.99902",
    "instance_uid": "1.2.3.99903",
    "sop_class_uid": "1.2.3.99904",
    "sr_series_uid": "1.2.3.99905",
    "sop_instance_uid": "1.2.3.99906",
    "order": 987654321,
    "content_date": "19020304",
    "content_time": "040506",
    "contribution_datetime": "19030405060708",
    "observer_name": "ZZobserverZZ^",
    "login_name": "ZZloginZZ",
    "tracking_id": "ZZtrackingZZ",
    "tracking_uid": "1.2.3.99907",
    "organ_value": "ZZorganZZ",
    "organ_meaning": "ZZmeaningZZ",
    "length": "98765.4321",
    "points": (12345.5, 23456.25, 34567.75, 45678.125),
}


def _name(item: Dataset) -> tuple[str, str] | None:
    names = item.get("ConceptNameCodeSequence")
    if not names:
        return None
    name = names[0]
    return code_key(Code(name.CodeValue, name.CodingSchemeDesignator, name.CodeMeaning))


_TEXT_SLOTS = {
    code_key(Codes.PERSON_OBSERVER_NAME): ("PersonName", "observer_name"),
    code_key(Codes.PERSON_OBSERVER_LOGIN_NAME): ("TextValue", "login_name"),
    code_key(Codes.STUDY_DATE): ("Date", "study_date"),
    code_key(Codes.STUDY_TIME): ("Time", "study_time"),
    code_key(Codes.TRACKING_IDENTIFIER): ("TextValue", "tracking_id"),
    code_key(Codes.TRACKING_UID): ("UID", "tracking_uid"),
}
_FINDING_SITE = code_key(Codes.FINDING_SITE)


def set_fields(ds: Dataset, values: dict[str, Value]) -> Dataset:
    """Set every row-dependent value of an SR made by :func:`~csv2sr.conversion.build.encode`
    (in place).

    The places are those the encoder fills from a row: the Patient and General Study
    modules (PS3.3 C.7.1.1, C.7.2.1), SR Document Series and General (C.17.1, C.17.2:
    series, instance, dates, author, evidence), and the TID 1500 content values (observer
    name and login, TID 1601 image reference and study date/time, TID 1501 tracking
    identifier and UID, finding site, the TID 300 length, its SCOORD and image).
    """
    ds.PatientID = values["patient_id"]
    ds.PatientName = values["patient_id"]
    ds.StudyInstanceUID = values["study_uid"]
    ds.StudyDate = values["study_date"]
    ds.StudyTime = values["study_time"]
    ds.SeriesInstanceUID = values["sr_series_uid"]
    ds.SOPInstanceUID = values["sop_instance_uid"]
    ds.file_meta.MediaStorageSOPInstanceUID = UID(str(values["sop_instance_uid"]))
    ds.InstanceNumber = values["order"]
    ds.ContentDate = ds.InstanceCreationDate = values["content_date"]
    ds.ContentTime = ds.InstanceCreationTime = values["content_time"]
    for equipment in ds.get("ContributingEquipmentSequence", []):
        equipment.ContributionDateTime = values["contribution_datetime"]
    ds.AuthorObserverSequence[0].PersonName = values["observer_name"]
    evidence = ds.CurrentRequestedProcedureEvidenceSequence[0]
    evidence.StudyInstanceUID = values["study_uid"]
    series = evidence.ReferencedSeriesSequence[0]
    series.SeriesInstanceUID = values["series_uid"]
    _reference(series.ReferencedSOPSequence[0], values)
    for _, item in content_items(ds):
        _set_item(item, values)
    return ds


def _reference(item: Dataset, values: dict[str, Value]) -> None:
    item.ReferencedSOPClassUID = values["sop_class_uid"]
    item.ReferencedSOPInstanceUID = values["instance_uid"]


def _set_item(item: Dataset, values: dict[str, Value]) -> None:
    value_type = item.ValueType
    if value_type == "IMAGE":
        _reference(item.ReferencedSOPSequence[0], values)
    elif value_type == "SCOORD":
        item.GraphicData = list(values["points"])  # type: ignore[arg-type]
    elif value_type == "NUM":
        item.MeasuredValueSequence[0].NumericValue = values["length"]
    else:
        name = _name(item)
        if name in _TEXT_SLOTS:
            keyword, slot = _TEXT_SLOTS[name]
            setattr(item, keyword, values[slot])
        elif name == _FINDING_SITE:
            concept = item.ConceptCodeSequence[0]
            concept.CodeValue = values["organ_value"]
            concept.CodeMeaning = values["organ_meaning"]


# --- the byte template -------------------------------------------------------------------

@dataclass
class _Slot:
    header: bytes  # tag + VR (+ 2 reserved bytes for long VRs)
    long: bool
    name: str
    pad: bytes


@dataclass
class _Node:
    """A sequence (header = tag+VR+reserved) or an item (header = item tag)."""

    header: bytes
    children: list[_Part]


_Part = bytes | _Slot | _Node


def _floats(value: Value) -> bytes:
    if not isinstance(value, tuple):
        raise TemplateError(f"points must be a tuple of floats, not {value!r}")
    return struct.pack(f"<{len(value)}f", *value)


def _encode_value(slot: _Slot, value: Value) -> bytes:
    if slot.name == "points":
        return _floats(value)
    data = str(value).encode("ascii")
    return data + slot.pad if len(data) % 2 else data


def _sentinel_key(name: str) -> bytes:
    value = _SENTINELS[name]
    if name == "points":
        return _floats(value)
    return str(value).encode("ascii")


_BY_KEY = {_sentinel_key(name): name for name in _SENTINELS}


def _parse(data: bytes, start: int, end: int) -> list[_Part]:
    """Parse explicit VR little endian elements in ``data[start:end]`` into template parts."""
    parts: list[_Part] = []
    pos = start
    while pos < end:
        vr = data[pos + 4:pos + 6]
        long = vr in _LONG_VRS
        if long:
            (length,) = struct.unpack_from("<I", data, pos + 8)
            head, value_at = data[pos:pos + 8], pos + 12
        else:
            (length,) = struct.unpack_from("<H", data, pos + 6)
            head, value_at = data[pos:pos + 6], pos + 8
        if length == _UNDEFINED:
            raise TemplateError("undefined length in template")
        value_end = value_at + length
        if vr == b"SQ":
            parts.append(_Node(head, _parse_items(data, value_at, value_end)))
        else:
            value = data[value_at:value_end]
            key = value if vr == b"FL" else value.rstrip(b"\x00 ")
            name = _BY_KEY.get(key)
            if name is not None:
                parts.append(_Slot(head, long, name, b"\x00" if vr == b"UI" else b" "))
            else:
                parts.append(data[pos:value_end])
        pos = value_end
    return parts


def _parse_items(data: bytes, start: int, end: int) -> list[_Part]:
    items: list[_Part] = []
    pos = start
    while pos < end:
        if data[pos:pos + 4] != _ITEM:
            raise TemplateError("expected an item in a sequence")
        (length,) = struct.unpack_from("<I", data, pos + 4)
        if length == _UNDEFINED:
            raise TemplateError("undefined item length in template")
        items.append(_Node(_ITEM, _parse(data, pos + 8, pos + 8 + length)))
        pos += 8 + length
    return items


def _render(parts: list[_Part], values: dict[str, Value], out: list[bytes]) -> int:
    """Append the bytes of ``parts`` to ``out``; return how many were appended."""
    total = 0
    for part in parts:
        if isinstance(part, bytes):
            out.append(part)
            total += len(part)
        elif isinstance(part, _Slot):
            value = _encode_value(part, values[part.name])
            size = struct.pack("<I", len(value)) if part.long else struct.pack("<H", len(value))
            out.extend((part.header, size, value))
            total += len(part.header) + len(size) + len(value)
        else:
            body: list[bytes] = []
            length = _render(part.children, values, body)
            size = struct.pack("<I", length)
            if part.header == _ITEM:
                out.extend((_ITEM, size))
                total += 8
            else:
                out.extend((part.header, size))
                total += len(part.header) + 4
            out.extend(body)
            total += length
    return total


class ByteTemplate:
    """A written SR split into constant bytes and named slots (see the module docstring)."""

    def __init__(self, dataset: Dataset) -> None:
        data = dataset_bytes(set_fields(copy.deepcopy(dataset), _SENTINELS))
        if data[128:132] != b"DICM":
            raise TemplateError("no DICM prefix")
        self.prefix = data[:132]
        # (0002,0000) File Meta Information Group Length, UL: the bytes that follow it
        if data[132:138] != b"\x02\x00\x00\x00UL":
            raise TemplateError("File Meta does not start with its group length")
        self.group_length_head = data[132:140]
        (meta_length,) = struct.unpack_from("<I", data, 140)
        meta_end = 144 + meta_length
        self.meta = _parse(data, 144, meta_end)
        self.body = _parse(data, meta_end, len(data))
        names = {p.name for p in _slots(self.meta + self.body)}
        missing = set(_SENTINELS) - names - {"study_date", "study_time"}
        if missing:
            raise TemplateError(f"slots not found in the template: {sorted(missing)}")

    def render(self, values: dict[str, Value]) -> bytes:
        """The Part 10 file for ``values``."""
        meta: list[bytes] = []
        meta_length = _render(self.meta, values, meta)
        body: list[bytes] = []
        _render(self.body, values, body)
        head = self.prefix + self.group_length_head + struct.pack("<I", meta_length)
        return b"".join([head, *meta, *body])


def _slots(parts: list[_Part]) -> Iterator[_Slot]:
    for part in parts:
        if isinstance(part, _Slot):
            yield part
        elif isinstance(part, _Node):
            yield from _slots(part.children)


def _shape(row: Annotation) -> _Shape | None:
    """Which template a row can use, or None when only highdicom may build it."""
    text = (row.patient_id, row.annotator, row.annotation_id, row.length)
    if not all(value.isascii() for value in text):
        return None  # Specific Character Set and PN encoding differ: use highdicom
    modality = image_modality(row.sop_class_uid)
    if modality is None:
        return None  # highdicom refuses it, with the reason
    # the modality fixes the Image Library's Modality and the Procedure Reported codes
    return (row.radiologist, bool(row.study_date), bool(row.study_time), modality.value)


class FastEncoder:
    """Encode rows by rendering per-shape templates that highdicom built.

    One encoder per profile, code mode and ``ohif``: ``ohif`` changes only the value of the
    Tracking Identifier slot (and the UIDs), not the layout, but the templates are built
    with it all the same so that every byte comes from highdicom's own output.
    """

    def __init__(self, profile: Profile, mode: CodeMode, ohif: bool = False) -> None:
        self.profile = profile
        self.mode = mode
        self.ohif = ohif
        self.templates: dict[_Shape, ByteTemplate | None] = {}

    def encode_bytes(self, row: Annotation) -> bytes:
        """The Part 10 file :func:`csv2sr.conversion.build.encode` would give for ``row``."""
        shape = _shape(row)
        template = self.templates.get(shape) if shape is not None else None
        if template is not None:
            return template.render(row_values(row, self.profile, self.mode, self.ohif))
        built = encode(row, self.profile, self.mode, ohif=self.ohif)
        data = dataset_bytes(built)
        if shape is not None and shape not in self.templates:
            try:
                self.templates[shape] = ByteTemplate(built)
            except TemplateError as exc:  # stay correct: highdicom for this shape
                log.warning("no fast template for shape %s: %s", shape, exc)
                self.templates[shape] = None
        return data
