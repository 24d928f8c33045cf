"""Which Cornerstone3D tool OHIF makes of a measurement group, and the Tracking Identifier
texts that name it.

PS3.16 TID 1501 row 2 (Tracking Identifier, TEXT) is free text. Cornerstone3D's SR adapter
(``@cornerstonejs/adapters`` 5.x, ``MeasurementReport.generateToolState``), which OHIF 3
uses, picks a group's tool by that text
(``BaseAdapter3D.isValidCornerstoneTrackingIdentifier``):

- ``Cornerstone3DTools@^0.1.0:<Tool>`` exactly, or any text that starts with it and
  contains ``:``. So ``Cornerstone3DTools@^0.1.0:<Tool>:<identifier>`` keeps the row's
  own identifier after the prefix.
- The older ``cornerstoneTools@^4.0.0:<Tool>`` (OHIF 2) only exactly. With an identifier
  appended, Cornerstone3D no longer recognises it, so csv2sr does not write that form.

Then the tool's adapter reads the group (:func:`tool_for` states what each one needs).
OHIF offers to load an SR as editable measurements (``isRehydratable``) when one of its
groups names such a tool (docs/ohif.md). ``convert --ohif`` writes the prefixed form for
each group that has a tool, and ``export --profile`` takes it off again so that the table
round-trips.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "ADAPTER_MEANINGS",
    "CORNERSTONE3D_TAG",
    "LEGACY_TAG",
    "TOOLS",
    "UID_PART",
    "Graphic",
    "Number",
    "row_identifier",
    "tool_for",
    "tracking_identifier",
]

CORNERSTONE3D_TAG = "Cornerstone3DTools@^0.1.0"
"""``CORNERSTONE_3D_TAG`` of ``@cornerstonejs/adapters`` (``cornerstone3DTag.js``)."""
LEGACY_TAG = "cornerstoneTools@^4.0.0"
"""The cornerstoneTools 4 tag (OHIF 2), which the Cornerstone3D adapter accepts only verbatim."""
TOOLS = ("Length", "Bidirectional", "RectangleROI", "EllipticalROI", "Probe")
"""Cornerstone3D tools csv2sr writes (:func:`tool_for`); each is the ``toolType`` of an
adapter."""
UID_PART = "ohif"
"""Part of the series and SOP Instance UID names of ``--ohif`` SRs
(:func:`csv2sr.conversion.build.document_uids`)."""


def tracking_identifier(tool: str, identifier: str, ohif: bool) -> str:
    """TID 1501 row 2 text for a group of ``tool``: the identifier, or with ``ohif`` the
    Cornerstone3D prefix, ``:`` and the identifier."""
    if not ohif:
        return identifier
    if tool not in TOOLS:
        raise ValueError(f"no Cornerstone3D tool {tool!r}; known: {', '.join(TOOLS)}")
    return f"{CORNERSTONE3D_TAG}:{tool}:{identifier}"


def row_identifier(text: str) -> str:
    """The row's identifier in a Tracking Identifier: ``text`` without a Cornerstone prefix
    (``Cornerstone3DTools@^0.1.0:Length:`` or ``cornerstoneTools@^4.0.0:Length:``).

    A bare tool name (what OHIF itself writes, ``Cornerstone3DTools@^0.1.0:Length``) carries
    no identifier and gives ``""``; any other text is returned as it is.
    """
    for tag in (CORNERSTONE3D_TAG, LEGACY_TAG):
        for tool in TOOLS:
            prefix = f"{tag}:{tool}"
            if text == prefix:
                return ""
            if text.startswith(prefix + ":"):
                return text[len(prefix) + 1:]
    return text


# --- which tool a group becomes ---------------------------------------------------------

ADAPTER_MEANINGS = {
    ("103339001", "SCT"): "Long Axis",
    ("103340004", "SCT"): "Short Axis",
    ("42798000", "SCT"): "Area",
}
"""The Code Meanings the adapter finds NUMs by, case-sensitively, with the code value
ignored. Bidirectional looks for ``'Long Axis'`` and ``'Short Axis'``; RectangleROI reads
its area from ``'Area'``. These are dcmjs's meanings, those of the 2018 reference SR and of
PS3.16 CID 7470 as of 2019; pydicom's dictionary now writes "Long axis"/"Short axis".
With ``--ohif`` csv2sr writes them for these codes (:func:`adapter_meaning`); the codes
themselves are unchanged."""


@dataclass(frozen=True)
class Graphic:
    """A SCOORD as the adapter reads it (PS3.3 C.18.6): Graphic Type, the flat (column, row)
    points and the SOP Instance UID of its image."""

    graphic_type: str
    points: tuple[float, ...]
    image: str = ""

    @property
    def count(self) -> int:
        return len(self.points) // 2


@dataclass(frozen=True)
class Number:
    """A NUM of a group (PS3.16 TID 300 row 1): its concept as (value, scheme), with
    SNOMED-RT taken as SNOMED CT, and the SCOORD it is INFERRED FROM (row 12), if any."""

    concept: tuple[str, str]
    graphic: Graphic | None


def _is_rectangle(graphic: Graphic) -> bool:
    """A closed POLYLINE of four axis-aligned sides (a profile's box), which RectangleROI
    takes as its corners: it keeps points 0, 1, 3 and 2 as top-left, top-right,
    bottom-left and bottom-right (``RectangleROI.getMeasurementData``)."""
    p = graphic.points
    if graphic.graphic_type != "POLYLINE" or graphic.count != 5 or p[8:10] != p[0:2]:
        return False
    corners = [p[i:i + 2] for i in range(0, 10, 2)]
    along = [a[0] == b[0] for a, b in itertools.pairwise(corners)]
    across = [a[1] == b[1] for a, b in itertools.pairwise(corners)]
    sides = [x != y for x, y in zip(along, across, strict=True)]  # one coordinate moves
    turns = along[0] != along[1] and along[0] == along[2] and along[1] == along[3]
    return all(sides) and turns and p[0] != p[4] and p[1] != p[5]


def _is(graphic: Graphic | None, graphic_type: str, count: int) -> bool:
    return graphic is not None and graphic.graphic_type == graphic_type \
        and graphic.count == count


def tool_for(template: str, region: Graphic | None, numbers: Sequence[Number]) -> str | None:
    """The Cornerstone3D tool whose adapter reads a group back with the same points and
    value, or None when no adapter does.

    These rules are what ``@cornerstonejs/adapters`` 5.14 reads
    (``MeasurementReport.getSetupMeasurementData``, then each tool's
    ``getMeasurementData``).
    The adapter takes the SCOORD from the group's *first* NUM, and from the group itself
    only when the group has no NUM.

    - TID 1501, one NUM INFERRED FROM a 2-point POLYLINE: **Length**. Its length is the
      NUM, its handles the two points.
    - TID 1501, the NUMs Long Axis and Short Axis (SCT 103339001, 103340004), each
      INFERRED FROM a 2-point POLYLINE on one image: **Bidirectional**. Its length and width
      are the NUMs, its handles the long axis ends then the short axis ends.
    - TID 1501, one Area NUM (SCT 42798000) INFERRED FROM a box (a closed axis-aligned
      4-sided POLYLINE): **RectangleROI**, area = the NUM. TID 1410 with a box as the
      Image Region and no NUM: RectangleROI without an area.
    - TID 1501, one Area NUM INFERRED FROM an ELLIPSE: **EllipticalROI**, area = the NUM,
      handles = the four axis ends.
    - TID 1501, one NUM INFERRED FROM a POINT: **Probe**, value = the NUM. TID 1410 with
      a one-point Image Region and no NUM: Probe without a value.

    Everything else is None: it stays read-only. That covers:

    - TID 1410 groups with NUMs, whose NUMs are INFERRED FROM nothing. The adapter then
      finds no SCOORD ("No spatial coordinates group found").
    - A circle: CircleROI reads the first NUM as an area and a radius of 0.
    - A polygon: PlanarFreehandROI keeps its points as a contour, not as handles.
    - Any other set of NUMs: the tools read one NUM, or two for Bidirectional, and saving
      from OHIF would drop the rest.
    """
    from csv2sr.dicom.codes import Codes, code_key  # noqa: PLC0415  (pydicom, lazily)

    if template == "1410":
        if numbers or region is None:
            return None
        if _is_rectangle(region):
            return "RectangleROI"
        return "Probe" if _is(region, "POINT", 1) else None
    if len(numbers) == 2:
        axes = {code_key(Codes.LONG_AXIS), code_key(Codes.SHORT_AXIS)}
        lines = all(_is(n.graphic, "POLYLINE", 2) for n in numbers)
        images = {n.graphic.image for n in numbers if n.graphic is not None}
        if {n.concept for n in numbers} == axes and lines and len(images) == 1:
            return "Bidirectional"
        return None
    if len(numbers) != 1 or numbers[0].graphic is None:
        return None
    number = numbers[0]
    graphic = number.graphic
    assert graphic is not None
    area = number.concept == code_key(Codes.AREA)
    if _is(graphic, "POLYLINE", 2):
        return "Length"
    if _is(graphic, "POINT", 1):
        return "Probe"
    if area and _is(graphic, "ELLIPSE", 4):
        return "EllipticalROI"
    if area and _is_rectangle(graphic):
        return "RectangleROI"
    return None


def adapter_meaning(tool: str, concept: tuple[str, str], meaning: str) -> str:
    """The Code Meaning to write for a NUM of a ``tool`` group: the adapter's own text for
    the concepts it finds by meaning (:data:`ADAPTER_MEANINGS`), else ``meaning``."""
    if tool in {"Bidirectional", "RectangleROI"}:
        return ADAPTER_MEANINGS.get(concept, meaning)
    return meaning
