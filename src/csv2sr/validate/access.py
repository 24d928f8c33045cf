"""Read values without letting pydicom convert them (so a broken value cannot raise).

pydicom reads lazily and converts a value on first access, warning or raising when it is
invalid.  The validator looks at the bytes instead: :func:`text` returns an element's value
as text (PS3.5 6.2 padding removed) and :func:`walk` visits every element of every nested
item with its attribute path (:mod:`csv2sr.dicom.paths`), which also proves that the file
is readable to its end.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import NamedTuple

from pydicom import Dataset
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence as PydicomSequence
from pydicom.tag import BaseTag, Tag

from csv2sr.dicom.paths import component, format_path

__all__ = [
    "Element",
    "sequence",
    "sequence_items",
    "tag_of",
    "text",
    "walk",
]

_BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN", "SQ", "FL", "FD", "SL",
                         "SS", "SV", "UL", "US", "UV", "AT"})


class Element(NamedTuple):
    """One element met by :func:`walk` (a tuple: millions are made)."""

    parents: tuple[tuple[int, int], ...]
    """(sequence tag, 1-based item index) from the top data set down to this element."""
    tag: BaseTag
    vr: str
    value: str | None
    """Text for string VRs (None for binary VRs and sequences)."""

    @property
    def path(self) -> str:
        """``/ContentSequence(0040,a730)[5]/NumericValue(0040,a30a)`` (dciodvfy's form)."""
        return format_path(self.parents, self.tag)

    @property
    def keyword(self) -> str:
        return keyword_for_tag(self.tag) or "Unknown"


@functools.cache
def tag_of(keyword: str) -> BaseTag:
    """The tag of a dictionary keyword (cached: this is called for every lookup)."""
    return Tag(keyword)


def _vr_of(tag: BaseTag, element: DataElement | RawDataElement) -> str:
    vr = element.VR
    if vr:
        return str(vr)
    try:
        return str(dictionary_VR(tag)).split(" or ")[0]
    except KeyError:
        return "UN"


def _decode(raw: bytes) -> str:
    return raw.decode("latin-1").rstrip(" \x00")


def _as_text(element: DataElement | RawDataElement, vr: str) -> str | None:
    if vr in _BINARY_VRS:
        return None
    value = element.value
    if value is None:
        return ""
    if isinstance(value, bytes):
        return _decode(value)
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(_one(v) for v in value)
    return _one(value)


def _one(value: object) -> str:
    original = getattr(value, "original_string", None)
    return str(original) if isinstance(original, str) else str(value)


def text(ds: Dataset, keyword: str) -> str | None:
    """The value of ``keyword`` in ``ds`` as text, ``""`` when empty, None when absent."""
    tag = tag_of(keyword)
    element = ds.get_item(tag)
    if element is None:
        return None
    return _as_text(element, _vr_of(tag, element)) or ""


def sequence(ds: Dataset, keyword: str) -> list[Dataset] | None:
    """The items of sequence ``keyword`` (None when the attribute is absent)."""
    tag = tag_of(keyword)
    if tag not in ds:
        return None
    value = ds[tag].value
    return list(value) if value is not None else []


def walk(ds: Dataset, parents: tuple[tuple[int, int], ...] = ()) -> Iterator[Element]:
    """Every element of ``ds`` and of every nested item, depth first, in tag order.

    Walking the whole tree makes pydicom parse every sequence: a file that pydicom cannot
    read to its end raises here (the caller turns that into a finding).
    """
    for tag in list(ds.keys()):
        raw = ds.get_item(tag)
        if raw is None:
            continue
        vr = _vr_of(tag, raw)
        if _is_sequence(tag, raw):
            items = _items(ds, tag)
            yield Element(parents, tag, "SQ", None)
            for index, item in enumerate(items, start=1):
                yield from walk(item, (*parents, (int(tag), index)))
            continue
        yield Element(parents, tag, vr, _as_text(raw, vr))


def _is_sequence(tag: BaseTag, raw: DataElement | RawDataElement) -> bool:
    """SQ, or an undefined-length element of unknown VR (encapsulated pixel data is not)."""
    vr = _vr_of(tag, raw)
    return vr == "SQ" or (
        isinstance(raw, RawDataElement) and raw.length == 0xFFFFFFFF
        and vr not in _BINARY_VRS
    )


def _items(ds: Dataset, tag: BaseTag) -> list[Dataset]:
    value = ds[tag].value
    return list(value) if isinstance(value, PydicomSequence) else []


def sequence_items(ds: Dataset, prefix: str = "") -> Iterator[tuple[str, str, Dataset]]:
    """(path, sequence keyword, item) of every item of every sequence, depth first.

    Only sequences are converted; other elements stay raw (fast, and never raises).
    """
    for tag in list(ds.keys()):
        raw = ds.get_item(tag)
        if raw is None or not _is_sequence(tag, raw):
            continue
        keyword = keyword_for_tag(tag) or "Unknown"
        for index, item in enumerate(_items(ds, tag), start=1):
            path = f"{prefix}/{component(tag, index)}"
            yield path, keyword, item
            yield from sequence_items(item, path)
