"""The profile-independent record: what one table row says, checked, and what one SR holds.

Plain frozen dataclasses (picklable, sent to worker processes), no pydicom objects: a code
is a :class:`Concept` (value, scheme, meaning; :mod:`csv2sr.conversion.build` turns it into
a pydicom ``Code``).  :mod:`csv2sr.mapping.forward` makes a :class:`Record` from a row's
cells, :mod:`csv2sr.mapping.inverse` makes the cells back from a record read from an SR,
both by the same profile (:class:`csv2sr.mapping.spec.Spec`).

Coordinates are in image pixel space as DICOM counts it (PS3.3 C.18.6.1.1: (0,0) is the
top left corner of the top left pixel, x the column, y the row); the profile's origin and
base are applied by :mod:`csv2sr.mapping.forward`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = [
    "Concept",
    "Document",
    "Geometry",
    "Geometry3D",
    "Group",
    "ImageRef",
    "Measurement",
    "Observer",
    "Qualitative",
    "Record",
    "RowProblem",
    "shown",
]

_SHOWN = 100
"""Characters of a value shown in a message (longer values are cut, with their length)."""


def shown(value: str) -> str:
    """``repr`` of a value on one line, cut to :data:`_SHOWN` characters when longer."""
    if len(value) <= _SHOWN:
        return repr(value)
    return f"{value[:_SHOWN]!r}... ({len(value)} characters)"


@dataclass(frozen=True)
class RowProblem:
    """One broken rule in one cell."""

    column: str
    message: str
    value: str

    def __str__(self) -> str:
        """``column: what is wrong (value)`` on one line (no value for a whole-record
        problem that has none)."""
        if self.column == "(row)" and not self.value:
            return f"{self.column}: {self.message}"
        return f"{self.column}: {self.message} ({shown(self.value)})"


class Concept(NamedTuple):
    """A code (PS3.3 Table 8.8-1): value, coding scheme designator, meaning."""

    value: str
    scheme: str
    meaning: str

    def label(self) -> str:
        """``SCHEME:value``, the way a profile writes a code."""
        return f"{self.scheme}:{self.value}"


@dataclass(frozen=True)
class ImageRef:
    """An image a row's geometry is on: the IMAGE an SCOORD is SELECTED FROM (PS3.16
    TID 320 row 2), an Image Library entry (TID 1601) and the evidence (PS3.3 C.17.2.3)."""

    sop_class_uid: str
    sop_instance_uid: str
    series_uid: str
    frames: tuple[int, ...] = ()


@dataclass(frozen=True)
class Geometry:
    """A 2D SCOORD (PS3.3 C.18.6): graphic type and flat ``x y`` points in DICOM pixels."""

    graphic_type: str
    """POINT, MULTIPOINT, POLYLINE, CIRCLE or ELLIPSE (PS3.3 C.18.6.1.2)."""
    points: tuple[float, ...]
    image: ImageRef | None
    columns: tuple[str, ...] = field(default=(), compare=False)
    """The table columns the coordinates came from (named in row problems)."""


@dataclass(frozen=True)
class Geometry3D:
    """A SCOORD3D (PS3.3 C.18.9): graphic type and flat ``x y z`` points in patient
    millimetres (the space of Image Position (Patient), PS3.3 C.7.6.2.1.1), in the Frame
    of Reference ``frame_of_reference_uid`` (Referenced Frame of Reference UID, PS3.3
    C.18.9.1.3: Type 1).

    The table gives the points; the Frame of Reference and the image the point lies in
    (the evidence and Image Library entry) come from the source images' index
    (:mod:`csv2sr.images.volume`): until then ``frame_of_reference_uid`` is empty and
    ``image`` None.
    """

    graphic_type: str
    """POINT, MULTIPOINT, POLYLINE, POLYGON, ELLIPSE or ELLIPSOID (PS3.3 C.18.9.1.2)."""
    points: tuple[float, ...]
    frame_of_reference_uid: str = ""
    image: ImageRef | None = None
    columns: tuple[str, ...] = field(default=(), compare=False)
    """The table columns the coordinates came from (named in row problems)."""


@dataclass(frozen=True)
class Measurement:
    """One TID 300 NUM: concept, value (a DS exactly as written or derived), UCUM unit, and
    the geometry it is INFERRED FROM (TID 1501; None in a TID 1410 group, whose NUMs are
    made on the group's region)."""

    concept: Concept
    value: str
    unit: Concept
    geometry: Geometry | None
    column: str = field(default="", compare=False)
    """The column the value came from ("" when derived)."""


@dataclass(frozen=True)
class Qualitative:
    """A qualitative evaluation (TID 1501 row 11, TID 1410 row 13): CONTAINS CODE."""

    concept: Concept
    value: Concept


@dataclass(frozen=True)
class Group:
    """One measurement group: TID 1501 (Measurement and Qualitative Evaluation Group) or
    TID 1410 (Planar ROI Measurements and Qualitative Evaluations, with its Image Region)."""

    template: str
    """``1501``, ``1410`` or ``1411``."""
    tracking_identifier: str
    tracking_uid: str
    finding: Concept | None
    finding_site: Concept | None
    measurements: tuple[Measurement, ...]
    qualitative: tuple[Qualitative, ...]
    region: Geometry | Geometry3D | None = None
    """TID 1410 row 7 (Image Region, SCOORD) or a TID 1410 group's Image Region 3D
    (PS3.16 TID 1410 row 8, SCOORD3D); a TID 1411 group's first region."""
    regions: tuple[Geometry, ...] = ()
    """A 3D box (identity.image.slice.last): the region on each slice of the range, in
    slice order (``region`` is the first).  TID 1411 holds them in one group; a TID 1410
    group is written as one Planar ROI group per region (PS3.16 TID 1410 row 7, each on
    its own slice) with the same tracking rows 2-3.  Empty otherwise."""

    @property
    def is_3d(self) -> bool:
        """True when the group's Image Region is an Image Region 3D (an SCOORD3D, PS3.3
        C.18.9)."""
        return isinstance(self.region, Geometry3D)


@dataclass(frozen=True)
class Observer:
    """TID 1002 (person: name, login, role in the organisation) or TID 1004 (device)."""

    kind: str
    """``person`` or ``device``."""
    name: str
    login: str = ""
    role: Concept | None = None
    device_uid: str = ""


@dataclass(frozen=True)
class Record:
    """One table row, checked: every value its SR content needs, already valid."""

    line: int
    patient_id: str
    patient_name: str
    study_uid: str
    study_date: str
    study_time: str
    images: tuple[ImageRef, ...]
    """Every image the row references, each once, in the order first referenced."""
    observer: Observer
    content_datetime: dt.datetime
    """When the annotation was made, in UTC (Content Date/Time, PS3.3 C.17.2)."""
    groups: tuple[Group, ...]
    identity: tuple[str, ...]
    """The parts the SOP Instance and Tracking UIDs are derived from (csv2sr.dicom.uids)."""
    instance_number: int | None = None
    procedure: Concept | None = None
    """Procedure Reported (TID 1500 row 4) when the profile gives one; else from the
    modality of the image's SOP class."""
    file_name: str = ""
    """``FOLDER/NAME.dcm`` under ``sr/`` (each part made safe for the file system)."""
    keys: tuple[tuple[str, str], ...] = ()
    """(column, canonical value) of the profile's unique columns, for the duplicate check
    and the manifest."""
    cells: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    """The row as written (rejected.csv, manifest, report)."""
    series_uid: str = ""
    """The series the row names (identity.series_uid): where a point in patient
    coordinates is placed (:mod:`csv2sr.images.volume`)."""

    @property
    def is_3d(self) -> bool:
        """True when a group has an Image Region 3D (an SCOORD3D, PS3.3 C.18.9)."""
        return any(g.is_3d for g in self.groups)


@dataclass(frozen=True)
class Document:
    """One SR: one or more records (the profile's grouping) and where it goes."""

    records: tuple[Record, ...]
    relpath: str
    """``sr/FOLDER/NAME.dcm``."""
    instance_number: int
    series_key: tuple[str, ...]
    """What the SR Series Instance UID is derived from (csv2sr.dicom.uids)."""

    @property
    def first(self) -> Record:
        return self.records[0]

    @property
    def groups(self) -> tuple[Group, ...]:
        """Every measurement group of the SR, record by record."""
        return tuple(g for r in self.records for g in r.groups)

    @property
    def images(self) -> tuple[ImageRef, ...]:
        """Every image the SR references, each once, in the order first referenced."""
        seen: dict[str, ImageRef] = {}
        for record in self.records:
            for image in record.images:
                seen.setdefault(image.sop_instance_uid, image)
        return tuple(seen.values())

    @property
    def is_3d(self) -> bool:
        """True when a group has an Image Region 3D: the SR is a Comprehensive 3D SR
        (PS3.3 A.35.13), the only SR IOD besides Extensible SR that holds SCOORD3D."""
        return any(r.is_3d for r in self.records)

    @property
    def content_datetime(self) -> dt.datetime:
        """The latest Content Date/Time of its records (one record: its own)."""
        return max(r.content_datetime for r in self.records)
