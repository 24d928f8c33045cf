"""A record read from an SR -> the profile's cells: the inverse of :mod:`csv2sr.mapping.forward`.

Each column's role in the profile says where its value comes back from: identity columns
from the header and the referenced image, the observer from TID 1002 (a name template is
parsed back), a tracking template from the Tracking Identifier, enumerations mapped to
codes from the code (maps reversed; SNOMED-RT read as SNOMED CT), measurement values as
written, geometry from the SCOORD points (origin, base and fractions undone; each number
the shortest decimal that gives the same 32-bit float, PS3.3 C.18.6.1.2), ``unix_time``
from Content Date/Time, ``spreadsheet_day`` recomputed, ``ignore`` left empty.  A column
with several roles takes the first that gives a value.  What cannot be given back is
returned as a problem (the cell stays empty), never guessed.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from csv2sr.dicom.ohif import row_identifier
from csv2sr.mapping.cells import float32_text
from csv2sr.mapping.record import Concept, Geometry, Geometry3D, Group, ImageRef, Record
from csv2sr.mapping.spec import CellSpec, CodeSource, GeometrySpec, SliceSpec, Source, Spec

if TYPE_CHECKING:
    from csv2sr.images.index import ImageIndex

__all__ = ["Inverse", "float32_text", "shortest", "spreadsheet_serial"]

SPREADSHEET_EPOCH = dt.date(1899, 12, 30)
"""Day 0 of spreadsheet serial dates."""

Getter = Callable[[Record], str | None]
Identity = Callable[[Concept], tuple[str, str]]


def shortest(target: float, forward: Callable[[float], float]) -> str:
    """The shortest decimal ``t`` with ``float32(forward(t)) == float32(target)``: a
    table coordinate back from a stored one when the profile computed it (an origin shift,
    a fraction, a box's width)."""
    goal = np.float32(target)
    guess = _solve(target, forward)
    for digits in range(0, 18):
        text = np.format_float_positional(guess, precision=digits, unique=False, trim="-")
        if np.float32(forward(float(text))) == goal:
            return str(text)
    return repr(guess)


def _solve(target: float, forward: Callable[[float], float]) -> float:
    """``forward`` is affine: invert it from two points."""
    zero, one = forward(0.0), forward(1.0)
    slope = one - zero
    return (target - zero) / slope if slope else target


def spreadsheet_serial(unix_seconds: str) -> str:
    """The UTC day of a Unix time as a spreadsheet serial (days since 1899-12-30)."""
    day = dt.datetime.fromtimestamp(float(unix_seconds), tz=dt.timezone.utc).date()
    return str((day - SPREADSHEET_EPOCH).days)


def _template_parser(template: str) -> Callable[[str], dict[str, str] | None]:
    """Parse a ``"{a}^{b}"`` template back into its fields (``{n:04d}`` as an integer)."""
    pattern = ""
    position = 0
    fields: list[tuple[str, str]] = []
    for match in re.finditer(r"\{([^{}:!]+)(?::([^{}]*))?\}", template):
        pattern += re.escape(template[position:match.start()])
        name, spec = match.group(1), match.group(2) or ""
        fields.append((name, spec))
        pattern += f"(?P<f{len(fields) - 1}>-?[0-9]+)" if spec.endswith("d") else \
            f"(?P<f{len(fields) - 1}>.*?)"
        position = match.end()
    pattern += re.escape(template[position:])
    literal = re.sub(r"\{[^{}]*\}", "", template)
    compiled = re.compile(pattern, re.S)

    def parse(text: str) -> dict[str, str] | None:
        match = compiled.fullmatch(text)
        if match is None and len(fields) == 1:
            # a writer that left out the template's fixed parts (a name without its '^')
            stripped = text
            for part in (literal,):
                if part and stripped.endswith(part):
                    stripped = stripped[: -len(part)]
            return {fields[0][0]: stripped}
        if match is None:
            return None
        return {name: str(int(match.group(f"f{i}"))) if spec.endswith("d")
                else match.group(f"f{i}") for i, (name, spec) in enumerate(fields)}

    return parse


_WANTED = {
    "point": "a one-point SCOORD POINT", "line": "a two-point SCOORD line (POLYLINE)",
    "polyline": "an SCOORD POLYLINE", "polygon": "a closed SCOORD POLYLINE",
    "box": "a closed 5-point SCOORD POLYLINE (box)", "ellipse": "a 4-point SCOORD ELLIPSE",
    "circle": "a 2-point SCOORD CIRCLE",
}


_DIRECT = {("point", ""), ("line", ""), ("ellipse", "points"), ("circle", "point")}
"""Geometry forms whose columns are the stored numbers themselves."""


class Inverse:
    """The record -> cells mapping of one profile (build once, call per record)."""

    def __init__(self, spec: Spec, identity: Identity | None = None,
                 images: ImageIndex | None = None) -> None:
        self.spec = spec
        self.identity = identity or (lambda c: (c.value, c.scheme))
        self.images = images
        """The source images: the slice columns of identity.image.slice are given back
        through them (the SR names the instance, not its slice number)."""
        self.getters: dict[str, list[tuple[str, Getter]]] = {c: [] for c in spec.columns}
        self.geometry: list[tuple[int, int, GeometrySpec]] = []
        """(group, measurement or -1 for the region, spec) of every geometry."""
        self._forward: Any = None
        self._plan()

    # -- the plan: where each column comes back from --

    def _put(self, column: str, role: str, getter: Getter) -> None:
        if column not in self.getters:  # a column a join provides: not the table's
            return
        self.getters[column].append((role, getter))

    def _source(self, source: Source | None, role: str, value: Getter) -> None:
        if source is None or source.const is not None:
            return
        if source.column:
            self._put(source.column, role, value)
            return
        parse = _template_parser(source.template)
        for name in source.columns:
            def field(record: Record, name: str = name) -> str | None:
                text = value(record)
                parsed = parse(text) if text else None
                return None if parsed is None else parsed.get(name)
            self._put(name, f"{role} (template {source.template!r})", field)

    def _code(self, source: CodeSource | None, role: str,
              value: Callable[[Record], Concept | None]) -> None:
        if source is None or not source.column:
            return
        reverse = {self.identity(c) if c is not None else None: cell
                   for cell, c in reversed(list(source.map.items()))}

        def cell(record: Record) -> str | None:
            code = value(record)
            return reverse.get(self.identity(code) if code is not None else None)
        self._put(source.column, role, cell)

    def _plan(self) -> None:
        spec = self.spec
        ident = spec.identity
        self._source(ident.patient_id, "identity.patient_id", lambda r: r.patient_id)
        self._source(ident.patient_name, "identity.patient_name", lambda r: r.patient_name)
        self._source(ident.study_uid, "identity.study_uid", lambda r: r.study_uid)
        self._source(ident.study_date, "identity.study_date", lambda r: r.study_date)
        self._source(ident.study_time, "identity.study_time", lambda r: r.study_time)
        self._source(ident.series_uid, "identity.series_uid",
                     lambda r: (i.series_uid if (i := _image(r)) else r.series_uid or None))
        self._source(ident.sop_instance_uid, "identity.sop_instance_uid",
                     lambda r: (i.sop_instance_uid if (i := _image(r)) else None))
        self._source(ident.sop_class_uid, "identity.sop_class_uid",
                     lambda r: (i.sop_class_uid if (i := _image(r)) else None))
        self._resolved()
        if spec.document.instance_number:
            self._put(spec.document.instance_number, "document.instance_number",
                      lambda r: None if r.instance_number is None else str(r.instance_number))
        self._when(spec.document.content_datetime)
        observer = spec.observer
        self._source(observer.login, "observer.login", lambda r: r.observer.login)
        self._source(observer.name, "observer.name", lambda r: r.observer.name)
        self._code(observer.role, "observer.role", lambda r: r.observer.role)
        self._source(observer.device_uid, "observer.device_uid",
                     lambda r: r.observer.device_uid)
        for g, group in enumerate(spec.groups):
            self._source(group.tracking_identifier, f"{group.key}.tracking_identifier",
                         _tracking_text(g))
            self._code(group.finding, f"{group.key}.finding", _group_code(g, "finding"))
            self._code(group.finding_site, f"{group.key}.finding_site",
                       _group_code(g, "finding_site"))
            for m, measurement in enumerate(group.measurements):
                self._source(measurement.value, f"{measurement.key}.value",
                             _measurement_value(g, m))
                if measurement.geometry is not None:
                    self.geometry.append((g, m, measurement.geometry))
            for qualitative in group.qualitative:
                self._code(qualitative.value, f"{qualitative.key}.value",
                           self._evaluation(g, self.identity(qualitative.concept)))
            if group.region is not None:
                self.geometry.append((g, -1, group.region))

    def _resolved(self) -> None:
        """[identity.image]: the frame column from the Referenced Frame Number (PS3.3
        C.18.4, Table C.18.4-1; the profile's base undone), and with the source images the
        slice columns from the referenced instances (:meth:`ImageIndex.slice_value`): the
        first image of the record, and for a slice range the last region of its 3D group
        (TID 1411, or the TID 1410 groups of one box); a 3D group whose regions are not
        one box on several slices gives no last slice."""
        resolve = self.spec.identity.image
        if resolve is None:
            return
        if resolve.frame is not None:
            base = resolve.frame.base

            def frame(record: Record) -> str | None:
                image = _image(record)
                return str(image.frames[0] - 1 + base) if image and image.frames else None
            self._put(resolve.frame.column, "identity.image.frame", frame)
        part = resolve.slice
        if part is None or self.images is None:
            return
        self._put(part.column, "identity.image.slice.column", self._slice(part, 0))
        if part.last:
            self._put(part.last, "identity.image.slice.last", self._slice(part, -1))

    def _slice(self, part: SliceSpec, which: int) -> Getter:
        """The slice of the record's first (``which`` 0) or last (-1) image, in the terms
        of ``part``: an index or Instance Number as an integer, a z as the shortest decimal
        (of its 32-bit float for a coordinate column)."""
        images = self.images
        coordinate = self.spec.cells[part.column].type == "coordinate"

        def value(record: Record) -> str | None:
            from csv2sr.images.index import ImageLookupError  # noqa: PLC0415

            image = self._slice_image(record, which)
            if images is None or image is None:
                return None
            try:
                found = images.slice_value(image.sop_instance_uid,
                                           by=part.by, order=part.order, base=part.base)
            except ImageLookupError:
                return None
            if part.by != "z":
                return str(int(found))
            if coordinate:
                return float32_text(found)
            return str(np.format_float_positional(found, trim="-"))
        return value

    def _slice_image(self, record: Record, which: int) -> ImageRef | None:
        """The record's first image (``which`` 0), or the last slice (-1) of its first 3D
        group (its ``regions``; None when it has none)."""
        if which == 0:
            return _image(record)
        for g, group_spec in enumerate(self.spec.groups):
            if group_spec.template == "1411" or group_spec.per_slice:
                group = _group(record, g)
                if group is None or not group.regions:
                    return None
                return group.regions[-1].image
        return record.images[-1] if record.images else None

    def _evaluation(self, g: int, concept: tuple[str, str]) -> Callable[[Record],
                                                                         Concept | None]:
        """The value of group ``g``'s evaluation of ``concept`` (TID 1501 row 11)."""
        def value(record: Record) -> Concept | None:
            group = _group(record, g)
            for found in group.qualitative if group is not None else ():
                if self.identity(found.concept) == concept:
                    return found.value
            return None
        return value

    def _when(self, source: Source) -> None:
        if not source.column:
            return
        column = source.column
        if self.spec.cells[column].type == "unix_time":
            self._put(column, "document.content_datetime",
                      lambda r: str(int(r.content_datetime.timestamp())))
        else:
            self._put(column, "document.content_datetime",
                      lambda r: r.content_datetime.strftime("%Y%m%d%H%M%S"))

    # -- a record --

    def cells(self, record: Record) -> tuple[dict[str, str] | None, list[str]]:
        """The row of ``record`` in the profile's columns (None when a measurement or a
        geometry of the profile is not in the SR: no row), and what could not be given
        back."""
        problems: list[str] = []
        fatal: list[str] = []
        cells = dict.fromkeys(self.spec.columns, "")
        for column, roles in self.getters.items():
            for _role, getter in roles:
                value = getter(record)
                if value:
                    cells[column] = value
                    break
        solved: set[str] = set()  # a column several geometries share: the first solves it
        for g, m, geometry in self.geometry:
            group = record.groups[g] if g < len(record.groups) else None
            shape: Geometry | Geometry3D | None = None
            if group is not None:
                numbers = group.measurements
                if m < 0:
                    # a TID 1501 group read for a region: its first NUM's SCOORD
                    shape = group.region or next(
                        (n.geometry for n in numbers if n.geometry is not None), None)
                elif m < len(numbers):
                    # a TID 1410 group read for a NUM's own SCOORD: the group's region
                    shape = numbers[m].geometry or group.region
            try:
                if shape is None:
                    raise ValueError("the SR has no SCOORD")
                found = self._geometry(geometry, shape, cells, solved)
                cells.update(found)
                solved.update(found)
            except ValueError as exc:
                fatal.append(f"{exc} where {geometry.key} needs {_WANTED[geometry.type]}: "
                             "no row")
        for column, cell in self.spec.cells.items():
            if cell.type == "spreadsheet_day" and cells.get(cell.of):
                cells[column] = spreadsheet_serial(cells[cell.of])
        for column, cell in self.spec.cells.items():
            if column not in cells:  # a column a join provides: export does not write it
                continue
            if not cells[column] and cell.type not in ("ignore", "spreadsheet_day") \
                    and not cell.optional and self.getters[column] \
                    and not any(column in g.columns for _, _, g in self.geometry):
                problems.append(f"no value for {column} in the SR: left empty")
        if fatal:
            return None, fatal
        return cells, problems

    # -- geometry back to cells --

    def _number(self, source: Source | None, cells: dict[str, str]) -> float:
        assert source is not None
        if source.const is not None:
            return float(source.const)
        text = cells.get(source.column, "")
        if not text:
            raise ValueError(f"{source.column} is needed to read the geometry back")
        return float(text)

    def _geometry(self, spec: GeometrySpec, shape: Geometry | Geometry3D,
                  cells: dict[str, str], solved: set[str]) -> dict[str, str]:
        """The geometry's columns from the stored points: each the shortest decimal for
        which the profile's own forward mapping gives the same 32-bit floats."""
        if spec.patient or isinstance(shape, Geometry3D):
            return _patient_point(spec, shape)
        kinds = {"point": ("POINT", 2), "line": ("POLYLINE", 4), "box": ("POLYLINE", 10),
                 "ellipse": ("ELLIPSE", 8), "circle": ("CIRCLE", 4)}
        points = shape.points
        if spec.type in kinds:
            wanted, count = kinds[spec.type]
            if shape.graphic_type != wanted or len(points) != count:
                raise ValueError(f"the SR has a {shape.graphic_type} of {len(points) // 2} "
                                 "point(s)")
        elif shape.graphic_type != "POLYLINE":
            raise ValueError(f"the SR has a {shape.graphic_type}")
        if spec.type in ("polyline", "polygon"):
            flat = list(points)
            if spec.type == "polygon" and len(flat) >= 4 and flat[:2] == flat[-2:]:
                flat = flat[:-2]
            shift = spec.shift
            return {spec.column: " ".join(shortest(v, lambda t: t + shift) for v in flat)}
        if not spec.shift and (spec.type, spec.form) in _DIRECT:
            # each column is one stored number: its shortest float32 decimal
            direct: dict[str, str] = {}
            for i, (x, y) in enumerate(spec.points):
                for source, value in ((x, points[2 * i]), (y, points[2 * i + 1])):
                    if source.column and source.column not in solved:
                        direct[source.column] = float32_text(value)
            return direct
        unknowns = list(dict.fromkeys(s.column for s in _sources(spec)
                                      if s.column and s.column not in solved))
        known = {name: float(cells[name]) for name in self._known(spec, cells)}
        known.update((name, float(cells[name])) for name in solved if name in spec.columns)
        scale = (1.0, 1.0)
        if spec.units == "fraction":
            image = self.spec.image
            if image.columns is None or image.rows is None:
                # the size was the image's own (csv2sr.images.resolve): not in the SR
                raise ValueError("the box is in fractions of the image's own size, which "
                                 "the profile's [image] does not give")
            scale = (_number(image.columns, known), _number(image.rows, known))
        estimate = {name: _clamped(self.spec.cells[name], value)
                    for name, value in _estimate(spec, points, scale).items()
                    if name in unknowns}
        target = np.asarray(points, dtype=np.float32)
        if spec.type != "ellipse":
            return _solve_cells(self._points_of(spec), unknowns, estimate, known, target)
        # an axis-aligned ellipse stores its major axis first, the longer of width and
        # height (width when they are equal): solve in the stored order, then keep the
        # answer on the side of width >= height that gives that order again
        major = "width" if _horizontal(points) else "height"
        points_of = self._points_of(spec, major)
        found = _solve_cells(points_of, unknowns, estimate, known, target)
        return _ordered_axes(points_of, spec, found, known, target, major)

    def _known(self, spec: GeometrySpec, cells: dict[str, str]) -> list[str]:
        """Columns the geometry needs that it does not give back (the image size)."""
        if spec.units != "fraction":
            return []
        found = []
        for source in (self.spec.image.columns, self.spec.image.rows):
            if source is not None and source.column:
                if not cells.get(source.column):
                    raise ValueError(f"{source.column} is needed to read the box back")
                found.append(source.column)
        return found

    def _points_of(self, spec: GeometrySpec,
                   major_axis: str = "") -> Callable[[dict[str, float]], np.ndarray]:
        """The forward mapping of one geometry, on typed values by column (float64: what
        the SR stores is its float32 rounding); ``major_axis`` fixes an ellipse's order of
        axes (:meth:`csv2sr.mapping.forward.Forward.points_of`)."""
        from csv2sr.mapping.forward import Forward  # noqa: PLC0415

        forward = self._forward or Forward(self.spec)
        self._forward = forward

        cells = self.spec.cells

        def points(values: dict[str, float]) -> np.ndarray:
            for name in spec.columns:
                if name in values and not _in_range(cells[name], values[name]):
                    raise ValueError(f"{name} out of its range")
            return np.asarray(forward.points_of(spec, values, major_axis), dtype=np.float64)
        return points


def _patient_point(spec: GeometrySpec, shape: Geometry | Geometry3D) -> dict[str, str]:
    """Points in patient mm from an SCOORD3D (PS3.3 C.18.9.1.2) of the profile's Graphic
    Type and vertex count (a POLYGON's closing vertex dropped): each coordinate the
    shortest decimal of its 32-bit float (Graphic Data is FL)."""
    if not spec.patient:
        raise ValueError(f"the SR has an SCOORD3D {shape.graphic_type}, not pixels")
    if not isinstance(shape, Geometry3D):
        raise ValueError("the SR has an SCOORD (pixels), not patient coordinates")
    points = list(shape.points)
    if (shape.graphic_type == "POLYGON" and len(points) == 3 * (len(spec.points) + 1)
            and points[:3] == points[-3:]):
        del points[-3:]  # the vertex convert added (a table may write it itself)
    wanted = spec.graphic_type_3d
    if shape.graphic_type != wanted or len(points) != 3 * len(spec.points):
        raise ValueError(f"the SR has an SCOORD3D {shape.graphic_type} of "
                         f"{len(points) // 3} point(s), not a {wanted} of {len(spec.points)}")
    sources = [source for (x, y), z in zip(spec.points, spec.zs, strict=True)
               for source in (x, y, z)]
    return {source.column: float32_text(value)
            for source, value in zip(sources, points, strict=True) if source.column}


def _image(record: Record) -> ImageRef | None:
    return record.images[0] if record.images else None


def _group(record: Record, g: int) -> Group | None:
    return record.groups[g] if g < len(record.groups) else None


def _tracking_text(g: int) -> Getter:
    """Group ``g``'s Tracking Identifier without the Cornerstone3D prefix of
    ``convert --ohif`` (:func:`csv2sr.dicom.ohif.row_identifier`)."""
    def value(record: Record) -> str | None:
        group = _group(record, g)
        return None if group is None else row_identifier(group.tracking_identifier)
    return value


def _group_code(g: int, name: str) -> Callable[[Record], Concept | None]:
    def value(record: Record) -> Concept | None:
        group = _group(record, g)
        code: Concept | None = None if group is None else getattr(group, name)
        return code
    return value


def _measurement_value(g: int, m: int) -> Getter:
    def value(record: Record) -> str | None:
        group = _group(record, g)
        if group is None or m >= len(group.measurements):
            return None
        return group.measurements[m].value
    return value


def _clamped(cell: CellSpec, value: float) -> float:
    """``value`` moved inside the cell's bounds (an estimate a rounding put outside)."""
    if cell.minimum is not None:
        value = max(value, cell.minimum)
    if cell.maximum is not None:
        value = min(value, cell.maximum)
    if cell.greater_than is not None and value <= cell.greater_than:
        value = float(np.nextafter(cell.greater_than, math.inf))
    return value


def _in_range(cell: CellSpec, value: float) -> bool:
    """The bounds the profile puts on a cell (what convert would check)."""
    return not ((cell.minimum is not None and value < cell.minimum)
                or (cell.maximum is not None and value > cell.maximum)
                or (cell.greater_than is not None and value <= cell.greater_than))


def _sources(spec: GeometrySpec) -> list[Source]:
    found: list[Source] = []
    for x, y in spec.points:
        found.extend((x, y))
    found.extend(s for s in (spec.x, spec.y, spec.width, spec.height, spec.radius) if s)
    return found


def _number(source: Source | None, known: dict[str, float]) -> float:
    assert source is not None
    return float(source.const) if source.const is not None else known[source.column]


def _estimate(spec: GeometrySpec, points: tuple[float, ...],
              scale: tuple[float, float]) -> dict[str, float]:
    """A float64 inverse of the forward mapping (refined by :func:`_solve_cells`)."""
    s = spec.shift
    out: dict[str, float] = {}

    def put(source: Source | None, value: float) -> None:
        if source is not None and source.column:
            out[source.column] = value

    if spec.type in ("point", "line") or (spec.type, spec.form) in (
            ("ellipse", "points"), ("circle", "point")):
        for i, (x, y) in enumerate(spec.points):
            put(x, points[2 * i] - s)
            put(y, points[2 * i + 1] - s)
        return out
    if spec.type == "box":
        sx, sy = scale
        x0, y0, x1, y1 = ((points[0] - s) / sx, (points[1] - s) / sy,
                          (points[4] - s) / sx, (points[5] - s) / sy)
        if spec.form == "corners":
            (ax, ay), (bx, by) = spec.points
            put(ax, x0)
            put(ay, y0)
            put(bx, x1)
            put(by, y1)
        elif spec.form == "xywh":
            put(spec.x, x0)
            put(spec.y, y0)
            put(spec.width, x1 - x0)
            put(spec.height, y1 - y0)
        else:
            (cx, cy), = spec.points
            put(cx, (x0 + x1) / 2)
            put(cy, (y0 + y1) / 2)
            put(spec.width, x1 - x0)
            put(spec.height, y1 - y0)
        return out
    if spec.type == "ellipse":
        (cx, cy), = spec.points
        horizontal = _horizontal(points)
        major = math.hypot(points[2] - points[0], points[3] - points[1])
        minor = math.hypot(points[6] - points[4], points[7] - points[5])
        # the centre is stored itself: across = (cx - w/2, cy, cx + w/2, cy) and
        # down = (cx, cy - h/2, cx, cy + h/2), the major axis first
        put(cx, (points[4] if horizontal else points[0]) - s)
        put(cy, (points[1] if horizontal else points[5]) - s)
        put(spec.width, major if horizontal else minor)
        put(spec.height, minor if horizontal else major)
        return out
    (cx, cy), = spec.points[:1]
    put(cx, points[0] - s)
    put(cy, points[1] - s)
    radius = math.hypot(points[2] - points[0], points[3] - points[1])
    put(spec.radius, radius * 2 if spec.form == "diameter" else radius)
    return out


def _horizontal(points: tuple[float, ...]) -> bool:
    """Whether an axis-aligned ELLIPSE stores its horizontal axis first (PS3.3
    C.18.6.1.2: the major axis is the first pair of points)."""
    return abs(points[1] - points[3]) < abs(points[0] - points[2])


def _ordered_axes(points_of: PointsOf, spec: GeometrySpec, found: dict[str, str],
                  known: dict[str, float], target: np.ndarray, major: str) -> dict[str, str]:
    """``found`` with width and height that the forward mapping puts in the stored order:
    width >= height when the width is the major axis, width < height when the height is.

    Width and height each come back as the shortest decimal of their own float32 window
    (solved in the stored order); two near-equal axes (a circle-like ellipse, width ==
    height) may give a pair on the wrong side, which the forward mapping would swap.  The
    original pair was on the right side, so the windows then overlap: a width-major
    ellipse takes the shortest decimal of the overlap for both, a height-major one the
    shortest width below the shortest height above it."""
    width = spec.width.column if spec.width else ""
    height = spec.height.column if spec.height else ""
    if width not in found or height not in found:
        return found
    w, h = float(found[width]), float(found[height])
    if (w >= h) == (major == "width"):
        return found
    values = {**known, **{n: float(t) for n, t in found.items()}}

    def window(name: str) -> tuple[float, float]:
        def fits(value: float) -> bool:
            try:
                return bool(np.array_equal(_stored(points_of, {**values, name: value}),
                                           target))
            except (ValueError, OverflowError):
                return False
        inside = values[name]
        return _edge(fits, inside, -1.0), _edge(fits, inside, 1.0)

    (low_w, high_w), (low_h, high_h) = window(width), window(height)
    if major == "width":
        both = next(_decimals_between(max(low_w, low_h), min(high_w, high_h), cap=1), None)
        return found if both is None else {**found, width: both, height: both}
    for w_text in _decimals_between(low_w, min(high_w, high_h), cap=200):
        above = float(np.nextafter(float(w_text), math.inf))
        h_text = next(_decimals_between(max(low_h, above), high_h, cap=1), None)
        if h_text is not None and float(h_text) > float(w_text):
            return {**found, width: w_text, height: h_text}
    return found


def _candidates(value: float) -> list[str]:
    """Decimals near ``value``, shortest first: at each number of decimal places the
    rounding and its two neighbours, then ``repr`` and its float64 neighbours."""
    found: list[str] = []
    with decimal.localcontext() as context:
        context.prec = 80
        exact = decimal.Decimal(repr(value))
        for places in range(18):
            step = decimal.Decimal(1).scaleb(-places)
            rounded = exact.quantize(step, rounding=decimal.ROUND_HALF_EVEN)
            for near in (rounded, rounded - step, rounded + step):
                text = format(near, "f")
                if "." in text:
                    text = text.rstrip("0").rstrip(".")
                found.append("0" if text in ("-0", "") else text)
    here = value
    found.append(repr(here))
    for direction in (math.inf, -math.inf):
        here = value
        for _ in range(3):
            here = float(np.nextafter(here, direction))
            found.append(repr(here))
    return list(dict.fromkeys(found))


PointsOf = Callable[[dict[str, float]], np.ndarray]


def _depends(points_of: PointsOf, unknowns: list[str], estimate: dict[str, float],
             known: dict[str, float]) -> dict[str, set[int]]:
    """Which stored numbers each unknown column moves (numerically: nudge it)."""
    base = points_of({**known, **estimate})
    found: dict[str, set[int]] = {}
    for name in unknowns:
        step = max(abs(estimate[name]), 1.0) / 64
        sets = []
        for nudge in (step, -step):  # both ways: an ellipse whose width passes its height
            try:                     # swaps its axes one way only
                moved = points_of({**known, **estimate, name: estimate[name] + nudge}) != base
            except ValueError:
                continue  # beyond the cell's range
            sets.append({int(i) for i in np.flatnonzero(moved)})
        if not sets:
            raise ValueError(f"{name} cannot move")
        found[name] = set.intersection(*sets)
    return found


def _solve_cells(points_of: PointsOf, unknowns: list[str], estimate: dict[str, float],
                 known: dict[str, float], target: np.ndarray) -> dict[str, str]:
    """Decimals for the unknown columns whose forward mapping gives ``target`` exactly,
    each as short as it can be.  Columns that move the same stored numbers (a box's x and
    its width) are solved together: first one at a time, a column that alone moves some
    numbers (the x) before the others (the width); when that finds no exact answer, all
    of them at once, fewest decimals first."""
    try:
        depends = _depends(points_of, unknowns, estimate, known)
    except ValueError:
        return {n: repr(estimate[n]) for n in unknowns}
    chosen: dict[str, str] = {}
    left = list(unknowns)
    while left:
        names = _component(left[0], left, depends)
        indices = sorted(set().union(*(depends[n] for n in names)))
        found = _one_at_a_time(points_of, names, depends, chosen, estimate, known, target)
        if found is None or not _exact(points_of, found, indices, chosen, estimate, known,
                                       target):
            found = _through_window(points_of, names, indices, depends, chosen, estimate,
                                    known, target)
        if found is None:
            found = _search(points_of, names, indices, chosen, estimate, known, target)
        chosen.update(found)
        left = [n for n in left if n not in names]
    return chosen


def _through_window(points_of: PointsOf, names: list[str], indices: list[int],
                    depends: dict[str, set[int]], chosen: dict[str, str],
                    estimate: dict[str, float], known: dict[str, float],
                    target: np.ndarray) -> dict[str, str] | None:
    """A column that alone moves some numbers (a centre stored by itself) may take any
    value of a float32 window; its partner (the width) fits only part of it.  Walk the
    window's decimals, fewest places first, solving the partners for each."""
    leads = [n for n in names
             if any(not any(i in depends[o] for o in names if o != n) for i in depends[n])]
    if len(leads) > 1:
        return None
    if leads:
        lead = leads[0]
        own = sorted(i for i in depends[lead]
                     if not any(i in depends[o] for o in names if o != lead))
        fixed = {**known, **estimate, **{n: float(t) for n, t in chosen.items()}}

        def fits(value: float) -> bool:
            try:
                stored = _stored(points_of, {**fixed, lead: value})
                return bool(np.array_equal(stored[own], target[own]))
            except (ValueError, OverflowError):
                return False

        centre = next((v for v in (estimate[lead], *map(float, _candidates(estimate[lead])))
                       if fits(v)), None)
        if centre is None:
            return None
        low, high = _edge(fits, centre, -1.0), _edge(fits, centre, 1.0)
    else:  # no column moves a number alone (a box centre and its width): a float32
        lead = names[0]  # ulp or two around the first one's estimate
        reach = max(abs(estimate[lead]) * 2.0**-21, 1e-12)
        low, high = estimate[lead] - reach, estimate[lead] + reach
    rest = [n for n in names if n != lead]
    for text in _decimals_between(low, high, cap=400):
        trial = {**chosen, lead: text}
        found = _one_at_a_time(points_of, rest, depends, trial, estimate, known, target)
        if found is not None and _exact(points_of, {lead: text, **found}, indices, chosen,
                                        estimate, known, target):
            return {lead: text, **found}
    return None


def _edge(fits: Callable[[float], bool], inside: float, direction: float) -> float:
    """The last value that fits, from ``inside`` towards ``direction`` (bisection)."""
    step = max(abs(inside), 1.0) * 1e-9
    outside = inside + direction * step
    while fits(outside) and step < 1e6:
        inside, step = outside, step * 2
        outside = inside + direction * step
    for _ in range(60):
        middle = (inside + outside) / 2
        if middle in (inside, outside):
            break
        if fits(middle):
            inside = middle
        else:
            outside = middle
    return inside


def _decimals_between(low: float, high: float, cap: int) -> Iterator[str]:
    """Decimals in [low, high], fewest places first (at most ``cap`` of them)."""
    produced = 0
    seen: set[str] = set()
    with decimal.localcontext() as context:
        context.prec = 80
        lo, hi = decimal.Decimal(repr(low)), decimal.Decimal(repr(high))
        for places in range(18):
            step = decimal.Decimal(1).scaleb(-places)
            value = lo.quantize(step, rounding=decimal.ROUND_CEILING)
            while value <= hi:
                text = format(value, "f")
                if "." in text:
                    text = text.rstrip("0").rstrip(".")
                if text not in seen:
                    seen.add(text)
                    yield "0" if text == "-0" else text
                    produced += 1
                    if produced >= cap:
                        return
                value += step


def _one_at_a_time(points_of: PointsOf, names: list[str], depends: dict[str, set[int]],
                   chosen: dict[str, str], estimate: dict[str, float],
                   known: dict[str, float], target: np.ndarray) -> dict[str, str] | None:
    """Each column alone, one that alone moves some stored numbers first; None when
    every column left shares all its numbers with another (search them together)."""
    found: dict[str, str] = {}
    left = list(names)
    while left:
        for name in left:
            own = sorted(i for i in depends[name]
                         if not any(i in depends[o] for o in left if o != name))
            if own:
                break
        else:
            return None
        found.update(_search(points_of, [name], own, {**chosen, **found}, estimate, known,
                             target))
        left.remove(name)
    return found


def _exact(points_of: PointsOf, found: dict[str, str], indices: list[int],
           chosen: dict[str, str], estimate: dict[str, float], known: dict[str, float],
           target: np.ndarray) -> bool:
    values = {**known, **estimate, **{n: float(t) for n, t in {**chosen, **found}.items()}}
    try:
        return bool(np.array_equal(_stored(points_of, values)[indices], target[indices]))
    except (ValueError, OverflowError):
        return False


def _component(first: str, left: list[str], depends: dict[str, set[int]]) -> list[str]:
    """``first`` and every column that moves a stored number with it, transitively."""
    found = [first]
    for name in found:
        found.extend(o for o in left if o not in found and depends[o] & depends[name])
    return found


def _search(points_of: PointsOf, names: list[str], indices: list[int], chosen: dict[str, str],
            estimate: dict[str, float], known: dict[str, float],
            target: np.ndarray) -> dict[str, str]:
    """The combination of candidates for ``names`` (fewest decimals in all first) whose
    stored numbers at ``indices`` equal the target; the estimates when none does (the
    round-trip check then reports the difference)."""
    wanted = target[indices]
    options = [_candidates(estimate[n]) for n in names]
    fixed = {**known, **estimate, **{n: float(t) for n, t in chosen.items()}}
    if len(names) == 1:
        return _shortest_in_window(points_of, names[0], indices, fixed, options[0], wanted)
    for combination in _by_length(options, limit=1 if len(names) == 1 else 5000):
        trial = {**fixed, **{n: float(t) for n, t in zip(names, combination, strict=True)}}
        try:
            got = _stored(points_of, trial)[indices]
        except (ValueError, OverflowError):
            continue
        if np.array_equal(got, wanted):
            return dict(zip(names, combination, strict=True))
    return {n: repr(estimate[n]) for n in names}


def _shortest_in_window(points_of: PointsOf, name: str, indices: list[int],
                        fixed: dict[str, float], options: list[str],
                        wanted: np.ndarray) -> dict[str, str]:
    """One column: a value that fits (the estimate or a near decimal), the float32 window
    of values around it that fit as well, and the decimal of fewest places in it."""
    def fits(value: float, where: list[int] = indices) -> bool:
        try:
            return bool(np.array_equal(_stored(points_of, {**fixed, name: value})[where],
                                       target_at(where)))
        except (ValueError, OverflowError):
            return False

    def target_at(where: list[int]) -> np.ndarray:
        return wanted[[indices.index(i) for i in where]]

    inside = next((v for v in (fixed[name], *map(float, options)) if fits(v)), None)
    if inside is not None:
        low, high = _edge(fits, inside, -1.0), _edge(fits, inside, 1.0)
    else:  # each stored number's own window (the mapping is affine), intersected
        low, high = -math.inf, math.inf
        for i, goal in zip(indices, wanted, strict=True):
            at = _affine_solve(points_of, name, i, fixed, float(goal))
            if at is None or not fits(at, [i]):
                return {name: repr(fixed[name])}
            def alone(value: float, i: int = i) -> bool:
                return fits(value, [i])
            low = max(low, _edge(alone, at, -1.0))
            high = min(high, _edge(alone, at, 1.0))
        if low > high or not fits((low + high) / 2):
            return {name: repr(fixed[name])}
    return {name: next(_decimals_between(low, high, cap=1), repr(low))}


def _affine_solve(points_of: PointsOf, name: str, index: int, fixed: dict[str, float],
                  goal: float) -> float | None:
    """The value of ``name`` that puts stored number ``index`` at ``goal``."""
    here = fixed[name]
    step = max(abs(here), 1.0) / 64
    try:
        a = float(points_of({**fixed, name: here})[index])
        b = float(points_of({**fixed, name: here + step})[index])
    except (ValueError, OverflowError):
        return None
    if a == b:
        return None
    return here + (goal - a) * step / (b - a)


def _stored(points_of: PointsOf, values: dict[str, float]) -> np.ndarray:
    """The numbers as the SR stores them (FL, PS3.3 C.18.6.1.2)."""
    return points_of(values).astype(np.float32)


def _by_length(options: list[list[str]], limit: int) -> Iterator[tuple[str, ...]]:
    """Combinations of one candidate per list, by the sum of their positions (shortest
    first); for one list, every candidate; for several, at most ``limit``."""
    if len(options) == 1:
        yield from ((t,) for t in options[0])
        return
    sizes = [len(o) for o in options]
    produced = 0
    for total in range(sum(sizes) - len(sizes) + 1):
        for positions in _compositions(total, sizes):
            yield tuple(o[p] for o, p in zip(options, positions, strict=True))
            produced += 1
            if produced >= limit:
                return


def _compositions(total: int, sizes: list[int]) -> Iterator[tuple[int, ...]]:
    if len(sizes) == 1:
        if total < sizes[0]:
            yield (total,)
        return
    for first in range(min(total, sizes[0] - 1) + 1):
        for rest in _compositions(total - first, sizes[1:]):
            yield (first, *rest)
