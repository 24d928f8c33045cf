"""SR IOD attributes: Type 1 and Type 2 presence, enumerated values, values by VR.

The modules checked are those every SR IOD csv2sr writes or reads has (PS3.3 A.35.2
Enhanced SR, A.35.3 Comprehensive SR, A.35.13 Comprehensive 3D SR): Patient (C.7.1.1),
General Study (C.7.2.1), SR Document Series (C.17.1), General Equipment (C.7.5.1),
SR Document General (C.17.2), SR Document Content (C.17.3) and SOP Common (C.12.1).
Value rules are those of PS3.5 Table 6.2-1, from :mod:`csv2sr.dicom.vr` (shared with the
row checks of ``convert``).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

from pydicom import Dataset
from pydicom.charset import convert_encodings, decode_bytes

from csv2sr.dicom import vr
from csv2sr.dicom.paths import item_id_from_path
from csv2sr.validate.access import text, walk
from csv2sr.validate.findings import Finding, Severity, Source

__all__ = ["ENUMERATED", "MODULES", "check_attributes", "check_values"]

MODULES: dict[str, tuple[tuple[str, int], ...]] = {
    "Patient (PS3.3 C.7.1.1)": (
        ("PatientName", 2), ("PatientID", 2), ("PatientBirthDate", 2), ("PatientSex", 2),
    ),
    "General Study (PS3.3 C.7.2.1)": (
        ("StudyInstanceUID", 1), ("StudyDate", 2), ("StudyTime", 2),
        ("ReferringPhysicianName", 2), ("StudyID", 2), ("AccessionNumber", 2),
    ),
    "SR Document Series (PS3.3 C.17.1)": (
        ("Modality", 1), ("SeriesInstanceUID", 1), ("SeriesNumber", 1),
        ("ReferencedPerformedProcedureStepSequence", 2),
    ),
    "General Equipment (PS3.3 C.7.5.1)": (("Manufacturer", 2),),
    "SR Document General (PS3.3 C.17.2)": (
        ("InstanceNumber", 1), ("CompletionFlag", 1), ("VerificationFlag", 1),
        ("ContentDate", 1), ("ContentTime", 1), ("PerformedProcedureCodeSequence", 2),
    ),
    "SR Document Content (PS3.3 C.17.3)": (
        ("ValueType", 1), ("ConceptNameCodeSequence", 1), ("ContinuityOfContent", 1),
    ),
    "SOP Common (PS3.3 C.12.1)": (("SOPClassUID", 1), ("SOPInstanceUID", 1)),
}
"""Module -> (keyword, type) for the header of an SR document."""

ENUMERATED: dict[str, frozenset[str]] = {
    "Modality": frozenset({"SR"}),
    "CompletionFlag": frozenset({"PARTIAL", "COMPLETE"}),
    "VerificationFlag": frozenset({"UNVERIFIED", "VERIFIED"}),
    "PreliminaryFlag": frozenset({"PRELIMINARY", "FINAL"}),
    "ContinuityOfContent": frozenset({"SEPARATE", "CONTINUOUS"}),
    "ObserverType": frozenset({"PSN", "DEV"}),
    "GraphicType": frozenset({"POINT", "MULTIPOINT", "POLYLINE", "CIRCLE", "ELLIPSE",
                              "POLYGON", "ELLIPSOID"}),  # per value type: content.py
    "RelationshipType": frozenset({"CONTAINS", "HAS PROPERTIES", "HAS OBS CONTEXT",
                                   "HAS ACQ CONTEXT", "INFERRED FROM", "SELECTED FROM",
                                   "HAS CONCEPT MOD"}),
    "ValueType": frozenset({"TEXT", "NUM", "CODE", "DATETIME", "DATE", "TIME", "UIDREF",
                            "PNAME", "COMPOSITE", "IMAGE", "WAVEFORM", "SCOORD",
                            "SCOORD3D", "TCOORD", "CONTAINER", "TABLE"}),
}
"""Enumerated values (PS3.3 C.17.1, C.17.2, C.17.3, C.18.6) checked wherever they occur."""

_TOP_LEVEL_ONLY = frozenset({"Modality", "CompletionFlag", "VerificationFlag",
                             "PreliminaryFlag"})
"""Enumerations of the SR document's own header: nested items may use these keywords too."""

_TAGS = {
    "PatientName": "(0010,0010)", "PatientID": "(0010,0020)",
    "PatientBirthDate": "(0010,0030)", "PatientSex": "(0010,0040)",
    "StudyInstanceUID": "(0020,000d)", "StudyDate": "(0008,0020)", "StudyTime": "(0008,0030)",
    "ReferringPhysicianName": "(0008,0090)", "StudyID": "(0020,0010)",
    "AccessionNumber": "(0008,0050)", "Modality": "(0008,0060)",
    "SeriesInstanceUID": "(0020,000e)", "SeriesNumber": "(0020,0011)",
    "ReferencedPerformedProcedureStepSequence": "(0008,1111)",
    "Manufacturer": "(0008,0070)", "InstanceNumber": "(0020,0013)",
    "CompletionFlag": "(0040,a491)", "VerificationFlag": "(0040,a493)",
    "ContentDate": "(0008,0023)", "ContentTime": "(0008,0033)",
    "PerformedProcedureCodeSequence": "(0040,a372)", "ValueType": "(0040,a040)",
    "ConceptNameCodeSequence": "(0040,a043)", "ContinuityOfContent": "(0040,a050)",
    "SOPClassUID": "(0008,0016)", "SOPInstanceUID": "(0008,0018)",
}


def _finding(severity: Severity, path: str, message: str) -> Finding:
    return Finding(severity, Source.CSV2SR, item_id_from_path(path), path, message)


def check_attributes(ds: Dataset) -> list[Finding]:
    """Type 1: present and not empty; Type 2: present (PS3.5 7.4); plus the 1C rules below."""
    findings: list[Finding] = []
    for module, attributes in MODULES.items():
        for keyword, kind in attributes:
            path = f"/{keyword}{_TAGS[keyword]}"
            if keyword not in ds:
                findings.append(_finding(
                    Severity.ERROR, path,
                    f"missing Type {kind} attribute {keyword} {_TAGS[keyword]} ({module})"))
            elif kind == 1 and _is_empty(ds, keyword):
                findings.append(_finding(
                    Severity.ERROR, path,
                    f"empty Type 1 attribute {keyword} {_TAGS[keyword]} ({module})"))
    if text(ds, "VerificationFlag") == "VERIFIED" and "VerifyingObserverSequence" not in ds:
        findings.append(_finding(
            Severity.ERROR, "/VerifyingObserverSequence(0040,a073)",
            "VerificationFlag is VERIFIED but Verifying Observer Sequence is missing "
            "(Type 1C, PS3.3 C.17.2)"))
    return findings


def _is_empty(ds: Dataset, keyword: str) -> bool:
    value = ds[keyword].value if ds[keyword].VR == "SQ" else text(ds, keyword)
    return value is None or len(value) == 0


def check_values(ds: Dataset) -> list[Finding]:
    """Every value of every element, by VR (PS3.5 Table 6.2-1) and enumerated values.

    The rules are :mod:`csv2sr.dicom.vr`, the functions the row checks of ``convert`` use;
    text is decoded with the data set's Specific Character Set (PS3.5 6.1.2.5) so that
    lengths count characters and encoded bytes both.
    """
    findings: list[Finding] = []
    charset = _Charset.of(ds)
    for element in walk(ds):
        if element.value is None or element.value == "":
            continue
        value = charset.decode(element.value) if element.vr in _TEXT_VRS else element.value
        problem = _vr_problem(element.vr, value, charset)
        if problem is None and element.vr == "UI" and element.keyword in vr.INSTANCE_UIDS:
            problem = vr.check_instance_uid(value)
        if problem:
            findings.append(_finding(
                Severity.ERROR, element.path,
                f"invalid {element.vr} value <{_printable(value)}>: {problem} "
                "(PS3.5 Table 6.2-1)"))
        if element.vr == "CS":
            keyword = element.keyword
            allowed = ENUMERATED.get(keyword)
            if keyword in _TOP_LEVEL_ONLY and element.parents:
                allowed = None
            if allowed is not None and element.value not in allowed:
                findings.append(_finding(
                    Severity.ERROR, element.path,
                    f"{keyword} <{_printable(element.value)}> is not one of the enumerated "
                    f"values {', '.join(sorted(allowed))} (PS3.3 C.17)"))
    return findings


_TEXT_VRS = frozenset({"SH", "LO", "ST", "LT", "UC", "UT", "PN"})
"""VRs whose characters the Specific Character Set defines (PS3.5 6.1.2.5)."""
_SHOWN = 100
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _printable(value: str) -> str:
    """A value for a one-line message: control characters as ``\\xNN``, long values cut."""
    cut = value if len(value) <= _SHOWN else f"{value[:_SHOWN]}... ({len(value)} characters)"
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", cut)


@dataclass(frozen=True)
class _Charset:
    """The Specific Character Set (0008,0005) of a data set, as Python codecs."""

    encodings: tuple[str, ...]
    code_extensions: bool
    """ISO 2022 code extension (ESC sequences are allowed, PS3.5 6.1.2.5.3)."""

    @classmethod
    def of(cls, ds: Dataset) -> _Charset:
        terms = (text(ds, "SpecificCharacterSet") or "").split("\\")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an unknown term: pydicom falls back to ASCII
            encodings = tuple(convert_encodings([t.strip() for t in terms]))
        extended = len(terms) > 1 or terms[0].strip().startswith("ISO 2022")
        return cls(encodings, extended)

    @property
    def codec(self) -> str:
        return self.encodings[0] if self.encodings else "iso8859"

    def decode(self, value: str) -> str:
        """The text of a raw value (read as latin-1, one character per byte); a value that
        does not decode (or was already decoded by pydicom) is returned as it is."""
        try:
            raw = value.encode("latin-1")
        except UnicodeEncodeError:
            return value  # already text
        try:
            if len(self.encodings) == 1:
                return raw.decode(self.codec)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return decode_bytes(raw, list(self.encodings), set())
        except (UnicodeDecodeError, LookupError, ValueError):
            return value


def _vr_problem(vr_name: str, value: str, charset: _Charset) -> str | None:
    for one in vr.split_values(vr_name, value):
        problem = vr.check_value(
            vr_name, one, encoding=charset.codec, code_extensions=charset.code_extensions
        )
        if problem:
            return problem
    return None
