"""SR XML -> pydicom dataset, as pixelmed's ``toDICOM`` builds it, or an error.

The header (``DicomStructuredReportHeader``) holds one element per attribute, named by its
keyword, with ``group``/``element``/``vr`` and ``<value>`` or ``<Item>`` children; the
content (``DicomStructuredReportContent``) holds the root CONTAINER and its tree, one
element per content item (PS3.3 C.17.3).  ``docs/sr-xml.md`` specifies both.

Where pixelmed accepts input and then drops, duplicates or garbles part of it, or writes an
empty file, :func:`read_sr_xml` raises :class:`SrXmlError` naming the element instead.
Two deliberate differences from pixelmed's output: a ``<num>`` without ``<value>`` gets an
empty Measured Value Sequence (PS3.3 C.18.1: zero or one item; pixelmed writes one empty
item), and ``<tcoord>``/``<waveform>``, which pixelmed's toXML writes but its toDICOM
skips (repeating the next item), are read.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree
from pydicom import Dataset
from pydicom import config as pydicom_config
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag, Tag
from pydicom.valuerep import validate_value

from csv2sr.formats.srxml.errors import SrXmlError
from csv2sr.formats.srxml.pixelmed_compat import (
    character_set_for,
    java_trim,
    parse_decimal,
    parse_float32,
)

__all__ = ["CONTENT_ATTRIBUTES", "ITEM_ELEMENTS", "read_sr_xml"]

ROOT, HEADER, CONTENT = (
    "DicomStructuredReport", "DicomStructuredReportHeader", "DicomStructuredReportContent")

ITEM_ELEMENTS = {
    "container": "CONTAINER", "code": "CODE", "num": "NUM", "text": "TEXT",
    "pname": "PNAME", "uidref": "UIDREF", "date": "DATE", "time": "TIME",
    "datetime": "DATETIME", "image": "IMAGE", "composite": "COMPOSITE",
    "waveform": "WAVEFORM", "scoord": "SCOORD", "scoord3d": "SCOORD3D", "tcoord": "TCOORD",
}
"""Element name -> Value Type (PS3.3 C.17.3.2.1); ``reference`` is a by-reference item."""

CONTENT_ATTRIBUTES = frozenset({
    "ValueType", "ConceptNameCodeSequence", "ContinuityOfContent",
    "ContentTemplateSequence", "ContentSequence",
})
"""Root attributes that come from the content tree, never from the header."""

RELATIONSHIPS = frozenset({
    "CONTAINS", "HAS PROPERTIES", "HAS OBS CONTEXT", "HAS ACQ CONTEXT", "INFERRED FROM",
    "SELECTED FROM", "HAS CONCEPT MOD",
})
"""PS3.3 C.17.3.2.4 Relationship Type, enumerated values."""

_TEXT_VALUE = {"text": "TextValue", "pname": "PersonName", "uidref": "UID", "date": "Date",
               "time": "Time", "datetime": "DateTime"}
_TEXT_VR = {"TextValue": "UT", "PersonName": "PN", "UID": "UI", "Date": "DA",
            "Time": "TM", "DateTime": "DT"}
_SHAPES_2D = ("point", "multipoint", "polyline", "circle", "ellipse")
_SHAPES_3D = ("point", "multipoint", "polyline", "polygon", "ellipse", "ellipsoid")
_TEMPORAL = ("point", "multipoint", "segment", "multisegment", "begin", "end")
_TEMPORAL_LISTS = {
    "samplepositions": ("position", "ReferencedSamplePositions", "UL"),
    "timeoffsets": ("offset", "ReferencedTimeOffsets", "DS"),
    "datetimes": ("datetime", "ReferencedDateTime", "DT"),
}
_STRING_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH",
                         "ST", "TM", "UC", "UI", "UR", "UT"})
_SINGLE_VALUED = frozenset({"LT", "ST", "UT", "UR"})
_UTF8_ALWAYS = frozenset({"LT", "ST", "UT"})
_INT_RANGES = {"US": (0, 2**16 - 1), "SS": (-(2**15), 2**15 - 1), "UL": (0, 2**32 - 1),
               "SL": (-(2**31), 2**31 - 1), "UV": (0, 2**64 - 1), "SV": (-(2**63), 2**63 - 1)}
_INTEGER = re.compile(r"[+-]?\d+\Z")
_AT = re.compile(r"\(0x([0-9A-Fa-f]{1,4}),0x([0-9A-Fa-f]{1,4})\)\Z")
_HEX = re.compile(r"[0-9A-Fa-f]{1,4}\Z")
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                          huge_tree=False)


def read_sr_xml(data: bytes, source: str | Path, *, pixelmed_compatible: bool = False
                ) -> Dataset:
    """The dataset pixelmed's toDICOM makes of ``data`` (no File Meta), or SrXmlError.

    ``pixelmed_compatible`` also refuses what pixelmed would encode wrongly (see
    :meth:`_Reader.character_set`) instead of encoding it right."""
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise SrXmlError(source, f"line {exc.lineno}" if exc.lineno else "",
                         f"not well-formed XML: {exc.msg}") from None
    _drop_default_namespace(root)
    return _Reader(source, root.getroottree(), pixelmed_compatible).document(root)


def _drop_default_namespace(root: etree._Element) -> None:
    """pixelmed matches element names without their namespace: a default namespace (no
    prefix) is accepted, so it is removed here; a prefixed element is refused later."""
    for element in root.iter():
        if isinstance(element.tag, str) and element.prefix is None and element.tag[:1] == "{":
            element.tag = etree.QName(element).localname
    etree.cleanup_namespaces(root)


@dataclass
class _Pending:
    """A by-reference item whose IDREF is resolved when every ID is known."""

    dataset: Dataset
    idref: str
    element: etree._Element


@dataclass
class _Reader:
    source: str | Path
    tree: etree._ElementTree
    pixelmed_compatible: bool = False
    ids: dict[str, list[int]] = field(default_factory=dict)
    text_values: list[tuple[etree._Element, str]] = field(default_factory=list)
    pending: list[_Pending] = field(default_factory=list)

    # ---- errors -------------------------------------------------------------------------

    def fail(self, element: etree._Element, message: str) -> SrXmlError:
        where = self.tree.getpath(element)
        if element.sourceline:
            where += f" (line {element.sourceline})"
        return SrXmlError(self.source, where, message)

    def children(self, element: etree._Element) -> list[etree._Element]:
        """Element children; text, comments and processing instructions are skipped, as by
        pixelmed, but an entity reference it would expand is refused."""
        found: list[etree._Element] = []
        for child in element:
            if isinstance(child, etree._Entity):
                raise self.fail(element, f"entity reference {child.text} is not supported")
            if isinstance(child.tag, str):
                if child.prefix is not None:
                    raise self.fail(child, "SR XML elements have no namespace prefix")
                found.append(child)
            if child.tail and child.tail.strip() and isinstance(child.tag, str):
                raise self.fail(element, f"text {child.tail.strip()[:20]!r} outside <value>")
        return found

    def text(self, element: etree._Element) -> str:
        """The trimmed text of a leaf element; an element inside it is refused (pixelmed
        would silently concatenate its text)."""
        if self.children(element):
            raise self.fail(element, f"<{element.tag}> holds text only, found "
                            f"<{self.children(element)[0].tag}>")
        parts = [element.text or ""] + [child.tail or "" for child in element]
        return java_trim("".join(parts))

    def attributes(self, element: etree._Element, allowed: Iterable[str]) -> None:
        unknown = sorted(set(element.attrib) - set(allowed))
        if unknown:
            raise self.fail(element, f"unknown attribute {unknown[0]!r} on <{element.tag}> "
                            "(pixelmed ignores it)")

    # ---- the document -------------------------------------------------------------------

    def document(self, root: etree._Element) -> Dataset:
        if etree.QName(root).localname != ROOT or root.prefix is not None:
            raise self.fail(root, f"the root element must be <{ROOT}>, not <{root.tag}>")
        self.attributes(root, ())
        parts = self.children(root)
        names = [etree.QName(part).localname for part in parts]
        for part, name in zip(parts, names, strict=True):
            if name not in (HEADER, CONTENT):
                raise self.fail(part, f"unexpected <{name}> in <{ROOT}>")
        if names.count(HEADER) != 1 or names.count(CONTENT) != 1:
            raise self.fail(root, f"<{ROOT}> needs one <{HEADER}> and one <{CONTENT}>")
        header = parts[names.index(HEADER)]
        content = parts[names.index(CONTENT)]
        ds = self.header(header)
        self.content(content, ds)
        self.resolve_references()
        self.character_set(ds)
        return ds

    # ---- the header ---------------------------------------------------------------------

    def header(self, header: etree._Element) -> Dataset:
        self.attributes(header, ())
        ds = self.attribute_list(header)
        for keyword in sorted(CONTENT_ATTRIBUTES & set(ds.dir())):
            raise self.fail(header, f"{keyword} belongs to <{CONTENT}>, not to the header")
        for keyword in ("SOPClassUID", "SOPInstanceUID"):
            if not ds.get(keyword):
                raise self.fail(header, f"{keyword} is missing or empty (pixelmed writes an "
                                "empty file)")
        return ds

    def attribute_list(self, parent: etree._Element) -> Dataset:
        ds = Dataset()
        for child in self.children(parent):
            tag, vr, value = self.attribute(child)
            if tag.element == 0 or tag.group == 2:
                continue  # group lengths and File Meta: pixelmed writes its own
            if tag in ds:
                raise self.fail(child, f"{child.tag} is given twice (pixelmed keeps the last)")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds.add_new(tag, vr, value)
        return ds

    def attribute(self, element: etree._Element) -> tuple[BaseTag, str, Any]:
        self.attributes(element, ("group", "element", "vr"))
        name = etree.QName(element).localname
        tag = self.tag_of(element, name)
        vr = self.vr_of(element, tag, name)
        parts = self.children(element)
        if vr == "SQ":
            return tag, vr, self.items(element, parts)
        for part in parts:
            if part.tag != "value":
                raise self.fail(part, f"{name} ({vr}) takes <value> children, not <{part.tag}>")
            self.attributes(part, ("number",))
        if (element.text or "").strip():
            raise self.fail(element, f"text directly inside <{name}> is ignored by pixelmed; "
                            "put it in <value number=\"1\">")
        values = [self.text(part) for part in parts]
        return tag, vr, self.convert(element, name, vr, values)

    def tag_of(self, element: etree._Element, name: str) -> BaseTag:
        group, number = element.get("group"), element.get("element")
        named = tag_for_keyword(name)
        if group is None and number is None:
            if named is None:
                raise self.fail(element, f"{name} is not a DICOM keyword and has no "
                                "group/element")
            return Tag(named)
        if group is None or number is None or not (_HEX.match(group) and _HEX.match(number)):
            raise self.fail(element, f"{name}: group and element must both be 1-4 hex digits")
        tag = Tag(int(group, 16), int(number, 16))
        if named is not None and Tag(named) != tag:
            raise self.fail(element, f"{name} is {Tag(named)}, not {tag}")
        return tag

    def vr_of(self, element: etree._Element, tag: BaseTag, name: str) -> str:
        given = element.get("vr")
        try:
            known: str | None = dictionary_VR(tag)
        except KeyError:
            known = None
        if given is None:
            if known is None or " or " in known:
                raise self.fail(element, f"{name} needs a vr attribute")
            return known
        if known is not None and given not in known.split(" or "):
            raise self.fail(element, f"{name} has VR {known}, not {given}")
        return given

    def items(self, element: etree._Element, parts: list[etree._Element]) -> Sequence:
        items = []
        for part in parts:
            if part.tag != "Item":
                raise self.fail(part, f"a sequence takes <Item> children, not <{part.tag}>")
            self.attributes(part, ("number",))
            items.append(self.attribute_list(part))
        if (element.text or "").strip():
            raise self.fail(element, "text directly inside a sequence")
        return Sequence(items)

    def convert(self, element: etree._Element, name: str, vr: str, values: list[str]) -> Any:
        if vr in _STRING_VRS:
            if vr in _SINGLE_VALUED and len(values) > 1:
                raise self.fail(element, f"{name} ({vr}) takes one value, not {len(values)}")
            for value in values:
                self.check(element, name, vr, value)
            return _one_or_many(values)
        if vr in _INT_RANGES:
            return _one_or_many([self.integer(element, name, vr, v) for v in values])
        if vr in ("FD", "FL"):
            return _one_or_many([self.floating(element, name, vr, v) for v in values])
        if vr == "AT":
            return _one_or_many([self.attribute_tag(element, name, v) for v in values])
        raise self.fail(element, f"{name}: VR {vr} cannot be written in SR XML (pixelmed "
                        "stores the text, not the bytes)")

    def check(self, element: etree._Element, name: str, vr: str, value: str) -> None:
        if vr in _UTF8_ALWAYS:
            self.text_values.append((element, value))
        if "\\" in value and vr not in _SINGLE_VALUED:
            raise self.fail(element, f"{name}: backslash in a value; give each value its own "
                            "<value>")
        try:
            validate_value(vr, value, pydicom_config.RAISE)
        except (ValueError, TypeError) as exc:
            reason = str(exc).split(" Please see")[0]
            raise self.fail(element, f"{name} ({vr}) {value!r}: {reason}") from None

    def integer(self, element: etree._Element, name: str, vr: str, text: str) -> int:
        low, high = _INT_RANGES[vr]
        if not _INTEGER.match(text) or not low <= int(text) <= high:
            raise self.fail(element, f"{name} ({vr}) {text!r} is not an integer in "
                            f"{low}..{high}")
        return int(text)

    def floating(self, element: etree._Element, name: str, vr: str, text: str) -> float:
        value = parse_float32(text) if vr == "FL" else parse_decimal(text)
        if value is None:
            raise self.fail(element, f"{name} ({vr}) {text!r} is not a decimal number")
        return value

    def attribute_tag(self, element: etree._Element, name: str, text: str) -> int:
        match = _AT.match(text)
        if match is None:
            raise self.fail(element, f"{name} (AT) {text!r} is not (0xGGGG,0xEEEE)")
        return int(match.group(1), 16) << 16 | int(match.group(2), 16)

    # ---- the content tree ---------------------------------------------------------------

    def content(self, content: etree._Element, ds: Dataset) -> None:
        self.attributes(content, ())
        items = self.children(content)
        if len(items) != 1 or items[0].tag != "container":
            raise self.fail(content, f"<{CONTENT}> holds exactly one <container>, the root")
        root = items[0]
        if "relationship" in root.attrib:
            raise self.fail(root, "the root container has no relationship")
        item = self.item(root, [1])
        for element in item:
            if element.keyword in ("ObservationDateTime", "ObservationUID") and \
                    element.keyword in ds and ds[element.tag].value != element.value:
                raise self.fail(root, f"{element.keyword} differs from the header's")
            ds[element.tag] = element

    def item(self, element: etree._Element, position: list[int]) -> Dataset:
        kind = element.tag
        item_id = element.get("ID")
        if item_id is not None:
            if item_id in self.ids:
                raise self.fail(element, f"ID {item_id!r} is used twice")
            self.ids[item_id] = position
        if kind == "reference":
            return self.reference(element)
        value_type = ITEM_ELEMENTS.get(str(kind))
        if value_type is None:
            raise self.fail(element, f"<{kind}> is not a content item (pixelmed drops it and "
                            "writes the next item twice)")
        ds = Dataset()
        parts = self.children(element)
        handler = _HANDLERS[str(kind)]
        self.attributes(element, _COMMON_ATTRIBUTES | handler.attributes)
        self.common(element, ds, position == [1])
        ds.ValueType = value_type
        own = [p for p in parts if p.tag not in ITEM_ELEMENTS and p.tag != "reference"]
        nested = [p for p in parts if p not in own]
        concepts = [p for p in own if p.tag == "concept"]
        if len(concepts) > 1:
            raise self.fail(concepts[1], "a content item has one <concept>")
        if concepts:
            ds.ConceptNameCodeSequence = Sequence([self.code(concepts[0])])
        handler.read(self, element, ds, _Parts(self, [p for p in own if p.tag != "concept"]))
        if kind == "container":
            self.container(element, ds)
        if nested:
            ds.ContentSequence = Sequence(
                self.item(child, [*position, n]) for n, child in enumerate(nested, 1))
        return ds

    def common(self, element: etree._Element, ds: Dataset, is_root: bool) -> None:
        relationship = element.get("relationship")
        if not is_root:
            if relationship is None:
                raise self.fail(element, "no relationship (pixelmed drops the item)")
            if relationship not in RELATIONSHIPS:
                raise self.fail(element, f"relationship {relationship!r} is not one of "
                                "PS3.3 C.17.3.2.4")
            ds.RelationshipType = relationship
        for attribute, keyword, vr in (("datetime", "ObservationDateTime", "DT"),
                                       ("uid", "ObservationUID", "UI")):
            value = element.get(attribute)
            if value is not None:
                self.check(element, keyword, vr, value)
                setattr(ds, keyword, value)

    def container(self, element: etree._Element, ds: Dataset) -> None:
        continuity = element.get("continuity", "CONTINUOUS")
        if continuity not in ("SEPARATE", "CONTINUOUS"):
            raise self.fail(element, f"continuity {continuity!r} is neither SEPARATE nor "
                            "CONTINUOUS (pixelmed writes CONTINUOUS)")
        ds.ContinuityOfContent = continuity
        template = element.get("template")
        resource = element.get("templatemappingresource")
        if (template is None) != (resource is None):
            raise self.fail(element, "template and templatemappingresource go together "
                            "(PS3.3 C.18.8: both Type 1)")
        if template is not None and resource is not None:
            self.check(element, "TemplateIdentifier", "CS", template)
            self.check(element, "MappingResource", "CS", resource)
            entry = Dataset()
            entry.MappingResource = resource
            entry.TemplateIdentifier = template
            ds.ContentTemplateSequence = Sequence([entry])

    def reference(self, element: etree._Element) -> Dataset:
        self.attributes(element, ("ID", "IDREF", "relationship"))
        if self.children(element):
            raise self.fail(element, "a <reference> has no children")
        ds = Dataset()
        self.common(element, ds, False)
        idref = element.get("IDREF")
        if not idref:
            raise self.fail(element, "a <reference> needs an IDREF")
        self.pending.append(_Pending(ds, idref, element))
        return ds

    def character_set(self, ds: Dataset) -> None:
        """pixelmed's rule: the character set follows the characters used, not the header's
        Specific Character Set (:func:`character_set_for`), but ST, LT and UT are left out
        of the choice and always written in UTF-8.  Where that garbles the file (non-ASCII
        text under any other character set), csv2sr chooses from every value and encodes
        them all in it; ``pixelmed_compatible`` refuses instead."""
        if "SpecificCharacterSet" in ds:
            del ds.SpecificCharacterSet
        strings = list(_strings(ds))
        term = character_set_for(text for vr, text in strings if vr not in _UTF8_ALWAYS)
        garbled = term != "ISO_IR 192" and any(
            vr in _UTF8_ALWAYS and not text.isascii() for vr, text in strings)
        if garbled:
            if self.pixelmed_compatible:
                where = next(el for el, text in self.text_values if not text.isascii())
                raise self.fail(where, f"pixelmed writes ST/LT/UT in UTF-8 but declares "
                                f"{term or 'no character set'}: its file would be garbled "
                                "(csv2sr writes it correctly without --pixelmed-compatible)")
            term = character_set_for(text for _, text in strings)
        if term is not None:
            ds.SpecificCharacterSet = term

    def resolve_references(self) -> None:
        for pending in self.pending:
            target = self.ids.get(pending.idref)
            if target is None:
                raise self.fail(pending.element, f"IDREF {pending.idref!r} names no content "
                                "item (pixelmed writes a dangling reference or an empty file)")
            pending.dataset.ReferencedContentItemIdentifier = target

    def code(self, element: etree._Element) -> Dataset:
        """``cv``/``csd``/``cm`` (+ ``csv``) -> a Code Sequence item (PS3.3 Table 8.8-1)."""
        self.attributes(element, ("cv", "csd", "cm", "csv"))
        if self.children(element) or (element.text or "").strip():
            raise self.fail(element, f"<{element.tag}> has attributes only")
        code = Dataset()
        for attribute, keyword, vr in (("cv", "CodeValue", "SH"),
                                       ("csd", "CodingSchemeDesignator", "SH"),
                                       ("csv", "CodingSchemeVersion", "SH"),
                                       ("cm", "CodeMeaning", "LO")):
            value = element.get(attribute)
            if not value:
                if attribute == "csv":
                    continue
                raise self.fail(element, f"<{element.tag}> needs a non-empty {attribute} "
                                "(pixelmed writes an empty file)")
            self.check(element, keyword, vr, value)
            setattr(code, keyword, value)
        return code


class _Parts:
    """The type-specific children of one content item, each taken at most once."""

    def __init__(self, reader: _Reader, parts: list[etree._Element]) -> None:
        self.reader = reader
        self.parts = parts
        self.used: set[int] = set()

    def take(self, name: str) -> etree._Element | None:
        found = [p for p in self.parts if p.tag == name]
        if len(found) > 1:
            raise self.reader.fail(found[1], f"<{name}> is given twice (pixelmed keeps the "
                                   "first)")
        if not found:
            return None
        self.used.add(id(found[0]))
        return found[0]

    def one_of(self, names: tuple[str, ...], owner: etree._Element) -> etree._Element:
        found = [p for p in self.parts if p.tag in names]
        if len(found) != 1:
            raise self.reader.fail(found[1] if found else owner,
                                   f"<{owner.tag}> holds exactly one of <{'>, <'.join(names)}>"
                                   " (pixelmed keeps the first or writes no graphic data)")
        self.used.add(id(found[0]))
        return found[0]

    def done(self, element: etree._Element) -> None:
        for part in self.parts:
            if id(part) not in self.used:
                raise self.reader.fail(part, f"<{part.tag}> is not part of <{element.tag}> "
                                       "(pixelmed ignores it)")


@dataclass(frozen=True)
class _Handler:
    read: Callable[[_Reader, etree._Element, Dataset, _Parts], None]
    attributes: frozenset[str] = frozenset()


_COMMON_ATTRIBUTES = frozenset({"ID", "relationship", "datetime", "uid"})


def _read_container(reader: _Reader, element: etree._Element, ds: Dataset,
                    parts: _Parts) -> None:
    parts.done(element)


def _read_text_like(reader: _Reader, element: etree._Element, ds: Dataset,
                    parts: _Parts) -> None:
    keyword = _TEXT_VALUE[str(element.tag)]
    value_element = parts.take("value")
    if value_element is None:
        raise reader.fail(element, f"<{element.tag}> needs a <value> (pixelmed writes the item "
                          f"without {keyword})")
    parts.done(element)
    value = reader.text(value_element)
    reader.check(value_element, keyword, _TEXT_VR[keyword], value)
    setattr(ds, keyword, value)


def _read_code(reader: _Reader, element: etree._Element, ds: Dataset,
               parts: _Parts) -> None:
    value = parts.take("value")
    if value is None:
        raise reader.fail(element, "<code> needs a <value cv= csd= cm=> (pixelmed writes the "
                          "item without Concept Code Sequence)")
    parts.done(element)
    ds.ConceptCodeSequence = Sequence([reader.code(value)])


def _read_num(reader: _Reader, element: etree._Element, ds: Dataset, parts: _Parts) -> None:
    """PS3.3 C.18.1 Numeric Measurement Macro; an absent <value> gives an empty sequence."""
    value, double = parts.take("value"), parts.take("double")
    numerator, denominator = parts.take("numerator"), parts.take("denominator")
    units, qualifier = parts.take("units"), parts.take("qualifier")
    parts.done(element)
    measured = Sequence()
    if value is None:
        for extra in (double, numerator, denominator, units):
            if extra is not None:
                raise reader.fail(extra, f"<{extra.tag}> without <value> (NumericValue is "
                                  "Type 1 in the Measured Value Sequence)")
    else:
        if units is None:
            raise reader.fail(element, "<num> with <value> needs <units> (PS3.3 C.18.1)")
        mv = Dataset()
        mv.MeasurementUnitsCodeSequence = Sequence([reader.code(units)])
        number = reader.text(value)
        reader.check(value, "NumericValue", "DS", number)
        mv.NumericValue = number
        if double is not None:
            mv.FloatingPointValue = reader.floating(double, "FloatingPointValue", "FD",
                                                    reader.text(double))
        if (numerator is None) != (denominator is None):
            raise reader.fail(element, "<numerator> and <denominator> go together")
        if numerator is not None and denominator is not None:
            mv.RationalNumeratorValue = reader.integer(
                numerator, "RationalNumeratorValue", "SL", reader.text(numerator))
            mv.RationalDenominatorValue = reader.integer(
                denominator, "RationalDenominatorValue", "UL", reader.text(denominator))
        measured.append(mv)
    ds.MeasuredValueSequence = measured
    if qualifier is not None:
        ds.NumericValueQualifierCodeSequence = Sequence([reader.code(qualifier)])


def _reference_pair(reader: _Reader, parts: _Parts, owner: etree._Element) -> Dataset:
    ref = Dataset()
    for name, keyword in (("class", "ReferencedSOPClassUID"),
                          ("instance", "ReferencedSOPInstanceUID")):
        part = parts.take(name)
        if part is None:
            raise reader.fail(owner, f"<{owner.tag}> needs <{name}> (PS3.3 C.17.3.2.1: Type 1)")
        value = reader.text(part)
        reader.check(part, keyword, "UI", value)
        setattr(ref, keyword, value)
    return ref


def _read_composite(reader: _Reader, element: etree._Element, ds: Dataset,
                    parts: _Parts) -> None:
    """PS3.3 C.18.3 Composite Object Reference Macro (and C.18.4 image, C.18.5 waveform)."""
    ref = _reference_pair(reader, parts, element)
    kind = element.tag
    if kind == "image":
        frame, segment = parts.take("frame"), parts.take("segment")
        if frame is not None:
            text = reader.text(frame)
            reader.integer(frame, "ReferencedFrameNumber", "SL", text)
            ref.ReferencedFrameNumber = text
        if segment is not None:
            ref.ReferencedSegmentNumber = reader.integer(
                segment, "ReferencedSegmentNumber", "US", reader.text(segment))
        for name, keyword in (("presentationstate", "ReferencedSOPSequence"),
                              ("realworldvaluemapping",
                               "ReferencedRealWorldValueMappingInstanceSequence")):
            part = parts.take(name)
            if part is not None:
                inner = _Parts(reader, reader.children(part))
                reader.attributes(part, ())
                setattr(ref, keyword, Sequence([_reference_pair(reader, inner, part)]))
                inner.done(part)
    if kind == "waveform":
        channels = parts.take("channels")
        if channels is not None:
            values = []
            for channel in reader.children(channels):
                if channel.tag != "channel":
                    raise reader.fail(channel, f"<channels> holds <channel>, not "
                                      f"<{channel.tag}>")
                values.append(reader.integer(channel, "ReferencedWaveformChannels", "US",
                                             reader.text(channel)))
            ref.ReferencedWaveformChannels = values
    parts.done(element)
    ds.ReferencedSOPSequence = Sequence([ref])


def _coordinates(reader: _Reader, shape: etree._Element, axes: str) -> list[float]:
    values: list[float] = []
    points = reader.children(shape)
    for n, point in enumerate(points):
        expected = axes[n % len(axes)]
        if point.tag != expected:
            raise reader.fail(point, f"<{shape.tag}> holds <{'>, <'.join(axes)}> in turn; "
                              f"expected <{expected}>, found <{point.tag}>")
        number = parse_float32(reader.text(point))
        if number is None:
            raise reader.fail(point, f"{reader.text(point)!r} is not a decimal number "
                              "(pixelmed writes an empty file)")
        values.append(number)
    if not values or len(values) % len(axes):
        raise reader.fail(shape, f"<{shape.tag}> needs whole points of <{'>, <'.join(axes)}>")
    return values


def _read_scoord(reader: _Reader, element: etree._Element, ds: Dataset,
                 parts: _Parts) -> None:
    """PS3.3 C.18.6 Spatial Coordinates Macro; C.18.9 for SCOORD3D."""
    three_d = element.tag == "scoord3d"
    shape = parts.one_of(_SHAPES_3D if three_d else _SHAPES_2D, element)
    ds.GraphicData = _coordinates(reader, shape, "xyz" if three_d else "xy")
    ds.GraphicType = str(shape.tag).upper()
    reader.attributes(shape, ())
    if three_d:
        frame = parts.take("frameofreference")
        if frame is None:
            raise reader.fail(element, "<scoord3d> needs <frameofreference> (Type 1)")
        uid = reader.text(frame)
        reader.check(frame, "ReferencedFrameOfReferenceUID", "UI", uid)
        ds.ReferencedFrameOfReferenceUID = uid
    parts.done(element)


def _read_tcoord(reader: _Reader, element: etree._Element, ds: Dataset,
                 parts: _Parts) -> None:
    """PS3.3 C.18.7 Temporal Coordinates Macro."""
    shape = parts.one_of(_TEMPORAL, element)
    parts.done(element)
    ds.TemporalRangeType = str(shape.tag).upper()
    lists = reader.children(shape)
    if len(lists) != 1 or lists[0].tag not in _TEMPORAL_LISTS:
        raise reader.fail(shape, "exactly one of <samplepositions>, <timeoffsets>, "
                          "<datetimes>")
    entry, keyword, vr = _TEMPORAL_LISTS[str(lists[0].tag)]
    texts = []
    for value in reader.children(lists[0]):
        if value.tag != entry:
            raise reader.fail(value, f"<{lists[0].tag}> holds <{entry}>, not <{value.tag}>")
        texts.append(reader.text(value))
    converted = reader.convert(lists[0], keyword, vr, texts)
    setattr(ds, keyword, converted)


_HANDLERS: dict[str, _Handler] = {
    "container": _Handler(_read_container,
                          frozenset({"continuity", "template", "templatemappingresource"})),
    "code": _Handler(_read_code),
    "num": _Handler(_read_num),
    "image": _Handler(_read_composite),
    "composite": _Handler(_read_composite),
    "waveform": _Handler(_read_composite),
    "scoord": _Handler(_read_scoord),
    "scoord3d": _Handler(_read_scoord),
    "tcoord": _Handler(_read_tcoord),
    **{name: _Handler(_read_text_like) for name in _TEXT_VALUE},
}


def _one_or_many(values: list[Any]) -> Any:
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def _strings(ds: Dataset) -> Iterable[tuple[str, str]]:
    """(VR, text) of every string value in the dataset."""
    for element in ds:
        if element.VR == "SQ":
            for item in element.value:
                yield from _strings(item)
        elif element.VR in _STRING_VRS and element.value is not None:
            values = element.value if element.VM > 1 else [element.value]
            yield from ((element.VR, str(v)) for v in values)
