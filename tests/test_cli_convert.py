"""The convert command as a user runs it: messages, exit status, --help, --codes srt."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from conftest import FIXTURES


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "csv2sr", *args],
        capture_output=True, text=True, timeout=300, check=False,
    )


def test_all_rows_converted_exit_0(sample_csv: Path, tmp_path: Path) -> None:
    proc = run("convert", str(sample_csv), "-o", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "12 rows read, 12 converted, 0 rejected" in proc.stdout
    assert "SR/s" in proc.stdout


def test_bad_rows_exit_1_and_name_file_line_column(tmp_path: Path) -> None:
    bad = FIXTURES / "ccc2017-bad.csv"
    proc = run("convert", str(bad), "-o", str(tmp_path))
    assert proc.returncode == 1
    assert f"{bad}:6: length: not a number ('abc')" in proc.stderr
    assert f"{bad}:18: _id: duplicate of line 2" in proc.stderr
    assert proc.stderr.count(f"{bad}:") == 18
    assert "20 rows read, 2 converted, 18 rejected" in proc.stdout
    assert len(list(tmp_path.rglob("*.dcm"))) == 2


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("ccc2017-missing-columns.csv", "missing required column(s): length, StudyTime"),
        ("ccc2017-header-only.csv", "header only"),
        ("empty.csv", "the file is empty"),
        ("not-a-csv.csv", "not a CSV file"),
    ],
)
def test_unusable_file_exit_1(name: str, message: str, tmp_path: Path) -> None:
    proc = run("convert", str(FIXTURES / name), "-o", str(tmp_path / "out"))
    assert proc.returncode == 1
    assert message in proc.stderr and name in proc.stderr
    assert not (tmp_path / "out").exists()  # nothing written for an unusable file


def test_usage_errors_exit_2(sample_csv: Path, tmp_path: Path) -> None:
    assert run("convert", str(tmp_path / "missing.csv"), "-o", str(tmp_path)).returncode == 2
    assert run("convert", str(sample_csv)).returncode == 2  # no -o
    assert run("convert", str(sample_csv), "-o", str(tmp_path), "--codes", "xyz").returncode == 2
    assert run("convert", str(sample_csv), "-o", str(tmp_path), "--jobs", "0").returncode == 2


def test_help_explains(tmp_path: Path) -> None:
    proc = run("convert", "--help")
    assert proc.returncode == 0
    for text in ("--codes", "--jobs", "rejected.csv", "manifest.csv", "Exit status"):
        assert text in proc.stdout


def test_quiet_and_srt(sample_csv: Path, tmp_path: Path) -> None:
    proc = run("convert", str(sample_csv), "-o", str(tmp_path), "--codes", "srt", "--quiet")
    assert proc.returncode == 0 and proc.stdout == ""
    ds = pydicom.dcmread(next(tmp_path.rglob("order-0001.dcm")))
    group = ds.ContentSequence[-1].ContentSequence[0]
    schemes = {
        item.ConceptNameCodeSequence[0].CodingSchemeDesignator for item in group.ContentSequence
    }
    assert "SRT" in schemes and "SCT" not in schemes


def test_progress_bar_on_a_terminal_only(sample_csv: Path, tmp_path: Path) -> None:
    """On a terminal the user sees a progress bar; piped output stays clean (see above)."""
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "csv2sr", "convert", str(sample_csv), "-o", str(tmp_path)],
        stdin=child, stdout=child, stderr=child, close_fds=True,
        env={**os.environ, "TERM": "xterm", "COLUMNS": "100"},
    )
    os.close(child)
    chunks: list[bytes] = []
    while True:
        try:
            data = os.read(main, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(timeout=120) == 0
    os.close(main)
    screen = b"".join(chunks).decode("utf-8", "replace")
    assert "Converting" in screen and "12/12" in screen
    assert "12 rows read, 12 converted, 0 rejected" in screen


def test_cache_option_builds_nothing_again_and_says_so(sample_csv: Path, tmp_path: Path) -> None:
    out, cache = tmp_path / "out", tmp_path / "out" / "cache" / "convert.json"
    first = run("convert", str(sample_csv), "-o", str(out), "--cache", str(cache), "-v")
    assert first.returncode == 0, first.stderr
    assert "convert cache: 0 of the SRs were already written" in first.stdout + first.stderr
    files = {p: p.read_bytes() for p in (out / "sr").rglob("*.dcm")}
    second = run("convert", str(sample_csv), "-o", str(out), "--cache", str(cache), "-v")
    assert second.returncode == 0, second.stderr
    assert "convert cache: 12 of the SRs were already written" in second.stdout + second.stderr
    assert {p: p.read_bytes() for p in (out / "sr").rglob("*.dcm")} == files


def test_cache_that_cannot_be_written_is_one_line(sample_csv: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = run("convert", str(sample_csv), "-o", str(tmp_path / "out"), "--cache",
               str(blocker / "convert.json"))
    assert proc.returncode == 2  # a path through a file, as for -o: a usage error
    assert "Traceback" not in proc.stderr
    assert str(blocker) in proc.stderr
