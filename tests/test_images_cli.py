"""``csv2sr convert --images`` end to end: real processes, real files, real dicom3tools."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from conftest import dicom3tools_binary
from csv2sr.images.cross import validate_against_images
from csv2sr.images.index import ImageIndex
from imagegen import SyntheticFixture, write_fixture


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> SyntheticFixture:
    return write_fixture(tmp_path_factory.mktemp("synthetic"))


def run_convert(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "csv2sr", "convert", *map(str, args), "--jobs", "1"],
        capture_output=True, text=True, check=False, timeout=600,
    )


def warnings_of(binary: Path, path: Path) -> list[str]:
    done = subprocess.run([str(binary), str(path)], capture_output=True, text=True, check=False)
    lines = (done.stdout + done.stderr).splitlines()
    assert not [line for line in lines if line.startswith("Error")], lines
    return [line for line in lines if line.startswith("Warning")]


def test_convert_with_images_rejects_and_reports_each_broken_row(
    synthetic: SyntheticFixture, tmp_path: Path
) -> None:
    done = run_convert(synthetic.all_csv, "-o", tmp_path / "out", "--images",
                       synthetic.image_dir, "--quiet")
    assert done.returncode == 1, done.stderr  # rows were rejected
    for column in ("seriesUID", "StudyInstanceUID", "patientID", "instanceUID", "end_x",
                   "length"):
        assert f": {column}: " in done.stderr, column
    assert f"{synthetic.all_csv}:" in done.stderr  # messages name the CSV file and line
    with (tmp_path / "out" / "manifest.csv").open(newline="", encoding="utf-8") as fh:
        status = [row["status"] for row in csv.DictReader(fh)]
    assert status.count("converted") == 4 and status.count("rejected") == 7


def test_cli_srs_with_images_have_fewer_dciodvfy_warnings_and_pass_dcentvfy(
    synthetic: SyntheticFixture, dciodvfy: Path, tmp_path: Path
) -> None:
    assert run_convert(synthetic.good_csv, "-o", tmp_path / "plain", "-q").returncode == 0
    done = run_convert(synthetic.good_csv, "-o", tmp_path / "rich", "--images",
                       synthetic.image_dir, "-q")
    assert done.returncode == 0, done.stderr
    plain = sorted((tmp_path / "plain" / "sr").rglob("*.dcm"))
    rich = sorted((tmp_path / "rich" / "sr").rglob("*.dcm"))
    assert [p.relative_to(tmp_path / "plain") for p in plain] == [
        p.relative_to(tmp_path / "rich") for p in rich
    ]
    for before, after in zip(plain, rich, strict=True):
        old, new = warnings_of(dciodvfy, before), warnings_of(dciodvfy, after)
        assert len(new) < len(old)
        assert any("Study ID" in w for w in old) and not any("Study ID" in w for w in new)
        assert pydicom.dcmread(after).StudyID != ""
    dcentvfy = dicom3tools_binary("dcentvfy")
    if dcentvfy is None:
        pytest.skip("dcentvfy is not installed (pip install dicom3tools)")
    findings = validate_against_images(rich, ImageIndex.from_folder(synthetic.image_dir))
    assert [f for f in findings if f["severity"] == "error"] == []
    assert any(f["source"] == "dcentvfy" for f in findings)  # it ran (its IE quirk)


def test_convert_without_images_is_unchanged_by_this_feature(
    synthetic: SyntheticFixture, tmp_path: Path
) -> None:
    """The broken rows are only broken against the images: without them all convert."""
    done = run_convert(synthetic.all_csv, "-o", tmp_path / "out", "-q")
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "out" / "sr").rglob("*.dcm"))) == 11
