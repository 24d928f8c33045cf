"""SRs of several measurement groups, composed from pieces that highdicom built once.

A document of many groups (a profile that puts every box of a series in one SR) has a
shape of its own for each count of groups and each way the groups share images, so the
whole-document templates of :mod:`csv2sr.conversion.fastpath` would cost two highdicom
builds for almost every such document.  Its bytes are, though, a skeleton and runs of
sequence items that do not depend on each other:

- PS3.16 TID 1500 row 6, Imaging Measurements: one item per measurement group (TID 1501,
  1410), in the order of the document's groups;
- TID 1500 row 5, Image Library (TID 1600 row 2): one Image Library Group per image
  (TID 1601 row 1, its entry), in the order the images are first referenced
  (:attr:`csv2sr.mapping.record.Document.images`);
- PS3.3 C.17.2.3, Current Requested Procedure Evidence Sequence: the study, then one
  Referenced Series Sequence item per series in the order its first image comes, each
  with one Referenced SOP Sequence item per image (highdicom's ``collect_evidence``).

So the pieces come from one-group documents (:func:`one_group`: the document's first
record with one of its groups, on that group's images), each built by highdicom for its
sentinel document and proven, like a whole-document template, on its real values; the
skeleton is the first group's document with those three runs cut out.  A document is then
its skeleton with, in each run, the pieces of its own groups and images, each rendered
with its own values (slot names mapped from the piece's ``r0.g0.``/``i0.`` to the
document's ``r2.g1.``/``i5.``).

With the source images (``--images``), an image's header values (``h3.``) go with its
Image Library piece (TID 1602/1604 descriptors), and the first image's with the skeleton
(the Patient and General Study modules highdicom copies from it, PS3.3 C.7.1.1, C.7.2.1).

Covered (:func:`composable`): documents of more than one group whose images all have one
SOP Class (so one Modality and one Procedure Reported, TID 1500 row 4), whose groups are
all planar or all 3D (Enhanced or Comprehensive 3D SR, PS3.3 A.35.2/A.35.13), every image
referenced by a group and the first by the first group; with headers, every image has
one, all of one study, each in its image's series.  Other documents take the
whole-document templates.  ``tests/test_compose.py`` compares the bytes with highdicom's
for documents of many group counts and image patterns, ``tests/test_fastpath_images.py``
with generated headers.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import struct
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from pydicom import Dataset
from pydicom.datadict import tag_for_keyword

from csv2sr.conversion.fastpath import (
    BUILD_FAILURES,
    ITEM,
    ByteTemplate,
    Headers,
    Node,
    Part,
    Raw,
    Shape,
    TemplateError,
    Value,
    collapse,
    render_parts,
    sentinel_of,
    slots_in,
)
from csv2sr.dicom.codes import Codes
from csv2sr.mapping.record import Document, Group, ImageRef

__all__ = ["Composer", "composable", "one_group"]

log = logging.getLogger(__name__)


def _tag_bytes(keyword: str) -> bytes:
    """An attribute's tag as explicit VR little endian writes it (PS3.5 7.1.2): group,
    then element, each 16 bits little endian (the tag from pydicom's dictionary)."""
    tag = tag_for_keyword(keyword)
    assert tag is not None, keyword
    return struct.pack("<HH", tag >> 16, tag & 0xFFFF)


_CONTENT = _tag_bytes("ContentSequence")
_CONCEPT_NAME = _tag_bytes("ConceptNameCodeSequence")
_CODE_VALUE = _tag_bytes("CodeValue")
_EVIDENCE = _tag_bytes("CurrentRequestedProcedureEvidenceSequence")
_SERIES = _tag_bytes("ReferencedSeriesSequence")
_SOPS = _tag_bytes("ReferencedSOPSequence")

_GROUPS, _LIBRARY, _SERIES_RUN, _INSTANCES = "@groups", "@library", "@series", "@instances"
_LOCAL = re.compile(r"(r0\.g0|([ih])([0-9]+))\.")
_DOCUMENT_LEVEL = re.compile(r"(r[0-9]+\.g[0-9]+|i[0-9]+|h[1-9][0-9]*)\.")
"""What a skeleton must not hold: a group's or an image's values (the first image's header,
``h0.``, gives the Patient and Study modules: PS3.3 C.7.1.1, C.7.2.1)."""


def group_images(group: Group) -> tuple[ImageRef, ...]:
    """The images a group references, each once, in the order its walk meets them."""
    seen: dict[str, ImageRef] = {}
    geometries = [m.geometry for m in group.measurements] + [group.region]
    for geometry in geometries:
        if geometry is not None and geometry.image is not None:
            seen.setdefault(geometry.image.sop_instance_uid, geometry.image)
    return tuple(seen.values())


def composable(document: Document, headers: Headers = None) -> bool:
    """True when :class:`Composer` builds the document (see the module docstring)."""
    groups = document.groups
    if len(groups) < 2 or any(g.regions for g in groups) or not document.records[0].groups:
        return False
    images = document.images
    referenced = {i.sop_instance_uid for g in groups for i in group_images(g)}
    first = group_images(groups[0])
    return (len({i.sop_class_uid for i in images}) == 1
            and len({g.is_3d for g in groups}) == 1
            and referenced == {i.sop_instance_uid for i in images}
            and bool(first) and first[0] == images[0]
            and (not headers or _one_study(images, headers)))


def _one_study(images: tuple[ImageRef, ...], headers: Mapping[str, Dataset]) -> bool:
    """Every image has a header, of one SOP Class and study, in the image's series: the
    evidence is then one study item (PS3.3 C.17.2.3) grouped as the images are."""
    found = [headers.get(i.sop_instance_uid) for i in images]
    if any(h is None for h in found):
        return False
    return (len({str(h.get("SOPClassUID", "")) for h in found if h is not None}) == 1
            and len({str(h.get("StudyInstanceUID", "")) for h in found
                     if h is not None}) == 1
            and all(h is not None and str(h.get("SeriesInstanceUID", "")) == i.series_uid
                    for i, h in zip(images, found, strict=True)))


def one_group(document: Document, group: Group,
              headers: Headers = None) -> tuple[Document, Headers]:
    """The document's first record with ``group`` as its only group, on its images (and
    those images' headers)."""
    images = group_images(group)
    first = dataclasses.replace(document.records[0], groups=(group,), images=images)
    own = None if headers is None else {
        i.sop_instance_uid: headers[i.sop_instance_uid] for i in images
        if i.sop_instance_uid in headers}
    return dataclasses.replace(document, records=(first,)), own


# --- one one-group document, cut into a skeleton and pieces ---------------------------------

@dataclass
class _Split:
    """A one-group document's template, cut: the skeleton (a template whose three runs are
    :class:`Raw` parts) and its pieces, each a collapsed sequence item with the document's
    slot names (``r0.g0.``, ``i0.``...)."""

    skeleton: ByteTemplate
    group: list[Part]
    library: list[list[Part]]
    """Per image of the document (its ``Document.images`` order)."""
    instances: list[list[Part]]
    """Per image: its Referenced SOP Sequence item."""
    series: list[list[Part]]
    """Per series in the order its first image comes: its Referenced Series Sequence item
    (whose Referenced SOP Sequence holds an ``@instances`` run)."""


def _tag(part: Part) -> bytes:
    if isinstance(part, bytes):
        return part[:4]
    if isinstance(part, Node):
        return part.header[:4]
    if isinstance(part, Raw):
        return b""
    return part.header[:4]


def _sequence(parts: list[Part], tag: bytes) -> Node:
    found = [p for p in parts if isinstance(p, Node) and _tag(p) == tag]
    if len(found) != 1:
        raise TemplateError(f"expected one sequence {tag.hex()} in the template")
    return found[0]


def _items(sequence: Node) -> list[Node]:
    items = [p for p in sequence.children if isinstance(p, Node) and p.header == ITEM]
    if len(items) != len(sequence.children):
        raise TemplateError("a sequence holds something other than items")
    return items


def _concept(item: Node) -> str:
    """The Code Value of an item's Concept Name (PS3.3 C.17.3), or ''."""
    names = [p for p in item.children if isinstance(p, Node) and _tag(p) == _CONCEPT_NAME]
    if not names:
        return ""
    for part in _items(names[0])[0].children:
        if isinstance(part, bytes) and part[:4] == _CODE_VALUE:
            return part[8:].rstrip(b" \x00").decode("ascii")
    return ""


def _cut(sequence: Node, name: str) -> list[list[Part]]:
    """The sequence's items, collapsed; the sequence then holds the run ``name``."""
    pieces = [collapse([item]) for item in _items(sequence)]
    sequence.children = [Raw(name)]
    return pieces


class _Cutter:
    """The ``edit`` of :class:`ByteTemplate`: cuts the three runs out of the body."""

    def __init__(self, series_count: int) -> None:
        self.series_count = series_count
        self.group: list[Part] = []
        self.library: list[list[Part]] = []
        self.series: list[list[Part]] = []
        self.instances: list[list[Part]] = []

    def __call__(self, body: list[Part]) -> list[Part]:
        root = {_concept(item): item for item in _items(_sequence(body, _CONTENT))}
        if Codes.IMAGING_MEASUREMENTS.value not in root or Codes.IMAGE_LIBRARY.value not in root:
            raise TemplateError("no Imaging Measurements or Image Library in the template")
        measurements = _sequence(root[Codes.IMAGING_MEASUREMENTS.value].children, _CONTENT)
        self.group = [p for piece in _cut(measurements, _GROUPS) for p in piece]
        self.library = _cut(_sequence(root[Codes.IMAGE_LIBRARY.value].children, _CONTENT),
                            _LIBRARY)
        studies = _items(_sequence(body, _EVIDENCE))
        if len(studies) != 1:
            raise TemplateError("the evidence of a one-study document has several studies")
        series = _sequence(studies[0].children, _SERIES)
        items = _items(series)
        if len(items) != self.series_count:
            raise TemplateError("the evidence does not hold one item per series")
        for item in items:
            self.instances.extend(_cut(_sequence(item.children, _SOPS), _INSTANCES))
        self.series = _cut(series, _SERIES_RUN)
        return body


def _series_order(images: Iterable[ImageRef]) -> list[str]:
    found: list[str] = []
    for image in images:
        if image.series_uid not in found:
            found.append(image.series_uid)
    return found


def _by_series(images: tuple[ImageRef, ...]) -> list[int]:
    """The images' indexes in evidence order: by series (first come), then image order."""
    order = _series_order(images)
    return sorted(range(len(images)), key=lambda k: order.index(images[k].series_uid))


# --- a document's plan and its rendering ------------------------------------------------

Piece = tuple[list[Part], tuple[tuple[str, str], ...]]
"""A piece's parts and (its slot name, the document's slot name) for each of its slots."""


def _names(parts: list[Part], local: Callable[[str], str]) -> tuple[tuple[str, str], ...]:
    return tuple((slot.name, local(slot.name)) for slot in slots_in(parts))


def _renamer(record: int, group: int, images: list[int]) -> Callable[[str], str]:
    """A piece's slot name -> the document's: ``r0.g0.`` -> ``r{record}.g{group}.``,
    ``i{n}.`` -> ``i{images[n]}.`` (and ``h{n}.``, its header's values)."""
    def rename(name: str) -> str:
        found = _LOCAL.match(name)
        if found is None:
            raise TemplateError(f"a piece holds the document-level slot {name}")
        rest = name[found.end():]
        if found.group(2) is None:
            return f"r{record}.g{group}.{rest}"
        return f"{found.group(2)}{images[int(found.group(3))]}.{rest}"
    return rename


@dataclass
class _Plan:
    skeleton: ByteTemplate
    groups: list[Piece]
    library: list[Piece]
    series: list[tuple[Piece, list[Piece]]]


def _piece(piece: Piece, values: dict[str, Value]) -> bytes:
    parts, names = piece
    out: list[bytes] = []
    render_parts(parts, {mine: values[theirs] for mine, theirs in names}, out)
    return b"".join(out)


def _render_plan(plan: _Plan, values: dict[str, Value]) -> bytes:
    runs = dict(values)
    runs[_GROUPS] = b"".join(_piece(p, values) for p in plan.groups)
    runs[_LIBRARY] = b"".join(_piece(p, values) for p in plan.library)
    series = []
    for (parts, names), instances in plan.series:
        own: dict[str, Value] = {mine: values[theirs] for mine, theirs in names}
        own[_INSTANCES] = b"".join(_piece(p, values) for p in instances)
        out: list[bytes] = []
        render_parts(parts, own, out)
        series.append(b"".join(out))
    runs[_SERIES_RUN] = b"".join(series)
    return plan.skeleton.render(runs)


PLANS_KEPT = 4096
"""At most this many document shapes' plans are kept (a plan is cheap to make again: its
pieces stay)."""

Shaper = Callable[[Document, Headers], tuple[Shape | None, dict[str, Value]]]
"""A document and its headers -> (its shape or None, its slot values) (FastEncoder's one
walk)."""
Builder = Callable[[Document, Headers], bytes]
"""A document and its headers -> highdicom's Part 10 bytes."""


class Composer:
    """Plans (per document shape) and splits (per one-group document shape), built on
    demand; a shape it cannot compose is remembered as None (the caller falls back)."""

    def __init__(self, shaper: Shaper, builder: Builder, name: str) -> None:
        self.shaper = shaper
        self.builder = builder
        self.name = name
        self.plans: dict[Shape, _Plan | None] = {}
        self.splits: dict[Shape, _Split | None] = {}

    def encode(self, document: Document, headers: Headers, shape: Shape,
               values: dict[str, Value]) -> bytes | None:
        """The document's bytes, or None when it is not composed (whether it is, is a
        matter of its shape: :func:`composable`)."""
        if shape not in self.plans:
            if len(self.plans) >= PLANS_KEPT:  # memory stays flat on any table
                self.plans.clear()
            try:
                self.plans[shape] = (self._plan(document, headers)
                                     if composable(document, headers) else None)
            except TemplateError as exc:
                log.warning("no composed template for a document shape of %s: %s",
                            self.name, exc)
                self.plans[shape] = None
        plan = self.plans[shape]
        return None if plan is None else _render_plan(plan, values)

    def _plan(self, document: Document, headers: Headers) -> _Plan | None:
        images = document.images
        index = {image.sop_instance_uid: k for k, image in enumerate(images)}
        groups: list[Piece] = []
        library: dict[int, Piece] = {}
        instances: dict[int, Piece] = {}
        skeleton: _Split | None = None
        for r, record in enumerate(document.records):
            for j, group in enumerate(record.groups):
                split = self._split(*one_group(document, group, headers))
                if split is None:
                    return None
                skeleton = skeleton or split
                own = [index[i.sop_instance_uid] for i in group_images(group)]
                rename = _renamer(r, j, own)
                groups.append((split.group, _names(split.group, rename)))
                for n, k in enumerate(own):
                    if k not in library:
                        library[k] = self._image_piece(split.library[n], r, j, n, k)
                        instances[k] = self._image_piece(split.instances[n], r, j, n, k)
        assert skeleton is not None  # composable: more than one group
        piece = skeleton.series[0]  # named after its first image, i0
        series = _series_runs(images,
                              lambda s, k: (piece, _names(piece, _renamer(0, 0, [k]))),
                              instances.__getitem__)
        return _Plan(skeleton.skeleton, groups, [library[k] for k in range(len(images))],
                     series)

    @staticmethod
    def _image_piece(parts: list[Part], record: int, group: int, local: int,
                     image: int) -> Piece:
        """An image's piece from the split of group ``group`` of record ``record`` (a
        value it shares with that group, such as the Frame of Reference UID of the
        group's Image Region 3D, is named after the group)."""
        mapping = [0] * (local + 1)
        mapping[local] = image
        return parts, _names(parts, _renamer(record, group, mapping))

    def _split(self, document: Document, headers: Headers) -> _Split | None:
        """The split of a one-group document's shape (None: it cannot be cut)."""
        shape, values = self.shaper(document, headers)
        if shape is None:
            raise TemplateError("a group the templates do not carry")
        if shape not in self.splits:
            try:
                self.splits[shape] = self._build_split(document, headers, shape, values)
            except TemplateError:
                self.splits[shape] = None
                raise
        return self.splits[shape]

    def _build_split(self, document: Document, headers: Headers, shape: Shape,
                     values: dict[str, Value]) -> _Split:
        """Build the one-group document's sentinel with highdicom, cut it, and prove the
        cut template on the document itself (its own pieces give highdicom's bytes)."""
        sentinel, sentinel_headers_, sentinel_values = self._sentinel(shape)
        cutter = _Cutter(len(_series_order(document.images)))
        try:
            with warnings.catch_warnings():  # a sentinel name has one component
                warnings.simplefilter("ignore", UserWarning)
                built = self.builder(sentinel, sentinel_headers_)
            skeleton = ByteTemplate(built, sentinel_values, edit=cutter)
        except BUILD_FAILURES as exc:
            raise TemplateError(f"{type(exc).__name__}: {exc}") from exc
        leftover = [s.name for s in slots_in(skeleton.body) if _DOCUMENT_LEVEL.match(s.name)]
        if leftover:
            raise TemplateError(f"the skeleton holds the slots of a group: {leftover[:3]}")
        images = document.images
        if len(cutter.library) != len(images) or len(cutter.instances) != len(images):
            raise TemplateError("the Image Library or evidence is not one entry per image")
        instances: list[list[Part]] = [[] for _ in images]
        for n, k in enumerate(_by_series(images)):  # evidence order -> image order
            instances[k] = cutter.instances[n]
        split = _Split(skeleton, cutter.group, cutter.library, instances, cutter.series)
        own = _plan_of_one(split, document)
        if _render_plan(own, values) != self.builder(document, headers):
            raise TemplateError("the composed template does not give highdicom's bytes")
        return split

    def _sentinel(self, shape: Shape) -> tuple[Document, Headers, dict[str, Value]]:
        """The sentinel document of a shape, its sentinel headers and its slot values."""
        sentinel, headers = sentinel_of(shape)
        _, values = self.shaper(sentinel, headers)
        return sentinel, headers, values


def _plan_of_one(split: _Split, document: Document) -> _Plan:
    """The plan of a one-group document from its own split (every name its own)."""
    images = document.images
    identity = _renamer(0, 0, list(range(len(images))))

    def own(parts: list[Part]) -> Piece:
        return parts, _names(parts, identity)

    series = _series_runs(images, lambda s, _k: own(split.series[s]),
                          lambda k: own(split.instances[k]))
    return _Plan(split.skeleton, [own(split.group)], [own(p) for p in split.library], series)


def _series_runs(images: tuple[ImageRef, ...], series: Callable[[int, int], Piece],
                 instance: Callable[[int], Piece]) -> list[tuple[Piece, list[Piece]]]:
    """The evidence's series (PS3.3 C.17.2.3) in the order their first images come: the
    piece of series ``s`` whose first image is ``k`` (``series(s, k)``), and the pieces of
    its images in image order."""
    runs = []
    for s, uid in enumerate(_series_order(images)):
        members = [k for k, image in enumerate(images) if image.series_uid == uid]
        runs.append((series(s, members[0]), [instance(k) for k in members]))
    return runs
