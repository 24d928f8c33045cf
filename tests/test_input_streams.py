"""The CSV reader: one streaming pass, right line numbers, bounded time on any input.

Devices and FIFOs are read as streams (and refused from their first bytes when they are not
text); a header of a million columns is read in linear time; a bad byte, an unclosed
quote, an oversized cell or an overlong line rejects the record it is in, naming file,
line (and column where there is one), and the rest of the table goes on.  Generated tables
(hypothesis) prove that every record reads back as csv.writer wrote it, on the physical
line it starts on, whatever blank lines, quoted newlines and line endings surround it.
"""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import FIXTURES, ROOT
from csv2sr.conversion import read as rows_module
from csv2sr.conversion.batch import convert
from csv2sr.conversion.checks import InputFileError, Record, RowError, read_rows
from csv2sr.conversion.read import read_table
from csv2sr.mapping.load import load_profile
from csv2sr.release.folder import read_source

PROFILE = load_profile("ccc2017")
SAMPLE = FIXTURES / "ccc2017-sample.csv"
_LINES = SAMPLE.read_text(encoding="utf-8").splitlines()
HEADER, DATA = _LINES[0], _LINES[1:]
_BREAK = re.compile(r"\r\n|\r|\n")


def run_cli(*args: str, timeout: float = 120, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """``csv2sr ARGS`` as a user runs it; ``timeout`` turns a hang into a failure."""
    return subprocess.run(
        [sys.executable, "-m", "csv2sr", *args], capture_output=True, text=True,
        timeout=timeout, check=False, **kwargs,  # type: ignore[call-overload]
    )


def _numbered(n: int) -> list[str]:
    """``n`` valid sample rows with distinct order and _id."""
    out = []
    for i in range(n):
        cells = DATA[i % len(DATA)].split(",")
        cells[0], cells[12] = str(i + 1), f"row{i:08d}"
        out.append(",".join(cells))
    return out


# --- every record reads back as written, on its own line -----------------------------------

CELL = st.text(st.sampled_from('ab ,"\n\r\té中'), max_size=6)


@st.composite
def tables(draw: st.DrawFn) -> tuple[str, list[tuple[int, list[str]]], int]:
    """CSV text (csv.writer, mixed line endings, blank and whitespace-only lines between
    records), the (start line, cells) of every data record, and the width."""
    width = draw(st.integers(2, 5))
    header = [f"c{i}" for i in range(width)]
    records = draw(st.lists(st.lists(CELL, min_size=width, max_size=width), max_size=8))
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    text, line, expected = "", 1, []
    for fields in [header, *records]:
        for _ in range(draw(st.integers(0, 2)) if fields is not header else 0):
            blank = draw(st.sampled_from(["", "   ", "\t"])) + ending
            text, line = text + blank, line + 1
        buffer = io.StringIO()
        # csv.writer quotes only the characters of its own line ending: a lone CR in a
        # cell would then end the line for any reader, so such rows are quoted whole
        quoting = csv.QUOTE_ALL if any("\r" in f for f in fields) else csv.QUOTE_MINIMAL
        csv.writer(buffer, lineterminator=ending, quoting=quoting).writerow(fields)
        piece = buffer.getvalue()
        if fields is not header:
            expected.append((line, fields))
        text += piece
        line += len(_BREAK.findall(piece))
    return text, expected, width


@pytest.mark.property
@given(case=tables())
def test_every_record_reads_back_as_written_on_its_start_line(
    case: tuple[str, list[tuple[int, list[str]]], int], tmp_path: Path
) -> None:
    text, expected, width = case
    path = tmp_path / "t.csv"
    path.write_bytes(text.encode("utf-8"))
    with read_table(path) as table:
        found = [(r.line, list(r.cells.values()), r.problems) for r in table]
    assert [(line, cells) for line, cells, _ in found] == expected
    assert all(problems == () for *_, problems in found)
    assert all(len(cells) == width for _, cells in expected)


def test_line_numbers_after_blank_and_whitespace_lines(tmp_path: Path) -> None:
    rows = _numbered(3)
    path = tmp_path / "blank.csv"
    path.write_text("\n".join([HEADER, rows[0], "   ", rows[1], "", "\t", rows[2]]) + "\n")
    assert [r.line for r in read_rows(path, PROFILE)] == [2, 4, 7]


def test_the_release_report_reads_multi_line_records_as_convert_does(tmp_path: Path) -> None:
    """A quoted newline in a cell: the report finds the row on the manifest's line."""
    rows = _numbered(3)
    cells = rows[1].split(",")
    cells[15] = '"43065\nnote"'  # `date` is not carried into the SR
    path = tmp_path / "multi.csv"
    path.write_text("\n".join([HEADER, rows[0], ",".join(cells), rows[2]]) + "\n")
    result = convert(path, tmp_path / "out", jobs=1)
    assert result.converted == 3
    with (tmp_path / "out" / "manifest.csv").open(newline="") as fh:
        lines = [int(m["line"]) for m in csv.DictReader(fh)]
    source = read_source(path)
    assert lines == sorted(source) == [2, 3, 5]
    assert source[3]["date"] == "43065\nnote" and source[5]["order"] == "3"


def test_a_short_row_keeps_its_cells_as_written(tmp_path: Path) -> None:
    """No ``nan`` for cells the row never had; an over-long row keeps its extra cells."""
    rows = _numbered(3)
    short = ",".join(rows[1].split(",")[:5])
    path = tmp_path / "ragged.csv"
    path.write_text("\n".join([HEADER, rows[0], short, rows[2] + ",x,y"]) + "\n")
    result = convert(path, tmp_path / "out", jobs=1)
    assert (result.converted, result.rejected) == (1, 2)
    with (tmp_path / "out" / "rejected.csv").open(newline="") as fh:
        rejected = list(csv.reader(fh))
    header = rejected[0]
    first = dict(zip(header, rejected[1], strict=True))
    assert [first[c] for c in HEADER.split(",")[:5]] == short.split(",")
    assert all(first[c] == "" for c in HEADER.split(",")[5:])
    assert "nan" not in "".join(rejected[1] + rejected[2])
    assert "22 fields where the header has 20 ('x,y')" in rejected[2][-1]
    manifest = (tmp_path / "out" / "manifest.csv").read_text()
    assert "nan" not in manifest


# --- streams and devices -----------------------------------------------------------------

@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_is_refused_from_its_first_bytes(device: str, tmp_path: Path) -> None:
    if not Path(device).exists():
        pytest.skip(f"{device} does not exist here")
    proc = run_cli("convert", device, "-o", str(tmp_path / "out"))
    assert proc.returncode == 1
    assert f"{device}: not a CSV file (binary content)" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


def _feed(fifo: Path, data: bytes | None) -> threading.Thread:
    """Write ``data`` into ``fifo`` (None: 'x' for ever, until the reader goes away)."""
    def write() -> None:
        try:
            with fifo.open("wb") as fh:
                if data is not None:
                    fh.write(data)
                    return
                chunk = b"x" * (1 << 20)
                while True:
                    fh.write(chunk)
        except (BrokenPipeError, OSError):
            return

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_is_read_once_as_a_stream(tmp_path: Path) -> None:
    fifo = tmp_path / "table.csv"
    os.mkfifo(fifo)
    writer = _feed(fifo, SAMPLE.read_bytes())
    proc = run_cli("convert", str(fifo), "-o", str(tmp_path / "out"))
    writer.join(timeout=10)
    assert proc.returncode == 0, proc.stderr
    assert "12 rows read, 12 converted, 0 rejected" in proc.stdout


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_an_endless_line_from_a_fifo_ends_in_bounded_time(tmp_path: Path) -> None:
    fifo = tmp_path / "endless.csv"
    os.mkfifo(fifo)
    writer = _feed(fifo, None)
    proc = run_cli("convert", str(fifo), "-o", str(tmp_path / "out"))
    writer.join(timeout=10)
    assert proc.returncode == 1
    assert f"{fifo}:1: header: a line longer than {rows_module.MAX_LINE_CHARS}" in proc.stderr
    assert "Traceback" not in proc.stderr


_WIDE = """
import sys
from pathlib import Path
from csv2sr.mapping.load import load_profile
from csv2sr.conversion.checks import InputFileError, read_rows
try:
    print(sum(1 for _ in read_rows(Path(sys.argv[1]), load_profile("ccc2017"))))
except InputFileError as exc:
    print(exc)
"""


@pytest.mark.parametrize("kind", ["unnamed", "duplicate", "extra"])
def test_a_header_of_a_million_columns_is_read_in_linear_time(kind: str, tmp_path: Path) -> None:
    """A quadratic duplicate check never finished; the subprocess timeout catches a hang."""
    names = [f"x{i}" for i in range(1_000_000)]
    if kind != "unnamed":
        names = [*HEADER.split(","), *names]
    if kind == "duplicate":
        names.append("x999")
    path = tmp_path / "wide.csv"
    lines = [",".join(names)]
    if kind == "extra":
        filler = "," * 1_000_000
        lines += [row + filler for row in _numbered(2)]
    path.write_text("\n".join(lines) + "\n")
    done = subprocess.run([sys.executable, "-c", _WIDE, str(path)], capture_output=True,
                          text=True, timeout=120, check=True, cwd=ROOT)
    expected = {"unnamed": "missing required column(s): order", "duplicate":
                "column(s) named twice: x999", "extra": "2"}[kind]
    assert expected in done.stdout


# --- what cannot be read rejects its record, the rest goes on ------------------------------

def _read(path: Path) -> tuple[list[int], dict[int, RowError]]:
    results = list(read_rows(path, PROFILE))
    good = [r.line for r in results if isinstance(r, Record)]
    return good, {r.line: r for r in results if isinstance(r, RowError)}


@pytest.mark.property
@given(row=st.integers(0, 399), column=st.integers(0, 19), byte=st.sampled_from(
    [b"\xff", b"\xc3", b"\x80", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"]))
def test_a_byte_that_is_not_utf8_rejects_its_row_and_names_the_column(
    row: int, column: int, byte: bytes, tmp_path: Path
) -> None:
    rows = _numbered(700)
    head = (HEADER + "\n" + "\n".join(rows[:300]) + "\n").encode()
    assert len(head) > rows_module.HEAD_BYTES  # the bad byte is past the checked head
    tail = [r.split(",") for r in rows[300:]]
    cells = [c.encode() for c in tail[row]]
    cells[column] = cells[column][:2] + byte + cells[column][2:]
    body = [",".join(r).encode() for r in tail]
    body[row] = b",".join(cells)
    path = tmp_path / "late.csv"
    path.write_bytes(head + b"\n".join(body) + b"\n")
    good, bad = _read(path)
    line = 302 + row
    assert list(bad) == [line] and len(good) == 699
    (problem,) = bad[line].problems
    assert problem.column == HEADER.split(",")[column]
    assert problem.message.startswith("not UTF-8 text (byte 0x")
    assert "\ufffd" in problem.value and "\ufffd" in bad[line].cells[problem.column]


def test_an_unclosed_quote_at_the_end_names_its_line(tmp_path: Path) -> None:
    rows = _numbered(4)
    cells = rows[2].split(",")
    cells[10] = '"unclosed'
    path = tmp_path / "quote.csv"
    path.write_text("\n".join([HEADER, rows[0], rows[1], ",".join(cells), rows[3]]) + "\n")
    good, bad = _read(path)
    assert good == [2, 3] and list(bad) == [4]
    assert bad[4].messages() == [
        f"{path}:4: (row): a quoted cell is not closed before the end of the file"]


def test_text_after_a_closing_quote_rejects_its_record_only(tmp_path: Path) -> None:
    rows = _numbered(3)
    cells = rows[1].split(",")
    cells[10] = '"brave"otter'
    path = tmp_path / "quote.csv"
    path.write_text("\n".join([HEADER, rows[0], ",".join(cells), rows[2]]) + "\n")
    good, bad = _read(path)
    assert good == [2, 4] and list(bad) == [3]
    assert "text after the closing quote of a quoted cell" in bad[3].messages()[0]


def test_a_cell_over_the_field_limit_is_rejected_and_the_rest_goes_on(tmp_path: Path) -> None:
    rows = _numbered(4)
    cells = rows[1].split(",")
    cells[10] = "x" * (rows_module.FIELD_LIMIT + 1)
    path = tmp_path / "cell.csv"
    path.write_text("\n".join([HEADER, rows[0], ",".join(cells), rows[2], rows[3]]) + "\n")
    good, bad = _read(path)
    assert good == [2, 4, 5] and list(bad) == [3]
    assert "a cell is longer than 131072 characters" in bad[3].messages()[0]


def test_a_stray_quote_that_opens_a_huge_cell_is_one_rejected_record(tmp_path: Path) -> None:
    """The unclosed quote swallows lines until the field limit; reading resumes after it."""
    rows = _numbered(3000)
    cells = rows[0].split(",")
    cells[10] = '"stray'
    path = tmp_path / "stray.csv"
    path.write_text("\n".join([HEADER, ",".join(cells), *rows[1:]]) + "\n")
    good, bad = _read(path)
    assert list(bad) == [2] and "a cell is longer than" in bad[2].messages()[0]
    assert good and good[0] > 2 and good == list(range(good[0], 3002))


def test_an_overlong_line_is_rejected_and_line_numbers_stay_right(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rows_module, "MAX_LINE_CHARS", 1000)
    rows = _numbered(3)
    path = tmp_path / "long.csv"
    path.write_text("\n".join([HEADER, rows[0], rows[1] + "y" * 2000, rows[2]]) + "\n")
    good, bad = _read(path)
    assert good == [2, 4] and list(bad) == [3]
    assert "line 3: a line longer than 1000 characters" in bad[3].messages()[0]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"a,b\n\x00\x01", "not a CSV file (binary content)"),
        (b"order,x\n\xff\xfe" + b"y" * 100, "not UTF-8 text (byte 8)"),
        (b'"order,anatomy\n', "header: a quoted cell is not closed"),
    ],
)
def test_unusable_heads_are_refused_naming_the_file(
    content: bytes, message: str, tmp_path: Path
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(InputFileError) as info:
        list(read_rows(path, PROFILE))
    assert message in str(info.value) and str(path) in str(info.value)


def test_a_folder_is_not_a_table(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="a folder, not a CSV file"):
        list(read_rows(tmp_path, PROFILE))
