"""csv2sr export: the real round trip CSV -> SR -> table, formats, CLI and exit codes.

The round trip converts the real CCC2017 CSV once per session (jobs=2) and exports the
2,345 SRs with the ``ccc2017`` profile: every row must come back, every column the SR
carries identical, coordinates equal to the input rounded to float32.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import csv2sr
from conftest import shared_once
from csv2sr.cli import app
from csv2sr.conversion.batch import convert
from csv2sr.export import (
    GENERIC_COLUMNS,
    ExportFormatError,
    ExportInputError,
    ProblemKind,
    export_table,
    float32_text,
    write_table,
)
from csv2sr.export import writer as export_writer
from csv2sr.mapping.load import load_profile

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CSV = ROOT / "fixtures" / "ccc2017-sample.csv"
POINTS = ("start_x", "start_y", "end_x", "end_y")
CARRIED = (
    "order", "anatomy", "seriesUID", "patientID", "instanceUID", "length", "annotator",
    "radiologist_status", "_id", "date_unix", "date", "StudyInstanceUID", "StudyDate",
    "SOPClassUID",
)
"""Columns the SR carries verbatim (StudyTime, points and sliceIndex are checked apart)."""


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def as_time(text: str) -> dt.time | None:
    """A TM or a CSV StudyTime that lost its leading zeros, as a time of day."""
    if not text.strip():
        return None
    whole, _, fraction = text.strip().partition(".")
    whole = whole.zfill(6)
    return dt.time(int(whole[:2]), int(whole[2:4]), int(whole[4:6]),
                   int((fraction or "0").ljust(6, "0")))


@pytest.fixture(scope="session")
def real_sr_dir(converted_real: Path) -> Path:
    """The real CSV converted once for the session (conftest): OUT/sr/<patient>/*.dcm."""
    assert len(list((converted_real / "sr").rglob("*.dcm"))) == 2345
    return converted_real


@pytest.fixture(scope="session")
def real_export(tmp_path_factory: pytest.TempPathFactory, real_sr_dir: Path) -> Path:
    """The converted real SRs exported with the ccc2017 profile (in parallel), once per
    test run (shared by the xdist workers)."""
    def build(folder: Path) -> None:
        result = write_table([real_sr_dir / "sr"], folder / "export.csv", profile="ccc2017",
                             jobs=2)
        assert result.ok, [str(p) for p in result.problems[:5]]
        assert (result.files, result.rows) == (2345, 2345)

    return shared_once(tmp_path_factory, "real-export", build) / "export.csv"


@pytest.fixture(scope="session")
def sample_sr_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sample-convert")
    result = convert(SAMPLE_CSV, out, jobs=1)
    assert result.ok
    return out / "sr"


# -- the round trip -------------------------------------------------------------------------


@pytest.mark.slow
def test_round_trip_gives_every_row_back(real_csv: Path, real_export: Path) -> None:
    source = read_csv_rows(real_csv)
    exported = read_csv_rows(real_export)
    assert list(exported[0]) == list(load_profile("ccc2017").columns)
    assert len(exported) == len(source) == 2345
    assert sorted(r["order"] for r in exported) == sorted(r["order"] for r in source)


@pytest.mark.slow
def test_round_trip_carried_columns_identical(real_csv: Path, real_export: Path) -> None:
    exported = {r["order"]: r for r in read_csv_rows(real_export)}
    differences = [
        (row["order"], column, row[column], exported[row["order"]][column])
        for row in read_csv_rows(real_csv)
        for column in CARRIED
        if row[column] != exported[row["order"]][column]
    ]
    assert differences == []


@pytest.mark.slow
def test_round_trip_coordinates_are_the_input_rounded_to_float32(
    real_csv: Path, real_export: Path
) -> None:
    exported = {r["order"]: r for r in read_csv_rows(real_export)}
    wrong = []
    for row in read_csv_rows(real_csv):
        back = exported[row["order"]]
        for column in POINTS:
            expected = np.float32(float(row[column]))
            if np.float32(float(back[column])) != expected or back[column] != float32_text(
                float(row[column])
            ):
                wrong.append((row["order"], column, row[column], back[column]))
    assert wrong == []
    # the shortest float32 decimal, not the float64 of the stored value
    assert exported["1"]["start_x"] == "172.83536"


@pytest.mark.slow
def test_round_trip_study_time_is_the_same_time_and_a_valid_tm(
    real_csv: Path, real_export: Path
) -> None:
    exported = {r["order"]: r for r in read_csv_rows(real_export)}
    for row in read_csv_rows(real_csv):
        back = exported[row["order"]]["StudyTime"]
        assert as_time(back) == as_time(row["StudyTime"]), row["order"]
        assert back == "" or len(back.partition(".")[0]) == 6  # repaired: leading zeros back
    assert exported["1"]["StudyTime"] == "135823"


@pytest.mark.slow
def test_round_trip_leaves_slice_index_empty(real_export: Path) -> None:
    assert {r["sliceIndex"] for r in read_csv_rows(real_export)} == {""}
    assert "sliceIndex" in load_profile("ccc2017").not_carried
    assert "sliceIndex" in (ROOT / "docs" / "export.md").read_text(encoding="utf-8")


def test_release_command_line_exits_0(real_sr_dir: Path, tmp_path: Path) -> None:
    """What the release Makefile runs, as a real process (one patient's folder, for speed)."""
    patient = sorted(p for p in (real_sr_dir / "sr").iterdir() if p.is_dir())[0]
    table = tmp_path / "export.csv"
    done = subprocess.run(
        [sys.executable, "-m", "csv2sr", "export", str(patient), "-o", str(table),
         "--profile", "ccc2017", "--quiet"],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    rows = read_csv_rows(table)
    assert len(rows) == len(list(patient.glob("*.dcm"))) > 0
    assert {r["patientID"] for r in rows} == {patient.name}
    assert table.read_bytes().count(b"\r\n") == len(rows) + 1  # CRLF, as the published CSV
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# -- the reference SR -------------------------------------------------------------------------


def test_reference_sr_exports_the_values_of_row_order_1(
    real_csv: Path, reference_sr: Path
) -> None:
    row = next(r for r in read_csv_rows(real_csv) if r["order"] == "1")
    frame = export_table([reference_sr], profile="ccc2017")
    assert len(frame) == 1
    back = frame.iloc[0].to_dict()
    assert frame.attrs["problems"] == []
    for column in CARRIED:
        if column == "radiologist_status":
            continue
        assert back[column] == row[column], column
    for column in POINTS:
        assert np.float32(float(back[column])) == np.float32(float(row[column]))
    assert as_time(back["StudyTime"]) == as_time(row["StudyTime"])
    # the 2018 pipeline did not record radiologist status (no observer role): documented
    assert back["radiologist_status"] == "not_radiologist"
    assert back["sliceIndex"] == ""


def test_reference_sr_generic_row_keeps_its_srt_codes(reference_sr: Path) -> None:
    frame = export_table(reference_sr)
    assert list(frame.columns) == list(GENERIC_COLUMNS)
    back = frame.iloc[0]
    assert back["measurement"] == "SRT:G-D7FE"
    assert back["finding_site"] == "SRT:T-71000"
    assert back["finding_site_meaning"] == "Kidney"
    assert back["procedure_reported"] == "LN:41806-1"
    assert back["template"] == "1501"
    assert back["item"] == "1.5.1.4"
    assert back["value"] == "66.43856134"
    assert back["points"] == "172.83536 270.0641 133.79889 343.04532"


# -- formats and API ---------------------------------------------------------------------------


def test_csv_parquet_and_jsonl_read_back_equal(sample_sr_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("pyarrow", reason="parquet output needs pyarrow")
    results = {
        kind: write_table([sample_sr_dir], tmp_path / f"t.{kind}", format=kind, jobs=1)
        for kind in ("csv", "parquet", "jsonl")
    }
    assert {r.rows for r in results.values()} == {12}
    from_csv = pd.read_csv(tmp_path / "t.csv", dtype=str, keep_default_na=False)
    from_parquet = pd.read_parquet(tmp_path / "t.parquet")
    with (tmp_path / "t.jsonl").open(encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh]
    assert all(record.pop("qualitative") == [] for record in records)  # nested, none here
    from_jsonl = pd.DataFrame(records, dtype=str)
    frames = [from_csv, from_parquet, from_jsonl]
    for frame in frames:
        assert list(frame.columns) == list(GENERIC_COLUMNS)
        assert len(frame) == 12
    pd.testing.assert_frame_equal(from_csv.astype(object), from_parquet.astype(object))
    pd.testing.assert_frame_equal(from_csv.astype(object), from_jsonl.astype(object))
    api = export_table([sample_sr_dir], jobs=1)
    pd.testing.assert_frame_equal(from_csv.astype(object), api.astype(object))


def test_public_api_is_exposed_and_returns_strings(sample_sr_dir: Path) -> None:
    frame = csv2sr.export_table(sample_sr_dir, profile="ccc2017")
    assert isinstance(frame, pd.DataFrame)
    source = {r["order"]: r for r in read_csv_rows(SAMPLE_CSV)}
    assert sorted(frame["order"]) == sorted(source)
    first = frame.set_index("order").loc["1"]
    assert first["length"] == source["1"]["length"]
    assert first["radiologist_status"] == "radiologist"
    assert first["anatomy"] == "Renal"


def test_srt_and_sct_sample_export_to_the_same_table(
    sample_sr_dir: Path, tmp_path: Path
) -> None:
    result = convert(SAMPLE_CSV, tmp_path / "srt", jobs=1, codes="srt")
    assert result.ok
    sct = export_table(sample_sr_dir, profile="ccc2017").sort_values("order")
    srt = export_table(tmp_path / "srt" / "sr", profile="ccc2017").sort_values("order")
    pd.testing.assert_frame_equal(sct.reset_index(drop=True), srt.reset_index(drop=True))
    generic = export_table(tmp_path / "srt" / "sr")
    assert set(generic["measurement"]) == {"SRT:G-D7FE"}


def test_parquet_is_written_in_row_groups(
    sample_sr_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Streaming: rows go out in batches, never as one table held in memory."""
    pq = pytest.importorskip("pyarrow.parquet", reason="parquet output needs pyarrow")
    monkeypatch.setattr(export_writer, "BATCH_ROWS", 5)
    write_table([sample_sr_dir], tmp_path / "t.parquet", jobs=1)
    metadata = pq.ParquetFile(tmp_path / "t.parquet").metadata
    assert metadata.num_rows == 12
    assert metadata.num_row_groups == 3


def test_unknown_profile_or_format_or_path_fails_before_writing(
    sample_sr_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(ExportFormatError, match="unknown profile"):
        write_table([sample_sr_dir], tmp_path / "a.csv", profile="nope")
    with pytest.raises(ExportFormatError, match="unknown format"):
        write_table([sample_sr_dir], tmp_path / "a.csv", format="xlsx")
    with pytest.raises(ExportInputError, match="no such file"):
        write_table([tmp_path / "missing"], tmp_path / "a.csv")
    assert list(tmp_path.iterdir()) == []


def test_output_is_replaced_atomically(sample_sr_dir: Path, tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    table.write_text("old\n", encoding="utf-8")
    write_table([sample_sr_dir], table, profile="ccc2017", jobs=1)
    assert table.read_text(encoding="utf-8").startswith("order,anatomy,")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]


# -- command line -----------------------------------------------------------------------------


def test_cli_usage_errors_exit_2(sample_sr_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["export", str(tmp_path / "nope"), "-o", str(tmp_path / "t")])
    assert missing.exit_code == 2
    bad_format = runner.invoke(
        app, ["export", str(sample_sr_dir), "-o", str(tmp_path / "t"), "--format", "xlsx"])
    assert bad_format.exit_code == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "README.txt").write_text("no DICOM here", encoding="utf-8")
    nothing = runner.invoke(app, ["export", str(empty), "-o", str(tmp_path / "t.csv")])
    assert nothing.exit_code == 2
    assert "no DICOM files" in nothing.output
    assert not (tmp_path / "t.csv").exists()


def test_cli_writes_format_from_suffix(sample_sr_dir: Path, tmp_path: Path) -> None:
    table = tmp_path / "nested" / "t.jsonl"
    done = CliRunner().invoke(app, ["export", str(sample_sr_dir), "-o", str(table), "-q"])
    assert done.exit_code == 0, done.output
    lines = table.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 12
    assert set(json.loads(lines[0])) == {*GENERIC_COLUMNS, "qualitative"}


def test_folder_walk_takes_dicom_without_suffix_and_passes_over_other_files(
    sample_sr_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "mixed" / "deeper"
    folder.mkdir(parents=True)
    first = sorted(sample_sr_dir.rglob("*.dcm"))[0]
    (folder / "IM0001").write_bytes(first.read_bytes())
    (tmp_path / "mixed" / "manifest.csv").write_text("a,b\n", encoding="utf-8")
    result = write_table([tmp_path / "mixed"], tmp_path / "t.csv")
    assert (result.files, result.rows, result.problems) == (1, 1, [])


def test_problems_are_counted_by_kind() -> None:
    assert ProblemKind.UNREADABLE.is_error
    assert ProblemKind.UNRECOGNISED.is_error
    assert not ProblemKind.NOTE.is_error


def test_progress_reports_every_file(sample_sr_dir: Path, tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    write_table([sample_sr_dir], tmp_path / "t.csv", progress=lambda d, t: seen.append((d, t)))
    assert seen == [(i, 12) for i in range(1, 13)]


def test_default_jobs_runs_in_parallel_on_many_files(
    real_sr_dir: Path, tmp_path: Path
) -> None:
    """More than two chunks of files with jobs=2 goes through the process pool, in order."""
    files = sorted((real_sr_dir / "sr").rglob("*.dcm"))[:100]
    serial = export_table(files, jobs=1)
    parallel = export_table(files, jobs=2)
    pd.testing.assert_frame_equal(serial, parallel)
    assert list(parallel["file"]) == [os.fspath(f) for f in files]


def test_a_file_reached_twice_is_read_once(sample_sr_dir: Path, tmp_path: Path) -> None:
    one = sorted(sample_sr_dir.rglob("*.dcm"))[0]
    result = write_table([sample_sr_dir, one, sample_sr_dir], tmp_path / "t.csv")
    assert (result.files, result.rows) == (12, 12)


def test_cli_unwritable_output_is_a_usage_error(sample_sr_dir: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be", encoding="utf-8")
    done = CliRunner().invoke(
        app, ["export", str(sample_sr_dir), "-o", str(blocker / "t.csv"), "-q"])
    assert done.exit_code == 2
    assert "cannot write" in done.output
