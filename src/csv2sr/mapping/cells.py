"""Typed cell parsers: one per ``[cells]`` type, built on the value rules of
:mod:`csv2sr.dicom.vr` (PS3.5 Table 6.2-1), the functions the validator checks SR values
with, so that a cell one accepts the other accepts too.

Each parser takes the cell as written and its :class:`~csv2sr.mapping.spec.CellSpec` and
returns the typed value, or raises :class:`csv2sr.dicom.vr.VRError` saying what is wrong
(the row check adds the file, line, column and value).  ``DS`` cells are kept exactly as
written (less padding spaces); ``TM`` cells keep their characters until the spreadsheet
repair; coordinates become floats that must fit a 32-bit float (FL).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from csv2sr.dicom import vr
from csv2sr.mapping.spec import CellSpec

__all__ = [
    "PARSERS",
    "UNIX_TIME_MAX",
    "YEARS",
    "Parsed",
    "canonical",
    "float32_text",
    "parse_cell",
    "repair_study_time",
]

Parsed = str | int | float | tuple[float, ...]

YEARS = (1000, 2999)
"""The years a date may have.  PS3.5 allows 0000-9999, but dciodvfy refuses a DA whose
year does not start with 1 or 2 ("Character invalid for this VR"), and every accepted row
must give an SR that dciodvfy accepts."""
UNIX_TIME_MAX = 32503679999
"""2999-12-31T23:59:59Z: the last Content Date/Time within :data:`YEARS`."""

_TM_CSV = re.compile(r"([0-9]{1,6})(?:\.([0-9]{1,6}))?")
_PN_DELIMITERS = ("^", "=")
_SPLIT = re.compile(r"[\s,;]+")


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


def _range(number: float, cell: CellSpec, what: str) -> None:
    if cell.minimum is not None and number < cell.minimum:
        if cell.minimum == 0:
            raise vr.VRError(f"negative {what}")
        raise vr.VRError(f"below the minimum {cell.minimum:g}")
    if cell.maximum is not None and number > cell.maximum:
        raise vr.VRError(f"above the maximum {cell.maximum:g}")
    if cell.greater_than is not None and number <= cell.greater_than:
        raise vr.VRError(f"must be greater than {cell.greater_than:g}")


def _ui(value: str, cell: CellSpec) -> str:
    """A UID (PS3.5 Table 6.2-1 UI, section 9.1)."""
    if not value:
        raise vr.VRError("empty")
    problem = vr.check_ui(value)
    if problem is not None:
        raise vr.VRError(problem)
    return value


def _ds(value: str, cell: CellSpec) -> str:
    """A DS (TID 300 Numeric Value): kept as written, less its padding spaces."""
    text = value.strip(" ")
    if not text:
        raise vr.VRError("empty")
    _range(vr.parse_ds(value), cell, "value")
    return text


def _is(value: str, cell: CellSpec) -> int:
    """An IS (Instance Number, PS3.3 C.17.2, and the like)."""
    number = vr.parse_is(value)
    if cell.minimum == 1 and number < 1:
        raise vr.VRError("must be a positive integer")
    _range(number, cell, "integer")
    return number


def _da(value: str, cell: CellSpec) -> str:
    """A DA (Study Date, PS3.3 C.7.2.1), within :data:`YEARS`."""
    problem = vr.check_da(value)
    if problem is None and not YEARS[0] <= int(value[:4]) <= YEARS[1]:
        problem = f"a year outside {YEARS[0]} .. {YEARS[1]} (dciodvfy refuses it)"
    if problem is not None:
        raise vr.VRError(problem)
    return value


def _tm(value: str, cell: CellSpec) -> str:
    """A TM (Study Time, PS3.3 C.7.2.1), repaired when the profile says so; no leap
    second: PS3.5 allows second 60, dciodvfy refuses it."""
    if cell.repair == "leading_zeros":
        try:
            text = repair_study_time(value)
        except ValueError as exc:
            raise vr.VRError(str(exc)) from None
    else:
        text = value.strip(" ")
        problem = vr.check_tm(text) if text else None
        if problem is not None:
            raise vr.VRError(problem)
    if not text:
        if cell.optional:
            return ""  # spaces only: an empty time
        raise vr.VRError("empty")
    if text[4:6] == "60":
        raise vr.VRError("second 60 (a leap second, which dciodvfy refuses)")
    return text


def _dt(value: str, cell: CellSpec) -> str:
    """A DT ``YYYYMMDDHHMMSS`` (UTC), for Content Date/Time, within :data:`YEARS`."""
    text = value.strip(" ")
    problem = vr.check_dt(text)
    if problem is None and (len(text) < 14 or not text[:14].isdigit()):
        problem = "not a date and time YYYYMMDDHHMMSS"
    if problem is None and not YEARS[0] <= int(text[:4]) <= YEARS[1]:
        problem = f"a year outside {YEARS[0]} .. {YEARS[1]} (dciodvfy refuses it)"
    if problem is None and text[12:14] == "60":
        problem = "second 60 (a leap second, which dciodvfy refuses)"
    if problem is not None:
        raise vr.VRError(problem)
    return text


def _unix_time(value: str, cell: CellSpec) -> int:
    """Seconds since 1970-01-01T00:00:00Z, up to 2999-12-31T23:59:59Z (:data:`YEARS`).
    Earlier times are refused: such a column records when an annotation was saved, and
    Python's calendar (on Windows) cannot give them."""
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


def _enum(value: str, cell: CellSpec) -> str:
    if value not in cell.values:
        if len(cell.values) <= 2:
            raise vr.VRError("expected " + " or ".join(repr(v) for v in cell.values))
        raise vr.VRError(f"unknown {cell.column}; expected one of {', '.join(cell.values)}")
    return value


def _text(value: str, cell: CellSpec) -> str:
    """Free text: not empty, no padding spaces (DICOM drops them, PS3.5 6.2), then the
    rules of every VR the column lands in (:attr:`CellSpec.landing`): ``LO`` (64
    characters and bytes, no backslash, no control character; identifiers are held to it
    too), ``SH`` (16), ``PN`` (a whole Person Name, PS3.5 6.2.1: no ``^`` or ``=``),
    ``PN_PART`` (a part of a Person Name template: no ``^`` or ``=``), ``UT`` (TEXT)."""
    if not value.strip():
        raise vr.VRError("empty")
    if value != value.strip(" "):
        raise vr.VRError("leading or trailing spaces (DICOM does not keep them)")
    landing = set(cell.landing) or {"LO"}
    rule = "SH" if "SH" in landing else "LO" if landing - {"UT"} else "UT"
    problem = vr.check_text(rule, value)
    if problem is None and "PN_PART" in landing and any(d in value for d in _PN_DELIMITERS):
        problem = "'^' and '=' separate the parts of a person name (PS3.5 6.2.1)"
    if problem is None and "PN" in landing:
        problem = vr.check_pn(value)
        if problem is None and any(d in value for d in _PN_DELIMITERS):
            problem = "'^' and '=' would split the Person Name made from it (PS3.5 6.2.1)"
    if problem is not None:
        raise vr.VRError(problem)
    return value


def _coordinate(value: str, cell: CellSpec) -> float:
    """A SCOORD Graphic Data value (FL, PS3.3 C.18.6.1.2), or a size in pixels."""
    if not value.strip(" "):
        raise vr.VRError("empty")
    number = vr.parse_decimal(value)
    _range(number, cell, "coordinate")
    problem = vr.check_fl(number)
    if problem is not None:
        raise vr.VRError(problem)
    return number


def _points(value: str, cell: CellSpec) -> tuple[float, ...]:
    """A list of points: ``x1 y1 x2 y2 ...`` (spaces, commas or semicolons) or JSON
    ``[[x1, y1], [x2, y2], ...]``; an even number of coordinates, at least 2 points."""
    text = value.strip()
    if not text:
        raise vr.VRError("empty")
    if text.startswith("["):
        try:
            data = json.loads(text)
        except ValueError:
            raise vr.VRError("not a JSON list of [x, y] points") from None
        if not isinstance(data, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(
                isinstance(c, int | float) and not isinstance(c, bool) for c in p)
            for p in data
        ):
            raise vr.VRError("not a JSON list of [x, y] points")
        words = [repr(float(c)) for p in data for c in p]
    else:
        words = [w for w in _SPLIT.split(text) if w]
    if len(words) % 2:
        raise vr.VRError(f"{len(words)} numbers: not a whole number of x, y points")
    if len(words) < 4:
        raise vr.VRError("fewer than 2 points")
    numbers = []
    for word in words:
        number = vr.parse_decimal(word)
        _range(number, cell, "coordinate")
        problem = vr.check_fl(number)
        if problem is not None:
            raise vr.VRError(problem)
        numbers.append(number)
    return tuple(numbers)


def _as_written(value: str, cell: CellSpec) -> str:
    return value


PARSERS: dict[str, Callable[[str, CellSpec], Parsed]] = {
    "UI": _ui, "DS": _ds, "IS": _is, "DA": _da, "TM": _tm, "DT": _dt,
    "unix_time": _unix_time, "enum": _enum, "text": _text, "coordinate": _coordinate,
    "points": _points, "ignore": _as_written, "spreadsheet_day": _as_written,
}
"""Cell type -> parser (the ``type`` of a ``[cells]`` entry)."""

_EMPTY: dict[str, Parsed] = {"coordinate": 0.0, "IS": 0, "unix_time": 0, "points": ()}


def parse_cell(value: str, cell: CellSpec) -> Parsed:
    """The typed value of one cell; an empty cell of an optional column is its default
    (parsed) or empty (a TM of spaces only is empty too; any other cell of spaces is
    checked as written).  Raises :class:`csv2sr.dicom.vr.VRError`."""
    if cell.optional and not value:
        if cell.default:
            return PARSERS[cell.type](cell.default, cell)
        return _EMPTY.get(cell.type, "")
    return PARSERS[cell.type](value, cell)


def float32_text(value: float) -> str:
    """The shortest decimal that reads back as the same float32.  SCOORD Graphic Data
    (0070,0022) is FL (PS3.3 C.18.6.1.2): ``172.8353591`` stored as float32 prints
    ``172.83536``."""
    import numpy as np  # noqa: PLC0415  (numpy, lazily: the CLI starts without it)

    return str(np.format_float_positional(np.float32(value), unique=True, trim="-"))


def canonical(value: Parsed, cell: CellSpec) -> str:
    """A parsed value as UID-derivation text: coordinates as ``repr(float)``, lists of
    points joined by spaces, everything else as parsed (csv2sr.dicom.uids)."""
    if isinstance(value, tuple):
        return " ".join(repr(v) for v in value)
    if isinstance(value, float):
        return repr(value)
    return str(value)
