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
import math
import re
from collections.abc import Callable

import numpy as np

from csv2sr.mapping.record import Concept, Geometry, Group, Measurement, Record
from csv2sr.mapping.spec import CodeSource, GeometrySpec, Source, Spec

__all__ = ["Inverse", "float32_text", "shortest", "spreadsheet_serial"]

SPREADSHEET_EPOCH = dt.date(1899, 12, 30)
"""Day 0 of spreadsheet serial dates."""

Getter = Callable[[Record], str | None]
Identity = Callable[[Concept], tuple[str, str]]


def float32_text(value: float) -> str:
    """The shortest decimal that reads back as the same float32.  SCOORD Graphic Data
    (0070,0022) is FL (PS3.3 C.18.6.1.2): ``172.8353591`` stored as float32 prints
    ``172.83536``."""
    return str(np.format_float_positional(np.float32(value), unique=True, trim="-"))


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


class Inverse:
    """The record -> cells mapping of one profile (build once, call per record)."""

    def __init__(self, spec: Spec, identity: Identity | None = None) -> None:
        self.spec = spec
        self.identity = identity or (lambda c: (c.value, c.scheme))
        self.getters: dict[str, list[tuple[str, Getter]]] = {c: [] for c in spec.columns}
        self.geometry: list[tuple[int, int, GeometrySpec]] = []
        """(group, measurement or -1 for the region, spec) of every geometry."""
        self._plan()

    # -- the plan: where each column comes back from --

    def _put(self, column: str, role: str, getter: Getter) -> None:
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
        image = lambda r: r.images[0] if r.images else None  # noqa: E731
        self._source(ident.patient_id, "identity.patient_id", lambda r: r.patient_id)
        self._source(ident.patient_name, "identity.patient_name", lambda r: r.patient_name)
        self._source(ident.study_uid, "identity.study_uid", lambda r: r.study_uid)
        self._source(ident.study_date, "identity.study_date", lambda r: r.study_date)
        self._source(ident.study_time, "identity.study_time", lambda r: r.study_time)
        self._source(ident.series_uid, "identity.series_uid",
                     lambda r: (i.series_uid if (i := image(r)) else None))
        self._source(ident.sop_instance_uid, "identity.sop_instance_uid",
                     lambda r: (i.sop_instance_uid if (i := image(r)) else None))
        self._source(ident.sop_class_uid, "identity.sop_class_uid",
                     lambda r: (i.sop_class_uid if (i := image(r)) else None))
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
            def of(r: Record, g: int = g) -> Group | None:
                return r.groups[g] if g < len(r.groups) else None
            self._source(group.tracking_identifier, f"{group.key}.tracking_identifier",
                         lambda r, of=of: (x.tracking_identifier if (x := of(r)) else None))
            self._code(group.finding, f"{group.key}.finding",
                       lambda r, of=of: (x.finding if (x := of(r)) else None))
            self._code(group.finding_site, f"{group.key}.finding_site",
                       lambda r, of=of: (x.finding_site if (x := of(r)) else None))
            for m, measurement in enumerate(group.measurements):
                def num(r: Record, of=of, m: int = m) -> Measurement | None:  # type: ignore[no-untyped-def]
                    x = of(r)
                    return x.measurements[m] if x is not None and m < len(x.measurements) \
                        else None
                self._source(measurement.value, f"{measurement.key}.value",
                             lambda r, num=num: (x.value if (x := num(r)) else None))
                if measurement.geometry is not None:
                    self.geometry.append((g, m, measurement.geometry))
            for q, qualitative in enumerate(group.qualitative):
                concept = self.identity(qualitative.concept)

                def evaluation(r: Record, of=of, concept=concept) -> Concept | None:  # type: ignore[no-untyped-def]
                    x = of(r)
                    for found in x.qualitative if x is not None else ():
                        if self.identity(found.concept) == concept:
                            return found.value
                    return None
                self._code(qualitative.value, f"{qualitative.key}.value", evaluation)
            if group.region is not None:
                self.geometry.append((g, -1, group.region))

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
        for g, m, geometry in self.geometry:
            group = record.groups[g] if g < len(record.groups) else None
            shape: Geometry | None = None
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
                cells.update(self._geometry(geometry, shape, cells))
            except ValueError as exc:
                fatal.append(f"{exc} where {geometry.key} needs {_WANTED[geometry.type]}: "
                             "no row")
        for column, cell in self.spec.cells.items():
            if cell.type == "spreadsheet_day" and cells.get(cell.of):
                cells[column] = spreadsheet_serial(cells[cell.of])
        for column, cell in self.spec.cells.items():
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

    def _geometry(self, spec: GeometrySpec, shape: Geometry,
                  cells: dict[str, str]) -> dict[str, str]:
        kinds = {"point": ("POINT", 2), "line": ("POLYLINE", 4), "box": ("POLYLINE", 10),
                 "ellipse": ("ELLIPSE", 8), "circle": ("CIRCLE", 4)}
        points = shape.points
        if spec.type in kinds:
            wanted, count = kinds[spec.type]
            if shape.graphic_type != wanted or len(points) != count:
                raise ValueError(f"the SR has a {shape.graphic_type} of {len(points) // 2} "
                                 "point(s)")
        shift = spec.shift
        out: dict[str, str] = {}

        def put(source: Source | None, stored: float,
                forward: Callable[[float], float] = lambda v: v) -> None:
            if source is None or source.const is not None:
                return
            out[source.column] = shortest(stored, lambda v: forward(v) + shift) \
                if shift else (float32_text(stored) if forward(1.0) - forward(0.0) == 1.0
                               and forward(0.0) == 0.0 else shortest(stored, forward))

        if spec.type in ("point", "line") or (spec.type == "ellipse" and spec.form == "points") \
                or (spec.type == "circle" and spec.form == "point"):
            for i, (x, y) in enumerate(spec.points):
                put(x, points[2 * i])
                put(y, points[2 * i + 1])
        elif spec.type in ("polyline", "polygon"):
            flat = list(points)
            if spec.type == "polygon" and len(flat) >= 4 and flat[:2] == flat[-2:]:
                flat = flat[:-2]
            out[spec.column] = " ".join(
                shortest(v, lambda t: t + shift) if shift else float32_text(v) for v in flat)
        elif spec.type == "box":
            out.update(self._box(spec, points, cells, put))
        elif spec.type == "ellipse":
            cx, cy = (points[0] + points[2]) / 2, (points[1] + points[3]) / 2
            horizontal = abs(points[1] - points[3]) < abs(points[0] - points[2])
            major = math.hypot(points[2] - points[0], points[3] - points[1])
            minor = math.hypot(points[6] - points[4], points[7] - points[5])
            width, height = (major, minor) if horizontal else (minor, major)
            put(spec.points[0][0], cx)
            put(spec.points[0][1], cy)
            _size(out, spec.width, width)
            _size(out, spec.height, height)
        elif spec.type == "circle":
            put(spec.points[0][0], points[0])
            put(spec.points[0][1], points[1])
            radius = math.hypot(points[2] - points[0], points[3] - points[1])
            _size(out, spec.radius, radius * 2 if spec.form == "diameter" else radius)
        return out

    def _box(self, spec: GeometrySpec, points: tuple[float, ...], cells: dict[str, str],
             put: Callable[..., None]) -> dict[str, str]:
        x0, y0, x1, y1 = points[0], points[1], points[4], points[5]
        shift = spec.shift
        sx = sy = 1.0
        if spec.units == "fraction":
            sx = self._number(self.spec.image.columns, cells)
            sy = self._number(self.spec.image.rows, cells)
        out: dict[str, str] = {}

        def back(source: Source | None, stored: float, scale: float,
                 offset: float = 0.0) -> None:
            if source is None or source.const is not None:
                return
            out[source.column] = shortest(stored, lambda v: (v + offset) * scale + shift)

        if spec.form == "corners":
            (ax, ay), (bx, by) = spec.points
            back(ax, x0, sx)
            back(ay, y0, sy)
            back(bx, x1, sx)
            back(by, y1, sy)
            return out
        if spec.form == "xywh":
            back(spec.x, x0, sx)
            back(spec.y, y0, sy)
            left = float(out[spec.x.column]) if spec.x and spec.x.column else (x0 - shift) / sx
            top = float(out[spec.y.column]) if spec.y and spec.y.column else (y0 - shift) / sy
            back(spec.width, x1, sx, left)
            back(spec.height, y1, sy, top)
            return out
        (cx, cy), = spec.points
        _size(out, spec.width, (x1 - x0) / sx)
        _size(out, spec.height, (y1 - y0) / sy)
        w = float(out[spec.width.column]) if spec.width and spec.width.column else (x1 - x0) / sx
        h = float(out[spec.height.column]) if spec.height and spec.height.column else (
            (y1 - y0) / sy)
        back(cx, x0, sx, -w / 2)
        back(cy, y0, sy, -h / 2)
        return out


def _size(out: dict[str, str], source: Source | None, value: float) -> None:
    """A width, height, radius or diameter: not shifted by the origin."""
    if source is not None and source.const is None:
        out[source.column] = shortest(value, lambda v: v)
