"""Run a conversion: rows in, one SR file per good row, a manifest and the rejected rows out.

Rows stream from :func:`csv2sr.rows.read_rows` in input order, are encoded in worker
processes in small chunks (memory stays flat), and every file is written atomically: a
hidden temporary file in the target folder, then ``os.replace``.  An interrupted run leaves
no partial ``.dcm``.  The manifest has one line per input row, converted or rejected.

Output layout::

    OUTDIR/manifest.csv                     one line per input row
    OUTDIR/rejected.csv                     the rejected rows, their cells, line and reason
    OUTDIR/sr/<PatientID>/order-<order>.dcm one SR per converted row
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import itertools
import logging
import multiprocessing
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom import Dataset

from csv2sr.codes import CodeMode
from csv2sr.encode import dataset_bytes, encode, failure_problem, row_uids
from csv2sr.fastpath import FastEncoder
from csv2sr.images import ImageIndex, check_row_against_image, enriched_header
from csv2sr.profiles import Profile, get_profile
from csv2sr.rows import Annotation, InputFileError, RowError, read_rows

__all__ = [
    "MANIFEST_COLUMNS",
    "ConversionResult",
    "InputFileError",
    "convert",
    "safe_name",
    "sr_relpath",
]

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = (
    "line", "order", "_id", "path", "sop_instance_uid", "series_instance_uid",
    "tracking_uid", "status", "message",
)
CHUNK = 32
"""Rows per task sent to a worker: large enough to amortise IPC, small enough to stream."""

_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def safe_name(value: str) -> str:
    """A file-system-safe, unique folder name for ``value``.

    Characters outside ``[A-Za-z0-9._-]`` become ``_`` and a leading dot is escaped, so
    ``../x`` cannot leave OUTDIR; when anything was changed, 8 hex digits of the value's
    SHA-256 are appended so that two different values never share a folder.
    """
    cleaned = _SAFE.sub("_", value)
    if cleaned.startswith("."):
        cleaned = "_" + cleaned
    if cleaned != value or not cleaned:
        cleaned = f"{cleaned}-{hashlib.sha256(value.encode()).hexdigest()[:8]}"
    return cleaned


def sr_relpath(row: Annotation) -> str:
    """``sr/<safe PatientID>/order-<order, at least 4 digits>.dcm`` (``order`` is unique)."""
    return f"sr/{safe_name(row.patient_id)}/order-{row.order:04d}.dcm"


@dataclass
class ConversionResult:
    """What a conversion did; ``errors`` holds every rejected row with its reasons."""

    csv_path: Path
    outdir: Path
    rows_read: int = 0
    converted: int = 0
    rejected: int = 0
    seconds: float = 0.0
    errors: list[RowError] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """SRs written per second."""
        return self.converted / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        """True when every row was converted."""
        return self.rejected == 0


@dataclass(frozen=True)
class _Done:
    """A converted row, as the manifest records it."""

    line: int
    order: int
    annotation_id: str
    path: str
    sop_instance_uid: str
    series_instance_uid: str
    tracking_uid: str


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder + rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


class _Worker:
    """Per-process state: the profile, code mode, fast encoder and optional image index."""

    def __init__(
        self, csv_path: Path, outdir: Path, profile: Profile, mode: CodeMode,
        images: ImageIndex | None, fast: bool,
    ) -> None:
        self.csv_path = csv_path
        self.outdir = outdir
        self.profile = profile
        self.mode = mode
        self.images = images
        self.fast = FastEncoder(profile, mode) if fast and images is None else None

    def handle(self, item: Annotation | RowError) -> _Done | RowError:
        if isinstance(item, RowError):
            return item
        header: Dataset | None = None
        if self.images is not None:
            found, problems = check_row_against_image(item, self.images, path=self.csv_path)
            if problems:
                return RowError(self.csv_path, item.line, tuple(problems), item.cells)
            header = enriched_header(found, item) if found is not None else None
        try:
            if self.fast is not None:
                data = self.fast.encode_bytes(item)
            else:
                data = dataset_bytes(encode(item, self.profile, self.mode, header=header))
        except Exception as exc:  # a row highdicom refuses is a rejected row, not a crash
            # one line naming the column; the whole traceback only with -vv
            log.debug("line %d: could not be encoded", item.line, exc_info=True)
            problem = failure_problem(item, exc)
            return RowError(self.csv_path, item.line, (problem,), item.cells)
        relpath = sr_relpath(item)
        write_atomic(self.outdir / relpath, data)
        uids = row_uids(item, self.profile, self.mode)
        return _Done(
            item.line, item.order, item.annotation_id, relpath,
            uids.sop_instance, uids.series, uids.tracking,
        )


_WORKER: _Worker | None = None


def _init_worker(args: tuple[Any, ...]) -> None:
    global _WORKER  # noqa: PLW0603  (one worker object per process)
    _WORKER = _Worker(*args)


def _run_chunk(chunk: list[Annotation | RowError]) -> list[_Done | RowError]:
    assert _WORKER is not None, "worker not initialised"
    return [_WORKER.handle(item) for item in chunk]


def _chunks(items: Iterable[Annotation | RowError]) -> Iterator[list[Annotation | RowError]]:
    chunk: list[Annotation | RowError] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _results(
    items: Iterable[Annotation | RowError], jobs: int, worker_args: tuple[Any, ...]
) -> Iterator[_Done | RowError]:
    if jobs <= 1:
        _init_worker(worker_args)
        for chunk in _chunks(items):
            yield from _run_chunk(chunk)
        return
    context = multiprocessing.get_context("forkserver" if os.name == "posix" else "spawn")
    with context.Pool(jobs, initializer=_init_worker, initargs=(worker_args,)) as pool:
        for results in pool.imap(_run_chunk, _chunks(items)):
            yield from results


def _previous_outputs(outdir: Path) -> set[str]:
    manifest = outdir / "manifest.csv"
    if not manifest.is_file():
        return set()
    with manifest.open(newline="", encoding="utf-8") as fh:
        return {row["path"] for row in csv.DictReader(fh) if row.get("path")}


def _remove_stale(outdir: Path, previous: set[str], written: set[str]) -> None:
    """Remove SRs a previous run into OUTDIR wrote and this run did not (same tree again)."""
    for relpath in sorted(previous - written):
        target = outdir / relpath
        if target.is_file() and target.suffix == ".dcm":
            target.unlink()
            log.info("removed stale %s", target)
            with contextlib.suppress(OSError):  # only when the folder is now empty
                target.parent.rmdir()


def _remove_temporaries(outdir: Path) -> None:
    """Temporary files a killed run left behind (never ``.dcm``: they end in ``.tmp``)."""
    sr_root = outdir / "sr"
    if sr_root.is_dir():
        for tmp in sr_root.rglob(".*.tmp"):
            tmp.unlink()


def _manifest_line(item: _Done | RowError) -> list[str]:
    if isinstance(item, RowError):
        return [
            str(item.line), item.cells.get("order", ""), item.cells.get("_id", ""),
            "", "", "", "", "rejected", item.reason,
        ]
    return [
        str(item.line), str(item.order), item.annotation_id, item.path,
        item.sop_instance_uid, item.series_instance_uid, item.tracking_uid, "converted", "",
    ]


class _AtomicCsv:
    """A CSV written line by line to a temporary file, renamed into place on success only."""

    def __init__(self, path: Path, header: Iterable[str]) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        self.header = list(header)

    def __enter__(self) -> _AtomicCsv:
        self.fh = self.tmp.open("w", newline="", encoding="utf-8")
        self.writer = csv.writer(self.fh, lineterminator="\n")
        self.writer.writerow(self.header)
        return self

    def write(self, row: Iterable[str]) -> None:
        self.writer.writerow(row)

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.fh.close()
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


def convert(
    csv_path: str | os.PathLike[str],
    outdir: str | os.PathLike[str],
    *,
    jobs: int | None = None,
    codes: str | CodeMode = CodeMode.SCT,
    profile: str | Profile = "ccc2017",
    images: ImageIndex | None = None,
    progress: Callable[[int], None] | None = None,
    fast: bool = True,
) -> ConversionResult:
    """Convert every row of ``csv_path`` into one SR under ``outdir``.

    ``jobs`` worker processes (default: the CPU count); ``codes`` ``"sct"`` or ``"srt"``;
    ``images`` an :class:`csv2sr.images.ImageIndex` of the source images, which adds the
    image cross-checks and enriches the SRs; ``progress`` is called with the number of rows
    done after each row; ``fast=False`` builds every SR with highdicom (the reference
    builder) rather than the proven-equal template path of :mod:`csv2sr.fastpath`.

    Raises :class:`InputFileError` when the file as a whole is unusable.
    """
    started = time.perf_counter()
    source = Path(csv_path)
    out = Path(outdir)
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    mode = CodeMode(codes)
    workers = max(1, jobs if jobs is not None else (os.cpu_count() or 1))
    result = ConversionResult(csv_path=source, outdir=out)
    rows = read_rows(source, prof)
    first = next(rows)  # raises InputFileError before anything is written
    out.mkdir(parents=True, exist_ok=True)
    previous = _previous_outputs(out)
    _remove_temporaries(out)

    written: set[str] = set()
    items = itertools.chain([first], rows)
    worker_args = (source, out, prof, mode, images, fast)
    with (
        _AtomicCsv(out / "manifest.csv", MANIFEST_COLUMNS) as manifest,
        _AtomicCsv(out / "rejected.csv", (*prof.columns, "line", "reason")) as rejected,
    ):
        for done in _results(items, workers, worker_args):
            result.rows_read += 1
            manifest.write(_manifest_line(done))
            if isinstance(done, RowError):
                result.rejected += 1
                result.errors.append(done)
                rejected.write(
                    [done.cells.get(c, "") for c in prof.columns] + [str(done.line), done.reason]
                )
                for message in done.messages():
                    log.info("rejected: %s", message)
            else:
                result.converted += 1
                written.add(done.path)
            if progress is not None:
                progress(result.rows_read)
    _remove_stale(out, previous, written)
    result.seconds = time.perf_counter() - started
    log.info(
        "%s: %d rows read, %d converted, %d rejected in %.1f s",
        source, result.rows_read, result.converted, result.rejected, result.seconds,
    )
    return result

