"""The records export passes around: one measurement read from an SR, and one problem.

Both are small, immutable and picklable, so that worker processes can send them back.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NamedTuple

from csv2sr.mapping.record import Concept

__all__ = ["CodedValue", "FurtherRegion", "Measurement", "Problem", "ProblemKind",
           "Qualitative"]


CodedValue = Concept
"""A code as written in the file (PS3.3 Table 8.8-1: value, scheme, meaning): the one code
type the profile model uses too; ``label()`` is the column text for a code."""


class FurtherRegion(NamedTuple):
    """A region of a measurement group after its first: a TID 1411 group's Image Region
    SCOORD on another slice (PS3.16 TID 1411, each SELECTED FROM its own image, TID 320
    row 2).  No generic column holds it; a profile's row takes its slice range from them."""

    graphic_type: str
    points: tuple[float, ...]
    sop_class_uid: str
    sop_instance_uid: str
    series_instance_uid: str


class Qualitative(NamedTuple):
    """A qualitative evaluation of a measurement group (PS3.16 TID 1501 row 11 and the
    qualitative evaluations of TID 1410/1411: CONTAINS CODE, or TEXT, with its concept)."""

    item: str
    concept: CodedValue
    value_type: str
    """``CODE`` or ``TEXT``."""
    code: CodedValue | None
    text: str

    def cell(self) -> str:
        """The table cell: ``SCHEME:value`` of a coded value, else the text."""
        return self.code.label() if self.code is not None else self.text


class ProblemKind(str, enum.Enum):
    """How bad a problem is.

    ``unreadable`` and ``unrecognised`` mean a file or a measurement could not be exported
    (the command exits 1); a ``note`` names content that export understood but does not
    turn into rows or cells (qualitative evaluations, segmentation-based regions, a NUM
    without a value): it is reported, and does not change the exit status.
    """

    UNREADABLE = "unreadable"
    UNRECOGNISED = "unrecognised"
    NOTE = "note"

    @property
    def is_error(self) -> bool:
        return self is not ProblemKind.NOTE


@dataclass(frozen=True, slots=True)
class Problem:
    """What could not be read: the file, the content item (``1.5.1.4`` as dcsrdump
    numbers them, or empty for the whole file) and why."""

    path: str
    item: str
    message: str
    kind: ProblemKind = ProblemKind.UNRECOGNISED

    def __str__(self) -> str:
        where = f"{self.path}: item {self.item}" if self.item else self.path
        return f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class Measurement:
    """One NUM measurement of a TID 1500 report with everything around it, or (``row_type``
    ``group``) a measurement group that holds no NUM.

    Document-level values come from the SR header (PS3.3 C.7, C.17.2); observer,
    procedure, tracking, finding and finding site from the content tree (PS3.16 TID 1500,
    1501, 1410, 1411); geometry from the SCOORD the NUM is INFERRED FROM (TID 300 row 12,
    TID 320) or the group's region (TID 1410 Image Region, TID 1411 Volume Surface or
    Referenced Segment).
    """

    file: str
    sop_instance_uid: str
    series_instance_uid: str
    study_instance_uid: str
    patient_id: str
    instance_number: str
    study_date: str
    study_time: str
    content_date: str
    content_time: str
    timezone_offset: str
    observer_name: str
    observer_login_name: str
    observer_role: CodedValue | None
    procedure_reported: CodedValue | None
    template: str
    group_item: str
    item: str
    tracking_identifier: str
    tracking_uid: str
    finding: CodedValue | None
    finding_site: CodedValue | None
    measurement: CodedValue
    value: str
    unit: CodedValue | None
    coordinate_type: str
    graphic_type: str
    points: tuple[float, ...]
    referenced_sop_class_uid: str
    referenced_sop_instance_uid: str
    referenced_series_instance_uid: str
    referenced_frame_numbers: str
    frame_of_reference_uid: str
    row_type: str = "measurement"
    """``measurement`` (one NUM) or ``group`` (a group without NUM)."""
    referenced_segment_number: str = ""
    derivation: CodedValue | None = None
    method: CodedValue | None = None
    algorithm_name: str = ""
    algorithm_version: str = ""
    device_observer_uid: str = ""
    device_observer_name: str = ""
    qualitative: tuple[Qualitative, ...] = ()
    further_regions: tuple[FurtherRegion, ...] = ()
    """The group's regions after the first (SCOORDs on images), in the order of the SR."""
