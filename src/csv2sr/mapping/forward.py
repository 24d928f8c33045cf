"""Cells -> :class:`~csv2sr.mapping.record.Record` for one row, by the profile.

:class:`Forward` is built once per profile (a plan of which parser reads which column and
which value each part of the record takes) and then maps each row: every column is parsed
by its type (:mod:`csv2sr.mapping.cells`), then the rules of the role a value plays are
applied (an instance UID is never under the DICOM root, PS3.5 9.1; the image's SOP class
must have a modality, PS3.16 CID 29; a Person Name made from a template is a valid PN,
PS3.5 6.2.1), then the record is made: identity, observer, groups with their measurements
and geometry (origin, base and fractions applied; derived values computed with the pixel
spacing).  Every problem of the row is returned, in the table's column order.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
from array import array
from collections.abc import Callable, Sequence
from typing import Any

from csv2sr.dicom import vr
from csv2sr.dicom.uids import derive_uid
from csv2sr.mapping.cells import Parsed, canonical, float32_text, parse_cell
from csv2sr.mapping.record import (
    Concept,
    Geometry,
    Geometry3D,
    Group,
    ImageRef,
    Measurement,
    Observer,
    Qualitative,
    Record,
    RowProblem,
)
from csv2sr.mapping.spec import (
    CodeSource,
    GeometrySpec,
    GroupSpec,
    MeasurementSpec,
    Source,
    Spec,
)

__all__ = ["Forward", "format_ds", "image_modality_problem"]

_GRAPHIC = {"point": "POINT", "line": "POLYLINE", "polyline": "POLYLINE",
            "polygon": "POLYLINE", "box": "POLYLINE", "ellipse": "ELLIPSE", "circle": "CIRCLE"}
"""Geometry type -> SCOORD Graphic Type (PS3.3 C.18.6.1.2; a 2D polygon is a closed
POLYLINE: POLYGON exists for SCOORD3D only)."""


class _RowFailedError(Exception):
    """A value of the row cannot be made (the problem is already recorded)."""


def format_ds(value: float) -> str:
    """A derived number as a DS (PS3.5 Table 6.2-1): the most digits that fit 16 bytes."""
    for digits in range(12, 0, -1):
        text = f"{value:.{digits}g}"
        if len(text) <= 16:
            return text
    return f"{value:.1g}"


def image_modality_problem(uid: str) -> str | None:
    """Why ``uid`` cannot be the SOP class of an annotated image, or None."""
    from csv2sr.dicom.codes import image_modality  # noqa: PLC0415  (highdicom, lazily)

    if image_modality(uid) is None:
        return "not an image storage SOP class with a known modality (PS3.4 B.5)"
    return None


class _Row:
    """One row being mapped: its parsed values and the problems found so far."""

    def __init__(self, cells: dict[str, str], spec: Spec) -> None:
        self.cells = cells
        self.spec = spec
        self.values: dict[str, Parsed] = {}
        self.problems: list[RowProblem] = []
        self.failed: set[str] = set()
        self.major_axis = ""
        """"width" or "height": an axis-aligned ellipse's major axis given (the inverse
        mapping solves with the stored order), else the longer of the two."""

    def problem(self, column: str, message: str, value: str | None = None) -> None:
        if column in self.failed:
            return
        self.failed.add(column)
        self.problems.append(RowProblem(
            column, message, self.cells.get(column, "") if value is None else value))

    def text(self, source: Source | None) -> str:
        """A value source as text (a template formats the parsed values)."""
        if source is None:
            return ""
        if source.column:
            self._check(source.column)
            return str(self.values[source.column])
        if source.template:
            for name in source.columns:
                self._check(name)
            return source.template.format(**{n: self.values[n] for n in source.columns})
        return source.const or ""

    def number(self, source: Source) -> float:
        if source.column:
            self._check(source.column)
            return float(self.values[source.column])  # type: ignore[arg-type]
        return float(self.text(source))

    def _check(self, column: str) -> None:
        if column in self.failed:
            raise _RowFailedError(column)

    def typed(self, column: str) -> Parsed:
        """The parsed value of a column (raises when the cell was refused)."""
        self._check(column)
        return self.values[column]

    def code(self, source: CodeSource | None, key: str) -> Concept | None:
        if source is None:
            return None
        if source.const is not None:
            return source.const
        self._check(source.column)
        cell = str(self.values[source.column])
        if cell not in source.map:
            self.problem(source.column, f"no code for this value in {key}.map "
                         f"(known: {', '.join(source.map)})")
            raise _RowFailedError(source.column)
        return source.map[cell]


class Forward:
    """The cells -> record mapping of one profile (build once, call per row)."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.order = {column: i for i, column in enumerate(spec.columns)}
        ident = spec.identity
        self.instance_columns = tuple(
            s.column for s in (ident.study_uid, ident.series_uid, ident.sop_instance_uid)
            if s is not None and s.column
        )
        self.class_column = ident.sop_class_uid.column if ident.sop_class_uid else ""
        self.person_templates: list[tuple[Source, str]] = []
        if spec.observer.type == "person" and spec.observer.name.template:
            self.person_templates.append((spec.observer.name, "the Person Observer Name"))
        if ident.patient_name is not None and ident.patient_name.template:
            self.person_templates.append((ident.patient_name, "the Patient's Name"))
        self.several_groups = len(spec.groups) > 1
        self.identity_geometry: dict[str, GeometrySpec] = {}
        """The geometry of each uid_identity column that is a geometry's (the first)."""
        for group in spec.groups:
            shapes = [m.geometry for m in group.measurements if m.geometry is not None]
            for shape in (*shapes, *((group.region,) if group.region else ())):
                for column in shape.columns:
                    if column in spec.document.uid_identity:
                        self.identity_geometry.setdefault(column, shape)

    # -- the row --

    def __call__(self, cells: dict[str, str], line: int) -> Record | list[RowProblem]:
        """The record of one row, or every problem found in it (in column order)."""
        row = _Row(cells, self.spec)
        for column, cell in self.spec.cells.items():
            try:
                row.values[column] = parse_cell(cells.get(column, ""), cell)
            except vr.VRError as exc:
                row.problem(column, str(exc))
        self._role_rules(row)
        record: Record | None = None
        with contextlib.suppress(_RowFailedError):  # the problem is recorded in the row
            record = self._record(row, line)
        if row.problems or record is None:
            return sorted(row.problems, key=lambda p: self.order.get(p.column, len(self.order)))
        return record

    def _role_rules(self, row: _Row) -> None:
        for column in self.instance_columns:
            if column not in row.failed:
                problem = vr.check_instance_uid(str(row.values[column]))
                if problem is not None:
                    row.problem(column, problem)
        if self.class_column and self.class_column not in row.failed:
            problem = image_modality_problem(str(row.values[self.class_column]))
            if problem is not None:
                row.problem(self.class_column, problem)
        for source, what in self.person_templates:
            if any(c in row.failed for c in source.columns):
                continue
            name = row.text(source)
            problem = vr.check_pn(name)
            if problem is not None:
                row.problem(source.columns[0],
                            f"{problem} once written as {what} {source.template!r}")

    def _record(self, row: _Row, line: int) -> Record:
        spec = self.spec
        ident = spec.identity
        image = ImageRef(
            sop_class_uid=row.text(ident.sop_class_uid),
            sop_instance_uid=row.text(ident.sop_instance_uid),
            series_uid=row.text(ident.series_uid),
        )
        identity = self._identity(row, image)
        groups = tuple(
            self._group(row, group, image, identity, i) for i, group in enumerate(spec.groups)
        )
        document = spec.document
        number = document.instance_number
        return Record(
            line=line,
            patient_id=row.text(ident.patient_id),
            patient_name=row.text(ident.patient_name),
            study_uid=row.text(ident.study_uid),
            study_date=row.text(ident.study_date),
            study_time=row.text(ident.study_time),
            # a row resolved through the index keeps its partial reference (the resolver
            # fills it); a row all in patient mm names no image until placed in its volume
            images=(image,) if image.sop_instance_uid or ident.resolved else (),
            observer=self._observer(row),
            content_datetime=self._when(row, document.content_datetime),
            groups=groups,
            identity=identity,
            instance_number=int(row.typed(number)) if number else None,  # type: ignore[arg-type]
            procedure=row.code(document.procedure, "document.procedure"),
            file_name=row.text(Source(template=document.file_name)),
            keys=tuple((c, self._canonical(row, c)) for c in spec.unique_columns),
            cells=row.cells,
            series_uid=image.series_uid,
        )

    def _identity(self, row: _Row, image: ImageRef) -> tuple[str, ...]:
        """The UID derivation parts of the row (:mod:`csv2sr.dicom.uids`): each
        ``uid_identity`` column's canonical value, except that a geometry column enters as
        what the SR stores of it, its geometry's points as 32-bit floats (FL, PS3.3
        C.18.6.1.2; each the shortest decimal of its float32) -- what ``export`` gives back
        exactly, so that a table read back from the SR derives the same UIDs again."""
        parts = []
        stored: dict[str, str] = {}
        for column in self.spec.document.uid_identity:
            shape = self.identity_geometry.get(column)
            if shape is None:
                parts.append(self._canonical(row, column))
                continue
            if shape.key not in stored:
                # a geometry in patient mm with its z (an SCOORD3D's x y z triplets)
                points = (self._geometry_3d(row, shape) if shape.patient
                          else self._geometry(row, shape, image)).points
                stored[shape.key] = " ".join(float32_text(v) for v in points)
            parts.append(stored[shape.key])
        return tuple(parts)

    def _canonical(self, row: _Row, column: str) -> str:
        row._check(column)
        return canonical(row.values[column], self.spec.cells[column])

    def _when(self, row: _Row, source: Source) -> dt.datetime:
        """Content Date/Time (PS3.3 C.17.2) in UTC: unix seconds or a DT YYYYMMDDHHMMSS."""
        if source.column and self.spec.cells[source.column].type == "unix_time":
            row._check(source.column)
            seconds = int(row.values[source.column])  # type: ignore[arg-type]
            return dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc)
        text = row.text(source)
        return dt.datetime.strptime(text[:14], "%Y%m%d%H%M%S").replace(tzinfo=dt.timezone.utc)

    def _observer(self, row: _Row) -> Observer:
        """TID 1002 person (rows 1-4) or TID 1004 device (rows 1-2)."""
        observer = self.spec.observer
        name = row.text(observer.name)
        if observer.type == "device":
            uid = row.text(observer.device_uid) or derive_uid("device", self.spec.name, name)
            return Observer("device", name, device_uid=uid)
        return Observer("person", name, row.text(observer.login),
                        row.code(observer.role, "observer.role"))

    def _group(self, row: _Row, group: GroupSpec, image: ImageRef,
               identity: tuple[str, ...], index: int) -> Group:
        """PS3.16 TID 1501 (tracking rows 2-3, finding, finding site, NUMs) or TID 1410
        (the same with the Image Region, row 7)."""
        parts = (*identity, str(index)) if self.several_groups else identity
        region: Geometry | Geometry3D | None = None
        if group.region is not None:
            region = (self._geometry_3d(row, group.region) if group.region.patient
                      else self._geometry(row, group.region, image))
        return Group(
            template=group.template,
            tracking_identifier=self._tracking(row, group),
            tracking_uid=derive_uid("tracking", self.spec.name, *parts),
            finding=row.code(group.finding, f"{group.key}.finding"),
            finding_site=row.code(group.finding_site, f"{group.key}.finding_site"),
            measurements=tuple(self._measurement(row, m, image, region)
                               for m in group.measurements),
            qualitative=tuple(
                Qualitative(q.concept, value) for q in group.qualitative
                if (value := row.code(q.value, f"{q.key}.value")) is not None
            ),
            region=region,
        )

    def _tracking(self, row: _Row, group: GroupSpec) -> str:
        """Tracking Identifier (TID 1501 row 2, TEXT): held to the LO rule of an identifier."""
        text = row.text(group.tracking_identifier)
        problem = vr.check_text("LO", text) if text else "empty"
        if problem is not None:
            column = (group.tracking_identifier.columns or ("(row)",))[0]
            row.problem(column, f"{problem} once written as the Tracking Identifier")
            raise _RowFailedError(column)
        return text

    def _measurement(self, row: _Row, spec: MeasurementSpec, image: ImageRef,
                     region: Geometry | Geometry3D | None) -> Measurement:
        geometry = self._geometry(row, spec.geometry, image) if spec.geometry else None
        if spec.value is not None:
            value = row.text(spec.value)
            column = spec.value.column
        else:
            shape = geometry or region
            assert isinstance(shape, Geometry)  # the loader derives from pixels only
            value = format_ds(self._derived(row, spec, shape))
            column = ""
        return Measurement(spec.concept, value, spec.unit, geometry, column)

    def _derived(self, row: _Row, spec: MeasurementSpec, shape: Geometry) -> float:
        """A measurement derived from the geometry in mm or mm2, with Pixel Spacing
        (row spacing, column spacing; PS3.3 C.7.6.2.1.1)."""
        spacing = self.spec.image.pixel_spacing
        assert spacing is not None
        rows_mm, columns_mm = (row.number(spacing[0]), row.number(spacing[1]))
        if rows_mm <= 0 or columns_mm <= 0:
            column = (spacing[0].columns or spacing[1].columns or ("(row)",))[0]
            row.problem(column, "a pixel spacing must be above 0")
            raise _RowFailedError(column)
        # the coordinates as the SR stores them (FL, PS3.3 C.18.6.1.2): the value agrees
        # with the SR's own geometry, and a table read back from the SR gives it again
        points = array("f", shape.points)
        xs = [points[i] * columns_mm for i in range(0, len(points), 2)]
        ys = [points[i] * rows_mm for i in range(1, len(points), 2)]
        kind = shape.graphic_type
        if spec.derive == "length":
            return sum(math.hypot(xs[i + 1] - xs[i], ys[i + 1] - ys[i])
                       for i in range(len(xs) - 1))
        if kind == "CIRCLE":
            radius_x, radius_y = abs(xs[1] - xs[0]), abs(ys[1] - ys[0])
            radius_px = math.hypot(points[2] - points[0], points[3] - points[1])
            if spec.derive == "diameter":
                if not math.isclose(rows_mm, columns_mm):
                    column = (self.spec.image.pixel_spacing[0].columns or ("(row)",))[0]  # type: ignore[index]
                    row.problem(column, "the diameter of a circle needs square pixels")
                    raise _RowFailedError(column)
                return 2 * radius_px * columns_mm
            del radius_x, radius_y
            return math.pi * radius_px * radius_px * rows_mm * columns_mm
        if kind == "ELLIPSE":
            major = math.hypot(xs[1] - xs[0], ys[1] - ys[0]) / 2
            minor = math.hypot(xs[3] - xs[2], ys[3] - ys[2]) / 2
            return math.pi * major * minor
        # a closed POLYLINE (box, polygon): the shoelace formula
        return abs(sum(xs[i] * ys[i + 1] - xs[i + 1] * ys[i] for i in range(len(xs) - 1))) / 2

    # -- geometry --

    def points_of(self, spec: GeometrySpec, values: dict[str, float],
                  major_axis: str = "") -> list[float]:
        """A geometry's DICOM points from typed values by column (what the inverse
        mapping checks its answers with: the same arithmetic as a row's); ``major_axis``
        ("width" or "height") fixes an axis-aligned ellipse's order of axes."""
        row = _Row({}, self.spec)
        row.values.update(values)
        row.major_axis = major_axis
        try:
            flat = _GEOMETRY_MAKERS[spec.type](self, row, spec)
        except _RowFailedError as exc:
            raise ValueError(f"{exc}: out of range") from None
        shift = spec.shift
        return [v + shift for v in flat] if shift else list(flat)

    def _geometry(self, row: _Row, spec: GeometrySpec, image: ImageRef) -> Geometry:
        """A geometry in DICOM pixel coordinates (PS3.3 C.18.6.1.1): the profile's origin
        and base applied, fractions scaled by the image size."""
        flat = _GEOMETRY_MAKERS[spec.type](self, row, spec)
        shift = spec.shift
        points = tuple(v + shift for v in flat) if shift else tuple(flat)
        _check_fl(row, spec, points)
        return Geometry(_GRAPHIC[spec.type], points, image, spec.columns)

    def _geometry_3d(self, row: _Row, spec: GeometrySpec) -> Geometry3D:
        """Points in patient millimetres (PS3.3 C.7.6.2.1.1) as an SCOORD3D (PS3.3
        C.18.9.1.2: POINT, POLYLINE, or POLYGON, whose last vertex is its first), each
        coordinate an FL (Graphic Data, PS3.3 C.18.9.1.1); its Frame of Reference comes
        from the source images (:mod:`csv2sr.images.volume`)."""
        flat: list[float] = []
        for (x, y), z in zip(spec.points, spec.zs, strict=True):
            flat.extend((row.number(x), row.number(y), row.number(z)))
        if spec.type == "polygon" and flat[:3] != flat[-3:]:
            flat.extend(flat[:3])
        _check_fl(row, spec, flat)
        return Geometry3D(spec.graphic_type_3d, tuple(flat), columns=spec.columns)

    def _pairs(self, row: _Row, pairs: Sequence[tuple[Source, Source]]) -> list[float]:
        flat: list[float] = []
        for x, y in pairs:
            flat.extend((row.number(x), row.number(y)))
        return flat

    def _positive(self, row: _Row, spec: GeometrySpec, source: Source | None,
                  what: str) -> float:
        assert source is not None
        value = row.number(source)
        if value <= 0:
            column = (source.columns or ("(row)",))[0]
            row.problem(column, f"the {what} of a {spec.type} must be above 0")
            raise _RowFailedError(column)
        return value

    def _simple(self, row: _Row, spec: GeometrySpec) -> list[float]:
        return self._pairs(row, spec.points)

    def _path(self, row: _Row, spec: GeometrySpec) -> list[float]:
        row._check(spec.column)
        flat = [float(v) for v in row.values[spec.column]]  # type: ignore[union-attr]
        if spec.type == "polygon" and flat[:2] != flat[-2:]:
            flat.extend(flat[:2])  # closed: the last point is the first (PS3.3 C.18.6.1.2)
        return flat

    def _box(self, row: _Row, spec: GeometrySpec) -> list[float]:
        """A box as a closed 5-point POLYLINE: (x0,y0) (x1,y0) (x1,y1) (x0,y1) (x0,y0)."""
        if spec.form == "corners":
            x0, y0, x1, y1 = self._pairs(row, spec.points)
        else:
            width = self._positive(row, spec, spec.width, "width")
            height = self._positive(row, spec, spec.height, "height")
            if spec.form == "center":
                cx, cy = self._pairs(row, spec.points)
                x0, y0 = cx - width / 2, cy - height / 2
            else:
                assert spec.x is not None and spec.y is not None
                x0, y0 = row.number(spec.x), row.number(spec.y)
            x1, y1 = x0 + width, y0 + height
        if spec.units == "fraction" and self.spec.image.columns is not None:
            # without [image] columns and rows, the size is the image's own (Rows,
            # Columns): csv2sr.images.resolve scales the fractions once it is found
            columns, rows = self._image_size(row)
            x0, x1, y0, y1 = x0 * columns, x1 * columns, y0 * rows, y1 * rows
        return [x0, y0, x1, y0, x1, y1, x0, y1, x0, y0]

    def _image_size(self, row: _Row) -> tuple[float, float]:
        image = self.spec.image
        assert image.columns is not None and image.rows is not None
        return row.number(image.columns), row.number(image.rows)

    def _ellipse(self, row: _Row, spec: GeometrySpec) -> list[float]:
        """ELLIPSE: major axis ends, then minor axis ends (PS3.3 C.18.6.1.2); the
        axis-aligned form puts the major axis along the longer of width and height."""
        if spec.form == "points":
            return self._pairs(row, spec.points)
        cx, cy = self._pairs(row, spec.points)
        half_w = self._positive(row, spec, spec.width, "width") / 2
        half_h = self._positive(row, spec, spec.height, "height") / 2
        across = [cx - half_w, cy, cx + half_w, cy]
        down = [cx, cy - half_h, cx, cy + half_h]
        horizontal = row.major_axis == "width" if row.major_axis else half_w >= half_h
        return across + down if horizontal else down + across

    def _circle(self, row: _Row, spec: GeometrySpec) -> list[float]:
        """CIRCLE: the centre, then a point on the circle (PS3.3 C.18.6.1.2)."""
        if spec.form == "point":
            return self._pairs(row, spec.points)
        cx, cy = self._pairs(row, spec.points)
        radius = self._positive(row, spec, spec.radius, spec.form)
        if spec.form == "diameter":
            radius /= 2
        return [cx, cy, cx + radius, cy]


_GEOMETRY_MAKERS: dict[str, Callable[[Forward, Any, GeometrySpec], list[float]]] = {
    "point": Forward._simple, "line": Forward._simple, "polyline": Forward._path,
    "polygon": Forward._path, "box": Forward._box, "ellipse": Forward._ellipse,
    "circle": Forward._circle,
}


def _check_fl(row: _Row, spec: GeometrySpec, values: Sequence[float]) -> None:
    """Every coordinate fits an FL (Graphic Data of SCOORD and SCOORD3D, PS3.3 C.18.6.1.2,
    C.18.9.1.1), else the row fails on the geometry's first column."""
    for value in values:
        problem = vr.check_fl(value)
        if problem is not None:
            column = (spec.columns or ("(row)",))[0]
            row.problem(column, f"{problem} (a coordinate of {spec.key})")
            raise _RowFailedError(column)
