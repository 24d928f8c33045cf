"""A loaded profile: typed, frozen dataclasses (what :mod:`csv2sr.mapping.load` returns).

The TOML file and its JSON Schema (``schema.json``) are the reference for what each key
means; these classes hold the same content after every check, with codes resolved to
:class:`~csv2sr.mapping.record.Concept` and value sources made explicit (:class:`Source`).
Each part keeps its TOML key path (``key``) so that later problems can name it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from csv2sr.mapping.record import Concept

__all__ = [
    "CellSpec",
    "CodeSource",
    "DocumentSpec",
    "FrameSpec",
    "GeometrySpec",
    "GroupSpec",
    "IdentitySpec",
    "ImageSpec",
    "InputSpec",
    "JoinSpec",
    "MeasurementSpec",
    "ObserverSpec",
    "QualitativeSpec",
    "ReportSpec",
    "ResolveSpec",
    "SeriesRule",
    "SliceSpec",
    "Source",
    "Spec",
    "template_fields",
]

_FIELD = re.compile(r"\{([^{}:!]+)(?:[:!][^{}]*)?\}")


def template_fields(template: str) -> tuple[str, ...]:
    """The column names a ``"{col}"`` template formats (``{order:04d}`` names ``order``)."""
    return tuple(dict.fromkeys(_FIELD.findall(template)))


@dataclass(frozen=True)
class Source:
    """Where one value comes from: a column, a ``"{col}"`` template, or a constant."""

    column: str = ""
    template: str = ""
    const: str | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        if self.column:
            return (self.column,)
        if self.template:
            return template_fields(self.template)
        return ()

    def describe(self) -> str:
        if self.column:
            return f"column {self.column!r}"
        if self.template:
            return f"template {self.template!r}"
        return f"constant {self.const!r}"


@dataclass(frozen=True)
class CodeSource:
    """A code: a constant, or a column whose cells map to codes (None: no item)."""

    const: Concept | None = None
    column: str = ""
    map: dict[str, Concept | None] = field(default_factory=dict)

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,) if self.column else ()


@dataclass(frozen=True)
class CellSpec:
    """How one column's cells are read (the ``[cells]`` table)."""

    column: str
    type: str
    optional: bool = False
    default: str = ""
    minimum: float | None = None
    maximum: float | None = None
    greater_than: float | None = None
    unique: bool = False
    values: tuple[str, ...] = ()
    repair: str = ""
    of: str = ""
    landing: tuple[str, ...] = ()
    """The VRs the column's value is written as (set by the loader; text limits)."""


@dataclass(frozen=True)
class InputSpec:
    format: str
    delimiter: str
    encoding: str
    columns: tuple[str, ...]
    required: tuple[str, ...]


@dataclass(frozen=True)
class SeriesRule:
    """``identity.image.series``: the one series of the row's patient with this Modality
    (PS3.3 C.7.3.1) whose Series Description matches ``description`` (a regex)."""

    modality: str = ""
    description: str = ""


@dataclass(frozen=True)
class SliceSpec:
    """``identity.image.slice``: the instance of the series a column names."""

    column: str
    by: str = "index"
    """index, instance_number or z (csv2sr.images.index.SLICE_BY)."""
    order: str = "instance_number"
    base: int = 0
    tolerance: float = 0.01
    last: str = ""
    """The column of the last slice of a range (3D boxes: a TID 1411 group, or one TID
    1410 group per slice); "" for one slice."""


@dataclass(frozen=True)
class FrameSpec:
    """``identity.image.frame``: Referenced Frame Number from a column (PS3.3 C.18.4,
    Table C.18.4-1)."""

    column: str
    base: int = 1


@dataclass(frozen=True)
class ResolveSpec:
    """``[identity.image]``: how the annotated image is found in the image index."""

    series: SeriesRule | None = None
    slice: SliceSpec | None = None
    frame: FrameSpec | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        found = [part.column for part in (self.slice, self.frame) if part is not None]
        if self.slice is not None and self.slice.last:
            found.append(self.slice.last)
        return tuple(found)


@dataclass(frozen=True)
class JoinSpec:
    """One join table (``[[joins]]``): the table's ``columns`` match the join file's
    ``on`` columns; each row gets the join file's ``provides`` columns."""

    name: str
    key: str
    """The TOML key of its file (``joins[0].file``), named in problems."""
    path: Path
    format: str
    columns: tuple[str, ...]
    on: tuple[str, ...]
    provides: tuple[str, ...]


@dataclass(frozen=True)
class IdentitySpec:
    """Patient, study, source series, image instance and class (PS3.3 C.7.1.1, C.7.2.1,
    C.7.3.1, C.12.1): each a :class:`Source`, or None when ``needs`` lists it."""

    patient_id: Source | None
    patient_name: Source | None
    study_uid: Source | None
    study_date: Source | None
    study_time: Source | None
    series_uid: Source | None
    sop_instance_uid: Source | None
    sop_class_uid: Source | None
    needs: tuple[str, ...] = ()
    """Keys taken from the header of the resolved source image."""
    image: ResolveSpec | None = None
    """``[identity.image]``: how the image is found (None: by its SOP Instance UID)."""

    @property
    def resolved(self) -> bool:
        """True when a row's image or identity comes from the image index."""
        return bool(self.needs) or self.image is not None


@dataclass(frozen=True)
class ObserverSpec:
    """TID 1002 person (name template, login, role) or TID 1004 device (UID, name)."""

    type: str
    name: Source
    login: Source | None = None
    role: CodeSource | None = None
    device_uid: Source | None = None


@dataclass(frozen=True)
class GeometrySpec:
    """A geometry in image pixels (``points`` pairs of x, y sources), with its origin."""

    type: str
    """point, line, polyline, polygon, box, ellipse or circle."""
    key: str
    points: tuple[tuple[Source, Source], ...] = ()
    column: str = ""
    """polyline / polygon: the column holding the points."""
    form: str = ""
    """box: ``xywh``, ``corners`` or ``center``; ellipse: ``points`` or ``center``;
    circle: ``point``, ``radius`` or ``diameter``."""
    x: Source | None = None
    y: Source | None = None
    width: Source | None = None
    height: Source | None = None
    radius: Source | None = None
    units: str = "pixel"
    origin: str = "dicom"
    base: int = 0
    space: str = "image"
    """``image`` (2D SCOORD in pixels) or ``patient`` (SCOORD3D in patient mm, PS3.3
    C.18.9: each point's z source is in ``zs``)."""
    zs: tuple[Source, ...] = ()
    """space = patient: the z source of each of ``points``."""

    @property
    def columns(self) -> tuple[str, ...]:
        found: list[str] = []
        for i, (x, y) in enumerate(self.points):
            found.extend((*x.columns, *y.columns))
            if i < len(self.zs):
                found.extend(self.zs[i].columns)
        for source in (self.x, self.y, self.width, self.height, self.radius):
            if source is not None:
                found.extend(source.columns)
        if self.column:
            found.append(self.column)
        return tuple(dict.fromkeys(found))

    @property
    def patient(self) -> bool:
        """True for a geometry in patient coordinates (an SCOORD3D)."""
        return self.space == "patient"

    @property
    def graphic_type_3d(self) -> str:
        """The SCOORD3D Graphic Type of a geometry in patient mm (PS3.3 C.18.9.1.2): a
        point is a POINT, a line or polyline a POLYLINE, a polygon a POLYGON."""
        return {"point": "POINT", "polygon": "POLYGON"}.get(self.type, "POLYLINE")

    @property
    def shift(self) -> float:
        """What is added to a table coordinate to give a DICOM one (PS3.3 C.18.6.1.1):
        0 for ``dicom``; a pixel centre numbered from ``base`` is ``0.5 - base`` away."""
        return 0.0 if self.origin == "dicom" else 0.5 - self.base


@dataclass(frozen=True)
class MeasurementSpec:
    """One TID 300 NUM: concept, UCUM unit, value (a column or derived), geometry."""

    key: str
    concept: Concept
    unit: Concept
    value: Source | None
    derive: str = ""
    """length, area or diameter, from the geometry and the pixel spacing."""
    geometry: GeometrySpec | None = None


@dataclass(frozen=True)
class QualitativeSpec:
    key: str
    concept: Concept
    value: CodeSource


@dataclass(frozen=True)
class GroupSpec:
    """One measurement group per row: TID 1501, TID 1410 or TID 1411 (a TID 1410 group of
    a 3D box: one per slice, ``per_slice``)."""

    key: str
    template: str
    tracking_identifier: Source
    finding: CodeSource | None
    finding_site: CodeSource | None
    measurements: tuple[MeasurementSpec, ...]
    qualitative: tuple[QualitativeSpec, ...]
    region: GeometrySpec | None = None
    per_slice: bool = False
    """A TID 1410 group with identity.image.slice.last: one Planar ROI group (PS3.16
    TID 1410) per slice of the range, each with the Image Region (row 7) on its own slice
    and the same Tracking Identifier and UID (rows 2-3: one finding)."""


@dataclass(frozen=True)
class ImageSpec:
    """What the table says about the image: size (for fractions) and pixel spacing (row,
    column, mm; PS3.3 C.7.6.2.1.1) for derived values."""

    columns: Source | None = None
    rows: Source | None = None
    pixel_spacing: tuple[Source, Source] | None = None


@dataclass(frozen=True)
class DocumentSpec:
    per: str
    by_observer: bool
    series: str
    instance_number: str
    file_name: str
    content_datetime: Source
    uid_identity: tuple[str, ...]
    series_description: str
    series_number: int
    manufacturer: str
    procedure: CodeSource | None = None
    """None: from the modality of the image's SOP class (TID 1500 row 4, CID 100)."""
    ohif: bool = False
    """``document.ohif``: as ``convert --ohif`` (docs/ohif.md)."""


@dataclass(frozen=True)
class ReportSpec:
    tally: tuple[str, ...] = ()
    labels: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Spec:
    """A loaded, checked profile."""

    name: str
    title: str
    path: Path | None
    """The TOML file (built-in profiles: inside the package)."""
    input: InputSpec
    cells: dict[str, CellSpec]
    identity: IdentitySpec
    observer: ObserverSpec
    groups: tuple[GroupSpec, ...]
    image: ImageSpec
    document: DocumentSpec
    report: ReportSpec
    codes: dict[str, Concept] = field(default_factory=dict)
    text: str = field(default="", compare=False, repr=False)
    """The TOML text as read (``csv2sr profile show``)."""
    joins: tuple[JoinSpec, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column, in the table's order (export and rejected.csv write this order)."""
        return self.input.columns

    @property
    def unique_columns(self) -> tuple[str, ...]:
        """The columns whose values name a row (manifest, report, duplicate check)."""
        return tuple(c for c in self.columns if self.cells[c].unique)

    @property
    def not_carried(self) -> tuple[str, ...]:
        """Columns the SR does not carry (export leaves them empty)."""
        return tuple(c for c in self.columns if self.cells[c].type == "ignore")

    @property
    def value_column(self) -> str:
        """The first measurement's value column (the report's histograms), or ""."""
        for group in self.groups:
            for measurement in group.measurements:
                if measurement.value is not None and measurement.value.column:
                    return measurement.value.column
        return ""

    @property
    def value_unit(self) -> str:
        for group in self.groups:
            for measurement in group.measurements:
                if measurement.value is not None and measurement.value.column:
                    return measurement.unit.value
        return ""
