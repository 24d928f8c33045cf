"""LUNA16 end to end: the real table (../shared/data/luna16/annotations.csv, 1,117 nodules
in 568 series, centres in patient mm) with the real join table (series-map.txt: patient
and study per series), and synthetic CT headers for those series (tests/luna16gen.py:
seeded Frame of Reference, position, spacing; every real centre inside its volume).

Converted from a folder and from a real Orthanc on loopback (DICOMweb): one Comprehensive
3D SR per series, one TID 1410 group per nodule with an SCOORD3D POINT (PS3.3 C.18.9) in
the series' Frame of Reference, Diameter (SCT 81827009) in mm, finding Nodule (SCT
27925004), site Lung (SCT 39607008).  dciodvfy finds no error in any SR; highdicom reads
every point and diameter back exactly; export --profile gives the table back; a centre
outside its series' volume, and a series missing from the join table, are rejected.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest

from conftest import shared_once
from csv2sr.conversion.batch import convert
from csv2sr.export.writer import iter_rows
from csv2sr.images.index import ImageIndex
from csv2sr.mapping.load import load_profile
from csv2sr.validate import validate_files
from csv2sr.validate.findings import Severity
from luna16gen import LUNA16, LunaSeries, luna16_series, read_annotations, write_headers
from orthanc import OrthancServer, orthanc_factory
from srtree import decoded

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "tests" / "data" / "luna16" / "luna16.toml"
TABLE = LUNA16 / "annotations.csv"

pytestmark = pytest.mark.skipif(not TABLE.is_file(), reason=f"no LUNA16 data at {LUNA16}")


@dataclass(frozen=True)
class Converted:
    rows: list[dict[str, str]]
    series: dict[str, LunaSeries]
    images: Path
    out: Path
    counts: tuple[int, int, int]
    """(rejected, converted, documents) of the conversion."""


@pytest.fixture(scope="module")
def headers(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, str]],
                                                               dict[str, LunaSeries], Path]:
    """The headers, written once for the whole run (every xdist worker reads them)."""
    rows = read_annotations(TABLE)
    series = luna16_series(rows)

    def build(folder: Path) -> None:
        write_headers(series, folder)

    return rows, series, shared_once(tmp_path_factory, "luna16-images", build)


@pytest.fixture(scope="module")
def converted(headers: tuple[list[dict[str, str]], dict[str, LunaSeries], Path],
              tmp_path_factory: pytest.TempPathFactory) -> Converted:
    """The whole table converted once for the whole run (shared by the xdist workers)."""
    rows, series, folder = headers

    def build(shared: Path) -> None:
        result = convert(TABLE, shared / "out", profile=load_profile(PROFILE),
                         images=ImageIndex.from_folder(folder), jobs=2)
        (shared / "counts.json").write_text(
            json.dumps([result.rejected, result.converted, result.documents]), encoding="utf-8")

    shared = shared_once(tmp_path_factory, "luna16-converted", build)
    rejected, done, documents = json.loads((shared / "counts.json").read_text(encoding="utf-8"))
    return Converted(rows, series, folder, shared / "out", (rejected, done, documents))


def _srs(out: Path) -> list[Path]:
    return sorted((out / "sr").rglob("*.dcm"))


def test_one_sr_per_series_one_group_per_nodule(converted: Converted) -> None:
    assert converted.counts == (0, 1117, 568)
    assert len(_srs(converted.out)) == len(converted.series) == 568


def test_validate_finds_no_error(converted: Converted) -> None:
    """csv2sr's own checks and dciodvfy: no error in any Comprehensive 3D SR."""
    report = validate_files([converted.out / "sr"], jobs=2)
    if report.tools.get("dciodvfy") is None:
        pytest.skip("dciodvfy is not installed")
    errors = [f"{r.relative}: {f}" for r in report.files for f in r.findings
              if f.severity is Severity.ERROR]
    assert errors == []
    assert len(report.files) == 568


def test_the_templates_give_highdicoms_bytes(converted: Converted, tmp_path: Path) -> None:
    """The SCOORD3D documents go through the byte templates (conversion/fastpath.py); the
    highdicom builder gives the same bytes for the SRs of the first 120 rows (documents of
    one to several groups, so several shapes, each proven on its first document): whole
    series from the top of the table (its rows are grouped by series), so that each SR is
    the same document, with the same Instance Number, as in the whole table's conversion."""
    first = {row["seriesuid"] for row in converted.rows[:120]}
    table = _write_table(tmp_path / "head.csv",
                         [row for row in converted.rows if row["seriesuid"] in first])
    out = tmp_path / "reference"
    done = convert(table, out, profile=load_profile(PROFILE),
                   images=ImageIndex.from_folder(converted.images), jobs=1, fast=False)
    assert done.rejected == 0
    reference = {p.relative_to(out): p.read_bytes() for p in _srs(out)}
    assert len(reference) > 50
    assert {name: (converted.out / name).read_bytes() for name in reference} == reference


def _by_series(rows: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    found: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        found.setdefault(row["seriesuid"], []).append(row)
    return found


def test_highdicom_reads_every_point_and_diameter_back(converted: Converted) -> None:
    table = _by_series(converted.rows)
    seen = 0
    for path in _srs(converted.out):
        sr = hd.sr.srread(path)
        assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
        groups = sr.content.get_planar_roi_measurement_groups()
        series = sr.CurrentRequestedProcedureEvidenceSequence[0] \
            .ReferencedSeriesSequence[0].SeriesInstanceUID
        expected = table[series]
        assert len(groups) == len(expected)
        for group, row in zip(groups, expected, strict=True):
            region = group.roi
            assert isinstance(region, hd.sr.ImageRegion3D)
            assert region.graphic_type == hd.sr.GraphicTypeValues3D.POINT
            assert region.frame_of_reference_uid == \
                converted.series[series].frame_of_reference_uid
            want = np.array([float(row[c]) for c in ("coordX", "coordY", "coordZ")],
                            dtype=np.float32)
            assert np.array_equal(region.value.astype(np.float32).ravel(), want)
            (diameter,) = group.get_measurements()
            assert diameter.name.value == "81827009" and diameter.unit.value == "mm"
            assert diameter.value == float(row["diameter_mm"])
            assert str(diameter[0].MeasuredValueSequence[0].NumericValue) == row["diameter_mm"]
            assert group.finding_type.value == "27925004"
            assert [s.value.value for s in group.finding_sites] == ["39607008"]
            seen += 1
    assert seen == 1117


def test_export_returns_the_table(converted: Converted) -> None:
    got = [row for _, rows, problems in iter_rows([converted.out / "sr"],
                                                   profile=str(PROFILE), jobs=1)
           for row in rows if not problems or row]
    columns = ("seriesuid", "coordX", "coordY", "coordZ", "diameter_mm")

    def key(row: tuple[str, ...]) -> tuple[str, ...]:
        return (row[0], *(repr(float(np.float32(v))) for v in row[1:4]), row[4])

    want = sorted(key(tuple(r[c] for c in columns)) for r in converted.rows)
    assert sorted(key(tuple(r)) for r in got) == want


def _write_table(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_a_centre_outside_the_volume_and_an_unknown_series_are_rejected(
    headers: tuple[list[dict[str, str]], dict[str, LunaSeries], Path], tmp_path: Path,
) -> None:
    rows, _series, folder = headers
    good, far, unknown = dict(rows[0]), dict(rows[1]), dict(rows[2])
    far["coordZ"] = str(float(far["coordZ"]) + 5000)
    unknown["seriesuid"] = "1.2.3.4.5"
    table = _write_table(tmp_path / "bad.csv", [good, far, unknown])
    result = convert(table, tmp_path / "out", profile=load_profile(PROFILE),
                     images=ImageIndex.from_folder(folder), jobs=1)
    assert (result.converted, result.rejected) == (1, 2)
    reasons = {e.line: e.reason for e in result.errors}
    assert reasons[3].startswith("coordX/coordY/coordZ: outside the volume of the series ")
    assert "series-map.txt" in reasons[4] and reasons[4].startswith("seriesuid: no line")
    rejected = (tmp_path / "out" / "rejected.csv").read_text(encoding="utf-8")
    assert far["coordZ"] in rejected and "1.2.3.4.5" in rejected


def test_cli_needs_the_images_and_takes_another_join_file(tmp_path: Path) -> None:
    rows = read_annotations(TABLE)[:3]
    table = _write_table(tmp_path / "t.csv", rows)
    command = [sys.executable, "-m", "csv2sr", "convert", str(table), "-o", str(tmp_path / "o"),
               "--profile", str(PROFILE)]
    run = subprocess.run(command, capture_output=True, text=True, check=False)
    assert run.returncode == 2 and "--images" in run.stderr
    dup = tmp_path / "map.txt"
    dup.write_text("PatientID StudyInstanceUID SeriesInstanceUID\nP 1.2.3 1.2.4\nQ 1.2.5 1.2.4\n",
                   encoding="utf-8")
    (tmp_path / "img").mkdir()
    run = subprocess.run([*command, "--images", str(tmp_path / "img"), "--join",
                          f"series_map={dup}"], capture_output=True, text=True, check=False)
    assert run.returncode == 1, run.stderr
    assert f"{dup}:3: duplicate key '1.2.4'" in " ".join(run.stderr.split())
    run = subprocess.run([*command, "--images", str(tmp_path / "img"), "--join", "nope=x"],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 2 and "no join 'nope'" in run.stderr


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancServer]:
    with orthanc_factory(tmp_path_factory.mktemp) as make:
        yield make("orthanc", dicom=False)


def test_the_same_srs_from_orthanc(
    converted: Converted, orthanc: OrthancServer, tmp_path: Path,
) -> None:
    """Orthanc on loopback serves the same headers (DICOMweb): for the whole series of the
    first 100 rows (the first SRs of the table), the SRs equal the folder's value for
    value."""
    chosen = set(dict.fromkeys(r["seriesuid"] for r in converted.rows[:100]))
    rows = [r for r in converted.rows if r["seriesuid"] in chosen]
    for path in write_headers({s: converted.series[s] for s in chosen}, tmp_path / "images"):
        answer = orthanc.upload(path.read_bytes())
        assert answer["Status"] == "Success", answer
    index = ImageIndex.from_dicomweb(orthanc.dicomweb)
    out = tmp_path / "web"
    result = convert(_write_table(tmp_path / "t.csv", rows), out, profile=load_profile(PROFILE),
                     images=index, jobs=1)
    assert (result.rejected, result.documents) == (0, len(chosen))
    for path in _srs(out):
        folder = converted.out / path.relative_to(out)
        assert decoded(pydicom.dcmread(path)) == decoded(pydicom.dcmread(folder))
