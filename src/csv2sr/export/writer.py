"""Run an export: read files in parallel, write rows as they come, atomically.

Memory stays flat whatever the number of files: paths are read by a process pool in
chunks (``imap`` keeps the input order), and each file's rows are written as soon as they
arrive (CSV and JSON lines line by line, Parquet in row groups of :data:`BATCH_ROWS`).  The
table is written by :func:`csv2sr.atomic.atomic_open`: a temporary file in the output's
folder, renamed into place (``os.replace``) only when complete; a failure to write it is a
:class:`csv2sr.atomic.OutputError` naming the table.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Literal, Protocol

from csv2sr.atomic import atomic_open
from csv2sr.errors import leave_interrupts
from csv2sr.export.files import ExportInputError, find_dicom_files
from csv2sr.export.model import Problem
from csv2sr.export.reader import read_file
from csv2sr.export.tables import PROFILE_NAMES, TableProfile, table_profile

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "BATCH_ROWS",
    "FORMATS",
    "ExportFormatError",
    "ExportResult",
    "Format",
    "export_table",
    "format_for",
    "iter_rows",
    "write_table",
]

log = logging.getLogger(__name__)

Format = Literal["csv", "parquet", "jsonl"]
FORMATS: tuple[Format, ...] = ("csv", "parquet", "jsonl")
BATCH_ROWS = 2000
"""Rows per Parquet row group."""
CHUNK_FILES = 32
"""Files a worker reads per task."""

Paths = str | os.PathLike[str] | Iterable[str | os.PathLike[str]]
Progress = Callable[[int, int], None]


class ExportFormatError(ValueError):
    """An unknown output format or profile, or a missing optional library."""


@dataclass
class ExportResult:
    """What an export did: rows written, files read, and every problem found."""

    output: Path | None
    format: str
    profile: str
    rows: int = 0
    files: int = 0
    problems: list[Problem] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def errors(self) -> list[Problem]:
        """Problems that mean a file or a measurement could not be exported."""
        return [p for p in self.problems if p.kind.is_error]

    @property
    def files_with_errors(self) -> int:
        return len({p.path for p in self.errors})

    @property
    def ok(self) -> bool:
        """True when every file was understood (the CLI then exits 0)."""
        return not self.errors


@dataclass(frozen=True, slots=True)
class _FileRows:
    path: str
    rows: list[list[str]]
    problems: list[Problem]


@functools.lru_cache(maxsize=8)
def _table(profile: str) -> TableProfile:
    return table_profile(profile)


def _read_one(path: str, profile: str) -> _FileRows:
    """One file -> its rows in ``profile``'s columns, and its problems."""
    table = _table(profile)
    result = read_file(path)
    problems = list(result.problems)
    rows: list[list[str]] = []
    for measurement in result.measurements:
        row, found = table.row(measurement)
        problems.extend(found)
        if row is not None:
            rows.append(row)
    return _FileRows(path, rows, problems)


_WORKER_PROFILE = "generic"


def _init_worker(profile: str) -> None:
    global _WORKER_PROFILE  # noqa: PLW0603  (one profile per worker process)
    leave_interrupts()  # Ctrl-C: the parent ends the pool, no traceback from here
    _WORKER_PROFILE = profile


def _read_chunk(paths: list[str]) -> list[_FileRows]:
    return [_read_one(path, _WORKER_PROFILE) for path in paths]


def _chunks(paths: Iterable[Path]) -> Iterator[list[str]]:
    chunk: list[str] = []
    for path in paths:
        chunk.append(str(path))
        if len(chunk) == CHUNK_FILES:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _as_list(paths: Paths) -> list[Path]:
    if isinstance(paths, str | os.PathLike):
        return [Path(paths)]
    return [Path(p) for p in paths]


def _check_inputs(paths: list[Path], profile: str) -> None:
    if profile not in PROFILE_NAMES:
        raise ExportFormatError(
            f"unknown profile {profile!r}; known: {', '.join(PROFILE_NAMES)}")
    for path in paths:
        if not path.exists():
            raise ExportInputError(path, "no such file or folder")


def iter_rows(
    paths: Paths, *, profile: str = "generic", jobs: int | None = None,
    progress: Progress | None = None,
) -> Iterator[tuple[str, list[list[str]], list[Problem]]]:
    """Yield ``(file, rows, problems)`` for every file under ``paths``, in order.

    ``jobs`` worker processes (default: the CPU count; one for fewer than two chunks of
    files); ``progress(done, total)`` is called after each file.
    """
    given = _as_list(paths)
    _check_inputs(given, profile)
    files = list(find_dicom_files(given))
    total = len(files)
    workers = max(1, jobs if jobs is not None else (os.cpu_count() or 1))
    if total < 2 * CHUNK_FILES:
        workers = 1
    for done, result in enumerate(_results(files, profile, workers), 1):
        if progress is not None:
            progress(done, total)
        yield result.path, result.rows, result.problems


def _results(files: list[Path], profile: str, workers: int) -> Iterator[_FileRows]:
    if workers <= 1:
        for path in files:
            yield _read_one(str(path), profile)
        return
    context = multiprocessing.get_context("forkserver" if os.name == "posix" else "spawn")
    with context.Pool(workers, initializer=_init_worker, initargs=(profile,)) as pool:
        for chunk in pool.imap(_read_chunk, _chunks(files)):
            yield from chunk


# -- sinks ---------------------------------------------------------------------------------


class _Sink(Protocol):
    def write(self, rows: list[list[str]]) -> None: ...
    def close(self) -> None: ...


class _CsvSink:
    """RFC 4180 CSV (CRLF line ends, as the published CCC2017 table has)."""

    def __init__(self, fh: IO[str], columns: tuple[str, ...]) -> None:
        self.writer = csv.writer(fh, lineterminator="\r\n")
        self.writer.writerow(columns)

    def write(self, rows: list[list[str]]) -> None:
        self.writer.writerows(rows)

    def close(self) -> None:
        pass


class _JsonLinesSink:
    """One JSON object per line, keys in column order, every value a string."""

    def __init__(self, fh: IO[str], columns: tuple[str, ...]) -> None:
        self.fh = fh
        self.columns = columns

    def write(self, rows: list[list[str]]) -> None:
        for row in rows:
            self.fh.write(json.dumps(dict(zip(self.columns, row, strict=True)),
                                     ensure_ascii=False))
            self.fh.write("\n")

    def close(self) -> None:
        pass


class _ParquetSink:
    """Parquet, every column a string, one row group per :data:`BATCH_ROWS` rows."""

    def __init__(self, path: BinaryIO, columns: tuple[str, ...]) -> None:
        try:
            import pyarrow as pa  # noqa: PLC0415  (optional dependency)
            import pyarrow.parquet as pq  # noqa: PLC0415
        except ImportError:
            raise ExportFormatError(
                "parquet output needs pyarrow (pip install 'csv2sr[parquet]')") from None
        self.pa: Any = pa
        self.columns = columns
        self.schema = pa.schema([(name, pa.string()) for name in columns])
        self.writer = pq.ParquetWriter(path, self.schema)
        self.pending: list[list[str]] = []

    def _flush(self) -> None:
        arrays = [self.pa.array([row[i] for row in self.pending], type=self.pa.string())
                  for i in range(len(self.columns))]
        self.writer.write_table(self.pa.Table.from_arrays(arrays, schema=self.schema))
        self.pending = []

    def write(self, rows: list[list[str]]) -> None:
        self.pending.extend(rows)
        if len(self.pending) >= BATCH_ROWS:
            self._flush()

    def close(self) -> None:
        if self.pending:
            self._flush()
        self.writer.close()


def format_for(path: str | os.PathLike[str], given: str | None = None) -> Format:
    """The output format: ``given`` if set, else from the file's suffix (csv by default)."""
    name = given if given is not None else Path(path).suffix.lower().lstrip(".")
    name = {"parq": "parquet", "pq": "parquet", "ndjson": "jsonl"}.get(name, name)
    if name in FORMATS:
        return name
    if given is None:
        return "csv"
    raise ExportFormatError(f"unknown format {given!r}; known: {', '.join(FORMATS)}")


def write_table(
    paths: Paths, out: str | os.PathLike[str], *, format: str | None = None,
    profile: str = "generic", jobs: int | None = None, progress: Progress | None = None,
    on_problem: Callable[[Problem], None] | None = None,
) -> ExportResult:
    """Export every measurement under ``paths`` to the table ``out``, streaming.

    ``format`` ``csv``, ``parquet`` or ``jsonl`` (default: from ``out``'s suffix, else csv);
    ``profile`` ``generic`` or ``ccc2017``; ``on_problem`` is called for each problem as it
    is found (they are also in the result).  Rows of readable measurements are written
    even when other files have problems; the file appears only once complete.

    Raises :class:`ExportInputError` for a missing path and :class:`ExportFormatError`
    for an unknown format or profile, before anything is written, and
    :class:`csv2sr.atomic.OutputError` when the table cannot be written.
    """
    started = time.perf_counter()
    target = Path(out)
    kind = format_for(target, format)
    given = _as_list(paths)
    _check_inputs(given, profile)
    columns = _table(profile).columns
    result = ExportResult(output=target, format=kind, profile=profile)
    rows = iter_rows(given, profile=profile, jobs=jobs, progress=progress)
    with atomic_open(target) as handle:
        _write(handle, kind, columns, results=rows, result=result, on_problem=on_problem)
    result.seconds = time.perf_counter() - started
    log.info("%s: %d rows from %d files, %d problems (%d errors) in %.1f s", target,
             result.rows, result.files, len(result.problems), len(result.errors),
             result.seconds)
    return result


def _write(
    handle: BinaryIO, kind: Format, columns: tuple[str, ...], *,
    results: Iterator[tuple[str, list[list[str]], list[Problem]]], result: ExportResult,
    on_problem: Callable[[Problem], None] | None,
) -> None:
    def consume(sink: _Sink) -> None:
        for _path, rows, problems in results:
            result.files += 1
            result.rows += len(rows)
            sink.write(rows)
            for problem in problems:
                result.problems.append(problem)
                log.debug("%s", problem)
                if on_problem is not None:
                    on_problem(problem)
        sink.close()

    if kind == "parquet":
        consume(_ParquetSink(handle, columns))
        return
    text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
    sink: _Sink = _CsvSink(text, columns) if kind == "csv" else _JsonLinesSink(text, columns)
    consume(sink)
    text.detach()  # flushed; the handle is closed and renamed by atomic_open


def export_table(
    paths: Paths, *, profile: str = "generic", jobs: int | None = None,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Every measurement under ``paths`` as a DataFrame of strings (one row per NUM).

    Problems are logged (WARNING) and kept in ``frame.attrs["problems"]`` as
    :class:`~csv2sr.export.model.Problem` records.  For tables too large for memory use
    :func:`write_table`.
    """
    rows: list[list[str]] = []
    problems: list[Problem] = []
    for _path, file_rows, file_problems in iter_rows(paths, profile=profile, jobs=jobs,
                                                     progress=progress):
        rows.extend(file_rows)
        for problem in file_problems:
            if problem.kind.is_error:
                log.warning("%s", problem)
            problems.append(problem)
    import pandas as pd  # noqa: PLC0415  (workers never need pandas: keep them light)

    frame = pd.DataFrame(rows, columns=list(_table(profile).columns), dtype=str)
    frame.attrs["problems"] = problems
    return frame
