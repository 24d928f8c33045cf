"""``csv2sr validate --images``: the cross-file checks reach the report, the JSON and the
exit status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from imagegen import SyntheticFixture, write_fixture


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> tuple[SyntheticFixture, Path]:
    synthetic = write_fixture(tmp_path_factory.mktemp("synthetic"))
    out = tmp_path_factory.mktemp("out")
    done = subprocess.run(
        [sys.executable, "-m", "csv2sr", "convert", str(synthetic.good_csv), "-o", str(out),
         "--images", str(synthetic.image_dir), "--jobs", "1", "--quiet"],
        capture_output=True, text=True, check=False, timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return synthetic, out


def validate(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "csv2sr", "validate", *map(str, args), "--jobs", "1"],
        capture_output=True, text=True, check=False, timeout=600,
    )


def test_srs_made_with_images_pass_against_them(
    converted: tuple[SyntheticFixture, Path], tmp_path: Path
) -> None:
    synthetic, out = converted
    done = validate(out / "sr", "--images", synthetic.image_dir, "--json", tmp_path / "v.json",
                    "--quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "v.json").read_text())
    assert "dcentvfy" in report["summary"]["by_source"]
    assert report["tools"]["dcentvfy"].startswith("1.")  # dicom3tools' version string
    errors = [f for file in report["files"] for f in file["findings"]
              if f["severity"] == "error"]
    assert errors == []


def test_a_patient_id_that_disagrees_with_the_image_is_an_error(
    converted: tuple[SyntheticFixture, Path], tmp_path: Path
) -> None:
    synthetic, out = converted
    source = next((out / "sr").rglob("*.dcm"))
    ds = pydicom.dcmread(source)
    ds.PatientID = "SOMEONE-ELSE"
    broken = tmp_path / "sr" / "broken.dcm"
    broken.parent.mkdir()
    ds.save_as(broken, enforce_file_format=True)
    done = validate(broken.parent, "--images", synthetic.image_dir, "--format", "json",
                    "--no-dciodvfy")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    messages = [f for file in report["files"] for f in file["findings"]
                if f["severity"] == "error" and f["source"] == "csv2sr"]
    assert any("PatientID" in f["attribute"] or "Patient ID" in f["message"]
               for f in messages), messages


def test_images_and_images_url_together_is_a_usage_error(
    converted: tuple[SyntheticFixture, Path]
) -> None:
    synthetic, out = converted
    done = validate(out / "sr", "--images", synthetic.image_dir, "--images-url",
                    "http://127.0.0.1:9/dicom-web")
    assert done.returncode == 2
    assert "not both" in done.stderr
