"""The file as a container: preamble, ``DICM``, meta header, transfer syntax, SOP class.

PS3.10 7.1 (preamble, prefix and File Meta Information), PS3.5 7.1 (data element
encoding), PS3.4 B.5 (the SR Storage SOP classes).  Before pydicom parses anything, the
bytes are scanned element by element (:func:`scan`): pydicom stops silently at the end of
a truncated file, so truncation is found here.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field

import pydicom
from pydicom import Dataset
from pydicom._uid_dict import UID_dictionary
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID

from csv2sr.dicom.paths import item_id_from_trail
from csv2sr.errors import Csv2srError
from csv2sr.validate.access import text
from csv2sr.validate.findings import Finding, Severity, Source

__all__ = ["MAX_DEPTH", "SR_STORAGE_CLASSES", "ScanError", "open_dataset", "scan"]

PREAMBLE = 128
MAX_DEPTH = 128
"""Nested sequences checked at most (PS3.3 C.17.3 sets no limit on the depth of a content
tree; TID 1500 needs 6 levels).  A deeper file is one error naming the item where the
limit is reached, and is not checked further: see docs/reliability.md."""
_UNDEFINED = 0xFFFFFFFF
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR",
                       b"UT", b"SV", b"UV"})
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_IMPLICIT = "1.2.840.10008.1.2"
_EXPLICIT = "1.2.840.10008.1.2.1"

SR_STORAGE_CLASSES: frozenset[str] = frozenset(
    uid for uid, entry in UID_dictionary.items()
    if entry[1] == "SOP Class" and (
        "SR Storage" in entry[0] or "SR" in entry[0].split()
        or entry[0] in {"Key Object Selection Document Storage", "Procedure Log Storage"}
    ) and "Storage" in entry[0]
)
"""Every Structured Reporting Storage SOP class pydicom knows (PS3.4 Table B.5-1)."""


class ScanError(Csv2srError):
    """The bytes do not hold a complete DICOM data set."""

    item = ""
    """The content item id the problem is at (``""``: not in the content tree)."""


class DepthError(ScanError):
    """Sequences nested deeper than :data:`MAX_DEPTH`."""

    def __init__(self, trail: list[tuple[int, int]]) -> None:
        self.item = item_id_from_trail(trail)
        where = f" at content item {self.item}" if self.item else ""
        super().__init__(
            f"sequences nested deeper than {MAX_DEPTH} levels{where}: the file is not "
            f"checked further (PS3.3 C.17.3 sets no depth limit; csv2sr checks {MAX_DEPTH})")


@dataclass
class _Scanner:
    data: bytes
    implicit: bool
    trail: list[tuple[int, int]] = field(default_factory=list)
    """(sequence tag, 1-based item index) of the items being scanned, outermost first."""

    def elements(self, offset: int, end: int, *, until_delimiter: bool = False) -> int:
        """Walk elements from ``offset``; return where they end (PS3.5 7.1, 7.5)."""
        while offset < end:
            tag, offset = self._tag(offset)
            if tag in (_ITEM_END, _SEQ_END):
                return offset + 4
            vr, length, offset = self._header(tag, offset)
            if length == _UNDEFINED:
                offset = self.items(offset, tag)
                continue
            if offset + length > len(self.data):
                raise ScanError(
                    f"truncated: element ({tag >> 16:04X},{tag & 0xFFFF:04X}) needs {length} "
                    f"bytes at offset {offset}, the file has {len(self.data) - offset}"
                )
            if vr == b"SQ":
                self.items(offset, tag, offset + length)
            offset += length
        if until_delimiter:
            raise ScanError("truncated: the file ends inside an item of undefined length")
        return offset

    def items(self, offset: int, owner: int, end: int | None = None) -> int:
        """Items of a sequence (or encapsulated fragments) up to ``end`` or its delimiter."""
        if len(self.trail) >= MAX_DEPTH:
            raise DepthError(self.trail)
        limit = len(self.data) if end is None else end
        index = 0
        while offset < limit:
            tag, offset = self._tag(offset)
            length = self._u32(offset)
            offset += 4
            if tag == _SEQ_END:
                return offset
            if tag != _ITEM:
                raise ScanError(
                    f"bad item tag ({tag >> 16:04X},{tag & 0xFFFF:04X}) in sequence "
                    f"({owner >> 16:04X},{owner & 0xFFFF:04X}) at offset {offset - 8}"
                )
            index += 1
            if length == _UNDEFINED:
                self.trail.append((owner, index))
                offset = self.elements(offset, len(self.data), until_delimiter=True)
                self.trail.pop()
                continue
            if offset + length > len(self.data):
                raise ScanError(f"truncated: an item needs {length} bytes at offset {offset}")
            if owner != 0x7FE00010:
                self.trail.append((owner, index))
                self.elements(offset, offset + length)
                self.trail.pop()
            offset += length
        if end is None:
            raise ScanError(
                f"truncated: sequence ({owner >> 16:04X},{owner & 0xFFFF:04X}) has no delimiter"
            )
        return offset

    def _u32(self, offset: int) -> int:
        if offset + 4 > len(self.data):
            raise ScanError(f"truncated: the file ends at offset {len(self.data)}")
        return int(struct.unpack_from("<I", self.data, offset)[0])

    def _tag(self, offset: int) -> tuple[int, int]:
        if offset + 4 > len(self.data):
            raise ScanError(f"truncated: the file ends at offset {len(self.data)}")
        group, element = struct.unpack_from("<HH", self.data, offset)
        return (group << 16) | element, offset + 4

    def _header(self, tag: int, offset: int) -> tuple[bytes, int, int]:
        if self.implicit and tag >> 16 != 0x0002:
            return b"", self._u32(offset), offset + 4
        if offset + 4 > len(self.data):
            raise ScanError(f"truncated: the file ends at offset {len(self.data)}")
        vr = self.data[offset:offset + 2]
        if vr in _LONG_VRS:
            return vr, self._u32(offset + 4), offset + 8
        return vr, int(struct.unpack_from("<H", self.data, offset + 2)[0]), offset + 4


def scan(data: bytes, transfer_syntax: str) -> None:
    """Check that the data set after the meta header is complete (PS3.5 7.1).

    Only the uncompressed little endian syntaxes are scanned; others are left to pydicom.
    """
    if transfer_syntax not in (_IMPLICIT, _EXPLICIT):
        return
    meta_end = _meta_end(data)
    _Scanner(data, transfer_syntax == _IMPLICIT).elements(meta_end, len(data))


def _meta_end(data: bytes) -> int:
    offset = PREAMBLE + 4
    scanner = _Scanner(data, implicit=False)
    while offset + 4 <= len(data):
        group = struct.unpack_from("<H", data, offset)[0]
        if group != 0x0002:
            break
        tag, next_offset = scanner._tag(offset)
        _vr, length, next_offset = scanner._header(tag, next_offset)
        offset = next_offset + length
    return offset


def _error(message: str, attribute: str = "") -> Finding:
    return Finding(Severity.ERROR, Source.CSV2SR, "", attribute, message)


def open_dataset(data: bytes) -> tuple[Dataset | None, list[Finding]]:
    """Parse ``data`` as a DICOM file and check its container; None when it is not one."""
    if not data:
        return None, [_error("empty file (0 bytes): not a DICOM file (PS3.10 7.1)")]
    if len(data) < PREAMBLE + 4 or data[PREAMBLE:PREAMBLE + 4] != b"DICM":
        return None, [_error(
            "not a DICOM file: no 128-byte preamble followed by 'DICM' (PS3.10 7.1)"
        )]
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=False)
        findings = _meta_findings(ds)
        syntax = str(ds.file_meta.get("TransferSyntaxUID", ""))
    except InvalidDicomError as exc:
        return None, [_error(f"unreadable DICOM file: {exc}")]
    except Exception as exc:  # a corrupt meta header: pydicom raises many types
        return None, [_error(f"unreadable File Meta Information (PS3.10 7.1): "
                             f"{type(exc).__name__}: {exc}")]
    try:
        scan(data, syntax)
    except DepthError as exc:
        return None, [*findings, Finding(Severity.ERROR, Source.CSV2SR, exc.item, "", str(exc))]
    except ScanError as exc:
        # what pydicom read of a truncated file is a fragment: checking it adds only noise
        return None, [*findings, _error(f"{exc} (PS3.5 7.1)")]
    return ds, findings


def _meta_findings(ds: Dataset) -> list[Finding]:
    """PS3.10 7.1: the meta header exists and agrees with the data set it describes."""
    meta = ds.file_meta
    if not meta or "TransferSyntaxUID" not in meta:
        return [_error("no File Meta Information / Transfer Syntax UID (PS3.10 7.1)",
                       "/TransferSyntaxUID(0002,0010)")]
    findings: list[Finding] = []
    syntax = UID(str(meta.TransferSyntaxUID))
    if not syntax.is_transfer_syntax:
        findings.append(_error(f"unknown Transfer Syntax UID {syntax!s} (PS3.5 10)",
                               "/TransferSyntaxUID(0002,0010)"))
    pairs = (
        ("MediaStorageSOPClassUID", "(0002,0002)", "SOPClassUID", "(0008,0016)"),
        ("MediaStorageSOPInstanceUID", "(0002,0003)", "SOPInstanceUID", "(0008,0018)"),
    )
    for meta_kw, meta_tag, ds_kw, ds_tag in pairs:
        in_meta, in_ds = text(meta, meta_kw), text(ds, ds_kw)
        if in_meta is None:
            findings.append(_error(f"{meta_kw} {meta_tag} missing from the meta header "
                                   "(PS3.10 7.1)", f"/{meta_kw}{meta_tag}"))
        elif in_ds is not None and in_meta != in_ds:
            findings.append(_error(
                f"{meta_kw} {meta_tag} <{in_meta}> differs from {ds_kw} {ds_tag} <{in_ds}> "
                "(PS3.10 7.1)", f"/{meta_kw}{meta_tag}"))
    return findings


def sr_class_findings(ds: Dataset) -> list[Finding]:
    """PS3.4 B.5: the SOP class must be one of the SR Storage SOP classes."""
    sop_class = text(ds, "SOPClassUID")
    if not sop_class:
        return [_error("SOP Class UID (0008,0016) missing: cannot tell the IOD (PS3.3 C.12.1)",
                       "/SOPClassUID(0008,0016)")]
    if sop_class not in SR_STORAGE_CLASSES:
        name = UID(sop_class).name
        return [_error(f"SOP Class {sop_class} ({name}) is not an SR Storage SOP class "
                       "(PS3.4 B.5): not a structured report", "/SOPClassUID(0008,0016)")]
    return []
