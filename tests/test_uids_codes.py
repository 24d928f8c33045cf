"""dicom/uids.py and dicom/codes.py: deterministic valid UIDs; one code table, SNOMED CT <->
SNOMED-RT."""

from __future__ import annotations

import pytest
from pydicom.sr.codedict import codes

from csv2sr.dicom.codes import CODE_TABLE, Codes, code_key, from_srt, to_srt
from csv2sr.dicom.uids import derive_uid, is_valid_uid


def test_derived_uids_are_stable_valid_and_distinct() -> None:
    a = derive_uid("sop", "ccc2017", "x")
    assert a == derive_uid("sop", "ccc2017", "x")
    assert a != derive_uid("sop", "ccc2017", "y")
    assert a != derive_uid("series", "ccc2017", "x")
    assert a.startswith("2.25.") and is_valid_uid(a) and len(a) <= 44


@pytest.mark.parametrize(
    ("uid", "valid"),
    [
        ("1.2.840.10008.5.1.4.1.1.88.22", True),
        ("1.2.03", False),
        ("1.2.a", False),
        ("1..2", False),
        ("", False),
        ("1." + "1" * 63, False),
        ("0.1", False),  # ITU-T arc 0.1 does not exist (dciodvfy: "non-existent ITU-T arc")
        ("0.2.1", True),
        ("1.2", False),  # a member body arc with nothing below it
        ("2.25.1", True),
        ("2.1.5", False),
        ("1.2.٣", False),
    ],
)
def test_uid_rules(uid: str, valid: bool) -> None:
    assert is_valid_uid(uid) is valid


@pytest.mark.parametrize(
    ("sct", "srt_value"),
    [
        (Codes.LENGTH, "G-D7FE"),
        (Codes.FINDING_SITE, "G-C0E3"),
        (Codes.KIDNEY, "T-71000"),
        (Codes.OVARY, "T-87000"),
        (Codes.LUNG, "T-28000"),
        (Codes.LIVER, "T-62000"),
    ],
)
def test_srt_equivalents_of_2018(sct: object, srt_value: str) -> None:
    srt = to_srt(sct)  # type: ignore[arg-type]
    assert (srt.value, srt.scheme_designator) == (srt_value, "SRT")
    assert from_srt(srt) == sct
    assert code_key(srt) == code_key(sct)  # type: ignore[arg-type]


def test_codes_come_from_pydicom() -> None:
    assert codes.SCT.Kidney == Codes.KIDNEY
    assert Codes.LENGTH.value == "410668003"
    assert Codes.RADIOLOGIST.value == "66862007"
    assert to_srt(Codes.RADIOLOGIST) == Codes.RADIOLOGIST  # no SNOMED-RT equivalent


def test_code_table_has_both_modes() -> None:
    assert CODE_TABLE[("410668003", "SCT")] == "Length"
    assert CODE_TABLE[("G-D7FE", "SRT")] == "Length"
    assert CODE_TABLE[("25045-6", "LN")] == "CT unspecified body region"
    assert CODE_TABLE[("126000", "DCM")] == "Imaging Measurement Report"
