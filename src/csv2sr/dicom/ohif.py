"""The Tracking Identifier texts that make OHIF load a measurement group as an editable tool.

PS3.16 TID 1501 row 2 (Tracking Identifier, TEXT) is free text; Cornerstone3D's SR adapter
(``@cornerstonejs/adapters`` 5.x, ``MeasurementReport.generateToolState``), which OHIF 3
uses, picks the tool for a group by that text
(``BaseAdapter3D.isValidCornerstoneTrackingIdentifier``):

- ``Cornerstone3DTools@^0.1.0:Length`` exactly, or any text that starts with it (and
  contains ``:``), so ``Cornerstone3DTools@^0.1.0:Length:<identifier>`` keeps the row's own
  identifier after the prefix;
- the older ``cornerstoneTools@^4.0.0:Length`` (OHIF 2) only exactly: with an identifier
  appended Cornerstone3D no longer recognises it, so csv2sr does not write that form.

OHIF offers to load an SR as editable measurements (``isRehydratable``) when one of its
groups names such a tool (docs/ohif.md).  ``convert --ohif`` writes the prefixed form;
``export --profile`` takes it off again so that the table round-trips.
"""

from __future__ import annotations

__all__ = [
    "CORNERSTONE3D_TAG",
    "LEGACY_TAG",
    "TOOLS",
    "UID_PART",
    "row_identifier",
    "tracking_identifier",
]

CORNERSTONE3D_TAG = "Cornerstone3DTools@^0.1.0"
"""``CORNERSTONE_3D_TAG`` of ``@cornerstonejs/adapters`` (``cornerstone3DTag.js``)."""
LEGACY_TAG = "cornerstoneTools@^4.0.0"
"""The cornerstoneTools 4 tag (OHIF 2), which the Cornerstone3D adapter accepts only verbatim."""
TOOLS = ("Length",)
"""Cornerstone3D tools csv2sr writes; each is the ``toolType`` of an adapter."""
UID_PART = "ohif"
"""Part of the series and SOP Instance UID names of ``--ohif`` SRs
(:func:`csv2sr.conversion.build.row_uids`)."""


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
