"""A quick reader of one SR file, with pydicom's own values: the report's pages and export.

The report renders one page per SR (:mod:`csv2sr.release.pages`) and export reads each
SR's measurements (:mod:`csv2sr.export.reader`); both read every content item's attributes
once, and pydicom's :class:`~pydicom.dataset.Dataset` machinery (the lazy decoding, the
keyword and tag look-ups of every ``get``) cost several times what they do with them.
:func:`read_items` walks the encoding itself: the file meta information (PS3.10 7.1), a
data set in Explicit VR Little Endian (PS3.5 7.1.2, A.2), its sequences and items of
defined or undefined length (PS3.5 7.5), keeping each element's bytes.  A value is decoded
when it is asked for, as ``Dataset[tag]`` decodes it
(:func:`pydicom.dataelem.convert_raw_data_element`, with the data set's Specific Character
Set, PS3.5 6.1), so that every value is the one ``dcmread`` gives.

What it does not read exactly as pydicom would is not guessed: another transfer syntax, an
unknown or UN VR, a value of undefined length that is not a sequence, a length beyond the
file, a repeated tag, a Specific Character Set inside an item, bytes left over.  Then
:class:`NotQuickError` is raised and the caller reads the file with pydicom.
"""

from __future__ import annotations

import functools
import struct
from typing import Any, Protocol

from pydicom.charset import convert_encodings, default_encoding
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import RawDataElement, convert_raw_data_element
from pydicom.tag import BaseTag

__all__ = ["Item", "NotQuickError", "SrItem", "read_elements", "read_items"]


class SrItem(Protocol):
    """What the page of an SR reads of a data set or item (a pydicom Dataset, an Item)."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def __contains__(self, key: str, /) -> bool: ...


class NotQuickError(Exception):
    """The file is not one this reader reads exactly as pydicom does."""


_EXPLICIT_LE = "1.2.840.10008.1.2.1"
_LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UR", "UT", "UV"})
"""VRs with a 4-byte length after two reserved bytes (PS3.5 Table 7.1-1)."""
_SHORT_VRS = frozenset({"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO",
                        "LT", "PN", "SH", "SL", "SS", "ST", "TM", "UI", "UL", "US"})
"""VRs with a 2-byte length (PS3.5 Table 7.1-2)."""
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_CHARSET = 0x00080005
_HEAD = struct.Struct("<HH2s")
_SHORT = struct.Struct("<H")
_LONG = struct.Struct("<L")
_TAG_LENGTH = struct.Struct("<HHL")

_Element = tuple[str, "bytes | list[Item]"]


@functools.cache
def _tag(keyword: str) -> int | None:
    return tag_for_keyword(keyword)


@functools.lru_cache(maxsize=16384)
def _value(tag: int, vr: str, raw: bytes, encodings: tuple[str, ...]) -> Any:
    """pydicom's value of one element, decoded as ``Dataset[tag]`` decodes it (its hooks,
    the converter of ``vr``, the same errors); kept, because the same codes and names come
    back in every item and file."""
    element = RawDataElement(BaseTag(tag), vr, len(raw), raw, 0, False, True)
    return convert_raw_data_element(element, encoding=list(encodings)).value


class Item:
    """One data set or sequence item: ``get(keyword)``, ``get_item(tag)`` and ``keyword in
    item`` (or a tag) as a pydicom Dataset answers them; a sequence is a list of
    :class:`Item`, an element not yet decoded a :class:`~pydicom.dataelem.RawDataElement`."""

    __slots__ = ("_elements", "_encodings")

    def __init__(self, elements: dict[int, _Element], encodings: tuple[str, ...]) -> None:
        self._elements = elements
        self._encodings = encodings

    def __len__(self) -> int:
        return len(self._elements)

    def __contains__(self, key: object) -> bool:
        tag = _tag(key) if isinstance(key, str) else key
        return tag in self._elements

    def get(self, key: str, default: Any = None) -> Any:
        tag = _tag(key)
        found = self._elements.get(tag) if tag is not None else None
        if found is None:
            return default
        vr, raw = found
        if isinstance(raw, list):
            return raw
        return _value(tag, vr, raw, self._encodings)

    def get_item(self, tag: int) -> RawDataElement | list[Item] | None:
        """The element ``tag`` as read (its bytes, not decoded; a sequence's items)."""
        found = self._elements.get(tag)
        if found is None:
            return None
        vr, raw = found
        if isinstance(raw, list):
            return raw
        return RawDataElement(BaseTag(tag), vr, len(raw), raw, 0, False, True)


def _meta(data: bytes) -> tuple[str, int]:
    """The Transfer Syntax UID of the file meta information (PS3.10 7.1) and where the
    data set starts."""
    if len(data) < 132 or data[128:132] != b"DICM":
        raise NotQuickError("no DICOM preamble")
    offset = 132
    syntax = None
    while offset + 8 <= len(data):
        group, number, vr_bytes = _HEAD.unpack_from(data, offset)
        if group != 0x0002:
            break
        vr = vr_bytes.decode("latin-1")
        if vr in _LONG_VRS:
            (length,) = _LONG.unpack_from(data, offset + 8)
            start = offset + 12
        elif vr in _SHORT_VRS:
            (length,) = _SHORT.unpack_from(data, offset + 6)
            start = offset + 8
        else:
            raise NotQuickError(f"file meta VR {vr!r}")
        if length == _UNDEFINED or start + length > len(data):
            raise NotQuickError("file meta element length")
        if number == 0x0010:
            syntax = data[start:start + length].decode("ascii").rstrip("\0 ")
        offset = start + length
    if syntax != _EXPLICIT_LE:
        raise NotQuickError(f"transfer syntax {syntax}")
    return syntax, offset


class _Reader:
    __slots__ = ("data", "encodings")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.encodings: tuple[str, ...] = ()

    def dataset(self, offset: int, end: int, *, top: bool) -> tuple[dict[int, _Element], int]:
        """The elements from ``offset`` up to ``end`` or an Item Delimitation Item (then
        ``end`` is -1): (elements, where the next thing starts)."""
        data = self.data
        elements: dict[int, _Element] = {}
        limit = len(data) if end < 0 else end
        while offset < limit:
            if offset + 8 > limit:
                raise NotQuickError("truncated element")
            group, number, vr_bytes = _HEAD.unpack_from(data, offset)
            tag = group << 16 | number
            if tag == _ITEM_END:
                if end >= 0 or _LONG.unpack_from(data, offset + 4)[0] != 0:
                    raise NotQuickError("item delimiter")
                return elements, offset + 8
            if group in (0xFFFE, 0x0002) or tag in elements:
                raise NotQuickError(f"element ({group:04X},{number:04X}) here")
            vr = vr_bytes.decode("latin-1")
            if vr in _SHORT_VRS:
                (length,) = _SHORT.unpack_from(data, offset + 6)
                start = offset + 8
            elif vr in _LONG_VRS:
                if offset + 12 > limit:
                    raise NotQuickError("truncated element")
                (length,) = _LONG.unpack_from(data, offset + 8)
                start = offset + 12
            else:
                raise NotQuickError(f"VR {vr!r}")
            if vr == "SQ":
                items, offset = self.sequence(start, length, limit)
                elements[tag] = (vr, items)
                continue
            if length == _UNDEFINED or start + length > limit:
                raise NotQuickError("element length")
            offset = start + length
            elements[tag] = (vr, data[start:offset])
            if tag == _CHARSET:
                if not top:
                    raise NotQuickError("Specific Character Set in an item")
                named = _value(tag, vr, data[start:offset], (default_encoding,))
                # a copy: convert_encodings may change the list it is given
                self.encodings = tuple(convert_encodings(
                    named if isinstance(named, str) else list(named)))
        if end < 0:
            raise NotQuickError("item without its delimiter")
        return elements, offset

    def sequence(self, offset: int, length: int, limit: int) -> tuple[list[Item], int]:
        """The items of a sequence (PS3.5 7.5): (items, where the next element starts)."""
        data = self.data
        end = -1 if length == _UNDEFINED else offset + length
        if end > limit:
            raise NotQuickError("sequence length")
        items: list[Item] = []
        while end < 0 or offset < end:
            if offset + 8 > (limit if end < 0 else end):
                raise NotQuickError("truncated sequence")
            group, number, item_length = _TAG_LENGTH.unpack_from(data, offset)
            tag = group << 16 | number
            offset += 8
            if tag == _SEQUENCE_END and end < 0:
                if item_length != 0:
                    raise NotQuickError("sequence delimiter")
                return items, offset
            if tag != _ITEM:
                raise NotQuickError("not an item")
            if item_length == _UNDEFINED:
                elements, offset = self.dataset(offset, -1, top=False)
            else:
                item_end = offset + item_length
                if item_end > (limit if end < 0 else end):
                    raise NotQuickError("item length")
                elements, offset = self.dataset(offset, item_end, top=False)
            items.append(Item(elements, ()))
        return items, offset


def read_items(data: bytes) -> Item:
    """The data set of one DICOM file (``data``, its bytes) as :class:`Item`; raises
    :class:`NotQuickError` when it is not one this reader reads exactly as pydicom does."""
    reader = _Reader(data)
    try:
        _, start = _meta(data)
        elements, end = reader.dataset(start, len(data), top=True)
    except (struct.error, UnicodeDecodeError) as exc:
        raise NotQuickError(str(exc)) from None
    if end != len(data):
        raise NotQuickError("bytes after the data set")
    encodings = reader.encodings or (default_encoding,)
    root = Item(elements, encodings)
    _share(root, encodings)
    return root


def read_elements(data: bytes) -> dict[int, tuple[str, bytes]]:
    """The elements of a bare data set in Explicit VR Little Endian (no preamble, no file
    meta information; PS3.5 7.1.2): tag -> (VR, value bytes), in the order written (the
    image index's cache, :mod:`csv2sr.images.index`).  Raises :class:`NotQuickError` for
    what :func:`read_items` would not take, and for a sequence."""
    reader = _Reader(data)
    try:
        elements, end = reader.dataset(0, len(data), top=True)
    except (struct.error, UnicodeDecodeError) as exc:
        raise NotQuickError(str(exc)) from None
    if end != len(data):
        raise NotQuickError("bytes after the data set")
    flat: dict[int, tuple[str, bytes]] = {}
    for tag, (vr, raw) in elements.items():
        if isinstance(raw, list):
            raise NotQuickError("a sequence")
        flat[tag] = (vr, raw)
    return flat


def _share(item: Item, encodings: tuple[str, ...]) -> None:
    """Give every item the data set's character set (an item inherits it, PS3.5 6.1)."""
    item._encodings = encodings
    for _, raw in item._elements.values():
        if isinstance(raw, list):
            for child in raw:
                _share(child, encodings)
