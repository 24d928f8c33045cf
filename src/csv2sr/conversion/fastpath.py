"""The same SR files as :func:`csv2sr.conversion.build.encode`, an order of magnitude faster.

highdicom's SR constructor costs 16-21 ms per document (deep copies, the evidence walk, a
re-parse of the content tree) and pydicom's writer another 3-5 ms.  Documents of one
*shape* give files that differ only in the values their rows bring, so:

1. a document's shape is its *sentinel document* (:func:`sentinel_document`): the same
   document with every value that changes between rows replaced by a distinct sentinel
   (text ``ZZ7ZZ``, UIDs ``1.2.3.999007``, numbers, codes, coordinates) and what the SR
   does not carry (identity, file name) dropped.  Two documents have the same shape when
   their sentinel documents are equal: same profile parts, same number of records, groups,
   measurements and points, the same geometry types, the same images' SOP classes (they
   fix the Modality and Procedure Reported), the same empty values and missing codes;
2. the first document of a shape is built by highdicom (the reference builder), and so is
   its sentinel document; parsing the sentinel file's bytes (explicit VR little endian,
   PS3.5 section 7.1.2) gives a template tree whose leaves are constant bytes or named
   slots (``r0.g1.m0.points``: record 0, group 1, measurement 0);
3. the template must render the first document to exactly highdicom's bytes, or the shape
   stays with highdicom (a value the slots miss cannot go unnoticed); each later document
   of the shape renders the tree with its own values (:func:`slot_values`), recomputing
   the lengths of sequences, items and the File Meta group (PS3.10 section 7.1).

A document of several groups without image headers is *composed* instead
(:mod:`csv2sr.conversion.compose`: a skeleton and per-group, per-image items, each built
once by highdicom per kind of group), as it would otherwise have a shape of its own for
each count of groups and pattern of shared images.

One encoder per profile, code mode and ``ohif``: ``ohif`` (the Cornerstone3D Tracking
Identifiers of :func:`csv2sr.conversion.build.with_ohif`) is applied to the document before
its shape is taken, so it changes only slot values and the UIDs.

With the source images (``--images``), the enriched image headers
(:func:`csv2sr.images.enrich.enriched_header`) are part of the shape and their values are
slots (:func:`_header_shape`): the Patient and General Study attributes highdicom copies
from the first image (PS3.3 C.7.1.1, C.7.2.1), the UIDs of the evidence (PS3.3 C.17.2.3),
and the Image Library values (PS3.16 TID 1602 rows 1-5: Modality, Frame of Reference UID,
Pixel Data Rows/Columns; TID 1604 rows 1-12: spacing, thickness, position, orientation),
each NUM as highdicom's ``NumContentItem`` writes it (NumericValue, a DS auto-formatted,
and FloatingPointValue, an FD, for a float).  Which attributes are present, empty or
absent, the SOP Class, Modality, Patient's Sex, and the type of each number are the shape.

Covered: every shape of every profile whose text is ASCII (in the rows and the headers)
and whose header dates and times are in the plain form (``YYYYMMDD``, ``HH[MM[SS[.F]]]``);
other header values go to highdicom.  ``tests/test_fastpath.py`` encodes every row of
the real CSV both ways (both code modes, with and without ``ohif``),
``tests/test_profiles_fastpath.py`` generated rows of every test profile, and
``tests/test_fastpath_images.py`` generated headers of every test profile (and every real
row with a synthetic image, slow), and compares the bytes.  Headers are read, not copied:
a header must not change after it was given to :meth:`FastEncoder.encode_bytes`.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
import struct
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydicom import Dataset
from pydicom.datadict import keyword_for_tag, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.valuerep import DS

from csv2sr.cache import repr_digest
from csv2sr.conversion.document import (
    as_document,
    dataset_bytes,
    document_uids,
    planar_groups,
    with_ohif,
)
from csv2sr.dicom.codes import CodeMode, to_srt
from csv2sr.errors import Csv2srError
from csv2sr.mapping.record import (
    Concept,
    Document,
    Geometry,
    Geometry3D,
    Group,
    ImageRef,
    Measurement,
    Observer,
    Qualitative,
    Record,
)
from csv2sr.mapping.spec import Spec

__all__ = ["FastEncoder", "TemplateError", "sentinel_document", "slot_values"]

log = logging.getLogger(__name__)

Value = str | int | float | tuple[float, ...] | bytes
"""A slot's value: text (and DS/IS/UI strings), an IS integer, an FD (a float: 8 bytes),
FL points (a tuple: 4 bytes each); the bytes of a run of sequence items for a
:class:`Raw` part (csv2sr.conversion.compose)."""
Visit = Callable[[str, str, Any], Any]
"""(slot name, kind, value) -> the value to put in its place."""

_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR",
             b"UT", b"UV"}
ITEM = b"\xfe\xff\x00\xe0"
_UNDEFINED = 0xFFFFFFFF
_SENTINEL_TIME = dt.datetime(1902, 3, 4, 4, 5, 6, tzinfo=dt.timezone.utc)


class TemplateError(Csv2srError):
    """The template bytes are not in the form the renderer knows (the caller falls back)."""


# --- one walk over a document's values ----------------------------------------------------

def _code(visit: Visit, name: str, concept: Concept | None) -> Concept | None:
    return None if concept is None else visit(name, "code", concept)


def _image(visit: Visit, image: ImageRef, seen: dict[str, ImageRef]) -> ImageRef:
    """An image is visited once per document (every geometry and record on it then names
    the same slots, ``i0``, ``i1`` in the order first met); its SOP class stays (it is
    part of the shape: the Modality and procedure follow it)."""
    known = seen.get(image.sop_instance_uid)
    if known is None:
        name = f"i{len(seen)}"
        known = seen[image.sop_instance_uid] = ImageRef(
            image.sop_class_uid, visit(f"{name}.instance", "uid", image.sop_instance_uid),
            visit(f"{name}.series", "uid", image.series_uid), image.frames)
    return known


def _geometry(visit: Visit, name: str, geometry: Geometry | None,
              images: dict[str, ImageRef]) -> Geometry | None:
    if geometry is None:
        return None
    image = images.get(geometry.image.sop_instance_uid) if geometry.image else None
    return Geometry(geometry.graphic_type, visit(f"{name}.points", "points", geometry.points),
                    image)


def _group(visit: Visit, name: str, group: Group, images: dict[str, ImageRef]) -> Group:
    if group.regions:  # TID 1411: one region per slice, not carried by the templates
        raise _UnsupportedError("the fast path builds no TID 1411 volumetric group")
    return Group(
        template=group.template,
        tracking_identifier=visit(f"{name}.tid", "text", group.tracking_identifier),
        tracking_uid=visit(f"{name}.tuid", "uid", group.tracking_uid),
        finding=_code(visit, f"{name}.finding", group.finding),
        finding_site=_code(visit, f"{name}.site", group.finding_site),
        measurements=tuple(
            Measurement(m.concept, visit(f"{name}.m{i}.value", "ds", m.value), m.unit,
                        _geometry(visit, f"{name}.m{i}", m.geometry, images))
            for i, m in enumerate(group.measurements)
        ),
        qualitative=tuple(Qualitative(q.concept, visit(f"{name}.q{i}", "code", q.value))
                          for i, q in enumerate(group.qualitative)),
        region=_region(visit, f"{name}.region", group.region, images),
    )


class _UnsupportedError(Exception):
    """A document the templates do not carry: highdicom builds it."""


def _region(visit: Visit, name: str, region: Geometry | Geometry3D | None,
            images: dict[str, ImageRef]) -> Geometry | Geometry3D | None:
    """A TID 1410 group's Image Region: an SCOORD, or an Image Region 3D (SCOORD3D, PS3.3
    C.18.9) whose points (FL) and Referenced Frame of Reference UID are slots."""
    if not isinstance(region, Geometry3D):
        return _geometry(visit, name, region, images)
    image = images.get(region.image.sop_instance_uid) if region.image else None
    return Geometry3D(region.graphic_type, visit(f"{name}.points", "points", region.points),
                      visit(f"{name}.for", "uid", region.frame_of_reference_uid), image)


def _record(visit: Visit, name: str, record: Record, images: dict[str, ImageRef]) -> Record:
    own = [_image(visit, image, images) for image in record.images]
    observer = record.observer
    return Record(
        line=0,
        patient_id=visit(f"{name}.patient_id", "text", record.patient_id),
        patient_name=visit(f"{name}.patient_name", "text", record.patient_name),
        study_uid=visit(f"{name}.study_uid", "uid", record.study_uid),
        study_date=visit(f"{name}.study_date", "date", record.study_date),
        study_time=visit(f"{name}.study_time", "time", record.study_time),
        images=tuple(own),
        observer=Observer(
            observer.kind, visit(f"{name}.observer", "text", observer.name),
            visit(f"{name}.login", "text", observer.login),
            _code(visit, f"{name}.role", observer.role),
            visit(f"{name}.device_uid", "uid", observer.device_uid),
        ),
        content_datetime=visit(f"{name}.when", "datetime", record.content_datetime),
        # a TID 1410 group of a 3D box is its groups per slice, each an ordinary TID 1410
        # group (csv2sr.conversion.build.planar_groups, as the reference builder writes it)
        groups=tuple(_group(visit, f"{name}.g{i}", g, images)
                     for i, g in enumerate(p for g in record.groups
                                           for p in planar_groups(g))),
        identity=(),
        procedure=_code(visit, f"{name}.procedure", record.procedure),
    )


def _walk(document: Document, visit: Visit) -> Document:
    """The document with every value replaced by ``visit``'s answer; what the SR does not
    carry (identity, file name, series key, line, cells) is dropped."""
    images: dict[str, ImageRef] = {}
    return Document(
        records=tuple(_record(visit, f"r{i}", r, images)
                      for i, r in enumerate(document.records)),
        relpath="",
        instance_number=visit("instance_number", "int", document.instance_number),
        series_key=(),
    )


class _Sentinels:
    """A sentinel per value, valid for its kind.  UIDs that are equal get the same
    sentinel (equal UIDs group the evidence by series and study, equal images share an
    Image Library entry: which UIDs are equal is part of the shape); every other value
    (text, codes, numbers, points) gets its own, as their equality changes no byte of the
    layout -- so that documents whose rows merely repeat a class or a name share a shape.
    Empty values stay empty (an empty value is left out of the SR or written empty: part
    of the shape too)."""

    def __init__(self) -> None:
        self.count = 0
        self.seen: dict[tuple[str, Any], Any] = {}

    def __call__(self, name: str, kind: str, value: Any) -> Any:
        if kind == "datetime":
            return _SENTINEL_TIME
        if value in ("", ()):
            return value
        key = (kind, value) if kind == "uid" else (kind, name)
        found = self.seen.get(key)
        if found is None:
            found = self.seen[key] = self._new(kind, value)
        return found

    def _new(self, kind: str, value: Any) -> Any:
        self.count += 1
        n = self.count
        if kind == "code":
            return Concept(f"ZZ{n}vZZ", f"ZZ{n}sZZ", f"ZZ{n}mZZ")
        if kind == "text":
            return f"ZZ{n}ZZ"
        if kind == "uid":
            return f"1.2.3.999{n:03d}"
        if kind == "number":
            return f"7{n:04d}.125"
        if kind == "ds":
            return f"9{n:04d}.4321"
        if kind == "points":
            return _closed_like(
                value, tuple(1000.0 * n + 0.5 * j + 0.25 for j in range(len(value))))
        if kind == "date":
            return f"19{n % 100:02d}0102"
        if kind == "time":
            return f"01{n % 60:02d}03"
        if kind == "int":
            return 987654000 + n
        if kind == "age":
            return f"{n % 1000:03d}Y"
        if kind == "count":
            return 60000 + n % 5000
        raise KeyError(kind)


def _closed_like(value: tuple[float, ...], sentinel: tuple[float, ...]) -> tuple[float, ...]:
    """The sentinel points closed as the value is: a POLYGON's last vertex is its first
    (an SCOORD3D x y z triplet, PS3.3 C.18.9.1.2; an x y pair for a closed SCOORD
    POLYLINE), which highdicom checks for a POLYGON."""
    for size in (3, 2):
        if len(value) >= 3 * size and value[:size] == value[-size:]:
            return sentinel[:-size] + sentinel[:size]
    return sentinel


def sentinel_document(item: Document | Record, spec: Spec) -> Document:
    """The shape of a document: itself with every row value replaced by a sentinel."""
    return _walk(as_document(item, spec), _Sentinels())


class _Recorder:
    """A visitor that records every value by slot name (then hands it to ``then``, the
    sentinels, when the shape is taken in the same walk), and whether all text is ASCII
    (else the Specific Character Set and the PN encoding differ: highdicom builds it)."""

    def __init__(self, mode: CodeMode, then: Visit | None = None) -> None:
        self.mode = mode
        self.then = then
        self.found: dict[str, Value] = {}
        self.ascii = True

    def __call__(self, name: str, kind: str, value: Any) -> Any:
        found = self.found
        if kind in ("number", "count"):
            # a TID 1604 NUM: NumericValue as highdicom's NumContentItem writes it (a DS,
            # auto-formatted), and FloatingPointValue (FD) when the value is a float
            found[f"{name}.ds"] = _ds_text(value)
            if isinstance(value, float):
                found[f"{name}.fd"] = float(value)
        elif kind == "code":
            code = value
            if not all(part.isascii() for part in code):
                self.ascii = False
            if self.mode is CodeMode.SRT and code.scheme == "SCT":
                srt = to_srt(_pydicom_code(code))
                code = Concept(srt.value, srt.scheme_designator, code.meaning)
            found[f"{name}.v"], found[f"{name}.s"], found[f"{name}.m"] = code
        elif kind != "datetime":
            if kind == "text" and not value.isascii():
                self.ascii = False
            found[name] = value
        return value if self.then is None else self.then(name, kind, value)


_DS_TEXTS: dict[tuple[Any, ...], str] = {}
""":func:`_ds_text` by number: the rows on one image repeat its header's numbers."""
_DS_TEXTS_KEPT = 65536


def _ds_text(value: Any) -> str:
    """``str(DS(value, auto_format=True))``, as highdicom's NumContentItem writes a
    NumericValue (PS3.3 C.18.1.1), remembered by everything it depends on: the type, the
    number and the string a DS or IS was read from.  A zero is not remembered (-0.0 equals
    0.0 but is written otherwise)."""
    key = (type(value), value, getattr(value, "original_string", None),
           getattr(value, "auto_format", None))
    found = _DS_TEXTS.get(key)
    if found is None:
        found = str(DS(value, auto_format=True))
        if value != 0:
            if len(_DS_TEXTS) >= _DS_TEXTS_KEPT:
                _DS_TEXTS.clear()
            _DS_TEXTS[key] = found
    return found


def _document_values(found: dict[str, Value], document: Document, spec: Spec,
                     mode: CodeMode, ohif: bool) -> dict[str, Value]:
    """``found`` with the values made for the document: its UIDs and dates."""
    uids = document_uids(document, spec, mode, ohif)
    when = document.content_datetime
    found["sr_series_uid"] = uids.series
    found["sop_instance_uid"] = uids.sop_instance
    found["content_date"] = when.strftime("%Y%m%d")
    found["content_time"] = when.strftime("%H%M%S")
    found["contribution_datetime"] = when.strftime("%Y%m%d%H%M%S")
    return found


def slot_values(document: Document, spec: Spec, mode: CodeMode,
                ohif: bool = False,
                headers: Mapping[str, Dataset] | None = None) -> dict[str, Value]:
    """Every value of the SR that changes between documents of one shape, by slot name
    (with ``headers``, the enriched image headers of
    :func:`csv2sr.images.enrich.enriched_header`, their values too: :func:`_header_shape`)."""
    recorder = _Recorder(mode)
    _walk(document, recorder)
    if headers:
        _header_shape(document, headers, recorder)
    return _document_values(recorder.found, document, spec, mode, ohif)


def _pydicom_code(concept: Concept) -> Any:
    from pydicom.sr.coding import Code  # noqa: PLC0415

    return Code(concept.value, concept.scheme, concept.meaning)


# --- the image headers (``--images``) ----------------------------------------------------

HeaderShape = tuple[tuple[str, tuple[tuple[Any, ...], ...]] | None, ...]
"""Per image of the document (in :attr:`Document.images` order): None (no header: the
row's values stand in, :func:`csv2sr.conversion.build.source_header`), or its instance
UID's sentinel and its elements as (keyword, VR, sentinel or constant value[, types])."""

_HEADER_CONSTANTS = frozenset({
    "SpecificCharacterSet", "SOPClassUID", "Modality", "PatientSex",
    "PatientIdentityRemoved", "PatientOrientation",
})
"""Header attributes whose values are part of the shape: the SOP Class and Modality pick
the Image Library descriptors (PS3.16 TID 1602 row 1, TID 1603 or 1604) and the procedure;
the others take few values (an enumerated CS) and so cost few shapes."""

_NUMERIC_KEYWORDS = frozenset({
    "Rows", "Columns", "PixelSpacing", "ImageOrientationPatient", "ImagePositionPatient",
    "SliceThickness", "ImagerPixelSpacing",
})
"""The TID 1604 (or 1603) NUM values: PS3.16 TID 1602 rows 4-5 (Pixel Data Rows,
Columns), TID 1604 rows 1-12 (spacing, thickness, position, orientation)."""

_HEADER_TEXT_VRS = frozenset({"PN", "LO", "SH", "CS", "LT", "ST", "UT"})
_DATE = re.compile(r"[0-9]{8}")
_TIME = re.compile(r"[0-9]{2}(?:[0-9]{2}(?:[0-9]{2}(?:\.[0-9]{1,6})?)?)?")


@functools.lru_cache(maxsize=256)
def _keyword(tag: int) -> str:
    return keyword_for_tag(tag)


_STEPS_KEPT = 4096
"""At most this many headers' :func:`_steps` are kept."""


def _elements(header: Dataset) -> Iterator[tuple[str, str, Any]]:
    """(keyword, VR, value) of each element of a header, in dataset order."""
    for raw in header.elements():
        element = raw if isinstance(raw, DataElement) else header[raw.tag]
        yield _keyword(element.tag), element.VR, element.value


def _multi(value: Any) -> bool:
    return isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue"


def _text(value: Any) -> str:
    """A text value as pydicom writes it (values joined by a backslash, PS3.5 6.4)."""
    return "\\".join(str(v) for v in value) if _multi(value) else str(value)


_Step = tuple[str, str, str, Any]
"""One header element as :func:`_header_shape` visits it: (keyword, VR, how, what), how
being ``fixed`` (what: the value of the shape), ``number`` or ``count`` (what: the items,
their types, whether multi-valued), or the slot kind of a text (what: the text)."""


def _header_step(keyword: str, vr: str, value: Any) -> _Step | None:
    """What :func:`_header_element` makes of one element, before any visit; None when
    only highdicom may write it."""
    if value is None or value == "" or (_multi(value) and len(value) == 0):
        return (keyword, vr, "fixed", "")
    if keyword in _HEADER_CONSTANTS:
        constant = tuple(str(v) for v in value) if _multi(value) else str(value)
        return (keyword, vr, "fixed", constant)
    if keyword in _NUMERIC_KEYWORDS and vr in ("DS", "IS", "US"):
        kind = "count" if vr == "US" else "number"
        items = tuple(value) if _multi(value) else (value,)
        if not all(isinstance(v, (int, float)) for v in items):
            return None
        types = tuple(type(v).__name__ for v in items)
        return (keyword, vr, kind, (items, types, _multi(value)))
    text = _text(value)
    if not text.isascii():
        return None
    if vr == "UI":
        return (keyword, vr, "uid", text)
    if vr == "DA":
        return (keyword, vr, "date", text) if _DATE.fullmatch(text) else None
    if vr == "TM":
        return (keyword, vr, "time", text) if _TIME.fullmatch(text) else None
    if vr == "AS":
        return (keyword, vr, "age", text)
    if vr in _HEADER_TEXT_VRS:
        return (keyword, vr, "text", text)
    return None


_STEPS: dict[int, tuple[Dataset, tuple[_Step, ...] | None]] = {}
""":func:`_header_step` of every element of a header, by the header's id (the header is
kept with them, so the id stays its own): rows on one image share its enriched header
(csv2sr.conversion.batch), and reading a pydicom Dataset costs more than the rest."""


def _steps(header: Dataset) -> tuple[_Step, ...] | None:
    """The header's elements as :func:`_header_shape` visits them, or None when one of
    them is not one the slots reproduce."""
    known = _STEPS.get(id(header))
    if known is not None and known[0] is header:
        return known[1]
    steps: list[_Step] = []
    found: tuple[_Step, ...] | None = None
    for keyword, vr, value in _elements(header):
        step = _header_step(keyword, vr, value)
        if step is None:
            break
        steps.append(step)
    else:
        found = tuple(steps)
    if len(_STEPS) >= _STEPS_KEPT:
        _STEPS.clear()
    _STEPS[id(header)] = (header, found)
    return found


def _header_element(visit: Visit, name: str, step: _Step) -> tuple[Any, ...]:
    """One element of :data:`HeaderShape`: its step's values through ``visit``."""
    keyword, vr, how, what = step
    if how == "fixed":
        return (keyword, vr, what)
    if how in ("number", "count"):
        items, types, multi = what
        found = tuple(visit(f"{name}.{j}", how, v) for j, v in enumerate(items))
        return (keyword, vr, found if multi else found[0], types)
    return (keyword, vr, visit(name, how, what))


def _header_shape(document: Document, headers: Mapping[str, Dataset],
                  visit: Visit) -> HeaderShape | None:
    """The headers' values through ``visit`` (the same visitor as the document's, so that
    a header UID equal to a row's gets the same sentinel): per image, its elements in
    dataset order.  None when a value is not one the slots reproduce exactly (non-ASCII
    text, a date or time not in the plain form, another VR): highdicom builds it."""
    shapes: list[tuple[str, tuple[tuple[Any, ...], ...]] | None] = []
    for k, image in enumerate(document.images):
        header = headers.get(image.sop_instance_uid)
        if header is None:
            shapes.append(None)
            continue
        key = visit(f"i{k}.instance", "uid", image.sop_instance_uid)
        steps = _steps(header)
        if steps is None:
            return None
        shapes.append((key, tuple(_header_element(visit, f"h{k}.{step[0]}", step)
                                  for step in steps)))
    return tuple(shapes)


def sentinel_headers(shape: HeaderShape) -> dict[str, Dataset]:
    """The headers of a shape's sentinel document, by its sentinel instance UIDs."""
    found: dict[str, Dataset] = {}
    for entry in shape:
        if entry is None:
            continue
        key, elements = entry
        ds = Dataset()
        for keyword, vr, value, *_ in elements:
            tag = tag_for_keyword(keyword)
            if tag is None:  # pragma: no cover - keywords come from a dataset
                raise KeyError(keyword)
            ds.add_new(tag, vr, list(value) if isinstance(value, tuple) else value)
        found[key] = ds
    return found


# --- the byte template -------------------------------------------------------------------

@dataclass
class Slot:
    header: bytes  # tag + VR (+ 2 reserved bytes for long VRs)
    long: bool
    name: str
    pad: bytes


@dataclass
class Node:
    """A sequence (header = tag+VR+reserved) or an item (header = item tag)."""

    header: bytes
    children: list[Part]


@dataclass
class Raw:
    """The items of a sequence rendered elsewhere (csv2sr.conversion.compose): its value
    is their bytes, inserted as they are."""

    name: str


Part = bytes | Slot | Node | Raw


def _encode_value(value: Value, pad: bytes) -> bytes:
    if isinstance(value, tuple):
        return struct.pack(f"<{len(value)}f", *value)
    if isinstance(value, float):
        return struct.pack("<d", value)
    data = str(value).encode("ascii")
    return data + pad if len(data) % 2 else data


def _parse(data: bytes, start: int, end: int, keys: dict[bytes, str]) -> list[Part]:
    """Parse explicit VR little endian elements in ``data[start:end]`` into template parts."""
    parts: list[Part] = []
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
            parts.append(Node(head, _parse_items(data, value_at, value_end, keys)))
        else:
            value = data[value_at:value_end]
            key = value if vr in (b"FL", b"FD") else value.rstrip(b"\x00 ")
            name = keys.get(key)
            if name is not None:
                parts.append(Slot(head, long, name, b"\x00" if vr == b"UI" else b" "))
            else:
                parts.append(data[pos:value_end])
        pos = value_end
    return parts


def _parse_items(data: bytes, start: int, end: int, keys: dict[bytes, str]) -> list[Part]:
    items: list[Part] = []
    pos = start
    while pos < end:
        if data[pos:pos + 4] != ITEM:
            raise TemplateError("expected an item in a sequence")
        (length,) = struct.unpack_from("<I", data, pos + 4)
        if length == _UNDEFINED:
            raise TemplateError("undefined item length in template")
        items.append(Node(ITEM, _parse(data, pos + 8, pos + 8 + length, keys)))
        pos += 8 + length
    return items


def collapse(parts: list[Part]) -> list[Part]:
    """The same parts with every sequence or item that holds no slot made constant bytes
    (its length is then known), and neighbouring constant bytes joined: rendering then
    walks only the nodes whose lengths change."""
    out: list[Part] = []
    for original in parts:
        part = original
        if isinstance(original, Node):
            children = collapse(original.children)
            if all(isinstance(child, bytes) for child in children):
                body = b"".join(child for child in children if isinstance(child, bytes))
                part = original.header + struct.pack("<I", len(body)) + body
            else:
                part = Node(original.header, children)
        last = out[-1] if out else None
        if isinstance(part, bytes) and isinstance(last, bytes):
            out[-1] = last + part
        else:
            out.append(part)
    return out


_LENGTH_32 = struct.Struct("<I").pack
_LENGTH_16 = struct.Struct("<H").pack


class Program:
    """``parts`` compiled for rendering: the flat list of their bytes with a hole for each
    slot's length and value, each Raw run and each sequence's or item's length, and per
    sequence or item its constant length and the slots and runs inside it.  Rendering
    fills the holes: no walk of the tree, one encoding per slot (PS3.5 7.1.2, 7.5: a
    sequence or item is its header, a 32-bit length and its children; a slot its header,
    a 16- or 32-bit length and its value)."""

    def __init__(self, parts: list[Part]) -> None:
        self.pieces: list[bytes] = []
        self.slots: list[tuple[int, Slot]] = []
        """(where its length goes, the slot): its value goes next."""
        self.runs: list[tuple[int, str]] = []
        self.constant = 0
        """The bytes of ``parts`` that are not slot values or runs."""
        self.nodes: list[_NodeLength] = []
        self._emit(parts, [])

    def _emit(self, parts: list[Part], inside: list[_NodeLength]) -> None:
        for part in parts:
            if isinstance(part, bytes):
                self._constant(inside, part)
            elif isinstance(part, Raw):
                if inside:
                    inside[-1].runs.append(len(self.runs))
                self.runs.append((len(self.pieces), part.name))
                self.pieces.append(b"")
            elif isinstance(part, Slot):
                self._constant(inside, part.header)
                self._constant(inside, b"\0\0\0\0" if part.long else b"\0\0")
                if inside:
                    inside[-1].slots.append(len(self.slots))
                self.slots.append((len(self.pieces) - 1, part))
                self.pieces.append(b"")
            else:
                self._constant(inside, part.header)
                self._constant(inside, b"\0\0\0\0")
                node = _NodeLength(len(self.pieces) - 1)
                if inside:
                    inside[-1].children.append(len(self.nodes))
                self.nodes.append(node)
                self._emit(part.children, [*inside, node])

    def _constant(self, inside: list[_NodeLength], data: bytes) -> None:
        self.pieces.append(data)
        self.constant += len(data)
        if inside:
            inside[-1].constant += len(data)

    def render(self, values: dict[str, Value], out: list[bytes]) -> int:
        """Append the bytes to ``out``; return how many were appended."""
        pieces = self.pieces.copy()
        slot_sizes = []
        for at, slot in self.slots:
            value = _encode_value(values[slot.name], slot.pad)
            pieces[at] = _LENGTH_32(len(value)) if slot.long else _LENGTH_16(len(value))
            pieces[at + 1] = value
            slot_sizes.append(len(value))
        run_sizes = []
        for at, name in self.runs:
            items = values[name]
            assert isinstance(items, bytes)
            pieces[at] = items
            run_sizes.append(len(items))
        lengths = [0] * len(self.nodes)
        for k in range(len(self.nodes) - 1, -1, -1):  # every node after the one it is in
            node = self.nodes[k]
            length = node.constant
            for i in node.slots:
                length += slot_sizes[i]
            for i in node.runs:
                length += run_sizes[i]
            for i in node.children:
                length += lengths[i]
            lengths[k] = length
            pieces[node.at] = _LENGTH_32(length)
        out.extend(pieces)
        return self.constant + sum(slot_sizes) + sum(run_sizes)


@dataclass
class _NodeLength:
    """A sequence's or item's length in a :class:`Program`: where it goes, and what is
    directly inside (the bytes of its children's headers and lengths are its constant):
    its constant bytes, its slots, runs and child nodes (by their index)."""

    at: int
    constant: int = 0
    slots: list[int] = field(default_factory=list)
    runs: list[int] = field(default_factory=list)
    children: list[int] = field(default_factory=list)


_PROGRAMS: dict[int, tuple[list[Part], Program]] = {}
"""Each rendered parts list's :class:`Program`, by the list's id (kept with it, so the id
stays its own): templates and composed pieces are rendered once per document."""
_PROGRAMS_KEPT = 65536


def render_parts(parts: list[Part], values: dict[str, Value], out: list[bytes]) -> int:
    """Append the bytes of ``parts`` to ``out``; return how many were appended (by the
    parts' :class:`Program`, compiled on first use; ``parts`` must not change after)."""
    known = _PROGRAMS.get(id(parts))
    if known is None or known[0] is not parts:
        if len(_PROGRAMS) >= _PROGRAMS_KEPT:
            _PROGRAMS.clear()
        known = _PROGRAMS[id(parts)] = (parts, Program(parts))
    return known[1].render(values, out)


class ByteTemplate:
    """A written SR split into constant bytes and named slots (see the module docstring)."""

    def __init__(self, data: bytes, sentinels: dict[str, Value],
                 edit: Callable[[list[Part]], list[Part]] | None = None) -> None:
        """``edit`` may change the parsed body (every element its own part, nothing
        collapsed yet) before it is collapsed (csv2sr.conversion.compose)."""
        keys: dict[bytes, str] = {}
        for name, value in sentinels.items():
            if value in ("", ()):
                continue
            key = _encode_value(value, b"").rstrip(b"\x00 ") if not isinstance(
                value, (tuple, float)) else _encode_value(value, b"")
            keys.setdefault(key, name)  # equal values: one slot (equal in the whole shape)
        if data[128:132] != b"DICM":
            raise TemplateError("no DICM prefix")
        self.prefix = data[:132]
        # (0002,0000) File Meta Information Group Length, UL: the bytes that follow it
        if data[132:138] != b"\x02\x00\x00\x00UL":
            raise TemplateError("File Meta does not start with its group length")
        self.group_length_head = data[132:140]
        (meta_length,) = struct.unpack_from("<I", data, 140)
        meta_end = 144 + meta_length
        self.meta = collapse(_parse(data, 144, meta_end, keys))
        body = _parse(data, meta_end, len(data), keys)
        self.body = collapse(edit(body) if edit is not None else body)

    def render(self, values: dict[str, Value]) -> bytes:
        """The Part 10 file for ``values``."""
        meta: list[bytes] = []
        meta_length = render_parts(self.meta, values, meta)
        body: list[bytes] = []
        render_parts(self.body, values, body)
        head = self.prefix + self.group_length_head + struct.pack("<I", meta_length)
        return b"".join([head, *meta, *body])

    def slots(self) -> set[str]:
        return {slot.name for slot in slots_in(self.meta + self.body)}


def slots_in(parts: list[Part]) -> Iterator[Slot]:
    for part in parts:
        if isinstance(part, Slot):
            yield part
        elif isinstance(part, Node):
            yield from slots_in(part.children)


Headers = Mapping[str, Dataset] | None
"""The enriched image headers of a document by SOP Instance UID (``--images``)."""
Shape = Document | tuple[Document, HeaderShape]
"""A document's sentinel document, with its headers' shape when it has headers."""

BUILD_FAILURES: tuple[type[Exception], ...] = (ValueError, KeyError, TypeError,
                                               AttributeError, struct.error)
"""What building a sentinel document or parsing its bytes may raise: the shape is then
left to highdicom (its sentinel values are not ones highdicom takes, or its bytes not in
the form the templates know)."""
_TEMPLATE_FAILURES: tuple[type[Exception], ...] = (TemplateError, *BUILD_FAILURES)


def sentinel_of(shape: Shape) -> tuple[Document, Headers]:
    """A shape's sentinel document and, with image headers, its sentinel headers."""
    if isinstance(shape, tuple):
        sentinel, header_shape = shape
        return sentinel, sentinel_headers(header_shape)
    return shape, None


MAX_PENDING = 256
"""At most this many shapes wait for their second document (:attr:`FastEncoder.pending`)."""


def shape_digest(shape: Shape) -> str:
    """The name a template is kept under between runs (:func:`csv2sr.cache.repr_digest`).
    Equal names mean equal shapes; a value whose ``repr`` differed from run to run would
    only make a name that no later run asks for."""
    return repr_digest(shape)


class FastEncoder:
    """Encode documents by rendering per-shape templates that highdicom built.

    ``stored``: the sentinel bytes of templates an earlier run proved, by
    :func:`shape_digest`, for the same profile, code mode, ``ohif``, csv2sr code and library
    versions (the convert cache keeps them under that key, :mod:`csv2sr.conversion.memo`).
    A stored template is the one this encoder would build from the same bytes, proven as
    every template is, on the first document of its shape in the run that built it; a
    document of a stored shape is rendered at once, without highdicom.  With ``keep``,
    :attr:`proven` collects the templates this encoder built, for the cache.
    """

    def __init__(self, spec: Spec, mode: CodeMode, ohif: bool = False,
                 stored: Mapping[str, bytes] | None = None, keep: bool = False) -> None:
        self.spec = spec
        self.mode = mode
        self.ohif = ohif
        self.stored = dict(stored or {})
        """Stored templates not looked up yet (each is taken once, used or not)."""
        self.keep = keep
        self.proven: dict[str, bytes] = {}
        """Sentinel bytes of the templates built here (with ``keep``), by shape digest."""
        self.templates: dict[Shape, ByteTemplate | None] = {}
        self.pending: dict[Shape, tuple[Document, Headers, bytes]] = {}
        """Shapes seen once: the document, its headers and its highdicom bytes.  A template
        (one more highdicom build, of the sentinel) pays only for a shape that comes again,
        so a shape's first document is kept to prove its template on when the second
        comes; a one-row table or a shape of one document never builds one."""
        # compose builds on this module's templates: imported here, not at the top
        from csv2sr.conversion.compose import Composer  # noqa: PLC0415

        self.composer = Composer(self._shape_values, self._highdicom, spec.name)
        """Documents of several groups (:func:`csv2sr.conversion.compose.composable`)."""

    def _highdicom(self, document: Document, headers: Headers) -> bytes:
        """highdicom's bytes of the document (the reference builder; the template path
        needs it only for the first documents of a shape it has no template of)."""
        from csv2sr.conversion.build import encode_document  # noqa: PLC0415

        return dataset_bytes(encode_document(document, self.spec, self.mode, headers,
                                             ohif=self.ohif))

    def shape(self, document: Document, headers: Headers = None) -> Shape | None:
        """The document's shape (with its image headers'), or None when only highdicom
        may build it."""
        return self._shape_values(document, headers)[0]

    def _shape_values(self, document: Document,
                      headers: Headers) -> tuple[Shape | None, dict[str, Value]]:
        """The shape and the slot values, in one walk."""
        recorder = _Recorder(self.mode, _Sentinels())
        try:
            sentinel = _walk(document, recorder)
        except _UnsupportedError:
            return None, {}
        found = _header_shape(document, headers, recorder) if headers else None
        values = _document_values(recorder.found, document, self.spec, self.mode, self.ohif)
        if not recorder.ascii or (headers and found is None):
            return None, values
        return (sentinel if found is None else (sentinel, found)), values

    def encode_bytes(self, item: Document | Record, headers: Headers = None) -> bytes:
        """The Part 10 file :func:`csv2sr.conversion.build.encode` would give (with
        ``headers``, the enriched image headers by SOP Instance UID, as ``encode``'s)."""
        document = with_ohif(item, self.spec) if self.ohif else as_document(item, self.spec)
        headers = headers or None
        shape, values = self._shape_values(document, headers)
        if shape is not None:
            composed = self.composer.encode(document, headers, shape, values)
            if composed is not None:
                return composed
        template = self.templates.get(shape) if shape is not None else None
        if template is None and shape is not None and self.stored and shape not in self.templates:
            template = self._stored(shape)
        if template is not None:
            return template.render(values)
        if shape is not None and shape in self.pending and shape not in self.templates:
            first, first_headers, first_data = self.pending.pop(shape)
            template = self.templates[shape] = self._template(shape, first, first_headers,
                                                              first_data)
            if template is not None:
                return template.render(values)
        data = self._highdicom(document, headers)
        if shape is not None and shape not in self.templates:
            if len(self.pending) < MAX_PENDING:
                self.pending[shape] = (document, headers, data)
            else:  # many shapes seen once: prove on this one now, keep nothing
                self.templates[shape] = self._template(shape, document, headers, data)
        return data

    def _values(self, document: Document, headers: Headers) -> dict[str, Value]:
        return slot_values(document, self.spec, self.mode, self.ohif, headers)

    def _stored(self, shape: Shape) -> ByteTemplate | None:
        """The template of ``shape`` from :attr:`stored`, or None when none is stored (or
        its bytes no longer parse: the shape is then built as without it)."""
        data = self.stored.pop(shape_digest(shape), None)
        if data is None:
            return None
        try:
            template = self._parsed(data, *sentinel_of(shape))
        except _TEMPLATE_FAILURES as exc:
            log.info("a stored template of %s is not used: %s", self.spec.name, exc)
            return None
        self.templates[shape] = template
        return template

    def _parsed(self, built: bytes, sentinel: Document, sentinel_hdrs: Headers) -> ByteTemplate:
        """The template whose sentinel document (and headers) gave the bytes ``built``."""
        return ByteTemplate(built, self._values(sentinel, sentinel_hdrs))

    def prove_pending(self) -> None:
        """Build and prove the template of every shape seen only once (:attr:`pending`),
        so that :attr:`proven` holds one for every shape of the run (with ``keep``: a
        one-row table, or a shape of one document, would otherwise leave none for the
        next run)."""
        for shape, (document, headers, data) in list(self.pending.items()):
            del self.pending[shape]
            self.templates[shape] = self._template(shape, document, headers, data)

    def _template(self, shape: Shape, document: Document, headers: Headers,
                  data: bytes) -> ByteTemplate | None:
        """The template of a shape, proven on the document that first had it."""
        sentinel, sentinel_hdrs = sentinel_of(shape)
        try:
            with warnings.catch_warnings():  # a sentinel name has one component
                warnings.simplefilter("ignore", UserWarning)
                built = self._highdicom(sentinel, sentinel_hdrs)
            template = self._parsed(built, sentinel, sentinel_hdrs)
            if template.render(self._values(document, headers)) != data:
                raise TemplateError("the template does not give highdicom's bytes")
        except _TEMPLATE_FAILURES as exc:
            log.warning("no fast template for a document shape of %s: %s", self.spec.name, exc)
            return None
        if self.keep:
            self.proven[shape_digest(shape)] = built
        return template
