"""pydicom dataset (read from a Part 10 file) -> SR XML, as pixelmed's ``toXML`` writes it.

The layout is pixelmed's byte for byte (declaration, four-space indentation, attributes in
alphabetical order, ``ci_``-prefixed content item IDs), so that for the SRs pixelmed handles
the two outputs are identical.  Where pixelmed's toXML loses information, this writer either
keeps it in a form pixelmed's toDICOM reads back (private attributes in the header; FD/FL
values written in full instead of pixelmed's four significant digits) or refuses the file
(:class:`SrXmlError`): binary values, a second frame number, a Long Code Value, attributes
of a content item the format has no place for (e.g. Pixel Origin Interpretation), leading
spaces of ST/LT/UT values, and characters XML 1.0 cannot hold.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydicom import Dataset
from pydicom.charset import convert_encodings, decode_bytes
from pydicom.datadict import keyword_for_tag
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.tag import BaseTag, Tag

from csv2sr.dicom.tree import item_id
from csv2sr.formats.srxml.errors import SrXmlError
from csv2sr.formats.srxml.pixelmed_compat import format_float32, format_float64, java_trim
from csv2sr.formats.srxml.read import CONTENT, CONTENT_ATTRIBUTES, HEADER, ITEM_ELEMENTS, ROOT

__all__ = ["write_sr_xml"]

_DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
_INDENT = "    "
_TEXT_VRS = frozenset({"ST", "LT", "UT"})
_MULTI_STRING_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "PN", "SH",
                               "TM", "UC", "UI"})
_BINARY_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN"})
_ELEMENT_OF = {vt: name for name, vt in ITEM_ELEMENTS.items()}
_CODE_KEYS = {"CodeValue": "cv", "CodingSchemeDesignator": "csd",
              "CodingSchemeVersion": "csv", "CodeMeaning": "cm"}
_COMMON_KEYS = frozenset({"RelationshipType", "ValueType", "ConceptNameCodeSequence",
                          "ObservationDateTime", "ObservationUID", "ContentSequence"})


def write_sr_xml(ds: Dataset, source: str | Path) -> bytes:
    """The SR XML of ``ds`` (a dataset as read by ``pydicom.dcmread``), or SrXmlError."""
    return _Writer(ds, source).document().encode("utf-8")


class _Writer:
    def __init__(self, ds: Dataset, source: str | Path) -> None:
        self.ds = ds
        self.source = source
        charset = ds.get("SpecificCharacterSet", "")
        self.encodings = convert_encodings(charset or "ISO_IR 6")
        self.lines: list[str] = []

    def fail(self, where: str, message: str) -> SrXmlError:
        return SrXmlError(self.source, where, message)

    # ---- raw values: pydicom would strip the padding pixelmed keeps in ST/LT/UT ---------

    def element(self, ds: Dataset, tag: BaseTag) -> tuple[DataElement, list[str] | None]:
        """The element at ``tag`` and, for string VRs, its values as the bytes say."""
        raw = ds.get_item(tag)
        if isinstance(raw, RawDataElement):
            element = convert_raw_data_element(raw, encoding=self.encodings, ds=ds)
            if element.VR in _TEXT_VRS or element.VR in _MULTI_STRING_VRS:
                text = decode_bytes(raw.value or b"", self.encodings, {"^", "=", "\\"})
                return element, self.split(element.VR, text)
            return element, None
        element = ds[tag]
        if element.VR in _TEXT_VRS or element.VR in _MULTI_STRING_VRS:
            text = "" if element.value is None else (
                "\\".join(str(v) for v in element.value) if element.VM > 1
                else str(element.value))
            return element, self.split(element.VR, text)
        return element, None

    @staticmethod
    def split(vr: str, text: str) -> list[str]:
        if text == "":
            return []
        if vr in _TEXT_VRS:
            return [text.rstrip("\x00")]
        return [java_trim(part) for part in text.split("\\")]

    # ---- output -------------------------------------------------------------------------

    def open(self, depth: int, name: str, attributes: dict[str, str], *,
             empty: bool = False, text: str | None = None) -> None:
        attrs = "".join(f' {key}="{_escape_attribute(value)}"'
                        for key, value in sorted(attributes.items()))
        pad = _INDENT * depth
        if text is not None:
            self.lines.append(f"{pad}<{name}{attrs}>{self.escape_text(text, name)}</{name}>")
        elif empty:
            self.lines.append(f"{pad}<{name}{attrs}/>")
        else:
            self.lines.append(f"{pad}<{name}{attrs}>")

    def close(self, depth: int, name: str) -> None:
        self.lines.append(f"{_INDENT * depth}</{name}>")

    def escape_text(self, text: str, where: str) -> str:
        for char in text:
            if ord(char) < 0x20 and char not in "\t\n\r":
                raise self.fail(where, f"character U+{ord(char):04X} cannot be written in "
                                "XML 1.0")
        return _escape_text(text)

    # ---- the document -------------------------------------------------------------------

    def document(self) -> str:
        ds = self.ds
        if str(ds.get("ValueType", "")) != "CONTAINER":
            raise self.fail("(0040,A040) Value Type", "the root content item must be a "
                            "CONTAINER (PS3.3 C.17.3)")
        self.open(0, ROOT, {})
        self.open(1, HEADER, {})
        self.attribute_list(ds, 2, skip=CONTENT_ATTRIBUTES)
        self.close(1, HEADER)
        self.open(1, CONTENT, {})
        self.item(ds, [1], 2)
        self.close(1, CONTENT)
        self.close(0, ROOT)
        return _DECLARATION + "\n".join(self.lines) + "\n"

    # ---- the header ---------------------------------------------------------------------

    def attribute_list(self, ds: Dataset, depth: int, skip: frozenset[str] = frozenset()
                       ) -> None:
        for key in sorted(ds.keys()):
            tag = Tag(key)
            if tag.element == 0 or tag.group == 2:
                continue
            keyword = keyword_for_tag(tag)
            if keyword in skip:
                continue
            element, strings = self.element(ds, tag)
            name = keyword or f"Private_{tag.group:04x}_{tag.element:04x}"
            attributes = {"group": f"{tag.group:04x}", "element": f"{tag.element:04x}",
                          "vr": element.VR}
            if element.VR == "SQ":
                self.sequence(name, attributes, element, depth)
                continue
            values = strings if strings is not None else self.values(name, element)
            if element.VR in _TEXT_VRS and values and values[0][:1].isspace():
                raise self.fail(name, f"leading white space in {element.VR} is significant "
                                "(PS3.5 6.2) but pixelmed's toDICOM trims it")
            if not values:
                self.open(depth, name, attributes, empty=True)
                continue
            self.open(depth, name, attributes)
            for number, value in enumerate(values, 1):
                if value == "":
                    self.open(depth + 1, "value", {"number": str(number)}, empty=True)
                else:
                    self.open(depth + 1, "value", {"number": str(number)}, text=value)
            self.close(depth, name)

    def sequence(self, name: str, attributes: dict[str, str], element: DataElement,
                 depth: int) -> None:
        if not element.value:
            self.open(depth, name, attributes, empty=True)
            return
        self.open(depth, name, attributes)
        for number, item in enumerate(element.value, 1):
            if len(item) == 0:
                self.open(depth + 1, "Item", {"number": str(number)}, empty=True)
                continue
            self.open(depth + 1, "Item", {"number": str(number)})
            self.attribute_list(item, depth + 2)
            self.close(depth + 1, "Item")
        self.close(depth, name)

    def values(self, name: str, element: DataElement) -> list[str]:
        vr = element.VR
        if element.value is None or element.value == b"" or element.VM == 0:
            return []
        if vr in _BINARY_VRS:
            raise self.fail(name, f"a {vr} value cannot be written in SR XML (pixelmed writes "
                            "an empty element)")
        items = list(element.value) if element.VM > 1 else [element.value]
        if vr == "AT":
            return [f"(0x{Tag(v).group:04x},0x{Tag(v).element:04x})" for v in items]
        if vr == "FD":
            return [format_float64(float(v)) for v in items]
        if vr == "FL":
            return [format_float32(float(v)) for v in items]
        return [str(int(v)) for v in items]

    # ---- the content tree ---------------------------------------------------------------

    def item(self, ds: Dataset, position: list[int], depth: int) -> None:
        where = f"content item {item_id(position)}"
        if "ReferencedContentItemIdentifier" in ds:
            self.reference(ds, position, depth, where)
            return
        value_type = str(ds.get("ValueType", ""))
        name = _ELEMENT_OF.get(value_type)
        if name is None:
            raise self.fail(where, f"value type {value_type!r} has no SR XML element")
        attributes = {"ID": _item_id(position)}
        if position != [1]:
            if "RelationshipType" not in ds:
                raise self.fail(where, "no Relationship Type (PS3.3 C.17.3.2.4)")
            attributes["relationship"] = str(ds.RelationshipType)
        for key, keyword in (("datetime", "ObservationDateTime"), ("uid", "ObservationUID")):
            if keyword in ds:
                attributes[key] = self.single(ds, keyword, where)
        handler = _PARTS[name]
        used = set(_COMMON_KEYS) | handler.keys
        if name == "container":
            attributes.update(self.container_attributes(ds, where))
        unknown = [kw for kw in _keywords(ds)
                   if kw not in used and not (position == [1] and kw not in _ROOT_CONTENT)]
        if unknown:
            raise self.fail(where, f"{unknown[0]} has no place in SR XML (pixelmed drops it)")
        self.open(depth, name, attributes)
        if "ConceptNameCodeSequence" in ds:
            self.code_element(depth + 1, "concept", ds.ConceptNameCodeSequence, where)
        handler.write(self, ds, depth + 1, where)
        for n, child in enumerate(ds.get("ContentSequence", []), 1):
            self.item(child, [*position, n], depth + 1)
        self.close(depth, name)

    def reference(self, ds: Dataset, position: list[int], depth: int, where: str) -> None:
        if "RelationshipType" not in ds:
            raise self.fail(where, "no Relationship Type (PS3.3 C.17.3.2.4)")
        target = ds.ReferencedContentItemIdentifier
        path = [int(v) for v in (target if ds["ReferencedContentItemIdentifier"].VM > 1
                                 else [target])]
        extra = _keywords(ds) - {"RelationshipType", "ReferencedContentItemIdentifier"}
        if extra:
            raise self.fail(where, f"{sorted(extra)[0]} has no place in a by-reference item")
        self.open(depth, "reference", {"ID": _item_id(position), "IDREF": _item_id(path),
                                       "relationship": str(ds.RelationshipType)}, empty=True)

    def container_attributes(self, ds: Dataset, where: str) -> dict[str, str]:
        attributes = {}
        if "ContinuityOfContent" in ds:
            attributes["continuity"] = str(ds.ContinuityOfContent)
        templates = ds.get("ContentTemplateSequence", [])
        if len(templates) > 1:
            raise self.fail(where, "Content Template Sequence has more than one item")
        for entry in templates:
            extra = _keywords(entry) - {"MappingResource", "TemplateIdentifier"}
            if extra:
                raise self.fail(where, f"{sorted(extra)[0]} in Content Template Sequence has "
                                "no place in SR XML")
            if "TemplateIdentifier" in entry:
                attributes["template"] = str(entry.TemplateIdentifier)
            if "MappingResource" in entry:
                attributes["templatemappingresource"] = str(entry.MappingResource)
        return attributes

    def single(self, ds: Dataset, keyword: str, where: str) -> str:
        element, strings = self.element(ds, Tag(keyword))
        values = strings if strings is not None else self.values(keyword, element)
        if len(values) > 1:
            raise self.fail(where, f"{keyword} has {len(values)} values; SR XML carries one")
        value = values[0] if values else ""
        if element.VR in _TEXT_VRS and value[:1].isspace():
            raise self.fail(where, f"{keyword}: leading white space in {element.VR} is "
                            "significant (PS3.5 6.2) but pixelmed's toDICOM trims it")
        return value

    def code_element(self, depth: int, name: str, sequence: Any, where: str) -> None:
        if len(sequence) != 1:
            raise self.fail(where, f"a code sequence for <{name}> has {len(sequence)} items; "
                            "SR XML carries one")
        code = sequence[0]
        extra = sorted(_keywords(code) - set(_CODE_KEYS))
        if extra:
            raise self.fail(where, f"{extra[0]} of <{name}> has no place in SR XML (pixelmed "
                            "drops it)")
        attributes = {_CODE_KEYS[kw]: self.single(code, kw, where) for kw in _CODE_KEYS
                      if kw in code}
        self.open(depth, name, attributes, empty=True)

    def leaf(self, depth: int, name: str, text: str) -> None:
        if text == "":
            self.open(depth, name, {}, empty=True)
        else:
            self.open(depth, name, {}, text=text)


class _Part:
    def __init__(self, write: Callable[[_Writer, Dataset, int, str], None],
                 keys: frozenset[str] = frozenset()) -> None:
        self.write = write
        self.keys = keys


def _write_nothing(writer: _Writer, ds: Dataset, depth: int, where: str) -> None:
    return None


def _text_like(keyword: str) -> _Part:
    def write(writer: _Writer, ds: Dataset, depth: int, where: str) -> None:
        if keyword in ds:
            writer.leaf(depth, "value", writer.single(ds, keyword, where))
    return _Part(write, frozenset({keyword}))


def _write_code(writer: _Writer, ds: Dataset, depth: int, where: str) -> None:
    if "ConceptCodeSequence" in ds:
        writer.code_element(depth, "value", ds.ConceptCodeSequence, where)


def _write_num(writer: _Writer, ds: Dataset, depth: int, where: str) -> None:
    measured = ds.get("MeasuredValueSequence", [])
    if len(measured) > 1:
        raise writer.fail(where, "Measured Value Sequence has more than one item")
    for mv in measured:
        keys = {"NumericValue", "FloatingPointValue", "RationalNumeratorValue",
                "RationalDenominatorValue", "MeasurementUnitsCodeSequence"}
        extra = sorted(_keywords(mv) - keys)
        if extra:
            raise writer.fail(where, f"{extra[0]} in Measured Value Sequence has no place in "
                              "SR XML")
        if "NumericValue" in mv:
            writer.leaf(depth, "value", writer.single(mv, "NumericValue", where))
        if "FloatingPointValue" in mv:
            writer.leaf(depth, "double", format_float64(float(mv.FloatingPointValue)))
        for keyword, name in (("RationalNumeratorValue", "numerator"),
                              ("RationalDenominatorValue", "denominator")):
            if keyword in mv:
                writer.leaf(depth, name, str(int(mv[keyword].value)))
        if "MeasurementUnitsCodeSequence" in mv:
            writer.code_element(depth, "units", mv.MeasurementUnitsCodeSequence, where)
    if "NumericValueQualifierCodeSequence" in ds:
        writer.code_element(depth, "qualifier", ds.NumericValueQualifierCodeSequence, where)


def _reference_leaves(writer: _Writer, ref: Dataset, depth: int, where: str) -> None:
    for keyword, name in (("ReferencedSOPClassUID", "class"),
                          ("ReferencedSOPInstanceUID", "instance")):
        if keyword in ref:
            writer.leaf(depth, name, writer.single(ref, keyword, where))


_REFERENCE_KEYS = {
    "image": {"ReferencedSOPClassUID", "ReferencedSOPInstanceUID", "ReferencedFrameNumber",
              "ReferencedSegmentNumber", "ReferencedSOPSequence",
              "ReferencedRealWorldValueMappingInstanceSequence"},
    "composite": {"ReferencedSOPClassUID", "ReferencedSOPInstanceUID"},
    "waveform": {"ReferencedSOPClassUID", "ReferencedSOPInstanceUID",
                 "ReferencedWaveformChannels"},
}


def _composite(kind: str) -> _Part:
    def write(writer: _Writer, ds: Dataset, depth: int, where: str) -> None:
        references = ds.get("ReferencedSOPSequence", [])
        if len(references) != 1:
            raise writer.fail(where, f"Referenced SOP Sequence has {len(references)} items; "
                              "SR XML carries one")
        ref = references[0]
        extra = sorted(_keywords(ref) - _REFERENCE_KEYS[kind])
        if extra:
            raise writer.fail(where, f"{extra[0]} has no place in <{kind}> (pixelmed drops "
                              "it)")
        _reference_leaves(writer, ref, depth, where)
        if "ReferencedFrameNumber" in ref:
            writer.leaf(depth, "frame", writer.single(ref, "ReferencedFrameNumber", where))
        if "ReferencedSegmentNumber" in ref:
            segment = ref["ReferencedSegmentNumber"]
            if segment.VM > 1:
                raise writer.fail(where, "Referenced Segment Number has more than one value")
            writer.leaf(depth, "segment", str(int(segment.value)))
        for keyword, name in (("ReferencedSOPSequence", "presentationstate"),
                              ("ReferencedRealWorldValueMappingInstanceSequence",
                               "realworldvaluemapping")):
            for inner in ref.get(keyword, []):
                writer.open(depth, name, {})
                _reference_leaves(writer, inner, depth + 1, where)
                writer.close(depth, name)
        if "ReferencedWaveformChannels" in ref:
            channels = ref.ReferencedWaveformChannels
            writer.open(depth, "channels", {})
            for channel in channels if ref["ReferencedWaveformChannels"].VM > 1 else [channels]:
                writer.leaf(depth + 1, "channel", str(int(channel)))
            writer.close(depth, "channels")
    return _Part(write, frozenset({"ReferencedSOPSequence"}))


def _scoord(axes: str) -> _Part:
    def write(writer: _Writer, ds: Dataset, depth: int, where: str) -> None:
        shape = str(ds.get("GraphicType", "")).lower()
        if not shape or "GraphicData" not in ds:
            raise writer.fail(where, "no Graphic Type or Graphic Data (PS3.3 C.18.6)")
        points = [float(v) for v in ds.GraphicData]
        writer.open(depth, shape, {})
        for n, value in enumerate(points):
            writer.leaf(depth + 1, axes[n % len(axes)], format_float32(value))
        writer.close(depth, shape)
        if "ReferencedFrameOfReferenceUID" in ds:
            writer.leaf(depth, "frameofreference",
                        writer.single(ds, "ReferencedFrameOfReferenceUID", where))
    keys = {"GraphicType", "GraphicData"}
    if axes == "xyz":
        keys.add("ReferencedFrameOfReferenceUID")
    return _Part(write, frozenset(keys))


_TEMPORAL_LISTS = (("ReferencedSamplePositions", "samplepositions", "position"),
                   ("ReferencedTimeOffsets", "timeoffsets", "offset"),
                   ("ReferencedDateTime", "datetimes", "datetime"))


def _write_tcoord(writer: _Writer, ds: Dataset, depth: int, where: str) -> None:
    shape = str(ds.get("TemporalRangeType", "")).lower()
    present = [entry for entry in _TEMPORAL_LISTS if entry[0] in ds]
    if not shape or len(present) != 1:
        raise writer.fail(where, "a TCOORD needs a Temporal Range Type and one list of "
                          "references (PS3.3 C.18.7)")
    keyword, list_name, entry_name = present[0]
    element, strings = writer.element(ds, Tag(keyword))
    values = strings if strings is not None else writer.values(keyword, element)
    writer.open(depth, shape, {})
    writer.open(depth + 1, list_name, {})
    for value in values:
        writer.leaf(depth + 2, entry_name, value)
    writer.close(depth + 1, list_name)
    writer.close(depth, shape)


_PARTS: dict[str, _Part] = {
    "container": _Part(_write_nothing, frozenset({"ContinuityOfContent",
                                                  "ContentTemplateSequence"})),
    "code": _Part(_write_code, frozenset({"ConceptCodeSequence"})),
    "num": _Part(_write_num, frozenset({"MeasuredValueSequence",
                                        "NumericValueQualifierCodeSequence"})),
    "text": _text_like("TextValue"), "pname": _text_like("PersonName"),
    "uidref": _text_like("UID"), "date": _text_like("Date"), "time": _text_like("Time"),
    "datetime": _text_like("DateTime"),
    "image": _composite("image"), "composite": _composite("composite"),
    "waveform": _composite("waveform"),
    "scoord": _scoord("xy"), "scoord3d": _scoord("xyz"),
    "tcoord": _Part(_write_tcoord, frozenset({"TemporalRangeType",
                                              *(entry[0] for entry in _TEMPORAL_LISTS)})),
}

_ROOT_CONTENT = frozenset(_COMMON_KEYS | {"ContinuityOfContent", "ContentTemplateSequence"})
"""At the root, only these belong to the content item; the rest is the header."""


def _keywords(ds: Dataset) -> set[str]:
    """The keyword of every element of ``ds`` (``(gggg,eeee)`` for private ones)."""
    return {keyword_for_tag(tag) or str(Tag(tag)) for tag in ds.keys()}  # noqa: SIM118


def _item_id(position: list[int]) -> str:
    """The XML ID of a content item: ``ci_`` and its id (:mod:`csv2sr.dicom.tree`)."""
    return "ci_" + item_id(position)


def _escape_text(text: str) -> str:
    out = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    out = out.replace("\r", "&#13;")
    return "".join(f"&#{ord(c)};" if 0x7F <= ord(c) <= 0x9F else c for c in out)


def _escape_attribute(text: str) -> str:
    out = _escape_text(text).replace('"', "&quot;")
    return out.replace("\t", "&#9;").replace("\n", "&#10;")
