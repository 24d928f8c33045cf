"""After any successful run, ``sr/`` holds exactly the manifest's converted rows.

Whatever happened before: earlier runs with other tables (rows removed, rows moved to
another patient), temporary files and a manifest of a killed run, a crashed run.  And
``check-release`` verifies it.  Real conversions on real files; the run sequences are
generated.
"""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import FileMetaDataset

from csv2sr.atomic import is_temporary, temp_name
from csv2sr.conversion.batch import convert
from csv2sr.release.check import _sr_invariant, check_release
from csv2sr.release.folder import converted_paths
from rowgen import SAMPLE, sample_rows, synthetic_csv

POOL = 40
"""Rows a generated table picks from: order n is always row n (possibly another patient)."""


def _manifest(out: Path) -> list[dict[str, str]]:
    with (out / "manifest.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def assert_invariant(out: Path) -> None:
    """``sr/`` is exactly the manifest's converted rows, each the SR the manifest says."""
    manifest = _manifest(out)
    listed = set(converted_paths(manifest, out))
    files = {p.relative_to(out).as_posix() for p in (out / "sr").rglob("*") if p.is_file()}
    assert files == listed
    assert _sr_invariant(out, sorted(listed)) == []
    assert not [p for p in out.rglob("*") if is_temporary(p.name)]
    for row in manifest:
        if row["status"] == "converted":
            ds = pydicom.dcmread(out / row["path"], stop_before_pixels=True)
            assert ds.SOPInstanceUID == row["sop_instance_uid"]


def _table(path: Path, picks: list[tuple[int, int]]) -> Path:
    """Rows of the pool: (order, patient variant) each."""
    fields, sample = sample_rows()
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fields, lineterminator="\n")
        writer.writeheader()
        for order, variant in picks:
            row = dict(sample[order % len(sample)])
            row["order"] = str(order)
            row["_id"] = f"pool{order:027d}"
            row["patientID"] = f"POOL-{order % 7}-{variant}"
            writer.writerow(row)
    return path


def _plant_leftovers(out: Path, salt: int) -> None:
    """What a killed run leaves: temporary files (this version's and 0.1.0's), a manifest
    that lists paths outside, an empty patient folder."""
    folder = out / "sr" / f"POOL-{salt % 7}-0"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / temp_name(f"order-{salt:04d}.dcm")).write_bytes(b"half an SR")
    (folder / f".order-{salt:04d}.dcm.12345.tmp").write_bytes(b"half an SR, 0.1.0")
    (out / "sr" / "EMPTY-FOLDER").mkdir(exist_ok=True)
    (out / temp_name("manifest.csv")).write_text("line\n")
    (out / "manifest.csv").write_text(
        "line,order,_id,path,sop_instance_uid,series_instance_uid,tracking_uid,status,message\n"
        "2,1,x,/etc/passwd,,,,converted,\n3,2,y,sr/NOT-THERE/order-0001.dcm,,,,converted,\n"
    )


_RUN = st.tuples(
    st.lists(st.tuples(st.integers(1, POOL), st.integers(0, 1)), max_size=POOL,
             unique_by=lambda pick: pick[0]),
    st.booleans(),  # leftovers of a killed run before this one
)


@pytest.mark.property
@settings(database=None, deadline=None, max_examples=15)
@given(st.lists(_RUN, min_size=2, max_size=4))
def test_every_run_leaves_exactly_its_rows(
    tmp_path_factory: pytest.TempPathFactory, runs: list[tuple[list[tuple[int, int]], bool]]
) -> None:
    base = tmp_path_factory.mktemp("runs")
    out = base / "out"
    for number, (picks, leftovers) in enumerate(runs):
        if leftovers:
            _plant_leftovers(out, number + 1)
        table = _table(base / f"run{number}.csv", picks or [(1, 0)])
        result = convert(table, out, jobs=1)
        assert result.converted == len(picks or [(1, 0)])
        assert_invariant(out)


def test_a_crashed_run_then_another_table_keeps_no_orphan(tmp_path: Path) -> None:
    """SIGKILL (no cleanup at all) in the middle of a run; the next run, with a table of
    other rows, leaves only its own rows."""
    out = tmp_path / "out"
    big = synthetic_csv(tmp_path / "big.csv", 600, patients=40)
    proc = subprocess.Popen(
        [sys.executable, "-m", "csv2sr", "convert", str(big), "-o", str(out), "--jobs", "2",
         "--reference-builder", "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(list(out.rglob("*.dcm"))) < 10:
        time.sleep(0.1)
    import os  # noqa: PLC0415

    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    orphans = list((out / "sr").rglob("*.dcm"))
    assert orphans, "the crashed run wrote some SRs"
    assert not (out / "manifest.csv").exists()  # the crashed run's manifest claims nothing
    other = synthetic_csv(tmp_path / "other.csv", 5, first_order=10_000)
    result = convert(other, out, jobs=1)
    assert result.converted == 5
    assert_invariant(out)
    assert len(list((out / "sr").rglob("*.dcm"))) == 5


def _foreign_dicom(path: Path) -> None:
    """A DICOM file another program wrote, with csv2sr's file name."""
    ds = pydicom.Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.22"
    ds.SOPInstanceUID = "2.25.1"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.file_meta.ImplementationVersionName = "OTHER_TOOL_1"
    ds.save_as(path, enforce_file_format=True)


def test_an_sr_csv2sr_did_not_write_is_never_removed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    convert(SAMPLE, out, jobs=1)
    theirs = out / "sr" / "SYN-0001" / "order-0999.dcm"
    _foreign_dicom(theirs)
    before = theirs.read_bytes()
    with pytest.raises(Exception, match="not an SR written by csv2sr"):
        convert(SAMPLE, out, jobs=1)
    assert theirs.read_bytes() == before
    theirs.unlink()
    convert(SAMPLE, out, jobs=1)
    assert_invariant(out)


def test_check_release_sees_a_stale_sr_and_rerunning_removes_it(tmp_path: Path) -> None:
    out = tmp_path / "out"
    convert(SAMPLE, out, jobs=1)
    first = sorted((out / "sr").rglob("*.dcm"))[0]
    stale = first.with_name("order-0999.dcm")
    stale.write_bytes(first.read_bytes())  # an SR csv2sr wrote, no longer in the table
    problems = check_release(out)
    assert any("not converted rows of the manifest" in p and "order-0999" in p
               for p in problems), problems
    first.unlink()
    assert any("missing" in p for p in check_release(out))
    convert(SAMPLE, out, jobs=1)
    assert not stale.exists()
    assert_invariant(out)


def test_a_manifest_path_outside_sr_blocks_the_release(tmp_path: Path) -> None:
    out = tmp_path / "out"
    convert(SAMPLE, out, jobs=1)
    text = (out / "manifest.csv").read_text()
    first_path = _manifest(out)[0]["path"]
    (out / "manifest.csv").write_text(text.replace(first_path, "../../etc/passwd", 1))
    from csv2sr.release.folder import ReleaseError  # noqa: PLC0415

    with pytest.raises(ReleaseError, match="not an SR file under sr/"):
        check_release(out)
