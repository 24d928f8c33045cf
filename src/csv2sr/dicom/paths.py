"""Attribute paths in dciodvfy's form, and the content item ids they lead to.

dciodvfy (``-new``) names an attribute by its path from the top data set:
``/ContentSequence(0040,a730)[5]/ContentSequence(0040,a730)[1]/ValueType(0040,a040)``,
each step the keyword, the tag in lower-case hex and, for a sequence item, its 1-based
index.  csv2sr's own findings (:mod:`csv2sr.validate`, :mod:`csv2sr.images.cross`) name
attributes the same way, so that one report reads alike whoever found the problem, and
:func:`item_id_from_path` maps any such path to the content item (PS3.3 C.17.3) it is in,
numbered as :mod:`csv2sr.dicom.tree` numbers items.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydicom.datadict import keyword_for_tag
from pydicom.tag import BaseTag, Tag

from csv2sr.dicom.tree import ROOT_ID, item_id

__all__ = [
    "CONTENT_SEQUENCE",
    "ROOT_CONTENT_KEYWORDS",
    "component",
    "content_step",
    "format_path",
    "item_id_from_path",
    "item_id_from_trail",
    "keyword_path",
]

CONTENT_SEQUENCE = 0x0040A730
"""Content Sequence (0040,A730): the children of a content item."""

ROOT_CONTENT_KEYWORDS = frozenset(
    {
        "ValueType",
        "ConceptNameCodeSequence",
        "ContinuityOfContent",
        "ContentTemplateSequence",
        "ContentSequence",
    }
)
"""Attributes of the SR Document Content Module that belong to the root item (PS3.3 C.17.3)."""

_COMPONENT = re.compile(r"([A-Za-z0-9]+)?\(([0-9a-fA-F]{4}),([0-9a-fA-F]{4})\)(?:\[(\d+)\])?")


def component(tag: BaseTag, index: int | None = None) -> str:
    """One path step: ``Keyword(gggg,eeee)`` plus ``[n]`` (1-based) for an item."""
    name = keyword_for_tag(tag) or "Unknown"
    text = f"{name}({tag.group:04x},{tag.element:04x})"
    return text if index is None else f"{text}[{index}]"


def format_path(parents: Iterable[tuple[int, int]], tag: BaseTag | None = None) -> str:
    """The path of an element below ``parents`` ((sequence tag, 1-based item index) from
    the top data set down), or of the innermost item itself when ``tag`` is None."""
    parts = [component(Tag(t), i) for t, i in parents]
    if tag is not None:
        parts.append(component(tag))
    return "".join("/" + p for p in parts)


def keyword_path(*steps: tuple[str, int | None] | str) -> str:
    """A path from keywords: ``keyword_path(("ContentSequence", 5), "GraphicData")`` is
    ``/ContentSequence(0040,a730)[5]/GraphicData(0070,0022)``."""
    parts = []
    for step in steps:
        keyword, index = (step, None) if isinstance(step, str) else step
        parts.append("/" + component(Tag(keyword), index))
    return "".join(parts)


def content_step(position: int) -> str:
    """The step to the ``position``-th (1-based) child item: ``/ContentSequence(0040,a730)[n]``."""
    return f"/ContentSequence(0040,a730)[{position}]"


def item_id_from_trail(trail: Iterable[tuple[int, int]]) -> str:
    """The content item of the deepest run of Content Sequence items from the top of
    ``trail`` ((sequence tag, 1-based index) pairs), ``""`` when it starts elsewhere."""
    positions = [1]
    for tag, index in trail:
        if tag != CONTENT_SEQUENCE:
            break
        positions.append(index)
    return item_id(positions) if len(positions) > 1 else ""


def item_id_from_path(path: str) -> str:
    """Map a dciodvfy-style attribute path to a content item id (PS3.3 C.17.3).

    ``/ContentSequence(0040,a730)[5]/ContentSequence(0040,a730)[1]/ValueType(0040,a040)``
    is item ``1.5.1``; an attribute of the root item is ``1``; a header attribute is ``""``.
    """
    parts = [p for p in path.strip("<>").split("/") if p]
    ids: list[str] = []
    for part in parts:
        match = _COMPONENT.fullmatch(part)
        if match is None:
            break
        group, element, index = match.group(2), match.group(3), match.group(4)
        if (group.lower(), element.lower()) == ("0040", "a730") and index is not None:
            ids.append(index)
            continue
        if not ids and _keyword_of(match) not in ROOT_CONTENT_KEYWORDS:
            return ""
        break
    return ".".join([ROOT_ID, *ids]) if parts else ""


def _keyword_of(match: re.Match[str]) -> str:
    keyword = match.group(1) or ""
    if keyword:
        return keyword
    return {
        "0040a040": "ValueType",
        "0040a043": "ConceptNameCodeSequence",
        "0040a050": "ContinuityOfContent",
        "0040a504": "ContentTemplateSequence",
    }.get((match.group(2) + match.group(3)).lower(), "")
