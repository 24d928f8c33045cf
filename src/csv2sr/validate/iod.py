"""SR IOD attributes: Type 1 and Type 2 presence, enumerated values, values by VR.

The modules checked are those every SR IOD csv2sr writes or reads has (PS3.3 A.35.2
Enhanced SR, A.35.3 Comprehensive SR, A.35.13 Comprehensive 3D SR): Patient (C.7.1.1),
General Study (C.7.2.1), SR Document Series (C.17.1), General Equipment (C.7.5.1),
SR Document General (C.17.2), SR Document Content (C.17.3) and SOP Common (C.12.1).
Value rules are those of PS3.5 Table 6.2-1.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable

from pydicom import Dataset

from csv2sr.validate.access import Element, text, walk
from csv2sr.validate.findings import Finding, Severity, Source, item_id_from_path

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
    """Every value of every element, by VR (PS3.5 Table 6.2-1) and enumerated values."""
    findings: list[Finding] = []
    for element in walk(ds):
        if element.value is None or element.value == "":
            continue
        problem = _vr_problem(element)
        if problem:
            findings.append(_finding(
                Severity.ERROR, element.path,
                f"invalid {element.vr} value <{element.value}>: {problem} (PS3.5 Table 6.2-1)"))
        if element.vr == "CS":
            keyword = element.keyword
            allowed = ENUMERATED.get(keyword)
            if keyword in _TOP_LEVEL_ONLY and element.parents:
                allowed = None
            if allowed is not None and element.value not in allowed:
                findings.append(_finding(
                    Severity.ERROR, element.path,
                    f"{keyword} <{element.value}> is not one of the enumerated values "
                    f"{', '.join(sorted(allowed))} (PS3.3 C.17)"))
    return findings


def _vr_problem(element: Element) -> str | None:
    assert element.value is not None  # only called for string VRs with a value
    if element.vr == "PN":
        return _pn_problem(element.value)
    checker = _CHECKS.get(element.vr)
    if checker is None:
        return None
    values: Iterable[str] = (
        [element.value] if element.vr in {"LT", "ST", "UT"} else element.value.split("\\")
    )
    for value in values:
        problem = checker(value)
        if problem:
            return problem
    return None


_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
_DS = re.compile(r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$")
_IS = re.compile(r"^[+-]?[0-9]+$")
_CS = re.compile(r"^[A-Z0-9 _]*$")
_TM = re.compile(r"^([0-9]{2})(([0-9]{2})(([0-9]{2})(\.[0-9]{1,6})?)?)?$")
_DT = re.compile(
    r"^([0-9]{4})(([0-9]{2})(([0-9]{2})(([0-9]{2})(([0-9]{2})(([0-9]{2})(\.[0-9]{1,6})?)?)?)?)?)?"
    r"([+-][0-9]{4})?$"
)


def _max_len(limit: int) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        if len(value.encode("latin-1", "replace")) > limit:
            return f"longer than {limit} bytes"
        return None
    return check


def _uid(value: str) -> str | None:
    if len(value) > 64:
        return "longer than 64 characters"
    if not _UID.match(value):
        return "not dot-separated numbers without leading zeros"
    return None


def _da(value: str) -> str | None:
    if len(value) != 8 or not value.isdigit():
        return "not YYYYMMDD"
    try:
        dt.date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return "not a calendar date"
    return None


def _tm(value: str) -> str | None:
    match = _TM.match(value)
    if match is None:
        return "not HH[MM[SS[.FFFFFF]]]"
    hours, minutes, seconds = match.group(1), match.group(3), match.group(5)
    if int(hours) > 23 or (minutes and int(minutes) > 59) or (seconds and int(seconds) > 60):
        return "not a time of day"
    return None


def _dt(value: str) -> str | None:
    if len(value) > 26 or _DT.match(value) is None:
        return "not YYYY[MM[DD[HH[MM[SS[.FFFFFF]]]]]][&ZZXX]"
    if len(value) >= 8 and value[:8].isdigit() and _da(value[:8]):
        return "not a calendar date"
    return None


def _ds(value: str) -> str | None:
    stripped = value.strip(" ")
    if len(value) > 16:
        return "longer than 16 bytes"
    if not _DS.match(stripped):
        return "not a decimal number"
    return None


def _is(value: str) -> str | None:
    stripped = value.strip(" ")
    if len(value) > 12 or not _IS.match(stripped):
        return "not an integer string of at most 12 bytes"
    if not -(2**31) <= int(stripped) < 2**31:
        return "outside -2^31 .. 2^31-1"
    return None


def _cs(value: str) -> str | None:
    if len(value) > 16:
        return "longer than 16 bytes"
    if not _CS.match(value.rstrip(" ")):
        return "only upper case letters, digits, space and underscore are allowed"
    return None


def _raw_bytes(value: str) -> bytes:
    """The bytes of a value: raw values were decoded as latin-1 (one char per byte)."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def _pn_problem(value: str) -> str | None:
    for name in value.split("\\"):
        groups = name.split("=")
        if len(groups) > 3:
            return "more than 3 component groups"
        for group in groups:
            if len(_raw_bytes(group)) > 64:
                return "a component group is longer than 64 bytes"
            if group.count("^") > 4:
                return "more than 5 components"
    return None


_CHECKS: dict[str, Callable[[str], str | None]] = {
    "UI": _uid, "DA": _da, "TM": _tm, "DT": _dt, "DS": _ds, "IS": _is, "CS": _cs,
    "AE": _max_len(16), "SH": _max_len(16), "LO": _max_len(64), "ST": _max_len(1024),
    "LT": _max_len(10240),
}
