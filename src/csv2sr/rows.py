"""Read an annotation CSV as text and check every row before anything is built.

Every cell is read as a string (no type inference): ``length`` reaches the SR exactly as
written, and ``StudyTime`` keeps its characters until :func:`repair_study_time` restores the
leading zeros a spreadsheet removed.  A row breaking any rule becomes a :class:`RowError`
naming the file, the line, the column and the value; the other rows go on.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import math
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from pydicom.uid import CTImageStorage

from csv2sr.errors import SourceError
from csv2sr.profiles import Profile
from csv2sr.uids import is_valid_uid

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

CHUNK_ROWS = 2000
"""Rows read per pandas chunk: memory stays flat however long the table is."""

_UID_COLUMNS = ("StudyInstanceUID", "seriesUID", "instanceUID")
_POINT_COLUMNS = ("start_x", "start_y", "end_x", "end_y")
_RADIOLOGIST_STATUS = {"radiologist": True, "not_radiologist": False}
_DA = re.compile(r"^\d{8}$")
_TM_CSV = re.compile(r"^(\d{1,6})(?:\.(\d{1,6}))?$")


class InputFileError(SourceError):
    """The file as a whole cannot be read as an annotation table."""


@dataclass(frozen=True)
class RowProblem:
    """One broken rule in one cell."""

    column: str
    message: str
    value: str


@dataclass(frozen=True)
class RowError:
    """A rejected row: where it is, every problem found in it, and its cells."""

    path: Path
    line: int
    problems: tuple[RowProblem, ...]
    cells: dict[str, str]

    def messages(self) -> list[str]:
        """``file:line: column: what is wrong (value)``, one per problem."""
        return [
            f"{self.path}:{self.line}: {p.column}: {p.message} ({p.value!r})"
            for p in self.problems
        ]

    @property
    def reason(self) -> str:
        """All problems of the row in one line, for ``rejected.csv``."""
        return "; ".join(f"{p.column}: {p.message} ({p.value!r})" for p in self.problems)


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


def repair_study_time(value: str) -> str:
    """Restore a TM whose leading zeros a spreadsheet dropped: ``93309.25`` -> ``093309.25``.

    Empty stays empty.  Raises ``ValueError`` when the value cannot be a time of day
    (PS3.5 Table 6.2-1, TM: HHMMSS.FFFFFF).
    """
    text = value.strip()
    if not text:
        return ""
    match = _TM_CSV.match(text)
    if match is None:
        raise ValueError("not a time HHMMSS[.FFFFFF] even with leading zeros restored")
    whole = match.group(1).zfill(6)
    hours, minutes, seconds = int(whole[:2]), int(whole[2:4]), int(whole[4:])
    if hours > 23 or minutes > 59 or seconds > 60:
        raise ValueError(f"not a time of day once padded to {whole}")
    return whole if match.group(2) is None else f"{whole}.{match.group(2)}"


def _check_ds(value: str) -> str | None:
    """PS3.5 DS: at most 16 characters, a finite decimal. Returns a problem or None."""
    text = value.strip()
    if not text:
        return "empty"
    try:
        number = float(text)
    except ValueError:
        return "not a number"
    if not math.isfinite(number):
        return "not a finite number"
    if len(text) > 16:
        return "longer than the 16 characters a DS may hold"
    if number <= 0:
        return "must be greater than 0"
    return None


def _check_point(value: str) -> str | None:
    try:
        number = float(value)
    except ValueError:
        return "empty" if not value.strip() else "not a number"
    if not math.isfinite(number):
        return "not a finite number"
    if number < 0:
        return "negative coordinate"
    return None


def _check_uid(value: str) -> str | None:
    if not value:
        return "empty"
    if not is_valid_uid(value):
        return "not a valid UID (digits and dots, no leading zeros, at most 64 characters)"
    return None


def _check_date(value: str) -> str | None:
    if not value:
        return None  # Study Date is Type 2: empty is allowed and written empty
    if not _DA.match(value):
        return "not a date YYYYMMDD"
    try:
        dt.date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return "not a calendar date"
    return None


def _check_int(value: str, *, positive: bool) -> str | None:
    text = value.strip()
    if not text:
        return "empty"
    if not re.fullmatch(r"[+-]?\d+", text):
        return "not an integer"
    if positive and int(text) < 1:
        return "must be a positive integer"
    return None


def check_row(
    cells: dict[str, str], *, path: Path, line: int, profile: Profile
) -> Annotation | RowError:
    """Check one row against every rule; return the :class:`Annotation` or a :class:`RowError`.

    Duplicate identifiers across rows are checked by :func:`read_rows`, which sees them all.
    """
    problems: list[RowProblem] = []

    def bad(column: str, problem: str | None) -> None:
        if problem is not None:
            problems.append(RowProblem(column, problem, cells.get(column, "")))

    bad("order", _check_int(cells["order"], positive=True))
    if cells["anatomy"] not in profile.anatomy:
        bad("anatomy", f"unknown anatomy; expected one of {', '.join(profile.anatomy)}")
    for column in _UID_COLUMNS:
        bad(column, _check_uid(cells[column]))
    sop_class = cells.get("SOPClassUID", "") or CTImageStorage
    bad("SOPClassUID", _check_uid(sop_class))
    if not cells["patientID"].strip():
        bad("patientID", "empty")
    elif len(cells["patientID"]) > 64:
        bad("patientID", "longer than the 64 characters a Patient ID (LO) may hold")
    bad("length", _check_ds(cells["length"]))
    for column in _POINT_COLUMNS:
        bad(column, _check_point(cells[column]))
    for column in ("annotator", "_id"):
        if not cells[column].strip():
            bad(column, "empty")
        elif len(cells[column]) > 64:
            bad(column, "longer than 64 characters")
    if cells["radiologist_status"] not in _RADIOLOGIST_STATUS:
        bad("radiologist_status", "expected 'radiologist' or 'not_radiologist'")
    bad("date_unix", _check_int(cells["date_unix"], positive=False))
    bad("StudyDate", _check_date(cells["StudyDate"]))
    study_time = ""
    try:
        study_time = repair_study_time(cells["StudyTime"])
    except ValueError as exc:
        bad("StudyTime", str(exc))

    if problems:
        return RowError(path, line, tuple(problems), cells)
    x0, y0, x1, y1 = (float(cells[c]) for c in _POINT_COLUMNS)
    return Annotation(
        line=line,
        order=int(cells["order"]),
        anatomy=cells["anatomy"],
        patient_id=cells["patientID"],
        study_uid=cells["StudyInstanceUID"],
        series_uid=cells["seriesUID"],
        instance_uid=cells["instanceUID"],
        sop_class_uid=sop_class,
        length=cells["length"].strip(),
        points=(x0, y0, x1, y1),
        annotator=cells["annotator"],
        radiologist=_RADIOLOGIST_STATUS[cells["radiologist_status"]],
        annotation_id=cells["_id"],
        date_unix=int(cells["date_unix"]),
        study_date=cells["StudyDate"],
        study_time=study_time,
        cells=cells,
    )


def _sniff(path: Path) -> None:
    """Reject files that are not text tables before pandas sees them."""
    if not path.is_file():
        raise InputFileError(path, "no such file")
    with path.open("rb") as fh:
        head = fh.read(65536)
    if not head.strip():
        raise InputFileError(path, "the file is empty")
    if b"\x00" in head:
        raise InputFileError(path, "not a CSV file (binary content)")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut by the 64 KiB window
            raise InputFileError(path, f"not UTF-8 text (byte {exc.start})") from None


def _header(path: Path, profile: Profile) -> list[str]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        first = next(csv.reader(fh), [])
    header = [name.strip() for name in first]
    missing = [c for c in profile.required if c not in header]
    if missing:
        if len(header) < 2:
            raise InputFileError(path, "not a CSV file (no comma-separated header)")
        raise InputFileError(
            path, f"missing required column(s): {', '.join(missing)} (header line 1)"
        )
    duplicates = sorted({c for c in header if header.count(c) > 1})
    if duplicates:
        raise InputFileError(path, f"column(s) named twice: {', '.join(duplicates)}")
    return header


def _line_numbers(path: Path) -> Iterator[tuple[int, int]]:
    """(physical line, field count) of every record after the header, as csv sees them."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        next(reader, None)
        start = reader.line_num + 1
        for record in reader:
            if record:
                yield start, len(record)
            start = reader.line_num + 1


def read_rows(path: Path, profile: Profile) -> Iterator[Annotation | RowError]:
    """Yield every data row of ``path`` as an :class:`Annotation` or a :class:`RowError`.

    Streams the table in chunks of :data:`CHUNK_ROWS` rows.  Raises
    :class:`InputFileError` when the file as a whole is unusable (missing, empty, binary,
    missing columns, header only).  Rows with the wrong number of fields, duplicate ``_id``
    or duplicate ``order`` are rejected, never dropped.
    """
    _sniff(path)
    header = _header(path, profile)
    width = len(header)
    lines = _line_numbers(path)
    seen_ids: dict[str, int] = {}
    seen_orders: dict[str, int] = {}
    rows = 0
    reader = pd.read_csv(
        path,
        dtype=str,
        keep_default_na=False,
        na_filter=False,
        encoding="utf-8-sig",
        chunksize=CHUNK_ROWS,
        skip_blank_lines=True,
        on_bad_lines=_keep_bad_line(width),
        engine="python",
        skipinitialspace=False,
        index_col=False,
    )
    with reader:
        for chunk in _quiet_chunks(reader):
            chunk.columns = header
            for record in chunk.itertuples(index=False, name=None):
                line, count = next(lines)
                rows += 1
                values = zip(header, record, strict=False)
                cells = {name: ("" if v is None else str(v)) for name, v in values}
                if count != width:
                    problem = RowProblem(
                        "(row)", f"{count} fields where the header has {width}", str(count)
                    )
                    yield RowError(path, line, (problem,), cells)
                    continue
                result = check_row(cells, path=path, line=line, profile=profile)
                if isinstance(result, Annotation):
                    result = _check_unique(result, seen_ids, seen_orders, path)
                yield result
    if rows == 0:
        raise InputFileError(path, "header only: no data rows")


def _quiet_chunks(reader: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """pandas warns about ragged rows; they are reported as row errors instead."""
    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pd.errors.ParserWarning)
            chunk = next(reader, None)
        if chunk is None:
            return
        yield chunk


def _keep_bad_line(width: int):  # type: ignore[no-untyped-def]
    """pandas ``on_bad_lines`` hook: keep an over-long record (cut to the header's width).

    The row is then rejected by :func:`read_rows`, which knows its field count from the
    csv module's own pass; nothing is dropped.
    """

    def keep(fields: list[str]) -> list[str]:
        return fields[:width]

    return keep


def _check_unique(
    row: Annotation, seen_ids: dict[str, int], seen_orders: dict[str, int], path: Path
) -> Annotation | RowError:
    problems = []
    first = seen_ids.setdefault(row.annotation_id, row.line)
    if first != row.line:
        problems.append(RowProblem("_id", f"duplicate of line {first}", row.annotation_id))
    first = seen_orders.setdefault(str(row.order), row.line)
    if first != row.line:
        problems.append(RowProblem("order", f"duplicate of line {first}", str(row.order)))
    if problems:
        return RowError(path, row.line, tuple(problems), row.cells)
    return row
