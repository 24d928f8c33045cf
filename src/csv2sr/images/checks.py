"""Each row of a table checked against the header of the image it names.

Checks (each a :class:`csv2sr.conversion.read.RowProblem` naming the column, as for any
bad input):

========================  =================  ==============================================
check                     column             rule
========================  =================  ==============================================
instance found            instanceUID        the SOP Instance UID is in the index
same series               seriesUID          Series Instance UID of the image (C.7.3.1)
same study                StudyInstanceUID   Study Instance UID of the image (C.7.2.1)
same patient              patientID          Patient ID of the image (C.7.1.1)
same SOP class            SOPClassUID        only when the cell is not empty
inside the image          start_x ... end_y  0 <= x <= Columns, 0 <= y <= Rows (C.18.6.1.1)
length matches spacing    length             within :data:`LENGTH_RELATIVE_TOLERANCE` or
                                             :data:`LENGTH_ABSOLUTE_TOLERANCE_MM`
========================  =================  ==============================================
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

from pydicom import Dataset

from csv2sr.conversion.checks import Annotation, RowProblem
from csv2sr.images.index import ImageIndex

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
    points: tuple[float, float, float, float], pixel_spacing: Sequence[float]
) -> float:
    """Length in mm of the line (x = column, y = row) on an image with ``pixel_spacing``.

    Pixel Spacing is (row spacing, column spacing): the distance between the centres of
    adjacent rows, then of adjacent columns (PS3.3 C.7.6.2.1.1), so a step in x is a
    column step and is scaled by the second value.
    """
    row_spacing, column_spacing = float(pixel_spacing[0]), float(pixel_spacing[1])
    x0, y0, x1, y1 = points
    return math.hypot((x1 - x0) * column_spacing, (y1 - y0) * row_spacing)


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    return "" if value is None else str(value)


def _identity_problems(row: Annotation, header: Dataset, where: str) -> list[RowProblem]:
    problems = []
    pairs = (
        ("seriesUID", "SeriesInstanceUID", row.series_uid, "series"),
        ("StudyInstanceUID", "StudyInstanceUID", row.study_uid, "study"),
        ("patientID", "PatientID", row.patient_id, "patient"),
    )
    for column, keyword, value, what in pairs:
        actual = _text(header, keyword)
        if actual != value:
            problems.append(RowProblem(
                column, f"not the {what} of the image {where}, which is {actual!r}", value
            ))
    written = row.cells.get("SOPClassUID", "").strip()
    actual_class = _text(header, "SOPClassUID")
    if written and written != actual_class:
        problems.append(
            RowProblem("SOPClassUID", f"the image {where} is of SOP class {actual_class}", written)
        )
    return problems


def _geometry_problems(row: Annotation, header: Dataset, where: str) -> list[RowProblem]:
    rows, columns = header.get("Rows"), header.get("Columns")
    if not rows or not columns:
        log.debug("%s: no Rows/Columns: coordinates not checked", where)
        return []
    problems = []
    limits = (("start_x", columns, "columns"), ("start_y", rows, "rows"),
              ("end_x", columns, "columns"), ("end_y", rows, "rows"))
    for (column, limit, what), value in zip(limits, row.points, strict=True):
        if not 0 <= value <= int(limit):
            problems.append(RowProblem(
                column,
                f"outside the image {where}: its {what} run from 0 to {int(limit)} "
                "(PS3.3 C.18.6.1.1)",
                row.cells.get(column, repr(value)),
            ))
    return problems


def length_problem(
    row: Annotation, header: Dataset, where: str = "the image"
) -> RowProblem | None:
    """The ``length`` check alone: None when it matches Pixel Spacing or cannot be checked."""
    spacing = header.get("PixelSpacing")
    if not spacing or len(spacing) != 2 or min(float(v) for v in spacing) <= 0:
        log.debug("%s: no usable Pixel Spacing: length not checked", where)
        return None
    measured = line_length_mm(row.points, spacing)
    written = float(row.length)
    tolerance = max(LENGTH_RELATIVE_TOLERANCE * measured, LENGTH_ABSOLUTE_TOLERANCE_MM)
    if abs(written - measured) <= tolerance:
        return None
    ratio = written / measured if measured > 0 else math.inf
    spacing_text = "\\".join(f"{float(v):g}" for v in spacing)
    return RowProblem(
        "length",
        f"{ratio:.4f} times the {measured:.4f} mm the line measures with Pixel Spacing "
        f"{spacing_text} (row\\column, mm) of the image {where} "
        f"(tolerance {LENGTH_RELATIVE_TOLERANCE:.2%} or {LENGTH_ABSOLUTE_TOLERANCE_MM} mm)",
        row.length,
    )


def check_row_against_image(
    row: Annotation, index: ImageIndex, *, path: Path
) -> tuple[Dataset | None, list[RowProblem]]:
    """Find the row's image in ``index`` and check the row against its header.

    Returns the header (None when the instance is not indexed) and every problem found;
    ``path`` is the CSV file (named in log messages).  Messages name the image's file or
    URL.  A row with problems is to be rejected like any other bad row.
    """
    header = index.get(row.instance_uid)
    if header is None:
        origin = index.origin or "the image index"
        return None, [RowProblem(
            "instanceUID",
            f"no source image with this SOP Instance UID in {origin} "
            f"({len(index)} instances indexed)",
            row.instance_uid,
        )]
    where = index.source(row.instance_uid) or row.instance_uid
    problems = _identity_problems(row, header, where)
    try:
        problems.extend(_geometry_problems(row, header, where))
        length = length_problem(row, header, where)
    except (ValueError, TypeError, OverflowError) as exc:  # a malformed IS/DS/US value
        problems.append(RowProblem(
            "instanceUID",
            f"the header of the image {where} has an unusable Rows, Columns or Pixel "
            f"Spacing ({exc})",
            row.instance_uid,
        ))
        length = None
    if length is not None:
        problems.append(length)
    for keyword, value in (("StudyDate", row.study_date), ("StudyTime", row.study_time)):
        actual = _text(header, keyword)
        if value and actual and not _same_time_or_date(actual, value):
            log.warning(
                "%s:%d: %s %r differs from the image's %r (%s); the image's value is used",
                path, row.line, keyword, value, actual, where,
            )
    return header, problems


def _same_time_or_date(a: str, b: str) -> bool:
    try:
        return abs(float(a) - float(b)) < 1e-6
    except ValueError:
        return a == b


