"""Polylines and polygons in patient millimetres (profile tests/data/luna16/luna16-outline.toml):
per row a 3-vertex path and a triangle around a real LUNA16 nodule centre, on synthetic CT
headers of the real series (tests/luna16gen.py), the study and patient from the real join
table.  Each is an SCOORD3D (PS3.3 C.18.9.1.2: POLYLINE; POLYGON, its last vertex its
first) in the series' Frame of Reference, a TID 1410 Image Region 3D in a Comprehensive 3D
SR.  dciodvfy and csv2sr find no error; highdicom reads every vertex back (as FL);
export gives the table back; the fast path gives highdicom's bytes; a vertex outside the
volume rejects its row, naming the columns and the vertex."""

from __future__ import annotations

import csv
from pathlib import Path

import highdicom as hd
import numpy as np
import pytest

from csv2sr.conversion.batch import convert
from csv2sr.export.writer import iter_rows
from csv2sr.images.index import ImageIndex
from csv2sr.mapping.load import load_profile
from csv2sr.validate import validate_files
from csv2sr.validate.findings import Severity
from luna16gen import LUNA16, luna16_series, read_annotations, write_headers

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "tests" / "data" / "luna16" / "luna16-outline.toml"
TABLE = LUNA16 / "annotations.csv"
COLUMNS = ["seriesuid", "ax", "ay", "az", "bx", "by", "bz", "cx", "cy", "cz"]
VERTICES = [("ax", "ay", "az"), ("bx", "by", "bz"), ("cx", "cy", "cz")]

pytestmark = pytest.mark.skipif(not TABLE.is_file(), reason=f"no LUNA16 data at {LUNA16}")


def _outline(nodule: dict[str, str]) -> dict[str, str]:
    """Three vertices around the centre, in its slice plane (at most 1 mm away: the
    synthetic volumes hold the centres with little margin)."""
    x, y, z = (float(nodule[c]) for c in ("coordX", "coordY", "coordZ"))
    r = min(float(nodule["diameter_mm"]) / 2, 1.0)  # inside the synthetic volume
    points = [(x - r, y, z), (x + r, y - r / 2, z), (x, y + r, z)]
    row = {"seriesuid": nodule["seriesuid"]}
    for names, point in zip(VERTICES, points, strict=True):
        row.update({n: f"{v:.3f}" for n, v in zip(names, point, strict=True)})
    return row


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, str]], Path, Path]:
    """(rows, images folder, output folder) of the first 40 nodules' outlines."""
    nodules = read_annotations(TABLE)[:40]
    folder = tmp_path_factory.mktemp("outline")
    write_headers(luna16_series(nodules), folder / "images")
    rows = [_outline(n) for n in nodules]
    result = convert(_write(folder / "outlines.csv", rows), folder / "out",
                     profile=load_profile(PROFILE),
                     images=ImageIndex.from_folder(folder / "images"), jobs=1)
    assert (result.rejected, result.converted) == (0, len(rows))
    assert result.documents == len({r["seriesuid"] for r in rows})
    return rows, folder / "images", folder / "out"


def _srs(out: Path) -> list[Path]:
    return sorted((out / "sr").rglob("*.dcm"))


def test_highdicom_reads_every_polyline_and_polygon_back(
        case: tuple[list[dict[str, str]], Path, Path]) -> None:
    rows, _, out = case
    by_series: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_series.setdefault(row["seriesuid"], []).append(row)
    seen = 0
    for path in _srs(out):
        sr = hd.sr.srread(path)
        assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
        series = sr.CurrentRequestedProcedureEvidenceSequence[0] \
            .ReferencedSeriesSequence[0].SeriesInstanceUID
        groups = sr.content.get_planar_roi_measurement_groups()
        expected = by_series[series]
        assert len(groups) == 2 * len(expected)
        for n, row in enumerate(expected):
            want = np.array([[float(row[c]) for c in names] for names in VERTICES],
                            dtype=np.float32)
            path_group, outline = groups[2 * n], groups[2 * n + 1]
            assert path_group.roi.graphic_type == hd.sr.GraphicTypeValues3D.POLYLINE
            assert np.array_equal(path_group.roi.value.astype(np.float32), want)
            assert outline.roi.graphic_type == hd.sr.GraphicTypeValues3D.POLYGON
            closed = np.vstack([want, want[:1]])
            assert np.array_equal(outline.roi.value.astype(np.float32), closed)
            assert path_group.roi.frame_of_reference_uid == outline.roi.frame_of_reference_uid
            seen += 1
    assert seen == len(rows)


def test_validate_finds_no_error(case: tuple[list[dict[str, str]], Path, Path]) -> None:
    _, _, out = case
    report = validate_files([out / "sr"], jobs=1)
    if report.tools.get("dciodvfy") is None:
        pytest.skip("dciodvfy is not installed")
    errors = [f"{r.relative}: {f}" for r in report.files for f in r.findings
              if f.severity is Severity.ERROR]
    assert errors == []


def test_export_returns_the_table(case: tuple[list[dict[str, str]], Path, Path]) -> None:
    rows, _, out = case
    got = [tuple(row) for _, found, _ in iter_rows([out / "sr"], profile=str(PROFILE), jobs=1)
           for row in found]

    def key(row: tuple[str, ...]) -> tuple[str, ...]:
        return (row[0], *(repr(float(np.float32(v))) for v in row[1:]))

    assert sorted(map(key, got)) == sorted(key(tuple(r[c] for c in COLUMNS)) for r in rows)


def test_the_fast_path_gives_highdicoms_bytes(
        case: tuple[list[dict[str, str]], Path, Path], tmp_path: Path) -> None:
    rows, images, out = case
    reference = tmp_path / "reference"
    done = convert(_write(tmp_path / "t.csv", rows), reference, profile=load_profile(PROFILE),
                   images=ImageIndex.from_folder(images), jobs=1, fast=False)
    assert done.rejected == 0
    want = {p.relative_to(reference): p.read_bytes() for p in _srs(reference)}
    assert {name: (out / name).read_bytes() for name in want} == want


def test_a_vertex_outside_the_volume_rejects_its_row(
        case: tuple[list[dict[str, str]], Path, Path], tmp_path: Path) -> None:
    rows, images, _ = case
    far = dict(rows[1])
    far["bz"] = str(float(far["bz"]) + 5000)
    result = convert(_write(tmp_path / "bad.csv", [rows[0], far]), tmp_path / "out",
                     profile=load_profile(PROFILE), images=ImageIndex.from_folder(images),
                     jobs=1)
    assert (result.converted, result.rejected) == (1, 1)
    (error,) = result.errors
    assert error.line == 3
    assert error.reason.startswith("ax/ay/az/bx/by/bz/cx/cy/cz: point 2 outside the volume "
                                   f"of the series {far['seriesuid']}")


def test_a_polygon_the_table_closed_itself_comes_back_as_written(
        case: tuple[list[dict[str, str]], Path, Path], tmp_path: Path) -> None:
    """A last vertex equal to the first is not added again, and export keeps it."""
    rows, images, _ = case
    closed = dict(rows[0])
    closed.update({"cx": closed["ax"], "cy": closed["ay"], "cz": closed["az"]})
    out = tmp_path / "out"
    result = convert(_write(tmp_path / "closed.csv", [closed]), out,
                     profile=load_profile(PROFILE), images=ImageIndex.from_folder(images),
                     jobs=1)
    assert (result.converted, result.rejected) == (1, 0)
    (path,) = _srs(out)
    outline = hd.sr.srread(path).content.get_planar_roi_measurement_groups()[1]
    assert outline.roi.graphic_type == hd.sr.GraphicTypeValues3D.POLYGON
    assert len(outline.roi.value) == 3
    (got,) = [tuple(row) for _, found, _ in iter_rows([out / "sr"], profile=str(PROFILE),
                                                      jobs=1) for row in found]
    assert [float(np.float32(v)) for v in got[1:]] == \
        [float(np.float32(closed[c])) for c in COLUMNS[1:]]
