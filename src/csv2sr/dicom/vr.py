"""Value rules of PS3.5 section 6.2 (Table 6.2-1), one function per Value Representation.

Every ``check_*`` function takes ONE value as text and returns what is wrong with it, or
``None``; the caller splits a multi-valued element on the backslash first
(:func:`split_values`, PS3.5 6.4).  Every ``parse_*`` function returns the typed value or
raises :class:`VRError` with the same message.  The row checks
(:mod:`csv2sr.conversion.checks`) and the validator's value checks
(:mod:`csv2sr.validate.iod`, :mod:`csv2sr.validate.content`) use
these functions and no others, so a value one accepts the other accepts too.

Two rules go beyond the letter of the standard, each where real tools count differently:

* Lengths that Table 6.2-1 gives in characters (SH, LO, ST, LT and a PN component group)
  are held in bytes of the encoded character set as well.  The standard counts characters
  so that a multi-byte character set does not shorten a field (PS3.5 6.2, note on
  lengths), but dciodvfy and many readers count bytes: 64 characters ``é`` are 128 bytes of
  UTF-8, and dciodvfy reports "Length invalid for this VR = 128, expected <= 64".
* Digits are the ASCII digits 0-9 only (PS3.5 6.1.2.1, the Default Character Repertoire),
  whatever Python's ``int`` and ``float`` accept besides: ``1_000``, Arabic-Indic and
  full-width digits, surrounding tabs and newlines, ``inf`` and ``nan``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import struct
from collections.abc import Callable

__all__ = [
    "DICOM_ROOT",
    "FLOAT32_MAX",
    "INSTANCE_UIDS",
    "MAX_LENGTH",
    "SINGLE_VALUED",
    "VRError",
    "check_ae",
    "check_cs",
    "check_da",
    "check_ds",
    "check_dt",
    "check_fl",
    "check_instance_uid",
    "check_is",
    "check_pn",
    "check_text",
    "check_tm",
    "check_ui",
    "check_value",
    "encoded_size",
    "parse_decimal",
    "parse_ds",
    "parse_integer",
    "parse_is",
    "split_values",
]


class VRError(ValueError):
    """A value that breaks a rule of PS3.5 Table 6.2-1; the message says which."""


MAX_LENGTH: dict[str, int] = {
    "AE": 16, "AS": 4, "CS": 16, "DA": 8, "DS": 16, "DT": 26, "IS": 12, "LO": 64,
    "LT": 10240, "PN": 64, "SH": 16, "ST": 1024, "TM": 14, "UI": 64,
}
"""PS3.5 Table 6.2-1, "Length of Value": bytes for AE-UI, characters for LO, LT, PN (per
component group), SH and ST (held in bytes too, see the module docstring)."""

SINGLE_VALUED = frozenset({"LT", "ST", "UT", "UR"})
"""VRs whose value is never split on the backslash (PS3.5 6.4: their VM is always 1)."""

FLOAT32_MAX: float = struct.unpack("<f", b"\xff\xff\x7f\x7f")[0]
"""The largest finite IEEE 754 single (FL, PS3.5 Table 6.2-1), about 3.4028235e38."""

_DS = re.compile(r" *[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)? *")
_IS = re.compile(r" *[+-]?[0-9]+ *")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_UI = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*")
_CS = re.compile(r"[A-Z0-9 _]*")
_DA = re.compile(r"[0-9]{8}")
_TM = re.compile(r"([0-9]{2})(?:([0-9]{2})(?:([0-9]{2})(?:\.[0-9]{1,6})?)?)? *")
_DT = re.compile(
    r"([0-9]{4})(?:([0-9]{2})(?:([0-9]{2})(?:([0-9]{2})(?:([0-9]{2})(?:([0-9]{2})"
    r"(?:\.[0-9]{1,6})?)?)?)?)?)?(?:([+-])([0-9]{2})([0-9]{2}))? *"
)
_NOT_FINITE = frozenset({"inf", "infinity", "nan"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
"""Control characters: Unicode category Cc (C0, DEL and C1; PS3.5 6.1.3)."""
_TEXT_CONTROLS = frozenset("\t\n\f\r")
"""The format controls LT, ST and UT may hold besides ESC (PS3.5 6.1.3 Table 6.1-1)."""
_ESC = "\x1b"


def encoded_size(value: str, encoding: str = "utf-8") -> int:
    """Bytes of ``value`` in ``encoding`` (a Python codec; csv2sr writes UTF-8 or ASCII)."""
    return len(value.encode(encoding, errors="replace"))


def split_values(vr: str, value: str) -> list[str]:
    """The values of a multi-valued element (PS3.5 6.4: backslash-delimited)."""
    return [value] if vr in SINGLE_VALUED else value.split("\\")


# --- numbers ---------------------------------------------------------------------------

def _number_problem(value: str, max_length: int | None = None) -> str | None:
    if _DS.fullmatch(value) is None:
        word = value.strip(" ").lstrip("+-").lower()
        return "not a finite number" if word in _NOT_FINITE else "not a number"
    if max_length is not None and len(value) > max_length:
        return f"longer than the {max_length} characters a DS may hold"
    if not math.isfinite(float(value)):
        return "not a finite number"
    return None


def check_ds(value: str) -> str | None:
    """PS3.5 Table 6.2-1 DS (Decimal String): ``[+-]digits[.digits][E[+-]digits]``.

    ASCII digits only, leading and trailing spaces allowed, at most 16 bytes, and (csv2sr's
    rule, as every reader turns it into a float) finite.
    """
    return _number_problem(value, MAX_LENGTH["DS"])


def parse_ds(value: str) -> float:
    """The number of a valid DS (:func:`check_ds`); raises :class:`VRError`."""
    problem = check_ds(value)
    if problem is not None:
        raise VRError(problem)
    return float(value)


def parse_decimal(value: str) -> float:
    """A finite number spelt as a DS is (PS3.5 Table 6.2-1), without the 16-byte limit.

    For numbers that reach the SR as binary (FL coordinates), where no text length applies.
    """
    problem = _number_problem(value)
    if problem is not None:
        raise VRError(problem)
    return float(value)


def check_is(value: str) -> str | None:
    """PS3.5 Table 6.2-1 IS (Integer String): ``[+-]digits``, at most 12 bytes, in
    -2^31 .. 2^31-1; leading and trailing spaces allowed."""
    if len(value) > MAX_LENGTH["IS"]:
        return "longer than the 12 characters an IS may hold"
    if _IS.fullmatch(value) is None:
        return "not an integer"
    if not -(2**31) <= int(value) <= 2**31 - 1:
        return "outside the range -2^31 .. 2^31-1 of an IS"
    return None


def parse_is(value: str) -> int:
    """The integer of a valid IS (:func:`check_is`); raises :class:`VRError`."""
    problem = check_is(value)
    if problem is not None:
        raise VRError(problem)
    return int(value)


def parse_integer(value: str, low: int, high: int) -> int:
    """An integer ``[+-]digits`` (ASCII) in ``low .. high``; raises :class:`VRError`.

    The digit count is checked before ``int()`` runs, so a cell of thousands of digits is
    "out of range", never Python's "Exceeds the limit (4300 digits)".
    """
    if _INTEGER.fullmatch(value) is None:
        raise VRError("not an integer")
    sign = "-" if value.startswith("-") else ""
    digits = value.lstrip("+-").lstrip("0") or "0"
    widest = max(len(str(abs(low))), len(str(abs(high))))
    if len(digits) > widest or not low <= int(sign + digits) <= high:
        raise VRError(f"outside the range {low} .. {high}")
    return int(sign + digits)


def check_fl(number: float) -> str | None:
    """PS3.5 Table 6.2-1 FL: the value must be a finite IEEE 754 single once rounded.

    ``struct.pack`` (what pydicom and csv2sr's fast path write with) refuses a value beyond
    :data:`FLOAT32_MAX` plus half a unit; numpy would silently write infinity.
    """
    if not math.isfinite(number):
        return "not a finite number"
    try:
        struct.pack("<f", number)
    except OverflowError:
        return f"outside the range of a 32-bit float (FL, at most {FLOAT32_MAX:.8g})"
    return None


# --- identifiers, dates and times --------------------------------------------------------

def check_ui(value: str) -> str | None:
    """PS3.5 Table 6.2-1 UI and section 9.1: dot-separated ASCII numbers without leading
    zeros, at most 64 bytes, an OID (ISO/IEC 9834-1, ITU-T X.660: the root arc is 0, 1 or
    2, the arc below 0 or 1 at most 39, and not only zeros).

    The arcs below the root must be ones that exist (X.660 Annex A, as dciodvfy checks
    them, :data:`ROOT_ARCS`): ``1.0``-``1.3`` (ISO standard, registration authority, member
    body, identified organization), ``2.16`` (country) and ``2.25`` (UUID), ``0.2``-``0.5``
    and ``0.0.1``/``0.0.2`` (ITU-T), each with at least one arc below it.  dciodvfy refuses
    ``1.2``, ``1.4.5``, ``2.1.5`` and ``0.0.1`` as UIDs of "non-existent" arcs.
    """
    if len(value) > MAX_LENGTH["UI"]:
        return "not a valid UID (longer than 64 characters)"
    if _UI.fullmatch(value) is None:
        return "not a valid UID (digits and dots, no leading zeros, at most 64 characters)"
    arcs = value.split(".")
    if arcs[0] not in ("0", "1", "2"):
        return "not a valid UID (its root arc must be 0, 1 or 2, ITU-T X.660)"
    if len(arcs) > 1 and arcs[0] != "2" and (len(arcs[1]) > 2 or int(arcs[1]) > 39):
        return "not a valid UID (the arc below root 0 or 1 is at most 39, ITU-T X.660)"
    if set(arcs) == {"0"}:
        return "not a valid UID (only zero components)"
    if not _registered(arcs):
        return ("not a valid UID (its root is not an existing OID arc: 1.0-1.3, 2.16, 2.25, "
                "0.2-0.5, 0.0.1-0.0.2, each with an arc below it)")
    return None


ROOT_ARCS: dict[tuple[str, ...], int] = {
    **{("1", str(arc)): 3 for arc in range(4)},
    ("2", "16"): 3,
    ("2", "25"): 3,
    **{("0", str(arc)): 3 for arc in range(2, 6)},
    ("0", "0", "1"): 4,
    ("0", "0", "2"): 4,
}
"""The OID arcs a UID may start with -> the fewest components a UID under it has (the arcs
dciodvfy knows; X.660 Annex A)."""


def _registered(arcs: list[str]) -> bool:
    for prefix, fewest in ROOT_ARCS.items():
        if tuple(arcs[: len(prefix)]) == prefix:
            return len(arcs) >= fewest
    return False


DICOM_ROOT = "1.2.840.10008"
"""The UID root of items the standard defines (PS3.5 9.1, Annex A)."""
INSTANCE_UIDS = frozenset({
    "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "ReferencedSOPInstanceUID",
    "MediaStorageSOPInstanceUID", "FrameOfReferenceUID",
})
"""Attributes whose UID names an instance made by an application, never the standard."""


def check_instance_uid(value: str) -> str | None:
    """A UID that names a study, series, image or other instance (PS3.5 9.1): a valid UID
    (:func:`check_ui`) outside the root 1.2.840.10008, which "shall not be used for
    privately defined items (such as an Image Instance)"."""
    problem = check_ui(value)
    if problem is None and value.startswith(DICOM_ROOT):
        # ``1.2.840.100081...`` is another organisation's root, but dciodvfy takes any UID
        # whose text starts with the DICOM root for a standard one: refused too.
        return (f"a UID starting with the DICOM root {DICOM_ROOT} names a standard item, "
                "not an instance")
    return problem


def check_cs(value: str) -> str | None:
    """PS3.5 Table 6.2-1 CS: upper case letters, digits, space and underscore; 16 bytes."""
    if len(value) > MAX_LENGTH["CS"]:
        return "longer than 16 bytes"
    if _CS.fullmatch(value) is None:
        return "only upper case letters, digits, space and underscore are allowed"
    return None


def check_ae(value: str) -> str | None:
    """PS3.5 Table 6.2-1 AE: at most 16 bytes, no backslash, no control characters."""
    if len(value) > MAX_LENGTH["AE"]:
        return "longer than 16 bytes"
    return _characters(value, free_text=False, code_extensions=False)


def check_da(value: str) -> str | None:
    """PS3.5 Table 6.2-1 DA: ``YYYYMMDD`` in ASCII digits, a real calendar date."""
    if _DA.fullmatch(value) is None:
        return "not a date YYYYMMDD"
    try:
        dt.date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return "not a calendar date"
    return None


def _time_problem(hours: str, minutes: str | None, seconds: str | None) -> str | None:
    if int(hours) > 23 or (minutes and int(minutes) > 59) or (seconds and int(seconds) > 60):
        return "not a time of day"
    return None


def check_tm(value: str) -> str | None:
    """PS3.5 Table 6.2-1 TM: ``HH[MM[SS[.F{1,6}]]]``, HH 00-23, MM 00-59, SS 00-60 (a leap
    second); at most 14 bytes."""
    if len(value) > MAX_LENGTH["TM"]:
        return "longer than 14 bytes"
    match = _TM.fullmatch(value)
    if match is None:
        return "not a time HH[MM[SS[.FFFFFF]]]"
    return _time_problem(*match.group(1, 2, 3))


def check_dt(value: str) -> str | None:
    """PS3.5 Table 6.2-1 DT: ``YYYY[MM[DD[HH[MM[SS[.F{1,6}]]]]]][&ZZXX]``, at most 26
    bytes; the offset from UTC is -1200 .. +1400."""
    match = _DT.fullmatch(value) if len(value) <= MAX_LENGTH["DT"] else None
    if match is None:
        return "not YYYY[MM[DD[HH[MM[SS[.FFFFFF]]]]]][&ZZXX]"
    year, month, day, hours, minutes, seconds, sign, zz, xx = match.groups()
    try:
        dt.date(int(year), int(month or 1), int(day or 1))
    except ValueError:
        return "not a calendar date"
    if hours is not None:
        problem = _time_problem(hours, minutes, seconds)
        if problem:
            return problem
    if sign is not None:
        offset = int(zz) * 100 + int(xx)
        if int(xx) > 59 or offset > (1400 if sign == "+" else 1200):
            return "not an offset from UTC -1200 .. +1400"
    return None


# --- text ----------------------------------------------------------------------------------

_TEXT_LIMITS: dict[str, int | None] = {
    "SH": 16, "LO": 64, "ST": 1024, "LT": 10240, "UC": None, "UT": None,
}
"""Characters per value (PS3.5 Table 6.2-1); UC and UT are limited only by the length field."""


def _characters(value: str, *, free_text: bool, code_extensions: bool) -> str | None:
    """The repertoire rules of PS3.5 6.1.3 and Table 6.2-1 for one text value.

    No backslash outside LT, ST and UT (it separates values, PS3.5 6.4); no control
    character except ESC where code extensions are in use (ISO 2022, PS3.5 6.1.2.5) and
    TAB, LF, FF and CR in LT, ST and UT.
    """
    if not free_text and "\\" in value:
        return "contains a backslash, which separates values (PS3.5 6.4)"
    for match in _CONTROL.finditer(value):
        char = match.group()
        if (free_text and char in _TEXT_CONTROLS) or (code_extensions and char == _ESC):
            continue
        return f"contains the control character U+{ord(char):04X}"
    return None


def check_text(
    vr: str, value: str, *, encoding: str = "utf-8", code_extensions: bool = False
) -> str | None:
    """PS3.5 Table 6.2-1 SH, LO, ST, LT, UC, UT: length (characters and encoded bytes) and
    repertoire (:func:`_characters`).  ``encoding`` is the Python codec of the data set's
    Specific Character Set (csv2sr writes ASCII or UTF-8, ISO_IR 192)."""
    limit = _TEXT_LIMITS[vr]
    if limit is not None:
        if len(value) > limit:
            return f"longer than the {limit} characters {_article(vr)} {vr} may hold"
        size = encoded_size(value, encoding)
        if size > limit:
            return f"{size} bytes once encoded, more than the {limit} {_article(vr)} {vr} may hold"
    return _characters(value, free_text=vr in SINGLE_VALUED, code_extensions=code_extensions)


def _article(vr: str) -> str:
    return "an" if vr[0] in "AEFHILMNORSX" else "a"


def check_pn(value: str, *, encoding: str = "utf-8", code_extensions: bool = False) -> str | None:
    """PS3.5 6.2.1 and Table 6.2-1 PN: one person name value.

    At most 3 component groups (``=``), each of at most 5 components (``^``) and at most
    64 characters (and bytes once encoded); no backslash and no control character but ESC
    with code extensions.  A trailing ``^`` that csv2sr writes after a family name counts.
    """
    problem = _characters(value, free_text=False, code_extensions=code_extensions)
    if problem is not None:
        return problem
    groups = value.split("=")
    if len(groups) > 3:
        return "more than 3 component groups"
    for group in groups:
        if group.count("^") > 4:
            return "more than 5 components in a component group"
        if len(group) > MAX_LENGTH["PN"]:
            return "a component group is longer than 64 characters"
        if encoded_size(group, encoding) > MAX_LENGTH["PN"]:
            return "a component group is longer than 64 bytes once encoded"
    return None


_BY_VR: dict[str, Callable[[str], str | None]] = {
    "AE": check_ae, "CS": check_cs, "DA": check_da, "DS": check_ds, "DT": check_dt,
    "IS": check_is, "TM": check_tm, "UI": check_ui,
}


def check_value(
    vr: str, value: str, *, encoding: str = "utf-8", code_extensions: bool = False
) -> str | None:
    """The rule of ``vr`` for one value (already split, see :func:`split_values`).

    VRs without a rule here (binary VRs, AS, UR, ...) give ``None``.
    """
    if vr == "PN":
        return check_pn(value, encoding=encoding, code_extensions=code_extensions)
    if vr in _TEXT_LIMITS:
        return check_text(vr, value, encoding=encoding, code_extensions=code_extensions)
    checker = _BY_VR.get(vr)
    return checker(value) if checker is not None else None
