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

One encoder per profile, code mode and ``ohif``: ``ohif`` (the Cornerstone3D Tracking
Identifiers of :func:`csv2sr.conversion.build.with_ohif`) is applied to the document before
its shape is taken, so it changes only slot values and the UIDs.

Covered: every shape of every profile whose text is ASCII and whose source images are not
read (``--images`` builds with highdicom).  ``tests/test_fastpath.py`` encodes every row of
the real CSV both ways (both code modes, with and without ``ohif``), and
``tests/test_profiles_fastpath.py`` generated rows of every test profile, and compares the
bytes.
"""

from __future__ import annotations

import datetime as dt
import logging
import struct
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from csv2sr.conversion.build import (
    as_document,
    dataset_bytes,
    document_uids,
    encode_document,
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

Value = str | int | tuple[float, ...]
Visit = Callable[[str, str, Any], Any]
"""(slot name, kind, value) -> the value to put in its place."""

_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR",
             b"UT", b"UV"}
_ITEM = b"\xfe\xff\x00\xe0"
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
        region=_geometry(visit, f"{name}.region", _planar(group.region), images),
    )


def _planar(region: Geometry | Geometry3D | None) -> Geometry | None:
    """The fast path builds 2D regions only: an Image Region 3D (which needs the source
    images, so never reaches it) is refused."""
    if isinstance(region, Geometry3D):
        raise TypeError("the fast path builds no SCOORD3D: build it with highdicom")
    return region


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
        groups=tuple(_group(visit, f"{name}.g{i}", g, images)
                     for i, g in enumerate(record.groups)),
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
        if key not in self.seen:
            self.seen[key] = self._new(kind, value)
        return self.seen[key]

    def _new(self, kind: str, value: Any) -> Any:
        self.count += 1
        n = self.count
        if kind == "code":
            return Concept(f"ZZ{n}vZZ", f"ZZ{n}sZZ", f"ZZ{n}mZZ")
        makers: dict[str, Callable[[], Any]] = {
            "text": lambda: f"ZZ{n}ZZ",
            "uid": lambda: f"1.2.3.999{n:03d}",
            "date": lambda: f"19{n % 100:02d}0102",
            "time": lambda: f"01{n % 60:02d}03",
            "ds": lambda: f"9{n:04d}.4321",
            "int": lambda: 987654000 + n,
            "points": lambda: tuple(1000.0 * n + 0.5 * j + 0.25 for j in range(len(value))),
        }
        return makers[kind]()


def sentinel_document(item: Document | Record, spec: Spec) -> Document:
    """The shape of a document: itself with every row value replaced by a sentinel."""
    return _walk(as_document(item, spec), _Sentinels())


def slot_values(document: Document, spec: Spec, mode: CodeMode,
                ohif: bool = False) -> dict[str, Value]:
    """Every value of the SR that changes between documents of one shape, by slot name."""
    found: dict[str, Value] = {}

    def record(name: str, kind: str, value: Any) -> Any:
        if kind == "code":
            code = value
            if mode is CodeMode.SRT and code.scheme == "SCT":
                srt = to_srt(_pydicom_code(code))
                code = Concept(srt.value, srt.scheme_designator, code.meaning)
            found[f"{name}.v"], found[f"{name}.s"], found[f"{name}.m"] = code
        elif kind != "datetime":
            found[name] = value
        return value

    _walk(document, record)
    uids = document_uids(document, spec, mode, ohif)
    when = document.content_datetime
    found["sr_series_uid"] = uids.series
    found["sop_instance_uid"] = uids.sop_instance
    found["content_date"] = when.strftime("%Y%m%d")
    found["content_time"] = when.strftime("%H%M%S")
    found["contribution_datetime"] = when.strftime("%Y%m%d%H%M%S")
    return found


def _pydicom_code(concept: Concept) -> Any:
    from pydicom.sr.coding import Code  # noqa: PLC0415

    return Code(concept.value, concept.scheme, concept.meaning)


def _ascii(document: Document) -> bool:
    """True when every text value is ASCII (else the Specific Character Set and the PN
    encoding differ: highdicom builds it)."""
    ok = True

    def check(name: str, kind: str, value: Any) -> Any:
        nonlocal ok
        if (kind == "text" and not value.isascii()) or (
                kind == "code" and not all(part.isascii() for part in value)):
            ok = False
        return value

    _walk(document, check)
    return ok


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


def _encode_value(value: Value, pad: bytes) -> bytes:
    if isinstance(value, tuple):
        return struct.pack(f"<{len(value)}f", *value)
    data = str(value).encode("ascii")
    return data + pad if len(data) % 2 else data


def _parse(data: bytes, start: int, end: int, keys: dict[bytes, str]) -> list[_Part]:
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
            parts.append(_Node(head, _parse_items(data, value_at, value_end, keys)))
        else:
            value = data[value_at:value_end]
            key = value if vr == b"FL" else value.rstrip(b"\x00 ")
            name = keys.get(key)
            if name is not None:
                parts.append(_Slot(head, long, name, b"\x00" if vr == b"UI" else b" "))
            else:
                parts.append(data[pos:value_end])
        pos = value_end
    return parts


def _parse_items(data: bytes, start: int, end: int, keys: dict[bytes, str]) -> list[_Part]:
    items: list[_Part] = []
    pos = start
    while pos < end:
        if data[pos:pos + 4] != _ITEM:
            raise TemplateError("expected an item in a sequence")
        (length,) = struct.unpack_from("<I", data, pos + 4)
        if length == _UNDEFINED:
            raise TemplateError("undefined item length in template")
        items.append(_Node(_ITEM, _parse(data, pos + 8, pos + 8 + length, keys)))
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
            value = _encode_value(values[part.name], part.pad)
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

    def __init__(self, data: bytes, sentinels: dict[str, Value]) -> None:
        keys: dict[bytes, str] = {}
        for name, value in sentinels.items():
            if value in ("", ()):
                continue
            key = _encode_value(value, b"").rstrip(b"\x00 ") if not isinstance(
                value, tuple) else _encode_value(value, b"")
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
        self.meta = _parse(data, 144, meta_end, keys)
        self.body = _parse(data, meta_end, len(data), keys)

    def render(self, values: dict[str, Value]) -> bytes:
        """The Part 10 file for ``values``."""
        meta: list[bytes] = []
        meta_length = _render(self.meta, values, meta)
        body: list[bytes] = []
        _render(self.body, values, body)
        head = self.prefix + self.group_length_head + struct.pack("<I", meta_length)
        return b"".join([head, *meta, *body])

    def slots(self) -> set[str]:
        return {slot.name for slot in _slots(self.meta + self.body)}


def _slots(parts: list[_Part]) -> Iterator[_Slot]:
    for part in parts:
        if isinstance(part, _Slot):
            yield part
        elif isinstance(part, _Node):
            yield from _slots(part.children)


MAX_PENDING = 256
"""At most this many shapes wait for their second document (:attr:`FastEncoder.pending`)."""


class FastEncoder:
    """Encode documents by rendering per-shape templates that highdicom built."""

    def __init__(self, spec: Spec, mode: CodeMode, ohif: bool = False) -> None:
        self.spec = spec
        self.mode = mode
        self.ohif = ohif
        self.templates: dict[Document, ByteTemplate | None] = {}
        self.pending: dict[Document, tuple[Document, bytes]] = {}
        """Shapes seen once: the document and its highdicom bytes.  A template (one more
        highdicom build, of the sentinel) pays only for a shape that comes again, so a
        shape's first document is kept to prove its template on when the second comes;
        a one-row table or a shape of one document never builds one."""

    def shape(self, document: Document) -> Document | None:
        """The document's shape, or None when only highdicom may build it."""
        if not _ascii(document):
            return None
        return _walk(document, _Sentinels())

    def encode_bytes(self, item: Document | Record) -> bytes:
        """The Part 10 file :func:`csv2sr.conversion.build.encode` would give."""
        document = with_ohif(item, self.spec) if self.ohif else as_document(item, self.spec)
        shape = self.shape(document)
        template = self.templates.get(shape) if shape is not None else None
        if template is not None:
            return template.render(slot_values(document, self.spec, self.mode, self.ohif))
        if shape is not None and shape in self.pending and shape not in self.templates:
            first, first_data = self.pending.pop(shape)
            template = self.templates[shape] = self._template(shape, first, first_data)
            if template is not None:
                return template.render(slot_values(document, self.spec, self.mode, self.ohif))
        data = dataset_bytes(encode_document(document, self.spec, self.mode, ohif=self.ohif))
        if shape is not None and shape not in self.templates:
            if len(self.pending) < MAX_PENDING:
                self.pending[shape] = (document, data)
            else:  # many shapes seen once: prove on this one now, keep nothing
                self.templates[shape] = self._template(shape, document, data)
        return data

    def _template(self, shape: Document, document: Document, data: bytes) -> ByteTemplate | None:
        """The template of a shape, proven on the document that first had it."""
        try:
            with warnings.catch_warnings():  # a sentinel name has one component
                warnings.simplefilter("ignore", UserWarning)
                built = dataset_bytes(encode_document(shape, self.spec, self.mode,
                                                      ohif=self.ohif))
            template = ByteTemplate(built, slot_values(shape, self.spec, self.mode, self.ohif))
            if template.render(slot_values(document, self.spec, self.mode, self.ohif)) != data:
                raise TemplateError("the template does not give highdicom's bytes")
        except (TemplateError, ValueError, KeyError, struct.error) as exc:
            log.warning("no fast template for a document shape of %s: %s", self.spec.name, exc)
            return None
        return template

