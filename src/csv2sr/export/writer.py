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
import hashlib
import io
import itertools
import json
import logging
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Literal, Protocol

from csv2sr.atomic import atomic_open, output_error
from csv2sr.cache import ResultCache, file_digest, read_regular
from csv2sr.errors import leave_interrupts
from csv2sr.export.files import ExportInputError, export_inputs
from csv2sr.export.model import CodedValue, Problem, ProblemKind, Qualitative
from csv2sr.export.reader import read_file
from csv2sr.export.tables import (
    TableProfile,
    qualitative_cells,
    qualitative_nested,
    table_profile,
)
from csv2sr.inputs import EntryKind, InputEntry, InputList
from csv2sr.mapping.load import ProfileError
from csv2sr.pools import started

if TYPE_CHECKING:
    import pandas as pd

    from csv2sr.images.index import ImageIndex

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

Format = Literal["csv", "tsv", "parquet", "jsonl"]
FORMATS: tuple[Format, ...] = ("csv", "tsv", "parquet", "jsonl")
BATCH_ROWS = 2000
"""Rows per Parquet row group."""
CHUNK_FILES = 32
"""Files a worker reads per task."""

Paths = str | os.PathLike[str] | Iterable[str | os.PathLike[str]] | InputList
"""Files or folders, or what :func:`csv2sr.export.files.export_inputs` listed already."""
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
    qualitative: list[tuple[Qualitative, ...]] = field(default_factory=list)
    """Per row, the group's qualitative evaluations (generic table only)."""


@functools.lru_cache(maxsize=8)
def _table(profile: str, images: ImageIndex | None = None) -> TableProfile:
    return table_profile(profile, images)


def _read_one(path: str, profile: str, images: ImageIndex | None = None) -> _FileRows:
    """One file -> its rows in ``profile``'s columns, and its problems (never raises)."""
    try:
        return _rows_of(path, profile, images)
    except Exception as exc:  # a bug met on this file: its problem, not the batch's
        log.debug("exporting %s failed", path, exc_info=True)
        return _FileRows(path, [], [Problem(
            path, "", f"internal error: {type(exc).__name__}: {exc}", ProblemKind.UNREADABLE)])


def _rows_of(path: str, profile: str, images: ImageIndex | None) -> _FileRows:
    table = _table(profile, images)
    result = read_file(path)
    problems = list(result.problems)
    rows: list[list[str]] = []
    qualitative: list[tuple[Qualitative, ...]] = []
    for row, found in table.rows(result.measurements):
        problems.extend(found)
        if row is not None:
            rows.append(row)
    if table.qualitative:  # the generic table: one row per measurement
        qualitative = [m.qualitative for m in result.measurements]
    return _FileRows(path, rows, problems, qualitative)


_WORKER_PROFILE = "generic"
_WORKER_IMAGES: ImageIndex | None = None


def _init_worker(profile: str, images: ImageIndex | None = None) -> None:
    global _WORKER_PROFILE, _WORKER_IMAGES  # noqa: PLW0603  (one profile per worker process)
    leave_interrupts()  # Ctrl-C: the parent ends the pool, no traceback from here
    _WORKER_PROFILE = profile
    _WORKER_IMAGES = images


def _read_chunk(paths: list[str]) -> list[_FileRows]:
    return [_read_one(path, _WORKER_PROFILE, _WORKER_IMAGES) for path in paths]


def _chunks(paths: Iterable[Path]) -> Iterator[list[str]]:
    chunk: list[str] = []
    for path in paths:
        chunk.append(str(path))
        if len(chunk) == CHUNK_FILES:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _as_list(paths: Paths) -> list[Path] | InputList:
    if isinstance(paths, InputList):
        return paths
    if isinstance(paths, str | os.PathLike):
        return [Path(paths)]
    return [Path(p) for p in paths]


def _check_inputs(paths: list[Path] | InputList, profile: str) -> None:
    try:
        _table(profile)
    except ProfileError as exc:
        raise ExportFormatError(str(exc)) from None
    for path in paths:
        if not isinstance(path, InputEntry) and not os.path.lexists(path):
            raise ExportInputError(path, "no such file or folder")


def _input_problem(entry: InputEntry) -> _FileRows:
    """A dangling link, a loop, an unreadable folder: reported as ``FILE: why``."""
    path = str(entry.path)
    return _FileRows(path, [], [Problem(path, "", entry.reason, ProblemKind.UNREADABLE)])


def iter_rows(
    paths: Paths, *, profile: str = "generic", jobs: int | None = None,
    progress: Progress | None = None,
) -> Iterator[tuple[str, list[list[str]], list[Problem]]]:
    """Yield ``(file, rows, problems)`` for every file under ``paths``, in order.

    ``jobs`` worker processes (default: the CPU count; one for fewer than two chunks of
    files); ``progress(done, total)`` is called after each file.
    """
    for result in _iter_results(paths, profile=profile, jobs=jobs, progress=progress):
        yield result.path, result.rows, result.problems


def _iter_results(
    paths: Paths, *, profile: str, jobs: int | None, progress: Progress | None,
    cache: Path | None = None, images: ImageIndex | None = None,
) -> Iterator[_FileRows]:
    given = _as_list(paths)
    _check_inputs(given, profile)
    listing = export_inputs(given)
    files = [e.path for e in listing if e.kind is EntryKind.FILE]
    problems = [_input_problem(e) for e in listing if e.kind is EntryKind.PROBLEM]
    total = len(files) + len(problems)
    workers = max(1, jobs if jobs is not None else (os.cpu_count() or 1))
    key = {"stage": "export", "profile": profile}
    if images is not None:
        key["images"] = _images_key(images)
    store = ResultCache(cache, key)
    read = _cached_results(files, profile, workers, store, images) if store.enabled \
        else _results(files, profile, workers, images)
    results = itertools.chain(problems, read)
    for done, result in enumerate(results, 1):
        if progress is not None:
            progress(done, total)
        yield result
    store.save()


def _images_key(images: ImageIndex) -> str:
    """What the rows take from the source images (the slice columns), for the cache key:
    each instance's series, Instance Number and position."""
    from csv2sr.images.index import z_position  # noqa: PLC0415

    digest = hashlib.sha256()
    for uid in images.uids():
        header = images.get(uid)
        if header is not None:
            digest.update(repr((uid, str(header.get("SeriesInstanceUID", "")),
                                str(header.get("InstanceNumber", "")),
                                z_position(header))).encode())
    return digest.hexdigest()


def _cached_results(
    files: list[Path], profile: str, workers: int, store: ResultCache,
    images: ImageIndex | None = None,
) -> Iterator[_FileRows]:
    """:func:`_results`, reading only the files whose path and bytes the cache does not
    know; what was read is kept for the next run (unless it could not be read)."""
    plan: list[tuple[Path, str | None, _FileRows | None]] = []
    for path in files:
        data = read_regular(path)
        digest = file_digest(data) if data is not None else None
        cached = store.get(str(path), digest) if digest is not None else None
        plan.append((path, digest, _decoded(str(path), cached)))
    misses = _results([p for p, _, done in plan if done is None], profile, workers, images)
    for path, digest, done in plan:
        if done is not None:
            yield done
            continue
        result = next(misses)
        if digest is not None and not any(
            p.kind is ProblemKind.UNREADABLE for p in result.problems
        ):
            data = read_regular(path)
            if data is not None and file_digest(data) == digest:  # unchanged meanwhile
                store.put(str(path), digest, _encoded(result))
        yield result


def _encoded(result: _FileRows) -> dict[str, Any]:
    """A file's rows as JSON values (the file's path is the cache entry's)."""
    return {
        "rows": result.rows,
        "problems": [[p.item, p.message, p.kind.value] for p in result.problems],
        "qualitative": [
            [[q.item, list(q.concept), q.value_type, list(q.code) if q.code else None, q.text]
             for q in row]
            for row in result.qualitative
        ],
    }


def _decoded(path: str, value: Any) -> _FileRows | None:
    """:func:`_encoded` read back, or None for what it did not write."""
    if value is None:
        return None
    try:
        return _FileRows(
            path,
            [[str(cell) for cell in row] for row in value["rows"]],
            [Problem(path, str(item), str(message), ProblemKind(kind))
             for item, message, kind in value["problems"]],
            [tuple(Qualitative(str(item), CodedValue(*map(str, concept)), str(value_type),
                               CodedValue(*map(str, code)) if code else None, str(text))
                   for item, concept, value_type, code, text in row)
             for row in value["qualitative"]],
        )
    except (KeyError, TypeError, ValueError):
        return None


def _results(files: list[Path], profile: str, workers: int,
             images: ImageIndex | None = None) -> Iterator[_FileRows]:
    if len(files) < 2 * CHUNK_FILES:
        workers = 1
    if workers <= 1:
        for path in files:
            yield _read_one(str(path), profile, images)
        return
    context = multiprocessing.get_context("forkserver" if os.name == "posix" else "spawn")
    with started(lambda: context.Pool(workers, initializer=_init_worker,
                                      initargs=(profile, images))) as pool:
        for chunk in pool.imap(_read_chunk, _chunks(files)):
            yield from chunk


# -- sinks ---------------------------------------------------------------------------------


class _Sink(Protocol):
    def write(self, rows: list[list[str]]) -> None: ...
    def close(self) -> None: ...


class _CsvSink:
    """RFC 4180 CSV (CRLF line ends, as the published CCC2017 table has); ``tsv`` the
    same with tabs (the quoting of the csv module: a cell with a tab is quoted)."""

    def __init__(self, fh: IO[str], columns: tuple[str, ...], delimiter: str = ",") -> None:
        self.writer = csv.writer(fh, lineterminator="\r\n", delimiter=delimiter)
        self.writer.writerow(columns)

    def write(self, rows: list[list[str]]) -> None:
        self.writer.writerows(rows)

    def close(self) -> None:
        pass


class _JsonLinesSink:
    """One JSON object per line, keys in column order, every value a string; the generic
    table adds ``qualitative``, the list of the group's evaluations (nested, complete)."""

    def __init__(self, fh: IO[str], columns: tuple[str, ...]) -> None:
        self.fh = fh
        self.columns = columns

    def write(self, rows: list[list[str]]) -> None:
        for row in rows:
            self.fh.write(json.dumps(dict(zip(self.columns, row, strict=True)),
                                     ensure_ascii=False))
            self.fh.write("\n")

    def write_nested(self, rows: list[list[str]],
                     qualitative: list[tuple[Qualitative, ...]]) -> None:
        for row, evaluations in zip(rows, qualitative, strict=True):
            record: dict[str, object] = dict(zip(self.columns, row, strict=True))
            record["qualitative"] = qualitative_nested(evaluations)
            self.fh.write(json.dumps(record, ensure_ascii=False))
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
    on_problem: Callable[[Problem], None] | None = None, cache: Path | None = None,
    images: ImageIndex | None = None,
) -> ExportResult:
    """Export every measurement under ``paths`` to the table ``out``, streaming.

    ``format`` ``csv``, ``parquet`` or ``jsonl`` (default: from ``out``'s suffix, else csv);
    ``profile`` ``generic`` or ``ccc2017``; ``on_problem`` is called for each problem as it
    is found (they are also in the result).  Rows of readable measurements are written
    even when other files have problems; the file appears only once complete.  ``cache``:
    a JSON file (:mod:`csv2sr.cache`) of each file's rows: a file whose path and bytes are
    unchanged since the run that wrote it is not read again (same csv2sr, same profile).
    ``images``: the source images' index, through which a profile that resolves its rows
    (``[identity.image]``) gives its slice columns back.

    Raises :class:`ExportInputError` for a missing path and :class:`ExportFormatError`
    for an unknown format or profile, before anything is written, and
    :class:`csv2sr.atomic.OutputError` when the table cannot be written.
    """
    started = time.perf_counter()
    target = Path(out)
    kind = format_for(target, format)
    given = _as_list(paths)
    _check_inputs(given, profile)
    columns = _table(profile, images).columns
    result = ExportResult(output=target, format=kind, profile=profile)
    rows = _iter_results(given, profile=profile, jobs=jobs, progress=progress, cache=cache,
                         images=images)
    with atomic_open(target) as handle:
        _write(handle, kind, columns, results=rows, result=result, on_problem=on_problem,
               qualitative=_table(profile).qualitative, target=target)
    result.seconds = time.perf_counter() - started
    log.info("%s: %d rows from %d files, %d problems (%d errors) in %.1f s", target,
             result.rows, result.files, len(result.problems), len(result.errors),
             result.seconds)
    return result


def _write(
    handle: BinaryIO, kind: Format, columns: tuple[str, ...], *,
    results: Iterator[_FileRows], result: ExportResult,
    on_problem: Callable[[Problem], None] | None, qualitative: bool = False,
    target: Path | None = None,
) -> None:
    def account(file_rows: _FileRows) -> None:
        result.files += 1
        result.rows += len(file_rows.rows)
        for problem in file_rows.problems:
            result.problems.append(problem)
            log.debug("%s", problem)
            if on_problem is not None:
                on_problem(problem)

    if qualitative and kind == "jsonl":
        text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        nested = _JsonLinesSink(text, columns)
        for file_rows in results:
            account(file_rows)
            nested.write_nested(file_rows.rows, file_rows.qualitative)
        text.flush()
        text.detach()
        return
    if qualitative:
        _write_with_qualitative_columns(handle, kind, columns, results, account, target)
        return

    def consume(sink: _Sink) -> None:
        for file_rows in results:
            account(file_rows)
            sink.write(file_rows.rows)
        sink.close()

    if kind == "parquet":
        consume(_ParquetSink(handle, columns))
        return
    text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
    sink: _Sink = _CsvSink(text, columns, "\t" if kind == "tsv" else ",") \
        if kind in ("csv", "tsv") else _JsonLinesSink(text, columns)
    consume(sink)
    text.detach()  # flushed; the handle is closed and renamed by atomic_open


def _write_with_qualitative_columns(
    handle: BinaryIO, kind: Format, columns: tuple[str, ...], results: Iterator[_FileRows],
    account: Callable[[_FileRows], None], target: Path | None,
) -> None:
    """CSV or Parquet with ``qualitative_<concept>`` columns, known only at the end: rows
    are spooled to an anonymous temporary file beside the output (memory stays flat, no
    name is ever left behind), then written with the fixed columns and the sorted
    qualitative columns.  A failure of the spool (disk full, file too large) is an
    :class:`csv2sr.atomic.OutputError` naming the table, as one of the table itself."""
    folder = None if target is None else target.parent
    try:
        _spool_then_write(handle, kind, columns, results, account, folder)
    except OSError as exc:
        raise output_error(target if target is not None else "spool", exc) from None


def _spool_then_write(
    handle: BinaryIO, kind: Format, columns: tuple[str, ...], results: Iterator[_FileRows],
    account: Callable[[_FileRows], None], folder: Path | None,
) -> None:
    found: set[str] = set()
    with tempfile.TemporaryFile("w+", encoding="utf-8", dir=folder) as spool:
        for file_rows in results:
            account(file_rows)
            for row, evaluations in zip(file_rows.rows, file_rows.qualitative, strict=True):
                cells = qualitative_cells(evaluations)
                found.update(cells)
                spool.write(json.dumps([row, cells], ensure_ascii=False))
                spool.write("\n")
        extra = tuple(sorted(found))
        spool.seek(0)
        text: io.TextIOWrapper | None = None
        sink: _Sink
        if kind == "parquet":
            sink = _ParquetSink(handle, columns + extra)
        else:
            text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
            sink = _CsvSink(text, columns + extra, "\t" if kind == "tsv" else ",")
        for line in spool:
            row, cells = json.loads(line)
            sink.write([[*row, *(cells.get(column, "") for column in extra)]])
        sink.close()
        if text is not None:
            text.detach()


def export_table(
    paths: Paths, *, profile: str = "generic", jobs: int | None = None,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Every measurement under ``paths`` as a DataFrame of strings (one row per NUM and
    one per measurement group without NUM; the generic table's qualitative columns as in
    CSV).

    Problems are logged (WARNING) and kept in ``frame.attrs["problems"]`` as
    :class:`~csv2sr.export.model.Problem` records.  For tables too large for memory use
    :func:`write_table`.
    """
    rows: list[list[str]] = []
    extras: list[dict[str, str]] = []
    problems: list[Problem] = []
    for result in _iter_results(paths, profile=profile, jobs=jobs, progress=progress):
        rows.extend(result.rows)
        extras.extend(qualitative_cells(q) for q in result.qualitative)
        for problem in result.problems:
            if problem.kind.is_error:
                log.warning("%s", problem)
            problems.append(problem)
    import pandas as pd  # noqa: PLC0415  (workers never need pandas: keep them light)

    extra = sorted({column for cells in extras for column in cells})
    if extra:
        rows = [[*row, *(cells.get(c, "") for c in extra)]
                for row, cells in zip(rows, extras, strict=True)]
    frame = pd.DataFrame(rows, columns=[*_table(profile).columns, *extra], dtype=str)
    frame.attrs["problems"] = problems
    return frame
