"""No traceback on bad input: ``csv2sr convert`` run as a user runs it (a subprocess).

Whatever the table holds, the command exits 0 or 1 (2 for usage), prints no traceback, and
every line it prints on stderr is either ``error: <file>...`` (the file as a whole) or one
``<file>:<line>: <column>: <problem>`` per rejected cell, the rest of the batch converted.
Explicit cases (one table holding each defect of issue 9) and seeded random corruptions
of a valid table (more under ``make fuzz``).
"""

from __future__ import annotations

import csv
import logging
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIXTURES, FUZZ
from csv2sr.conversion.batch import _Worker
from csv2sr.conversion.checks import Record, RowError, read_rows
from csv2sr.conversion.document import as_document
from csv2sr.dicom.codes import CodeMode
from csv2sr.mapping.load import load_profile
from records import with_points

PROFILE = load_profile("ccc2017")
SAMPLE = FIXTURES / "ccc2017-sample.csv"
_LINES = SAMPLE.read_text(encoding="utf-8").splitlines()
HEADER, DATA = _LINES[0], _LINES[1:]
COLUMNS = HEADER.split(",")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "csv2sr", *args], capture_output=True, text=True,
        timeout=300, check=False, encoding="utf-8", errors="replace",
    )


def _row(n: int, **cells: str) -> str:
    values = dict(zip(COLUMNS, DATA[n % len(DATA)].split(","), strict=True))
    values.update({"order": str(n + 1), "_id": f"tb{n:08d}", **cells})
    return ",".join(values[c] for c in COLUMNS)


def _assert_clean(proc: subprocess.CompletedProcess[str], path: Path) -> list[str]:
    """Exit 0/1, no traceback, every stderr line a one-line message about ``path``."""
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    name = re.escape(str(path))
    shape = re.compile(rf"^(error: {name}(:\d+)?: |{name}:\d+: \S+: )")
    for line in lines:
        assert shape.match(line), line
    return lines


def test_each_defect_of_the_issue_is_one_line_naming_file_line_column(tmp_path: Path) -> None:
    rows = [
        _row(0),
        _row(1, order="9" * 5000),
        _row(2, date_unix="1" * 5000),
        _row(3, length="9" * 4000),
        _row(4, start_x="1e39"),
        _row(5, StudyDate="20010203\t"),
        _row(6, annotator="x" * 64),
        _row(7, patientID="a\\b"),
        _row(8),
    ]
    body = ("\n".join([HEADER, *rows]) + "\n").encode()
    padding = "\n".join(_row(100 + i) for i in range(300)).encode() + b"\n"
    late_bad = _row(9, annotator="brave@otter").encode().replace(b"@", b"\xff")
    nul = _row(10, _id="nul\x00here").encode()
    huge = _row(11, _id="y" * 200_000).encode()
    unclosed = _row(12, annotator='"never closed').encode()
    path = tmp_path / "defects.csv"
    path.write_bytes(body + padding + b"\n".join([late_bad, nul, huge, _row(13).encode(),
                                                    unclosed]) + b"\n")
    proc = run("convert", str(path), "-o", str(tmp_path / "out"), "--jobs", "1")
    lines = _assert_clean(proc, path)
    assert proc.returncode == 1
    first = 11 + 300
    expected = {
        3: "order: longer than the 12 characters an IS may hold",
        4: "date_unix: outside 1970-01-01",
        5: "length: longer than the 16 characters a DS may hold",
        6: "start_x: outside the range of a 32-bit float",
        7: "StudyDate: not a date YYYYMMDD ('20010203\\t')",
        8: "annotator: a component group is longer than 64 characters",
        9: "patientID: contains a backslash",
        first: "annotator: not UTF-8 text (byte 0xff)",
        first + 1: "_id: contains the control character U+0000",
        first + 2: "(row): a cell is longer than 131072 characters",
        first + 4: "(row): a quoted cell is not closed before the end of the file",
    }
    for line, text in expected.items():
        assert any(m.startswith(f"{path}:{line}: {text}") for m in lines), (line, lines)
    assert len(lines) == len(expected)
    assert all(len(m) < 400 for m in lines)
    converted = 2 + 300 + 1  # rows 2 and 10, the padding, and the row after the huge cell
    assert f"{converted + len(expected)} rows read, {converted} converted" in proc.stdout


_NASTY = [b"\xff", b"\x00", b'"', b"\r", b"\n", b",", b"\\", b"\t", b"\xc3", b"\x1b",
          b"9" * 5000, b"x" * 140_000, "١٢".encode(), b"\xef\xbb\xbf", b"^", b"="]


def _corrupt(data: bytes, rng: random.Random) -> bytes:
    """``data`` with a few random insertions, deletions, duplications or a truncation."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        at = rng.randrange(len(out) or 1)
        kind = rng.choice(["insert", "insert", "delete", "duplicate", "truncate"])
        if kind == "insert":
            out[at:at] = rng.choice(_NASTY)
        elif kind == "delete":
            del out[at:at + rng.randint(1, 40)]
        elif kind == "duplicate":
            out[at:at] = out[max(0, at - 200):at]
        elif len(out) > 400:
            del out[rng.randint(300, len(out)):]
    return bytes(out)


@pytest.mark.property
@pytest.mark.parametrize("seed", range(60 if FUZZ else 5))
def test_a_corrupted_table_never_gives_a_traceback(seed: int, tmp_path: Path) -> None:
    rng = random.Random(seed)
    path = tmp_path / "corrupt.csv"
    path.write_bytes(_corrupt(SAMPLE.read_bytes(), rng))
    proc = run("convert", str(path), "-o", str(tmp_path / "out"), "--jobs", "1")
    _assert_clean(proc, path)
    if proc.returncode == 0:
        return
    manifest = tmp_path / "out" / "manifest.csv"
    if manifest.exists():  # the rows that were read: each converted or rejected, none lost
        with manifest.open(newline="", encoding="utf-8") as fh:
            statuses = [m["status"] for m in csv.DictReader(fh)]
        assert statuses and set(statuses) <= {"converted", "rejected"}


def test_a_row_the_builder_refuses_is_one_line_naming_the_column(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The worker's error path: no traceback text as the reason, nothing above debug."""
    row = next(r for r in read_rows(SAMPLE, PROFILE) if isinstance(r, Record))
    # bypasses the row checks, which would refuse it: the builder must fail cleanly
    broken = with_points(row, (1e39, 1.0, 2.0, 3.0))
    worker = _Worker(SAMPLE, tmp_path, PROFILE, CodeMode.SCT, None, False)
    with caplog.at_level(logging.DEBUG, logger="csv2sr"):
        (result,) = worker.handle(as_document(broken, PROFILE))
    assert isinstance(result, RowError)
    (message,) = result.messages()
    assert message.startswith(f"{SAMPLE}:{row.line}: start_x/start_y/end_x/end_y: could not be "
                              "encoded: OSError: float too large to pack with f format")
    assert "\n" not in message and len(message) < 400 and "Traceback" not in message
    assert all(record.levelno <= logging.DEBUG for record in caplog.records)
    assert not list(tmp_path.rglob("*.dcm"))
