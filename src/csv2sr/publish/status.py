"""Meanings of the status codes a server answers a store with.

C-STORE (PS3.4 Table B.2-1 and the general statuses of PS3.7 Annex C) and the STOW-RS
Store Instances Response (PS3.18 Table I.2-1 Warning Reason (0008,1196), Table I.2-2
Failure Reason (0008,1197)) use the same codes.  One table, read by both senders.
"""

from __future__ import annotations

__all__ = ["DUPLICATE", "describe", "is_failure", "is_warning"]

DUPLICATE = 0x0111  # PS3.7 C.5: Duplicate SOP Instance (the server already has it)

_EXACT = {
    0x0000: "Success",
    0xB000: "Warning: coercion of data elements",
    0xB006: "Warning: elements discarded",
    0xB007: "Warning: data set does not match SOP Class",
    0x0110: "Processing failure",
    0x0111: "Duplicate SOP Instance",
    0x0112: "No such SOP Instance",
    0x0117: "Invalid SOP Instance",
    0x0122: "SOP Class not supported",
    0x0124: "Not authorized",
    0x0210: "Duplicate invocation",
    0x0211: "Unrecognized operation",
    0x0212: "Mistyped argument",
    0x0213: "Resource limitation",
    0xC122: "Referenced Transfer Syntax not supported",
}
_RANGES = (
    (0xA700, 0xA7FF, "Refused: out of resources"),
    (0xA900, 0xA9FF, "Error: data set does not match SOP Class"),
    (0xC000, 0xCFFF, "Error: cannot understand"),
)


def describe(code: int) -> str:
    """``"0xA700 (Refused: out of resources)"``."""
    meaning = _EXACT.get(code) or next(
        (text for low, high, text in _RANGES if low <= code <= high), "unknown status"
    )
    return f"0x{code:04X} ({meaning})"


def is_warning(code: int) -> bool:
    """Stored, with a warning (PS3.4 B.2.3: B000, B006, B007; any Bxxx by class)."""
    return 0xB000 <= code <= 0xBFFF


def is_failure(code: int) -> bool:
    """Not stored: anything but success, a warning or a duplicate."""
    return code != 0x0000 and not is_warning(code) and code != DUPLICATE
