"""conversion/batch.py: files, manifest, rejected rows, determinism, safe names, atomic writes."""

from __future__ import annotations

import csv
import hashlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest

from conftest import FIXTURES
from csv2sr.conversion import batch
from csv2sr.conversion.batch import convert, manifest_columns
from csv2sr.conversion.outputs import safe_name
from csv2sr.mapping.load import load_profile


def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


def _manifest(outdir: Path) -> list[dict[str, str]]:
    with (outdir / "manifest.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_sample_converts(sample_csv: Path, tmp_path: Path) -> None:
    result = convert(sample_csv, tmp_path, jobs=1)
    assert (result.rows_read, result.converted, result.rejected) == (12, 12, 0)
    manifest = _manifest(tmp_path)
    assert list(manifest[0]) == list(manifest_columns(load_profile("ccc2017")))
    assert [m["line"] for m in manifest] == [str(n) for n in range(2, 14)]
    for entry in manifest:
        ds = pydicom.dcmread(tmp_path / entry["path"])
        assert ds.SOPInstanceUID == entry["sop_instance_uid"]
        assert ds.SeriesInstanceUID == entry["series_instance_uid"]
        assert str(ds.InstanceNumber) == entry["order"]
        assert entry["status"] == "converted"
    assert (tmp_path / "rejected.csv").read_text().count("\n") == 1  # header only


def test_patient_id_cannot_escape_outdir(sample_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    convert(sample_csv, out, jobs=1)
    files = [p.resolve() for p in out.rglob("*.dcm")]
    assert len(files) == 12
    assert all(out.resolve() in p.parents for p in files)
    assert not (tmp_path / "escape").exists()
    assert safe_name("../x") != safe_name("__x") and "/" not in safe_name("a/b")
    assert safe_name("TCGA-BP-4343") == "TCGA-BP-4343"


def test_two_conversions_are_byte_identical(sample_csv: Path, tmp_path: Path) -> None:
    convert(sample_csv, tmp_path / "a", jobs=1)
    convert(sample_csv, tmp_path / "b", jobs=2)
    convert(sample_csv, tmp_path / "c", jobs=1, fast=False)
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b") == _tree(tmp_path / "c")


def test_small_table_without_jobs_is_converted_in_process(
    sample_csv: Path, tmp_path: Path, pool_starts: list[int]
) -> None:
    """Under INLINE_ROWS rows and no ``jobs``: no worker pool is started, and the SRs are
    the pool's, byte for byte; with ``jobs`` given the pool is used even for 12 rows."""
    started = pool_starts
    convert(sample_csv, tmp_path / "pool", jobs=2)
    started.clear()
    assert convert(sample_csv, tmp_path / "inline").converted == 12
    assert started == []
    assert _tree(tmp_path / "inline") == _tree(tmp_path / "pool")
    convert(sample_csv, tmp_path / "again", jobs=2)
    assert started == [2]
    assert batch.INLINE_ROWS > 12


def test_rerun_into_same_outdir_gives_same_tree(sample_csv: Path, tmp_path: Path) -> None:
    convert(sample_csv, tmp_path, jobs=1)
    first = _tree(tmp_path)
    convert(sample_csv, tmp_path, jobs=1)
    assert _tree(tmp_path) == first
    # a row removed from the CSV: its SR goes too, and only csv2sr's own files are touched
    (tmp_path / "mine.txt").write_text("keep me")
    shorter = tmp_path / "shorter.csv"
    shorter.write_text("".join(sample_csv.read_text().splitlines(keepends=True)[:-1]))
    convert(shorter, tmp_path, jobs=1)
    assert (tmp_path / "mine.txt").read_text() == "keep me"
    assert len(list((tmp_path / "sr").rglob("*.dcm"))) == 11


def test_bad_rows_go_to_rejected_csv(tmp_path: Path) -> None:
    result = convert(FIXTURES / "ccc2017-bad.csv", tmp_path, jobs=1)
    assert (result.rows_read, result.converted, result.rejected) == (20, 2, 18)
    manifest = _manifest(tmp_path)
    assert len(manifest) == 20  # one line per input row: nothing silently dropped
    assert sum(m["status"] == "rejected" for m in manifest) == 18
    with (tmp_path / "rejected.csv").open(newline="") as fh:
        rejected = list(csv.DictReader(fh))
    assert [r["line"] for r in rejected] == [str(n) for n in range(3, 21)]
    assert rejected[3]["reason"] == "length: not a number ('abc')"
    assert rejected[3]["length"] == "abc"  # the row's own cells, as written


def test_interrupted_run_leaves_no_partial_file(real_csv: Path, tmp_path: Path) -> None:
    """Kill a slow (highdicom) conversion mid-run: every .dcm present is complete."""
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "csv2sr", "convert", str(real_csv), "-o", str(out),
         "--reference-builder", "--jobs", "2", "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(out.rglob("*.dcm"))) < 20:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    proc.wait(timeout=60)
    files = list(out.rglob("*.dcm"))
    assert 20 <= len(files) < 2345
    for path in files:
        ds = pydicom.dcmread(path)
        assert ds.ContentSequence[-1].ValueType == "CONTAINER"  # read to the end
    assert not (out / "manifest.csv").exists() or len(_manifest(out)) < 2345


@pytest.mark.slow
def test_real_csv_twice_is_byte_identical(real_csv: Path, converted_real: Path,
                                          tmp_path: Path) -> None:
    convert(real_csv, tmp_path, jobs=2)
    assert _tree(tmp_path) == _tree(converted_real)
