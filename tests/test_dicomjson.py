"""``csv2sr json``: DICOM JSON Model (PS3.18 F.2) with decimal strings kept as written."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from typer.testing import CliRunner

from csv2sr.cli import app
from csv2sr.errors import SourceError
from csv2sr.formats.dicomjson import dataset_to_json, json_to_dataset

runner = CliRunner()


def _round_trip(files: list[Path], work: Path) -> None:
    json_dir, back = work / "json", work / "back"
    assert runner.invoke(app, ["json", "to-json", *map(str, files), "-o", str(json_dir),
                               "-q"]).exit_code == 0
    result = runner.invoke(app, ["json", "to-dicom", str(json_dir), "-o", str(back), "-q"])
    assert result.exit_code == 0, result.output
    for source in files:
        assert (back / (source.stem + ".dcm")).read_bytes() == source.read_bytes(), source


def test_sample_of_real_srs_is_byte_identical(converted_real: Path, tmp_path: Path) -> None:
    files = sorted((converted_real / "sr").rglob("*.dcm"))
    _round_trip(random.Random(18).sample(files, 30), tmp_path)


@pytest.mark.slow
def test_every_real_sr_is_byte_identical(converted_real: Path, tmp_path: Path) -> None:
    """All 2,345 SRs (about 45 s here: pydicom's from_json is the cost)."""
    files = sorted((converted_real / "sr").rglob("*.dcm"))
    assert len(files) == 2345
    _round_trip(files, tmp_path)


def test_decimal_strings_kept_as_written() -> None:
    ds = Dataset()
    ds.add_new(0x00181050, "DS", ["1.50", ".5", "+1", "1e3", "-0.0", "  2.0 "])
    ds.add_new(0x00200013, "IS", "007")
    ds.add_new(0x00189089, "FD", [0.1, 1e300])
    ds.add_new(0x00280010, "US", 512)
    text = dataset_to_json(ds)
    loaded = json.loads(text)
    assert '"Value": [\n      1.50,\n      ".5",\n      "+1",\n      1e3,\n      -0.0,' in text
    assert loaded["00189089"]["Value"] == [0.1, 1e300]
    back = json_to_dataset(text, "x.json")
    assert [str(v) for v in back.SpatialResolution] == ["1.50", ".5", "+1", "1e3", "-0.0",
                                                       "2.0"]
    assert str(back.InstanceNumber) == "007"
    assert back.Rows == 512 and back[0x00189089].value == [0.1, 1e300]


def test_reference_sr_round_trips_element_for_element(reference_sr: Path,
                                                      tmp_path: Path) -> None:
    original = pydicom.dcmread(reference_sr)
    back = json_to_dataset(dataset_to_json(original), "ref.json")
    assert back == original  # pixelmed's file meta is not in the JSON Model


def test_bad_json_is_reported_per_file(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "broken.json").write_text('{"00080016": {"vr": "UI",\n')
    (tmp_path / "in" / "list.json").write_text("[]")
    (tmp_path / "in" / "nouid.json").write_text('{"00100010": {"vr": "PN"}}')
    out = tmp_path / "out"
    result = runner.invoke(app, ["json", "to-dicom", str(tmp_path / "in"), "-o", str(out)])
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "broken.json: line 2: not JSON" in text
    assert "list.json: a DICOM JSON dataset is an object" in text
    assert "nouid.json: SOPClassUID is missing" in text
    assert list(out.iterdir()) == []
    with pytest.raises(SourceError):
        json_to_dataset('{"00080016": {"Value": ["1.2"]}}', "bad.json")
