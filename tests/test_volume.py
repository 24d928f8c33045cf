"""Patient coordinates (csv2sr.images.volume) and join tables (csv2sr.mapping.joins).

* pixel -> patient -> pixel is the identity within 1e-6 mm for random orientation, spacing
  and position (hypothesis), and agrees with PS3.3 Equation C.7.6.2.1-1 written out;
* a series becomes a volume; a point is placed in its slice or refused outside;
* a join file: LUNA16's whitespace format, duplicate keys (file, line, key), missing keys
  (row rejected naming the column, the key and the join file), profile checks.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from csv2sr.images.volume import Plane, patient_to_pixel, pixel_to_patient
from csv2sr.mapping.joins import JoinError, read_join
from csv2sr.mapping.load import ProfileError, load_profile
from csv2sr.mapping.spec import JoinSpec

ROOT = Path(__file__).resolve().parents[1]
LUNA_PROFILE = ROOT / "tests" / "data" / "luna16" / "luna16.toml"


def _orientation(a: float, b: float, c: float) -> tuple[float, ...]:
    """Row and column cosines of a rotation by Euler angles (orthonormal)."""
    ca, sa, cb, sb, cc, sc = math.cos(a), math.sin(a), math.cos(b), math.sin(b), \
        math.cos(c), math.sin(c)
    rotation = np.array([[ca, -sa, 0], [sa, ca, 0], [0, 0, 1]]) @ \
        np.array([[1, 0, 0], [0, cb, -sb], [0, sb, cb]]) @ \
        np.array([[cc, -sc, 0], [sc, cc, 0], [0, 0, 1]])
    return (*rotation[:, 0], *rotation[:, 1])


angles = st.floats(-math.pi, math.pi, allow_nan=False)
spacings = st.floats(0.05, 5.0, allow_nan=False)
positions = st.floats(-500.0, 500.0, allow_nan=False)
pixels = st.floats(-10.0, 600.0, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(angles, angles, angles, spacings, spacings, positions, positions, positions, pixels,
       pixels)
def test_pixel_to_patient_and_back_is_the_identity(
    a: float, b: float, c: float, row_mm: float, column_mm: float, x: float, y: float,
    z: float, column: float, row: float,
) -> None:
    plane = Plane((x, y, z), _orientation(a, b, c), (row_mm, column_mm), 512, 512)  # type: ignore[arg-type]
    patient = pixel_to_patient(plane, [(column, row)])
    back = patient_to_pixel(plane, patient)[0]
    assert abs(back[0] - column) * column_mm < 1e-6
    assert abs(back[1] - row) * row_mm < 1e-6
    assert abs(back[2]) < 1e-6
    again = pixel_to_patient(plane, [back[:2]])[0]
    assert math.dist(again, patient[0]) < 1e-6


@settings(max_examples=100, deadline=None)
@given(angles, angles, angles, spacings, spacings, positions, positions, positions, pixels,
       pixels)
def test_pixel_to_patient_is_equation_c7621(
    a: float, b: float, c: float, row_mm: float, column_mm: float, x: float, y: float,
    z: float, column: float, row: float,
) -> None:
    """PS3.3 C.7.6.2.1.1: P = S + X (i Δi) + Y (j Δj), i the column and j the row index
    of a pixel centre; a DICOM pixel coordinate is the index + 0.5 (PS3.3 C.18.6.1.1)."""
    orientation = _orientation(a, b, c)
    plane = Plane((x, y, z), orientation, (row_mm, column_mm), 512, 512)  # type: ignore[arg-type]
    i, j = column - 0.5, row - 0.5
    expected = [s + orientation[k] * i * column_mm + orientation[3 + k] * j * row_mm
                for k, s in enumerate((x, y, z))]
    assert math.dist(pixel_to_patient(plane, [(column, row)])[0], expected) < 1e-6


def _join(tmp_path: Path, text: str, fmt: str = "whitespace") -> JoinSpec:
    path = tmp_path / "map.txt"
    path.write_bytes(text.encode())
    return JoinSpec("series_map", "joins[0].file", path, fmt, ("seriesuid",),
                    ("SeriesInstanceUID",), ("PatientID", "StudyInstanceUID"))


def test_a_luna16_style_join_file_is_read(tmp_path: Path) -> None:
    join = read_join(_join(tmp_path, "PatientID StudyInstanceUID SeriesInstanceUID \r\n"
                                     "P1 1.2.3 1.2.4 \r\nP2 1.2.5 1.2.6 \r\n"))
    assert join.cells({"seriesuid": "1.2.6"}) == {"PatientID": "P2",
                                                  "StudyInstanceUID": "1.2.5"}
    problem = join.cells({"seriesuid": "1.2.9"})
    assert not isinstance(problem, dict)
    assert problem.column == "seriesuid" and problem.value == "1.2.9"
    assert "map.txt" in problem.message and "SeriesInstanceUID" in problem.message


def test_a_duplicate_key_names_the_file_the_line_and_the_key(tmp_path: Path) -> None:
    spec = _join(tmp_path, "PatientID,StudyInstanceUID,SeriesInstanceUID\n"
                           "P1,1.2.3,1.2.4\nP2,1.2.5,1.2.4\n", "csv")
    with pytest.raises(JoinError) as caught:
        read_join(spec)
    assert str(caught.value).startswith(f"{spec.path}:3: duplicate key '1.2.4'")
    assert "first on line 2" in str(caught.value)


def test_a_join_file_without_the_columns_is_refused(tmp_path: Path) -> None:
    with pytest.raises(JoinError, match="no column 'StudyInstanceUID'"):
        read_join(_join(tmp_path, "PatientID SeriesInstanceUID\nP1 1.2.4\n"))


def test_the_real_series_map_has_one_line_per_series() -> None:
    spec = load_profile(LUNA_PROFILE).joins[0]
    if not spec.path.is_file():
        pytest.skip(f"no LUNA16 data at {spec.path}")
    assert len(read_join(spec).rows) == 888


def _profile(tmp_path: Path, joins: str, extra_cells: str = "") -> Path:
    text = LUNA_PROFILE.read_text(encoding="utf-8")
    start = text.index("[[joins]]")
    end = text.index("[cells]")
    text = text[:start] + joins + "\n" + text[end:]
    if extra_cells:
        text = text.replace("[identity]", extra_cells + "\n[identity]")
    path = tmp_path / "p.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("joins", "key", "message"), [
    ('[[joins]]\nname = "m"\nfile = "x.txt"\nkey = ["nope"]\n'
     'columns = ["PatientID", "StudyInstanceUID"]', "joins[0].key[0]", "not in input.columns"),
    ('[[joins]]\nname = "m"\nfile = "x.txt"\nkey = ["seriesuid"]\non = ["a", "b"]\n'
     'columns = ["PatientID", "StudyInstanceUID"]', "joins[0].on", "1 key column"),
    ('[[joins]]\nname = "m"\nfile = "x.txt"\nkey = ["seriesuid"]\n'
     'columns = ["coordX", "PatientID", "StudyInstanceUID"]', "joins[0].columns[0]",
     "a column of the table already"),
])
def test_join_profile_checks(tmp_path: Path, joins: str, key: str, message: str) -> None:
    with pytest.raises(ProfileError) as caught:
        load_profile(_profile(tmp_path, joins))
    assert caught.value.key == key and message in caught.value.problem


def test_a_patient_point_needs_three_coordinates(tmp_path: Path) -> None:
    text = LUNA_PROFILE.read_text(encoding="utf-8").replace(
        '[["coordX", "coordY", "coordZ"]]', '[["coordX", "coordY"]]')
    path = tmp_path / "p.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    assert caught.value.key == "groups[0].region.points[0]"
    assert "[x, y, z]" in caught.value.problem


def _oblique_series(slices: int = 5) -> tuple[list[tuple[str, object]], Plane, float]:
    """A tilted CT series (rotated about two axes), slices 3 mm apart along its normal."""
    from luna16gen import LunaSeries, header  # noqa: PLC0415

    series = LunaSeries("P1", "1.2.3", "1.2.3.4", "1.2.3.5", (-100.0, -120.0, -50.0), 0.7, 3.0,
                        slices)
    orientation = _orientation(0.3, 0.2, 0.0)
    plane = Plane(series.origin, orientation, (0.7, 0.7), 512, 512)  # type: ignore[arg-type]
    normal = np.array(plane.normal)
    datasets = []
    for i in range(slices):
        ds = header(series, i)
        ds.ImageOrientationPatient = [f"{v:.12f}" for v in orientation]
        ds.ImagePositionPatient = [f"{v:.10f}" for v in np.array(series.origin) + 3.0 * i * normal]
        datasets.append((f"slice{i}", ds))
    return datasets, plane, 3.0


def test_points_are_placed_in_their_slice_or_refused(tmp_path: Path) -> None:
    """A record's Image Region 3D gets the Frame of Reference and the nearest slice; a point
    past half a spacing after the last slice, or beside the image, is refused."""
    from csv2sr.conversion.checks import check_row  # noqa: PLC0415
    from csv2sr.images.index import ImageIndex  # noqa: PLC0415
    from csv2sr.images.volume import resolve_points, series_volumes  # noqa: PLC0415
    from csv2sr.mapping.record import Geometry3D, Record  # noqa: PLC0415

    datasets, plane, spacing = _oblique_series()
    index = ImageIndex.from_datasets(datasets)  # type: ignore[arg-type]
    volumes, refused = series_volumes(index)
    assert list(volumes) == ["1.2.3.4"] and refused == {}
    spec = load_profile(LUNA_PROFILE)
    normal = np.array(plane.normal)

    def place(column: float, row: float, depth: float) -> Record | list[object]:
        x, y, z = np.array(pixel_to_patient(plane, [(column, row)])[0]) + depth * normal
        cells = {"seriesuid": "1.2.3.4", "coordX": f"{x:.6f}", "coordY": f"{y:.6f}",
                 "coordZ": f"{z:.6f}", "diameter_mm": "5", "PatientID": "P1",
                 "StudyInstanceUID": "1.2.3"}
        record = check_row(cells, path=tmp_path / "t.csv", line=2, spec=spec)
        assert isinstance(record, Record)
        return resolve_points(record, volumes, refused, "seriesuid")  # type: ignore[return-value]

    for depth, slice_index in ((0.0, 0), (4.4, 1), (13.4, 4)):
        placed = place(256, 300, depth)
        assert isinstance(placed, Record)
        region = placed.groups[0].region
        assert isinstance(region, Geometry3D) and region.frame_of_reference_uid == "1.2.3.5"
        assert placed.images[0].sop_instance_uid == datasets[slice_index][1].SOPInstanceUID  # type: ignore[attr-defined]
    for outside in ((256, 300, 4 * spacing + 1.6), (-3, 300, 0.0), (256, 515, 3.0)):
        problems = place(*outside)
        assert isinstance(problems, list) and len(problems) == 1
        assert str(problems[0]).startswith("coordX/coordY/coordZ: outside the volume of the "
                                           "series 1.2.3.4")
    del datasets[2][1].FrameOfReferenceUID  # type: ignore[attr-defined]
    volumes, refused = series_volumes(ImageIndex.from_datasets(datasets))  # type: ignore[arg-type]
    assert volumes == {} and "Frame of Reference" in refused["1.2.3.4"]


@settings(max_examples=10, deadline=None)
@given(st.tuples(st.floats(-170, 170), st.floats(-170, 170), st.floats(0.5, 5.5)),
       st.decimals(min_value="0.1", max_value="99.9", places=3))
def test_a_point_comes_back_as_its_float32(point: tuple[float, float, float],
                                           diameter: object) -> None:
    """convert -> SR -> export --profile: each coordinate is the shortest decimal of its
    FL (PS3.3 C.18.9.1), the diameter (a DS) exactly as written (docs/profiles.md)."""
    import tempfile  # noqa: PLC0415

    from csv2sr.conversion.build import encode  # noqa: PLC0415
    from csv2sr.conversion.checks import check_row  # noqa: PLC0415
    from csv2sr.conversion.document import dataset_bytes  # noqa: PLC0415
    from csv2sr.export.writer import _rows_of  # noqa: PLC0415
    from csv2sr.images.enrich import enriched_header  # noqa: PLC0415
    from csv2sr.images.index import ImageIndex  # noqa: PLC0415
    from csv2sr.images.volume import resolve_points, series_volumes  # noqa: PLC0415
    from csv2sr.mapping.record import Record  # noqa: PLC0415

    datasets, plane, _ = _oblique_series()
    index = ImageIndex.from_datasets(datasets)  # type: ignore[arg-type]
    column, row, depth = point
    x, y, z = (float(v) for v in np.array(pixel_to_patient(
        plane, [(256 + column, 256 + row)])[0]) + depth * np.array(plane.normal))
    cells = {"seriesuid": "1.2.3.4", "coordX": repr(x), "coordY": repr(y), "coordZ": repr(z),
             "diameter_mm": str(diameter), "PatientID": "P1", "StudyInstanceUID": "1.2.3"}
    spec = load_profile(LUNA_PROFILE)
    with tempfile.TemporaryDirectory() as tmp:
        record = check_row(cells, path=Path(tmp) / "t.csv", line=2, spec=spec)
        assert isinstance(record, Record)
        placed = resolve_points(record, *series_volumes(index), "seriesuid")
        assert isinstance(placed, Record)
        image = placed.images[0]
        headers = {image.sop_instance_uid: enriched_header(
            index.get(image.sop_instance_uid), placed, image)}  # type: ignore[arg-type]
        path = Path(tmp) / "sr.dcm"
        path.write_bytes(dataset_bytes(encode(placed, spec, headers=headers)))
        result = _rows_of(str(path), str(LUNA_PROFILE), None)
    assert result.problems == []
    (got,) = result.rows
    assert got == ["1.2.3.4", *(_shortest32(v) for v in (x, y, z)), str(diameter)]


def _shortest32(value: float) -> str:
    """The shortest decimal that reads back as the same float32."""
    target = np.float32(value)
    for digits in range(1, 12):
        text = f"{float(target):.{digits}g}"
        if np.float32(float(text)) == target:
            return text
    return repr(float(target))
