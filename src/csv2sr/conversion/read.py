"""Read an annotation table once, as text, with the csv module: the one reader of a table.

The table is read in ONE streaming pass (:func:`read_table`): the row checks
(:func:`csv2sr.conversion.checks.read_rows`) and the release report
(:mod:`csv2sr.release.folder`) both read through it, so every reader of the table agrees on
where a record starts, which physical line it starts on (blank lines and quoted
newlines included) and what its cells are.  Every cell is a string (no type inference).

Limits, each reported as a record problem (or, for the header, as an unusable file), never
a hang or a traceback: a physical line of at most :data:`MAX_LINE_CHARS` characters, a
cell of at most :data:`FIELD_LIMIT` characters (the csv module's limit), UTF-8 text (a byte
that is not UTF-8 becomes a problem of the record it is in, naming the column).  Blank and
whitespace-only lines hold no data and are skipped.  A FIFO or a character device is read
as a stream, as it arrives; its first 64 KiB are checked before anything else.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from csv2sr.errors import SourceError
from csv2sr.mapping.record import RowProblem, shown

__all__ = [
    "FIELD_LIMIT",
    "HEAD_BYTES",
    "MAX_LINE_CHARS",
    "InputFileError",
    "RawRow",
    "RowProblem",
    "Table",
    "read_table",
    "shown",
]

log = logging.getLogger(__name__)

HEAD_BYTES = 65536
"""The start of the input checked before anything else (empty, binary, not UTF-8)."""
MAX_LINE_CHARS = 1 << 24
"""Characters a physical line may hold (16 Mi: a header of a million columns fits)."""
FIELD_LIMIT = csv.field_size_limit()
"""Characters a cell may hold: the csv module's limit (131,072)."""
_UNDECODABLE = re.compile(r"[\udc80-\udcff]")


class InputFileError(SourceError):
    """The file as a whole cannot be read as an annotation table.

    With ``line``, ``str()`` is ``"<file>:<line>: <message>"``.
    """

    def __init__(self, source: str | Path, message: str, line: int | None = None) -> None:
        super().__init__(source, message)
        self.line = line
        if line is not None:
            self.args = (f"{source}:{line}: {message}",)


# --- reading the table once ---------------------------------------------------------------

@dataclass(frozen=True)
class RawRow:
    """One CSV record as written: where it starts, its cells, and what kept it unreadable."""

    line: int
    """The physical line the record starts on (the header is line 1)."""
    cells: dict[str, str]
    """Header name -> cell, for the fields the record has (a short record has fewer)."""
    extra: tuple[str, ...] = ()
    """Fields beyond the header's width."""
    problems: tuple[RowProblem, ...] = ()
    """Why the record cannot be used as read (bad UTF-8, an oversized cell, bad quoting)."""


class _Prefixed(io.RawIOBase):
    """A raw stream that replays the bytes already read (the checked head) and goes on."""

    def __init__(self, head: bytes, rest: io.RawIOBase) -> None:
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._head:
            size = min(len(buffer), len(self._head))
            buffer[:size] = self._head[:size]
            self._head = self._head[size:]
            return size
        return self._rest.readinto(buffer) or 0

    def close(self) -> None:
        self._rest.close()
        super().close()


def _check_head(path: Path, head: bytes, encoding: str = "utf-8") -> None:
    """Refuse what is not a text table from its first bytes (before reading on)."""
    if not head.strip():
        raise InputFileError(path, "the file is empty")
    if b"\x00" in head:
        raise InputFileError(path, "not a CSV file (binary content)")
    try:
        head.decode(encoding)
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut by the 64 KiB window
            name = "UTF-8" if encoding.replace("_", "-").lower() in _UTF8 else encoding
            raise InputFileError(path, f"not {name} text (byte {exc.start})") from None


_UTF8 = frozenset({"utf-8", "utf8", "utf-8-sig"})


def _open(path: Path, encoding: str = "utf-8") -> io.TextIOWrapper:
    """Open ``path`` once (a file, a FIFO or a device) and check its head."""
    if path.is_dir():
        raise InputFileError(path, "a folder, not a CSV file")
    try:
        raw = path.open("rb", buffering=0)
    except FileNotFoundError:
        raise InputFileError(path, "no such file") from None
    except OSError as exc:
        raise InputFileError(path, f"cannot be read: {exc.strerror or exc}") from None
    try:
        chunks: list[bytes] = []
        size = 0
        while size < HEAD_BYTES:  # a FIFO hands its data over in pieces
            chunk = raw.read(HEAD_BYTES - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        head = b"".join(chunks)
        _check_head(path, head, encoding)
    except OSError as exc:
        raw.close()
        raise InputFileError(path, f"cannot be read: {exc.strerror or exc}") from None
    except InputFileError:
        raw.close()
        raise
    stream = io.BufferedReader(_Prefixed(head, raw))
    codec = "utf-8-sig" if encoding.replace("_", "-").lower() in _UTF8 else encoding
    return io.TextIOWrapper(stream, encoding=codec, errors="surrogateescape", newline="")


def _csv_problem(exc: csv.Error) -> str:
    text = str(exc)
    if "field limit" in text:
        return f"a cell is longer than {FIELD_LIMIT} characters (a quote never closed?)"
    if "unexpected end of data" in text:
        return "a quoted cell is not closed before the end of the file"
    if "expected after" in text:
        return 'text after the closing quote of a quoted cell (a quote inside is written "")'
    return f"not CSV: {text}"


def _decoded(value: str) -> str:
    """A cell with undecodable bytes shown as U+FFFD (the cell can then be written out)."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


class Table:
    """A CSV table opened for one streaming pass: its header, then its records.

    Raises :class:`InputFileError` when the file as a whole is unusable: missing, a
    folder, empty, binary, not UTF-8 at its start, no comma-separated header, a header
    naming a column twice or missing one of ``required``.  Iterating gives every record
    once, in order, then closes the file; a record that cannot be read as written carries
    its problems instead of raising.
    """

    def __init__(
        self, path: Path, required: Sequence[str] = (), *, delimiter: str = ",",
        encoding: str = "utf-8",
    ) -> None:
        self.path = path
        self.delimiter = delimiter
        self._text = _open(path, encoding)
        self._lines = 0
        self._flags: dict[int, str] = {}
        try:
            self._reader = csv.reader(self._physical_lines(), strict=True, delimiter=delimiter)
            self.header = self._read_header(required)
        except BaseException:
            self.close()
            raise

    def _physical_lines(self) -> Iterator[str]:
        """The input's lines, each at most :data:`MAX_LINE_CHARS` (a longer one is flagged
        and stands as an empty line, so that line numbers stay right)."""
        while True:
            try:
                line = self._text.readline(MAX_LINE_CHARS)
            except OSError as exc:
                raise InputFileError(
                    self.path, f"cannot be read: {exc.strerror or exc}", self._lines + 1
                ) from None
            if not line:
                return
            self._lines += 1
            if len(line) == MAX_LINE_CHARS and line[-1] not in "\r\n":
                line = self._skip_long_line()
            yield line

    def _skip_long_line(self) -> str:
        """Flag the overlong line being read and skip the rest of it (up to four times the
        limit: a line that never ends, like a device's, ends the reading instead)."""
        number, limit = self._lines, MAX_LINE_CHARS
        problem = f"a line longer than {limit} characters"
        if number == 1:
            raise InputFileError(self.path, f"header: {problem}", 1)
        self._flags[number] = problem
        line, skipped = "x", 0
        while line and line[-1] not in "\r\n":
            if skipped > 4 * limit:
                raise InputFileError(
                    self.path, f"{problem} (it does not end: the rest is not read)", number)
            line = self._text.readline(limit)
            skipped += len(line)
        return "\n"

    def _read_header(self, required: Sequence[str]) -> tuple[str, ...]:
        try:
            first = next(self._reader, [])
        except csv.Error as exc:
            raise InputFileError(self.path, f"header: {_csv_problem(exc)}", 1) from None
        if any(_UNDECODABLE.search(name) for name in first):
            raise InputFileError(self.path, "header: not UTF-8 text", 1)
        header = tuple(name.strip() for name in first)
        missing = [c for c in required if c not in header]
        if missing:
            if len(header) < 2:
                what = {",": "comma", "\t": "tab", ";": "semicolon"}.get(
                    self.delimiter, repr(self.delimiter))
                raise InputFileError(self.path, f"not a CSV file (no {what}-separated header)")
            raise InputFileError(
                self.path, f"missing required column(s): {', '.join(missing)} (header line 1)"
            )
        twice = sorted(name for name, count in Counter(header).items() if count > 1)
        if twice:
            raise InputFileError(self.path, f"column(s) named twice: {', '.join(twice)}")
        return header

    def __iter__(self) -> Iterator[RawRow]:
        try:
            yield from self._records()
        finally:
            self.close()

    def _records(self) -> Iterator[RawRow]:
        start = self._reader.line_num + 1
        while True:
            try:
                fields = next(self._reader)
            except StopIteration:
                return
            except csv.Error as exc:
                problem = RowProblem("(row)", _csv_problem(exc), "")
                yield RawRow(start, {}, problems=(problem, *self._flagged(start)))
                start = self._reader.line_num + 1
                continue
            flagged = self._flagged(start)
            if flagged or len(fields) > 1 or (fields and fields[0].strip()):
                yield self._record(start, fields, flagged)
            start = self._reader.line_num + 1

    def _flagged(self, start: int) -> list[RowProblem]:
        """Problems of the physical lines ``start`` .. the reader's line (then forgotten)."""
        if not self._flags:
            return []
        end = self._reader.line_num
        lines = [n for n in self._flags if start <= n <= end]
        return [RowProblem("(row)", f"line {n}: {self._flags.pop(n)}", "") for n in lines]

    def _record(self, start: int, fields: list[str], flagged: list[RowProblem]) -> RawRow:
        problems = list(flagged)
        cells = dict(zip(self.header, fields, strict=False))
        for column, value in cells.items():
            if not value.isascii() and _UNDECODABLE.search(value):
                cells[column] = _decoded(value)
                byte = ord(_UNDECODABLE.search(value).group()) - 0xDC00  # type: ignore[union-attr]
                problems.append(RowProblem(column, f"not UTF-8 text (byte 0x{byte:02x})",
                                           cells[column]))
        extra = tuple(_decoded(v) for v in fields[len(self.header):])
        return RawRow(start, cells, extra, tuple(problems))

    def close(self) -> None:
        """Close the file (iterating to the end closes it too)."""
        self._text.close()

    def __enter__(self) -> Table:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def read_table(
    path: str | Path, required: Sequence[str] = (), *, delimiter: str = ",",
    encoding: str = "utf-8",
) -> Table:
    """Open the CSV table at ``path`` for one pass (see :class:`Table`); ``delimiter`` and
    ``encoding`` are the profile's (``[input]``).

    The one reader of an annotation table: :func:`csv2sr.conversion.checks.read_rows` and
    the release report (:mod:`csv2sr.release.folder`) both read through it, so line numbers
    and cells agree.
    """
    return Table(Path(path), required, delimiter=delimiter, encoding=encoding)
