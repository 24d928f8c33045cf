"""Measurements -> table rows: the generic columns, or a profile's own columns.

Every cell is text.  The ``generic`` table has one row per NUM and one per measurement
group without NUM, with the columns of :data:`GENERIC_COLUMNS` and the qualitative
evaluations; a profile's table (``ccc2017``, or any profile file) has exactly the columns
of the table the profile reads, one row per table row (the profile's groups), made by the
inverse of its mapping (:mod:`csv2sr.mapping.inverse`), so that a collection can be rebuilt
from its SRs.  Values absent from the SR are empty strings, never NaN or null.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from pydicom.sr.coding import Code

from csv2sr.dicom.codes import code_key
from csv2sr.export.model import CodedValue, Measurement, Problem, ProblemKind, Qualitative
from csv2sr.mapping.inverse import Inverse, float32_text, spreadsheet_serial
from csv2sr.mapping.load import builtin_profiles, load_profile
from csv2sr.mapping.record import Concept, Geometry, Geometry3D, Group, ImageRef, Observer, Record
from csv2sr.mapping.record import Measurement as RecordMeasurement
from csv2sr.mapping.record import Qualitative as RecordQualitative
from csv2sr.mapping.spec import GroupSpec, Spec

if TYPE_CHECKING:
    from csv2sr.images.index import ImageIndex

__all__ = [
    "GENERIC_COLUMNS",
    "QUALITATIVE_PREFIX",
    "TableProfile",
    "float32_text",
    "profile_names",
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

def profile_names() -> tuple[str, ...]:
    """``generic`` and the built-in profiles (any profile file works too)."""
    return ("generic", *builtin_profiles())

_TM = re.compile(r"^(\d{2})(\d{2})?(\d{2})?(?:\.(\d{1,6}))?$")
_OFFSET = re.compile(r"^([+-])(\d{2})(\d{2})$")


class ExportValueError(ValueError):
    """A header value needed for a column is not a valid DICOM value."""


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
    written as an integer when whole (a ``unix_time`` cell)."""
    moment = dt.datetime.combine(_date(date), dt.time()) + _time(time) - _offset(offset)
    delta = moment - dt.datetime(1970, 1, 1)
    if delta.microseconds == 0:
        return str(delta.days * 86400 + delta.seconds)
    return f"{delta.total_seconds():.6f}".rstrip("0")


# -- a profile's own table (csv2sr.mapping.inverse) ---------------------------------------


@functools.lru_cache(maxsize=64)
def _key(value: str, scheme: str) -> tuple[str, str]:
    return code_key(Code(value, scheme, "-"))


def _identity(code: Concept) -> tuple[str, str]:
    return _key(code.value, code.scheme)


def _concept(code: CodedValue | None) -> Concept | None:
    return None if code is None else Concept(code.value, code.scheme, code.meaning)


@dataclass(frozen=True)
class TableProfile:
    """How the measurements of one file become rows of one table shape."""

    name: str
    columns: tuple[str, ...]
    rows: Callable[[tuple[Measurement, ...]], list[tuple[list[str] | None, list[Problem]]]]
    qualitative: bool = False
    """True when the table also carries the qualitative evaluations (generic)."""


def _generic(
    measurements: tuple[Measurement, ...]
) -> list[tuple[list[str] | None, list[Problem]]]:
    return [(generic_row(m), []) for m in measurements]


def _groups(measurements: tuple[Measurement, ...]) -> list[list[Measurement]]:
    """The rows of one file, by measurement group, in the order of the file."""
    groups: dict[str, list[Measurement]] = {}
    for m in measurements:
        groups.setdefault(m.group_item, []).append(m)
    return list(groups.values())


def _image(m: Measurement) -> ImageRef | None:
    """The referenced image, with its Referenced Frame Numbers (PS3.3 C.18.4)."""
    if not m.referenced_sop_instance_uid:
        return None
    frames = tuple(int(f) for f in m.referenced_frame_numbers.split() if f.isdigit())
    return ImageRef(m.referenced_sop_class_uid, m.referenced_sop_instance_uid,
                    m.referenced_series_instance_uid, frames)


def _geometry(m: Measurement) -> Geometry | Geometry3D | None:
    if not m.coordinate_type or not m.points:
        return None
    if m.coordinate_type == "SCOORD3D":  # PS3.3 C.18.9: patient mm in a Frame of Reference
        return Geometry3D(m.graphic_type, m.points, m.frame_of_reference_uid)
    if m.coordinate_type != "SCOORD":  # not image pixels: named so, never read as 2D
        return Geometry(f"{m.coordinate_type} {m.graphic_type}", m.points, None)
    return Geometry(m.graphic_type, m.points, _image(m))


def _planar(shape: Geometry | Geometry3D | None) -> Geometry | None:
    """A NUM's own SCOORD (TID 300 row 12 is 2D); an SCOORD3D there is named, never read
    as pixels."""
    if isinstance(shape, Geometry3D):
        return Geometry(f"SCOORD3D {shape.graphic_type}", shape.points, None)
    return shape


def _sr_group(rows: list[Measurement]) -> Group:
    """One measurement group as the reader gave it (TID 1501 or 1410)."""
    first = rows[0]
    template = first.template
    numbers = [m for m in rows if m.row_type == "measurement"]
    region = _geometry(first) if template in ("1410", "1411") else None
    regions: tuple[Geometry, ...] = ()
    if template == "1411" and isinstance(region, Geometry) and region.image is not None:
        further = tuple(Geometry(r.graphic_type, r.points, ImageRef(
            r.sop_class_uid, r.sop_instance_uid, r.series_instance_uid))
            for r in first.further_regions)
        if all((r.graphic_type, r.points) == (region.graphic_type, region.points)
               for r in further):  # one box on a slice range: what a row holds
            regions = (region, *further)
    return Group(
        template=template,
        tracking_identifier=first.tracking_identifier,
        tracking_uid=first.tracking_uid,
        finding=_concept(first.finding),
        finding_site=_concept(first.finding_site),
        measurements=tuple(
            RecordMeasurement(_concept(m.measurement) or Concept("", "", ""), m.value,
                              _concept(m.unit) or Concept("", "", ""),
                              None if template in ("1410", "1411") else _planar(_geometry(m)))
            for m in numbers
        ),
        qualitative=tuple(RecordQualitative(_concept(q.concept), _concept(q.code))  # type: ignore[arg-type]
                          for q in first.qualitative if q.code is not None),
        region=region,
        regions=regions,
    )


def _slice_run(groups: list[list[Measurement]], start: int) -> list[list[Measurement]]:
    """The SR groups from ``start`` that one per-slice group of the profile made: the
    consecutive TID 1410 groups with the Tracking Unique Identifier of the first (PS3.16
    TID 1410 row 3; :func:`csv2sr.conversion.build.planar_groups` writes one per slice
    of a 3D box)."""
    first = groups[start][0]
    run = [groups[start]]
    if first.template != "1410" or not first.tracking_uid:
        return run
    for rows in groups[start + 1:]:
        if rows[0].template != "1410" or rows[0].tracking_uid != first.tracking_uid:
            break
        run.append(rows)
    return run


def _merged(run: list[list[Measurement]], problem: Callable[[str, str], None]) -> Group | None:
    """One group with a region per slice from the TID 1410 groups of one 3D box (a
    ``per_slice`` group of the profile), or None when they are not the same region on
    several images (a row holds one region and its slice range)."""
    groups = [_sr_group(rows) for rows in run]
    first = groups[0]
    regions: list[Geometry] = []
    for group, rows in zip(groups, run, strict=True):
        region = group.region
        if not isinstance(region, Geometry) or region.image is None:
            problem("a TID 1410 group of a 3D box has no Image Region on an image: no row",
                    rows[0].group_item)
            return None
        shape = regions[0] if regions else region
        if (region.graphic_type, region.points) != (shape.graphic_type, shape.points) \
                or replace(group, region=None) != replace(first, region=None):
            problem(f"the TID 1410 groups of tracking UID {first.tracking_uid} differ in "
                    "more than their slice: one row holds one region on a slice range: "
                    "no row", rows[0].group_item)
            return None
        regions.append(region)
    return replace(first, regions=tuple(regions))


def _when(m: Measurement) -> dt.datetime | None:
    try:
        seconds = unix_time(m.content_date, m.content_time, m.timezone_offset)
    except ExportValueError:
        return None
    return dt.datetime.fromtimestamp(float(seconds), tz=dt.timezone.utc)


def _sr_record(groups: list[Group], first: Measurement) -> Record:
    images: dict[str, ImageRef] = {}
    for group in groups:
        shapes = [group.region, *group.regions, *(m.geometry for m in group.measurements)]
        for shape in shapes:
            if shape is not None and shape.image is not None:
                images.setdefault(shape.image.sop_instance_uid, shape.image)
    return Record(
        line=0, patient_id=first.patient_id, patient_name="",
        study_uid=first.study_instance_uid, study_date=first.study_date,
        study_time=first.study_time, images=tuple(images.values()),
        observer=Observer(
            "device" if first.device_observer_uid and not first.observer_name else "person",
            first.observer_name or first.device_observer_name, first.observer_login_name,
            _concept(first.observer_role), first.device_observer_uid),
        content_datetime=_when(first) or dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc),
        groups=tuple(groups), identity=(), series_uid=first.referenced_series_instance_uid,
        instance_number=int(first.instance_number) if first.instance_number.isdigit() else None,
    )


def _align(
    group: Group, items: list[str], spec_group: GroupSpec, problem: Callable[[str, str], None]
) -> tuple[Group, bool]:
    """The group's NUMs in the order of the profile's measurements, matched by concept
    (SNOMED-RT as SNOMED CT), and whether every one is there with a value in its unit
    (else no row); NUMs the profile does not have are reported."""
    left = list(zip(group.measurements, items, strict=True))
    ordered: list[RecordMeasurement] = []
    whole = True
    for wanted in spec_group.measurements:
        identity = _identity(wanted.concept)
        pair = next((p for p in left if _identity(p[0].concept) == identity), None)
        label = f"{wanted.concept.meaning} ({wanted.concept.label()})"
        if pair is None:
            problem(f"no NUM {label} for {wanted.key}: no row", "")
            ordered.append(RecordMeasurement(wanted.concept, "", wanted.unit, None))
            whole = False
            continue
        left.remove(pair)
        found, item = pair
        if not found.value:
            problem(f"NUM {label} has no measured value: no row", item)
            whole = False
        elif found.unit.value != wanted.unit.value:
            problem(f"NUM {label} is in {found.unit.value or 'no unit'!r}, not "
                    f"{wanted.unit.value!r}: no row", item)
            whole = False
        ordered.append(found)
    for extra, item in left:
        problem(f"NUM '{extra.concept.meaning}' ({extra.concept.label()}) is not a "
                f"measurement of the profile ({spec_group.key}): not exported", item)
    return replace(group, measurements=tuple(ordered)), whole


def _profile_rows(
    measurements: tuple[Measurement, ...], spec: Spec, inverse: Inverse
) -> list[tuple[list[str] | None, list[Problem]]]:
    """One row per record: the file's groups taken as many at a time as the profile makes
    per row (a group made by no NUM, or that has none, counts too); a ``per_slice`` group
    of the profile takes the run of TID 1410 groups of one 3D box (:func:`_slice_run`)."""
    if not measurements:
        return []
    file = measurements[0].file
    per_row = len(spec.groups)
    groups = _groups(measurements)
    rows: list[tuple[list[str] | None, list[Problem]]] = []
    position = 0
    while position < len(groups):
        runs: list[list[list[Measurement]]] = []
        for group_spec in spec.groups:
            if position >= len(groups):
                break
            run = _slice_run(groups, position) if group_spec.per_slice else [groups[position]]
            runs.append(run)
            position += len(run)
        members = [run[0] for run in runs]
        problems: list[Problem] = []
        item = members[0][0].group_item

        def problem(message: str, where: str = "", item: str = item,
                    problems: list[Problem] = problems) -> None:
            problems.append(Problem(file, where or item, message, ProblemKind.UNRECOGNISED))

        if len(members) < per_row:
            problem(f"{len(members)} measurement group(s) left where the profile makes "
                    f"{per_row} per row: no row")
            rows.append((None, problems))
            continue
        complete = True
        sr_groups = []
        for i, rows_ in enumerate(members):
            items = [m.item for m in rows_ if m.row_type == "measurement"]
            if spec.groups[i].per_slice:
                merged = _merged(runs[i], problem)
                if merged is None:
                    complete = False
                    continue
                group, whole = _align(merged, items, spec.groups[i], problem)
            else:
                group, whole = _align(_sr_group(rows_), items, spec.groups[i], problem)
            sr_groups.append(group)
            complete = complete and whole
        if not complete:
            rows.append((None, problems))
            continue
        record = _sr_record(sr_groups, members[0][0])
        cells, missing = inverse.cells(record)
        for message in missing:
            problem(message)
        if cells is None:
            rows.append((None, problems))
            continue
        rows.append(([cells[c] for c in spec.columns], problems))
    return rows


def table_profile(name: str, images: ImageIndex | None = None) -> TableProfile:
    """``generic``, or a profile (a built-in name or a TOML file): its own columns, by
    the inverse of its mapping (:class:`csv2sr.mapping.inverse.Inverse`); ``images``, the
    source images, give back the slice columns of a profile that resolves its rows."""
    if name == "generic":
        return TableProfile("generic", GENERIC_COLUMNS, _generic, qualitative=True)
    spec = load_profile(name)
    inverse = Inverse(spec, _identity, images)

    def rows(
        measurements: tuple[Measurement, ...]
    ) -> list[tuple[list[str] | None, list[Problem]]]:
        return _profile_rows(measurements, spec, inverse)

    return TableProfile(spec.name, spec.columns, rows)
