"""TID 1500 Measurement Report structure, which dciodvfy does not check.

PS3.16 TID 1500 (rows 1-6: title from CID 7021, language TID 1204, observation context
TID 1001, procedure reported from CID 100, image library TID 1600, imaging measurements),
TID 1501 (measurement group: tracking identifier and UID) and TID 300 (measurement units
from UCUM, CID 7181 / PS3.16 Table 8-1 "UCUM").
"""

from __future__ import annotations

from pydicom.sr import _cid_dict, _concepts_dict

from csv2sr.dicom.codes import Codes
from csv2sr.validate.access import sequence, text
from csv2sr.validate.content import Node
from csv2sr.validate.findings import Finding, Severity, Source

__all__ = ["CID_100", "CID_7021", "check_tid1500", "is_tid1500"]


def _cid(number: int) -> frozenset[tuple[str, str]]:
    """(value, scheme) of every code of a context group, from pydicom's CID tables."""
    out: set[tuple[str, str]] = set()
    table: dict[str, list[str]] = _cid_dict.cid_concepts.get(number, {})
    for scheme, keywords in table.items():
        for keyword in keywords:
            entry = _concepts_dict.concepts.get(scheme, {}).get(keyword, {})
            if isinstance(entry, dict):
                out.update((str(value), scheme) for value in entry)
    return frozenset(out)


CID_7021 = _cid(7021)
"""PS3.16 CID 7021 Measurement Report Document Titles."""
CID_100 = _cid(100)
"""PS3.16 CID 100 Quantitative Diagnostic Imaging Procedures."""

_LANGUAGE = (Codes.LANGUAGE.value, "DCM")
_PROCEDURE = (Codes.PROCEDURE_REPORTED.value, "DCM")
_LIBRARY = (Codes.IMAGE_LIBRARY.value, "DCM")
_MEASUREMENTS = (Codes.IMAGING_MEASUREMENTS.value, "DCM")
_QUALITATIVE = ("C0034375", "UMLS")
_DERIVED = ("126011", "DCM")
_GROUP = (Codes.MEASUREMENT_GROUP.value, "DCM")
_TRACKING_ID = (Codes.TRACKING_IDENTIFIER.value, "DCM")
_TRACKING_UID = (Codes.TRACKING_UID.value, "DCM")
_FINDING = (Codes.FINDING.value, "DCM")

_ROWS: dict[tuple[str, str], tuple[int, str, str]] = {
    _LANGUAGE: (2, "Language of Content Item and Descendants", "HAS CONCEPT MOD"),
    _PROCEDURE: (4, "Procedure reported", "HAS CONCEPT MOD"),
    _LIBRARY: (5, "Image Library", "CONTAINS"),
    _MEASUREMENTS: (6, "Imaging Measurements", "CONTAINS"),
    _DERIVED: (6, "Derived Imaging Measurements", "CONTAINS"),
    _QUALITATIVE: (6, "Qualitative Evaluations", "CONTAINS"),
}
"""Root child concept -> (TID 1500 row, name, relationship it must have)."""


def _f(severity: Severity, node: Node, message: str, attribute: str = "") -> Finding:
    return Finding(severity, Source.CSV2SR, node.id, node.path + attribute, message)


def is_tid1500(root: Node) -> bool:
    """The root names template 1500 (DCMR) or has a CID 7021 title (PS3.3 C.17.3)."""
    return _template(root) == ("DCMR", "1500") or (
        root.concept is not None and root.concept[:2] in CID_7021
    )


def _template(root: Node) -> tuple[str, str] | None:
    items = sequence(root.ds, "ContentTemplateSequence")
    if not items:
        return None
    return (text(items[0], "MappingResource") or "", text(items[0], "TemplateIdentifier") or "")


def check_tid1500(root: Node) -> list[Finding]:
    """All TID 1500 checks for a document that is (or claims to be) a measurement report."""
    findings: list[Finding] = []
    if _template(root) != ("DCMR", "1500"):
        findings.append(_f(Severity.ERROR, root,
                           "a CID 7021 titled report must identify its template: Content "
                           "Template Sequence (DCMR, 1500) (PS3.3 C.17.3, Type 1C)",
                           "/ContentTemplateSequence(0040,a504)"))
    if root.concept is None or root.concept[:2] not in CID_7021:
        title = "none" if root.concept is None else f"({','.join(root.concept)})"
        findings.append(_f(Severity.ERROR, root,
                           f"document title {title} is not in CID 7021 Measurement Report "
                           "Document Titles (PS3.16 TID 1500 row 1)",
                           "/ConceptNameCodeSequence(0040,a043)"))
    findings.extend(_check_rows(root))
    for node in root.children:
        if node.concept is not None and node.concept[:2] == _MEASUREMENTS:
            for group in node.children:
                if group.concept is not None and group.concept[:2] == _GROUP:
                    findings.extend(_check_group(group))
    return findings


def _rank(node: Node) -> tuple[int, str, str] | None:
    if node.concept is not None and node.concept[:2] in _ROWS:
        return _ROWS[node.concept[:2]]
    if node.relationship == "HAS OBS CONTEXT":
        return (3, "observation context (TID 1001)", "HAS OBS CONTEXT")
    return None


def _check_rows(root: Node) -> list[Finding]:
    """PS3.16 TID 1500 rows 2-6: present, in template order, with their relationships."""
    findings: list[Finding] = []
    seen: dict[int, str] = {}
    highest: tuple[int, str] = (0, "")
    for node in root.children:
        rank = _rank(node)
        if rank is None:
            continue
        row, name, relationship = rank
        if node.relationship != relationship:
            findings.append(_f(Severity.ERROR, node,
                               f"{name} must be related by {relationship}, not "
                               f"{node.relationship} (PS3.16 TID 1500 row {row})",
                               "/RelationshipType(0040,a010)"))
        if row < highest[0]:
            findings.append(_f(Severity.ERROR, node,
                               f"TID 1500 rows out of order: {name} (row {row}) comes after "
                               f"{highest[1]} (row {highest[0]}) (PS3.16 TID 1500)"))
        else:
            highest = (row, name)
        seen.setdefault(row, node.id)
        if row == 4 and node.concept is not None:
            findings.extend(_check_procedure(node))
    for row, name in ((2, "Language of Content Item and Descendants (TID 1204)"),
                      (3, "observation context (TID 1001)"), (4, "Procedure reported"),
                      (6, "Imaging Measurements or Qualitative Evaluations")):
        if row not in seen:
            findings.append(_f(Severity.ERROR, root,
                               f"TID 1500 row {row} is missing: {name} (PS3.16 TID 1500)"))
    return findings


def _check_procedure(node: Node) -> list[Finding]:
    """TID 1500 row 4 takes its value from CID 100 (a defined group: info only)."""
    items = sequence(node.ds, "ConceptCodeSequence") or []
    if not items:
        return []
    value = (text(items[0], "CodeValue") or "", text(items[0], "CodingSchemeDesignator") or "")
    if value in CID_100:
        return []
    meaning = text(items[0], "CodeMeaning") or ""
    return [_f(Severity.INFO, node,
               f"Procedure reported ({value[0]},{value[1]},\"{meaning}\") is not in CID 100 "
               "(PS3.16 TID 1500 row 4); pixelmed reports this as an error",
               "/ConceptCodeSequence(0040,a168)")]


def _check_group(group: Node) -> list[Finding]:
    """PS3.16 TID 1501 rows 2-3 (tracking), row 3b (Finding) and TID 300 units (UCUM) of
    its measurements."""
    findings: list[Finding] = []
    wanted = ((_TRACKING_ID, "TEXT", "Tracking Identifier (112039, DCM)", "row 2"),
              (_TRACKING_UID, "UIDREF", "Tracking Unique Identifier (112040, DCM)", "row 3"))
    for code, value_type, name, row in wanted:
        match = [c for c in group.children if c.concept is not None and c.concept[:2] == code]
        if not match:
            findings.append(_f(Severity.ERROR, group,
                               f"Measurement Group without {name} (PS3.16 TID 1501 {row})"))
        elif match[0].value_type != value_type or match[0].relationship != "HAS OBS CONTEXT":
            findings.append(_f(Severity.ERROR, match[0],
                               f"{name} must be HAS OBS CONTEXT {value_type} "
                               f"(PS3.16 TID 1501 {row})"))
    for child in group.children:
        if child.value_type == "NUM":
            findings.extend(_check_units(child))
        elif child.concept is not None and child.concept[:2] == _FINDING:
            findings.extend(_check_finding(child))
    return findings


def _check_finding(node: Node) -> list[Finding]:
    """Finding is ``CONTAINS CODE (121071, DCM)``: row 3b of TID 1501, TID 1410 and TID 1411
    alike.  Another relationship (dcmjs's CCC 2018 SRs wrote HAS CONCEPT MOD) breaks the
    template, but a reader still finds the item by its concept name: a warning."""
    if node.relationship == "CONTAINS":
        return []
    return [_f(Severity.WARNING, node,
               f"Finding (121071, DCM) must be related by CONTAINS, not {node.relationship} "
               "(PS3.16 TID 1501, TID 1410 and TID 1411 row 3b)",
               "/RelationshipType(0040,a010)")]


def _check_units(num: Node) -> list[Finding]:
    values = sequence(num.ds, "MeasuredValueSequence") or []
    units = sequence(values[0], "MeasurementUnitsCodeSequence") if values else None
    if not units:
        return []
    scheme = text(units[0], "CodingSchemeDesignator") or ""
    if scheme == "UCUM":
        return []
    return [_f(Severity.ERROR, num,
               f"measurement units use scheme {scheme or '(none)'}, not UCUM "
               "(PS3.16 TID 300 row 1, CID 7181)",
               "/MeasuredValueSequence(0040,a300)[1]/MeasurementUnitsCodeSequence(0040,08ea)[1]")]
