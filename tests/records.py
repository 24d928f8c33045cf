"""The parts of a ccc2017 record the tests look at (one image, one group, one line), and
copies with one part changed: tests name the profile's columns; the package does not."""

from __future__ import annotations

from dataclasses import replace

from csv2sr.mapping.load import load_profile
from csv2sr.mapping.record import Concept, Geometry, ImageRef, Measurement, Record

CCC2017 = load_profile("ccc2017")


def order(row: Record) -> int:
    assert row.instance_number is not None
    return row.instance_number


def image(row: Record) -> ImageRef:
    return row.images[0]


def instance_uid(row: Record) -> str:
    return row.images[0].sop_instance_uid


def line(row: Record) -> Measurement:
    return row.groups[0].measurements[0]


def points(row: Record) -> tuple[float, ...]:
    geometry = line(row).geometry
    assert geometry is not None
    return geometry.points


def length(row: Record) -> str:
    return line(row).value


def radiologist(row: Record) -> bool:
    return row.observer.role is not None


def _with_line(row: Record, measurement: Measurement) -> Record:
    group = replace(row.groups[0], measurements=(measurement,))
    return replace(row, groups=(group, *row.groups[1:]))


def with_length(row: Record, value: str) -> Record:
    return _with_line(row, replace(line(row), value=value))


def with_points(row: Record, new: tuple[float, ...]) -> Record:
    geometry = line(row).geometry
    assert geometry is not None
    return _with_line(row, replace(line(row), geometry=replace(geometry, points=tuple(new))))


def with_annotator(row: Record, name: str) -> Record:
    """The annotator cell as the profile maps it: name ``<annotator>^`` and login."""
    return replace(row, observer=replace(row.observer, name=f"{name}^", login=name))


def with_role(row: Record, radiologist: bool) -> Record:
    role = CCC2017.observer.role
    assert role is not None
    code: Concept | None = role.map["radiologist"] if radiologist else None
    return replace(row, observer=replace(row.observer, role=code))


def with_sop_class(row: Record, sop_class: str) -> Record:
    """Every reference to the row's image with another SOP class."""
    old = row.images[0]
    new = replace(old, sop_class_uid=sop_class)

    def geometry(g: Geometry | None) -> Geometry | None:
        return None if g is None else replace(g, image=new)

    groups = tuple(
        replace(g, measurements=tuple(replace(m, geometry=geometry(m.geometry))
                                      for m in g.measurements), region=geometry(g.region))
        for g in row.groups
    )
    return replace(row, images=(new,), groups=groups)
