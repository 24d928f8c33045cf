"""Coded entries: complete triplets, known schemes, check digits, meanings.

PS3.3 8.8 (Code Sequence Macro: value, scheme designator and a non-empty meaning),
PS3.16 Table 8-1 (coding scheme designators; ``SRT`` retired in favour of ``SCT``), the
SNOMED CT identifier's Verhoeff check digit (SNOMED CT Technical Implementation Guide
6.7) and the LOINC mod 10 check digit (LOINC Users' Guide, Appendix C).

The Code Meaning text is not checked against any table: PS3.16 does not fix it (a writer
may say "millimeter" for ``mm`` or "Liver" for "liver"), so a different wording is no
defect (issue 13).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from pydicom import Dataset
from pydicom._uid_dict import UID_dictionary
from pydicom.sr import _concepts_dict

from csv2sr.dicom.paths import item_id_from_path
from csv2sr.validate.access import sequence, sequence_items, text
from csv2sr.validate.findings import Finding, Severity, Source

__all__ = ["KNOWN_SCHEMES", "check_codes", "loinc_valid", "verhoeff_valid"]

_REGISTERED_SCHEMES = frozenset(
    str(entry[4]) for entry in UID_dictionary.values()
    if entry[1] == "Coding Scheme" and entry[4]
)
"""Designators of the coding schemes registered with a UID (PS3.6 Table A-1, as in
pydicom's UID dictionary: RADELEMENT, UBERON, MA, ITIS_TSN, ...)."""

KNOWN_SCHEMES: frozenset[str] = frozenset(_concepts_dict.concepts) | _REGISTERED_SCHEMES | {
    "DCM", "SCT", "SRT", "SNM3", "LN", "UCUM", "RFC5646", "ISO3166_1", "ISO639_1",
    "ISO639_2", "ISO639_3", "ISO5218", "FMA", "RADLEX", "RADELEMENT", "NCIt", "UMLS", "I10",
    "I10P", "I9", "I9C", "ICD10", "ACR", "BI", "MDC", "NDC", "RXNORM", "MSH", "UBERON", "MA",
    "MGI", "NCBI", "NEU", "DCMUID", "HPC", "NCDR", "ITIS_TSN", "PUBCHEM_CID", "IBSI", "BARI",
    "C4", "C5", "CD2", "ISO_OID", "NYUMCCG", "POS", "RFC3066", "UPC", "DC",
}
"""Coding Scheme Designators of PS3.16 Table 8-1: those above, those pydicom has code
tables for, and those registered with a UID."""

_VERHOEFF_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6), (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8), (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2), (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4), (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_VERHOEFF_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2), (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0), (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5), (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)


def verhoeff_valid(number: str) -> bool:
    """True when the last digit of ``number`` is its Verhoeff check digit."""
    if not number.isdigit():
        return False
    check = 0
    for position, digit in enumerate(reversed(number)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[position % 8][int(digit)]]
    return check == 0


def loinc_check_digit(digits: str) -> int:
    """LOINC mod 10 check digit of the part before the hyphen (LOINC Users' Guide)."""
    reversed_digits = digits[::-1]
    odd = reversed_digits[0::2]  # positions 1, 3, 5 ... from the right
    even = reversed_digits[1::2]
    total = sum(int(d) for d in even + str(int(odd) * 2 if odd else 0))
    return (10 - total % 10) % 10


def loinc_valid(code: str) -> bool:
    """``NNNNN-C`` with a valid mod 10 check digit.

    Answer and part codes (``LA``/``LP``/``LG``/``LL`` prefixes) are checked for their
    form only: their check digits are not computed the same way.
    """
    if re.fullmatch(r"L[APGL][0-9]{1,7}-[0-9]", code):
        return True
    match = re.fullmatch(r"([0-9]{1,7})-([0-9])", code)
    return match is not None and loinc_check_digit(match.group(1)) == int(match.group(2))


def _code_items(ds: Dataset) -> Iterator[tuple[str, Dataset]]:
    """(path, item) of every item of every ``...CodeSequence`` in ``ds``, recursively."""
    for path, keyword, item in sequence_items(ds):
        if keyword.endswith("CodeSequence"):
            yield path, item


def check_codes(ds: Dataset, private_schemes: frozenset[str] = frozenset()) -> list[Finding]:
    """Every coded entry of the file (header and content tree)."""
    schemes = KNOWN_SCHEMES | private_schemes | _declared_schemes(ds)
    findings: list[Finding] = []
    for path, item in _code_items(ds):
        findings.extend(_check_code(path, item, schemes))
    return findings


def _declared_schemes(ds: Dataset) -> frozenset[str]:
    """Schemes named in the Coding Scheme Identification Sequence (PS3.3 C.12.1.1.4)."""
    return frozenset(
        text(item, "CodingSchemeDesignator") or ""
        for item in sequence(ds, "CodingSchemeIdentificationSequence") or []
    )


def _finding(severity: Severity, path: str, message: str) -> Finding:
    return Finding(severity, Source.CSV2SR, item_id_from_path(path), path, message)


def _check_code(path: str, item: Dataset, schemes: frozenset[str]) -> list[Finding]:
    value = text(item, "CodeValue") or text(item, "LongCodeValue") or text(item, "URNCodeValue")
    scheme = text(item, "CodingSchemeDesignator")
    meaning = text(item, "CodeMeaning")
    findings: list[Finding] = []
    if not value:
        findings.append(_finding(Severity.ERROR, path + "/CodeValue(0008,0100)",
                                 "code without Code Value (PS3.3 8.8, Type 1C)"))
    if not scheme and "URNCodeValue" not in item:
        findings.append(_finding(Severity.ERROR, path + "/CodingSchemeDesignator(0008,0102)",
                                 "code without Coding Scheme Designator (PS3.3 8.8, Type 1C)"))
    if not meaning:
        findings.append(_finding(
            Severity.ERROR, path + "/CodeMeaning(0008,0104)",
            f"code ({value or ''},{scheme or ''}) has an empty Code Meaning (PS3.3 8.8, Type 1)"))
    if value and scheme:
        findings.extend(_check_scheme(path, value, scheme, schemes))
    return findings


def _check_scheme(path: str, value: str, scheme: str, schemes: frozenset[str]) -> list[Finding]:
    at = path + "/CodingSchemeDesignator(0008,0102)"
    if scheme == "SRT":
        return [_finding(Severity.WARNING, at,
                         f"code ({value},SRT): the SNOMED-RT designator SRT is deprecated; "
                         "use SCT (PS3.16 Table 8-1)")]
    if scheme == "SCT" and not (6 <= len(value) <= 18 and verhoeff_valid(value)):
        return [_finding(Severity.ERROR, path + "/CodeValue(0008,0100)",
                         f"SNOMED CT code {value} is not a valid SCTID: wrong Verhoeff check "
                         "digit or format (SNOMED CT TIG 6.7)")]
    if scheme == "LN" and not loinc_valid(value):
        return [_finding(Severity.ERROR, path + "/CodeValue(0008,0100)",
                         f"LOINC code {value} has a wrong mod 10 check digit or format "
                         "(LOINC Users' Guide, Appendix C)")]
    if scheme not in schemes and not scheme.startswith("99"):
        return [_finding(Severity.WARNING, at,
                         f"unknown Coding Scheme Designator {scheme}: neither in PS3.16 "
                         "Table 8-1 nor in the Coding Scheme Identification Sequence "
                         "(PS3.3 C.12.1.1.4) nor private (99...)")]
    return []
