"""Each row of a table checked against the header of the image it names.

Checks (each a :class:`csv2sr.mapping.record.RowProblem` naming the column the profile
reads the value from, as for any bad input):

========================  ====================  ===========================================
check                     column (profile key)  rule
========================  ====================  ===========================================
instance found            sop_instance_uid      the SOP Instance UID is in the index
same series               series_uid            Series Instance UID of the image (C.7.3.1)
same study                study_uid             Study Instance UID of the image (C.7.2.1)
same patient              patient_id            Patient ID of the image (C.7.1.1)
same SOP class            sop_class_uid         only when the cell is not empty
inside the image          each geometry         0 <= x <= Columns, 0 <= y <= Rows (C.18.6.1.1)
length matches spacing    a line's value (mm)   within :data:`LENGTH_RELATIVE_TOLERANCE` or
                                                :data:`LENGTH_ABSOLUTE_TOLERANCE_MM`
========================  ====================  ===========================================
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Sequence
from pathlib import Path

from pydicom import Dataset
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.tag import BaseTag, Tag

from csv2sr.images.index import ImageIndex, header_uid
from csv2sr.mapping.record import Geometry, Measurement, Record, RowProblem
from csv2sr.mapping.spec import Source, Spec

__all__ = [
    "LENGTH_ABSOLUTE_TOLERANCE_MM",
    "LENGTH_RELATIVE_TOLERANCE",
    "check_row_against_image",
    "length_problem",
    "line_length_mm",
]

log = logging.getLogger(__name__)

LENGTH_RELATIVE_TOLERANCE = 0.0005
"""A row's ``length`` may differ from the line's length in mm by 0.05 % ...

In the published CCC2017 table ``length`` equals the pixel distance times the image's
Pixel Spacing to 2e-8 (both are written with ten significant digits), so 0.05 % accepts
any length rounded to four significant digits or more.  The lengths imply that 1,428 of
its 1,466 images have a spacing that is a multiple of 1/1024 mm; one such step is 0.05 %
to 0.2 % of the spacing, so the spacing of a neighbouring image is caught for every line
longer than 20 mm.
Spacings closer than that (0.78125 vs 0.7813 mm) cannot be told apart by any tolerance."""

LENGTH_ABSOLUTE_TOLERANCE_MM = 0.01
"""... or by 0.01 mm, whichever is larger (short lines written with two decimals)."""


def line_length_mm(
    points: tuple[float, ...], pixel_spacing: Sequence[float]
) -> float:
    """Length in mm of the line (x = column, y = row) on an image with ``pixel_spacing``.

    Pixel Spacing is (row spacing, column spacing): the distance between the centres of
    adjacent rows, then of adjacent columns (PS3.3 C.7.6.2.1.1), so a step in x is a
    column step and is scaled by the second value.
    """
    row_spacing, column_spacing = float(pixel_spacing[0]), float(pixel_spacing[1])
    x0, y0, x1, y1 = points
    return math.hypot((x1 - x0) * column_spacing, (y1 - y0) * row_spacing)


@functools.cache
def _tag_of(keyword: str) -> tuple[BaseTag, bool]:
    """The tag of a keyword, and whether its VR is UI."""
    tag = tag_for_keyword(keyword)
    if tag is None:  # pragma: no cover - the keywords here are all in the dictionary
        raise KeyError(keyword)
    return Tag(tag), dictionary_VR(tag) == "UI"


def _text(ds: Dataset, keyword: str) -> str:
    """The element's value as text ("" when absent): looked up by tag, and a UID read
    from its bytes (csv2sr.images.index.header_uid); by keyword, through pydicom's
    decoding, this was most of the time of checking a row against its image."""
    tag, uid = _tag_of(keyword)
    if uid:
        return header_uid(ds, tag)
    element = ds.get(tag)
    return "" if element is None or element.value is None else str(element.value)


def _column(source: Source | None) -> str:
    """The first column a value comes from (what a problem names), or ``(row)``."""
    if source is None or not source.columns:
        return "(row)"
    return source.columns[0]


def _identity_problems(
    record: Record, header: Dataset, where: str, spec: Spec
) -> list[RowProblem]:
    problems = []
    ident = spec.identity
    image = record.images[0]
    pairs = (
        (ident.series_uid, "SeriesInstanceUID", image.series_uid, "series"),
        (ident.study_uid, "StudyInstanceUID", record.study_uid, "study"),
        (ident.patient_id, "PatientID", record.patient_id, "patient"),
    )
    for source, keyword, value, what in pairs:
        actual = _text(header, keyword)
        if source is not None and actual != value:
            problems.append(RowProblem(
                _column(source), f"not the {what} of the image {where}, which is {actual!r}",
                value,
            ))
    column = _column(ident.sop_class_uid)
    written = record.cells.get(column, "").strip()
    actual_class = _text(header, "SOPClassUID")
    if written and written != actual_class:
        problems.append(
            RowProblem(column, f"the image {where} is of SOP class {actual_class}", written)
        )
    return problems


def _geometries(record: Record) -> list[Geometry]:
    found = []
    for group in record.groups:
        if isinstance(group.region, Geometry):  # an Image Region 3D: images.volume
            found.append(group.region)
        found.extend(m.geometry for m in group.measurements if m.geometry is not None)
    return found


def _geometry_problems(record: Record, header: Dataset, where: str) -> list[RowProblem]:
    rows, columns = header.get("Rows"), header.get("Columns")
    if not rows or not columns:
        log.debug("%s: no Rows/Columns: coordinates not checked", where)
        return []
    problems = []
    reported: set[str] = set()
    for geometry in _geometries(record):
        aligned = len(geometry.columns) == len(geometry.points)
        for index, value in enumerate(geometry.points):
            limit, what = (int(columns), "columns") if index % 2 == 0 else (int(rows), "rows")
            if 0 <= value <= limit:
                continue
            column = geometry.columns[index] if aligned else (geometry.columns or ("(row)",))[0]
            if column in reported:
                continue
            reported.add(column)
            problems.append(RowProblem(
                column,
                f"outside the image {where}: its {what} run from 0 to {limit} "
                "(PS3.3 C.18.6.1.1)",
                record.cells.get(column, repr(value)) if aligned else repr(value),
            ))
    return problems


def _lines(record: Record) -> list[Measurement]:
    """The measurements in mm made on a 2-point line, with the value from a column."""
    return [
        m for g in record.groups for m in g.measurements
        if m.geometry is not None and m.geometry.graphic_type == "POLYLINE"
        and len(m.geometry.points) == 4 and m.unit.value == "mm" and m.column
    ]


def length_problem(
    measurement: Measurement, header: Dataset, where: str = "the image"
) -> RowProblem | None:
    """The length check of one line measurement: None when its value matches Pixel
    Spacing or cannot be checked."""
    spacing = header.get("PixelSpacing")
    if not spacing or len(spacing) != 2 or min(float(v) for v in spacing) <= 0:
        log.debug("%s: no usable Pixel Spacing: length not checked", where)
        return None
    assert measurement.geometry is not None
    measured = line_length_mm(measurement.geometry.points, spacing)
    written = float(measurement.value)
    tolerance = max(LENGTH_RELATIVE_TOLERANCE * measured, LENGTH_ABSOLUTE_TOLERANCE_MM)
    if abs(written - measured) <= tolerance:
        return None
    ratio = written / measured if measured > 0 else math.inf
    spacing_text = "\\".join(f"{float(v):g}" for v in spacing)
    return RowProblem(
        measurement.column,
        f"{ratio:.4f} times the {measured:.4f} mm the line measures with Pixel Spacing "
        f"{spacing_text} (row\\column, mm) of the image {where} "
        f"(tolerance {LENGTH_RELATIVE_TOLERANCE:.2%} or {LENGTH_ABSOLUTE_TOLERANCE_MM} mm)",
        measurement.value,
    )


def check_row_against_image(
    record: Record, index: ImageIndex, *, path: Path, spec: Spec
) -> tuple[Dataset | None, list[RowProblem]]:
    """Find the row's image in ``index`` and check the row against its header.

    Returns the header (None when the instance is not indexed) and every problem found;
    ``path`` is the table (named in log messages).  Messages name the image's file or
    URL.  A row with problems is to be rejected like any other bad row.
    """
    image = record.images[0]
    instance_column = _column(spec.identity.sop_instance_uid)
    header = index.get(image.sop_instance_uid)
    if header is None:
        origin = index.origin or "the image index"
        return None, [RowProblem(
            instance_column,
            f"no source image with this SOP Instance UID in {origin} "
            f"({len(index)} instances indexed)",
            image.sop_instance_uid,
        )]
    where = index.source(image.sop_instance_uid) or image.sop_instance_uid
    problems = _identity_problems(record, header, where, spec)
    lengths: list[RowProblem] = []
    try:
        problems.extend(_geometry_problems(record, header, where))
        lengths = [p for m in _lines(record) if (p := length_problem(m, header, where))]
    except (ValueError, TypeError, OverflowError) as exc:  # a malformed IS/DS/US value
        problems.append(RowProblem(
            instance_column,
            f"the header of the image {where} has an unusable Rows, Columns or Pixel "
            f"Spacing ({exc})",
            image.sop_instance_uid,
        ))
    problems.extend(lengths)
    for keyword, value in (("StudyDate", record.study_date), ("StudyTime", record.study_time)):
        actual = _text(header, keyword)
        if value and actual and not _same_time_or_date(actual, value):
            log.warning(
                "%s:%d: %s %r differs from the image's %r (%s); the image's value is used",
                path, record.line, keyword, value, actual, where,
            )
    return header, problems


def _same_time_or_date(a: str, b: str) -> bool:
    try:
        return abs(float(a) - float(b)) < 1e-6
    except ValueError:
        return a == b
