"""Check every row of an annotation table before anything is built.

Rows come from the one reader of the table (:mod:`csv2sr.conversion.read`).  The value
rules are those of PS3.5 (:mod:`csv2sr.dicom.vr`), the same functions the validator checks
SR values with: ``length`` reaches the SR exactly as written, and ``StudyTime`` keeps its
characters until :func:`repair_study_time` restores the leading zeros a spreadsheet
removed.  A row breaking any rule becomes a :class:`RowError` naming the file, the line,
the column and the value; the other rows go on.  A checked row is an :class:`Annotation`.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pydicom.uid import CTImageStorage

from csv2sr.conversion.read import InputFileError, Record, RowProblem, read_table
from csv2sr.dicom import vr
from csv2sr.dicom.codes import image_modality
from csv2sr.profiles import Profile

__all__ = [
    "Annotation",
    "InputFileError",
    "RowError",
    "RowProblem",
    "check_row",
    "read_rows",
    "repair_study_time",
]

log = logging.getLogger(__name__)

YEARS = (1000, 2999)
"""The years a date may have.  PS3.5 allows 0000-9999, but dciodvfy refuses a DA whose
year does not start with 1 or 2 ("Character invalid for this VR"), and every accepted row
must give an SR that dciodvfy accepts."""
UNIX_TIME_MAX = 32503679999
"""2999-12-31T23:59:59Z: the last Content Date/Time within :data:`YEARS`."""

_UID_COLUMNS = ("StudyInstanceUID", "seriesUID", "instanceUID")
_POINT_COLUMNS = ("start_x", "start_y", "end_x", "end_y")
_RADIOLOGIST_STATUS = {"radiologist": True, "not_radiologist": False}
_TM_CSV = re.compile(r"([0-9]{1,6})(?:\.([0-9]{1,6}))?")
_PN_DELIMITERS = ("^", "=")

T = TypeVar("T")


@dataclass(frozen=True)
class RowError:
    """A rejected row: where it is, every problem found in it, and its cells as written."""

    path: Path
    line: int
    problems: tuple[RowProblem, ...]
    cells: dict[str, str]
    """The cells the record has, by column: a short row has fewer (never ``nan``)."""

    def messages(self) -> list[str]:
        """``file:line: column: what is wrong (value)``, one per problem, one line each."""
        return [f"{self.path}:{self.line}: {p}" for p in self.problems]

    @property
    def reason(self) -> str:
        """All problems of the row in one line, for ``rejected.csv``."""
        return "; ".join(str(p) for p in self.problems)


@dataclass(frozen=True)
class Annotation:
    """One checked row: every value an SR needs, already valid."""

    line: int
    order: int
    anatomy: str
    patient_id: str
    study_uid: str
    series_uid: str
    instance_uid: str
    sop_class_uid: str
    length: str
    """As written in the CSV: a valid DS of at most 16 characters."""
    points: tuple[float, float, float, float]
    """start_x, start_y, end_x, end_y in image pixels (x = column, y = row)."""
    annotator: str
    radiologist: bool
    annotation_id: str
    date_unix: int
    study_date: str
    study_time: str
    """Repaired DICOM TM, or empty."""
    cells: dict[str, str] = field(compare=False, repr=False)

    @property
    def content_datetime(self) -> dt.datetime:
        """When the line was saved, in UTC (Content Date/Time, PS3.3 C.17.1)."""
        return dt.datetime.fromtimestamp(self.date_unix, tz=dt.timezone.utc)


# --- the value rules of one row ------------------------------------------------------------

def repair_study_time(value: str) -> str:
    """Restore a TM whose leading zeros a spreadsheet dropped: ``93309.25`` -> ``093309.25``.

    Empty stays empty; spaces around the value are padding.  Raises ``ValueError`` when the
    value cannot be a time of day (PS3.5 Table 6.2-1, TM: HHMMSS.FFFFFF, ASCII digits).
    """
    text = value.strip(" ")
    if not text:
        return ""
    match = _TM_CSV.fullmatch(text)
    if match is None:
        raise ValueError("not a time HHMMSS[.FFFFFF] even with leading zeros restored")
    whole = match.group(1).zfill(6)
    repaired = whole if match.group(2) is None else f"{whole}.{match.group(2)}"
    if vr.check_tm(repaired) is not None:
        raise ValueError(f"not a time of day once padded to {whole}")
    return repaired


def _order(value: str) -> int:
    """Instance Number (PS3.3 C.17.2, IS) and the file name: a positive IS."""
    number = vr.parse_is(value)
    if number < 1:
        raise vr.VRError("must be a positive integer")
    return number


def _uid(value: str) -> str:
    if not value:
        raise vr.VRError("empty")
    problem = vr.check_ui(value)
    if problem is not None:
        raise vr.VRError(problem)
    return value


def _instance_uid(value: str) -> str:
    """Study, series and image UIDs: instances, so never under the DICOM root (PS3.5 9.1)."""
    problem = vr.check_instance_uid(_uid(value))
    if problem is not None:
        raise vr.VRError(problem)
    return value


def _sop_class(value: str) -> str:
    """The annotated image's SOP Class (empty: CT Image Storage); it names the modality."""
    uid = _uid(value or CTImageStorage)
    if image_modality(uid) is None:
        raise vr.VRError("not an image storage SOP class with a known modality (PS3.4 B.5)")
    return uid


def _length(value: str) -> str:
    """TID 300 Numeric Value (DS): kept as written, less its padding spaces; above 0."""
    text = value.strip(" ")
    if not text:
        raise vr.VRError("empty")
    if vr.parse_ds(value) <= 0:
        raise vr.VRError("must be greater than 0")
    return text


def _point(value: str) -> float:
    """A SCOORD GraphicData value (FL, PS3.3 C.18.6.1.2): a pixel position, 0 or more."""
    if not value.strip(" "):
        raise vr.VRError("empty")
    number = vr.parse_decimal(value)
    if number < 0:
        raise vr.VRError("negative coordinate")
    problem = vr.check_fl(number)
    if problem is not None:
        raise vr.VRError(problem)
    return number


def _text(value: str, rule: str) -> str:
    """An identifier or name cell: not empty, no padding spaces (DICOM drops them, PS3.5
    6.2), then the PS3.5 rule ``LO`` (64 characters, no backslash, no control
    character) or ``PN`` (a person-name component: no ``^`` or ``=`` either)."""
    if not value.strip():
        raise vr.VRError("empty")
    if value != value.strip(" "):
        raise vr.VRError("leading or trailing spaces (DICOM does not keep them)")
    problem = vr.check_text("LO", value)
    if problem is None and rule == "PN":
        if any(d in value for d in _PN_DELIMITERS):
            raise vr.VRError("'^' and '=' separate the parts of a person name (PS3.5 6.2.1)")
        problem = vr.check_pn(f"{value}^")
        if problem is not None:
            problem = f"{problem} with the '^' csv2sr writes after it (Person Name)"
    if problem is not None:
        raise vr.VRError(problem)
    return value


def _patient_id(value: str) -> str:
    """Patient ID (LO) and Patient's Name (PN, the same value as in TCIA's images)."""
    _text(value, "LO")
    problem = vr.check_pn(value)
    if problem is None and any(d in value for d in _PN_DELIMITERS):
        problem = "'^' and '=' would split the Patient's Name made from it (PS3.5 6.2.1)"
    if problem is not None:
        raise vr.VRError(problem)
    return value


def _annotator(value: str) -> str:
    """Person Observer Name ``<annotator>^`` (PN, TID 1003 row 1) and Login Name (TEXT)."""
    return _text(value, "PN")


def _annotation_id(value: str) -> str:
    """Tracking Identifier (TID 1501 row 2, TEXT): held to the LO rule of an identifier."""
    return _text(value, "LO")


def _unix_time(value: str) -> int:
    """Content Date/Time (PS3.3 C.17.2): seconds since 1970-01-01T00:00:00Z, up to
    2999-12-31T23:59:59Z (:data:`YEARS`).  Earlier times are refused: the column records
    when a line was saved, and Python's calendar (on Windows) cannot give them."""
    text = value.strip(" ")
    if not text:
        raise vr.VRError("empty")
    try:
        return vr.parse_integer(text, 0, UNIX_TIME_MAX)
    except vr.VRError as exc:
        if "outside" in str(exc):
            raise vr.VRError(
                f"outside 1970-01-01 .. 2999-12-31 (0 .. {UNIX_TIME_MAX} seconds)"
            ) from None
        raise


def _study_date(value: str) -> str:
    """Study Date (PS3.3 C.7.2.1, DA, Type 2): empty is allowed and written empty."""
    problem = vr.check_da(value) if value else None
    if problem is None and value and not YEARS[0] <= int(value[:4]) <= YEARS[1]:
        problem = f"a year outside {YEARS[0]} .. {YEARS[1]} (dciodvfy refuses it)"
    if problem is not None:
        raise vr.VRError(problem)
    return value


def _anatomy(profile: Profile) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in profile.anatomy:
            raise vr.VRError(f"unknown anatomy; expected one of {', '.join(profile.anatomy)}")
        return value
    return check


def _radiologist(value: str) -> bool:
    if value not in _RADIOLOGIST_STATUS:
        raise vr.VRError("expected 'radiologist' or 'not_radiologist'")
    return _RADIOLOGIST_STATUS[value]


def _study_time(value: str) -> str:
    """Study Time (PS3.3 C.7.2.1, TM, Type 2), repaired; no leap second: PS3.5 allows
    second 60, dciodvfy refuses it."""
    try:
        repaired = repair_study_time(value)
    except ValueError as exc:
        raise vr.VRError(str(exc)) from None
    if repaired[4:6] == "60":
        raise vr.VRError("second 60 (a leap second, which dciodvfy refuses)")
    return repaired


def check_row(
    cells: dict[str, str], *, path: Path, line: int, profile: Profile
) -> Annotation | RowError:
    """Check one row against every rule; return the :class:`Annotation` or a :class:`RowError`.

    Every column is checked, so a row with several defects lists them all.  Duplicate
    identifiers across rows are checked by :func:`read_rows`, which sees them all.
    """
    problems: list[RowProblem] = []

    def get(column: str, parse: Callable[[str], T], default: T) -> T:
        value = cells.get(column, "")
        try:
            return parse(value)
        except vr.VRError as exc:
            problems.append(RowProblem(column, str(exc), value))
            return default

    order = get("order", _order, 0)
    anatomy = get("anatomy", _anatomy(profile), "")
    study_uid, series_uid, instance_uid = (get(c, _instance_uid, "") for c in _UID_COLUMNS)
    sop_class = get("SOPClassUID", _sop_class, "")
    patient_id = get("patientID", _patient_id, "")
    length = get("length", _length, "")
    x0, y0, x1, y1 = (get(c, _point, 0.0) for c in _POINT_COLUMNS)
    annotator = get("annotator", _annotator, "")
    radiologist = get("radiologist_status", _radiologist, False)
    annotation_id = get("_id", _annotation_id, "")
    date_unix = get("date_unix", _unix_time, 0)
    study_date = get("StudyDate", _study_date, "")
    study_time = get("StudyTime", _study_time, "")
    if problems:
        return RowError(path, line, tuple(_in_column_order(problems, cells)), cells)
    return Annotation(
        line=line, order=order, anatomy=anatomy, patient_id=patient_id,
        study_uid=study_uid, series_uid=series_uid, instance_uid=instance_uid,
        sop_class_uid=sop_class, length=length, points=(x0, y0, x1, y1),
        annotator=annotator, radiologist=radiologist, annotation_id=annotation_id,
        date_unix=date_unix, study_date=study_date, study_time=study_time, cells=cells,
    )


def _in_column_order(problems: list[RowProblem], cells: dict[str, str]) -> list[RowProblem]:
    """Problems in the order of the table's columns (the order a reader scans a row in)."""
    position = {column: i for i, column in enumerate(cells)}
    return sorted(problems, key=lambda p: position.get(p.column, len(position)))


def read_rows(path: Path, profile: Profile) -> Iterator[Annotation | RowError]:
    """Yield every data row of ``path`` as an :class:`Annotation` or a :class:`RowError`.

    Streams the table (memory stays flat however long it is).  Raises
    :class:`InputFileError` when the file as a whole is unusable (see :class:`Table`;
    also a header without data rows).  Rows with the wrong number of fields, cells that
    cannot be read, duplicate ``_id`` or duplicate ``order`` are rejected, never dropped.
    """
    seen_ids: dict[str, int] = {}
    seen_orders: dict[int, int] = {}
    rows = 0
    with read_table(path, profile.required) as table:
        width = len(table.header)
        for record in table:
            rows += 1
            yield _row(record, width, path, profile, seen_ids, seen_orders)
    if rows == 0:
        raise InputFileError(path, "header only: no data rows")


def _row(
    record: Record, width: int, path: Path, profile: Profile,
    seen_ids: dict[str, int], seen_orders: dict[int, int],
) -> Annotation | RowError:
    if record.problems:
        return RowError(path, record.line, record.problems, record.cells)
    count = len(record.cells) + len(record.extra)
    if count != width:
        # the extra cells are kept in the problem's value, so nothing written is lost
        value = ",".join(record.extra) if record.extra else str(count)
        problem = RowProblem("(row)", f"{count} fields where the header has {width}", value)
        return RowError(path, record.line, (problem,), record.cells)
    result = check_row(record.cells, path=path, line=record.line, profile=profile)
    if isinstance(result, RowError):
        return result
    return _check_unique(result, seen_ids, seen_orders, path)


def _check_unique(
    row: Annotation, seen_ids: dict[str, int], seen_orders: dict[int, int], path: Path
) -> Annotation | RowError:
    problems = []
    first = seen_ids.setdefault(row.annotation_id, row.line)
    if first != row.line:
        problems.append(RowProblem("_id", f"duplicate of line {first}", row.annotation_id))
    first = seen_orders.setdefault(row.order, row.line)
    if first != row.line:
        problems.append(RowProblem("order", f"duplicate of line {first}", str(row.order)))
    if problems:
        return RowError(path, row.line, tuple(problems), row.cells)
    return row
