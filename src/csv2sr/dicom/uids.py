"""Deterministic UIDs (PS3.5 section 9 and Annex B.2: ``2.25.`` + the integer of a UUID).

A name-based UUID (RFC 9562 version 5) over the profile, a schema version and the row's
identity gives the same UID on every machine for the same input, and a different one as
soon as the identity changes.  ``pydicom.uid.generate_uid(prefix=None, entropy_srcs=...)``
ignores its entropy sources, so it is not used.
"""

from __future__ import annotations

import uuid

from csv2sr.dicom.vr import check_ui

__all__ = ["SCHEMA_VERSION", "derive_uid", "is_valid_uid"]

SCHEMA_VERSION = "3"
"""Bump when the SR encoding changes, so that a changed SR gets new UIDs.

2: one SR series per SR (the Series Instance UID derived from the row, not the study).
3: a geometry column of ``document.uid_identity`` enters as its geometry's stored float32
   points (shortest decimals), not as the cell's float64, so that the table ``export``
   gives back derives the same UIDs (docs/profiles.md, "The round trip").
"""

_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/csv2sr/csv2sr")


def derive_uid(kind: str, *parts: str) -> str:
    """Return ``2.25.<int(uuid5(kind, parts))>``: at most 44 characters, never a leading zero."""
    name = "\x1f".join((SCHEMA_VERSION, kind, *parts))
    return f"2.25.{uuid.uuid5(_NAMESPACE, name).int}"


def is_valid_uid(value: str) -> bool:
    """PS3.5 section 9.1: digits and dots, components without leading zeros, at most 64 chars.

    The rule is :func:`csv2sr.dicom.vr.check_ui`, the one the validator applies too.
    """
    return bool(value) and check_ui(value) is None
