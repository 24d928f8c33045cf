"""conversion/read.py and checks.py: the CSV read as text, every row rule, and whole-file errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import FIXTURES
from csv2sr.conversion.checks import (
    InputFileError,
    Record,
    RowError,
    read_rows,
    repair_study_time,
)
from csv2sr.mapping.load import load_profile
from records import length, order

PROFILE = load_profile("ccc2017")


@pytest.mark.parametrize(
    ("raw", "repaired"),
    [
        ("135823", "135823"),
        ("93309.25", "093309.25"),
        ("84529.765", "084529.765"),
        ("3138", "003138"),
        ("0", "000000"),
        ("", ""),
        ("235959", "235959"),
    ],
)
def test_study_time_repair(raw: str, repaired: str) -> None:
    assert repair_study_time(raw) == repaired


@pytest.mark.parametrize("raw", ["250000", "996000", "12a", "1.2.3", "1234567", "-5"])
def test_study_time_unrepairable(raw: str) -> None:
    with pytest.raises(ValueError):
        repair_study_time(raw)


def test_real_csv_reads_as_text(real_csv: Path) -> None:
    rows = list(read_rows(real_csv, PROFILE))
    assert len(rows) == 2345
    assert all(isinstance(r, Record) for r in rows)
    first = rows[0]
    assert isinstance(first, Record)
    assert first.line == 2 and order(first) == 1
    assert length(first) == "66.43856134"  # verbatim, no float round trip
    times = {r.cells["StudyTime"]: r.study_time for r in rows if isinstance(r, Record)}
    assert times["93309.25"] == "093309.25"
    assert sum(1 for r in rows if isinstance(r, Record) and not r.study_time) == 18
    assert all(len(r.study_time) in (0, 6) or r.study_time[6] == "." for r in rows
               if isinstance(r, Record))


EXPECTED_BAD = {
    3: ("seriesUID", "not a valid UID"),
    4: ("instanceUID", "not a valid UID"),
    5: ("StudyInstanceUID", "not a valid UID"),
    6: ("length", "not a number"),
    7: ("length", "must be greater than 0"),
    8: ("length", "not a finite number"),
    9: ("start_x", "negative coordinate"),
    10: ("end_y", "not a finite number"),
    11: ("annotator", "empty"),
    12: ("_id", "empty"),
    13: ("anatomy", "unknown anatomy"),
    14: ("StudyDate", "not a calendar date"),
    15: ("StudyTime", "not a time"),
    16: ("StudyTime", "not a time of day"),
    17: ("date_unix", "not an integer"),
    18: ("_id", "duplicate of line 2"),
    19: ("radiologist_status", "expected 'radiologist'"),
    20: ("order", "not an integer"),
}


def test_each_defect_is_reported_on_its_line() -> None:
    path = FIXTURES / "ccc2017-bad.csv"
    rows = list(read_rows(path, PROFILE))
    assert len(rows) == 20
    errors = {r.line: r for r in rows if isinstance(r, RowError)}
    good = [r.line for r in rows if isinstance(r, Record)]
    assert good == [2, 21]
    assert set(errors) == set(EXPECTED_BAD)
    for line, (column, text) in EXPECTED_BAD.items():
        problems = errors[line].problems
        assert len(problems) == 1, problems
        assert problems[0].column == column
        assert text in problems[0].message
        message = errors[line].messages()[0]
        assert message.startswith(f"{path}:{line}: {column}: ")
        assert message.endswith(f"({problems[0].value!r})")


def test_a_row_with_several_defects_lists_them_all(tmp_path: Path) -> None:
    lines = (FIXTURES / "ccc2017-sample.csv").read_text().splitlines()
    cells = lines[1].split(",")
    cells[5], cells[6] = "x", "-2"
    path = tmp_path / "two.csv"
    path.write_text("\n".join([lines[0], ",".join(cells)]) + "\n")
    (row,) = read_rows(path, PROFILE)
    assert isinstance(row, RowError)
    assert [p.column for p in row.problems] == ["length", "start_x"]


def test_wrong_field_count_is_rejected_not_dropped(tmp_path: Path) -> None:
    lines = (FIXTURES / "ccc2017-sample.csv").read_text().splitlines()
    path = tmp_path / "ragged.csv"
    path.write_text("\n".join([lines[0], lines[1] + ",extra", lines[2], lines[3][:40]]) + "\n")
    rows = list(read_rows(path, PROFILE))
    assert [type(r).__name__ for r in rows] == ["RowError", "Record", "RowError"]
    assert rows[0].line == 2 and "21 fields" in rows[0].problems[0].message  # type: ignore[union-attr]
    assert rows[2].line == 4 and rows[2].problems[0].column == "(row)"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("ccc2017-missing-columns.csv", "missing required column(s): length, StudyTime"),
        ("ccc2017-header-only.csv", "header only: no data rows"),
        ("empty.csv", "the file is empty"),
        ("not-a-csv.csv", "not a CSV file"),
        ("no-such-file.csv", "no such file"),
    ],
)
def test_unusable_files(name: str, message: str) -> None:
    with pytest.raises(InputFileError) as info:
        list(read_rows(FIXTURES / name, PROFILE))
    assert message in str(info.value)
    assert str(FIXTURES / name) in str(info.value)


def test_text_without_commas_is_not_a_csv(tmp_path: Path) -> None:
    path = tmp_path / "notes.csv"
    path.write_text("just some notes\nand more\n")
    with pytest.raises(InputFileError, match="not a CSV file"):
        list(read_rows(path, PROFILE))
