"""The SR content tree of a pydicom Dataset: one walk, one numbering of its items.

PS3.3 C.17.3 (SR Document Content Module): the document root is a content item whose
Content Sequence (0040,A730) holds its children, recursively.  An item is named by its
positions from the root, 1-based, the root being ``1``: the third child of the root's
fifth child is ``1.5.3``.  This is how ``dcsrdump`` numbers items, how Referenced Content
Item Identifier (0040,DB73) points at one (PS3.3 C.17.3.2.2), and how every finding,
export note and report page of csv2sr names one.

The encoder (:mod:`csv2sr.conversion.build`), the template path
(:mod:`csv2sr.conversion.fastpath`), the export reader (:mod:`csv2sr.export.reader`), the
image cross-checks (:mod:`csv2sr.images.cross`), the report pages
(:mod:`csv2sr.release.pages`) and the SR XML writer walk Datasets with these functions;
the validator keeps its own node tree over raw values (:mod:`csv2sr.validate.content`)
but numbers it with :func:`child_id` too.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydicom import Dataset

__all__ = [
    "ROOT_ID",
    "child_id",
    "children",
    "content_items",
    "datasets",
    "item_id",
    "resolve",
    "sort_key",
]

ROOT_ID = "1"
"""The id of the document root (the SR dataset itself is the root content item)."""


def child_id(parent_id: str, position: int) -> str:
    """The id of the ``position``-th (1-based) item of the Content Sequence of
    ``parent_id``: ``child_id("1.5", 3) == "1.5.3"``."""
    return f"{parent_id}.{position}"


def item_id(positions: Iterable[int]) -> str:
    """``[1, 5, 3]`` -> ``"1.5.3"``: positions from the root, the root first, as Referenced
    Content Item Identifier (0040,DB73) lists them (PS3.3 C.17.3.2.2)."""
    return ".".join(str(position) for position in positions)


def sort_key(item: str) -> tuple[int, ...]:
    """``"1.10.2"`` -> ``(1, 10, 2)`` so that item ids sort numerically; ``""`` first."""
    return tuple(int(part) for part in item.split(".") if part.isdigit())


def children(item: Dataset, parent_id: str = ROOT_ID) -> Iterator[tuple[str, Dataset]]:
    """(id, item) of every item of ``item``'s Content Sequence, in order."""
    for position, child in enumerate(item.get("ContentSequence") or [], start=1):
        yield child_id(parent_id, position), child


def content_items(ds: Dataset, parent_id: str = ROOT_ID) -> Iterator[tuple[str, Dataset]]:
    """(id, item) of every content item below ``ds`` (the root itself not included),
    depth first in document order."""
    for child, item in children(ds, parent_id):
        yield child, item
        yield from content_items(item, child)


def resolve(root: Dataset, positions: Iterable[int]) -> Dataset | None:
    """The item that Referenced Content Item Identifier ``positions`` points to (PS3.3
    C.17.3.2.2: 1-based positions from the root, which is ``1``), or None."""
    steps = list(positions)
    if not steps or steps[0] != 1:
        return None
    node = root
    for position in steps[1:]:
        items = node.get("ContentSequence") or []
        if not 1 <= position <= len(items):
            return None
        node = items[position - 1]
    return node


def datasets(ds: Dataset) -> Iterator[Dataset]:
    """``ds`` and every item of every sequence nested in it (content items, but also their
    code sequences, the evidence and the observers), depth first in tag order."""
    yield ds
    for element in ds:
        if element.VR == "SQ":
            for item in element.value:
                yield from datasets(item)
