"""Measurements -> table rows: the generic columns and the ``ccc2017`` profile.

Every cell is text.  The ``generic`` table has one row per NUM and one per measurement
group without NUM, with the columns of :data:`GENERIC_COLUMNS` and the qualitative
evaluations; the ``ccc2017`` table has exactly the columns of the Crowds Cure
Cancer 2017 CSV (:data:`csv2sr.profiles.CCC2017`), so that a collection can be rebuilt from
its SRs.  Values absent from the SR are empty strings, never NaN or null.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from pydicom.sr.coding import Code

from csv2sr.dicom.codes import ANATOMY_CODES, Codes, code_key
from csv2sr.dicom.ohif import row_identifier
from csv2sr.export.model import CodedValue, Measurement, Problem, ProblemKind, Qualitative
from csv2sr.profiles import PROFILES, Profile, get_profile

__all__ = [
    "GENERIC_COLUMNS",
    "PROFILE_NAMES",
    "QUALITATIVE_PREFIX",
    "TableProfile",
    "float32_text",
    "qualitative_cells",
    "qualitative_column",
    "qualitative_nested",
    "spreadsheet_serial",
    "table_profile",
    "unix_time",
]

GENERIC_COLUMNS: tuple[str, ...] = (
    "file", "sop_instance_uid", "series_instance_uid", "study_instance_uid", "patient_id",
    "instance_number", "study_date", "study_time", "content_date", "content_time",
    "timezone_offset", "observer_name", "observer_login_name", "observer_role",
    "observer_role_meaning", "procedure_reported", "procedure_reported_meaning", "template",
    "group_item", "item", "tracking_identifier", "tracking_uid", "finding", "finding_meaning",
    "finding_site", "finding_site_meaning", "measurement", "measurement_meaning", "value",
    "unit", "coordinate_type", "graphic_type", "points", "referenced_sop_class_uid",
    "referenced_sop_instance_uid", "referenced_series_instance_uid",
    "referenced_frame_numbers", "frame_of_reference_uid", "row_type",
    "referenced_segment_number", "derivation", "derivation_meaning", "method",
    "method_meaning", "algorithm_name", "algorithm_version", "device_observer_uid",
    "device_observer_name",
)
"""The generic table's fixed columns: one row per NUM measurement and one per measurement
group without NUM (see docs/export.md, which documents every column).  The qualitative
evaluations follow as :func:`qualitative_columns` (CSV, Parquet) or nested (JSON lines)."""

QUALITATIVE_PREFIX = "qualitative_"


def qualitative_column(concept: CodedValue) -> str:
    """``qualitative_<SCHEME>_<value>`` for a qualitative evaluation's concept name (the
    code, not its meaning: meanings differ between writers)."""
    return f"{QUALITATIVE_PREFIX}{concept.scheme}_{concept.value}"


def qualitative_cells(evaluations: Iterable[Qualitative]) -> dict[str, str]:
    """The qualitative columns of a row: ``qualitative_<concept>`` = the coded value
    (``SCHEME:value``) or the text, ``..._meaning`` = the value's meaning; several
    evaluations of one concept are joined with `` | ``."""
    cells: dict[str, list[str]] = {}
    for evaluation in evaluations:
        column = qualitative_column(evaluation.concept)
        cells.setdefault(column, []).append(evaluation.cell())
        meaning = evaluation.code.meaning if evaluation.code is not None else evaluation.text
        cells.setdefault(column + "_meaning", []).append(meaning)
    return {column: " | ".join(values) for column, values in cells.items()}


def qualitative_nested(evaluations: Iterable[Qualitative]) -> list[dict[str, str]]:
    """The qualitative evaluations of a row, complete (the JSON lines ``qualitative``)."""
    return [
        {"item": q.item, "concept": q.concept.label(), "concept_meaning": q.concept.meaning,
         "value_type": q.value_type, "value": q.cell(),
         "value_meaning": q.code.meaning if q.code is not None else ""}
        for q in evaluations
    ]

PROFILE_NAMES: tuple[str, ...] = ("generic", *PROFILES)

SPREADSHEET_EPOCH = dt.date(1899, 12, 30)
"""Day 0 of spreadsheet serial dates (the CSV's ``date`` column)."""

_TM = re.compile(r"^(\d{2})(\d{2})?(\d{2})?(?:\.(\d{1,6}))?$")
_OFFSET = re.compile(r"^([+-])(\d{2})(\d{2})$")


class ExportValueError(ValueError):
    """A header value needed for a column is not a valid DICOM value."""


def float32_text(value: float) -> str:
    """The shortest decimal that reads back as the same float32.  SCOORD and SCOORD3D
    Graphic Data (0070,0022) are FL (PS3.3 C.18.6.1.2, C.18.9.1.2): ``172.8353591`` stored
    as float32 prints ``172.83536``."""
    return np.format_float_positional(np.float32(value), unique=True, trim="-")


def _points(m: Measurement) -> str:
    return " ".join(float32_text(v) for v in m.points)


def _label(code: CodedValue | None) -> str:
    return "" if code is None else code.label()


def _meaning(code: CodedValue | None) -> str:
    return "" if code is None else code.meaning


def generic_row(m: Measurement) -> list[str]:
    """The :data:`GENERIC_COLUMNS` cells of one measurement."""
    return [
        m.file, m.sop_instance_uid, m.series_instance_uid, m.study_instance_uid, m.patient_id,
        m.instance_number, m.study_date, m.study_time, m.content_date, m.content_time,
        m.timezone_offset, m.observer_name, m.observer_login_name, _label(m.observer_role),
        _meaning(m.observer_role), _label(m.procedure_reported), _meaning(m.procedure_reported),
        m.template, m.group_item, m.item, m.tracking_identifier, m.tracking_uid,
        _label(m.finding), _meaning(m.finding), _label(m.finding_site),
        _meaning(m.finding_site), m.measurement.label() if m.measurement.value else "",
        m.measurement.meaning, m.value,
        "" if m.unit is None else m.unit.value, m.coordinate_type, m.graphic_type, _points(m),
        m.referenced_sop_class_uid, m.referenced_sop_instance_uid,
        m.referenced_series_instance_uid, m.referenced_frame_numbers, m.frame_of_reference_uid,
        m.row_type, m.referenced_segment_number, _label(m.derivation), _meaning(m.derivation),
        _label(m.method), _meaning(m.method), m.algorithm_name, m.algorithm_version,
        m.device_observer_uid, m.device_observer_name,
    ]


# -- dates and times (PS3.5 Table 6.2-1: DA, TM; PS3.3 C.12.1.1.8 timezone offset) -------


def _date(value: str) -> dt.date:
    try:
        return dt.date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except ValueError:
        raise ExportValueError(f"Content Date {value!r} is not a DA YYYYMMDD") from None


def _time(value: str) -> dt.timedelta:
    match = _TM.match(value)
    if match is None:
        raise ExportValueError(f"Content Time {value!r} is not a TM HHMMSS[.FFFFFF]")
    hours, minutes, seconds, fraction = match.groups()
    return dt.timedelta(
        hours=int(hours), minutes=int(minutes or 0), seconds=int(seconds or 0),
        microseconds=int((fraction or "0").ljust(6, "0")),
    )


def _offset(value: str) -> dt.timedelta:
    if not value:
        return dt.timedelta(0)  # no Timezone Offset From UTC: read as UTC (documented)
    match = _OFFSET.match(value)
    if match is None:
        raise ExportValueError(f"Timezone Offset From UTC {value!r} is not +HHMM/-HHMM")
    sign, hours, minutes = match.groups()
    delta = dt.timedelta(hours=int(hours), minutes=int(minutes))
    return -delta if sign == "-" else delta


def unix_time(date: str, time: str, offset: str) -> str:
    """Content Date/Time (PS3.3 C.17.2) and its Timezone Offset From UTC -> Unix seconds,
    written as an integer when whole (the CSV's ``date_unix``)."""
    moment = dt.datetime.combine(_date(date), dt.time()) + _time(time) - _offset(offset)
    delta = moment - dt.datetime(1970, 1, 1)
    if delta.microseconds == 0:
        return str(delta.days * 86400 + delta.seconds)
    return f"{delta.total_seconds():.6f}".rstrip("0")


def spreadsheet_serial(unix_seconds: str) -> str:
    """The UTC day of a Unix time as a spreadsheet serial (days since 1899-12-30)."""
    day = dt.datetime.fromtimestamp(float(unix_seconds), tz=dt.timezone.utc).date()
    return str((day - SPREADSHEET_EPOCH).days)


# -- the ccc2017 profile ------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _key(value: str, scheme: str) -> tuple[str, str]:
    return code_key(Code(value, scheme, "-"))


def _identity(code: CodedValue | None) -> tuple[str, str] | None:
    return None if code is None else _key(code.value, code.scheme)


_RADIOLOGIST = code_key(Codes.RADIOLOGIST)
_LENGTH = code_key(Codes.LENGTH)


def _anatomy_of(profile: Profile) -> dict[tuple[str, str], str]:
    """Finding Site organ code (SCT identity) -> the profile's ``anatomy`` cell."""
    return {code_key(ANATOMY_CODES[organ]): cell for cell, organ in profile.anatomy.items()}


def _annotator(m: Measurement) -> str:
    """TID 1002 row 3 (login name, verbatim) or else row 2 (name, without the empty
    PN components csv2sr adds: ``name^`` -> ``name``)."""
    return m.observer_login_name or m.observer_name.rstrip("^")


@dataclass(frozen=True)
class TableProfile:
    """How measurements become rows of one table shape."""

    name: str
    columns: tuple[str, ...]
    row: Callable[[Measurement], tuple[list[str] | None, list[Problem]]]
    qualitative: bool = False
    """True when the table also carries the qualitative evaluations (generic)."""


def _generic(m: Measurement) -> tuple[list[str] | None, list[Problem]]:
    return generic_row(m), []


def _ccc2017_row(
    m: Measurement, profile: Profile, anatomy_of: dict[tuple[str, str], str]
) -> tuple[list[str] | None, list[Problem]]:
    """One CCC2017 CSV row (columns of :data:`csv2sr.profiles.CCC2017`) from a Length.

    The row is dropped (and the reason reported) when the measurement cannot be a line:
    not a Length in mm, or not a two-point POLYLINE.  Other missing values are reported
    and left empty.  ``_id`` is the Tracking Identifier without the Cornerstone3D prefix
    of ``convert --ohif`` (:func:`csv2sr.dicom.ohif.row_identifier`).
    """
    problems: list[Problem] = []

    def problem(message: str) -> None:
        problems.append(Problem(m.file, m.item, message, ProblemKind.UNRECOGNISED))

    if m.row_type == "group":
        problems.append(Problem(m.file, m.group_item, "measurement group without NUM: the "
                                "ccc2017 table has rows for Lengths only", ProblemKind.NOTE))
        return None, problems

    if _identity(m.measurement) != _LENGTH:
        problem(f"NUM '{m.measurement.meaning}' ({m.measurement.label()}) is not a Length: "
                "no ccc2017 row")
        return None, problems
    if not m.value:
        problem("the Length has no measured value: no ccc2017 row")
        return None, problems
    if m.unit is None or m.unit.value != "mm":
        problem(f"Length unit {m.unit.value if m.unit else 'missing'!r} is not mm: "
                "no ccc2017 row")
        return None, problems
    if m.coordinate_type != "SCOORD" or len(m.points) != 4:
        problem(f"the Length has no two-point SCOORD line ({m.coordinate_type or 'no SCOORD'} "
                f"{m.graphic_type} with {len(m.points)} values): no ccc2017 row")
        return None, problems
    anatomy = anatomy_of.get(_identity(m.finding_site) or ("", ""), "")
    if not anatomy:
        site = m.finding_site.label() if m.finding_site else "missing"
        problem(f"Finding Site {site} is none of the profile's organs: anatomy left empty")
    date_unix = date = ""
    try:
        date_unix = unix_time(m.content_date, m.content_time, m.timezone_offset)
        date = spreadsheet_serial(date_unix)
    except ExportValueError as exc:
        problem(f"{exc}: date_unix and date left empty")
    annotation_id = row_identifier(m.tracking_identifier)
    for column, value in (("order", m.instance_number), ("seriesUID",
                          m.referenced_series_instance_uid), ("_id", annotation_id)):
        if not value:
            problem(f"no value for {column} in the SR: left empty")
    role = _identity(m.observer_role)
    cells = {
        "order": m.instance_number,
        "anatomy": anatomy,
        "seriesUID": m.referenced_series_instance_uid,
        "patientID": m.patient_id,
        "instanceUID": m.referenced_sop_instance_uid,
        "length": m.value,
        "start_x": float32_text(m.points[0]),
        "start_y": float32_text(m.points[1]),
        "end_x": float32_text(m.points[2]),
        "end_y": float32_text(m.points[3]),
        "annotator": _annotator(m),
        "radiologist_status": "radiologist" if role == _RADIOLOGIST else "not_radiologist",
        "_id": annotation_id,
        "date_unix": date_unix,
        "date": date,
        "StudyInstanceUID": m.study_instance_uid,
        "StudyDate": m.study_date,
        "StudyTime": m.study_time,
        "SOPClassUID": m.referenced_sop_class_uid,
    }
    return [cells.get(column, "") for column in profile.columns], problems


def table_profile(name: str) -> TableProfile:
    """``generic`` or the name of a :mod:`csv2sr.profiles` profile (``ccc2017``)."""
    if name == "generic":
        return TableProfile("generic", GENERIC_COLUMNS, _generic, qualitative=True)
    profile = get_profile(name)
    anatomy_of = _anatomy_of(profile)

    def row(m: Measurement) -> tuple[list[str] | None, list[Problem]]:
        return _ccc2017_row(m, profile, anatomy_of)

    return TableProfile(profile.name, profile.columns, row)
